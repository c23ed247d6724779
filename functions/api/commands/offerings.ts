// Compute and disk offerings (upstream's CreateServiceOfferingCmd, ListServiceOfferingsCmd,
// UpdateServiceOfferingCmd, DeleteServiceOfferingCmd, CreateDiskOfferingCmd, ListDiskOfferingsCmd,
// UpdateDiskOfferingCmd and DeleteDiskOfferingCmd, with ConfigurationManagerImpl's and
// QueryManagerImpl's rules). Root admins manage every offering; domain admins only offerings
// scoped to domains in their own subtree; everyone lists the public offerings and those of their
// domain and the domains above it. Deleting makes an offering Inactive, as upstream does.
import { randomUUID } from 'node:crypto';
import { InternalError, InvalidParameter, PermissionDenied } from '../../../shared/cloudstack/errors.ts';
import { listParams, param, scopeParams } from '../../../shared/cloudstack/params.ts';
import { findAccountByName, getDomain, listDomainsUnder, type Account, type Domain } from '../../../shared/db/identity.ts';
import { getZone, type Zone } from '../../../shared/db/infrastructure.ts';
import { cloudstackDate } from '../../../shared/db/jobs.ts';
import {
  getDiskOffering,
  getServiceOffering,
  listDiskOfferings,
  listServiceOfferings,
  OfferingGone,
  putDiskOffering,
  putServiceOffering,
  replaceDiskOffering,
  replaceServiceOffering,
  usableInZone,
  visibleInDomain,
  type DiskOffering,
  type OfferingState,
  type ServiceOffering,
  type StorageType,
} from '../../../shared/db/offerings.ts';
import { settingDefinition, type SettingName, type Settings } from '../../../shared/settings.ts';
import { ALL_ROLES, type Caller, completedEvent, defineCommand, DOMAIN_ADMINS, type Recorded } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { checkDomainAccess, isRootAdmin } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';

const INT_MAX = 2147483647;

/** A setting another part of Mold may declare; its default until then. */
function numberSetting(settings: Settings, name: string, fallback: number): number {
  if (!settingDefinition(name)) return fallback;
  const value = Number(settings.raw(name as SettingName));
  return Number.isFinite(value) ? value : fallback;
}

function booleanSetting(settings: Settings, name: string, fallback: boolean): boolean {
  if (!settingDefinition(name)) return fallback;
  return settings.raw(name as SettingName).toLowerCase() === 'true';
}

/** storage.max.volume.size (GB). */
const maxVolumeSize = (settings: Settings) => numberSetting(settings, 'storage.max.volume.size', 2000);
/** allow.domain.admins.to.create.tagged.offerings */
const domainAdminsMayTag = (settings: Settings) => booleanSetting(settings, 'allow.domain.admins.to.create.tagged.offerings', false);

// ---- how upstream's messages name things (ReflectionToStringBuilderUtils of the VOs) ----

const describeUser = (caller: Caller) => `User {"id":"${caller.user.id}","username":"${caller.user.username}","uuid":"${caller.user.id}"}`;
const describeService = (o: ServiceOffering) => `Service offering {"id":"${o.id}","name":"${o.name}","uuid":"${o.id}"}.`;
const describeDisk = (o: DiskOffering) => `DiskOffering {"id":"${o.id}","name":"${o.name}","uuid":"${o.id}"}`;

const recorded = (type: string, action: string, details: string, id: string, resourceType: 'ServiceOffering' | 'DiskOffering'): Recorded =>
  completedEvent(type, action, { id, type: resourceType }, details);

// ---- domains and zones ----

async function domainsParam(api: string, ids: string[] | undefined): Promise<Domain[]> {
  const domains: Domain[] = [];
  for (const id of new Set((ids ?? []).map((v) => v.toLowerCase()))) {
    const domain = await getDomain(id);
    if (!domain) throw noSuchEntity(api, 'domainid', id);
    domains.push(domain);
  }
  return domains;
}

async function zonesParam(api: string, ids: string[] | undefined): Promise<Zone[]> {
  const zones: Zone[] = [];
  for (const id of new Set((ids ?? []).map((v) => v.toLowerCase()))) {
    const zone = await getZone(id);
    if (!zone) throw noSuchEntity(api, 'zoneid', id);
    zones.push(zone);
  }
  return zones;
}

/** DomainHelper.filterChildSubDomains: a domain below another listed one adds nothing. */
function filterChildSubDomains(domains: Domain[]): Domain[] {
  return domains.filter((domain) => !domains.some((other) => other.id !== domain.id && domain.tree.startsWith(other.tree)));
}

/** DomainDao.isChildDomain(parent, child): the child is the parent or below it. */
const isChildDomain = (parent: Domain, childTree: string) => childTree.startsWith(parent.tree);

/** updateServiceOffering/updateDiskOffering's `domainid`: a comma-separated string, "public" for none. */
async function updateDomainsParam(kind: string, value: string | undefined): Promise<Domain[] | undefined> {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (!trimmed.includes(',') && trimmed === 'public') return [];
  const domains: Domain[] = [];
  for (const part of trimmed.split(',').map((v) => v.trim())) {
    const domain = /^[0-9a-f-]{36}$/i.test(part) ? await getDomain(part.toLowerCase()) : undefined;
    if (!domain) throw new InvalidParameter(`Failed to create ${kind} because invalid domain has been specified.`);
    if (!domains.some((d) => d.id === domain.id)) domains.push(domain);
  }
  return domains;
}

/** updateServiceOffering/updateDiskOffering's `zoneid`: a comma-separated string, "all" for every zone. */
async function updateZonesParam(kind: string, value: string | undefined): Promise<Zone[] | undefined> {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (!trimmed.includes(',') && trimmed === 'all') return [];
  const zones: Zone[] = [];
  for (const part of trimmed.split(',').map((v) => v.trim())) {
    const zone = /^[0-9a-f-]{36}$/i.test(part) ? await getZone(part.toLowerCase()) : undefined;
    if (!zone) throw new InvalidParameter(`Failed to create ${kind} because invalid zone has been specified.`);
    if (!zones.some((z) => z.id === zone.id)) zones.push(zone);
  }
  return zones;
}

/** StringUtils.cleanupTags: trimmed, comma-separated, empty ones dropped. */
function cleanupTags(tags: string | undefined): string | undefined {
  if (tags === undefined) return undefined;
  const cleaned = tags
    .split(',')
    .map((tag) => tag.trim())
    .filter(Boolean)
    .join(',');
  return cleaned || undefined;
}

function storageTypeParam(value: string | undefined): StorageType {
  if (value === undefined || value.toLowerCase() === 'shared') return 'shared';
  if (value.toLowerCase() === 'local') return 'local';
  throw new InvalidParameter(`Invalid storage type ${value} specified, valid types are: 'local' and 'shared'`);
}

const PROVISIONING = ['thin', 'sparse', 'fat'] as const;
function provisioningParam(value: string | undefined): ServiceOffering['provisioningtype'] {
  if (value === undefined) return 'thin';
  const found = PROVISIONING.find((p) => p === value.toLowerCase());
  if (!found) throw new InvalidParameter(`Invalid provisioning type ${value} specified, valid types are: thin, sparse and fat`);
  return found;
}

const CACHE_MODES = ['none', 'writeback', 'writethrough', 'hypervisor_default'] as const;
function cacheModeParam(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!(CACHE_MODES as readonly string[]).includes(value.toLowerCase())) {
    throw new InvalidParameter(
      `Invalid cache mode (${value}). Please specify one of the following valid cache mode parameters: none, writeback, writethrough or hypervisor_default.`,
    );
  }
  return value.toLowerCase();
}

function stateParam(value: string | undefined): OfferingState | undefined {
  if (value === undefined) return undefined;
  const state = (['Active', 'Inactive'] as const).find((s) => s.toLowerCase() === value.toLowerCase());
  if (!state) throw new InvalidParameter(`Invalid state value: ${value}`);
  return state;
}

/** A list's `state`: Active by default, `all` for both. */
function listStateParam(value: string | undefined): OfferingState | 'all' {
  if (value === undefined) return 'Active';
  if (value.toLowerCase() === 'all') return 'all';
  return stateParam(value)!;
}

// ---- who may manage an offering ----

type Kind = 'service' | 'disk';
const KIND_TEXT: Record<Kind, string> = { service: 'service offering', disk: 'disk offering' };

/** Upstream's create checks for a domain admin (createServiceOffering / createDiskOffering). */
function checkCreator(caller: Caller, settings: Settings, kind: Kind, domains: Domain[], tagged: boolean): void {
  const user = describeUser(caller);
  if (caller.role.type === 'Admin') return;
  if (caller.role.type !== 'DomainAdmin') {
    throw new InvalidParameter(`Unable to create ${KIND_TEXT[kind]} by user: ${user} because it is not root-admin or domain-admin`);
  }
  if (domains.length === 0) {
    throw new InvalidParameter(`Unable to create public ${KIND_TEXT[kind]} by admin: ${user} because it is domain-admin`);
  }
  if (tagged && !domainAdminsMayTag(settings)) {
    throw new InvalidParameter(
      kind === 'service'
        ? `User [${user}] is unable to create service offerings with storage tags or host tags.`
        : `User [${user}] is unable to create disk offerings with storage tags.`,
    );
  }
  for (const domain of domains) {
    if (!isChildDomain(caller.domain, domain.tree)) {
      throw new InvalidParameter(`Unable to create ${KIND_TEXT[kind]} by another domain-admin: ${user} for domain: ${domain.id}`);
    }
  }
}

async function domainTrees(ids: string[]): Promise<Map<string, string>> {
  const trees = new Map<string, string>();
  for (const id of ids) {
    const domain = await getDomain(id);
    // A domain since deleted is outside every subtree.
    trees.set(id, domain?.tree ?? `/deleted/${id}/`);
  }
  return trees;
}

/** Upstream's delete checks for a domain admin. */
async function checkDeleter(caller: Caller, kind: Kind, offering: ServiceOffering | DiskOffering): Promise<void> {
  const user = describeUser(caller);
  const described = kind === 'service' ? describeService(offering as ServiceOffering) : describeDisk(offering as DiskOffering);
  if (caller.role.type === 'Admin') return;
  if (caller.role.type !== 'DomainAdmin') {
    throw new InvalidParameter(`Unable to delete ${KIND_TEXT[kind]}: ${described} by user: ${user} because it is not root-admin or domain-admin`);
  }
  if (offering.domainIds.length === 0) {
    throw new InvalidParameter(`Unable to delete public ${KIND_TEXT[kind]}: ${described} by admin: ${user} because it is domain-admin`);
  }
  for (const tree of (await domainTrees(offering.domainIds)).values()) {
    if (!isChildDomain(caller.domain, tree)) {
      throw new InvalidParameter(
        `Unable to delete ${KIND_TEXT[kind]}: ${described} as it has linked domain(s) which are not child domain for domain-admin: ${user}`,
      );
    }
  }
}

/**
 * Upstream's update checks for a domain admin: no zone changes, no public offerings, no tags
 * unless allowed, names only of offerings wholly in its subtree, new domains only in its subtree;
 * domains outside its subtree stay linked. Returns the domain ids to store.
 */
async function checkUpdater(
  caller: Caller,
  settings: Settings,
  kind: Kind,
  offering: ServiceOffering | DiskOffering,
  change: { domains?: Domain[]; zoneIds?: string[]; tagged: boolean; renames: boolean },
): Promise<string[]> {
  const user = describeUser(caller);
  const described = kind === 'service' ? describeService(offering as ServiceOffering) : describeDisk(offering as DiskOffering);
  const wanted = change.domains ? filterChildSubDomains(change.domains) : undefined;
  const wantedIds = wanted ? wanted.map((d) => d.id) : offering.domainIds;
  if (caller.role.type === 'Admin') return wantedIds;
  if (caller.role.type !== 'DomainAdmin') {
    throw new InvalidParameter(`Unable to update ${KIND_TEXT[kind]}: ${described} by id user: ${user} because it is not root-admin or domain-admin`);
  }
  const zones = change.zoneIds ?? offering.zoneIds;
  if ([...zones].sort().join(',') !== [...offering.zoneIds].sort().join(',')) {
    throw new InvalidParameter(`Unable to update zone(s) for ${KIND_TEXT[kind]}: ${described} by admin: ${user} as it is domain-admin`);
  }
  if (offering.domainIds.length === 0) {
    throw new InvalidParameter(`Unable to update public ${KIND_TEXT[kind]}: ${described} by user: ${user} because it is domain-admin`);
  }
  if (wantedIds.length === 0) {
    throw new InvalidParameter(`Unable to update ${KIND_TEXT[kind]}: ${described} to a public offering by user: ${user} because it is domain-admin`);
  }
  if (change.tagged && !domainAdminsMayTag(settings)) {
    throw new InvalidParameter(
      kind === 'service' ? `User [${user}] is unable to update storage tags or host tags.` : `User [${user}] is unable to update disk offering tags.`,
    );
  }
  const existing = await domainTrees(offering.domainIds);
  const outside: string[] = [];
  for (const [id, tree] of existing) {
    if (!isChildDomain(caller.domain, tree)) {
      if (change.renames) {
        throw new InvalidParameter(
          `Unable to update ${KIND_TEXT[kind]}: ${described} as it has linked domain(s) which are not child domain for domain-admin: ${user}`,
        );
      }
      outside.push(id);
    }
  }
  for (const domain of wanted ?? []) {
    if (!isChildDomain(caller.domain, domain.tree)) {
      throw new InvalidParameter(
        `Unable to update ${KIND_TEXT[kind]}: ${described} by domain-admin: ${user} with domain: ${domain.id} which is not a child domain`,
      );
    }
  }
  return [...new Set([...wantedIds, ...outside])];
}

// ---- rendering ----

class Names {
  private readonly domains = new Map<string, Promise<Domain | undefined>>();
  private readonly zones = new Map<string, Promise<Zone | undefined>>();
  private readonly disks = new Map<string, Promise<DiskOffering | undefined>>();

  domain(id: string) {
    if (!this.domains.has(id)) this.domains.set(id, getDomain(id));
    return this.domains.get(id)!;
  }
  zone(id: string) {
    if (!this.zones.has(id)) this.zones.set(id, getZone(id));
    return this.zones.get(id)!;
  }
  disk(id: string) {
    if (!this.disks.has(id)) this.disks.set(id, getDiskOffering(id));
    return this.disks.get(id)!;
  }

  /** domainid/domain and zoneid/zone as upstream's join views render them: comma-joined. */
  async scope(offering: { domainIds: string[]; zoneIds: string[] }): Promise<Record<string, string>> {
    const fields: Record<string, string> = {};
    if (offering.domainIds.length > 0) {
      const domains = await Promise.all(offering.domainIds.map((id) => this.domain(id)));
      fields.domainid = offering.domainIds.join(',');
      fields.domain = domains.map((d, i) => d?.name ?? offering.domainIds[i]).join(',');
    }
    if (offering.zoneIds.length > 0) {
      const zones = await Promise.all(offering.zoneIds.map((id) => this.zone(id)));
      fields.zoneid = offering.zoneIds.join(',');
      fields.zone = zones.map((z, i) => z?.name ?? offering.zoneIds[i]).join(',');
    }
    return fields;
  }
}

/** Upstream's ServiceOfferingResponse. */
async function renderService(offering: ServiceOffering, names = new Names()): Promise<Record<string, unknown>> {
  const disk = offering.diskOfferingId ? await names.disk(offering.diskOfferingId) : undefined;
  const scope = await names.scope(offering);
  return {
    id: offering.id,
    name: offering.name,
    displaytext: offering.displaytext,
    ...(offering.cpunumber !== undefined && { cpunumber: offering.cpunumber }),
    ...(offering.cpuspeed !== undefined && { cpuspeed: offering.cpuspeed }),
    ...(offering.memory !== undefined && { memory: offering.memory }),
    created: offering.created,
    storagetype: offering.storagetype,
    provisioningtype: offering.provisioningtype,
    offerha: offering.offerha,
    limitcpuuse: offering.limitcpuuse,
    isvolatile: offering.isvolatile,
    ...(offering.storagetags && { storagetags: offering.storagetags }),
    ...scope,
    ...(offering.hosttags && { hosttags: offering.hosttags }),
    issystem: false,
    defaultuse: false,
    ...(Object.keys(offering.details).length > 0 && { serviceofferingdetails: offering.details }),
    iscustomized: offering.cpunumber === undefined || offering.cpuspeed === undefined || offering.memory === undefined,
    cacheMode: offering.cacheMode ?? 'none',
    ...(offering.rootdisksize !== undefined && { rootdisksize: offering.rootdisksize }),
    dynamicscalingenabled: offering.dynamicscalingenabled,
    diskofferingstrictness: offering.diskofferingstrictness,
    ...(disk && { diskofferingid: disk.id, diskofferingname: disk.name, diskofferingdisplaytext: disk.displaytext }),
    encryptroot: offering.encryptroot,
    state: offering.state,
    purgeresources: offering.purgeresources,
    hasannotations: false,
  };
}

/** Upstream's DiskOfferingResponse. */
async function renderDisk(offering: DiskOffering, names = new Names()): Promise<Record<string, unknown>> {
  const scope = await names.scope(offering);
  return {
    id: offering.id,
    ...scope,
    name: offering.name,
    displaytext: offering.displaytext,
    disksize: offering.disksize,
    created: offering.created,
    iscustomized: offering.customized,
    ...(offering.tags && { tags: offering.tags }),
    storagetype: offering.storagetype,
    provisioningtype: offering.provisioningtype,
    cacheMode: offering.cacheMode ?? 'none',
    displayoffering: offering.displayoffering,
    disksizestrictness: offering.disksizestrictness,
    encrypt: offering.encrypt,
    state: offering.state,
    hasannotations: false,
  };
}

async function renderAll<T>(items: T[], render: (item: T, names: Names) => Promise<Record<string, unknown>>) {
  const names = new Names();
  const rendered = await Promise.all(items.map((item) => render(item, names)));
  return new Map(items.map((item, i) => [item, rendered[i]]));
}

const nowFields = () => {
  const now = new Date();
  return { created: cloudstackDate(now), createdAt: now.toISOString() };
};

// ---- listing scope ----

/**
 * Which offerings a caller may list (QueryManagerImpl): root admins all of them (or those of one
 * domain); others the public ones and those of their domain (or the one named) and the domains
 * above it; domain admins with isrecursive also those of the domains below.
 */
async function visibilityFilter(
  caller: Caller,
  api: string,
  kind: Kind,
  params: { account?: string; domainid?: string; isrecursive?: boolean },
): Promise<(offering: { domainIds: string[] }) => boolean> {
  let domain: Domain | undefined;
  if (params.domainid) {
    domain = await getDomain(params.domainid.toLowerCase());
    if (!domain) throw noSuchEntity(api, 'domainid', params.domainid);
    // With an account, finalizeOwner decides (below): upstream names the account in its refusal.
    if (params.account === undefined) checkDomainAccess(caller, domain);
  }
  // An account named (the UI's Add Instance wizard names the instance's owner): what that account may
  // use, as upstream's finalizeOwner then QueryManagerImpl do: a root admin account all of them, any
  // other the public ones and its domain's (and above; below with isrecursive). The domain alone
  // filters only without an account.
  if (params.account !== undefined) {
    const owner = await offeringOwner(caller, params.account, domain ?? caller.domain);
    if (owner.roleType === 'Admin') return () => true;
    if (params.isrecursive && owner.roleType === 'User') {
      throw new InvalidParameter(`Only ROOT admins and Domain admins can list ${KIND_TEXT[kind]}s with isrecursive=true`);
    }
    const below = params.isrecursive ? new Set((await listDomainsUnder(owner.domainTree)).map((d) => d.id)) : new Set<string>();
    return (offering) => visibleInDomain(offering, owner.domainTree) || offering.domainIds.some((id) => below.has(id));
  }
  if (isRootAdmin(caller)) {
    if (!domain) return () => true;
    const id = domain.id;
    return (offering) => offering.domainIds.includes(id);
  }
  if (params.isrecursive && caller.role.type === 'User') {
    throw new InvalidParameter(`Only ROOT admins and Domain admins can list ${KIND_TEXT[kind]}s with isrecursive=true`);
  }
  const base = domain ?? caller.domain;
  const below = params.isrecursive ? new Set((await listDomainsUnder(base.tree)).map((d) => d.id)) : new Set<string>();
  return (offering) => visibleInDomain(offering, base.tree) || offering.domainIds.some((id) => below.has(id));
}

/** Upstream's finalizeOwner: admins name any account of a domain they reach, anyone else only their own. */
async function offeringOwner(caller: Caller, name: string, domain: Domain): Promise<Account> {
  if (caller.role.type === 'User') {
    if (name !== caller.account.name || domain.id !== caller.domain.id) {
      throw new PermissionDenied(`Can't create/list resources for account ${name} in domain ${domain.id}, permission denied`);
    }
    return caller.account;
  }
  const owner = await findAccountByName(domain.id, name);
  if (!owner) throw new InvalidParameter(`Unable to find account ${name} in domain ${domain.id}`);
  checkDomainAccess(caller, domain);
  return owner;
}

// ---- service offerings ----

const createServiceOfferingCommand = defineCommand({
  name: 'createServiceOffering',
  description: 'Creates a service offering.',
  params: {
    name: param.string('the name of the service offering'),
    displaytext: param.text("The display text of the service offering, defaults to 'name'.").optional(),
    cpunumber: param.integer('the CPU number of the service offering').optional(),
    cpuspeed: param.integer('the CPU speed of the service offering in MHz.').optional(),
    memory: param.integer('the total memory of the service offering in MB').optional(),
    customized: param.boolean('Whether service offering size is custom or not').optional(),
    mincpunumber: param.integer('The minimum number of CPUs to be set with Custom Computer Offering').optional(),
    maxcpunumber: param.integer('The maximum number of CPUs to be set with Custom Computer Offering').optional(),
    minmemory: param.integer('The minimum memory size of the custom service offering in MB').optional(),
    maxmemory: param.integer('The maximum memory size of the custom service offering in MB').optional(),
    offerha: param.boolean('the HA for the service offering').optional(),
    limitcpuuse: param.boolean('restrict the CPU usage to committed service offering').optional(),
    isvolatile: param
      .boolean('true if the virtual machine needs to be volatile so that on every reboot of VM, original root disk is dettached then destroyed and a fresh root disk is created and attached to VM')
      .optional(),
    storagetype: param.string('the storage type of the service offering. Values are local and shared.').optional(),
    provisioningtype: param.string('provisioning type used to create volumes. Valid values are thin, sparse, fat.').optional(),
    tags: param.string('the tags for this service offering.').optional(),
    hosttags: param.string('the host tag for this service offering.').optional(),
    domainid: param.list(param.uuid('domain'), 'the ID of the containing domain(s), null for public offerings').optional(),
    zoneid: param.list(param.uuid('zone'), 'the ID of the containing zone(s), null for public offerings').optional(),
    issystem: param.boolean('is this a system vm offering').optional(),
    rootdisksize: param.long('the Root disk size in GB.').optional(),
    cachemode: param.string('the cache mode to use for this disk offering. none, writeback or writethrough').optional(),
    dynamicscalingenabled: param.boolean('true if virtual machine needs to be dynamically scalable of cpu or memory').optional(),
    diskofferingid: param.uuid('the ID of the disk offering to which service offering should be mapped').optional(),
    diskofferingstrictness: param
      .boolean('True/False to indicate the strictness of the disk offering association with the compute offering. When set to true, override of disk offering is not allowed when VM is deployed and change disk offering is not allowed for the ROOT disk after the VM is deployed')
      .optional(),
    encryptroot: param.boolean('VMs using this offering require root volume encryption').optional(),
    purgeresources: param
      .boolean('Whether to cleanup instance and its associated resource from database upon expunge of the instance')
      .optional(),
  },
  roles: DOMAIN_ADMINS,
  handler: async ({ params, caller, settings }) => {
    const api = 'createserviceoffering';
    const name = params.name;
    if (name.trim().length === 0) throw new InvalidParameter('Failed to create service offering: specify the name that has non-zero length');
    const displaytext = params.displaytext ?? name;
    const { cpunumber, cpuspeed, memory, mincpunumber: minCpu, maxcpunumber: maxCpu, minmemory: minMemory, maxmemory: maxMemory } = params;
    const failed = (what: string) => new InvalidParameter(`Failed to create service offering ${name}: ${what}`);
    const customized = params.customized ?? (cpunumber === undefined || memory === undefined);
    const details: Record<string, string> = {};
    const ranged = [minCpu, maxCpu, minMemory, maxMemory, cpuspeed];
    if (customized) {
      if (cpunumber !== undefined || memory !== undefined) {
        throw new InvalidParameter('For creating a custom compute offering cpu and memory all should be null');
      }
      if (ranged.some((v) => v === undefined)) {
        if (ranged.some((v) => v !== undefined)) {
          throw new InvalidParameter('For creating a custom compute offering min/max cpu and min/max memory/cpu speed should all be null or all specified');
        }
      } else {
        if (cpuspeed! < 0 || cpuspeed! > INT_MAX) throw failed(`specify the cpu speed value between 1 and ${INT_MAX}`);
        if (maxCpu! <= 0 || maxCpu! > INT_MAX || minCpu! <= 0 || minCpu! > INT_MAX) {
          throw failed(`specify the minimum or minimum cpu number value between 1 and ${INT_MAX}`);
        }
        if (minMemory! < 32 || minMemory! > INT_MAX || maxMemory! > INT_MAX) throw failed(`specify the memory value between 32 and ${INT_MAX} MB`);
        // Mold's own: a range must not be empty (upstream accepts min above max).
        if (minCpu! > maxCpu!) throw failed('the minimum cpu number must not exceed the maximum cpu number');
        if (minMemory! > maxMemory!) throw failed('the minimum memory must not exceed the maximum memory');
        Object.assign(details, {
          minmemory: String(minMemory),
          maxmemory: String(maxMemory),
          mincpunumber: String(minCpu),
          maxcpunumber: String(maxCpu),
        });
      }
    } else {
      const maxCores = numberSetting(settings, 'vm.serviceoffering.cpu.cores.max', 0) || INT_MAX;
      const maxRam = numberSetting(settings, 'vm.serviceoffering.ram.size.max', 0) || INT_MAX;
      if (cpunumber !== undefined && (cpunumber <= 0 || cpunumber > maxCores)) throw failed(`specify the cpu number value between 1 and ${maxCores}`);
      if (cpuspeed === undefined || cpuspeed < 0 || cpuspeed > INT_MAX) throw failed(`specify the cpu speed value between 0 and ${INT_MAX}`);
      if (memory !== undefined && (memory < 32 || memory > maxRam)) throw failed(`specify the memory value between 32 and ${maxRam} MB`);
    }
    const domains = filterChildSubDomains(await domainsParam(api, params.domainid));
    const zones = await zonesParam(api, params.zoneid);
    const cacheMode = cacheModeParam(params.cachemode);
    const offerha = params.offerha ?? false;
    const storagetype = storageTypeParam(params.storagetype);
    if (storagetype === 'local' && offerha) throw new InvalidParameter('HA offering with local storage is not supported. ');
    if (params.issystem) throw new InvalidParameter('Mold does not create system VM offerings: issystem must be false');
    if (params.diskofferingid) {
      const disk = await getDiskOffering(params.diskofferingid.toLowerCase());
      if (!disk) throw noSuchEntity(api, 'diskofferingid', params.diskofferingid);
      if (disk.state !== 'Active') throw new InvalidParameter('Please specify a valid disk offering.');
    }
    const hosttags = params.hosttags?.trim() || undefined;
    const storagetags = cleanupTags(params.tags);
    checkCreator(caller, settings, 'service', domains, Boolean(storagetags || hosttags));
    if (params.rootdisksize !== undefined) {
      if (params.rootdisksize <= 0) throw new InvalidParameter(`The Root disk size is of ${params.rootdisksize} GB but it must be greater than 0.`);
      const max = maxVolumeSize(settings);
      if (params.rootdisksize > max) throw new InvalidParameter(`The maximum size for a disk is ${max} GB.`);
    }
    const offering: ServiceOffering = {
      id: randomUUID(),
      name,
      displaytext,
      ...(cpunumber !== undefined && { cpunumber }),
      ...(cpuspeed !== undefined && { cpuspeed }),
      ...(memory !== undefined && { memory }),
      customized,
      details,
      offerha,
      limitcpuuse: params.limitcpuuse ?? false,
      isvolatile: params.isvolatile ?? false,
      dynamicscalingenabled: params.dynamicscalingenabled ?? true,
      ...(hosttags && { hosttags }),
      ...(storagetags && { storagetags }),
      ...(params.rootdisksize !== undefined && { rootdisksize: params.rootdisksize }),
      ...(params.diskofferingid && { diskOfferingId: params.diskofferingid.toLowerCase() }),
      ...(cacheMode && { cacheMode }),
      diskofferingstrictness: params.diskofferingstrictness ?? false,
      encryptroot: params.encryptroot ?? false,
      purgeresources: params.purgeresources ?? false,
      domainIds: domains.map((d) => d.id),
      zoneIds: zones.map((z) => z.id),
      storagetype,
      provisioningtype: provisioningParam(params.provisioningtype),
      sortkey: 0,
      state: 'Active',
      ...nowFields(),
    };
    await putServiceOffering(offering);
    return {
      body: { serviceoffering: await renderService(offering) },
      events: [recorded('SERVICE.OFFERING.CREATE', 'creating service offering', `Service offering ID: ${offering.id}`, offering.id, 'ServiceOffering')],
    };
  },
});

/** Whether a (possibly customized) offering can give `value` of a dimension (listServiceOfferings' cpunumber/memory/cpuspeed). */
function supports(fixed: number | undefined, min: string | undefined, max: string | undefined, value: number | undefined): boolean {
  if (value === undefined) return true;
  if (fixed !== undefined) return fixed === value;
  if (min !== undefined && max !== undefined) return Number(min) <= value && value <= Number(max);
  return true;
}

const listServiceOfferingsCommand = defineCommand({
  name: 'listServiceOfferings',
  description: 'Lists all available service offerings.',
  params: {
    id: param.uuid('ID of the service offering').optional(),
    name: param.string('name of the service offering').optional(),
    virtualmachineid: param
      .uuid('the ID of the virtual machine. Pass this in if you want to see the available service offering that a virtual machine can use')
      .optional(),
    issystem: param.boolean('is this a system vm offering').optional(),
    systemvmtype: param.string('the system VM type. Possible types are "consoleproxy", "secondarystoragevm" or "domainrouter".').optional(),
    zoneid: param.uuid('id of zone disk offering is associated with').optional(),
    cpunumber: param.integer('the CPU number that listed offerings must support').optional(),
    memory: param.integer('the RAM memory that listed offering must support').optional(),
    cpuspeed: param.integer('the CPU speed that listed offerings must support').optional(),
    encryptroot: param.boolean('listed offerings support root disk encryption').optional(),
    storagetype: param.string('the storage type of the service offering. Values are local and shared.').optional(),
    state: param.string("Filter by state of the service offering. Defaults to 'Active'. If set to 'all' shows both Active & Inactive offerings.").optional(),
    ...scopeParams,
    ...listParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    const api = 'listserviceofferings';
    if (params.issystem && !isRootAdmin(caller)) throw new InvalidParameter("Only ROOT admins can access system's offering");
    const state = listStateParam(params.state);
    const storagetype = params.storagetype === undefined ? undefined : storageTypeParam(params.storagetype);
    const visible = await visibilityFilter(caller, api, 'service', params);
    const id = params.id?.toLowerCase();
    const zoneId = params.zoneid?.toLowerCase();
    // Mold keeps no system VM offerings: a list of them is empty.
    const all = params.issystem || params.systemvmtype ? [] : await listServiceOfferings();
    const matches = all
      .filter((o) => state === 'all' || o.state === state)
      .filter((o) => id === undefined || o.id === id)
      .filter((o) => params.name === undefined || o.name.toLowerCase() === params.name.toLowerCase())
      .filter((o) => matchesKeyword(params.keyword, o.name, o.displaytext))
      .filter((o) => zoneId === undefined || usableInZone(o, zoneId))
      .filter((o) => storagetype === undefined || o.storagetype === storagetype)
      .filter((o) => params.encryptroot === undefined || o.encryptroot === params.encryptroot)
      .filter((o) => supports(o.cpunumber, o.details.mincpunumber, o.details.maxcpunumber, params.cpunumber))
      .filter((o) => supports(o.memory, o.details.minmemory, o.details.maxmemory, params.memory))
      .filter((o) => params.cpuspeed === undefined || o.cpuspeed === undefined || o.cpuspeed === params.cpuspeed)
      .filter(visible)
      .sort((a, b) => a.sortkey - b.sortkey || a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    const rendered = await renderAll(matches, renderService);
    return { body: listResponse('serviceoffering', matches, params, settings, (o) => rendered.get(o)!) };
  },
});

const updateServiceOfferingCommand = defineCommand({
  name: 'updateServiceOffering',
  description: 'Updates a service offering.',
  params: {
    id: param.uuid('the ID of the service offering to be updated'),
    name: param.string('the name of the service offering to be updated').optional(),
    displaytext: param.text('the display text of the service offering to be updated').optional(),
    sortkey: param.integer('sort key of the service offering, integer').optional(),
    domainid: param.string('the ID of the containing domain(s) as comma separated string, public for public offerings', 4096).optional(),
    zoneid: param.string('the ID of the containing zone(s) as comma separated string, all for all zones offerings', 4096).optional(),
    storagetags: param
      .string('comma-separated list of tags for the service offering, tags should match with existing storage pool tags', 4096)
      .optional(),
    hosttags: param.string('comma-separated list of tags for the service offering, tags should match with existing host tags', 4096).optional(),
    state: param.string('state of the service offering').optional(),
    purgeresources: param
      .boolean('Whether to cleanup VM and its associated resource upon expunge')
      .optional(),
  },
  roles: DOMAIN_ADMINS,
  handler: async ({ params, caller, settings }) => {
    const offering = await getServiceOffering(params.id.toLowerCase());
    if (!offering) throw noSuchEntity('updateserviceoffering', 'id', params.id);
    const state = stateParam(params.state);
    const domains = await updateDomainsParam('service offering', params.domainid);
    const zones = await updateZonesParam('service offering', params.zoneid);
    const hosttags = params.hosttags === undefined ? undefined : params.hosttags.trim();
    const storagetags = params.storagetags === undefined ? undefined : cleanupTags(params.storagetags) ?? '';
    const domainIds = await checkUpdater(caller, settings, 'service', offering, {
      domains,
      zoneIds: zones?.map((z) => z.id),
      tagged: Boolean(hosttags || storagetags),
      renames: params.name !== undefined || params.displaytext !== undefined || params.sortkey !== undefined,
    });
    const updated: ServiceOffering = {
      ...offering,
      ...(params.name !== undefined && { name: params.name }),
      ...(params.displaytext !== undefined && { displaytext: params.displaytext }),
      ...(params.sortkey !== undefined && { sortkey: params.sortkey }),
      ...(state && { state }),
      ...(params.purgeresources !== undefined && { purgeresources: params.purgeresources }),
      domainIds,
      zoneIds: zones ? zones.map((z) => z.id) : offering.zoneIds,
    };
    if (hosttags !== undefined) {
      if (hosttags) updated.hosttags = hosttags;
      else delete updated.hosttags;
    }
    if (storagetags !== undefined) {
      if (storagetags) updated.storagetags = storagetags;
      else delete updated.storagetags;
    }
    await replaceServiceOffering(updated).catch((error) => {
      throw error instanceof OfferingGone ? new InternalError('Failed to update service offering', 9999) : error;
    });
    return {
      body: { serviceoffering: await renderService(updated) },
      events: [recorded('SERVICE.OFFERING.EDIT', 'updating service offering', `Service offering ID:${offering.id}`, offering.id, 'ServiceOffering')],
    };
  },
});

const deleteServiceOfferingCommand = defineCommand({
  name: 'deleteServiceOffering',
  description: 'Deletes a service offering.',
  params: {
    id: param.uuid('the ID of the service offering'),
  },
  roles: DOMAIN_ADMINS,
  handler: async ({ params, caller }) => {
    const offering = await getServiceOffering(params.id.toLowerCase());
    if (!offering) throw noSuchEntity('deleteserviceoffering', 'id', params.id);
    await checkDeleter(caller, 'service', offering);
    await replaceServiceOffering({ ...offering, state: 'Inactive' }).catch((error) => {
      throw error instanceof OfferingGone ? new InternalError('Failed to delete service offering', 9999) : error;
    });
    return {
      body: { success: true },
      events: [recorded('SERVICE.OFFERING.DELETE', 'deleting service offering', `Service offering ID: ${offering.id}`, offering.id, 'ServiceOffering')],
    };
  },
});

// ---- disk offerings ----

const createDiskOfferingCommand = defineCommand({
  name: 'createDiskOffering',
  description: 'Creates a disk offering.',
  params: {
    name: param.string('name of the disk offering'),
    displaytext: param.text("An alternate display text of the disk offering, defaults to 'name'.", 4096).optional(),
    disksize: param.long('size of the disk offering in GB (1GB = 1,073,741,824 bytes)').optional(),
    customized: param.boolean('whether disk offering size is custom or not').optional(),
    tags: param.string('tags for the disk offering', 4096).optional(),
    storagetype: param.string('the storage type of the disk offering. Values are local and shared.').optional(),
    provisioningtype: param.string('provisioning type used to create volumes. Valid values are thin, sparse, fat.').optional(),
    domainid: param.list(param.uuid('domain'), 'the ID of the containing domain(s), null for public offerings').optional(),
    zoneid: param.list(param.uuid('zone'), 'the ID of the containing zone(s), null for public offerings').optional(),
    displayoffering: param.boolean('an optional field, whether to display the offering to the end user or not.').optional(),
    cachemode: param.string('the cache mode to use for this disk offering. none, writeback or writethrough').optional(),
    disksizestrictness: param
      .boolean('To allow or disallow the resize operation on the disks created from this disk offering, if the flag is true then resize is not allowed')
      .optional(),
    encrypt: param.boolean('Volumes using this offering should be encrypted').optional(),
  },
  roles: DOMAIN_ADMINS,
  handler: async ({ params, caller, settings }) => {
    const api = 'creatediskoffering';
    const domains = filterChildSubDomains(await domainsParam(api, params.domainid));
    const zones = await zonesParam(api, params.zoneid);
    let customized = params.customized ?? false;
    if (!customized && params.disksize === undefined) throw new InvalidParameter('Disksize is required for a non-customized disk offering');
    if (customized && params.disksize !== undefined) throw new InvalidParameter('Disksize is not allowed for a customized disk offering');
    const cacheMode = cacheModeParam(params.cachemode);
    const storagetype = storageTypeParam(params.storagetype);
    const max = maxVolumeSize(settings);
    if (params.disksize !== undefined && params.disksize <= 0) throw new InvalidParameter('Please specify a disk size of at least 1 GB.');
    if (params.disksize !== undefined && params.disksize > max) throw new InvalidParameter(`The maximum size for a disk is ${max} GB.`);
    const provisioningtype = provisioningParam(params.provisioningtype);
    if (!params.disksize) customized = true;
    const tags = cleanupTags(params.tags);
    checkCreator(caller, settings, 'disk', domains, Boolean(tags));
    const offering: DiskOffering = {
      id: randomUUID(),
      name: params.name,
      displaytext: params.displaytext ?? params.name,
      disksize: params.disksize ?? 0,
      customized,
      ...(tags && { tags }),
      ...(cacheMode && { cacheMode }),
      displayoffering: params.displayoffering ?? true,
      disksizestrictness: params.disksizestrictness ?? false,
      encrypt: params.encrypt ?? false,
      domainIds: domains.map((d) => d.id),
      zoneIds: zones.map((z) => z.id),
      storagetype,
      provisioningtype,
      sortkey: 0,
      state: 'Active',
      ...nowFields(),
    };
    await putDiskOffering(offering);
    return {
      body: { diskoffering: await renderDisk(offering) },
      events: [recorded('DISK.OFFERING.CREATE', 'creating disk offering', `Disk offering ID: ${offering.id}`, offering.id, 'DiskOffering')],
    };
  },
});

const listDiskOfferingsCommand = defineCommand({
  name: 'listDiskOfferings',
  description: 'Lists all available disk offerings.',
  params: {
    id: param.uuid('ID of the disk offering').optional(),
    name: param.string('name of the disk offering').optional(),
    zoneid: param.uuid('id of zone disk offering is associated with').optional(),
    volumeid: param.uuid('The ID of the volume, tags of the volume are used to filter the offerings').optional(),
    storageid: param.uuid('The ID of a storage pool, tags of the storage pool are used to filter the offerings').optional(),
    encrypt: param.boolean('listed offerings support disk encryption').optional(),
    state: param.string("Filter by state of the disk offering. Defaults to 'Active'. If set to 'all' shows both Active & Inactive offerings.").optional(),
    ...scopeParams,
    ...listParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    const api = 'listdiskofferings';
    const state = listStateParam(params.state);
    const visible = await visibilityFilter(caller, api, 'disk', params);
    const id = params.id?.toLowerCase();
    const zoneId = params.zoneid?.toLowerCase();
    const root = isRootAdmin(caller);
    const matches = (await listDiskOfferings())
      .filter((o) => state === 'all' || o.state === state)
      .filter((o) => id === undefined || o.id === id)
      .filter((o) => params.name === undefined || o.name.toLowerCase() === params.name.toLowerCase())
      .filter((o) => matchesKeyword(params.keyword, o.name, o.displaytext))
      .filter((o) => zoneId === undefined || usableInZone(o, zoneId))
      .filter((o) => params.encrypt === undefined || o.encrypt === params.encrypt)
      .filter((o) => root || o.displayoffering)
      .filter(visible)
      .sort((a, b) => a.sortkey - b.sortkey || a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    const rendered = await renderAll(matches, renderDisk);
    return { body: listResponse('diskoffering', matches, params, settings, (o) => rendered.get(o)!) };
  },
});

const updateDiskOfferingCommand = defineCommand({
  name: 'updateDiskOffering',
  description: 'Updates a disk offering.',
  params: {
    id: param.uuid('ID of the disk offering'),
    name: param.string('updates name of the disk offering with this value').optional(),
    displaytext: param.text('updates alternate display text of the disk offering with this value', 4096).optional(),
    sortkey: param.integer('sort key of the disk offering, integer').optional(),
    displayoffering: param.boolean('an optional field, whether to display the offering to the end user or not.').optional(),
    domainid: param.string('the ID of the containing domain(s) as comma separated string, public for public offerings', 4096).optional(),
    zoneid: param.string('the ID of the containing zone(s) as comma separated string, all for all zones offerings', 4096).optional(),
    tags: param.string('comma-separated list of tags for the disk offering, tags should match with existing storage pool tags', 4096).optional(),
    cachemode: param.string('the cache mode to use for this disk offering').optional(),
    state: param.string('state of the disk offering').optional(),
  },
  roles: DOMAIN_ADMINS,
  handler: async ({ params, caller, settings }) => {
    const offering = await getDiskOffering(params.id.toLowerCase());
    if (!offering) throw noSuchEntity('updatediskoffering', 'id', params.id);
    const state = stateParam(params.state);
    const domains = await updateDomainsParam('disk offering', params.domainid);
    const zones = await updateZonesParam('disk offering', params.zoneid);
    const tags = params.tags === undefined ? undefined : cleanupTags(params.tags) ?? '';
    const domainIds = await checkUpdater(caller, settings, 'disk', offering, {
      domains,
      zoneIds: zones?.map((z) => z.id),
      tagged: Boolean(tags),
      renames: params.name !== undefined || params.displaytext !== undefined || params.sortkey !== undefined || params.displayoffering !== undefined,
    });
    const cacheMode = cacheModeParam(params.cachemode);
    const updated: DiskOffering = {
      ...offering,
      ...(params.name !== undefined && { name: params.name }),
      ...(params.displaytext !== undefined && { displaytext: params.displaytext }),
      ...(params.sortkey !== undefined && { sortkey: params.sortkey }),
      ...(params.displayoffering !== undefined && { displayoffering: params.displayoffering }),
      ...(cacheMode && { cacheMode }),
      ...(state && { state }),
      domainIds,
      zoneIds: zones ? zones.map((z) => z.id) : offering.zoneIds,
    };
    if (tags !== undefined) {
      if (tags) updated.tags = tags;
      else delete updated.tags;
    }
    await replaceDiskOffering(updated).catch((error) => {
      throw error instanceof OfferingGone ? new InternalError('Failed to update disk offering', 9999) : error;
    });
    return {
      body: { diskoffering: await renderDisk(updated) },
      events: [recorded('DISK.OFFERING.EDIT', 'updating disk offering', `Disk offering ID: ${offering.id}`, offering.id, 'DiskOffering')],
    };
  },
});

const deleteDiskOfferingCommand = defineCommand({
  name: 'deleteDiskOffering',
  description: 'Updates a disk offering.',
  params: {
    id: param.uuid('ID of the disk offering'),
  },
  roles: DOMAIN_ADMINS,
  handler: async ({ params, caller }) => {
    const offering = await getDiskOffering(params.id.toLowerCase());
    if (!offering) throw noSuchEntity('deletediskoffering', 'id', params.id);
    await checkDeleter(caller, 'disk', offering);
    await replaceDiskOffering({ ...offering, state: 'Inactive' }).catch((error) => {
      throw error instanceof OfferingGone ? new InternalError('Failed to delete disk offering', 9999) : error;
    });
    return {
      body: { success: true },
      events: [recorded('DISK.OFFERING.DELETE', 'deleting disk offering', `Disk offering ID: ${offering.id}`, offering.id, 'DiskOffering')],
    };
  },
});

export const offeringCommands = [
  createServiceOfferingCommand,
  listServiceOfferingsCommand,
  updateServiceOfferingCommand,
  deleteServiceOfferingCommand,
  createDiskOfferingCommand,
  listDiskOfferingsCommand,
  updateDiskOfferingCommand,
  deleteDiskOfferingCommand,
];
