// Turns an API Gateway HTTP API (v2) event into a CloudStack request: the parameters of the query
// string and of a form-encoded body, as sent (for the signature) and by lower-cased name (CloudStack
// clients spell names in any case), with `name[i].key=…` maps grouped into lists of objects.
//
// This runs before authentication, so nothing here does work that grows with a number found in the
// input: a map's entries are kept by index in a Map and sorted, whatever the indexes are.
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { InvalidParameter, MalformedParameter } from '../../shared/cloudstack/errors.ts';

export type ParamValue = string | Record<string, string>[];

export interface ApiRequest {
  /** Every name=value pair, decoded, in the order sent. */
  pairs: [string, string][];
  /** By lower-cased name; a repeated name keeps its last value, as upstream (4.19+) respects. */
  params: Record<string, ParamValue>;
  cookies: Record<string, string>;
  /** Sent over HTTPS, as API Gateway (or a proxy in front of the local runtime) says in X-Forwarded-Proto. */
  secure: boolean;
  method: string;
  sourceIp: string;
  requestId: string;
  /** The request is larger than Mold takes (REQUEST_LIMITS): refused before anything else. */
  tooLarge?: InvalidParameter;
  /** A name with `[` that is not `name[index].field` (upstream's 430): refused once the caller is known. */
  malformed?: MalformedParameter;
}

/**
 * What one request may carry. The query string as Node's HTTP server and most proxies take it; the
 * form body and the number of parameters as upstream's Jetty (server.properties
 * request.content.size 1048576, request.max.form.keys 5000).
 */
export const REQUEST_LIMITS = { queryStringBytes: 16 * 1024, bodyBytes: 1024 * 1024, parameters: 5000 } as const;

/** Java's Integer.parseInt: the index of a map entry. */
const INDEX = /^[+-]?\d+$/;
const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;

export function parseRequest(event: APIGatewayProxyEventV2): ApiRequest {
  const query = event.rawQueryString ?? '';
  const body = event.body && isFormEncoded(event.headers) ? (event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body) : '';
  const context = {
    cookies: parseCookies(event.cookies ?? []),
    secure: event.headers?.['x-forwarded-proto']?.split(',')[0]?.trim().toLowerCase() === 'https',
    method: event.requestContext?.http?.method ?? 'GET',
    sourceIp: event.requestContext?.http?.sourceIp ?? 'unknown',
    requestId: event.requestContext?.requestId ?? 'local',
  };
  const oversized = tooLarge(Buffer.byteLength(query), Buffer.byteLength(body));
  // Too large to take: only what its refusal needs (the command and the format), nothing decoded but them.
  if (oversized) return { ...context, pairs: [], params: peek(`${query}&${body}`, ['command', 'response']), tooLarge: oversized };
  const pairs: [string, string][] = [...new URLSearchParams(query), ...new URLSearchParams(body)];
  if (pairs.length > REQUEST_LIMITS.parameters) {
    const tooMany = new InvalidParameter(`Too many parameters: ${pairs.length}, at most ${REQUEST_LIMITS.parameters}`, 9999);
    return { ...context, pairs: [], params: peek(`${query}&${body}`, ['command', 'response']), tooLarge: tooMany };
  }
  // No prototypes: a parameter named __proto__ or constructor is just a name.
  const params: Record<string, ParamValue> = Object.create(null);
  const maps = new Map<string, Map<number, Record<string, string>>>();
  let malformed: MalformedParameter | undefined;
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    // As upstream's ParamUnpackWorker: a name with `[` after its first character is a map entry.
    if (lower.indexOf('[') <= 0) {
      params[lower] = value;
      continue;
    }
    const entry = mapEntry(lower);
    if (!entry) {
      malformed ??= undecodable(name);
      continue;
    }
    let map = maps.get(entry.base);
    if (!map) maps.set(entry.base, (map = new Map()));
    let fields = map.get(entry.index);
    if (!fields) map.set(entry.index, (fields = Object.create(null) as Record<string, string>));
    fields[entry.field] = value;
  }
  for (const [base, entries] of maps) params[base] = [...entries].sort(([a], [b]) => a - b).map(([, fields]) => fields);
  return { ...context, pairs, params, malformed };
}

/**
 * The last value of each of `names` (matched in any case) in form-encoded `text`, decoding nothing
 * else: one pass over the text, looking at no more of a pair's start than the longest name.
 */
function peek(text: string, names: string[]): Record<string, string> {
  const found: Record<string, string> = Object.create(null);
  const longest = Math.max(...names.map((name) => name.length));
  for (let start = 0; start <= text.length; ) {
    let end = text.indexOf('&', start);
    if (end < 0) end = text.length;
    const equals = text.slice(start, Math.min(end, start + longest + 1)).indexOf('=');
    const name = equals > 0 ? text.slice(start, start + equals).toLowerCase() : '';
    if (names.includes(name)) {
      try {
        found[name] = decodeURIComponent(text.slice(start + equals + 1, end).replace(/\+/g, ' '));
      } catch {
        // Undecodable: as good as absent.
      }
    }
    start = end + 1;
  }
  return found;
}

/**
 * `base[index].field` as upstream's ParamUnpackWorker reads it: one `[`, one `]` after it, the first
 * `.` after the `]`, and an index that is a Java int. Anything else is undefined (upstream's 430).
 */
function mapEntry(name: string): { base: string; index: number; field: string } | undefined {
  const open = name.indexOf('[');
  const close = name.indexOf(']');
  if (open !== name.lastIndexOf('[') || close < open || close !== name.lastIndexOf(']')) return undefined;
  const dot = name.indexOf('.');
  if (dot < close) return undefined;
  const text = name.slice(open + 1, close);
  if (!INDEX.test(text)) return undefined;
  const index = Number(text);
  if (index < INT_MIN || index > INT_MAX) return undefined;
  return { base: name.slice(0, open), index, field: name.slice(dot + 1) };
}

/** Upstream's ParamUnpackWorker text (ApiErrorCode.MALFORMED_PARAMETER_ERROR). */
const undecodable = (name: string) =>
  new MalformedParameter(`Unable to decode parameter ${name}; if specifying an object array, please use parameter[index].field=XXX, e.g. userGroupList[0].group=httpGroup`);

/** A query string over REQUEST_LIMITS (of `size`, as known). */
export const queryTooLarge = (size: string) =>
  new InvalidParameter(`The query string is too large: ${size}, at most ${REQUEST_LIMITS.queryStringBytes} bytes; send long parameters by POST`, 9999);

function tooLarge(queryBytes: number, bodyBytes: number): InvalidParameter | undefined {
  if (queryBytes > REQUEST_LIMITS.queryStringBytes) return queryTooLarge(`${queryBytes} bytes`);
  if (bodyBytes > REQUEST_LIMITS.bodyBytes) return new InvalidParameter(`The request body is too large: ${bodyBytes} bytes, at most ${REQUEST_LIMITS.bodyBytes} bytes`, 9999);
  return undefined;
}

/** A string parameter, or undefined (maps are not strings). */
export function stringParam(request: ApiRequest, name: string): string | undefined {
  const value = request.params[name];
  return typeof value === 'string' ? value : undefined;
}

function parseCookies(cookies: string[]): Record<string, string> {
  const result: Record<string, string> = Object.create(null);
  for (const cookie of cookies) {
    const at = cookie.indexOf('=');
    if (at > 0) result[cookie.slice(0, at).trim()] = decodeCookieValue(cookie.slice(at + 1).trim());
  }
  return result;
}

/** A browser may hold other sites' cookies for this host with any bytes in them: never throw. */
function decodeCookieValue(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function isFormEncoded(headers: APIGatewayProxyEventV2['headers']): boolean {
  const type = headers?.['content-type'] ?? headers?.['Content-Type'] ?? '';
  return type.toLowerCase().startsWith('application/x-www-form-urlencoded');
}
