// CloudStack's request signature (upstream ApiServer.verifyRequest): the parameters other than
// `signature`, sorted by name as sent (case-sensitive order), each `name=value` with the value
// encoded as Java's URLEncoder does and spaces as %20, joined with `&`, the whole string
// lower-cased, then HMAC-SHA1 with the secret key, base64.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Java's URLEncoder.encode(value, "UTF-8"), then "+" → "%20". Keeps A-Z a-z 0-9 . - * _ only. */
export function javaUrlEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The string that is signed, from the request's decoded pairs (a repeated name: its last value). */
export function stringToSign(pairs: readonly [string, string][]): string {
  const byName = new Map<string, string>();
  for (const [name, value] of pairs) {
    if (name.toLowerCase() !== 'signature') byName.set(name, value);
  }
  return [...byName.keys()]
    .sort()
    .map((name) => `${name}=${javaUrlEncode(byName.get(name)!)}`)
    .join('&')
    .toLowerCase();
}

export function sign(pairs: readonly [string, string][], secretKey: string): string {
  return createHmac('sha1', secretKey).update(stringToSign(pairs)).digest('base64');
}

export function signatureMatches(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
