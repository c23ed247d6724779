// The counters of the records Mold has, for recounting resource counts (updateResourceCount and the
// sweeper's recount, functions/sweeper/resource-counts.ts): importing this module registers them all.
import type { Account } from './identity.ts';
import { getAccountResources, registerResourceCounter, resourceCounter, setResourceCount, type ResourceTypeDefinition } from './limits.ts';
import { listNetworks } from './networks.ts';
import { listTemplateRecords } from './templates.ts';
// Registers the counters of VMs and volumes (user_vm, cpu, memory, volume, primary_storage).
import './vms.ts';

async function templatesOf(accountId: string) {
  const [templates, isos] = await Promise.all([listTemplateRecords('template'), listTemplateRecords('iso')]);
  return [...templates, ...isos].filter((template) => template.accountId === accountId);
}

// Upstream's countTemplatesForAccount counts templates and ISOs alike.
registerResourceCounter('template', async (account) => (await templatesOf(account.id)).length);
// Upstream's calculateSecondaryStorageForAccount: the size of every downloaded copy.
registerResourceCounter('secondary_storage', async (account) =>
  (await templatesOf(account.id)).reduce(
    (sum, template) => sum + Object.values(template.zones).reduce((s, copy) => s + (copy.downloadState === 'DOWNLOADED' ? (copy.size ?? 0) : 0), 0),
    0,
  ),
);
// Networks owned by the account (acltype Account); domain-wide shared networks have no owner account.
registerResourceCounter('network', async (account) => (await listNetworks()).filter((network) => network.accountId === account.id).length);

/** What an account holds of each type, counted from its records (a type without a counter: its stored count). */
export async function countAccountResources(account: Account, types: readonly ResourceTypeDefinition[]): Promise<{ stored: Record<string, number | undefined>; counted: Record<string, number> }> {
  const stored = (await getAccountResources(account.id)).counts as Record<string, number | undefined>;
  const counted: Record<string, number> = {};
  for (const type of types) {
    const counter = resourceCounter(type.name);
    counted[type.name] = counter ? await counter(account) : (stored[type.name] ?? 0);
  }
  return { stored, counted };
}

/** Recounts one account's resources of the given types and stores them; returns the new counts. */
export async function recountAccount(account: Account, types: readonly ResourceTypeDefinition[]): Promise<Record<string, number>> {
  const { stored, counted } = await countAccountResources(account, types);
  for (const type of types) if (counted[type.name] !== stored[type.name]) await setResourceCount('ACCOUNT', account.id, type.name, counted[type.name]!);
  return counted;
}
