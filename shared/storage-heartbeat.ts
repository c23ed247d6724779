// The storage heartbeat: HA's proof of whether a host still runs, independent of the agent's link to it.
//
// Each host writes the time (its clock, seconds) every STORAGE_HEARTBEAT_SECONDS to a file of its own,
// `<pool>/.mold-heartbeat/<host id>`, on every shared mount point pool it reaches. The writer is a loop
// on the host itself, which the agent's report script starts when it is not running (agent/host.ts), so
// the file keeps moving while the host runs, whether or not the agent can reach it. The same script
// reads every heartbeat file of the pool (its peers' as well as its own) with its age by the reading
// host's clock; the control plane keeps a healthy host's readings on that host's record
// (`heartbeats`), and HA asks them about a host it cannot reach:
// - a peer's recent reading of a fresh heartbeat proves the host alive (cut off from the agent, not
//   dead): nothing of it is fenced, stopped or started elsewhere;
// - a reading older than a fence could take, made after the fence was tried, proves it dead when its
//   BMC cannot (total power loss takes the BMC too);
// - no reading (no shared pool, no healthy peer, the storage itself unreadable) proves nothing either way.
import type { HostStatus } from './db/hosts.ts';

/** How often a host writes its heartbeat (seconds). */
export const STORAGE_HEARTBEAT_SECONDS = 5;
/** The folder of heartbeat files in each shared pool. */
export const HEARTBEAT_DIR = '.mold-heartbeat';

/** One host's readings of its pools' heartbeat files, as kept on its record: ages in seconds by host id. */
export interface HeartbeatReadings {
  /** When the reading was made (ISO 8601, the control plane's clock when it took the report). */
  at: string;
  ages: Record<string, number>;
}

/** What HA knows of a host's heartbeat: the freshest recent reading by a healthy peer. */
export interface HeartbeatReading {
  ageSeconds: number;
  /** When it was read (ms). */
  at: number;
  /** The host that read it. */
  by: string;
}

export interface HeartbeatReader {
  id: string;
  clusterId: string;
  status: HostStatus;
  heartbeats?: HeartbeatReadings;
}

/**
 * The freshest reading of `host`'s heartbeat by another Up host of its cluster; undefined when there
 * is none. A reading counts while its reader still reports: made within three report intervals
 * (`pingIntervalSeconds`, ping.interval) of `now`.
 */
export function heartbeatOf(host: { id: string; clusterId: string }, readers: readonly HeartbeatReader[], now: number, pingIntervalSeconds: number): HeartbeatReading | undefined {
  const maxReadingAgeMs = 3 * pingIntervalSeconds * 1000;
  let best: HeartbeatReading | undefined;
  for (const reader of readers) {
    if (reader.id === host.id || reader.clusterId !== host.clusterId || reader.status !== 'Up' || !reader.heartbeats) continue;
    const age = reader.heartbeats.ages[host.id];
    const at = Date.parse(reader.heartbeats.at);
    if (age === undefined || !Number.isFinite(at) || now - at > maxReadingAgeMs) continue;
    if (!best || age < best.ageSeconds) best = { ageSeconds: age, at, by: reader.id };
  }
  return best;
}

/** The host wrote its heartbeat within three periods of the reading: it runs. */
export const heartbeatFresh = (reading: Pick<HeartbeatReading, 'ageSeconds'> | undefined, periodSeconds = STORAGE_HEARTBEAT_SECONDS) =>
  !!reading && reading.ageSeconds <= 3 * periodSeconds;

/** The host has not written its heartbeat for longer than a fence could take (three periods' slack): it does not run. */
export const heartbeatProvesDead = (reading: Pick<HeartbeatReading, 'ageSeconds'> | undefined, fenceTimeoutSeconds: number, periodSeconds = STORAGE_HEARTBEAT_SECONDS) =>
  !!reading && reading.ageSeconds > fenceTimeoutSeconds + 3 * periodSeconds;
