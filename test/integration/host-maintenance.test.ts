// prepareHostForMaintenance and cancelHostMaintenance through /client/api and the real
// host-maintenance state machine (with vm-migrate as its child), the test playing the zone's agent.
// Four hosts of one cluster: A holds three Running VMs and a Stopped one's last host; B and C take
// them; D is empty (straight to Maintenance, then deleted). Bad input is refused at once and changes
// nothing; a host whose VMs have nowhere to go ends in ErrorInPrepareForMaintenance with an event
// and an alert per VM, every VM still Running where it was.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHost, updateHostRecord, type Host } from '../../shared/db/hosts.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { getVmConsistent } from '../../shared/db/vms.ts';
import { addPlayedHost, playedVmChecks, seedPlayedZone, type PlayedZone } from '../support/played-zone.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { patience } from '../support/wait.ts';
import type { CommandMessage } from '../../shared/agent/protocol.ts';
import { answer, receiveCommand } from '../support/agent-seed.ts';
import { noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';

let world: World;
let played: PlayedZone;
let admin: ApiClient;
let alice: Member;
let hostA: Host;
let hostB: Host;
let hostC: Host;
let hostD: Host;
let offering: any;
const running: any[] = [];
let stopped: any;

const { jobCount, begin, agentAnswers, deployed } = playedVmChecks(() => admin, () => played);

const state = async (host: Host) => (await getHost(host.id))!.resourcestate;
const migrated = (message: CommandMessage) => ({ result: { name: (message.payload as any).name, state: 'Running', vncPort: 5909 } });

const addHost = (name: string, octet: number) => addPlayedHost(played.cluster.id, played.seeded, { name: unique(name), ipaddress: `10.90.0.${octet}` });

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  alice = await seedMember(world.runtime.apiUrl, unique('alice'), (await getDomain(world.rootDomainId))!, 'User');
  played = await seedPlayedZone(admin, 90);
  hostA = played.host as Host;
  hostB = await addHost('kvm-b', 12);
  hostC = await addHost('kvm-c', 13);
  hostD = await addHost('kvm-d', 14);
  offering = ok(await admin.call('createServiceOffering', { name: unique('small'), displaytext: 'small', cpunumber: 1, cpuspeed: 500, memory: 512 }), 'createServiceOffering').serviceoffering;
  for (let i = 0; i < 4; i++) {
    running.push(await deployed({ zoneid: played.zone.id, serviceofferingid: offering.id, templateid: played.template.id, hostid: hostA.id, account: alice.account.name, domainid: world.rootDomainId }));
  }
  // The fourth is stopped: A stays its last host until A prepares for maintenance.
  stopped = running.pop();
  const stop = await begin(admin, 'stopVirtualMachine', { id: stopped.id, forced: true });
  await agentAnswers('stopVm', { result: { name: stopped.instancename, state: 'Stopped', forced: true } });
  expect((await admin.waitForJob(stop.jobid)).jobstatus).toBe(1);
  expect((await getVmConsistent(stopped.id))!.lastHostId).toBe(hostA.id);
}, patience(180_000));

afterAll(async () => {
  await world?.runtime.stop();
});

describe('bad input', () => {
  it('refuses a caller that is not an admin, an unknown host and a cancel of a host not in maintenance with upstream\'s codes and texts, changing nothing', async () => {
    const jobs = await jobCount();
    for (const command of ['prepareHostForMaintenance', 'cancelHostMaintenance']) {
      refused(await alice.client.call(command, { id: hostA.id }), command, 432, 'The given command does not exist or it is not available for user');
      const unknown = randomUUID();
      refused(await admin.call(command, { id: unknown }), command, 431, noEntity(command.toLowerCase(), 'id', unknown));
      refused(await admin.call(command, {}), command, 431, /id/);
    }
    refused(await admin.call('cancelHostMaintenance', { id: hostA.id }), 'cancelHostMaintenance', 530, `Cannot perform cancelMaintenance when resource state is Enabled, hostId = ${hostA.id}`);
    await updateHostRecord(hostD.id, { resourcestate: 'Disabled' });
    try {
      refused(await admin.call('prepareHostForMaintenance', { id: hostD.id }), 'prepareHostForMaintenance', 530, /^Failed to prepare host for maintenance due to: Cannot transit resource state of Host .* to Maintenance/);
    } finally {
      await updateHostRecord(hostD.id, { resourcestate: 'Enabled' });
    }
    expect(await jobCount()).toBe(jobs);
    for (const host of [hostA, hostB, hostC, hostD]) expect(await state(host)).toBe('Enabled');
  });
});

describe('prepareHostForMaintenance', () => {
  it('live-migrates every Running VM away, several at once, and the host ends in Maintenance; the Stopped VM forgets it', async () => {
    const prepared = await begin(admin, 'prepareHostForMaintenance', { id: hostA.id });
    // All three migrations are under way before any ends (host.maintenance.parallel.migrations is 4).
    const messages: CommandMessage[] = [];
    for (let i = 0; i < running.length; i++) messages.push(await receiveCommand(played.seeded.agent.queueUrl));
    expect(messages.map((m) => m.type)).toEqual(['migrateVm', 'migrateVm', 'migrateVm']);
    expect(new Set(messages.map((m) => (m.payload as any).name))).toEqual(new Set(running.map((vm) => vm.instancename)));
    for (const message of messages) expect((message.payload as any).target.hostId).not.toBe(hostA.id);
    expect(await state(hostA)).toBe('PrepareForMaintenance');
    for (const vm of running) expect((await getVmConsistent(vm.id))!.state).toBe('Migrating');

    // Meanwhile: the same host again, and another host of the cluster, are refused.
    const jobs = await jobCount();
    refused(
      await admin.call('prepareHostForMaintenance', { id: hostA.id }),
      'prepareHostForMaintenance',
      530,
      'Failed to prepare host for maintenance due to: Host is already in state PrepareForMaintenance. Cannot recall for maintenance until resolved.',
    );
    refused(
      await admin.call('prepareHostForMaintenance', { id: hostD.id }),
      'prepareHostForMaintenance',
      530,
      `Failed to prepare host for maintenance due to: There are other servers attempting migrations for maintenance. Found hosts in PrepareForMaintenance OR ErrorInPrepareForMaintenance STATUS in cluster ${played.cluster.id}`,
    );
    expect(await jobCount()).toBe(jobs);
    expect(await state(hostD)).toBe('Enabled');

    for (const message of messages) await answer(message, migrated(message));
    const job = await admin.waitForJob(prepared.jobid);
    expect(job.jobstatus, JSON.stringify(job.jobresult)).toBe(1);
    expect(job.jobresult.host).toMatchObject({ id: hostA.id, resourcestate: 'Maintenance' });
    for (const vm of running) {
      const now = (await getVmConsistent(vm.id))!;
      expect(now.state).toBe('Running');
      expect([hostB.id, hostC.id, hostD.id]).toContain(now.hostId);
    }
    expect((await getVmConsistent(stopped.id))!.lastHostId).toBeUndefined();
    const host = (await getHost(hostA.id))!;
    expect({ cpu: host.cpuallocated, memory: host.memoryallocated }).toEqual({ cpu: 0, memory: 0 });
    // Each move is a migrateVirtualMachine job of its own; the preparation's own events.
    const migrations = ok(await admin.call('listEvents', { type: 'VM.MIGRATE', listall: true }), 'listEvents').event ?? [];
    for (const vm of running) expect(migrations.some((e: any) => e.state === 'Completed' && e.resourceid === vm.id)).toBe(true);
    const prepares = ok(await admin.call('listEvents', { type: 'MAINT.PREPARE', listall: true }), 'listEvents').event ?? [];
    expect(prepares.some((e: any) => e.state === 'Completed' && e.resourceid === hostA.id && e.level === 'INFO')).toBe(true);
  });

  it('places nothing on a host in Maintenance and refuses to prepare it again', async () => {
    const found = ok(await admin.call('findHostsForMigration', { id: running[0].id }), 'findHostsForMigration').host;
    expect(found.find((h: any) => h.id === hostA.id)).toMatchObject({ suitableformigration: false });
    refused(
      await admin.call('prepareHostForMaintenance', { id: hostA.id }),
      'prepareHostForMaintenance',
      530,
      'Failed to prepare host for maintenance due to: Host is already in state Maintenance. Cannot recall for maintenance until resolved.',
    );
  });

  it('cancelHostMaintenance returns it to Enabled and moves nothing back', async () => {
    const where = await Promise.all(running.map(async (vm) => (await getVmConsistent(vm.id))!.hostId));
    const job = await admin.waitForJob((await begin(admin, 'cancelHostMaintenance', { id: hostA.id })).jobid);
    expect(job.jobstatus, JSON.stringify(job.jobresult)).toBe(1);
    expect(job.jobresult.host).toMatchObject({ id: hostA.id, resourcestate: 'Enabled' });
    expect(await Promise.all(running.map(async (vm) => (await getVmConsistent(vm.id))!.hostId))).toEqual(where);
    const cancels = ok(await admin.call('listEvents', { type: 'MAINT.CANCEL', listall: true }), 'listEvents').event ?? [];
    expect(cancels.some((e: any) => e.state === 'Completed' && e.resourceid === hostA.id)).toBe(true);
  });

  it('an empty host goes straight to Maintenance, and deleteHost then removes it', async () => {
    const full = await Promise.all(running.map(async (vm) => (await getVmConsistent(vm.id))!.hostId));
    const empty = [hostB, hostC, hostD].find((h) => !full.includes(h.id));
    if (!empty) return; // every other host took a VM: covered by the lab test
    const job = await admin.waitForJob((await begin(admin, 'prepareHostForMaintenance', { id: empty.id })).jobid);
    expect(job.jobresult.host).toMatchObject({ resourcestate: 'Maintenance' });
    expect(ok(await admin.call('deleteHost', { id: empty.id }), 'deleteHost')).toEqual({ success: true });
    expect(await getHost(empty.id)).toBeUndefined();
  });

  it('with no room anywhere it ends in ErrorInPrepareForMaintenance, every VM still Running where it was, with an event and an alert per VM', async () => {
    const vm = running[0];
    const source = (await getVmConsistent(vm.id))!.hostId!;
    const others = (await Promise.all([hostA, hostB, hostC, hostD].map((h) => getHost(h.id)))).filter((h): h is Host => Boolean(h) && h!.id !== source);
    const onSource = await Promise.all(running.map(async (r) => (await getVmConsistent(r.id))!).filter(Boolean));
    const before = new Map(others.map((h) => [h.id, h.memoryallocated]));
    for (const h of others) await updateHostRecord(h.id, { memoryallocated: h.memorytotal });
    try {
      const job = await admin.waitForJob((await begin(admin, 'prepareHostForMaintenance', { id: source })).jobid);
      expect(job.jobstatus).toBe(2);
      expect(job.jobresult.errorcode).toBe(530);
      expect(job.jobresult.errortext).toMatch(new RegExp(`^Failed to prepare host for maintenance due to: Unable to prepare for maintenance host ${source}: VM ${vm.instancename}: Unable to find a server to migrate the vm to`));
      expect((await getHost(source))!.resourcestate).toBe('ErrorInPrepareForMaintenance');
      for (const r of onSource) if (r.hostId === source) expect((await getVmConsistent(r.id))!).toMatchObject({ state: 'Running', hostId: source });
      const events = ok(await admin.call('listEvents', { type: 'MAINT.PREPARE', listall: true }), 'listEvents').event ?? [];
      expect(events.some((e: any) => e.level === 'WARN' && e.resourceid === source && /entering in PrepareForMaintenanceWithErrors state: .*Unable to find a server/.test(e.description))).toBe(true);
      const alerts = ok(await admin.call('listAlerts', { name: 'ALERT.USERVM.MIGRATE' }), 'listAlerts').alert ?? [];
      expect(alerts.some((a: any) => a.description.startsWith(`Unable to migrate vm ${vm.instancename} from host `))).toBe(true);
      // ErrorInPrepareForMaintenance still holds the cluster.
      const other = others[0];
      refused(await admin.call('prepareHostForMaintenance', { id: other.id }), 'prepareHostForMaintenance', 530, /There are other servers attempting migrations for maintenance/);
    } finally {
      for (const h of others) await updateHostRecord(h.id, { memoryallocated: before.get(h.id) });
    }
    const cancel = await admin.waitForJob((await begin(admin, 'cancelHostMaintenance', { id: source })).jobid);
    expect(cancel.jobresult.host).toMatchObject({ resourcestate: 'Enabled' });
    expect((await getVmConsistent(vm.id))!).toMatchObject({ state: 'Running', hostId: source });
  });

  it('deleteHost forced=true on a host that still holds VMs stops them: Stopped, off the host, free to start elsewhere', async () => {
    const source = (await getVmConsistent(running[0].id))!.hostId!;
    const onIt = (await Promise.all(running.map(async (r) => (await getVmConsistent(r.id))!))).filter((r) => r.hostId === source);
    expect(onIt.length).toBeGreaterThan(0);
    refused(await admin.call('deleteHost', { id: source }), 'deleteHost', 530, /cannot be deleted as it is not in maintenance mode/);
    expect(ok(await admin.call('deleteHost', { id: source, forced: true }), 'deleteHost')).toEqual({ success: true });
    expect(await getHost(source)).toBeUndefined();
    for (const r of onIt) {
      const now = (await getVmConsistent(r.id))!;
      expect(now.state).toBe('Stopped');
      expect(now.hostId).toBeUndefined();
      expect(now.lastHostId).toBeUndefined();
    }
    const stops = ok(await admin.call('listEvents', { type: 'VM.STOP', listall: true }), 'listEvents').event ?? [];
    for (const r of onIt) expect(stops.some((e: any) => e.resourceid === r.id && /as a part of deleteHost/.test(e.description))).toBe(true);
  });
});
