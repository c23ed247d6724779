// Users (upstream's CreateUserCmd, ListUsersCmd, UpdateUserCmd, DeleteUserCmd, DisableUserCmd,
// EnableUserCmd, LockUserCmd, RegisterCmd, GetUserKeysCmd). A password never leaves Mold; a secret
// key only through registerUserKeys and getUserKeys, to the user itself or an admin over it.
import { InternalError, InvalidParameter, PermissionDenied } from '../../../shared/cloudstack/errors.ts';
import { listParams, param, scopeParams } from '../../../shared/cloudstack/params.ts';
import { listBody } from '../../../shared/cloudstack/render.ts';
import { openSecret } from '../../../shared/crypto/secrets.ts';
import { verifyPassword } from '../../../shared/crypto/passwords.ts';
import {
  ACCOUNT_TYPE,
  createUser,
  DuplicateName,
  endUserSessions,
  findAccountByName,
  findUserByApiKey,
  findUserByName,
  getAccount,
  getUser,
  listUsersUnder,
  registerUserKeys,
  setUserKeys,
  updateAccount,
  updateUser,
  deleteUserRecord,
  type Account,
  type User,
} from '../../../shared/db/identity.ts';
import { startAsync } from '../async.ts';
import { ALL_ROLES, defineCommand, type Caller } from '../command.ts';
import { matchesKeyword, page } from '../paging.ts';
import { IdentityLookups, renderUser, renderUserKeys } from '../render/identity.ts';
import { checkDomainAccess, inScope, isDomainAdmin, isRootAdmin } from '../scope.ts';
import {
  checkAccountAccess,
  checkExternalId,
  checkRolePrivilege,
  completed,
  userCreated,
  domainParam,
  isAdminCaller,
  userListScope,
} from './identity-common.ts';
import { noSuchEntity } from '../validate.ts';

const USER_MANAGERS = ['Admin', 'DomainAdmin'] as const;

async function userParam(api: string, id: string): Promise<{ user: User; account: Account }> {
  const user = await getUser(id);
  const account = user ? await getAccount(user.accountId) : undefined;
  if (!user || !account) throw noSuchEntity(api, 'id', id);
  return { user, account };
}

/** An admin over the user's account, of a role type that may act on it (users: their own account). */
function checkManagesUser(caller: Caller, account: Account): void {
  checkAccountAccess(caller, account);
  checkRolePrivilege(caller, account);
}

/** The user itself, or an admin over it: who may see or replace a user's keys. */
function checkKeysAccess(caller: Caller, user: User, account: Account): void {
  if (caller.user.id === user.id) return;
  if (!isAdminCaller(caller)) {
    throw new PermissionDenied(`${`Acct[${caller.account.id}-${caller.account.name}]`} is not allowed to access the keys of user ${user.id}`);
  }
  checkManagesUser(caller, account);
}

async function respond(caller: Caller, user: User) {
  return { user: await renderUser(user, caller.domain.tree) };
}

const createUserCommand = defineCommand({
  name: 'createUser',
  description: 'Creates a user for an account that already exists',
  params: {
    account: param.string(
      'Creates the user under the specified account. If no account is specified, the username will be used as the account name.',
    ),
    domainid: param.uuid('Creates the user under the specified domain. Has to be accompanied with the account parameter').optional(),
    email: param.string('email'),
    firstname: param.string('firstname'),
    lastname: param.string('lastname'),
    password: param.text(
      'Clear text password (Default hashed to SHA256SALT). If you wish to use any other hashing algorithm, you would need to write a custom authentication adapter See Docs section.',
    ),
    timezone: param.string('Specifies a timezone for this command. For more information on the timezone parameter, see Time Zone Format.').optional(),
    username: param.string('Unique username.'),
    userid: param.string('User UUID, required for adding account from external provisioning system').optional(),
  },
  roles: USER_MANAGERS,
  handler: async ({ params, caller }) => {
    const api = 'createUser';
    const domain = params.domainid ? await domainParam(api, 'domainid', params.domainid) : caller.domain;
    if (domain.state !== 'Active') throw new InternalError(`The user cannot be created as domain ${domain.name} is being deleted`);
    checkDomainAccess(caller, domain);
    const account = await findAccountByName(domain.id, params.account);
    if (!account || account.state !== 'enabled') {
      throw new InvalidParameter(`Unable to find account ${params.account} in domain ${domain.path} to create user`);
    }
    const duplicate = () => new InternalError(`The user ${params.username} already exists in domain ${domain.id}`);
    if (await findUserByName(domain.id, params.username)) throw duplicate();
    checkManagesUser(caller, account);
    const id = checkExternalId(api, 'userid', params.userid);
    if (id && (await getUser(id))) throw new InvalidParameter(`The specified user id: ${id} already exists`);
    const user = await createUser(account, {
      username: params.username,
      password: params.password,
      firstname: params.firstname,
      lastname: params.lastname,
      email: params.email,
      timezone: params.timezone,
      id,
    }).catch((error) => {
      throw error instanceof DuplicateName ? duplicate() : error;
    });
    return {
      body: { user: await renderUser(user, caller.domain.tree, new IdentityLookups().know({ domains: [domain], accounts: [account] })) },
      events: [
        userCreated(user),
      ],
    };
  },
});

const listUsersCommand = defineCommand({
  name: 'listUsers',
  description: 'Lists user accounts',
  params: {
    accounttype: param.integer('List users by account type. Valid types include admin, domain-admin, read-only-admin, or user.').optional(),
    id: param.uuid('List user by ID.').optional(),
    state: param.string('List users by state of the user account.').optional(),
    username: param.string('List user by the username').optional(),
    ...scopeParams,
    ...listParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    let id = params.id;
    if (id !== undefined && !(await getUser(id))) throw noSuchEntity('listUsers', 'id', id);
    if (!isAdminCaller(caller)) {
      if (id !== undefined && id.toLowerCase() !== caller.user.id) throw new PermissionDenied('Calling user is not authorized to see the user requested by id');
      id = caller.user.id;
    }
    const scope = await userListScope(caller, 'listUsers', { ...params, id });
    const candidates = id ? [await getUser(id)].filter((u): u is User => Boolean(u)) : await listUsersUnder(scope.tree ?? '/');
    const lookups = new IdentityLookups();
    const accounts = new Map<string, Account | undefined>();
    for (const user of candidates) if (!accounts.has(user.accountId)) accounts.set(user.accountId, await lookups.account(user.accountId));
    const state = params.state?.toLowerCase();
    const users = candidates
      .filter((user) => inScope(scope, user))
      .filter((user) => params.username === undefined || user.username.toLowerCase() === params.username.toLowerCase())
      .filter((user) => params.accounttype === undefined || (accounts.get(user.accountId) && ACCOUNT_TYPE[accounts.get(user.accountId)!.roleType] === params.accounttype))
      .filter((user) => state === undefined || user.state === state)
      .filter((user) =>
        matchesKeyword(params.keyword, user.username, user.firstname, user.lastname, user.email, user.state, accounts.get(user.accountId)?.name),
      )
      .sort((a, b) => a.created.localeCompare(b.created) || a.username.localeCompare(b.username));
    const shown = await Promise.all(page(users, params, settings).map((user) => renderUser(user, caller.domain.tree, lookups)));
    return { body: listBody('user', shown, users.length) };
  },
});

const updateUserCommand = defineCommand({
  name: 'updateUser',
  description: 'Updates a user account',
  params: {
    id: param.uuid('User uuid'),
    email: param.string('email').optional(),
    firstname: param.string('first name').optional(),
    lastname: param.string('last name').optional(),
    password: param
      .text(
        'Clear text password (default hashed to SHA256SALT). If you wish to use any other hashing algorithm, you would need to write a custom authentication adapter. Can\'t be passed when updating the user\'s own password; use currentpassword together with password then.',
      )
      .optional(),
    currentpassword: param
      .string('Current password that was being used by the user. You must inform the current password when updating the password.')
      .optional(),
    timezone: param.string('Specifies a timezone for this command. For more information on the timezone parameter, see Time Zone Format.').optional(),
    userapikey: param.string('The API key for the user. Must be specified with userSecretKey').optional(),
    usersecretkey: param.string('The secret key for the user. Must be specified with userApiKey').optional(),
    username: param.string('Unique username').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const { user, account } = await userParam('updateUser', params.id);
    checkManagesUser(caller, account);
    if ((params.userapikey === undefined) !== (params.usersecretkey === undefined)) {
      throw new InvalidParameter('Please provide a userApiKey/userSecretKey pair');
    }
    if (params.userapikey !== undefined) {
      const owner = await findUserByApiKey(params.userapikey);
      if (owner && owner.id !== user.id) {
        throw new InvalidParameter(`The API key [${params.userapikey}] already exists in the system. Please provide a unique key.`);
      }
    }
    if (params.firstname !== undefined && !params.firstname.trim()) throw new InvalidParameter('Firstname cannot be empty.');
    if (params.lastname !== undefined && !params.lastname.trim()) throw new InvalidParameter('Lastname cannot be empty.');
    if (params.username !== undefined) {
      if (!params.username.trim()) throw new InvalidParameter('Username cannot be empty.');
      const existing = await findUserByName(user.domainId, params.username);
      if (existing && existing.id !== user.id) {
        throw new InvalidParameter(`The user ${params.username} already exists in domain ${user.domainId}`);
      }
    }
    if (params.password !== undefined) {
      if (!params.password.trim()) throw new InvalidParameter('Password cannot be empty or blank.');
      // Admins (root and domain) set passwords without the current one, as upstream.
      if (!isRootAdmin(caller) && !isDomainAdmin(caller)) {
        if (!params.currentpassword?.trim()) throw new InvalidParameter('To set a new password the current password must be provided.');
        if (!(await verifyPassword(params.currentpassword, user.password))) throw new InvalidParameter('Current password is incorrect.');
      }
    }
    let updated = await updateUser(user, {
      ...(params.firstname !== undefined && { firstname: params.firstname }),
      ...(params.lastname !== undefined && { lastname: params.lastname }),
      ...(params.username !== undefined && { username: params.username }),
      ...(params.email?.trim() && { email: params.email }),
      ...(params.timezone?.trim() && { timezone: params.timezone }),
      ...(params.password !== undefined && { password: params.password }),
    }).catch((error) => {
      throw error instanceof DuplicateName ? new InvalidParameter(`The user ${params.username} already exists in domain ${user.domainId}`) : error;
    });
    if (params.userapikey !== undefined && params.usersecretkey !== undefined) {
      if (!(await setUserKeys(updated, params.userapikey, params.usersecretkey))) {
        throw new InvalidParameter(`The API key [${params.userapikey}] already exists in the system. Please provide a unique key.`);
      }
      updated = (await getUser(user.id)) ?? updated;
    }
    return {
      body: await respond(caller, updated),
      events: [completed('USER.UPDATE', 'Updating User', `User Id: ${user.id}`, { id: user.id, type: 'User' })],
    };
  },
});

const deleteUserCommand = defineCommand({
  name: 'deleteUser',
  description: 'Deletes a user for an account',
  params: { id: param.uuid('id of the user to be deleted') },
  roles: USER_MANAGERS,
  handler: async ({ params, caller }) => {
    const { user, account } = await userParam('deleteUser', params.id);
    if (caller.user.id === user.id) {
      throw new InvalidParameter(
        `The caller is requesting to delete itself. As a security measure, ACS will not allow this operation. To delete user ${user.username} (ID: ${user.id}, Domain: ${user.domainId}), request to another user with permission to execute the operation.`,
      );
    }
    if (user.isdefault) throw new InvalidParameter("The user is default and can't be (re)moved");
    checkManagesUser(caller, account);
    await deleteUserRecord(user);
    return {
      body: { success: true },
      events: [completed('USER.DELETE', 'deleting User', `User Id: ${user.id}`, { id: user.id, type: 'User' })],
    };
  },
});

const disableUserCommand = defineCommand({
  name: 'disableUser',
  description: 'Disables a user account',
  isasync: true,
  params: { id: param.uuid('Disables user by user ID.') },
  roles: USER_MANAGERS,
  handler: async ({ params, caller }) => {
    const { user, account } = await userParam('disableUser', params.id);
    checkManagesUser(caller, account);
    return startAsync(caller, {
      cmd: 'disableUser',
      stateMachine: 'disable-identity',
      input: { kind: 'user', id: user.id, state: 'disabled', callerDomainTree: caller.domain.tree },
      instanceType: 'User',
      instanceId: user.id,
      event: { type: 'USER.DISABLE', description: `disabling user: ${user.id}`, resourceId: user.id, resourceType: 'User' },
    });
  },
});

const enableUserCommand = defineCommand({
  name: 'enableUser',
  description: 'Enables a user account',
  params: { id: param.uuid('Enables user by user ID.') },
  roles: USER_MANAGERS,
  handler: async ({ params, caller }) => {
    const { user, account } = await userParam('enableUser', params.id);
    checkManagesUser(caller, account);
    // Upstream: "whenever the user is successfully enabled, reset the login attempts to zero".
    const updated = user.state === 'enabled' && !user.loginAttempts ? user : await updateUser(user, { state: 'enabled', loginAttempts: undefined });
    // Upstream enables the user's account with it.
    if (account.state !== 'enabled') await updateAccount(account, { state: 'enabled' });
    return {
      body: await respond(caller, updated),
      events: [completed('USER.ENABLE', 'enabling User', `User Id: ${user.id}`, { id: user.id, type: 'User' })],
    };
  },
});

const lockUserCommand = defineCommand({
  name: 'lockUser',
  description: 'Locks a user account',
  params: { id: param.uuid('Locks user by user ID.') },
  roles: USER_MANAGERS,
  handler: async ({ params, caller }) => {
    const { user, account } = await userParam('lockUser', params.id);
    checkManagesUser(caller, account);
    if (user.state === 'locked') return { body: await respond(caller, user) };
    if (user.state !== 'enabled') throw new InternalError(`Unable to lock user ${user.username} (ID: ${user.id}): only an enabled user can be locked`);
    const updated = await updateUser(user, { state: 'locked' });
    await endUserSessions(user.id);
    // Upstream locks the account too once none of its users is enabled.
    const others = await listUsersUnder(account.domainTree, account.id);
    if (account.state === 'enabled' && !others.some((other) => other.id !== user.id && other.state === 'enabled')) {
      await updateAccount(account, { state: 'locked' });
    }
    return {
      body: await respond(caller, updated),
      events: [completed('USER.LOCK', 'locking User', `User Id: ${user.id}`, { id: user.id, type: 'User' })],
    };
  },
});

const registerUserKeysCommand = defineCommand({
  name: 'registerUserKeys',
  description:
    'This command allows a user to register for the developer API, returning a secret key and an API key. This request is made through the integration API port, so it is a privileged command and must be made on behalf of a user. It is up to the implementer just how the username and password are entered, and then how that translates to an integration API request. Both secret key and API key should be returned to the user',
  params: { id: param.uuid('User id') },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const { user, account } = await userParam('registerUserKeys', params.id);
    checkKeysAccess(caller, user, account);
    const keys = await registerUserKeys(user);
    return {
      body: renderUserKeys(keys),
      events: [completed('REGISTER.USER.KEY', 'register for the developer API keys', `User Id: ${user.id}`, { id: user.id, type: 'User' })],
    };
  },
});

const getUserKeysCommand = defineCommand({
  name: 'getUserKeys',
  description: 'This command allows the user to query the seceret and API keys for the account',
  since: '4.10.0',
  params: { id: param.uuid('ID of the user whose keys are required') },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const { user, account } = await userParam('getUserKeys', params.id);
    checkKeysAccess(caller, user, account);
    return { body: renderUserKeys({ apikey: user.apikey, secretkey: user.secretkey ? await openSecret(user.secretkey) : undefined }) };
  },
});

export const userCommands = [
  createUserCommand,
  listUsersCommand,
  updateUserCommand,
  deleteUserCommand,
  disableUserCommand,
  enableUserCommand,
  lockUserCommand,
  registerUserKeysCommand,
  getUserKeysCommand,
];
