// The console page's script: noVNC's RFB client (served beside it from npm @novnc/novnc's core/) on the
// websocket of the proxy that served this page. The query is what createConsoleEndpoint wrote, with
// noVNC's own names: `token` (one session; loading this page does not use it), `port` and `path` of
// the websocket. The websocket is always this page's own host: the page's CSP allows no other.
import RFB from './core/rfb.js';

const query = new URLSearchParams(location.search);
const status = document.getElementById('status');
const cad = document.getElementById('cad');

function show(text, state) {
  status.textContent = text;
  status.dataset.state = state;
}

function websocketUrl() {
  const url = new URL(location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (query.get('port')) url.port = query.get('port');
  url.pathname = `/${(query.get('path') || 'websockify').replace(/^\/+/, '')}`;
  url.search = '';
  url.hash = '';
  url.searchParams.set('token', query.get('token') || '');
  if (query.get('extra')) url.searchParams.set('extra', query.get('extra'));
  return url.toString();
}

if (!query.get('token')) {
  show('This console link has no token: open the console again from the VM.', 'failed');
} else {
  let connected = false;
  const rfb = new RFB(document.getElementById('screen'), websocketUrl(), { wsProtocols: ['binary'] });
  rfb.scaleViewport = true;
  rfb.background = '#000';
  rfb.addEventListener('connect', () => {
    connected = true;
    cad.disabled = false;
    show(`Connected${document.title === 'Console' ? '' : `: ${document.title}`}`, 'connected');
  });
  rfb.addEventListener('desktopname', (e) => {
    document.title = e.detail.name;
    if (connected) show(`Connected: ${e.detail.name}`, 'connected');
  });
  rfb.addEventListener('disconnect', () => {
    cad.disabled = true;
    // The proxy refuses a used or expired token before the websocket opens: the browser only sees it fail.
    show(
      connected
        ? 'Disconnected. Open the console again from the VM to reconnect.'
        : 'The console could not be opened: its link has expired or was used already, or the VM is not running. Open the console again from the VM.',
      connected ? 'disconnected' : 'failed',
    );
  });
  rfb.addEventListener('securityfailure', (e) => show(`The VM's display refused the connection: ${e.detail.reason || e.detail.status}`, 'failed'));
  cad.addEventListener('click', () => rfb.sendCtrlAltDel());
  // For tests and the curious: the client, once it exists.
  window.moldConsole = rfb;
}
