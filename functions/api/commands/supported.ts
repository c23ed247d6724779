// What this cloud supports, as clients ask before they create things (Ansible's cs_template asks
// listHypervisors, its cs_storage_pool listStorageProviders): upstream's ListHypervisorsCmd and
// ListStorageProvidersCmd, answered from what Mold has: KVM hosts, the default primary storage
// provider, NFS secondary storage.
import { InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { ADMINS, ALL_ROLES, defineCommand } from '../command.ts';
import { listResponse } from '../paging.ts';
import { zoneParam } from './zones.ts';

const listHypervisors = defineCommand({
  name: 'listHypervisors',
  description: 'List hypervisors. Mold: KVM, the only hypervisor it runs.',
  params: { zoneid: param.uuid('the zone id for listing hypervisors.').optional() },
  roles: ALL_ROLES,
  handler: async ({ params, settings }) => {
    if (params.zoneid !== undefined) await zoneParam('listHypervisors', 'zoneid', params.zoneid);
    return { body: listResponse('hypervisor', [{ name: 'KVM' }], {}, settings, (h) => h) };
  },
});

/** Upstream's DataStoreProvider types and the providers Mold has of each. */
const PROVIDERS: Record<string, string[]> = { primary: ['DefaultPrimary'], image: ['NFS'] };

const listStorageProviders = defineCommand({
  name: 'listStorageProviders',
  description: 'Lists storage providers. Mold: DefaultPrimary (primary) and NFS (image).',
  params: {
    type: param.string('the type of storage provider: either primary or image'),
    ...listParams,
  },
  roles: ADMINS,
  handler: async ({ params, settings }) => {
    // Upstream's DataStoreProviderManagerImpl.getDataStoreProviders.
    const names = PROVIDERS[params.type.toLowerCase()];
    if (!names) throw new InvalidParameter(`Invalid parameter: ${params.type}`);
    const type = params.type.toUpperCase();
    return { body: listResponse('dataStoreProvider', names, params, settings, (name) => ({ name, type })) };
  },
});

export const supportedCommands = [listHypervisors, listStorageProviders];
