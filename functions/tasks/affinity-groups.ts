// Task action of statemachines/affinity-group-command.asl.json: the job's half of createAffinityGroup
// (render the group the call wrote) and deleteAffinityGroup (remove it). Idempotent when retried.
import { z } from 'zod';
import { runAffinityGroupTask } from '../api/commands/affinity-groups.ts';

export const affinityGroupActions = [
  z.object({ action: z.literal('affinityGroupCommand'), op: z.enum(['create', 'delete']), groupId: z.string(), name: z.string().optional() }),
] as const;

export type AffinityGroupTask = z.infer<(typeof affinityGroupActions)[number]>;

export function runAffinityGroupAction(task: AffinityGroupTask) {
  return runAffinityGroupTask(task.op, task.groupId, task.name);
}
