// The console proxy: websockets in (noVNC, which speaks websockify's binary protocol), the guest's VNC
// on its KVM host out. It listens on one address only (`--console-listen`), the network side whose
// users it serves; a wildcard address is refused. An upgrade is accepted only with a console token
// (shared/crypto/console-token.ts) that Mold's CA signed, that names this agent and one of the hosts
// the control plane gave it, and that has not expired or been used: each token opens one session
// (createConsoleEndpoint makes a new one per view, and a replayed URL is worth nothing). Anything else
// gets HTTP 401 and no connection to any host.
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP, Socket, type AddressInfo } from 'node:net';
import { dirname, extname, join, relative, sep } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { CONSOLE_PAGE_PATH } from '../shared/console-page.ts';
import { verifyConsoleToken, type ConsoleTicket } from '../shared/crypto/console-token.ts';
import { errorText, log } from './log.ts';

/** The websockify subprotocol noVNC asks for: raw RFB bytes in binary frames. */
export const CONSOLE_SUBPROTOCOL = 'binary';
const CONNECT_TIMEOUT_MS = 10_000;
/** Past this much unsent data towards the browser, reading from VNC pauses until it drains. */
const HIGH_WATER = 4 * 2 ** 20;
const LOW_WATER = 2 ** 20;
/** RFB client messages are small (key and pointer events, a clipboard); this bounds one frame. */
const MAX_FRAME = 2 ** 20;

/** Where the page and noVNC live on the proxy (shared/console-page.ts): upstream's proxy serves noVNC here too. */
export const CONSOLE_PAGE_PREFIX = `/${CONSOLE_PAGE_PATH.slice(0, CONSOLE_PAGE_PATH.lastIndexOf('/') + 1)}`;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** The page's policy: its own scripts and styles, a websocket back to the same host, nothing else. */
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

function filesUnder(root: string, folder: string, into: Map<string, string>) {
  for (const entry of readdirSync(join(root, folder), { withFileTypes: true, recursive: true })) {
    const file = join(entry.parentPath, entry.name);
    if (entry.isFile() && TYPES[extname(file)]) into.set(relative(root, file).split(sep).join('/'), file);
  }
}

let pageFiles: Map<string, string> | undefined;
/** Every file the proxy serves under CONSOLE_PAGE_PREFIX: URL path (relative) → file. */
export function consolePageFiles(): Map<string, string> {
  if (pageFiles) return pageFiles;
  const files = new Map<string, string>();
  // The package exports core/rfb.js only: its folder's parent is the package.
  const novnc = dirname(dirname(fileURLToPath(import.meta.resolve('@novnc/novnc'))));
  filesUnder(novnc, 'core', files);
  filesUnder(novnc, 'vendor', files);
  const own = join(import.meta.dirname, 'console-page');
  for (const name of readdirSync(own)) if (TYPES[extname(name)]) files.set(name, join(own, name));
  pageFiles = files;
  return files;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** `ip:port` or `[ipv6]:port`; a wildcard address is refused (the console serves one network side). */
export function parseListen(text: string): ListenAddress {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) throw new Error(`--console-listen must be <ip>:<port> (or [<ipv6>]:<port>), not ${JSON.stringify(text)}`);
  const host = m[1]!;
  const port = Number(m[2]);
  if (!isIP(host)) throw new Error(`--console-listen needs an IP address, not ${JSON.stringify(host)}`);
  if (host === '0.0.0.0' || host === '::' || /^0+(\.0+){3}$/.test(host) || /^(0*:)+0*$/.test(host)) {
    throw new Error(`--console-listen must name the address of the interface the console serves, not the wildcard ${host}`);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--console-listen: ${m[2]} is not a port`);
  return { host, port };
}

/** What clients are told when no --console-url is given: this address, path /websockify. */
export function defaultConsoleUrl(listen: ListenAddress, tls: boolean): string {
  const host = isIP(listen.host) === 6 ? `[${listen.host}]` : listen.host;
  return `${tls ? 'wss' : 'ws'}://${host}:${listen.port}/websockify`;
}

export function checkConsoleUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`--console-url is not a URL: ${JSON.stringify(text)}`);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error(`--console-url must be ws:// or wss://, not ${u.protocol}`);
  if (u.search || u.hash) throw new Error('--console-url must not carry a query or a fragment (the token is added to it)');
  return u.toString();
}

export interface ConsoleProxyOptions {
  /** Mold's CA certificate (PEM), from enrolment. */
  caCertificatePem: string;
  agentId: string;
  listen: ListenAddress;
  /** The URL the control plane hands out (defaults to defaultConsoleUrl). */
  url?: string;
  /** PEM; with both, the proxy speaks wss itself. */
  tls?: { certificate: string; privateKey: string };
  /** Is `address` one of this agent's hosts? */
  servesHost: (address: string) => boolean | Promise<boolean>;
  now?: () => number;
  connectTimeoutMs?: number;
}

/** Reads the TLS files of `--console-cert` / `--console-key`. */
export function readTls(certFile?: string, keyFile?: string): ConsoleProxyOptions['tls'] {
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new Error('--console-cert and --console-key go together');
  return { certificate: readFileSync(certFile, 'utf8'), privateKey: readFileSync(keyFile, 'utf8') };
}

function refuse(socket: Duplex, status: 401 | 404 | 502, reason: string) {
  const text = { 401: 'Unauthorized', 404: 'Not Found', 502: 'Bad Gateway' }[status];
  const body = JSON.stringify({ error: reason });
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

function connect(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = new Socket();
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.setNoDelay(true);
    s.connect({ host, port }, () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
  });
}

export class ConsoleProxy {
  private readonly options: ConsoleProxyOptions;
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  /** Nonces of accepted tokens, until their expiry (a used token is refused). */
  private readonly used = new Map<string, number>();
  private readonly sessions = new Set<{ ws: WebSocket; vnc: Socket }>();
  private consoleUrl: string;

  constructor(options: ConsoleProxyOptions) {
    this.options = options;
    this.consoleUrl = options.url ? checkConsoleUrl(options.url) : defaultConsoleUrl(options.listen, Boolean(options.tls));
    const plain = (req: IncomingMessage, res: ServerResponse) =>
      void this.serve(req, res).catch((err) => {
        // A file that cannot be read (a broken install): the page fails, the agent goes on.
        log.warn('console: cannot serve a page file', { path: req.url?.split('?')[0], error: errorText(err) });
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('Internal Server Error\n');
      });
    this.server = options.tls
      ? createHttpsServer({ cert: options.tls.certificate, key: options.tls.privateKey }, plain)
      : createHttpServer(plain);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_FRAME,
      perMessageDeflate: false,
      // noVNC offers `binary`; a client that offers no subprotocol gets binary frames all the same.
      handleProtocols: (protocols) => (protocols.has(CONSOLE_SUBPROTOCOL) ? CONSOLE_SUBPROTOCOL : false),
    });
    this.server.on('upgrade', (req, socket, head) => void this.upgrade(req, socket, head));
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  /** Listens; resolves with the bound address (port 0 picks one). */
  async start(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.listen.port, this.options.listen.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    // Port 0 picked one: the default URL names it.
    if (!this.options.url) this.consoleUrl = defaultConsoleUrl({ host: this.options.listen.host, port: address.port }, Boolean(this.options.tls));
    log.info('console proxy listening', { address: address.address, port: address.port, url: this.url, tls: Boolean(this.options.tls) });
    return address;
  }

  /** The URL handed out to clients (reported to the control plane). */
  get url(): string {
    return this.consoleUrl;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  /** Plain HTTP: the console page and noVNC's files; anything else is told to use a websocket. */
  private async serve(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? '/').split('?')[0]!;
    if (!path.startsWith(CONSOLE_PAGE_PREFIX)) {
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket', connection: 'close' });
      res.end('This is the console proxy of a Mold agent: open the console URL that createConsoleEndpoint gives, or connect a websocket with a console token.\n');
      return;
    }
    // An exact name from the index: `..`, `%2e`, `//` and the like match nothing.
    const file = consolePageFiles().get(path.slice(CONSOLE_PAGE_PREFIX.length));
    if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(file ? 405 : 404, { 'content-type': 'text/plain', ...(file && { allow: 'GET, HEAD' }) });
      res.end(file ? 'Method Not Allowed\n' : 'Not Found\n');
      return;
    }
    const body = await readFile(file);
    res.writeHead(200, {
      'content-type': TYPES[extname(file)]!,
      'content-length': body.length,
      // The page's URL carries the token: it stays out of caches and Referer headers.
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      'content-security-policy': PAGE_CSP,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /** Checks a token; accepting it uses it up. */
  private async accept(token: string | null): Promise<{ ok: true; ticket: ConsoleTicket } | { ok: false; reason: string }> {
    const check = verifyConsoleToken(this.options.caCertificatePem, token, { now: this.now(), expect: { agentId: this.options.agentId } });
    if (!check.ok) return check;
    const { ticket } = check;
    if (!(await this.options.servesHost(ticket.host))) return { ok: false, reason: 'the VM\'s host is not one of this agent\'s hosts' };
    const nowSeconds = Math.floor(this.now() / 1000);
    for (const [nonce, exp] of this.used) if (exp <= nowSeconds) this.used.delete(nonce);
    if (this.used.has(ticket.nonce)) return { ok: false, reason: 'the token has been used already' };
    this.used.set(ticket.nonce, ticket.exp);
    return check;
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    const started = performance.now();
    const remote = req.socket.remoteAddress;
    socket.on('error', () => socket.destroy());
    let token: string | null;
    try {
      token = new URL(req.url ?? '/', 'http://console').searchParams.get('token');
    } catch {
      token = null;
    }
    const accepted = await this.accept(token);
    if (!accepted.ok) {
      log.warn('console refused', { remote, reason: accepted.reason });
      refuse(socket, 401, `invalid console token: ${accepted.reason}`);
      return;
    }
    const t = accepted.ticket;
    // VNC first: a guest whose display is gone gets 502 rather than a websocket that closes at once.
    let vnc: Socket;
    try {
      vnc = await connect(t.host, t.port, this.options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
    } catch (err) {
      log.warn('console: cannot reach the VM\'s display', { vm: t.vm, host: t.host, port: t.port, error: errorText(err) });
      refuse(socket, 502, `cannot reach the VM's display on ${t.host}:${t.port}`);
      return;
    }
    let piped = false;
    socket.once('close', () => {
      if (!piped) vnc.destroy();
    });
    if (socket.destroyed) {
      vnc.destroy();
      return;
    }
    // An invalid websocket handshake is answered 400 by ws and the callback never runs: the close above cleans up.
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      piped = true;
      this.pipe(ws, vnc, t, remote, started);
    });
  }

  private pipe(ws: WebSocket, vnc: Socket, t: ConsoleTicket, remote: string | undefined, started: number) {
    const session = { ws, vnc };
    this.sessions.add(session);
    ws.binaryType = 'nodebuffer';
    let toClient = 0;
    let toVnc = 0;
    let paused = false;
    vnc.on('data', (data: Buffer) => {
      toClient += data.length;
      ws.send(data, { binary: true }, () => {
        if (paused && ws.bufferedAmount < LOW_WATER) {
          paused = false;
          vnc.resume();
        }
      });
      if (!paused && ws.bufferedAmount > HIGH_WATER) {
        paused = true;
        vnc.pause();
      }
    });
    ws.on('message', (data) => {
      const chunk = data as Buffer;
      toVnc += chunk.length;
      if (!vnc.write(chunk)) ws.pause();
    });
    vnc.on('drain', () => ws.resume());
    let ended = false;
    const end = (why: string) => {
      if (ended) return;
      ended = true;
      this.sessions.delete(session);
      vnc.destroy();
      if (ws.readyState === ws.OPEN) ws.close(why === 'vnc-error' ? 1011 : 1000);
      else ws.terminate();
      log.info('console session', { vm: t.vm, host: t.host, port: t.port, remote, closedBy: why, toClient, toVnc, ms: Math.round(performance.now() - started) });
    };
    vnc.on('end', () => end('vnc'));
    vnc.on('close', () => end('vnc'));
    vnc.on('error', () => end('vnc-error'));
    ws.on('close', () => end('client'));
    ws.on('error', () => end('client-error'));
    log.info('console opened', { vm: t.vm, host: t.host, port: t.port, remote, ms: Math.round(performance.now() - started) });
  }

  /** Stops listening and closes every session. */
  async stop(): Promise<void> {
    for (const { ws, vnc } of this.sessions) {
      vnc.destroy();
      ws.terminate();
    }
    this.sessions.clear();
    this.wss.close();
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
