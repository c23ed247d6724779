// listApis, API throttling, XML/JSON parity and error hygiene, through the HTTP API.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../../functions/api/command.ts';
import { COMMANDS, mayCall } from '../../functions/api/registry.ts';
import { createAccount, getDomain, registerUserKeys, type Domain } from '../../shared/db/identity.ts';
import { createRole, listRoles, type Role } from '../../shared/db/roles.ts';
import { storeSetting } from '../../shared/settings.ts';
import { ApiClient, type Keys } from '../support/client.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { patience, sleep } from '../support/wait.ts';

let runtime: RunningRuntime;
let root: Domain;
let roles: Role[];
let admin: ApiClient;

async function seedAccount(name: string, role: Role): Promise<{ client: ApiClient; keys: Keys }> {
  const { user } = await createAccount(
    { name, domain: root, roleId: role.id, roleType: role.type },
    { username: name, password: 'Secret-pass-1', firstname: name, lastname: 'Tester' },
  );
  const keys = await registerUserKeys(user);
  return { client: new ApiClient(runtime.apiUrl, keys), keys };
}

const roleNamed = (name: string) => roles.find((role) => role.name === name)!;

beforeAll(async () => {
  runtime = await startRuntime();
  useRuntimeEndpoints(runtime);
  root = (await getDomain(runtime.credentials.domainid))!;
  roles = await listRoles();
  admin = new ApiClient(runtime.apiUrl, runtime.credentials);
});
afterAll(async () => {
  await runtime?.stop();
});

/** The commands a caller of this role may call, by the registry. */
const expectedFor = (role: Role) => COMMANDS.filter((command) => mayCall({ role } as Caller, command)).map((command) => command.name).sort();

describe('listApis', () => {
  it('lists for the root admin exactly the commands its role may call, each described from its definition', async () => {
    const { status, body } = await admin.call('listApis');
    expect(status).toBe(200);
    const apis: any[] = body.listapisresponse.api;
    expect(body.listapisresponse.count).toBe(apis.length);
    expect(apis.map((api) => api.name).sort()).toEqual(expectedFor(roleNamed('Root Admin')));
    for (const api of apis) {
      const command = COMMANDS.find((c) => c.name === api.name)!;
      expect(api).toMatchObject({ name: command.name, description: command.description, isasync: Boolean(command.isasync) });
      expect(typeof api.description).toBe('string');
      expect(api.params.map((p: { name: string }) => p.name).sort()).toEqual(Object.keys(command.params).sort());
      for (const param of api.params) {
        expect(param).toEqual({
          name: expect.stringMatching(/^[a-z0-9_]+$/),
          description: expect.any(String),
          type: expect.stringMatching(/^(uuid|string|integer|long|boolean|list|map|date|short)$/),
          length: expect.any(Number),
          required: expect.any(Boolean),
          ...(param.since && { since: param.since }),
        });
      }
    }
    expect(apis.find((api) => api.name === 'listApis')).toEqual({
      name: 'listApis',
      description: 'lists all available apis on the server, provided by the Api Discovery plugin',
      since: '4.1.0',
      isasync: false,
      params: [{ name: 'name', description: 'API name', type: 'string', length: 255, required: false }],
      response: [],
    });
    expect(apis.find((api) => api.name === 'login')).toMatchObject({
      params: expect.arrayContaining([{ name: 'username', description: 'Username', type: 'string', length: 255, required: true }]),
    });
  });

  it('lists for a user only what the User role may call: no admin command', async () => {
    const { client } = await seedAccount('lister', roleNamed('User'));
    const { body } = await client.call('listApis');
    const names: string[] = body.listapisresponse.api.map((api: { name: string }) => api.name).sort();
    expect(names).toEqual(expectedFor(roleNamed('User')));
    for (const name of names) {
      const command = COMMANDS.find((c) => c.name === name)!;
      if ('roles' in command) expect(command.roles).toContain('User');
    }
    // Every command kept from the user is one it is refused when it calls it.
    for (const command of COMMANDS.filter((c) => !names.includes(c.name))) {
      const { status } = await client.call(command.name);
      expect(status).toBe(432);
    }
  });

  it('follows the caller’s role rules: a denied command is neither listed nor callable', async () => {
    const role = await createRole({
      name: 'No capabilities',
      type: 'User',
      description: 'denies listCapabilities',
      isdefault: false,
      ispublic: true,
      permissions: [{ rule: 'listCapabilities', permission: 'deny' }],
    });
    const { client } = await seedAccount('restricted', role);
    const { body } = await client.call('listApis');
    const names: string[] = body.listapisresponse.api.map((api: { name: string }) => api.name);
    expect(names).not.toContain('listCapabilities');
    expect(names).toContain('listApis');
    expect(names.sort()).toEqual(expectedFor(role));
    expect((await client.call('listCapabilities')).status).toBe(432);
    const named = await client.call('listApis', { name: 'listCapabilities' });
    expect(named.status).toBe(530);
    expect(named.body).toEqual({
      listapisresponse: {
        uuidList: [],
        errorcode: 530,
        cserrorcode: 9999,
        errortext: 'Api Discovery plugin was unable to find an api by that name or process any apis',
      },
    });
  });

  it('filters by name, case-sensitively, and refuses an unknown name with upstream’s error', async () => {
    const { body } = await admin.call('listApis', { name: 'listCapabilities' });
    expect(body.listapisresponse.count).toBe(1);
    expect(body.listapisresponse.api).toEqual([
      { name: 'listCapabilities', description: 'Lists capabilities', isasync: false, params: [], response: [] },
    ]);
    for (const name of ['listFrobnicators', 'listcapabilities']) {
      const { status, body: error, headers } = await admin.call('listApis', { name });
      expect(status).toBe(530);
      expect(error).toEqual({
        listapisresponse: {
          uuidList: [],
          errorcode: 530,
          cserrorcode: 9999,
          errortext: 'Api Discovery plugin was unable to find an api by that name or process any apis',
        },
      });
      expect(headers.get('content-type')).toMatch(/^application\/json/);
    }
  });
});

// ---- XML ----

interface XmlNode {
  name: string;
  attributes: Record<string, string>;
  children: XmlNode[];
  text: string;
}

/** Enough XML for CloudStack responses: a declaration, elements, attributes, text, character references. */
function parseXml(source: string): XmlNode {
  let at = 0;
  const decode = (text: string) =>
    text.replace(/&(#x[0-9a-f]+|#\d+|lt|gt|amp|quot|apos);/gi, (_, ref: string) => {
      if (ref[0] === '#') return String.fromCodePoint(ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : Number(ref.slice(1)));
      return ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" } as Record<string, string>)[ref];
    });
  const declaration = /^<\?xml[^?]*\?>/.exec(source);
  if (declaration) at = declaration[0].length;
  function element(): XmlNode {
    const open = /^<([A-Za-z_][\w.-]*)((?:\s+[\w.-]+="[^"]*")*)\s*(\/?)>/.exec(source.slice(at));
    if (!open) throw new Error(`expected an element at ${at}: ${source.slice(at, at + 40)}`);
    at += open[0].length;
    const attributes: Record<string, string> = {};
    for (const [, key, value] of open[2].matchAll(/([\w.-]+)="([^"]*)"/g)) attributes[key] = decode(value);
    const node: XmlNode = { name: open[1], attributes, children: [], text: '' };
    if (open[3] === '/') return node;
    for (;;) {
      if (source.startsWith(`</${node.name}>`, at)) {
        at += node.name.length + 3;
        return node;
      }
      if (source[at] === '<') node.children.push(element());
      else {
        const end = source.indexOf('<', at);
        if (end < 0) throw new Error(`unclosed <${node.name}>`);
        node.text += decode(source.slice(at, end));
        at = end;
      }
    }
  }
  const document = element();
  if (at !== source.length) throw new Error(`trailing content after the root element: ${source.slice(at, at + 40)}`);
  return document;
}

/** Every field as a list of values, every scalar as text: the shape both formats share. */
type Shape = string | { [name: string]: Shape[] };

function xmlShape(node: XmlNode): Shape {
  if (node.children.length === 0) return node.text;
  const shape: { [name: string]: Shape[] } = {};
  for (const child of node.children) (shape[child.name] ??= []).push(xmlShape(child));
  return shape;
}

function jsonShape(value: unknown): Shape {
  if (value === null || typeof value !== 'object') return String(value);
  const shape: { [name: string]: Shape[] } = {};
  for (const [name, child] of Object.entries(value)) {
    const values = Array.isArray(child) ? child : [child];
    // An empty list is no element at all in XML (upstream's uuidList, an api's response list).
    if (values.length > 0) shape[name] = values.map(jsonShape);
  }
  return Object.keys(shape).length === 0 ? '' : shape;
}

async function bothFormats(client: ApiClient, command: string, params: Record<string, string> = {}) {
  const [json, xml] = await Promise.all([client.call(command, params), client.call(command, params, { response: 'xml' })]);
  expect(xml.headers.get('content-type')).toMatch(/^text\/xml/);
  expect(json.headers.get('content-type')).toMatch(/^application\/json/);
  expect(xml.status).toBe(json.status);
  expect(typeof xml.body).toBe('string');
  expect(xml.body.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).toBe(true);
  const document = parseXml(xml.body);
  const [responseName] = Object.keys(json.body);
  expect(document.name).toBe(responseName);
  expect(document.attributes).toEqual({ 'cloud-stack-version': '4.20.0.0' });
  return { json, xml, document };
}

describe('XML and JSON carry the same data', () => {
  it('the XML parser in this test reads what it should', () => {
    const document = parseXml('<?xml version="1.0" encoding="UTF-8"?><a v="1"><b>x &#60;&amp;&#x3e; y</b><b>2</b><c></c><d/></a>');
    expect(xmlShape(document)).toEqual({ b: ['x <&> y', '2'], c: [''], d: [''] });
    expect(() => parseXml('<a><b></a>')).toThrow();
  });

  it('for listCapabilities', async () => {
    const { json, document } = await bothFormats(admin, 'listCapabilities');
    expect(xmlShape(document)).toEqual(jsonShape(json.body.listcapabilitiesresponse));
  });

  it('for listApis, lists of objects of lists included', async () => {
    const { json, document } = await bothFormats(admin, 'listApis');
    expect(json.status).toBe(200);
    expect(xmlShape(document)).toEqual(jsonShape(json.body.listapisresponse));
    const { json: one, document: oneXml } = await bothFormats(admin, 'listApis', { name: 'login' });
    expect(xmlShape(oneXml)).toEqual(jsonShape(one.body.listapisresponse));
  });

  it('for errors: 530, 431 and an unsigned 401', async () => {
    for (const params of [{ name: 'nope' }, { name: 'x'.repeat(300) }]) {
      const { json, document } = await bothFormats(admin, 'listApis', params);
      expect(json.status).toBeGreaterThanOrEqual(431);
      expect(xmlShape(document)).toEqual(jsonShape(json.body.listapisresponse));
    }
    const { json, document } = await bothFormats(new ApiClient(runtime.apiUrl), 'listApis');
    expect(json.status).toBe(401);
    expect(xmlShape(document)).toEqual(jsonShape(json.body.listapisresponse));
  });

  it('escapes markup in values', async () => {
    const { json, document } = await bothFormats(admin, 'listApis', { name: '<b>&"\'' });
    expect(json.body.listapisresponse.errorcode).toBe(530);
    expect(xmlShape(document)).toEqual(jsonShape(json.body.listapisresponse));
  });
});

describe('errors', () => {
  const looksLikeAStack = /\n\s+at |\.ts:\d+|node:internal|Error:|\bat async\b/;

  it('never carry a stack trace: a forced internal error answers 530 with the generic text only', async () => {
    // A setting that cannot be a number makes login fail inside Mold (the session's deadline).
    await storeSetting('session.timeout', 'not-a-number');
    try {
      for (const response of ['json', 'xml']) {
        const pairs: [string, string][] = [
          ['command', 'login'],
          ['username', runtime.credentials.username],
          ['password', runtime.credentials.password],
          ['response', response],
        ];
        const answer = await fetch(runtime.apiUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(pairs).toString(),
        });
        const text = await answer.text();
        expect(answer.status).toBe(530);
        expect(text).not.toMatch(looksLikeAStack);
        expect(text).not.toMatch(/NaN|not-a-number|Special numeric/);
        if (response === 'json') {
          expect(JSON.parse(text)).toEqual({
            loginresponse: { uuidList: [], errorcode: 530, cserrorcode: 4250, errortext: 'Internal error executing command, please contact your system administrator' },
          });
        }
      }
    } finally {
      await storeSetting('session.timeout', '1800');
    }
    expect((await new ApiClient(runtime.apiUrl).login(runtime.credentials.username, runtime.credentials.password)).status).toBe(200);
  });

  it('never carry a stack trace in parameter errors either', async () => {
    const { status, body } = await admin.call('listApis', { name: 'x'.repeat(300) });
    expect(status).toBe(431);
    expect(body.listapisresponse).toMatchObject({ errorcode: 431, cserrorcode: 4350 });
    expect(body.listapisresponse.errortext).toMatch(/^Unable to execute API command listapis due to invalid value\. .*\bname\b/);
    expect(body.listapisresponse.errortext).not.toMatch(looksLikeAStack);
  });
});

describe('API throttling', () => {
  it('answers the call after api.throttling.max within the interval with 429, per account, root admin exempt, until the interval passes', async () => {
    const first = await seedAccount('busy', roleNamed('User'));
    const second = await seedAccount('calm', roleNamed('User'));
    // The calls of one window must all fall in it, however slowly a busy machine answers them.
    const interval = Math.ceil(patience(2_000) / 1000);
    await storeSetting('api.throttling.max', '5');
    await storeSetting('api.throttling.interval', String(interval));
    await storeSetting('api.throttling.enabled', 'true');
    try {
      const capabilities = await first.client.call('listCapabilities');
      expect(capabilities.body.listcapabilitiesresponse.capability).toMatchObject({ apilimitmax: 5, apilimitinterval: interval });
      for (let i = 0; i < 4; i++) expect((await first.client.call('listCapabilities')).status).toBe(200);
      const refused = await first.client.call('listCapabilities');
      expect(refused.status).toBe(429);
      expect(refused.body).toEqual({
        listcapabilitiesresponse: {
          uuidList: [],
          errorcode: 429,
          cserrorcode: 9999,
          errortext: expect.stringMatching(/^The given user has reached his\/her account api limit, please retry after \[\d+\] ms\.$/),
        },
      });
      // Any command counts, and the XML answer says the same.
      const xml = await first.client.call('listApis', {}, { response: 'xml' });
      expect(xml.status).toBe(429);
      expect(xml.body).toMatch(/<errorcode>429<\/errorcode><cserrorcode>9999<\/cserrorcode><errortext>The given user has reached his\/her account api limit/);

      // Another account, and the root admin however often it calls, are not held back.
      for (let i = 0; i < 3; i++) expect((await second.client.call('listCapabilities')).status).toBe(200);
      for (let i = 0; i < 8; i++) expect((await admin.call('listCapabilities')).status).toBe(200);

      const retryAfter = Number(/\[(\d+)\]/.exec(refused.body.listcapabilitiesresponse.errortext)![1]);
      expect(retryAfter).toBeLessThanOrEqual(interval * 1000);
      await sleep(retryAfter + 100);
      for (let i = 0; i < 5; i++) expect((await first.client.call('listCapabilities')).status).toBe(200);
      expect((await first.client.call('listCapabilities')).status).toBe(429);
    } finally {
      await storeSetting('api.throttling.enabled', 'false');
      await storeSetting('api.throttling.max', '25');
      await storeSetting('api.throttling.interval', '1');
    }
  });

  it('counts nothing while throttling is off', async () => {
    const { client } = await seedAccount('unthrottled', roleNamed('User'));
    for (let i = 0; i < 30; i++) expect((await client.call('listCapabilities')).status).toBe(200);
  });
});
