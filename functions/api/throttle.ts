// API throttling per account (api.throttling.*): a counter per account and fixed window, kept in
// the table so every Lambda instance counts together. Off by default, as upstream.
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ApiLimitExceeded } from '../../shared/cloudstack/errors.ts';
import { dynamo } from '../../shared/aws.ts';
import { tableName } from '../../shared/db/items.ts';
import type { Settings } from '../../shared/settings.ts';
import type { Caller } from './command.ts';

function window(name: string, windowSeconds: number) {
  const now = Date.now();
  const windowMs = windowSeconds * 1000;
  const windowStart = now - (now % windowMs);
  return { key: { pk: `COUNTER#${name}#${windowStart}`, sk: 'COUNTER' }, windowStart, windowMs, retryAfterMs: windowStart + windowMs - now };
}

/** The count of a windowed counter, without adding to it. */
export async function peekWindow(name: string, windowSeconds: number): Promise<{ count: number; retryAfterMs: number }> {
  const { key, retryAfterMs } = window(name, windowSeconds);
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: key }));
  return { count: Number(Item?.hits ?? 0), retryAfterMs };
}

/** Adds one to a windowed counter and returns the new count. */
export async function countInWindow(name: string, windowSeconds: number): Promise<{ count: number; retryAfterMs: number }> {
  const { key, windowStart, windowMs, retryAfterMs } = window(name, windowSeconds);
  const { Attributes } = await dynamo().send(
    new UpdateCommand({
      TableName: tableName(),
      Key: key,
      UpdateExpression: 'ADD hits :one SET expiresAt = :expires',
      ExpressionAttributeValues: { ':one': 1, ':expires': Math.ceil((windowStart + windowMs) / 1000) + 60 },
      ReturnValues: 'UPDATED_NEW',
    }),
  );
  return { count: Number(Attributes?.hits ?? 1), retryAfterMs };
}

export async function throttle(caller: Caller, settings: Settings): Promise<void> {
  if (!settings.boolean('api.throttling.enabled')) return;
  const { count, retryAfterMs } = await countInWindow(`api#${caller.account.id}`, settings.number('api.throttling.interval'));
  if (count > settings.number('api.throttling.max')) {
    throw new ApiLimitExceeded(`The given user has reached his/her account api limit, please retry after ${retryAfterMs} ms.`);
  }
}
