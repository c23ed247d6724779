// Hosts whose agent's reports stopped: Up/Connecting → Disconnected after 1.5 × ping.interval of
// silence, then Down (the agent said it cannot reach the host) or Alert (nobody can tell) after
// ping.timeout × ping.interval (shared/host-health.ts decides). Each change is written only if no report
// landed since the host was read, and is recorded as an event and an alert.
import { cloudstackDate } from '../../shared/db/jobs.ts';
import { listHostRecords, type Host } from '../../shared/db/hosts.ts';
import { sweepDecision, type LastReport } from '../../shared/host-health.ts';
import { pingSettings, recordStatusChange, transitionIfUnchanged } from '../../shared/host-reports.ts';
import { loadSettings } from '../../shared/settings.ts';

export interface HostChange {
  hostId: string;
  from: string;
  to: string;
  event: string;
}

/**
 * One pass over every host an agent manages (hosts without an agent, e.g. seeded records, have nobody
 * to report on them and are left alone). Reads all hosts: fine for the few hundred hosts an
 * installation of this size has.
 */
export async function sweepHosts(now = Date.now()): Promise<HostChange[]> {
  const ping = pingSettings(await loadSettings());
  const changes: HostChange[] = [];
  for (const host of await listHostRecords()) {
    if (!host.agentId) continue;
    const transition = sweepDecision({ ...host, lastreport: host.lastreport as LastReport | undefined }, now, ping);
    if (!transition) continue;
    const updated: Host | undefined = await transitionIfUnchanged(host, transition, transition.to === 'Disconnected' ? { disconnected: cloudstackDate(new Date(now)) } : {});
    if (!updated) continue;
    await recordStatusChange(updated, transition, ping);
    changes.push({ hostId: host.id, from: transition.from, to: transition.to, event: transition.event });
  }
  return changes;
}
