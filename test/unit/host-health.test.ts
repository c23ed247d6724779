// The decisions behind a host's connection status, without storage: when the sweeper moves a silent
// host (and to what, given the agent's last word on it), how a healthy report brings a host back, and
// what the event and alert of each change say.
import { describe, expect, it } from 'vitest';
import { HOST_STATUSES, nextStatus, type HostStatus } from '../../shared/db/hosts.ts';
import {
  eventDescription,
  eventLevel,
  hostAlert,
  isHealthy,
  lastContact,
  MISSED_INTERVALS,
  reportEvents,
  sweepDecision,
  type HostHealth,
  type LastReport,
} from '../../shared/host-health.ts';

const ping = { interval: 60, timeout: 2.5 };
const T0 = Date.parse('2025-03-01T12:00:00.000Z');
const at = (secondsAfter: number) => T0 + secondsAfter * 1000;
const iso = (secondsAfter: number) => new Date(at(secondsAfter)).toISOString();

const host = (status: HostStatus, lastreport?: LastReport): HostHealth => ({
  status,
  created: '2025-03-01T11:00:00+0000',
  lastpinged: iso(0),
  ...(lastreport && { lastreport }),
});
const unreachable: LastReport = { reachable: false, error: 'Cannot reach 10.77.4.11:22: connect EHOSTUNREACH', at: iso(100) };
const noLibvirt: LastReport = { reachable: true, libvirtd: false, error: 'virsh: failed to connect to the hypervisor', at: iso(100) };

describe('the sweeper’s decision', () => {
  it('leaves a host alone while reports keep coming (up to 2 × ping.interval)', () => {
    expect(MISSED_INTERVALS).toBe(2);
    for (const status of ['Up', 'Connecting'] as const) {
      expect(sweepDecision(host(status), at(0), ping)).toBeUndefined();
      expect(sweepDecision(host(status), at(120), ping)).toBeUndefined();
    }
  });

  it('moves a silent Up or Connecting host to Disconnected (PingMissed), saying why', () => {
    for (const status of ['Up', 'Connecting'] as const) {
      const decision = sweepDecision(host(status), at(121), ping);
      expect(decision).toEqual({ event: 'PingMissed', from: status, to: 'Disconnected', reason: "The agent's reports on the host stopped: no contact for 121 s (ping.interval is 60 s)" });
    }
    expect(sweepDecision(host('Up', unreachable), at(121), ping)?.reason).toBe(
      'The agent cannot reach the host: Cannot reach 10.77.4.11:22: connect EHOSTUNREACH; no contact for 121 s',
    );
  });

  it('takes an unreachable host whose BMC reads it powered off Down at once, whatever the silence; either witness alone waits', () => {
    for (const status of ['Up', 'Connecting', 'Disconnected', 'Alert'] as const) {
      expect(sweepDecision({ ...host(status, unreachable), oobmpowerstate: 'Off' }, at(5), ping)).toEqual({
        event: 'HostDown',
        from: status,
        to: 'Down',
        reason: 'The agent cannot reach the host: Cannot reach 10.77.4.11:22: connect EHOSTUNREACH, and its BMC reads it powered off; no contact for 5 s',
      });
      expect(sweepDecision({ ...host(status), oobmpowerstate: 'Off' }, at(5), ping)).toBeUndefined();
      for (const oobmpowerstate of ['On', 'Unknown', 'Disabled', undefined] as const) {
        expect(sweepDecision({ ...host(status, unreachable), ...(oobmpowerstate && { oobmpowerstate }) }, at(5), ping)).toBeUndefined();
      }
    }
    for (const status of ['Down', 'Removed', 'Creating', 'Error'] as const) expect(sweepDecision({ ...host(status, unreachable), oobmpowerstate: 'Off' }, at(5), ping)).toBeUndefined();
  });

  it('follows the interval it is given', () => {
    const fast = { interval: 2, timeout: 2 };
    expect(sweepDecision(host('Up'), at(4), fast)).toBeUndefined();
    expect(sweepDecision(host('Up'), at(4.1), fast)?.to).toBe('Disconnected');
    expect(sweepDecision(host('Disconnected'), at(4), fast)).toBeUndefined();
    expect(sweepDecision(host('Disconnected'), at(4.1), fast)?.to).toBe('Alert');
  });

  it('keeps a Disconnected host so until ping.timeout × ping.interval since the last contact', () => {
    expect(sweepDecision(host('Disconnected'), at(150), ping)).toBeUndefined();
    expect(sweepDecision(host('Disconnected', unreachable), at(150), ping)).toBeUndefined();
  });

  it('then takes it Down when the agent said it cannot reach the host (HostDown)', () => {
    expect(sweepDecision(host('Disconnected', unreachable), at(151), ping)).toEqual({
      event: 'HostDown',
      from: 'Disconnected',
      to: 'Down',
      reason: 'The agent cannot reach the host: Cannot reach 10.77.4.11:22: connect EHOSTUNREACH; no contact for 151 s (ping.timeout × ping.interval is 150 s)',
    });
  });

  it('else to Alert (WaitedTooLong): the agent is silent, or reaches the host whose libvirtd does not answer', () => {
    expect(sweepDecision(host('Disconnected'), at(151), ping)).toEqual({
      event: 'WaitedTooLong',
      from: 'Disconnected',
      to: 'Alert',
      reason: 'No report says why; no contact for 151 s (ping.timeout × ping.interval is 150 s)',
    });
    const stale = sweepDecision(host('Disconnected', { reachable: true, at: iso(0) }), at(151), ping);
    expect(stale?.to).toBe('Alert');
    const libvirt = sweepDecision(host('Disconnected', noLibvirt), at(151), ping);
    expect(libvirt?.event).toBe('WaitedTooLong');
    expect(libvirt?.reason).toMatch(/^The agent reaches the host but libvirtd does not answer: virsh: failed/);
  });

  it('takes an Alert host Down once the agent reports it unreachable, and leaves it in Alert otherwise', () => {
    expect(sweepDecision(host('Alert'), at(1000), ping)).toBeUndefined();
    expect(sweepDecision(host('Alert', noLibvirt), at(1000), ping)).toBeUndefined();
    expect(sweepDecision(host('Alert', unreachable), at(1000), ping)).toMatchObject({ event: 'HostDown', from: 'Alert', to: 'Down' });
  });

  it('never touches Down, Removed, Creating or Error hosts', () => {
    for (const status of ['Down', 'Removed', 'Creating', 'Error'] as const) {
      expect(sweepDecision(host(status, unreachable), at(10_000), ping)).toBeUndefined();
    }
  });

  it('counts a host never reached from its creation', () => {
    const fresh: HostHealth = { status: 'Up', created: '2025-03-01T12:00:00+0000' };
    expect(lastContact(fresh)).toBe(T0);
    expect(sweepDecision(fresh, at(120), ping)).toBeUndefined();
    expect(sweepDecision(fresh, at(121), ping)?.to).toBe('Disconnected');
  });

  it('only ever proposes transitions the Status table has', () => {
    for (const status of HOST_STATUSES) {
      for (const report of [undefined, unreachable, noLibvirt]) {
        const decision = sweepDecision(host(status, report), at(100_000), ping);
        if (decision) expect(nextStatus(decision.from, decision.event)).toBe(decision.to);
      }
    }
  });
});

describe('a healthy report', () => {
  it('is one that reached the host and whose libvirtd (when checked) answers', () => {
    expect(isHealthy({ reachable: true })).toBe(true);
    expect(isHealthy({ reachable: true, libvirtd: true })).toBe(true);
    expect(isHealthy({ reachable: true, libvirtd: false })).toBe(false);
    expect(isHealthy({ reachable: false })).toBe(false);
  });

  it('brings a host back Up by upstream’s paths, and leaves Up hosts Up', () => {
    const walk = (from: HostStatus) => reportEvents(from).reduce<HostStatus>((status, event) => nextStatus(status, event), from);
    expect(reportEvents('Disconnected')).toEqual(['Ping']);
    expect(reportEvents('Alert')).toEqual(['Ping']);
    expect(reportEvents('Connecting')).toEqual(['Ready']);
    expect(reportEvents('Down')).toEqual(['AgentConnected', 'Ready']);
    for (const status of ['Disconnected', 'Alert', 'Connecting', 'Down'] as const) expect(walk(status)).toBe('Up');
    for (const status of ['Up', 'Removed', 'Creating', 'Error'] as const) expect(reportEvents(status)).toEqual([]);
  });
});

describe('what a change says', () => {
  const h = { id: '6f1c0c1e-4d7a-4f57-9a39-0d1e6c1f2a3b', name: 'kvm-1' };
  const place = { zoneName: 'zone-a', podName: 'pod-a' };
  const desc = `name: kvm-1 (id:${h.id}), availability zone: zone-a, pod: pod-a`;
  const change = (from: HostStatus, to: HostStatus, event: 'PingMissed' | 'WaitedTooLong' | 'HostDown' | 'Ping' | 'AgentConnected' | 'Ready') => ({ event, from, to, reason: 'why' });

  it('alerts with upstream’s subjects (the text listAlerts shows)', () => {
    expect(hostAlert(h, change('Up', 'Disconnected', 'PingMissed'), place, ping)).toEqual({
      subject: `Host disconnected, ${desc}`,
      content: `If the agent for host [${desc}] is not restarted within 150 seconds, host will go to Alert state. why`,
    });
    expect(hostAlert(h, change('Disconnected', 'Alert', 'WaitedTooLong'), place, ping)?.subject).toBe(`Host in ALERT state, ${desc}`);
    expect(hostAlert(h, change('Disconnected', 'Down', 'HostDown'), place, ping)).toEqual({ subject: `Host is down, ${desc}`, content: `Host [${desc}] is down. why` });
    expect(hostAlert(h, change('Alert', 'Up', 'Ping'), place, ping)?.subject).toBe(`Host is up, ${desc}`);
    expect(hostAlert(h, change('Down', 'Connecting', 'AgentConnected'), place, ping)).toBeUndefined();
  });

  it('records an event at a level matching the change', () => {
    expect(eventDescription(h, change('Up', 'Disconnected', 'PingMissed'))).toBe(`Host kvm-1 (id:${h.id}) status changed from Up to Disconnected (PingMissed): why`);
    expect(eventLevel('Disconnected')).toBe('WARN');
    expect(eventLevel('Alert')).toBe('WARN');
    expect(eventLevel('Down')).toBe('ERROR');
    expect(eventLevel('Up')).toBe('INFO');
    expect(eventLevel('Connecting')).toBe('INFO');
  });
});
