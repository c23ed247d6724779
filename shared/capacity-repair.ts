// Which holds on a host's capacity are leaked, as a pure decision (the ledger is shared/db/capacity.ts;
// the reconciler around this, functions/sweeper/capacity.ts). A hold is leaked when its VM does not
// hold the host and nothing that could still record or release it is under way: a function killed
// between its reservation and recording it on the VM, or between a VM's move off the host and the
// release that follows, leaves exactly that. Every other hold is kept, and the decision says why.
import type { CapacityHold } from './db/capacity.ts';
import type { VirtualMachine } from './db/vms.ts';
import { cloudstackMillis } from './db/jobs.ts';

/**
 * How long after a hold is taken, or after its VM last changed, a hold is left alone whatever else
 * is true: every path records its reservation on the VM, or releases after recording a move, within
 * moments of the other write; this covers a slow one many times over.
 */
export const HOLD_GRACE_MS = 30_000;

/** `lastUpdated`: when its state last changed (shared/db/vms.ts transitionVm). */
export type HoldVm = Pick<VirtualMachine, 'id' | 'state' | 'hostId' | 'migrateToHostId'> & { lastUpdated?: unknown };

export interface HoldView {
  hold: CapacityHold;
  /** The hold's VM, undefined when it no longer exists. */
  vm?: HoldVm;
  /** Whether the job that took the hold is still pending (false without a job, or when it is gone). */
  jobPending: boolean;
}

export type HoldDecision = { kind: 'keep'; reason: string } | { kind: 'release'; reason: string };

/** Keep or release one hold. Pure. */
export function decideHold({ hold, vm, jobPending }: HoldView, now: number, graceMs = HOLD_GRACE_MS): HoldDecision {
  if (vm && (vm.hostId === hold.hostId || vm.migrateToHostId === hold.hostId)) return { kind: 'keep', reason: 'its VM holds the host' };
  if (jobPending) return { kind: 'keep', reason: `the job that took it (${hold.jobId}) is still running` };
  const taken = cloudstackMillis(hold.at);
  if (!(now - taken >= graceMs)) return { kind: 'keep', reason: 'it was taken moments ago' };
  const changed = cloudstackMillis(vm?.lastUpdated);
  if (vm && now - changed < graceMs) return { kind: 'keep', reason: 'its VM changed moments ago' };
  if (!vm) return { kind: 'release', reason: 'its VM no longer exists' };
  const where = vm.hostId ? ` on host ${vm.hostId}` : '';
  const job = hold.jobId ? `; the job that reserved it (${hold.jobId}) has ended` : '';
  return { kind: 'release', reason: `its VM is ${vm.state}${where}${job}` };
}
