// Host HA end to end on a two-host lab (lab 28) with real guests and BMCs (ipmi_sim), through the HTTP
// API and a real agent: configureHAForHost and enableHAForHost on host 1 (upstream's KVM provider),
// which runs an HA guest. Host 1 loses power (its BMC stays). Host HA walks it through upstream's
// states, as listHosts' hostha and the HOST.HA.STATE.TRANSITION events show: Suspect (the agent cannot
// reach it and its storage heartbeat stopped), Checking, Recovering (the heartbeat, read by host 2, is
// older than a fence could take), Fencing (one power OFF through the BMC), Fenced (the BMC reads Off);
// only then is the HA guest started on host 2, where it answers with a new boot id, host 1 running
// nothing at its first sighting there. The cluster's accepted share of problem hosts is raised to half:
// upstream's 0.3 lets no host of a two-host cluster be fenced. Needs root.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labAt } from '../lab/lab.ts';
import { waitForGuest } from '../support/guest.ts';
import { FENCE_TIMEOUT, PING_INTERVAL, SWEEP_SECONDS, startHaLab, type HaLab } from '../support/ha-lab.ts';
import { patience, sleep, until } from '../support/wait.ts';
import { STORAGE_HEARTBEAT_SECONDS } from '../../shared/storage-heartbeat.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(28);

let ha: HaLab;
let haVm: any;
let firstBootId: string;

const ipOf = (v: any): string => v.nic[0].ipaddress;

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'host HA on a two-host lab with BMCs' : 'host HA on a two-host lab with BMCs (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    ha = await startHaLab(lab, 'hostha');
    await ha.world.ok('updateConfiguration', { name: 'kvm.ha.accepted.problematic.hosts.ratio', value: '0.5', clusterid: (await ha.listedHost(1)).clusterid });
    haVm = (await ha.world.done('deployVirtualMachine', ha.world.deployParams('ha-guest', { serviceofferingid: ha.haOffering, hostid: ha.hostOfIndex(1).id }))).virtualmachine;
  }, patience(400_000));

  afterAll(async () => {
    await ha?.close();
    await lab.down();
  }, patience(120_000));

  it('configures and enables HA for host 1 with the KVM provider: Available once the sweeper has seen it', async () => {
    firstBootId = (await waitForGuest(ipOf(haVm), 'the HA guest to boot', () => true, 120_000)).bootId;
    expect((await ha.world.ok('listHostHAProviders', { hypervisor: 'KVM' })).haprovider).toEqual([{ haprovider: 'KVMHAProvider' }]);
    await ha.world.done('configureHAForHost', { hostid: ha.hostOfIndex(1).id, provider: 'KVMHAProvider' });
    await ha.world.done('enableHAForHost', { hostid: ha.hostOfIndex(1).id });
    const host = await until('host 1 to be Available for HA', () => ha.listedHost(1), (h) => h.hostha?.hastate === 'Available', { within: 10 * SWEEP_SECONDS * 1000 + 10_000 });
    expect(host.hostha).toMatchObject({ haenable: true, haprovider: 'kvmhaprovider' });
    expect((await ha.world.ok('listHostHAResources', { hostid: ha.hostOfIndex(1).id })).hostha).toEqual([expect.objectContaining({ hostid: ha.hostOfIndex(1).id, hastate: 'Available', haenable: true })]);
  }, patience(200_000));

  it('power loss: host HA walks host 1 to Fenced with one power OFF, and only then does the HA guest run on host 2, with a new boot id', async () => {
    const states: string[] = [];
    let host1PidsWhenSeen: number[] | undefined;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const state = (await ha.listedHost(1).catch(() => undefined))?.hostha?.hastate;
        if (state && states.at(-1) !== state) states.push(state);
        if (host1PidsWhenSeen === undefined && (await ha.domainsOn(2).catch(() => [] as string[])).includes(haVm.instancename)) host1PidsWhenSeen = ha.pidsOfHost(1);
        await sleep(250);
      }
    })();
    await lab.powerOff(1);
    // Suspect once the heartbeat is stale (3 periods), proof once it is older than the fence timeout and 3 periods, then the fence and the restart.
    const within = (FENCE_TIMEOUT + 3 * STORAGE_HEARTBEAT_SECONDS + 3 * PING_INTERVAL + 10 * SWEEP_SECONDS) * 1000 + 120_000;
    const moved = await until('the HA guest to run on host 2', () => ha.listedVm(haVm.id), (v) => v.state === 'Running' && v.hostid === ha.hostOfIndex(2).id, { within });
    const status = await waitForGuest(ipOf(moved), 'the HA guest to answer from host 2', (s) => s.bootId !== firstBootId, 120_000);
    watching = false;
    await watch;
    expect(status.bootId).not.toBe(firstBootId);
    expect(host1PidsWhenSeen).toEqual([]);
    expect((await ha.listedHost(1)).hostha.hastate).toBe('Fenced');
    const events = ((await ha.world.ok('listEvents', { type: 'HOST.HA.STATE.TRANSITION', listall: true, pagesize: 100 })).event as any[]).filter((e) => e.description.includes(ha.hostOfIndex(1).id));
    const walked = events.map((e) => /to (\w+) on event/.exec(e.description)![1]).reverse();
    // Disabled first when a sweep came between configureHAForHost (the switch off) and enableHAForHost.
    expect(walked[0] === 'Disabled' ? walked.slice(1) : walked).toEqual(['Available', 'Suspect', 'Checking', 'Recovering', 'Fencing', 'Fenced']);
    // What the listing showed is that walk, seen at the sweeper's pace (a state may pass between two reads).
    expect(states.filter((s) => walked.includes(s))).toEqual(walked.filter((s) => states.includes(s)));
    // One fence: one "HA Fencing" alert.
    const fences = ((await ha.world.ok('listAlerts', { type: 30 })).alert as any[]).filter((a) => a.description === `HA Fencing of host id=${ha.hostOfIndex(1).id}, in dc id=${ha.world.zoneId} performed`);
    expect(fences.length).toBe(1);
  }, patience(300_000));
});
