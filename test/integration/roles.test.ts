// Dynamic roles through the API, as upstream 4.20's role commands answer them: createRole (by type
// or by cloning), listRoles and who sees which role, updateRole, deleteRole, and the ordered rules
// of a role with listRolePermissions, createRolePermission, updateRolePermission and
// deleteRolePermission. Every refusal is checked for its envelope and for changing nothing.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listEventsUnder } from '../../shared/db/events.ts';
import { createAccount, createDomain, getDomain, registerUserKeys, type Domain } from '../../shared/db/identity.ts';
import { listRoles as roleRecords } from '../../shared/db/roles.ts';
import { ApiClient, type ApiAnswer } from '../support/client.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';

const BUILTIN = [
  ['Root Admin', 'Admin', 'Default root admin role'],
  ['Resource Admin', 'ResourceAdmin', 'Default resource admin role'],
  ['Domain Admin', 'DomainAdmin', 'Default domain admin role'],
  ['User', 'User', undefined],
  ['Read-Only Admin - Default', 'Admin', 'Default read-only admin role'],
  ['Read-Only User - Default', 'User', 'Default read-only user role'],
  ['Support Admin - Default', 'Admin', 'Default support admin role'],
  ['Support User - Default', 'User', 'Default support user role'],
] as const;

const UUID = expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

let runtime: RunningRuntime;
let admin: ApiClient;
let root: Domain;
let builtinId: Record<string, string>;

/** An account with one user and API keys, holding the given role, seeded through the repository. */
async function clientWithRole(roleId: string, domain: Domain = root): Promise<{ client: ApiClient; accountId: string }> {
  const role = (await roleRecords()).find((r) => r.id === roleId)!;
  const name = `roles-${randomUUID().slice(0, 8)}`;
  const { account, user } = await createAccount(
    { name, domain, roleId: role.id, roleType: role.type },
    { username: name, password: 'secret-password', firstname: 'Role', lastname: 'Tester' },
  );
  const keys = await registerUserKeys(user);
  return { client: new ApiClient(runtime.apiUrl, keys), accountId: account.id };
}

function expectError(answer: ApiAnswer, command: string, errorcode: number, cserrorcode: number, errortext: string) {
  expect(answer.status).toBe(errorcode);
  expect(answer.body).toEqual({ [`${command.toLowerCase()}response`]: { uuidList: [], errorcode, cserrorcode, errortext } });
}

const unknownEntity = (api: string, name: string, value: string) =>
  `Unable to execute API command ${api} due to invalid value. Invalid parameter ${name} value=${value} due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.`;

async function listAll(): Promise<any[]> {
  const { body } = await admin.call('listRoles');
  return body.listrolesresponse.role ?? [];
}

async function rulesOf(roleid: string): Promise<any[]> {
  const { status, body } = await admin.call('listRolePermissions', { roleid });
  expect(status).toBe(200);
  return body.listrolepermissionsresponse.rolepermission ?? [];
}

async function newRole(params: Record<string, string> = {}): Promise<any> {
  const answer = await admin.call('createRole', { name: `custom-${randomUUID().slice(0, 8)}`, type: 'User', ...params });
  expect(answer.status).toBe(200);
  return answer.body.createroleresponse.role;
}

async function addRule(roleid: string, rule: string, permission: string, description?: string): Promise<any> {
  const answer = await admin.call('createRolePermission', { roleid, rule, permission, ...(description && { description }) });
  expect(answer.status).toBe(200);
  return answer.body.createrolepermissionresponse.rolepermission;
}

async function eventsOfType(type: string) {
  return (await listEventsUnder(root.tree)).filter((event) => event.type === type);
}

beforeAll(async () => {
  runtime = await startRuntime();
  useRuntimeEndpoints(runtime);
  admin = new ApiClient(runtime.apiUrl, runtime.credentials);
  root = (await getDomain(runtime.credentials.domainid))!;
  builtinId = Object.fromEntries((await roleRecords()).map((role) => [role.name, role.id]));
});

afterAll(async () => {
  await runtime?.stop();
});

describe('listRoles', () => {
  it('lists the eight built-in roles with upstream’s RoleResponse fields', async () => {
    const { status, body } = await admin.call('listRoles');
    expect(status).toBe(200);
    const { count, role } = body.listrolesresponse;
    expect(count).toBe(role.length);
    for (const [name, type, description] of BUILTIN) {
      const found = role.find((r: any) => r.name === name);
      expect(found).toEqual({
        id: UUID,
        name,
        type,
        ...(description && { description }),
        ...(name === 'User' && { description: expect.any(String) }),
        isdefault: true,
        ispublic: true,
        state: 'Enabled',
      });
    }
  });

  it('filters by id, name, type, keyword and pages', async () => {
    const byId = await admin.call('listRoles', { id: builtinId['Domain Admin'] });
    expect(byId.body.listrolesresponse).toMatchObject({ count: 1, role: [{ name: 'Domain Admin' }] });
    const byName = await admin.call('listRoles', { name: 'read-only' });
    expect(byName.body.listrolesresponse.role.map((r: any) => r.name).sort()).toEqual(['Read-Only Admin - Default', 'Read-Only User - Default']);
    const byType = await admin.call('listRoles', { type: 'Admin' });
    expect(byType.body.listrolesresponse.role.every((r: any) => r.type === 'Admin')).toBe(true);
    expect(byType.body.listrolesresponse.role.map((r: any) => r.name)).toEqual(
      expect.arrayContaining(['Root Admin', 'Read-Only Admin - Default', 'Support Admin - Default']),
    );
    const byKeyword = await admin.call('listRoles', { keyword: 'support' });
    expect(byKeyword.body.listrolesresponse.role.map((r: any) => r.name).sort()).toEqual(['Support Admin - Default', 'Support User - Default']);
    const all = await listAll();
    const paged = await admin.call('listRoles', { page: 2, pagesize: 3 });
    expect(paged.body.listrolesresponse.count).toBe(all.length);
    expect(paged.body.listrolesresponse.role).toEqual(all.slice(3, 6));
    const none = await admin.call('listRoles', { name: 'no-such-role-at-all' });
    expect(none.body).toEqual({ listrolesresponse: {} });
  });

  it('refuses an unknown role type and an unknown id', async () => {
    expectError(await admin.call('listRoles', { type: 'admin' }), 'listRoles', 431, 9999, 'No enum constant org.apache.cloudstack.acl.RoleType.admin');
    const id = randomUUID();
    expectError(await admin.call('listRoles', { id }), 'listRoles', 431, 9999, unknownEntity('listroles', 'id', id));
  });

  it('shows a domain admin only public roles that reach no more than its own', async () => {
    const privateRole = await newRole({ type: 'User', ispublic: 'false' });
    const domain = await createDomain({ name: `roles-da-${randomUUID().slice(0, 6)}`, parent: root });
    const { client } = await clientWithRole(builtinId['Domain Admin'], domain);
    const { status, body } = await client.call('listRoles', { listall: 'true' });
    expect(status).toBe(200);
    const names = body.listrolesresponse.role.map((r: any) => r.name);
    expect(names).toEqual(expect.arrayContaining(['Domain Admin', 'User', 'Read-Only User - Default', 'Support User - Default']));
    expect(names).not.toContain(privateRole.name);
    for (const hidden of ['Root Admin', 'Read-Only Admin - Default', 'Support Admin - Default']) expect(names).not.toContain(hidden);
    expect(body.listrolesresponse.count).toBe(names.length);
    // Not even by id.
    const byId = await client.call('listRoles', { id: builtinId['Root Admin'] });
    expect(byId.body).toEqual({ listrolesresponse: {} });
  });

  it('is not open to users', async () => {
    const { client } = await clientWithRole(builtinId.User);
    expectError(await client.call('listRoles'), 'listRoles', 432, 9999, 'The given command does not exist or it is not available for user');
  });
});

describe('createRole', () => {
  it('creates a role of a type, public unless told otherwise, and records ROLE.CREATE', async () => {
    const before = (await eventsOfType('ROLE.CREATE')).length;
    const name = `ops-${randomUUID().slice(0, 8)}`;
    const { status, body } = await admin.call('createRole', { name, type: 'DomainAdmin', description: 'Operations' });
    expect(status).toBe(200);
    expect(body).toEqual({
      createroleresponse: { role: { id: UUID, name, type: 'DomainAdmin', description: 'Operations', ispublic: true, state: 'Enabled' } },
    });
    const listed = await admin.call('listRoles', { id: body.createroleresponse.role.id });
    expect(listed.body.listrolesresponse.role[0]).toMatchObject({ name, isdefault: false, ispublic: true });
    expect(await rulesOf(body.createroleresponse.role.id)).toEqual([]);
    const events = await eventsOfType('ROLE.CREATE');
    expect(events.length).toBe(before + 1);
    expect(events.find((event) => event.resourceId === body.createroleresponse.role.id)).toMatchObject({
      type: 'ROLE.CREATE',
      resourceType: 'Role',
      level: 'INFO',
      state: 'Completed',
      description: expect.stringContaining(name),
    });
    const privateRole = await newRole({ ispublic: 'false' });
    expect(privateRole.ispublic).toBe(false);
  });

  it('clones a role: its type and its rules, in order', async () => {
    const source = await newRole({ type: 'ResourceAdmin' });
    await addRule(source.id, 'listUsers', 'allow', 'see users');
    await addRule(source.id, 'list*', 'deny');
    await addRule(source.id, '*', 'allow');
    const name = `clone-${randomUUID().slice(0, 8)}`;
    const { status, body } = await admin.call('createRole', { name, roleid: source.id });
    expect(status).toBe(200);
    expect(body.createroleresponse.role).toMatchObject({ name, type: 'ResourceAdmin' });
    const cloned = await rulesOf(body.createroleresponse.role.id);
    expect(cloned.map((r) => [r.rule, r.permission, r.description])).toEqual([
      ['listUsers', 'allow', 'see users'],
      ['list*', 'deny', undefined],
      ['*', 'allow', undefined],
    ]);
    expect(new Set(cloned.map((r) => r.id)).size).toBe(3);
    expect(cloned.every((r) => r.roleid === body.createroleresponse.role.id && r.rolename === name)).toBe(true);
  });

  it('refuses what upstream refuses, and creates nothing', async () => {
    const before = (await listAll()).length;
    const name = `refused-${randomUUID().slice(0, 8)}`;
    expectError(await admin.call('createRole', { name }), 'createRole', 431, 9999, 'Neither role type nor role ID is provided');
    expectError(
      await admin.call('createRole', { name, type: 'User', roleid: builtinId.User }),
      'createRole',
      431,
      9999,
      'Both role type and role ID should not be specified',
    );
    expectError(await admin.call('createRole', { name, type: 'Superuser' }), 'createRole', 431, 9999, 'Invalid role type provided');
    expectError(await admin.call('createRole', { type: 'User' }), 'createRole', 431, 4350, 'Unable to execute API command createrole due to missing parameter name');
    const id = randomUUID();
    expectError(await admin.call('createRole', { name, roleid: id }), 'createRole', 431, 9999, unknownEntity('createrole', 'roleid', id));
    expectError(await admin.call('createRole', { name: 'Domain Admin', type: 'User' }), 'createRole', 431, 4350, 'Role with name Domain Admin already exists');
    expect((await listAll()).length).toBe(before);
  });

  it('is Admin-only: a domain admin gets 432, and a non-Admin role allowed by a rule gets upstream’s 531', async () => {
    const domain = await createDomain({ name: `roles-da-${randomUUID().slice(0, 6)}`, parent: root });
    const { client } = await clientWithRole(builtinId['Domain Admin'], domain);
    expectError(await client.call('createRole', { name: 'x', type: 'User' }), 'createRole', 432, 9999, 'The given command does not exist or it is not available for user');
    const sneaky = await newRole({ type: 'DomainAdmin' });
    await addRule(sneaky.id, 'createRole', 'allow');
    const { client: allowed } = await clientWithRole(sneaky.id, domain);
    const before = (await listAll()).length;
    expectError(
      await allowed.call('createRole', { name: `sneaky-${randomUUID().slice(0, 6)}`, type: 'Admin' }),
      'createRole',
      531,
      4365,
      'Restricted API called by a user account of non-Admin role type',
    );
    expect((await listAll()).length).toBe(before);
  });
});

describe('role permissions', () => {
  it('appends each new rule at the end and lists them in order with RolePermissionResponse fields', async () => {
    const role = await newRole();
    const first = await addRule(role.id, 'listVirtualMachines', 'allow', 'VMs');
    expect(first).toEqual({ id: UUID, roleid: role.id, rule: 'listVirtualMachines', permission: 'allow', description: 'VMs' });
    const second = await addRule(role.id, 'list*', 'DENY');
    expect(second.permission).toBe('deny');
    const third = await addRule(role.id, '*', 'Allow');
    expect(await rulesOf(role.id)).toEqual([
      { id: first.id, roleid: role.id, rolename: role.name, rule: 'listVirtualMachines', permission: 'allow', description: 'VMs' },
      { id: second.id, roleid: role.id, rolename: role.name, rule: 'list*', permission: 'deny' },
      { id: third.id, roleid: role.id, rolename: role.name, rule: '*', permission: 'allow' },
    ]);
    const events = (await eventsOfType('ROLE.PERMISSION.CREATE')).filter((event) => event.resourceId === role.id);
    expect(events).toHaveLength(3);
  });

  it('lists the rules of every role without roleid', async () => {
    const { status, body } = await admin.call('listRolePermissions');
    expect(status).toBe(200);
    const rules = body.listrolepermissionsresponse.rolepermission;
    expect(body.listrolepermissionsresponse.count).toBe(rules.length);
    const rootRules = rules.filter((r: any) => r.roleid === builtinId['Root Admin']);
    expect(rootRules).toEqual([{ id: UUID, roleid: builtinId['Root Admin'], rolename: 'Root Admin', rule: '*', permission: 'allow' }]);
    const readOnly = rules.filter((r: any) => r.rolename === 'Read-Only Admin - Default').map((r: any) => [r.rule, r.permission]);
    expect(readOnly.slice(0, 3)).toEqual([
      ['list*', 'allow'],
      ['getUploadParamsFor*', 'deny'],
      ['get*', 'allow'],
    ]);
    expect(readOnly.at(-1)).toEqual(['*', 'deny']);
    expect(readOnly).toContainEqual(['queryAsyncJobResult', 'allow']);
  });

  it('refuses bad rules, bad permissions, duplicates and built-in roles, changing nothing', async () => {
    const role = await newRole();
    await addRule(role.id, 'listUsers', 'allow');
    for (const rule of ['list-users', 'list users', '^list.*$', 'list?', 'listUsers;']) {
      expectError(
        await admin.call('createRolePermission', { roleid: role.id, rule, permission: 'allow' }),
        'createRolePermission',
        431,
        4350,
        `Only API names and wildcards are allowed, invalid rule provided: ${rule}`,
      );
    }
    expectError(
      await admin.call('createRolePermission', { roleid: role.id, rule: 'listZones', permission: 'maybe' }),
      'createRolePermission',
      431,
      9999,
      'No enum constant org.apache.cloudstack.acl.RolePermissionEntity.Permission.MAYBE',
    );
    expectError(
      await admin.call('createRolePermission', { roleid: role.id, rule: 'listUsers', permission: 'deny' }),
      'createRolePermission',
      531,
      4365,
      `Rule already exists for the role: ${role.name}`,
    );
    expectError(
      await admin.call('createRolePermission', { roleid: builtinId.User, rule: 'listZones', permission: 'allow' }),
      'createRolePermission',
      531,
      4365,
      'Role permission cannot be added for Default roles',
    );
    const id = randomUUID();
    expectError(
      await admin.call('createRolePermission', { roleid: id, rule: 'listZones', permission: 'allow' }),
      'createRolePermission',
      431,
      9999,
      unknownEntity('createrolepermission', 'roleid', id),
    );
    expectError(
      await admin.call('createRolePermission', { roleid: role.id, permission: 'allow' }),
      'createRolePermission',
      431,
      4350,
      'Unable to execute API command createrolepermission due to missing parameter rule',
    );
    expect((await rulesOf(role.id)).map((r) => r.rule)).toEqual(['listUsers']);
    expect(await rulesOf(builtinId.User)).toEqual([]);
  });

  it('reorders rules with ruleorder, and changes one rule’s permission with ruleid', async () => {
    const role = await newRole();
    const a = await addRule(role.id, 'listUsers', 'allow');
    const b = await addRule(role.id, 'list*', 'deny');
    const c = await addRule(role.id, '*', 'allow');
    const reordered = await admin.call('updateRolePermission', { roleid: role.id, ruleorder: [c.id, a.id, b.id].join(',') });
    expect(reordered.status).toBe(200);
    expect(reordered.body).toEqual({ updaterolepermissionresponse: { success: true } });
    expect((await rulesOf(role.id)).map((r) => r.id)).toEqual([c.id, a.id, b.id]);
    const flipped = await admin.call('updateRolePermission', { roleid: role.id, ruleid: b.id, permission: 'allow' });
    expect(flipped.body).toEqual({ updaterolepermissionresponse: { success: true } });
    expect((await rulesOf(role.id)).map((r) => [r.rule, r.permission])).toEqual([
      ['*', 'allow'],
      ['listUsers', 'allow'],
      ['list*', 'allow'],
    ]);
    const events = (await eventsOfType('ROLE.PERMISSION.UPDATE')).filter((event) => event.resourceId === role.id);
    expect(events).toHaveLength(2);
  });

  it('refuses bad updates as upstream does, changing nothing', async () => {
    const role = await newRole();
    const a = await addRule(role.id, 'listUsers', 'allow');
    const b = await addRule(role.id, '*', 'deny');
    const other = await newRole();
    const foreign = await addRule(other.id, 'listZones', 'allow');
    const unchanged = async () => expect((await rulesOf(role.id)).map((r) => [r.id, r.permission])).toEqual([[a.id, 'allow'], [b.id, 'deny']]);
    expectError(
      await admin.call('updateRolePermission', { roleid: role.id, ruleorder: `${b.id},${a.id}`, ruleid: a.id, permission: 'deny' }),
      'updateRolePermission',
      431,
      9999,
      'Parameters permission and ruleid must be mutually exclusive with ruleorder',
    );
    expectError(
      await admin.call('updateRolePermission', { roleid: role.id, ruleorder: `${b.id},${randomUUID()}` }),
      'updateRolePermission',
      431,
      9999,
      'Provided role permission(s) do not exist',
    );
    const changed = "The role's rule permissions list has changed while you were making updates, aborted re-ordering of rules. Please try again.";
    expectError(await admin.call('updateRolePermission', { roleid: role.id, ruleorder: b.id }), 'updateRolePermission', 530, 4250, changed);
    expectError(await admin.call('updateRolePermission', { roleid: role.id, ruleorder: `${b.id},${foreign.id}` }), 'updateRolePermission', 530, 4250, changed);
    expectError(
      await admin.call('updateRolePermission', { roleid: role.id, ruleid: a.id, permission: 'sometimes' }),
      'updateRolePermission',
      431,
      9999,
      'Values for permission parameter should be: allow or deny',
    );
    expectError(
      await admin.call('updateRolePermission', { roleid: role.id, ruleid: randomUUID(), permission: 'deny' }),
      'updateRolePermission',
      431,
      9999,
      'Invalid rule id provided',
    );
    // A rule of another role, or half of a change: upstream answers success false and changes nothing.
    expect((await admin.call('updateRolePermission', { roleid: role.id, ruleid: foreign.id, permission: 'deny' })).body).toEqual({
      updaterolepermissionresponse: { success: false },
    });
    expect((await admin.call('updateRolePermission', { roleid: role.id, ruleid: a.id })).body).toEqual({
      updaterolepermissionresponse: { success: false },
    });
    await unchanged();
    const readOnly = await rulesOf(builtinId['Read-Only User - Default']);
    expectError(
      await admin.call('updateRolePermission', { roleid: builtinId['Read-Only User - Default'], ruleorder: readOnly.map((r) => r.id).reverse().join(',') }),
      'updateRolePermission',
      531,
      4365,
      'Role permission cannot be updated for Default roles',
    );
    expectError(
      await admin.call('updateRolePermission', { roleid: builtinId['Read-Only User - Default'], ruleid: readOnly[0].id, permission: 'deny' }),
      'updateRolePermission',
      531,
      4365,
      'Role permission cannot be updated for Default roles',
    );
    expect(await rulesOf(builtinId['Read-Only User - Default'])).toEqual(readOnly);
  });

  it('deletes a rule; refuses unknown ids and the rules of built-in roles', async () => {
    const role = await newRole();
    const a = await addRule(role.id, 'listUsers', 'allow');
    const b = await addRule(role.id, '*', 'deny');
    const deleted = await admin.call('deleteRolePermission', { id: a.id });
    expect(deleted.body).toEqual({ deleterolepermissionresponse: { success: true } });
    expect((await rulesOf(role.id)).map((r) => r.id)).toEqual([b.id]);
    expect((await eventsOfType('ROLE.PERMISSION.DELETE')).filter((event) => event.resourceId === role.id)).toHaveLength(1);
    expectError(await admin.call('deleteRolePermission', { id: a.id }), 'deleteRolePermission', 431, 9999, 'Invalid role permission id provided');
    const rootRule = (await rulesOf(builtinId['Root Admin']))[0];
    expectError(await admin.call('deleteRolePermission', { id: rootRule.id }), 'deleteRolePermission', 531, 4365, 'Role permission cannot be deleted for Default roles');
    expect(await rulesOf(builtinId['Root Admin'])).toEqual([rootRule]);
  });
});

describe('updateRole and deleteRole', () => {
  it('updates name, description, type and visibility, and records ROLE.UPDATE', async () => {
    const role = await newRole({ description: 'before' });
    const name = `renamed-${randomUUID().slice(0, 8)}`;
    const { status, body } = await admin.call('updateRole', { id: role.id, name, description: 'after', type: 'DomainAdmin', ispublic: 'false' });
    expect(status).toBe(200);
    expect(body).toEqual({
      updateroleresponse: { role: { id: role.id, name, type: 'DomainAdmin', description: 'after', ispublic: false, state: 'Enabled' } },
    });
    expect((await admin.call('listRoles', { id: role.id })).body.listrolesresponse.role[0]).toMatchObject({ name, type: 'DomainAdmin', ispublic: false });
    // The old name is free again.
    await newRole({ name: role.name });
    expect((await eventsOfType('ROLE.UPDATE')).filter((event) => event.resourceId === role.id)).toHaveLength(1);
  });

  it('lets a built-in role change only between public and private', async () => {
    const id = builtinId['Support User - Default'];
    const refusal = 'Default roles cannot be updated (with the exception of making it private/public).';
    expectError(await admin.call('updateRole', { id, name: 'Helpdesk' }), 'updateRole', 531, 4365, refusal);
    expectError(await admin.call('updateRole', { id, description: 'x', ispublic: 'false' }), 'updateRole', 531, 4365, refusal);
    expectError(await admin.call('updateRole', { id }), 'updateRole', 531, 4365, refusal);
    const hidden = await admin.call('updateRole', { id, ispublic: 'false' });
    expect(hidden.body.updateroleresponse.role).toMatchObject({ name: 'Support User - Default', ispublic: false });
    const shown = await admin.call('updateRole', { id, ispublic: 'true' });
    expect(shown.body.updateroleresponse.role).toMatchObject({ name: 'Support User - Default', ispublic: true });
    expect((await admin.call('listRoles', { id })).body.listrolesresponse.role[0]).toMatchObject({ name: 'Support User - Default', description: 'Default support user role', isdefault: true });
  });

  it('refuses a type change and a deletion while accounts hold the role', async () => {
    const role = await newRole({ type: 'User' });
    await clientWithRole(role.id);
    expectError(
      await admin.call('updateRole', { id: role.id, type: 'Admin' }),
      'updateRole',
      531,
      4365,
      "Found accounts that have role in use, won't allow to change role type",
    );
    expectError(await admin.call('deleteRole', { id: role.id }), 'deleteRole', 531, 4365, "Found accounts that have role in use, won't allow to delete role");
    expect((await admin.call('listRoles', { id: role.id })).body.listrolesresponse.role[0]).toMatchObject({ type: 'User' });
  });

  it('deletes an unused role with its rules and records ROLE.DELETE; refuses built-in roles and unknown ids', async () => {
    const role = await newRole();
    const rule = await addRule(role.id, 'listUsers', 'allow');
    const deleted = await admin.call('deleteRole', { id: role.id });
    expect(deleted.body).toEqual({ deleteroleresponse: { success: true } });
    expectError(await admin.call('listRoles', { id: role.id }), 'listRoles', 431, 9999, unknownEntity('listroles', 'id', role.id));
    expectError(await admin.call('deleteRolePermission', { id: rule.id }), 'deleteRolePermission', 431, 9999, 'Invalid role permission id provided');
    expect((await eventsOfType('ROLE.DELETE')).filter((event) => event.resourceId === role.id)).toHaveLength(1);
    // Its name can be used again.
    await newRole({ name: role.name });
    expectError(await admin.call('deleteRole', { id: builtinId.User }), 'deleteRole', 531, 4365, 'Default roles cannot be deleted');
    expectError(await admin.call('deleteRole', { id: role.id }), 'deleteRole', 431, 9999, unknownEntity('deleterole', 'id', role.id));
    expect((await listAll()).filter((r) => r.isdefault)).toHaveLength(8);
  });
});
