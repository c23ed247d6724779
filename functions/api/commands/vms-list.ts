// listVirtualMachines (upstream's ListVMsCmd / ListVMsCmdByAdmin and QueryManagerImpl.searchForUserVMs)
// and the UserVmResponse renderer the VM commands answer with.
//
// Listing reads one index prefix (an account, or a domain subtree) through the VM listing cache of
// shared/db/vms.ts, filters in memory, and renders one page: what the page's rows refer to (zones,
// templates, offerings, networks, hosts, accounts, users, domains, affinity groups) is read in
// batches, one BatchGetItem per 100 distinct records, never one read per VM.
//
// Views: the root admin gets upstream's Full view (instancename, hostid, hostname); everyone else the
// Restricted one. Users never see Destroyed or Expunging VMs; admins see them.
import { InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { listParams, param, scopeParams } from '../../../shared/cloudstack/params.ts';
import { listBody } from '../../../shared/cloudstack/render.ts';
import { getOsType } from '../../../shared/catalogue/os-types.ts';
import type { AffinityGroup } from '../../../shared/db/affinity-groups.ts';
import { affinityGroupKey } from '../../../shared/db/affinity-groups.ts';
import { hostKey, type Host } from '../../../shared/db/hosts.ts';
import { identityKey, type Account, type Domain, type User } from '../../../shared/db/identity.ts';
import { zoneKey, type Zone } from '../../../shared/db/infrastructure.ts';
import { getItems } from '../../../shared/db/items.ts';
import { networkKeys, type Network } from '../../../shared/db/networks.ts';
import { offeringKey, type ServiceOffering } from '../../../shared/db/offerings.ts';
import { templateKey, type Template } from '../../../shared/db/templates.ts';
import { usageOfItem, vmUsageKey } from '../../../shared/db/vm-stats.ts';
import { vmStatsFields, type VmUsage } from '../../../shared/vm-stats.ts';
import { itemOf, listVmRecordsWith, removedVmKey, VM_STATES, vmKey, type VirtualMachine } from '../../../shared/db/vms.ts';
import { ALL_ROLES, type Caller, defineCommand } from '../command.ts';
import { matchesKeyword, page } from '../paging.ts';
import { isDomainAdmin, isRootAdmin, ownedScope } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';

/** Upstream's ApiConstants.VMDetails. */
export const VM_DETAILS = ['all', 'group', 'nics', 'stats', 'secgrp', 'tmpl', 'servoff', 'diskoff', 'backoff', 'iso', 'volume', 'min', 'affgrp'] as const;
export type VmDetail = (typeof VM_DETAILS)[number];

/** Upstream's user.vm.denied.details and user.vm.readonly.details defaults. */
export const USER_DENIED_DETAILS = ['rootdisksize', 'cpuOvercommitRatio', 'memoryOvercommitRatio', 'Message.ReservedCapacityFreed.Flag'];
export const USER_READONLY_DETAILS = 'dataDiskController, rootDiskController';

/** What rendering a VM needs besides the VM: the records it refers to, and who asks. */
export interface VmRenderContext {
  /** Root admin: upstream's Full view (instancename, hostid, hostname). */
  fullView: boolean;
  /** The caller is an admin type (details are not filtered). */
  adminCaller: boolean;
  details: ReadonlySet<VmDetail>;
  /** Include the user data (listVirtualMachines userdata=true). */
  showUserData?: boolean;
  zones: Map<string, Pick<Zone, 'id' | 'name'>>;
  templates: Map<string, Pick<Template, 'id' | 'name' | 'displaytext' | 'passwordenabled' | 'ostypeid' | 'templatetype' | 'isdynamicallyscalable'>>;
  offerings: Map<string, Pick<ServiceOffering, 'id' | 'name'>>;
  networks: Map<string, Pick<Network, 'id' | 'name' | 'vlan'>>;
  hosts: Map<string, Pick<Host, 'id' | 'name'>>;
  accounts: Map<string, Pick<Account, 'id' | 'name'>>;
  users: Map<string, Pick<User, 'id' | 'username'>>;
  domains: Map<string, Pick<Domain, 'id' | 'name' | 'path'>>;
  affinityGroups: Map<string, Pick<AffinityGroup, 'id' | 'name' | 'description' | 'type'>>;
  /** Running VMs' usage figures (shared/vm-stats.ts), when the details include stats. */
  usage: Map<string, VmUsage>;
}

type Keyed = { pk: string; sk: string };

type ContextOptions = { caller?: Caller; fullView?: boolean; adminCaller?: boolean; details?: Iterable<VmDetail>; showUserData?: boolean };

/** The keys of what the VMs' rows refer to, each with the map of the context it goes in. */
function referencesOf(vms: readonly VirtualMachine[]): { key: Keyed; kind: keyof RecordMaps }[] {
  const refs = new Map<string, { key: Keyed; kind: keyof RecordMaps }>();
  const want = (kind: keyof RecordMaps, key: Keyed) => refs.has(key.pk) || refs.set(key.pk, { key, kind });
  for (const vm of vms) {
    want('zones', zoneKey(vm.zoneId));
    want('templates', templateKey(vm.templateId));
    want('offerings', offeringKey.service(vm.serviceOfferingId));
    want('accounts', identityKey.account(vm.accountId));
    want('domains', identityKey.domain(vm.domainId));
    if (vm.userId) want('users', identityKey.user(vm.userId));
    if (vm.hostId) want('hosts', hostKey(vm.hostId));
    for (const nic of vm.nics ?? []) want('networks', networkKeys.network(nic.networkId));
    for (const groupId of vm.affinityGroupIds ?? []) want('affinityGroups', affinityGroupKey(groupId));
  }
  return [...refs.values()];
}

/** The details that show a VM's usage figures (upstream's VMDetails.stats). */
const wantsStats = (details: ReadonlySet<string>) => details.has('all') || details.has('stats');

type RecordMaps = Pick<VmRenderContext, 'zones' | 'templates' | 'offerings' | 'networks' | 'hosts' | 'accounts' | 'users' | 'domains' | 'affinityGroups'>;

/** How to render the VMs: the keys to read, and the context made from what was read. */
export function vmRenderPlan(vms: readonly VirtualMachine[], options: ContextOptions = {}) {
  const refs = referencesOf(vms);
  const details = new Set(options.details ?? ['all']);
  // A running VM's figures; a stopped one has none to show (its domain's counters are gone).
  const measured = wantsStats(details) ? vms.filter((vm) => vm.state === 'Running').map((vm) => vm.id) : [];
  return {
    keys: [...refs.map((ref) => ref.key), ...measured.map(vmUsageKey)],
    context: (items: ReadonlyMap<string, Record<string, unknown>>): VmRenderContext => {
      const context: VmRenderContext = {
        fullView: options.fullView ?? (options.caller ? isRootAdmin(options.caller) : false),
        adminCaller: options.adminCaller ?? (options.caller ? isRootAdmin(options.caller) || isDomainAdmin(options.caller) : false),
        details,
        showUserData: options.showUserData,
        zones: new Map(),
        templates: new Map(),
        offerings: new Map(),
        networks: new Map(),
        hosts: new Map(),
        accounts: new Map(),
        users: new Map(),
        domains: new Map(),
        affinityGroups: new Map(),
        usage: new Map(),
      };
      for (const { key, kind } of refs) {
        const item = itemOf<{ id: string }>(items, key);
        if (item) (context[kind] as Map<string, unknown>).set(item.id, item);
      }
      for (const vmId of measured) {
        const usage = usageOfItem(itemOf(items, vmUsageKey(vmId)));
        if (usage) context.usage.set(vmId, usage);
      }
      return context;
    },
  };
}

/**
 * Everything the VMs' rows refer to, read in batches. `options` says who asks (the view) and which
 * details (default: all).
 */
export async function loadVmRenderContext(vms: readonly VirtualMachine[], options: ContextOptions = {}): Promise<VmRenderContext> {
  const plan = vmRenderPlan(vms, options);
  const items = new Map<string, Record<string, unknown>>();
  for (let i = 0; i < plan.keys.length; i += 100) {
    const chunk = plan.keys.slice(i, i + 100);
    const found = await getItems<(Record<string, unknown> | undefined)[]>(chunk as never);
    chunk.forEach((key, index) => found[index] && items.set(`${key.pk}\n${key.sk}`, found[index]!));
  }
  return plan.context(items);
}

const has = (context: VmRenderContext, detail: VmDetail) => context.details.has('all') || context.details.has(detail);

/** Upstream's UserVmResponse of one VM (UserVmJoinDaoImpl.newUserVmResponse), in its field order. */
export function renderVm(vm: VirtualMachine, context: VmRenderContext): Record<string, unknown> {
  const zone = context.zones.get(vm.zoneId);
  const template = context.templates.get(vm.templateId);
  const offering = context.offerings.get(vm.serviceOfferingId);
  const account = context.accounts.get(vm.accountId);
  const domain = context.domains.get(vm.domainId);
  const user = vm.userId ? context.users.get(vm.userId) : undefined;
  const host = vm.hostId ? context.hosts.get(vm.hostId) : undefined;
  const usage = has(context, 'stats') ? context.usage.get(vm.id) : undefined;
  const osTypeId = (vm.osTypeId as string | undefined) ?? template?.ostypeid;
  const osType = osTypeId ? getOsType(osTypeId) : undefined;
  const nics = has(context, 'nics')
    ? (vm.nics ?? []).map((nic, index) => {
        const network = context.networks.get(nic.networkId);
        const vlan = nic.vlan ?? network?.vlan;
        return {
          id: nic.id,
          networkid: nic.networkId,
          networkname: network?.name,
          netmask: nic.netmask,
          gateway: nic.gateway,
          ipaddress: nic.ip,
          ...(vlan !== undefined && { isolationuri: `vlan://${vlan}`, broadcasturi: `vlan://${vlan}` }),
          traffictype: 'Guest',
          type: 'Shared',
          isdefault: nic.isDefault,
          macaddress: nic.mac,
          deviceid: String(index),
          secondaryip: [],
          extradhcpoption: [],
        };
      })
    : undefined;
  let details: Record<string, string> | undefined = { ...(vm.details ?? {}) };
  if (!context.adminCaller) for (const key of USER_DENIED_DETAILS) delete details[key];
  if (Object.keys(details).length === 0) details = undefined;
  const groups = has(context, 'affgrp')
    ? (vm.affinityGroupIds ?? []).flatMap((id) => {
        const group = context.affinityGroups.get(id);
        return group ? [{ id: group.id, name: group.name, ...(group.description !== undefined && { description: group.description }), account: account?.name }] : [];
      })
    : undefined;
  return {
    id: vm.id,
    name: vm.name,
    displayname: vm.displayName,
    account: account?.name,
    userid: vm.userId,
    username: user?.username,
    domainid: vm.domainId,
    domain: domain?.name,
    domainpath: domain?.path,
    created: vm.created,
    ...(vm.lastUpdated !== undefined && { lastupdated: vm.lastUpdated }),
    state: vm.state,
    haenable: vm.haEnable,
    ...(has(context, 'group') && vm.group !== undefined && { group: vm.group }),
    zoneid: vm.zoneId,
    zonename: zone?.name,
    ...(context.fullView && vm.hostId && { hostid: vm.hostId, hostname: host?.name }),
    ...(has(context, 'tmpl') && {
      templateid: vm.templateId,
      templatename: template?.name,
      templatetype: template?.templatetype,
      templatedisplaytext: template?.displaytext,
      passwordenabled: template?.passwordenabled ?? false,
    }),
    ...(has(context, 'iso') && typeof vm.isoId === 'string' && { isoid: vm.isoId, isoname: template?.name, isodisplaytext: template?.displaytext }),
    ...(has(context, 'servoff') && { serviceofferingid: vm.serviceOfferingId, serviceofferingname: offering?.name }),
    ...((has(context, 'servoff') || has(context, 'stats')) && { cpunumber: vm.cpuNumber, cpuspeed: vm.cpuSpeed, memory: vm.memoryMiB }),
    ...(usage && vmStatsFields(usage)),
    ...(osTypeId && { guestosid: osTypeId }),
    ...(has(context, 'volume') && { rootdeviceid: 0, rootdevicetype: 'ROOT' }),
    ...(has(context, 'secgrp') && { securitygroup: [] }),
    ...(nics && { nic: nics }),
    hypervisor: 'KVM',
    ...(context.fullView && { instancename: vm.instanceName }),
    ...(vm.keypairs?.length > 0 && { keypairs: vm.keypairs.join(',') }),
    ...(details && { details }),
    ...(!context.adminCaller && { readonlydetails: USER_READONLY_DETAILS }),
    ...(context.showUserData && vm.userData !== undefined && { userdata: vm.userData }),
    ...(osTypeId && { ostypeid: osTypeId, osdisplayname: osType?.description }),
    ...(groups && { affinitygroup: groups }),
    displayvm: true,
    isdynamicallyscalable: typeof vm.isDynamicallyScalable === 'boolean' ? vm.isDynamicallyScalable : Boolean(template?.isdynamicallyscalable),
    tags: [],
  };
}

/** Who a rendering is for: the root admin gets the Full view; admins see every detail. */
export interface VmViewer {
  rootAdmin: boolean;
  admin: boolean;
}

/** One VM rendered for a viewer with every detail (the VM commands' job results). */
export async function renderVmFor(vm: VirtualMachine, viewer: VmViewer): Promise<Record<string, unknown>> {
  const context = await loadVmRenderContext([vm], { fullView: viewer.rootAdmin, adminCaller: viewer.admin });
  return renderVm(vm, context);
}

/** VMs rendered for a caller with every detail. */
export async function renderVmsFor(caller: Caller, vms: readonly VirtualMachine[]): Promise<Record<string, unknown>[]> {
  const context = await loadVmRenderContext(vms, { caller });
  return vms.map((vm) => renderVm(vm, context));
}

/** Upstream's VMDetails parsing (ListVMsCmd.getDetails), with its refusal. */
export function parseVmDetails(values: readonly string[] | undefined): Set<VmDetail> {
  if (!values || values.length === 0) return new Set(['all']);
  const details = new Set<VmDetail>();
  for (const value of values) {
    const found = VM_DETAILS.find((d) => d === value);
    if (!found) throw new InvalidParameter(`The details parameter contains a non permitted value. The allowed values are [${VM_DETAILS.join(', ')}]`);
    details.add(found);
  }
  return details;
}

const API = 'listVirtualMachines';

const listVirtualMachinesCommand = defineCommand({
  name: API,
  description: 'List the virtual machines owned by the account.',
  params: {
    id: param.uuid('the ID of the virtual machine').optional(),
    ids: param.list(param.uuid('id'), 'the IDs of the virtual machines, mutually exclusive with id').optional(),
    name: param.string('name of the virtual machine (a substring match is made against the parameter value, data for all matching VMs will be returned)').optional(),
    state: param.string('state of the virtual machine. Possible values are: Running, Stopped, Present, Destroyed, Expunged. Present is used for the state equal not destroyed.').optional(),
    zoneid: param.uuid('the availability zone ID').optional(),
    hostid: param.uuid('the host ID').optional(),
    podid: param.uuid('the pod ID').optional(),
    clusterid: param.uuid('the cluster ID').optional(),
    templateid: param.uuid('list vms by template').optional(),
    serviceofferingid: param.uuid('list by the service offering').optional(),
    networkid: param.uuid('list by network id').optional(),
    affinitygroupid: param.uuid('list vms by affinity group').optional(),
    keypair: param.string('list vms by ssh keypair name').optional(),
    userid: param.uuid('the user ID that created the VM and is under the account that owns the VM').optional(),
    haenable: param.boolean('list by the High Availability offering; true if filtering VMs with HA enabled; false for VMs with HA disabled').optional(),
    hypervisor: param.string('the target hypervisor for the template').optional(),
    details: param
      .list(
        param.string('detail'),
        'comma separated list of vm details requested, value can be a list of [all, group, nics, stats, secgrp, tmpl, servoff, diskoff, backoff, iso, volume, min, affgrp]. When no parameters are passed, all the details are returned if list.vm.default.details.stats is true (default), otherwise when list.vm.default.details.stats is false the API response will exclude the stats details.',
      )
      .optional(),
    userdata: param.boolean("Whether to return the VMs' user data or not. By default, user data will not be returned.").optional(),
    ...listParams,
    ...scopeParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    const details = parseVmDetails(params.details);
    const rootAdmin = isRootAdmin(caller);
    const admin = rootAdmin || isDomainAdmin(caller);
    if (params.id && params.ids) throw new InvalidParameter('Either id or ids parameter can be passed, not both');
    // Parameters of the admin command only (ListVMsCmdByAdmin); others do not have them.
    const hostid = rootAdmin ? params.hostid : undefined;
    const podid = rootAdmin ? params.podid : undefined;
    const clusterid = rootAdmin ? params.clusterid : undefined;
    await refuseUnknownEntities({ ...params, hostid, podid, clusterid });
    // An admin asking for one id sees it wherever it may (upstream's buildACLSearchParameters).
    const scope = await ownedScope(caller, { ...params, listall: params.listall || (admin && params.id !== undefined && !params.account && !params.domainid) });
    const ids = params.id ? new Set([params.id.toLowerCase()]) : params.ids ? new Set(params.ids.map((id: string) => id.toLowerCase())) : undefined;
    const state = params.state?.toLowerCase();
    const hidden = (vm: VirtualMachine) => !admin && (vm.state === 'Destroyed' || vm.state === 'Expunging');
    const matches = (vm: VirtualMachine) =>
        !hidden(vm) &&
        (!ids || ids.has(vm.id)) &&
        (state === undefined || (state === 'present' ? vm.state !== 'Destroyed' && vm.state !== 'Expunging' : vm.state.toLowerCase() === state)) &&
        (!params.name || vm.name.toLowerCase().includes(params.name.toLowerCase())) &&
        (!podid || vm.podId === podid.toLowerCase()) &&
        (!clusterid || vm.clusterId === clusterid.toLowerCase()) &&
        (!params.templateid || vm.templateId === params.templateid.toLowerCase()) &&
        (!params.serviceofferingid || vm.serviceOfferingId === params.serviceofferingid.toLowerCase()) &&
        (!params.networkid || (vm.nics ?? []).some((nic) => nic.networkId === params.networkid!.toLowerCase())) &&
        (!params.affinitygroupid || (vm.affinityGroupIds ?? []).includes(params.affinitygroupid.toLowerCase())) &&
        (!params.keypair || (vm.keypairs ?? []).some((name) => name.toLowerCase() === params.keypair!.toLowerCase())) &&
        (!params.userid || vm.userId === params.userid.toLowerCase()) &&
        (params.haenable === undefined || vm.haEnable === params.haenable) &&
        (!params.hypervisor || params.hypervisor.toLowerCase() === 'kvm') &&
        (!params.keyword ||
          matchesKeyword(params.keyword, vm.displayName, vm.name, rootAdmin ? vm.instanceName : undefined, ...(vm.nics ?? []).map((nic) => nic.ip)) ||
          vm.state.toLowerCase() === params.keyword.toLowerCase());
    // One page rendered with what its rows refer to, read with the listing's version check.
    const body = await listVmRecordsWith(
      { domainTree: scope.tree, recursive: scope.recursive, accountId: scope.accountId, hostId: hostid, zoneId: params.zoneid?.toLowerCase() },
      (listed) => {
        const vms = listed.filter(matches);
        const rows = page(vms, params, settings);
        const plan = vmRenderPlan(rows, { fullView: rootAdmin, adminCaller: admin, details, showUserData: params.userdata });
        return {
          keys: plan.keys,
          finish: (items) => {
            const context = plan.context(items);
            return listBody('virtualmachine', rows.map((vm) => renderVm(vm, context)), vms.length);
          },
        };
      },
    );
    return { body };
  },
});

/** Upstream's ParamProcessWorker refuses an id that names nothing; one batch read checks them all. */
async function refuseUnknownEntities(params: Record<string, any>): Promise<void> {
  const checks: { name: string; value: string; key: Keyed }[] = [];
  const add = (name: string, value: string | undefined, key: (id: string) => Keyed) => value && checks.push({ name, value, key: key(value.toLowerCase()) });
  add('id', params.id, vmKey);
  for (const id of params.ids ?? []) add('ids', id, vmKey);
  add('zoneid', params.zoneid, zoneKey);
  add('hostid', params.hostid, hostKey);
  add('podid', params.podid, (id) => ({ pk: `POD#${id}`, sk: 'POD' }));
  add('clusterid', params.clusterid, (id) => ({ pk: `CLUSTER#${id}`, sk: 'CLUSTER' }));
  add('templateid', params.templateid, templateKey);
  add('serviceofferingid', params.serviceofferingid, offeringKey.service);
  add('networkid', params.networkid, networkKeys.network);
  add('affinitygroupid', params.affinitygroupid, affinityGroupKey);
  add('userid', params.userid, identityKey.user);
  if (checks.length === 0) return;
  const found = await getItems<(Record<string, unknown> | undefined)[]>(checks.slice(0, 100).map((c) => c.key) as never);
  const missing = checks.slice(0, 100).filter((_, index) => !found[index]);
  // An expunged VM's id still names a VM (upstream keeps its row): listed, it answers nothing.
  const vmIds = missing.filter((check) => check.name === 'id' || check.name === 'ids');
  const removed = vmIds.length > 0 ? await getItems<(Record<string, unknown> | undefined)[]>(vmIds.map((c) => removedVmKey(c.value.toLowerCase())) as never) : [];
  for (const check of missing) {
    const index = vmIds.indexOf(check);
    if (index < 0 || !removed[index]) throw noSuchEntity(API, check.name, check.value);
  }
}

export const vmListCommands = [listVirtualMachinesCommand];

// Exported for tests of the states a filter accepts.
export const LISTABLE_STATES = [...VM_STATES, 'Present'] as const;
