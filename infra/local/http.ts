// API Gateway stand-in: turns HTTP requests into HTTP API (payload format 2.0) events for the same
// Lambda handlers the CDK stack routes to, and their results back into HTTP responses.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { queryTooLarge } from '../../functions/api/request.ts';
import { renderError, responseFormat } from '../../shared/cloudstack/render.ts';
import type { FunctionName } from '../functions.ts';
import { LOCAL_ACCOUNT } from './aws-local.ts';
import { invokeLocal } from './lambda.ts';
import { BodyTooLarge, readBody } from './stepfunctions/server.ts';
import { serveUi } from './ui.ts';

/**
 * How large a request the stand-in takes. Far more than API Gateway's 10,240 bytes of request line and
 * headers, so that the API answers a long query string itself (its 431, in the format asked for); the
 * body as API Gateway's 10 MB payload.
 */
export const MAX_HEADER_BYTES = 1024 * 1024;
const API_GATEWAY_REQUEST_LINE_BYTES = 10_240;
const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** The routes of the HTTP API, as in infra/constructs: path pattern → function. */
const ROUTES: { pattern: RegExp; routeKey: string; target: FunctionName }[] = [
  { pattern: /^\/client\/api\/?$/, routeKey: 'ANY /client/api', target: 'api' },
  { pattern: /^\/agent\/v1\/.+$/, routeKey: 'POST /agent/v1/{proxy+}', target: 'agent-gateway' },
  { pattern: /^\/health$/, routeKey: 'GET /health', target: 'agent-gateway' },
];

const TEXT_TYPES = /^(text\/|application\/(json|xml|x-www-form-urlencoded))/;
/** API Gateway's integration time-out, which the stack's functions are sized to (infra/constructs/functions.ts). */
export const INTEGRATION_TIMEOUT_MS = Number(process.env.MOLD_API_TIMEOUT_SECONDS ?? 29) * 1000;

/** What API Gateway answers when its integration is unavailable: the local runtime says it while starting. */
export function notReadyListener(_request: IncomingMessage, response: ServerResponse) {
  response.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
  response.end(JSON.stringify({ message: 'Service Unavailable' }));
}

/** `uiDir`: a CloudStack UI build to serve at /client/ (MOLD_UI_DIR), as a bucket behind the API's domain would. */
export function apiGatewayListener(uiDir?: string) {
  return async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const route = ROUTES.find((r) => r.pattern.test(url.pathname));
    if (!route && uiDir && serveUi(uiDir, request, response, url.pathname)) return;
    if (!route) {
      response.writeHead(404, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ message: 'Not Found' }));
      return;
    }
    try {
      const event = await toEvent(request, url, route.routeKey);
      const result = await withTimeout(invokeLocal(route.target, event, INTEGRATION_TIMEOUT_MS) as Promise<APIGatewayProxyStructuredResultV2>);
      if (!result) {
        // The handler runs on, as a Lambda would until its own time-out; the client is answered now.
        process.stderr.write(`${JSON.stringify({ level: 'error', message: 'integration timed out', path: url.pathname, command: url.searchParams.get('command') })}\n`);
        response.writeHead(504, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ message: 'Endpoint request timed out' }));
        return;
      }
      const headers: Record<string, string | string[]> = { ...(result.headers as Record<string, string>) };
      if (result.cookies?.length) headers['set-cookie'] = result.cookies;
      response.writeHead(result.statusCode ?? 200, headers);
      response.end(result.isBase64Encoded ? Buffer.from(result.body ?? '', 'base64') : (result.body ?? ''));
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        // API Gateway's own answer to a payload over its quota.
        response.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
        response.end(JSON.stringify({ message: 'Request Entity Too Large' }));
        return;
      }
      // API Gateway's own answer when the integration fails; the details stay in the log.
      process.stderr.write(`${JSON.stringify({ level: 'error', message: 'integration failed', error: String(error) })}\n`);
      response.writeHead(500, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ message: 'Internal Server Error' }));
    }
  };
}

/** The handler's result, or undefined when it takes longer than API Gateway would wait. */
async function withTimeout<T>(work: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), INTEGRATION_TIMEOUT_MS)));
  try {
    return await Promise.race([work, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

async function toEvent(request: IncomingMessage, url: URL, routeKey: string): Promise<APIGatewayProxyEventV2> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined && name !== 'cookie') headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  // API Gateway hands a Lambda no request line over its 10,240 bytes: past that, only the raw query
  // string goes on (the API refuses what is over its own limit from it, without decoding it all).
  const queryStringParameters: Record<string, string> = {};
  if (url.search.length <= API_GATEWAY_REQUEST_LINE_BYTES) {
    for (const [name, value] of url.searchParams) {
      queryStringParameters[name] = name in queryStringParameters ? `${queryStringParameters[name]},${value}` : value;
    }
  }
  const raw = await readBody(request, MAX_BODY_BYTES);
  const isText = TEXT_TYPES.test(headers['content-type'] ?? 'text/plain');
  const now = new Date();
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    cookies: request.headers.cookie?.split(/;\s*/).filter(Boolean),
    headers,
    queryStringParameters: url.search ? queryStringParameters : undefined,
    body: raw.length > 0 ? raw.toString(isText ? 'utf8' : 'base64') : undefined,
    isBase64Encoded: raw.length > 0 && !isText,
    requestContext: {
      accountId: LOCAL_ACCOUNT,
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method: request.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
  };
}

/**
 * A request whose line and headers are over MAX_HEADER_BYTES never reaches a route: Node's HTTP server
 * would answer an empty 431. This answers the CloudStack envelope instead (JSON when the request line
 * asks for it), as the API does for a query string over its own limit.
 */
export function apiGatewayClientError(error: Error & { code?: string; rawPacket?: Buffer }, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  if (error.code !== 'HPE_HEADER_OVERFLOW') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const requestLine = (error.rawPacket ?? Buffer.alloc(0)).subarray(0, 4096).toString('latin1').split('\r\n')[0] ?? '';
  const format = responseFormat(/[?&]response=json(?:[&\s]|$)/i.test(requestLine) ? 'json' : undefined);
  const { statusCode, headers, body } = renderError(undefined, queryTooLarge(`more than ${MAX_HEADER_BYTES} bytes with the headers`), format);
  const head = [`HTTP/1.1 ${statusCode} Request Header Fields Too Large`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), `content-length: ${Buffer.byteLength(body)}`, 'connection: close'];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}
