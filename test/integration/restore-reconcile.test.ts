// Reconciliation after a restore, on the real runtime: an export taken while two VMs ran on host 1 and a
// third was stopped is imported into a new control plane after the fleet moved on (the first VM stopped,
// the second moved to host 2, the third started there, a fourth deployed there, host 3 removed). The
// agent's first report (recordReport, called as the gateway would) brings the records to the truth:
// states, hosts and capacity follow what runs, with upstream's sync events; the VM the restored
// inventory does not know is listed by listUnmanagedInstances with one alert, and nothing is done to it;
// host 3, which the agent cannot reach, leaves Up once the sweeper has looked.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostReport } from '../../shared/agent/protocol.ts';
import { getAgent, type Agent } from '../../shared/db/agents.ts';
import { reportingAgent } from '../support/agent-seed.ts';
import { takeHostCapacity } from '../../shared/db/capacity.ts';
import { createHostRecord, type Host } from '../../shared/db/hosts.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { createCluster, createPod, getZone, type Cluster } from '../../shared/db/infrastructure.ts';
import type { VirtualMachine } from '../../shared/db/vms.ts';
import { recordReport } from '../../shared/host-reports.ts';
import { UNMANAGED_ALERT_SUBJECT } from '../../shared/unmanaged-domains.ts';
import { ApiClient } from '../support/client.ts';
import { inventoryOf, inventoryScript, restoreInto } from '../support/inventory.ts';
import { seedMember } from '../support/members.ts';
import { tempDataDir, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { seedVm } from '../support/vm-seed.ts';
import { until } from '../support/wait.ts';
import { ok, startWorld, unique, type World } from './identity-fixtures.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const LONG_AGO = '2020-01-01T00:00:00+0000';
const PING_SECONDS = 5;

let world: World;
let restored: RunningRuntime;
let admin: ApiClient;
let agent: Agent;
let cluster: Cluster;
const hosts: Host[] = [];
const vms: VirtualMachine[] = [];
const dir = tempDataDir();

const healthy = (host: Host, domains: HostReport['domains']): HostReport => ({ hostId: host.id, reachable: true, libvirtd: true, memoryTotalBytes: 8 * GiB, memoryFreeBytes: 6 * GiB, loadAverage: 0.1, domains });
const on = (vm: Pick<VirtualMachine, 'instanceName' | 'id'>) => ({ name: vm.instanceName, uuid: vm.id, state: 'Running' as const });
const listed = async (vm: VirtualMachine) => ok(await admin.call('listVirtualMachines', { id: vm.id, listall: true }), 'listVirtualMachines').virtualmachine[0];
const allocated = async (host: Host) => {
  const shown = ok(await admin.call('listHosts', { id: host.id }), 'listHosts').host[0];
  return { cpu: shown.cpuallocatedvalue, mem: shown.memoryallocatedbytes };
};
const unmanaged = async () => ok(await admin.call('listUnmanagedInstances', { clusterid: cluster.id }), 'listUnmanagedInstances').unmanagedinstance ?? [];
const unmanagedAlerts = async () => (ok(await admin.call('listAlerts', {}), 'listAlerts').alert ?? []).filter((alert: any) => alert.description === UNMANAGED_ALERT_SUBJECT);

beforeAll(async () => {
  world = await startWorld();
  useRuntimeEndpoints(world.runtime);
  const root = (await getDomain(world.rootDomainId))!;
  const owner = await seedMember(world.runtime.apiUrl, unique('owner'), root, 'User');
  ok(await world.admin.call('updateConfiguration', { name: 'ping.interval', value: String(PING_SECONDS) }), 'updateConfiguration');
  const zone = ok(await world.admin.call('createZone', { name: unique('rz'), networktype: 'Advanced', dns1: '192.0.2.53' }), 'createZone').zone;
  const offering = ok(await world.admin.call('createServiceOffering', { name: unique('so'), displaytext: 'Small', cpunumber: 2, cpuspeed: 1000, memory: 512 }), 'createServiceOffering').serviceoffering;
  const pod = await createPod((await getZone(zone.id))!, { name: unique('rp'), allocationstate: 'Enabled' });
  cluster = await createCluster(pod, { name: unique('rc'), allocationstate: 'Enabled', hypervisor: 'KVM' });
  agent = await reportingAgent(zone.id);
  for (const n of [1, 2, 3]) hosts.push(await createHostRecord(cluster, { name: unique(`rh${n}`), ipaddress: `10.80.0.${n}`, agentId: agent.id, lastpinged: new Date().toISOString() }));
  // The backup's world: VMs 1 and 2 Running on host 1 (their capacity taken there), VM 3 Stopped.
  const seed = (state: VirtualMachine['state'], host?: Host) =>
    seedVm(
      { ...owner.account, userId: owner.user.id },
      { zoneId: zone.id, serviceOfferingId: offering.id, templateId: randomUUID(), cpuNumber: 2, cpuSpeed: 1000, memoryMiB: 512, state, created: LONG_AGO, ...(host && { hostId: host.id, podId: host.podId, clusterId: host.clusterId, lastHostId: host.id }) },
    );
  for (const state of ['Running', 'Running', 'Stopped'] as const) {
    const vm = await seed(state, state === 'Running' ? hosts[0] : undefined);
    if (state === 'Running') await takeHostCapacity(hosts[0]!.id, { vmId: vm.id }, 2000, 512 * MiB);
    vms.push(vm);
  }
  const backup = join(dir, 'backup.jsonl');
  const exported = await inventoryScript('export', backup, inventoryOf(world.runtime));
  if (exported.code !== 0) throw new Error(exported.stderr);
  ({ runtime: restored } = await restoreInto(world.runtime, backup, { env: { MOLD_SWEEP_INTERVAL_SECONDS: '2' } }));
  useRuntimeEndpoints(restored);
  admin = new ApiClient(restored.apiUrl, world.runtime.credentials);
});
afterAll(async () => {
  await restored?.stop();
  await world?.runtime.stop();
  for (const made of [dir, restored?.dataDir]) if (made) rmSync(made, { recursive: true, force: true });
});

describe('a restored inventory meets a fleet that moved on', () => {
  const [v1, v2, v3] = [0, 1, 2].map((i) => () => vms[i]!);
  // Deployed after the backup: a Mold instance name and an id the restored inventory does not have.
  const v4 = { id: randomUUID(), instanceName: 'i-2-9999-VM' };

  it("the agent's first report brings states, hosts and capacity to what runs, with sync events", async () => {
    const [h1, h2, h3] = hosts as [Host, Host, Host];
    expect((await allocated(h1)).cpu).toBe(4000);
    await recordReport((await getAgent(agent.id))!, {
      version: '0.1.0',
      hosts: [healthy(h1, []), healthy(h2, [on(v2()), on(v3()), on(v4)]), { hostId: h3.id, reachable: false, domains: [] }],
    });
    expect(await listed(v1())).toMatchObject({ state: 'Stopped' });
    expect((await listed(v1())).hostid).toBeUndefined();
    expect(await listed(v2())).toMatchObject({ state: 'Running', hostid: h2.id });
    expect(await listed(v3())).toMatchObject({ state: 'Running', hostid: h2.id });
    expect(await allocated(h1)).toEqual({ cpu: 0, mem: 0 });
    expect(await allocated(h2)).toEqual({ cpu: 4000, mem: 1024 * MiB });
    const events = (ok(await admin.call('listEvents', { listall: true, resourcetype: 'VirtualMachine' }), 'listEvents').event ?? []).map((e: any) => `${e.resourceid} ${e.type}`);
    expect(events).toEqual(expect.arrayContaining([`${v1().id} VM.STOP`, `${v2().id} VM.MIGRATE`, `${v3().id} VM.START`]));
  });

  it('lists the VM it does not know as unmanaged on its host, alerts once, and does nothing to it', async () => {
    expect(await unmanaged()).toEqual([{ name: v4.instanceName, clusterid: cluster.id, hostid: hosts[1]!.id, hostname: hosts[1]!.name, powerstate: 'PowerOn', disk: [], nic: [] }]);
    const alerts = await unmanagedAlerts();
    expect(alerts).toHaveLength(1);
    expect(alerts[0].description).toBe(UNMANAGED_ALERT_SUBJECT);
    // The next report sees it again: no second alert; no job was started for it.
    await recordReport((await getAgent(agent.id))!, { version: '0.1.0', hosts: [healthy(hosts[1]!, [on(v2()), on(v3()), on(v4)])] });
    expect(await unmanagedAlerts()).toHaveLength(1);
    expect(ok(await admin.call('listAsyncJobs', { listall: true }), 'listAsyncJobs').asyncjobs ?? []).toEqual([]);
  });

  it('shows the removed host, which its agent cannot reach, as not Up once the sweeper has looked', async () => {
    const shown = await until(
      'host 3 to leave Up',
      async () => ok(await admin.call('listHosts', { id: hosts[2]!.id }), 'listHosts').host[0].state,
      (state) => state !== 'Up',
      { within: 4 * PING_SECONDS * 1000 + 10_000 },
    );
    expect(['Disconnected', 'Alert', 'Down']).toContain(shown);
  });
});
