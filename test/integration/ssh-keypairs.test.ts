// SSH key pairs through the HTTP API: createSSHKeyPair (the private key once), registerSSHKeyPair,
// listSSHKeyPairs and deleteSSHKeyPair, with upstream's fields, owners, scoping and refusals, checked
// against OpenSSH's ssh-keygen; and an account's deletion taking its pairs with it.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, sign, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicKeyObject } from '../../shared/crypto/ssh-keys.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { findKeyPairByName, findKeyPairByPublicKey, getKeyPair, listKeyPairsUnder } from '../../shared/db/ssh-keypairs.ts';
import type { ApiAnswer, ApiClient } from '../support/client.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { finish, makeAccount, makeDomain, missing, noEntity, ok, refused, startWorld, unique, type Member, type World } from './identity-fixtures.ts';

let world: World;
let dir: string;
let domain: any; // D, with a subdomain S; O beside it
let sub: any;
let other: any;
let alice: Member; // a user in D
let bob: Member; // another user in D
let domainAdmin: Member; // a domain admin of D
let subUser: Member; // a user in S
let foreigner: Member; // a user in O

const keygen = (...args: string[]) => execFileSync('ssh-keygen', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const fileIn = (name: string) => join(dir, `${name}-${Math.random().toString(36).slice(2)}`);

/** A key made by ssh-keygen: its public key line, with a comment. */
function sshKeygen(type: 'rsa' | 'ed25519' | 'ecdsa'): string {
  const file = fileIn(type);
  keygen('-q', '-t', type, '-N', '', '-C', `someone@${type}`, '-f', file);
  return readFileSync(`${file}.pub`, 'utf8').trim();
}

/** What `ssh-keygen -l -E md5` prints for a public key, without "MD5:". */
function md5Fingerprint(line: string): string {
  const file = fileIn('fp');
  writeFileSync(file, `${line}\n`);
  return keygen('-l', '-E', 'md5', '-f', file).split(' ')[1].replace(/^MD5:/, '');
}

/** Every key pair there is, as the root admin lists them: what a refused call must leave alone. */
async function everything(): Promise<any[]> {
  return ok(await world.admin.call('listSSHKeyPairs', { listall: true, pagesize: -1 }), 'listSSHKeyPairs').sshkeypair ?? [];
}

/** Asserts the refusal and that it changed nothing. */
async function refusedUnchanged(call: () => Promise<ApiAnswer>, command: string, errorcode: number, errortext: string | RegExp, cserrorcode: number) {
  const before = await everything();
  const body = refused(await call(), command, errorcode, errortext, cserrorcode);
  expect(await everything()).toEqual(before);
  return body;
}

const listOf = async (client: ApiClient, params: Record<string, string | number | boolean> = {}) =>
  ok(await client.call('listSSHKeyPairs', params), 'listSSHKeyPairs');
const names = async (client: ApiClient, params: Record<string, string | number | boolean> = {}) =>
  ((await listOf(client, params)).sshkeypair ?? []).map((pair: any) => pair.name).sort();

async function create(client: ApiClient, name: string, params: Record<string, string> = {}) {
  return ok(await client.call('createSSHKeyPair', { name, ...params }), 'createSSHKeyPair').keypair;
}
async function register(client: ApiClient, name: string, publickey: string, params: Record<string, string> = {}) {
  return ok(await client.call('registerSSHKeyPair', { name, publickey, ...params }, { method: 'POST' }), 'registerSSHKeyPair').keypair;
}

async function eventsOfType(type: string): Promise<any[]> {
  return ok(await world.admin.call('listEvents', { listall: true, type, pagesize: 500 }), 'listEvents').event ?? [];
}

beforeAll(async () => {
  world = await startWorld();
  useRuntimeEndpoints(world.runtime);
  dir = mkdtempSync(join(tmpdir(), 'mold-keypairs-'));
  domain = await makeDomain(world.admin);
  sub = await makeDomain(world.admin, unique('sub'), domain.id);
  other = await makeDomain(world.admin);
  [alice, bob, domainAdmin, subUser, foreigner] = await Promise.all([
    makeAccount(world.admin, { domainid: domain.id }),
    makeAccount(world.admin, { domainid: domain.id }),
    makeAccount(world.admin, { domainid: domain.id, accounttype: 2 }),
    makeAccount(world.admin, { domainid: sub.id }),
    makeAccount(world.admin, { domainid: other.id }),
  ]);
});
afterAll(async () => {
  await world?.runtime.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('createSSHKeyPair', () => {
  it('returns the private key once, matching the stored public key, with upstream’s fields', async () => {
    const answer = await alice.client.call('createSSHKeyPair', { name: 'laptop' });
    expect(answer.status).toBe(200);
    const keypair = answer.body.createsshkeypairresponse.keypair;
    expect(Object.keys(answer.body.createsshkeypairresponse)).toEqual(['keypair']);
    expect(keypair).toEqual({
      privatekey: expect.stringMatching(/^-----BEGIN RSA PRIVATE KEY-----\n[\s\S]+\n-----END RSA PRIVATE KEY-----\n$/),
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: 'laptop',
      account: alice.account.name,
      domainid: domain.id,
      domain: domain.name,
      domainpath: domain.path,
      fingerprint: expect.stringMatching(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/),
      hasannotations: false,
    });
    expect(createPrivateKey(keypair.privatekey).asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });

    // ssh-keygen derives from the private key the public key Mold stored, and the same fingerprint.
    const privateFile = fileIn('created');
    writeFileSync(privateFile, keypair.privatekey, { mode: 0o600 });
    const derived = keygen('-y', '-f', privateFile).trim();
    const stored = (await getKeyPair(keypair.id))!;
    expect(stored).toMatchObject({ name: 'laptop', accountId: alice.account.id, domainId: domain.id, fingerprint: keypair.fingerprint });
    expect(stored.publicKey).toBe(derived.split(' ').slice(0, 2).join(' '));
    expect(keypair.fingerprint).toBe(md5Fingerprint(derived));
    // The private key signs what the stored public key verifies. Mold never stores the private key.
    const data = Buffer.from('proof of possession');
    expect(verify('sha256', data, publicKeyObject(stored.publicKey)!, sign('sha256', data, createPrivateKey(keypair.privatekey)))).toBe(true);
    expect(JSON.stringify(stored)).not.toContain('PRIVATE KEY');

    // Listing never shows it again.
    const listed = await listOf(alice.client, { name: 'laptop' });
    expect(listed).toEqual({
      count: 1,
      sshkeypair: [
        {
          id: keypair.id,
          name: 'laptop',
          account: alice.account.name,
          domainid: domain.id,
          domain: domain.name,
          domainpath: domain.path,
          fingerprint: keypair.fingerprint,
          hasannotations: false,
        },
      ],
    });
    const everyList = JSON.stringify([await listOf(alice.client), await listOf(world.admin, { listall: true }), await listOf(domainAdmin.client, { listall: true })]);
    expect(everyList).not.toMatch(/privatekey|PRIVATE KEY/);
    const xml = await alice.client.call('listSSHKeyPairs', { id: keypair.id }, { response: 'xml' });
    expect(xml.body).toContain(`<sshkeypair><id>${keypair.id}</id><name>laptop</name>`);
    expect(xml.body).not.toMatch(/privatekey|PRIVATE KEY/);

    // Mold's own event type: upstream records none for a created pair.
    expect((await eventsOfType('SSH.KEYPAIR.CREATE')).find((e) => e.description === 'Successfully completed creating ssh keypair. Name: laptop')).toMatchObject({
      account: alice.account.name,
      username: alice.user.username,
      domainid: domain.id,
      state: 'Completed',
      level: 'INFO',
    });
  });

  it('makes a pair for an account an admin names with account and domainid', async () => {
    const byAdmin = await create(world.admin, 'from-root', { account: bob.account.name, domainid: domain.id });
    expect(byAdmin).toMatchObject({ account: bob.account.name, domainid: domain.id });
    const byDomainAdmin = await create(domainAdmin.client, 'from-domain-admin', { account: subUser.account.name, domainid: sub.id });
    expect(byDomainAdmin).toMatchObject({ account: subUser.account.name, domainid: sub.id, domainpath: sub.path });
    expect(await names(bob.client)).toEqual(['from-root']);
    expect(await names(subUser.client)).toEqual(['from-domain-admin']);
    // A user may name itself.
    expect(await create(alice.client, 'self-named', { account: alice.account.name, domainid: domain.id })).toMatchObject({ account: alice.account.name });
  });

  it('refuses a name the account already has, in any case, as upstream', async () => {
    await create(alice.client, 'taken');
    await refusedUnchanged(() => alice.client.call('createSSHKeyPair', { name: 'taken' }), 'createSSHKeyPair', 431, "A key pair with name 'taken' already exists.", 4350);
    await refusedUnchanged(() => alice.client.call('createSSHKeyPair', { name: 'TAKEN' }), 'createSSHKeyPair', 431, "A key pair with name 'TAKEN' already exists.", 4350);
    await refusedUnchanged(
      () => world.admin.call('createSSHKeyPair', { name: 'taken', account: alice.account.name, domainid: domain.id }),
      'createSSHKeyPair',
      431,
      "A key pair with name 'taken' already exists.",
      4350,
    );
    // Another account may use the name.
    expect(await create(bob.client, 'taken')).toMatchObject({ name: 'taken', account: bob.account.name });
  });

  it('refuses owners the caller may not name, and bad parameters, changing nothing', async () => {
    const api = 'createSSHKeyPair';
    const call = (client: ApiClient, params: Record<string, string>) => () => client.call(api, params);
    await refusedUnchanged(call(alice.client, {}), api, 431, missing('createsshkeypair', 'name'), 4350);
    await refusedUnchanged(call(alice.client, { name: '   ' }), api, 431, "Please specify a valid name for the key pair. The key name can't be empty", 4350);
    await refusedUnchanged(call(alice.client, { name: 'x'.repeat(256) }), api, 431, /^Unable to execute API command createsshkeypair due to invalid value\. Invalid parameter name value=x{200}…\(256 characters\): is longer than 255 characters$/, 4350);
    await refusedUnchanged(
      call(alice.client, { name: 'other', account: bob.account.name, domainid: domain.id }),
      api,
      531,
      `Can't create/list resources for account ${bob.account.name} in domain ${domain.id}, permission denied`,
      4365,
    );
    await refusedUnchanged(call(alice.client, { name: 'other', account: alice.account.name }), api, 431, 'AccountName and domainId must be specified together', 4350);
    await refusedUnchanged(call(world.admin, { name: 'other', domainid: domain.id }), api, 431, 'AccountName and domainId must be specified together', 4350);
    await refusedUnchanged(
      call(domainAdmin.client, { name: 'other', account: foreigner.account.name, domainid: other.id }),
      api,
      531,
      `Acct[${domainAdmin.account.id}-${domainAdmin.account.name}] does not have permission to operate within domain id=${other.id}`,
      4365,
    );
    await refusedUnchanged(
      call(world.admin, { name: 'other', account: 'nobody-here', domainid: domain.id }),
      api,
      431,
      `Unable to find account nobody-here in domain ${domain.id}`,
      4350,
    );
    const nowhere = '0f0f0f0f-0000-4000-8000-000000000000';
    await refusedUnchanged(call(world.admin, { name: 'other', account: bob.account.name, domainid: nowhere }), api, 431, noEntity('createsshkeypair', 'domainid', nowhere), 4350);
    await refusedUnchanged(call(alice.client, { name: 'other', projectid: nowhere }), api, 431, noEntity('createsshkeypair', 'projectid', nowhere), 4350);
  });
});

describe('registerSSHKeyPair', () => {
  it('stores the public key of every type, fingerprinted exactly as ssh-keygen does', async () => {
    for (const type of ['rsa', 'ed25519', 'ecdsa'] as const) {
      const line = sshKeygen(type);
      const keypair = await register(alice.client, `registered-${type}`, line);
      expect(keypair).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        name: `registered-${type}`,
        account: alice.account.name,
        domainid: domain.id,
        domain: domain.name,
        domainpath: domain.path,
        fingerprint: md5Fingerprint(line),
        hasannotations: false,
      });
      // The comment is dropped, as upstream's getPublicKeyFromKeyMaterial does.
      expect((await getKeyPair(keypair.id))!.publicKey).toBe(line.split(' ').slice(0, 2).join(' '));
    }
    // The whole line base64-encoded is taken too (upstream decodes material without a space).
    const line = sshKeygen('ed25519');
    const encoded = await register(alice.client, 'registered-encoded', Buffer.from(line).toString('base64'));
    expect(encoded.fingerprint).toBe(md5Fingerprint(line));
    expect(await eventsOfType('REGISTER.SSH.KEYPAIR')).toEqual(
      expect.arrayContaining([expect.objectContaining({ description: 'Successfully completed registering ssh keypair.', account: alice.account.name, state: 'Completed' })]),
    );
  });

  it('refuses malformed public keys with 431, changing nothing', async () => {
    const api = 'registerSSHKeyPair';
    const good = sshKeygen('rsa').split(' ');
    const malformed = [
      'not a key',
      'ssh-rsa',
      `ssh-rsa ${good[1].slice(0, -10)}`,
      `ssh-rsa ${good[1]}***`,
      `ssh-dss ${good[1]}`,
      `ssh-foo ${good[1]}`,
      `ssh-ed25519 ${good[1]}`,
      Buffer.from('ssh-rsa').toString('base64'),
      '-----BEGIN RSA PRIVATE KEY-----',
    ];
    for (const publickey of malformed) {
      await refusedUnchanged(() => alice.client.call(api, { name: 'bad-key', publickey }, { method: 'POST' }), api, 431, 'Public key is invalid', 4350);
    }
    await refusedUnchanged(() => alice.client.call(api, { name: 'bad-key' }), api, 431, missing('registersshkeypair', 'publickey'), 4350);
    await refusedUnchanged(
      () => alice.client.call(api, { name: 'bad-key', publickey: `ssh-rsa ${'A'.repeat(5120)}` }, { method: 'POST' }),
      api,
      431,
      /^Unable to execute API command registersshkeypair due to invalid value\. Invalid parameter publickey value=ssh-rsa A{192}…\(5128 characters\): is longer than 5120 characters$/,
      4350,
    );
    expect(await findKeyPairByName(alice.account.id, 'bad-key')).toBeUndefined();
  });

  it('refuses a name or a key the account already has, with upstream’s texts', async () => {
    const api = 'registerSSHKeyPair';
    const line = sshKeygen('ed25519');
    await register(alice.client, 'mine', line);
    const again = sshKeygen('ed25519');
    await refusedUnchanged(
      () => alice.client.call(api, { name: 'Mine', publickey: again }, { method: 'POST' }),
      api,
      431,
      "A key pair with name 'Mine' already exists for this account.",
      4350,
    );
    // The same key under another name (with another comment): upstream names the key as given.
    const recommented = `${line.split(' ').slice(0, 2).join(' ')} another comment`;
    await refusedUnchanged(
      () => alice.client.call(api, { name: 'mine-again', publickey: recommented }, { method: 'POST' }),
      api,
      431,
      `A key pair with key '${recommented}' already exists for this account.`,
      4350,
    );
    // A created pair's key is the account's too.
    const created = await create(alice.client, 'generated-then-registered');
    const file = fileIn('dup');
    writeFileSync(file, created.privatekey, { mode: 0o600 });
    const createdLine = keygen('-y', '-f', file).trim();
    await refusedUnchanged(
      () => alice.client.call(api, { name: 'copy', publickey: createdLine }, { method: 'POST' }),
      api,
      431,
      `A key pair with key '${createdLine}' already exists for this account.`,
      4350,
    );
    // Another account may register the same key.
    expect(await register(bob.client, 'mine', line)).toMatchObject({ account: bob.account.name, fingerprint: md5Fingerprint(line) });
  });

  it('registers the same name at once only once', async () => {
    const lines = [sshKeygen('ed25519'), sshKeygen('ed25519'), sshKeygen('ed25519'), sshKeygen('ed25519')];
    const answers = await Promise.all(lines.map((publickey) => alice.client.call('registerSSHKeyPair', { name: 'race', publickey }, { method: 'POST' })));
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(1);
    for (const answer of answers.filter((a) => a.status !== 200)) refused(answer, 'registerSSHKeyPair', 431, "A key pair with name 'race' already exists for this account.", 4350);
    expect(await names(alice.client, { name: 'race' })).toEqual(['race']);
  });
});

describe('listSSHKeyPairs', () => {
  let mark: Record<string, any>;

  beforeAll(async () => {
    mark = {
      alice: await create(alice.client, 'scope-alice'),
      bob: await create(bob.client, 'scope-bob'),
      admin: await create(domainAdmin.client, 'scope-domain-admin'),
      sub: await create(subUser.client, 'scope-sub'),
      foreigner: await create(foreigner.client, 'scope-foreigner'),
    };
  });

  const scopeNames = async (client: ApiClient, params: Record<string, string | number | boolean> = {}) =>
    (await names(client, { keyword: 'scope-', ...params })).filter((name: string) => name.startsWith('scope-'));

  it('shows a user only its own account’s pairs, listall or not', async () => {
    expect(await scopeNames(alice.client)).toEqual(['scope-alice']);
    expect(await scopeNames(alice.client, { listall: true })).toEqual(['scope-alice']);
    expect(await scopeNames(alice.client, { domainid: domain.id, isrecursive: true })).toEqual(['scope-alice']);
    expect(await listOf(alice.client, { id: mark.bob.id })).toEqual({});
    expect(await listOf(alice.client, { name: 'scope-bob' })).toEqual({});
    await refusedUnchanged(
      () => alice.client.call('listSSHKeyPairs', { account: bob.account.name, domainid: domain.id }),
      'listSSHKeyPairs',
      531,
      `Caller ${alice.account.name} does not have permission to operate with account ${bob.account.name}`,
      4365,
    );
    await refusedUnchanged(
      () => alice.client.call('listSSHKeyPairs', { domainid: other.id }),
      'listSSHKeyPairs',
      531,
      `Acct[${alice.account.id}-${alice.account.name}] does not have permission to operate within domain id=${other.id}`,
      4365,
    );
  });

  it('shows a domain admin its domain’s subtree, and a root admin everything', async () => {
    expect(await scopeNames(domainAdmin.client)).toEqual(['scope-domain-admin']);
    expect(await scopeNames(domainAdmin.client, { listall: true })).toEqual(['scope-alice', 'scope-bob', 'scope-domain-admin', 'scope-sub']);
    expect(await scopeNames(domainAdmin.client, { domainid: domain.id })).toEqual(['scope-alice', 'scope-bob', 'scope-domain-admin']);
    expect(await scopeNames(domainAdmin.client, { domainid: domain.id, isrecursive: true })).toEqual(['scope-alice', 'scope-bob', 'scope-domain-admin', 'scope-sub']);
    expect(await scopeNames(domainAdmin.client, { domainid: sub.id })).toEqual(['scope-sub']);
    expect(await scopeNames(domainAdmin.client, { account: bob.account.name, domainid: domain.id })).toEqual(['scope-bob']);
    expect(await listOf(domainAdmin.client, { id: mark.foreigner.id, listall: true })).toEqual({});
    await refusedUnchanged(
      () => domainAdmin.client.call('listSSHKeyPairs', { domainid: other.id }),
      'listSSHKeyPairs',
      531,
      `Acct[${domainAdmin.account.id}-${domainAdmin.account.name}] does not have permission to operate within domain id=${other.id}`,
      4365,
    );
    expect(await scopeNames(world.admin, { listall: true })).toEqual(['scope-alice', 'scope-bob', 'scope-domain-admin', 'scope-foreigner', 'scope-sub']);
    expect(await scopeNames(world.admin, { domainid: other.id })).toEqual(['scope-foreigner']);
    expect(await scopeNames(world.admin)).toEqual([]); // the admin's own account has none of them
  });

  it('filters by id, name, fingerprint and keyword, newest first, and pages', async () => {
    expect((await listOf(world.admin, { id: mark.sub.id, listall: true })).sshkeypair.map((p: any) => p.name)).toEqual(['scope-sub']);
    expect(await names(world.admin, { name: 'SCOPE-BOB', listall: true })).toEqual(['scope-bob']);
    expect(await names(world.admin, { fingerprint: mark.alice.fingerprint, listall: true })).toEqual(['scope-alice']);
    expect(await names(world.admin, { fingerprint: mark.alice.fingerprint.toUpperCase(), listall: true })).toEqual(['scope-alice']);
    expect(await names(world.admin, { keyword: mark.sub.fingerprint.slice(6, 20), listall: true })).toEqual(['scope-sub']);
    expect(await names(world.admin, { keyword: 'PE-FOR', listall: true })).toEqual(['scope-foreigner']);

    const all = await listOf(domainAdmin.client, { listall: true, keyword: 'scope-' });
    expect(all.count).toBe(4);
    expect(all.sshkeypair.map((p: any) => p.name)).toEqual(['scope-sub', 'scope-domain-admin', 'scope-bob', 'scope-alice']);
    const second = await listOf(domainAdmin.client, { listall: true, keyword: 'scope-', page: 2, pagesize: 3 });
    expect(second).toEqual({ count: 4, sshkeypair: [all.sshkeypair[3]] });

    const nowhere = '0f0f0f0f-0000-4000-8000-000000000000';
    await refusedUnchanged(() => alice.client.call('listSSHKeyPairs', { id: nowhere }), 'listSSHKeyPairs', 431, noEntity('listsshkeypairs', 'id', nowhere), 4350);
    await refusedUnchanged(() => alice.client.call('listSSHKeyPairs', { domainid: nowhere }), 'listSSHKeyPairs', 431, noEntity('listsshkeypairs', 'domainid', nowhere), 4350);
    await refusedUnchanged(() => alice.client.call('listSSHKeyPairs', { projectid: nowhere }), 'listSSHKeyPairs', 431, noEntity('listsshkeypairs', 'projectid', nowhere), 4350);
    await refusedUnchanged(() => alice.client.call('listSSHKeyPairs', { id: 'nope' }), 'listSSHKeyPairs', 431, /Invalid parameter id value=nope: is not a valid UUID$/, 4350);
  });
});

describe('deleteSSHKeyPair', () => {
  it('deletes the caller’s own pair by name, and its name and key can be used again', async () => {
    const line = sshKeygen('ed25519');
    const pair = await register(alice.client, 'short-lived', line);
    expect(ok(await alice.client.call('deleteSSHKeyPair', { name: 'SHORT-LIVED' }), 'deleteSSHKeyPair')).toEqual({ success: true });
    expect(await getKeyPair(pair.id)).toBeUndefined();
    expect(await listOf(alice.client, { name: 'short-lived' })).toEqual({});
    expect(await findKeyPairByPublicKey(alice.account.id, line.split(' ').slice(0, 2).join(' '))).toBeUndefined();
    expect((await eventsOfType('SSH.KEYPAIR.DELETE')).some((e) => e.description === 'Successfully completed deleting ssh keypair. Name: short-lived' && e.account === alice.account.name)).toBe(true);
    expect(await register(alice.client, 'short-lived', line)).toMatchObject({ fingerprint: pair.fingerprint });
  });

  it('lets admins delete the pair of an account they reach, named with account and domainid', async () => {
    await create(bob.client, 'bobs');
    await create(subUser.client, 'subs');
    expect(ok(await domainAdmin.client.call('deleteSSHKeyPair', { name: 'subs', account: subUser.account.name, domainid: sub.id }), 'deleteSSHKeyPair')).toEqual({ success: true });
    expect(ok(await world.admin.call('deleteSSHKeyPair', { name: 'bobs', account: bob.account.name, domainid: domain.id }), 'deleteSSHKeyPair')).toEqual({ success: true });
    expect(await findKeyPairByName(subUser.account.id, 'subs')).toBeUndefined();
    expect(await findKeyPairByName(bob.account.id, 'bobs')).toBeUndefined();
  });

  it('refuses pairs that are not there or not the caller’s, changing nothing', async () => {
    const api = 'deleteSSHKeyPair';
    await create(bob.client, 'bob-keeps');
    await create(foreigner.client, 'foreigner-keeps');
    // Without an owner the caller's own account is meant: there is no such pair there.
    await refusedUnchanged(
      () => alice.client.call(api, { name: 'bob-keeps' }),
      api,
      431,
      `A key pair with name 'bob-keeps' does not exist for account ${alice.account.name} in specified domain id`,
      4350,
    );
    await refusedUnchanged(
      () => alice.client.call(api, { name: 'bob-keeps', account: bob.account.name, domainid: domain.id }),
      api,
      531,
      `Can't create/list resources for account ${bob.account.name} in domain ${domain.id}, permission denied`,
      4365,
    );
    await refusedUnchanged(
      () => domainAdmin.client.call(api, { name: 'foreigner-keeps', account: foreigner.account.name, domainid: other.id }),
      api,
      531,
      `Acct[${domainAdmin.account.id}-${domainAdmin.account.name}] does not have permission to operate within domain id=${other.id}`,
      4365,
    );
    await refusedUnchanged(
      () => world.admin.call(api, { name: 'nothing-like-it', account: bob.account.name, domainid: domain.id }),
      api,
      431,
      `A key pair with name 'nothing-like-it' does not exist for account ${bob.account.name} in specified domain id`,
      4350,
    );
    await refusedUnchanged(() => alice.client.call(api, {}), api, 431, missing('deletesshkeypair', 'name'), 4350);
    await refusedUnchanged(() => alice.client.call(api, { name: 'bob-keeps', account: bob.account.name }), api, 431, 'AccountName and domainId must be specified together', 4350);
    expect(await findKeyPairByName(bob.account.id, 'bob-keeps')).toBeDefined();
    expect(await findKeyPairByName(foreigner.account.id, 'foreigner-keeps')).toBeDefined();
  });
});

describe('deleting an account', () => {
  it('removes its key pairs, and only its', async () => {
    const leaving = await makeAccount(world.admin, { domainid: domain.id });
    const created = await create(leaving.client, 'leaving-created');
    const line = sshKeygen('ecdsa');
    const registered = await register(leaving.client, 'leaving-registered', line);
    expect(await names(leaving.client)).toEqual(['leaving-created', 'leaving-registered']);
    const othersBefore = (await everything()).filter((pair) => pair.account !== leaving.account.name);

    const job = await finish(world.admin, await world.admin.call('deleteAccount', { id: leaving.account.id }), 'deleteAccount');
    expect(job.jobstatus).toBe(1);
    expect(await getKeyPair(created.id)).toBeUndefined();
    expect(await getKeyPair(registered.id)).toBeUndefined();
    expect(await listKeyPairsUnder((await getDomain(domain.id))!.tree, leaving.account.id)).toEqual([]);
    expect(await findKeyPairByName(leaving.account.id, 'leaving-created')).toBeUndefined();
    expect(await findKeyPairByPublicKey(leaving.account.id, line.split(' ').slice(0, 2).join(' '))).toBeUndefined();
    expect(await everything()).toEqual(othersBefore);
  });
});
