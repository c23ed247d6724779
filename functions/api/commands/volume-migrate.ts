// migrateVolume (upstream's MigrateVolumeCmd over VolumeApiServiceImpl.migrateVolume): a detached
// volume, or one of a stopped VM, moves to another primary storage pool of its zone. The checks run
// in upstream's order with upstream's texts and change nothing; then the volume is claimed (`busy`),
// its VM (if any) goes Stopped → Migrating so that nothing starts it meanwhile, and the volume-migrate
// state machine copies the file (functions/tasks/volume-migrate.ts).
//
// Not here: a volume of a running VM. Upstream refuses it on KVM too (libvirt cannot re-point a
// running domain's disk), and points to migrateVirtualMachineWithVolume(s).
import { randomUUID } from 'node:crypto';
import { InternalError, InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { param } from '../../../shared/cloudstack/params.ts';
import { allocatableBytes, getStoragePool, overprovisioningFactor, type StoragePool } from '../../../shared/db/storage.ts';
import { getVm, getVolume, listVolumesOfVm, transitionVm, updateVolumeIf, type VirtualMachine, type Volume } from '../../../shared/db/vms.ts';
import { hostReachingBoth, isFilePool } from '../../tasks/volume-migrate.ts';
import { startAsync } from '../async.ts';
import { ALL_ROLES, defineCommand } from '../command.ts';
import { checkAccess } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';
import { volumeViewerOf } from './volumes.ts';

/** Upstream's VolumeVO.toString(), with Mold's ids. */
export const volumeText = (v: Volume) => `Vol[${v.id}|name=${v.name}|vm=${v.vmId ?? 'null'}|${v.type}]`;

/** The VM's other volumes' pools and the target must be mounted by one cluster's hosts, or the VM could not start. */
async function checkSameCluster(vm: VirtualMachine, volume: Volume, target: StoragePool) {
  if (target.scope === 'ZONE') return;
  for (const other of await listVolumesOfVm(vm.id)) {
    if (other.id === volume.id || other.vmId !== vm.id || !other.poolReserved || !other.poolId) continue;
    const pool = await getStoragePool(other.poolId);
    if (pool && pool.scope !== 'ZONE' && pool.clusterId !== target.clusterId) {
      throw new InvalidParameter('Cannot migrate a volume of a virtual machine to a storage pool in a different cluster');
    }
  }
}

const migrateVolumeCommand = defineCommand({
  name: 'migrateVolume',
  description:
    'Migrate volume. Mold: a detached volume or one of a stopped Instance, between file-based primary storage pools (NetworkFilesystem, SharedMountPoint) of its zone: a host that mounts both writes it anew on the target pool (qemu-img convert; a root disk comes out whole, without its template), then the source is removed. A volume of a running Instance is refused as upstream refuses it on KVM, livemigrate or not.',
  params: {
    volumeid: param.uuid('The ID of the volume'),
    storageid: param.uuid('Destination storage pool ID to migrate the volume to'),
    livemigrate: param.boolean('If the volume should be live migrated when it is attached to a running Instance').optional(),
    newdiskofferingid: param
      .uuid('The new disk offering ID that replaces the current one used by the volume. This new disk offering is used to better reflect the new storage where the volume is going to be migrated to.')
      .optional(),
  },
  roles: ALL_ROLES,
  isasync: true,
  handler: async ({ params, caller, settings }) => {
    const api = 'migrateVolume';
    // As upstream's dispatcher: both ids are resolved before the command runs.
    const volume = await getVolume(params.volumeid.toLowerCase());
    if (!volume || volume.state === 'Expunged' || volume.deleting) throw noSuchEntity(api, 'volumeid', params.volumeid);
    const target = await getStoragePool(params.storageid.toLowerCase());
    if (!target) throw noSuchEntity(api, 'storageid', params.storageid);
    checkAccess(caller, volume, `volume ${volume.id}`);
    if (volume.state !== 'Ready' || !volume.poolReserved) throw new InvalidParameter('Volume must be in ready state');
    if (volume.poolId === target.id) throw new InvalidParameter(`Volume ${volumeText(volume)} is already on the destination storage pool`);
    const vm = volume.vmId ? await getVm(volume.vmId) : undefined;
    if (vm?.state === 'Running') {
      throw new InvalidParameter(
        "KVM does not support volume live migration due to the limited possibility to refresh VM XML domain. Therefore, to live migrate a volume between storage pools, one must migrate the VM to a different host as well to force the VM XML domain update. Use 'migrateVirtualMachineWithVolumes' instead.",
      );
    }
    if (vm && vm.state !== 'Stopped') throw new InvalidParameter(`The volume ${volumeText(volume)} is attached to VM ${vm.instanceName}, which is ${vm.state}: its volumes migrate while it is Stopped`);
    if (target.state === 'Maintenance') {
      throw new InvalidParameter(`Cannot migrate volume ${volumeText(volume)}to the destination storage pool ${target.name} as the storage pool is in maintenance mode.`);
    }
    if (params.newdiskofferingid !== undefined) throw new InvalidParameter('Mold does not replace a volume\'s disk offering while migrating it yet (newdiskofferingid)');
    if (target.zoneId !== volume.zoneId) throw new InvalidParameter(`Storage pool ${target.name} is not in the zone of volume ${volume.name} (${volume.zoneId}): a volume migrates within its zone (storageid)`);
    const source = await getStoragePool(volume.poolId);
    if (!source) throw new InternalError(`The storage pool ${volume.poolId} of volume ${volume.name} no longer exists`);
    if (!isFilePool(source) || !isFilePool(target)) {
      const other = isFilePool(source) ? target : source;
      throw new InvalidParameter(`Mold migrates volumes between file-based shared pools (NetworkFilesystem, SharedMountPoint) only; storage pool ${other.name} is ${other.type}`);
    }
    if (target.state !== 'Up') throw new InternalError(`Storage pool ${target.name} is not suitable to migrate volume ${volume.name}`);
    if (target.disksizeallocated + volume.sizeBytes > allocatableBytes(target, await overprovisioningFactor(target, settings))) {
      throw new InternalError(`Storage pool ${target.name} does not have enough space to migrate volume ${volume.name}`);
    }
    if (vm) await checkSameCluster(vm, volume, target);
    if (!(await hostReachingBoth(source, target, vm?.lastHostId))) {
      throw new InternalError(`No Up host with an agent mounts both storage pool ${source.name} and ${target.name} to copy volume ${volume.name}; try again when one is Up`);
    }
    if (volume.busy) throw new InvalidParameter(`Volume ${volume.name} (${volume.id}) is busy with another operation; try again when it is over`);

    const token = randomUUID();
    const claimed = await updateVolumeIf(volume.id, { busy: undefined, poolId: volume.poolId, vmId: volume.vmId }, { busy: token, migrateTo: target.id });
    if (!claimed) throw new InvalidParameter(`Volume ${volume.name} (${volume.id}) is busy with another operation; try again when it is over`);
    const letGo = () => updateVolumeIf(volume.id, { busy: token }, { busy: undefined, migrateTo: undefined });
    if (vm && !(await transitionVm(vm.id, ['Stopped'], 'Migrating', { migratingVolume: token }))) {
      await letGo();
      throw new InvalidParameter(`The virtual machine ${vm.id} (${vm.displayName}) is no longer Stopped; try again`);
    }
    try {
      return await startAsync(caller, {
        cmd: api,
        stateMachine: 'volume-migrate',
        input: { volumeId: volume.id, token, viewer: volumeViewerOf(caller) },
        instanceType: 'Volume',
        instanceId: volume.id,
        event: { type: 'VOLUME.MIGRATE', description: `Attempting to migrate volume with ID: ${volume.id} to storage pool: ${target.id}`, resourceId: volume.id, resourceType: 'Volume' },
      });
    } catch (error) {
      if (vm) await transitionVm(vm.id, ['Migrating'], 'Stopped', { migratingVolume: undefined }, { migratingVolume: token });
      await letGo();
      throw error;
    }
  },
});

export const volumeMigrateCommands = [migrateVolumeCommand];
