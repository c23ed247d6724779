// Host HA end to end on a two-host lab (lab 28) with real guests and BMCs (ipmi_sim), through the HTTP
// API and a real agent: configureHAForHost and enableHAForHost on host 1 (upstream's KVM provider),
// which runs an HA guest. Host 1 loses power (its BMC stays). Host HA walks it through upstream's
// states, as listHosts' hostha and the HOST.HA.STATE.TRANSITION events show: Suspect (the agent cannot
// reach it and its storage heartbeat stopped), Checking, Recovering (the heartbeat, read by host 2, is
// older than a fence could take), Fencing (one power OFF through the BMC), Fenced (the BMC reads Off);
// only then is the HA guest started on host 2, where it answers with a new boot id, host 1 running
// nothing at its first sighting there. The cluster's accepted share of problem hosts is raised to half:
// upstream's 0.3 lets no host of a two-host cluster be fenced. Needs root.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, labAt, type Lab } from '../lab/lab.ts';
import { adminClient } from '../support/client.ts';
import { waitForGuest } from '../support/guest.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';
import { buildVmWorld, PING_INTERVAL_SECONDS, type VmWorld } from '../support/vm-world.ts';
import { patience, sleep, until } from '../support/wait.ts';
import { STORAGE_HEARTBEAT_SECONDS } from '../../shared/storage-heartbeat.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(28);
const VIRSH = ['virsh', '-c', 'qemu:///system'];
const PING_INTERVAL = PING_INTERVAL_SECONDS;
const FENCE_TIMEOUT = 10;
const SWEEP_SECONDS = 2;

let labInfo: Lab;
let runtime: RunningRuntime;
let world: VmWorld;
let haVm: any;
let firstBootId: string;

const hostOfIndex = (index: number) => world.hosts.find((h) => h.index === index)!;
const domainsOn = async (index: number) => (await lab.hostExec(index, [...VIRSH, 'list', '--name'])).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
const listedHost = async (index: number) => (await world.ok('listHosts', { id: hostOfIndex(index).id })).host[0];
const listedVm = async (id: string) => (await world.ok('listVirtualMachines', { id, listall: true })).virtualmachine[0];

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'host HA on a two-host lab with BMCs' : 'host HA on a two-host lab with BMCs (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    [labInfo, runtime] = await Promise.all([lab.up(2), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: String(SWEEP_SECONDS) } })]);
    world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials), { name: 'hostha', template: 'guest', network: 'untagged' });
    for (const [name, value] of [['ping.interval', PING_INTERVAL], ['ping.timeout', 2.5], ['kvm.ha.fence.timeout', FENCE_TIMEOUT]] as const) await world.ok('updateConfiguration', { name, value });
    const clusterid = (await listedHost(1)).clusterid;
    await world.ok('updateConfiguration', { name: 'kvm.ha.accepted.problematic.hosts.ratio', value: '0.5', clusterid });
    await until('both hosts Up', async () => (await world.ok('listHosts', { zoneid: world.zoneId })).host as any[], (hs) => hs.length === 2 && hs.every((h) => h.state === 'Up'), { within: 60_000 });
    for (const h of world.hosts) {
      const bmc = labInfo.hosts[h.index - 1]!.bmc;
      await world.ok('configureOutOfBandManagement', { hostid: h.id, driver: 'ipmitool', address: bmc.address, port: String(bmc.port), username: bmc.username, password: labInfo.bmcPassword });
      await world.done('enableOutOfBandManagementForHost', { hostid: h.id });
    }
    const haOffering = (await world.ok('createServiceOffering', { name: 'tiny-ha', displaytext: 'tiny-ha', cpunumber: 1, cpuspeed: 500, memory: 128, offerha: true })).serviceoffering.id;
    haVm = (await world.done('deployVirtualMachine', world.deployParams('ha-guest', { serviceofferingid: haOffering, hostid: hostOfIndex(1).id }))).virtualmachine;
  }, patience(400_000));

  afterAll(async () => {
    await world?.close();
    await runtime?.stop();
    await lab.down();
  }, patience(120_000));

  it('configures and enables HA for host 1 with the KVM provider: Available once the sweeper has seen it', async () => {
    firstBootId = (await waitForGuest(haVm.nic[0].ipaddress, 'the HA guest to boot', () => true, 120_000)).bootId;
    expect((await world.ok('listHostHAProviders', { hypervisor: 'KVM' })).haprovider).toEqual([{ haprovider: 'KVMHAProvider' }]);
    await world.done('configureHAForHost', { hostid: hostOfIndex(1).id, provider: 'KVMHAProvider' });
    await world.done('enableHAForHost', { hostid: hostOfIndex(1).id });
    const host = await until('host 1 to be Available for HA', () => listedHost(1), (h) => h.hostha?.hastate === 'Available', { within: 10 * SWEEP_SECONDS * 1000 + 10_000 });
    expect(host.hostha).toMatchObject({ haenable: true, haprovider: 'kvmhaprovider' });
    expect((await world.ok('listHostHAResources', { hostid: hostOfIndex(1).id })).hostha).toEqual([expect.objectContaining({ hostid: hostOfIndex(1).id, hastate: 'Available', haenable: true })]);
  }, patience(200_000));

  it('power loss: host HA walks host 1 to Fenced with one power OFF, and only then does the HA guest run on host 2, with a new boot id', async () => {
    const states: string[] = [];
    let host1PidsWhenSeen: number[] | undefined;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const state = (await listedHost(1).catch(() => undefined))?.hostha?.hastate;
        if (state && states.at(-1) !== state) states.push(state);
        if (host1PidsWhenSeen === undefined && (await domainsOn(2).catch(() => [] as string[])).includes(haVm.instancename)) host1PidsWhenSeen = pidsOfHost(1);
        await sleep(250);
      }
    })();
    await lab.powerOff(1);
    // Suspect once the heartbeat is stale (3 periods), proof once it is older than the fence timeout and 3 periods, then the fence and the restart.
    const within = (FENCE_TIMEOUT + 3 * STORAGE_HEARTBEAT_SECONDS + 3 * PING_INTERVAL + 10 * SWEEP_SECONDS) * 1000 + 120_000;
    const moved = await until('the HA guest to run on host 2', () => listedVm(haVm.id), (v) => v.state === 'Running' && v.hostid === hostOfIndex(2).id, { within });
    const status = await waitForGuest(moved.nic[0].ipaddress, 'the HA guest to answer from host 2', (s) => s.bootId !== firstBootId, 120_000);
    watching = false;
    await watch;
    expect(status.bootId).not.toBe(firstBootId);
    expect(host1PidsWhenSeen).toEqual([]);
    expect((await listedHost(1)).hostha.hastate).toBe('Fenced');
    const events = ((await world.ok('listEvents', { type: 'HOST.HA.STATE.TRANSITION', listall: true, pagesize: 100 })).event as any[]).filter((e) => e.description.includes(hostOfIndex(1).id));
    const walked = events.map((e) => /to (\w+) on event/.exec(e.description)![1]).reverse();
    expect(walked).toEqual(['Available', 'Suspect', 'Checking', 'Recovering', 'Fencing', 'Fenced']);
    // What the listing showed is that walk, seen at the sweeper's pace (a state may pass between two reads).
    expect(states.filter((s) => walked.includes(s))).toEqual(walked.filter((s) => states.includes(s)));
    // One fence: one "HA Fencing" alert.
    const fences = ((await world.ok('listAlerts', { type: 30 })).alert as any[]).filter((a) => a.description === `HA Fencing of host id=${hostOfIndex(1).id}, in dc id=${world.zoneId} performed`);
    expect(fences.length).toBe(1);
  }, patience(300_000));
});

/** The processes in lab host `index`'s network namespace (none: the host is off). */
function pidsOfHost(index: number): number[] {
  const out = execFileSync('ip', ['netns', 'pids', `${lab.names.netnsPrefix}${index}`], { encoding: 'utf8' });
  return out.split('\n').map((l) => Number(l.trim())).filter((pid) => pid > 0 && alive(pid));
}
