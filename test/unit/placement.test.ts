import { describe, expect, it } from 'vitest';
import {
  allocationAlgorithm,
  noDeploymentText,
  parseTags,
  planPlacement,
  type CandidateHost,
  type CandidatePool,
  type PlacementHost,
  type PlacementRequest,
} from '../../shared/placement.ts';

const GiB = 1024 ** 3;

function host(id: string, fields: Partial<PlacementHost> & { zone?: string; cpuFactor?: number; memoryFactor?: number; zoneState?: string; podState?: string; clusterState?: string } = {}): CandidateHost {
  const { cpuFactor = 1, memoryFactor = 1, zoneState = 'Enabled', podState = 'Enabled', clusterState = 'Enabled', ...rest } = fields;
  return {
    host: {
      id,
      name: id,
      zoneId: 'z1',
      podId: 'p1',
      clusterId: 'c1',
      status: 'Up',
      resourcestate: 'Enabled',
      cpunumber: 4,
      cpuspeed: 2000,
      memorytotal: 8 * GiB,
      cpuallocated: 0,
      memoryallocated: 0,
      hosttags: [],
      ...rest,
    },
    zone: { allocationstate: zoneState as 'Enabled' },
    pod: { allocationstate: podState as 'Enabled' },
    cluster: { allocationstate: clusterState as 'Enabled' },
    cpuFactor,
    memoryFactor,
  };
}

function pool(id: string, fields: Partial<CandidatePool['pool']> = {}, factor = 1): CandidatePool {
  return {
    pool: { id, name: id, zoneId: 'z1', clusterId: 'c1', scope: 'CLUSTER', state: 'Up', tags: [], capacitybytes: 100 * GiB, disksizeallocated: 0, ...fields },
    factor,
  };
}

const small: Omit<PlacementRequest, 'algorithm'> = { cpuNumber: 1, cpuSpeed: 1000, memoryBytes: 1 * GiB };
const ids = (result: ReturnType<typeof planPlacement>) => result.candidates.map((c) => c.host.id);
const reasonOf = (result: ReturnType<typeof planPlacement>, id: string) => result.excluded.find((e) => e.hostId === id)?.reason;

/** A deterministic sequence of "random" numbers. */
function sequence(...values: number[]) {
  let i = 0;
  return () => values[i++ % values.length];
}

describe('planPlacement: which hosts qualify', () => {
  it('takes Up, Enabled hosts in Enabled zones, pods and clusters only', () => {
    const hosts = [
      host('ok'),
      host('down', { status: 'Down' }),
      host('disconnected', { status: 'Disconnected' }),
      host('disabled', { resourcestate: 'Disabled' }),
      host('maintenance', { resourcestate: 'Maintenance' }),
      host('preparing', { resourcestate: 'PrepareForMaintenance' }),
      host('zone-off', { zoneState: 'Disabled' }),
      host('pod-off', { podState: 'Disabled' }),
      host('cluster-off', { clusterState: 'Disabled' }),
    ];
    const result = planPlacement(hosts, [], { ...small, algorithm: 'firstfit' });
    expect(ids(result)).toEqual(['ok']);
    for (const id of ['down', 'disconnected', 'disabled', 'maintenance', 'preparing', 'zone-off', 'pod-off', 'cluster-off']) {
      expect(reasonOf(result, id)).toBe('not-allocatable');
    }
  });

  it('applies the cluster over-provisioning factors to CPU and memory', () => {
    // 4 × 2000 MHz = 8000 MHz; 6000 allocated: 2000 free, a 4 × 1000 VM needs 4000.
    const busy = { cpuallocated: 6000 };
    const request = { ...small, cpuNumber: 4, cpuSpeed: 1000 };
    expect(reasonOf(planPlacement([host('h', busy)], [], { ...request, algorithm: 'firstfit' }), 'h')).toBe('cpu-capacity');
    const doubled = planPlacement([host('h', { ...busy, cpuFactor: 2 })], [], { ...request, algorithm: 'firstfit' });
    expect(ids(doubled)).toEqual(['h']);
    expect(doubled.candidates[0].cpuCapacity).toBe(16000);

    // 8 GiB, 7 GiB allocated: a 2 GiB VM fits only with mem factor ≥ 1.125.
    const full = { memoryallocated: 7 * GiB };
    const memRequest = { ...small, memoryBytes: 2 * GiB };
    expect(reasonOf(planPlacement([host('h', full)], [], { ...memRequest, algorithm: 'firstfit' }), 'h')).toBe('memory-capacity');
    const more = planPlacement([host('h', { ...full, memoryFactor: 1.5 })], [], { ...memRequest, algorithm: 'firstfit' });
    expect(ids(more)).toEqual(['h']);
    expect(more.candidates[0].memoryCapacity).toBe(12 * GiB);
  });

  it('fits exactly up to the capacity', () => {
    const h = host('h', { cpuallocated: 7000, memoryallocated: 7 * GiB });
    expect(ids(planPlacement([h], [], { ...small, algorithm: 'firstfit' }))).toEqual(['h']);
    expect(ids(planPlacement([h], [], { ...small, cpuSpeed: 1001, algorithm: 'firstfit' }))).toEqual([]);
  });

  it('needs the offering’s cores and speed on the host', () => {
    const result = planPlacement([host('few', { cpunumber: 2 }), host('slow', { cpuspeed: 900 }), host('ok')], [], {
      ...small,
      cpuNumber: 3,
      cpuSpeed: 1000,
      algorithm: 'firstfit',
    });
    expect(ids(result)).toEqual(['ok']);
    expect(reasonOf(result, 'few')).toBe('cpu-capability');
    expect(reasonOf(result, 'slow')).toBe('cpu-capability');
  });

  it('matches every host tag of the offering', () => {
    const hosts = [host('none'), host('ssd', { hosttags: ['ssd'] }), host('both', { hosttags: ['ssd', 'gpu'] })];
    expect(ids(planPlacement(hosts, [], { ...small, hostTags: ['ssd'], algorithm: 'firstfit' }))).toEqual(['ssd', 'both']);
    expect(ids(planPlacement(hosts, [], { ...small, hostTags: parseTags('ssd, gpu'), algorithm: 'firstfit' }))).toEqual(['both']);
    expect(ids(planPlacement(hosts, [], { ...small, algorithm: 'firstfit' }))).toEqual(['none', 'ssd', 'both']);
    expect(reasonOf(planPlacement(hosts, [], { ...small, hostTags: ['gpu'], algorithm: 'firstfit' }), 'ssd')).toBe('host-tags');
  });

  it('avoids anti-affinity hosts and keeps to host-affinity hosts', () => {
    const hosts = [host('a'), host('b'), host('c')];
    const anti = planPlacement(hosts, [], { ...small, avoidHostIds: ['a', 'c'], algorithm: 'firstfit' });
    expect(ids(anti)).toEqual(['b']);
    expect(reasonOf(anti, 'a')).toBe('anti-affinity');
    const affinity = planPlacement(hosts, [], { ...small, requireHostIds: ['c'], algorithm: 'firstfit' });
    expect(ids(affinity)).toEqual(['c']);
    expect(reasonOf(affinity, 'a')).toBe('affinity');
    // No member placed yet: no constraint.
    expect(ids(planPlacement(hosts, [], { ...small, requireHostIds: [], algorithm: 'firstfit' }))).toEqual(['a', 'b', 'c']);
    // Both: nothing left.
    expect(ids(planPlacement(hosts, [], { ...small, requireHostIds: ['a'], avoidHostIds: ['a'], algorithm: 'firstfit' }))).toEqual([]);
  });

  it('takes only the requested host (a root admin’s hostid), still checked', () => {
    const hosts = [host('a'), host('b', { resourcestate: 'Maintenance' })];
    expect(ids(planPlacement(hosts, [], { ...small, hostId: 'a', algorithm: 'random' }))).toEqual(['a']);
    const refused = planPlacement(hosts, [], { ...small, hostId: 'b', algorithm: 'random' });
    expect(ids(refused)).toEqual([]);
    expect(reasonOf(refused, 'b')).toBe('not-allocatable');
    expect(reasonOf(refused, 'a')).toBe('not-requested');
  });
});

describe('planPlacement: storage', () => {
  const hosts = [host('a', { clusterId: 'c1' }), host('b', { clusterId: 'c2' })];

  it('needs a reachable Up pool with room for a new disk, with the pool factor', () => {
    const pools = [pool('p1', { clusterId: 'c1', capacitybytes: 10 * GiB, disksizeallocated: 8 * GiB })];
    const request = { ...small, diskBytes: 4 * GiB, algorithm: 'firstfit' as const };
    const none = planPlacement(hosts, pools, request);
    expect(ids(none)).toEqual([]);
    expect(reasonOf(none, 'a')).toBe('no-pool');
    expect(reasonOf(none, 'b')).toBe('no-pool');
    const overprovisioned = planPlacement(hosts, [pool('p1', { clusterId: 'c1', capacitybytes: 10 * GiB, disksizeallocated: 8 * GiB }, 2)], request);
    expect(ids(overprovisioned)).toEqual(['a']);
    expect(overprovisioned.candidates[0].pools.map((p) => p.pool.id)).toEqual(['p1']);
    expect(ids(planPlacement(hosts, [pool('p1', { state: 'Maintenance' })], request))).toEqual([]);
  });

  it('reaches zone-wide pools from every cluster of the zone', () => {
    const pools = [pool('zonewide', { scope: 'ZONE', clusterId: undefined })];
    expect(ids(planPlacement(hosts, pools, { ...small, diskBytes: GiB, algorithm: 'firstfit' }))).toEqual(['a', 'b']);
  });

  it('matches every storage tag on the pool', () => {
    const pools = [pool('plain', { clusterId: 'c1' }), pool('fast', { clusterId: 'c2', tags: ['ssd'] })];
    expect(ids(planPlacement(hosts, pools, { ...small, diskBytes: GiB, storageTags: ['ssd'], algorithm: 'firstfit' }))).toEqual(['b']);
    expect(ids(planPlacement(hosts, pools, { ...small, diskBytes: GiB, storageTags: ['nvme'], algorithm: 'firstfit' }))).toEqual([]);
    // Untagged disks go anywhere.
    expect(ids(planPlacement(hosts, pools, { ...small, diskBytes: GiB, algorithm: 'firstfit' }))).toEqual(['a', 'b']);
  });

  it('keeps a started VM on hosts that reach its volume’s pool', () => {
    const pools = [pool('p2', { clusterId: 'c2' })];
    const result = planPlacement(hosts, pools, { ...small, poolId: 'p2', algorithm: 'firstfit' });
    expect(ids(result)).toEqual(['b']);
    expect(reasonOf(result, 'a')).toBe('no-pool');
    expect(result.candidates[0].pools).toEqual([]);
  });
});

describe('planPlacement: vm.allocation.algorithm', () => {
  const hosts = [host('h1'), host('h2'), host('h3'), host('h4')];

  it('firstfit keeps the listing order', () => {
    expect(ids(planPlacement(hosts, [], { ...small, algorithm: 'firstfit' }))).toEqual(['h1', 'h2', 'h3', 'h4']);
  });

  it('random shuffles (Fisher–Yates with the given numbers)', () => {
    // i=3: j=floor(0*4)=0 → [h4,h2,h3,h1]; i=2: j=floor(0.99*3)=2 → same; i=1: j=floor(0.5*2)=1 → same.
    expect(ids(planPlacement(hosts, [], { ...small, algorithm: 'random', random: sequence(0, 0.99, 0.5) }))).toEqual(['h4', 'h2', 'h3', 'h1']);
    // Every host still appears exactly once, whatever the numbers.
    const shuffled = ids(planPlacement(hosts, [], { ...small, algorithm: 'random' }));
    expect([...shuffled].sort()).toEqual(['h1', 'h2', 'h3', 'h4']);
  });

  it('userdispersing puts the hosts with fewest of the account’s VMs first', () => {
    const accountVms = [{ hostId: 'h1' }, { hostId: 'h1' }, { hostId: 'h2' }, { hostId: 'h4' }, { hostId: 'h4' }, { hostId: 'h4' }, {}];
    expect(ids(planPlacement(hosts, [], { ...small, algorithm: 'userdispersing', accountVms }))).toEqual(['h3', 'h2', 'h1', 'h4']);
  });

  it('userconcentratedpod_* puts the pods with most of the account’s VMs first', () => {
    const podHosts = [host('a1', { podId: 'pa' }), host('a2', { podId: 'pa' }), host('b1', { podId: 'pb' }), host('b2', { podId: 'pb' })];
    const accountVms = [{ podId: 'pb', hostId: 'b2' }, { podId: 'pb' }, { podId: 'pa' }];
    expect(ids(planPlacement(podHosts, [], { ...small, algorithm: 'userconcentratedpod_firstfit', accountVms }))).toEqual(['b1', 'b2', 'a1', 'a2']);
    const random = ids(planPlacement(podHosts, [], { ...small, algorithm: 'userconcentratedpod_random', accountVms, random: sequence(0) }));
    expect(random.slice(0, 2).sort()).toEqual(['b1', 'b2']);
    expect(random.slice(2).sort()).toEqual(['a1', 'a2']);
  });

  it('firstfitleastconsumed puts the least allocated hosts first', () => {
    const busy = [host('h1', { cpuallocated: 4000 }), host('h2', { cpuallocated: 1000 }), host('h3', { cpuallocated: 6000 }), host('h4', { cpuallocated: 1000 })];
    expect(ids(planPlacement(busy, [], { ...small, algorithm: 'firstfitleastconsumed' }))).toEqual(['h2', 'h4', 'h1', 'h3']);
  });

  it('reads the setting, random for anything unknown', () => {
    expect(allocationAlgorithm('firstfit')).toBe('firstfit');
    expect(allocationAlgorithm(' UserDispersing ')).toBe('userdispersing');
    expect(allocationAlgorithm('userconcentratedpod_random')).toBe('userconcentratedpod_random');
    expect(allocationAlgorithm('bogus')).toBe('random');
    expect(allocationAlgorithm(undefined)).toBe('random');
  });
});

describe('upstream texts', () => {
  it('words a failed deployment as InsufficientServerCapacityException does', () => {
    expect(noDeploymentText('i-2-7-VM')).toBe('Unable to create a deployment for VM[User|i-2-7-VM]');
  });

  it('parses comma-separated tags', () => {
    expect(parseTags(' a, b ,,c ')).toEqual(['a', 'b', 'c']);
    expect(parseTags(undefined)).toEqual([]);
  });
});
