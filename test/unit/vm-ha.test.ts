// VM HA's pure decisions (shared/vm-ha.ts), over every host status, every fence state and every mix of
// VMs: an HA VM is released for a restart only when its host is Down and fenced (power OFF succeeded,
// BMC read Off); a host that cannot be fenced is never fenced by guesswork and its HA VMs stay; non-HA
// VMs of a Down host go Stopped whatever the fence; nothing happens to a host that is not Down (silence
// alone, Alert, is never dead); a failed or lost fence is tried again only after kvm.ha.fence.timeout;
// a host in maintenance is never fenced; in HA maintenance (vm.ha.enabled false) nothing is done, what
// would have been is said once, and fence evidence from before is forgotten; deleteHost forced hands
// the running HA VMs of a host that does not answer to HA and stops the rest.
import { describe, expect, it } from 'vitest';
import { HOST_STATUSES, isMaintenanceState, RESOURCE_STATES, type ResourceState } from '../../shared/db/hosts.ts';
import { VM_STATES } from '../../shared/db/vms.ts';
import {
  DEAD_HOST_STATUSES,
  decideHostVms,
  forcedDeleteStep,
  foundStoppedStep,
  haDisabledHostAlert,
  haDisabledVmAlert,
  haMode,
  haRetry,
  haRetryAlert,
  haStartingAlert,
  isFenced,
  maintenanceRefusal,
  restartable,
  restartStep,
  stoppedUnexpectedlyAlert,
  unableToFenceAlert,
  type DeadHostView,
  type FenceJob,
  type HaVm,
} from '../../shared/vm-ha.ts';

const NOW = Date.parse('2026-12-02T12:00:00.000Z');
const SETTINGS = { fenceTimeoutMs: 10_000, haEnabled: true };
const HELD = { ...SETTINGS, haEnabled: false };
const ago = (ms: number) => new Date(NOW - ms).toISOString();
const vm = (id: string, haEnable: boolean, state: HaVm['state'] = 'Running'): HaVm => ({ id, haEnable, state, hostId: 'h1' });
const VMS: HaVm[] = [vm('ha', true), vm('plain', false), vm('ha-starting', true, 'Starting'), vm('plain-migrating', false, 'Migrating'), vm('ha-stopping', true, 'Stopping')];

const JOBS: Array<FenceJob | undefined> = [undefined, { status: 'pending' }, { status: 'succeeded', powerState: 'Off' }, { status: 'succeeded', powerState: 'On' }, { status: 'succeeded', powerState: 'Unknown' }, { status: 'failed', error: 'OobmUnreachable' }];
const FENCES: Array<DeadHostView['fence']> = [
  undefined,
  { at: ago(1000) },
  { jobId: 'j', at: ago(1000) },
  { jobId: 'j', at: ago(15_000) },
  { jobId: 'j', at: ago(25_000) },
  { at: ago(1000), refused: 'off' },
  { at: ago(1000), held: 'paused' },
  { at: ago(1000), spared: 'alive' },
];
const REFUSALS = [undefined, 'off', 'other'];
/** Storage heartbeat readings (the period is 5 s): none, fresh, stale but no proof, a proof (older than 10 s + 3 periods) read after every fence above, and one read before them. */
const HEARTBEATS: Array<DeadHostView['heartbeat']> = [
  undefined,
  { ageSeconds: 4, at: NOW - 500, by: 'h2' },
  { ageSeconds: 20, at: NOW - 500, by: 'h2' },
  { ageSeconds: 40, at: NOW - 500, by: 'h2' },
  { ageSeconds: 40, at: NOW - 60_000, by: 'h2' },
];

/** Every combination of host status, resource state, refusal, fence record, fence job and heartbeat reading. */
function* views(): Generator<DeadHostView> {
  for (const status of HOST_STATUSES) {
    for (const resourceState of RESOURCE_STATES) {
      for (const oobmRefusal of REFUSALS) {
        for (const fence of FENCES) {
          for (const fenceJob of JOBS) {
            for (const heartbeat of HEARTBEATS) {
              yield { status, resourceState, ...(oobmRefusal && { oobmRefusal }), ...(fence && { fence }), ...(fence?.jobId && fenceJob && { fenceJob }), ...(heartbeat && { heartbeat }) };
            }
          }
        }
      }
    }
  }
}

const inMaintenance = (view: DeadHostView) => view.resourceState !== undefined && isMaintenanceState(view.resourceState);
/** Written independently of shared/vm-ha.ts: the BMC confirmed Off. */
const bmcFenced = (view: DeadHostView) => view.fenceJob?.status === 'succeeded' && view.fenceJob.powerState === 'Off';
/** A peer read the heartbeat at most 15 s old (3 periods): the host runs. */
const alive = (view: DeadHostView) => !!view.heartbeat && view.heartbeat.ageSeconds <= 15;
/** A fence was tried, and after it a peer read the heartbeat over 25 s old (10 s fence timeout + 3 periods). */
const proven = (view: DeadHostView) =>
  !!view.fence && !view.fence.refused && !view.fence.held && !view.fence.spared && !!view.heartbeat && view.heartbeat.at >= Date.parse(view.fence.at) && view.heartbeat.ageSeconds > 25;

describe('decideHostVms over every host, fence and VM mix', () => {
  const all = [...views()];

  it('covers a grid of cases', () => expect(all.length).toBeGreaterThan(200));

  it('releases HA VMs only from a Down host whose fence is confirmed Off or that its storage heartbeat proves dead, and then all its Running HA VMs', () => {
    for (const view of all) {
      const d = decideHostVms(view, VMS, NOW, SETTINGS);
      const fenced = view.status === 'Down' && (bmcFenced(view) || (!alive(view) && proven(view)));
      expect(d.release.map((v) => v.id), JSON.stringify(view)).toEqual(fenced ? ['ha'] : []);
      expect(d.fenced).toBe(fenced);
      if (fenced) expect(d.proof).toBe(bmcFenced(view) ? 'bmc' : 'heartbeat');
    }
  });

  it('stops the Running non-HA VMs of every Down host unless it still writes its heartbeat; never a VM of a host that is not Down', () => {
    for (const view of all) {
      const d = decideHostVms(view, VMS, NOW, SETTINGS);
      const stop = view.status === 'Down' && (bmcFenced(view) || !alive(view));
      expect(d.stop.map((v) => v.id), JSON.stringify(view)).toEqual(stop ? ['plain'] : []);
    }
  });

  it('never fences a host that is not Down, nor one out-of-band management cannot act on, nor one in maintenance, nor one that still writes its heartbeat', () => {
    for (const view of all) {
      const d = decideHostVms(view, VMS, NOW, SETTINGS);
      if (view.status !== 'Down' || view.oobmRefusal || inMaintenance(view) || alive(view)) expect(d.fence?.kind, JSON.stringify(view)).not.toBe('fence');
      if (view.status !== 'Down') expect(d.fence === undefined || d.fence.kind === 'clear').toBe(true);
    }
  });

  it('a Down host that still writes its heartbeat (cut off from the agent): nothing of it is touched, and that is said once; unless its BMC reads it Off', () => {
    const heartbeat = { ageSeconds: 3, at: NOW - 1000, by: 'h2' };
    const d = decideHostVms({ status: 'Down', heartbeat }, VMS, NOW, SETTINGS);
    expect(d).toMatchObject({ stop: [], release: [], fenced: false, fence: { kind: 'spared' } });
    expect(d.reason).toContain('still writes its storage heartbeat (3 s old');
    expect(decideHostVms({ status: 'Down', heartbeat, fence: { at: ago(1), spared: d.reason } }, VMS, NOW, SETTINGS).fence).toBeUndefined();
    // Its BMC reads it Off: the fresh reading predates the cut, and the host is fenced.
    expect(decideHostVms({ status: 'Down', heartbeat, powerState: 'Off' }, VMS, NOW, SETTINGS)).toMatchObject({ stop: [{ id: 'plain' }], fence: { kind: 'fence' } });
    for (const powerState of ['On', 'Unknown', 'Disabled']) expect(decideHostVms({ status: 'Down', heartbeat, powerState }, VMS, NOW, SETTINGS).fence?.kind).toBe('spared');
    // Its heartbeat stops since: fenced afresh.
    expect(decideHostVms({ status: 'Down', heartbeat: { ...heartbeat, ageSeconds: 16 }, fence: { at: ago(1), spared: d.reason } }, VMS, NOW, SETTINGS).fence?.kind).toBe('fence');
  });

  it('a fence the BMC does not answer (total power loss): proven dead once a peer reads the heartbeat older than fence timeout + 3 periods, after the fence began', () => {
    const fence = { jobId: 'j', at: ago(5_000) };
    const failed = { status: 'failed', error: 'OobmUnreachable' } as const;
    const at = (ageSeconds: number, readAgo = 1000, fenceJob: FenceJob = failed) => decideHostVms({ status: 'Down', fence, fenceJob, heartbeat: { ageSeconds, at: NOW - readAgo, by: 'h2' } }, VMS, NOW, SETTINGS);
    expect(at(25).release).toEqual([]);
    expect(at(26)).toMatchObject({ release: [{ id: 'ha' }], stop: [{ id: 'plain' }], fenced: true, proof: 'heartbeat' });
    expect(at(26, 1000, { status: 'pending' }).release.map((v) => v.id)).toEqual(['ha']);
    // A reading from before the fence began proves nothing.
    expect(at(60, 6_000).release).toEqual([]);
    // Without a fence tried, or with one refused or held, the heartbeat alone does not release.
    for (const other of [undefined, { at: ago(5_000), refused: 'off' }, { at: ago(5_000), held: 'paused' }]) {
      expect(decideHostVms({ status: 'Down', ...(other && { fence: other }), heartbeat: { ageSeconds: 60, at: NOW - 1000, by: 'h2' } }, VMS, NOW, SETTINGS).release).toEqual([]);
    }
  });

  it('fences a Down host with HA VMs and no fence yet; records a refusal once', () => {
    expect(decideHostVms({ status: 'Down' }, VMS, NOW, SETTINGS).fence).toMatchObject({ kind: 'fence' });
    expect(decideHostVms({ status: 'Down', oobmRefusal: 'off' }, VMS, NOW, SETTINGS).fence).toMatchObject({ kind: 'refused' });
    expect(decideHostVms({ status: 'Down', oobmRefusal: 'off', fence: { at: ago(1), refused: 'off' } }, VMS, NOW, SETTINGS).fence).toBeUndefined();
    // A new refusal (other reason) is told again; a BMC enabled since is fenced.
    expect(decideHostVms({ status: 'Down', oobmRefusal: 'other', fence: { at: ago(1), refused: 'off' } }, VMS, NOW, SETTINGS).fence).toMatchObject({ kind: 'refused' });
    expect(decideHostVms({ status: 'Down', fence: { at: ago(1), refused: 'off' } }, VMS, NOW, SETTINGS).fence).toMatchObject({ kind: 'fence' });
  });

  it('does not fence for nothing: a Down host without Running HA VMs', () => {
    for (const vms of [[], [vm('plain', false)], [vm('ha', true, 'Stopped')], [vm('ha', true, 'Starting')]]) {
      expect(decideHostVms({ status: 'Down' }, vms, NOW, SETTINGS).fence).toBeUndefined();
    }
  });

  it('tries a failed or wrong fence again only after kvm.ha.fence.timeout, a pending one after twice that', () => {
    const at = (ms: number, fenceJob?: FenceJob) => decideHostVms({ status: 'Down', fence: { jobId: 'j', at: ago(ms) }, ...(fenceJob && { fenceJob }) }, VMS, NOW, SETTINGS).fence?.kind;
    for (const job of [undefined, { status: 'failed', error: 'x' } as const, { status: 'succeeded', powerState: 'On' } as const, { status: 'succeeded', powerState: 'Unknown' } as const]) {
      expect(at(9_999, job)).toBeUndefined();
      expect(at(10_000, job)).toBe('fence');
    }
    expect(at(19_999, { status: 'pending' })).toBeUndefined();
    expect(at(20_000, { status: 'pending' })).toBe('fence');
    // A claim whose job is not named yet belongs to another sweep: left alone for the fence timeout.
    expect(decideHostVms({ status: 'Down', fence: { at: ago(9_999) } }, VMS, NOW, SETTINGS).fence).toBeUndefined();
    expect(decideHostVms({ status: 'Down', fence: { at: ago(10_000) } }, VMS, NOW, SETTINGS).fence?.kind).toBe('fence');
  });

  it('clears the fence of a host that is Up again, and only then', () => {
    for (const view of all) {
      const d = decideHostVms(view, VMS, NOW, SETTINGS);
      expect(d.fence?.kind === 'clear', JSON.stringify(view)).toBe(view.status === 'Up' && !!view.fence);
    }
  });

  it('isFenced needs the OFF to have succeeded and the BMC to read Off', () => {
    expect(JOBS.map((fenceJob) => isFenced({ ...(fenceJob && { fenceJob }) }))).toEqual([false, false, true, false, false, false]);
  });
});

describe('a host in maintenance (per-host exclusion)', () => {
  it('is refused a fence, said once, whatever its BMC; its non-HA VMs still go Stopped', () => {
    for (const state of RESOURCE_STATES.filter((r) => isMaintenanceState(r))) {
      const d = decideHostVms({ status: 'Down', resourceState: state }, VMS, NOW, SETTINGS);
      expect(d.fence).toEqual({ kind: 'refused', reason: `the host cannot be fenced: ${maintenanceRefusal(state)}`, refusal: maintenanceRefusal(state) });
      expect(d.stop.map((v) => v.id)).toEqual(['plain']);
      expect(d.release).toEqual([]);
      expect(decideHostVms({ status: 'Down', resourceState: state, fence: { at: ago(1), refused: maintenanceRefusal(state) } }, VMS, NOW, SETTINGS).fence).toBeUndefined();
    }
    expect(maintenanceRefusal('PrepareForMaintenance')).toBe('the host is in PrepareForMaintenance: a host in maintenance is never fenced');
  });

  it('is fenced once out of maintenance (Enabled, Disabled, Degraded…), as any Down host', () => {
    for (const state of RESOURCE_STATES.filter((r: ResourceState) => !isMaintenanceState(r))) {
      expect(decideHostVms({ status: 'Down', resourceState: state, fence: { at: ago(1), refused: maintenanceRefusal('Maintenance') } }, VMS, NOW, SETTINGS).fence?.kind).toBe('fence');
    }
  });
});

describe('HA maintenance (vm.ha.enabled false)', () => {
  const all = [...views()];

  it('haMode: the zone value wins where set, else the global one; and says which holds', () => {
    expect(haMode(true, undefined)).toEqual({ enabled: true, maintenance: 'None' });
    expect(haMode(false, undefined)).toEqual({ enabled: false, maintenance: 'Global' });
    expect(haMode(true, false)).toEqual({ enabled: false, maintenance: 'Zone' });
    expect(haMode(false, false)).toEqual({ enabled: false, maintenance: 'Zone' });
    expect(haMode(false, true)).toEqual({ enabled: true, maintenance: 'None' });
    expect(haMode(true, true)).toEqual({ enabled: true, maintenance: 'None' });
  });

  it('stops, releases and fences nothing, over every host, fence and VM mix', () => {
    // Collected, then checked once: an expect per case would take seconds over this grid.
    const wrong: unknown[] = [];
    for (const view of all) {
      for (const vms of [VMS, [], [vm('ha', true)], [vm('plain', false)]]) {
        const d = decideHostVms(view, vms, NOW, HELD);
        const acts = d.stop.length > 0 || d.release.length > 0 || d.fence?.kind === 'fence' || d.fence?.kind === 'refused' || (d.fence?.kind === 'clear' && view.status !== 'Up');
        if (acts) wrong.push({ view, vms, d });
      }
    }
    expect(wrong).toEqual([]);
  });

  it('records, once per pause, exactly what the acting decision would have done', () => {
    const wrong: unknown[] = [];
    for (const view of all) {
      for (const vms of [VMS, [], [vm('ha', true)], [vm('plain', false)], [vm('ha', true, 'Stopped')]]) {
        const acting = decideHostVms(view, vms, NOW, SETTINGS);
        const held = decideHostVms(view, vms, NOW, HELD);
        const haRunning = vms.some((v) => v.state === 'Running' && v.haEnable);
        const fenceUnderWay = haRunning && !!view.fence && !view.fence.refused && !view.fence.held && !view.fence.spared;
        const wouldAct = acting.stop.length > 0 || acting.release.length > 0 || acting.fence?.kind === 'fence' || fenceUnderWay;
        const expected = view.status === 'Down' && wouldAct && !view.fence?.held;
        if ((held.fence?.kind === 'held') !== expected) wrong.push({ view, vms, held });
      }
    }
    expect(wrong).toEqual([]);
  });

  it('says what it holds back', () => {
    const fenced = { status: 'Down', fence: { jobId: 'j', at: ago(1) }, fenceJob: { status: 'succeeded', powerState: 'Off' } } as const;
    expect(decideHostVms(fenced, VMS, NOW, HELD).fence).toEqual({ kind: 'held', reason: 'VM HA is held (vm.ha.enabled is false): it would stop 1 VM(s) that are not HA-enabled, restart 1 HA VM(s) on another host' });
    expect(decideHostVms({ status: 'Down' }, VMS, NOW, HELD).fence).toEqual({
      kind: 'held',
      reason: 'VM HA is held (vm.ha.enabled is false): it would stop 1 VM(s) that are not HA-enabled, fence the host through its BMC to restart its HA VMs elsewhere',
    });
    expect(decideHostVms({ status: 'Down', fence: { jobId: 'j', at: ago(1) }, fenceJob: { status: 'pending' } }, [vm('ha', true)], NOW, HELD).fence?.reason).toBe(
      'VM HA is held (vm.ha.enabled is false): it would go on fencing the host to restart its HA VMs elsewhere',
    );
    // A host that cannot be fenced and runs only HA VMs: nothing would be done, nothing is said.
    expect(decideHostVms({ status: 'Down', oobmRefusal: 'off' }, [vm('ha', true)], NOW, HELD).fence).toBeUndefined();
  });

  it('once HA is on again, a host still Down is fenced afresh (evidence from before the pause is not used)', () => {
    const after = decideHostVms({ status: 'Down', fence: { at: ago(1), held: 'paused' } }, VMS, NOW, SETTINGS);
    expect(after.fence?.kind).toBe('fence');
    expect(after.stop.map((v) => v.id)).toEqual(['plain']);
    expect(after.release).toEqual([]);
    // Without a BMC it is refused (and said) as before the pause; an Up host forgets the pause.
    expect(decideHostVms({ status: 'Down', oobmRefusal: 'off', fence: { at: ago(1), held: 'paused' } }, VMS, NOW, SETTINGS).fence?.kind).toBe('refused');
    expect(decideHostVms({ status: 'Up', fence: { at: ago(1), held: 'paused' } }, VMS, NOW, HELD).fence?.kind).toBe('clear');
  });
});

describe('restartStep and foundStoppedStep', () => {
  it('restarts a flagged Stopped HA VM while HA acts; holds it once while HA is held (the flag stays)', () => {
    for (const state of VM_STATES) {
      for (const haEnable of [true, false]) {
        for (const haRestart of [true, undefined]) {
          for (const haHeld of [undefined, 'at']) {
            for (const haEnabled of [true, false]) {
              for (const haRetryAfter of [undefined, ago(1), ago(-1)]) {
                const step = restartStep({ state, haEnable, haRestart, haHeld, ...(haRetryAfter && { haRetryAfter }) }, haEnabled, NOW);
                const candidate = state === 'Stopped' && haEnable && haRestart === true;
                const waiting = haRetryAfter !== undefined && Date.parse(haRetryAfter) > NOW;
                expect(step).toBe(!candidate ? 'none' : haEnabled ? (waiting ? 'none' : 'restart') : haHeld ? 'none' : 'hold');
              }
            }
          }
        }
      }
    }
  });

  it('queues a failed HA start again after restart.retry.interval, until max.retries starts were made', () => {
    const settings = { maxRetries: 3, retryIntervalMs: 600_000 };
    expect(haRetry({}, settings, NOW)).toEqual({ kind: 'retry', attempts: 1, after: ago(-600_000) });
    expect(haRetry({ haAttempts: 2 }, settings, NOW)).toEqual({ kind: 'retry', attempts: 2, after: ago(-600_000) });
    expect(haRetry({ haAttempts: 3 }, settings, NOW)).toEqual({ kind: 'giveUp', attempts: 3 });
    expect(haRetry({ haAttempts: 1 }, { ...settings, maxRetries: 1 }, NOW)).toEqual({ kind: 'giveUp', attempts: 1 });
    expect(haRetryAlert({ name: 'web', number: 7, lastHostId: 'h1' }, { kind: 'giveUp', attempts: 3 }).subject).toBe('Unable to restart web which was running on host id:h1');
  });

  it('flags an HA VM found stopped only while HA acts', () => {
    expect(foundStoppedStep({ haEnable: true }, true)).toBe('flag');
    expect(foundStoppedStep({ haEnable: true }, false)).toBe('held');
    expect(foundStoppedStep({ haEnable: false }, true)).toBe('none');
    expect(foundStoppedStep({ haEnable: false }, false)).toBe('none');
  });
});

describe('forcedDeleteStep (deleteHost forced)', () => {
  it('hands to HA exactly the Running or Starting HA VMs of a host that does not answer, while HA acts; stops every other VM', () => {
    for (const state of VM_STATES) {
      for (const status of HOST_STATUSES) {
        for (const haEnable of [true, false]) {
          for (const haEnabled of [true, false]) {
            const step = forcedDeleteStep({ state, haEnable }, status, haEnabled);
            const runs = state === 'Running' || state === 'Starting';
            const handed = haEnable && runs && DEAD_HOST_STATUSES.includes(status) && haEnabled;
            expect(step.kind, `${state} ${status} ${haEnable} ${haEnabled}`).toBe(handed ? 'restart' : 'stop');
            // An HA VM that runs and is not handed over says why.
            if (step.kind === 'stop') expect(!!step.held).toBe(haEnable && runs);
          }
        }
      }
    }
    expect(DEAD_HOST_STATUSES).toEqual(['Down', 'Alert', 'Disconnected']);
    expect(forcedDeleteStep({ state: 'Running', haEnable: true }, 'Up', true)).toEqual({ kind: 'stop', held: 'the host is Up: its domain may run until the agent forgets the host, so it is not restarted elsewhere' });
    expect(forcedDeleteStep({ state: 'Running', haEnable: true }, 'Down', false)).toEqual({ kind: 'stop', held: 'VM high availability manager is disabled (vm.ha.enabled is false)' });
  });
});

describe('restartable', () => {
  it('is a Stopped HA VM flagged for restart, nothing else', () => {
    expect(restartable({ state: 'Stopped', haEnable: true, haRestart: true })).toBe(true);
    expect(restartable({ state: 'Stopped', haEnable: false, haRestart: true })).toBe(false);
    expect(restartable({ state: 'Stopped', haEnable: true })).toBe(false);
    expect(restartable({ state: 'Running', haEnable: true, haRestart: true })).toBe(false);
    expect(restartable({ state: 'Starting', haEnable: true, haRestart: true })).toBe(false);
  });
});

describe('what is said', () => {
  it('uses upstream’s alert texts', () => {
    expect(stoppedUnexpectedlyAlert({ name: 'web', number: 7, zoneId: 'z', podId: 'p' }, { id: 'h' })).toEqual({
      subject: 'VM (name: web, id: 7) stopped unexpectedly on host id:h, availability zone id:z, pod id:p',
      content: 'Virtual Machine web (id: 7) running on host [h] stopped unexpectedly.',
    });
    expect(haStartingAlert({ name: 'web', instanceName: 'i-2-7-VM' })).toEqual({ subject: 'HA starting VM: web (i-2-7-VM)', content: 'HA starting VM: web (i-2-7-VM)' });
    expect(unableToFenceAlert({ name: 'web', number: 7 }, 'name: h1', 'why').subject).toBe('Unable to restart web which was running on host name: h1');
    expect(haDisabledVmAlert({ name: 'web', number: 7 })).toEqual({
      subject: 'Unable to schedule restart for the VM web (7), VM high availability manager is disabled.',
      content: 'Unable to schedule restart for the VM web (7), VM high availability manager is disabled.',
    });
    expect(haDisabledHostAlert('name: h1', 'VM HA is held: it would fence the host')).toEqual({
      subject: 'Unable to schedule restart for VMs on host name: h1, VM high availability manager is disabled.',
      content: 'Unable to schedule restart for VMs on host name: h1, VM high availability manager is disabled. VM HA is held: it would fence the host.',
    });
  });
});

describe('a host host HA acts on (hostHa)', () => {
  const grid = [...views()].filter((view) => ['Up', 'Down', 'Alert'].includes(view.status) && view.resourceState === 'Enabled');
  const STATES = ['Available', 'Suspect', 'Checking', 'Degraded', 'Recovering', 'Recovered', 'Fencing', 'Fenced'] as const;

  it('never fences by itself (host HA does), and releases HA VMs and stops the rest only once host HA has Fenced a host that is not Up', () => {
    const wrong: unknown[] = [];
    for (const view of grid) {
      for (const hostHa of STATES) {
        const d = decideHostVms({ ...view, hostHa }, VMS, NOW, SETTINGS);
        const fenced = hostHa === 'Fenced' && view.status !== 'Up';
        const ok =
          d.fence?.kind !== 'fence' &&
          d.fenced === fenced &&
          JSON.stringify(d.release.map((v) => v.id)) === JSON.stringify(fenced ? ['ha'] : []) &&
          JSON.stringify(d.stop.map((v) => v.id)) === JSON.stringify(fenced ? ['plain'] : []) &&
          (d.fence?.kind === 'clear') === (view.status === 'Up' && !!view.fence);
        if (!ok) wrong.push({ view, hostHa, d });
      }
    }
    expect(grid.length).toBeGreaterThan(100);
    expect(wrong).toEqual([]);
  });

  it('says the proof was host HA', () => {
    expect(decideHostVms({ status: 'Down', hostHa: 'Fenced' }, VMS, NOW, SETTINGS)).toMatchObject({ fenced: true, proof: 'hostha', reason: 'host HA fenced the host' });
  });
});
