// listSystemVms and listRouters (upstream's ListSystemVMsCmd and ListRoutersCmd). Mold runs no system VMs: templates are copied by the
// agents, consoles are served by the agents' console proxies, and guests sit on shared networks with
// no virtual router. The UI's dashboard lists both per zone; the answers are upstream's empty lists,
// after the same checks of the ids it is given.
import { listParams, param, scopeParams } from '../../../shared/cloudstack/params.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { listResponse } from '../paging.ts';
import { noSuchEntity } from '../validate.ts';
import { clusterParam, podParam, zoneParam } from './zones.ts';
import { getNetwork } from '../../../shared/db/networks.ts';
import { ownedScope } from '../scope.ts';
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

const listRouters = defineCommand({
  name: 'listRouters',
  description: 'List routers. Mold: guests are on shared networks, which have no virtual router: the list is empty.',
  params: {
    id: param.uuid('the ID of the disk router').optional(),
    name: param.string('the name of the router').optional(),
    state: param.string('the state of the router').optional(),
    zoneid: param.uuid('the Zone ID of the router').optional(),
    podid: param.uuid('the Pod ID of the router').optional(),
    clusterid: param.uuid('the cluster ID of the router').optional(),
    hostid: param.uuid('the host ID of the router').optional(),
    networkid: param.uuid('list by network id').optional(),
    vpcid: param.uuid('List networks by VPC').optional(),
    forvpc: param.boolean('if true is passed for this parameter, list only VPC routers').optional(),
    role: param.string('the role of the router').optional(),
    version: param.string('list virtual router elements by version').optional(),
    healthchecksfailed: param.boolean('if this parameter is passed, list only routers by health check results').optional(),
    fetchhealthcheckresults: param.boolean('if true is passed for this parameter, also fetch last executed health check results for the router').optional(),
    ...listParams,
    ...scopeParams,
  },
  roles: ADMINS,
  handler: async ({ params, caller, settings }) => {
    const api = 'listRouters';
    for (const name of ['id', 'vpcid'] as const) if (params[name] !== undefined) throw noSuchEntity(api, name, params[name]!);
    if (params.zoneid !== undefined) await zoneParam(api, 'zoneid', params.zoneid);
    if (params.podid !== undefined) await podParam(api, 'podid', params.podid);
    if (params.clusterid !== undefined) await clusterParam(api, 'clusterid', params.clusterid);
    if (params.hostid !== undefined && !(await getHost(params.hostid.toLowerCase()))) throw noSuchEntity(api, 'hostid', params.hostid);
    if (params.networkid !== undefined && !(await getNetwork(params.networkid.toLowerCase()))) throw noSuchEntity(api, 'networkid', params.networkid);
    await ownedScope(caller, params);
    return { body: listResponse('router', [], params, settings, (router) => router) };
  },
});

export const systemVmCommands = [listSystemVms, listRouters];
