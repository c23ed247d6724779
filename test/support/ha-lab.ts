// What the HA lab tests and bench:ha share: a two-host lab with BMCs, the local runtime sweeping every
// 2 s and a real agent, tuned for fast HA (ping.interval 10 s: shorter ones leave hosts silent on a
// loaded machine; upstream's ping.timeout 2.5; a failed fence tried again after 10 s), out-of-band
// management on every host, an HA offering, and the readings the tests make of it.
import { execFileSync } from 'node:child_process';
import { alive, labAt, type Lab } from '../lab/lab.ts';
import { adminClient } from './client.ts';
import { startRuntime, type RunningRuntime } from './runtime.ts';
import { buildVmWorld, PING_INTERVAL_SECONDS, type VmWorld } from './vm-world.ts';
import { until } from './wait.ts';

export const PING_INTERVAL = PING_INTERVAL_SECONDS;
export const PING_TIMEOUT = 2.5;
export const FENCE_TIMEOUT = 10;
export const SWEEP_SECONDS = 2;
/** Deadline for a host to go Down once its reports say it cannot be reached: ping.timeout × interval, a report and two sweeps. */
export const DOWN_WITHIN = (PING_TIMEOUT * PING_INTERVAL + PING_INTERVAL + 2 * SWEEP_SECONDS) * 1000 + 10_000;
const VIRSH = ['virsh', '-c', 'qemu:///system'];

export interface HaLab {
  lab: ReturnType<typeof labAt>;
  labInfo: Lab;
  runtime: RunningRuntime;
  world: VmWorld;
  /** A one-vCPU, 128 MiB offering with offerha. */
  haOffering: string;
  hostOfIndex(index: number): VmWorld['hosts'][number];
  /** The running domains of lab host `index`, as its libvirt lists them (through its namespace). */
  domainsOn(index: number): Promise<string[]>;
  /** The processes in lab host `index`'s network namespace (none: the host is off). */
  pidsOfHost(index: number): number[];
  listedHost(index: number): Promise<any>;
  listedVm(id: string): Promise<any>;
  alerts(type: number): Promise<any[]>;
  fleet(): Promise<any>;
  close(): Promise<void>;
}

export async function startHaLab(lab: ReturnType<typeof labAt>, name: string): Promise<HaLab> {
  const [labInfo, runtime] = await Promise.all([lab.up(2), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: String(SWEEP_SECONDS) } })]);
  const world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials), { name, template: 'guest', network: 'untagged' });
  for (const [setting, value] of [['ping.interval', PING_INTERVAL], ['ping.timeout', PING_TIMEOUT], ['kvm.ha.fence.timeout', FENCE_TIMEOUT]] as const) await world.ok('updateConfiguration', { name: setting, value });
  await until('both hosts Up', async () => (await world.ok('listHosts', { zoneid: world.zoneId })).host as any[], (hs) => hs.length === 2 && hs.every((h) => h.state === 'Up'), { within: 60_000 });
  for (const h of world.hosts) {
    const bmc = labInfo.hosts[h.index - 1]!.bmc;
    await world.ok('configureOutOfBandManagement', { hostid: h.id, driver: 'ipmitool', address: bmc.address, port: String(bmc.port), username: bmc.username, password: labInfo.bmcPassword });
    await world.done('enableOutOfBandManagementForHost', { hostid: h.id });
  }
  const haOffering = (await world.ok('createServiceOffering', { name: 'tiny-ha', displaytext: 'tiny-ha', cpunumber: 1, cpuspeed: 500, memory: 128, offerha: true })).serviceoffering.id as string;
  const hostOfIndex = (index: number) => world.hosts.find((h) => h.index === index)!;
  return {
    lab,
    labInfo,
    runtime,
    world,
    haOffering,
    hostOfIndex,
    domainsOn: async (index) => (await lab.hostExec(index, [...VIRSH, 'list', '--name'])).stdout.split('\n').map((l) => l.trim()).filter(Boolean),
    pidsOfHost: (index) =>
      execFileSync('ip', ['netns', 'pids', `${lab.names.netnsPrefix}${index}`], { encoding: 'utf8' })
        .split('\n')
        .map((l) => Number(l.trim()))
        .filter((pid) => pid > 0 && alive(pid)),
    listedHost: async (index) => (await world.ok('listHosts', { id: hostOfIndex(index).id })).host[0],
    listedVm: async (id) => (await world.ok('listVirtualMachines', { id, listall: true })).virtualmachine[0],
    alerts: async (type) => ((await world.ok('listAlerts', { type })).alert ?? []) as any[],
    fleet: async () => (await world.ok('listFleetStatus', { zoneid: world.zoneId })).fleetstatus[0],
    close: async () => {
      await world.close();
      await runtime.stop();
    },
  };
}
