// Task steps of statemachines/volume-migrate.asl.json (migrateVolume: a detached volume, or one of a
// stopped VM, to another primary storage pool). The command claimed the volume (`busy` = the job's
// token, `migrateTo` = the target pool) and, for an attached volume, moved its VM Stopped → Migrating
// (upstream's StorageMigrationRequested) with `migratingVolume` = the token, so nothing starts the VM
// or touches the volume meanwhile.
//
// Prepare reserves the volume's bytes on the target pool (a conditional write; recorded on the volume
// as `migrateReserved`) and sends copyDisk to a host that mounts both pools. Commit moves the record
// (pool and path), gives the source pool its bytes back, returns the VM to Stopped and lets the volume
// go; then removeFiles deletes the source file (and a root disk's config drive, rebuilt on the target
// pool at the next start). Abort, on any failure before Commit, gives back the target's bytes, the VM
// and the volume, and has the host remove a copy it may have written: the volume stays where it was.
import { z } from 'zod';
import { InsufficientCapacity, InvalidParameter, ResourceUnavailable } from '../../shared/cloudstack/errors.ts';
import { getAgent } from '../../shared/db/agents.ts';
import { recordEvent } from '../../shared/db/events.ts';
import { getHost, listHostRecords, type Host } from '../../shared/db/hosts.ts';
import { getJob } from '../../shared/db/jobs.ts';
import { getStoragePool, PoolFull, PoolStateConflict, releasePoolBytes, reservePoolBytes, type StoragePool } from '../../shared/db/storage.ts';
import { getVmConsistent, getVolumeConsistent, transitionVm, updateVolumeIf, type VirtualMachine, type Volume } from '../../shared/db/vms.ts';
import { renderVolumeFor } from '../api/commands/volumes.ts';
import { targetOf } from './agent-commands.ts';
import { stepFunctionsError } from './jobs.ts';
import { command, configDrivePath, type Prepared } from './vms.ts';
import { volumePath } from './volumes.ts';

export const VOLUME_MIGRATE_STEPS = ['prepareMigrate', 'commitMigrate', 'abortMigrate', 'noteLeftover'] as const;

export const volumeMigrateActions = [
  z.object({
    action: z.literal('volumeMigrateTask'),
    step: z.enum(VOLUME_MIGRATE_STEPS),
    jobId: z.string(),
    volumeId: z.string(),
    token: z.string(),
    viewer: z.object({ rootAdmin: z.boolean(), admin: z.boolean() }).default({ rootAdmin: false, admin: false }),
    error: stepFunctionsError.optional(),
  }),
] as const;
export type VolumeMigrateTask = z.infer<(typeof volumeMigrateActions)[number]>;

/** How long a copy may take beyond agent.command.timeout (heartbeats show it is alive meanwhile). */
const COPY_SECONDS = 3600;
/** File pools: a host mounts them at their path, and a volume is a qcow2 file there. */
const FILE_POOL_TYPES = new Set(['NetworkFilesystem', 'SharedMountPoint']);

export const isFilePool = (pool: Pick<StoragePool, 'type'>) => FILE_POOL_TYPES.has(pool.type);

const reaches = (host: Host, pool: StoragePool) => pool.scope === 'ZONE' || host.clusterId === pool.clusterId;

/**
 * An Up host of an Enabled agent that mounts both pools: the VM's last host when it does (its pools
 * are mounted there for sure), else the first such host of the zone.
 */
export async function hostReachingBoth(source: StoragePool, target: StoragePool, preferred?: string): Promise<Host | undefined> {
  const hosts = (await listHostRecords({ zoneId: source.zoneId })).filter((h) => h.status === 'Up' && h.agentId && reaches(h, source) && reaches(h, target));
  hosts.sort((a, b) => Number(b.id === preferred) - Number(a.id === preferred));
  for (const host of hosts) {
    const agent = await getAgent(host.agentId!);
    if (agent?.state === 'Enabled') return host;
  }
  return undefined;
}

const changed = (volume: Pick<Volume, 'id' | 'name'>) => new InvalidParameter(`Volume ${volume.name} (${volume.id}) changed meanwhile; try again`);

async function held(volumeId: string, token: string): Promise<Volume> {
  const volume = await getVolumeConsistent(volumeId);
  if (!volume) throw new InvalidParameter(`Unable to find volume with ID: ${volumeId}: it was removed meanwhile`);
  if (volume.busy !== token) throw changed(volume);
  return volume;
}

async function pool(id: string, role: string): Promise<StoragePool> {
  const found = await getStoragePool(id);
  if (!found) throw new ResourceUnavailable(`The ${role} storage pool ${id} no longer exists`);
  return found;
}

async function vmOf(volume: Volume): Promise<VirtualMachine | undefined> {
  return volume.vmId ? getVmConsistent(volume.vmId) : undefined;
}

// ---- prepare: reserve on the target, copy ----

async function prepareMigrate(jobId: string, volumeId: string, token: string): Promise<Prepared> {
  let volume = await held(volumeId, token);
  const [source, target] = [await pool(volume.poolId, 'source'), await pool(String(volume.migrateTo), 'target')];
  if (!volume.migrateReserved) {
    try {
      await reservePoolBytes(target.id, volume.sizeBytes);
    } catch (error) {
      if (error instanceof PoolFull) throw new InsufficientCapacity(`Storage pool ${target.name} does not have enough space to migrate volume ${volume.name}`);
      if (error instanceof PoolStateConflict) throw new ResourceUnavailable(`Storage pool ${target.name} is ${error.state}: it takes no volume`);
      throw error;
    }
    const recorded = await updateVolumeIf(volume.id, { busy: token, migrateReserved: undefined }, { migrateReserved: true });
    if (!recorded) {
      await releasePoolBytes(target.id, volume.sizeBytes).catch(() => undefined);
      throw changed(volume);
    }
    volume = recorded;
  }
  const vm = await vmOf(volume);
  const host = await hostReachingBoth(source, target, vm?.lastHostId);
  if (!host) throw new ResourceUnavailable(`No Up host with an agent mounts both storage pool ${source.name} and ${target.name} to copy volume ${volume.name}; try again when one is Up`);
  if (volume.migrateHostId !== host.id) {
    const recorded = await updateVolumeIf(volume.id, { busy: token }, { migrateHostId: host.id });
    if (!recorded) throw changed(volume);
  }
  return command(
    jobId,
    host,
    'copyDisk',
    { host: targetOf(host), source: volume.path, destination: volumePath(target, volume.id), timeoutSeconds: COPY_SECONDS },
    COPY_SECONDS,
  );
}

// ---- commit: the record moves, the source pool's bytes go back, then the leftovers go ----

async function commitMigrate(jobId: string, volumeId: string, token: string, viewer: { rootAdmin: boolean; admin: boolean }) {
  let volume = await held(volumeId, token);
  const sourceId = String(volume.migrateFrom ?? volume.poolId);
  const target = await pool(String(volume.migrateTo), 'target');
  const source = await getStoragePool(sourceId);
  const leftovers: string[] = [];
  // Step 1 (once): the volume is on the target; where it was is remembered for the clean-up.
  if (volume.poolId !== target.id) {
    const moved = await updateVolumeIf(volume.id, { busy: token, poolId: volume.poolId }, {
      poolId: target.id,
      path: volumePath(target, volume.id),
      migrateFrom: volume.poolId,
      migrateFromPath: volume.path,
      migrateReserved: undefined,
    });
    if (!moved) throw changed(volume);
    volume = moved;
  }
  // Step 2 (once): the source pool's bytes go back; flagged first, so a retried step never gives twice.
  if (!volume.sourceReleased) {
    const flagged = await updateVolumeIf(volume.id, { busy: token, sourceReleased: undefined }, { sourceReleased: true });
    if (!flagged) throw changed(volume);
    volume = flagged;
    await releasePoolBytes(sourceId, volume.sizeBytes).catch(() => undefined);
  }
  leftovers.push(String(volume.migrateFromPath));
  const vm = await vmOf(volume);
  if (vm && volume.type === 'ROOT' && source) leftovers.push(configDrivePath(source, vm.id));
  // Step 3: the VM may start again; then the volume is free.
  if (vm?.state === 'Migrating' && vm.migratingVolume === token) await transitionVm(vm.id, ['Migrating'], 'Stopped', { migratingVolume: undefined }, { migratingVolume: token });
  const host = typeof volume.migrateHostId === 'string' ? await getHost(volume.migrateHostId) : undefined;
  const free = await updateVolumeIf(volume.id, { busy: token }, {
    busy: undefined,
    migrateTo: undefined,
    migrateFrom: undefined,
    migrateFromPath: undefined,
    migrateHostId: undefined,
    sourceReleased: undefined,
  });
  if (!free) throw changed(volume);
  const response = { volume: await renderVolumeFor(free, viewer) };
  // The files left on the source: removed by the host that copied them, when it can still be asked.
  let cleanup: Prepared = { send: false };
  if (host) cleanup = await command(jobId, host, 'removeFiles', { host: targetOf(host), paths: leftovers }).catch(() => ({ send: false }));
  return { response, cleanup, leftovers };
}

// ---- abort: everything back, the copy removed ----

async function abortMigrate(jobId: string, volumeId: string, token: string, viewer: { rootAdmin: boolean; admin: boolean }): Promise<{ aborted: boolean; cleanup: Prepared }> {
  const volume = await getVolumeConsistent(volumeId);
  if (!volume || volume.busy !== token) return { aborted: false, cleanup: { send: false } };
  // Commit failed after the record moved: the copy is the volume now, so the move is finished instead.
  if (volume.migrateFrom) return { aborted: false, cleanup: (await commitMigrate(jobId, volumeId, token, viewer)).cleanup };
  const target = typeof volume.migrateTo === 'string' ? await getStoragePool(volume.migrateTo) : undefined;
  const vm = await vmOf(volume);
  if (vm?.state === 'Migrating' && vm.migratingVolume === token) await transitionVm(vm.id, ['Migrating'], 'Stopped', { migratingVolume: undefined }, { migratingVolume: token });
  const released = await updateVolumeIf(volume.id, { busy: token }, { busy: undefined, migrateTo: undefined, migrateReserved: undefined, migrateHostId: undefined });
  if (!released) return { aborted: false, cleanup: { send: false } };
  if (volume.migrateReserved && target) await releasePoolBytes(target.id, volume.sizeBytes).catch(() => undefined);
  // A copy may have been written (or half-written) on the target: the host that made it removes it.
  const host = typeof volume.migrateHostId === 'string' ? await getHost(volume.migrateHostId) : undefined;
  let cleanup: Prepared = { send: false };
  if (host && target) cleanup = await command(jobId, host, 'removeFiles', { host: targetOf(host), paths: [volumePath(target, volume.id)] }).catch(() => ({ send: false }));
  return { aborted: true, cleanup };
}

/** The move succeeded but its leftovers could not be removed: said in an event (the job's actor's), the job still succeeds. */
async function noteLeftover(jobId: string, volumeId: string, error: unknown) {
  const job = await getJob(jobId);
  const cause = (error as { Cause?: string } | undefined)?.Cause ?? 'the host did not answer';
  if (job?.actor) {
    await recordEvent(job.actor, {
      type: 'VOLUME.MIGRATE',
      level: 'WARN',
      description: `Volume ${volumeId} was migrated, but what it left on its former storage pool could not be removed: ${cause}`,
      resourceId: volumeId,
      resourceType: 'Volume',
    });
  }
  return { noted: true };
}

export async function runVolumeMigrateTask(task: VolumeMigrateTask): Promise<unknown> {
  switch (task.step) {
    case 'prepareMigrate':
      return prepareMigrate(task.jobId, task.volumeId, task.token);
    case 'commitMigrate':
      return commitMigrate(task.jobId, task.volumeId, task.token, task.viewer);
    case 'abortMigrate':
      return abortMigrate(task.jobId, task.volumeId, task.token, task.viewer);
    case 'noteLeftover':
      return noteLeftover(task.jobId, task.volumeId, task.error);
  }
}
