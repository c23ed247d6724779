// Console tokens: what createConsoleEndpoint hands a user and the agent's console proxy (agent/console.ts)
// accepts. The control plane signs one with Mold's CA key; the agent checks it with the CA certificate it
// got at enrolment, so the two share no secret and the agent needs no call back to verify.
//
// Format: `mc1.<payload>.<signature>`, both base64url (no padding). The payload is the JSON ticket below;
// the signature is RSASSA-PKCS1-v1_5 with SHA-256 by the CA key over the ASCII text `mc1.<payload>`
// (the version prefix is signed too, so a token cannot be re-read under another format).
import { createPrivateKey, randomBytes, sign, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { z } from 'zod';

export const CONSOLE_TOKEN_PREFIX = 'mc1';
/** No token outlives this, whatever console.token.validity says: a leaked URL stays dangerous briefly. */
export const MAX_CONSOLE_TOKEN_SECONDS = 3600;

export const consoleTicket = z.object({
  /** The VM (its uuid, also the libvirt domain's). */
  vm: z.string().min(1).max(64),
  /** The agent whose proxy may serve it. */
  agent: z.string().min(1).max(64),
  /** The KVM host's address, where the VM's VNC listens. */
  host: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65535),
  /** Expiry, seconds since the epoch. */
  exp: z.number().int().positive(),
  /** Random, base64url: makes each token unique, so the proxy can accept each once. */
  nonce: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
});
export type ConsoleTicket = z.infer<typeof consoleTicket>;

export type ConsoleTokenCheck = { ok: true; ticket: ConsoleTicket } | { ok: false; reason: string };

const keys = new Map<string, KeyObject>();
function cached(id: string, make: () => KeyObject): KeyObject {
  let k = keys.get(id);
  if (!k) {
    k = make();
    if (keys.size > 16) keys.clear();
    keys.set(id, k);
  }
  return k;
}
const privateKey = (pem: string) => cached(`key:${pem}`, () => createPrivateKey(pem));
const caPublicKey = (pem: string) => cached(`cert:${pem}`, () => new X509Certificate(pem).publicKey);

export const newNonce = () => randomBytes(18).toString('base64url');

/** A ticket for `vm` that expires `validitySeconds` from `now`. */
export function consoleTicketFor(
  target: { vmId: string; agentId: string; hostAddress: string; vncPort: number },
  validitySeconds: number,
  now = Date.now(),
): ConsoleTicket {
  const seconds = Math.min(Math.max(1, Math.floor(validitySeconds)), MAX_CONSOLE_TOKEN_SECONDS);
  return {
    vm: target.vmId,
    agent: target.agentId,
    host: target.hostAddress,
    port: target.vncPort,
    exp: Math.floor(now / 1000) + seconds,
    nonce: newNonce(),
  };
}

/** Signs the ticket with Mold's CA key (PEM, as shared/crypto/ca.ts keeps it). */
export function signConsoleToken(caPrivateKeyPem: string, ticket: ConsoleTicket): string {
  const body = `${CONSOLE_TOKEN_PREFIX}.${Buffer.from(JSON.stringify(consoleTicket.parse(ticket))).toString('base64url')}`;
  const signature = sign('sha256', Buffer.from(body), privateKey(caPrivateKeyPem));
  return `${body}.${signature.toString('base64url')}`;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Is the token signed by the CA of `caCertificatePem`, well formed and unexpired at `now`? With
 * `expect`, it must also name that VM / agent. The reasons are for logs, not for the client.
 */
export function verifyConsoleToken(
  caCertificatePem: string,
  token: string | null | undefined,
  options: { now?: number; expect?: { vmId?: string; agentId?: string } } = {},
): ConsoleTokenCheck {
  if (!token) return { ok: false, reason: 'no token' };
  if (token.length > 4096) return { ok: false, reason: 'the token is too long' };
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== CONSOLE_TOKEN_PREFIX || !B64URL.test(parts[1]!) || !B64URL.test(parts[2]!)) {
    return { ok: false, reason: 'not a console token' };
  }
  let signed = false;
  try {
    signed = verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), caPublicKey(caCertificatePem), Buffer.from(parts[2]!, 'base64url'));
  } catch {
    signed = false;
  }
  if (!signed) return { ok: false, reason: 'the signature is not Mold\'s CA\'s' };
  let ticket: ConsoleTicket;
  try {
    const parsed = consoleTicket.safeParse(JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')));
    if (!parsed.success) return { ok: false, reason: 'the token\'s content is malformed' };
    ticket = parsed.data;
  } catch {
    return { ok: false, reason: 'the token\'s content is malformed' };
  }
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  if (ticket.exp <= nowSeconds) return { ok: false, reason: 'the token has expired' };
  if (ticket.exp > nowSeconds + MAX_CONSOLE_TOKEN_SECONDS + 300) return { ok: false, reason: 'the token is valid for too long' };
  if (options.expect?.vmId !== undefined && ticket.vm !== options.expect.vmId) return { ok: false, reason: 'the token is for another VM' };
  if (options.expect?.agentId !== undefined && ticket.agent !== options.expect.agentId) return { ok: false, reason: 'the token is for another agent' };
  return { ok: true, ticket };
}
