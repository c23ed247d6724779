import { describe, expect, it } from 'vitest';
import { countChanges, poolChanges } from '../../shared/resource-count-repair.ts';

describe('resource count repair', () => {
  it('corrects each count the records contradict, and only those', () => {
    expect(countChanges({ user_vm: 5, cpu: 2, memory: 512 }, { user_vm: 1, cpu: 2, memory: 512 })).toEqual([{ type: 'user_vm', from: 5, to: 1 }]);
    expect(countChanges({ user_vm: 1 }, { user_vm: 1, volume: 0 })).toEqual([]);
  });
  it('takes a count never stored as 0: a count to store is one that is not 0', () => {
    expect(countChanges({}, { template: 0 })).toEqual([]);
    expect(countChanges({}, { template: 2 })).toEqual([{ type: 'template', from: undefined, to: 2 }]);
    expect(countChanges({ network: 3 }, { network: 0 })).toEqual([{ type: 'network', from: 3, to: 0 }]);
  });

  it("sets each pool's allocated bytes to what its reserving volumes hold, and only where they differ", () => {
    const pools = [{ id: 'a', disksizeallocated: 10 }, { id: 'b', disksizeallocated: 4 }, { id: 'c' }, { id: 'd', disksizeallocated: 3 }];
    const volumes = [
      { poolId: 'a', sizeBytes: 4, poolReserved: true },
      { poolId: 'a', sizeBytes: 2, poolReserved: true },
      // Not reserved (allocated, or released on its way out): it holds nothing.
      { poolId: 'a', sizeBytes: 100 },
      { poolId: 'b', sizeBytes: 4, poolReserved: true },
      { poolId: 'c', sizeBytes: 1, poolReserved: true },
      // A pool no longer listed is nobody's to correct.
      { poolId: 'gone', sizeBytes: 9, poolReserved: true },
      { poolId: '', sizeBytes: 9, poolReserved: true },
    ];
    expect(poolChanges(pools, volumes)).toEqual([
      { poolId: 'a', from: 10, to: 6 },
      { poolId: 'c', from: 0, to: 1 },
      { poolId: 'd', from: 3, to: 0 },
    ]);
    expect(poolChanges([], volumes)).toEqual([]);
  });
});
