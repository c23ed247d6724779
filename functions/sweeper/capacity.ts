// The capacity reconciler: every sweep, each host's holds (shared/db/capacity.ts) are read with their
// VMs and jobs, shared/capacity-repair.ts decides which are leaked, and those are given back through
// the same conditional release every other path uses (a hold released meanwhile is not released
// twice). Each repair records an event on the host.
import { recordEvent, type Actor } from '../../shared/db/events.ts';
import { listHolds, releaseHostCapacity } from '../../shared/db/capacity.ts';
import { listHostRecords } from '../../shared/db/hosts.ts';
import { getJob, JobStatus } from '../../shared/db/jobs.ts';
import { getVmConsistent } from '../../shared/db/vms.ts';
import { decideHold } from '../../shared/capacity-repair.ts';

/** Mold's event for a capacity hold given back by the reconciler (upstream has none). */
export const CAPACITY_REPAIR_EVENT = 'CAPACITY.RELEASE';

export interface CapacityRepair {
  hostId: string;
  vmId: string;
  cpuMhz: number;
  memoryBytes: number;
  reason: string;
}

/** Releases every leaked hold; resolves what it released. `now` for tests. */
export async function repairCapacity(actor: Actor, now = Date.now()): Promise<CapacityRepair[]> {
  const repairs: CapacityRepair[] = [];
  for (const host of await listHostRecords()) {
    for (const hold of await listHolds(host.id)) {
      const [vm, job] = await Promise.all([getVmConsistent(hold.vmId), hold.jobId ? getJob(hold.jobId) : undefined]);
      const decision = decideHold({ hold, vm, jobPending: job?.jobstatus === JobStatus.Pending }, now);
      if (decision.kind === 'keep') continue;
      await releaseHostCapacity(host.id, { id: hold.vmId });
      const repair = { hostId: host.id, vmId: hold.vmId, cpuMhz: hold.cpuMhz, memoryBytes: hold.memoryBytes, reason: decision.reason };
      repairs.push(repair);
      await recordEvent(actor, {
        type: CAPACITY_REPAIR_EVENT,
        description: `Released ${hold.cpuMhz} MHz of CPU and ${hold.memoryBytes} bytes of memory held on host ${host.name} for VM ${vm?.instanceName ?? hold.vmId} (${hold.vmId}): ${decision.reason}`,
        resourceId: host.id,
        resourceType: 'Host',
      });
    }
  }
  return repairs;
}
