// Heartbeats and host state on the real runtime (sweeper every second; ping.interval 1 s while hosts are
// to go silent, 60 s while nothing is to change under the assertions): an agent's
// reports keep its hosts Up and carry their figures; when they stop, the sweeper takes a host
// Disconnected, then Alert (nobody can tell) or Down (the agent said it cannot reach it); reports that
// resume bring both back Up. Each change is an event and an alert, seen through listEvents and
// listAlerts. Reports are made by calling recordReport directly (the gateway route in front of it is
// tested with the gateway); agents and hosts are seeded through the repository.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostReport } from '../../shared/agent/protocol.ts';
import { createAgentRecord, type Agent } from '../../shared/db/agents.ts';
import { createHostRecord, getHost, type Host } from '../../shared/db/hosts.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { createCluster, createPod, type Cluster, type Pod, type Zone } from '../../shared/db/infrastructure.ts';
import { recordReport } from '../../shared/host-reports.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember } from '../support/members.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { until } from '../support/wait.ts';
import { seedZone } from '../support/zones.ts';
import { ApiClient as Client } from '../support/client.ts';
import { noEntity, ok, refused, unique } from './identity-fixtures.ts';

const GiB = 1024 ** 3;
const SWEEP_SECONDS = 1;
const PING_TIMEOUT = 3;

describe('heartbeats and host state', () => {
  let runtime: RunningRuntime;
  let admin: ApiClient;
  let zone: Zone;
  let pod: Pod;
  let cluster: Cluster;
  let agent: Agent;
  let otherAgent: Agent;
  let silent: Host; // its reports stop: Alert
  let lost: Host; // the agent reports it unreachable: Down
  let others: Host; // another agent's

  const seedAgent = (name: string) =>
    createAgentRecord({
      id: randomUUID(),
      name,
      zoneId: zone.id,
      certificate: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n',
      certificateSerial: '01',
      certificateExpires: '2099-01-01T00:00:00+0000',
      sshPublicKey: 'ssh-ed25519 AAAA test',
      queueUrl: `http://127.0.0.1/queue/mold-agent-${name}`,
      version: '0.1.0',
    });
  const healthy = (host: Host, freeGiB = 6): HostReport => ({
    hostId: host.id,
    reachable: true,
    libvirtd: true,
    memoryTotalBytes: 8 * GiB,
    memoryFreeBytes: freeGiB * GiB,
    loadAverage: 0.42,
    domains: [],
  });
  const listed = async (host: Host) => ok(await admin.call('listHosts', { id: host.id }), 'listHosts').host[0];
  const statusEvents = async (host: Host) =>
    (ok(await admin.call('listEvents', { listall: true, type: 'HOST.STATUS.TRANSITION', resourcetype: 'Host', resourceid: host.id }), 'listEvents').event ?? [])
      .slice()
      .reverse();
  const alertsAbout = async (host: Host) =>
    (ok(await admin.call('listAlerts', { keyword: host.id }), 'listAlerts').alert ?? []).slice().reverse();
  const setPingInterval = async (seconds: number) =>
    ok(await admin.call('updateConfiguration', { name: 'ping.interval', value: String(seconds) }), 'updateConfiguration');
  const desc = (host: Host) => `name: ${host.name} (id:${host.id}), availability zone: ${zone.name}, pod: ${pod.name}`;

  beforeAll(async () => {
    runtime = await startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: String(SWEEP_SECONDS) } });
    useRuntimeEndpoints(runtime);
    admin = new Client(runtime.apiUrl, runtime.credentials);
    await setPingInterval(60);
    ok(await admin.call('updateConfiguration', { name: 'ping.timeout', value: String(PING_TIMEOUT) }), 'updateConfiguration');
    zone = await seedZone(unique('hz'));
    pod = await createPod(zone, { name: unique('hp'), allocationstate: 'Enabled' });
    cluster = await createCluster(pod, { name: unique('hc'), allocationstate: 'Enabled' });
    agent = await seedAgent(unique('agent'));
    otherAgent = await seedAgent(unique('other'));
    const now = new Date().toISOString();
    silent = await createHostRecord(cluster, { name: unique('silent'), ipaddress: '10.77.4.11', agentId: agent.id, lastpinged: now, username: 'root', port: 22 });
    lost = await createHostRecord(cluster, { name: unique('lost'), ipaddress: '10.77.4.12', agentId: agent.id, lastpinged: now });
    // Long silent already: the sweeper has it Alert within a few seconds.
    others = await createHostRecord(cluster, { name: unique('others'), ipaddress: '10.77.4.13', agentId: otherAgent.id, status: 'Disconnected', lastpinged: '2020-01-01T00:00:00.000Z' });
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  it('takes a report: figures and lastpinged on the agent’s hosts; answers ping.interval and the hosts to watch', async () => {
    const before = Date.now();
    const response = await recordReport(agent, { version: '0.1.0', hosts: [healthy(silent, 6), healthy(lost, 5)] });
    expect(response.pingIntervalSeconds).toBe(60);
    expect(response.hosts.sort((a, b) => a.address.localeCompare(b.address))).toEqual([
      { hostId: silent.id, address: '10.77.4.11', port: 22, username: 'root' },
      { hostId: lost.id, address: '10.77.4.12', port: 22, username: 'root' },
    ]);
    const shown = await listed(silent);
    expect(shown.state).toBe('Up');
    expect(shown.memoryused).toBe(2 * GiB);
    expect(shown.cpuloadaverage).toBe(0.42);
    expect(Date.parse(shown.lastpinged)).toBeGreaterThanOrEqual(before - 1000);
    expect((await listed(lost)).memoryused).toBe(3 * GiB);
    // No change of status, no event.
    expect(await statusEvents(silent)).toEqual([]);
  });

  it('ignores hosts of another agent (and unknown ids) in a report', async () => {
    const record = (await getHost(others.id))!;
    const response = await recordReport(agent, { version: '0.1.0', hosts: [healthy(others), { ...healthy(silent), hostId: randomUUID() }] });
    expect(response.hosts.map((h) => h.hostId)).not.toContain(others.id);
    const after = (await getHost(others.id))!;
    expect(after.lastpinged).toBe(record.lastpinged);
    expect(after.lastreport).toBeUndefined();
    expect(after.memoryused).toBe(record.memoryused);
    expect(after.status).not.toBe('Up');
    // Its own agent's report is what brings it back.
    const own = await recordReport(otherAgent, { version: '0.1.0', hosts: [healthy(others)] });
    expect(own.hosts.map((h) => h.hostId)).toEqual([others.id]);
    expect((await listed(others)).state).toBe('Up');
  });

  it('moves hosts whose reports stop to Disconnected, then Alert (no word) or Down (unreachable), with events and alerts', async () => {
    // The agent goes on reporting, but only that it cannot reach `lost`; of `silent` it says nothing.
    const reportLost = () => recordReport(agent, { version: '0.1.0', hosts: [{ hostId: lost.id, reachable: false, error: 'Cannot reach 10.77.4.12:22: connect EHOSTUNREACH', domains: [] }] });
    // Its first report lands before ping.interval drops: on a loaded machine a sweep could otherwise
    // judge `lost` before hearing why, and rightly say only that its reports stopped.
    await reportLost();
    await setPingInterval(1);
    let reporting = true;
    const reporter = (async () => {
      while (reporting) {
        await reportLost();
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    })();
    try {
      // Silence past ping.timeout × ping.interval (3 × 1 s), judged by the next sweep.
      await until(
        'silent to go Alert and lost to go Down',
        async () => [(await listed(silent)).state, (await listed(lost)).state],
        ([silentState, lostState]) => silentState === 'Alert' && lostState === 'Down',
        { within: (PING_TIMEOUT * 1 + SWEEP_SECONDS) * 1000 + 5_000, every: 200 },
      );
    } finally {
      reporting = false;
      await reporter;
    }

    const silentEvents = await statusEvents(silent);
    expect(silentEvents.map((e: any) => [e.level, e.description.replace(/:.*$/s, '')])).toEqual([
      ['WARN', `Host ${silent.name} (id`],
      ['WARN', `Host ${silent.name} (id`],
    ]);
    expect(silentEvents[0].description).toMatch(/status changed from Up to Disconnected \(PingMissed\): The agent's reports on the host stopped: no contact for [\d.]+ s \(ping\.interval is 1 s\)$/);
    expect(silentEvents[1].description).toMatch(/status changed from Disconnected to Alert \(WaitedTooLong\): No report says why; no contact for [\d.]+ s \(ping\.timeout × ping\.interval is 3 s\)$/);
    expect(silentEvents[0]).toMatchObject({ type: 'HOST.STATUS.TRANSITION', account: 'system', username: 'system', domain: 'ROOT', resourcetype: 'Host', resourceid: silent.id, state: 'Completed' });

    const lostEvents = await statusEvents(lost);
    expect(lostEvents.map((e: any) => e.level)).toEqual(['WARN', 'ERROR']);
    expect(lostEvents[0].description).toMatch(/status changed from Up to Disconnected \(PingMissed\): The agent cannot reach the host: Cannot reach 10\.77\.4\.12:22: connect EHOSTUNREACH; no contact for/);
    expect(lostEvents[1].description).toMatch(/status changed from Disconnected to Down \(HostDown\): The agent cannot reach the host: Cannot reach 10\.77\.4\.12:22: connect EHOSTUNREACH; no contact for [\d.]+ s/);

    const silentAlerts = await alertsAbout(silent);
    expect(silentAlerts.map((a: any) => a.description)).toEqual([`Host disconnected, ${desc(silent)}`, `Host in ALERT state, ${desc(silent)}`]);
    for (const alert of silentAlerts) {
      expect(Object.keys(alert)).toEqual(['id', 'type', 'name', 'description', 'sent']);
      expect(alert).toMatchObject({ type: 7, name: 'ALERT.COMPUTE.HOST' });
      expect(alert.sent).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$/);
    }
    expect((await alertsAbout(lost)).map((a: any) => a.description)).toEqual([`Host disconnected, ${desc(lost)}`, `Host is down, ${desc(lost)}`]);
    const shown = await listed(silent);
    expect(shown.disconnected).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$/);
  });

  it('brings both back Up when reports resume: Alert --Ping--> Up, Down --AgentConnected--> Connecting --Ready--> Up', async () => {
    await setPingInterval(60);
    const response = await recordReport(agent, { version: '0.1.0', hosts: [healthy(silent), healthy(lost)] });
    expect(response).toMatchObject({ pingIntervalSeconds: 60 });
    expect(response.hosts).toHaveLength(2);
    expect((await listed(silent)).state).toBe('Up');
    expect((await listed(lost)).state).toBe('Up');
    const silentEvents = await statusEvents(silent);
    expect(silentEvents.at(-1)).toMatchObject({ level: 'INFO' });
    expect(silentEvents.at(-1).description).toMatch(/status changed from Alert to Up \(Ping\): The agent reached the host and libvirtd answers$/);
    const lostEvents = (await statusEvents(lost)).slice(-2);
    expect(lostEvents.map((e: any) => e.description.replace(/^.*status changed from (\w+) to (\w+) \((\w+)\).*$/, '$1 $2 $3'))).toEqual([
      'Down Connecting AgentConnected',
      'Connecting Up Ready',
    ]);
    expect((await alertsAbout(silent)).at(-1).description).toBe(`Host is up, ${desc(silent)}`);
    // The passage through Connecting raises no alert.
    expect((await alertsAbout(lost)).map((a: any) => a.description.replace(/,.*$/, ''))).toEqual(['Host disconnected', 'Host is down', 'Host is up']);
  });

  it('catalogues the event type', async () => {
    const types = ok(await admin.call('listEventTypes'), 'listEventTypes').eventtype.map((t: { name: string }) => t.name);
    expect(types).toContain('HOST.STATUS.TRANSITION');
  });

  describe('listAlerts, archiveAlerts, deleteAlerts', () => {
    it('filters by id, type, name and keyword, newest first, with paging', async () => {
      const all = ok(await admin.call('listAlerts', { keyword: lost.id }), 'listAlerts');
      expect(all.count).toBe(3);
      expect(all.alert[0].description).toMatch(/^Host is up/);
      const one = ok(await admin.call('listAlerts', { id: all.alert[1].id }), 'listAlerts');
      expect(one).toEqual({ count: 1, alert: [all.alert[1]] });
      expect(ok(await admin.call('listAlerts', { type: 7, keyword: lost.id }), 'listAlerts').count).toBe(3);
      expect(ok(await admin.call('listAlerts', { type: 8, keyword: lost.id }), 'listAlerts')).toEqual({});
      expect(ok(await admin.call('listAlerts', { name: 'alert.compute.host', keyword: lost.id }), 'listAlerts').count).toBe(3);
      expect(ok(await admin.call('listAlerts', { keyword: lost.id, page: 2, pagesize: 2 }), 'listAlerts')).toEqual({ count: 3, alert: [all.alert[2]] });
      const unknown = randomUUID();
      refused(await admin.call('listAlerts', { id: unknown }), 'listAlerts', 431, noEntity('listalerts', 'id', unknown));
    });

    it('is for admins: a User may not list alerts', async () => {
      const root = (await getDomain(runtime.credentials.domainid))!;
      const user = (await seedMember(runtime.apiUrl, unique('auser'), root, 'User')).client;
      refused(await user.call('listAlerts'), 'listAlerts', 432, 'The given command does not exist or it is not available for user');
      refused(await user.call('archiveAlerts', { type: 7 }), 'archiveAlerts', 432, /not available for user/);
    });

    it('archives and deletes by id, refusing without a selection or with a start date alone, changing nothing', async () => {
      const [newest, middle, oldest] = ok(await admin.call('listAlerts', { keyword: lost.id }), 'listAlerts').alert;
      refused(await admin.call('archiveAlerts', {}), 'archiveAlerts', 431, 'either ids, type, startdate or enddate must be specified');
      refused(await admin.call('deleteAlerts', { startdate: '2020-01-01' }), 'deleteAlerts', 431, 'either ids, type, startdate or enddate must be specified');
      refused(await admin.call('archiveAlerts', { type: 7, startdate: '2020-01-01' }), 'archiveAlerts', 431, 'enddate must be specified with startdate parameter');
      const unknown = randomUUID();
      refused(await admin.call('deleteAlerts', { ids: `${oldest.id},${unknown}` }), 'deleteAlerts', 431, noEntity('deletealerts', 'ids', unknown));
      expect(ok(await admin.call('listAlerts', { keyword: lost.id }), 'listAlerts').count).toBe(3);

      expect(ok(await admin.call('archiveAlerts', { ids: oldest.id }), 'archiveAlerts')).toEqual({ success: true });
      // An archived alert is no longer listed, and cannot be archived or deleted again by id.
      expect(ok(await admin.call('listAlerts', { keyword: lost.id }), 'listAlerts').alert.map((a: any) => a.id)).toEqual([newest.id, middle.id]);
      refused(await admin.call('deleteAlerts', { ids: oldest.id }), 'deleteAlerts', 530, 'Unable to delete Alerts, one or more parameters has invalid values');
      expect(ok(await admin.call('deleteAlerts', { ids: middle.id }), 'deleteAlerts')).toEqual({ success: true });
      expect(ok(await admin.call('listAlerts', { keyword: lost.id }), 'listAlerts').alert.map((a: any) => a.id)).toEqual([newest.id]);
      refused(await admin.call('listAlerts', { id: middle.id }), 'listAlerts', 431, noEntity('listalerts', 'id', middle.id));
    });
  });
});
