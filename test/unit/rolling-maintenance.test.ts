// shared/rolling-maintenance.ts: the run's decisions, driven through whole runs by a scripted world
// (what each action's outcome is), so every path of upstream's RollingMaintenanceManagerImpl is walked.
import { describe, expect, it } from 'vitest';
import {
  advance,
  decide,
  groupByCluster,
  initialState,
  NO_MAINTENANCE_SCRIPT,
  PREFLIGHT_AVOID,
  PREMAINTENANCE_AVOID,
  responseOf,
  timeoutRefused,
  VM_STATES_TEXT,
  type ClusterCheck,
  type RollingAction,
  type RollingOutcome,
  type RollingState,
  type StageOutcome,
} from '../../shared/rolling-maintenance.ts';

const h = (id: string) => ({ id, name: `name-${id}` });
const OK: StageOutcome = { ok: true, details: 'fine', avoid: false };
const AVOID: StageOutcome = { ok: true, details: 'not needed', avoid: true };
const FAIL: StageOutcome = { ok: false, details: 'broken', avoid: false };
const CLEAN: ClusterCheck = { disabledNow: true, notReady: [], capacity: [] };

interface World {
  check?: (clusterId: string) => ClusterCheck;
  stage?: (hostId: string, stage: string) => StageOutcome;
  probe?: (hostId: string) => boolean;
  capacity?: (hostId: string) => string | undefined;
  maintain?: (hostId: string) => string | undefined;
}

/** Runs decide/advance to the end; returns the actions taken and the final state. */
function run(state: RollingState, world: World = {}) {
  const actions: RollingAction[] = [];
  for (let i = 0; i < 500; i++) {
    const action = decide(state);
    actions.push(action);
    if (action.kind === 'done') return { actions, state, log: actions.map(show) };
    let outcome: RollingOutcome;
    switch (action.kind) {
      case 'enterCluster':
        outcome = { kind: 'enterCluster', check: world.check?.(action.clusterId) ?? CLEAN };
        break;
      case 'stage':
        outcome = { kind: 'stage', result: world.stage?.(action.hostId, action.stage) ?? OK };
        break;
      case 'probe':
        outcome = { kind: 'probe', found: world.probe?.(action.hostId) ?? true };
        break;
      case 'capacity':
        outcome = { kind: 'capacity', problem: world.capacity?.(action.hostId) };
        break;
      case 'maintain': {
        const error = world.maintain?.(action.hostId);
        outcome = { kind: 'maintain', at: 't1', ...(error !== undefined && { error }) };
        break;
      }
      case 'cancel':
        outcome = { kind: 'cancel', at: 't2' };
        break;
      case 'enableCluster':
        outcome = { kind: 'enableCluster' };
        break;
    }
    state = advance(state, action, outcome);
  }
  throw new Error('the run does not end');
}

const show = (a: RollingAction) =>
  a.kind === 'stage' ? `${a.stage}:${a.hostId}` : a.kind === 'enterCluster' || a.kind === 'enableCluster' ? `${a.kind}:${a.clusterId}` : a.kind === 'done' ? 'done' : `${a.kind}:${a.hostId}`;

const oneCluster = (forced = false) => initialState(forced, [{ id: 'c1', hosts: [h('a'), h('b'), h('c')] }]);
const fullHost = (x: string) => [`probe:${x}`, `PreMaintenance:${x}`, `capacity:${x}`, `maintain:${x}`, `Maintenance:${x}`, `cancel:${x}`, `PostMaintenance:${x}`];

describe('rolling maintenance decisions', () => {
  it('runs upstream order over a cluster: checks and disable, PreFlight on every host, then each host in turn, then enable', () => {
    const { log, state } = run(oneCluster());
    expect(log).toEqual(['enterCluster:c1', 'PreFlight:a', 'PreFlight:b', 'PreFlight:c', ...fullHost('a'), ...fullHost('b'), ...fullHost('c'), 'enableCluster:c1', 'done']);
    expect(responseOf(state)).toEqual({
      success: true,
      details: 'OK',
      hostsupdated: ['a', 'b', 'c'].map((x) => ({ hostid: x, hostname: `name-${x}`, startdate: 't1', enddate: 't2', output: 'fine' })),
      hostsskipped: [],
    });
    expect(state.stagesRun).toBe(12);
  });

  it('a cluster that was already Disabled is not enabled by the run', () => {
    const { log } = run(oneCluster(), { check: () => ({ ...CLEAN, disabledNow: false }) });
    expect(log).not.toContain('enableCluster:c1');
  });

  it('clusters are processed one after another, each enabled again when left', () => {
    const { log } = run(initialState(false, [{ id: 'c1', hosts: [h('a')] }, { id: 'c2', hosts: [h('b')] }]));
    expect(log).toEqual(['enterCluster:c1', 'PreFlight:a', ...fullHost('a'), 'enableCluster:c1', 'enterCluster:c2', 'PreFlight:b', ...fullHost('b'), 'enableCluster:c2', 'done']);
  });

  it('exit 70 from PreFlight skips the host with upstream reason; from PreMaintenance too', () => {
    const { log, state } = run(oneCluster(), { stage: (host, stage) => ((host === 'a' && stage === 'PreFlight') || (host === 'b' && stage === 'PreMaintenance') ? AVOID : OK) });
    expect(log).toEqual(['enterCluster:c1', 'PreFlight:a', 'PreFlight:b', 'PreFlight:c', 'probe:a', 'PreMaintenance:a', 'probe:b', 'PreMaintenance:b', ...fullHost('c'), 'enableCluster:c1', 'done']);
    expect(state.skipped).toEqual([
      { hostid: 'a', hostname: 'name-a', reason: PREFLIGHT_AVOID },
      { hostid: 'b', hostname: 'name-b', reason: PREMAINTENANCE_AVOID },
    ]);
    expect(responseOf(state).success).toBe(true);
  });

  it('a host without a Maintenance script is skipped before PreMaintenance', () => {
    const { log, state } = run(oneCluster(), { probe: (host) => host !== 'b' });
    expect(log).toContain('probe:b');
    expect(log).not.toContain('PreMaintenance:b');
    expect(state.skipped).toEqual([{ hostid: 'b', hostname: 'name-b', reason: NO_MAINTENANCE_SCRIPT }]);
  });

  it('a failing PreFlight without forced ends the run before any host is touched, the cluster enabled again', () => {
    const { log, state } = run(oneCluster(), { stage: (host, stage) => (host === 'b' && stage === 'PreFlight' ? FAIL : OK) });
    expect(log).toEqual(['enterCluster:c1', 'PreFlight:a', 'PreFlight:b', 'enableCluster:c1', 'done']);
    expect(responseOf(state)).toMatchObject({ success: false, details: 'Error starting rolling maintenance: Stage: PreFlight failed on host b: broken', hostsupdated: [] });
  });

  it('with forced a failing PreFlight neither stops nor skips (as upstream)', () => {
    const { log, state } = run(oneCluster(true), { stage: (host, stage) => (host === 'b' && stage === 'PreFlight' ? FAIL : OK) });
    expect(log).toContain('Maintenance:b');
    expect(state.skipped).toEqual([]);
  });

  it('a failing PreMaintenance: without forced the run fails; with forced the host is skipped and the others go on', () => {
    const failing = { stage: (host: string, stage: string) => (host === 'b' && stage === 'PreMaintenance' ? FAIL : OK) };
    const strict = run(oneCluster(), failing);
    expect(strict.log).toEqual(['enterCluster:c1', 'PreFlight:a', 'PreFlight:b', 'PreFlight:c', ...fullHost('a'), 'probe:b', 'PreMaintenance:b', 'enableCluster:c1', 'done']);
    expect(responseOf(strict.state)).toMatchObject({ success: false, details: 'Error starting rolling maintenance: Stage: PreMaintenance failed on host b: broken' });
    expect(strict.state.updated.map((u) => u.hostid)).toEqual(['a']);

    const forced = run(oneCluster(true), failing);
    expect(forced.log).toEqual(['enterCluster:c1', 'PreFlight:a', 'PreFlight:b', 'PreFlight:c', ...fullHost('a'), 'probe:b', 'PreMaintenance:b', ...fullHost('c'), 'enableCluster:c1', 'done']);
    expect(responseOf(forced.state)).toMatchObject({ success: true, hostsskipped: [{ hostid: 'b', hostname: 'name-b', reason: 'Pre-maintenance script failed: broken' }] });
    expect(forced.state.updated.map((u) => u.hostid)).toEqual(['a', 'c']);
  });

  it('a failing Maintenance stage cancels the host maintenance: without forced the run ends, with forced the host is skipped (no PostMaintenance)', () => {
    const failing = { stage: (host: string, stage: string) => (host === 'a' && stage === 'Maintenance' ? FAIL : OK) };
    const strict = run(oneCluster(), failing);
    expect(strict.log.slice(0, 10)).toEqual(['enterCluster:c1', 'PreFlight:a', 'PreFlight:b', 'PreFlight:c', 'probe:a', 'PreMaintenance:a', 'capacity:a', 'maintain:a', 'Maintenance:a', 'cancel:a']);
    expect(strict.log.slice(10)).toEqual(['enableCluster:c1', 'done']);
    expect(strict.state.inMaintenance).toBeUndefined();
    expect(responseOf(strict.state).success).toBe(false);

    const forced = run(oneCluster(true), failing);
    expect(forced.log).toEqual(['enterCluster:c1', 'PreFlight:a', 'PreFlight:b', 'PreFlight:c', 'probe:a', 'PreMaintenance:a', 'capacity:a', 'maintain:a', 'Maintenance:a', 'cancel:a', ...fullHost('b'), ...fullHost('c'), 'enableCluster:c1', 'done']);
    expect(forced.state.skipped).toEqual([{ hostid: 'a', hostname: 'name-a', reason: 'Maintenance script failed: broken' }]);
    expect(forced.state.updated.map((u) => u.hostid)).toEqual(['b', 'c']);
  });

  it('a failing PostMaintenance: the host was updated; without forced the run ends, with forced it is also listed as skipped', () => {
    const failing = { stage: (host: string, stage: string) => (host === 'a' && stage === 'PostMaintenance' ? FAIL : OK) };
    const strict = run(oneCluster(), failing);
    expect(strict.log.slice(-3)).toEqual(['PostMaintenance:a', 'enableCluster:c1', 'done']);
    expect(strict.state.updated.map((u) => u.hostid)).toEqual(['a']);
    const forced = run(oneCluster(true), failing);
    expect(forced.state.skipped).toEqual([{ hostid: 'a', hostname: 'name-a', reason: 'Post-maintenance script failed: broken' }]);
    expect(forced.state.updated.map((u) => u.hostid)).toEqual(['a', 'b', 'c']);
  });

  it('a host that cannot enter maintenance ends the run; the host is taken out of maintenance first', () => {
    const { log, state } = run(oneCluster(), { maintain: (host) => (host === 'a' ? 'Unable to find a server' : undefined) });
    expect(log).toEqual(['enterCluster:c1', 'PreFlight:a', 'PreFlight:b', 'PreFlight:c', 'probe:a', 'PreMaintenance:a', 'capacity:a', 'maintain:a', 'cancel:a', 'enableCluster:c1', 'done']);
    expect(responseOf(state)).toMatchObject({ success: false, details: 'Error starting rolling maintenance: Unable to find a server' });
  });

  it('capacity: the re-check fails the run without forced and skips the host with it', () => {
    const world = { capacity: (host: string) => (host === 'b' ? 'no room' : undefined) };
    const strict = run(oneCluster(), world);
    expect(strict.log.slice(-4)).toEqual(['PreMaintenance:b', 'capacity:b', 'enableCluster:c1', 'done']);
    expect(responseOf(strict.state).details).toBe('no room');
    const forced = run(oneCluster(true), world);
    expect(forced.state.skipped).toEqual([{ hostid: 'b', hostname: 'name-b', reason: 'Capacity check failed for host b (name-b): no room' }]);
    expect(forced.log).not.toContain('maintain:b');
  });

  it('entering a cluster: bad VM states refuse it (forced: the next cluster); hosts not ready or short of capacity fail it, or with forced are skipped / ignored', () => {
    const vms = run(initialState(false, [{ id: 'c1', hosts: [h('a')] }, { id: 'c2', hosts: [h('b')] }]), { check: (c) => (c === 'c1' ? { ...CLEAN, disabledNow: false, vmStatesHostId: 'a' } : CLEAN) });
    expect(vms.log).toEqual(['enterCluster:c1', 'done']);
    expect(responseOf(vms.state)).toMatchObject({ success: false, details: 'VMs in invalid states in cluster: c1', hostsskipped: [{ hostid: 'a', hostname: 'name-a', reason: VM_STATES_TEXT }] });
    const vmsForced = run(initialState(true, [{ id: 'c1', hosts: [h('a')] }, { id: 'c2', hosts: [h('b')] }]), { check: (c) => (c === 'c1' ? { ...CLEAN, disabledNow: false, vmStatesHostId: 'a' } : CLEAN) });
    expect(vmsForced.log).toEqual(['enterCluster:c1', 'enterCluster:c2', 'PreFlight:b', ...fullHost('b'), 'enableCluster:c2', 'done']);

    const notReady: ClusterCheck = { disabledNow: true, notReady: [{ hostId: 'b', message: 'Host b is not enabled, state = Maintenance' }], capacity: [] };
    const strict = run(oneCluster(), { check: () => notReady });
    expect(strict.log).toEqual(['enterCluster:c1', 'enableCluster:c1', 'done']);
    expect(responseOf(strict.state).details).toBe('Error starting rolling maintenance: Host b is not enabled, state = Maintenance');
    const forced = run(oneCluster(true), { check: () => notReady });
    expect(forced.log).toEqual(['enterCluster:c1', 'PreFlight:a', 'PreFlight:c', ...fullHost('a'), ...fullHost('c'), 'enableCluster:c1', 'done']);
    expect(forced.state.skipped).toEqual([{ hostid: 'b', hostname: 'name-b', reason: 'Host b is not enabled, state = Maintenance' }]);

    const short: ClusterCheck = { disabledNow: true, notReady: [], capacity: [{ hostId: 'c', message: 'tight' }] };
    expect(responseOf(run(oneCluster(), { check: () => short }).state).details).toBe('Error starting rolling maintenance: Capacity check failed for host c : tight');
    expect(responseOf(run(oneCluster(true), { check: () => short }).state).success).toBe(true);
  });

  it('an ending run first cancels a held maintenance, then enables every cluster it disabled', () => {
    const state: RollingState = { ...oneCluster(), phase: 'ending', inMaintenance: 'a', disabled: ['c1', 'c2'], failure: 'x' };
    expect(run(state).log).toEqual(['cancel:a', 'enableCluster:c1', 'enableCluster:c2', 'done']);
  });

  it('an empty scope succeeds at once', () => {
    expect(run(initialState(false, [])).log).toEqual(['done']);
  });

  it('timeout: refused when not above the ping interval (upstream compares <=)', () => {
    expect(timeoutRefused(9, 10)).toBe(true);
    expect(timeoutRefused(10, 10)).toBe(true);
    expect(timeoutRefused(11, 10)).toBe(false);
  });

  it('groups hosts by cluster in first-seen order, each once', () => {
    const hosts = [
      { ...h('a'), clusterId: 'c2' },
      { ...h('b'), clusterId: 'c1' },
      { ...h('c'), clusterId: 'c2' },
      { ...h('a'), clusterId: 'c2' },
    ];
    expect(groupByCluster(hosts)).toEqual([
      { id: 'c2', hosts: [h('a'), h('c')] },
      { id: 'c1', hosts: [h('b')] },
    ]);
  });
});

describe("a stage's answer as upstream's RollingMaintenanceAnswer", async () => {
  const { stageOutcome } = await import('../../functions/tasks/rolling-maintenance.ts');
  const answer = (stage: string, fields: Record<string, unknown>) => ({ stage, found: true, script: `/hooks/${stage}`, finished: true, output: 'out', ...fields });

  it('exit 0 succeeds with the output; exit 70 is "not needed" from PreFlight and PreMaintenance only; other codes fail', () => {
    expect(stageOutcome('h', 'Maintenance', answer('Maintenance', { exitCode: 0 }))).toEqual({ ok: true, details: 'out', avoid: false });
    for (const stage of ['PreFlight', 'PreMaintenance'] as const) expect(stageOutcome('h', stage, answer(stage, { exitCode: 70 }))).toEqual({ ok: true, details: 'out', avoid: true });
    for (const stage of ['Maintenance', 'PostMaintenance'] as const) expect(stageOutcome('h', stage, answer(stage, { exitCode: 70 }))).toEqual({ ok: false, details: 'out', avoid: false });
    expect(stageOutcome('h', 'PreFlight', answer('PreFlight', { exitCode: 1 }))).toEqual({ ok: false, details: 'out', avoid: false });
  });

  it('no script: the stage is skipped as a success; unfinished or timed out: upstream timeout text; an agent failure: its text', () => {
    expect(stageOutcome('h', 'PostMaintenance', { stage: 'PostMaintenance', found: false, finished: true, output: '' })).toEqual({ ok: true, details: '', avoid: false });
    const timeout = 'Timeout exceeded for rolling maintenance on host h and stage Maintenance';
    expect(stageOutcome('h', 'Maintenance', answer('Maintenance', { finished: false }))).toEqual({ ok: false, details: timeout, avoid: false });
    expect(stageOutcome('h', 'Maintenance', { Error: 'States.Timeout', Cause: '' })).toEqual({ ok: false, details: timeout, avoid: false });
    const failed = stageOutcome('h', 'PreFlight', { Error: 'RollingMaintenanceNotConfigured', Cause: 'Hooks directory is empty, please specify it on agent.properties' });
    expect(failed.ok).toBe(false);
    expect(failed.details).toMatch(/Hooks directory is empty/);
  });
});
