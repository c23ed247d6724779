// Compute and disk offerings through /client/api: createServiceOffering, listServiceOfferings,
// updateServiceOffering, deleteServiceOffering and the disk offering commands, with upstream's
// fields, customized offerings, domain and zone scoping, RBAC and every refusal.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedZone } from '../support/zones.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { makeAccount, makeDomain, missing, noEntity, ok, refused, startWorld, unique, type Member, type World } from './identity-fixtures.ts';

const DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DENIED = 'The given command does not exist or it is not available for user';

describe('offerings', () => {
  let world: World;
  let parent: any;
  let child: any;
  let sibling: any;
  let domainAdmin: Member;
  let parentUser: Member;
  let childUser: Member;
  let siblingUser: Member;
  let zone: { id: string; name: string };

  const services = async (client = world.admin, params: Record<string, string | number | boolean> = {}) =>
    ok(await client.call('listServiceOfferings', params), 'listServiceOfferings');
  const disks = async (client = world.admin, params: Record<string, string | number | boolean> = {}) =>
    ok(await client.call('listDiskOfferings', params), 'listDiskOfferings');
  const serviceIds = async (client = world.admin, params: Record<string, string | number | boolean> = {}) =>
    ((await services(client, params)).serviceoffering ?? []).map((o: any) => o.id);
  const diskIds = async (client = world.admin, params: Record<string, string | number | boolean> = {}) =>
    ((await disks(client, params)).diskoffering ?? []).map((o: any) => o.id);
  const createService = async (params: Record<string, string | number | boolean>, client = world.admin) =>
    ok(await client.call('createServiceOffering', { cpunumber: 1, cpuspeed: 500, memory: 512, ...params }), 'createServiceOffering').serviceoffering;
  const createDisk = async (params: Record<string, string | number | boolean>, client = world.admin) =>
    ok(await client.call('createDiskOffering', { disksize: 5, ...params }), 'createDiskOffering').diskoffering;
  const eventsOf = async (type: string) => (ok(await world.admin.call('listEvents', { type, listall: true }), 'listEvents').event ?? []);

  beforeAll(async () => {
    world = await startWorld();
    useRuntimeEndpoints(world.runtime);
    parent = await makeDomain(world.admin, unique('parent'));
    child = await makeDomain(world.admin, unique('child'), parent.id);
    sibling = await makeDomain(world.admin, unique('sibling'));
    [domainAdmin, parentUser, childUser, siblingUser] = await Promise.all([
      makeAccount(world.admin, { accounttype: 2, domainid: parent.id }),
      makeAccount(world.admin, { accounttype: 0, domainid: parent.id }),
      makeAccount(world.admin, { accounttype: 0, domainid: child.id }),
      makeAccount(world.admin, { accounttype: 0, domainid: sibling.id }),
    ]);
    zone = await seedZone(unique('zone'));
  });
  afterAll(async () => {
    await world?.runtime.stop();
  });

  describe('service offerings', () => {
    it('creates a fixed offering with upstream’s ServiceOfferingResponse and records SERVICE.OFFERING.CREATE', async () => {
      const name = unique('small');
      const answer = await world.admin.call('createServiceOffering', {
        name,
        displaytext: 'Small, 1 vCPU',
        cpunumber: 1,
        cpuspeed: 1000,
        memory: 512,
        offerha: true,
        limitcpuuse: true,
        hosttags: 'ssd-host',
        tags: ' fast , ,ssd',
      });
      expect(Object.keys(answer.body)).toEqual(['createserviceofferingresponse']);
      const offering = ok(answer, 'createServiceOffering').serviceoffering;
      expect(offering).toEqual({
        id: expect.stringMatching(UUID),
        name,
        displaytext: 'Small, 1 vCPU',
        cpunumber: 1,
        cpuspeed: 1000,
        memory: 512,
        created: expect.stringMatching(DATE),
        storagetype: 'shared',
        provisioningtype: 'thin',
        offerha: true,
        limitcpuuse: true,
        isvolatile: false,
        storagetags: 'fast,ssd',
        hosttags: 'ssd-host',
        issystem: false,
        defaultuse: false,
        iscustomized: false,
        cacheMode: 'none',
        dynamicscalingenabled: true,
        diskofferingstrictness: false,
        encryptroot: false,
        state: 'Active',
        purgeresources: false,
        hasannotations: false,
      });
      expect((await services(world.admin, { id: offering.id })).serviceoffering).toEqual([offering]);
      const events = await eventsOf('SERVICE.OFFERING.CREATE');
      expect(events.some((e: any) => e.resourceid === offering.id && e.resourcetype === 'ServiceOffering')).toBe(true);
    });

    it('defaults displaytext to the name, allows duplicate names, and answers XML too', async () => {
      const name = unique('dup');
      const a = await createService({ name });
      const b = await createService({ name });
      expect(a.displaytext).toBe(name);
      expect(a.id).not.toBe(b.id);
      expect((await services(world.admin, { name })).count).toBe(2);
      const xml = await world.admin.call('listServiceOfferings', { id: a.id }, { response: 'xml' });
      expect(xml.status).toBe(200);
    });

    it('creates customized offerings: unconstrained, and with min/max ranges in serviceofferingdetails', async () => {
      const free = await createService({ name: unique('custom'), cpunumber: '', cpuspeed: '', memory: '' });
      expect(free.iscustomized).toBe(true);
      expect(free).not.toHaveProperty('cpunumber');
      expect(free).not.toHaveProperty('memory');
      expect(free).not.toHaveProperty('serviceofferingdetails');

      const ranged = ok(
        await world.admin.call('createServiceOffering', {
          name: unique('ranged'),
          customized: true,
          cpuspeed: 2000,
          mincpunumber: 1,
          maxcpunumber: 4,
          minmemory: 256,
          maxmemory: 4096,
        }),
        'createServiceOffering',
      ).serviceoffering;
      expect(ranged).toMatchObject({
        iscustomized: true,
        cpuspeed: 2000,
        serviceofferingdetails: { mincpunumber: '1', maxcpunumber: '4', minmemory: '256', maxmemory: '4096' },
      });
      expect(ranged).not.toHaveProperty('cpunumber');

      // Listing by what an offering supports: fixed ones match exactly, ranges by containment.
      const cpu2 = await serviceIds(world.admin, { cpunumber: 2 });
      expect(cpu2).toContain(ranged.id);
      expect(cpu2).toContain(free.id);
      expect(await serviceIds(world.admin, { cpunumber: 8 })).not.toContain(ranged.id);
      expect(await serviceIds(world.admin, { memory: 8192 })).not.toContain(ranged.id);
      expect(await serviceIds(world.admin, { memory: 1024 })).toContain(ranged.id);
    });

    it('refuses every invalid createServiceOffering and changes nothing', async () => {
      const before = (await services()).count;
      const name = unique('bad');
      const api = 'createServiceOffering';
      const call = (params: Record<string, string | number | boolean>) => world.admin.call(api, { name, ...params });
      refused(await world.admin.call(api, { cpunumber: 1, cpuspeed: 1, memory: 64 }), api, 431, missing('createserviceoffering', 'name'), 4350);
      refused(await call({ customized: true, cpunumber: 2 }), api, 431, 'For creating a custom compute offering cpu and memory all should be null');
      refused(await call({ cpunumber: 2 }), api, 431, 'For creating a custom compute offering cpu and memory all should be null');
      refused(
        await call({ mincpunumber: 1, maxcpunumber: 2 }),
        api,
        431,
        'For creating a custom compute offering min/max cpu and min/max memory/cpu speed should all be null or all specified',
      );
      const ranges = { cpuspeed: 100, mincpunumber: 1, maxcpunumber: 2, minmemory: 64, maxmemory: 128 };
      refused(await call({ ...ranges, mincpunumber: 0 }), api, 431, `Failed to create service offering ${name}: specify the minimum or minimum cpu number value between 1 and 2147483647`);
      refused(await call({ ...ranges, minmemory: 16 }), api, 431, `Failed to create service offering ${name}: specify the memory value between 32 and 2147483647 MB`);
      refused(await call({ ...ranges, mincpunumber: 4 }), api, 431, `Failed to create service offering ${name}: the minimum cpu number must not exceed the maximum cpu number`);
      refused(await call({ ...ranges, minmemory: 512 }), api, 431, `Failed to create service offering ${name}: the minimum memory must not exceed the maximum memory`);
      refused(await call({ cpunumber: 0, cpuspeed: 1, memory: 64 }), api, 431, `Failed to create service offering ${name}: specify the cpu number value between 1 and 2147483647`);
      refused(await call({ cpunumber: 1, memory: 64 }), api, 431, `Failed to create service offering ${name}: specify the cpu speed value between 0 and 2147483647`);
      refused(await call({ cpunumber: 1, cpuspeed: 1, memory: 31 }), api, 431, `Failed to create service offering ${name}: specify the memory value between 32 and 2147483647 MB`);
      refused(await call({ cpunumber: 'two', cpuspeed: 1, memory: 64 }), api, 431, /^Unable to execute API command createserviceoffering due to invalid value\. Invalid parameter cpunumber value=two/);
      const fixed = { cpunumber: 1, cpuspeed: 1, memory: 64 };
      refused(await call({ ...fixed, storagetype: 'nfs' }), api, 431, "Invalid storage type nfs specified, valid types are: 'local' and 'shared'");
      refused(await call({ ...fixed, storagetype: 'local', offerha: true }), api, 431, 'HA offering with local storage is not supported. ');
      const ghost = randomUUID();
      refused(await call({ ...fixed, domainid: ghost }), api, 431, noEntity('createserviceoffering', 'domainid', ghost));
      refused(await call({ ...fixed, zoneid: ghost }), api, 431, noEntity('createserviceoffering', 'zoneid', ghost));
      refused(await call({ ...fixed, domainid: 'not-a-uuid' }), api, 431, /domainid/);
      refused(await call({ ...fixed, rootdisksize: 0 }), api, 431, 'The Root disk size is of 0 GB but it must be greater than 0.');
      refused(await call({ ...fixed, rootdisksize: 5000 }), api, 431, 'The maximum size for a disk is 2000 GB.');
      refused(await call({ ...fixed, cachemode: 'fast' }), api, 431, /^Invalid cache mode \(fast\)/);
      expect((await services()).count).toBe(before);
      expect((await services(world.admin, { name })).count ?? 0).toBe(0);
    });

    it('scopes offerings to domains and their subdomains, and zones', async () => {
      const pub = await createService({ name: unique('public') });
      const scoped = await createService({ name: unique('parent-only'), domainid: parent.id, zoneid: zone.id });
      const both = await createService({ name: unique('two-domains'), domainid: `${child.id},${parent.id},${sibling.id}` });
      expect(scoped).toMatchObject({ domainid: parent.id, domain: parent.name, zoneid: zone.id, zone: zone.name });
      // A subdomain of a listed domain adds nothing (upstream's filterChildSubDomains).
      expect(both.domainid.split(',').sort()).toEqual([parent.id, sibling.id].sort());

      for (const member of [parentUser, childUser, domainAdmin]) {
        const ids = await serviceIds(member.client);
        expect(ids).toEqual(expect.arrayContaining([pub.id, scoped.id, both.id]));
      }
      const siblingIds = await serviceIds(siblingUser.client);
      expect(siblingIds).toContain(pub.id);
      expect(siblingIds).toContain(both.id);
      expect(siblingIds).not.toContain(scoped.id);
      // An id outside the caller's reach is simply not listed.
      expect((await services(siblingUser.client, { id: scoped.id })).count ?? 0).toBe(0);

      expect(await serviceIds(world.admin, { domainid: parent.id })).toEqual(expect.arrayContaining([scoped.id, both.id]));
      expect(await serviceIds(world.admin, { domainid: parent.id })).not.toContain(pub.id);
      // With an account (the UI's Add Instance wizard names the owner): what that account may use, the
      // public ones included (upstream's finalizeOwner, then the owner's domains); a root admin account all.
      const forSibling = await serviceIds(world.admin, { account: siblingUser.account.name, domainid: sibling.id, listall: true });
      expect(forSibling).toEqual(expect.arrayContaining([pub.id, both.id]));
      expect(forSibling).not.toContain(scoped.id);
      expect(await serviceIds(world.admin, { account: world.runtime.credentials.username, domainid: world.rootDomainId })).toEqual(expect.arrayContaining([pub.id, scoped.id, both.id]));
      expect(await serviceIds(childUser.client, { account: childUser.account.name, domainid: child.id })).toEqual(expect.arrayContaining([pub.id, scoped.id, both.id]));
      expect(await diskIds(world.admin, { account: siblingUser.account.name, domainid: sibling.id })).toEqual(await diskIds(siblingUser.client));
      refused(await childUser.client.call('listServiceOfferings', { account: parentUser.account.name, domainid: parent.id }), 'listServiceOfferings', 531, /permission denied$/);
      refused(await world.admin.call('listServiceOfferings', { account: 'nobody-here', domainid: sibling.id }), 'listServiceOfferings', 431, `Unable to find account nobody-here in domain ${sibling.id}`);
      const zoned = await serviceIds(world.admin, { zoneid: zone.id });
      expect(zoned).toContain(scoped.id);
      expect(zoned).toContain(pub.id);
      expect(await serviceIds(world.admin, { zoneid: randomUUID() })).not.toContain(scoped.id);

      refused(await siblingUser.client.call('listServiceOfferings', { domainid: parent.id }), 'listServiceOfferings', 531, /does not have permission/);
      refused(
        await parentUser.client.call('listServiceOfferings', { isrecursive: true }),
        'listServiceOfferings',
        431,
        'Only ROOT admins and Domain admins can list service offerings with isrecursive=true',
      );
      refused(await parentUser.client.call('listServiceOfferings', { issystem: true }), 'listServiceOfferings', 431, "Only ROOT admins can access system's offering");
      expect((await services(world.admin, { issystem: true })).count ?? 0).toBe(0);
    });

    it('pages, filters by keyword and orders by sortkey', async () => {
      const tag = unique('page');
      const made = [];
      for (let i = 0; i < 5; i++) made.push(await createService({ name: `${tag}-${i}` }));
      const all = await services(world.admin, { keyword: tag });
      expect(all.count).toBe(5);
      expect(all.serviceoffering.map((o: any) => o.id)).toEqual(made.map((o) => o.id));
      const second = await services(world.admin, { keyword: tag, page: 2, pagesize: 2 });
      expect(second.count).toBe(5);
      expect(second.serviceoffering.map((o: any) => o.id)).toEqual([made[2].id, made[3].id]);
      ok(await world.admin.call('updateServiceOffering', { id: made[4].id, sortkey: -1 }), 'updateServiceOffering');
      expect((await services(world.admin, { keyword: tag })).serviceoffering[0].id).toBe(made[4].id);
      expect((await services(world.admin, { keyword: `${tag}-3` })).serviceoffering.map((o: any) => o.id)).toEqual([made[3].id]);
    });

    it('updates name, display text, tags, domains and zones, and records SERVICE.OFFERING.EDIT', async () => {
      const offering = await createService({ name: unique('upd'), domainid: sibling.id });
      const renamed = unique('renamed');
      const updated = ok(
        await world.admin.call('updateServiceOffering', {
          id: offering.id,
          name: renamed,
          displaytext: 'new text',
          hosttags: 'gpu',
          storagetags: 'a,b',
          domainid: parent.id,
          zoneid: zone.id,
        }),
        'updateServiceOffering',
      ).serviceoffering;
      expect(updated).toMatchObject({ id: offering.id, name: renamed, displaytext: 'new text', hosttags: 'gpu', storagetags: 'a,b', domainid: parent.id, zoneid: zone.id });
      expect(await serviceIds(parentUser.client)).toContain(offering.id);
      expect(await serviceIds(siblingUser.client)).not.toContain(offering.id);
      const back = ok(await world.admin.call('updateServiceOffering', { id: offering.id, domainid: 'public', zoneid: 'all' }), 'updateServiceOffering').serviceoffering;
      expect(back).not.toHaveProperty('domainid');
      expect(back).not.toHaveProperty('zoneid');
      expect(await serviceIds(siblingUser.client)).toContain(offering.id);
      expect((await eventsOf('SERVICE.OFFERING.EDIT')).some((e: any) => e.resourceid === offering.id)).toBe(true);

      const api = 'updateServiceOffering';
      const ghost = randomUUID();
      refused(await world.admin.call(api, { id: ghost }), api, 431, noEntity('updateserviceoffering', 'id', ghost));
      refused(await world.admin.call(api, {}), api, 431, missing('updateserviceoffering', 'id'));
      refused(await world.admin.call(api, { id: offering.id, domainid: ghost }), api, 431, 'Failed to create service offering because invalid domain has been specified.');
      refused(await world.admin.call(api, { id: offering.id, zoneid: `${zone.id},${ghost}` }), api, 431, 'Failed to create service offering because invalid zone has been specified.');
      refused(await world.admin.call(api, { id: offering.id, state: 'Gone', name: 'x' }), api, 431, 'Invalid state value: Gone');
      expect((await services(world.admin, { id: offering.id })).serviceoffering[0]).toEqual(back);
    });

    it('deletes softly: the offering turns Inactive, is no longer listed, and records SERVICE.OFFERING.DELETE', async () => {
      const offering = await createService({ name: unique('del') });
      const answer = await world.admin.call('deleteServiceOffering', { id: offering.id });
      expect(answer.body).toEqual({ deleteserviceofferingresponse: { success: true } });
      expect(await serviceIds()).not.toContain(offering.id);
      expect((await services(world.admin, { id: offering.id })).count ?? 0).toBe(0);
      const inactive = (await services(world.admin, { id: offering.id, state: 'all' })).serviceoffering;
      expect(inactive).toEqual([{ ...offering, state: 'Inactive' }]);
      expect((await services(world.admin, { state: 'inactive' })).serviceoffering.map((o: any) => o.id)).toContain(offering.id);
      expect((await eventsOf('SERVICE.OFFERING.DELETE')).some((e: any) => e.resourceid === offering.id)).toBe(true);
      refused(await world.admin.call('listServiceOfferings', { state: 'gone' }), 'listServiceOfferings', 431, 'Invalid state value: gone');
      const ghost = randomUUID();
      refused(await world.admin.call('deleteServiceOffering', { id: ghost }), 'deleteServiceOffering', 431, noEntity('deleteserviceoffering', 'id', ghost));
    });

    it('lets domain admins manage offerings of their subtree only, and users none', async () => {
      const api = 'createServiceOffering';
      const fixed = { name: unique('da'), cpunumber: 1, cpuspeed: 100, memory: 128 };
      const mine = ok(await domainAdmin.client.call(api, { ...fixed, domainid: child.id }), api).serviceoffering;
      expect(mine.domainid).toBe(child.id);
      const before = (await services()).count;
      refused(await domainAdmin.client.call(api, fixed), api, 431, /^Unable to create public service offering by admin: User .* because it is domain-admin$/);
      refused(await domainAdmin.client.call(api, { ...fixed, domainid: sibling.id }), api, 431, new RegExp(`^Unable to create service offering by another domain-admin: .* for domain: ${sibling.id}$`));
      refused(await domainAdmin.client.call(api, { ...fixed, domainid: child.id, hosttags: 'x' }), api, 431, /is unable to create service offerings with storage tags or host tags\.$/);
      refused(await parentUser.client.call(api, fixed), api, 432, DENIED);
      expect((await services()).count).toBe(before);

      // Domain admins see their subdomains' offerings with isrecursive.
      expect(await serviceIds(domainAdmin.client, { isrecursive: true })).toContain(mine.id);

      const pub = await createService({ name: unique('pub') });
      const foreign = await createService({ name: unique('foreign'), domainid: sibling.id });
      refused(await domainAdmin.client.call('updateServiceOffering', { id: pub.id, name: 'x' }), 'updateServiceOffering', 431, /^Unable to update public service offering: /);
      refused(await domainAdmin.client.call('updateServiceOffering', { id: mine.id, domainid: 'public' }), 'updateServiceOffering', 431, /to a public offering by user: /);
      refused(await domainAdmin.client.call('updateServiceOffering', { id: mine.id, zoneid: zone.id }), 'updateServiceOffering', 431, /^Unable to update zone\(s\) for service offering: /);
      refused(await domainAdmin.client.call('updateServiceOffering', { id: mine.id, domainid: sibling.id }), 'updateServiceOffering', 431, /which is not a child domain$/);
      refused(await domainAdmin.client.call('deleteServiceOffering', { id: pub.id }), 'deleteServiceOffering', 431, /^Unable to delete public service offering: Service offering .* because it is domain-admin$/);
      refused(await domainAdmin.client.call('deleteServiceOffering', { id: foreign.id }), 'deleteServiceOffering', 431, /which are not child domain for domain-admin/);
      refused(await parentUser.client.call('deleteServiceOffering', { id: pub.id }), 'deleteServiceOffering', 432, DENIED);
      refused(await parentUser.client.call('updateServiceOffering', { id: pub.id, name: 'x' }), 'updateServiceOffering', 432, DENIED);
      expect((await services(world.admin, { id: pub.id })).serviceoffering[0]).toEqual(pub);

      const renamed = ok(await domainAdmin.client.call('updateServiceOffering', { id: mine.id, name: 'da-renamed', domainid: parent.id }), 'updateServiceOffering').serviceoffering;
      expect(renamed).toMatchObject({ name: 'da-renamed', domainid: parent.id });
      expect(ok(await domainAdmin.client.call('deleteServiceOffering', { id: mine.id }), 'deleteServiceOffering')).toEqual({ success: true });
    });
  });

  describe('disk offerings', () => {
    it('creates fixed and customized disk offerings with upstream’s DiskOfferingResponse and records DISK.OFFERING.CREATE', async () => {
      const name = unique('disk');
      const answer = await world.admin.call('createDiskOffering', { name, displaytext: 'Five', disksize: 5, tags: 'ssd, fast', zoneid: zone.id });
      expect(Object.keys(answer.body)).toEqual(['creatediskofferingresponse']);
      const disk = ok(answer, 'createDiskOffering').diskoffering;
      expect(disk).toEqual({
        id: expect.stringMatching(UUID),
        zoneid: zone.id,
        zone: zone.name,
        name,
        displaytext: 'Five',
        disksize: 5,
        created: expect.stringMatching(DATE),
        iscustomized: false,
        tags: 'ssd,fast',
        storagetype: 'shared',
        provisioningtype: 'thin',
        cacheMode: 'none',
        displayoffering: true,
        disksizestrictness: false,
        encrypt: false,
        state: 'Active',
        hasannotations: false,
      });
      const custom = ok(await world.admin.call('createDiskOffering', { name: unique('custom'), customized: true, storagetype: 'local' }), 'createDiskOffering').diskoffering;
      expect(custom).toMatchObject({ disksize: 0, iscustomized: true, storagetype: 'local', displaytext: custom.name });
      expect((await disks(world.admin, { id: disk.id })).diskoffering).toEqual([disk]);
      expect((await eventsOf('DISK.OFFERING.CREATE')).some((e: any) => e.resourceid === disk.id && e.resourcetype === 'DiskOffering')).toBe(true);
      // A service offering may point at a disk offering.
      const service = await createService({ name: unique('with-disk'), diskofferingid: disk.id });
      expect(service).toMatchObject({ diskofferingid: disk.id, diskofferingname: disk.name, diskofferingdisplaytext: 'Five' });
    });

    it('refuses every invalid createDiskOffering and changes nothing', async () => {
      const before = (await disks()).count;
      const api = 'createDiskOffering';
      const name = unique('bad');
      refused(await world.admin.call(api, { disksize: 1 }), api, 431, missing('creatediskoffering', 'name'));
      refused(await world.admin.call(api, { name }), api, 431, 'Disksize is required for a non-customized disk offering');
      refused(await world.admin.call(api, { name, customized: true, disksize: 2 }), api, 431, 'Disksize is not allowed for a customized disk offering');
      refused(await world.admin.call(api, { name, disksize: 0 }), api, 431, 'Please specify a disk size of at least 1 GB.');
      refused(await world.admin.call(api, { name, disksize: -3 }), api, 431, 'Please specify a disk size of at least 1 GB.');
      refused(await world.admin.call(api, { name, disksize: 2001 }), api, 431, 'The maximum size for a disk is 2000 GB.');
      refused(await world.admin.call(api, { name, disksize: 'big' }), api, 431, /Invalid parameter disksize value=big/);
      refused(await world.admin.call(api, { name, disksize: 1, storagetype: 'nfs' }), api, 431, "Invalid storage type nfs specified, valid types are: 'local' and 'shared'");
      const ghost = randomUUID();
      refused(await world.admin.call(api, { name, disksize: 1, domainid: ghost }), api, 431, noEntity('creatediskoffering', 'domainid', ghost));
      refused(await world.admin.call(api, { name, disksize: 1, zoneid: ghost }), api, 431, noEntity('creatediskoffering', 'zoneid', ghost));
      refused(await parentUser.client.call(api, { name, disksize: 1 }), api, 432, DENIED);
      refused(await domainAdmin.client.call(api, { name, disksize: 1 }), api, 431, /^Unable to create public disk offering by admin: /);
      refused(await domainAdmin.client.call(api, { name, disksize: 1, domainid: child.id, tags: 'x' }), api, 431, /is unable to create disk offerings with storage tags\.$/);
      refused(await domainAdmin.client.call(api, { name, disksize: 1, domainid: sibling.id }), api, 431, /^Unable to create disk offering by another domain-admin: /);
      expect((await disks()).count).toBe(before);
    });

    it('lists by scope, hides offerings not for display from non-admins, updates and deletes softly', async () => {
      const scoped = await createDisk({ name: unique('scoped'), domainid: parent.id });
      const hidden = await createDisk({ name: unique('hidden'), displayoffering: false });
      const mine = await createDisk({ name: unique('da-disk'), domainid: child.id }, domainAdmin.client);
      expect(await diskIds(childUser.client)).toEqual(expect.arrayContaining([scoped.id, mine.id]));
      expect(await diskIds(siblingUser.client)).not.toContain(scoped.id);
      expect(await diskIds(parentUser.client)).not.toContain(hidden.id);
      expect(await diskIds(world.admin)).toContain(hidden.id);
      refused(await parentUser.client.call('listDiskOfferings', { isrecursive: true }), 'listDiskOfferings', 431, 'Only ROOT admins and Domain admins can list disk offerings with isrecursive=true');

      const updated = ok(
        await world.admin.call('updateDiskOffering', { id: scoped.id, name: 'renamed-disk', displaytext: 'x', tags: 'gold', domainid: 'public', displayoffering: true }),
        'updateDiskOffering',
      ).diskoffering;
      expect(updated).toMatchObject({ name: 'renamed-disk', displaytext: 'x', tags: 'gold' });
      expect(updated).not.toHaveProperty('domainid');
      expect(await diskIds(siblingUser.client)).toContain(scoped.id);
      expect((await eventsOf('DISK.OFFERING.EDIT')).some((e: any) => e.resourceid === scoped.id)).toBe(true);
      refused(await domainAdmin.client.call('updateDiskOffering', { id: scoped.id, name: 'x' }), 'updateDiskOffering', 431, /^Unable to update public disk offering: /);
      refused(await world.admin.call('updateDiskOffering', { id: scoped.id, domainid: 'nope' }), 'updateDiskOffering', 431, 'Failed to create disk offering because invalid domain has been specified.');

      refused(await domainAdmin.client.call('deleteDiskOffering', { id: scoped.id }), 'deleteDiskOffering', 431, /^Unable to delete public disk offering: /);
      refused(await parentUser.client.call('deleteDiskOffering', { id: scoped.id }), 'deleteDiskOffering', 432, DENIED);
      expect(await diskIds()).toContain(scoped.id);
      expect(ok(await world.admin.call('deleteDiskOffering', { id: scoped.id }), 'deleteDiskOffering')).toEqual({ success: true });
      expect(ok(await domainAdmin.client.call('deleteDiskOffering', { id: mine.id }), 'deleteDiskOffering')).toEqual({ success: true });
      expect(await diskIds()).not.toContain(scoped.id);
      expect((await disks(world.admin, { id: scoped.id, state: 'all' })).diskoffering[0].state).toBe('Inactive');
      expect((await eventsOf('DISK.OFFERING.DELETE')).some((e: any) => e.resourceid === scoped.id)).toBe(true);
      const ghost = randomUUID();
      refused(await world.admin.call('deleteDiskOffering', { id: ghost }), 'deleteDiskOffering', 431, noEntity('deletediskoffering', 'id', ghost));
    });
  });

  it('lists the offering commands in listApis by role', async () => {
    const names = async (client: any) => (ok(await client.call('listApis'), 'listApis').api ?? []).map((api: any) => api.name);
    const userApis = await names(parentUser.client);
    expect(userApis).toEqual(expect.arrayContaining(['listServiceOfferings', 'listDiskOfferings']));
    expect(userApis).not.toContain('createServiceOffering');
    const adminApis = await names(domainAdmin.client);
    expect(adminApis).toEqual(expect.arrayContaining(['createServiceOffering', 'updateServiceOffering', 'deleteServiceOffering', 'createDiskOffering', 'updateDiskOffering', 'deleteDiskOffering']));
  });
});
