// The request parser and the expires parser, alone: hostile names and cookies, and upstream's
// date format. (Signing is tested through HTTP with the independent client.)
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { parseExpires } from '../../functions/api/auth.ts';
import { parseRequest, REQUEST_LIMITS } from '../../functions/api/request.ts';

const event = (rawQueryString: string, cookies?: string[]) => ({ rawQueryString, cookies, headers: {} }) as unknown as APIGatewayProxyEventV2;
const post = (body: string) => ({ rawQueryString: '', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } }) as unknown as APIGatewayProxyEventV2;

describe('parseRequest', () => {
  afterEach(() => {
    delete (Object.prototype as Record<string, unknown>)[0];
  });

  it('treats __proto__ and constructor as plain parameter names, polluting nothing', () => {
    const request = parseRequest(event('__proto__[0].x=1&constructor[0].y=2&__proto__=3&command=listApis'));
    expect(({} as Record<string, unknown>)[0]).toBeUndefined();
    expect(([] as unknown[])[0]).toBeUndefined();
    expect((Object as unknown as Record<string, unknown>)[0]).toBeUndefined();
    expect(request.params.command).toBe('listApis');
    expect(Object.getPrototypeOf(request.params)).toBeNull();
  });

  it('keeps an undecodable cookie as sent instead of failing the request', () => {
    const request = parseRequest(event('command=listApis', ['tracker=%E0%A4%A', 'sessionkey=abc%3D']));
    expect(request.cookies).toEqual({ tracker: '%E0%A4%A', sessionkey: 'abc=' });
  });

  it('lower-cases names for lookup, keeps pairs as sent, and the last of a repeated name wins', () => {
    const request = parseRequest(event('Command=a&apiKey=k&name=1&name=2'));
    expect(request.pairs).toEqual([['Command', 'a'], ['apiKey', 'k'], ['name', '1'], ['name', '2']]);
    expect({ ...request.params }).toEqual({ command: 'a', apikey: 'k', name: '2' });
  });
});

describe('map parameters', () => {
  it('keeps entries by index, whatever the index (upstream’s keyed map), in index order', () => {
    // Before: the entry went to array index N and every index up to N was walked (≈ 90 s for the last).
    for (const index of [400000000, 2147483647]) {
      const request = parseRequest(event(`details[${index}].key=v&details[${index}].value=w&details[2].key=a&details[-1].key=z&command=listZones`));
      expect(request.params.details).toEqual([{ key: 'z' }, { key: 'a' }, { key: 'v', value: 'w' }]);
      expect(request.malformed).toBeUndefined();
    }
  });

  it('marks a name that is not name[index].field, or whose index is no Java int, as upstream’s 430, and keeps nothing of it', () => {
    for (const name of ['details[2147483648].key', 'details[4294967294].key', 'details[-2147483649].key', 'a[1][2].b', 'a]0[.b', 'a[0]b', 'a.b[0].c', 'a[x].b', 'a[].b', `a[${'9'.repeat(400)}].b`]) {
      const request = parseRequest(event(`command=listZones&${encodeURIComponent(name)}=v`));
      expect(request.malformed?.errorcode, name).toBe(430);
      expect(request.malformed?.message).toBe(`Unable to decode parameter ${name}; if specifying an object array, please use parameter[index].field=XXX, e.g. userGroupList[0].group=httpGroup`);
      expect(Object.keys(request.params)).toEqual(['command']);
    }
    // A name that starts with `[` is a plain name, as upstream reads it.
    expect(parseRequest(event('%5B0%5D.x=1')).params['[0].x']).toBe('1');
  });
});

describe('request limits', () => {
  it('marks a query string, a body or a parameter count over the limits', () => {
    const long = 'x'.repeat(REQUEST_LIMITS.queryStringBytes);
    expect(parseRequest(event(`a=${long.slice(2)}`)).tooLarge).toBeUndefined();
    expect(parseRequest(event(`a=${long}`)).tooLarge?.message).toBe(`The query string is too large: ${long.length + 2} bytes, at most 16384 bytes; send long parameters by POST`);
    expect(parseRequest(post(`a=${'x'.repeat(REQUEST_LIMITS.bodyBytes)}`)).tooLarge?.message).toMatch(/^The request body is too large: 1048578 bytes, at most 1048576 bytes$/);
    // Refused with only its command and response format read, for the envelope.
    const huge = parseRequest(post(`Command=listZones&padding=${'x'.repeat(REQUEST_LIMITS.bodyBytes)}&a&=b&RESPONSE=json`));
    expect({ ...huge.params }).toEqual({ command: 'listZones', response: 'json' });
    expect(huge.pairs).toEqual([]);
    const many = Array.from({ length: REQUEST_LIMITS.parameters + 1 }, (_, i) => `p${i}=`).join('&');
    expect(parseRequest(post(many)).tooLarge).toMatchObject({ errorcode: 431, cserrorcode: 9999, message: 'Too many parameters: 5001, at most 5000' });
  });
});

describe('parseExpires', () => {
  it('reads upstream’s format and ISO 8601 with an offset', () => {
    expect(parseExpires('2030-01-02T03:04:05+0000')).toBe(Date.UTC(2030, 0, 2, 3, 4, 5));
    expect(parseExpires('2030-01-02T05:04:05+0200')).toBe(Date.UTC(2030, 0, 2, 3, 4, 5));
    expect(parseExpires('2030-01-02T03:04:05.250Z')).toBe(Date.UTC(2030, 0, 2, 3, 4, 5, 250));
    expect(parseExpires('2030-01-02T03:04:05-01:30')).toBe(Date.UTC(2030, 0, 2, 4, 34, 5));
  });

  it('refuses anything else', () => {
    for (const value of ['', 'tomorrow', '2030-01-02', '2030-01-02T03:04:05', '2030-01-02 03:04:05+0000', '1 Z', '2030-13-40T00:00:00Z', '1893456000000']) {
      expect(parseExpires(value), value).toBeUndefined();
    }
  });
});
