// migrateVolume through /client/api and the real volume-migrate state machine, with the test playing
// the zone's agent (as volumes.test.ts does). Every bad input is refused with upstream's error and
// changes nothing; a move reserves the target pool's bytes before the copy and gives the source's
// back after it, the VM is Migrating meanwhile (nothing starts it) and Stopped after; a failed copy
// leaves the volume where it was, with nothing reserved, and the job says why.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandMessage } from '../../shared/agent/protocol.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { getStoragePool } from '../../shared/db/storage.ts';
import { getVmConsistent, getVolumeConsistent } from '../../shared/db/vms.ts';
import { answer, receiveCommand, type SeededAgent } from '../support/agent-seed.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { GiB, POOL_PATH, seedPlayedZone } from '../support/played-zone.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { patience } from '../support/wait.ts';
import { noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';

const SECOND_PATH = '/var/lib/mold/primary2';

let world: World;
let admin: ApiClient;
let alice: Member;
let bob: Member;
let zone: any;
let cluster: any;
let pool: any;
let second: any;
/** The pool the root disk was placed on, and the other one. */
let from: { id: string; name: string; path: string };
let to: { id: string; name: string; path: string };
let template: any;
let offering: any;
let seeded: SeededAgent;
let vm: any;
let root: any;
let vmName: string;

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  const rootDomain = (await getDomain(world.rootDomainId))!;
  alice = await seedMember(world.runtime.apiUrl, unique('alice'), rootDomain, 'User');
  bob = await seedMember(world.runtime.apiUrl, unique('bob'), rootDomain, 'User');
  let pod: any;
  ({ zone, pod, cluster, pool, template, seeded } = await seedPlayedZone(admin, 60));
  second = ok(
    await admin.call('createStoragePool', { zoneid: zone.id, podid: pod.id, clusterid: cluster.id, name: unique('second'), url: `SharedMountPoint://localhost${SECOND_PATH}`, capacitybytes: 100 * GiB }),
    'createStoragePool',
  ).storagepool;
  offering = ok(await admin.call('createServiceOffering', { name: unique('small'), displaytext: 'small', cpunumber: 1, cpuspeed: 500, memory: 512 }), 'createServiceOffering').serviceoffering;
  const deploy = ok(await alice.client.call('deployVirtualMachine', { zoneid: zone.id, serviceofferingid: offering.id, templateid: template.id, name: 'moving-vm' }), 'deployVirtualMachine');
  const start = await receiveCommand(seeded.agent.queueUrl);
  vmName = (start.payload as any).vm.name;
  await answer(start, { result: { name: vmName, state: 'Running' } });
  vm = (await alice.client.waitForJob(deploy.jobid)).jobresult.virtualmachine;
  root = ok(await admin.call('listVolumes', { virtualmachineid: vm.id, type: 'ROOT', listall: true }), 'listVolumes').volume[0];
  const pools = [{ id: pool.id, name: pool.name, path: POOL_PATH }, { id: second.id, name: second.name, path: SECOND_PATH }];
  [from, to] = root.storageid === pool.id ? pools : [pools[1]!, pools[0]!];
}, patience(120_000));

afterAll(async () => {
  await world?.runtime.stop();
});

async function agentAnswers(type: string, outcome: { result: unknown } | { error: string; cause: string }): Promise<CommandMessage> {
  const message = await receiveCommand(seeded.agent.queueUrl);
  expect(message.type).toBe(type);
  await answer(message, outcome);
  return message;
}
const allocated = async (id: string) => (await getStoragePool(id))!.disksizeallocated;
const state = async () => ({
  volume: await getVolumeConsistent(root.id),
  vm: (await getVmConsistent(vm.id))!.state,
  pools: [await allocated(from.id), await allocated(to.id)],
  jobs: ok(await admin.call('listAsyncJobs', { listall: true, pagesize: -1 }), 'listAsyncJobs').count ?? 0,
});
const stopVm = async () => {
  const stop = ok(await alice.client.call('stopVirtualMachine', { id: vm.id }), 'stopVirtualMachine');
  await agentAnswers('stopVm', { result: { name: vmName, state: 'Stopped', forced: false } });
  expect((await alice.client.waitForJob(stop.jobid)).jobstatus).toBe(1);
};

describe('migrateVolume', () => {
  it('refuses every bad input with upstream\'s error, changing nothing', async () => {
    const before = await state();
    const call = (client: ApiClient, params: Record<string, string | boolean>) => client.call('migrateVolume', { volumeid: root.id, storageid: to.id, ...params });
    const unknown = randomUUID();
    refused(await call(admin, { volumeid: unknown }), 'migrateVolume', 431, noEntity('migratevolume', 'volumeid', unknown));
    refused(await call(admin, { storageid: unknown }), 'migrateVolume', 431, noEntity('migratevolume', 'storageid', unknown));
    refused(await call(bob.client, {}), 'migrateVolume', 531, `Caller ${bob.account.name} does not have permission to operate with volume ${root.id}`);
    refused(await call(admin, { storageid: from.id }), 'migrateVolume', 431, `Volume Vol[${root.id}|name=${root.name}|vm=${vm.id}|ROOT] is already on the destination storage pool`);
    // A running VM's volume: upstream refuses it on KVM, with livemigrate or without.
    const kvm = "KVM does not support volume live migration due to the limited possibility to refresh VM XML domain. Therefore, to live migrate a volume between storage pools, one must migrate the VM to a different host as well to force the VM XML domain update. Use 'migrateVirtualMachineWithVolumes' instead.";
    refused(await call(admin, {}), 'migrateVolume', 431, kvm);
    refused(await call(alice.client, { livemigrate: true }), 'migrateVolume', 431, kvm);
    expect(await state()).toEqual(before);
  });

  it('refuses a target in another zone, of another kind, disabled or too small, and a volume with no file yet', async () => {
    await stopVm();
    const before = await state();
    const call = (params: Record<string, string>) => admin.call('migrateVolume', { volumeid: root.id, storageid: to.id, ...params });
    // Another zone's pool.
    const other = ok(await admin.call('createZone', { name: unique('z2'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
    const otherPod = ok(await admin.call('createPod', { zoneid: other.id, name: unique('p2'), gateway: '10.61.0.1', netmask: '255.255.255.0', startip: '10.61.0.10', endip: '10.61.0.20' }), 'createPod').pod;
    const otherCluster = ok(await admin.call('addCluster', { zoneid: other.id, podid: otherPod.id, clustername: unique('c2'), hypervisor: 'KVM', clustertype: 'CloudManaged' }), 'addCluster').cluster[0];
    const far = ok(await admin.call('createStoragePool', { zoneid: other.id, podid: otherPod.id, clusterid: otherCluster.id, name: unique('far'), url: 'SharedMountPoint://localhost/var/lib/mold/far', capacitybytes: 100 * GiB }), 'createStoragePool').storagepool;
    refused(await call({ storageid: far.id }), 'migrateVolume', 431, `Storage pool ${far.name} is not in the zone of volume ${root.name} (${zone.id}): a volume migrates within its zone (storageid)`);
    // A host's own disk: the copy would have to cross hosts.
    const local = ok(await admin.call('createStoragePool', { zoneid: zone.id, podid: cluster.podid, clusterid: cluster.id, name: unique('local'), url: 'filesystem://localhost/var/lib/mold/local', capacitybytes: 100 * GiB }), 'createStoragePool').storagepool;
    refused(await call({ storageid: local.id }), 'migrateVolume', 431, `Mold migrates volumes between file-based shared pools (NetworkFilesystem, SharedMountPoint) only; storage pool ${local.name} is Filesystem`);
    // Too small for the root disk, even over-provisioned.
    const tiny = ok(await admin.call('createStoragePool', { zoneid: zone.id, podid: cluster.podid, clusterid: cluster.id, name: unique('tiny'), url: 'SharedMountPoint://localhost/var/lib/mold/tiny', capacitybytes: Math.floor(root.size / 8) }), 'createStoragePool').storagepool;
    refused(await call({ storageid: tiny.id }), 'migrateVolume', 530, `Storage pool ${tiny.name} does not have enough space to migrate volume ${root.name}`);
    ok(await admin.call('updateStoragePool', { id: tiny.id, enabled: false }), 'updateStoragePool');
    refused(await call({ storageid: tiny.id }), 'migrateVolume', 530, `Storage pool ${tiny.name} is not suitable to migrate volume ${root.name}`);
    refused(await call({ newdiskofferingid: randomUUID() }), 'migrateVolume', 431, 'Mold does not replace a volume\'s disk offering while migrating it yet (newdiskofferingid)');
    // A data volume never attached has no file anywhere.
    const disk = ok(await admin.call('createDiskOffering', { name: unique('d1'), displaytext: '1 GB', disksize: 1 }), 'createDiskOffering').diskoffering;
    const created = ok(await alice.client.call('createVolume', { zoneid: zone.id, diskofferingid: disk.id, name: 'empty' }), 'createVolume');
    expect((await alice.client.waitForJob(created.jobid)).jobstatus).toBe(1);
    refused(await admin.call('migrateVolume', { volumeid: created.id, storageid: to.id }), 'migrateVolume', 431, 'Volume must be in ready state');
    ok(await alice.client.call('deleteVolume', { id: created.id }), 'deleteVolume');
    expect({ ...(await state()), jobs: 0 }).toEqual({ ...before, jobs: 0 });
  });

  it('fails a copy the host refuses: the volume stays where it was, nothing stays reserved, the copy is removed, the VM can start', async () => {
    const before = await state();
    const started = ok(await alice.client.call('migrateVolume', { volumeid: root.id, storageid: to.id }), 'migrateVolume');
    const copy = await receiveCommand(seeded.agent.queueUrl);
    expect(copy.type).toBe('copyDisk');
    expect(copy.payload).toMatchObject({ source: `${from.path}/${root.id}.qcow2`, destination: `${to.path}/${root.id}.qcow2` });
    // While it copies: the target's bytes are reserved, the VM is Migrating, and nothing starts it.
    expect(await allocated(to.id)).toBe(before.pools[1]! + root.size);
    expect((await getVmConsistent(vm.id))!.state).toBe('Migrating');
    refused(await alice.client.call('startVirtualMachine', { id: vm.id }), 'startVirtualMachine', 431, `The virtual machine ${vm.id} (${vm.displayname}) cannot be started: it is Migrating`);
    refused(await admin.call('migrateVolume', { volumeid: root.id, storageid: to.id }), 'migrateVolume', 431, /is attached to VM .*, which is Migrating: its volumes migrate while it is Stopped/);
    await answer(copy, { error: 'CopyFailed', cause: 'Copying it failed (convert): No space left on device' });
    const removal = await receiveCommand(seeded.agent.queueUrl);
    expect(removal).toMatchObject({ type: 'removeFiles', payload: { paths: [`${to.path}/${root.id}.qcow2`] } });
    await answer(removal, { result: { removed: [] } });
    const job = await alice.client.waitForJob(started.jobid);
    expect(job).toMatchObject({ jobstatus: 2, cmd: 'migrateVolume', jobresult: { errortext: 'Copying it failed (convert): No space left on device' } });
    const after = await state();
    expect({ ...after, jobs: 0 }).toEqual({ ...before, jobs: 0 });
    expect(after.volume).toMatchObject({ poolId: from.id, path: `${from.path}/${root.id}.qcow2` });
    expect(after.volume!.busy).toBeUndefined();
  });

  it('moves a stopped VM\'s root volume: bytes reserved on the target before the copy, the source\'s given back after, the leftovers removed', async () => {
    const before = await state();
    const started = ok(await alice.client.call('migrateVolume', { volumeid: root.id, storageid: to.id }), 'migrateVolume');
    const copy = await receiveCommand(seeded.agent.queueUrl);
    expect(await allocated(to.id)).toBe(before.pools[1]! + root.size);
    await answer(copy, { result: { destination: `${to.path}/${root.id}.qcow2`, sizeBytes: root.size } });
    const removal = await receiveCommand(seeded.agent.queueUrl);
    expect(removal).toMatchObject({ type: 'removeFiles', payload: { paths: [`${from.path}/${root.id}.qcow2`, `${from.path}/${vm.id}-config.iso`] } });
    await answer(removal, { result: { removed: (removal.payload as any).paths } });
    const job = await alice.client.waitForJob(started.jobid);
    expect(job).toMatchObject({ jobstatus: 1, cmd: 'migrateVolume', jobinstancetype: 'Volume', jobinstanceid: root.id });
    expect(job.jobresult.volume).toMatchObject({ id: root.id, state: 'Ready', virtualmachineid: vm.id });
    const after = await state();
    expect(after.pools).toEqual([before.pools[0]! - root.size, before.pools[1]! + root.size]);
    expect(after.vm).toBe('Stopped');
    expect(after.volume).toMatchObject({ poolId: to.id, path: `${to.path}/${root.id}.qcow2` });
    expect(Object.keys(after.volume!).filter((k) => /^(busy|migrate|sourceReleased)/.test(k))).toEqual([]);
    const listed = ok(await admin.call('listVolumes', { id: root.id, listall: true }), 'listVolumes').volume[0];
    expect(listed).toMatchObject({ storageid: to.id, storage: to.name });
    const events = ok(await admin.call('listEvents', { listall: true, resourceid: root.id, resourcetype: 'Volume', pagesize: -1 }), 'listEvents').event ?? [];
    expect(events.filter((e: any) => e.type === 'VOLUME.MIGRATE').map((e: any) => e.state)).toEqual(expect.arrayContaining(['Scheduled', 'Completed']));

    // The VM starts from the target pool (its config drive is made there).
    const start = ok(await alice.client.call('startVirtualMachine', { id: vm.id }), 'startVirtualMachine');
    const command = await receiveCommand(seeded.agent.queueUrl);
    expect((command.payload as any).vm.disks[0].path).toBe(`${to.path}/${root.id}.qcow2`);
    expect((command.payload as any).vm.configDrive.path).toBe(`${to.path}/${vm.id}-config.iso`);
    await answer(command, { result: { name: (command.payload as any).vm.name, state: 'Running' } });
    expect((await alice.client.waitForJob(start.jobid)).jobstatus).toBe(1);
  });
});
