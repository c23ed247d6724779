// createVolume, attachVolume, detachVolume, resizeVolume, deleteVolume and listVolumes through
// /client/api and the real volume-* state machines, with the test playing the zone's agent (as in
// vm-commands.test.ts). Every bad input is refused synchronously and changes nothing; every agent
// failure leaves the volume as it was, with what the operation took given back.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandMessage } from '../../shared/agent/protocol.ts';
import { createHostRecord } from '../../shared/db/hosts.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { getCluster } from '../../shared/db/infrastructure.ts';
import { storedCounts } from '../../shared/db/limits.ts';
import { getStoragePool } from '../../shared/db/storage.ts';
import { getVmConsistent, getVolumeConsistent } from '../../shared/db/vms.ts';
import { answer, receiveCommand, type SeededAgent } from '../support/agent-seed.ts';
import { GiB, POOL_PATH, seedPlayedZone } from '../support/played-zone.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { patience, waitFor } from '../support/wait.ts';
import { missing, noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';


let world: World;
let admin: ApiClient;
let alice: Member;
let bob: Member;
let zone: any;
let host: any;
let pool: any;
let template: any;
let offering: any;
let small: any;
let custom: any;
let seeded: SeededAgent;
let vm: any;
let vmName: string;

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  const root = (await getDomain(world.rootDomainId))!;
  alice = await seedMember(world.runtime.apiUrl, unique('alice'), root, 'User');
  bob = await seedMember(world.runtime.apiUrl, unique('bob'), root, 'User');
  ({ zone, host, pool, template, seeded } = await seedPlayedZone(admin, 50));
  offering = ok(await admin.call('createServiceOffering', { name: unique('small'), displaytext: 'small', cpunumber: 1, cpuspeed: 500, memory: 512 }), 'createServiceOffering').serviceoffering;
  small = ok(await admin.call('createDiskOffering', { name: unique('d5'), displaytext: '5 GB', disksize: 5 }), 'createDiskOffering').diskoffering;
  custom = ok(await admin.call('createDiskOffering', { name: unique('dc'), displaytext: 'custom', customized: true }), 'createDiskOffering').diskoffering;
  // Alice's running VM.
  const deploy = ok(await alice.client.call('deployVirtualMachine', { zoneid: zone.id, serviceofferingid: offering.id, templateid: template.id, name: 'data-vm' }), 'deployVirtualMachine');
  const start = await receiveCommand(seeded.agent.queueUrl);
  vmName = (start.payload as any).vm.name;
  await answer(start, { result: { name: vmName, state: 'Running' } });
  vm = (await alice.client.waitForJob(deploy.jobid)).jobresult.virtualmachine;
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
const counts = async (member: Member) => Object.fromEntries(Object.entries(await storedCounts('ACCOUNT', member.account.id)).filter(([, n]) => n !== 0));
const allocated = async () => (await getStoragePool(pool.id))!.disksizeallocated;
const volumeCount = async () => ok(await admin.call('listVolumes', { listall: true, pagesize: -1 }), 'listVolumes').count ?? 0;
const jobCount = async () => ok(await admin.call('listAsyncJobs', { listall: true, pagesize: -1 }), 'listAsyncJobs').count ?? 0;

async function createVolume(client: ApiClient, params: Record<string, string | number>) {
  const created = ok(await client.call('createVolume', { zoneid: zone.id, ...params }), 'createVolume');
  expect(Object.keys(created).sort()).toEqual(['id', 'jobid']);
  const job = await client.waitForJob(created.jobid);
  expect(job).toMatchObject({ jobstatus: 1, cmd: 'createVolume', jobinstancetype: 'Volume', jobinstanceid: created.id });
  return job.jobresult.volume;
}

describe('createVolume', () => {
  it('refuses every bad input with upstream\'s text, changing nothing', async () => {
    const before = [await volumeCount(), await jobCount(), await counts(alice)];
    const call = (params: Record<string, string | number>) => alice.client.call('createVolume', { zoneid: zone.id, ...params });
    const unknown = randomUUID();
    refused(await call({}), 'createVolume', 431, 'At least one of disk Offering ID or snapshot ID must be passed whilst creating volume');
    refused(await call({ diskofferingid: unknown }), 'createVolume', 431, 'Please specify a valid disk offering.');
    refused(await call({ diskofferingid: custom.id }), 'createVolume', 431, 'This disk offering requires a custom size specified');
    refused(await call({ diskofferingid: custom.id, size: 0 }), 'createVolume', 431, 'Disk size must be larger than 0');
    refused(await call({ diskofferingid: custom.id, size: 5000 }), 'createVolume', 431, 'Volume size: 5000 GB is out of allowed range. Min: 1. Max: 1024');
    refused(await call({ diskofferingid: small.id, size: 3 }), 'createVolume', 431, 'This disk offering does not allow custom size');
    refused(await call({ diskofferingid: small.id, zoneid: unknown }), 'createVolume', 431, noEntity('createvolume', 'zoneid', unknown));
    refused(await call({ diskofferingid: small.id, size: 'x' as never }), 'createVolume', 431, /Invalid parameter size value=x/);
    refused(await call({ diskofferingid: small.id, displayvolume: 'false' as never }), 'createVolume', 531, 'Cannot update parameter displayvolume, only admin permitted ');
    refused(await call({ snapshotid: unknown }), 'createVolume', 431, noEntity('createvolume', 'snapshotid', unknown));
    expect([await volumeCount(), await jobCount(), await counts(alice)]).toEqual(before);
  });

  it('creates an Allocated volume with no file: counted, listed, nothing on a pool', async () => {
    const before = { counts: await counts(alice), allocated: await allocated() };
    const volume = await createVolume(alice.client, { diskofferingid: custom.id, size: 3, name: 'scratch' });
    expect(volume).toMatchObject({ name: 'scratch', type: 'DATADISK', state: 'Allocated', size: 3 * GiB, zoneid: zone.id, zonename: zone.name, account: alice.account.name, diskofferingid: custom.id, hypervisor: 'None', destroyed: false });
    expect(volume.virtualmachineid).toBeUndefined();
    expect(await counts(alice)).toEqual({ ...before.counts, volume: (before.counts.volume ?? 0) + 1, primary_storage: (before.counts.primary_storage ?? 0) + 3 * GiB });
    expect(await allocated()).toBe(before.allocated);
    const named = await createVolume(alice.client, { diskofferingid: small.id });
    expect(named.name).toMatch(/^[0-9a-f-]{36}$/);
    expect(named.size).toBe(5 * GiB);
    const events = ok(await admin.call('listEvents', { listall: true, resourceid: volume.id, resourcetype: 'Volume', pagesize: -1 }), 'listEvents').event ?? [];
    expect(events.filter((e: any) => e.state === 'Completed').map((e: any) => e.type)).toContain('VOLUME.CREATE');
    // Deleting a volume without a file is the record only: no agent command.
    expect(ok(await alice.client.call('deleteVolume', { id: named.id }), 'deleteVolume')).toEqual({ success: true });
    expect(await getVolumeConsistent(named.id)).toBeUndefined();
  });
});

describe('attach, resize, detach and delete through the agent', () => {
  let data: any;

  it('lists the root volume with its VM', async () => {
    const list = ok(await alice.client.call('listVolumes', { virtualmachineid: vm.id }), 'listVolumes');
    expect(list.count).toBe(1);
    expect(list.volume[0]).toMatchObject({ type: 'ROOT', virtualmachineid: vm.id, vmname: vmName, vmdisplayname: 'data-vm', vmstate: 'Running', deviceid: 0, state: 'Ready', templateid: template.id, size: 2 * GiB });
    expect(list.volume[0].storageid).toBeUndefined();
    const asAdmin = ok(await admin.call('listVolumes', { virtualmachineid: vm.id, listall: true }), 'listVolumes').volume[0];
    expect(asAdmin).toMatchObject({ storageid: pool.id, storage: pool.name, path: `${list.volume[0].id}.qcow2` });
    expect(ok(await bob.client.call('listVolumes', { virtualmachineid: vm.id }), 'listVolumes')).toEqual({});
  });

  it('attaches live to a running VM: placed on the root disk\'s pool, hot-plugged as vdb', async () => {
    data = await createVolume(alice.client, { diskofferingid: custom.id, size: 4, name: 'data1' });
    const before = await allocated();
    refused(await bob.client.call('attachVolume', { id: data.id, virtualmachineid: vm.id }), 'attachVolume', 531, /does not have permission/);
    refused(await alice.client.call('attachVolume', { id: data.id }), 'attachVolume', 431, missing('attachvolume', 'virtualmachineid'));
    refused(await alice.client.call('attachVolume', { id: data.id, virtualmachineid: vm.id, deviceid: 0 }), 'attachVolume', 431, 'Root volume detach can happen only when vm is in states: Stopped or Destroyed');
    refused(await alice.client.call('attachVolume', { id: data.id, virtualmachineid: vm.id, deviceid: 26 }), 'attachVolume', 431, 'deviceId should be 1 ~ 25 (deviceid)');
    refused(await alice.client.call('attachVolume', { id: data.id, virtualmachineid: randomUUID() }), 'attachVolume', 431, 'Please specify a valid User VM.');
    const job = ok(await alice.client.call('attachVolume', { id: data.id, virtualmachineid: vm.id }), 'attachVolume');
    refused(await alice.client.call('attachVolume', { id: data.id, virtualmachineid: vm.id }), 'attachVolume', 431, /is busy with another operation/);
    const message = await agentAnswers('attachDisk', { result: { vmName, target: 'vdb', created: true } });
    expect(message.payload).toEqual({ host: { hostId: host.id, address: host.ipaddress, port: 22, username: 'root' }, vmName, disk: { path: `${POOL_PATH}/${data.id}.qcow2`, sizeBytes: 4 * GiB, deviceId: 1 } });
    const done = await alice.client.waitForJob(job.jobid);
    expect(done).toMatchObject({ jobstatus: 1, cmd: 'attachVolume', jobinstancetype: 'Volume', jobinstanceid: data.id });
    expect(done.jobresult.volume).toMatchObject({ id: data.id, virtualmachineid: vm.id, deviceid: 1, state: 'Ready', vmstate: 'Running', hypervisor: 'KVM', attached: expect.any(String) });
    expect(await allocated()).toBe(before + 4 * GiB);
    refused(await alice.client.call('attachVolume', { id: data.id, virtualmachineid: vm.id }), 'attachVolume', 431, 'Please specify a volume that is not attached to any VM.');
    refused(await alice.client.call('deleteVolume', { id: data.id }), 'deleteVolume', 431, 'Please specify a volume that is not attached to any VM.');
    const root = ok(await alice.client.call('listVolumes', { virtualmachineid: vm.id, type: 'ROOT' }), 'listVolumes').volume[0];
    refused(await alice.client.call('detachVolume', { id: root.id }), 'detachVolume', 431, 'Root volume detach can happen only when vm is in states: Stopped or Destroyed');
    refused(await alice.client.call('detachVolume', {}), 'detachVolume', 431, 'Please provide either a volume id, or a tuple(device id, instance id)');
    refused(await alice.client.call('detachVolume', { id: data.id, deviceid: 1 }), 'detachVolume', 431, 'Please provide either a volume id, or a tuple(device id, instance id)');
    const listed = ok(await alice.client.call('listVolumes', { virtualmachineid: vm.id }), 'listVolumes');
    expect(listed.volume.map((v: any) => [v.type, v.deviceid])).toEqual([['ROOT', 0], ['DATADISK', 1]]);
    expect(ok(await alice.client.call('listVolumes', { type: 'datadisk', keyword: 'ata1' }), 'listVolumes').volume.map((v: any) => v.id)).toEqual([data.id]);
  });

  it('a failed attach leaves the volume detached, unplaced and free, with the agent\'s reason in the job', async () => {
    const other = await createVolume(alice.client, { diskofferingid: small.id, name: 'doomed' });
    const before = { allocated: await allocated(), counts: await counts(alice) };
    const job = ok(await alice.client.call('attachVolume', { id: other.id, virtualmachineid: vm.id, deviceid: 3 }), 'attachVolume');
    const message = await agentAnswers('attachDisk', { error: 'AttachFailed', cause: `Attaching ${POOL_PATH}/${other.id}.qcow2 to ${vmName} as vdd on root@10.50.0.11 failed: no PCI slot` });
    expect((message.payload as any).disk.deviceId).toBe(3);
    const failed = await alice.client.waitForJob(job.jobid);
    expect(failed).toMatchObject({ jobstatus: 2, jobresultcode: 530, jobresult: { errorcode: 530, errortext: `Attaching ${POOL_PATH}/${other.id}.qcow2 to ${vmName} as vdd on root@10.50.0.11 failed: no PCI slot` } });
    const record = (await getVolumeConsistent(other.id))!;
    expect(record).toMatchObject({ state: 'Allocated', poolId: '', path: '' });
    expect(record.vmId).toBeUndefined();
    expect(record.busy).toBeUndefined();
    expect(record.poolReserved).toBeUndefined();
    expect(await allocated()).toBe(before.allocated);
    expect(await counts(alice)).toEqual(before.counts);
    expect(ok(await alice.client.call('deleteVolume', { id: other.id }), 'deleteVolume')).toEqual({ success: true });
  });

  it('resizes: refusals as upstream (432), then grows the running VM\'s disk live', async () => {
    refused(await alice.client.call('resizeVolume', { id: data.id, size: 2 }), 'resizeVolume', 432, `Going from existing size of ${4 * GiB} to size of ${2 * GiB} would shrink the volume.Need to sign off by supplying the shrinkok parameter with value of true.`);
    refused(await alice.client.call('resizeVolume', { id: data.id, size: 5000 }), 'resizeVolume', 432, 'Volume size: 5000 GB is out of allowed range. Min: 1. Max: 1024');
    refused(await bob.client.call('resizeVolume', { id: data.id, size: 6 }), 'resizeVolume', 531, /does not have permission/);
    const before = { allocated: await allocated(), counts: await counts(alice) };
    const job = ok(await alice.client.call('resizeVolume', { id: data.id, size: 6 }), 'resizeVolume');
    const message = await agentAnswers('resizeDisk', { result: { path: `${POOL_PATH}/${data.id}.qcow2`, exists: true, sizeBytes: 6 * GiB, live: true } });
    expect(message.payload).toMatchObject({ path: `${POOL_PATH}/${data.id}.qcow2`, sizeBytes: 6 * GiB, vmName, shrinkOk: false });
    expect((await alice.client.waitForJob(job.jobid)).jobresult.volume).toMatchObject({ id: data.id, size: 6 * GiB });
    expect(await allocated()).toBe(before.allocated + 2 * GiB);
    expect((await counts(alice)).primary_storage).toBe(before.counts.primary_storage + 2 * GiB);

    // A failed resize keeps the size and gives back what it reserved.
    const failing = ok(await alice.client.call('resizeVolume', { id: data.id, size: 8 }), 'resizeVolume');
    await agentAnswers('resizeDisk', { error: 'ResizeFailed', cause: 'blockresize: not enough space' });
    expect((await alice.client.waitForJob(failing.jobid)).jobresult.errortext).toBe('blockresize: not enough space');
    expect((await getVolumeConsistent(data.id))!.sizeBytes).toBe(6 * GiB);
    expect(await allocated()).toBe(before.allocated + 2 * GiB);
    expect((await counts(alice)).primary_storage).toBe(before.counts.primary_storage + 2 * GiB);
    const events = ok(await admin.call('listEvents', { listall: true, resourceid: data.id, resourcetype: 'Volume', pagesize: -1 }), 'listEvents').event ?? [];
    expect(events.filter((e: any) => e.state === 'Completed').map((e: any) => e.type)).toEqual(expect.arrayContaining(['VOLUME.ATTACH', 'VOLUME.RESIZE']));
  });

  it('detaches live; a guest that does not release it fails the job and the volume stays attached', async () => {
    const stuck = ok(await alice.client.call('detachVolume', { virtualmachineid: vm.id, deviceid: 1 }), 'detachVolume');
    const message = await agentAnswers('detachDisk', { error: 'DetachTimeout', cause: 'the guest did not release it' });
    expect(message.payload).toMatchObject({ vmName, path: `${POOL_PATH}/${data.id}.qcow2` });
    expect((await alice.client.waitForJob(stuck.jobid)).jobresult.errortext).toBe('the guest did not release it');
    expect((await getVolumeConsistent(data.id))).toMatchObject({ vmId: vm.id, deviceId: 1 });
    const job = ok(await alice.client.call('detachVolume', { id: data.id }), 'detachVolume');
    await agentAnswers('detachDisk', { result: { vmName, detached: true } });
    const done = (await alice.client.waitForJob(job.jobid)).jobresult.volume;
    expect(done).toMatchObject({ id: data.id, state: 'Ready' });
    expect(done.virtualmachineid).toBeUndefined();
    refused(await alice.client.call('detachVolume', { id: data.id }), 'detachVolume', 431, 'The specified volume is not attached to a VM.');
  });

  it('attaches to a stopped VM in the records only; the next start brings the disk', async () => {
    const stop = ok(await alice.client.call('stopVirtualMachine', { id: vm.id }), 'stopVirtualMachine');
    await agentAnswers('stopVm', { result: { name: vmName, state: 'Stopped', forced: false } });
    expect((await alice.client.waitForJob(stop.jobid)).jobstatus).toBe(1);
    const fresh = await createVolume(alice.client, { diskofferingid: small.id, name: 'later' });
    const jobs = [
      ok(await alice.client.call('attachVolume', { id: data.id, virtualmachineid: vm.id, deviceid: 2 }), 'attachVolume'),
      ok(await alice.client.call('attachVolume', { id: fresh.id, virtualmachineid: vm.id }), 'attachVolume'),
    ];
    for (const job of jobs) expect((await alice.client.waitForJob(job.jobid)).jobresult.volume).toMatchObject({ virtualmachineid: vm.id, vmstate: 'Stopped' });
    // The new one went to the root disk's pool at attach (its file comes with the start).
    expect(await getVolumeConsistent(fresh.id)).toMatchObject({ deviceId: 1, poolId: pool.id, path: `${POOL_PATH}/${fresh.id}.qcow2`, poolReserved: true });
    const start = ok(await alice.client.call('startVirtualMachine', { id: vm.id }), 'startVirtualMachine');
    const message = await agentAnswers('startVm', { result: { name: vmName, state: 'Running' } });
    expect((message.payload as any).vm.disks.slice(1)).toEqual([
      { path: `${POOL_PATH}/${fresh.id}.qcow2`, sizeBytes: 5 * GiB, deviceId: 1 },
      { path: `${POOL_PATH}/${data.id}.qcow2`, sizeBytes: 6 * GiB, deviceId: 2 },
    ]);
    expect((await alice.client.waitForJob(start.jobid)).jobstatus).toBe(1);
    // Stopped again: detached in the records only.
    const stopAgain = ok(await alice.client.call('stopVirtualMachine', { id: vm.id }), 'stopVirtualMachine');
    await agentAnswers('stopVm', { result: { name: vmName, state: 'Stopped', forced: false } });
    await alice.client.waitForJob(stopAgain.jobid);
    const detach = ok(await alice.client.call('detachVolume', { id: fresh.id }), 'detachVolume');
    expect((await alice.client.waitForJob(detach.jobid)).jobstatus).toBe(1);
  });

  it('deletes a detached volume: the answer at once, the file through a host of its pool, everything given back', async () => {
    const detach = ok(await alice.client.call('detachVolume', { id: data.id }), 'detachVolume');
    expect((await alice.client.waitForJob(detach.jobid)).jobstatus).toBe(1);
    const before = { allocated: await allocated(), counts: await counts(alice) };
    refused(await bob.client.call('deleteVolume', { id: data.id }), 'deleteVolume', 531, /does not have permission/);
    refused(await alice.client.call('deleteVolume', { id: randomUUID() }), 'deleteVolume', 431, /^Unable to find volume with ID: /);
    expect(ok(await alice.client.call('deleteVolume', { id: data.id }), 'deleteVolume')).toEqual({ success: true });
    expect(ok(await alice.client.call('listVolumes', { id: data.id }), 'listVolumes')).toEqual({});
    expect(await counts(alice)).toEqual({ ...before.counts, volume: before.counts.volume - 1, primary_storage: before.counts.primary_storage - 6 * GiB });
    const message = await agentAnswers('deleteDisk', { result: { path: `${POOL_PATH}/${data.id}.qcow2`, removed: true } });
    expect(message.payload).toEqual({ host: { hostId: host.id, address: host.ipaddress, port: 22, username: 'root' }, path: `${POOL_PATH}/${data.id}.qcow2` });
    await waitFor('the volume to be gone', async () => (await getVolumeConsistent(data.id)) === undefined);
    expect(await allocated()).toBe(before.allocated - 6 * GiB);
    const events = ok(await admin.call('listEvents', { listall: true, resourceid: data.id, resourcetype: 'Volume', pagesize: -1 }), 'listEvents').event ?? [];
    expect(events.map((e: any) => e.type)).toContain('VOLUME.DELETE');
  });

  it('a VM\'s expunge leaves its data disks, detached', async () => {
    const fresh = ok(await alice.client.call('listVolumes', { name: 'later' }), 'listVolumes').volume[0];
    const attach = ok(await alice.client.call('attachVolume', { id: fresh.id, virtualmachineid: vm.id }), 'attachVolume');
    expect((await alice.client.waitForJob(attach.jobid)).jobstatus).toBe(1);
    const destroy = ok(await admin.call('destroyVirtualMachine', { id: vm.id, expunge: true }), 'destroyVirtualMachine');
    await agentAnswers('expungeVm', { result: { removed: [] } });
    expect((await admin.waitForJob(destroy.jobid)).jobstatus).toBe(1);
    expect(await getVmConsistent(vm.id)).toBeUndefined();
    const left = (await getVolumeConsistent(fresh.id))!;
    expect(left).toMatchObject({ state: 'Ready', poolReserved: true });
    expect(left.vmId).toBeUndefined();
    expect(ok(await alice.client.call('listVolumes', { id: fresh.id }), 'listVolumes').volume[0].virtualmachineid).toBeUndefined();
  });
});
