// deployVirtualMachine with a data disk (diskofferingid, with size for a customized offering): the
// DATADISK volume DATA-<vm number> at device 1, created with the VM and counted with it, made blank by
// the agent's startVm, given back with a failed deploy, detached and kept at expunge. Through
// /client/api and the real vm-* state machines, with the test playing the zone's agent.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDomain } from '../../shared/db/identity.ts';
import { getStoragePool } from '../../shared/db/storage.ts';
import { getVmConsistent, getVolume } from '../../shared/db/vms.ts';
import { answer, receiveCommand, type SeededAgent } from '../support/agent-seed.ts';
import { GiB, playedVmChecks, POOL_PATH, seedPlayedZone, started, type PlayedZone } from '../support/played-zone.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { patience, until, waitFor } from '../support/wait.ts';
import { ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';


let world: World;
let played: PlayedZone;
let admin: ApiClient;
let alice: Member;
let bob: Member;
let zone: any;
let network: any;
let host: any;
let pool: any;
let template: any;
let offering: any;
let custom: any;
let seeded: SeededAgent;
let antiGroup: any;
let fixed: any;
let customDisk: any;

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  const root = (await getDomain(world.rootDomainId))!;
  alice = await seedMember(world.runtime.apiUrl, unique('alice'), root, 'User');
  bob = await seedMember(world.runtime.apiUrl, unique('bob'), root, 'User');
  played = await seedPlayedZone(admin, 40);
  ({ zone, network, host, pool, template, seeded } = played);
  offering = ok(await admin.call('createServiceOffering', { name: unique('small'), displaytext: 'small', cpunumber: 1, cpuspeed: 500, memory: 512 }), 'createServiceOffering').serviceoffering;
  custom = ok(
    await admin.call('createServiceOffering', { name: unique('custom'), displaytext: 'custom', customized: true, cpuspeed: 500, mincpunumber: 1, maxcpunumber: 64, minmemory: 256, maxmemory: 65536 }),
    'createServiceOffering',
  ).serviceoffering;
  fixed = ok(await admin.call('createDiskOffering', { name: unique('d5'), displaytext: '5 GB', disksize: 5 }), 'createDiskOffering').diskoffering;
  customDisk = ok(await admin.call('createDiskOffering', { name: unique('dc'), displaytext: 'custom', customized: true }), 'createDiskOffering').diskoffering;
  ok(await alice.client.call('registerSSHKeyPair', { name: 'alice-key', publickey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBbqmcl6XJ2NwzEbvlS0ZLvp2sC7iObjXZz0p1o1oY2g alice' }), 'registerSSHKeyPair');
  const group = ok(await alice.client.call('createAffinityGroup', { name: 'spread', type: 'host anti-affinity' }), 'createAffinityGroup');
  antiGroup = (await alice.client.waitForJob(group.jobid)).jobresult.affinitygroup;
}, patience(120_000));

afterAll(async () => {
  await world?.runtime.stop();
});

const base = () => ({ zoneid: zone.id, serviceofferingid: offering.id, templateid: template.id });

const { vmCount, jobCount, addressCount, hostLoad, accountCounts, begin, agentAnswers } = playedVmChecks(() => admin, () => played);

const volumesOf = async (client: ApiClient, vmId: string) => ok(await client.call('listVolumes', { virtualmachineid: vmId, listall: true }), 'listVolumes').volume ?? [];
const allocated = async () => (await getStoragePool(pool.id))!.disksizeallocated ?? 0;

describe('deployVirtualMachine with a data disk', () => {
  it('refuses a bad diskofferingid or size with 431 naming the parameter, changing nothing', async () => {
    const [vms, jobs, addresses, load, bytes] = [await vmCount(), await jobCount(), await addressCount(), await hostLoad(), await allocated()];
    const counts = await accountCounts(alice);
    const volumes = ok(await admin.call('listVolumes', { listall: true, pagesize: -1 }), 'listVolumes').count ?? 0;
    const unknown = randomUUID();
    const call = (params: Record<string, string | number | boolean>) => alice.client.call('deployVirtualMachine', { ...base(), ...params });
    refused(await call({ diskofferingid: unknown }), 'deployVirtualMachine', 431, 'Please specify a valid disk offering. (diskofferingid)');
    refused(await call({ diskofferingid: 'nope' }), 'deployVirtualMachine', 431, /Invalid parameter diskofferingid value=nope/);
    refused(await call({ diskofferingid: fixed.id, size: 3 }), 'deployVirtualMachine', 431, 'This disk offering does not allow custom size (size)');
    refused(await call({ diskofferingid: customDisk.id }), 'deployVirtualMachine', 431, 'This disk offering requires a custom size specified (size)');
    refused(await call({ diskofferingid: customDisk.id, size: 0 }), 'deployVirtualMachine', 431, 'Disk size must be larger than 0 (size)');
    refused(await call({ diskofferingid: customDisk.id, size: 5000 }), 'deployVirtualMachine', 431, 'Volume size: 5000 GB is out of allowed range. Min: 1. Max: 1024 (size)');
    refused(await call({ diskofferingid: customDisk.id, size: 'x' }), 'deployVirtualMachine', 431, /Invalid parameter size value=x/);
    refused(await call({ size: 3 }), 'deployVirtualMachine', 431, /\(size\)$/);
    expect([await vmCount(), await jobCount(), await addressCount(), await hostLoad(), await allocated()]).toEqual([vms, jobs, addresses, load, bytes]);
    expect(await accountCounts(alice)).toEqual(counts);
    expect(ok(await admin.call('listVolumes', { listall: true, pagesize: -1 }), 'listVolumes').count ?? 0).toBe(volumes);
  });

  it('creates DATA-<number> at device 1 with the VM, counted with it; startVm makes it blank; expunge detaches and keeps it', async () => {
    const before = { counts: await accountCounts(alice), bytes: await allocated() };
    const deploy = await begin(alice.client, 'deployVirtualMachine', { ...base(), name: 'with-data', diskofferingid: customDisk.id, size: 3 });
    const vm = (await getVmConsistent(deploy.id))!;
    // Counted in the deploy's one reservation: two volumes, root and data bytes.
    expect(await accountCounts(alice)).toMatchObject({
      volume: (before.counts.volume ?? 0) + 2,
      primary_storage: (before.counts.primary_storage ?? 0) + 2 * GiB + 3 * GiB,
    });
    const startVm = await receiveCommand(seeded.agent.queueUrl);
    expect(startVm.type).toBe('startVm');
    const spec = (startVm.payload as any).vm;
    const listed = await volumesOf(alice.client, deploy.id);
    const data = listed.find((v: any) => v.type === 'DATADISK');
    expect(data).toMatchObject({ name: `DATA-${vm.number}`, deviceid: 1, size: 3 * GiB, diskofferingid: customDisk.id, virtualmachineid: deploy.id, state: 'Ready' });
    expect(spec.disks).toEqual([
      expect.objectContaining({ deviceId: 0, backingFile: `${POOL_PATH}/${template.id}.qcow2`, sizeBytes: 2 * GiB }),
      { path: `${POOL_PATH}/${data.id}.qcow2`, sizeBytes: 3 * GiB, deviceId: 1 },
    ]);
    expect(await allocated()).toBe(before.bytes + 5 * GiB);
    await answer(startVm, started(startVm));
    expect((await alice.client.waitForJob(deploy.jobid)).jobresult.virtualmachine.state).toBe('Running');

    // Destroyed: the root's counts go back; the data disk stays attached and counted (as upstream).
    const destroy = await begin(admin, 'destroyVirtualMachine', { id: deploy.id, expunge: true });
    await agentAnswers('stopVm', { result: { name: spec.name, state: 'Stopped', forced: false } });
    const expungeVm = await agentAnswers('expungeVm', { result: { removed: [] } });
    expect((expungeVm.payload as any).files).toEqual([spec.disks[0].path, `${POOL_PATH}/${deploy.id}-config.iso`]);
    expect((await admin.waitForJob(destroy.jobid)).jobstatus).toBe(1);
    expect(await getVmConsistent(deploy.id)).toBeUndefined();
    const kept = ok(await alice.client.call('listVolumes', { id: data.id }), 'listVolumes').volume[0];
    expect(kept).toMatchObject({ id: data.id, name: `DATA-${vm.number}`, state: 'Ready', size: 3 * GiB });
    expect(kept.virtualmachineid).toBeUndefined();
    expect(kept.deviceid).toBeUndefined();
    expect(await accountCounts(alice)).toMatchObject({ volume: (before.counts.volume ?? 0) + 1, primary_storage: (before.counts.primary_storage ?? 0) + 3 * GiB });
    expect(await allocated()).toBe(before.bytes + 3 * GiB);

    // The kept volume is an ordinary detached volume: deleting it gives everything back.
    ok(await alice.client.call('deleteVolume', { id: data.id }), 'deleteVolume');
    await agentAnswers('deleteDisk', { result: { path: `${POOL_PATH}/${data.id}.qcow2`, removed: true } });
    await waitFor('the data volume to be expunged', async () => (await getVolume(data.id)) === undefined);
    expect(await accountCounts(alice)).toEqual(before.counts);
  });

  it('a fixed offering on a stopped deploy: Allocated at device 1 until the first start places it', async () => {
    const before = { counts: await accountCounts(alice), bytes: await allocated() };
    const deploy = await begin(alice.client, 'deployVirtualMachine', { ...base(), startvm: false, diskofferingid: fixed.id });
    expect((await alice.client.waitForJob(deploy.jobid)).jobresult.virtualmachine.state).toBe('Stopped');
    const data = (await volumesOf(alice.client, deploy.id)).find((v: any) => v.type === 'DATADISK');
    expect(data).toMatchObject({ deviceid: 1, size: 5 * GiB, state: 'Allocated', diskofferingid: fixed.id, hypervisor: 'None' });
    expect(await accountCounts(alice)).toMatchObject({ volume: (before.counts.volume ?? 0) + 2, primary_storage: (before.counts.primary_storage ?? 0) + 7 * GiB });
    const start = await begin(alice.client, 'startVirtualMachine', { id: deploy.id });
    const startVm = await receiveCommand(seeded.agent.queueUrl);
    expect((startVm.payload as any).vm.disks[1]).toEqual({ path: `${POOL_PATH}/${data.id}.qcow2`, sizeBytes: 5 * GiB, deviceId: 1 });
    await answer(startVm, started(startVm));
    expect((await alice.client.waitForJob(start.jobid)).jobresult.virtualmachine.state).toBe('Running');
    expect(await allocated()).toBe(before.bytes + 7 * GiB);
    // Cleanup for the next test: destroy with expunge, then delete the kept data volume.
    const destroy = await begin(admin, 'destroyVirtualMachine', { id: deploy.id, expunge: true });
    await agentAnswers('stopVm', { result: { name: (startVm.payload as any).vm.name, state: 'Stopped', forced: false } });
    await agentAnswers('expungeVm', { result: { removed: [] } });
    expect((await admin.waitForJob(destroy.jobid)).jobstatus).toBe(1);
    ok(await alice.client.call('deleteVolume', { id: data.id }), 'deleteVolume');
    await agentAnswers('deleteDisk', { result: { path: `${POOL_PATH}/${data.id}.qcow2`, removed: true } });
    await waitFor('the data volume to be expunged', async () => (await getVolume(data.id)) === undefined);
    expect(await accountCounts(alice)).toEqual(before.counts);
    expect(await allocated()).toBe(before.bytes);
  });

  it('a failed deploy gives back the data disk with the VM; its file goes with the expunge', async () => {
    const before = { counts: await accountCounts(alice), bytes: await allocated(), load: await hostLoad() };
    const deploy = await begin(alice.client, 'deployVirtualMachine', { ...base(), diskofferingid: fixed.id });
    const startVm = await receiveCommand(seeded.agent.queueUrl);
    const dataPath = (startVm.payload as any).vm.disks[1].path;
    await answer(startVm, { error: 'LibvirtError', cause: 'virsh start failed' });
    expect((await alice.client.waitForJob(deploy.jobid)).jobstatus).toBe(2);
    expect((await getVmConsistent(deploy.id))!.state).toBe('Error');
    expect(await accountCounts(alice)).toEqual(before.counts);
    expect(await allocated()).toBe(before.bytes);
    expect(await hostLoad()).toEqual(before.load);
    const data = (await volumesOf(admin, deploy.id)).find((v: any) => v.type === 'DATADISK');
    expect(data).toMatchObject({ state: 'Destroy', destroyed: true });
    const expunge = await begin(admin, 'expungeVirtualMachine', { id: deploy.id });
    const expungeVm = await agentAnswers('expungeVm', { result: { removed: [] } });
    expect((expungeVm.payload as any).files).toContain(dataPath);
    expect((await admin.waitForJob(expunge.jobid)).jobstatus).toBe(1);
    expect(await getVolume(data.id)).toBeUndefined();
    expect(await accountCounts(alice)).toEqual(before.counts);
  });
});

describe('deployVirtualMachine from an ISO', () => {
  let iso: any;

  it('registerIso downloads the ISO into the zone\'s primary storage as <pool>/<iso id>.iso, as registerTemplate does', async () => {
    const osType = ok(await admin.call('listOsTypes', { pagesize: 1 }), 'listOsTypes').ostype[0].id;
    iso = ok(await admin.call('registerIso', { name: unique('viso'), url: 'http://127.0.0.1:9/installer.iso', zoneid: zone.id, ostypeid: osType, ispublic: true }), 'registerIso').iso[0];
    const download = await receiveCommand(seeded.agent.queueUrl);
    expect(download).toMatchObject({ type: 'downloadTemplate', payload: { templateId: iso.id, url: 'http://127.0.0.1:9/installer.iso', destination: `${POOL_PATH}/${iso.id}.iso` } });
    await answer(download, { result: { path: `${POOL_PATH}/${iso.id}.iso`, size: 300 * 1024 * 1024, checksum: '{SHA-256}00' } });
    await until('the ISO to be ready', async () => ok(await admin.call('listIsos', { isofilter: 'all', id: iso.id, zoneid: zone.id }), 'listIsos').iso?.[0], (listed) => listed?.isready === true);
    // The copy is ready at the job's Finish step; the job itself ends a step later.
    const downloadJob = async () => (ok(await admin.call('listAsyncJobs', { listall: true, pagesize: -1 }), 'listAsyncJobs').asyncjobs ?? []).find((j: any) => j.jobinstanceid === iso.id);
    await until('the download job to succeed', downloadJob, (job) => job?.jobstatus === 1);
    expect(await downloadJob()).toMatchObject({ cmd: 'registerIso', jobinstancetype: 'Iso', jobstatus: 1 });
  });

  it('refuses what an ISO deploy cannot take with 431 naming the parameter, changing nothing', async () => {
    const [vms, jobs, addresses, load, bytes] = [await vmCount(), await jobCount(), await addressCount(), await hostLoad(), await allocated()];
    const counts = await accountCounts(alice);
    const unknown = randomUUID();
    const isoBase = { zoneid: zone.id, serviceofferingid: offering.id };
    const call = (params: Record<string, string | number | boolean>) => alice.client.call('deployVirtualMachine', { ...isoBase, ...params });
    refused(await call({ diskofferingid: fixed.id }), 'deployVirtualMachine', 431, 'Unable to execute API command deployvirtualmachine due to missing parameter templateid');
    refused(await call({ isoid: iso.id }), 'deployVirtualMachine', 431, 'Installing from ISO requires a disk offering to be specified for the root disk. (diskofferingid)');
    // upstream's way: the ISO's id as templateid.
    refused(await call({ templateid: iso.id }), 'deployVirtualMachine', 431, 'Installing from ISO requires a disk offering to be specified for the root disk. (diskofferingid)');
    refused(await call({ isoid: iso.id, templateid: template.id, diskofferingid: fixed.id }), 'deployVirtualMachine', 431, 'Specify either templateid or isoid, not both (isoid)');
    refused(await call({ isoid: unknown, diskofferingid: fixed.id }), 'deployVirtualMachine', 431, /Invalid parameter isoid value=/);
    refused(await call({ isoid: template.id, diskofferingid: fixed.id }), 'deployVirtualMachine', 431, /Invalid parameter isoid value=/);
    refused(await call({ isoid: iso.id, diskofferingid: customDisk.id }), 'deployVirtualMachine', 431, 'This disk offering requires a custom size specified (size)');
    refused(await call({ isoid: iso.id, diskofferingid: fixed.id, rootdisksize: 10 }), 'deployVirtualMachine', 431, /\(rootdisksize\)$/);
    expect([await vmCount(), await jobCount(), await addressCount(), await hostLoad(), await allocated()]).toEqual([vms, jobs, addresses, load, bytes]);
    expect(await accountCounts(alice)).toEqual(counts);
  });

  it('deploys with a blank root disk of the disk offering\'s size and the ISO attached, booted first; expunge removes the root disk only', async () => {
    const before = { counts: await accountCounts(alice), bytes: await allocated() };
    const deploy = await begin(alice.client, 'deployVirtualMachine', { zoneid: zone.id, serviceofferingid: offering.id, isoid: iso.id, diskofferingid: customDisk.id, size: 8, name: 'from-iso' });
    const startVm = await receiveCommand(seeded.agent.queueUrl);
    expect(startVm.type).toBe('startVm');
    const spec = (startVm.payload as any).vm;
    const root = (await getVmConsistent(deploy.id))!.rootVolumeId as string;
    expect(spec.disks).toEqual([{ path: `${POOL_PATH}/${root}.qcow2`, sizeBytes: 8 * GiB, deviceId: 0 }]);
    expect(spec.iso).toBe(`${POOL_PATH}/${iso.id}.iso`);
    expect(await accountCounts(alice)).toMatchObject({ volume: (before.counts.volume ?? 0) + 1, primary_storage: (before.counts.primary_storage ?? 0) + 8 * GiB });
    expect(await allocated()).toBe(before.bytes + 8 * GiB);
    await answer(startVm, started(startVm));
    const vm = (await alice.client.waitForJob(deploy.jobid)).jobresult.virtualmachine;
    expect(vm).toMatchObject({ state: 'Running', templateid: iso.id, isoid: iso.id, isoname: iso.name });
    const volumes = await volumesOf(alice.client, deploy.id);
    expect(volumes).toHaveLength(1);
    expect(volumes[0]).toMatchObject({ type: 'ROOT', deviceid: 0, size: 8 * GiB, diskofferingid: customDisk.id });
    expect(volumes[0].templateid).toBeUndefined();

    const destroy = await begin(admin, 'destroyVirtualMachine', { id: deploy.id, expunge: true });
    await agentAnswers('stopVm', { result: { name: spec.name, state: 'Stopped', forced: false } });
    const expungeVm = await agentAnswers('expungeVm', { result: { removed: [] } });
    expect((expungeVm.payload as any).files).toEqual([`${POOL_PATH}/${root}.qcow2`, `${POOL_PATH}/${deploy.id}-config.iso`]);
    expect((await admin.waitForJob(destroy.jobid)).jobstatus).toBe(1);
    expect(await accountCounts(alice)).toEqual(before.counts);
    expect(await allocated()).toBe(before.bytes);
  });
});
