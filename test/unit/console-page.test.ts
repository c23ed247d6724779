// The console page's URL (shared/console-page.ts: upstream's `/resource/noVNC/vnc.html?autoconnect=true&port=&token=`
// beside the agent's websocket) and the files the agent's proxy serves for it (agent/console.ts): the
// page and noVNC's modules, each module's imports among them, nothing but .html/.js/.css.
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { consolePageFiles, CONSOLE_PAGE_PREFIX } from '../../agent/console.ts';
import { consolePageUrl } from '../../shared/console-page.ts';

describe('consolePageUrl', () => {
  const token = 'mc1.eyJ2bSI6IngifQ.c2ln';
  it.each([
    ['ws://127.0.0.1:6080/websockify', undefined, `http://127.0.0.1:6080/resource/noVNC/vnc.html?autoconnect=true&port=6080&token=${token}`],
    ['wss://console.example.com/websockify', undefined, `https://console.example.com/resource/noVNC/vnc.html?autoconnect=true&port=443&token=${token}`],
    ['ws://10.0.0.5/websockify', 'x-1', `http://10.0.0.5/resource/noVNC/vnc.html?autoconnect=true&port=80&token=${token}&extra=x-1`],
    ['ws://[fd00::5]:6080/websockify', undefined, `http://[fd00::5]:6080/resource/noVNC/vnc.html?autoconnect=true&port=6080&token=${token}`],
    // Behind a reverse proxy: the page sits beside the websocket, which it is told the path of.
    ['wss://gw.example.com/site-a/websockify', undefined, `https://gw.example.com/site-a/resource/noVNC/vnc.html?autoconnect=true&port=443&path=site-a%2Fwebsockify&token=${token}`],
    ['wss://gw.example.com:8443/a1', undefined, `https://gw.example.com:8443/resource/noVNC/vnc.html?autoconnect=true&port=8443&path=a1&token=${token}`],
  ])('%s (extra %s)', (websocket, extra, page) => {
    expect(consolePageUrl(websocket, token, extra)).toBe(page);
  });
});

describe('the files the console proxy serves', () => {
  const files = consolePageFiles();

  it('are the page, its script and style, and noVNC\'s core/ and vendor/ modules only', () => {
    expect(CONSOLE_PAGE_PREFIX).toBe('/resource/noVNC/');
    for (const name of ['vnc.html', 'console.js', 'console.css', 'core/rfb.js', 'core/websock.js', 'vendor/pako/lib/zlib/inflate.js']) expect(files.has(name), name).toBe(true);
    for (const name of files.keys()) {
      expect(name).toMatch(/^(vnc\.html|console\.(js|css)|(core|vendor)\/[\w./-]+\.js)$/);
      expect(name.split('/')).not.toContain('..');
    }
  });

  it('hold every module the page imports, and every module those import', () => {
    const missing: string[] = [];
    for (const [name, file] of files) {
      if (!name.endsWith('.js')) continue;
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
        const target = posix.normalize(posix.join(posix.dirname(name), spec!));
        if (!files.has(target)) missing.push(`${name} → ${spec}`);
      }
    }
    expect(missing).toEqual([]);
    // The page loads its script and style by relative name.
    const page = readFileSync(files.get('vnc.html')!, 'utf8');
    expect(page).toContain('src="console.js"');
    expect(page).toContain('href="console.css"');
  });
});
