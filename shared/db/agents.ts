// On-prem agents, their enrolment tokens and the nonces of their signed requests.
//
//   AGENT#<id> / AGENT                 the agent (gsi1: AGENTS, <zoneId>/<created>#<id>)
//   AGENTTOKEN#<sha256> / TOKEN        an enrolment token, keyed by its digest: the token itself is
//                                      never stored (gsi1: AGENTTOKENS, <id>, to find it by id)
//   AGENTNONCE#<agentId>#<nonce> / NONCE  a nonce already used; kept (TTL) past the signing window
import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createHash, randomUUID } from 'node:crypto';
import { randomCredential } from '../crypto/credentials.ts';
import { dynamo } from '../aws.ts';
import { CLOCK_SKEW_MS } from '../agent/signing.ts';
import type { Actor } from './events.ts';
import { addZoneContentCheck, contentsOf, type Zone } from './infrastructure.ts';
import { getItem, isConditionFailure, queryIndex, tableName, withoutKeys } from './items.ts';
import { cloudstackDate } from './jobs.ts';

export type AgentState = 'Enabled' | 'Revoked';

export interface Agent {
  id: string;
  name: string;
  zoneId: string;
  state: AgentState;
  /** PEM, signed by Mold's CA. */
  certificate: string;
  /** Hex. */
  certificateSerial: string;
  certificateExpires: string;
  /** authorized_keys form. */
  sshPublicKey: string;
  queueUrl: string;
  /** The queue's ARN, which the credentials' session policy names. */
  queueArn?: string;
  version: string;
  created: string;
  lastseen?: string;
  ipaddress?: string;
  revoked?: string;
  /** Epoch milliseconds until which it holds its hosts (renewed through /agent/v1/lease); absent until its first renewal. */
  leaseExpires?: number;
  /** Where its console proxy is reached (ws:// or wss://), as its last report said; none without one. */
  consoleUrl?: string;
}

const agentKey = (id: string) => ({ pk: `AGENT#${id}`, sk: 'AGENT' });
const agentIndex = (agent: Pick<Agent, 'id' | 'zoneId' | 'created'>) => ({ gsi1pk: 'AGENTS', gsi1sk: `${agent.zoneId}/${agent.created}#${agent.id}` });

export const getAgent = (id: string) => getItem<Agent>(agentKey(id).pk, 'AGENT');

/** Agents of one zone or all, oldest first. */
export function listAgentRecords(where: { zoneId?: string } = {}): Promise<Agent[]> {
  return queryIndex<Agent>({ index: 'gsi1', partition: 'AGENTS', prefix: where.zoneId ? `${where.zoneId}/` : undefined });
}

/**
 * An Enabled agent of the zone: one renewing its lease first (several may serve a zone), then the most
 * recently seen (one that never reported comes last).
 */
export async function agentForZone(zoneId: string, now = Date.now()): Promise<Agent | undefined> {
  const enabled = (await listAgentRecords({ zoneId })).filter((agent) => agent.state === 'Enabled');
  const live = (agent: Agent) => (agent.leaseExpires !== undefined && agent.leaseExpires > now ? 1 : 0);
  enabled.sort((a, b) => live(b) - live(a) || (b.lastseen ?? '').localeCompare(a.lastseen ?? '') || b.created.localeCompare(a.created));
  return enabled[0];
}

// A zone still served by an agent is not empty: revoke the agent first.
addZoneContentCheck(async (zone: Zone) =>
  contentsOf('there are agents in this zone', (await listAgentRecords({ zoneId: zone.id })).filter((a) => a.state === 'Enabled').map((a) => a.name)),
);

export type NewAgent = Omit<Agent, 'state' | 'created' | 'lastseen' | 'revoked'> & { created?: string };

export async function createAgentRecord(fields: NewAgent): Promise<Agent> {
  const agent: Agent = { ...fields, state: 'Enabled', created: fields.created ?? cloudstackDate() };
  await dynamo().send(
    new PutCommand({
      TableName: tableName(),
      Item: { ...agentKey(agent.id), ...agentIndex(agent), ...agent },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  return agent;
}

/** Revokes an Enabled agent; undefined when there is none (absent or already revoked). */
export async function revokeAgentRecord(id: string): Promise<Agent | undefined> {
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: agentKey(id),
        UpdateExpression: 'SET #state = :revoked, revoked = :now',
        ConditionExpression: 'attribute_exists(pk) AND #state = :enabled',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':revoked': 'Revoked', ':enabled': 'Enabled', ':now': cloudstackDate() },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return Attributes ? withoutKeys<Agent>(Attributes) : undefined;
  } catch (error) {
    if (isConditionFailure(error)) return undefined;
    throw error;
  }
}

/** Points the agent at its queue (the local runtime's emulator gives queues new URLs on each start). */
export async function setAgentQueue(id: string, queueUrl: string, queueArn: string): Promise<void> {
  await dynamo().send(
    new UpdateCommand({
      TableName: tableName(),
      Key: agentKey(id),
      UpdateExpression: 'SET queueUrl = :url, queueArn = :arn',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: { ':url': queueUrl, ':arn': queueArn },
    }),
  );
}

/** Records that the agent was heard from (its reports): lastseen and the given fields; a field given as null is removed. */
export async function touchAgent(id: string, fields: { version?: string; ipaddress?: string; consoleUrl?: string | null } = {}): Promise<void> {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = { ':now': cloudstackDate() };
  const sets = ['lastseen = :now'];
  const removes: string[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    names[`#${name}`] = name;
    if (value === null) {
      removes.push(`#${name}`);
      continue;
    }
    values[`:${name}`] = value;
    sets.push(`#${name} = :${name}`);
  }
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: agentKey(id),
        UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
        ConditionExpression: 'attribute_exists(pk)',
        ...(Object.keys(names).length ? { ExpressionAttributeNames: names } : {}),
        ExpressionAttributeValues: values,
      }),
    );
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
  }
}

// ---- enrolment tokens ----

export interface EnrollmentToken {
  id: string;
  zoneId: string;
  created: string;
  expires: string;
  /** Epoch milliseconds of `expires`, for the redemption's condition. */
  validUntil: number;
  /** SHA-256 of the token, hex: the record's key. */
  tokenDigest: string;
  used?: string;
  /** The agent that redeemed it. */
  agentId?: string;
  revoked?: string;
  /** Who created it: the agent's enrolment is recorded in their name. */
  actor?: Actor;
}

const tokenDigest = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');
const tokenKey = (digest: string) => ({ pk: `AGENTTOKEN#${digest}`, sk: 'TOKEN' });

/** Default and bounds of a token's validity, in minutes. */
export const TOKEN_VALIDITY = { default: 60, min: 1, max: 7 * 24 * 60 } as const;

/**
 * Creates a single-use token; the token itself is returned here only. `expires` and `token` may be
 * given directly (tests seed expired tokens, and tokens as older releases drew them).
 */
export async function createEnrollmentToken(fields: { zoneId: string; validityMinutes?: number; expires?: Date; token?: string; actor?: Actor }): Promise<{ token: string; record: EnrollmentToken }> {
  const now = new Date();
  const expires = fields.expires ?? new Date(now.getTime() + (fields.validityMinutes ?? TOKEN_VALIDITY.default) * 60_000);
  const token = fields.token ?? randomCredential(32);
  const record: EnrollmentToken = {
    id: randomUUID(),
    tokenDigest: tokenDigest(token),
    zoneId: fields.zoneId,
    created: cloudstackDate(now),
    expires: cloudstackDate(expires),
    validUntil: expires.getTime(),
    ...(fields.actor && { actor: fields.actor }),
  };
  await dynamo().send(
    new PutCommand({
      TableName: tableName(),
      Item: {
        ...tokenKey(record.tokenDigest),
        gsi1pk: 'AGENTTOKENS',
        gsi1sk: record.id,
        // Kept a week past expiry, so a late attempt is told "expired" rather than "unknown".
        expiresAt: Math.floor(expires.getTime() / 1000) + 7 * 86_400,
        ...record,
      },
    }),
  );
  return { token, record };
}

/** The token a secret stands for, whatever its state (undefined when it is unknown). */
export const peekEnrollmentToken = (token: string) => getItem<EnrollmentToken>(tokenKey(tokenDigest(token)).pk, 'TOKEN');

export async function findEnrollmentToken(id: string): Promise<EnrollmentToken | undefined> {
  const [record] = await queryIndex<EnrollmentToken>({ index: 'gsi1', partition: 'AGENTTOKENS', prefix: id });
  return record?.id === id ? record : undefined;
}

/** Revokes an unused token; false when there is no such unused, unrevoked token. */
export async function revokeEnrollmentToken(id: string): Promise<boolean> {
  const record = await findEnrollmentToken(id);
  if (!record) return false;
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: tokenKey(record.tokenDigest),
        UpdateExpression: 'SET revoked = :now',
        ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(used) AND attribute_not_exists(revoked)',
        ExpressionAttributeValues: { ':now': cloudstackDate() },
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

export type Redemption = { ok: true; token: EnrollmentToken } | { ok: false; reason: 'unknown' | 'used' | 'expired' | 'revoked' };

/**
 * Uses up a token, atomically: of two enrolments with the same token, one wins. The reason of a
 * refusal is read after the failed condition.
 */
export async function redeemEnrollmentToken(token: string, agentId: string, now = Date.now()): Promise<Redemption> {
  const key = tokenKey(tokenDigest(token));
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: key,
        UpdateExpression: 'SET used = :used, agentId = :agent',
        ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(used) AND attribute_not_exists(revoked) AND validUntil > :now',
        ExpressionAttributeValues: { ':used': cloudstackDate(new Date(now)), ':agent': agentId, ':now': now },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return { ok: true, token: withoutKeys<EnrollmentToken>(Attributes!) };
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    const record = await getItem<EnrollmentToken>(key.pk, key.sk);
    if (!record) return { ok: false, reason: 'unknown' };
    if (record.used) return { ok: false, reason: 'used' };
    if (record.revoked) return { ok: false, reason: 'revoked' };
    return { ok: false, reason: 'expired' };
  }
}

// ---- nonces of signed requests ----

/**
 * Uses up a nonce; false when it was used before (a replay). Kept past twice the signing window, after
 * which the timestamp check refuses the request anyway.
 */
export async function useNonce(agentId: string, nonce: string, now = Date.now()): Promise<boolean> {
  try {
    await dynamo().send(
      new PutCommand({
        TableName: tableName(),
        Item: { pk: `AGENTNONCE#${agentId}#${nonce}`, sk: 'NONCE', expiresAt: Math.ceil((now + 2 * CLOCK_SKEW_MS) / 1000) + 60 },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}
