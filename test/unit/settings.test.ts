// The configuration catalogue alone: every setting declared once and well-formed, values checked
// with upstream's texts, and the precedence of scoped values (no database: ScopedSettings is built
// from the values settingsFor would have read).
import { describe, expect, it } from 'vitest';
import { invalidValue, ScopedSettings, settingDefinition, Settings, SETTINGS, type SettingDefinition } from '../../shared/settings.ts';

const def = (name: string) => settingDefinition(name)!;

describe('the catalogue', () => {
  it('declares each name once, lower-case dotted, with a description, category, component, group and subgroup', () => {
    const names = SETTINGS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    for (const setting of SETTINGS as readonly SettingDefinition[]) {
      expect(setting.name).toMatch(/^[a-z0-9]+(\.[a-z0-9_]+)+$/);
      expect(setting.description.length).toBeGreaterThan(10);
      expect(setting.category && setting.component && setting.group && setting.subgroup).toBeTruthy();
    }
  });

  it('has defaults that pass its own validation', () => {
    for (const setting of SETTINGS as readonly SettingDefinition[]) {
      expect(invalidValue(setting, setting.defaultValue), setting.name).toBeUndefined();
    }
  });

  it('holds the settings the inventory, the agent and the API core read, with upstream types and scopes', () => {
    const expected: [string, string, string, readonly string[]][] = [
      ['expunge.delay', 'Integer', '86400', []],
      ['expunge.interval', 'Integer', '86400', []],
      ['cpu.overprovisioning.factor', 'Float', '1.0', ['Cluster']],
      ['mem.overprovisioning.factor', 'Float', '1.0', ['Cluster']],
      ['storage.overprovisioning.factor', 'Float', '2', ['StoragePool']],
      ['vm.instancename.flag', 'Boolean', 'false', []],
      ['vm.allocation.algorithm', 'String', 'random', []],
      ['default.page.size', 'Long', '500', []],
      ['vmsnapshot.max', 'Integer', '10', []],
      ['ping.interval', 'Integer', '60', []],
      ['ping.timeout', 'Float', '2.5', []],
      ['kvm.ha.activity.check.interval', 'Long', '60', ['Cluster']],
      ['kvm.ha.degraded.max.period', 'Long', '300', ['Cluster']],
      ['allow.user.expunge.recover.vm', 'Boolean', 'false', ['Account']],
      ['api.throttling.enabled', 'Boolean', 'false', []],
      ['api.throttling.interval', 'Integer', '1', []],
      ['api.throttling.max', 'Integer', '25', []],
      ['session.timeout', 'Integer', '1800', []],
      ['incorrect.login.attempts.allowed', 'Integer', '5', []],
      ['login.throttle.window', 'Integer', '300', []],
      ['api.signature.max.expiry', 'Integer', '3600', []],
      ['api.slow.request.threshold', 'Integer', '1000', []],
    ];
    for (const [name, type, defaultValue, scopes] of expected) {
      expect(def(name), name).toMatchObject({ type, defaultValue, scopes });
    }
    expect(def('vm.allocation.algorithm').options).toEqual([
      'random',
      'firstfit',
      'userdispersing',
      'userconcentratedpod_random',
      'userconcentratedpod_firstfit',
      'firstfitleastconsumed',
    ]);
    expect(settingDefinition('no.such.setting')).toBeUndefined();
  });
});

describe('invalidValue', () => {
  it('parses numbers as Java would: int and long bounds, no fractions in integers', () => {
    expect(invalidValue(def('expunge.delay'), '2147483647')).toBeUndefined();
    expect(invalidValue(def('expunge.delay'), '2147483648')).toMatch(/valid integer value for parameter expunge\.delay$/);
    expect(invalidValue(def('expunge.delay'), '-7')).toBeUndefined();
    expect(invalidValue(def('default.page.size'), '9223372036854775807')).toBeUndefined();
    expect(invalidValue(def('default.page.size'), '9223372036854775808')).toMatch(/valid long value/);
    expect(invalidValue(def('ping.timeout'), '1e1')).toBeUndefined();
    expect(invalidValue(def('ping.timeout'), '.5')).toBeUndefined();
    expect(invalidValue(def('ping.timeout'), 'NaN')).toMatch(/valid float value/);
  });

  it('words each refusal as upstream does', () => {
    expect(invalidValue(def('expunge.delay'), 'x')).toBe('There was error in trying to parse value: x. Please enter a valid integer value for parameter expunge.delay');
    expect(invalidValue(def('expunge.delay'), null)).toBe('There was error in trying to parse value: null. Please enter a valid integer value for parameter expunge.delay');
    expect(invalidValue(def('vm.instancename.flag'), null)).toBe("Please enter either 'true' or 'false'.");
    expect(invalidValue(def('vm.instancename.flag'), 'True')).toBe("Please enter either 'true' or 'false'.");
    expect(invalidValue(def('cpu.overprovisioning.factor'), '0')).toBe('cpu.overprovisioning.factor should be greater than 0');
    expect(invalidValue(def('expunge.interval'), '0')).toBe('Please enter a positive value for the configuration parameter:expunge.interval');
    expect(invalidValue(def('vmsnapshot.max'), '-1')).toBe('The provided value is not valid for this configuration. Please enter an integer in the range: [0-]');
    expect(invalidValue(def('vm.allocation.algorithm'), 'FIRSTFIT')).toBeUndefined();
    expect(invalidValue(def('vm.allocation.algorithm'), 'fastest')).toMatch(/^The provided value is not a valid value for this configuration \(Options are: \[random,firstfit,/);
  });
});

describe('precedence', () => {
  const global = new Settings(new Map([['cpu.overprovisioning.factor', '1.5']]));
  const withFlags = (flags: Record<string, string>) => new Settings(new Map(Object.entries(flags)));

  it('loadSettings values are global: overrides, else defaults', () => {
    expect(global.number('cpu.overprovisioning.factor')).toBe(1.5);
    expect(global.number('mem.overprovisioning.factor')).toBe(1);
    expect(global.boolean('api.throttling.enabled')).toBe(false);
  });

  it('a cluster value wins; another cluster, and settings not scoped to clusters, see the global value', () => {
    const scoped = new ScopedSettings(global, { ids: { Cluster: 'c1', Zone: 'z1' }, parentDomains: [] }, new Map([['Cluster#c1', new Map([['cpu.overprovisioning.factor', '4'], ['expunge.delay', '5']])]]));
    expect(scoped.number('cpu.overprovisioning.factor')).toBe(4);
    // expunge.delay is global only: a stray cluster value never applies.
    expect(scoped.raw('expunge.delay')).toBe('86400');
    const other = new ScopedSettings(global, { ids: { Cluster: 'c2' }, parentDomains: [] }, new Map([['Cluster#c1', new Map([['cpu.overprovisioning.factor', '4']])]]));
    expect(other.number('cpu.overprovisioning.factor')).toBe(1.5);
  });

  it('account → domain (with enable.account.settings.for.domain) → parent domains (with enable.domain.settings.for.child.domain) → global', () => {
    const name = 'allow.user.expunge.recover.vm' as const;
    const values = new Map([
      ['Domain#parent', new Map([[name, 'true']])],
      ['Domain#d1', new Map<string, string>()],
      ['Account#a1', new Map<string, string>()],
    ]);
    const chain = { ids: { Account: 'a1', Domain: 'd1' }, parentDomains: ['parent', 'root'] };
    expect(new ScopedSettings(withFlags({}), chain, values).raw(name)).toBe('false');
    expect(new ScopedSettings(withFlags({ 'enable.account.settings.for.domain': 'true' }), chain, values).raw(name)).toBe('false');
    const both = withFlags({ 'enable.account.settings.for.domain': 'true', 'enable.domain.settings.for.child.domain': 'true' });
    expect(new ScopedSettings(both, chain, values).raw(name)).toBe('true');
    values.get('Domain#d1')!.set(name, 'false');
    expect(new ScopedSettings(both, chain, values).raw(name)).toBe('false');
    values.get('Account#a1')!.set(name, 'true');
    expect(new ScopedSettings(withFlags({}), chain, values).raw(name)).toBe('true');
  });
});
