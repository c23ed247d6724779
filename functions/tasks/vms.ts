// Task steps of the VM state machines (statemachines/vm-*.asl.json). Each step is short and safe to
// repeat (Lambda retries): it reads the VM, acts only from the states it expects, and records
// progress on the VM record before or with what it reserves, so a retry finds its own work done.
// Prepare steps build the agent command the state machine sends (waitForTaskToken on the host's
// agent queue); Commit steps turn the agent's answer into records; Release/Abort steps give back
// what the operation held when anything failed, before failJob.
import { z } from 'zod';
import { agentCommands, type AgentCommandType, type VmSpec } from '../../shared/agent/protocol.ts';
import { InsufficientCapacity, InternalError, InvalidParameter, ResourceUnavailable } from '../../shared/cloudstack/errors.ts';
import { holdsLease } from '../../shared/agent-leases.ts';
import { getAgent } from '../../shared/db/agents.ts';
import { faultPoint } from '../../shared/faults.ts';
import { planAndReserve, releaseHostCapacity, releaseReservation } from '../../shared/db/capacity.ts';
import { getHost, listHostRecords, type Host } from '../../shared/db/hosts.ts';
import { getZone } from '../../shared/db/infrastructure.ts';
import { releaseResources } from '../../shared/db/limits.ts';
import { getServiceOffering } from '../../shared/db/offerings.ts';
import { getStoragePool, releasePoolBytes, type StoragePool } from '../../shared/db/storage.ts';
import { getTemplate, zoneCopy } from '../../shared/db/templates.ts';
import {
  deleteVmRecords,
  deleteVolumeRecord,
  getVmConsistent,
  getVolume,
  listVolumesOfVm,
  transitionVm,
  updateVmRecord,
  updateVolumeRecord,
  vmResources,
  volumeResources,
  type VirtualMachine,
  type VmState,
  type Volume,
} from '../../shared/db/vms.ts';
import { loadSettings, settingsFor } from '../../shared/settings.ts';
import { haRetry, haRetryAlert, type HaRetry } from '../../shared/vm-ha.ts';
import { ALERT_TYPES, createAlert } from '../../shared/db/alerts.ts';
import { log } from '../../shared/log.ts';
import { releaseVmAddresses } from '../api/commands/vms.ts';
import { renderVmFor, type VmViewer as Viewer } from '../api/commands/vms-list.ts';
import { targetOf } from './agent-commands.ts';
import { dataDisksOf } from './volumes.ts';
import { stepFunctionsError } from './jobs.ts';

export const VM_STEPS = [
  'createStopped',
  'planStart',
  'commitStart',
  'releaseStart',
  'prepareStop',
  'commitStop',
  'abortStop',
  'prepareReboot',
  'finishReboot',
  'prepareDestroy',
  'commitDestroy',
  'abortDestroy',
  'prepareExpunge',
  'commitExpunge',
  'abortExpunge',
] as const;
export type VmStep = (typeof VM_STEPS)[number];

const viewer = z.object({ rootAdmin: z.boolean(), admin: z.boolean() }).default({ rootAdmin: false, admin: false });

export const vmActions = [
  z.object({
    action: z.literal('vmTask'),
    step: z.enum(VM_STEPS),
    jobId: z.string(),
    vmId: z.string(),
    viewer,
    /** deploy (a failure leaves the VM in Error) or start (a failure leaves it Stopped). */
    op: z.enum(['deploy', 'start']).optional(),
    forced: z.boolean().optional(),
    result: z.unknown().optional(),
    error: stepFunctionsError.optional(),
  }),
] as const;
export type VmTask = z.infer<(typeof vmActions)[number]>;

/** What a Prepare step hands the state machine: whether to send a command, and the command. */
export interface Prepared {
  send: boolean;
  queueUrl?: string;
  command?: { commandId: string; type: AgentCommandType; deadline: string; payload: unknown };
  timeoutSeconds?: number;
}

const GRACEFUL_STOP_SECONDS = 60;

const gone = (vmId: string) => new InvalidParameter(`Unable to find a virtual machine with id ${vmId}: it was removed meanwhile`);

async function currentVm(vmId: string): Promise<VirtualMachine> {
  const vm = await getVmConsistent(vmId);
  if (!vm) throw gone(vmId);
  return vm;
}

/** The command for the host's agent, sent by the state machine (the job's id and the type make its id: the agent runs it once). */
export async function command(jobId: string, host: Host, type: AgentCommandType, payload: unknown, extraSeconds = 0): Promise<Prepared> {
  if (!host.agentId) throw new ResourceUnavailable(`Host ${host.name} (${host.id}) has no agent: it was not added through one`);
  const agent = await getAgent(host.agentId);
  if (!agent || agent.state !== 'Enabled') throw new ResourceUnavailable(`The agent of host ${host.name} (${host.id}) is ${agent ? 'revoked' : 'gone'}`);
  const timeoutSeconds = (await loadSettings()).number('agent.command.timeout') + extraSeconds;
  return {
    send: true,
    queueUrl: agent.queueUrl,
    command: {
      commandId: `${jobId}-${type}`,
      type,
      deadline: new Date(Date.now() + timeoutSeconds * 1000).toISOString(),
      payload: agentCommands[type].payload.parse(payload),
    },
    timeoutSeconds,
  };
}

async function hostOf(vm: VirtualMachine, hostId = vm.hostId): Promise<Host> {
  const host = hostId ? await getHost(hostId) : undefined;
  if (!host) throw new ResourceUnavailable(`The host of VM ${vm.instanceName} (${hostId ?? 'none'}) no longer exists`);
  return host;
}

const render = (vm: VirtualMachine, who: Viewer) => renderVmFor(vm, who).then((virtualmachine) => ({ virtualmachine }));

const trimSlash = (path: string) => path.replace(/\/+$/, '');
export const configDrivePath = (pool: Pick<StoragePool, 'path'>, vmId: string) => `${trimSlash(pool.path)}/${vmId}-config.iso`;

// ---- start (deploy and startVirtualMachine) ----

/** The domain the agent defines: everything from the records (upstream: a start rebuilds the VM from the database). */
async function vmSpecOf(vm: VirtualMachine, host: Host, volume: Volume, pool: StoragePool): Promise<VmSpec> {
  const template = await getTemplate(vm.templateId);
  const copy = template ? zoneCopy(template, vm.zoneId) : undefined;
  if (!template || !copy?.installPath) throw new ResourceUnavailable(`Template ${vm.templateId} of VM ${vm.instanceName} is no longer in primary storage of zone ${vm.zoneId}`);
  const zone = await getZone(vm.zoneId);
  const dns = [zone?.dns1, zone?.dns2].filter((d): d is string => Boolean(d));
  return {
    name: vm.instanceName,
    uuid: vm.id,
    hostname: vm.name,
    vcpus: vm.cpuNumber,
    cpuMhz: vm.cpuSpeed,
    memoryMiB: vm.memoryMiB,
    // The root overlay (from an ISO: a blank disk), then the attached data disks (placed on the root's pool at their first start).
    disks: [
      { path: volume.path, ...(template.kind !== 'iso' && { backingFile: copy.installPath }), sizeBytes: volume.sizeBytes, deviceId: 0 },
      ...(await dataDisksOf(vm, pool)),
    ],
    // Deployed from an ISO: it stays attached, booted before the root disk (there is no detachIso yet).
    ...(template.kind === 'iso' && { iso: copy.installPath }),
    configDrive: {
      path: configDrivePath(pool, vm.id),
      instanceId: vm.instanceName,
      publicKeys: (vm.sshPublicKeys as Record<string, string> | undefined) ?? {},
      ...(vm.userData && { userData: vm.userData }),
      ...(zone && { availabilityZone: zone.name }),
    },
    nics: vm.nics.map((nic) => ({ mac: nic.mac, ...(nic.vlan !== undefined && { vlan: nic.vlan }), ip: nic.ip, netmask: nic.netmask, gateway: nic.gateway, dns })),
    vncListen: host.ipaddress,
  };
}

/**
 * Plans and reserves a host (and, at the first start, the root disk's bytes on a pool the host
 * reaches), records them on the VM and its volume, and builds startVm. A retry finds the host it
 * recorded and only builds the command again.
 */
async function planStart(jobId: string, vmId: string): Promise<Prepared> {
  let vm = await currentVm(vmId);
  if (vm.state !== 'Starting') throw new InvalidParameter(`The virtual machine ${vm.id} is ${vm.state}, not Starting`);
  let volume = await getVolume(vm.rootVolumeId);
  if (!volume) throw new InternalError(`The root volume of VM ${vm.instanceName} is missing`);
  if (!vm.hostId || vm.startJobId !== jobId) {
    const settings = await loadSettings();
    const [offering, template] = await Promise.all([getServiceOffering(vm.serviceOfferingId), getTemplate(vm.templateId)]);
    const copy = template ? zoneCopy(template, vm.zoneId) : undefined;
    if (!copy?.poolId || copy.downloadState !== 'DOWNLOADED') {
      throw new ResourceUnavailable(`Template ${vm.templateId} of VM ${vm.instanceName} is not ready in zone ${vm.zoneId}`);
    }
    const firstPlacement = !volume.poolReserved;
    const requested = typeof vm.requestedHostId === 'string' ? vm.requestedHostId : undefined;
    const plan = (avoid: string[] = [], hostId = requested) =>
      planAndReserve({
        vm,
        jobId,
        hostTags: offering?.hosttags,
        storageTags: offering?.storagetags,
        // The overlay needs its template file: the host must reach the pool the template was downloaded to.
        poolId: firstPlacement ? copy.poolId : volume!.poolId,
        ...(firstPlacement && { diskBytes: volume!.sizeBytes }),
        ...(hostId && { hostId }),
        avoidHostIds: avoid,
        settings,
      });
    // A VM that ran before goes back to its last host when that host still takes it.
    let reservation;
    if (!requested && vm.lastHostId) {
      try {
        reservation = await plan([], vm.lastHostId);
      } catch (error) {
        if (!(error instanceof InsufficientCapacity)) throw error;
      }
    }
    reservation ??= await plan();
    faultPoint('vm-start.reserved', vm.name);
    const recorded = await transitionVm(vm.id, ['Starting'], 'Starting', {
      hostId: reservation.hostId,
      podId: reservation.podId,
      clusterId: reservation.clusterId,
      startJobId: jobId,
    });
    if (!recorded) {
      await releaseReservation(reservation);
      throw new InvalidParameter(`The virtual machine ${vm.id} changed state while it was being placed`);
    }
    vm = recorded;
    if (reservation.poolId) {
      const pool = reservation.pool ?? (await getStoragePool(reservation.poolId));
      volume = (await updateVolumeRecord(volume.id, { poolId: reservation.poolId, path: `${trimSlash(String(pool?.path ?? ''))}/${volume.id}.qcow2`, poolReserved: true })) ?? volume;
    }
  }
  const host = await hostOf(vm);
  const pool = await getStoragePool(volume.poolId);
  if (!pool) throw new ResourceUnavailable(`The primary storage pool ${volume.poolId} of VM ${vm.instanceName} no longer exists`);
  return command(jobId, host, 'startVm', { host: targetOf(host), vm: await vmSpecOf(vm, host, volume, pool) });
}

/** The agent started the domain: the VM runs there. */
async function commitStart(vmId: string, who: Viewer) {
  const vm = await currentVm(vmId);
  if (vm.state === 'Running') return render(vm, who);
  const running = await transitionVm(vm.id, ['Starting'], 'Running', { lastHostId: vm.hostId, startJobId: undefined, requestedHostId: undefined });
  if (!running) throw new InvalidParameter(`The virtual machine ${vm.id} is ${vm.state}, not Starting`);
  await updateVolumeRecord(vm.rootVolumeId, { state: 'Ready' });
  return render(running, who);
}

/**
 * A start failed: the host's capacity goes back. A failed deploy leaves the VM in Error and gives
 * back everything it held (limits, addresses, the root disk's bytes); a failed start leaves it Stopped.
 */
async function releaseStart(vmId: string, op: 'deploy' | 'start') {
  const vm = await getVmConsistent(vmId);
  if (!vm || vm.state !== 'Starting') return { released: false };
  const to: VmState = op === 'deploy' ? 'Error' : 'Stopped';
  // An HA restart that failed is queued again (restart.retry.interval, up to max.retries starts).
  const retry = vm.haStarting ? haRetry(vm, await retrySettings(vm), Date.now()) : undefined;
  const failed = await transitionVm(vm.id, ['Starting'], to, {
    hostId: undefined,
    startJobId: undefined,
    requestedHostId: undefined,
    ...(op === 'deploy' && { addressesReleased: true }),
    haStarting: undefined,
    ...(retry?.kind === 'retry' && { haRestart: true, haAttempts: retry.attempts, haRetryAfter: retry.after }),
    ...(retry?.kind === 'giveUp' && { haAttempts: undefined }),
  });
  if (!failed) return { released: false };
  if (vm.hostId) await releaseHostCapacity(vm.hostId, vm);
  if (retry) await recordHaRetry(vm, retry);
  if (op === 'deploy') {
    await releaseVmAddresses(vm);
    const volume = await getVolume(vm.rootVolumeId);
    if (volume?.poolReserved) {
      await releasePoolBytes(volume.poolId, volume.sizeBytes).catch(() => undefined);
    }
    if (volume) await updateVolumeRecord(volume.id, { state: 'Destroy', poolReserved: undefined });
    const amounts = { ...vmResources(vm), ...(volume && volumeResources(volume)) };
    // The data disks created with the VM go with its failed deploy (their files, if any, at its expunge).
    for (const data of await createdDataDisksOf(vm)) {
      if (data.state === 'Destroy') continue;
      if (data.poolReserved) await releasePoolBytes(data.poolId, data.sizeBytes).catch(() => undefined);
      await updateVolumeRecord(data.id, { state: 'Destroy', poolReserved: undefined });
      amounts.volume = (amounts.volume ?? 0) + 1;
      amounts.primary_storage = (amounts.primary_storage ?? 0) + data.sizeBytes;
    }
    await releaseResources(vm.accountId, amounts);
  }
  return { released: true };
}

async function retrySettings(vm: VirtualMachine) {
  const scoped = await settingsFor({ ...(vm.clusterId && { clusterId: vm.clusterId }), zoneId: vm.zoneId });
  return { maxRetries: scoped.number('max.retries'), retryIntervalMs: scoped.number('restart.retry.interval') * 1000 };
}

/** Says what became of a failed HA start. */
async function recordHaRetry(vm: VirtualMachine, retry: HaRetry) {
  log.warn(retry.kind === 'retry' ? 'HA: a restart failed; tried again later' : 'HA: a restart failed max.retries times; given up', { vmId: vm.id, attempts: retry.attempts });
  await createAlert({ alertType: ALERT_TYPES.USERVM, ...haRetryAlert(vm, retry), zoneId: vm.zoneId, ...(vm.podId && { podId: vm.podId }), resourceId: vm.id, resourceType: 'VirtualMachine' });
}

/** The data disks deployVirtualMachine created with the VM and still attached to it. */
const createdDataDisksOf = async (vm: VirtualMachine) =>
  (await listVolumesOfVm(vm.id)).filter((v) => v.type === 'DATADISK' && v.vmId === vm.id && v.createdWithVm === vm.id);

/** Those a failed deploy gave back: their files (if made) and records go with the VM's expunge. */
const failedDataDisksOf = async (vm: VirtualMachine) => (await createdDataDisksOf(vm)).filter((v) => v.state === 'Destroy');

// ---- stop ----

async function prepareStop(jobId: string, vmId: string, forced: boolean): Promise<Prepared> {
  let vm = await currentVm(vmId);
  if (vm.state === 'Stopped') return { send: false };
  if (vm.state === 'Running') {
    const stopping = await transitionVm(vm.id, ['Running'], 'Stopping');
    if (!stopping) throw new InvalidParameter(`The virtual machine ${vm.id} changed state; try again`);
    vm = stopping;
  } else if (vm.state !== 'Stopping') {
    throw new InvalidParameter(`The virtual machine ${vm.id} (${vm.displayName}) cannot be stopped: it is ${vm.state}`);
  }
  const host = await hostOf(vm);
  return command(jobId, host, 'stopVm', { host: targetOf(host), name: vm.instanceName, forced, timeoutSeconds: GRACEFUL_STOP_SECONDS }, GRACEFUL_STOP_SECONDS);
}

/** Stopping → `to` with the host given back (upstream releases a stopped VM's host capacity); the VM keeps it as its last host. */
async function stopped(vm: VirtualMachine, to: VmState, changes: Record<string, unknown> = {}): Promise<VirtualMachine | undefined> {
  const moved = await transitionVm(vm.id, ['Stopping'], to, { hostId: undefined, lastHostId: vm.hostId ?? vm.lastHostId, ...changes });
  // Recorded first, released after: a retry that finds the VM moved does not give the capacity back twice.
  if (moved && vm.hostId) await releaseHostCapacity(vm.hostId, vm);
  return moved;
}

async function commitStop(vmId: string, who: Viewer) {
  const vm = await currentVm(vmId);
  if (vm.state === 'Stopped') return render(vm, who);
  const moved = await stopped(vm, 'Stopped');
  if (!moved) throw new InvalidParameter(`The virtual machine ${vm.id} is ${vm.state}, not Stopping`);
  return render(moved, who);
}

/** The agent could not stop it: it still runs where it ran. */
async function abortStop(vmId: string) {
  await transitionVm(vmId, ['Stopping'], 'Running');
  return { aborted: true };
}

// ---- reboot ----

async function prepareReboot(jobId: string, vmId: string): Promise<Prepared> {
  const vm = await currentVm(vmId);
  if (vm.state !== 'Running') throw new InvalidParameter(`The VM ${vm.id} (${vm.displayName}) is not running, unable to reboot it`);
  const host = await hostOf(vm);
  return command(jobId, host, 'rebootVm', { host: targetOf(host), name: vm.instanceName });
}

const finishReboot = async (vmId: string, who: Viewer) => render(await currentVm(vmId), who);

// ---- destroy ----

/** A running VM is stopped first: gracefully, unless vm.destroy.forcestop says otherwise (upstream's setting). */
async function prepareDestroy(jobId: string, vmId: string): Promise<Prepared> {
  const vm = await currentVm(vmId);
  if (vm.state === 'Stopped' || vm.state === 'Error' || vm.state === 'Destroyed' || vm.state === 'Expunging') return { send: false };
  return prepareStop(jobId, vmId, (await loadSettings()).boolean('vm.destroy.forcestop'));
}

/** → Destroyed: its limits go back (a VM in Error gave them back already); it stays on its pool and keeps its addresses until expunged. */
async function commitDestroy(vmId: string, who: Viewer) {
  const vm = await currentVm(vmId);
  if (vm.state === 'Destroyed' || vm.state === 'Expunging') return render(vm, who);
  const destroyedAt = new Date().toISOString();
  let destroyed: VirtualMachine | undefined;
  if (vm.state === 'Stopping') destroyed = await stopped(vm, 'Destroyed', { destroyed: destroyedAt });
  else destroyed = await transitionVm(vm.id, [vm.state === 'Error' ? 'Error' : 'Stopped'], 'Destroyed', { destroyed: destroyedAt });
  if (!destroyed) throw new InvalidParameter(`The virtual machine ${vm.id} changed state while it was being destroyed`);
  if (vm.state !== 'Error') {
    const volume = await getVolume(vm.rootVolumeId);
    if (volume) await updateVolumeRecord(volume.id, { state: 'Destroy' });
    await releaseResources(vm.accountId, { ...vmResources(vm), ...(volume && volumeResources(volume)) });
  }
  return render(destroyed, who);
}

async function abortDestroy(vmId: string) {
  await transitionVm(vmId, ['Stopping'], 'Running');
  return { aborted: true };
}

// ---- expunge ----

/** An Up host of an Enabled agent that reaches the pool (its cluster's, or any of the zone's for a zone-wide pool). */
export async function hostReaching(pool: StoragePool): Promise<Host | undefined> {
  const hosts = (await listHostRecords({ zoneId: pool.zoneId })).filter(
    (host) => host.status === 'Up' && host.agentId && (pool.scope === 'ZONE' || host.clusterId === pool.clusterId),
  );
  for (const host of hosts) {
    const agent = await getAgent(host.agentId!);
    if (agent && holdsLease(agent, Date.now())) return host;
  }
  return undefined;
}

/**
 * → Expunging, and expungeVm for the host that has the files: the last host when it is Up and
 * reaches the pool, else any Up host of the pool. Nothing was ever written for a VM never placed:
 * no command then.
 */
async function prepareExpunge(jobId: string, vmId: string): Promise<Prepared> {
  const vm = await getVmConsistent(vmId);
  if (!vm) return { send: false };
  if (vm.state !== 'Expunging') {
    const claimed = await transitionVm(vm.id, ['Destroyed', 'Error'], 'Expunging', { expungeFrom: vm.state });
    if (!claimed) throw new InvalidParameter(`Please destroy vm with id ${vm.id} first`);
  }
  const volume = await getVolume(vm.rootVolumeId);
  if (!volume?.poolId) return { send: false };
  const pool = await getStoragePool(volume.poolId);
  if (!pool) return { send: false };
  const lastHost = vm.lastHostId ? await getHost(vm.lastHostId) : undefined;
  const lastAgent = lastHost?.agentId ? await getAgent(lastHost.agentId) : undefined;
  const host =
    lastHost && lastHost.status === 'Up' && lastAgent?.state === 'Enabled' && (pool.scope === 'ZONE' || lastHost.clusterId === pool.clusterId) ? lastHost : await hostReaching(pool);
  if (!host) throw new ResourceUnavailable(`No Up host with an agent reaches primary storage pool ${pool.name} (${pool.id}) to remove VM ${vm.instanceName}'s files; try again when one is Up`);
  const failedData = (await failedDataDisksOf(vm)).map((v) => v.path);
  return command(jobId, host, 'expungeVm', { host: targetOf(host), name: vm.instanceName, files: [volume.path, configDrivePath(pool, vm.id), ...failedData].filter(Boolean) });
}

/** The files are gone: addresses and the disk's bytes go back, and the records go. */
async function commitExpunge(vmId: string) {
  const vm = await getVmConsistent(vmId);
  if (!vm) return { success: true };
  if (vm.state !== 'Expunging') throw new InvalidParameter(`Please destroy vm with id ${vm.id} first`);
  await releaseVmAddresses(vm);
  await updateVmRecord(vm.id, { addressesReleased: true });
  const volume = await getVolume(vm.rootVolumeId);
  if (volume?.poolReserved) {
    await updateVolumeRecord(volume.id, { poolReserved: undefined, state: 'Expunged' });
    await releasePoolBytes(volume.poolId, volume.sizeBytes).catch(() => undefined);
  }
  for (const data of await failedDataDisksOf(vm)) await deleteVolumeRecord(data.id);
  await deleteVmRecords(vm.id);
  return { success: true };
}

/** The host could not remove the files: the VM goes back to where it was (the sweeper tries again). */
async function abortExpunge(vmId: string) {
  const vm = await getVmConsistent(vmId);
  if (vm?.state === 'Expunging') await transitionVm(vm.id, ['Expunging'], vm.expungeFrom === 'Error' ? 'Error' : 'Destroyed', { expungeFrom: undefined });
  return { aborted: true };
}

// ---- dispatch ----

export async function runVmTask(task: VmTask): Promise<unknown> {
  const { jobId, vmId } = task;
  const who = task.viewer;
  switch (task.step) {
    case 'createStopped':
      return render(await currentVm(vmId), who);
    case 'planStart':
      return planStart(jobId, vmId);
    case 'commitStart': {
      const parsed = agentCommands.startVm.result.safeParse(task.result);
      if (!parsed.success) throw new InternalError(`The agent answered startVm with a result Mold cannot read: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
      if (parsed.data.vncPort !== undefined) await updateVmRecord(vmId, { vncPort: parsed.data.vncPort });
      return commitStart(vmId, who);
    }
    case 'releaseStart':
      return releaseStart(vmId, task.op ?? 'start');
    case 'prepareStop':
      return prepareStop(jobId, vmId, task.forced ?? false);
    case 'commitStop':
      return commitStop(vmId, who);
    case 'abortStop':
      return abortStop(vmId);
    case 'prepareReboot':
      return prepareReboot(jobId, vmId);
    case 'finishReboot':
      return finishReboot(vmId, who);
    case 'prepareDestroy':
      return prepareDestroy(jobId, vmId);
    case 'commitDestroy':
      return commitDestroy(vmId, who);
    case 'abortDestroy':
      return abortDestroy(vmId);
    case 'prepareExpunge':
      return prepareExpunge(jobId, vmId);
    case 'commitExpunge':
      return commitExpunge(vmId);
    case 'abortExpunge':
      return abortExpunge(vmId);
  }
}
