// Task steps of statemachines/rolling-maintenance.asl.json (startRollingMaintenance). Step folds the
// outcome of the last action into the run's state and asks shared/rolling-maintenance.ts what comes
// next; database actions (a cluster's checks and disabling, capacity, cancelling maintenance,
// enabling a cluster) it performs itself and asks again, so it hands back to the state machine only
// an agent stage, a host's prepareHostForMaintenance (a child execution of host-maintenance) or the
// end. Release runs when a step itself failed: the host out of maintenance, the run's clusters
// Enabled again. Every step is safe to repeat: a retried Step sends the same command ids.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { agentCommands, type RollingMaintenanceStage } from '../../shared/agent/protocol.ts';
import { InternalError, ResourceUnavailable } from '../../shared/cloudstack/errors.ts';
import { planDeployment } from '../../shared/db/capacity.ts';
import { getAgent } from '../../shared/db/agents.ts';
import { recordEvent } from '../../shared/db/events.ts';
import { claimMaintenance, getHost, IllegalTransition, isMaintenanceState, listHostRecords, transitionResourceState, type Host } from '../../shared/db/hosts.ts';
import { getCluster, updateCluster } from '../../shared/db/infrastructure.ts';
import { cloudstackDate, createJob, getJob, setJobProgress } from '../../shared/db/jobs.ts';
import { getServiceOffering } from '../../shared/db/offerings.ts';
import { getVolume, listVmRecords } from '../../shared/db/vms.ts';
import { clusterBusyText, maintenanceRefusal, prepareFailure } from '../../shared/host-maintenance.ts';
import {
  advance,
  closingDescription,
  decide,
  initialState,
  responseOf,
  stageTimeoutText,
  type ClusterCheck,
  type RollingAction,
  type RollingOutcome,
  type RollingState,
  type StageOutcome,
} from '../../shared/rolling-maintenance.ts';
import { loadSettings } from '../../shared/settings.ts';
import { targetOf } from './agent-commands.ts';
import { jobError, stepFunctionsError } from './jobs.ts';

/** What the API handler checked and hands the execution. */
export const rollingArgs = z.object({
  scope: z.enum(['Host', 'Cluster', 'Pod', 'Zone']),
  ids: z.array(z.string()),
  eventType: z.string(),
  forced: z.boolean(),
  timeout: z.number().int().positive(),
  pingInterval: z.number().int().positive(),
  waitMaintenance: z.number().int().positive(),
  payload: z.string().optional(),
  clusters: z.array(z.object({ id: z.string(), hosts: z.array(z.object({ id: z.string(), name: z.string() })) })),
});
export type RollingArgs = z.infer<typeof rollingArgs>;

const run = z.object({ args: rollingArgs, state: z.custom<RollingState>(), pending: z.custom<RollingAction>().optional() });
type Run = z.infer<typeof run>;

export const rollingMaintenanceActions = [
  z.object({
    action: z.literal('rollingMaintenanceTask'),
    step: z.enum(['step', 'release']),
    jobId: z.string(),
    args: rollingArgs.optional(),
    loop: z.object({ run }).passthrough().nullish(),
    /** The agent's answer, the child execution's output, or the error either failed with. */
    result: z.unknown().optional(),
    error: stepFunctionsError.optional(),
  }),
] as const;
export type RollingMaintenanceTask = z.infer<(typeof rollingMaintenanceActions)[number]>;

/** Room the Task's own timeout leaves past the agent's, for the queue and the answer. */
const TASK_MARGIN_SECONDS = 60;
/** A stage's output kept in the run's state and response (the execution's state stays small). */
const DETAILS_CHARS = 8192;

const failure = stepFunctionsError.safeParse.bind(stepFunctionsError);

/** A stage's answer (or its Task's failure) as upstream's RollingMaintenanceAnswer. */
export function stageOutcome(hostId: string, stage: RollingMaintenanceStage, result: unknown): StageOutcome {
  const error = failure(result);
  if (error.success && !(result as { stage?: unknown }).stage) {
    if (error.data.Error === 'States.Timeout') return { ok: false, details: stageTimeoutText(hostId, stage), avoid: false };
    return { ok: false, details: jobError(error.data).errortext, avoid: false };
  }
  const parsed = agentCommands.rollingMaintenanceStage.result.safeParse(result);
  if (!parsed.success) return { ok: false, details: `The agent answered the ${stage} stage with a result Mold cannot read`, avoid: false };
  const answer = parsed.data;
  const details = answer.output.slice(-DETAILS_CHARS);
  if (!answer.found) return { ok: true, details: '', avoid: false };
  if (!answer.finished) return { ok: false, details: stageTimeoutText(hostId, stage), avoid: false };
  // Exit 70 counts only from PreFlight and PreMaintenance (upstream's agent), as success.
  if (answer.exitCode === 70 && (stage === 'PreFlight' || stage === 'PreMaintenance')) return { ok: true, details, avoid: true };
  return { ok: answer.exitCode === 0, details, avoid: false };
}

async function hostOf(hostId: string): Promise<Host> {
  const host = await getHost(hostId);
  if (!host) throw new InternalError(`Unable to find host with ID: ${hostId}`);
  return host;
}

/** Why the host's VMs cannot all move to another host of its cluster (upstream's capacity check), or undefined. */
async function capacityProblem(host: Host, clusterId: string): Promise<string | undefined> {
  const others = (await listHostRecords({ clusterId: host.clusterId, podId: host.podId, zoneId: host.zoneId })).filter(
    (h) => h.id !== host.id && h.clusterId === clusterId && h.resourcestate === 'Enabled' && h.status === 'Up',
  );
  const cluster = await getCluster(clusterId);
  if (others.length === 0) return `No host available in cluster ${clusterId} (${cluster?.name ?? clusterId}) to support host ${host.id} (${host.name}) in maintenance`;
  const settings = await loadSettings();
  for (const vm of await listVmRecords({ hostId: host.id, states: ['Running'] })) {
    const [offering, volume] = await Promise.all([getServiceOffering(vm.serviceOfferingId), getVolume(vm.rootVolumeId)]);
    const plan = await planDeployment({ vm, hostTags: offering?.hosttags, poolId: volume?.poolId, avoidHostIds: [host.id], evacuatingClusterId: clusterId, settings });
    if (!plan.candidates.some((c) => c.host.clusterId === clusterId)) return `VM ${vm.instanceName} cannot be migrated away from host ${host.id} (${host.name}) to any other host in the cluster`;
  }
  return undefined;
}

async function enterCluster(clusterId: string, hostIds: string[]): Promise<ClusterCheck> {
  const hosts = await Promise.all(hostIds.map(hostOf));
  for (const host of hosts) {
    const vms = await listVmRecords({ hostId: host.id, states: ['Starting', 'Stopping', 'Migrating', 'Error'] });
    if (vms.length > 0) return { vmStatesHostId: host.id, disabledNow: false, notReady: [], capacity: [] };
  }
  const cluster = await getCluster(clusterId);
  if (!cluster) throw new InternalError(`Unable to find the cluster by id=${clusterId}`);
  let disabledNow = false;
  if (cluster.allocationstate === 'Enabled') {
    await updateCluster(cluster, { allocationstate: 'Disabled' });
    disabledNow = true;
  }
  const notReady: ClusterCheck['notReady'] = [];
  for (const host of hosts) {
    if (host.status !== 'Up') notReady.push({ hostId: host.id, message: `Host ${host.id} is not connected, state = ${host.status}` });
    else if (host.resourcestate !== 'Enabled') notReady.push({ hostId: host.id, message: `Host ${host.id} is not enabled, state = ${host.resourcestate}` });
  }
  const capacity: ClusterCheck['capacity'] = [];
  for (const host of hosts) {
    const problem = await capacityProblem(host, clusterId);
    if (problem) capacity.push({ hostId: host.id, message: problem });
  }
  return { disabledNow, notReady, capacity };
}

async function enableCluster(clusterId: string) {
  const cluster = await getCluster(clusterId);
  if (cluster && cluster.allocationstate === 'Disabled') await updateCluster(cluster, { allocationstate: 'Enabled' });
}

/** cancelHostMaintenance's transition, for a host in any maintenance state; one already Enabled is fine. */
async function cancelMaintenance(hostId: string) {
  const host = await getHost(hostId);
  if (!host || !isMaintenanceState(host.resourcestate)) return;
  try {
    await transitionResourceState(host.id, 'AdminCancelMaintenance');
  } catch (error) {
    if (!(error instanceof IllegalTransition)) throw error;
  }
}

type Handoff =
  | { kind: 'stage'; queueUrl: string; command: { commandId: string; type: string; deadline: string; payload: unknown }; timeoutSeconds: number }
  | { kind: 'maintain'; childJobId: string; hostId: string; timeoutSeconds: number }
  | { kind: 'done'; response: Record<string, unknown> };

/** The agent command of a stage (or the Maintenance script's probe); its id names the run, host and stage, so a retried Step sends the same one. */
async function stageCommand(jobId: string, args: RollingArgs, hostId: string, stage: RollingMaintenanceStage, probe: boolean): Promise<Handoff> {
  const host = await hostOf(hostId);
  if (!host.agentId) throw new ResourceUnavailable(`Host ${host.name} (${host.id}) has no agent: it was not added through one`);
  const agent = await getAgent(host.agentId);
  if (!agent || agent.state !== 'Enabled') throw new ResourceUnavailable(`The agent of host ${host.name} (${host.id}) is gone or revoked; enrol an agent in the zone and try again`);
  const runId = `${jobId}.${host.id}.${probe ? 'probe' : stage}`;
  const timeoutSeconds = probe ? 60 : args.timeout;
  return {
    kind: 'stage',
    queueUrl: agent.queueUrl,
    command: {
      commandId: runId,
      type: 'rollingMaintenanceStage',
      deadline: new Date(Date.now() + timeoutSeconds * 1000).toISOString(),
      payload: agentCommands.rollingMaintenanceStage.payload.parse({
        host: targetOf(host),
        stage,
        runId,
        ...(args.payload !== undefined && { payload: args.payload }),
        probe,
        timeoutSeconds,
        pollSeconds: args.pingInterval,
      }),
    },
    timeoutSeconds: timeoutSeconds + TASK_MARGIN_SECONDS,
  };
}

/** The child's prepareHostForMaintenance job, in the run's caller's name, made once. */
async function childJob(jobId: string, host: Host, childJobId: string): Promise<string> {
  if (await getJob(childJobId)) return childJobId;
  const parent = await getJob(jobId);
  await createJob({
    jobid: childJobId,
    cmd: 'prepareHostForMaintenance',
    actor: parent?.actor,
    event: { type: 'MAINT.PREPARE', description: `preparing host: ${host.id} for maintenance`, resourceId: host.id, resourceType: 'Host' },
    jobinstancetype: 'Host',
    jobinstanceid: host.id,
  });
  return childJobId;
}

/** The child prepareHostForMaintenance job's id: one per run and host, the same on a retry (a UUID from a hash of both). */
export function childJobIdOf(jobId: string, hostId: string): string {
  const hex = createHash('sha256').update(`${jobId}/${hostId}/maintain`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((Number.parseInt(hex[16]!, 16) & 3) | 8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * prepareHostForMaintenance as its command does it (upstream's refusals, the host and its cluster's
 * claim in one transaction), with a job of its own that the child execution ends; or why not.
 */
async function beginMaintenance(jobId: string, hostId: string): Promise<{ childJobId: string } | { error: string }> {
  const host = await hostOf(hostId);
  const childJobId = childJobIdOf(jobId, hostId);
  // A retried Step: the claim is there already (and the job, unless the first attempt stopped between them).
  if (host.resourcestate === 'PrepareForMaintenance') return { childJobId: await childJob(jobId, host, childJobId) };
  const [clusterHosts, onHost, migrating] = await Promise.all([
    listHostRecords({ zoneId: host.zoneId, podId: host.podId, clusterId: host.clusterId }),
    listVmRecords({ hostId: host.id }),
    listVmRecords({ states: ['Migrating'] }),
  ]);
  const refusal = maintenanceRefusal(host, clusterHosts, onHost, migrating.filter((vm) => vm.migrateToHostId === host.id));
  if (refusal) return { error: prepareFailure(refusal) };
  let claim;
  try {
    claim = await claimMaintenance(host.id);
  } catch (error) {
    if (error instanceof IllegalTransition) return { error: prepareFailure(`Host is already in state ${error.from}. Cannot recall for maintenance until resolved.`) };
    throw error;
  }
  if ('gone' in claim) return { error: prepareFailure(`Unable to find host with ID: ${host.id}. Please specify a valid host ID.`) };
  if ('busy' in claim) return { error: prepareFailure(clusterBusyText(host.clusterId)) };
  await childJob(jobId, host, childJobId);
  return { childJobId };
}

/** How the child host-maintenance execution ended: the host in Maintenance, or why not (upstream's wait-for-maintenance text on a timeout). */
async function maintenanceOutcome(hostId: string, result: unknown, waitSeconds: number): Promise<RollingOutcome> {
  const at = cloudstackDate();
  const host = await hostOf(hostId);
  if (host.resourcestate === 'Maintenance') return { kind: 'maintain', at };
  const error = failure(result);
  if (error.success && error.data.Error === 'States.Timeout') {
    return { kind: 'maintain', at, error: `Timeout: waited ${waitSeconds * 1000}ms for host ${host.id}(${host.name}) to be in Maintenance state, but after timeout it is in ${host.resourcestate} state` };
  }
  if (error.success) {
    let text = jobError(error.data).errortext;
    try {
      const described = JSON.parse(error.data.Cause ?? '') as { Cause?: unknown };
      if (typeof described.Cause === 'string' && described.Cause) text = described.Cause;
    } catch {
      // Not a child execution's description.
    }
    return { kind: 'maintain', at, error: text };
  }
  return { kind: 'maintain', at, error: `Host ${host.id}(${host.name}) is in ${host.resourcestate} state, not Maintenance` };
}

/** Performs a database action at once; undefined: the state machine must do it. */
async function performHere(action: RollingAction): Promise<RollingOutcome | undefined> {
  switch (action.kind) {
    case 'enterCluster':
      return { kind: 'enterCluster', check: await enterCluster(action.clusterId, action.hostIds) };
    case 'capacity':
      return { kind: 'capacity', problem: await capacityProblem(await hostOf(action.hostId), action.clusterId) };
    case 'cancel':
      await cancelMaintenance(action.hostId);
      return { kind: 'cancel', at: cloudstackDate() };
    case 'enableCluster':
      await enableCluster(action.clusterId);
      return { kind: 'enableCluster' };
    default:
      return undefined;
  }
}

async function finishRun(jobId: string, args: RollingArgs, state: RollingState): Promise<Handoff> {
  const job = await getJob(jobId);
  if (job?.actor) {
    await recordEvent(job.actor, { type: args.eventType, level: 'INFO', state: 'Completed', description: closingDescription(args.scope, args.ids, state), resourceType: args.scope });
  }
  return { kind: 'done', response: { rollingmaintenance: responseOf(state) } };
}

/** One turn of the loop: the last outcome folded in, then database actions until the state machine has work. */
async function step(jobId: string, loop: RollingMaintenanceTask['loop'], initial: RollingArgs | undefined, result: unknown): Promise<{ run: Run; next: Handoff }> {
  let current: Run;
  if (!loop) {
    if (!initial) throw new InternalError('The rolling maintenance run has no arguments');
    current = { args: initial, state: initialState(initial.forced, initial.clusters) };
  } else {
    current = loop.run;
    const pending = current.pending;
    if (pending?.kind === 'stage') current = { ...current, state: advance(current.state, pending, { kind: 'stage', result: stageOutcome(pending.hostId, pending.stage, result) }), pending: undefined };
    else if (pending?.kind === 'probe') {
      const answer = agentCommands.rollingMaintenanceStage.result.safeParse(result);
      // A probe that failed (no hooks dir, the host unreachable) finds no script: upstream's isMaintenanceScriptDefinedOnHost.
      current = { ...current, state: advance(current.state, pending, { kind: 'probe', found: answer.success && answer.data.found }), pending: undefined };
    } else if (pending?.kind === 'maintain') {
      current = { ...current, state: advance(current.state, pending, await maintenanceOutcome(pending.hostId, result, current.args.waitMaintenance)), pending: undefined };
    }
  }
  const { args } = current;
  let { state } = current;
  try {
    return await turn(jobId, args, state, (next) => (state = next));
  } catch (error) {
    // What this turn itself did (a cluster disabled, a host claimed) is not in the execution's state
    // that Release gets: put it back here, then fail as the step.
    await giveBack(state);
    throw error;
  }
}

async function turn(jobId: string, args: RollingArgs, initial: RollingState, track: (state: RollingState) => void): Promise<{ run: Run; next: Handoff }> {
  let state = initial;
  const set = (next: RollingState) => {
    state = next;
    track(next);
  };
  for (;;) {
    const action = decide(state);
    if (action.kind === 'done') {
      await setJobProgress(jobId, state.stagesRun);
      return { run: { args, state }, next: await finishRun(jobId, args, state) };
    }
    const here = await performHere(action);
    if (here) {
      set(advance(state, action, here));
      continue;
    }
    await setJobProgress(jobId, state.stagesRun);
    if (action.kind === 'stage') return { run: { args, state, pending: action }, next: await stageCommand(jobId, args, action.hostId, action.stage, false) };
    if (action.kind === 'probe') return { run: { args, state, pending: action }, next: await stageCommand(jobId, args, action.hostId, 'Maintenance', true) };
    if (action.kind === 'maintain') {
      const begun = await beginMaintenance(jobId, action.hostId);
      if ('error' in begun) {
        set(advance(state, action, { kind: 'maintain', at: cloudstackDate(), error: begun.error }));
        continue;
      }
      // The run holds the host from here: Release cancels its maintenance.
      set({ ...state, inMaintenance: action.hostId });
      return { run: { args, state, pending: action }, next: { kind: 'maintain', childJobId: begun.childJobId, hostId: action.hostId, timeoutSeconds: args.waitMaintenance } };
    }
  }
}

/** Cancels the maintenance the run holds and enables the clusters it disabled. */
async function giveBack(state: RollingState, pendingHostId?: string) {
  const held = state.inMaintenance ?? pendingHostId;
  if (held) await cancelMaintenance(held);
  for (const clusterId of state.disabled) await enableCluster(clusterId);
}

/** A step itself failed: the host out of maintenance, the run's clusters Enabled again, and the closing event says why. */
async function release(jobId: string, loop: RollingMaintenanceTask['loop'], error: RollingMaintenanceTask['error']) {
  const state = loop?.run.state;
  if (!state) return { released: false };
  const pending = loop.run.pending;
  await giveBack(state, pending?.kind === 'maintain' ? pending.hostId : undefined);
  const job = await getJob(jobId);
  if (job?.actor) {
    const why = error ? jobError(error).errortext : 'unknown';
    await recordEvent(job.actor, {
      type: loop.run.args.eventType,
      level: 'ERROR',
      state: 'Completed',
      description: closingDescription(loop.run.args.scope, loop.run.args.ids, { ...state, failure: why }),
      resourceType: loop.run.args.scope,
    });
  }
  return { released: true };
}

export async function runRollingMaintenanceTask(task: RollingMaintenanceTask): Promise<unknown> {
  switch (task.step) {
    case 'step':
      return step(task.jobId, task.loop, task.args, task.result);
    case 'release':
      return release(task.jobId, task.loop, task.error);
  }
}
