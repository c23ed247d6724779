// Task action of statemachines/network-command.asl.json: the work of the async network commands
// (physical networks, updateNetwork, deleteNetwork). Each step is idempotent when retried.
import { z } from 'zod';
import { runNetworkTask, type NetworkTaskOp } from '../api/commands/networks.ts';

export const networkActions = [
  z.object({
    action: z.literal('networkCommand'),
    op: z.enum(['createPhysicalNetwork', 'updatePhysicalNetwork', 'deletePhysicalNetwork', 'updateNetwork', 'deleteNetwork']),
    args: z.record(z.string(), z.unknown()),
  }),
] as const;

export type NetworkTask = z.infer<(typeof networkActions)[number]>;

export function runNetworkAction(task: NetworkTask) {
  return runNetworkTask(task.op as NetworkTaskOp, task.args);
}
