// migrateVirtualMachineWithVolume on a two-host lab (lab 27) with a real guest, through the HTTP API and
// a real agent: a second SharedMountPoint pool is another directory of the cluster. The running guest,
// on the first pool and host 1, moves live to host 2 with its root disk on the second pool (libvirt's
// --copy-storage-all --migrate-disks of the root disk only; its data disk stays on the first pool, which
// host 2 reaches): it keeps its boot id and answers throughout, what it wrote on its disk is still
// there, the volume record names the second pool, the first pool's files are gone, and the hosts' and
// pools' allocated figures moved with it. Then it goes back to host 1 with both disks moving crosswise
// (two disks mirrored at once). A move whose copy cannot be made (the target's directory missing)
// fails, naming why, and leaves the guest running on its source with the books as they were.
// Needs root; skipped otherwise.
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labAt, type Lab } from '../lab/lab.ts';
import { adminClient } from '../support/client.ts';
import { guestSsh, waitForGuest, watchGuest } from '../support/guest.ts';
import { expectBootKept, movesBegin } from '../support/moved-guest.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';
import { buildVmWorld, type VmWorld } from '../support/vm-world.ts';
import { patience, sleep, until } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(27);
const VIRSH = ['virsh', '-c', 'qemu:///system'];

let labInfo: Lab;
let runtime: RunningRuntime;
let world: VmWorld;

const domainsOn = async (index: number) => (await lab.hostExec(index, [...VIRSH, 'list', '--all', '--name'])).stdout.split('\n').map((l) => l.trim()).filter(Boolean);

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'migrateVirtualMachineWithVolume on a two-host lab' : 'migrateVirtualMachineWithVolume on a two-host lab (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    [labInfo, runtime] = await Promise.all([lab.up(2), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: '2' } })]);
    world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials), { name: 'motionlab', template: 'guest', network: 'untagged' });
  }, patience(300_000));

  afterAll(async () => {
    await world?.close();
    await runtime?.stop();
    await lab.down();
  }, patience(120_000));

  it('moves a running guest to the other host and its root disk to the other pool, live; a copy that cannot be made changes nothing', async () => {
    const zone = (await world.ok('listZones', { id: world.zoneId })).zone[0];
    const poolA = (await world.ok('listStoragePools', { zoneid: zone.id })).storagepool[0];
    const [host1, host2] = [world.hosts.find((h) => h.index === 1)!, world.hosts.find((h) => h.index === 2)!];
    const key = (await world.ok('createSSHKeyPair', { name: 'motion' })).keypair;
    const auth = { privateKey: key.privatekey as string };
    await until('both hosts to be Up', async () => (await world.ok('listHosts', { zoneid: zone.id, type: 'Routing' })).host ?? [], (hosts: any[]) => hosts.length === 2 && hosts.every((h) => h.state === 'Up'), { within: 60_000 });

    // Deployed while pool A is the only pool: its root disk and its data disk are there.
    const disk = (await world.ok('createDiskOffering', { name: 'motion-1g', displaytext: '1 GB', disksize: 1 })).diskoffering;
    const vm = (await world.done('deployVirtualMachine', world.deployParams('motion-1', { keypair: key.name, hostid: host1.id, diskofferingid: disk.id }))).virtualmachine;
    const ip = vm.nic[0].ipaddress as string;
    const booted = await waitForGuest(ip, 'the guest to boot');
    expect(await guestSsh(ip, auth, 'echo "written before the move" > /data/kept && sync && cat /data/kept')).toMatchObject({ code: 0, stdout: 'written before the move\n' });

    const dirB = join(labInfo.dir, 'primary-b');
    mkdirSync(dirB, { mode: 0o755 });
    const poolB = (
      await world.ok('createStoragePool', { name: 'pool-b', zoneid: zone.id, podid: poolA.podid, clusterid: poolA.clusterid, url: `SharedMountPoint://${dirB}`, capacitybytes: 100 * 1024 ** 3 })
    ).storagepool;
    const root = (await world.ok('listVolumes', { virtualmachineid: vm.id, type: 'ROOT', listall: true })).volume[0];
    expect(root.storageid).toBe(poolA.id);
    const dirA = labInfo.primaryDir;
    const fileA = join(dirA, `${root.id}.qcow2`);
    const fileB = join(dirB, `${root.id}.qcow2`);
    expect(existsSync(fileA)).toBe(true);
    // The data disk is left out of migrateto: host 2 reaches pool A, so it stays there (shared, not copied).
    const data = (await world.ok('listVolumes', { virtualmachineid: vm.id, type: 'DATADISK', listall: true })).volume[0];
    const dataFile = join(dirA, `${data.id}.qcow2`);

    const books = async () => {
      const pools = Object.fromEntries(((await world.ok('listStoragePools', { zoneid: zone.id })).storagepool as any[]).map((p) => [p.id, Number(p.disksizeallocated)]));
      const hosts = Object.fromEntries(((await world.ok('listHosts', { zoneid: zone.id, type: 'Routing' })).host as any[]).map((h) => [h.id, Number(h.memoryallocated)]));
      return { pools, hosts };
    };
    const move = { virtualmachineid: vm.id, hostid: host2.id, 'migrateto[0].volume': root.id, 'migrateto[0].pool': poolB.id };

    // Refused before anything happens: nothing to move.
    const admin = adminClient(runtime.apiUrl, runtime.credentials);
    const nothing = await admin.call('migrateVirtualMachineWithVolume', { virtualmachineid: vm.id, hostid: host2.id, 'migrateto[0].volume': root.id, 'migrateto[0].pool': poolA.id });
    expect(nothing.status).toBe(431);
    expect(nothing.body.migratevirtualmachinewithvolumeresponse.errortext).toMatch(/doesn't involve migrating the volumes$/);

    // Pool B's directory is missing on the target: the agent says so; the guest stays on host 1, the books as they were.
    const before = await books();
    renameSync(dirB, `${dirB}.away`);
    try {
      const failed = await world.job('migrateVirtualMachineWithVolume', move);
      expect(failed.jobstatus).toBe(2);
      expect(failed.jobresult.errortext).toMatch(/^Preparing root@\S+ to receive \S+ failed: NoTargetDirectory/);
    } finally {
      renameSync(`${dirB}.away`, dirB);
    }
    expect(await books()).toEqual(before);
    expect((await world.ok('listVirtualMachines', { id: vm.id })).virtualmachine[0]).toMatchObject({ state: 'Running', hostid: host1.id });
    expect((await world.ok('listVolumes', { id: root.id, listall: true })).volume[0].storageid).toBe(poolA.id);
    expect(await domainsOn(1)).toContain(vm.instancename);

    // The move, watched from outside the guest.
    const started = movesBegin();
    const watch = watchGuest(ip);
    await sleep(1000);
    const moved = (await world.done('migrateVirtualMachineWithVolume', move, patience(300_000))).virtualmachine;
    await sleep(1000);
    const seen = await watch.end();
    expect(moved).toMatchObject({ id: vm.id, state: 'Running', hostid: host2.id });
    expect(seen.answers.length).toBeGreaterThan(2);
    expect(new Set(seen.answers.map((s) => s.bootId))).toEqual(new Set([booted.bootId]));
    expect(seen.longest, `failed polls: ${seen.failures.join(', ')}`).toBeLessThanOrEqual(1);
    expect(await domainsOn(2)).toContain(vm.instancename);
    expect(await domainsOn(1)).not.toContain(vm.instancename);

    // The guest's disk is the file on pool B, whole (no template behind it); pool A keeps nothing of it.
    const disks = (await lab.hostExec(2, [...VIRSH, 'domblklist', '--domain', vm.instancename, '--details'])).stdout;
    expect(disks).toContain(fileB);
    expect(disks).toContain(join(dirB, `${vm.id}-config.iso`));
    expect(disks).toContain(dataFile);
    await until('pool A to be emptied of the guest', async () => readdirSync(dirA).filter((f) => f.startsWith(root.id) || f.startsWith(vm.id)), (left: string[]) => left.length === 0, { within: 60_000 });
    expect(existsSync(dataFile)).toBe(true);
    expect((await world.ok('listVolumes', { id: data.id, listall: true })).volume[0].storageid).toBe(poolA.id);
    expect(existsSync(fileB)).toBe(true);
    expect((await world.ok('listVolumes', { id: root.id, listall: true })).volume[0]).toMatchObject({ storageid: poolB.id, storage: poolB.name, state: 'Ready' });
    const after = await books();
    expect(after.pools[poolA.id]).toBe(before.pools[poolA.id] - Number(root.size));
    expect(after.pools[poolB.id]).toBe(before.pools[poolB.id] + Number(root.size));
    const memory = Number(vm.memory) * 1024 * 1024;
    expect(after.hosts[host1.id]).toBe(before.hosts[host1.id] - memory);
    expect(after.hosts[host2.id]).toBe(before.hosts[host2.id] + memory);

    // Same boot, same data, and it keeps writing on the new pool.
    await expectBootKept(world, lab, vm, 2, booted.bootId, started);
    expect(await guestSsh(ip, auth, 'cat /data/kept && echo "written after the move" > /data/later && sync && cat /data/later')).toMatchObject({
      code: 0,
      stdout: 'written before the move\nwritten after the move\n',
    });

    // And back to host 1 with both disks moving, crosswise (root B → A, data A → B): two disks mirrored at once.
    const back = (
      await world.done(
        'migrateVirtualMachineWithVolume',
        { virtualmachineid: vm.id, hostid: host1.id, 'migrateto[0].volume': root.id, 'migrateto[0].pool': poolA.id, 'migrateto[1].volume': data.id, 'migrateto[1].pool': poolB.id },
        patience(300_000),
      )
    ).virtualmachine;
    expect(back).toMatchObject({ state: 'Running', hostid: host1.id });
    const disksBack = (await lab.hostExec(1, [...VIRSH, 'domblklist', '--domain', vm.instancename, '--details'])).stdout;
    expect(disksBack).toContain(fileA);
    expect(disksBack).toContain(join(dirB, `${data.id}.qcow2`));
    await until('the old files to be removed', async () => [existsSync(fileB), existsSync(dataFile)], (left: boolean[]) => !left.includes(true), { within: 60_000 });
    await expectBootKept(world, lab, vm, 1, booted.bootId, started);
    expect(await guestSsh(ip, auth, 'cat /data/kept /data/later')).toMatchObject({ code: 0, stdout: 'written before the move\nwritten after the move\n' });
    const last = await books();
    expect(last.pools[poolA.id]).toBe(before.pools[poolA.id] - Number(data.size));
    expect(last.pools[poolB.id]).toBe(before.pools[poolB.id] + Number(data.size));

    await world.done('destroyVirtualMachine', { id: vm.id, expunge: true });
    expect(readdirSync(dirB).filter((f) => f.startsWith(root.id) || f.startsWith(vm.id))).toEqual([]);
  }, patience(600_000));
});
