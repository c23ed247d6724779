// Real guests end to end on a two-host lab (lab 12), through the HTTP API and a real agent: the lab's
// bootable template (test/lab/guest) on an untagged shared network, so each guest sits on the lab
// network and this machine reaches it at its IPAM address. Proven inside the guest: it answers with
// the hostname Mold gave it; SSH takes the deploy key and refuses a password; the user data ran; a
// reboot gives a new boot id; a stop (ACPI) and a start on the other host keep what was written to the
// root disk; a data volume attached live shows up as a block device; resetSSHKeyForVirtualMachine
// takes effect at the next start. And templates: a qcow2 with no OS still deploys, a corrupt one fails
// its download naming qemu-img's error and leaves no file. Needs root (the lab); skipped otherwise.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guestImage, labAt, type Lab } from '../lab/lab.ts';
import { adminClient } from '../support/client.ts';
import { guestSsh, sshLogin, waitForGuest } from '../support/guest.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';
import { blankQcow2, buildVmWorld, PING_INTERVAL_SECONDS, type VmWorld } from '../support/vm-world.ts';
import { patience, until } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(12);

let labInfo: Lab;
let runtime: RunningRuntime;
let world: VmWorld;
let key: { name: string; privateKey: string };

const ok = (command: string, params: Record<string, string | number | boolean> = {}) => world.ok(command, params);
const done = (command: string, params: Record<string, string | number | boolean>, timeoutMs?: number) => world.done(command, params, timeoutMs);
const newKey = async (name: string) => {
  const pair = (await ok('createSSHKeyPair', { name })).keypair;
  return { name: pair.name as string, privateKey: pair.privatekey as string };
};
const ipOf = (vm: any): string => vm.nic[0].ipaddress;
const PING_MS = PING_INTERVAL_SECONDS * 1000;

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'real guests on a two-host lab' : 'real guests on a two-host lab (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    [labInfo, runtime] = await Promise.all([lab.up(2), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: '2' } })]);
    world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials), { name: 'guestlab', template: 'guest', network: 'untagged' });
    key = await newKey('guest-key');
  }, patience(300_000));

  afterAll(async () => {
    await world?.close();
    await runtime?.stop();
    await lab.down();
  }, patience(120_000));

  let first: any;
  let second: any;

  it('boots guests that answer at their IPAM addresses with the hostnames Mold gave them; the deploy key logs in, a password does not, the user data ran', async () => {
    const userData = '#!/bin/sh\necho "user data ran on $(hostname)" > /tmp/user-data-ran\n';
    // Two guests boot at once (one for the lifecycle, one for a data volume): fewer minutes of emulation.
    [first, second] = (
      await Promise.all(
        ['guest-1', 'guest-2'].map((name) => done('deployVirtualMachine', world.deployParams(name, { keypair: key.name, userdata: Buffer.from(userData).toString('base64') }))),
      )
    ).map((r) => r.virtualmachine);
    for (const vm of [first, second]) {
      expect(vm.state).toBe('Running');
      // On the lab's own subnet: the untagged network's range.
      expect(ipOf(vm).split('.').slice(0, 3)).toEqual(lab.names.gateway.split('.').slice(0, 3));
      expect(await waitForGuest(ipOf(vm), `${vm.name} to answer at ${ipOf(vm)}`)).toMatchObject({ hostname: vm.name });
    }

    const ran = await until('the user data to have run', () => guestSsh(ipOf(first), key, 'cat /tmp/user-data-ran'), (r) => r.code === 0, { within: 20_000 });
    expect(ran.stdout).toBe('user data ran on guest-1\n');
    expect(await sshLogin(ipOf(first), { password: 'password' })).toMatch(/^client-authentication: /);
    const otherKey = await newKey('not-this-vm');
    expect(await sshLogin(ipOf(first), otherKey)).toMatch(/^client-authentication: /);
    await ok('deleteSSHKeyPair', { name: otherKey.name });
  }, patience(120_000));

  it('reboots: a new boot id, the same guest', async () => {
    const before = await waitForGuest(ipOf(first), 'the first guest');
    expect((await done('rebootVirtualMachine', { id: first.id })).virtualmachine.state).toBe('Running');
    const after = await waitForGuest(ipOf(first), 'the first guest to come back with a new boot id', (s) => s.bootId !== before.bootId);
    expect(after.hostname).toBe(first.name);
  }, patience(90_000));

  it('stops (the guest powers off on ACPI), starts on the other host with what was written to its root disk, and takes a reset SSH key', async () => {
    const write = await guestSsh(ipOf(first), key, 'echo "written before the stop" > /data/kept && sync && cat /data/kept');
    expect(write).toMatchObject({ code: 0, stdout: 'written before the stop\n' });
    const booted = await waitForGuest(ipOf(first), 'the first guest');

    // Not forced: the guest's ACPI power button handler powers it off.
    const stopped = await done('stopVirtualMachine', { id: first.id });
    expect(stopped.virtualmachine.state).toBe('Stopped');

    const newer = await newKey('guest-key-2');
    await done('resetSSHKeyForVirtualMachine', { id: first.id, keypair: newer.name });
    const other = world.hosts.find((h) => h.id !== first.hostid)!;
    const started = (await done('startVirtualMachine', { id: first.id, hostid: other.id })).virtualmachine;
    expect(started).toMatchObject({ state: 'Running', hostid: other.id, keypairs: newer.name });
    expect(ipOf(started)).toBe(ipOf(first));
    await waitForGuest(ipOf(first), 'the first guest to boot on the other host', (s) => s.bootId !== booted.bootId);

    expect(await guestSsh(ipOf(first), newer, 'cat /data/kept')).toMatchObject({ code: 0, stdout: 'written before the stop\n' });
    // The guest's shutdown noted the boot that ended cleanly: the stop was its own power-off, not a pulled plug.
    expect((await guestSsh(ipOf(first), newer, 'cat /data/.mold/clean-shutdown')).stdout.trim()).toBe(booted.bootId);
    expect(await sshLogin(ipOf(first), key)).toMatch(/^client-authentication: /);
    first = started;
  }, patience(120_000));

  it('shows a data volume attached live as a block device in the guest', async () => {
    const offering = (await ok('createDiskOffering', { name: 'one-gig', displaytext: 'one-gig', disksize: 1 })).diskoffering;
    const volume = (await done('createVolume', { name: 'data-1', zoneid: world.zoneId, diskofferingid: offering.id })).volume;
    expect((await done('attachVolume', { id: volume.id, virtualmachineid: second.id })).volume).toMatchObject({ virtualmachineid: second.id, deviceid: 1 });
    // /sys/block/vdb/size counts 512-byte sectors: 1 GiB.
    const size = await until('vdb to show in the guest', () => guestSsh(ipOf(second), key, 'cat /sys/block/vdb/size'), (r) => r.code === 0, { within: 20_000 });
    expect(size.stdout.trim()).toBe(String(2 ** 30 / 512));
    await done('detachVolume', { id: volume.id });
    await until('vdb to leave the guest', () => guestSsh(ipOf(second), key, 'test -e /sys/block/vdb && echo present || echo gone'), (r) => r.stdout.trim() === 'gone', { within: 20_000 });
    await ok('deleteVolume', { id: volume.id });
  }, patience(60_000));

  it("shows the guest's work in its usage figures: CPU while it computes, the bytes it wrote, its traffic", async () => {
    const figures = async () => (await ok('listVirtualMachinesMetrics', { id: second.id })).virtualmachine[0];
    // Two reports make the first figures; the agent reports every ping.interval (vm-world.ts).
    const before = await until('usage figures', figures, (vm) => typeof vm.cpuused === 'string', { within: 3 * PING_MS });
    const work = await guestSsh(ipOf(second), key, "dd if=/dev/zero of=/data/usage bs=1M count=8 2>/dev/null && sync && rm /data/usage && (timeout 60 sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 &) && echo started");
    expect(work).toMatchObject({ code: 0, stdout: 'started\n' });
    const busy = await until('the busy guest to show CPU and its writes', figures, (vm) => parseFloat(vm.cpuused) >= 20 && vm.diskkbswrite >= before.diskkbswrite + 8 * 1024, { within: 4 * PING_MS });
    expect(busy.diskiowrite).toBeGreaterThan(before.diskiowrite);
    // The SSH sessions came in over its NIC.
    expect(busy.networkkbsread).toBeGreaterThan(before.networkkbsread);
    expect(busy.networkread).toMatch(/^\d+\.\d\d MiB$/);
    await guestSsh(ipOf(second), key, 'pkill -f "while :" ; true');
  }, patience(120_000));

  it('deploys a qcow2 with no OS (the user\'s image), and fails a corrupt qcow2\'s download with qemu-img\'s error, keeping no file', async () => {
    const broken = readFileSync(await guestImage());
    broken.write('garbage!', 40); // inside the header: the L1 table's offset
    const images: Record<string, Buffer> = { 'blank.qcow2': blankQcow2(), 'corrupt.qcow2': broken };
    const server: Server = createServer((req, res) => {
      const body = images[req.url!.slice(1)];
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const osTypeId = (await ok('listOsTypes', { keyword: 'Other' })).ostype[0].id;
    const register = async (file: string) =>
      (
        await ok('registerTemplate', {
          name: file, displaytext: file, format: 'QCOW2', hypervisor: 'KVM', zoneid: world.zoneId, ostypeid: osTypeId, url: `${base}/${file}`,
          checksum: `{SHA-256}${createHash('sha256').update(images[file]!).digest('hex')}`,
        })
      ).template[0].id as string;
    const settled = (id: string) =>
      until(`template ${id} to download or fail`, async () => (await ok('listTemplates', { id, templatefilter: 'all' })).template[0], (t) => t.isready === true || /rror|fail|discarded/i.test(t.status ?? ''), { every: 250 });
    try {
      const [blankId, corruptId] = [await register('blank.qcow2'), await register('corrupt.qcow2')];
      const corrupt = await settled(corruptId);
      expect(corrupt.isready).toBe(false);
      expect(corrupt.status).toContain(`Template ${corruptId} downloaded from ${base}/corrupt.qcow2 is not a usable QCOW2 image: Could not open`);
      expect(corrupt.status).toContain('the download was discarded');
      expect(readdirSync(labInfo.primaryDir).filter((f) => f.startsWith(corruptId))).toEqual([]);

      expect((await settled(blankId)).isready).toBe(true);
      const vm = (await done('deployVirtualMachine', world.deployParams('no-os-1', { templateid: blankId }))).virtualmachine;
      expect(vm.state).toBe('Running');
      await done('destroyVirtualMachine', { id: vm.id, expunge: true });
    } finally {
      server.close();
    }
  }, patience(60_000));

  it('expunges the guests, leaving both hosts without domains', async () => {
    await Promise.all([first, second].map((vm) => done('destroyVirtualMachine', { id: vm.id, expunge: true })));
    for (const h of world.hosts) {
      const names = (await lab.hostExec(h.index, ['virsh', '-c', 'qemu:///system', 'list', '--all', '--name'])).stdout;
      expect(names.trim()).toBe('');
    }
    expect(execFileSync('ls', [labInfo.primaryDir], { encoding: 'utf8' }).split('\n').filter((f) => f.includes(first.id) || f.includes(second.id))).toEqual([]);
  }, patience(60_000));
});
