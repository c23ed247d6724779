// Task steps of statemachines/vm-migrate.asl.json (migrateVirtualMachine, and each VM of a host's
// maintenance). The order of the books: Plan marks the VM Migrating and, in one transaction with that
// record, reserves the target's capacity; the agent moves the domain; Commit records the VM on the
// target and only then gives the source's capacity back; Release (any failure) puts the VM back to
// Running on its source and then gives the target's reservation back. Each step is safe to repeat.
import { z } from 'zod';
import { agentCommands } from '../../shared/agent/protocol.ts';
import { InsufficientCapacity, InternalError, InvalidParameter } from '../../shared/cloudstack/errors.ts';
import { planAndReserve, releaseHostCapacity } from '../../shared/db/capacity.ts';
import { getHost, type Host } from '../../shared/db/hosts.ts';
import { tableName } from '../../shared/db/items.ts';
import { getServiceOffering } from '../../shared/db/offerings.ts';
import { getVmConsistent, getVolume, transitionVm, vmKey, type VirtualMachine } from '../../shared/db/vms.ts';
import { loadSettings } from '../../shared/settings.ts';
import { renderVmFor } from '../api/commands/vms-list.ts';
import { NO_SERVER_TEXT, NOT_RUNNING_TEXT } from '../api/commands/vms-migrate.ts';
import { targetOf } from './agent-commands.ts';
import { stepFunctionsError } from './jobs.ts';
import { command, type Prepared } from './vms.ts';

export const MIGRATE_STEPS = ['planMigrate', 'commitMigrate', 'releaseMigrate'] as const;

const viewer = z.object({ rootAdmin: z.boolean(), admin: z.boolean() }).default({ rootAdmin: true, admin: true });

export const vmMigrateActions = [
  z.object({
    action: z.literal('vmMigrateTask'),
    step: z.enum(MIGRATE_STEPS),
    jobId: z.string(),
    vmId: z.string(),
    /** The root admin's hostid; absent: the planner picks. */
    hostId: z.string().nullish(),
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

/** The VM's record of its target, written only with the target's reservation (CapacityLost otherwise). */
const recordTarget = (vm: VirtualMachine, jobId: string) => ({
  item: (host: { id: string }) => ({
    Update: {
      TableName: tableName(),
      Key: vmKey(vm.id),
      UpdateExpression: 'SET migrateToHostId = :to',
      ConditionExpression: '#state = :migrating AND migrateJobId = :job AND attribute_not_exists(migrateToHostId)',
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: { ':to': host.id, ':migrating': 'Migrating', ':job': jobId },
    },
  }),
  abort: () => new InvalidParameter(`The virtual machine ${vm.id} changed state while its migration was being planned`),
});

/**
 * Running → Migrating (this job's), then the target: the root admin's host, or the planner's pick
 * (not the source; capacity, host tags, affinity, the root volume's pool reachable), reserved in
 * one transaction with the VM's record of it. A retry finds its own record and rebuilds the command.
 */
async function planMigrate(jobId: string, vmId: string, hostId: string | null | undefined): Promise<Prepared> {
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
    try {
      await planAndReserve({
        vm,
        jobId,
        hostTags: offering?.hosttags,
        poolId: volume?.poolId,
        ...(hostId && { hostId }),
        avoidHostIds: [source.id],
        // A host emptied for maintenance may move its VMs within its cluster while rolling maintenance has disabled it.
        ...(source.resourcestate === 'PrepareForMaintenance' && { evacuatingClusterId: source.clusterId }),
        settings,
        noHostText: target ? `Unable to migrate VM ${vm.instanceName} to host ${target.name}: the host does not have enough free CPU or memory, or does not suit the VM` : NO_SERVER_TEXT,
        coupled: [recordTarget(vm, jobId)],
      });
    } catch (error) {
      // Autoselect: upstream's CloudRuntimeException (530) rather than a capacity error.
      if (error instanceof InsufficientCapacity && !target) throw new InternalError(NO_SERVER_TEXT);
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
    { host: targetOf(source), target: targetOf(target), name: vm.instanceName, vncListen: target.ipaddress, vlans, timeoutSeconds: MIGRATION_SECONDS },
    MIGRATION_SECONDS,
  );
}

/** The domain runs on the target: the VM is recorded there, then the source's capacity goes back. */
async function commitMigrate(vmId: string, result: unknown, who: z.infer<typeof viewer>) {
  const parsed = agentCommands.migrateVm.result.safeParse(result);
  if (!parsed.success) throw new InternalError(`The agent answered migrateVm with a result Mold cannot read: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
  const vm = await currentVm(vmId);
  if (vm.state !== 'Migrating' || !vm.migrateToHostId) return { virtualmachine: await renderVmFor(vm, who) };
  const target = await hostById(vm.migrateToHostId, 'destination host');
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
      ...(parsed.data.vncPort !== undefined && { vncPort: parsed.data.vncPort }),
    },
    { migrateToHostId: target.id },
  );
  if (!moved) throw new InvalidParameter(`The virtual machine ${vm.id} changed state during its migration`);
  if (vm.hostId) await releaseHostCapacity(vm.hostId, vm);
  return { virtualmachine: await renderVmFor(moved, who) };
}

/** Any failure: Running on the source again, then the target's reservation back. */
async function releaseMigrate(jobId: string, vmId: string) {
  const vm = await getVmConsistent(vmId);
  if (!vm || vm.state !== 'Migrating' || vm.migrateJobId !== jobId) return { released: false };
  const back = await transitionVm(vm.id, ['Migrating'], 'Running', { migrateToHostId: undefined, migrateJobId: undefined }, vm.migrateToHostId ? { migrateToHostId: vm.migrateToHostId } : undefined);
  if (!back) return { released: false };
  if (vm.migrateToHostId) await releaseHostCapacity(vm.migrateToHostId, vm);
  return { released: true };
}

export async function runVmMigrateTask(task: VmMigrateTask): Promise<unknown> {
  switch (task.step) {
    case 'planMigrate':
      return planMigrate(task.jobId, task.vmId, task.hostId);
    case 'commitMigrate':
      return commitMigrate(task.vmId, task.result, task.viewer);
    case 'releaseMigrate':
      return releaseMigrate(task.jobId, task.vmId);
  }
}
