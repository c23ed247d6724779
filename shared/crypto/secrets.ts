// Secrets at rest (API secret keys) are sealed with AES-256-GCM under a data key. On AWS the data
// key is a Secrets Manager secret (itself encrypted with KMS) named by MOLD_DATA_KEY_SECRET_ARN;
// locally it is a 0600 file named by MOLD_SECRET_KEY_FILE. It is read once per process.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

export const DATA_KEY_SECRET_VARIABLE = 'MOLD_DATA_KEY_SECRET_ARN';
export const SECRET_KEY_FILE_VARIABLE = 'MOLD_SECRET_KEY_FILE';

let dataKey: Promise<Buffer> | undefined;
let dataKeySource: string | undefined;

function loadDataKey(): Promise<Buffer> {
  const file = process.env[SECRET_KEY_FILE_VARIABLE];
  const secretArn = process.env[DATA_KEY_SECRET_VARIABLE];
  const source = file ?? secretArn;
  if (!source) throw new Error(`neither ${SECRET_KEY_FILE_VARIABLE} nor ${DATA_KEY_SECRET_VARIABLE} is set`);
  if (!dataKey || dataKeySource !== source) {
    dataKeySource = source;
    // The AES key is the SHA-256 of the secret text, so any long random text serves as one.
    dataKey = (file ? readFile(file, 'utf8') : secretsManagerValue(secretArn!)).then((text) => {
      if (text.trim().length < 32) throw new Error('the data key secret is too short');
      return createHash('sha256').update(text.trim()).digest();
    });
    dataKey.catch(() => (dataKey = undefined));
  }
  return dataKey;
}

async function secretsManagerValue(secretId: string): Promise<string> {
  const { SecretString } = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: secretId }));
  if (!SecretString) throw new Error('the data key secret has no value');
  return SecretString;
}

/** v1.<iv>.<tag>.<ciphertext>, base64url parts. */
export async function sealSecret(plaintext: string): Promise<string> {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', await loadDataKey(), iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
}

export async function openSecret(sealed: string): Promise<string> {
  const [version, iv, tag, body] = sealed.split('.');
  if (version !== 'v1') throw new Error('unknown sealed secret format');
  const decipher = createDecipheriv('aes-256-gcm', await loadDataKey(), Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
}

/** A new random data key, base64, for a fresh installation. */
export function newDataKey(): string {
  return randomBytes(32).toString('base64');
}
