// Out-of-band management through a BMC's Redfish service (upstream's RedfishClient and RedfishWrapper),
// spoken by the agent over HTTPS (it is on the BMCs' network). As upstream: the ComputerSystem is the
// first member of /redfish/v1/Systems/, its PowerState is read there, and a power action is a POST of
// ComputerSystem.Reset with upstream's ResetType for it. Unlike upstream, the configured port is used,
// a refused Reset that leaves the host as asked (a power-off of a host already off answered 409, as
// apache/cloudstack#13376) is a success, and the password is really changed on the BMC (its
// AccountService) before Mold stores it. The password travels only in the Authorization header: never
// in a URL, a log line or an error text.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIPv6 } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedfishOptions } from '../shared/agent/protocol.ts';
import { CommandFailure } from './errors.ts';
import type { BmcPowerState, PowerAction } from './oobm.ts';

export interface RedfishBmc {
  address: string;
  port: number;
  username: string;
  /** Opened from the sealed secret by the caller. */
  password: string;
}

/** Upstream's RedfishClient.RedfishResetCmd values Mold sends. */
export type ResetType = 'On' | 'GracefulShutdown' | 'PowerCycle' | 'ForceRestart';

export const SYSTEMS_PATH = '/redfish/v1/Systems/';
const ACCOUNTS_PATH = '/redfish/v1/AccountService/Accounts/';
/** Upstream's WAIT_FOR_REQUEST_RETRY: seconds between attempts after a request got no answer. */
const RETRY_WAIT_MS = 2000;

/**
 * Upstream's RedfishWrapper.parsePowerCommand. OFF is a graceful shutdown there too, not ForceOff:
 * Mold keeps upstream's mapping so a BMC behaves under Mold as it did under CloudStack.
 */
export function resetTypeOf(action: Exclude<PowerAction, 'STATUS'>): ResetType {
  switch (action) {
    case 'ON':
      return 'On';
    case 'OFF':
    case 'SOFT':
      return 'GracefulShutdown';
    case 'CYCLE':
      return 'PowerCycle';
    case 'RESET':
      return 'ForceRestart';
  }
}

/** The service's base URL: redfish.use.https picks the scheme; an IPv6 address goes in brackets. */
export function baseUrl(bmc: Pick<RedfishBmc, 'address' | 'port'>, useHttps: boolean): string {
  const host = isIPv6(bmc.address) ? `[${bmc.address}]` : bmc.address;
  return `${useHttps ? 'https' : 'http'}://${host}:${bmc.port}`;
}

/**
 * The ComputerSystem's path from the Systems collection: its first member's @odata.id (upstream takes
 * that id's last segment and builds the path again; the same resource). Undefined when there is none.
 */
export function systemPathOf(collection: unknown): string | undefined {
  const members = (collection as { Members?: unknown } | null)?.Members;
  const id = Array.isArray(members) ? (members[0] as { '@odata.id'?: unknown } | undefined)?.['@odata.id'] : undefined;
  if (typeof id !== 'string') return undefined;
  const last = id.split('/').filter(Boolean).pop();
  return last ? SYSTEMS_PATH + last : undefined;
}

/** Upstream's parseRedfishPowerStateToOutOfBand: PoweringOn counts as On, PoweringOff as Off. */
export function powerStateOf(system: unknown): BmcPowerState {
  const state = (system as { PowerState?: unknown } | null)?.PowerState;
  if (state === 'On' || state === 'PoweringOn') return 'On';
  if (state === 'Off' || state === 'PoweringOff') return 'Off';
  return 'Unknown';
}

/** Whether `action` asked for what `powerState` already is: a BMC that refused it did no harm. */
export function alreadyDone(action: PowerAction, powerState: BmcPowerState): boolean {
  return ((action === 'OFF' || action === 'SOFT') && powerState === 'Off') || (action === 'ON' && powerState === 'On');
}

/** A Redfish error body's own words ({"error": {"message", "@Message.ExtendedInfo": [{"Message"}]}}). */
export function redfishMessage(body: unknown): string {
  const error = (body as { error?: { message?: unknown; '@Message.ExtendedInfo'?: Array<{ Message?: unknown }> } } | null)?.error;
  if (!error) return '';
  const extended = error['@Message.ExtendedInfo']?.map((m) => m?.Message).filter((m): m is string => typeof m === 'string') ?? [];
  const words = [...extended, ...(typeof error.message === 'string' ? [error.message] : [])];
  return [...new Set(words)].join(' ').slice(0, 400);
}

/** How a request failed: the BMC refused the credentials, did not answer, or answered something else. */
export function statusKind(status: number): 'ok' | 'auth' | 'failed' {
  if (status >= 200 && status < 300) return 'ok';
  return status === 401 || status === 403 ? 'auth' : 'failed';
}

/** Node's codes for a certificate that does not verify: not worth a retry, and named as such. */
const CERT_ERRORS = /^(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|CERT_UNTRUSTED|ERR_TLS_CERT_ALTNAME_INVALID|CERT_SIGNATURE_FAILURE)$/;

interface Answer {
  status: number;
  body: unknown;
}

/** A failed exchange, before it is put in an action's words. */
class RedfishError extends Error {
  readonly kind: 'auth' | 'unreachable' | 'certificate' | 'failed';
  constructor(kind: RedfishError['kind'], message: string) {
    super(message);
    this.kind = kind;
  }
}

interface Call {
  bmc: RedfishBmc;
  options: RedfishOptions;
  deadline: number;
  signal?: AbortSignal;
}

function once(call: Call, method: string, path: string, payload?: unknown): Promise<Answer> {
  const url = baseUrl(call.bmc, call.options.useHttps) + path;
  const data = payload === undefined ? undefined : JSON.stringify(payload);
  const timeout = AbortSignal.timeout(Math.max(1, call.deadline - Date.now()));
  const signal = call.signal ? AbortSignal.any([call.signal, timeout]) : timeout;
  return new Promise((resolve, reject) => {
    const req = (call.options.useHttps ? httpsRequest : httpRequest)(
      url,
      {
        method,
        signal,
        // One connection per request: a BMC's service is slow to reuse one, and a dead one must not linger.
        agent: false,
        ...(call.options.useHttps && { rejectUnauthorized: !call.options.ignoreSsl }),
        headers: {
          accept: 'application/json',
          authorization: `Basic ${Buffer.from(`${call.bmc.username}:${call.bmc.password}`).toString('base64')}`,
          ...(data !== undefined && { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }),
        },
      },
      (res: IncomingMessage) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (text.length < 1_000_000) text += chunk;
        });
        res.on('end', () => {
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/**
 * One request, tried again redfish.retries times (2 s apart) when it got no HTTP answer, as upstream's
 * retryHttpRequest; a certificate that does not verify is not tried again.
 */
async function exchange(call: Call, method: string, path: string, payload?: unknown): Promise<Answer> {
  const url = baseUrl(call.bmc, call.options.useHttps) + path;
  for (let attempt = 0; ; attempt++) {
    try {
      return await once(call, method, path, payload);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (CERT_ERRORS.test(code)) {
        throw new RedfishError(
          'certificate',
          `the BMC's certificate at ${url} is not trusted (${code}: ${(err as Error).message.split(';')[0]}); give the agent the CA that issued it (NODE_EXTRA_CA_CERTS) or set redfish.ignore.ssl to true`,
        );
      }
      const why = call.signal?.aborted ? 'the action was cancelled' : Date.now() >= call.deadline ? 'no answer before the action timeout' : `${code || (err as Error).name}: ${(err as Error).message}`;
      const last = attempt >= call.options.retries || call.signal?.aborted || Date.now() + RETRY_WAIT_MS >= call.deadline;
      if (last) {
        throw new RedfishError('unreachable', `Failed to execute HTTP ${method} request${attempt ? ` retry attempt ${attempt}/${call.options.retries}` : ''} [URL: ${url}] due to exception ${why}`);
      }
      await sleep(RETRY_WAIT_MS, undefined, { signal: call.signal }).catch(() => undefined);
    }
  }
}

/** An answer that is not the `expected` status, in upstream's words (and the BMC's own, when it gave some). */
function refused(call: Call, method: string, path: string, what: string, expected: string, answer: Answer): RedfishError {
  const url = baseUrl(call.bmc, call.options.useHttps) + path;
  const said = redfishMessage(answer.body);
  return new RedfishError(
    statusKind(answer.status) === 'auth' ? 'auth' : 'failed',
    `Failed to ${what} for host '${call.bmc.address}' with request '${method}: ${url}'. The expected HTTP status code is '${expected}' but it got '${answer.status}'.${said ? ` ${said}` : ''}`,
  );
}

async function systemPath(call: Call): Promise<string> {
  const answer = await exchange(call, 'GET', SYSTEMS_PATH);
  if (answer.status !== 200) throw refused(call, 'GET', SYSTEMS_PATH, 'get System ID', '200', answer);
  const path = systemPathOf(answer.body);
  if (!path) throw new RedfishError('failed', `The Redfish service at ${baseUrl(call.bmc, call.options.useHttps)} lists no ComputerSystem in ${SYSTEMS_PATH}`);
  return path;
}

async function readState(call: Call, path: string): Promise<BmcPowerState> {
  const answer = await exchange(call, 'GET', path);
  if (answer.status !== 200) throw refused(call, 'GET', path, 'get System power state', '200', answer);
  return powerStateOf(answer.body);
}

/** A RedfishError in the words of upstream's job errors for `action` (as agent/oobm.ts's for ipmitool). */
function asFailure(hostId: string, action: string, err: unknown): CommandFailure {
  if (!(err instanceof RedfishError)) return new CommandFailure('OobmActionFailed', `Out-of-band Management action (${action}) on host (${hostId}) failed with error: ${(err as Error).message}`);
  if (err.kind === 'auth') return new CommandFailure('OobmAuthError', `Out-of-band Management action (${action}) on host (${hostId}) failed due to authentication error: ${err.message} Please check configured credentials.`);
  return new CommandFailure(err.kind === 'unreachable' ? 'OobmUnreachable' : 'OobmActionFailed', `Out-of-band Management action (${action}) on host (${hostId}) failed with error: ${err.message}`);
}

/**
 * Runs one power action and reads the state afterwards. The result is the HTTP status of the Reset
 * (or of the read, for STATUS), as upstream's driver answers "200".
 */
export async function redfishPowerAction(hostId: string, bmc: RedfishBmc, options: RedfishOptions, action: PowerAction, timeoutSeconds: number, signal?: AbortSignal) {
  const call: Call = { bmc, options, deadline: Date.now() + timeoutSeconds * 1000, ...(signal && { signal }) };
  try {
    const system = await systemPath(call);
    if (action === 'STATUS') return { action, powerState: await readState(call, system), result: '200' };
    const resetPath = `${system}/Actions/ComputerSystem.Reset`;
    const resetType = resetTypeOf(action);
    const answer = await exchange(call, 'POST', resetPath, { ResetType: resetType });
    const powerState = await readState(call, system);
    if (statusKind(answer.status) === 'ok') return { action, powerState, result: String(answer.status) };
    // A BMC that refuses to switch off a host that is off (409 on many) left it as asked.
    if (statusKind(answer.status) === 'failed' && alreadyDone(action, powerState)) return { action, powerState, result: `${answer.status}: already ${powerState}` };
    throw refused(call, 'POST', resetPath, `execute ComputerSystem.Reset (${resetType})`, '2XX', answer);
  } catch (err) {
    throw asFailure(hostId, action, err);
  }
}

/** The power state only, for the background sync; never throws. */
export async function redfishReadPowerState(bmc: RedfishBmc, options: RedfishOptions, timeoutSeconds: number): Promise<{ powerState: BmcPowerState; authError?: boolean; error?: string }> {
  const call: Call = { bmc, options, deadline: Date.now() + timeoutSeconds * 1000 };
  try {
    return { powerState: await readState(call, await systemPath(call)) };
  } catch (err) {
    return { powerState: 'Unknown', ...(err instanceof RedfishError && err.kind === 'auth' && { authError: true }), error: (err as Error).message.slice(0, 1000) };
  }
}

/**
 * Sets the password of the BMC account named `bmc.username` (the AccountService's ManagerAccount whose
 * UserName it is), then proves a login with it.
 */
export async function redfishChangePassword(hostId: string, bmc: RedfishBmc, options: RedfishOptions, newPassword: string, timeoutSeconds: number, signal?: AbortSignal) {
  const call: Call = { bmc, options, deadline: Date.now() + timeoutSeconds * 1000, ...(signal && { signal }) };
  const failed = (why: string) => new CommandFailure('OobmActionFailed', `Failed to change out-of-band management password for host (${hostId}) with error: ${why}`);
  try {
    const listed = await exchange(call, 'GET', ACCOUNTS_PATH);
    if (listed.status !== 200) throw refused(call, 'GET', ACCOUNTS_PATH, 'list the BMC accounts', '200', listed);
    const members = ((listed.body as { Members?: Array<{ '@odata.id'?: unknown }> } | null)?.Members ?? []).map((m) => m?.['@odata.id']).filter((p): p is string => typeof p === 'string');
    let account: string | undefined;
    for (const path of members) {
      const read = await exchange(call, 'GET', path);
      if (read.status === 200 && (read.body as { UserName?: unknown } | null)?.UserName === bmc.username) {
        account = path;
        break;
      }
    }
    if (!account) throw failed(`the BMC has no account named ${bmc.username}`);
    const patched = await exchange(call, 'PATCH', account, { Password: newPassword });
    if (statusKind(patched.status) !== 'ok') throw refused(call, 'PATCH', account, 'set the account password', '2XX', patched);
    const check = await exchange({ ...call, bmc: { ...bmc, password: newPassword } }, 'GET', SYSTEMS_PATH);
    if (check.status !== 200) throw failed('the BMC took the new password but a login with it failed');
    return { changed: true as const };
  } catch (err) {
    if (err instanceof CommandFailure) throw err;
    const said = asFailure(hostId, 'CHANGE PASSWORD', err);
    throw new CommandFailure(said.name, `Failed to change out-of-band management password for host (${hostId}) with error: ${said.message}`);
  }
}
