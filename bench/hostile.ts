// `npm run bench:hostile`: how a signed client fares while hostile requests keep coming. Starts the
// local runtime as a child process (a fresh data directory), times signed `listZones` calls from one
// client alone, then again while 8 concurrent loops send the worst shapes the fuzzer
// (test/integration/fuzz.test.ts) sends: a huge map index without credentials (the request that froze
// the runtime before issue 11), a query string near the stand-in's limit, a form body over 1 MiB,
// 5,000 parameters, and, signed as the root admin, integers of 400 digits, oversized and control-
// character names and undecodable map names. See bench/README.md.
import { performance } from 'node:perf_hooks';
import { signature } from '../test/support/client.ts';
import { startRuntime, type RunningRuntime } from '../test/support/runtime.ts';
import { percentile, runCase, signedUrl, timedCall, type CaseResult } from './stats.ts';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 300);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 30);
const HOSTILE = Number(process.env.BENCH_HOSTILE ?? 8);
const TARGET_P99 = 100;

function log(line = '') {
  process.stdout.write(`${line}\n`);
}

const encode = (pairs: [string, string][]) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

/** A call signed as the root admin, as a form body (POST) so that any value fits. */
function signedBody(runtime: RunningRuntime, command: string, params: [string, string][]): string {
  const pairs: [string, string][] = [['command', command], ...params, ['response', 'json'], ['apiKey', runtime.credentials.apikey]];
  pairs.push(['signature', signature(pairs, runtime.credentials.secretkey)]);
  return encode(pairs);
}

interface Shape {
  name: string;
  send: () => Promise<Response>;
}

function shapes(runtime: RunningRuntime): Shape[] {
  const url = runtime.apiUrl;
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const post = (body: string) => () => fetch(url, { method: 'POST', headers: form, body });
  const many = encode([['command', 'listZones'], ['response', 'json'], ...Array.from({ length: 5000 }, (_, i): [string, string] => [`p${i}`, 'x'])]);
  return [
    { name: 'map index 4294967294, unsigned', send: () => fetch(`${url}?${encode([['command', 'listZones'], ['response', 'json'], ['details[4294967294].key', 'v']])}`) },
    { name: 'map index 2147483647 x 200, unsigned', send: post(encode([['command', 'updateZone'], ['response', 'json'], ...Array.from({ length: 200 }, (_, i): [string, string] => [`details[${2147483647 - i}].key`, 'v'])])) },
    { name: 'query string of 1 MiB', send: () => fetch(`${url}?${encode([['command', 'listZones'], ['response', 'json'], ['padding', 'x'.repeat(1000 * 1024)]])}`) },
    { name: 'form body over 1 MiB', send: post(encode([['command', 'listZones'], ['response', 'json'], ['padding', 'x'.repeat(1024 * 1024 + 1)]])) },
    { name: '5,000 parameters', send: post(many) },
    { name: 'integer of 400 digits, signed', send: post(signedBody(runtime, 'updateDiskOffering', [['id', '00000000-0000-4000-8000-000000000000'], ['sortkey', '9'.repeat(400)]])) },
    { name: 'name of 1 MiB with controls, signed', send: post(signedBody(runtime, 'createZone', [['name', `\u0000\u202e${'x'.repeat(1000 * 1024)}`], ['networktype', 'Advanced']])) },
    { name: 'undecodable map names, signed', send: post(signedBody(runtime, 'listZones', Array.from({ length: 500 }, (_, i): [string, string] => [`a[${i}][${i}].b`, 'v']))) },
  ];
}

async function main() {
  log('starting the local runtime…');
  const runtime = await startRuntime();
  try {
    const url = signedUrl(runtime, 'listZones', {});
    const first = await timedCall(url);
    if (first.status !== 200) throw new Error(`listZones answered HTTP ${first.status}: ${first.body.slice(0, 300)}`);
    for (let i = 0; i < WARMUP; i++) await timedCall(url);

    const quiet = await runCase([url], 1, REQUESTS);

    const hostile = shapes(runtime);
    const statuses = new Map<string, Map<number, number>>();
    const hostileMs: number[] = [];
    let stop = false;
    const loops = Array.from({ length: HOSTILE }, async (_, loop) => {
      for (let n = loop; !stop; n++) {
        const shape = hostile[n % hostile.length]!;
        const started = performance.now();
        const response = await shape.send();
        await response.arrayBuffer();
        hostileMs.push(performance.now() - started);
        const byStatus = statuses.get(shape.name) ?? new Map<number, number>();
        byStatus.set(response.status, (byStatus.get(response.status) ?? 0) + 1);
        statuses.set(shape.name, byStatus);
      }
    });
    let underAttack: CaseResult;
    try {
      underAttack = await runCase([url], 1, REQUESTS);
    } finally {
      stop = true;
      await Promise.all(loops);
    }

    log('');
    log('signed listZones, one client');
    log('case                 requests   p50 ms   p99 ms   max ms    req/s');
    for (const [name, r] of [['alone', quiet], [`beside ${HOSTILE} hostile`, underAttack]] as const) {
      log(`${name.padEnd(19)}  ${String(r.requests).padStart(8)}  ${r.p50.toFixed(1).padStart(7)}  ${r.p99.toFixed(1).padStart(7)}  ${r.max.toFixed(1).padStart(7)}  ${r.perSecond.toFixed(1).padStart(7)}`);
    }
    hostileMs.sort((a, b) => a - b);
    log('');
    log(`hostile requests answered meanwhile: ${hostileMs.length} (p50 ${percentile(hostileMs, 50).toFixed(1)} ms, p99 ${percentile(hostileMs, 99).toFixed(1)} ms)`);
    for (const [name, byStatus] of statuses) log(`  ${name.padEnd(40)} ${[...byStatus].map(([status, count]) => `${status}×${count}`).join(' ')}`);
    log('');
    log(`target: the client's p99 < ${TARGET_P99} ms beside the hostile requests: ${underAttack.p99 < TARGET_P99 ? 'met' : 'MISSED'}`);
    if (process.env.BENCH_JSON) log(JSON.stringify({ quiet, underAttack, hostile: hostileMs.length, statuses: Object.fromEntries([...statuses].map(([k, v]) => [k, Object.fromEntries(v)])) }));
  } finally {
    await runtime.stop();
  }
}

await main();
