// Affinity groups (upstream's affinity_group with affinity_group_vm_map): one record each, owned by
// an account, holding the ids of its member VMs (filled by the VM work). Names are unique per
// account, case-insensitively as upstream's MySQL collation compares them, through a guard item
// written in the same transaction as the record.
//
// Keys:
//   AFFINITYGROUP#<id> / AFFINITYGROUP          the group; gsi1 AFFINITYGROUPS / <domain tree><account id>#<timestamp>#<id>
//   AFFINITYGROUPNAME#<account>#<name> / GUARD  the name is taken in that account ({ id })
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { dynamo } from '../aws.ts';
import { identityKey } from './identity.ts';
import { getItem, isConditionFailure, queryIndex, tableName } from './items.ts';
import { cloudstackDate } from './jobs.ts';

/** The types Mold's placement honours, in upstream's listAffinityGroupTypes order. */
export const AFFINITY_GROUP_TYPES = ['host anti-affinity', 'host affinity'] as const;
export type AffinityGroupType = (typeof AFFINITY_GROUP_TYPES)[number];

export interface AffinityGroup {
  id: string;
  name: string;
  description?: string;
  type: AffinityGroupType;
  accountId: string;
  domainId: string;
  domainTree: string;
  /** The member VMs (upstream's affinity_group_vm_map), in the order they joined. */
  virtualMachineIds: string[];
  created: string;
  /** When it was created, to the millisecond (ISO 8601): the listing order, as upstream's id order. */
  timestamp: string;
}

/** The name is already taken in the owner's account. */
export class DuplicateAffinityGroupName extends Error {}
/** The owner account went away while the group was being created. */
export class AffinityGroupOwnerGone extends Error {}

export const affinityGroupKey = (id: string) => ({ pk: `AFFINITYGROUP#${id}`, sk: 'AFFINITYGROUP' });
const nameGuardKey = (accountId: string, name: string) => ({ pk: `AFFINITYGROUPNAME#${accountId}#${name.toLowerCase()}`, sk: 'GUARD' });
const LISTING = 'AFFINITYGROUPS';

export type NewAffinityGroup = Pick<AffinityGroup, 'name' | 'description' | 'type' | 'accountId' | 'domainId' | 'domainTree'>;

/** Writes the group, claiming its name in the account; the account must still exist. */
export async function createAffinityGroupRecord(fields: NewAffinityGroup): Promise<AffinityGroup> {
  const now = new Date();
  const group: AffinityGroup = {
    ...fields,
    ...(fields.description === undefined ? {} : { description: fields.description }),
    id: randomUUID(),
    virtualMachineIds: [],
    created: cloudstackDate(now),
    timestamp: now.toISOString(),
  };
  const item = { ...affinityGroupKey(group.id), gsi1pk: LISTING, gsi1sk: `${group.domainTree}${group.accountId}#${group.timestamp}#${group.id}`, ...group };
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: tableName(), Item: { ...nameGuardKey(group.accountId, group.name), id: group.id }, ConditionExpression: 'attribute_not_exists(pk)' } },
          { Put: { TableName: tableName(), Item: item, ConditionExpression: 'attribute_not_exists(pk)' } },
          { ConditionCheck: { TableName: tableName(), Key: identityKey.account(group.accountId), ConditionExpression: 'attribute_exists(pk)' } },
        ],
      }),
    );
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
    if (reasons?.[2]?.Code === 'ConditionalCheckFailed') throw new AffinityGroupOwnerGone(`account ${group.accountId} no longer exists`);
    throw new DuplicateAffinityGroupName(group.name);
  }
  return group;
}

export const getAffinityGroup = (id: string) => getItem<AffinityGroup>(affinityGroupKey(id).pk, 'AFFINITYGROUP');

/** The account's group of that name (case-insensitive), if any. */
export async function findAffinityGroupByName(accountId: string, name: string): Promise<AffinityGroup | undefined> {
  const guard = await getItem<{ id: string }>(nameGuardKey(accountId, name).pk, 'GUARD');
  return guard ? getAffinityGroup(guard.id) : undefined;
}

/** Groups owned in the subtree at `tree` (only the account's, when given), oldest first. */
export async function listAffinityGroupsUnder(tree: string, accountId?: string): Promise<AffinityGroup[]> {
  const groups = await queryIndex<AffinityGroup>({ index: 'gsi1', partition: LISTING, prefix: accountId ? `${tree}${accountId}#` : tree });
  return groups.sort((a, b) => a.timestamp.localeCompare(b.timestamp) || a.id.localeCompare(b.id));
}

/** Removes the group and frees its name. Idempotent: a group already gone is fine. */
export async function deleteAffinityGroupRecord(id: string): Promise<boolean> {
  const group = await getAffinityGroup(id);
  if (!group) return false;
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          { Delete: { TableName: tableName(), Key: affinityGroupKey(id), ConditionExpression: 'attribute_exists(pk)' } },
          { Delete: { TableName: tableName(), Key: nameGuardKey(group.accountId, group.name), ConditionExpression: 'attribute_not_exists(pk) OR id = :id', ExpressionAttributeValues: { ':id': id } } },
        ],
      }),
    );
  } catch (error) {
    if (isConditionFailure(error)) return false; // deleted by a concurrent step
    throw error;
  }
  return true;
}

/** Every group of the account (its deletion): how many went. */
export async function deleteAffinityGroupsOfAccount(account: { id: string; domainTree: string }): Promise<number> {
  let deleted = 0;
  for (const group of await listAffinityGroupsUnder(account.domainTree, account.id)) {
    if (await deleteAffinityGroupRecord(group.id)) deleted++;
  }
  return deleted;
}
