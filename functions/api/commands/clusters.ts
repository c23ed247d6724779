// Clusters (upstream's AddClusterCmd, ListClustersCmd, UpdateClusterCmd, DeleteClusterCmd): KVM
// hosts of one pod that share primary storage. Mold manages its clusters itself (CloudManaged) and
// only KVM hosts.
import { InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import {
  clusterContents,
  createCluster,
  deleteClusterRecord,
  getPod,
  getZone,
  Gone,
  listClusters,
  NameInUse,
  NotEmpty,
  updateCluster,
  type Cluster,
  type Pod,
} from '../../../shared/db/infrastructure.ts';
import { settingsFor } from '../../../shared/settings.ts';
import { ADMINS, completedEvent, defineCommand } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { allocationState, byName, clusterParam, INFRA_READERS, inUse, namesOf, podParam, switchDetails, zoneParam } from './zones.ts';

const ARCHES = ['x86_64', 'aarch64'] as const;

/** The cluster's cpu/mem.overprovisioning.factor (cluster scope, else global): upstream's ratios. */
export async function overcommitRatios(cluster: Cluster): Promise<{ cpu: string; memory: string }> {
  const scoped = await settingsFor({ clusterId: cluster.id, zoneId: cluster.zoneId });
  return { cpu: scoped.raw('cpu.overprovisioning.factor'), memory: scoped.raw('mem.overprovisioning.factor') };
}

/** Upstream's ClusterResponse. */
export function renderCluster(cluster: Cluster, names: { zone?: string; pod?: string }, ratios?: { cpu: string; memory: string }) {
  return {
    id: cluster.id,
    name: cluster.name,
    podid: cluster.podId,
    podname: names.pod,
    zoneid: cluster.zoneId,
    zonename: names.zone,
    hypervisortype: cluster.hypervisor ?? 'KVM',
    clustertype: cluster.clustertype ?? 'CloudManaged',
    allocationstate: cluster.allocationstate,
    managedstate: cluster.managedstate ?? 'Managed',
    cpuovercommitratio: ratios?.cpu ?? cluster.cpuovercommitratio ?? '1.0',
    memoryovercommitratio: ratios?.memory ?? cluster.memoryovercommitratio ?? '1.0',
    arch: cluster.arch ?? 'x86_64',
    hasannotations: false,
    ...switchDetails(cluster),
  };
}

async function renderClusters(clusters: Cluster[]) {
  const zones = await namesOf(clusters.map((c) => c.zoneId), getZone);
  const pods = await namesOf(clusters.map((c) => c.podId), getPod);
  const ratios = new Map(await Promise.all(clusters.map(async (c) => [c.id, await overcommitRatios(c)] as const)));
  return new Map(clusters.map((c) => [c.id, renderCluster(c, { zone: zones.get(c.zoneId), pod: pods.get(c.podId) }, ratios.get(c.id))]));
}

function checkHypervisor(value: string): 'KVM' {
  if (value.toLowerCase() !== 'kvm') throw new InvalidParameter(`Hypervisor type ${value} is not supported: Mold manages KVM hosts only`);
  return 'KVM';
}

function checkClusterType(value: string): 'CloudManaged' {
  if (value.toLowerCase() !== 'cloudmanaged') throw new InvalidParameter(`Cluster type ${value} is not supported: KVM clusters are CloudManaged`);
  return 'CloudManaged';
}

function checkArch(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const arch = ARCHES.find((a) => a === value.toLowerCase());
  if (!arch) throw new InvalidParameter(`Invalid arch: ${value}. Valid options are: ${ARCHES.join(', ')}`);
  return arch;
}

const duplicateCluster = (name: string, pod: Pod) => new InvalidParameter(`A cluster with name ${name} already exists in pod ${pod.name}`);

const addClusterCommand = defineCommand({
  name: 'addCluster',
  description: 'Adds a new cluster',
  params: {
    clustername: param.string('the cluster name'),
    zoneid: param.uuid('the Zone ID for the cluster'),
    podid: param.uuid('the Pod ID for the host'),
    hypervisor: param.string('hypervisor type of the cluster: XenServer,KVM,VMware,Hyperv,BareMetal,Simulator,Ovm3'),
    clustertype: param.string('type of the cluster: CloudManaged, ExternalManaged'),
    allocationstate: param.string('Allocation state of this cluster for allocation of new resources').optional(),
    arch: param.string('the CPU arch of the cluster. Valid options are: x86_64, aarch64').optional(),
  },
  roles: ADMINS,
  handler: async ({ params }) => {
    const zone = await zoneParam('addCluster', 'zoneid', params.zoneid);
    const pod = await podParam('addCluster', 'podid', params.podid);
    if (pod.zoneId !== zone.id) throw new InvalidParameter("Pod with specified podId doesn't belong to the zone with specified zoneId");
    const hypervisor = checkHypervisor(params.hypervisor);
    const clustertype = checkClusterType(params.clustertype);
    const arch = checkArch(params.arch) ?? 'x86_64';
    const state = allocationState(params.allocationstate) ?? 'Enabled';
    const siblings = await listClusters({ zoneId: zone.id, podId: pod.id });
    if (siblings.some((c) => c.name.toLowerCase() === params.clustername.toLowerCase())) throw duplicateCluster(params.clustername, pod);
    const cluster = await createCluster(pod, {
      name: params.clustername,
      allocationstate: state,
      hypervisor,
      clustertype,
      managedstate: 'Managed',
      cpuovercommitratio: '1.0',
      memoryovercommitratio: '1.0',
      arch,
    }).catch((error) => {
      if (error instanceof NameInUse) throw duplicateCluster(params.clustername, pod);
      if (error instanceof Gone) throw new InvalidParameter(`Unable to find pod by id ${pod.id}`);
      throw error;
    });
    // Upstream answers addCluster with a list of the one cluster.
    return {
      body: { count: 1, cluster: [renderCluster(cluster, { zone: zone.name, pod: pod.name }, await overcommitRatios(cluster))] },
      events: [completedEvent('CLUSTER.CREATE', 'creating cluster', { id: cluster.id, type: 'Cluster' }, `Cluster Name: ${cluster.name}`)],
    };
  },
});

const listClustersCommand = defineCommand({
  name: 'listClusters',
  description: 'Lists clusters.',
  params: {
    id: param.uuid('lists clusters by the cluster ID').optional(),
    name: param.string('lists clusters by the cluster name').optional(),
    podid: param.uuid('lists clusters by Pod ID').optional(),
    zoneid: param.uuid('lists clusters by Zone ID').optional(),
    hypervisor: param.string('lists clusters by hypervisor type').optional(),
    clustertype: param.string('lists clusters by cluster type').optional(),
    allocationstate: param.string('lists clusters by allocation state').optional(),
    managedstate: param.string('whether this cluster is managed by cloudstack').optional(),
    arch: param.string('CPU arch of the clusters').optional(),
    showcapacities: param.boolean('flag to display the capacity of the clusters').optional(),
    ...listParams,
  },
  roles: INFRA_READERS,
  handler: async ({ params, settings }) => {
    const eq = (a: string | undefined, b: string | undefined) => a === undefined || a.toLowerCase() === b?.toLowerCase();
    const matches = (await listClusters())
      .filter((c) => eq(params.id, c.id) && eq(params.podid, c.podId) && eq(params.zoneid, c.zoneId))
      .filter((c) => eq(params.name, c.name) && eq(params.hypervisor, c.hypervisor ?? 'KVM') && eq(params.clustertype, c.clustertype ?? 'CloudManaged'))
      .filter((c) => eq(params.allocationstate, c.allocationstate) && eq(params.managedstate, c.managedstate ?? 'Managed') && eq(params.arch, c.arch ?? 'x86_64'))
      .filter((c) => matchesKeyword(params.keyword, c.name))
      .sort(byName);
    const rendered = await renderClusters(matches);
    return { body: listResponse('cluster', matches, params, settings, (c) => rendered.get(c.id)!) };
  },
});

const updateClusterCommand = defineCommand({
  name: 'updateCluster',
  description: 'Updates an existing cluster',
  params: {
    id: param.uuid('the ID of the Cluster'),
    clustername: param.string('the cluster name').optional(),
    allocationstate: param.string('Allocation state of this cluster for allocation of new resources').optional(),
    clustertype: param.string('hypervisor type of the cluster').optional(),
    hypervisor: param.string('hypervisor type of the cluster').optional(),
    managedstate: param.string('whether this cluster is managed by cloudstack').optional(),
    arch: param.string('the CPU arch of the cluster. Valid options are: x86_64, aarch64').optional(),
  },
  roles: ADMINS,
  handler: async ({ params }) => {
    const cluster = await clusterParam('updateCluster', 'id', params.id);
    const pod = await podParam('updateCluster', 'id', cluster.podId);
    if (params.hypervisor !== undefined) checkHypervisor(params.hypervisor);
    if (params.clustertype !== undefined) checkClusterType(params.clustertype);
    if (params.managedstate !== undefined && params.managedstate !== 'Managed') {
      throw new InvalidParameter(`Unable to resolve managed state '${params.managedstate}': Mold's clusters are Managed`);
    }
    const arch = checkArch(params.arch);
    const state = allocationState(params.allocationstate);
    if (params.clustername !== undefined) {
      const siblings = await listClusters({ zoneId: cluster.zoneId, podId: cluster.podId });
      if (siblings.some((c) => c.id !== cluster.id && c.name.toLowerCase() === params.clustername!.toLowerCase())) throw duplicateCluster(params.clustername, pod);
    }
    const updated = await updateCluster(cluster, {
      ...(params.clustername !== undefined && { name: params.clustername }),
      ...(state !== undefined && { allocationstate: state }),
      ...(arch !== undefined && { arch }),
    }).catch((error) => {
      throw error instanceof NameInUse ? duplicateCluster(params.clustername!, pod) : error;
    });
    const zone = await getZone(cluster.zoneId);
    return {
      body: { cluster: renderCluster(updated, { zone: zone?.name, pod: pod.name }, await overcommitRatios(updated)) },
      events: [completedEvent('CLUSTER.UPDATE', 'updating cluster', { id: cluster.id, type: 'Cluster' }, `Cluster Id: ${cluster.id}`)],
    };
  },
});

const deleteClusterCommand = defineCommand({
  name: 'deleteCluster',
  description: 'Deletes a cluster.',
  params: {
    id: param.uuid('the cluster ID'),
  },
  roles: ADMINS,
  handler: async ({ params }) => {
    const cluster = await clusterParam('deleteCluster', 'id', params.id);
    const prefix = 'The cluster cannot be deleted because ';
    const contents = await clusterContents(cluster);
    if (contents) throw inUse(prefix, contents);
    await deleteClusterRecord(cluster).catch(async (error) => {
      throw error instanceof NotEmpty ? inUse(prefix, await clusterContents(cluster)) : error;
    });
    return {
      body: { success: true },
      events: [completedEvent('CLUSTER.DELETE', 'deleting cluster', { id: cluster.id, type: 'Cluster' }, `Cluster Id: ${cluster.id}`)],
    };
  },
});

export const clusterCommands = [addClusterCommand, listClustersCommand, updateClusterCommand, deleteClusterCommand];
