// Accounts (upstream's CreateAccountCmd, ListAccountsCmd, UpdateAccountCmd, DisableAccountCmd,
// EnableAccountCmd, LockAccountCmd, DeleteAccountCmd). Deleting and disabling run state machines;
// the caller's own account and the installation's admin account are never deleted or disabled.
import { InternalError, InvalidParameter, PermissionDenied } from '../../../shared/cloudstack/errors.ts';
import { listParams, param, scopeParams } from '../../../shared/cloudstack/params.ts';
import {
  ACCOUNT_TYPE,
  createAccount,
  DuplicateName,
  findAccountByName,
  findUserByName,
  getAccount,
  listAccountsUnder,
  listUsersUnder,
  updateAccount,
  type Account,
  type User,
  type AccountState,
  type Domain,
  type RoleType,
} from '../../../shared/db/identity.ts';
import { getRole, listRoles, type Role } from '../../../shared/db/roles.ts';
import { startAsync } from '../async.ts';
import { ALL_ROLES, defineCommand, type Caller } from '../command.ts';
import { checkDomainAccess, inScope, type ScopeFilter } from '../scope.ts';
import { matchesKeyword, page } from '../paging.ts';
import { listBody } from '../../../shared/cloudstack/render.ts';
import { IdentityLookups, renderAccount } from '../render/identity.ts';
import {
  accountByIdOrName,
  accountParam,
  checkAccountAccess,
  checkExternalId,
  checkNetworkDomain,
  checkRoleEscalation,
  checkRolePrivilege,
  completed,
  userCreated,
  domainParam,
  isAdminCaller,
} from './identity-common.ts';
import { noSuchEntity } from '../validate.ts';

const ACCOUNT_MANAGERS = ['Admin', 'DomainAdmin'] as const;

/** Upstream's RoleType.getRoleByAccountType: account types 0, 1, 2 and 3 name the built-in roles. */
const TYPE_BY_ACCOUNT_TYPE: Record<number, RoleType> = { 0: 'User', 1: 'Admin', 2: 'DomainAdmin', 3: 'ResourceAdmin' };
const BUILTIN_ROLE_NAME: Record<RoleType, string> = { User: 'User', Admin: 'Root Admin', DomainAdmin: 'Domain Admin', ResourceAdmin: 'Resource Admin' };

async function builtinRole(type: RoleType): Promise<Role | undefined> {
  return (await listRoles()).find((role) => role.isdefault && role.type === type && role.name === BUILTIN_ROLE_NAME[type]);
}

/** The caller's own account and the installation's admin account stay. */
function checkNotProtected(caller: Caller, account: Account, verb: 'Deletion' | 'Disabling', domain?: Domain): void {
  if (account.isdefault) {
    throw new InvalidParameter(verb === 'Deletion' ? "The account is default and can't be removed" : "The account is default and can't be disabled or locked");
  }
  if (account.id === caller.account.id) {
    const action = verb === 'Deletion' ? 'delete' : 'disable';
    throw new InvalidParameter(
      `${verb} of your own account is not allowed. To ${action} account ${account.name} (ID: ${account.id}, Domain: ${domain?.id ?? account.domainId}), request to another user with permissions to perform the operation.`,
    );
  }
}

/** An account the caller may act on, as an admin over it. */
function checkManagesAccount(caller: Caller, account: Account): void {
  checkAccountAccess(caller, account);
  checkRolePrivilege(caller, account);
}

async function respond(caller: Caller, account: Account) {
  return { account: await renderAccount(account, caller.domain.tree) };
}

const createAccountCommand = defineCommand({
  name: 'createAccount',
  description: 'Creates an account',
  params: {
    account: param
      .string('Name of the account to be created. The user will be added to this newly created account. If no account is specified, the username will be used as the account name.')
      .optional(),
    accounttype: param.integer('Type of the account.  Specify 0 for user, 1 for root admin, and 2 for domain admin').optional(),
    roleid: param.uuid('Creates the account under the specified role.').optional(),
    domainid: param.uuid('Creates the user under the specified domain.').optional(),
    email: param.string('email'),
    firstname: param.string('firstname'),
    lastname: param.string('lastname'),
    password: param.text(
      'Clear text password (Default hashed to SHA256SALT). If you wish to use any other hashing algorithm, you would need to write a custom authentication adapter See Docs section.',
    ),
    timezone: param.string('Specifies a timezone for this command. For more information on the timezone parameter, see Time Zone Format.').optional(),
    username: param.string('Unique username.'),
    networkdomain: param.string("Network domain for the account's networks").optional(),
    accountid: param.string('Account UUID, required for adding account from external provisioning system').optional(),
    userid: param.string('User UUID, required for adding account from external provisioning system').optional(),
  },
  roles: ACCOUNT_MANAGERS,
  handler: async ({ params, caller }) => {
    const api = 'createAccount';
    let role: Role | undefined;
    if (params.roleid) {
      role = await getRole(params.roleid);
      if (!role) throw noSuchEntity(api, 'roleid', params.roleid);
    } else if (params.accounttype !== undefined) {
      const type = TYPE_BY_ACCOUNT_TYPE[params.accounttype];
      if (!type) {
        throw new InvalidParameter(`Unable to execute API command createaccount due to invalid value ${params.accounttype} for parameter accounttype`);
      }
      role = await builtinRole(type);
    }
    if (!role) throw new InvalidParameter('Neither account type and role ID are not provided');
    const domain = params.domainid ? await domainParam(api, 'domainid', params.domainid) : caller.domain;
    checkDomainAccess(caller, domain);
    if (domain.state !== 'Active') throw new InternalError(`The account cannot be created as domain ${domain.name} is being deleted`);
    const name = params.account ?? params.username;
    if (role.type === 'Admin' && domain.parentId) {
      throw new InvalidParameter(
        `Invalid account type ADMIN given for an account in domain ${domain.path}; unable to create user of admin role type in non-ROOT domain.`,
      );
    }
    if (await findUserByName(domain.id, params.username)) throw new InvalidParameter(`The user ${params.username} already exists in domain ${domain.path}`);
    checkNetworkDomain(params.networkdomain);
    if (await findAccountByName(domain.id, name)) throw new InvalidParameter(`The specified account: ${name} already exists`);
    const accountId = checkExternalId(api, 'accountid', params.accountid);
    const userId = checkExternalId(api, 'userid', params.userid);
    if (accountId && (await getAccount(accountId))) throw new InvalidParameter(`The specified account id: ${accountId} already exists`);
    checkRolePrivilege(caller, { id: accountId ?? '', name, roleType: role.type });
    await checkRoleEscalation(caller, role);
    const { account, user } = await createAccount(
      { name, domain, roleId: role.id, roleType: role.type, networkdomain: params.networkdomain, id: accountId },
      {
        username: params.username,
        password: params.password,
        firstname: params.firstname,
        lastname: params.lastname,
        email: params.email,
        timezone: params.timezone,
        id: userId,
      },
    ).catch((error) => {
      throw error instanceof DuplicateName ? new InvalidParameter(`The specified account: ${name} already exists`) : error;
    });
    const rendered = await renderAccount(account, caller.domain.tree, new IdentityLookups().know({ domains: [domain], accounts: [account] }), [user]);
    return {
      body: { account: rendered },
      events: [
        completed('ACCOUNT.CREATE', 'creating Account', `Account Name: ${params.username}, Domain Id:${domain.id}`, { id: account.id, type: 'Account' }),
        userCreated(user),
      ],
    };
  },
});

const listAccountsCommand = defineCommand({
  name: 'listAccounts',
  description: 'Lists Accounts and provides detailed Account information for listed Accounts',
  params: {
    accounttype: param.integer('List Accounts by Account type. Valid Account types are 1 (admin), 2 (domain-admin), and 0 (user).').optional(),
    id: param.uuid('List Account by Account ID').optional(),
    iscleanuprequired: param.boolean('List accounts by cleanuprequired attribute (values are true or false)').optional(),
    name: param.string('List account by account name').optional(),
    roleid: param.uuid('List accounts by role (Mold)').optional(),
    state: param.string('List accounts by state. Valid states are enabled, disabled, and locked.').optional(),
    details: param.list(param.string('detail'), 'Comma separated list of account details requested, value can be a list of [ all, resource, min]').optional(),
    domainid: scopeParams.domainid,
    isrecursive: scopeParams.isrecursive,
    listall: scopeParams.listall,
    ...listParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    const api = 'listAccounts';
    if (params.details?.some((detail) => !['all', 'resource', 'min'].includes(detail))) {
      throw new InvalidParameter('The details parameter contains a non permitted value. The allowed values are [all, resource, min]');
    }
    const admin = isAdminCaller(caller);
    let domain: Domain | undefined;
    if (params.domainid) {
      domain = await domainParam(api, 'domainid', params.domainid);
      checkDomainAccess(caller, domain);
    }
    let scope: ScopeFilter;
    if (params.id) {
      const account = await accountParam(api, 'id', params.id);
      if (domain && account.domainId !== domain.id) throw new InvalidParameter(`Unable to find account by id ${params.id} in domain ${domain.id}`);
      checkAccountAccess(caller, account);
      scope = { accountId: account.id, recursive: false };
    } else if (params.listall && admin) {
      scope = { tree: (domain ?? caller.domain).tree, recursive: true };
    } else if (!admin || !domain) {
      scope = { accountId: caller.account.id, recursive: false };
    } else {
      scope = { tree: domain.tree, recursive: Boolean(params.isrecursive) };
    }
    const state = params.state?.toLowerCase();
    // The users of the accounts in scope are read alongside them, once for the whole page.
    const [candidates, users]: [Account[], User[]] = scope.accountId
      ? await getAccount(scope.accountId).then(async (account) =>
          account ? [[account], await listUsersUnder(account.domainTree, account.id)] : [[], []],
        )
      : await Promise.all([listAccountsUnder(scope.tree ?? '/'), listUsersUnder(scope.tree ?? '/')]);
    const accounts = candidates
      .filter((account) => inScope(scope, { accountId: account.id, domainTree: account.domainTree }))
      // Upstream hides domain admin accounts from callers that are not admins.
      .filter((account) => admin || account.roleType !== 'DomainAdmin')
      .filter((account) => params.accounttype === undefined || ACCOUNT_TYPE[account.roleType] === params.accounttype)
      .filter((account) => state === undefined || account.state === state)
      // Mold never leaves an account needing cleanup.
      .filter(() => params.iscleanuprequired !== true)
      .filter((account) => params.name === undefined || account.name.toLowerCase() === params.name.toLowerCase())
      .filter((account) => params.roleid === undefined || account.roleId === params.roleid)
      .filter((account) => matchesKeyword(params.keyword, account.name, account.state))
      .sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name));
    const lookups = new IdentityLookups().know({ accounts, domains: [caller.domain] });
    const shownAccounts = page(accounts, params, settings);
    const usersByAccount = Map.groupBy(users, (user) => user.accountId);
    const shown = await Promise.all(
      shownAccounts.map((account) => renderAccount(account, caller.domain.tree, lookups, usersByAccount.get(account.id) ?? [])),
    );
    return { body: listBody('account', shown, accounts.length) };
  },
});

const updateAccountCommand = defineCommand({
  name: 'updateAccount',
  description: 'Updates account information for the authenticated user',
  params: {
    id: param.uuid('Account UUID').optional(),
    account: param.string('Current account name').optional(),
    domainid: param.uuid('The UUID of the domain where the account exists').optional(),
    roleid: param.uuid('The UUID of the dynamic role to set for the account').optional(),
    newname: param.string('New name for the account').optional(),
    networkdomain: param.string("Network domain for the account's networks; empty string will update domainName with NULL value").optional(),
  },
  roles: ACCOUNT_MANAGERS,
  handler: async ({ params, caller }) => {
    const api = 'updateAccount';
    const account = await accountByIdOrName(api, params);
    const domain = await domainParam(api, 'domainid', account.domainId);
    checkDomainAccess(caller, domain);
    checkRolePrivilege(caller, account);
    if (params.newname !== undefined) {
      const existing = await findAccountByName(account.domainId, params.newname);
      if (existing && existing.id !== account.id) {
        throw new InvalidParameter(
          `The account with the proposed name '${params.newname}' exists in the domain '${domain.path}' with existing account ${existing.name}`,
        );
      }
    }
    if (params.networkdomain !== undefined) {
      checkNetworkDomain(params.networkdomain);
    }
    let role: Role | undefined;
    if (params.roleid) {
      role = await getRole(params.roleid);
      if (!role) {
        throw new InvalidParameter(`Role with ID '${params.roleid}' is not found or not available for the account '${account.name}' in the domain '${domain.path}'.`);
      }
      const denied = (why: string) => new PermissionDenied(`Unable to update account role to ${role!.name}, ${why}`);
      const order: RoleType[] = ['Admin', 'ResourceAdmin', 'DomainAdmin', 'User'];
      const rank = (type: RoleType) => order.indexOf(type);
      if (caller.role.type !== 'Admin' && (rank(role.type) < rank(caller.role.type) || rank(account.roleType) < rank(caller.role.type))) {
        throw denied('as either current or new role has higher privileges than the caller');
      }
      if (role.type === 'Admin' && domain.parentId) throw denied('as the user does not belong to the ROOT domain');
      await checkRoleEscalation(caller, role);
    }
    const updated = await updateAccount(account, {
      ...(params.newname !== undefined && { name: params.newname }),
      ...(params.networkdomain !== undefined && { networkdomain: params.networkdomain }),
      ...(role && { roleId: role.id, roleType: role.type }),
    }).catch((error) => {
      throw error instanceof DuplicateName
        ? new InvalidParameter(`The account with the proposed name '${params.newname}' exists in the domain '${domain.path}'`)
        : error;
    });
    return {
      body: await respond(caller, updated),
      events: [completed('ACCOUNT.UPDATE', 'updating account', `Account Id: ${account.id}`, { id: account.id, type: 'Account' })],
    };
  },
});

const accountSelector = {
  id: param.uuid('Account id').optional(),
  account: param.string('Account name').optional(),
  domainid: param.uuid('Domain ID of the account').optional(),
};

const disableAccountCommand = defineCommand({
  name: 'disableAccount',
  description: 'Disables an account',
  isasync: true,
  params: {
    ...accountSelector,
    lock: param.boolean('If true, only lock the account; else disable the account'),
  },
  roles: ACCOUNT_MANAGERS,
  handler: async ({ params, caller }) => {
    const account = await accountByIdOrName('disableAccount', params);
    checkManagesAccount(caller, account);
    checkNotProtected(caller, account, 'Disabling');
    const state: AccountState = params.lock ? 'locked' : 'disabled';
    return startAsync(caller, {
      cmd: 'disableAccount',
      stateMachine: 'disable-identity',
      input: { kind: 'account', id: account.id, state, callerDomainTree: caller.domain.tree },
      instanceType: 'Account',
      instanceId: account.id,
      event: { type: 'ACCOUNT.DISABLE', description: `Disabling Account: ${account.name} in domain: ${account.domainId}`, resourceId: account.id, resourceType: 'Account' },
    });
  },
});

const enableAccountCommand = defineCommand({
  name: 'enableAccount',
  description: 'Enables an account',
  params: accountSelector,
  roles: ACCOUNT_MANAGERS,
  handler: async ({ params, caller }) => {
    const account = await accountByIdOrName('enableAccount', params);
    checkManagesAccount(caller, account);
    const updated = account.state === 'enabled' ? account : await updateAccount(account, { state: 'enabled' });
    return {
      body: await respond(caller, updated),
      events: [completed('ACCOUNT.ENABLE', 'enabling account', `Account Id: ${account.id}`, { id: account.id, type: 'Account' })],
    };
  },
});

const lockAccountCommand = defineCommand({
  name: 'lockAccount',
  description: 'This deprecated function used to locks an account. Look for the API DisableAccount instead',
  params: {
    account: param.string('Locks the specified account.'),
    domainid: param.uuid('Locks the specified account on this domain.'),
  },
  roles: ACCOUNT_MANAGERS,
  handler: async ({ params, caller }) => {
    const account = await accountByIdOrName('lockAccount', params);
    checkManagesAccount(caller, account);
    checkNotProtected(caller, account, 'Disabling');
    const updated = account.state === 'locked' ? account : await updateAccount(account, { state: 'locked' });
    return {
      body: await respond(caller, updated),
      events: [completed('ACCOUNT.DISABLE', 'locking account', `Account Id: ${account.id}`, { id: account.id, type: 'Account' })],
    };
  },
});

const deleteAccountCommand = defineCommand({
  name: 'deleteAccount',
  description: 'Deletes an account and all users associated with this account',
  isasync: true,
  params: { id: param.uuid('Account id') },
  roles: ACCOUNT_MANAGERS,
  handler: async ({ params, caller }) => {
    const account = await accountParam('deleteAccount', 'id', params.id);
    checkAccountAccess(caller, account);
    checkNotProtected(caller, account, 'Deletion');
    checkRolePrivilege(caller, account);
    return startAsync(caller, {
      cmd: 'deleteAccount',
      stateMachine: 'delete-account',
      input: { accountId: account.id },
      instanceType: 'Account',
      instanceId: account.id,
      event: {
        type: 'ACCOUNT.DELETE',
        description: `Deleting user Account ${account.name} (ID: ${account.id}) and all corresponding users`,
        resourceId: account.id,
        resourceType: 'Account',
      },
    });
  },
});

export const accountCommands = [
  createAccountCommand,
  listAccountsCommand,
  updateAccountCommand,
  disableAccountCommand,
  enableAccountCommand,
  lockAccountCommand,
  deleteAccountCommand,
];

