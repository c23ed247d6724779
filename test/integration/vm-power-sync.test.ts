// Power-state sync on the real runtime: an agent's report (recordReport, called as the gateway would)
// moves the VM records to what the hosts run. A VM killed behind Mold's back (its domain gone from the
// report, or reported shut off) shows Stopped in listVirtualMachines after that one report, its host's
// capacity given back, a VM.STOP event "Out of band VM power off" and an ALERT.TYPE.SYNC alert; a
// Stopped VM whose domain runs shows Running there with VM.START "Out of band VM power on" and its
// capacity taken. Transitional VMs, fresh state changes (a report that raced a command), hosts that
// said nothing or could not be reached, other agents' hosts and domains that are not Mold's change
// nothing. VM records, agents and hosts are seeded through the repository.
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HostReport } from '../../shared/agent/protocol.ts';
import { createAgentRecord, type Agent } from '../../shared/db/agents.ts';
import { listAlertRecords } from '../../shared/db/alerts.ts';
import { dynamo } from '../../shared/aws.ts';
import { createHostRecord, getHost, hostKey, type Host } from '../../shared/db/hosts.ts';
import { tableName } from '../../shared/db/items.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { createCluster, createPod, getZone, type Cluster } from '../../shared/db/infrastructure.ts';
import { getVmConsistent, transitionVm, type VirtualMachine } from '../../shared/db/vms.ts';
import { recordReport } from '../../shared/host-reports.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { seedVm } from '../support/vm-seed.ts';
import { ok, startWorld, unique, type World } from './identity-fixtures.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const LONG_AGO = '2020-01-01T00:00:00+0000';
const VM_CPU = 2 * 1000; // cpuNumber × cpuSpeed of every seeded VM
const VM_MEM = 512 * MiB;

let world: World;
let admin: ApiClient;
let owner: Member;
let zone: any;
let offering: any;
let cluster: Cluster;
let agent: Agent;
let otherAgent: Agent;
let hostA: Host;
let hostB: Host;
let full: Host; // no room left
let othersHost: Host; // another agent's

const seedAgent = (name: string) =>
  createAgentRecord({
    id: randomUUID(),
    name,
    zoneId: zone.id,
    certificate: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n',
    certificateSerial: '01',
    certificateExpires: '2099-01-01T00:00:00+0000',
    sshPublicKey: 'ssh-ed25519 AAAA test',
    queueUrl: `http://127.0.0.1/queue/mold-agent-${name}`,
    version: '0.1.0',
  });

const healthy = (host: Host, domains: HostReport['domains'] = []): HostReport => ({
  hostId: host.id,
  reachable: true,
  libvirtd: true,
  memoryTotalBytes: 8 * GiB,
  memoryFreeBytes: 6 * GiB,
  loadAverage: 0.1,
  domains,
});
const report = (...hosts: HostReport[]) => recordReport(agent, { version: '0.1.0', hosts });
const running = (vm: VirtualMachine, state: HostReport['domains'][number]['state'] = 'Running') => ({ name: vm.instanceName, uuid: vm.id, state });

/** A VM in `state` (on `host` when it has one), last changed long ago; the host's capacity taken as a start would. */
async function vmOn(host: Host | undefined, state: VirtualMachine['state'] = 'Running', fields: Partial<VirtualMachine> = {}): Promise<VirtualMachine> {
  const vm = await seedVm(
    { ...owner.account, userId: owner.user.id },
    {
      zoneId: zone.id,
      serviceOfferingId: offering.id,
      templateId: randomUUID(),
      cpuNumber: 2,
      cpuSpeed: 1000,
      memoryMiB: 512,
      state,
      created: LONG_AGO,
      ...(host && { hostId: host.id, podId: host.podId, clusterId: host.clusterId, lastHostId: host.id }),
      ...fields,
    },
  );
  if (host && state !== 'Stopped') await addCapacity(host, VM_CPU, VM_MEM);
  return vm;
}

async function addCapacity(host: Host, cpu: number, mem: number) {
  await dynamo().send(
    new UpdateCommand({
      TableName: tableName(),
      Key: hostKey(host.id),
      UpdateExpression: 'SET cpuallocated = cpuallocated + :cpu, memoryallocated = memoryallocated + :mem',
      ExpressionAttributeValues: { ':cpu': cpu, ':mem': mem },
    }),
  );
}

/** A fresh host of the agent, so that each test's reports judge only its own VMs. */
const agentHosts: Host[] = [];
let nextAddress = 20;
async function newHost(name: string, fields: Partial<Host> = {}): Promise<Host> {
  const host = await createHostRecord(cluster, { name: unique(name), ipaddress: `10.78.0.${nextAddress++}`, agentId: agent.id, lastpinged: new Date().toISOString(), ...fields });
  agentHosts.push(host);
  return host;
}

const listed = async (vm: VirtualMachine, client = admin) => ok(await client.call('listVirtualMachines', { id: vm.id, listall: true }), 'listVirtualMachines').virtualmachine?.[0];
const allocated = async (host: Host) => {
  const shown = ok(await admin.call('listHosts', { id: host.id }), 'listHosts').host[0];
  return { cpu: shown.cpuallocatedvalue, mem: shown.memoryallocatedbytes };
};
const vmEvents = async (vm: VirtualMachine) =>
  (ok(await admin.call('listEvents', { listall: true, resourcetype: 'VirtualMachine', resourceid: vm.id }), 'listEvents').event ?? []).map((e: any) => ({
    type: e.type,
    description: e.description,
    level: e.level,
    state: e.state,
    username: e.username,
    account: e.account,
    domainid: e.domainid,
  }));
const syncAlerts = async (vm: VirtualMachine) => (await listAlertRecords()).filter((alert) => alert.resourceId === vm.id);

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  const root = (await getDomain(world.rootDomainId))!;
  owner = await seedMember(world.runtime.apiUrl, unique('owner'), root, 'User');
  ok(await admin.call('updateConfiguration', { name: 'ping.interval', value: '60' }), 'updateConfiguration');
  zone = ok(await admin.call('createZone', { name: unique('sz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
  offering = ok(await admin.call('createServiceOffering', { name: unique('so'), displaytext: 'Small', cpunumber: 2, cpuspeed: 1000, memory: 512 }), 'createServiceOffering').serviceoffering;
  const pod = await createPod((await getZone(zone.id))!, { name: unique('sp'), allocationstate: 'Enabled' });
  cluster = await createCluster(pod, { name: unique('sc'), allocationstate: 'Enabled', hypervisor: 'KVM' });
  agent = await seedAgent(unique('agent'));
  otherAgent = await seedAgent(unique('other'));
  // 4 × 2000 MHz, 8 GiB (cluster factors 1): already full.
  full = await newHost('kvmf', { cpuallocated: 8000, memoryallocated: 8 * GiB });
  othersHost = await createHostRecord(cluster, { name: unique('kvmo'), ipaddress: '10.78.0.14', agentId: otherAgent.id, lastpinged: new Date().toISOString() });
});
beforeEach(async () => {
  hostA = await newHost('kvma');
  hostB = await newHost('kvmb');
});
afterAll(async () => {
  await world?.runtime.stop();
});

describe('a Running VM whose domain is gone or off', () => {
  it('a VM killed behind Mold’s back (virsh destroy: reported shut off) shows Stopped after one report, capacity released, with event and alert', async () => {
    const keep = await vmOn(hostA);
    const killed = await vmOn(hostA);
    const before = await allocated(hostA);
    expect((await listed(killed)).state).toBe('Running');

    await report(healthy(hostA, [running(keep), running(killed, 'Stopped')]));

    const shown = await listed(killed);
    expect(shown.state).toBe('Stopped');
    expect(shown.hostid).toBeUndefined();
    expect(shown.lastupdated).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$/);
    // The owner sees it Stopped too.
    expect((await listed(killed, owner.client)).state).toBe('Stopped');
    expect((await listed(keep)).state).toBe('Running');
    expect(await allocated(hostA)).toEqual({ cpu: before.cpu - VM_CPU, mem: before.mem - VM_MEM });
    const record = (await getVmConsistent(killed.id))!;
    expect(record.hostId).toBeUndefined();
    expect(record.lastHostId).toBe(hostA.id);

    const root = (await getDomain(world.rootDomainId))!;
    expect(await vmEvents(killed)).toEqual([
      { type: 'VM.STOP', description: 'Out of band VM power off', level: 'INFO', state: 'Completed', username: 'system', account: 'system', domainid: root.id },
    ]);
    const alerts = await syncAlerts(killed);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      type: 27,
      name: 'ALERT.TYPE.SYNC',
      subject: 'VM state sync alert',
      content: `VM ${killed.name}(${killed.instanceName}) state is sync-ed (Running -> Stopped) from out-of-context transition. (host ${hostA.name} reports its domain Stopped)`,
      zoneId: zone.id,
      podId: hostA.podId,
    });
    const listedAlert = ok(await admin.call('listAlerts', { type: 27 }), 'listAlerts').alert.find((a: any) => a.id === alerts[0]!.id);
    expect(listedAlert).toMatchObject({ type: 27, name: 'ALERT.TYPE.SYNC', description: 'VM state sync alert' });

    // The next report changes nothing more.
    await report(healthy(hostA, [running(keep), running(killed, 'Stopped')]));
    expect(await vmEvents(killed)).toHaveLength(1);
    expect(await allocated(hostA)).toEqual({ cpu: before.cpu - VM_CPU, mem: before.mem - VM_MEM });
  });

  it('a VM whose domain is missing from its host’s report (gone, crashed, in shutdown) goes Stopped', async () => {
    const gone = await vmOn(hostB);
    const crashed = await vmOn(hostB);
    const shutting = await vmOn(hostB);
    const before = await allocated(hostB);
    await report(healthy(hostB, [running(crashed, 'Crashed'), running(shutting, 'Shutdown')]));
    for (const vm of [gone, crashed, shutting]) expect((await listed(vm)).state).toBe('Stopped');
    expect(await allocated(hostB)).toEqual({ cpu: before.cpu - 3 * VM_CPU, mem: before.mem - 3 * VM_MEM });
    expect((await syncAlerts(gone))[0]!.content).toMatch(/\(host .* no longer reports its domain\)$/);
  });
});

describe('a Stopped VM whose domain runs', () => {
  it('goes Running on the host that reports it, its capacity taken there, with event and alert', async () => {
    const stopped = await vmOn(undefined, 'Stopped', { lastHostId: hostA.id });
    const before = await allocated(hostB);
    await report(healthy(hostA), healthy(hostB, [running(stopped)]));
    const shown = await listed(stopped);
    expect(shown.state).toBe('Running');
    expect(shown.hostid).toBe(hostB.id);
    const record = (await getVmConsistent(stopped.id))!;
    expect(record).toMatchObject({ hostId: hostB.id, lastHostId: hostB.id, podId: hostB.podId, clusterId: hostB.clusterId });
    expect(await allocated(hostB)).toEqual({ cpu: before.cpu + VM_CPU, mem: before.mem + VM_MEM });
    expect((await vmEvents(stopped)).map((e: any) => [e.type, e.description])).toEqual([['VM.START', 'Out of band VM power on']]);
    expect((await syncAlerts(stopped))[0]!.content).toBe(
      `VM ${stopped.name}(${stopped.instanceName}) state is sync-ed (Stopped -> Running) from out-of-context transition. VM network environment may need to be reset (host ${hostB.name} reports its domain Running).`,
    );
    // Steady from then on.
    await report(healthy(hostB, [running(stopped)]));
    expect(await allocated(hostB)).toEqual({ cpu: before.cpu + VM_CPU, mem: before.mem + VM_MEM });
    expect(await vmEvents(stopped)).toHaveLength(1);
  });

  it('on a host with no room, still records it Running there, takes the capacity (over-committed) and says so in the alert', async () => {
    const stopped = await vmOn(undefined, 'Stopped');
    await report(healthy(full, [running(stopped)]));
    expect((await listed(stopped)).state).toBe('Running');
    expect(await allocated(full)).toEqual({ cpu: 8000 + VM_CPU, mem: 8 * GiB + VM_MEM });
    expect((await syncAlerts(stopped))[0]!.content).toContain(`Host ${full.name} (${full.id}) cannot hold it (${VM_CPU} MHz, ${VM_MEM} bytes): its capacity is over-committed.`);
  });
});

describe('what the sync leaves alone', () => {
  it('transitional VMs, and VMs whose state changed within the grace period (a report that raced a command)', async () => {
    const starting = await vmOn(hostA, 'Starting');
    const stopping = await vmOn(hostA, 'Stopping');
    const migrating = await vmOn(hostA, 'Migrating');
    // Started just now: a report gathered before the domain was started must not stop it.
    const justStarted = await vmOn(undefined, 'Stopped');
    await transitionVm(justStarted.id, ['Stopped'], 'Starting', { hostId: hostA.id });
    await transitionVm(justStarted.id, ['Starting'], 'Running', { lastHostId: hostA.id });
    // Stopped just now: a report gathered before the stop (domain still running) must not start it again.
    const justStopped = await vmOn(hostB);
    await transitionVm(justStopped.id, ['Running'], 'Stopping');
    await transitionVm(justStopped.id, ['Stopping'], 'Stopped', { hostId: undefined, lastHostId: hostB.id });
    const before = { a: await allocated(hostA), b: await allocated(hostB) };

    await report(healthy(hostA, [running(justStopped)]), healthy(hostB));

    expect((await listed(starting)).state).toBe('Starting');
    expect((await listed(stopping)).state).toBe('Stopping');
    expect((await listed(migrating)).state).toBe('Migrating');
    expect((await listed(justStarted)).state).toBe('Running');
    expect((await listed(justStopped)).state).toBe('Stopped');
    expect({ a: await allocated(hostA), b: await allocated(hostB) }).toEqual(before);
    for (const vm of [starting, stopping, migrating, justStarted, justStopped]) expect(await vmEvents(vm)).toEqual([]);
  });

  it('VMs on a host whose report is unhealthy, on a host absent from the report, or on another agent’s host', async () => {
    const unreachable = await vmOn(hostA);
    const silent = await vmOn(hostB);
    const others = await vmOn(othersHost);
    await report({ hostId: hostA.id, reachable: false, error: 'Cannot reach 10.78.0.11:22: connect EHOSTUNREACH', domains: [] }, healthy(othersHost));
    await report({ ...healthy(hostA), libvirtd: false, error: 'error: failed to connect to the hypervisor' });
    for (const vm of [unreachable, silent, others]) expect((await listed(vm)).state).toBe('Running');
    // Its own agent's report is what counts.
    await recordReport(otherAgent, { version: '0.1.0', hosts: [healthy(othersHost)] });
    expect((await listed(others)).state).toBe('Stopped');
  });

  it('domains that are not Mold’s: other names, unknown uuids under instance names, the same uuid under another name', async () => {
    const vm = await vmOn(hostA);
    const stopped = await vmOn(undefined, 'Stopped');
    const before = await allocated(hostA);
    await report(
      healthy(hostA, [
        running(vm),
        { name: 'my-own-guest', uuid: randomUUID(), state: 'Running' },
        { name: 'i-999-999-VM', uuid: randomUUID(), state: 'Running' },
        { name: 'not-the-instance-name', uuid: stopped.id, state: 'Running' },
      ]),
    );
    expect((await listed(vm)).state).toBe('Running');
    expect((await listed(stopped)).state).toBe('Stopped');
    expect(await allocated(hostA)).toEqual(before);
  });

  it('writes only over the VM as read: a command that moved it meanwhile (even back to the same state) wins', async () => {
    const vm = await vmOn(hostA);
    const read = (await getVmConsistent(vm.id))!;
    expect(read.lastUpdated).toBeUndefined();
    // A stop that failed meanwhile: Running -> Stopping -> Running, lastUpdated now set.
    await transitionVm(vm.id, ['Running'], 'Stopping');
    await transitionVm(vm.id, ['Stopping'], 'Running');
    expect(await transitionVm(vm.id, ['Running'], 'Stopped', { hostId: undefined }, { hostId: hostA.id, lastUpdated: read.lastUpdated })).toBeUndefined();
    const now = (await getVmConsistent(vm.id))!;
    expect(now).toMatchObject({ state: 'Running', hostId: hostA.id });
    expect(await transitionVm(vm.id, ['Running'], 'Running', {}, { hostId: hostB.id, lastUpdated: now.lastUpdated })).toBeUndefined();
    expect(await transitionVm(vm.id, ['Running'], 'Running', {}, { hostId: hostA.id, lastUpdated: now.lastUpdated })).toMatchObject({ state: 'Running' });
  });

  it('the report still answers as before', async () => {
    const answer = await report(healthy(hostA), healthy(hostB));
    expect(answer.pingIntervalSeconds).toBe(60);
    expect(answer.hosts.map((h) => h.hostId).sort()).toEqual(agentHosts.map((h) => h.id).sort());
    expect((await getHost(hostA.id))!.status).toBe('Up');
  });
});
