// Host capacity reservations for VMs against the real runtime's DynamoDB: concurrent planAndReserve
// calls never over-commit a host or a pool (conditional updates and transactions), a release gives
// the capacity back, over-provisioning factors, affinity and maintenance are honoured, no room is
// upstream's 533, and VM resource limits are reserved and released atomically.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InsufficientCapacity, ResourceLimitExceeded } from '../../shared/cloudstack/errors.ts';
import { createAffinityGroupRecord } from '../../shared/db/affinity-groups.ts';
import { listHolds, planAndReserve, releaseHostCapacity, releaseReservation, releaseVmLimits, reserveHostCapacity, reserveVmLimits, type DeploymentRequest } from '../../shared/db/capacity.ts';
import { createHostRecord, getHost, updateHostRecord, type Host } from '../../shared/db/hosts.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { createCluster, createPod, createZone, type Cluster } from '../../shared/db/infrastructure.ts';
import { resourceCounter, setResourceLimit, storedCounts } from '../../shared/db/limits.ts';
import { createStoragePool, getStoragePool } from '../../shared/db/storage.ts';
import { transitionVm } from '../../shared/db/vms.ts';
import { storeScopedSetting, storeSetting } from '../../shared/settings.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { seedVm } from '../support/vm-seed.ts';
import { startWorld, unique, type World } from './identity-fixtures.ts';
import { patience } from '../support/wait.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

let world: World;
let member: Member;

beforeAll(async () => {
  world = await startWorld();
  useRuntimeEndpoints(world.runtime);
  member = await seedMember(world.runtime.apiUrl, unique('cap'), (await getDomain(world.rootDomainId))!, 'User');
}, patience(60_000));

afterAll(async () => {
  await world?.runtime.stop();
});

/** A zone with one pod and `clusters` clusters, all Enabled. */
async function zoneWith(clusters = 1): Promise<{ zoneId: string; clusters: Cluster[] }> {
  const zone = await createZone({ name: unique('vz'), networktype: 'Advanced', allocationstate: 'Enabled' });
  const pod = await createPod(zone, { name: unique('vp'), allocationstate: 'Enabled' });
  const made: Cluster[] = [];
  for (let i = 0; i < clusters; i++) made.push(await createCluster(pod, { name: unique('vc'), allocationstate: 'Enabled', hypervisor: 'KVM' }));
  return { zoneId: zone.id, clusters: made };
}

const addHost = (cluster: Cluster, fields: Partial<Host> = {}) =>
  createHostRecord(cluster, { name: unique('vh'), ipaddress: '10.1.0.1', cpunumber: 4, cpuspeed: 2000, memorytotal: 6 * GiB, ...fields });

/** A 1 × 1000 MHz, 1 GiB VM of the member's account in the zone. */
function request(zoneId: string, fields: Partial<DeploymentRequest> & { affinityGroupIds?: string[] } = {}): DeploymentRequest {
  const { affinityGroupIds = [], ...rest } = fields;
  return {
    vm: {
      id: randomUUID(),
      instanceName: `i-9-${Math.floor(Math.random() * 1e6)}-VM`,
      accountId: member.account.id,
      domainTree: member.account.domainTree,
      zoneId,
      cpuNumber: 1,
      cpuSpeed: 1000,
      memoryMiB: 1024,
      affinityGroupIds,
    },
    ...rest,
  };
}

describe('planAndReserve under concurrency', () => {
  it('20 concurrent deploys against room for 12: exactly 12 hold, 8 are refused with 533, no host over its cap', async () => {
    const { zoneId, clusters } = await zoneWith(1);
    // Two hosts of 6 GiB: six 1 GiB VMs each (CPU has room for eight).
    const hosts = [await addHost(clusters[0]), await addHost(clusters[0])];
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => planAndReserve(request(zoneId))));
    const held = outcomes.filter((o) => o.status === 'fulfilled').map((o) => (o as PromiseFulfilledResult<Awaited<ReturnType<typeof planAndReserve>>>).value);
    const refusals = outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason);
    expect(held).toHaveLength(12);
    expect(refusals).toHaveLength(8);
    for (const refusal of refusals) {
      expect(refusal).toBeInstanceOf(InsufficientCapacity);
      expect(refusal.errorcode).toBe(533);
      expect(refusal.message).toMatch(/^Unable to create a deployment for VM\[User\|i-9-\d+-VM\]$/);
    }
    const after = await Promise.all(hosts.map((h) => getHost(h.id)));
    for (const host of after) {
      expect(host!.memoryallocated).toBeLessThanOrEqual(6 * GiB);
      expect(host!.memoryallocated).toBe(6 * GiB);
      expect(host!.cpuallocated).toBe(6000);
    }
    expect(held.filter((r) => r.hostId === hosts[0].id)).toHaveLength(6);

    // Giving everything back empties the hosts, and a deploy holds again.
    await Promise.all(held.map((reservation) => releaseReservation(reservation)));
    for (const host of await Promise.all(hosts.map((h) => getHost(h.id)))) {
      expect(host!.cpuallocated).toBe(0);
      expect(host!.memoryallocated).toBe(0);
    }
    const again = await planAndReserve(request(zoneId));
    expect(hosts.map((h) => h.id)).toContain(again.hostId);
    expect(again).toMatchObject({ cpuMhz: 1000, memoryBytes: GiB, poolBytes: 0 });
  }, patience(60_000));

  it('reserves a new disk on a pool in the same transaction: the pool’s room bounds concurrent deploys too', async () => {
    const { zoneId, clusters } = await zoneWith(1);
    await addHost(clusters[0]);
    await addHost(clusters[0]);
    // Room for 10 disks of 2 GiB (factor 1 on this pool).
    const pool = await createStoragePool({
      name: unique('vpool'),
      zoneId,
      podId: clusters[0].podId,
      clusterId: clusters[0].id,
      scope: 'CLUSTER',
      hypervisor: 'KVM',
      type: 'NetworkFilesystem',
      url: `nfs://10.9.9.9/${unique('export')}`,
      host: '10.9.9.9',
      port: 2049,
      path: `/${unique('export')}`,
      tags: [],
      istagarule: false,
      capacitybytes: 20 * GiB,
    });
    await storeScopedSetting('StoragePool', pool.id, 'storage.overprovisioning.factor', '1');
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => planAndReserve(request(zoneId, { diskBytes: 2 * GiB }))));
    const held = outcomes.filter((o) => o.status === 'fulfilled').map((o) => (o as PromiseFulfilledResult<Awaited<ReturnType<typeof planAndReserve>>>).value);
    expect(held).toHaveLength(10);
    expect(outcomes.filter((o) => o.status === 'rejected').every((o) => (o as PromiseRejectedResult).reason instanceof InsufficientCapacity)).toBe(true);
    expect(held.every((r) => r.poolId === pool.id && r.poolBytes === 2 * GiB)).toBe(true);
    expect((await getStoragePool(pool.id))!.disksizeallocated).toBe(20 * GiB);
    await Promise.all(held.map((r) => releaseReservation(r)));
    expect((await getStoragePool(pool.id))!.disksizeallocated).toBe(0);
  }, patience(60_000));
});

describe('placement rules against the records', () => {
  it('applies the cluster’s over-provisioning factors', async () => {
    const { zoneId, clusters } = await zoneWith(1);
    const host = await addHost(clusters[0], { memorytotal: 2 * GiB });
    await storeScopedSetting('Cluster', clusters[0].id, 'mem.overprovisioning.factor', '2');
    // 2 GiB × 2: four 1 GiB VMs.
    for (let i = 0; i < 4; i++) expect((await planAndReserve(request(zoneId))).hostId).toBe(host.id);
    await expect(planAndReserve(request(zoneId))).rejects.toBeInstanceOf(InsufficientCapacity);
    expect((await getHost(host.id))!.memoryallocated).toBe(4 * GiB);
  });

  it('never places on a host in maintenance, disabled, or not Up', async () => {
    const { zoneId, clusters } = await zoneWith(1);
    await addHost(clusters[0], { resourcestate: 'Maintenance' });
    await addHost(clusters[0], { resourcestate: 'Disabled' });
    await addHost(clusters[0], { status: 'Disconnected' });
    await expect(planAndReserve(request(zoneId))).rejects.toBeInstanceOf(InsufficientCapacity);
    const up = await addHost(clusters[0]);
    expect((await planAndReserve(request(zoneId))).hostId).toBe(up.id);
  });

  it('the reservation itself refuses a host that left Enabled after planning', async () => {
    const { clusters } = await zoneWith(1);
    const host = await addHost(clusters[0], { resourcestate: 'Maintenance' });
    expect(await reserveHostCapacity(host.id, { vmId: 'vm-a' }, 1000, GiB, { cpuMhz: 8000, memoryBytes: 6 * GiB })).toBe(false);
    const enabled = await addHost(clusters[0]);
    expect(await reserveHostCapacity(enabled.id, { vmId: 'vm-a' }, 1000, GiB, { cpuMhz: 1500, memoryBytes: 6 * GiB })).toBe(true);
    expect(await reserveHostCapacity(enabled.id, { vmId: 'vm-b' }, 1000, GiB, { cpuMhz: 1500, memoryBytes: 6 * GiB })).toBe(false);
    expect(await listHolds(enabled.id)).toMatchObject([{ vmId: 'vm-a', cpuMhz: 1000, memoryBytes: GiB }]);
    // The same VM's hold taken again is given back first, not counted twice.
    expect(await reserveHostCapacity(enabled.id, { vmId: 'vm-a' }, 1000, GiB, { cpuMhz: 1500, memoryBytes: 6 * GiB })).toBe(true);
    expect(await getHost(enabled.id)).toMatchObject({ cpuallocated: 1000, memoryallocated: GiB });
    await releaseHostCapacity(enabled.id, { id: 'vm-a' });
    expect(await listHolds(enabled.id)).toEqual([]);
    expect(await getHost(enabled.id)).toMatchObject({ cpuallocated: 0, memoryallocated: 0 });
    // A second release of the same hold gives nothing back.
    await updateHostRecord(enabled.id, { cpuallocated: 1000, memoryallocated: GiB });
    await releaseHostCapacity(enabled.id, { id: 'vm-a' });
    expect(await getHost(enabled.id)).toMatchObject({ cpuallocated: 1000, memoryallocated: GiB });
    // A VM reserved before the ledger gives its figures back, clamped at zero.
    await updateHostRecord(enabled.id, { cpuallocated: 500, memoryallocated: GiB });
    await releaseHostCapacity(enabled.id, { id: 'vm-old', cpuNumber: 1, cpuSpeed: 1000, memoryMiB: 1024 });
    expect(await getHost(enabled.id)).toMatchObject({ cpuallocated: 0, memoryallocated: 0 });
    expect(await getHost(enabled.id)).toMatchObject({ cpuallocated: 0, memoryallocated: 0 });
  });

  it('takes a root admin’s hostid, and refuses it with 533 when it has no room', async () => {
    const { zoneId, clusters } = await zoneWith(1);
    const a = await addHost(clusters[0]);
    const b = await addHost(clusters[0], { memorytotal: GiB / 2 });
    expect((await planAndReserve(request(zoneId, { hostId: a.id }))).hostId).toBe(a.id);
    await expect(planAndReserve(request(zoneId, { hostId: b.id }))).rejects.toBeInstanceOf(InsufficientCapacity);
  });

  it('honours host anti-affinity and host affinity groups', async () => {
    const { zoneId, clusters } = await zoneWith(1);
    const a = await addHost(clusters[0]);
    const b = await addHost(clusters[0]);
    const owner = { ...member.account, userId: member.user.id };
    const anti = await createAffinityGroupRecord({ name: unique('anti'), type: 'host anti-affinity', accountId: owner.id, domainId: owner.domainId, domainTree: owner.domainTree });
    const first = await seedVm(owner, { zoneId, serviceOfferingId: randomUUID(), templateId: randomUUID(), hostId: a.id, affinityGroupIds: [anti.id] });
    for (let i = 0; i < 3; i++) expect((await planAndReserve(request(zoneId, { affinityGroupIds: [anti.id] }))).hostId).toBe(b.id);
    await seedVm(owner, { zoneId, serviceOfferingId: randomUUID(), templateId: randomUUID(), hostId: b.id, affinityGroupIds: [anti.id] });
    await expect(planAndReserve(request(zoneId, { affinityGroupIds: [anti.id] }))).rejects.toBeInstanceOf(InsufficientCapacity);
    // A member without a host (stopped) no longer holds its host.
    await transitionVm(first.id, ['Running'], 'Stopped', { hostId: undefined, lastHostId: a.id });
    expect((await planAndReserve(request(zoneId, { affinityGroupIds: [anti.id] }))).hostId).toBe(a.id);

    const together = await createAffinityGroupRecord({ name: unique('aff'), type: 'host affinity', accountId: owner.id, domainId: owner.domainId, domainTree: owner.domainTree });
    await seedVm(owner, { zoneId, serviceOfferingId: randomUUID(), templateId: randomUUID(), hostId: b.id, affinityGroupIds: [together.id] });
    for (let i = 0; i < 2; i++) expect((await planAndReserve(request(zoneId, { affinityGroupIds: [together.id] }))).hostId).toBe(b.id);
  });

  it('follows vm.allocation.algorithm: firstfit fills the first host, userdispersing spreads the account', async () => {
    const { zoneId, clusters } = await zoneWith(1);
    const a = await addHost(clusters[0], { name: `a-${randomUUID()}` });
    const b = await addHost(clusters[0], { name: `b-${randomUUID()}` });
    try {
      await storeSetting('vm.allocation.algorithm', 'firstfit');
      for (let i = 0; i < 3; i++) expect((await planAndReserve(request(zoneId))).hostId).toBe(a.id);
      await storeSetting('vm.allocation.algorithm', 'userdispersing');
      const owner = { ...member.account, userId: member.user.id };
      await seedVm(owner, { zoneId, serviceOfferingId: randomUUID(), templateId: randomUUID(), hostId: a.id, podId: a.podId });
      expect((await planAndReserve(request(zoneId))).hostId).toBe(b.id);
    } finally {
      await storeSetting('vm.allocation.algorithm', 'random');
    }
  });
});

describe('resource limits of VMs', () => {
  it('reserves user_vm, cpu, memory, volume and primary_storage atomically, and releases them', async () => {
    const other = await seedMember(world.runtime.apiUrl, unique('lim'), (await getDomain(world.rootDomainId))!, 'User');
    await setResourceLimit('ACCOUNT', other.account.id, 'user_vm', 3);
    const vm = { cpuNumber: 2, memoryMiB: 512 };
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => reserveVmLimits(other.account, vm, 2 * GiB)));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
    const refusal = (outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult).reason;
    expect(refusal).toBeInstanceOf(ResourceLimitExceeded);
    expect(refusal.message).toMatch(/^Maximum amount of resources of Type = 'user_vm', tag = 'null' for Account Name = /);
    expect(await storedCounts('ACCOUNT', other.account.id)).toMatchObject({ user_vm: 3, cpu: 6, memory: 1536, volume: 3, primary_storage: 6 * GiB });
    await releaseVmLimits(other.account, vm, 2 * GiB);
    expect(await storedCounts('ACCOUNT', other.account.id)).toMatchObject({ user_vm: 2, cpu: 4, memory: 1024, volume: 2, primary_storage: 4 * GiB });
    await reserveVmLimits(other.account, vm, 2 * GiB);
    await expect(reserveVmLimits(other.account, vm, 2 * GiB)).rejects.toBeInstanceOf(ResourceLimitExceeded);
  });

  it('counts VMs and volumes from the records (updateResourceCount’s counters)', async () => {
    const other = await seedMember(world.runtime.apiUrl, unique('cnt'), (await getDomain(world.rootDomainId))!, 'User');
    const owner = { ...other.account, userId: other.user.id };
    const zoneId = randomUUID();
    await seedVm(owner, { zoneId, serviceOfferingId: randomUUID(), templateId: randomUUID(), cpuNumber: 2, memoryMiB: 1024 });
    await seedVm(owner, { zoneId, serviceOfferingId: randomUUID(), templateId: randomUUID(), cpuNumber: 1, memoryMiB: 256, state: 'Stopped' });
    await seedVm(owner, { zoneId, serviceOfferingId: randomUUID(), templateId: randomUUID(), cpuNumber: 4, memoryMiB: 4096, state: 'Destroyed' });
    const count = (type: 'user_vm' | 'cpu' | 'memory' | 'volume' | 'primary_storage') => resourceCounter(type)!(other.account);
    expect(await count('user_vm')).toBe(2);
    expect(await count('cpu')).toBe(3);
    expect(await count('memory')).toBe(1280);
    expect(await count('volume')).toBe(3);
    expect(await count('primary_storage')).toBe(6 * GiB);
    void MiB;
  });
});
