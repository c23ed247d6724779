// Resource limits and counts (upstream's UpdateResourceLimitCmd, ListResourceLimitsCmd,
// UpdateResourceCountCmd with ResourceLimitManagerImpl's rules): limits per account and per domain,
// defaults from max.account.* / max.domain.*, counts recalculated from the records that exist.
// Enforcement itself is shared/db/limits.ts (reserveResources), called by every allocation.
import { InvalidParameter, PermissionDenied } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { findAccountByName, getDomain, listAccountsUnder, listDomainsUnder, type Account, type Domain } from '../../../shared/db/identity.ts';
import {
  accountLimits,
  BYTES_PER_GIB,
  domainLimit,
  domainLimits,
  getAccountResources,
  getDomainResources,
  isStorageType,
  RESOURCE_TYPES,
  resourceType,
  setResourceCount,
  setResourceLimit,
  treeIds,
  UNLIMITED,
  type ResourceTypeDefinition,
} from '../../../shared/db/limits.ts';
import { recountAccount } from '../../../shared/db/resource-counters.ts';
import type { Settings } from '../../../shared/settings.ts';
import { ALL_ROLES, defineCommand, type Caller } from '../command.ts';
import { listResponse } from '../paging.ts';
import { checkAccess, checkDomainAccess, isDomainAdmin, isRootAdmin } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';

// ---- rendering ----

const RESOURCE_TYPE_DESCRIPTION =
  'Type of resource. Values are 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 11. 0 - Instance. Number of instances a user can create. 1 - IP. Number of public IP addresses an account can own. 2 - Volume. Number of disk volumes an account can own. 3 - Snapshot. Number of snapshots an account can own. 4 - Template. Number of templates an account can register/create. 5 - Project. Number of projects an account can own. 6 - Network. Number of networks an account can own. 7 - VPC. Number of VPC an account can own. 8 - CPU. Number of CPU an account can allocate for their resources. 9 - Memory. Amount of RAM an account can allocate for their resources. 10 - PrimaryStorage. Total primary storage space (in GiB) a user can use. 11 - SecondaryStorage. Total secondary storage space (in GiB) a user can use. ';

interface Owner {
  account?: Account;
  domain: Domain;
}

/** The owner and type fields ResourceLimitResponse and ResourceCountResponse share. */
function ownerAndType(owner: Owner, type: ResourceTypeDefinition) {
  return {
    ...(owner.account && { account: owner.account.name }),
    domainid: owner.domain.id,
    domain: owner.domain.name,
    domainpath: owner.domain.path,
    resourcetype: String(type.ordinal),
    resourcetypename: type.name,
  };
}

/** Upstream's ResourceLimitResponse; storage limits shown in GiB. */
function renderLimit(owner: Owner, type: ResourceTypeDefinition, max: number) {
  return { ...ownerAndType(owner, type), max: isStorageType(type.name) && max !== UNLIMITED ? Math.floor(max / BYTES_PER_GIB) : max };
}

/** Upstream's ResourceCountResponse (storage in bytes, memory in MiB). */
function renderCount(owner: Owner, type: ResourceTypeDefinition, count: number) {
  return { ...ownerAndType(owner, type), resourcecount: count };
}

// ---- parameters ----

function typeParam(value: string | undefined, text: string): ResourceTypeDefinition | undefined {
  if (value === undefined) return undefined;
  const type = resourceType(value);
  if (!type) throw new InvalidParameter(text);
  return type;
}

/** Upstream's AccountManagerImpl.finalizeAccountId for an account named with its domain. */
async function namedAccount(caller: Caller, api: string, accountName: string | undefined, domainid: string | undefined): Promise<Account | undefined> {
  if (accountName === undefined) return undefined;
  if (domainid === undefined) throw new InvalidParameter('Account must be specified with domainId parameter');
  const domain = await getDomain(domainid.toLowerCase());
  if (!domain) throw noSuchEntity(api, 'domainid', domainid);
  const account = await findAccountByName(domain.id, accountName);
  if (!account) throw new InvalidParameter(`Unable to find account by name ${accountName} in domain with specified id`);
  checkAccess(caller, { accountId: account.id, domainTree: account.domainTree }, `account ${account.name}`);
  return account;
}

async function domainOf(api: string, id: string): Promise<Domain> {
  const domain = await getDomain(id.toLowerCase());
  if (!domain) throw noSuchEntity(api, 'domainid', id);
  return domain;
}

const isAdmin = (caller: Caller) => isRootAdmin(caller) || isDomainAdmin(caller);

// ---- commands ----

const listResourceLimitsCommand = defineCommand({
  name: 'listResourceLimits',
  description: 'Lists resource limits.',
  params: {
    id: param.long('Lists resource limits by ID.').optional(),
    resourcetype: param.string(RESOURCE_TYPE_DESCRIPTION).optional(),
    resourcetypename: param
      .string(
        'Type of resource (wins over resourceType if both are provided). Values are: user_vm - Instance. Number of instances a user can create. public_ip - IP. Number of public IP addresses an account can own. volume - Volume. Number of disk volumes an account can own. snapshot - Snapshot. Number of snapshots an account can own. template - Template. Number of templates an account can register/create. project - Project. Number of projects an account can own. network - Network. Number of networks an account can own. vpc - VPC. Number of VPC an account can own. cpu - CPU. Number of CPU an account can allocate for their resources. memory - Memory. Amount of RAM an account can allocate for their resources. primary_storage - PrimaryStorage. Total primary storage space (in GiB) a user can use. secondary_storage - SecondaryStorage. Total secondary storage space (in GiB) a user can use.',
      )
      .optional(),
    account: param.string('list resources by account. Must be used with the domainId parameter.').optional(),
    domainid: param.uuid('list only resources belonging to the domain specified').optional(),
    isrecursive: param.boolean('defaults to false, but if true, lists all resources from the parent specified by the domainId till leaves.').optional(),
    listall: param.boolean("If set to false, list only resources belonging to the command's caller; if set to true - list resources that the caller is authorized to see. Default value is false").optional(),
    ...listParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    const api = 'listResourceLimits';
    // resourcetypename wins over resourcetype (upstream's getResourceTypeEnum).
    const type =
      params.resourcetypename !== undefined
        ? typeParam(params.resourcetypename, 'Please specify a valid resource type name.')
        : typeParam(params.resourcetype, 'Please specify a valid resource type.');
    let owner: Owner;
    if (!isAdmin(caller)) {
      // Upstream's searchForLimits: a user sees its own account's limits, whatever it names.
      if (params.account !== undefined && params.account.toLowerCase() !== caller.account.name.toLowerCase()) {
        await namedAccount(caller, api, params.account, params.domainid ?? caller.domain.id);
      }
      owner = { account: caller.account, domain: caller.domain };
    } else if (params.domainid !== undefined) {
      const domain = await domainOf(api, params.domainid);
      checkDomainAccess(caller, domain);
      const account = await namedAccount(caller, api, params.account, params.domainid);
      owner = account ? { account, domain } : { domain };
    } else {
      if (params.account !== undefined) await namedAccount(caller, api, params.account, params.domainid);
      owner = { account: caller.account, domain: caller.domain };
    }
    // Limits have no numeric ids in Mold (upstream's ResourceLimitResponse shows none either).
    if (params.id !== undefined) return { body: listResponse('resourcelimit', [], params, settings, (x: never) => x) };
    const limits = owner.account ? await accountLimits(owner.account, settings) : await domainLimits(owner.domain, settings);
    const types = RESOURCE_TYPES.filter((t) => type === undefined || t.name === type.name);
    return { body: listResponse('resourcelimit', types, params, settings, (t) => renderLimit(owner, t, limits[t.name])) };
  },
});

const updateResourceLimitCommand = defineCommand({
  name: 'updateResourceLimit',
  description: 'Updates resource limits for an account or domain.',
  params: {
    account: param.string('Update resource for a specified account. Must be used with the domainId parameter.').optional(),
    domainid: param
      .uuid('Update resource limits for all accounts in specified domain. If used with the account parameter, updates resource limits for a specified account in specified domain.')
      .optional(),
    max: param.long('  Maximum resource limit.').optional(),
    resourcetype: param.string(`Type of resource to update. ${RESOURCE_TYPE_DESCRIPTION}`),
  },
  roles: ['Admin', 'ResourceAdmin', 'DomainAdmin'],
  handler: async ({ params, caller, settings }) => {
    const api = 'updateResourceLimit';
    let max = params.max ?? UNLIMITED;
    if (max < UNLIMITED) throw new InvalidParameter("Please specify either '-1' for an infinite limit, or a limit that is at least '0'.");
    const type = typeParam(params.resourcetype, 'Please specify valid resource type')!;
    // Storage limits are given in GiB and kept in bytes.
    if (isStorageType(type.name) && max >= 0) max *= BYTES_PER_GIB;
    const account = await namedAccount(caller, api, params.account, params.domainid);
    if (account) {
      if (account.roleType === 'Admin' && max !== UNLIMITED) throw new InvalidParameter(`Only ${UNLIMITED} limit is supported for Root Admin accounts`);
      if (caller.account.id === account.id && isDomainAdmin(caller)) {
        throw new PermissionDenied(`Unable to update resource limit for their own account ${account.id}, permission denied`);
      }
      await setResourceLimit('ACCOUNT', account.id, type.name, max);
      const domain = (await getDomain(account.domainId))!;
      return { body: { resourcelimit: renderLimit({ account, domain }, type, max) } };
    }
    if (params.domainid === undefined) throw new InvalidParameter('AccountId or domainId have to be specified in order to update resource limit');
    const domain = await domainOf(api, params.domainid);
    checkDomainAccess(caller, domain);
    if (!domain.parentId) throw new PermissionDenied(`Cannot update resource limit for ROOT domain ${domain.id}, permission denied`);
    if ((caller.domain.id === domain.id && caller.role.type === 'DomainAdmin') || caller.role.type === 'ResourceAdmin') {
      throw new PermissionDenied(`Unable to update resource limit for domain ${domain.id}, permission denied`);
    }
    const parent = (await getDomain(domain.parentId))!;
    const parentMaximum = await effectiveDomainLimit(parent, type, settings);
    if (parentMaximum >= 0 && max > parentMaximum) {
      throw new InvalidParameter(
        `Domain ${domain.name}(id: ${parent.id}) has maximum allowed resource limit ${parentMaximum} for ${type.name}, please specify a value less than or equal to ${parentMaximum}`,
      );
    }
    await setResourceLimit('DOMAIN', domain.id, type.name, max);
    return { body: { resourcelimit: renderLimit({ domain }, type, max) } };
  },
});

async function effectiveDomainLimit(domain: Domain, type: ResourceTypeDefinition, settings: Settings): Promise<number> {
  const chain = await Promise.all(treeIds(domain.tree).reverse().map((id) => getDomainResources(id)));
  return domainLimit(domain, type, chain, settings);
}

/**
 * Upstream's recalculateDomainResourceCount: every account in the domain's subtree is recounted,
 * and each domain of the subtree counts what its accounts and its child domains hold.
 */
async function recountDomain(domain: Domain, types: readonly ResourceTypeDefinition[]): Promise<Record<string, number>> {
  const accounts = await listAccountsUnder(domain.tree);
  const perAccount = new Map<Account, Record<string, number>>();
  for (const account of accounts) perAccount.set(account, await recountAccount(account, types));
  const domains = await listDomainsUnder(domain.tree);
  let result: Record<string, number> = {};
  for (const below of domains) {
    const stored = (await getDomainResources(below.id)).counts;
    const totals: Record<string, number> = {};
    for (const type of types) {
      let sum = 0;
      for (const [account, counts] of perAccount) if (account.domainTree.startsWith(below.tree)) sum += counts[type.name];
      totals[type.name] = sum;
      if (sum !== stored[type.name]) await setResourceCount('DOMAIN', below.id, type.name, sum);
    }
    if (below.id === domain.id) result = totals;
  }
  return result;
}

const updateResourceCountCommand = defineCommand({
  name: 'updateResourceCount',
  description: 'Recalculate and update resource count for an account or domain.',
  params: {
    account: param.string('Update resource count for a specified account. Must be used with the domainId parameter.').optional(),
    domainid: param.uuid(
      'If account parameter specified then updates resource counts for a specified account in this domain else update resource counts for all accounts & child domains in specified domain.',
    ),
    resourcetype: param.string(`Type of resource to update. If specifies valid values are 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 11. If not specified will update all resource counts${RESOURCE_TYPE_DESCRIPTION.slice(RESOURCE_TYPE_DESCRIPTION.indexOf('0 -'))}`).optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    const api = 'updateResourceCount';
    const type = typeParam(params.resourcetype, 'Please specify valid resource type');
    const domain = await domainOf(api, params.domainid);
    checkDomainAccess(caller, domain);
    const account = await namedAccount(caller, api, params.account, params.domainid);
    const types = RESOURCE_TYPES.filter((t) => type === undefined || t.name === type.name);
    const owner: Owner = account ? { account, domain } : { domain };
    const counts = account ? await recountAccount(account, types) : await recountDomain(domain, types);
    return { body: listResponse('resourcecount', types, {}, settings, (t) => renderCount(owner, t, counts[t.name])) };
  },
});

export const limitCommands = [listResourceLimitsCommand, updateResourceLimitCommand, updateResourceCountCommand];
