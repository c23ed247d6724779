// Task steps of statemachines/host-maintenance.asl.json. prepareHostForMaintenance: the API handler
// has already moved the host to PrepareForMaintenance (so nothing new is placed on it); Plan makes
// its Stopped VMs forget it as their last host and lists its Running VMs; each is moved by a child
// execution of vm-migrate (the planner picks the target: capacity, host tags, affinity), several at
// once; Finish decides (shared/host-maintenance.ts) between Maintenance and, through Release,
// ErrorInPrepareForMaintenance with an event and an alert per VM left. cancelHostMaintenance: Cancel.
// Every step is safe to repeat.
import { z } from 'zod';
import { InternalError } from '../../shared/cloudstack/errors.ts';
import { ALERT_TYPES, createAlert } from '../../shared/db/alerts.ts';
import { recordEvent } from '../../shared/db/events.ts';
import { getHost, IllegalTransition, isMaintenanceState, nextResourceState, transitionResourceState, updateHostRecord, type Host } from '../../shared/db/hosts.ts';
import { getPod, getZone } from '../../shared/db/infrastructure.ts';
import { createJob, getJob } from '../../shared/db/jobs.ts';
import { getVmConsistent, listVmRecords, updateVmRecord } from '../../shared/db/vms.ts';
import { cancelRefusalText, decideEvacuation, prepareFailure, type MoveOutcome } from '../../shared/host-maintenance.ts';
import { loadSettings } from '../../shared/settings.ts';
import { hostContext, renderHost } from '../api/commands/hosts.ts';
import { jobError, stepFunctionsError } from './jobs.ts';

export const MAINTENANCE_STEPS = ['planEvacuation', 'startMove', 'finishEvacuation', 'releaseMaintenance', 'cancelMaintenance'] as const;

/** A Map iteration's end: its move's outcome, or the error its child execution failed with. */
const moveResult = z.union([
  z.object({ vmId: z.string(), moved: z.literal(true) }),
  z.object({ vmId: z.string(), skipped: z.string() }),
  z.object({ vmId: z.string(), error: stepFunctionsError }),
]);

export const hostMaintenanceActions = [
  z.object({
    action: z.literal('hostMaintenanceTask'),
    step: z.enum(MAINTENANCE_STEPS),
    jobId: z.string(),
    hostId: z.string(),
    vmId: z.string().optional(),
    moves: z.array(moveResult).nullish(),
    /** Release's view of the whole execution state: the moves, when it got that far. */
    state: z.object({ moves: z.array(moveResult).optional() }).passthrough().optional(),
    error: stepFunctionsError.optional(),
  }),
] as const;
export type HostMaintenanceTask = z.infer<(typeof hostMaintenanceActions)[number]>;

const rendered = async (host: Host) => ({ host: renderHost(host, await hostContext([host])) });

async function hostOf(hostId: string): Promise<Host> {
  const host = await getHost(hostId);
  if (!host) throw new InternalError(prepareFailure(`Unable to find host with ID: ${hostId}. Please specify a valid host ID.`));
  return host;
}

/** Stopped VMs forget the host as their last one (their next start plans afresh); the Running ones to move, and how many at once. */
async function planEvacuation(hostId: string) {
  const host = await hostOf(hostId);
  if (host.resourcestate !== 'PrepareForMaintenance') return { vms: [], concurrency: 1 };
  for (const vm of await listVmRecords({ states: ['Stopped'] })) {
    if (vm.lastHostId === host.id) await updateVmRecord(vm.id, { lastHostId: undefined }, ['Stopped']);
  }
  const running = await listVmRecords({ hostId: host.id, states: ['Running'] });
  const settings = await loadSettings();
  return { vms: running.map((vm) => vm.id), concurrency: settings.number('host.maintenance.parallel.migrations') };
}

/**
 * One VM's move begins: a migrateVirtualMachine job of its own in the maintenance's caller's name,
 * which the child vm-migrate execution ends. Skipped when the maintenance was cancelled or the VM no
 * longer runs on the host.
 */
async function startMove(parentJobId: string, hostId: string, vmId: string) {
  const host = await hostOf(hostId);
  if (host.resourcestate !== 'PrepareForMaintenance') return { skip: true, skipped: `the host is ${host.resourcestate}` };
  const vm = await getVmConsistent(vmId);
  if (!vm || vm.state !== 'Running' || vm.hostId !== host.id) return { skip: true, skipped: `the VM is ${vm?.state ?? 'gone'}${vm?.hostId && vm.hostId !== host.id ? ' on another host' : ''}` };
  const parent = await getJob(parentJobId);
  const job = await createJob({
    cmd: 'migrateVirtualMachine',
    actor: parent?.actor,
    event: { type: 'VM.MIGRATE', description: `Attempting to migrate VM id: ${vm.id}`, resourceId: vm.id, resourceType: 'VirtualMachine' },
    jobinstancetype: 'VirtualMachine',
    jobinstanceid: vm.id,
  });
  return { skip: false, migrateJobId: job.jobid };
}

/** The child's errortext (its execution's Cause), from the Task's States.TaskFailed description. */
function childFailure(error: z.infer<typeof stepFunctionsError>): string {
  try {
    const described = JSON.parse(error.Cause ?? '') as { Cause?: unknown; Error?: unknown };
    if (typeof described.Cause === 'string' && described.Cause) return described.Cause;
    if (typeof described.Error === 'string') return described.Error;
  } catch {
    // Not a child's description: the Task failed on its own.
  }
  return error.Cause || error.Error;
}

const outcomesOf = (moves: HostMaintenanceTask['moves']): MoveOutcome[] =>
  (moves ?? []).map((move) => ('error' in move ? { vmId: move.vmId, failed: childFailure(move.error) } : move));

/** Every move has ended: Maintenance, or the reasons why not (Release records them). */
async function finishEvacuation(hostId: string, moves: HostMaintenanceTask['moves']) {
  const host = await hostOf(hostId);
  const remaining = await listVmRecords({ hostId: host.id });
  const decision = decideEvacuation(host, outcomesOf(moves), remaining);
  if (decision.kind === 'cancelled') return rendered(host);
  if (decision.kind === 'unable') {
    const names = new Map(remaining.map((vm) => [vm.id, vm.instanceName]));
    const reasons = decision.reasons.map(({ vmId, reason }) => `VM ${names.get(vmId) ?? vmId}: ${reason}`);
    throw new InternalError(prepareFailure(`Unable to prepare for maintenance host ${host.id}: ${reasons.join('; ')}`));
  }
  const entered = await updateHostRecord(host.id, { resourcestate: nextResourceState(host.resourcestate, 'InternalEnterMaintenance') }, { resourcestate: host.resourcestate });
  return rendered(entered ?? (await hostOf(hostId)));
}

/**
 * Any failure of a preparation: the host is UnableToMigrate (ErrorInPrepareForMaintenance: still no
 * placements, and cancelHostMaintenance or another prepareHostForMaintenance later), with a WARN
 * event saying why and an alert for each VM that could not move. The VMs themselves stay Running
 * where they are; nothing else was held.
 */
async function releaseMaintenance(jobId: string, hostId: string, moves: HostMaintenanceTask['moves'], error: HostMaintenanceTask['error']) {
  const host = await getHost(hostId);
  if (!host || host.resourcestate !== 'PrepareForMaintenance') return { released: false };
  const failed = await updateHostRecord(host.id, { resourcestate: nextResourceState(host.resourcestate, 'UnableToMigrate') }, { resourcestate: host.resourcestate });
  if (!failed) return { released: false };
  const job = await getJob(jobId);
  const why = error ? jobError(error).errortext : 'unknown';
  if (job?.actor) {
    await recordEvent(job.actor, {
      type: 'MAINT.PREPARE',
      level: 'WARN',
      description: `Host ${host.id} entering in PrepareForMaintenanceWithErrors state: ${why}`,
      resourceId: host.id,
      resourceType: 'Host',
    });
  }
  const [zone, pod] = await Promise.all([getZone(host.zoneId), getPod(host.podId)]);
  for (const outcome of outcomesOf(moves)) {
    if (!('failed' in outcome)) continue;
    const vm = await getVmConsistent(outcome.vmId);
    await createAlert({
      alertType: ALERT_TYPES.USERVM_MIGRATE,
      subject: `Unable to migrate vm ${vm?.instanceName ?? outcome.vmId} from host ${host.name} in zone ${zone?.name ?? host.zoneId} and pod ${pod?.name ?? host.podId}`,
      content: outcome.failed,
      zoneId: host.zoneId,
      podId: host.podId,
      clusterId: host.clusterId,
      resourceId: host.id,
      resourceType: 'Host',
    });
  }
  return { released: true };
}

/** AdminCancelMaintenance: Enabled again; VMs that moved away stay where they are. */
async function cancelMaintenance(hostId: string) {
  const host = await getHost(hostId);
  if (!host) throw new InternalError(`Host with id ${hostId} doesn't exist`);
  if (!isMaintenanceState(host.resourcestate)) throw new InternalError(cancelRefusalText(host));
  try {
    const enabled = await transitionResourceState(host.id, 'AdminCancelMaintenance');
    if (!enabled) throw new InternalError(`Host with id ${hostId} doesn't exist`);
    return rendered(enabled);
  } catch (error) {
    if (error instanceof IllegalTransition) throw new InternalError(cancelRefusalText({ id: host.id, resourcestate: error.from as Host['resourcestate'] }));
    throw error;
  }
}

export async function runHostMaintenanceTask(task: HostMaintenanceTask): Promise<unknown> {
  switch (task.step) {
    case 'planEvacuation':
      return planEvacuation(task.hostId);
    case 'startMove':
      return startMove(task.jobId, task.hostId, task.vmId!);
    case 'finishEvacuation':
      return finishEvacuation(task.hostId, task.moves);
    case 'releaseMaintenance':
      return releaseMaintenance(task.jobId, task.hostId, task.state?.moves, task.error);
    case 'cancelMaintenance':
      return cancelMaintenance(task.hostId);
  }
}
