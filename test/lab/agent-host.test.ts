// The agent's host side against real sshd and libvirtd (lab 1, two hosts): addHost by password and by
// key, the failures an operator must be able to tell apart, host-key pinning, the periodic report, and
// downloadTemplate from a loopback HTTP server with right and wrong checksums. Needs root; skipped
// otherwise.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, type CommandContext } from '../../agent/commands.ts';
import { makeIdentity } from '../../agent/enrol.ts';
import { removeKey } from '../../agent/host.ts';
import type { Outcome } from '../../agent/journal.ts';
import { Reporter } from '../../agent/reporter.ts';
import { CONNECT_TIMEOUT_MS, hostTarget, KnownHosts, SshPool } from '../../agent/ssh.ts';
import { keyComment, withComment } from '../../agent/state.ts';
import type { Gateway } from '../../agent/gateway.ts';
import { sealToAgent } from '../../shared/agent/sealing.ts';
import { alive, labAt, type Lab } from './lab.ts';
import { patience, settles, waitFor } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const suite = isRoot ? describe : describe.skip;
const lab = labAt(1);
const AGENT_ID = 'agent-host-test';
const UNREACHABLE = lab.names.address(99);
/** `text` matched literally inside a RegExp. */
const re = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A self-signed certificate for the agent's key: what the control plane seals passwords to. */
function certificateFor(privateKeyPem: string): string {
  const key = forge.pki.privateKeyFromPem(privateKeyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 3600_000);
  cert.setSubject([{ name: 'commonName', value: AGENT_ID }]);
  cert.setIssuer([{ name: 'commonName', value: AGENT_ID }]);
  cert.sign(key, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

function failureOf(outcome: Outcome) {
  if (outcome.ok) throw new Error(`expected a failure, got ${JSON.stringify(outcome.result)}`);
  return outcome.failure;
}
function resultOf<T>(outcome: Outcome): T {
  if (!outcome.ok) throw new Error(`${outcome.failure.error}: ${outcome.failure.cause}`);
  return outcome.result as T;
}

suite('agent on lab hosts', () => {
  let l: Lab;
  let dir: string;
  let identity: ReturnType<typeof makeIdentity>;
  let certificate: string;
  let pool: SshPool;
  let knownHosts: KnownHosts;
  let ctx: CommandContext;
  let server: Server;
  let baseUrl: string;
  let image: Buffer;
  const away = { hostId: 'host-9', address: UNREACHABLE, port: 22, username: 'root' };
  const host = (i: number) => ({ hostId: `host-${i}`, address: l.hosts[i - 1]!.address, port: 22, username: 'root' });

  beforeAll(async () => {
    l = await lab.up(2);
    dir = mkdtempSync(join(tmpdir(), 'mold-agent-lab-'));
    identity = makeIdentity(AGENT_ID);
    certificate = certificateFor(identity.privateKeyPem);
    knownHosts = await KnownHosts.open(join(dir, 'known-hosts.json'));
    pool = new SshPool(identity.sshPrivateKey, knownHosts);
    ctx = {
      agentId: AGENT_ID,
      privateKeyPem: identity.privateKeyPem,
      sshPublicKey: withComment(identity.sshPublicKey, keyComment(AGENT_ID)),
      pool,
      knownHosts,
    };

    const qcow2 = join(dir, 'tiny.qcow2');
    const made = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, '64M']);
    if (made.status !== 0) throw new Error(`qemu-img: ${made.stderr}`);
    image = readFileSync(qcow2);
    server = createServer((req, res) => {
      if (req.url === '/tiny.qcow2') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': image.length });
        res.end(image);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }, patience(120_000));

  afterAll(async () => {
    await pool?.closeAll();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    await lab.down();
  }, patience(120_000));

  it('adds a host by password: facts, the agent key installed, then key-only from then on', async () => {
    const facts = resultOf<Record<string, unknown>>(await runCommand(ctx, 'addHost', { host: host(1), password: sealToAgent(certificate, l.password) }));
    expect(facts).toMatchObject({
      hostname: l.hosts[0]!.name,
      hostUuid: l.hosts[0]!.hostUuid,
      cpuSockets: expect.any(Number),
      arch: 'x86_64',
      libvirtVersion: expect.stringMatching(/^\d+\.\d+/),
      qemuVersion: expect.stringMatching(/^\d+\.\d+/),
      hostKeyFingerprint: expect.stringMatching(/^SHA256:[A-Za-z0-9+/]{43}$/),
    });
    expect(facts.cpus).toBe(Number(spawnSync('nproc').stdout.toString().trim()));
    expect(facts.memoryBytes).toBe(totalmem());
    expect(facts.cpuMhz).toBeGreaterThan(0);
    expect(['kvm', 'qemu']).toContain(facts.domainType);

    const keys = (await lab.hostExec(1, ['cat', '/root/.ssh/authorized_keys'])).stdout;
    expect(keys.split('\n').filter((k) => k.endsWith(` ${keyComment(AGENT_ID)}`))).toEqual([ctx.sshPublicKey]);
    expect(keys).toContain('moldlab'); // the lab's own key is untouched

    // Again (addHost is idempotent): still exactly one line for this agent.
    resultOf(await runCommand(ctx, 'addHost', { host: host(1), password: sealToAgent(certificate, l.password) }));
    const again = (await lab.hostExec(1, ['cat', '/root/.ssh/authorized_keys'])).stdout;
    expect(again.split('\n').filter((k) => k.includes(keyComment(AGENT_ID)))).toHaveLength(1);

    // The pin was learnt and persisted.
    expect(JSON.parse(readFileSync(join(dir, 'known-hosts.json'), 'utf8'))[`${host(1).address}:22`]).toBe(facts.hostKeyFingerprint);
    expect(statSync(join(dir, 'known-hosts.json')).mode & 0o777).toBe(0o600);
  });

  it('reconnects with the key alone and runs commands on one pooled connection', async () => {
    const fresh = new SshPool(identity.sshPrivateKey, knownHosts);
    try {
      const facts = resultOf<{ hostUuid: string }>(await runCommand({ ...ctx, pool: fresh }, 'reconnectHost', { host: host(1) }));
      expect(facts.hostUuid).toBe(l.hosts[0]!.hostUuid);
      // How fast a pooled command is, bench/agent-roundtrip.ts measures; here: one connection for all.
      for (let i = 0; i < 20; i++) resultOf(await runCommand({ ...ctx, pool: fresh }, 'pingHost', { host: host(1) }));
      expect(fresh.size).toBe(1);
    } finally {
      await fresh.closeAll();
    }
  });

  it('refuses a host whose key changed since it was pinned', async () => {
    const pins = new KnownHosts(undefined, { [`${host(1).address}:22`]: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
    const strict = new SshPool(identity.sshPrivateKey, pins);
    try {
      const f = failureOf(await runCommand({ ...ctx, pool: strict, knownHosts: pins }, 'pingHost', { host: host(1) }));
      expect(f.error).toBe('HostKeyMismatch');
      expect(f.cause).toMatch(new RegExp(`^The SSH host key of ${re(lab.names.hostAddress(1))}:22 has changed \\(pinned SHA256:A+, offered SHA256:`));
    } finally {
      await strict.closeAll();
    }
  });

  it('fails a key-only addHost where the key is not installed, naming the host', async () => {
    const f = failureOf(await runCommand(ctx, 'addHost', { host: host(2) }));
    expect(f.error).toBe('AuthenticationFailed');
    expect(f.cause).toMatch(new RegExp(`^Authentication failed for root@${re(lab.names.hostAddress(2))}: the agent's SSH key is not authorized there`));
  });

  it('fails a wrong password with AuthenticationFailed', async () => {
    const f = failureOf(await runCommand(ctx, 'addHost', { host: host(2), password: sealToAgent(certificate, 'not-the-password') }));
    expect(f).toEqual({ error: 'AuthenticationFailed', cause: `Authentication failed for root@${lab.names.hostAddress(2)}: wrong username or password` });
    const keys = (await lab.hostExec(2, ['cat', '/root/.ssh/authorized_keys'])).stdout;
    expect(keys).not.toContain(keyComment(AGENT_ID));
  });

  it('fails an unreachable address with HostUnreachable', async () => {
    // It fails on the agent's connect time-out at the latest, never waiting without end.
    const attempt = runCommand(ctx, 'addHost', { host: away, password: sealToAgent(certificate, l.password) });
    const f = failureOf(await settles('addHost of an unreachable address', attempt, CONNECT_TIMEOUT_MS + 5_000));
    expect(f.error).toBe('HostUnreachable');
    expect(f.cause).toMatch(new RegExp(`^Cannot reach ${re(UNREACHABLE)}:22: (no route to host|connection timed out|no SSH handshake within 10 s)$`));
  });

  it('fails a password sealed to another key', async () => {
    const other = makeIdentity('other');
    const f = failureOf(await runCommand(ctx, 'addHost', { host: host(2), password: sealToAgent(certificateFor(other.privateKeyPem), l.password) }));
    expect(f.error).toBe('SecretUnreadable');
    expect(f.cause).toContain(`root@${lab.names.hostAddress(2)}`);
  });

  it('re-keys a host with updateHostPassword', async () => {
    const r = resultOf(await runCommand(ctx, 'updateHostPassword', { host: host(2), password: sealToAgent(certificate, l.password) }));
    expect(r).toEqual({ rekeyed: true });
    const keys = (await lab.hostExec(2, ['cat', '/root/.ssh/authorized_keys'])).stdout;
    expect(keys.split('\n').filter((k) => k.includes(keyComment(AGENT_ID)))).toEqual([ctx.sshPublicKey]);
    resultOf(await runCommand(ctx, 'pingHost', { host: host(2) }));
  });

  it('reports reachability, memory, load and domains; an unreachable host with the reason', async () => {
    const gw = {} as Gateway;
    const reporter = new Reporter(gw, pool, AGENT_ID, 'test');
    const up = await reporter.checkHost(host(1), 10_000);
    expect(up).toMatchObject({ hostId: 'host-1', reachable: true, libvirtd: true, memoryTotalBytes: totalmem(), domains: [] });
    expect(up.memoryFreeBytes).toBeGreaterThan(0);
    expect(up.loadAverage).toBeGreaterThanOrEqual(0);
    const down = await reporter.checkHost(away, 10_000);
    expect(down).toMatchObject({ hostId: 'host-9', reachable: false, domains: [] });
    expect(down.error).toMatch(new RegExp(`^Cannot reach ${re(UNREACHABLE)}:22`));
  });

  it('reports on a host whose command channels are all busy, without waiting for them', async () => {
    const conn = await pool.get(hostTarget(host(1)));
    // Eight commands that run until their stdin ends fill the commands' channels; a ninth waits.
    const busy = await Promise.all(Array.from({ length: 8 }, () => conn.execWritable('cat >/dev/null')));
    let ninthDone = false;
    const ninth = conn.exec('true').then(() => (ninthDone = true));
    try {
      const reporter = new Reporter({} as Gateway, pool, AGENT_ID, 'test');
      expect(await reporter.checkHost(host(1), 10_000)).toMatchObject({ hostId: 'host-1', reachable: true, libvirtd: true });
      expect(ninthDone).toBe(false);
    } finally {
      for (const b of busy) b.stdin.end();
      await Promise.all(busy.map((b) => b.done));
    }
    await ninth;
  });

  it('downloads a template into primary storage, verifying its checksum', async () => {
    const sha256 = createHash('sha256').update(image).digest('hex');
    const md5 = createHash('md5').update(image).digest('hex');
    const destination = join(l.primaryDir, 'tmpl-1.qcow2');
    const r = resultOf(await runCommand(ctx, 'downloadTemplate', { host: host(1), templateId: 'tmpl-1', url: `${baseUrl}/tiny.qcow2`, checksum: `{SHA-256}${sha256}`, destination }));
    expect(r).toEqual({ path: destination, size: image.length, checksum: `{SHA-256}${sha256}` });
    expect(readFileSync(destination).equals(image)).toBe(true);
    expect(existsSync(`${destination}.part`)).toBe(false);
    const info = spawnSync('qemu-img', ['info', '--output=json', destination]);
    expect(JSON.parse(info.stdout.toString()).format).toBe('qcow2');

    // Bare hex is MD5; no checksum reports SHA-256.
    const d2 = join(l.primaryDir, 'sub', 'tmpl-2.qcow2');
    expect(resultOf(await runCommand(ctx, 'downloadTemplate', { host: host(1), templateId: 'tmpl-2', url: `${baseUrl}/tiny.qcow2`, checksum: md5, destination: d2 }))).toEqual({ path: d2, size: image.length, checksum: `{MD5}${md5}` });
    const d3 = join(l.primaryDir, 'tmpl-3.qcow2');
    expect(resultOf(await runCommand(ctx, 'downloadTemplate', { host: host(1), templateId: 'tmpl-3', url: `${baseUrl}/tiny.qcow2`, destination: d3 }))).toMatchObject({ checksum: `{SHA-256}${sha256}` });
  });

  it('discards a download whose checksum does not match', async () => {
    const destination = join(l.primaryDir, 'tmpl-bad.qcow2');
    const wrong = 'f'.repeat(64);
    const f = failureOf(await runCommand(ctx, 'downloadTemplate', { host: host(1), templateId: 'tmpl-bad', url: `${baseUrl}/tiny.qcow2`, checksum: `{SHA-256}${wrong}`, destination }));
    const sha256 = createHash('sha256').update(image).digest('hex');
    expect(f).toEqual({
      error: 'ChecksumMismatch',
      cause: `The checksum of template tmpl-bad downloaded from ${baseUrl}/tiny.qcow2 does not match: expected {SHA-256}${wrong}, got {SHA-256}${sha256}; the download was discarded`,
    });
    expect(existsSync(destination)).toBe(false);
    expect(existsSync(`${destination}.part`)).toBe(false);
  });

  it('fails a download the server refuses', async () => {
    const destination = join(l.primaryDir, 'tmpl-404.qcow2');
    const f = failureOf(await runCommand(ctx, 'downloadTemplate', { host: host(1), templateId: 'tmpl-404', url: `${baseUrl}/missing.qcow2`, destination }));
    expect(f).toEqual({ error: 'DownloadFailed', cause: `Cannot download ${baseUrl}/missing.qcow2: HTTP 404 Not Found` });
    expect(existsSync(destination)).toBe(false);
  });

  it('removes its key from a host it forgets', async () => {
    await removeKey(await pool.get(host(1)), keyComment(AGENT_ID));
    pool.drop(host(1));
    const keys = (await lab.hostExec(1, ['cat', '/root/.ssh/authorized_keys'])).stdout;
    expect(keys).not.toContain(keyComment(AGENT_ID));
    expect(keys).toContain('moldlab');
    const f = failureOf(await runCommand(ctx, 'pingHost', { host: host(1) }));
    expect(f.error).toBe('AuthenticationFailed');
  });

  it('fails NoLibvirt on a host whose libvirtd is down; the report says so', async () => {
    // Killed by its pid: the lab's hosts share this machine's PID namespace.
    const pid = Number(readFileSync(join(l.dir, 'h2', 'libvirtd.pid'), 'utf8').trim());
    process.kill(pid, 'SIGTERM');
    await waitFor('libvirtd to exit', () => !alive(pid));
    const f = failureOf(await runCommand(ctx, 'addHost', { host: host(2), password: sealToAgent(certificate, l.password) }));
    expect(f.error).toBe('NoLibvirt');
    expect(f.cause).toMatch(new RegExp(`^No usable libvirt on root@${re(lab.names.hostAddress(2))}: libvirt is not running \\(libvirtd does not answer: `));
    const r = await new Reporter({} as Gateway, pool, AGENT_ID, 'test').checkHost(host(2), 10_000);
    expect(r).toMatchObject({ reachable: true, libvirtd: false, domains: [] });
    expect(r.error).toMatch(/^libvirt is not running/);
  });
});
