// shared/host-ha-config.ts's pure parts: the provider lookup, the hostha render and the one test of the
// host, cluster and zone switches.
import { describe, expect, it } from 'vitest';
import { hostHaEnabled, hostHaProvider, renderHostHa } from '../../shared/host-ha-config.ts';

describe('hostHaProvider', () => {
  it('names the KVM provider in any case, as upstream lower-cases the name', () => {
    for (const name of ['KVMHAProvider', 'kvmhaprovider', 'KvmHaProvider']) expect(hostHaProvider(name)).toBe('kvmhaprovider');
  });

  it('names nothing else, not even what an object has by inheritance', () => {
    for (const name of ['', 'simulatorhaprovider', 'kvm', 'toString', 'constructor', '__proto__']) expect(hostHaProvider(name)).toBeUndefined();
  });
});

describe('renderHostHa', () => {
  it('shows a host without a configuration as upstream: disabled, state Disabled, no provider', () => {
    expect(renderHostHa({})).toEqual({ haenable: false, hastate: 'Disabled' });
  });

  it('shows a configured host with no state yet as Disabled, and its state once set', () => {
    expect(renderHostHa({ ha: { provider: 'kvmhaprovider', enabled: true } })).toEqual({ haenable: true, hastate: 'Disabled', haprovider: 'kvmhaprovider' });
    expect(renderHostHa({ ha: { provider: 'kvmhaprovider', enabled: true, state: 'Fencing', since: '2026-01-01T00:00:00.000Z' } })).toEqual({
      haenable: true,
      hastate: 'Fencing',
      haprovider: 'kvmhaprovider',
    });
  });
});

describe('hostHaEnabled', () => {
  const on = { ha: { provider: 'kvmhaprovider' as const, enabled: true } };
  it('is on only with the host switched on and neither its cluster nor its zone switched off', () => {
    expect(hostHaEnabled(on, {}, {})).toBe(true);
    expect(hostHaEnabled(on, undefined, undefined)).toBe(true);
    expect(hostHaEnabled(on, { haenabled: true }, { haenabled: true })).toBe(true);
    expect(hostHaEnabled(on, { haenabled: false }, {})).toBe(false);
    expect(hostHaEnabled(on, {}, { haenabled: false })).toBe(false);
    expect(hostHaEnabled({ ha: { provider: 'kvmhaprovider', enabled: false } }, {}, {})).toBe(false);
    expect(hostHaEnabled({}, {}, {})).toBe(false);
  });
});
