// deployVirtualMachine, startVirtualMachine, stopVirtualMachine, rebootVirtualMachine,
// destroyVirtualMachine, recoverVirtualMachine, expungeVirtualMachine and the sweeper's expunge,
// through /client/api and the real vm-* state machines, with the test playing the zone's agent (it
// reads each command from the agent's queue and answers through Step Functions as the gateway
// would). Every bad input is refused synchronously and changes nothing; every failure gives back
// what the VM held and ends the job with the reason.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../shared/bootstrap.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { getStoragePool } from '../../shared/db/storage.ts';
import { getVmConsistent, getVolume } from '../../shared/db/vms.ts';
import { expungeDestroyedVms } from '../../functions/sweeper/vms.ts';
import { answer, receiveCommand, type SeededAgent } from '../support/agent-seed.ts';
import { GiB, playedVmChecks, POOL_PATH, seedPlayedZone, started, type PlayedZone } from '../support/played-zone.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { patience, until, waitFor } from '../support/wait.ts';
import { missing, noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';


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
  ok(await alice.client.call('registerSSHKeyPair', { name: 'alice-key', publickey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBbqmcl6XJ2NwzEbvlS0ZLvp2sC7iObjXZz0p1o1oY2g alice' }), 'registerSSHKeyPair');
  const group = ok(await alice.client.call('createAffinityGroup', { name: 'spread', type: 'host anti-affinity' }), 'createAffinityGroup');
  antiGroup = (await alice.client.waitForJob(group.jobid)).jobresult.affinitygroup;
}, patience(120_000));

afterAll(async () => {
  await world?.runtime.stop();
});

const base = () => ({ zoneid: zone.id, serviceofferingid: offering.id, templateid: template.id });

const { vmCount, jobCount, addressCount, hostLoad, accountCounts, begin, agentAnswers } = playedVmChecks(() => admin, () => played);

describe('refusals, each changing nothing', () => {
  it('refuses every bad deployVirtualMachine input with the code, the cserrorcode and a text naming the parameter', async () => {
    const [vms, jobs, addresses, load] = [await vmCount(), await jobCount(), await addressCount(), await hostLoad()];
    const counts = await accountCounts(alice);
    const unknown = randomUUID();
    const call = (params: Record<string, string | number | boolean>) => alice.client.call('deployVirtualMachine', { ...base(), ...params });
    for (const name of ['zoneid', 'serviceofferingid', 'templateid']) {
      const params: Record<string, string> = base();
      delete params[name];
      refused(await alice.client.call('deployVirtualMachine', params), 'deployVirtualMachine', 431, missing('deployvirtualmachine', name), 4350);
    }
    refused(await call({ zoneid: unknown }), 'deployVirtualMachine', 431, noEntity('deployvirtualmachine', 'zoneid', unknown));
    refused(await call({ serviceofferingid: unknown }), 'deployVirtualMachine', 431, noEntity('deployvirtualmachine', 'serviceofferingid', unknown));
    refused(await call({ templateid: unknown }), 'deployVirtualMachine', 431, noEntity('deployvirtualmachine', 'templateid', unknown));
    refused(await call({ templateid: 'nope' }), 'deployVirtualMachine', 431, /Invalid parameter templateid value=nope/);
    for (const name of ['1abc', '-abc', 'abc-', 'a_b', 'a'.repeat(64), 'has space']) {
      refused(await call({ name }), 'deployVirtualMachine', 431, /^(Invalid name\. Vm name can contain ASCII letters.*\(name\)|Unable to execute API command deployvirtualmachine due to invalid value\. Invalid parameter name)/, 4350);
    }
    refused(await call({ userdata: 'not base64!' }), 'deployVirtualMachine', 431, 'User data is not base64 encoded (userdata)');
    refused(await call({ userdata: Buffer.alloc(2000, 1).toString('base64') }), 'deployVirtualMachine', 431, /^User data is too long for an http GET request \(userdata/);
    refused(await alice.client.call('deployVirtualMachine', { ...base(), userdata: Buffer.alloc(30000, 1).toString('base64') }, { method: 'POST' }), 'deployVirtualMachine', 431, /^User data is too long for an http POST request \(userdata/);
    refused(await call({ keypair: 'nobody-key' }), 'deployVirtualMachine', 431, /^Not all specified keyparis exist: .* nobody-key \(keypair\)$/);
    refused(await bob.client.call('deployVirtualMachine', { ...base(), keypair: 'alice-key' }), 'deployVirtualMachine', 431, /keyparis exist.*alice-key/);
    refused(await call({ affinitygroupids: unknown }), 'deployVirtualMachine', 431, noEntity('deployvirtualmachine', 'affinitygroupids', unknown));
    refused(await call({ affinitygroupnames: 'nothing' }), 'deployVirtualMachine', 431, 'Unable to find affinity group by name nothing (affinitygroupnames)');
    refused(await call({ affinitygroupids: antiGroup.id, affinitygroupnames: 'spread' }), 'deployVirtualMachine', 431, 'affinitygroupids parameter is mutually exclusive with affinitygroupnames parameter');
    refused(await bob.client.call('deployVirtualMachine', { ...base(), affinitygroupids: antiGroup.id }), 'deployVirtualMachine', 531, /does not have permission/);
    refused(await call({ hostid: host.id }), 'deployVirtualMachine', 531, 'Parameter hostid can only be specified by a Root Admin, permission denied', 4365);
    refused(await admin.call('deployVirtualMachine', { ...base(), hostid: unknown }), 'deployVirtualMachine', 431, noEntity('deployvirtualmachine', 'hostid', unknown));
    refused(await call({ networkids: unknown }), 'deployVirtualMachine', 431, noEntity('deployvirtualmachine', 'networkids', unknown));
    refused(await call({ ipaddress: '10.41.0.5' }), 'deployVirtualMachine', 431, /10\.41\.0\.5 is not in the IP ranges/);
    refused(await call({ ipaddress: '10.41.0' }), 'deployVirtualMachine', 431, 'Invalid format for the ipaddress parameter: 10.41.0');
    // What the UI's wizard always sends takes; what Mold's guests cannot do is refused, naming it.
    refused(await call({ boottype: 'UEFI' }), 'deployVirtualMachine', 431, "Boot type UEFI is not supported: Mold's guests boot BIOS (boottype)");
    refused(await call({ bootmode: 'SECURE' }), 'deployVirtualMachine', 431, "Boot mode SECURE is not supported: Mold's guests boot BIOS in legacy mode (bootmode)");
    refused(await call({ iothreadsenabled: true }), 'deployVirtualMachine', 431, 'IO threads are not supported by Mold (iothreadsenabled)');
    // iptonetworklist (the UI's Add Instance wizard): not with networkids or ipaddress, no IPv6 or MAC.
    const mapped = { 'iptonetworklist[0].networkid': network.id };
    refused(await call({ ...mapped, networkids: network.id }), 'deployVirtualMachine', 431, "ipToNetworkMap can't be specified along with networkIds or ipAddress");
    refused(await call({ ...mapped, ipaddress: '10.41.0.44' }), 'deployVirtualMachine', 431, "ipToNetworkMap can't be specified along with networkIds or ipAddress");
    refused(await call({ ...mapped, 'iptonetworklist[0].mac': '02:00:00:00:00:01' }), 'deployVirtualMachine', 431, /^iptonetworklist mac is not supported/);
    refused(await call({ ...mapped, 'iptonetworklist[0].ip': '10.41.0' }), 'deployVirtualMachine', 431, 'Invalid format for the ip parameter: 10.41.0 (iptonetworklist)');
    refused(await call({ 'iptonetworklist[0].networkid': unknown }), 'deployVirtualMachine', 431, noEntity('deployvirtualmachine', 'networkids', unknown));
    refused(await call({ ...mapped, 'iptonetworklist[0].ip': '10.41.0.5' }), 'deployVirtualMachine', 431, /10\.41\.0\.5 is not in the IP ranges/);
    refused(await call({ rootdisksize: 1 }), 'deployVirtualMachine', 431, /^Unsupported: rootdisksize override \(1 GB\) is smaller than template size/);
    refused(await call({ rootdisksize: 0 }), 'deployVirtualMachine', 431, /Root disk size should be a positive number\. \(rootdisksize\)/);
    refused(await call({ serviceofferingid: custom.id }), 'deployVirtualMachine', 431, 'Invalid cpu cores value, specify a value between 1 and 64');
    refused(await call({ serviceofferingid: custom.id, 'details[0].cpuNumber': 2, 'details[0].memory': 100 }), 'deployVirtualMachine', 431, 'Invalid memory value, specify a value between 256 and 65536');
    refused(await call({ 'details[0].cpuNumber': 2 }), 'deployVirtualMachine', 431, `The cpu cores of this offering id:${offering.id} is not customizable. This is predefined in the template.`);
    refused(await call({ startvm: 'maybe' }), 'deployVirtualMachine', 431, /Invalid parameter startvm value=maybe/);
    expect([await vmCount(), await jobCount(), await addressCount(), await hostLoad()]).toEqual([vms, jobs, addresses, load]);
    expect(await accountCounts(alice)).toEqual(counts);
  });

  it('refuses lifecycle calls on VMs that cannot take them, and other accounts\' VMs', async () => {
    const { id } = await begin(alice.client, 'deployVirtualMachine', { ...base(), startvm: false, name: 'idle' });
    await until('the VM to be Stopped', async () => (await getVmConsistent(id))?.state, (state) => state === 'Stopped');
    const jobs = await jobCount();
    const unknown = randomUUID();
    for (const command of ['startVirtualMachine', 'stopVirtualMachine', 'rebootVirtualMachine', 'destroyVirtualMachine', 'expungeVirtualMachine', 'recoverVirtualMachine']) {
      refused(await admin.call(command, { id: unknown }), command, 431, noEntity(command.toLowerCase(), 'id', unknown));
      refused(await admin.call(command, {}), command, 431, missing(command.toLowerCase(), 'id'));
    }
    refused(await bob.client.call('stopVirtualMachine', { id }), 'stopVirtualMachine', 531, /does not have permission/);
    refused(await alice.client.call('rebootVirtualMachine', { id }), 'rebootVirtualMachine', 431, /is not running, unable to reboot it$/);
    // A forced reboot (stop, then start) is not Mold's; the UI's Reboot dialog sends forced=false.
    refused(await alice.client.call('rebootVirtualMachine', { id, forced: true }), 'rebootVirtualMachine', 431, /^forced=true is not supported/);
    refused(await alice.client.call('rebootVirtualMachine', { id, forced: false }), 'rebootVirtualMachine', 431, /is not running, unable to reboot it$/);
    refused(await alice.client.call('startVirtualMachine', { id, hostid: host.id }), 'startVirtualMachine', 531, 'Parameter hostid can only be specified by a Root Admin, permission denied');
    refused(await alice.client.call('recoverVirtualMachine', { id }), 'recoverVirtualMachine', 531, /Recovering a vm can only be done by an Admin/);
    refused(await admin.call('recoverVirtualMachine', { id }), 'recoverVirtualMachine', 431, `vm is not in the right state: ${id}`);
    refused(await alice.client.call('expungeVirtualMachine', { id }), 'expungeVirtualMachine', 531, /Expunging a vm can only be done by an Admin/);
    refused(await admin.call('expungeVirtualMachine', { id }), 'expungeVirtualMachine', 431, `Please destroy vm with id ${id} first`);
    refused(await alice.client.call('destroyVirtualMachine', { id, expunge: true }), 'destroyVirtualMachine', 531, 'Parameter expunge can be passed by Admin only. Or when the allow.user.expunge.recover.vm key is set.');
    expect(await jobCount()).toBe(jobs);
    expect((await getVmConsistent(id))?.state).toBe('Stopped');
  });
});

describe('the life of a VM through the agent', () => {
  it('deploys, stops, starts on its last host, reboots, destroys (hidden from its user), recovers and expunges it, leaving nothing held', async () => {
    const before = { load: await hostLoad(), addresses: await addressCount(), counts: await accountCounts(alice) };
    const userdata = Buffer.from('#cloud-config\npackage_upgrade: true\n').toString('base64');
    const deploy = await begin(alice.client, 'deployVirtualMachine', { ...base(), name: 'web-1', displayname: 'Web one', keypair: 'alice-key', userdata, affinitygroupids: antiGroup.id });
    expect(Object.keys(deploy).sort()).toEqual(['id', 'jobid']);
    const startVm = await receiveCommand(seeded.agent.queueUrl);
    expect(startVm).toMatchObject({ type: 'startVm', payload: { host: { hostId: host.id, address: host.ipaddress, username: 'root', port: 22 } } });
    const spec = (startVm.payload as any).vm;
    expect(spec).toMatchObject({
      uuid: deploy.id,
      hostname: 'web-1',
      vcpus: 1,
      cpuMhz: 500,
      memoryMiB: 512,
      vncListen: host.ipaddress,
      configDrive: { path: `${POOL_PATH}/${deploy.id}-config.iso`, publicKeys: { 'alice-key': expect.stringMatching(/^ssh-ed25519 /) }, userData: userdata, availabilityZone: zone.name },
    });
    expect(spec.name).toMatch(/^i-\d+-\d+-VM$/);
    expect(spec.disks).toEqual([{ path: expect.stringMatching(new RegExp(`^${POOL_PATH}/[0-9a-f-]{36}\\.qcow2$`)), backingFile: `${POOL_PATH}/${template.id}.qcow2`, sizeBytes: 2 * GiB, deviceId: 0 }]);
    expect(spec.nics).toEqual([{ mac: expect.stringMatching(/^02(:[0-9a-f]{2}){5}$/), vlan: 410, ip: expect.stringMatching(/^10\.41\.0\./), netmask: '255.255.255.0', gateway: '10.41.0.1', dns: ['8.8.8.8', '1.1.1.1'] }]);
    // While the agent works, the VM is Starting and holds its host's capacity.
    expect((await getVmConsistent(deploy.id))?.state).toBe('Starting');
    expect(await hostLoad()).toEqual({ cpu: before.load.cpu + 500, memory: before.load.memory + 512 * 1024 * 1024 });
    await answer(startVm, started(startVm));
    const deployed = await alice.client.waitForJob(deploy.jobid);
    expect(deployed).toMatchObject({ jobstatus: 1, cmd: 'deployVirtualMachine', jobinstancetype: 'VirtualMachine', jobinstanceid: deploy.id });
    expect(deployed.jobresult.virtualmachine).toMatchObject({ id: deploy.id, name: 'web-1', displayname: 'Web one', state: 'Running' });
    expect(deployed.jobresult.virtualmachine.instancename).toBeUndefined();
    expect(await addressCount()).toBe(before.addresses + 1);
    expect((await getStoragePool(pool.id))!.disksizeallocated).toBeGreaterThanOrEqual(2 * GiB);

    const stop = await begin(alice.client, 'stopVirtualMachine', { id: deploy.id });
    const stopVm = await agentAnswers('stopVm', { result: { name: spec.name, state: 'Stopped', forced: false } });
    expect(stopVm.payload).toMatchObject({ name: spec.name, forced: false });
    expect((await alice.client.waitForJob(stop.jobid)).jobresult.virtualmachine.state).toBe('Stopped');
    expect(await hostLoad()).toEqual(before.load);
    expect((await getVmConsistent(deploy.id))?.lastHostId).toBe(host.id);

    const start = await begin(alice.client, 'startVirtualMachine', { id: deploy.id });
    const again = await agentAnswers('startVm', { result: { name: spec.name, state: 'Running' } });
    expect((again.payload as any).vm.disks[0].path).toBe(spec.disks[0].path);
    expect((await alice.client.waitForJob(start.jobid)).jobresult.virtualmachine.state).toBe('Running');

    const reboot = await begin(alice.client, 'rebootVirtualMachine', { id: deploy.id });
    await agentAnswers('rebootVm', { result: { name: spec.name, state: 'Running' } });
    expect((await alice.client.waitForJob(reboot.jobid)).jobstatus).toBe(1);

    const destroy = await begin(alice.client, 'destroyVirtualMachine', { id: deploy.id });
    await agentAnswers('stopVm', { result: { name: spec.name, state: 'Stopped', forced: false } });
    expect((await alice.client.waitForJob(destroy.jobid)).jobresult.virtualmachine.state).toBe('Destroyed');
    expect(await hostLoad()).toEqual(before.load);
    expect(await accountCounts(alice)).toEqual(before.counts);
    expect(ok(await alice.client.call('listVirtualMachines', { id: deploy.id }), 'listVirtualMachines').virtualmachine).toBeUndefined();
    expect(ok(await admin.call('listVirtualMachines', { id: deploy.id, listall: true }), 'listVirtualMachines').virtualmachine[0].state).toBe('Destroyed');
    refused(await alice.client.call('startVirtualMachine', { id: deploy.id }), 'startVirtualMachine', 431, /cannot be started: it is Destroyed/);

    const recovered = ok(await admin.call('recoverVirtualMachine', { id: deploy.id }), 'recoverVirtualMachine').virtualmachine;
    expect(recovered).toMatchObject({ id: deploy.id, state: 'Stopped' });
    expect((await accountCounts(alice)).user_vm).toBe((before.counts.user_vm ?? 0) + 1);

    const destroyAgain = await begin(admin, 'destroyVirtualMachine', { id: deploy.id });
    expect((await admin.waitForJob(destroyAgain.jobid)).jobresult.virtualmachine.state).toBe('Destroyed');
    const expunge = await begin(admin, 'expungeVirtualMachine', { id: deploy.id });
    const expungeVm = await agentAnswers('expungeVm', { result: { removed: [] } });
    expect(expungeVm.payload).toEqual({ host: { hostId: host.id, address: host.ipaddress, port: 22, username: 'root' }, name: spec.name, files: [spec.disks[0].path, `${POOL_PATH}/${deploy.id}-config.iso`] });
    expect((await admin.waitForJob(expunge.jobid)).jobresult).toEqual({ success: true });
    expect(await getVmConsistent(deploy.id)).toBeUndefined();
    // Its id still names a VM, as upstream's removed row does: listed, it answers an empty list.
    expect(ok(await admin.call('listVirtualMachines', { id: deploy.id }), 'listVirtualMachines')).toEqual({});
    refused(await admin.call('listVirtualMachines', { id: randomUUID() }), 'listVirtualMachines', 431, /entity not found|Unable to execute API command/);
    expect(await addressCount()).toBe(before.addresses);
    expect(await accountCounts(alice)).toEqual(before.counts);
    const events = ok(await admin.call('listEvents', { listall: true, resourceid: deploy.id, resourcetype: 'VirtualMachine', pagesize: -1 }), 'listEvents').event ?? [];
    const completed = events.filter((e: any) => e.state === 'Completed').map((e: any) => e.type);
    for (const type of ['VM.CREATE', 'VM.STOP', 'VM.START', 'VM.REBOOT', 'VM.DESTROY', 'VM.RECOVER', 'VM.EXPUNGE']) expect(completed).toContain(type);
  });

  it('a failed deploy leaves the VM in Error with its capacity, address and counts given back, and the agent\'s reason in the job', async () => {
    const before = { load: await hostLoad(), addresses: await addressCount(), counts: await accountCounts(alice) };
    const deploy = await begin(alice.client, 'deployVirtualMachine', { ...base(), ipaddress: '10.41.0.42' });
    await agentAnswers('startVm', { error: 'LibvirtError', cause: 'virsh start failed: no bridge br410' });
    const job = await alice.client.waitForJob(deploy.jobid);
    expect(job).toMatchObject({ jobstatus: 2, jobresultcode: 530, jobresult: { errorcode: 530, errortext: 'virsh start failed: no bridge br410' } });
    const vm = (await getVmConsistent(deploy.id))!;
    expect(vm.state).toBe('Error');
    expect(await hostLoad()).toEqual(before.load);
    expect(await addressCount()).toBe(before.addresses);
    expect(await accountCounts(alice)).toEqual(before.counts);
    // The address is free again for the next VM, asked for through iptonetworklist (as the UI's wizard does).
    const wizard = { boottype: 'BIOS', bootmode: 'LEGACY', dynamicscalingenabled: false, iothreadsenabled: false };
    const next = await begin(alice.client, 'deployVirtualMachine', { ...base(), ...wizard, 'iptonetworklist[0].networkid': network.id, 'iptonetworklist[0].ip': '10.41.0.42', startvm: false });
    const nextVm = (await alice.client.waitForJob(next.jobid)).jobresult.virtualmachine;
    expect(nextVm.state).toBe('Stopped');
    expect(nextVm.nic).toEqual([expect.objectContaining({ networkid: network.id, ipaddress: '10.41.0.42', isdefault: true })]);
    // An Error VM is expunged through a host of its pool (files may have been written).
    const expunge = await begin(admin, 'expungeVirtualMachine', { id: deploy.id });
    await agentAnswers('expungeVm', { result: { removed: [] } });
    expect((await admin.waitForJob(expunge.jobid)).jobstatus).toBe(1);
    expect(await getVmConsistent(deploy.id)).toBeUndefined();
    expect(await addressCount()).toBe(before.addresses + 1);
  });

  it('fails a deploy no host can take with 533 and upstream\'s text, holding nothing', async () => {
    const before = { load: await hostLoad(), addresses: await addressCount(), counts: await accountCounts(alice) };
    const deploy = await begin(alice.client, 'deployVirtualMachine', { ...base(), serviceofferingid: custom.id, 'details[0].cpuNumber': 32, 'details[0].memory': 1024 });
    const job = await alice.client.waitForJob(deploy.jobid);
    const vm = (await getVmConsistent(deploy.id))!;
    expect(job).toMatchObject({ jobstatus: 2, jobresultcode: 533, jobresult: { errorcode: 533, errortext: `Unable to create a deployment for VM[User|${vm.instanceName}]` } });
    expect(vm.state).toBe('Error');
    expect(await hostLoad()).toEqual(before.load);
    expect(await addressCount()).toBe(before.addresses);
    expect(await accountCounts(alice)).toEqual(before.counts);
  });

  it('keeps the second member of an anti-affinity group off the first one\'s host: 533 with one host', async () => {
    const first = await begin(alice.client, 'deployVirtualMachine', { ...base(), affinitygroupnames: 'spread' });
    const message = await receiveCommand(seeded.agent.queueUrl);
    await answer(message, started(message));
    expect((await alice.client.waitForJob(first.jobid)).jobstatus).toBe(1);
    const second = await begin(alice.client, 'deployVirtualMachine', { ...base(), affinitygroupnames: 'spread' });
    const job = await alice.client.waitForJob(second.jobid);
    expect(job).toMatchObject({ jobstatus: 2, jobresultcode: 533 });
    expect(job.jobresult.errortext).toMatch(/^Unable to create a deployment for VM\[User\|i-\d+-\d+-VM\]$/);
    // Forced stop, then destroy with expunge as an admin: one job, two agent commands.
    const stop = await begin(alice.client, 'stopVirtualMachine', { id: first.id, forced: true });
    const stopVm = await agentAnswers('stopVm', { result: { name: 'x', state: 'Stopped', forced: true } });
    expect(stopVm.payload).toMatchObject({ forced: true });
    expect((await alice.client.waitForJob(stop.jobid)).jobstatus).toBe(1);
    const destroy = await begin(admin, 'destroyVirtualMachine', { id: first.id, expunge: true });
    await agentAnswers('expungeVm', { result: { removed: [] } });
    expect((await admin.waitForJob(destroy.jobid)).jobstatus).toBe(1);
    expect(await getVmConsistent(first.id)).toBeUndefined();
  });

  it('a failed stop leaves the VM Running; a silent agent fails the job on the timeout', async () => {
    ok(await admin.call('updateConfiguration', { name: 'agent.command.timeout', value: 2 }), 'updateConfiguration');
    try {
      const deploy = await begin(admin, 'deployVirtualMachine', { ...base(), hostid: host.id, account: alice.account.name, domainid: world.rootDomainId });
      const message = await receiveCommand(seeded.agent.queueUrl);
      await answer(message, started(message));
      expect((await admin.waitForJob(deploy.jobid)).jobresult.virtualmachine).toMatchObject({ state: 'Running', hostid: host.id, account: alice.account.name });
      const stop = await begin(admin, 'stopVirtualMachine', { id: deploy.id });
      await agentAnswers('stopVm', { error: 'DomainBusy', cause: 'the domain did not stop' });
      expect((await admin.waitForJob(stop.jobid)).jobresult.errortext).toBe('the domain did not stop');
      expect((await getVmConsistent(deploy.id))?.state).toBe('Running');
      const reboot = await begin(admin, 'rebootVirtualMachine', { id: deploy.id });
      await receiveCommand(seeded.agent.queueUrl); // never answered
      const silent = await admin.waitForJob(reboot.jobid);
      expect(silent.jobresult.errortext).toBe('The agent did not answer in time; the host or its agent may be down.');
      expect((await getVmConsistent(deploy.id))?.state).toBe('Running');
    } finally {
      ok(await admin.call('updateConfiguration', { name: 'agent.command.timeout', value: 60 }), 'updateConfiguration');
    }
  });
});

describe('the sweeper', () => {
  it('expunges VMs Destroyed longer than expunge.delay, at most once per expunge.interval', async () => {
    const deploy = await begin(alice.client, 'deployVirtualMachine', { ...base(), startvm: false });
    expect((await alice.client.waitForJob(deploy.jobid)).jobresult.virtualmachine.state).toBe('Stopped');
    const destroy = await begin(alice.client, 'destroyVirtualMachine', { id: deploy.id });
    expect((await alice.client.waitForJob(destroy.jobid)).jobstatus).toBe(1);
    const actor = await systemActor();
    ok(await admin.call('updateConfiguration', { name: 'expunge.interval', value: 1 }), 'updateConfiguration');
    ok(await admin.call('updateConfiguration', { name: 'expunge.delay', value: 3600 }), 'updateConfiguration');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await expungeDestroyedVms(actor)).toEqual([]);
    ok(await admin.call('updateConfiguration', { name: 'expunge.delay', value: 0 }), 'updateConfiguration');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await expungeDestroyedVms(actor)).toEqual([deploy.id]);
    // Never placed: nothing on a host to remove, so no agent command; the records go.
    await waitFor('the VM record to be gone', async () => (await getVmConsistent(deploy.id)) === undefined);
    expect(await getVolume((await getVmConsistent(deploy.id))?.rootVolumeId ?? 'gone')).toBeUndefined();
  });
});
