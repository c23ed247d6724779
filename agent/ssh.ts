// SSH to the hosts (ssh2). The agent keeps one connection per host open and runs every command on it
// as a new channel: a command costs a channel round trip (~1 ms on a LAN), not a handshake. A
// connection that dies is dropped and the next command opens a fresh one.
// Host keys are pinned: the first connection to an address learns the key's fingerprint (addHost,
// where the operator vouches for the host), and every later connection must present the same key.
// The control plane sends no fingerprints back, so the pins live in the agent's own known-hosts file.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { CommandFailure, failures } from './errors.ts';
import { log } from './log.ts';
import { writePrivateFile } from './state.ts';

export interface SshTarget {
  address: string;
  port: number;
  username: string;
}

export type SshAuth = { password: string } | { privateKey: string };

export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

interface ExitStatus {
  code: number | null;
  signal?: string;
}

export interface ExecOptions {
  timeoutMs?: number;
  /** Written to the command's stdin, then stdin is closed. */
  input?: string | Buffer;
  /** Runs on a channel kept for the host's reports, never queued behind its commands. */
  report?: boolean;
}

export const CONNECT_TIMEOUT_MS = 10_000;
export const EXEC_TIMEOUT_MS = 60_000;
// sshd's default MaxSessions is 10: eight channels for commands, two kept for the reports (the
// report and the fence it raises). A report queued behind eight long commands (concurrent stops of
// 12 s each under load) timed out, and the host was judged lost while it worked.
const CHANNELS = { command: 8, report: 2 } as const;
type Lane = keyof typeof CHANNELS;

/** Where a host the control plane names is reached over SSH (port 22 unless it says otherwise). */
export function hostTarget(host: { address: string; port?: number; username: string }): SshTarget {
  return { address: host.address, port: host.port ?? 22, username: host.username };
}

export function who(target: SshTarget): string {
  return `${target.username}@${target.address}`;
}
export function where(target: SshTarget): string {
  return `${target.address}:${target.port}`;
}

/** OpenSSH's form: SHA256:<base64 without padding> of the key blob. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** Quotes a word for a POSIX shell. */
export function shq(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The pinned host keys, by address:port, in a 0600 JSON file. */
export class KnownHosts {
  readonly path: string | undefined;
  private readonly pins = new Map<string, string>();
  private saving: Promise<void> = Promise.resolve();

  constructor(path?: string, initial: Record<string, string> = {}) {
    this.path = path;
    for (const [k, v] of Object.entries(initial)) this.pins.set(k, v);
  }

  static async open(path: string): Promise<KnownHosts> {
    try {
      return new KnownHosts(path, JSON.parse(await readFile(path, 'utf8')));
    } catch {
      return new KnownHosts(path);
    }
  }

  get size(): number {
    return this.pins.size;
  }

  get(target: SshTarget): string | undefined {
    return this.pins.get(where(target));
  }

  async set(target: SshTarget, fp: string): Promise<void> {
    if (this.pins.get(where(target)) === fp) return;
    this.pins.set(where(target), fp);
    await this.save();
  }

  async forget(target: SshTarget): Promise<void> {
    if (this.pins.delete(where(target))) await this.save();
  }

  private async save() {
    if (!this.path) return;
    const path = this.path;
    const text = `${JSON.stringify(Object.fromEntries(this.pins), null, 2)}\n`;
    this.saving = this.saving.then(() => writePrivateFile(path, text)).catch((err) => log.warn('cannot save known hosts', { error: String(err) }));
    await this.saving;
  }
}

/**
 * `learn`: accept whatever key the host offers and pin it (addHost: the operator named this host).
 * `verify`: the pinned key must match; a host never seen before is learnt (the pins were lost, or the
 * key was installed by hand before a key-only addHost).
 */
export type PinMode = 'learn' | 'verify';

/** Maps an ssh2/socket error to the failure the operator reads. */
export function connectFailure(err: unknown, target: SshTarget, how: 'password' | 'key'): CommandFailure {
  if (err instanceof CommandFailure) return err;
  const e = err as Error & { level?: string; code?: string };
  if (e.level === 'client-authentication') return failures.authenticationFailed(who(target), how);
  if (e.level === 'client-timeout') return failures.hostUnreachable(where(target), `no SSH handshake within ${CONNECT_TIMEOUT_MS / 1000} s`);
  const reasons: Record<string, string> = {
    ECONNREFUSED: 'connection refused (is sshd running?)',
    EHOSTUNREACH: 'no route to host',
    ENETUNREACH: 'network unreachable',
    ETIMEDOUT: 'connection timed out',
    ECONNRESET: 'connection reset by the host',
    ENOTFOUND: 'unknown host name',
    EAI_AGAIN: 'cannot resolve the host name',
  };
  if (e.code && reasons[e.code]) return failures.hostUnreachable(where(target), reasons[e.code]!);
  return failures.hostUnreachable(where(target), e.message || String(err));
}

/** One open SSH connection. */
export class SshConnection {
  readonly target: SshTarget;
  readonly hostKeyFingerprint: string;
  private readonly client: Client;
  private closed = false;
  private retiring = false;
  private readonly active: Record<Lane, number> = { command: 0, report: 0 };
  private readonly waiting: Record<Lane, Array<() => void>> = { command: [], report: [] };
  private readonly onClose = new Set<() => void>();

  constructor(target: SshTarget, client: Client, hostKeyFingerprint: string) {
    this.target = target;
    this.client = client;
    this.hostKeyFingerprint = hostKeyFingerprint;
    const closed = () => {
      if (this.closed) return;
      this.closed = true;
      for (const f of this.onClose) f();
    };
    client.on('close', closed);
    client.on('end', closed);
    client.on('error', (err) => {
      log.debug('ssh connection error', { host: where(target), error: err.message });
      closed();
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Calls `f` when the connection closes; returns the unsubscribe. */
  whenClosed(f: () => void): () => void {
    this.onClose.add(f);
    return () => this.onClose.delete(f);
  }

  end() {
    if (!this.closed) this.client.end();
    this.closed = true;
  }

  /**
   * Ends the connection once the channels under way (and those queued for it) are done. A report that
   * timed out waiting behind busy channels says nothing against the connection, and ending it at once
   * cut every command running on the host (seen: concurrent starts failing "exit undefined"); a dead
   * connection's channels end by their own time-outs.
   */
  retire() {
    this.retiring = true;
    if (this.idle) this.end();
  }

  private get idle(): boolean {
    return Object.values(this.active).every((n) => n === 0) && Object.values(this.waiting).every((q) => q.length === 0);
  }

  private async acquire(lane: Lane) {
    if (this.active[lane] < CHANNELS[lane]) {
      this.active[lane]++;
      return;
    }
    await new Promise<void>((r) => this.waiting[lane].push(r));
    this.active[lane]++;
  }

  private release(lane: Lane) {
    this.active[lane]--;
    this.waiting[lane].shift()?.();
    if (this.retiring && this.idle) this.end();
  }

  /**
   * Opens a channel running `command`. Fails with ChannelFailure when the command could not start.
   * The exit status is caught at once: a quick command's exit-status and close can arrive in the same
   * read as the channel's confirmation, and ssh2 emits 'exit' before any later listener is attached.
   */
  private openChannel(command: string): Promise<{ channel: ClientChannel; exit: ExitStatus }> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new ChannelFailure('the connection is closed'));
      try {
        this.client.exec(command, (err, channel) => {
          if (err) return reject(new ChannelFailure(err.message));
          const exit: ExitStatus = { code: null };
          channel.on('exit', (code: number | null, signal?: string) => {
            exit.code = code;
            exit.signal = signal ?? undefined;
          });
          resolve({ channel, exit });
        });
      } catch (err) {
        reject(new ChannelFailure((err as Error).message));
      }
    });
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? EXEC_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const timedOut = () => failures.timeout(who(this.target), `\`${command.split('\n')[0]!.slice(0, 60)}\``, timeoutMs);
    const lane: Lane = options.report ? 'report' : 'command';
    await this.acquire(lane);
    try {
      // The deadline covers opening the channel too: on a connection whose peer vanished (its link
      // cut), the open request is never answered and keepalives take half a minute to notice.
      const opening = this.openChannel(command);
      let openTimer: NodeJS.Timeout | undefined;
      const { channel, exit } = await Promise.race([
        opening,
        new Promise<never>((_, reject) => (openTimer = setTimeout(() => reject(timedOut()), timeoutMs))),
      ]).catch((error) => {
        opening.then((late) => late.channel.close(), () => {});
        throw error;
      }).finally(() => clearTimeout(openTimer));
      return await new Promise<ExecResult>((resolve, reject) => {
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        const timer = setTimeout(() => {
          channel.signal('KILL');
          channel.close();
          reject(timedOut());
        }, Math.max(1, deadline - Date.now()));
        const unsubscribe = this.whenClosed(() => {
          clearTimeout(timer);
          reject(failures.hostUnreachable(where(this.target), 'the SSH connection was lost while a command ran'));
        });
        channel.on('data', (d: Buffer) => out.push(d));
        channel.stderr.on('data', (d: Buffer) => err.push(d));
        channel.on('close', () => {
          clearTimeout(timer);
          unsubscribe();
          resolve({ code: exit.code, signal: exit.signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
        });
        channel.end(options.input ?? undefined);
      });
    } finally {
      this.release(lane);
    }
  }

  /**
   * Runs `command` with a stream for its stdin (the caller writes and ends it); `done` settles when
   * the command exits.
   */
  async execWritable(command: string): Promise<{ stdin: Duplex; done: Promise<ExecResult> }> {
    await this.acquire('command');
    let channel: ClientChannel;
    let exit: ExitStatus;
    try {
      ({ channel, exit } = await this.openChannel(command));
    } catch (err) {
      this.release('command');
      throw err;
    }
    const done = new Promise<ExecResult>((resolve, reject) => {
      const out: Buffer[] = [];
      const errs: Buffer[] = [];
      const unsubscribe = this.whenClosed(() => reject(failures.hostUnreachable(where(this.target), 'the SSH connection was lost while a command ran')));
      channel.on('data', (d: Buffer) => out.push(d));
      channel.stderr.on('data', (d: Buffer) => errs.push(d));
      channel.on('close', () => {
        unsubscribe();
        resolve({ code: exit.code, signal: exit.signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errs).toString('utf8') });
      });
    }).finally(() => this.release('command'));
    done.catch(() => {});
    return { stdin: channel, done };
  }
}

/** The command never started (the channel could not open): safe to retry on a new connection. */
export class ChannelFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChannelFailure';
  }
}

export async function connect(
  target: SshTarget,
  auth: SshAuth,
  knownHosts: KnownHosts,
  mode: PinMode,
  timeoutMs = CONNECT_TIMEOUT_MS,
): Promise<SshConnection> {
  const how = 'password' in auth ? 'password' : 'key';
  const client = new Client();
  let offered: string | undefined;
  let mismatch: CommandFailure | undefined;
  const pinned = knownHosts.get(target);
  const config: ConnectConfig = {
    host: target.address,
    port: target.port,
    username: target.username,
    readyTimeout: timeoutMs,
    keepaliveInterval: 10_000,
    keepaliveCountMax: 3,
    // Only the given credential: no agent forwarding, no keyboard-interactive prompts.
    tryKeyboard: false,
    hostVerifier: (key: Buffer) => {
      offered = fingerprint(key);
      if (mode === 'verify' && pinned && pinned !== offered) {
        mismatch = failures.hostKeyMismatch(where(target), pinned, offered);
        return false;
      }
      return true;
    },
    ...('password' in auth ? { password: auth.password } : { privateKey: auth.privateKey }),
  };
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      client.removeListener('ready', onReady);
      client.end();
      reject(mismatch ?? connectFailure(err, target, how));
    };
    const onReady = () => {
      client.removeListener('error', onError);
      resolve();
    };
    client.once('ready', onReady);
    client.once('error', onError);
    client.connect(config);
    // Without it every SSH packet written in two parts waits out the host's delayed ACK (Nagle):
    // ~40 ms per channel open or request instead of ~1 ms.
    client.setNoDelay(true);
  });
  const connection = new SshConnection(target, client, offered!);
  if (mode === 'learn' || !pinned) await knownHosts.set(target, offered!);
  return connection;
}

/** One key-authenticated connection per host, opened on first use and reused. */
export class SshPool {
  private readonly privateKey: string;
  readonly knownHosts: KnownHosts;
  private readonly connections = new Map<string, Promise<SshConnection>>();

  constructor(privateKey: string, knownHosts: KnownHosts) {
    this.privateKey = privateKey;
    this.knownHosts = knownHosts;
  }

  private key(target: SshTarget) {
    return `${target.username}@${target.address}:${target.port}`;
  }

  /** The open connection to `target`, or a new one. */
  async get(target: SshTarget, mode: PinMode = 'verify'): Promise<SshConnection> {
    const k = this.key(target);
    const existing = this.connections.get(k);
    if (existing) {
      const c = await existing.catch(() => undefined);
      if (c?.isOpen) return c;
      if (this.connections.get(k) === existing) this.connections.delete(k);
    }
    const opening = connect(target, { privateKey: this.privateKey }, this.knownHosts, mode);
    this.connections.set(k, opening);
    opening.then(
      (c) => c.whenClosed(() => this.connections.get(k) === opening && this.connections.delete(k)),
      () => this.connections.get(k) === opening && this.connections.delete(k),
    );
    return await opening;
  }

  /** Runs a command on `target`; a stale connection is replaced once, before the command starts. */
  async exec(target: SshTarget, command: string, options?: ExecOptions): Promise<ExecResult> {
    const connection = await this.get(target);
    try {
      return await connection.exec(command, options);
    } catch (err) {
      if (!(err instanceof ChannelFailure)) throw err;
      this.drop(target);
      return await (await this.get(target)).exec(command, options);
    }
  }

  /** Stops using the connection to `target` (the next use reconnects); it ends when its channels are done. */
  drop(target: SshTarget) {
    const k = this.key(target);
    const existing = this.connections.get(k);
    this.connections.delete(k);
    existing?.then((c) => c.retire(), () => {});
  }

  get size(): number {
    return this.connections.size;
  }

  async closeAll() {
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(all.map((p) => p.then((c) => c.end(), () => {})));
  }
}
