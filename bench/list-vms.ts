// `npm run bench:vms`: how fast the API answers a signed listVirtualMachines over BENCH_VMS VMs
// (10,000; BENCH_VMS=100000 for the issue's scale) of BENCH_ACCOUNTS accounts (200). Starts the local
// runtime as a child process (a fresh data directory), seeds the VM records through the repository
// layer (importVmRecords of shared/db/vms.ts, 25 items per BatchWriteItem), restarts the runtime, and
// times the first call of the fresh process, then `pagesize=500` calls with 1 and 8 clients: as the
// root admin with listall=true (page 1, and every page in turn) and as a user (its own account).
// See bench/README.md.
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { createHostRecord, type Host } from '../shared/db/hosts.ts';
import { createAccount, createDomain, getDomain, listAllDomains, listUsersUnder, registerUserKeys } from '../shared/db/identity.ts';
import { createCluster, createPod, createZone } from '../shared/db/infrastructure.ts';
import { listRoles } from '../shared/db/roles.ts';
import { ApiClient } from '../test/support/client.ts';
import { makeVm, seedTemplate } from '../test/support/vm-seed.ts';
import { accountNumber, importVmRecords, instanceNameOf, nextNumbers, type VmState } from '../shared/db/vms.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../test/support/runtime.ts';
import { runCase, signedUrl, timedCall, type CaseResult } from './stats.ts';

const VMS = Number(process.env.BENCH_VMS ?? 10_000);
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 200);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 20);
const PAGE_SIZE = 500;
/** VMs made and written per round; each round's BatchWriteItems run SEED_WRITERS at a time. */
const SEED_ROUND = 2_000;
const SEED_WRITERS = 4;
/** VM records made at once (numbers are taken a round at a time; making one reads nothing). */
const SEED_MAKERS = 32;
const TARGETS = { firstMs: 1_000, p99One: 100, p99Eight: 300 };

function log(line = '') {
  process.stdout.write(`${line}\n`);
}

/** `make(0…count-1)`, at most `width` at a time, results in order. */
async function inTurns<T>(count: number, width: number, make: (n: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) {
        const n = next++;
        results[n] = await make(n);
      }
    }),
  );
  return results;
}

type Keys = { apikey: string; secretkey: string };

/** Seeds the installation; returns the keys of the first account's user. */
async function seed(runtime: RunningRuntime): Promise<Keys> {
  useRuntimeEndpoints(runtime);
  const started = performance.now();
  const admin = new ApiClient(runtime.apiUrl, runtime.credentials);
  const root = (await getDomain(runtime.credentials.domainid))!;
  const userRole = (await listRoles()).find((role) => role.name === 'User')!;
  const domain = await createDomain({ name: 'benchvm', parent: root });
  // A few at a time: DynamoDB Local times out transactions that wait long for its lock.
  const owners = await inTurns(ACCOUNTS, 4, async (i) => {
      const name = `benchvm-${String(i).padStart(3, '0')}`;
      const { account, user } = await createAccount(
        { name, domain, roleId: userRole.id, roleType: 'User' },
        { username: name, password: `pw-${name}-${i}`, firstname: 'Bench', lastname: String(i), email: `${name}@example.com` },
      );
      return { ...account, userId: user.id, user };
    });
  const keys = await registerUserKeys(owners[0]!.user);
  const zone = await createZone({ name: 'benchvm-zone', networktype: 'Advanced', allocationstate: 'Enabled' });
  const pod = await createPod(zone, { name: 'benchvm-pod', allocationstate: 'Enabled' });
  const cluster = await createCluster(pod, { name: 'benchvm-cluster', allocationstate: 'Enabled', hypervisor: 'KVM' });
  const hosts: Host[] = [];
  for (let i = 0; i < 4; i++) hosts.push(await createHostRecord(cluster, { name: `benchvm-host-${i}`, ipaddress: `10.99.0.${i + 1}` }));
  const offeringAnswer = await admin.call('createServiceOffering', { name: 'benchvm-small', displaytext: 'Small', cpunumber: 1, cpuspeed: 1000, memory: 512 });
  if (offeringAnswer.status !== 200) throw new Error(`createServiceOffering: ${JSON.stringify(offeringAnswer.body)}`);
  const offering = offeringAnswer.body.createserviceofferingresponse.serviceoffering;
  const template = await seedTemplate({ accountId: owners[0]!.id, domain }, zone.id, 'benchvm-template', 'Bench template');
  const networkId = randomUUID();
  const states: VmState[] = ['Running', 'Running', 'Running', 'Stopped', 'Destroyed'];
  const ownerNumbers = await Promise.all(owners.map((owner) => accountNumber(owner.id)));
  for (let first = 0; first < VMS; first += SEED_ROUND) {
    const numbers = await nextNumbers('vm', Math.min(SEED_ROUND, VMS - first));
    const made = await inTurns(numbers.length, SEED_MAKERS, (n) => {
        const i = first + n;
        const owner = owners[i % owners.length]!;
        const state = states[i % states.length]!;
        const host = hosts[i % hosts.length]!;
        return makeVm(owner, {
          zoneId: zone.id,
          serviceOfferingId: offering.id,
          templateId: template.id,
          name: `benchvm-${i}`,
          number: numbers[n],
          instanceName: instanceNameOf(ownerNumbers[i % owners.length]!, numbers[n]!),
          state,
          ...(state === 'Running' && { hostId: host.id, podId: host.podId, clusterId: host.clusterId }),
          keypairs: ['bench-key'],
          details: { rootDiskController: 'virtio' },
          nics: [
            {
              id: randomUUID(),
              networkId,
              mac: `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
              ip: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
              netmask: '255.0.0.0',
              gateway: '10.0.0.1',
              vlan: 100,
              isDefault: true,
            },
          ],
        });
      });
    const share = Math.ceil(made.length / SEED_WRITERS);
    await Promise.all(Array.from({ length: SEED_WRITERS }, (_, w) => importVmRecords(made.slice(w * share, (w + 1) * share))));
    log(`  ${first + made.length} VMs seeded…`);
  }
  log(`seeded ${VMS} VMs of ${ACCOUNTS} accounts in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return keys;
}

/** A data directory a previous run seeded (BENCH_DATA_DIR): new keys for the first account's user. */
async function reuse(runtime: RunningRuntime): Promise<Keys> {
  useRuntimeEndpoints(runtime);
  const domain = (await listAllDomains()).find((d) => d.path === 'ROOT/benchvm');
  const user = domain && (await listUsersUnder(domain.tree)).find((u) => u.username === 'benchvm-000');
  if (!user) throw new Error(`${runtime.dataDir} holds no bench:vms seed`);
  log(`reusing the VMs seeded in ${runtime.dataDir}`);
  return registerUserKeys(user);
}

/** The first call of a fresh process, checked. */
async function firstCall(url: string, what: string, expected: { count: number; rows: number }): Promise<number> {
  const first = await timedCall(url);
  if (first.status !== 200) throw new Error(`listVirtualMachines answered HTTP ${first.status}: ${first.body.slice(0, 300)}`);
  const answer = JSON.parse(first.body).listvirtualmachinesresponse;
  log(`${what}: ${(first.bytes / 1024).toFixed(0)} KiB a response, count ${answer.count}, ${answer.virtualmachine?.length ?? 0} VMs in the page; first call ${first.ms.toFixed(1)} ms`);
  if (answer.count !== expected.count) throw new Error(`expected count ${expected.count}, got ${answer.count}`);
  if ((answer.virtualmachine?.length ?? 0) !== expected.rows) throw new Error(`expected ${expected.rows} VMs in the page`);
  return first.ms;
}

async function series(urls: string[]): Promise<CaseResult[]> {
  for (let i = 0; i < WARMUP; i++) await timedCall(urls[i % urls.length]!);
  return [await runCase(urls, 1, REQUESTS), await runCase(urls, 8, REQUESTS)];
}

const verdict = (met: boolean) => (met ? 'met' : 'MISSED');

async function main() {
  const reused = process.env.BENCH_DATA_DIR;
  log(`starting the local runtime${reused ? ` on ${reused}` : ''}…`);
  const seeding = await startRuntime(reused ? { dataDir: reused } : {});
  let keys: Keys;
  try {
    keys = reused ? await reuse(seeding) : await seed(seeding);
  } finally {
    await seeding.stop();
  }
  // The figures are of a process that has read nothing yet: the runtime starts again on the seeded data.
  const runtime = await startRuntime({ dataDir: seeding.dataDir });
  try {
    const pages = Math.ceil(VMS / PAGE_SIZE);
    const adminUrl = (page: number) => signedUrl(runtime, 'listVirtualMachines', { listall: 'true', pagesize: String(PAGE_SIZE), page: String(page) });
    const userUrl = signedUrl(runtime, 'listVirtualMachines', { pagesize: String(PAGE_SIZE) }, keys);
    const ownVms = Math.ceil(VMS / ACCOUNTS);
    // Every fifth VM is Destroyed, which a user does not see (accounts take VMs in turn, so 1 in 5 of each).
    const ownVisible = Array.from({ length: VMS }, (_, i) => i).filter((i) => i % ACCOUNTS === 0 && i % 5 !== 4).length;
    const firstMs = await firstCall(adminUrl(1), `root admin, listall=true pagesize=${PAGE_SIZE} page 1`, { count: VMS, rows: Math.min(PAGE_SIZE, VMS) });
    const userFirstMs = await firstCall(userUrl, `user (${ownVms} VMs in its account, ${ownVisible} not Destroyed), pagesize=${PAGE_SIZE}`, {
      count: ownVisible,
      rows: Math.min(PAGE_SIZE, ownVisible),
    });
    const cases: [string, CaseResult[]][] = [
      ['root admin, listall=true, page 1', await series([adminUrl(1)])],
      [`root admin, listall=true, pages 1–${pages} in turn`, await series(Array.from({ length: pages }, (_, i) => adminUrl(i + 1)))],
      ['user, its own account', await series([userUrl])],
    ];
    log('');
    log('case                                              clients  requests   p50 ms   p99 ms   max ms    req/s');
    for (const [what, results] of cases) {
      for (const r of results) {
        log(
          `${what.padEnd(48)}  ${String(r.clients).padStart(7)}  ${String(r.requests).padStart(8)}  ${r.p50.toFixed(1).padStart(7)}  ${r.p99.toFixed(1).padStart(7)}  ${r.max.toFixed(1).padStart(7)}  ${r.perSecond.toFixed(1).padStart(7)}`,
        );
      }
    }
    log('');
    log(`targets: first call < ${TARGETS.firstMs} ms: root admin ${verdict(firstMs < TARGETS.firstMs)}, user ${verdict(userFirstMs < TARGETS.firstMs)}`);
    for (const [what, [one, eight]] of cases) {
      log(`  ${what}: p99 < ${TARGETS.p99One} ms with 1 client ${verdict(one!.p99 < TARGETS.p99One)}; < ${TARGETS.p99Eight} ms with 8 ${verdict(eight!.p99 < TARGETS.p99Eight)}`);
    }
    if (process.env.BENCH_JSON) log(JSON.stringify({ command: 'listVirtualMachines', vms: VMS, accounts: ACCOUNTS, firstCallMs: firstMs, userFirstCallMs: userFirstMs, cases }));
  } finally {
    await runtime.stop();
  }
}

await main();
