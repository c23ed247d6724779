// Authentication through the HTTP API: request signatures (every encoding edge case, accepted when
// signed right and refused when signed wrong), signatureVersion=3 expiry, login sessions, failed
// login throttling, and disabled or locked users and accounts. Requests are signed by the test's
// own client (test/support/client.ts), never by Mold's code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, deleteUserRecord, getAccount, getDomain, getUser, registerUserKeys, updateAccount, updateUser, type Domain } from '../../shared/db/identity.ts';
import { listRoles, type Role } from '../../shared/db/roles.ts';
import { storeSetting } from '../../shared/settings.ts';
import { ApiClient, canonicalString, encodeValue, hmac, send, sendFrom, type Keys } from '../support/client.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { patience, sleep } from '../support/wait.ts';

const REFUSED = 'unable to verify user credentials and/or request signature';
/** Upstream names an error envelope after the command, or `errorresponse` for one it does not know. */
const envelope = (command: string) => (command === 'listFrobs' ? 'errorresponse' : `${command.toLowerCase()}response`);
const refusedBody = (command: string) => ({ [envelope(command)]: { uuidList: [], errorcode: 401, errortext: REFUSED } });
const sessionRefusedBody = (command: string) => ({
  [`${command.toLowerCase()}response`]: { uuidList: [], errorcode: 401, errortext: 'unable to verify user credentials' },
});

/** Ways clients get the encoding wrong. */
const WRONG = {
  /** No encoding at all. */
  raw: (value: string) => value,
  /** RFC 3986 (encodeURIComponent plus !'()*): `*` becomes %2A, `~` stays. */
  rfc3986: (value: string) => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
  /** Java's URLEncoder without upstream's "+" → "%20": a space becomes "+". */
  plusForSpace: (value: string) => encodeValue(value).replace(/%20/g, '+'),
};

function cloudstackDate(at: number): string {
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, '+0000');
}

let runtime: RunningRuntime;
let root: Domain;
let roles: Role[];
let admin: Keys;
const password = 'Secret-pass-1';

/** A User-role account in ROOT with API keys. */
async function seedUser(name: string) {
  const role = roles.find((r) => r.name === 'User')!;
  const { account, user } = await createAccount(
    { name, domain: root, roleId: role.id, roleType: 'User' },
    { username: name, password, firstname: name, lastname: 'Tester', email: `${name}@example.com` },
  );
  const keys = await registerUserKeys(user);
  return { account, user, keys };
}

beforeAll(async () => {
  runtime = await startRuntime();
  useRuntimeEndpoints(runtime);
  admin = runtime.credentials;
  root = (await getDomain(runtime.credentials.domainid))!;
  roles = await listRoles();
});
afterAll(async () => {
  await runtime?.stop();
});

describe('request signatures', () => {
  const base = (): [string, string][] => [
    ['command', 'listCapabilities'],
    ['response', 'json'],
    ['apiKey', admin.apikey],
  ];
  const withSignature = (pairs: [string, string][], sig: string): [string, string][] => [...pairs, ['signature', sig]];
  const signRight = (pairs: [string, string][], secret = admin.secretkey) => withSignature(pairs, hmac(canonicalString(pairs), secret));

  async function expectAccepted(pairs: [string, string][], method: 'GET' | 'POST' = 'GET') {
    const { status, body } = await send(runtime.apiUrl, pairs, method);
    expect(status).toBe(200);
    expect(body.listcapabilitiesresponse.capability.cloudstackversion).toBe('4.20.0.0');
  }
  async function expectRefused(pairs: [string, string][], method: 'GET' | 'POST' = 'GET', command = 'listCapabilities') {
    const { status, body, headers } = await send(runtime.apiUrl, pairs, method);
    expect(status).toBe(401);
    expect(headers.get('content-type')).toMatch(/^application\/json/);
    expect(body).toEqual(refusedBody(command));
  }

  it('accepts a correctly signed request, GET and form-encoded POST', async () => {
    await expectAccepted(signRight(base()), 'GET');
    await expectAccepted(signRight(base()), 'POST');
  });

  it('accepts parameters split between the query string and a form body', async () => {
    const pairs = signRight([...base(), ['note', 'split across query and body']]);
    const [inQuery, inBody] = [pairs.slice(0, 2), pairs.slice(2)];
    const encode = (list: [string, string][]) => list.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
    const response = await fetch(`${runtime.apiUrl}?${encode(inQuery)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: encode(inBody),
    });
    expect(response.status).toBe(200);
  });

  const valueCases: { name: string; value: string; wrong: keyof typeof WRONG }[] = [
    { name: 'unicode', value: 'naïve ☃', wrong: 'raw' },
    { name: 'spaces', value: 'two  spaces and one', wrong: 'plusForSpace' },
    { name: 'plus', value: '1+1=2', wrong: 'raw' },
    { name: 'asterisk', value: 'a*b', wrong: 'rfc3986' },
    { name: 'tilde', value: '~user', wrong: 'rfc3986' },
    { name: 'percent', value: '100% sure %41', wrong: 'raw' },
    { name: 'ampersand', value: 'this&that=other', wrong: 'raw' },
  ];
  for (const { name, value, wrong } of valueCases) {
    it(`signs values with ${name} as upstream: right accepted, wrong refused (GET and POST)`, async () => {
      const pairs: [string, string][] = [...base(), ['note', value]];
      // The wrong way must really differ from the right way, or the refusal proves nothing.
      expect(canonicalString(pairs, WRONG[wrong])).not.toBe(canonicalString(pairs));
      for (const method of ['GET', 'POST'] as const) {
        await expectAccepted(signRight(pairs), method);
        await expectRefused(withSignature(pairs, hmac(canonicalString(pairs, WRONG[wrong]), admin.secretkey)), method);
      }
    });
  }

  it('counts the last value of a repeated parameter, in the signature and in the command', async () => {
    const pairs: [string, string][] = [...base(), ['note', 'first'], ['note', 'last']];
    await expectAccepted(signRight(pairs));
    const signedWithFirst = hmac(canonicalString([...base(), ['note', 'first']]), admin.secretkey);
    await expectRefused(withSignature(pairs, signedWithFirst));

    const apis: [string, string][] = [['command', 'listApis'], ['response', 'json'], ['name', 'listApis'], ['name', 'listCapabilities'], ['apiKey', admin.apikey]];
    const { status, body } = await send(runtime.apiUrl, signRight(apis), 'GET');
    expect(status).toBe(200);
    expect(body.listapisresponse.api.map((api: { name: string }) => api.name)).toEqual(['listCapabilities']);
  });

  it('sorts parameter names case-sensitively (upper case first) and honours Command and Response in any case', async () => {
    const pairs: [string, string][] = [
      ['Command', 'listCapabilities'],
      ['Response', 'json'],
      ['apiKey', admin.apikey],
      ['Note', 'capitals'],
    ];
    const caseInsensitive = [...pairs].sort(([a], [b]) => a.toLowerCase().localeCompare(b.toLowerCase()));
    const wrongCanonical = caseInsensitive.map(([n, v]) => `${n}=${encodeValue(v)}`).join('&').toLowerCase();
    expect(wrongCanonical).not.toBe(canonicalString(pairs));
    for (const method of ['GET', 'POST'] as const) {
      await expectAccepted(signRight(pairs), method);
      await expectRefused(withSignature(pairs, hmac(wrongCanonical, admin.secretkey)), method);
    }
  });

  it('refuses a wrong secret, a tampered parameter, an unknown or absurd key and a missing signature', async () => {
    await expectRefused(signRight(base(), `${admin.secretkey}x`));
    const signed = signRight([...base(), ['note', 'as signed']]);
    await expectRefused(signed.map(([k, v]): [string, string] => [k, k === 'note' ? 'tampered' : v]));
    await expectRefused(signed.map(([k, v]): [string, string] => [k, k === 'apiKey' ? 'no-such-key' : v]));
    // A key far too long for any table key is refused as any other unknown key, not a 530.
    await expectRefused(signed.map(([k, v]): [string, string] => [k, k === 'apiKey' ? 'k'.repeat(5000) : v]));
    await expectRefused(base());
    // The signature is compared exactly: a lower-cased one is wrong.
    await expectRefused(signed.map(([k, v]): [string, string] => [k, k === 'signature' ? v.toLowerCase() : v]));
  });

  it('refuses a replaced API key and the key of a deleted user at once', async () => {
    const seeded = await seedUser('rotator');
    const old = new ApiClient(runtime.apiUrl, seeded.keys);
    expect((await old.call('listCapabilities')).status).toBe(200);
    const renewed = new ApiClient(runtime.apiUrl, await registerUserKeys((await getUser(seeded.user.id))!));
    const refused = await old.call('listCapabilities');
    expect(refused.status).toBe(401);
    expect(refused.body).toEqual(refusedBody('listCapabilities'));
    expect((await renewed.call('listCapabilities')).status).toBe(200);
    await deleteUserRecord((await getUser(seeded.user.id))!);
    expect((await renewed.call('listCapabilities')).status).toBe(401);
  });

  it('refuses an unknown command signed wrong as 401 too, naming nothing', async () => {
    await expectRefused(withSignature([['command', 'listFrobs'], ['response', 'json'], ['apiKey', admin.apikey]], 'bogus'), 'GET', 'listFrobs');
  });

  describe('signatureVersion=3', () => {
    const v3 = (expires?: string): [string, string][] => [
      ...base(),
      ['signatureVersion', '3'],
      ...(expires === undefined ? [] : [['expires', expires] as [string, string]]),
    ];

    it('accepts expires in the future (upstream format and ISO with a colon or Z)', async () => {
      await expectAccepted(signRight(v3(cloudstackDate(Date.now() + 5 * 60_000))));
      await expectAccepted(signRight(v3(new Date(Date.now() + 5 * 60_000).toISOString())));
      await expectAccepted(signRight(v3(cloudstackDate(Date.now() + 5 * 60_000).replace('+0000', '+00:00'))));
      await expectAccepted(signRight(v3(cloudstackDate(Date.now() + 5 * 60_000))), 'POST');
    });

    it('refuses expires in the past', async () => {
      await expectRefused(signRight(v3(cloudstackDate(Date.now() - 1000))));
    });

    it('refuses expires further ahead than api.signature.max.expiry (3600 s by default)', async () => {
      await expectAccepted(signRight(v3(cloudstackDate(Date.now() + 3500 * 1000))));
      await expectRefused(signRight(v3(cloudstackDate(Date.now() + 3700 * 1000))));
    });

    it('refuses malformed or missing expires', async () => {
      for (const malformed of ['tomorrow', '2099-01-01', '2099-01-01 00:00:00', '2099-13-45T00:00:00+0000', `${Date.now() + 60_000}`]) {
        await expectRefused(signRight(v3(malformed)));
      }
      await expectRefused(signRight(v3()));
    });

    it('ignores expires without signatureVersion=3, as upstream', async () => {
      await expectAccepted(signRight([...base(), ['expires', cloudstackDate(Date.now() - 86_400_000)]]));
    });
  });

  it('answers a request with an undecodable cookie normally', async () => {
    const { status } = await sendFrom(runtime.apiUrl, signRight(base()), { cookie: 'tracker=%E0%A4%A; other=1' });
    expect(status).toBe(200);
  });
});

describe('login sessions', () => {
  let alice: Awaited<ReturnType<typeof seedUser>>;
  beforeAll(async () => {
    alice = await seedUser('alice');
  });

  const loginPairs = (username: string, pass: string, domain = '/'): [string, string][] => [
    ['command', 'login'],
    ['username', username],
    ['password', pass],
    ['domain', domain],
    ['response', 'json'],
  ];

  it('refuses login by GET with 405 and upstream’s text', async () => {
    const { status, body } = await send(runtime.apiUrl, loginPairs('alice', password), 'GET');
    expect(status).toBe(405);
    expect(body).toEqual({
      loginresponse: { uuidList: [], errorcode: 405, cserrorcode: 9999, errortext: 'Please use HTTP POST to authenticate using this API' },
    });
  });

  it('logs in by POST: loginresponse fields, JSESSIONID and sessionkey cookies; the key authenticates; logout ends it', async () => {
    const client = new ApiClient(runtime.apiUrl);
    const { status, body, headers } = await client.login('alice', password);
    expect(status).toBe(200);
    const login = body.loginresponse;
    expect(login).toMatchObject({
      username: 'alice',
      userid: alice.user.id,
      domainid: root.id,
      timeout: 1800,
      account: 'alice',
      firstname: 'alice',
      lastname: 'Tester',
      type: '0',
      timezoneoffset: '0.0',
      registered: 'false',
      sessionkey: expect.stringMatching(/^[A-Za-z0-9_-]{20,}$/),
      is2faenabled: 'false',
      is2faverified: 'false',
    });
    const cookies = headers.getSetCookie();
    expect(cookies.find((c) => c.startsWith('JSESSIONID='))).toMatch(new RegExp(`^JSESSIONID=${login.sessionkey};.*HttpOnly`));
    expect(cookies.find((c) => c.startsWith('sessionkey='))).toMatch(new RegExp(`^sessionkey=${login.sessionkey};.*HttpOnly`));
    // Served over plain HTTP (the local runtime): a Secure cookie would never come back.
    expect(cookies.some((c) => /;\s*Secure/i.test(c))).toBe(false);

    // With the cookies, as a browser sends it, and with the parameter alone.
    const listed = await client.call('listCapabilities');
    expect(listed.status).toBe(200);
    const paramOnly = await send(runtime.apiUrl, [['command', 'listCapabilities'], ['response', 'json'], ['sessionkey', login.sessionkey]], 'GET');
    expect(paramOnly.status).toBe(200);
    const viaPost = await send(runtime.apiUrl, [['command', 'listCapabilities'], ['response', 'json'], ['sessionkey', login.sessionkey]], 'POST');
    expect(viaPost.status).toBe(200);

    const logout = await client.call('logout');
    expect(logout.status).toBe(200);
    expect(logout.body).toEqual({ logoutresponse: { description: 'success' } });
    for (const cookie of ['JSESSIONID', 'sessionkey']) {
      expect(logout.headers.getSetCookie().find((c) => c.startsWith(`${cookie}=`))).toMatch(/^[A-Za-z]+=;.*Max-Age=0/);
    }

    // The same key replayed after logout, with or without cookies.
    const replay = await client.call('listCapabilities');
    expect(replay.status).toBe(401);
    expect(replay.body).toEqual(sessionRefusedBody('listCapabilities'));
    const replayBare = await send(runtime.apiUrl, [['command', 'listCapabilities'], ['response', 'json'], ['sessionkey', login.sessionkey]], 'GET');
    expect(replayBare.status).toBe(401);
  });

  it('gives Secure cookies to a client that came over HTTPS (X-Forwarded-Proto, as API Gateway sets it)', async () => {
    const pairs: [string, string][] = [['command', 'login'], ['response', 'json'], ['username', 'alice'], ['password', password]];
    const overHttps = await sendFrom(runtime.apiUrl, pairs, { method: 'POST', headers: { 'x-forwarded-proto': 'https' } });
    expect(overHttps.status).toBe(200);
    const cookies = overHttps.headers.getSetCookie();
    expect(cookies).toHaveLength(2);
    for (const c of cookies) expect(c).toMatch(/; HttpOnly; SameSite=Lax; Secure$/);
    const sessionkey = overHttps.body.loginresponse.sessionkey;
    const logout = await sendFrom(runtime.apiUrl, [['command', 'logout'], ['response', 'json'], ['sessionkey', sessionkey]], { headers: { 'x-forwarded-proto': 'https' } });
    for (const c of logout.headers.getSetCookie()) expect(c).toMatch(/; Secure; Max-Age=0$/);
  });

  it('refuses a sessionkey cookie that disagrees with the parameter, an unknown key and an absurd one', async () => {
    const client = new ApiClient(runtime.apiUrl);
    await client.login('alice', password);
    const pairs: [string, string][] = [['command', 'listCapabilities'], ['response', 'json'], ['sessionkey', client.sessionkey!]];
    const disagreeing = await sendFrom(runtime.apiUrl, pairs, { cookie: `JSESSIONID=${client.sessionkey}; sessionkey=someone-elses-key` });
    expect(disagreeing.status).toBe(401);
    expect(disagreeing.body).toEqual(sessionRefusedBody('listCapabilities'));
    // The good session still works: the refusal did not end it.
    expect((await client.call('listCapabilities')).status).toBe(200);

    const unknown = await send(runtime.apiUrl, [['command', 'listCapabilities'], ['response', 'json'], ['sessionkey', 'not-a-session']], 'GET');
    expect(unknown.body).toEqual(sessionRefusedBody('listCapabilities'));
    const absurd = await send(runtime.apiUrl, [['command', 'listCapabilities'], ['response', 'json'], ['sessionkey', 's'.repeat(5000)]], 'GET');
    expect(absurd.status).toBe(401);
    expect(absurd.body).toEqual(sessionRefusedBody('listCapabilities'));
  });

  it('ends a session left idle longer than session.timeout, and each use pushes the deadline on', async () => {
    // Long enough that a use every 0.6 s keeps it alive however slowly a busy machine answers.
    const timeout = Math.ceil(patience(2_000) / 1000);
    await storeSetting('session.timeout', String(timeout));
    try {
      const client = new ApiClient(runtime.apiUrl);
      const { body } = await client.login('alice', password);
      expect(body.loginresponse.timeout).toBe(timeout);
      // Used every 0.6 s for longer than the timeout: still alive.
      for (const until = Date.now() + (timeout + 1) * 1000; Date.now() < until; ) {
        expect((await client.call('listCapabilities')).status).toBe(200);
        await sleep(600);
      }
      expect((await client.call('listCapabilities')).status).toBe(200);
      await sleep((timeout + 1) * 1000);
      const expired = await client.call('listCapabilities');
      expect(expired.status).toBe(401);
      expect(expired.body).toEqual(sessionRefusedBody('listCapabilities'));
    } finally {
      await storeSetting('session.timeout', '1800');
    }
  });

  it('refuses a wrong password, an unknown user and an unknown domain with 531 and upstream’s text', async () => {
    // From its own address, so these failures count against nothing else in this file.
    const from = { method: 'POST' as const, localAddress: '127.0.0.9' };
    for (const [username, pass] of [['alice', 'wrong'], ['nobody', password]]) {
      const { status, body } = await sendFrom(runtime.apiUrl, loginPairs(username, pass), from);
      expect(status).toBe(531);
      expect(body).toEqual({
        loginresponse: { uuidList: [], errorcode: 531, errortext: `Failed to authenticate user ${username} in domain ${root.id}; please provide valid credentials` },
      });
    }
    const { status, body } = await sendFrom(runtime.apiUrl, loginPairs('alice', password, 'nowhere'), from);
    expect(status).toBe(531);
    expect(body).toEqual({ loginresponse: { uuidList: [], errorcode: 531, errortext: 'Unable to find the domain from the path /nowhere/' } });
  });

  it('disables a user after incorrect.login.attempts.allowed failures in a row, with an alert, and no one else', async () => {
    const carol = await seedUser('carol');
    const dave = await seedUser('dave');
    await storeSetting('incorrect.login.attempts.allowed', '3');
    try {
      const login = (username: string, pass: string, localAddress: string) =>
        sendFrom(runtime.apiUrl, loginPairs(username, pass), { method: 'POST', localAddress });

      // A good login clears the count: two failures, a success, two failures leave carol enabled.
      for (const pass of ['wrong', 'wrong', password, 'wrong', 'wrong']) await login('carol', pass, '127.0.0.2');
      expect((await getUser(carol.user.id))!.state).toBe('enabled');
      // The third failure in a row disables her (upstream counts per user, wherever from).
      expect((await login('carol', 'wrong', '127.0.0.6')).status).toBe(531);
      expect((await getUser(carol.user.id))!.state).toBe('disabled');
      const refused = await login('carol', password, '127.0.0.3');
      expect(refused.status).toBe(531);
      expect(refused.body.loginresponse.errortext).toBe('User carol (or their account) in domain ROOT is disabled/locked. Please contact the administrator.');
      const alerts = (await new ApiClient(runtime.apiUrl, admin).call('listAlerts', { type: '100' })).body.listalertsresponse.alert ?? [];
      expect(alerts).toContainEqual(
        expect.objectContaining({ type: 100, name: 'ALERT.USER.LOGIN', description: 'User carol in domain ROOT has been disabled due to multiple failed login attempts' }),
      );

      // Everyone else gets in from the very address the failures came from: dave, and the root admin.
      expect((await login('dave', password, '127.0.0.2')).status).toBe(200);
      expect((await login(runtime.credentials.username, runtime.credentials.password, '127.0.0.2')).status).toBe(200);

      // enableUser lets carol in again, her count back at zero.
      const enabled = await new ApiClient(runtime.apiUrl, admin).call('enableUser', { id: carol.user.id });
      expect(enabled.status).toBe(200);
      for (const pass of ['wrong', 'wrong']) expect((await login('carol', pass, '127.0.0.7')).status).toBe(531);
      expect((await login('carol', password, '127.0.0.7')).status).toBe(200);
      expect(dave).toBeTruthy();
    } finally {
      await storeSetting('incorrect.login.attempts.allowed', '5');
    }
  });

  it('never disables an admin, and throttles only that user name from that address for login.throttle.window', async () => {
    await storeSetting('incorrect.login.attempts.allowed', '3');
    await storeSetting('login.throttle.window', '3');
    const erin = await seedUser('erin');
    try {
      const login = (username: string, pass: string, localAddress: string) =>
        sendFrom(runtime.apiUrl, loginPairs(username, pass), { method: 'POST', localAddress });
      for (let i = 0; i < 3; i++) expect((await login(runtime.credentials.username, 'wrong', '127.0.0.8')).status).toBe(531);
      // Upstream's internal accounts are never disabled...
      expect((await login(runtime.credentials.username, runtime.credentials.password, '127.0.0.9')).status).toBe(200);
      // ...so guessing at the admin's password from one address waits out the window,
      const throttled = await login(runtime.credentials.username, runtime.credentials.password, '127.0.0.8');
      expect(throttled.status).toBe(429);
      expect(throttled.body.loginresponse).toMatchObject({ errorcode: 429, errortext: expect.stringMatching(/^Too many failed login attempts for this user from this address/) });
      // while another user's right password from that address gets in.
      expect((await login(erin.user.username, password, '127.0.0.8')).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 3200));
      expect((await login(runtime.credentials.username, runtime.credentials.password, '127.0.0.8')).status).toBe(200);
    } finally {
      await storeSetting('incorrect.login.attempts.allowed', '5');
      await storeSetting('login.throttle.window', '300');
    }
  });
});

describe('disabled and locked users and accounts', () => {
  const loginAs = (username: string) =>
    send(runtime.apiUrl, [['command', 'login'], ['username', username], ['password', password], ['domain', '/'], ['response', 'json']], 'POST');
  const disabledText = (username: string) =>
    `User ${username} (or their account) in domain ROOT is disabled/locked. Please contact the administrator.`;

  for (const what of ['user disabled', 'user locked', 'account disabled', 'account locked'] as const) {
    it(`refuses a ${what} at login, on API-key calls and on a session opened before`, async () => {
      const name = `state-${what.replace(' ', '-')}`;
      const seeded = await seedUser(name);
      const keyed = new ApiClient(runtime.apiUrl, seeded.keys);
      const session = new ApiClient(runtime.apiUrl);
      expect((await session.login(name, password)).status).toBe(200);
      expect((await keyed.call('listCapabilities')).status).toBe(200);

      const state = what.endsWith('disabled') ? 'disabled' : 'locked';
      if (what.startsWith('user')) await updateUser((await getUser(seeded.user.id))!, { state });
      else await updateAccount((await getAccount(seeded.account.id))!, { state });

      const login = await loginAs(name);
      expect(login.status).toBe(531);
      expect(login.body).toEqual({ loginresponse: { uuidList: [], errorcode: 531, errortext: disabledText(name) } });
      const byKey = await keyed.call('listCapabilities');
      expect(byKey.status).toBe(401);
      expect(byKey.body).toEqual(refusedBody('listCapabilities'));
      const bySession = await session.call('listCapabilities');
      expect(bySession.status).toBe(401);
      expect(bySession.body).toEqual(sessionRefusedBody('listCapabilities'));

      // Enabled again, the same keys and a new login work.
      if (what.startsWith('user')) await updateUser((await getUser(seeded.user.id))!, { state: 'enabled' });
      else await updateAccount((await getAccount(seeded.account.id))!, { state: 'enabled' });
      expect((await keyed.call('listCapabilities')).status).toBe(200);
      expect((await loginAs(name)).status).toBe(200);
    });
  }
});
