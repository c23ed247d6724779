// The resource-count recount's decisions, pure (the reconciler is functions/sweeper/resource-counts.ts).
// Counts are kept by increments at each allocation and release; a function that died between the two
// halves of a change leaves them off. Every resourcecount.check.interval, as upstream's
// ResourceCountCheckTask, the counts are recounted from the records, but only while no job is pending:
// a job may have reserved a count before writing the record it stands for.

import type { ResourceTypeName } from './db/limits.ts';

export interface CountChange {
  type: ResourceTypeName;
  from: number | undefined;
  to: number;
}

/** The counts to correct: each type whose stored count differs from what the records hold. */
export function countChanges(stored: Readonly<Partial<Record<ResourceTypeName, number>>>, counted: Readonly<Partial<Record<ResourceTypeName, number>>>): CountChange[] {
  return (Object.entries(counted) as [ResourceTypeName, number][])
    .filter(([type, to]) => (stored[type] ?? 0) !== to)
    .map(([type, to]) => ({ type, from: stored[type], to }));
}

/** What a primary storage pool's recount needs of a volume. */
export type PoolVolume = { poolId: string; sizeBytes: number; poolReserved?: boolean };

export interface PoolChange {
  poolId: string;
  from: number;
  to: number;
}

/**
 * The primary storage pools whose allocated bytes (disksizeallocated) differ from what their volumes
 * hold: every volume that reserved its bytes on the pool (poolReserved) counts its size there, and
 * nothing else does (a reservation without its volume's record is what a function killed between the
 * two writes leaves). Pure.
 */
export function poolChanges(pools: readonly { id: string; disksizeallocated?: number }[], volumes: readonly PoolVolume[]): PoolChange[] {
  const held = new Map<string, number>();
  for (const volume of volumes) if (volume.poolReserved && volume.poolId) held.set(volume.poolId, (held.get(volume.poolId) ?? 0) + volume.sizeBytes);
  return pools.map((pool) => ({ poolId: pool.id, from: pool.disksizeallocated ?? 0, to: held.get(pool.id) ?? 0 })).filter((change) => change.from !== change.to);
}
