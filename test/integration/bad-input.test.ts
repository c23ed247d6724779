// Issue 11's defects, each through the HTTP API of a real local runtime: a map index that froze the
// runtime before authentication, empty updates that crashed with 530, integers without a range,
// control characters in names, requests too large for an envelope, and the slow-request log.
// (Login throttling per user is in auth.test.ts; the fuzzer that looks for more of the kind is
// fuzz.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeSetting } from '../../shared/settings.ts';
import { ApiClient, send, sendFrom, type ApiAnswer } from '../support/client.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { settles, waitFor } from '../support/wait.ts';
import { ok, refused, unique } from './identity-fixtures.ts';

let runtime: RunningRuntime;
let admin: ApiClient;

beforeAll(async () => {
  // Logs on, so the slow-request line can be read from the runtime's output.
  runtime = await startRuntime({ env: { MOLD_LOG_LEVEL: 'info' } });
  useRuntimeEndpoints(runtime);
  admin = new ApiClient(runtime.apiUrl, runtime.credentials);
});
afterAll(async () => {
  await runtime?.stop();
});

describe('map parameters (name[i].key) before authentication', () => {
  for (const index of ['400000000', '2147483647', '4294967294']) {
    it(`answers details[${index}].key without credentials with 401 at once, and a signed call meanwhile`, async () => {
      const hostile = send(runtime.apiUrl, [['command', 'listZones'], ['response', 'json'], [`details[${index}].key`, 'v']], 'GET');
      // Before the fix the hostile call held the runtime for 8 to 90 s; a signed call waited as long.
      const quick = await settles('a signed listZones sent beside it', admin.call('listZones'), 2_000);
      expect(quick.status).toBe(200);
      const refusal = (await hostile) as ApiAnswer;
      expect(refusal.status).toBe(401);
      expect(refusal.body).toEqual({ listzonesresponse: { uuidList: [], errorcode: 401, errortext: 'unable to verify user credentials and/or request signature' } });
    });
  }

  it('answers an undecodable map parameter of a signed call with upstream’s 430, after authentication', async () => {
    const answer = await admin.call('listZones', { 'details[4294967294].key': 'v' });
    refused(answer, 'listZones', 430, 'Unable to decode parameter details[4294967294].key; if specifying an object array, please use parameter[index].field=XXX, e.g. userGroupList[0].group=httpGroup', 9999);
    refused(await admin.call('listZones', { 'a[1][2].b': 'v' }), 'listZones', 430, /^Unable to decode parameter a\[1\]\[2\]\.b;/);
  });
});

describe('updates that change nothing', () => {
  it('answers updateZone, updatePod and updateCluster with only an id (or nothing new) with 200 and the unchanged object', async () => {
    const zone = ok(await admin.call('createZone', { name: unique('bz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
    const pod = ok(await admin.call('createPod', { zoneid: zone.id, name: unique('bp'), gateway: '10.9.0.1', netmask: '255.255.255.0', startip: '10.9.0.10', endip: '10.9.0.20' }), 'createPod').pod;
    const cluster = ok(await admin.call('addCluster', { zoneid: zone.id, podid: pod.id, clustername: unique('bc'), hypervisor: 'KVM', clustertype: 'CloudManaged' }), 'addCluster').cluster[0];

    expect(ok(await admin.call('updateZone', { id: zone.id }), 'updateZone').zone).toEqual(zone);
    expect(ok(await admin.call('updatePod', { id: pod.id }), 'updatePod').pod).toEqual(pod);
    expect(ok(await admin.call('updateCluster', { id: cluster.id }), 'updateCluster').cluster).toEqual(cluster);
    expect(ok(await admin.call('updateCluster', { id: cluster.id, clustertype: 'CloudManaged' }), 'updateCluster').cluster).toEqual(cluster);
    expect(ok(await admin.call('listClusters', { id: cluster.id }), 'listClusters').cluster).toEqual([cluster]);
  });
});

describe('integer and long parameters', () => {
  let offering: any;
  beforeAll(async () => {
    offering = ok(await admin.call('createDiskOffering', { name: unique('bdo'), displaytext: 'bad input', disksize: 1 }), 'createDiskOffering').diskoffering;
  });

  // The error repeats 200 characters of a value, and says how long it was.
  const tooLarge = (api: string, name: string, value: string) =>
    new RegExp(`^Unable to execute API command ${api} due to invalid value\\. Invalid parameter ${name} value=${value.length > 200 ? `${value.slice(0, 200)}…\\(${value.length} characters\\)` : value}: `);

  it('refuses an integer beyond Java’s int with 431 naming the parameter, and changes nothing', async () => {
    for (const sortkey of ['9'.repeat(400), '2147483648', '-2147483649']) {
      refused(await admin.call('updateDiskOffering', { id: offering.id, sortkey }), 'updateDiskOffering', 431, tooLarge('updatediskoffering', 'sortkey', sortkey));
    }
    expect(ok(await admin.call('listDiskOfferings', { id: offering.id }), 'listDiskOfferings').diskoffering).toEqual([offering]);
    // The bounds themselves are ints.
    for (const sortkey of ['2147483647', '-2147483648']) ok(await admin.call('updateDiskOffering', { id: offering.id, sortkey }), 'updateDiskOffering');
  });

  it('refuses a long beyond Java’s long, or beyond 2^53 where it is kept as a number, with 431 naming the parameter', async () => {
    for (const disksize of ['9223372036854775808', '9007199254740993', '9'.repeat(400)]) {
      refused(
        await admin.call('createDiskOffering', { name: unique('bdo'), displaytext: 'too big', disksize }),
        'createDiskOffering',
        431,
        tooLarge('creatediskoffering', 'disksize', disksize),
      );
    }
  });
});

describe('control characters', () => {
  const NUL = '\u0000';
  const RLO = '\u202e';
  const ESC = '\u001b';

  it('refuses NUL, control and bidi-override characters in names with 431 naming the parameter, and creates nothing', async () => {
    const zonesBefore = ok(await admin.call('listZones'), 'listZones').count ?? 0;
    for (const name of [`a${NUL}b`, `evil${RLO}txt.exe`, `x${ESC}[31m`, 'tab\there', 'line\nbreak']) {
      refused(await admin.call('createZone', { name, networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone', 431, /^Unable to execute API command createzone due to invalid value\. Invalid parameter name value=.*: /);
      refused(await admin.call('createDomain', { name }), 'createDomain', 431, /Invalid parameter name value=/);
    }
    expect(ok(await admin.call('listZones'), 'listZones').count ?? 0).toBe(zonesBefore);
  });

  it('refuses control characters in texts too, but keeps right-to-left text and line breaks there', async () => {
    const offering = ok(await admin.call('createServiceOffering', { name: unique('bso'), displaytext: 'plain', cpunumber: 1, cpuspeed: 100, memory: 64 }), 'createServiceOffering').serviceoffering;
    for (const [name, value] of [['name', `n${RLO}x`], ['displaytext', `d${NUL}x`], ['displaytext', `d${ESC}x`]]) {
      refused(await admin.call('updateServiceOffering', { id: offering.id, [name]: value }), 'updateServiceOffering', 431, new RegExp(`Invalid parameter ${name} value=`));
    }
    const role = ok(await admin.call('createRole', { name: unique('brole'), type: 'User' }), 'createRole').role;
    refused(await admin.call('updateRole', { id: role.id, name: `r${RLO}x` }), 'updateRole', 431, /Invalid parameter name value=/);
    refused(await admin.call('updateRole', { id: role.id, description: `d${NUL}` }), 'updateRole', 431, /Invalid parameter description value=/);
    // Hebrew with a line break is text, not a control sequence.
    const text = 'שלום\nעולם';
    expect(ok(await admin.call('updateServiceOffering', { id: offering.id, displaytext: text }), 'updateServiceOffering').serviceoffering.displaytext).toBe(text);
  });

  it('keeps an XML answer well-formed when the refused value had a control character in it', async () => {
    const answer = await admin.call('createZone', { name: `a${NUL}b${ESC}`, networktype: 'Advanced' }, { response: 'xml' });
    expect(answer.status).toBe(431);
    const xml = String(answer.body);
    expect(xml).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?><createzoneresponse cloud-stack-version="[^"]+"><errorcode>431<\/errorcode>.*<errortext>.*Invalid parameter name value=a\\u0000b\\u001B: /);
    // Only characters XML 1.0 allows.
    expect(xml).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/);
  });
});

describe('request size', () => {
  const bigQuery = (bytes: number): [string, string][] => [['command', 'listZones'], ['response', 'json'], ['padding', 'x'.repeat(bytes)]];

  it('answers a query string over 16 KiB with a 431 envelope that says what was too large', async () => {
    for (const bytes of [17 * 1024, 100 * 1024]) {
      const answer = await sendFrom(runtime.apiUrl, bigQuery(bytes));
      expect(answer.status).toBe(431);
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      const body = answer.body.listzonesresponse ?? answer.body.errorresponse;
      expect(body).toMatchObject({ errorcode: 431, cserrorcode: 9999, errortext: expect.stringMatching(/query string .*too large.*16384 bytes/i) });
    }
    // Past what the local API Gateway stand-in reads of a request line, still an envelope (XML, CloudStack's default).
    const beyond = await sendFrom(runtime.apiUrl, bigQuery(1100 * 1024));
    expect(beyond.status).toBe(431);
    expect(String(beyond.body)).toMatch(/<errorresponse cloud-stack-version="[^"]+"><errorcode>431<\/errorcode><cserrorcode>9999<\/cserrorcode><errortext>The query string is too large/);
  });

  it('answers a form body over 1 MiB with a 431 envelope', async () => {
    const answer = await send(runtime.apiUrl, [['command', 'listZones'], ['response', 'json'], ['padding', 'x'.repeat(1024 * 1024 + 1)]], 'POST');
    expect(answer.status).toBe(431);
    expect(answer.body.listzonesresponse).toMatchObject({ errorcode: 431, errortext: expect.stringMatching(/body .*too large.*1048576 bytes/i) });
  });

  it('answers more than 5,000 parameters with a 431 envelope', async () => {
    const pairs: [string, string][] = [['command', 'listZones'], ['response', 'json']];
    for (let i = 0; i < 5001; i++) pairs.push([`p${i}`, '']);
    const answer = await send(runtime.apiUrl, pairs, 'POST');
    expect(answer.status).toBe(431);
    expect(answer.body.listzonesresponse).toMatchObject({ errorcode: 431, errortext: expect.stringMatching(/too many parameters.*5000/i) });
  });
});

describe('slow requests', () => {
  it('logs a request that runs longer than api.slow.request.threshold, with its command', async () => {
    await storeSetting('api.slow.request.threshold', '1');
    try {
      ok(await admin.call('listDomains', { listall: true }), 'listDomains');
      const logged = () => runtime.output().split('\n').filter((line) => line.includes('"slow request"')).map((line) => JSON.parse(line));
      await waitFor('the slow-request line of listDomains', () => logged().some((line) => line.command === 'listDomains'));
      expect(logged()).toContainEqual(expect.objectContaining({ level: 'warn', message: 'slow request', command: 'listDomains', ms: expect.any(Number) }));
    } finally {
      await storeSetting('api.slow.request.threshold', '1000');
    }
  });
});
