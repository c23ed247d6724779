// shared/capacity-repair.ts decideHold over every combination of what it reads: where the VM is (gone,
// on the host, migrating to it, elsewhere, without a host), whether the job that took the hold is
// pending, how old the hold is, and when the VM last changed.
import { describe, expect, it } from 'vitest';
import { decideHold, HOLD_GRACE_MS, type HoldVm } from '../../shared/capacity-repair.ts';
import type { CapacityHold } from '../../shared/db/capacity.ts';

const NOW = Date.parse('2026-12-02T12:00:00Z');
const HOST = 'host-1';
const iso = (ago: number) => new Date(NOW - ago).toISOString();
const csDate = (ago: number) => iso(ago).replace(/\.\d{3}Z$/, '+0000');

const hold = (ago: number, jobId?: string): CapacityHold => ({ hostId: HOST, vmId: 'vm-1', cpuMhz: 1000, memoryBytes: 512, at: iso(ago), ...(jobId && { jobId }) });

const places: Record<string, Omit<HoldVm, 'lastUpdated'> | undefined> = {
  gone: undefined,
  onHost: { id: 'vm-1', state: 'Running', hostId: HOST },
  migratingHere: { id: 'vm-1', state: 'Migrating', hostId: 'host-2', migrateToHostId: HOST },
  elsewhere: { id: 'vm-1', state: 'Running', hostId: 'host-2' },
  stopped: { id: 'vm-1', state: 'Stopped' },
  error: { id: 'vm-1', state: 'Error' },
  startingUnplaced: { id: 'vm-1', state: 'Starting' },
};
const ages = { young: HOLD_GRACE_MS / 2, old: HOLD_GRACE_MS * 4 };
const vmChanges: Record<string, string | undefined> = { young: csDate(HOLD_GRACE_MS / 2), old: csDate(HOLD_GRACE_MS * 4), never: undefined };

describe('decideHold', () => {
  it('releases exactly the holds whose VM does not hold the host, with no job pending, both quiet past the grace', () => {
    let released = 0;
    for (const [place, where] of Object.entries(places)) {
      for (const jobPending of [false, true]) {
        for (const [holdAge, ago] of Object.entries(ages)) {
          for (const [vmChange, lastUpdated] of Object.entries(vmChanges)) {
            const vm = where && { ...where, ...(lastUpdated && { lastUpdated }) };
            const decision = decideHold({ hold: hold(ago, 'job-1'), vm, jobPending }, NOW);
            const holds = place === 'onHost' || place === 'migratingHere';
            const vmQuiet = !vm || vmChange !== 'young';
            const expected = !holds && !jobPending && holdAge === 'old' && vmQuiet ? 'release' : 'keep';
            expect(decision.kind, `${place} pending=${jobPending} hold=${holdAge} vm=${vmChange}: ${decision.reason}`).toBe(expected);
            if (expected === 'release') released++;
          }
        }
      }
    }
    // gone (×3 VM changes, all quiet) + 4 places elsewhere × 2 quiet changes
    expect(released).toBe(3 + 4 * 2);
  });

  it('says why it releases: the VM gone, or where it is and that the job has ended', () => {
    expect(decideHold({ hold: hold(ages.old), jobPending: false }, NOW)).toEqual({ kind: 'release', reason: 'its VM no longer exists' });
    expect(decideHold({ hold: hold(ages.old, 'job-9'), vm: { ...places.elsewhere!, lastUpdated: vmChanges.old }, jobPending: false }, NOW)).toEqual({
      kind: 'release',
      reason: 'its VM is Running on host host-2; the job that reserved it (job-9) has ended',
    });
    expect(decideHold({ hold: hold(ages.old), vm: places.error, jobPending: false }, NOW)).toEqual({ kind: 'release', reason: 'its VM is Error' });
  });

  it('says why it keeps one', () => {
    expect(decideHold({ hold: hold(ages.old, 'job-2'), vm: places.startingUnplaced, jobPending: true }, NOW).reason).toBe('the job that took it (job-2) is still running');
    expect(decideHold({ hold: hold(ages.young), vm: places.stopped, jobPending: false }, NOW).reason).toBe('it was taken moments ago');
    expect(decideHold({ hold: hold(ages.old), vm: { ...places.stopped!, lastUpdated: vmChanges.young }, jobPending: false }, NOW).reason).toBe('its VM changed moments ago');
  });

  it('keeps a hold just short of the grace, and releases one at it', () => {
    const stopped = { ...places.stopped!, lastUpdated: vmChanges.old };
    expect(decideHold({ hold: hold(HOLD_GRACE_MS - 1), vm: stopped, jobPending: false }, NOW).kind).toBe('keep');
    expect(decideHold({ hold: hold(HOLD_GRACE_MS), vm: stopped, jobPending: false }, NOW).kind).toBe('release');
  });
});
