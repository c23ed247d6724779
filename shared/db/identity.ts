// Domains, accounts, users, sessions: the records the API authenticates and scopes against.
// Unique names and API keys are claimed with guard items in the same transaction as the record,
// so no two can collide. Every record carries its domain's `tree` (/<id>/<id>/…/), so a domain's
// subtree is one key-prefix query.
import { DeleteCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { randomCredential } from '../crypto/credentials.ts';
import { dynamo } from '../aws.ts';
import { hashPassword } from '../crypto/passwords.ts';
import { sealSecret } from '../crypto/secrets.ts';
import { cachedListing, identityChanged } from './cached-listings.ts';
import { getItem, isConditionFailure, queryIndex, tableName } from './items.ts';
import { cloudstackDate } from './jobs.ts';

export type RoleType = 'Admin' | 'ResourceAdmin' | 'DomainAdmin' | 'User';
export type AccountState = 'enabled' | 'disabled' | 'locked';

/** Upstream's account types, implied by the role type. */
export const ACCOUNT_TYPE: Record<RoleType, number> = { User: 0, Admin: 1, DomainAdmin: 2, ResourceAdmin: 3 };

export interface Domain {
  id: string;
  name: string;
  parentId?: string;
  /** /<root id>/<child id>/…/ down to this domain. */
  tree: string;
  /** ROOT/child/…, as upstream's `path`. */
  path: string;
  level: number;
  state: 'Active' | 'Inactive';
  networkdomain?: string;
  created: string;
}

export interface Account {
  id: string;
  name: string;
  domainId: string;
  domainTree: string;
  roleId: string;
  roleType: RoleType;
  state: AccountState;
  networkdomain?: string;
  /** The installation's own admin account: it cannot be deleted or disabled. */
  isdefault?: boolean;
  created: string;
}

export interface User {
  id: string;
  username: string;
  firstname: string;
  lastname: string;
  email?: string;
  timezone?: string;
  accountId: string;
  domainId: string;
  domainTree: string;
  state: AccountState;
  password: string;
  apikey?: string;
  /** Sealed with shared/crypto/secrets.ts; never stored in clear. */
  secretkey?: string;
  /** The installation's own admin user: it cannot be deleted. */
  isdefault?: boolean;
  /** Failed logins since the last good one (upstream's login_attempts); never shown. */
  loginAttempts?: number;
  created: string;
}

export class DuplicateName extends Error {}

/** The table keys of identity records. */
export const identityKey = {
  domain: (id: string) => ({ pk: `DOMAIN#${id}`, sk: 'DOMAIN' }),
  account: (id: string) => ({ pk: `ACCOUNT#${id}`, sk: 'ACCOUNT' }),
  user: (id: string) => ({ pk: `USER#${id}`, sk: 'USER' }),
  domainName: (parentId: string, name: string) => ({ pk: `DOMAINNAME#${parentId}#${name.toLowerCase()}`, sk: 'GUARD' }),
  accountName: (domainId: string, name: string) => ({ pk: `ACCOUNTNAME#${domainId}#${name.toLowerCase()}`, sk: 'GUARD' }),
  userName: (domainId: string, name: string) => ({ pk: `USERNAME#${domainId}#${name.toLowerCase()}`, sk: 'GUARD' }),
  apiKey: (apikey: string) => ({ pk: `APIKEY#${apikey}`, sk: 'GUARD' }),
  session: (sessionkey: string) => ({ pk: `SESSION#${sessionkey}`, sk: 'SESSION' }),
};

const put = (Item: Record<string, unknown>) => ({
  Put: { TableName: tableName(), Item, ConditionExpression: 'attribute_not_exists(pk)' },
});
const remove = (Key: Record<string, string>) => ({ Delete: { TableName: tableName(), Key } });

/** A write to a domain, account or user, and the version bump that tells cached listings. */
async function writeIdentity(command: TransactWriteCommand | PutCommand): Promise<void> {
  await dynamo().send(command as never);
  await identityChanged();
}

async function transact(items: Record<string, unknown>[], duplicate: string): Promise<void> {
  try {
    await dynamo().send(new TransactWriteCommand({ TransactItems: items as never }));
  } catch (error) {
    if (isConditionFailure(error)) throw new DuplicateName(duplicate);
    throw error;
  }
  await identityChanged();
}

// ---- domains ----

export const getDomain = (id: string) => getItem<Domain>(identityKey.domain(id).pk, 'DOMAIN');

/** The domain and every domain below it (or only its children), in tree order. */
export async function listDomainsUnder(tree: string): Promise<Domain[]> {
  return cachedListing<Domain>('DOMAINS', tree);
}

export async function listAllDomains(): Promise<Domain[]> {
  return cachedListing<Domain>('DOMAINS');
}

function domainItem(domain: Domain) {
  return { ...identityKey.domain(domain.id), gsi1pk: 'DOMAINS', gsi1sk: domain.tree, ...domain };
}

export async function createDomain(fields: { name: string; parent?: Domain; networkdomain?: string; id?: string }): Promise<Domain> {
  const id = fields.id ?? randomUUID();
  const domain: Domain = {
    id,
    name: fields.name,
    parentId: fields.parent?.id,
    tree: `${fields.parent?.tree ?? '/'}${id}/`,
    path: fields.parent ? `${fields.parent.path}/${fields.name}` : fields.name,
    level: fields.parent ? fields.parent.level + 1 : 0,
    state: 'Active',
    networkdomain: fields.networkdomain,
    created: cloudstackDate(),
  };
  await transact(
    [put(domainItem(domain)), put({ ...identityKey.domainName(fields.parent?.id ?? '-', fields.name), id })],
    `Domain with name ${fields.name} already exists for the parent`,
  );
  return domain;
}

/** Renames move the name guard; the paths of the domain and all below it follow. */
export async function updateDomain(domain: Domain, changes: { name?: string; networkdomain?: string; state?: Domain['state'] }): Promise<Domain> {
  const updated: Domain = { ...domain, ...changes };
  const items: Record<string, unknown>[] = [];
  if (changes.name && changes.name.toLowerCase() !== domain.name.toLowerCase()) {
    const parentPath = domain.path.slice(0, domain.path.length - domain.name.length);
    updated.path = `${parentPath}${changes.name}`;
    items.push(remove(identityKey.domainName(domain.parentId ?? '-', domain.name)));
    items.push(put({ ...identityKey.domainName(domain.parentId ?? '-', changes.name), id: domain.id }));
    for (const below of await listDomainsUnder(domain.tree)) {
      if (below.id === domain.id) continue;
      items.push({
        Put: { TableName: tableName(), Item: domainItem({ ...below, path: `${updated.path}${below.path.slice(domain.path.length)}` }) },
      });
    }
  }
  items.push({ Put: { TableName: tableName(), Item: domainItem(updated) } });
  await transact(items, `Domain with name ${changes.name} already exists for the parent`);
  return updated;
}

export async function deleteDomainRecord(domain: Domain): Promise<void> {
  await writeIdentity(
    new TransactWriteCommand({
      TransactItems: [remove(identityKey.domain(domain.id)), remove(identityKey.domainName(domain.parentId ?? '-', domain.name))] as never,
    }),
  );
}

// ---- accounts ----

export const getAccount = (id: string) => getItem<Account>(identityKey.account(id).pk, 'ACCOUNT');

function accountItem(account: Account) {
  return { ...identityKey.account(account.id), gsi1pk: 'ACCOUNTS', gsi1sk: `${account.domainTree}${account.name.toLowerCase()}`, ...account };
}

export async function findAccountByName(domainId: string, name: string): Promise<Account | undefined> {
  const guard = await getItem<{ id: string }>(identityKey.accountName(domainId, name).pk, 'GUARD');
  return guard ? getAccount(guard.id) : undefined;
}

/** Accounts whose domain is in the subtree at `tree` (all of them for the root's tree). */
export function listAccountsUnder(tree: string): Promise<Account[]> {
  return cachedListing<Account>('ACCOUNTS', tree);
}

/** True once any account exists (one key read of the accounts listing). */
async function anyAccountExists(): Promise<boolean> {
  const { Items } = await dynamo().send(
    new QueryCommand({
      TableName: tableName(),
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :pk',
      ExpressionAttributeValues: { ':pk': 'ACCOUNTS' },
      Limit: 1,
    }),
  );
  return Boolean(Items?.length);
}

export interface NewUser {
  username: string;
  password: string;
  firstname: string;
  lastname: string;
  email?: string;
  timezone?: string;
}

/** An account and its first user, in one transaction (upstream's createAccount). */
export async function createAccount(
  fields: { name: string; domain: Domain; roleId: string; roleType: RoleType; networkdomain?: string; id?: string },
  firstUser: NewUser & { id?: string },
): Promise<{ account: Account; user: User }> {
  // The first account of ROOT is the installation's own admin (upstream's default account).
  const isdefault = fields.domain.parentId === undefined && !(await anyAccountExists());
  const account: Account = {
    id: fields.id ?? randomUUID(),
    name: fields.name,
    domainId: fields.domain.id,
    domainTree: fields.domain.tree,
    roleId: fields.roleId,
    roleType: fields.roleType,
    state: 'enabled',
    networkdomain: fields.networkdomain,
    ...(isdefault && { isdefault: true }),
    created: cloudstackDate(),
  };
  const user = await newUser(account, firstUser);
  if (isdefault) user.isdefault = true;
  await transact(
    [put(accountItem(account)), put({ ...identityKey.accountName(account.domainId, account.name), id: account.id }), ...userPuts(user)],
    `The specified account or user name already exists in domain ${fields.domain.path}`,
  );
  return { account, user };
}

export async function updateAccount(account: Account, changes: Partial<Pick<Account, 'name' | 'networkdomain' | 'roleId' | 'roleType' | 'state'>>): Promise<Account> {
  const updated = { ...account, ...changes };
  const items: Record<string, unknown>[] = [{ Put: { TableName: tableName(), Item: accountItem(updated) } }];
  if (changes.name && changes.name.toLowerCase() !== account.name.toLowerCase()) {
    items.push(remove(identityKey.accountName(account.domainId, account.name)));
    items.push(put({ ...identityKey.accountName(account.domainId, changes.name), id: account.id }));
  }
  await transact(items, `The account name ${changes.name} already exists in this domain`);
  return updated;
}

export async function deleteAccountRecord(account: Account): Promise<void> {
  await writeIdentity(
    new TransactWriteCommand({
      TransactItems: [remove(identityKey.account(account.id)), remove(identityKey.accountName(account.domainId, account.name))] as never,
    }),
  );
}

// ---- users ----

export const getUser = (id: string) => getItem<User>(identityKey.user(id).pk, 'USER');

function userItem(user: User) {
  return { ...identityKey.user(user.id), gsi1pk: 'USERS', gsi1sk: `${user.domainTree}${user.accountId}/${user.username.toLowerCase()}`, ...user };
}

function userPuts(user: User) {
  return [put(userItem(user)), put({ ...identityKey.userName(user.domainId, user.username), id: user.id })];
}

async function newUser(account: Account, fields: NewUser & { id?: string }): Promise<User> {
  return {
    id: fields.id ?? randomUUID(),
    username: fields.username,
    firstname: fields.firstname,
    lastname: fields.lastname,
    email: fields.email,
    timezone: fields.timezone,
    accountId: account.id,
    domainId: account.domainId,
    domainTree: account.domainTree,
    state: 'enabled',
    password: await hashPassword(fields.password),
    created: cloudstackDate(),
  };
}

export async function createUser(account: Account, fields: NewUser & { id?: string }): Promise<User> {
  const user = await newUser(account, fields);
  await transact(userPuts(user), `The user ${fields.username} already exists in domain`);
  return user;
}

export async function findUserByName(domainId: string, username: string): Promise<User | undefined> {
  const guard = await getItem<{ id: string }>(identityKey.userName(domainId, username).pk, 'GUARD');
  return guard ? getUser(guard.id) : undefined;
}

export async function findUserByApiKey(apikey: string): Promise<User | undefined> {
  const guard = await getItem<{ id: string }>(identityKey.apiKey(apikey).pk, 'GUARD');
  return guard ? getUser(guard.id) : undefined;
}

/** Users of the subtree at `tree`, or of one account when `accountId` is given. */
export function listUsersUnder(tree: string, accountId?: string): Promise<User[]> {
  return cachedListing<User>('USERS', accountId ? `${tree}${accountId}/` : tree);
}

export async function updateUser(user: User, changes: Partial<Omit<User, 'id' | 'accountId' | 'domainId' | 'domainTree' | 'apikey' | 'secretkey'>> & { password?: string }): Promise<User> {
  const updated: User = { ...user, ...changes };
  if (changes.password) updated.password = await hashPassword(changes.password);
  const items: Record<string, unknown>[] = [{ Put: { TableName: tableName(), Item: userItem(updated) } }];
  if (changes.username && changes.username.toLowerCase() !== user.username.toLowerCase()) {
    items.push(remove(identityKey.userName(user.domainId, user.username)));
    items.push(put({ ...identityKey.userName(user.domainId, changes.username), id: user.id }));
  }
  await transact(items, `The username ${changes.username} already exists in this domain`);
  return updated;
}

/**
 * One more failed login of an enabled user (upstream's AccountManagerImpl
 * updateLoginAttemptsWhenIncorrectLoginAttemptsEnabled): at `allowed` failures in a row the user is
 * disabled, in a write only one concurrent caller wins. True when this call disabled the user.
 */
export async function countFailedLogin(user: User, allowed: number): Promise<boolean> {
  const Key = identityKey.user(user.id);
  const enabled = { ConditionExpression: '#state = :enabled', ExpressionAttributeNames: { '#state': 'state' } };
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({ TableName: tableName(), Key, UpdateExpression: 'ADD loginAttempts :one', ...enabled, ExpressionAttributeValues: { ':one': 1, ':enabled': 'enabled' }, ReturnValues: 'UPDATED_NEW' }),
    );
    if (Number(Attributes?.loginAttempts) < allowed) return false;
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key,
        UpdateExpression: 'SET #state = :disabled, loginAttempts = :allowed',
        ...enabled,
        ExpressionAttributeValues: { ':disabled': 'disabled', ':allowed': allowed, ':enabled': 'enabled' },
      }),
    );
  } catch (error) {
    // Not enabled (any more): upstream counts nothing for a disabled or locked user.
    if (isConditionFailure(error)) return false;
    throw error;
  }
  await identityChanged();
  return true;
}

/** A good login: the failures before it no longer count. */
export async function clearFailedLogins(user: User): Promise<void> {
  if (!user.loginAttempts) return;
  await dynamo().send(
    new UpdateCommand({ TableName: tableName(), Key: identityKey.user(user.id), UpdateExpression: 'REMOVE loginAttempts', ConditionExpression: 'attribute_exists(pk)' }),
  ).catch((error) => {
    if (!isConditionFailure(error)) throw error;
  });
}

/** New API key and secret for the user; the old key stops working in the same write. */
export async function registerUserKeys(user: User): Promise<{ apikey: string; secretkey: string }> {
  const apikey = randomCredential();
  const secretkey = randomCredential();
  const items: Record<string, unknown>[] = [
    { Put: { TableName: tableName(), Item: userItem({ ...user, apikey, secretkey: await sealSecret(secretkey) }) } },
    put({ ...identityKey.apiKey(apikey), id: user.id }),
  ];
  if (user.apikey) items.push(remove(identityKey.apiKey(user.apikey)));
  await transact(items, 'API key collision; try again');
  return { apikey, secretkey };
}

/** Keys the caller chose (upstream's updateUser userapikey/usersecretkey); false when the API key is taken. */
export async function setUserKeys(user: User, apikey: string, secretkey: string): Promise<boolean> {
  if (apikey === user.apikey) {
    await writeIdentity(new PutCommand({ TableName: tableName(), Item: userItem({ ...user, secretkey: await sealSecret(secretkey) }) }));
    return true;
  }
  const items: Record<string, unknown>[] = [
    { Put: { TableName: tableName(), Item: userItem({ ...user, apikey, secretkey: await sealSecret(secretkey) }) } },
    put({ ...identityKey.apiKey(apikey), id: user.id }),
  ];
  if (user.apikey) items.push(remove(identityKey.apiKey(user.apikey)));
  try {
    await transact(items, 'API key taken');
    return true;
  } catch (error) {
    if (error instanceof DuplicateName) return false;
    throw error;
  }
}

/** Removes the user, its name and API key guards, and ends its sessions. Deleting twice is harmless. */
export async function deleteUserRecord(user: User): Promise<void> {
  const items = [remove(identityKey.user(user.id)), remove(identityKey.userName(user.domainId, user.username))];
  if (user.apikey) items.push(remove(identityKey.apiKey(user.apikey)));
  await writeIdentity(new TransactWriteCommand({ TransactItems: items as never }));
  await endUserSessions(user.id);
}

// ---- sessions ----

export interface Session {
  sessionkey: string;
  userId: string;
  created: string;
  /** Epoch seconds; the session ends when idle past it, and each use pushes it on. */
  expiresAt: number;
}

export async function createSession(userId: string, idleSeconds: number): Promise<Session> {
  const session: Session = {
    sessionkey: randomCredential(24),
    userId,
    created: cloudstackDate(),
    expiresAt: Math.floor(Date.now() / 1000) + idleSeconds,
  };
  await dynamo().send(
    new PutCommand({
      TableName: tableName(),
      Item: { ...identityKey.session(session.sessionkey), gsi1pk: 'SESSIONS', gsi1sk: `${userId}/${session.sessionkey}`, ...session },
    }),
  );
  return session;
}

/** The live session for the key, its idle deadline pushed on; undefined if unknown or expired. */
export async function useSession(sessionkey: string, idleSeconds: number): Promise<Session | undefined> {
  const now = Math.floor(Date.now() / 1000);
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: identityKey.session(sessionkey),
        UpdateExpression: 'SET expiresAt = :next',
        ConditionExpression: 'attribute_exists(pk) AND expiresAt > :now',
        ExpressionAttributeValues: { ':next': now + idleSeconds, ':now': now },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return Attributes as Session;
  } catch (error) {
    if (isConditionFailure(error)) return undefined;
    throw error;
  }
}

export async function endSession(sessionkey: string): Promise<void> {
  await dynamo().send(new DeleteCommand({ TableName: tableName(), Key: identityKey.session(sessionkey) }));
}

/** Ends every session of the user (it was deleted, disabled or locked). */
export async function endUserSessions(userId: string): Promise<void> {
  const sessions = await queryIndex<Session>({ index: 'gsi1', partition: 'SESSIONS', prefix: `${userId}/` });
  for (const session of sessions) await endSession(session.sessionkey);
}
