// VM HA's reconciler (functions/sweeper/ha.ts) on the real runtime, its passes called as the sweeper
// calls them, hosts, agents and VMs seeded through the repository. A Down host whose BMC is not
// configured is never fenced: its HA VM stays Running where it was, with one "Unable to restart" alert
// however many passes, while its non-HA VM goes Stopped (capacity released, upstream's "stopped
// unexpectedly" alert). A Down host whose fence is confirmed (the OFF job succeeded, the BMC read Off)
// has its HA VM released and started again by a system startVirtualMachine job ("HA starting VM"). A
// host that is not Down (Alert: silence alone) is left alone; one Up again loses its fence. An HA VM
// the power-state sync finds stopped is flagged for the same restart.
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../shared/aws.ts';
import { createAgentRecord, type Agent } from '../../shared/db/agents.ts';
import { listAlertRecords } from '../../shared/db/alerts.ts';
import { createHostRecord, getHost, hostKey, updateHostRecord, type Host } from '../../shared/db/hosts.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { createCluster, createPod, getZone, type Cluster } from '../../shared/db/infrastructure.ts';
import { tableName } from '../../shared/db/items.ts';
import { completeJob, createJob, listJobsUnder } from '../../shared/db/jobs.ts';
import { getVmConsistent, type VirtualMachine } from '../../shared/db/vms.ts';
import { recordReport } from '../../shared/host-reports.ts';
import { reconcileHa } from '../../functions/sweeper/ha.ts';
import { systemActor } from '../../shared/bootstrap.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { seedVm } from '../support/vm-seed.ts';
import { ok, startWorld, unique, type World } from './identity-fixtures.ts';

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
