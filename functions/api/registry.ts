// Every command Mold answers, by name. A command is listed here only when it works end to end.
import { decide } from '../../shared/db/roles.ts';
import { isPublic, type AnyCommand, type Caller } from './command.ts';
import { accountCommands } from './commands/accounts.ts';
import { capabilityCommands } from './commands/capabilities.ts';
import { configurationCommands } from './commands/configurations.ts';
import { domainCommands } from './commands/domains.ts';
import { eventCommands } from './commands/events.ts';
import { jobCommands } from './commands/jobs.ts';
import { networkCommands } from './commands/networks.ts';
import { oobmCommands } from './commands/oobm.ts';
import { hostHaCommands } from './commands/host-ha.ts';
import { osTypeCommands } from './commands/os-types.ts';
import { offeringCommands } from './commands/offerings.ts';
import { roleCommands } from './commands/roles.ts';
import { sessionCommands } from './commands/session.ts';
import { storageCommands } from './commands/storage.ts';
import { templateCommands } from './commands/templates.ts';
import { userCommands } from './commands/users.ts';
import { clusterCommands } from './commands/clusters.ts';
import { hostMaintenanceCommands } from './commands/host-maintenance.ts';
import { rollingMaintenanceCommands } from './commands/rolling-maintenance.ts';
import { hostCommands } from './commands/hosts.ts';
import { podCommands } from './commands/pods.ts';
import { zoneCommands } from './commands/zones.ts';
import { limitCommands } from './commands/limits.ts';
import { capacityCommands } from './commands/capacity.ts';
import { agentCommands } from './commands/agents.ts';
import { alertCommands } from './commands/alerts.ts';
import { affinityGroupCommands } from './commands/affinity-groups.ts';
import { sshKeyPairCommands } from './commands/ssh-keypairs.ts';
import { vmListCommands } from './commands/vms-list.ts';
import { vmCommands } from './commands/vms.ts';
import { volumeCommands } from './commands/volumes.ts';
import { volumeMigrateCommands } from './commands/volume-migrate.ts';
import { vmEditCommands } from './commands/vms-edit.ts';
import { vmMigrateCommands } from './commands/vms-migrate.ts';
import { consoleCommands } from './commands/console.ts';
import { loginPageCommands } from './commands/login-page.ts';
import { publicIpCommands } from './commands/public-ips.ts';
import { infraMetricsCommands } from './commands/infra-metrics.ts';
import { metricsCommands } from './commands/metrics.ts';
import { unmanagedCommands } from './commands/unmanaged.ts';
import { supportedCommands } from './commands/supported.ts';
import { systemVmCommands } from './commands/system-vms.ts';
import { extensionCommands } from './commands/extensions.ts';
import { dedicatedCommands } from './commands/dedicated.ts';
import { resourceIconCommands } from './commands/resource-icons.ts';

export const COMMANDS: AnyCommand[] = [...capabilityCommands, ...sessionCommands, ...roleCommands, ...jobCommands, ...eventCommands, ...domainCommands, ...accountCommands, ...userCommands, ...offeringCommands, ...configurationCommands, ...networkCommands, ...zoneCommands, ...podCommands, ...clusterCommands, ...hostCommands, ...hostMaintenanceCommands, ...rollingMaintenanceCommands, ...storageCommands, ...templateCommands, ...osTypeCommands, ...limitCommands, ...capacityCommands, ...alertCommands, ...agentCommands, ...affinityGroupCommands, ...sshKeyPairCommands, ...vmListCommands, ...vmCommands, ...volumeCommands, ...vmEditCommands, ...consoleCommands, ...loginPageCommands, ...publicIpCommands, ...metricsCommands, ...infraMetricsCommands, ...supportedCommands, ...systemVmCommands, ...extensionCommands, ...dedicatedCommands, ...resourceIconCommands, ...vmMigrateCommands, ...volumeMigrateCommands, ...oobmCommands, ...hostHaCommands, ...unmanagedCommands];

const byName = new Map(COMMANDS.map((command) => [command.name, command]));

/** Command names are case-sensitive, as upstream's API name map is. */
export function findCommand(name: string | undefined): AnyCommand | undefined {
  return name === undefined ? undefined : byName.get(name);
}

/**
 * The caller's role decides by its first matching rule; a command no rule matches is open to the
 * role types its definition names (upstream's DynamicRoleBasedAPIAccessChecker).
 */
export function mayCall(caller: Caller, command: AnyCommand): boolean {
  if (isPublic(command)) return true;
  const decision = decide(caller.role, command.name);
  const openToType = command.roles.includes(caller.role.type);
  // The built-in read-only and support User roles stand for upstream's lists of the User role's
  // APIs: their wildcard allows never reach beyond what Users may call.
  if (decision === 'allow' && caller.role.isdefault && caller.role.type === 'User') return openToType;
  if (decision) return decision === 'allow';
  return openToType;
}
