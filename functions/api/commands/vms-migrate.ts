// Live migration: migrateVirtualMachine (statemachines/vm-migrate.asl.json) and findHostsForMigration
// (the planner's view of every other host of the VM's zone, without reserving anything).
import { InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { planDeployment } from '../../../shared/db/capacity.ts';
import { getHost, type Host } from '../../../shared/db/hosts.ts';
import { getServiceOffering } from '../../../shared/db/offerings.ts';
import { getStoragePool } from '../../../shared/db/storage.ts';
import { getVm, getVolume, type VirtualMachine } from '../../../shared/db/vms.ts';
import { poolReachable, type ExclusionReason } from '../../../shared/placement.ts';
import { startAsync } from '../async.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { noSuchEntity } from '../validate.ts';
import { hostContext, renderHost } from './hosts.ts';
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
      input: { vmId: vm.id, hostId: host?.id ?? null, viewer: viewerOf(caller) },
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

const findHostsForMigrationCommand = defineCommand({
  name: 'findHostsForMigration',
  description:
    'Find hosts suitable for migrating a virtual machine. Mold: every other host of the VM\'s zone; suitableformigration is the planner\'s answer (capacity after over-provisioning, host tags, affinity, primary storage reachable), and notsuitablereason (Mold\'s) says why not.',
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
          ...(reason && { notsuitablereason: REASONS[reason] }),
        };
      }),
    };
  },
});

export const vmMigrateCommands = [migrateVirtualMachineCommand, findHostsForMigrationCommand];
