// Task steps of statemachines/vm-migrate.asl.json (migrateVirtualMachine, and each VM of a host's
// maintenance). The order of the books: Plan marks the VM Migrating and, in one transaction with that
// record, reserves the target's capacity; the agent moves the domain; Commit records the VM on the
// target and only then gives the source's capacity back; Release (any failure) puts the VM back to
// Running on its source and then gives the target's reservation back. Each step is safe to repeat.
//
// With storage motion (migrateVirtualMachineWithVolume: `volumes` maps volume ids to pools), Plan also
// reserves each target pool's bytes in that one transaction and records the moves on the VM
// (`migrateStorage`); the agent copies the disks while the guest runs; Commit points each volume at
// its new pool and gives the source pool its bytes back (one transaction per volume), and the old
// files are removed from the source pool afterwards (a leftover is a WARN event, not a failure);
// Release gives the target pools their bytes back.
import { z } from 'zod';
import { agentCommands } from '../../shared/agent/protocol.ts';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../../shared/aws.ts';
import { InsufficientCapacity, InternalError, InvalidParameter } from '../../shared/cloudstack/errors.ts';
import { planAndReserve, releaseHostCapacity, type CoupledWrite } from '../../shared/db/capacity.ts';
import { recordEvent } from '../../shared/db/events.ts';
import { getHost, listHostRecords, type Host } from '../../shared/db/hosts.ts';
import { isConditionFailure, tableName } from '../../shared/db/items.ts';
import { getJob } from '../../shared/db/jobs.ts';
import { getServiceOffering } from '../../shared/db/offerings.ts';
import { getStoragePool, overprovisioningFactor, releasePoolBytes, releasePoolItem, reservePoolItem, type StoragePool } from '../../shared/db/storage.ts';
import { getVmConsistent, getVolume, getVolumeConsistent, listVolumesOfVm, transitionVm, updateVolumeIf, vmKey, volumeKey, type VirtualMachine } from '../../shared/db/vms.ts';
import { log } from '../../shared/log.ts';
import { poolReachable } from '../../shared/placement.ts';
import { loadSettings } from '../../shared/settings.ts';
import { renderVmFor } from '../api/commands/vms-list.ts';
import { NO_SERVER_TEXT, NOT_RUNNING_TEXT } from '../api/commands/vms-migrate.ts';
import { targetOf } from './agent-commands.ts';
import { stepFunctionsError } from './jobs.ts';
import { command, configDrivePath, type Prepared } from './vms.ts';
import { volumePath } from './volumes.ts';

export const MIGRATE_STEPS = ['planMigrate', 'commitMigrate', 'releaseMigrate', 'noteLeftover'] as const;

const viewer = z.object({ rootAdmin: z.boolean(), admin: z.boolean() }).default({ rootAdmin: true, admin: true });

export const vmMigrateActions = [
  z.object({
    action: z.literal('vmMigrateTask'),
    step: z.enum(MIGRATE_STEPS),
    jobId: z.string(),
    vmId: z.string(),
    /** The root admin's hostid; absent: the planner picks. */
    hostId: z.string().nullish(),
    /** migrateVirtualMachineWithVolume: volume id → the pool it moves to (checked by the command). */
    volumes: z.record(z.string(), z.string()).nullish(),
    viewer,
    result: z.unknown().optional(),
    error: stepFunctionsError.optional(),
  }),
] as const;
export type VmMigrateTask = z.infer<(typeof vmMigrateActions)[number]>;


/** How long a live migration may take on the host before it is cancelled. */
export const MIGRATION_SECONDS = 600;

async function currentVm(vmId: string): Promise<VirtualMachine> {
  const vm = await getVmConsistent(vmId);
  if (!vm) throw new InvalidParameter(`Unable to find the VM by id=${vmId}`);
  return vm;
}

async function hostById(id: string | undefined, what: string): Promise<Host> {
  const host = id ? await getHost(id) : undefined;
  if (!host) throw new InvalidParameter(`Cannot migrate VM, ${what} with id: ${id ?? 'none'} not found`);
  return host;
}

/** One volume's move with its VM: the pools, the files, the bytes. */
export interface VolumeMove {
  volumeId: string;
  from: string;
  to: string;
  fromPath: string;
  toPath: string;
  sizeBytes: number;
}

/** What a migration with storage moves, recorded on the VM with its target (`migrateStorage`). */
export interface StorageMotion {
  volumes: VolumeMove[];
  /** Files copied as they are (the config drive beside a moved root disk). */
  files: { from: string; to: string }[];
}

const storageOf = (vm: VirtualMachine) => vm.migrateStorage as StorageMotion | undefined;

/** The VM's record of its target (and of its storage's moves), written only with the target's reservation. */
const recordTarget = (vm: VirtualMachine, jobId: string, motion?: StorageMotion): CoupledWrite => ({
  item: (host: { id: string }) => ({
    Update: {
      TableName: tableName(),
      Key: vmKey(vm.id),
      UpdateExpression: motion ? 'SET migrateToHostId = :to, migrateStorage = :storage' : 'SET migrateToHostId = :to',
      ConditionExpression: '#state = :migrating AND migrateJobId = :job AND attribute_not_exists(migrateToHostId)',
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: { ':to': host.id, ':migrating': 'Migrating', ':job': jobId, ...(motion && { ':storage': motion }) },
    },
  }),
  abort: () => new InvalidParameter(`The virtual machine ${vm.id} changed state while its migration was being planned`),
});

async function poolById(id: string): Promise<StoragePool> {
  const pool = await getStoragePool(id);
  if (!pool) throw new InvalidParameter(`There is no storage pool present with the given id ${id}`);
  return pool;
}

/**
 * The moves of a migration with storage, from the volume → pool map the command checked: the
 * volumes named (not already there), the config drive with a moved root disk, each target pool's
 * reservation (one transaction item per pool, with the host's), and the pools the VM will use.
 */
async function planStorage(vm: VirtualMachine, volumes: Record<string, string>) {
  const motion: StorageMotion = { volumes: [], files: [] };
  const finalPools = new Map<string, StoragePool>();
  for (const volume of (await listVolumesOfVm(vm.id)).filter((v) => v.vmId === vm.id && v.state === 'Ready')) {
    const from = await poolById(volume.poolId);
    const to = volumes[volume.id] && volumes[volume.id] !== volume.poolId ? await poolById(volumes[volume.id]!) : from;
    finalPools.set(volume.id, to);
    if (to === from) continue;
    motion.volumes.push({ volumeId: volume.id, from: from.id, to: to.id, fromPath: volume.path, toPath: volumePath(to, volume.id), sizeBytes: volume.sizeBytes });
    if (volume.id === vm.rootVolumeId) motion.files.push({ from: configDrivePath(from, vm.id), to: configDrivePath(to, vm.id) });
  }
  if (motion.volumes.length === 0) throw new InvalidParameter(`Migration of the VM: ${vm.instanceName} (ID: ${vm.id}) doesn't involve migrating the volumes`);
  const bytes = new Map<string, number>();
  for (const move of motion.volumes) bytes.set(move.to, (bytes.get(move.to) ?? 0) + move.sizeBytes);
  const reservations: CoupledWrite[] = [];
  for (const [poolId, size] of bytes) {
    const pool = await poolById(poolId);
    const factor = await overprovisioningFactor(pool);
    reservations.push({ item: () => reservePoolItem(pool, size, factor), abort: () => new InsufficientCapacity(`Storage pool ${pool.name} does not have enough space to migrate the volumes of VM ${vm.instanceName}`) });
  }
  return { motion, reservations, pools: [...finalPools.values()], rootPool: finalPools.get(vm.rootVolumeId) };
}

/**
 * Running → Migrating (this job's), then the target: the root admin's host, or the planner's pick
 * (not the source; capacity, host tags, affinity, the root volume's pool reachable), reserved in
 * one transaction with the VM's record of it. A retry finds its own record and rebuilds the command.
 */
async function planMigrate(jobId: string, vmId: string, hostId: string | null | undefined, volumes: Record<string, string> | null | undefined): Promise<Prepared> {
  let vm = await currentVm(vmId);
  if (vm.state !== 'Migrating' || vm.migrateJobId !== jobId) {
    if (vm.state !== 'Running') throw new InvalidParameter(NOT_RUNNING_TEXT);
    const claimed = await transitionVm(vm.id, ['Running'], 'Migrating', { migrateJobId: jobId }, vm.hostId ? { hostId: vm.hostId } : undefined);
    if (!claimed) throw new InvalidParameter(NOT_RUNNING_TEXT);
    vm = claimed;
  }
  const source = await hostById(vm.hostId, 'host');
  if (!vm.migrateToHostId) {
    const [offering, volume, settings] = await Promise.all([getServiceOffering(vm.serviceOfferingId), getVolume(vm.rootVolumeId), loadSettings()]);
    const target = hostId ? await hostById(hostId, 'destination host') : undefined;
    const storage = volumes ? await planStorage(vm, volumes) : undefined;
    // With storage motion the target must reach every pool the VM's volumes end up on.
    const unreachable = storage
      ? (await listHostRecords({ zoneId: vm.zoneId })).filter((h) => storage.pools.some((p) => !poolReachable(p, h))).map((h) => h.id)
      : [];
    const noServer = storage ? `Unable to find suitable destination to migrate VM ${vm.instanceName}` : NO_SERVER_TEXT;
    try {
      await planAndReserve({
        vm,
        jobId,
        hostTags: offering?.hosttags,
        poolId: storage?.rootPool?.id ?? volume?.poolId,
        ...(hostId && { hostId }),
        avoidHostIds: [source.id, ...unreachable],
        // A host emptied for maintenance may move its VMs within its cluster while rolling maintenance has disabled it.
        ...(source.resourcestate === 'PrepareForMaintenance' && { evacuatingClusterId: source.clusterId }),
        settings,
        noHostText: target ? `Unable to migrate VM ${vm.instanceName} to host ${target.name}: the host does not have enough free CPU or memory, or does not suit the VM` : NO_SERVER_TEXT,
        coupled: [recordTarget(vm, jobId, storage?.motion), ...(storage?.reservations ?? [])],
      });
    } catch (error) {
      // Autoselect: upstream's CloudRuntimeException (530) rather than a capacity error.
      if (error instanceof InsufficientCapacity && !target && !/^Storage pool /.test(error.message)) throw new InternalError(noServer);
      throw error;
    }
    vm = await currentVm(vmId);
  }
  const target = await hostById(vm.migrateToHostId, 'destination host');
  if (target.agentId !== source.agentId) {
    throw new InvalidParameter(`Cannot migrate VM, hosts ${source.name} and ${target.name} are driven by different agents; live migration needs one agent for both`);
  }
  const vlans = [...new Set(vm.nics.flatMap((nic) => (typeof nic.vlan === 'number' ? [nic.vlan] : [])))];
  return command(
    jobId,
    source,
    'migrateVm',
    {
      host: targetOf(source),
      target: targetOf(target),
      name: vm.instanceName,
      vncListen: target.ipaddress,
      vlans,
      timeoutSeconds: MIGRATION_SECONDS,
      storage: storageMoves(storageOf(vm)),
    },
    MIGRATION_SECONDS,
  );
}

/** The agent's storage moves: the disks qemu mirrors, and the config drive copied as it is. */
const storageMoves = (motion: StorageMotion | undefined) => [
  ...(motion?.volumes ?? []).map((m) => ({ from: m.fromPath, to: m.toPath, copy: 'mirror' as const })),
  ...(motion?.files ?? []).map((f) => ({ ...f, copy: 'file' as const })),
];

/**
 * The volume now lives on its new pool: its record moves, and the source pool's bytes go back, in one
 * transaction conditional on the record still naming the source (a repeated Commit finds it moved).
 */
async function moveVolumeRecord(vmId: string, move: VolumeMove): Promise<void> {
  const { Update: release } = releasePoolItem(move.from, move.sizeBytes);
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Update: {
              TableName: tableName(),
              Key: volumeKey(move.volumeId),
              UpdateExpression: 'SET poolId = :to, #path = :path',
              ConditionExpression: 'poolId = :from AND vmId = :vm',
              ExpressionAttributeNames: { '#path': 'path' },
              ExpressionAttributeValues: { ':to': move.to, ':path': move.toPath, ':from': move.from, ':vm': vmId },
            },
          },
          { Update: release },
        ],
      }),
    );
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    const volume = await getVolumeConsistent(move.volumeId);
    if (volume?.poolId === move.to) return; // moved already
    if (volume?.poolId !== move.from) throw new InternalError(`Volume ${move.volumeId} could not be recorded on storage pool ${move.to} after the migration: it changed meanwhile`);
    // The source pool's books hold less than the volume (they were off before): the disk runs from its
    // new file now, so the record moves all the same, and the pool gives back what it has.
    log.warn('source pool holds fewer bytes than the volume it gives back', { volumeId: move.volumeId, poolId: move.from, bytes: move.sizeBytes });
    const moved = await updateVolumeIf(move.volumeId, { poolId: move.from, vmId }, { poolId: move.to, path: move.toPath });
    if (!moved) throw new InternalError(`Volume ${move.volumeId} could not be recorded on storage pool ${move.to} after the migration: it changed meanwhile`);
    const pool = await getStoragePool(move.from);
    if (pool && pool.disksizeallocated > 0) await releasePoolBytes(move.from, Math.min(pool.disksizeallocated, move.sizeBytes)).catch(() => undefined);
  }
}

/**
 * The domain runs on the target: its volumes are recorded on their new pools, the VM on the target,
 * then the source's capacity goes back; what the volumes left on the source pools is to be removed
 * (by the source host, which mounts them).
 */
async function commitMigrate(jobId: string, vmId: string, result: unknown, who: z.infer<typeof viewer>) {
  const parsed = agentCommands.migrateVm.result.safeParse(result);
  if (!parsed.success) throw new InternalError(`The agent answered migrateVm with a result Mold cannot read: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
  const vm = await currentVm(vmId);
  const nothing: Prepared = { send: false };
  if (vm.state !== 'Migrating' || !vm.migrateToHostId) return { response: { virtualmachine: await renderVmFor(vm, who) }, cleanup: nothing };
  const target = await hostById(vm.migrateToHostId, 'destination host');
  const motion = storageOf(vm);
  for (const move of motion?.volumes ?? []) await moveVolumeRecord(vm.id, move);
  const moved = await transitionVm(
    vm.id,
    ['Migrating'],
    'Running',
    {
      hostId: target.id,
      lastHostId: target.id,
      podId: target.podId,
      clusterId: target.clusterId,
      migrateToHostId: undefined,
      migrateJobId: undefined,
      migrateStorage: undefined,
      ...(parsed.data.vncPort !== undefined && { vncPort: parsed.data.vncPort }),
    },
    { migrateToHostId: target.id },
  );
  if (!moved) throw new InvalidParameter(`The virtual machine ${vm.id} changed state during its migration`);
  if (vm.hostId) await releaseHostCapacity(vm.hostId, vm);
  const response = { virtualmachine: await renderVmFor(moved, who) };
  const leftovers = [...(motion?.volumes ?? []).map((m) => m.fromPath), ...(motion?.files ?? []).map((f) => f.from)];
  const source = leftovers.length > 0 && vm.hostId ? await getHost(vm.hostId) : undefined;
  const cleanup = source ? await command(jobId, source, 'removeFiles', { host: targetOf(source), paths: leftovers }).catch(() => nothing) : nothing;
  return { response, cleanup };
}

/** The VM moved but what its volumes left on their former pools could not be removed: a WARN event names it; the job still succeeds. */
async function noteLeftover(jobId: string, vmId: string, error: unknown) {
  const job = await getJob(jobId);
  const cause = (error as { Cause?: string } | undefined)?.Cause ?? 'the host did not answer';
  if (job?.actor) {
    await recordEvent(job.actor, {
      type: 'VM.MIGRATE',
      level: 'WARN',
      description: `VM ${vmId} was migrated with its volumes, but what they left on their former storage pools could not be removed: ${cause}`,
      resourceId: vmId,
      resourceType: 'VirtualMachine',
    });
  }
  return { noted: true };
}

/** Any failure: Running on the source again, then the target's reservation back. */
async function releaseMigrate(jobId: string, vmId: string) {
  const vm = await getVmConsistent(vmId);
  if (!vm || vm.state !== 'Migrating' || vm.migrateJobId !== jobId) return { released: false };
  const back = await transitionVm(
    vm.id,
    ['Migrating'],
    'Running',
    { migrateToHostId: undefined, migrateJobId: undefined, migrateStorage: undefined },
    vm.migrateToHostId ? { migrateToHostId: vm.migrateToHostId } : undefined,
  );
  if (!back) return { released: false };
  if (vm.migrateToHostId) await releaseHostCapacity(vm.migrateToHostId, vm);
  // The target pools' bytes (reserved with the host, so only when a target was recorded).
  const bytes = new Map<string, number>();
  for (const move of storageOf(vm)?.volumes ?? []) bytes.set(move.to, (bytes.get(move.to) ?? 0) + move.sizeBytes);
  for (const [poolId, size] of bytes) await releasePoolBytes(poolId, size).catch(() => undefined);
  return { released: true };
}

export async function runVmMigrateTask(task: VmMigrateTask): Promise<unknown> {
  switch (task.step) {
    case 'planMigrate':
      return planMigrate(task.jobId, task.vmId, task.hostId, task.volumes);
    case 'commitMigrate':
      return commitMigrate(task.jobId, task.vmId, task.result, task.viewer);
    case 'releaseMigrate':
      return releaseMigrate(task.jobId, task.vmId);
    case 'noteLeftover':
      return noteLeftover(task.jobId, task.vmId, task.error);
  }
}
