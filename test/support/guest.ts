// Talking to a lab guest (test/lab/guest: the bootable template) from this machine, at its address on
// the lab network: its status page (hostname, boot id, uptime) and SSH as root. Only ever lab
// addresses, which exist inside this machine.
import { Client } from 'ssh2';
import { sleep, until } from './wait.ts';

export interface GuestStatus {
  hostname: string;
  bootId: string;
  uptime: number;
}

/** The guest's status page, or what kept it from answering (for a wait's "last seen"). */
export async function guestStatus(ip: string): Promise<GuestStatus | string> {
  try {
    const response = await fetch(`http://${ip}/cgi-bin/status`, { signal: AbortSignal.timeout(3_000) });
    if (!response.ok) return `HTTP ${response.status}`;
    return (await response.json()) as GuestStatus;
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? (error as Error).message;
  }
}

/**
 * Waits until the guest at `ip` answers and `check` holds. `within`: what a boot under software
 * emulation needs on a quiet machine (stretched by SLACK, as every wait of test/support/wait.ts).
 */
export async function waitForGuest(ip: string, what: string, check: (s: GuestStatus) => boolean = () => true, within = 60_000): Promise<GuestStatus> {
  const seen = await until(what, () => guestStatus(ip), (s) => typeof s !== 'string' && check(s), { within, every: 250 });
  return seen as GuestStatus;
}

export interface SshOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Logs in to the guest as root with `auth` (a private key, or a password) and runs `command`. */
export async function guestSsh(ip: string, auth: { privateKey: string } | { password: string }, command: string): Promise<SshOutcome> {
  const client = new Client();
  try {
    return await new Promise<SshOutcome>((resolve, reject) => {
      client.on('error', reject);
      client.on('ready', () => {
        client.exec(command, (err, stream) => {
          if (err) return reject(err);
          let stdout = '';
          let stderr = '';
          stream.on('data', (d: Buffer) => (stdout += d));
          stream.stderr.on('data', (d: Buffer) => (stderr += d));
          stream.on('close', (code: number | null) => resolve({ code, stdout, stderr }));
        });
      });
      // A guest's host key is new with each guest; nothing to pin it against.
      client.connect({ host: ip, port: 22, username: 'root', readyTimeout: 20_000, hostVerifier: () => true, tryKeyboard: 'password' in auth, ...auth });
    });
  } finally {
    client.end();
  }
}

/** How a login attempt ended: 'ok', or the error's level and message (e.g. "client-authentication: All configured authentication methods failed"). */
export async function sshLogin(ip: string, auth: { privateKey: string } | { password: string }): Promise<string> {
  try {
    await guestSsh(ip, auth, 'true');
    return 'ok';
  } catch (error) {
    const { level, message } = error as { level?: string; message: string };
    return `${level ?? 'error'}: ${message}`;
  }
}

/** Polls the guest's status page until stopped: every answer, and how many polls in a row failed at most. */
export function watchGuest(ip: string) {
  const answers: GuestStatus[] = [];
  const failures: string[] = [];
  let streak = 0;
  let longest = 0;
  let stop = false;
  const done = (async () => {
    while (!stop) {
      const s = await guestStatus(ip);
      if (typeof s === 'string') {
        failures.push(s);
        longest = Math.max(longest, ++streak);
      } else {
        answers.push(s);
        streak = 0;
      }
      await sleep(200);
    }
  })();
  return {
    answers,
    failures,
    async end() {
      stop = true;
      await done;
      return { answers, failures, longest };
    },
  };
}
