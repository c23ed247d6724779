// The resource-count reconciler: every resourcecount.check.interval seconds (claimed by one sweep with a
// conditional write), while no job is pending, each account's counts are recounted from its records
// (shared/db/resource-counters.ts) and each domain's from its accounts'; a count that is off is set on
// condition that it is still what was read (a reservation made meanwhile wins, and the next recount
// looks again), with one RESOURCE.COUNT.REPAIR event each. In the same pass (upstream's "stale resource
// reservation cleanup" of this interval) each primary storage pool's allocated bytes are recounted from
// the volumes that reserved them, on the same conditions. Decisions: shared/resource-count-repair.ts.
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../../shared/aws.ts';
import { recordEvent, type Actor } from '../../shared/db/events.ts';
import { listAccountsUnder, listDomainsUnder } from '../../shared/db/identity.ts';
import { isConditionFailure, tableName } from '../../shared/db/items.ts';
import { listPendingJobs } from '../../shared/db/jobs.ts';
import { getAccountResources, getDomainResources, RESOURCE_TYPES, setResourceCount, type ResourceTypeName } from '../../shared/db/limits.ts';
import { countAccountResources } from '../../shared/db/resource-counters.ts';
import { countChanges, poolChanges } from '../../shared/resource-count-repair.ts';
import { listStoragePools, setPoolAllocated } from '../../shared/db/storage.ts';
import { listVolumeRecords } from '../../shared/db/vms.ts';
import { loadSettings } from '../../shared/settings.ts';

/** Mold's event for a resource count the recount corrected (upstream corrects silently). */
export const COUNT_REPAIR_EVENT = 'RESOURCE.COUNT.REPAIR';

const MARKER = { pk: 'SWEEP#RESOURCECOUNT', sk: 'LAST' };

export interface CountRepair {
  owner: 'ACCOUNT' | 'DOMAIN' | 'STORAGEPOOL';
  id: string;
  /** A resource type of an account or domain; a pool's allocated bytes. */
  type: ResourceTypeName | 'disksizeallocated';
  from: number | undefined;
  to: number;
}

/** Claims this interval's recount: true for one sweep only. */
async function claim(now: number, intervalSeconds: number): Promise<boolean> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: MARKER,
        UpdateExpression: 'SET #at = :now',
        ConditionExpression: 'attribute_not_exists(#at) OR #at <= :due',
        ExpressionAttributeNames: { '#at': 'at' },
        ExpressionAttributeValues: { ':now': now, ':due': now - intervalSeconds * 1000 },
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

/** Recounts when due; resolves the counts it corrected. `now` for tests. */
export async function repairResourceCounts(actor: Actor, now = Date.now()): Promise<CountRepair[]> {
  const interval = (await loadSettings()).number('resourcecount.check.interval');
  if (!(interval > 0)) return [];
  if ((await listPendingJobs()).length > 0) return [];
  if (!(await claim(now, interval))) return [];
  const repairs: CountRepair[] = [];
  const repair = async (owner: 'ACCOUNT' | 'DOMAIN', id: string, name: string, stored: Parameters<typeof countChanges>[0], counted: Parameters<typeof countChanges>[1]) => {
    for (const change of countChanges(stored, counted)) {
      if (!(await setResourceCount(owner, id, change.type, change.to, { count: change.from }))) continue;
      repairs.push({ owner, id, ...change });
      await recordEvent(actor, {
        type: COUNT_REPAIR_EVENT,
        description: `Recounted ${change.type} of ${owner === 'ACCOUNT' ? 'account' : 'domain'} ${name}: ${change.from ?? 0} → ${change.to} (what its records hold)`,
        resourceId: id,
        resourceType: owner === 'ACCOUNT' ? 'Account' : 'Domain',
      });
    }
  };
  const accounts = await listAccountsUnder('/');
  for (const account of accounts) {
    const { stored, counted } = await countAccountResources(account, RESOURCE_TYPES);
    await repair('ACCOUNT', account.id, account.name, stored, counted);
  }
  // A domain holds what the accounts of its subtree hold, as stored now.
  const accountCounts = await Promise.all(accounts.map(async (account) => ({ tree: account.domainTree, counts: (await getAccountResources(account.id)).counts })));
  for (const domain of await listDomainsUnder('/')) {
    const counted: Partial<Record<ResourceTypeName, number>> = {};
    for (const type of RESOURCE_TYPES) counted[type.name] = accountCounts.filter((a) => a.tree.startsWith(domain.tree)).reduce((sum, a) => sum + (a.counts[type.name] ?? 0), 0);
    await repair('DOMAIN', domain.id, domain.name, (await getDomainResources(domain.id)).counts, counted);
  }
  const pools = await listStoragePools();
  for (const change of poolChanges(pools, await listVolumeRecords())) {
    if (!(await setPoolAllocated(change.poolId, change.from, change.to))) continue;
    repairs.push({ owner: 'STORAGEPOOL', id: change.poolId, type: 'disksizeallocated', ...change });
    await recordEvent(actor, {
      type: COUNT_REPAIR_EVENT,
      description: `Recounted the allocated bytes of storage pool ${pools.find((p) => p.id === change.poolId)?.name ?? change.poolId}: ${change.from} → ${change.to} (what its volumes hold)`,
      resourceId: change.poolId,
      resourceType: 'StoragePool',
    });
  }
  return repairs;
}
