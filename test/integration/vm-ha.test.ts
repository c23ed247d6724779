// VM HA's reconciler (functions/sweeper/ha.ts) on the real runtime, its passes called as the sweeper
// calls them, hosts, agents and VMs seeded through the repository. A Down host whose BMC is not
// configured is never fenced: its HA VM stays Running where it was, with one "Unable to restart" alert
// however many passes, while its non-HA VM goes Stopped (capacity released, upstream's "stopped
// unexpectedly" alert). A Down host whose fence is confirmed (the OFF job succeeded, the BMC read Off)
// has its HA VM released and started again by a system startVirtualMachine job ("HA starting VM"). A
// host that is not Down (Alert: silence alone) is left alone; one Up again loses its fence. An HA VM
// the power-state sync finds stopped is flagged for the same restart. A host in maintenance is never
// fenced. HA maintenance (vm.ha.enabled false, globally or for a zone, through updateConfiguration):
// nothing is fenced, stopped or restarted, what was held back is said once, listFleetStatus shows the
// mode, and once it is on again the passes act on what they then read (a fence from before the pause
// is not used: the host is fenced afresh). deleteHost forced hands the HA VMs of a dead host to HA.
// The storage heartbeat as a peer read it: fresh, a Down host is left alone (cut off, not dead); stale
// past the fence timeout after a fence its BMC did not answer, it is proven dead. Host HA walks a dead
// host through upstream's states to Fenced with one power OFF, and only then are its VMs released; too
// many problem hosts in a cluster (a split) start no activity check.
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../shared/aws.ts';
import { createAgentRecord, type Agent } from '../../shared/db/agents.ts';
import { listAlertRecords } from '../../shared/db/alerts.ts';
import { createHostRecord, getHost, hostKey, updateHostRecord, type Host } from '../../shared/db/hosts.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { createCluster, createPod, getZone, type Cluster } from '../../shared/db/infrastructure.ts';
import { tableName } from '../../shared/db/items.ts';
import { completeJob, createJob, failJob, listJobsUnder } from '../../shared/db/jobs.ts';
import { getVmConsistent, updateVmRecord, type VirtualMachine } from '../../shared/db/vms.ts';
import { recordReport } from '../../shared/host-reports.ts';
import { reconcileHa } from '../../functions/sweeper/ha.ts';
import { systemActor } from '../../shared/bootstrap.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { seedVm } from '../support/vm-seed.ts';
import { until } from '../support/wait.ts';
import { ok, startWorld, unique, type World } from './identity-fixtures.ts';
import type { OobmConfig } from '../../shared/oobm.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const LONG_AGO = '2020-01-01T00:00:00+0000';

let world: World;
let admin: ApiClient;
let owner: Member;
let zone: any;
let offering: any;
let cluster: Cluster;
let agent: Agent;
let nextAddress = 20;

async function newHost(name: string, fields: Partial<Host> = {}): Promise<Host> {
  return createHostRecord(cluster, { name: unique(name), ipaddress: `10.79.0.${nextAddress++}`, agentId: agent.id, lastpinged: LONG_AGO, ...fields });
}

/** A VM Running on `host`, its capacity taken there. */
async function vmOn(host: Host, haEnable: boolean): Promise<VirtualMachine> {
  const vm = await seedVm(
    { ...owner.account, userId: owner.user.id },
    { zoneId: zone.id, serviceOfferingId: offering.id, templateId: randomUUID(), cpuNumber: 1, cpuSpeed: 1000, memoryMiB: 512, state: 'Running', created: LONG_AGO, haEnable, hostId: host.id, podId: host.podId, clusterId: host.clusterId, lastHostId: host.id },
  );
  await dynamo().send(
    new UpdateCommand({ TableName: tableName(), Key: hostKey(host.id), UpdateExpression: 'SET cpuallocated = cpuallocated + :c, memoryallocated = memoryallocated + :m', ExpressionAttributeValues: { ':c': 1000, ':m': 512 * MiB } }),
  );
  return vm;
}

const alertsAbout = async (id: string) => (await listAlertRecords()).filter((a) => a.resourceId === id);

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  const root = (await getDomain(world.rootDomainId))!;
  owner = await seedMember(world.runtime.apiUrl, unique('owner'), root, 'User');
  zone = ok(await admin.call('createZone', { name: unique('haz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
  offering = ok(await admin.call('createServiceOffering', { name: unique('so'), displaytext: 'HA', cpunumber: 1, cpuspeed: 1000, memory: 512, offerha: true }), 'createServiceOffering').serviceoffering;
  const pod = await createPod((await getZone(zone.id))!, { name: unique('hap'), allocationstate: 'Enabled' });
  cluster = await createCluster(pod, { name: unique('hac'), allocationstate: 'Enabled', hypervisor: 'KVM' });
  agent = await createAgentRecord({
    id: randomUUID(),
    name: unique('agent'),
    zoneId: zone.id,
    certificate: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n',
    certificateSerial: '01',
    certificateExpires: '2099-01-01T00:00:00+0000',
    sshPublicKey: 'ssh-ed25519 AAAA test',
    queueUrl: `http://127.0.0.1/queue/mold-agent-x`,
    version: '0.1.0',
  });
});
afterAll(async () => {
  await world?.runtime.stop();
});

describe('VM HA on a Down host', () => {
  it('without out-of-band management: the HA VM stays (one alert), the non-HA VM goes Stopped with its capacity released', async () => {
    const host = await newHost('dead', { status: 'Down' });
    const ha = await vmOn(host, true);
    const plain = await vmOn(host, false);
    await reconcileHa();
    await reconcileHa();

    expect(await getVmConsistent(plain.id)).toMatchObject({ state: 'Stopped', lastHostId: host.id });
    expect((await getVmConsistent(plain.id))!.hostId).toBeUndefined();
    expect((await alertsAbout(plain.id)).map((a) => [a.type, a.subject])).toEqual([[8, `VM (name: ${plain.name}, id: ${plain.number}) stopped unexpectedly on host id:${host.id}, availability zone id:${zone.id}, pod id:${host.podId}`]]);

    expect(await getVmConsistent(ha.id)).toMatchObject({ state: 'Running', hostId: host.id });
    const unable = await alertsAbout(ha.id);
    expect(unable.map((a) => a.type)).toEqual([8]);
    expect(unable[0]!.subject).toMatch(new RegExp(`^Unable to restart ${ha.name} which was running on host name: ${host.name}`));
    expect((await getHost(host.id))!.hafence).toMatchObject({ refused: 'Out-of-band management is disabled or not configured for the host. Aborting Operation.' });
    // Only the HA VM's capacity is still held.
    expect((await getHost(host.id))!.memoryallocated).toBe(512 * MiB);
  });

  it('with a confirmed fence: the HA VM is released and started again by a system job', async () => {
    const host = await newHost('fenced', { status: 'Down' });
    const ha = await vmOn(host, true);
    const actor = await systemActor();
    const fence = await createJob({ cmd: 'issueOutOfBandManagementPowerAction', actor });
    await completeJob(fence.jobid, { outofbandmanagement: { hostid: host.id, powerstate: 'Off', action: 'OFF' } });
    await updateHostRecord(host.id, { hafence: { jobId: fence.jobid, at: new Date().toISOString() }, oobmpowerstate: 'Off' });

    const changes = await reconcileHa();
    expect(changes).toEqual(expect.arrayContaining([{ kind: 'released', hostId: host.id, vmId: ha.id }, { kind: 'restart', vmId: ha.id }]));
    const record = (await getVmConsistent(ha.id))!;
    expect(record.haRestart).toBeUndefined();
    expect(record.lastHostId).toBe(host.id);
    expect((await getHost(host.id))!.memoryallocated).toBe(0);
    expect((await alertsAbout(ha.id)).map((a) => a.subject)).toContain(`HA starting VM: ${ha.name} (${ha.instanceName})`);
    const jobs = await listJobsUnder(actor.domainTree, actor.accountId);
    expect(jobs.some((j) => j.cmd === 'startVirtualMachine' && j.jobinstanceid === ha.id)).toBe(true);
  });

  it('a pending fence is not a fence: nothing is released', async () => {
    const host = await newHost('fencing', { status: 'Down' });
    const ha = await vmOn(host, true);
    const pending = await createJob({ cmd: 'issueOutOfBandManagementPowerAction', actor: await systemActor() });
    await updateHostRecord(host.id, { hafence: { jobId: pending.jobid, at: new Date().toISOString() } });
    await reconcileHa();
    expect(await getVmConsistent(ha.id)).toMatchObject({ state: 'Running', hostId: host.id });
  });
});

describe('hosts that are not Down', () => {
  it('an Alert host (silence alone) is left alone; an Up host loses its fence', async () => {
    const silent = await newHost('silent', { status: 'Alert' });
    const ha = await vmOn(silent, true);
    const plain = await vmOn(silent, false);
    const back = await newHost('back', { status: 'Up', hafence: { jobId: randomUUID(), at: LONG_AGO } });
    await reconcileHa();
    expect((await getVmConsistent(ha.id))!.state).toBe('Running');
    expect((await getVmConsistent(plain.id))!.state).toBe('Running');
    expect((await getHost(silent.id))!.hafence).toBeUndefined();
    expect((await getHost(back.id))!.hafence).toBeUndefined();
  });
});

describe('an HA VM found stopped by its host’s own report', () => {
  it('is flagged for an HA restart', async () => {
    const host = await newHost('alive', { status: 'Up', lastpinged: new Date().toISOString() });
    const ha = await vmOn(host, true);
    await recordReport(agent, { version: '0.1.0', hosts: [{ hostId: host.id, reachable: true, libvirtd: true, memoryTotalBytes: 8 * GiB, memoryFreeBytes: 6 * GiB, loadAverage: 0.1, domains: [] }] });
    expect(await getVmConsistent(ha.id)).toMatchObject({ state: 'Stopped', haRestart: true });
  });
});

/** A BMC configured and enabled (its password sealed to nobody: no test here lets the agent use it). */
const BMC: OobmConfig = {
  driver: 'ipmitool',
  address: '10.79.9.1',
  port: '623',
  username: 'admin',
  password: { alg: 'RSA-OAEP-256+A256GCM', key: 'k', iv: 'i', tag: 't', data: 'd' },
  enabled: true,
};

const fenceJobsOf = async (hostId: string) => {
  const actor = await systemActor();
  return (await listJobsUnder(actor.domainTree, actor.accountId)).filter((j) => j.cmd === 'issueOutOfBandManagementPowerAction' && j.jobinstanceid === hostId);
};
const startJobsOf = async (vmId: string) => {
  const actor = await systemActor();
  return (await listJobsUnder(actor.domainTree, actor.accountId)).filter((j) => j.cmd === 'startVirtualMachine' && j.jobinstanceid === vmId);
};
const setHa = async (value: boolean, zoneid?: string) =>
  ok(await admin.call('updateConfiguration', { name: 'vm.ha.enabled', value: String(value), ...(zoneid && { zoneid }) }), 'updateConfiguration');
const fleetZone = async (zoneid: string) => ok(await admin.call('listFleetStatus', { zoneid }), 'listFleetStatus').fleetstatus[0];

describe('a host in maintenance', () => {
  it('is never fenced, BMC or not: its HA VM stays, one alert says why; its non-HA VM goes Stopped', async () => {
    for (const resourcestate of ['Maintenance', 'PrepareForMaintenance', 'ErrorInPrepareForMaintenance'] as const) {
      const host = await newHost('maint', { status: 'Down', resourcestate, oobm: BMC });
      const ha = await vmOn(host, true);
      const plain = await vmOn(host, false);
      await reconcileHa();
      await reconcileHa();
      expect(await getVmConsistent(ha.id)).toMatchObject({ state: 'Running', hostId: host.id });
      expect((await getVmConsistent(plain.id))!.state).toBe('Stopped');
      expect((await getHost(host.id))!.hafence).toMatchObject({ refused: `the host is in ${resourcestate}: a host in maintenance is never fenced` });
      expect(await fenceJobsOf(host.id)).toEqual([]);
      const alerts = await alertsAbout(ha.id);
      expect(alerts.map((a) => a.subject)).toEqual([expect.stringMatching(new RegExp(`^Unable to restart ${ha.name} which was running on host`))]);
      expect(alerts[0]!.content).toContain('a host in maintenance is never fenced');
      expect((await fleetZone(zone.id)).host.find((h: any) => h.id === host.id).hafencerefused).toBe(`the host is in ${resourcestate}: a host in maintenance is never fenced`);
    }
  });
});

describe('HA maintenance (vm.ha.enabled)', () => {
  // A failed test must not leave the rest of the file in HA maintenance.
  afterEach(() => setHa(true));
  it('global: holds every fence, stop and restart, says so once, shows it; when on again HA acts on what it then reads', async () => {
    // Before the pause: a Down host fenced (OFF confirmed), a second Down host not yet fenced, and an HA
    // VM flagged for a restart.
    const fenced = await newHost('prefenced', { status: 'Down', oobm: BMC });
    const fencedHa = await vmOn(fenced, true);
    const fencedPlain = await vmOn(fenced, false);
    const before = await createJob({ cmd: 'issueOutOfBandManagementPowerAction', actor: await systemActor() });
    await completeJob(before.jobid, { outofbandmanagement: { hostid: fenced.id, powerstate: 'Off', action: 'OFF' } });
    await updateHostRecord(fenced.id, { hafence: { jobId: before.jobid, at: new Date().toISOString() } });
    const unfenced = await newHost('unfenced', { status: 'Down', oobm: BMC });
    const unfencedHa = await vmOn(unfenced, true);
    const alive = await newHost('alive', { status: 'Up', lastpinged: new Date().toISOString() });
    const flagged = await vmOn(alive, true);
    await dynamo().send(
      new UpdateCommand({ TableName: tableName(), Key: { pk: `VM#${flagged.id}`, sk: 'VM' }, UpdateExpression: 'SET #s = :s, haRestart = :t REMOVE hostId, gsi2pk, gsi2sk', ExpressionAttributeNames: { '#s': 'state' }, ExpressionAttributeValues: { ':s': 'Stopped', ':t': true } }),
    );
    const crashing = await vmOn(alive, true);

    await setHa(false);
    const zoneView = await fleetZone(zone.id);
    expect(zoneView).toMatchObject({ vmhaenabled: false, hamaintenance: 'Global', globalhamaintenance: true });

    const first = await reconcileHa();
    const second = await reconcileHa();
    expect(first.filter((c) => c.kind !== 'held' && c.kind !== 'cleared')).toEqual([]);
    expect(first).toEqual(expect.arrayContaining([{ kind: 'held', hostId: fenced.id }, { kind: 'held', hostId: unfenced.id }, { kind: 'held', vmId: flagged.id }]));
    expect(second.filter((c) => c.kind !== 'cleared')).toEqual([]);
    // Nothing moved: VMs where they ran, the flagged VM still Stopped and flagged, no fence, no start.
    expect(await getVmConsistent(fencedHa.id)).toMatchObject({ state: 'Running', hostId: fenced.id });
    expect(await getVmConsistent(fencedPlain.id)).toMatchObject({ state: 'Running', hostId: fenced.id });
    expect(await getVmConsistent(unfencedHa.id)).toMatchObject({ state: 'Running', hostId: unfenced.id });
    expect(await getVmConsistent(flagged.id)).toMatchObject({ state: 'Stopped', haRestart: true });
    expect(await fenceJobsOf(unfenced.id)).toEqual([]);
    expect(await startJobsOf(flagged.id)).toEqual([]);
    // Said once each: the fence from before the pause is forgotten.
    const fencedRecord = (await getHost(fenced.id))!.hafence!;
    expect(fencedRecord.jobId).toBeUndefined();
    expect(fencedRecord.held).toBe('VM HA is held (vm.ha.enabled is false): it would stop 1 VM(s) that are not HA-enabled, restart 1 HA VM(s) on another host');
    expect((await getHost(unfenced.id))!.hafence!.held).toBe('VM HA is held (vm.ha.enabled is false): it would fence the host through its BMC to restart its HA VMs elsewhere');
    const hostAlerts = (await alertsAbout(fenced.id)).filter((a) => a.type === 7);
    expect(hostAlerts.map((a) => a.subject)).toEqual([expect.stringMatching(/^Unable to schedule restart for VMs on host name: .*, VM high availability manager is disabled\.$/)]);
    expect(hostAlerts[0]!.content).toMatch(/VM high availability manager is disabled\. VM HA is held \(vm\.ha\.enabled is false\): it would stop 1 VM\(s\) that are not HA-enabled, restart 1 HA VM\(s\) on another host\.$/);
    expect((await alertsAbout(flagged.id)).map((a) => a.subject)).toEqual([`Unable to schedule restart for the VM ${flagged.name} (${flagged.number}), VM high availability manager is disabled.`]);
    expect((await fleetZone(zone.id)).host.find((h: any) => h.id === unfenced.id).haheld).toMatch(/^VM HA is held/);

    // An HA VM that stops during the pause (its host's report lacks it) is Stopped, not flagged: not
    // started behind the operator's back when the pause ends.
    await recordReport(agent, { version: '0.1.0', hosts: [{ hostId: alive.id, reachable: true, libvirtd: true, memoryTotalBytes: 8 * GiB, memoryFreeBytes: 6 * GiB, loadAverage: 0.1, domains: [] }] });
    const crashed = (await getVmConsistent(crashing.id))!;
    expect(crashed.state).toBe('Stopped');
    expect(crashed.haRestart).toBeUndefined();
    expect((await alertsAbout(crashing.id)).map((a) => a.subject)).toContain(`Unable to schedule restart for the VM ${crashing.name} (${crashing.number}), VM high availability manager is disabled.`);

    // On again: the passes act on what they read now.
    await setHa(true);
    expect(await fleetZone(zone.id)).toMatchObject({ vmhaenabled: true, hamaintenance: 'None', globalhamaintenance: false });
    const after = await reconcileHa();
    // The pre-pause fence is not used: the host is fenced afresh before its HA VM moves; its non-HA VM is stopped now.
    expect(after).toEqual(expect.arrayContaining([{ kind: 'fence', hostId: fenced.id }, { kind: 'stopped', hostId: fenced.id, vmId: fencedPlain.id }, { kind: 'fence', hostId: unfenced.id }, { kind: 'restart', vmId: flagged.id }]));
    expect(after).not.toContainEqual(expect.objectContaining({ vmId: fencedHa.id }));
    expect(after).not.toContainEqual(expect.objectContaining({ vmId: crashing.id }));
    expect(await getVmConsistent(fencedHa.id)).toMatchObject({ state: 'Running', hostId: fenced.id });
    const refence = (await getHost(fenced.id))!.hafence!;
    expect(refence.jobId).toBeDefined();
    expect(refence.jobId).not.toBe(before.jobid);
    expect(await fenceJobsOf(unfenced.id)).toHaveLength(1);
    expect(await startJobsOf(flagged.id)).toHaveLength(1);
    expect((await getVmConsistent(flagged.id))!.haHeld).toBeUndefined();
  });

  it('zone-wide: a zone whose own value is false is held while another zone acts; the zone value wins over the global one', async () => {
    const other = ok(await admin.call('createZone', { name: unique('haz2'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
    const pod2 = await createPod((await getZone(other.id))!, { name: unique('hap2'), allocationstate: 'Enabled' });
    const cluster2 = await createCluster(pod2, { name: unique('hac2'), allocationstate: 'Enabled', hypervisor: 'KVM' });
    const heldHost = await createHostRecord(cluster2, { name: unique('zheld'), ipaddress: `10.79.2.${nextAddress++}`, agentId: agent.id, lastpinged: LONG_AGO, status: 'Down', oobm: BMC });
    const heldVm = await seedVm(
      { ...owner.account, userId: owner.user.id },
      { zoneId: other.id, serviceOfferingId: offering.id, templateId: randomUUID(), cpuNumber: 1, cpuSpeed: 1000, memoryMiB: 512, state: 'Running', created: LONG_AGO, haEnable: false, hostId: heldHost.id, podId: heldHost.podId, clusterId: heldHost.clusterId, lastHostId: heldHost.id },
    );
    const acting = await newHost('zacting', { status: 'Down' });
    const actingVm = await vmOn(acting, false);

    await setHa(false, other.id);
    expect(await fleetZone(other.id)).toMatchObject({ vmhaenabled: false, hamaintenance: 'Zone', globalhamaintenance: false });
    expect(await fleetZone(zone.id)).toMatchObject({ vmhaenabled: true, hamaintenance: 'None' });
    const changes = await reconcileHa();
    expect(changes).toEqual(expect.arrayContaining([{ kind: 'held', hostId: heldHost.id }, { kind: 'stopped', hostId: acting.id, vmId: actingVm.id }]));
    expect((await getVmConsistent(heldVm.id))!.state).toBe('Running');

    // Global off, the zone's own true: the zone acts (upstream's valueIn: the zone's value wins).
    await setHa(false);
    await setHa(true, other.id);
    expect(await fleetZone(other.id)).toMatchObject({ vmhaenabled: true, hamaintenance: 'None', globalhamaintenance: true });
    expect(await fleetZone(zone.id)).toMatchObject({ vmhaenabled: false, hamaintenance: 'Global' });
    const resumed = await reconcileHa();
    expect(resumed).toContainEqual({ kind: 'stopped', hostId: heldHost.id, vmId: heldVm.id });
    await setHa(true);
  });
});

describe('deleteHost forced', () => {
  afterEach(() => setHa(true));
  it('on a dead host: its Running HA VM is handed to HA (restarted by the next pass), its other VMs stopped, with events', async () => {
    for (const status of ['Down', 'Alert', 'Disconnected'] as const) {
      const host = await newHost('gone', { status });
      const ha = await vmOn(host, true);
      const plain = await vmOn(host, false);
      ok(await admin.call('deleteHost', { id: host.id, forced: true }), 'deleteHost');
      expect(await getHost(host.id)).toBeUndefined();
      expect(await getVmConsistent(plain.id)).toMatchObject({ state: 'Stopped' });
      expect((await getVmConsistent(plain.id))!.haRestart).toBeUndefined();
      const handed = (await getVmConsistent(ha.id))!;
      expect(handed).toMatchObject({ state: 'Stopped', haRestart: true });
      expect(handed.hostId).toBeUndefined();
      const events = ok(await admin.call('listEvents', { type: 'VM.STOP', listall: true, pagesize: -1 }), 'listEvents').event as any[];
      const about = (id: string) => events.find((e) => e.resourceid === id)?.description;
      expect(about(ha.id)).toBe(`Successfully completed stopping Vm. Vm Id: ${ha.id} as a part of deleteHost id=${host.id}: handed to HA, to be started on another host`);
      expect(about(plain.id)).toBe(`Successfully completed stopping Vm. Vm Id: ${plain.id} as a part of deleteHost id=${host.id}`);
      const changes = await reconcileHa();
      expect(changes).toContainEqual({ kind: 'restart', vmId: ha.id });
      expect(changes).not.toContainEqual(expect.objectContaining({ vmId: plain.id }));
      expect(await startJobsOf(ha.id)).toHaveLength(1);
      expect((await alertsAbout(ha.id)).map((a) => a.subject)).toContain(`HA starting VM: ${ha.name} (${ha.instanceName})`);
    }
  });

  it('on a host that answers, or in HA maintenance: the HA VM is stopped, not handed to HA, and the event says why', async () => {
    const up = await newHost('answers', { status: 'Up', lastpinged: new Date().toISOString() });
    const upHa = await vmOn(up, true);
    ok(await admin.call('deleteHost', { id: up.id, forced: true }), 'deleteHost');
    expect((await getVmConsistent(upHa.id))!.haRestart).toBeUndefined();

    await setHa(false);
    const down = await newHost('pausedgone', { status: 'Down' });
    const downHa = await vmOn(down, true);
    ok(await admin.call('deleteHost', { id: down.id, forced: true }), 'deleteHost');
    expect(await getVmConsistent(downHa.id)).toMatchObject({ state: 'Stopped' });
    expect((await getVmConsistent(downHa.id))!.haRestart).toBeUndefined();
    expect((await alertsAbout(downHa.id)).map((a) => a.subject)).toEqual([`Unable to schedule restart for the VM ${downHa.name} (${downHa.number}), VM high availability manager is disabled.`]);
    await setHa(true);

    const events = ok(await admin.call('listEvents', { type: 'VM.STOP', listall: true, pagesize: -1 }), 'listEvents').event as any[];
    const about = (id: string) => events.find((e) => e.resourceid === id)?.description;
    expect(about(upHa.id)).toBe(`Successfully completed stopping Vm. Vm Id: ${upHa.id} as a part of deleteHost id=${up.id}: not handed to HA, the host is Up: its domain may run until the agent forgets the host, so it is not restarted elsewhere`);
    expect(about(downHa.id)).toBe(`Successfully completed stopping Vm. Vm Id: ${downHa.id} as a part of deleteHost id=${down.id}: not handed to HA, VM high availability manager is disabled (vm.ha.enabled is false)`);
    const changes = await reconcileHa();
    expect(changes).not.toContainEqual(expect.objectContaining({ vmId: upHa.id }));
    expect(changes).not.toContainEqual(expect.objectContaining({ vmId: downHa.id }));
  });
});

describe('the storage heartbeat, as a healthy peer of the cluster read it', () => {
  /** A fresh cluster with one Up peer whose last report read `ages`. */
  async function clusterWithPeer(label: string) {
    const pod = await createPod((await getZone(zone.id))!, { name: unique(`${label}p`), allocationstate: 'Enabled' });
    const own = await createCluster(pod, { name: unique(`${label}c`), allocationstate: 'Enabled', hypervisor: 'KVM' });
    const add = (name: string, fields: Partial<Host>) => createHostRecord(own, { name: unique(name), ipaddress: `10.79.3.${nextAddress++}`, agentId: agent.id, lastpinged: LONG_AGO, ...fields });
    return { add, read: (peer: Host, ages: Record<string, number>) => updateHostRecord(peer.id, { heartbeats: { at: new Date().toISOString(), ages } }) };
  }

  it('a Down host still writing it is cut off, not dead: nothing is stopped, fenced or restarted, and that is said once', async () => {
    const { add, read } = await clusterWithPeer('cut');
    const host = await add('cut', { status: 'Down', oobm: BMC });
    const peer = await add('peer', { status: 'Up' });
    const ha = await vmOn(host, true);
    const plain = await vmOn(host, false);
    await read(peer, { [host.id]: 3 });
    const first = await reconcileHa();
    await reconcileHa();
    expect(first).toContainEqual({ kind: 'spared', hostId: host.id });
    expect(await getVmConsistent(ha.id)).toMatchObject({ state: 'Running', hostId: host.id });
    expect(await getVmConsistent(plain.id)).toMatchObject({ state: 'Running', hostId: host.id });
    expect(await fenceJobsOf(host.id)).toEqual([]);
    expect((await getHost(host.id))!.hafence?.spared).toContain('still writes its storage heartbeat (3 s old');
    expect((await alertsAbout(host.id)).map((a) => a.subject)).toEqual([expect.stringMatching(/is unreachable but alive: HA fences nothing and restarts none of its VMs$/)]);
    const seen = (await fleetZone(zone.id)).host.find((h: any) => h.id === host.id);
    expect(seen).toMatchObject({ storageheartbeatage: 3, haspared: expect.stringContaining('cut off from the agent, not dead') });
  });

  it('a host whose fence its BMC did not answer, read dead after the fence began, is proven dead: its HA VM is released and restarted', async () => {
    const { add, read } = await clusterWithPeer('lost');
    const host = await add('lost', { status: 'Down', oobm: BMC });
    const peer = await add('peer', { status: 'Up' });
    const ha = await vmOn(host, true);
    const failed = await createJob({ cmd: 'issueOutOfBandManagementPowerAction', actor: await systemActor() });
    await failJob(failed.jobid, 530, 'the BMC did not answer');
    await updateHostRecord(host.id, { hafence: { jobId: failed.jobid, at: new Date(Date.now() - 1000).toISOString() } });
    // Stale, but not past kvm.ha.fence.timeout (60) + 3 periods: no proof yet.
    await read(peer, { [host.id]: 70 });
    await reconcileHa();
    expect(await getVmConsistent(ha.id)).toMatchObject({ state: 'Running', hostId: host.id });
    await read(peer, { [host.id]: 76 });
    const changes = await reconcileHa();
    expect(changes).toEqual(expect.arrayContaining([{ kind: 'released', hostId: host.id, vmId: ha.id }, { kind: 'restart', vmId: ha.id }]));
    expect((await alertsAbout(ha.id)).map((a) => [a.type, a.subject])).toContainEqual([30, expect.stringMatching(new RegExp(`^HA restarting VM ${ha.name} \\(id: ${ha.number}\\) of host .*: the host is proven dead without its BMC$`))]);
  });
});

describe('host HA (a host with HA configured and enabled)', () => {
  it('walks a dead host Available → Suspect → Checking → Recovering → Fencing (one power OFF) → Fenced, and only then are its VMs released', async () => {
    const pod = await createPod((await getZone(zone.id))!, { name: unique('hhap'), allocationstate: 'Enabled' });
    const own = await createCluster(pod, { name: unique('hhac'), allocationstate: 'Enabled', hypervisor: 'KVM' });
    const add = (name: string, fields: Partial<Host>) => createHostRecord(own, { name: unique(name), ipaddress: `10.79.4.${nextAddress++}`, agentId: agent.id, lastpinged: LONG_AGO, ...fields });
    const unreachable = () => ({ reachable: false, error: 'no route to host', at: new Date().toISOString() });
    const host = await add('hha', { status: 'Alert', oobm: BMC, ha: { provider: 'kvmhaprovider', enabled: true, state: 'Available', since: LONG_AGO }, lastreport: unreachable() });
    // Three healthy peers: one problem host in four is under upstream's accepted 0.3.
    const peers = await Promise.all([1, 2, 3].map((i) => add(`peer${i}`, { status: 'Up' })));
    const ha = await vmOn(host, true);
    const plain = await vmOn(host, false);
    const states: string[] = [];
    for (let pass = 0; pass < 4; pass++) {
      await updateHostRecord(peers[0]!.id, { heartbeats: { at: new Date().toISOString(), ages: { [host.id]: 200 } } });
      await updateHostRecord(host.id, { lastreport: unreachable() });
      await reconcileHa();
      states.push((await getHost(host.id))!.ha!.state!);
    }
    expect(states).toEqual(['Suspect', 'Checking', 'Recovering', 'Fencing']);
    const fences = await fenceJobsOf(host.id);
    expect(fences).toHaveLength(1);
    // Not Fenced until the BMC answers: the VMs stay.
    expect(await getVmConsistent(ha.id)).toMatchObject({ state: 'Running', hostId: host.id });
    expect(await getVmConsistent(plain.id)).toMatchObject({ state: 'Running', hostId: host.id });
    // The OFF succeeds, the BMC reads Off (a job the test completes stands for the one no agent here
    // runs): Fenced, and the VMs go.
    const off = await createJob({ cmd: 'issueOutOfBandManagementPowerAction', actor: await systemActor() });
    await completeJob(off.jobid, { outofbandmanagement: { hostid: host.id, powerstate: 'Off', action: 'OFF' } });
    await updateHostRecord(host.id, { hafence: { ...(await getHost(host.id))!.hafence!, jobId: off.jobid } });
    await reconcileHa();
    expect((await getHost(host.id))!.ha!.state).toBe('Fenced');
    await reconcileHa();
    expect((await getVmConsistent(plain.id))!.state).toBe('Stopped');
    expect((await getVmConsistent(ha.id))!.lastHostId).toBe(host.id);
    expect(await startJobsOf(ha.id)).toHaveLength(1);
    const events = ok(await admin.call('listEvents', { type: 'HOST.HA.STATE.TRANSITION', listall: true, pagesize: 100 }), 'listEvents').event.filter((e: any) => e.description.includes(host.id));
    expect(events.map((e: any) => /to (\w+) on event/.exec(e.description)![1]).reverse()).toEqual(['Suspect', 'Checking', 'Recovering', 'Fencing', 'Fenced']);
  });

  it('with more problem hosts in the cluster than kvm.ha.accepted.problematic.hosts.ratio allows (a network split), starts no activity check, so fences no one', async () => {
    const pod = await createPod((await getZone(zone.id))!, { name: unique('splitp'), allocationstate: 'Enabled' });
    const own = await createCluster(pod, { name: unique('splitc'), allocationstate: 'Enabled', hypervisor: 'KVM' });
    const add = (name: string, fields: Partial<Host>) => createHostRecord(own, { name: unique(name), ipaddress: `10.79.5.${nextAddress++}`, agentId: agent.id, lastpinged: LONG_AGO, ...fields });
    const unreachable = { reachable: false, error: 'no route to host', at: new Date().toISOString() };
    const host = await add('split', { status: 'Alert', oobm: BMC, ha: { provider: 'kvmhaprovider', enabled: true, state: 'Suspect', since: LONG_AGO }, lastreport: unreachable });
    await add('other', { status: 'Alert' });
    await add('up', { status: 'Up', heartbeats: { at: new Date().toISOString(), ages: {} } });
    await reconcileHa();
    await reconcileHa();
    expect((await getHost(host.id))!.ha!.state).toBe('Suspect');
    expect(await fenceJobsOf(host.id)).toEqual([]);
  });
});

describe('an HA restart that fails', () => {
  it('is queued again after restart.retry.interval, and given up (with an alert) after max.retries starts', async () => {
    // A zone of its own whose only host is dead: no start can find a host.
    const lone = ok(await admin.call('createZone', { name: unique('retryz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
    const pod = await createPod((await getZone(lone.id))!, { name: unique('retryp'), allocationstate: 'Enabled' });
    const own = await createCluster(pod, { name: unique('retryc'), allocationstate: 'Enabled', hypervisor: 'KVM' });
    const host = await createHostRecord(own, { name: unique('retryh'), ipaddress: `10.79.6.${nextAddress++}`, agentId: agent.id, lastpinged: LONG_AGO, status: 'Down' });
    const vm = await seedVm(
      { ...owner.account, userId: owner.user.id },
      { zoneId: lone.id, serviceOfferingId: offering.id, templateId: randomUUID(), cpuNumber: 1, cpuSpeed: 1000, memoryMiB: 512, state: 'Stopped', created: LONG_AGO, haEnable: true, podId: host.podId, clusterId: host.clusterId, lastHostId: host.id },
    );
    await updateVmRecord(vm.id, { haRestart: true });
    await ok(await admin.call('updateConfiguration', { name: 'restart.retry.interval', value: '3600', clusterid: own.id }), 'updateConfiguration');
    await ok(await admin.call('updateConfiguration', { name: 'max.retries', value: '2', clusterid: own.id }), 'updateConfiguration');
    const settled = (what: string) => until(what, () => getVmConsistent(vm.id), (v) => v!.state === 'Stopped' && !v!.haStarting, { within: 60_000 });

    expect(await reconcileHa()).toContainEqual({ kind: 'restart', vmId: vm.id });
    let after = (await settled('the first HA start to fail'))!;
    expect(after).toMatchObject({ haRestart: true, haAttempts: 1 });
    expect(Date.parse(after.haRetryAfter!)).toBeGreaterThan(Date.now() + 3000_000);
    // Not before its time.
    expect(await reconcileHa()).not.toContainEqual({ kind: 'restart', vmId: vm.id });

    await ok(await admin.call('updateConfiguration', { name: 'restart.retry.interval', value: '0', clusterid: own.id }), 'updateConfiguration');
    await updateVmRecord(vm.id, { haRetryAfter: new Date(Date.now() - 1000).toISOString() });
    expect(await reconcileHa()).toContainEqual({ kind: 'restart', vmId: vm.id });
    after = (await settled('the second HA start to fail'))!;
    expect(after.haRestart).toBeUndefined();
    expect(after.haAttempts).toBeUndefined();
    expect(await reconcileHa()).not.toContainEqual({ kind: 'restart', vmId: vm.id });
    const subjects = (await alertsAbout(vm.id)).map((a) => a.subject);
    expect(subjects).toContainEqual(expect.stringMatching(new RegExp(`^HA could not restart VM ${vm.name} \\(id: ${vm.number}\\): start 1 failed, trying again at `)));
    expect(subjects).toContain(`Unable to restart ${vm.name} which was running on host id:${host.id}`);
  });
});
