// Requests from the agent to the gateway are signed with the agent's private key: the signature covers
// the method, the path, a timestamp, a single-use nonce and the body's digest, so a request can be
// neither altered nor replayed. The gateway verifies it with the agent's certificate; the nonce store
// (shared/db/agents.ts) and the time window are the gateway's part.
import { createHash, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';

export const SIGNATURE_HEADERS = {
  agent: 'x-mold-agent',
  date: 'x-mold-date',
  nonce: 'x-mold-nonce',
  signature: 'x-mold-signature',
} as const;

/** How far a request's timestamp may be from the gateway's clock. */
export const CLOCK_SKEW_MS = 5 * 60_000;

function canonical(method: string, path: string, date: string, nonce: string, body: string): string {
  const digest = createHash('sha256').update(body, 'utf8').digest('hex');
  return ['MOLD-AGENT-V1', method.toUpperCase(), path, date, nonce, digest].join('\n');
}

/** The headers that sign `body` for `method path` (path without query or host). */
export function signRequest(
  privateKeyPem: string,
  agentId: string,
  method: string,
  path: string,
  body: string,
  now = new Date(),
): Record<string, string> {
  const date = now.toISOString();
  const nonce = randomBytes(16).toString('hex');
  const signature = sign('sha256', Buffer.from(canonical(method, path, date, nonce, body)), privateKeyPem).toString('base64');
  return {
    [SIGNATURE_HEADERS.agent]: agentId,
    [SIGNATURE_HEADERS.date]: date,
    [SIGNATURE_HEADERS.nonce]: nonce,
    [SIGNATURE_HEADERS.signature]: signature,
  };
}

export type SignatureCheck =
  | { ok: true; agentId: string; nonce: string; date: Date }
  | { ok: false; reason: string };

/**
 * Checks the signature and the time window. The caller still has to find the agent's certificate
 * (`publicKey` gets the agent id) and use up the nonce.
 */
export async function verifyRequest(
  headers: Record<string, string | undefined>,
  method: string,
  path: string,
  body: string,
  publicKey: (agentId: string) => Promise<KeyObject | string | undefined>,
  now = Date.now(),
): Promise<SignatureCheck> {
  const agentId = headers[SIGNATURE_HEADERS.agent];
  const date = headers[SIGNATURE_HEADERS.date];
  const nonce = headers[SIGNATURE_HEADERS.nonce];
  const signature = headers[SIGNATURE_HEADERS.signature];
  if (!agentId || !date || !nonce || !signature) return { ok: false, reason: 'the request is not signed' };
  if (!/^[0-9a-f]{32}$/.test(nonce)) return { ok: false, reason: 'the nonce is malformed' };
  const at = new Date(date);
  if (Number.isNaN(at.getTime())) return { ok: false, reason: 'the timestamp is malformed' };
  if (Math.abs(now - at.getTime()) > CLOCK_SKEW_MS) return { ok: false, reason: 'the timestamp is outside the allowed window' };
  const key = await publicKey(agentId);
  if (!key) return { ok: false, reason: 'unknown agent' };
  const valid = verify(
    'sha256',
    Buffer.from(canonical(method, path, date, nonce, body)),
    typeof key === 'string' ? createPublicKey(key) : key,
    Buffer.from(signature, 'base64'),
  );
  return valid ? { ok: true, agentId, nonce, date: at } : { ok: false, reason: 'the signature does not match' };
}
