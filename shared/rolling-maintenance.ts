// KVM rolling maintenance (upstream's RollingMaintenanceManagerImpl; docs hosts.md §14): what to do
// next, as pure functions over the run's state, so unit tests cover every path. The run is a loop:
// `decide(state)` names the next action; the Step task (functions/tasks/rolling-maintenance.ts)
// performs it (a database step at once; an agent stage or the host's maintenance through the state
// machine, statemachines/rolling-maintenance.asl.json) and `advance(state, action, outcome)` folds
// the outcome in. Upstream's order, per cluster: VM states checked, the cluster disabled, host states
// and capacity checked, PreFlight on each host; then host by host: the Maintenance script looked for,
// PreMaintenance, capacity again, prepareHostForMaintenance, Maintenance, cancelHostMaintenance,
// PostMaintenance; the cluster enabled again. A failure (unless `forced` skips the host) ends the run
// with success false and upstream's details, after the host leaves maintenance and every cluster the
// run disabled is enabled again. The job itself succeeds, as upstream's does, with the response.
import type { RollingMaintenanceStage } from './agent/protocol.ts';

export interface HostRef {
  id: string;
  name: string;
}

export interface HostUpdated {
  hostid: string;
  hostname: string;
  startdate: string;
  enddate: string;
  output: string;
}

export interface HostSkipped {
  hostid: string;
  hostname: string;
  reason: string;
}

/** Where a host of the current cluster is in its own sequence. */
export type HostStep = 'probe' | 'PreMaintenance' | 'capacity' | 'maintain' | 'Maintenance' | 'cancel' | 'PostMaintenance';

export interface RollingState {
  forced: boolean;
  clusters: { id: string; hosts: HostRef[] }[];
  /** Index of the current cluster. */
  cluster: number;
  phase: 'enter' | 'preflight' | 'hosts' | 'leave' | 'ending';
  /** Index of the current host in the cluster (PreFlight, then the host loop). */
  host: number;
  step: HostStep;
  /** Hosts whose PreFlight or PreMaintenance said "not needed" (exit 70), with upstream's reason. */
  avoid: Record<string, string>;
  /** Clusters this run disabled (enabled again when it leaves them or ends). */
  disabled: string[];
  /** The host this run put into maintenance, until it is cancelled. */
  inMaintenance?: string;
  /** When the current host entered maintenance, and what its Maintenance stage said. */
  startdate?: string;
  output?: string;
  updated: HostUpdated[];
  skipped: HostSkipped[];
  /** Set once the run has failed: the details of upstream's response. */
  failure?: string;
  /** The current host's Maintenance stage failed (forced): cancelled, then the next host. */
  maintenanceFailed?: boolean;
  /** Stages run so far (the job's progress). */
  stagesRun: number;
}

export type RollingAction =
  | { kind: 'enterCluster'; clusterId: string; hostIds: string[] }
  | { kind: 'stage'; hostId: string; stage: RollingMaintenanceStage }
  | { kind: 'probe'; hostId: string }
  | { kind: 'capacity'; hostId: string; clusterId: string }
  | { kind: 'maintain'; hostId: string }
  | { kind: 'cancel'; hostId: string }
  | { kind: 'enableCluster'; clusterId: string }
  | { kind: 'done' };

/** What a stage's script did: upstream's RollingMaintenanceAnswer (result, details, avoid maintenance). */
export interface StageOutcome {
  ok: boolean;
  details: string;
  avoid: boolean;
}

/** What entering a cluster found (upstream's VM-state, host-state and capacity checks). */
export interface ClusterCheck {
  /** A host with VMs Starting, Stopping, Migrating, Error or Unknown: the whole cluster is refused. */
  vmStatesHostId?: string;
  /** Whether this run disabled the cluster now (it was Enabled). */
  disabledNow: boolean;
  /** Hosts not Up or not Enabled, with upstream's message. */
  notReady: { hostId: string; message: string }[];
  /** Hosts whose VMs could not all move elsewhere in the cluster, with why. */
  capacity: { hostId: string; message: string }[];
}

export type RollingOutcome =
  | { kind: 'enterCluster'; check: ClusterCheck }
  | { kind: 'stage'; result: StageOutcome }
  | { kind: 'probe'; found: boolean }
  | { kind: 'capacity'; problem?: string }
  | { kind: 'maintain'; at: string; error?: string }
  | { kind: 'cancel'; at: string }
  | { kind: 'enableCluster' }
  | { kind: 'done' };

export const VM_STATES_TEXT = 'There are VMs in starting/stopping/migrating/error/unknown state, not allowing rolling maintenance in the cluster';
export const NO_MAINTENANCE_SCRIPT = 'There is no maintenance script on the host';
export const PREFLIGHT_AVOID = 'Pre-flight stage set to avoid maintenance';
export const PREMAINTENANCE_AVOID = 'Pre-maintenance stage set to avoid maintenance';
/** Upstream's refusal when none (Mold: or more than one) of the scope lists is given. */
export const SCOPE_TEXT = 'Parameters podId, clusterId, zoneId, hostId are mutually exclusive, please set only one of them';
export const TIMEOUT_TEXT = "The timeout value provided must be greater or equal than the ping interval defined in 'kvm.rolling.maintenance.ping.interval'";
export const errorText = (message: string) => `Error starting rolling maintenance: ${message}`;
export const stageFailedText = (stage: RollingMaintenanceStage, hostId: string, details: string) => `Stage: ${stage} failed on host ${hostId}: ${details}`;
export const stageTimeoutText = (hostId: string, stage: RollingMaintenanceStage) => `Timeout exceeded for rolling maintenance on host ${hostId} and stage ${stage}`;

/** The upstream event type of a run over this kind of scope. */
export const eventTypeOf = (scope: 'host' | 'cluster' | 'pod' | 'zone') => `${scope.toUpperCase()}.ROLLING.MAINTENANCE`;

export function initialState(forced: boolean, clusters: RollingState['clusters']): RollingState {
  return settle({ forced, clusters, cluster: 0, phase: 'enter', host: 0, step: 'probe', avoid: {}, disabled: [], updated: [], skipped: [], stagesRun: 0 });
}

/** Whether the timeout (the parameter, else kvm.rolling.maintenance.stage.timeout) is refused: upstream refuses one not above the ping interval. */
export const timeoutRefused = (timeout: number, pingInterval: number) => timeout <= pingInterval;

/** Hosts grouped by cluster, clusters in the order their first host comes, each host once. */
export function groupByCluster<H extends HostRef & { clusterId: string }>(hosts: readonly H[]): { id: string; hosts: HostRef[] }[] {
  const groups = new Map<string, HostRef[]>();
  const seen = new Set<string>();
  for (const host of hosts) {
    if (seen.has(host.id)) continue;
    seen.add(host.id);
    const group = groups.get(host.clusterId) ?? [];
    group.push({ id: host.id, name: host.name });
    groups.set(host.clusterId, group);
  }
  return [...groups].map(([id, members]) => ({ id, hosts: members }));
}

/**
 * The state with its implied moves made: past the last PreFlight to the host loop, past the last host
 * to leaving the cluster, past a cluster the run did not disable to the next, past the last cluster
 * to the end. `advance` returns settled states, so `decide` only reads.
 */
export function settle(state: RollingState): RollingState {
  for (;;) {
    if (state.phase === 'ending') return state;
    const cluster = state.clusters[state.cluster];
    if (!cluster) return { ...state, phase: 'ending' };
    if (state.phase === 'preflight' && state.host >= cluster.hosts.length) state = { ...state, phase: 'hosts', host: 0, step: 'probe' };
    else if (state.phase === 'hosts' && state.host >= cluster.hosts.length) state = { ...state, phase: 'leave' };
    else if (state.phase === 'leave' && !state.disabled.includes(cluster.id)) state = nextCluster(state);
    else return state;
  }
}

export function decide(input: RollingState): RollingAction {
  const state = settle(input);
  if (state.phase === 'ending') {
    if (state.inMaintenance) return { kind: 'cancel', hostId: state.inMaintenance };
    const [disabled] = state.disabled;
    if (disabled) return { kind: 'enableCluster', clusterId: disabled };
    return { kind: 'done' };
  }
  const cluster = state.clusters[state.cluster]!;
  if (state.phase === 'enter') return { kind: 'enterCluster', clusterId: cluster.id, hostIds: cluster.hosts.map((h) => h.id) };
  if (state.phase === 'leave') return { kind: 'enableCluster', clusterId: cluster.id };
  const host = cluster.hosts[state.host]!;
  if (state.phase === 'preflight') return { kind: 'stage', hostId: host.id, stage: 'PreFlight' };
  switch (state.step) {
    case 'probe':
      return { kind: 'probe', hostId: host.id };
    case 'capacity':
      return { kind: 'capacity', hostId: host.id, clusterId: cluster.id };
    case 'maintain':
      return { kind: 'maintain', hostId: host.id };
    case 'cancel':
      return { kind: 'cancel', hostId: host.id };
    default:
      return { kind: 'stage', hostId: host.id, stage: state.step };
  }
}

const nextCluster = (state: RollingState): RollingState => ({ ...state, cluster: state.cluster + 1, phase: 'enter', host: 0, step: 'probe' });
const nextHost = (state: RollingState): RollingState => ({ ...state, host: state.host + 1, step: 'probe', startdate: undefined, output: undefined, maintenanceFailed: undefined });
const fail = (state: RollingState, details: string): RollingState => ({ ...state, phase: 'ending', failure: details });
const skip = (state: RollingState, host: HostRef, reason: string): RollingState => ({ ...state, skipped: [...state.skipped, { hostid: host.id, hostname: host.name, reason }] });

export function advance(input: RollingState, action: RollingAction, outcome: RollingOutcome): RollingState {
  return settle(fold(settle(input), action, outcome));
}

function fold(state: RollingState, action: RollingAction, outcome: RollingOutcome): RollingState {
  const cluster = state.clusters[state.cluster];
  const host = cluster?.hosts[state.host];
  switch (outcome.kind) {
    case 'enterCluster':
      return enterCluster(state, outcome.check);
    case 'enableCluster': {
      const enabled = { ...state, disabled: state.disabled.filter((id) => action.kind !== 'enableCluster' || id !== action.clusterId) };
      return state.phase === 'leave' ? nextCluster(enabled) : enabled;
    }
    case 'done':
      return state;
    case 'cancel': {
      const cancelled = { ...state, inMaintenance: undefined };
      if (state.phase === 'ending' || !host) return cancelled;
      // The host is Enabled again: it counts as updated when its Maintenance stage succeeded.
      if (state.step !== 'cancel') return cancelled;
      if (state.maintenanceFailed) return nextHost({ ...cancelled, maintenanceFailed: undefined });
      const updated: HostUpdated = { hostid: host.id, hostname: host.name, startdate: state.startdate ?? outcome.at, enddate: outcome.at, output: state.output ?? '' };
      return { ...cancelled, updated: [...state.updated, updated], step: 'PostMaintenance' };
    }
    case 'probe':
      if (!host) return state;
      if (!outcome.found) return nextHost(skip(state, host, NO_MAINTENANCE_SCRIPT));
      return { ...state, step: 'PreMaintenance' };
    case 'capacity':
      if (!host) return state;
      if (outcome.problem === undefined) return { ...state, step: 'maintain' };
      if (state.forced) return nextHost(skip(state, host, `Capacity check failed for host ${host.id} (${host.name}): ${outcome.problem}`));
      return fail(state, outcome.problem);
    case 'maintain':
      if (!host) return state;
      if (outcome.error !== undefined) return fail({ ...state, inMaintenance: host.id }, errorText(outcome.error));
      return { ...state, inMaintenance: host.id, startdate: outcome.at, step: 'Maintenance' };
    case 'stage':
      return stageDone(state, action, outcome.result);
  }
}

function enterCluster(state: RollingState, check: ClusterCheck): RollingState {
  const cluster = state.clusters[state.cluster]!;
  let next: RollingState = { ...state, disabled: check.disabledNow ? [...state.disabled, cluster.id] : state.disabled };
  if (check.vmStatesHostId !== undefined) {
    const host = cluster.hosts.find((h) => h.id === check.vmStatesHostId) ?? { id: check.vmStatesHostId, name: check.vmStatesHostId };
    next = skip(next, host, VM_STATES_TEXT);
    if (state.forced) return nextCluster(next);
    return fail(next, `VMs in invalid states in cluster: ${cluster.id}`);
  }
  const dropped = new Set<string>();
  for (const { hostId, message } of check.notReady) {
    if (!state.forced) return fail(next, errorText(message));
    const host = cluster.hosts.find((h) => h.id === hostId);
    if (host) next = skip(next, host, message);
    dropped.add(hostId);
  }
  for (const { hostId, message } of check.capacity) {
    if (dropped.has(hostId)) continue;
    if (!state.forced) return fail(next, errorText(`Capacity check failed for host ${hostId} : ${message}`));
  }
  const clusters = next.clusters.map((c, i) => (i === state.cluster ? { ...c, hosts: c.hosts.filter((h) => !dropped.has(h.id)) } : c));
  return { ...next, clusters, phase: 'preflight', host: 0 };
}

function stageDone(state: RollingState, action: RollingAction, result: StageOutcome): RollingState {
  if (action.kind !== 'stage') return state;
  const host = state.clusters[state.cluster]!.hosts[state.host]!;
  const counted = { ...state, stagesRun: state.stagesRun + 1 };
  const failed = !result.ok;
  // Upstream's performStageOnHost: a failure without `forced` ends the run.
  if (failed && !state.forced) return fail(counted, errorText(stageFailedText(action.stage, host.id, result.details)));
  switch (action.stage) {
    case 'PreFlight': {
      // With `forced`, a failed PreFlight neither stops nor skips the host (as upstream).
      const avoid = result.avoid && !state.avoid[host.id] ? { ...state.avoid, [host.id]: PREFLIGHT_AVOID } : state.avoid;
      return { ...counted, avoid, host: state.host + 1 };
    }
    case 'PreMaintenance': {
      if (failed) return nextHost(skip(counted, host, `Pre-maintenance script failed: ${result.details}`));
      const avoid = result.avoid && !state.avoid[host.id] ? { ...state.avoid, [host.id]: PREMAINTENANCE_AVOID } : state.avoid;
      if (avoid[host.id]) return nextHost(skip({ ...counted, avoid }, host, avoid[host.id]!));
      return { ...counted, avoid, step: 'capacity' };
    }
    case 'Maintenance':
      // With `forced`: skipped, out of maintenance, and no PostMaintenance.
      if (failed) return { ...skip(counted, host, `Maintenance script failed: ${result.details}`), step: 'cancel', maintenanceFailed: true };
      return { ...counted, step: 'cancel', output: result.details };
    case 'PostMaintenance':
      if (failed) return nextHost(skip(counted, host, `Post-maintenance script failed: ${result.details}`));
      return nextHost(counted);
  }
}

/** Upstream's RollingMaintenanceResponse. */
export function responseOf(state: RollingState) {
  return {
    success: state.failure === undefined,
    details: state.failure ?? 'OK',
    hostsupdated: state.updated,
    hostsskipped: state.skipped,
  };
}

/** Upstream's closing event description. */
export const closingDescription = (scope: string, ids: readonly string[], state: RollingState) =>
  `Completed rolling maintenance for entity ${scope} with IDs: [${ids.join(', ')}] - Success: ${state.failure === undefined}, details: ${state.failure ?? 'OK'}, hosts updated: ${state.updated.length}, hosts skipped: ${state.skipped.length}`;
