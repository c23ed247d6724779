// Hosts as records (upstream's ListHostsCmd, UpdateHostCmd). Adding a real host belongs to the agent;
// here admins list hosts with upstream's HostResponse fields and change their tags, annotation and
// allocation (Enable/Disable: ResourceState transitions, refused where upstream has none).
import { InternalError, InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { getHost, IllegalTransition, listHostRecords, transitionResourceState, updateHostRecord, type Host } from '../../../shared/db/hosts.ts';
import { getCluster, getPod, getZone } from '../../../shared/db/infrastructure.ts';
import { cloudstackDate } from '../../../shared/db/jobs.ts';
import { settingsFor } from '../../../shared/settings.ts';
import { ADMINS, completedEvent, defineCommand } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { byName, INFRA_READERS, namesOf } from './zones.ts';
import { noSuchEntity } from '../validate.ts';

/** Upstream's DecimalFormat("#.##") of a share, as a percentage. */
function percent(part: number, whole: number): string {
  const value = whole > 0 ? (part / whole) * 100 : 0;
  return `${Number(value.toFixed(2))}%`;
}

interface HostContext {
  zones: Map<string, string>;
  pods: Map<string, string>;
  clusters: Map<string, { name: string; clustertype: string; cpu: number; memory: number }>;
}

/** Upstream's HostResponse (HostJoinDaoImpl.newHostResponse with every detail). */
export function renderHost(host: Host, context: HostContext) {
  const cluster = context.clusters.get(host.clusterId);
  const cpuTotal = host.cpunumber * host.cpuspeed;
  const cpuWithOverprovisioning = cpuTotal * (cluster?.cpu ?? 1);
  const memoryWithOverprovisioning = Math.round(host.memorytotal * (cluster?.memory ?? 1));
  return {
    id: host.id,
    name: host.name,
    state: host.status,
    ...(host.disconnected && { disconnected: host.disconnected }),
    type: host.type,
    ipaddress: host.ipaddress,
    zoneid: host.zoneId,
    zonename: context.zones.get(host.zoneId),
    podid: host.podId,
    podname: context.pods.get(host.podId),
    version: host.version,
    hypervisor: host.hypervisor,
    cpusockets: host.cpusockets,
    cpunumber: host.cpunumber,
    cpuspeed: host.cpuspeed,
    cpuallocated: percent(host.cpuallocated, cpuWithOverprovisioning),
    cpuallocatedvalue: host.cpuallocated,
    cpuallocatedpercentage: percent(host.cpuallocated, cpuWithOverprovisioning),
    cpuallocatedwithoverprovisioning: percent(host.cpuallocated, cpuWithOverprovisioning),
    cpuused: `${Number(host.cpuused.toFixed(2))}%`,
    cpuwithoverprovisioning: String(cpuWithOverprovisioning),
    ...(host.cpuloadaverage !== undefined && { cpuloadaverage: host.cpuloadaverage }),
    networkkbsread: 0,
    networkkbswrite: 0,
    memorytotal: host.memorytotal,
    memorywithoverprovisioning: String(memoryWithOverprovisioning),
    memoryallocated: host.memoryallocated,
    memoryallocatedpercentage: percent(host.memoryallocated, memoryWithOverprovisioning),
    memoryallocatedbytes: host.memoryallocated,
    memoryused: host.memoryused,
    disksizetotal: 0,
    disksizeallocated: 0,
    capabilities: host.capabilities,
    ...(host.lastpinged && { lastpinged: host.lastpinged }),
    clusterid: host.clusterId,
    clustername: cluster?.name,
    clustertype: cluster?.clustertype,
    islocalstorageactive: false,
    created: host.created,
    hosttags: host.hosttags.join(','),
    explicithosttags: host.hosttags.join(','),
    implicithosttags: '',
    istagarule: false,
    resourcestate: host.resourcestate,
    hypervisorversion: host.hypervisorversion,
    hahost: false,
    ...(host.annotation !== undefined && { annotation: host.annotation, lastannotated: host.lastannotated, username: host.annotatedby }),
    encryptionsupported: false,
    instanceconversionsupported: false,
    arch: host.arch,
    hasannotations: host.annotation !== undefined,
  };
}

async function hostContext(hosts: Host[]): Promise<HostContext> {
  const zones = await namesOf(hosts.map((h) => h.zoneId), getZone);
  const pods = await namesOf(hosts.map((h) => h.podId), getPod);
  const clusters = new Map<string, { name: string; clustertype: string; cpu: number; memory: number }>();
  for (const id of new Set(hosts.map((h) => h.clusterId))) {
    const cluster = await getCluster(id);
    if (cluster) {
      // The cluster's over-provisioning factors as they apply to it (cluster scope, else global).
      const scoped = await settingsFor({ clusterId: cluster.id, zoneId: cluster.zoneId });
      clusters.set(id, {
        name: cluster.name,
        clustertype: cluster.clustertype ?? 'CloudManaged',
        cpu: scoped.number('cpu.overprovisioning.factor') || 1,
        memory: scoped.number('mem.overprovisioning.factor') || 1,
      });
    }
  }
  return { zones, pods, clusters };
}

const listHostsCommand = defineCommand({
  name: 'listHosts',
  description: 'Lists hosts.',
  params: {
    id: param.uuid('the id of the host').optional(),
    name: param.string('the name of the host').optional(),
    zoneid: param.uuid('the Zone ID for the host').optional(),
    podid: param.uuid('the Pod ID for the host').optional(),
    clusterid: param.uuid('lists hosts existing in particular cluster').optional(),
    type: param.string('the host type').optional(),
    state: param.string('the state of the host').optional(),
    resourcestate: param.string('list hosts by resource state. Resource state represents current state determined by admin of host, value can be one of [Enabled, Disabled, Unmanaged, PrepareForMaintenance, ErrorInMaintenance, Maintenance, Error]').optional(),
    hypervisor: param.string('hypervisor type of host: XenServer,KVM,VMware,Hyperv,BareMetal,Simulator').optional(),
    arch: param.string('CPU Arch of the host').optional(),
    details: param.list(param.string('detail'), 'comma separated list of host details requested, value can be a list of [ min, all, capacity, events, stats]').optional(),
    ...listParams,
  },
  roles: INFRA_READERS,
  handler: async ({ params, settings }) => {
    const eq = (a: string | undefined, b: string | undefined) => a === undefined || a.toLowerCase() === b?.toLowerCase();
    const matches = (await listHostRecords())
      .filter((h) => eq(params.id, h.id) && eq(params.zoneid, h.zoneId) && eq(params.podid, h.podId) && eq(params.clusterid, h.clusterId))
      .filter((h) => eq(params.name, h.name) && eq(params.type, h.type) && eq(params.state, h.status) && eq(params.resourcestate, h.resourcestate))
      .filter((h) => eq(params.hypervisor, h.hypervisor) && eq(params.arch, h.arch))
      .filter((h) => matchesKeyword(params.keyword, h.name))
      .sort(byName);
    const context = await hostContext(matches);
    return { body: listResponse('host', matches, params, settings, (h) => renderHost(h, context)) };
  },
});

const updateHostCommand = defineCommand({
  name: 'updateHost',
  description: 'Updates a host.',
  params: {
    id: param.uuid('the ID of the host to update'),
    allocationstate: param
      .string('Change resource state of host, valid values are [Enable, Disable]. Operation may failed if host in states not allowing Enable/Disable')
      .optional(),
    hosttags: param.list(param.string('host tag'), 'list of tags to be added to the host').optional(),
    annotation: param.string('Add an annotation to this host', 65535).optional(),
    name: param.string('the new name of the host').optional(),
  },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    const host = await getHost(params.id.toLowerCase());
    if (!host) throw noSuchEntity('updateHost', 'id', params.id);
    let event: 'Enable' | 'Disable' | undefined;
    if (params.allocationstate !== undefined) {
      // Upstream's ResourceState.Event.toEvent: exactly Enable or Disable.
      if (params.allocationstate !== 'Enable' && params.allocationstate !== 'Disable') {
        throw new InvalidParameter(`Invalid allocation state: ${params.allocationstate}, only Enable/Disable are allowed`);
      }
      event = params.allocationstate;
    }
    const changes = {
      ...(params.hosttags !== undefined && { hosttags: [...new Set(params.hosttags)] }),
      ...(params.name !== undefined && { name: params.name }),
      ...(params.annotation !== undefined && { annotation: params.annotation, lastannotated: cloudstackDate(), annotatedby: caller.user.username }),
    };
    let updated: Host | undefined;
    try {
      updated = event ? await transitionResourceState(host.id, event, changes) : await updateHostRecord(host.id, changes);
    } catch (error) {
      // Upstream's resourceStateTransitTo: a CloudRuntimeException (530) naming state and event.
      if (error instanceof IllegalTransition) throw new InternalError(error.message);
      throw error;
    }
    if (!updated) throw noSuchEntity('updateHost', 'id', params.id);
    const context = await hostContext([updated]);
    return {
      body: { host: renderHost(updated, context) },
      events: [completedEvent('HOST.UPDATE', 'updating host', { id: host.id, type: 'Host' }, `Host Id: ${host.id}`)],
    };
  },
});

export const hostCommands = [listHostsCommand, updateHostCommand];
