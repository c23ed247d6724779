// startRollingMaintenance through /client/api and the real rolling-maintenance state machine (with
// host-maintenance and vm-migrate as children), the test playing the zone's agent. A cluster of three
// hosts, one Running VM on A. Bad input is refused at once with upstream's codes and texts and
// changes nothing; a run answers each stage as scripted: host B's PreFlight exits 70 (skipped), A
// enters maintenance (its VM migrated away) between PreMaintenance and Maintenance, the payload
// reaches every stage, the job shows progress, and the cluster is Disabled during the run and Enabled
// after it. A PreMaintenance failure without `forced` ends the run with success false.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHost, updateHostRecord, type Host } from '../../shared/db/hosts.ts';
import { getCluster } from '../../shared/db/infrastructure.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { getVmConsistent } from '../../shared/db/vms.ts';
import { addPlayedHost, playedVmChecks, seedPlayedZone, type PlayedZone } from '../support/played-zone.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { patience } from '../support/wait.ts';
import type { CommandMessage } from '../../shared/agent/protocol.ts';
import { answer, receiveCommand } from '../support/agent-seed.ts';
import { noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';

let world: World;
let played: PlayedZone;
let admin: ApiClient;
let alice: Member;
let hostA: Host;
let hostB: Host;
let hostC: Host;
let vm: any;

const { jobCount, begin, deployed } = playedVmChecks(() => admin, () => played);
const API = 'startRollingMaintenance';
const PAYLOAD = 'param1=val1 param2=val2';

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  alice = await seedMember(world.runtime.apiUrl, unique('alice'), (await getDomain(world.rootDomainId))!, 'User');
  played = await seedPlayedZone(admin, 91);
  hostA = played.host as Host;
  hostB = await addPlayedHost(played.cluster.id, played.seeded, { name: unique('kvm-b'), ipaddress: '10.91.0.12' });
  hostC = await addPlayedHost(played.cluster.id, played.seeded, { name: unique('kvm-c'), ipaddress: '10.91.0.13' });
  const offering = ok(await admin.call('createServiceOffering', { name: unique('small'), displaytext: 'small', cpunumber: 1, cpuspeed: 500, memory: 512 }), 'createServiceOffering').serviceoffering;
  vm = await deployed({ zoneid: played.zone.id, serviceofferingid: offering.id, templateid: played.template.id, hostid: hostA.id, account: alice.account.name, domainid: world.rootDomainId });
}, patience(180_000));

afterAll(async () => {
  await world?.runtime.stop();
});

describe('bad input', () => {
  it("is refused with upstream's codes and texts before any job, changing nothing", async () => {
    const jobs = await jobCount();
    refused(await alice.client.call(API, { hostids: hostA.id }), API, 432, 'The given command does not exist or it is not available for user');
    const scope = 'Parameters podId, clusterId, zoneId, hostId are mutually exclusive, please set only one of them';
    refused(await admin.call(API, {}), API, 431, scope);
    refused(await admin.call(API, { hostids: hostA.id, clusterids: played.cluster.id }), API, 431, scope);
    const unknown = randomUUID();
    refused(await admin.call(API, { hostids: `${hostA.id},${unknown}` }), API, 431, noEntity(API.toLowerCase(), 'hostids', unknown));
    refused(await admin.call(API, { clusterids: unknown }), API, 431, noEntity(API.toLowerCase(), 'clusterids', unknown));
    refused(await admin.call(API, { podids: unknown }), API, 431, noEntity(API.toLowerCase(), 'podids', unknown));
    refused(await admin.call(API, { zoneids: unknown }), API, 431, noEntity(API.toLowerCase(), 'zoneids', unknown));
    const timeoutText = "The timeout value provided must be greater or equal than the ping interval defined in 'kvm.rolling.maintenance.ping.interval'";
    refused(await admin.call(API, { hostids: hostA.id, timeout: 5 }), API, 431, timeoutText);
    refused(await admin.call(API, { hostids: hostA.id, timeout: 10 }), API, 431, timeoutText);
    await updateHostRecord(hostC.id, { resourcestate: 'Maintenance' });
    try {
      refused(await admin.call(API, { clusterids: played.cluster.id }), API, 530, `Error starting rolling maintenance: Host ${hostC.id} is not enabled, state = Maintenance`);
    } finally {
      await updateHostRecord(hostC.id, { resourcestate: 'Enabled' });
    }
    expect(await jobCount()).toBe(jobs);
    expect((await getCluster(played.cluster.id))!.allocationstate).toBe('Enabled');
  });
});

type Script = (host: string, stage: string, probe: boolean) => { exitCode: number; output: string } | 'missing';

/** Answers the run's agent commands until the job ends; returns what was asked. */
async function play(jobid: string, script: Script) {
  const asked: { host: string; stage: string; probe: boolean; payload?: string; type: string }[] = [];
  for (;;) {
    const job = ok(await admin.call('queryAsyncJobResult', { jobid }), 'queryAsyncJobResult');
    if (job.jobstatus !== 0) return { job, asked };
    let message: CommandMessage;
    try {
      message = await receiveCommand(played.seeded.agent.queueUrl, 5_000);
    } catch {
      continue;
    }
    const p = message.payload as any;
    if (message.type === 'migrateVm') {
      asked.push({ host: p.host.hostId, stage: 'migrate', probe: false, type: message.type });
      await answer(message, { result: { name: p.name, state: 'Running', vncPort: 5909 } });
      continue;
    }
    expect(message.type).toBe('rollingMaintenanceStage');
    asked.push({ host: p.host.hostId, stage: p.stage, probe: p.probe, payload: p.payload, type: message.type });
    // While a stage runs, the cluster is Disabled and the job pending.
    expect((await getCluster(played.cluster.id))!.allocationstate).toBe('Disabled');
    const outcome = script(p.host.hostId, p.stage, p.probe);
    if (outcome === 'missing') await answer(message, { result: { stage: p.stage, found: false, finished: true, output: '' } });
    else await answer(message, { result: { stage: p.stage, found: true, script: `/hooks/${p.stage}`, finished: true, exitCode: outcome.exitCode, output: outcome.output } });
  }
}

describe('a run over a cluster', () => {
  it('runs the stages in upstream order with the payload; B is skipped by PreFlight exit 70; A enters maintenance between PreMaintenance and Maintenance; the cluster is Enabled after', async () => {
    const started = await begin(admin, API, { clusterids: played.cluster.id, payload: PAYLOAD, timeout: 60 });
    const { job, asked } = await play(started.jobid, (host, stage) => (host === hostB.id && stage === 'PreFlight' ? { exitCode: 70, output: 'not needed' } : { exitCode: 0, output: `${stage} done on ${host}` }));
    expect(job.jobstatus, JSON.stringify(job.jobresult)).toBe(1);
    expect(job.jobprocstatus).toBeGreaterThan(0);
    const response = job.jobresult.rollingmaintenance;
    expect(response).toMatchObject({ success: true, details: 'OK' });
    expect(response.hostsskipped).toEqual([{ hostid: hostB.id, hostname: hostB.name, reason: 'Pre-flight stage set to avoid maintenance' }]);
    expect(new Set(response.hostsupdated.map((h: any) => h.hostid))).toEqual(new Set([hostA.id, hostC.id]));
    for (const updated of response.hostsupdated) {
      expect(updated.output).toBe(`Maintenance done on ${updated.hostid}`);
      expect(Date.parse(updated.enddate.replace('+0000', 'Z'))).toBeGreaterThanOrEqual(Date.parse(updated.startdate.replace('+0000', 'Z')));
    }
    // The VM moves off a host (perhaps twice: to a host whose turn is still to come) between its PreMaintenance and Maintenance.
    const stagesOf = (host: string) => asked.filter((a) => a.host === host).map((a) => (a.probe ? 'probe' : a.stage));
    const withoutMoves = (host: string) => stagesOf(host).filter((s) => s !== 'migrate');
    expect(withoutMoves(hostA.id)).toEqual(['PreFlight', 'probe', 'PreMaintenance', 'Maintenance', 'PostMaintenance']);
    expect(withoutMoves(hostB.id)).toEqual(['PreFlight', 'probe', 'PreMaintenance']);
    expect(withoutMoves(hostC.id)).toEqual(['PreFlight', 'probe', 'PreMaintenance', 'Maintenance', 'PostMaintenance']);
    expect(stagesOf(hostA.id)).toEqual(['PreFlight', 'probe', 'PreMaintenance', 'migrate', 'Maintenance', 'PostMaintenance']);
    // Every host's PreFlight comes before any host's other stages.
    const firstOther = asked.findIndex((a) => a.stage !== 'PreFlight');
    expect(asked.slice(firstOther).some((a) => a.stage === 'PreFlight')).toBe(false);
    for (const a of asked.filter((x) => x.type === 'rollingMaintenanceStage' && !x.probe)) expect(a.payload).toBe(PAYLOAD);
    expect((await getCluster(played.cluster.id))!.allocationstate).toBe('Enabled');
    for (const host of [hostA, hostB, hostC]) expect((await getHost(host.id))!.resourcestate).toBe('Enabled');
    const moved = (await getVmConsistent(vm.id))!;
    expect(moved.state).toBe('Running');
    // Off A before A's Maintenance (the stages above); C's turn may have sent it back to A, done by then.
    expect([hostA.id, hostB.id, hostC.id]).toContain(moved.hostId);
    const events = ok(await admin.call('listEvents', { type: 'CLUSTER.ROLLING.MAINTENANCE', listall: true }), 'listEvents').event as any[];
    expect(events.some((e) => e.state === 'Completed' && /Completed rolling maintenance for entity Cluster with IDs: .* - Success: true, details: OK, hosts updated: 2, hosts skipped: 1/.test(e.description))).toBe(true);
  }, patience(300_000));

  it('a PreMaintenance failure without forced ends the run with success false; with forced the host is skipped; the cluster is Enabled again either way', async () => {
    const failing: Script = (host, stage) => (host === hostB.id && stage === 'PreMaintenance' ? { exitCode: 3, output: 'disk check failed' } : { exitCode: 0, output: 'ok' });
    const strict = await play((await begin(admin, API, { hostids: hostB.id, payload: PAYLOAD, timeout: 60 })).jobid, failing);
    expect(strict.job.jobstatus).toBe(1);
    expect(strict.job.jobresult.rollingmaintenance).toMatchObject({ success: false, details: `Error starting rolling maintenance: Stage: PreMaintenance failed on host ${hostB.id}: disk check failed`, hostsupdated: [] });
    expect((await getCluster(played.cluster.id))!.allocationstate).toBe('Enabled');

    const forced = await play((await begin(admin, API, { hostids: `${hostB.id},${hostC.id}`, forced: 'true', timeout: 60 })).jobid, failing);
    expect(forced.job.jobresult.rollingmaintenance).toMatchObject({
      success: true,
      hostsskipped: [{ hostid: hostB.id, hostname: hostB.name, reason: 'Pre-maintenance script failed: disk check failed' }],
    });
    expect(forced.job.jobresult.rollingmaintenance.hostsupdated.map((h: any) => h.hostid)).toEqual([hostC.id]);
    expect((await getCluster(played.cluster.id))!.allocationstate).toBe('Enabled');
    for (const host of [hostA, hostB, hostC]) expect((await getHost(host.id))!.resourcestate).toBe('Enabled');
  }, patience(300_000));
});
