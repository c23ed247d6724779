// The request parser and the expires parser, alone: hostile names and cookies, and upstream's
// date format. (Signing is tested through HTTP with the independent client.)
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { parseExpires } from '../../functions/api/auth.ts';
import { parseRequest } from '../../functions/api/request.ts';

const event = (rawQueryString: string, cookies?: string[]) => ({ rawQueryString, cookies, headers: {} }) as unknown as APIGatewayProxyEventV2;

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
