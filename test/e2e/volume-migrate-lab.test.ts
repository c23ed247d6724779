// migrateVolume on a two-host lab (lab 26) with a real guest, through the HTTP API and a real agent:
// a second SharedMountPoint pool is another directory every host sees. A copy that cannot be made (the
// target's directory missing) fails, naming why, and leaves the volume, the pools' books and the VM
// as they were; then the stopped guest's root disk moves to the second pool for real (qemu-img
// convert: a whole qcow2 without the template behind it), its old file and config drive are gone,
// and the guest boots from the new pool with what it had written to its disk. Needs root; skipped otherwise.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labAt, type Lab } from '../lab/lab.ts';
import { adminClient } from '../support/client.ts';
import { guestSsh, waitForGuest } from '../support/guest.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';
import { buildVmWorld, type VmWorld } from '../support/vm-world.ts';
import { patience, until } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(26);

let labInfo: Lab;
let runtime: RunningRuntime;
let world: VmWorld;

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'migrateVolume on a two-host lab' : 'migrateVolume on a two-host lab (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    [labInfo, runtime] = await Promise.all([lab.up(2), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: '2' } })]);
    world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials), { name: 'migratelab', template: 'guest', network: 'untagged' });
  }, patience(300_000));

  afterAll(async () => {
    await world?.close();
    await runtime?.stop();
    await lab.down();
  }, patience(120_000));

  it('moves a stopped guest\'s root disk to another pool; the guest boots from it with its data; a copy that cannot be made changes nothing', async () => {
    const secondDir = join(labInfo.dir, 'primary2');
    mkdirSync(secondDir, { mode: 0o755 });
    const zone = (await world.ok('listZones', { id: world.zoneId })).zone[0];
    const primary = (await world.ok('listStoragePools', { zoneid: zone.id })).storagepool[0];
    const second = (
      await world.ok('createStoragePool', { name: 'second', zoneid: zone.id, podid: primary.podid, clusterid: primary.clusterid, url: `SharedMountPoint://${secondDir}`, capacitybytes: 100 * 1024 ** 3 })
    ).storagepool;
    const key = (await world.ok('createSSHKeyPair', { name: 'mover' })).keypair;
    const auth = { privateKey: key.privatekey as string };

    // On a loaded machine the agent's reports can lag behind ping.interval: the hosts are Up again first.
    await until('both hosts to be Up', async () => (await world.ok('listHosts', { zoneid: zone.id, type: 'Routing' })).host ?? [], (hosts: any[]) => hosts.length === 2 && hosts.every((h) => h.state === 'Up'), { within: 60_000 });
    let vm = (await world.done('deployVirtualMachine', world.deployParams('mover-1', { keypair: key.name }))).virtualmachine;
    const ip = vm.nic[0].ipaddress as string;
    const booted = await waitForGuest(ip, 'the guest to boot');
    expect(await guestSsh(ip, auth, 'echo "written on the first pool" > /data/kept && sync && cat /data/kept')).toMatchObject({ code: 0, stdout: 'written on the first pool\n' });
    await world.done('stopVirtualMachine', { id: vm.id });

    const root = (await world.ok('listVolumes', { virtualmachineid: vm.id, type: 'ROOT', listall: true })).volume[0];
    // The root disk sits on whichever pool deploy chose; it moves to the other.
    const [fromPool, toPool] = root.storageid === primary.id ? [primary, second] : [second, primary];
    const dirOf = (pool: any) => (pool.id === second.id ? secondDir : labInfo.primaryDir);
    const [fromDir, toDir] = [dirOf(fromPool), dirOf(toPool)];
    const source = join(fromDir, `${root.id}.qcow2`);
    const pools = async () => Object.fromEntries(((await world.ok('listStoragePools', { zoneid: zone.id })).storagepool as any[]).map((p) => [p.id, p.disksizeallocated]));
    const before = await pools();
    expect(existsSync(source)).toBe(true);
    const qemuInfo = (file: string) => JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', file], { encoding: 'utf8' }));
    const sourceInfo = qemuInfo(source);
    // An overlay on the template before the move.
    expect(sourceInfo['backing-filename']).toBeDefined();

    // The target's directory is missing (its mount gone): the host says so, nothing changes.
    renameSync(toDir, `${toDir}.away`);
    try {
      const failed = await world.job('migrateVolume', { volumeid: root.id, storageid: toPool.id });
      expect(failed.jobstatus).toBe(2);
      const hosts = world.hosts.map((h) => h.address.replace(/\./g, '\\.')).join('|');
      expect(failed.jobresult.errortext).toMatch(new RegExp(`^The target pool's directory ${toDir} does not exist on root@(${hosts}) \\(is the pool mounted there\\?\\)$`));
    } finally {
      renameSync(`${toDir}.away`, toDir);
    }
    expect(await pools()).toEqual(before);
    expect((await world.ok('listVolumes', { id: root.id, listall: true })).volume[0]).toMatchObject({ storageid: fromPool.id, state: 'Ready' });
    expect((await world.ok('listVirtualMachines', { id: vm.id })).virtualmachine[0].state).toBe('Stopped');
    expect(existsSync(source)).toBe(true);

    const moved = (await world.done('migrateVolume', { volumeid: root.id, storageid: toPool.id })).volume;
    expect(moved).toMatchObject({ id: root.id, storageid: toPool.id, storage: toPool.name, state: 'Ready', virtualmachineid: vm.id });
    const after = await pools();
    expect(after[fromPool.id]).toBe(before[fromPool.id] - root.size);
    expect(after[toPool.id]).toBe(before[toPool.id] + root.size);
    // The copy is whole (no template behind it); the old disk and config drive are gone.
    const target = join(toDir, `${root.id}.qcow2`);
    const info = qemuInfo(target);
    expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': sourceInfo['virtual-size'] });
    expect(info['backing-filename']).toBeUndefined();
    expect(readdirSync(fromDir).filter((f) => f.startsWith(root.id) || f.startsWith(vm.id))).toEqual([]);

    vm = (await world.done('startVirtualMachine', { id: vm.id })).virtualmachine;
    expect(vm.state).toBe('Running');
    await waitForGuest(ip, 'the guest to boot from the other pool', (s) => s.bootId !== booted.bootId);
    expect(await guestSsh(ip, auth, 'cat /data/kept')).toMatchObject({ code: 0, stdout: 'written on the first pool\n' });
    // The running domain's disk is the one on the new pool.
    const host = world.hosts.find((h) => h.id === vm.hostid)!;
    const disks = (await lab.hostExec(host.index, ['virsh', '-c', 'qemu:///system', 'domblklist', '--domain', vm.instancename, '--details'])).stdout;
    expect(disks).toContain(target);
    expect(existsSync(join(toDir, `${vm.id}-config.iso`))).toBe(true);

    await world.done('destroyVirtualMachine', { id: vm.id, expunge: true });
    expect(readdirSync(toDir).filter((f) => f.startsWith(root.id) || f.startsWith(vm.id))).toEqual([]);
  }, patience(400_000));
});
