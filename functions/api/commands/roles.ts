// Dynamic roles and their rules (upstream's org.apache.cloudstack.api.command.admin.acl commands and
// RoleManagerImpl): createRole, listRoles, updateRole, deleteRole, and the rules of a role with
// listRolePermissions, createRolePermission, updateRolePermission, deleteRolePermission.
// A change to a role's rules applies to its users' very next call: the caller's role is read on
// every request.
import { randomUUID } from 'node:crypto';
import { InternalError, InvalidParameter, PermissionDenied } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { listBody } from '../../../shared/cloudstack/render.ts';
import { listAccountsUnder, type RoleType } from '../../../shared/db/identity.ts';
import {
  ConcurrentRoleChange,
  createRole as createRoleRecord,
  deleteRoleRecord,
  DuplicateRole,
  findRoleByPermission,
  getRole,
  listRoles as listRoleRecords,
  RULE_PATTERN,
  saveRole,
  type Permission,
  type Role,
  type RolePermission,
} from '../../../shared/db/roles.ts';
import { ADMINS, type Caller, completedEvent, defineCommand, isPublic, type Recorded } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { isRootAdmin } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';

const ROLE_TYPES: readonly RoleType[] = ['Admin', 'ResourceAdmin', 'DomainAdmin', 'User'];

// Upstream refuses role parameters with ServerApiException(PARAM_ERROR, …): 431 with cserrorcode
// 9999, where an InvalidParameterValueException would carry 4350.

// ---- upstream's lookups and checks ----


/**
 * The role by id, as RoleManagerImpl.findRole: unknown ids fail as upstream's parameter processing
 * does; Admin-type roles are invisible to callers that are not root admins (then `hidden` is thrown).
 */
async function findRole(caller: Caller, id: string, api: string, name: string, hidden: string): Promise<Role> {
  const role = await getRole(id);
  if (!role) throw noSuchEntity(api, name, id, 9999);
  if (!isRootAdmin(caller) && role.type === 'Admin') throw new InvalidParameter(hidden, 9999);
  return role;
}

/** RoleManagerImpl.checkCallerAccess: only Admin-type callers change roles, whatever their rules. */
function checkCallerAccess(caller: Caller): void {
  if (caller.role.type !== 'Admin') throw new PermissionDenied('Restricted API called by a user account of non-Admin role type');
}

/** RoleType.fromString: the exact name of one of the four types. */
function roleType(value: string | undefined, text: (value: string) => string): RoleType | undefined {
  if (value === undefined) return undefined;
  const type = ROLE_TYPES.find((t) => t === value);
  if (!type) throw new InvalidParameter(text(value), 9999);
  return type;
}

/** Permission.valueOf(value.toUpperCase()), as upstream's BaseRolePermissionCmd. */
function permissionValue(value: string, text: (value: string) => string): Permission {
  const lower = value.toLowerCase();
  if (lower !== 'allow' && lower !== 'deny') throw new InvalidParameter(text(value), 9999);
  return lower;
}

async function accountsWithRole(role: Role) {
  return (await listAccountsUnder('/')).filter((account) => account.roleId === role.id);
}

/** Saves, turning repository conflicts into upstream-style refusals. */
async function save(before: Role, after: Role, concurrentText: string): Promise<Role> {
  try {
    return await saveRole(before, after);
  } catch (error) {
    if (error instanceof DuplicateRole) throw new InvalidParameter(error.message);
    if (error instanceof ConcurrentRoleChange) throw new InternalError(concurrentText);
    throw error;
  }
}

const CHANGED_WHILE_UPDATING =
  "The role's rule permissions list has changed while you were making updates, aborted re-ordering of rules. Please try again.";

// ---- rendering (upstream's RoleResponse and RolePermissionResponse) ----

function renderRole(role: Role, withDefault: boolean) {
  return {
    id: role.id,
    name: role.name,
    type: role.type,
    ...(role.description !== undefined && { description: role.description }),
    ...(withDefault && { isdefault: role.isdefault }),
    ispublic: role.ispublic,
    state: 'Enabled',
  };
}

function renderPermission(permission: RolePermission, role: Role, withRoleName: boolean) {
  return {
    id: permission.id,
    roleid: role.id,
    ...(withRoleName && { rolename: role.name }),
    rule: permission.rule,
    permission: permission.permission,
    ...(permission.description !== undefined && { description: permission.description }),
  };
}

const completed = (what: string, details: string, role: Role, type: string): Recorded =>
  completedEvent(type, what, { id: role.id, type: 'Role' }, details);

// ---- who sees which role (RoleManagerImpl.removeRolesIfNeeded) ----

/**
 * A caller sees its own role and the roles that reach no command it cannot reach itself; callers
 * that are not root admins see only public roles, never Admin-type ones.
 */
async function visibleTo(caller: Caller): Promise<(role: Role) => boolean> {
  // Imported here: the registry imports this module.
  const { COMMANDS, mayCall } = await import('../registry.ts');
  const commands = COMMANDS.filter((command) => !isPublic(command));
  const callerReaches = new Set(commands.filter((command) => mayCall(caller, command)).map((command) => command.name));
  return (role) => {
    if (role.id === caller.role.id) return true;
    if (!isRootAdmin(caller) && (!role.ispublic || role.type === 'Admin')) return false;
    const as = { ...caller, role };
    return commands.every((command) => callerReaches.has(command.name) || !mayCall(as, command));
  };
}

// ---- roles ----

const createRole = defineCommand({
  name: 'createRole',
  description: 'Creates a role',
  since: '4.9.0',
  params: {
    name: param.string('Creates a role with this unique name'),
    type: param.string('The type of the role, valid options are: Admin, ResourceAdmin, DomainAdmin, User').optional(),
    roleid: param.uuid('ID of the role to be cloned from. Either roleid or type must be passed in').optional(),
    description: param.text('The description of the role').optional(),
    ispublic: param
      .boolean('Indicates whether the role will be visible to all users (public) or only to root admins (private). If this parameter is not specified during the creation of the role its value will be defaulted to true (public).')
      .optional(),
  },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    const type = roleType(params.type, () => 'Invalid role type provided');
    if (!type && !params.roleid) throw new InvalidParameter('Neither role type nor role ID is provided', 9999);
    if (type && params.roleid) throw new InvalidParameter('Both role type and role ID should not be specified', 9999);
    const source = params.roleid ? await findRole(caller, params.roleid, 'createrole', 'roleid', 'Invalid role id provided') : undefined;
    checkCallerAccess(caller);
    let role: Role;
    try {
      role = await createRoleRecord({
        name: params.name,
        type: source?.type ?? type!,
        description: params.description,
        isdefault: false,
        ispublic: params.ispublic ?? true,
        permissions: source?.permissions.map(({ rule, permission, description }) => ({ rule, permission, description })),
      });
    } catch (error) {
      if (error instanceof DuplicateRole) throw new InvalidParameter(error.message);
      throw error;
    }
    const details = source
      ? `Role: ${role.name}, from role: ${source.id}, description: ${params.description ?? null}`
      : `Role: ${role.name}, type: ${role.type}, description: ${params.description ?? null}`;
    const what = source ? 'creating role by cloning another role' : 'creating Role';
    return { body: { role: renderRole(role, false) }, events: [completed(what, details, role, 'ROLE.CREATE')] };
  },
});

const listRoles = defineCommand({
  name: 'listRoles',
  description: 'Lists dynamic roles in CloudStack',
  since: '4.9.0',
  params: {
    id: param.uuid('List role by role ID.').optional(),
    name: param.string('List role by role name.').optional(),
    type: param.string('List role by role type, valid options are: Admin, ResourceAdmin, DomainAdmin, User.').optional(),
    state: param.string('List role by role state.').optional(),
    ...listParams,
  },
  roles: ['Admin', 'ResourceAdmin', 'DomainAdmin'],
  handler: async ({ params, caller, settings }) => {
    const type = roleType(params.type, (value) => `No enum constant org.apache.cloudstack.acl.RoleType.${value}`);
    if (params.id && !(await getRole(params.id))) throw noSuchEntity('listroles', 'id', params.id, 9999);
    const visible = await visibleTo(caller);
    const roles = (await listRoleRecords())
      .filter(visible)
      .filter((role) => !params.id || role.id === params.id)
      .filter((role) => !params.name || role.name.toLowerCase().includes(params.name.toLowerCase()))
      .filter((role) => !type || role.type === type)
      .filter((role) => !params.state || params.state.toLowerCase() === 'enabled')
      .filter((role) => matchesKeyword(params.keyword, role.name));
    return { body: listResponse('role', roles, params, settings, (role) => renderRole(role, true)) };
  },
});

const updateRole = defineCommand({
  name: 'updateRole',
  description: 'Updates a role',
  since: '4.9.0',
  params: {
    id: param.uuid('ID of the role'),
    name: param.string('creates a role with this unique name').optional(),
    type: param.string('The type of the role, valid options are: Admin, ResourceAdmin, DomainAdmin, User').optional(),
    description: param.text('The description of the role').optional(),
    ispublic: param.boolean('Indicates whether the role will be visible to all users (public) or only to root admins (private).').optional(),
  },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    const type = roleType(params.type, () => 'Unknown is not a valid role type');
    const role = await findRole(caller, params.id, 'updaterole', 'id', 'Invalid role id provided');
    checkCallerAccess(caller);
    let updated: Role;
    if (role.isdefault) {
      // Upstream lets a default role change only between public and private.
      if (params.ispublic === undefined || type || params.name || params.description) {
        throw new PermissionDenied('Default roles cannot be updated (with the exception of making it private/public).');
      }
      updated = { ...role, ispublic: params.ispublic };
    } else {
      if (type && type !== role.type && (await accountsWithRole(role)).length > 0) {
        throw new PermissionDenied("Found accounts that have role in use, won't allow to change role type");
      }
      updated = {
        ...role,
        name: params.name || role.name,
        type: type ?? role.type,
        description: params.description || role.description,
        ispublic: params.ispublic ?? role.ispublic,
      };
    }
    const saved = await save(role, updated, `Role ${role.name} was changed while you were updating it. Please try again.`);
    const details = `Role: ${params.name ?? null}, type:${type ?? null}, description: ${params.description ?? null}`;
    return { body: { role: renderRole(saved, false) }, events: [completed('updating Role', details, saved, 'ROLE.UPDATE')] };
  },
});

const deleteRole = defineCommand({
  name: 'deleteRole',
  description: 'Deletes a role',
  since: '4.9.0',
  params: { id: param.uuid('ID of the role') },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    const role = await findRole(caller, params.id, 'deleterole', 'id', 'Cannot find the role with provided id');
    checkCallerAccess(caller);
    if (role.isdefault) throw new PermissionDenied('Default roles cannot be deleted');
    if ((await accountsWithRole(role)).length > 0) {
      throw new PermissionDenied("Found accounts that have role in use, won't allow to delete role");
    }
    try {
      await deleteRoleRecord(role);
    } catch (error) {
      if (error instanceof ConcurrentRoleChange) throw new InternalError(`Role ${role.name} was changed while you were deleting it. Please try again.`);
      throw error;
    }
    return { body: { success: true }, events: [completed('deleting Role', `Role id: ${role.id}`, role, 'ROLE.DELETE')] };
  },
});

// ---- rules of a role ----

const listRolePermissions = defineCommand({
  name: 'listRolePermissions',
  description: 'Lists role permissions',
  since: '4.9.0',
  params: { roleid: param.uuid('ID of the role').optional() },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    if (params.roleid) {
      const role = await findRole(caller, params.roleid, 'listrolepermissions', 'roleid', 'Invalid role id provided');
      return { body: listBody('rolepermission', role.permissions.map((permission) => renderPermission(permission, role, true))) };
    }
    const visible = await visibleTo(caller);
    const roles = (await listRoleRecords()).filter(visible);
    return {
      body: listBody('rolepermission', roles.flatMap((role) => role.permissions.map((permission) => renderPermission(permission, role, true)))),
    };
  },
});

const createRolePermission = defineCommand({
  name: 'createRolePermission',
  description: 'Adds an API permission to a role',
  since: '4.9.0',
  params: {
    roleid: param.uuid('ID of the role'),
    rule: param.string('The API name or wildcard rule such as list*'),
    permission: param.string('The rule permission, allow or deny. Default: deny.'),
    description: param.text('The description of the role permission').optional(),
  },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    const role = await findRole(caller, params.roleid, 'createrolepermission', 'roleid', 'Invalid role id provided');
    if (!RULE_PATTERN.test(params.rule)) {
      throw new InvalidParameter(`Only API names and wildcards are allowed, invalid rule provided: ${params.rule}`);
    }
    const permission = permissionValue(params.permission, (value) => `No enum constant org.apache.cloudstack.acl.RolePermissionEntity.Permission.${value.toUpperCase()}`);
    checkCallerAccess(caller);
    if (role.isdefault) throw new PermissionDenied('Role permission cannot be added for Default roles');
    if (role.permissions.some((existing) => existing.rule.toLowerCase() === params.rule.toLowerCase())) {
      throw new PermissionDenied(`Rule already exists for the role: ${role.name}`);
    }
    // Appended: it is evaluated after every rule the role already has.
    const created: RolePermission = { id: randomUUID(), rule: params.rule, permission, description: params.description };
    const saved = await save(role, { ...role, permissions: [...role.permissions, created] }, `Role ${role.name} was changed while you were adding a rule. Please try again.`);
    const details = `Role id: ${role.id}, rule:${params.rule}, permission: ${permission.toUpperCase()}, description: ${params.description ?? null}`;
    return {
      body: { rolepermission: renderPermission(created, saved, false) },
      events: [completed('creating Role Permission', details, saved, 'ROLE.PERMISSION.CREATE')],
    };
  },
});

const updateRolePermission = defineCommand({
  name: 'updateRolePermission',
  description: 'Updates a role permission order',
  since: '4.9.0',
  params: {
    roleid: param.uuid('ID of the role'),
    ruleorder: param.list(param.uuid('a role permission id'), 'The parent role permission uuid, use 0 to move this rule at the top of the list').optional(),
    ruleid: param.uuid('Role permission rule id').optional(),
    permission: param.string('Rule permission, can be: allow or deny').optional(),
  },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    const role = await findRole(caller, params.roleid, 'updaterolepermission', 'roleid', 'Invalid role id provided');
    const permission =
      params.permission === undefined ? undefined : permissionValue(params.permission, () => 'Values for permission parameter should be: allow or deny');
    if (params.ruleorder) {
      if (params.ruleid || permission) {
        throw new InvalidParameter('Parameters permission and ruleid must be mutually exclusive with ruleorder', 9999);
      }
      for (const id of params.ruleorder) {
        if (!(await findRoleByPermission(id))) throw new InvalidParameter('Provided role permission(s) do not exist', 9999);
      }
      checkCallerAccess(caller);
      if (role.isdefault) throw new PermissionDenied('Role permission cannot be updated for Default roles');
      // The new order names every rule of the role exactly once (upstream's RolePermissionsDaoImpl).
      const byId = new Map(role.permissions.map((rule) => [rule.id, rule]));
      const ordered = params.ruleorder.map((id) => byId.get(id));
      if (ordered.length !== role.permissions.length || new Set(params.ruleorder).size !== ordered.length || ordered.some((rule) => !rule)) {
        throw new InternalError(CHANGED_WHILE_UPDATING);
      }
      const saved = await save(role, { ...role, permissions: ordered as RolePermission[] }, CHANGED_WHILE_UPDATING);
      return {
        body: { success: true },
        events: [completed('updating Role Permission order', `Reordering permissions for role id: ${role.id}`, saved, 'ROLE.PERMISSION.UPDATE')],
      };
    }
    if (params.ruleid && permission) {
      if (!(await findRoleByPermission(params.ruleid))) throw new InvalidParameter('Invalid rule id provided', 9999);
      checkCallerAccess(caller);
      if (role.isdefault) throw new PermissionDenied('Role permission cannot be updated for Default roles');
      // A rule of another role changes nothing: upstream answers success false.
      if (!role.permissions.some((rule) => rule.id === params.ruleid)) return { body: { success: false } };
      const permissions = role.permissions.map((rule) => (rule.id === params.ruleid ? { ...rule, permission } : rule));
      const saved = await save(role, { ...role, permissions }, `Role ${role.name} was changed while you were updating a rule. Please try again.`);
      const details = `Updating permission for rule id: ${params.ruleid} to: ${permission.toUpperCase()}`;
      return { body: { success: true }, events: [completed('updating Role Permission', details, saved, 'ROLE.PERMISSION.UPDATE')] };
    }
    // Neither a new order nor a rule and its permission: upstream changes nothing and says so.
    return { body: { success: false } };
  },
});

const deleteRolePermission = defineCommand({
  name: 'deleteRolePermission',
  description: 'Deletes a role permission',
  since: '4.9.0',
  params: { id: param.uuid('ID of the role permission') },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    const role = await findRoleByPermission(params.id);
    if (!role) throw new InvalidParameter('Invalid role permission id provided', 9999);
    checkCallerAccess(caller);
    if (role.isdefault) throw new PermissionDenied('Role permission cannot be deleted for Default roles');
    const saved = await save(
      role,
      { ...role, permissions: role.permissions.filter((rule) => rule.id !== params.id) },
      `Role ${role.name} was changed while you were deleting a rule. Please try again.`,
    );
    return {
      body: { success: true },
      events: [completed('deleting Role Permission', `Role permission id: ${params.id}`, saved, 'ROLE.PERMISSION.DELETE')],
    };
  },
});

export const roleCommands = [
  createRole,
  listRoles,
  updateRole,
  deleteRole,
  listRolePermissions,
  createRolePermission,
  updateRolePermission,
  deleteRolePermission,
];
