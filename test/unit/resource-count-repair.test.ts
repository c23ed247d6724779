import { describe, expect, it } from 'vitest';
import { countChanges } from '../../shared/resource-count-repair.ts';

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
});
