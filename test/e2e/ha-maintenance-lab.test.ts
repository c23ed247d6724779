// HA maintenance end to end on a two-host lab (lab 10) with real guests and BMCs (ipmi_sim), through the
// HTTP API and a real agent. Host 1 runs an HA guest and a non-HA one. With global HA maintenance on
// (updateConfiguration vm.ha.enabled=false) host 1 loses power (its BMC stays up and reads Off): it goes
// Down, and HA holds everything back — no fence, neither guest marked Stopped, the HA guest started
// nowhere — and says so once (the "VM high availability manager is disabled" host alert, listFleetStatus's
// haheld and hamaintenance). With HA on again, the next passes act on what they then read: host 1 is
// fenced (a power OFF confirmed Off, after the pause), the HA guest answers from host 2 with a new boot
// id, and the non-HA guest is Stopped. Needs root.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labAt } from '../lab/lab.ts';
import { waitForGuest } from '../support/guest.ts';
import { DOWN_WITHIN, FENCE_TIMEOUT, SWEEP_SECONDS, startHaLab, type HaLab } from '../support/ha-lab.ts';
import { patience, sleep, until } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(10);

let ha: HaLab;
let haVm: any;
let plainVm: any;
let firstBootId: string;

const ipOf = (v: any): string => v.nic[0].ipaddress;

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'HA maintenance on a two-host lab with BMCs' : 'HA maintenance on a two-host lab with BMCs (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    ha = await startHaLab(lab, 'hamlab');
    haVm = (await ha.world.done('deployVirtualMachine', ha.world.deployParams('ha-guest', { serviceofferingid: ha.haOffering, hostid: ha.hostOfIndex(1).id }))).virtualmachine;
    plainVm = (await ha.world.done('deployVirtualMachine', ha.world.deployParams('plain-guest', { hostid: ha.hostOfIndex(1).id }))).virtualmachine;
  }, patience(400_000));

  afterAll(async () => {
    await ha?.close();
    await lab.down();
  }, patience(120_000));

  it('runs an HA guest and a non-HA one on host 1', async () => {
    expect(haVm).toMatchObject({ haenable: true, hostid: ha.hostOfIndex(1).id, state: 'Running' });
    expect(plainVm).toMatchObject({ haenable: false, hostid: ha.hostOfIndex(1).id, state: 'Running' });
    firstBootId = (await waitForGuest(ipOf(haVm), 'the HA guest to boot', () => true, 120_000)).bootId;
  }, patience(150_000));

  it('global HA maintenance: host 1 dies and goes Down, and nothing is fenced, stopped or restarted; it is said once', async () => {
    await ha.world.ok('updateConfiguration', { name: 'vm.ha.enabled', value: 'false' });
    expect(await ha.fleet()).toMatchObject({ vmhaenabled: false, hamaintenance: 'Global', globalhamaintenance: true });
    await lab.powerOff(1);
    await until('host 1 to be Down', () => ha.listedHost(1), (h) => h.state === 'Down', { within: DOWN_WITHIN });
    const heldAlert = `Unable to schedule restart for VMs on host name: ${(await ha.listedHost(1)).name} (id:${ha.hostOfIndex(1).id})`;
    await until('the HA pass to say it holds back on host 1', () => ha.alerts(7), (list) => list.some((a) => a.description.startsWith(heldAlert)), { within: 30_000 });
    expect((await ha.fleet()).host.find((h: any) => h.id === ha.hostOfIndex(1).id).haheld).toMatch(/^VM HA is held \(vm\.ha\.enabled is false\): it would stop 1 VM\(s\) that are not HA-enabled, fence the host/);
    // Watch for longer than a fence would take to start and be retried, sweep after sweep (the window
    // derives from kvm.ha.fence.timeout and the sweep period).
    const until_ = Date.now() + (2 * FENCE_TIMEOUT + 4 * SWEEP_SECONDS) * 1000;
    while (Date.now() < until_) {
      expect(await ha.domainsOn(2)).not.toContain(haVm.instancename);
      await sleep(1000);
    }
    expect(await ha.listedVm(haVm.id)).toMatchObject({ state: 'Running', hostid: ha.hostOfIndex(1).id });
    expect(await ha.listedVm(plainVm.id)).toMatchObject({ state: 'Running', hostid: ha.hostOfIndex(1).id });
    expect((await ha.alerts(30)).filter((a) => a.description.includes(ha.hostOfIndex(1).id))).toEqual([]);
    expect((await ha.alerts(7)).filter((a) => a.description.startsWith(heldAlert))).toHaveLength(1);
  }, patience(240_000));

  it('HA on again: host 1 is fenced afresh, the HA guest answers from host 2 with a new boot id, the non-HA guest is Stopped', async () => {
    await ha.world.ok('updateConfiguration', { name: 'vm.ha.enabled', value: 'true' });
    expect(await ha.fleet()).toMatchObject({ vmhaenabled: true, hamaintenance: 'None', globalhamaintenance: false });
    const moved = await until('the HA guest to run on host 2', () => ha.listedVm(haVm.id), (v) => v.state === 'Running' && v.hostid === ha.hostOfIndex(2).id, { within: FENCE_TIMEOUT * 1000 + 120_000 });
    const status = await waitForGuest(ipOf(moved), 'the HA guest to answer from host 2', (s) => s.bootId !== firstBootId, 120_000);
    expect(status.bootId).not.toBe(firstBootId);
    expect(await ha.domainsOn(2)).toContain(haVm.instancename);
    expect(await ha.listedVm(plainVm.id)).toMatchObject({ state: 'Stopped' });
    expect((await ha.alerts(30)).some((a) => a.description === `HA Fencing of host id=${ha.hostOfIndex(1).id}, in dc id=${ha.world.zoneId} performed`)).toBe(true);
    expect(await ha.listedHost(1)).toMatchObject({ state: 'Down', outofbandmanagement: { powerstate: 'Off' } });
    expect((await ha.fleet()).host.find((h: any) => h.id === ha.hostOfIndex(1).id).haheld).toBeUndefined();
  }, patience(300_000));
});
