// Credentials people paste into command lines never begin with '-' (an enrolment token that did was
// taken for an option by `mold-agent enrol --token <token>`, about one in 32 of them).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { randomCredential } from '../../shared/crypto/credentials.ts';

describe('randomCredential', () => {
  it('draws again when the first character would be - or _', () => {
    // 0xf8 encodes to '-' and 0xfc to '_' as the first base64url character.
    const draws = [Buffer.from([0xf8, 1, 2]), Buffer.from([0xfc, 1, 2]), Buffer.from([0x04, 1, 2])];
    const sizes: number[] = [];
    const credential = randomCredential(3, (size) => (sizes.push(size), draws.shift()!));
    expect(Buffer.from([0xf8, 1, 2]).toString('base64url')).toMatch(/^-/);
    expect(Buffer.from([0xfc, 1, 2]).toString('base64url')).toMatch(/^_/);
    expect(credential).toBe(Buffer.from([0x04, 1, 2]).toString('base64url'));
    expect(sizes).toEqual([3, 3, 3]);
  });

  it('keeps the URL-safe alphabet and the length of its bytes, and starts with a letter or digit', () => {
    for (let i = 0; i < 2000; i++) {
      const credential = randomCredential(32, randomBytes);
      expect(credential).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{42}$/);
    }
  });
});
