// VM HA end to end on a two-host lab (lab 14) with real guests and BMCs (ipmi_sim, test/lab/bmc.sh),
// through the HTTP API and a real agent. Host 1 runs an HA guest (offering offerha) and a non-HA one;
// its power is cut together with its BMC (lab powerLoss). While the BMC is gone Mold cannot fence the
// host, so the HA guest is not started anywhere (no fencing by guesswork). Its BMC comes back (the
// host itself stays off): the next fence (power OFF through ipmitool) is confirmed Off, and only then
// does the HA guest start on host 2 — it answers its status page there with a new boot id, and at the
// moment its domain first shows on host 2 host 1 is fenced and runs nothing. The non-HA guest ends
// Stopped; host 1 ends Down with its BMC reading Off; the alerts tell the story. Needs root.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, labAt, type Lab } from '../lab/lab.ts';
import { adminClient } from '../support/client.ts';
import { waitForGuest } from '../support/guest.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';
import { buildVmWorld, PING_INTERVAL_SECONDS, type VmWorld } from '../support/vm-world.ts';
import { patience, sleep, until } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(14);
const VIRSH = ['virsh', '-c', 'qemu:///system'];
/** The world's ping.interval (reports every 10 s: shorter ones leave hosts silent on a loaded machine) and upstream's ping.timeout; a failed fence tried again after 10 s. */
const PING_INTERVAL = PING_INTERVAL_SECONDS;
const PING_TIMEOUT = 2.5;
const FENCE_TIMEOUT = 10;
const SWEEP_SECONDS = 2;

let labInfo: Lab;
let runtime: RunningRuntime;
let world: VmWorld;
let haVm: any;
let plainVm: any;
/** The HA guest's boot id on host 1. */
let firstBootId: string;

const ipOf = (v: any): string => v.nic[0].ipaddress;
const hostOfIndex = (index: number) => world.hosts.find((h) => h.index === index)!;
const domainsOn = async (index: number) => (await lab.hostExec(index, [...VIRSH, 'list', '--name'])).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
const listedHost = async (index: number) => (await world.ok('listHosts', { id: hostOfIndex(index).id })).host[0];
const listedVm = async (id: string) => (await world.ok('listVirtualMachines', { id, listall: true })).virtualmachine[0];
const alerts = async (type: number) => ((await world.ok('listAlerts', { type })).alert ?? []) as any[];
/** Deadline for a host to go Down once its reports say it cannot be reached: ping.timeout × interval, a report and two sweeps. */
const DOWN_WITHIN = (PING_TIMEOUT * PING_INTERVAL + PING_INTERVAL + 2 * SWEEP_SECONDS) * 1000 + 10_000;

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'VM HA on a two-host lab with BMCs' : 'VM HA on a two-host lab with BMCs (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    [labInfo, runtime] = await Promise.all([lab.up(2), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: String(SWEEP_SECONDS) } })]);
    world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials), { name: 'halab', template: 'guest', network: 'untagged' });
    for (const [name, value] of [['ping.interval', PING_INTERVAL], ['ping.timeout', PING_TIMEOUT], ['kvm.ha.fence.timeout', FENCE_TIMEOUT]] as const) await world.ok('updateConfiguration', { name, value });
    await until('both hosts Up', async () => (await world.ok('listHosts', { zoneid: world.zoneId })).host as any[], (hs) => hs.length === 2 && hs.every((h) => h.state === 'Up'), { within: 60_000 });
    for (const h of world.hosts) {
      const bmc = labInfo.hosts[h.index - 1]!.bmc;
      await world.ok('configureOutOfBandManagement', { hostid: h.id, driver: 'ipmitool', address: bmc.address, port: String(bmc.port), username: bmc.username, password: labInfo.bmcPassword });
      await world.done('enableOutOfBandManagementForHost', { hostid: h.id });
    }
    const haOffering = (await world.ok('createServiceOffering', { name: 'tiny-ha', displaytext: 'tiny-ha', cpunumber: 1, cpuspeed: 500, memory: 128, offerha: true })).serviceoffering.id;
    const hostStates = async () => ((await world.ok('listHosts', { zoneid: world.zoneId })).host as any[]).map((h) => `${h.name} ${h.state} mem ${h.memoryallocated}/${h.memorytotal}`).join('; ');
    const deploy = (params: Record<string, string | number | boolean>) => world.done('deployVirtualMachine', params).catch(async (error) => Promise.reject(new Error(`${error.message}\nhosts: ${await hostStates()}`)));
    haVm = (await deploy(world.deployParams('ha-guest', { serviceofferingid: haOffering, hostid: hostOfIndex(1).id }))).virtualmachine;
    plainVm = (await deploy(world.deployParams('plain-guest', { hostid: hostOfIndex(1).id }))).virtualmachine;
  }, patience(400_000));

  afterAll(async () => {
    await world?.close();
    await runtime?.stop();
    await lab.down();
  }, patience(120_000));

  it('runs an HA guest and a non-HA one on host 1', async () => {
    expect(haVm).toMatchObject({ haenable: true, hostid: hostOfIndex(1).id, state: 'Running' });
    expect(plainVm).toMatchObject({ haenable: false, hostid: hostOfIndex(1).id, state: 'Running' });
    firstBootId = (await waitForGuest(ipOf(haVm), 'the HA guest to boot', () => true, 120_000)).bootId;
  }, patience(150_000));

  it('power loss with the BMC gone: host 1 goes Down, the fence cannot be confirmed, and the HA guest is started nowhere', async () => {
    await lab.powerLoss(1);
    await until('host 1 to be Down', () => listedHost(1), (h) => h.state === 'Down', { within: DOWN_WITHIN });
    // A fence was tried (HA_ACTION alert) and the BMC did not answer it.
    await until('a fence of host 1 to be tried', () => alerts(30), (list) => list.some((a) => a.description.includes(hostOfIndex(1).id)), { within: 30_000 });
    await until('host 1’s BMC to read Unknown', () => listedHost(1), (h) => h.outofbandmanagement.powerstate === 'Unknown', { within: 60_000 });
    // Not fenced: the HA guest stays recorded on host 1 and runs nowhere else.
    expect(await listedVm(haVm.id)).toMatchObject({ state: 'Running', hostid: hostOfIndex(1).id });
    expect(await domainsOn(2)).not.toContain(haVm.instancename);
    // The non-HA guest needs no fence: Stopped as upstream, with its alert.
    await until('the non-HA guest to be Stopped', () => listedVm(plainVm.id), (v) => v.state === 'Stopped', { within: 30_000 });
    expect((await alerts(8)).some((a) => a.description.startsWith(`VM (name: ${plainVm.name}`) && a.description.includes('stopped unexpectedly'))).toBe(true);
  }, patience(240_000));

  it('its BMC back (the host still off): host 1 is fenced, then the HA guest runs on host 2 with a new boot id, never on two hosts', async () => {
    let fencedWhenSeen: any;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const on2 = await domainsOn(2).catch(() => [] as string[]);
        if (on2.includes(haVm.instancename)) {
          // The first sighting on host 2: host 1 must be fenced (its BMC read Off) and run nothing.
          fencedWhenSeen = { host: await listedHost(1), host1Pids: pidsOfHost(1) };
          return;
        }
        await sleep(200);
      }
    })();
    await lab.startBmc(1, labInfo.bmcPassword);
    const moved = await until('the HA guest to run on host 2', () => listedVm(haVm.id), (v) => v.state === 'Running' && v.hostid === hostOfIndex(2).id, { within: FENCE_TIMEOUT * 1000 + 120_000 });
    const status = await waitForGuest(ipOf(moved), 'the HA guest to answer from host 2', (s) => s.bootId !== firstBootId, 120_000);
    watching = false;
    await watch;
    expect(status.bootId).not.toBe(firstBootId);
    expect(fencedWhenSeen, 'the domain was seen on host 2').toBeDefined();
    expect(fencedWhenSeen.host.outofbandmanagement.powerstate).toBe('Off');
    expect(fencedWhenSeen.host1Pids).toEqual([]);
    expect(await domainsOn(2)).toContain(haVm.instancename);

    const host1 = await listedHost(1);
    expect(host1).toMatchObject({ state: 'Down', outofbandmanagement: { powerstate: 'Off' } });
    expect(await listedVm(plainVm.id)).toMatchObject({ state: 'Stopped' });
    expect((await alerts(8)).some((a) => a.description === `HA starting VM: ${haVm.name} (${haVm.instancename})`)).toBe(true);
    expect((await alerts(30)).some((a) => a.description === `HA Fencing of host id=${hostOfIndex(1).id}, in dc id=${world.zoneId} performed`)).toBe(true);
    // Host 2's books hold the HA guest; host 1's hold nothing.
    expect(Number(host1.memoryallocated)).toBe(0);
  }, patience(300_000));
});

/** The processes in lab host `index`'s network namespace (none: the host is off). */
function pidsOfHost(index: number): number[] {
  const out = execFileSync('ip', ['netns', 'pids', `${lab.names.netnsPrefix}${index}`], { encoding: 'utf8' });
  return out.split('\n').map((l) => Number(l.trim())).filter((pid) => pid > 0 && alive(pid));
}
