// listUnmanagedInstances (upstream's ListUnmanagedInstancesCmd, KVM): the domains a cluster's hosts run
// that are no VM of Mold's, as the agents last reported them (shared/unmanaged-domains.ts). Mold lists
// them and never touches them; importing one (upstream's importUnmanagedInstance) is not offered.
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { listHostRecords } from '../../../shared/db/hosts.ts';
import { listUnmanagedDomains, unmanagedPowerState } from '../../../shared/unmanaged-domains.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { clusterParam } from './zones.ts';

const API = 'listUnmanagedInstances';

const listUnmanagedInstances = defineCommand({
  name: API,
  description: 'Lists unmanaged Instances for a given cluster. Mold: the domains its agents last reported on the cluster\'s hosts that are no VM of Mold\'s (kept three report intervals after they were last seen).',
  since: '4.14.0',
  params: {
    clusterid: param.uuid('The cluster ID'),
    name: param.string('The hypervisor name of the Instance').optional(),
    ...listParams,
  },
  roles: ADMINS,
  handler: async ({ params, settings }) => {
    const cluster = await clusterParam(API, 'clusterid', params.clusterid);
    const hosts = new Map((await listHostRecords({ clusterId: cluster.id })).map((host) => [host.id, host]));
    const domains = (await listUnmanagedDomains([...hosts.keys()]))
      .filter((domain) => params.name === undefined || domain.name === params.name)
      .filter((domain) => matchesKeyword(params.keyword, domain.name))
      .sort((a, b) => a.name.localeCompare(b.name));
    return {
      body: listResponse('unmanagedinstance', domains, params, settings, (domain) => ({
        name: domain.name,
        clusterid: cluster.id,
        hostid: domain.hostId,
        hostname: hosts.get(domain.hostId)?.name,
        powerstate: unmanagedPowerState(domain.state),
        ...(domain.vcpus !== undefined && { cpunumber: domain.vcpus }),
        ...(domain.memoryKiB !== undefined && { memory: Math.round(domain.memoryKiB / 1024) }),
        disk: [],
        nic: [],
      })),
    };
  },
});

export const unmanagedCommands = [listUnmanagedInstances];
