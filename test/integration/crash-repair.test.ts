// The sweeper's crash repairs on the real runtime and its own sweeper, crashes injected with fault
// points (shared/faults.ts). Capacity (functions/sweeper/capacity.ts): a deploy whose task dies between
// the host's reservation and recording it on the VM leaves a hold no VM owns; the sweeper gives it back
// once the grace has passed, with an event, and the host's figures are what they were. A hold its VM
// owns is kept whatever its age, and a second pass releases nothing. Addresses
// (functions/sweeper/addresses.ts): a deployVirtualMachine that dies after allocating the VM's address
// and before writing the VM leaves an address no VM has; the sweeper gives it back with NET.IPRELEASE.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repairAddresses } from '../../functions/sweeper/addresses.ts';
import { CAPACITY_REPAIR_EVENT, repairCapacity } from '../../functions/sweeper/capacity.ts';
import { systemActor } from '../../shared/bootstrap.ts';
import { HOLD_GRACE_MS } from '../../shared/capacity-repair.ts';
import { listHolds, reserveHostCapacity } from '../../shared/db/capacity.ts';
import { getHost } from '../../shared/db/hosts.ts';
import { listAllocatedAddresses } from '../../shared/db/ipam.ts';
import { getVmConsistent } from '../../shared/db/vms.ts';
import { ApiClient } from '../support/client.ts';
import { playedVmChecks, seedPlayedZone, type PlayedZone } from '../support/played-zone.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { seedVm } from '../support/vm-seed.ts';
import { until } from '../support/wait.ts';
import { ok, unique } from './identity-fixtures.ts';

const SWEEP_SECONDS = 2;
const CRASH_AT_START = 'crash-at-start';
const CRASH_AT_ADDRESSES = 'crash-at-addresses';
const GiB = 1024 ** 3;

let runtime: RunningRuntime;
let admin: ApiClient;
let played: PlayedZone;
let offering: any;

const load = async () => {
  const host = (await getHost(played.host.id))!;
  return { cpu: host.cpuallocated ?? 0, memory: host.memoryallocated ?? 0 };
};

beforeAll(async () => {
  runtime = await startRuntime({
    env: { MOLD_FAULTS: `vm-start.reserved:${CRASH_AT_START},vm-deploy.addresses:${CRASH_AT_ADDRESSES}`, MOLD_SWEEP_INTERVAL_SECONDS: String(SWEEP_SECONDS) },
  });
  admin = new ApiClient(runtime.apiUrl, runtime.credentials);
  useRuntimeEndpoints(runtime);
  played = await seedPlayedZone(admin, 110);
  offering = ok(await admin.call('createServiceOffering', { name: unique('so'), displaytext: 'so', cpunumber: 1, cpuspeed: 500, memory: 512 }), 'createServiceOffering').serviceoffering;
}, 120_000);

afterAll(async () => {
  await runtime?.stop();
});

describe('capacity repair', () => {
  it('gives back a reservation whose task died before recording it, once, with an event', async () => {
    const before = await load();
    const deploy = ok(
      await admin.call('deployVirtualMachine', { zoneid: played.zone.id, serviceofferingid: offering.id, templateid: played.template.id, networkids: played.network.id, name: CRASH_AT_START }),
      'deployVirtualMachine',
    );
    const job = await admin.waitForJob(deploy.jobid);
    expect(job.jobstatus).toBe(2);
    // An unexpected error, as a crash is: the job says so without the internals.
    expect(job.jobresult).toMatchObject({ errorcode: 530, errortext: 'Internal error executing command, please contact your system administrator' });
    const vm = (await getVmConsistent(deploy.id))!;
    expect(vm.state).toBe('Error');
    expect(vm.hostId).toBeUndefined();
    // The reservation is still on the host, owned by no VM's record: leaked.
    const [leak] = await listHolds(played.host.id);
    expect(leak).toMatchObject({ vmId: vm.id, jobId: deploy.jobid, cpuMhz: 500, memoryBytes: 512 * 1024 ** 2 });
    expect(await load()).toEqual({ cpu: before.cpu + 500, memory: before.memory + 512 * 1024 ** 2 });

    // The runtime's own sweeper releases it after the grace.
    await until('the leaked hold to be released', load, (now) => now.cpu === before.cpu && now.memory === before.memory, { within: HOLD_GRACE_MS + 5 * SWEEP_SECONDS * 1000 });
    expect(await listHolds(played.host.id)).toEqual([]);
    const events = ok(await admin.call('listEvents', { type: CAPACITY_REPAIR_EVENT, listall: true }), 'listEvents').event ?? [];
    const mine = events.filter((e: any) => e.description.includes(vm.id));
    expect(mine).toHaveLength(1);
    expect(mine[0].description).toBe(
      `Released 500 MHz of CPU and ${512 * 1024 ** 2} bytes of memory held on host ${played.host.name} for VM ${vm.instanceName} (${vm.id}): its VM is Error; the job that reserved it (${deploy.jobid}) has ended`,
    );
    // Nothing left to repair: a pass releases nothing, and the figures stay.
    expect(await repairCapacity(await systemActor(), Date.now() + HOLD_GRACE_MS)).toEqual([]);
    expect(await load()).toEqual(before);
  });

  it('keeps the hold of a VM that runs on the host, however old', async () => {
    const system = await systemActor();
    const vm = await seedVm({ id: system.accountId, domainId: system.domainId, domainTree: system.domainTree, userId: system.userId }, {
      zoneId: played.zone.id,
      serviceOfferingId: offering.id,
      templateId: randomUUID(),
      cpuNumber: 1,
      cpuSpeed: 500,
      memoryMiB: 256,
      state: 'Running',
      hostId: played.host.id,
      podId: played.host.podId,
      clusterId: played.host.clusterId,
    });
    expect(await reserveHostCapacity(played.host.id, { vmId: vm.id }, 500, 256 * 1024 ** 2, { cpuMhz: 8000, memoryBytes: 8 * GiB })).toBe(true);
    const held = await load();
    const repairs = await repairCapacity(system, Date.now() + 10 * HOLD_GRACE_MS);
    expect(repairs.filter((r) => r.vmId === vm.id)).toEqual([]);
    expect(await listHolds(played.host.id)).toMatchObject([{ vmId: vm.id }]);
    expect(await load()).toEqual(held);
  });
});

describe('address repair', () => {
  it('gives back the address of a deploy that died before writing its VM, once, with NET.IPRELEASE', async () => {
    const addresses = async () => (await listAllocatedAddresses(played.network.id)).map((a) => a.ipaddress).sort();
    // A VM that runs with its address, for the repair to leave alone.
    const running = await playedVmChecks(() => admin, () => played).deployed({ zoneid: played.zone.id, serviceofferingid: offering.id, templateid: played.template.id, networkids: played.network.id, name: unique('runs') });
    const before = await addresses();
    expect(before).toContain(running.nic[0].ipaddress);
    const vmCount = async () => ok(await admin.call('listVirtualMachines', { listall: true }), 'listVirtualMachines').count ?? 0;
    const vmsBefore = await vmCount();
    const answer = await admin.call('deployVirtualMachine', { zoneid: played.zone.id, serviceofferingid: offering.id, templateid: played.template.id, networkids: played.network.id, name: CRASH_AT_ADDRESSES });
    expect(answer.status).toBe(530);
    expect(await vmCount()).toBe(vmsBefore);
    const leaked = (await listAllocatedAddresses(played.network.id)).filter((a) => !before.includes(a.ipaddress));
    expect(leaked).toHaveLength(1);
    expect(leaked[0]!.vmId).toBeDefined();

    await until('the orphaned address to be released', addresses, (now) => now.length === before.length, { within: HOLD_GRACE_MS + 5 * SWEEP_SECONDS * 1000 });
    expect(await addresses()).toEqual(before);
    const events = ok(await admin.call('listEvents', { type: 'NET.IPRELEASE', listall: true }), 'listEvents').event ?? [];
    const mine = events.filter((e: any) => e.description.includes(leaked[0]!.ipaddress));
    expect(mine).toHaveLength(1);
    expect(mine[0].description).toBe(
      `Released address ${leaked[0]!.ipaddress} of network ${played.network.name} (${played.network.id}), allocated ${leaked[0]!.allocated}: its VM ${leaked[0]!.vmId} does not exist`,
    );
    // The address of the VM that has it stays, however old.
    expect(await repairAddresses(await systemActor(), Date.now() + 10 * HOLD_GRACE_MS)).toEqual([]);
    expect(await addresses()).toEqual(before);
  });
});
