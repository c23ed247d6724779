// What the host HA pass observes of a host (functions/sweeper/host-ha.ts observeHost), from records:
// the agent's verdict only while recent, the freshest peer heartbeat reading, the power state only from
// a fence that succeeded, the cluster's share of problem hosts as upstream counts it, and HA enabled
// only when the host, its cluster and its zone allow it and HA maintenance is off.
import { describe, expect, it } from 'vitest';
import type { Host } from '../../shared/db/hosts.ts';
import { haSettings, observeHost, type HostHaContext } from '../../functions/sweeper/host-ha.ts';
import { Settings } from '../../shared/settings.ts';

const NOW = Date.parse('2026-12-03T12:00:00.000Z');
const iso = (ago: number) => new Date(NOW - ago).toISOString();
const host = (id: string, over: Partial<Host> = {}): Host =>
  ({ id, name: id, clusterId: 'c1', zoneId: 'z1', podId: 'p1', status: 'Up', resourcestate: 'Enabled', ipaddress: '10.0.0.1', oobm: { driver: 'ipmitool', address: '10.0.0.101', port: 623, username: 'admin', password: 'sealed', enabled: true }, ...over }) as Host;
const context = (over: Partial<HostHaContext> = {}): HostHaContext => ({
  now: NOW,
  fleet: [],
  zone: undefined,
  cluster: undefined,
  scoped: new Settings(new Map()),
  pingIntervalSeconds: 10,
  fenceJob: undefined,
  ...over,
});
const configured = { provider: 'kvmhaprovider', enabled: true, state: 'Suspect', since: iso(5000), fenceAttempts: 2 } as const;

describe('observeHost', () => {
  it('maps the records: state and since from the HA config, a recent verdict, the freshest heartbeat, fence attempts', () => {
    const h1 = host('h1', { status: 'Down', ha: configured, lastreport: { reachable: false, at: iso(4000) } });
    const h2 = host('h2', { heartbeats: { at: iso(1000), ages: { h1: 31 } } });
    const h3 = host('h3', { heartbeats: { at: iso(2000), ages: { h1: 29 } } });
    expect(observeHost(h1, context({ fleet: [h1, h2, h3] }))).toEqual({
      now: NOW,
      state: 'Suspect',
      since: NOW - 5000,
      enabled: true,
      eligible: true,
      report: { reachable: false, at: NOW - 4000 },
      heartbeat: { ageSeconds: 29, at: NOW - 2000 },
      problemRatio: 1 / 3,
      fenceAttempts: 2,
    });
  });

  it('takes a verdict older than three report intervals for the agent\'s silence', () => {
    const h1 = host('h1', { ha: configured, lastreport: { reachable: false, at: iso(30_001) } });
    expect(observeHost(h1, context({ fleet: [h1] })).report).toBeUndefined();
  });

  it('reads the power state only from a fence that succeeded, as of when the OFF was asked', () => {
    const h1 = host('h1', { ha: configured });
    expect(observeHost(h1, context({ fenceJob: { status: 'succeeded', powerState: 'Off', at: NOW - 10 } })).power).toEqual({ state: 'Off', at: NOW - 10 });
    expect(observeHost(h1, context({ fenceJob: { status: 'succeeded', powerState: 'Unknown' } })).power).toEqual({ state: 'Unknown', at: NOW });
    expect(observeHost(h1, context({ fenceJob: { status: 'failed', error: 'x' } })).power).toBeUndefined();
    expect(observeHost(h1, context({ fenceJob: { status: 'pending' } })).power).toBeUndefined();
  });

  it('counts Alert, Disconnected, Down and Error hosts of the cluster as problems (upstream), not other clusters\' nor removed hosts', () => {
    const fleet = [host('h1', { ha: configured }), host('h2', { status: 'Alert' }), host('h3', { status: 'Disconnected' }), host('h4', { status: 'Connecting' }), host('h5', { status: 'Down', clusterId: 'c2' }), host('h6', { status: 'Removed' })];
    expect(observeHost(fleet[0]!, context({ fleet })).problemRatio).toBe(2 / 4);
  });

  it('is enabled only with HA on for the host, its cluster and its zone, and outside HA maintenance; eligible only with a usable BMC and out of maintenance', () => {
    const h1 = host('h1', { ha: configured });
    expect(observeHost(h1, context()).enabled).toBe(true);
    expect(observeHost(host('h1', { ha: { ...configured, enabled: false } }), context()).enabled).toBe(false);
    expect(observeHost(h1, context({ cluster: { haenabled: false } as never })).enabled).toBe(false);
    expect(observeHost(h1, context({ zone: { haenabled: false } as never })).enabled).toBe(false);
    expect(observeHost(h1, context({ scoped: new Settings(new Map([['vm.ha.enabled', 'false']])) })).enabled).toBe(false);
    expect(observeHost(h1, context()).eligible).toBe(true);
    expect(observeHost(host('h1', { ha: configured, oobm: undefined }), context()).eligible).toBe(false);
    expect(observeHost(host('h1', { ha: configured, resourcestate: 'PrepareForMaintenance' }), context()).eligible).toBe(false);
  });

  it('reads the KVM HA settings, the accepted problem ratio among them', () => {
    expect(haSettings(new Settings(new Map([['kvm.ha.accepted.problematic.hosts.ratio', '0.5']])))).toEqual({
      activityCheckInterval: 60,
      activityCheckMaxAttempts: 10,
      degradedMaxPeriod: 300,
      recoverWaitPeriod: 600,
      fenceTimeout: 60,
      acceptedProblemRatio: 0.5,
      heartbeatPeriod: 5,
    });
  });
});
