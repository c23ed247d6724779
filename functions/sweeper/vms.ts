// The expunge pass (upstream's UserVmManagerImpl ExpungeTask): every expunge.interval, each VM
// Destroyed longer ago than expunge.delay is claimed (Destroyed → Expunging, so no other pass or
// call takes it twice) and handed to the vm-expunge state machine, which removes it from its host
// and its records. A VM whose expunge fails goes back to Destroyed and is tried at a later pass.
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../../shared/aws.ts';
import type { Actor } from '../../shared/db/events.ts';
import { tableName } from '../../shared/db/items.ts';
import { listVmRecords, transitionVm } from '../../shared/db/vms.ts';
import { startJob } from '../../shared/orchestration.ts';
import { loadSettings } from '../../shared/settings.ts';

const LAST_PASS = { pk: 'SWEEP#vm-expunge', sk: 'SWEEP' };

/** Starts the expunge of every VM due; returns their ids. Runs at most once per expunge.interval. */
export async function expungeDestroyedVms(actor: Actor, now = Date.now()): Promise<string[]> {
  const settings = await loadSettings();
  const intervalMs = settings.number('expunge.interval') * 1000;
  const delayMs = Math.max(0, settings.number('expunge.delay')) * 1000;
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: LAST_PASS, ConsistentRead: true }));
  const last = Number(Item?.at ?? 0);
  if (now - last < intervalMs) return [];
  // Claimed at the last pass's time: two sweepers at once run one pass.
  try {
    await dynamo().send(
      new PutCommand({
        TableName: tableName(),
        Item: { ...LAST_PASS, at: now },
        ConditionExpression: 'attribute_not_exists(pk) OR #at = :last',
        ExpressionAttributeNames: { '#at': 'at' },
        ExpressionAttributeValues: { ':last': last },
      }),
    );
  } catch {
    return [];
  }
  const started: string[] = [];
  for (const vm of await listVmRecords({ states: ['Destroyed'] })) {
    const destroyedAt = typeof vm.destroyed === 'string' ? Date.parse(vm.destroyed) : Number.NaN;
    if (Number.isNaN(destroyedAt) || now - destroyedAt < delayMs) continue;
    const claimed = await transitionVm(vm.id, ['Destroyed'], 'Expunging', { expungeFrom: 'Destroyed' });
    if (!claimed) continue;
    try {
      await startJob(
        {
          cmd: 'expungeVirtualMachine',
          actor,
          jobinstancetype: 'VirtualMachine',
          jobinstanceid: vm.id,
          event: { type: 'VM.EXPUNGE', description: `expunging Vm. Vm Id: ${vm.id}`, resourceId: vm.id, resourceType: 'VirtualMachine' },
        },
        'vm-expunge',
        { vmId: vm.id, viewer: { rootAdmin: true, admin: true } },
      );
      started.push(vm.id);
    } catch {
      // Not started: back to Destroyed for the next pass.
      await transitionVm(vm.id, ['Expunging'], 'Destroyed', { expungeFrom: undefined });
    }
  }
  return started;
}
