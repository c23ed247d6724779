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
