// Hosts (upstream's ListHostsCmd, UpdateHostCmd, AddHostCmd, ReconnectHostCmd, DeleteHostCmd,
// UpdateHostPasswordCmd, and Mold's own pingHost). Admins list hosts with upstream's HostResponse
// fields and change their tags, annotation and allocation (Enable/Disable: ResourceState
// transitions, refused where upstream has none). Reaching a host is the zone's agent's work: addHost,
// reconnectHost, updateHostPassword and pingHost run as jobs through the agent-command state
// machine (functions/tasks/agent-commands.ts); addHost, synchronous upstream, waits for its job. A password is sealed to the agent's certificate here,
// before the job starts, so no record, log or execution history ever holds it.
import { randomUUID } from 'node:crypto';
import { sealToAgent } from '../../../shared/agent/sealing.ts';
import { InternalError, InvalidParameter, ResourceUnavailable } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { agentForZone, getAgent, type Agent } from '../../../shared/db/agents.ts';
import {
  deleteHostRecord,
  getHost,
  IllegalTransition,
  listHostRecords,
  transitionResourceState,
  updateHostRecord,
  type Host,
} from '../../../shared/db/hosts.ts';
import { getCluster, getPod, getZone, listClusters } from '../../../shared/db/infrastructure.ts';
import { cloudstackDate } from '../../../shared/db/jobs.ts';
import { releaseHostCapacity } from '../../../shared/db/capacity.ts';
import { listVmRecords, transitionVm, type VirtualMachine, type VmState } from '../../../shared/db/vms.ts';
import { startJob } from '../../../shared/orchestration.ts';
import { renderOobm } from '../../../shared/oobm.ts';
import { renderHostHa } from '../../../shared/host-ha-config.ts';
import { settingsFor } from '../../../shared/settings.ts';
import { forcedDeleteStep, haDisabledVmAlert, type ForcedDeleteStep } from '../../../shared/vm-ha.ts';
import { ALERT_TYPES, createAlert } from '../../../shared/db/alerts.ts';
import { actorOf } from '../actor.ts';
import { runToEnd, startAsync } from '../async.ts';
import { ADMINS, completedEvent, defineCommand } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { allocationState, byName, clusterParam, INFRA_READERS, namesOf, podParam, zoneParam } from './zones.ts';
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
    // Kept to the millisecond (reports may come more than once a second), shown as upstream's dates.
    ...(host.lastpinged && { lastpinged: cloudstackDate(new Date(host.lastpinged)) }),
    clusterid: host.clusterId,
    clustername: cluster?.name,
    clustertype: cluster?.clustertype,
    islocalstorageactive: false,
    created: host.created,
    hosttags: host.hosttags.join(','),
    explicithosttags: host.hosttags.join(','),
    implicithosttags: '',
    istagarule: false,
    outofbandmanagement: renderOobm(host),
    hostha: renderHostHa(host),
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

export async function hostContext(hosts: Host[]): Promise<HostContext> {
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
    annotation: param.text('Add an annotation to this host', 65535).optional(),
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

// ---- reaching hosts through the zone's agent ----

export const ADDRESS = /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f:]+|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*)$/i;

/**
 * The address and SSH port a host URL names. Upstream's KVM discoverer takes `http://<address>`;
 * Mold also takes `ssh://<address>[:port]` and the bare address (the port of an http URL is not
 * SSH's, so it is 22 there).
 */
export function hostAddress(url: string): { address: string; port: number } {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'ssh' && scheme !== 'http') {
    throw new InvalidParameter(`Invalid parameter url value=${url}: the scheme must be ssh:// or http://, or the address given alone`);
  }
  let parsed: URL;
  try {
    parsed = new URL(scheme ? `ssh://${url.slice(scheme.length + 3)}` : `ssh://${url}`);
  } catch {
    throw new InvalidParameter(`Invalid parameter url value=${url}: ${url} is not a valid uri`);
  }
  const address = parsed.hostname.replace(/^\[|\]$/g, '');
  if (!address || !ADDRESS.test(address) || (parsed.pathname !== '' && parsed.pathname !== '/') || parsed.username || parsed.search) {
    throw new InvalidParameter(`Invalid parameter url value=${url}: it must name the host's address, as ssh://<address>[:port], http://<address> or <address>`);
  }
  const port = scheme !== 'http' && parsed.port ? Number(parsed.port) : 22;
  return { address: address.toLowerCase(), port };
}

/** The agent that manages `host` (it added it and holds its key), Enabled. */
export async function agentOfHost(host: Host): Promise<Agent> {
  if (!host.agentId) {
    throw new ResourceUnavailable(`Host ${host.name} (${host.id}) has no agent: it was not added through one. Delete it and add it again with addHost.`);
  }
  const agent = await getAgent(host.agentId);
  if (!agent || agent.state !== 'Enabled') {
    throw new ResourceUnavailable(`The agent of host ${host.name} (${host.id}) is ${agent ? 'revoked' : 'gone'}; add the host again through an enrolled agent of its zone`);
  }
  return agent;
}

export async function hostParam(api: string, name: string, id: string): Promise<Host> {
  const host = await getHost(id.toLowerCase());
  if (!host) throw noSuchEntity(api, name, id);
  return host;
}

const addHostCommand = defineCommand({
  name: 'addHost',
  description:
    'Adds a new host. Mold: the zone\'s agent reaches the host over SSH (with the password, or with its own key when that is already installed), checks libvirt and qemu, installs its own SSH key and gathers the facts the host record is made of; the password is sealed to the agent and never stored. The host joins an existing cluster (clusterid, or clustername of a cluster in the pod). The answer waits for that work (a job of its own) within the API\'s time limit; past it, it fails with 530 naming the job, which goes on.',
  params: {
    zoneid: param.uuid('the Zone ID for the host'),
    podid: param.uuid('the Pod ID for the host'),
    clusterid: param.uuid('the cluster ID for the host').optional(),
    clustername: param.string('the cluster name for the host').optional(),
    url: param.string('the host URL: ssh://<address>[:port], http://<address> or the address alone'),
    username: param.string('the username for the host; required to be passed for hypervisors other than VMWare').optional(),
    password: param.text('the password for the host; required to be passed for hypervisors other than VMWare. Mold: optional when the agent\'s key is already on the host').optional(),
    hypervisor: param.string('hypervisor type of the host'),
    allocationstate: param.string('Allocation state of this Host for allocation of new resources').optional(),
    hosttags: param.list(param.string('host tag'), 'list of tags to be added to the host').optional(),
  },
  roles: ADMINS,
  handler: async ({ params, caller, deadline }) => {
    const api = 'addHost';
    const zone = await zoneParam(api, 'zoneid', params.zoneid);
    const pod = await podParam(api, 'podid', params.podid);
    if (pod.zoneId !== zone.id) throw new InvalidParameter(`Pod with specified podId${pod.id} doesn't belong to the zone with specified zoneId${zone.id}`);
    if (params.clusterid !== undefined && params.clustername !== undefined) throw new InvalidParameter("Can't specify cluster by both id and name");
    if (!params.username?.trim()) throw new InvalidParameter('Username need to be provided.');
    if (params.hypervisor.toUpperCase() !== 'KVM') throw new InvalidParameter(`Do not support HypervisorType ${params.hypervisor} for ${params.url}`);
    let cluster;
    if (params.clusterid !== undefined) {
      cluster = await clusterParam(api, 'clusterid', params.clusterid);
      if (cluster.podId !== pod.id) throw new InvalidParameter(`Cluster with specified clusterid ${cluster.id} doesn't belong to the pod with specified podId ${pod.id}`);
    } else if (params.clustername !== undefined) {
      cluster = (await listClusters({ zoneId: zone.id, podId: pod.id })).find((c) => c.name === params.clustername);
      if (!cluster) throw new InvalidParameter(`There is no cluster named ${params.clustername} (clustername) in pod ${pod.name}: Mold adds hosts to existing clusters (addCluster)`);
    } else {
      throw new InvalidParameter('Either clusterid or clustername is required: Mold adds hosts to existing clusters (addCluster)');
    }
    const resourcestate = allocationState(params.allocationstate) ?? 'Enabled';
    const { address, port } = hostAddress(params.url);
    const existing = (await listHostRecords({ zoneId: zone.id })).find((host) => host.ipaddress === address);
    if (existing) throw new InvalidParameter(`A host with address ${address} (url) already exists in zone ${zone.name}: ${existing.name} (${existing.id})`);
    const agent = await agentForZone(zone.id);
    if (!agent) {
      throw new ResourceUnavailable(`No agent is enrolled in zone ${zone.name} (${zone.id}): enrol one (createAgentEnrollmentToken, then mold-agent enrol) before adding hosts`);
    }
    const hostId = randomUUID();
    // Upstream's AddHostCmd is synchronous and its clients (the UI's Add Host form and zone wizard,
    // Ansible's cs_host) read addhostresponse.host[0] from the answer; the work is the agent's, as a job.
    const added = await runToEnd(caller, {
      cmd: api,
      stateMachine: 'agent-command',
      input: {
        op: 'addHost',
        args: {
          agentId: agent.id,
          hostId,
          zoneId: zone.id,
          podId: pod.id,
          clusterId: cluster.id,
          address,
          port,
          username: params.username.trim(),
          // Sealed before the execution starts: its input and history hold only the ciphertext.
          ...(params.password !== undefined && { password: sealToAgent(agent.certificate, params.password) }),
          hosttags: [...new Set(params.hosttags ?? [])],
          allocationstate: resourcestate,
        },
      },
      instanceType: 'Host',
      instanceId: hostId,
      event: { type: 'HOST.ADD', description: `adding host at ${address} to cluster ${cluster.name}`, resourceId: hostId, resourceType: 'Host' },
    }, deadline, (jobid) => `The host at ${address} is still being added after the API's time limit; its job ${jobid} goes on (queryAsyncJobResult, listHosts)`);
    // Upstream's ListResponse of the one host.
    return { body: { count: 1, ...added.body } };
  },
});

const reconnectHostCommand = defineCommand({
  name: 'reconnectHost',
  description: 'Reconnects a host. Mold: its agent connects to it again over SSH with its own key and gathers its facts again; the host comes back Up.',
  params: { id: param.uuid('the host ID') },
  roles: ADMINS,
  isasync: true,
  handler: async ({ params, caller }) => {
    const host = await hostParam('reconnectHost', 'id', params.id);
    await agentOfHost(host);
    return startAsync(caller, {
      cmd: 'reconnectHost',
      stateMachine: 'agent-command',
      input: { op: 'reconnectHost', args: { hostId: host.id } },
      instanceType: 'Host',
      instanceId: host.id,
      event: { type: 'HOST.RECONNECT', description: `reconnecting host: ${host.id}`, resourceId: host.id, resourceType: 'Host' },
    });
  },
});

/** Upstream's ResourceManagerImpl.canDeleteHost: in Maintenance (prepareHostForMaintenance emptied it) or Degraded. */
const deletable = (host: Host) => host.resourcestate === 'Maintenance' || host.resourcestate === 'Degraded';

const deleteHostCommand = defineCommand({
  name: 'deleteHost',
  description: 'Deletes a host. Mold: its agent stops watching it and removes its key from it.',
  params: {
    id: param.uuid('the host ID'),
    forced: param.boolean(
      'Force delete the host. All HA enabled vms running on the host will be put to HA; HA disabled ones will be stopped. Mold: HA VMs are put to HA only when the host does not answer (Down, Alert, Disconnected: the forced delete is your word that it is dead) and vm.ha.enabled is true in its zone; otherwise they are stopped too. Domains still running are destroyed when the agent forgets the host',
    ).optional(),
    forcedestroylocalstorage: param.boolean('Force destroy local storage on this host. All VMs created on this local storage will be destroyed').optional(),
  },
  roles: ADMINS,
  handler: async ({ params }) => {
    const host = await hostParam('deleteHost', 'id', params.id);
    if (!deletable(host) && !params.forced) {
      throw new InternalError(`Host ${host.id} cannot be deleted as it is not in maintenance mode. Either put the host into maintenance or perform a forced deletion.`);
    }
    const handled = params.forced ? await handVmsOfDeletedHost(host) : [];
    try {
      await deleteHostRecord(host);
    } catch (error) {
      // Deleted by a concurrent call.
      if (!(await getHost(host.id))) throw noSuchEntity('deleteHost', 'id', params.id);
      throw error;
    }
    return {
      body: { success: true },
      events: [
        ...handled.map(({ vm, step }) =>
          completedEvent('VM.STOP', 'stopping Vm', { id: vm.id, type: 'VirtualMachine' }, `Vm Id: ${vm.id} as a part of deleteHost id=${host.id}${step.kind === 'restart' ? ': handed to HA, to be started on another host' : step.held ? `: not handed to HA, ${step.held}` : ''}`),
        ),
        completedEvent('HOST.DELETE', 'deleting host', { id: host.id, type: 'Host' }, `Host Id: ${host.id}`),
      ],
    };
  },
});

/** The states in which a VM occupies its host. */
const OCCUPYING: VmState[] = ['Starting', 'Running', 'Stopping', 'Migrating', 'Error'];

/**
 * deleteHost forced on a host that still holds VMs, as upstream's doDeleteHost: each HA VM that runs is
 * handed to HA (Stopped and flagged haRestart: the sweeper's HA pass starts it on another host, the
 * planner honouring capacity, tags and affinity), every other VM is Stopped (shared/vm-ha.ts
 * forcedDeleteStep says which, and when an HA VM is not handed over). The records first (off the host,
 * its capacity there released; a migration under way gives its target's reservation back); the
 * domains go when the agent forgets the host (agent/reporter.ts destroys what Mold ran there before it
 * removes its keys), if it can still reach it.
 */
async function handVmsOfDeletedHost(host: Host): Promise<{ vm: VirtualMachine; step: ForcedDeleteStep }[]> {
  const zone = await settingsFor({ zoneId: host.zoneId });
  const haEnabled = zone.boolean('vm.ha.enabled');
  const handled: { vm: VirtualMachine; step: ForcedDeleteStep }[] = [];
  for (const vm of await listVmRecords({ hostId: host.id, states: OCCUPYING })) {
    const step = forcedDeleteStep(vm, host.status, haEnabled);
    const moved = await transitionVm(
      vm.id,
      [vm.state],
      'Stopped',
      { hostId: undefined, lastHostId: undefined, migrateToHostId: undefined, migrateJobId: undefined, ...(step.kind === 'restart' && { haRestart: true }) },
      { hostId: host.id },
    );
    if (!moved) continue;
    await releaseHostCapacity(host.id, vm);
    if (vm.state === 'Migrating' && vm.migrateToHostId) {
      await releaseHostCapacity(vm.migrateToHostId, vm);
    }
    if (step.kind === 'stop' && step.held && !haEnabled && zone.boolean('vm.ha.alerts.enabled')) {
      await createAlert({ alertType: ALERT_TYPES.USERVM, ...haDisabledVmAlert(vm), zoneId: vm.zoneId, podId: host.podId, clusterId: host.clusterId, resourceId: vm.id, resourceType: 'VirtualMachine' });
    }
    handled.push({ vm: moved, step });
  }
  return handled;
}

const updateHostPasswordCommand = defineCommand({
  name: 'updateHostPassword',
  description:
    'Update password of a host/pool on management server. Mold: asynchronous and per host (hostid): the host\'s agent logs in with the new password (after setting it on the host with update_passwd_on_host) and installs its key again; the password is sealed to the agent and never stored.',
  params: {
    hostid: param.uuid('The host ID').optional(),
    update_passwd_on_host: param.boolean('If the password should also be updated on the hosts').optional(),
    username: param.string('The username for the host/cluster'),
    password: param.text('The new password for the host/cluster'),
  },
  roles: ADMINS,
  isasync: true,
  handler: async ({ params, caller }) => {
    if (params.hostid === undefined) throw new InvalidParameter('You should provide an host id.');
    const host = await hostParam('updateHostPassword', 'hostid', params.hostid);
    const username = params.username.replace(/\s/g, '');
    if (!username) throw new InvalidParameter('Username should be non empty string');
    const agent = await agentOfHost(host);
    return startAsync(caller, {
      cmd: 'updateHostPassword',
      stateMachine: 'agent-command',
      input: {
        op: 'updateHostPassword',
        args: { agentId: agent.id, hostId: host.id, username, password: sealToAgent(agent.certificate, params.password), setOnHost: params.update_passwd_on_host ?? false },
      },
      instanceType: 'Host',
      instanceId: host.id,
      event: { type: 'HOST.UPDATE', description: `updating the password of host ${host.id}`, resourceId: host.id, resourceType: 'Host' },
    });
  },
});

const pingHostCommand = defineCommand({
  name: 'pingHost',
  description:
    "Mold's own: runs `true` on a host through its agent (API, Step Functions, the agent's queue, SSH and back), the round trip of the command channel. Records no event.",
  params: { id: param.uuid('the host ID') },
  roles: ADMINS,
  isasync: true,
  handler: async ({ params, caller }) => {
    const host = await hostParam('pingHost', 'id', params.id);
    const agent = await agentOfHost(host);
    const job = await startJob({ cmd: 'pingHost', actor: actorOf(caller), jobinstancetype: 'Host', jobinstanceid: host.id }, 'agent-command', {
      op: 'pingHost',
      args: { agentId: agent.id, host: { hostId: host.id, address: host.ipaddress, port: host.port ?? 22, username: host.username ?? 'root' }, name: host.name },
    });
    return { body: { jobid: job.jobid } };
  },
});

export const hostCommands = [listHostsCommand, updateHostCommand, addHostCommand, reconnectHostCommand, deleteHostCommand, updateHostPasswordCommand, pingHostCommand];
