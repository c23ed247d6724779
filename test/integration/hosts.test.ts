// Hosts as records through /client/api: listHosts with upstream's HostResponse, filters and paging;
// updateHost with tags, annotation and Enable/Disable as ResourceState transitions; who may call
// them; every refusal, and that it changes nothing. Hosts are seeded through the repository
// (adding a real host is the agent's work).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHostRecord, getHost, transitionResourceState, transitionStatus, type Host } from '../../shared/db/hosts.ts';
import { getCluster } from '../../shared/db/infrastructure.ts';
import { getDomain } from '../../shared/db/identity.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { missing, noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';

describe('hosts', () => {
  let world: World;
  let admin: ApiClient;
  let user: ApiClient;
  let zone: any;
  let pod: any;
  let cluster: any;
  let otherCluster: any;
  let h1: Host;
  let h2: Host;
  let h3: Host;
  const tag = unique('kvm');

  const seedHost = async (clusterId: string, fields: Partial<Host> & { name: string }) =>
    createHostRecord((await getCluster(clusterId))!, { ipaddress: '10.0.0.5', ...fields });
  const list = async (params: Record<string, string | number> = {}) => ok(await admin.call('listHosts', params), 'listHosts');

  beforeAll(async () => {
    world = await startWorld();
    admin = world.admin;
    useRuntimeEndpoints(world.runtime);
    const root = (await getDomain(world.rootDomainId))!;
    user = (await seedMember(world.runtime.apiUrl, unique('huser'), root, 'User')).client;
    zone = ok(await admin.call('createZone', { name: unique('hz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
    pod = ok(await admin.call('createPod', { zoneid: zone.id, name: unique('hp'), gateway: '10.0.0.1', netmask: '255.255.255.0', startip: '10.0.0.10' }), 'createPod').pod;
    const add = async () => ok(await admin.call('addCluster', { zoneid: zone.id, podid: pod.id, clustername: unique('hc'), hypervisor: 'KVM', clustertype: 'CloudManaged' }), 'addCluster').cluster[0];
    cluster = await add();
    otherCluster = await add();
    h1 = await seedHost(cluster.id, {
      name: `${tag}-1`,
      ipaddress: '10.0.0.11',
      cpunumber: 8,
      cpuspeed: 2500,
      memorytotal: 16 * 1024 ** 3,
      cpuallocated: 5000,
      memoryallocated: 4 * 1024 ** 3,
      cpuused: 12.345,
      memoryused: 2 * 1024 ** 3,
      hosttags: ['ssd'],
      version: '4.20.0.0',
      hypervisorversion: '8.0.0',
    });
    h2 = await seedHost(cluster.id, { name: `${tag}-2`, ipaddress: '10.0.0.12', status: 'Disconnected' });
    h3 = await seedHost(otherCluster.id, { name: `${tag}-3`, ipaddress: '10.0.0.13', resourcestate: 'Maintenance' });
  });
  afterAll(async () => {
    await world?.runtime.stop();
  });

  it('lists a host with upstream’s HostResponse fields', async () => {
    const answer = await admin.call('listHosts', { id: h1.id });
    expect(Object.keys(answer.body)).toEqual(['listhostsresponse']);
    const body = ok(answer, 'listHosts');
    expect(body.count).toBe(1);
    expect(body.host[0]).toEqual({
      id: h1.id,
      name: h1.name,
      state: 'Up',
      type: 'Routing',
      ipaddress: '10.0.0.11',
      zoneid: zone.id,
      zonename: zone.name,
      podid: pod.id,
      podname: pod.name,
      version: '4.20.0.0',
      hypervisor: 'KVM',
      cpusockets: 1,
      cpunumber: 8,
      cpuspeed: 2500,
      cpuallocated: '25%',
      cpuallocatedvalue: 5000,
      cpuallocatedpercentage: '25%',
      cpuallocatedwithoverprovisioning: '25%',
      cpuused: '12.35%',
      cpuwithoverprovisioning: '20000',
      networkkbsread: 0,
      networkkbswrite: 0,
      memorytotal: 16 * 1024 ** 3,
      memorywithoverprovisioning: String(16 * 1024 ** 3),
      memoryallocated: 4 * 1024 ** 3,
      memoryallocatedpercentage: '25%',
      memoryallocatedbytes: 4 * 1024 ** 3,
      memoryused: 2 * 1024 ** 3,
      disksizetotal: 0,
      disksizeallocated: 0,
      capabilities: 'hvm,snapshot',
      clusterid: cluster.id,
      clustername: cluster.name,
      clustertype: 'CloudManaged',
      islocalstorageactive: false,
      created: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$/),
      hosttags: 'ssd',
      explicithosttags: 'ssd',
      implicithosttags: '',
      istagarule: false,
      outofbandmanagement: { powerstate: 'Disabled', enabled: false },
      hostha: { haenable: false, hastate: 'Disabled' },
      resourcestate: 'Enabled',
      hypervisorversion: '8.0.0',
      hahost: false,
      encryptionsupported: false,
      instanceconversionsupported: false,
      arch: 'x86_64',
      hasannotations: false,
    });
  });

  it('filters hosts by zone, pod, cluster, state, resource state, type, hypervisor, name and keyword, and pages them', async () => {
    const ids = (body: any) => (body.host ?? []).map((h: any) => h.id);
    expect(ids(await list({ keyword: tag }))).toEqual([h1.id, h2.id, h3.id]);
    expect(ids(await list({ zoneid: zone.id }))).toEqual([h1.id, h2.id, h3.id]);
    expect(ids(await list({ podid: pod.id }))).toEqual([h1.id, h2.id, h3.id]);
    expect(ids(await list({ clusterid: cluster.id }))).toEqual([h1.id, h2.id]);
    expect(ids(await list({ clusterid: otherCluster.id }))).toEqual([h3.id]);
    expect(ids(await list({ keyword: tag, state: 'Disconnected' }))).toEqual([h2.id]);
    expect(ids(await list({ keyword: tag, resourcestate: 'Maintenance' }))).toEqual([h3.id]);
    expect(ids(await list({ keyword: tag, type: 'Routing', hypervisor: 'KVM' }))).toEqual([h1.id, h2.id, h3.id]);
    expect(ids(await list({ keyword: tag, type: 'Storage' }))).toEqual([]);
    expect(ids(await list({ name: h2.name }))).toEqual([h2.id]);
    expect(await list({ zoneid: crypto.randomUUID() })).toEqual({});
    const page = await list({ keyword: tag, page: 2, pagesize: 2 });
    expect(page.count).toBe(3);
    expect(ids(page)).toEqual([h3.id]);
  });

  it('updates tags and annotation, and records HOST.UPDATE', async () => {
    const answer = await admin.call('updateHost', { id: h1.id, hosttags: 'ssd,gpu,ssd', annotation: 'rack 4, slot 2' });
    expect(Object.keys(answer.body)).toEqual(['updatehostresponse']);
    const host = ok(answer, 'updateHost').host;
    expect(host).toMatchObject({
      id: h1.id,
      hosttags: 'ssd,gpu',
      explicithosttags: 'ssd,gpu',
      annotation: 'rack 4, slot 2',
      lastannotated: expect.stringMatching(/\+0000$/),
      username: 'admin',
      hasannotations: true,
      resourcestate: 'Enabled',
    });
    expect((await list({ id: h1.id })).host[0]).toEqual(host);
    const events = ok(await admin.call('listEvents', { type: 'HOST.UPDATE', listall: true }), 'listEvents').event;
    expect(events.some((e: any) => e.resourceid === h1.id || e.description.includes(h1.id))).toBe(true);
  });

  it('disables and enables a host through its ResourceState', async () => {
    const disabled = ok(await admin.call('updateHost', { id: h2.id, allocationstate: 'Disable' }), 'updateHost').host;
    expect(disabled.resourcestate).toBe('Disabled');
    expect((await getHost(h2.id))!.resourcestate).toBe('Disabled');
    // Disable again is a legal self-transition upstream.
    expect(ok(await admin.call('updateHost', { id: h2.id, allocationstate: 'Disable' }), 'updateHost').host.resourcestate).toBe('Disabled');
    const enabled = ok(await admin.call('updateHost', { id: h2.id, allocationstate: 'Enable' }), 'updateHost').host;
    expect(enabled.resourcestate).toBe('Enabled');
    // The connection status is untouched by allocation.
    expect(enabled.state).toBe('Disconnected');
  });

  it('refuses what upstream refuses and changes nothing', async () => {
    const before = (await list({ keyword: tag })).host;
    refused(await admin.call('updateHost', { id: h1.id, allocationstate: 'Maintenance' }), 'updateHost', 431, 'Invalid allocation state: Maintenance, only Enable/Disable are allowed', 4350);
    refused(await admin.call('updateHost', { id: h1.id, allocationstate: 'enable', hosttags: 'x' }), 'updateHost', 431, 'Invalid allocation state: enable, only Enable/Disable are allowed');
    // A host in maintenance is neither enabled nor disabled by updateHost (no such transition upstream).
    refused(await admin.call('updateHost', { id: h3.id, allocationstate: 'Enable', hosttags: 'x' }), 'updateHost', 530, 'No next resource state found for current state =Maintenance event =Enable', 4250);
    refused(await admin.call('updateHost', { id: h3.id, allocationstate: 'Disable' }), 'updateHost', 530, 'No next resource state found for current state =Maintenance event =Disable');
    refused(await admin.call('updateHost', {}), 'updateHost', 431, missing('updatehost', 'id'));
    const ghost = crypto.randomUUID();
    refused(await admin.call('updateHost', { id: ghost, hosttags: 'x' }), 'updateHost', 431, noEntity('updatehost', 'id', ghost));
    expect((await list({ keyword: tag })).host).toEqual(before);
  });

  it('moves the state machines atomically in the repository, refusing illegal transitions', async () => {
    const host = await seedHost(cluster.id, { name: unique('sm'), status: 'Up' });
    expect((await transitionResourceState(host.id, 'AdminAskMaintenance'))!.resourcestate).toBe('PrepareForMaintenance');
    await expect(transitionResourceState(host.id, 'Enable')).rejects.toThrow('No next resource state found for current state =PrepareForMaintenance event =Enable');
    expect((await transitionResourceState(host.id, 'InternalEnterMaintenance'))!.resourcestate).toBe('Maintenance');
    expect((await transitionStatus(host.id, 'PingTimeout'))!.status).toBe('Alert');
    await expect(transitionStatus(host.id, 'Ready')).rejects.toThrow(/current status =Alert event =Ready/);
    // Concurrent transitions from the same state: each applies to the state the other left.
    const results = await Promise.all([transitionStatus(host.id, 'HostDown'), transitionStatus(host.id, 'HostDown')]);
    expect(results.map((h) => h!.status)).toEqual(['Down', 'Down']);
    expect((await getHost(host.id))!).toMatchObject({ status: 'Down', resourcestate: 'Maintenance' });
  });

  it('is for admins: users may neither list nor update hosts', async () => {
    refused(await user.call('listHosts'), 'listHosts', 432, 'The given command does not exist or it is not available for user');
    refused(await user.call('updateHost', { id: h1.id, allocationstate: 'Disable' }), 'updateHost', 432, /not available for user/);
    expect((await getHost(h1.id))!.resourcestate).toBe('Enabled');
    const apis = (ok(await admin.call('listApis'), 'listApis').api as any[]).map((api) => api.name);
    expect(apis).toEqual(expect.arrayContaining(['listHosts', 'updateHost']));
  });
});
