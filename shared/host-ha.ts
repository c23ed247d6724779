// Host HA's decisions (upstream's HA framework with the KVM provider), pure: the state machine of
// HAConfig.HAState as upstream's table has it, and `decideHostHa`, which turns what is known of a host
// into the one event to apply now. Nothing here reads or writes; the reconciler that observes
// (agent reports, BMC power state, storage heartbeat read by a healthy peer), apply the event with a
// conditional write and act (fence through the BMC; the VM HA pass then restarts HA VMs elsewhere) is
// functions/sweeper/host-ha.ts.
//
// Mold's departures from upstream, each for a failure upstream has:
// - Suspicion comes from the agent, which sees a host stop answering within seconds; silence of the
//   whole agent (no report at all) is never a health-check failure: the site is cut off, not its hosts.
// - The activity check is the host's storage heartbeat as a healthy peer reads it. A host that still
//   writes it is alive (HealthCheckPassed, whatever its SSH says: no fencing on guesswork); a reading
//   that fails (the storage itself blipped) counts as no sample, never as proof of death.
// - Fencing: a BMC that reports Off (also a host already off) is fenced. A BMC that cannot be reached
//   (total power loss takes it too) does not leave the host in Fencing for ever: a storage heartbeat
//   stale for longer than the fence timeout, read by a healthy peer, is proof that the host is not
//   running its guests (Mold's own event ProvenDead). Without either proof it stays in Fencing and
//   its VMs stay where they are: a stuck host is better than a guest running twice.
// - A share of problem hosts in the cluster over kvm.ha.accepted.problematic.hosts.ratio is a network
//   split, not dead hosts: no activity check (so no fencing) starts until it falls.

import { heartbeatFresh as isFresh, heartbeatProvesDead as provesDead } from './storage-heartbeat.ts';

export const HA_STATES = ['Disabled', 'Available', 'Ineligible', 'Suspect', 'Degraded', 'Checking', 'Recovering', 'Recovered', 'Fencing', 'Fenced'] as const;
export type HaState = (typeof HA_STATES)[number];

export const HA_EVENTS = [
  'Eligible',
  'Ineligible',
  'Disabled',
  'Enabled',
  'HealthCheckPassed',
  'HealthCheckFailed',
  'PerformActivityCheck',
  'TooFewActivityCheckSamples',
  'PeriodicRecheckResourceActivity',
  'ActivityCheckFailureOverThresholdRatio',
  'ActivityCheckFailureUnderThresholdRatio',
  'PowerCycle',
  'Recovered',
  'RetryRecovery',
  'RecoveryWaitPeriodTimeout',
  'RecoveryOperationThresholdExceeded',
  'RetryFencing',
  'Fenced',
  // Mold's own: the storage heartbeat proves the host dead while its BMC cannot be reached.
  'ProvenDead',
] as const;
export type HaEvent = (typeof HA_EVENTS)[number];

type Table = Partial<Record<HaState | 'new', Partial<Record<HaEvent, HaState>>>>;

/** Upstream's HAConfig.HAState FSM, plus Fencing --ProvenDead--> Fenced. */
const TRANSITIONS: Table = {
  new: { Disabled: 'Disabled', Enabled: 'Available', Ineligible: 'Ineligible' },
  Disabled: { Enabled: 'Available' },
  Ineligible: { Disabled: 'Disabled', Ineligible: 'Ineligible', Eligible: 'Available' },
  Available: { Disabled: 'Disabled', Ineligible: 'Ineligible', HealthCheckPassed: 'Available', HealthCheckFailed: 'Suspect' },
  Suspect: { Disabled: 'Disabled', Ineligible: 'Ineligible', HealthCheckFailed: 'Suspect', PerformActivityCheck: 'Checking', HealthCheckPassed: 'Available' },
  Checking: {
    Disabled: 'Disabled',
    Ineligible: 'Ineligible',
    TooFewActivityCheckSamples: 'Suspect',
    ActivityCheckFailureUnderThresholdRatio: 'Degraded',
    ActivityCheckFailureOverThresholdRatio: 'Recovering',
  },
  Degraded: { Disabled: 'Disabled', Ineligible: 'Ineligible', HealthCheckFailed: 'Degraded', HealthCheckPassed: 'Available', PeriodicRecheckResourceActivity: 'Suspect' },
  Recovering: { Disabled: 'Disabled', Ineligible: 'Ineligible', RetryRecovery: 'Recovering', Recovered: 'Recovered', RecoveryOperationThresholdExceeded: 'Fencing' },
  Recovered: { Disabled: 'Disabled', Ineligible: 'Ineligible', RecoveryWaitPeriodTimeout: 'Available' },
  Fencing: { Disabled: 'Disabled', Ineligible: 'Ineligible', RetryFencing: 'Fencing', Fenced: 'Fenced', ProvenDead: 'Fenced' },
  Fenced: { Disabled: 'Disabled', HealthCheckPassed: 'Ineligible', HealthCheckFailed: 'Fenced' },
};

export class IllegalHaTransition extends Error {
  constructor(from: HaState | undefined, event: HaEvent) {
    super(`Unable to transition HA state from ${from ?? '(none)'} on event ${event}`);
  }
}

/** The state `event` leads to from `current`; IllegalHaTransition where upstream's table has none. */
export function nextHaState(current: HaState | undefined, event: HaEvent): HaState {
  const to = TRANSITIONS[current ?? 'new']?.[event];
  if (!to) throw new IllegalHaTransition(current, event);
  return to;
}

export const possibleHaEvents = (current: HaState | undefined) => Object.keys(TRANSITIONS[current ?? 'new'] ?? {}) as HaEvent[];

/** What the reconciler knows of one host when it decides. */
export interface HaObservation {
  now: number;
  state: HaState | undefined;
  /** When the state was entered (ms). */
  since: number;
  /** HA enabled for the host, its cluster and its zone, and not paused by the global HA maintenance switch. */
  enabled: boolean;
  /** Out-of-band management configured and enabled (host, cluster, zone), and the host not in maintenance. */
  eligible: boolean;
  /** The agent's last verdict on the host and when it came; undefined when the agent itself is silent. */
  report?: { reachable: boolean; at: number };
  /** The host's storage heartbeat as a healthy peer last read it; undefined when no peer could read it. */
  heartbeat?: { ageSeconds: number; at: number };
  /** The BMC's power state as last read, and when. */
  power?: { state: 'On' | 'Off' | 'Unknown'; at: number };
  /** Share of the cluster's hosts that are Suspect or worse, this one included (0..1). */
  problemRatio: number;
  /** Fence attempts (power OFF through the BMC) made in this Fencing spell. */
  fenceAttempts: number;
}

export interface HaSettings {
  /** kvm.ha.activity.check.interval: seconds between activity checks. */
  activityCheckInterval: number;
  /** kvm.ha.activity.check.max.attempts: checks before Checking decides. */
  activityCheckMaxAttempts: number;
  /** kvm.ha.degraded.max.period: seconds a host stays Degraded before it is checked again. */
  degradedMaxPeriod: number;
  /** kvm.ha.recover.wait.period: seconds Recovered lasts before Available. */
  recoverWaitPeriod: number;
  /** kvm.ha.fence.timeout: seconds a fence may take; also how stale the heartbeat must be past it. */
  fenceTimeout: number;
  /** kvm.ha.accepted.problematic.hosts.ratio. */
  acceptedProblemRatio: number;
  /** The storage heartbeat's period in seconds (how often a live host writes it). */
  heartbeatPeriod: number;
}

/** What to do about a host now: an event to apply (with what it asks for), or nothing. */
export type HaDecision =
  | { kind: 'none'; reason: string }
  | { kind: 'event'; event: HaEvent; to: HaState; act?: 'fence' | 'restartVms'; reason: string };

/** The heartbeat reading proves the host is writing it: alive whatever else says. */
const heartbeatFresh = (o: HaObservation, s: HaSettings) => isFresh(o.heartbeat, s.heartbeatPeriod);

/** The heartbeat reading proves the host has not written it for longer than a fence could take. */
const heartbeatProvesDead = (o: HaObservation, s: HaSettings) => provesDead(o.heartbeat, s.fenceTimeout, s.heartbeatPeriod);

const event = (o: HaObservation, e: HaEvent, reason: string, act?: 'fence' | 'restartVms'): HaDecision => ({ kind: 'event', event: e, to: nextHaState(o.state, e), reason, ...(act && { act }) });

/**
 * The one event to apply to a host now (the reconciler applies it conditionally on `state` and acts
 * on `act`). Total: every state and observation gets an answer, and every event it names is legal
 * from the state it is named in.
 */
export function decideHostHa(o: HaObservation, s: HaSettings): HaDecision {
  const elapsed = (o.now - o.since) / 1000;
  if (!o.enabled) return o.state === 'Disabled' ? { kind: 'none', reason: 'HA is disabled' } : event(o, 'Disabled', 'HA was disabled');
  if (o.state === undefined || o.state === 'Disabled') return event(o, 'Enabled', 'HA was enabled');
  if (!o.eligible) {
    if (o.state === 'Ineligible') return { kind: 'none', reason: 'out-of-band management is not enabled, or the host is in maintenance' };
    if (o.state === 'Fenced') return { kind: 'none', reason: 'the host is fenced' };
    return event(o, 'Ineligible', 'out-of-band management is not enabled, or the host is in maintenance');
  }
  const alive = o.report?.reachable === true || heartbeatFresh(o, s);
  const failing = o.report?.reachable === false && !heartbeatFresh(o, s);
  switch (o.state) {
    case 'Ineligible':
      return event(o, 'Eligible', 'out-of-band management is enabled');
    case 'Available':
      return failing ? event(o, 'HealthCheckFailed', 'the agent cannot reach the host') : { kind: 'none', reason: 'healthy' };
    case 'Suspect':
      if (alive) return event(o, 'HealthCheckPassed', o.report?.reachable ? 'the agent reaches the host again' : 'the host still writes its storage heartbeat');
      if (o.problemRatio > s.acceptedProblemRatio) return { kind: 'none', reason: `too many problem hosts in the cluster (${Math.round(o.problemRatio * 100)}%): a network split, not dead hosts` };
      return failing ? event(o, 'PerformActivityCheck', 'the host still does not answer') : { kind: 'none', reason: 'waiting for the agent' };
    case 'Checking': {
      if (alive) return event(o, 'TooFewActivityCheckSamples', 'the host showed signs of life');
      // To Recovering, whose next step fences: one power OFF, not two.
      if (heartbeatProvesDead(o, s)) return event(o, 'ActivityCheckFailureOverThresholdRatio', `its storage heartbeat is ${Math.round(o.heartbeat!.ageSeconds)} s old`);
      if (elapsed >= s.activityCheckInterval * s.activityCheckMaxAttempts) {
        // No proof either way (no peer could read the heartbeat): not dead enough to fence.
        return event(o, 'ActivityCheckFailureUnderThresholdRatio', 'the activity checks found no proof that the host is dead');
      }
      return { kind: 'none', reason: 'checking activity' };
    }
    case 'Degraded':
      if (o.report?.reachable) return event(o, 'HealthCheckPassed', 'the agent reaches the host again');
      return elapsed >= s.degradedMaxPeriod ? event(o, 'PeriodicRecheckResourceActivity', 'time to check the host again') : { kind: 'none', reason: 'degraded' };
    case 'Recovering':
      if (alive) return event(o, 'Recovered', 'the host came back by itself');
      // The KVM provider's recovery is a power cycle through the BMC; Mold goes straight to fencing:
      // a host that stopped writing its heartbeat is not trusted to come back with its guests.
      return event(o, 'RecoveryOperationThresholdExceeded', 'the host is fenced rather than recovered', 'fence');
    case 'Recovered':
      return elapsed >= s.recoverWaitPeriod ? event(o, 'RecoveryWaitPeriodTimeout', 'recovered for long enough') : { kind: 'none', reason: 'recovered' };
    case 'Fencing':
      if (o.power?.state === 'Off' && o.power.at >= o.since) return event(o, 'Fenced', 'its BMC reports it powered off', 'restartVms');
      // Back before the fence took: nothing of it runs elsewhere yet, so HA starts over (Ineligible,
      // then Eligible) rather than power off a host that answers.
      if (alive) return event(o, 'Ineligible', 'the host came back before it was fenced');
      if (heartbeatProvesDead(o, s) && o.heartbeat!.at >= o.since) return event(o, 'ProvenDead', `its BMC cannot fence it, and its storage heartbeat is ${Math.round(o.heartbeat!.ageSeconds)} s old`, 'restartVms');
      return elapsed >= s.fenceTimeout * Math.max(1, o.fenceAttempts) ? event(o, 'RetryFencing', 'the fence did not complete in time', 'fence') : { kind: 'none', reason: 'fencing' };
    case 'Fenced':
      return o.report?.reachable ? event(o, 'HealthCheckPassed', 'the host is back: HA waits for an admin') : { kind: 'none', reason: 'fenced' };
  }
}
