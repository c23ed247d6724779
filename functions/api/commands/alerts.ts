// listAlerts, archiveAlerts and deleteAlerts (upstream's ListAlertsCmd, ArchiveAlertsCmd and
// DeleteAlertsCmd with ManagementServerImpl.searchForAlerts and AlertDaoImpl's rules). Alerts are
// the operator's: Admins (and Resource Admins, for listing) see every zone's. Archiving and deleting
// record no event, as upstream records none.
import { InternalError, InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { archiveAlert, deleteAlert, getAlert, listAlertRecords, type Alert } from '../../../shared/db/alerts.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { noSuchEntity } from '../validate.ts';
import { parseEventDate } from './events.ts';
import { INFRA_READERS } from './zones.ts';

/** Upstream's AlertResponse, in its field order. */
export function renderAlert(alert: Alert) {
  return { id: alert.id, type: alert.type, name: alert.name, description: alert.subject, sent: alert.lastSent };
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
const createdAt = (alert: Alert) => Date.parse(alert.created.replace(/\+0000$/, 'Z'));

const listAlerts = defineCommand({
  name: 'listAlerts',
  description: 'Lists all alerts.',
  params: {
    ...listParams,
    id: param.uuid('the ID of the alert').optional(),
    type: param.string('list by alert type').optional(),
    name: param.string('list by alert name').optional(),
  },
  roles: INFRA_READERS,
  handler: async ({ params, settings }) => {
    if (params.id !== undefined && !(await getAlert(params.id.toLowerCase()))) throw noSuchEntity('listAlerts', 'id', params.id);
    const alerts = (await listAlertRecords())
      .filter((alert) => !alert.archived)
      .filter((alert) => params.id === undefined || same(alert.id, params.id))
      // Upstream compares the type column (a number) with the text given.
      .filter((alert) => params.type === undefined || String(alert.type) === params.type.trim())
      .filter((alert) => params.name === undefined || same(alert.name, params.name))
      .filter((alert) => matchesKeyword(params.keyword, alert.subject));
    return { body: listResponse('alert', alerts, params, settings, renderAlert) };
  },
});

const selectionParams = (verb: string) => ({
  ids: param.list(param.uuid('alert id'), 'the IDs of the alerts').optional(),
  enddate: param.date(`end date range to ${verb} alerts (including) this date (use format "yyyy-MM-dd" or the new format "yyyy-MM-ddThh:mm:ss")`).optional(),
  startdate: param.date(`start date range to ${verb} alerts (including) this date (use format "yyyy-MM-dd" or the new format "yyyy-MM-ddThh:mm:ss")`).optional(),
  type: param.string(`${verb} by alert type`).optional(),
});

interface Selection {
  ids?: string[];
  enddate?: string;
  startdate?: string;
  type?: string;
}

/**
 * The alerts archiveAlerts or deleteAlerts acts on, as upstream's AlertDaoImpl: not yet archived,
 * matching every filter given (created up to the end date, or between both dates). Throws `failure`
 * (530) when some of `ids` are not among them, so nothing changes unless every named alert may be.
 */
async function selectAlerts(params: Selection, api: string, failure: string): Promise<Alert[]> {
  if (params.ids === undefined && params.type === undefined && params.enddate === undefined) {
    throw new InvalidParameter('either ids, type, startdate or enddate must be specified');
  }
  if (params.startdate !== undefined && params.enddate === undefined) throw new InvalidParameter('enddate must be specified with startdate parameter');
  const end = params.enddate === undefined ? undefined : parseEventDate(params.enddate, 'end', api);
  const start = params.startdate === undefined ? undefined : parseEventDate(params.startdate, 'start', api);
  const ids = params.ids?.map((id) => id.toLowerCase());
  for (const [index, id] of (ids ?? []).entries()) {
    if (!(await getAlert(id))) throw noSuchEntity(api, 'ids', params.ids![index]);
  }
  const chosen = (await listAlertRecords())
    .filter((alert) => !alert.archived)
    .filter((alert) => ids === undefined || ids.includes(alert.id.toLowerCase()))
    .filter((alert) => params.type === undefined || String(alert.type) === params.type.trim())
    .filter((alert) => (start === undefined || createdAt(alert) >= start) && (end === undefined || createdAt(alert) <= end));
  if (ids !== undefined && chosen.length < new Set(ids).size) throw new InternalError(failure);
  return chosen;
}

const archiveAlerts = defineCommand({
  name: 'archiveAlerts',
  description: 'Archive one or more alerts.',
  params: selectionParams('archive'),
  roles: ADMINS,
  handler: async ({ params }) => {
    const alerts = await selectAlerts(params, 'archivealerts', 'Unable to archive Alerts, one or more parameters has invalid values');
    for (const alert of alerts) await archiveAlert(alert.id);
    return { body: { success: true } };
  },
});

const deleteAlerts = defineCommand({
  name: 'deleteAlerts',
  description: 'Delete one or more alerts.',
  params: selectionParams('delete'),
  roles: ADMINS,
  handler: async ({ params }) => {
    const alerts = await selectAlerts(params, 'deletealerts', 'Unable to delete Alerts, one or more parameters has invalid values');
    for (const alert of alerts) await deleteAlert(alert.id);
    return { body: { success: true } };
  },
});

export const alertCommands = [listAlerts, archiveAlerts, deleteAlerts];
