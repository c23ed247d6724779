// Resource limits and counts through /client/api: listResourceLimits (defaults from max.account.* /
// max.domain.*, filters, scoping), updateResourceLimit (numbers and names, GiB for storage, every
// refusal), enforcement at allocation (templates, ISOs, account networks: 532 with upstream's text,
// account and domain limits, never over-counted under concurrency) and updateResourceCount
// (recalculated from the records that exist).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OS_TYPES } from '../../shared/catalogue/os-types.ts';
import { findUserByApiKey, getDomain, type Domain } from '../../shared/db/identity.ts';
import { setResourceCount, storedCounts } from '../../shared/db/limits.ts';
import { markTemplateDownloaded } from '../../shared/db/templates.ts';
import type { Zone } from '../../shared/db/infrastructure.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { seedZone } from '../support/zones.ts';
import { missing, noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';
import { patience } from '../support/wait.ts';

const ubuntu = OS_TYPES.find((type) => type.description === 'Ubuntu 22.04 LTS')!;
const GiB = 1024 ** 3;
const DENIED = 'The given command does not exist or it is not available for user';
const NAMES = ['user_vm', 'public_ip', 'volume', 'snapshot', 'template', 'project', 'network', 'vpc', 'cpu', 'memory', 'primary_storage', 'secondary_storage'];
const ACCOUNT_DEFAULTS = [20, 20, 20, 20, 20, 10, 20, 20, 40, 40960, 200, 400];
const DOMAIN_DEFAULTS = [40, 40, 40, 40, 40, 50, 40, 50, 80, 81920, 400, 800];

let world: World;
let admin: ApiClient;
let root: Domain;
let zone: Zone;
let sub: Domain;
let alice: Member; // a user in ROOT
let carol: Member; // a user in `sub`
let dave: Member; // another user in `sub`
let subAdmin: Member; // domain admin of `sub`

const limitsOf = async (client: ApiClient, params: Record<string, string | number> = {}) =>
  (ok(await client.call('listResourceLimits', params), 'listResourceLimits').resourcelimit ?? []) as any[];
const maxOf = async (client: ApiClient, params: Record<string, string | number>, type: string) =>
  (await limitsOf(client, params)).find((limit) => limit.resourcetypename === type)?.max;

async function register(client: ApiClient, fields: Record<string, string> = {}) {
  return client.call('registerTemplate', {
    name: unique('tpl'),
    url: 'http://images.example.com/ubuntu.qcow2',
    format: 'QCOW2',
    hypervisor: 'KVM',
    zoneid: zone.id,
    ostypeid: ubuntu.id,
    ...fields,
  });
}

const setLimit = async (params: Record<string, string | number>) => ok(await admin.call('updateResourceLimit', params), 'updateResourceLimit').resourcelimit;

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  root = (await getDomain(world.rootDomainId))!;
  zone = await seedZone(unique('lz'));
  const subId = ok(await admin.call('createDomain', { name: unique('sub') }), 'createDomain').domain.id;
  sub = (await getDomain(subId))!;
  [alice, carol, dave, subAdmin] = await Promise.all([
    seedMember(world.runtime.apiUrl, unique('alice'), root, 'User'),
    seedMember(world.runtime.apiUrl, unique('carol'), sub, 'User'),
    seedMember(world.runtime.apiUrl, unique('dave'), sub, 'User'),
    seedMember(world.runtime.apiUrl, unique('subadm'), sub, 'Domain Admin'),
  ]);
}, patience(60_000));

afterAll(async () => {
  await world?.runtime.stop();
});

describe('listResourceLimits', () => {
  it('lists an account’s twelve limits with upstream’s defaults and ResourceLimitResponse fields', async () => {
    const answer = await alice.client.call('listResourceLimits');
    const body = ok(answer, 'listResourceLimits');
    expect(body.count).toBe(12);
    expect(body.resourcelimit.map((l: any) => l.resourcetypename)).toEqual(NAMES);
    expect(body.resourcelimit.map((l: any) => l.max)).toEqual(ACCOUNT_DEFAULTS);
    expect(body.resourcelimit[4]).toEqual({
      account: alice.account.name,
      domainid: root.id,
      domain: root.name,
      domainpath: root.path,
      resourcetype: '4',
      resourcetypename: 'template',
      max: 20,
    });
  });

  it('filters by resourcetype (number or name) and resourcetypename, and pages', async () => {
    expect((await limitsOf(alice.client, { resourcetype: 8 })).map((l) => [l.resourcetypename, l.max])).toEqual([['cpu', 40]]);
    expect((await limitsOf(alice.client, { resourcetype: 'instance' })).map((l) => l.resourcetypename)).toEqual(['user_vm']);
    expect((await limitsOf(alice.client, { resourcetypename: 'secondary_storage' })).map((l) => l.max)).toEqual([400]);
    // resourcetypename wins over resourcetype.
    expect((await limitsOf(alice.client, { resourcetype: 0, resourcetypename: 'memory' })).map((l) => l.resourcetypename)).toEqual(['memory']);
    const page = ok(await alice.client.call('listResourceLimits', { page: 2, pagesize: 5 }), 'listResourceLimits');
    expect(page.count).toBe(12);
    expect(page.resourcelimit.map((l: any) => l.resourcetypename)).toEqual(NAMES.slice(5, 10));
  });

  it('lists a domain’s limits for admins, -1 everywhere for ROOT and for root admin accounts', async () => {
    const domainLimits = await limitsOf(admin, { domainid: sub.id });
    expect(domainLimits.map((l) => l.max)).toEqual(DOMAIN_DEFAULTS);
    expect(domainLimits[0]).toEqual({ domainid: sub.id, domain: sub.name, domainpath: sub.path, resourcetype: '0', resourcetypename: 'user_vm', max: 40 });
    expect((await limitsOf(admin, { domainid: root.id })).every((l) => l.max === -1)).toBe(true);
    const own = await limitsOf(admin);
    expect(own).toHaveLength(12);
    expect(own.every((l) => l.max === -1 && l.domainid === root.id)).toBe(true);
    // An account named with its domain.
    expect((await limitsOf(subAdmin.client, { domainid: sub.id, account: carol.account.name })).every((l) => l.account === carol.account.name)).toBe(true);
  });

  it('shows a user only its own account’s limits', async () => {
    const listed = await limitsOf(carol.client, { domainid: root.id });
    expect(listed.every((l) => l.account === carol.account.name && l.domainid === sub.id)).toBe(true);
    refused(await carol.client.call('listResourceLimits', { account: dave.account.name, domainid: sub.id }), 'listResourceLimits', 531, /does not have permission/);
  });

  it('refuses an unknown type, domain or account', async () => {
    refused(await alice.client.call('listResourceLimits', { resourcetype: 42 }), 'listResourceLimits', 431, 'Please specify a valid resource type.');
    refused(await alice.client.call('listResourceLimits', { resourcetypename: 'gpus' }), 'listResourceLimits', 431, 'Please specify a valid resource type name.');
    const nowhere = '00000000-0000-4000-8000-000000000000';
    refused(await admin.call('listResourceLimits', { domainid: nowhere }), 'listResourceLimits', 431, noEntity('listresourcelimits', 'domainid', nowhere));
    refused(
      await admin.call('listResourceLimits', { domainid: sub.id, account: 'nobody' }),
      'listResourceLimits',
      431,
      'Unable to find account by name nobody in domain with specified id',
    );
    refused(await subAdmin.client.call('listResourceLimits', { domainid: root.id }), 'listResourceLimits', 531, /does not have permission/);
  });
});

describe('updateResourceLimit', () => {
  it('sets an account’s limit by number or by name and answers with ResourceLimitResponse', async () => {
    const member = await seedMember(world.runtime.apiUrl, unique('lim'), sub, 'User');
    const answer = await admin.call('updateResourceLimit', { domainid: sub.id, account: member.account.name, resourcetype: 4, max: 7 });
    expect(ok(answer, 'updateResourceLimit')).toEqual({
      resourcelimit: { account: member.account.name, domainid: sub.id, domain: sub.name, domainpath: sub.path, resourcetype: '4', resourcetypename: 'template', max: 7 },
    });
    expect(await maxOf(member.client, {}, 'template')).toBe(7);
    await setLimit({ domainid: sub.id, account: member.account.name, resourcetype: 'network', max: 3 });
    expect(await maxOf(member.client, {}, 'network')).toBe(3);
    // No max: unlimited.
    expect((await setLimit({ domainid: sub.id, account: member.account.name, resourcetype: 'cpu' })).max).toBe(-1);
    // Storage in GiB, kept in bytes.
    expect((await setLimit({ domainid: sub.id, account: member.account.name, resourcetype: 11, max: 5 })).max).toBe(5);
    expect(await maxOf(member.client, {}, 'secondary_storage')).toBe(5);
    // A domain admin sets limits of the accounts below it.
    expect((await ok(await subAdmin.client.call('updateResourceLimit', { domainid: sub.id, account: member.account.name, resourcetype: 2, max: 4 }), 'updateResourceLimit')).resourcelimit.max).toBe(4);
  });

  it('sets a domain’s limit, which its child domains inherit', async () => {
    const parent = ok(await admin.call('createDomain', { name: unique('par') }), 'createDomain').domain;
    const child = ok(await admin.call('createDomain', { name: unique('chi'), parentdomainid: parent.id }), 'createDomain').domain;
    expect((await setLimit({ domainid: parent.id, resourcetype: 3, max: 9 })).max).toBe(9);
    expect(await maxOf(admin, { domainid: child.id }, 'snapshot')).toBe(9);
    // A child's limit may not exceed its parent's.
    refused(
      await admin.call('updateResourceLimit', { domainid: child.id, resourcetype: 3, max: 10 }),
      'updateResourceLimit',
      431,
      `Domain ${child.name}(id: ${parent.id}) has maximum allowed resource limit 9 for snapshot, please specify a value less than or equal to 9`,
    );
    expect((await setLimit({ domainid: child.id, resourcetype: 3, max: 8 })).max).toBe(8);
  });

  it('refuses bad values, missing owners, ROOT, root admins and callers acting on their own limits, changing nothing', async () => {
    const before = JSON.stringify([await limitsOf(admin, { domainid: sub.id }), await limitsOf(admin, { domainid: sub.id, account: carol.account.name })]);
    const api = 'updateResourceLimit';
    const call = (client: ApiClient, params: Record<string, string | number>) => client.call(api, params);
    refused(await call(admin, { domainid: sub.id, resourcetype: 4, max: -2 }), api, 431, "Please specify either '-1' for an infinite limit, or a limit that is at least '0'.");
    refused(await call(admin, { domainid: sub.id, resourcetype: 12, max: 1 }), api, 431, 'Please specify valid resource type');
    refused(await call(admin, { domainid: sub.id, resourcetype: 'gpu', max: 1 }), api, 431, 'Please specify valid resource type');
    refused(await call(admin, { domainid: sub.id, max: 1 }), api, 431, missing('updateresourcelimit', 'resourcetype'));
    refused(await call(admin, { domainid: sub.id, resourcetype: 4, max: 'many' }), api, 431, /invalid value.*max/);
    refused(await call(admin, { resourcetype: 4, max: 1 }), api, 431, 'AccountId or domainId have to be specified in order to update resource limit');
    refused(await call(admin, { account: carol.account.name, resourcetype: 4, max: 1 }), api, 431, 'Account must be specified with domainId parameter');
    refused(await call(admin, { account: 'nobody', domainid: sub.id, resourcetype: 4, max: 1 }), api, 431, 'Unable to find account by name nobody in domain with specified id');
    refused(await call(admin, { account: 'admin', domainid: root.id, resourcetype: 4, max: 1 }), api, 431, 'Only -1 limit is supported for Root Admin accounts');
    refused(await call(admin, { domainid: root.id, resourcetype: 4, max: 1 }), api, 531, `Cannot update resource limit for ROOT domain ${root.id}, permission denied`);
    refused(await call(subAdmin.client, { domainid: sub.id, resourcetype: 4, max: 1 }), api, 531, `Unable to update resource limit for domain ${sub.id}, permission denied`);
    refused(
      await call(subAdmin.client, { domainid: sub.id, account: subAdmin.account.name, resourcetype: 4, max: 1 }),
      api,
      531,
      `Unable to update resource limit for their own account ${subAdmin.account.id}, permission denied`,
    );
    refused(await call(subAdmin.client, { domainid: root.id, account: alice.account.name, resourcetype: 4, max: 1 }), api, 531, /does not have permission/);
    refused(await call(carol.client, { domainid: sub.id, account: carol.account.name, resourcetype: 4, max: 100 }), api, 432, DENIED);
    expect(JSON.stringify([await limitsOf(admin, { domainid: sub.id }), await limitsOf(admin, { domainid: sub.id, account: carol.account.name })])).toBe(before);
  });
});

describe('enforcement', () => {
  it('refuses the template beyond an account’s limit with 532 and upstream’s text, and counts ISOs too', async () => {
    const member = await seedMember(world.runtime.apiUrl, unique('enf'), sub, 'User');
    await setLimit({ domainid: sub.id, account: member.account.name, resourcetype: 4, max: 2 });
    const first = ok(await register(member.client), 'registerTemplate').template[0];
    ok(
      await member.client.call('registerIso', { name: unique('iso'), url: 'http://images.example.com/x.iso', zoneid: zone.id, ostypeid: ubuntu.id }),
      'registerIso',
    );
    const text = `Maximum amount of resources of Type = 'template', tag = 'null' for Account Name = ${member.account.name} in Domain Id = ${sub.id} is exceeded: Account Resource Limit = 2, Current Account Resource Amount = 2, Current Account Resource Reservation = 0, Requested Resource Amount = 1.`;
    const body = refused(await register(member.client), 'registerTemplate', 532, text);
    expect(body.cserrorcode).toBe(4370);
    refused(
      await member.client.call('registerIso', { name: unique('iso'), url: 'http://images.example.com/y.iso', zoneid: zone.id, ostypeid: ubuntu.id }),
      'registerIso',
      532,
      text,
    );
    // Nothing was written, nothing counted.
    const mine = ok(await member.client.call('listTemplates', { templatefilter: 'self' }), 'listTemplates');
    expect(mine.count).toBe(1);
    expect((await storedCounts('ACCOUNT', member.account.id)).template).toBe(2);
    // Deleting gives the place back.
    const job = ok(await member.client.call('deleteTemplate', { id: first.id }), 'deleteTemplate');
    expect((await member.client.waitForJob(job.jobid)).jobstatus).toBe(1);
    expect((await storedCounts('ACCOUNT', member.account.id)).template).toBe(1);
    ok(await register(member.client), 'registerTemplate');
  });

  it('counts every domain above the account and refuses with the domain’s text', async () => {
    const domainId = ok(await admin.call('createDomain', { name: unique('dl') }), 'createDomain').domain.id;
    const domain = (await getDomain(domainId))!;
    const [one, two] = await Promise.all([
      seedMember(world.runtime.apiUrl, unique('one'), domain, 'User'),
      seedMember(world.runtime.apiUrl, unique('two'), domain, 'User'),
    ]);
    await setLimit({ domainid: domain.id, resourcetype: 4, max: 3 });
    ok(await register(one.client), 'registerTemplate');
    ok(await register(one.client), 'registerTemplate');
    ok(await register(two.client), 'registerTemplate');
    expect((await storedCounts('DOMAIN', domain.id)).template).toBe(3);
    const rootBefore = (await storedCounts('DOMAIN', root.id)).template ?? 0;
    refused(
      await register(two.client),
      'registerTemplate',
      532,
      `Maximum domain resource limits of Type 'template' for Domain Id = ${domain.id} is exceeded: Domain Resource Limit = 3, Current Domain Resource Amount = 3, Current Resource Reservation = 0, Requested Resource Amount = 1.`,
    );
    expect((await storedCounts('ACCOUNT', two.account.id)).template).toBe(1);
    expect((await storedCounts('DOMAIN', root.id)).template ?? 0).toBe(rootBefore);
  });

  it('never over-counts: 12 parallel registrations against a limit of 5 give 5 templates and 7 refusals', async () => {
    const member = await seedMember(world.runtime.apiUrl, unique('race'), sub, 'User');
    await setLimit({ domainid: sub.id, account: member.account.name, resourcetype: 4, max: 5 });
    const answers = await Promise.all(Array.from({ length: 12 }, () => register(member.client)));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(5);
    const refusals = answers.filter((a) => a.status !== 200);
    expect(refusals).toHaveLength(7);
    for (const answer of refusals) {
      expect(answer.status).toBe(532);
      expect(answer.body.registertemplateresponse.errortext).toMatch(/^Maximum amount of resources of Type = 'template'/);
    }
    expect((await storedCounts('ACCOUNT', member.account.id)).template).toBe(5);
    expect(ok(await member.client.call('listTemplates', { templatefilter: 'self' }), 'listTemplates').count).toBe(5);
  }, patience(60_000));

  it('counts but never limits root admin accounts', async () => {
    const adminAccountId = (await findUserByApiKey(world.runtime.credentials.apikey))!.accountId;
    await setResourceCount('ACCOUNT', adminAccountId, 'template', 1000);
    ok(await register(admin), 'registerTemplate');
    expect((await storedCounts('ACCOUNT', adminAccountId)).template).toBe(1001);
  });

  it('counts an account’s network against its network limit', async () => {
    const netZone = ok(await admin.call('createZone', { name: unique('nz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
    const physical = ok(await admin.call('createPhysicalNetwork', { zoneid: netZone.id, name: unique('phys'), vlan: '1000-1099' }), 'createPhysicalNetwork');
    expect((await admin.waitForJob(physical.jobid)).jobstatus).toBe(1);
    const offering = ok(await admin.call('listNetworkOfferings', { name: 'DefaultSharedNetworkOffering' }), 'listNetworkOfferings').networkoffering[0].id;
    const member = await seedMember(world.runtime.apiUrl, unique('net'), sub, 'User');
    await setLimit({ domainid: sub.id, account: member.account.name, resourcetype: 6, max: 1 });
    const create = (vlan: number) =>
      admin.call('createNetwork', {
        name: unique('n'),
        networkofferingid: offering,
        zoneid: netZone.id,
        vlan,
        gateway: `10.${vlan}.0.1`,
        netmask: '255.255.255.0',
        startip: `10.${vlan}.0.10`,
        endip: `10.${vlan}.0.20`,
        acltype: 'Account',
        account: member.account.name,
        domainid: sub.id,
      });
    const network = ok(await create(101), 'createNetwork').network;
    refused(await create(102), 'createNetwork', 532, new RegExp(`^Maximum amount of resources of Type = 'network', tag = 'null' for Account Name = ${member.account.name} `));
    expect((await ok(await admin.call('listNetworks', { listall: true, zoneid: netZone.id }), 'listNetworks')).count).toBe(1);
    expect((await storedCounts('ACCOUNT', member.account.id)).network).toBe(1);
    // A domain-wide network has no owner account and counts nowhere.
    const job = ok(await admin.call('deleteNetwork', { id: network.id }), 'deleteNetwork');
    expect((await admin.waitForJob(job.jobid)).jobstatus).toBe(1);
    expect((await storedCounts('ACCOUNT', member.account.id)).network).toBe(0);
    ok(await create(103), 'createNetwork');
  }, patience(60_000));

  it('counts downloaded template copies as secondary storage and refuses beyond the storage limit text in bytes', async () => {
    const member = await seedMember(world.runtime.apiUrl, unique('sec'), sub, 'User');
    const template = ok(await register(member.client), 'registerTemplate').template[0];
    await markTemplateDownloaded(template.id, zone.id, { size: 2 * GiB, physicalsize: GiB });
    expect((await storedCounts('ACCOUNT', member.account.id)).secondary_storage).toBe(2 * GiB);
    expect((await storedCounts('DOMAIN', sub.id)).secondary_storage).toBeGreaterThanOrEqual(2 * GiB);
    const { reserveResources } = await import('../../shared/db/limits.ts');
    await setLimit({ domainid: sub.id, account: member.account.name, resourcetype: 11, max: 2 });
    await expect(reserveResources(member.account.id, { secondary_storage: 1024 })).rejects.toMatchObject({
      errorcode: 532,
      message: `Maximum amount of resources of Type = 'secondary_storage', tag = 'null' for Account Name = ${member.account.name} in Domain Id = ${sub.id} is exceeded: Account Resource Limit = (2.00 GB) 2147483648, Current Account Resource Amount = (2.00 GB) 2147483648, Current Account Resource Reservation = (0 bytes) 0, Requested Resource Amount = (1.00 KB) 1024.`,
    });
    const job = ok(await member.client.call('deleteTemplate', { id: template.id }), 'deleteTemplate');
    expect((await member.client.waitForJob(job.jobid)).jobstatus).toBe(1);
    expect(await storedCounts('ACCOUNT', member.account.id)).toMatchObject({ template: 0, secondary_storage: 0 });
  });
});

describe('updateResourceCount', () => {
  it('recalculates an account’s counts from the records that exist', async () => {
    const member = await seedMember(world.runtime.apiUrl, unique('rc'), sub, 'User');
    ok(await register(member.client), 'registerTemplate');
    const downloaded = ok(await register(member.client), 'registerTemplate').template[0];
    await markTemplateDownloaded(downloaded.id, zone.id, { size: 3 * GiB });
    // Counts gone wrong.
    await setResourceCount('ACCOUNT', member.account.id, 'template', 9);
    await setResourceCount('ACCOUNT', member.account.id, 'secondary_storage', 1);
    const answer = await member.client.call('updateResourceCount', { domainid: sub.id, account: member.account.name });
    const body = ok(answer, 'updateResourceCount');
    expect(body.count).toBe(12);
    const byName = Object.fromEntries(body.resourcecount.map((c: any) => [c.resourcetypename, c]));
    expect(byName.template).toEqual({
      account: member.account.name,
      domainid: sub.id,
      domain: sub.name,
      domainpath: sub.path,
      resourcetype: '4',
      resourcetypename: 'template',
      resourcecount: 2,
    });
    expect(byName.secondary_storage.resourcecount).toBe(3 * GiB);
    expect(byName.network.resourcecount).toBe(0);
    expect(await storedCounts('ACCOUNT', member.account.id)).toMatchObject({ template: 2, secondary_storage: 3 * GiB });
    // One type only.
    const one = ok(await member.client.call('updateResourceCount', { domainid: sub.id, account: member.account.name, resourcetype: 4 }), 'updateResourceCount');
    expect(one.resourcecount.map((c: any) => c.resourcetypename)).toEqual(['template']);
  });

  it('recalculates a domain as the sum of the accounts below it', async () => {
    const parentId = ok(await admin.call('createDomain', { name: unique('rp') }), 'createDomain').domain.id;
    const childId = ok(await admin.call('createDomain', { name: unique('rcd'), parentdomainid: parentId }), 'createDomain').domain.id;
    const [parent, child] = [(await getDomain(parentId))!, (await getDomain(childId))!];
    const [p1, c1] = await Promise.all([seedMember(world.runtime.apiUrl, unique('p1'), parent, 'User'), seedMember(world.runtime.apiUrl, unique('c1'), child, 'User')]);
    ok(await register(p1.client), 'registerTemplate');
    ok(await register(c1.client), 'registerTemplate');
    ok(await register(c1.client), 'registerTemplate');
    await setResourceCount('DOMAIN', parent.id, 'template', 40);
    await setResourceCount('DOMAIN', child.id, 'template', 0);
    const body = ok(await admin.call('updateResourceCount', { domainid: parent.id, resourcetype: 'template' }), 'updateResourceCount');
    expect(body.resourcecount).toEqual([{ domainid: parent.id, domain: parent.name, domainpath: parent.path, resourcetype: '4', resourcetypename: 'template', resourcecount: 3 }]);
    expect((await storedCounts('DOMAIN', child.id)).template).toBe(2);
  });

  it('refuses a missing or unknown domain, an unknown type or account, and domains out of reach', async () => {
    const api = 'updateResourceCount';
    refused(await admin.call(api, {}), api, 431, missing('updateresourcecount', 'domainid'));
    const nowhere = '00000000-0000-4000-8000-000000000000';
    refused(await admin.call(api, { domainid: nowhere }), api, 431, noEntity('updateresourcecount', 'domainid', nowhere));
    refused(await admin.call(api, { domainid: sub.id, resourcetype: 77 }), api, 431, 'Please specify valid resource type');
    refused(await admin.call(api, { domainid: sub.id, account: 'nobody' }), api, 431, 'Unable to find account by name nobody in domain with specified id');
    refused(await carol.client.call(api, { domainid: root.id }), api, 531, /does not have permission/);
    refused(await carol.client.call(api, { domainid: sub.id, account: dave.account.name }), api, 531, /does not have permission/);
  });
});

describe('listApis', () => {
  it('offers users listResourceLimits and updateResourceCount, not updateResourceLimit', async () => {
    const names = (ok(await carol.client.call('listApis'), 'listApis').api as any[]).map((api) => api.name);
    expect(names).toEqual(expect.arrayContaining(['listResourceLimits', 'updateResourceCount']));
    expect(names).not.toContain('updateResourceLimit');
    expect(names).not.toContain('listCapacity');
    const adminNames = (ok(await admin.call('listApis'), 'listApis').api as any[]).map((api) => api.name);
    expect(adminNames).toEqual(expect.arrayContaining(['listResourceLimits', 'updateResourceLimit', 'updateResourceCount', 'listCapacity']));
  });
});
