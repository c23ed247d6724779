// The metrics views of the Infrastructure pages (upstream's metrics plugin: ListZonesMetricsCmd,
// ListClustersMetricsCmd, ListHostsMetricsCmd, ListStoragePoolsMetricsCmd and ListInfrastructureCmd,
// with MetricsServiceImpl's figures). The CloudStack UI draws its Infrastructure menu only when
// listInfrastructure is in listApis, and each page only when its *Metrics command is. Each metrics
// command answers its listing's rows with upstream's display figures added, computed from the host,
// VM and pool records as they are; the figures themselves are pure functions of those records.
import { listAlertRecords } from '../../../shared/db/alerts.ts';
import { listHostRecords, type Host } from '../../../shared/db/hosts.ts';
import { listClusters, listPods, listZones, type Cluster } from '../../../shared/db/infrastructure.ts';
import { listImageStores, listStoragePools } from '../../../shared/db/storage.ts';
import { listVmRecords } from '../../../shared/db/vms.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { clusterCommands } from './clusters.ts';
import { hostCommands } from './hosts.ts';
import { byName, metricsOf, type Row } from './metrics.ts';
import { storageCommands } from './storage.ts';
import { zoneCommands } from './zones.ts';

const GiB = 1024 ** 3;

/**
 * Upstream's capacity thresholds at the values it ships with. Mold raises no capacity alerts and its
 * planner has no disable thresholds, so these are not settings; they only decide the flags the UI
 * colours its cells by (cluster.cpu/memory.allocated.capacity.notificationthreshold and
 * cluster.storage.capacity.notificationthreshold 0.75; cluster.cpu/memory.allocated.capacity.disablethreshold
 * and pool.storage.capacity.disablethreshold 0.85).
 */
export const THRESHOLDS = { notify: 0.75, disable: 0.85 } as const;

/** Java's String.format("%.2f"): half up, away from zero, on the number's shortest decimal form (toFixed rounds its binary value). */
export function javaFixed2(value: number): string {
  const magnitude = Math.abs(value);
  const text = String(magnitude);
  const rounded = text.includes('e') ? Number(magnitude.toFixed(2)) : Math.round(Number(`${text}e2`)) / 100;
  return `${value < 0 && rounded !== 0 ? '-' : ''}${rounded.toFixed(2)}`;
}

const ghz = (mhz: number) => `${javaFixed2(mhz / 1000)} Ghz`;
const gb = (bytes: number) => `${javaFixed2(bytes / GiB)} GB`;
const share = (part: number, whole: number) => `${javaFixed2((part * 100) / whole)}%`;
/** A HostResponse percentage ("12.5%") as a number. */
const percentOf = (text: unknown) => (typeof text === 'string' ? Number(text.replace('%', '')) : undefined);

/** What MetricsServiceImpl's HostMetrics sums over the hosts of a zone or cluster. */
export interface HostTotals {
  hosts: number;
  /** cores × MHz, and bytes: the hosts' own capacity (upstream's op_host_capacity totals). */
  cpuTotal: number;
  cpuAllocated: number;
  /** The sum of the hosts' CPU use percentages, and the largest. */
  cpuUsedPercent: number;
  cpuUsedMax: number;
  memoryTotal: number;
  memoryUsed: number;
  memoryAllocated: number;
  memoryUsedMax: number;
}

type HostNumbers = Pick<Host, 'cpunumber' | 'cpuspeed' | 'cpuallocated' | 'cpuused' | 'memorytotal' | 'memoryused' | 'memoryallocated'>;

export function hostTotals(hosts: readonly HostNumbers[]): HostTotals {
  const totals: HostTotals = { hosts: 0, cpuTotal: 0, cpuAllocated: 0, cpuUsedPercent: 0, cpuUsedMax: 0, memoryTotal: 0, memoryUsed: 0, memoryAllocated: 0, memoryUsedMax: 0 };
  for (const host of hosts) {
    totals.hosts += 1;
    totals.cpuTotal += host.cpunumber * host.cpuspeed;
    totals.cpuAllocated += host.cpuallocated;
    totals.cpuUsedPercent += host.cpuused;
    totals.cpuUsedMax = Math.max(totals.cpuUsedMax, host.cpuused);
    totals.memoryTotal += host.memorytotal;
    totals.memoryUsed += host.memoryused;
    totals.memoryAllocated += host.memoryallocated;
    totals.memoryUsedMax = Math.max(totals.memoryUsedMax, host.memoryused);
  }
  return totals;
}

/**
 * The figures ZoneMetricsResponse and ClusterMetricsResponse share (MetricsServiceImpl's
 * addHostCpuMetricsToResponse and addHostMemoryMetricsToResponse): a figure upstream cannot compute
 * (nothing to divide by, nothing used yet) is absent, as upstream leaves out a null.
 */
export function summaryFigures(t: HostTotals): Row {
  const { notify, disable } = THRESHOLDS;
  const cpuUsed = t.cpuUsedPercent > 0 && t.hosts > 0;
  const memoryUsed = t.memoryUsed > 0;
  const cpuAverage = t.hosts > 0 ? t.cpuUsedPercent / t.hosts : 0;
  const memoryAverage = t.hosts > 0 ? t.memoryUsed / t.hosts : 0;
  return {
    cputotal: ghz(t.cpuTotal),
    ...(t.cpuTotal > 0 && { cpuallocated: share(t.cpuAllocated, t.cpuTotal) }),
    ...(cpuUsed && { cpuused: `${javaFixed2(cpuAverage)}%` }),
    // As upstream: the CPU deviation is a plain ratio (not times 100), the memory one a percentage.
    ...(cpuUsed && { cpumaxdeviation: `${javaFixed2((t.cpuUsedMax - cpuAverage) / cpuAverage)}%` }),
    memorytotal: gb(t.memoryTotal),
    ...(t.memoryTotal > 0 && { memoryallocated: share(t.memoryAllocated, t.memoryTotal) }),
    ...(memoryUsed && t.memoryTotal > 0 && { memoryused: share(t.memoryUsed, t.memoryTotal) }),
    ...(memoryUsed && t.hosts > 0 && { memorymaxdeviation: `${javaFixed2(((t.memoryUsedMax - memoryAverage) * 100) / memoryAverage)}%` }),
    ...(t.hosts > 0 && { cputhreshold: t.cpuUsedPercent / (100 * t.hosts) > notify, cpudisablethreshold: t.cpuUsedPercent / (100 * t.hosts) > disable }),
    ...(t.cpuTotal > 0 && { cpuallocatedthreshold: t.cpuAllocated / t.cpuTotal > notify, cpuallocateddisablethreshold: t.cpuAllocated / t.cpuTotal > disable }),
    ...(t.memoryTotal > 0 && {
      memorythreshold: t.memoryUsed / t.memoryTotal > notify,
      memorydisablethreshold: t.memoryUsed / t.memoryTotal > disable,
      memoryallocatedthreshold: t.memoryAllocated / t.memoryTotal > notify,
      memoryallocateddisablethreshold: t.memoryAllocated / t.memoryTotal > disable,
    }),
  };
}

/** Upstream's ZoneMetricsResponse: its state, enabled / all clusters, and its hosts' totals. */
export function zoneFigures(zone: Row, clusters: readonly Pick<Cluster, 'allocationstate' | 'managedstate'>[], hosts: readonly HostNumbers[]): Row {
  const up = clusters.filter((c) => c.allocationstate === 'Enabled' && (c.managedstate ?? 'Managed') === 'Managed').length;
  return { ...zone, state: zone.allocationstate, clusters: `${up} / ${clusters.length}`, ...summaryFigures(hostTotals(hosts)) };
}

/** Upstream's ClusterMetricsResponse: its state, Up / all hosts, and their totals. */
export function clusterFigures(cluster: Row, hosts: readonly (HostNumbers & Pick<Host, 'status'>)[]): Row {
  const up = hosts.filter((h) => h.status === 'Up').length;
  return {
    ...cluster,
    state: cluster.managedstate === 'Unmanaged' ? 'Unmanaged' : cluster.allocationstate,
    hosts: `${up} / ${hosts.length}`,
    ...summaryFigures(hostTotals(hosts)),
  };
}

/** Upstream's HostMetricsResponse, from the HostResponse row and the user VMs on the host. */
export function hostFigures(host: Row, vms: readonly { state: string }[]): Row {
  const { notify, disable } = THRESHOLDS;
  const mhz = host.cpunumber * host.cpuspeed;
  const cpuUsed = percentOf(host.cpuused);
  const cpuAllocated = percentOf(host.cpuallocated);
  const memory = host.memorytotal as number;
  return {
    ...host,
    ...(host.outofbandmanagement?.powerstate !== undefined && { powerstate: host.outofbandmanagement.powerstate }),
    instances: `${vms.filter((vm) => vm.state === 'Running').length} / ${vms.length}`,
    cputotalghz: ghz(mhz),
    ...(cpuUsed !== undefined && { cpuusedghz: ghz((cpuUsed * mhz) / 100) }),
    ...(cpuAllocated !== undefined && { cpuallocatedghz: ghz((cpuAllocated * mhz) / 100) }),
    memorytotalgb: gb(memory),
    ...(host.memoryused !== undefined && { memoryusedgb: gb(host.memoryused) }),
    ...(host.memoryallocated !== undefined && { memoryallocatedgb: gb(host.memoryallocated) }),
    ...(host.networkkbsread !== undefined && { networkread: gb(host.networkkbsread * 1024) }),
    ...(host.networkkbswrite !== undefined && { networkwrite: gb(host.networkkbswrite * 1024) }),
    ...(cpuUsed !== undefined && { cputhreshold: cpuUsed > 100 * notify, cpudisablethreshold: cpuUsed > 100 * disable }),
    ...(cpuAllocated !== undefined && { cpuallocatedthreshold: cpuAllocated > 100 * notify, cpuallocateddisablethreshold: cpuAllocated > 100 * disable }),
    ...(host.memoryused !== undefined && { memorythreshold: host.memoryused > memory * notify, memorydisablethreshold: host.memoryused > memory * disable }),
    ...(host.memoryallocated !== undefined && {
      memoryallocatedthreshold: host.memoryallocated > memory * notify,
      memoryallocateddisablethreshold: host.memoryallocated > memory * disable,
    }),
  };
}

/** Upstream's StoragePoolMetricsResponse, from the StoragePoolResponse row. */
export function storagePoolFigures(pool: Row): Row {
  const { notify, disable } = THRESHOLDS;
  const total = pool.disksizetotal as number | undefined;
  const used = pool.disksizeused as number | undefined;
  const allocated = pool.disksizeallocated as number | undefined;
  const factorText = pool.overprovisionfactor as string | undefined;
  const capacity = total !== undefined && factorText !== undefined ? total * Number(factorText) : undefined;
  return {
    ...pool,
    ...(used !== undefined && { disksizeusedgb: gb(used) }),
    ...(total !== undefined && factorText !== undefined && { disksizetotalgb: `${gb(total)} (x${factorText})` }),
    ...(allocated !== undefined && { disksizeallocatedgb: gb(allocated) }),
    ...(capacity !== undefined && allocated !== undefined && { disksizeunallocatedgb: gb(capacity - allocated) }),
    ...(capacity !== undefined && used !== undefined && { storageusagethreshold: used > capacity * notify, storageusagedisablethreshold: used > capacity * disable }),
    ...(capacity !== undefined && allocated !== undefined && { storageallocatedthreshold: allocated > capacity * notify }),
    // Upstream compares the used size here, not the allocated one.
    ...(capacity !== undefined && used !== undefined && { storageallocateddisablethreshold: used > capacity * disable }),
  };
}

async function zoneRows(rows: Row[]): Promise<Row[]> {
  const [clusters, hosts] = await Promise.all([listClusters(), listHostRecords()]);
  return rows.map((zone) => zoneFigures(zone, clusters.filter((c) => c.zoneId === zone.id), hosts.filter((h) => h.zoneId === zone.id)));
}

async function clusterRows(rows: Row[]): Promise<Row[]> {
  const hosts = await listHostRecords();
  return rows.map((cluster) => clusterFigures(cluster, hosts.filter((h) => h.clusterId === cluster.id)));
}

async function hostRows(rows: Row[]): Promise<Row[]> {
  const vms = await Promise.all(rows.map((host) => listVmRecords({ hostId: host.id })));
  return rows.map((host, i) => hostFigures(host, vms[i]!));
}

const listInfrastructure = defineCommand({
  name: 'listInfrastructure',
  description:
    'Lists infrastructure. Mold: no management servers, image cache stores, object stores or backup repositories are counted (Mold has none of them as upstream has); system VMs, routers and internal load balancer VMs are 0 (Mold runs none).',
  params: {},
  roles: ADMINS,
  handler: async () => {
    const [zones, pods, clusters, hosts, pools, stores, alerts] = await Promise.all([
      listZones(),
      listPods(),
      listClusters(),
      listHostRecords(),
      listStoragePools(),
      listImageStores(),
      listAlertRecords(),
    ]);
    return {
      body: {
        infrastructure: {
          zones: zones.length,
          pods: pods.length,
          clusters: clusters.length,
          hosts: hosts.length,
          storagepools: pools.length,
          imagestores: stores.length,
          systemvms: 0,
          routers: 0,
          ilbvms: 0,
          cpusockets: hosts.reduce((sum, host) => sum + (host.cpusockets ?? 0), 0),
          alerts: alerts.length,
        },
      },
    };
  },
});

export const infraMetricsCommands = [
  listInfrastructure,
  metricsOf(byName(zoneCommands, 'listZones'), 'listZonesMetrics', 'Lists zone metrics', 'zone', zoneRows, ADMINS),
  metricsOf(byName(clusterCommands, 'listClusters'), 'listClustersMetrics', 'Lists clusters metrics', 'cluster', clusterRows, ADMINS),
  metricsOf(byName(hostCommands, 'listHosts'), 'listHostsMetrics', 'Lists hosts metrics', 'host', hostRows, ADMINS),
  metricsOf(byName(storageCommands, 'listStoragePools'), 'listStoragePoolsMetrics', 'Lists storage pool metrics', 'storagepool', (rows) => rows.map(storagePoolFigures), ADMINS),
];
