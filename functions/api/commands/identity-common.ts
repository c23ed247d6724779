// Checks shared by the domain, account and user commands: upstream's refusal texts, the role-type
// hierarchy (AccountManagerImpl.verifyCallerPrivilegeForUserOrAccountOperations), role escalation
// and the scope of account and user listings (buildACLSearchParameters).
import { InvalidParameter, PermissionDenied } from '../../../shared/cloudstack/errors.ts';
import { findAccountByName, getAccount, getDomain, type Account, type Domain, type RoleType } from '../../../shared/db/identity.ts';
import type { Role } from '../../../shared/db/roles.ts';
import { type Caller, completedEvent, type Recorded } from '../command.ts';
import { canAccess, checkDomainAccess, describeAccount, isDomainAdmin, isRootAdmin, type ScopeFilter } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';


export async function domainParam(api: string, param: string, id: string): Promise<Domain> {
  const domain = await getDomain(id);
  if (!domain) throw noSuchEntity(api, param, id);
  return domain;
}

export async function accountParam(api: string, param: string, id: string): Promise<Account> {
  const account = await getAccount(id);
  if (!account) throw noSuchEntity(api, param, id);
  return account;
}

export const isAdminCaller = (caller: Caller) => isRootAdmin(caller) || isDomainAdmin(caller);

/** The ROOT domain's id: the first segment of every tree. */
export const rootDomainId = (caller: Caller) => caller.domain.tree.split('/')[1];

/** upstream's RoleType ids: a lower id is more privileged. */
const ROLE_TYPE_ID: Record<RoleType, number> = { Admin: 1, ResourceAdmin: 2, DomainAdmin: 3, User: 4 };
/** role.types.allowed.for.operations.on.accounts.of.same.role.type (default). */
const SAME_TYPE_ALLOWED: RoleType[] = ['Admin', 'ResourceAdmin', 'DomainAdmin'];

/**
 * A caller acts on accounts (and their users) of a lower role type, of its own type only where
 * upstream allows it (admins, not users of other accounts), never on a higher one.
 */
export function checkRolePrivilege(caller: Caller, target: Pick<Account, 'id' | 'name' | 'roleType'>): void {
  const callerType = ROLE_TYPE_ID[caller.role.type];
  const targetType = ROLE_TYPE_ID[target.roleType];
  if (caller.account.isdefault || callerType < targetType) return;
  if (callerType === targetType) {
    if (caller.account.id === target.id || SAME_TYPE_ALLOWED.includes(caller.role.type)) return;
    throw new PermissionDenied(
      `The calling account [${caller.account.name}, ${caller.account.id}] is not allowed to perform this operation on users from other accounts of the same role type within the domain`,
    );
  }
  throw new PermissionDenied(
    `The calling account [${caller.account.name}, ${caller.account.id}] has a lower role type than the user account [${target.name}, ${target.id}]`,
  );
}

/**
 * Upstream's checkRoleEscalation: an account may be given a role only if every API that role may
 * call is one the caller may call too.
 */
export async function checkRoleEscalation(caller: Caller, role: Role): Promise<void> {
  if (role.id === caller.role.id) return;
  // Imported here: the registry imports the command modules.
  const { COMMANDS, mayCall } = await import('../registry.ts');
  const as = (r: Role) => ({ ...caller, role: r });
  const beyond = COMMANDS.find((command) => mayCall(as(role), command) && !mayCall(caller, command));
  if (beyond) {
    throw new PermissionDenied(
      `User of Account ${describeAccount(caller.account)} and domain ${caller.domain.path} can not create an account with access to more privileges they have themself.`,
    );
  }
}


/** Upstream's checkAccess(caller, null, true, account): the caller's account, or one in its subtree for admins. */
export function checkAccountAccess(caller: Caller, account: Account): void {
  if (!canAccess(caller, { accountId: account.id, domainTree: account.domainTree })) {
    throw new PermissionDenied(`There's no way to confirm ${describeAccount(caller.account)} has access to ${describeAccount(account)}`);
  }
}

/** The account named by `id`, or by `account` in `domainid`, as updateAccount/enableAccount/disableAccount find it. */
export async function accountByIdOrName(
  api: string,
  params: { id?: string; account?: string; domainid?: string },
): Promise<Account> {
  if (params.id) return accountParam(api, 'id', params.id);
  if (params.domainid) await domainParam(api, 'domainid', params.domainid);
  const account = params.account && params.domainid ? await findAccountByName(params.domainid, params.account) : undefined;
  if (!account) {
    throw new InvalidParameter(
      `Unable to find account by accountId: ${params.id ?? 'null'} OR by name: ${params.account ?? 'null'} in domain ${params.domainid ?? 'null'}`,
    );
  }
  return account;
}

/** NetUtils.verifyDomainName: labels of letters, digits and hyphens, at most 190 characters in all. */
export function isValidNetworkDomain(name: string): boolean {
  if (name.length > 190) return false;
  return name.split('.').every((label) => /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/.test(label));
}

export const NETWORK_DOMAIN_TEXT =
  'Invalid network domain. Total length shouldn\'t exceed 190 chars. Each domain label must be between 1 and 63 characters long, can contain ASCII letters \'a\' through \'z\', the digits \'0\' through \'9\', and the hyphen (\'-\'); can\'t start or end with "-"';

export function checkNetworkDomain(networkdomain: string | undefined): void {
  if (networkdomain !== undefined && !isValidNetworkDomain(networkdomain)) throw new InvalidParameter(NETWORK_DOMAIN_TEXT);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An externally chosen id (accountid, userid, domainid of createDomain): Mold's ids are UUIDs. */
export function checkExternalId(api: string, param: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!UUID.test(value)) {
    throw new InvalidParameter(`Unable to execute API command ${api.toLowerCase()} due to invalid value. Invalid parameter ${param} value=${value}: is not a valid UUID`);
  }
  return value.toLowerCase();
}

/** A completed event as upstream's ActionEventUtils words a synchronous @ActionEvent. */
export const completed = (type: string, action: string, details: string, resource: { id: string; type: 'Domain' | 'Account' | 'User' }): Recorded =>
  completedEvent(type, action, resource, details);

/** USER.CREATE, recorded by createUser and by createAccount for its first user. */
export function userCreated(user: { id: string; username: string; firstname: string; lastname: string }): Recorded {
  return completed('USER.CREATE', 'creating User', `UserName: ${user.username}, FirstName :${user.firstname}, LastName: ${user.lastname}`, {
    id: user.id,
    type: 'User',
  });
}

/** buildACLSearchParameters for listUsers: account/domain filters, listall, and ids seen by admins. */
export async function userListScope(
  caller: Caller,
  api: string,
  params: { id?: string; account?: string; domainid?: string; isrecursive?: boolean; listall?: boolean },
): Promise<ScopeFilter> {
  let domain: Domain | undefined;
  if (params.domainid) {
    domain = await domainParam(api, 'domainid', params.domainid);
    checkDomainAccess(caller, domain);
  }
  if (params.account) {
    const inDomain = domain ?? caller.domain;
    const account = await findAccountByName(inDomain.id, params.account);
    if (!account) throw new InvalidParameter(`could not find account ${params.account} in domain ${inDomain.path}`);
    checkAccountAccess(caller, account);
    return { accountId: account.id, recursive: false };
  }
  if (!isAdminCaller(caller)) return { accountId: caller.account.id, recursive: false };
  if (domain) return { tree: domain.tree, recursive: Boolean(params.isrecursive) };
  if (!params.listall) {
    if (!params.id) return { accountId: caller.account.id, recursive: false };
    return isRootAdmin(caller) ? { recursive: true } : { tree: caller.domain.tree, recursive: true };
  }
  return isRootAdmin(caller) ? { recursive: true } : { tree: caller.domain.tree, recursive: true };
}

