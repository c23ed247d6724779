// listCapacity through /client/api: CPU and memory from the hosts with each cluster's
// over-provisioning factors (a factor of 2 doubles the allocatable CPU), private IPs from pod
// ranges, shared network IPs from VLAN IP ranges and IPAM, primary storage from the pools, summed
// per zone, pod or cluster, with upstream's CapacityResponse; the clusters' and hosts'
// over-provisioning fields follow the same scoped settings. Admins only; every refusal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHostRecord } from '../../shared/db/hosts.ts';
import { getCluster } from '../../shared/db/infrastructure.ts';
import { allocateAddress } from '../../shared/db/ipam.ts';
import { reservePoolBytes } from '../../shared/db/storage.ts';
import { getDomain } from '../../shared/db/identity.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';
import { patience } from '../support/wait.ts';

const GiB = 1024 ** 3;

let world: World;
let admin: ApiClient;
let user: ApiClient;
let zone: any;
let pod: any;
let c1: any; // cpu factor 2, memory factor 1.5
let c2: any; // global factors
let disabledCluster: any;

const capacities = async (params: Record<string, string | number | boolean> = {}) =>
  (ok(await admin.call('listCapacity', params), 'listCapacity').capacity ?? []) as any[];
const ofType = (rows: any[], type: number) => rows.filter((row) => row.type === type);

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  user = (await seedMember(world.runtime.apiUrl, unique('cu'), (await getDomain(world.rootDomainId))!, 'User')).client;
  zone = ok(await admin.call('createZone', { name: unique('cz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
  // A shared network (made while the zone is still disabled, as physical networks must be) with 3 of its 20 addresses taken.
  const physical = ok(await admin.call('createPhysicalNetwork', { zoneid: zone.id, name: unique('cphys'), vlan: '300-399' }), 'createPhysicalNetwork');
  expect((await admin.waitForJob(physical.jobid)).jobstatus).toBe(1);
  const offering = ok(await admin.call('listNetworkOfferings', { name: 'DefaultSharedNetworkOffering' }), 'listNetworkOfferings').networkoffering[0].id;
  const network = ok(
    await admin.call('createNetwork', {
      name: unique('cn'),
      networkofferingid: offering,
      zoneid: zone.id,
      vlan: 201,
      gateway: '10.20.0.1',
      netmask: '255.255.255.0',
      startip: '10.20.0.10',
      endip: '10.20.0.29',
    }),
    'createNetwork',
  ).network;
  for (let i = 0; i < 3; i++) await allocateAddress(network.id);
  ok(await admin.call('updateZone', { id: zone.id, allocationstate: 'Enabled' }), 'updateZone');
  pod = ok(
    await admin.call('createPod', { zoneid: zone.id, name: unique('cp'), gateway: '10.0.0.1', netmask: '255.255.255.0', startip: '10.0.0.10', endip: '10.0.0.49', allocationstate: 'Enabled' }),
    'createPod',
  ).pod;
  const cluster = async (allocationstate = 'Enabled') =>
    ok(await admin.call('addCluster', { zoneid: zone.id, podid: pod.id, clustername: unique('cc'), hypervisor: 'KVM', clustertype: 'CloudManaged', allocationstate }), 'addCluster')
      .cluster[0];
  [c1, c2, disabledCluster] = [await cluster(), await cluster(), await cluster('Disabled')];
  const host = async (clusterId: string, fields: Record<string, unknown> & { name: string; ipaddress: string }) => createHostRecord((await getCluster(clusterId))!, fields);
  await host(c1.id, { name: unique('h'), ipaddress: '10.0.0.11', cpunumber: 4, cpuspeed: 2000, memorytotal: 8 * GiB, cpuallocated: 3000, memoryallocated: 2 * GiB });
  await host(c1.id, { name: unique('h'), ipaddress: '10.0.0.12', cpunumber: 2, cpuspeed: 1000, memorytotal: 4 * GiB, cpuallocated: 1000, memoryallocated: GiB });
  await host(c2.id, { name: unique('h'), ipaddress: '10.0.0.13', cpunumber: 8, cpuspeed: 2500, memorytotal: 16 * GiB, cpuallocated: 5000, memoryallocated: 4 * GiB });
  // Neither a disabled host nor one in a disabled cluster has capacity.
  await host(c2.id, { name: unique('h'), ipaddress: '10.0.0.14', cpunumber: 64, cpuspeed: 3000, memorytotal: 512 * GiB, resourcestate: 'Disabled' });
  await host(disabledCluster.id, { name: unique('h'), ipaddress: '10.0.0.15', cpunumber: 64, cpuspeed: 3000, memorytotal: 512 * GiB });
  // Over-provisioning of c1, through the cluster-scoped settings.
  ok(await admin.call('updateConfiguration', { name: 'cpu.overprovisioning.factor', value: '2', clusterid: c1.id }), 'updateConfiguration');
  ok(await admin.call('updateConfiguration', { name: 'mem.overprovisioning.factor', value: '1.5', clusterid: c1.id }), 'updateConfiguration');
}, patience(60_000));

afterAll(async () => {
  await world?.runtime.stop();
});

describe('listCapacity', () => {
  it('answers CPU per cluster with the cluster’s factor: a factor of 2 doubles the allocatable CPU', async () => {
    const answer = await admin.call('listCapacity', { clusterid: c1.id, type: 1 });
    expect(Object.keys(answer.body)).toEqual(['listcapacityresponse']);
    expect(ok(answer, 'listCapacity')).toEqual({
      count: 1,
      capacity: [
        {
          type: 1,
          name: 'CPU',
          zoneid: zone.id,
          zonename: zone.name,
          podid: pod.id,
          podname: pod.name,
          clusterid: c1.id,
          clustername: c1.name,
          capacityallocated: 4000,
          capacityused: 4000,
          capacitytotal: (4 * 2000 + 2 * 1000) * 2,
          percentused: '20',
        },
      ],
    });
    // The same hosts under the global factor 1.
    const plain = ofType(await capacities({ clusterid: c2.id }), 1)[0];
    expect(plain).toMatchObject({ capacitytotal: 8 * 2500, capacityused: 5000, percentused: '25' });
  });

  it('applies the memory factor, and a changed factor changes the capacity at once', async () => {
    expect(ofType(await capacities({ clusterid: c1.id }), 0)[0]).toMatchObject({ name: 'MEMORY', capacitytotal: 18 * GiB, capacityused: 3 * GiB, percentused: '16.67' });
    ok(await admin.call('updateConfiguration', { name: 'cpu.overprovisioning.factor', value: '3', clusterid: c2.id }), 'updateConfiguration');
    expect(ofType(await capacities({ clusterid: c2.id }), 1)[0].capacitytotal).toBe(60000);
    ok(await admin.call('resetConfiguration', { name: 'cpu.overprovisioning.factor', clusterid: c2.id }), 'resetConfiguration');
    expect(ofType(await capacities({ clusterid: c2.id }), 1)[0].capacitytotal).toBe(20000);
  });

  it('sums per zone (no pod or cluster fields) and per pod', async () => {
    const zoneRows = await capacities({ zoneid: zone.id });
    const cpu = ofType(zoneRows, 1)[0];
    expect(cpu).toEqual({
      type: 1,
      name: 'CPU',
      zoneid: zone.id,
      zonename: zone.name,
      capacityallocated: 9000,
      capacityused: 9000,
      capacitytotal: 20000 + 20000,
      percentused: '22.5',
    });
    expect(ofType(zoneRows, 0)[0]).toMatchObject({ capacitytotal: 18 * GiB + 16 * GiB, capacityused: 7 * GiB });
    // Sorted by type within the zone.
    expect(zoneRows.map((row) => row.type)).toEqual([...zoneRows.map((row) => row.type)].sort((a, b) => a - b));
    const podRows = await capacities({ podid: pod.id });
    expect(ofType(podRows, 1)[0]).toMatchObject({ podid: pod.id, podname: pod.name, capacitytotal: 40000 });
    expect(ofType(podRows, 1)[0].clusterid).toBeUndefined();
  });

  it('counts a pod’s private IPs and the shared networks’ IPs with their IPAM allocations', async () => {
    expect(ofType(await capacities({ podid: pod.id }), 5)[0]).toMatchObject({ name: 'PRIVATE_IP', capacitytotal: 40, capacityused: 5, percentused: '12.5' });
    const shared = ofType(await capacities({ zoneid: zone.id }), 8);
    expect(shared).toEqual([
      { type: 8, name: 'DIRECT_ATTACHED_PUBLIC_IP', zoneid: zone.id, zonename: zone.name, capacityallocated: 3, capacityused: 3, capacitytotal: 20, percentused: '15' },
    ]);
    // Zone-wide capacities are not a pod's.
    expect(ofType(await capacities({ podid: pod.id }), 8)).toEqual([]);
  });

  it('counts primary storage pools: used and allocated (× storage.overprovisioning.factor)', async () => {
    const pool = ok(
      await admin.call('createStoragePool', { zoneid: zone.id, podid: pod.id, clusterid: c1.id, name: unique('cpool'), url: `nfs://10.9.9.9/export/${unique('p')}`, capacitybytes: 100 * GiB }),
      'createStoragePool',
    ).storagepool;
    await reservePoolBytes(pool.id, 50 * GiB);
    const rows = await capacities({ clusterid: c1.id });
    expect(ofType(rows, 2)[0]).toMatchObject({ name: 'STORAGE', capacitytotal: 100 * GiB, capacityused: 0, percentused: '0' });
    expect(ofType(rows, 3)[0]).toMatchObject({ name: 'STORAGE_ALLOCATED', capacitytotal: 200 * GiB, capacityused: 50 * GiB, percentused: '25' });
  });

  it('filters by type, pages, and sorts by usage', async () => {
    const all = await capacities({ zoneid: zone.id });
    expect(new Set(all.map((row) => row.type))).toEqual(new Set([0, 1, 2, 3, 5, 8]));
    expect((await capacities({ zoneid: zone.id, type: 5 })).map((row) => row.type)).toEqual([5]);
    const paged = ok(await admin.call('listCapacity', { zoneid: zone.id, page: 1, pagesize: 2 }), 'listCapacity');
    expect(paged.count).toBe(all.length);
    expect(paged.capacity).toEqual(all.slice(0, 2));
    const byUsage = await capacities({ zoneid: zone.id, sortby: 'usage' });
    const ratios = byUsage.map((row) => row.capacityused / row.capacitytotal);
    expect(ratios).toEqual([...ratios].sort((a, b) => b - a));
    // fetchlatest is accepted: every answer is computed from the records as they are.
    expect(await capacities({ zoneid: zone.id, fetchlatest: true })).toEqual(all);
  });

  it('leaves out disabled zones, pods and clusters', async () => {
    ok(await admin.call('updateCluster', { id: c2.id, allocationstate: 'Disabled' }), 'updateCluster');
    expect(ofType(await capacities({ zoneid: zone.id }), 1)[0].capacitytotal).toBe(20000);
    ok(await admin.call('updateCluster', { id: c2.id, allocationstate: 'Enabled' }), 'updateCluster');
    ok(await admin.call('updateZone', { id: zone.id, allocationstate: 'Disabled' }), 'updateZone');
    expect(await capacities({ zoneid: zone.id })).toEqual([]);
    ok(await admin.call('updateZone', { id: zone.id, allocationstate: 'Enabled' }), 'updateZone');
  });

  it('refuses users, unknown places and an unknown sortby', async () => {
    refused(await user.call('listCapacity'), 'listCapacity', 432, 'The given command does not exist or it is not available for user');
    const nowhere = '00000000-0000-4000-8000-000000000000';
    refused(await admin.call('listCapacity', { zoneid: nowhere }), 'listCapacity', 431, noEntity('listcapacity', 'zoneid', nowhere));
    refused(await admin.call('listCapacity', { podid: nowhere }), 'listCapacity', 431, noEntity('listcapacity', 'podid', nowhere));
    refused(await admin.call('listCapacity', { clusterid: nowhere }), 'listCapacity', 431, noEntity('listcapacity', 'clusterid', nowhere));
    refused(await admin.call('listCapacity', { sortby: 'name' }), 'listCapacity', 431, 'Only value supported for sortBy parameter is : usage');
    refused(await admin.call('listCapacity', { type: 'cpu' }), 'listCapacity', 431, /invalid value.*type/);
  });
});

describe('over-provisioning fields', () => {
  it('listClusters and listHosts show the cluster-scoped factors', async () => {
    const cluster = ok(await admin.call('listClusters', { id: c1.id }), 'listClusters').cluster[0];
    expect(cluster).toMatchObject({ cpuovercommitratio: '2', memoryovercommitratio: '1.5' });
    expect(ok(await admin.call('listClusters', { id: c2.id }), 'listClusters').cluster[0]).toMatchObject({ cpuovercommitratio: '1.0', memoryovercommitratio: '1.0' });
    const host = ok(await admin.call('listHosts', { clusterid: c1.id }), 'listHosts').host.find((h: any) => h.ipaddress === '10.0.0.11');
    expect(host).toMatchObject({ cpuwithoverprovisioning: '16000', memorywithoverprovisioning: String(12 * GiB), cpuallocated: '18.75%' });
  });
});
