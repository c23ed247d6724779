// Host HA's reconciler (upstream's HA framework with the KVM provider; the decisions are
// shared/host-ha.ts). For each host HA is configured for, each sweep: observe what is known of it (the
// agent's last verdict, its storage heartbeat as a healthy peer read it, its fence and the BMC's answer
// to it, the share of problem hosts in its cluster), decide the one event to apply, apply it with a
// write conditional on the state read, and act: a fence is the VM HA pass's own (claimed on the host
// record, so the two passes start one), and once the host is Fenced the VM HA pass stops and releases
// its VMs (shared/vm-ha.ts, `hostHa`). A change records a HOST.HA.STATE.TRANSITION event.
import { recordEvent, type Actor } from '../../shared/db/events.ts';
import { isMaintenanceState, updateHostRecord, type Host } from '../../shared/db/hosts.ts';
import type { Cluster, Zone } from '../../shared/db/infrastructure.ts';
import { cloudstackMillis } from '../../shared/db/jobs.ts';
import { decideHostHa, type HaObservation, type HaSettings, type HaState } from '../../shared/host-ha.ts';
import { hostHaEnabled } from '../../shared/host-ha-config.ts';
import { log } from '../../shared/log.ts';
import { oobmRefusal } from '../../shared/oobm.ts';
import type { Settings } from '../../shared/settings.ts';
import { heartbeatOf, STORAGE_HEARTBEAT_SECONDS } from '../../shared/storage-heartbeat.ts';
import type { FenceJob } from '../../shared/vm-ha.ts';

/** Mold's own event type for a host's HA state changing. */
export const HOST_HA_EVENT = 'HOST.HA.STATE.TRANSITION';

/** Host statuses upstream counts as problematic in a cluster (KVMHostActivityChecker). */
const PROBLEM_STATUSES = new Set(['Alert', 'Disconnected', 'Down', 'Error']);

export interface HostHaChange {
  hostId: string;
  from?: HaState;
  to: HaState;
  fence?: boolean;
}

export function haSettings(scoped: Settings): HaSettings {
  return {
    activityCheckInterval: scoped.number('kvm.ha.activity.check.interval'),
    activityCheckMaxAttempts: scoped.number('kvm.ha.activity.check.max.attempts'),
    degradedMaxPeriod: scoped.number('kvm.ha.degraded.max.period'),
    recoverWaitPeriod: scoped.number('kvm.ha.recover.wait.period'),
    fenceTimeout: scoped.number('kvm.ha.fence.timeout'),
    acceptedProblemRatio: scoped.number('kvm.ha.accepted.problematic.hosts.ratio'),
    heartbeatPeriod: STORAGE_HEARTBEAT_SECONDS,
  };
}

export interface HostHaContext {
  now: number;
  fleet: readonly Host[];
  zone: Zone | undefined;
  cluster: Cluster | undefined;
  /** The host's cluster-scoped settings (vm.ha.enabled among them: HA maintenance pauses host HA too). */
  scoped: Settings;
  pingIntervalSeconds: number;
  fenceJob: FenceJob | undefined;
}

/** What is known of `host` now, in the decision's terms. */
export function observeHost(host: Host, c: HostHaContext): HaObservation {
  const report = host.lastreport as { reachable: boolean; at: string } | undefined;
  const reportAt = report ? Date.parse(report.at) : NaN;
  // A report older than three intervals is the agent's silence, not a verdict on the host.
  const recentReport = report && c.now - reportAt <= 3 * c.pingIntervalSeconds * 1000 ? { reachable: report.reachable, at: reportAt } : undefined;
  const heartbeat = heartbeatOf(host, c.fleet, c.now, c.pingIntervalSeconds);
  const peers = c.fleet.filter((h) => h.clusterId === host.clusterId && h.status !== 'Removed');
  const problems = peers.filter((h) => PROBLEM_STATUSES.has(h.status)).length;
  const fence = c.fenceJob?.status === 'succeeded' ? c.fenceJob : undefined;
  return {
    now: c.now,
    state: host.ha?.state,
    since: host.ha?.since ? cloudstackMillis(host.ha.since) : c.now,
    enabled: hostHaEnabled(host, c.cluster, c.zone) && c.scoped.boolean('vm.ha.enabled'),
    eligible: !oobmRefusal(host, c.zone, c.cluster) && !isMaintenanceState(host.resourcestate),
    ...(recentReport && { report: recentReport }),
    ...(heartbeat && { heartbeat: { ageSeconds: heartbeat.ageSeconds, at: heartbeat.at } }),
    ...(fence && { power: { state: fence.powerState === 'Off' ? 'Off' : fence.powerState === 'On' ? 'On' : 'Unknown', at: fence.at ?? c.now } }),
    problemRatio: peers.length ? problems / peers.length : 0,
    fenceAttempts: host.ha?.fenceAttempts ?? 0,
  };
}

/**
 * Decides and applies one host's HA event. Resolves the change, or undefined when nothing changed (or
 * another sweep changed the host first). `fence` starts the power OFF (VM HA's, claimed on the record).
 */
export async function reconcileHostHa(actor: Actor, host: Host, c: HostHaContext, fence: (host: Host, reason: string) => Promise<boolean>): Promise<HostHaChange | undefined> {
  if (!host.ha) return undefined;
  const decision = decideHostHa(observeHost(host, c), haSettings(c.scoped));
  if (decision.kind === 'none') return undefined;
  const from = host.ha.state;
  const entering = decision.to !== from;
  const fenceAttempts = decision.act === 'fence' ? (entering ? 1 : (host.ha.fenceAttempts ?? 0) + 1) : entering ? 0 : host.ha.fenceAttempts;
  const ha = { ...host.ha, state: decision.to, since: entering ? new Date(c.now).toISOString() : (host.ha.since ?? new Date(c.now).toISOString()), ...(fenceAttempts !== undefined && { fenceAttempts }) };
  const updated = await updateHostRecord(host.id, { ha }, { ha: host.ha });
  if (!updated) return undefined;
  if (entering) {
    log.info('host HA: state changed', { hostId: host.id, from, to: decision.to, event: decision.event, reason: decision.reason });
    await recordEvent(actor, {
      type: HOST_HA_EVENT,
      level: decision.to === 'Fencing' || decision.to === 'Fenced' || decision.to === 'Suspect' ? 'WARN' : 'INFO',
      description: `HA state of host ${host.name} (${host.id}) from ${from ?? 'none'} to ${decision.to} on event ${decision.event}: ${decision.reason}`,
      resourceId: host.id,
      resourceType: 'Host',
    });
  }
  const fenced = decision.act === 'fence' ? await fence(updated, `host HA: ${decision.reason}`) : false;
  return { hostId: host.id, ...(from && { from }), to: decision.to, ...(fenced && { fence: true }) };
}
