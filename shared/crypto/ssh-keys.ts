// OpenSSH public keys as upstream's SSHKeysHelper handles them: a generated RSA pair (the private key
// in PKCS#1 PEM, as JSch writes it), the `<type> <base64 blob>` line it stores, and the fingerprint,
// the MD5 of the key blob in colon-separated lower-case hex (what `ssh-keygen -l -E md5` prints after
// "MD5:"). Unlike upstream, a public key is accepted only when its blob really is a key of the type it
// names (upstream decodes leniently and would fingerprint garbage).
import { createHash, createPublicKey, generateKeyPair as generateKeyPairCallback, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generateRsa = promisify(generateKeyPairCallback);

/** The key types upstream's getPublicKeyFromKeyMaterial accepts. */
export const SSH_KEY_TYPES = ['ssh-rsa', 'ssh-dss', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-ed25519'] as const;
export type SshKeyType = (typeof SSH_KEY_TYPES)[number];

/** The uncompressed point length and JWK curve of each ECDSA curve. */
const CURVES: Record<string, { pointLength: number; crv: string }> = {
  nistp256: { pointLength: 65, crv: 'P-256' },
  nistp384: { pointLength: 97, crv: 'P-384' },
  nistp521: { pointLength: 133, crv: 'P-521' },
};

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Strict base64: only the alphabet, correct padding, and it round-trips. */
function decodeBase64(text: string): Buffer | undefined {
  if (!BASE64.test(text) || text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

// ---- the SSH wire format (RFC 4251 §5): uint32 length-prefixed strings and mpints ----

function sshString(bytes: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** An unsigned big-endian integer as an mpint: no leading zeros, one 0x00 when the high bit is set. */
function sshMpint(unsigned: Buffer): Buffer {
  let start = 0;
  while (start < unsigned.length && unsigned[start] === 0) start++;
  const digits = unsigned.subarray(start);
  return sshString(digits.length && digits[0] & 0x80 ? Buffer.concat([Buffer.from([0]), digits]) : digits);
}

class BlobReader {
  private at = 0;
  private readonly blob: Buffer;
  constructor(blob: Buffer) {
    this.blob = blob;
  }

  string(): Buffer | undefined {
    if (this.at + 4 > this.blob.length) return undefined;
    const length = this.blob.readUInt32BE(this.at);
    if (this.at + 4 + length > this.blob.length) return undefined;
    const value = this.blob.subarray(this.at + 4, this.at + 4 + length);
    this.at += 4 + length;
    return value;
  }

  /** A positive mpint, without its sign byte; undefined when malformed, zero or negative. */
  positive(): Buffer | undefined {
    const value = this.string();
    if (!value || value.length === 0 || value[0] & 0x80) return undefined;
    if (value[0] === 0 && (value.length === 1 || !(value[1] & 0x80))) return undefined; // not minimal
    return value[0] === 0 ? value.subarray(1) : value;
  }

  get done(): boolean {
    return this.at === this.blob.length;
  }
}

const b64url = (bytes: Buffer) => bytes.toString('base64url');

/**
 * The key a blob holds, checked against the type its line names: its structure must be exactly that
 * type's and, for RSA, ECDSA and Ed25519, Node must accept it as a key (an EC point on its curve).
 * Returns the key (undefined for DSA, which Node cannot import from its parts) or false when invalid.
 */
function parseBlob(type: SshKeyType, blob: Buffer): KeyObject | undefined | false {
  const reader = new BlobReader(blob);
  if (reader.string()?.toString('latin1') !== type) return false;
  try {
    if (type === 'ssh-rsa') {
      const e = reader.positive();
      const n = reader.positive();
      if (!e || !n || !reader.done) return false;
      return createPublicKey({ key: { kty: 'RSA', e: b64url(e), n: b64url(n) }, format: 'jwk' });
    }
    if (type === 'ssh-dss') {
      const parts = [reader.positive(), reader.positive(), reader.positive(), reader.positive()];
      return parts.every(Boolean) && reader.done ? undefined : false;
    }
    if (type === 'ssh-ed25519') {
      const x = reader.string();
      if (!x || x.length !== 32 || !reader.done) return false;
      return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(x) }, format: 'jwk' });
    }
    const curveName = type.slice('ecdsa-sha2-'.length);
    const curve = CURVES[curveName];
    if (reader.string()?.toString('latin1') !== curveName) return false;
    const point = reader.string();
    if (!point || point.length !== curve.pointLength || point[0] !== 4 || !reader.done) return false;
    const half = (point.length - 1) / 2;
    return createPublicKey({
      key: { kty: 'EC', crv: curve.crv, x: b64url(point.subarray(1, 1 + half)), y: b64url(point.subarray(1 + half)) },
      format: 'jwk',
    });
  } catch {
    return false;
  }
}

/**
 * Upstream's SSHKeysHelper.getPublicKeyFromKeyMaterial: the `<type> <blob>` of an OpenSSH public key
 * line (its comment dropped), or of such a line base64-encoded as a whole; undefined when it is not a
 * valid key of one of the accepted types.
 */
export function publicKeyFromMaterial(material: string): string | undefined {
  let text = material.trim();
  if (!/\s/.test(text)) {
    const decoded = decodeBase64(text);
    if (!decoded) return undefined;
    text = decoded.toString('utf8').trim();
  }
  const [type, blobText] = text.split(/\s+/);
  if (!(SSH_KEY_TYPES as readonly string[]).includes(type) || !blobText) return undefined;
  const blob = decodeBase64(blobText);
  if (!blob || parseBlob(type as SshKeyType, blob) === false) return undefined;
  return `${type} ${blobText}`;
}

/** The key of a stored `<type> <blob>` line, to verify signatures with (undefined for DSA). */
export function publicKeyObject(publicKey: string): KeyObject | undefined {
  const [type, blobText] = publicKey.split(' ');
  const blob = decodeBase64(blobText ?? '');
  const key = blob && (SSH_KEY_TYPES as readonly string[]).includes(type) ? parseBlob(type as SshKeyType, blob) : false;
  if (key === false) throw new Error('not a valid OpenSSH public key');
  return key;
}

/** Upstream's SSHKeysHelper.getPublicKeyFingerprint: MD5 of the blob, as aa:bb:…, lower-case. */
export function publicKeyFingerprint(publicKey: string): string {
  const blob = Buffer.from(publicKey.split(' ')[1] ?? '', 'base64');
  return createHash('md5').update(blob).digest('hex').match(/../g)!.join(':');
}

/** The `ssh-rsa <blob>` line of an RSA key. */
export function opensshPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'RSA' || !jwk.n || !jwk.e) throw new Error('not an RSA key');
  const blob = Buffer.concat([
    sshString(Buffer.from('ssh-rsa')),
    sshMpint(Buffer.from(jwk.e, 'base64url')),
    sshMpint(Buffer.from(jwk.n, 'base64url')),
  ]);
  return `ssh-rsa ${blob.toString('base64')}`;
}

export interface GeneratedKeyPair {
  /** `ssh-rsa <blob>`. */
  publicKey: string;
  /** PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), as upstream's JSch writes it. */
  privateKey: string;
  fingerprint: string;
}

/** A new RSA key pair of `bits` (upstream's ssh.key.length, 2048 by default), exponent 65537. */
export async function generateSshKeyPair(bits = 2048): Promise<GeneratedKeyPair> {
  const { publicKey, privateKey } = await generateRsa('rsa', { modulusLength: bits, publicExponent: 0x10001 });
  const line = opensshPublicKey(publicKey);
  return {
    publicKey: line,
    privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    fingerprint: publicKeyFingerprint(line),
  };
}
