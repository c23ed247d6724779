// Console tokens (shared/crypto/console-token.ts) and the agent's console proxy (agent/console.ts) on
// loopback, in front of a stand-in VNC server that greets as RFB does: who gets through, who gets
// 401 and never reaches the VNC server, and that bytes flow both ways.
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ConsoleProxy, defaultConsoleUrl, parseListen, checkConsoleUrl } from '../../agent/console.ts';
import { createCa, type CaMaterial } from '../../shared/crypto/ca.ts';
import {
  consoleTicketFor,
  MAX_CONSOLE_TOKEN_SECONDS,
  signConsoleToken,
  verifyConsoleToken,
  type ConsoleTicket,
} from '../../shared/crypto/console-token.ts';

let ca: CaMaterial;
let otherCa: CaMaterial;
beforeAll(() => {
  ca = createCa();
  otherCa = createCa();
});

const target = (over: Partial<{ vmId: string; agentId: string; hostAddress: string; vncPort: number }> = {}) => ({
  vmId: randomUUID(),
  agentId: 'agent-1',
  hostAddress: '127.0.0.1',
  vncPort: 5900,
  ...over,
});

/** Replaces the payload, keeping the old signature. */
function withPayload(token: string, change: (t: ConsoleTicket) => ConsoleTicket): string {
  const [prefix, payload, signature] = token.split('.');
  const ticket = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as ConsoleTicket;
  return `${prefix}.${Buffer.from(JSON.stringify(change(ticket))).toString('base64url')}.${signature}`;
}

describe('console tokens', () => {
  it('round-trips: signed by the CA key, verified with the CA certificate', () => {
    const t = target();
    const ticket = consoleTicketFor(t, 60);
    const token = signConsoleToken(ca.privateKey, ticket);
    expect(token).toMatch(/^mc1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(token.length).toBeLessThan(1200);
    const check = verifyConsoleToken(ca.certificate, token, { expect: { vmId: t.vmId, agentId: 'agent-1' } });
    expect(check).toEqual({ ok: true, ticket });
    expect(ticket).toMatchObject({ vm: t.vmId, agent: 'agent-1', host: '127.0.0.1', port: 5900 });
    expect(ticket.exp - Math.floor(Date.now() / 1000)).toBeGreaterThanOrEqual(59);
    // Each token differs, even for the same VM at the same second.
    expect(consoleTicketFor(t, 60).nonce).not.toBe(ticket.nonce);
  });

  it('refuses an expired token, and one valid for too long', () => {
    const now = Date.now();
    const token = signConsoleToken(ca.privateKey, consoleTicketFor(target(), 60, now - 61_000));
    expect(verifyConsoleToken(ca.certificate, token, { now })).toEqual({ ok: false, reason: 'the token has expired' });
    // Exactly at its expiry it is over.
    const edge = signConsoleToken(ca.privateKey, consoleTicketFor(target(), 60, now));
    expect(verifyConsoleToken(ca.certificate, edge, { now: now + 60_000 }).ok).toBe(false);
    expect(verifyConsoleToken(ca.certificate, edge, { now: now + 58_000 }).ok).toBe(true);
    // Validity is capped when signing…
    const capped = consoleTicketFor(target(), 10 * 86_400, now);
    expect(capped.exp - Math.floor(now / 1000)).toBe(MAX_CONSOLE_TOKEN_SECONDS);
    // …and a token claiming a far expiry is refused even when signed.
    const far = signConsoleToken(ca.privateKey, { ...capped, exp: capped.exp + 86_400 });
    expect(verifyConsoleToken(ca.certificate, far, { now })).toEqual({ ok: false, reason: 'the token is valid for too long' });
  });

  it('refuses a tampered token: payload changed, signature changed, prefix changed', () => {
    const token = signConsoleToken(ca.privateKey, consoleTicketFor(target(), 60));
    const forged = [
      withPayload(token, (t) => ({ ...t, port: 5901 })),
      withPayload(token, (t) => ({ ...t, host: '10.0.0.9' })),
      withPayload(token, (t) => ({ ...t, exp: t.exp + 30 })),
      token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA'),
      `mc2${token.slice(3)}`,
      token.split('.').slice(0, 2).join('.'),
      `${token}.x`,
      '',
      'garbage',
    ];
    for (const f of forged) {
      const check = verifyConsoleToken(ca.certificate, f);
      expect(check.ok, f).toBe(false);
    }
    expect(verifyConsoleToken(ca.certificate, forged[0])).toEqual({ ok: false, reason: 'the signature is not Mold\'s CA\'s' });
    expect(verifyConsoleToken(ca.certificate, null)).toEqual({ ok: false, reason: 'no token' });
  });

  it('refuses a token for another VM or another agent', () => {
    const t = target();
    const token = signConsoleToken(ca.privateKey, consoleTicketFor(t, 60));
    expect(verifyConsoleToken(ca.certificate, token, { expect: { vmId: randomUUID() } })).toEqual({ ok: false, reason: 'the token is for another VM' });
    expect(verifyConsoleToken(ca.certificate, token, { expect: { agentId: 'agent-2' } })).toEqual({ ok: false, reason: 'the token is for another agent' });
  });

  it('refuses a token signed by another CA (wrong signer), and a well-signed malformed ticket', () => {
    const token = signConsoleToken(otherCa.privateKey, consoleTicketFor(target(), 60));
    expect(verifyConsoleToken(otherCa.certificate, token).ok).toBe(true);
    expect(verifyConsoleToken(ca.certificate, token)).toEqual({ ok: false, reason: 'the signature is not Mold\'s CA\'s' });
    expect(() => signConsoleToken(ca.privateKey, { ...consoleTicketFor(target(), 60), nonce: 'short' })).toThrow();
  });
});

describe('console proxy options', () => {
  it('listens on one address: ip:port or [ipv6]:port, never a wildcard', () => {
    expect(parseListen('10.0.0.5:6080')).toEqual({ host: '10.0.0.5', port: 6080 });
    expect(parseListen('[fd00::1]:6080')).toEqual({ host: 'fd00::1', port: 6080 });
    expect(() => parseListen('0.0.0.0:6080')).toThrow(/not the wildcard/);
    expect(() => parseListen('[::]:6080')).toThrow(/not the wildcard/);
    expect(() => parseListen('console.example:6080')).toThrow(/needs an IP address/);
    expect(() => parseListen('10.0.0.5')).toThrow(/<ip>:<port>/);
    expect(() => parseListen('10.0.0.5:70000')).toThrow(/not a port/);
    expect(defaultConsoleUrl({ host: '10.0.0.5', port: 6080 }, false)).toBe('ws://10.0.0.5:6080/websockify');
    expect(defaultConsoleUrl({ host: 'fd00::1', port: 6080 }, true)).toBe('wss://[fd00::1]:6080/websockify');
    expect(checkConsoleUrl('wss://console.example.com/agent1')).toBe('wss://console.example.com/agent1');
    expect(() => checkConsoleUrl('https://console.example.com')).toThrow(/ws:\/\/ or wss:\/\//);
    expect(() => checkConsoleUrl('ws://x/?token=1')).toThrow(/query/);
  });
});

describe('console proxy on loopback', () => {
  const RFB = 'RFB 003.008\n';
  let vnc: Server;
  let vncPort: number;
  let vncConnections = 0;
  const received: Buffer[] = [];
  let proxy: ConsoleProxy;
  let base: string;

  beforeAll(async () => {
    vnc = createServer((s: Socket) => {
      vncConnections++;
      s.write(RFB);
      s.on('data', (d) => {
        received.push(d);
        s.write(Buffer.concat([Buffer.from('echo:'), d]));
      });
      s.on('error', () => {});
    });
    await new Promise<void>((r) => vnc.listen(0, '127.0.0.1', r));
    vncPort = (vnc.address() as { port: number }).port;
    proxy = new ConsoleProxy({
      caCertificatePem: ca.certificate,
      agentId: 'agent-1',
      listen: { host: '127.0.0.1', port: 0 },
      servesHost: (address) => address === '127.0.0.1',
    });
    const bound = await proxy.start();
    base = `ws://127.0.0.1:${bound.port}/websockify`;
  });

  afterAll(async () => {
    await proxy?.stop();
    await new Promise<void>((r) => vnc.close(() => r()));
  });

  const tokenFor = (over: Parameters<typeof target>[0] = {}, validity = 60, now = Date.now()) =>
    signConsoleToken(ca.privateKey, consoleTicketFor(target({ vncPort, ...over }), validity, now));

  /** Opens a websocket; resolves with the first message, or with the HTTP status of a refusal. */
  function open(token: string | undefined, protocols: string[] = ['binary']) {
    const url = token === undefined ? base : `${base}?token=${encodeURIComponent(token)}`;
    const ws = new WebSocket(url, protocols);
    return new Promise<{ ws: WebSocket; first?: Buffer; status?: number; body?: string }>((resolve) => {
      ws.once('message', (data) => resolve({ ws, first: data as Buffer }));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ ws, status: res.statusCode, body }));
      });
      ws.once('error', () => {});
    });
  }

  it('a valid token opens a session: the RFB greeting arrives in binary frames, and bytes flow back', async () => {
    const before = vncConnections;
    const { ws, first } = await open(tokenFor());
    expect(ws.protocol).toBe('binary');
    expect(first?.toString()).toBe(RFB);
    const echoed = new Promise<Buffer>((r) => ws.once('message', (d) => r(d as Buffer)));
    ws.send(Buffer.from('RFB 003.008\n'));
    expect((await echoed).toString()).toBe('echo:RFB 003.008\n');
    expect(vncConnections).toBe(before + 1);
    expect(proxy.sessionCount).toBe(1);
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    ws.close();
    await closed;
    await new Promise((r) => setTimeout(r, 50));
    expect(proxy.sessionCount).toBe(0);
  });

  it('refuses with 401 and never reaches VNC: no token, expired, tampered, wrong signer, another agent, a host not its own, a used token', async () => {
    const used = tokenFor();
    const first = await open(used);
    expect(first.first?.toString()).toBe(RFB);
    first.ws.close();
    const before = vncConnections;
    const cases: Array<[string, string | undefined, RegExp]> = [
      ['no token', undefined, /no token/],
      ['expired', tokenFor({}, 60, Date.now() - 120_000), /expired/],
      ['tampered', withPayload(tokenFor(), (t) => ({ ...t, port: t.port + 1 })), /signature/],
      ['wrong signer', signConsoleToken(otherCa.privateKey, consoleTicketFor(target({ vncPort }), 60)), /signature/],
      ['another agent', tokenFor({ agentId: 'agent-2' }), /another agent/],
      ['a host not its own', tokenFor({ hostAddress: '127.0.0.2' }), /not one of this agent's hosts/],
      ['used already', used, /used already/],
    ];
    for (const [what, token, reason] of cases) {
      const r = await open(token);
      expect(r.status, what).toBe(401);
      expect(JSON.parse(r.body!).error, what).toMatch(reason);
    }
    expect(vncConnections).toBe(before);
  });

  it('a client offering no subprotocol still gets the session; an unreachable display gets 502', async () => {
    const { ws, first } = await open(tokenFor(), []);
    expect(ws.protocol).toBe('');
    expect(first?.toString()).toBe(RFB);
    ws.close();
    const closedPort = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
    const r = await open(tokenFor({ vncPort: closedPort }));
    expect(r.status).toBe(502);
  });

  it('a plain HTTP request is told to upgrade', async () => {
    const res = await fetch(base.replace('ws:', 'http:'));
    expect(res.status).toBe(426);
  });
});
