// Domains the hosts run that are not Mold's VMs: a VM deployed after the backup an inventory was restored
// from, or one made beside Mold with virsh. Mold never destroys them: each report records them
// (UNMANAGED#<host> / DOMAIN#<uuid>, kept three report intervals after the last sighting by TTL), an
// alert says when one that carries a Mold instance name first appears (the restore case), and
// listUnmanagedInstances lists them per cluster, as upstream lists a KVM cluster's unmanaged domains.
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from './aws.ts';
import { ALERT_TYPES, createAlert } from './db/alerts.ts';
import type { Host } from './db/hosts.ts';
import { tableName } from './db/items.ts';
import { forEachConcurrently } from './concurrency.ts';
import { log } from './log.ts';
import { looksLikeInstanceName, powerOf, type DomainReport, type ReportedHost } from './vm-power-sync.ts';

export const UNMANAGED_ALERT_SUBJECT = 'Unmanaged VM found';

export interface UnmanagedDomain {
  hostId: string;
  clusterId: string;
  zoneId: string;
  name: string;
  uuid: string;
  state: DomainReport['state'];
  vcpus?: number;
  memoryKiB?: number;
  /** ms; the record goes three report intervals after the last one. */
  lastSeen: number;
}

const domainKey = (hostId: string, uuid: string) => ({ pk: `UNMANAGED#${hostId}`, sk: `DOMAIN#${uuid}` });

/** The alert's text for a domain that looks like one of Mold's VMs, but is not in the inventory. */
export function unmanagedAlertContent(domain: Pick<DomainReport, 'name' | 'uuid'>, host: Pick<Host, 'name'>): string {
  return `Domain ${domain.name} (uuid ${domain.uuid}) runs on host ${host.name} but no VM in Mold's inventory has that id and name (an inventory restored from before it was deployed?). It is left as it is; listUnmanagedInstances lists it.`;
}

/**
 * Records what a report shows of unmanaged domains on `hosts`; alerts once for each that appears with a
 * Mold instance name. Never throws: the next report tries again.
 */
export async function recordUnmanagedDomains(found: readonly { hostId: string; domain: DomainReport }[], hosts: ReadonlyMap<string, Host>, reportIntervalSeconds: number, now = Date.now()): Promise<void> {
  await forEachConcurrently(found, 16, async ({ hostId, domain }) => {
    const host = hosts.get(hostId);
    if (!host) return;
    try {
      const record: UnmanagedDomain = {
        hostId,
        clusterId: host.clusterId,
        zoneId: host.zoneId,
        name: domain.name,
        uuid: domain.uuid,
        state: domain.state,
        ...(domain.usage && { vcpus: domain.usage.vcpus }),
        ...(domain.usage?.memoryMaxKiB !== undefined && { memoryKiB: domain.usage.memoryMaxKiB }),
        lastSeen: now,
      };
      const { Attributes: before } = await dynamo().send(
        new PutCommand({
          TableName: tableName(),
          Item: { ...domainKey(hostId, domain.uuid), ...record, expiresAt: Math.ceil(now / 1000) + 3 * reportIntervalSeconds },
          ReturnValues: 'ALL_OLD',
        }),
      );
      const seenBefore = before !== undefined && typeof before.expiresAt === 'number' && before.expiresAt * 1000 > now;
      if (!seenBefore && looksLikeInstanceName(domain.name)) {
        await createAlert({
          alertType: ALERT_TYPES.SYNC,
          subject: UNMANAGED_ALERT_SUBJECT,
          content: unmanagedAlertContent(domain, host),
          zoneId: host.zoneId,
          podId: host.podId,
          clusterId: host.clusterId,
          resourceId: host.id,
          resourceType: 'Host',
        });
      }
    } catch (error) {
      log.warn('recording an unmanaged domain failed', { hostId, uuid: domain.uuid, error: String(error) });
    }
  });
}

/** The unmanaged domains last reported on the hosts, less those not seen for three report intervals. */
export async function listUnmanagedDomains(hostIds: readonly string[], now = Date.now()): Promise<UnmanagedDomain[]> {
  const pages = await Promise.all(
    hostIds.map(async (hostId) => {
      const found: UnmanagedDomain[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const page = await dynamo().send(
          new QueryCommand({ TableName: tableName(), KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `UNMANAGED#${hostId}` }, ExclusiveStartKey: start }),
        );
        for (const item of page.Items ?? []) if (typeof item.expiresAt === 'number' && item.expiresAt * 1000 > now) found.push(item as UnmanagedDomain);
        start = page.LastEvaluatedKey;
      } while (start);
      return found;
    }),
  );
  return pages.flat();
}

/** Upstream's UnmanagedInstanceResponse.powerstate of a reported domain state. */
export function unmanagedPowerState(state: DomainReport['state']): 'PowerOn' | 'PowerOff' | 'PowerUnknown' {
  const power = powerOf(state);
  return power === 'on' ? 'PowerOn' : power === 'off' ? 'PowerOff' : 'PowerUnknown';
}
