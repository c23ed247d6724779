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
//    there host 1 runs nothing), the non-HA guest ends Stopped, the alerts tell the story.
// 3. Host 1 back, host 2 loses power, and the agent is killed as the fence begins and started again:
//    the guest comes back on host 1 with one more HA start, one domain. Needs root.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/local/ports.ts';
import { labAt } from '../lab/lab.ts';
import { startAgent, type RunningAgent } from '../support/agent.ts';
import { waitForGuest } from '../support/guest.ts';
import { DOWN_WITHIN, FENCE_TIMEOUT, PING_INTERVAL, SWEEP_SECONDS, startHaLab, type HaLab } from '../support/ha-lab.ts';
import { patience, sleep, until } from '../support/wait.ts';
import { STORAGE_HEARTBEAT_SECONDS } from '../../shared/storage-heartbeat.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(14);

let ha: HaLab;
let haVm: any;
let plainVm: any;
/** The HA guest's boot id on host 1. */
let firstBootId: string;
/** The agent started again in the last test. */
let restarted: RunningAgent | undefined;

const ipOf = (v: any): string => v.nic[0].ipaddress;

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'VM HA on a two-host lab with BMCs' : 'VM HA on a two-host lab with BMCs (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    ha = await startHaLab(lab, 'halab');
    const hostStates = async () => ((await ha.world.ok('listHosts', { zoneid: ha.world.zoneId })).host as any[]).map((h) => `${h.name} ${h.state} mem ${h.memoryallocated}/${h.memorytotal}`).join('; ');
    const deploy = (params: Record<string, string | number | boolean>) => ha.world.done('deployVirtualMachine', params).catch(async (error) => Promise.reject(new Error(`${error.message}\nhosts: ${await hostStates()}`)));
    haVm = (await deploy(ha.world.deployParams('ha-guest', { serviceofferingid: ha.haOffering, hostid: ha.hostOfIndex(1).id }))).virtualmachine;
    plainVm = (await deploy(ha.world.deployParams('plain-guest', { hostid: ha.hostOfIndex(1).id }))).virtualmachine;
  }, patience(400_000));

  afterAll(async () => {
    await restarted?.stop();
    await ha?.close();
    await lab.down();
  }, patience(120_000));

  it('runs an HA guest and a non-HA one on host 1', async () => {
    expect(haVm).toMatchObject({ haenable: true, hostid: ha.hostOfIndex(1).id, state: 'Running' });
    expect(plainVm).toMatchObject({ haenable: false, hostid: ha.hostOfIndex(1).id, state: 'Running' });
    firstBootId = (await waitForGuest(ipOf(haVm), 'the HA guest to boot', () => true, 120_000)).bootId;
  }, patience(150_000));

  it('partition: host 1 cut off while it runs goes Down, but its storage heartbeat lives: nothing is fenced, stopped or started elsewhere, and back it is as it was', async () => {
    const seenOn2 = new Set<string>();
    let watching = true;
    const watch = (async () => {
      while (watching) {
        for (const name of await ha.domainsOn(2).catch(() => [] as string[])) seenOn2.add(name);
        await sleep(500);
      }
    })();
    await lab.cutLink(1);
    try {
      await until('host 1 to be Down', () => ha.listedHost(1), (h) => h.state === 'Down', { within: DOWN_WITHIN });
      await until('HA to say it leaves host 1 alone', () => ha.alerts(7), (list) => list.some((a) => a.description.includes(ha.hostOfIndex(1).id) && a.description.includes('is unreachable but alive')), { within: 30_000 });
      const seen = (await ha.fleet()).host.find((h: any) => h.id === ha.hostOfIndex(1).id);
      expect(seen.haspared).toContain('still writes its storage heartbeat');
      expect(seen.storageheartbeatage).toBeLessThanOrEqual(15);
      // Twice the fence timeout and two sweeps more, in which a dead host would have been fenced and its VMs moved.
      await sleep((2 * FENCE_TIMEOUT + 2 * SWEEP_SECONDS) * 1000);
      expect(await ha.listedVm(haVm.id)).toMatchObject({ state: 'Running', hostid: ha.hostOfIndex(1).id });
      expect(await ha.listedVm(plainVm.id)).toMatchObject({ state: 'Running', hostid: ha.hostOfIndex(1).id });
      expect((await ha.alerts(30)).filter((a) => a.description.includes(ha.hostOfIndex(1).id))).toEqual([]);
      // Its guests run on where they were: libvirt on host 1 (reached through its namespace, not the cut link) says so.
      expect(await ha.domainsOn(1)).toEqual(expect.arrayContaining([haVm.instancename, plainVm.instancename]));
    } finally {
      await lab.mendLink(1);
    }
    await until('host 1 to be Up again', () => ha.listedHost(1), (h) => h.state === 'Up', { within: (3 * PING_INTERVAL + 2 * SWEEP_SECONDS) * 1000 + 30_000 });
    watching = false;
    await watch;
    expect([...seenOn2].filter((name) => name === haVm.instancename || name === plainVm.instancename)).toEqual([]);
    // The same boot: the guest was never stopped.
    expect((await waitForGuest(ipOf(haVm), 'the HA guest to answer again', () => true, 60_000)).bootId).toBe(firstBootId);
    // The next sweep forgets why HA spared it, so a later failure is judged afresh.
    await until('HA to forget it spared host 1', async () => (await ha.fleet()).host.find((h: any) => h.id === ha.hostOfIndex(1).id), (h) => h.haspared === undefined, { within: 5 * SWEEP_SECONDS * 1000 + 10_000 });
  }, patience(300_000));

  it('total power loss (its BMC gone too): the BMC cannot fence host 1, its storage heartbeat proves it dead, and the HA guest answers from host 2 with a new boot id, never on two hosts', async () => {
    let whenSeen: any;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const on2 = await ha.domainsOn(2).catch(() => [] as string[]);
        if (on2.includes(haVm.instancename)) {
          // The first sighting on host 2: host 1 runs nothing.
          whenSeen = { host1Pids: ha.pidsOfHost(1) };
          return;
        }
        await sleep(200);
      }
    })();
    await lab.powerLoss(1);
    await until('host 1 to be Down', () => ha.listedHost(1), (h) => h.state === 'Down', { within: DOWN_WITHIN });
    // Proof needs a heartbeat older than the fence timeout and three of its periods, read after the fence began.
    const proofWithin = (FENCE_TIMEOUT + 3 * STORAGE_HEARTBEAT_SECONDS + 3 * PING_INTERVAL + 2 * SWEEP_SECONDS) * 1000;
    const moved = await until('the HA guest to run on host 2', () => ha.listedVm(haVm.id), (v) => v.state === 'Running' && v.hostid === ha.hostOfIndex(2).id, { within: proofWithin + 120_000 });
    const status = await waitForGuest(ipOf(moved), 'the HA guest to answer from host 2', (s) => s.bootId !== firstBootId, 120_000);
    watching = false;
    await watch;
    expect(status.bootId).not.toBe(firstBootId);
    expect(whenSeen, 'the domain was seen on host 2').toBeDefined();
    expect(whenSeen.host1Pids).toEqual([]);

    const host1 = await ha.listedHost(1);
    // Never fenced by its BMC, which is gone: the proof was the heartbeat.
    expect(host1.state).toBe('Down');
    expect(host1.outofbandmanagement.powerstate).not.toBe('Off');
    expect(await ha.listedVm(plainVm.id)).toMatchObject({ state: 'Stopped' });
    const haActions = (await ha.alerts(30)).map((a) => a.description as string);
    expect(haActions.some((d) => d.startsWith(`HA restarting VM ${haVm.name} `) && d.includes('proven dead without its BMC'))).toBe(true);
    expect((await ha.alerts(8)).some((a) => a.description === `HA starting VM: ${haVm.name} (${haVm.instancename})`)).toBe(true);
    expect(Number(host1.memoryallocated)).toBe(0);
  }, patience(300_000));

  it('the agent killed and started again in the middle of an HA recovery: the recovery completes, once', async () => {
    // Host 1 back (its BMC, then the power through Mold), Up and empty.
    await lab.startBmc(1, ha.labInfo.bmcPassword);
    await ha.world.done('issueOutOfBandManagementPowerAction', { hostid: ha.hostOfIndex(1).id, action: 'ON' });
    await until('host 1 to be Up again', () => ha.listedHost(1), (h) => h.state === 'Up', { within: 180_000 });
    const before = await waitForGuest(ipOf(haVm), 'the HA guest on host 2', () => true, 60_000);
    const startsBefore = await haStarts();
    await lab.powerOff(2);
    await until('the fence of host 2 to begin', () => ha.alerts(30), (list) => list.some((a) => a.description === `HA Fencing of host id=${ha.hostOfIndex(2).id}, in dc id=${ha.world.zoneId} performed`), { within: DOWN_WITHIN + 30_000 });
    // The agent dies with the fence on its queue, and comes back.
    ha.world.agent.process.kill('SIGKILL');
    restarted = await startAgent(ha.world.agentDir, { MOLD_AGENT_VLAN_FALLBACK: 'isolated', MOLD_AGENT_CONSOLE_LISTEN: `127.0.0.1:${await freePort()}` });
    // A lost fence is tried again after twice the fence timeout; the restart follows.
    const moved = await until('the HA guest to run on host 1', () => ha.listedVm(haVm.id), (v) => v.state === 'Running' && v.hostid === ha.hostOfIndex(1).id, { within: (4 * FENCE_TIMEOUT + 3 * PING_INTERVAL) * 1000 + 180_000 });
    const status = await waitForGuest(ipOf(moved), 'the HA guest to answer from host 1', (s) => s.bootId !== before.bootId, 120_000);
    expect(status.bootId).not.toBe(before.bootId);
    // Once: one more HA start of the guest, and its one domain on host 1.
    expect((await haStarts()) - startsBefore).toBe(1);
    expect((await ha.domainsOn(1)).filter((name) => name === haVm.instancename)).toHaveLength(1);
    expect(ha.pidsOfHost(2)).toEqual([]);
  }, patience(400_000));
});

/** "HA starting VM" alerts of the HA guest so far. */
async function haStarts(): Promise<number> {
  return (await ha.alerts(8)).filter((a) => a.description === `HA starting VM: ${haVm.name} (${haVm.instancename})`).length;
}
