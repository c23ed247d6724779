// `npm run bench:evacuate` (root): host maintenance's evacuation next to serial raw migrations. Brings
// up a two-host lab (lab id 17, the maintenance lab test's: do not run both at once), the local
// runtime and a real agent with the lab's bootable guest template, deploys BENCH_GUESTS guests
// (default 3) on host 1 and waits for them to answer. Then: prepareHostForMaintenance of host 1, timed
// from the call to the job done (every guest Running on host 2, host 1 in Maintenance); then each guest
// is moved back by a raw `virsh migrate --live` run on host 2 (as Mold's agent runs it: over qemu+ssh
// with the migration key, the VNC address rewritten), one after the other, each timed. Prints the
// evacuation's wall time, the serial sum of the raw migrations and their ratio (the target:
// at most half; CloudStack migrates a host's VMs one at a time). See bench/README.md.
import { performance } from 'node:perf_hooks';
import { labAt } from '../test/lab/lab.ts';
import { adminClient } from '../test/support/client.ts';
import { waitForGuest } from '../test/support/guest.ts';
import { startRuntime, type RunningRuntime } from '../test/support/runtime.ts';
import { buildVmWorld, type VmWorld } from '../test/support/vm-world.ts';

const GUESTS = Number(process.env.BENCH_GUESTS ?? 3);
const lab = labAt(17);
const VIRSH = 'virsh -c qemu:///system';

function log(line = '') {
  process.stdout.write(`${line}\n`);
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('the evacuation benchmark needs root (it brings up lab hosts)');
  let runtime: RunningRuntime | undefined;
  let world: VmWorld | undefined;
  try {
    const [labInfo, started] = await Promise.all([lab.up(2), startRuntime()]);
    runtime = started;
    world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials), { name: 'benchevacuate', template: 'guest', network: 'untagged' });
    const [one, two] = [1, 2].map((index) => world!.hosts.find((h) => h.index === index)!);
    await world.ok('updateConfiguration', { name: 'host.maintenance.parallel.migrations', value: String(Math.min(40, GUESTS)) });
    const vms: any[] = [];
    for (let i = 1; i <= GUESTS; i++) vms.push((await world.done('deployVirtualMachine', world.deployParams(`evac-${i}`, { hostid: one.id }))).virtualmachine);
    for (const vm of vms) await waitForGuest(vm.nic[0].ipaddress, `guest ${vm.name} to boot`, () => true, 180_000);
    const bootIds = await Promise.all(vms.map(async (vm) => (await waitForGuest(vm.nic[0].ipaddress, vm.name)).bootId));

    const begun = performance.now();
    const host = (await world.done('prepareHostForMaintenance', { id: one.id }, 1_800_000)).host;
    const evacuation = performance.now() - begun;
    if (host.resourcestate !== 'Maintenance') throw new Error(`host 1 is ${host.resourcestate}, not Maintenance`);
    log(`evacuation of ${GUESTS} guests (host.maintenance.parallel.migrations ${Math.min(40, GUESTS)}): ${(evacuation / 1000).toFixed(1)} s`);

    // The raw migrations back, one after the other, on the same pair of hosts.
    await world.done('cancelHostMaintenance', { id: one.id });
    const key = (await lab.hostExec(2, ['sh', '-c', 'ls /root/.ssh/mold-migration-*'])).stdout.trim().split('\n')[0];
    const raw: number[] = [];
    for (const vm of vms) {
      const xml = `/tmp/mold-bench-${vm.id}.xml`;
      const uri = `qemu+ssh://root@${one.address}/system?keyfile=${key}&no_tty=1`;
      const script =
        `${VIRSH} dumpxml --migratable --domain ${vm.instancename} | sed 's/${two.address}/${one.address}/g' > ${xml} && ` +
        `${VIRSH} migrate --live --persistent --undefinesource --unsafe --domain ${vm.instancename} --desturi '${uri}' --migrateuri tcp://${one.address} --xml ${xml}; rc=$?; rm -f ${xml}; exit $rc`;
      const start = performance.now();
      await lab.hostExec(2, ['sh', '-c', script]);
      raw.push(performance.now() - start);
      log(`  raw virsh migrate --live of ${vm.instancename}: ${(raw.at(-1)! / 1000).toFixed(1)} s`);
    }
    const after = await Promise.all(vms.map(async (vm) => (await waitForGuest(vm.nic[0].ipaddress, vm.name)).bootId));
    if (after.some((id, i) => id !== bootIds[i])) throw new Error('a guest rebooted');
    const sum = raw.reduce((a, b) => a + b, 0);
    log();
    log(`  evacuation (API call → job done)     ${(evacuation / 1000).toFixed(1).padStart(7)} s`);
    log(`  sum of ${GUESTS} serial raw migrations      ${(sum / 1000).toFixed(1).padStart(7)} s`);
    log(`  ratio                                 ${(evacuation / sum).toFixed(2).padStart(7)}`);
    log(`target: evacuation at most half the serial sum: ${evacuation <= sum / 2 ? 'met' : 'MISSED'}`);
    if (process.env.BENCH_JSON) log(JSON.stringify({ guests: GUESTS, evacuationMs: evacuation, rawMs: raw }));
  } finally {
    await world?.close();
    await runtime?.stop();
    await lab.down();
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : error}\n`);
  process.exit(1);
});
