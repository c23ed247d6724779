// Out-of-band management through the real ipmitool, run by the agent (it is on the BMCs' network; the
// control plane never reaches a BMC); a BMC configured with driver redfish goes to agent/redfish.ts. The password is opened from its sealed form for one call and
// handed to ipmitool in IPMI_PASSWORD (-E), so it is never on a command line, in a log or a journal.
import { spawn } from 'node:child_process';
import type { IpmitoolOptions, OobmOptions } from '../shared/agent/protocol.ts';
import { CommandFailure } from './errors.ts';
import { redfishChangePassword, redfishPowerAction, redfishReadPowerState } from './redfish.ts';

export type PowerAction = 'ON' | 'OFF' | 'CYCLE' | 'RESET' | 'SOFT' | 'STATUS';
export type BmcPowerState = 'On' | 'Off' | 'Unknown';

interface Bmc {
  /** ipmitool when absent. */
  driver?: 'ipmitool' | 'redfish';
  address: string;
  port: number;
  username: string;
  /** Opened from the sealed secret by the caller. */
  password: string;
}

/**
 * ipmitool's connection arguments (no password: it is in the environment). -v makes it say why a
 * session failed (the RAKP messages that tell a refused password from a BMC that does not answer);
 * its chatter goes to stderr, the answers stay on stdout.
 */
export function ipmitoolArgs(bmc: Pick<Bmc, 'address' | 'port' | 'username'>, options: IpmitoolOptions): string[] {
  return [
    '-v',
    '-I',
    options.interface,
    ...(options.interface === 'lanplus' ? ['-C', String(options.cipherSuite)] : []),
    '-R',
    String(options.retries),
    '-H',
    bmc.address,
    '-p',
    String(bmc.port),
    '-U',
    bmc.username,
    '-E',
  ];
}

/**
 * How an ipmitool failure reads. RAKP errors are the BMC refusing the user or password; a session that
 * cannot be established without one is silence (upstream counts every failed session as an auth
 * error, which raises auth alerts for a BMC that is merely off the network).
 */
export function classifyFailure(stderr: string): 'auth' | 'unreachable' | 'other' {
  if (/RAKP \d+ (message indicates an error|HMAC is invalid)|unauthorized name|invalid (user|password)|password.*incorrect/i.test(stderr)) return 'auth';
  if (/Unable to establish|no response|Get Auth Capabilities error|Get Session Challenge command failed|timeout/i.test(stderr)) return 'unreachable';
  return 'other';
}

/** The power state in `chassis power status`'s answer ("Chassis Power is on"). */
export function parsePowerState(stdout: string): BmcPowerState {
  const m = /Chassis Power is (on|off)/i.exec(stdout);
  if (!m) return 'Unknown';
  return m[1]!.toLowerCase() === 'on' ? 'On' : 'Off';
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

function runIpmitool(bmc: Bmc, options: IpmitoolOptions, command: string[], timeoutMs: number, signal?: AbortSignal): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(options.path, [...ipmitoolArgs(bmc, options), ...command], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', IPMI_PASSWORD: bmc.password },
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const onAbort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      reject(new CommandFailure('OobmActionFailed', `ipmitool could not be run (${options.path}): ${err.message}; check outofbandmanagement.ipmitool.path`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** -v's chatter that says nothing about a failure. */
const CHATTER = /^(Loading IANA PEN Registry|Running Get VSO Capabilities|Invalid completion code received: Invalid command|Discovered IPMB address)/;

/** What ipmitool said about a failure, in a line or three. */
function saidOf(run: Run, lines = 3): string {
  const text = (run.stderr.trim() || run.stdout.trim())
    .split('\n')
    .map((line) => line.replace(/^>\s*/, '').trim())
    .filter((line) => line && !CHATTER.test(line));
  return text.slice(-lines).join('; ').slice(0, 600);
}

/** Upstream's job error texts for a failed action, with Mold's failure names. */
function failure(hostId: string, action: string, run: Run, timeoutMs: number): CommandFailure {
  const said = saidOf(run);
  if (run.timedOut) {
    return new CommandFailure('OobmUnreachable', `Out-of-band Management action (${action}) on host (${hostId}) failed with error: the BMC did not answer within ${Math.round(timeoutMs / 1000)} s${said ? ` (${said})` : ''}`);
  }
  const kind = classifyFailure(run.stderr);
  if (kind === 'auth') {
    return new CommandFailure('OobmAuthError', `Out-of-band Management action (${action}) on host (${hostId}) failed due to authentication error: ${said}. Please check configured credentials.`);
  }
  return new CommandFailure(kind === 'unreachable' ? 'OobmUnreachable' : 'OobmActionFailed', `Out-of-band Management action (${action}) on host (${hostId}) failed with error: ${said || `ipmitool exited ${run.code}`}`);
}

/**
 * Runs one power action and reads the state afterwards. OFF of a host already off and ON of one
 * already on succeed (ipmitool's chassis power commands are idempotent on every BMC seen; the state
 * read afterwards is the proof that matters to fencing).
 */
export async function powerAction(hostId: string, bmc: Bmc, options: OobmOptions, action: PowerAction, timeoutSeconds: number, signal?: AbortSignal) {
  if (bmc.driver === 'redfish') return await redfishPowerAction(hostId, bmc, options.redfish, action, timeoutSeconds, signal);
  const deadline = Date.now() + timeoutSeconds * 1000;
  const left = () => Math.max(1000, deadline - Date.now());
  let result = '';
  if (action !== 'STATUS') {
    const ran = await runIpmitool(bmc, options, ['chassis', 'power', action.toLowerCase()], left(), signal);
    if (ran.code !== 0 || ran.timedOut) throw failure(hostId, action, ran, timeoutSeconds * 1000);
    result = ran.stdout.trim();
  }
  const status = await runIpmitool(bmc, options, ['chassis', 'power', 'status'], left(), signal);
  if (status.code !== 0 || status.timedOut) throw failure(hostId, action, status, timeoutSeconds * 1000);
  const powerState = parsePowerState(status.stdout);
  return { action, powerState, result: action === 'STATUS' ? status.stdout.trim() : result };
}

/** The power state only, for the background sync; never throws. */
export async function readPowerState(bmc: Bmc, options: OobmOptions, timeoutSeconds: number): Promise<{ powerState: BmcPowerState; authError?: boolean; error?: string }> {
  if (bmc.driver === 'redfish') return await redfishReadPowerState(bmc, options.redfish, timeoutSeconds);
  try {
    const run = await runIpmitool(bmc, options, ['chassis', 'power', 'status'], timeoutSeconds * 1000);
    if (run.code === 0 && !run.timedOut) return { powerState: parsePowerState(run.stdout) };
    const said = saidOf(run, 2);
    return { powerState: 'Unknown', ...(classifyFailure(run.stderr) === 'auth' && { authError: true }), error: run.timedOut ? `no answer within ${timeoutSeconds} s` : said };
  } catch (err) {
    return { powerState: 'Unknown', error: (err as Error).message.slice(0, 500) };
  }
}

/** Sets the password of the BMC user `bmc.username` (its id from `user list`), then logs in with it. */
export async function changePassword(hostId: string, bmc: Bmc, options: OobmOptions, newPassword: string, timeoutSeconds: number, signal?: AbortSignal) {
  if (bmc.driver === 'redfish') return await redfishChangePassword(hostId, bmc, options.redfish, newPassword, timeoutSeconds, signal);
  const action = 'CHANGE PASSWORD';
  const deadline = Date.now() + timeoutSeconds * 1000;
  const left = () => Math.max(1000, deadline - Date.now());
  const listed = await runIpmitool(bmc, options, ['user', 'list', '1'], left(), signal);
  if (listed.code !== 0 || listed.timedOut) throw failure(hostId, action, listed, timeoutSeconds * 1000);
  // "ID  Name  Callin  Link Auth  IPMI Msg  Channel Priv Limit"
  const id = listed.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((fields) => /^\d+$/.test(fields[0] ?? '') && fields[1] === bmc.username)?.[0];
  if (!id) throw new CommandFailure('OobmActionFailed', `Failed to change out-of-band management password for host (${hostId}) with error: the BMC has no user named ${bmc.username}`);
  // ipmitool takes the new password only as an argument; it lives on this machine's process list for
  // the call's duration and nowhere else.
  const set = await runIpmitool(bmc, options, ['user', 'set', 'password', id, newPassword], left(), signal);
  if (set.code !== 0 || set.timedOut) {
    const failed = failure(hostId, action, set, timeoutSeconds * 1000);
    throw new CommandFailure(failed.name, `Failed to change out-of-band management password for host (${hostId}) with error: ${failed.message}`);
  }
  const check = await runIpmitool({ ...bmc, password: newPassword }, options, ['chassis', 'power', 'status'], left(), signal);
  if (check.code !== 0 || check.timedOut) {
    throw new CommandFailure('OobmActionFailed', `Failed to change out-of-band management password for host (${hostId}) with error: the BMC took the new password but a login with it failed`);
  }
  return { changed: true as const };
}
