// VM HA end to end on a two-host lab (lab 14) with real guests and BMCs (ipmi_sim, test/lab/bmc.sh),
// through the HTTP API and a real agent; both hosts write their storage heartbeat to the lab's shared
// pool. Host 1 runs an HA guest (offering offerha) and a non-HA one.
// 1. Partition: host 1's link is cut while it runs. The agent cannot reach it and it goes Down, but
//    host 2 reads its heartbeat fresh: HA fences nothing, stops nothing and starts nothing elsewhere
//    (host 2's libvirt is watched throughout), and says so; with the link back, host 1 is Up and the
//    guest still has its first boot id.
// 2. Total power loss: host 1's power is cut together with its BMC (lab powerLoss). The fence through
//    the BMC cannot be confirmed; the heartbeat, read by host 2 older than a fence could take, proves
//    host 1 dead: the HA guest starts on host 2 (it answers with a new boot id; at its first sighting
//    there host 1 runs nothing), the non-HA guest ends Stopped, the alerts tell the story. Needs root.
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
const fleet = async () => (await world.ok('listFleetStatus', { zoneid: world.zoneId })).fleetstatus[0];
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

  it('partition: host 1 cut off while it runs goes Down, but its storage heartbeat lives: nothing is fenced, stopped or started elsewhere, and back it is as it was', async () => {
    const seenOn2 = new Set<string>();
    let watching = true;
    const watch = (async () => {
      while (watching) {
        for (const name of await domainsOn(2).catch(() => [] as string[])) seenOn2.add(name);
        await sleep(500);
      }
    })();
    await lab.cutLink(1);
    try {
      await until('host 1 to be Down', () => listedHost(1), (h) => h.state === 'Down', { within: DOWN_WITHIN });
      await until('HA to say it leaves host 1 alone', () => alerts(7), (list) => list.some((a) => a.description.includes(hostOfIndex(1).id) && a.description.includes('is unreachable but alive')), { within: 30_000 });
      const seen = (await fleet()).host.find((h: any) => h.id === hostOfIndex(1).id);
      expect(seen.haspared).toContain('still writes its storage heartbeat');
      expect(seen.storageheartbeatage).toBeLessThanOrEqual(15);
      // Twice the fence timeout and two sweeps more, in which a dead host would have been fenced and its VMs moved.
      await sleep((2 * FENCE_TIMEOUT + 2 * SWEEP_SECONDS) * 1000);
      expect(await listedVm(haVm.id)).toMatchObject({ state: 'Running', hostid: hostOfIndex(1).id });
      expect(await listedVm(plainVm.id)).toMatchObject({ state: 'Running', hostid: hostOfIndex(1).id });
      expect((await alerts(30)).filter((a) => a.description.includes(hostOfIndex(1).id))).toEqual([]);
      // Its guests run on where they were: libvirt on host 1 (reached through its namespace, not the cut link) says so.
      expect(await domainsOn(1)).toEqual(expect.arrayContaining([haVm.instancename, plainVm.instancename]));
    } finally {
      await lab.mendLink(1);
    }
    await until('host 1 to be Up again', () => listedHost(1), (h) => h.state === 'Up', { within: (3 * PING_INTERVAL + 2 * SWEEP_SECONDS) * 1000 + 30_000 });
    watching = false;
    await watch;
    expect([...seenOn2].filter((name) => name === haVm.instancename || name === plainVm.instancename)).toEqual([]);
    // The same boot: the guest was never stopped.
    expect((await waitForGuest(ipOf(haVm), 'the HA guest to answer again', () => true, 60_000)).bootId).toBe(firstBootId);
    // The next sweep forgets why HA spared it, so a later failure is judged afresh.
    await until('HA to forget it spared host 1', async () => (await fleet()).host.find((h: any) => h.id === hostOfIndex(1).id), (h) => h.haspared === undefined, { within: 5 * SWEEP_SECONDS * 1000 + 10_000 });
  }, patience(300_000));

  it('total power loss (its BMC gone too): the BMC cannot fence host 1, its storage heartbeat proves it dead, and the HA guest answers from host 2 with a new boot id, never on two hosts', async () => {
    let whenSeen: any;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const on2 = await domainsOn(2).catch(() => [] as string[]);
        if (on2.includes(haVm.instancename)) {
          // The first sighting on host 2: host 1 runs nothing.
          whenSeen = { host1Pids: pidsOfHost(1) };
          return;
        }
        await sleep(200);
      }
    })();
    await lab.powerLoss(1);
    await until('host 1 to be Down', () => listedHost(1), (h) => h.state === 'Down', { within: DOWN_WITHIN });
    // Proof needs a heartbeat older than the fence timeout and three of its periods, read after the fence began.
    const proofWithin = (FENCE_TIMEOUT + 3 * STORAGE_HEARTBEAT_SECONDS + 3 * PING_INTERVAL + 2 * SWEEP_SECONDS) * 1000;
    const moved = await until('the HA guest to run on host 2', () => listedVm(haVm.id), (v) => v.state === 'Running' && v.hostid === hostOfIndex(2).id, { within: proofWithin + 120_000 });
    const status = await waitForGuest(ipOf(moved), 'the HA guest to answer from host 2', (s) => s.bootId !== firstBootId, 120_000);
    watching = false;
    await watch;
    expect(status.bootId).not.toBe(firstBootId);
    expect(whenSeen, 'the domain was seen on host 2').toBeDefined();
    expect(whenSeen.host1Pids).toEqual([]);

    const host1 = await listedHost(1);
    // Never fenced by its BMC, which is gone: the proof was the heartbeat.
    expect(host1.state).toBe('Down');
    expect(host1.outofbandmanagement.powerstate).not.toBe('Off');
    expect(await listedVm(plainVm.id)).toMatchObject({ state: 'Stopped' });
    const haActions = (await alerts(30)).map((a) => a.description as string);
    expect(haActions.some((d) => d.startsWith(`HA restarting VM ${haVm.name} `) && d.includes('proven dead without its BMC'))).toBe(true);
    expect((await alerts(8)).some((a) => a.description === `HA starting VM: ${haVm.name} (${haVm.instancename})`)).toBe(true);
    expect(Number(host1.memoryallocated)).toBe(0);
  }, patience(300_000));
});

/** The processes in lab host `index`'s network namespace (none: the host is off). */
function pidsOfHost(index: number): number[] {
  const out = execFileSync('ip', ['netns', 'pids', `${lab.names.netnsPrefix}${index}`], { encoding: 'utf8' });
  return out.split('\n').map((l) => Number(l.trim())).filter((pid) => pid > 0 && alive(pid));
}
