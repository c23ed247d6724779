// Host maintenance end to end on a three-host lab (lab 17) with six real guests on host 1, through the
// HTTP API and a real agent. One of them (tenant1) shares a host anti-affinity group with a seventh
// guest on host 2. With no room on hosts 2 and 3 (the cluster's memory over-provisioning factor made
// tiny), prepareHostForMaintenance ends in ErrorInPrepareForMaintenance with an event and an alert per
// guest, every guest still running on host 1 with the same boot id; cancelHostMaintenance makes it
// Enabled. With room, the six guests are live-migrated away at once, none reboots, tenant1 goes to host 3
// (host 2 holds its group's other member), and the host ends in Maintenance with nothing on it; cancel
// moves nothing back; an empty host then goes to Maintenance at once and deleteHost removes it.
// Needs root (the lab); skipped otherwise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labAt, type Lab } from '../lab/lab.ts';
import { adminClient } from '../support/client.ts';
import { waitForGuest, watchGuest } from '../support/guest.ts';
import { expectBootKept, movesBegin } from '../support/moved-guest.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';
import { buildVmWorld, type VmWorld } from '../support/vm-world.ts';
import { patience, sleep, until } from '../support/wait.ts';
import { refused } from '../integration/identity-fixtures.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(17);
const VIRSH = ['virsh', '-c', 'qemu:///system'];
const GUESTS = 6;

let labInfo: Lab;
let runtime: RunningRuntime;
let world: VmWorld;
const vms: any[] = [];
/** tenant1's anti-affinity partner, on host 2. */
let partner: any;

const ipOf = (v: any): string => v.nic[0].ipaddress;
const domainsOn = async (index: number) => (await lab.hostExec(index, [...VIRSH, 'list', '--name'])).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
const hostOfIndex = (index: number) => world.hosts.find((h) => h.index === index)!;
const hostRecord = async (index: number) => (await world.ok('listHosts', { id: hostOfIndex(index).id })).host[0];
const bootIds = async () => Promise.all(vms.map(async (vm) => (await waitForGuest(ipOf(vm), `guest ${vm.name}`)).bootId));
const records = async () => (await world.ok('listVirtualMachines', { listall: true })).virtualmachine as any[];
/** The six tenants' records (not the partner's). */
const tenants = async () => (await records()).filter((vm) => vms.some((t) => t.id === vm.id));

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'host maintenance on a three-host lab' : 'host maintenance on a three-host lab (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    [labInfo, runtime] = await Promise.all([lab.up(3), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: '2' } })]);
    world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials), { name: 'maintenancelab', template: 'guest', network: 'untagged' });
    const group = (await world.done('createAffinityGroup', { name: 'spread', type: 'host anti-affinity' })).affinitygroup;
    partner = (await world.done('deployVirtualMachine', world.deployParams('partner', { hostid: hostOfIndex(2).id, affinitygroupids: group.id }))).virtualmachine;
    for (let i = 1; i <= GUESTS; i++) {
      vms.push((await world.done('deployVirtualMachine', world.deployParams(`tenant${i}`, { hostid: hostOfIndex(1).id, ...(i === 1 && { affinitygroupids: group.id }) }))).virtualmachine);
    }
    for (const vm of [...vms, partner]) await waitForGuest(ipOf(vm), `guest ${vm.name} to boot`, () => true, 120_000);
  }, patience(600_000));

  afterAll(async () => {
    await world?.close();
    await runtime?.stop();
    await lab.down();
  }, patience(120_000));

  it('with no room anywhere it ends in ErrorInPrepareForMaintenance, every guest still running on it; cancel makes it Enabled', async () => {
    const before = await bootIds();
    const clusterid = (await hostRecord(1)).clusterid;
    // Host 2's memory, after the factor, is a few MB: not one guest fits.
    await world.ok('updateConfiguration', { name: 'mem.overprovisioning.factor', value: '0.001', clusterid });
    let job;
    try {
      job = await world.job('prepareHostForMaintenance', { id: hostOfIndex(1).id }, patience(180_000));
    } finally {
      await world.ok('resetConfiguration', { name: 'mem.overprovisioning.factor', clusterid });
    }
    expect(job.jobstatus).toBe(2);
    expect(job.jobresult.errorcode).toBe(530);
    expect(job.jobresult.errortext).toMatch(/^Failed to prepare host for maintenance due to: Unable to prepare for maintenance host .*: VM .*: Unable to find a server to migrate the vm to/);
    expect((await hostRecord(1)).resourcestate).toBe('ErrorInPrepareForMaintenance');
    for (const vm of await tenants()) expect(vm).toMatchObject({ state: 'Running', hostid: hostOfIndex(1).id });
    expect(new Set(await domainsOn(1))).toEqual(new Set(vms.map((vm) => vm.instancename)));
    expect(await bootIds()).toEqual(before);
    const events = (await world.ok('listEvents', { type: 'MAINT.PREPARE', listall: true })).event as any[];
    expect(events.some((e) => e.level === 'WARN' && e.resourceid === hostOfIndex(1).id && /PrepareForMaintenanceWithErrors/.test(e.description))).toBe(true);
    const alerts = (await world.ok('listAlerts', { name: 'ALERT.USERVM.MIGRATE' })).alert as any[];
    for (const vm of vms) expect(alerts.some((a) => a.description.startsWith(`Unable to migrate vm ${vm.instancename} from host `))).toBe(true);

    const cancelled = (await world.done('cancelHostMaintenance', { id: hostOfIndex(1).id })).host;
    expect(cancelled).toMatchObject({ id: hostOfIndex(1).id, resourcestate: 'Enabled' });
  }, patience(300_000));

  it('empties the host by live migration, all guests at once and none rebooting, and ends in Maintenance', async () => {
    const before = await bootIds();
    const started = movesBegin();
    const watches = vms.map((vm) => watchGuest(ipOf(vm)));
    await sleep(1000);
    const host = (await world.done('prepareHostForMaintenance', { id: hostOfIndex(1).id }, patience(600_000))).host;
    const seen = await Promise.all(watches.map((w) => w.end()));
    expect(host).toMatchObject({ id: hostOfIndex(1).id, resourcestate: 'Maintenance', cpuallocatedvalue: 0, memoryallocated: 0 });
    const moved = await tenants();
    const indexOf = (hostid: string) => world.hosts.find((h) => h.id === hostid)!.index;
    for (const vm of moved) expect(vm.state).toBe('Running');
    for (const vm of moved) expect([2, 3]).toContain(indexOf(vm.hostid));
    // Anti-affinity held: tenant1 could not join its partner on host 2.
    expect(moved.find((vm) => vm.id === vms[0].id)!.hostid).toBe(hostOfIndex(3).id);
    expect(await domainsOn(1)).toEqual([]);
    for (const index of [2, 3]) {
      const here = moved.filter((vm) => indexOf(vm.hostid) === index).map((vm) => vm.instancename);
      expect((await domainsOn(index)).filter((name) => name !== partner.instancename).sort()).toEqual(here.sort());
    }
    // No guest rebooted: every answer during and after the moves carries the boot id from before.
    seen.forEach((s, i) => expect(new Set(s.answers.map((a) => a.bootId))).toEqual(new Set([before[i]])));
    for (const [i, vm] of vms.entries()) await expectBootKept(world, lab, vm, indexOf(moved.find((m) => m.id === vm.id)!.hostid), before[i]!, started);
    // Each guest moved in a migrateVirtualMachine job of its own.
    const moves = (await world.ok('listEvents', { type: 'VM.MIGRATE', listall: true })).event as any[];
    for (const vm of vms) expect(moves.some((e) => e.state === 'Completed' && e.level === 'INFO' && e.resourceid === vm.id)).toBe(true);
  }, patience(900_000));

  it('cancelHostMaintenance makes it Enabled and moves nothing back', async () => {
    const cancelled = (await world.done('cancelHostMaintenance', { id: hostOfIndex(1).id })).host;
    expect(cancelled.resourcestate).toBe('Enabled');
    expect(await domainsOn(1)).toEqual([]);
    for (const vm of await records()) expect(vm.hostid).not.toBe(hostOfIndex(1).id);
  }, patience(120_000));

  it('an empty host enters Maintenance at once, and deleteHost then removes it', async () => {
    expect((await world.done('prepareHostForMaintenance', { id: hostOfIndex(1).id })).host.resourcestate).toBe('Maintenance');
    expect(await world.ok('deleteHost', { id: hostOfIndex(1).id })).toEqual({ success: true });
    expect(new Set((await world.ok('listHosts', { zoneid: world.zoneId })).host.map((h: any) => h.id))).toEqual(new Set([hostOfIndex(2).id, hostOfIndex(3).id]));
    expect((await bootIds()).length).toBe(GUESTS);
  }, patience(120_000));

  it('deleteHost forced=true on a host that still runs guests stops them: records Stopped, domains gone', async () => {
    refused(await adminClient(runtime.apiUrl, runtime.credentials).call('deleteHost', { id: hostOfIndex(2).id }), 'deleteHost', 530, /not in maintenance mode/);
    const onHost2 = (await records()).filter((vm) => vm.hostid === hostOfIndex(2).id).map((vm) => vm.id);
    expect(onHost2).toContain(partner.id);
    expect(await world.ok('deleteHost', { id: hostOfIndex(2).id, forced: true })).toEqual({ success: true });
    for (const vm of await records()) expect(vm.state).toBe(onHost2.includes(vm.id) ? 'Stopped' : 'Running');
    // The agent forgets the host at its next report and destroys what Mold ran there first.
    await until('the guests to be gone from host 2', () => domainsOn(2), (names) => names.length === 0, { within: 60_000 });
  }, patience(180_000));
});
