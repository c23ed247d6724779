// listConfigurations, updateConfiguration and resetConfiguration over the typed catalogue: the
// upstream response shape, filters and paging, global and scoped values with upstream's precedence
// (storage pool / cluster / zone over global; account over domain over global), every refusal with
// upstream's text and nothing changed by it, and who may call what.
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../shared/aws.ts';
import { createDomain, getDomain, type Domain } from '../../shared/db/identity.ts';
import { clusterKey, type Zone } from '../../shared/db/infrastructure.ts';
import { tableName } from '../../shared/db/items.ts';
import { cloudstackDate } from '../../shared/db/jobs.ts';
import { loadSettings, settingsFor, storeSetting } from '../../shared/settings.ts';
import { ApiClient, type ApiAnswer } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { seedZone } from '../support/zones.ts';

let runtime: RunningRuntime;
let admin: ApiClient;
let root: Domain;
let zone: Zone;
let clusterId: string;
let poolId: string;
let sub: Domain;
let child: Domain;
let domainAdmin: Member;
let user: Member;
let tenant: Member;
let outsider: Member;

const DENIED = 'The given command does not exist or it is not available for user';

function ok(answer: ApiAnswer, command: string): any {
  if (answer.status !== 200) throw new Error(`${command}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body[`${command.toLowerCase()}response`];
}

function refused(answer: ApiAnswer, command: string, errorcode: number, cserrorcode: number, errortext: string) {
  expect(answer.status, JSON.stringify(answer.body)).toBe(errorcode);
  expect(answer.body).toEqual({ [`${command.toLowerCase()}response`]: { uuidList: [], errorcode, cserrorcode, errortext } });
}

const noEntity = (api: string, name: string, value: string) =>
  `Unable to execute API command ${api} due to invalid value. Invalid parameter ${name} value=${value} due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.`;

/** The one configuration a list by exact name returns (name is a substring filter upstream). */
async function setting(name: string, scope: Record<string, string> = {}, by: ApiClient = admin): Promise<any> {
  const list = ok(await by.call('listConfigurations', { name, ...scope }), 'listConfigurations');
  return (list.configuration ?? []).find((item: any) => item.name === name);
}

const valueOf = async (name: string, scope: Record<string, string> = {}) => (await setting(name, scope))?.value;

async function editEvents(): Promise<any[]> {
  const list = ok(await admin.call('listEvents', { type: 'CONFIGURATION.VALUE.EDIT', pagesize: 500 }), 'listEvents');
  return list.event ?? [];
}

async function seedRecord(key: { pk: string; sk: string }, record: Record<string, unknown>) {
  await dynamo().send(new PutCommand({ TableName: tableName(), Item: { ...key, ...record } }));
}

beforeAll(async () => {
  runtime = await startRuntime();
  useRuntimeEndpoints(runtime);
  admin = new ApiClient(runtime.apiUrl, runtime.credentials);
  root = (await getDomain(runtime.credentials.domainid))!;
  zone = await seedZone(`cfg-zone-${randomUUID().slice(0, 6)}`);
  clusterId = randomUUID();
  await seedRecord(clusterKey(clusterId), { id: clusterId, name: 'cfg-cluster', zoneId: zone.id, podId: randomUUID(), allocationstate: 'Enabled', created: cloudstackDate() });
  poolId = randomUUID();
  await seedRecord({ pk: `STORAGEPOOL#${poolId}`, sk: 'STORAGEPOOL' }, { id: poolId, name: 'cfg-pool', zoneId: zone.id, clusterId, created: cloudstackDate() });
  sub = await createDomain({ name: `cfg-sub-${randomUUID().slice(0, 6)}`, parent: root });
  child = await createDomain({ name: `cfg-child-${randomUUID().slice(0, 6)}`, parent: sub });
  domainAdmin = await seedMember(runtime.apiUrl, `cfg-da-${randomUUID().slice(0, 6)}`, sub, 'Domain Admin');
  user = await seedMember(runtime.apiUrl, `cfg-user-${randomUUID().slice(0, 6)}`, sub, 'User');
  tenant = await seedMember(runtime.apiUrl, `cfg-tenant-${randomUUID().slice(0, 6)}`, child, 'User');
  outsider = await seedMember(runtime.apiUrl, `cfg-out-${randomUUID().slice(0, 6)}`, root, 'User');
});

afterAll(async () => {
  await runtime?.stop();
});

describe('listConfigurations', () => {
  it('answers upstream ConfigurationResponse items, sorted by name, with count', async () => {
    const list = ok(await admin.call('listConfigurations'), 'listConfigurations');
    const names = list.configuration.map((item: any) => item.name);
    expect(list.count).toBe(names.length);
    expect(names).toEqual([...names].sort());
    for (const name of [
      'expunge.delay',
      'expunge.interval',
      'cpu.overprovisioning.factor',
      'mem.overprovisioning.factor',
      'vm.instancename.flag',
      'vm.allocation.algorithm',
      'default.page.size',
      'vmsnapshot.max',
      'ping.interval',
      'ping.timeout',
      'kvm.ha.activity.check.interval',
      'api.throttling.enabled',
      'session.timeout',
      'incorrect.login.attempts.allowed',
      'login.throttle.window',
      'api.signature.max.expiry',
    ]) {
      expect(names).toContain(name);
    }
    expect(list.configuration.find((item: any) => item.name === 'expunge.delay')).toEqual({
      category: 'Advanced',
      group: 'Compute',
      subgroup: 'Virtual Machine',
      name: 'expunge.delay',
      value: '86400',
      defaultvalue: '86400',
      scope: 'Global',
      description: 'Determines how long (in seconds) to wait before actually expunging destroyed vm. The default value = the default value of expunge.interval',
      isdynamic: true,
      component: 'UserVmManager',
      displaytext: 'Expunge delay',
      type: 'Number',
    });
    expect(list.configuration.find((item: any) => item.name === 'cpu.overprovisioning.factor')).toMatchObject({ scope: 'Cluster', type: 'Decimal', value: '1.0' });
    expect(list.configuration.find((item: any) => item.name === 'vm.allocation.algorithm')).toMatchObject({
      type: 'Select',
      value: 'random',
      options: 'random,firstfit,userdispersing,userconcentratedpod_random,userconcentratedpod_firstfit,firstfitleastconsumed',
    });
    expect(list.configuration.find((item: any) => item.name === 'vm.instancename.flag')).toMatchObject({ type: 'Boolean', value: 'false' });
  });

  it('filters by name (a substring), category, keyword, group and subgroup', async () => {
    const byName = ok(await admin.call('listConfigurations', { name: 'overprovisioning' }), 'listConfigurations');
    expect(byName.configuration.map((item: any) => item.name)).toEqual([
      'cpu.overprovisioning.factor',
      'mem.overprovisioning.factor',
      'storage.overprovisioning.factor',
    ]);
    const byCategory = ok(await admin.call('listConfigurations', { category: 'Account Defaults' }), 'listConfigurations');
    expect(byCategory.configuration.length).toBeGreaterThan(0);
    expect(byCategory.configuration.every((item: any) => item.category === 'Account Defaults')).toBe(true);
    const byKeyword = ok(await admin.call('listConfigurations', { keyword: 'expunging destroyed' }), 'listConfigurations');
    expect(byKeyword.configuration.map((item: any) => item.name)).toEqual(['expunge.delay']);
    const byGroup = ok(await admin.call('listConfigurations', { group: 'Compute', subgroup: 'High Availability' }), 'listConfigurations');
    expect(byGroup.configuration.length).toBeGreaterThan(0);
    // HighAvailabilityManager's restart retry settings sit with the HA ones.
    expect(byGroup.configuration.every((item: any) => item.name.startsWith('kvm.ha.') || item.name.startsWith('vm.ha.') || ['max.retries', 'restart.retry.interval'].includes(item.name))).toBe(true);
    expect(ok(await admin.call('listConfigurations', { name: 'no.such.setting' }), 'listConfigurations')).toEqual({});
  });

  it('pages with page and pagesize; count is every match', async () => {
    const all = ok(await admin.call('listConfigurations', { name: 'max.account' }), 'listConfigurations');
    const second = ok(await admin.call('listConfigurations', { name: 'max.account', page: 2, pagesize: 3 }), 'listConfigurations');
    expect(second.count).toBe(all.count);
    expect(second.configuration).toEqual(all.configuration.slice(3, 6));
  });

  it('lists only the settings of a scope, with their values there', async () => {
    const atCluster = ok(await admin.call('listConfigurations', { clusterid: clusterId }), 'listConfigurations');
    const names = atCluster.configuration.map((item: any) => item.name);
    expect(names).toContain('cpu.overprovisioning.factor');
    expect(names).toContain('kvm.ha.fence.timeout');
    expect(names).not.toContain('expunge.delay');
    expect(atCluster.configuration.every((item: any) => item.scope === 'cluster')).toBe(true);
    const atPool = ok(await admin.call('listConfigurations', { storageid: poolId }), 'listConfigurations');
    expect(atPool.configuration.map((item: any) => item.name)).toEqual(['storage.overprovisioning.factor']);
    expect(atPool.configuration[0]).toMatchObject({ scope: 'storagepool', value: '2' });
  });

  it('refuses a subgroup without a group, two scopes at once and ids that name nothing', async () => {
    refused(await admin.call('listConfigurations', { subgroup: 'Agent' }), 'listConfigurations', 431, 9999, 'Configuration group name must be specified with the subgroup name');
    refused(
      await admin.call('listConfigurations', { zoneid: zone.id, clusterid: clusterId }),
      'listConfigurations',
      431,
      4350,
      'cannot handle multiple IDs, provide only one ID corresponding to the scope',
    );
    const nothing = randomUUID();
    refused(await admin.call('listConfigurations', { zoneid: nothing }), 'listConfigurations', 431, 4350, noEntity('listconfigurations', 'zoneid', nothing));
  });
});

describe('updateConfiguration (global)', () => {
  it('stores a typed value, answers the configuration with the value given, and records CONFIGURATION.VALUE.EDIT', async () => {
    const before = (await editEvents()).length;
    const answer = ok(await admin.call('updateConfiguration', { name: 'expunge.delay', value: '120' }), 'updateConfiguration');
    expect(answer.configuration).toMatchObject({ name: 'expunge.delay', value: '120', defaultvalue: '86400', scope: 'Global', category: 'Advanced', isdynamic: true });
    expect(await valueOf('expunge.delay')).toBe('120');
    expect((await loadSettings()).raw('expunge.delay')).toBe('120');
    const events = await editEvents();
    expect(events.length).toBe(before + 1);
    expect(events[0]).toMatchObject({ type: 'CONFIGURATION.VALUE.EDIT', level: 'INFO', description: 'Successfully completed updating configuration. Name: expunge.delay New Value: 120' });
  });

  it('accepts each type: booleans, floats, selects (any case), and the storeSetting helper still writes globals', async () => {
    ok(await admin.call('updateConfiguration', { name: 'vm.instancename.flag', value: 'true' }), 'updateConfiguration');
    expect(await valueOf('vm.instancename.flag')).toBe('true');
    ok(await admin.call('updateConfiguration', { name: 'ping.timeout', value: '3.5' }), 'updateConfiguration');
    expect((await loadSettings()).number('ping.timeout')).toBe(3.5);
    ok(await admin.call('updateConfiguration', { name: 'vm.allocation.algorithm', value: 'FirstFitLeastConsumed' }), 'updateConfiguration');
    expect(await valueOf('vm.allocation.algorithm')).toBe('firstfitleastconsumed');
    await storeSetting('vmsnapshot.max', '7');
    expect(await valueOf('vmsnapshot.max')).toBe('7');
  });

  it('without a value changes nothing and answers the setting as it is', async () => {
    const before = (await editEvents()).length;
    const answer = ok(await admin.call('updateConfiguration', { name: 'expunge.interval' }), 'updateConfiguration');
    expect(answer.configuration).toMatchObject({ name: 'expunge.interval', value: '86400' });
    expect((await editEvents()).length).toBe(before);
  });

  it('refuses an unknown name and wrong values with upstream texts, changing nothing', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ name: 'no.such.setting', value: '1' }, "Config parameter with name no.such.setting doesn't exist"],
      [{ name: 'expunge.delay', value: 'soon' }, 'There was error in trying to parse value: soon. Please enter a valid integer value for parameter expunge.delay'],
      [{ name: 'expunge.delay', value: '1.5' }, 'There was error in trying to parse value: 1.5. Please enter a valid integer value for parameter expunge.delay'],
      [{ name: 'expunge.delay', value: '99999999999' }, 'There was error in trying to parse value: 99999999999. Please enter a valid integer value for parameter expunge.delay'],
      [{ name: 'expunge.delay', value: 'null' }, 'There was error in trying to parse value: null. Please enter a valid integer value for parameter expunge.delay'],
      [{ name: 'default.page.size', value: 'many' }, 'There was error in trying to parse value: many. Please enter a valid long value for parameter default.page.size'],
      [{ name: 'ping.timeout', value: 'x' }, 'There was error in trying to parse value: x. Please enter a valid float value for parameter ping.timeout'],
      [{ name: 'ping.timeout', value: '0' }, 'ping.timeout should be greater than 0'],
      [{ name: 'vm.instancename.flag', value: 'yes' }, "Please enter either 'true' or 'false'."],
      [{ name: 'vm.instancename.flag', value: 'TRUE' }, "Please enter either 'true' or 'false'."],
      [{ name: 'expunge.interval', value: '0' }, 'Please enter a positive value for the configuration parameter:expunge.interval'],
      [{ name: 'ping.interval', value: '-5' }, 'Please enter a positive value for the configuration parameter:ping.interval'],
      [
        { name: 'vm.allocation.algorithm', value: 'roundrobin' },
        'The provided value is not a valid value for this configuration (Options are: [random,firstfit,userdispersing,userconcentratedpod_random,userconcentratedpod_firstfit,firstfitleastconsumed]).',
      ],
      [{ name: 'default.page.size', value: '0' }, 'The provided value is not valid for this configuration. Please enter an integer in the range: [1-]'],
    ];
    const before = ok(await admin.call('listConfigurations'), 'listConfigurations');
    const events = (await editEvents()).length;
    for (const [params, text] of cases) {
      refused(await admin.call('updateConfiguration', params), 'updateConfiguration', 431, 4350, text);
    }
    expect(ok(await admin.call('listConfigurations'), 'listConfigurations')).toEqual(before);
    expect((await editEvents()).length).toBe(events);
  });

  it('refuses a scope the setting does not have, two scopes, and ids that name nothing', async () => {
    const before = await setting('expunge.delay');
    refused(
      await admin.call('updateConfiguration', { name: 'expunge.delay', value: '60', zoneid: zone.id }),
      'updateConfiguration',
      431,
      4350,
      'Invalid scope id provided for the parameter expunge.delay',
    );
    refused(
      await admin.call('updateConfiguration', { name: 'cpu.overprovisioning.factor', value: '2', zoneid: zone.id }),
      'updateConfiguration',
      431,
      4350,
      'Invalid scope id provided for the parameter cpu.overprovisioning.factor',
    );
    refused(
      await admin.call('updateConfiguration', { name: 'cpu.overprovisioning.factor', value: '2', zoneid: zone.id, clusterid: clusterId }),
      'updateConfiguration',
      431,
      4350,
      'cannot handle multiple IDs, provide only one ID corresponding to the scope',
    );
    const nothing = randomUUID();
    refused(
      await admin.call('updateConfiguration', { name: 'cpu.overprovisioning.factor', value: '2', clusterid: nothing }),
      'updateConfiguration',
      431,
      4350,
      noEntity('updateconfiguration', 'clusterid', nothing),
    );
    expect(await setting('expunge.delay')).toEqual(before);
    expect(await valueOf('cpu.overprovisioning.factor', { clusterid: clusterId })).toBe('1.0');
  });
});

describe('scoped values and precedence', () => {
  it('a cluster value wins over the global one; reset falls back to the global value', async () => {
    ok(await admin.call('updateConfiguration', { name: 'cpu.overprovisioning.factor', value: '1.5' }), 'updateConfiguration');
    const answer = ok(await admin.call('updateConfiguration', { name: 'cpu.overprovisioning.factor', value: '2.0', clusterid: clusterId }), 'updateConfiguration');
    expect(answer.configuration).toMatchObject({ name: 'cpu.overprovisioning.factor', value: '2.0', scope: 'cluster' });
    expect(await valueOf('cpu.overprovisioning.factor', { clusterid: clusterId })).toBe('2.0');
    expect(await valueOf('cpu.overprovisioning.factor')).toBe('1.5');
    // What the capacity code reads: one lookup of the cluster's (and its zone's) values.
    expect((await settingsFor({ clusterId })).number('cpu.overprovisioning.factor')).toBe(2);
    expect((await settingsFor({ clusterId: randomUUID() })).number('cpu.overprovisioning.factor')).toBe(1.5);
    expect((await loadSettings()).number('cpu.overprovisioning.factor')).toBe(1.5);

    const events = (await editEvents()).length;
    const reset = ok(await admin.call('resetConfiguration', { name: 'cpu.overprovisioning.factor', clusterid: clusterId }), 'resetConfiguration');
    expect(reset.configuration).toMatchObject({ name: 'cpu.overprovisioning.factor', value: '1.5', scope: 'Cluster', defaultvalue: '1.0' });
    expect(await valueOf('cpu.overprovisioning.factor', { clusterid: clusterId })).toBe('1.5');
    expect((await editEvents())[0]).toMatchObject({
      type: 'CONFIGURATION.VALUE.EDIT',
      description: 'Successfully completed resetting configuration. Name: cpu.overprovisioning.factor New Value: 1.0',
    });
    expect((await editEvents()).length).toBe(events + 1);

    const global = ok(await admin.call('resetConfiguration', { name: 'cpu.overprovisioning.factor' }), 'resetConfiguration');
    expect(global.configuration).toMatchObject({ value: '1.0', scope: 'Cluster' });
    expect(await valueOf('cpu.overprovisioning.factor')).toBe('1.0');
  });

  it('a storage pool value wins for that pool only', async () => {
    ok(await admin.call('updateConfiguration', { name: 'storage.overprovisioning.factor', value: '3', storageid: poolId }), 'updateConfiguration');
    expect(await valueOf('storage.overprovisioning.factor', { storageid: poolId })).toBe('3');
    expect(await valueOf('storage.overprovisioning.factor')).toBe('2');
    expect((await settingsFor({ storagePoolId: poolId })).number('storage.overprovisioning.factor')).toBe(3);
    refused(
      await admin.call('updateConfiguration', { name: 'storage.overprovisioning.factor', value: '-1', storageid: poolId }),
      'updateConfiguration',
      431,
      4350,
      'storage.overprovisioning.factor should be greater than 0',
    );
    expect(await valueOf('storage.overprovisioning.factor', { storageid: poolId })).toBe('3');
  });

  it('account → domain → global, with enable.account.settings.for.domain and enable.domain.settings.for.child.domain', async () => {
    const name = 'allow.user.expunge.recover.vm' as const;
    // An account setting is not a domain setting until enable.account.settings.for.domain is on.
    refused(await admin.call('updateConfiguration', { name, value: 'true', domainid: sub.id }), 'updateConfiguration', 431, 4350, `Invalid scope id provided for the parameter ${name}`);
    expect(ok(await admin.call('listConfigurations', { domainid: sub.id }), 'listConfigurations').configuration ?? []).not.toContainEqual(
      expect.objectContaining({ name }),
    );

    ok(await admin.call('updateConfiguration', { name: 'enable.account.settings.for.domain', value: 'true' }), 'updateConfiguration');
    try {
      ok(await admin.call('updateConfiguration', { name, value: 'true', domainid: sub.id }), 'updateConfiguration');
      expect(await valueOf(name, { domainid: sub.id })).toBe('true');
      expect((await setting(name, { domainid: sub.id })).scope).toBe('domain');
      // The account inherits its domain's value; another domain's account does not.
      expect(await valueOf(name, { accountid: user.account.id })).toBe('true');
      expect(await valueOf(name, { accountid: outsider.account.id })).toBe('false');
      // A child domain inherits only with enable.domain.settings.for.child.domain.
      expect(await valueOf(name, { accountid: tenant.account.id })).toBe('false');
      ok(await admin.call('updateConfiguration', { name: 'enable.domain.settings.for.child.domain', value: 'true' }), 'updateConfiguration');
      expect(await valueOf(name, { accountid: tenant.account.id })).toBe('true');
      expect((await settingsFor({ accountId: tenant.account.id })).boolean(name)).toBe(true);
      ok(await admin.call('resetConfiguration', { name: 'enable.domain.settings.for.child.domain' }), 'resetConfiguration');

      // The account's own value wins; resetting it falls back to the domain's.
      ok(await admin.call('updateConfiguration', { name, value: 'false', accountid: user.account.id }), 'updateConfiguration');
      expect(await valueOf(name, { accountid: user.account.id })).toBe('false');
      const reset = ok(await admin.call('resetConfiguration', { name, accountid: user.account.id }), 'resetConfiguration');
      expect(reset.configuration).toMatchObject({ name, value: 'true', scope: 'Account' });
    } finally {
      ok(await admin.call('resetConfiguration', { name: 'enable.account.settings.for.domain' }), 'resetConfiguration');
    }
    // Without the flag the domain's value no longer reaches the account.
    expect(await valueOf(name, { accountid: user.account.id })).toBe('false');
    ok(await admin.call('updateConfiguration', { name, value: 'true' }), 'updateConfiguration');
    expect(await valueOf(name, { accountid: user.account.id })).toBe('true');
    ok(await admin.call('resetConfiguration', { name }), 'resetConfiguration');
  });

  it('resetConfiguration refuses unknown names, unsupported scopes and two scopes, changing nothing', async () => {
    ok(await admin.call('updateConfiguration', { name: 'expunge.delay', value: '300' }), 'updateConfiguration');
    const events = (await editEvents()).length;
    refused(await admin.call('resetConfiguration', { name: 'no.such.setting' }), 'resetConfiguration', 431, 4350, "Config parameter with name no.such.setting doesn't exist");
    refused(
      await admin.call('resetConfiguration', { name: 'expunge.delay', zoneid: zone.id }),
      'resetConfiguration',
      431,
      4350,
      'Invalid scope id provided for the parameter expunge.delay',
    );
    refused(
      await admin.call('resetConfiguration', { name: 'expunge.delay', zoneid: zone.id, accountid: user.account.id }),
      'resetConfiguration',
      431,
      4350,
      'cannot handle multiple IDs, provide only one ID corresponding to the scope',
    );
    expect(await valueOf('expunge.delay')).toBe('300');
    expect((await editEvents()).length).toBe(events);
    const reset = ok(await admin.call('resetConfiguration', { name: 'expunge.delay' }), 'resetConfiguration');
    expect(reset.configuration).toMatchObject({ name: 'expunge.delay', value: '86400', scope: 'Global' });
    expect(await valueOf('expunge.delay')).toBe('86400');
  });
});

describe('who may call', () => {
  it('users reach none of the three commands', async () => {
    for (const command of ['listConfigurations', 'updateConfiguration', 'resetConfiguration']) {
      refused(await user.client.call(command, { name: 'expunge.delay', value: '1' }), command, 432, 9999, DENIED);
    }
    expect(await valueOf('expunge.delay')).toBe('86400');
  });

  it('domain admins list and update the values of their domain and its accounts, never global ones, and cannot reset', async () => {
    const name = 'allow.user.expunge.recover.vm' as const;
    // Their own domain is assumed: a global setting is out of scope.
    refused(
      await domainAdmin.client.call('updateConfiguration', { name: 'expunge.delay', value: '5' }),
      'updateConfiguration',
      431,
      4350,
      'Invalid scope id provided for the parameter expunge.delay',
    );
    refused(
      await domainAdmin.client.call('updateConfiguration', { name: 'cpu.overprovisioning.factor', value: '5', clusterid: clusterId }),
      'updateConfiguration',
      431,
      4350,
      'cannot handle multiple IDs, provide only one ID corresponding to the scope',
    );
    refused(await domainAdmin.client.call('listConfigurations', { zoneid: zone.id }), 'listConfigurations', 431, 4350, 'cannot handle multiple IDs, provide only one ID corresponding to the scope');
    refused(await domainAdmin.client.call('resetConfiguration', { name }), 'resetConfiguration', 432, 9999, DENIED);

    // An account of its domain: yes; one outside it: no.
    const mine = ok(await domainAdmin.client.call('updateConfiguration', { name, value: 'true', accountid: user.account.id }), 'updateConfiguration');
    expect(mine.configuration).toMatchObject({ name, value: 'true', scope: 'account' });
    expect(await setting(name, { accountid: user.account.id }, domainAdmin.client)).toMatchObject({ value: 'true', scope: 'account' });
    const answer = await domainAdmin.client.call('updateConfiguration', { name, value: 'true', accountid: outsider.account.id });
    expect(answer.status).toBe(531);
    expect(answer.body.updateconfigurationresponse).toMatchObject({ errorcode: 531, cserrorcode: 4365 });
    expect(await valueOf(name, { accountid: outsider.account.id })).toBe('false');
    const listed = await domainAdmin.client.call('listConfigurations', { accountid: outsider.account.id });
    expect(listed.status).toBe(531);
    // Listing without ids shows its domain's values (none are Domain settings unless account settings extend to domains).
    expect(ok(await domainAdmin.client.call('listConfigurations'), 'listConfigurations')).toEqual({});
    ok(await admin.call('resetConfiguration', { name, accountid: user.account.id }), 'resetConfiguration');
  });

  it('listApis lists the three commands for the root admin, two for domain admins', async () => {
    const names = async (client: ApiClient) => (ok(await client.call('listApis'), 'listApis').api as any[]).map((api) => api.name);
    const adminApis = await names(admin);
    expect(adminApis).toEqual(expect.arrayContaining(['listConfigurations', 'updateConfiguration', 'resetConfiguration']));
    const daApis = await names(domainAdmin.client);
    expect(daApis).toEqual(expect.arrayContaining(['listConfigurations', 'updateConfiguration']));
    expect(daApis).not.toContain('resetConfiguration');
  });
});
