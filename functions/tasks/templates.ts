// Task actions of delete-template: removes the template (or its copy in one zone). Idempotent: a
// retried step finds the template (or that zone's copy) already gone and carries on.
import { z } from 'zod';
import { listZones } from '../../shared/db/infrastructure.ts';
import { deleteTemplateRecord } from '../../shared/db/templates.ts';

export const templateActions = [
  z.object({ action: z.literal('deleteTemplateRecords'), templateId: z.string(), zoneId: z.string().nullable().optional() }),
] as const;

export type TemplateTask = z.infer<(typeof templateActions)[number]>;

export async function runTemplateTask(task: TemplateTask) {
  const zones = task.zoneId ? (await listZones()).map((zone) => zone.id) : [];
  const outcome = await deleteTemplateRecord(task.templateId, task.zoneId ?? undefined, zones);
  return { templateId: task.templateId, outcome };
}
