// listEvents, listEventTypes, archiveEvents and deleteEvents: the login trail, filters and paging,
// archiving and deleting only what the caller may touch, and every refusal.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actorFor, getEvent, recordEvent, type Actor, type EventRecord } from '../../shared/db/events.ts';
import {
  createDomain,
  findUserByApiKey,
  getAccount,
  getDomain,
  type Domain,
  type User,
} from '../../shared/db/identity.ts';
import { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { REPO_ROOT, startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';

const DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$/;

let runtime: RunningRuntime;
let admin: ApiClient;
let adminActor: Actor;
let root: Domain;

let alice: Member;
let bob: Member;
let subAdmin: Member;



beforeAll(async () => {
  runtime = await startRuntime();
  useRuntimeEndpoints(runtime);
  admin = new ApiClient(runtime.apiUrl, runtime.credentials);
  const adminUser = (await findUserByApiKey(runtime.credentials.apikey))!;
  root = (await getDomain(adminUser.domainId))!;
  adminActor = actorFor(adminUser, (await getAccount(adminUser.accountId))!, root);
  const sub = await createDomain({ name: 'sub', parent: root });
  [alice, bob, subAdmin] = await Promise.all([seedMember(runtime.apiUrl, 'alice', root, 'User'), seedMember(runtime.apiUrl, 'bob', root, 'User'), seedMember(runtime.apiUrl, 'subadmin', sub, 'Domain Admin')]);
});

afterAll(async () => {
  await runtime?.stop();
});

const list = async (client: ApiClient, params: Record<string, string | number | boolean> = {}) => {
  const answer = await client.call('listEvents', params);
  expect(answer.status).toBe(200);
  return answer.body.listeventsresponse as { count?: number; event?: any[] };
};
const ids = (response: { event?: any[] }) => (response.event ?? []).map((event) => event.id);
/** "yyyy-MM-dd HH:mm:ss" of an event's created time, upstream's second date format. */
const asParam = (created: string) => created.replace('T', ' ').replace('+0000', '');

describe('listEvents', () => {
  it('shows USER.LOGIN after a login and USER.LOGOUT after a logout, as upstream renders them', async () => {
    const session = new ApiClient(runtime.apiUrl);
    expect((await session.login('alice', alice.password)).status).toBe(200);
    const logins = await list(session, { type: 'USER.LOGIN' });
    expect(logins.count).toBe(1);
    expect(logins.event).toEqual([
      {
        id: expect.any(String),
        username: 'alice',
        type: 'USER.LOGIN',
        level: 'INFO',
        description: expect.stringMatching(/^user has logged in from IP Address \/.+/),
        account: 'alice',
        domainid: root.id,
        domain: 'ROOT',
        domainpath: 'ROOT',
        resourceid: alice.user.id,
        resourcetype: 'User',
        created: expect.stringMatching(DATE),
        state: 'Completed',
      },
    ]);
    expect(Object.keys(logins.event![0])).toEqual([
      'id', 'username', 'type', 'level', 'description', 'account', 'domainid', 'domain', 'domainpath', 'resourceid', 'resourcetype', 'created', 'state',
    ]);
    expect((await session.call('logout')).status).toBe(200);
    expect((await list(alice.client, { type: 'user.logout' })).event).toMatchObject([{ type: 'USER.LOGOUT', description: 'user has logged out' }]);
  });

  it('shows a user only its account’s events, and an admin everything only with listall', async () => {
    const adminSession = new ApiClient(runtime.apiUrl);
    expect((await adminSession.login('admin', runtime.credentials.password)).status).toBe(200);
    const adminLogin = (await list(admin, { type: 'USER.LOGIN' })).event![0];
    expect(adminLogin).toMatchObject({ username: 'admin', account: 'admin' });

    const aliceView = await list(alice.client, { listall: true, pagesize: -1 });
    expect(aliceView.event!.every((event) => event.account === 'alice')).toBe(true);
    expect(ids(aliceView)).not.toContain(adminLogin.id);
    // Naming another account's event by id finds nothing for a user.
    expect(await list(alice.client, { id: adminLogin.id })).toEqual({});
    const refused = await alice.client.call('listEvents', { account: 'admin' });
    expect(refused.status).toBe(531);
    expect(refused.body.listeventsresponse).toMatchObject({ errorcode: 531, cserrorcode: 4365 });
    // A domain admin of ROOT/sub sees nothing of ROOT's accounts.
    expect(ids(await list(subAdmin.client, { listall: true, pagesize: -1 }))).not.toContain(adminLogin.id);

    expect((await list(admin, { pagesize: -1 })).event!.every((event) => event.account === 'admin')).toBe(true);
    const everything = await list(admin, { listall: true, pagesize: -1 });
    expect(new Set(everything.event!.map((event) => event.account))).toEqual(new Set(['admin', 'alice']));
    const alices = await list(admin, { account: 'alice', domainid: root.id, pagesize: -1 });
    expect(alices.count).toBe(aliceView.count);
  });

  describe('filters', () => {
    let first: EventRecord[];
    let later: EventRecord;
    beforeAll(async () => {
      first = [
        await recordEvent(bob.actor, { type: 'VM.CREATE', description: 'Scheduled: deploying vm web-1', state: 'Scheduled' }),
        await recordEvent(bob.actor, { type: 'VM.CREATE', description: 'Error while deploying vm web-1: no capacity', level: 'ERROR' }),
        await recordEvent(bob.actor, { type: 'VM.START', description: 'starting vm db-1', level: 'WARN', resourceId: randomUUID(), resourceType: 'VirtualMachine' }),
      ];
      // The next second, so the date filters can tell them apart.
      await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 50));
      later = await recordEvent(bob.actor, { type: 'VOLUME.CREATE', description: 'creating volume data-1' });
    });

    it('lists newest first and pages with the total count', async () => {
      const all = await list(bob.client);
      expect(all.count).toBe(4);
      expect(ids(all)[0]).toBe(later.id);
      expect(ids(all).slice(1).sort()).toEqual(first.map((event) => event.id).sort());
      const page1 = await list(bob.client, { page: 1, pagesize: 3 });
      const page2 = await list(bob.client, { page: 2, pagesize: 3 });
      expect(page1.count).toBe(4);
      expect(page2.count).toBe(4);
      expect([...ids(page1), ...ids(page2)]).toEqual(ids(all));
    });

    it('filters by type and level (any case), keyword, id, resource and dates', async () => {
      expect(ids(await list(bob.client, { type: 'vm.create' })).sort()).toEqual([first[0].id, first[1].id].sort());
      expect(ids(await list(bob.client, { level: 'error' }))).toEqual([first[1].id]);
      expect(ids(await list(bob.client, { level: 'WARN' }))).toEqual([first[2].id]);
      // keyword: the type, the description or the level.
      expect(ids(await list(bob.client, { keyword: 'capacity' }))).toEqual([first[1].id]);
      expect(ids(await list(bob.client, { keyword: 'volume.' }))).toEqual([later.id]);
      expect(ids(await list(bob.client, { keyword: 'warn' }))).toEqual([first[2].id]);
      expect(ids(await list(bob.client, { id: first[2].id }))).toEqual([first[2].id]);
      expect(ids(await list(bob.client, { resourcetype: 'VirtualMachine', resourceid: first[2].resourceId! }))).toEqual([first[2].id]);
      expect(ids(await list(bob.client, { resourcetype: 'VirtualMachine' }))).toEqual([first[2].id]);

      const laterAt = asParam(later.created);
      expect(ids(await list(bob.client, { startdate: laterAt }))).toEqual([later.id]);
      expect(ids(await list(bob.client, { enddate: asParam(first[2].created) })).sort()).toEqual(first.map((event) => event.id).sort());
      expect(ids(await list(bob.client, { startdate: asParam(first[0].created), enddate: asParam(first[2].created), type: 'VM.START' }))).toEqual([first[2].id]);
      // A bare date: from 00:00:00 of the start date, up to 23:59:59 of the end date.
      const today = later.created.slice(0, 10);
      expect((await list(bob.client, { startdate: today, enddate: today })).count).toBe(4);
      const tomorrow = new Date(Date.parse(`${today}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
      expect(await list(bob.client, { startdate: tomorrow })).toEqual({});
      // Upstream lists nothing when entrytime and duration are both given.
      expect(await list(bob.client, { entrytime: 10, duration: 5 })).toEqual({});
    });
  });

  it('refuses bad values with 431 naming the parameter', async () => {
    const cases: [Record<string, string>, string | RegExp][] = [
      [{ resourcetype: 'virtualmachine' }, 'Invalid resourcetype'],
      [{ resourceid: randomUUID() }, 'resourceid parameter must be used with resourcetype parameter'],
      [{ resourceid: 'vm-1', resourcetype: 'VirtualMachine' }, 'Invalid resourceid'],
      [{ startdate: '01/05/2024' }, /Unable to parse date 01\/05\/2024 for command listevents|startdate/],
      [{ level: 'x'.repeat(300) }, /Invalid parameter level/],
    ];
    for (const [params, text] of cases) {
      const answer = await alice.client.call('listEvents', params);
      expect(answer.status, JSON.stringify(params)).toBe(431);
      expect(answer.body.listeventsresponse).toMatchObject({ errorcode: 431, cserrorcode: 4350, errortext: typeof text === 'string' ? text : expect.stringMatching(text) });
    }
    const unknown = randomUUID();
    const missing = await alice.client.call('listEvents', { id: unknown });
    expect(missing.status).toBe(431);
    expect(missing.body.listeventsresponse.errortext).toBe(
      `Unable to execute API command listevents due to invalid value. Invalid parameter id value=${unknown} due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.`,
    );
  });
});

describe('listEventTypes', () => {
  it('lists upstream’s event type names, every type Mold records among them', async () => {
    const { status, body } = await alice.client.call('listEventTypes');
    expect(status).toBe(200);
    const response = body.listeventtypesresponse;
    expect(response.count).toBe(response.eventtype.length);
    expect(response.eventtype[0]).toEqual({ name: 'VM.CREATE' });
    const names = new Set(response.eventtype.map((type: { name: string }) => type.name));
    expect(names.size).toBe(response.count);
    for (const name of [
      'USER.LOGIN', 'USER.LOGOUT', 'USER.CREATE', 'USER.UPDATE', 'USER.DELETE', 'USER.DISABLE', 'USER.ENABLE', 'USER.LOCK', 'USER.MOVE',
      'ACCOUNT.CREATE', 'ACCOUNT.UPDATE', 'ACCOUNT.DELETE', 'ACCOUNT.DISABLE', 'ACCOUNT.ENABLE', 'DOMAIN.CREATE', 'DOMAIN.UPDATE', 'DOMAIN.DELETE',
      'ROLE.CREATE', 'ROLE.UPDATE', 'ROLE.DELETE', 'ROLE.IMPORT', 'ROLE.ENABLE', 'ROLE.DISABLE', 'ROLE.PERMISSION.CREATE', 'ROLE.PERMISSION.UPDATE',
      'ROLE.PERMISSION.DELETE', 'REGISTER.USER.KEY', 'VM.CREATE', 'VM.START', 'VM.STOP', 'VM.REBOOT', 'VM.DESTROY', 'VM.EXPUNGE', 'VM.MIGRATE',
      'VM.RECOVER', 'HOST.RECONNECT', 'MAINT.PREPARE', 'MAINT.CANCEL', 'ZONE.CREATE', 'POD.CREATE', 'VOLUME.CREATE', 'TEMPLATE.CREATE',
    ]) {
      expect(names, name).toContain(name);
    }
    // Every event type written in Mold's code (any quoted DOTTED.UPPER.CASE name) is listed.
    const sources = ['functions', 'shared'].flatMap((dir) =>
      (readdirSync(join(REPO_ROOT, dir), { recursive: true }) as string[]).filter((file) => file.endsWith('.ts')).map((file) => join(REPO_ROOT, dir, file)),
    );
    for (const file of sources) {
      for (const match of readFileSync(file, 'utf8').matchAll(/'([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)+)'/g)) {
        expect(names, `${match[1]} in ${file}`).toContain(match[1]);
      }
    }
  });
});

describe('archiveEvents and deleteEvents', () => {
  let mine: EventRecord[];
  let admins: EventRecord;
  beforeAll(async () => {
    mine = [
      await recordEvent(alice.actor, { type: 'SNAPSHOT.CREATE', description: 'snapshot one' }),
      await recordEvent(alice.actor, { type: 'SNAPSHOT.CREATE', description: 'snapshot two' }),
      await recordEvent(alice.actor, { type: 'SNAPSHOT.DELETE', description: 'snapshot three' }),
      await recordEvent(alice.actor, { type: 'ISO.CREATE', description: 'iso four' }),
    ];
    admins = await recordEvent(adminActor, { type: 'SNAPSHOT.CREATE', description: 'the admin’s snapshot' });
  });

  it('archives by id: the event leaves the list, shows with archived=true or by id', async () => {
    const answer = await alice.client.call('archiveEvents', { ids: mine[0].id });
    expect(answer).toMatchObject({ status: 200, body: { archiveeventsresponse: { success: true } } });
    expect(ids(await list(alice.client, { pagesize: -1 }))).not.toContain(mine[0].id);
    const archived = await list(alice.client, { archived: true });
    expect(archived.event).toEqual([expect.objectContaining({ id: mine[0].id, archived: true })]);
    expect((await list(alice.client, { id: mine[0].id })).event).toMatchObject([{ id: mine[0].id, archived: true }]);
  });

  it('archives by type only the caller’s events', async () => {
    expect((await alice.client.call('archiveEvents', { type: 'snapshot.create' })).status).toBe(200);
    expect(ids(await list(alice.client, { archived: true })).sort()).toEqual([mine[0].id, mine[1].id].sort());
    expect((await getEvent(admins.id))?.archived).toBe(false);
    expect((await getEvent(mine[2].id))?.archived).toBe(false);
  });

  it('deletes by id and by type within a date range', async () => {
    expect(await alice.client.call('deleteEvents', { ids: mine[2].id })).toMatchObject({ status: 200, body: { deleteeventsresponse: { success: true } } });
    expect(await getEvent(mine[2].id)).toBeUndefined();
    const day = mine[3].created.slice(0, 10);
    expect((await alice.client.call('deleteEvents', { type: 'ISO.CREATE', startdate: day, enddate: day })).status).toBe(200);
    expect(await getEvent(mine[3].id)).toBeUndefined();
    const gone = await alice.client.call('listEvents', { id: mine[3].id });
    expect(gone.status).toBe(431);
  });

  it('refuses another account’s events, changing nothing', async () => {
    const archive = await alice.client.call('archiveEvents', { ids: `${admins.id},${mine[1].id}` });
    expect(archive.status).toBe(530);
    expect(archive.body.archiveeventsresponse).toMatchObject({ errorcode: 530, errortext: 'Unable to archive Events, one or more parameters has invalid values' });
    const remove = await alice.client.call('deleteEvents', { ids: admins.id });
    expect(remove.status).toBe(530);
    expect(remove.body.deleteeventsresponse).toMatchObject({ errorcode: 530, errortext: 'Unable to delete Events, one or more parameters has invalid values' });
    expect(await getEvent(admins.id)).toMatchObject({ archived: false });
    // A domain admin of ROOT/sub cannot reach ROOT's events either.
    expect((await subAdmin.client.call('archiveEvents', { ids: admins.id })).status).toBe(530);
    // Archived events are no longer candidates (upstream selects only unarchived ones).
    expect((await alice.client.call('deleteEvents', { ids: mine[1].id })).status).toBe(530);
    expect(await getEvent(mine[1].id)).toMatchObject({ archived: true });
    // The root admin may act on any account's events.
    expect((await admin.call('archiveEvents', { ids: admins.id })).status).toBe(200);
    expect(await getEvent(admins.id)).toMatchObject({ archived: true });
  });

  it('refuses calls that select nothing, dates without an end, and unknown ids with 431', async () => {
    for (const command of ['archiveEvents', 'deleteEvents']) {
      const api = command.toLowerCase();
      const none = await alice.client.call(command);
      expect(none.status).toBe(431);
      expect(none.body[`${api}response`]).toMatchObject({ errorcode: 431, cserrorcode: 4350, errortext: 'either ids, type or enddate must be specified' });
      const startOnly = await alice.client.call(command, { type: 'VM.CREATE', startdate: '2024-01-01' });
      expect(startOnly.status).toBe(431);
      expect(startOnly.body[`${api}response`].errortext).toBe('enddate must be specified with startdate parameter');
      const unknown = randomUUID();
      const notFound = await alice.client.call(command, { ids: unknown });
      expect(notFound.status).toBe(431);
      expect(notFound.body[`${api}response`].errortext).toBe(
        `Unable to execute API command ${api} due to invalid value. Invalid parameter ids value=${unknown} due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.`,
      );
      const malformed = await alice.client.call(command, { ids: 'nope' });
      expect(malformed.status).toBe(431);
      expect(malformed.body[`${api}response`].errortext).toMatch(/Invalid parameter ids/);
    }
  });

  it('records no event for archiving or deleting', async () => {
    const total = async () =>
      ((await list(admin, { listall: true, pagesize: -1 })).count ?? 0) + ((await list(admin, { listall: true, archived: true, pagesize: -1 })).count ?? 0);
    const [toArchive, toDelete] = [
      await recordEvent(alice.actor, { type: 'TEMPLATE.CREATE', description: 'template five' }),
      await recordEvent(alice.actor, { type: 'TEMPLATE.DELETE', description: 'template six' }),
    ];
    const before = await total();
    expect((await alice.client.call('archiveEvents', { ids: toArchive.id })).status).toBe(200);
    expect(await total()).toBe(before);
    expect((await alice.client.call('deleteEvents', { ids: toDelete.id })).status).toBe(200);
    expect(await total()).toBe(before - 1);
  });
});
