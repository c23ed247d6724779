// The work of the state machines' lambda:invoke Task states. Each action is one short, idempotent
// step; retries, waiting and compensation stay in the ASL. A task that fails throws one of
// shared/cloudstack/errors.ts's classes, which the state machine's Catch hands to failJob.
import middy from '@middy/core';
import { z } from 'zod';
import { affinityGroupActions, runAffinityGroupAction } from './affinity-groups.ts';
import { agentCommandActions, runAgentCommandTask } from './agent-commands.ts';
import { identityActions, runIdentityTask } from './identity.ts';
import { completeJobAction, failJobAction, stepFunctionsError } from './jobs.ts';
import { networkActions, runNetworkAction } from './networks.ts';
import { oobmActions, runOobmAction } from './oobm.ts';
import { hostHaActions, runHostHaAction } from './host-ha.ts';
import { runTemplateTask, templateActions } from './templates.ts';
import { hostMaintenanceActions, runHostMaintenanceTask } from './host-maintenance.ts';
import { rollingMaintenanceActions, runRollingMaintenanceTask } from './rolling-maintenance.ts';
import { runVmMigrateTask, vmMigrateActions } from './vm-migrate.ts';
import { runVmTask, vmActions } from './vms.ts';
import { runVolumeTask, volumeActions } from './volumes.ts';
import { runVolumeMigrateTask, volumeMigrateActions } from './volume-migrate.ts';
import { runVmEditTask, vmEditActions } from './vms-edit.ts';

const action = z.discriminatedUnion('action', [
  z.object({ action: z.literal('completeJob'), jobId: z.string(), result: z.record(z.string(), z.unknown()) }),
  z.object({ action: z.literal('failJob'), jobId: z.string(), error: stepFunctionsError }),
  ...identityActions,
  ...templateActions,
  ...networkActions,
  ...oobmActions,
  ...hostHaActions,
  ...agentCommandActions,
  ...affinityGroupActions,
  ...vmActions,
  ...vmMigrateActions,
  ...hostMaintenanceActions,
  ...rollingMaintenanceActions,
  ...volumeActions,
  ...volumeMigrateActions,
  ...vmEditActions,
]);

export type TaskAction = z.infer<typeof action>;

async function run(event: unknown) {
  const request = action.parse(event);
  switch (request.action) {
    case 'completeJob':
      return completeJobAction(request.jobId, request.result);
    case 'failJob':
      return failJobAction(request.jobId, request.error);
    case 'prepareDomainDeletion':
    case 'deleteAccountRecords':
    case 'deleteDomainRecords':
    case 'setIdentityState':
      return runIdentityTask(request);
    case 'deleteTemplateRecords':
      return runTemplateTask(request);
    case 'networkCommand':
      return runNetworkAction(request);
    case 'oobmCommand':
      return runOobmAction(request);
    case 'haCommand':
      return runHostHaAction(request);
    case 'prepareAgentCommand':
    case 'finishAgentCommand':
    case 'abortAgentCommand':
      return runAgentCommandTask(request);
    case 'affinityGroupCommand':
      return runAffinityGroupAction(request);
    case 'vmTask':
      return runVmTask(request);
    case 'vmMigrateTask':
      return runVmMigrateTask(request);
    case 'hostMaintenanceTask':
      return runHostMaintenanceTask(request);
    case 'rollingMaintenanceTask':
      return runRollingMaintenanceTask(request);
    case 'volumeTask':
      return runVolumeTask(request);
    case 'volumeMigrateTask':
      return runVolumeMigrateTask(request);
    case 'vmEditTask':
      return runVmEditTask(request);
  }
}

export const handler = middy().handler(run);
