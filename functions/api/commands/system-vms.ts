// listSystemVms (upstream's ListSystemVMsCmd). Mold runs no system VMs: templates are copied by the
// agents, consoles are served by the agents' console proxies, and guests sit on shared networks with
// no virtual router. The UI's dashboard lists them per zone; the answer is upstream's empty list,
// after the same checks of the ids it is given.
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { listResponse } from '../paging.ts';
import { noSuchEntity } from '../validate.ts';
import { podParam, zoneParam } from './zones.ts';
import { getHost } from '../../../shared/db/hosts.ts';

const API = 'listSystemVms';

const listSystemVms = defineCommand({
  name: API,
  description: 'List system virtual machines. Mold: there are none (agents do their work), so the list is empty.',
  params: {
    id: param.uuid('the ID of the system virtual machine').optional(),
    name: param.string('the name of the system virtual machine').optional(),
    zoneid: param.uuid('the Zone ID of the system virtual machine').optional(),
    podid: param.uuid('the Pod ID of the system virtual machine').optional(),
    hostid: param.uuid('the host ID of the system virtual machine').optional(),
    storageid: param.uuid("the storage ID where vm's volumes belong to").optional(),
    state: param.string('the state of the system virtual machine').optional(),
    systemvmtype: param.string('the system VM type. Possible types are "consoleproxy" and "secondarystoragevm".').optional(),
    ...listParams,
  },
  roles: ADMINS,
  handler: async ({ params, settings }) => {
    if (params.id !== undefined) throw noSuchEntity(API, 'id', params.id);
    if (params.zoneid !== undefined) await zoneParam(API, 'zoneid', params.zoneid);
    if (params.podid !== undefined) await podParam(API, 'podid', params.podid);
    if (params.hostid !== undefined && !(await getHost(params.hostid.toLowerCase()))) throw noSuchEntity(API, 'hostid', params.hostid);
    return { body: listResponse('systemvm', [], params, settings, (vm) => vm) };
  },
});

export const systemVmCommands = [listSystemVms];
