// The agent's periodic report (POST /agent/v1/report) and what it does to the hosts it names, plus the
// recording of a host's status change (event and alert) that the sweeper shares. The decisions are
// pure, in host-health.ts; here is only the reading and writing around them.
import type { HostReport, ReportRequest, ReportResponse, WatchedHost } from './agent/protocol.ts';
import { listAgentRecords, type Agent } from './db/agents.ts';
import { ALERT_TYPES, createAlert } from './db/alerts.ts';
import { recordEvent } from './db/events.ts';
import { systemActor } from './bootstrap.ts';
import { getHost, listHostRecords, nextStatus, updateHostRecord, type Host, type HostChanges } from './db/hosts.ts';
import { getCluster, getPod, getZone, type Cluster, type Zone } from './db/infrastructure.ts';
import { oobmOptionsOf, nextPowerState, oobmAuthAlert, oobmRefusal, oobmTargetOf, readingEvent, type OobmPowerState } from './oobm.ts';
import { eventDescription, eventLevel, hostAlert, isHealthy, reportEvents, reportReason, type LastReport, type PingSettings, type Transition } from './host-health.ts';
import { listStoragePools, PoolGone, recordPoolStats, type StoragePool } from './db/storage.ts';
import { loadSettings, type Settings } from './settings.ts';
import { looksLikeInstanceName, syncVmPowerStates } from './vm-power-sync.ts';
import { recordVmUsage } from './db/vm-stats.ts';
import { recordUnmanagedDomains } from './unmanaged-domains.ts';

/** Mold's own event type for a host's connection status changing (upstream records alerts only). */
export const HOST_STATUS_EVENT = 'HOST.STATUS.TRANSITION';

/** ping.interval and ping.timeout (global settings upstream: AgentManager's ConfigKeys have no scope). */
export function pingSettings(settings: Settings): PingSettings {
  return { interval: settings.number('ping.interval'), timeout: settings.number('ping.timeout') };
}

/** Records a status change: a HOST.STATUS.TRANSITION event and, for a change worth telling, an ALERT.COMPUTE.HOST alert. */
export async function recordStatusChange(host: Host, transition: Transition, ping: PingSettings): Promise<void> {
  await recordEvent(await systemActor(), {
    type: HOST_STATUS_EVENT,
    level: eventLevel(transition.to),
    description: eventDescription(host, transition),
    resourceId: host.id,
    resourceType: 'Host',
  });
  const [zone, pod] = await Promise.all([getZone(host.zoneId), getPod(host.podId)]);
  const text = hostAlert(host, transition, { zoneName: zone?.name ?? host.zoneId, podName: pod?.name ?? host.podId }, ping);
  if (text) {
    await createAlert({ alertType: ALERT_TYPES.HOST, ...text, zoneId: host.zoneId, podId: host.podId, clusterId: host.clusterId, resourceId: host.id, resourceType: 'Host' });
  }
}

/**
 * Moves a host by `transition` only if nothing happened to it since it was read: same status and same
 * lastpinged. A report that lands between the sweeper's read and this write wins; the sweeper looks
 * again next time. Resolves the updated host, or undefined when the write lost.
 */
export function transitionIfUnchanged(host: Host, transition: Transition, changes: HostChanges = {}): Promise<Host | undefined> {
  return updateHostRecord(host.id, { ...changes, status: transition.to }, { status: host.status, lastpinged: host.lastpinged });
}

/**
 * A watched host: the lease epoch it is driven under, the shared mount point pools it reaches, and its BMC
 * when out-of-band management is enabled for it (host, cluster, zone).
 */
const watched = (host: Host, zone: Zone | undefined, clusters: Map<string, Cluster | undefined>, pools: readonly StoragePool[]): WatchedHost => {
  const reached = pools.filter((pool) => reaches(host, pool)).map((pool) => ({ id: pool.id, path: pool.path }));
  return {
    hostId: host.id,
    address: host.ipaddress,
    port: host.port ?? 22,
    username: host.username ?? 'root',
    ...(host.leaseEpoch !== undefined && { epoch: host.leaseEpoch }),
    ...(reached.length > 0 && { pools: reached }),
    ...(host.oobm && !oobmRefusal(host, zone, clusters.get(host.clusterId)) && { oobm: { ...oobmTargetOf(host.oobm), configId: host.oobm.configId ?? '' } }),
  };
};

/**
 * Pools whose figures a host's report carries: shared mount points (the same storage from every
 * host that mounts it; a Filesystem pool is each host's own disk, NFS and RBD are not measured yet).
 */
const measurable = (pool: StoragePool) => pool.type === 'SharedMountPoint' && pool.state !== 'Disabled';
const reaches = (host: Host, pool: StoragePool) => pool.zoneId === host.zoneId && (pool.scope === 'ZONE' || pool.clusterId === host.clusterId);

/**
 * A healthy host's measure of its pools: bytes used always; the size only for a pool created
 * without capacitybytes (upstream learns a shared mount point's size from its hosts), a given size
 * stays what the operator said.
 */
async function recordPoolFigures(host: Host, entry: HostReport, pools: readonly StoragePool[]): Promise<void> {
  for (const figures of entry.pools ?? []) {
    const pool = pools.find((p) => p.id === figures.id);
    if (!pool || !reaches(host, pool)) continue;
    await recordPoolStats(pool.id, { usedBytes: figures.usedBytes, ...(pool.capacityfromhosts === true && { capacityBytes: figures.capacityBytes }) }).catch((error) => {
      if (!(error instanceof PoolGone)) throw error;
    });
  }
}

/**
 * Takes an agent's report: each host it names that is this agent's gets the report's figures and, when
 * healthy, its status back up; hosts of other agents (or unknown ids) are ignored. Answers how often to
 * report and which hosts to watch (the agent's hosts not Removed).
 *
 * Cost: one query of the zone's hosts (an agent serves one zone; its hosts are picked out by agentId,
 * which is cheap with the few hosts a zone has) plus one write per reported host, and more only for
 * a host whose status changes; then the VM power-state sync (its cost is in shared/vm-power-sync.ts).
 */
export async function recordReport(agent: Agent, report: ReportRequest): Promise<ReportResponse> {
  const settings = await loadSettings();
  const ping = pingSettings(settings);
  const zoneHosts = await listHostRecords({ zoneId: agent.zoneId });
  const hosts = new Map(zoneHosts.filter((host) => host.agentId === agent.id).map((host) => [host.id, host]));
  const now = new Date();
  const pools = (await listStoragePools({ zoneId: agent.zoneId })).filter(measurable);
  for (const entry of report.hosts) {
    const host = hosts.get(entry.hostId);
    if (!host) continue;
    if (entry.reachable && entry.libvirtd !== false) await recordPoolFigures(host, entry, pools);
    const updated = await applyHostReport(host, entry, now, ping);
    if (updated) hosts.set(host.id, updated);
    else hosts.delete(host.id);
  }
  // The VM records follow the domains the healthy hosts report (shared/vm-power-sync.ts).
  const { unmanaged } = await syncVmPowerStates(report.hosts, hosts, ping, now.getTime());
  await recordUnmanagedDomains(unmanaged, hosts, ping.interval, now.getTime());
  await recordUsage(report.hosts, hosts, settings);
  const agents = await listAgentRecords({ zoneId: agent.zoneId });
  const zone = await getZone(agent.zoneId);
  const clusters = new Map<string, Cluster | undefined>();
  for (const host of hosts.values()) if (host.oobm && !clusters.has(host.clusterId)) clusters.set(host.clusterId, await getCluster(host.clusterId));
  for (const entry of report.hosts) {
    const host = hosts.get(entry.hostId);
    if (host?.oobm) await syncOobmPowerState(host, entry, oobmRefusal(host, zone, clusters.get(host.clusterId)) === undefined);
  }
  const live = [...hosts.values()].filter((host) => host.status !== 'Removed');
  return {
    pingIntervalSeconds: ping.interval,
    hosts: live.map((host) => watched(host, zone, clusters, pools)),
    // Tagged as each agent tags its own key on a host, so that a later list replaces exactly these.
    agentKeys: agents.filter((a) => a.state === 'Enabled').map((a) => `${a.sshPublicKey.trim().split(/\s+/).slice(0, 2).join(' ')} mold-agent-${a.id}`),
    zoneHostIds: zoneHosts.filter((host) => host.status !== 'Removed').map((host) => host.id),
    ...(live.some((host) => host.oobm) && {
      oobm: {
        options: oobmOptionsOf(settings),
        timeoutSeconds: settings.number('outofbandmanagement.action.timeout'),
        poolSize: settings.number('outofbandmanagement.sync.poolsize'),
      },
    }),
  };
}

/** The usage readings of the running domains of Mold's VMs (their uuid is the VM's id) on the agent's hosts. */
async function recordUsage(entries: readonly HostReport[], hosts: ReadonlyMap<string, Host>, settings: Settings) {
  const retention = { intervalMs: settings.number('vm.stats.interval'), retentionMinutes: settings.number('vm.stats.max.retention.time') };
  for (const entry of entries) {
    if (!hosts.has(entry.hostId)) continue;
    const readings = entry.domains.filter((domain) => domain.usage && looksLikeInstanceName(domain.name));
    await Promise.all(readings.map((domain) => recordVmUsage(domain.uuid, domain.usage!, retention)));
  }
}

/** Upstream's event type for a BMC's power state becoming Unknown. */
export const OOBM_POWERSTATE_EVENT = 'HOST.OOBM.POWERSTATE.TRANSITION';

/**
 * The background power-state sync (upstream's OutOfBandManagementPowerStatePollTask): the state the
 * agent read from the BMC, or Disabled when out-of-band management is off for the host. As upstream,
 * a move to Unknown records an event, and an authentication failure raises ALERT.OOBM.AUTHERROR once
 * (on the move, not on every reading).
 */
async function syncOobmPowerState(host: Host, entry: HostReport, enabled: boolean) {
  // A reading made with an older configuration (the agent read before it learnt the new password or
  // address) says nothing about the BMC as configured now.
  const current = entry.oobm && (entry.oobm.configId ?? '') === (host.oobm?.configId ?? '');
  const target: OobmPowerState | undefined = !enabled ? 'Disabled' : current ? nextPowerState(readingEvent(entry.oobm!)) : undefined;
  if (!target || target === host.oobmpowerstate) return;
  const updated = await updateHostRecord(host.id, { oobmpowerstate: target }, { oobmpowerstate: host.oobmpowerstate });
  if (!updated || target !== 'Unknown') return;
  const message = `Transitioned out-of-band management power state from:${host.oobmpowerstate ?? 'Disabled'} to:Unknown due to event:${entry.oobm?.authError ? 'AuthError' : 'Unknown'} for the host id:${host.id}`;
  await recordEvent(await systemActor(), { type: OOBM_POWERSTATE_EVENT, level: 'INFO', description: message, resourceId: host.id, resourceType: 'Host' });
  if (entry.oobm?.authError) await oobmAuthAlert(host, entry.oobm.error ?? 'the BMC refused the configured credentials');
}

/** Applies one host's report; resolves the host as it is afterwards (undefined when it is gone). */
async function applyHostReport(host: Host, entry: HostReport, now: Date, ping: PingSettings): Promise<Host | undefined> {
  const lastreport: LastReport = {
    reachable: entry.reachable,
    ...(entry.libvirtd !== undefined && { libvirtd: entry.libvirtd }),
    ...(entry.error !== undefined && { error: entry.error }),
    at: now.toISOString(),
  };
  // An unhealthy report changes no status: the sweeper judges silence, with this verdict in hand.
  if (!isHealthy(lastreport)) return updateHostRecord(host.id, { lastreport });
  let figures: Parameters<typeof updateHostRecord>[1] | undefined = {
    lastreport,
    lastpinged: now.toISOString(),
    ...(entry.memoryTotalBytes !== undefined && entry.memoryFreeBytes !== undefined && { memoryused: Math.max(0, entry.memoryTotalBytes - entry.memoryFreeBytes) }),
    ...(entry.loadAverage !== undefined && { cpuloadaverage: entry.loadAverage }),
    ...(entry.heartbeats && { heartbeats: { at: now.toISOString(), ages: entry.heartbeats } }),
  };
  let current: Host = host;
  // Each write holds only if the status is still the one read; on a lost race, read again and redo.
  for (let attempt = 0; attempt < 8; attempt++) {
    const [event] = reportEvents(current.status);
    if (!event && !figures) return current;
    const transition: Transition | undefined = event && { event, from: current.status, to: nextStatus(current.status, event), reason: reportReason(event) };
    const updated = await updateHostRecord(host.id, { ...figures, ...(transition && { status: transition.to }) }, { status: current.status });
    if (updated) {
      figures = undefined;
      if (transition) await recordStatusChange(updated, transition, ping);
      current = updated;
      continue;
    }
    const fresh = await getHost(host.id);
    if (!fresh) return undefined;
    current = fresh;
  }
  return current;
}
