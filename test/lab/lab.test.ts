// The lab brings up real KVM hosts (network + mount namespaces running sshd, virtlogd, libvirtd) and
// tears them down without a trace. Needs root; skipped otherwise.
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Client } from 'ssh2';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, labAt, type Lab } from './lab.ts';
import { patience } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
// Not lab 0: that is the one a developer brings up with `npm run lab`.
const { up, down, labLinks, labMounts, labNetns, labPids, names } = labAt(5);
const LAB_DIR = names.dir;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function ssh(host: string, auth: { password: string } | { privateKey: string }, command: string, input?: string) {
  return new Promise<Result>((resolve, reject) => {
    const conn = new Client();
    conn
      .on('ready', () => {
        conn.exec(command, (err, stream) => {
          if (err) {
            conn.end();
            return reject(err);
          }
          let stdout = '';
          let stderr = '';
          stream.on('data', (d: Buffer) => (stdout += d));
          stream.stderr.on('data', (d: Buffer) => (stderr += d));
          stream.on('close', (code: number | null) => {
            conn.end();
            resolve({ code: code ?? -1, stdout, stderr });
          });
          stream.end(input ?? '');
        });
      })
      .on('error', reject)
      .connect({ host, port: 22, username: 'root', readyTimeout: 20_000, ...auth });
  });
}

async function ok(host: string, password: string, command: string, input?: string) {
  const r = await ssh(host, { password }, command, input);
  if (r.code !== 0) throw new Error(`${host}: ${command} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Live processes whose command line mentions the lab's state directory. */
function labProcesses(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      // LAB_DIR + '/': other labs (/tmp/moldlab<id>) may run beside this one, from other test files.
      if (cmdline.includes(`${LAB_DIR}/`) && alive(Number(entry))) found.push(Number(entry));
    } catch {}
  }
  return found;
}

const PROBE = `<domain type='qemu'>
  <name>moldlab-probe</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><serial type='pty'/></devices>
</domain>`;

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'the lab' : 'the lab (skipped: it needs root to create namespaces)', () => {
  let lab: Lab | undefined;
  afterAll(async () => {
    if (lab) await down();
  }, patience(120_000));

  it('brings up two KVM hosts reachable over SSH, runs a guest, and tears down without a trace', async () => {
    lab = await up(2);
    expect(lab.hosts.map((h) => h.address)).toEqual([names.hostAddress(1), names.hostAddress(2)]);
    expect((await readFile(lab.passwordFile, 'utf8')).trim()).toBe(lab.password);

    const uuids: string[] = [];
    for (const h of lab.hosts) {
      const version = await ok(h.address, lab.password, 'virsh -c qemu:///system version');
      expect(version).toMatch(/Running hypervisor: QEMU \d+/);
      const caps = await ok(h.address, lab.password, 'virsh -c qemu:///system capabilities');
      expect(caps).toContain("<domain type='qemu'/>");
      const uuid = caps.match(/<host>\s*<uuid>([0-9a-f-]+)<\/uuid>/)?.[1];
      expect(uuid).toBe(h.hostUuid);
      uuids.push(uuid!);
      expect((await ok(h.address, lab.password, 'hostname')).trim()).toBe(h.name);
    }
    expect(new Set(uuids).size).toBe(2);

    // Key login works too (the agent switches to key-only after addHost).
    const key = await readFile(lab.privateKeyFile, 'utf8');
    expect((await ssh(lab.hosts[1]!.address, { privateKey: key }, 'hostname')).stdout.trim()).toBe(`${names.netnsPrefix}2`);

    // A tiny guest under software emulation on host 1.
    const h1 = lab.hosts[0]!.address;
    await ok(h1, lab.password, 'virsh -c qemu:///system define /dev/stdin', PROBE);
    await ok(h1, lab.password, 'virsh -c qemu:///system start moldlab-probe');
    expect((await ok(h1, lab.password, 'virsh -c qemu:///system domstate moldlab-probe')).trim()).toBe('running');
    expect(await ok(h1, lab.password, 'virsh -c qemu:///system list --name')).toContain('moldlab-probe');
    await ok(h1, lab.password, 'virsh -c qemu:///system destroy moldlab-probe');
    await ok(h1, lab.password, 'virsh -c qemu:///system undefine moldlab-probe');
    expect(await ok(h1, lab.password, 'virsh -c qemu:///system list --all --name')).not.toContain('moldlab-probe');

    // The primary storage directory is shared, at the same path on both hosts.
    const marker = `${lab.primaryDir}/marker-${Date.now()}`;
    await ok(h1, lab.password, `echo shared > ${marker}`);
    expect((await ok(lab.hosts[1]!.address, lab.password, `cat ${marker}`)).trim()).toBe('shared');

    await down();
    lab = undefined;
    expect(await labNetns()).toEqual([]);
    expect(await labLinks()).toEqual([]);
    expect(await labMounts()).toEqual([]);
    expect(await labPids()).toEqual([]);
    expect(labProcesses()).toEqual([]);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    expect(mounts).not.toContain(`${LAB_DIR}/`);
    expect(mounts).not.toContain(`/run/netns/${names.netnsPrefix}`);
  }, patience(120_000));
});
