// GET /health: whether the control plane can do its work, for monitors and load balancers. It reads
// the inventory table (one item by key) and asks SQS for each enabled agent's queue depth, each with
// a time limit, and answers 200 when both answered, 503 when either did not. Unauthenticated, so it
// says only which check failed and how long each took, never why (the log has the error).
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { sqs } from '../../shared/aws.ts';
import { getItem } from '../../shared/db/items.ts';
import { listAgentRecords } from '../../shared/db/agents.ts';
import { log } from '../../shared/log.ts';

/** How long a check may take before it counts as failed: well under a monitor's usual 5–10 s probe. */
export const CHECK_TIMEOUT_MS = 3_000;

export interface CheckResult {
  ok: boolean;
  ms: number;
}

export interface Health {
  status: 'ok' | 'failing';
  checks: { inventory: CheckResult; queues: CheckResult & { agents?: number; backlog?: number } };
}

/** Runs a check within CHECK_TIMEOUT_MS; what it found (`T`) joins its result when it passed. */
async function timed<T extends object>(name: string, check: () => Promise<T>): Promise<CheckResult | (CheckResult & T)> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const value = await Promise.race([
      check(),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS))),
    ]);
    return { ok: true, ms: Math.round(performance.now() - started), ...value };
  } catch (error) {
    log.warn('health check failed', { check: name, error: String(error) });
    return { ok: false, ms: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
  }
}

/** The queues of the enabled agents and the commands waiting on them, all told. */
async function queueBacklog(): Promise<{ agents: number; backlog: number }> {
  const agents = (await listAgentRecords()).filter((agent) => agent.state === 'Enabled' && agent.queueUrl);
  const depths = await Promise.all(
    agents.map(async (agent) => {
      const { Attributes } = await sqs().send(new GetQueueAttributesCommand({ QueueUrl: agent.queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
      return Number(Attributes?.ApproximateNumberOfMessages ?? 0);
    }),
  );
  return { agents: agents.length, backlog: depths.reduce((sum, n) => sum + n, 0) };
}

export async function checkHealth(): Promise<Health> {
  const [inventory, queues] = await Promise.all([timed('inventory', async () => (await getItem('HEALTH', 'PROBE'), {})), timed('queues', queueBacklog)]);
  return { status: inventory.ok && queues.ok ? 'ok' : 'failing', checks: { inventory, queues } };
}
