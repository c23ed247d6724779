// The resource-count reconciler on the real runtime (sweeping every 2 s): counts left wrong (as a
// function that died between reserving and recording leaves them) are recounted from the records every
// resourcecount.check.interval seconds, the account's and its domain's, with one RESOURCE.COUNT.REPAIR
// event each; with the interval 0 the recount never runs. A primary storage pool's allocated bytes are
// recounted in the same pass from the volumes that reserved them.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDomain } from '../../shared/db/identity.ts';
import { setResourceCount, storedCounts } from '../../shared/db/limits.ts';
import { getStoragePool, setPoolAllocated } from '../../shared/db/storage.ts';
import { putVolume, type Volume } from '../../shared/db/vms.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { seedVm } from '../support/vm-seed.ts';
import { until } from '../support/wait.ts';
import { ApiClient as Client } from '../support/client.ts';
import { ok, unique } from './identity-fixtures.ts';

const SWEEP_SECONDS = 2;
let runtime: RunningRuntime;
let admin: ApiClient;
let member: Member;
let zoneId: string;

const events = async () =>
  (ok(await admin.call('listEvents', { listall: true, type: 'RESOURCE.COUNT.REPAIR' }), 'listEvents').event ?? []).filter((e: any) => e.resourceid === member.account.id);

beforeAll(async () => {
  runtime = await startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: String(SWEEP_SECONDS) } });
  useRuntimeEndpoints(runtime);
  admin = new Client(runtime.apiUrl, runtime.credentials);
  const root = (await getDomain(runtime.credentials.domainid))!;
  member = await seedMember(runtime.apiUrl, unique('counted'), root, 'User');
  const zone = ok(await admin.call('createZone', { name: unique('cz'), networktype: 'Advanced', dns1: '192.0.2.53' }), 'createZone').zone;
  const offering = ok(await admin.call('createServiceOffering', { name: unique('so'), displaytext: 'so', cpunumber: 2, cpuspeed: 1000, memory: 512 }), 'createServiceOffering').serviceoffering;
  zoneId = zone.id;
  await seedVm({ ...member.account, userId: member.user.id }, { zoneId: zone.id, serviceOfferingId: offering.id, templateId: randomUUID(), cpuNumber: 2, cpuSpeed: 1000, memoryMiB: 512, state: 'Stopped' });
});
afterAll(async () => {
  await runtime?.stop();
});

describe('the resource recount', () => {
  it('is off with resourcecount.check.interval 0: a wrong count stays', async () => {
    ok(await admin.call('updateConfiguration', { name: 'resourcecount.check.interval', value: '0' }), 'updateConfiguration');
    await setResourceCount('ACCOUNT', member.account.id, 'user_vm', 5);
    // Three sweeps later it is still wrong.
    await new Promise((resolve) => setTimeout(resolve, 3 * SWEEP_SECONDS * 1000));
    expect((await storedCounts('ACCOUNT', member.account.id)).user_vm).toBe(5);
    expect(await events()).toEqual([]);
  });

  it('recounts from the records once enabled: the account and its domain, one event per count', async () => {
    await setResourceCount('ACCOUNT', member.account.id, 'cpu', 9);
    await setResourceCount('DOMAIN', member.account.domainId, 'user_vm', 40);
    ok(await admin.call('updateConfiguration', { name: 'resourcecount.check.interval', value: '1' }), 'updateConfiguration');
    const counts = await until('the counts to be recounted', () => storedCounts('ACCOUNT', member.account.id), (c) => c.user_vm === 1 && c.cpu === 2 && c.memory === 512, { within: 5 * SWEEP_SECONDS * 1000 });
    expect(counts).toMatchObject({ user_vm: 1, cpu: 2, memory: 512 });
    await until('the domain to be recounted', () => storedCounts('DOMAIN', member.account.domainId), (c) => c.user_vm !== 40, { within: 5 * SWEEP_SECONDS * 1000 });
    const descriptions = (await events()).map((e: any) => e.description);
    expect(descriptions).toEqual(expect.arrayContaining([expect.stringMatching(/^Recounted user_vm of account .*: 5 → 1 /), expect.stringMatching(/^Recounted cpu of account .*: 9 → 2 /)]));
    // Right counts are left alone: later sweeps add no event.
    const seen = descriptions.length;
    await new Promise((resolve) => setTimeout(resolve, 3 * SWEEP_SECONDS * 1000));
    expect(await events()).toHaveLength(seen);
  });

  it("recounts a pool's allocated bytes from the volumes that reserved them, and leaves a right one alone", async () => {
    const GiB = 1024 ** 3;
    const pool = ok(
      await admin.call('createStoragePool', { zoneid: zoneId, scope: 'zone', hypervisor: 'KVM', name: unique('pool'), url: `SharedMountPoint:///mnt/${unique('p')}`, capacitybytes: 100 * GiB }),
      'createStoragePool',
    ).storagepool;
    const volume = (size: number, reserved: boolean): Volume => ({
      id: randomUUID(), name: unique('vol'), type: 'DATADISK', zoneId, poolId: pool.id, path: '', sizeBytes: size, accountId: member.account.id,
      domainId: member.account.domainId, domainTree: member.account.domainTree, state: reserved ? 'Ready' : 'Allocated', created: new Date().toISOString(), ...(reserved && { poolReserved: true }),
    }) as Volume;
    await putVolume(volume(2 * GiB, true));
    await putVolume(volume(3 * GiB, true));
    await putVolume(volume(5 * GiB, false));
    // 7 GiB held where the volumes hold 5: what a function killed after reserving, before recording, leaves.
    expect(await setPoolAllocated(pool.id, 0, 7 * GiB)).toBe(true);
    const recounted = await until('the pool to be recounted', () => getStoragePool(pool.id), (p) => p?.disksizeallocated === 5 * GiB, { within: 5 * SWEEP_SECONDS * 1000 });
    expect(recounted?.disksizeallocated).toBe(5 * GiB);
    const repairs = (ok(await admin.call('listEvents', { listall: true, type: 'RESOURCE.COUNT.REPAIR' }), 'listEvents').event ?? []).filter((e: any) => e.resourceid === pool.id);
    expect(repairs.map((e: any) => e.description)).toEqual([`Recounted the allocated bytes of storage pool ${pool.name}: ${7 * GiB} → ${5 * GiB} (what its volumes hold)`]);
    await new Promise((resolve) => setTimeout(resolve, 3 * SWEEP_SECONDS * 1000));
    expect((await getStoragePool(pool.id))?.disksizeallocated).toBe(5 * GiB);
  });
});
