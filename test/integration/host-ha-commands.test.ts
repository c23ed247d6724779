// The host HA commands through /client/api on the real runtime (upstream's HA framework for hosts with
// the KVM provider): configureHAForHost, the host/cluster/zone switches (ha-command jobs),
// listHostHAResources, listHostHAProviders and the `hostha` object of listHosts. Hosts are seeded
// records (the commands reach no agent). The HA state is the sweeper's host HA pass's to move; where
// a test needs a state the pass would have set, it writes it as the pass does (updateHostRecord); the
// last test runs the pass itself (reconcileHa, as the sweeper calls it) on what the commands set.
// Every refusal changes nothing.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHostRecord, getHost, updateHostRecord, type Host } from '../../shared/db/hosts.ts';
import { getCluster, getZone } from '../../shared/db/infrastructure.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { hostHaEnabled } from '../../shared/host-ha-config.ts';
import { reconcileHa } from '../../functions/sweeper/ha.ts';
import { seedAgent } from '../support/agent-seed.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { missing, noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';

let world: World;
let admin: ApiClient;
let user: ApiClient;
let zone: any;
let cluster: any;
let host: Host;
let other: Host;

const hostha = async (h: Host) => ok(await admin.call('listHosts', { id: h.id }), 'listHosts').host[0].hostha;
const start = async (command: string, params: Record<string, string>) => {
  const body = ok(await admin.call(command, params), command);
  expect(Object.keys(body)).toEqual(['jobid']);
  return body.jobid as string;
};
const run = async (command: string, params: Record<string, string>) => {
  const job = await admin.waitForJob(await start(command, params));
  expect(job.jobstatus, JSON.stringify(job.jobresult)).toBe(1);
  return job;
};
const enabledNow = async (h: Host) => hostHaEnabled((await getHost(h.id))!, await getCluster(h.clusterId), await getZone(h.zoneId));
/** What the sweeper's host HA pass would write on entering `state`. */
const passSets = async (h: Host, state: 'Available' | 'Suspect') => {
  const current = (await getHost(h.id))!;
  expect(await updateHostRecord(h.id, { ha: { ...current.ha!, state, since: new Date().toISOString() } }, { ha: current.ha })).toBeDefined();
};

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  user = (await seedMember(world.runtime.apiUrl, unique('hauser'), (await getDomain(world.rootDomainId))!, 'User')).client;
  zone = ok(await admin.call('createZone', { name: unique('haz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
  const pod = ok(await admin.call('createPod', { zoneid: zone.id, name: unique('hap'), gateway: '10.71.0.1', netmask: '255.255.255.0', startip: '10.71.0.10' }), 'createPod').pod;
  cluster = ok(await admin.call('addCluster', { zoneid: zone.id, podid: pod.id, clustername: unique('hac'), hypervisor: 'KVM', clustertype: 'CloudManaged' }), 'addCluster').cluster[0];
  const c = (await getCluster(cluster.id))!;
  const fields = { status: 'Up' as const, resourcestate: 'Enabled' as const, username: 'root', port: 22, lastpinged: new Date().toISOString() };
  host = await createHostRecord(c, { name: unique('hah'), ipaddress: '10.71.0.21', ...fields });
  other = await createHostRecord(c, { name: unique('hah'), ipaddress: '10.71.0.22', ...fields });
});

afterAll(async () => {
  await world?.runtime.stop();
});

describe('listHostHAProviders', () => {
  it('lists the KVM provider for hypervisor KVM, none for the other subtypes', async () => {
    expect(ok(await admin.call('listHostHAProviders', { hypervisor: 'KVM' }), 'listHostHAProviders')).toEqual({ count: 1, haprovider: [{ haprovider: 'KVMHAProvider' }] });
    expect(ok(await admin.call('listHostHAProviders', { hypervisor: 'Simulator' }), 'listHostHAProviders')).toEqual({});
  });

  it('refuses a hypervisor upstream does not know by that exact name', async () => {
    const api = 'listHostHAProviders';
    for (const hypervisor of ['kvm', 'XenServer']) {
      refused(await admin.call(api, { hypervisor }), api, 431, 'Invalid or unsupported host hypervisor type provided. Supported types are: [KVM, Simulator, Unknown]');
    }
    refused(await admin.call(api, {}), api, 431, missing(api.toLowerCase(), 'hypervisor'));
  });
});

describe('before any configuration', () => {
  it('shows a host as upstream shows one without an HA config: disabled, state Disabled, no provider', async () => {
    expect(await hostha(host)).toEqual({ haenable: false, hastate: 'Disabled' });
    expect(ok(await admin.call('listHostHAResources', { hostid: host.id }), 'listHostHAResources')).toEqual({});
  });

  it('refuses bad input with upstream’s codes and texts, and changes nothing', async () => {
    const configure = 'configureHAForHost';
    refused(await admin.call(configure, { hostid: host.id, provider: 'nosuchprovider' }), configure, 530, 'Given HA provider [nosuchprovider] does not exist.');
    refused(await admin.call(configure, { hostid: host.id }), configure, 431, missing(configure.toLowerCase(), 'provider'));
    refused(await admin.call(configure, { provider: 'kvmhaprovider' }), configure, 431, missing(configure.toLowerCase(), 'hostid'));
    const unknown = randomUUID();
    // An unknown id, and ids of other kinds of entity (the zone's, the cluster's) for a host.
    for (const id of [unknown, zone.id, cluster.id]) {
      refused(await admin.call(configure, { hostid: id, provider: 'kvmhaprovider' }), configure, 431, noEntity(configure.toLowerCase(), 'hostid', id));
      for (const api of ['enableHAForHost', 'disableHAForHost', 'listHostHAResources']) refused(await admin.call(api, { hostid: id }), api, 431, noEntity(api.toLowerCase(), 'hostid', id));
    }
    for (const api of ['enableHAForCluster', 'disableHAForCluster']) refused(await admin.call(api, { clusterid: host.id }), api, 431, noEntity(api.toLowerCase(), 'clusterid', host.id));
    for (const api of ['enableHAForZone', 'disableHAForZone']) refused(await admin.call(api, { zoneid: cluster.id }), api, 431, noEntity(api.toLowerCase(), 'zoneid', cluster.id));
    // Upstream's configureHA without a provider: enabling or disabling a host that has none.
    for (const api of ['enableHAForHost', 'disableHAForHost']) {
      refused(await admin.call(api, { hostid: host.id }), api, 431, `HAProvider is not provided for the resource [${host.id}], failing configuration.`);
    }
    // Root admins only, as upstream's RoleType.Admin.
    const calls: [string, Record<string, string>][] = [
      [configure, { hostid: host.id, provider: 'kvmhaprovider' }],
      ['enableHAForHost', { hostid: host.id }],
      ['disableHAForHost', { hostid: host.id }],
      ['enableHAForCluster', { clusterid: cluster.id }],
      ['disableHAForCluster', { clusterid: cluster.id }],
      ['enableHAForZone', { zoneid: zone.id }],
      ['disableHAForZone', { zoneid: zone.id }],
      ['listHostHAResources', {}],
      ['listHostHAProviders', { hypervisor: 'KVM' }],
    ];
    for (const [api, params] of calls) refused(await user.call(api, params), api, 432, 'The given command does not exist or it is not available for user');
    const apis = ok(await user.call('listApis', {}), 'listApis').api.map((a: { name: string }) => a.name);
    for (const [api] of calls) expect(apis).not.toContain(api);

    expect((await getHost(host.id))!.ha).toBeUndefined();
    expect((await getCluster(cluster.id))!.haenabled).toBeUndefined();
    expect((await getZone(zone.id))!.haenabled).toBeUndefined();
    expect(await hostha(host)).toEqual({ haenable: false, hastate: 'Disabled' });
    expect(ok(await admin.call('listAsyncJobs', { listall: true }), 'listAsyncJobs')).toEqual({});
  });
});

describe('configureHAForHost, enableHAForHost, disableHAForHost', () => {
  it('configures the provider named in any case, leaving HA off, as upstream', async () => {
    const job = await run('configureHAForHost', { hostid: host.id, provider: 'KVMHAProvider' });
    expect(job).toMatchObject({ cmd: 'configureHAForHost', jobinstancetype: 'Host', jobinstanceid: host.id });
    expect(job.jobresult).toEqual({ hostha: { hostid: host.id, haprovider: 'kvmhaprovider' } });
    expect((await getHost(host.id))!.ha).toEqual({ provider: 'kvmhaprovider', enabled: false });
    expect(await hostha(host)).toEqual({ haenable: false, hastate: 'Disabled', haprovider: 'kvmhaprovider' });
    expect(ok(await admin.call('listHostHAResources', { hostid: host.id }), 'listHostHAResources')).toEqual({
      count: 1,
      hostha: [{ hostid: host.id, haenable: false, hastate: 'Disabled', haprovider: 'kvmhaprovider' }],
    });
    // Only configured hosts are HA resources.
    const all = ok(await admin.call('listHostHAResources', {}), 'listHostHAResources').hostha.map((h: { hostid: string }) => h.hostid);
    expect(all).toContain(host.id);
    expect(all).not.toContain(other.id);
    expect(await enabledNow(host)).toBe(false);
    const events = ok(await admin.call('listEvents', { type: 'HA.RESOURCE.CONFIGURE', listall: true }), 'listEvents').event;
    expect(events.map((e: { state: string }) => e.state).sort()).toEqual(['Completed', 'Scheduled']);
    expect(events[0]).toMatchObject({ resourceid: host.id, description: expect.stringContaining(`Configuring HA for host with ID: ${host.id}`) });
  });

  it('enables HA: the switch is on, the state stays for the sweeper’s pass (Disabled until it moves it)', async () => {
    const job = await run('enableHAForHost', { hostid: host.id });
    expect(job.jobresult).toEqual({ hostha: { hostid: host.id, haenable: true, status: true } });
    expect((await getHost(host.id))!.ha).toEqual({ provider: 'kvmhaprovider', enabled: true });
    expect(await hostha(host)).toEqual({ haenable: true, hastate: 'Disabled', haprovider: 'kvmhaprovider' });
    expect(await enabledNow(host)).toBe(true);
    // What the pass sets shows as it is; configuring again keeps the switch and the state.
    await passSets(host, 'Available');
    expect(await hostha(host)).toEqual({ haenable: true, hastate: 'Available', haprovider: 'kvmhaprovider' });
    expect((await run('configureHAForHost', { hostid: host.id, provider: 'kvmhaprovider' })).jobresult).toEqual({ hostha: { hostid: host.id, haprovider: 'kvmhaprovider' } });
    expect(await hostha(host)).toEqual({ haenable: true, hastate: 'Available', haprovider: 'kvmhaprovider' });
    // Enabling what is enabled changes nothing.
    const before = (await getHost(host.id))!.ha;
    expect((await run('enableHAForHost', { hostid: host.id })).jobresult).toEqual({ hostha: { hostid: host.id, haenable: true, status: true } });
    expect((await getHost(host.id))!.ha).toEqual(before);
    const events = ok(await admin.call('listEvents', { type: 'HA.RESOURCE.ENABLE', listall: true }), 'listEvents').event;
    expect(events.some((e: { state: string; description: string }) => e.state === 'Completed' && e.description.includes(`Enabling HA for host with ID: ${host.id}`))).toBe(true);
  });

  it('disables HA: the switch is off and the state Disabled at once', async () => {
    const job = await run('disableHAForHost', { hostid: host.id });
    expect(job.jobresult).toEqual({ hostha: { hostid: host.id, haenable: false, status: true } });
    const ha = (await getHost(host.id))!.ha!;
    expect(ha).toMatchObject({ provider: 'kvmhaprovider', enabled: false, state: 'Disabled' });
    expect(Date.parse(ha.since!)).not.toBeNaN();
    expect(await hostha(host)).toEqual({ haenable: false, hastate: 'Disabled', haprovider: 'kvmhaprovider' });
    expect(await enabledNow(host)).toBe(false);
    // Disabling again keeps the time the state was entered.
    await run('disableHAForHost', { hostid: host.id });
    expect((await getHost(host.id))!.ha).toEqual(ha);
    const events = ok(await admin.call('listEvents', { type: 'HA.RESOURCE.DISABLE', listall: true }), 'listEvents').event;
    expect(events.some((e: { state: string; description: string }) => e.state === 'Completed' && e.description.includes(`Disabling HA for host with ID: ${host.id}`))).toBe(true);
  });
});

describe('the cluster and zone switches', () => {
  for (const scope of ['Cluster', 'Zone'] as const) {
    it(`disableHAFor${scope} puts its configured hosts' state to Disabled and keeps their own switch; enableHAFor${scope} lets the pass move them again`, async () => {
      const idParam: Record<string, string> = scope === 'Cluster' ? { clusterid: cluster.id } : { zoneid: zone.id };
      const record = async () => (scope === 'Cluster' ? (await getCluster(cluster.id))! : (await getZone(zone.id))!);
      // The UI offers Enable HA where upstream's detail reads "false", Disable otherwise.
      const details = async () =>
        scope === 'Cluster'
          ? ok(await admin.call('listClusters', { id: cluster.id }), 'listClusters').cluster[0].resourcedetails
          : ok(await admin.call('listZones', { id: zone.id }), 'listZones').zone[0].resourcedetails;
      expect(await details()).toBeUndefined();
      await run('enableHAForHost', { hostid: host.id });
      await passSets(host, 'Suspect');
      expect(await enabledNow(host)).toBe(true);

      const off = await run(`disableHAFor${scope}`, idParam);
      expect(off).toMatchObject({ cmd: `disableHAFor${scope}`, jobinstancetype: scope, jobinstanceid: Object.values(idParam)[0], jobresult: { success: true } });
      expect((await record()).haenabled).toBe(false);
      expect(await details()).toEqual({ resourceHAEnabled: 'false' });
      expect((await getHost(host.id))!.ha).toMatchObject({ enabled: true, state: 'Disabled' });
      expect(await hostha(host)).toEqual({ haenable: true, hastate: 'Disabled', haprovider: 'kvmhaprovider' });
      expect(await enabledNow(host)).toBe(false);
      // A host without HA configured gets none from the switch.
      expect((await getHost(other.id))!.ha).toBeUndefined();

      const on = await run(`enableHAFor${scope}`, idParam);
      expect(on.jobresult).toEqual({ success: true });
      expect((await record()).haenabled).toBe(true);
      expect(await details()).toEqual({ resourceHAEnabled: 'true' });
      expect((await getHost(host.id))!.ha).toMatchObject({ enabled: true, state: 'Disabled' });
      expect(await enabledNow(host)).toBe(true);
    });
  }
});

describe('the sweeper’s host HA pass on what the commands set', () => {
  it('moves an enabled host from Disabled, leaves a disabled one (host or cluster switch) Disabled, and takes it up again', async () => {
    const { agent } = await seedAgent(zone.id);
    const c = (await getCluster(cluster.id))!;
    const reachable = () => ({ reachable: true, at: new Date().toISOString() });
    const driven = await createHostRecord(c, { name: unique('hah'), ipaddress: '10.71.0.23', status: 'Up', resourcestate: 'Enabled', agentId: agent.id, lastpinged: new Date().toISOString() });
    const sweep = async () => {
      await updateHostRecord(driven.id, { lastreport: reachable() });
      await reconcileHa();
      return (await hostha(driven)).hastate;
    };
    await run('configureHAForHost', { hostid: driven.id, provider: 'kvmhaprovider' });
    expect(await sweep()).toBe('Disabled');
    await run('enableHAForHost', { hostid: driven.id });
    expect(await hostha(driven)).toEqual({ haenable: true, hastate: 'Disabled', haprovider: 'kvmhaprovider' });
    expect(await sweep()).toBe('Available');
    // No out-of-band management on this host: upstream's KVM provider finds it ineligible.
    expect(await sweep()).toBe('Ineligible');

    await run('disableHAForHost', { hostid: driven.id });
    expect(await hostha(driven)).toEqual({ haenable: false, hastate: 'Disabled', haprovider: 'kvmhaprovider' });
    expect(await sweep()).toBe('Disabled');

    await run('enableHAForHost', { hostid: driven.id });
    await run('disableHAForCluster', { clusterid: cluster.id });
    expect(await sweep()).toBe('Disabled');
    await run('enableHAForCluster', { clusterid: cluster.id });
    expect(await sweep()).toBe('Available');
  });
});
