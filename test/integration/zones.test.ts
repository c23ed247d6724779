// Zones, pods and clusters through /client/api: upstream's shapes, listing with filters and paging,
// who may do what, every refusal (and that it changes nothing), and deleting only empty things.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHostRecord, deleteHostRecord, getHost } from '../../shared/db/hosts.ts';
import { getCluster } from '../../shared/db/infrastructure.ts';
import { getDomain, type Domain } from '../../shared/db/identity.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { missing, noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';

const DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('zones, pods and clusters', () => {
  let world: World;
  let admin: ApiClient;
  let root: Domain;
  let child: Domain;
  let user: ApiClient;
  let childUser: ApiClient;
  let domainAdmin: ApiClient;

  const zoneCount = async () => ok(await admin.call('listZones', { pagesize: -1 }), 'listZones').count ?? 0;
  const podCount = async (zoneid: string) => ok(await admin.call('listPods', { zoneid }), 'listPods').count ?? 0;
  const clusterCount = async (podid: string) => ok(await admin.call('listClusters', { podid }), 'listClusters').count ?? 0;
  const makeZone = async (fields: Record<string, string> = {}) =>
    ok(await admin.call('createZone', { name: unique('zone'), networktype: 'Advanced', dns1: '8.8.8.8', ...fields }), 'createZone').zone;
  const defined = (params: Record<string, string | undefined>) => Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const makePod = async (zoneid: string, fields: Record<string, string | undefined> = {}) =>
    ok(
      await admin.call('createPod', defined({ zoneid, name: unique('pod'), gateway: '10.0.0.1', netmask: '255.255.255.0', startip: '10.0.0.10', endip: '10.0.0.20', ...fields })),
      'createPod',
    ).pod;
  const makeCluster = async (zoneid: string, podid: string, fields: Record<string, string> = {}) =>
    ok(await admin.call('addCluster', { zoneid, podid, clustername: unique('cluster'), hypervisor: 'KVM', clustertype: 'CloudManaged', ...fields }), 'addCluster').cluster[0];
  const eventsOf = async (type: string) => ok(await admin.call('listEvents', { type, listall: true, pagesize: -1 }), 'listEvents').event ?? [];

  beforeAll(async () => {
    world = await startWorld();
    admin = world.admin;
    useRuntimeEndpoints(world.runtime);
    root = (await getDomain(world.rootDomainId))!;
    child = ok(await admin.call('createDomain', { name: unique('zdom') }), 'createDomain').domain;
    child = (await getDomain(child.id))!;
    user = (await seedMember(world.runtime.apiUrl, unique('zuser'), root, 'User')).client;
    childUser = (await seedMember(world.runtime.apiUrl, unique('zchild'), child, 'User')).client;
    domainAdmin = (await seedMember(world.runtime.apiUrl, unique('zda'), root, 'Domain Admin')).client;
  });
  afterAll(async () => {
    await world?.runtime.stop();
  });

  describe('zones', () => {
    it('creates an Advanced zone, Disabled, with upstream’s ZoneResponse and records ZONE.CREATE', async () => {
      const name = unique('zone');
      const answer = await admin.call('createZone', {
        name,
        networktype: 'advanced',
        dns1: '8.8.8.8',
        dns2: '8.8.4.4',
        internaldns1: '10.0.0.2',
        internaldns2: '10.0.0.3',
        guestcidraddress: '10.10.0.0/16',
        domain: 'cloud.example.com',
      });
      expect(Object.keys(answer.body)).toEqual(['createzoneresponse']);
      const zone = ok(answer, 'createZone').zone;
      expect(zone).toEqual({
        id: expect.stringMatching(UUID),
        name,
        dns1: '8.8.8.8',
        dns2: '8.8.4.4',
        internaldns1: '10.0.0.2',
        internaldns2: '10.0.0.3',
        guestcidraddress: '10.10.0.0/16',
        domain: 'cloud.example.com',
        networktype: 'Advanced',
        securitygroupsenabled: false,
        allocationstate: 'Disabled',
        zonetoken: expect.stringMatching(UUID),
        dhcpprovider: 'VirtualRouter',
        localstorageenabled: false,
        tags: [],
        allowuserspecifyvrmtu: false,
        routerprivateinterfacemaxmtu: 1500,
        routerpublicinterfacemaxmtu: 1500,
        type: 'Core',
        nsxenabled: false,
        multiarch: false,
        hasannotations: false,
      });
      expect((await eventsOf('ZONE.CREATE')).some((e: any) => e.description.includes(name))).toBe(true);
    });

    it('creates a Basic zone without a guest CIDR, and an Advanced one with upstream’s default CIDR', async () => {
      const basic = await makeZone({ networktype: 'Basic', guestcidraddress: '10.20.0.0/16' });
      expect(basic).toMatchObject({ networktype: 'Basic', dhcpprovider: 'DhcpServer' });
      expect(basic.guestcidraddress).toBeUndefined();
      expect((await makeZone()).guestcidraddress).toBe('10.1.1.0/24');
      expect((await makeZone({ allocationstate: 'Enabled' })).allocationstate).toBe('Enabled');
    });

    it('refuses bad zones with upstream’s words, and creates nothing', async () => {
      const taken = await makeZone();
      const before = await zoneCount();
      const base = { name: unique('bad'), networktype: 'Advanced', dns1: '8.8.8.8' };
      const cases: [Record<string, string>, string | RegExp][] = [
        [{ networktype: 'Advanced', dns1: '8.8.8.8' }, missing('createzone', 'name')],
        [{ name: unique('x'), dns1: '8.8.8.8' }, missing('createzone', 'networktype')],
        [{ name: unique('x'), networktype: 'Basic' }, missing('createzone', 'dns1')],
        [{ ...base, networktype: 'Hybrid' }, 'Invalid zone type; only Advanced and Basic values are supported'],
        [{ ...base, name: taken.name.toUpperCase() }, 'A zone with that name already exists. Please specify a unique zone name.'],
        [{ ...base, dns1: '8.8.8' }, 'Please enter a valid IP address for DNS1'],
        [{ ...base, dns2: '300.1.1.1' }, 'Please enter a valid IP address for DNS2'],
        [{ ...base, internaldns1: 'dns.example.com' }, 'Please enter a valid IP address for internal DNS1'],
        [{ ...base, internaldns2: '10.0.0.01' }, 'Please enter a valid IP address for internal DNS2'],
        [{ ...base, guestcidraddress: '10.1.1.0/33' }, 'Please enter a valid guest cidr'],
        [{ ...base, guestcidraddress: '10.1.1.0' }, 'Please enter a valid guest cidr'],
        [{ ...base, guestcidraddress: '8.8.8.0/24' }, 'Please enter a valid guest cidr'],
        [{ ...base, guestcidraddress: '10.0.0.0/7' }, 'Please enter a valid guest cidr'],
        [{ ...base, allocationstate: 'enabled' }, "Unable to resolve Allocation State 'enabled' to a supported state"],
        [{ ...base, domainid: crypto.randomUUID() }, 'Please specify a valid domain id'],
        [{ ...base, domainid: 'not-a-uuid' }, /Invalid parameter domainid value=not-a-uuid/],
        [{ ...base, domain: '-bad-.example.com' }, /^Invalid network domain/],
      ];
      for (const [params, text] of cases) refused(await admin.call('createZone', params), 'createZone', 431, text);
      expect(await zoneCount()).toBe(before);
    });

    it('is for root admins only', async () => {
      const before = await zoneCount();
      for (const client of [user, domainAdmin]) {
        refused(await client.call('createZone', { name: unique('x'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone', 432, /not available for user/);
        for (const command of ['updateZone', 'deleteZone', 'createPod', 'listPods', 'addCluster', 'listClusters', 'deletePod', 'deleteCluster']) {
          expect((await client.call(command, { id: crypto.randomUUID() })).status).toBe(432);
        }
      }
      expect(await zoneCount()).toBe(before);
    });

    it('lets users see only enabled zones they may use, without DNS details', async () => {
      const disabled = await makeZone();
      const enabled = await makeZone({ allocationstate: 'Enabled' });
      const dedicated = await makeZone({ allocationstate: 'Enabled', domainid: child.id });
      expect(dedicated).toMatchObject({ domainid: child.id, domainname: child.name });
      const seenBy = async (client: ApiClient, params: Record<string, string | boolean> = {}) =>
        (ok(await client.call('listZones', { pagesize: -1, ...params }), 'listZones').zone ?? []) as any[];
      const ids = (zones: any[]) => zones.map((z) => z.id);

      const byUser = await seenBy(user);
      expect(ids(byUser)).toContain(enabled.id);
      expect(ids(byUser)).not.toContain(disabled.id);
      expect(ids(byUser)).not.toContain(dedicated.id);
      expect(byUser.every((z) => z.allocationstate === 'Enabled')).toBe(true);
      const seen = byUser.find((z) => z.id === enabled.id);
      expect(seen.dns1).toBeUndefined();
      expect(seen.guestcidraddress).toBeUndefined();
      expect(seen).toMatchObject({ id: enabled.id, name: enabled.name, networktype: 'Advanced', allocationstate: 'Enabled' });
      expect(ids(await seenBy(user, { available: true }))).toEqual(ids(byUser));

      // A zone dedicated to a domain: its users see it, others do not.
      expect(ids(await seenBy(childUser))).toEqual(expect.arrayContaining([enabled.id, dedicated.id]));
      expect(ids(await seenBy(domainAdmin))).toContain(dedicated.id); // ROOT's domain admin: the child is below it
      expect(ids(await seenBy(domainAdmin))).not.toContain(disabled.id);

      // Admins see everything, disabled ones too, with DNS; available=true narrows to enabled zones.
      const byAdmin = await seenBy(admin);
      expect(ids(byAdmin)).toEqual(expect.arrayContaining([disabled.id, enabled.id, dedicated.id]));
      expect(byAdmin.find((z) => z.id === disabled.id).dns1).toBe('8.8.8.8');
      expect(ids(await seenBy(admin, { available: true }))).not.toContain(disabled.id);
      // Asking a user for a disabled zone by id finds nothing.
      expect(ok(await user.call('listZones', { id: disabled.id }), 'listZones')).toEqual({});
    });

    it('filters zones by id, ids, name, keyword, network type and domain, and pages them', async () => {
      const tag = unique('filt');
      const a = await makeZone({ name: `${tag}-a` });
      const b = await makeZone({ name: `${tag}-b`, networktype: 'Basic' });
      const c = await makeZone({ name: `${tag}-c`, domainid: child.id });
      const list = async (params: Record<string, string | number>) => ok(await admin.call('listZones', params), 'listZones');
      expect((await list({ id: a.id })).zone.map((z: any) => z.id)).toEqual([a.id]);
      expect((await list({ ids: `${a.id},${c.id}` })).zone.map((z: any) => z.id).sort()).toEqual([a.id, c.id].sort());
      expect((await list({ name: b.name.toUpperCase() })).zone.map((z: any) => z.id)).toEqual([b.id]);
      const byKeyword = await list({ keyword: tag });
      expect(byKeyword.count).toBe(3);
      expect(byKeyword.zone.map((z: any) => z.name)).toEqual([a.name, b.name, c.name]);
      expect((await list({ keyword: tag, networktype: 'Basic' })).zone.map((z: any) => z.id)).toEqual([b.id]);
      expect((await list({ keyword: tag, domainid: child.id })).zone.map((z: any) => z.id)).toEqual([c.id]);
      const page2 = await list({ keyword: tag, page: 2, pagesize: 2 });
      expect(page2.count).toBe(3);
      expect(page2.zone.map((z: any) => z.id)).toEqual([c.id]);
      refused(await admin.call('listZones', { id: a.id, ids: b.id }), 'listZones', 431, 'Either provide id or ids, not both');
      refused(await admin.call('listZones', { pagesize: 0 }), 'listZones', 431, /Page size/);
    });

    it('updates a zone and records ZONE.EDIT; refusals change nothing', async () => {
      const zone = await makeZone();
      const other = await makeZone();
      const name = unique('renamed');
      const updated = ok(
        await admin.call('updateZone', { id: zone.id, name, dns1: '1.1.1.1', internaldns1: '10.0.0.9', guestcidraddress: '172.16.0.0/16', allocationstate: 'Enabled', domain: 'new.example.com' }),
        'updateZone',
      ).zone;
      expect(updated).toMatchObject({ id: zone.id, name, dns1: '1.1.1.1', internaldns1: '10.0.0.9', guestcidraddress: '172.16.0.0/16', allocationstate: 'Enabled', domain: 'new.example.com' });
      // The old name is free again, the new one taken.
      expect((await makeZone({ name: zone.name })).name).toBe(zone.name);
      refused(await admin.call('createZone', { name, networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone', 431, /already exists/);
      expect((await eventsOf('ZONE.EDIT')).some((e: any) => e.resourceid === zone.id || e.description.includes(zone.id))).toBe(true);

      const basic = await makeZone({ networktype: 'Basic' });
      const cases: [Record<string, string>, string | RegExp][] = [
        [{ id: zone.id, name: other.name }, 'A zone with that name already exists. Please specify a unique zone name.'],
        [{ id: zone.id, dns1: 'x' }, 'Please enter a valid IP address for DNS1'],
        [{ id: zone.id, guestcidraddress: '192.169.0.0/16' }, 'Please enter a valid guest cidr'],
        [{ id: basic.id, guestcidraddress: '10.5.0.0/16' }, 'Guest CIDR can not be set for a zone with the Basic network type'],
        [{ id: zone.id, allocationstate: 'Off' }, "Unable to resolve Allocation State 'Off' to a supported state"],
        [{ id: crypto.randomUUID() }, /Invalid parameter id value=/],
        [{}, missing('updatezone', 'id')],
      ];
      for (const [params, text] of cases) refused(await admin.call('updateZone', params), 'updateZone', 431, text);
      const after = ok(await admin.call('listZones', { id: zone.id }), 'listZones').zone[0];
      expect(after).toEqual(updated);

      // ispublic releases a dedicated zone.
      const dedicated = await makeZone({ domainid: child.id });
      const released = ok(await admin.call('updateZone', { id: dedicated.id, ispublic: true }), 'updateZone').zone;
      expect(released.domainid).toBeUndefined();
    });

    it('deletes an empty zone only; a zone with a pod answers 536 naming it and stays', async () => {
      const zone = await makeZone();
      const pod = await makePod(zone.id);
      const answer = refused(await admin.call('deleteZone', { id: zone.id }), 'deleteZone', 536, `The zone cannot be deleted because there are pods in this zone: ${pod.name}`, 4375);
      expect(answer.errortext).toContain(pod.name);
      expect(ok(await admin.call('listZones', { id: zone.id }), 'listZones').count).toBe(1);
      ok(await admin.call('deletePod', { id: pod.id }), 'deletePod');
      const deleted = await admin.call('deleteZone', { id: zone.id });
      expect(deleted.body).toEqual({ deletezoneresponse: { success: true } });
      expect(ok(await admin.call('listZones', { id: zone.id }), 'listZones')).toEqual({});
      expect((await eventsOf('ZONE.DELETE')).some((e: any) => e.resourceid === zone.id || e.description.includes(zone.id))).toBe(true);
      refused(await admin.call('deleteZone', { id: zone.id }), 'deleteZone', 431, noEntity('deletezone', 'id', zone.id));
      // Its name can be used again.
      expect((await makeZone({ name: zone.name })).name).toBe(zone.name);
    });

    it('lets only one of two concurrent creations of the same name succeed', async () => {
      const name = unique('race');
      const answers = await Promise.all([1, 2, 3].map(() => admin.call('createZone', { name, networktype: 'Advanced', dns1: '8.8.8.8' })));
      expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
      for (const a of answers.filter((x) => x.status !== 200)) refused(a, 'createZone', 431, 'A zone with that name already exists. Please specify a unique zone name.');
      expect(ok(await admin.call('listZones', { name }), 'listZones').count).toBe(1);
    });
  });

  describe('pods', () => {
    let zone: any;
    beforeAll(async () => {
      zone = await makeZone();
    });

    it('creates a pod, Enabled unless told otherwise (upstream’s default), with upstream’s PodResponse and records POD.CREATE', async () => {
      const name = unique('pod');
      const answer = await admin.call('createPod', { zoneid: zone.id, name, gateway: '192.168.1.1', netmask: '255.255.255.0', startip: '192.168.1.100', endip: '192.168.1.150' });
      expect(Object.keys(answer.body)).toEqual(['createpodresponse']);
      expect(ok(answer, 'createPod').pod).toEqual({
        id: expect.stringMatching(UUID),
        name,
        zoneid: zone.id,
        zonename: zone.name,
        gateway: '192.168.1.1',
        netmask: '255.255.255.0',
        ipranges: [{ startip: '192.168.1.100', endip: '192.168.1.150', forsystemvms: '0', vlanid: 'untagged' }],
        startip: ['192.168.1.100'],
        endip: ['192.168.1.150'],
        forsystemvms: ['0'],
        vlanid: ['untagged'],
        allocationstate: 'Enabled',
        hasannotations: false,
      });
      expect((await eventsOf('POD.CREATE')).some((e: any) => e.description.includes(name))).toBe(true);
    });

    it('runs a range without an end to the subnet’s last host address', async () => {
      const pod = await makePod(zone.id, { gateway: '172.20.0.1', netmask: '255.255.0.0', startip: '172.20.1.0', endip: undefined });
      expect(pod.ipranges[0]).toMatchObject({ startip: '172.20.1.0', endip: '172.20.255.254' });
    });

    it('refuses malformed or overlapping addressing with upstream’s words, and creates nothing', async () => {
      const existing = await makePod(zone.id, { gateway: '10.50.0.1', startip: '10.50.0.10', endip: '10.50.0.50', netmask: '255.255.255.0' });
      const before = await podCount(zone.id);
      const base = { zoneid: zone.id, name: unique('bad'), gateway: '10.60.0.1', netmask: '255.255.255.0', startip: '10.60.0.10', endip: '10.60.0.20' };
      const cases: [Record<string, string>, string | RegExp, number?][] = [
        [{ ...base, name: undefined as never }, missing('createpod', 'name')],
        [{ ...base, zoneid: undefined as never }, missing('createpod', 'zoneid')],
        [{ ...base, gateway: undefined as never }, missing('createpod', 'gateway')],
        [{ ...base, zoneid: '00000000-0000-4000-8000-000000000000' }, noEntity('createpod', 'zoneid', '00000000-0000-4000-8000-000000000000')],
        [{ ...base, name: existing.name.toUpperCase() }, `A pod with name: ${existing.name.toUpperCase()} already exists in zone ${zone.id}. Please specify a different pod name. `],
        [{ ...base, gateway: '10.60.0' }, 'The gateway is invalid'],
        [{ ...base, netmask: '255.0.255.0' }, 'The netmask is invalid'],
        [{ ...base, netmask: '0.0.0.0' }, 'The netmask is invalid'],
        [{ ...base, startip: '10.60.0.x' }, 'The start address of the IP range is not a valid IP address.'],
        [{ ...base, endip: '10.60.0.256' }, 'The end address of the IP range is not a valid IP address.'],
        [{ ...base, startip: '10.61.0.10' }, 'The start address of the IP range is not in the CIDR subnet.'],
        [{ ...base, endip: '10.61.0.20' }, 'The end address of the IP range is not in the CIDR subnet.'],
        [{ ...base, startip: '10.60.0.30' }, 'The start IP address must have a lower value than the end IP address.'],
        [{ ...base, startip: '10.60.0.1' }, "The gateway shouldn't overlap start/end ip addresses"],
        [{ ...base, gateway: '10.50.0.1', startip: '10.50.0.40', endip: '10.50.0.60' }, `The IP range 10.50.0.40-10.50.0.60 overlaps with the IP range 10.50.0.10-10.50.0.50 of pod ${existing.name}`],
        [{ ...base, allocationstate: 'disabled' }, "Unable to resolve Allocation State 'disabled' to a supported state"],
      ];
      for (const [params, text] of cases) {
        const clean = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
        refused(await admin.call('createPod', clean), 'createPod', 431, text);
      }
      expect(await podCount(zone.id)).toBe(before);
      // The same range in another zone is fine.
      const elsewhere = await makeZone();
      expect((await makePod(elsewhere.id, { gateway: '10.50.0.1', startip: '10.50.0.10', endip: '10.50.0.50' })).zoneid).toBe(elsewhere.id);
    });

    it('lists pods with filters and paging', async () => {
      const z = await makeZone();
      const tag = unique('lp');
      const p1 = await makePod(z.id, { name: `${tag}-1`, gateway: '10.1.0.1', startip: '10.1.0.10', endip: '10.1.0.11', allocationstate: 'Disabled' });
      const p2 = await makePod(z.id, { name: `${tag}-2`, gateway: '10.2.0.1', startip: '10.2.0.10', endip: '10.2.0.11' });
      const list = async (params: Record<string, string | number>) => ok(await admin.call('listPods', params), 'listPods');
      expect((await list({ zoneid: z.id })).pod.map((p: any) => p.id)).toEqual([p1.id, p2.id]);
      expect((await list({ id: p2.id })).pod).toEqual([p2]);
      expect((await list({ zoneid: z.id, name: p1.name })).pod.map((p: any) => p.id)).toEqual([p1.id]);
      expect((await list({ keyword: tag })).count).toBe(2);
      expect((await list({ zoneid: z.id, allocationstate: 'Enabled' })).pod.map((p: any) => p.id)).toEqual([p2.id]);
      const page = await list({ zoneid: z.id, page: 2, pagesize: 1 });
      expect(page).toEqual({ count: 2, pod: [p2] });
      expect(await list({ zoneid: crypto.randomUUID() })).toEqual({});
    });

    it('updates a pod’s name, range and allocation, re-checking the range; refusals change nothing', async () => {
      const z = await makeZone();
      const a = await makePod(z.id, { gateway: '10.7.0.1', startip: '10.7.0.10', endip: '10.7.0.20' });
      const b = await makePod(z.id, { gateway: '10.7.0.1', startip: '10.7.0.30', endip: '10.7.0.40' });
      const name = unique('moved');
      const updated = ok(await admin.call('updatePod', { id: a.id, name, startip: '10.7.0.5', endip: '10.7.0.25', allocationstate: 'Enabled' }), 'updatePod').pod;
      expect(updated).toMatchObject({ id: a.id, name, startip: ['10.7.0.5'], endip: ['10.7.0.25'], allocationstate: 'Enabled', gateway: '10.7.0.1' });
      refused(await admin.call('updatePod', { id: a.id, endip: '10.7.0.35' }), 'updatePod', 431, `The IP range 10.7.0.5-10.7.0.35 overlaps with the IP range 10.7.0.30-10.7.0.40 of pod ${b.name}`);
      refused(await admin.call('updatePod', { id: a.id, name: b.name }), 'updatePod', 431, /already exists in zone/);
      refused(await admin.call('updatePod', { id: a.id, netmask: '255.255.255.253' }), 'updatePod', 431, 'The netmask is invalid');
      refused(await admin.call('updatePod', { id: a.id, allocationstate: 'On' }), 'updatePod', 431, "Unable to resolve Allocation State 'On' to a supported state");
      expect(ok(await admin.call('listPods', { id: a.id }), 'listPods').pod[0]).toEqual(updated);
      expect((await eventsOf('POD.EDIT')).some((e: any) => e.resourceid === a.id || e.description.includes(a.id))).toBe(true);
    });

    it('deletes an empty pod only; a pod with a cluster answers 536 naming it', async () => {
      const z = await makeZone();
      const pod = await makePod(z.id);
      const cluster = await makeCluster(z.id, pod.id);
      refused(await admin.call('deletePod', { id: pod.id }), 'deletePod', 536, `The pod cannot be deleted because there are clusters in this pod: ${cluster.name}`, 4375);
      expect(await podCount(z.id)).toBe(1);
      ok(await admin.call('deleteCluster', { id: cluster.id }), 'deleteCluster');
      expect((await admin.call('deletePod', { id: pod.id })).body).toEqual({ deletepodresponse: { success: true } });
      expect(await podCount(z.id)).toBe(0);
      expect((await eventsOf('POD.DELETE')).some((e: any) => e.resourceid === pod.id || e.description.includes(pod.id))).toBe(true);
      refused(await admin.call('deletePod', { id: pod.id }), 'deletePod', 431, noEntity('deletepod', 'id', pod.id));
    });
  });

  describe('clusters', () => {
    let zone: any;
    let pod: any;
    beforeAll(async () => {
      zone = await makeZone();
      pod = await makePod(zone.id);
    });

    it('adds a KVM cluster, Enabled unless told otherwise (upstream’s default), answered as upstream’s list of one, and records CLUSTER.CREATE', async () => {
      const name = unique('cluster');
      const answer = await admin.call('addCluster', { zoneid: zone.id, podid: pod.id, clustername: name, hypervisor: 'KVM', clustertype: 'CloudManaged' });
      expect(Object.keys(answer.body)).toEqual(['addclusterresponse']);
      const body = ok(answer, 'addCluster');
      expect(body).toEqual({
        count: 1,
        cluster: [
          {
            id: expect.stringMatching(UUID),
            name,
            podid: pod.id,
            podname: pod.name,
            zoneid: zone.id,
            zonename: zone.name,
            hypervisortype: 'KVM',
            clustertype: 'CloudManaged',
            allocationstate: 'Enabled',
            managedstate: 'Managed',
            cpuovercommitratio: '1.0',
            memoryovercommitratio: '1.0',
            arch: 'x86_64',
            hasannotations: false,
          },
        ],
      });
      expect((await eventsOf('CLUSTER.CREATE')).some((e: any) => e.description.includes(name))).toBe(true);
    });

    it('refuses other hypervisors, cluster types, a pod of another zone and duplicates; creates nothing', async () => {
      const existing = await makeCluster(zone.id, pod.id);
      const otherZone = await makeZone();
      const before = await clusterCount(pod.id);
      const base = { zoneid: zone.id, podid: pod.id, clustername: unique('bad'), hypervisor: 'KVM', clustertype: 'CloudManaged' };
      const cases: [Record<string, string | undefined>, string | RegExp][] = [
        [{ ...base, clustername: undefined }, missing('addcluster', 'clustername')],
        [{ ...base, hypervisor: undefined }, missing('addcluster', 'hypervisor')],
        [{ ...base, clustertype: undefined }, missing('addcluster', 'clustertype')],
        [{ ...base, hypervisor: 'XenServer' }, 'Hypervisor type XenServer is not supported: Mold manages KVM hosts only'],
        [{ ...base, clustertype: 'ExternalManaged' }, 'Cluster type ExternalManaged is not supported: KVM clusters are CloudManaged'],
        [{ ...base, zoneid: otherZone.id }, "Pod with specified podId doesn't belong to the zone with specified zoneId"],
        [{ ...base, podid: crypto.randomUUID() }, /Invalid parameter podid value=/],
        [{ ...base, clustername: existing.name.toUpperCase() }, `A cluster with name ${existing.name.toUpperCase()} already exists in pod ${pod.name}`],
        [{ ...base, allocationstate: 'ENABLED' }, "Unable to resolve Allocation State 'ENABLED' to a supported state"],
        [{ ...base, arch: 'sparc' }, 'Invalid arch: sparc. Valid options are: x86_64, aarch64'],
      ];
      for (const [params, text] of cases) {
        const clean = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) as Record<string, string>;
        refused(await admin.call('addCluster', clean), 'addCluster', 431, text);
      }
      expect(await clusterCount(pod.id)).toBe(before);
    });

    it('lists clusters with filters and paging, and updates name and allocation state', async () => {
      const z = await makeZone();
      const p = await makePod(z.id);
      const tag = unique('lc');
      const c1 = await makeCluster(z.id, p.id, { clustername: `${tag}-1`, allocationstate: 'Disabled' });
      const c2 = await makeCluster(z.id, p.id, { clustername: `${tag}-2`, arch: 'aarch64' });
      const list = async (params: Record<string, string | number>) => ok(await admin.call('listClusters', params), 'listClusters');
      expect((await list({ zoneid: z.id })).cluster.map((c: any) => c.id)).toEqual([c1.id, c2.id]);
      expect((await list({ podid: p.id, allocationstate: 'Enabled' })).cluster.map((c: any) => c.id)).toEqual([c2.id]);
      expect((await list({ keyword: tag, arch: 'aarch64' })).cluster.map((c: any) => c.id)).toEqual([c2.id]);
      expect((await list({ id: c1.id })).cluster).toEqual([c1]);
      expect((await list({ name: c1.name, hypervisor: 'KVM', clustertype: 'CloudManaged' })).count).toBe(1);
      expect(await list({ zoneid: z.id, hypervisor: 'VMware' })).toEqual({});
      expect(await list({ keyword: tag, page: 2, pagesize: 1 })).toEqual({ count: 2, cluster: [c2] });

      const name = unique('renamed');
      const updated = ok(await admin.call('updateCluster', { id: c1.id, clustername: name, allocationstate: 'Enabled' }), 'updateCluster').cluster;
      expect(updated).toEqual({ ...c1, name, allocationstate: 'Enabled' });
      expect((await eventsOf('CLUSTER.UPDATE')).some((e: any) => e.resourceid === c1.id || e.description.includes(c1.id))).toBe(true);
      refused(await admin.call('updateCluster', { id: c1.id, clustername: c2.name }), 'updateCluster', 431, `A cluster with name ${c2.name} already exists in pod ${p.name}`);
      refused(await admin.call('updateCluster', { id: c1.id, allocationstate: 'Maintenance' }), 'updateCluster', 431, "Unable to resolve Allocation State 'Maintenance' to a supported state");
      refused(await admin.call('updateCluster', { id: c1.id, hypervisor: 'Hyperv' }), 'updateCluster', 431, /Hyperv is not supported/);
      expect((await list({ id: c1.id })).cluster[0]).toEqual(updated);
    });

    it('deletes an empty cluster only; a cluster with a host answers 536 naming it', async () => {
      const cluster = await makeCluster(zone.id, pod.id);
      const host = await createHostRecord((await getCluster(cluster.id))!, { name: unique('host'), ipaddress: '10.0.0.77' });
      refused(await admin.call('deleteCluster', { id: cluster.id }), 'deleteCluster', 536, `The cluster cannot be deleted because there are hosts in this cluster: ${host.name}`, 4375);
      // The host is in the way of its pod and zone too.
      refused(await admin.call('deletePod', { id: pod.id }), 'deletePod', 536, `The pod cannot be deleted because there are servers in this pod: ${host.name}`);
      refused(await admin.call('deleteZone', { id: zone.id }), 'deleteZone', 536, `The zone cannot be deleted because there are servers in this zone: ${host.name}`);
      expect(ok(await admin.call('listClusters', { id: cluster.id }), 'listClusters').count).toBe(1);
      await deleteHostRecord(host);
      expect(await getHost(host.id)).toBeUndefined();
      expect((await admin.call('deleteCluster', { id: cluster.id })).body).toEqual({ deleteclusterresponse: { success: true } });
      expect((await eventsOf('CLUSTER.DELETE')).some((e: any) => e.resourceid === cluster.id || e.description.includes(cluster.id))).toBe(true);
      refused(await admin.call('deleteCluster', { id: cluster.id }), 'deleteCluster', 431, noEntity('deletecluster', 'id', cluster.id));
    });
  });

  it('lists the infrastructure commands in listApis for admins, and zones only for users', async () => {
    const names = async (client: ApiClient) => (ok(await client.call('listApis'), 'listApis').api as any[]).map((api) => api.name);
    const forAdmin = await names(admin);
    for (const command of ['createZone', 'listZones', 'updateZone', 'deleteZone', 'createPod', 'listPods', 'updatePod', 'deletePod', 'addCluster', 'listClusters', 'updateCluster', 'deleteCluster']) {
      expect(forAdmin).toContain(command);
    }
    const forUser = await names(user);
    expect(forUser).toContain('listZones');
    expect(forUser).not.toContain('createZone');
    expect(forUser).not.toContain('listPods');
  });
});
