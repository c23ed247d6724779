// Small, typed access to the inventory table. Records are stored with their keys; callers get the
// record without them.
import { BatchGetCommand, GetCommand, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { dynamo, env } from '../aws.ts';
import { TABLE_NAME_VARIABLE, tableSchema, type IndexName } from './table.ts';

export const tableName = () => env(TABLE_NAME_VARIABLE);

const KEY_ATTRIBUTES = new Set<string>([
  tableSchema.partitionKey,
  tableSchema.sortKey,
  ...tableSchema.indexes.flatMap((index) => [index.partitionKey, index.sortKey]),
]);

export function withoutKeys<T>(item: Record<string, unknown>): T {
  const record: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(item)) if (!KEY_ATTRIBUTES.has(name)) record[name] = value;
  return record as T;
}

export async function getItem<T>(pk: string, sk: string): Promise<T | undefined> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: { pk, sk } }));
  return Item ? withoutKeys<T>(Item) : undefined;
}

/** Several items in one round trip (up to 100), consistently read; undefined where one is missing. */
export async function getItems<T extends unknown[]>(keys: { [K in keyof T]: { pk: string; sk: string } }): Promise<{ [K in keyof T]: T[K] | undefined }> {
  const found = new Map<string, Record<string, unknown>>();
  let request: Record<string, { Keys: { pk: string; sk: string }[]; ConsistentRead: boolean }> | undefined = {
    [tableName()]: { Keys: keys as { pk: string; sk: string }[], ConsistentRead: true },
  };
  while (request && Object.keys(request).length > 0) {
    const { Responses, UnprocessedKeys } = await dynamo().send(new BatchGetCommand({ RequestItems: request }));
    for (const item of Responses?.[tableName()] ?? []) found.set(`${item.pk}\n${item.sk}`, item);
    request = UnprocessedKeys as typeof request;
  }
  return keys.map((key) => {
    const item = found.get(`${key.pk}\n${key.sk}`);
    return item ? withoutKeys(item) : undefined;
  }) as { [K in keyof T]: T[K] | undefined };
}

export interface IndexQuery {
  index: IndexName;
  partition: string;
  /** Only sort keys that start with this. */
  prefix?: string;
  descending?: boolean;
}

/** Every item of one index partition (all pages), optionally under a sort-key prefix. */
export async function queryIndex<T>(query: IndexQuery): Promise<T[]> {
  return (await queryIndexEntries<T>(query)).map((entry) => entry.item);
}

/** As queryIndex, with each item's index sort key. */
export async function queryIndexEntries<T>({ index, partition, prefix, descending }: IndexQuery): Promise<{ sortKey: string; item: T }[]> {
  const { partitionKey, sortKey } = tableSchema.indexes.find((i) => i.name === index)!;
  const input: QueryCommandInput = {
    TableName: tableName(),
    IndexName: index,
    KeyConditionExpression: prefix ? '#pk = :pk AND begins_with(#sk, :prefix)' : '#pk = :pk',
    ExpressionAttributeNames: prefix ? { '#pk': partitionKey, '#sk': sortKey } : { '#pk': partitionKey },
    ExpressionAttributeValues: prefix ? { ':pk': partition, ':prefix': prefix } : { ':pk': partition },
    ScanIndexForward: !descending,
  };
  const entries: { sortKey: string; item: T }[] = [];
  do {
    const page = await dynamo().send(new QueryCommand(input));
    for (const item of page.Items ?? []) entries.push({ sortKey: String(item[sortKey]), item: withoutKeys<T>(item) });
    input.ExclusiveStartKey = page.LastEvaluatedKey;
  } while (input.ExclusiveStartKey);
  return entries;
}

/** True when a write failed on its condition (or a transaction on one of its conditions). */
export function isConditionFailure(error: unknown): boolean {
  const name = (error as Error)?.name;
  return name === 'ConditionalCheckFailedException' || name === 'TransactionCanceledException';
}
