// Events: the audit trail of every state-changing call (upstream's listEvents). Stored by the
// actor's domain tree and account, so scoping a listing is a key-prefix query.
import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { dynamo } from '../aws.ts';
import { getItem, queryIndex, tableName } from './items.ts';
import { cloudstackDate } from './jobs.ts';

/** Who did it: the user and the account and domain it belongs to. */
export interface Actor {
  userId: string;
  username: string;
  accountId: string;
  accountName: string;
  domainId: string;
  domainName: string;
  domainPath: string;
  domainTree: string;
}

/** The actor of a user, from its records. */
export function actorFor(
  user: { id: string; username: string },
  account: { id: string; name: string },
  domain: { id: string; name: string; path: string; tree: string },
): Actor {
  return {
    userId: user.id,
    username: user.username,
    accountId: account.id,
    accountName: account.name,
    domainId: domain.id,
    domainName: domain.name,
    domainPath: domain.path,
    domainTree: domain.tree,
  };
}

export type EventLevel = 'INFO' | 'WARN' | 'ERROR';
export type EventState = 'Created' | 'Scheduled' | 'Started' | 'Completed';

export interface EventRecord extends Actor {
  id: string;
  type: string;
  level: EventLevel;
  state: EventState;
  description: string;
  resourceId?: string;
  resourceType?: string;
  parentId?: string;
  archived: boolean;
  created: string;
  /** When it was recorded, to the millisecond (ISO 8601): orders events of the same second. */
  timestamp?: string;
}

const key = (id: string) => ({ pk: `EVENT#${id}`, sk: 'EVENT' });

export async function recordEvent(
  actor: Actor,
  event: Pick<EventRecord, 'type' | 'description'> & Partial<Pick<EventRecord, 'level' | 'state' | 'resourceId' | 'resourceType' | 'parentId'>>,
): Promise<EventRecord> {
  const now = new Date();
  const record: EventRecord = {
    ...actor,
    level: 'INFO',
    state: 'Completed',
    ...event,
    id: randomUUID(),
    archived: false,
    created: cloudstackDate(now),
    timestamp: now.toISOString(),
  };
  await dynamo().send(
    new PutCommand({
      TableName: tableName(),
      Item: { ...key(record.id), gsi1pk: 'EVENTS', gsi1sk: `${record.domainTree}${record.accountId}/${record.created}#${record.id}`, ...record },
    }),
  );
  return record;
}

export const getEvent = (id: string) => getItem<EventRecord>(key(id).pk, 'EVENT');

/** Newest first, as upstream orders listEvents (its created has seconds; the id breaks ties). */
export function newestFirst(a: EventRecord, b: EventRecord): number {
  const at = (event: EventRecord) => event.timestamp ?? event.created;
  return at(a) < at(b) ? 1 : at(a) > at(b) ? -1 : 0;
}

/** Events of the subtree at `tree` (or of one account), newest first. */
export function listEventsUnder(tree: string, accountId?: string): Promise<EventRecord[]> {
  return queryIndex<EventRecord>({ index: 'gsi1', partition: 'EVENTS', prefix: accountId ? `${tree}${accountId}/` : tree, descending: true });
}

export async function archiveEvent(id: string): Promise<void> {
  await dynamo().send(
    new UpdateCommand({ TableName: tableName(), Key: key(id), UpdateExpression: 'SET archived = :yes', ExpressionAttributeValues: { ':yes': true } }),
  );
}

export async function deleteEvent(id: string): Promise<void> {
  await dynamo().send(new DeleteCommand({ TableName: tableName(), Key: key(id) }));
}
