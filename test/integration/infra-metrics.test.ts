// The Infrastructure pages' commands the CloudStack UI calls (listInfrastructure and the zone,
// cluster, host and storage pool *Metrics listings) through /client/api: each metrics answer is its
// listing's rows with upstream's figures added (MetricsServiceImpl), admins only, as upstream.
// The figures' arithmetic, thresholds and rounding are covered in test/unit/infra-metrics.test.ts;
// here they are computed from real records: two hosts with known numbers, VMs on one of them.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHostRecord, getHost, type Host } from '../../shared/db/hosts.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { getCluster } from '../../shared/db/infrastructure.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { seedVm } from '../support/vm-seed.ts';
import { patience } from '../support/wait.ts';
import { ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';

const GiB = 1024 ** 3;
/** Every CPU and memory threshold flag, none exceeded. */
const BELOW_THRESHOLDS = Object.fromEntries(
  ['cpu', 'cpudisable', 'cpuallocated', 'cpuallocateddisable', 'memory', 'memorydisable', 'memoryallocated', 'memoryallocateddisable'].map((flag) => [`${flag}threshold`, false]),
);

let world: World;
let admin: ApiClient;
let user: Member;
let zone: any;
let cluster: any;
let disabledCluster: any;
let pool: any;
let h1: Host;
let h2: Host;

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  user = await seedMember(world.runtime.apiUrl, unique('imu'), (await getDomain(world.rootDomainId))!, 'User');
  zone = ok(await admin.call('createZone', { name: unique('imz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
  const pod = ok(await admin.call('createPod', { zoneid: zone.id, name: unique('imp'), gateway: '10.70.0.1', netmask: '255.255.255.0', startip: '10.70.0.10' }), 'createPod').pod;
  const addCluster = async (extra: Record<string, string>) =>
    ok(await admin.call('addCluster', { zoneid: zone.id, podid: pod.id, clustername: unique('imc'), hypervisor: 'KVM', clustertype: 'CloudManaged', ...extra }), 'addCluster').cluster[0];
  cluster = await addCluster({});
  disabledCluster = await addCluster({ allocationstate: 'Disabled' });
  const record = (await getCluster(cluster.id))!;
  // Reported just now, so that the sweeper leaves h1 Up while the test runs.
  h1 = await createHostRecord(record, {
    name: unique('imh'), ipaddress: '10.70.0.11', cpunumber: 4, cpuspeed: 2000, cpusockets: 1, memorytotal: 8 * GiB,
    cpuallocated: 2000, memoryallocated: 2 * GiB, cpuused: 10, memoryused: 1 * GiB, lastpinged: new Date().toISOString(),
  });
  h2 = await createHostRecord(record, {
    name: unique('imh'), ipaddress: '10.70.0.12', status: 'Disconnected', cpunumber: 2, cpuspeed: 1500, cpusockets: 2, memorytotal: 4 * GiB,
    cpuallocated: 1000, memoryallocated: 3.5 * GiB, cpuused: 30, memoryused: 3 * GiB,
  });
  const owner = { ...user.account, userId: user.user.id };
  const seed = { zoneId: zone.id, serviceOfferingId: randomUUID(), templateId: randomUUID(), hostId: h1.id, podId: h1.podId, clusterId: h1.clusterId };
  await seedVm(owner, { ...seed, state: 'Running' });
  await seedVm(owner, { ...seed, state: 'Starting' });
  await seedVm(owner, { zoneId: zone.id, serviceOfferingId: randomUUID(), templateId: randomUUID(), state: 'Stopped', lastHostId: h1.id });
  pool = ok(
    await admin.call('createStoragePool', { zoneid: zone.id, podid: pod.id, clusterid: cluster.id, name: unique('imsp'), url: 'SharedMountPoint:///tmp/mold-infra-metrics', capacitybytes: 100 * GiB }),
    'createStoragePool',
  ).storagepool;
}, patience(60_000));

afterAll(async () => {
  await world?.runtime.stop();
});

/** The row `id` of a listing and of its metrics view, asserting the metrics row keeps every field of the listing's. */
async function rows(listing: string, item: string, params: Record<string, string>) {
  const plain = ok(await admin.call(listing, params), listing)[item][0];
  const metrics = ok(await admin.call(`${listing}Metrics`, params), `${listing}Metrics`);
  expect(metrics.count).toBe(1);
  const row = metrics[item][0];
  for (const [name, value] of Object.entries(plain)) if (name !== 'state' && name !== 'lastpinged') expect(row[name], name).toEqual(value);
  return row;
}

describe('listHostsMetrics', () => {
  it('adds upstream’s host figures: GHz and GB from the host’s numbers, the VMs on it, the thresholds', async () => {
    expect((await getHost(h1.id))?.status).toBe('Up');
    const row = await rows('listHosts', 'host', { id: h1.id });
    expect(row).toMatchObject({
      powerstate: 'Disabled',
      // A Running and a Starting VM are on it; a Stopped one that ran there is not.
      instances: '1 / 2',
      cputotalghz: '8.00 Ghz',
      cpuusedghz: '0.80 Ghz',
      cpuallocatedghz: '2.00 Ghz',
      memorytotalgb: '8.00 GB',
      memoryusedgb: '1.00 GB',
      memoryallocatedgb: '2.00 GB',
      networkread: '0.00 GB',
      networkwrite: '0.00 GB',
      ...BELOW_THRESHOLDS,
    });
    // 3.5 of 4 GiB allocated: over both of upstream's default thresholds (0.75, 0.85).
    expect(await rows('listHosts', 'host', { id: h2.id })).toMatchObject({ instances: '0 / 0', cputotalghz: '3.00 Ghz', memoryallocatedthreshold: true, memoryallocateddisablethreshold: true });
  });
});

describe('listClustersMetrics and listZonesMetrics', () => {
  // Both hosts: 11000 MHz, 3000 allocated, 40 % used in sum (30 % at most); 12 GiB, 5.5 allocated, 4 used (3 at most).
  const totals = {
    cputotal: '11.00 Ghz',
    cpuallocated: '27.27%',
    cpuused: '20.00%',
    cpumaxdeviation: '0.50%',
    memorytotal: '12.00 GB',
    memoryallocated: '45.83%',
    memoryused: '33.33%',
    memorymaxdeviation: '50.00%',
    ...BELOW_THRESHOLDS,
  };

  it('adds the cluster’s state, its Up / all hosts and their totals', async () => {
    expect(await rows('listClusters', 'cluster', { id: cluster.id })).toMatchObject({ state: 'Enabled', hosts: '1 / 2', ...totals });
    // No hosts: totals of nothing, and no figure that would divide by zero.
    const empty = await rows('listClusters', 'cluster', { id: disabledCluster.id });
    expect(empty).toMatchObject({ state: 'Disabled', hosts: '0 / 0', cputotal: '0.00 Ghz', memorytotal: '0.00 GB' });
    for (const absent of ['cpuallocated', 'cpuused', 'cpumaxdeviation', 'memoryused', 'cputhreshold', 'memorythreshold']) expect(empty).not.toHaveProperty(absent);
  });

  it('adds the zone’s state, its enabled / all clusters and its hosts’ totals', async () => {
    expect(await rows('listZones', 'zone', { id: zone.id })).toMatchObject({ state: zone.allocationstate, clusters: '1 / 2', ...totals });
  });
});

describe('listStoragePoolsMetrics', () => {
  it('adds the sizes in GB, with the over-provisioning factor', async () => {
    const row = await rows('listStoragePools', 'storagepool', { id: pool.id });
    const factor = Number(row.overprovisionfactor);
    const allocated = row.disksizeallocated / GiB;
    expect(row).toMatchObject({
      disksizetotalgb: `100.00 GB (x${row.overprovisionfactor})`,
      disksizeallocatedgb: `${allocated.toFixed(2)} GB`,
      disksizeunallocatedgb: `${(100 * factor - allocated).toFixed(2)} GB`,
      storageallocatedthreshold: false,
    });
  });
});

describe('listInfrastructure', () => {
  it('counts what the zone holds, and what Mold runs none of as 0', async () => {
    // Alerts may be raised meanwhile (the sweeper finds h2 silent): at least those there before.
    const alerts = ok(await admin.call('listAlerts', { pagesize: -1 }), 'listAlerts').count ?? 0;
    const infrastructure = ok(await admin.call('listInfrastructure'), 'listInfrastructure').infrastructure;
    expect(infrastructure).toEqual({
      zones: 1, pods: 1, clusters: 2, hosts: 2, storagepools: 1, imagestores: 0, systemvms: 0, routers: 0, ilbvms: 0, cpusockets: 3,
      alerts: expect.any(Number),
    });
    expect(infrastructure.alerts).toBeGreaterThanOrEqual(alerts);
  });
});

describe('who may call them', () => {
  it('admins only, as upstream; listApis lists them for an admin', async () => {
    const names = ['listInfrastructure', 'listZonesMetrics', 'listClustersMetrics', 'listHostsMetrics', 'listStoragePoolsMetrics'];
    const apis = ok(await admin.call('listApis'), 'listApis').api.map((api: any) => api.name);
    expect(apis).toEqual(expect.arrayContaining(names));
    for (const name of names) refused(await user.client.call(name), name, 432, 'The given command does not exist or it is not available for user');
  });
});

// Ansible asks these on every run (cs_template, cs_storage_pool).
describe('listHypervisors and listStorageProviders', () => {
  it('lists KVM, to anyone, for any or a known zone; an unknown zone is refused naming zoneid', async () => {
    for (const client of [admin, user.client]) {
      expect(ok(await client.call('listHypervisors'), 'listHypervisors')).toEqual({ count: 1, hypervisor: [{ name: 'KVM' }] });
    }
    expect(ok(await admin.call('listHypervisors', { zoneid: zone.id }), 'listHypervisors').hypervisor).toEqual([{ name: 'KVM' }]);
    const unknown = await admin.call('listHypervisors', { zoneid: randomUUID() });
    expect(unknown.status).toBe(431);
    expect(unknown.body.listhypervisorsresponse.errortext).toContain('zoneid');
  });

  it('lists the primary and image providers to admins; another type or a user is refused', async () => {
    expect(ok(await admin.call('listStorageProviders', { type: 'primary' }), 'listStorageProviders')).toEqual({ count: 1, dataStoreProvider: [{ name: 'DefaultPrimary', type: 'PRIMARY' }] });
    expect(ok(await admin.call('listStorageProviders', { type: 'image' }), 'listStorageProviders').dataStoreProvider).toEqual([{ name: 'NFS', type: 'IMAGE' }]);
    refused(await admin.call('listStorageProviders', { type: 'cache' }), 'listStorageProviders', 431, 'Invalid parameter: cache');
    refused(await admin.call('listStorageProviders'), 'listStorageProviders', 431, 'Unable to execute API command liststorageproviders due to missing parameter type');
    refused(await user.client.call('listStorageProviders', { type: 'primary' }), 'listStorageProviders', 432, 'The given command does not exist or it is not available for user');
  });
});
