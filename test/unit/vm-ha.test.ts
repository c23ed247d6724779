// VM HA's pure decisions (shared/vm-ha.ts), over every host status, every fence state and every mix of
// VMs: an HA VM is released for a restart only when its host is Down and fenced (power OFF succeeded,
// BMC read Off); a host that cannot be fenced is never fenced by guesswork and its HA VMs stay; non-HA
// VMs of a Down host go Stopped whatever the fence; nothing happens to a host that is not Down (silence
// alone, Alert, is never dead); a failed or lost fence is tried again only after kvm.ha.fence.timeout.
import { describe, expect, it } from 'vitest';
import { HOST_STATUSES } from '../../shared/db/hosts.ts';
import { decideHostVms, haStartingAlert, isFenced, restartable, stoppedUnexpectedlyAlert, unableToFenceAlert, type DeadHostView, type FenceJob, type HaVm } from '../../shared/vm-ha.ts';

const NOW = Date.parse('2026-12-02T12:00:00.000Z');
const SETTINGS = { fenceTimeoutMs: 10_000 };
const ago = (ms: number) => new Date(NOW - ms).toISOString();
const vm = (id: string, haEnable: boolean, state: HaVm['state'] = 'Running'): HaVm => ({ id, haEnable, state, hostId: 'h1' });
const VMS: HaVm[] = [vm('ha', true), vm('plain', false), vm('ha-starting', true, 'Starting'), vm('plain-migrating', false, 'Migrating'), vm('ha-stopping', true, 'Stopping')];

const JOBS: Array<FenceJob | undefined> = [undefined, { status: 'pending' }, { status: 'succeeded', powerState: 'Off' }, { status: 'succeeded', powerState: 'On' }, { status: 'succeeded', powerState: 'Unknown' }, { status: 'failed', error: 'OobmUnreachable' }];
const FENCES: Array<DeadHostView['fence']> = [undefined, { at: ago(1000) }, { jobId: 'j', at: ago(1000) }, { jobId: 'j', at: ago(15_000) }, { jobId: 'j', at: ago(25_000) }, { at: ago(1000), refused: 'off' }];
const REFUSALS = [undefined, 'off', 'other'];

/** Every combination of host status, refusal, fence record and fence job. */
function* views(): Generator<DeadHostView> {
  for (const status of HOST_STATUSES) {
    for (const oobmRefusal of REFUSALS) {
      for (const fence of FENCES) {
        for (const fenceJob of JOBS) yield { status, ...(oobmRefusal && { oobmRefusal }), ...(fence && { fence }), ...(fence?.jobId && fenceJob && { fenceJob }) };
      }
    }
  }
}

describe('decideHostVms over every host, fence and VM mix', () => {
  const all = [...views()];

  it('covers a grid of cases', () => expect(all.length).toBeGreaterThan(200));

  it('releases HA VMs only from a Down host whose fence is confirmed Off, and then all its Running HA VMs', () => {
    for (const view of all) {
      const d = decideHostVms(view, VMS, NOW, SETTINGS);
      const fenced = view.status === 'Down' && view.fenceJob?.status === 'succeeded' && view.fenceJob.powerState === 'Off';
      expect(d.release.map((v) => v.id), JSON.stringify(view)).toEqual(fenced ? ['ha'] : []);
      expect(d.fenced).toBe(fenced);
    }
  });

  it('stops the Running non-HA VMs of every Down host, whatever the fence; never a VM of a host that is not Down', () => {
    for (const view of all) {
      const d = decideHostVms(view, VMS, NOW, SETTINGS);
      expect(d.stop.map((v) => v.id), JSON.stringify(view)).toEqual(view.status === 'Down' ? ['plain'] : []);
    }
  });

  it('never fences a host that is not Down, nor one out-of-band management cannot act on', () => {
    for (const view of all) {
      const d = decideHostVms(view, VMS, NOW, SETTINGS);
      if (view.status !== 'Down' || view.oobmRefusal) expect(d.fence?.kind, JSON.stringify(view)).not.toBe('fence');
      if (view.status !== 'Down') expect(d.fence === undefined || d.fence.kind === 'clear').toBe(true);
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
  });
});
