// A zone for tests that need one (templates, offerings, networks), made through the repository
// layer after useRuntimeEndpoints().
import { createZone, type AllocationState, type Zone } from '../../shared/db/infrastructure.ts';

export function seedZone(name: string, options: { allocationstate?: AllocationState } = {}): Promise<Zone> {
  return createZone({ name, networktype: 'Advanced', allocationstate: options.allocationstate ?? 'Enabled' });
}
