// Where a console opens in a browser. createConsoleEndpoint's `url` is a page, as upstream's is
// (ConsoleAccessManagerImpl: `<proxy>/resource/noVNC/vnc.html?autoconnect=true&port=<port>&token=<token>`),
// served by the agent's console proxy (agent/console.ts) beside the websocket it reports: the page's
// address is `resource/noVNC/vnc.html` resolved against the websocket's URL, http for ws and https for
// wss, so a reverse proxy in front of the agent carries both under one prefix. The page opens the
// websocket at the query's `port` and `path` (noVNC's names; `path` only when it is not upstream's
// `websockify`) with the token.

/** The page's path relative to the websocket's directory (upstream's console proxy serves noVNC here). */
export const CONSOLE_PAGE_PATH = 'resource/noVNC/vnc.html';

/** The websocket's port as a client reaches it (the scheme's default when the URL has none). */
export function websocketPort(u: URL): string {
  return u.port || (u.protocol === 'wss:' ? '443' : '80');
}

/** The websocket's path without its leading slash, as upstream's `websocket.path` gives it. */
export function websocketPath(u: URL): string {
  return u.pathname.replace(/^\/+/, '');
}

/** The page that opens `consoleUrl` (a ws:// or wss:// URL) with `token`. */
export function consolePageUrl(consoleUrl: string, token: string, extra?: string): string {
  const ws = new URL(consoleUrl);
  const page = new URL(CONSOLE_PAGE_PATH, ws);
  page.protocol = ws.protocol === 'wss:' ? 'https:' : 'http:';
  page.searchParams.set('autoconnect', 'true');
  page.searchParams.set('port', websocketPort(ws));
  if (websocketPath(ws) !== 'websockify') page.searchParams.set('path', websocketPath(ws));
  page.searchParams.set('token', token);
  if (extra) page.searchParams.set('extra', extra);
  return page.toString();
}
