// libvirt hook scripts (hosts.md §13) on a two-host lab (lab 25), through the HTTP API and a real
// agent: addHost installs /etc/libvirt/hooks/qemu and libvirtd runs it from then on. The hook's rules,
// by calling it on a host as libvirt does (four arguments, the domain XML on stdin): only
// <operation>_* and all_* run, ordered by the name after the prefix, with the arguments and stdin
// unchanged; a non-executable script is logged and skipped; a script past timeoutSeconds is
// terminated; an invalid operation runs nothing; every line goes to /var/log/libvirt/qemu-hook.log
// and nothing to libvirt. Then a real guest: an all_x.sh records, on each host, every operation
// libvirt ran for it, in order, through deploy, stop, start, reboot and a start on the other host.
// Needs root (the lab); skipped otherwise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QEMU_HOOK } from '../../agent/hooks.ts';
import { labAt, type Lab } from '../lab/lab.ts';
import { adminClient } from '../support/client.ts';
import { waitForGuest } from '../support/guest.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';
import { buildVmWorld, type VmWorld } from '../support/vm-world.ts';
import { patience, until } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(25);

let labInfo: Lab;
let runtime: RunningRuntime;
let world: VmWorld;

const sh = async (hostIndex: number, script: string) => (await lab.hostExec(hostIndex, ['bash', '-c', script])).stdout;
/** Writes `content` to `path` on the host, mode `mode`. */
const put = (hostIndex: number, path: string, content: string, mode = '0755') =>
  sh(hostIndex, `printf '%s' '${Buffer.from(content).toString('base64')}' | base64 -d > ${path} && chmod ${mode} ${path}`);
/** The hook log's lines without their time stamps. */
const hookLog = async (hostIndex: number) => (await sh(hostIndex, 'cat /var/log/libvirt/qemu-hook.log 2>/dev/null || true')).split('\n').filter(Boolean).map((l) => l.replace(/^\d\d:\d\d:\d\d,\d{3} /, ''));

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'libvirt hook scripts on a two-host lab' : 'libvirt hook scripts on a two-host lab (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    [labInfo, runtime] = await Promise.all([lab.up(2), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: '2' } })]);
    world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials), { name: 'hookslab', template: 'guest', network: 'untagged' });
  }, patience(300_000));

  afterAll(async () => {
    await world?.close();
    await runtime?.stop();
    await lab.down();
  }, patience(120_000));

  it('installs the qemu hook and the custom directory on every host it adds', async () => {
    for (const h of world.hosts) {
      expect(await sh(h.index, 'stat -c %a /etc/libvirt/hooks/qemu; stat -c %F /etc/libvirt/hooks/custom')).toBe('755\ndirectory\n');
      expect(await sh(h.index, 'cat /etc/libvirt/hooks/qemu')).toBe(QEMU_HOOK);
      expect(await sh(h.index, 'grep "^timeoutSeconds=" /etc/libvirt/hooks/qemu')).toBe('timeoutSeconds=$((10 * 60))\n');
    }
  });

  it('runs <operation>_* and all_* in the order of their names after the prefix, with the arguments and stdin unchanged; logs and skips a non-executable one; ignores the rest', async () => {
    const dir = '/etc/libvirt/hooks/custom';
    await put(1, `${dir}/migrate_abc.py`, '#!/usr/bin/python3\nimport sys\nprint("migrate_abc.py", sys.argv[1:], sys.stdin.read().strip())\n');
    await put(1, `${dir}/all_cde.sh`, '#!/bin/bash\necho "all_cde.sh $# $*"\necho "all_cde.sh stderr" >&2\nexit 3\n');
    await put(1, `${dir}/all_bcd.sh`, '#!/bin/sh\necho all_bcd.sh\n', '0644');
    await put(1, `${dir}/start_aaa.sh`, '#!/bin/sh\necho start_aaa.sh\n');
    await put(1, `${dir}/aaa.sh`, '#!/bin/sh\necho aaa.sh\n');
    await put(1, `${dir}/allx.sh`, '#!/bin/sh\necho allx.sh\n');
    await sh(1, 'rm -f /var/log/libvirt/qemu-hook.log');

    // As libvirt calls it: the hook prints nothing (for migrate begin its output would be the new XML) and succeeds.
    const out = await lab.hostExec(1, ['bash', '-c', `echo '<domain><name>vm-a</name></domain>' | /etc/libvirt/hooks/qemu vm-a migrate begin -; echo "exit $?"`]);
    expect(out.stdout).toBe('exit 0\n');
    expect(await hookLog(1)).toEqual([
      'qemu-hook INFO Executing custom script: migrate_abc.py, parameters: vm-a migrate begin -',
      "migrate_abc.py ['vm-a', 'migrate', 'begin', '-'] <domain><name>vm-a</name></domain>",
      'qemu-hook INFO Custom script: migrate_abc.py finished successfully',
      'qemu-hook INFO Executing custom script: all_bcd.sh, parameters: vm-a migrate begin -',
      'qemu-hook WARNING Custom script: all_bcd.sh is not executable; skipping execution.',
      'qemu-hook INFO Executing custom script: all_cde.sh, parameters: vm-a migrate begin -',
      'all_cde.sh 4 vm-a migrate begin -',
      'all_cde.sh stderr',
      'qemu-hook ERROR Custom script: all_cde.sh finished with error: return code 3',
    ]);

    // Another operation: its own scripts and all_*; an invalid one: nothing but the hook's complaint.
    await sh(1, 'rm -f /var/log/libvirt/qemu-hook.log');
    await sh(1, '/etc/libvirt/hooks/qemu vm-a start begin - </dev/null; /etc/libvirt/hooks/qemu vm-a bogus begin - </dev/null');
    const lines = await hookLog(1);
    expect(lines.filter((l) => l.includes('Executing'))).toEqual([
      'qemu-hook INFO Executing custom script: start_aaa.sh, parameters: vm-a start begin -',
      'qemu-hook INFO Executing custom script: all_bcd.sh, parameters: vm-a start begin -',
      'qemu-hook INFO Executing custom script: all_cde.sh, parameters: vm-a start begin -',
    ]);
    expect(lines.at(-1)).toBe('qemu-hook ERROR The given action: bogus, is not a valid libvirt qemu operation.');
    // aaa.sh and allx.sh have no <operation>_ or all_ prefix: never run, never named.
    expect(lines.filter((l) => l === 'aaa.sh' || l.includes('allx.sh') || / aaa\.sh/.test(l))).toEqual([]);
  });

  it('terminates a script still running after timeoutSeconds (edited in the hook, as the guide says) and goes on with the next', async () => {
    const dir = '/etc/libvirt/hooks/custom';
    await sh(1, `rm -f ${dir}/*`);
    await put(1, `${dir}/all_a.sh`, '#!/bin/bash\necho "all_a.sh began"\nsleep 60\necho "all_a.sh ended"\n');
    await put(1, `${dir}/all_b.sh`, '#!/bin/bash\necho "all_b.sh ran"\n');
    await sh(1, 'rm -f /var/log/libvirt/qemu-hook.log');
    // A copy with timeoutSeconds = 1 s: the host's own hook stays as the agent installed it.
    await sh(1, "sed 's/^timeoutSeconds=.*/timeoutSeconds=$((1 * 1))/' /etc/libvirt/hooks/qemu > /tmp/qemu-hook-1s && chmod 0755 /tmp/qemu-hook-1s");
    await sh(1, '/tmp/qemu-hook-1s vm-a stopped end - </dev/null; rm -f /tmp/qemu-hook-1s');
    expect(await hookLog(1)).toEqual([
      'qemu-hook INFO Executing custom script: all_a.sh, parameters: vm-a stopped end -',
      'all_a.sh began',
      'qemu-hook ERROR Custom script: all_a.sh terminated after timeout of 1 second[s].',
      'qemu-hook INFO Executing custom script: all_b.sh, parameters: vm-a stopped end -',
      'all_b.sh ran',
      'qemu-hook INFO Custom script: all_b.sh finished successfully',
    ]);
    await sh(1, `rm -f ${dir}/*`);
  }, patience(30_000));

  it('records every operation libvirt runs for a real guest, in order, on the host it runs on: deploy, stop, start, an in-place reboot (none), a start elsewhere, an expunge', async () => {
    const record = '#!/bin/bash\n# Records each operation of a guest (libvirt: the guest name, the operation, the sub-operation).\necho "$1 $2 $3" >> /var/log/libvirt/x-events.log\n';
    for (const h of world.hosts) await put(h.index, '/etc/libvirt/hooks/custom/all_x.sh', record);
    const events = async (hostIndex: number, name: string) =>
      (await sh(hostIndex, 'cat /var/log/libvirt/x-events.log 2>/dev/null || true')).split('\n').filter((l) => l.startsWith(`${name} `)).map((l) => l.slice(name.length + 1));
    // libvirt may run the release hook just after the domain shows shut off: each list is waited for.
    const seen = async (hostIndex: number, name: string, expected: string[]) =>
      expect(await until(`${name}'s operations on host ${hostIndex}`, () => events(hostIndex, name), (e) => JSON.stringify(e) === JSON.stringify(expected), { within: 10_000 })).toEqual(expected);
    const started = ['prepare begin', 'start begin', 'started begin'];
    const stopped = ['stopped end', 'release end'];

    let vm = (await world.done('deployVirtualMachine', world.deployParams('hooked-1'))).virtualmachine;
    const ip = vm.nic[0].ipaddress as string;
    const first = world.hosts.find((h) => h.id === vm.hostid)!;
    const other = world.hosts.find((h) => h.id !== vm.hostid)!;
    const booted = await waitForGuest(ip, 'the guest to boot');
    await seen(first.index, vm.instancename, started);

    await world.done('stopVirtualMachine', { id: vm.id });
    await seen(first.index, vm.instancename, [...started, ...stopped]);

    await world.done('startVirtualMachine', { id: vm.id, hostid: first.id });
    const again = await waitForGuest(ip, 'the guest to boot again', (s) => s.bootId !== booted.bootId);
    await seen(first.index, vm.instancename, [...started, ...stopped, ...started]);

    // An in-place reboot: the guest boots anew, the domain never stops, libvirt runs no hook.
    await world.done('rebootVirtualMachine', { id: vm.id });
    await waitForGuest(ip, 'the guest to come back from its reboot', (s) => s.bootId !== again.bootId);
    await seen(first.index, vm.instancename, [...started, ...stopped, ...started]);

    await world.done('stopVirtualMachine', { id: vm.id, forced: true });
    vm = (await world.done('startVirtualMachine', { id: vm.id, hostid: other.id })).virtualmachine;
    expect(vm.hostid).toBe(other.id);
    await waitForGuest(ip, 'the guest to boot on the other host');
    await seen(first.index, vm.instancename, [...started, ...stopped, ...started, ...stopped]);
    await seen(other.index, vm.instancename, started);

    await world.done('destroyVirtualMachine', { id: vm.id, expunge: true });
    await seen(other.index, vm.instancename, [...started, ...stopped]);
    // The hook logged each run of all_x.sh with its arguments.
    const log = await until('the hook log', () => hookLog(other.index), (lines) => lines.some((l) => l.includes('release end')));
    expect(log.filter((l) => l.startsWith('qemu-hook INFO Executing custom script: all_x.sh'))).toEqual(
      [...started, ...stopped].map((op) => `qemu-hook INFO Executing custom script: all_x.sh, parameters: ${vm.instancename} ${op} -`),
    );
  }, patience(400_000));
});
