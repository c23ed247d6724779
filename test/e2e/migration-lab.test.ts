// Live migration end to end on a two-host lab (lab 16) with a real guest, through the HTTP API and a
// real agent: migrateVirtualMachine moves the running guest (its status page keeps its boot id and
// answers throughout; `virsh list` shows the domain on the target only; the hosts' allocated capacity
// moved with it); a migration whose target's libvirtd dies mid-way leaves the guest Running on its
// source with the books balanced; a migration done by hand behind Mold's back is followed by the
// power-state sync. Needs root (the lab); skipped otherwise.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labAt, type Lab } from '../lab/lab.ts';
import { adminClient } from '../support/client.ts';
import { waitForGuest, watchGuest } from '../support/guest.ts';
import { expectBootKept, movesBegin } from '../support/moved-guest.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';
import { buildVmWorld, type VmWorld } from '../support/vm-world.ts';
import { patience, sleep, until, waitFor } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(16);
const VIRSH = ['virsh', '-c', 'qemu:///system'];

let labInfo: Lab;
let runtime: RunningRuntime;
let world: VmWorld;
let vm: any;

const ipOf = (v: any): string => v.nic[0].ipaddress;
const domainsOn = async (index: number) => (await lab.hostExec(index, [...VIRSH, 'list', '--name'])).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
const allocated = async () => {
  const hosts = (await world.ok('listHosts', { zoneid: world.zoneId })).host as any[];
  return Object.fromEntries(hosts.map((h) => [h.id, { cpu: h.cpuallocatedvalue ?? h.cpuallocated, memory: h.memoryallocated }]));
};
const hostOfIndex = (index: number) => world.hosts.find((h) => h.index === index)!;
const indexOfHost = (id: string) => world.hosts.find((h) => h.id === id)!.index;

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'live migration on a two-host lab' : 'live migration on a two-host lab (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    [labInfo, runtime] = await Promise.all([lab.up(2), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: '2' } })]);
    world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials), { name: 'migrationlab', template: 'guest', network: 'untagged' });
    vm = (await world.done('deployVirtualMachine', world.deployParams('mover', { hostid: hostOfIndex(1).id }))).virtualmachine;
    await waitForGuest(ipOf(vm), 'the guest to boot');
  }, patience(300_000));

  afterAll(async () => {
    await world?.close();
    await runtime?.stop();
    await lab.down();
  }, patience(120_000));

  it('findHostsForMigration offers the other host', async () => {
    const found = await world.ok('findHostsForMigration', { id: vm.id });
    expect(found.host).toEqual([expect.objectContaining({ id: hostOfIndex(2).id, suitableformigration: true, requiresStorageMotion: false })]);
  });

  it('live-migrates the running guest: same boot id, answering throughout, the domain only on the target, capacity moved', async () => {
    const before = await waitForGuest(ipOf(vm), 'the guest');
    const booksBefore = await allocated();
    const started = movesBegin();
    const watch = watchGuest(ipOf(vm));
    await sleep(1000);
    const moved = (await world.done('migrateVirtualMachine', { virtualmachineid: vm.id, hostid: hostOfIndex(2).id }, patience(120_000))).virtualmachine;
    await sleep(1000);
    const seen = await watch.end();
    expect(moved).toMatchObject({ id: vm.id, state: 'Running', hostid: hostOfIndex(2).id });
    expect(seen.answers.length).toBeGreaterThan(2);
    expect(new Set(seen.answers.map((s) => s.bootId))).toEqual(new Set([before.bootId]));
    // Answering throughout: at most the switch-over (a fraction of a second) may miss one poll.
    expect(seen.longest, `failed polls: ${seen.failures.join(', ')}`).toBeLessThanOrEqual(1);
    expect(await domainsOn(2)).toContain(vm.instancename);
    expect(await domainsOn(1)).not.toContain(vm.instancename);
    // The definition moved too (--persistent --undefinesource).
    expect((await lab.hostExec(1, [...VIRSH, 'list', '--all', '--name'])).stdout).not.toContain(vm.instancename);
    const books = await allocated();
    const [a, b] = [hostOfIndex(1).id, hostOfIndex(2).id];
    const memory = 128 * 1024 * 1024;
    expect(Number(books[a].memory)).toBe(Number(booksBefore[a].memory) - memory);
    expect(Number(books[b].memory)).toBe(Number(booksBefore[b].memory) + memory);
    await expectBootKept(world, lab, vm, 2, before.bootId, started);
    vm = moved;
  }, patience(180_000));

  it('a migration whose target libvirtd dies mid-way leaves the guest Running on its source with the books balanced', async () => {
    const before = await waitForGuest(ipOf(vm), 'the guest');
    const booksBefore = await allocated();
    // Slowed to 1 MiB/s so the migration is surely under way when the target's libvirtd goes.
    await lab.hostExec(2, [...VIRSH, 'migrate-setspeed', '--domain', vm.instancename, '--bandwidth', '1']);
    const started = await world.ok('migrateVirtualMachine', { virtualmachineid: vm.id, hostid: hostOfIndex(1).id });
    await until('the incoming domain on the target', () => lab.hostExec(1, [...VIRSH, 'list', '--all', '--name']), (r) => r.stdout.includes(vm.instancename), { within: 60_000, every: 100 });
    const pidFile = join(labInfo.dir, 'h1', 'libvirtd.pid');
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    const sshdPid = Number(readFileSync(join(labInfo.dir, 'h1', 'sshd.pid'), 'utf8').trim());
    process.kill(pid, 'SIGKILL');
    try {
      const job = await runtimeJob(started.jobid);
      expect(job.jobstatus).toBe(2);
      expect(job.jobresult.errortext).toMatch(/Migrating .* failed/);
      const record = (await world.ok('listVirtualMachines', { id: vm.id })).virtualmachine[0];
      expect(record).toMatchObject({ state: 'Running', hostid: hostOfIndex(2).id });
      expect(await allocated()).toEqual(booksBefore);
      expect(await domainsOn(2)).toContain(vm.instancename);
      expect((await waitForGuest(ipOf(vm), 'the guest after the failed migration')).bootId).toBe(before.bootId);
    } finally {
      // libvirtd back on host 1 (in the host's namespaces, as the lab starts it); the half-arrived domain goes with the restart.
      await promisify(execFile)('nsenter', ['-t', String(sshdPid), '-n', '-m', '-u', '--', 'libvirtd', '-d', '-f', '/etc/libvirt/libvirtd.conf', '-p', pidFile]);
      await waitFor('libvirtd on host 1', async () => (await lab.hostExec(1, [...VIRSH, 'uri'], { allowFail: true }).catch(() => ({ code: 1 }))).code === 0, { within: 30_000 });
      await lab.hostExec(2, [...VIRSH, 'migrate-setspeed', '--domain', vm.instancename, '--bandwidth', '8796093022207'], { allowFail: true });
    }
    await until('the target to hold no copy', () => domainsOn(1), (names) => !names.includes(vm.instancename), { within: 30_000 });
  }, patience(240_000));

  it('follows a migration done behind Mold\'s back: the record and the capacity move to where the domain runs', async () => {
    const booksBefore = await allocated();
    const before = await waitForGuest(ipOf(vm), 'the guest');
    const started = movesBegin();
    const key = (await lab.hostExec(2, ['sh', '-c', 'ls /root/.ssh/mold-migration-*'])).stdout.trim().split('\n')[0];
    expect(key).toMatch(/mold-migration-/);
    const uri = `qemu+ssh://root@${hostOfIndex(1).address}/system?keyfile=${key}&no_tty=1`;
    // As an operator would: the VNC server must listen on an address of the target.
    const [from, to] = [hostOfIndex(2).address, hostOfIndex(1).address];
    const xml = `/tmp/mold-oob-${vm.id}.xml`;
    await lab.hostExec(2, [
      'sh',
      '-c',
      `virsh -c qemu:///system dumpxml --migratable --domain ${vm.instancename} | sed 's/${from}/${to}/g' > ${xml} && ` +
        `virsh -c qemu:///system migrate --live --persistent --undefinesource --unsafe --domain ${vm.instancename} --desturi '${uri}' --migrateuri tcp://${to} --xml ${xml}; rc=$?; rm -f ${xml}; exit $rc`,
    ]);
    const followed = await until(
      'the VM record to follow the domain',
      async () => (await world.ok('listVirtualMachines', { id: vm.id })).virtualmachine[0],
      (v) => v.hostid === hostOfIndex(1).id,
      { within: 60_000 },
    );
    expect(followed.state).toBe('Running');
    const books = await allocated();
    const memory = 128 * 1024 * 1024;
    expect(Number(books[hostOfIndex(1).id].memory)).toBe(Number(booksBefore[hostOfIndex(1).id].memory) + memory);
    expect(Number(books[hostOfIndex(2).id].memory)).toBe(Number(booksBefore[hostOfIndex(2).id].memory) - memory);
    const events = (await world.ok('listEvents', { type: 'VM.MIGRATE', listall: true })).event as any[];
    expect(events.some((e) => e.description === 'Out of band VM migration' && e.resourceid === vm.id)).toBe(true);
    await expectBootKept(world, lab, vm, 1, before.bootId, started);
  }, patience(120_000));

  /** The job of an async command already started. */
  async function runtimeJob(jobid: string) {
    return adminClient(runtime.apiUrl, runtime.credentials).waitForJob(jobid, patience(120_000), 200);
  }

  it('runs the guest on exactly one host at the end', async () => {
    const on = [...(await domainsOn(1)), ...(await domainsOn(2))].filter((n) => n === vm.instancename);
    expect(on).toHaveLength(1);
    expect(indexOfHost((await world.ok('listVirtualMachines', { id: vm.id })).virtualmachine[0].hostid)).toBe(1);
  });
});
