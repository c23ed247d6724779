// The agent's volume commands against real libvirt (lab 7, one host): attachDisk creates the blank
// qcow2 and hot-plugs it into a running domain (live and in its definition), converging when
// repeated; resizeDisk grows it live (virsh blockresize) and, with no domain, offline (qemu-img),
// refusing a shrink without shrinkOk; detachDisk unplugs it (a guest without an OS never releases a
// virtio disk: the named timeout; the definition no longer has it); deleteDisk removes the file,
// refusing one a qemu holds. Guests have no OS. Needs root; skipped otherwise.
import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, type CommandContext } from '../../agent/commands.ts';
import type { Outcome } from '../../agent/journal.ts';
import { KnownHosts, SshPool } from '../../agent/ssh.ts';
import { forgetHostProfiles } from '../../agent/vm.ts';
import type { VmSpec } from '../../shared/agent/protocol.ts';
import { labAt, type Lab } from './lab.ts';
import { patience } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const suite = isRoot ? describe : describe.skip;
const lab = labAt(7);
const MiB = 2 ** 20;

function failureOf(outcome: Outcome) {
  if (outcome.ok) throw new Error(`expected a failure, got ${JSON.stringify(outcome.result)}`);
  return outcome.failure;
}
function resultOf<T>(outcome: Outcome): T {
  if (!outcome.ok) throw new Error(`${outcome.failure.error}: ${outcome.failure.cause}`);
  return outcome.result as T;
}
const virtualSize = (path: string) => JSON.parse(spawnSync('qemu-img', ['info', '-U', '--output=json', path]).stdout.toString())['virtual-size'];

suite('volume commands on a lab host', () => {
  let l: Lab;
  let pool: SshPool;
  let ctx: CommandContext;
  let vm: VmSpec & { disks: NonNullable<VmSpec['disks']>; configDrive: NonNullable<VmSpec['configDrive']> };
  let data: string;
  const host = () => ({ hostId: 'host-1', address: l.hosts[0]!.address, port: 22, username: 'root' });
  const virsh = async (...args: string[]) => await lab.hostExec(1, ['virsh', '-c', 'qemu:///system', ...args], { allowFail: true });
  const blk = async (inactive = false) => (await virsh('domblklist', '--domain', vm.name, ...(inactive ? ['--inactive'] : []))).stdout;

  beforeAll(async () => {
    l = await lab.up(1);
    const knownHosts = new KnownHosts();
    pool = new SshPool(readFileSync(l.privateKeyFile, 'utf8'), knownHosts);
    ctx = { agentId: 'agent-volume-test', privateKeyPem: '', sshPublicKey: '', pool, knownHosts };
    forgetHostProfiles();
    const template = join(l.primaryDir, 'template.qcow2');
    const made = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', template, '64M']);
    if (made.status !== 0) throw new Error(`qemu-img: ${made.stderr}`);
    await lab.hostExec(1, ['ip', 'link', 'add', 'name', 'cloudbr7', 'type', 'bridge']);
    await lab.hostExec(1, ['ip', 'link', 'set', 'cloudbr7', 'up']);
    const id = randomUUID();
    vm = {
      name: `i-7-${Math.floor(Math.random() * 100_000)}-VM`,
      uuid: id,
      hostname: 'vol-vm',
      vcpus: 1,
      cpuMhz: 500,
      memoryMiB: 96,
      disks: [{ path: join(l.primaryDir, `${randomUUID()}.qcow2`), backingFile: template, sizeBytes: 128 * MiB, deviceId: 0 }],
      configDrive: { path: join(l.primaryDir, `${id}-config.iso`), instanceId: id, publicKeys: {} },
      nics: [{ mac: `02:00:${randomBytes(4).toString('hex').match(/../g)!.join(':')}`, bridge: 'cloudbr7', ip: '10.7.0.5', netmask: '255.255.255.0', gateway: '10.7.0.1', dns: [] }],
      vncListen: l.hosts[0]!.address,
    } as never;
    resultOf(await runCommand(ctx, 'startVm', { host: host(), vm }));
    data = join(l.primaryDir, `${randomUUID()}.qcow2`);
  }, patience(180_000));

  afterAll(async () => {
    await pool?.closeAll();
    await lab.down();
  }, patience(120_000));

  it('attachDisk creates the blank qcow2 and hot-plugs it as vdb, live and in the definition; again: nothing to do', async () => {
    const disk = { path: data, sizeBytes: 64 * MiB, deviceId: 1 };
    expect(resultOf(await runCommand(ctx, 'attachDisk', { host: host(), vmName: vm.name, disk }))).toEqual({ vmName: vm.name, target: 'vdb', created: true });
    expect(virtualSize(data)).toBe(64 * MiB);
    expect(await blk()).toMatch(new RegExp(`vdb\\s+${data}`));
    expect(await blk(true)).toMatch(new RegExp(`vdb\\s+${data}`));
    const xml = (await virsh('dumpxml', vm.name)).stdout;
    expect(xml).toMatch(new RegExp(`<driver name='qemu' type='qcow2' cache='none'/>\\s*<source file='${data}'[^>]*/>[\\s\\S]*?<target dev='vdb' bus='virtio'/>`));
    const inode = spawnSync('stat', ['-c', '%i', data]).stdout.toString();
    expect(resultOf(await runCommand(ctx, 'attachDisk', { host: host(), vmName: vm.name, disk }))).toEqual({ vmName: vm.name, target: 'vdb', created: false });
    expect(spawnSync('stat', ['-c', '%i', data]).stdout.toString()).toBe(inode);
  });

  it('a failed attach names the reason and leaves no file it made', async () => {
    const clash = join(l.primaryDir, `${randomUUID()}.qcow2`);
    const f = failureOf(await runCommand(ctx, 'attachDisk', { host: host(), vmName: vm.name, disk: { path: clash, sizeBytes: 64 * MiB, deviceId: 1 } }));
    expect(f.error).toBe('AttachFailed');
    expect(f.cause).toMatch(new RegExp(`^Attaching ${clash} to ${vm.name} as vdb on root@${l.hosts[0]!.address.replace(/\./g, '\\.')} failed: `));
    expect(existsSync(clash)).toBe(false);
    const g = failureOf(await runCommand(ctx, 'attachDisk', { host: host(), vmName: 'i-7-99999-VM', disk: { path: clash, sizeBytes: 64 * MiB, deviceId: 2 } }));
    expect(g).toEqual({ error: 'VmNotRunning', cause: `Cannot attach ${clash} to i-7-99999-VM on root@${l.hosts[0]!.address}: no such domain` });
    expect(existsSync(clash)).toBe(false);
  });

  it('resizeDisk grows the running domain\'s disk live; refuses to shrink it', async () => {
    expect(resultOf(await runCommand(ctx, 'resizeDisk', { host: host(), path: data, sizeBytes: 96 * MiB, vmName: vm.name }))).toEqual({ path: data, exists: true, sizeBytes: 96 * MiB, live: true });
    expect(virtualSize(data)).toBe(96 * MiB);
    expect((await virsh('domblkinfo', '--domain', vm.name, 'vdb')).stdout).toMatch(new RegExp(`Capacity:\\s+${96 * MiB}`));
    // Again: the size already.
    expect(resultOf(await runCommand(ctx, 'resizeDisk', { host: host(), path: data, sizeBytes: 96 * MiB, vmName: vm.name }))).toMatchObject({ sizeBytes: 96 * MiB });
    expect(failureOf(await runCommand(ctx, 'resizeDisk', { host: host(), path: data, sizeBytes: 32 * MiB, vmName: vm.name, shrinkOk: true })).error).toBe('ShrinkRefused');
    // A disk in use cannot be deleted.
    expect(failureOf(await runCommand(ctx, 'deleteDisk', { host: host(), path: data })).error).toBe('DiskInUse');
    expect(existsSync(data)).toBe(true);
  });

  it('detachDisk: the definition drops it at once; a guest without an OS never releases it live, so it times out by name', async () => {
    const f = failureOf(await runCommand(ctx, 'detachDisk', { host: host(), vmName: vm.name, path: data, waitSeconds: 2 }));
    expect(f.error).toBe('DetachTimeout');
    expect(f.cause).toContain(`The guest of ${vm.name} on root@${l.hosts[0]!.address} did not release ${data} within 2 s`);
    expect(await blk(true)).not.toContain(data);
    // Once the domain is gone (stopped: undefined), the disk is attached to nothing: detached.
    resultOf(await runCommand(ctx, 'stopVm', { host: host(), name: vm.name, forced: true }));
    expect(resultOf(await runCommand(ctx, 'detachDisk', { host: host(), vmName: vm.name, path: data }))).toEqual({ vmName: vm.name, detached: false });
  });

  it('offline: resizeDisk with qemu-img (shrink only with shrinkOk), nothing to do for a disk not yet made; deleteDisk removes it, again: nothing', async () => {
    expect(failureOf(await runCommand(ctx, 'resizeDisk', { host: host(), path: data, sizeBytes: 32 * MiB })).error).toBe('ShrinkRefused');
    expect(resultOf(await runCommand(ctx, 'resizeDisk', { host: host(), path: data, sizeBytes: 160 * MiB, vmName: vm.name }))).toEqual({ path: data, exists: true, sizeBytes: 160 * MiB, live: false });
    expect(resultOf(await runCommand(ctx, 'resizeDisk', { host: host(), path: data, sizeBytes: 32 * MiB, shrinkOk: true }))).toMatchObject({ sizeBytes: 32 * MiB, live: false });
    expect(virtualSize(data)).toBe(32 * MiB);
    const never = join(l.primaryDir, `${randomUUID()}.qcow2`);
    expect(resultOf(await runCommand(ctx, 'resizeDisk', { host: host(), path: never, sizeBytes: 32 * MiB }))).toEqual({ path: never, exists: false, sizeBytes: 32 * MiB, live: false });
    expect(resultOf(await runCommand(ctx, 'deleteDisk', { host: host(), path: data }))).toEqual({ path: data, removed: true });
    expect(existsSync(data)).toBe(false);
    expect(resultOf(await runCommand(ctx, 'deleteDisk', { host: host(), path: data }))).toEqual({ path: data, removed: false });
    expect(failureOf(await runCommand(ctx, 'deleteDisk', { host: host(), path: 'relative.qcow2' })).error).toBe('InvalidCommand');
    resultOf(await runCommand(ctx, 'expungeVm', { host: host(), name: vm.name, files: [vm.disks[0]!.path, vm.configDrive.path] }));
  });
});
