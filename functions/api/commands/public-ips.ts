// The listings of public addresses and the NAT rules on them (upstream's ListPublicIpAddressesCmd,
// ListPortForwardingRulesCmd, ListIpForwardingRulesCmd). Mold's guests sit on shared networks,
// where upstream too has no public address to acquire and no rule to list: the answers are
// upstream's empty lists, after the same checks of the ids and the scope. Clients such as
// libcloud's list_nodes read them after listVirtualMachines and fail on a 432.
import { listParams, param, scopeParams } from '../../../shared/cloudstack/params.ts';
import { getZone } from '../../../shared/db/infrastructure.ts';
import { getNetwork } from '../../../shared/db/networks.ts';
import { ALL_ROLES, defineCommand } from '../command.ts';
import { listResponse } from '../paging.ts';
import { ownedScope } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';

type Lookup = (id: string) => Promise<unknown>;

/** Upstream refuses an id that names nothing (431); an address or rule id never names anything here. */
async function checkIds(api: string, ids: Record<string, [string | undefined, Lookup | undefined]>): Promise<void> {
  for (const [name, [value, lookup]] of Object.entries(ids)) {
    if (value === undefined) continue;
    if (!lookup || !(await lookup(value.toLowerCase()))) throw noSuchEntity(api, name, value);
  }
}

const zone: Lookup = (id) => getZone(id);
const network: Lookup = (id) => getNetwork(id);

const listPublicIpAddresses = defineCommand({
  name: 'listPublicIpAddresses',
  description: 'Lists all public IP addresses. Mold: guests are on shared networks, which have no public addresses to acquire: the list is empty.',
  params: {
    id: param.uuid('lists IP address by ID').optional(),
    ipaddress: param.string('lists the specified IP address').optional(),
    zoneid: param.uuid('lists all public IP addresses by zone ID').optional(),
    associatednetworkid: param.uuid('lists all public IP addresses associated to the network specified').optional(),
    networkid: param.uuid('lists all public IP addresses by source network ID').optional(),
    physicalnetworkid: param.uuid('lists all public IP addresses by physical network ID').optional(),
    vlanid: param.uuid('lists all public IP addresses by VLAN ID').optional(),
    vpcid: param.uuid('List IPs belonging to the VPC').optional(),
    allocatedonly: param.boolean('limits search results to allocated public IP addresses').optional(),
    forvirtualnetwork: param.boolean('the virtual network for the IP address').optional(),
    forloadbalancing: param.boolean('list only IPs used for load balancing').optional(),
    issourcenat: param.boolean('list only source NAT IP addresses').optional(),
    isstaticnat: param.boolean('list only static NAT IP addresses').optional(),
    state: param.string('lists all public IP addresses by state').optional(),
    ...listParams,
    ...scopeParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    await checkIds('listPublicIpAddresses', {
      id: [params.id, undefined],
      zoneid: [params.zoneid, zone],
      associatednetworkid: [params.associatednetworkid, network],
      networkid: [params.networkid, network],
      physicalnetworkid: [params.physicalnetworkid, undefined],
      vlanid: [params.vlanid, undefined],
      vpcid: [params.vpcid, undefined],
    });
    await ownedScope(caller, params);
    return { body: listResponse('publicipaddress', [], params, settings, (ip) => ip) };
  },
});

const ruleParams = {
  id: param.uuid('Lists rule with the specified ID.').optional(),
  ipaddressid: param.uuid('the ID of IP address of the rules').optional(),
  ...listParams,
  ...scopeParams,
};

const listPortForwardingRules = defineCommand({
  name: 'listPortForwardingRules',
  description: 'Lists all port forwarding rules for an IP address. Mold: there are no public addresses, hence no rules: the list is empty.',
  params: { ...ruleParams, networkid: param.uuid('list port forwarding rules for certain network').optional() },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    await checkIds('listPortForwardingRules', { id: [params.id, undefined], ipaddressid: [params.ipaddressid, undefined], networkid: [params.networkid, network] });
    await ownedScope(caller, params);
    return { body: listResponse('portforwardingrule', [], params, settings, (rule) => rule) };
  },
});

const listIpForwardingRules = defineCommand({
  name: 'listIpForwardingRules',
  description: 'List the IP forwarding rules. Mold: there are no public addresses, hence no static NAT rules: the list is empty.',
  params: { ...ruleParams, virtualmachineid: param.uuid('Lists all rules applied to the specified VM.').optional() },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    await checkIds('listIpForwardingRules', { id: [params.id, undefined], ipaddressid: [params.ipaddressid, undefined], virtualmachineid: [params.virtualmachineid, undefined] });
    await ownedScope(caller, params);
    return { body: listResponse('ipforwardingrule', [], params, settings, (rule) => rule) };
  },
});

export const publicIpCommands = [listPublicIpAddresses, listPortForwardingRules, listIpForwardingRules];
