// Virtual machines and their volumes (upstream's vm_instance / user_vm and volumes).
//
// Keys:
//   VM#<id> / VM              the VM; gsi1 VMS / <domain tree><account id>#<number, 12 digits>
//                             (one key-prefix query lists an account or a domain subtree), and,
//                             while it has a host, gsi2 VMHOST#<host id> / <id>
//   VOLUME#<id> / VOLUME      a volume; gsi1 VOLUMES / <domain tree><account id>#<created>#<id>,
//                             gsi2 VOLUMESOFVM#<vm id> / <device id>#<id> while attached
//   SEQUENCE#<kind> / SEQUENCE   the per-installation counters (VM numbers, account numbers)
//   ACCOUNTNUMBER#<account id> / NUMBER   an account's number, assigned once
//   VERSION / VMS             bumped after every VM write; the listing cache (listVmRecords) is
//                             used only while it still reads as when the copy was loaded
//
// A VM's state changes only through transitionVm, a conditional update that holds only from the
// states given, so two lifecycle operations never both win.
import { DeleteCommand, GetCommand, PutCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../aws.ts';
import { affinityGroupKey, getAffinityGroup, type AffinityGroup } from './affinity-groups.ts';
import type { VlanTag } from '../cloudstack/ip.ts';
import type { Account } from './identity.ts';
import { getItem, getItems, isConditionFailure, queryIndex, queryIndexEntries, tableName } from './items.ts';
import { cloudstackDate } from './jobs.ts';
import { registerResourceCounter, type ResourceAmounts } from './limits.ts';

export const VM_STATES = ['Starting', 'Running', 'Stopping', 'Stopped', 'Destroyed', 'Expunging', 'Migrating', 'Error'] as const;
export type VmState = (typeof VM_STATES)[number];

export interface VmNic {
  id: string;
  networkId: string;
  mac: string;
  ip: string;
  netmask: string;
  gateway: string;
  vlan?: VlanTag;
  isDefault: boolean;
}

export interface VirtualMachine {
  /** uuid; also the libvirt domain UUID. */
  id: string;
  /** Per-installation counter (upstream's numeric id). */
  number: number;
  /** i-<account number>-<number>-VM (or -<displayname> with vm.instancename.flag). */
  instanceName: string;
  /** Hostname, RFC 1123. */
  name: string;
  displayName: string;
  group?: string;
  state: VmState;
  zoneId: string;
  /** Where it runs / last ran. */
  podId?: string;
  clusterId?: string;
  hostId?: string;
  lastHostId?: string;
  /** While Migrating: the host it goes to (its capacity is reserved there) and the job moving it. */
  migrateToHostId?: string;
  migrateJobId?: string;
  accountId: string;
  domainId: string;
  domainTree: string;
  userId: string;
  serviceOfferingId: string;
  templateId: string;
  /** From the offering (or custom details). */
  cpuNumber: number;
  cpuSpeed: number;
  memoryMiB: number;
  rootVolumeId: string;
  /** Key pair names. */
  keypairs: string[];
  /** base64. */
  userData?: string;
  affinityGroupIds: string[];
  nics: VmNic[];
  details: Record<string, string>;
  haEnable: boolean;
  /** VM HA (shared/vm-ha.ts): flagged for a restart; held in HA maintenance; an HA start under way; starts tried in this recovery; no retry before. */
  haRestart?: boolean;
  haHeld?: string;
  haStarting?: boolean;
  haAttempts?: number;
  haRetryAfter?: string;
  created: string;
  destroyed?: string;
  [field: string]: unknown;
}

export type VolumeState = 'Allocated' | 'Ready' | 'Destroy' | 'Expunged';

/** Root volumes only this round (data disks later). */
export interface Volume {
  id: string;
  name: string;
  vmId?: string;
  type: 'ROOT' | 'DATADISK';
  zoneId: string;
  poolId: string;
  path: string;
  sizeBytes: number;
  templateId?: string;
  accountId: string;
  domainId: string;
  domainTree: string;
  state: VolumeState;
  deviceId?: number;
  created: string;
  [field: string]: unknown;
}

export const vmKey = (id: string) => ({ pk: `VM#${id}`, sk: 'VM' });
/**
 * What is left of an expunged VM: upstream keeps the row (removed set), so its id still names a VM
 * that list commands answer with an empty list rather than refuse as unknown.
 */
export const removedVmKey = (id: string) => ({ pk: `VM#${id}`, sk: 'REMOVED' });
export const volumeKey = (id: string) => ({ pk: `VOLUME#${id}`, sk: 'VOLUME' });
const VM_LISTING = 'VMS';
const VOLUME_LISTING = 'VOLUMES';
const VERSION_KEY = { pk: 'VERSION', sk: 'VMS' };

const padded = (n: number) => String(n).padStart(12, '0');

/** The index attributes of a VM as it is. */
function vmIndex(vm: VirtualMachine): Record<string, string> {
  return {
    gsi1pk: VM_LISTING,
    gsi1sk: `${vm.domainTree}${vm.accountId}#${padded(vm.number)}`,
    ...(vm.hostId ? { gsi2pk: `VMHOST#${vm.hostId}`, gsi2sk: vm.id } : {}),
  };
}

function volumeIndex(volume: Volume): Record<string, string> {
  return {
    gsi1pk: VOLUME_LISTING,
    gsi1sk: `${volume.domainTree}${volume.accountId}#${volume.created}#${volume.id}`,
    ...(volume.vmId ? { gsi2pk: `VOLUMESOFVM#${volume.vmId}`, gsi2sk: `${padded(volume.deviceId ?? 0)}#${volume.id}` } : {}),
  };
}

// ---- numbers ----

export type SequenceKind = 'vm' | 'account' | 'volume';

/** The next number of a per-installation counter (1, 2, 3, …); never handed out twice. */
export async function nextNumber(kind: SequenceKind): Promise<number> {
  const { Attributes } = await dynamo().send(
    new UpdateCommand({
      TableName: tableName(),
      Key: { pk: `SEQUENCE#${kind}`, sk: 'SEQUENCE' },
      UpdateExpression: 'ADD #value :one',
      ExpressionAttributeNames: { '#value': 'value' },
      ExpressionAttributeValues: { ':one': 1 },
      ReturnValues: 'UPDATED_NEW',
    }),
  );
  return Number(Attributes!.value);
}

const accountNumberKey = (accountId: string) => ({ pk: `ACCOUNTNUMBER#${accountId}`, sk: 'NUMBER' });

/** The account's number (upstream's numeric account id, as in i-<account>-<vm>-VM), assigned on first use. */
export async function accountNumber(accountId: string): Promise<number> {
  const key = accountNumberKey(accountId);
  const known = await getItem<{ number: number }>(key.pk, key.sk);
  if (known) return known.number;
  const number = await nextNumber('account');
  try {
    await dynamo().send(new PutCommand({ TableName: tableName(), Item: { ...key, accountId, number }, ConditionExpression: 'attribute_not_exists(pk)' }));
    return number;
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    // Someone else assigned it meanwhile: theirs stands.
    const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: key, ConsistentRead: true }));
    return Number(Item!.number);
  }
}

/** Upstream's instance name: i-<account number>-<vm number>-VM, or -<display name> with vm.instancename.flag. */
export function instanceNameOf(accountNo: number, vmNo: number, options: { flag?: boolean; displayName?: string; suffix?: string } = {}): string {
  const tail = options.flag && options.displayName ? options.displayName : (options.suffix ?? 'VM');
  return `i-${accountNo}-${vmNo}-${tail}`;
}

// ---- listing cache ----

/** The listing cache of this process: a copy per gsi1 prefix, kept honest by the VMS version. */
const LAG_MS = 2_000;
const MAX_COPIES = 64;
interface Copy {
  version: number;
  changedAt: number;
  startedAt: number;
  vms: Promise<readonly VirtualMachine[]>;
}
const copies = new Map<string, Copy>();

async function readVersion(): Promise<{ version: number; changedAt: number }> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: VERSION_KEY, ConsistentRead: true }));
  return { version: Number(Item?.version ?? 0), changedAt: Number(Item?.changedAt ?? 0) };
}

/** Call after every write to a VM record (the listing caches reload). */
export async function vmsChanged(): Promise<void> {
  await dynamo().send(
    new UpdateCommand({
      TableName: tableName(),
      Key: VERSION_KEY,
      UpdateExpression: 'ADD version :one SET changedAt = :now',
      ExpressionAttributeValues: { ':one': 1, ':now': Date.now() },
    }),
  );
}

type Version = { version: number; changedAt: number };

/** Whether a copy may be served at this version (see vmsUnder). */
const usable = (copy: Copy, { version, changedAt }: Version, now = Date.now()) =>
  copy.version === version && (copy.startedAt - copy.changedAt >= LAG_MS || now - changedAt < LAG_MS);

/** The narrowest copy covering the prefix that `accept` takes. */
function bestCopy(prefix: string, accept: (copy: Copy) => boolean): { prefix: string; copy: Copy } | undefined {
  let best: { prefix: string; copy: Copy } | undefined;
  for (const [known, copy] of copies) {
    if (prefix.startsWith(known) && accept(copy) && (!best || known.length > best.prefix.length)) best = { prefix: known, copy };
  }
  return best;
}

async function fromCopy(found: { prefix: string; copy: Copy }, prefix: string): Promise<readonly VirtualMachine[]> {
  const vms = await found.copy.vms;
  return found.prefix === prefix ? vms : vms.filter((vm) => `${vm.domainTree}${vm.accountId}#`.startsWith(prefix));
}

/**
 * The VMs under a gsi1 prefix, by number. A copy is served while the version is the one it was
 * loaded at; a copy loaded within LAG_MS of the last change (the index may not have caught up
 * yet) is loaded once more after that window.
 */
async function vmsUnder(prefix: string): Promise<readonly VirtualMachine[]> {
  const version = await readVersion();
  const now = Date.now();
  const found = bestCopy(prefix, (copy) => usable(copy, version, now));
  if (found) return fromCopy(found, prefix);
  const copy: Copy = { version: version.version, changedAt: version.changedAt, startedAt: now, vms: loadUnder(prefix) };
  copies.delete(prefix);
  copies.set(prefix, copy);
  while (copies.size > MAX_COPIES) copies.delete(copies.keys().next().value!);
  copy.vms.catch(() => copies.get(prefix) === copy && copies.delete(prefix));
  return copy.vms;
}

async function loadUnder(prefix: string): Promise<readonly VirtualMachine[]> {
  const entries = await queryIndexEntries<VirtualMachine>({ index: 'gsi1', partition: VM_LISTING, prefix: prefix || undefined });
  const vms = entries.map((entry) => Object.freeze(entry.item));
  vms.sort((a, b) => a.number - b.number);
  return Object.freeze(vms);
}

// ---- VM records ----

export interface VmFilter {
  /** A domain subtree (/<id>/…/), or one domain with recursive false. Omitted: everywhere. */
  domainTree?: string;
  recursive?: boolean;
  accountId?: string;
  hostId?: string;
  zoneId?: string;
  states?: VmState[];
  /** Leave Destroyed (and Expunging) VMs out. */
  excludeDestroyed?: boolean;
}

const prefixOf = (filter: VmFilter) => (filter.domainTree ?? '') + (filter.accountId && filter.domainTree ? `${filter.accountId}#` : '');

/** The filter's conditions beyond its index prefix, as one predicate (none: undefined). */
function predicateOf(filter: VmFilter): ((vm: VirtualMachine) => boolean) | undefined {
  const checks: ((vm: VirtualMachine) => boolean)[] = [];
  if (filter.accountId) checks.push((vm) => vm.accountId === filter.accountId);
  if (filter.domainTree && filter.recursive === false) checks.push((vm) => vm.domainTree === filter.domainTree);
  if (filter.hostId) checks.push((vm) => vm.hostId === filter.hostId);
  if (filter.zoneId) checks.push((vm) => vm.zoneId === filter.zoneId);
  if (filter.states) checks.push((vm) => filter.states!.includes(vm.state));
  if (filter.excludeDestroyed) checks.push((vm) => vm.state !== 'Destroyed' && vm.state !== 'Expunging');
  if (checks.length === 0) return undefined;
  return (vm) => checks.every((check) => check(vm));
}

const applyFilter = (vms: readonly VirtualMachine[], filter: VmFilter) => {
  const predicate = predicateOf(filter);
  return predicate ? vms.filter(predicate) : vms;
};

const byNumber = (a: VirtualMachine, b: VirtualMachine) => a.number - b.number;

/**
 * VMs matching the filter, by number (oldest first). Account and domain-tree filters are one index
 * prefix; a host filter is the host's index partition. The records are frozen shared copies.
 */
export async function listVmRecords(filter: VmFilter = {}): Promise<readonly VirtualMachine[]> {
  if (filter.hostId) return applyFilter((await queryIndex<VirtualMachine>({ index: 'gsi2', partition: `VMHOST#${filter.hostId}` })).sort(byNumber), filter);
  return applyFilter(await vmsUnder(prefixOf(filter)), filter);
}

type Key = { pk: string; sk: string };
const keyText = (key: Key) => `${key.pk}\n${key.sk}`;

/** Items by key, read in batches of 100 in parallel (consistently); missing ones are absent. */
async function readKeys(keys: readonly Key[]): Promise<Map<string, Record<string, unknown>>> {
  const unique = [...new Map(keys.map((key) => [keyText(key), key])).values()];
  const chunks: Key[][] = [];
  for (let i = 0; i < unique.length; i += 100) chunks.push(unique.slice(i, i + 100));
  const found = new Map<string, Record<string, unknown>>();
  await Promise.all(
    chunks.map(async (chunk) => {
      const items = await getItems<(Record<string, unknown> | undefined)[]>(chunk as never);
      chunk.forEach((key, index) => items[index] && found.set(keyText(key), items[index]!));
    }),
  );
  return found;
}

/** Looks up an item read by listVmRecordsWith. */
export const itemOf = <T>(items: ReadonlyMap<string, Record<string, unknown>>, key: Key) => items.get(keyText(key)) as T | undefined;

/**
 * As listVmRecords, then reads the records `related` names for the VMs (what a page of them
 * refers to) in the same round trip as the listing's version check when this process holds a copy
 * of the listing: one BatchGetItem instead of two reads one after the other. `related` may run
 * twice (when the copy turns out stale).
 */
export async function listVmRecordsWith<T>(
  filter: VmFilter,
  related: (vms: readonly VirtualMachine[]) => { keys: readonly Key[]; finish: (items: ReadonlyMap<string, Record<string, unknown>>) => T },
): Promise<T> {
  if (!filter.hostId) {
    const prefix = prefixOf(filter);
    // The newest copy covering the prefix, whatever its version: checked below, with the reads.
    const found = bestCopy(prefix, () => true);
    if (found) {
      const plan = related(applyFilter(await fromCopy(found, prefix), filter));
      const items = await readKeys([VERSION_KEY, ...plan.keys]);
      const version = items.get(keyText(VERSION_KEY));
      if (usable(found.copy, { version: Number(version?.version ?? 0), changedAt: Number(version?.changedAt ?? 0) })) return plan.finish(items);
    }
  }
  const plan = related(await listVmRecords(filter));
  return plan.finish(await readKeys(plan.keys));
}

/** VMs of one account (any state). */
export const listVmsOfAccount = (account: Pick<Account, 'id' | 'domainTree'>) => listVmRecords({ domainTree: account.domainTree, accountId: account.id });

export const getVm = (id: string) => getItem<VirtualMachine>(vmKey(id).pk, 'VM');

/** A consistent read of the VM (for decisions right after a write). */
export async function getVmConsistent(id: string): Promise<VirtualMachine | undefined> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: vmKey(id), ConsistentRead: true }));
  if (!Item) return undefined;
  return stripKeys(Item) as VirtualMachine;
}

function stripKeys(item: Record<string, unknown>): Record<string, unknown> {
  const { pk: _pk, sk: _sk, gsi1pk: _a, gsi1sk: _b, gsi2pk: _c, gsi2sk: _d, ...rest } = item;
  return rest;
}

/** The VM's affinity groups were deleted meanwhile (or the VM id is taken). */
export class VmRecordConflict extends Error {}

/**
 * Writes a new VM, its root volume (and the data volumes created with it) in one transaction, and adds the VM to each of its affinity
 * groups (upstream's affinity_group_vm_map); a group deleted meanwhile refuses it (VmRecordConflict).
 */
export async function createVmRecords(vm: VirtualMachine, rootVolume: Volume, dataVolumes: readonly Volume[] = []): Promise<void> {
  const groupUpdates = vm.affinityGroupIds.map((groupId) => ({
    Update: {
      TableName: tableName(),
      Key: affinityGroupKey(groupId),
      UpdateExpression: 'SET virtualMachineIds = list_append(if_not_exists(virtualMachineIds, :empty), :vm)',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: { ':empty': [], ':vm': [vm.id] },
    },
  }));
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: tableName(), Item: { ...vmKey(vm.id), ...vmIndex(vm), ...clean(vm) }, ConditionExpression: 'attribute_not_exists(pk)' } },
          ...[rootVolume, ...dataVolumes].map((volume) => ({
            Put: { TableName: tableName(), Item: { ...volumeKey(volume.id), ...volumeIndex(volume), ...clean(volume) }, ConditionExpression: 'attribute_not_exists(pk)' },
          })),
          ...groupUpdates,
        ] as never,
      }),
    );
  } catch (error) {
    if (isConditionFailure(error)) throw new VmRecordConflict(`VM ${vm.id}: its record or an affinity group changed`);
    throw error;
  }
  await vmsChanged();
}

/** Drops undefined fields (DynamoDB refuses them). */
function clean<T extends object>(record: T): T {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as T;
}

/** Fields a VM change may set; a field given as undefined is removed. */
export type VmChanges = Partial<Omit<VirtualMachine, 'id' | 'number' | 'accountId' | 'domainId' | 'domainTree' | 'created'>>;

/**
 * Moves the VM to `to` (with `changes`) only if it is now in one of `from`: one conditional update.
 * Stamps `lastUpdated` (upstream's vm_instance.update_time, set on every state transition; shown as
 * `lastupdated`). `expect` adds equality conditions (a field given as undefined must be absent), so
 * a caller acting on what it read can insist that the VM is still exactly that (power-state sync).
 * Returns the VM as it now is, or undefined when it is gone or in another state.
 */
export async function transitionVm(id: string, from: readonly VmState[], to: VmState, changes: VmChanges = {}, expect?: Record<string, unknown>): Promise<VirtualMachine | undefined> {
  // VM HA's flags (shared/vm-ha.ts) belong to a Stopped VM: one started by any path since (a user's
  // start, a deploy) loses them, so a later stop by hand is never taken for a death to recover from.
  // An HA start's own marks (haStarting, haAttempts) last while it starts: the start's release reads them.
  const haFlags: VmChanges = {
    ...(to !== 'Stopped' && { haRestart: undefined, haHeld: undefined, haRetryAfter: undefined }),
    ...(to !== 'Stopped' && to !== 'Starting' && { haStarting: undefined, haAttempts: undefined }),
  };
  return writeVm(id, { ...haFlags, ...changes, state: to, lastUpdated: cloudstackDate() }, from, expect);
}

/** Sets fields of a VM in any state (no state change); undefined when it is gone. */
export function updateVmRecord(id: string, changes: VmChanges, expectStates?: readonly VmState[]): Promise<VirtualMachine | undefined> {
  return writeVm(id, changes, expectStates);
}

async function writeVm(id: string, changes: VmChanges, from: readonly VmState[] | undefined, expect: Record<string, unknown> = {}): Promise<VirtualMachine | undefined> {
  const names: Record<string, string> = { '#state': 'state' };
  const values: Record<string, unknown> = {};
  const sets: string[] = [];
  const removes: string[] = [];
  let i = 0;
  const fields: Record<string, unknown> = { ...changes };
  if ('hostId' in changes) {
    // The host index follows the host (sparse: no host, no entry).
    if (changes.hostId) {
      fields.gsi2pk = `VMHOST#${changes.hostId}`;
      fields.gsi2sk = id;
    } else {
      fields.gsi2pk = undefined;
      fields.gsi2sk = undefined;
    }
  }
  for (const [field, value] of Object.entries(fields)) {
    if (field === 'id') continue;
    names[`#f${i}`] = field;
    if (value === undefined) removes.push(`#f${i}`);
    else {
      values[`:v${i}`] = value;
      sets.push(`#f${i} = :v${i}`);
    }
    i++;
  }
  const conditions = ['attribute_exists(pk)'];
  if (from) {
    const list = from.map((state, n) => {
      values[`:from${n}`] = state;
      return `:from${n}`;
    });
    conditions.push(list.length ? `#state IN (${list.join(', ')})` : 'attribute_not_exists(pk)');
  }
  Object.entries(expect).forEach(([field, value], n) => {
    names[`#x${n}`] = field;
    if (value === undefined) conditions.push(`attribute_not_exists(#x${n})`);
    else {
      values[`:x${n}`] = value;
      conditions.push(`#x${n} = :x${n}`);
    }
  });
  if (sets.length === 0 && removes.length === 0) return getVmConsistent(id);
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: vmKey(id),
        UpdateExpression: [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].join(' ').trim(),
        ConditionExpression: conditions.join(' AND '),
        ExpressionAttributeNames: pruneNames(names, sets, removes, conditions),
        ...(Object.keys(values).length > 0 && { ExpressionAttributeValues: values }),
        ReturnValues: 'ALL_NEW',
      }),
    );
    await vmsChanged();
    return stripKeys(Attributes as Record<string, unknown>) as VirtualMachine;
  } catch (error) {
    if (isConditionFailure(error)) return undefined;
    throw error;
  }
}

/** Only the names an expression uses (DynamoDB refuses unused ones). */
function pruneNames(names: Record<string, string>, ...expressions: (string | string[])[]): Record<string, string> {
  const text = expressions.flat().join(' ');
  return Object.fromEntries(Object.entries(names).filter(([name]) => new RegExp(`${name}(?![A-Za-z0-9_])`).test(text)));
}

/**
 * Removes the VM, its volumes and its affinity group memberships (expunge). Idempotent: a VM
 * already gone is fine. Returns whether a record was removed.
 */
export async function deleteVmRecords(id: string): Promise<boolean> {
  const vm = await getVmConsistent(id);
  if (!vm) return false;
  const volumes = await listVolumesOfVm(id);
  // Its root volume goes with it; data disks stay, detached (upstream detaches them at expunge).
  const volumeIds = new Set([...volumes.filter((v) => v.type === 'ROOT').map((v) => v.id), vm.rootVolumeId].filter(Boolean));
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          { Delete: { TableName: tableName(), Key: vmKey(id) } },
          { Put: { TableName: tableName(), Item: { ...removedVmKey(id), removed: new Date().toISOString(), accountId: vm.accountId } } },
          ...[...volumeIds].map((volumeId) => ({ Delete: { TableName: tableName(), Key: volumeKey(volumeId) } })),
        ] as never,
      }),
    );
  } finally {
    await vmsChanged();
  }
  for (const volume of volumes) if (volume.type !== 'ROOT') await updateVolumeRecord(volume.id, { vmId: undefined, deviceId: undefined });
  for (const groupId of vm.affinityGroupIds ?? []) await leaveAffinityGroup(groupId, id);
  return true;
}

/** Takes the VM out of the group's members (a conditional removal by position, retried). */
export async function leaveAffinityGroup(groupId: string, vmId: string): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const group = await getAffinityGroup(groupId);
    const index = group?.virtualMachineIds.indexOf(vmId) ?? -1;
    if (!group || index < 0) return;
    try {
      await dynamo().send(
        new UpdateCommand({
          TableName: tableName(),
          Key: affinityGroupKey(groupId),
          UpdateExpression: `REMOVE virtualMachineIds[${index}]`,
          ConditionExpression: `virtualMachineIds[${index}] = :vm`,
          ExpressionAttributeValues: { ':vm': vmId },
        }),
      );
      return;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }
}

/**
 * Replaces a Stopped VM's affinity groups (upstream's AffinityGroupVMMapDao.updateMap): the VM's
 * list and the member lists of the groups it leaves and joins change in one transaction, which
 * holds only while the VM is Stopped with the groups `current` names and every joined group
 * exists. Retried when a member list moved meanwhile; 'vm' when the VM is no longer as read,
 * 'group' when a group to join is gone.
 */
export async function replaceVmAffinityGroups(vmId: string, current: readonly string[], next: readonly string[]): Promise<'done' | 'vm' | 'group'> {
  const leaving = current.filter((id) => !next.includes(id));
  const joining = next.filter((id) => !current.includes(id));
  for (let attempt = 0; attempt < 10; attempt++) {
    const left = leaving.length ? await getItems<(Pick<AffinityGroup, 'virtualMachineIds'> | undefined)[]>(leaving.map(affinityGroupKey) as never) : [];
    const leaves = leaving.flatMap((groupId, n) => {
      const index = left[n]?.virtualMachineIds?.indexOf(vmId) ?? -1;
      if (index < 0) return []; // gone, or never listed it
      return [{ Update: { TableName: tableName(), Key: affinityGroupKey(groupId), UpdateExpression: `REMOVE virtualMachineIds[${index}]`, ConditionExpression: `virtualMachineIds[${index}] = :vm`, ExpressionAttributeValues: { ':vm': vmId } } }];
    });
    const joins = joining.map((groupId) => ({
      Update: {
        TableName: tableName(),
        Key: affinityGroupKey(groupId),
        UpdateExpression: 'SET virtualMachineIds = list_append(if_not_exists(virtualMachineIds, :empty), :vm)',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':empty': [], ':vm': [vmId] },
      },
    }));
    try {
      await dynamo().send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: tableName(),
                Key: vmKey(vmId),
                UpdateExpression: 'SET affinityGroupIds = :next, lastUpdated = :now',
                ConditionExpression: 'attribute_exists(pk) AND #state = :stopped AND affinityGroupIds = :current',
                ExpressionAttributeNames: { '#state': 'state' },
                ExpressionAttributeValues: { ':next': [...next], ':current': [...current], ':stopped': 'Stopped', ':now': cloudstackDate() },
              },
            },
            ...leaves,
            ...joins,
          ] as never,
        }),
      );
      await vmsChanged();
      return 'done';
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const reasons = ((error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? []).map((r) => r?.Code === 'ConditionalCheckFailed');
      if (reasons[0]) return 'vm';
      if (reasons.slice(1 + leaves.length).some(Boolean)) return 'group';
      // A member list moved under us: read the positions again.
    }
  }
  return 'vm';
}

// ---- volumes ----

export const getVolume = (id: string) => getItem<Volume>(volumeKey(id).pk, 'VOLUME');

/** A consistent read of the volume (for decisions right after a write). */
export async function getVolumeConsistent(id: string): Promise<Volume | undefined> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: volumeKey(id), ConsistentRead: true }));
  return Item ? (stripKeys(Item) as Volume) : undefined;
}

export async function putVolume(volume: Volume): Promise<void> {
  await dynamo().send(new PutCommand({ TableName: tableName(), Item: { ...volumeKey(volume.id), ...volumeIndex(volume), ...clean(volume) } }));
}

/** Sets fields of a volume; undefined when it is gone. */
export async function updateVolumeRecord(id: string, changes: Partial<Omit<Volume, 'id'>>): Promise<Volume | undefined> {
  const current = await getVolume(id);
  if (!current) return undefined;
  const volume = clean({ ...current, ...changes }) as Volume;
  for (const [field, value] of Object.entries(changes)) if (value === undefined) delete (volume as Record<string, unknown>)[field];
  try {
    await dynamo().send(new PutCommand({ TableName: tableName(), Item: { ...volumeKey(id), ...volumeIndex(volume), ...volume }, ConditionExpression: 'attribute_exists(pk)' }));
  } catch (error) {
    if (isConditionFailure(error)) return undefined;
    throw error;
  }
  return volume;
}

/**
 * Sets fields of a volume only while each field of `expect` still has the value given (undefined:
 * absent), in one conditional write; undefined when it no longer does or the volume is gone.
 */
export async function updateVolumeIf(id: string, expect: Record<string, unknown>, changes: Partial<Omit<Volume, 'id'>>): Promise<Volume | undefined> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: volumeKey(id), ConsistentRead: true }));
  if (!Item) return undefined;
  const current = stripKeys(Item) as Volume;
  for (const [field, value] of Object.entries(expect)) if (current[field] !== value) return undefined;
  const volume = clean({ ...current, ...changes }) as Volume;
  for (const [field, value] of Object.entries(changes)) if (value === undefined) delete (volume as Record<string, unknown>)[field];
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const conditions = ['attribute_exists(pk)'];
  Object.entries(expect).forEach(([field, value], n) => {
    names[`#x${n}`] = field;
    if (value === undefined) conditions.push(`attribute_not_exists(#x${n})`);
    else {
      values[`:x${n}`] = value;
      conditions.push(`#x${n} = :x${n}`);
    }
  });
  try {
    await dynamo().send(
      new PutCommand({
        TableName: tableName(),
        Item: { ...volumeKey(id), ...volumeIndex(volume), ...volume },
        ConditionExpression: conditions.join(' AND '),
        ...(Object.keys(names).length > 0 && { ExpressionAttributeNames: names }),
        ...(Object.keys(values).length > 0 && { ExpressionAttributeValues: values }),
      }),
    );
  } catch (error) {
    if (isConditionFailure(error)) return undefined;
    throw error;
  }
  return volume;
}

export async function deleteVolumeRecord(id: string): Promise<void> {
  await dynamo().send(new DeleteCommand({ TableName: tableName(), Key: volumeKey(id) }));
}

/** The volumes attached to a VM, by device id. */
export const listVolumesOfVm = (vmId: string) => queryIndex<Volume>({ index: 'gsi2', partition: `VOLUMESOFVM#${vmId}` });

/** Volumes of a domain subtree (or one account's). */
export const listVolumeRecords = (where: { domainTree?: string; accountId?: string } = {}) =>
  queryIndex<Volume>({
    index: 'gsi1',
    partition: VOLUME_LISTING,
    prefix: where.domainTree ? `${where.domainTree}${where.accountId ? `${where.accountId}#` : ''}` : undefined,
  });

// ---- resource counts ----

/** What a VM counts against its owner's limits: user_vm, cpu (cores), memory (MiB). */
export const vmResources = (vm: Pick<VirtualMachine, 'cpuNumber' | 'memoryMiB'>): ResourceAmounts => ({ user_vm: 1, cpu: vm.cpuNumber, memory: vm.memoryMiB });

/** What a volume counts: volume, primary_storage (bytes). */
export const volumeResources = (volume: Pick<Volume, 'sizeBytes'>): ResourceAmounts => ({ volume: 1, primary_storage: volume.sizeBytes });

/** Upstream counts every VM not Destroyed/Expunging/Error (ResourceLimitManagerImpl: user VMs not destroyed). */
const countsAgainstLimits = (vm: VirtualMachine) => vm.state !== 'Destroyed' && vm.state !== 'Expunging' && vm.state !== 'Error';

registerResourceCounter('user_vm', async (account) => (await listVmsOfAccount(account)).filter(countsAgainstLimits).length);
registerResourceCounter('cpu', async (account) => (await listVmsOfAccount(account)).filter(countsAgainstLimits).reduce((sum, vm) => sum + vm.cpuNumber, 0));
registerResourceCounter('memory', async (account) => (await listVmsOfAccount(account)).filter(countsAgainstLimits).reduce((sum, vm) => sum + vm.memoryMiB, 0));
registerResourceCounter('volume', async (account) => (await listVolumeRecords({ domainTree: account.domainTree, accountId: account.id })).filter((v) => v.state !== 'Expunged' && v.state !== 'Destroy').length);
registerResourceCounter('primary_storage', async (account) =>
  (await listVolumeRecords({ domainTree: account.domainTree, accountId: account.id })).filter((v) => v.state !== 'Expunged' && v.state !== 'Destroy').reduce((sum, v) => sum + v.sizeBytes, 0),
);
