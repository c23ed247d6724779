// Zones, pods and clusters: where hosts, storage and networks live. A pod belongs to a zone, a
// cluster to a pod; each carries an allocation state, and nothing is placed in a disabled one.
//
// Containment is kept atomic with counters on the parent: creating a pod adds one to its zone's
// `podCount` in the same transaction (which also requires the zone to exist), and a zone is
// deleted only on the condition that the count is zero; likewise pods count clusters and clusters
// count hosts. What is in the way is named by the content checks (zoneContents, podContents,
// clusterContents); other kinds of contents (networks, storage, templates) register theirs with
// addZoneContentCheck and friends.
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { dynamo } from '../aws.ts';
import { listHostRecords } from './hosts.ts';
import { getItem, isConditionFailure, queryIndex, tableName } from './items.ts';
import { cloudstackDate } from './jobs.ts';

export type AllocationState = 'Enabled' | 'Disabled';

export interface Zone {
  id: string;
  name: string;
  description?: string;
  networktype: 'Basic' | 'Advanced';
  allocationstate: AllocationState;
  dns1?: string;
  dns2?: string;
  internaldns1?: string;
  internaldns2?: string;
  guestcidraddress?: string;
  /** Network domain of the zone's networks (upstream's `domain`). */
  domain?: string;
  /** A zone dedicated to a domain (and the domain's tree, for scoping); absent for public zones. */
  domainId?: string;
  domainTree?: string;
  securitygroupsenabled?: boolean;
  localstorageenabled?: boolean;
  zonetoken?: string;
  dhcpprovider?: string;
  /** Out-of-band management switched on or off for the zone (absent: on, as upstream). */
  oobmenabled?: boolean;
  /** Host HA switched off for the zone's or cluster's hosts (absent = on). */
  haenabled?: boolean;
  created: string;
  [field: string]: unknown;
}

export interface Pod {
  id: string;
  name: string;
  zoneId: string;
  allocationstate: AllocationState;
  gateway?: string;
  netmask?: string;
  startip?: string;
  endip?: string;
  created?: string;
  [field: string]: unknown;
}

export interface Cluster {
  id: string;
  name: string;
  zoneId: string;
  podId: string;
  allocationstate: AllocationState;
  hypervisor?: 'KVM';
  clustertype?: 'CloudManaged';
  managedstate?: 'Managed';
  cpuovercommitratio?: string;
  memoryovercommitratio?: string;
  arch?: string;
  /** The host that last began preparing for maintenance (claimMaintenance in hosts.ts: one per cluster at a time). */
  maintenanceHostId?: string;
  /** Out-of-band management switched on or off for the cluster (absent: on, as upstream). */
  oobmenabled?: boolean;
  /** Host HA switched off for the zone's or cluster's hosts (absent = on). */
  haenabled?: boolean;
  created?: string;
  [field: string]: unknown;
}

export const zoneKey = (id: string) => ({ pk: `ZONE#${id}`, sk: 'ZONE' });
export const podKey = (id: string) => ({ pk: `POD#${id}`, sk: 'POD' });
export const clusterKey = (id: string) => ({ pk: `CLUSTER#${id}`, sk: 'CLUSTER' });

const guardKey = {
  zone: (name: string) => ({ pk: `ZONENAME#${name.toLowerCase()}`, sk: 'GUARD' }),
  pod: (zoneId: string, name: string) => ({ pk: `PODNAME#${zoneId}#${name.toLowerCase()}`, sk: 'GUARD' }),
  cluster: (podId: string, name: string) => ({ pk: `CLUSTERNAME#${podId}#${name.toLowerCase()}`, sk: 'GUARD' }),
};

/** The counters a parent keeps of its children; they never appear in responses. */
const COUNTERS = ['podCount', 'clusterCount', 'hostCount'] as const;

function stripCounters<T>(item: T | undefined): T | undefined {
  if (!item) return item;
  const copy = { ...item } as Record<string, unknown>;
  for (const counter of COUNTERS) delete copy[counter];
  return copy as T;
}

export const getZone = async (id: string) => stripCounters(await getItem<Zone>(zoneKey(id).pk, 'ZONE'));
export const getPod = async (id: string) => stripCounters(await getItem<Pod>(podKey(id).pk, 'POD'));
export const getCluster = async (id: string) => stripCounters(await getItem<Cluster>(clusterKey(id).pk, 'CLUSTER'));

/** Every zone, by name. */
export const listZones = async () => (await queryIndex<Zone>({ index: 'gsi1', partition: 'ZONES' })).map((zone) => stripCounters(zone)!);

/** Pods by name, of one zone or all. */
export const listPods = async (where: { zoneId?: string } = {}) =>
  (await queryIndex<Pod>({ index: 'gsi1', partition: 'PODS', prefix: where.zoneId ? `${where.zoneId}/` : undefined })).map((pod) => stripCounters(pod)!);

/** Clusters by name, of one zone (and pod) or all. */
export async function listClusters(where: { zoneId?: string; podId?: string } = {}): Promise<Cluster[]> {
  let prefix: string | undefined;
  if (where.zoneId) prefix = where.podId ? `${where.zoneId}/${where.podId}/` : `${where.zoneId}/`;
  return (await queryIndex<Cluster>({ index: 'gsi1', partition: 'CLUSTERS', prefix })).map((cluster) => stripCounters(cluster)!);
}

/** A name already taken among its siblings. */
export class NameInUse extends Error {}

/** Deleting something that still holds children (its counter is not zero). */
export class NotEmpty extends Error {}

/** Something that no longer exists (a parent deleted meanwhile). */
export class Gone extends Error {}

const zoneIndex = (zone: Zone) => ({ gsi1pk: 'ZONES', gsi1sk: zone.name.toLowerCase() });
const podIndex = (pod: Pod) => ({ gsi1pk: 'PODS', gsi1sk: `${pod.zoneId}/${pod.name.toLowerCase()}` });
const clusterIndex = (cluster: Cluster) => ({ gsi1pk: 'CLUSTERS', gsi1sk: `${cluster.zoneId}/${cluster.podId}/${cluster.name.toLowerCase()}` });

const put = (Item: Record<string, unknown>) => ({ Put: { TableName: tableName(), Item, ConditionExpression: 'attribute_not_exists(pk)' } });
const remove = (Key: Record<string, string>, ConditionExpression?: string, values?: Record<string, unknown>) => ({
  Delete: { TableName: tableName(), Key, ...(ConditionExpression && { ConditionExpression }), ...(values && { ExpressionAttributeValues: values }) },
});
const count = (Key: Record<string, string>, counter: string, by: 1 | -1) => ({
  Update: {
    TableName: tableName(),
    Key,
    UpdateExpression: `ADD ${counter} :by`,
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeValues: { ':by': by },
  },
});

/**
 * SET the given fields (REMOVE those given as undefined) of an existing record. With no fields it
 * only checks that the record still exists: DynamoDB refuses an update that changes nothing, and
 * upstream answers such an update with the unchanged object.
 */
function setFields(Key: Record<string, string>, fields: Record<string, unknown>) {
  if (Object.keys(fields).length === 0) return { ConditionCheck: { TableName: tableName(), Key, ConditionExpression: 'attribute_exists(pk)' } };
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets: string[] = [];
  const removes: string[] = [];
  Object.entries(fields).forEach(([field, value], i) => {
    names[`#f${i}`] = field;
    if (value === undefined) removes.push(`#f${i}`);
    else {
      values[`:v${i}`] = value;
      sets.push(`#f${i} = :v${i}`);
    }
  });
  return {
    Update: {
      TableName: tableName(),
      Key,
      UpdateExpression: [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].join(' ').trim(),
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: names,
      ...(sets.length > 0 && { ExpressionAttributeValues: values }),
    },
  };
}

/** Runs a transaction; a failed condition becomes `failure()`. */
async function transact(items: Record<string, unknown>[], failure: () => Error | Promise<Error>): Promise<void> {
  try {
    await dynamo().send(new TransactWriteCommand({ TransactItems: items as never }));
  } catch (error) {
    if (isConditionFailure(error)) throw await failure();
    throw error;
  }
}

/** The writes of a rename: the record's new index key and the name guard moved. */
function renameItems(oldGuard: { pk: string; sk: string }, newGuard: { pk: string; sk: string }, id: string) {
  if (oldGuard.pk === newGuard.pk) return [];
  return [remove(oldGuard), put({ ...newGuard, id })];
}

// ---- zones ----

export type NewZone = Partial<Zone> & Pick<Zone, 'name' | 'networktype' | 'allocationstate'>;

export async function createZone(fields: NewZone): Promise<Zone> {
  const zone: Zone = { ...fields, id: fields.id ?? randomUUID(), created: cloudstackDate() };
  await transact(
    [put({ ...zoneKey(zone.id), ...zoneIndex(zone), ...zone, podCount: 0 }), put({ ...guardKey.zone(zone.name), id: zone.id })],
    () => new NameInUse(zone.name),
  );
  return zone;
}

type Changes<T> = { [K in keyof T]?: T[K] | undefined };

/** Changes a zone's fields; a field given as undefined is cleared. A new name moves the name guard. */
export async function updateZone(zone: Zone, changes: Changes<Zone>): Promise<Zone> {
  const updated = { ...zone, ...changes } as Zone;
  const fields: Record<string, unknown> = { ...changes };
  if (changes.name !== undefined) Object.assign(fields, zoneIndex(updated));
  await transact(
    [setFields(zoneKey(zone.id), fields), ...renameItems(guardKey.zone(zone.name), guardKey.zone(updated.name), zone.id)],
    () => new NameInUse(updated.name),
  );
  return updated;
}

/** Deletes a zone that holds no pods (checked atomically); NotEmpty otherwise. */
export async function deleteZoneRecord(zone: Zone): Promise<void> {
  await transact(
    [remove(zoneKey(zone.id), 'attribute_exists(pk) AND (attribute_not_exists(podCount) OR podCount = :zero)', { ':zero': 0 }), remove(guardKey.zone(zone.name))],
    () => new NotEmpty(zone.id),
  );
}

// ---- pods ----

export type NewPod = Partial<Pod> & Pick<Pod, 'name' | 'allocationstate'>;

/** A pod in a zone; the zone must still exist (Gone) and the name be free in it (NameInUse). */
export async function createPod(zone: Zone, fields: NewPod): Promise<Pod> {
  const pod: Pod = { ...fields, id: randomUUID(), zoneId: zone.id, created: cloudstackDate() };
  await transact(
    [
      put({ ...podKey(pod.id), ...podIndex(pod), ...pod, clusterCount: 0 }),
      put({ ...guardKey.pod(zone.id, pod.name), id: pod.id }),
      count(zoneKey(zone.id), 'podCount', 1),
    ],
    async () => ((await getZone(zone.id)) ? new NameInUse(pod.name) : new Gone(zone.id)),
  );
  return pod;
}

export async function updatePod(pod: Pod, changes: Changes<Pod>): Promise<Pod> {
  const updated = { ...pod, ...changes } as Pod;
  const fields: Record<string, unknown> = { ...changes };
  if (changes.name !== undefined) Object.assign(fields, podIndex(updated));
  await transact(
    [setFields(podKey(pod.id), fields), ...renameItems(guardKey.pod(pod.zoneId, pod.name), guardKey.pod(pod.zoneId, updated.name), pod.id)],
    () => new NameInUse(updated.name),
  );
  return updated;
}

export async function deletePodRecord(pod: Pod): Promise<void> {
  await transact(
    [
      remove(podKey(pod.id), 'attribute_exists(pk) AND (attribute_not_exists(clusterCount) OR clusterCount = :zero)', { ':zero': 0 }),
      remove(guardKey.pod(pod.zoneId, pod.name)),
      count(zoneKey(pod.zoneId), 'podCount', -1),
    ],
    () => new NotEmpty(pod.id),
  );
}

// ---- clusters ----

export type NewCluster = Partial<Cluster> & Pick<Cluster, 'name' | 'allocationstate'>;

export async function createCluster(pod: Pod, fields: NewCluster): Promise<Cluster> {
  const cluster: Cluster = { ...fields, id: randomUUID(), zoneId: pod.zoneId, podId: pod.id, created: cloudstackDate() };
  await transact(
    [
      put({ ...clusterKey(cluster.id), ...clusterIndex(cluster), ...cluster, hostCount: 0 }),
      put({ ...guardKey.cluster(pod.id, cluster.name), id: cluster.id }),
      count(podKey(pod.id), 'clusterCount', 1),
    ],
    async () => ((await getPod(pod.id)) ? new NameInUse(cluster.name) : new Gone(pod.id)),
  );
  return cluster;
}

export async function updateCluster(cluster: Cluster, changes: Changes<Cluster>): Promise<Cluster> {
  const updated = { ...cluster, ...changes } as Cluster;
  const fields: Record<string, unknown> = { ...changes };
  if (changes.name !== undefined) Object.assign(fields, clusterIndex(updated));
  await transact(
    [
      setFields(clusterKey(cluster.id), fields),
      ...renameItems(guardKey.cluster(cluster.podId, cluster.name), guardKey.cluster(cluster.podId, updated.name), cluster.id),
    ],
    () => new NameInUse(updated.name),
  );
  return updated;
}

export async function deleteClusterRecord(cluster: Cluster): Promise<void> {
  await transact(
    [
      remove(clusterKey(cluster.id), 'attribute_exists(pk) AND (attribute_not_exists(hostCount) OR hostCount = :zero)', { ':zero': 0 }),
      remove(guardKey.cluster(cluster.podId, cluster.name)),
      count(podKey(cluster.podId), 'clusterCount', -1),
    ],
    () => new NotEmpty(cluster.id),
  );
}

// ---- what is in the way of a delete ----

/** One kind of thing a zone, pod or cluster still contains, named as upstream's checks word it. */
export interface Contents {
  /** e.g. "there are pods in this zone" (upstream's checkIfZoneIsDeletable wording). */
  reason: string;
  names: string[];
}

export type ContentCheck<T> = (record: T) => Promise<Contents | undefined>;

/** What a content check reports: the reason when anything is named, else nothing. */
export const contentsOf = (reason: string, names: string[]): Contents | undefined => (names.length > 0 ? { reason, names } : undefined);

const found = (reason: string, names: string[]): Contents | undefined => (names.length > 0 ? { reason, names } : undefined);

const zoneChecks: ContentCheck<Zone>[] = [
  async (zone) => found('there are servers in this zone', (await listHostRecords({ zoneId: zone.id })).map((host) => host.name)),
  async (zone) => found('there are pods in this zone', (await listPods({ zoneId: zone.id })).map((pod) => pod.name)),
];
const podChecks: ContentCheck<Pod>[] = [
  async (pod) => found('there are servers in this pod', (await listHostRecords({ zoneId: pod.zoneId, podId: pod.id })).map((host) => host.name)),
  async (pod) => found('there are clusters in this pod', (await listClusters({ zoneId: pod.zoneId, podId: pod.id })).map((cluster) => cluster.name)),
];
const clusterChecks: ContentCheck<Cluster>[] = [
  async (cluster) =>
    found(
      'there are hosts in this cluster',
      (await listHostRecords({ zoneId: cluster.zoneId, podId: cluster.podId, clusterId: cluster.id })).map((host) => host.name),
    ),
];

/** Later kinds of zone contents (networks, storage, templates, ...) add their check here. */
export const addZoneContentCheck = (check: ContentCheck<Zone>) => void zoneChecks.push(check);
export const addPodContentCheck = (check: ContentCheck<Pod>) => void podChecks.push(check);
export const addClusterContentCheck = (check: ContentCheck<Cluster>) => void clusterChecks.push(check);

async function contents<T>(checks: ContentCheck<T>[], record: T): Promise<Contents | undefined> {
  for (const check of checks) {
    const result = await check(record);
    if (result) return result;
  }
  return undefined;
}

/** The first kind of thing that keeps the zone from being deleted, or undefined when it is empty. */
export const zoneContents = (zone: Zone) => contents(zoneChecks, zone);
export const podContents = (pod: Pod) => contents(podChecks, pod);
export const clusterContents = (cluster: Cluster) => contents(clusterChecks, cluster);
