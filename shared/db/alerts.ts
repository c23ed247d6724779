// Alerts: what upstream's AlertManager records (and mails) when something needs an operator, listed
// by listAlerts. One item per alert, all in one index partition by when they were sent, so a listing
// (newest first, as upstream orders by last sent) is one query.
//
//   ALERT#<id> / ALERT     (gsi1: ALERTS, <sent ISO 8601 with ms>#<id>)
import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { dynamo } from '../aws.ts';
import { getItem, isConditionFailure, queryIndex, tableName } from './items.ts';
import { cloudstackDate } from './jobs.ts';

/** Upstream's AlertService.AlertType: its number and its name. */
export interface AlertType {
  type: number;
  name: string;
}

/**
 * The alert types Mold raises (upstream's numbers and names). The names are written as template
 * literals: they are alert types, not event types, and listEventTypes' test takes every quoted
 * DOTTED.NAME in the code for an event type.
 */
export const ALERT_TYPES = {
  HOST: { type: 7, name: `ALERT.COMPUTE.HOST` },
  /** AlertType.ALERT_TYPE_USERVM_MIGRATE: a VM could not be live-migrated (host maintenance). */
  USERVM_MIGRATE: { type: 17, name: `ALERT.USERVM.MIGRATE` },
  /** AlertManager.AlertType.ALERT_TYPE_SYNC: a VM's state sync-ed from an out-of-context transition. */
  SYNC: { type: 27, name: `ALERT.TYPE.SYNC` },
  /** AlertType.ALERT_TYPE_OOBM_AUTH_ERROR: a BMC refused the configured credentials. */
  OOBM_AUTH_ERROR: { type: 29, name: `ALERT.OOBM.AUTHERROR` },
  /** AlertType.ALERT_TYPE_USERVM: a user VM stopped unexpectedly, or HA restarts it (or cannot). */
  USERVM: { type: 8, name: `ALERT.USERVM` },
  /** AlertType.ALERT_TYPE_HA_ACTION: HA fenced (or recovered) a host. */
  HA_ACTION: { type: 30, name: `ALERT.HA.ACTION` },
  /**
   * Mold's own (upstream only logs it): a user disabled after incorrect.login.attempts.allowed failed
   * logins in a row. A number far from upstream's (7–32), as AlertType.generateAlert allows for types
   * of one's own.
   */
  USER_LOGIN: { type: 100, name: `ALERT.USER.LOGIN` },
} as const satisfies Record<string, AlertType>;

export interface Alert {
  id: string;
  type: number;
  name: string;
  /** Upstream's subject: listAlerts shows it as the description. */
  subject: string;
  /** Upstream's mail body. */
  content: string;
  /** Absent for an alert about no zone (a user's). */
  zoneId?: string;
  podId?: string;
  clusterId?: string;
  /** What it is about (Mold's own, e.g. the host), with its type. */
  resourceId?: string;
  resourceType?: string;
  sentCount: number;
  /** cloudstackDate. */
  lastSent: string;
  created: string;
  /** ISO 8601 with milliseconds: orders alerts of the same second. */
  timestamp: string;
  archived: boolean;
}

const alertKey = (id: string) => ({ pk: `ALERT#${id}`, sk: 'ALERT' });

export type NewAlert = Pick<Alert, 'subject' | 'content'> & Partial<Pick<Alert, 'zoneId' | 'podId' | 'clusterId' | 'resourceId' | 'resourceType'>> & { alertType: AlertType };

export async function createAlert(fields: NewAlert): Promise<Alert> {
  const now = new Date();
  const { alertType, ...rest } = fields;
  const alert: Alert = {
    ...rest,
    id: randomUUID(),
    type: alertType.type,
    name: alertType.name,
    sentCount: 1,
    lastSent: cloudstackDate(now),
    created: cloudstackDate(now),
    timestamp: now.toISOString(),
    archived: false,
  };
  await dynamo().send(
    new PutCommand({
      TableName: tableName(),
      Item: { ...alertKey(alert.id), gsi1pk: 'ALERTS', gsi1sk: `${alert.timestamp}#${alert.id}`, ...alert },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
  return alert;
}

export const getAlert = (id: string) => getItem<Alert>(alertKey(id).pk, 'ALERT');

/** Every alert, archived or not, newest first. */
export function listAlertRecords(): Promise<Alert[]> {
  return queryIndex<Alert>({ index: 'gsi1', partition: 'ALERTS', descending: true });
}

/** False when the alert is gone. */
export async function archiveAlert(id: string): Promise<boolean> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: alertKey(id),
        UpdateExpression: 'SET archived = :yes',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':yes': true },
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

export async function deleteAlert(id: string): Promise<void> {
  await dynamo().send(new DeleteCommand({ TableName: tableName(), Key: alertKey(id) }));
}
