// Zones (upstream's CreateZoneCmd, ListZonesCmd, UpdateZoneCmd, DeleteZoneCmd), and what the pod,
// cluster and host commands share: allocation states, entity lookups and the infrastructure events.
// Only root admins manage zones; everyone lists them, users and domain admins only the enabled zones
// that are public or dedicated to their domain line.
import { InvalidParameter, ResourceInUse } from '../../../shared/cloudstack/errors.ts';
import { inCidr, isIpv4, parseCidr } from '../../../shared/cloudstack/ip.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { getDomain, type Domain } from '../../../shared/db/identity.ts';
import {
  createZone,
  deleteZoneRecord,
  getCluster,
  getPod,
  getZone,
  listZones,
  NameInUse,
  NotEmpty,
  updateZone,
  zoneContents,
  type AllocationState,
  type Cluster,
  type Contents,
  type Pod,
  type Zone,
} from '../../../shared/db/infrastructure.ts';
import { ADMINS, ALL_ROLES, type Caller, completedEvent, defineCommand } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { isDomainAdmin, isRootAdmin } from '../scope.ts';
import { checkNetworkDomain } from './identity-common.ts';
import { noSuchEntity } from '../validate.ts';

// ---- shared by the infrastructure commands ----

/** Admin-type roles that may read the physical inventory (upstream's commands.properties 3). */
export const INFRA_READERS = ['Admin', 'ResourceAdmin'] as const;


/** Upstream's Grouping.AllocationState.valueOf: exactly Enabled or Disabled. */
export function allocationState(value: string | undefined): AllocationState | undefined {
  if (value === undefined) return undefined;
  if (value !== 'Enabled' && value !== 'Disabled') {
    throw new InvalidParameter(`Unable to resolve Allocation State '${value}' to a supported state`);
  }
  return value;
}

/**
 * Upstream's `resourcedetails` of a zone or cluster, as far as Mold keeps them: the out-of-band
 * management and host HA switches, each present once switched (upstream's detail rows), as the strings
 * upstream stores. The UI offers "Enable" where one reads "false", "Disable" otherwise.
 */
export function switchDetails(record: { oobmenabled?: boolean; haenabled?: boolean }) {
  const details = {
    ...(record.oobmenabled !== undefined && { outOfBandManagementEnabled: String(record.oobmenabled) }),
    ...(record.haenabled !== undefined && { resourceHAEnabled: String(record.haenabled) }),
  };
  return Object.keys(details).length > 0 ? { resourcedetails: details } : {};
}

export async function zoneParam(api: string, name: string, id: string): Promise<Zone> {
  const zone = await getZone(id.toLowerCase());
  if (!zone) throw noSuchEntity(api, name, id);
  return zone;
}

export async function podParam(api: string, name: string, id: string): Promise<Pod> {
  const pod = await getPod(id.toLowerCase());
  if (!pod) throw noSuchEntity(api, name, id);
  return pod;
}

export async function clusterParam(api: string, name: string, id: string): Promise<Cluster> {
  const cluster = await getCluster(id.toLowerCase());
  if (!cluster) throw noSuchEntity(api, name, id);
  return cluster;
}

/** 536 naming what is in the way: `<prefix><reason>: <names>`. */
export function inUse(prefix: string, contents: Contents | undefined): ResourceInUse {
  if (!contents) return new ResourceInUse(`${prefix}it is not empty`);
  return new ResourceInUse(`${prefix}${contents.reason}: ${contents.names.join(', ')}`);
}

/** Names of zones, pods and clusters by id, for responses. */
export async function namesOf<T extends { id: string; name: string }>(ids: Iterable<string>, get: (id: string) => Promise<T | undefined>): Promise<Map<string, string>> {
  const unique = [...new Set(ids)];
  const names = new Map<string, string>();
  for (const record of await Promise.all(unique.map((id) => get(id)))) if (record) names.set(record.id, record.name);
  return names;
}

/** Listings across parents come back by name (then id), whatever their parents' ids. */
export const byName = (a: { name: string; id: string }, b: { name: string; id: string }) =>
  a.name.toLowerCase().localeCompare(b.name.toLowerCase()) || a.id.localeCompare(b.id);

// ---- zones ----

const NETWORK_TYPES = ['Basic', 'Advanced'] as const;
const DEFAULT_GUEST_CIDR = '10.1.1.0/24';

/** Upstream's ZoneResponse: the Full view (DNS, guest CIDR) for root admins only. */
function renderZone(zone: Zone, full: boolean, domains: Map<string, Domain>) {
  const domain = zone.domainId ? domains.get(zone.domainId) : undefined;
  return {
    id: zone.id,
    name: zone.name,
    ...(zone.description !== undefined && { description: zone.description }),
    ...(full && {
      dns1: zone.dns1,
      dns2: zone.dns2,
      internaldns1: zone.internaldns1,
      internaldns2: zone.internaldns2,
      guestcidraddress: zone.guestcidraddress,
    }),
    domain: zone.domain,
    domainid: zone.domainId,
    domainname: domain?.name,
    networktype: zone.networktype,
    securitygroupsenabled: Boolean(zone.securitygroupsenabled),
    allocationstate: zone.allocationstate,
    zonetoken: zone.zonetoken,
    dhcpprovider: zone.dhcpprovider,
    localstorageenabled: Boolean(zone.localstorageenabled),
    tags: [],
    allowuserspecifyvrmtu: false,
    routerprivateinterfacemaxmtu: 1500,
    routerpublicinterfacemaxmtu: 1500,
    type: 'Core',
    nsxenabled: false,
    multiarch: false,
    hasannotations: false,
    ...switchDetails(zone),
  };
}

async function renderZones(zones: Zone[], caller: Caller) {
  const ids = [...new Set(zones.map((zone) => zone.domainId).filter((id): id is string => Boolean(id)))];
  const domains = new Map((await Promise.all(ids.map((id) => getDomain(id)))).filter((d): d is Domain => Boolean(d)).map((d) => [d.id, d]));
  return zones.map((zone) => renderZone(zone, isRootAdmin(caller), domains));
}

/** Public zones, and zones dedicated to the caller's domain line (a domain admin: also below it). */
function zoneVisible(caller: Caller, zone: Zone): boolean {
  if (isRootAdmin(caller)) return true;
  if (zone.allocationstate !== 'Enabled') return false;
  if (!zone.domainTree) return true;
  if (caller.domain.tree.startsWith(zone.domainTree)) return true;
  return isDomainAdmin(caller) && zone.domainTree.startsWith(caller.domain.tree);
}

/** NetUtils.validateGuestCidr: a CIDR lying wholly inside one RFC 1918 block. */
function isValidGuestCidr(value: string): boolean {
  const cidr = parseCidr(value);
  if (!cidr) return false;
  return ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'].some((block) => cidr.prefix >= parseCidr(block)!.prefix && inCidr(cidr.network, block));
}

/** checkZoneParameters: DNS addresses, the network domain and the guest CIDR. */
function checkZoneFields(params: { dns1?: string; dns2?: string; internaldns1?: string; internaldns2?: string; domain?: string; guestcidraddress?: string }) {
  if (params.dns1 !== undefined && !isIpv4(params.dns1)) throw new InvalidParameter('Please enter a valid IP address for DNS1');
  if (params.dns2 !== undefined && !isIpv4(params.dns2)) throw new InvalidParameter('Please enter a valid IP address for DNS2');
  if (params.internaldns1 !== undefined && !isIpv4(params.internaldns1)) throw new InvalidParameter('Please enter a valid IP address for internal DNS1');
  if (params.internaldns2 !== undefined && !isIpv4(params.internaldns2)) throw new InvalidParameter('Please enter a valid IP address for internal DNS2');
  if (params.guestcidraddress !== undefined && !isValidGuestCidr(params.guestcidraddress)) throw new InvalidParameter('Please enter a valid guest cidr');
  checkNetworkDomain(params.domain);
}

const duplicateZone = () => new InvalidParameter('A zone with that name already exists. Please specify a unique zone name.');

async function checkZoneNameFree(name: string, except?: string): Promise<void> {
  if ((await listZones()).some((zone) => zone.id !== except && zone.name.toLowerCase() === name.toLowerCase())) throw duplicateZone();
}

const createZoneCommand = defineCommand({
  name: 'createZone',
  description: 'Creates a Zone.',
  params: {
    name: param.string('the name of the Zone'),
    networktype: param.string('network type of the zone, can be Basic or Advanced'),
    dns1: param.string('the first DNS for the Zone'),
    dns2: param.string('the second DNS for the Zone').optional(),
    internaldns1: param.string('the first internal DNS for the Zone').optional(),
    internaldns2: param.string('the second internal DNS for the Zone').optional(),
    guestcidraddress: param.string('the guest CIDR address for the Zone').optional(),
    domain: param.string('Network domain name for the networks in the zone').optional(),
    domainid: param.uuid('the ID of the containing domain, null for public zones').optional(),
    allocationstate: param.string('Allocation state of this Zone for allocation of new resources').optional(),
    securitygroupenabled: param.boolean('true if network is security group enabled, false otherwise').optional(),
    localstorageenabled: param.boolean('true if local storage offering enabled, false otherwise').optional(),
  },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    const networktype = NETWORK_TYPES.find((type) => type.toLowerCase() === params.networktype.toLowerCase());
    if (!networktype) throw new InvalidParameter('Invalid zone type; only Advanced and Basic values are supported');
    await checkZoneNameFree(params.name);
    let domain: Domain | undefined;
    if (params.domainid) {
      domain = await getDomain(params.domainid);
      if (!domain) throw new InvalidParameter('Please specify a valid domain id');
    }
    checkZoneFields(params);
    const state = allocationState(params.allocationstate) ?? 'Disabled';
    const zone = await createZone({
      name: params.name,
      networktype,
      allocationstate: state,
      dns1: params.dns1,
      dns2: params.dns2,
      internaldns1: params.internaldns1,
      internaldns2: params.internaldns2,
      // Basic zones have no guest CIDR; Advanced ones default to upstream's 10.1.1.0/24.
      guestcidraddress: networktype === 'Advanced' ? (params.guestcidraddress ?? DEFAULT_GUEST_CIDR) : undefined,
      domain: params.domain,
      domainId: domain?.id,
      domainTree: domain?.tree,
      securitygroupsenabled: Boolean(params.securitygroupenabled),
      localstorageenabled: Boolean(params.localstorageenabled),
      zonetoken: crypto.randomUUID(),
      dhcpprovider: networktype === 'Basic' ? 'DhcpServer' : 'VirtualRouter',
    }).catch((error) => {
      throw error instanceof NameInUse ? duplicateZone() : error;
    });
    const [rendered] = await renderZones([zone], caller);
    return {
      body: { zone: rendered },
      events: [completedEvent('ZONE.CREATE', 'creating Zone', { id: zone.id, type: 'Zone' }, `Zone Name: ${zone.name}`)],
    };
  },
});

const listZonesCommand = defineCommand({
  name: 'listZones',
  description: 'Lists zones',
  params: {
    id: param.uuid('the ID of the zone').optional(),
    ids: param.list(param.uuid('zone id'), 'the IDs of the zones, mutually exclusive with id').optional(),
    available: param
      .boolean('true if you want to retrieve all available Zones. False if you only want to return the Zones from which you have at least one VM. Default is false.')
      .optional(),
    domainid: param.uuid('the ID of the domain associated with the zone').optional(),
    name: param.string('the name of the zone').optional(),
    networktype: param.string('the network type of the zone that the virtual machine belongs to').optional(),
    showcapacities: param.boolean('flag to display the capacity of the zones').optional(),
    showicon: param.boolean('flag to display the resource image for the zones').optional(),
    ...listParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    if (params.id && params.ids) throw new InvalidParameter('Either provide id or ids, not both');
    const matches = (await listZones())
      .filter((zone) => zoneVisible(caller, zone))
      .filter((zone) => !params.id || zone.id === params.id.toLowerCase())
      .filter((zone) => !params.ids || params.ids.map((id) => id.toLowerCase()).includes(zone.id))
      .filter((zone) => !params.available || zone.allocationstate === 'Enabled')
      .filter((zone) => !params.domainid || zone.domainId === params.domainid.toLowerCase())
      .filter((zone) => params.name === undefined || zone.name.toLowerCase() === params.name.toLowerCase())
      .filter((zone) => params.networktype === undefined || zone.networktype.toLowerCase() === params.networktype.toLowerCase())
      .filter((zone) => matchesKeyword(params.keyword, zone.name, zone.description));
    const rendered = await renderZones(matches, caller);
    const byId = new Map(rendered.map((zone) => [zone.id, zone]));
    return { body: listResponse('zone', matches, params, settings, (zone) => byId.get(zone.id)!) };
  },
});

const updateZoneCommand = defineCommand({
  name: 'updateZone',
  description: 'Updates a Zone.',
  params: {
    id: param.uuid('the ID of the Zone'),
    name: param.string('the name of the Zone').optional(),
    dns1: param.string('the first DNS for the Zone').optional(),
    dns2: param.string('the second DNS for the Zone').optional(),
    internaldns1: param.string('the first internal DNS for the Zone').optional(),
    internaldns2: param.string('the second internal DNS for the Zone').optional(),
    guestcidraddress: param.string('the guest CIDR address for the Zone').optional(),
    domain: param.string('Network domain name for the networks in the zone; empty string will update domain with NULL value').optional(),
    allocationstate: param.string('Allocation state of this cluster for allocation of new resources').optional(),
    ispublic: param.boolean('updates a private zone to public if set, but not vice-versa').optional(),
    localstorageenabled: param.boolean('true if local storage offering enabled, false otherwise').optional(),
  },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    const zone = await zoneParam('updateZone', 'id', params.id);
    if (params.name !== undefined && params.name.toLowerCase() !== zone.name.toLowerCase()) await checkZoneNameFree(params.name, zone.id);
    checkZoneFields(params);
    if (params.guestcidraddress !== undefined && zone.networktype === 'Basic') {
      throw new InvalidParameter('Guest CIDR can not be set for a zone with the Basic network type');
    }
    const state = allocationState(params.allocationstate);
    const updated = await updateZone(zone, {
      ...(params.name !== undefined && { name: params.name }),
      ...(params.dns1 !== undefined && { dns1: params.dns1 }),
      ...(params.dns2 !== undefined && { dns2: params.dns2 }),
      ...(params.internaldns1 !== undefined && { internaldns1: params.internaldns1 }),
      ...(params.internaldns2 !== undefined && { internaldns2: params.internaldns2 }),
      ...(params.guestcidraddress !== undefined && { guestcidraddress: params.guestcidraddress }),
      ...(params.domain !== undefined && { domain: params.domain }),
      ...(state !== undefined && { allocationstate: state }),
      ...(params.ispublic && { domainId: undefined, domainTree: undefined }),
      ...(params.localstorageenabled !== undefined && { localstorageenabled: params.localstorageenabled }),
    }).catch((error) => {
      throw error instanceof NameInUse ? duplicateZone() : error;
    });
    const [rendered] = await renderZones([updated], caller);
    return {
      body: { zone: rendered },
      events: [completedEvent('ZONE.EDIT', 'editing Zone', { id: zone.id, type: 'Zone' }, `Zone Id: ${zone.id}`)],
    };
  },
});

const deleteZoneCommand = defineCommand({
  name: 'deleteZone',
  description: 'Deletes a Zone.',
  params: {
    id: param.uuid('the ID of the Zone'),
  },
  roles: ADMINS,
  handler: async ({ params }) => {
    const zone = await zoneParam('deleteZone', 'id', params.id);
    const refusal = () => 'The zone cannot be deleted because ';
    const contents = await zoneContents(zone);
    if (contents) throw inUse(refusal(), contents);
    await deleteZoneRecord(zone).catch(async (error) => {
      // A pod created since the check: name it now.
      throw error instanceof NotEmpty ? inUse(refusal(), await zoneContents(zone)) : error;
    });
    return {
      body: { success: true },
      events: [completedEvent('ZONE.DELETE', 'deleting Zone', { id: zone.id, type: 'Zone' }, `Zone Id: ${zone.id}`)],
    };
  },
});

export const zoneCommands = [createZoneCommand, listZonesCommand, updateZoneCommand, deleteZoneCommand];
