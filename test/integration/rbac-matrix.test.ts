// Every built-in role against every command Mold answers (whatever the registry holds when this
// runs): what a role must reach is reached (never 432), everything else is refused with upstream's
// 432 envelope; every list a role reaches, with listall=true, holds nothing of accounts or domains
// it may not see; and a custom role's rules change what its users reach on their very next call,
// first matching rule first.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublic, type AnyCommand } from '../../functions/api/command.ts';
import { COMMANDS } from '../../functions/api/registry.ts';
import { recordEvent } from '../../shared/db/events.ts';
import { createDomain, getDomain, type Domain, type RoleType } from '../../shared/db/identity.ts';
import { completeJob, createJob } from '../../shared/db/jobs.ts';
import { ApiClient, type ApiAnswer } from '../support/client.ts';
import { seedMember } from '../support/members.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';

// ---- what each built-in role must reach, written from upstream's role definitions ----

const READ_EXTRAS = [
  'cloudianIsEnabled',
  'queryAsyncJobResult',
  'quotaIsEnabled',
  'quotaTariffList',
  'quotaSummary',
  'quotaStatement',
  'quotaBalance',
  'setupUserTwoFactorAuthentication',
  'validateUserTwoFactorAuthenticationCode',
];
const SUPPORT_USER_OPERATIONS = [
  'startVirtualMachine',
  'stopVirtualMachine',
  'rebootVirtualMachine',
  'startKubernetesCluster',
  'stopKubernetesCluster',
  'createVolume',
  'attachVolume',
  'detachVolume',
  'uploadVolume',
  'attachIso',
  'detachIso',
  'registerTemplate',
  'registerIso',
];
const SUPPORT_ADMIN_OPERATIONS = [
  'prepareHostForMaintenance',
  'cancelHostMaintenance',
  'enableStorageMaintenance',
  'cancelStorageMaintenance',
  'createServiceOffering',
  'createDiskOffering',
  'createNetworkOffering',
  'createVPCOffering',
  ...SUPPORT_USER_OPERATIONS,
];

const openTo = (type: RoleType) => (command: AnyCommand) => isPublic(command) || command.roles.includes(type);
const isRead = (name: string) => /^list/.test(name) || (/^get/.test(name) && !/^getUploadParamsFor/.test(name)) || READ_EXTRAS.includes(name);
const isUpload = (name: string) => /^getUploadParamsFor/.test(name);

interface RoleSpec {
  name: string;
  type: RoleType;
  reaches: (command: AnyCommand) => boolean;
}

const SPECS: RoleSpec[] = [
  { name: 'Root Admin', type: 'Admin', reaches: () => true },
  { name: 'Resource Admin', type: 'ResourceAdmin', reaches: openTo('ResourceAdmin') },
  { name: 'Domain Admin', type: 'DomainAdmin', reaches: openTo('DomainAdmin') },
  { name: 'User', type: 'User', reaches: openTo('User') },
  { name: 'Read-Only Admin - Default', type: 'Admin', reaches: (c) => isPublic(c) || isRead(c.name) },
  { name: 'Read-Only User - Default', type: 'User', reaches: (c) => isPublic(c) || (isRead(c.name) && openTo('User')(c)) },
  {
    name: 'Support Admin - Default',
    type: 'Admin',
    reaches: (c) => isPublic(c) || isRead(c.name) || isUpload(c.name) || SUPPORT_ADMIN_OPERATIONS.includes(c.name),
  },
  {
    name: 'Support User - Default',
    type: 'User',
    reaches: (c) => isPublic(c) || ((isRead(c.name) || isUpload(c.name) || SUPPORT_USER_OPERATIONS.includes(c.name)) && openTo('User')(c)),
  },
];

// ---- the same expectation from a role's stored rules, by upstream's rule semantics ----

/** Upstream's Rule.matches: case-insensitive; `*` stands for any run of characters. */
function ruleMatches(rule: string, api: string): boolean {
  const parts = rule.toLowerCase().split('*');
  const name = api.toLowerCase();
  if (parts.length === 1) return parts[0] === name;
  const [first, last] = [parts[0], parts[parts.length - 1]];
  if (!name.startsWith(first) || !name.endsWith(last) || first.length + last.length > name.length) return false;
  let at = first.length;
  for (const middle of parts.slice(1, -1)) {
    const found = name.indexOf(middle, at);
    if (found < 0 || found + middle.length > name.length - last.length) return false;
    at = found + middle.length;
  }
  return true;
}

interface StoredRole {
  id: string;
  name: string;
  type: RoleType;
  isdefault: boolean;
  rules: { rule: string; permission: string }[];
}

/**
 * The first matching rule decides; no match falls back to the command's role types. The built-in
 * User-type roles stand for upstream's explicit lists of User APIs, so their allows stay within them.
 */
function reachesByRules(role: StoredRole, command: AnyCommand): boolean {
  if (isPublic(command)) return true;
  const first = role.rules.find((r) => ruleMatches(r.rule, command.name));
  if (!first) return command.roles.includes(role.type);
  if (first.permission === 'deny') return false;
  return !(role.isdefault && role.type === 'User') || command.roles.includes('User');
}

// ---- the installation under test ----

const REFUSED = (command: string) => ({
  [`${command.toLowerCase()}response`]: {
    uuidList: [],
    errorcode: 432,
    cserrorcode: 9999,
    errortext: 'The given command does not exist or it is not available for user',
  },
});

let runtime: RunningRuntime;
let admin: ApiClient;
let root: Domain;
let rbacDomain: Domain;
let otherDomain: Domain;
const roles = new Map<string, StoredRole>();

/** Someone whose data is somewhere: ids and unique names that must not leak to whom may not see it. */
interface Principal {
  label: string;
  domain: Domain;
  accountId: string;
  marks: string[];
}
const principals: Principal[] = [];
const members = new Map<string, { client: ApiClient; principal: Principal }>();

const tag = () => randomUUID().slice(0, 8);

async function seedPrincipal(label: string, role: { id: string; type: RoleType }, domain: Domain): Promise<{ client: ApiClient; principal: Principal }> {
  const name = `rbac-${label.toLowerCase().replace(/[^a-z]+/g, '-')}-${tag()}`;
  const { client, account, user, actor } = await seedMember(runtime.apiUrl, name, domain, role);
  // Some data of its own: an event and a finished job.
  const event = await recordEvent(actor, { type: 'USER.UPDATE', description: `matrix data of ${name}`, resourceId: user.id, resourceType: 'User' });
  const job = await createJob({ cmd: 'org.apache.cloudstack.api.command.admin.user.UpdateUserCmd', actor });
  await completeJob(job.jobid, { success: true });
  const principal = { label, domain, accountId: account.id, marks: [account.id, user.id, name, event.id, job.jobid] };
  principals.push(principal);
  return { client, principal };
}

/** What `viewer` may not see: other accounts for users; outside its subtree for domain admins; nothing for admins. */
function forbiddenFor(spec: RoleSpec, viewer: Principal): string[] {
  if (spec.type === 'Admin') return [];
  const marks: string[] = [];
  for (const other of principals) {
    if (other.accountId === viewer.accountId) continue;
    const inSubtree = other.domain.tree.startsWith(viewer.domain.tree);
    if (spec.type === 'User' || !inSubtree) marks.push(...other.marks);
    if (!inSubtree && other.domain.id !== root.id) marks.push(other.domain.id);
  }
  return marks;
}

/** Runs `task` over `items`, a few at a time. */
async function inBatches<T, R>(items: T[], size: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += size) results.push(...(await Promise.all(items.slice(i, i + size).map(task))));
  return results;
}

beforeAll(async () => {
  runtime = await startRuntime();
  useRuntimeEndpoints(runtime);
  admin = new ApiClient(runtime.apiUrl, runtime.credentials);
  root = (await getDomain(runtime.credentials.domainid))!;
  rbacDomain = await createDomain({ name: `rbac-${tag()}`, parent: root });
  otherDomain = await createDomain({ name: `other-${tag()}`, parent: root });

  const listed = await admin.call('listRoles');
  expect(listed.status).toBe(200);
  for (const role of listed.body.listrolesresponse.role) {
    const permissions = await admin.call('listRolePermissions', { roleid: role.id });
    expect(permissions.status).toBe(200);
    const rules = (permissions.body.listrolepermissionsresponse.rolepermission ?? []).map((r: any) => ({ rule: r.rule, permission: r.permission }));
    roles.set(role.name, { id: role.id, name: role.name, type: role.type, isdefault: role.isdefault, rules });
  }

  // One account per built-in role: admins in ROOT, everyone else in a child domain.
  for (const spec of SPECS) {
    const role = roles.get(spec.name)!;
    members.set(spec.name, await seedPrincipal(spec.name, role, spec.type === 'Admin' ? root : rbacDomain));
  }
  // Data the others may not see: an account beside them in their domain, one in a sibling domain,
  // and one in a domain below theirs.
  const user = roles.get('User')!;
  await seedPrincipal('Neighbour', user, rbacDomain);
  await seedPrincipal('Foreigner', user, otherDomain);
  await seedPrincipal('Below', user, await createDomain({ name: `below-${tag()}`, parent: rbacDomain }));
});

afterAll(async () => {
  await runtime?.stop();
});

describe('the built-in roles', () => {
  it('are stored with rules that mean what upstream’s roles mean', () => {
    expect([...roles.values()].filter((role) => role.isdefault).map((role) => role.name).sort()).toEqual(SPECS.map((spec) => spec.name).sort());
    for (const spec of SPECS) {
      const role = roles.get(spec.name)!;
      expect(role.type).toBe(spec.type);
      for (const command of COMMANDS) {
        expect({ role: spec.name, command: command.name, reaches: reachesByRules(role, command) }).toEqual({
          role: spec.name,
          command: command.name,
          reaches: spec.reaches(command),
        });
      }
    }
  });

  it('cover the commands the registry holds, and read-only roles reach only reads', () => {
    expect(COMMANDS.length).toBeGreaterThan(0);
    const readOnly = SPECS.find((spec) => spec.name === 'Read-Only Admin - Default')!;
    for (const command of COMMANDS.filter((c) => !isPublic(c))) {
      expect(readOnly.reaches(command)).toBe(/^(list|get)/.test(command.name) && !isUpload(command.name) || READ_EXTRAS.includes(command.name));
    }
    expect(COMMANDS.filter((c) => !isPublic(c)).every((c) => SPECS[0].reaches(c))).toBe(true);
  });

  for (const spec of SPECS) {
    it(`${spec.name}: reaches exactly what it must, and gets upstream’s 432 for everything else`, async () => {
      const { client } = members.get(spec.name)!;
      const answers = await inBatches(COMMANDS, 8, async (command) => ({ command, answer: await client.call(command.name) }));
      const wrong: string[] = [];
      for (const { command, answer } of answers) {
        const must = spec.reaches(command);
        if (must && (answer.status === 432 || answer.status === 401 || answer.status >= 530 && answer.status !== 531 && answer.status !== 536)) {
          wrong.push(`${command.name}: must be reached, answered ${answer.status} ${JSON.stringify(answer.body)}`);
        }
        if (!must && (answer.status !== 432 || JSON.stringify(answer.body) !== JSON.stringify(REFUSED(command.name)))) {
          wrong.push(`${command.name}: must be refused with 432, answered ${answer.status} ${JSON.stringify(answer.body)}`);
        }
      }
      expect(wrong).toEqual([]);
    });

    it(`${spec.name}: every list it reaches (listall=true) holds nothing it may not see`, async () => {
      const { client, principal } = members.get(spec.name)!;
      const forbidden = forbiddenFor(spec, principal);
      const lists = COMMANDS.filter((command) => command.name.startsWith('list') && spec.reaches(command));
      const answers = await inBatches(lists, 8, async (command) => ({ command, answer: await client.call(command.name, { listall: 'true' }) }));
      const leaks: string[] = [];
      for (const { command, answer } of answers) {
        expect(answer.status, `${command.name} answered ${JSON.stringify(answer.body)}`).not.toBe(432);
        const text = JSON.stringify(answer.body);
        for (const mark of forbidden) if (text.includes(mark)) leaks.push(`${command.name} shows ${mark}`);
      }
      expect(leaks).toEqual([]);
    });
  }

  it('lists show the seeded data to root admins (the leak check looks at real data)', async () => {
    const { client } = members.get('Root Admin')!;
    const foreigner = principals.find((p) => p.label === 'Foreigner')!;
    const lists = COMMANDS.filter((command) => ['listAccounts', 'listUsers', 'listEvents', 'listAsyncJobs'].includes(command.name));
    for (const command of lists) {
      const answer = await client.call(command.name, { listall: 'true' });
      expect(answer.status).toBe(200);
      expect(foreigner.marks.some((mark) => JSON.stringify(answer.body).includes(mark)), `${command.name} shows the foreigner`).toBe(true);
    }
  });
});

describe('a custom role', () => {
  const reached = (answer: ApiAnswer) => answer.status !== 432;

  it('changes what its users reach on their next call, and its first matching rule decides', async () => {
    const created = await admin.call('createRole', { name: `custom-${tag()}`, type: 'User' });
    expect(created.status).toBe(200);
    const role = created.body.createroleresponse.role;
    const { client } = await seedPrincipal('Custom', { id: role.id, type: 'User' }, rbacDomain);
    // No rules yet: the User type decides. listRoles is not open to Users.
    expect(reached(await client.call('listApis'))).toBe(true);
    expect(reached(await client.call('listCapabilities'))).toBe(true);
    expect((await client.call('listRoles')).status).toBe(432);

    const add = async (rule: string, permission: string) =>
      (await admin.call('createRolePermission', { roleid: role.id, rule, permission })).body.createrolepermissionresponse.rolepermission;
    const allowRoles = await add('listRoles', 'allow');
    const allowApis = await add('listApis', 'allow');
    const denyRest = await add('*', 'deny');
    // At once: listRoles by its rule, listApis by its rule, everything else denied.
    expect((await client.call('listRoles')).status).toBe(200);
    expect((await client.call('listCapabilities')).body).toEqual(REFUSED('listCapabilities'));
    const apis = await client.call('listApis');
    expect(apis.status).toBe(200);
    const names = (answer: ApiAnswer) =>
      answer.body.listapisresponse.api.map((api: any) => api.name).filter((name: string) => !COMMANDS.some((c) => c.name === name && isPublic(c))).sort();
    expect(names(apis)).toEqual(['listApis', 'listRoles']);

    // Order matters: the deny first, and nothing is reached any more.
    const first = await admin.call('updateRolePermission', { roleid: role.id, ruleorder: [denyRest.id, allowRoles.id, allowApis.id].join(',') });
    expect(first.body).toEqual({ updaterolepermissionresponse: { success: true } });
    expect((await client.call('listRoles')).body).toEqual(REFUSED('listRoles'));
    expect((await client.call('listApis')).body).toEqual(REFUSED('listApis'));

    // Back to allows first; then one rule flipped to deny.
    await admin.call('updateRolePermission', { roleid: role.id, ruleorder: [allowRoles.id, allowApis.id, denyRest.id].join(',') });
    expect((await client.call('listRoles')).status).toBe(200);
    await admin.call('updateRolePermission', { roleid: role.id, ruleid: allowRoles.id, permission: 'deny' });
    expect((await client.call('listRoles')).body).toEqual(REFUSED('listRoles'));
    expect(names(await client.call('listApis'))).toEqual(['listApis']);

    // Without the deny-everything rule, the User type decides again for the rest.
    await admin.call('deleteRolePermission', { id: denyRest.id });
    expect(reached(await client.call('listCapabilities'))).toBe(true);
    expect((await client.call('listRoles')).status).toBe(432);
  });

  it('may reach beyond its type by an allow rule, as upstream’s checker lets it', async () => {
    const created = await admin.call('createRole', { name: `custom-${tag()}`, type: 'User' });
    const role = created.body.createroleresponse.role;
    await admin.call('createRolePermission', { roleid: role.id, rule: 'listRole*', permission: 'allow' });
    const { client } = await seedPrincipal('Custom2', { id: role.id, type: 'User' }, rbacDomain);
    expect((await client.call('listRoles')).status).toBe(200);
    expect((await client.call('listRolePermissions')).status).toBe(200);
    // The role commands that change roles refuse non-Admin callers in their handlers (upstream's 531).
    await admin.call('createRolePermission', { roleid: role.id, rule: 'deleteRole', permission: 'allow' });
    const refused = await client.call('deleteRole', { id: role.id });
    expect(refused.status).toBe(531);
    expect(refused.body.deleteroleresponse.errortext).toBe('Restricted API called by a user account of non-Admin role type');
  });
});
