// KVM rolling maintenance (hosts.md §14) end to end on a three-host lab (lab 15) with a real guest on
// each host, through the HTTP API and a real agent. Each host gets its own
// /etc/cloudstack/agent/agent.properties (a directory bound over /etc/cloudstack in the host's mount
// namespace only) naming a hooks directory with all four stage scripts; each script records its host,
// stage and arguments, and exits with what a file beside it says. Host 2's PreFlight exits 70 (not
// needed: it runs PreMaintenance, then is skipped); host 3's PreMaintenance fails. Without `forced` the run ends with success false at
// host 3 after host 1 was updated; with `forced` host 3 is skipped and the run succeeds. Either way the
// cluster is Enabled again, every host Enabled, every guest still running with the boot id it had, the
// scripts saw the payload, and the events say what happened. Then the agent is restarted while host 1's
// Maintenance script runs: the script runs on, once, and the new agent reads its result. Needs root (the lab); skipped otherwise.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labAt, type Lab } from '../lab/lab.ts';
import { adminClient } from '../support/client.ts';
import { waitForGuest } from '../support/guest.ts';
import { expectBootKept, movesBegin } from '../support/moved-guest.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';
import { buildVmWorld, type VmWorld } from '../support/vm-world.ts';
import { patience, until } from '../support/wait.ts';
import { startAgent, type RunningAgent } from '../support/agent.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(15);
const PAYLOAD = 'param1=val1 param2=val2';
const STAGES = ['PreFlight', 'PreMaintenance', 'Maintenance', 'PostMaintenance'];
const HOOKS = '/etc/cloudstack/rolling-hooks';

let labInfo: Lab;
let runtime: RunningRuntime;
let world: VmWorld;
let scratch: string;
let madeEtcCloudstack = false;
let restarted: RunningAgent | undefined;
const vms: any[] = [];
/** Each lab host's own hostname (its UTS namespace), by index. */
const hostnames: Record<number, string> = {};

const sh = async (hostIndex: number, script: string) => (await lab.hostExec(hostIndex, ['bash', '-c', script])).stdout;
const put = (hostIndex: number, path: string, content: string) => sh(hostIndex, `printf '%s' '${Buffer.from(content).toString('base64')}' | base64 -d > ${path} && chmod 0755 ${path}`);
const hostOfIndex = (index: number) => world.hosts.find((h) => h.index === index)!;
const ipOf = (v: any): string => v.nic[0].ipaddress;
const bootIds = async () => Promise.all(vms.map(async (vm) => (await waitForGuest(ipOf(vm), `guest ${vm.name}`)).bootId));
/** What the scripts recorded on a host: `<stage> <arguments>` lines. */
const recorded = async (index: number) => (await sh(index, `cat ${HOOKS}/ran.log 2>/dev/null || true`)).split('\n').filter(Boolean);

// One script for every stage: it records its name and arguments, then exits with <stage>.exit's number (0 without one).
const script = (stage: string) => `#!/bin/bash
echo "${stage} $*" >> ${HOOKS}/ran.log
echo "${stage} ran on $(hostname) with $*"
code=0
[ -f ${HOOKS}/${stage}.exit ] && code=$(cat ${HOOKS}/${stage}.exit)
exit $code
`;

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'rolling maintenance on a three-host lab' : 'rolling maintenance on a three-host lab (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    [labInfo, runtime] = await Promise.all([lab.up(3), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: '2' } })]);
    world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials), { name: 'rollinglab', template: 'guest', network: 'untagged' });
    // Each host's own /etc/cloudstack: a directory of the test bound over it in that host's mount namespace.
    if (!existsSync('/etc/cloudstack')) {
      mkdirSync('/etc/cloudstack');
      madeEtcCloudstack = true;
    }
    scratch = mkdtempSync(join(tmpdir(), 'mold-rolling-'));
    for (const h of world.hosts) {
      hostnames[h.index] = (await sh(h.index, 'hostname')).trim();
      const own = join(scratch, `host${h.index}`);
      mkdirSync(own);
      await sh(h.index, `mount --bind ${own} /etc/cloudstack && mkdir -p /etc/cloudstack/agent ${HOOKS}`);
      await put(h.index, '/etc/cloudstack/agent/agent.properties', `# the lab's\nrolling.maintenance.hooks.dir=${HOOKS}\n`);
      for (const stage of STAGES) await put(h.index, `${HOOKS}/${stage}${stage === 'PreFlight' ? '.sh' : ''}`, script(stage));
    }
    await sh(2, `echo 70 > ${HOOKS}/PreFlight.exit`);
    await sh(3, `echo 3 > ${HOOKS}/PreMaintenance.exit`);
    for (const h of world.hosts) vms.push((await world.done('deployVirtualMachine', world.deployParams(`rolling${h.index}`, { hostid: h.id }))).virtualmachine);
    for (const vm of vms) await waitForGuest(ipOf(vm), `guest ${vm.name} to boot`, () => true, 120_000);
  }, patience(600_000));

  afterAll(async () => {
    await restarted?.stop();
    await world?.close();
    await runtime?.stop();
    await lab.down();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    if (madeEtcCloudstack) rmdirSync('/etc/cloudstack');
    // The runs' result files on the hosts (their names start with the job ids of this test's runs).
    for (const id of jobIds) removeRuns(id);
  }, patience(120_000));

  const jobIds: string[] = [];
  const removeRuns = (jobId: string) => {
    const dir = '/var/lib/mold/rolling-maintenance';
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir)) if (entry.startsWith(`${jobId}.`)) rmSync(join(dir, entry), { recursive: true, force: true });
  };

  const run = async (params: Record<string, string>) => {
    const answer = await world.ok('startRollingMaintenance', params);
    jobIds.push(answer.jobid);
    const client = adminClient(runtime.apiUrl, runtime.credentials);
    // While it runs the job is pending, its progress growing, and the cluster Disabled.
    let sawDisabled = false;
    let progress = 0;
    for (;;) {
      const job = (await client.call('queryAsyncJobResult', { jobid: answer.jobid })).body.queryasyncjobresultresponse;
      if (job.jobstatus !== 0) return { job, sawDisabled, progress };
      progress = Math.max(progress, job.jobprocstatus);
      const cluster = (await world.ok('listClusters', { id: (await world.ok('listHosts', { id: hostOfIndex(1).id })).host[0].clusterid })).cluster[0];
      if (cluster.allocationstate === 'Disabled') sawDisabled = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  };

  const settled = async (before: string[], since: number) => {
    const host1 = (await world.ok('listHosts', { id: hostOfIndex(1).id })).host[0];
    expect((await world.ok('listClusters', { id: host1.clusterid })).cluster[0].allocationstate).toBe('Enabled');
    for (const h of world.hosts) expect((await world.ok('listHosts', { id: h.id })).host[0].resourcestate).toBe('Enabled');
    const records = (await world.ok('listVirtualMachines', { listall: true })).virtualmachine as any[];
    for (const vm of records) expect(vm.state).toBe('Running');
    for (const [i, vm] of vms.entries()) {
      const hostId = records.find((record) => record.id === vm.id).hostid;
      await expectBootKept(world, lab, vm, world.hosts.find((h) => h.id === hostId)!.index, before[i]!, since);
    }
  };

  it('without forced: host 1 updated, host 2 skipped by its PreFlight (70), the run fails at host 3\'s PreMaintenance; cluster and hosts Enabled, every guest still running', async () => {
    const before = await bootIds();
    const started = movesBegin();
    const order = [1, 2, 3].map((i) => hostOfIndex(i).id);
    const { job, sawDisabled, progress } = await run({ hostids: order.join(','), payload: PAYLOAD, timeout: '120' });
    expect(job.jobstatus, JSON.stringify(job.jobresult)).toBe(1);
    expect(sawDisabled).toBe(true);
    expect(progress).toBeGreaterThan(0);
    const response = job.jobresult.rollingmaintenance;
    expect(response.success).toBe(false);
    expect(response.details).toBe(`Error starting rolling maintenance: Stage: PreMaintenance failed on host ${order[2]}: PreMaintenance ran on ${hostnames[3]} with ${PAYLOAD}\n`);
    expect(response.hostsupdated).toEqual([
      { hostid: order[0], hostname: expect.any(String), startdate: expect.any(String), enddate: expect.any(String), output: `Maintenance ran on ${hostnames[1]} with ${PAYLOAD}\n` },
    ]);
    expect(response.hostsskipped).toEqual([{ hostid: order[1], hostname: expect.any(String), reason: 'Pre-flight stage set to avoid maintenance' }]);
    expect(await recorded(1)).toEqual(STAGES.map((s) => `${s} ${PAYLOAD}`));
    // As upstream, a host whose PreFlight said "not needed" still runs PreMaintenance, then is skipped.
    expect(await recorded(2)).toEqual([`PreFlight ${PAYLOAD}`, `PreMaintenance ${PAYLOAD}`]);
    expect(await recorded(3)).toEqual([`PreFlight ${PAYLOAD}`, `PreMaintenance ${PAYLOAD}`]);
    await settled(before, started);
    const events = (await world.ok('listEvents', { type: 'HOST.ROLLING.MAINTENANCE', listall: true })).event as any[];
    expect(events.some((e) => e.state === 'Completed' && / - Success: false, details: Error starting rolling maintenance: Stage: PreMaintenance failed .* hosts updated: 1, hosts skipped: 1$/s.test(e.description))).toBe(true);
    const prepared = (await world.ok('listEvents', { type: 'MAINT.PREPARE', listall: true })).event as any[];
    expect(prepared.some((e) => e.state === 'Completed' && e.resourceid === order[0])).toBe(true);
  }, patience(900_000));

  it('with forced: host 3 is skipped for its failed PreMaintenance and the run succeeds; cluster and hosts Enabled, every guest still running', async () => {
    const before = await bootIds();
    const started = movesBegin();
    for (const h of world.hosts) await sh(h.index, `rm -f ${HOOKS}/ran.log`);
    const order = [1, 2, 3].map((i) => hostOfIndex(i).id);
    const { job } = await run({ hostids: order.join(','), payload: PAYLOAD, forced: 'true', timeout: '120' });
    expect(job.jobstatus, JSON.stringify(job.jobresult)).toBe(1);
    const response = job.jobresult.rollingmaintenance;
    expect(response).toMatchObject({ success: true, details: 'OK' });
    expect(response.hostsupdated.map((h: any) => h.hostid)).toEqual([order[0]]);
    expect(response.hostsskipped).toEqual([
      { hostid: order[1], hostname: expect.any(String), reason: 'Pre-flight stage set to avoid maintenance' },
      { hostid: order[2], hostname: expect.any(String), reason: `Pre-maintenance script failed: PreMaintenance ran on ${hostnames[3]} with ${PAYLOAD}\n` },
    ]);
    expect(await recorded(1)).toEqual(STAGES.map((s) => `${s} ${PAYLOAD}`));
    expect(await recorded(3)).toEqual([`PreFlight ${PAYLOAD}`, `PreMaintenance ${PAYLOAD}`]);
    await settled(before, started);
    const events = (await world.ok('listEvents', { type: 'HOST.ROLLING.MAINTENANCE', listall: true })).event as any[];
    expect(events.some((e) => e.state === 'Completed' && / - Success: true, details: OK, hosts updated: 1, hosts skipped: 2$/.test(e.description))).toBe(true);
  }, patience(900_000));
  it("a stage's script keeps running when the agent restarts: it runs once and the new agent reads its result", async () => {
    for (const h of world.hosts) await sh(h.index, `rm -f ${HOOKS}/ran.log ${HOOKS}/go`);
    // Host 1's Maintenance script waits for a file the test writes once the agent has been restarted.
    await put(1, `${HOOKS}/Maintenance`, `#!/bin/bash
echo "Maintenance $*" >> ${HOOKS}/ran.log
for i in $(seq 1 1500); do [ -f ${HOOKS}/go ] && break; sleep 0.2; done
echo "went on after the agent restarted"
`);
    const host1 = hostOfIndex(1).id;
    const started = await world.ok('startRollingMaintenance', { hostids: host1, payload: PAYLOAD, timeout: '600' });
    jobIds.push(started.jobid);
    await until('host 1 to run its Maintenance script', () => recorded(1), (lines) => lines.some((l) => l.startsWith('Maintenance ')), { within: 300_000 });
    await world.agent.stop();
    restarted = await startAgent(world.agentDir, { MOLD_AGENT_VLAN_FALLBACK: 'isolated', MOLD_AGENT_CONSOLE_LISTEN: world.consoleListen });
    await sh(1, `touch ${HOOKS}/go`);
    const job = await adminClient(runtime.apiUrl, runtime.credentials).waitForJob(started.jobid, patience(300_000));
    expect(job.jobstatus, JSON.stringify(job.jobresult)).toBe(1);
    expect(job.jobresult.rollingmaintenance).toMatchObject({ success: true, details: 'OK', hostsskipped: [] });
    expect(job.jobresult.rollingmaintenance.hostsupdated).toEqual([
      { hostid: host1, hostname: expect.any(String), startdate: expect.any(String), enddate: expect.any(String), output: 'went on after the agent restarted\n' },
    ]);
    expect(await recorded(1)).toEqual(STAGES.map((s) => `${s} ${PAYLOAD}`));
    const host1now = (await world.ok('listHosts', { id: host1 })).host[0];
    expect(host1now.resourcestate).toBe('Enabled');
    expect((await world.ok('listClusters', { id: host1now.clusterid })).cluster[0].allocationstate).toBe('Enabled');
  }, patience(900_000));
});
