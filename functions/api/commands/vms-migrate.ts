// Live migration: migrateVirtualMachine and migrateVirtualMachineWithVolume (both through
// statemachines/vm-migrate.asl.json; the latter with storage motion) and findHostsForMigration (the
// planner's view of every other host of the VM's zone, without reserving anything).
import { InternalError, InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { planDeployment } from '../../../shared/db/capacity.ts';
import { getHost, type Host } from '../../../shared/db/hosts.ts';
import { getServiceOffering } from '../../../shared/db/offerings.ts';
import { allocatableBytes, getStoragePool, listStoragePools, overprovisioningFactor, type StoragePool } from '../../../shared/db/storage.ts';
import type { Settings } from '../../../shared/settings.ts';
import { getVm, getVolume, listVolumesOfVm, type VirtualMachine, type Volume } from '../../../shared/db/vms.ts';
import { isFilePool } from '../../tasks/volume-migrate.ts';
import { poolReachable, type ExclusionReason } from '../../../shared/placement.ts';
import { startAsync } from '../async.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { noSuchEntity } from '../validate.ts';
import { hostContext, renderHost } from './hosts.ts';
import { volumeText } from './volume-migrate.ts';
import { viewerOf } from './vms.ts';

/** Upstream's texts (UserVmManagerImpl.migrateVirtualMachine). */
export const NOT_RUNNING_TEXT = 'VM is not Running, unable to migrate the vm with specified id';
export const NO_SERVER_TEXT = 'Unable to find a server to migrate the vm to';

async function vmById(api: string, name: string, id: string): Promise<VirtualMachine> {
  const vm = await getVm(id.toLowerCase());
  if (!vm || vm.state === 'Expunging') throw noSuchEntity(api, name, id);
  return vm;
}

/** Whether the host reaches the pools of all the VM's volumes (otherwise storage would have to move). */
async function reachesVolumes(vm: VirtualMachine, host: Pick<Host, 'zoneId' | 'clusterId'>): Promise<boolean> {
  const root = await getVolume(vm.rootVolumeId);
  const pool = root?.poolId ? await getStoragePool(root.poolId) : undefined;
  return !pool || poolReachable(pool, host);
}

/** Upstream's checkVmMigrationDestination for a root admin's hostid (its texts). */
async function checkDestination(vm: VirtualMachine, host: Host) {
  if (host.id === vm.hostId) throw new InvalidParameter('Cannot migrate VM, VM is already present on this host, please specify valid destination host to migrate the VM');
  if (host.status !== 'Up' || host.resourcestate !== 'Enabled') {
    throw new InvalidParameter(`Cannot migrate VM, destination host is not in correct state, has status: ${host.status}, state: ${host.resourcestate}`);
  }
  if (host.zoneId !== vm.zoneId || !(await reachesVolumes(vm, host))) {
    throw new InvalidParameter(`Source and destination host are not in same cluster and all volumes are not on zone wide primary store, unable to migrate to host: ${host.id}`);
  }
}

const migrateVirtualMachineCommand = defineCommand({
  name: 'migrateVirtualMachine',
  description:
    'Attempts Migration of a VM to a different host or Root volume of the vm to a different storage pool. Mold: live migration (libvirt, over qemu+ssh between the hosts with the zone\'s migration key) to a host that reaches the VM\'s primary storage; without hostid the planner picks one (capacity, host tags, affinity), as upstream\'s autoselect.',
  params: {
    virtualmachineid: param.uuid('the ID of the virtual machine'),
    hostid: param.uuid('Destination Host ID to migrate VM to.').optional(),
  },
  roles: ADMINS,
  isasync: true,
  handler: async ({ params, caller }) => {
    const api = 'migrateVirtualMachine';
    const vm = await vmById(api, 'virtualmachineid', params.virtualmachineid);
    const host = params.hostid ? await getHost(params.hostid.toLowerCase()) : undefined;
    if (params.hostid && !host) throw noSuchEntity(api, 'hostid', params.hostid);
    if (vm.state !== 'Running') throw new InvalidParameter(NOT_RUNNING_TEXT);
    if (host) await checkDestination(vm, host);
    const description = host ? `Attempting to migrate VM id: ${vm.id} to host Id: ${host.id}` : `Attempting to migrate VM id: ${vm.id}`;
    return startAsync(caller, {
      cmd: api,
      stateMachine: 'vm-migrate',
      input: { vmId: vm.id, hostId: host?.id ?? null, volumes: null, viewer: viewerOf(caller) },
      instanceType: 'VirtualMachine',
      instanceId: vm.id,
      event: { type: 'VM.MIGRATE', description, resourceId: vm.id, resourceType: 'VirtualMachine' },
    });
  },
});

/** Upstream's VMInstanceVO.toString() (its own `"type"=`), with Mold's number as the id. */
const vmText = (vm: VirtualMachine) => `VM instance {"id": "${vm.number}", "name": "${vm.instanceName}", "uuid": "${vm.id}", "type"="User"}`;

/** migrateto as upstream reads it (getVolumeToPool): volume uuid → pool uuid, a repeated volume's last pool. */
function volumeToPool(entries: readonly Record<string, string>[] | undefined): Map<string, string> {
  const map = new Map<string, string>();
  (entries ?? []).forEach((entry, i) => {
    if (!entry.volume || !entry.pool) throw new InvalidParameter(`migrateto[${i}] needs both a volume and a pool: migrateto[${i}].volume=<uuid>&migrateto[${i}].pool=<uuid> (migrateto)`);
    map.set(entry.volume.toLowerCase(), entry.pool.toLowerCase());
  });
  return map;
}

/** Upstream's getHostsForMigrateVmWithStorage for a given destination (its texts and codes). */
function checkStorageMotionHosts(source: Host, destination: Host) {
  if (destination.id === source.id) {
    throw new InvalidParameter(`Cannot migrate VM as it is already present on host ${destination.name} (ID: ${destination.id}), please specify valid destination host to migrate the VM`);
  }
  if (destination.status !== 'Up' || destination.resourcestate !== 'Enabled') {
    throw new InternalError(`Cannot migrate VM, destination host ${destination.name} (ID: ${destination.id}) is not in correct state, has status: ${destination.status}, state: ${destination.resourcestate}`);
  }
}

/**
 * A pool for a volume left out of migrateto whose pool the destination does not reach (upstream's
 * createVolumeToStoragePoolMappingIfPossible): a file pool of the zone, Up, reached by the destination,
 * with room for the volume beside what this move already puts there; the one with the most room.
 */
async function poolForLeftOut(volume: Volume, destination: Host, placed: ReadonlyMap<string, number>, settings: Settings): Promise<StoragePool | undefined> {
  let best: { pool: StoragePool; free: number } | undefined;
  for (const pool of await listStoragePools({ zoneId: destination.zoneId })) {
    if (!isFilePool(pool) || pool.state !== 'Up' || !poolReachable(pool, destination)) continue;
    const free = allocatableBytes(pool, await overprovisioningFactor(pool, settings)) - pool.disksizeallocated - (placed.get(pool.id) ?? 0);
    if (free >= volume.sizeBytes && (!best || free > best.free)) best = { pool, free };
  }
  return best?.pool;
}

/**
 * Upstream's getVolumePoolMappingForMigrateVmWithStorage (its order and texts), then what Mold needs:
 * file pools of the VM's zone that are Up and reached by the destination. Volumes already on the named
 * pool are dropped; with nothing left to move, upstream's "doesn't involve migrating the volumes". A
 * volume left out stays on its pool when the destination reaches it, else goes to a pool the
 * destination reaches (upstream's createStoragePoolMappingsForVolumes); with autoselect the planner
 * only considers hosts that reach the pools of the volumes left out.
 */
async function volumeMoves(vm: VirtualMachine, source: Host, destination: Host | undefined, requested: Map<string, string>, settings: Settings): Promise<Record<string, string>> {
  const volumes = (await listVolumesOfVm(vm.id)).filter((v) => v.vmId === vm.id && v.state !== 'Expunged' && v.state !== 'Destroy');
  for (const volume of volumes) {
    if (volume.state !== 'Ready') {
      throw new InternalError(`Volume ${volume.name} (ID: ${volume.id}) of the VM is not in Ready state. Cannot migrate the VM ${vm.instanceName} (ID: ${vm.id}) with its volumes`);
    }
  }
  const moves: Record<string, string> = {};
  const targets = new Map<string, StoragePool>();
  for (const [volumeId, poolId] of requested) {
    const volume = await getVolume(volumeId);
    const pool = volume ? await getStoragePool(poolId) : undefined;
    if (!volume || volume.state === 'Expunged') throw new InvalidParameter(`There is no volume present with the given id ${volumeId}`);
    if (!pool) throw new InvalidParameter(`There is no storage pool present with the given id ${poolId}`);
    if (pool.state === 'Maintenance') {
      throw new InvalidParameter(`Cannot migrate volume ${volumeText(volume)}to the destination storage pool ${pool.name} as the storage pool is in maintenance mode.`);
    }
    if (!volumes.some((v) => v.id === volume.id)) {
      throw new InvalidParameter(`Volume ${volumeText(volume)} doesn't belong to the VM ${vm.instanceName} (ID: ${vm.id}) that has to be migrated`);
    }
    if (pool.id === volume.poolId) continue;
    if (pool.zoneId !== vm.zoneId) throw new InvalidParameter(`Storage pool ${pool.name} is not in the zone of VM ${vm.instanceName}: its volumes migrate within its zone (migrateto)`);
    if (!isFilePool(pool)) throw new InvalidParameter(`Mold migrates volumes with a running VM between file-based shared pools (NetworkFilesystem, SharedMountPoint) only; storage pool ${pool.name} is ${pool.type} (migrateto)`);
    if (pool.state !== 'Up') throw new InternalError(`Storage pool ${pool.name} is ${pool.state}: it takes no volume`);
    const from = await getStoragePool(volume.poolId);
    if (from && !isFilePool(from)) throw new InvalidParameter(`Mold migrates volumes with a running VM between file-based shared pools only; volume ${volume.name} is on ${from.name}, which is ${from.type} (migrateto)`);
    moves[volume.id] = pool.id;
    targets.set(volume.id, pool);
  }
  const nothingMoves = (to: string) =>
    new InvalidParameter(`Migration of the VM: ${vm.instanceName} (ID: ${vm.id}) from host ${source.name} (ID: ${source.id}) to destination host  ${to} doesn't involve migrating the volumes`);
  if (!destination) {
    if (Object.keys(moves).length === 0) throw nothingMoves('chosen by the planner');
    return moves;
  }
  // VmVolumeMigrationPlanningServiceImpl.buildMapUsingUserInformation: the host must reach each pool given.
  for (const [volumeId, pool] of targets) {
    if (!poolReachable(pool, destination)) {
      throw new InternalError(
        `Cannot migrate the volume [${volumeId}] to the storage pool [${pool.id}] while migrating VM [${vm.id}] to target host [${destination.id}]. The host does not have access to the storage pool entered.`,
      );
    }
  }
  const placed = new Map<string, number>();
  for (const [volumeId, pool] of targets) placed.set(pool.id, (placed.get(pool.id) ?? 0) + volumes.find((v) => v.id === volumeId)!.sizeBytes);
  for (const volume of volumes) {
    if (requested.has(volume.id)) continue;
    const current = await getStoragePool(volume.poolId);
    if (!current || poolReachable(current, destination)) continue;
    const pool = await poolForLeftOut(volume, destination, placed, settings);
    if (!pool || !isFilePool(current)) throw new InternalError(`There are no storage pools available at the target host [${destination.id}] to migrate volume [${volume.id}]`);
    moves[volume.id] = pool.id;
    placed.set(pool.id, (placed.get(pool.id) ?? 0) + volume.sizeBytes);
  }
  if (Object.keys(moves).length === 0) throw nothingMoves(`${destination.name} (ID: ${destination.id})`);
  return moves;
}

const migrateWithVolumeCommand = defineCommand({
  name: 'migrateVirtualMachineWithVolume',
  description:
    'Attempts Migration of a VM with its volumes to a different host. Mold: a Running VM, live (libvirt\'s --copy-storage-all: the guest keeps running while the named volumes are copied to their new pools, which must be file-based pools the destination host reaches; a volume left out stays on its pool when the destination reaches it, else goes to the reachable pool with the most room, as upstream maps it); capacity on the host and the pools is reserved first; the old files are removed from the source pools after success. A Stopped VM\'s volumes (migrateto without hostid) move one at a time with migrateVolume.',
  params: {
    virtualmachineid: param.uuid('the ID of the virtual machine'),
    hostid: param.uuid('Destination Host ID to migrate VM to.').optional(),
    migrateto: param
      .map(
        'Storage to pool mapping. This parameter specifies the mapping between a volume and a pool where you want to migrate that volume. Format of this parameter: migrateto[volume-index].volume=<uuid>&migrateto[volume-index].pool=<uuid>Where, [volume-index] indicates the index to identify the volume that you want to migrate, volume=<uuid> indicates the UUID of the volume that you want to migrate, and pool=<uuid> indicates the UUID of the pool where you want to migrate the volume. Example: migrateto[0].volume=<71f43cd6-69b0-4d3b-9fbc-67f50963d60b>&migrateto[0].pool=<a382f181-3d2b-4413-b92d-b8931befa7e1>&migrateto[1].volume=<88de0173-55c0-4c1c-a269-83d0279eeedf>&migrateto[1].pool=<95d6e97c-6766-4d67-9a30-c449c15011d1>&migrateto[2].volume=<1b331390-59f2-4796-9993-bf11c6e76225>&migrateto[2].pool=<41fdb564-9d3b-447d-88ed-7628f7640cbc>',
      )
      .optional(),
    autoselect: param.boolean('Automatically select a destination host for a running instance, if hostId is not specified. false by default').optional(),
  },
  roles: ADMINS,
  isasync: true,
  handler: async ({ params, caller, settings }) => {
    const api = 'migrateVirtualMachineWithVolume';
    const vm = await vmById(api, 'virtualmachineid', params.virtualmachineid);
    const host = params.hostid ? await getHost(params.hostid.toLowerCase()) : undefined;
    if (params.hostid && !host) throw noSuchEntity(api, 'hostid', params.hostid);
    const requested = volumeToPool(params.migrateto);
    const autoselect = params.autoselect === true;
    // MigrateVirtualMachineWithVolumeCmd.execute, in its order.
    if (!host && requested.size === 0 && !autoselect) throw new InvalidParameter('Either hostid or migrateto must be passed or autoselect must be true for migrating the VM.');
    if (vm.state !== 'Running' && host) throw new InvalidParameter(`${vmText(vm)} is not in the Running state to migrate it to the new host.`);
    if (vm.state !== 'Stopped' && !host && !autoselect) throw new InvalidParameter(`${vmText(vm)} is not in the Stopped state to migrate, use the hostid or autoselect parameter to migrate it to a new host.`);
    if (!host && !autoselect) {
      throw new InvalidParameter(`Mold moves a stopped VM's volumes one at a time with migrateVolume; migrateVirtualMachineWithVolume moves a running VM with its volumes (migrateto without hostid or autoselect)`);
    }
    // UserVmManagerImpl.migrateVirtualMachineWithVolume.
    if (vm.state !== 'Running') throw new InternalError(`Unable to migrate the VM ${vm.instanceName} (ID: ${vm.id}) as it is not in Running state`);
    const source = vm.hostId ? await getHost(vm.hostId) : undefined;
    if (!source) throw new InvalidParameter(`Cannot migrate VM, host with ID: ${vm.hostId ?? 'none'} for VM not found`);
    if (host) checkStorageMotionHosts(source, host);
    if (requested.size === 0 && host && (await reachesVolumes(vm, host))) {
      throw new InvalidParameter(
        `Migration of the VM: ${vm.instanceName} (ID: ${vm.id}) from host ${source.name} (ID: ${source.id}) to destination host  ${host.name} (ID: ${host.id}) doesn't involve migrating the volumes`,
      );
    }
    if (requested.size === 0 && !host) throw new InvalidParameter(`Mold's planner picks a host for the pools migrateto names, not pools for a host: name them, or give hostid (migrateto)`);
    const volumes = await volumeMoves(vm, source, host, requested, settings);
    const description = `Attempting to migrate VM Id: ${vm.id} to host Id: ${host?.id ?? 'null'}`;
    return startAsync(caller, {
      cmd: api,
      stateMachine: 'vm-migrate',
      input: { vmId: vm.id, hostId: host?.id ?? null, volumes, viewer: viewerOf(caller) },
      instanceType: 'VirtualMachine',
      instanceId: vm.id,
      event: { type: 'VM.MIGRATE', description, resourceId: vm.id, resourceType: 'VirtualMachine' },
    });
  },
});

/** Why a host cannot take the VM, in the operator's words. */
const REASONS: Record<ExclusionReason, string> = {
  'not-requested': 'not requested',
  'not-allocatable': 'the host, or its cluster, pod or zone, is not Up and Enabled',
  'cpu-capability': 'the host has fewer cores or a slower CPU than the VM needs',
  'cpu-capacity': 'not enough free CPU',
  'memory-capacity': 'not enough free memory',
  'host-tags': 'the host lacks a host tag of the VM\'s offering',
  'anti-affinity': 'a VM of one of its anti-affinity groups runs there',
  affinity: 'a VM of one of its affinity groups runs on another host',
  'no-pool': 'the host does not reach the VM\'s primary storage (storage motion would be needed)',
};

const NO_MOTION_REASON = 'the host does not reach the VM\'s primary storage, and no file-based storage pool it reaches has room for the volumes that would move there';

/** Whether migrateVirtualMachineWithVolume could take the VM to `host`: a pool it reaches, with room, for each volume on a pool it does not reach. */
async function storageMotionPossible(vm: VirtualMachine, host: Host, settings: Settings): Promise<boolean> {
  const placed = new Map<string, number>();
  for (const volume of (await listVolumesOfVm(vm.id)).filter((v) => v.vmId === vm.id && v.state === 'Ready')) {
    const current = await getStoragePool(volume.poolId);
    if (!current) return false;
    if (poolReachable(current, host)) continue;
    const pool = isFilePool(current) ? await poolForLeftOut(volume, host, placed, settings) : undefined;
    if (!pool) return false;
    placed.set(pool.id, (placed.get(pool.id) ?? 0) + volume.sizeBytes);
  }
  return true;
}

const findHostsForMigrationCommand = defineCommand({
  name: 'findHostsForMigration',
  description:
    'Find hosts suitable for migrating a virtual machine. Mold: every other host of the VM\'s zone; suitableformigration is the planner\'s answer (capacity after over-provisioning, host tags, affinity, primary storage reachable, or with requiresStorageMotion a file-based pool it reaches with room for each volume that would move: migrateVirtualMachineWithVolume), and notsuitablereason (Mold\'s) says why not.',
  params: {
    id: param.uuid('find hosts to which this VM can be migrated and flag the hosts with enough CPU/RAM to host the VM'),
    ...listParams,
  },
  roles: ADMINS,
  handler: async ({ params, settings }) => {
    const api = 'findHostsForMigration';
    const vm = await vmById(api, 'id', params.id);
    if (vm.state !== 'Running') throw new InvalidParameter('VM is not running, cannot migrate the vm with specified id');
    const [offering, root] = await Promise.all([getServiceOffering(vm.serviceOfferingId), getVolume(vm.rootVolumeId)]);
    const plan = await planDeployment({ vm, hostTags: offering?.hosttags, poolId: root?.poolId, avoidHostIds: vm.hostId ? [vm.hostId] : [], settings });
    const suitable = new Set(plan.candidates.map((c) => c.host.id));
    const reasons = new Map(plan.excluded.map((e) => [e.hostId, e.reason]));
    // A host that passed every check but the pool (the planner checks it last) suits a migration with
    // storage motion when its pools have room for the volumes it does not reach (as upstream lists it).
    const noMotion = new Set<string>();
    for (const candidate of plan.inventory.hosts) {
      const host = candidate.host as Host;
      if (reasons.get(host.id) !== 'no-pool') continue;
      if (await storageMotionPossible(vm, host, settings)) suitable.add(host.id);
      else noMotion.add(host.id);
    }
    const hosts = plan.inventory.hosts
      .map((c) => c.host as Host)
      .filter((h) => h.id !== vm.hostId && h.type === 'Routing' && matchesKeyword(params.keyword, h.name))
      .sort((a, b) => Number(suitable.has(b.id)) - Number(suitable.has(a.id)) || a.name.localeCompare(b.name));
    const context = await hostContext(hosts);
    return {
      body: listResponse('host', hosts, params, settings, (h) => {
        const reason = reasons.get(h.id);
        return {
          ...renderHost(h, context),
          suitableformigration: suitable.has(h.id),
          requiresStorageMotion: reason === 'no-pool',
          ...(reason && !suitable.has(h.id) && { notsuitablereason: noMotion.has(h.id) ? NO_MOTION_REASON : REASONS[reason] }),
        };
      }),
    };
  },
});

export const vmMigrateCommands = [migrateVirtualMachineCommand, migrateWithVolumeCommand, findHostsForMigrationCommand];
