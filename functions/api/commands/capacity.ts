// listCapacity (upstream's ListCapacityCmd with ManagementServerImpl.listCapacities): capacities
// summed per zone (or per pod with podid, per cluster with clusterid) and type, computed from the
// records as they are (every call is a "fetchlatest"):
//   0 MEMORY, 1 CPU      from the hosts of each cluster (memory bytes; cores × MHz), the total times
//                        the cluster's mem/cpu.overprovisioning.factor, used = what VMs hold
//   5 PRIVATE_IP         a pod's management range; used = hosts with an address in it
//   8 DIRECT_ATTACHED_PUBLIC_IP  the shared networks' VLAN IP ranges; used = IPAM allocations
//   2 STORAGE, 3 STORAGE_ALLOCATED  each Up shared primary storage pool: used bytes of its size;
//                        allocated bytes of its size × storage.overprovisioning.factor
//   9 LOCAL_STORAGE      host-local (Filesystem) pools; 6 SECONDARY_STORAGE the zone's image stores
// As upstream's op_host_capacity listing: only capacities with a total above zero, and only those of
// enabled zones, pods, clusters and hosts (a disabled one's capacity_state is Disabled).
import { InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { ipRange, parseIpv4 } from '../../../shared/cloudstack/ip.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { listHostRecords, type Host } from '../../../shared/db/hosts.ts';
import { getCluster, getPod, getZone, listClusters, listPods, listZones, type Cluster, type Pod, type Zone } from '../../../shared/db/infrastructure.ts';
import { countAllocatedAddresses } from '../../../shared/db/ipam.ts';
import { listNetworks, listVlanIpRanges } from '../../../shared/db/networks.ts';
import { isHostLocal, listImageStores, listStoragePools, overprovisioningFactor } from '../../../shared/db/storage.ts';
import type { Settings } from '../../../shared/settings.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { listResponse } from '../paging.ts';
import { noSuchEntity } from '../validate.ts';

/** Upstream's Capacity types and CapacityVO names. */
export const CAPACITY_TYPES = {
  0: 'MEMORY',
  1: 'CPU',
  2: 'STORAGE',
  3: 'STORAGE_ALLOCATED',
  4: 'VIRTUAL_NETWORK_PUBLIC_IP',
  5: 'PRIVATE_IP',
  6: 'SECONDARY_STORAGE',
  7: 'VLAN',
  8: 'DIRECT_ATTACHED_PUBLIC_IP',
  9: 'LOCAL_STORAGE',
  19: 'GPU',
  90: 'CPU_CORE',
} as const;

/** One capacity at its narrowest place (a cluster, a pod or a zone). */
export interface CapacityEntry {
  type: number;
  zoneId: string;
  podId?: string;
  clusterId?: string;
  total: number;
  used: number;
  allocated: number;
}

export interface CapacityScope {
  zones: Zone[];
  pods: Pod[];
  clusters: Cluster[];
  settings: Settings;
}

/** Something that contributes capacities (primary storage pools, image stores). */
export type CapacitySource = (scope: CapacityScope) => Promise<CapacityEntry[]>;

const sources: CapacitySource[] = [];

/** Adds the capacities of another module (GPUs, VLANs, public IP ranges when they exist). */
export function addCapacitySource(source: CapacitySource): void {
  sources.push(source);
}

/** Resource states whose capacity upstream marks Disabled. */
const NOT_COUNTED: ReadonlySet<Host['resourcestate']> = new Set(['Disabled', 'Maintenance', 'ErrorInMaintenance', 'Error']);

/** CPU and memory of every enabled host, per cluster, with the cluster's over-provisioning factors. */
async function hostCapacities(scope: CapacityScope): Promise<CapacityEntry[]> {
  const clusters = new Map(scope.clusters.map((c) => [c.id, c]));
  const entries = new Map<string, CapacityEntry>();
  const factors = new Map<string, { cpu: number; memory: number }>();
  for (const host of await listHostRecords()) {
    const cluster = clusters.get(host.clusterId);
    if (!cluster || NOT_COUNTED.has(host.resourcestate) || host.status === 'Removed') continue;
    let factor = factors.get(cluster.id);
    if (!factor) {
      const scoped = await scope.settings.scoped({ clusterId: cluster.id, zoneId: cluster.zoneId });
      factor = { cpu: scoped.number('cpu.overprovisioning.factor'), memory: scoped.number('mem.overprovisioning.factor') };
      factors.set(cluster.id, factor);
    }
    const add = (type: 0 | 1, total: number, used: number) => {
      const key = `${type}#${cluster.id}`;
      const entry = entries.get(key) ?? { type, zoneId: cluster.zoneId, podId: cluster.podId, clusterId: cluster.id, total: 0, used: 0, allocated: 0 };
      entry.total += total;
      entry.used += used;
      entry.allocated += used;
      entries.set(key, entry);
    };
    add(0, host.memorytotal * factor.memory, host.memoryallocated);
    add(1, host.cpunumber * host.cpuspeed * factor.cpu, host.cpuallocated);
  }
  return [...entries.values()].map((entry) => ({ ...entry, total: Math.floor(entry.total) }));
}

const addressesIn = (start: string | undefined, end: string | undefined) => {
  const range = start && end ? ipRange(start, end) : undefined;
  return range ? range.end - range.start + 1 : 0;
};

/** Private IPs: each enabled pod's management range, used by the hosts addressed in it. */
async function privateIpCapacities(scope: CapacityScope): Promise<CapacityEntry[]> {
  const hosts = await listHostRecords();
  return scope.pods.flatMap((pod) => {
    const total = addressesIn(pod.startip, pod.endip);
    const range = pod.startip && pod.endip ? ipRange(pod.startip, pod.endip) : undefined;
    const used = range
      ? hosts.filter((host) => {
          const address = parseIpv4(host.ipaddress);
          return host.podId === pod.id && address !== undefined && address >= range.start && address <= range.end;
        }).length
      : 0;
    return [{ type: 5, zoneId: pod.zoneId, podId: pod.id, total, used, allocated: used }];
  });
}

/** Shared networks' addresses (upstream's direct attached public IPs), per zone. */
async function sharedNetworkIpCapacities(scope: CapacityScope): Promise<CapacityEntry[]> {
  const zones = new Set(scope.zones.map((z) => z.id));
  const entries = new Map<string, CapacityEntry>();
  const ranges = (await listVlanIpRanges()).filter((range) => zones.has(range.zoneId));
  const networks = new Set(ranges.map((range) => range.networkId));
  for (const range of ranges) {
    const entry = entries.get(range.zoneId) ?? { type: 8, zoneId: range.zoneId, total: 0, used: 0, allocated: 0 };
    const bounds = ipRange(range.startip, range.endip);
    const gateway = parseIpv4(range.gateway);
    entry.total += addressesIn(range.startip, range.endip) - (bounds && gateway !== undefined && gateway >= bounds.start && gateway <= bounds.end ? 1 : 0);
    entries.set(range.zoneId, entry);
  }
  for (const network of (await listNetworks()).filter((n) => networks.has(n.id))) {
    const used = await countAllocatedAddresses(network.id);
    const entry = entries.get(network.zoneId);
    if (entry) {
      entry.used += used;
      entry.allocated += used;
    }
  }
  return [...entries.values()];
}

/** Primary storage pools (2, 3; 9 for host-local ones) and image stores (6). */
async function storageCapacities(scope: CapacityScope): Promise<CapacityEntry[]> {
  const zones = new Set(scope.zones.map((z) => z.id));
  const clusters = new Set(scope.clusters.map((c) => c.id));
  const entries: CapacityEntry[] = [];
  for (const pool of await listStoragePools()) {
    if (pool.state !== 'Up' || !zones.has(pool.zoneId) || (pool.clusterId && !clusters.has(pool.clusterId))) continue;
    const place = { zoneId: pool.zoneId, ...(pool.podId && { podId: pool.podId }), ...(pool.clusterId && { clusterId: pool.clusterId }) };
    const used = pool.disksizeused ?? 0;
    if (isHostLocal(pool)) {
      entries.push({ type: 9, ...place, total: pool.capacitybytes, used, allocated: pool.disksizeallocated ?? 0 });
      continue;
    }
    const factor = await overprovisioningFactor(pool, scope.settings);
    entries.push({ type: 2, ...place, total: pool.capacitybytes, used, allocated: pool.disksizeallocated ?? 0 });
    entries.push({ type: 3, ...place, total: Math.floor(pool.capacitybytes * factor), used: pool.disksizeallocated ?? 0, allocated: pool.disksizeallocated ?? 0 });
  }
  for (const store of await listImageStores()) {
    if (!zones.has(store.zoneId) || !store.disksizetotal) continue;
    entries.push({ type: 6, zoneId: store.zoneId, total: store.disksizetotal, used: store.disksizeused ?? 0, allocated: store.disksizeused ?? 0 });
  }
  return entries;
}

/** Upstream's DecimalFormat("##.##") of a percentage. */
function percent(used: number, total: number): string {
  const value = total > 0 ? (used / total) * 100 : 0;
  return String(Number(value.toFixed(2)));
}

const capacityCommand = defineCommand({
  name: 'listCapacity',
  description: 'Lists all the system wide capacities.',
  params: {
    zoneid: param.uuid('lists capacity by the Zone ID').optional(),
    podid: param.uuid('lists capacity by the Pod ID').optional(),
    clusterid: param.uuid('lists capacity by the Cluster ID').optional(),
    fetchlatest: param.boolean('recalculate capacities and fetch the latest').optional(),
    type: param
      .integer(
        'lists capacity by type* CAPACITY_TYPE_MEMORY = 0* CAPACITY_TYPE_CPU = 1* CAPACITY_TYPE_STORAGE = 2* CAPACITY_TYPE_STORAGE_ALLOCATED = 3* CAPACITY_TYPE_VIRTUAL_NETWORK_PUBLIC_IP = 4* CAPACITY_TYPE_PRIVATE_IP = 5* CAPACITY_TYPE_SECONDARY_STORAGE = 6* CAPACITY_TYPE_VLAN = 7* CAPACITY_TYPE_DIRECT_ATTACHED_PUBLIC_IP = 8* CAPACITY_TYPE_LOCAL_STORAGE = 9* CAPACITY_TYPE_GPU = 19* CAPACITY_TYPE_CPU_CORE = 90.',
      )
      .optional(),
    sortby: param.string('Sort the results. Available values: Usage').optional(),
    ...listParams,
  },
  roles: ADMINS,
  handler: async ({ params, settings }) => {
    const api = 'listCapacity';
    if (params.sortby !== undefined && params.sortby.toLowerCase() !== 'usage') {
      throw new InvalidParameter('Only value supported for sortBy parameter is : usage');
    }
    const zone = params.zoneid ? await getZone(params.zoneid.toLowerCase()) : undefined;
    if (params.zoneid && !zone) throw noSuchEntity(api, 'zoneid', params.zoneid);
    const pod = params.podid ? await getPod(params.podid.toLowerCase()) : undefined;
    if (params.podid && !pod) throw noSuchEntity(api, 'podid', params.podid);
    const cluster = params.clusterid ? await getCluster(params.clusterid.toLowerCase()) : undefined;
    if (params.clusterid && !cluster) throw noSuchEntity(api, 'clusterid', params.clusterid);

    // Only enabled zones, pods and clusters have capacity (upstream's capacity_state).
    const zones = (await listZones()).filter((z) => z.allocationstate === 'Enabled');
    const enabledZones = new Set(zones.map((z) => z.id));
    const pods = (await listPods()).filter((p) => p.allocationstate === 'Enabled' && enabledZones.has(p.zoneId));
    const enabledPods = new Set(pods.map((p) => p.id));
    const clusters = (await listClusters()).filter((c) => c.allocationstate === 'Enabled' && enabledPods.has(c.podId));
    const scope: CapacityScope = { zones, pods, clusters, settings };
    const computed = [
      ...(await hostCapacities(scope)),
      ...(await privateIpCapacities(scope)),
      ...(await sharedNetworkIpCapacities(scope)),
      ...(await storageCapacities(scope)),
      ...(await Promise.all(sources.map((source) => source(scope)))).flat(),
    ];

    // Summed by cluster (clusterid), by pod (podid) or by zone, as upstream's findCapacityBy.
    const level: 'cluster' | 'pod' | 'zone' = cluster ? 'cluster' : pod ? 'pod' : 'zone';
    const rows = new Map<string, CapacityEntry>();
    for (const entry of computed) {
      if (params.type !== undefined && entry.type !== params.type) continue;
      if (zone && entry.zoneId !== zone.id) continue;
      if (pod && entry.podId !== pod.id) continue;
      if (cluster && entry.clusterId !== cluster.id) continue;
      const place = level === 'cluster' ? entry.clusterId : level === 'pod' ? entry.podId : entry.zoneId;
      if (place === undefined) continue;
      const key = `${entry.type}#${place}`;
      const row = rows.get(key) ?? {
        type: entry.type,
        zoneId: entry.zoneId,
        ...(level !== 'zone' && { podId: entry.podId }),
        ...(level === 'cluster' && { clusterId: entry.clusterId }),
        total: 0,
        used: 0,
        allocated: 0,
      };
      row.total += entry.total;
      row.used += entry.used;
      row.allocated += entry.allocated;
      rows.set(key, row);
    }
    const zoneNames = new Map(zones.map((z) => [z.id, z.name]));
    const podNames = new Map(pods.map((p) => [p.id, p.name]));
    const clusterNames = new Map(clusters.map((c) => [c.id, c.name]));
    const items = [...rows.values()].filter((row) => row.total > 0);
    // Upstream sorts by zone name, then (without sortby) by type; sortby=usage puts the fullest first.
    items.sort((a, b) => {
      if (params.sortby !== undefined) return b.used / b.total - a.used / a.total;
      return (zoneNames.get(a.zoneId) ?? '').localeCompare(zoneNames.get(b.zoneId) ?? '') || a.type - b.type;
    });
    return {
      body: listResponse('capacity', items, params, settings, (row) => ({
        type: row.type,
        name: CAPACITY_TYPES[row.type as keyof typeof CAPACITY_TYPES],
        zoneid: row.zoneId,
        zonename: zoneNames.get(row.zoneId),
        ...(row.podId && { podid: row.podId, podname: podNames.get(row.podId) }),
        ...(row.clusterId && { clusterid: row.clusterId, clustername: clusterNames.get(row.clusterId) }),
        capacityallocated: row.allocated,
        capacityused: row.used,
        capacitytotal: row.total,
        percentused: percent(row.used, row.total),
      })),
    };
  },
});

export const capacityCommands = [capacityCommand];
