// `npm run bench:agent`: the round trip of a no-op agent command through every real part:
// API (pingHost) → Step Functions → SQS → agent → SSH `true` on a lab host → gateway → SendTaskSuccess →
// job done, seen by a client polling queryAsyncJobResult; before it, how long `mold-agent enrol` takes
// and how long addHost by password takes. Brings up a one-host lab (lab id 9), the local runtime and a
// real agent process; needs root. See bench/README.md.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { labAt } from '../test/lab/lab.ts';
import { addHostAnswer } from '../test/support/add-host.ts';
import { agentCli, enrolAgent, gatewayBase, startAgent, type RunningAgent } from '../test/support/agent.ts';
import { adminClient } from '../test/support/client.ts';
import { startRuntime, type RunningRuntime } from '../test/support/runtime.ts';
import { percentile } from './stats.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 50);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 5);
/** How often the client asks queryAsyncJobResult; the figure includes up to this much polling lag. */
const POLL_MS = Number(process.env.BENCH_POLL_MS ?? 10);
const TARGET_P50_MS = 500;
/** Enrolments timed, each with a new token and state directory. */
const ENROLS = Number(process.env.BENCH_ENROLS ?? 5);
const TARGET_ENROL_MS = 5000;
const TARGET_ADD_HOST_MS = 5000;
const lab = labAt(9);

function log(line = '') {
  process.stdout.write(`${line}\n`);
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('the agent benchmark needs root (it brings up a lab host)');
  let runtime: RunningRuntime | undefined;
  let agent: RunningAgent | undefined;
  try {
    const [labInfo, started] = await Promise.all([lab.up(1), startRuntime()]);
    runtime = started;
    const admin = adminClient(runtime.apiUrl, runtime.credentials);
    const ok = async (command: string, params: Record<string, string | number>) => {
      const answer = await admin.call(command, params);
      if (answer.status !== 200) throw new Error(`${command}: ${JSON.stringify(answer.body)}`);
      return answer.body[`${command.toLowerCase()}response`];
    };
    const zoneId = (await ok('createZone', { name: 'bench', networktype: 'Advanced', dns1: lab.names.gateway, internaldns1: lab.names.gateway })).zone.id;
    const podId = (await ok('createPod', { name: 'p', zoneid: zoneId, gateway: lab.names.gateway, netmask: '255.255.255.0', startip: lab.names.hostAddress(100) })).pod.id;
    const clusterId = (await ok('addCluster', { clustername: 'c', zoneid: zoneId, podid: podId, hypervisor: 'KVM', clustertype: 'CloudManaged' })).cluster[0].id;
    // `mold-agent enrol`, process start to exit (key pair, CSR, the gateway signing it, files written).
    const enrols: number[] = [];
    for (let i = 0; i < ENROLS; i++) {
      const token = (await ok('createAgentEnrollmentToken', { zoneid: zoneId })).agentenrollmenttoken.token as string;
      const begun = performance.now();
      const run = agentCli(['enrol', '--url', gatewayBase(runtime.apiUrl), `--token=${token}`, '--dir', mkdtempSync(join(tmpdir(), 'mold-bench-agent-'))]);
      if ((await run.exited) !== 0) throw new Error(`mold-agent enrol failed:\n${run.output()}`);
      enrols.push(performance.now() - begun);
    }
    enrols.sort((a, b) => a - b);
    const enrolled = await enrolAgent(admin, runtime.apiUrl, zoneId);
    agent = await startAgent(enrolled.dir);
    const adding = performance.now();
    const added = await addHostAnswer(admin, { zoneid: zoneId, podid: podId, clusterid: clusterId, url: labInfo.hosts[0]!.address, username: 'root', password: labInfo.password, hypervisor: 'KVM' });
    const addHostMs = performance.now() - adding;
    if (added.jobstatus !== 1) throw new Error(`addHost failed: ${JSON.stringify(added.jobresult)}`);
    const enrolP50 = percentile(enrols, 50);
    log(`mold-agent enrol, process start to exit, ${ENROLS} runs: p50 ${enrolP50.toFixed(0)} ms, max ${enrols.at(-1)!.toFixed(0)} ms (target < ${TARGET_ENROL_MS} ms: ${enrolP50 < TARGET_ENROL_MS ? 'met' : 'MISSED'})`);
    log(`addHost by password (login, key installed, facts), API call to its answer: ${addHostMs.toFixed(0)} ms (target < ${TARGET_ADD_HOST_MS} ms: ${addHostMs < TARGET_ADD_HOST_MS ? 'met' : 'MISSED'})`);
    log();
    const hostId = added.jobresult.host[0].id as string;

    const roundTrip = async () => {
      const begun = performance.now();
      const { jobid } = await ok('pingHost', { id: hostId });
      const job = await admin.waitForJob(jobid, 60_000, POLL_MS);
      if (job.jobstatus !== 1) throw new Error(`pingHost failed: ${JSON.stringify(job.jobresult)}\nthe agent's last lines:\n${agent!.output().slice(-3000)}`);
      return performance.now() - begun;
    };
    for (let i = 0; i < WARMUP; i++) await roundTrip();
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) times.push(await roundTrip());
    times.sort((a, b) => a - b);
    const [p50, p95] = [percentile(times, 50), percentile(times, 95)];
    log(`pingHost round trip (API → Step Functions → SQS → agent → ssh true → gateway → job done), ${RUNS} runs, polling every ${POLL_MS} ms`);
    log();
    log('  runs   p50 ms   p95 ms   min ms   max ms');
    log(`  ${String(RUNS).padStart(4)} ${p50.toFixed(1).padStart(8)} ${p95.toFixed(1).padStart(8)} ${times[0]!.toFixed(1).padStart(8)} ${times.at(-1)!.toFixed(1).padStart(8)}`);
    log();
    log(`target: p50 < ${TARGET_P50_MS} ms: ${p50 < TARGET_P50_MS ? 'met' : 'MISSED'}`);
    if (process.env.BENCH_JSON) log(JSON.stringify({ runs: RUNS, pollMs: POLL_MS, p50, p95, min: times[0], max: times.at(-1), enrolP50, addHostMs }));
  } finally {
    await agent?.stop();
    await runtime?.stop();
    await lab.down();
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : error}\n`);
  process.exit(1);
});
