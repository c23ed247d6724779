// Guest networking, shared networks first: physical networks (upstream's CreatePhysicalNetworkCmd,
// ListPhysicalNetworksCmd, UpdatePhysicalNetworkCmd, DeletePhysicalNetworkCmd), the built-in network
// offerings (ListNetworkOfferingsCmd), shared guest networks (CreateNetworkCmd, ListNetworksCmd,
// UpdateNetworkCmd, DeleteNetworkCmd) and their IP ranges (CreateVlanIpRangeCmd,
// ListVlanIpRangesCmd, DeleteVlanIpRangeCmd). The async ones run statemachines/network-command.asl.json,
// whose one task is `runNetworkTask` below.
import { randomUUID } from 'node:crypto';
import { InternalError, InvalidParameter, PermissionDenied, ResourceInUse } from '../../../shared/cloudstack/errors.ts';
import {
  cidrOf,
  formatVlanRange,
  formatVlanRanges,
  ipRange,
  isNetmask,
  isNetworkOrBroadcast,
  inCidr,
  parseIpv4,
  parseVlanId,
  UNTAGGED,
  parseVlanRanges,
  rangesOverlap,
  vlanInRanges,
  type Range,
  type VlanTag,
} from '../../../shared/cloudstack/ip.ts';
import { listParams, param, scopeParams } from '../../../shared/cloudstack/params.ts';
import { getAccount, getDomain, type Account, type Domain } from '../../../shared/db/identity.ts';
import { getZone, type Zone } from '../../../shared/db/infrastructure.ts';
import { countAllocatedAddresses } from '../../../shared/db/ipam.ts';
import { cloudstackDate } from '../../../shared/db/jobs.ts';
import {
  addVlanIpRange,
  ConcurrentChange,
  createNetworkRecord,
  currentRangesOfNetwork,
  deleteNetworkRecords,
  deletePhysicalNetworkRecord,
  deleteVlanIpRangeRecord,
  getNetwork,
  getNetworkOffering,
  getPhysicalNetwork,
  getVlanIpRange,
  listNetworks,
  listPhysicalNetworks,
  listVlanIpRanges,
  markDeleting,
  networkKeys,
  NETWORK_OFFERINGS,
  putPhysicalNetwork,
  replacePhysicalNetwork,
  updateNetworkRecord,
  type Network,
  type NetworkOffering,
  type PhysicalNetwork,
  type VlanIpRange,
} from '../../../shared/db/networks.ts';
import { startAsync } from '../async.ts';
import { ADMINS, ALL_ROLES, type Caller, completedEvent, defineCommand } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { isDomainAdmin, isRootAdmin, resolveAccount, resolveDomain } from '../scope.ts';
import { rootDomainId } from './identity-common.ts';
import { noSuchEntity } from '../validate.ts';
import { releaseResources, reserveResources } from '../../../shared/db/limits.ts';

const STATE_MACHINE = 'network-command';


// ---- lookups that answer as upstream's ParamProcessWorker ----

async function zoneParam(api: string, name: string, id: string): Promise<Zone> {
  const zone = await getZone(id);
  if (!zone) throw noSuchEntity(api, name, id);
  return zone;
}

async function physicalNetworkParam(api: string, name: string, id: string): Promise<PhysicalNetwork> {
  const network = await getPhysicalNetwork(id);
  if (!network) throw noSuchEntity(api, name, id);
  return network;
}

async function networkParam(api: string, name: string, id: string): Promise<Network> {
  const network = await getNetwork(id);
  if (!network) throw noSuchEntity(api, name, id);
  return network;
}

function offeringParam(api: string, name: string, id: string): NetworkOffering {
  const offering = getNetworkOffering(id);
  if (!offering) throw noSuchEntity(api, name, id);
  return offering;
}

// ---- rendering ----

const zoneNames = async (ids: Iterable<string>) => {
  const names = new Map<string, Zone | undefined>();
  for (const id of new Set(ids)) names.set(id, await getZone(id));
  return names;
};

export function renderPhysicalNetwork(network: PhysicalNetwork, zone: Zone | undefined): Record<string, unknown> {
  return {
    id: network.id,
    name: network.name,
    broadcastdomainrange: network.broadcastdomainrange,
    zoneid: network.zoneId,
    zonename: zone?.name,
    state: network.state,
    ...(network.vlanRanges.length > 0 && { vlan: formatVlanRanges(network.vlanRanges) }),
    ...(network.domainId && { domainid: network.domainId }),
    ...(network.tags.length > 0 && { tags: network.tags.join(',') }),
    ...(network.isolationmethods.length > 0 && { isolationmethods: network.isolationmethods.join(',') }),
    ...(network.networkspeed && { networkspeed: network.networkspeed }),
  };
}

function renderServices(offering: NetworkOffering) {
  return offering.services.map((service) => ({ name: service.name, provider: [{ name: service.provider }] }));
}

export function renderOffering(offering: NetworkOffering): Record<string, unknown> {
  return {
    id: offering.id,
    name: offering.name,
    displaytext: offering.displaytext,
    traffictype: offering.traffictype,
    isdefault: true,
    specifyvlan: offering.specifyvlan,
    conservemode: offering.conservemode,
    specifyipranges: offering.specifyipranges,
    availability: offering.availability,
    state: 'Enabled',
    guestiptype: offering.guestiptype,
    service: renderServices(offering),
    forvpc: false,
    ispersistent: offering.ispersistent,
    egressdefaultpolicy: offering.egressdefaultpolicy,
    supportsstrechedl2subnet: false,
    supportspublicaccess: false,
    internetprotocol: 'IPv4',
    fornsx: false,
    networkmode: 'NATTED',
    created: offering.created,
  };
}

interface NetworkContext {
  zones: Map<string, Zone | undefined>;
  domains: Map<string, Domain | undefined>;
  accountNames: Map<string, string | undefined>;
}

async function networkContext(networks: readonly { zoneId: string; domainId: string; accountId?: string }[]): Promise<NetworkContext> {
  const zones = await zoneNames(networks.map((n) => n.zoneId));
  const domains = new Map<string, Domain | undefined>();
  for (const id of new Set(networks.map((n) => n.domainId))) domains.set(id, await getDomain(id));
  const accountNames = new Map<string, string | undefined>();
  for (const id of new Set(networks.flatMap((n) => (n.accountId ? [n.accountId] : [])))) accountNames.set(id, (await getAccount(id))?.name);
  return { zones, domains, accountNames };
}

/** Upstream's NetworkResponse of a shared network; the VLAN is shown to root admins only. */
export function renderNetwork(network: Network, context: NetworkContext, rootAdmin: boolean): Record<string, unknown> {
  const offering = getNetworkOffering(network.networkOfferingId);
  const zone = context.zones.get(network.zoneId);
  const domain = context.domains.get(network.domainId);
  return {
    id: network.id,
    name: network.name,
    displaytext: network.displaytext,
    broadcastdomaintype: network.vlan === UNTAGGED ? 'Native' : 'Vlan',
    traffictype: 'Guest',
    gateway: network.gateway,
    netmask: network.netmask,
    cidr: network.cidr,
    zoneid: network.zoneId,
    zonename: zone?.name,
    networkofferingid: network.networkOfferingId,
    networkofferingname: offering?.name,
    networkofferingdisplaytext: offering?.displaytext,
    networkofferingconservemode: offering?.conservemode,
    networkofferingavailability: offering?.availability,
    issystem: false,
    state: network.state,
    related: network.id,
    ...(rootAdmin && { broadcasturi: `vlan://${network.vlan}` }),
    ...(zone?.dns1 !== undefined && { dns1: zone.dns1 }),
    ...(zone?.dns2 !== undefined && { dns2: zone.dns2 }),
    type: network.guestiptype,
    ...(rootAdmin && { vlan: String(network.vlan) }),
    acltype: network.acltype,
    ...(network.acltype === 'Domain' && { subdomainaccess: Boolean(network.subdomainaccess) }),
    ...(network.accountId && { account: context.accountNames.get(network.accountId) }),
    domainid: network.domainId,
    domain: domain?.name,
    domainpath: domain?.path,
    service: offering ? renderServices(offering) : [],
    ...(network.networkdomain && { networkdomain: network.networkdomain }),
    physicalnetworkid: network.physicalNetworkId,
    restartrequired: false,
    specifyipranges: true,
    canusefordeploy: true,
    ispersistent: false,
    tags: [],
    displaynetwork: true,
    redundantrouter: false,
    supportsvmautoscaling: false,
    created: network.created,
    hasannotations: false,
  };
}

export function renderVlanIpRange(range: VlanIpRange, context: NetworkContext): Record<string, unknown> {
  const domain = context.domains.get(range.domainId);
  return {
    id: range.id,
    forvirtualnetwork: false,
    zoneid: range.zoneId,
    vlan: `vlan://${range.vlan}`,
    ...(range.accountId && { account: context.accountNames.get(range.accountId) }),
    domainid: range.domainId,
    domain: domain?.name,
    domainpath: domain?.path,
    gateway: range.gateway,
    netmask: range.netmask,
    cidr: range.cidr,
    startip: range.startip,
    endip: range.endip,
    networkid: range.networkId,
    physicalnetworkid: range.physicalNetworkId,
    forsystemvms: false,
  };
}

// ---- who may use a shared network ----

/** Upstream's checkAccess for networks: domain networks reach their domain (and below with subdomainaccess). */
export function canUseNetwork(caller: Caller, network: Network): boolean {
  if (isRootAdmin(caller)) return true;
  if (isDomainAdmin(caller) && network.domainTree.startsWith(caller.domain.tree)) return true;
  if (network.acltype === 'Account') return network.accountId === caller.account.id;
  if (network.domainId === caller.domain.id) return true;
  return Boolean(network.subdomainaccess) && caller.domain.tree.startsWith(network.domainTree);
}

/**
 * listNetworks with an account: that account's networks and the domain networks it may use (upstream's
 * listAccountSpecificNetworks and listDomainLevelNetworks): the Add Instance wizard lists the networks
 * of the instance's owner so.
 */
function usableByAccount(account: Account, network: Network): boolean {
  if (network.acltype === 'Account') return network.accountId === account.id;
  if (network.domainId === account.domainId) return true;
  return Boolean(network.subdomainaccess) && account.domainTree.startsWith(network.domainTree);
}

// ---- physical networks ----

/** The ranges a new `vlan` value leaves, refusing ranges still used by a network (upstream's getVnetsToremove). */
export async function planVlanRanges(physical: PhysicalNetwork, vlan: string): Promise<Range[]> {
  const parsed = parseVlanRanges(vlan);
  if ('error' in parsed) throw new InvalidParameter(parsed.error);
  const used = (await listNetworks()).filter((network) => network.physicalNetworkId === physical.id);
  for (const old of physical.vlanRanges) {
    for (const network of used) {
      if (network.vlan === UNTAGGED) continue;
      if (network.vlan >= old.start && network.vlan <= old.end && !vlanInRanges(network.vlan, parsed.ranges)) {
        // The removed part of the old range that holds the VLAN in use.
        throw new InvalidParameter(`physicalnetwork ${physical.name} has allocated vnets in the range ${formatVlanRange(removedAround(old, parsed.ranges, network.vlan))}`);
      }
    }
  }
  return parsed.ranges;
}

/** The stretch of `old` around `vlan` that the new ranges no longer cover. */
function removedAround(old: Range, kept: readonly Range[], vlan: number): Range {
  let start = vlan;
  let end = vlan;
  while (start - 1 >= old.start && !vlanInRanges(start - 1, kept)) start--;
  while (end + 1 <= old.end && !vlanInRanges(end + 1, kept)) end++;
  return { start, end };
}

function checkSingle(list: string[] | undefined, text: string): void {
  if (list && list.length > 1) throw new InvalidParameter(text);
}

const createPhysicalNetworkCommand = defineCommand({
  name: 'createPhysicalNetwork',
  description: 'Creates a physical network',
  since: '3.0.0',
  isasync: true,
  params: {
    zoneid: param.uuid('The Zone ID for the physical network'),
    name: param.string('The name of the physical network'),
    vlan: param.string('The VLAN for the physical network').optional(),
    isolationmethods: param.list(param.string('method'), 'The isolation method for the physical network[VLAN/L3/GRE]').optional(),
    broadcastdomainrange: param
      .string('The broadcast domain range for the physical network[Pod or Zone]. In Acton release it can be Zone only in Advance zone, and Pod in Basic')
      .optional(),
    domainid: param.uuid('Domain ID of the physical network').optional(),
    networkspeed: param.string('The speed for the physical network[1G/10G]').optional(),
    tags: param.list(param.string('tag'), 'Tag for the physical network').optional(),
  },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    const zone = await zoneParam('createPhysicalNetwork', 'zoneid', params.zoneid);
    if (zone.allocationstate === 'Enabled') {
      throw new PermissionDenied(`Cannot create PhysicalNetwork since the Zone is currently enabled, zone: ${zone.name}`);
    }
    if (params.domainid && !(await getDomain(params.domainid))) throw noSuchEntity('createPhysicalNetwork', 'domainid', params.domainid);
    checkSingle(params.tags, 'Only one tag can be specified for a physical network at this time');
    checkSingle(params.isolationmethods, 'Only one isolationMethod can be specified for a physical network at this time');
    const method = params.isolationmethods?.[0];
    if (method !== undefined && method.toUpperCase() !== 'VLAN') {
      throw new InvalidParameter(`Isolation method ${method} is not supported: Mold supports VLAN isolation only`);
    }
    if (params.vlan !== undefined && zone.networktype === 'Basic') throw new InvalidParameter("Can't add vnet range to the physical network in the Basic zone");
    let broadcastdomainrange: 'ZONE' | 'POD' = zone.networktype === 'Basic' ? 'POD' : 'ZONE';
    if (params.broadcastdomainrange) {
      const given = params.broadcastdomainrange.toUpperCase();
      if (given !== 'ZONE' && given !== 'POD') {
        throw new InvalidParameter(`Unable to resolve broadcastDomainRange '${params.broadcastdomainrange}' to a supported value {Pod or Zone}`);
      }
      if (zone.networktype === 'Basic' && given !== 'POD') throw new InvalidParameter('Basic zone can have broadcast domain type of value POD only');
      if (zone.networktype === 'Advanced' && given !== 'ZONE') throw new InvalidParameter('Advance zone can have broadcast domain type of value ZONE only');
      broadcastdomainrange = given;
    }
    if (zone.networktype === 'Basic' && (await listPhysicalNetworks()).some((n) => n.zoneId === zone.id)) {
      throw new InternalError(`Cannot add the physical network to basic zone: ${zone.name}, there is a physical network already existing in this basic Zone`, 4250);
    }
    let vlanRanges: Range[] = [];
    if (params.vlan !== undefined) {
      const parsed = parseVlanRanges(params.vlan);
      if ('error' in parsed) throw new InvalidParameter(parsed.error);
      vlanRanges = parsed.ranges;
    }
    const record: PhysicalNetwork = {
      id: randomUUID(),
      name: params.name,
      zoneId: zone.id,
      state: 'Disabled',
      vlanRanges,
      isolationmethods: method ? ['VLAN'] : [],
      broadcastdomainrange,
      tags: params.tags ?? [],
      networkspeed: params.networkspeed,
      domainId: params.domainid,
      created: cloudstackDate(),
      vlanVersion: 0,
      networkCount: 0,
    };
    return startAsync(caller, {
      cmd: 'createPhysicalNetwork',
      stateMachine: STATE_MACHINE,
      input: { op: 'createPhysicalNetwork', args: { record } },
      instanceType: 'PhysicalNetwork',
      instanceId: record.id,
      withId: true,
      event: { type: 'PHYSICAL.NETWORK.CREATE', description: 'Creating Physical Network', resourceId: record.id, resourceType: 'PhysicalNetwork' },
    });
  },
});

const listPhysicalNetworksCommand = defineCommand({
  name: 'listPhysicalNetworks',
  description: 'Lists physical networks',
  since: '3.0.0',
  params: {
    id: param.uuid('list physical network by id').optional(),
    name: param.string('Search by name').optional(),
    zoneid: param.uuid('the Zone ID for the physical network').optional(),
    ...listParams,
  },
  roles: ADMINS,
  handler: async ({ params, settings }) => {
    const matches = (await listPhysicalNetworks())
      .filter((n) => params.id === undefined || n.id === params.id)
      .filter((n) => params.zoneid === undefined || n.zoneId === params.zoneid)
      .filter((n) => matchesKeyword(params.name, n.name))
      .filter((n) => matchesKeyword(params.keyword, n.name));
    const zones = await zoneNames(matches.map((n) => n.zoneId));
    return { body: listResponse('physicalnetwork', matches, params, settings, (n) => renderPhysicalNetwork(n, zones.get(n.zoneId))) };
  },
});

const updatePhysicalNetworkCommand = defineCommand({
  name: 'updatePhysicalNetwork',
  description: 'Updates a physical network',
  since: '3.0.0',
  isasync: true,
  params: {
    id: param.uuid('physical network id'),
    networkspeed: param.string('the speed for the physical network[1G/10G]').optional(),
    state: param.string('Enabled/Disabled').optional(),
    tags: param.list(param.string('tag'), 'Tag for the physical network').optional(),
    vlan: param.string('the VLAN for the physical network').optional(),
  },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    const physical = await physicalNetworkParam('updatePhysicalNetwork', 'id', params.id);
    const changes = await checkPhysicalNetworkUpdate(physical, params);
    return startAsync(caller, {
      cmd: 'updatePhysicalNetwork',
      stateMachine: STATE_MACHINE,
      input: { op: 'updatePhysicalNetwork', args: { id: physical.id, ...changes } },
      instanceType: 'PhysicalNetwork',
      instanceId: physical.id,
      event: { type: 'PHYSICAL.NETWORK.UPDATE', description: 'updating physical network', resourceId: physical.id, resourceType: 'PhysicalNetwork' },
    });
  },
});

interface PhysicalNetworkChanges {
  networkspeed?: string;
  state?: string;
  tags?: string[];
  vlan?: string;
}

/** Upstream's updatePhysicalNetwork checks; the changes to apply. */
async function checkPhysicalNetworkUpdate(physical: PhysicalNetwork, params: PhysicalNetworkChanges): Promise<PhysicalNetworkChanges> {
  const zone = await getZone(physical.zoneId);
  if (params.vlan !== undefined && zone?.networktype === 'Basic') throw new InvalidParameter("Can't add vnet range to the physical network in the Basic zone");
  checkSingle(params.tags, 'Unable to support more than one tag on network yet');
  if (params.state !== undefined && params.state !== '' && params.state !== 'Enabled' && params.state !== 'Disabled') {
    throw new InvalidParameter(`Unable to resolve state '${params.state}' to a supported value {Enabled or Disabled}`);
  }
  if (params.vlan !== undefined) await planVlanRanges(physical, params.vlan);
  return params;
}

async function applyPhysicalNetworkUpdate(id: string, changes: PhysicalNetworkChanges): Promise<PhysicalNetwork> {
  for (let attempt = 0; ; attempt++) {
    const physical = await getPhysicalNetwork(id);
    if (!physical) throw new InvalidParameter("Physical Network with specified id doesn't exist in the system");
    await checkPhysicalNetworkUpdate(physical, changes);
    const updated: PhysicalNetwork = { ...physical };
    if (changes.state) updated.state = changes.state as PhysicalNetwork['state'];
    if (changes.tags !== undefined) updated.tags = changes.tags;
    if (changes.networkspeed !== undefined) updated.networkspeed = changes.networkspeed;
    if (changes.vlan !== undefined) {
      updated.vlanRanges = await planVlanRanges(physical, changes.vlan);
      updated.vlanVersion = physical.vlanVersion + 1;
    }
    try {
      await replacePhysicalNetwork(physical, updated);
      return updated;
    } catch (error) {
      // A network came or went meanwhile: check again against what is there now.
      if (error instanceof ConcurrentChange && attempt < 5) continue;
      throw error;
    }
  }
}

const deletePhysicalNetworkCommand = defineCommand({
  name: 'deletePhysicalNetwork',
  description: 'Deletes a Physical Network.',
  since: '3.0.0',
  isasync: true,
  params: { id: param.uuid('the ID of the Physical network') },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    const physical = await physicalNetworkParam('deletePhysicalNetwork', 'id', params.id);
    checkPhysicalNetworkDeletable(physical);
    return startAsync(caller, {
      cmd: 'deletePhysicalNetwork',
      stateMachine: STATE_MACHINE,
      input: { op: 'deletePhysicalNetwork', args: { id: physical.id } },
      instanceType: 'PhysicalNetwork',
      instanceId: physical.id,
      event: { type: 'PHYSICAL.NETWORK.DELETE', description: 'deleting physical network', resourceId: physical.id, resourceType: 'PhysicalNetwork' },
    });
  },
});

function checkPhysicalNetworkDeletable(physical: PhysicalNetwork): void {
  if (physical.networkCount > 0) {
    throw new ResourceInUse('The Physical Network is not deletable because there are networks associated to this physical network');
  }
}

async function applyPhysicalNetworkDeletion(id: string): Promise<void> {
  const physical = await getPhysicalNetwork(id);
  if (!physical) return; // already gone: a retried step
  checkPhysicalNetworkDeletable(physical);
  try {
    await deletePhysicalNetworkRecord(physical);
  } catch (error) {
    if (error instanceof ConcurrentChange) checkPhysicalNetworkDeletable({ ...physical, networkCount: Math.max(1, physical.networkCount) });
    throw error;
  }
}

// ---- network offerings ----

const listNetworkOfferingsCommand = defineCommand({
  name: 'listNetworkOfferings',
  description: 'Lists all available network offerings.',
  since: '3.0.0',
  params: {
    id: param.uuid('List network offerings by ID').optional(),
    name: param.string('List network offerings by name').optional(),
    displaytext: param.text('List network offerings by display text').optional(),
    traffictype: param.string('List by traffic type').optional(),
    isdefault: param.boolean('True if need to list only default network offerings. Default value is false').optional(),
    specifyvlan: param.boolean('The tags for the network offering.').optional(),
    availability: param.string('The availability of network offering. Default value is required').optional(),
    guestiptype: param.string('List network offerings by guest type: shared or isolated').optional(),
    state: param.string('List network offerings by state').optional(),
    zoneid: param.uuid('List network offerings available for network creation in specific zone').optional(),
    forvpc: param.boolean('The network offering can be used only for network creation inside the VPC').optional(),
    specifyipranges: param.boolean('True if need to list only network offerings which support specifying IP ranges').optional(),
    ...listParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, settings }) => {
    const same = (a: string | undefined, b: string) => a === undefined || a.toLowerCase() === b.toLowerCase();
    const matches = NETWORK_OFFERINGS.filter((o) => params.id === undefined || o.id === params.id)
      .filter((o) => same(params.name, o.name))
      .filter((o) => same(params.displaytext, o.displaytext))
      .filter((o) => same(params.traffictype, o.traffictype))
      .filter((o) => same(params.guestiptype, o.guestiptype))
      .filter((o) => same(params.availability, o.availability))
      .filter((o) => same(params.state, 'Enabled'))
      .filter((o) => params.specifyvlan === undefined || o.specifyvlan === params.specifyvlan)
      .filter((o) => params.specifyipranges === undefined || o.specifyipranges === params.specifyipranges)
      .filter((o) => params.forvpc !== true)
      .filter((o) => matchesKeyword(params.keyword, o.name, o.displaytext));
    return { body: listResponse('networkoffering', matches, params, settings, renderOffering) };
  },
});

// ---- networks ----

/** Upstream's checks of startip, endip, gateway and netmask for a shared network's range. */
function checkAddressing(fields: { gateway?: string; netmask?: string; startip?: string; endip?: string }) {
  if (fields.gateway === undefined || fields.netmask === undefined || fields.startip === undefined) {
    if (fields.startip === undefined) throw new InvalidParameter('Either IPv4 or IPv6 start and end address are mandatory');
    throw new InvalidParameter('gateway and netmask should be defined when startIP/endIP are passed in');
  }
  if (!parseIpv4Strict(fields.startip)) throw new InvalidParameter('Invalid format for the startIp parameter');
  const endip = fields.endip ?? fields.startip;
  if (!parseIpv4Strict(endip)) throw new InvalidParameter('Invalid format for the endIp parameter');
  if (!parseIpv4Strict(fields.gateway)) throw new InvalidParameter('Invalid gateway');
  if (!isNetmask(fields.netmask)) throw new InvalidParameter('Invalid netmask');
  if (isNetworkOrBroadcast(fields.gateway, fields.netmask)) throw new InvalidParameter('Invalid gateway IP provided. Either the IP is broadcast or network IP.');
  const cidr = cidrOf(fields.gateway, fields.netmask)!;
  if (!inCidr(fields.startip, cidr)) {
    throw new InvalidParameter("Please ensure that your start IP is in the same subnet as your IP range's gateway, as per the IP range's netmask.");
  }
  if (!inCidr(endip, cidr)) throw new InvalidParameter("Please ensure that your end IP is in the same subnet as your IP range's gateway, as per the IP range's netmask.");
  const range = ipRange(fields.startip, endip)!;
  if (range.start > range.end) throw new InvalidParameter('Please specify a valid IP range: the startip must not be greater than the endip');
  const gateway = parseIpv4(fields.gateway)!;
  if (gateway >= range.start && gateway <= range.end) throw new InvalidParameter('The gateway ip should not be the part of the ip range being added.');
  return { gateway: fields.gateway, netmask: fields.netmask, startip: fields.startip, endip, cidr, range };
}

const parseIpv4Strict = (text: string) => parseIpv4(text) !== undefined;

/** A `vlan` parameter: an 802.1Q id or untagged (upstream's vlan://untagged), as "100", "vlan://100" or "untagged". */
function vlanParam(text: string): VlanTag {
  const vlan = parseVlanId(text);
  if (vlan === undefined) throw new InvalidParameter(`Invalid vlan ${text}: the VLAN id has to be between 0 and 4095, or untagged`);
  return vlan;
}

/** A new range must overlap no range of the same network, nor of any network on the same VLAN tag in the zone. */
async function checkRangeOverlap(range: Range, vlan: VlanTag, zoneId: string, networkId?: string): Promise<void> {
  const networksOnTag = new Set((await listNetworks()).filter((n) => n.zoneId === zoneId && n.vlan === vlan).map((n) => n.id));
  for (const other of await listVlanIpRanges()) {
    if (other.networkId !== networkId && !networksOnTag.has(other.networkId)) continue;
    if (rangesOverlap(range, ipRange(other.startip, other.endip)!)) {
      throw new InvalidParameter(`The IP range with tag: vlan://${other.vlan} already has IPs that overlap with the new range. Please specify a different start IP/end IP.`);
    }
  }
}

const createNetworkCommand = defineCommand({
  name: 'createNetwork',
  description: 'Creates a network',
  params: {
    name: param.string('The name of the network'),
    displaytext: param.text('The display text of the network').optional(),
    networkofferingid: param.uuid('The network offering ID'),
    zoneid: param.uuid('The zone ID for the network'),
    physicalnetworkid: param.uuid('The physical network ID the network belongs to').optional(),
    gateway: param.string('The gateway of the network. Required for shared networks and isolated networks when it belongs to VPC').optional(),
    netmask: param.string('The netmask of the network. Required for shared networks and isolated networks when it belongs to VPC').optional(),
    startip: param.string('The beginning IP address in the network IP range').optional(),
    endip: param.string('The ending IP address in the network IP range. If not specified, will be defaulted to startIP').optional(),
    vlan: param.string('The ID or VID of the network').optional(),
    networkdomain: param.string('Network domain').optional(),
    acltype: param
      .string('Access control type; supported values are account and domain. In 3.0 all shared networks should have aclType=Domain, and all isolated networks - Account. Account means that only the account owner can use the network, domain - all accounts in the domain can use the network')
      .optional(),
    account: param.string('Account that will own the network. Account should be under the selected domain').optional(),
    domainid: param.uuid('Domain ID of the account owning a network. If the account is not specified, but domainid is specified, network is created for the specified domain.').optional(),
    subdomainaccess: param
      .boolean('Defines whether to allow subdomains to use networks dedicated to their parent domain(s). Should be used with aclType=Domain, defaulted to allow.subdomain.network.access global config if not specified')
      .optional(),
    bypassvlanoverlapcheck: param.boolean('when true bypasses VLAN id/range overlap check during network creation for shared and L2 networks').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const api = 'createNetwork';
    const offering = offeringParam(api, 'networkofferingid', params.networkofferingid);
    const zone = await zoneParam(api, 'zoneid', params.zoneid);
    if (!offering.usable) {
      throw new InvalidParameter(
        `Network offering ${offering.name} (${offering.guestiptype}) is not supported yet: Mold creates shared networks with DefaultSharedNetworkOffering only`,
      );
    }
    if (!isRootAdmin(caller)) throw new InvalidParameter('Only ROOT admin is allowed to specify vlanId or bypass vlan overlap check');
    if (zone.networktype !== 'Advanced') throw new InvalidParameter(`Shared networks with a VLAN need an Advanced zone; zone ${zone.name} is ${zone.networktype}`);
    // The physical network: the given one, or the zone's only one.
    let physical: PhysicalNetwork;
    if (params.physicalnetworkid) {
      physical = await physicalNetworkParam(api, 'physicalnetworkid', params.physicalnetworkid);
      if (physical.zoneId !== zone.id) throw new InvalidParameter(`Physical network ${physical.name} is not in zone ${zone.name}`);
    } else {
      const inZone = (await listPhysicalNetworks()).filter((n) => n.zoneId === zone.id);
      if (inZone.length !== 1) {
        throw new InvalidParameter(
          inZone.length === 0
            ? `Unable to find physical network in zone id=${zone.id}`
            : `More than one physical network is found in zone id=${zone.id}; please specify physicalnetworkid`,
        );
      }
      physical = inZone[0];
    }
    if (params.vlan === undefined) throw new InvalidParameter('vlan is required when creating a network from a network offering with specifyvlan=true');
    const vlan = vlanParam(params.vlan);
    // The physical network's ranges are for guest VLANs it hands out itself; a shared network sits
    // outside them unless the root admin deliberately bypasses the check (upstream's rule).
    if (vlan !== UNTAGGED && vlanInRanges(vlan, physical.vlanRanges) && !params.bypassvlanoverlapcheck) {
      throw new InvalidParameter(
        `The VLAN tag to use for new guest network, ${vlan} is already being used for dynamic vlan allocation for the guest network in zone ${zone.name}`,
      );
    }
    const addressing = checkAddressing(params);
    // Scope: a domain network (default) or an account's.
    const acltype = params.acltype ?? (params.account ? 'Account' : 'Domain');
    if (!/^(account|domain)$/i.test(acltype)) throw new InvalidParameter(`Invalid acltype ${params.acltype}: supported values are account and domain`);
    const domain = params.domainid ? await resolveDomain(caller, params.domainid) : await domainOf(caller);
    let accountId: string | undefined;
    if (/^account$/i.test(acltype)) {
      if (!params.account) throw new InvalidParameter('Account should be specified with acltype=Account');
      accountId = (await resolveAccount(caller, domain, params.account)).id;
    } else if (params.account) {
      throw new InvalidParameter('Account cannot be specified with aclType=Domain');
    }
    if (params.subdomainaccess !== undefined && accountId) throw new InvalidParameter('Parameter subDomainAccess can be specified only with aclType=Domain');
    if ((await listNetworks()).some((n) => n.physicalNetworkId === physical.id && n.vlan === vlan)) {
      throw new InvalidParameter(`Network with vlan ${vlan} already exists or overlaps with other network vlans in zone ${zone.id}`);
    }
    await checkRangeOverlap(addressing.range, vlan, zone.id);
    const created = cloudstackDate();
    const network: Network = {
      id: randomUUID(),
      name: params.name,
      displaytext: params.displaytext ?? params.name,
      zoneId: zone.id,
      physicalNetworkId: physical.id,
      networkOfferingId: offering.id,
      guestiptype: 'Shared',
      vlan,
      gateway: addressing.gateway,
      netmask: addressing.netmask,
      cidr: addressing.cidr,
      acltype: accountId ? 'Account' : 'Domain',
      domainId: domain.id,
      domainTree: domain.tree,
      ...(accountId ? { accountId } : { subdomainaccess: params.subdomainaccess ?? true }),
      ...(params.networkdomain && { networkdomain: params.networkdomain }),
      state: 'Setup',
      created,
      rangesVersion: 1,
    };
    const range: VlanIpRange = {
      id: randomUUID(),
      networkId: network.id,
      zoneId: zone.id,
      physicalNetworkId: physical.id,
      vlan,
      gateway: addressing.gateway,
      netmask: addressing.netmask,
      cidr: addressing.cidr,
      startip: addressing.startip,
      endip: addressing.endip,
      domainId: domain.id,
      ...(accountId && { accountId }),
      created,
    };
    // An account's network counts against its `network` limit (532 when exceeded).
    if (accountId) await reserveResources(accountId, { network: 1 });
    try {
      await createNetworkRecord(network, range, physical);
    } catch (error) {
      if (accountId) await releaseResources(accountId, { network: 1 });
      if (error instanceof ConcurrentChange) {
        throw new InvalidParameter(`Network with vlan ${vlan} already exists or overlaps with other network vlans in zone ${zone.id}`);
      }
      throw error;
    }
    const context = await networkContext([network]);
    return {
      body: { network: renderNetwork(network, context, true) },
      events: [completedEvent('NETWORK.CREATE', 'creating network', { id: network.id, type: 'Network' }, `Network Id: ${network.id}`)],
    };
  },
});

async function domainOf(caller: Caller): Promise<Domain> {
  if (isRootAdmin(caller)) {
    const root = await getDomain(rootDomainId(caller));
    if (root) return root;
  }
  return caller.domain;
}

const NETWORK_TYPES = ['Isolated', 'Shared', 'L2'] as const;

const listNetworksCommand = defineCommand({
  name: 'listNetworks',
  description: 'Lists all available networks.',
  params: {
    id: param.uuid('List networks by ID').optional(),
    zoneid: param.uuid('The zone ID of the network').optional(),
    type: param.string('The type of the network. Supported values are: isolated, l2, shared and all').optional(),
    physicalnetworkid: param.uuid('List networks by physical network id').optional(),
    networkofferingid: param.uuid('List networks by network offering ID').optional(),
    acltype: param.string('List networks by ACL (access control list) type. Supported values are account and domain').optional(),
    traffictype: param.string('Type of the traffic').optional(),
    issystem: param.boolean('True if network is system, false otherwise').optional(),
    canusefordeploy: param.boolean('List networks available for VM deployment').optional(),
    specifyipranges: param.boolean('True if need to list only networks which support specifying IP ranges').optional(),
    ...scopeParams,
    ...listParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    if (params.type !== undefined && params.type.toLowerCase() !== 'all' && !NETWORK_TYPES.some((t) => t.toLowerCase() === params.type!.toLowerCase())) {
      throw new InvalidParameter(`Unable to execute API command listnetworks due to invalid value ${params.type} for parameter type`);
    }
    let scopeTree: string | undefined;
    let owner: Account | undefined;
    if (params.domainid) scopeTree = (await resolveDomain(caller, params.domainid)).tree;
    if (params.account) {
      const domain = params.domainid ? await resolveDomain(caller, params.domainid) : caller.domain;
      owner = await resolveAccount(caller, domain, params.account);
    }
    const same = (a: string | undefined, b: string) => a === undefined || a.toLowerCase() === 'all' || a.toLowerCase() === b.toLowerCase();
    const matches = (await listNetworks())
      .filter((n) => canUseNetwork(caller, n))
      .filter((n) => params.id === undefined || n.id === params.id)
      .filter((n) => params.zoneid === undefined || n.zoneId === params.zoneid)
      .filter((n) => params.physicalnetworkid === undefined || n.physicalNetworkId === params.physicalnetworkid)
      .filter((n) => params.networkofferingid === undefined || n.networkOfferingId === params.networkofferingid)
      .filter((n) => same(params.type, n.guestiptype))
      .filter((n) => same(params.acltype, n.acltype))
      .filter((n) => same(params.traffictype, 'Guest'))
      .filter((n) => params.issystem !== true)
      .filter((n) => params.specifyipranges !== false)
      .filter((n) => scopeTree === undefined || owner !== undefined || (params.isrecursive ? n.domainTree.startsWith(scopeTree) : n.domainTree === scopeTree))
      .filter((n) => owner === undefined || usableByAccount(owner, n))
      .filter((n) => matchesKeyword(params.keyword, n.name, n.displaytext));
    const context = await networkContext(matches);
    return { body: listResponse('network', matches, params, settings, (n) => renderNetwork(n, context, isRootAdmin(caller))) };
  },
});

const updateNetworkCommand = defineCommand({
  name: 'updateNetwork',
  description: 'Updates a network',
  isasync: true,
  params: {
    id: param.uuid('The ID of the network'),
    name: param.string('The new name for the network').optional(),
    displaytext: param.text('The new display text for the network').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const network = await networkParam('updateNetwork', 'id', params.id);
    checkManagesNetwork(caller, network);
    return startAsync(caller, {
      cmd: 'updateNetwork',
      stateMachine: STATE_MACHINE,
      input: {
        op: 'updateNetwork',
        args: { id: network.id, rootAdmin: isRootAdmin(caller), ...(params.name !== undefined && { name: params.name }), ...(params.displaytext !== undefined && { displaytext: params.displaytext }) },
      },
      instanceType: 'Network',
      instanceId: network.id,
      event: { type: 'NETWORK.UPDATE', description: `updating network: ${network.id}`, resourceId: network.id, resourceType: 'Network' },
    });
  },
});

/** Shared networks are the root admin's (or a domain admin's within its subtree). */
function checkManagesNetwork(caller: Caller, network: Network): void {
  if (isRootAdmin(caller)) return;
  if (isDomainAdmin(caller) && network.domainTree.startsWith(caller.domain.tree) && network.acltype === 'Account') return;
  throw new PermissionDenied(`Account ${caller.account.name} does not have permission to operate with network ${network.name}`);
}

const deleteNetworkCommand = defineCommand({
  name: 'deleteNetwork',
  description: 'Deletes a network',
  isasync: true,
  params: {
    id: param.uuid('The ID of the network'),
    forced: param.boolean('Force delete a network. Network will be marked as \'Destroy\' even when commands to shutdown and cleanup to the backend fails.').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const network = await networkParam('deleteNetwork', 'id', params.id);
    checkManagesNetwork(caller, network);
    await checkNetworkDeletable(network);
    return startAsync(caller, {
      cmd: 'deleteNetwork',
      stateMachine: STATE_MACHINE,
      input: { op: 'deleteNetwork', args: { id: network.id } },
      instanceType: 'Network',
      instanceId: network.id,
      event: { type: 'NETWORK.DELETE', description: `Deleting network: ${network.id}`, resourceId: network.id, resourceType: 'Network' },
    });
  },
});

async function checkNetworkDeletable(network: Network): Promise<void> {
  const allocated = await countAllocatedAddresses(network.id);
  if (allocated > 0) {
    throw new ResourceInUse(`Unable to delete network ${network.name}: it has ${allocated} allocated IP address${allocated === 1 ? '' : 'es'} in use`);
  }
}

async function applyNetworkDeletion(id: string): Promise<void> {
  const network = await getNetwork(id);
  if (!network) return; // a retried step: already gone
  if (!network.deleting && !(await markDeleting(networkKeys.network(id), true))) return;
  try {
    await checkNetworkDeletable(network);
  } catch (error) {
    await markDeleting(networkKeys.network(id), false);
    throw error;
  }
  await deleteNetworkRecords(network, await currentRangesOfNetwork(id));
  if (network.accountId) await releaseResources(network.accountId, { network: 1 });
}

// ---- VLAN IP ranges ----

const createVlanIpRangeCommand = defineCommand({
  name: 'createVlanIpRange',
  description: 'Creates a VLAN IP range.',
  params: {
    networkid: param.uuid('The network ID').optional(),
    zoneid: param.uuid('The Zone ID of the VLAN IP range').optional(),
    physicalnetworkid: param.uuid('The physical network id').optional(),
    podid: param.uuid('Optional. The Pod ID for the VLAN IP range').optional(),
    vlan: param.string('The ID or VID of the VLAN. If not specified, will be defaulted to the vlan of the network or if vlan of the network is null - to Untagged').optional(),
    gateway: param.string('The gateway of the VLAN IP range').optional(),
    netmask: param.string('The netmask of the VLAN IP range').optional(),
    startip: param.string('The beginning IP address in the VLAN IP range').optional(),
    endip: param.string('The ending IP address in the VLAN IP range').optional(),
    forvirtualnetwork: param.boolean('True if VLAN is of Virtual type, false if Direct').optional(),
    account: param.string('Account who will own the VLAN. If VLAN is Zone wide, this parameter should be omitted').optional(),
    domainid: param.uuid('Domain ID of the account owning a VLAN').optional(),
    forsystemvms: param.boolean('True if IP range is set to system vms, false if not').optional(),
  },
  roles: ADMINS,
  handler: async ({ params }) => {
    const api = 'createVlanIpRange';
    if (!params.networkid) throw new InvalidParameter('networkid is required: Mold adds IP ranges to shared guest networks only');
    const network = await networkParam(api, 'networkid', params.networkid);
    if (params.zoneid && params.zoneid !== network.zoneId) throw new InvalidParameter(`Network ${network.name} is not in zone ${params.zoneid}`);
    if (params.physicalnetworkid && params.physicalnetworkid !== network.physicalNetworkId) {
      throw new InvalidParameter(`Network ${network.name} is not on physical network ${params.physicalnetworkid}`);
    }
    if (params.forvirtualnetwork === true) throw new InvalidParameter("Can't add a public IP range to a shared guest network; forvirtualnetwork must be false");
    if (params.vlan !== undefined) {
      if (vlanParam(params.vlan) !== network.vlan) throw new InvalidParameter(`The vlan ${params.vlan} doesn't match the vlan of network ${network.name}`);
    }
    const addressing = checkAddressing({
      gateway: params.gateway ?? network.gateway,
      netmask: params.netmask ?? network.netmask,
      startip: params.startip,
      endip: params.endip,
    });
    if (addressing.gateway !== network.gateway || addressing.cidr !== network.cidr) {
      throw new InvalidParameter(
        `The IP range has already been added with gateway ${network.gateway} ,and netmask ${network.netmask}, Please specify the gateway/netmask if you want to extend ip range`,
      );
    }
    await checkRangeOverlap(addressing.range, network.vlan, network.zoneId, network.id);
    const range: VlanIpRange = {
      id: randomUUID(),
      networkId: network.id,
      zoneId: network.zoneId,
      physicalNetworkId: network.physicalNetworkId,
      vlan: network.vlan,
      gateway: addressing.gateway,
      netmask: addressing.netmask,
      cidr: addressing.cidr,
      startip: addressing.startip,
      endip: addressing.endip,
      domainId: network.domainId,
      ...(network.accountId && { accountId: network.accountId }),
      created: cloudstackDate(),
    };
    try {
      await addVlanIpRange(network, range);
    } catch (error) {
      if (error instanceof ConcurrentChange) throw new InvalidParameter(`The IP ranges of network ${network.name} changed meanwhile; please try again`);
      throw error;
    }
    const context = await networkContext([range]);
    return {
      body: { vlan: renderVlanIpRange(range, context) },
      events: [completedEvent('VLAN.IP.RANGE.CREATE', 'creating vlan ip range', { id: range.id, type: 'Vlan' }, `Vlan Id: ${range.id}`)],
    };
  },
});

const listVlanIpRangesCommand = defineCommand({
  name: 'listVlanIpRanges',
  description: 'Lists all VLAN IP ranges.',
  params: {
    id: param.uuid('the ID of the VLAN IP range').optional(),
    networkid: param.uuid('network id of the VLAN IP range').optional(),
    zoneid: param.uuid('the Zone ID of the VLAN IP range').optional(),
    physicalnetworkid: param.uuid('physical network id of the VLAN IP range').optional(),
    vlan: param.string('the ID or VID of the VLAN. Default is an "untagged" VLAN.').optional(),
    forvirtualnetwork: param.boolean('true if VLAN is of Virtual type, false if Direct').optional(),
    account: param.string('the account with which the VLAN IP range is associated. Must be used with the domainId parameter.').optional(),
    domainid: param.uuid('the domain ID with which the VLAN IP range is associated.  If used with the account parameter, returns all VLAN IP ranges for that account in the specified domain.').optional(),
    ...listParams,
  },
  roles: ADMINS,
  handler: async ({ params, settings }) => {
    const vlan = params.vlan === undefined ? undefined : parseVlanId(params.vlan);
    const matches = (await listVlanIpRanges())
      .filter((r) => params.id === undefined || r.id === params.id)
      .filter((r) => params.networkid === undefined || r.networkId === params.networkid)
      .filter((r) => params.zoneid === undefined || r.zoneId === params.zoneid)
      .filter((r) => params.physicalnetworkid === undefined || r.physicalNetworkId === params.physicalnetworkid)
      .filter((r) => params.vlan === undefined || r.vlan === vlan)
      .filter((r) => params.forvirtualnetwork !== true)
      .filter((r) => params.domainid === undefined || r.domainId === params.domainid)
      .filter((r) => matchesKeyword(params.keyword, r.startip, r.endip, r.gateway, r.cidr));
    const context = await networkContext(matches);
    return { body: listResponse('vlaniprange', matches, params, settings, (r) => renderVlanIpRange(r, context)) };
  },
});

const deleteVlanIpRangeCommand = defineCommand({
  name: 'deleteVlanIpRange',
  description: 'Deletes a VLAN IP range.',
  params: { id: param.uuid('the id of the VLAN IP range') },
  roles: ADMINS,
  handler: async ({ params }) => {
    const range = await getVlanIpRange(params.id);
    if (!range) throw noSuchEntity('deleteVlanIpRange', 'id', params.id);
    if (!(await markDeleting(networkKeys.range(range.id), true))) {
      throw new ResourceInUse(`The IP range ${range.startip}-${range.endip} is being deleted already`);
    }
    const allocated = await countAllocatedAddresses(range.networkId, ipRange(range.startip, range.endip)!);
    if (allocated > 0) {
      await markDeleting(networkKeys.range(range.id), false);
      throw new ResourceInUse(
        `The IP range ${range.startip}-${range.endip} can't be deleted because it has ${allocated} allocated IP address${allocated === 1 ? '' : 'es'}`,
      );
    }
    await deleteVlanIpRangeRecord(range);
    return {
      body: { success: true },
      events: [completedEvent('VLAN.IP.RANGE.DELETE', 'deleting vlan ip range', { id: range.id, type: 'Vlan' }, `Vlan Id: ${range.id}`)],
    };
  },
});

// ---- the async steps (functions/tasks/networks.ts) ----

export type NetworkTaskOp = 'createPhysicalNetwork' | 'updatePhysicalNetwork' | 'deletePhysicalNetwork' | 'updateNetwork' | 'deleteNetwork';

/** The work of one async network command; the returned object is the job's result. */
export async function runNetworkTask(op: NetworkTaskOp, args: Record<string, any>): Promise<Record<string, unknown>> {
  switch (op) {
    case 'createPhysicalNetwork': {
      const record = args.record as PhysicalNetwork;
      const existing = await getPhysicalNetwork(record.id);
      if (!existing) {
        await putPhysicalNetwork(record).catch(async (error) => {
          if (!(await getPhysicalNetwork(record.id))) throw error; // else a retried step
        });
      }
      return { physicalnetwork: renderPhysicalNetwork(record, await getZone(record.zoneId)) };
    }
    case 'updatePhysicalNetwork': {
      const { id, ...changes } = args;
      const updated = await applyPhysicalNetworkUpdate(id, changes);
      return { physicalnetwork: renderPhysicalNetwork(updated, await getZone(updated.zoneId)) };
    }
    case 'deletePhysicalNetwork':
      await applyPhysicalNetworkDeletion(args.id);
      return { success: true };
    case 'updateNetwork': {
      const network = await getNetwork(args.id);
      if (!network) throw new InvalidParameter(`Unable to find network by id ${args.id}`);
      const updated = await updateNetworkRecord(network, {
        ...(args.name !== undefined && { name: args.name }),
        ...(args.displaytext !== undefined && { displaytext: args.displaytext }),
      });
      return { network: renderNetwork(updated, await networkContext([updated]), Boolean(args.rootAdmin)) };
    }
    case 'deleteNetwork':
      await applyNetworkDeletion(args.id);
      return { success: true };
  }
}

export const networkCommands = [
  createPhysicalNetworkCommand,
  listPhysicalNetworksCommand,
  updatePhysicalNetworkCommand,
  deletePhysicalNetworkCommand,
  listNetworkOfferingsCommand,
  createNetworkCommand,
  listNetworksCommand,
  updateNetworkCommand,
  deleteNetworkCommand,
  createVlanIpRangeCommand,
  listVlanIpRangesCommand,
  deleteVlanIpRangeCommand,
];
