// Host HA (upstream's HA framework for hosts with the KVM provider: ConfigureHAForHostCmd,
// Enable/DisableHAForHost|Cluster|Zone, ListHostHAResourcesCmd, ListHostHAProvidersCmd). Admins only,
// as upstream. The commands keep the configuration (the host's provider and switch, the cluster's and
// zone's switches: shared/host-ha-config.ts); the HA state they show is the sweeper's host HA pass's
// to move. configure and the switches are async as upstream and run ha-command
// (functions/tasks/host-ha.ts); what upstream finds wrong inside its job (an unknown provider, a host
// without one) is refused here, before any job, with upstream's code and text.
import { InternalError, InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { param } from '../../../shared/cloudstack/params.ts';
import { listBody } from '../../../shared/cloudstack/render.ts';
import { listHostRecords } from '../../../shared/db/hosts.ts';
import { haNotConfigured, HOST_HA_PROVIDERS, hostHaProvider, renderHostHa } from '../../../shared/host-ha-config.ts';
import { startAsync } from '../async.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { hostParam } from './hosts.ts';
import { SCOPE_ID_PARAM, scopeRecord, startSwitch, type SwitchScope } from './switch-scopes.ts';

const STATE_MACHINE = 'ha-command';

/** Upstream's HAResource.ResourceSubType: what listHostHAProviders takes, by its exact name. */
const RESOURCE_SUBTYPES = ['KVM', 'Simulator', 'Unknown'] as const;

const configureCommand = defineCommand({
  name: 'configureHAForHost',
  description: 'Configures HA for a host. Mold: provider KVMHAProvider (any case), the only one; the host keeps its HA switch (off for a new configuration).',
  since: '4.11',
  params: {
    hostid: param.uuid('ID of the host'),
    provider: param.string('HA provider'),
  },
  roles: ADMINS,
  isasync: true,
  handler: async ({ params, caller }) => {
    const host = await hostParam('configureHAForHost', 'hostid', params.hostid);
    const provider = hostHaProvider(params.provider);
    // Mold's hosts are all KVM, the provider's hypervisor: upstream's "Incompatible haprovider" cannot arise.
    if (!provider) throw new InternalError(`Given HA provider [${params.provider}] does not exist.`);
    return startAsync(caller, {
      cmd: 'configureHAForHost',
      stateMachine: STATE_MACHINE,
      input: { op: 'configure', args: { hostId: host.id, provider } },
      instanceType: 'Host',
      instanceId: host.id,
      event: { type: 'HA.RESOURCE.CONFIGURE', description: `Configuring HA for host with ID: ${host.id}`, resourceId: host.id, resourceType: 'Host' },
    });
  },
});

/** Upstream's event descriptions, word for word (they differ between commands). */
const DESCRIPTIONS: Record<SwitchScope, [enabling: string, disabling: string]> = {
  Host: ['Enabling HA for host with ID: ', 'Disabling HA for host with ID: '],
  Cluster: ['Enable HA for cluster with ID: ', 'Disabling HA for cluster with ID: '],
  Zone: ['Enabling HA for zone with ID: ', 'Disabling HA for zone with ID: '],
};

function switchCommand(enable: boolean, scope: SwitchScope) {
  const name = `${enable ? 'enable' : 'disable'}HAFor${scope}`;
  const idParam = SCOPE_ID_PARAM[scope];
  return defineCommand({
    name,
    description: scope === 'Host' ? `${enable ? 'Enables' : 'Disables'} HA for a host` : `${enable ? 'Enables' : 'Disables'} HA ${scope.toLowerCase()}-wide`,
    since: '4.11',
    params: { [idParam]: param.uuid(`ID of the ${scope.toLowerCase()}`) } as Record<string, ReturnType<typeof param.uuid>>,
    roles: ADMINS,
    isasync: true,
    handler: async ({ params, caller }) => {
      const record = await scopeRecord(name, scope, (params as Record<string, string>)[idParam]!);
      if (scope === 'Host' && !record.ha) throw new InvalidParameter(haNotConfigured(record.id));
      return startSwitch(caller, name, STATE_MACHINE, { scope, id: record.id, enabled: enable }, {
        type: enable ? 'HA.RESOURCE.ENABLE' : 'HA.RESOURCE.DISABLE',
        description: `${DESCRIPTIONS[scope][enable ? 0 : 1]}${record.id}`,
      });
    },
  });
}

const listResourcesCommand = defineCommand({
  name: 'listHostHAResources',
  description: 'Lists host HA resources: the hosts with HA configured.',
  since: '4.11',
  params: { hostid: param.uuid('List by host ID').optional() },
  roles: ADMINS,
  handler: async ({ params }) => {
    const hosts = params.hostid ? [await hostParam('listHostHAResources', 'hostid', params.hostid)] : await listHostRecords();
    const configured = hosts.filter((host) => host.ha);
    return { body: listBody('hostha', configured.map((host) => ({ hostid: host.id, ...renderHostHa(host) }))) };
  },
});

const listProvidersCommand = defineCommand({
  name: 'listHostHAProviders',
  description: 'Lists HA providers',
  since: '4.11',
  params: { hypervisor: param.string('Hypervisor type of the resource') },
  roles: ADMINS,
  handler: async ({ params }) => {
    // Upstream's ResourceSubType.valueOf: the exact name.
    if (!(RESOURCE_SUBTYPES as readonly string[]).includes(params.hypervisor)) {
      throw new InvalidParameter(`Invalid or unsupported host hypervisor type provided. Supported types are: [${RESOURCE_SUBTYPES.join(', ')}]`);
    }
    const providers = Object.values(HOST_HA_PROVIDERS).filter((provider) => provider.hypervisor === params.hypervisor);
    return { body: listBody('haprovider', providers.map((provider) => ({ haprovider: provider.name }))) };
  },
});

export const hostHaCommands = [
  configureCommand,
  switchCommand(true, 'Host'),
  switchCommand(false, 'Host'),
  switchCommand(true, 'Cluster'),
  switchCommand(false, 'Cluster'),
  switchCommand(true, 'Zone'),
  switchCommand(false, 'Zone'),
  listResourcesCommand,
  listProvidersCommand,
];
