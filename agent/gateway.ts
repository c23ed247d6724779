// The agent's calls to the gateway (/agent/v1/*): JSON POSTs, every one but /enrol signed with the
// agent's key (shared/agent/signing.ts). fetch keeps its connections alive, so a result costs one
// request on an open socket.
import { z } from 'zod';
import {
  credentialsResponse,
  enrolResponse,
  fleetResponse,
  GATEWAY_PATH,
  leaseResponse,
  reportResponse,
  resultResponse,
  type FleetResponse,
  type ReportRequest,
} from '../shared/agent/protocol.ts';
import { signRequest } from '../shared/agent/signing.ts';
import type { CommandMessage } from '../shared/agent/protocol.ts';

/** The host and lease epoch a command acted under: the gateway refuses its answer once the host is another agent's. */
export interface CommandLease {
  hostId: string;
  epoch: number;
}

/** A 409 from the gateway: the host of the command is held by another agent now. */
export const isStaleEpoch = (err: unknown) => err instanceof GatewayError && err.status === 409;

/** The gateway's base URL from the URL given at enrolment: the API's (…/client/api) or its origin. */
export function gatewayBase(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`The URL must be http or https, not ${u.protocol}`);
  let path = u.pathname.replace(/\/+$/, '');
  path = path.replace(/\/client\/api$/, '');
  path = path.replace(new RegExp(`${GATEWAY_PATH.replace(/\//g, '\\/')}$`), '');
  return `${u.origin}${path}${GATEWAY_PATH}`;
}

export class GatewayError extends Error {
  readonly status: number;
  readonly route: string;
  constructor(route: string, status: number, message: string) {
    super(message);
    this.name = 'GatewayError';
    this.route = route;
    this.status = status;
  }
  /** The gateway refused this agent (revoked): retrying cannot help. */
  get revoked(): boolean {
    return this.status === 403;
  }
}

const TIMEOUT_MS = 30_000;

async function post<S extends z.ZodType>(
  base: string,
  route: string,
  body: unknown,
  schema: S,
  sign?: { agentId: string; privateKeyPem: string },
): Promise<z.infer<S>> {
  const url = new URL(`${base}/${route}`);
  const text = JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (sign) Object.assign(headers, signRequest(sign.privateKeyPem, sign.agentId, 'POST', url.pathname, text));
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers, body: text, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new GatewayError(route, 0, `Cannot reach the gateway at ${url.origin}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const raw = await response.text();
  let json: unknown;
  try {
    json = raw ? JSON.parse(raw) : undefined;
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const reason = (json as { error?: unknown } | undefined)?.error;
    throw new GatewayError(route, response.status, `The gateway refused ${route} (HTTP ${response.status}): ${typeof reason === 'string' ? reason : raw.slice(0, 200)}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new GatewayError(route, response.status, `The gateway's answer to ${route} is malformed: ${parsed.error.message}`);
  return parsed.data;
}

export async function enrol(url: string, request: { token: string; csr: string; sshPublicKey: string; name?: string; version: string }) {
  return await post(gatewayBase(url), 'enrol', request, enrolResponse);
}

export interface Gateway {
  credentials(): Promise<z.infer<typeof credentialsResponse>>;
  result(
    body: { commandId: string; taskToken: string; lease?: CommandLease } & ({ ok: true; result: unknown } | { ok: false; failure: { error: string; cause: string } }),
  ): Promise<z.infer<typeof resultResponse>>;
  /** false when the task is already over (the control plane stopped waiting). */
  heartbeat(body: { commandId: string; taskToken: string; lease?: CommandLease }): Promise<boolean>;
  report(body: ReportRequest): Promise<z.infer<typeof reportResponse>>;
  /** Renews this agent's lease; answers the hosts it holds. */
  lease(): Promise<z.infer<typeof leaseResponse>>;
  /** Hands a command for a host this agent does not hold to the holder. */
  handback(body: { message: CommandMessage; reason: string }): Promise<{ moved: boolean }>;
  /** The agent's zone at a glance: its agents and hosts (mold-agent status). */
  fleet(): Promise<FleetResponse>;
}

export function gateway(url: string, agentId: string, privateKeyPem: string): Gateway {
  const base = gatewayBase(url);
  const sign = { agentId, privateKeyPem };
  return {
    credentials: () => post(base, 'credentials', {}, credentialsResponse, sign),
    result: (body) => post(base, 'results', body, resultResponse, sign),
    heartbeat: async (body) => {
      const answer = await post(base, 'heartbeat', body, z.unknown(), sign);
      return (answer as { accepted?: unknown } | undefined)?.accepted !== false;
    },
    report: (body) => post(base, 'report', body, reportResponse, sign),
    lease: () => post(base, 'lease', {}, leaseResponse, sign),
    handback: (body) => post(base, 'handback', body, z.object({ moved: z.boolean() }).loose(), sign),
    fleet: () => post(base, 'fleet', {}, fleetResponse, sign),
  };
}
