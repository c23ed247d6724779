// Task steps of the volume state machines (statemachines/volume-*.asl.json). The API command checks
// the request and claims the volume (`busy` = the operation's token, with what it is about to do:
// `pendingVmId`/`pendingDeviceId`, `pendingSize`, `limitDelta`); Prepare builds the agent command
// (or none, when only records change), Commit records the outcome and lets the volume go, Abort gives
// back what the operation took (pool bytes it reserved, limits the command reserved, a placement it
// made) and lets the volume go, so a failed operation leaves the volume as it was.
//
// Placement: a data volume has no pool and no file until it first meets a VM that has a placed root
// disk (upstream's "the volume will be finally created only when it's attached"): it goes to the root
// disk's pool, `<pool path>/<volume id>.qcow2`, its bytes reserved there (`poolReserved`); the file is
// made by attachDisk (a running VM) or by the next startVm (a stopped one).
import { z } from 'zod';
import { agentCommands } from '../../shared/agent/protocol.ts';
import { InsufficientCapacity, InternalError, InvalidParameter, ResourceUnavailable } from '../../shared/cloudstack/errors.ts';
import { getHost, type Host } from '../../shared/db/hosts.ts';
import { cloudstackDate } from '../../shared/db/jobs.ts';
import { incrementResources, releaseResources } from '../../shared/db/limits.ts';
import { getStoragePool, PoolFull, releasePoolBytes, reservePoolBytes, type StoragePool } from '../../shared/db/storage.ts';
import { deleteVolumeRecord, getVmConsistent, getVolumeConsistent as getVolume, listVolumesOfVm, updateVolumeIf, updateVolumeRecord, volumeResources, type VirtualMachine, type Volume } from '../../shared/db/vms.ts';
import { renderVolumeFor, type VolumeViewer } from '../api/commands/volumes.ts';
import { targetOf } from './agent-commands.ts';
import { stepFunctionsError } from './jobs.ts';
import { command, hostReaching, type Prepared } from './vms.ts';

export const VOLUME_STEPS = [
  'render',
  'prepareAttach',
  'commitAttach',
  'abortAttach',
  'prepareDetach',
  'commitDetach',
  'abortDetach',
  'prepareResize',
  'commitResize',
  'abortResize',
  'prepareDelete',
  'commitDelete',
  'abortDelete',
] as const;

const viewer = z.object({ rootAdmin: z.boolean(), admin: z.boolean() }).default({ rootAdmin: false, admin: false });

export const volumeActions = [
  z.object({
    action: z.literal('volumeTask'),
    step: z.enum(VOLUME_STEPS),
    jobId: z.string(),
    volumeId: z.string(),
    token: z.string().optional(),
    viewer,
    result: z.unknown().optional(),
    error: stepFunctionsError.optional(),
  }),
] as const;
export type VolumeTask = z.infer<(typeof volumeActions)[number]>;

/** How long a guest gets to release a hot-unplugged disk. */
const DETACH_WAIT_SECONDS = 15;

const trimSlash = (path: string) => path.replace(/\/+$/, '');
export const volumePath = (pool: Pick<StoragePool, 'path'>, volumeId: string) => `${trimSlash(pool.path)}/${volumeId}.qcow2`;

const render = async (volume: Volume, who: VolumeViewer) => ({ volume: await renderVolumeFor(volume, who) });

async function current(volumeId: string): Promise<Volume> {
  const volume = await getVolume(volumeId);
  if (!volume) throw new InvalidParameter(`Unable to find volume with ID: ${volumeId}: it was removed meanwhile`);
  return volume;
}

/** The volume as the operation `token` holds it (a retried step finds it so too). */
async function held(volumeId: string, token: string | undefined): Promise<Volume> {
  const volume = await current(volumeId);
  if (!token || volume.busy !== token) throw new InvalidParameter(`Volume ${volume.name} (${volume.id}) changed meanwhile; try again`);
  return volume;
}

async function vmOf(vmId: string | undefined): Promise<VirtualMachine> {
  const vm = vmId ? await getVmConsistent(vmId) : undefined;
  if (!vm) throw new InvalidParameter(`Unable to find a virtual machine with id ${vmId}: it was removed meanwhile`);
  return vm;
}

async function hostOf(vm: VirtualMachine): Promise<Host> {
  const host = vm.hostId ? await getHost(vm.hostId) : undefined;
  if (!host) throw new ResourceUnavailable(`The host of VM ${vm.instanceName} (${vm.hostId ?? 'none'}) no longer exists`);
  return host;
}

/** The pool of the VM's root disk, when it has one yet. */
async function rootPoolOf(vm: VirtualMachine): Promise<StoragePool | undefined> {
  const root = await getVolume(vm.rootVolumeId);
  if (!root?.poolReserved || !root.poolId) return undefined;
  return getStoragePool(root.poolId);
}

/** Reserves the volume's bytes on `pool` and records where its file is (or will be). */
async function place(volume: Volume, pool: StoragePool, expect: Record<string, unknown>, extra: Partial<Volume> = {}): Promise<Volume> {
  try {
    await reservePoolBytes(pool.id, volume.sizeBytes);
  } catch (error) {
    if (error instanceof PoolFull) throw new InsufficientCapacity(`Storage pool ${pool.name} does not have enough space for volume ${volume.name}`);
    throw new ResourceUnavailable(`Failed to find a primary storage for volume ${volume.name} in state: ${volume.state} (pool ${pool.name}: ${(error as Error).message})`);
  }
  const placed = await updateVolumeIf(volume.id, expect, { poolId: pool.id, path: volumePath(pool, volume.id), poolReserved: true, state: 'Ready', ...extra });
  if (!placed) {
    await releasePoolBytes(pool.id, volume.sizeBytes).catch(() => undefined);
    throw new InvalidParameter(`Volume ${volume.name} (${volume.id}) changed meanwhile; try again`);
  }
  return placed;
}

/**
 * The data disks startVm attaches: the VM's DATADISK volumes by device id, each placed on the root
 * disk's pool at its first start (called while the root disk has its pool).
 */
export async function dataDisksOf(vm: VirtualMachine, rootPool: StoragePool): Promise<Array<{ path: string; sizeBytes: number; deviceId: number }>> {
  const disks: Array<{ path: string; sizeBytes: number; deviceId: number }> = [];
  const volumes = (await listVolumesOfVm(vm.id)).filter((v) => v.type === 'DATADISK' && v.vmId === vm.id && v.deviceId !== undefined);
  for (let volume of volumes.sort((a, b) => a.deviceId! - b.deviceId!)) {
    if (!volume.poolReserved) volume = await place(volume, rootPool, { vmId: vm.id, poolReserved: undefined });
    disks.push({ path: volume.path, sizeBytes: volume.sizeBytes, deviceId: volume.deviceId! });
  }
  return disks;
}

// ---- attach ----

async function prepareAttach(jobId: string, volumeId: string, token: string | undefined): Promise<Prepared> {
  let volume = await held(volumeId, token);
  const vm = await vmOf(volume.pendingVmId as string | undefined);
  const deviceId = Number(volume.pendingDeviceId);
  if (vm.state !== 'Running' && vm.state !== 'Stopped') throw new InvalidParameter('Please specify a VM that is either running or stopped.');
  if (!volume.poolReserved) {
    const pool = await rootPoolOf(vm);
    if (pool) volume = await place(volume, pool, { busy: token, poolReserved: undefined }, { placedBy: token });
    else if (vm.state === 'Running') throw new ResourceUnavailable(`Failed to find a primary storage for volume in state: ${volume.state}`);
  }
  if (vm.state === 'Stopped') return { send: false };
  const host = await hostOf(vm);
  return command(jobId, host, 'attachDisk', {
    host: targetOf(host),
    vmName: vm.instanceName,
    disk: { path: volume.path, sizeBytes: volume.sizeBytes, deviceId },
  });
}

async function commitAttach(volumeId: string, token: string | undefined, who: VolumeViewer) {
  const volume = await current(volumeId);
  if (volume.busy !== token) {
    if (volume.vmId && !volume.busy) return render(volume, who);
    throw new InvalidParameter(`Volume ${volume.name} (${volume.id}) changed meanwhile; try again`);
  }
  const attached = await updateVolumeIf(volume.id, { busy: token }, {
    vmId: volume.pendingVmId as string,
    deviceId: Number(volume.pendingDeviceId),
    attached: cloudstackDate(),
    busy: undefined,
    pendingVmId: undefined,
    pendingDeviceId: undefined,
    placedBy: undefined,
  });
  if (!attached) throw new InvalidParameter(`Volume ${volume.name} (${volume.id}) changed meanwhile; try again`);
  return render(attached, who);
}

/** The attach failed: a placement this attach made is undone (its pool bytes back), and the volume stays detached. */
async function abortAttach(volumeId: string, token: string | undefined) {
  const volume = await getVolume(volumeId);
  if (!volume || !token || volume.busy !== token) return { aborted: false };
  const unplace = volume.placedBy === token && Boolean(volume.poolReserved);
  const released = await updateVolumeIf(volume.id, { busy: token }, {
    busy: undefined,
    pendingVmId: undefined,
    pendingDeviceId: undefined,
    placedBy: undefined,
    ...(unplace && { poolId: '', path: '', poolReserved: undefined, state: 'Allocated' as const }),
  });
  if (released && unplace) await releasePoolBytes(volume.poolId, volume.sizeBytes).catch(() => undefined);
  return { aborted: Boolean(released) };
}

// ---- detach ----

async function prepareDetach(jobId: string, volumeId: string, token: string | undefined): Promise<Prepared> {
  const volume = await held(volumeId, token);
  const vm = await vmOf(volume.vmId);
  if (vm.state === 'Stopped' || vm.state === 'Destroyed' || vm.state === 'Error' || !volume.poolReserved) return { send: false };
  if (vm.state !== 'Running') throw new InvalidParameter('Please specify a VM that is either running or stopped.');
  const host = await hostOf(vm);
  return command(jobId, host, 'detachDisk', { host: targetOf(host), vmName: vm.instanceName, path: volume.path, waitSeconds: DETACH_WAIT_SECONDS }, DETACH_WAIT_SECONDS);
}

async function commitDetach(volumeId: string, token: string | undefined, who: VolumeViewer) {
  const volume = await current(volumeId);
  if (volume.busy !== token) {
    if (!volume.vmId && !volume.busy) return render(volume, who);
    throw new InvalidParameter(`Volume ${volume.name} (${volume.id}) changed meanwhile; try again`);
  }
  const detached = await updateVolumeIf(volume.id, { busy: token }, { vmId: undefined, deviceId: undefined, attached: undefined, busy: undefined });
  if (!detached) throw new InvalidParameter(`Volume ${volume.name} (${volume.id}) changed meanwhile; try again`);
  return render(detached, who);
}

const letGo = async (volumeId: string, token: string | undefined, changes: Partial<Volume> = {}) =>
  token ? updateVolumeIf(volumeId, { busy: token }, { busy: undefined, ...changes }) : undefined;

async function abortDetach(volumeId: string, token: string | undefined) {
  return { aborted: Boolean(await letGo(volumeId, token)) };
}

// ---- resize ----

async function prepareResize(jobId: string, volumeId: string, token: string | undefined): Promise<Prepared> {
  let volume = await held(volumeId, token);
  if (!volume.poolReserved) return { send: false };
  const newSize = Number(volume.pendingSize);
  const pool = await getStoragePool(volume.poolId);
  if (!pool) throw new ResourceUnavailable(`The primary storage pool ${volume.poolId} of volume ${volume.name} no longer exists`);
  const growth = newSize - volume.sizeBytes;
  if (growth > 0 && volume.poolDelta === undefined) {
    try {
      await reservePoolBytes(pool.id, growth);
    } catch (error) {
      if (error instanceof PoolFull) throw new InsufficientCapacity(`Storage pool ${pool.name} does not have enough space to resize volume ${volume.name}`);
      throw error;
    }
    const recorded = await updateVolumeIf(volume.id, { busy: token }, { poolDelta: growth });
    if (!recorded) {
      await releasePoolBytes(pool.id, growth).catch(() => undefined);
      throw new InvalidParameter(`Volume ${volume.name} (${volume.id}) changed meanwhile; try again`);
    }
    volume = recorded;
  }
  // A running VM's disk through its host (blockresize); anything else through a host of the pool.
  const vm = volume.vmId ? await getVmConsistent(volume.vmId) : undefined;
  if (vm?.state === 'Running') {
    if (!vm.hostId) throw new InvalidParameter(`Cannot find the hostId of running vm ${vm.id}`);
    const host = await getHost(vm.hostId);
    if (!host) throw new InvalidParameter('The KVM host where vm is running does not exist');
    if (host.status !== 'Up') throw new InvalidParameter('The KVM host where vm is running is not Up');
    if (host.resourcestate !== 'Enabled') throw new InvalidParameter('The KVM host where vm is running is not Enabled');
    return command(jobId, host, 'resizeDisk', { host: targetOf(host), path: volume.path, sizeBytes: newSize, vmName: vm.instanceName, shrinkOk: Boolean(volume.shrinkOk) });
  }
  if (vm && vm.state !== 'Stopped' && vm.state !== 'Destroyed' && vm.state !== 'Error') {
    throw new InvalidParameter(`Volume ${volume.name} cannot be resized while its VM ${vm.instanceName} is ${vm.state}`);
  }
  const host = await hostReaching(pool);
  if (!host) throw new ResourceUnavailable(`No Up host with an agent reaches primary storage pool ${pool.name} (${pool.id}) to resize volume ${volume.name}; try again when one is Up`);
  return command(jobId, host, 'resizeDisk', { host: targetOf(host), path: volume.path, sizeBytes: newSize, shrinkOk: Boolean(volume.shrinkOk) });
}

async function commitResize(volumeId: string, token: string | undefined, who: VolumeViewer) {
  const volume = await current(volumeId);
  if (volume.busy !== token) {
    if (!volume.busy) return render(volume, who);
    throw new InvalidParameter(`Volume ${volume.name} (${volume.id}) changed meanwhile; try again`);
  }
  const newSize = Number(volume.pendingSize);
  const shrink = Math.max(0, volume.sizeBytes - newSize);
  const resized = await updateVolumeIf(volume.id, { busy: token }, { sizeBytes: newSize, busy: undefined, pendingSize: undefined, limitDelta: undefined, poolDelta: undefined, shrinkOk: undefined });
  if (!resized) throw new InvalidParameter(`Volume ${volume.name} (${volume.id}) changed meanwhile; try again`);
  // A smaller disk gives its bytes back (the limit's and the pool's); a bigger one took them before.
  if (shrink > 0) {
    if (volume.poolReserved) await releasePoolBytes(volume.poolId, shrink).catch(() => undefined);
    if (volume.state !== 'Destroy') await releaseResources(volume.accountId, { primary_storage: shrink });
  }
  return render(resized, who);
}

async function abortResize(volumeId: string, token: string | undefined) {
  const volume = await getVolume(volumeId);
  if (!volume || !token || volume.busy !== token) return { aborted: false };
  const released = await letGo(volumeId, token, { pendingSize: undefined, limitDelta: undefined, poolDelta: undefined, shrinkOk: undefined });
  if (!released) return { aborted: false };
  if (typeof volume.poolDelta === 'number' && volume.poolDelta > 0) await releasePoolBytes(volume.poolId, volume.poolDelta).catch(() => undefined);
  if (typeof volume.limitDelta === 'number' && volume.limitDelta > 0) await releaseResources(volume.accountId, { primary_storage: volume.limitDelta });
  return { aborted: true };
}

// ---- delete (the file, after deleteVolume answered) ----

async function prepareDelete(jobId: string, volumeId: string, token: string | undefined): Promise<Prepared> {
  const volume = await getVolume(volumeId);
  if (!volume) return { send: false };
  if (!token || volume.busy !== token) throw new InvalidParameter(`Volume ${volume.name} (${volume.id}) changed meanwhile`);
  if (!volume.poolReserved) return { send: false };
  const pool = await getStoragePool(volume.poolId);
  if (!pool) return { send: false };
  const host = await hostReaching(pool);
  if (!host) throw new ResourceUnavailable(`No Up host with an agent reaches primary storage pool ${pool.name} (${pool.id}) to delete volume ${volume.name}; try again when one is Up`);
  return command(jobId, host, 'deleteDisk', { host: targetOf(host), path: volume.path });
}

async function commitDelete(volumeId: string, token: string | undefined) {
  const volume = await getVolume(volumeId);
  if (!volume) return { success: true };
  if (!token || volume.busy !== token) throw new InvalidParameter(`Volume ${volume.name} (${volume.id}) changed meanwhile`);
  const gone = await updateVolumeIf(volume.id, { busy: token }, { state: 'Expunged', poolReserved: undefined });
  if (!gone) throw new InvalidParameter(`Volume ${volume.name} (${volume.id}) changed meanwhile`);
  if (volume.poolReserved) await releasePoolBytes(volume.poolId, volume.sizeBytes).catch(() => undefined);
  await deleteVolumeRecord(volume.id);
  return { success: true };
}

/** The host could not remove the file: the volume is back as it was (Ready, counted again). */
async function abortDelete(volumeId: string, token: string | undefined) {
  const volume = await getVolume(volumeId);
  if (!volume || !token || volume.busy !== token) return { aborted: false };
  const back = await letGo(volumeId, token, { state: 'Ready', deleting: undefined });
  if (back) await incrementResources(volume.accountId, volumeResources(volume));
  return { aborted: Boolean(back) };
}

// ---- dispatch ----

export async function runVolumeTask(task: VolumeTask): Promise<unknown> {
  const { jobId, volumeId, token } = task;
  const who = task.viewer;
  switch (task.step) {
    case 'render':
      return render(await current(volumeId), who);
    case 'prepareAttach':
      return prepareAttach(jobId, volumeId, token);
    case 'commitAttach':
      if (task.result !== undefined && !agentCommands.attachDisk.result.safeParse(task.result).success) throw new InternalError('The agent answered attachDisk with a result Mold cannot read');
      return commitAttach(volumeId, token, who);
    case 'abortAttach':
      return abortAttach(volumeId, token);
    case 'prepareDetach':
      return prepareDetach(jobId, volumeId, token);
    case 'commitDetach':
      return commitDetach(volumeId, token, who);
    case 'abortDetach':
      return abortDetach(volumeId, token);
    case 'prepareResize':
      return prepareResize(jobId, volumeId, token);
    case 'commitResize':
      return commitResize(volumeId, token, who);
    case 'abortResize':
      return abortResize(volumeId, token);
    case 'prepareDelete':
      return prepareDelete(jobId, volumeId, token);
    case 'commitDelete':
      return commitDelete(volumeId, token);
    case 'abortDelete':
      return abortDelete(volumeId, token);
  }
}
