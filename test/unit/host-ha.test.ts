// Host HA's pure decisions (shared/host-ha.ts): upstream's HAState table exactly, and decideHostHa over
// every state and a grid of observations: every answer is a legal event, a host that still writes its
// storage heartbeat is never fenced, nothing is restarted without a fence confirmed or a proof of
// death, a storage blip (no reading) proves nothing, and a network split fences no one.
import { describe, expect, it } from 'vitest';
import { decideHostHa, HA_EVENTS, HA_STATES, IllegalHaTransition, nextHaState, type HaObservation, type HaSettings, type HaState } from '../../shared/host-ha.ts';

const S: HaSettings = {
  activityCheckInterval: 5,
  activityCheckMaxAttempts: 3,
  degradedMaxPeriod: 300,
  recoverWaitPeriod: 600,
  fenceTimeout: 20,
  acceptedProblemRatio: 0.3,
  heartbeatPeriod: 2,
};
const NOW = 1_000_000;
const base = (over: Partial<HaObservation> = {}): HaObservation => ({
  now: NOW,
  state: 'Available',
  since: NOW - 1000,
  enabled: true,
  eligible: true,
  report: { reachable: true, at: NOW },
  problemRatio: 0,
  fenceAttempts: 0,
  ...over,
});

describe('the HA state machine', () => {
  // Upstream's HAConfig.HAState table, transcribed; plus Mold's Fencing --ProvenDead--> Fenced.
  const expected: Record<string, string> = {
    'new Disabled': 'Disabled', 'new Enabled': 'Available', 'new Ineligible': 'Ineligible',
    'Disabled Enabled': 'Available',
    'Ineligible Disabled': 'Disabled', 'Ineligible Ineligible': 'Ineligible', 'Ineligible Eligible': 'Available',
    'Available Disabled': 'Disabled', 'Available Ineligible': 'Ineligible', 'Available HealthCheckPassed': 'Available', 'Available HealthCheckFailed': 'Suspect',
    'Suspect Disabled': 'Disabled', 'Suspect Ineligible': 'Ineligible', 'Suspect HealthCheckFailed': 'Suspect', 'Suspect PerformActivityCheck': 'Checking', 'Suspect HealthCheckPassed': 'Available',
    'Checking Disabled': 'Disabled', 'Checking Ineligible': 'Ineligible', 'Checking TooFewActivityCheckSamples': 'Suspect',
    'Checking ActivityCheckFailureUnderThresholdRatio': 'Degraded', 'Checking ActivityCheckFailureOverThresholdRatio': 'Recovering',
    'Degraded Disabled': 'Disabled', 'Degraded Ineligible': 'Ineligible', 'Degraded HealthCheckFailed': 'Degraded', 'Degraded HealthCheckPassed': 'Available', 'Degraded PeriodicRecheckResourceActivity': 'Suspect',
    'Recovering Disabled': 'Disabled', 'Recovering Ineligible': 'Ineligible', 'Recovering RetryRecovery': 'Recovering', 'Recovering Recovered': 'Recovered', 'Recovering RecoveryOperationThresholdExceeded': 'Fencing',
    'Recovered Disabled': 'Disabled', 'Recovered Ineligible': 'Ineligible', 'Recovered RecoveryWaitPeriodTimeout': 'Available',
    'Fencing Disabled': 'Disabled', 'Fencing Ineligible': 'Ineligible', 'Fencing RetryFencing': 'Fencing', 'Fencing Fenced': 'Fenced', 'Fencing ProvenDead': 'Fenced',
    'Fenced Disabled': 'Disabled', 'Fenced HealthCheckPassed': 'Ineligible', 'Fenced HealthCheckFailed': 'Fenced',
  };
  it.each([undefined, ...HA_STATES].flatMap((state) => HA_EVENTS.map((event) => [state, event] as const)))('%s on %s: as the table says, or refused', (state, event) => {
    const want = expected[`${state ?? 'new'} ${event}`];
    if (want) expect(nextHaState(state, event)).toBe(want);
    else expect(() => nextHaState(state, event)).toThrow(IllegalHaTransition);
  });
});

// Every state × a grid of what can be observed.
const reports = [undefined, { reachable: true, at: NOW }, { reachable: false, at: NOW }];
const heartbeats = [undefined, { ageSeconds: 1, at: NOW }, { ageSeconds: 10, at: NOW }, { ageSeconds: 120, at: NOW }];
const powers = [undefined, { state: 'On' as const, at: NOW }, { state: 'Off' as const, at: NOW }, { state: 'Off' as const, at: NOW - 60_000 }, { state: 'Unknown' as const, at: NOW }];
const grid: HaObservation[] = [];
for (const state of [undefined, ...HA_STATES] as (HaState | undefined)[])
  for (const enabled of [true, false])
    for (const eligible of [true, false])
      for (const report of reports)
        for (const heartbeat of heartbeats)
          for (const power of powers)
            for (const problemRatio of [0, 0.5])
              for (const sinceAgo of [1_000, 3_600_000])
                grid.push(base({ state, enabled, eligible, report, heartbeat, power, problemRatio, since: NOW - sinceAgo, fenceAttempts: 1 }));

describe('decideHostHa', () => {
  it(`answers every one of ${grid.length} observations with a legal event or nothing`, () => {
    for (const o of grid) {
      const d = decideHostHa(o, S);
      if (d.kind === 'event') expect(nextHaState(o.state, d.event)).toBe(d.to);
    }
  });

  it('never fences, nor restarts the VMs of, a host that still writes its storage heartbeat or that its agent reaches', () => {
    for (const o of grid.filter((g) => (g.heartbeat && g.heartbeat.ageSeconds <= 6) || g.report?.reachable)) {
      const d = decideHostHa(o, S);
      if (d.kind === 'event' && d.act) {
        // Only a host already in Fencing whose BMC confirmed Off may have its VMs restarted.
        expect(o.state).toBe('Fencing');
        expect(d.act).toBe('restartVms');
        expect(o.power?.state).toBe('Off');
      }
      // A fresh heartbeat stops any fence; only a BMC that has since said Off (the host wrote its
      // last beat just before) lets the VMs go.
      const confirmedOff = o.state === 'Fencing' && o.power?.state === 'Off' && o.power.at >= o.since;
      if (d.kind === 'event' && !confirmedOff && o.report?.reachable === false && o.heartbeat && o.heartbeat.ageSeconds <= 6) expect(d.act).toBeUndefined();
    }
  });

  it('restarts VMs only from Fencing, on a power Off read since fencing began or a heartbeat proving death', () => {
    for (const o of grid) {
      const d = decideHostHa(o, S);
      if (d.kind !== 'event' || d.act !== 'restartVms') continue;
      expect(o.state).toBe('Fencing');
      expect(d.to).toBe('Fenced');
      const offSince = o.power?.state === 'Off' && o.power.at >= o.since;
      const provenDead = !!o.heartbeat && o.heartbeat.ageSeconds > S.fenceTimeout + 3 * S.heartbeatPeriod;
      expect(offSince || provenDead).toBe(true);
    }
  });

  it('takes a storage blip (no heartbeat reading) as no proof: no fence from Checking, no restart from Fencing', () => {
    for (const o of grid.filter((g) => g.heartbeat === undefined)) {
      const d = decideHostHa(o, S);
      if (o.state === 'Checking' && d.kind === 'event') expect(d.act).toBeUndefined();
      if (o.state === 'Fencing' && d.kind === 'event' && d.act === 'restartVms') expect(o.power?.state).toBe('Off');
    }
  });

  it('starts no activity check while too many of the cluster’s hosts have problems (a network split)', () => {
    const d = decideHostHa(base({ state: 'Suspect', report: { reachable: false, at: NOW }, problemRatio: 0.5 }), S);
    expect(d).toMatchObject({ kind: 'none' });
    expect(decideHostHa(base({ state: 'Suspect', report: { reachable: false, at: NOW }, problemRatio: 0.2 }), S)).toMatchObject({ event: 'PerformActivityCheck', to: 'Checking' });
  });

  it('walks a powered-off host from Available to Fenced, fencing once and restarting its VMs once', () => {
    const dead = { report: { reachable: false, at: NOW }, heartbeat: { ageSeconds: 40, at: NOW } };
    const steps: string[] = [];
    let o = base({ state: 'Available', ...dead });
    for (let i = 0; i < 6; i++) {
      const d = decideHostHa(o, S);
      if (d.kind === 'none') break;
      steps.push(`${d.to}${d.act ? `:${d.act}` : ''}`);
      o = { ...o, state: d.to, since: NOW, ...(d.act === 'fence' && { power: { state: 'Off' as const, at: NOW } }) };
    }
    expect(steps).toEqual(['Suspect', 'Checking', 'Recovering', 'Fencing:fence', 'Fenced:restartVms']);
  });

  it('does not leave a host whose BMC died with it in Fencing for ever: a stale heartbeat proves it dead', () => {
    const o = base({ state: 'Fencing', since: NOW - 30_000, report: { reachable: false, at: NOW }, power: { state: 'Unknown', at: NOW }, heartbeat: { ageSeconds: 90, at: NOW } });
    expect(decideHostHa(o, S)).toMatchObject({ event: 'ProvenDead', to: 'Fenced', act: 'restartVms' });
  });

  it('keeps a host without any proof in Fencing, fencing again, never restarting its VMs', () => {
    const o = base({ state: 'Fencing', since: NOW - 30_000, report: { reachable: false, at: NOW }, power: { state: 'Unknown', at: NOW }, fenceAttempts: 1 });
    expect(decideHostHa(o, S)).toMatchObject({ event: 'RetryFencing', to: 'Fencing', act: 'fence' });
  });

  it('does not take a power Off read before fencing began as the fence’s confirmation', () => {
    const o = base({ state: 'Fencing', since: NOW - 1_000, report: { reachable: false, at: NOW }, power: { state: 'Off', at: NOW - 60_000 } });
    expect(decideHostHa(o, S)).toMatchObject({ kind: 'none' });
  });

  it('lets a Suspect host whose heartbeat is fresh go back to Available (cut off from the agent, still running)', () => {
    const o = base({ state: 'Suspect', report: { reachable: false, at: NOW }, heartbeat: { ageSeconds: 1, at: NOW } });
    expect(decideHostHa(o, S)).toMatchObject({ event: 'HealthCheckPassed', to: 'Available' });
  });
});
