// How a host's connection Status follows the agent's reports, as pure decisions (the I/O around them
// is in shared/host-reports.ts and functions/sweeper/hosts.ts). Upstream's management server holds a
// live connection to each host's agent and learns of trouble from the connection itself; Mold's agent
// reports every ping.interval seconds instead, so silence is what the sweeper judges, and the agent's
// last word on a host (it could not reach it) stands in for upstream's investigators.
import { nextStatus, type Host, type HostStatus, type StatusEvent } from './db/hosts.ts';
import { cloudstackMillis } from './db/jobs.ts';

/** The agent's last report on a host, kept on the host record for the sweeper. */
export interface LastReport {
  reachable: boolean;
  libvirtd?: boolean;
  error?: string;
  /** ISO 8601. */
  at: string;
}

export interface PingSettings {
  /** ping.interval, seconds. */
  interval: number;
  /** ping.timeout: a multiple of the interval. */
  timeout: number;
}

/**
 * Intervals without a report before a host counts as Disconnected: one missed report is tolerated, a
 * second is not. Reports leave once per interval but take up to 0.8 of one to gather on a loaded host
 * (agent/reporter.ts), so a quick one followed by a slow one arrive 1.8 intervals apart.
 */
export const MISSED_INTERVALS = 2;

export interface Transition {
  event: StatusEvent;
  from: HostStatus;
  to: HostStatus;
  reason: string;
}

/** A host as the decisions need it. */
export type HostHealth = Pick<Host, 'status' | 'created' | 'oobmpowerstate'> & { lastpinged?: string; lastreport?: LastReport };


/** When the agent last reached the host; a host never reached counts from its creation. */
export function lastContact(host: HostHealth): number {
  return cloudstackMillis(host.lastpinged ?? host.created);
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

/** Whether the report says the host is fit: reached over SSH, and libvirtd (when checked) answers. */
export const isHealthy = (report: Pick<LastReport, 'reachable' | 'libvirtd'>) => report.reachable && report.libvirtd !== false;

/** What the agent's last report said, in words, when it said something was wrong. */
function verdict(report: LastReport | undefined): string | undefined {
  if (!report || isHealthy(report)) return undefined;
  if (!report.reachable) return `the agent cannot reach the host${report.error ? `: ${report.error}` : ''}`;
  return `the agent reaches the host but libvirtd does not answer${report.error ? `: ${report.error}` : ''}`;
}

/**
 * What the sweeper does to a host at `now`, if anything. One step a sweep:
 * - Up or Connecting, silent for more than 2 × ping.interval → Disconnected (PingMissed, Mold's own
 *   event: upstream reaches Disconnected through its investigators of a dropped connection, which
 *   Mold does not have);
 * - Disconnected, silent for more than ping.timeout × ping.interval → Down (HostDown) when the agent's
 *   last report said it cannot reach the host (it looked: the host is gone), else Alert (WaitedTooLong:
 *   nobody can tell what became of it);
 * - Alert, when the agent has since reported the host unreachable → Down (HostDown);
 * - any of these at once → Down (HostDown) when the agent cannot reach the host and its BMC reads it
 *   powered off (out-of-band management's power-state sync): two witnesses agree, no silence to wait out.
 */
export function sweepDecision(host: HostHealth, now: number, ping: PingSettings): Transition | undefined {
  const silent = now - lastContact(host);
  const said = verdict(host.lastreport);
  const silence = `no contact for ${seconds(silent)} s`;
  const step = (event: StatusEvent, reason: string): Transition => ({ event, from: host.status, to: nextStatus(host.status, event), reason });
  const watched = host.status === 'Up' || host.status === 'Connecting' || host.status === 'Disconnected' || host.status === 'Alert';
  if (watched && host.lastreport && !host.lastreport.reachable && host.oobmpowerstate === 'Off') {
    return step('HostDown', `${capitalise(said!)}, and its BMC reads it powered off; ${silence}`);
  }
  switch (host.status) {
    case 'Up':
    case 'Connecting':
      if (silent <= MISSED_INTERVALS * ping.interval * 1000) return undefined;
      return step('PingMissed', said ? `${capitalise(said)}; ${silence}` : `The agent's reports on the host stopped: ${silence} (ping.interval is ${ping.interval} s)`);
    case 'Disconnected': {
      const limit = ping.timeout * ping.interval;
      if (silent <= limit * 1000) return undefined;
      if (host.lastreport && !host.lastreport.reachable) return step('HostDown', `${capitalise(said!)}; ${silence} (ping.timeout × ping.interval is ${limit} s)`);
      return step('WaitedTooLong', `${said ? capitalise(said) : 'No report says why'}; ${silence} (ping.timeout × ping.interval is ${limit} s)`);
    }
    case 'Alert':
      if (host.lastreport && !host.lastreport.reachable && silent > ping.timeout * ping.interval * 1000) {
        return step('HostDown', `${capitalise(said!)}; ${silence}`);
      }
      return undefined;
    default:
      return undefined;
  }
}

/**
 * The events a healthy report takes a host through, in order: back Up by upstream's own paths
 * (Disconnected/Alert --Ping--> Up; Down --AgentConnected--> Connecting --Ready--> Up;
 * Connecting --Ready--> Up). Up stays Up (Ping, no change). Removed, Creating and Error hosts are
 * left to whoever handles them (deleteHost, addHost).
 */
export function reportEvents(status: HostStatus): StatusEvent[] {
  switch (status) {
    case 'Connecting':
      return ['Ready'];
    case 'Disconnected':
    case 'Alert':
      return ['Ping'];
    case 'Down':
      return ['AgentConnected', 'Ready'];
    default:
      return [];
  }
}

/** Why a healthy report moves a host. */
export function reportReason(event: StatusEvent): string {
  return event === 'AgentConnected' ? 'The agent reaches the host again' : 'The agent reached the host and libvirtd answers';
}

const capitalise = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

// ---- what is said about a change ----

export interface Place {
  zoneName: string;
  podName: string;
}

/** Upstream's host description in alerts: "name: h (id:uuid), availability zone: z, pod: p". */
export function hostDescription(host: Pick<Host, 'id' | 'name'>, place: Place): string {
  return `name: ${host.name} (id:${host.id}), availability zone: ${place.zoneName}, pod: ${place.podName}`;
}

export interface AlertText {
  subject: string;
  content: string;
}

/**
 * The ALERT_TYPE_HOST alert of a change, with upstream's wording where upstream sends one
 * (AgentManagerImpl: "Host disconnected, …", "Host in ALERT state, …"; HighAvailabilityManagerImpl:
 * "Host is down, …"). Upstream sends none when a host comes back; Mold says so ("Host is up, …").
 * No alert for the passage through Connecting on the way back up.
 */
export function hostAlert(host: Pick<Host, 'id' | 'name'>, transition: Transition, place: Place, ping: PingSettings): AlertText | undefined {
  const desc = hostDescription(host, place);
  switch (transition.to) {
    case 'Disconnected':
      return {
        subject: `Host disconnected, ${desc}`,
        content: `If the agent for host [${desc}] is not restarted within ${ping.timeout * ping.interval} seconds, host will go to Alert state. ${transition.reason}`,
      };
    case 'Alert':
      return { subject: `Host in ALERT state, ${desc}`, content: `In availability zone ${place.zoneName}, host is in alert state: ${host.id}-${host.name}. ${transition.reason}` };
    case 'Down':
      return { subject: `Host is down, ${desc}`, content: `Host [${desc}] is down. ${transition.reason}` };
    case 'Up':
      return { subject: `Host is up, ${desc}`, content: `Host [${desc}] is up again (it was ${transition.from}). ${transition.reason}` };
    default:
      return undefined;
  }
}

/** The event level of a change: losing a host is a warning, a host Down an error. */
export function eventLevel(to: HostStatus): 'INFO' | 'WARN' | 'ERROR' {
  return to === 'Down' ? 'ERROR' : to === 'Disconnected' || to === 'Alert' ? 'WARN' : 'INFO';
}

/** The HOST.STATUS.TRANSITION event's description. */
export function eventDescription(host: Pick<Host, 'id' | 'name'>, transition: Transition): string {
  return `Host ${host.name} (id:${host.id}) status changed from ${transition.from} to ${transition.to} (${transition.event}): ${transition.reason}`;
}
