// Commands that wait on the queue of an agent that lost its hosts, moved to the agent that holds them
// now. Step Functions put each command on the queue of the host's agent when it was sent; when that
// agent dies (or is revoked) with commands on its queue or in its hands, the new holder gets them:
// each live agent's lease renewal drains the queues of the zone's agents that no longer hold a lease,
// and an agent handed a command for a host it does not hold hands it back (/handback). A moved
// command carries the host's current epoch and keeps its id and task token, so it runs once on the
// new holder (every command is safe to repeat; a copy is answered from the journal) and the waiting
// execution hears a heartbeat at once.
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { SendTaskHeartbeatCommand } from '@aws-sdk/client-sfn';
import { commandMessage, type CommandMessage } from '../../shared/agent/protocol.ts';
import { holdsLease, renewing } from '../../shared/agent-leases.ts';
import { sfn, sqs } from '../../shared/aws.ts';
import { getAgent, type Agent } from '../../shared/db/agents.ts';
import { getHost } from '../../shared/db/hosts.ts';
import { log } from '../../shared/log.ts';

/** A command left where it is is looked at again this soon (the next renewal of some live agent). */
const RECHECK_SECONDS = 5;

export type Rerouted = { moved: true; to: string } | { moved: false; reason: string };

function hostIdOf(message: CommandMessage): string | undefined {
  const host = (message.payload as { host?: { hostId?: unknown } } | undefined)?.host;
  return typeof host?.hostId === 'string' ? host.hostId : undefined;
}

/**
 * Puts `message` on the queue of the agent that holds its host now (for a host not in the inventory
 * yet, an addHost, on `fallback`'s), with the host's current epoch, and heartbeats its task. Not moved
 * when the holder is `owner` itself (the queue it sits on) or holds no lease.
 */
export async function reroute(message: CommandMessage, owner: string, fallback: Agent | undefined, now = Date.now()): Promise<Rerouted> {
  const hostId = hostIdOf(message);
  const host = hostId ? await getHost(hostId) : undefined;
  const target = host?.agentId ? await getAgent(host.agentId) : fallback;
  if (!target || !holdsLease(target, now)) return { moved: false, reason: 'no agent holds its host now' };
  if (target.id === owner) return { moved: false, reason: 'its queue is its host\'s holder\'s' };
  const payload = message.payload as Record<string, unknown>;
  const moved: CommandMessage = {
    ...message,
    payload: host && payload?.host ? { ...payload, host: { ...(payload.host as object), ...(host.leaseEpoch !== undefined && { epoch: host.leaseEpoch }) } } : payload,
  };
  await sqs().send(new SendMessageCommand({ QueueUrl: target.queueUrl, MessageBody: JSON.stringify(moved) }));
  await heartbeatTask(message.taskToken);
  log.info('command moved to the host\'s holder', { commandId: message.commandId, type: message.type, hostId, from: owner, to: target.id, epoch: host?.leaseEpoch });
  return { moved: true, to: target.id };
}

async function heartbeatTask(taskToken: string) {
  try {
    await sfn().send(new SendTaskHeartbeatCommand({ taskToken }));
  } catch (error) {
    // The task is over (answered, timed out): the moved copy is answered from a journal or ignored.
    log.info('task heartbeat refused', { error: (error as Error).name });
  }
}

/**
 * Drains the queues of the zone's agents that no longer hold a lease (lapsed or revoked; never one
 * that never took a lease): each command goes to its host's holder. One that cannot move yet (its
 * host not taken over) has its task heartbeat, so the execution keeps waiting, and is looked at
 * again soon.
 */
export async function drainOrphanedQueues(claimer: Agent, agents: Agent[], now = Date.now()): Promise<number> {
  let moved = 0;
  for (const agent of agents) {
    if (agent.id === claimer.id || holdsLease(agent, now) || !agent.queueUrl) continue;
    // An Enabled agent that never renewed holds its hosts (shared/agent-leases.ts); only a lapsed or revoked one is drained.
    if (agent.state === 'Enabled' && agent.leaseExpires === undefined) continue;
    for (let batch = 0; batch < 10; batch++) {
      const { Messages } = await sqs().send(
        new ReceiveMessageCommand({ QueueUrl: agent.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 30 }),
      );
      if (!Messages?.length) break;
      for (const m of Messages) {
        const parsed = commandMessage.safeParse(safeJson(m.Body));
        if (!parsed.success) continue;
        const outcome = await reroute(parsed.data, agent.id, renewing(claimer, now) ? claimer : undefined, now);
        if (outcome.moved) {
          moved++;
          await sqs().send(new DeleteMessageCommand({ QueueUrl: agent.queueUrl, ReceiptHandle: m.ReceiptHandle! }));
        } else {
          await heartbeatTask(parsed.data.taskToken);
          await sqs().send(new ChangeMessageVisibilityCommand({ QueueUrl: agent.queueUrl, ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: RECHECK_SECONDS }));
        }
      }
      if (Messages.length < 10) break;
    }
  }
  return moved;
}

function safeJson(text: string | undefined): unknown {
  try {
    return JSON.parse(text ?? '');
  } catch {
    return undefined;
  }
}
