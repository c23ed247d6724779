// updateVirtualMachine, changeServiceForVirtualMachine, scaleVirtualMachine,
// resetSSHKeyForVirtualMachine, getVirtualMachineUserData and updateVMAffinityGroup through
// /client/api and the real vm-edit state machine, with the test playing the zone's agent for the
// VMs that run. Each success answers with upstream's shape; each refusal has upstream's code and
// text and changes nothing (the VM record, the account's counts, the jobs, the group members).
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandMessage } from '../../shared/agent/protocol.ts';
import { getAffinityGroup } from '../../shared/db/affinity-groups.ts';
import { createHostRecord } from '../../shared/db/hosts.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { getCluster } from '../../shared/db/infrastructure.ts';
import { storedCounts } from '../../shared/db/limits.ts';
import { getVmConsistent } from '../../shared/db/vms.ts';
import { answer, receiveCommand, type SeededAgent } from '../support/agent-seed.ts';
import { GiB, POOL_PATH, seedPlayedZone } from '../support/played-zone.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { missing, noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';
import { patience } from '../support/wait.ts';


/** A fresh OpenSSH ed25519 public key: `ssh-ed25519 <blob>` (no comment). */
function sshKey(): string {
  const raw = Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const part = (bytes: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, bytes.length]), bytes]);
  return `ssh-ed25519 ${Buffer.concat([part(Buffer.from('ssh-ed25519')), part(raw)]).toString('base64')}`;
}
const ALICE_KEY = sshKey();
const ALICE_NEW_KEY = sshKey();
const BOB_KEY = sshKey();

let world: World;
let admin: ApiClient;
let alice: Member;
let bob: Member;
let rootDomainAdmin: Member;
let otherDomainAdmin: Member;
let zone: any;
let host: any;
let template: any;
let small: any;
let big: any;
let huge: any;
let custom: any;
let withHa: any;
let osTypes: any[];
let seeded: SeededAgent;
let groupOne: any;
let groupTwo: any;
let bobGroup: any;

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  const root = (await getDomain(world.rootDomainId))!;
  alice = await seedMember(world.runtime.apiUrl, unique('alice'), root, 'User');
  bob = await seedMember(world.runtime.apiUrl, unique('bob'), root, 'User');
  rootDomainAdmin = await seedMember(world.runtime.apiUrl, unique('dadmin'), root, 'Domain Admin');
  const child = ok(await admin.call('createDomain', { name: unique('child') }), 'createDomain').domain;
  otherDomainAdmin = await seedMember(world.runtime.apiUrl, unique('cadmin'), (await getDomain(child.id))!, 'Domain Admin');
  ({ zone, host, template, seeded } = await seedPlayedZone(admin, 50, { cpunumber: 16, memorytotal: 64 * GiB }));
  osTypes = ok(await admin.call('listOsTypes', { pagesize: 3 }), 'listOsTypes').ostype;
  const offering = async (name: string, extra: Record<string, string | number | boolean>) =>
    ok(await admin.call('createServiceOffering', { name: unique(name), displaytext: name, ...extra }), 'createServiceOffering').serviceoffering;
  small = await offering('small', { cpunumber: 1, cpuspeed: 500, memory: 512 });
  big = await offering('big', { cpunumber: 2, cpuspeed: 500, memory: 1024 });
  huge = await offering('huge', { cpunumber: 8, cpuspeed: 500, memory: 8192 });
  withHa = await offering('ha', { cpunumber: 1, cpuspeed: 500, memory: 512, offerha: true });
  custom = await offering('custom', { customized: true, cpuspeed: 500, mincpunumber: 1, maxcpunumber: 16, minmemory: 256, maxmemory: 16384 });
  ok(await alice.client.call('registerSSHKeyPair', { name: 'alice-key', publickey: ALICE_KEY }), 'registerSSHKeyPair');
  ok(await alice.client.call('registerSSHKeyPair', { name: 'alice-new', publickey: ALICE_NEW_KEY }), 'registerSSHKeyPair');
  ok(await bob.client.call('registerSSHKeyPair', { name: 'bob-key', publickey: BOB_KEY }), 'registerSSHKeyPair');
  const group = async (member: Member, name: string) => (await member.client.waitForJob(ok(await member.client.call('createAffinityGroup', { name, type: 'host anti-affinity' }), 'createAffinityGroup').jobid)).jobresult.affinitygroup;
  groupOne = await group(alice, 'one');
  groupTwo = await group(alice, 'two');
  bobGroup = await group(bob, 'bobs');
}, patience(120_000));

afterAll(async () => {
  await world?.runtime.stop();
});

const base = () => ({ zoneid: zone.id, serviceofferingid: small.id, templateid: template.id });

/** A Stopped VM of the member's (deployed with startvm=false). */
async function stoppedVm(member: Member, params: Record<string, string | number | boolean> = {}): Promise<string> {
  const deploy = ok(await member.client.call('deployVirtualMachine', { ...base(), startvm: false, ...params }), 'deployVirtualMachine');
  expect((await member.client.waitForJob(deploy.jobid)).jobresult.virtualmachine.state).toBe('Stopped');
  return deploy.id;
}

/** The next agent command, answered as the agent would. */
async function agentAnswers(type: string, result: (message: CommandMessage) => unknown): Promise<CommandMessage> {
  const message = await receiveCommand(seeded.agent.queueUrl);
  expect(message.type).toBe(type);
  await answer(message, { result: result(message) });
  return message;
}
const started = (message: CommandMessage) => ({ name: (message.payload as any).vm.name, state: 'Running', vncPort: 5901 });
const halted = () => ({ name: 'x', state: 'Stopped', forced: false });

async function startVm(member: Member, id: string): Promise<CommandMessage> {
  const start = ok(await member.client.call('startVirtualMachine', { id }), 'startVirtualMachine');
  const message = await agentAnswers('startVm', started);
  expect((await member.client.waitForJob(start.jobid)).jobresult.virtualmachine.state).toBe('Running');
  return message;
}
async function stopVm(member: Member, id: string): Promise<void> {
  const stop = ok(await member.client.call('stopVirtualMachine', { id }), 'stopVirtualMachine');
  await agentAnswers('stopVm', halted);
  expect((await member.client.waitForJob(stop.jobid)).jobresult.virtualmachine.state).toBe('Stopped');
}

/** The account's stored counts, without the zeros. */
const counts = async (member: Member) => Object.fromEntries(Object.entries(await storedCounts('ACCOUNT', member.account.id)).filter(([, n]) => n !== 0));
const jobCount = async () => ok(await admin.call('listAsyncJobs', { listall: true, pagesize: -1 }), 'listAsyncJobs').count ?? 0;
const listed = async (client: ApiClient, id: string) => ok(await client.call('listVirtualMachines', { id }), 'listVirtualMachines').virtualmachine[0];
const completedEvents = async (id: string, type: string) =>
  (ok(await admin.call('listEvents', { listall: true, resourceid: id, resourcetype: 'VirtualMachine', type, pagesize: -1 }), 'listEvents').event ?? []).filter((e: any) => e.state === 'Completed');

/** What a refused call must leave as it was. */
async function snapshot(...ids: string[]) {
  return {
    vms: await Promise.all(ids.map((id) => getVmConsistent(id))),
    alice: await counts(alice),
    jobs: await jobCount(),
    groups: await Promise.all([groupOne, groupTwo, bobGroup].map(async (g) => (await getAffinityGroup(g.id))?.virtualMachineIds)),
  };
}

describe('updateVirtualMachine and getVirtualMachineUserData', () => {
  it('updates a Stopped VM and answers with the VM as listVirtualMachines renders it; the user data reads back in base64', async () => {
    const id = await stoppedVm(alice, { serviceofferingid: withHa.id, name: 'before' });
    const userdata = Buffer.from('#cloud-config\nhostname: after\n').toString('base64');
    const answerBody = ok(
      await alice.client.call('updateVirtualMachine', {
        id,
        displayname: 'After all',
        name: 'after',
        ostypeid: osTypes[1].id,
        group: 'web',
        haenable: true,
        userdata,
        'details[0].keyboard': 'us',
        isdynamicallyscalable: false,
      }),
      'updateVirtualMachine',
    );
    expect(Object.keys(answerBody)).toEqual(['virtualmachine']);
    const vm = answerBody.virtualmachine;
    expect(vm).toMatchObject({ id, name: 'after', displayname: 'After all', group: 'web', haenable: true, ostypeid: osTypes[1].id, guestosid: osTypes[1].id, details: { keyboard: 'us' }, isdynamicallyscalable: false, state: 'Stopped' });
    expect(vm.userdata).toBeUndefined();
    expect(vm).toEqual(await listed(alice.client, id));
    expect((await getVmConsistent(id))!.userData).toBe(userdata);
    expect(await completedEvents(id, 'VM.UPDATE')).toHaveLength(1);

    const read = ok(await alice.client.call('getVirtualMachineUserData', { virtualmachineid: id }), 'getVirtualMachineUserData');
    expect(read).toEqual({ virtualmachineuserdata: { virtualmachineid: id, userdata } });
    // Without user data there is none to show.
    const plain = await stoppedVm(alice);
    expect(ok(await alice.client.call('getVirtualMachineUserData', { virtualmachineid: plain }), 'getVirtualMachineUserData')).toEqual({ virtualmachineuserdata: { virtualmachineid: plain } });
    // Up to 32 KB of base64 by POST.
    const large = Buffer.alloc(20000, 7).toString('base64');
    ok(await alice.client.call('updateVirtualMachine', { id, userdata: large }, { method: 'POST' }), 'updateVirtualMachine');
    expect((await getVmConsistent(id))!.userData).toBe(large);
    // The name reaches the next start's domain and config drive.
    const message = await startVm(alice, id);
    expect((message.payload as any).vm.hostname).toBe('after');
    expect((message.payload as any).vm.configDrive.userData).toBe(large);
    await stopVm(alice, id);
  });

  it('on a running VM changes only what needs no stop (group, haenable, user data)', async () => {
    const id = await stoppedVm(alice, { serviceofferingid: withHa.id });
    await startVm(alice, id);
    const vm = ok(await alice.client.call('updateVirtualMachine', { id, group: 'db', haenable: true, userdata: Buffer.from('x').toString('base64'), displayname: (await getVmConsistent(id))!.displayName }), 'updateVirtualMachine').virtualmachine;
    expect(vm).toMatchObject({ group: 'db', haenable: true, state: 'Running' });
    await stopVm(alice, id);
  });

  it('custom offering details change the CPU and memory, counted against the owner\'s limits (431 beyond them, as upstream\'s verifyVmLimits)', async () => {
    const id = await stoppedVm(alice, { serviceofferingid: custom.id, 'details[0].cpuNumber': 2, 'details[0].memory': 1024 });
    const before = await counts(alice);
    const vm = ok(await alice.client.call('updateVirtualMachine', { id, 'details[0].cpuNumber': 3, 'details[0].memory': 2048 }), 'updateVirtualMachine').virtualmachine;
    expect(vm).toMatchObject({ cpunumber: 3, memory: 2048, details: { cpuNumber: '3', memory: '2048' } });
    expect(await counts(alice)).toEqual({ ...before, cpu: before.cpu + 1, memory: before.memory + 1024 });
    ok(await admin.call('updateResourceLimit', { account: alice.account.name, domainid: world.rootDomainId, resourcetype: 8, max: before.cpu + 1 }), 'updateResourceLimit');
    try {
      const state = await snapshot(id);
      refused(await alice.client.call('updateVirtualMachine', { id, 'details[0].cpuNumber': 4, 'details[0].memory': 2048 }), 'updateVirtualMachine', 431, /^Maximum amount of resources of Type = 'cpu', tag = 'null' for Account Name = .* is exceeded/);
      expect(await snapshot(id)).toEqual(state);
    } finally {
      ok(await admin.call('updateResourceLimit', { account: alice.account.name, domainid: world.rootDomainId, resourcetype: 8, max: -1 }), 'updateResourceLimit');
    }
    refused(await alice.client.call('updateVirtualMachine', { id, 'details[0].cpuNumber': 99, 'details[0].memory': 2048 }), 'updateVirtualMachine', 431, 'Invalid cpu cores value, specify a value between 1 and 16');
  });

  it('refuses every bad input with the code and a text naming the parameter, changing nothing', async () => {
    const id = await stoppedVm(alice);
    const running = await stoppedVm(alice);
    await startVm(alice, running);
    const state = await snapshot(id, running);
    const events = (await completedEvents(id, 'VM.UPDATE')).length + (await completedEvents(running, 'VM.UPDATE')).length;
    const unknown = randomUUID();
    const call = (params: Record<string, string | number | boolean>, method: 'GET' | 'POST' = 'GET') => alice.client.call('updateVirtualMachine', { id, ...params }, { method });
    refused(await alice.client.call('updateVirtualMachine', {}), 'updateVirtualMachine', 431, missing('updatevirtualmachine', 'id'));
    refused(await alice.client.call('updateVirtualMachine', { id: unknown }), 'updateVirtualMachine', 431, noEntity('updatevirtualmachine', 'id', unknown));
    refused(await bob.client.call('updateVirtualMachine', { id, displayname: 'mine' }), 'updateVirtualMachine', 531, /does not have permission/);
    refused(await otherDomainAdmin.client.call('updateVirtualMachine', { id, displayname: 'mine' }), 'updateVirtualMachine', 531, /does not have permission/);
    for (const name of ['1abc', '-abc', 'abc-', 'a_b', 'has space']) {
      refused(await call({ name }), 'updateVirtualMachine', 431, /^Invalid name\. Vm name can contain ASCII letters.*\(name\)$/);
    }
    refused(await call({ name: 'a'.repeat(64) }), 'updateVirtualMachine', 431, /Invalid parameter name/);
    refused(await call({ ostypeid: unknown }), 'updateVirtualMachine', 431, noEntity('updatevirtualmachine', 'ostypeid', unknown));
    refused(await call({ haenable: true }), 'updateVirtualMachine', 431, "Can't enable ha for the vm as it's created from the Service offering having HA disabled");
    refused(await call({ userdata: 'not base64!' }), 'updateVirtualMachine', 431, 'User data is not base64 encoded (userdata)');
    refused(await call({ userdata: Buffer.alloc(2000, 1).toString('base64') }), 'updateVirtualMachine', 431, /^User data is too long for an http GET request \(userdata/);
    refused(await call({ userdata: Buffer.alloc(30000, 1).toString('base64') }, 'POST'), 'updateVirtualMachine', 431, /^User data is too long for an http POST request \(userdata/);
    refused(await call({ 'details[0].extraconfig': 'x' }), 'updateVirtualMachine', 431, "'extraconfig' should not be included in details as key");
    refused(await call({ 'details[0].rootdisksize': '20' }), 'updateVirtualMachine', 431, "You're not allowed to add or edit the restricted setting: rootdisksize");
    refused(await call({ 'details[0].rootDiskController': 'scsi' }), 'updateVirtualMachine', 431, "You're not allowed to add or edit the read-only setting: rootDiskController");
    refused(await call({ isdynamicallyscalable: true }), 'updateVirtualMachine', 431, /^Dynamic Scaling cannot be enabled for the VM since/);
    refused(await call({ haenable: 'perhaps' }), 'updateVirtualMachine', 431, /Invalid parameter haenable value=perhaps/);
    // Running: name, display name, OS type and details wait for a stop.
    const onRunning = (params: Record<string, string | number | boolean>) => alice.client.call('updateVirtualMachine', { id: running, ...params });
    refused(await onRunning({ name: 'renamed' }), 'updateVirtualMachine', 431, 'Virtual machine must be stopped prior to update name');
    refused(await onRunning({ displayname: 'renamed' }), 'updateVirtualMachine', 431, 'Virtual machine must be stopped prior to update displayname');
    refused(await onRunning({ ostypeid: osTypes[2].id }), 'updateVirtualMachine', 431, 'Virtual machine must be stopped prior to update ostypeid');
    refused(await onRunning({ 'details[0].keyboard': 'de', group: 'web' }), 'updateVirtualMachine', 431, 'Virtual machine must be stopped prior to update details');
    expect(await snapshot(id, running)).toEqual(state);
    expect((await completedEvents(id, 'VM.UPDATE')).length + (await completedEvents(running, 'VM.UPDATE')).length).toBe(events);
    refused(await bob.client.call('getVirtualMachineUserData', { virtualmachineid: id }), 'getVirtualMachineUserData', 531, /does not have permission/);
    refused(await alice.client.call('getVirtualMachineUserData', { virtualmachineid: unknown }), 'getVirtualMachineUserData', 431, noEntity('getvirtualmachineuserdata', 'virtualmachineid', unknown));
    await stopVm(alice, running);
  });

  it('lets the owner\'s domain admin and the root admin edit; admins may set the restricted details', async () => {
    const id = await stoppedVm(alice);
    expect(ok(await rootDomainAdmin.client.call('updateVirtualMachine', { id, displayname: 'by-domain-admin' }), 'updateVirtualMachine').virtualmachine.displayname).toBe('by-domain-admin');
    const vm = ok(await admin.call('updateVirtualMachine', { id, 'details[0].rootdisksize': '20', 'details[0].keyboard': 'us' }), 'updateVirtualMachine').virtualmachine;
    expect(vm.details).toEqual({ rootdisksize: '20', keyboard: 'us' });
    expect(vm.instancename).toMatch(/^i-\d+-\d+-VM$/);
    // A user replacing the details keeps the restricted one it may not see.
    expect(ok(await alice.client.call('updateVirtualMachine', { id, 'details[0].keyboard': 'de' }), 'updateVirtualMachine').virtualmachine.details).toEqual({ keyboard: 'de' });
    expect((await getVmConsistent(id))!.details).toEqual({ keyboard: 'de', rootdisksize: '20' });
    ok(await alice.client.call('updateVirtualMachine', { id, cleanupdetails: true }), 'updateVirtualMachine');
    expect((await getVmConsistent(id))!.details).toEqual({ rootdisksize: '20' });
  });
});

describe('changeServiceForVirtualMachine and scaleVirtualMachine', () => {
  it('changes a Stopped VM\'s offering, its CPU and memory and the owner\'s counts; a custom offering takes its details', async () => {
    const id = await stoppedVm(alice);
    const before = await counts(alice);
    const answerBody = ok(await alice.client.call('changeServiceForVirtualMachine', { id, serviceofferingid: big.id }), 'changeServiceForVirtualMachine');
    expect(Object.keys(answerBody)).toEqual(['virtualmachine']);
    expect(answerBody.virtualmachine).toMatchObject({ id, serviceofferingid: big.id, serviceofferingname: big.name, cpunumber: 2, cpuspeed: 500, memory: 1024, state: 'Stopped' });
    expect(answerBody.virtualmachine).toEqual(await listed(alice.client, id));
    expect(await counts(alice)).toEqual({ ...before, cpu: before.cpu + 1, memory: before.memory + 512 });
    expect(await completedEvents(id, 'VM.UPGRADE')).toHaveLength(1);

    const customized = ok(await alice.client.call('changeServiceForVirtualMachine', { id, serviceofferingid: custom.id, 'details[0].cpuNumber': 4, 'details[0].memory': 768 }), 'changeServiceForVirtualMachine').virtualmachine;
    expect(customized).toMatchObject({ serviceofferingid: custom.id, cpunumber: 4, memory: 768, details: { cpuNumber: '4', memory: '768' } });
    expect(await counts(alice)).toEqual({ ...before, cpu: before.cpu + 3, memory: before.memory + 256 });
    const back = ok(await alice.client.call('changeServiceForVirtualMachine', { id, serviceofferingid: small.id }), 'changeServiceForVirtualMachine').virtualmachine;
    expect(back).toMatchObject({ serviceofferingid: small.id, cpunumber: 1, memory: 512 });
    expect(back.details).toBeUndefined();
    expect(await counts(alice)).toEqual(before);
    // The next start runs with the offering's CPU and memory.
    ok(await alice.client.call('changeServiceForVirtualMachine', { id, serviceofferingid: big.id }), 'changeServiceForVirtualMachine');
    const message = await startVm(alice, id);
    expect((message.payload as any).vm).toMatchObject({ vcpus: 2, memoryMiB: 1024 });
    await stopVm(alice, id);
  });

  it('refuses as upstream, changing nothing: running VMs, the same offering, missing custom values, others\' VMs, and counts beyond a limit (532)', async () => {
    const id = await stoppedVm(alice);
    const running = await stoppedVm(alice);
    const runningVm = (await getVmConsistent(running))!;
    await startVm(alice, running);
    const vm = (await getVmConsistent(id))!;
    const state = await snapshot(id, running);
    const unknown = randomUUID();
    const change = (params: Record<string, string | number | boolean>, client = alice.client) => client.call('changeServiceForVirtualMachine', { id, ...params });
    refused(await alice.client.call('changeServiceForVirtualMachine', { id }), 'changeServiceForVirtualMachine', 431, missing('changeserviceforvirtualmachine', 'serviceofferingid'));
    refused(await change({ serviceofferingid: unknown }), 'changeServiceForVirtualMachine', 431, noEntity('changeserviceforvirtualmachine', 'serviceofferingid', unknown));
    refused(await change({ serviceofferingid: small.id }), 'changeServiceForVirtualMachine', 431, `Not upgrading vm VM[User|${vm.instanceName}] since it already has the requested service offering (${small.name})`);
    refused(await change({ serviceofferingid: custom.id }), 'changeServiceForVirtualMachine', 431, 'Need to specify custom parameter values cpu, cpu speed and memory when using custom offering');
    refused(await change({ serviceofferingid: custom.id, 'details[0].cpuNumber': 2 }), 'changeServiceForVirtualMachine', 431, 'Invalid memory value, specify a value between 256 and 16384');
    refused(await change({ serviceofferingid: big.id }, bob.client), 'changeServiceForVirtualMachine', 531, /does not have permission/);
    refused(
      await alice.client.call('changeServiceForVirtualMachine', { id: running, serviceofferingid: big.id }),
      'changeServiceForVirtualMachine',
      431,
      `Unable to upgrade virtual machine VM[User|${runningVm.instanceName}]  in state Running; make sure the virtual machine is stopped`,
    );
    refused(await alice.client.call('scaleVirtualMachine', { id: running, serviceofferingid: big.id }), 'scaleVirtualMachine', 431, 'Scaling the VM dynamically is not supported for VMs running on Hypervisor [KVM].');
    refused(await alice.client.call('scaleVirtualMachine', { id, serviceofferingid: small.id }), 'scaleVirtualMachine', 431, /since it already has the requested service offering/);
    ok(await admin.call('updateResourceLimit', { account: alice.account.name, domainid: world.rootDomainId, resourcetype: 9, max: state.alice.memory + 1000 }), 'updateResourceLimit');
    try {
      refused(await change({ serviceofferingid: huge.id }), 'changeServiceForVirtualMachine', 532, /^Maximum amount of resources of Type = 'memory', tag = 'null' for Account Name = .* is exceeded/);
      expect(await snapshot(id, running)).toEqual(state);
      // scaleVirtualMachine checks the limits in its job: the job fails with 532 and nothing changes.
      const scale = ok(await alice.client.call('scaleVirtualMachine', { id, serviceofferingid: huge.id }), 'scaleVirtualMachine');
      const job = await alice.client.waitForJob(scale.jobid);
      expect(job).toMatchObject({ jobstatus: 2, jobresultcode: 532, jobresult: { errorcode: 532 } });
      expect(job.jobresult.errortext).toMatch(/^Maximum amount of resources of Type = 'memory'/);
      expect({ ...(await snapshot(id, running)), jobs: state.jobs }).toEqual(state);
    } finally {
      ok(await admin.call('updateResourceLimit', { account: alice.account.name, domainid: world.rootDomainId, resourcetype: 9, max: -1 }), 'updateResourceLimit');
    }
    await stopVm(alice, running);
  });

  it('scaleVirtualMachine scales a Stopped VM in a job that answers with the VM', async () => {
    const id = await stoppedVm(alice);
    const before = await counts(alice);
    const scale = ok(await alice.client.call('scaleVirtualMachine', { id, serviceofferingid: big.id }), 'scaleVirtualMachine');
    expect(Object.keys(scale)).toEqual(['jobid']);
    const job = await alice.client.waitForJob(scale.jobid);
    expect(job).toMatchObject({ jobstatus: 1, cmd: 'scaleVirtualMachine', jobinstancetype: 'VirtualMachine', jobinstanceid: id });
    expect(Object.keys(job.jobresult)).toEqual(['virtualmachine']);
    expect(job.jobresult.virtualmachine).toMatchObject({ id, serviceofferingid: big.id, cpunumber: 2, memory: 1024 });
    expect(job.jobresult.virtualmachine).toEqual(await listed(alice.client, id));
    expect(await counts(alice)).toEqual({ ...before, cpu: before.cpu + 1, memory: before.memory + 512 });
    const events = await completedEvents(id, 'VM.UPGRADE');
    expect(events).toHaveLength(1);
    expect(events[0].description).toContain(`Upgrading Instance with ID: ${id} to service offering with ID: ${big.id}`);
  });
});

describe('resetSSHKeyForVirtualMachine', () => {
  it('puts the owner\'s new keys on the Stopped VM; its next start\'s config drive carries them', async () => {
    const id = await stoppedVm(alice, { keypair: 'alice-key' });
    const reset = ok(await alice.client.call('resetSSHKeyForVirtualMachine', { id, keypair: 'alice-new' }), 'resetSSHKeyForVirtualMachine');
    expect(Object.keys(reset)).toEqual(['jobid']);
    const job = await alice.client.waitForJob(reset.jobid);
    expect(job).toMatchObject({ jobstatus: 1, cmd: 'resetSSHKeyForVirtualMachine', jobinstancetype: 'VirtualMachine', jobinstanceid: id });
    expect(job.jobresult.virtualmachine).toMatchObject({ id, keypairs: 'alice-new' });
    expect(job.jobresult.virtualmachine).toEqual(await listed(alice.client, id));
    const vm = (await getVmConsistent(id))!;
    expect(vm.keypairs).toEqual(['alice-new']);
    expect(vm.sshPublicKeys).toEqual({ 'alice-new': ALICE_NEW_KEY });
    expect(await completedEvents(id, 'VM.RESETSSHKEY')).toHaveLength(1);
    const message = await startVm(alice, id);
    expect((message.payload as any).vm.configDrive.publicKeys).toEqual({ 'alice-new': ALICE_NEW_KEY });
    // Both keys by keypairs; an admin resets with the owner's keys.
    await stopVm(alice, id);
    const both = await admin.waitForJob(ok(await admin.call('resetSSHKeyForVirtualMachine', { id, keypairs: 'alice-key,alice-new' }), 'resetSSHKeyForVirtualMachine').jobid);
    expect(both.jobresult.virtualmachine.keypairs).toBe('alice-key,alice-new');
    expect(Object.keys((await getVmConsistent(id))!.sshPublicKeys as object)).toEqual(['alice-key', 'alice-new']);
  });

  it('refuses running VMs, missing or foreign keys and others\' VMs, changing nothing', async () => {
    const id = await stoppedVm(alice, { keypair: 'alice-key' });
    const running = await stoppedVm(alice);
    const runningVm = (await getVmConsistent(running))!;
    await startVm(alice, running);
    const state = await snapshot(id, running);
    const unknown = randomUUID();
    const reset = (params: Record<string, string | number | boolean>, client = alice.client) => client.call('resetSSHKeyForVirtualMachine', { id, ...params });
    refused(await alice.client.call('resetSSHKeyForVirtualMachine', { id: unknown, keypair: 'alice-new' }), 'resetSSHKeyForVirtualMachine', 431, noEntity('resetsshkeyforvirtualmachine', 'id', unknown));
    refused(await reset({}), 'resetSSHKeyForVirtualMachine', 431, "'keypair' or 'keyparis' must be specified");
    refused(await reset({ keypair: 'nobody' }), 'resetSSHKeyForVirtualMachine', 431, /^Not all specified keyparis exist: account .* has no key pair named nobody \(keypair\)$/);
    refused(await reset({ keypair: 'bob-key' }), 'resetSSHKeyForVirtualMachine', 431, /keyparis exist.*bob-key/);
    refused(await reset({ keypair: 'bob-key' }, bob.client), 'resetSSHKeyForVirtualMachine', 531, /does not have permission/);
    refused(await reset({ keypair: 'alice-new', account: bob.account.name, domainid: world.rootDomainId }), 'resetSSHKeyForVirtualMachine', 531, /does not have permission/);
    refused(
      await alice.client.call('resetSSHKeyForVirtualMachine', { id: running, keypair: 'alice-new' }),
      'resetSSHKeyForVirtualMachine',
      431,
      `Vm VM[User|${runningVm.instanceName}] should be stopped to do SSH Key reset`,
    );
    expect(await snapshot(id, running)).toEqual(state);
    await stopVm(alice, running);
  });
});

describe('updateVMAffinityGroup', () => {
  it('moves a Stopped VM between its owner\'s groups, the groups\' members following, and answers with its affinity groups only', async () => {
    const id = await stoppedVm(alice, { affinitygroupids: groupOne.id });
    expect((await getAffinityGroup(groupOne.id))!.virtualMachineIds).toContain(id);
    const update = ok(await alice.client.call('updateVMAffinityGroup', { id, affinitygroupids: groupTwo.id }), 'updateVMAffinityGroup');
    expect(Object.keys(update)).toEqual(['jobid']);
    const job = await alice.client.waitForJob(update.jobid);
    // Upstream's job is of type AffinityGroup without an instance id: neither is shown.
    expect(job).toMatchObject({ jobstatus: 1, cmd: 'updateVMAffinityGroup' });
    expect(job.jobinstancetype).toBeUndefined();
    const vm = job.jobresult.virtualmachine;
    expect(vm.affinitygroup).toEqual([{ id: groupTwo.id, name: 'two', account: alice.account.name }]);
    expect(vm).toMatchObject({ id, state: 'Stopped' });
    for (const absent of ['nic', 'templateid', 'serviceofferingid', 'cpunumber', 'instancename']) expect(vm[absent]).toBeUndefined();
    expect((await getAffinityGroup(groupOne.id))!.virtualMachineIds).not.toContain(id);
    expect((await getAffinityGroup(groupTwo.id))!.virtualMachineIds).toContain(id);
    expect((await getVmConsistent(id))!.affinityGroupIds).toEqual([groupTwo.id]);
    expect(await completedEvents(id, 'VM.AG.UPDATE')).toHaveLength(1);
    // By names, both groups; then none.
    const byNames = await alice.client.waitForJob(ok(await alice.client.call('updateVMAffinityGroup', { id, affinitygroupnames: 'one,two' }), 'updateVMAffinityGroup').jobid);
    expect(byNames.jobresult.virtualmachine.affinitygroup.map((g: any) => g.name)).toEqual(['one', 'two']);
    expect((await getAffinityGroup(groupOne.id))!.virtualMachineIds).toContain(id);
    expect((await getAffinityGroup(groupTwo.id))!.virtualMachineIds.filter((v) => v === id)).toHaveLength(1);
    const none = await alice.client.waitForJob(ok(await alice.client.call('updateVMAffinityGroup', { id }), 'updateVMAffinityGroup').jobid);
    expect(none.jobresult.virtualmachine.affinitygroup).toEqual([]);
    expect((await getAffinityGroup(groupOne.id))!.virtualMachineIds).not.toContain(id);
    expect((await getAffinityGroup(groupTwo.id))!.virtualMachineIds).not.toContain(id);
    expect(ok(await alice.client.call('listVirtualMachines', { affinitygroupid: groupTwo.id }), 'listVirtualMachines').virtualmachine?.map((v: any) => v.id) ?? []).not.toContain(id);
  });

  it('refuses running VMs, others\' groups, unknown groups and both lists at once, changing nothing', async () => {
    const id = await stoppedVm(alice, { affinitygroupids: groupOne.id });
    const running = await stoppedVm(alice);
    const runningVm = (await getVmConsistent(running))!;
    await startVm(alice, running);
    const state = await snapshot(id, running);
    const unknown = randomUUID();
    const update = (params: Record<string, string | number | boolean>, client = alice.client) => client.call('updateVMAffinityGroup', { id, ...params });
    refused(await update({ affinitygroupids: unknown }), 'updateVMAffinityGroup', 431, noEntity('updatevmaffinitygroup', 'affinitygroupids', unknown));
    refused(await update({ affinitygroupnames: 'nothing' }), 'updateVMAffinityGroup', 431, 'Unable to find affinity group by name nothing (affinitygroupnames)');
    refused(await update({ affinitygroupids: groupTwo.id, affinitygroupnames: 'one' }), 'updateVMAffinityGroup', 431, 'affinitygroupids parameter is mutually exclusive with affinitygroupnames parameter');
    refused(await update({ affinitygroupids: bobGroup.id }), 'updateVMAffinityGroup', 531, /does not have permission/);
    refused(await update({ affinitygroupids: bobGroup.id }, admin), 'updateVMAffinityGroup', 531, /does not belong to the VM's account/);
    refused(await update({ affinitygroupids: groupTwo.id }, bob.client), 'updateVMAffinityGroup', 531, /does not have permission/);
    refused(
      await alice.client.call('updateVMAffinityGroup', { id: running, affinitygroupids: groupTwo.id }),
      'updateVMAffinityGroup',
      431,
      `Unable update affinity groups of the virtual machine VM[User|${runningVm.instanceName}] in state Running; make sure the virtual machine is stopped and not in an error state before updating.`,
    );
    expect(await snapshot(id, running)).toEqual(state);
    await stopVm(alice, running);
  });
});
