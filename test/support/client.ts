// A CloudStack API client for tests, written from the published algorithm and independent of
// Mold's own code: it signs as CloudMonkey and the cs library do.
import { createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { until } from './wait.ts';

export interface Keys {
  apikey: string;
  secretkey: string;
}

export interface ApiAnswer {
  status: number;
  body: any;
  headers: Headers;
}

/** Percent-encodes as Java's URLEncoder: UTF-8 bytes, A-Z a-z 0-9 . - * _ kept, space as %20. */
export function encodeValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9.\-*_]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * The string upstream signs: every parameter but `signature` (a repeated name counts with its last
 * value, as upstream's servlet keeps it), sorted by name as sent (case-sensitive), `name=value`
 * with the value encoded, joined with `&`, lower-cased. `encode` lets tests sign the wrong way.
 */
export function canonicalString(params: readonly [string, string][], encode: (value: string) => string = encodeValue): string {
  const byName = new Map<string, string>();
  for (const [name, value] of params) if (name.toLowerCase() !== 'signature') byName.set(name, value);
  return [...byName]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => `${name}=${encode(value)}`)
    .join('&')
    .toLowerCase();
}

export function hmac(canonical: string, secretkey: string): string {
  return createHmac('sha1', secretkey).update(canonical).digest('base64');
}

export function signature(params: [string, string][], secretkey: string): string {
  return hmac(canonicalString(params), secretkey);
}

export class ApiClient {
  readonly url: string;
  readonly keys?: Keys;
  sessionkey?: string;
  cookies: string[] = [];

  constructor(url: string, keys?: Keys) {
    this.url = url;
    this.keys = keys;
  }

  /** Signed with the API keys (or the session key after login), JSON responses. */
  async call(command: string, params: Record<string, string | number | boolean> = {}, options: { method?: 'GET' | 'POST'; response?: 'json' | 'xml' } = {}): Promise<ApiAnswer> {
    const pairs: [string, string][] = [['command', command], ...Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])];
    if (options.response !== 'xml') pairs.push(['response', 'json']);
    if (this.sessionkey) pairs.push(['sessionkey', this.sessionkey]);
    else if (this.keys) {
      pairs.push(['apiKey', this.keys.apikey]);
      pairs.push(['signature', signature(pairs, this.keys.secretkey)]);
    }
    return send(this.url, pairs, options.method ?? 'GET', this.cookies);
  }

  async login(username: string, password: string, domain = '/'): Promise<ApiAnswer> {
    const answer = await send(this.url, [['command', 'login'], ['username', username], ['password', password], ['domain', domain], ['response', 'json']], 'POST', []);
    if (answer.status === 200) {
      this.sessionkey = answer.body.loginresponse.sessionkey;
      this.cookies = answer.headers.getSetCookie().map((cookie) => cookie.split(';')[0]);
    }
    return answer;
  }

  /** Polls queryAsyncJobResult until the job is no longer pending; `quietMs` as in until(). */
  async waitForJob(jobid: string, quietMs = 30_000, pollMs = 100): Promise<any> {
    return until(
      `job ${jobid} to end`,
      async () => (await this.call('queryAsyncJobResult', { jobid })).body.queryasyncjobresultresponse,
      (job) => job.jobstatus !== 0,
      { within: quietMs, every: pollMs },
    );
  }
}

export async function send(url: string, pairs: [string, string][], method: 'GET' | 'POST', cookies: string[] = []): Promise<ApiAnswer> {
  const query = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  const headers: Record<string, string> = cookies.length ? { cookie: cookies.join('; ') } : {};
  const response =
    method === 'GET'
      ? await fetch(`${url}?${query}`, { headers })
      : await fetch(url, { method, headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, body: query });
  const text = await response.text();
  let body: any = text;
  if (response.headers.get('content-type')?.includes('json')) body = JSON.parse(text);
  return { status: response.status, body, headers: response.headers };
}

/** The root admin's keys, as the runtime wrote them on first start. */
export function adminClient(apiUrl: string, credentials: { apikey: string; secretkey: string }): ApiClient {
  return new ApiClient(apiUrl, credentials);
}

/**
 * Sends from a given local address (any 127.x.y.z on Linux), so the server sees another source IP;
 * also lets a test send raw cookie and other headers. Bodies are form-encoded for POST.
 */
export function sendFrom(
  url: string,
  pairs: [string, string][],
  options: { method?: 'GET' | 'POST'; localAddress?: string; cookie?: string; headers?: Record<string, string> } = {},
): Promise<ApiAnswer> {
  const method = options.method ?? 'GET';
  const query = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  const target = new URL(method === 'GET' ? `${url}?${query}` : url);
  const headers: Record<string, string> = { ...options.headers };
  if (options.cookie) headers.cookie = options.cookie;
  if (method === 'POST') headers['content-type'] = 'application/x-www-form-urlencoded';
  return new Promise((resolve, reject) => {
    const req = httpRequest(target, { method, headers, localAddress: options.localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) responseHeaders.append(name, one);
        }
        const json = String(res.headers['content-type'] ?? '').includes('json');
        resolve({ status: res.statusCode ?? 0, body: json ? JSON.parse(text) : text, headers: responseHeaders });
      });
    });
    req.on('error', reject);
    req.end(method === 'POST' ? query : undefined);
  });
}
