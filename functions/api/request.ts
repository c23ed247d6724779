// Turns an API Gateway HTTP API (v2) event into CloudStack parameters: query string and
// form-encoded body together, names lower-cased because CloudStack treats them case-insensitively.
import type { APIGatewayProxyEventV2 } from 'aws-lambda';

export type Parameters = Record<string, string>;

export function requestParameters(event: APIGatewayProxyEventV2): Parameters {
  const params: Parameters = {};
  const add = (search: URLSearchParams) => {
    for (const [name, value] of search) {
      const key = name.toLowerCase();
      // The first occurrence wins, as with upstream's servlet parameter map.
      if (!(key in params)) params[key] = value;
    }
  };
  add(new URLSearchParams(event.rawQueryString ?? ''));
  if (event.body && isFormEncoded(event.headers)) {
    add(new URLSearchParams(event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body));
  }
  return params;
}

function isFormEncoded(headers: APIGatewayProxyEventV2['headers']): boolean {
  const type = headers?.['content-type'] ?? headers?.['Content-Type'] ?? '';
  return type.toLowerCase().startsWith('application/x-www-form-urlencoded');
}
