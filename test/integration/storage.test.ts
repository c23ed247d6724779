// Primary storage pools and image stores through /client/api: upstream's shapes, every KVM pool
// type, listing with filters and paging, who may do what, every refusal (and that it changes
// nothing), capacity reserved atomically against capacity × storage.overprovisioning.factor, and
// zones and clusters that keep their storage from being orphaned.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDomain } from '../../shared/db/identity.ts';
import { getStoragePool, PoolFull, PoolStateConflict, releasePoolBytes, reservePoolBytes } from '../../shared/db/storage.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { missing, noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';

const DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const GIB = 1024 ** 3;

describe('storage', () => {
  let world: World;
  let admin: ApiClient;
  let user: ApiClient;
  let resourceAdmin: ApiClient;
  let domainAdmin: ApiClient;
  let zone: any;
  let pod: any;
  let cluster: any;
  let otherPod: any;
  let otherCluster: any;
  let otherZone: any;

  const makeZone = async () => ok(await admin.call('createZone', { name: unique('szone'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
  let podNet = 0;
  const makePod = async (zoneid: string) => {
    podNet += 1;
    return ok(
      await admin.call('createPod', { zoneid, name: unique('spod'), gateway: `10.${podNet}.0.1`, netmask: '255.255.255.0', startip: `10.${podNet}.0.10`, endip: `10.${podNet}.0.20` }),
      'createPod',
    ).pod;
  };
  const makeCluster = async (zoneid: string, podid: string) =>
    ok(await admin.call('addCluster', { zoneid, podid, clustername: unique('scluster'), hypervisor: 'KVM', clustertype: 'CloudManaged' }), 'addCluster').cluster[0];
  const nfsUrl = () => `nfs://10.9.9.9/export/${unique('primary')}`;
  const makePool = async (fields: Record<string, string | number> = {}) =>
    ok(await admin.call('createStoragePool', { zoneid: zone.id, podid: pod.id, clusterid: cluster.id, name: unique('pool'), url: nfsUrl(), ...fields }), 'createStoragePool')
      .storagepool;
  const pools = async (params: Record<string, string | number> = {}) => ok(await admin.call('listStoragePools', { pagesize: -1, ...params }), 'listStoragePools');
  const poolCount = async () => (await pools()).count ?? 0;
  const stores = async (params: Record<string, string | number> = {}) => ok(await admin.call('listImageStores', { pagesize: -1, ...params }), 'listImageStores');
  const storeCount = async () => (await stores()).count ?? 0;
  const eventsOf = async (type: string) => (ok(await admin.call('listEvents', { type, listall: true, pagesize: -1 }), 'listEvents').event ?? []) as any[];
  const disable = async (id: string) => ok(await admin.call('updateStoragePool', { id, enabled: false }), 'updateStoragePool');

  beforeAll(async () => {
    world = await startWorld();
    admin = world.admin;
    useRuntimeEndpoints(world.runtime);
    const root = (await getDomain(world.rootDomainId))!;
    user = (await seedMember(world.runtime.apiUrl, unique('suser'), root, 'User')).client;
    resourceAdmin = (await seedMember(world.runtime.apiUrl, unique('sra'), root, 'Resource Admin')).client;
    domainAdmin = (await seedMember(world.runtime.apiUrl, unique('sda'), root, 'Domain Admin')).client;
    zone = await makeZone();
    pod = await makePod(zone.id);
    cluster = await makeCluster(zone.id, pod.id);
    otherPod = await makePod(zone.id);
    otherCluster = await makeCluster(zone.id, otherPod.id);
    otherZone = await makeZone();
  });
  afterAll(async () => {
    await world?.runtime.stop();
  });

  describe('createStoragePool', () => {
    it('creates a cluster-wide NFS pool with upstream’s StoragePoolResponse and records STORAGE.POOL.CREATE', async () => {
      const name = unique('nfs');
      const answer = await admin.call('createStoragePool', {
        zoneid: zone.id,
        podid: pod.id,
        clusterid: cluster.id,
        name,
        url: 'nfs://10.1.1.1/export/first',
        tags: 'ssd, fast',
        capacitybytes: 100 * GIB,
      });
      expect(Object.keys(answer.body)).toEqual(['createstoragepoolresponse']);
      const pool = ok(answer, 'createStoragePool').storagepool;
      expect(pool).toEqual({
        id: expect.stringMatching(UUID),
        zoneid: zone.id,
        zonename: zone.name,
        podid: pod.id,
        podname: pod.name,
        name,
        ipaddress: '10.1.1.1',
        path: '/export/first',
        created: expect.stringMatching(DATE),
        type: 'NetworkFilesystem',
        clusterid: cluster.id,
        clustername: cluster.name,
        disksizetotal: 100 * GIB,
        disksizeallocated: 0,
        disksizeused: 0,
        tags: 'ssd,fast',
        istagarule: false,
        state: 'Up',
        scope: 'CLUSTER',
        overprovisionfactor: '2.0',
        hypervisor: 'KVM',
        provider: 'DefaultPrimary',
        managed: false,
        hasannotations: false,
      });
      const [event] = await eventsOf('STORAGE.POOL.CREATE');
      expect(event).toMatchObject({ type: 'STORAGE.POOL.CREATE', state: 'Completed', level: 'INFO', resourceid: pool.id, resourcetype: 'StoragePool' });
      expect((await pools({ id: pool.id })).storagepool).toEqual([pool]);
      // The scoped settings find the pool's cluster and zone through the record's clusterId and zoneId.
      const record = await getStoragePool(pool.id);
      expect(record).toMatchObject({ clusterId: cluster.id, zoneId: zone.id, podId: pod.id, port: 2049 });
    });

    it('takes every KVM pool type: SharedMountPoint, RBD and Filesystem (host-local)', async () => {
      const smp = await makePool({ url: 'SharedMountPoint://localhost/mnt/gfs/' });
      expect(smp).toMatchObject({ type: 'SharedMountPoint', ipaddress: 'localhost', path: '/mnt/gfs', scope: 'CLUSTER' });
      // A shared mount point is a local path of each host: the same path may back several pools.
      const again = await makePool({ url: 'sharedmountpoint://localhost/mnt/gfs', clusterid: otherCluster.id, podid: otherPod.id });
      expect(again).toMatchObject({ type: 'SharedMountPoint', path: '/mnt/gfs', clusterid: otherCluster.id });

      const rbd = await makePool({ url: 'rbd://cloudstack:AQBzd2VhcmU%3D@10.2.2.2/rbdpool' });
      expect(rbd).toMatchObject({ type: 'RBD', ipaddress: '10.2.2.2', path: 'rbdpool' });
      expect(JSON.stringify(rbd)).not.toContain('AQBzd2VhcmU');
      expect(await getStoragePool(rbd.id)).toMatchObject({ port: 6789, userInfo: 'cloudstack:AQBzd2VhcmU=' });

      const local = await makePool({ url: 'file:///var/lib/libvirt/images' });
      expect(local).toMatchObject({ type: 'Filesystem', ipaddress: 'localhost', path: '/var/lib/libvirt/images' });
      const local2 = await makePool({ url: 'Filesystem://localhost/var/lib/libvirt/images', clusterid: otherCluster.id, podid: otherPod.id });
      expect(local2).toMatchObject({ type: 'Filesystem', path: '/var/lib/libvirt/images' });
    });

    it('creates a zone-wide pool for KVM hosts, without pod or cluster', async () => {
      const pool = await makePool({ scope: 'zone', hypervisor: 'KVM', podid: pod.id, clusterid: cluster.id, url: 'nfs://10.3.3.3:2050/zonewide' });
      expect(pool).toMatchObject({ scope: 'ZONE', hypervisor: 'KVM', zoneid: zone.id, ipaddress: '10.3.3.3', path: '/zonewide' });
      expect(pool.podid).toBeUndefined();
      expect(pool.clusterid).toBeUndefined();
      expect(await getStoragePool(pool.id)).toMatchObject({ port: 2050 });
    });

    it('refuses what upstream refuses, naming the parameter, and changes nothing', async () => {
      const taken = await makePool({ url: 'nfs://10.4.4.4/taken' });
      const before = await poolCount();
      const eventsBefore = (await eventsOf('STORAGE.POOL.CREATE')).length;
      const base = { zoneid: zone.id, podid: pod.id, clusterid: cluster.id, name: unique('bad'), url: nfsUrl() };
      const badUrl = (url: string, reason: string) =>
        `Unable to execute API command createstoragepool due to invalid value. Invalid parameter url value=${url}: ${reason}`;
      const cases: [Record<string, string | number>, string | RegExp][] = [
        [{ ...base, url: '10.4.4.4:/export' }, badUrl('10.4.4.4:/export', 'scheme is null 10.4.4.4:/export, add nfs:// (or cifs://) as a prefix')],
        [{ ...base, url: 'nfs:///export' }, badUrl('nfs:///export', 'host or path is null, should be nfs://hostname/path')],
        [{ ...base, url: 'nfs://10.4.4.4' }, badUrl('nfs://10.4.4.4', 'host or path is null, should be nfs://hostname/path')],
        [{ ...base, url: 'nfs://[bad/x' }, badUrl('nfs://[bad/x', 'nfs://[bad/x is not a valid uri')],
        [{ ...base, url: 'rbd://10.4.4.4' }, badUrl('rbd://10.4.4.4', 'host or path is null, should be rbd://hostname/pool')],
        [{ ...base, url: 'sharedmountpoint://localhost' }, badUrl('sharedmountpoint://localhost', 'host or path is null, should be sharedmountpoint://localhost/path')],
        [{ ...base, url: 'file://localhost' }, badUrl('file://localhost', 'host or path is null, should be file://localhost/path')],
        [{ ...base, url: 'iscsi://10.4.4.4/iqn.2010-01.com.example:lun/1' }, /Invalid parameter url value=iscsi:.*unsupported storage pool protocol iscsi/],
        [{ ...base, url: 'cifs://10.4.4.4/share' }, /unsupported storage pool protocol cifs: KVM primary storage is nfs, sharedmountpoint, rbd or filesystem$/],
        [{ ...base, scope: 'host' }, 'invalid scope for pool host'],
        [{ zoneid: zone.id, podid: pod.id, name: unique('bad'), url: nfsUrl() }, "cluster id can't be null, if scope is cluster"],
        [{ zoneid: zone.id, clusterid: cluster.id, name: unique('bad'), url: nfsUrl() }, 'Cluster id requires pod id'],
        [{ ...base, zoneid: otherZone.id }, "Pod with specified podId doesn't belong to the zone with specified zoneId"],
        [{ ...base, clusterid: otherCluster.id }, "Cluster with specified clusterId doesn't belong to the pod with specified podId"],
        [{ ...base, scope: 'zone' }, 'Missing parameter hypervisor. Hypervisor type is required to create zone wide primary storage.'],
        [{ ...base, scope: 'zone', hypervisor: 'XenServer' }, 'Zone wide storage pool is not supported for hypervisor type XenServer'],
        [{ ...base, url: 'nfs://10.4.4.4/taken/' }, `Storage pool nfs://10.4.4.4/taken/ already in use by another pod (id=${pod.id})`],
        [{ ...base, url: 'nfs://10.4.4.4/taken', clusterid: otherCluster.id, podid: otherPod.id }, `Storage pool nfs://10.4.4.4/taken already in use by another pod (id=${pod.id})`],
        [{ ...base, capacitybytes: -5 }, /Invalid parameter capacitybytes value=-5: must be a positive number of bytes/],
        [{ ...base, capacitybytes: 'lots' }, /Invalid parameter capacitybytes value=lots/],
        [{ ...base, zoneid: crypto.randomUUID() }, /Invalid parameter zoneid value=/],
        [{ ...base, clusterid: crypto.randomUUID() }, /Invalid parameter clusterid value=/],
        [{ ...base, podid: 'not-a-uuid' }, /Invalid parameter podid value=not-a-uuid/],
        [{ zoneid: zone.id, podid: pod.id, clusterid: cluster.id, url: nfsUrl() }, missing('createstoragepool', 'name')],
        [{ zoneid: zone.id, podid: pod.id, clusterid: cluster.id, name: 'x' }, missing('createstoragepool', 'url')],
        [{ podid: pod.id, clusterid: cluster.id, name: 'x', url: nfsUrl() }, missing('createstoragepool', 'zoneid')],
      ];
      for (const [params, text] of cases) refused(await admin.call('createStoragePool', params), 'createStoragePool', 431, text, 4350);
      expect(await poolCount()).toBe(before);
      expect((await eventsOf('STORAGE.POOL.CREATE')).length).toBe(eventsBefore);
      expect((await pools({ id: taken.id })).storagepool).toHaveLength(1);
    });
  });

  describe('listStoragePools', () => {
    it('filters by zone, pod, cluster, scope, status, name, address, path and keyword, and pages', async () => {
      const zone2 = await makeZone();
      const pod2 = await makePod(zone2.id);
      const cluster2 = await makeCluster(zone2.id, pod2.id);
      const make = (name: string, fields: Record<string, string> = {}) =>
        makePool({ zoneid: zone2.id, podid: pod2.id, clusterid: cluster2.id, name, ...fields });
      const a = await make('list-a', { url: 'nfs://10.5.5.5/a' });
      const b = await make('list-b', { url: 'rbd://10.5.5.6/b' });
      const c = await make('list-c', { scope: 'zone', hypervisor: 'kvm', url: 'nfs://10.5.5.7/c' });
      await disable(b.id);
      const ids = (body: any) => (body.storagepool ?? []).map((p: any) => p.id);

      expect(ids(await pools({ zoneid: zone2.id }))).toEqual([a.id, b.id, c.id]);
      expect((await pools({ zoneid: zone2.id })).count).toBe(3);
      expect(ids(await pools({ zoneid: zone2.id, clusterid: cluster2.id }))).toEqual([a.id, b.id]);
      expect(ids(await pools({ podid: pod2.id }))).toEqual([a.id, b.id]);
      expect(ids(await pools({ zoneid: zone2.id, scope: 'ZONE' }))).toEqual([c.id]);
      expect(ids(await pools({ zoneid: zone2.id, scope: 'cluster' }))).toEqual([a.id, b.id]);
      expect(ids(await pools({ zoneid: zone2.id, status: 'Disabled' }))).toEqual([b.id]);
      expect(ids(await pools({ zoneid: zone2.id, status: 'Up' }))).toEqual([a.id, c.id]);
      expect(ids(await pools({ name: 'list-c' }))).toEqual([c.id]);
      expect(ids(await pools({ ipaddress: '10.5.5.6' }))).toEqual([b.id]);
      expect(ids(await pools({ zoneid: zone2.id, path: '/a' }))).toEqual([a.id]);
      expect(ids(await pools({ zoneid: zone2.id, keyword: 'LIST-' }))).toEqual([a.id, b.id, c.id]);
      expect(ids(await pools({ zoneid: zone2.id, keyword: 'rbd' }))).toEqual([b.id]);
      expect(ids(await pools({ id: a.id }))).toEqual([a.id]);
      expect((await pools({ id: crypto.randomUUID() })).count).toBeUndefined();

      const page2 = ok(await admin.call('listStoragePools', { zoneid: zone2.id, page: 2, pagesize: 2 }), 'listStoragePools');
      expect(page2.count).toBe(3);
      expect(ids(page2)).toEqual([c.id]);
      refused(await admin.call('listStoragePools', { zoneid: zone2.id, pagesize: 0 }), 'listStoragePools', 431, /Page size can't exceed/);
    });
  });

  describe('updateStoragePool', () => {
    it('changes name, tags and capacity, and disables and enables (DISABLE.PS, ENABLE.PS)', async () => {
      const pool = await makePool({ capacitybytes: 10 * GIB });
      const updated = ok(await admin.call('updateStoragePool', { id: pool.id, name: 'renamed', tags: 'gold,silver', capacitybytes: 20 * GIB }), 'updateStoragePool').storagepool;
      expect(updated).toEqual({ ...pool, name: 'renamed', tags: 'gold,silver', disksizetotal: 20 * GIB });
      expect((await eventsOf('STORAGE.POOL.UPDATE')).some((e) => e.resourceid === pool.id)).toBe(true);

      const disabled = (await disable(pool.id)).storagepool;
      expect(disabled.state).toBe('Disabled');
      expect((await eventsOf('DISABLE.PS')).some((e) => e.resourceid === pool.id)).toBe(true);
      refused(
        await admin.call('updateStoragePool', { id: pool.id, enabled: false }),
        'updateStoragePool',
        431,
        `Primary storage with id ${pool.id} cannot be disabled. Storage pool state : Disabled`,
      );
      const enabled = ok(await admin.call('updateStoragePool', { id: pool.id, enabled: true }), 'updateStoragePool').storagepool;
      expect(enabled.state).toBe('Up');
      expect((await eventsOf('ENABLE.PS')).some((e) => e.resourceid === pool.id)).toBe(true);
      refused(
        await admin.call('updateStoragePool', { id: pool.id, enabled: true, name: 'not-applied' }),
        'updateStoragePool',
        431,
        `Primary storage with id ${pool.id} cannot be enabled. Storage pool state : Up`,
      );
      expect((await pools({ id: pool.id })).storagepool[0]).toEqual({ ...updated, state: 'Up' });
    });

    it('refuses an unknown pool, a bad capacity, and a capacity below what is allocated, changing nothing', async () => {
      const pool = await makePool({ capacitybytes: 1000 });
      refused(await admin.call('updateStoragePool', { id: crypto.randomUUID(), name: 'x' }), 'updateStoragePool', 431, /Invalid parameter id value=/);
      refused(await admin.call('updateStoragePool', { id: pool.id, capacitybytes: 0 }), 'updateStoragePool', 431, /Invalid parameter capacitybytes value=0/);
      await reservePoolBytes(pool.id, 1500); // 1000 bytes × the default factor 2
      refused(
        await admin.call('updateStoragePool', { id: pool.id, capacitybytes: 700, name: 'not-applied' }),
        'updateStoragePool',
        431,
        /Invalid parameter capacitybytes value=700: Cannot reduce the number of bytes for this storage pool as it would lead to an insufficient number of bytes/,
      );
      expect((await pools({ id: pool.id })).storagepool[0]).toMatchObject({ name: pool.name, disksizetotal: 1000, disksizeallocated: 1500 });
      ok(await admin.call('updateStoragePool', { id: pool.id, capacitybytes: 750 }), 'updateStoragePool');
      expect((await pools({ id: pool.id })).storagepool[0]).toMatchObject({ disksizetotal: 750, disksizeallocated: 1500 });
      await releasePoolBytes(pool.id, 1500);
    });
  });

  describe('capacity', () => {
    it('reserves within capacity × storage.overprovisioning.factor and releases, never below zero', async () => {
      const pool = await makePool({ capacitybytes: 1000 });
      expect((await reservePoolBytes(pool.id, 1200)).disksizeallocated).toBe(1200);
      await expect(reservePoolBytes(pool.id, 801)).rejects.toBeInstanceOf(PoolFull);
      expect((await reservePoolBytes(pool.id, 800)).disksizeallocated).toBe(2000);
      await expect(reservePoolBytes(pool.id, 1)).rejects.toBeInstanceOf(PoolFull);
      expect((await pools({ id: pool.id })).storagepool[0].disksizeallocated).toBe(2000);

      // The pool-scoped factor applies: 3 × 1000.
      ok(await admin.call('updateConfiguration', { name: 'storage.overprovisioning.factor', value: '3', storageid: pool.id }), 'updateConfiguration');
      expect((await pools({ id: pool.id })).storagepool[0].overprovisionfactor).toBe('3.0');
      expect((await reservePoolBytes(pool.id, 1000)).disksizeallocated).toBe(3000);
      await expect(reservePoolBytes(pool.id, 1)).rejects.toBeInstanceOf(PoolFull);

      await releasePoolBytes(pool.id, 3000);
      await expect(releasePoolBytes(pool.id, 1)).rejects.toBeInstanceOf(RangeError);
      expect((await getStoragePool(pool.id))!.disksizeallocated).toBe(0);

      await disable(pool.id);
      await expect(reservePoolBytes(pool.id, 1)).rejects.toBeInstanceOf(PoolStateConflict);
    });

    it('never over-commits under concurrency: 30 parallel reservations, room for 10', async () => {
      const pool = await makePool({ capacitybytes: 500 }); // × 2 = 1000 bytes
      const results = await Promise.allSettled(Array.from({ length: 30 }, () => reservePoolBytes(pool.id, 100)));
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(10);
      expect(lost.every((r) => r.reason instanceof PoolFull)).toBe(true);
      expect((await getStoragePool(pool.id))!.disksizeallocated).toBe(1000);
      await Promise.all(Array.from({ length: 10 }, () => releasePoolBytes(pool.id, 100)));
      expect((await getStoragePool(pool.id))!.disksizeallocated).toBe(0);
    });
  });

  describe('deleteStoragePool', () => {
    it('deletes a disabled pool with nothing allocated; refuses an Up pool (431) and one holding volumes (536)', async () => {
      const url = 'nfs://10.6.6.6/reused';
      const pool = await makePool({ url, capacitybytes: 1000 });
      refused(await admin.call('deleteStoragePool', { id: pool.id }), 'deleteStoragePool', 431, `Unable to delete storage due to it is not in Maintenance state, id: ${pool.id}`);
      await reservePoolBytes(pool.id, 10);
      await disable(pool.id);
      refused(
        await admin.call('deleteStoragePool', { id: pool.id, forced: true }),
        'deleteStoragePool',
        536,
        `Cannot delete pool ${pool.name} as there are associated volumes for this pool`,
        4375,
      );
      expect((await pools({ id: pool.id })).count).toBe(1);
      await releasePoolBytes(pool.id, 10);
      const answer = await admin.call('deleteStoragePool', { id: pool.id });
      expect(answer.body).toEqual({ deletestoragepoolresponse: { success: true } });
      expect((await pools({ id: pool.id })).count).toBeUndefined();
      expect((await eventsOf('STORAGE.POOL.DELETE')).some((e) => e.resourceid === pool.id)).toBe(true);
      refused(await admin.call('deleteStoragePool', { id: pool.id }), 'deleteStoragePool', 431, noEntity('deletestoragepool', 'id', pool.id));
      // The export is free again.
      expect((await makePool({ url })).path).toBe('/reused');
    });

    it('keeps clusters and zones that still hold storage from being deleted, naming it (536)', async () => {
      const zone3 = await makeZone();
      const pod3 = await makePod(zone3.id);
      const cluster3 = await makeCluster(zone3.id, pod3.id);
      const clusterPool = await makePool({ zoneid: zone3.id, podid: pod3.id, clusterid: cluster3.id, name: unique('in-cluster') });
      refused(
        await admin.call('deleteCluster', { id: cluster3.id }),
        'deleteCluster',
        536,
        `The cluster cannot be deleted because there are storage pools in this cluster: ${clusterPool.name}`,
      );
      expect(ok(await admin.call('listClusters', { id: cluster3.id }), 'listClusters').count).toBe(1);
      await disable(clusterPool.id);
      ok(await admin.call('deleteStoragePool', { id: clusterPool.id }), 'deleteStoragePool');
      ok(await admin.call('deleteCluster', { id: cluster3.id }), 'deleteCluster');
      ok(await admin.call('deletePod', { id: pod3.id }), 'deletePod');

      const zonePool = await makePool({ zoneid: zone3.id, scope: 'zone', hypervisor: 'KVM', name: unique('zone-wide') });
      const store = ok(await admin.call('addImageStore', { zoneid: zone3.id, provider: 'NFS', url: 'nfs://10.7.7.7/secondary-z3', name: unique('sec') }), 'addImageStore')
        .imagestore;
      refused(await admin.call('deleteZone', { id: zone3.id }), 'deleteZone', 536, `The zone cannot be deleted because there are Secondary storages in this zone: ${store.name}`);
      ok(await admin.call('deleteImageStore', { id: store.id }), 'deleteImageStore');
      refused(await admin.call('deleteZone', { id: zone3.id }), 'deleteZone', 536, `The zone cannot be deleted because there are storage pools in this zone: ${zonePool.name}`);
      expect(ok(await admin.call('listZones', { id: zone3.id }), 'listZones').count).toBe(1);
      await disable(zonePool.id);
      ok(await admin.call('deleteStoragePool', { id: zonePool.id }), 'deleteStoragePool');
      ok(await admin.call('deleteZone', { id: zone3.id }), 'deleteZone');
    });
  });

  describe('image stores', () => {
    it('adds an NFS image store with upstream’s ImageStoreResponse and records IMAGE.STORE.CREATE', async () => {
      const name = unique('secondary');
      const answer = await admin.call('addImageStore', { name, provider: 'NFS', zoneid: zone.id, url: 'nfs://10.8.8.8/export/secondary' });
      expect(Object.keys(answer.body)).toEqual(['addimagestoreresponse']);
      const store = ok(answer, 'addImageStore').imagestore;
      expect(store).toEqual({
        id: expect.stringMatching(UUID),
        zoneid: zone.id,
        zonename: zone.name,
        name,
        url: 'nfs://10.8.8.8/export/secondary',
        protocol: 'nfs',
        providername: 'NFS',
        scope: 'ZONE',
        readonly: false,
        hasannotations: false,
      });
      expect((await eventsOf('IMAGE.STORE.CREATE')).some((e) => e.resourceid === store.id && e.resourcetype === 'ImageStore')).toBe(true);
      expect((await stores({ id: store.id })).imagestore).toEqual([store]);
      // Without a name, the URL is the name.
      const unnamed = ok(await admin.call('addImageStore', { provider: 'nfs', zoneid: zone.id, url: 'nfs://10.8.8.9/unnamed' }), 'addImageStore').imagestore;
      expect(unnamed.name).toBe('nfs://10.8.8.9/unnamed');
    });

    it('refuses non-NFS stores, bad URLs, a missing zone and duplicate names, changing nothing', async () => {
      const taken = ok(await admin.call('addImageStore', { name: unique('taken'), provider: 'NFS', zoneid: zone.id, url: 'nfs://10.8.8.10/t' }), 'addImageStore').imagestore;
      const before = await storeCount();
      const base = { name: unique('bad'), provider: 'NFS', zoneid: zone.id, url: 'nfs://10.8.8.11/x' };
      const cases: [Record<string, string>, string | RegExp][] = [
        [{ ...base, provider: 'S3' }, /Invalid parameter provider value=S3: secondary storage must be NFS/],
        [{ ...base, provider: 'Swift' }, /Invalid parameter provider value=Swift/],
        [{ ...base, url: '10.8.8.11:/x' }, /Invalid parameter url value=10\.8\.8\.11:\/x: uri\.scheme is null 10\.8\.8\.11:\/x, add nfs:\/\/ \(or cifs:\/\/\) as a prefix$/],
        [{ ...base, url: 'nfs:///x' }, /Invalid parameter url value=nfs:\/\/\/x: Your host and\/or path is wrong.  Make sure it's of the format nfs:\/\/hostname\/path$/],
        [{ ...base, url: 'cifs://10.8.8.11/share' }, /Invalid parameter url value=cifs:\/\/10\.8\.8\.11\/share: unsupported image store protocol cifs/],
        [{ name: base.name, provider: 'NFS', zoneid: zone.id }, missing('addimagestore', 'url')],
        [{ name: base.name, provider: 'NFS', url: base.url }, 'DataCenter id is null, and NFS secondary storage has to be associated with a data center'],
        [{ ...base, zoneid: crypto.randomUUID() }, /Invalid parameter zoneid value=/],
        [{ ...base, name: taken.name.toUpperCase() }, `The image store with name ${taken.name.toUpperCase()} already exists, try creating with another name`],
        [{ name: base.name, zoneid: zone.id, url: base.url }, missing('addimagestore', 'provider')],
      ];
      for (const [params, text] of cases) refused(await admin.call('addImageStore', params), 'addImageStore', 431, text);
      expect(await storeCount()).toBe(before);
    });

    it('lists with filters and paging, and deletes', async () => {
      const zone4 = await makeZone();
      const add = async (name: string) =>
        ok(await admin.call('addImageStore', { name, provider: 'NFS', zoneid: zone4.id, url: `nfs://10.9.0.1/${name}` }), 'addImageStore').imagestore;
      const a = await add(unique('img-a'));
      const b = await add(unique('img-b'));
      const ids = (body: any) => (body.imagestore ?? []).map((s: any) => s.id);
      expect(ids(await stores({ zoneid: zone4.id }))).toEqual([a.id, b.id]);
      expect(ids(await stores({ zoneid: zone4.id, name: b.name }))).toEqual([b.id]);
      expect(ids(await stores({ zoneid: zone4.id, protocol: 'NFS', provider: 'nfs' }))).toEqual([a.id, b.id]);
      expect(ids(await stores({ zoneid: zone4.id, protocol: 'cifs' }))).toEqual([]);
      expect(ids(await stores({ zoneid: zone4.id, keyword: 'IMG-B' }))).toEqual([b.id]);
      expect(ids(await stores({ zoneid: zone4.id, readonly: 'false' }))).toEqual([a.id, b.id]);
      expect(ids(await stores({ id: a.id }))).toEqual([a.id]);
      const second = ok(await admin.call('listImageStores', { zoneid: zone4.id, page: 2, pagesize: 1 }), 'listImageStores');
      expect(second.count).toBe(2);
      expect(ids(second)).toEqual([b.id]);

      expect((await admin.call('deleteImageStore', { id: a.id })).body).toEqual({ deleteimagestoreresponse: { success: true } });
      expect((await eventsOf('IMAGE.STORE.DELETE')).some((e) => e.resourceid === a.id)).toBe(true);
      expect(ids(await stores({ zoneid: zone4.id }))).toEqual([b.id]);
      refused(await admin.call('deleteImageStore', { id: a.id }), 'deleteImageStore', 431, noEntity('deleteimagestore', 'id', a.id));
      // The name is free again.
      expect((await add(a.name)).name).toBe(a.name);
    });
  });

  describe('who may do what', () => {
    const all = ['createStoragePool', 'listStoragePools', 'updateStoragePool', 'deleteStoragePool', 'addImageStore', 'listImageStores', 'deleteImageStore'];

    it('leaves storage to admins: users and domain admins reach none of it', async () => {
      const before = await poolCount();
      const pool = await makePool();
      for (const client of [user, domainAdmin]) {
        for (const command of all) {
          refused(await client.call(command, { id: pool.id, zoneid: zone.id, name: 'x', url: nfsUrl(), provider: 'NFS' }), command, 432, /not available for user/);
        }
        const apis = ok(await client.call('listApis'), 'listApis').api.map((api: any) => api.name);
        for (const command of all) expect(apis).not.toContain(command);
      }
      expect(await poolCount()).toBe(before + 1);
    });

    it('lets resource admins list storage but not change it', async () => {
      const pool = await makePool();
      expect(ok(await resourceAdmin.call('listStoragePools', { id: pool.id }), 'listStoragePools').storagepool[0].id).toBe(pool.id);
      expect(ok(await resourceAdmin.call('listImageStores', {}), 'listImageStores').count).toBeGreaterThan(0);
      for (const command of ['createStoragePool', 'updateStoragePool', 'deleteStoragePool', 'addImageStore', 'deleteImageStore']) {
        expect((await resourceAdmin.call(command, { id: pool.id })).status).toBe(432);
      }
      const adminApis = ok(await admin.call('listApis'), 'listApis').api.map((api: any) => api.name);
      for (const command of all) expect(adminApis).toContain(command);
    });
  });
});
