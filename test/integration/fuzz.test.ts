// The hostile-input fuzzer (issue 11): property-based (fast-check), seeded and bounded, it derives
// malformed calls from every command's own definition (the registry's zod schemas and their listApis
// metadata: type, length, required, a list's item type) and sends them to a real local runtime, as
// the root admin, as a User, and without or with wrong credentials. For every call it asserts: a
// CloudStack envelope whose errorcode is the HTTP status; a status among 401, 405, 429, 431, 432 and
// 530–537 (430 only for an undecodable map name, as upstream); no generic "Internal error" 530; a
// quick signed call sent alongside is answered. After the run every listing is as before.
//
// FUZZ_SEED, FUZZ_RUNS and FUZZ_SECONDS change the seed and the bounds; the summary it prints (calls,
// statuses, defects) comes with the seed, so a failing run can be replayed.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublic, type AnyCommand } from '../../functions/api/command.ts';
import { COMMANDS } from '../../functions/api/registry.ts';
import { describeParam, type ParamType } from '../../shared/cloudstack/params.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { ApiClient, send, type ApiAnswer } from '../support/client.ts';
import { seedMember } from '../support/members.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { settles } from '../support/wait.ts';
import { seedTemplate, seedVm } from '../support/vm-seed.ts';
import { ok, unique } from './identity-fixtures.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261122);
const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const SECONDS = Number(process.env.FUZZ_SECONDS ?? 35);
/** What the quick call beside each hostile one needs on a quiet machine (settles() stretches it): not a measurement (bench:hostile measures). */
const QUICK_MS = 2_000;

const REFUSALS = new Set([401, 405, 429, 431, 432, 530, 531, 532, 533, 534, 535, 536, 537]);
const GENERIC_530 = 'Internal error executing command, please contact your system administrator';

interface Param {
  name: string;
  cstype: ParamType;
  required: boolean;
  length: number;
  collectionType?: ParamType;
}

const paramsOf = (command: AnyCommand): Param[] =>
  Object.entries(command.params as Record<string, never>).map(([name, schema]) => {
    const meta = describeParam(schema);
    return { name, cstype: meta.cstype, required: meta.required, length: meta.length ?? 255, collectionType: meta.collectionType };
  });

/** Every command but login and logout (whose hostile shape, a GET login, has a defect of its own). */
const FUZZED = COMMANDS.filter((command) => !isPublic(command)).map((command) => ({ command, params: paramsOf(command) }));
type Fuzzed = (typeof FUZZED)[number];

const isList = (command: AnyCommand) => command.name.startsWith('list');

/** Commands that answer another user's object with a denial in a successful answer, as upstream does. */
const IN_BODY_DENIALS = new Set(['createConsoleEndpoint']);

// ---- values: a well-formed one for each type, and malformed ones by CloudStack's rules ----

function wellFormed(param: Param): string | undefined {
  switch (param.cstype) {
    case 'uuid':
      return randomUUID();
    case 'integer':
    case 'long':
    case 'short':
      return '1';
    case 'boolean':
      return 'true';
    case 'date':
      return '2026-01-01';
    case 'list':
      return param.collectionType === 'uuid' ? randomUUID() : 'fuzz';
    case 'map':
      return undefined;
    default:
      return 'fuzz';
  }
}

/** Characters no parameter takes (C0, C1, DEL, noncharacters), and those no name takes (bidi, line breaks). */
const CONTROL = fc.constantFrom('\u0000', '\u0001', '\u0008', '\u000b', '\u001b', '\u007f', '\u0085', '\u009b', '\uffff', '\ufffe');
const FORMATTING = fc.constantFrom('\u202e', '\u202d', '\u2066', '\u2069', '\u200e', '\u200f', '\u061c', '\ufeff', '\u2028', '\t', '\n', '\r');
const withInside = (bad: fc.Arbitrary<string>) =>
  fc.tuple(fc.string({ maxLength: 8 }), bad, fc.string({ maxLength: 8 })).map(([a, c, b]) => `${a}${c}${b}`);

const INT_BEYOND = fc.constantFrom('2147483648', '-2147483649', '4294967296', '99999999999');
const LONG_BEYOND = fc.constantFrom('9223372036854775808', '-9223372036854775809', '9007199254740993', '-9007199254740993', '18446744073709551616');
const HUGE_DIGITS = fc.integer({ min: 20, max: 2000 }).map((n) => '9'.repeat(n));
const NOT_A_NUMBER = fc.constantFrom('1e3', '0x10', '1.5', '١٢٣', 'NaN', 'Infinity', '--1', '1 2', '', ' ');
const NOT_A_UUID = fc.oneof(fc.constantFrom('1', '-1', 'null', '00000000-0000-0000-0000-00000000000g', `${randomUUID()}x`, `{${randomUUID()}}`), fc.string({ minLength: 1, maxLength: 40 }).filter((s) => s.trim() !== ''));
const NOT_A_BOOLEAN = fc.constantFrom('yes', '1', '0', 'TRUE ', 'ja', 'null', 'truee');
const NOT_A_DATE = fc.constantFrom('yesterday', '2026-13-45', '0000-00-00', 'now', '31/12/2026', 'x');

/** A value the parameter's type refuses, by its CloudStack type: a defect whatever else the call has. */
function malformed(param: Param, kind: 'wrongType' | 'outOfRange' | 'oversized' | 'control'): fc.Arbitrary<string> | undefined {
  const { cstype } = param;
  const numeric = cstype === 'integer' || cstype === 'long' || cstype === 'short';
  switch (kind) {
    case 'wrongType':
      if (numeric) return NOT_A_NUMBER.filter((v) => v.trim() !== '');
      if (cstype === 'uuid') return NOT_A_UUID;
      if (cstype === 'boolean') return NOT_A_BOOLEAN;
      if (cstype === 'date') return NOT_A_DATE;
      if (cstype === 'list' && param.collectionType === 'uuid') return fc.constantFrom(`${randomUUID()},nope`, 'a,,b', `${randomUUID()};${randomUUID()}`);
      if (cstype === 'map') return fc.constantFrom('plain', '{"key":"v"}');
      return undefined;
    case 'outOfRange':
      if (cstype === 'integer' || cstype === 'short') return fc.oneof(INT_BEYOND, HUGE_DIGITS);
      if (cstype === 'long') return fc.oneof(LONG_BEYOND, HUGE_DIGITS);
      return undefined;
    case 'oversized':
      if (cstype === 'string') return fc.constant('x'.repeat(param.length + 1));
      if (cstype === 'uuid') return fc.constant(`${randomUUID()}${'0'.repeat(300)}`);
      return undefined;
    case 'control':
      if (cstype === 'string' || cstype === 'uuid' || cstype === 'date' || cstype === 'list') return withInside(CONTROL);
      return undefined;
  }
}

// ---- calls ----

type Caller = 'admin' | 'user' | 'anonymous' | 'forged';
type Defect =
  | 'missing'
  | 'wrongType'
  | 'outOfRange'
  | 'oversized'
  | 'control'
  | 'nameFormatting'
  | 'mapSyntax'
  | 'foreignId'
  | 'unsigned'
  | 'forged'
  | 'unknownCommand'
  | 'hugeQuery'
  | 'loginByGet';

interface Call {
  defect: Defect;
  command: string;
  caller: Caller;
  method: 'GET' | 'POST';
  params: Record<string, string>;
}

/** Names of other users' objects and ids of nothing, filled in once the world is seeded. */
const foreign: { ids: string[] } = { ids: [] };

const upperSome = (name: string, upper: boolean) => (upper ? name.toUpperCase() : name);

/** The required parameters well-formed, except the one the defect is about. */
function base(fuzzed: Fuzzed, except?: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const param of fuzzed.params) {
    if (!param.required || param.name === except) continue;
    const value = wellFormed(param);
    if (value !== undefined) params[param.name] = value;
  }
  return params;
}

function callOf(fuzzed: Fuzzed): fc.Arbitrary<Call> {
  const { command, params } = fuzzed;
  const options: fc.Arbitrary<Call>[] = [];
  const method = fc.constantFrom<'GET' | 'POST'>('GET', 'POST');
  const caller = fc.constantFrom<Caller>('admin', 'admin', 'admin', 'user');
  const make = (defect: Defect, extra: fc.Arbitrary<{ params: Record<string, string>; caller?: Caller }>) =>
    fc.tuple(extra, method, caller).map(([e, m, c]) => ({ defect, command: command.name, caller: e.caller ?? c, method: defect === 'hugeQuery' ? 'GET' : m, params: e.params }));

  const required = params.filter((p) => p.required);
  if (required.length > 0) {
    options.push(make('missing', fc.constantFrom(...required).map((p) => ({ params: base(fuzzed, p.name) }))));
  }
  for (const kind of ['wrongType', 'outOfRange', 'oversized', 'control'] as const) {
    const targets = params.map((p) => [p, malformed(p, kind)] as const).filter(([, arb]) => arb !== undefined);
    if (targets.length === 0) continue;
    options.push(
      make(
        kind,
        fc.constantFrom(...targets).chain(([p, arb]) => fc.tuple(arb!, fc.boolean()).map(([value, upper]) => ({ params: { ...base(fuzzed, p.name), [upperSome(p.name, upper)]: value } }))),
      ),
    );
  }
  const strings = params.filter((p) => p.cstype === 'string' && /name|account|keyword|keypair|hypervisor|url|tags?$/.test(p.name));
  if (strings.length > 0) {
    options.push(make('nameFormatting', fc.tuple(fc.constantFrom(...strings), withInside(FORMATTING)).map(([p, value]) => ({ params: { ...base(fuzzed, p.name), [p.name]: value } }))));
  }
  const mapNames = [...params.filter((p) => p.cstype === 'map').map((p) => p.name), 'details', 'tags'];
  const badEntry = fc.oneof(
    fc.tuple(fc.constantFrom(...mapNames), fc.constantFrom('2147483648', '4294967294', '99999999999999999999', '-2147483649', 'x', '', '1.5', '0x1')).map(([n, i]) => `${n}[${i}].key`),
    fc.constantFrom(...mapNames).map((n) => `${n}[0][1].key`),
    fc.constantFrom(...mapNames).map((n) => `${n}[0]key`),
    fc.constantFrom(...mapNames).map((n) => `${n}]0[.key`),
    fc.constantFrom(...mapNames).map((n) => `a.${n}[0].key`),
  );
  options.push(make('mapSyntax', badEntry.map((name) => ({ params: { ...base(fuzzed), [name]: 'v' } }))));
  const ids = params.filter((p) => p.cstype === 'uuid' || (p.cstype === 'list' && p.collectionType === 'uuid'));
  // Another user's objects, as a User: for commands that act (a list may rightly answer an empty page).
  if (ids.length > 0 && !isList(command)) {
    options.push(
      make(
        'foreignId',
        fc.tuple(fc.subarray(ids, { minLength: 1 }), fc.infiniteStream(fc.constantFrom(...foreign.ids))).map(([chosen, stream]) => {
          const params = base(fuzzed);
          for (const p of ids) if (p.name in params || chosen.includes(p)) params[p.name] = stream.next().value;
          return { params, caller: 'user' as Caller };
        }),
      ),
    );
  }
  options.push(make('unsigned', fc.constant({ params: base(fuzzed), caller: 'anonymous' as Caller })));
  options.push(make('forged', fc.constant({ params: base(fuzzed), caller: 'forged' as Caller })));
  options.push(make('hugeQuery', fc.integer({ min: 17 * 1024, max: 60 * 1024 }).map((n) => ({ params: { ...base(fuzzed), padding: 'x'.repeat(n) } }))));
  return fc.oneof(...options);
}

const CALLS: fc.Arbitrary<Call> = fc.oneof(
  { weight: 30, arbitrary: fc.constantFrom(...FUZZED).chain(callOf) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.string({ minLength: 1, maxLength: 30 }), fc.constantFrom<'GET' | 'POST'>('GET', 'POST'))
      .filter(([name]) => !COMMANDS.some((c) => c.name === name))
      .map(([name, method]) => ({ defect: 'unknownCommand' as Defect, command: name, caller: 'admin' as Caller, method, params: {} })),
  },
  { weight: 1, arbitrary: fc.constant<Call>({ defect: 'loginByGet', command: 'login', caller: 'anonymous', method: 'GET', params: { username: 'nobody', password: 'x' } }) },
);

// ---- the run ----

let runtime: RunningRuntime;
let admin: ApiClient;
let user: ApiClient;
let forged: ApiClient;

/** What every listing shows, as the root admin sees it. */
async function listings(): Promise<Record<string, unknown>> {
  const lists: [string, Record<string, string | number | boolean>][] = [
    ['listZones', {}],
    ['listPods', {}],
    ['listClusters', {}],
    ['listHosts', {}],
    ['listStoragePools', {}],
    ['listDomains', { listall: true }],
    ['listAccounts', { listall: true }],
    ['listUsers', { listall: true }],
    ['listRoles', {}],
    ['listServiceOfferings', {}],
    ['listDiskOfferings', {}],
    ['listNetworks', { listall: true }],
    ['listPhysicalNetworks', {}],
    ['listTemplates', { templatefilter: 'all', listall: true }],
    ['listIsos', { isofilter: 'all', listall: true }],
    ['listVirtualMachines', { listall: true }],
    ['listVolumes', { listall: true }],
    ['listSSHKeyPairs', { listall: true }],
    ['listAffinityGroups', { listall: true }],
    ['listConfigurations', { pagesize: -1 }],
    ['listResourceLimits', { listall: true }],
    ['listEvents', { listall: true, pagesize: -1 }],
    ['listAlerts', {}],
    ['listAsyncJobs', { listall: true }],
    ['listAgents', {}],
  ];
  const seen: Record<string, unknown> = {};
  for (const [command, params] of lists) seen[command] = ok(await admin.call(command, params), command);
  return seen;
}

async function send1(call: Call): Promise<ApiAnswer> {
  const pairs: [string, string][] = [['command', call.command], ...Object.entries(call.params)];
  if (call.caller === 'admin') return admin.call(call.command, call.params, { method: call.method });
  if (call.caller === 'user') return user.call(call.command, call.params, { method: call.method });
  if (call.caller === 'forged') return forged.call(call.command, call.params, { method: call.method });
  return send(runtime.apiUrl, [...pairs, ['response', 'json']], call.method);
}


describe('hostile input, derived from every command’s definition', () => {
  beforeAll(async () => {
    runtime = await startRuntime();
    useRuntimeEndpoints(runtime);
    admin = new ApiClient(runtime.apiUrl, runtime.credentials);
    forged = new ApiClient(runtime.apiUrl, { apikey: runtime.credentials.apikey, secretkey: 'not-the-secret' });
    // A world to aim at: infrastructure, offerings, and two Users of one domain, one of whom owns things.
    const domain = ok(await admin.call('createDomain', { name: unique('fz') }), 'createDomain').domain;
    const zone = ok(await admin.call('createZone', { name: unique('fz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
    const pod = ok(await admin.call('createPod', { zoneid: zone.id, name: unique('fz'), gateway: '10.8.0.1', netmask: '255.255.255.0', startip: '10.8.0.10', endip: '10.8.0.20' }), 'createPod').pod;
    ok(await admin.call('addCluster', { zoneid: zone.id, podid: pod.id, clustername: unique('fz'), hypervisor: 'KVM', clustertype: 'CloudManaged' }), 'addCluster');
    const offering = ok(await admin.call('createServiceOffering', { name: unique('fz'), displaytext: 'fz', cpunumber: 1, cpuspeed: 100, memory: 64 }), 'createServiceOffering').serviceoffering;
    ok(await admin.call('createDiskOffering', { name: unique('fz'), displaytext: 'fz', disksize: 1 }), 'createDiskOffering');
    const inDomain = (await getDomain(domain.id))!;
    const alice = await seedMember(runtime.apiUrl, unique('alice'), inDomain, 'User');
    const bob = await seedMember(runtime.apiUrl, unique('bob'), inDomain, 'User');
    user = alice.client;
    const created = ok(await bob.client.call('createAffinityGroup', { name: unique('fz'), type: 'host anti-affinity' }), 'createAffinityGroup');
    const group = created.affinitygroup ?? (await bob.client.waitForJob(created.jobid)).jobresult.affinitygroup;
    const keypair = ok(await bob.client.call('createSSHKeyPair', { name: unique('fz') }), 'createSSHKeyPair').keypair;
    const template = await seedTemplate({ accountId: bob.account.id, domain: { id: inDomain.id, tree: inDomain.tree } }, zone.id, unique('fz'), 'fz');
    const vm = await seedVm({ id: bob.account.id, domainId: inDomain.id, domainTree: inDomain.tree, userId: bob.user.id }, { zoneId: zone.id, serviceOfferingId: offering.id, templateId: template.id });
    foreign.ids = [vm.id, vm.rootVolumeId, group.id, keypair.id ?? randomUUID(), bob.user.id, bob.account.id, randomUUID(), randomUUID()];
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  it(`refuses every malformed call with a CloudStack error and changes nothing (seed ${SEED})`, async () => {
    const before = await listings();
    const statuses = new Map<number, number>();
    const defects = new Map<string, number>();
    const commands = new Set<string>();
    let calls = 0;
    let generic530 = 0;
    const started = Date.now();

    await fc.assert(
      fc.asyncProperty(CALLS, async (call) => {
        const hostile = send1(call);
        const quick = admin.call('listCapabilities');
        const answer = await hostile;
        const quickAnswer = await settles(`the quick call beside ${call.defect} ${call.command}`, quick, QUICK_MS);
        calls++;
        commands.add(call.command);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        defects.set(call.defect, (defects.get(call.defect) ?? 0) + 1);
        const shown = `${call.defect} ${call.caller} ${call.method} ${call.command} ${JSON.stringify(call.params).slice(0, 300)} → ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`;

        expect(quickAnswer.status, `quick call beside ${shown}`).toBe(200);
        // Upstream's createConsoleEndpoint answers a VM the caller may not reach in its body, not with an
        // error: { success: false, details: "Permission denied" } (ConsoleAccessManagerImpl).
        if (call.defect === 'foreignId' && IN_BODY_DENIALS.has(call.command)) {
          expect(answer.status, shown).toBe(200);
          expect(answer.body, shown).toEqual({ [`${call.command.toLowerCase()}response`]: { consoleendpoint: { success: false, details: 'Permission denied' } } });
          return;
        }
        // An envelope: one <name>response whose errorcode is the status.
        expect(answer.headers.get('content-type'), shown).toMatch(/^application\/json/);
        const names = Object.keys(answer.body);
        expect(names, shown).toHaveLength(1);
        expect(names[0], shown).toMatch(/response$/);
        const envelope = answer.body[names[0]];
        expect(envelope, shown).toMatchObject({ uuidList: [], errorcode: answer.status, errortext: expect.any(String) });
        if (envelope.errortext === GENERIC_530) generic530++;
        expect(envelope.errortext, shown).not.toBe(GENERIC_530);
        if (call.defect === 'unsigned' || call.defect === 'forged') expect(answer.status, shown).toBe(401);
        else if (call.defect === 'unknownCommand') expect(answer.status, shown).toBe(432);
        else if (call.defect === 'loginByGet') expect(answer.status, shown).toBe(405);
        else if (call.defect === 'hugeQuery') expect(answer.status, shown).toBe(431);
        else if (call.defect === 'mapSyntax') expect([430, 432], shown).toContain(answer.status);
        else expect(REFUSALS.has(answer.status), shown).toBe(true);
      }),
      { seed: SEED, numRuns: RUNS, interruptAfterTimeLimit: SECONDS * 1000, markInterruptAsFailure: false, endOnFailure: true },
    );

    const after = await listings();
    const changed = Object.keys(before).filter((name) => JSON.stringify(before[name]) !== JSON.stringify(after[name]));
    const sorted = (map: Map<string | number, number>) => Object.fromEntries([...map].sort(([a], [b]) => String(a).localeCompare(String(b), 'en', { numeric: true })));
    console.log(
      `fuzz: seed ${SEED}, ${calls} calls in ${((Date.now() - started) / 1000).toFixed(1)} s over ${commands.size} commands; ` +
        `status ${JSON.stringify(sorted(statuses))}; defects ${JSON.stringify(sorted(defects))}; generic 530s ${generic530}; listings changed ${changed.length}`,
    );
    expect(changed).toEqual([]);
    expect(generic530).toBe(0);
    // Bounded in time, but not so short that it proves nothing.
    expect(calls).toBeGreaterThanOrEqual(Math.min(RUNS, 150));
  });
});
