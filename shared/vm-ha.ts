// VM high availability (upstream's HighAvailabilityManagerImpl for KVM), as pure decisions: what to do
// about the VMs of a host judged dead, and which VMs HA restarts. The reconciler around them (observe,
// write conditionally, start the work) is functions/sweeper/ha.ts.
//
// The rule that matters: a VM never runs on two hosts at once. So an HA-enabled VM on a dead host is
// restarted elsewhere only after its host is fenced: a power OFF through the host's BMC (out-of-band
// management, spoken by the agent with ipmitool) that succeeded and left the BMC reading Off. A host
// whose BMC cannot be used is never fenced by guesswork: its HA VMs stay where the records say, and an
// alert says why. The storage heartbeat (shared/storage-heartbeat.ts) settles the two cases the BMC
// cannot: a host that still writes it is cut off, not dead, and nothing of it is touched; a host whose
// fence the BMC could not confirm (total power loss takes the BMC too) and whose heartbeat a healthy
// peer then read older than a fence could take is proven dead, and its VMs go as from a fenced host.
// The other proof of a VM's death, its host's own report without the domain (a guest crash, qemu
// killed), is the power-state sync's (shared/vm-power-sync.ts): it stops the record and flags an HA
// VM for restart, which the same restart pass below picks up.
//
// "Dead" is upstream's Down: the agent reported that it cannot reach the host, and the host stayed
// silent for ping.timeout × ping.interval (shared/host-health.ts). Silence alone (the agent itself cut
// off: Alert) is never dead. A storage blip does not make a host unreachable over SSH, so it never
// fences a host either.
//
// HA maintenance (upstream's vm.ha.enabled, global and zone-scoped, the zone's value winning where it is
// set): while it is off in a host's zone, nothing here acts: no fence, no VM of a dead host stopped or
// released, no restart. What would have been done is recorded once (hafence.held, and an alert), and any
// fence evidence gathered before is forgotten, so that when HA is on again a host still Down is fenced
// afresh: a restart then rests on a power OFF confirmed after the pause, never on one from before it.
// A host in maintenance (Maintenance, PrepareForMaintenance and their error states) is never fenced.
import { isMaintenanceState, type HostStatus, type ResourceState } from './db/hosts.ts';
import type { VirtualMachine } from './db/vms.ts';
import { cloudstackMillis } from './db/jobs.ts';
import { heartbeatFresh, heartbeatProvesDead, type HeartbeatReading } from './storage-heartbeat.ts';
import type { HaState } from './host-ha.ts';

/** The HA fence of a host, kept on its record while the host is dead (`hafence`). */
export interface HaFence {
  /** The power OFF job (issueOutOfBandManagementPowerAction, started by the system). */
  jobId?: string;
  /** When it was started, or when fencing was found impossible (ISO 8601). */
  at: string;
  /** Why the host cannot be fenced (out-of-band management off or not configured, the host in maintenance). */
  refused?: string;
  /** What HA held back on the host because vm.ha.enabled is false in its zone. */
  held?: string;
  /** Why HA leaves the host alone though it is Down: it still writes its storage heartbeat. */
  spared?: string;
}

/** The fence job as observed. */
export type FenceJob = { status: 'pending' } | { status: 'succeeded'; powerState: string; /** When the OFF was asked (ms): the reading came after. */ at?: number } | { status: 'failed'; error: string };

export interface DeadHostView {
  status: HostStatus;
  /** The host's ResourceState: a host in maintenance is never fenced. */
  resourceState?: ResourceState;
  /** Why out-of-band management cannot act on the host (shared/oobm.ts oobmRefusal); undefined when it can. */
  oobmRefusal?: string;
  fence?: HaFence;
  /** The fence job, read when `fence.jobId` names one. */
  fenceJob?: FenceJob;
  /** The host's storage heartbeat as a healthy peer last read it (shared/storage-heartbeat.ts); undefined when none did lately. */
  heartbeat?: HeartbeatReading;
  /** Its BMC's power state as last read (the power-state sync). Off outweighs a fresh heartbeat: that reading predates the cut. */
  powerState?: string;
  /**
   * The host's HA state when host HA acts on it (enabled and eligible: functions/sweeper/host-ha.ts).
   * Host HA then decides the fence: the VMs go when it reaches Fenced, and not before.
   */
  hostHa?: HaState;
}

export type HaVm = Pick<VirtualMachine, 'id' | 'state' | 'hostId' | 'haEnable'>;

export interface HaSettingsForVms {
  /** kvm.ha.fence.timeout (ms): how long a fence may take before it is tried again. */
  fenceTimeoutMs: number;
  /** vm.ha.enabled as it applies in the host's zone: false is HA maintenance, where nothing is done. */
  haEnabled: boolean;
}

/** Why HA is held in a zone: not at all, by the global value of vm.ha.enabled, or by the zone's own. */
export type HaMaintenance = 'None' | 'Global' | 'Zone';

/**
 * vm.ha.enabled in a zone, as upstream's ConfigKey.valueIn reads a Zone-scoped key: the zone's value
 * when one is set, else the global one. `zoneValue` is the zone's stored value, if any.
 */
export function haMode(globalValue: boolean, zoneValue: boolean | undefined): { enabled: boolean; maintenance: HaMaintenance } {
  const enabled = zoneValue ?? globalValue;
  return { enabled, maintenance: enabled ? 'None' : zoneValue === undefined ? 'Global' : 'Zone' };
}

export type FenceStep =
  /** Start a power OFF through the BMC. */
  | { kind: 'fence'; reason: string }
  /** Record (once) that the host cannot be fenced (`refusal`), and alert. */
  | { kind: 'refused'; reason: string; refusal: string }
  /** HA maintenance: record (once) what was held back, forgetting any fence, and alert. */
  | { kind: 'held'; reason: string }
  /** Down but still writing its storage heartbeat: record (once) that HA leaves it alone, and alert. */
  | { kind: 'spared'; reason: string }
  /** The host is back Up: forget the fence, so a later failure fences afresh. */
  | { kind: 'clear'; reason: string };

export interface HostHaDecision {
  fence?: FenceStep;
  /** Running non-HA VMs of a dead host: → Stopped (upstream's advanceStop(forced) and its alert). */
  stop: HaVm[];
  /** Running HA VMs of a fenced host: → Stopped and flagged for an HA restart elsewhere. */
  release: HaVm[];
  /** Whether the host counts as fenced (a confirmed power OFF, or proven dead by its storage heartbeat). */
  fenced: boolean;
  /** What proved it: the BMC's confirmed Off, or the storage heartbeat. */
  proof?: 'bmc' | 'heartbeat' | 'hostha';
  reason: string;
}


/** Fenced: the OFF job succeeded and the BMC read Off after it (a host that was off already counts). */
export const isFenced = (view: Pick<DeadHostView, 'fenceJob'>) => view.fenceJob?.status === 'succeeded' && view.fenceJob.powerState === 'Off';

/** Why a host in maintenance is not fenced. */
export const maintenanceRefusal = (state: ResourceState) => `the host is in ${state}: a host in maintenance is never fenced`;

/**
 * What to do about one host and the VMs its record holds, now. Total over every host status, resource
 * state, fence state and HA mode; the reconciler acts on each part with conditional writes.
 */
export function decideHostVms(host: DeadHostView, vms: readonly HaVm[], now: number, settings: HaSettingsForVms): HostHaDecision {
  if (host.hostHa !== undefined) return decideByHostHa(host, host.hostHa, vms);
  if (host.status !== 'Down') {
    // Forgetting a fence is no recovery: done in HA maintenance too.
    const fence: FenceStep | undefined = host.status === 'Up' && host.fence ? { kind: 'clear', reason: 'the host is Up again' } : undefined;
    return { ...(fence && { fence }), stop: [], release: [], fenced: false, reason: host.status === 'Up' ? 'the host is Up' : `the host is ${host.status}, not Down: never fenced on silence alone` };
  }
  const acting = decideDownHost(host, vms, now, settings);
  if (settings.haEnabled) return acting;
  const would = heldBack(acting, host.fence, vms.some((vm) => vm.state === 'Running' && vm.haEnable));
  if (!would) return { stop: [], release: [], fenced: false, reason: 'VM HA is held (vm.ha.enabled is false), and nothing would be done' };
  const reason = `VM HA is held (vm.ha.enabled is false): it would ${would}`;
  // Once per pause: a host already recorded held is left alone.
  return { ...(!host.fence?.held && { fence: { kind: 'held', reason } as const }), stop: [], release: [], fenced: false, reason };
}

/** What an acting decision would do, in words; undefined when it would do nothing (a refusal is not an act). */
function heldBack(decision: HostHaDecision, fence: HaFence | undefined, haRunning: boolean): string | undefined {
  const parts: string[] = [];
  if (decision.stop.length) parts.push(`stop ${decision.stop.length} VM(s) that are not HA-enabled`);
  if (decision.release.length) parts.push(`restart ${decision.release.length} HA VM(s) on another host`);
  if (decision.fence?.kind === 'fence') parts.push('fence the host through its BMC to restart its HA VMs elsewhere');
  // A fence under way (claimed, or its job pending or done) is held back too: it is forgotten.
  else if (haRunning && fence && !fence.refused && !fence.held && !fence.spared && !decision.release.length) parts.push('go on fencing the host to restart its HA VMs elsewhere');
  return parts.length ? parts.join(', ') : undefined;
}

/**
 * A host host HA acts on: its VMs go once host HA has Fenced it (its BMC confirmed Off, or its storage
 * heartbeat proved it dead), whatever its status; before that, nothing (host HA fences, and its own
 * rules hold while HA maintenance is on: it is Disabled then).
 */
function decideByHostHa(host: DeadHostView, state: HaState, vms: readonly HaVm[]): HostHaDecision {
  if (state !== 'Fenced' || host.status === 'Up') {
    // Forgetting an old fence, so that no later decision takes its OFF for a new one.
    const fence: FenceStep | undefined = host.status === 'Up' && host.fence ? { kind: 'clear', reason: 'the host is Up again' } : undefined;
    return { ...(fence && { fence }), stop: [], release: [], fenced: false, reason: `host HA decides (${state})` };
  }
  const running = vms.filter((vm) => vm.state === 'Running');
  return { stop: running.filter((vm) => !vm.haEnable), release: running.filter((vm) => vm.haEnable), fenced: true, proof: 'hostha', reason: 'host HA fenced the host' };
}

/**
 * Proven dead without its BMC: a fence was tried (its BMC did not confirm Off: total power loss takes
 * the BMC too), and since then a healthy peer read the host's storage heartbeat older than a fence
 * could take.
 */
export function provenDead(host: Pick<DeadHostView, 'fence' | 'heartbeat'>, settings: Pick<HaSettingsForVms, 'fenceTimeoutMs'>): boolean {
  const fence = host.fence;
  if (!fence || fence.refused || fence.held || fence.spared || !host.heartbeat) return false;
  return host.heartbeat.at >= cloudstackMillis(fence.at) && heartbeatProvesDead(host.heartbeat, settings.fenceTimeoutMs / 1000);
}

function decideDownHost(host: DeadHostView, vms: readonly HaVm[], now: number, settings: HaSettingsForVms): HostHaDecision {
  const running = vms.filter((vm) => vm.state === 'Running');
  const stop = running.filter((vm) => !vm.haEnable);
  const ha = running.filter((vm) => vm.haEnable);
  const fenced = isFenced(host);
  if (fenced) return { stop, release: ha, fenced, proof: 'bmc', reason: 'the host is fenced: its BMC powered it off' };
  if (heartbeatFresh(host.heartbeat) && host.powerState !== 'Off') {
    // Cut off from the agent, not dead: its guests run, so nothing of it is stopped, fenced or started elsewhere.
    const reason = `the host still writes its storage heartbeat (${host.heartbeat!.ageSeconds} s old as another host read it): cut off from the agent, not dead`;
    return { ...(!host.fence?.spared && { fence: { kind: 'spared', reason } as const }), stop: [], release: [], fenced, reason };
  }
  if (provenDead(host, settings)) {
    return { stop, release: ha, fenced: true, proof: 'heartbeat', reason: `the host is proven dead: its BMC did not fence it, and its storage heartbeat is ${host.heartbeat!.ageSeconds} s old` };
  }
  if (ha.length === 0) return { stop, release: [], fenced, reason: 'no HA VM runs on the host: nothing to fence for' };
  const refusal = host.resourceState && isMaintenanceState(host.resourceState) ? maintenanceRefusal(host.resourceState) : host.oobmRefusal;
  const fence = fenceStep(host, refusal, now, settings);
  return { ...(fence && { fence }), stop, release: [], fenced, reason: fence?.reason ?? 'fencing the host' };
}

function fenceStep(host: DeadHostView, refusal: string | undefined, now: number, settings: HaSettingsForVms): FenceStep | undefined {
  if (refusal) {
    // Once per refusal (the reconciler records it): no alert on every pass.
    return host.fence?.refused === refusal ? undefined : { kind: 'refused', reason: `the host cannot be fenced: ${refusal}`, refusal };
  }
  // No fence, a refusal since lifted, or a pause since ended: fence afresh.
  if (!host.fence || host.fence.refused || host.fence.held || host.fence.spared) return { kind: 'fence', reason: 'the host is Down and runs HA VMs: powering it off through its BMC' };
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

/** After an HA start failed: queued again after restart.retry.interval, or given up once max.retries starts were made. */
export type HaRetry = { kind: 'retry'; attempts: number; after: string } | { kind: 'giveUp'; attempts: number };

export function haRetry(vm: Pick<VirtualMachine, 'haAttempts'>, settings: { maxRetries: number; retryIntervalMs: number }, now: number): HaRetry {
  const attempts = Math.max(1, vm.haAttempts ?? 1);
  if (attempts >= settings.maxRetries) return { kind: 'giveUp', attempts };
  return { kind: 'retry', attempts, after: new Date(now + settings.retryIntervalMs).toISOString() };
}

/**
 * What the restart pass does with a VM: start it ('restart'); in HA maintenance record once that its
 * restart is held ('hold': the flag stays, so it is restarted when HA is on again, if it is still
 * Stopped and HA-enabled then, as upstream retries its scheduled work once re-enabled); or nothing.
 */
export function restartStep(vm: Pick<VirtualMachine, 'state' | 'haEnable'> & { haRestart?: unknown; haHeld?: unknown; haRetryAfter?: string }, haEnabled: boolean, now: number): 'restart' | 'hold' | 'none' {
  if (!restartable(vm)) return 'none';
  // A failed HA start waits out restart.retry.interval (HA maintenance holds it all the same).
  if (haEnabled) return vm.haRetryAfter && Date.parse(vm.haRetryAfter) > now ? 'none' : 'restart';
  return vm.haHeld ? 'none' : 'hold';
}

/**
 * A Running VM its host reports stopped (power-state sync): an HA VM is flagged for a restart
 * ('flag'); in HA maintenance it is not, and that is said ('held'), as upstream's scheduleRestart
 * refuses new work while vm.ha.enabled is false: a guest shut down from inside during the pause is
 * not started again behind the operator's back when it ends.
 */
export function foundStoppedStep(vm: Pick<VirtualMachine, 'haEnable'>, haEnabled: boolean): 'flag' | 'held' | 'none' {
  if (!vm.haEnable) return 'none';
  return haEnabled ? 'flag' : 'held';
}

/** Host statuses in which deleteHost forced takes the host for dead (the operator's word stands for the fence). */
export const DEAD_HOST_STATUSES: readonly HostStatus[] = ['Down', 'Alert', 'Disconnected'];

export type ForcedDeleteStep =
  /** Stopped and flagged: the restart pass starts it on another host. */
  | { kind: 'restart' }
  /** Stopped; `held` says why an HA VM is not handed to HA. */
  | { kind: 'stop'; held?: string };

/**
 * deleteHost forced: what becomes of one VM the host holds (upstream's doDeleteHost): a Running or
 * Starting HA VM is handed to HA, every other VM is stopped. Mold hands an HA VM over only when the
 * host is not answering (Down, Alert, Disconnected): on a host that answers, its domain runs until
 * the agent forgets the host, and a restart elsewhere could overlap it. In HA maintenance nothing is
 * handed over (upstream's scheduleRestart refuses new work then).
 */
export function forcedDeleteStep(vm: Pick<VirtualMachine, 'state' | 'haEnable'>, hostStatus: HostStatus, haEnabled: boolean): ForcedDeleteStep {
  if (!vm.haEnable || (vm.state !== 'Running' && vm.state !== 'Starting')) return { kind: 'stop' };
  if (!DEAD_HOST_STATUSES.includes(hostStatus)) return { kind: 'stop', held: `the host is ${hostStatus}: its domain may run until the agent forgets the host, so it is not restarted elsewhere` };
  if (!haEnabled) return { kind: 'stop', held: 'VM high availability manager is disabled (vm.ha.enabled is false)' };
  return { kind: 'restart' };
}

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

/** A failed HA start (ALERT_TYPE_USERVM): tried again later, or given up (upstream's "Unable to restart" subject). */
export function haRetryAlert(vm: Pick<VirtualMachine, 'name' | 'number' | 'lastHostId'>, retry: HaRetry) {
  if (retry.kind === 'retry') {
    const subject = `HA could not restart VM ${vm.name} (id: ${vm.number}): start ${retry.attempts} failed, trying again at ${retry.after}`;
    return { subject, content: subject };
  }
  return {
    subject: `Unable to restart ${vm.name} which was running on host id:${vm.lastHostId ?? 'unknown'}`,
    content: `HA gave up restarting VM, name: ${vm.name}, id: ${vm.number} after ${retry.attempts} failed start(s) (max.retries); start it by hand once there is room for it.`,
  };
}

/** Mold's own: an HA VM released from a host proven dead by its storage heartbeat (ALERT_TYPE_HA_ACTION, per VM). */
export function provenDeadAlert(vm: Pick<VirtualMachine, 'name' | 'number'>, hostDesc: HostDesc, reason: string) {
  return {
    subject: `HA restarting VM ${vm.name} (id: ${vm.number}) of host ${hostDesc}: the host is proven dead without its BMC`,
    content: `VM ${vm.name} (id: ${vm.number}) is restarted on another host: ${reason}.`,
  };
}

/** Mold's own: a Down host HA leaves alone because it still writes its storage heartbeat (ALERT_TYPE_HOST). */
export function cutOffHostAlert(hostDesc: HostDesc, reason: string) {
  return {
    subject: `Host ${hostDesc} is unreachable but alive: HA fences nothing and restarts none of its VMs`,
    content: `HA leaves host ${hostDesc} and its VMs as they are: ${reason}. Its VMs are recorded where they run; check the network between the host and the agent.`,
  };
}

/** scheduleRestartForVmsOnHost while vm.ha.enabled is false: ALERT_TYPE_HOST, upstream's text and what was held back. */
export function haDisabledHostAlert(hostDesc: HostDesc, heldBack: string) {
  const message = `Unable to schedule restart for VMs on host ${hostDesc}, VM high availability manager is disabled.`;
  return { subject: message, content: `${message} ${capitalise(heldBack)}.` };
}

/** scheduleRestart while vm.ha.enabled is false: ALERT_TYPE_USERVM, upstream's text (subject and content alike). */
export function haDisabledVmAlert(vm: Pick<VirtualMachine, 'name' | 'number'>) {
  const message = `Unable to schedule restart for the VM ${vm.name} (${vm.number}), VM high availability manager is disabled.`;
  return { subject: message, content: message };
}

const capitalise = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);
