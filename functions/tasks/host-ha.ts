// Task action of statemachines/ha-command.asl.json: the host HA commands' writes (upstream's
// HAManagerImpl.configureHA, enableHA, disableHA). configure sets the host's provider, enable and
// disable its switch; the cluster and zone switches are a field of their record (absent means on, as
// upstream's missing detail). The HA state is the sweeper's host HA pass's to move, except that a
// switch turned off puts the state of every host it covers to Disabled at once (upstream's
// transitionHAState(Disabled) in disableHA), so the answer and the listings are right without waiting
// for a pass. Every host write is conditional on the `ha` it was computed from (the pass writes it
// too) and is retried on a fresh read. Idempotent when retried.
import { z } from 'zod';
import { InternalError, InvalidParameter } from '../../shared/cloudstack/errors.ts';
import { getHost, listHostRecords, updateHostRecord, type Host } from '../../shared/db/hosts.ts';
import { getCluster, getZone, updateCluster, updateZone } from '../../shared/db/infrastructure.ts';
import { haNotConfigured, HOST_HA_PROVIDERS, type HostHaConfig } from '../../shared/host-ha-config.ts';
import { nextHaState } from '../../shared/host-ha.ts';

const configureArgs = z.object({ hostId: z.string(), provider: z.enum(Object.keys(HOST_HA_PROVIDERS) as [keyof typeof HOST_HA_PROVIDERS]) });
const switchArgs = z.object({ scope: z.enum(['Host', 'Cluster', 'Zone']), id: z.string(), enabled: z.boolean() });

// One action (the tasks' union is discriminated by `action`); each op's args are checked when it runs.
export const hostHaActions = [
  z.object({
    action: z.literal('haCommand'),
    op: z.enum(['configure', 'switch']),
    args: z.record(z.string(), z.unknown()),
  }),
] as const;
export type HostHaTask = z.infer<(typeof hostHaActions)[number]>;

/** A write the pass may race: tries again on a fresh read while the host's `ha` moves under it. */
const ATTEMPTS = 5;

/**
 * Sets a host's `ha` to what `change` makes of the current one, conditionally on that current one.
 * `change` answers undefined to leave the record as it is. Resolves the host as written (or as it
 * was); undefined when it is gone.
 */
async function changeHa(hostId: string, change: (ha: HostHaConfig | undefined) => HostHaConfig | undefined): Promise<Host | undefined> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const host = await getHost(hostId);
    if (!host) return undefined;
    const next = change(host.ha);
    if (!next) return host;
    const written = await updateHostRecord(hostId, { ha: next }, { ha: host.ha });
    if (written) return written;
  }
  throw new InternalError(`Failed to update the HA configuration of host ${hostId}: it kept changing; try again`);
}

/** `ha` switched off, its state Disabled from now (kept, with its time, when it already was). */
function disabled(ha: HostHaConfig, enabled: boolean): HostHaConfig {
  if (ha.state === 'Disabled') return { ...ha, enabled };
  return { ...ha, enabled, state: nextHaState(ha.state, 'Disabled'), since: new Date().toISOString() };
}

/** Every configured host of a cluster or zone switched off: its state Disabled, its own switch kept. */
async function disableStates(hosts: Host[]) {
  for (const host of hosts) {
    if (host.ha && host.ha.state !== 'Disabled') await changeHa(host.id, (ha) => (ha && ha.state !== 'Disabled' ? disabled(ha, ha.enabled) : undefined));
  }
}

export async function runHostHaAction(task: HostHaTask): Promise<Record<string, unknown>> {
  if (task.op === 'configure') {
    const { hostId, provider } = configureArgs.parse(task.args);
    // Configuring leaves the switch (off for a new configuration) and the state as they are.
    const host = await changeHa(hostId, (ha) => (ha ? (ha.provider === provider ? undefined : { ...ha, provider }) : { provider, enabled: false }));
    if (!host) throw new InternalError(`Unable to find host by ID: ${hostId}`);
    return { hostha: { hostid: host.id, haprovider: provider } };
  }
  const { scope, id, enabled } = switchArgs.parse(task.args);
  if (scope === 'Zone') {
    const zone = await getZone(id);
    if (!zone) throw new InternalError(`Unable to find zone by ID: ${id}`);
    await updateZone(zone, { haenabled: enabled });
    if (!enabled) await disableStates(await listHostRecords({ zoneId: id }));
    return { success: true };
  }
  if (scope === 'Cluster') {
    const cluster = await getCluster(id);
    if (!cluster) throw new InternalError(`Unable to find cluster by ID: ${id}`);
    await updateCluster(cluster, { haenabled: enabled });
    if (!enabled) await disableStates(await listHostRecords({ clusterId: id }));
    return { success: true };
  }
  let configured = true;
  const host = await changeHa(id, (ha) => {
    configured = Boolean(ha);
    if (!ha) return undefined;
    if (enabled) return ha.enabled ? undefined : { ...ha, enabled: true };
    return ha.enabled || ha.state !== 'Disabled' ? disabled(ha, false) : undefined;
  });
  if (!host) throw new InternalError(`Unable to find host by ID: ${id}`);
  if (!configured) throw new InvalidParameter(haNotConfigured(id));
  return { hostha: { hostid: host.id, haenable: enabled, status: true } };
}
