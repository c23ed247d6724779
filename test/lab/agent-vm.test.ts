// The agent's VM commands against real libvirt (lab 4, two hosts sharing primary storage): startVm
// builds the overlay, config drive, bridge and domain and starts it; everything converges when repeated;
// reboot, ACPI stop with the forced fallback, forced stop, a restart on the other host from the same
// disks, expunge; the named failures (how long a start takes is bench/vm-deploy.ts's business). Guests have no OS (SeaBIOS finds nothing to boot and waits): enough for libvirt.
// Needs root; skipped otherwise.
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
import { labAt, UPLINK_BRIDGE, type Lab } from './lab.ts';
import { patience } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const suite = isRoot ? describe : describe.skip;
const lab = labAt(4);
const VLAN = 104;
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOaN0m3xZx2R1k7hQ8b0wq8XW0sA2pD2S0K7yQ0eG7Jb alice@laptop';
const USER_DATA = '#cloud-config\nruncmd:\n  - [ sh, -c, "echo hello > /tmp/hi" ]\n';

function failureOf(outcome: Outcome) {
  if (outcome.ok) throw new Error(`expected a failure, got ${JSON.stringify(outcome.result)}`);
  return outcome.failure;
}
function resultOf<T>(outcome: Outcome): T {
  if (!outcome.ok) throw new Error(`${outcome.failure.error}: ${outcome.failure.cause}`);
  return outcome.result as T;
}

suite('VM commands on lab hosts', () => {
  let l: Lab;
  let pool: SshPool;
  let ctx: CommandContext;
  let template: string;
  /** Does the lab's kernel make 802.1Q links? (Some CI kernels lack CONFIG_VLAN_8021Q.) */
  let vlanSupport = true;
  const host = (i: number) => ({ hostId: `host-${i}`, address: l.hosts[i - 1]!.address, port: 22, username: 'root' });
  const virsh = async (i: number, ...args: string[]) => await lab.hostExec(i, ['virsh', '-c', 'qemu:///system', ...args], { allowFail: true });

  function vmSpec(over: Partial<VmSpec> = {}): VmSpec & { disks: NonNullable<VmSpec['disks']>; configDrive: NonNullable<VmSpec['configDrive']> } {
    const id = randomUUID();
    const number = Math.floor(Math.random() * 100_000);
    return {
      name: `i-2-${number}-VM`,
      uuid: id,
      hostname: `vm-${number}`,
      vcpus: 2,
      cpuMhz: 500,
      memoryMiB: 96,
      disks: [{ path: join(l.primaryDir, `${randomUUID()}.qcow2`), backingFile: template, sizeBytes: 128 * 2 ** 20, deviceId: 0 }],
      configDrive: { path: join(l.primaryDir, `${id}-config.iso`), instanceId: id, publicKeys: { alice: KEY }, userData: Buffer.from(USER_DATA).toString('base64'), availabilityZone: 'lab-zone' },
      nics: [{ mac: `02:00:${randomBytes(4).toString('hex').match(/../g)!.join(':')}`, vlan: VLAN, ip: '10.4.104.5', netmask: '255.255.255.0', gateway: '10.4.104.1', dns: ['10.4.104.1'] }],
      vncListen: l.hosts[0]!.address,
      ...over,
    } as never;
  }

  beforeAll(async () => {
    l = await lab.up(2);
    const knownHosts = new KnownHosts();
    pool = new SshPool(readFileSync(l.privateKeyFile, 'utf8'), knownHosts);
    ctx = { agentId: 'agent-vm-test', privateKeyPem: '', sshPublicKey: '', pool, knownHosts };
    forgetHostProfiles();
    template = join(l.primaryDir, 'template.qcow2');
    const made = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', template, '64M']);
    if (made.status !== 0) throw new Error(`qemu-img: ${made.stderr}`);
    const probe = await lab.hostExec(1, ['ip', 'link', 'add', 'link', 'eth0', 'name', 'probe.4000', 'type', 'vlan', 'id', '4000'], { allowFail: true });
    if (probe.code === 0) await lab.hostExec(1, ['ip', 'link', 'delete', 'probe.4000']);
    else if (/Unknown device type/.test(probe.stderr)) vlanSupport = false;
    else throw new Error(`probing VLAN support: ${probe.stderr}`);
    if (!vlanSupport) console.log('this kernel has no 802.1Q support: VLAN bridges are made without an uplink (MOLD_AGENT_VLAN_FALLBACK=isolated)');
  }, patience(120_000));

  afterAll(async () => {
    delete process.env.MOLD_AGENT_VLAN_FALLBACK;
    await pool?.closeAll();
    await lab.down();
  }, patience(120_000));

  let vm: ReturnType<typeof vmSpec>;

  it('without 802.1Q in the kernel, a VLAN NIC fails with a named error unless the fallback is on', async () => {
    if (vlanSupport) return;
    const probe = vmSpec();
    const f = failureOf(await runCommand(ctx, 'startVm', { host: host(1), vm: probe }));
    expect(f.error).toBe('BridgeUnavailable');
    expect(f.cause).toContain(`Cannot set up the VLAN bridge mbr${VLAN} for ${probe.name} on root@${l.hosts[0]!.address}: the kernel cannot make 802.1Q VLAN links`);
    expect((await virsh(1, 'domstate', probe.name)).code).not.toBe(0);
    resultOf(await runCommand(ctx, 'expungeVm', { host: host(1), name: probe.name, files: [probe.disks[0]!.path, probe.configDrive.path] }));
  });

  it('startVm: overlay on the template, config drive, VLAN bridge, domain defined and running', async () => {
    if (!vlanSupport) process.env.MOLD_AGENT_VLAN_FALLBACK = 'isolated';
    vm = vmSpec();
    // The lab hosts share this machine's /tmp: what other runs left there is not this start's.
    const tempFiles = async () => (await lab.hostExec(1, ['sh', '-c', 'ls -d /tmp/mold-configdrive.* /tmp/mold-domain.* 2>/dev/null || true'])).stdout.trim().split('\n').filter(Boolean);
    const before = await tempFiles();
    const result = resultOf<{ name: string; state: string; vncPort: number }>(await runCommand(ctx, 'startVm', { host: host(1), vm }));
    expect(result).toEqual({ name: vm.name, state: 'Running', vncPort: 5900 });
    expect((await virsh(1, 'domstate', vm.name)).stdout.trim()).toBe('running');

    const xml = (await virsh(1, 'dumpxml', vm.name)).stdout;
    expect(xml).toContain(`<uuid>${vm.uuid}</uuid>`);
    expect(xml).toMatch(/<vcpu placement='static'>2<\/vcpu>/);
    expect(xml).toContain(`<memory unit='KiB'>${96 * 1024}</memory>`);
    expect(xml).toContain('<shares>1000</shares>');
    const root = /<disk type='file' device='disk'>[\s\S]*?<\/disk>/.exec(xml)![0];
    expect(root).toContain(`<source file='${vm.disks[0]!.path}'`);
    expect(root).toContain(`<target dev='vda' bus='virtio'/>`);
    expect(root).toMatch(new RegExp(`<backingStore type='file'[^>]*>\\s*<format type='qcow2'/>\\s*<source file='${template}'/>`));
    expect(xml).toMatch(new RegExp(`<disk type='file' device='cdrom'>[\\s\\S]*?<source file='${vm.configDrive.path}'[\\s\\S]*?<readonly/>`));
    expect(xml).toMatch(new RegExp(`<interface type='bridge'>\\s*<mac address='${vm.nics[0]!.mac}'/>\\s*<source bridge='mbr${VLAN}'/>`));
    expect(xml).toMatch(new RegExp(`<graphics type='vnc' port='5900' autoport='yes' listen='${l.hosts[0]!.address}'>`));

    // The bridge, and (with 802.1Q) the VLAN link of the uplink enslaved to it.
    const links = (await lab.hostExec(1, ['ip', '-o', 'link', 'show'])).stdout;
    expect(links).toMatch(new RegExp(`: mbr${VLAN}: <[^>]*UP`));
    if (vlanSupport) expect(links).toMatch(new RegExp(`: ${UPLINK_BRIDGE}\\.${VLAN}@${UPLINK_BRIDGE}: .* master mbr${VLAN}`));
    expect(links).toMatch(new RegExp(`: vnet\\d+: .* master mbr${VLAN}`));

    const info = JSON.parse(spawnSync('qemu-img', ['info', '-U', '--output=json', vm.disks[0]!.path]).stdout.toString());
    expect(info['backing-filename']).toBe(template);
    expect(info['backing-filename-format']).toBe('qcow2');
    expect(info['virtual-size']).toBe(128 * 2 ** 20);

    const iso = (path: string) => spawnSync('isoinfo', ['-R', '-x', path, '-i', vm.configDrive.path]).stdout.toString();
    expect(spawnSync('isoinfo', ['-d', '-i', vm.configDrive.path]).stdout.toString()).toMatch(/Volume id: config-2/);
    const meta = JSON.parse(iso('/openstack/latest/meta_data.json'));
    expect(meta).toMatchObject({ uuid: vm.uuid, hostname: vm.hostname, public_keys: { alice: KEY }, availability_zone: 'lab-zone' });
    expect(iso('/openstack/latest/user_data')).toBe(USER_DATA);
    const net = JSON.parse(iso('/openstack/latest/network_data.json'));
    expect(net.links[0].ethernet_mac_address).toBe(vm.nics[0]!.mac);
    expect(net.networks[0]).toMatchObject({ type: 'ipv4', ip_address: '10.4.104.5', netmask: '255.255.255.0', routes: [{ gateway: '10.4.104.1' }] });
    expect(net.services).toEqual([{ type: 'dns', address: '10.4.104.1' }]);
    // No temp files left on the host.
    expect((await tempFiles()).filter((file) => !before.includes(file))).toEqual([]);
  });

  it('startVm again converges: same domain, same qemu, overlay kept, config drive rebuilt with the new keys', async () => {
    const before = (await virsh(1, 'domid', vm.name)).stdout.trim();
    const inode = spawnSync('stat', ['-c', '%i', vm.disks[0]!.path]).stdout.toString();
    vm.configDrive.publicKeys = { alice: KEY, bob: KEY.replace('alice', 'bob') };
    const result = resultOf(await runCommand(ctx, 'startVm', { host: host(1), vm }));
    expect(result).toEqual({ name: vm.name, state: 'Running', vncPort: 5900 });
    expect((await virsh(1, 'domid', vm.name)).stdout.trim()).toBe(before);
    expect(spawnSync('stat', ['-c', '%i', vm.disks[0]!.path]).stdout.toString()).toBe(inode);
    const meta = JSON.parse(spawnSync('isoinfo', ['-R', '-x', '/openstack/latest/meta_data.json', '-i', vm.configDrive.path]).stdout.toString());
    expect(Object.keys(meta.public_keys).sort()).toEqual(['alice', 'bob']);
  });

  it('rebootVm reboots in place; a guest that ignores ACPI still counts', async () => {
    const before = (await virsh(1, 'domid', vm.name)).stdout.trim();
    const result = resultOf(await runCommand(ctx, 'rebootVm', { host: host(1), name: vm.name }));
    expect(result).toEqual({ name: vm.name, state: 'Running', vncPort: 5900 });
    expect((await virsh(1, 'domid', vm.name)).stdout.trim()).toBe(before);
  });

  it('stopVm: ACPI first; a guest without an OS ignores it, so it is destroyed after the timeout', async () => {
    const t = performance.now();
    const result = resultOf(await runCommand(ctx, 'stopVm', { host: host(1), name: vm.name, timeoutSeconds: 2 }));
    const ms = performance.now() - t;
    expect(result).toEqual({ name: vm.name, state: 'Stopped', forced: true });
    // It waited the ACPI timeout out before forcing: never sooner, however quick the machine.
    expect(ms).toBeGreaterThanOrEqual(2_000);
    // Undefined, as upstream's agent leaves a stopped VM; its disks stay.
    expect((await virsh(1, 'dominfo', vm.name)).code).not.toBe(0);
    expect(existsSync(vm.disks[0]!.path)).toBe(true);

    // Stopped already: fine, nothing forced. Not running: reboot names it.
    expect(resultOf(await runCommand(ctx, 'stopVm', { host: host(1), name: vm.name }))).toEqual({ name: vm.name, state: 'Stopped', forced: false });
    const f = failureOf(await runCommand(ctx, 'rebootVm', { host: host(1), name: vm.name }));
    expect(f.error).toBe('VmNotRunning');
    expect(f.cause).toBe(`Cannot reboot ${vm.name} on root@${l.hosts[0]!.address}: no such domain`);
    expect(failureOf(await runCommand(ctx, 'rebootVm', { host: host(1), name: 'i-9-9-VM' })).cause).toContain('no such domain');
  });

  it('stopVm forced destroys at once', async () => {
    resultOf(await runCommand(ctx, 'startVm', { host: host(1), vm }));
    expect(resultOf(await runCommand(ctx, 'stopVm', { host: host(1), name: vm.name, forced: true }))).toEqual({ name: vm.name, state: 'Stopped', forced: true });
    expect((await virsh(1, 'dominfo', vm.name)).code).not.toBe(0);
    // A domain that was never defined: stopped already.
    expect(resultOf(await runCommand(ctx, 'stopVm', { host: host(1), name: 'i-9-9-VM', forced: true }))).toEqual({ name: 'i-9-9-VM', state: 'Stopped', forced: false });
  });

  it('startVm on the other host from the same disks (shared primary storage)', async () => {
    const inode = spawnSync('stat', ['-c', '%i', vm.disks[0]!.path]).stdout.toString();
    const result = resultOf(await runCommand(ctx, 'startVm', { host: host(2), vm: { ...vm, vncListen: l.hosts[1]!.address } }));
    expect(result).toEqual({ name: vm.name, state: 'Running', vncPort: 5900 });
    expect(spawnSync('stat', ['-c', '%i', vm.disks[0]!.path]).stdout.toString()).toBe(inode);
    const xml = (await virsh(2, 'dumpxml', vm.name)).stdout;
    expect(xml).toContain(`<source file='${vm.disks[0]!.path}'`);
    expect(xml).toContain(`listen='${l.hosts[1]!.address}'`);
    expect((await lab.hostExec(2, ['ip', '-o', 'link', 'show', `mbr${VLAN}`])).stdout).toContain('UP');
  });

  it('expungeVm: domain gone, files gone; again: nothing to do', async () => {
    const files = [vm.disks[0]!.path, vm.configDrive.path];
    expect(resultOf(await runCommand(ctx, 'expungeVm', { host: host(2), name: vm.name, files }))).toEqual({ removed: files });
    expect((await virsh(2, 'dominfo', vm.name)).code).not.toBe(0);
    for (const f of files) expect(existsSync(f)).toBe(false);
    expect(existsSync(template)).toBe(true);
    // Host 1 still held the stopped definition: only the domain goes.
    expect(resultOf(await runCommand(ctx, 'expungeVm', { host: host(1), name: vm.name, files }))).toEqual({ removed: [] });
    expect((await virsh(1, 'dominfo', vm.name)).code).not.toBe(0);
    expect(resultOf(await runCommand(ctx, 'expungeVm', { host: host(2), name: vm.name, files }))).toEqual({ removed: [] });
    expect((await virsh(1, 'list', '--all', '--name')).stdout.trim()).toBe('');
  });

  it('fails with named errors: missing template, missing bridge; nothing is left behind', async () => {
    const missing = vmSpec();
    missing.disks[0]!.backingFile = join(l.primaryDir, 'no-such-template.qcow2');
    let f = failureOf(await runCommand(ctx, 'startVm', { host: host(1), vm: missing }));
    expect(f.error).toBe('NoSuchTemplateFile');
    expect(f.cause).toBe(
      `The template file ${missing.disks[0]!.backingFile} of ${missing.name} does not exist on root@${l.hosts[0]!.address} (is the template downloaded to this primary storage, and is the pool mounted?)`,
    );
    expect(existsSync(missing.disks[0]!.path)).toBe(false);
    expect((await virsh(1, 'dominfo', missing.name)).code).not.toBe(0);

    const untagged = vmSpec();
    untagged.nics = [{ ...untagged.nics[0]!, vlan: undefined, bridge: 'nosuchbr0' }];
    f = failureOf(await runCommand(ctx, 'startVm', { host: host(1), vm: untagged }));
    expect(f.error).toBe('BridgeUnavailable');
    expect(f.cause).toBe(`Bridge nosuchbr0 for NIC ${untagged.nics[0]!.mac} of ${untagged.name} does not exist on root@${l.hosts[0]!.address}`);
    expect((await virsh(1, 'dominfo', untagged.name)).code).not.toBe(0);
    expect(existsSync(untagged.disks[0]!.path)).toBe(false);
    expect(existsSync(untagged.configDrive.path)).toBe(false);

    // An untagged NIC on a bridge the host has.
    await lab.hostExec(1, ['ip', 'link', 'add', 'name', 'cloudbr9', 'type', 'bridge']);
    await lab.hostExec(1, ['ip', 'link', 'set', 'cloudbr9', 'up']);
    untagged.nics = [{ ...untagged.nics[0]!, bridge: 'cloudbr9' }];
    expect(resultOf(await runCommand(ctx, 'startVm', { host: host(1), vm: untagged }))).toMatchObject({ state: 'Running' });
    expect((await virsh(1, 'dumpxml', untagged.name)).stdout).toContain(`<source bridge='cloudbr9'/>`);

    // A definition libvirt refuses: the UUID of another domain under this name.
    const clash = { ...untagged, uuid: randomUUID() };
    f = failureOf(await runCommand(ctx, 'startVm', { host: host(1), vm: clash }));
    expect(f.error).toBe('DefineFailed');
    expect(f.cause).toMatch(new RegExp(`^virsh define of domain ${clash.name} on root@${l.hosts[0]!.address.replace(/\./g, '\\.')} failed: .*already exists with uuid`));

    resultOf(await runCommand(ctx, 'expungeVm', { host: host(1), name: untagged.name, files: [untagged.disks[0]!.path, untagged.configDrive.path] }));
  });
});
