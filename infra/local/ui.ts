// Serves a build of the CloudStack web UI (a client, not part of Mold: MOLD_UI_DIR names its dist/)
// at /client/, beside the API at /client/api on the same origin, as upstream's management server
// serves it. Only files inside the folder are served; anything else is 404.
import { createReadStream, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.eot': 'application/vnd.ms-fontobject',
  '.less': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** Answers a request for a file of the UI; false when the path is not the UI's (the caller answers). */
export function serveUi(uiDir: string, request: IncomingMessage, response: ServerResponse, pathname: string): boolean {
  if (pathname === '/' || pathname === '/client') {
    response.writeHead(302, { location: '/client/' });
    response.end();
    return true;
  }
  if (!pathname.startsWith('/client/')) return false;
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  const root = resolve(uiDir);
  let relative: string;
  try {
    relative = decodeURIComponent(pathname.slice('/client/'.length)) || 'index.html';
  } catch {
    return false;
  }
  const file = resolve(join(root, normalize(relative)));
  if (file !== root && !file.startsWith(root + sep)) return false;
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) return false;
    size = stat.size;
  } catch {
    return false;
  }
  response.writeHead(200, { 'content-type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream', 'content-length': size, 'cache-control': 'no-cache' });
  if (request.method === 'HEAD') response.end();
  else createReadStream(file).pipe(response);
  return true;
}
