// Host anti-affinity is atomic: 30 deployVirtualMachine calls at once into one anti-affinity group
// over three hosts (each with room for all 30) run exactly three VMs, one per host; the other 27 fail
// with InsufficientCapacity and give back everything they held. Then a migration within the group is
// refused by the same slots. Through /client/api and the real vm-deploy state machine, the test
// playing the zone's agent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHost, updateHostRecord } from '../../shared/db/hosts.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { getStoragePool } from '../../shared/db/storage.ts';
import { holdsSlot } from '../../shared/db/capacity.ts';
import { answer, receiveCommand } from '../support/agent-seed.ts';
import { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { addPlayedHost, GiB, playedVmChecks, seedPlayedZone, started, type PlayedZone } from '../support/played-zone.ts';
import { startRuntime, useRuntimeEndpoints } from '../support/runtime.ts';
import { patience } from '../support/wait.ts';
import { ok, unique, type World } from './identity-fixtures.ts';

let world: World;
let played: PlayedZone;
let admin: ApiClient;
let alice: Member;
let hosts: any[];
let offering: any;
let group: any;

const { addressCount } = playedVmChecks(() => admin, () => played);

beforeAll(async () => {
  // The 30 calls arrive at once at one local API process on a small machine: the stand-in's API
  // Gateway timeout (29 s, where each call would have its own Lambda) is stretched by the suite's slack.
  const runtime = await startRuntime({ env: { MOLD_API_TIMEOUT_SECONDS: String(Math.round(patience(60_000) / 1000)) } });
  world = { runtime, admin: new ApiClient(runtime.apiUrl, runtime.credentials), rootDomainId: runtime.credentials.domainid };
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  alice = await seedMember(world.runtime.apiUrl, unique('alice'), (await getDomain(world.rootDomainId))!, 'User');
  played = await seedPlayedZone(admin, 80);
  hosts = [played.host];
  for (const n of [12, 13]) hosts.push(await addPlayedHost(played.cluster.id, played.seeded, { name: unique(`kvm-${n}`), ipaddress: `10.80.0.${n}` }));
  // Room for 30 VMs in alice's limits (the default is 20): only the hosts may say no.
  for (const resourcetype of [0, 2, 8, 9, 10]) {
    ok(await admin.call('updateResourceLimit', { account: alice.account.name, domainid: world.rootDomainId, resourcetype, max: -1 }), 'updateResourceLimit');
  }
  offering = ok(await admin.call('createServiceOffering', { name: unique('wee'), displaytext: 'wee', cpunumber: 1, cpuspeed: 100, memory: 128 }), 'createServiceOffering').serviceoffering;
  const created = ok(await alice.client.call('createAffinityGroup', { name: 'apart', type: 'host anti-affinity' }), 'createAffinityGroup');
  group = (await alice.client.waitForJob(created.jobid)).jobresult.affinitygroup;
}, patience(120_000));

afterAll(async () => {
  await world?.runtime.stop();
});

describe('anti-affinity slots', () => {
  it('a slot is held by a member placing itself or on the host, not by one that stopped, moved or left the group', () => {
    const member = { affinityGroupIds: ['g'], migrateToHostId: undefined };
    expect(holdsSlot({ ...member, state: 'Starting', hostId: undefined }, 'g', 'h')).toBe(true);
    expect(holdsSlot({ ...member, state: 'Running', hostId: 'h' }, 'g', 'h')).toBe(true);
    expect(holdsSlot({ ...member, state: 'Migrating', hostId: 'x', migrateToHostId: 'h' }, 'g', 'h')).toBe(true);
    expect(holdsSlot({ ...member, state: 'Running', hostId: 'x' }, 'g', 'h')).toBe(false);
    expect(holdsSlot({ ...member, state: 'Stopped', hostId: undefined }, 'g', 'h')).toBe(false);
    expect(holdsSlot({ ...member, state: 'Error', hostId: undefined }, 'g', 'h')).toBe(false);
    expect(holdsSlot({ ...member, affinityGroupIds: [], state: 'Running', hostId: 'h' }, 'g', 'h')).toBe(false);
    expect(holdsSlot(undefined, 'g', 'h')).toBe(false);
  });

  it('runs exactly one of 30 concurrent deploys per host; the 27 others fail cleanly with nothing reserved', async () => {
    const pool = (await getStoragePool(played.pool.id))!;
    const [addresses, poolBytes] = [await addressCount(), pool.disksizeallocated ?? 0];
    const jobs = await Promise.all(
      Array.from({ length: 30 }, async (_, i) =>
        ok(
          await alice.client.call('deployVirtualMachine', {
            zoneid: played.zone.id,
            serviceofferingid: offering.id,
            templateid: played.template.id,
            name: `apart-${i}`,
            affinitygroupids: group.id,
          }),
          'deployVirtualMachine',
        ).jobid as string,
      ),
    );
    // The agent: every startVm that reaches it runs.
    let answered = 0;
    const agent = (async () => {
      for (;;) {
        const message = await receiveCommand(played.seeded.agent.queueUrl, 20_000).catch(() => undefined);
        if (!message) return;
        expect(message.type).toBe('startVm');
        await answer(message, started(message));
        answered++;
      }
    })();
    const results = await Promise.all(jobs.map((jobid) => alice.client.waitForJob(jobid, 240_000, 250)));
    await agent;
    const ran = results.filter((r) => r.jobstatus === 1);
    const failed = results.filter((r) => r.jobstatus === 2);
    expect(ran).toHaveLength(3);
    expect(answered).toBe(3);
    // Where they run, as the root admin sees it (users are not shown host ids).
    const placed = await Promise.all(ran.map(async (r) => ok(await admin.call('listVirtualMachines', { id: r.jobresult.virtualmachine.id }), 'listVirtualMachines').virtualmachine[0].hostid));
    expect(new Set(placed)).toEqual(new Set(hosts.map((h) => h.id)));
    expect(failed).toHaveLength(27);
    for (const f of failed) expect(f.jobresult).toMatchObject({ errorcode: 533, errortext: expect.stringMatching(/^Unable to create a deployment for VM\[User\|i-/) });
    // Nothing held by the failed ones: one VM's CPU and memory per host, three disks, three addresses.
    for (const h of hosts) expect(await getHost(h.id)).toMatchObject({ cpuallocated: 100, memoryallocated: 128 * 1024 * 1024 });
    expect(await addressCount()).toBe(addresses + 3);
    expect(((await getStoragePool(played.pool.id))!.disksizeallocated ?? 0) - poolBytes).toBe(3 * 2 * GiB);
    const listed = ok(await alice.client.call('listVirtualMachines', { pagesize: -1 }), 'listVirtualMachines').virtualmachine as any[];
    expect(listed.filter((v) => v.state === 'Error')).toHaveLength(27);
  }, patience(300_000));

  it('a migration into a host the group already holds is refused and changes nothing', async () => {
    const running = (ok(await admin.call('listVirtualMachines', { listall: true, pagesize: -1, state: 'Running' }), 'listVirtualMachines').virtualmachine as any[]).filter((v) => v.affinitygroup?.[0]?.id === group.id);
    expect(running).toHaveLength(3);
    const [mover, other] = running;
    // The played agent sends no reports: the hosts are Up as far as this test goes.
    for (const h of hosts) await updateHostRecord(h.id, { status: 'Up', lastpinged: new Date().toISOString() });
    const before = await Promise.all(hosts.map(async (h) => (await getHost(h.id))!.memoryallocated));
    const job = await admin.waitForJob(ok(await admin.call('migrateVirtualMachine', { virtualmachineid: mover.id, hostid: other.hostid }), 'migrateVirtualMachine').jobid);
    expect(job.jobstatus).toBe(2);
    expect(job.jobresult.errorcode).toBe(533);
    expect(await Promise.all(hosts.map(async (h) => (await getHost(h.id))!.memoryallocated))).toEqual(before);
    const after = ok(await admin.call('listVirtualMachines', { id: mover.id }), 'listVirtualMachines').virtualmachine[0];
    expect(after).toMatchObject({ state: 'Running', hostid: mover.hostid });
  }, patience(120_000));
});
