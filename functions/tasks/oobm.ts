// Task action of statemachines/oobm-command.asl.json: the out-of-band management switches. A zone or
// cluster switch is a field of its record (absent means on, as upstream's missing detail); a host's is
// its configuration's `enabled`. Turning one off puts the power state of every host it covers to
// Disabled (upstream's transitionPowerStateToDisabled); turning a host on does the same, as upstream,
// until the agent's background sync reads the BMC. Idempotent when retried.
import { z } from 'zod';
import { InternalError } from '../../shared/cloudstack/errors.ts';
import { getHost, listHostRecords, updateHostRecord, type Host } from '../../shared/db/hosts.ts';
import { getCluster, getZone, updateCluster, updateZone } from '../../shared/db/infrastructure.ts';

export const oobmActions = [
  z.object({
    action: z.literal('oobmCommand'),
    op: z.literal('switch'),
    args: z.object({ scope: z.enum(['Host', 'Cluster', 'Zone']), id: z.string(), enabled: z.boolean() }),
  }),
] as const;
export type OobmTask = z.infer<(typeof oobmActions)[number]>;

async function disablePowerStates(hosts: Host[]) {
  for (const host of hosts) {
    if (host.oobm && host.oobmpowerstate !== 'Disabled') await updateHostRecord(host.id, { oobmpowerstate: 'Disabled' });
  }
}

export async function runOobmAction(task: OobmTask): Promise<Record<string, unknown>> {
  const { scope, id, enabled } = task.args;
  const response = { outofbandmanagement: { enabled, status: true } };
  if (scope === 'Zone') {
    const zone = await getZone(id);
    if (!zone) throw new InternalError(`Unable to find zone by ID: ${id}`);
    await updateZone(zone, { oobmenabled: enabled });
    if (!enabled) await disablePowerStates(await listHostRecords({ zoneId: id }));
    return response;
  }
  if (scope === 'Cluster') {
    const cluster = await getCluster(id);
    if (!cluster) throw new InternalError(`Unable to find cluster by ID: ${id}`);
    await updateCluster(cluster, { oobmenabled: enabled });
    if (!enabled) await disablePowerStates(await listHostRecords({ clusterId: id }));
    return response;
  }
  const host = await getHost(id);
  if (!host) throw new InternalError(`Unable to find host by ID: ${id}`);
  if (!host.oobm) throw new InternalError('Out-of-band management is not configured for the host. Please configure the host before enabling/disabling it.');
  await updateHostRecord(host.id, { oobm: { ...host.oobm, enabled }, oobmpowerstate: 'Disabled' });
  return response;
}
