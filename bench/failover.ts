// `npm run bench:failover`: agent failover time. Two agents serve one zone of a two-host lab (lab id
// 19); in each trial the agent holding both hosts is killed (SIGKILL) and the clock runs until the
// other holds every host (listAgents, polled every 100 ms) and then until a pingHost through it is
// done. Figures are from the holder's last lease renewal (its leaseExpires minus agent.lease.seconds,
// read from the table) and from the kill. The killed agent is started again before the next trial,
// which kills the other. Needs root. See bench/README.md.
import { performance } from 'node:perf_hooks';
import { labAt } from '../test/lab/lab.ts';
import { addHostAnswer } from '../test/support/add-host.ts';
import { enrolAgent, startAgent, type RunningAgent } from '../test/support/agent.ts';
import { adminClient } from '../test/support/client.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../test/support/runtime.ts';
import { getAgent } from '../shared/db/agents.ts';
import { percentile } from './stats.ts';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 5);
const LEASE_SECONDS = Number(process.env.BENCH_LEASE_SECONDS ?? 20);
const TARGET_SECONDS = 30;
const lab = labAt(19);

const log = (line = '') => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  if (process.getuid?.() !== 0) throw new Error('the failover benchmark needs root (it brings up lab hosts)');
  let runtime: RunningRuntime | undefined;
  const running = new Map<string, RunningAgent>();
  try {
    const [labInfo, started] = await Promise.all([lab.up(2), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: '5' } })]);
    runtime = started;
    useRuntimeEndpoints(runtime);
    const admin = adminClient(runtime.apiUrl, runtime.credentials);
    const ok = async (command: string, params: Record<string, string | number | boolean> = {}) => {
      const answer = await admin.call(command, params, { method: 'POST' });
      if (answer.status !== 200) throw new Error(`${command}: ${JSON.stringify(answer.body)}`);
      return answer.body[`${command.toLowerCase()}response`];
    };
    await ok('updateConfiguration', { name: 'agent.lease.seconds', value: LEASE_SECONDS });
    await ok('updateConfiguration', { name: 'ping.interval', value: 10 });
    const gw = lab.names.gateway;
    const zoneId = (await ok('createZone', { name: 'failover', networktype: 'Advanced', dns1: gw, internaldns1: gw })).zone.id;
    const podId = (await ok('createPod', { name: 'p', zoneid: zoneId, gateway: gw, netmask: '255.255.255.0', startip: lab.names.hostAddress(100) })).pod.id;
    const clusterId = (await ok('addCluster', { clustername: 'c', zoneid: zoneId, podid: podId, hypervisor: 'KVM', clustertype: 'CloudManaged' })).cluster[0].id;
    const enrolled = [await enrolAgent(admin, runtime.apiUrl, zoneId), await enrolAgent(admin, runtime.apiUrl, zoneId)];
    running.set(enrolled[0]!.agentId, await startAgent(enrolled[0]!.dir));
    const hostIds: string[] = [];
    for (const h of labInfo.hosts) {
      const job = await addHostAnswer(admin, { zoneid: zoneId, podid: podId, clusterid: clusterId, url: h.address, username: 'root', password: labInfo.password, hypervisor: 'KVM' });
      if (job.jobstatus !== 1) throw new Error(`addHost: ${JSON.stringify(job.jobresult)}`);
      hostIds.push(job.jobresult.host[0].id);
    }
    running.set(enrolled[1]!.agentId, await startAgent(enrolled[1]!.dir));
    const agents = async () => (await ok('listAgents', { zoneid: zoneId })).agent as any[];
    const waitUntil = async (what: string, check: () => Promise<boolean>, limitMs = 120_000) => {
      const end = Date.now() + limitMs;
      while (!(await check())) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(100);
      }
    };
    // Both leases held, and the second agent's key on both hosts (the holder's next report puts it there).
    await waitUntil('both leases', async () => (await agents()).every((a) => a.holdslease));
    for (const [i, h] of labInfo.hosts.entries()) {
      const key = enrolled[1]!.sshPublicKey.split(' ')[1]!;
      await waitUntil(`the second key on host ${i + 1}`, async () => (await lab.hostExec(h.index, ['cat', '/root/.ssh/authorized_keys'])).stdout.includes(key));
    }

    const fromRenewal: number[] = [];
    const fromKill: number[] = [];
    const served: number[] = [];
    for (let trial = 0; trial < TRIALS; trial++) {
      const list = await agents();
      const holder = list.find((a) => a.hostcount === hostIds.length);
      if (!holder) throw new Error(`no agent holds every host: ${JSON.stringify(list.map((a) => [a.name, a.hostcount]))}`);
      const survivor = list.find((a) => a.id !== holder.id)!;
      const leaseExpires = (await getAgent(holder.id))!.leaseExpires!;
      const killedAt = Date.now();
      const begun = performance.now();
      running.get(holder.id)!.process.kill('SIGKILL');
      await waitUntil('the survivor to hold every host', async () => (await agents()).find((a) => a.id === survivor.id)?.hostcount === hostIds.length);
      const heldMs = performance.now() - begun;
      const job = await admin.waitForJob((await ok('pingHost', { id: hostIds[0]! })).jobid, 120_000, 20);
      if (job.jobstatus !== 1) throw new Error(`pingHost through the survivor failed: ${JSON.stringify(job.jobresult)}`);
      const servedMs = performance.now() - begun;
      const lastRenewal = leaseExpires - LEASE_SECONDS * 1000;
      fromKill.push(heldMs / 1000);
      fromRenewal.push((killedAt - lastRenewal + heldMs) / 1000);
      served.push(servedMs / 1000);
      log(`trial ${trial + 1}: last renewal → re-held ${fromRenewal.at(-1)!.toFixed(1)} s, kill → re-held ${fromKill.at(-1)!.toFixed(1)} s, kill → pingHost served ${served.at(-1)!.toFixed(1)} s`);
      // The killed agent back, holding its lease, for the next trial to kill the other one.
      const dir = enrolled.find((e) => e.agentId === holder.id)!.dir;
      running.set(holder.id, await startAgent(dir));
      await waitUntil('the revived agent to renew', async () => (await agents()).find((a) => a.id === holder.id)?.holdslease === true);
    }
    const figures = (name: string, values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      const [p50, p95] = [percentile(sorted, 50), percentile(sorted, 95)];
      log(`  ${name.padEnd(34)} p50 ${p50.toFixed(1).padStart(5)} s   p95 ${p95.toFixed(1).padStart(5)} s   max ${sorted.at(-1)!.toFixed(1).padStart(5)} s`);
      return { p50, p95 };
    };
    log();
    log(`agent failover, ${TRIALS} trials, agent.lease.seconds ${LEASE_SECONDS} (renewed every ${LEASE_SECONDS / 4} s)`);
    const main = figures('last renewal → every host re-held', fromRenewal);
    figures('kill → every host re-held', fromKill);
    figures('kill → pingHost served by survivor', served);
    log();
    log(`target: every host re-held within ${TARGET_SECONDS} s of the last renewal (p95): ${main.p95 <= TARGET_SECONDS ? 'met' : 'MISSED'}`);
  } finally {
    for (const agent of running.values()) await agent.stop().catch(() => {});
    await runtime?.stop();
    await lab.down();
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : error}\n`);
  process.exit(1);
});
