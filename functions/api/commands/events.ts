// listEvents, listEventTypes, archiveEvents and deleteEvents (upstream's ListEventsCmd,
// ListEventTypesCmd, ArchiveEventsCmd and DeleteEventsCmd, with QueryManagerImpl's and
// AuditTrailServiceImpl's rules). Archiving and deleting are themselves not recorded as events,
// as upstream records none for them.
import { InternalError, InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { listParams, param, scopeParams } from '../../../shared/cloudstack/params.ts';
import { listBody } from '../../../shared/cloudstack/render.ts';
import {
  archiveEvent,
  deleteEvent,
  getEvent,
  listEventsUnder,
  newestFirst,
  type EventRecord,
} from '../../../shared/db/events.ts';
import { ALL_ROLES, defineCommand, type Caller } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { parseDateParam } from '../dates.ts';
import { inScope, isDomainAdmin, isRootAdmin, ownedScope } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';
import { cloudstackMillis } from '../../../shared/db/jobs.ts';

/**
 * Upstream's event types: the public constants of com.cloud.event.EventTypes, in their order
 * (listEventTypes answers exactly these). Taken from a pre-4.20 upstream file, with 4.20's ROLE.ENABLE and
 * ROLE.DISABLE, and Mold's own types for changes upstream records no event for (clusters, host
 * updates, a host's connection status, capacity a crash left held, storage pools, image stores, on-prem agents, created and deleted SSH key pairs); every type Mold records is among them.
 */
export const EVENT_TYPES: readonly string[] = `
  VM.CREATE VM.DESTROY VM.START VM.STOP VM.REBOOT VM.UPDATE VM.UPGRADE VM.DYNAMIC.SCALE VM.RESETPASSWORD
  VM.RESETSSHKEY
  VM.RESETUSERDATA VM.MIGRATE VM.MOVE VM.RESTORE VM.EXPUNGE VM.IMPORT VM.UNMANAGE VM.RECOVER
  ROUTER.CREATE ROUTER.DESTROY ROUTER.START ROUTER.STOP ROUTER.REBOOT ROUTER.HA ROUTER.UPGRADE
  ROUTER.DIAGNOSTICS ROUTER.HEALTH.CHECKS
  PROXY.CREATE PROXY.DESTROY PROXY.START PROXY.STOP PROXY.REBOOT PROXY.HA PROXY.DIAGNOSTICS
  VNC.CONNECT VNC.DISCONNECT
  NET.IPASSIGN NET.IPRELEASE NET.IPRESERVE NET.IPUPDATE PORTABLE.IPASSIGN PORTABLE.IPRELEASE NET.RULEADD
  NET.RULEDELETE NET.RULEMODIFY NETWORK.CREATE NETWORK.DELETE NETWORK.UPDATE NETWORK.MIGRATE FIREWALL.OPEN
  FIREWALL.CLOSE FIREWALL.UPDATE
  NET.IP6ASSIGN NET.IP6RELEASE NET.IP6UPDATE
  FIREWALL.EGRESS.OPEN FIREWALL.EGRESS.CLOSE FIREWALL.EGRESS.UPDATE
  TUNGSTEN.ADD.POLICY.RULE TUNGSTEN.APPLY.POLICY TUNGSTEN.APPLY.TAG TUNGSTEN.CREATE.POLICY TUNGSTEN.CREATE.TAG
  TUNGSTEN.CREATE.TAGTYPE TUNGSTEN.CREATE.ADDRESS.GROUP TUNGSTEN.CREATE.SERVICE.GROUP TUNGSTEN.CREATE.APS
  TUNGSTEN.CREATE.FIREWALL.POLICY TUNGSTEN.CREATE.FIREWALL.RULE TUNGSTEN.DELETE.POLICY TUNGSTEN.DELETE.TAG
  TUNGSTEN.DELETE.TAGTYPE TUNGSTEN.DELETE.ADDRESS.GROUP TUNGSTEN.DELETE.APS TUNGSTEN.DELETE.FIREWALL.POLICY
  TUNGSTEN.DELETE.FIREWALL.RULE TUNGSTEN.DELETE.SERVICE.GROUP TUNGSTEN.REMOVE.POLICY TUNGSTEN.REMOVE.TAG
  TUNGSTEN.REMOVE.POLICY.RULE TUNGSTEN.CREATE.LOGICAL.ROUTER TUNGSTEN.ADD.NETWORK.GW.TO.LG
  TUNGSTEN.RM.NETWORK.GW.FROM.LG TUNGSTEN.DELETE.LOGICAL.ROUTER TUNGSTEN.UPDATE.LB.HM
  NIC.CREATE NIC.DELETE NIC.UPDATE NIC.DETAIL.ADD NIC.DETAIL.UPDATE NIC.DETAIL.REMOVE
  LB.ASSIGN.TO.RULE LB.REMOVE.FROM.RULE LB.CREATE LB.DELETE LB.STICKINESSPOLICY.CREATE
  LB.STICKINESSPOLICY.UPDATE LB.STICKINESSPOLICY.DELETE LB.HEALTHCHECKPOLICY.CREATE LB.HEALTHCHECKPOLICY.DELETE
  LB.HEALTHCHECKPOLICY.UPDATE LB.UPDATE LB.CERT.UPLOAD LB.CERT.DELETE LB.CERT.ASSIGN LB.CERT.REMOVE
  LB.CONFIG.CREATE LB.CONFIG.DELETE LB.CONFIG.REPLACE LB.CONFIG.UPDATE
  GLOBAL.LB.ASSIGN GLOBAL.LB.REMOVE GLOBAL.LB.CREATE GLOBAL.LB.DELETE GLOBAL.LB.UPDATE
  ROLE.CREATE ROLE.UPDATE ROLE.DELETE ROLE.IMPORT ROLE.ENABLE ROLE.DISABLE ROLE.PERMISSION.CREATE
  ROLE.PERMISSION.UPDATE ROLE.PERMISSION.DELETE
  CLUSTER.CREATE CLUSTER.UPDATE CLUSTER.DELETE HOST.ADD HOST.UPDATE HOST.DELETE STORAGE.POOL.CREATE STORAGE.POOL.UPDATE
  STORAGE.POOL.DELETE IMAGE.STORE.CREATE IMAGE.STORE.DELETE HOST.STATUS.TRANSITION HOST.HA.STATE.TRANSITION CAPACITY.RELEASE RESOURCE.COUNT.REPAIR
  AGENT.ENROLLMENT.TOKEN.CREATE AGENT.ENROLLMENT.TOKEN.REVOKE AGENT.ENROLL AGENT.REVOKE AGENT.LEASE.TRANSFER
  PROJECT.ROLE.CREATE PROJECT.ROLE.UPDATE PROJECT.ROLE.DELETE PROJECT.ROLE.PERMISSION.CREATE
  PROJECT.ROLE.PERMISSION.UPDATE PROJECT.ROLE.PERMISSION.DELETE
  CA.CERTIFICATE.ISSUE CA.CERTIFICATE.REVOKE CA.CERTIFICATE.PROVISION
  ACCOUNT.ENABLE ACCOUNT.DISABLE ACCOUNT.CREATE ACCOUNT.DELETE ACCOUNT.UPDATE ACCOUNT.MARK.DEFAULT.ZONE
  USER.LOGIN USER.LOGOUT USER.CREATE USER.DELETE USER.DISABLE USER.MOVE USER.UPDATE USER.ENABLE USER.LOCK
  REGISTER.SSH.KEYPAIR SSH.KEYPAIR.CREATE SSH.KEYPAIR.DELETE
  REGISTER.USER.DATA
  REGISTER.USER.KEY
  TEMPLATE.CREATE TEMPLATE.DELETE TEMPLATE.UPDATE TEMPLATE.DOWNLOAD.START TEMPLATE.DOWNLOAD.SUCCESS
  TEMPLATE.DOWNLOAD.FAILED TEMPLATE.COPY TEMPLATE.EXTRACT TEMPLATE.UPLOAD TEMPLATE.CLEANUP FILE.MIGRATE
  VOLUME.CREATE VOLUME.DELETE VOLUME.ATTACH VOLUME.DETACH VOLUME.EXTRACT VOLUME.UPLOAD VOLUME.MIGRATE
  VOLUME.RESIZE VOLUME.DETAIL.UPDATE VOLUME.DETAIL.ADD VOLUME.DETAIL.REMOVE VOLUME.UPDATE VOLUME.DESTROY
  VOLUME.RECOVER VOLUME.CHANGE.DISK.OFFERING
  DOMAIN.CREATE DOMAIN.DELETE DOMAIN.UPDATE
  SNAPSHOT.CREATE SNAPSHOT.ON_PRIMARY SNAPSHOT.OFF_PRIMARY SNAPSHOT.DELETE SNAPSHOT.REVERT SNAPSHOTPOLICY.CREATE
  SNAPSHOTPOLICY.UPDATE SNAPSHOTPOLICY.DELETE
  ISO.CREATE ISO.UPDATE ISO.DELETE ISO.COPY ISO.ATTACH ISO.DETACH ISO.EXTRACT ISO.UPLOAD
  SSVM.CREATE SSVM.DESTROY SSVM.START SSVM.STOP SSVM.REBOOT SSVM.HA SSVM.DIAGNOSTICS
  SERVICE.OFFERING.CREATE SERVICE.OFFERING.EDIT SERVICE.OFFERING.DELETE
  DISK.OFFERING.CREATE DISK.OFFERING.EDIT DISK.OFFERING.DELETE
  NETWORK.OFFERING.CREATE NETWORK.OFFERING.ASSIGN NETWORK.OFFERING.EDIT NETWORK.OFFERING.REMOVE
  NETWORK.OFFERING.DELETE
  POD.CREATE POD.EDIT POD.DELETE
  ZONE.CREATE ZONE.EDIT ZONE.DELETE
  VLAN.IP.RANGE.CREATE VLAN.IP.RANGE.DELETE VLAN.IP.RANGE.DEDICATE VLAN.IP.RANGE.RELEASE VLAN.IP.RANGE.UPDATE
  MANAGEMENT.IP.RANGE.CREATE MANAGEMENT.IP.RANGE.DELETE MANAGEMENT.IP.RANGE.UPDATE
  GUEST.IP6.PREFIX.CREATE GUEST.IP6.PREFIX.DELETE
  STORAGE.IP.RANGE.CREATE STORAGE.IP.RANGE.DELETE STORAGE.IP.RANGE.UPDATE
  IMAGE.STORE.MIGRATE.DATA
  CONFIGURATION.VALUE.EDIT
  SG.AUTH.INGRESS SG.REVOKE.INGRESS SG.AUTH.EGRESS SG.REVOKE.EGRESS SG.CREATE SG.DELETE SG.ASSIGN SG.REMOVE
  SG.UPDATE
  HOST.RECONNECT
  HOST.DECLARE.DEGRADED HOST.CANCEL.DEGRADED
  HOST.OOBM.ENABLE HOST.OOBM.DISABLE HOST.OOBM.CONFIGURE HOST.OOBM.ACTION HOST.OOBM.CHANGEPASSWORD
  HOST.OOBM.POWERSTATE.TRANSITION
  HA.RESOURCE.ENABLE HA.RESOURCE.DISABLE HA.RESOURCE.CONFIGURE HA.STATE.TRANSITION
  MAINT.CANCEL MAINT.CANCEL.PS MAINT.PREPARE MAINT.PREPARE.PS
  ENABLE.PS DISABLE.PS SYNC.STORAGE.POOL
  VPN.REMOTE.ACCESS.CREATE VPN.REMOTE.ACCESS.DESTROY VPN.REMOTE.ACCESS.UPDATE VPN.USER.ADD VPN.USER.REMOVE
  VPN.S2S.VPN.GATEWAY.CREATE VPN.S2S.VPN.GATEWAY.DELETE VPN.S2S.VPN.GATEWAY.UPDATE
  VPN.S2S.CUSTOMER.GATEWAY.CREATE VPN.S2S.CUSTOMER.GATEWAY.DELETE VPN.S2S.CUSTOMER.GATEWAY.UPDATE
  VPN.S2S.CONNECTION.CREATE VPN.S2S.CONNECTION.DELETE VPN.S2S.CONNECTION.RESET VPN.S2S.CONNECTION.UPDATE
  NETWORK.RESTART
  UPLOAD.CUSTOM.CERTIFICATE
  STATICNAT.ENABLE STATICNAT.DISABLE
  ZONE.VLAN.ASSIGN ZONE.VLAN.RELEASE
  PROJECT.CREATE PROJECT.UPDATE PROJECT.DELETE PROJECT.ACTIVATE PROJECT.SUSPEND PROJECT.ACCOUNT.ADD
  PROJECT.USER.ADD PROJECT.INVITATION.UPDATE PROJECT.INVITATION.REMOVE PROJECT.ACCOUNT.REMOVE
  PROJECT.USER.REMOVE
  NETWORK.ELEMENT.CONFIGURE
  PHYSICAL.NETWORK.CREATE PHYSICAL.NETWORK.DELETE PHYSICAL.NETWORK.UPDATE
  SERVICE.PROVIDER.CREATE SERVICE.PROVIDER.DELETE SERVICE.PROVIDER.UPDATE
  TRAFFIC.TYPE.CREATE TRAFFIC.TYPE.DELETE TRAFFIC.TYPE.UPDATE
  PHYSICAL.LOADBALANCER.ADD PHYSICAL.LOADBALANCER.DELETE PHYSICAL.LOADBALANCER.CONFIGURE
  PHYSICAL.NCC.ADD PHYSICAL.NCC.DELETE
  SWITCH.MGMT.ADD SWITCH.MGMT.DELETE SWITCH.MGMT.CONFIGURE SWITCH.MGMT.ENABLE SWITCH.MGMT.DISABLE
  PHYSICAL.FIREWALL.ADD PHYSICAL.FIREWALL.DELETE PHYSICAL.FIREWALL.CONFIGURE
  VPC.CREATE VPC.UPDATE VPC.DELETE VPC.RESTART
  NETWORK.ACL.CREATE NETWORK.ACL.DELETE NETWORK.ACL.REPLACE NETWORK.ACL.UPDATE NETWORK.ACL.ITEM.CREATE
  NETWORK.ACL.ITEM.UPDATE NETWORK.ACL.ITEM.DELETE
  IPV6.FIREWALL.RULE.CREATE IPV6.FIREWALL.RULE.UPDATE IPV6.FIREWALL.RULE.DELETE
  VPC.OFFERING.CREATE VPC.OFFERING.UPDATE VPC.OFFERING.DELETE
  PRIVATE.GATEWAY.CREATE PRIVATE.GATEWAY.DELETE
  STATIC.ROUTE.CREATE STATIC.ROUTE.DELETE
  CREATE_TAGS DELETE_TAGS
  UPLOAD.RESOURCE.ICON DELETE.RESOURCE.ICON
  CREATE_RESOURCE_DETAILS DELETE_RESOURCE_DETAILS
  VMSNAPSHOT.CREATE VMSNAPSHOT.DELETE VMSNAPSHOT.ON_PRIMARY VMSNAPSHOT.OFF_PRIMARY VMSNAPSHOT.REVERTTO
  BACKUP.IMPORT.OFFERING BACKUP.OFFERING.ASSIGN BACKUP.OFFERING.REMOVE BACKUP.CREATE BACKUP.RESTORE
  BACKUP.DELETE BACKUP.RESTORE.VOLUME.TO.VM BACKUP.SCHEDULE.CONFIGURE BACKUP.SCHEDULE.DELETE BACKUP.USAGE.METRIC
  BACKUP.OFFERING.EDIT
  PHYSICAL.NVPCONTROLLER.ADD PHYSICAL.NVPCONTROLLER.DELETE PHYSICAL.NVPCONTROLLER.CONFIGURE
  PHYSICAL.OVSCONTROLLER.ADD PHYSICAL.OVSCONTROLLER.DELETE
  COUNTER.CREATE COUNTER.DELETE CONDITION.CREATE CONDITION.DELETE CONDITION.UPDATE AUTOSCALEPOLICY.CREATE
  AUTOSCALEPOLICY.UPDATE AUTOSCALEPOLICY.DELETE AUTOSCALEVMPROFILE.CREATE AUTOSCALEVMPROFILE.DELETE
  AUTOSCALEVMPROFILE.UPDATE AUTOSCALEVMGROUP.CREATE AUTOSCALEVMGROUP.DELETE AUTOSCALEVMGROUP.UPDATE
  AUTOSCALEVMGROUP.ENABLE AUTOSCALEVMGROUP.DISABLE AUTOSCALEVMGROUP.SCALEDOWN AUTOSCALEVMGROUP.SCALEUP
  PHYSICAL.DHCP.ADD PHYSICAL.DHCP.DELETE PHYSICAL.PXE.ADD PHYSICAL.PXE.DELETE BAREMETAL.RCT.ADD
  BAREMETAL.RCT.DELETE BAREMETAL.PROVISION.DONE
  AG.CREATE AG.DELETE AG.ASSIGN AG.REMOVE VM.AG.UPDATE
  INTERNALLBVM.START INTERNALLBVM.STOP
  HOST.RESERVATION.RELEASE
  GUESTVLANRANGE.DEDICATE GUESTVLANRANGE.RELEASE
  PORTABLE.IP.RANGE.CREATE PORTABLE.IP.RANGE.DELETE PORTABLE.IP.TRANSFER
  DEDICATE.RESOURCE DEDICATE.RESOURCE.RELEASE
  VM.RESERVATION.CLEANUP
  UCS.ASSOCIATEPROFILE
  MIGRATE.PREPARE.SS
  ALERT.GENERATE
  PHYSICAL.ODLCONTROLLER.ADD PHYSICAL.ODLCONTROLLER.DELETE PHYSICAL.ODLCONTROLLER.CONFIGURE
  GUEST.OS.ADD GUEST.OS.REMOVE GUEST.OS.UPDATE GUEST.OS.MAPPING.ADD GUEST.OS.MAPPING.REMOVE
  GUEST.OS.MAPPING.UPDATE
  NIC.SECONDARY.IP.ASSIGN NIC.SECONDARY.IP.UNASSIGN NIC.SECONDARY.IP.CONFIGURE EXTERNAL.DHCP.VM.IP.FETCH
  USAGE.REMOVE.USAGE.RECORDS
  NETSCALER.SERVICEPACKAGE.ADD NETSCALER.SERVICEPACKAGE.DELETE
  NETSCALERVM.START NETSCALERVM.STOP
  ANNOTATION.CREATE ANNOTATION.REMOVE
  TEMPLATE.DIRECT.DOWNLOAD.FAILURE ISO.DIRECT.DOWNLOAD.FAILURE
  SYSTEM.VM.DIAGNOSTICS
  SYSTEM.ROLLING.MAINTENANCE HOST.ROLLING.MAINTENANCE CLUSTER.ROLLING.MAINTENANCE POD.ROLLING.MAINTENANCE
  ZONE.ROLLING.MAINTENANCE
  IMPORT.VCENTER.STORAGE.POLICIES
  LIVE.PATCH.SYSTEM.VM
`
  .trim()
  .split(/\s+/);

/** Upstream's ApiCommandResourceType names: what `resourcetype` may say (matched case-sensitively). */
const RESOURCE_TYPES = new Set(
  `None VirtualMachine DomainRouter Volume ConsoleProxy Snapshot Backup Template Iso SystemVm Host StoragePool
  ImageStore IpAddress PortableIpAddress SecurityGroup PhysicalNetwork TrafficType PhysicalNetworkServiceProvider
  FirewallRule Account User PrivateGateway StaticRoute Counter Condition AutoScalePolicy AutoScaleVmProfile
  AutoScaleVmGroup GlobalLoadBalancerRule LoadBalancerRule AffinityGroup InternalLbVm DedicatedGuestVlanRange GuestOs
  GuestOsMapping Network NetworkAcl NetworkAclItem Project Domain DiskOffering ServiceOffering NetworkOffering
  VpcOffering BackupOffering Zone`.split(/\s+/),
);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Upstream's EventResponse, in its field order; `archived` is present only when true. */
export function renderEvent(event: EventRecord): Record<string, unknown> {
  return {
    id: event.id,
    username: event.username,
    type: event.type,
    level: event.level,
    description: event.description,
    account: event.accountName,
    domainid: event.domainId,
    domain: event.domainName,
    domainpath: event.domainPath,
    ...(event.resourceId && { resourceid: event.resourceId }),
    ...(event.resourceType && { resourcetype: event.resourceType }),
    created: event.created,
    state: event.state,
    ...(event.parentId && { parentid: event.parentId }),
    ...(event.archived && { archived: true }),
  };
}

const createdAt = (event: EventRecord) => cloudstackMillis(event.created);
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Upstream's created-date condition: between both bounds, or from the start, or up to the end. */
function inRange(event: EventRecord, start: number | undefined, end: number | undefined): boolean {
  const at = createdAt(event);
  return (start === undefined || at >= start) && (end === undefined || at <= end);
}

const listEvents = defineCommand({
  name: 'listEvents',
  description: 'A command to list events.',
  params: {
    ...listParams,
    ...scopeParams,
    id: param.uuid('the ID of the event').optional(),
    duration: param.integer('the duration of the event').optional(),
    enddate: param.date('the end date range of the list you want to retrieve (use format "yyyy-MM-dd" or the new format "yyyy-MM-dd HH:mm:ss")').optional(),
    entrytime: param.integer('the time the event was entered').optional(),
    level: param.string('the event level (INFO, WARN, ERROR)').optional(),
    startdate: param.date('the start date range of the list you want to retrieve (use format "yyyy-MM-dd" or the new format "yyyy-MM-dd HH:mm:ss")').optional(),
    type: param.string('the event type (see event types)').optional(),
    startid: param.uuid('the parent/start ID of the event, when provided this will list all the events with the start/parent ID including the parent event').optional(),
    resourceid: param.string('the ID of the resource associated with the event').optional(),
    resourcetype: param.string('the type of the resource associated with the event').optional(),
    archived: param.boolean('true to list archived events otherwise false').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    const api = 'listevents';
    const start = params.startdate === undefined ? undefined : parseDateParam(params.startdate, 'start', api);
    const end = params.enddate === undefined ? undefined : parseDateParam(params.enddate, 'end', api);
    if (params.resourcetype !== undefined && !RESOURCE_TYPES.has(params.resourcetype)) throw new InvalidParameter('Invalid resourcetype');
    if (params.resourceid !== undefined) {
      if (params.resourcetype === undefined) throw new InvalidParameter('resourceid parameter must be used with resourcetype parameter');
      if (!UUID.test(params.resourceid)) throw new InvalidParameter('Invalid resourceid');
    }
    for (const name of ['id', 'startid'] as const) {
      const value = params[name];
      if (value !== undefined && !(await getEvent(value.toLowerCase()))) throw noSuchEntity(api, name, value);
    }
    const scope = await ownedScope(caller, params);
    // Upstream lists nothing when both entrytime and duration are given (its query is a stub).
    const events =
      params.entrytime !== undefined && params.duration !== undefined
        ? []
        : (await listEventsUnder(scope.tree, scope.accountId))
            .filter((event) => inScope(scope, event))
            .filter((event) => params.id === undefined || same(event.id, params.id))
            .filter((event) => params.startid === undefined || same(event.id, params.startid) || (event.parentId !== undefined && same(event.parentId, params.startid)))
            .filter((event) => params.type === undefined || same(event.type, params.type))
            .filter((event) => params.level === undefined || same(event.level, params.level))
            .filter((event) => matchesKeyword(params.keyword, event.type, event.description, event.level))
            .filter((event) => inRange(event, start, end))
            .filter((event) => params.resourcetype === undefined || event.resourceType === params.resourcetype)
            .filter((event) => params.resourceid === undefined || (event.resourceId !== undefined && same(event.resourceId, params.resourceid)))
            // Asking for one event by id shows it archived or not; otherwise `archived` chooses.
            .filter((event) => params.id !== undefined || event.archived === Boolean(params.archived))
            .sort(newestFirst);
    return { body: listResponse('event', events, params, settings, renderEvent) };
  },
});

const listEventTypes = defineCommand({
  name: 'listEventTypes',
  description: 'List Event Types',
  params: {},
  roles: ALL_ROLES,
  handler: async () => ({ body: listBody('eventtype', EVENT_TYPES.map((name) => ({ name }))) }),
});

/** The parameters of archiveEvents/deleteEvents and archiveAlerts/deleteAlerts. */
export const selectionParams = (noun: 'event' | 'alert', verb: string) => ({
  ids: param.list(param.uuid(`${noun} id`), `the IDs of the ${noun}s`).optional(),
  enddate: param.date(`end date range to ${verb} ${noun}s (including) this date (use format "yyyy-MM-dd" or the new format "yyyy-MM-ddThh:mm:ss")`).optional(),
  startdate: param.date(`start date range to ${verb} ${noun}s (including) this date (use format "yyyy-MM-dd" or the new format "yyyy-MM-ddThh:mm:ss")`).optional(),
  type: param.string(`${verb} by ${noun} type`).optional(),
});

export interface Selection {
  ids?: string[];
  enddate?: string;
  startdate?: string;
  type?: string;
}

/**
 * Checks an archive/delete selection as upstream does (something must be named; startdate needs
 * enddate; every named id must exist) and gives its ids in lower case and its date bounds.
 */
export async function selectionBounds(params: Selection, api: string, required: string, exists: (id: string) => Promise<unknown>) {
  if (params.ids === undefined && params.type === undefined && params.enddate === undefined) throw new InvalidParameter(required);
  if (params.startdate !== undefined && params.enddate === undefined) {
    throw new InvalidParameter('enddate must be specified with startdate parameter');
  }
  const end = params.enddate === undefined ? undefined : parseDateParam(params.enddate, 'end', api);
  const start = params.startdate === undefined ? undefined : parseDateParam(params.startdate, 'start', api);
  const ids = params.ids?.map((id) => id.toLowerCase());
  for (const [index, id] of (ids ?? []).entries()) {
    if (!(await exists(id))) throw noSuchEntity(api, 'ids', params.ids![index]);
  }
  return { ids, start, end };
}

/**
 * The events archiveEvents or deleteEvents acts on, as upstream's listToArchiveOrDeleteEvents: not
 * yet archived, of the caller's account (a user) or of any account in the caller's domain subtree
 * (admins), matching every filter given. Throws `failure` (530) when some of `ids` are not among
 * them, so nothing changes unless every named event may be touched.
 */
async function selectEvents(caller: Caller, params: Selection, api: string, failure: string): Promise<EventRecord[]> {
  const { ids, start, end } = await selectionBounds(params, api, 'either ids, type or enddate must be specified', getEvent);
  const user = !isRootAdmin(caller) && !isDomainAdmin(caller);
  const candidates = await listEventsUnder(caller.domain.tree, user ? caller.account.id : undefined);
  const chosen = candidates
    .filter((event) => !event.archived)
    .filter((event) => (user ? event.accountId === caller.account.id : event.domainTree.startsWith(caller.domain.tree)))
    .filter((event) => ids === undefined || ids.includes(event.id.toLowerCase()))
    .filter((event) => params.type === undefined || same(event.type, params.type))
    .filter((event) => inRange(event, start, end));
  if (ids !== undefined && chosen.length < new Set(ids).size) throw new InternalError(failure);
  return chosen;
}

const archiveEvents = defineCommand({
  name: 'archiveEvents',
  description: 'Archive one or more events.',
  params: selectionParams('event', 'archive'),
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const events = await selectEvents(caller, params, 'archiveevents', 'Unable to archive Events, one or more parameters has invalid values');
    for (const event of events) await archiveEvent(event.id);
    return { body: { success: true } };
  },
});

const deleteEvents = defineCommand({
  name: 'deleteEvents',
  description: 'Delete one or more events.',
  params: selectionParams('event', 'delete'),
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const events = await selectEvents(caller, params, 'deleteevents', 'Unable to delete Events, one or more parameters has invalid values');
    for (const event of events) await deleteEvent(event.id);
    return { body: { success: true } };
  },
});

export const eventCommands = [listEvents, listEventTypes, archiveEvents, deleteEvents];
