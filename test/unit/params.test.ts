// CloudStack's parameter types alone: whole numbers within Java's int and long (and what a JS number
// keeps exactly), and the characters names and texts may carry.
import { describe, expect, it } from 'vitest';
import { param } from '../../shared/cloudstack/params.ts';

const refusal = (schema: { safeParse: (v: unknown) => { success: boolean; error?: { issues: { message: string }[] } } }, value: unknown) => {
  const parsed = schema.safeParse(value);
  return parsed.success ? undefined : parsed.error!.issues[0].message;
};

describe('integer', () => {
  const integer = param.integer('n');
  it('takes Java int values, with a sign or spaces around', () => {
    expect(integer.parse('2147483647')).toBe(2147483647);
    expect(integer.parse('-2147483648')).toBe(-2147483648);
    expect(integer.parse('+5')).toBe(5);
    expect(integer.parse(' 7 ')).toBe(7);
  });
  it('refuses values beyond Java’s int', () => {
    for (const value of ['2147483648', '-2147483649', '9'.repeat(400)]) {
      expect(refusal(integer, value), value).toBe('is out of range for an integer (-2147483648 to 2147483647)');
    }
    expect(refusal(integer, '1e3')).toBe('is not an integer');
  });
});

describe('long', () => {
  const long = param.long('n');
  it('takes the whole numbers a JS number keeps exactly', () => {
    expect(long.parse('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
    expect(long.parse('-9007199254740991')).toBe(-Number.MAX_SAFE_INTEGER);
  });
  it('refuses values beyond Java’s long, and beyond 2^53 − 1', () => {
    expect(refusal(long, '9223372036854775808')).toBe('is out of range for a long (-9223372036854775808 to 9223372036854775807)');
    expect(refusal(long, '9'.repeat(400))).toMatch(/^is out of range for a long/);
    expect(refusal(long, '9007199254740993')).toBe('is beyond ±9007199254740991, the largest whole number Mold keeps exactly');
    expect(refusal(long, '-9223372036854775808')).toBe('is beyond ±9007199254740991, the largest whole number Mold keeps exactly');
  });
});

describe('names and texts', () => {
  const name = param.string('a name');
  const text = param.text('a text');
  it('refuses controls, bidirectional formatting and line breaks in names, naming the character', () => {
    expect(refusal(name, 'a\u0000b')).toBe('contains a control or formatting character (U+0000)');
    expect(refusal(name, 'evil\u202etxt.exe')).toBe('contains a control or formatting character (U+202E)');
    for (const value of ['tab\there', 'line\nbreak', 'esc\u001b[31m', 'c1\u0085', 'mark\u200f', 'iso\u2066x', 'bom\ufeff', 'sep\u2028', 'del\u007f']) {
      expect(refusal(name, value), JSON.stringify(value)).toMatch(/^contains a control or formatting character \(U\+[0-9A-F]{4}\)$/);
    }
  });
  it('keeps letters of any script, emoji and joiners in names', () => {
    for (const value of ['Zürich-1', '東京', 'مرحبا', 'می‌خواهم', '👩‍💻 lab']) expect(name.parse(value)).toBe(value);
  });
  it('keeps line breaks, tabs and right-to-left text in texts, but no other controls', () => {
    for (const value of ['two\nlines\r\n', 'a\tb', 'שלום \u202bעולם\u202c']) expect(text.parse(value)).toBe(value);
    for (const value of ['nul\u0000', 'esc\u001b', 'c1\u0085', 'nonchar\uffff']) expect(refusal(text, value), JSON.stringify(value)).toMatch(/^contains a control character/);
  });
  it('checks the keys and values of maps the same way', () => {
    const map = param.map('details');
    expect(map.parse([{ key: 'cpu', value: 'two\nlines' }])).toEqual([{ key: 'cpu', value: 'two\nlines' }]);
    expect(refusal(map, [{ 'k\u202e': 'v' }])).toMatch(/^contains a control or formatting character in a key/);
    expect(refusal(map, [{ k: 'v\u0000' }])).toMatch(/^contains a control character/);
  });
});
