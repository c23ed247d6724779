// The configuration catalogue: each setting Mold reads is declared once, with its type, default,
// the scopes it may be set at, its description and the values it accepts. Values are overrides
// stored in the table; anything unset is the default.
//
// Where values live: every global override in one item (read with one consistent GetItem a
// request, by loadSettings); the overrides of one zone, cluster, storage pool, account or domain in
// one item each, read only when a scoped value is asked for (settingsFor / Settings.scoped).
//
// Precedence, as upstream's ConfigKey scopes: storage pool → cluster → zone → global, and
// account → domain → global. Only the scopes a setting declares are consulted. An account-scoped
// setting falls back to its domain's value only when enable.account.settings.for.domain is true,
// and a domain's value to its parent domains' only when enable.domain.settings.for.child.domain is.
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from './aws.ts';
import { getAccount, getDomain } from './db/identity.ts';
import { getItem, getItems, tableName } from './db/items.ts';
import { cloudstackDate } from './db/jobs.ts';

export type SettingType = 'Boolean' | 'Integer' | 'Long' | 'Float' | 'String';

/**
 * Upstream's ConfigKey.Scope names, each before the wider ones its values fall back to (upstream's
 * hierarchy: StoragePool → Cluster → Zone → Global, Account → Domain → Global).
 */
export const SCOPES = ['StoragePool', 'Cluster', 'Zone', 'Account', 'Domain'] as const;
export type SettingScope = (typeof SCOPES)[number];

export interface SettingDefinition {
  name: string;
  category: string;
  component: string;
  type: SettingType;
  defaultValue: string;
  description: string;
  /** Scopes besides Global it may be set at (upstream's ConfigKey scope); none means global only. */
  scopes: readonly SettingScope[];
  group: string;
  subgroup: string;
  /** A Select setting: the values it accepts (upstream's Kind.Select options / Config range). */
  options?: readonly string[];
  /** Inclusive bounds of a numeric setting. */
  min?: number;
  max?: number;
  /** Upstream's configValuesForValidation: a positive integer. */
  positive?: boolean;
  /**
   * Greater than 0 and never empty: upstream's overprovisioningFactorsForValidation (and, here,
   * ping.timeout), with their texts.
   */
  greaterThanZero?: boolean;
}

type Declared = Omit<SettingDefinition, 'scopes'> & { scopes?: readonly SettingScope[] };
const define = <const S extends Declared>(setting: S) => ({ scopes: [] as readonly SettingScope[], ...setting }) as S & SettingDefinition;

const ACCESS = 'Access';
const COMPUTE = 'Compute';
const STORAGE = 'Storage';
const MANAGEMENT = 'Management Server';
const INFRA = 'Infrastructure';

const accountLimit = (resource: string, defaultValue: string, description: string) =>
  define({ name: `max.account.${resource}`, category: 'Account Defaults', component: 'ManagementServer', type: 'Long', defaultValue, description, group: ACCESS, subgroup: 'Account' });
const domainLimit = (resource: string, defaultValue: string, description: string) =>
  define({ name: `max.domain.${resource}`, category: 'Domain Defaults', component: 'ManagementServer', type: 'Long', defaultValue, description, group: ACCESS, subgroup: 'Domain' });

export const SETTINGS = [
  // API and sessions.
  define({ name: 'default.page.size', category: 'Advanced', component: 'ManagementServer', type: 'Long', defaultValue: '500', description: 'Default page size for API list* commands', group: MANAGEMENT, subgroup: 'API', min: 1 }),
  define({ name: 'api.throttling.enabled', category: 'Advanced', component: 'ManagementServer', type: 'Boolean', defaultValue: 'false', description: 'Enable/disable Api rate limit', group: MANAGEMENT, subgroup: 'API' }),
  define({ name: 'api.throttling.interval', category: 'Advanced', component: 'ManagementServer', type: 'Integer', defaultValue: '1', description: 'Time interval (in seconds) to reset API count', group: MANAGEMENT, subgroup: 'API', min: 1 }),
  define({ name: 'api.throttling.max', category: 'Advanced', component: 'ManagementServer', type: 'Integer', defaultValue: '25', description: 'Max allowed number of APIs within fixed interval', group: MANAGEMENT, subgroup: 'API', min: 1 }),
  define({ name: 'api.signature.max.expiry', category: 'Advanced', component: 'ApiServer', type: 'Integer', defaultValue: '3600', description: 'How far ahead (seconds) the expires parameter of a signatureVersion=3 request may lie', group: MANAGEMENT, subgroup: 'API', positive: true }),
  define({ name: 'api.slow.request.threshold', category: 'Advanced', component: 'ApiServer', type: 'Integer', defaultValue: '1000', description: 'Milliseconds after which an API request is logged as slow, with its command (Mold)', group: MANAGEMENT, subgroup: 'API', positive: true }),
  define({ name: 'session.timeout', category: 'Advanced', component: 'ApiServer', type: 'Integer', defaultValue: '1800', description: 'Seconds a login session may stay idle before it ends', group: ACCESS, subgroup: 'Account', positive: true }),
  define({ name: 'incorrect.login.attempts.allowed', category: 'Advanced', component: 'ManagementServer', type: 'Integer', defaultValue: '5', description: 'Incorrect login attempts allowed before the user is disabled (when value > 0). If value <=0 users are not disabled after failed login attempts', group: ACCESS, subgroup: 'Account', positive: true }),
  define({ name: 'login.throttle.window', category: 'Advanced', component: 'AccountManager', type: 'Integer', defaultValue: '300', description: 'Seconds over which one user name\'s failed logins from one address are counted; past incorrect.login.attempts.allowed that user name is refused from that address until the window ends (Mold)', group: ACCESS, subgroup: 'Account', positive: true }),
  define({ name: 'enable.account.settings.for.domain', category: 'Advanced', component: 'ConfigurationManager', type: 'Boolean', defaultValue: 'false', description: 'Indicates whether to add account settings for domain. If true, account settings will be added to domain settings, all accounts in the domain will inherit the domain setting if account setting is not set.', group: ACCESS, subgroup: 'Domain' }),
  define({ name: 'enable.domain.settings.for.child.domain', category: 'Advanced', component: 'ConfigurationManager', type: 'Boolean', defaultValue: 'false', description: 'Indicates whether the settings of parent domain should be applied for child domain. If true, the child domain will get value from parent domain if its not configured in child domain else global value is taken.', group: ACCESS, subgroup: 'Domain' }),

  // Virtual machines.
  define({ name: 'vm.destroy.forcestop', category: 'Advanced', component: 'VirtualMachineManager', type: 'Boolean', defaultValue: 'false', description: 'On destroy, force-stop takes this value ', group: COMPUTE, subgroup: 'Virtual Machine' }),
  define({ name: 'expunge.delay', category: 'Advanced', component: 'UserVmManager', type: 'Integer', defaultValue: '86400', description: 'Determines how long (in seconds) to wait before actually expunging destroyed vm. The default value = the default value of expunge.interval', group: COMPUTE, subgroup: 'Virtual Machine' }),
  define({ name: 'expunge.interval', category: 'Advanced', component: 'UserVmManager', type: 'Integer', defaultValue: '86400', description: 'The interval (in seconds) to wait before running the expunge thread.', group: COMPUTE, subgroup: 'Virtual Machine', positive: true }),
  define({ name: 'vm.instancename.flag', category: 'Advanced', component: 'ManagementServer', type: 'Boolean', defaultValue: 'false', description: "If set to true, will set guest VM's name as it appears on the hypervisor, to its hostname. The flag is supported for VMware hypervisor only", group: COMPUTE, subgroup: 'Virtual Machine' }),
  define({ name: 'instance.name', category: 'Advanced', component: 'AgentManager', type: 'String', defaultValue: 'VM', description: 'Name of the deployment instance.', group: COMPUTE, subgroup: 'Virtual Machine' }),
  define({
    name: 'vm.allocation.algorithm',
    category: 'Advanced',
    component: 'DeploymentClusterPlanner',
    type: 'String',
    defaultValue: 'random',
    description: "Order in which hosts within a cluster will be considered for VM/volume allocation. The value can be 'random', 'firstfit', 'userdispersing', 'userconcentratedpod_random', 'userconcentratedpod_firstfit', or 'firstfitleastconsumed'.",
    group: COMPUTE,
    subgroup: 'Virtual Machine',
    options: ['random', 'firstfit', 'userdispersing', 'userconcentratedpod_random', 'userconcentratedpod_firstfit', 'firstfitleastconsumed'],
  }),
  define({ name: 'resourcecount.check.interval', category: 'Advanced', component: 'ResourceLimitService', type: 'Long', defaultValue: '300', description: 'Time (in seconds) to wait before running resource recalculation and fixing tasks like stale resource reservation cleanup. Default is 300 seconds, Setting this to 0 disables execution of the task', group: ACCESS, subgroup: 'Limits', min: 0 }),
  define({ name: 'vm.stats.interval', category: 'Advanced', component: 'ManagementServer', type: 'Integer', defaultValue: '60000', description: 'The interval (in milliseconds) when vm stats are retrieved from agents.', group: MANAGEMENT, subgroup: 'Others', min: 1 }),
  define({ name: 'vm.stats.max.retention.time', category: 'Advanced', component: 'StatsCollector', type: 'Integer', defaultValue: '720', description: 'The maximum time (in minutes) for keeping VM stats records in the database. The VM stats cleanup process will be disabled if this is set to 0 or less than 0.', group: MANAGEMENT, subgroup: 'Others' }),
  define({ name: 'vmsnapshot.max', category: 'Advanced', component: 'VMSnapshotManager', type: 'Integer', defaultValue: '10', description: 'Maximum vm snapshots for a vm', group: STORAGE, subgroup: 'VM Snapshot', min: 0 }),
  define({ name: 'allow.user.expunge.recover.vm', category: 'Advanced', component: 'UserVmManager', type: 'Boolean', defaultValue: 'false', description: 'Determines whether users can expunge or recover their vm', scopes: ['Account'], group: COMPUTE, subgroup: 'Virtual Machine' }),

  // Offerings and volumes.
  define({ name: 'vm.serviceoffering.cpu.cores.max', category: 'Advanced', component: 'ConfigurationManager', type: 'Integer', defaultValue: '0', description: 'Maximum CPU cores for vm service offering. If 0 - no limitation', group: COMPUTE, subgroup: 'Virtual Machine', min: 0 }),
  define({ name: 'vm.serviceoffering.ram.size.max', category: 'Advanced', component: 'ConfigurationManager', type: 'Integer', defaultValue: '0', description: 'Maximum RAM size in MB for vm service offering. If 0 - no limitation', group: COMPUTE, subgroup: 'Virtual Machine', min: 0 }),
  define({ name: 'allow.domain.admins.to.create.tagged.offerings', category: 'Advanced', component: 'ConfigurationManager', type: 'Boolean', defaultValue: 'false', description: 'Allow domain admins to create offerings with tags.', scopes: ['Account'], group: ACCESS, subgroup: 'Account' }),
  define({ name: 'allow.public.user.templates', category: 'Advanced', component: 'TemplateManager', type: 'Boolean', defaultValue: 'true', description: 'If false, users will not be able to create public Templates.', scopes: ['Account'], group: STORAGE, subgroup: 'Images' }),
  define({ name: 'storage.max.volume.size', category: 'Storage', component: 'VolumeOrchestrationService', type: 'Long', defaultValue: '2000', description: 'The maximum size for a volume (in GiB).', group: STORAGE, subgroup: 'Volume', min: 1 }),

  // Capacity.
  define({ name: 'cpu.overprovisioning.factor', category: 'Advanced', component: 'CapacityManager', type: 'Float', defaultValue: '1.0', description: 'Used for CPU overprovisioning calculation; available CPU will be (actualCpuCapacity * cpu.overprovisioning.factor)', scopes: ['Cluster'], group: COMPUTE, subgroup: 'Others', greaterThanZero: true }),
  define({ name: 'mem.overprovisioning.factor', category: 'Advanced', component: 'CapacityManager', type: 'Float', defaultValue: '1.0', description: 'Used for memory overprovisioning calculation', scopes: ['Cluster'], group: COMPUTE, subgroup: 'Others', greaterThanZero: true }),
  define({ name: 'storage.overprovisioning.factor', category: 'Storage', component: 'CapacityManager', type: 'Float', defaultValue: '2', description: 'Used for storage overprovisioning calculation; available storage will be (actualStorageSize * storage.overprovisioning.factor)', scopes: ['StoragePool'], group: STORAGE, subgroup: 'Primary Storage', greaterThanZero: true }),

  // Upstream's HypervisorGuru key: the name the UI shows for the Custom hypervisor. Mold runs KVM only, so
  // nothing here reads it; the UI's Register Template form does (and fails without it, as upstream always has it).
  define({ name: 'hypervisor.custom.display.name', category: 'Advanced', component: 'HypervisorGuru', type: 'String', defaultValue: 'Custom', description: 'Display name for custom hypervisor', group: INFRA, subgroup: 'Hypervisor' }),

  // The agent's heartbeat (upstream's agent ping) and host HA (upstream's KVM HA provider).
  define({ name: 'ping.interval', category: 'Advanced', component: 'AgentManager', type: 'Integer', defaultValue: '60', description: 'Interval to send application level pings to make sure the connection is still working', group: INFRA, subgroup: 'Agent', positive: true }),
  define({ name: 'ping.timeout', category: 'Advanced', component: 'AgentManager', type: 'Float', defaultValue: '2.5', description: 'Multiplier to ping.interval before announcing an agent has timed out', group: INFRA, subgroup: 'Agent', greaterThanZero: true }),
  // Mold's own: how long a short agent command (pingHost, addHost, reconnectHost, updateHostPassword) may take before its job fails.
  define({ name: 'agent.command.timeout', category: 'Advanced', component: 'AgentManager', type: 'Integer', defaultValue: '60', description: 'Seconds the agent has to answer a short command (pingHost, addHost, reconnectHost, updateHostPassword) before the job fails', group: INFRA, subgroup: 'Agent', positive: true }),
  // Mold's own: an agent's lease on its hosts (shared/agent-leases.ts). It renews every quarter of it; one that stops renewing loses its hosts to a live agent of the zone once it lapses.
  define({ name: 'agent.lease.seconds', category: 'Advanced', component: 'AgentManager', type: 'Integer', defaultValue: '20', description: 'Seconds an agent holds its hosts without renewing its lease; past it, another live agent of the zone takes them over with a newer epoch', group: INFRA, subgroup: 'Agent', min: 4, max: 300 }),
  // Mold's own: prepareHostForMaintenance live-migrates a host's VMs this many at a time (upstream migrates them one by one through its HA workers).
  define({ name: 'host.maintenance.parallel.migrations', category: 'Advanced', component: 'ResourceManager', type: 'Integer', defaultValue: '4', description: 'How many VMs prepareHostForMaintenance live-migrates away from a host at once (Mold)', group: COMPUTE, subgroup: 'Host', min: 1, max: 40 }),
  // KVM rolling maintenance (upstream's RollingMaintenanceManager ConfigKeys; startRollingMaintenance).
  define({ name: 'kvm.rolling.maintenance.stage.timeout', category: 'Advanced', component: 'RollingMaintenanceManagerImpl', type: 'Integer', defaultValue: '1800', description: 'Wait timeout (in seconds) for a rolling maintenance stage update from hosts', group: COMPUTE, subgroup: 'Host', positive: true }),
  define({ name: 'kvm.rolling.maintenance.ping.interval', category: 'Advanced', component: 'RollingMaintenanceManagerImpl', type: 'Integer', defaultValue: '10', description: 'Ping interval in seconds between management server and hosts performing stages during rolling maintenance', group: COMPUTE, subgroup: 'Host', positive: true }),
  define({ name: 'kvm.rolling.maintenance.wait.maintenance.timeout', category: 'Advanced', component: 'RollingMaintenanceManagerImpl', type: 'Integer', defaultValue: '1800', description: 'Timeout (in seconds) to wait for a host preparing to enter maintenance mode', group: COMPUTE, subgroup: 'Host', positive: true }),
  // Mold's own: how long a createConsoleEndpoint token opens the agent's console proxy (each opens it once).
  define({ name: 'console.token.validity', category: 'Advanced', component: 'ConsoleAccessManager', type: 'Integer', defaultValue: '60', description: 'Seconds a console token from createConsoleEndpoint stays valid; each token opens one console session', group: INFRA, subgroup: 'Console Proxy', min: 5, max: 3600 }),
  // Out-of-band management (upstream's OutOfBandManagementService and IpmitoolOutOfBandManagementDriver).
  // The agent runs ipmitool (it is on the BMCs' network); it reads these from each command it gets.
  define({ name: 'outofbandmanagement.action.timeout', category: 'Advanced', component: 'OutOfBandManagementService', type: 'Long', defaultValue: '60', description: 'The out of band management action timeout in seconds, configurable by cluster', scopes: ['Cluster'], group: INFRA, subgroup: 'Out-of-Band Management', min: 1 }),
  define({ name: 'outofbandmanagement.sync.poolsize', category: 'Advanced', component: 'OutOfBandManagementService', type: 'Integer', defaultValue: '50', description: 'The out of band management background sync thread pool size', group: INFRA, subgroup: 'Out-of-Band Management', positive: true }),
  define({ name: 'outofbandmanagement.ipmitool.interface', category: 'Advanced', component: 'IpmitoolOutOfBandManagementDriver', type: 'String', defaultValue: 'lanplus', description: 'The out of band management IpmiTool driver interface to use. Valid values are: lan, lanplus', group: INFRA, subgroup: 'Out-of-Band Management', options: ['lan', 'lanplus'] }),
  define({ name: 'outofbandmanagement.ipmitool.path', category: 'Advanced', component: 'IpmitoolOutOfBandManagementDriver', type: 'String', defaultValue: '/usr/bin/ipmitool', description: 'The out of band management ipmitool path used by the IpmiTool driver. Default: /usr/bin/ipmitool.', group: INFRA, subgroup: 'Out-of-Band Management' }),
  define({ name: 'outofbandmanagement.ipmitool.retries', category: 'Advanced', component: 'IpmitoolOutOfBandManagementDriver', type: 'String', defaultValue: '1', description: 'The out of band management IpmiTool driver retries option -R. Default 1.', group: INFRA, subgroup: 'Out-of-Band Management' }),
  // Mold's own: ipmitool's -C. Without it ipmitool 1.8.19 offers suite 17 first, and a BMC that lacks
  // it (OpenIPMI's ipmi_sim, many older BMCs) answers only after a 10 s wait on every call.
  define({ name: 'outofbandmanagement.ipmitool.cipher.suite', category: 'Advanced', component: 'IpmitoolOutOfBandManagementDriver', type: 'Integer', defaultValue: '3', description: "The IPMI v2.0 cipher suite the IpmiTool driver asks for with lanplus (ipmitool's -C); 3 is HMAC-SHA1 with AES-CBC-128, which nearly every BMC offers", group: INFRA, subgroup: 'Out-of-Band Management', min: 0, max: 17 }),
  // Upstream's RedfishOutOfBandManagementDriver. With redfish.ignore.ssl false the agent verifies the BMC's
  // certificate against Node's CA list plus NODE_EXTRA_CA_CERTS in its environment (docs/operations.md).
  define({ name: 'redfish.ignore.ssl', category: 'Advanced', component: 'RedfishOutOfBandManagementDriver', type: 'Boolean', defaultValue: 'false', description: 'Default value is false, ensuring that the client requests validate the certificate when using SSL. If set to true the redfish client will ignore SSL certificate validation when sending requests to a Redfish server.', group: INFRA, subgroup: 'Out-of-Band Management' }),
  define({ name: 'redfish.use.https', category: 'Advanced', component: 'RedfishOutOfBandManagementDriver', type: 'Boolean', defaultValue: 'true', description: 'Use HTTPS/SSL for all connections.', group: INFRA, subgroup: 'Out-of-Band Management' }),
  define({ name: 'redfish.retries', category: 'Advanced', component: 'RedfishOutOfBandManagementDriver', type: 'Integer', defaultValue: '2', description: 'Number of retries allowed if a Redfish REST request experiment connection issues. If set to 0 (zero) there will be no retries.', group: INFRA, subgroup: 'Out-of-Band Management', min: 0 }),
  // Upstream's HighAvailabilityManagerImpl switches, Mold's HA maintenance mode (docs/operations.md): with
  // vm.ha.enabled false (globally, or for a zone: the zone's value wins where it is set) VM HA fences no
  // host, stops no VM of a dead host and restarts none, and says once what it held back.
  define({ name: 'vm.ha.enabled', category: 'Advanced', component: 'HighAvailabilityManager', type: 'Boolean', defaultValue: 'true', description: 'Enable/Disable VM High Availability manager, it is enabled by default. Mold: when disabled (globally, or for a zone), HA fences no host and stops or restarts no VM of a dead host, and alerts once what it held back; enabled again, it acts on the fleet as it then is.', scopes: ['Zone'], group: COMPUTE, subgroup: 'High Availability' }),
  define({ name: 'restart.retry.interval', category: 'Advanced', component: 'HighAvailabilityManager', type: 'Integer', defaultValue: '600', description: 'The time (in seconds) between retries to restart a VM. Mold: an HA restart that fails (no host with room, the start failing) is tried again after this long, up to max.retries starts.', scopes: ['Cluster'], group: COMPUTE, subgroup: 'High Availability', min: 0 }),
  define({ name: 'max.retries', category: 'Advanced', component: 'HighAvailabilityManager', type: 'Integer', defaultValue: '5', description: 'The number of times to try a restart for the different Work-Types: Migrating - VMs off of a host, Destroy - a VM, Stop - a VM for storage pool migration purposes, CheckStop - checks if a VM has been stopped, ForceStop - force a VM to stop even if the states don\'t allow it, Destroy - a VM and HA - restart a VM. Mold: read for HA restarts only (the starts of one recovery, the first included).', scopes: ['Cluster'], group: COMPUTE, subgroup: 'High Availability', min: 1 }),
  define({ name: 'vm.ha.alerts.enabled', category: 'Advanced', component: 'HighAvailabilityManager', type: 'Boolean', defaultValue: 'true', description: 'Enable/Disable alerts for the VM HA operations, it is enabled by default. As upstream, these are the alerts of what VM HA held back while vm.ha.enabled is false.', scopes: ['Zone'], group: COMPUTE, subgroup: 'High Availability' }),
  define({ name: 'kvm.ha.health.check.timeout', category: 'Advanced', component: 'KVMHAConfig', type: 'Long', defaultValue: '10', description: 'The maximum length of time, in seconds, expected for a health check to complete.', scopes: ['Cluster'], group: COMPUTE, subgroup: 'High Availability', min: 1 }),
  define({ name: 'kvm.ha.activity.check.timeout', category: 'Advanced', component: 'KVMHAConfig', type: 'Long', defaultValue: '60', description: 'The maximum length of time, in seconds, expected for an activity check to complete.', scopes: ['Cluster'], group: COMPUTE, subgroup: 'High Availability', min: 1 }),
  define({ name: 'kvm.ha.activity.check.interval', category: 'Advanced', component: 'KVMHAConfig', type: 'Long', defaultValue: '60', description: 'The interval, in seconds, between activity checks.', scopes: ['Cluster'], group: COMPUTE, subgroup: 'High Availability', min: 1 }),
  define({ name: 'kvm.ha.activity.check.max.attempts', category: 'Advanced', component: 'KVMHAConfig', type: 'Long', defaultValue: '10', description: 'The maximum number of activity check attempts to perform before deciding to recover or degrade a resource.', scopes: ['Cluster'], group: COMPUTE, subgroup: 'High Availability', min: 1 }),
  define({ name: 'kvm.ha.degraded.max.period', category: 'Advanced', component: 'KVMHAConfig', type: 'Long', defaultValue: '300', description: 'The maximum length of time, in seconds, a host stays Degraded before it is considered for recovery.', scopes: ['Cluster'], group: COMPUTE, subgroup: 'High Availability', min: 0 }),
  define({ name: 'kvm.ha.recover.wait.period', category: 'Advanced', component: 'KVMHAConfig', type: 'Long', defaultValue: '600', description: 'The maximum length of time, in seconds, to wait for a resource to recover.', scopes: ['Cluster'], group: COMPUTE, subgroup: 'High Availability', min: 0 }),
  define({ name: 'kvm.ha.accepted.problematic.hosts.ratio', category: 'Advanced', component: 'KVMHAConfig', type: 'Float', defaultValue: '0.3', description: "The ratio of problematic Hosts accepted on a Cluster. If a cluster has more than the accepted ratio, HA will not Fence/Recover Hosts; instead, it will notify Admins to check the cluster healthy. A Host is considered problematic if in one of the following states: Error, Alert, Down, Disconnected. Default value is '0.3' (30%). Mold: read by host HA (a host whose HA is enabled): no activity check, so no fence, starts while more than this share of the cluster's hosts are problematic.", scopes: ['Cluster'], group: COMPUTE, subgroup: 'High Availability', greaterThanZero: true }),
  define({ name: 'kvm.ha.fence.timeout', category: 'Advanced', component: 'KVMHAConfig', type: 'Long', defaultValue: '60', description: 'The maximum length of time, in seconds, expected for a fence operation to complete.', scopes: ['Cluster'], group: COMPUTE, subgroup: 'High Availability', min: 1 }),

  // Default resource limits of accounts and domains.
  accountLimit('user.vms', '20', 'The default maximum number of user VMs that can be deployed for an account'),
  accountLimit('public.ips', '20', 'The default maximum number of public IPs that can be consumed by an account'),
  accountLimit('templates', '20', 'The default maximum number of templates that can be deployed for an account'),
  accountLimit('snapshots', '20', 'The default maximum number of snapshots that can be created for an account'),
  accountLimit('volumes', '20', 'The default maximum number of volumes that can be created for an account'),
  accountLimit('networks', '20', 'The default maximum number of networks that can be created for an account'),
  accountLimit('cpus', '40', 'The default maximum number of cpu cores that can be used for an account'),
  accountLimit('memory', '40960', 'The default maximum memory (in MB) that can be used for an account'),
  accountLimit('primary.storage', '200', 'The default maximum primary storage space (in GiB) that can be used for an account'),
  accountLimit('secondary.storage', '400', 'The default maximum secondary storage space (in GiB) that can be used for an account'),
  domainLimit('user.vms', '40', 'The default maximum number of user VMs that can be deployed for a domain'),
  domainLimit('public.ips', '40', 'The default maximum number of public IPs that can be consumed by a domain'),
  domainLimit('templates', '40', 'The default maximum number of templates that can be deployed for a domain'),
  domainLimit('snapshots', '40', 'The default maximum number of snapshots that can be created for a domain'),
  domainLimit('volumes', '40', 'The default maximum number of volumes that can be created for a domain'),
  domainLimit('networks', '40', 'The default maximum number of networks that can be created for a domain'),
  domainLimit('cpus', '80', 'The default maximum number of cpu cores that can be used for a domain'),
  domainLimit('memory', '81920', 'The default maximum memory (in MB) that can be used for a domain'),
  domainLimit('primary.storage', '400', 'The default maximum primary storage space (in GiB) that can be used for a domain'),
  domainLimit('secondary.storage', '800', 'The default maximum secondary storage space (in GiB) that can be used for a domain'),
] as const satisfies readonly SettingDefinition[];

export type SettingName = (typeof SETTINGS)[number]['name'];

const BY_NAME = new Map<string, SettingDefinition>(SETTINGS.map((setting) => [setting.name, setting]));

export function settingDefinition(name: string): SettingDefinition | undefined {
  return BY_NAME.get(name);
}

function parse(definition: SettingDefinition, value: string): unknown {
  switch (definition.type) {
    case 'Boolean':
      return value.toLowerCase() === 'true';
    case 'Integer':
    case 'Long':
    case 'Float':
      return Number(value);
    default:
      return value;
  }
}

// ---------------------------------------------------------------------------------------------
// Validation (upstream's ConfigurationManagerImpl.validateConfigurationValue, its texts).

const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;
const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?$/;

function parsesAs(type: SettingType, value: string | null): boolean {
  if (value === null) return false;
  switch (type) {
    case 'Integer':
      return /^[+-]?\d+$/.test(value) && Number(value) >= INT_MIN && Number(value) <= INT_MAX;
    case 'Long':
      return /^[+-]?\d+$/.test(value) && BigInt(value) >= LONG_MIN && BigInt(value) <= LONG_MAX;
    case 'Float':
      return FLOAT.test(value.trim()) && Number.isFinite(Number.parseFloat(value));
    default:
      return true;
  }
}

const TYPE_WORD: Partial<Record<SettingType, string>> = { Integer: 'integer', Long: 'long', Float: 'float' };

/**
 * Why `value` cannot be the value of `definition` (upstream's text), or undefined when it can.
 * `value` is null when the caller cleared a global value (an empty value or "null").
 */
export function invalidValue(definition: SettingDefinition, value: string | null): string | undefined {
  const { name, type } = definition;
  const word = TYPE_WORD[type];
  if (word && !parsesAs(type, value)) {
    return `There was error in trying to parse value: ${value}. Please enter a valid ${word} value for parameter ${name}`;
  }
  if (value === null) {
    if (type === 'Boolean') return "Please enter either 'true' or 'false'.";
    if (definition.greaterThanZero) return `value cannot be null for the parameter ${name}`;
    return undefined;
  }
  const trimmed = value.trim();
  if (definition.greaterThanZero && Number.parseFloat(trimmed) <= 0) return `${name} should be greater than 0`;
  if (type === 'Boolean') return trimmed === 'true' || trimmed === 'false' ? undefined : "Please enter either 'true' or 'false'.";
  if (definition.positive && Number(trimmed) <= 0) return `Please enter a positive value for the configuration parameter:${name}`;
  if ((definition.min !== undefined || definition.max !== undefined) && (type === 'Integer' || type === 'Long' || type === 'Float')) {
    const number = Number(trimmed.replace(/[fFdD]$/, ''));
    if ((definition.min !== undefined && number < definition.min) || (definition.max !== undefined && number > definition.max)) {
      const range = `${definition.min ?? ''}-${definition.max ?? ''}`;
      return `The provided value is not valid for this configuration. Please enter an integer in the range: [${range}]`;
    }
  }
  if (definition.options && !definition.options.some((option) => option.toLowerCase() === trimmed.toLowerCase())) {
    return `The provided value is not a valid value for this configuration (Options are: [${definition.options.join(',')}]).`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Storage.

// All global overrides live in one item, read consistently with one GetItem a request.
const OVERRIDES_KEY = { pk: 'SETTINGS', sk: 'GLOBAL' };

/** The item holding the overrides of one scope's resource. */
export const scopedKey = (scope: SettingScope, id: string) => ({ pk: 'SETTINGS', sk: `${scope.toUpperCase()}#${id}` });

type Overrides = Map<string, string>;
const overridesOf = (item: { values?: Record<string, string> } | undefined): Overrides => new Map(Object.entries(item?.values ?? {}));

/** The global values of every setting, overrides applied. */
export async function loadSettings(): Promise<Settings> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: OVERRIDES_KEY, ConsistentRead: true }));
  return new Settings(overridesOf(Item as { values?: Record<string, string> } | undefined));
}

/** Sets (a string) or removes (null) one override in an overrides item. */
async function writeOverride(key: { pk: string; sk: string }, name: string, value: string | null): Promise<void> {
  await dynamo().send(
    new UpdateCommand({
      TableName: tableName(),
      Key: key,
      UpdateExpression: 'SET #values = if_not_exists(#values, :empty), updated = :now',
      ExpressionAttributeNames: { '#values': 'values' },
      ExpressionAttributeValues: { ':empty': {}, ':now': cloudstackDate() },
    }),
  );
  await dynamo().send(
    new UpdateCommand({
      TableName: tableName(),
      Key: key,
      UpdateExpression: value === null ? 'REMOVE #values.#name' : 'SET #values.#name = :value',
      ExpressionAttributeNames: { '#values': 'values', '#name': name },
      ...(value !== null && { ExpressionAttributeValues: { ':value': value } }),
    }),
  );
}

/** Stores a global value as given (no validation: updateConfiguration validates). */
export async function storeSetting(name: SettingName, value: string): Promise<void> {
  await writeOverride(OVERRIDES_KEY, name, value);
}

/** Removes the global override: the setting is back to its default. */
export async function clearSetting(name: string): Promise<void> {
  await writeOverride(OVERRIDES_KEY, name, null);
}

/** Stores (a string) or removes (null) the value of a setting for one zone, cluster, pool, account or domain. */
export async function storeScopedSetting(scope: SettingScope, id: string, name: string, value: string | null): Promise<void> {
  await writeOverride(scopedKey(scope, id), name, value);
}

/** The overrides stored for one scope's resource. */
export async function scopedOverrides(scope: SettingScope, id: string): Promise<Map<string, string>> {
  const key = scopedKey(scope, id);
  return overridesOf(await getItem<{ values?: Record<string, string> }>(key.pk, key.sk));
}

// ---------------------------------------------------------------------------------------------
// Reading values.

/** The resources a scoped value is asked for. Unknown wider ones are looked up. */
export interface SettingScopeIds {
  storagePoolId?: string;
  clusterId?: string;
  zoneId?: string;
  accountId?: string;
  domainId?: string;
}

export class Settings {
  protected readonly overrides: Overrides;
  constructor(overrides: Map<string, string>) {
    this.overrides = overrides;
  }
  /** The global value (override or default). */
  raw(name: SettingName): string {
    return this.globalRaw(name);
  }
  number(name: SettingName): number {
    return parse(BY_NAME.get(name)!, this.raw(name)) as number;
  }
  boolean(name: SettingName): boolean {
    return parse(BY_NAME.get(name)!, this.raw(name)) as boolean;
  }
  /** The global value of any catalogued name. */
  globalRaw(name: string): string {
    return this.overrides.get(name) ?? BY_NAME.get(name)!.defaultValue;
  }
  /** Whether the global value is an override. */
  isOverridden(name: string): boolean {
    return this.overrides.has(name);
  }
  /** Values as they apply to a zone, cluster, storage pool, account or domain. */
  scoped(ids: SettingScopeIds): Promise<ScopedSettings> {
    return settingsFor(ids, this);
  }
}

/** A scope's resource and what lies above it, as precedence needs it. */
interface Chain {
  ids: Partial<Record<SettingScope, string>>;
  /** Parent domains of the domain, nearest first. */
  parentDomains: string[];
}

export class ScopedSettings extends Settings {
  private readonly global: Settings;
  private readonly chain: Chain;
  private readonly scopedValues: Map<string, Overrides>;
  constructor(global: Settings, chain: Chain, scopedValues: Map<string, Overrides>) {
    super(new Map());
    this.global = global;
    this.chain = chain;
    this.scopedValues = scopedValues;
  }
  override raw(name: SettingName): string {
    return this.valueOf(name);
  }
  override globalRaw(name: string): string {
    return this.global.globalRaw(name);
  }
  override isOverridden(name: string): boolean {
    return this.global.isOverridden(name);
  }
  private stored(scope: SettingScope, id: string | undefined, name: string): string | undefined {
    return id === undefined ? undefined : this.scopedValues.get(`${scope}#${id}`)?.get(name);
  }
  /** The value that applies, narrowest declared scope first, then wider ones, then global. */
  valueOf(name: string): string {
    const definition = BY_NAME.get(name)!;
    const accountsViaDomain = this.global.globalRaw('enable.account.settings.for.domain') === 'true';
    const childDomainsInherit = this.global.globalRaw('enable.domain.settings.for.child.domain') === 'true';
    for (const scope of SCOPES) {
      const declared =
        definition.scopes.includes(scope) || (scope === 'Domain' && accountsViaDomain && definition.scopes.includes('Account'));
      if (!declared) continue;
      const value = this.stored(scope, this.chain.ids[scope], name);
      if (value !== undefined) return value;
      if (scope === 'Domain' && childDomainsInherit) {
        for (const parent of this.chain.parentDomains) {
          const inherited = this.stored('Domain', parent, name);
          if (inherited !== undefined) return inherited;
        }
      }
    }
    return this.global.globalRaw(name);
  }
}

/**
 * Values as they apply to the given resources: reads the overrides of each of them and of the
 * scopes above them (a cluster's zone, an account's domain) in one batch. Wider resources not given
 * are looked up (the cluster's zone, the pool's cluster and zone, the account's domain).
 */
export async function settingsFor(ids: SettingScopeIds, global?: Settings): Promise<ScopedSettings> {
  const chain: Chain = {
    ids: { StoragePool: ids.storagePoolId, Cluster: ids.clusterId, Zone: ids.zoneId, Account: ids.accountId, Domain: ids.domainId },
    parentDomains: [],
  };
  if (chain.ids.StoragePool && (!chain.ids.Cluster || !chain.ids.Zone)) {
    const pool = await getItem<{ clusterId?: string; zoneId?: string }>(`STORAGEPOOL#${chain.ids.StoragePool}`, 'STORAGEPOOL');
    chain.ids.Cluster ??= pool?.clusterId;
    chain.ids.Zone ??= pool?.zoneId;
  }
  // Read by key here (not through infrastructure.ts) so that module may one day read settings.
  if (chain.ids.Cluster && !chain.ids.Zone) chain.ids.Zone = (await getItem<{ zoneId?: string }>(`CLUSTER#${chain.ids.Cluster}`, 'CLUSTER'))?.zoneId;
  if (chain.ids.Account) {
    const account = await getAccount(chain.ids.Account);
    if (account) {
      chain.ids.Domain ??= account.domainId;
      if (chain.ids.Domain === account.domainId) chain.parentDomains = parentsInTree(account.domainTree, account.domainId);
    }
  }
  if (chain.ids.Domain && chain.parentDomains.length === 0 && !chain.ids.Account) {
    const domain = await getDomain(chain.ids.Domain);
    if (domain) chain.parentDomains = parentsInTree(domain.tree, domain.id);
  }
  const wanted: { scope: SettingScope; id: string }[] = [];
  for (const scope of SCOPES) {
    const id = chain.ids[scope];
    if (id) wanted.push({ scope, id });
  }
  for (const parent of chain.parentDomains) wanted.push({ scope: 'Domain', id: parent });
  const keys = [...wanted.map(({ scope, id }) => scopedKey(scope, id)), ...(global ? [] : [OVERRIDES_KEY])];
  const items = keys.length ? await getItems<{ values?: Record<string, string> }[]>(keys) : [];
  const scopedValues = new Map<string, Overrides>();
  wanted.forEach(({ scope, id }, index) => scopedValues.set(`${scope}#${id}`, overridesOf(items[index])));
  return new ScopedSettings(global ?? new Settings(overridesOf(items[wanted.length])), chain, scopedValues);
}

/** The ids above `id` in a /a/b/c/ tree, nearest first. */
function parentsInTree(tree: string, id: string): string[] {
  const ids = tree.split('/').filter(Boolean);
  return ids.slice(0, ids.indexOf(id) === -1 ? ids.length : ids.indexOf(id)).reverse();
}
