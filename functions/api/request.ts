// Turns an API Gateway HTTP API (v2) event into a CloudStack request: the parameters of the query
// string and of a form-encoded body, as sent (for the signature) and by lower-cased name (CloudStack
// clients spell names in any case), with `name[i].key=…` maps grouped into lists of objects.
import type { APIGatewayProxyEventV2 } from 'aws-lambda';

export type ParamValue = string | Record<string, string>[];

export interface ApiRequest {
  /** Every name=value pair, decoded, in the order sent. */
  pairs: [string, string][];
  /** By lower-cased name; a repeated name keeps its last value, as upstream (4.19+) respects. */
  params: Record<string, ParamValue>;
  cookies: Record<string, string>;
  method: string;
  sourceIp: string;
  requestId: string;
}

const MAP_ENTRY = /^([a-z0-9_]+)\[(\d+)\]\.([a-z0-9_]+)$/;

export function parseRequest(event: APIGatewayProxyEventV2): ApiRequest {
  const pairs: [string, string][] = [...new URLSearchParams(event.rawQueryString ?? '')];
  if (event.body && isFormEncoded(event.headers)) {
    const body = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
    pairs.push(...new URLSearchParams(body));
  }
  // No prototypes: a parameter named __proto__ or constructor is just a name.
  const params: Record<string, ParamValue> = Object.create(null);
  const maps: Record<string, Record<string, string>[]> = Object.create(null);
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    const entry = MAP_ENTRY.exec(lower);
    if (entry) {
      const [, base, index, field] = entry;
      ((maps[base] ??= [])[Number(index)] ??= Object.create(null))[field] = value;
    } else {
      params[lower] = value;
    }
  }
  for (const [base, entries] of Object.entries(maps)) params[base] = entries.filter(Boolean);
  return {
    pairs,
    params,
    cookies: parseCookies(event.cookies ?? []),
    method: event.requestContext?.http?.method ?? 'GET',
    sourceIp: event.requestContext?.http?.sourceIp ?? 'unknown',
    requestId: event.requestContext?.requestId ?? 'local',
  };
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
