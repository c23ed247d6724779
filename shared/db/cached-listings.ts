// Per-process copies of the identity listings (domains, accounts, users), kept honest by a version
// counter: every write to those records adds 1 to it, and a copy is used only while the counter
// still reads as when the copy was loaded. A list call then costs one consistent GetItem instead
// of reading every account and user. Copies also expire after MAX_AGE_MS, which bounds how long a
// copy loaded while an index still lagged behind the table (DynamoDB's indexes are eventually
// consistent) can be served.
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../aws.ts';
import { queryIndexEntries, tableName } from './items.ts';

const VERSION_KEY = { pk: 'VERSION', sk: 'IDENTITY' };
const MAX_AGE_MS = 2_000;

interface Listing {
  entries: readonly { sortKey: string; item: unknown }[];
}

/** The newest load of each partition: the version it was started at, and the load itself. */
const listings = new Map<string, { version: number; startedAt: number; listing: Promise<Listing> }>();

async function currentVersion(): Promise<number> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: VERSION_KEY, ConsistentRead: true }));
  return Number(Item?.version ?? 0);
}

/** Call after every write to a domain, account or user. */
export async function identityChanged(): Promise<void> {
  await dynamo().send(
    new UpdateCommand({
      TableName: tableName(),
      Key: VERSION_KEY,
      UpdateExpression: 'ADD version :one',
      ExpressionAttributeValues: { ':one': 1 },
    }),
  );
}

/** The items of a gsi1 partition whose sort key starts with `prefix`, in sort-key order; frozen. */
export async function cachedListing<T>(partition: string, prefix = ''): Promise<T[]> {
  const version = await currentVersion();
  let known = listings.get(partition);
  if (!known || known.version < version || Date.now() - known.startedAt > MAX_AGE_MS) {
    // One load serves every caller that asks while it runs.
    known = { version, startedAt: Date.now(), listing: load(partition) };
    listings.set(partition, known);
    known.listing.catch(() => listings.delete(partition));
  }
  const { entries } = await known.listing;
  return entries.filter((entry) => entry.sortKey.startsWith(prefix)).map((entry) => entry.item as T);
}

async function load(partition: string): Promise<Listing> {
  const entries = await queryIndexEntries<object>({ index: 'gsi1', partition });
  for (const entry of entries) Object.freeze(entry.item);
  return { entries };
}
