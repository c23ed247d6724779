// Accounts through /client/api: createAccount, listAccounts, updateAccount, disable/enable/lock and
// the deleteAccount job, with upstream's fields, scoping and refusals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../support/client.ts';
import { finish, makeAccount, makeDomain, missing, noEntity, ok, refused, startWorld, unique, type Member, type World } from './identity-fixtures.ts';

describe('accounts', () => {
  let world: World;
  let domain: any;
  let sub: any;
  let other: any;
  let domainAdmin: Member;
  let user: Member;
  let subUser: Member;
  let otherUser: Member;
  let roles: any[];

  beforeAll(async () => {
    world = await startWorld();
    domain = await makeDomain(world.admin, unique('acc'));
    sub = await makeDomain(world.admin, unique('accsub'), domain.id);
    other = await makeDomain(world.admin, unique('other'));
    domainAdmin = await makeAccount(world.admin, { accounttype: 2, domainid: domain.id });
    user = await makeAccount(world.admin, { domainid: domain.id });
    subUser = await makeAccount(world.admin, { domainid: sub.id });
    otherUser = await makeAccount(world.admin, { domainid: other.id });
    roles = ok(await world.admin.call('listRoles', {}), 'listRoles').role;
  });
  afterAll(async () => {
    await world?.runtime.stop();
  });

  const roleNamed = (name: string) => roles.find((role) => role.name === name);

  it('creates an account with its first user, in upstream’s AccountResponse and UserResponse fields', async () => {
    const username = unique('alice');
    const answer = await world.admin.call('createAccount', {
      username,
      password: 'secret-pass',
      firstname: 'Alice',
      lastname: 'Liddell',
      email: 'alice@example.com',
      accounttype: 0,
      domainid: domain.id,
      timezone: 'Europe/Paris',
      networkdomain: 'alice.example.com',
    });
    const account = ok(answer, 'createAccount').account;
    expect(account).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: username,
      accounttype: 0,
      roleid: roleNamed('User').id,
      roletype: 'User',
      rolename: 'User',
      domainid: domain.id,
      domain: domain.name,
      domainpath: domain.path,
      state: 'enabled',
      iscleanuprequired: false,
      created: expect.stringMatching(/\+0000$/),
      user: [
        {
          id: expect.stringMatching(/^[0-9a-f-]{36}$/),
          username,
          firstname: 'Alice',
          lastname: 'Liddell',
          email: 'alice@example.com',
          created: expect.any(String),
          state: 'enabled',
          account: username,
          accounttype: 0,
          usersource: 'native',
          roleid: roleNamed('User').id,
          roletype: 'User',
          rolename: 'User',
          domainid: domain.id,
          domain: domain.name,
          timezone: 'Europe/Paris',
          accountid: account.id,
          iscallerchilddomain: true,
          isdefault: false,
          is2faenabled: false,
          is2famandated: false,
        },
      ],
      networkdomain: 'alice.example.com',
      isdefault: false,
      hasannotations: false,
    });
    expect(JSON.stringify(answer.body)).not.toContain('secret-pass');
    // The new user can log in.
    const session = new ApiClient(world.runtime.apiUrl);
    expect((await session.login(username, 'secret-pass', domain.path.replace(/^ROOT/, ''))).status).toBe(200);
    const events = ok(await world.admin.call('listEvents', { listall: true }), 'listEvents').event;
    expect(events.some((e: any) => e.type === 'ACCOUNT.CREATE' && e.resourceid === account.id)).toBe(true);
    expect(events.some((e: any) => e.type === 'USER.CREATE' && e.resourceid === account.user[0].id)).toBe(true);
  });

  it('maps accounttype to the built-in roles, prefers roleid, and names the account after the user by default', async () => {
    const da = ok(await world.admin.call('createAccount', { username: unique('u'), password: 'p', firstname: 'f', lastname: 'l', email: 'e@x', accounttype: 2, domainid: domain.id }), 'createAccount').account;
    expect(da).toMatchObject({ accounttype: 2, roletype: 'DomainAdmin', rolename: 'Domain Admin' });
    const viaRole = ok(
      await world.admin.call('createAccount', { username: unique('u'), account: unique('named'), password: 'p', firstname: 'f', lastname: 'l', email: 'e@x', roleid: roleNamed('Resource Admin').id, accounttype: 0 }),
      'createAccount',
    ).account;
    expect(viaRole).toMatchObject({ accounttype: 3, roletype: 'ResourceAdmin', domainid: world.rootDomainId });
    expect(viaRole.name).not.toBe(viaRole.user[0].username);
    const chosen = { accountid: crypto.randomUUID(), userid: crypto.randomUUID() };
    const withIds = ok(await world.admin.call('createAccount', { username: unique('u'), password: 'p', firstname: 'f', lastname: 'l', email: 'e@x', accounttype: 0, ...chosen }), 'createAccount').account;
    expect(withIds.id).toBe(chosen.accountid);
    expect(withIds.user[0].id).toBe(chosen.userid);
  });

  it('refuses createAccount with missing or invalid parameters and duplicates, changing nothing', async () => {
    const base = { username: unique('dup'), password: 'p', firstname: 'f', lastname: 'l', email: 'e@x', accounttype: 0, domainid: domain.id };
    const before = ok(await world.admin.call('listAccounts', { domainid: domain.id }), 'listAccounts').count;
    for (const name of ['username', 'password', 'firstname', 'lastname', 'email']) {
      const { [name]: _gone, ...rest } = base as Record<string, unknown>;
      refused(await world.admin.call('createAccount', rest as never), 'createAccount', 431, missing('createaccount', name));
    }
    const { accounttype: _t, ...untyped } = base;
    refused(await world.admin.call('createAccount', untyped), 'createAccount', 431, 'Neither account type and role ID are not provided');
    refused(await world.admin.call('createAccount', { ...base, accounttype: 'x' }), 'createAccount', 431, /accounttype/);
    const ghost = crypto.randomUUID();
    refused(await world.admin.call('createAccount', { ...base, roleid: ghost }), 'createAccount', 431, noEntity('createaccount', 'roleid', ghost));
    refused(await world.admin.call('createAccount', { ...base, domainid: ghost }), 'createAccount', 431, noEntity('createaccount', 'domainid', ghost));
    refused(await world.admin.call('createAccount', { ...base, accounttype: 1 }), 'createAccount', 431, /unable to create user of admin role type in non-ROOT domain/);
    refused(await world.admin.call('createAccount', { ...base, username: user.user.username }), 'createAccount', 431, `The user ${user.user.username} already exists in domain ${domain.path}`);
    refused(await world.admin.call('createAccount', { ...base, account: user.account.name }), 'createAccount', 431, `The specified account: ${user.account.name} already exists`);
    refused(await world.admin.call('createAccount', { ...base, networkdomain: 'bad_domain!' }), 'createAccount', 431, /^Invalid network domain/);
    expect(ok(await world.admin.call('listAccounts', { domainid: domain.id }), 'listAccounts').count).toBe(before);
  });

  it('lets a domain admin create accounts in its subtree only, never above its own role type; users none', async () => {
    const made = await makeAccount(domainAdmin.client, { domainid: sub.id });
    expect(made.account.domainid).toBe(sub.id);
    refused(await domainAdmin.client.call('createAccount', { username: unique('x'), password: 'p', firstname: 'f', lastname: 'l', email: 'e@x', accounttype: 0, domainid: other.id }), 'createAccount', 531, /does not have permission to operate within domain/);
    refused(
      await domainAdmin.client.call('createAccount', { username: unique('x'), password: 'p', firstname: 'f', lastname: 'l', email: 'e@x', roleid: roleNamed('Resource Admin').id, domainid: domain.id }),
      'createAccount',
      531,
      /has a lower role type than the user account/,
    );
    refused(await user.client.call('createAccount', { username: unique('x'), password: 'p', firstname: 'f', lastname: 'l', email: 'e@x', accounttype: 0 }), 'createAccount', 432, /not available/);
  });

  it('lists accounts: own account by default, a domain with domainid, everything with listall; filters and paging', async () => {
    const mine = ok(await world.admin.call('listAccounts', {}), 'listAccounts');
    expect(mine).toMatchObject({ count: 1, account: [{ name: 'admin', isdefault: true, accounttype: 1 }] });
    const inDomain = ok(await world.admin.call('listAccounts', { domainid: domain.id }), 'listAccounts');
    expect(inDomain.account.every((a: any) => a.domainid === domain.id)).toBe(true);
    expect(inDomain.account.map((a: any) => a.id)).toEqual(expect.arrayContaining([user.account.id, domainAdmin.account.id]));
    const recursive = ok(await world.admin.call('listAccounts', { domainid: domain.id, isrecursive: true }), 'listAccounts');
    expect(recursive.account.map((a: any) => a.id)).toContain(subUser.account.id);
    const all = ok(await world.admin.call('listAccounts', { listall: true }), 'listAccounts');
    expect(all.account.map((a: any) => a.id)).toEqual(expect.arrayContaining([otherUser.account.id, subUser.account.id, user.account.id]));
    const paged = ok(await world.admin.call('listAccounts', { listall: true, page: 2, pagesize: 2 }), 'listAccounts');
    expect(paged.count).toBe(all.count);
    expect(paged.account).toEqual(all.account.slice(2, 4));
    expect(ok(await world.admin.call('listAccounts', { listall: true, name: user.account.name }), 'listAccounts')).toMatchObject({ count: 1, account: [{ id: user.account.id }] });
    expect(ok(await world.admin.call('listAccounts', { listall: true, keyword: otherUser.account.name.slice(0, 12) }), 'listAccounts').account[0].id).toBe(otherUser.account.id);
    const admins = ok(await world.admin.call('listAccounts', { listall: true, accounttype: 2 }), 'listAccounts');
    expect(admins.account.every((a: any) => a.accounttype === 2)).toBe(true);
    expect(ok(await world.admin.call('listAccounts', { listall: true, roleid: roleNamed('Domain Admin').id }), 'listAccounts').count).toBe(admins.count);
    expect(ok(await world.admin.call('listAccounts', { listall: true, state: 'locked' }), 'listAccounts')).toEqual({});
    expect(ok(await world.admin.call('listAccounts', { id: otherUser.account.id }), 'listAccounts').account[0].user[0].id).toBe(otherUser.user.id);
  });

  it('scopes listAccounts: a domain admin sees its subtree, a user only its own account', async () => {
    const subtree = ok(await domainAdmin.client.call('listAccounts', { listall: true }), 'listAccounts');
    expect(subtree.account.every((a: any) => a.domainpath.startsWith(domain.path))).toBe(true);
    expect(subtree.account.map((a: any) => a.id)).toContain(subUser.account.id);
    expect(subtree.account.map((a: any) => a.id)).not.toContain(otherUser.account.id);
    refused(await domainAdmin.client.call('listAccounts', { id: otherUser.account.id }), 'listAccounts', 531, /no way to confirm/);
    refused(await domainAdmin.client.call('listAccounts', { domainid: other.id }), 'listAccounts', 531, /does not have permission/);
    for (const params of [{}, { listall: true }, { domainid: domain.id, listall: true }, { keyword: '' }] as Record<string, string | boolean>[]) {
      const seen = ok(await user.client.call('listAccounts', params), 'listAccounts');
      expect(seen.account.map((a: any) => a.id)).toEqual([user.account.id]);
    }
    refused(await user.client.call('listAccounts', { id: domainAdmin.account.id }), 'listAccounts', 531, /no way to confirm/);
    const text = JSON.stringify(ok(await user.client.call('listAccounts', { listall: true }), 'listAccounts'));
    expect(text).not.toContain(domainAdmin.account.id);
    expect(text).not.toContain(otherUser.account.id);
  });

  it('updates an account: new name, network domain and role; refuses what it must, changing nothing', async () => {
    const target = await makeAccount(world.admin, { domainid: domain.id });
    const newname = unique('renamed');
    const updated = ok(
      await world.admin.call('updateAccount', { id: target.account.id, newname, networkdomain: 'new.example.com', roleid: roleNamed('Domain Admin').id }),
      'updateAccount',
    ).account;
    expect(updated).toMatchObject({ id: target.account.id, name: newname, networkdomain: 'new.example.com', roletype: 'DomainAdmin', accounttype: 2 });
    const byName = ok(await world.admin.call('updateAccount', { account: newname, domainid: domain.id, roleid: roleNamed('User').id }), 'updateAccount').account;
    expect(byName).toMatchObject({ id: target.account.id, roletype: 'User' });
    refused(await world.admin.call('updateAccount', { id: target.account.id, newname: user.account.name }), 'updateAccount', 431, /proposed name/);
    refused(await world.admin.call('updateAccount', { id: target.account.id, roleid: roleNamed('Root Admin').id }), 'updateAccount', 531, /does not belong to the ROOT domain/);
    refused(await world.admin.call('updateAccount', { newname: 'x' }), 'updateAccount', 431, 'Unable to find account by accountId: null OR by name: null in domain null');
    refused(await domainAdmin.client.call('updateAccount', { id: otherUser.account.id, newname: 'x' }), 'updateAccount', 531, /does not have permission/);
    refused(await user.client.call('updateAccount', { id: user.account.id, newname: 'x' }), 'updateAccount', 432, /not available/);
    expect(ok(await world.admin.call('listAccounts', { id: target.account.id }), 'listAccounts').account[0].name).toBe(newname);
  });

  it('disables (async), locks and enables an account; its users are refused while it is not enabled', async () => {
    const target = await makeAccount(world.admin, { domainid: domain.id });
    refused(await world.admin.call('disableAccount', { id: target.account.id }), 'disableAccount', 431, missing('disableaccount', 'lock'));
    const job = await finish(world.admin, await world.admin.call('disableAccount', { id: target.account.id, lock: false }), 'disableAccount');
    expect(job).toMatchObject({ jobstatus: 1, jobresult: { account: { id: target.account.id, state: 'disabled' } } });
    expect((await target.client.call('listAccounts', {})).status).toBe(401);
    const enabled = ok(await world.admin.call('enableAccount', { id: target.account.id }), 'enableAccount').account;
    expect(enabled.state).toBe('enabled');
    expect((await target.client.call('listAccounts', {})).status).toBe(200);
    const locked = await finish(domainAdmin.client, await domainAdmin.client.call('disableAccount', { account: target.account.name, domainid: domain.id, lock: true }), 'disableAccount');
    expect(locked.jobresult.account.state).toBe('locked');
    expect((await target.client.call('listAccounts', {})).status).toBe(401);
    ok(await world.admin.call('enableAccount', { account: target.account.name, domainid: domain.id }), 'enableAccount');
    const viaLock = ok(await world.admin.call('lockAccount', { account: target.account.name, domainid: domain.id }), 'lockAccount').account;
    expect(viaLock.state).toBe('locked');
    refused(await world.admin.call('lockAccount', { account: target.account.name }), 'lockAccount', 431, missing('lockaccount', 'domainid'));
    ok(await world.admin.call('enableAccount', { id: target.account.id }), 'enableAccount');
    const events = ok(await world.admin.call('listEvents', { listall: true }), 'listEvents').event;
    expect(events.filter((e: any) => e.resourceid === target.account.id).map((e: any) => e.type)).toEqual(expect.arrayContaining(['ACCOUNT.DISABLE', 'ACCOUNT.ENABLE']));
  });

  it('never disables or deletes the caller’s own account or the admin account of ROOT', async () => {
    const mine = ok(await world.admin.call('listAccounts', {}), 'listAccounts').account[0];
    refused(await world.admin.call('disableAccount', { id: mine.id, lock: false }), 'disableAccount', 431, "The account is default and can't be disabled or locked");
    refused(await world.admin.call('deleteAccount', { id: mine.id }), 'deleteAccount', 431, "The account is default and can't be removed");
    refused(await domainAdmin.client.call('disableAccount', { id: domainAdmin.account.id, lock: true }), 'disableAccount', 431, /^Disabling of your own account is not allowed/);
    refused(await domainAdmin.client.call('deleteAccount', { id: domainAdmin.account.id }), 'deleteAccount', 431, /^Deletion of your own account is not allowed/);
    refused(await domainAdmin.client.call('deleteAccount', { id: mine.id }), 'deleteAccount', 531, /no way to confirm/);
    refused(await domainAdmin.client.call('disableAccount', { id: otherUser.account.id, lock: true }), 'disableAccount', 531, /no way to confirm/);
    refused(await user.client.call('deleteAccount', { id: subUser.account.id }), 'deleteAccount', 432, /not available/);
    refused(await world.admin.call('deleteAccount', {}), 'deleteAccount', 431, missing('deleteaccount', 'id'));
    expect(ok(await domainAdmin.client.call('listAccounts', {}), 'listAccounts').account[0].state).toBe('enabled');
    expect(ok(await world.admin.call('listAccounts', { id: otherUser.account.id }), 'listAccounts').account[0].state).toBe('enabled');
  });

  it('deletes an account and its users through a job; their keys stop working', async () => {
    const target = await makeAccount(domainAdmin.client, { domainid: sub.id });
    const second = ok(
      await world.admin.call('createUser', { account: target.account.name, domainid: sub.id, username: unique('second'), password: 'p', firstname: 'f', lastname: 'l', email: 'e@x' }),
      'createUser',
    ).user;
    const job = await finish(domainAdmin.client, await domainAdmin.client.call('deleteAccount', { id: target.account.id }), 'deleteAccount');
    expect(job).toMatchObject({ jobstatus: 1, jobresultcode: 0, jobresult: { success: true }, jobinstancetype: 'Account', jobinstanceid: target.account.id });
    refused(await world.admin.call('listAccounts', { id: target.account.id }), 'listAccounts', 431, /entity does not exist/);
    for (const id of [target.user.id, second.id]) refused(await world.admin.call('listUsers', { id }), 'listUsers', 431, /entity does not exist/);
    expect((await target.client.call('listAccounts', {})).status).toBe(401);
    // The name is free again.
    await makeAccount(world.admin, { domainid: sub.id, username: target.user.username });
    const events = ok(await world.admin.call('listEvents', { listall: true, type: 'ACCOUNT.DELETE' }), 'listEvents').event;
    expect(events.some((e: any) => e.resourceid === target.account.id)).toBe(true);
  });
});
