// The power-state sync's decisions, without storage: which VMs a report contradicts (Running VMs whose
// domain is gone or off on their host, Stopped VMs whose domain runs somewhere), which it leaves alone
// (transitional states, fresh state changes, hosts that said nothing, domains that are not Mold's), and
// what the alert says.
import { describe, expect, it } from 'vitest';
import {
  graceMs,
  lastChange,
  looksLikeInstanceName,
  observedText,
  powerOf,
  reconcilePowerStates,
  syncAlertContent,
  unexpectedDomains,
  unmanagedOf,
  judgingNow,
  GATHERED_SKEW_MS,
  type DomainReport,
  type ReportedHost,
  type SyncedVm,
} from '../../shared/vm-power-sync.ts';

const T0 = Date.parse('2025-03-01T12:00:00.000Z');
const NOW = T0 + 3600_000;
const GRACE = graceMs({ interval: 60 });
const A = 'host-a';
const B = 'host-b';

let n = 0;
const uuid = () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
const vm = (fields: Partial<SyncedVm> & Pick<SyncedVm, 'state'>): SyncedVm => {
  const id = fields.id ?? uuid();
  return { id, instanceName: `i-2-${n}-VM`, created: '2025-03-01T12:00:00+0000', ...fields };
};
const domain = (of: SyncedVm, state: DomainReport['state'] = 'Running'): DomainReport => ({ name: of.instanceName, uuid: of.id, state });
const report = (hostId: string, ...domains: DomainReport[]): ReportedHost => ({ hostId, domains });

describe('powerOf', () => {
  it('follows upstream KVM: running and paused are on; shut off, in shutdown, crashed, pmsuspended are off; no word is unknown', () => {
    expect(powerOf('Running')).toBe('on');
    expect(powerOf('Paused')).toBe('on');
    for (const state of ['Stopped', 'Shutdown', 'Crashed', 'Suspended'] as const) expect(powerOf(state)).toBe('off');
    expect(powerOf('Unknown')).toBe('unknown');
  });
});

describe('timing', () => {
  it('the grace is one ping.interval, at least 5 s, plus a second for lastUpdated’s whole seconds', () => {
    expect(graceMs({ interval: 60 })).toBe(61_000);
    expect(graceMs({ interval: 1 })).toBe(6_000);
  });
  it('a VM last changed at lastUpdated, else at its creation', () => {
    expect(lastChange({ created: '2025-03-01T12:00:00+0000', lastUpdated: '2025-03-01T12:30:00+0000' })).toBe(T0 + 1800_000);
    expect(lastChange({ created: '2025-03-01T12:00:00+0000' })).toBe(T0);
    expect(lastChange({ created: '2025-03-01T12:00:00+0000', lastUpdated: 'garbage' })).toBe(T0);
  });
});

describe('reconcilePowerStates', () => {
  it('syncs a Running VM to Stopped when its host no longer reports its domain', () => {
    const running = vm({ state: 'Running', hostId: A });
    expect(reconcilePowerStates([report(A)], [running], NOW, GRACE)).toEqual([{ kind: 'powerOff', vm: running, hostId: A, observed: 'missing' }]);
  });

  it('syncs a Running VM to Stopped when its host reports the domain shut off, in shutdown, crashed or pmsuspended', () => {
    for (const state of ['Stopped', 'Shutdown', 'Crashed', 'Suspended'] as const) {
      const running = vm({ state: 'Running', hostId: A });
      expect(reconcilePowerStates([report(A, domain(running, state))], [running], NOW, GRACE)).toEqual([{ kind: 'powerOff', vm: running, hostId: A, observed: state }]);
    }
  });

  it('leaves a Running VM alone while its domain runs (or is paused) on its host, or when the host says Unknown', () => {
    const running = vm({ state: 'Running', hostId: A });
    const paused = vm({ state: 'Running', hostId: A });
    const unknown = vm({ state: 'Running', hostId: A });
    expect(reconcilePowerStates([report(A, domain(running), domain(paused, 'Paused'), domain(unknown, 'Unknown'))], [running, paused, unknown], NOW, GRACE)).toEqual([]);
  });

  it('judges only VMs whose host is among the healthy reports', () => {
    const elsewhere = vm({ state: 'Running', hostId: B });
    const nowhere = vm({ state: 'Running' });
    expect(reconcilePowerStates([report(A)], [elsewhere, nowhere], NOW, GRACE)).toEqual([]);
  });

  it('follows a Running VM whose domain runs on another reported host (an out-of-band migration, not a power-off)', () => {
    const moved = vm({ state: 'Running', hostId: A });
    expect(reconcilePowerStates([report(A, domain(moved, 'Stopped')), report(B, domain(moved))], [moved], NOW, GRACE)).toEqual([{ kind: 'moved', vm: moved, hostId: B, fromHostId: A, observed: 'Running' }]);
    const gone = vm({ state: 'Running', hostId: A });
    expect(reconcilePowerStates([report(A), report(B, domain(gone, 'Paused'))], [gone], NOW, GRACE)).toEqual([{ kind: 'moved', vm: gone, hostId: B, fromHostId: A, observed: 'Paused' }]);
  });

  it('leaves a Running VM alone while it still runs on its host, even if another host reports it too (mid-migration)', () => {
    const both = vm({ state: 'Running', hostId: A });
    expect(reconcilePowerStates([report(A, domain(both)), report(B, domain(both, 'Paused'))], [both], NOW, GRACE)).toEqual([]);
  });

  it('never judges a Migrating VM, wherever its domain is reported', () => {
    const migrating = vm({ state: 'Migrating', hostId: A });
    expect(reconcilePowerStates([report(A), report(B, domain(migrating))], [migrating], NOW, GRACE)).toEqual([]);
    expect(reconcilePowerStates([report(A), report(B)], [migrating], NOW, GRACE)).toEqual([]);
  });

  it('syncs a Stopped VM to Running on the host that reports its domain on', () => {
    const stopped = vm({ state: 'Stopped' });
    expect(reconcilePowerStates([report(A), report(B, domain(stopped))], [stopped], NOW, GRACE)).toEqual([{ kind: 'powerOn', vm: stopped, hostId: B, observed: 'Running' }]);
    const paused = vm({ state: 'Stopped' });
    expect(reconcilePowerStates([report(B, domain(paused, 'Paused'))], [paused], NOW, GRACE)).toEqual([{ kind: 'powerOn', vm: paused, hostId: B, observed: 'Paused' }]);
  });

  it('leaves a Stopped VM alone when its domain is reported off (defined, shut off) or not at all', () => {
    const stopped = vm({ state: 'Stopped' });
    expect(reconcilePowerStates([report(A, domain(stopped, 'Stopped'))], [stopped], NOW, GRACE)).toEqual([]);
    expect(reconcilePowerStates([report(A)], [stopped], NOW, GRACE)).toEqual([]);
  });

  it('leaves transitional, destroyed and failed VMs alone whatever is reported', () => {
    for (const state of ['Starting', 'Stopping', 'Migrating', 'Destroyed', 'Expunging', 'Error'] as const) {
      const other = vm({ state, hostId: A });
      expect(reconcilePowerStates([report(A)], [other], NOW, GRACE)).toEqual([]);
      expect(reconcilePowerStates([report(A, domain(other))], [other], NOW, GRACE)).toEqual([]);
    }
  });

  it('leaves a VM alone whose state changed within the grace period: the report may predate a command', () => {
    const justStarted = vm({ state: 'Running', hostId: A, lastUpdated: new Date(NOW - GRACE + 2000).toISOString().replace(/\.\d{3}Z$/, '+0000') });
    const justStopped = vm({ state: 'Stopped', lastUpdated: new Date(NOW - 1000).toISOString().replace(/\.\d{3}Z$/, '+0000') });
    const justCreated = vm({ state: 'Running', hostId: A, created: new Date(NOW - 3000).toISOString().replace(/\.\d{3}Z$/, '+0000') });
    expect(reconcilePowerStates([report(A, domain(justStopped))], [justStarted, justStopped, justCreated], NOW, GRACE)).toEqual([]);
    // Once the grace has passed, the same report is believed.
    const later = NOW + GRACE;
    expect(reconcilePowerStates([report(A, domain(justStopped))], [justStarted, justStopped, justCreated], later, GRACE).map((a) => [a.kind, a.vm.id])).toEqual([
      ['powerOff', justStarted.id],
      ['powerOn', justStopped.id],
      ['powerOff', justCreated.id],
    ]);
  });

  it('leaves a VM alone while a start job holds it', () => {
    const starting = vm({ state: 'Running', hostId: A, startJobId: 'job-1' });
    expect(reconcilePowerStates([report(A)], [starting], NOW, GRACE)).toEqual([]);
  });

  it('ignores domains that are not the VM’s: same uuid under another name, or names that are not Mold’s', () => {
    const running = vm({ state: 'Running', hostId: A });
    const stopped = vm({ state: 'Stopped' });
    const impostors = [
      { name: 'i-9-9-VM', uuid: running.id, state: 'Running' as const },
      { name: 'my-own-guest', uuid: stopped.id, state: 'Running' as const },
      { name: 'another', uuid: uuid(), state: 'Running' as const },
    ];
    expect(reconcilePowerStates([report(A, ...impostors)], [running, stopped], NOW, GRACE)).toEqual([{ kind: 'powerOff', vm: running, hostId: A, observed: 'missing' }]);
  });

  it('decides once per VM even when it is listed twice', () => {
    const running = vm({ state: 'Running', hostId: A });
    expect(reconcilePowerStates([report(A)], [running, running], NOW, GRACE)).toHaveLength(1);
  });
});

describe('judgingNow', () => {
  it('judges by the earliest time a host was read, less the skew allowance, never later than now', () => {
    // Read 70 s ago (a slow host, a busy gateway; the grace is 61 s): a VM changed 65 s ago, after that
    // reading, is not judged by it, though its change is older than the grace.
    const now = NOW;
    const at = judgingNow(now, GRACE, [now - 70_000, now - 5_000]);
    expect(at).toBe(now - 70_000 - GATHERED_SKEW_MS + GRACE);
    const changedAfterReading = vm({ state: 'Running', hostId: A, lastUpdated: new Date(now - 65_000).toISOString().replace(/\.\d{3}Z$/, '+0000') });
    expect(reconcilePowerStates([report(A)], [changedAfterReading], now, GRACE)).toHaveLength(1);
    expect(reconcilePowerStates([report(A)], [changedAfterReading], at, GRACE)).toEqual([]);
    // Read just now, or by an agent that does not say: now.
    expect(judgingNow(now, GRACE, [now - 1_000])).toBe(now);
    expect(judgingNow(now, GRACE, [undefined])).toBe(now);
    expect(judgingNow(now, GRACE, [])).toBe(now);
  });
});

describe('unexpectedDomains', () => {
  it('names the powered-on domains that look like Mold’s and are not among the known VMs', () => {
    const known = vm({ state: 'Running', hostId: A });
    const stranger = vm({ state: 'Stopped' });
    const off = vm({ state: 'Stopped' });
    const hosts = [
      report(A, domain(known), domain(stranger), domain(off, 'Stopped'), { name: 'not-molds', uuid: uuid(), state: 'Running' }),
      report(B, domain(stranger)),
    ];
    expect(unexpectedDomains(hosts, [known.id])).toEqual([stranger.id]);
    expect(unexpectedDomains([report(A)], [])).toEqual([]);
  });
  it('calls unmanaged every reported domain no VM owns: an unknown uuid, or a VM of another instance name', () => {
    const known = vm({ state: 'Running', hostId: A });
    const stopped = vm({ state: 'Stopped' });
    const unknown = { name: 'i-2-999-VM', uuid: uuid(), state: 'Running' as const };
    const foreign = { name: 'someones-vm', uuid: uuid(), state: 'Stopped' as const };
    const impostor = { name: 'i-9-9-VM', uuid: known.id, state: 'Running' as const };
    const hosts = [report(A, domain(known), domain(stopped, 'Stopped'), unknown), report(B, foreign, impostor)];
    expect(unmanagedOf(hosts, [known, stopped])).toEqual([
      { hostId: A, domain: unknown },
      { hostId: B, domain: foreign },
      { hostId: B, domain: impostor },
    ]);
    expect(unmanagedOf([report(A, domain(known))], [known])).toEqual([]);
  });
  it('recognises instance names i-<account>-<vm>-<suffix>', () => {
    expect(looksLikeInstanceName('i-2-17-VM')).toBe(true);
    expect(looksLikeInstanceName('i-2-17-web01')).toBe(true);
    expect(looksLikeInstanceName('r-4-VM')).toBe(false);
    expect(looksLikeInstanceName('guest')).toBe(false);
  });
});

describe('what is said', () => {
  it('uses upstream’s alert text', () => {
    const named = { name: 'web01', instanceName: 'i-2-17-VM' };
    expect(syncAlertContent(named, 'Running', 'Stopped')).toBe('VM web01(i-2-17-VM) state is sync-ed (Running -> Stopped) from out-of-context transition.');
    expect(syncAlertContent(named, 'Stopped', 'Running')).toBe(
      'VM web01(i-2-17-VM) state is sync-ed (Stopped -> Running) from out-of-context transition. VM network environment may need to be reset',
    );
  });
  it('says what the host reported', () => {
    expect(observedText({ kind: 'powerOff', observed: 'missing' }, 'kvm1')).toBe('host kvm1 no longer reports its domain');
    expect(observedText({ kind: 'powerOff', observed: 'Crashed' }, 'kvm1')).toBe('host kvm1 reports its domain Crashed');
    expect(observedText({ kind: 'powerOn', observed: 'Running' }, 'kvm2')).toBe('host kvm2 reports its domain Running');
  });
});
