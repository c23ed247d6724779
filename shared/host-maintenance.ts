// Host maintenance (upstream's prepareHostForMaintenance and cancelHostMaintenance): the decisions,
// as pure functions over what was read, so that unit tests cover every case. The API handlers
// (functions/api/commands/host-maintenance.ts) and the evacuation's steps
// (functions/tasks/host-maintenance.ts, statemachines/host-maintenance.asl.json) act on them.
import { canAttemptMaintenance, possibleResourceEvents, PREPARING_STATES, type Host } from './db/hosts.ts';
import type { VirtualMachine } from './db/vms.ts';

/** Upstream's PrepareForMaintenanceCmd wraps every refusal of ResourceManagerImpl.maintain so. */
export const prepareFailure = (reason: string) => `Failed to prepare host for maintenance due to: ${reason}`;

/**
 * Why upstream's maintain() refuses to begin, in its words and order; undefined: it may begin.
 * `clusterHosts` are the hosts of its cluster, `vmsOnHost` the VMs whose host it is, `incoming` those
 * migrating to it. (claimMaintenance enforces the cluster's rule again, atomically with the transition.)
 */
export function maintenanceRefusal(
  host: Pick<Host, 'id' | 'name' | 'resourcestate' | 'clusterId'>,
  clusterHosts: readonly Pick<Host, 'id' | 'resourcestate'>[],
  vmsOnHost: readonly Pick<VirtualMachine, 'state'>[],
  incoming: readonly unknown[],
): string | undefined {
  if (!canAttemptMaintenance(host.resourcestate)) return `Host is already in state ${host.resourcestate}. Cannot recall for maintenance until resolved.`;
  if (clusterHosts.some((other) => other.id !== host.id && PREPARING_STATES.includes(other.resourcestate))) return clusterBusyText(host.clusterId);
  // Upstream lists the host's own Migrating VMs here too (its host_id stays the source's while it moves).
  if (incoming.length > 0 || vmsOnHost.some((vm) => vm.state === 'Migrating')) {
    return 'Host contains incoming VMs migrating. Please wait for them to complete before putting to maintenance.';
  }
  if (vmsOnHost.some((vm) => vm.state === 'Starting' || vm.state === 'Stopping')) {
    return 'Host contains VMs in starting/stopping state. Please wait for them to complete before putting to maintenance.';
  }
  if (vmsOnHost.some((vm) => vm.state === 'Error')) return 'Host contains VMs in error/unknown/shutdown state. Please fix errors to proceed.';
  if (!possibleResourceEvents(host.resourcestate).includes('AdminAskMaintenance')) {
    // doMaintain's resourceStateTransitTo failing (a Disabled host, for one).
    return `Cannot transit resource state of Host ${host.name} (${host.id}) to Maintenance: no transition from ${host.resourcestate} on AdminAskMaintenance`;
  }
  return undefined;
}

/** Upstream's text when another host of the cluster is preparing. */
export const clusterBusyText = (clusterId: string) =>
  `There are other servers attempting migrations for maintenance. Found hosts in PrepareForMaintenance OR ErrorInPrepareForMaintenance STATUS in cluster ${clusterId}`;

/** Upstream's cancelMaintenance refusal. */
export const cancelRefusalText = (host: Pick<Host, 'id' | 'resourcestate'>) =>
  `Cannot perform cancelMaintenance when resource state is ${host.resourcestate}, hostId = ${host.id}`;

/** How one VM's move ended: moved, skipped (no longer Running there, or the maintenance was cancelled), or failed with the reason. */
export type MoveOutcome = { vmId: string; moved: true } | { vmId: string; skipped: string } | { vmId: string; failed: string };

export type EvacuationDecision =
  | { kind: 'cancelled' }
  | { kind: 'maintenance' }
  | { kind: 'unable'; reasons: { vmId: string; reason: string }[] };

/** The states in which a VM still occupies its host. */
const OCCUPYING = new Set<VirtualMachine['state']>(['Running', 'Starting', 'Stopping', 'Migrating', 'Error']);

/**
 * After every move has ended: the host enters Maintenance when none of its VMs still occupies it;
 * otherwise it is UnableToMigrate, each VM left with why (its move's failure, else its state). A host
 * no longer preparing (cancelled meanwhile) is left as it is.
 */
export function decideEvacuation(
  host: Pick<Host, 'resourcestate'>,
  outcomes: readonly MoveOutcome[],
  remaining: readonly Pick<VirtualMachine, 'id' | 'state'>[],
): EvacuationDecision {
  if (host.resourcestate !== 'PrepareForMaintenance') return { kind: 'cancelled' };
  const failures = new Map(outcomes.flatMap((o) => ('failed' in o ? [[o.vmId, o.failed] as const] : [])));
  const left = remaining.filter((vm) => OCCUPYING.has(vm.state));
  if (left.length === 0) return { kind: 'maintenance' };
  return { kind: 'unable', reasons: left.map((vm) => ({ vmId: vm.id, reason: failures.get(vm.id) ?? `it is ${vm.state} on the host` })) };
}
