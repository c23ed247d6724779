// VM usage records, apart from the VM's own record so that reports never contend with its state
// changes, and kept only for vm.stats.max.retention.time through the table's TTL attribute (a reader
// also skips what has expired but not yet been deleted: DynamoDB deletes within days, DynamoDB Local
// never):
//
//   VMSTATS#<vm> / LATEST                     the running figures (shared/vm-stats.ts VmUsage)
//   VMSTATS#<vm> / AT#<ISO 8601 UTC time>     one history point (UsagePoint)
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { DomainUsage } from '../agent/protocol.ts';
import { dynamo } from '../aws.ts';
import { advanceUsage, type UsagePoint, type VmUsage } from '../vm-stats.ts';
import { getItems, isConditionFailure, tableName } from './items.ts';

/** The key of a VM's running figures, for readers that batch it with other records. */
export const vmUsageKey = (vmId: string) => ({ pk: `VMSTATS#${vmId}`, sk: 'LATEST' });
const latestKey = vmUsageKey;
const pointKey = (vmId: string, at: number) => ({ pk: `VMSTATS#${vmId}`, sk: `AT#${new Date(at).toISOString()}` });

export interface StatsRetention {
  /** vm.stats.interval (ms). */
  intervalMs: number;
  /** vm.stats.max.retention.time (minutes); 0 or less: kept for good. */
  retentionMinutes: number;
}

const expiry = (at: number, retention: StatsRetention) => (retention.retentionMinutes > 0 ? { expiresAt: Math.floor(at / 1000) + retention.retentionMinutes * 60 } : {});
const alive = (item: Record<string, unknown>, now: number) => typeof item.expiresAt !== 'number' || item.expiresAt * 1000 > now;

/**
 * Takes a reading of the VM's domain into its figures, and writes a history point when one is due.
 * Written on condition that the figures are still those read: two reports of one VM at once (an agent
 * failing over) count a reading once.
 */
export async function recordVmUsage(vmId: string, reading: DomainUsage, retention: StatsRetention): Promise<void> {
  const [current] = await getItems<[(VmUsage & { expiresAt?: number }) | undefined]>([latestKey(vmId)]);
  const advanced = advanceUsage(current, reading, retention.intervalMs);
  if (!advanced) return;
  const { usage, point } = advanced;
  try {
    await dynamo().send(
      new PutCommand({
        TableName: tableName(),
        Item: { ...latestKey(vmId), ...usage, ...expiry(reading.at, retention) },
        ...(current
          ? { ConditionExpression: '#last.#at = :at', ExpressionAttributeNames: { '#last': 'last', '#at': 'at' }, ExpressionAttributeValues: { ':at': current.last.at } }
          : { ConditionExpression: 'attribute_not_exists(pk)' }),
      }),
    );
  } catch (error) {
    if (isConditionFailure(error)) return;
    throw error;
  }
  if (point) await dynamo().send(new PutCommand({ TableName: tableName(), Item: { ...pointKey(vmId, point.at), ...point, ...expiry(point.at, retention) } }));
}

/** The running figures in an item read at vmUsageKey, unless they have expired. */
export const usageOfItem = (item: Record<string, unknown> | undefined, now = Date.now()): VmUsage | undefined =>
  item && alive(item, now) ? (item as unknown as VmUsage) : undefined;

/** The VM's history points between `from` and `to` (ms, both optional and inclusive), oldest first. */
export async function vmUsageHistory(vmId: string, range: { from?: number; to?: number } = {}, now = Date.now()): Promise<UsagePoint[]> {
  const points: UsagePoint[] = [];
  const from = `AT#${new Date(range.from ?? 0).toISOString()}`;
  const to = `AT#${range.to !== undefined ? new Date(range.to).toISOString() : '9'}`;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new QueryCommand({
        TableName: tableName(),
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: { ':pk': latestKey(vmId).pk, ':from': from, ':to': to },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) {
      if (!alive(item, now)) continue;
      const { pk: _pk, sk: _sk, expiresAt: _expires, ...point } = item;
      points.push(point as UsagePoint);
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return points;
}
