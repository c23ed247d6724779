// `npm run bench`: how fast the API answers a signed listAccounts over 1,000 accounts.
// Starts the local runtime as a child process (a fresh data directory), seeds the accounts through
// the repository layer, then times signed `listAccounts listall=true` calls (default page size)
// through the HTTP server: with 1 client, then with 8 concurrent clients. See bench/README.md.
import { performance } from 'node:perf_hooks';
import { createAccount, createDomain, getDomain, listAllDomains } from '../shared/db/identity.ts';
import { listRoles } from '../shared/db/roles.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../test/support/runtime.ts';
import { runCase, signedUrl, timedCall } from './stats.ts';

const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 1000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 300);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 30);
const SEED_BATCH = 40;
const TARGET = { p50: 20, p99: 100 };

function log(line = '') {
  process.stdout.write(`${line}\n`);
}

async function seed(runtime: RunningRuntime): Promise<void> {
  useRuntimeEndpoints(runtime);
  if ((await listAllDomains()).some((domain) => domain.path === 'ROOT/bench')) {
    log(`accounts already seeded in ${runtime.dataDir}`);
    return;
  }
  const root = (await getDomain(runtime.credentials.domainid))!;
  const userRole = (await listRoles()).find((role) => role.name === 'User')!;
  // A domain of their own under ROOT: the benchmark's accounts are listed with the admin's.
  const domain = await createDomain({ name: 'bench', parent: root });
  const started = performance.now();
  for (let first = 0; first < ACCOUNTS; first += SEED_BATCH) {
    const batch = [];
    for (let i = first; i < Math.min(first + SEED_BATCH, ACCOUNTS); i++) {
      const name = `bench-${String(i).padStart(5, '0')}`;
      batch.push(
        createAccount(
          { name, domain, roleId: userRole.id, roleType: 'User' },
          { username: name, password: `pw-${name}-${i}`, firstname: 'Bench', lastname: String(i), email: `${name}@example.com` },
        ),
      );
    }
    await Promise.all(batch);
  }
  log(`seeded ${ACCOUNTS} accounts in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

async function main() {
  // BENCH_DATA_DIR keeps the runtime's data (and the seeded accounts) for the next run.
  const dataDir = process.env.BENCH_DATA_DIR;
  log(`starting the local runtime${dataDir ? ` on ${dataDir}` : ''}…`);
  const runtime = await startRuntime(dataDir ? { dataDir } : {});
  try {
    await seed(runtime);

    // listAccounts if this Mold has it; otherwise the harness still runs, against listCapabilities.
    const probe = await timedCall(signedUrl(runtime, 'listApis', { name: 'listAccounts' }));
    const haveListAccounts = probe.status === 200;
    const command = haveListAccounts ? 'listAccounts' : 'listCapabilities';
    const params: Record<string, string> = haveListAccounts ? { listall: 'true' } : {};
    if (!haveListAccounts) log('listAccounts is not registered: timing listCapabilities instead');
    const url = signedUrl(runtime, command, params);

    const first = await timedCall(url);
    if (first.status !== 200) throw new Error(`${command} answered HTTP ${first.status}: ${first.body.slice(0, 300)}`);
    const answer = JSON.parse(first.body)[`${command.toLowerCase()}response`];
    const shown = haveListAccounts ? `, count ${answer.count}, ${answer.account?.length ?? 0} accounts in the page` : '';
    log(`${command}${haveListAccounts ? ' listall=true' : ''}: ${(first.bytes / 1024).toFixed(0)} KiB a response${shown}`);
    if (haveListAccounts && answer.count < ACCOUNTS) throw new Error(`expected at least ${ACCOUNTS} accounts, got ${answer.count}`);

    for (let i = 0; i < WARMUP; i++) await timedCall(url);
    const results = [await runCase([url], 1, REQUESTS), await runCase([url], 8, REQUESTS)];

    log('');
    log('clients  requests   p50 ms   p99 ms   max ms    req/s');
    for (const r of results) {
      log(
        `${String(r.clients).padStart(7)}  ${String(r.requests).padStart(8)}  ${r.p50.toFixed(1).padStart(7)}  ${r.p99.toFixed(1).padStart(7)}  ${r.max.toFixed(1).padStart(7)}  ${r.perSecond.toFixed(1).padStart(7)}`,
      );
    }
    const met = results.every((r) => r.p50 < TARGET.p50 && r.p99 < TARGET.p99);
    log('');
    log(`target: p50 < ${TARGET.p50} ms and p99 < ${TARGET.p99} ms in every case: ${met ? 'met' : 'MISSED'}`);
    if (process.env.BENCH_JSON) log(JSON.stringify({ command, accounts: ACCOUNTS, results }));
  } finally {
    await runtime.stop();
  }
}

await main();
