// Out-of-band management's pure parts: the power-state machine, upstream's zone/cluster/host checks,
// the response object, and how the agent reads ipmitool (its arguments, answers and failures, as
// ipmitool 1.8.19 prints them against OpenIPMI's ipmi_sim).
import { describe, expect, it } from 'vitest';
import { classifyFailure, ipmitoolArgs, parsePowerState } from '../../agent/oobm.ts';
import { nextPowerState, oobmRefusal, readingEvent, renderOobm, type OobmConfig, type OobmPowerEvent } from '../../shared/oobm.ts';

const config = (enabled: boolean): OobmConfig => ({
  driver: 'ipmitool',
  address: '10.0.0.5',
  port: '623',
  username: 'admin',
  password: { alg: 'RSA-OAEP-256+A256GCM', key: 'k', iv: 'i', tag: 't', data: 'd' },
  enabled,
});

describe('the power-state machine', () => {
  it('goes where each event says from every state; an authentication error is Unknown', () => {
    const events: OobmPowerEvent[] = ['On', 'Off', 'Unknown', 'AuthError', 'Disabled'];
    expect(events.map(nextPowerState)).toEqual(['On', 'Off', 'Unknown', 'Unknown', 'Disabled']);
    expect(readingEvent({ powerState: 'On' })).toBe('On');
    expect(readingEvent({ powerState: 'Unknown', authError: true })).toBe('AuthError');
  });
});

describe('oobmRefusal', () => {
  const host = { oobm: config(true), resourcestate: 'Enabled' as const };
  it('allows a configured, enabled host in a zone and cluster not switched off', () => {
    expect(oobmRefusal(host, {}, {})).toBeUndefined();
    expect(oobmRefusal(host, { oobmenabled: true }, { oobmenabled: true })).toBeUndefined();
  });
  it('names the zone first, then the cluster, then the host, as upstream', () => {
    expect(oobmRefusal(host, { oobmenabled: false }, { oobmenabled: false })).toBe("Out-of-band management is disabled for the host's zone. Aborting Operation.");
    expect(oobmRefusal(host, {}, { oobmenabled: false })).toBe("Out-of-band management is disabled for the host's cluster. Aborting Operation.");
    const hostText = 'Out-of-band management is disabled or not configured for the host. Aborting Operation.';
    expect(oobmRefusal({ oobm: undefined, resourcestate: 'Enabled' }, {}, {})).toBe(hostText);
    expect(oobmRefusal({ oobm: config(false), resourcestate: 'Enabled' }, {}, {})).toBe(hostText);
    expect(oobmRefusal({ oobm: config(true), resourcestate: 'Degraded' }, {}, {})).toBe(hostText);
  });
});

describe('renderOobm', () => {
  it('shows an unconfigured host as disabled, and a configured one with its password masked', () => {
    expect(renderOobm({})).toEqual({ powerstate: 'Disabled', enabled: false });
    expect(renderOobm({ oobm: config(true), oobmpowerstate: 'On' })).toEqual({
      powerstate: 'On',
      enabled: true,
      driver: 'ipmitool',
      address: '10.0.0.5',
      port: '623',
      username: 'admin',
      password: '****',
    });
  });
});

describe('ipmitool', () => {
  const options = { path: '/usr/bin/ipmitool', interface: 'lanplus' as const, retries: 1, cipherSuite: 3 };
  it('takes the password from the environment, never the command line', () => {
    const args = ipmitoolArgs({ address: '10.0.0.5', port: 623, username: 'admin' }, options);
    expect(args).toEqual(['-v', '-I', 'lanplus', '-C', '3', '-R', '1', '-H', '10.0.0.5', '-p', '623', '-U', 'admin', '-E']);
    expect(ipmitoolArgs({ address: 'bmc', port: 6230, username: 'u' }, { ...options, interface: 'lan' })).not.toContain('-C');
  });
  it('reads the power state of `chassis power status`', () => {
    expect(parsePowerState('Chassis Power is on\n')).toBe('On');
    expect(parsePowerState('Chassis Power is off')).toBe('Off');
    expect(parsePowerState('Get Chassis Power Status failed: Unspecified error')).toBe('Unknown');
  });
  it('tells a refused login from a BMC that does not answer', () => {
    expect(classifyFailure('Loading IANA PEN Registry...\n> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session')).toBe('auth');
    expect(classifyFailure('RAKP 2 message indicates an error : unauthorized name\nError: Unable to establish IPMI v2 / RMCP+ session')).toBe('auth');
    expect(classifyFailure('Get Auth Capabilities error\nError issuing Get Channel Authentication Capabilities request\nError: Unable to establish IPMI v2 / RMCP+ session')).toBe('unreachable');
    expect(classifyFailure('Get Chassis Power Status failed: Unspecified error')).toBe('other');
  });
});
