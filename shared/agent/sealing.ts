// Secrets in a command's payload (a host's password) are sealed to the agent's public key, so only the
// agent can read them: not the queue, not Step Functions' execution history, not the job record.
// RSA-OAEP (SHA-256) wraps a fresh AES-256-GCM key that encrypts the secret.
import { createCipheriv, createDecipheriv, privateDecrypt, publicEncrypt, randomBytes, X509Certificate, constants } from 'node:crypto';
import type { SealedSecret } from './protocol.ts';

/** Seals `plaintext` to the public key in `certificatePem` (the agent's certificate). */
export function sealToAgent(certificatePem: string, plaintext: string): SealedSecret {
  const publicKey = new X509Certificate(certificatePem).publicKey;
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const wrapped = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, key);
  return {
    alg: 'RSA-OAEP-256+A256GCM',
    key: wrapped.toString('base64'),
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  };
}

/** Opens a sealed secret with the agent's private key (PEM). */
export function openSealed(privateKeyPem: string, sealed: SealedSecret): string {
  const key = privateDecrypt({ key: privateKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(sealed.key, 'base64'));
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
  decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8');
}
