// VM high availability (upstream's HighAvailabilityManagerImpl for KVM), as pure decisions: what to do
// about the VMs of a host judged dead, and which VMs HA restarts. The reconciler around them (observe,
// write conditionally, start the work) is functions/sweeper/ha.ts.
//
// The rule that matters: a VM never runs on two hosts at once. So an HA-enabled VM on a dead host is
// restarted elsewhere only after its host is fenced: a power OFF through the host's BMC (out-of-band
// management, spoken by the agent with ipmitool) that succeeded and left the BMC reading Off. A host
// whose BMC cannot be used is never fenced by guesswork: its HA VMs stay where the records say, and an
// alert says why. The other proof of a VM's death, its host's own report without the domain (a guest
// crash, qemu killed), is the power-state sync's (shared/vm-power-sync.ts): it stops the record and
// flags an HA VM for restart, which the same restart pass below picks up.
//
// "Dead" is upstream's Down: the agent reported that it cannot reach the host, and the host stayed
// silent for ping.timeout × ping.interval (shared/host-health.ts). Silence alone (the agent itself cut
// off: Alert) is never dead. A storage blip does not make a host unreachable over SSH, so it never
// fences a host either.
import type { HostStatus } from './db/hosts.ts';
import type { VirtualMachine } from './db/vms.ts';
import { cloudstackMillis } from './db/jobs.ts';

/** The HA fence of a host, kept on its record while the host is dead (`hafence`). */
export interface HaFence {
  /** The power OFF job (issueOutOfBandManagementPowerAction, started by the system). */
  jobId?: string;
  /** When it was started, or when fencing was found impossible (ISO 8601). */
  at: string;
  /** Why the host cannot be fenced (out-of-band management off or not configured). */
  refused?: string;
}

/** The fence job as observed. */
export type FenceJob = { status: 'pending' } | { status: 'succeeded'; powerState: string } | { status: 'failed'; error: string };

export interface DeadHostView {
  status: HostStatus;
  /** Why out-of-band management cannot act on the host (shared/oobm.ts oobmRefusal); undefined when it can. */
  oobmRefusal?: string;
  fence?: HaFence;
  /** The fence job, read when `fence.jobId` names one. */
  fenceJob?: FenceJob;
}

export type HaVm = Pick<VirtualMachine, 'id' | 'state' | 'hostId' | 'haEnable'>;

export interface HaSettingsForVms {
  /** kvm.ha.fence.timeout (ms): how long a fence may take before it is tried again. */
  fenceTimeoutMs: number;
}

export type FenceStep =
  /** Start a power OFF through the BMC. */
  | { kind: 'fence'; reason: string }
  /** Record (once) that the host cannot be fenced, and alert. */
  | { kind: 'refused'; reason: string }
  /** The host is back Up: forget the fence, so a later failure fences afresh. */
  | { kind: 'clear'; reason: string };

export interface HostHaDecision {
  fence?: FenceStep;
  /** Running non-HA VMs of a dead host: → Stopped (upstream's advanceStop(forced) and its alert). */
  stop: HaVm[];
  /** Running HA VMs of a fenced host: → Stopped and flagged for an HA restart elsewhere. */
  release: HaVm[];
  /** Whether the host counts as fenced (a confirmed power OFF). */
  fenced: boolean;
  reason: string;
}


/** Fenced: the OFF job succeeded and the BMC read Off after it (a host that was off already counts). */
export const isFenced = (view: Pick<DeadHostView, 'fenceJob'>) => view.fenceJob?.status === 'succeeded' && view.fenceJob.powerState === 'Off';

/**
 * What to do about one host and the VMs its record holds, now. Total over every host status and
 * fence state; the reconciler acts on each part with conditional writes.
 */
export function decideHostVms(host: DeadHostView, vms: readonly HaVm[], now: number, settings: HaSettingsForVms): HostHaDecision {
  if (host.status !== 'Down') {
    const fence: FenceStep | undefined = host.status === 'Up' && host.fence ? { kind: 'clear', reason: 'the host is Up again' } : undefined;
    return { ...(fence && { fence }), stop: [], release: [], fenced: false, reason: host.status === 'Up' ? 'the host is Up' : `the host is ${host.status}, not Down: never fenced on silence alone` };
  }
  const running = vms.filter((vm) => vm.state === 'Running');
  const stop = running.filter((vm) => !vm.haEnable);
  const ha = running.filter((vm) => vm.haEnable);
  const fenced = isFenced(host);
  if (fenced) return { stop, release: ha, fenced, reason: 'the host is fenced: its BMC powered it off' };
  if (ha.length === 0) return { stop, release: [], fenced, reason: 'no HA VM runs on the host: nothing to fence for' };
  const fence = fenceStep(host, now, settings);
  return { ...(fence && { fence }), stop, release: [], fenced, reason: fence?.reason ?? 'fencing the host' };
}

function fenceStep(host: DeadHostView, now: number, settings: HaSettingsForVms): FenceStep | undefined {
  if (host.oobmRefusal) {
    // Once per refusal (the reconciler records it): no alert on every pass.
    return host.fence?.refused === host.oobmRefusal ? undefined : { kind: 'refused', reason: `the host cannot be fenced: ${host.oobmRefusal}` };
  }
  if (!host.fence || host.fence.refused) return { kind: 'fence', reason: 'the host is Down and runs HA VMs: powering it off through its BMC' };
  const age = now - cloudstackMillis(host.fence.at);
  // Claimed by a sweep that has not named its job yet (or could not start it).
  if (!host.fence.jobId) return age >= settings.fenceTimeoutMs ? { kind: 'fence', reason: 'the fence claimed did not start: trying again' } : undefined;
  const job = host.fenceJob;
  if (job?.status === 'pending') {
    // A job that outlives the fence timeout twice over is lost (its execution died): try again.
    return age >= 2 * settings.fenceTimeoutMs ? { kind: 'fence', reason: 'the power OFF did not finish in time: trying again' } : undefined;
  }
  const why = !job ? 'the power OFF job is gone' : job.status === 'failed' ? `the power OFF failed (${job.error})` : `the BMC reads ${job.powerState} after the power OFF`;
  return age >= settings.fenceTimeoutMs ? { kind: 'fence', reason: `${why}: trying again` } : undefined;
}

/** VMs the restart pass starts: Stopped, HA-enabled and flagged for an HA restart. */
export const restartable = (vm: Pick<VirtualMachine, 'state' | 'haEnable'> & { haRestart?: unknown }) => vm.state === 'Stopped' && vm.haEnable && vm.haRestart === true;

// ---- what is said (upstream's alert texts) ----

/** Upstream's host description in HA alerts. */
export type HostDesc = string;

/** scheduleRestart for a VM that is not HA-enabled: ALERT_TYPE_USERVM. */
export function stoppedUnexpectedlyAlert(vm: Pick<VirtualMachine, 'name' | 'number' | 'zoneId' | 'podId'>, host: { id: string; podId?: string }) {
  const hostDesc = `id:${host.id}, availability zone id:${vm.zoneId}, pod id:${vm.podId ?? host.podId ?? ''}`;
  return {
    subject: `VM (name: ${vm.name}, id: ${vm.number}) stopped unexpectedly on host ${hostDesc}`,
    content: `Virtual Machine ${vm.name} (id: ${vm.number}) running on host [${host.id}] stopped unexpectedly.`,
  };
}

/** restart() when the VM cannot be fenced off: ALERT_TYPE_USERVM (upstream's text, its odd "Insufficient capacity" included, and Mold's reason). */
export function unableToFenceAlert(vm: Pick<VirtualMachine, 'name' | 'number'>, hostDesc: HostDesc, reason: string) {
  return {
    subject: `Unable to restart ${vm.name} which was running on host ${hostDesc}`,
    content: `Insufficient capacity to restart VM, name: ${vm.name}, id: ${vm.number} which was running on host ${hostDesc}. ${reason}`,
  };
}

/** restart() once the VM is started again: ALERT_TYPE_USERVM, subject and content alike. */
export function haStartingAlert(vm: Pick<VirtualMachine, 'name' | 'instanceName'>) {
  const message = `HA starting VM: ${vm.name} (${vm.instanceName})`;
  return { subject: message, content: message };
}
