// The deployment planner: which hosts (and, for a new disk, which primary storage pools) may take a
// VM, in the order vm.allocation.algorithm tries them. Pure: it decides from what it is given
// (hosts with their cluster's over-provisioning factors and their zone, pod and cluster, pools with
// their factors, the request, affinity constraints, the account's VMs); shared/db/capacity.ts
// reads those and reserves the capacity of the first candidate that still holds.
//
// A host qualifies when (upstream's FirstFitAllocator and HostAllocator checks):
//   - it is Up and Enabled (not in maintenance) in an Enabled zone, pod and cluster (acceptsPlacement);
//   - it has at least the offering's cores and MHz per core (checkIfHostHasCpuCapability);
//   - its free CPU (cores × MHz × cpu.overprovisioning.factor − allocated) holds cores × MHz, and its
//     free memory (bytes × mem.overprovisioning.factor − allocated) holds the memory;
//   - it carries every host tag of the offering;
//   - it is not avoided by anti-affinity, and is one of the required hosts of host affinity;
//   - it reaches a pool for the disks: the existing volume's pool (start), or an Up pool of its
//     cluster or zone that carries every storage tag and has room (deploy).
import { acceptsPlacement, type Host } from './db/hosts.ts';
import type { Cluster, Pod, Zone } from './db/infrastructure.ts';
import type { StoragePool } from './db/storage.ts';

/** Upstream's vm.allocation.algorithm values. */
export const ALLOCATION_ALGORITHMS = ['random', 'firstfit', 'userdispersing', 'userconcentratedpod_random', 'userconcentratedpod_firstfit', 'firstfitleastconsumed'] as const;
export type AllocationAlgorithm = (typeof ALLOCATION_ALGORITHMS)[number];

export type PlacementHost = Pick<
  Host,
  'id' | 'name' | 'zoneId' | 'podId' | 'clusterId' | 'status' | 'resourcestate' | 'cpunumber' | 'cpuspeed' | 'memorytotal' | 'cpuallocated' | 'memoryallocated' | 'hosttags'
>;

export interface CandidateHost {
  host: PlacementHost;
  zone: Pick<Zone, 'allocationstate'>;
  pod: Pick<Pod, 'allocationstate'>;
  cluster: Pick<Cluster, 'allocationstate'>;
  /** The cluster's cpu.overprovisioning.factor and mem.overprovisioning.factor. */
  cpuFactor: number;
  memoryFactor: number;
}

export type PlacementPool = Pick<StoragePool, 'id' | 'name' | 'zoneId' | 'clusterId' | 'scope' | 'state' | 'tags' | 'capacitybytes' | 'disksizeallocated'> &
  Partial<Pick<StoragePool, 'istagarule' | 'type'>>;

export interface CandidatePool {
  pool: PlacementPool;
  /** The pool's storage.overprovisioning.factor. */
  factor: number;
}

export interface PlacementRequest {
  cpuNumber: number;
  /** MHz per core. */
  cpuSpeed: number;
  memoryBytes: number;
  /** The offering's host tags (every one must be on the host). */
  hostTags?: readonly string[];
  /** The offering's storage tags (every one must be on the pool). */
  storageTags?: readonly string[];
  /** Bytes of a new disk to place on a pool (deploy); 0 or omitted: no new disk. */
  diskBytes?: number;
  /** The pool the VM's existing volume is on (start): the host must reach it. */
  poolId?: string;
  /** Only this host (a root admin's hostid). */
  hostId?: string;
  /** Hosts not to use (anti-affinity, hosts already tried). */
  avoidHostIds?: readonly string[];
  /** When given and not empty, only these hosts (host affinity). */
  requireHostIds?: readonly string[];
  /** Where the account's other VMs are (userdispersing, userconcentratedpod_*). */
  accountVms?: readonly { hostId?: string; podId?: string }[];
  algorithm: AllocationAlgorithm;
  /** Random numbers in [0, 1) (tests pass their own). */
  random?: () => number;
}

/** One host that may take the VM, with the pools it would use and its capacity after factors. */
export interface Placement {
  host: PlacementHost;
  /** CPU MHz and memory bytes the host may hold in all (capacity × factor). */
  cpuCapacity: number;
  memoryCapacity: number;
  /** Pools for the new disk, in the order to try (empty when no new disk). */
  pools: CandidatePool[];
}

export type ExclusionReason =
  | 'not-requested'
  | 'not-allocatable'
  | 'cpu-capability'
  | 'cpu-capacity'
  | 'memory-capacity'
  | 'host-tags'
  | 'anti-affinity'
  | 'affinity'
  | 'no-pool';

export interface PlanResult {
  /** The hosts to try, in order. */
  candidates: Placement[];
  /** Why each other host was left out. */
  excluded: { hostId: string; reason: ExclusionReason }[];
}

/** Tags as upstream stores them: a comma-separated string (trimmed, empties dropped). */
export function parseTags(tags: string | readonly string[] | undefined): string[] {
  if (tags === undefined) return [];
  const list = typeof tags === 'string' ? tags.split(',') : tags;
  return list.map((tag) => tag.trim()).filter(Boolean);
}

const hasAllTags = (have: readonly string[] | undefined, want: readonly string[]) => want.every((tag) => (have ?? []).includes(tag));

/** Capacity after the over-provisioning factors. */
export const cpuCapacityOf = (host: Pick<PlacementHost, 'cpunumber' | 'cpuspeed'>, factor: number) => Math.floor(host.cpunumber * host.cpuspeed * factor);
export const memoryCapacityOf = (host: Pick<PlacementHost, 'memorytotal'>, factor: number) => Math.floor(host.memorytotal * factor);

/** Whether the pool is reachable from the host (same cluster, or zone-wide in its zone). */
export const poolReachable = (pool: Pick<PlacementPool, 'scope' | 'zoneId' | 'clusterId'>, host: Pick<PlacementHost, 'zoneId' | 'clusterId'>) =>
  pool.scope === 'ZONE' ? pool.zoneId === host.zoneId : pool.clusterId === host.clusterId;

/** Pools that may hold the new disk, for the host. */
function poolsFor(host: PlacementHost, pools: readonly CandidatePool[], request: PlacementRequest): CandidatePool[] {
  const wanted = parseTags(request.storageTags);
  const bytes = request.diskBytes ?? 0;
  return pools.filter(
    ({ pool, factor }) =>
      pool.state === 'Up' &&
      poolReachable(pool, host) &&
      // A tag-rule pool (upstream's JS rule) is used only by requests without storage tags.
      (wanted.length === 0 || (!pool.istagarule && hasAllTags(pool.tags, wanted))) &&
      (pool.disksizeallocated ?? 0) + bytes <= Math.floor(pool.capacitybytes * factor),
  );
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/**
 * The hosts that may take the VM, in the order the algorithm tries them, and why the others may
 * not. Hosts are taken in the order given (zone, pod, cluster, name, as the host listing has them)
 * as firstfit's order.
 */
export function planPlacement(hosts: readonly CandidateHost[], pools: readonly CandidatePool[], request: PlacementRequest): PlanResult {
  const random = request.random ?? Math.random;
  const cpuMhz = request.cpuNumber * request.cpuSpeed;
  const hostTags = parseTags(request.hostTags);
  const avoid = new Set(request.avoidHostIds ?? []);
  const required = request.requireHostIds && request.requireHostIds.length > 0 ? new Set(request.requireHostIds) : undefined;
  const candidates: Placement[] = [];
  const excluded: PlanResult['excluded'] = [];
  for (const candidate of hosts) {
    const { host } = candidate;
    const exclude = (reason: ExclusionReason) => excluded.push({ hostId: host.id, reason });
    if (request.hostId && host.id !== request.hostId) {
      exclude('not-requested');
      continue;
    }
    if (!acceptsPlacement(host, candidate)) {
      exclude('not-allocatable');
      continue;
    }
    if (avoid.has(host.id)) {
      exclude('anti-affinity');
      continue;
    }
    if (required && !required.has(host.id)) {
      exclude('affinity');
      continue;
    }
    if (!hasAllTags(host.hosttags, hostTags)) {
      exclude('host-tags');
      continue;
    }
    if (host.cpunumber < request.cpuNumber || host.cpuspeed < request.cpuSpeed) {
      exclude('cpu-capability');
      continue;
    }
    const cpuCapacity = cpuCapacityOf(host, candidate.cpuFactor);
    const memoryCapacity = memoryCapacityOf(host, candidate.memoryFactor);
    if ((host.cpuallocated ?? 0) + cpuMhz > cpuCapacity) {
      exclude('cpu-capacity');
      continue;
    }
    if ((host.memoryallocated ?? 0) + request.memoryBytes > memoryCapacity) {
      exclude('memory-capacity');
      continue;
    }
    let hostPools: CandidatePool[] = [];
    if (request.poolId) {
      const pool = pools.find((p) => p.pool.id === request.poolId);
      if (!pool || !poolReachable(pool.pool, host)) {
        exclude('no-pool');
        continue;
      }
    }
    if ((request.diskBytes ?? 0) > 0) {
      hostPools = poolsFor(host, pools, request);
      if (hostPools.length === 0) {
        exclude('no-pool');
        continue;
      }
      if (request.algorithm === 'random' || request.algorithm === 'userconcentratedpod_random') hostPools = shuffle([...hostPools], random);
    }
    candidates.push({ host, cpuCapacity, memoryCapacity, pools: hostPools });
  }
  return { candidates: order(candidates, request, random), excluded };
}

function order(candidates: Placement[], request: PlacementRequest, random: () => number): Placement[] {
  const base = new Map(candidates.map((c, i) => [c.host.id, i]));
  const byBase = (a: Placement, b: Placement) => base.get(a.host.id)! - base.get(b.host.id)!;
  const countBy = (key: (vm: { hostId?: string; podId?: string }) => string | undefined) => {
    const counts = new Map<string, number>();
    for (const vm of request.accountVms ?? []) {
      const k = key(vm);
      if (k) counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    return counts;
  };
  switch (request.algorithm) {
    case 'firstfit':
      return candidates;
    case 'random':
      return shuffle([...candidates], random);
    case 'userdispersing': {
      // Fewest of the account's VMs first (upstream's reorderHostsByNumberOfVms).
      const counts = countBy((vm) => vm.hostId);
      return [...candidates].sort((a, b) => (counts.get(a.host.id) ?? 0) - (counts.get(b.host.id) ?? 0) || byBase(a, b));
    }
    case 'userconcentratedpod_random':
    case 'userconcentratedpod_firstfit': {
      // Pods holding most of the account's VMs first (upstream's UserConcentratedPodPlanner), then
      // hosts within a pod at random or first fit.
      const counts = countBy((vm) => vm.podId);
      const within = request.algorithm === 'userconcentratedpod_random' ? shuffle([...candidates], random) : candidates;
      const position = new Map(within.map((c, i) => [c.host.id, i]));
      return [...candidates].sort(
        (a, b) => (counts.get(b.host.podId) ?? 0) - (counts.get(a.host.podId) ?? 0) || position.get(a.host.id)! - position.get(b.host.id)!,
      );
    }
    case 'firstfitleastconsumed': {
      // Least allocated CPU (as a share of capacity) first (host.capacityType.to.order.clusters = CPU).
      const used = (c: Placement) => (c.host.cpuallocated ?? 0) / Math.max(c.cpuCapacity, 1);
      return [...candidates].sort((a, b) => used(a) - used(b) || byBase(a, b));
    }
  }
}

/** A value of vm.allocation.algorithm (random for anything unknown, as upstream's default). */
export function allocationAlgorithm(value: string | undefined): AllocationAlgorithm {
  const text = (value ?? '').trim().toLowerCase();
  return (ALLOCATION_ALGORITHMS as readonly string[]).includes(text) ? (text as AllocationAlgorithm) : 'random';
}

/** Upstream's InsufficientServerCapacityException text for a VM that no host can take. */
export const noDeploymentText = (instanceName: string) => `Unable to create a deployment for VM[User|${instanceName}]`;
