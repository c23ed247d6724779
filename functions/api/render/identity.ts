// Upstream's DomainResponse, AccountResponse and UserResponse. A password never appears; a secret
// key appears only in registerUserKeys/getUserKeys (renderUserKeys). Lookups cache what several
// rows share (roles, domains, accounts) so a list costs one read per distinct record.
import { ACCOUNT_TYPE, getAccount, getDomain, listAllDomains, listUsersUnder, type Account, type Domain, type User } from '../../../shared/db/identity.ts';
import { getRole, listRoles, type Role } from '../../../shared/db/roles.ts';

export class IdentityLookups {
  private roles?: Promise<Map<string, Role>>;
  private readonly domains = new Map<string, Promise<Domain | undefined>>();
  private readonly accounts = new Map<string, Promise<Account | undefined>>();

  async role(id: string): Promise<Role | undefined> {
    this.roles ??= listRoles().then((roles) => new Map(roles.map((role) => [role.id, role])));
    return (await this.roles).get(id) ?? getRole(id);
  }

  domain(id: string): Promise<Domain | undefined> {
    let found = this.domains.get(id);
    if (!found) this.domains.set(id, (found = getDomain(id)));
    return found;
  }

  account(id: string): Promise<Account | undefined> {
    let found = this.accounts.get(id);
    if (!found) this.accounts.set(id, (found = getAccount(id)));
    return found;
  }

  /** Seeds the caches with records the caller already holds. */
  know(records: { domains?: Domain[]; accounts?: Account[] }): this {
    for (const domain of records.domains ?? []) this.domains.set(domain.id, Promise.resolve(domain));
    for (const account of records.accounts ?? []) this.accounts.set(account.id, Promise.resolve(account));
    return this;
  }
}

/** DomainResponse (details=min has the same fields here: Mold keeps no resource limits yet). */
export function renderDomain(domain: Domain, context: { parent?: Domain; hasChild: boolean }) {
  return {
    id: domain.id,
    name: domain.name,
    level: domain.level,
    ...(context.parent && { parentdomainid: context.parent.id, parentdomainname: context.parent.name }),
    haschild: context.hasChild,
    ...(domain.networkdomain && { networkdomain: domain.networkdomain }),
    path: domain.path,
    state: domain.state,
    created: domain.created,
    hasannotations: false,
  };
}

/** Domains with their parents and whether they have (active) children, from one read of all domains. */
export async function renderDomains(domains: Domain[]) {
  const all = await listAllDomains();
  const byId = new Map(all.map((domain) => [domain.id, domain]));
  const withChildren = new Set(all.filter((domain) => domain.state === 'Active' && domain.parentId).map((domain) => domain.parentId!));
  return domains.map((domain) =>
    renderDomain(domain, { parent: domain.parentId ? byId.get(domain.parentId) : undefined, hasChild: withChildren.has(domain.id) }),
  );
}

export async function renderUser(user: User, callerDomainTree: string, lookups = new IdentityLookups()) {
  const account = await lookups.account(user.accountId);
  const domain = await lookups.domain(user.domainId);
  const role = account ? await lookups.role(account.roleId) : undefined;
  return {
    id: user.id,
    username: user.username,
    firstname: user.firstname,
    lastname: user.lastname,
    ...(user.email && { email: user.email }),
    created: user.created,
    state: user.state,
    account: account?.name,
    accounttype: account ? ACCOUNT_TYPE[account.roleType] : undefined,
    usersource: 'native',
    roleid: account?.roleId,
    roletype: role?.type ?? account?.roleType,
    rolename: role?.name,
    domainid: user.domainId,
    domain: domain?.name,
    ...(user.timezone && { timezone: user.timezone }),
    ...(user.apikey && { apikey: user.apikey }),
    accountid: user.accountId,
    iscallerchilddomain: user.domainTree.startsWith(callerDomainTree),
    isdefault: Boolean(user.isdefault),
    is2faenabled: false,
    is2famandated: false,
  };
}

export async function renderAccount(account: Account, callerDomainTree: string, lookups = new IdentityLookups(), users?: User[]) {
  const domain = await lookups.domain(account.domainId);
  const role = await lookups.role(account.roleId);
  const members = users ?? (await listUsersUnder(account.domainTree, account.id));
  return {
    id: account.id,
    name: account.name,
    accounttype: ACCOUNT_TYPE[account.roleType],
    roleid: account.roleId,
    roletype: role?.type ?? account.roleType,
    rolename: role?.name,
    domainid: account.domainId,
    domain: domain?.name,
    domainpath: domain?.path,
    state: account.state,
    iscleanuprequired: false,
    created: account.created,
    user: await Promise.all(members.map((user) => renderUser(user, callerDomainTree, lookups))),
    ...(account.networkdomain && { networkdomain: account.networkdomain }),
    isdefault: Boolean(account.isdefault),
    hasannotations: false,
  };
}

/** RegisterResponse: the only place a secret key leaves Mold. */
export function renderUserKeys(keys: { apikey?: string; secretkey?: string }) {
  return { userkeys: { ...(keys.apikey && { apikey: keys.apikey }), ...(keys.secretkey && { secretkey: keys.secretkey }) } };
}
