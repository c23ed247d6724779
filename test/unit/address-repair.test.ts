// shared/address-repair.ts decideAddress over every combination of what it reads: whether the address
// names a VM, whether that VM exists, has the address, gave its addresses back, and how long ago the
// address was allocated and the VM last changed.
import { describe, expect, it } from 'vitest';
import { decideAddress, type AddressVm } from '../../shared/address-repair.ts';
import { HOLD_GRACE_MS } from '../../shared/capacity-repair.ts';
import type { AllocatedAddress } from '../../shared/db/ipam.ts';

const NOW = Date.parse('2026-12-02T12:00:00Z');
const csDate = (ago: number) => new Date(NOW - ago).toISOString().replace(/\.\d{3}Z$/, '+0000');
const YOUNG = HOLD_GRACE_MS / 2;
const OLD = HOLD_GRACE_MS * 4;

const address = (ago: number, vmId?: string): AllocatedAddress => ({ networkId: 'net-1', rangeId: 'r-1', ipaddress: '10.1.0.20', allocated: csDate(ago), ...(vmId && { vmId }) });
const nic = (networkId: string, ip: string) => ({ id: 'n', networkId, mac: '02:00:00:00:00:01', ip, netmask: '255.255.255.0', gateway: '10.1.0.1', isDefault: true }) as AddressVm['nics'][number];

const vms: Record<string, Omit<AddressVm, 'lastUpdated'> | undefined> = {
  gone: undefined,
  has: { id: 'vm-1', nics: [nic('net-1', '10.1.0.20')] },
  released: { id: 'vm-1', nics: [nic('net-1', '10.1.0.20')], addressesReleased: true },
  otherIp: { id: 'vm-1', nics: [nic('net-1', '10.1.0.21')] },
  otherNetwork: { id: 'vm-1', nics: [nic('net-2', '10.1.0.20')] },
  noNics: { id: 'vm-1', nics: [] },
};

describe('decideAddress', () => {
  it('releases exactly the addresses naming a VM that does not have them, quiet past the grace', () => {
    let released = 0;
    for (const named of [true, false]) {
      for (const [kind, vm] of Object.entries(vms)) {
        for (const [allocatedAge, ago] of Object.entries({ young: YOUNG, old: OLD })) {
          for (const [changed, lastUpdated] of Object.entries({ young: csDate(YOUNG), old: csDate(OLD), never: undefined })) {
            const read = vm && { ...vm, ...(lastUpdated && { lastUpdated }) };
            const decision = decideAddress(address(ago, named ? 'vm-1' : undefined), read, NOW);
            const quiet = allocatedAge === 'old' && (!vm || changed !== 'young');
            const expected = named && kind !== 'has' && quiet ? 'release' : 'keep';
            expect(decision.kind, `named=${named} ${kind} allocated=${allocatedAge} changed=${changed}: ${decision.reason}`).toBe(expected);
            if (expected === 'release') released++;
          }
        }
      }
    }
    // gone ×3 changes + 4 VMs without it × 2 quiet changes
    expect(released).toBe(3 + 4 * 2);
  });

  it('says why', () => {
    expect(decideAddress(address(OLD, 'vm-9'), undefined, NOW)).toEqual({ kind: 'release', reason: 'its VM vm-9 does not exist' });
    expect(decideAddress(address(OLD, 'vm-1'), vms.released, NOW)).toEqual({ kind: 'release', reason: 'its VM vm-1 gave its addresses back' });
    expect(decideAddress(address(OLD, 'vm-1'), vms.otherIp, NOW)).toEqual({ kind: 'release', reason: 'its VM vm-1 has no NIC with it' });
    expect(decideAddress(address(OLD), undefined, NOW).reason).toBe('it names no VM (allocated before addresses did)');
    expect(decideAddress(address(OLD, 'vm-1'), vms.has, NOW).reason).toBe('its VM has it');
    expect(decideAddress(address(YOUNG, 'vm-1'), undefined, NOW).reason).toBe('it was allocated moments ago');
    expect(decideAddress(address(OLD, 'vm-1'), { ...vms.noNics!, lastUpdated: csDate(YOUNG) }, NOW).reason).toBe('its VM changed moments ago');
  });
});
