// Templates and ISOs (upstream's RegisterTemplateCmd, ListTemplatesCmd, UpdateTemplateCmd,
// UpdateTemplatePermissionsCmd, DeleteTemplateCmd, RegisterIsoCmd, ListIsosCmd). Registering
// writes the record with its copies "not downloaded" and starts, per zone with an Up host of an
// agent reaching a SharedMountPoint pool, a job in which that agent downloads the template into the
// pool (agent-command's downloadTemplate, which drives the copy state in shared/db/templates.ts). Listing follows QueryManagerImpl.searchForTemplatesInternal: one
// row per (template, zone), filtered by templatefilter/isofilter, ready-only where upstream is.
import { InternalError, InvalidParameter, PermissionDenied } from '../../../shared/cloudstack/errors.ts';
import { listParams, param, scopeParams } from '../../../shared/cloudstack/params.ts';
import { getOsCategory, getOsType, NONE_OS_TYPE } from '../../../shared/catalogue/os-types.ts';
import { getZone, listZones, type Zone } from '../../../shared/db/infrastructure.ts';
import { findAccountByName, getAccount, getDomain, identityKey, type Account, type Domain } from '../../../shared/db/identity.ts';
import { getItems } from '../../../shared/db/items.ts';
import { startTemplateDownloads } from '../../../shared/template-downloads.ts';
import {
  createTemplate,
  getTemplate,
  listTemplateRecords,
  templateZoneIds,
  updateTemplateFields,
  zoneCopy,
  type Template,
  type ZoneCopy,
} from '../../../shared/db/templates.ts';
import { settingDefinition, type SettingName, type Settings } from '../../../shared/settings.ts';
import { actorOf } from '../actor.ts';
import { startAsync } from '../async.ts';
import { ALL_ROLES, type Caller, completedEvent, defineCommand, type Recorded } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { canAccess, canAccessDomain, checkAccess, isDomainAdmin, isRootAdmin, resolveAccount, resolveDomain } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const FILTERS = ['featured', 'self', 'selfexecutable', 'sharedexecutable', 'executable', 'community', 'all'] as const;
type Filter = (typeof FILTERS)[number];
const TEMPLATE_FORMATS = ['QCOW2', 'RAW'] as const;
const CHECKSUM_LENGTHS: Record<string, number> = { MD5: 32, 'SHA-1': 40, 'SHA-224': 56, 'SHA-256': 64, 'SHA-384': 96, 'SHA-512': 128 };

const isAdminType = (caller: Caller) => isRootAdmin(caller) || isDomainAdmin(caller);
const ownedBy = (template: Template) => ({ accountId: template.accountId, domainTree: template.domainTree });

const completed = (type: string, action: string, details: string, resource: { id: string; type: 'Template' | 'Iso' }): Recorded =>
  completedEvent(type, action, resource, details);

// ---- checks shared by register and update ----

/** DigestHelper.validateChecksumString: {ALGORITHM}digest, MD5 when no algorithm is given. */
export function checkChecksum(checksum: string | undefined): void {
  if (!checksum) return;
  let algorithm = 'MD5';
  let digest = checksum;
  if (checksum.startsWith('{') && checksum.includes('}')) {
    algorithm = checksum.slice(1, checksum.indexOf('}'));
    digest = checksum.slice(checksum.indexOf('}') + 1);
  }
  const expected = CHECKSUM_LENGTHS[algorithm];
  if (expected === undefined) {
    throw new InvalidParameter(`Algorithm ${algorithm} was provided but it is not one of the supported algorithms`, 9999);
  }
  if (digest.length !== expected) throw new InvalidParameter(`Checksum digest length should be ${expected} instead of ${digest.length}`, 9999);
  if (!/^[0-9a-fA-F]+$/.test(digest)) throw new InvalidParameter(`Checksum digest ${digest} is not a hexadecimal value`, 9999);
}

/** Upstream's DigestHelper.getHashValueFromChecksumValue: the digest without its {ALGORITHM}. */
const digestOf = (checksum: string | undefined) => (checksum?.includes('}') ? checksum.slice(checksum.indexOf('}') + 1) : checksum);

function checkUrl(url: string): void {
  if (url.toLowerCase().includes('file://')) throw new InvalidParameter('File:// type urls are currently unsupported');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidParameter(`Invalid URL: ${url}`, 9999);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new InvalidParameter(`Unsupported scheme for url: ${url}`, 9999);
}

function osTypeParam(api: string, value: string) {
  const type = getOsType(value);
  if (!type) throw noSuchEntity(api, 'ostypeid', value);
  return type;
}

/** allow.public.user.templates (default true) once the configuration catalogue declares it. */
function allowPublicUserTemplates(settings: Settings): boolean {
  const name = 'allow.public.user.templates';
  return settingDefinition(name) ? settings.boolean(name as SettingName) : true;
}

/** zoneid (one zone or -1) and zoneids (a list, or just -1): the zone ids, or 'all'. */
async function zonesParam(api: string, caller: Caller, zoneid: string | undefined, zoneids: string[] | undefined): Promise<Zone[] | 'all'> {
  if (zoneid !== undefined && zoneids?.length) throw new InvalidParameter('Both zoneid and zoneids cannot be specified at the same time', 9999);
  if (zoneid === undefined && !zoneids?.length) throw new InvalidParameter('Either zoneid or zoneids is required. Both cannot be null.', 9999);
  const ids = zoneids?.length ? zoneids : [zoneid!];
  if (ids.length > 1 && ids.includes('-1')) throw new InvalidParameter('Parameter zoneids cannot combine all zones (-1) option with other zones', 9999);
  if (ids[0] === '-1') return 'all';
  const zones: Zone[] = [];
  for (const id of ids) {
    const zone = UUID.test(id) ? await getZone(id.toLowerCase()) : undefined;
    if (!zone) throw noSuchEntity(api, zoneids?.length ? 'zoneids' : 'zoneid', id);
    if (zone.allocationstate === 'Disabled' && !isRootAdmin(caller)) {
      throw new PermissionDenied(`Cannot perform this operation, Zone is currently disabled: ${zone.id}`);
    }
    zones.push(zone);
  }
  return zones;
}

/** The owner named by account/domainid (upstream's finalyzeAccountId), or the caller's account. */
async function ownerParam(caller: Caller, params: { account?: string; domainid?: string }): Promise<{ account: Account; domain: Domain }> {
  if (params.domainid && !params.account) {
    // As upstream: domainid alone names no owner; the caller owns it but must reach the domain.
    await resolveDomain(caller, params.domainid);
  }
  if (params.account) {
    const domain = params.domainid ? await resolveDomain(caller, params.domainid) : caller.domain;
    const account = await resolveAccount(caller, domain, params.account);
    return { account, domain };
  }
  return { account: caller.account, domain: caller.domain };
}

// ---- rendering (TemplateJoinDaoImpl.newTemplateResponse / newIsoResponse) ----

interface RenderContext {
  caller: Caller;
  zones: Map<string, Zone>;
  accounts: Map<string, Account>;
  domains: Map<string, Domain>;
}

async function renderContext(caller: Caller, templates: readonly Template[], zones?: Zone[]): Promise<RenderContext> {
  const accountIds = [...new Set(templates.map((t) => t.accountId))];
  const domainIds = [...new Set(templates.map((t) => t.domainId))];
  const accounts = accountIds.length ? await getItems<Account[]>(accountIds.map((id) => identityKey.account(id))) : [];
  const domains = domainIds.length ? await getItems<Domain[]>(domainIds.map((id) => identityKey.domain(id))) : [];
  return {
    caller,
    zones: new Map((zones ?? (await listZones())).map((zone) => [zone.id, zone])),
    accounts: new Map(accounts.filter(Boolean).map((a) => [a!.id, a!])),
    domains: new Map(domains.filter(Boolean).map((d) => [d!.id, d!])),
  };
}

/** TemplateJoinDaoImpl.getTemplateStatus. */
export function downloadStatus(template: Template, copy: ZoneCopy): string {
  const iso = template.kind === 'iso';
  switch (copy.downloadState) {
    case 'DOWNLOADED':
      return iso ? 'Successfully Installed' : 'Download Complete';
    case 'DOWNLOAD_IN_PROGRESS':
      if (copy.downloadPercent === 100) return iso ? 'Installing ISO' : 'Installing Template';
      return `${copy.downloadPercent}% Downloaded`;
    case 'DOWNLOAD_ERROR':
      return copy.errorString?.trim() || 'Download Error';
    default:
      return 'Download pending';
  }
}

/** One row: the template as seen in one zone (or in none). */
interface Row {
  template: Template;
  zoneId?: string;
}

function renderRow(context: RenderContext, { template, zoneId }: Row): Record<string, unknown> {
  const copy = zoneId ? zoneCopy(template, zoneId) : undefined;
  const account = context.accounts.get(template.accountId);
  const domain = context.domains.get(template.domainId);
  const ostype = getOsType(template.ostypeid);
  const zone = zoneId ? context.zones.get(zoneId) : undefined;
  const fullView = isRootAdmin(context.caller) || template.accountId === context.caller.account.id;
  const iso = template.kind === 'iso';
  return {
    id: template.id,
    name: template.name,
    displaytext: template.displaytext,
    ispublic: template.ispublic,
    created: template.created,
    isready: copy?.downloadState === 'DOWNLOADED',
    passwordenabled: template.passwordenabled,
    ...(iso && { bootable: template.bootable }),
    format: template.format,
    isfeatured: template.isfeatured,
    crossZones: template.crossZones,
    ostypeid: template.ostypeid,
    ostypename: ostype?.description,
    account: account?.name,
    domainid: template.domainId,
    domain: domain?.name,
    domainpath: domain?.path,
    ...(zone && { zoneid: zone.id, zonename: zone.name }),
    ...(fullView && copy && { status: downloadStatus(template, copy) }),
    ...(copy?.size && { size: copy.size }),
    ...(copy?.physicalsize && { physicalsize: copy.physicalsize }),
    ...(!iso && { templatetype: template.templatetype, hypervisor: template.hypervisor }),
    isextractable: template.isextractable,
    ...(template.checksum && { checksum: digestOf(template.checksum) }),
    ...(template.templatetag && { templatetag: template.templatetag }),
    ...(!iso && { details: template.details ?? {}, bits: template.bits, sshkeyenabled: template.sshkeyenabled }),
    isdynamicallyscalable: template.isdynamicallyscalable,
    directdownload: template.directdownload,
    ...(!iso && { deployasis: false, requireshvm: template.requireshvm }),
    downloaddetails: [],
    ...(fullView && { url: template.url }),
    tags: [],
    hasannotations: false,
    arch: 'x86_64',
  };
}

/** The rows of a template: one per zone it is in (or one without a zone when it is in none). */
function rowsOf(template: Template, zones: Map<string, Zone>): Row[] {
  const zoneIds = templateZoneIds(template, [...zones.keys()]).filter((id) => zones.has(id));
  return zoneIds.length ? zoneIds.map((zoneId) => ({ template, zoneId })) : [{ template }];
}

const isReadyRow = (row: Row) => Boolean(row.zoneId) && zoneCopy(row.template, row.zoneId!).downloadState === 'DOWNLOADED';

// ---- listing (QueryManagerImpl.listTemplates / listIsos) ----

interface ListRequest {
  api: string;
  kind: Template['kind'];
  filterParam: 'templatefilter' | 'isofilter';
  filter: string;
  id?: string;
  ids?: string[];
  name?: string;
  keyword?: string;
  zoneid?: string;
  hypervisor?: string;
  account?: string;
  domainid?: string;
  isrecursive?: boolean;
  bootable?: boolean;
  ispublic?: boolean;
  isready?: boolean;
  showunique?: boolean;
  oscategoryid?: string;
}

function parseFilter(value: string): Filter {
  if (!(FILTERS as readonly string[]).includes(value)) {
    throw new InvalidParameter(`No enum constant com.cloud.template.VirtualMachineTemplate.TemplateFilter.${value}`, 9999);
  }
  return value as Filter;
}

/** Whether the caller may see a template it asked for by id (upstream's checks before the search). */
function mayUse(caller: Caller, template: Template): boolean {
  if (template.ispublic || isRootAdmin(caller)) return true;
  if (isDomainAdmin(caller)) return canAccessDomain(caller, { id: template.domainId, tree: template.domainTree });
  return canAccess(caller, ownedBy(template)) || template.sharedAccountIds.includes(caller.account.id);
}

async function listRows(caller: Caller, request: ListRequest): Promise<{ rows: Row[]; context: RenderContext }> {
  const filter = parseFilter(request.filter);
  if (filter === 'all' && !isAdminType(caller)) throw new InvalidParameter('Filter all can be specified by admin only');
  const zones = await listZones();
  const zoneMap = new Map(zones.map((zone) => [zone.id, zone]));
  if (request.zoneid && !zoneMap.has(request.zoneid.toLowerCase())) throw noSuchEntity(request.api, 'zoneid', request.zoneid);
  const category = request.oscategoryid?.toLowerCase();
  if (category && !getOsCategory(category)) throw noSuchEntity(request.api, 'oscategoryid', request.oscategoryid!);

  let candidates: Template[];
  let onlyReady = false;
  if (request.id) {
    const template = await getTemplate(request.id.toLowerCase());
    if (!template || template.kind !== request.kind) throw noSuchEntity(request.api, 'id', request.id);
    if (!mayUse(caller, template)) {
      throw new PermissionDenied(`Caller ${caller.account.name} does not have permission to operate with ${request.kind} ${template.id}`);
    }
    candidates = [template];
  } else {
    // buildACLSearchParameters: the accounts whose own templates count (none for admins listing all).
    let permitted: Account[] = [];
    let domainScope: Domain | undefined;
    if (request.account) {
      const domain = request.domainid ? await resolveDomain(caller, request.domainid) : caller.domain;
      permitted = [await resolveAccount(caller, domain, request.account)];
    } else if (request.domainid) {
      domainScope = await resolveDomain(caller, request.domainid);
      if (!isAdminType(caller)) permitted = [caller.account];
    } else if (filter !== 'all') {
      permitted = [caller.account];
    }
    const permittedIds = new Set(permitted.map((account) => account.id));
    const accountSpecific = isAdminType(caller) && Boolean(request.account && request.domainid);
    onlyReady =
      filter === 'featured' || filter === 'selfexecutable' || filter === 'sharedexecutable' || filter === 'community' || (filter === 'executable' && accountSpecific);
    if (request.kind === 'iso' && !onlyReady && request.isready !== undefined) onlyReady = request.isready;

    const ids = request.ids?.map((id) => id.toLowerCase());
    candidates = (await listTemplateRecords(request.kind)).filter((template) => {
      if (ids && !ids.includes(template.id)) return false;
      if (domainScope) {
        const inDomain = request.isrecursive ? template.domainTree.startsWith(domainScope.tree) : template.domainId === domainScope.id;
        if (!inDomain && !(filter === 'featured' || filter === 'community' || filter === 'executable' || filter === 'all')) return false;
        if (!inDomain && filter === 'all' && !template.ispublic) return false;
      }
      switch (filter) {
        case 'featured':
          return template.ispublic && template.isfeatured;
        case 'community':
          return template.ispublic && !template.isfeatured;
        case 'self':
        case 'selfexecutable':
          if (!permitted.length) return isRootAdmin(caller) || template.domainTree.startsWith(caller.domain.tree);
          return permittedIds.has(template.accountId);
        case 'sharedexecutable':
          return template.sharedAccountIds.some((id) => permittedIds.has(id));
        case 'executable':
          return template.ispublic || permittedIds.has(template.accountId);
        case 'all':
          if (permitted.length) return template.ispublic || permittedIds.has(template.accountId) || template.sharedAccountIds.some((id) => permittedIds.has(id));
          if (isRootAdmin(caller)) return true;
          return template.ispublic || template.domainTree.startsWith(caller.domain.tree);
      }
    });
    candidates = candidates
      .filter((template) => (request.keyword ? matchesKeyword(request.keyword, template.name) : request.name === undefined || template.name.toLowerCase() === request.name.toLowerCase()))
      .filter((template) => request.hypervisor === undefined || template.hypervisor.toLowerCase() === request.hypervisor.toLowerCase())
      .filter((template) => request.bootable === undefined || template.bootable === request.bootable)
      .filter((template) => request.ispublic === undefined || template.ispublic === request.ispublic)
      // The UI's Add Instance wizard lists the images of the OS category picked (upstream 4.21).
      .filter((template) => category === undefined || getOsType(template.ostypeid)?.oscategoryid === category);
  }

  let rows = candidates.flatMap((template) => rowsOf(template, zoneMap));
  if (onlyReady) rows = rows.filter(isReadyRow);
  if (request.zoneid) rows = rows.filter((row) => row.zoneId === request.zoneid!.toLowerCase());
  if (request.showunique) {
    const seen = new Set<string>();
    rows = rows.filter((row) => !seen.has(row.template.id) && seen.add(row.template.id));
  }
  const context = await renderContext(caller, [...new Set(rows.map((row) => row.template))], zones);
  return { rows, context };
}

/** The answer to registerTemplate or registerIso: the new record's rows, its downloads started, its event. */
async function registered(caller: Caller, record: Template, zones: Zone[]) {
  const context = await renderContext(caller, [record], zones);
  const rows = rowsOf(record, context.zones);
  await startTemplateDownloads(actorOf(caller), record, zones.map((zone) => zone.id));
  const event =
    record.kind === 'iso'
      ? completed('ISO.CREATE', 'registering iso', `Id: ${record.id} name: ${record.name}`, { id: record.id, type: 'Iso' })
      : completed('TEMPLATE.CREATE', 'registering template', `Id: ${record.id} name: ${record.name}`, { id: record.id, type: 'Template' });
  return { body: { count: rows.length, [record.kind]: rows.map((row) => renderRow(context, row)) }, events: [event] };
}

// ---- commands ----

const ownerParams = {
  account: param.string('an optional accountName. Must be used with domainId.').optional(),
  domainid: param.uuid('an optional domainId. If the account parameter is used, domainId must also be used.').optional(),
};

const registerTemplateCommand = defineCommand({
  name: 'registerTemplate',
  description: 'Registers an existing template into the CloudStack cloud. ',
  params: {
    name: param.string('the name of the template'),
    displaytext: param.text("The display text of the template, defaults to 'name'.", 4096).optional(),
    url: param.string('the URL of where the template is hosted. Possible URL include http:// and https://', 2048),
    format: param.string('the format for the template. Possible values include QCOW2, RAW, VHD and OVA.'),
    hypervisor: param.string('the target hypervisor for the template'),
    zoneid: param.string('the ID of the zone the template is to be hosted on').optional(),
    zoneids: param
      .list(
        param.string('zone id'),
        'A list of zone ids where the template will be hosted. Use this parameter if the template needs to be registered to multiple zones in one go. Use zoneid if the template needs to be registered to only one zone.Passing only -1 to this will cause the template to be registered as a cross zone template and will be copied to all zones. ',
      )
      .optional(),
    ostypeid: param.uuid('the ID of the OS Type that best represents the OS of this template. Not applicable with VMware, as we honour what is defined in the template').optional(),
    bits: param.integer('32 or 64 bits support. 64 by default').optional(),
    ispublic: param.boolean('true if the template is available to all accounts; default is true').optional(),
    isfeatured: param.boolean('true if this template is a featured template, false otherwise').optional(),
    isextractable: param.boolean('true if the template or its derivatives are extractable; default is false').optional(),
    passwordenabled: param.boolean('true if the template supports the password reset feature; default is false').optional(),
    sshkeyenabled: param.boolean('true if the template supports the sshkey upload feature; default is false').optional(),
    requireshvm: param.boolean('true if this template requires HVM').optional(),
    isdynamicallyscalable: param.boolean('true if template contains XS/VMWare tools inorder to support dynamic scaling of VM cpu/memory').optional(),
    directdownload: param.boolean('true if template should bypass Secondary Storage and be downloaded to Primary Storage on deployment').optional(),
    checksum: param.string('the checksum value of this template. The parameter containing the checksum will be considered a MD5sum if it is not prefixed\n and just a plain ascii/utf8 representation of a hexadecimal string. If it is required to\n use another algorithm the hexadecimal string is to be prefixed with a string of the form,\n "{<algorithm>}", not including the double quotes. In this <algorithm> is the exact string\n representing the java supported algorithm, i.e. MD5 or SHA-256. Note that java does not\n contain an algorithm called SHA256 or one called sha-256, only SHA-256.').optional(),
    templatetag: param.string('the tag for this template.').optional(),
    isrouting: param.boolean('true if the template type is routing i.e., if template is used to deploy router').optional(),
    details: param.map('Template details in key/value pairs using format details[i].keyname=keyvalue. Example: details[0].hypervisortoolsversion=xenserver61').optional(),
    ...ownerParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    const api = 'registerTemplate';
    const { account: owner, domain: ownerDomain } = await ownerParam(caller, params);
    if (!/^kvm$/i.test(params.hypervisor)) {
      throw new InvalidParameter(`Hypervisor Type: ${params.hypervisor} is invalid. Supported Hypervisor types are: KVM`);
    }
    const format = TEMPLATE_FORMATS.find((f) => f === params.format.toUpperCase());
    if (!format) throw new InvalidParameter(`Image format: ${params.format} is incorrect. Supported formats are ${TEMPLATE_FORMATS.join(', ')}`, 9999);
    const zones = await zonesParam(api, caller, params.zoneid, params.zoneids);
    if (!params.ostypeid) throw new InvalidParameter('Please provide a guest OS type', 9999);
    osTypeParam(api, params.ostypeid);
    const ownerIsRootAdmin = owner.roleType === 'Admin';
    if (zones === 'all' && !ownerIsRootAdmin) {
      throw new InvalidParameter("Template registered for 'All zones' can only be owned a Root Admin account. Please select specific zone(s).");
    }
    checkUrl(params.url);
    const ispublic = params.ispublic ?? false;
    if (!ownerIsRootAdmin && !allowPublicUserTemplates(settings) && ispublic) throw new InvalidParameter('Only private templates/ISO can be created.');
    checkChecksum(params.checksum);
    if (params.bits !== undefined && params.bits !== 32 && params.bits !== 64) throw new InvalidParameter('Invalid value provided for API arg: bits', 9999);
    if ((params.templatetag !== undefined || params.isrouting) && !isRootAdmin(caller)) {
      throw new PermissionDenied(`Parameter ${params.templatetag !== undefined ? 'templatetag' : 'isrouting'} can only be specified by a Root Admin, permission denied`);
    }
    const existing = zones === 'all' ? await listZones() : zones;
    if (zones === 'all' && existing.length === 0) throw new InternalError("No zones are present in the system, can't add template");
    const details = params.details?.length ? Object.assign({}, ...params.details) : undefined;
    const template = await createTemplate({
      kind: 'template',
      name: params.name,
      displaytext: params.displaytext || params.name,
      url: params.url,
      format,
      hypervisor: 'KVM',
      ostypeid: params.ostypeid.toLowerCase(),
      ispublic,
      // Upstream silently ignores isfeatured unless the owner is a root admin.
      isfeatured: ownerIsRootAdmin ? (params.isfeatured ?? false) : false,
      isextractable: params.isextractable ?? false,
      passwordenabled: params.passwordenabled ?? false,
      sshkeyenabled: params.sshkeyenabled ?? false,
      requireshvm: params.requireshvm ?? true,
      isdynamicallyscalable: params.isdynamicallyscalable ?? false,
      directdownload: params.directdownload ?? false,
      bootable: true,
      bits: params.bits ?? 64,
      checksum: params.checksum,
      templatetag: params.templatetag,
      templatetype: params.isrouting ? 'ROUTING' : 'USER',
      details,
      crossZones: zones === 'all',
      zoneIds: existing.map((zone) => zone.id),
      accountId: owner.id,
      domainId: ownerDomain.id,
      domainTree: owner.domainTree,
    });
    return registered(caller, template, existing);
  },
});

const registerIsoCommand = defineCommand({
  name: 'registerIso',
  description: 'Registers an existing ISO into the CloudStack Cloud.',
  params: {
    name: param.string('the name of the ISO'),
    displaytext: param.text('the display text of the ISO, defaults to the \'name\'', 4096).optional(),
    url: param.string('the URL to where the ISO is currently being hosted', 2048),
    zoneid: param.string('the ID of the zone you wish to register the ISO to.'),
    ostypeid: param.uuid('the ID of the OS type that best represents the OS of this ISO. If the ISO is bootable this parameter needs to be passed').optional(),
    bootable: param.boolean('true if this ISO is bootable. If not passed explicitly its assumed to be true').optional(),
    ispublic: param.boolean('true if you want to register the ISO to be publicly available to all users, false otherwise.').optional(),
    isfeatured: param.boolean('true if you want this ISO to be featured').optional(),
    isextractable: param.boolean('true if the ISO or its derivatives are extractable; default is false').optional(),
    isdynamicallyscalable: param.boolean('true if ISO contains XS/VMWare tools inorder to support dynamic scaling of VM CPU/memory').optional(),
    directdownload: param.boolean('true if ISO should bypass Secondary Storage and be downloaded to Primary Storage on deployment').optional(),
    passwordenabled: param.boolean('true if password reset feature is supported; default is false').optional(),
    checksum: param.string('the checksum value of this ISO. ').optional(),
    ...ownerParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    const api = 'registerIso';
    const { account: owner, domain: ownerDomain } = await ownerParam(caller, params);
    const bootable = params.bootable ?? true;
    if (params.ostypeid) osTypeParam(api, params.ostypeid);
    if (bootable && (!params.ostypeid || params.ostypeid.toLowerCase() === NONE_OS_TYPE.id)) throw new InvalidParameter('Please pass a valid GuestOS Id');
    const ownerIsRootAdmin = owner.roleType === 'Admin';
    const zones = await zonesParam(api, caller, params.zoneid, undefined);
    if (zones === 'all' && !ownerIsRootAdmin) {
      throw new InvalidParameter("Template registered for 'All zones' can only be owned a Root Admin account. Please select specific zone(s).");
    }
    checkUrl(params.url);
    const ispublic = params.ispublic ?? false;
    if (!ownerIsRootAdmin && !allowPublicUserTemplates(settings) && ispublic) throw new InvalidParameter('Only private templates/ISO can be created.');
    checkChecksum(params.checksum);
    const existing = zones === 'all' ? await listZones() : zones;
    if (zones === 'all' && existing.length === 0) throw new InternalError("No zones are present in the system, can't add template");
    const iso = await createTemplate({
      kind: 'iso',
      name: params.name,
      displaytext: params.displaytext || params.name,
      url: params.url,
      format: 'ISO',
      hypervisor: 'None',
      ostypeid: bootable ? params.ostypeid!.toLowerCase() : NONE_OS_TYPE.id,
      ispublic,
      isfeatured: ownerIsRootAdmin ? (params.isfeatured ?? false) : false,
      isextractable: params.isextractable ?? false,
      passwordenabled: params.passwordenabled ?? false,
      sshkeyenabled: false,
      requireshvm: true,
      isdynamicallyscalable: params.isdynamicallyscalable ?? false,
      directdownload: params.directdownload ?? false,
      bootable,
      bits: 64,
      checksum: params.checksum,
      templatetype: 'USER',
      crossZones: zones === 'all',
      zoneIds: existing.map((zone) => zone.id),
      accountId: owner.id,
      domainId: ownerDomain.id,
      domainTree: owner.domainTree,
    });
    return registered(caller, iso, existing);
  },
});

const listCommonParams = {
  id: param.uuid('the ID').optional(),
  ids: param.list(param.uuid('id'), 'the IDs, mutually exclusive with id').optional(),
  name: param.string('the name').optional(),
  zoneid: param.uuid('list by zone ID').optional(),
  hypervisor: param.string('the hypervisor for which to restrict the search').optional(),
  showremoved: param.boolean('show removed templates as well').optional(),
  showunique: param.boolean('If set to true, list only unique templates across zones').optional(),
  oscategoryid: param.uuid('the ID of the OS category for the template').optional(),
  ...scopeParams,
  ...listParams,
};

const listTemplatesCommand = defineCommand({
  name: 'listTemplates',
  description: 'List all public, private, and privileged templates.',
  params: {
    ...listCommonParams,
    id: param.uuid('the template ID').optional(),
    ids: param.list(param.uuid('id'), 'the IDs of the templates, mutually exclusive with id').optional(),
    name: param.string('the template name').optional(),
    zoneid: param.uuid('list templates by zoneId').optional(),
    templatefilter: param.string(
      'possible values are "featured", "self", "selfexecutable","sharedexecutable","executable", and "community". * featured : templates that have been marked as featured and public. * self : templates that have been registered or created by the calling user. * selfexecutable : same as self, but only returns templates that can be used to deploy a new VM. * sharedexecutable : templates ready to be deployed that have been granted to the calling user by another user. * executable : templates that are owned by the calling user, or public templates, that can be used to deploy a VM. * community : templates that have been marked as public but not featured. * all : all templates (only usable by admins).',
    ),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    if (params.id && params.ids) throw new InvalidParameter('Either id or ids parameter should be passed, not both');
    const { rows, context } = await listRows(caller, { api: 'listTemplates', kind: 'template', filterParam: 'templatefilter', filter: params.templatefilter, ...params });
    return { body: listResponse('template', rows, params, settings, (row) => renderRow(context, row)) };
  },
});

const listIsosCommand = defineCommand({
  name: 'listIsos',
  description: 'Lists all available ISO files.',
  params: {
    ...listCommonParams,
    id: param.uuid('list ISO by ID').optional(),
    ids: param.list(param.uuid('id'), 'the IDs of the ISOs, mutually exclusive with id').optional(),
    name: param.string('list all ISOs by name').optional(),
    zoneid: param.uuid('the ID of the zone').optional(),
    isofilter: param
      .string(
        'possible values are "featured", "self", "selfexecutable","sharedexecutable","executable", and "community". * featured : templates that have been marked as featured and public. * self : templates that have been registered or created by the calling user. * selfexecutable : same as self, but only returns templates that can be used to deploy a new VM. * sharedexecutable : templates ready to be deployed that have been granted to the calling user by another user. * executable : templates that are owned by the calling user, or public templates, that can be used to deploy a VM. * community : templates that have been marked as public but not featured. * all : all templates (only usable by admins).',
      )
      .optional(),
    bootable: param.boolean('true if the ISO is bootable, false otherwise').optional(),
    ispublic: param.boolean('true if the ISO is publicly available to all users, false otherwise.').optional(),
    isready: param.boolean('true if this ISO is ready to be deployed').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    if (params.id && params.ids) throw new InvalidParameter('Either id or ids parameter should be passed, not both');
    const { rows, context } = await listRows(caller, {
      api: 'listIsos',
      kind: 'iso',
      filterParam: 'isofilter',
      ...params,
      filter: params.isofilter ?? 'selfexecutable',
    });
    return { body: listResponse('iso', rows, params, settings, (row) => renderRow(context, row)) };
  },
});

async function templateParam(api: string, id: string, kind: Template['kind']): Promise<Template> {
  const template = await getTemplate(id.toLowerCase());
  if (!template) throw noSuchEntity(api, 'id', id);
  if (template.kind !== kind) throw new InvalidParameter(kind === 'iso' ? 'Please specify a valid ISO.' : 'Please specify a valid template.');
  return template;
}

const updateTemplateCommand = defineCommand({
  name: 'updateTemplate',
  description: 'Updates attributes of a template.',
  params: {
    id: param.uuid('the ID of the image file'),
    name: param.string('the name of the image file').optional(),
    displaytext: param.text('the display text of the image', 4096).optional(),
    ostypeid: param.uuid('the ID of the OS type that best represents the OS of this image.').optional(),
    format: param.string('the format for the image').optional(),
    passwordenabled: param.boolean('true if the image supports the password reset feature; default is false').optional(),
    sshkeyenabled: param.boolean('true if the template supports the sshkey upload feature; default is false').optional(),
    requireshvm: param.boolean('true if the template requires HVM, false otherwise; available only for updateTemplate API').optional(),
    bootable: param.boolean('true if image is bootable, false otherwise; available only for updateIso API').optional(),
    isdynamicallyscalable: param.boolean('true if template/ISO contains XS/VMWare tools inorder to support dynamic scaling of VM cpu/memory').optional(),
    isrouting: param.boolean('true if the template type is routing i.e., if template is used to deploy router').optional(),
    sortkey: param.integer('sort key of the template, integer').optional(),
    details: param.map('Details in key/value pairs using format details[i].keyname=keyvalue. Example: details[0].hypervisortoolsversion=xenserver61').optional(),
    cleanupdetails: param.boolean('optional boolean field, which indicates if details should be cleaned up or not (If set to true, details removed for this resource, details field ignored; if false or not set, no action)').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const api = 'updateTemplate';
    const template = await templateParam(api, params.id, 'template');
    checkAccess(caller, ownedBy(template), `template ${template.id}`);
    if (params.ostypeid) osTypeParam(api, params.ostypeid);
    let format: Template['format'] | undefined;
    if (params.format !== undefined) {
      format = TEMPLATE_FORMATS.find((f) => f === params.format!.toUpperCase());
      if (!format) throw new InvalidParameter(`Image format: ${params.format} is incorrect. Supported formats are ${TEMPLATE_FORMATS.join(', ')}`, 9999);
    }
    if (params.name !== undefined && params.name.trim() === '') throw new InvalidParameter('Template name cannot be empty');
    if (params.isrouting !== undefined && !isRootAdmin(caller)) {
      throw new PermissionDenied('Parameter isrouting can only be specified by a Root Admin, permission denied');
    }
    let details = template.details;
    if (params.cleanupdetails) details = {};
    else if (params.details?.length) details = Object.assign({}, ...params.details);
    const updated = await updateTemplateFields(template.id, {
      name: params.name,
      displaytext: params.displaytext,
      ostypeid: params.ostypeid?.toLowerCase(),
      format,
      passwordenabled: params.passwordenabled,
      sshkeyenabled: params.sshkeyenabled,
      requireshvm: params.requireshvm,
      bootable: params.bootable,
      isdynamicallyscalable: params.isdynamicallyscalable,
      templatetype: params.isrouting === undefined ? undefined : params.isrouting ? 'ROUTING' : 'USER',
      details,
    });
    const context = await renderContext(caller, [updated]);
    const [row] = rowsOf(updated, context.zones);
    return {
      body: { template: renderRow(context, row) },
      events: [completed('TEMPLATE.UPDATE', 'updating template', `Id: ${updated.id} name: ${updated.name}`, { id: updated.id, type: 'Template' })],
    };
  },
});

const updateTemplatePermissionsCommand = defineCommand({
  name: 'updateTemplatePermissions',
  description:
    'Updates a template visibility permissions. A public template is visible to all accounts within the same domain. A private template is visible only to the owner of the template. A privileged template is a private template with account permissions added. Only accounts specified under the template permissions are visible to them.',
  params: {
    id: param.uuid('the template ID'),
    accounts: param
      .list(param.string('account'), 'a comma delimited list of accounts within caller\'s domain. If specified, "op" parameter has to be passed in.')
      .optional(),
    op: param.string('permission operator (add, remove, reset)').optional(),
    ispublic: param.boolean('true for public template/iso, false for private templates/isos').optional(),
    isfeatured: param.boolean('true for featured template/iso, false otherwise').optional(),
    isextractable: param.boolean('true if the template/iso is extractable, false other wise. Can be set only by root admin').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    const template = await templateParam('updateTemplatePermissions', params.id, 'template');
    checkAccess(caller, ownedBy(template), `template ${template.id}`);
    const isAdmin = isAdminType(caller);
    if (!isAdmin && !allowPublicUserTemplates(settings) && params.ispublic) throw new InvalidParameter('Only private templates can be created.');
    const op = params.op?.toLowerCase();
    if (params.accounts && op !== 'add' && op !== 'remove' && op !== 'reset') {
      throw new InvalidParameter(
        `Invalid operation on Accounts, the operation must be either 'add' or 'remove' in order to modify launch permissions.  Given operation is: '${params.op ?? null}'`,
      );
    }
    if (caller.account.id !== template.accountId && !isAdmin) {
      throw new InvalidParameter(`Unable to grant permission to Account ${caller.account.name} as it is neither admin nor owner or the Template`);
    }
    // Mold: marking a template featured is for root admins only (upstream's registerTemplate rule).
    if (params.isfeatured !== undefined && !isRootAdmin(caller)) {
      throw new PermissionDenied('Only ROOT admins are allowed to modify isfeatured attribute.');
    }
    if ((op === 'add' || op === 'remove') && !params.accounts) throw new InvalidParameter(`Operation ${params.op} requires Accounts or projectIds to be passed in`);
    let shared = template.sharedAccountIds;
    if (op === 'add') {
      const owner = await getAccount(template.accountId);
      const domain = owner ? await getDomain(owner.domainId) : undefined;
      const added: string[] = [];
      for (const name of params.accounts!) {
        const permitted = domain ? await findAccountByName(domain.id, name) : undefined;
        if (!permitted || permitted.state !== 'enabled') {
          throw new InvalidParameter(
            `Unable to grant a launch permission to Account ${name} in domain id=${template.domainId}, Account not found.  No permissions updated, please verify the Account names and retry.`,
          );
        }
        if (permitted.id === caller.account.id) continue;
        added.push(permitted.id);
      }
      shared = [...new Set([...shared, ...added])];
    } else if (op === 'remove') {
      const removed = new Set<string>();
      for (const name of params.accounts!) {
        const permitted = await findAccountByName(template.domainId, name);
        if (permitted) removed.add(permitted.id);
      }
      shared = shared.filter((id) => !removed.has(id));
    }
    const reset = op === 'reset';
    await updateTemplateFields(template.id, {
      ispublic: reset ? false : params.ispublic,
      isfeatured: reset ? false : params.isfeatured,
      isextractable: params.isextractable,
      sharedAccountIds: reset ? [] : shared,
    });
    return {
      body: { success: true },
      events: [completed('TEMPLATE.UPDATE', 'updating template permissions', `Id: ${template.id} name: ${template.name}`, { id: template.id, type: 'Template' })],
    };
  },
});

const deleteTemplateCommand = defineCommand({
  name: 'deleteTemplate',
  description:
    'Deletes a template from the system. All virtual machines using the deleted template will not be affected.',
  isasync: true,
  params: {
    id: param.uuid('the ID of the template'),
    zoneid: param.uuid('the ID of zone of the template').optional(),
    forced: param.boolean('Force delete a template.').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const api = 'deleteTemplate';
    const template = await templateParam(api, params.id, 'template');
    checkAccess(caller, ownedBy(template), `template ${template.id}`);
    let zoneId: string | undefined;
    if (params.zoneid) {
      const zones = await listZones();
      zoneId = params.zoneid.toLowerCase();
      if (!zones.some((zone) => zone.id === zoneId)) throw noSuchEntity(api, 'zoneid', params.zoneid);
      if (!templateZoneIds(template, zones.map((zone) => zone.id)).includes(zoneId)) {
        throw new InvalidParameter(`Template ${template.id} is not available in zone ${zoneId}`);
      }
    }
    return startAsync(caller, {
      cmd: api,
      stateMachine: 'delete-template',
      input: { templateId: template.id, zoneId: zoneId ?? null },
      instanceType: 'Template',
      instanceId: template.id,
      event: { type: 'TEMPLATE.DELETE', description: `Deleting template ${template.id}`, resourceId: template.id, resourceType: 'Template' },
    });
  },
});

export const templateCommands = [
  registerTemplateCommand,
  listTemplatesCommand,
  updateTemplateCommand,
  updateTemplatePermissionsCommand,
  deleteTemplateCommand,
  registerIsoCommand,
  listIsosCommand,
];
