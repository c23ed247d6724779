// Guest networks through /client/api: physical networks with non-contiguous VLAN ranges, the
// built-in network offerings, shared networks and their IP ranges, RBAC, every refusal, and that a
// refusal changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocateAddress, releaseAddress } from '../../shared/db/ipam.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { seedZone } from '../support/zones.ts';
import { makeAccount, makeDomain, missing, noEntity, ok, refused, startWorld, unique, type Member, type World } from './identity-fixtures.ts';
import { patience } from '../support/wait.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$/;
const DENIED = 'The given command does not exist or it is not available for user';
type Params = Record<string, string | number | boolean>;

describe('guest networks', () => {
  let world: World;
  let user: Member;
  let domainAdmin: Member;
  let childDomain: any;
  let zone: { id: string; name: string };
  let shared: any;
  let sgOffering: any;
  let isolatedOffering: any;

  const call = (command: string, params: Params = {}) => world.admin.call(command, params);
  const job = async (command: string, params: Params) => {
    const answer = await call(command, params);
    const { jobid } = ok(answer, command);
    return world.admin.waitForJob(jobid);
  };
  const done = async (command: string, params: Params) => {
    const result = await job(command, params);
    expect(result.jobstatus, JSON.stringify(result)).toBe(1);
    return result.jobresult;
  };
  const physical = async (id: string) => ok(await call('listPhysicalNetworks', { id }), 'listPhysicalNetworks').physicalnetwork?.[0];
  const networks = async (client = world.admin, params: Params = {}) => ok(await client.call('listNetworks', params), 'listNetworks').network ?? [];
  const ranges = async (params: Params = {}) => ok(await call('listVlanIpRanges', params), 'listVlanIpRanges').vlaniprange ?? [];
  const eventsOf = async (type: string) => ok(await call('listEvents', { type, listall: true }), 'listEvents').event ?? [];
  const newPhysical = async (vlan = '100-199,300-399', z = zone) =>
    (await done('createPhysicalNetwork', { zoneid: z.id, name: unique('phys'), vlan, isolationmethods: 'VLAN' })).physicalnetwork;
  const networkParams = (physicalnetworkid: string, vlan: number, third: number, extra: Params = {}): Params =>
    Object.fromEntries(Object.entries({
    name: unique('net'),
    displaytext: 'shared network',
    networkofferingid: shared.id,
    zoneid: zone.id,
    physicalnetworkid,
    vlan,
    gateway: `10.${third}.0.1`,
    netmask: '255.255.255.0',
    startip: `10.${third}.0.10`,
    endip: `10.${third}.0.20`,
    // These networks sit inside the physical network's VLAN ranges, to exercise the range rules.
    bypassvlanoverlapcheck: true,
    ...extra,
  }).filter(([, value]) => value !== undefined));
  const newNetwork = async (physicalnetworkid: string, vlan: number, third: number, extra: Params = {}) =>
    ok(await call('createNetwork', networkParams(physicalnetworkid, vlan, third, extra)), 'createNetwork').network;

  beforeAll(async () => {
    world = await startWorld();
    useRuntimeEndpoints(world.runtime);
    zone = await seedZone(unique('zone'), { allocationstate: 'Disabled' });
    childDomain = await makeDomain(world.admin);
    user = await makeAccount(world.admin, { accounttype: 0 });
    domainAdmin = await makeAccount(world.admin, { accounttype: 2, domainid: childDomain.id });
    const offerings = ok(await call('listNetworkOfferings'), 'listNetworkOfferings').networkoffering;
    shared = offerings.find((o: any) => o.name === 'DefaultSharedNetworkOffering');
    sgOffering = offerings.find((o: any) => o.name === 'DefaultSharedNetworkOfferingWithSGService');
    isolatedOffering = offerings.find((o: any) => o.name === 'DefaultIsolatedNetworkOfferingWithSourceNatService');
  }, patience(60_000));

  afterAll(async () => {
    await world?.runtime.stop();
  });

  describe('network offerings', () => {
    it('lists the built-in offerings with upstream fields, to every role', async () => {
      expect(shared).toMatchObject({
        id: expect.stringMatching(UUID),
        name: 'DefaultSharedNetworkOffering',
        displaytext: 'Offering for Shared networks',
        traffictype: 'Guest',
        guestiptype: 'Shared',
        specifyvlan: true,
        specifyipranges: true,
        availability: 'Optional',
        isdefault: true,
        state: 'Enabled',
        forvpc: false,
      });
      expect(shared.service.map((s: any) => s.name).sort()).toEqual(['Dhcp', 'Dns', 'UserData']);
      expect(shared.service[0].provider).toEqual([{ name: 'VirtualRouter' }]);
      expect(sgOffering.displaytext).toBe('Offering for Shared Security group enabled networks');
      expect(sgOffering.service.map((s: any) => s.name)).toContain('SecurityGroup');
      expect(isolatedOffering).toMatchObject({ guestiptype: 'Isolated', availability: 'Required', specifyvlan: false });
      const seen = ok(await user.client.call('listNetworkOfferings', { guestiptype: 'Shared' }), 'listNetworkOfferings');
      expect(seen.networkoffering.map((o: any) => o.name).sort()).toEqual(['DefaultSharedNetworkOffering', 'DefaultSharedNetworkOfferingWithSGService']);
    });

    it('filters by id, name and keyword, and pages', async () => {
      const byId = ok(await call('listNetworkOfferings', { id: shared.id }), 'listNetworkOfferings');
      expect(byId.count).toBe(1);
      expect(ok(await call('listNetworkOfferings', { name: 'DefaultSharedNetworkOffering' }), 'listNetworkOfferings').networkoffering).toHaveLength(1);
      expect(ok(await call('listNetworkOfferings', { keyword: 'isolated' }), 'listNetworkOfferings').count).toBeGreaterThanOrEqual(2);
      const all = ok(await call('listNetworkOfferings'), 'listNetworkOfferings');
      const page = ok(await call('listNetworkOfferings', { page: 2, pagesize: 2 }), 'listNetworkOfferings');
      expect(page.count).toBe(all.count);
      expect(page.networkoffering.map((o: any) => o.id)).toEqual(all.networkoffering.slice(2, 4).map((o: any) => o.id));
    });
  });

  describe('physical networks', () => {
    it('creates one (async, with its id), lists it and records PHYSICAL.NETWORK.CREATE', async () => {
      const name = unique('phys');
      const answer = ok(await call('createPhysicalNetwork', { zoneid: zone.id, name, vlan: '300-399,100-199', isolationmethods: 'VLAN', tags: 'guest' }), 'createPhysicalNetwork');
      expect(answer.id).toMatch(UUID);
      const result = await world.admin.waitForJob(answer.jobid);
      expect(result.jobstatus).toBe(1);
      expect(result.jobresult.physicalnetwork).toEqual({
        id: answer.id,
        name,
        broadcastdomainrange: 'ZONE',
        zoneid: zone.id,
        zonename: zone.name,
        state: 'Disabled',
        vlan: '100-199,300-399',
        tags: 'guest',
        isolationmethods: 'VLAN',
      });
      expect(await physical(answer.id)).toEqual(result.jobresult.physicalnetwork);
      const listed = ok(await call('listPhysicalNetworks', { zoneid: zone.id, keyword: name }), 'listPhysicalNetworks');
      expect(listed.count).toBe(1);
      expect((await eventsOf('PHYSICAL.NETWORK.CREATE')).some((e: any) => e.state === 'Completed' && e.resourceid === answer.id)).toBe(true);
    });

    it('refuses bad VLAN ranges, other isolation methods and enabled zones, creating nothing', async () => {
      const before = ok(await call('listPhysicalNetworks'), 'listPhysicalNetworks').count ?? 0;
      const attempt = (params: Params) => call('createPhysicalNetwork', { zoneid: zone.id, name: unique('bad'), ...params });
      refused(await attempt({ vlan: '100-5000' }), 'createPhysicalNetwork', 431, 'Vnet range has to be between 0 and 4095');
      refused(await attempt({ vlan: '200-100' }), 'createPhysicalNetwork', 431, 'Vnet range has to be between 0 and 4095 and start range should be lesser than or equal to stop range');
      refused(await attempt({ vlan: 'abc' }), 'createPhysicalNetwork', 431, /^Please provide valid vnet range/);
      refused(await attempt({ vlan: '100-199,150-160' }), 'createPhysicalNetwork', 431, 'Vnet range 150-160 overlaps with the range 100-199');
      refused(await attempt({ isolationmethods: 'GRE' }), 'createPhysicalNetwork', 431, /GRE is not supported/);
      refused(await attempt({ isolationmethods: 'VLAN,GRE' }), 'createPhysicalNetwork', 431, 'Only one isolationMethod can be specified for a physical network at this time');
      refused(await attempt({ broadcastdomainrange: 'Pod' }), 'createPhysicalNetwork', 431, 'Advance zone can have broadcast domain type of value ZONE only');
      refused(await attempt({ broadcastdomainrange: 'Galaxy' }), 'createPhysicalNetwork', 431, "Unable to resolve broadcastDomainRange 'Galaxy' to a supported value {Pod or Zone}");
      const enabled = await seedZone(unique('zone-enabled'));
      refused(
        await call('createPhysicalNetwork', { zoneid: enabled.id, name: 'x' }),
        'createPhysicalNetwork',
        531,
        `Cannot create PhysicalNetwork since the Zone is currently enabled, zone: ${enabled.name}`,
      );
      const ghost = '00000000-0000-4000-8000-000000000000';
      refused(await call('createPhysicalNetwork', { zoneid: ghost, name: 'x' }), 'createPhysicalNetwork', 431, noEntity('createphysicalnetwork', 'zoneid', ghost));
      refused(await call('createPhysicalNetwork', { zoneid: zone.id }), 'createPhysicalNetwork', 431, missing('createphysicalnetwork', 'name'));
      expect(ok(await call('listPhysicalNetworks'), 'listPhysicalNetworks').count ?? 0).toBe(before);
    });

    it('is for admins only', async () => {
      for (const [command, params] of [
        ['createPhysicalNetwork', { zoneid: zone.id, name: 'x' }],
        ['listPhysicalNetworks', {}],
        ['createVlanIpRange', {}],
        ['listVlanIpRanges', {}],
      ] as const) {
        refused(await user.client.call(command, params), command, 432, DENIED);
        refused(await domainAdmin.client.call(command, params), command, 432, DENIED);
      }
    });

    it('adds and removes non-contiguous ranges, and enables and disables', async () => {
      const p = await newPhysical('100-199');
      const added = (await done('updatePhysicalNetwork', { id: p.id, vlan: '100-199,300-399,500-500' })).physicalnetwork;
      expect(added.vlan).toBe('100-199,300-399,500-500');
      const shrunk = (await done('updatePhysicalNetwork', { id: p.id, vlan: '300-399' })).physicalnetwork;
      expect(shrunk.vlan).toBe('300-399');
      const enabled = (await done('updatePhysicalNetwork', { id: p.id, state: 'Enabled' })).physicalnetwork;
      expect(enabled).toMatchObject({ state: 'Enabled', vlan: '300-399' });
      expect((await physical(p.id)).state).toBe('Enabled');
      expect((await eventsOf('PHYSICAL.NETWORK.UPDATE')).filter((e: any) => e.resourceid === p.id && e.state === 'Completed')).toHaveLength(3);
      await done('updatePhysicalNetwork', { id: p.id, state: 'Disabled' });
    });

    it('refuses bad updates and keeps the ranges', async () => {
      const p = await newPhysical('100-199');
      refused(await call('updatePhysicalNetwork', { id: p.id, vlan: '100-4096' }), 'updatePhysicalNetwork', 431, 'Vnet range has to be between 0 and 4095');
      refused(await call('updatePhysicalNetwork', { id: p.id, vlan: '100-199,150-300' }), 'updatePhysicalNetwork', 431, 'Vnet range 150-300 overlaps with the range 100-199');
      refused(await call('updatePhysicalNetwork', { id: p.id, state: 'Sleeping' }), 'updatePhysicalNetwork', 431, "Unable to resolve state 'Sleeping' to a supported value {Enabled or Disabled}");
      refused(await call('updatePhysicalNetwork', { id: p.id, tags: 'a,b' }), 'updatePhysicalNetwork', 431, 'Unable to support more than one tag on network yet');
      // A range whose VLAN a network uses cannot go.
      await newNetwork(p.id, 150, 201);
      refused(await call('updatePhysicalNetwork', { id: p.id, vlan: '100-140' }), 'updatePhysicalNetwork', 431, `physicalnetwork ${p.name} has allocated vnets in the range 141-199`);
      refused(await call('updatePhysicalNetwork', { id: p.id, vlan: '300-399' }), 'updatePhysicalNetwork', 431, `physicalnetwork ${p.name} has allocated vnets in the range 100-199`);
      expect((await physical(p.id)).vlan).toBe('100-199');
      // Growing around it is fine.
      expect((await done('updatePhysicalNetwork', { id: p.id, vlan: '150-150,160-250' })).physicalnetwork.vlan).toBe('150-150,160-250');
    });

    it('cannot be deleted while a network uses it (536), then can', async () => {
      const p = await newPhysical('700-799');
      const net = await newNetwork(p.id, 700, 202);
      refused(
        await call('deletePhysicalNetwork', { id: p.id }),
        'deletePhysicalNetwork',
        536,
        'The Physical Network is not deletable because there are networks associated to this physical network',
      );
      expect(await physical(p.id)).toBeDefined();
      await done('deleteNetwork', { id: net.id });
      expect(await done('deletePhysicalNetwork', { id: p.id })).toEqual({ success: true });
      expect(await physical(p.id)).toBeUndefined();
      expect((await eventsOf('PHYSICAL.NETWORK.DELETE')).some((e: any) => e.resourceid === p.id && e.state === 'Completed')).toBe(true);
    });
  });

  describe('shared networks', () => {
    let p: any;
    let net: any;

    beforeAll(async () => {
      p = await newPhysical('100-199,300-399');
    });

    it('creates a shared network with upstream fields and its first IP range', async () => {
      const params = networkParams(p.id, 120, 30, { networkdomain: 'cs.internal' });
      net = ok(await call('createNetwork', params), 'createNetwork').network;
      expect(net).toMatchObject({
        id: expect.stringMatching(UUID),
        name: params.name,
        displaytext: 'shared network',
        broadcastdomaintype: 'Vlan',
        traffictype: 'Guest',
        gateway: '10.30.0.1',
        netmask: '255.255.255.0',
        cidr: '10.30.0.0/24',
        zoneid: zone.id,
        zonename: zone.name,
        networkofferingid: shared.id,
        networkofferingname: 'DefaultSharedNetworkOffering',
        networkofferingdisplaytext: 'Offering for Shared networks',
        networkofferingavailability: 'Optional',
        issystem: false,
        state: 'Setup',
        broadcasturi: 'vlan://120',
        type: 'Shared',
        vlan: '120',
        acltype: 'Domain',
        subdomainaccess: true,
        domainid: world.rootDomainId,
        domain: 'ROOT',
        physicalnetworkid: p.id,
        networkdomain: 'cs.internal',
        specifyipranges: true,
        restartrequired: false,
        created: expect.stringMatching(DATE),
      });
      const [range] = await ranges({ networkid: net.id });
      expect(range).toMatchObject({
        id: expect.stringMatching(UUID),
        forvirtualnetwork: false,
        zoneid: zone.id,
        vlan: 'vlan://120',
        gateway: '10.30.0.1',
        netmask: '255.255.255.0',
        cidr: '10.30.0.0/24',
        startip: '10.30.0.10',
        endip: '10.30.0.20',
        networkid: net.id,
        physicalnetworkid: p.id,
        domainid: world.rootDomainId,
      });
      expect((await eventsOf('NETWORK.CREATE')).some((e: any) => e.resourceid === net.id)).toBe(true);
    });

    it('lists by id, zone, type and keyword, with paging; users see domain networks but not the VLAN', async () => {
      expect((await networks(world.admin, { id: net.id }))[0].id).toBe(net.id);
      expect((await networks(world.admin, { zoneid: zone.id, type: 'Shared' })).map((n: any) => n.id)).toContain(net.id);
      expect(await networks(world.admin, { id: net.id, type: 'Isolated' })).toEqual([]);
      expect((await networks(world.admin, { keyword: net.name.slice(4) })).map((n: any) => n.id)).toEqual([net.id]);
      const all = ok(await call('listNetworks', { zoneid: zone.id }), 'listNetworks');
      const page = ok(await call('listNetworks', { zoneid: zone.id, page: 1, pagesize: 1 }), 'listNetworks');
      expect(page.count).toBe(all.count);
      expect(page.network).toHaveLength(1);
      const seen = (await networks(user.client, { id: net.id }))[0];
      expect(seen).toMatchObject({ id: net.id, type: 'Shared', acltype: 'Domain' });
      expect(seen.vlan).toBeUndefined();
      expect(seen.broadcasturi).toBeUndefined();
      refused(await call('listNetworks', { type: 'Weird' }), 'listNetworks', 431, 'Unable to execute API command listnetworks due to invalid value Weird for parameter type');
    });

    it('scopes networks of a domain and of an account', async () => {
      const domainNet = await newNetwork(p.id, 130, 31, { domainid: childDomain.id, subdomainaccess: false });
      const accountNet = await newNetwork(p.id, 131, 32, { acltype: 'Account', account: user.account.name, domainid: user.account.domainid });
      expect(accountNet).toMatchObject({ acltype: 'Account', account: user.account.name });
      const userSees = (await networks(user.client)).map((n: any) => n.id);
      expect(userSees).toContain(accountNet.id);
      expect(userSees).not.toContain(domainNet.id);
      const adminSees = (await networks(domainAdmin.client)).map((n: any) => n.id);
      expect(adminSees).toContain(domainNet.id);
      expect(adminSees).not.toContain(accountNet.id);
      // An admin naming an account (the UI's Add Instance wizard names the owner): that account's
      // networks and the domain networks it may use (upstream's account- and domain-level networks).
      const forUser = (await networks(world.admin, { account: user.account.name, domainid: world.rootDomainId, listall: true })).map((n: any) => n.id);
      expect(forUser).toEqual(expect.arrayContaining([accountNet.id, net.id]));
      expect(forUser).not.toContain(domainNet.id);
      const forDomainAdmin = (await networks(world.admin, { account: domainAdmin.account.name, domainid: childDomain.id })).map((n: any) => n.id);
      expect(forDomainAdmin).toContain(domainNet.id);
      expect(forDomainAdmin).not.toContain(accountNet.id);
      refused(await domainAdmin.client.call('listNetworks', { domainid: world.rootDomainId }), 'listNetworks', 531, /does not have permission/);
    });

    it('refuses malformed addressing, naming the parameter, and creates nothing', async () => {
      const count = async () => (await networks()).length;
      const before = await count();
      const beforeRanges = (await ranges()).length;
      const attempt = (extra: Params) => call('createNetwork', networkParams(p.id, 140, 40, extra));
      refused(await attempt({ startip: '10.40.0' }), 'createNetwork', 431, 'Invalid format for the startIp parameter');
      refused(await attempt({ endip: '10.40.0.300' }), 'createNetwork', 431, 'Invalid format for the endIp parameter');
      refused(await attempt({ gateway: 'gw' }), 'createNetwork', 431, 'Invalid gateway');
      refused(await attempt({ netmask: '255.0.255.0' }), 'createNetwork', 431, 'Invalid netmask');
      refused(await attempt({ gateway: '10.40.0.0' }), 'createNetwork', 431, 'Invalid gateway IP provided. Either the IP is broadcast or network IP.');
      refused(await attempt({ startip: '10.41.0.10' }), 'createNetwork', 431, "Please ensure that your start IP is in the same subnet as your IP range's gateway, as per the IP range's netmask.");
      refused(await attempt({ endip: '10.41.0.20' }), 'createNetwork', 431, "Please ensure that your end IP is in the same subnet as your IP range's gateway, as per the IP range's netmask.");
      refused(await attempt({ startip: '10.40.0.30' }), 'createNetwork', 431, /startip must not be greater than the endip/);
      refused(await attempt({ startip: '10.40.0.1' }), 'createNetwork', 431, 'The gateway ip should not be the part of the ip range being added.');
      refused(await attempt({ gateway: undefined as never, netmask: undefined as never }), 'createNetwork', 431, 'gateway and netmask should be defined when startIP/endIP are passed in');
      refused(await attempt({ vlan: 4096 }), 'createNetwork', 431, 'Invalid vlan 4096: the VLAN id has to be between 0 and 4095, or untagged');
      refused(await attempt({ vlan: 150, bypassvlanoverlapcheck: undefined as never }), 'createNetwork', 431, `The VLAN tag to use for new guest network, 150 is already being used for dynamic vlan allocation for the guest network in zone ${zone.name}`);
      refused(await attempt({ vlan: 120 }), 'createNetwork', 431, `Network with vlan 120 already exists or overlaps with other network vlans in zone ${zone.id}`);
      refused(await attempt({ acltype: 'Galaxy' }), 'createNetwork', 431, /Invalid acltype Galaxy/);
      // Overlapping the range of another network on the same VLAN tag (another physical network).
      const other = await newPhysical('100-199');
      refused(
        await call('createNetwork', networkParams(other.id, 120, 30, { startip: '10.30.0.15', endip: '10.30.0.40' })),
        'createNetwork',
        431,
        'The IP range with tag: vlan://120 already has IPs that overlap with the new range. Please specify a different start IP/end IP.',
      );
      refused(await call('createNetwork', { ...networkParams(p.id, 141, 41), networkofferingid: isolatedOffering.id }), 'createNetwork', 431, /DefaultIsolatedNetworkOfferingWithSourceNatService \(Isolated\) is not supported yet/);
      refused(await call('createNetwork', { ...networkParams(p.id, 141, 41), networkofferingid: sgOffering.id }), 'createNetwork', 431, /is not supported yet/);
      const { name: _name, ...noName } = networkParams(p.id, 141, 41);
      refused(await call('createNetwork', noName), 'createNetwork', 431, missing('createnetwork', 'name'));
      const ghost = '00000000-0000-4000-8000-000000000001';
      refused(await call('createNetwork', { ...networkParams(p.id, 141, 41), networkofferingid: ghost }), 'createNetwork', 431, noEntity('createnetwork', 'networkofferingid', ghost));
      // Users may not make shared networks (only root admins give VLANs).
      refused(await user.client.call('createNetwork', networkParams(p.id, 142, 42)), 'createNetwork', 431, 'Only ROOT admin is allowed to specify vlanId or bypass vlan overlap check');
      expect(await count()).toBe(before);
      expect((await ranges()).length).toBe(beforeRanges);
    });

    it('keeps a zone with physical networks from being deleted, naming them', async () => {
      refused(await call('deleteZone', { id: zone.id }), 'deleteZone', 536, new RegExp(`^The zone cannot be deleted because there are physical networks in this zone: .*${p.name}`));
      expect((await call('listZones', { id: zone.id })).body.listzonesresponse.count).toBe(1);
    });

    it('puts a shared network outside the physical network\'s VLAN ranges without any bypass', async () => {
      expect((await newNetwork(p.id, 250, 45, { bypassvlanoverlapcheck: undefined as never })).vlan).toBe('250');
    });

    it('creates an untagged network (upstream\'s vlan://untagged, broadcast domain Native), one per physical network', async () => {
      const untagged = await newNetwork(p.id, 'untagged' as never, 46, { bypassvlanoverlapcheck: undefined as never });
      expect(untagged).toMatchObject({ broadcastdomaintype: 'Native', broadcasturi: 'vlan://untagged', vlan: 'untagged' });
      const range = ok(await call('createVlanIpRange', { networkid: untagged.id, vlan: 'vlan://untagged', startip: '10.46.0.30', endip: '10.46.0.40' }), 'createVlanIpRange').vlan;
      expect(range).toMatchObject({ vlan: 'vlan://untagged', startip: '10.46.0.30' });
      expect((await ranges({ vlan: 'untagged' })).map((r: any) => r.networkid)).toEqual([untagged.id, untagged.id]);
      refused(
        await call('createNetwork', networkParams(p.id, 'VLAN://Untagged' as never, 47)),
        'createNetwork',
        431,
        `Network with vlan untagged already exists or overlaps with other network vlans in zone ${zone.id}`,
      );
      refused(await call('createNetwork', networkParams(p.id, 'tagged' as never, 47)), 'createNetwork', 431, 'Invalid vlan tagged: the VLAN id has to be between 0 and 4095, or untagged');
      refused(await call('createVlanIpRange', { networkid: untagged.id, vlan: 120, startip: '10.46.0.50' }), 'createVlanIpRange', 431, `The vlan 120 doesn't match the vlan of network ${untagged.name}`);
      ok(await call('deleteVlanIpRange', { id: range.id }), 'deleteVlanIpRange');
      await done('deleteNetwork', { id: untagged.id });
    });

    it('updates the name and display text (async, NETWORK.UPDATE)', async () => {
      const result = await done('updateNetwork', { id: net.id, name: 'renamed', displaytext: 'new text' });
      expect(result.network).toMatchObject({ id: net.id, name: 'renamed', displaytext: 'new text', vlan: '120' });
      expect((await networks(world.admin, { id: net.id }))[0].name).toBe('renamed');
      expect((await eventsOf('NETWORK.UPDATE')).some((e: any) => e.resourceid === net.id && e.state === 'Completed')).toBe(true);
      refused(await user.client.call('updateNetwork', { id: net.id, name: 'mine' }), 'updateNetwork', 531, /does not have permission/);
    });

    it('adds more IP ranges and refuses overlaps, other subnets and malformed addresses', async () => {
      const added = ok(await call('createVlanIpRange', { networkid: net.id, startip: '10.30.0.50', endip: '10.30.0.60' }), 'createVlanIpRange').vlan;
      expect(added).toMatchObject({ networkid: net.id, startip: '10.30.0.50', endip: '10.30.0.60', gateway: '10.30.0.1', netmask: '255.255.255.0', vlan: 'vlan://120' });
      expect((await ranges({ networkid: net.id })).map((r: any) => r.startip).sort()).toEqual(['10.30.0.10', '10.30.0.50']);
      expect((await eventsOf('VLAN.IP.RANGE.CREATE')).some((e: any) => e.resourceid === added.id)).toBe(true);
      const before = (await ranges()).length;
      const attempt = (extra: Params) => call('createVlanIpRange', { networkid: net.id, ...extra });
      refused(
        await attempt({ startip: '10.30.0.55', endip: '10.30.0.70' }),
        'createVlanIpRange',
        431,
        'The IP range with tag: vlan://120 already has IPs that overlap with the new range. Please specify a different start IP/end IP.',
      );
      refused(await attempt({ startip: '10.30.0.5', endip: '10.30.0.10' }), 'createVlanIpRange', 431, /already has IPs that overlap/);
      refused(
        await attempt({ startip: '10.30.0.80', endip: '10.30.0.90', gateway: '10.30.0.254' }),
        'createVlanIpRange',
        431,
        'The IP range has already been added with gateway 10.30.0.1 ,and netmask 255.255.255.0, Please specify the gateway/netmask if you want to extend ip range',
      );
      refused(await attempt({ startip: '10.30.0.300' }), 'createVlanIpRange', 431, 'Invalid format for the startIp parameter');
      refused(await attempt({ startip: '10.30.0.80', endip: '10.30.0.70' }), 'createVlanIpRange', 431, /startip must not be greater than the endip/);
      refused(await attempt({ startip: '10.30.1.80', endip: '10.30.1.90' }), 'createVlanIpRange', 431, /start IP is in the same subnet/);
      refused(await attempt({ startip: '10.30.0.80', netmask: '255.255.0.255' }), 'createVlanIpRange', 431, 'Invalid netmask');
      refused(await attempt({ startip: '10.30.0.80', vlan: 121 }), 'createVlanIpRange', 431, `The vlan 121 doesn't match the vlan of network renamed`);
      refused(await call('createVlanIpRange', { startip: '10.30.0.80' }), 'createVlanIpRange', 431, /networkid is required/);
      expect((await ranges()).length).toBe(before);
    });

    it('refuses to delete a range or network with allocated addresses (536), then deletes them', async () => {
      const extra = (await ranges({ networkid: net.id })).find((r: any) => r.startip === '10.30.0.50');
      const taken = await allocateAddress(net.id, { preferred: '10.30.0.55' });
      expect(taken.ipaddress).toBe('10.30.0.55');
      refused(await call('deleteVlanIpRange', { id: extra.id }), 'deleteVlanIpRange', 536, "The IP range 10.30.0.50-10.30.0.60 can't be deleted because it has 1 allocated IP address");
      refused(await call('deleteNetwork', { id: net.id }), 'deleteNetwork', 536, 'Unable to delete network renamed: it has 1 allocated IP address in use');
      expect((await ranges({ networkid: net.id })).length).toBe(2);
      expect(await releaseAddress(net.id, '10.30.0.55')).toBe(true);
      expect(await releaseAddress(net.id, '10.30.0.55')).toBe(false);
      expect(ok(await call('deleteVlanIpRange', { id: extra.id }), 'deleteVlanIpRange')).toEqual({ success: true });
      expect((await ranges({ networkid: net.id })).length).toBe(1);
      expect((await eventsOf('VLAN.IP.RANGE.DELETE')).some((e: any) => e.resourceid === extra.id)).toBe(true);
      const ghost = '00000000-0000-4000-8000-000000000002';
      refused(await call('deleteVlanIpRange', { id: ghost }), 'deleteVlanIpRange', 431, noEntity('deletevlaniprange', 'id', ghost));
      refused(await user.client.call('deleteNetwork', { id: net.id }), 'deleteNetwork', 531, /does not have permission/);
      expect(await done('deleteNetwork', { id: net.id })).toEqual({ success: true });
      expect(await networks(world.admin, { id: net.id })).toEqual([]);
      expect(await ranges({ networkid: net.id })).toEqual([]);
      expect((await eventsOf('NETWORK.DELETE')).some((e: any) => e.resourceid === net.id && e.state === 'Completed')).toBe(true);
      // Its VLAN is free again.
      const again = await newNetwork(p.id, 120, 30);
      expect(again.vlan).toBe('120');
    });

    it('hands out no address from a deleted network', async () => {
      const n = await newNetwork(p.id, 160, 60);
      expect(await done('deleteNetwork', { id: n.id })).toEqual({ success: true });
      await expect(allocateAddress(n.id)).rejects.toThrow(`Unable to find network by id ${n.id}`);
    });
  });
});
