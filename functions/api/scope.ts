// Who may see and touch what. Root-admin-type roles reach everything; domain admins their domain's
// subtree; users their own account. Listing follows upstream's buildACLSearchParameters.
import { InvalidParameter, PermissionDenied } from '../../shared/cloudstack/errors.ts';
import { findAccountByName, getDomain, type Account, type Domain } from '../../shared/db/identity.ts';
import type { Caller } from './command.ts';

export const isRootAdmin = (caller: Caller) => caller.role.type === 'Admin';
export const isDomainAdmin = (caller: Caller) => caller.role.type === 'DomainAdmin' || caller.role.type === 'ResourceAdmin';

/** Something owned: by an account, in a domain (its tree). */
export interface Owned {
  accountId: string;
  domainTree: string;
}

export function canAccessDomain(caller: Caller, domain: Pick<Domain, 'tree' | 'id'>): boolean {
  if (isRootAdmin(caller)) return true;
  if (isDomainAdmin(caller)) return domain.tree.startsWith(caller.domain.tree);
  return domain.id === caller.domain.id;
}

export function canAccess(caller: Caller, owned: Owned): boolean {
  if (isRootAdmin(caller)) return true;
  if (isDomainAdmin(caller)) return owned.domainTree.startsWith(caller.domain.tree);
  return owned.accountId === caller.account.id;
}

/** Throws upstream's PermissionDenied unless the caller may act on `owned`. */
export function checkAccess(caller: Caller, owned: Owned, what: string): void {
  if (!canAccess(caller, owned)) {
    throw new PermissionDenied(`Caller ${caller.account.name} does not have permission to operate with ${what}`);
  }
}

/** How upstream's exceptions name an account: AccountVO.toString(). */
export const describeAccount = (account: Pick<Account, 'id' | 'name'>) => `Acct[${account.id}-${account.name}]`;

/** Upstream's checkAccess(caller, domain): the caller's domain or one below it (users: their own). */
export function checkDomainAccess(caller: Caller, domain: Domain): void {
  if (!canAccessDomain(caller, domain)) {
    throw new PermissionDenied(`${describeAccount(caller.account)} does not have permission to operate within domain id=${domain.id}`);
  }
}

export interface ScopeParams {
  domainid?: string;
  account?: string;
  isrecursive?: boolean;
  listall?: boolean;
}

/** What a list may return: a domain subtree (or one domain), optionally one account. */
export interface ListScope {
  tree: string;
  recursive: boolean;
  accountId?: string;
}

export async function resolveDomain(caller: Caller, domainid: string): Promise<Domain> {
  const domain = await getDomain(domainid);
  if (!domain) throw new InvalidParameter(`Unable to find domain by id ${domainid}`);
  checkDomainAccess(caller, domain);
  return domain;
}

export async function resolveAccount(caller: Caller, domain: Domain, name: string): Promise<Account> {
  const account = await findAccountByName(domain.id, name);
  if (!account) throw new InvalidParameter(`Unable to find account by name ${name} in domain ${domain.id}`);
  checkAccess(caller, { accountId: account.id, domainTree: account.domainTree }, `account ${name}`);
  return account;
}

/**
 * The scope of a list of things owned by accounts (VMs, events, jobs): a user sees its account; an
 * admin without listall sees its own account too, and with listall all it may see.
 */
export async function ownedScope(caller: Caller, params: ScopeParams): Promise<ListScope> {
  if (params.account && !params.domainid && !isRootAdmin(caller) && !isDomainAdmin(caller)) {
    // A user may name only its own account.
    if (params.account.toLowerCase() !== caller.account.name.toLowerCase()) {
      throw new PermissionDenied(`Caller ${caller.account.name} does not have permission to operate with account ${params.account}`);
    }
  }
  if (params.domainid || params.account) {
    const domain = params.domainid ? await resolveDomain(caller, params.domainid) : caller.domain;
    if (params.account) {
      const account = await resolveAccount(caller, domain, params.account);
      return { tree: domain.tree, recursive: false, accountId: account.id };
    }
    if (!isRootAdmin(caller) && !isDomainAdmin(caller)) {
      return { tree: caller.domain.tree, recursive: false, accountId: caller.account.id };
    }
    return { tree: domain.tree, recursive: Boolean(params.isrecursive) };
  }
  if (params.listall && (isRootAdmin(caller) || isDomainAdmin(caller))) {
    return { tree: caller.domain.tree, recursive: true };
  }
  return { tree: caller.domain.tree, recursive: false, accountId: caller.account.id };
}

/** A scope to filter by: one account, a domain (or its subtree), or, without a tree, everything. */
export type ScopeFilter = Pick<ListScope, 'accountId' | 'recursive'> & { tree?: string };

/** True when `owned` falls in the scope. */
export function inScope(scope: ScopeFilter, owned: Owned): boolean {
  if (scope.accountId) return owned.accountId === scope.accountId;
  if (scope.tree === undefined) return true;
  return scope.recursive ? owned.domainTree.startsWith(scope.tree) : owned.domainTree === scope.tree;
}
