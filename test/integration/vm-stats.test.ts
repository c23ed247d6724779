// VM usage figures and history on the real runtime: agents' reports (recordReport, called as the
// gateway would) carry each running domain's libvirt counters; listVirtualMachines shows upstream's
// stats fields, listVirtualMachinesMetrics its MiB figures, and listVirtualMachinesUsageHistory one
// point per vm.stats.interval, kept vm.stats.max.retention.time. Readings are synthetic, their times
// chosen by the test, so the figures are exact.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainUsage, HostReport } from '../../shared/agent/protocol.ts';
import type { Agent } from '../../shared/db/agents.ts';
import { reportingAgent } from '../support/agent-seed.ts';
import { createHostRecord, type Host } from '../../shared/db/hosts.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { createCluster, createPod, getZone } from '../../shared/db/infrastructure.ts';
import type { VirtualMachine } from '../../shared/db/vms.ts';
import { recordReport } from '../../shared/host-reports.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { seedVm } from '../support/vm-seed.ts';
import { ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';

const GiB = 1024 ** 3;
const MINUTE = 60_000;

let world: World;
let admin: ApiClient;
let owner: Member;
let stranger: Member;
let agent: Agent;
let host: Host;
let zoneId: string;
let offeringId: string;

const usage = (at: number, counters: Partial<DomainUsage> = {}): DomainUsage => ({
  at,
  cpuTimeNs: 0,
  vcpus: 2,
  memoryKiB: 524288,
  memoryMaxKiB: 524288,
  netRxBytes: 0,
  netTxBytes: 0,
  diskReadBytes: 0,
  diskWriteBytes: 0,
  diskReadReqs: 0,
  diskWriteReqs: 0,
  ...counters,
});
const report = (vm: VirtualMachine, reading: DomainUsage) => {
  const entry: HostReport = {
    hostId: host.id,
    reachable: true,
    libvirtd: true,
    memoryTotalBytes: 8 * GiB,
    memoryFreeBytes: 6 * GiB,
    loadAverage: 0.1,
    domains: [{ name: vm.instanceName, uuid: vm.id, state: 'Running', usage: reading }],
  };
  return recordReport(agent, { version: '0.1.0', hosts: [entry] });
};

const runningVm = () =>
  seedVm(
    { ...owner.account, userId: owner.user.id },
    { zoneId, serviceOfferingId: offeringId, templateId: randomUUID(), cpuNumber: 2, cpuSpeed: 1000, state: 'Running', hostId: host.id, podId: host.podId, clusterId: host.clusterId, lastHostId: host.id },
  );
const history = async (params: Record<string, string>, client = admin) => ok(await client.call('listVirtualMachinesUsageHistory', params), 'listVirtualMachinesUsageHistory');
/** CloudStack's DATE parameter form of a time (UTC). */
const dateParam = (at: number) => new Date(at).toISOString().slice(0, 19).replace('T', ' ');

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  const root = (await getDomain(world.rootDomainId))!;
  owner = await seedMember(world.runtime.apiUrl, unique('owner'), root, 'User');
  stranger = await seedMember(world.runtime.apiUrl, unique('stranger'), root, 'User');
  const zone = ok(await admin.call('createZone', { name: unique('stz'), networktype: 'Advanced', dns1: '192.0.2.53' }), 'createZone').zone;
  zoneId = zone.id;
  offeringId = ok(await admin.call('createServiceOffering', { name: unique('so'), displaytext: 'Small', cpunumber: 2, cpuspeed: 1000, memory: 512 }), 'createServiceOffering').serviceoffering.id;
  const pod = await createPod((await getZone(zone.id))!, { name: unique('sp'), allocationstate: 'Enabled' });
  const cluster = await createCluster(pod, { name: unique('sc'), allocationstate: 'Enabled', hypervisor: 'KVM' });
  agent = await reportingAgent(zone.id);
  host = await createHostRecord(cluster, { name: unique('kvm'), ipaddress: '10.79.0.10', agentId: agent.id, lastpinged: new Date().toISOString() });
});
afterAll(async () => {
  await world?.runtime.stop();
});

describe('VM usage figures from agent reports', () => {
  let vm: VirtualMachine;
  let start: number;

  beforeAll(async () => {
    vm = await runningVm();
    // Four readings 30 s apart, ending now: 1 GiB read from disk in 2048 requests, 3 MiB received,
    // CPU at 50 % of two vCPUs over the first minute and 25 % over the last 30 s.
    start = Date.now() - 90_000;
    await report(vm, usage(start));
    await report(vm, usage(start + 30_000, { cpuTimeNs: 30e9, diskReadBytes: GiB / 2, diskReadReqs: 1024 }));
    await report(vm, usage(start + 60_000, { cpuTimeNs: 60e9, diskReadBytes: GiB, diskReadReqs: 2048, netRxBytes: 2 * 1024 ** 2 }));
    await report(vm, usage(start + 90_000, { cpuTimeNs: 75e9, diskReadBytes: GiB, diskReadReqs: 2048, netRxBytes: 3 * 1024 ** 2, memoryUnusedKiB: 131072 }));
  });

  it("listVirtualMachines shows upstream's stats fields to the owner and the admin, not with details=min", async () => {
    for (const client of [admin, owner.client]) {
      const shown = ok(await client.call('listVirtualMachines', { id: vm.id }), 'listVirtualMachines').virtualmachine[0];
      expect(shown).toMatchObject({
        cpuused: '25%',
        diskkbsread: 1024 * 1024,
        diskkbswrite: 0,
        diskioread: 2048,
        diskiowrite: 0,
        networkkbsread: 3072,
        networkkbswrite: 0,
        memorykbs: 524288,
        memoryintfreekbs: 131072,
        memorytargetkbs: 524288,
      });
    }
    const minimal = ok(await admin.call('listVirtualMachines', { id: vm.id, details: 'min' }), 'listVirtualMachines').virtualmachine[0];
    expect(minimal).not.toHaveProperty('cpuused');
  });

  it('listVirtualMachinesMetrics shows traffic and disk in MiB and the total IOPS', async () => {
    const shown = ok(await admin.call('listVirtualMachinesMetrics', { id: vm.id }), 'listVirtualMachinesMetrics').virtualmachine[0];
    expect(shown).toMatchObject({ networkread: '3.00 MiB', networkwrite: '0.00 MiB', diskread: '1024.00 MiB', diskwrite: '0.00 MiB', diskiopstotal: 2048, cputotal: '2.0 Ghz' });
  });

  it('listVirtualMachinesUsageHistory has one point per interval, with that interval’s figures', async () => {
    const answer = await history({ id: vm.id });
    expect(answer.count).toBe(1);
    const [entry] = answer.virtualmachine;
    expect(entry).toMatchObject({ id: vm.id, name: vm.name, displayname: vm.displayName });
    // One point after the first minute; the last 30 s wait for the next.
    expect(entry.stats).toEqual([
      {
        timestamp: new Date(start + 60_000).toISOString().replace(/\.\d{3}Z$/, '+0000'),
        cpuused: '50%',
        diskioread: 2048,
        diskiowrite: 0,
        diskiopstotal: 2048,
        diskkbsread: 1024 * 1024,
        diskkbswrite: 0,
        memoryintfreekbs: -1,
        memorykbs: 524288,
        memorytargetkbs: 524288,
        networkkbsread: 2048,
        networkkbswrite: 0,
        networkread: '2.00 MiB',
        networkwrite: '0.00 MiB',
      },
    ]);
    // A range that ends before the point, or starts after it, has none.
    expect((await history({ id: vm.id, enddate: dateParam(start + 30_000) })).virtualmachine[0].stats).toEqual([]);
    expect((await history({ id: vm.id, startdate: new Date(start + 61_000).toISOString() })).virtualmachine[0].stats).toEqual([]);
    expect((await history({ id: vm.id, startdate: dateParam(start), enddate: dateParam(start + 61_000) })).virtualmachine[0].stats).toHaveLength(1);
  });

  it('counts a reading once: the same report again changes nothing', async () => {
    const before = ok(await admin.call('listVirtualMachines', { id: vm.id }), 'listVirtualMachines').virtualmachine[0];
    await report(vm, usage(start + 90_000, { cpuTimeNs: 75e9, diskReadBytes: GiB, diskReadReqs: 2048, netRxBytes: 3 * 1024 ** 2, memoryUnusedKiB: 131072 }));
    await report(vm, usage(start + 30_000, { cpuTimeNs: 99e9 }));
    const after = ok(await admin.call('listVirtualMachines', { id: vm.id }), 'listVirtualMachines').virtualmachine[0];
    expect(after.cpuused).toBe(before.cpuused);
    expect(after.diskioread).toBe(before.diskioread);
    expect((await history({ id: vm.id })).virtualmachine[0].stats).toHaveLength(1);
  });

  it('shows a user only their own VMs’ history', async () => {
    expect((await history({ id: vm.id }, owner.client)).virtualmachine[0].stats).toHaveLength(1);
    expect((await history({ id: vm.id }, stranger.client)).virtualmachine).toBeUndefined();
  });

  it('refuses a start after the end, and a date it cannot read, naming the command', async () => {
    refused(await admin.call('listVirtualMachinesUsageHistory', { id: vm.id, startdate: dateParam(start + MINUTE), enddate: dateParam(start) }), 'listVirtualMachinesUsageHistory', 431, 'startDate cannot be after endDate.');
    refused(await admin.call('listVirtualMachinesUsageHistory', { id: vm.id, startdate: 'yesterday' }), 'listVirtualMachinesUsageHistory', 431, /startdate/);
  });
});

describe('retention', () => {
  it('keeps points vm.stats.max.retention.time minutes, and says so in listCapabilities', async () => {
    ok(await admin.call('updateConfiguration', { name: 'vm.stats.max.retention.time', value: '2' }), 'updateConfiguration');
    try {
      expect(ok(await admin.call('listCapabilities', {}), 'listCapabilities').capability.instancesstatsretentiontime).toBe(2);
      const vm = await runningVm();
      // Points at 5 and at 1 minute ago: only the second is within 2 minutes.
      const now = Date.now();
      await report(vm, usage(now - 6 * MINUTE));
      await report(vm, usage(now - 5 * MINUTE, { cpuTimeNs: 6e9 }));
      await report(vm, usage(now - MINUTE, { cpuTimeNs: 12e9 }));
      const stats = (await history({ id: vm.id })).virtualmachine[0].stats;
      expect(stats.map((point: any) => point.timestamp)).toEqual([new Date(now - MINUTE).toISOString().replace(/\.\d{3}Z$/, '+0000')]);
    } finally {
      ok(await admin.call('updateConfiguration', { name: 'vm.stats.max.retention.time', value: '720' }), 'updateConfiguration');
    }
  });
});
