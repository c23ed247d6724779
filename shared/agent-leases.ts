// Agent high availability: several agents may serve one zone, and each host is driven by exactly one
// of them at a time, under a lease. An agent's lease is one expiry time on its record, renewed every
// quarter of agent.lease.seconds (POST /agent/v1/lease); a host's holder is its `agentId`, with an
// epoch (`leaseEpoch`) that every command for the host carries. When a live agent renews, the hosts
// of its zone whose holder's lease lapsed (or who is revoked or gone) pass to it, one conditional
// transaction each, with the epoch raised by one, and each transfer is recorded as an event.
//
// The epoch is what keeps a revived old agent off a host it lost: the new holder raises the host's
// fence file to its epoch before it acts, and the old agent, checking the fence before it acts,
// finds a newer epoch there and refuses (agent/fence.ts). The gateway refuses its results as well.
//
// An agent that never renewed (one from before leases, or a test playing an agent) holds its hosts
// as before: a lease it never took cannot lapse.
import { TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from './aws.ts';
import { systemActor } from './bootstrap.ts';
import { getAgent, listAgentRecords, type Agent } from './db/agents.ts';
import { recordEvent } from './db/events.ts';
import { hostKey, listHostRecords, type Host } from './db/hosts.ts';
import { isConditionFailure, tableName } from './db/items.ts';
import { loadSettings } from './settings.ts';

/** Mold's own event type: a host passed from one agent to another. */
export const LEASE_TRANSFER_EVENT = 'AGENT.LEASE.TRANSFER';

export interface LeaseTiming {
  leaseSeconds: number;
  renewSeconds: number;
}

/** An agent renews four times per lease: one lost renewal does not cost it its hosts. */
export function leaseTiming(leaseSeconds: number): LeaseTiming {
  return { leaseSeconds, renewSeconds: Math.max(1, leaseSeconds / 4) };
}

export async function loadLeaseTiming(): Promise<LeaseTiming> {
  return leaseTiming((await loadSettings()).number('agent.lease.seconds'));
}

/** Holds its lease now: Enabled and renewed within the lease (or never took one: see above). */
export function holdsLease(agent: Pick<Agent, 'state' | 'leaseExpires'>, now: number): boolean {
  if (agent.state !== 'Enabled') return false;
  return agent.leaseExpires === undefined || agent.leaseExpires > now;
}

/** Renewing now: Enabled and renewed within the lease (an agent that never renewed is not). */
export function renewing(agent: Pick<Agent, 'state' | 'leaseExpires'>, now: number): boolean {
  return agent.state === 'Enabled' && agent.leaseExpires !== undefined && agent.leaseExpires > now;
}

export interface Takeover {
  hostId: string;
  hostName: string;
  from: string;
  fromEpoch: number;
  epoch: number;
  reason: 'its lease lapsed' | 'it was revoked' | 'it no longer exists';
}

/**
 * The hosts `claimer` takes over now: those of its zone held by an agent that no longer holds its
 * lease. Pure: the caller reads the records and acts conditionally.
 */
export function decideTakeovers(claimer: Agent, agents: Agent[], hosts: Host[], now: number): Takeover[] {
  if (!renewing(claimer, now)) return [];
  const byId = new Map(agents.map((agent) => [agent.id, agent]));
  const takeovers: Takeover[] = [];
  for (const host of hosts) {
    // A host never added through an agent (a seeded record) has nobody to hand it over.
    if (!host.agentId || host.agentId === claimer.id || host.zoneId !== claimer.zoneId || host.status === 'Removed') continue;
    const holder = byId.get(host.agentId);
    if (holder && holdsLease(holder, now)) continue;
    const fromEpoch = host.leaseEpoch ?? 0;
    takeovers.push({
      hostId: host.id,
      hostName: host.name,
      from: host.agentId,
      fromEpoch,
      epoch: fromEpoch + 1,
      reason: !holder ? 'it no longer exists' : holder.state !== 'Enabled' ? 'it was revoked' : 'its lease lapsed',
    });
  }
  return takeovers;
}

/** Extends the agent's lease; false when it is not Enabled (revoked meanwhile). */
export async function renewAgentLease(agentId: string, leaseSeconds: number, now = Date.now()): Promise<boolean> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: { pk: `AGENT#${agentId}`, sk: 'AGENT' },
        UpdateExpression: 'SET leaseExpires = :expires',
        ConditionExpression: 'attribute_exists(pk) AND #state = :enabled',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':expires': now + leaseSeconds * 1000, ':enabled': 'Enabled' },
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

/**
 * Moves a host to `to` if it is still where `takeover` found it and its old holder still has no
 * lease (both checked in one transaction): of two agents claiming one host, one wins.
 */
async function transfer(takeover: Takeover, to: string, now: number): Promise<boolean> {
  const holderCheck = {
    TableName: tableName(),
    Key: { pk: `AGENT#${takeover.from}`, sk: 'AGENT' },
    ConditionExpression: 'attribute_not_exists(pk) OR #state <> :enabled OR leaseExpires < :now',
    ExpressionAttributeNames: { '#state': 'state' },
    ExpressionAttributeValues: { ':enabled': 'Enabled', ':now': now },
  };
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          { ConditionCheck: holderCheck },
          {
            Update: {
              TableName: tableName(),
              Key: hostKey(takeover.hostId),
              UpdateExpression: 'SET agentId = :to, leaseEpoch = :epoch',
              ConditionExpression: `agentId = :from AND ${takeover.fromEpoch === 0 ? '(attribute_not_exists(leaseEpoch) OR leaseEpoch = :old)' : 'leaseEpoch = :old'}`,
              ExpressionAttributeValues: { ':to': to, ':epoch': takeover.epoch, ':from': takeover.from, ':old': takeover.fromEpoch },
            },
          },
        ],
      }),
    );
    return true;
  } catch (error) {
    if ((error as Error).name === 'TransactionCanceledException' || isConditionFailure(error)) return false;
    throw error;
  }
}

export interface Renewal extends LeaseTiming {
  /** The hosts the agent holds after this renewal, with their epochs. */
  hosts: Array<{ hostId: string; epoch: number }>;
  taken: Takeover[];
  /** The zone's agents as read (for the gateway's rerouting of orphaned commands). */
  agents: Agent[];
}

/** One renewal: extend the lease, take over orphaned hosts, answer what the agent holds. */
export async function renewLease(agentId: string, now = Date.now()): Promise<Renewal | undefined> {
  const timing = await loadLeaseTiming();
  if (!(await renewAgentLease(agentId, timing.leaseSeconds, now))) return undefined;
  const claimer = await getAgent(agentId);
  if (!claimer) return undefined;
  const [agents, hosts] = await Promise.all([listAgentRecords({ zoneId: claimer.zoneId }), listHostRecords({ zoneId: claimer.zoneId })]);
  const taken: Takeover[] = [];
  for (const takeover of decideTakeovers(claimer, agents, hosts, now)) {
    if (!(await transfer(takeover, claimer.id, now))) continue;
    taken.push(takeover);
    const host = hosts.find((h) => h.id === takeover.hostId)!;
    host.agentId = claimer.id;
    host.leaseEpoch = takeover.epoch;
    const fromName = agents.find((a) => a.id === takeover.from)?.name ?? takeover.from;
    await recordEvent(await systemActor(), {
      type: LEASE_TRANSFER_EVENT,
      level: 'WARN',
      description: `Host ${takeover.hostName} (${takeover.hostId}) taken over by agent ${claimer.name} with lease epoch ${takeover.epoch} from agent ${fromName}: ${takeover.reason}`,
      resourceId: takeover.hostId,
      resourceType: 'Host',
    });
  }
  return {
    ...timing,
    hosts: hosts.filter((h) => h.agentId === claimer.id && h.status !== 'Removed').map((h) => ({ hostId: h.id, epoch: h.leaseEpoch ?? 0 })),
    taken,
    agents,
  };
}

/**
 * Whether a command of `agentId` under `epoch` may still be answered for the host: it holds the host
 * under that epoch or a newer one of its own. A host that is gone is no one's to guard.
 */
export function leaseStillHeld(host: Pick<Host, 'agentId' | 'leaseEpoch'> | undefined, agentId: string, epoch: number): boolean {
  if (!host) return true;
  return host.agentId === agentId && (host.leaseEpoch ?? 0) <= epoch;
}
