// API throttling per account (api.throttling.*), as upstream's ApiRateLimitServiceImpl: a counter
// per account whose window opens with the account's first call and lasts the interval, kept in the
// table so every Lambda instance counts together. Root admins are exempt. Off by default.
// The same windowed counters count failed logins (functions/api/commands/session.ts).
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ApiLimitExceeded } from '../../shared/cloudstack/errors.ts';
import { dynamo } from '../../shared/aws.ts';
import { isConditionFailure, tableName } from '../../shared/db/items.ts';
import type { Settings } from '../../shared/settings.ts';
import type { Caller } from './command.ts';

export interface WindowCount {
  count: number;
  /** Milliseconds until the window closes (and the count starts again from nothing). */
  retryAfterMs: number;
}

const counterKey = (name: string) => ({ pk: `COUNTER#${name}`, sk: 'COUNTER' });

/** The count of a windowed counter, without adding to it; 0 once its window has closed. */
export async function peekWindow(name: string, windowSeconds: number): Promise<WindowCount> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: counterKey(name), ConsistentRead: true }));
  const now = Date.now();
  const windowEnd = Number(Item?.windowEnd ?? 0);
  if (!Item || windowEnd <= now) return { count: 0, retryAfterMs: windowSeconds * 1000 };
  return { count: Number(Item.hits ?? 0), retryAfterMs: windowEnd - now };
}

/**
 * Adds one to a windowed counter and returns the new count. A counter whose window has closed (or
 * that does not exist) starts again at 1 with a window of `windowSeconds` from now.
 */
export async function countInWindow(name: string, windowSeconds: number): Promise<WindowCount> {
  const key = counterKey(name);
  for (let attempt = 0; ; attempt++) {
    const now = Date.now();
    try {
      const { Attributes } = await dynamo().send(
        new UpdateCommand({
          TableName: tableName(),
          Key: key,
          UpdateExpression: 'ADD hits :one',
          ConditionExpression: 'windowEnd > :now',
          ExpressionAttributeValues: { ':one': 1, ':now': now },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { count: Number(Attributes?.hits ?? 1), retryAfterMs: Math.max(0, Number(Attributes?.windowEnd) - now) };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    // No open window: open one, unless a concurrent call just did (then count in that one).
    const windowEnd = now + windowSeconds * 1000;
    try {
      await dynamo().send(
        new PutCommand({
          TableName: tableName(),
          Item: { ...key, hits: 1, windowEnd, expiresAt: Math.ceil(windowEnd / 1000) + 60 },
          ConditionExpression: 'attribute_not_exists(pk) OR windowEnd <= :now',
          ExpressionAttributeValues: { ':now': now },
        }),
      );
      return { count: 1, retryAfterMs: windowEnd - now };
    } catch (error) {
      if (!isConditionFailure(error) || attempt >= 3) throw error;
    }
  }
}

/** Closes a windowed counter's window: its count starts again from nothing. */
export async function clearWindow(name: string): Promise<void> {
  await dynamo().send(new DeleteCommand({ TableName: tableName(), Key: counterKey(name) }));
}

export async function throttle(caller: Caller, settings: Settings): Promise<void> {
  if (!settings.boolean('api.throttling.enabled')) return;
  // Upstream: "Account ... is Root Admin, in this case, API limit does not apply."
  if (caller.role.type === 'Admin') return;
  const { count, retryAfterMs } = await countInWindow(`api#${caller.account.id}`, settings.number('api.throttling.interval'));
  if (count > settings.number('api.throttling.max')) {
    throw new ApiLimitExceeded(`The given user has reached his/her account api limit, please retry after [${retryAfterMs}] ms.`);
  }
}
