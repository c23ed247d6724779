// Which allocated guest addresses are orphans, as a pure decision (the reconciler around it is
// functions/sweeper/addresses.ts). An address names the VM it was allocated for; it is an orphan when
// that VM does not have it — the VM was never written (the deploy died after allocating), gave its
// addresses back without this one going (a release cut short), or has no NIC with it — and neither the
// address nor the VM changed within the grace (the deploy writes its VM within the API's time limit).
import { HOLD_GRACE_MS } from './capacity-repair.ts';
import type { AllocatedAddress } from './db/ipam.ts';
import type { VirtualMachine } from './db/vms.ts';
import { cloudstackMillis } from './db/jobs.ts';

export type AddressVm = Pick<VirtualMachine, 'id' | 'nics'> & { addressesReleased?: unknown; lastUpdated?: unknown };

export type AddressDecision = { kind: 'keep'; reason: string } | { kind: 'release'; reason: string };

/** Keep or release one allocated address; `vm` is its VM's record, undefined when there is none. Pure. */
export function decideAddress(address: AllocatedAddress, vm: AddressVm | undefined, now: number, graceMs = HOLD_GRACE_MS): AddressDecision {
  if (!address.vmId) return { kind: 'keep', reason: 'it names no VM (allocated before addresses did)' };
  const has = vm && !vm.addressesReleased && vm.nics.some((nic) => nic.networkId === address.networkId && nic.ip === address.ipaddress);
  if (has) return { kind: 'keep', reason: 'its VM has it' };
  if (!(now - cloudstackMillis(address.allocated) >= graceMs)) return { kind: 'keep', reason: 'it was allocated moments ago' };
  if (vm && now - cloudstackMillis(vm.lastUpdated) < graceMs) return { kind: 'keep', reason: 'its VM changed moments ago' };
  if (!vm) return { kind: 'release', reason: `its VM ${address.vmId} does not exist` };
  if (vm.addressesReleased) return { kind: 'release', reason: `its VM ${vm.id} gave its addresses back` };
  return { kind: 'release', reason: `its VM ${vm.id} has no NIC with it` };
}
