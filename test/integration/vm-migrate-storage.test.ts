// migrateVirtualMachineWithVolume through /client/api and the real vm-migrate state machine, with the
// test playing the zone's agent. Hosts A and B of one cluster reach its pools 1 and 2; host C, in
// another cluster, reaches only its pool 3. The VM has a root disk and a data disk. Bad input is refused
// at once with upstream's code and text and changes nothing; a move reserves the target host and pools
// first (the VM Migrating), then points the volumes at their new pools, gives the source's host capacity
// and pool bytes back and has the source host remove the old files; a volume left out stays on its pool
// when the destination reaches it, else goes to one it reaches (as upstream maps it), and
// findHostsForMigration offers such a host with requiresStorageMotion; a move the agent fails leaves
// everything where it was.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHost, updateHostRecord } from '../../shared/db/hosts.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../../shared/aws.ts';
import { tableName } from '../../shared/db/items.ts';
import { getStoragePool, storagePoolKey } from '../../shared/db/storage.ts';
import { getVmConsistent, getVolumeConsistent } from '../../shared/db/vms.ts';
import { answer, receiveCommand } from '../support/agent-seed.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { addPlayedHost, GiB, playedVmChecks, POOL_PATH, seedPlayedZone, type PlayedZone } from '../support/played-zone.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { patience } from '../support/wait.ts';
import { noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';

let world: World;
let played: PlayedZone;
let admin: ApiClient;
let alice: Member;
let hostA: any;
let hostB: any;
let hostC: any;
let pool1: any;
let pool2: any;
let pool3: any;
let vm: any;
let root: any;
let data: any;

const API = 'migrateVirtualMachineWithVolume';
const { jobCount, begin, deployed } = playedVmChecks(() => admin, () => played);

const books = async () => {
  const hosts: Record<string, number> = {};
  for (const h of [hostA, hostB, hostC]) hosts[h.id] = (await getHost(h.id))!.memoryallocated ?? 0;
  const pools: Record<string, number> = {};
  for (const p of [pool1, pool2, pool3]) pools[p.id] = (await getStoragePool(p.id))!.disksizeallocated;
  return { hosts, pools };
};
const VM_MEMORY = 512 * 1024 * 1024;
/** Sets a pool's books behind Mold's back (a full pool, or books that were off). */
const setPoolAllocated = (poolId: string, bytes: number) =>
  dynamo().send(new UpdateCommand({ TableName: tableName(), Key: storagePoolKey(poolId), UpdateExpression: 'SET disksizeallocated = :b', ExpressionAttributeValues: { ':b': bytes } }));
const moveTo = (pool: any, extra: Record<string, string | boolean> = {}) => ({ virtualmachineid: vm.id, 'migrateto[0].volume': root.id, 'migrateto[0].pool': pool.id, ...extra });

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  alice = await seedMember(world.runtime.apiUrl, unique('alice'), (await getDomain(world.rootDomainId))!, 'User');
  played = await seedPlayedZone(admin, 120);
  hostA = played.host;
  pool1 = played.pool;
  hostB = await addPlayedHost(played.cluster.id, played.seeded, { name: unique('kvm-b'), ipaddress: '10.120.0.12' });
  const other = ok(
    await admin.call('addCluster', { zoneid: played.zone.id, podid: played.pod.id, clustername: unique('vc2'), hypervisor: 'KVM', clustertype: 'CloudManaged', allocationstate: 'Enabled' }),
    'addCluster',
  ).cluster[0];
  hostC = await addPlayedHost(other.id, played.seeded, { name: unique('kvm-c'), ipaddress: '10.120.0.13' });
  const offering = ok(await admin.call('createServiceOffering', { name: unique('small'), displaytext: 'small', cpunumber: 1, cpuspeed: 500, memory: 512 }), 'createServiceOffering').serviceoffering;
  const disk = ok(await admin.call('createDiskOffering', { name: unique('d5'), displaytext: '5 GB', disksize: 5 }), 'createDiskOffering').diskoffering;
  vm = await deployed({
    zoneid: played.zone.id,
    serviceofferingid: offering.id,
    templateid: played.template.id,
    diskofferingid: disk.id,
    hostid: hostA.id,
    account: alice.account.name,
    domainid: world.rootDomainId,
  });
  root = ok(await admin.call('listVolumes', { virtualmachineid: vm.id, type: 'ROOT', listall: true }), 'listVolumes').volume[0];
  data = ok(await admin.call('listVolumes', { virtualmachineid: vm.id, type: 'DATADISK', listall: true }), 'listVolumes').volume[0];
  expect([root.storageid, data.storageid]).toEqual([pool1.id, pool1.id]);
  // Made after the deploy, so the root disk is on pool 1.
  const pool = (name: string, clusterId: string, path: string) =>
    admin.call('createStoragePool', { zoneid: played.zone.id, podid: played.pod.id, clusterid: clusterId, name: unique(name), url: `SharedMountPoint://localhost${path}`, capacitybytes: 500 * GiB });
  pool2 = ok(await pool('vsmp2', played.cluster.id, '/var/lib/mold/primary2'), 'createStoragePool').storagepool;
  pool3 = ok(await pool('vsmp3', other.id, '/var/lib/mold/primary3'), 'createStoragePool').storagepool;
}, patience(120_000));

afterAll(async () => {
  await world?.runtime.stop();
});

describe('migrateVirtualMachineWithVolume', () => {
  it('refuses bad input at once with upstream\'s code and text, in upstream\'s order, changing nothing', async () => {
    const [jobs, before] = [await jobCount(), await books()];
    const call = (client: ApiClient, params: Record<string, string | boolean>) => client.call(API, params);
    refused(await call(alice.client, moveTo(pool2, { hostid: hostB.id })), API, 432, 'The given command does not exist or it is not available for user');
    const unknown = randomUUID();
    refused(await call(admin, { virtualmachineid: unknown, hostid: hostB.id }), API, 431, noEntity(API.toLowerCase(), 'virtualmachineid', unknown));
    refused(await call(admin, { virtualmachineid: vm.id, hostid: unknown }), API, 431, noEntity(API.toLowerCase(), 'hostid', unknown));
    refused(await call(admin, { virtualmachineid: vm.id, 'migrateto[0].volume': root.id }), API, 431, /^migrateto\[0\] needs both a volume and a pool/);
    refused(await call(admin, { virtualmachineid: vm.id }), API, 431, 'Either hostid or migrateto must be passed or autoselect must be true for migrating the VM.');
    const text = `VM instance {"id": "${(await getVmConsistent(vm.id))!.number}", "name": "${vm.instancename}", "uuid": "${vm.id}", "type"="User"}`;
    refused(await call(admin, moveTo(pool2)), API, 431, `${text} is not in the Stopped state to migrate, use the hostid or autoselect parameter to migrate it to a new host.`);
    refused(await call(admin, moveTo(pool2, { hostid: hostA.id })), API, 431, `Cannot migrate VM as it is already present on host ${hostA.name} (ID: ${hostA.id}), please specify valid destination host to migrate the VM`);
    await updateHostRecord(hostB.id, { resourcestate: 'Disabled' });
    try {
      refused(await call(admin, moveTo(pool2, { hostid: hostB.id })), API, 530, `Cannot migrate VM, destination host ${hostB.name} (ID: ${hostB.id}) is not in correct state, has status: Up, state: Disabled`);
    } finally {
      await updateHostRecord(hostB.id, { resourcestate: 'Enabled' });
    }
    const none = `Migration of the VM: ${vm.instancename} (ID: ${vm.id}) from host ${hostA.name} (ID: ${hostA.id}) to destination host  ${hostB.name} (ID: ${hostB.id}) doesn't involve migrating the volumes`;
    refused(await call(admin, { virtualmachineid: vm.id, hostid: hostB.id }), API, 431, none);
    refused(await call(admin, moveTo(pool1, { hostid: hostB.id })), API, 431, none);
    refused(await call(admin, { ...moveTo(pool2, { hostid: hostB.id }), 'migrateto[0].volume': unknown }), API, 431, `There is no volume present with the given id ${unknown}`);
    refused(await call(admin, { ...moveTo(pool2, { hostid: hostB.id }), 'migrateto[0].pool': unknown }), API, 431, `There is no storage pool present with the given id ${unknown}`);
    refused(
      await call(admin, moveTo(pool2, { hostid: hostC.id })),
      API,
      530,
      `Cannot migrate the volume [${root.id}] to the storage pool [${pool2.id}] while migrating VM [${vm.id}] to target host [${hostC.id}]. The host does not have access to the storage pool entered.`,
    );
    refused(await call(admin, { virtualmachineid: vm.id, autoselect: true }), API, 431, /^Mold's planner picks a host for the pools migrateto names/);
    expect(await jobCount()).toBe(jobs);
    expect(await books()).toEqual(before);
    expect((await getVmConsistent(vm.id))!).toMatchObject({ state: 'Running', hostId: hostA.id });
    expect((await getVolumeConsistent(root.id))!.poolId).toBe(pool1.id);
  });

  it('findHostsForMigration offers host C with requiresStorageMotion while a pool it reaches has room for the volumes, and says why not otherwise', async () => {
    const find = async () => ok(await admin.call('findHostsForMigration', { id: vm.id }), 'findHostsForMigration').host as any[];
    const [b, c] = await find();
    expect(b).toMatchObject({ id: hostB.id, suitableformigration: true, requiresStorageMotion: false });
    expect(c).toMatchObject({ id: hostC.id, suitableformigration: true, requiresStorageMotion: true });
    expect(c.notsuitablereason).toBeUndefined();
    const allocated = (await getStoragePool(pool3.id))!.disksizeallocated;
    await setPoolAllocated(pool3.id, 500 * GiB * 10);
    try {
      const [, full] = await find();
      expect(full).toMatchObject({ id: hostC.id, suitableformigration: false, requiresStorageMotion: true });
      expect(full.notsuitablereason).toMatch(/no file-based storage pool it reaches has room/);
    } finally {
      await setPoolAllocated(pool3.id, allocated);
    }
  });

  it('moves the running VM to host B and its root disk to pool 2 (the data disk stays on pool 1, which B reaches): reserved first, recorded after, the old files removed by host A', async () => {
    const before = await books();
    const started = await begin(admin, API, moveTo(pool2, { hostid: hostB.id }));
    const message = await receiveCommand(played.seeded.agent.queueUrl);
    expect(message.type).toBe('migrateVm');
    const [oldPath, newPath] = [`${POOL_PATH}/${root.id}.qcow2`, `/var/lib/mold/primary2/${root.id}.qcow2`];
    expect(message.payload).toMatchObject({
      host: { hostId: hostA.id },
      target: { hostId: hostB.id },
      storage: [
        { from: oldPath, to: newPath, copy: 'mirror' },
        { from: `${POOL_PATH}/${vm.id}-config.iso`, to: `/var/lib/mold/primary2/${vm.id}-config.iso`, copy: 'file' },
      ],
    });
    // While it runs: Migrating; host B and pool 2 hold it, host A and pool 1 still do.
    expect((await getVmConsistent(vm.id))!).toMatchObject({ state: 'Migrating', hostId: hostA.id, migrateToHostId: hostB.id });
    expect(await books()).toEqual({
      hosts: { ...before.hosts, [hostB.id]: before.hosts[hostB.id]! + VM_MEMORY },
      pools: { ...before.pools, [pool2.id]: before.pools[pool2.id]! + root.size },
    });
    await answer(message, { result: { name: vm.instancename, state: 'Running', vncPort: 5908 } });
    const cleanup = await receiveCommand(played.seeded.agent.queueUrl);
    expect(cleanup).toMatchObject({ type: 'removeFiles', payload: { host: { hostId: hostA.id }, paths: [oldPath, `${POOL_PATH}/${vm.id}-config.iso`] } });
    // The records moved before the old files are removed.
    expect((await getVolumeConsistent(root.id))!).toMatchObject({ poolId: pool2.id, path: newPath });
    await answer(cleanup, { result: { removed: (cleanup.payload as any).paths } });
    const job = await admin.waitForJob(started.jobid);
    expect(job.jobstatus, JSON.stringify(job.jobresult)).toBe(1);
    expect(job.jobresult.virtualmachine).toMatchObject({ id: vm.id, state: 'Running', hostid: hostB.id });
    expect((await getVmConsistent(vm.id))!.migrateStorage).toBeUndefined();
    expect(ok(await admin.call('listVolumes', { id: root.id, listall: true }), 'listVolumes').volume[0]).toMatchObject({ storageid: pool2.id, storage: pool2.name });
    expect((await getVolumeConsistent(data.id))!.poolId).toBe(pool1.id);
    expect(await books()).toEqual({
      hosts: { ...before.hosts, [hostA.id]: before.hosts[hostA.id]! - VM_MEMORY, [hostB.id]: before.hosts[hostB.id]! + VM_MEMORY },
      pools: { ...before.pools, [pool1.id]: before.pools[pool1.id]! - root.size, [pool2.id]: before.pools[pool2.id]! + root.size },
    });
  });

  it('a move the agent fails leaves the VM Running on its source, its volume where it was, nothing reserved, and the job says why', async () => {
    const before = await books();
    // autoselect: the planner picks host A, the other host that reaches pool 1 (for both disks).
    const started = await begin(admin, API, moveTo(pool1, { autoselect: true }));
    const message = await receiveCommand(played.seeded.agent.queueUrl);
    expect(message).toMatchObject({ type: 'migrateVm', payload: { host: { hostId: hostB.id }, target: { hostId: hostA.id } } });
    await answer(message, { error: 'MigrationFailed', cause: 'Migrating i-x from root@b to root@a failed (error: internal error: unable to execute QEMU command \'drive-mirror\'); on the source it is running' });
    const job = await admin.waitForJob(started.jobid);
    expect(job.jobstatus).toBe(2);
    expect(job.jobresult.errortext).toMatch(/drive-mirror/);
    expect((await getVmConsistent(vm.id))!).toMatchObject({ state: 'Running', hostId: hostB.id });
    expect((await getVmConsistent(vm.id))!.migrateStorage).toBeUndefined();
    expect((await getVolumeConsistent(root.id))!.poolId).toBe(pool2.id);
    expect(await books()).toEqual(before);
  });

  it('to host C with hostid alone (as the UI asks for a host with requiresStorageMotion): both disks, on pools C does not reach, go to pool 3, the one it reaches; old files that cannot be removed are a WARN event, not a failure; books that were off do not undo a move that happened', async () => {
    // Pool 1's books hold less than the data disk (off before the move): its record moves all the same.
    await setPoolAllocated(pool1.id, data.size - 1);
    const before = await books();
    const started = await begin(admin, API, { virtualmachineid: vm.id, hostid: hostC.id });
    const message = await receiveCommand(played.seeded.agent.queueUrl);
    expect(message).toMatchObject({ type: 'migrateVm', payload: { host: { hostId: hostB.id }, target: { hostId: hostC.id } } });
    expect((message.payload as any).storage.map((m: any) => m.to)).toEqual([
      `/var/lib/mold/primary3/${root.id}.qcow2`,
      `/var/lib/mold/primary3/${data.id}.qcow2`,
      `/var/lib/mold/primary3/${vm.id}-config.iso`,
    ]);
    await answer(message, { result: { name: vm.instancename, state: 'Running', vncPort: 5909 } });
    const cleanup = await receiveCommand(played.seeded.agent.queueUrl);
    expect(cleanup).toMatchObject({ type: 'removeFiles', payload: { host: { hostId: hostB.id } } });
    await answer(cleanup, { error: 'HostCommandFailed', cause: 'root@10.120.0.12 did not answer' });
    const job = await admin.waitForJob(started.jobid);
    expect(job.jobstatus, JSON.stringify(job.jobresult)).toBe(1);
    expect(job.jobresult.virtualmachine).toMatchObject({ hostid: hostC.id });
    expect((await getVolumeConsistent(root.id))!.poolId).toBe(pool3.id);
    expect((await getVolumeConsistent(data.id))!).toMatchObject({ poolId: pool3.id, path: `/var/lib/mold/primary3/${data.id}.qcow2` });
    expect(await books()).toEqual({
      hosts: { ...before.hosts, [hostB.id]: before.hosts[hostB.id]! - VM_MEMORY, [hostC.id]: before.hosts[hostC.id]! + VM_MEMORY },
      pools: { [pool1.id]: 0, [pool2.id]: before.pools[pool2.id]! - root.size, [pool3.id]: before.pools[pool3.id]! + root.size + data.size },
    });
    const events = ok(await admin.call('listEvents', { type: 'VM.MIGRATE', level: 'WARN', listall: true }), 'listEvents').event ?? [];
    expect(events.some((e: any) => e.resourceid === vm.id && /could not be removed: root@10\.120\.0\.12 did not answer/.test(e.description))).toBe(true);
  });

  it('a full target pool fails the job with 533 and changes nothing; a stopped VM is refused as upstream refuses it', async () => {
    const before = await books();
    const pool = (await getStoragePool(pool1.id))!;
    // Pool 1 looks full (its allocation raised past what it may hold).
    const setAllocated = (bytes: number) => setPoolAllocated(pool1.id, bytes);
    await setAllocated(pool.capacitybytes * 2);
    try {
      const full = await admin.waitForJob((await begin(admin, API, moveTo(pool1, { hostid: hostA.id }))).jobid);
      expect(full.jobstatus).toBe(2);
      expect(full.jobresult).toMatchObject({ errorcode: 533, errortext: `Storage pool ${pool1.name} does not have enough space to migrate the volumes of VM ${vm.instancename}` });
      expect((await getVmConsistent(vm.id))!).toMatchObject({ state: 'Running', hostId: hostC.id });
      expect(await books()).toEqual({ ...before, pools: { ...before.pools, [pool1.id]: pool.capacitybytes * 2 } });
    } finally {
      await setAllocated(before.pools[pool1.id]!);
    }
    const stop = await begin(admin, 'stopVirtualMachine', { id: vm.id, forced: true });
    const stopVm = await receiveCommand(played.seeded.agent.queueUrl);
    await answer(stopVm, { result: { name: vm.instancename, state: 'Stopped', forced: true } });
    expect((await admin.waitForJob(stop.jobid)).jobstatus).toBe(1);
    const jobs = await jobCount();
    const text = `VM instance {"id": "${(await getVmConsistent(vm.id))!.number}", "name": "${vm.instancename}", "uuid": "${vm.id}", "type"="User"}`;
    refused(await admin.call(API, moveTo(pool1, { hostid: hostA.id })), API, 431, `${text} is not in the Running state to migrate it to the new host.`);
    refused(await admin.call(API, moveTo(pool1, { autoselect: true })), API, 530, `Unable to migrate the VM ${vm.instancename} (ID: ${vm.id}) as it is not in Running state`);
    refused(await admin.call(API, moveTo(pool1)), API, 431, /^Mold moves a stopped VM's volumes one at a time with migrateVolume/);
    expect(await jobCount()).toBe(jobs);
  });
});
