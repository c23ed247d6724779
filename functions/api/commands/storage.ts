// Storage (upstream's CreateStoragePoolCmd, ListStoragePoolsCmd, UpdateStoragePoolCmd, DeletePoolCmd,
// AddImageStoreCmd, ListImageStoresCmd, DeleteImageStoreCmd). Primary storage pools hold volumes:
// cluster-wide or zone-wide, on the KVM pool types NFS, SharedMountPoint, RBD and Filesystem
// (a directory on each host's own disk). Image stores (secondary storage) hold templates, ISOs and
// snapshot backups, and are NFS only. Admins manage both; admin-type roles list them.
import { InvalidParameter, PermissionDenied, ResourceInUse } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { listBody } from '../../../shared/cloudstack/render.ts';
import { getCluster, getPod, getZone, type Cluster, type Zone } from '../../../shared/db/infrastructure.ts';
import {
  createImageStore,
  createStoragePool,
  deleteImageStoreRecord,
  deleteStoragePoolRecord,
  getImageStore,
  getStoragePool,
  imageStoreContents,
  ImageStoreNameInUse,
  listImageStores,
  listStoragePools,
  overprovisioningFactor,
  ParentGone,
  PathInUse,
  poolHoldingPath,
  poolPathGuard,
  PoolFull,
  PoolGone,
  PoolNotEmpty,
  PoolStateConflict,
  storagePoolContents,
  updateStoragePool,
  type ImageStore,
  type PoolChanges,
  type PoolType,
  type StoragePool,
} from '../../../shared/db/storage.ts';
import type { Settings } from '../../../shared/settings.ts';
import { ADMINS, type Caller, completedEvent, defineCommand, type Recorded } from '../command.ts';
import { listResponse, matchesKeyword, page } from '../paging.ts';
import { isRootAdmin } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';
import { byName, clusterParam, INFRA_READERS, namesOf, podParam, zoneParam } from './zones.ts';


/** A 431 naming the parameter and its value, as Mold's parameter validation words it. */
const badValue = (api: string, name: string, value: string, reason: string) =>
  new InvalidParameter(`Unable to execute API command ${api.toLowerCase()} due to invalid value. Invalid parameter ${name} value=${value}: ${reason}`);

/** Java's Double.toString of a factor: 2 → "2.0". */
const javaDouble = (value: number) => (Number.isInteger(value) ? value.toFixed(1) : String(value));

// ---- URLs ----

interface PoolLocation {
  type: PoolType;
  host: string;
  port: number;
  path: string;
  userInfo?: string;
}

/** The path of a URL, decoded, without trailing slashes (but "/" stays "/"). */
function decodedPath(url: URL): string {
  const path = decodeURIComponent(url.pathname);
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

/**
 * Upstream's CloudStackPrimaryDataStoreLifeCycleImpl.initialize for the KVM pool types Mold runs:
 * nfs://host/path (NetworkFilesystem, port 2049), sharedmountpoint://localhost/path,
 * rbd://[user[:key]@]monitor[:port]/pool (port 6789), and file://localhost/path or
 * filesystem://localhost/path (Filesystem: the directory on each host's own disk).
 */
export function parsePoolUrl(api: string, url: string): PoolLocation {
  const refuse = (reason: string) => badValue(api, 'url', url, reason);
  if (!/^[a-z][a-z0-9+.-]*:/i.test(url)) throw refuse(`scheme is null ${url}, add nfs:// (or cifs://) as a prefix`);
  let parsed: URL;
  let path: string;
  try {
    parsed = new URL(url);
    path = decodedPath(parsed);
  } catch {
    throw refuse(`${url} is not a valid uri`);
  }
  const scheme = parsed.protocol.slice(0, -1).toLowerCase();
  const host = parsed.hostname;
  const port = parsed.port ? Number(parsed.port) : undefined;
  switch (scheme) {
    case 'nfs':
      if (!host || !path) throw refuse('host or path is null, should be nfs://hostname/path');
      return { type: 'NetworkFilesystem', host, port: port ?? 2049, path };
    case 'sharedmountpoint':
      if (!path || path === '/') throw refuse('host or path is null, should be sharedmountpoint://localhost/path');
      return { type: 'SharedMountPoint', host: host || 'localhost', port: 0, path };
    case 'rbd': {
      const pool = path.replace(/^\/+/, '');
      if (!host || !pool) throw refuse('host or path is null, should be rbd://hostname/pool');
      const user = decodeURIComponent(parsed.username);
      const key = decodeURIComponent(parsed.password);
      return { type: 'RBD', host, port: port ?? 6789, path: pool, ...(user && { userInfo: key ? `${user}:${key}` : user }) };
    }
    case 'file':
    case 'filesystem':
      if (!path || path === '/') throw refuse('host or path is null, should be file://localhost/path');
      return { type: 'Filesystem', host: 'localhost', port: 0, path };
    default:
      throw refuse(`unsupported storage pool protocol ${scheme}: KVM primary storage is nfs, sharedmountpoint, rbd or filesystem`);
  }
}

// ---- responses ----

interface PoolNames {
  zones: Map<string, string>;
  pods: Map<string, string>;
  clusters: Map<string, string>;
  factors: Map<string, number>;
}

/** Upstream's StoragePoolResponse (StoragePoolJoinDaoImpl.newStoragePoolResponse). */
export function renderStoragePool(pool: StoragePool, names: PoolNames) {
  return {
    id: pool.id,
    zoneid: pool.zoneId,
    zonename: names.zones.get(pool.zoneId),
    podid: pool.podId,
    podname: pool.podId ? names.pods.get(pool.podId) : undefined,
    name: pool.name,
    ipaddress: pool.host,
    path: pool.path,
    created: pool.created,
    type: pool.type,
    clusterid: pool.clusterId,
    clustername: pool.clusterId ? names.clusters.get(pool.clusterId) : undefined,
    disksizetotal: pool.capacitybytes,
    disksizeallocated: pool.disksizeallocated,
    disksizeused: pool.disksizeused,
    capacityiops: pool.capacityiops,
    tags: pool.tags.length > 0 ? pool.tags.join(',') : undefined,
    istagarule: pool.istagarule,
    state: pool.state,
    scope: pool.scope,
    overprovisionfactor: javaDouble(names.factors.get(pool.id) ?? 1),
    hypervisor: pool.hypervisor,
    provider: pool.provider,
    managed: pool.managed,
    hasannotations: false,
  };
}

async function renderPools(pools: StoragePool[], settings: Settings) {
  const clusterIds = pools.map((p) => p.clusterId).filter((id): id is string => Boolean(id));
  const podIds = pools.map((p) => p.podId).filter((id): id is string => Boolean(id));
  const [zones, pods, clusters, factors] = await Promise.all([
    namesOf(pools.map((p) => p.zoneId), getZone),
    namesOf(podIds, getPod),
    namesOf(clusterIds, getCluster),
    Promise.all(pools.map(async (p) => [p.id, await overprovisioningFactor(p, settings)] as const)).then((entries) => new Map(entries)),
  ]);
  const names = { zones, pods, clusters, factors };
  return new Map(pools.map((p) => [p.id, renderStoragePool(p, names)]));
}

/** Upstream's ImageStoreResponse. */
export function renderImageStore(store: ImageStore, zoneName: string | undefined) {
  return {
    id: store.id,
    zoneid: store.zoneId,
    zonename: zoneName,
    name: store.name,
    url: store.url,
    protocol: store.protocol,
    providername: store.providername,
    scope: store.scope,
    readonly: store.readonly,
    disksizetotal: store.disksizetotal,
    disksizeused: store.disksizeused,
    hasannotations: false,
  };
}

// ---- lookups ----

async function poolParam(api: string, name: string, id: string): Promise<StoragePool> {
  const pool = await getStoragePool(id.toLowerCase());
  if (!pool) throw noSuchEntity(api, name, id);
  return pool;
}

async function imageStoreParam(api: string, name: string, id: string): Promise<ImageStore> {
  const store = await getImageStore(id.toLowerCase());
  if (!store) throw noSuchEntity(api, name, id);
  return store;
}

const splitTags = (tags: string[] | string) =>
  (Array.isArray(tags) ? tags : tags.split(','))
    .map((tag) => tag.trim())
    .filter(Boolean);

function checkBytes(api: string, name: string, value: number | undefined, allowZero: boolean): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < 0 || (!allowZero && value === 0)) throw badValue(api, name, String(value), 'must be a positive number of bytes');
  return value;
}

/** Upstream's text when a disabled zone is touched by someone other than the root admin. */
function checkZoneUsable(zone: Zone, caller: Caller) {
  if (zone.allocationstate === 'Disabled' && !isRootAdmin(caller)) throw new PermissionDenied(`Cannot perform this operation, Zone is currently disabled: ${zone.id}`);
}

// ---- primary storage ----

const createStoragePoolCommand = defineCommand({
  name: 'createStoragePool',
  description: 'Creates a storage pool.',
  params: {
    name: param.string('the name for the storage pool'),
    url: param.string('the URL of the storage pool'),
    zoneid: param.uuid('the Zone ID for the storage pool'),
    podid: param.uuid('the Pod ID for the storage pool').optional(),
    clusterid: param.uuid('the cluster ID for the storage pool').optional(),
    scope: param.string('the scope of the storage: cluster or zone').optional(),
    hypervisor: param
      .string('hypervisor type of the hosts in zone that will be attached to this storage pool. KVM, VMware supported as of now.')
      .optional(),
    tags: param.string('the tags for the storage pool').optional(),
    istagarule: param.boolean('Whether the informed tag is a JS interpretable rule or not.').optional(),
    provider: param.string('the storage provider name').optional(),
    managed: param.boolean('whether the storage should be managed by CloudStack').optional(),
    capacitybytes: param.long('bytes CloudStack can provision from this storage pool').optional(),
    capacityiops: param.long('IOPS CloudStack can provision from this storage pool').optional(),
  },
  roles: ADMINS,
  handler: async ({ params, caller, settings }) => {
    const api = 'createStoragePool';
    const zone = await zoneParam(api, 'zoneid', params.zoneid);
    const givenPod = params.podid ? await podParam(api, 'podid', params.podid) : undefined;
    const givenCluster = params.clusterid ? await clusterParam(api, 'clusterid', params.clusterid) : undefined;
    let scope: 'CLUSTER' | 'ZONE' = 'CLUSTER';
    if (params.scope !== undefined) {
      const wanted = params.scope.toUpperCase();
      if (wanted !== 'CLUSTER' && wanted !== 'ZONE') throw new InvalidParameter(`invalid scope for pool ${params.scope}`);
      scope = wanted;
    }
    let cluster: Cluster | undefined;
    if (scope === 'CLUSTER') {
      if (!givenCluster) throw new InvalidParameter("cluster id can't be null, if scope is cluster");
      if (!givenPod) throw new InvalidParameter('Cluster id requires pod id');
      if (givenPod.zoneId !== zone.id) throw new InvalidParameter("Pod with specified podId doesn't belong to the zone with specified zoneId");
      if (givenCluster.podId !== givenPod.id) throw new InvalidParameter("Cluster with specified clusterId doesn't belong to the pod with specified podId");
      cluster = givenCluster;
    } else {
      // Upstream ignores the pod and cluster of a zone-wide pool; it needs the hosts' hypervisor.
      if (params.hypervisor === undefined) {
        throw new InvalidParameter('Missing parameter hypervisor. Hypervisor type is required to create zone wide primary storage.');
      }
      if (params.hypervisor.toLowerCase() !== 'kvm') throw new InvalidParameter(`Zone wide storage pool is not supported for hypervisor type ${params.hypervisor}`);
    }
    checkZoneUsable(zone, caller);
    const location = parsePoolUrl(api, params.url);
    const givenBytes = checkBytes(api, 'capacitybytes', params.capacitybytes, false);
    const capacitybytes = givenBytes ?? 0;
    const capacityiops = checkBytes(api, 'capacityiops', params.capacityiops, true);
    // Upstream's words; a zone-wide pool has no pod (id=null).
    const inUse = (podId: string | undefined) => new InvalidParameter(`Storage pool ${params.url} already in use by another pod (id=${podId ?? 'null'})`);
    const guard = poolPathGuard(location);
    if (guard) {
      const holder = await poolHoldingPath(guard);
      if (holder) throw inUse(holder.podId);
    }
    const pool = await createStoragePool({
      name: params.name,
      zoneId: zone.id,
      ...(cluster && { podId: cluster.podId, clusterId: cluster.id }),
      scope,
      hypervisor: 'KVM',
      ...location,
      url: params.url,
      tags: params.tags ? splitTags(params.tags) : [],
      istagarule: Boolean(params.istagarule),
      capacitybytes,
      // Without a size, a shared mount point's is what its hosts measure (until then 0: nothing fits).
      ...(givenBytes === undefined && location.type === 'SharedMountPoint' && { capacityfromhosts: true }),
      ...(capacityiops !== undefined && { capacityiops }),
    }).catch(async (error) => {
      if (error instanceof PathInUse) throw inUse(error.poolId ? (await getStoragePool(error.poolId))?.podId : undefined);
      if (error instanceof ParentGone) throw cluster ? noSuchEntity(api, 'clusterid', cluster.id) : noSuchEntity(api, 'zoneid', zone.id);
      throw error;
    });
    const rendered = await renderPools([pool], settings);
    return {
      body: { storagepool: rendered.get(pool.id)! },
      events: [completedEvent('STORAGE.POOL.CREATE', 'creating storage pool', { id: pool.id, type: 'StoragePool' }, `Storage pool Name: ${pool.name}`)],
    };
  },
});

const listStoragePoolsCommand = defineCommand({
  name: 'listStoragePools',
  description: 'Lists storage pools.',
  params: {
    id: param.uuid('the ID of the storage pool').optional(),
    name: param.string('the name of the storage pool').optional(),
    zoneid: param.uuid('the Zone ID for the storage pool').optional(),
    podid: param.uuid('the Pod ID for the storage pool').optional(),
    clusterid: param.uuid('list storage pools belongig to the specific cluster').optional(),
    ipaddress: param.string('the IP address for the storage pool').optional(),
    path: param.string('the storage pool path').optional(),
    scope: param.string('the scope of the storage pool').optional(),
    status: param.string('the status of the storage pool').optional(),
    ...listParams,
  },
  roles: INFRA_READERS,
  handler: async ({ params, settings }) => {
    const eq = (wanted: string | undefined, actual: string | undefined) => wanted === undefined || wanted.toLowerCase() === actual?.toLowerCase();
    const matches = (await listStoragePools({ zoneId: params.zoneid?.toLowerCase() }))
      .filter((p) => eq(params.id, p.id) && eq(params.podid, p.podId) && eq(params.clusterid, p.clusterId))
      .filter((p) => eq(params.name, p.name) && eq(params.ipaddress, p.host) && (params.path === undefined || params.path === p.path))
      .filter((p) => eq(params.scope, p.scope) && eq(params.status, p.state))
      .filter((p) => matchesKeyword(params.keyword, p.name, p.type))
      .sort(byName);
    // Only the requested page is rendered: each pool's over-provisioning factor is a read.
    const shown = page(matches, params, settings);
    const rendered = await renderPools(shown, settings);
    return { body: listBody('storagepool', shown.map((p) => rendered.get(p.id)!), matches.length) };
  },
});

const updateStoragePoolCommand = defineCommand({
  name: 'updateStoragePool',
  description: 'Updates a storage pool.',
  since: '3.0.0',
  params: {
    id: param.uuid('The Id of the storage pool'),
    name: param.string('Change the name of the storage pool').optional(),
    tags: param.list(param.string('tag'), 'Comma-separated list of tags for the storage pool').optional(),
    istagarule: param.boolean('Whether the informed tag is a JS interpretable rule or not.').optional(),
    capacitybytes: param.long('Bytes CloudStack can provision from this storage pool').optional(),
    capacityiops: param.long('IOPS CloudStack can provision from this storage pool').optional(),
    enabled: param.boolean('false to disable the pool for allocation of new volumes, true to enable it back.').optional(),
  },
  roles: ADMINS,
  handler: async ({ params, settings }) => {
    const api = 'updateStoragePool';
    const pool = await poolParam(api, 'id', params.id);
    const changes: PoolChanges = {};
    if (params.name !== undefined && params.name.trim() !== '') changes.name = params.name;
    if (params.tags !== undefined) changes.tags = splitTags(params.tags);
    if (params.istagarule !== undefined) changes.istagarule = params.istagarule;
    const capacitybytes = checkBytes(api, 'capacitybytes', params.capacitybytes, false);
    if (capacitybytes !== undefined && capacitybytes !== pool.capacitybytes) changes.capacitybytes = capacitybytes;
    const capacityiops = checkBytes(api, 'capacityiops', params.capacityiops, true);
    if (capacityiops !== undefined) changes.capacityiops = capacityiops;
    const stateRefusal = (enable: boolean, state: string) =>
      new InvalidParameter(`Primary storage with id ${pool.id} cannot be ${enable ? 'enabled' : 'disabled'}. Storage pool state : ${state}`);
    if (params.enabled !== undefined) {
      const from = params.enabled ? 'Disabled' : 'Up';
      if (pool.state !== from) throw stateRefusal(params.enabled, pool.state);
      changes.state = { from, to: params.enabled ? 'Up' : 'Disabled' };
    }
    const factor = await overprovisioningFactor(pool, settings);
    const shrinkRefusal = () =>
      badValue(api, 'capacitybytes', String(capacitybytes), 'Cannot reduce the number of bytes for this storage pool as it would lead to an insufficient number of bytes');
    const updated = await updateStoragePool(pool, changes, factor).catch((error) => {
      if (error instanceof PoolStateConflict) throw stateRefusal(Boolean(params.enabled), error.state);
      if (error instanceof PoolFull) throw shrinkRefusal();
      if (error instanceof PoolGone) throw noSuchEntity(api, 'id', params.id);
      throw error;
    });
    const events: Recorded[] = [];
    const resource = { id: pool.id, type: 'StoragePool' as const };
    if (changes.name !== undefined || changes.tags !== undefined || changes.istagarule !== undefined || changes.capacitybytes !== undefined || changes.capacityiops !== undefined) {
      events.push(completedEvent('STORAGE.POOL.UPDATE', 'updating storage pool', resource, `Storage pool Id: ${pool.id}`));
    }
    if (changes.state) {
      events.push(
        params.enabled
          ? completedEvent('ENABLE.PS', 'enable storage pool', resource, `Storage pool Id: ${pool.id}`)
          : completedEvent('DISABLE.PS', 'disable storage pool', resource, `Storage pool Id: ${pool.id}`),
      );
    }
    const rendered = await renderPools([updated], settings);
    return { body: { storagepool: rendered.get(pool.id)! }, events };
  },
});

const deleteStoragePoolCommand = defineCommand({
  name: 'deleteStoragePool',
  description: 'Deletes a storage pool.',
  params: {
    id: param.uuid('Storage pool id'),
    forced: param.boolean('Force destroy storage pool (force expunge volumes in Destroyed state as a part of pool removal)').optional(),
  },
  roles: ADMINS,
  handler: async ({ params }) => {
    const api = 'deleteStoragePool';
    const pool = await poolParam(api, 'id', params.id);
    // Upstream deletes only pools in Maintenance; Mold has no storage maintenance yet, so a
    // Disabled pool (no new volumes) may be deleted too. An Up pool may not.
    const notInMaintenance = () => new InvalidParameter(`Unable to delete storage due to it is not in Maintenance state, id: ${pool.id}`);
    if (pool.state === 'Up') throw notInMaintenance();
    const inTheWay = async () => {
      const contents = await storagePoolContents(pool);
      const base = `Cannot delete pool ${pool.name} as there are associated volumes for this pool`;
      return new ResourceInUse(contents ? `${base}: ${contents.names.join(', ')}` : base);
    };
    if ((await storagePoolContents(pool)) || pool.disksizeallocated > 0) throw await inTheWay();
    await deleteStoragePoolRecord(pool).catch(async (error) => {
      if (error instanceof PoolStateConflict) throw notInMaintenance();
      if (error instanceof PoolNotEmpty) throw await inTheWay();
      if (error instanceof PoolGone) throw noSuchEntity(api, 'id', params.id);
      throw error;
    });
    return {
      body: { success: true },
      events: [completedEvent('STORAGE.POOL.DELETE', 'deleting storage pool', { id: pool.id, type: 'StoragePool' }, `Storage pool Id: ${pool.id}`)],
    };
  },
});

// ---- secondary storage ----

const addImageStoreCommand = defineCommand({
  name: 'addImageStore',
  description: 'Adds backup image store.',
  since: '4.2.0',
  params: {
    name: param.string('The name for the image store').optional(),
    url: param.string('The URL for the image store', 2048).optional(),
    zoneid: param.uuid('The Zone ID for the image store').optional(),
    provider: param.string('The image store provider name'),
  },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    const api = 'addImageStore';
    // Secondary storage must be NFS (the spec): S3, Swift and the rest are refused.
    if (params.provider.toUpperCase() !== 'NFS') {
      throw badValue(api, 'provider', params.provider, 'secondary storage must be NFS: the only image store provider is NFS');
    }
    if (params.url === undefined) throw new InvalidParameter(`Unable to execute API command ${api.toLowerCase()} due to missing parameter url`);
    const url = params.url;
    const refuse = (reason: string) => badValue(api, 'url', url, reason);
    if (!/^[a-z][a-z0-9+.-]*:/i.test(url)) throw refuse(`uri.scheme is null ${url}, add nfs:// (or cifs://) as a prefix`);
    let parsed: URL;
    let path: string;
    try {
      parsed = new URL(url);
      path = decodedPath(parsed);
    } catch {
      throw refuse(`${url} is not a valid uri`);
    }
    const scheme = parsed.protocol.slice(0, -1).toLowerCase();
    if (scheme !== 'nfs') throw refuse(`unsupported image store protocol ${scheme}: secondary storage must be nfs://hostname/path`);
    if (!parsed.hostname || !path) throw refuse("Your host and/or path is wrong.  Make sure it's of the format nfs://hostname/path");
    if (params.zoneid === undefined) throw new InvalidParameter('DataCenter id is null, and NFS secondary storage has to be associated with a data center');
    const zone = await zoneParam(api, 'zoneid', params.zoneid);
    const name = params.name ?? url;
    const duplicate = () => new InvalidParameter(`The image store with name ${name} already exists, try creating with another name`);
    if ((await listImageStores()).some((store) => store.name.toLowerCase() === name.toLowerCase())) throw duplicate();
    checkZoneUsable(zone, caller);
    const store = await createImageStore({
      name,
      zoneId: zone.id,
      url,
      protocol: 'nfs',
      providername: 'NFS',
      scope: 'ZONE',
      readonly: false,
      host: parsed.hostname,
      path,
    }).catch((error) => {
      if (error instanceof ImageStoreNameInUse) throw duplicate();
      if (error instanceof ParentGone) throw noSuchEntity(api, 'zoneid', zone.id);
      throw error;
    });
    return {
      body: { imagestore: renderImageStore(store, zone.name) },
      events: [completedEvent('IMAGE.STORE.CREATE', 'adding image store', { id: store.id, type: 'ImageStore' }, `Image store Name: ${store.name}`)],
    };
  },
});

const listImageStoresCommand = defineCommand({
  name: 'listImageStores',
  description: 'Lists image stores.',
  since: '4.2.0',
  params: {
    id: param.uuid('The ID of the storage pool').optional(),
    name: param.string('The name of the image store').optional(),
    zoneid: param.uuid('The Zone ID for the image store').optional(),
    protocol: param.string('The image store protocol').optional(),
    provider: param.string('The image store provider').optional(),
    readonly: param.boolean('Read-only status of the image store').optional(),
    ...listParams,
  },
  roles: INFRA_READERS,
  handler: async ({ params, settings }) => {
    const eq = (wanted: string | undefined, actual: string | undefined) => wanted === undefined || wanted.toLowerCase() === actual?.toLowerCase();
    const matches = (await listImageStores({ zoneId: params.zoneid?.toLowerCase() }))
      .filter((s) => eq(params.id, s.id) && eq(params.name, s.name) && eq(params.protocol, s.protocol) && eq(params.provider, s.providername))
      .filter((s) => params.readonly === undefined || s.readonly === params.readonly)
      .filter((s) => matchesKeyword(params.keyword, s.name))
      .sort(byName);
    const zones = await namesOf(matches.map((s) => s.zoneId), getZone);
    return { body: listResponse('imagestore', matches, params, settings, (s) => renderImageStore(s, zones.get(s.zoneId))) };
  },
});

const deleteImageStoreCommand = defineCommand({
  name: 'deleteImageStore',
  description: 'Deletes an image store or Secondary Storage.',
  since: '4.2.0',
  params: {
    id: param.uuid('The image store ID or Secondary Storage ID.'),
  },
  roles: ADMINS,
  handler: async ({ params }) => {
    const api = 'deleteImageStore';
    const store = await imageStoreParam(api, 'id', params.id);
    const refusal = await imageStoreContents(store);
    if (refusal) throw new ResourceInUse(refusal);
    await deleteImageStoreRecord(store).catch((error) => {
      throw error instanceof PoolGone ? noSuchEntity(api, 'id', params.id) : error;
    });
    return {
      body: { success: true },
      events: [completedEvent('IMAGE.STORE.DELETE', 'deleting image store', { id: store.id, type: 'ImageStore' }, `Image store Id: ${store.id}`)],
    };
  },
});

export const storageCommands = [
  createStoragePoolCommand,
  listStoragePoolsCommand,
  updateStoragePoolCommand,
  deleteStoragePoolCommand,
  addImageStoreCommand,
  listImageStoresCommand,
  deleteImageStoreCommand,
];
