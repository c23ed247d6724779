// The console proxy against a real guest (lab 8, one host): startVm (agent/vm.ts) starts a domain whose
// VNC listens on the host's address; the proxy (agent/console.ts), bound to this machine's address on
// the lab bridge only, takes a websocket with a token signed by a CA and hands back the guest VNC's RFB
// greeting; an expired, tampered, wrong-signer or reused token gets 401. The guest has no OS (SeaBIOS
// waits): QEMU's VNC server answers all the same. Needs root; skipped otherwise.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ConsoleProxy } from '../../agent/console.ts';
import { KnownHosts, SshPool } from '../../agent/ssh.ts';
import { expungeVm, forgetHostProfiles, startVm } from '../../agent/vm.ts';
import { createCa, type CaMaterial } from '../../shared/crypto/ca.ts';
import { consoleTicketFor, signConsoleToken } from '../../shared/crypto/console-token.ts';
import { labAt, type Lab } from './lab.ts';
import { patience } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const suite = isRoot ? describe : describe.skip;
const lab = labAt(8);
const AGENT = 'agent-console-test';

suite('console proxy to a guest on a lab host', () => {
  let l: Lab;
  let pool: SshPool;
  let ca: CaMaterial;
  let otherCa: CaMaterial;
  let proxy: ConsoleProxy;
  let url: string;
  let vm: { name: string; uuid: string; disk: string; iso: string };
  let vncPort: number;
  const host = () => ({ hostId: 'host-1', address: l.hosts[0]!.address, port: 22, username: 'root' });

  beforeAll(async () => {
    ca = createCa();
    otherCa = createCa();
    l = await lab.up(1);
    pool = new SshPool(readFileSync(l.privateKeyFile, 'utf8'), new KnownHosts());
    forgetHostProfiles();
    const template = join(l.primaryDir, 'template.qcow2');
    const made = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', template, '64M']);
    if (made.status !== 0) throw new Error(`qemu-img: ${made.stderr}`);
    const uuid = randomUUID();
    const number = Math.floor(Math.random() * 100_000);
    vm = { name: `i-8-${number}-VM`, uuid, disk: join(l.primaryDir, `${randomUUID()}.qcow2`), iso: join(l.primaryDir, `${uuid}-config.iso`) };
    const started = await startVm(pool, {
      host: host(),
      vm: {
        name: vm.name,
        uuid,
        hostname: `vm-${number}`,
        vcpus: 1,
        cpuMhz: 500,
        memoryMiB: 64,
        disks: [{ path: vm.disk, backingFile: template, deviceId: 0 }],
        configDrive: { path: vm.iso, instanceId: uuid, publicKeys: {} },
        // No NIC: the console needs none, and the test needs no bridge.
        nics: [],
        vncListen: l.hosts[0]!.address,
      },
    });
    expect(started.state).toBe('Running');
    expect(started.vncPort).toBeGreaterThanOrEqual(5900);
    vncPort = started.vncPort!;

    proxy = new ConsoleProxy({
      caCertificatePem: ca.certificate,
      agentId: AGENT,
      // This machine's address on the lab bridge: the network side the console serves in this test.
      listen: { host: l.gateway, port: 0 },
      servesHost: (address) => address === l.hosts[0]!.address,
    });
    await proxy.start();
    url = proxy.url;
  }, patience(180_000));

  afterAll(async () => {
    await proxy?.stop();
    if (vm && pool) await expungeVm(pool, { host: host(), name: vm.name, files: [vm.disk, vm.iso] }).catch(() => {});
    await pool?.closeAll();
    await lab.down();
  }, patience(120_000));

  const token = (over: { vncPort?: number; hostAddress?: string; agentId?: string } = {}, now = Date.now(), key = ca.privateKey) =>
    signConsoleToken(key, consoleTicketFor({ vmId: vm.uuid, agentId: AGENT, hostAddress: l.hosts[0]!.address, vncPort, ...over }, 60, now));

  function open(t: string) {
    const ws = new WebSocket(`${url}?token=${encodeURIComponent(t)}`, ['binary']);
    return new Promise<{ ws: WebSocket; first?: Buffer; status?: number; body?: string }>((resolve) => {
      ws.once('message', (data) => resolve({ ws, first: data as Buffer }));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ ws, status: res.statusCode, body }));
      });
      ws.once('error', (err) => resolve({ ws, body: String(err) }));
    });
  }

  it('listens on the configured address only', async () => {
    expect(url).toMatch(new RegExp(`^ws://${l.gateway.replace(/\./g, '\\.')}:\\d+/websockify$`));
    const port = Number(new URL(url).port);
    const refused = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve('connected');
      });
      s.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('a valid token receives the guest VNC\'s RFB handshake, and the RFB exchange goes on through it', async () => {
    const { ws, first, status, body } = await open(token());
    expect(status, body).toBeUndefined();
    expect(ws.protocol).toBe('binary');
    expect(first?.toString()).toBe('RFB 003.008\n');
    // The client's version, then QEMU offers its security types (count ≥ 1, then the types; 1 = None).
    const next = new Promise<Buffer>((r) => ws.once('message', (d) => r(d as Buffer)));
    ws.send(Buffer.from('RFB 003.008\n'));
    const security = await next;
    expect(security[0]).toBeGreaterThanOrEqual(1);
    expect([...security.subarray(1, 1 + security[0]!)]).toContain(1);
    ws.close();
  });

  it('is refused with 401 for an expired, tampered, wrong-signer, reused or foreign-host token', async () => {
    const once = token();
    const used = await open(once);
    expect(used.first?.toString()).toBe('RFB 003.008\n');
    used.ws.close();
    const good = token();
    const [prefix, payload, signature] = good.split('.');
    const ticket = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const tampered = `${prefix}.${Buffer.from(JSON.stringify({ ...ticket, port: 22 })).toString('base64url')}.${signature}`;
    const cases: Array<[string, string, RegExp]> = [
      ['expired', token({}, Date.now() - 120_000), /expired/],
      ['tampered', tampered, /signature/],
      ['wrong signer', token({}, Date.now(), otherCa.privateKey), /signature/],
      ['reused', once, /used already/],
      ['not this agent\'s host', token({ hostAddress: l.gateway, vncPort: 22 }), /not one of this agent's hosts/],
      ['garbage', 'wrong', /not a console token/],
    ];
    for (const [what, t, reason] of cases) {
      const r = await open(t);
      expect(r.status, what).toBe(401);
      expect(JSON.parse(r.body!).error, what).toMatch(reason);
    }
    expect(proxy.sessionCount).toBe(0);
  });
});
