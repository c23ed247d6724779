// The life of a user VM (upstream's DeployVMCmd, StartVMCmd, StopVMCmd, RebootVMCmd, DestroyVMCmd,
// RecoverVMCmd, ExpungeVMCmd over UserVmManagerImpl). Every call checks its input here, before
// anything changes, and refuses as upstream does; the async ones then start their state machine
// (statemachines/vm-*.asl.json), whose steps (functions/tasks/vms.ts) place the VM, drive the host's
// agent and keep the records, capacity and counts in step.
//
// What a VM holds, and when:
//   - its owner's limits (user_vm, cpu, memory, volume, primary_storage): while it is neither
//     Destroyed, Expunging nor Error (deploy reserves, destroy and a failed deploy release, recover
//     reserves again), as the counters of shared/db/vms.ts count;
//   - its addresses: from deploy to expunge (a failed deploy gives them back at once:
//     `addressesReleased`);
//   - bytes on its root volume's pool: from its first placement to expunge (`poolReserved` on the
//     volume);
//   - its host's CPU and memory: while it is Starting, Running or Stopping with `hostId` set.
import { randomBytes, randomUUID } from 'node:crypto';
import { InvalidParameter, PermissionDenied, ResourceUnavailable } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { findAffinityGroupByName, getAffinityGroup, type AffinityGroup } from '../../../shared/db/affinity-groups.ts';
import { getHost } from '../../../shared/db/hosts.ts';
import { getAccount, getDomain, type Account, type Domain } from '../../../shared/db/identity.ts';
import { getZone, type Zone } from '../../../shared/db/infrastructure.ts';
import { allocateAddress, releaseAddress } from '../../../shared/db/ipam.ts';
import { faultPoint, InjectedFault } from '../../../shared/faults.ts';
import { BYTES_PER_GIB, releaseResources, reserveResources } from '../../../shared/db/limits.ts';
import { getNetwork, listNetworks, type Network } from '../../../shared/db/networks.ts';
import { getServiceOffering, visibleInDomain, usableInZone, type DiskOffering, type ServiceOffering } from '../../../shared/db/offerings.ts';
import { findKeyPairByName } from '../../../shared/db/ssh-keypairs.ts';
import { getTemplate, zoneCopy, type Template } from '../../../shared/db/templates.ts';
import {
  accountNumber,
  createVmRecords,
  getVm,
  getVmConsistent,
  instanceNameOf,
  nextNumber,
  transitionVm,
  updateVolumeRecord,
  getVolume,
  vmResources,
  volumeResources,
  VmRecordConflict,
  type VirtualMachine,
  type VmNic,
  type Volume,
} from '../../../shared/db/vms.ts';
import { cloudstackDate } from '../../../shared/db/jobs.ts';
import type { Settings } from '../../../shared/settings.ts';
import { startAsync } from '../async.ts';
import { ALL_ROLES, completedEvent, defineCommand, type Caller } from '../command.ts';
import { checkAccess, isDomainAdmin, isRootAdmin, resolveAccount, resolveDomain } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';
import { renderVmFor } from './vms-list.ts';
import { checkCustomSize, checkDiskOfferingAccess, checkDiskSizeParam, diskBytesOf, diskOfferingParam } from './volumes.ts';

const RESOURCE_TYPE = 'VirtualMachine';

// ---- names (UserVmManagerImpl.checkNameForRFCCompliance, generateHostName) ----

/** NetUtils.verifyDomainNameLabel(name, true): a hostname label of RFC 1123 that does not start with a digit. */
export const isValidHostname = (name: string) => /^[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(name);

export const HOSTNAME_RULE =
  "Invalid name. Vm name can contain ASCII letters 'a' through 'z', the digits '0' through '9', and the hyphen ('-'), must be between 1 and 63 characters long, and can't start or end with \"-\" and can't start with digit";

// ---- user data (UserVmManagerImpl.validateUserData) ----

/** Upstream's MAX_HTTP_GET_LENGTH and MAX_HTTP_POST_LENGTH, as the spec gives them (2 KB, 32 KB). */
export const USERDATA_GET_LIMIT = 2048;
export const USERDATA_POST_LIMIT = 32768;

/**
 * Checks user data as upstream does (URL-decoded when it holds '%', base64, length by HTTP method)
 * and returns it re-encoded with its padding. The parameter is named in each refusal.
 */
export function checkUserData(raw: string, httpMethod: string): string {
  let text = raw;
  if (text.includes('%')) {
    try {
      text = decodeURIComponent(text.replace(/\+/g, ' '));
    } catch {
      throw new InvalidParameter('Url decoding of userdata failed.');
    }
  }
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.replace(/=+$/, '').length % 4 === 1) {
    throw new InvalidParameter('User data is not base64 encoded (userdata)');
  }
  const post = httpMethod.toUpperCase() === 'POST';
  const limit = post ? USERDATA_POST_LIMIT : USERDATA_GET_LIMIT;
  if (compact.length >= limit) throw new InvalidParameter(`User data is too long for an http ${post ? 'POST' : 'GET'} request (userdata: ${compact.length} characters, at most ${limit - 1})`);
  const decoded = Buffer.from(compact, 'base64');
  if (decoded.length > limit) throw new InvalidParameter(`User data is too long for ${post ? 'POST' : 'GET'} request (userdata)`);
  if (decoded.length < 1) throw new InvalidParameter('User data is too short (userdata)');
  return decoded.toString('base64');
}

// ---- custom offerings (UserVmManagerImpl.validateCustomParameters) ----

const INT_MAX = 2147483647;
const intOf = (value: string | undefined, fallback: number) => {
  if (value === undefined || !/^-?\d+$/.test(value.trim())) return fallback;
  return Number(value.trim());
};

/** The VM's CPU count, speed and memory: the offering's, or the custom details within its bounds. */
export function computeResources(offering: ServiceOffering, details: Record<string, string>, settings: Settings): { cpuNumber: number; cpuSpeed: number; memoryMiB: number } {
  const maxCores = settings.number('vm.serviceoffering.cpu.cores.max') || INT_MAX;
  const maxRam = settings.number('vm.serviceoffering.ram.size.max') || INT_MAX;
  const notCustomizable = (what: string) => new InvalidParameter(`The ${what} of this offering id:${offering.id} is not customizable. This is predefined in the template.`);
  let cpuNumber = offering.cpunumber;
  if (cpuNumber === undefined) {
    const min = intOf(offering.details.mincpunumber, 1);
    const max = intOf(offering.details.maxcpunumber, INT_MAX);
    const value = intOf(details.cpuNumber, -1);
    if (value < min || value > max || value > maxCores) throw new InvalidParameter(`Invalid cpu cores value, specify a value between ${min} and ${Math.min(maxCores, max)}`);
    cpuNumber = value;
  } else if (details.cpuNumber !== undefined) {
    throw notCustomizable('cpu cores');
  }
  let cpuSpeed = offering.cpuspeed;
  if (cpuSpeed === undefined) {
    const value = intOf(details.cpuSpeed, -1);
    if (value <= 0) throw new InvalidParameter(`Invalid cpu speed value, specify a value between 1 and ${INT_MAX}`);
    cpuSpeed = value;
  } else if (details.cpuSpeed !== undefined) {
    throw notCustomizable('cpu speed');
  }
  let memoryMiB = offering.memory;
  if (memoryMiB === undefined) {
    const min = intOf(offering.details.minmemory, 32);
    const max = intOf(offering.details.maxmemory, INT_MAX);
    const value = intOf(details.memory, -1);
    if (value < min || value > max || value > maxRam) throw new InvalidParameter(`Invalid memory value, specify a value between ${min} and ${Math.min(maxRam, max)}`);
    memoryMiB = value;
  } else if (details.memory !== undefined) {
    throw notCustomizable('memory');
  }
  return { cpuNumber, cpuSpeed, memoryMiB };
}

// ---- who may do what ----

const allowUserExpungeRecover = async (caller: Caller, settings: Settings) =>
  (await settings.scoped({ accountId: caller.account.id })).boolean('allow.user.expunge.recover.vm');

/** The VM by id, visible to the caller: Destroyed VMs only to root admins (they are hidden from users). */
export async function vmParam(api: string, name: string, id: string, caller: Caller): Promise<VirtualMachine> {
  const vm = await getVm(id.toLowerCase());
  if (!vm) throw noSuchEntity(api, name, id);
  checkAccess(caller, vm, `VM ${vm.id}`);
  return vm;
}

/** A locally administered unicast MAC (02:…), as upstream's NetworkModel.getNextAvailableMacAddressInNetwork gives guests. */
export const randomMac = () => ['02', ...[...randomBytes(5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');

/** Whether the owner may put a NIC on the shared network (upstream's checkNetworkPermissions for the VM's owner). */
export function ownerMayUse(owner: Account, network: Network): boolean {
  if (network.acltype === 'Account') return network.accountId === owner.id;
  if (network.domainId === owner.domainId) return true;
  return Boolean(network.subdomainaccess) && owner.domainTree.startsWith(network.domainTree);
}

/** Every address of the VM back to its network (a failed deploy, an expunge); idempotent through `addressesReleased`. */
export async function releaseVmAddresses(vm: VirtualMachine): Promise<void> {
  if (vm.addressesReleased) return;
  for (const nic of vm.nics) if (nic.ip) await releaseAddress(nic.networkId, nic.ip);
}

/** The job's view of the caller: how results are rendered for it when the job ends. */
export const viewerOf = (caller: Caller) => ({ rootAdmin: isRootAdmin(caller), admin: isRootAdmin(caller) || isDomainAdmin(caller) });

// ---- deployVirtualMachine ----

interface Owner {
  account: Account;
  domain: Domain;
}

async function ownerOf(caller: Caller, params: { account?: string; domainid?: string }): Promise<Owner> {
  if (params.account === undefined && params.domainid === undefined) return { account: caller.account, domain: caller.domain };
  if (params.account === undefined) throw new InvalidParameter('Account and domainId are needed for resource creation (account)');
  const domain = params.domainid ? await resolveDomain(caller, params.domainid) : caller.domain;
  const account = await resolveAccount(caller, domain, params.account);
  return { account, domain };
}

function templateUsableBy(template: Template, owner: Account, caller: Caller): boolean {
  return template.ispublic || isRootAdmin(caller) || template.accountId === owner.id || template.sharedAccountIds.includes(owner.id);
}

/** The networks of the VM's NICs: those asked for, or the zone's first shared network the owner may use. */
/**
 * deployVirtualMachine's iptonetworklist (upstream's DeployVMCmd.getIpToNetworkMap): a network id per
 * entry, with an optional IPv4 address; not with networkids or ipaddress. Mold's NICs take no IPv6 or
 * chosen MAC: entries naming them are refused.
 */
function ipToNetworkList(params: { iptonetworklist?: Record<string, string>[]; networkids?: string[]; ipaddress?: string }): Array<{ networkid: string; ip?: string }> | undefined {
  if (!params.iptonetworklist || params.iptonetworklist.length === 0) return undefined;
  if ((params.networkids && params.networkids.length > 0) || params.ipaddress !== undefined) {
    throw new InvalidParameter("ipToNetworkMap can't be specified along with networkIds or ipAddress");
  }
  return params.iptonetworklist.map((raw) => {
    const entry = Object.fromEntries(Object.entries(raw).map(([key, value]) => [key.toLowerCase(), value]));
    for (const key of ['ipv6', 'mac']) {
      if (entry[key]) throw new InvalidParameter(`iptonetworklist ${key} is not supported: Mold's NICs get IPv4 addresses and MACs of its own (iptonetworklist)`);
    }
    if (!entry.networkid) throw new InvalidParameter('Unable to execute API command deployvirtualmachine due to missing parameter iptonetworklist[].networkid');
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(entry.networkid)) throw noSuchEntity('deployVirtualMachine', 'networkid', entry.networkid);
    if (entry.ip !== undefined && !/^\d{1,3}(\.\d{1,3}){3}$/.test(entry.ip)) throw new InvalidParameter(`Invalid format for the ip parameter: ${entry.ip} (iptonetworklist)`);
    return { networkid: entry.networkid, ...(entry.ip && { ip: entry.ip }) };
  });
}

async function networksOf(api: string, zone: Zone, owner: Account, ids: string[] | undefined): Promise<Network[]> {
  if (ids && ids.length > 0) {
    const networks: Network[] = [];
    for (const id of ids) {
      const network = await getNetwork(id.toLowerCase());
      if (!network || network.deleting) throw noSuchEntity(api, 'networkids', id);
      if (network.zoneId !== zone.id) throw new InvalidParameter(`Network id=${network.id} doesn't belong to zone ${zone.id} (networkids)`);
      if (!ownerMayUse(owner, network)) throw new PermissionDenied(`Unable to use network with id= ${network.id}, permission denied`);
      if (!networks.some((n) => n.id === network.id)) networks.push(network);
    }
    return networks;
  }
  const usable = (await listNetworks()).filter((n) => n.zoneId === zone.id && !n.deleting && ownerMayUse(owner, n));
  if (usable.length === 0) {
    throw new InvalidParameter(`No shared network in zone ${zone.name} (${zone.id}) can be used by account ${owner.name}: create one (createNetwork) or pass networkids`);
  }
  return [usable[0]];
}

export async function affinityGroupsOf(api: string, owner: Account, ids: string[] | undefined, names: string[] | undefined, caller: Caller): Promise<AffinityGroup[]> {
  if (ids?.length && names?.length) throw new InvalidParameter('affinitygroupids parameter is mutually exclusive with affinitygroupnames parameter');
  const groups: AffinityGroup[] = [];
  for (const id of ids ?? []) {
    const group = await getAffinityGroup(id.toLowerCase());
    if (!group) throw noSuchEntity(api, 'affinitygroupids', id);
    checkAccess(caller, group, `affinity group ${group.name}`);
    if (group.accountId !== owner.id) throw new PermissionDenied(`Affinity Group ${group.name} (${group.id}) does not belong to the VM's account (affinitygroupids)`);
    groups.push(group);
  }
  for (const name of names ?? []) {
    const group = await findAffinityGroupByName(owner.id, name);
    if (!group) throw new InvalidParameter(`Unable to find affinity group by name ${name} (affinitygroupnames)`);
    groups.push(group);
  }
  return groups.filter((group, index) => groups.findIndex((g) => g.id === group.id) === index);
}

/** A VM command's job: its state machine over the VM, with upstream's `<verb> Vm. Vm Id: <id>` event. */
function startVmJob(caller: Caller, api: string, stateMachine: string, vmId: string, event: { type: string; verb: string }, input: Record<string, unknown> = {}, withId = false) {
  return startAsync(caller, {
    cmd: api,
    stateMachine,
    input: { vmId, ...input, viewer: viewerOf(caller) },
    instanceType: RESOURCE_TYPE,
    instanceId: vmId,
    withId,
    event: { type: event.type, description: `${event.verb} Vm. Vm Id: ${vmId}`, resourceId: vmId, resourceType: RESOURCE_TYPE },
  });
}

const deployVirtualMachineCommand = defineCommand({
  name: 'deployVirtualMachine',
  description:
    'Creates and automatically starts a virtual machine based on a service offering, disk offering, and template. Mold: on a KVM host of the zone through its agent, with a NIC on a shared network (the zone\'s one the owner may use, unless networkids names them) and a config drive for cloud-init.',
  params: {
    serviceofferingid: param.uuid('the ID of the service offering for the virtual machine'),
    templateid: param.uuid('the ID of the template for the virtual machine. Mold: required unless isoid is given; an ISO\'s id here deploys from that ISO, as upstream.').optional(),
    isoid: param.uuid('Mold: the ID of a bootable ISO to deploy from instead of a template (the root disk is a blank disk of diskofferingid\'s size; the ISO is attached and booted first)').optional(),
    zoneid: param.uuid('availability zone for the virtual machine'),
    name: param.string('host name for the virtual machine', 63).optional(),
    displayname: param.string('an optional user generated name for the virtual machine').optional(),
    group: param.string('an optional group for the virtual machine').optional(),
    account: param.string('an optional account for the virtual machine. Must be used with domainId.').optional(),
    domainid: param.uuid('an optional domainId for the virtual machine. If the account parameter is used, domainId must also be used.').optional(),
    hostid: param.uuid('destination Host ID to deploy the VM to - parameter available for root admin only').optional(),
    keypair: param.string('name of the ssh key pair used to login to the virtual machine').optional(),
    keypairs: param.list(param.string('key pair name'), 'names of the ssh key pairs used to login to the virtual machine').optional(),
    userdata: param
      .text(
        'an optional binary data that can be sent to the virtual machine upon a successful deployment. This binary data must be base64 encoded before adding it to the request. Using HTTP GET (via querystring), you can send up to 2KB of data after base64 encoding. Using HTTP POST (via POST body), you can send up to 32KB of data after base64 encoding.',
        1048576,
      )
      .optional(),
    affinitygroupids: param.list(param.uuid('affinity group id'), 'comma separated list of affinity groups id that are going to be applied to the virtual machine. Mutually exclusive with affinitygroupnames parameter').optional(),
    affinitygroupnames: param.list(param.string('affinity group name'), 'comma separated list of affinity groups names that are going to be applied to the virtual machine.Mutually exclusive with affinitygroupids parameter').optional(),
    startvm: param.boolean('true if start vm after creating; defaulted to true if not specified').optional(),
    details: param.map('used to specify the custom parameters. \'extraconfig\' is not allowed to be passed in details').optional(),
    rootdisksize: param.long('Optional field to resize root disk on deploy. Value is in GB. Only applies to template-based deployments.').optional(),
    diskofferingid: param
      .uuid(
        'the ID of the disk offering for the virtual machine. If the template is of ISO format, the diskOfferingId is for the root disk volume. Otherwise this parameter is used to indicate the offering for the data disk volume. If the templateId parameter passed is from a Template object, the diskOfferingId refers to a DATA Disk Volume created. If the templateId parameter passed is from an ISO object, the diskOfferingId refers to a ROOT Disk Volume created.',
      )
      .optional(),
    size: param.long('the arbitrary size for the DATADISK volume. Mutually exclusive with diskOfferingId').optional(),
    networkids: param.list(param.uuid('network id'), 'list of network ids used by virtual machine. Can\'t be specified with ipToNetworkList parameter').optional(),
    ipaddress: param.string('the ip address for default vm\'s network').optional(),
    iptonetworklist: param
      .map(
        'ip to network mapping. Can\'t be specified with networkIds parameter. Example: iptonetworklist[0].ip=10.10.10.11&iptonetworklist[0].networkid=uuid - requests to use ip 10.10.10.11 in network id=uuid. Mold: no ipv6 or mac entries',
      )
      .optional(),
    // The UI's wizard always sends these four (BIOS, LEGACY, false, false): Mold's guests boot BIOS and use
    // no IO threads, so those values are taken and others refused, naming them. dynamicscalingenabled is
    // ANDed with enable.dynamic.scale.vm upstream, which is false in Mold: a VM is never scaled running.
    boottype: param.string('Guest VM Boot option either custom[UEFI] or default boot [BIOS]. Mold: BIOS only').optional(),
    bootmode: param.string('Boot Mode [Legacy] or [Secure] Applicable when Boot Type Selected is UEFI, otherwise Legacy only for BIOS. Mold: Legacy only').optional(),
    dynamicscalingenabled: param.boolean('true if virtual machine needs to be dynamically scalable. Mold: without effect, as upstream with enable.dynamic.scale.vm false').optional(),
    iothreadsenabled: param.boolean('IOThreads are dedicated event loop threads for supported disk devices to perform block I/O requests in order to improve scalability especially on an SMP host/guest with many LUNs. Mold: false only').optional(),
  },
  roles: ALL_ROLES,
  isasync: true,
  handler: async ({ params, caller, settings, httpMethod }) => {
    const api = 'deployVirtualMachine';
    if (params.boottype !== undefined && params.boottype.toUpperCase() !== 'BIOS') throw new InvalidParameter(`Boot type ${params.boottype} is not supported: Mold's guests boot BIOS (boottype)`);
    if (params.bootmode !== undefined && params.bootmode.toUpperCase() !== 'LEGACY') throw new InvalidParameter(`Boot mode ${params.bootmode} is not supported: Mold's guests boot BIOS in legacy mode (bootmode)`);
    if (params.iothreadsenabled) throw new InvalidParameter('IO threads are not supported by Mold (iothreadsenabled)');
    // The UI's Add Instance wizard names its networks so (networkid, and ip when one was typed).
    const ipToNetwork = ipToNetworkList(params);
    if (params.templateid === undefined && params.isoid === undefined) throw new InvalidParameter('Unable to execute API command deployvirtualmachine due to missing parameter templateid');
    if (params.templateid !== undefined && params.isoid !== undefined) throw new InvalidParameter('Specify either templateid or isoid, not both (isoid)');
    const imageParam = params.isoid !== undefined ? 'isoid' : 'templateid';
    const imageId = (params.isoid ?? params.templateid)!;
    const owner = await ownerOf(caller, params);
    if (owner.account.state === 'disabled' || owner.account.state === 'locked') {
      throw new PermissionDenied(`The owner of vm to deploy is disabled: Acct[${owner.account.id}-${owner.account.name}]`);
    }
    const zone = await getZone(params.zoneid.toLowerCase());
    if (!zone) throw noSuchEntity(api, 'zoneid', params.zoneid);
    if (zone.allocationstate === 'Disabled' && !isRootAdmin(caller)) {
      throw new PermissionDenied(`Cannot perform this operation, Zone is currently disabled: ${zone.id}`);
    }

    const offering = await getServiceOffering(params.serviceofferingid.toLowerCase());
    if (!offering) throw noSuchEntity(api, 'serviceofferingid', params.serviceofferingid);
    if (offering.state !== 'Active') throw new InvalidParameter(`Unable to find service offering: ${offering.id} (serviceofferingid): it is ${offering.state}`);
    if (!isRootAdmin(caller) && !visibleInDomain(offering, owner.domain.tree)) {
      throw new PermissionDenied(`Account ${owner.account.name} does not have access to service offering ${offering.id} (serviceofferingid)`);
    }
    if (!usableInZone(offering, zone.id)) throw new InvalidParameter(`Service offering ${offering.id} (serviceofferingid) is not available in zone ${zone.id}`);

    // The image: a template, or an ISO (by isoid, or by templateid as upstream takes it).
    const template = await getTemplate(imageId.toLowerCase());
    if (!template || (imageParam === 'isoid' && template.kind !== 'iso')) throw noSuchEntity(api, imageParam, imageId);
    const fromIso = template.kind === 'iso';
    const imageWord = fromIso ? 'ISO' : 'Template';
    if (!templateUsableBy(template, owner.account, caller)) {
      throw new PermissionDenied(`Acct[${owner.account.id}-${owner.account.name}] does not have permission to operate with resource Tmpl[${template.id}-${template.name}] (${imageParam})`);
    }
    if (template.templatetype === 'SYSTEM') throw new InvalidParameter(`Unable to use system template ${template.id} to deploy a user vm`);
    if (fromIso && !template.bootable) throw new InvalidParameter(`Installing from ISO requires an ISO that is bootable: ${template.id} (${imageParam})`);
    if (!(zone.id in template.zones) && !template.crossZones) throw new InvalidParameter(`The ${fromIso ? 'ISO' : 'template'} ${template.id} is not available for use (${imageParam})`);
    const copy = zoneCopy(template, zone.id);
    if (copy.downloadState !== 'DOWNLOADED' || !copy.poolId || !copy.installPath) {
      throw new InvalidParameter(`${imageWord} ${template.id} (${imageParam}) is not ready in zone ${zone.id}: it has not been completely downloaded (${copy.downloadState})`);
    }
    if (fromIso && params.diskofferingid === undefined) throw new InvalidParameter('Installing from ISO requires a disk offering to be specified for the root disk. (diskofferingid)');
    if (fromIso && params.rootdisksize !== undefined) throw new InvalidParameter('rootdisksize only applies to template-based deployments: an ISO deploy\'s root disk has the size of its disk offering (rootdisksize)');

    // The request parser lowercases map keys; upstream's detail names are camel case.
    const CANONICAL: Record<string, string> = { cpunumber: 'cpuNumber', cpuspeed: 'cpuSpeed', memory: 'memory', rootdisksize: 'rootdisksize' };
    const details: Record<string, string> = {};
    for (const entry of params.details ?? []) for (const [key, value] of Object.entries(entry)) details[CANONICAL[key.toLowerCase()] ?? key] = value;
    if ('extraconfig' in details) throw new InvalidParameter("'extraconfig' should not be included in details as key");
    const resources = computeResources(offering, details, settings);

    // Names: the hostname is given or VM-<uuid> (generateHostName); the display name defaults to it.
    const id = randomUUID();
    if (params.name !== undefined && !isValidHostname(params.name)) throw new InvalidParameter(`${HOSTNAME_RULE} (name)`);
    const hostname = params.name ?? `VM-${id}`;
    const displayName = params.displayname ?? hostname;

    const userData = params.userdata !== undefined ? checkUserData(params.userdata, httpMethod) : undefined;

    const keyNames = [...new Set([...(params.keypair !== undefined ? [params.keypair] : []), ...(params.keypairs ?? [])])];
    const publicKeys: Record<string, string> = {};
    for (const name of keyNames) {
      const pair = await findKeyPairByName(owner.account.id, name);
      if (!pair) throw new InvalidParameter(`Not all specified keyparis exist: account ${owner.account.name} has no key pair named ${name} (keypair)`);
      publicKeys[pair.name] = pair.publicKey;
    }

    const groups = await affinityGroupsOf(api, owner.account, params.affinitygroupids, params.affinitygroupnames, caller);

    if (params.hostid !== undefined) {
      if (!isRootAdmin(caller)) throw new PermissionDenied('Parameter hostid can only be specified by a Root Admin, permission denied');
      const host = await getHost(params.hostid.toLowerCase());
      if (!host) throw noSuchEntity(api, 'hostid', params.hostid);
      if (host.zoneId !== zone.id) throw new InvalidParameter(`Host ${host.name} (${host.id}) is not in zone ${zone.name} (hostid)`);
    }

    // The root disk: the offering's size, else rootdisksize (details or parameter), else the template's
    // (from an ISO: blank, of the disk offering's size, set below).
    const templateBytes = fromIso ? 0 : (copy.size ?? copy.physicalsize ?? 0);
    const askedGiB = params.rootdisksize ?? (details.rootdisksize !== undefined ? intOf(details.rootdisksize, -1) : undefined);
    let rootBytes = templateBytes;
    if (offering.rootdisksize) rootBytes = offering.rootdisksize * BYTES_PER_GIB;
    else if (askedGiB !== undefined) {
      if (askedGiB <= 0) throw new InvalidParameter('Root disk size should be a positive number. (rootdisksize)');
      if (askedGiB * BYTES_PER_GIB < templateBytes) {
        throw new InvalidParameter(`Unsupported: rootdisksize override (${askedGiB} GB) is smaller than template size ${(templateBytes / BYTES_PER_GIB).toFixed(2)} GB`);
      }
      rootBytes = askedGiB * BYTES_PER_GIB;
    }
    const maxVolumeGiB = settings.number('storage.max.volume.size');
    if (rootBytes > maxVolumeGiB * BYTES_PER_GIB) throw new InvalidParameter(`The maximum size allowed is ${maxVolumeGiB} GB (rootdisksize)`);
    if (rootBytes <= 0) rootBytes = BYTES_PER_GIB;

    // diskofferingid: the data disk of a template deploy (upstream: a DATADISK volume DATA-<vm number>
    // at device 1, created with the VM), the root disk of an ISO deploy.
    let dataDisk: { offering: DiskOffering; bytes: number } | undefined;
    let rootOffering: DiskOffering | undefined;
    if (params.diskofferingid !== undefined) {
      checkDiskSizeParam(params.size, 'size');
      const diskOffering = await diskOfferingParam(params.diskofferingid, 'diskofferingid');
      checkCustomSize(diskOffering, params.size, 'size');
      checkDiskOfferingAccess(diskOffering, caller, owner.account, owner.domain, zone.id);
      const bytes = diskBytesOf(diskOffering, params.size, settings, 'size');
      if (fromIso) {
        rootOffering = diskOffering;
        rootBytes = bytes;
      } else {
        dataDisk = { offering: diskOffering, bytes };
      }
    } else if (params.size !== undefined) {
      throw new InvalidParameter('A data disk size needs a disk offering: size is used with a customized diskofferingid (size)');
    }

    const networks = await networksOf(api, zone, owner.account, ipToNetwork ? ipToNetwork.map((entry) => entry.networkid) : params.networkids);
    if (params.ipaddress !== undefined && !/^\d{1,3}(\.\d{1,3}){3}$/.test(params.ipaddress)) {
      throw new InvalidParameter(`Invalid format for the ipaddress parameter: ${params.ipaddress}`);
    }
    /** The address asked for on a network: iptonetworklist's, else ipaddress for the default one. */
    const preferredOn = (network: Network, index: number) =>
      ipToNetwork ? ipToNetwork.find((entry) => entry.networkid.toLowerCase() === network.id)?.ip : index === 0 ? params.ipaddress : undefined;

    // Everything checked: reserve (limits, addresses), undoing what was taken if a later step fails.
    const amounts = { ...vmResources(resources), ...volumeResources({ sizeBytes: rootBytes }) };
    if (dataDisk) {
      amounts.volume = (amounts.volume ?? 0) + 1;
      amounts.primary_storage = (amounts.primary_storage ?? 0) + dataDisk.bytes;
    }
    await reserveResources(owner.account, amounts, { settings });
    const nics: VmNic[] = [];
    try {
      for (const [index, network] of networks.entries()) {
        const preferred = preferredOn(network, index);
        const allocated = await allocateAddress(network.id, { vmId: id, ...(preferred !== undefined && { preferred }) });
        nics.push({ id: randomUUID(), networkId: network.id, mac: randomMac(), ip: allocated.ipaddress, netmask: network.netmask, gateway: network.gateway, vlan: network.vlan, isDefault: index === 0 });
      }
      faultPoint('vm-deploy.addresses', hostname);
      const [vmNumber, ownerNumber] = await Promise.all([nextNumber('vm'), accountNumber(owner.account.id)]);
      const instanceName = instanceNameOf(ownerNumber, vmNumber, { flag: settings.boolean('vm.instancename.flag'), displayName: params.displayname });
      const startvm = params.startvm ?? true;
      const rootVolumeId = randomUUID();
      const created = cloudstackDate();
      const vm: VirtualMachine = {
        id,
        number: vmNumber,
        instanceName,
        name: hostname,
        displayName,
        ...(params.group !== undefined && { group: params.group }),
        state: startvm ? 'Starting' : 'Stopped',
        zoneId: zone.id,
        accountId: owner.account.id,
        domainId: owner.domain.id,
        domainTree: owner.domain.tree,
        userId: caller.user.id,
        serviceOfferingId: offering.id,
        // Upstream's vm_template_id is the ISO's for a VM deployed from one.
        templateId: template.id,
        ...(fromIso && { isoId: template.id }),
        ...resources,
        rootVolumeId,
        keypairs: Object.keys(publicKeys),
        // The keys as they were at deploy: deleting a pair later does not take it from the VM (upstream keeps them in its details).
        sshPublicKeys: publicKeys,
        ...(userData !== undefined && { userData }),
        affinityGroupIds: groups.map((g) => g.id),
        nics,
        details: Object.fromEntries(Object.entries(details).filter(([key]) => !['cpuNumber', 'cpuSpeed', 'memory'].includes(key) || offering.customized)),
        haEnable: offering.offerha,
        created,
        ...(startvm && params.hostid !== undefined && { requestedHostId: params.hostid.toLowerCase() }),
      };
      const volume: Volume = {
        id: rootVolumeId,
        name: `ROOT-${vmNumber}`,
        vmId: id,
        type: 'ROOT',
        zoneId: zone.id,
        poolId: '',
        path: '',
        sizeBytes: rootBytes,
        ...(fromIso ? { diskOfferingId: rootOffering!.id } : { templateId: template.id }),
        accountId: owner.account.id,
        domainId: owner.domain.id,
        domainTree: owner.domain.tree,
        state: 'Allocated',
        deviceId: 0,
        created,
      };
      const dataVolumes: Volume[] = dataDisk
        ? [
            {
              id: randomUUID(),
              name: `DATA-${vmNumber}`,
              vmId: id,
              type: 'DATADISK',
              zoneId: zone.id,
              poolId: '',
              path: '',
              sizeBytes: dataDisk.bytes,
              accountId: owner.account.id,
              domainId: owner.domain.id,
              domainTree: owner.domain.tree,
              state: 'Allocated',
              deviceId: 1,
              created,
              diskOfferingId: dataDisk.offering.id,
              // Created with the VM: given back with it when its deploy fails (releaseStart).
              createdWithVm: id,
            },
          ]
        : [];
      try {
        await createVmRecords(vm, volume, dataVolumes);
      } catch (error) {
        if (error instanceof VmRecordConflict) throw new InvalidParameter('An affinity group of the VM was deleted meanwhile (affinitygroupids); try again');
        throw error;
      }
    } catch (error) {
      if (error instanceof InjectedFault) throw error; // a crash gives nothing back: the sweeper does
      for (const nic of nics) await releaseAddress(nic.networkId, nic.ip);
      await releaseResources(owner.account, amounts);
      throw error;
    }
    return startVmJob(caller, api, 'vm-deploy', id, { type: 'VM.CREATE', verb: 'starting' }, { startVm: params.startvm ?? true }, true);
  },
});

// ---- start, stop, reboot ----

const startVirtualMachineCommand = defineCommand({
  name: 'startVirtualMachine',
  description: 'Starts a virtual machine. Mold: placed again (a root admin may name the host), preferring its last host, and rebuilt from its records by the host\'s agent.',
  params: {
    id: param.uuid('The ID of the virtual machine'),
    hostid: param.uuid('destination Host ID to deploy the VM to - parameter available for root admin only').optional(),
  },
  roles: ALL_ROLES,
  isasync: true,
  handler: async ({ params, caller }) => {
    const api = 'startVirtualMachine';
    const vm = await vmParam(api, 'id', params.id, caller);
    if (params.hostid !== undefined) {
      if (!isRootAdmin(caller)) throw new PermissionDenied('Parameter hostid can only be specified by a Root Admin, permission denied');
      const host = await getHost(params.hostid.toLowerCase());
      if (!host) throw noSuchEntity(api, 'hostid', params.hostid);
      if (host.zoneId !== vm.zoneId) throw new InvalidParameter(`Host ${host.name} (${host.id}) is not in the VM's zone ${vm.zoneId} (hostid)`);
    }
    if (vm.state === 'Running') throw new InvalidParameter(`The virtual machine ${vm.id} (${vm.displayName}) is already running`);
    if (vm.state !== 'Stopped') throw new InvalidParameter(`The virtual machine ${vm.id} (${vm.displayName}) cannot be started: it is ${vm.state}`);
    const claimed = await transitionVm(vm.id, ['Stopped'], 'Starting', { requestedHostId: params.hostid?.toLowerCase() });
    if (!claimed) throw new InvalidParameter(`The virtual machine ${vm.id} (${vm.displayName}) is no longer Stopped; try again`);
    return startVmJob(caller, api, 'vm-start', vm.id, { type: 'VM.START', verb: 'starting' });
  },
});

const stopVirtualMachineCommand = defineCommand({
  name: 'stopVirtualMachine',
  description: 'Stops a virtual machine. Mold: ACPI shutdown through the host\'s agent, destroyed after a minute if the guest does not stop; forced destroys it at once. Its host\'s capacity is released.',
  params: {
    id: param.uuid('The ID of the virtual machine'),
    forced: param.boolean('Force stop the VM (vm is marked as Stopped even when command fails to be send to the backend, otherwise a force poweroff is attempted). The caller knows the VM is stopped.').optional(),
  },
  roles: ALL_ROLES,
  isasync: true,
  handler: async ({ params, caller }) => {
    const api = 'stopVirtualMachine';
    const vm = await vmParam(api, 'id', params.id, caller);
    if (vm.state !== 'Running' && vm.state !== 'Stopped') {
      throw new InvalidParameter(`The virtual machine ${vm.id} (${vm.displayName}) cannot be stopped: it is ${vm.state}`);
    }
    return startVmJob(caller, api, 'vm-stop', vm.id, { type: 'VM.STOP', verb: 'stopping' }, { forced: params.forced ?? false });
  },
});

const rebootVirtualMachineCommand = defineCommand({
  name: 'rebootVirtualMachine',
  description: 'Reboots a virtual machine. Mold: in place, through the host\'s agent (not a stop and start: the VM\'s records are not applied again).',
  params: {
    id: param.uuid('The ID of the virtual machine'),
    // The UI's Reboot dialog draws its Force switch from this parameter and shows no buttons without it.
    forced: param.boolean('Force reboot the VM (VM is Stopped and then Started). Mold: false only; true is refused (stop and start the VM instead)').optional(),
  },
  roles: ALL_ROLES,
  isasync: true,
  handler: async ({ params, caller }) => {
    const api = 'rebootVirtualMachine';
    if (params.forced) throw new InvalidParameter('forced=true is not supported: Mold reboots a VM in place; stop and start it to apply its records again');
    const vm = await vmParam(api, 'id', params.id, caller);
    if (vm.state !== 'Running') throw new InvalidParameter(`The VM ${vm.id} (${vm.displayName}) is not running, unable to reboot it`);
    return startVmJob(caller, api, 'vm-reboot', vm.id, { type: 'VM.REBOOT', verb: 'rebooting' });
  },
});

// ---- destroy, recover, expunge ----

const destroyVirtualMachineCommand = defineCommand({
  name: 'destroyVirtualMachine',
  description: 'Destroy a virtual machine. Once destroyed, only the administrator can recover it. Mold: a running VM is stopped first; expunge=true removes it from its host and the records at once.',
  params: {
    id: param.uuid('The ID of the virtual machine'),
    expunge: param.boolean('If true is passed, the vm is expunged immediately. False by default.').optional(),
    volumeids: param.list(param.uuid('volume id'), 'Comma separated list of UUIDs for volumes that will be deleted').optional(),
  },
  roles: ALL_ROLES,
  isasync: true,
  handler: async ({ params, caller, settings }) => {
    const api = 'destroyVirtualMachine';
    const expunge = params.expunge ?? false;
    if (expunge && !isRootAdmin(caller) && !isDomainAdmin(caller) && !(await allowUserExpungeRecover(caller, settings))) {
      throw new PermissionDenied('Parameter expunge can be passed by Admin only. Or when the allow.user.expunge.recover.vm key is set.');
    }
    const vm = await vmParam(api, 'id', params.id, caller);
    if (vm.state === 'Destroyed' && !isRootAdmin(caller)) throw noSuchEntity(api, 'id', params.id);
    for (const volumeId of params.volumeids ?? []) {
      if (volumeId.toLowerCase() === vm.rootVolumeId) throw new InvalidParameter(`Please specify volume of type DATADISK; ROOT volume ${volumeId} is deleted with the VM (volumeids)`);
      throw noSuchEntity(api, 'volumeids', volumeId);
    }
    if (!['Running', 'Stopped', 'Error', 'Destroyed'].includes(vm.state)) {
      throw new InvalidParameter(`The virtual machine ${vm.id} (${vm.displayName}) cannot be destroyed: it is ${vm.state}`);
    }
    return startVmJob(caller, api, 'vm-destroy', vm.id, { type: 'VM.DESTROY', verb: 'destroying' }, { expunge });
  },
});

const recoverVirtualMachineCommand = defineCommand({
  name: 'recoverVirtualMachine',
  description: 'Recovers a virtual machine.',
  params: { id: param.uuid('The ID of the virtual machine') },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    const api = 'recoverVirtualMachine';
    if (!isRootAdmin(caller) && !(await allowUserExpungeRecover(caller, settings))) {
      throw new PermissionDenied('Recovering a vm can only be done by an Admin. Or when the allow.user.expunge.recover.vm key is set.');
    }
    const vm = await vmParam(api, 'id', params.id, caller);
    if (vm.state !== 'Destroyed') throw new InvalidParameter(`vm is not in the right state: ${vm.id}`);
    const volume = await getVolume(vm.rootVolumeId);
    const amounts = { ...vmResources(vm), ...(volume && volumeResources(volume)) };
    // Upstream checks the owner's limits again: a recovered VM counts as a new one would.
    await reserveResources(vm.accountId, amounts, { settings });
    const recovered = await transitionVm(vm.id, ['Destroyed'], 'Stopped', { destroyed: undefined });
    if (!recovered) {
      await releaseResources(vm.accountId, amounts);
      throw new InvalidParameter(`vm is not in the right state: ${vm.id}`);
    }
    if (volume) await updateVolumeRecord(volume.id, { state: volume.poolReserved ? 'Ready' : 'Allocated' });
    return {
      body: { virtualmachine: await renderVmFor(recovered, viewerOf(caller)) },
      events: [completedEvent('VM.RECOVER', 'Recovering VM', { id: vm.id, type: RESOURCE_TYPE }, `Vm Id: ${vm.id}`)],
    };
  },
});

const expungeVirtualMachineCommand = defineCommand({
  name: 'expungeVirtualMachine',
  description: 'Expunge a virtual machine. Once expunged, it cannot be recoverd. Mold: its domain, root disk and config drive leave its host; its addresses, storage and records go.',
  params: { id: param.uuid('The ID of the virtual machine') },
  roles: ALL_ROLES,
  isasync: true,
  handler: async ({ params, caller, settings }) => {
    const api = 'expungeVirtualMachine';
    if (!isRootAdmin(caller) && !isDomainAdmin(caller) && !(await allowUserExpungeRecover(caller, settings))) {
      throw new PermissionDenied('Expunging a vm can only be done by an Admin. Or when the allow.user.expunge.recover.vm key is set.');
    }
    const vm = await vmParam(api, 'id', params.id, caller);
    if (vm.state !== 'Destroyed' && vm.state !== 'Expunging' && vm.state !== 'Error') throw new InvalidParameter(`Please destroy vm with id ${vm.id} first`);
    return startVmJob(caller, api, 'vm-expunge', vm.id, { type: 'VM.EXPUNGE', verb: 'expunging' });
  },
});

export const vmCommands = [
  deployVirtualMachineCommand,
  startVirtualMachineCommand,
  stopVirtualMachineCommand,
  rebootVirtualMachineCommand,
  destroyVirtualMachineCommand,
  recoverVirtualMachineCommand,
  expungeVirtualMachineCommand,
];
