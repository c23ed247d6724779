// `npm run bench:hostile`: how a signed client fares while hostile requests keep coming. Starts the
// local runtime as a child process (a fresh data directory), times signed `listZones` calls from one
// client alone, then again while 8 concurrent loops send the worst shapes the fuzzer
// (test/integration/fuzz.test.ts) sends (shapes() below; the huge map index without credentials is
// the request that froze the runtime before issue 11). See bench/README.md.
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

/**
 * The fuzzer's worst shape of each kind, at the largest size it sends: the huge map index without
 * credentials, a 60 KiB query string, user data of 1 MiB + 1 (past the body limit), a 65,537-character
 * annotation, an integer of 2,000 digits, a name with control and bidi characters, undecodable map
 * names, and a forged signature.
 */
function shapes(runtime: RunningRuntime): Shape[] {
  const url = runtime.apiUrl;
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const get = (query: string) => () => fetch(`${url}?${query}`);
  const post = (body: string) => () => fetch(url, { method: 'POST', headers: form, body });
  const nobody = '00000000-0000-4000-8000-000000000000';
  const forged = encode([['command', 'listZones'], ['response', 'json'], ['apiKey', runtime.credentials.apikey], ['signature', 'Zm9yZ2Vk']]);
  return [
    { name: 'map index 4294967294, unsigned', send: get(encode([['command', 'listZones'], ['response', 'json'], ['details[4294967294].key', 'v']])) },
    { name: 'query string of 60 KiB, unsigned', send: get(encode([['command', 'listZones'], ['response', 'json'], ['padding', 'x'.repeat(60 * 1024)]])) },
    { name: 'user data of 1 MiB + 1, signed', send: post(signedBody(runtime, 'updateVirtualMachine', [['id', nobody], ['userdata', 'x'.repeat(1024 * 1024 + 1)]])) },
    { name: 'annotation of 65,537 characters, signed', send: post(signedBody(runtime, 'updateHost', [['id', nobody], ['annotation', 'x'.repeat(65537)]])) },
    { name: 'integer of 2,000 digits, signed', send: post(signedBody(runtime, 'updateDiskOffering', [['id', nobody], ['sortkey', '9'.repeat(2000)]])) },
    { name: 'name with control characters, signed', send: post(signedBody(runtime, 'createZone', [['name', 'a\u0000\u202eb\u001b[31m'], ['networktype', 'Advanced']])) },
    { name: 'undecodable map names, signed', send: post(signedBody(runtime, 'listZones', Array.from({ length: 50 }, (_, i): [string, string] => [`a[${i}][${i}].b`, 'v']))) },
    { name: 'forged signature', send: get(forged) },
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
