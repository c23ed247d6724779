// Users through /client/api: createUser, listUsers, updateUser, deleteUser, disable/enable/lock and
// API keys (registerUserKeys, getUserKeys), with upstream's fields, scoping and refusals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../support/client.ts';
import { finish, makeAccount, makeDomain, missing, noEntity, ok, refused, startWorld, unique, type Member, type World } from './identity-fixtures.ts';

describe('users', () => {
  let world: World;
  let domain: any;
  let other: any;
  let domainAdmin: Member;
  let user: Member;
  let otherUser: Member;

  const newUser = (by: ApiClient, account: string, domainid: string, extra: Record<string, string> = {}) =>
    by.call('createUser', { account, domainid, username: unique('usr'), password: 'pass-1', firstname: 'Ada', lastname: 'Lovelace', email: 'ada@example.com', ...extra });

  beforeAll(async () => {
    world = await startWorld();
    domain = await makeDomain(world.admin, unique('usr'));
    other = await makeDomain(world.admin, unique('oth'));
    domainAdmin = await makeAccount(world.admin, { accounttype: 2, domainid: domain.id });
    user = await makeAccount(world.admin, { domainid: domain.id });
    otherUser = await makeAccount(world.admin, { domainid: other.id });
  });
  afterAll(async () => {
    await world?.runtime.stop();
  });

  it('creates a user in an existing account, with upstream’s UserResponse and a USER.CREATE event', async () => {
    const answer = await newUser(world.admin, user.account.name, domain.id, { timezone: 'UTC' });
    const created = ok(answer, 'createUser').user;
    expect(created).toMatchObject({
      username: expect.stringMatching(/^usr-/),
      firstname: 'Ada',
      lastname: 'Lovelace',
      email: 'ada@example.com',
      state: 'enabled',
      account: user.account.name,
      accountid: user.account.id,
      accounttype: 0,
      roletype: 'User',
      domainid: domain.id,
      domain: domain.name,
      timezone: 'UTC',
      usersource: 'native',
      isdefault: false,
    });
    expect(JSON.stringify(answer.body)).not.toMatch(/pass-1|password|secretkey/);
    const events = ok(await world.admin.call('listEvents', { listall: true, type: 'USER.CREATE' }), 'listEvents').event;
    expect(events.some((e: any) => e.resourceid === created.id)).toBe(true);
  });

  it('refuses createUser with missing parameters, an unknown account, a taken username, or out of reach; changing nothing', async () => {
    const before = ok(await world.admin.call('listUsers', { domainid: domain.id }), 'listUsers').count;
    for (const name of ['account', 'username', 'password', 'firstname', 'lastname', 'email']) {
      const params: Record<string, string> = { account: user.account.name, domainid: domain.id, username: unique('x'), password: 'p', firstname: 'f', lastname: 'l', email: 'e@x' };
      delete params[name];
      refused(await world.admin.call('createUser', params), 'createUser', 431, missing('createuser', name));
    }
    refused(await newUser(world.admin, 'no-such-account', domain.id), 'createUser', 431, `Unable to find account no-such-account in domain ${domain.path} to create user`);
    refused(await newUser(world.admin, user.account.name, domain.id, { username: user.user.username }), 'createUser', 530, `The user ${user.user.username} already exists in domain ${domain.id}`);
    refused(await newUser(domainAdmin.client, otherUser.account.name, other.id), 'createUser', 531, /does not have permission/);
    refused(await newUser(user.client, user.account.name, domain.id), 'createUser', 432, /not available/);
    expect(ok(await world.admin.call('listUsers', { domainid: domain.id }), 'listUsers').count).toBe(before);
  });

  it('lists users: by id, username, account, domain, state, keyword and pages; passwords and secret keys never shown', async () => {
    const all = ok(await world.admin.call('listUsers', { listall: true }), 'listUsers');
    expect(all.count).toBe(all.user.length);
    expect(all.user.map((u: any) => u.id)).toEqual(expect.arrayContaining([user.user.id, otherUser.user.id, domainAdmin.user.id]));
    expect(JSON.stringify(all)).not.toMatch(/"password"|"secretkey"/);
    expect(all.user.find((u: any) => u.id === user.user.id).apikey).toEqual(expect.any(String));
    expect(ok(await world.admin.call('listUsers', {}), 'listUsers')).toMatchObject({ count: 1, user: [{ username: 'admin', isdefault: true }] });
    expect(ok(await world.admin.call('listUsers', { id: otherUser.user.id }), 'listUsers')).toMatchObject({ count: 1, user: [{ id: otherUser.user.id }] });
    expect(ok(await world.admin.call('listUsers', { listall: true, username: otherUser.user.username }), 'listUsers').user[0].id).toBe(otherUser.user.id);
    const inAccount = ok(await world.admin.call('listUsers', { account: user.account.name, domainid: domain.id }), 'listUsers');
    expect(inAccount.user.every((u: any) => u.accountid === user.account.id)).toBe(true);
    expect(ok(await world.admin.call('listUsers', { domainid: other.id }), 'listUsers').user.map((u: any) => u.id)).toEqual([otherUser.user.id]);
    expect(ok(await world.admin.call('listUsers', { listall: true, keyword: otherUser.user.username.slice(0, 12) }), 'listUsers').user[0].id).toBe(otherUser.user.id);
    expect(ok(await world.admin.call('listUsers', { listall: true, accounttype: 2 }), 'listUsers').user.every((u: any) => u.accounttype === 2)).toBe(true);
    expect(ok(await world.admin.call('listUsers', { listall: true, state: 'locked' }), 'listUsers')).toEqual({});
    const page = ok(await world.admin.call('listUsers', { listall: true, page: 2, pagesize: 2 }), 'listUsers');
    expect(page).toEqual({ count: all.count, user: all.user.slice(2, 4) });
    refused(await world.admin.call('listUsers', { account: 'nobody', domainid: domain.id }), 'listUsers', 431, /could not find account nobody/);
  });

  it('scopes listUsers: a domain admin its subtree, a user only itself', async () => {
    const seen = ok(await domainAdmin.client.call('listUsers', { listall: true }), 'listUsers');
    expect(seen.user.every((u: any) => u.domainid === domain.id)).toBe(true);
    expect(JSON.stringify(seen)).not.toContain(otherUser.user.id);
    refused(await domainAdmin.client.call('listUsers', { domainid: other.id }), 'listUsers', 531, /does not have permission/);
    refused(await domainAdmin.client.call('listUsers', { account: otherUser.account.name, domainid: other.id }), 'listUsers', 531, /does not have permission/);
    for (const params of [{}, { listall: true }, { domainid: domain.id, listall: true, isrecursive: true }] as Record<string, string | boolean>[]) {
      expect(ok(await user.client.call('listUsers', params), 'listUsers').user.map((u: any) => u.id)).toEqual([user.user.id]);
    }
    refused(await user.client.call('listUsers', { id: domainAdmin.user.id }), 'listUsers', 531, 'Calling user is not authorized to see the user requested by id');
  });

  it('updates a user’s names, email, timezone and username, and records USER.UPDATE', async () => {
    const target = ok(await newUser(world.admin, user.account.name, domain.id), 'createUser').user;
    const username = unique('renamed');
    const updated = ok(
      await domainAdmin.client.call('updateUser', { id: target.id, firstname: 'Grace', lastname: 'Hopper', email: 'grace@example.com', timezone: 'Asia/Tokyo', username }),
      'updateUser',
    ).user;
    expect(updated).toMatchObject({ id: target.id, firstname: 'Grace', lastname: 'Hopper', email: 'grace@example.com', timezone: 'Asia/Tokyo', username });
    refused(await world.admin.call('updateUser', { id: target.id, username: user.user.username }), 'updateUser', 431, `The user ${user.user.username} already exists in domain ${domain.id}`);
    refused(await world.admin.call('updateUser', { id: target.id, firstname: '   ' }), 'updateUser', 431, 'Firstname cannot be empty.');
    refused(await world.admin.call('updateUser', {}), 'updateUser', 431, missing('updateuser', 'id'));
    refused(await domainAdmin.client.call('updateUser', { id: otherUser.user.id, firstname: 'x' }), 'updateUser', 531, /no way to confirm/);
    refused(await user.client.call('updateUser', { id: domainAdmin.user.id, firstname: 'x' }), 'updateUser', 531, /no way to confirm/);
    expect(ok(await world.admin.call('listUsers', { id: target.id }), 'listUsers').user[0].username).toBe(username);
    const events = ok(await world.admin.call('listEvents', { listall: true, type: 'USER.UPDATE' }), 'listEvents').event;
    expect(events.some((e: any) => e.resourceid === target.id)).toBe(true);
  });

  it('changes passwords: a user must give its current one, an admin need not', async () => {
    const member = await makeAccount(world.admin, { domainid: domain.id });
    const login = (password: string) => new ApiClient(world.runtime.apiUrl).login(member.user.username, password, domain.path.replace(/^ROOT/, ''));
    refused(await member.client.call('updateUser', { id: member.user.id, password: 'new-1' }), 'updateUser', 431, 'To set a new password the current password must be provided.');
    refused(await member.client.call('updateUser', { id: member.user.id, password: 'new-1', currentpassword: 'wrong' }), 'updateUser', 431, 'Current password is incorrect.');
    expect((await login(member.password)).status).toBe(200);
    ok(await member.client.call('updateUser', { id: member.user.id, password: 'new-1', currentpassword: member.password }), 'updateUser');
    expect((await login('new-1')).status).toBe(200);
    expect((await login(member.password)).status).toBe(531);
    ok(await domainAdmin.client.call('updateUser', { id: member.user.id, password: 'new-2' }), 'updateUser');
    expect((await login('new-2')).status).toBe(200);
  });

  it('registers and reads API keys: the user itself or an admin over it, nobody else', async () => {
    const member = await makeAccount(world.admin, { domainid: domain.id });
    const answer = await member.client.call('registerUserKeys', { id: member.user.id });
    expect(answer.body).toEqual({ registeruserkeysresponse: { userkeys: { apikey: expect.any(String), secretkey: expect.any(String) } } });
    const keys = answer.body.registeruserkeysresponse.userkeys;
    // The old keys stop working, the new ones sign.
    expect((await member.client.call('listUsers', {})).status).toBe(401);
    const renewed = new ApiClient(world.runtime.apiUrl, keys);
    expect((await renewed.call('listUsers', {})).status).toBe(200);
    expect((await renewed.call('getUserKeys', { id: member.user.id })).body).toEqual({ getuserkeysresponse: { userkeys: keys } });
    expect(ok(await domainAdmin.client.call('getUserKeys', { id: member.user.id }), 'getUserKeys').userkeys).toEqual(keys);
    refused(await user.client.call('getUserKeys', { id: member.user.id }), 'getUserKeys', 531, /not allowed to access the keys/);
    refused(await user.client.call('registerUserKeys', { id: member.user.id }), 'registerUserKeys', 531, /not allowed to access the keys/);
    refused(await domainAdmin.client.call('getUserKeys', { id: otherUser.user.id }), 'getUserKeys', 531, /no way to confirm/);
    const rootAdmin = ok(await world.admin.call('listUsers', {}), 'listUsers').user[0];
    refused(await domainAdmin.client.call('getUserKeys', { id: rootAdmin.id }), 'getUserKeys', 531, /no way to confirm|lower role type/);
    const ghost = crypto.randomUUID();
    refused(await world.admin.call('getUserKeys', { id: ghost }), 'getUserKeys', 431, noEntity('getuserkeys', 'id', ghost));
    const events = ok(await world.admin.call('listEvents', { listall: true, type: 'REGISTER.USER.KEY' }), 'listEvents').event;
    expect(events.some((e: any) => e.resourceid === member.user.id)).toBe(true);
    expect((await renewed.call('getUserKeys', { id: member.user.id })).status).toBe(200);
  });

  it('sets chosen keys with updateUser, refusing half a pair or a key already taken', async () => {
    const member = await makeAccount(world.admin, { domainid: domain.id });
    refused(await world.admin.call('updateUser', { id: member.user.id, userapikey: 'only-one' }), 'updateUser', 431, 'Please provide a userApiKey/userSecretKey pair');
    refused(
      await world.admin.call('updateUser', { id: member.user.id, userapikey: user.client.keys!.apikey, usersecretkey: 'x' }),
      'updateUser',
      431,
      `The API key [${user.client.keys!.apikey}] already exists in the system. Please provide a unique key.`,
    );
    const chosen = { apikey: unique('chosen-api-key'), secretkey: unique('chosen-secret') };
    ok(await world.admin.call('updateUser', { id: member.user.id, userapikey: chosen.apikey, usersecretkey: chosen.secretkey }), 'updateUser');
    expect((await new ApiClient(world.runtime.apiUrl, chosen).call('listUsers', {})).status).toBe(200);
  });

  it('disables (async), locks and enables a user; a disabled or locked user is refused', async () => {
    const member = await makeAccount(world.admin, { domainid: domain.id });
    const job = await finish(domainAdmin.client, await domainAdmin.client.call('disableUser', { id: member.user.id }), 'disableUser');
    expect(job).toMatchObject({ jobstatus: 1, jobresult: { user: { id: member.user.id, state: 'disabled' } } });
    expect((await member.client.call('listUsers', {})).status).toBe(401);
    refused(await world.admin.call('lockUser', { id: member.user.id }), 'lockUser', 530, /only an enabled user can be locked/);
    expect(ok(await world.admin.call('enableUser', { id: member.user.id }), 'enableUser').user.state).toBe('enabled');
    expect((await member.client.call('listUsers', {})).status).toBe(200);
    expect(ok(await world.admin.call('lockUser', { id: member.user.id }), 'lockUser').user.state).toBe('locked');
    expect((await member.client.call('listUsers', {})).status).toBe(401);
    // Its account's only user locked: upstream locks the account too; enableUser enables both.
    expect(ok(await world.admin.call('listAccounts', { id: member.account.id }), 'listAccounts').account[0].state).toBe('locked');
    ok(await world.admin.call('enableUser', { id: member.user.id }), 'enableUser');
    expect(ok(await world.admin.call('listAccounts', { id: member.account.id }), 'listAccounts').account[0].state).toBe('enabled');
    refused(await user.client.call('disableUser', { id: member.user.id }), 'disableUser', 432, /not available/);
    refused(await domainAdmin.client.call('lockUser', { id: otherUser.user.id }), 'lockUser', 531, /no way to confirm/);
    const events = ok(await world.admin.call('listEvents', { listall: true }), 'listEvents').event.filter((e: any) => e.resourceid === member.user.id);
    expect(events.map((e: any) => e.type)).toEqual(expect.arrayContaining(['USER.DISABLE', 'USER.ENABLE', 'USER.LOCK']));
  });

  it('deletes a user; never the caller itself or the default admin user', async () => {
    const target = ok(await newUser(world.admin, user.account.name, domain.id), 'createUser').user;
    expect(ok(await domainAdmin.client.call('deleteUser', { id: target.id }), 'deleteUser')).toEqual({ success: true });
    refused(await world.admin.call('listUsers', { id: target.id }), 'listUsers', 431, /entity does not exist/);
    refused(await domainAdmin.client.call('deleteUser', { id: domainAdmin.user.id }), 'deleteUser', 431, /^The caller is requesting to delete itself/);
    const rootAdmin = ok(await world.admin.call('listUsers', {}), 'listUsers').user[0];
    const other = await makeAccount(world.admin, { accounttype: 1 });
    refused(await other.client.call('deleteUser', { id: rootAdmin.id }), 'deleteUser', 431, "The user is default and can't be (re)moved");
    refused(await domainAdmin.client.call('deleteUser', { id: otherUser.user.id }), 'deleteUser', 531, /no way to confirm/);
    refused(await user.client.call('deleteUser', { id: user.user.id }), 'deleteUser', 432, /not available/);
    expect(ok(await world.admin.call('listUsers', { id: otherUser.user.id }), 'listUsers').count).toBe(1);
    const events = ok(await world.admin.call('listEvents', { listall: true, type: 'USER.DELETE' }), 'listEvents').event;
    expect(events.some((e: any) => e.resourceid === target.id)).toBe(true);
  });
});
