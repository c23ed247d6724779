// Task actions of delete-domain, delete-account and disable-identity. Each is idempotent: a retried
// step finds what it already did gone (or already in its new state) and carries on.
import { z } from 'zod';
import { InvalidParameter, ResourceInUse } from '../../shared/cloudstack/errors.ts';
import { deleteAffinityGroupsOfAccount } from '../../shared/db/affinity-groups.ts';
import { deleteAccountKeyPairs } from '../../shared/db/ssh-keypairs.ts';
import {
  deleteAccountRecord,
  deleteDomainRecord,
  deleteUserRecord,
  endUserSessions,
  getAccount,
  getDomain,
  getUser,
  listAccountsUnder,
  listDomainsUnder,
  listUsersUnder,
  updateAccount,
  updateDomain,
  updateUser,
  type Domain,
} from '../../shared/db/identity.ts';
import { renderAccount, renderUser } from '../api/render/identity.ts';

export const identityActions = [
  z.object({ action: z.literal('prepareDomainDeletion'), domainId: z.string(), cleanup: z.boolean() }),
  z.object({ action: z.literal('deleteAccountRecords'), accountId: z.string() }),
  z.object({ action: z.literal('deleteDomainRecords'), domainId: z.string() }),
  z.object({
    action: z.literal('setIdentityState'),
    kind: z.enum(['account', 'user']),
    id: z.string(),
    state: z.enum(['enabled', 'disabled', 'locked']),
    callerDomainTree: z.string(),
  }),
] as const;

export type IdentityTask = z.infer<(typeof identityActions)[number]>;

export function runIdentityTask(task: IdentityTask) {
  switch (task.action) {
    case 'prepareDomainDeletion':
      return prepareDomainDeletion(task.domainId, task.cleanup);
    case 'deleteAccountRecords':
      return deleteAccountRecords(task.accountId);
    case 'deleteDomainRecords':
      return deleteDomainRecords(task.domainId);
    case 'setIdentityState':
      return setIdentityState(task);
  }
}

const plural = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;

/** What keeps a domain from being deleted on its own: its accounts and child domains. */
async function contents(domain: Domain) {
  const accounts = (await listAccountsUnder(domain.tree)).filter((account) => account.domainId === domain.id);
  const children = (await listDomainsUnder(domain.tree)).filter((child) => child.parentId === domain.id);
  return { accounts, children };
}

function inUse(domain: Domain, { accounts, children }: Awaited<ReturnType<typeof contents>>): ResourceInUse {
  const parts = [
    accounts.length ? `${plural(accounts.length, 'account', 'accounts')} (${accounts.map((a) => a.name).join(', ')})` : '',
    children.length ? `${plural(children.length, 'child domain', 'child domains')} (${children.map((d) => d.name).join(', ')})` : '',
  ].filter(Boolean);
  return new ResourceInUse(
    `Delete failed on domain ${domain.name} (id: ${domain.id}); it still has ${parts.join(' and ')}. Please make sure all users and sub domains have been removed from the domain before deleting, or delete it with cleanup=true`,
  );
}

/**
 * Without cleanup the domain must be empty (nothing changes otherwise); with cleanup the whole
 * subtree goes inactive, so nothing new is created in it, and its accounts are returned for deletion.
 */
export async function prepareDomainDeletion(domainId: string, cleanup: boolean): Promise<{ accountIds: string[] }> {
  const domain = await getDomain(domainId);
  if (!domain) return { accountIds: [] };
  if (!domain.parentId) throw new InvalidParameter("Can't delete ROOT domain");
  if (!cleanup) {
    const found = await contents(domain);
    if (found.accounts.length || found.children.length) throw inUse(domain, found);
    if (domain.state !== 'Inactive') await updateDomain(domain, { state: 'Inactive' });
    return { accountIds: [] };
  }
  for (const below of await listDomainsUnder(domain.tree)) {
    if (below.state !== 'Inactive') await updateDomain(below, { state: 'Inactive' });
  }
  return { accountIds: (await listAccountsUnder(domain.tree)).map((account) => account.id) };
}

/** The account's users (their API keys and sessions with them), affinity groups and SSH key pairs, then the account. */
export async function deleteAccountRecords(accountId: string): Promise<{ accountId: string; users: number }> {
  const account = await getAccount(accountId);
  if (!account) return { accountId, users: 0 };
  const users = await listUsersUnder(account.domainTree, account.id);
  for (const user of users) await deleteUserRecord(user);
  await deleteAffinityGroupsOfAccount(account);
  await deleteAccountKeyPairs(account);
  await deleteAccountRecord(account);
  return { accountId, users: users.length };
}

/** The domain and the domains below it, deepest first; each must have no accounts left. */
export async function deleteDomainRecords(domainId: string): Promise<{ domains: number }> {
  const domain = await getDomain(domainId);
  if (!domain) return { domains: 0 };
  const subtree = (await listDomainsUnder(domain.tree)).sort((a, b) => b.level - a.level);
  for (const below of subtree) {
    // Deeper domains went first, so anything found here arrived while the deletion ran.
    const found = await contents(below);
    if (found.accounts.length || found.children.length) throw inUse(below, found);
    await deleteDomainRecord(below);
  }
  return { domains: subtree.length };
}

/** disableAccount (disabled or locked) and disableUser: the new state and the rendered record. */
export async function setIdentityState(task: Extract<IdentityTask, { action: 'setIdentityState' }>): Promise<Record<string, unknown>> {
  if (task.kind === 'account') {
    const account = await getAccount(task.id);
    if (!account) throw new InvalidParameter(`Unable to find account by accountId: ${task.id}`);
    const updated = account.state === task.state ? account : await updateAccount(account, { state: task.state });
    return { account: await renderAccount(updated, task.callerDomainTree) };
  }
  const user = await getUser(task.id);
  if (!user) throw new InvalidParameter(`Unable to find active user by id ${task.id}`);
  const updated = user.state === task.state ? user : await updateUser(user, { state: task.state });
  if (task.state !== 'enabled') await endUserSessions(user.id);
  return { user: await renderUser(updated, task.callerDomainTree) };
}
