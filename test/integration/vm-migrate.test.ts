// migrateVirtualMachine and findHostsForMigration through /client/api and the real vm-migrate state
// machine, with the test playing the zone's agent. Two hosts of one cluster reach the cluster's pool;
// a third, in another cluster, does not (it would need storage motion). Bad input is refused at once
// and changes nothing; a migration the agent fails, or one whose target is full, leaves the VM
// Running on its source with nothing reserved and a failed job that says why.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHost, updateHostRecord } from '../../shared/db/hosts.ts';
import { getPod } from '../../shared/db/infrastructure.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { getVmConsistent } from '../../shared/db/vms.ts';
import { addPlayedHost, GiB, playedVmChecks, seedPlayedZone, type PlayedZone } from '../support/played-zone.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { patience } from '../support/wait.ts';
import { answer, receiveCommand } from '../support/agent-seed.ts';
import { noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';

let world: World;
let played: PlayedZone;
let admin: ApiClient;
let alice: Member;
let hostA: any;
let hostB: any;
let hostC: any;
let offering: any;
let vm: any;

const { jobCount, begin, agentAnswers, deployed } = playedVmChecks(() => admin, () => played);

const load = async (hostId: string) => {
  const h = (await getHost(hostId))!;
  return { cpu: h.cpuallocated ?? 0, memory: h.memoryallocated ?? 0 };
};
const loads = async () => ({ a: await load(hostA.id), b: await load(hostB.id), c: await load(hostC.id) });
const VM_CPU = 500;
const VM_MEMORY = 512 * 1024 * 1024;

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  alice = await seedMember(world.runtime.apiUrl, unique('alice'), (await getDomain(world.rootDomainId))!, 'User');
  played = await seedPlayedZone(admin, 70);
  hostA = played.host;
  hostB = await addPlayedHost(played.cluster.id, played.seeded, { name: unique('kvm-b'), ipaddress: '10.70.0.12' });
  const other = ok(
    await admin.call('addCluster', { zoneid: played.zone.id, podid: played.pod.id, clustername: unique('vc2'), hypervisor: 'KVM', clustertype: 'CloudManaged', allocationstate: 'Enabled' }),
    'addCluster',
  ).cluster[0];
  expect(await getPod(played.pod.id)).toBeTruthy();
  hostC = await addPlayedHost(other.id, played.seeded, { name: unique('kvm-c'), ipaddress: '10.70.0.13' });
  offering = ok(await admin.call('createServiceOffering', { name: unique('small'), displaytext: 'small', cpunumber: 1, cpuspeed: VM_CPU, memory: 512 }), 'createServiceOffering').serviceoffering;
  // Deployed by the root admin onto host A, for alice.
  vm = await deployed({ zoneid: played.zone.id, serviceofferingid: offering.id, templateid: played.template.id, hostid: hostA.id, account: alice.account.name, domainid: world.rootDomainId });
  expect(vm.hostid).toBe(hostA.id);
}, patience(120_000));

afterAll(async () => {
  await world?.runtime.stop();
});

const migrated = (message: any) => ({ result: { name: message.payload.name, state: 'Running', vncPort: 5907 } });

describe('findHostsForMigration', () => {
  it('lists every other host of the zone: suitable ones first, the rest with requiresStorageMotion and the reason', async () => {
    const found = ok(await admin.call('findHostsForMigration', { id: vm.id }), 'findHostsForMigration');
    expect(found.count).toBe(2);
    const [b, c] = found.host;
    expect(b).toMatchObject({ id: hostB.id, suitableformigration: true, requiresStorageMotion: false, cpuallocated: expect.any(String) });
    expect(b.notsuitablereason).toBeUndefined();
    expect(c).toMatchObject({ id: hostC.id, suitableformigration: false, requiresStorageMotion: true });
    expect(c.notsuitablereason).toMatch(/primary storage/);
  });

  it('refuses a caller that is not the root admin, an unknown VM and a VM that is not running', async () => {
    refused(await alice.client.call('findHostsForMigration', { id: vm.id }), 'findHostsForMigration', 432, 'The given command does not exist or it is not available for user');
    const unknown = randomUUID();
    refused(await admin.call('findHostsForMigration', { id: unknown }), 'findHostsForMigration', 431, noEntity('findhostsformigration', 'id', unknown));
  });
});

describe('migrateVirtualMachine', () => {
  it('refuses bad input at once with upstream\'s code and text, changing nothing', async () => {
    const [jobs, before] = [await jobCount(), await loads()];
    const call = (client: ApiClient, params: Record<string, string>) => client.call('migrateVirtualMachine', params);
    refused(await call(alice.client, { virtualmachineid: vm.id, hostid: hostB.id }), 'migrateVirtualMachine', 432, 'The given command does not exist or it is not available for user');
    const unknown = randomUUID();
    refused(await call(admin, { virtualmachineid: unknown }), 'migrateVirtualMachine', 431, noEntity('migratevirtualmachine', 'virtualmachineid', unknown));
    refused(await call(admin, { virtualmachineid: vm.id, hostid: unknown }), 'migrateVirtualMachine', 431, noEntity('migratevirtualmachine', 'hostid', unknown));
    refused(
      await call(admin, { virtualmachineid: vm.id, hostid: hostA.id }),
      'migrateVirtualMachine',
      431,
      'Cannot migrate VM, VM is already present on this host, please specify valid destination host to migrate the VM',
    );
    refused(
      await call(admin, { virtualmachineid: vm.id, hostid: hostC.id }),
      'migrateVirtualMachine',
      431,
      `Source and destination host are not in same cluster and all volumes are not on zone wide primary store, unable to migrate to host: ${hostC.id}`,
    );
    await updateHostRecord(hostB.id, { resourcestate: 'Disabled' });
    try {
      refused(await call(admin, { virtualmachineid: vm.id, hostid: hostB.id }), 'migrateVirtualMachine', 431, 'Cannot migrate VM, destination host is not in correct state, has status: Up, state: Disabled');
    } finally {
      await updateHostRecord(hostB.id, { resourcestate: 'Enabled' });
    }
    expect(await jobCount()).toBe(jobs);
    expect(await loads()).toEqual(before);
    expect((await getVmConsistent(vm.id))!).toMatchObject({ state: 'Running', hostId: hostA.id });
  });

  it('moves a running VM to the given host: Migrating while the agent works, the target reserved first, the source released after', async () => {
    const before = await loads();
    const started = await begin(admin, 'migrateVirtualMachine', { virtualmachineid: vm.id, hostid: hostB.id });
    const message = await receiveCommand(played.seeded.agent.queueUrl);
    expect(message.type).toBe('migrateVm');
    expect(message.payload).toMatchObject({ host: { hostId: hostA.id, address: hostA.ipaddress }, target: { hostId: hostB.id, address: hostB.ipaddress }, name: vm.instancename, vncListen: hostB.ipaddress });
    // While it runs: Migrating, both hosts hold it.
    expect((await getVmConsistent(vm.id))!).toMatchObject({ state: 'Migrating', hostId: hostA.id, migrateToHostId: hostB.id });
    expect(await loads()).toEqual({ ...before, b: { cpu: before.b.cpu + VM_CPU, memory: before.b.memory + VM_MEMORY } });
    await answer(message, migrated(message));
    const job = await admin.waitForJob(started.jobid);
    expect(job.jobstatus, JSON.stringify(job.jobresult)).toBe(1);
    expect(job.jobresult.virtualmachine).toMatchObject({ id: vm.id, state: 'Running', hostid: hostB.id });
    expect((await getVmConsistent(vm.id))!).toMatchObject({ state: 'Running', hostId: hostB.id, lastHostId: hostB.id, vncPort: 5907 });
    expect((await getVmConsistent(vm.id))!.migrateToHostId).toBeUndefined();
    expect(await loads()).toEqual({ a: { cpu: before.a.cpu - VM_CPU, memory: before.a.memory - VM_MEMORY }, b: { cpu: before.b.cpu + VM_CPU, memory: before.b.memory + VM_MEMORY }, c: before.c });
    const events = ok(await admin.call('listEvents', { type: 'VM.MIGRATE', listall: true }), 'listEvents').event ?? [];
    expect(events.some((e: any) => e.state === 'Completed' && e.resourceid === vm.id)).toBe(true);
  });

  it('a migration the agent fails leaves the VM Running on its source, nothing reserved, and the job says why', async () => {
    const before = await loads();
    // No hostid: the planner picks the only other host that reaches the pool (A).
    const started = await begin(admin, 'migrateVirtualMachine', { virtualmachineid: vm.id });
    const message = await agentAnswers('migrateVm', { error: 'MigrationFailed', cause: 'Migrating i-x from root@b to root@a failed (error: operation failed: Lost connection to destination host); on the source it is running' });
    expect(message.payload).toMatchObject({ target: { hostId: hostA.id } });
    const job = await admin.waitForJob(started.jobid);
    expect(job.jobstatus).toBe(2);
    expect(job.jobresult.errortext).toMatch(/Lost connection to destination host/);
    expect((await getVmConsistent(vm.id))!).toMatchObject({ state: 'Running', hostId: hostB.id });
    expect((await getVmConsistent(vm.id))!.migrateToHostId).toBeUndefined();
    expect(await loads()).toEqual(before);
  });

  it('a full target fails the job with 533 and a VM with nowhere to go with upstream\'s 530; both change nothing', async () => {
    const before = await loads();
    await updateHostRecord(hostA.id, { memoryallocated: 8 * GiB });
    try {
      const full = await admin.waitForJob((await begin(admin, 'migrateVirtualMachine', { virtualmachineid: vm.id, hostid: hostA.id })).jobid);
      expect(full.jobstatus).toBe(2);
      expect(full.jobresult).toMatchObject({ errorcode: 533 });
      expect(full.jobresult.errortext).toMatch(/Unable to migrate VM .* to host .*: the host does not have enough free CPU or memory/);
      const nowhere = await admin.waitForJob((await begin(admin, 'migrateVirtualMachine', { virtualmachineid: vm.id })).jobid);
      expect(nowhere.jobstatus).toBe(2);
      expect(nowhere.jobresult).toMatchObject({ errorcode: 530, errortext: 'Unable to find a server to migrate the vm to' });
      expect((await getVmConsistent(vm.id))!).toMatchObject({ state: 'Running', hostId: hostB.id });
      expect(await load(hostB.id)).toEqual(before.b);
      expect(await load(hostA.id)).toEqual({ cpu: before.a.cpu, memory: 8 * GiB });
    } finally {
      await updateHostRecord(hostA.id, { memoryallocated: before.a.memory });
    }
  });

  it('refuses a VM that is not Running', async () => {
    const stop = await begin(admin, 'stopVirtualMachine', { id: vm.id, forced: true });
    await agentAnswers('stopVm', { result: { name: vm.instancename, state: 'Stopped', forced: true } });
    expect((await admin.waitForJob(stop.jobid)).jobstatus).toBe(1);
    const jobs = await jobCount();
    refused(await admin.call('migrateVirtualMachine', { virtualmachineid: vm.id, hostid: hostA.id }), 'migrateVirtualMachine', 431, 'VM is not Running, unable to migrate the vm with specified id');
    refused(await admin.call('findHostsForMigration', { id: vm.id }), 'findHostsForMigration', 431, 'VM is not running, cannot migrate the vm with specified id');
    expect(await jobCount()).toBe(jobs);
  });
});
