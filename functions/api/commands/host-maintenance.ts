// Host maintenance: upstream's PrepareForMaintenanceCmd and CancelMaintenanceCmd, both async jobs
// that answer with the host (statemachines/host-maintenance.asl.json). prepareHostForMaintenance
// checks what upstream's maintain() checks, then moves the host to PrepareForMaintenance here, in one
// transaction with its cluster's claim (one host per cluster prepares at a time), so a refusal is an
// immediate error that changed nothing and no placement lands on the host once the job exists.
import { InternalError } from '../../../shared/cloudstack/errors.ts';
import { param } from '../../../shared/cloudstack/params.ts';
import { claimMaintenance, IllegalTransition, isMaintenanceState, listHostRecords, transitionResourceState } from '../../../shared/db/hosts.ts';
import { listVmRecords } from '../../../shared/db/vms.ts';
import { cancelRefusalText, clusterBusyText, maintenanceRefusal, prepareFailure } from '../../../shared/host-maintenance.ts';
import { startAsync } from '../async.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { hostParam } from './hosts.ts';

const prepareHostForMaintenanceCommand = defineCommand({
  name: 'prepareHostForMaintenance',
  description:
    'Prepares a host for maintenance. Mold: the job ends when the host is empty: its Running VMs are live-migrated away (host.maintenance.parallel.migrations at a time, each to a host the planner picks) and the host is in Maintenance; when one cannot move, the host is left in ErrorInPrepareForMaintenance and the job fails saying why.',
  params: { id: param.uuid('the host ID') },
  roles: ADMINS,
  isasync: true,
  handler: async ({ params, caller }) => {
    const api = 'prepareHostForMaintenance';
    const host = await hostParam(api, 'id', params.id);
    const [cluster, onHost, migrating] = await Promise.all([
      listHostRecords({ zoneId: host.zoneId, podId: host.podId, clusterId: host.clusterId }),
      listVmRecords({ hostId: host.id }),
      listVmRecords({ states: ['Migrating'] }),
    ]);
    const refusal = maintenanceRefusal(host, cluster, onHost, migrating.filter((vm) => vm.migrateToHostId === host.id));
    if (refusal) throw new InternalError(prepareFailure(refusal));
    let claim;
    try {
      claim = await claimMaintenance(host.id);
    } catch (error) {
      if (error instanceof IllegalTransition) throw new InternalError(prepareFailure(`Host is already in state ${error.from}. Cannot recall for maintenance until resolved.`));
      throw error;
    }
    if ('gone' in claim) throw new InternalError(prepareFailure(`Unable to find host with ID: ${host.id}. Please specify a valid host ID.`));
    if ('busy' in claim) throw new InternalError(prepareFailure(clusterBusyText(host.clusterId)));
    try {
      return await startAsync(caller, {
        cmd: api,
        stateMachine: 'host-maintenance',
        input: { op: 'prepare', hostId: host.id },
        instanceType: 'Host',
        instanceId: host.id,
        event: { type: 'MAINT.PREPARE', description: `preparing host: ${host.id} for maintenance`, resourceId: host.id, resourceType: 'Host' },
      });
    } catch (error) {
      // No job runs the preparation: the host takes placements again.
      await transitionResourceState(host.id, 'AdminCancelMaintenance').catch(() => undefined);
      throw error;
    }
  },
});

const cancelHostMaintenanceCommand = defineCommand({
  name: 'cancelHostMaintenance',
  description: 'Cancels host maintenance. Mold: the host is Enabled again at once; VMs that were moved away stay where they are.',
  params: { id: param.uuid('the host ID') },
  roles: ADMINS,
  isasync: true,
  handler: async ({ params, caller }) => {
    const api = 'cancelHostMaintenance';
    const host = await hostParam(api, 'id', params.id);
    if (!isMaintenanceState(host.resourcestate)) throw new InternalError(cancelRefusalText(host));
    return startAsync(caller, {
      cmd: api,
      stateMachine: 'host-maintenance',
      input: { op: 'cancel', hostId: host.id },
      instanceType: 'Host',
      instanceId: host.id,
      event: { type: 'MAINT.CANCEL', description: `canceling maintenance for host: ${host.id}`, resourceId: host.id, resourceType: 'Host' },
    });
  },
});

export const hostMaintenanceCommands = [prepareHostForMaintenanceCommand, cancelHostMaintenanceCommand];
