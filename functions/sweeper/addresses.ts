// The address reconciler: every sweep, each guest network's allocated addresses are read with the
// VMs they name, shared/address-repair.ts decides which are orphans, and those are given back only
// while they are still that allocation (the same VM, the same time). Each repair records upstream's
// NET.IPRELEASE event, owned by the network's owner.
import { decideAddress } from '../../shared/address-repair.ts';
import { recordEvent, type Actor } from '../../shared/db/events.ts';
import { listAllocatedAddresses, releaseAddress } from '../../shared/db/ipam.ts';
import { listNetworks } from '../../shared/db/networks.ts';
import { getVmConsistent } from '../../shared/db/vms.ts';

export interface AddressRepair {
  networkId: string;
  ipaddress: string;
  vmId: string;
  reason: string;
}

/** Releases every orphaned address; resolves what it released. `now` for tests. */
export async function repairAddresses(actor: Actor, now = Date.now()): Promise<AddressRepair[]> {
  const repairs: AddressRepair[] = [];
  for (const network of await listNetworks()) {
    for (const address of await listAllocatedAddresses(network.id)) {
      if (!address.vmId) continue;
      const decision = decideAddress(address, await getVmConsistent(address.vmId), now);
      if (decision.kind === 'keep') continue;
      if (!(await releaseAddress(network.id, address.ipaddress, address))) continue;
      repairs.push({ networkId: network.id, ipaddress: address.ipaddress, vmId: address.vmId, reason: decision.reason });
      await recordEvent(actor, {
        type: 'NET.IPRELEASE',
        description: `Released address ${address.ipaddress} of network ${network.name} (${network.id}), allocated ${address.allocated}: ${decision.reason}`,
        resourceId: network.id,
        resourceType: 'Network',
      });
    }
  }
  return repairs;
}
