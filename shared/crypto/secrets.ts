// Secrets at rest (API secret keys) are sealed with AES-256-GCM under a data key. Locally the key
// is a 0600 file named by MOLD_SECRET_KEY_FILE; on AWS it arrives with the API core, from KMS.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { env } from '../aws.ts';

let key: Buffer | undefined;

function dataKey(): Buffer {
  key ??= Buffer.from(readFileSync(env('MOLD_SECRET_KEY_FILE'), 'utf8').trim(), 'base64');
  return key;
}

/** v1.<iv>.<tag>.<ciphertext>, base64url parts. */
export function sealSecret(plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', dataKey(), iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv, cipher.getAuthTag(), body].map((part) => (typeof part === 'string' ? part : part.toString('base64url'))).join('.');
}

export function openSecret(sealed: string): string {
  const [version, iv, tag, body] = sealed.split('.');
  if (version !== 'v1') throw new Error('unknown sealed secret format');
  const decipher = createDecipheriv('aes-256-gcm', dataKey(), Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
}

/** A new random data key, base64, for a fresh local runtime. */
export function newDataKey(): string {
  return randomBytes(32).toString('base64');
}
