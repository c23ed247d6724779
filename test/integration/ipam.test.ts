// IPAM against the real runtime's table: a shared network made through the API, addresses
// allocated and released through shared/db/ipam.ts (no API command allocates yet), concurrently.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InsufficientCapacity, InvalidParameter } from '../../shared/cloudstack/errors.ts';
import { allocateAddress, listAllocatedAddresses, releaseAddress } from '../../shared/db/ipam.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { seedZone } from '../support/zones.ts';
import { ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';
import { patience } from '../support/wait.ts';

describe('IPAM', () => {
  let world: World;
  let physicalId: string;
  let offeringId: string;
  let zoneId: string;
  let vlan = 500;
  let subnet = 10;

  /** A shared network whose one range is `count` addresses from .10 on. */
  async function network(count: number) {
    vlan += 1;
    subnet += 1;
    return ok(
      await world.admin.call('createNetwork', {
        name: unique('ipam'),
        networkofferingid: offeringId,
        zoneid: zoneId,
        physicalnetworkid: physicalId,
        vlan,
        gateway: `10.${subnet}.0.1`,
        netmask: '255.255.255.0',
        startip: `10.${subnet}.0.10`,
        endip: `10.${subnet}.0.${9 + count}`,
      }),
      'createNetwork',
    ).network;
  }

  beforeAll(async () => {
    world = await startWorld();
    useRuntimeEndpoints(world.runtime);
    zoneId = (await seedZone(unique('zone'), { allocationstate: 'Disabled' })).id;
    offeringId = ok(await world.admin.call('listNetworkOfferings', { name: 'DefaultSharedNetworkOffering' }), 'listNetworkOfferings').networkoffering[0].id;
    const created = ok(await world.admin.call('createPhysicalNetwork', { zoneid: zoneId, name: 'ipam', vlan: '100-199' }), 'createPhysicalNetwork');
    expect((await world.admin.waitForJob(created.jobid)).jobstatus).toBe(1);
    physicalId = created.id;
  }, patience(60_000));

  afterAll(async () => {
    await world?.runtime.stop();
  });

  it('50 parallel allocations from a 40-address range give 40 distinct addresses and 10 clean 533 errors', async () => {
    const net = await network(40);
    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, () => allocateAddress(net.id)));
    const given = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.ipaddress] : []));
    const errors = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason] : []));
    expect(given).toHaveLength(40);
    expect(new Set(given).size).toBe(40);
    expect(given.every((ip) => /^10\.\d+\.0\.(1\d|[2-4]\d)$/.test(ip))).toBe(true);
    expect(errors).toHaveLength(10);
    for (const error of errors) {
      expect(error).toBeInstanceOf(InsufficientCapacity);
      expect(error).toMatchObject({ errorcode: 533, cserrorcode: 4320, message: 'Insufficient address capacity' });
    }
    const listed = await listAllocatedAddresses(net.id);
    expect(listed.map((a) => a.ipaddress).sort()).toEqual([...given].sort());
    // The network cannot go while they are held.
    refused(await world.admin.call('deleteNetwork', { id: net.id }), 'deleteNetwork', 536, /it has 40 allocated IP addresses in use/);
  }, patience(60_000));

  it('releases addresses for reuse, skips the gateway and honours a preferred address', async () => {
    const net = await network(3);
    const first = await allocateAddress(net.id, { preferred: `10.${subnet}.0.11` });
    expect(first.ipaddress).toBe(`10.${subnet}.0.11`);
    await expect(allocateAddress(net.id, { preferred: `10.${subnet}.0.11` })).rejects.toThrow(/already allocated/);
    await expect(allocateAddress(net.id, { preferred: `10.${subnet}.0.99` })).rejects.toBeInstanceOf(InvalidParameter);
    await expect(allocateAddress(net.id, { preferred: `10.${subnet}.0.1` })).rejects.toThrow(/is not in the IP ranges/);
    await expect(allocateAddress(net.id, { preferred: 'nonsense' })).rejects.toThrow(/Invalid format/);
    const rest = [await allocateAddress(net.id), await allocateAddress(net.id)].map((a) => a.ipaddress).sort();
    expect(rest).toEqual([`10.${subnet}.0.10`, `10.${subnet}.0.12`]);
    await expect(allocateAddress(net.id)).rejects.toThrow('Insufficient address capacity');
    expect(await releaseAddress(net.id, `10.${subnet}.0.12`)).toBe(true);
    expect((await allocateAddress(net.id)).ipaddress).toBe(`10.${subnet}.0.12`);
    for (const ip of ['10', '11', '12']) expect(await releaseAddress(net.id, `10.${subnet}.0.${ip}`)).toBe(true);
    expect(await listAllocatedAddresses(net.id)).toEqual([]);
    // Now empty, it can be deleted.
    const deleted = ok(await world.admin.call('deleteNetwork', { id: net.id }), 'deleteNetwork');
    expect((await world.admin.waitForJob(deleted.jobid)).jobstatus).toBe(1);
  });

  it('allocates from every range of the network, and a range being deleted gives none', async () => {
    const net = await network(1);
    const second = ok(
      await world.admin.call('createVlanIpRange', { networkid: net.id, startip: `10.${subnet}.0.100`, endip: `10.${subnet}.0.101` }),
      'createVlanIpRange',
    ).vlan;
    const got = await Promise.all([allocateAddress(net.id), allocateAddress(net.id), allocateAddress(net.id)]);
    expect(got.map((a) => a.ipaddress).sort()).toEqual([`10.${subnet}.0.10`, `10.${subnet}.0.100`, `10.${subnet}.0.101`]);
    expect(got.find((a) => a.ipaddress.endsWith('.100'))!.rangeId).toBe(second.id);
    await releaseAddress(net.id, `10.${subnet}.0.100`);
    await releaseAddress(net.id, `10.${subnet}.0.101`);
    // Deleting the second range and allocating race: never both an address from it and its deletion.
    const [deletion, allocation] = await Promise.allSettled([
      world.admin.call('deleteVlanIpRange', { id: second.id }),
      allocateAddress(net.id),
    ]);
    const deleted = deletion.status === 'fulfilled' && deletion.value.status === 200;
    const allocated = allocation.status === 'fulfilled' ? allocation.value.ipaddress : undefined;
    if (deleted) expect(allocated).toBeUndefined();
    else expect(allocated).toMatch(/\.10[01]$/);
    const remaining = ok(await world.admin.call('listVlanIpRanges', { networkid: net.id }), 'listVlanIpRanges').vlaniprange;
    expect(remaining.some((r: any) => r.id === second.id)).toBe(!deleted);
  });
});
