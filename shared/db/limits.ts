// Resource limits and counts of accounts and domains (upstream's resource_limit / resource_count and
// ResourceLimitManagerImpl). One item per owner holds its explicit limits and its counts:
//
//   RESOURCES#ACCOUNT#<id> / RESOURCES   limit_<type>, count_<type> of one account
//   RESOURCES#DOMAIN#<id>  / RESOURCES   limit_<type>, count_<type> of one domain
//
// A limit not set on its owner comes from upstream's rules: an account's from max.account.*; a
// domain's from its nearest parent domain with one (never ROOT), else max.domain.*. Root admin
// accounts and the ROOT domain are never limited. Storage limits and counts are in bytes (the API
// shows limits in GiB), memory in MiB, cpu in cores.
//
// reserveResources checks the account and every domain above it and raises all their counts in one
// conditional transaction: each limited count must still be at most limit − amount and each limit
// must still be the one checked against, so concurrent reservations never over-count; a refused
// or conflicting transaction is re-read and retried, or refused with upstream's text (532).
import { DeleteCommand, GetCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../aws.ts';
import { InternalError, ResourceLimitExceeded } from '../cloudstack/errors.ts';
import { loadSettings, type SettingName, type Settings } from '../settings.ts';
import { getAccount, getDomain, type Account, type Domain } from './identity.ts';
import { getItems, isConditionFailure, tableName } from './items.ts';

export interface ResourceTypeDefinition {
  /** Upstream's ResourceType ordinal, the `resourcetype` number. */
  ordinal: number;
  /** Upstream's ResourceType name, the `resourcetypename`. */
  name: ResourceTypeName;
  /** Other names accepted for it (the words of the API's parameter description). */
  aliases: readonly string[];
  /** The max.account.<x> / max.domain.<x> defaults. */
  setting?: string;
  /** Upstream's defaults where Mold has no setting for it (projects, VPCs). */
  fixedDefaults?: { account: number; domain: number };
}

export const RESOURCE_TYPES = [
  { ordinal: 0, name: 'user_vm', aliases: ['instance'], setting: 'user.vms' },
  { ordinal: 1, name: 'public_ip', aliases: ['ip'], setting: 'public.ips' },
  { ordinal: 2, name: 'volume', aliases: [], setting: 'volumes' },
  { ordinal: 3, name: 'snapshot', aliases: [], setting: 'snapshots' },
  { ordinal: 4, name: 'template', aliases: [], setting: 'templates' },
  { ordinal: 5, name: 'project', aliases: [], fixedDefaults: { account: 10, domain: 50 } },
  { ordinal: 6, name: 'network', aliases: [], setting: 'networks' },
  { ordinal: 7, name: 'vpc', aliases: [], fixedDefaults: { account: 20, domain: 50 } },
  { ordinal: 8, name: 'cpu', aliases: [], setting: 'cpus' },
  { ordinal: 9, name: 'memory', aliases: [], setting: 'memory' },
  { ordinal: 10, name: 'primary_storage', aliases: ['primarystorage'], setting: 'primary.storage' },
  { ordinal: 11, name: 'secondary_storage', aliases: ['secondarystorage'], setting: 'secondary.storage' },
] as const satisfies readonly (Omit<ResourceTypeDefinition, 'name'> & { name: string })[];

export type ResourceTypeName = (typeof RESOURCE_TYPES)[number]['name'];
export type ResourceAmounts = Partial<Record<ResourceTypeName, number>>;

/** Upstream's ResourceType.bytesToGiB. */
export const BYTES_PER_GIB = 1024 ** 3;
export const UNLIMITED = -1;

export const isStorageType = (type: ResourceTypeName) => type === 'primary_storage' || type === 'secondary_storage';

/** A type by its number or by name (upstream's or an alias), case-insensitively; undefined if none. */
export function resourceType(value: string | number): ResourceTypeDefinition | undefined {
  const text = String(value).trim().toLowerCase();
  if (/^\d+$/.test(text)) return RESOURCE_TYPES.find((type) => type.ordinal === Number(text));
  return RESOURCE_TYPES.find((type) => type.name === text || (type.aliases as readonly string[]).includes(text));
}

export const resourceTypeByName = (name: ResourceTypeName): ResourceTypeDefinition => RESOURCE_TYPES.find((type) => type.name === name)!;

// ---- the owner items ----

type OwnerKind = 'ACCOUNT' | 'DOMAIN';

export const resourcesKey = (kind: OwnerKind, id: string) => ({ pk: `RESOURCES#${kind}#${id}`, sk: 'RESOURCES' });

export interface OwnerResources {
  /** Limits set explicitly on this owner (bytes for storage). */
  limits: ResourceAmounts;
  counts: ResourceAmounts;
}

const limitAttribute = (type: ResourceTypeName) => `limit_${type}`;
const countAttribute = (type: ResourceTypeName) => `count_${type}`;

function ownerResources(item: Record<string, unknown> | undefined): OwnerResources {
  const limits: ResourceAmounts = {};
  const counts: ResourceAmounts = {};
  for (const { name } of RESOURCE_TYPES) {
    const limit = item?.[limitAttribute(name)];
    const count = item?.[countAttribute(name)];
    if (typeof limit === 'number') limits[name] = limit;
    if (typeof count === 'number') counts[name] = count;
  }
  return { limits, counts };
}

async function readOwners(keys: { kind: OwnerKind; id: string }[]): Promise<OwnerResources[]> {
  if (keys.length === 0) return [];
  const items = await getItems<Record<string, unknown>[]>(keys.map(({ kind, id }) => resourcesKey(kind, id)));
  return items.map((item) => ownerResources(item));
}

export async function getAccountResources(accountId: string): Promise<OwnerResources> {
  return (await readOwners([{ kind: 'ACCOUNT', id: accountId }]))[0];
}

export async function getDomainResources(domainId: string): Promise<OwnerResources> {
  return (await readOwners([{ kind: 'DOMAIN', id: domainId }]))[0];
}

/** The ids of a /a/b/c/ tree, ROOT first. */
export const treeIds = (tree: string) => tree.split('/').filter(Boolean);

const isRootDomain = (domain: Pick<Domain, 'parentId'>) => !domain.parentId;

// ---- effective limits (upstream's findCorrectResourceLimitForAccount / ForDomain) ----

function defaultLimit(kind: 'account' | 'domain', type: ResourceTypeDefinition, settings: Settings): number {
  let value: number;
  if (type.setting) value = Number(settings.globalRaw(`max.${kind}.${type.setting}` as SettingName));
  else value = type.fixedDefaults![kind];
  if (!Number.isFinite(value) || value < 0) return UNLIMITED;
  return isStorageType(type.name) ? value * BYTES_PER_GIB : value;
}

/** The limit that applies to an account (bytes for storage); -1 for none. */
export function accountLimit(account: Pick<Account, 'roleType'>, type: ResourceTypeDefinition, own: OwnerResources, settings: Settings): number {
  if (account.roleType === 'Admin') return UNLIMITED;
  return own.limits[type.name] ?? defaultLimit('account', type, settings);
}

/**
 * The limit that applies to a domain: its own, else its nearest non-ROOT parent's, else the default;
 * -1 for ROOT. `chain` holds the resources of the domain and its parents, nearest first, ROOT last.
 */
export function domainLimit(domain: Pick<Domain, 'parentId'>, type: ResourceTypeDefinition, chain: OwnerResources[], settings: Settings): number {
  if (isRootDomain(domain)) return UNLIMITED;
  // The last entry of the chain is ROOT's, which never lends its limits.
  for (const owner of chain.slice(0, -1)) {
    const limit = owner.limits[type.name];
    if (limit !== undefined) return limit;
  }
  return defaultLimit('domain', type, settings);
}

/** The effective limits of a domain, by type. */
export async function domainLimits(domain: Domain, settings?: Settings): Promise<Record<ResourceTypeName, number>> {
  const global = settings ?? (await loadSettings());
  const ids = treeIds(domain.tree).reverse();
  const chain = await readOwners(ids.map((id) => ({ kind: 'DOMAIN' as const, id })));
  return Object.fromEntries(RESOURCE_TYPES.map((type) => [type.name, domainLimit(domain, type, chain, global)])) as Record<ResourceTypeName, number>;
}

/** The effective limits of an account, by type. */
export async function accountLimits(account: Account, settings?: Settings): Promise<Record<ResourceTypeName, number>> {
  const global = settings ?? (await loadSettings());
  const own = await getAccountResources(account.id);
  return Object.fromEntries(RESOURCE_TYPES.map((type) => [type.name, accountLimit(account, type, own, global)])) as Record<ResourceTypeName, number>;
}

// ---- setting limits and counts ----

/** Sets an owner's explicit limit (already in bytes for storage). */
export async function setResourceLimit(kind: OwnerKind, id: string, type: ResourceTypeName, max: number): Promise<void> {
  await dynamo().send(
    new UpdateCommand({
      TableName: tableName(),
      Key: resourcesKey(kind, id),
      UpdateExpression: 'SET #limit = :max, ownerKind = :kind, ownerId = :id',
      ExpressionAttributeNames: { '#limit': limitAttribute(type) },
      ExpressionAttributeValues: { ':max': max, ':kind': kind, ':id': id },
    }),
  );
}

/**
 * Sets an owner's count to a recalculated value (updateResourceCount). With `expected`, only if the
 * count is still that (absent when undefined): a reservation made meanwhile is not overwritten, and
 * the answer is false.
 */
export async function setResourceCount(kind: OwnerKind, id: string, type: ResourceTypeName, count: number, expected?: { count: number | undefined }): Promise<boolean> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: resourcesKey(kind, id),
        UpdateExpression: 'SET #count = :count, ownerKind = :kind, ownerId = :id',
        ExpressionAttributeNames: { '#count': countAttribute(type) },
        ExpressionAttributeValues: { ':count': count, ':kind': kind, ':id': id, ...(expected?.count !== undefined && { ':expected': expected.count }) },
        ...(expected && { ConditionExpression: expected.count === undefined ? 'attribute_not_exists(#count)' : '#count = :expected' }),
      }),
    );
    return true;
  } catch (error) {
    if (expected && isConditionFailure(error)) return false;
    throw error;
  }
}

/** Removes an owner's limits and counts (its account or domain is gone). */
export async function deleteOwnerResources(kind: OwnerKind, id: string): Promise<void> {
  await dynamo().send(new DeleteCommand({ TableName: tableName(), Key: resourcesKey(kind, id) }));
}

// ---- upstream's texts ----

/** NumbersUtil.toReadableSize. */
function readableSize(bytes: number): string {
  const KB = 1024;
  const MB = KB * 1024;
  const GB = MB * 1024;
  const TB = GB * 1024;
  if (bytes >= 0 && bytes < KB) return `${bytes} bytes`;
  if (bytes < MB) return `${(bytes / KB).toFixed(2)} KB`;
  if (bytes < GB) return `${(bytes / MB).toFixed(2)} MB`;
  if (bytes < TB) return `${(bytes / GB).toFixed(2)} GB`;
  return `${(bytes / TB).toFixed(4)} TB`;
}

/** NumbersUtil.toHumanReadableSize with display.human.readable.sizes on (upstream's default). */
const amountText = (type: ResourceTypeName, amount: number) => (isStorageType(type) ? `(${readableSize(amount)}) ${amount}` : String(amount));

/** ResourceLimitManagerImpl.checkAccountResourceLimit's text (4.20, no tag). */
export function accountLimitText(account: Pick<Account, 'name' | 'domainId'>, type: ResourceTypeName, limit: number, current: number, requested: number): string {
  const t = (value: number) => amountText(type, value);
  return (
    `Maximum amount of resources of Type = '${type}', tag = 'null' for Account Name = ${account.name} in Domain Id = ${account.domainId} is exceeded: ` +
    `Account Resource Limit = ${t(limit)}, Current Account Resource Amount = ${t(current)}, Current Account Resource Reservation = ${t(0)}, Requested Resource Amount = ${t(requested)}.`
  );
}

/** ResourceLimitManagerImpl.checkDomainResourceLimit's text (4.20, no tag). */
export function domainLimitText(domain: Pick<Domain, 'id'>, type: ResourceTypeName, limit: number, current: number, requested: number): string {
  const t = (value: number) => amountText(type, value);
  return (
    `Maximum domain resource limits of Type '${type}' for Domain Id = ${domain.id} is exceeded: Domain Resource Limit = ${t(limit)}, ` +
    `Current Domain Resource Amount = ${t(current)}, Current Resource Reservation = ${t(0)}, Requested Resource Amount = ${t(requested)}.`
  );
}

// ---- reserving and releasing ----

interface Plan {
  account: Account;
  /** The account's domain and its parents, nearest first, ROOT last. */
  domains: Domain[];
  accountResources: OwnerResources;
  domainResources: OwnerResources[];
}

async function plan(account: Account): Promise<Plan> {
  const ids = treeIds(account.domainTree).reverse();
  const domains = await Promise.all(ids.map((id) => getDomain(id)));
  const [accountResources, ...domainResources] = await readOwners([
    { kind: 'ACCOUNT', id: account.id },
    ...ids.map((id) => ({ kind: 'DOMAIN' as const, id })),
  ]);
  return { account, domains: domains.filter((d): d is Domain => d !== undefined), accountResources, domainResources };
}

interface Check {
  kind: OwnerKind;
  id: string;
  type: ResourceTypeName;
  amount: number;
  /** The explicit limit on the item as read (conditions keep it), undefined when none. */
  ownLimit: number | undefined;
  /** The limit that applies, -1 for none. */
  limit: number;
  current: number;
  refusal: () => string;
}

/** Every (owner, type) of a reservation with what applies; throws the first limit it exceeds. */
function checksOf(p: Plan, amounts: [ResourceTypeName, number][], settings: Settings): Check[] {
  const checks: Check[] = [];
  for (const [name, amount] of amounts) {
    const type = resourceTypeByName(name);
    const current = p.accountResources.counts[name] ?? 0;
    const limit = accountLimit(p.account, type, p.accountResources, settings);
    checks.push({
      kind: 'ACCOUNT',
      id: p.account.id,
      type: name,
      amount,
      ownLimit: p.accountResources.limits[name],
      limit,
      current,
      refusal: () => accountLimitText(p.account, name, limit, current, amount),
    });
    p.domains.forEach((domain, index) => {
      const chain = p.domainResources.slice(index);
      const domainCurrent = p.domainResources[index].counts[name] ?? 0;
      const applies = domainLimit(domain, type, chain, settings);
      checks.push({
        kind: 'DOMAIN',
        id: domain.id,
        type: name,
        amount,
        ownLimit: p.domainResources[index].limits[name],
        limit: applies,
        current: domainCurrent,
        refusal: () => domainLimitText(domain, name, applies, domainCurrent, amount),
      });
    });
  }
  return checks;
}

/** Root admin accounts are never limited (upstream's checkResourceLimit returns at once). */
const enforced = (p: Plan, check: Check) => p.account.roleType !== 'Admin' && check.limit !== UNLIMITED;

function refuseIfExceeded(p: Plan, checks: Check[]): void {
  for (const check of checks) {
    if (enforced(p, check) && check.current + check.amount > check.limit) throw new ResourceLimitExceeded(check.refusal());
  }
}

/** The transaction raising (or lowering) every owner's counts, conditional on `checks` when given. */
function countUpdates(p: Plan, amounts: [ResourceTypeName, number][], sign: 1 | -1, checks: Check[] = []) {
  const owners: { kind: OwnerKind; id: string }[] = [{ kind: 'ACCOUNT', id: p.account.id }, ...p.domains.map((d) => ({ kind: 'DOMAIN' as const, id: d.id }))];
  return owners.map(({ kind, id }) => {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':kind': kind, ':id': id };
    const adds: string[] = [];
    const conditions: string[] = [];
    amounts.forEach(([type, amount], index) => {
      names[`#c${index}`] = countAttribute(type);
      values[`:n${index}`] = sign * amount;
      adds.push(`#c${index} :n${index}`);
      const check = checks.find((c) => c.kind === kind && c.id === id && c.type === type);
      if (!check) return;
      names[`#l${index}`] = limitAttribute(type);
      if (check.ownLimit === undefined) conditions.push(`attribute_not_exists(#l${index})`);
      else {
        values[`:l${index}`] = check.ownLimit;
        conditions.push(`#l${index} = :l${index}`);
      }
      if (enforced(p, check)) {
        values[`:max${index}`] = check.limit - check.amount;
        conditions.push(`(attribute_not_exists(#c${index}) OR #c${index} <= :max${index})`);
      }
    });
    return {
      Update: {
        TableName: tableName(),
        Key: resourcesKey(kind, id),
        UpdateExpression: `SET ownerKind = :kind, ownerId = :id ADD ${adds.join(', ')}`,
        ...(conditions.length > 0 && { ConditionExpression: conditions.join(' AND ') }),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
    };
  });
}

const positive = (amounts: ResourceAmounts): [ResourceTypeName, number][] =>
  (Object.entries(amounts) as [ResourceTypeName, number][]).filter(([, amount]) => typeof amount === 'number' && amount > 0);

async function accountOf(owner: string | Account): Promise<Account | undefined> {
  return typeof owner === 'string' ? getAccount(owner) : owner;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cancelled = (error: unknown) => (error as Error)?.name === 'TransactionCanceledException' || (error as Error)?.name === 'ConditionalCheckFailedException';

/**
 * Checks the account's limits and those of every domain above it, and raises all their counts, in
 * one transaction. Throws ResourceLimitExceeded (532) with upstream's text naming the first limit
 * that would be exceeded, the account's before its domains', nearest domain first.
 */
export async function reserveResources(owner: string | Account, amounts: ResourceAmounts, options: { settings?: Settings } = {}): Promise<void> {
  const wanted = positive(amounts);
  if (wanted.length === 0) return;
  const account = await accountOf(owner);
  if (!account) throw new InternalError(`Unable to find account ${typeof owner === 'string' ? owner : owner.id} to count its resources`);
  const settings = options.settings ?? (await loadSettings());
  for (let attempt = 0; attempt < 40; attempt++) {
    const p = await plan(account);
    const checks = checksOf(p, wanted, settings);
    refuseIfExceeded(p, checks);
    try {
      await dynamo().send(new TransactWriteCommand({ TransactItems: countUpdates(p, wanted, 1, checks) as never }));
      return;
    } catch (error) {
      if (!cancelled(error)) throw error;
      // Someone changed a count or a limit since it was read: read again (and refuse if now exceeded).
      await pause(5 + Math.random() * 20 * Math.min(attempt + 1, 5));
    }
  }
  throw new InternalError(`Failed to increment resource counts for account id=${account.id}`, 4250);
}

/** Lowers the account's and its domains' counts (the resources are gone). Never refused. */
export async function releaseResources(owner: string | Account, amounts: ResourceAmounts): Promise<void> {
  await adjust(owner, amounts, -1);
}

/** Raises counts without checking limits (upstream's incrementResourceCount, e.g. a finished download). */
export async function incrementResources(owner: string | Account, amounts: ResourceAmounts): Promise<void> {
  await adjust(owner, amounts, 1);
}

async function adjust(owner: string | Account, amounts: ResourceAmounts, sign: 1 | -1): Promise<void> {
  const wanted = positive(amounts);
  if (wanted.length === 0) return;
  const account = await accountOf(owner);
  if (!account) return; // the account is gone, and its counts with it
  const p = await plan(account);
  for (let attempt = 0; ; attempt++) {
    try {
      await dynamo().send(new TransactWriteCommand({ TransactItems: countUpdates(p, wanted, sign) as never }));
      return;
    } catch (error) {
      if (!cancelled(error) || attempt >= 40) throw error;
      await pause(5 + Math.random() * 20 * Math.min(attempt + 1, 5));
    }
  }
}

/** The counts of one owner as stored (consistent read). */
export async function storedCounts(kind: OwnerKind, id: string): Promise<ResourceAmounts> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: resourcesKey(kind, id), ConsistentRead: true }));
  return ownerResources(Item).counts;
}

// ---- recounting (updateResourceCount) ----

/** Counts what an account holds of one type, from the records that exist. */
export type ResourceCounter = (account: Account) => Promise<number>;

const counters = new Map<ResourceTypeName, ResourceCounter>();

/**
 * The module that owns a kind of record says how to count it (templates, networks; VMs, volumes and
 * snapshots when they exist). A type without a counter keeps its stored count when recounted.
 */
export function registerResourceCounter(type: ResourceTypeName, counter: ResourceCounter): void {
  counters.set(type, counter);
}

export const resourceCounter = (type: ResourceTypeName) => counters.get(type);
