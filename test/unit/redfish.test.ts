// The Redfish driver's pure parts (agent/redfish.ts): upstream's ResetType for each power action and
// its reading of PowerState, the ComputerSystem found in the Systems collection, the URL, which answers
// are refusals of the credentials, when a refused Reset still left the host as asked
// (apache/cloudstack#13376), the BMC's own words from an error body; and the redfish.* settings as the
// agent gets them.
import { describe, expect, it } from 'vitest';
import { alreadyDone, baseUrl, powerStateOf, redfishMessage, resetTypeOf, statusKind, systemPathOf } from '../../agent/redfish.ts';
import { OOBM_POWER_ACTIONS } from '../../shared/agent/protocol.ts';
import { oobmOptionsOf } from '../../shared/oobm.ts';

describe('resetTypeOf: upstream’s RedfishWrapper.parsePowerCommand', () => {
  it('maps every action but STATUS', () => {
    expect({ ON: resetTypeOf('ON'), OFF: resetTypeOf('OFF'), CYCLE: resetTypeOf('CYCLE'), RESET: resetTypeOf('RESET'), SOFT: resetTypeOf('SOFT') }).toEqual({
      ON: 'On',
      OFF: 'GracefulShutdown',
      CYCLE: 'PowerCycle',
      RESET: 'ForceRestart',
      SOFT: 'GracefulShutdown',
    });
  });
});

describe('powerStateOf: upstream’s parseRedfishPowerStateToOutOfBand', () => {
  it('reads On and PoweringOn as On, Off and PoweringOff as Off, anything else as Unknown', () => {
    const read = (PowerState: unknown) => powerStateOf({ PowerState });
    expect(['On', 'PoweringOn', 'Off', 'PoweringOff', 'Paused', 'on', undefined, 1].map(read)).toEqual(['On', 'On', 'Off', 'Off', 'Unknown', 'Unknown', 'Unknown', 'Unknown']);
    expect(powerStateOf(null)).toBe('Unknown');
    expect(powerStateOf('On')).toBe('Unknown');
  });
});

describe('systemPathOf: the first member of /redfish/v1/Systems/', () => {
  it('takes the last segment of the first member’s @odata.id, as upstream', () => {
    expect(systemPathOf({ Members: [{ '@odata.id': '/redfish/v1/Systems/System.Embedded.1' }, { '@odata.id': '/redfish/v1/Systems/2' }] })).toBe('/redfish/v1/Systems/System.Embedded.1');
    expect(systemPathOf({ Members: [{ '@odata.id': '/redfish/v1/Systems/1/' }] })).toBe('/redfish/v1/Systems/1');
  });
  it('finds none in an empty, malformed or missing collection', () => {
    for (const body of [{ Members: [] }, { Members: [{}] }, { Members: [{ '@odata.id': 7 }] }, { Members: 'x' }, {}, null, undefined, { Members: [{ '@odata.id': '/' }] }]) {
      expect(systemPathOf(body)).toBeUndefined();
    }
  });
});

describe('baseUrl', () => {
  it('uses the configured port, the scheme of redfish.use.https, and brackets an IPv6 address', () => {
    expect(baseUrl({ address: '10.0.0.5', port: 443 }, true)).toBe('https://10.0.0.5:443');
    expect(baseUrl({ address: 'bmc-7.example', port: 8080 }, false)).toBe('http://bmc-7.example:8080');
    expect(baseUrl({ address: 'fd00::5', port: 443 }, true)).toBe('https://[fd00::5]:443');
  });
});

describe('statusKind', () => {
  it('counts 2xx as done, 401 and 403 as the credentials refused, anything else as a failure', () => {
    expect([200, 202, 204, 299, 401, 403, 400, 404, 409, 500, 302, 0].map(statusKind)).toEqual(['ok', 'ok', 'ok', 'ok', 'auth', 'auth', 'failed', 'failed', 'failed', 'failed', 'failed', 'failed']);
  });
});

describe('alreadyDone: a refused Reset that left the host as asked', () => {
  it('is true only for OFF or SOFT of a host that is Off and ON of one that is On', () => {
    const table = Object.fromEntries(OOBM_POWER_ACTIONS.map((action) => [action, (['On', 'Off', 'Unknown'] as const).filter((state) => alreadyDone(action, state))]));
    expect(table).toEqual({ ON: ['On'], OFF: ['Off'], CYCLE: [], RESET: [], SOFT: ['Off'], STATUS: [] });
  });
});

describe('redfishMessage', () => {
  it('gives the extended messages and the message once each', () => {
    const body = { error: { code: 'Base.1.8.GeneralError', message: 'A general error has occurred.', '@Message.ExtendedInfo': [{ Message: 'The server is already powered off.' }, { Message: 'A general error has occurred.' }] } };
    expect(redfishMessage(body)).toBe('The server is already powered off. A general error has occurred.');
    expect(redfishMessage({ error: { message: 'Only this.' } })).toBe('Only this.');
    expect(redfishMessage(undefined)).toBe('');
    expect(redfishMessage({ PowerState: 'On' })).toBe('');
  });
});

describe('oobmOptionsOf: the redfish.* settings', () => {
  const settings = (values: Record<string, string>) =>
    ({
      globalRaw: (name: string) => values[name] ?? { 'outofbandmanagement.ipmitool.path': '/usr/bin/ipmitool', 'outofbandmanagement.ipmitool.interface': 'lanplus', 'outofbandmanagement.ipmitool.retries': '1', 'redfish.use.https': 'true', 'redfish.ignore.ssl': 'false' }[name] ?? '',
      number: (name: string) => Number(values[name] ?? { 'outofbandmanagement.ipmitool.cipher.suite': '3', 'redfish.retries': '2' }[name]),
    }) as never;
  it('defaults to upstream’s: HTTPS, certificates verified, 2 retries', () => {
    expect(oobmOptionsOf(settings({})).redfish).toEqual({ useHttps: true, ignoreSsl: false, retries: 2 });
  });
  it('follows each setting', () => {
    expect(oobmOptionsOf(settings({ 'redfish.use.https': 'false', 'redfish.ignore.ssl': 'true', 'redfish.retries': '0' })).redfish).toEqual({ useHttps: false, ignoreSsl: true, retries: 0 });
  });
});
