// listDedicatedZones, listDedicatedPods, listDedicatedClusters and listDedicatedHosts (upstream's
// dedicated-resources plugin). Mold dedicates nothing to a domain or an account: the answers are
// upstream's empty lists, after the same checks of the ids they are given. The UI asks for the one of a
// zone's, pod's, cluster's or host's page as it opens, and shows a notification that stays until
// closed (over the page's action buttons) when the command is refused.
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { getAffinityGroup } from '../../../shared/db/affinity-groups.ts';
import { getHost } from '../../../shared/db/hosts.ts';
import { getDomain } from '../../../shared/db/identity.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { listResponse } from '../paging.ts';
import { noSuchEntity } from '../validate.ts';
import { clusterParam, podParam, zoneParam } from './zones.ts';

const RESOURCES = [
  { api: 'listDedicatedZones', what: 'zones', idParam: 'zoneid', item: 'dedicatedzone', description: 'the ID of the Zone', exists: (api: string, id: string) => zoneParam(api, 'zoneid', id) },
  { api: 'listDedicatedPods', what: 'pods', idParam: 'podid', item: 'dedicatedpod', description: 'the ID of the pod', exists: (api: string, id: string) => podParam(api, 'podid', id) },
  { api: 'listDedicatedClusters', what: 'clusters', idParam: 'clusterid', item: 'dedicatedcluster', description: 'the ID of the cluster', exists: (api: string, id: string) => clusterParam(api, 'clusterid', id) },
  {
    api: 'listDedicatedHosts',
    what: 'hosts',
    idParam: 'hostid',
    item: 'dedicatedhost',
    description: 'the ID of the host',
    exists: async (api: string, id: string) => {
      if (!(await getHost(id.toLowerCase()))) throw noSuchEntity(api, 'hostid', id);
    },
  },
] as const;

export const dedicatedCommands = RESOURCES.map(({ api, what, idParam, item, description, exists }) =>
  defineCommand({
    name: api,
    description: `List dedicated ${what}. Mold: it dedicates none, so the list is empty.`,
    params: {
      [idParam]: param.uuid(description).optional(),
      domainid: param.uuid(`the ID of the domain associated with the ${what.slice(0, -1)}`).optional(),
      account: param.string(`the name of the account associated with the ${what.slice(0, -1)}. Must be used with domainId.`).optional(),
      affinitygroupid: param.uuid(`list dedicated ${what} by affinity group`).optional(),
      ...listParams,
    },
    roles: ADMINS,
    handler: async ({ params, settings }) => {
      const given = params as Record<string, string | undefined>;
      if (given[idParam] !== undefined) await exists(api, given[idParam]!);
      if (params.domainid !== undefined && !(await getDomain(params.domainid.toLowerCase()))) throw noSuchEntity(api, 'domainid', params.domainid);
      if (params.affinitygroupid !== undefined && !(await getAffinityGroup(params.affinitygroupid.toLowerCase()))) throw noSuchEntity(api, 'affinitygroupid', params.affinitygroupid);
      return { body: listResponse(item, [], params, settings, (dedicated) => dedicated) };
    },
  }),
);
