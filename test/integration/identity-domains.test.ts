// Domains through /client/api: createDomain, listDomains, listDomainChildren, updateDomain and the
// deleteDomain job, with upstream's fields, scoping and refusals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finish, makeAccount, makeDomain, missing, noEntity, ok, refused, startWorld, unique, type Member, type World } from './identity-fixtures.ts';

describe('domains', () => {
  let world: World;
  let parent: any;
  let child: any;
  let grandchild: any;
  let domainAdmin: Member;
  let user: Member;

  beforeAll(async () => {
    world = await startWorld();
    parent = await makeDomain(world.admin, unique('parent'));
    child = await makeDomain(world.admin, unique('child'), parent.id);
    grandchild = await makeDomain(world.admin, unique('grand'), child.id);
    domainAdmin = await makeAccount(world.admin, { accounttype: 2, domainid: parent.id });
    user = await makeAccount(world.admin, { accounttype: 0, domainid: parent.id });
  });
  afterAll(async () => {
    await world?.runtime.stop();
  });

  it('creates a domain with upstream’s DomainResponse fields and records DOMAIN.CREATE', async () => {
    const name = unique('made');
    const answer = await world.admin.call('createDomain', { name, networkdomain: 'made.example.com' });
    const domain = ok(answer, 'createDomain').domain;
    expect(Object.keys(answer.body)).toEqual(['createdomainresponse']);
    expect(domain).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name,
      level: 1,
      parentdomainid: world.rootDomainId,
      parentdomainname: 'ROOT',
      haschild: false,
      networkdomain: 'made.example.com',
      path: `ROOT/${name}`,
      state: 'Active',
      created: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$/),
      hasannotations: false,
    });
    const events = ok(await world.admin.call('listEvents', { type: 'DOMAIN.CREATE', listall: true }), 'listEvents');
    expect(events.event.some((event: any) => event.resourceid === domain.id || event.description.includes(name))).toBe(true);
  });

  it('creates a domain with a chosen id below a parent', async () => {
    const id = crypto.randomUUID();
    const domain = ok(await world.admin.call('createDomain', { name: unique('chosen'), parentdomainid: child.id, domainid: id }), 'createDomain').domain;
    expect(domain).toMatchObject({ id, level: 3, parentdomainid: child.id, parentdomainname: child.name, path: `${child.path}/${domain.name}` });
  });

  it('refuses createDomain without a name, with a duplicate name, an unknown parent or a bad network domain, and changes nothing', async () => {
    const before = ok(await world.admin.call('listDomains', { listall: true }), 'listDomains').count;
    refused(await world.admin.call('createDomain', {}), 'createDomain', 431, missing('createdomain', 'name'), 4350);
    refused(
      await world.admin.call('createDomain', { name: child.name.toUpperCase(), parentdomainid: parent.id }),
      'createDomain',
      431,
      `Domain with name [${child.name.toUpperCase()}] already exists for the parent with ID [${parent.id}].`,
    );
    const ghost = crypto.randomUUID();
    refused(await world.admin.call('createDomain', { name: unique('x'), parentdomainid: ghost }), 'createDomain', 431, noEntity('createdomain', 'parentdomainid', ghost));
    refused(await world.admin.call('createDomain', { name: unique('x'), parentdomainid: 'nope' }), 'createDomain', 431, /parentdomainid/);
    refused(await world.admin.call('createDomain', { name: unique('x'), networkdomain: '-bad-.com' }), 'createDomain', 431, /^Invalid network domain/);
    expect(ok(await world.admin.call('listDomains', { listall: true }), 'listDomains').count).toBe(before);
  });

  it('lets a domain admin create below its domain only, and users not at all', async () => {
    const below = ok(await domainAdmin.client.call('createDomain', { name: unique('da'), parentdomainid: child.id }), 'createDomain').domain;
    expect(below.parentdomainid).toBe(child.id);
    // Without a parent, ROOT is assumed, which is beyond a domain admin (upstream).
    refused(await domainAdmin.client.call('createDomain', { name: unique('da') }), 'createDomain', 531, /does not have permission/);
    refused(
      await domainAdmin.client.call('createDomain', { name: unique('da'), parentdomainid: world.rootDomainId }),
      'createDomain',
      531,
      /does not have permission to operate within domain/,
      4365,
    );
    refused(await user.client.call('createDomain', { name: unique('u') }), 'createDomain', 432, /not available/);
  });

  it('lists all domains for the root admin, with count, paging, keyword, name, level and id', async () => {
    const all = ok(await world.admin.call('listDomains', {}), 'listDomains');
    expect(all.count).toBe(all.domain.length);
    expect(all.domain.map((d: any) => d.id)).toEqual(expect.arrayContaining([world.rootDomainId, parent.id, child.id, grandchild.id]));
    const root = all.domain.find((d: any) => d.id === world.rootDomainId);
    expect(root).toMatchObject({ name: 'ROOT', path: 'ROOT', level: 0, haschild: true, state: 'Active' });
    expect(root.parentdomainid).toBeUndefined();
    const first = ok(await world.admin.call('listDomains', { page: 1, pagesize: 2 }), 'listDomains');
    const second = ok(await world.admin.call('listDomains', { page: 2, pagesize: 2 }), 'listDomains');
    expect(first.count).toBe(all.count);
    expect(first.domain).toHaveLength(2);
    expect(second.domain[0].id).not.toBe(first.domain[0].id);
    expect(ok(await world.admin.call('listDomains', { keyword: child.name.slice(0, 10) }), 'listDomains').domain.map((d: any) => d.id)).toContain(child.id);
    expect(ok(await world.admin.call('listDomains', { name: grandchild.name }), 'listDomains')).toMatchObject({ count: 1, domain: [{ id: grandchild.id }] });
    const levelThree = ok(await world.admin.call('listDomains', { level: 3 }), 'listDomains');
    expect(levelThree.domain.every((d: any) => d.level === 3)).toBe(true);
    expect(ok(await world.admin.call('listDomains', { id: child.id }), 'listDomains')).toMatchObject({ count: 1, domain: [{ id: child.id, haschild: true }] });
    expect(ok(await world.admin.call('listDomains', { name: 'no-such-domain' }), 'listDomains')).toEqual({});
    refused(await world.admin.call('listDomains', { details: 'all,bogus' }), 'listDomains', 431, 'The details parameter contains a non permitted value. The allowed values are [all, resource, min]');
  });

  it('scopes listDomains: a domain admin its subtree, a user its own domain', async () => {
    const own = ok(await domainAdmin.client.call('listDomains', {}), 'listDomains');
    expect(own.domain.map((d: any) => d.id)).toEqual([parent.id]);
    const subtree = ok(await domainAdmin.client.call('listDomains', { listall: true }), 'listDomains');
    expect(subtree.domain.every((d: any) => d.path.startsWith(parent.path))).toBe(true);
    expect(subtree.domain.map((d: any) => d.id)).toEqual(expect.arrayContaining([parent.id, child.id, grandchild.id]));
    refused(await domainAdmin.client.call('listDomains', { id: world.rootDomainId }), 'listDomains', 531, /does not have permission/);
    expect(ok(await user.client.call('listDomains', { listall: true }), 'listDomains').domain.map((d: any) => d.id)).toEqual([parent.id]);
    refused(await user.client.call('listDomains', { id: child.id }), 'listDomains', 531, /does not have permission/);
  });

  it('lists domain children, first level or the whole subtree', async () => {
    const first = ok(await world.admin.call('listDomainChildren', { id: parent.id }), 'listDomainChildren');
    expect(first.domain.every((d: any) => d.parentdomainid === parent.id)).toBe(true);
    expect(first.domain.map((d: any) => d.id)).toContain(child.id);
    const all = ok(await world.admin.call('listDomainChildren', { id: parent.id, isrecursive: true }), 'listDomainChildren');
    expect(all.domain.map((d: any) => d.id)).toEqual(expect.arrayContaining([child.id, grandchild.id]));
    expect(all.domain.map((d: any) => d.id)).not.toContain(parent.id);
    expect(ok(await world.admin.call('listDomainChildren', { id: grandchild.id }), 'listDomainChildren')).toEqual({});
    const mine = ok(await domainAdmin.client.call('listDomainChildren', {}), 'listDomainChildren');
    expect(mine.domain.map((d: any) => d.id)).toContain(child.id);
    refused(await domainAdmin.client.call('listDomainChildren', { id: world.rootDomainId }), 'listDomainChildren', 531, /does not have permission/);
    refused(await user.client.call('listDomainChildren', {}), 'listDomainChildren', 432, /not available/);
  });

  it('renames a domain (paths below follow) and changes its network domain; ROOT keeps its name', async () => {
    const target = await makeDomain(world.admin, unique('ren'));
    const below = await makeDomain(world.admin, unique('below'), target.id);
    const newName = unique('renamed');
    const updated = ok(await world.admin.call('updateDomain', { id: target.id, name: newName, networkdomain: 'ren.example.org' }), 'updateDomain').domain;
    expect(updated).toMatchObject({ id: target.id, name: newName, path: `ROOT/${newName}`, networkdomain: 'ren.example.org' });
    expect(ok(await world.admin.call('listDomains', { id: below.id }), 'listDomains').domain[0].path).toBe(`ROOT/${newName}/${below.name}`);
    refused(await world.admin.call('updateDomain', { id: world.rootDomainId, name: 'TOOR' }), 'updateDomain', 431, 'ROOT domain can not be edited with a new name');
    refused(
      await world.admin.call('updateDomain', { id: below.id, name: unique('x') }).then(async () => world.admin.call('updateDomain', { id: target.id, name: parent.name })),
      'updateDomain',
      431,
      `Failed to update specified domain id with name '${parent.name}' since it already exists in the system`,
    );
    refused(await world.admin.call('updateDomain', {}), 'updateDomain', 431, missing('updatedomain', 'id'));
    refused(await domainAdmin.client.call('updateDomain', { id: parent.id, name: unique('own') }), 'updateDomain', 531, /does not have permission/);
    const renamedChild = ok(await domainAdmin.client.call('updateDomain', { id: grandchild.id, networkdomain: 'gc.example.net' }), 'updateDomain').domain;
    expect(renamedChild.networkdomain).toBe('gc.example.net');
    expect(ok(await world.admin.call('listDomains', { id: parent.id }), 'listDomains').domain[0].name).toBe(parent.name);
  });

  it('refuses deleting ROOT, a domain outside the caller’s reach, and unknown ids', async () => {
    refused(await world.admin.call('deleteDomain', { id: world.rootDomainId }), 'deleteDomain', 531, "Can't delete ROOT domain", 4365);
    refused(await domainAdmin.client.call('deleteDomain', { id: parent.id }), 'deleteDomain', 531, /does not have permission/);
    const ghost = crypto.randomUUID();
    refused(await world.admin.call('deleteDomain', { id: ghost }), 'deleteDomain', 431, noEntity('deletedomain', 'id', ghost));
    refused(await user.client.call('deleteDomain', { id: child.id }), 'deleteDomain', 432, /not available/);
    expect(ok(await world.admin.call('listDomains', { id: parent.id }), 'listDomains').count).toBe(1);
  });

  it('fails the deleteDomain job with 536 when the domain still has accounts or child domains, changing nothing', async () => {
    const busy = await makeDomain(world.admin, unique('busy'));
    const sub = await makeDomain(world.admin, unique('sub'), busy.id);
    const member = await makeAccount(world.admin, { domainid: busy.id });
    const job = await finish(world.admin, await world.admin.call('deleteDomain', { id: busy.id }), 'deleteDomain');
    expect(job).toMatchObject({ jobstatus: 2, jobresultcode: 536, jobresult: { errorcode: 536 } });
    expect(job.jobresult.errortext).toContain(member.account.name);
    expect(job.jobresult.errortext).toContain(sub.name);
    expect(ok(await world.admin.call('listDomains', { id: busy.id }), 'listDomains').domain[0]).toMatchObject({ state: 'Active', haschild: true });
    expect(ok(await member.client.call('listAccounts', {}), 'listAccounts').account[0].id).toBe(member.account.id);
  });

  it('deletes an empty domain: the job goes from pending to succeeded with {success: true}', async () => {
    const empty = await makeDomain(world.admin, unique('empty'));
    const answer = await world.admin.call('deleteDomain', { id: empty.id });
    const { jobid } = ok(answer, 'deleteDomain');
    const first = ok(await world.admin.call('queryAsyncJobResult', { jobid }), 'queryAsyncJobResult');
    expect([0, 1]).toContain(first.jobstatus);
    const job = await world.admin.waitForJob(jobid);
    expect(job).toMatchObject({ jobstatus: 1, jobresultcode: 0, jobresult: { success: true } });
    expect(ok(await world.admin.call('listDomains', { name: empty.name }), 'listDomains')).toEqual({});
    refused(await world.admin.call('listDomains', { id: empty.id }), 'listDomains', 431, noEntity('listdomains', 'id', empty.id));
  });

  it('deletes a domain with cleanup: its child domains, their accounts and users go too', async () => {
    const top = await makeDomain(world.admin, unique('top'));
    const sub = await makeDomain(world.admin, unique('sub'), top.id);
    const a = await makeAccount(world.admin, { domainid: top.id });
    const b = await makeAccount(world.admin, { domainid: sub.id, accounttype: 2 });
    const job = await finish(world.admin, await world.admin.call('deleteDomain', { id: top.id, cleanup: true }), 'deleteDomain');
    expect(job).toMatchObject({ jobstatus: 1, jobresult: { success: true } });
    for (const id of [top.id, sub.id]) refused(await world.admin.call('listDomains', { id }), 'listDomains', 431, /entity does not exist/);
    refused(await world.admin.call('listAccounts', { id: a.account.id }), 'listAccounts', 431, /entity does not exist/);
    refused(await world.admin.call('listUsers', { id: b.user.id }), 'listUsers', 431, /entity does not exist/);
    // Their API keys no longer sign anything.
    expect((await a.client.call('listAccounts', {})).status).toBe(401);
    const events = ok(await world.admin.call('listEvents', { type: 'DOMAIN.DELETE', listall: true }), 'listEvents');
    expect(events.event.some((event: any) => event.resourceid === top.id || event.description.includes(top.id))).toBe(true);
  });

  it('lets a domain admin delete a domain below its own', async () => {
    const mine = await makeDomain(domainAdmin.client, unique('mine'), parent.id);
    const job = await finish(domainAdmin.client, await domainAdmin.client.call('deleteDomain', { id: mine.id }), 'deleteDomain');
    expect(job.jobstatus).toBe(1);
  });
});
