// Affinity groups through /client/api: listAffinityGroupTypes, the createAffinityGroup job (its id
// at once, the group as the job's result), listAffinityGroups with every filter and scoping, the
// deleteAffinityGroup job by id and by name, upstream's refusals (each changing nothing), and the
// groups going with their account.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getAffinityGroup, listAffinityGroupsUnder } from '../../shared/db/affinity-groups.ts';
import { createDomain, findUserByApiKey, getDomain, type Domain } from '../../shared/db/identity.ts';
import { getItem } from '../../shared/db/items.ts';
import { ApiClient, type ApiAnswer } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ANTI = 'host anti-affinity';
const AFFINITY = 'host affinity';

let runtime: RunningRuntime;
let admin: ApiClient;
let adminAccountName: string;
let root: Domain;
let sub: Domain;
let subsub: Domain;
let alice: Member; // User in ROOT
let bob: Member; // User in ROOT
let carol: Member; // User in sub
let dave: Member; // User in sub/subsub
let subAdmin: Member; // Domain Admin of sub

function ok(answer: ApiAnswer, command: string): any {
  if (answer.status !== 200) throw new Error(`${command}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body[`${command.toLowerCase()}response`];
}

function refused(answer: ApiAnswer, command: string, errorcode: number, errortext: string | RegExp, cserrorcode: number) {
  const body = answer.body[`${command.toLowerCase()}response`];
  expect(answer.status, JSON.stringify(answer.body)).toBe(errorcode);
  expect(body.errorcode).toBe(errorcode);
  expect(body.cserrorcode).toBe(cserrorcode);
  if (typeof errortext === 'string') expect(body.errortext).toBe(errortext);
  else expect(body.errortext).toMatch(errortext);
}

const noEntity = (api: string, name: string, value: string) =>
  `Unable to execute API command ${api} due to invalid value. Invalid parameter ${name} value=${value} due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.`;

let counter = 0;
const unique = (prefix: string) => `${prefix}-${++counter}-${Math.random().toString(36).slice(2, 7)}`;

/** createAffinityGroup and its job: the answer's id, and the group the job returns. */
async function create(client: ApiClient, fields: Record<string, string>): Promise<any> {
  const answer = ok(await client.call('createAffinityGroup', { type: ANTI, ...fields }), 'createAffinityGroup');
  expect(Object.keys(answer).sort()).toEqual(['id', 'jobid']);
  const job = await client.waitForJob(answer.jobid);
  expect(job.jobstatus, JSON.stringify(job)).toBe(1);
  expect(job.cmd).toBe('createAffinityGroup');
  expect(job.jobinstancetype).toBe('AffinityGroup');
  expect(job.jobinstanceid).toBe(answer.id);
  expect(job.jobresult.affinitygroup.id).toBe(answer.id);
  return job.jobresult.affinitygroup;
}

async function list(client: ApiClient, params: Record<string, string | number | boolean> = {}) {
  const body = ok(await client.call('listAffinityGroups', params), 'listAffinityGroups');
  return { count: body.count ?? 0, items: (body.affinitygroup ?? []) as any[] };
}

const names = (items: any[]) => items.map((item) => item.name);

/** Every group there is, as the root admin sees them: refusals must leave it unchanged. */
async function snapshot() {
  return JSON.stringify((await list(admin, { listall: true })).items);
}

const groups: Record<string, any> = {};

beforeAll(async () => {
  runtime = await startRuntime();
  useRuntimeEndpoints(runtime);
  admin = new ApiClient(runtime.apiUrl, runtime.credentials);
  const adminUser = (await findUserByApiKey(runtime.credentials.apikey))!;
  root = (await getDomain(adminUser.domainId))!;
  adminAccountName = ok(await admin.call('listAccounts', { id: adminUser.accountId }), 'listAccounts').account[0].name;
  sub = await createDomain({ name: 'agsub', parent: root });
  subsub = await createDomain({ name: 'agsubsub', parent: sub });
  [alice, bob, carol, dave, subAdmin] = await Promise.all([
    seedMember(runtime.apiUrl, 'agalice', root, 'User'),
    seedMember(runtime.apiUrl, 'agbob', root, 'User'),
    seedMember(runtime.apiUrl, 'agcarol', sub, 'User'),
    seedMember(runtime.apiUrl, 'agdave', subsub, 'User'),
    seedMember(runtime.apiUrl, 'agsubadmin', sub, 'Domain Admin'),
  ]);
});

afterAll(async () => {
  await runtime?.stop();
});

describe('listAffinityGroupTypes', () => {
  it('lists the two types Mold supports under upstream\'s item name, to every role', async () => {
    const expected = { count: 2, affinityGroupType: [{ type: ANTI }, { type: AFFINITY }] };
    expect(ok(await alice.client.call('listAffinityGroupTypes'), 'listAffinityGroupTypes')).toEqual(expected);
    expect(ok(await subAdmin.client.call('listAffinityGroupTypes'), 'listAffinityGroupTypes')).toEqual(expected);
    expect(ok(await admin.call('listAffinityGroupTypes'), 'listAffinityGroupTypes')).toEqual(expected);
  });
});

describe('createAffinityGroup', () => {
  it('creates a group for the calling user, answering with its id and a job whose result is the group', async () => {
    const group = await create(alice.client, { name: 'web', description: 'front ends' });
    expect(group).toEqual({
      id: expect.stringMatching(UUID),
      name: 'web',
      description: 'front ends',
      account: 'agalice',
      domainid: root.id,
      domain: 'ROOT',
      domainpath: root.path,
      type: ANTI,
    });
    // No description, no field (upstream omits nulls); the other type.
    const db = await create(alice.client, { name: 'db', type: AFFINITY });
    expect(db).toEqual({ id: expect.stringMatching(UUID), name: 'db', account: 'agalice', domainid: root.id, domain: 'ROOT', domainpath: root.path, type: AFFINITY });
    expect((await getAffinityGroup(db.id))?.virtualMachineIds).toEqual([]);
    groups.aliceWeb = group;
    groups.aliceDb = db;

    // Its events: the entity created, then the job scheduled and completed, all AG.CREATE.
    const events = ok(await alice.client.call('listEvents', { type: 'AG.CREATE' }), 'listEvents').event as any[];
    const ofWeb = events.filter((event) => event.resourceid === group.id);
    expect(ofWeb.map((event) => event.state).sort()).toEqual(['Completed', 'Created', 'Scheduled']);
    expect(ofWeb.every((event) => event.resourcetype === 'AffinityGroup' && event.account === 'agalice')).toBe(true);
  });

  it('lets the same name live in another account, and admins create for another account', async () => {
    groups.bobWeb = await create(bob.client, { name: 'web' });
    expect(groups.bobWeb.account).toBe('agbob');
    // Root admin for a user of a sub-domain.
    groups.carolApp = await create(admin, { name: 'app', account: 'agcarol', domainid: sub.id, type: AFFINITY });
    expect(groups.carolApp).toMatchObject({ name: 'app', account: 'agcarol', domainid: sub.id, domain: 'agsub', domainpath: sub.path, type: AFFINITY });
    // A domain admin for a user below its domain.
    groups.daveCache = await create(subAdmin.client, { name: 'cache', account: 'agdave', domainid: subsub.id });
    expect(groups.daveCache).toMatchObject({ account: 'agdave', domainid: subsub.id, domain: 'agsubsub' });
    // The domain admin's own group and the root admin's own group.
    groups.subAdminOwn = await create(subAdmin.client, { name: 'ops' });
    expect(groups.subAdminOwn).toMatchObject({ account: 'agsubadmin', domainid: sub.id });
    groups.adminOwn = await create(admin, { name: 'infra' });
    expect(groups.adminOwn).toMatchObject({ account: adminAccountName, domainid: root.id });
  });

  it('refuses a duplicate name in the account (case-insensitively), changing nothing', async () => {
    const before = await snapshot();
    const duplicate = 'Unable to create affinity group, a group with name web already exists.';
    refused(await alice.client.call('createAffinityGroup', { name: 'web', type: ANTI }), 'createAffinityGroup', 431, duplicate, 4350);
    refused(await alice.client.call('createAffinityGroup', { name: 'WEB', type: AFFINITY }), 'createAffinityGroup', 431, duplicate.replace('web', 'WEB'), 4350);
    refused(await admin.call('createAffinityGroup', { name: 'web', type: ANTI, account: 'agbob', domainid: root.id }), 'createAffinityGroup', 431, duplicate, 4350);
    expect(await snapshot()).toBe(before);
  });

  it('refuses a bad or missing type and a missing name with 431 naming the parameter, changing nothing', async () => {
    const before = await snapshot();
    refused(
      await alice.client.call('createAffinityGroup', { name: unique('x'), type: 'ExplicitDedication' }),
      'createAffinityGroup',
      431,
      'Unable to create affinity group, invalid affinity group type: ExplicitDedication. Valid values are host anti-affinity,host affinity',
      4350,
    );
    refused(
      await alice.client.call('createAffinityGroup', { name: unique('x'), type: 'Host Anti-Affinity' }),
      'createAffinityGroup',
      431,
      /invalid affinity group type: Host Anti-Affinity\./,
      4350,
    );
    refused(await alice.client.call('createAffinityGroup', { name: unique('x') }), 'createAffinityGroup', 431, 'Unable to execute API command createaffinitygroup due to missing parameter type', 4350);
    refused(await alice.client.call('createAffinityGroup', { type: ANTI }), 'createAffinityGroup', 431, 'Unable to execute API command createaffinitygroup due to missing parameter name', 4350);
    refused(
      await alice.client.call('createAffinityGroup', { name: 'n'.repeat(256), type: ANTI }),
      'createAffinityGroup',
      431,
      /^Unable to execute API command createaffinitygroup due to invalid value\. Invalid parameter name value=n{200}…\(256 characters\): is longer than 255 characters$/,
      4350,
    );
    expect(await snapshot()).toBe(before);
  });

  it('refuses owners the caller may not act for, projects and domain-wide groups, changing nothing', async () => {
    const before = await snapshot();
    const api = 'createAffinityGroup';
    // A user naming another account.
    refused(
      await alice.client.call(api, { name: unique('x'), type: ANTI, account: 'agbob', domainid: root.id }),
      api,
      531,
      `Can't create/list resources for account agbob in domain ${root.id}, permission denied`,
      4365,
    );
    // account and domainid go together.
    refused(await alice.client.call(api, { name: unique('x'), type: ANTI, account: 'agalice' }), api, 431, 'AccountName and domainId must be specified together', 4350);
    refused(await subAdmin.client.call(api, { name: unique('x'), type: ANTI, domainid: sub.id }), api, 431, 'AccountName and domainId must be specified together', 4350);
    // A domain admin for an account outside its subtree.
    refused(
      await subAdmin.client.call(api, { name: unique('x'), type: ANTI, account: 'agalice', domainid: root.id }),
      api,
      531,
      new RegExp(`does not have permission to operate within domain id=${root.id}$`),
      4365,
    );
    // An account that is not there.
    refused(await admin.call(api, { name: unique('x'), type: ANTI, account: 'nobody', domainid: sub.id }), api, 431, `Unable to find account nobody in domain ${sub.id}`, 4350);
    // A root admin naming only a domain asks for a domain-wide group: neither type can be one.
    refused(
      await admin.call(api, { name: unique('x'), type: ANTI, domainid: sub.id }),
      api,
      431,
      'Unable to create affinity group, account name is needed. Affinity group type host anti-affinity cannot be shared domain wide',
      4350,
    );
    // Mold keeps no projects; unknown domains.
    const ghost = randomUUID();
    refused(await alice.client.call(api, { name: unique('x'), type: ANTI, projectid: ghost }), api, 431, noEntity('createaffinitygroup', 'projectid', ghost), 4350);
    refused(await admin.call(api, { name: unique('x'), type: ANTI, account: 'agalice', domainid: ghost }), api, 431, noEntity('createaffinitygroup', 'domainid', ghost), 4350);
    expect(await snapshot()).toBe(before);
  });
});

describe('listAffinityGroups', () => {
  it('shows a user only its own groups, with or without listall, oldest first', async () => {
    const own = await list(alice.client);
    expect(own).toEqual({ count: 2, items: [groups.aliceWeb, groups.aliceDb] });
    expect(await list(alice.client, { listall: true })).toEqual(own);
    expect(await list(alice.client, { account: 'agalice', domainid: root.id })).toEqual(own);
    // Another account's group by id is simply not in the user's list.
    expect(await list(alice.client, { id: groups.bobWeb.id })).toEqual({ count: 0, items: [] });
    expect(ok(await alice.client.call('listAffinityGroups', { id: groups.bobWeb.id }), 'listAffinityGroups')).toEqual({});
    expect(names((await list(carol.client)).items)).toEqual(['app']);
    expect(names((await list(dave.client)).items)).toEqual(['cache']);
  });

  it('filters by id, name, type and keyword, and pages', async () => {
    expect((await list(alice.client, { id: groups.aliceDb.id })).items).toEqual([groups.aliceDb]);
    expect((await list(alice.client, { name: 'WEB' })).items).toEqual([groups.aliceWeb]);
    expect((await list(alice.client, { name: 'we' })).items).toEqual([]);
    expect((await list(alice.client, { type: AFFINITY })).items).toEqual([groups.aliceDb]);
    expect((await list(alice.client, { type: ANTI })).items).toEqual([groups.aliceWeb]);
    expect((await list(alice.client, { keyword: 'EB' })).items).toEqual([groups.aliceWeb]);
    // The keyword also matches the type.
    expect((await list(alice.client, { keyword: 'anti' })).items).toEqual([groups.aliceWeb]);
    expect((await list(alice.client, { keyword: 'affinity' })).items).toEqual([groups.aliceWeb, groups.aliceDb]);
    const second = await list(alice.client, { page: 2, pagesize: 1 });
    expect(second).toEqual({ count: 2, items: [groups.aliceDb] });
    // A VM no group holds (no VMs exist yet): nothing.
    expect(await list(alice.client, { virtualmachineid: randomUUID() })).toEqual({ count: 0, items: [] });
  });

  it('shows a domain admin its subtree, a root admin everything with listall, each its own without', async () => {
    expect(names((await list(subAdmin.client)).items)).toEqual(['ops']);
    expect(names((await list(subAdmin.client, { listall: true })).items)).toEqual(['app', 'cache', 'ops']);
    expect(names((await list(subAdmin.client, { domainid: sub.id })).items)).toEqual(['app', 'ops']);
    expect(names((await list(subAdmin.client, { domainid: sub.id, isrecursive: true })).items)).toEqual(['app', 'cache', 'ops']);
    expect(names((await list(subAdmin.client, { domainid: subsub.id })).items)).toEqual(['cache']);
    expect(names((await list(subAdmin.client, { account: 'agdave', domainid: subsub.id })).items)).toEqual(['cache']);
    // By id, an admin finds what it may see even without listall.
    expect((await list(subAdmin.client, { id: groups.daveCache.id })).items).toEqual([groups.daveCache]);
    expect((await list(subAdmin.client, { id: groups.aliceWeb.id })).items).toEqual([]);

    expect(names((await list(admin)).items)).toEqual(['infra']);
    const all = await list(admin, { listall: true });
    expect(names(all.items)).toEqual(['web', 'db', 'web', 'app', 'cache', 'ops', 'infra']);
    expect(all.items.map((g) => g.account)).toEqual(['agalice', 'agalice', 'agbob', 'agcarol', 'agdave', 'agsubadmin', adminAccountName]);
    expect(names((await list(admin, { listall: true, name: 'web' })).items)).toEqual(['web', 'web']);
    expect(names((await list(admin, { domainid: root.id, isrecursive: true, type: AFFINITY })).items)).toEqual(['db', 'app']);
    expect(names((await list(admin, { account: 'agbob', domainid: root.id })).items)).toEqual(['web']);
    expect((await list(admin, { id: groups.carolApp.id })).items).toEqual([groups.carolApp]);
  });

  it('refuses scopes the caller may not see and unknown ids, with 431/531', async () => {
    const api = 'listAffinityGroups';
    refused(await subAdmin.client.call(api, { domainid: root.id }), api, 531, new RegExp(`does not have permission to operate within domain id=${root.id}$`), 4365);
    refused(await alice.client.call(api, { domainid: sub.id }), api, 531, new RegExp(`does not have permission to operate within domain id=${sub.id}$`), 4365);
    refused(await subAdmin.client.call(api, { account: 'agalice', domainid: sub.id }), api, 431, /^could not find account agalice in domain /, 4350);
    const ghost = randomUUID();
    refused(await alice.client.call(api, { id: ghost }), api, 431, noEntity('listaffinitygroups', 'id', ghost), 4350);
    refused(await alice.client.call(api, { projectid: ghost }), api, 431, noEntity('listaffinitygroups', 'projectid', ghost), 4350);
    refused(await alice.client.call(api, { domainid: ghost }), api, 431, noEntity('listaffinitygroups', 'domainid', ghost), 4350);
  });
});

describe('deleteAffinityGroup', () => {
  async function deleted(client: ApiClient, params: Record<string, string>) {
    const answer = ok(await client.call('deleteAffinityGroup', params), 'deleteAffinityGroup');
    expect(Object.keys(answer)).toEqual(['jobid']);
    const job = await client.waitForJob(answer.jobid);
    expect(job.jobstatus, JSON.stringify(job)).toBe(1);
    expect(job.jobresult).toEqual({ success: true });
    expect(job.jobinstancetype).toBe('AffinityGroup');
    return job;
  }

  it('refuses another account\'s group, unknown groups and missing selectors, changing nothing', async () => {
    const before = await snapshot();
    const api = 'deleteAffinityGroup';
    refused(await alice.client.call(api, { id: groups.bobWeb.id }), api, 531, `Caller agalice does not have permission to operate with affinity group ${groups.bobWeb.id}`, 4365);
    refused(await subAdmin.client.call(api, { id: groups.aliceWeb.id }), api, 531, /does not have permission to operate with affinity group/, 4365);
    refused(
      await alice.client.call(api, { name: 'web', account: 'agbob', domainid: root.id }),
      api,
      531,
      `Can't create/list resources for account agbob in domain ${root.id}, permission denied`,
      4365,
    );
    // By name, a user finds only its own groups: bob's "app" does not exist for alice.
    refused(await alice.client.call(api, { name: 'app' }), api, 431, 'Unable to find affinity group app', 4350);
    refused(await alice.client.call(api, {}), api, 431, 'Either the affinity group Id or group name must be specified to delete the group', 4350);
    refused(await alice.client.call(api, { name: 'web', account: 'agalice' }), api, 431, 'AccountName and domainId must be specified together', 4350);
    refused(await admin.call(api, { name: 'app', account: 'nobody', domainid: sub.id }), api, 431, `Unable to find account nobody in domain ${sub.id}`, 4350);
    refused(await admin.call(api, { name: 'app', domainid: sub.id }), api, 431, 'Unable to find affinity group app', 4350);
    const ghost = randomUUID();
    refused(await alice.client.call(api, { id: ghost }), api, 431, noEntity('deleteaffinitygroup', 'id', ghost), 4350);
    refused(await alice.client.call(api, { name: 'web', projectid: ghost }), api, 431, noEntity('deleteaffinitygroup', 'projectid', ghost), 4350);
    expect(await snapshot()).toBe(before);
  });

  it('deletes by id and by name (for a user, and by an admin with account and domain), freeing the name', async () => {
    const job = await deleted(alice.client, { id: groups.aliceDb.id });
    expect(job.jobinstanceid).toBe(groups.aliceDb.id);
    expect(await getAffinityGroup(groups.aliceDb.id)).toBeUndefined();
    expect((await list(alice.client)).items).toEqual([groups.aliceWeb]);

    await deleted(alice.client, { name: 'WEB' });
    expect(await list(alice.client)).toEqual({ count: 0, items: [] });
    // Bob's group of the same name is untouched.
    expect((await list(bob.client)).items).toEqual([groups.bobWeb]);

    await deleted(subAdmin.client, { name: 'cache', account: 'agdave', domainid: subsub.id });
    await deleted(admin, { id: groups.carolApp.id });
    expect(names((await list(admin, { listall: true })).items)).toEqual(['web', 'ops', 'infra']);

    // The name is free again.
    const again = await create(alice.client, { name: 'web' });
    expect(again.id).not.toBe(groups.aliceWeb.id);

    // Its events.
    const events = ok(await alice.client.call('listEvents', { type: 'AG.DELETE' }), 'listEvents').event as any[];
    expect(events.filter((e) => e.resourceid === groups.aliceDb.id).map((e) => e.state).sort()).toEqual(['Completed', 'Scheduled']);
  });
});

describe('account deletion', () => {
  it('removes the account\'s affinity groups and frees their names', async () => {
    const erin = await seedMember(runtime.apiUrl, 'agerin', sub, 'User');
    const one = await create(erin.client, { name: 'one' });
    const two = await create(erin.client, { name: 'two', type: AFFINITY });
    expect(names((await list(admin, { account: 'agerin', domainid: sub.id })).items)).toEqual(['one', 'two']);
    const answer = ok(await admin.call('deleteAccount', { id: erin.account.id }), 'deleteAccount');
    expect((await admin.waitForJob(answer.jobid)).jobstatus).toBe(1);
    expect(await getAffinityGroup(one.id)).toBeUndefined();
    expect(await getAffinityGroup(two.id)).toBeUndefined();
    expect((await listAffinityGroupsUnder(sub.tree)).map((g) => g.accountId)).not.toContain(erin.account.id);
    expect(names((await list(admin, { listall: true })).items)).not.toContain('one');
    for (const name of ['one', 'two']) expect(await getItem(`AFFINITYGROUPNAME#${erin.account.id}#${name}`, 'GUARD')).toBeUndefined();
  });
});
