// Storage: primary storage pools (where volumes live) and image stores (secondary storage, where
// templates, ISOs and snapshot backups live).
//
// A pool belongs to a cluster (scope CLUSTER: every host of the cluster reaches it) or to a whole
// zone (scope ZONE). Its capacity is tracked on the pool record itself: `capacitybytes` (upstream's
// disksizetotal), `disksizeallocated` (what volumes have reserved) and `disksizeused` (what the
// hosts report). Reservations are conditional updates that never let the allocated bytes pass
// capacity × storage.overprovisioning.factor (the pool-scoped setting), so concurrent placements
// never over-commit a pool; releases never take the count below zero; and a pool is deleted only
// on the condition that nothing is allocated on it.
//
// Keys: a pool is STORAGEPOOL#<id> / STORAGEPOOL with `zoneId` and `clusterId` (the scoped settings
// of shared/settings.ts read those two fields); an image store IMAGESTORE#<id> / IMAGESTORE. Both
// are listed through gsi1 (STORAGEPOOLS / IMAGESTORES, sorted by zone then name). A pool's
// host and path are held by a guard item (one pool per NFS export or RBD pool), an image store's
// name by another (names are unique across the cloud, as upstream's).
import { TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { dynamo } from '../aws.ts';
import { scopedKey, settingsFor, type Settings } from '../settings.ts';
import { addClusterContentCheck, addZoneContentCheck, clusterKey, contentsOf, type Cluster, type Contents, type Zone } from './infrastructure.ts';
import { getItem, isConditionFailure, queryIndex, tableName } from './items.ts';
import { cloudstackDate } from './jobs.ts';

// ---- primary storage pools ----

/** Upstream's StoragePoolType names of the KVM pool types Mold runs. */
export const POOL_TYPES = ['NetworkFilesystem', 'SharedMountPoint', 'RBD', 'Filesystem'] as const;
export type PoolType = (typeof POOL_TYPES)[number];

/** Upstream's StoragePoolStatus values a pool takes here. */
export type PoolState = 'Up' | 'Disabled' | 'Maintenance';

export type PoolScope = 'CLUSTER' | 'ZONE';

interface StoragePoolFields {
  id: string;
  name: string;
  zoneId: string;
  /** Cluster-scoped pools only. */
  podId?: string;
  clusterId?: string;
  scope: PoolScope;
  hypervisor: 'KVM';
  type: PoolType;
  /** The URL as given. */
  url: string;
  /** Storage host (NFS server, Ceph monitor; "localhost" for SharedMountPoint and Filesystem). */
  host: string;
  port: number;
  /** Export path, mount point, directory, or (RBD) the Ceph pool name. */
  path: string;
  /** RBD: the user (and key) of the URL; never rendered. */
  userInfo?: string;
  state: PoolState;
  tags: string[];
  istagarule: boolean;
  provider: 'DefaultPrimary';
  managed: false;
  capacitybytes: number;
  /** Created without capacitybytes: the hosts' reports set it (shared mount points). */
  capacityfromhosts?: boolean;
  capacityiops?: number;
  disksizeallocated: number;
  disksizeused: number;
  created: string;
}

export interface StoragePool extends StoragePoolFields {
  [field: string]: unknown;
}

export const storagePoolKey = (id: string) => ({ pk: `STORAGEPOOL#${id}`, sk: 'STORAGEPOOL' });
const poolIndex = (pool: Pick<StoragePool, 'zoneId' | 'name' | 'id'>) => ({ gsi1pk: 'STORAGEPOOLS', gsi1sk: `${pool.zoneId}/${pool.name.toLowerCase()}/${pool.id}` });

/**
 * The guard of a pool's storage: one pool per host and path (upstream refuses a second pool on the
 * same host and path). SharedMountPoint and Filesystem paths are local to each host, so they have none.
 */
export function poolPathGuard(pool: Pick<StoragePool, 'type' | 'host' | 'path'>): { pk: string; sk: string } | undefined {
  if (pool.type === 'SharedMountPoint' || pool.type === 'Filesystem') return undefined;
  return { pk: `STORAGEPOOLPATH#${pool.host.toLowerCase()}#${pool.path}`, sk: 'GUARD' };
}

/** A pool whose volumes live on each host's own disk: a volume on it is bound to its host. */
export const isHostLocal = (pool: Pick<StoragePool, 'type'>) => pool.type === 'Filesystem';

export const getStoragePool = (id: string) => getItem<StoragePool>(storagePoolKey(id).pk, 'STORAGEPOOL');

/** Pools by zone and name, of one zone or all. */
export const listStoragePools = (where: { zoneId?: string } = {}) =>
  queryIndex<StoragePool>({ index: 'gsi1', partition: 'STORAGEPOOLS', prefix: where.zoneId ? `${where.zoneId}/` : undefined });

/** The pool that holds this storage host and path already, if any. */
export async function poolHoldingPath(guard: { pk: string; sk: string }): Promise<StoragePool | undefined> {
  const held = await getItem<{ id: string }>(guard.pk, guard.sk);
  return held ? getStoragePool(held.id) : undefined;
}

/** Storage (host and path) already held by another pool. */
export class PathInUse extends Error {
  readonly poolId: string | undefined;
  constructor(poolId: string | undefined) {
    super('storage path in use');
    this.poolId = poolId;
  }
}

/** The pool's cluster (or zone) was deleted meanwhile. */
export class ParentGone extends Error {}

/** The pool no longer exists. */
export class PoolGone extends Error {}

/** The pool is not in the state the change needs. */
export class PoolStateConflict extends Error {
  readonly state: PoolState;
  constructor(state: PoolState) {
    super(`pool is ${state}`);
    this.state = state;
  }
}

/** A reservation (or a smaller capacity) that the pool's capacity × over-provisioning cannot hold. */
export class PoolFull extends Error {
  readonly pool: StoragePool;
  readonly requested: number;
  readonly allocatable: number;
  constructor(pool: StoragePool, requested: number, allocatable: number) {
    super(`pool ${pool.id} cannot hold ${requested} more bytes`);
    this.pool = pool;
    this.requested = requested;
    this.allocatable = allocatable;
  }
}

/** Something is still allocated on the pool (volumes). */
export class PoolNotEmpty extends Error {}

export type NewStoragePool = Omit<StoragePoolFields, 'id' | 'created' | 'disksizeallocated' | 'disksizeused' | 'state' | 'provider' | 'managed'> &
  Partial<Pick<StoragePool, 'state'>>;

async function transact(items: Record<string, unknown>[], failure: (error: unknown) => Error | Promise<Error>): Promise<void> {
  try {
    await dynamo().send(new TransactWriteCommand({ TransactItems: items as never }));
  } catch (error) {
    if (isConditionFailure(error)) throw await failure(error);
    throw error;
  }
}

const putNew = (Item: Record<string, unknown>) => ({ Put: { TableName: tableName(), Item, ConditionExpression: 'attribute_not_exists(pk)' } });
const exists = (Key: { pk: string; sk: string }) => ({ ConditionCheck: { TableName: tableName(), Key, ConditionExpression: 'attribute_exists(pk)' } });

/**
 * Writes a new pool (state Up, nothing allocated). Its storage guard is taken in the same
 * transaction (PathInUse when another pool holds it), and its cluster (or zone) must still exist
 * (ParentGone).
 */
export async function createStoragePool(fields: NewStoragePool): Promise<StoragePool> {
  const pool: StoragePool = {
    ...fields,
    id: randomUUID(),
    state: fields.state ?? 'Up',
    provider: 'DefaultPrimary',
    managed: false,
    disksizeallocated: 0,
    disksizeused: 0,
    created: cloudstackDate(),
  };
  const guard = poolPathGuard(pool);
  const parent = pool.clusterId ? clusterKey(pool.clusterId) : { pk: `ZONE#${pool.zoneId}`, sk: 'ZONE' };
  await transact([putNew({ ...storagePoolKey(pool.id), ...poolIndex(pool), ...pool }), ...(guard ? [putNew({ ...guard, id: pool.id })] : []), exists(parent)], async () => {
    if (guard) {
      const held = await getItem<{ id: string }>(guard.pk, guard.sk);
      if (held) return new PathInUse(held.id);
    }
    return new ParentGone(pool.clusterId ?? pool.zoneId);
  });
  return pool;
}

export interface PoolChanges {
  name?: string;
  tags?: string[];
  istagarule?: boolean;
  capacitybytes?: number;
  capacityiops?: number;
  /** The state to move to, from the state the pool must be in. */
  state?: { from: PoolState; to: PoolState };
}

/**
 * Changes a pool in one conditional update: a state change only from the expected state
 * (PoolStateConflict), a new capacity only if what is allocated still fits in it (PoolFull).
 */
export async function updateStoragePool(pool: StoragePool, changes: PoolChanges, factor: number): Promise<StoragePool> {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets: string[] = [];
  const conditions = ['attribute_exists(pk)'];
  const set = (field: string, value: unknown) => {
    const i = sets.length;
    names[`#s${i}`] = field;
    values[`:s${i}`] = value;
    sets.push(`#s${i} = :s${i}`);
  };
  const fields: Partial<StoragePool> = {};
  if (changes.name !== undefined) {
    fields.name = changes.name;
    set('name', changes.name);
    set('gsi1sk', poolIndex({ ...pool, name: changes.name }).gsi1sk);
  }
  if (changes.tags !== undefined) set('tags', (fields.tags = changes.tags));
  if (changes.istagarule !== undefined) set('istagarule', (fields.istagarule = changes.istagarule));
  if (changes.capacityiops !== undefined) set('capacityiops', (fields.capacityiops = changes.capacityiops));
  if (changes.state) {
    set('state', (fields.state = changes.state.to));
    names['#state'] = 'state';
    values[':from'] = changes.state.from;
    conditions.push('#state = :from');
  }
  if (changes.capacitybytes !== undefined) {
    const allocatable = Math.floor(changes.capacitybytes * factor);
    if (pool.disksizeallocated > allocatable) throw new PoolFull(pool, 0, allocatable);
    set('capacitybytes', (fields.capacitybytes = changes.capacitybytes));
    // A size the operator gives is kept: the hosts' reports no longer set it.
    set('capacityfromhosts', (fields.capacityfromhosts = false));
    names['#allocated'] = 'disksizeallocated';
    values[':allocatable'] = allocatable;
    conditions.push('#allocated <= :allocatable');
  }
  if (sets.length === 0) return pool;
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: storagePoolKey(pool.id),
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression: conditions.join(' AND '),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    const now = await getStoragePool(pool.id);
    if (!now) throw new PoolGone(pool.id);
    if (changes.state && now.state !== changes.state.from) throw new PoolStateConflict(now.state);
    throw new PoolFull(now, 0, Math.floor((changes.capacitybytes ?? now.capacitybytes) * factor));
  }
  return { ...pool, ...fields };
}

/**
 * Deletes a pool that is not Up and has nothing allocated (checked atomically: PoolStateConflict,
 * PoolNotEmpty), with its storage guard and its scoped settings.
 */
export async function deleteStoragePoolRecord(pool: StoragePool): Promise<void> {
  const guard = poolPathGuard(pool);
  const settings = scopedKey('StoragePool', pool.id);
  await transact(
    [
      {
        Delete: {
          TableName: tableName(),
          Key: storagePoolKey(pool.id),
          ConditionExpression: 'attribute_exists(pk) AND #state <> :up AND (attribute_not_exists(#allocated) OR #allocated = :zero)',
          ExpressionAttributeNames: { '#state': 'state', '#allocated': 'disksizeallocated' },
          ExpressionAttributeValues: { ':up': 'Up', ':zero': 0 },
        },
      },
      ...(guard ? [{ Delete: { TableName: tableName(), Key: guard } }] : []),
      { Delete: { TableName: tableName(), Key: settings } },
    ],
    async () => {
      const now = await getStoragePool(pool.id);
      if (!now) return new PoolGone(pool.id);
      if (now.state === 'Up') return new PoolStateConflict(now.state);
      return new PoolNotEmpty(pool.id);
    },
  );
}

// ---- capacity ----

/** storage.overprovisioning.factor as it applies to the pool (pool → global). */
export async function overprovisioningFactor(pool: Pick<StoragePool, 'id' | 'clusterId' | 'zoneId'>, global?: Settings): Promise<number> {
  const scoped = await settingsFor({ storagePoolId: pool.id, clusterId: pool.clusterId, zoneId: pool.zoneId }, global);
  return scoped.number('storage.overprovisioning.factor');
}

/** The bytes that may be allocated on the pool: capacity × over-provisioning factor. */
export const allocatableBytes = (pool: Pick<StoragePool, 'capacitybytes'>, factor: number) => Math.floor(pool.capacitybytes * factor);

/**
 * The transaction item that reserves `bytes` on the pool, for callers that reserve several things
 * at once (a VM's host capacity and its volumes' pools). It holds only while the pool is Up, its
 * capacity is still the one read, and the allocation stays within capacity × factor; a failed
 * condition means one of those changed: re-read and decide (reservePoolBytes does).
 */
export function reservePoolItem(pool: StoragePool, bytes: number, factor: number) {
  return {
    Update: {
      TableName: tableName(),
      Key: storagePoolKey(pool.id),
      UpdateExpression: 'SET #allocated = if_not_exists(#allocated, :zero) + :bytes',
      ConditionExpression: 'attribute_exists(pk) AND #state = :up AND #capacity = :capacity AND (attribute_not_exists(#allocated) OR #allocated <= :limit)',
      ExpressionAttributeNames: { '#allocated': 'disksizeallocated', '#state': 'state', '#capacity': 'capacitybytes' },
      ExpressionAttributeValues: { ':zero': 0, ':bytes': bytes, ':up': 'Up', ':capacity': pool.capacitybytes, ':limit': allocatableBytes(pool, factor) - bytes },
    },
  };
}

/** The transaction item that gives `bytes` back to the pool (never below zero). */
export function releasePoolItem(poolId: string, bytes: number) {
  return {
    Update: {
      TableName: tableName(),
      Key: storagePoolKey(poolId),
      UpdateExpression: 'SET #allocated = #allocated - :bytes',
      ConditionExpression: 'attribute_exists(pk) AND #allocated >= :bytes',
      ExpressionAttributeNames: { '#allocated': 'disksizeallocated' },
      ExpressionAttributeValues: { ':bytes': bytes },
    },
  };
}

/**
 * Reserves `bytes` on the pool atomically and returns the pool as it now is. PoolFull when the
 * pool cannot hold them, PoolStateConflict when it is not Up, PoolGone when it no longer exists.
 */
export async function reservePoolBytes(poolId: string, bytes: number, global?: Settings): Promise<StoragePool> {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`cannot reserve ${bytes} bytes`);
  for (let attempt = 0; ; attempt++) {
    const pool = await getStoragePool(poolId);
    if (!pool) throw new PoolGone(poolId);
    if (pool.state !== 'Up') throw new PoolStateConflict(pool.state);
    const factor = await overprovisioningFactor(pool, global);
    const allocatable = allocatableBytes(pool, factor);
    if (pool.disksizeallocated + bytes > allocatable) throw new PoolFull(pool, bytes, allocatable);
    try {
      const { Update } = reservePoolItem(pool, bytes, factor);
      const { Attributes } = await dynamo().send(new UpdateCommand({ ...Update, ReturnValues: 'ALL_NEW' }));
      return { ...pool, disksizeallocated: Number(Attributes?.disksizeallocated ?? pool.disksizeallocated + bytes) };
    } catch (error) {
      // Someone else reserved, or the pool changed, meanwhile: look again (a bounded number of times).
      if (!isConditionFailure(error) || attempt >= 20) throw error;
    }
  }
}

/** Gives `bytes` back to the pool. Releasing more than is allocated is refused (RangeError). */
export async function releasePoolBytes(poolId: string, bytes: number): Promise<void> {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`cannot release ${bytes} bytes`);
  try {
    await dynamo().send(new UpdateCommand(releasePoolItem(poolId, bytes).Update));
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    if (!(await getStoragePool(poolId))) throw new PoolGone(poolId);
    throw new RangeError(`pool ${poolId} has fewer than ${bytes} bytes allocated`);
  }
}

/**
 * Sets the pool's allocated bytes to `to` on condition that they are still `from` (a reservation or
 * release meanwhile wins: the next recount looks again). Resolves whether it was set.
 */
export async function setPoolAllocated(poolId: string, from: number, to: number): Promise<boolean> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: storagePoolKey(poolId),
        UpdateExpression: 'SET #allocated = :to',
        ConditionExpression: from === 0 ? 'attribute_exists(pk) AND (attribute_not_exists(#allocated) OR #allocated = :from)' : 'attribute_exists(pk) AND #allocated = :from',
        ExpressionAttributeNames: { '#allocated': 'disksizeallocated' },
        ExpressionAttributeValues: { ':from': from, ':to': to },
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

/** What the hosts report of the pool: bytes used on it and, when known, its real size. */
export async function recordPoolStats(poolId: string, stats: { usedBytes: number; capacityBytes?: number }): Promise<void> {
  const names: Record<string, string> = { '#used': 'disksizeused' };
  const values: Record<string, unknown> = { ':used': stats.usedBytes };
  let update = 'SET #used = :used';
  if (stats.capacityBytes !== undefined) {
    names['#capacity'] = 'capacitybytes';
    values[':capacity'] = stats.capacityBytes;
    update += ', #capacity = :capacity';
  }
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: storagePoolKey(poolId),
        UpdateExpression: update,
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  } catch (error) {
    throw isConditionFailure(error) ? new PoolGone(poolId) : error;
  }
}

// ---- what keeps a pool from being deleted ----

/** One kind of thing still on a pool (volumes, once they exist), with the names of what is there. */
export type PoolContentCheck = (pool: StoragePool) => Promise<Contents | undefined>;
const poolChecks: PoolContentCheck[] = [];

/** Later kinds of pool contents (volumes, template copies) add their check here. */
export const addStoragePoolContentCheck = (check: PoolContentCheck) => void poolChecks.push(check);

export async function storagePoolContents(pool: StoragePool): Promise<Contents | undefined> {
  for (const check of poolChecks) {
    const result = await check(pool);
    if (result) return result;
  }
  return undefined;
}

// ---- image stores (secondary storage) ----

interface ImageStoreFields {
  id: string;
  name: string;
  zoneId: string;
  url: string;
  /** The URL's scheme: nfs. */
  protocol: 'nfs';
  providername: 'NFS';
  scope: 'ZONE';
  readonly: boolean;
  host: string;
  path: string;
  disksizetotal?: number;
  disksizeused?: number;
  created: string;
}

export interface ImageStore extends ImageStoreFields {
  [field: string]: unknown;
}

export const imageStoreKey = (id: string) => ({ pk: `IMAGESTORE#${id}`, sk: 'IMAGESTORE' });
const imageStoreNameGuard = (name: string) => ({ pk: `IMAGESTORENAME#${name.toLowerCase()}`, sk: 'GUARD' });
const imageStoreIndex = (store: Pick<ImageStore, 'zoneId' | 'name' | 'id'>) => ({ gsi1pk: 'IMAGESTORES', gsi1sk: `${store.zoneId}/${store.name.toLowerCase()}/${store.id}` });

export const getImageStore = (id: string) => getItem<ImageStore>(imageStoreKey(id).pk, 'IMAGESTORE');

export const listImageStores = (where: { zoneId?: string } = {}) =>
  queryIndex<ImageStore>({ index: 'gsi1', partition: 'IMAGESTORES', prefix: where.zoneId ? `${where.zoneId}/` : undefined });

/** An image store name already taken. */
export class ImageStoreNameInUse extends Error {}

export async function createImageStore(fields: Omit<ImageStoreFields, 'id' | 'created'>): Promise<ImageStore> {
  const store: ImageStore = { ...fields, id: randomUUID(), created: cloudstackDate() };
  await transact(
    [putNew({ ...imageStoreKey(store.id), ...imageStoreIndex(store), ...store }), putNew({ ...imageStoreNameGuard(store.name), id: store.id }), exists({ pk: `ZONE#${store.zoneId}`, sk: 'ZONE' })],
    async () => ((await getItem(imageStoreNameGuard(store.name).pk, 'GUARD')) ? new ImageStoreNameInUse(store.name) : new ParentGone(store.zoneId)),
  );
  return store;
}

export async function deleteImageStoreRecord(store: ImageStore): Promise<void> {
  await transact(
    [
      { Delete: { TableName: tableName(), Key: imageStoreKey(store.id), ConditionExpression: 'attribute_exists(pk)' } },
      { Delete: { TableName: tableName(), Key: imageStoreNameGuard(store.name) } },
    ],
    () => new PoolGone(store.id),
  );
}

export type ImageStoreContentCheck = (store: ImageStore) => Promise<string | undefined>;
const imageStoreChecks: ImageStoreContentCheck[] = [];

/** Later kinds of image store contents (templates, snapshot backups) add a check giving upstream's refusal text. */
export const addImageStoreContentCheck = (check: ImageStoreContentCheck) => void imageStoreChecks.push(check);

export async function imageStoreContents(store: ImageStore): Promise<string | undefined> {
  for (const check of imageStoreChecks) {
    const refusal = await check(store);
    if (refusal) return refusal;
  }
  return undefined;
}

// ---- what storage keeps zones and clusters from being deleted ----


addZoneContentCheck(async (zone: Zone) => {
  const stores = await listImageStores({ zoneId: zone.id });
  if (stores.length > 0) return contentsOf('there are Secondary storages in this zone', stores.map((store) => store.name));
  return contentsOf('there are storage pools in this zone', (await listStoragePools({ zoneId: zone.id })).map((pool) => pool.name));
});

addClusterContentCheck(async (cluster: Cluster) =>
  contentsOf(
    'there are storage pools in this cluster',
    (await listStoragePools({ zoneId: cluster.zoneId })).filter((pool) => pool.clusterId === cluster.id).map((pool) => pool.name),
  ),
);
