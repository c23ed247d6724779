// listAlerts, archiveAlerts and deleteAlerts (upstream's ListAlertsCmd, ArchiveAlertsCmd and
// DeleteAlertsCmd with ManagementServerImpl.searchForAlerts and AlertDaoImpl's rules). Alerts are
// the operator's: Admins (and Resource Admins, for listing) see every zone's. Archiving and deleting
// record no event, as upstream records none.
import { InternalError } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { archiveAlert, deleteAlert, getAlert, listAlertRecords, type Alert } from '../../../shared/db/alerts.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { noSuchEntity } from '../validate.ts';
import { selectionBounds, selectionParams, type Selection } from './events.ts';
import { INFRA_READERS } from './zones.ts';
import { cloudstackMillis } from '../../../shared/db/jobs.ts';

/** Upstream's AlertResponse, in its field order. */
export function renderAlert(alert: Alert) {
  return { id: alert.id, type: alert.type, name: alert.name, description: alert.subject, sent: alert.lastSent };
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
const createdAt = (alert: Alert) => cloudstackMillis(alert.created);

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

/**
 * The alerts archiveAlerts or deleteAlerts acts on, as upstream's AlertDaoImpl: not yet archived,
 * matching every filter given (created up to the end date, or between both dates). Throws `failure`
 * (530) when some of `ids` are not among them, so nothing changes unless every named alert may be.
 */
async function selectAlerts(params: Selection, api: string, failure: string): Promise<Alert[]> {
  const { ids, start, end } = await selectionBounds(params, api, 'either ids, type, startdate or enddate must be specified', getAlert);
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
  params: selectionParams('alert', 'archive'),
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
  params: selectionParams('alert', 'delete'),
  roles: ADMINS,
  handler: async ({ params }) => {
    const alerts = await selectAlerts(params, 'deletealerts', 'Unable to delete Alerts, one or more parameters has invalid values');
    for (const alert of alerts) await deleteAlert(alert.id);
    return { body: { success: true } };
  },
});

export const alertCommands = [listAlerts, archiveAlerts, deleteAlerts];
