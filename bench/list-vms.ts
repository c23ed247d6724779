// `npm run bench:vms`: how fast the API answers a signed listVirtualMachines over 10,000 VMs.
// Starts the local runtime as a child process (a fresh data directory), seeds the VM records
// through the repository layer (createVmRecords of shared/db/vms.ts: the VM, its root volume), then
// times signed `listVirtualMachines listall=true pagesize=500` calls as the root admin through the
// HTTP server: with 1 client, then with 8 concurrent clients. See bench/README.md.
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { createHostRecord, type Host } from '../shared/db/hosts.ts';
import { createAccount, createDomain, getDomain, listAllDomains } from '../shared/db/identity.ts';
import { createCluster, createPod, createZone } from '../shared/db/infrastructure.ts';
import { listRoles } from '../shared/db/roles.ts';
import { ApiClient } from '../test/support/client.ts';
import { makeVm, seedTemplate } from '../test/support/vm-seed.ts';
import { createVmRecords, type VmState } from '../shared/db/vms.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../test/support/runtime.ts';
import { runCase, signedUrl, timedCall } from './stats.ts';

const VMS = Number(process.env.BENCH_VMS ?? 10_000);
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 20);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 20);
const PAGE_SIZE = 500;
const SEED_BATCH = 50;
const TARGET_P99 = 100;

function log(line = '') {
  process.stdout.write(`${line}\n`);
}

async function seed(runtime: RunningRuntime): Promise<void> {
  useRuntimeEndpoints(runtime);
  if ((await listAllDomains()).some((domain) => domain.path === 'ROOT/benchvm')) {
    log(`VMs already seeded in ${runtime.dataDir}`);
    return;
  }
  const started = performance.now();
  const admin = new ApiClient(runtime.apiUrl, runtime.credentials);
  const root = (await getDomain(runtime.credentials.domainid))!;
  const userRole = (await listRoles()).find((role) => role.name === 'User')!;
  const domain = await createDomain({ name: 'benchvm', parent: root });
  const owners = await Promise.all(
    Array.from({ length: ACCOUNTS }, async (_, i) => {
      const name = `benchvm-${String(i).padStart(3, '0')}`;
      const { account, user } = await createAccount(
        { name, domain, roleId: userRole.id, roleType: 'User' },
        { username: name, password: `pw-${name}-${i}`, firstname: 'Bench', lastname: String(i), email: `${name}@example.com` },
      );
      return { ...account, userId: user.id };
    }),
  );
  const zone = await createZone({ name: 'benchvm-zone', networktype: 'Advanced', allocationstate: 'Enabled' });
  const pod = await createPod(zone, { name: 'benchvm-pod', allocationstate: 'Enabled' });
  const cluster = await createCluster(pod, { name: 'benchvm-cluster', allocationstate: 'Enabled', hypervisor: 'KVM' });
  const hosts: Host[] = [];
  for (let i = 0; i < 4; i++) hosts.push(await createHostRecord(cluster, { name: `benchvm-host-${i}`, ipaddress: `10.99.0.${i + 1}` }));
  const offeringAnswer = await admin.call('createServiceOffering', { name: 'benchvm-small', displaytext: 'Small', cpunumber: 1, cpuspeed: 1000, memory: 512 });
  if (offeringAnswer.status !== 200) throw new Error(`createServiceOffering: ${JSON.stringify(offeringAnswer.body)}`);
  const offering = offeringAnswer.body.createserviceofferingresponse.serviceoffering;
  const template = await seedTemplate({ accountId: owners[0].id, domain }, zone.id, 'benchvm-template', 'Bench template');
  const networkId = randomUUID();
  const states: VmState[] = ['Running', 'Running', 'Running', 'Stopped', 'Destroyed'];
  for (let first = 0; first < VMS; first += SEED_BATCH) {
    const batch = [];
    for (let i = first; i < Math.min(first + SEED_BATCH, VMS); i++) {
      const owner = owners[i % owners.length];
      const state = states[i % states.length];
      const host = hosts[i % hosts.length];
      batch.push(
        makeVm(owner, {
          zoneId: zone.id,
          serviceOfferingId: offering.id,
          templateId: template.id,
          name: `benchvm-${i}`,
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
        }).then(({ vm, volume }) => createVmRecords(vm, volume)),
      );
    }
    await Promise.all(batch);
    if ((first / SEED_BATCH) % 40 === 39) log(`  ${first + SEED_BATCH} VMs seeded…`);
  }
  log(`seeded ${VMS} VMs of ${ACCOUNTS} accounts in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

async function main() {
  const dataDir = process.env.BENCH_DATA_DIR;
  log(`starting the local runtime${dataDir ? ` on ${dataDir}` : ''}…`);
  const runtime = await startRuntime(dataDir ? { dataDir } : {});
  try {
    await seed(runtime);
    const pages = Math.ceil(VMS / PAGE_SIZE);
    const urls = Array.from({ length: pages }, (_, i) => signedUrl(runtime, 'listVirtualMachines', { listall: 'true', pagesize: String(PAGE_SIZE), page: String(i + 1) }));

    const first = await timedCall(urls[0]);
    if (first.status !== 200) throw new Error(`listVirtualMachines answered HTTP ${first.status}: ${first.body.slice(0, 300)}`);
    const answer = JSON.parse(first.body).listvirtualmachinesresponse;
    log(`listVirtualMachines listall=true pagesize=${PAGE_SIZE}: ${(first.bytes / 1024).toFixed(0)} KiB a response, count ${answer.count}, ${answer.virtualmachine?.length ?? 0} VMs in the page`);
    log(`first call (the listing cache loads ${answer.count} records): ${first.ms.toFixed(1)} ms`);
    if (answer.count < VMS) throw new Error(`expected at least ${VMS} VMs, got ${answer.count}`);
    if (answer.virtualmachine.length !== Math.min(PAGE_SIZE, VMS)) throw new Error(`expected ${Math.min(PAGE_SIZE, VMS)} VMs in the page`);

    for (let i = 0; i < WARMUP; i++) await timedCall(urls[i % urls.length]);
    const results = [await runCase(urls, 1, REQUESTS), await runCase(urls, 8, REQUESTS)];

    log('');
    log(`pages 1–${pages} in turn`);
    log('clients  requests   p50 ms   p99 ms   max ms    req/s');
    for (const r of results) {
      log(
        `${String(r.clients).padStart(7)}  ${String(r.requests).padStart(8)}  ${r.p50.toFixed(1).padStart(7)}  ${r.p99.toFixed(1).padStart(7)}  ${r.max.toFixed(1).padStart(7)}  ${r.perSecond.toFixed(1).padStart(7)}`,
      );
    }
    log('');
    log(`target: p99 < ${TARGET_P99} ms with one client: ${results[0].p99 < TARGET_P99 ? 'met' : 'MISSED'}`);
    if (process.env.BENCH_JSON) log(JSON.stringify({ command: 'listVirtualMachines', vms: VMS, firstCallMs: first.ms, results }));
  } finally {
    await runtime.stop();
  }
}

await main();
