// OpenSSH public keys, fingerprints and generated pairs, checked against OpenSSH's own ssh-keygen.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSshKeyPair, publicKeyFingerprint, publicKeyFromMaterial, publicKeyObject } from '../../shared/crypto/ssh-keys.ts';

let dir: string;
const keygen = (...args: string[]) => execFileSync('ssh-keygen', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** What `ssh-keygen -l -E md5` prints for a public key line, without "MD5:". */
function md5Fingerprint(line: string): string {
  const file = join(dir, `fp-${Math.random().toString(36).slice(2)}.pub`);
  writeFileSync(file, `${line}\n`);
  return keygen('-l', '-E', 'md5', '-f', file).split(' ')[1].replace(/^MD5:/, '');
}

/** A key made by ssh-keygen: its public key line (with comment) and its private key file. */
function sshKeygen(type: string, bits?: number): { line: string; privateFile: string } {
  const file = join(dir, `${type}-${bits ?? 'default'}-${Math.random().toString(36).slice(2)}`);
  keygen('-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', `someone@${type}`, '-f', file);
  return { line: readFileSync(`${file}.pub`, 'utf8').trim(), privateFile: file };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mold-ssh-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('generated key pairs', () => {
  it('are RSA 2048 in PKCS#1 PEM, whose public key and fingerprint are what ssh-keygen derives', async () => {
    const pair = await generateSshKeyPair();
    expect(pair.privateKey).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n([A-Za-z0-9+/=]{64}\n)+[A-Za-z0-9+/=]{1,64}\n-----END RSA PRIVATE KEY-----\n$/);
    const key = createPrivateKey(pair.privateKey);
    expect(key.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });

    const file = join(dir, 'generated');
    writeFileSync(file, pair.privateKey, { mode: 0o600 });
    const derived = keygen('-y', '-f', file).trim();
    expect(pair.publicKey).toBe(derived.split(' ').slice(0, 2).join(' '));
    expect(pair.publicKey).toMatch(/^ssh-rsa AAAAB3NzaC1yc2E/);
    expect(pair.fingerprint).toBe(md5Fingerprint(derived));
    expect(pair.fingerprint).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);

    // The private key signs what the stored public key verifies; another key's signature fails.
    const data = Buffer.from('mold');
    const signature = sign('sha256', data, key);
    expect(verify('sha256', data, publicKeyObject(pair.publicKey)!, signature)).toBe(true);
    const other = await generateSshKeyPair(1024);
    expect(createPrivateKey(other.privateKey).asymmetricKeyDetails?.modulusLength).toBe(1024);
    expect(verify('sha256', data, publicKeyObject(other.publicKey)!, signature)).toBe(false);
  });
});

describe('public key material', () => {
  it('keeps type and blob of every key type upstream accepts, fingerprinted as ssh-keygen does', () => {
    const keys = [
      sshKeygen('rsa', 2048),
      sshKeygen('rsa', 4096),
      sshKeygen('ed25519'),
      sshKeygen('ecdsa', 256),
      sshKeygen('ecdsa', 384),
      sshKeygen('ecdsa', 521),
      sshKeygen('dsa'),
    ];
    for (const { line } of keys) {
      const [type, blob] = line.split(' ');
      const publicKey = publicKeyFromMaterial(line);
      expect(publicKey).toBe(`${type} ${blob}`);
      expect(publicKeyFingerprint(publicKey!)).toBe(md5Fingerprint(line));
      // Without the comment, with surrounding whitespace, or the whole line base64-encoded, as upstream.
      expect(publicKeyFromMaterial(`${type} ${blob}`)).toBe(publicKey);
      expect(publicKeyFromMaterial(`  ${line}\r\n`)).toBe(publicKey);
      expect(publicKeyFromMaterial(Buffer.from(line).toString('base64'))).toBe(publicKey);
    }
  });

  it('verifies with the stored key what the private key signed (RSA, ECDSA, Ed25519)', () => {
    const keys = [
      generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
      generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey,
      generateKeyPairSync('ed25519').privateKey,
    ];
    for (const privateKey of keys) {
      let line: string;
      if (privateKey.asymmetricKeyType === 'ed25519') {
        // ssh-keygen reads no PKCS#8 Ed25519 key: the line by hand, as RFC 8709 lays it out.
        const x = Buffer.from(privateKey.export({ format: 'jwk' }).x!, 'base64url');
        const field = (bytes: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, bytes.length]), bytes]);
        line = `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(x)]).toString('base64')}`;
      } else {
        const file = join(dir, `node-${Math.random().toString(36).slice(2)}`);
        writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
        line = keygen('-y', '-f', file).trim();
      }
      const publicKey = publicKeyFromMaterial(line)!;
      expect(publicKeyFingerprint(publicKey)).toBe(md5Fingerprint(line));
      const data = Buffer.from(`signed by ${privateKey.asymmetricKeyType}`);
      const digest = privateKey.asymmetricKeyType === 'ed25519' ? null : 'sha256';
      const signature = sign(digest, data, privateKey);
      expect(verify(digest, data, publicKeyObject(publicKey)!, signature)).toBe(true);
      expect(verify(digest, Buffer.from('something else'), publicKeyObject(publicKey)!, signature)).toBe(false);
    }
  });

  it('refuses what is not a valid key of the type it names', () => {
    const rsa = sshKeygen('rsa', 2048).line;
    const ed = sshKeygen('ed25519').line;
    const ecdsa = sshKeygen('ecdsa', 256).line;
    const [, rsaBlob] = rsa.split(' ');
    const [, edBlob] = ed.split(' ');
    const blob = (text: string) => Buffer.from(text, 'base64');
    const b64 = (bytes: Buffer) => bytes.toString('base64');
    // An ECDSA point moved off its curve.
    const ecBlob = blob(ecdsa.split(' ')[1]);
    ecBlob[ecBlob.length - 1] ^= 0x01;
    const refused = [
      '',
      'ssh-rsa',
      'not a key',
      'hello',
      `ssh-rsa ${rsaBlob.slice(0, -8)}`, // truncated
      `ssh-rsa ${rsaBlob}!!`, // not base64
      `ssh-rsa ${b64(Buffer.concat([blob(rsaBlob), Buffer.from([0])]))}`, // trailing bytes
      `ssh-ed25519 ${rsaBlob}`, // blob of another type
      `ssh-rsa ${edBlob}`,
      `ssh-xyz ${rsaBlob}`, // a type upstream does not take
      `ssh-rsa-cert-v01@openssh.com ${rsaBlob}`,
      `ssh-ed25519 ${b64(Buffer.concat([blob(edBlob).subarray(0, 4 + 11), Buffer.from([0, 0, 0, 31]), Buffer.alloc(31, 1)]))}`, // short key
      `ecdsa-sha2-nistp256 ${b64(ecBlob)}`,
      `ecdsa-sha2-nistp384 ${ecdsa.split(' ')[1]}`, // curve not the one named
      Buffer.from('ssh-rsa').toString('base64'),
    ];
    for (const material of refused) expect({ material, key: publicKeyFromMaterial(material) }).toEqual({ material, key: undefined });
  });
});
