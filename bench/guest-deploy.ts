// `npm run bench:guest` (root): how long until a deployed VM is of use. Brings up a one-host lab (lab
// id 13), the local runtime and a real agent, with the lab's bootable guest template on an untagged
// network (test/support/vm-world.ts), then 10 times: deployVirtualMachine → job done (Running), and on
// to the guest answering its status page at its IPAM address; then the VM is expunged. Prints the
// template's size and p50/p95 of deploy → Running, deploy → answers, and Running → answers (the boot:
// firmware, boot loader, kernel, the guest's boot script) next to the guest's own uptime when it first
// answered. See bench/README.md.
import { statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { guestImage, labAt } from '../test/lab/lab.ts';
import { adminClient } from '../test/support/client.ts';
import { guestStatus, type GuestStatus } from '../test/support/guest.ts';
import { startRuntime, type RunningRuntime } from '../test/support/runtime.ts';
import { buildVmWorld, type VmWorld } from '../test/support/vm-world.ts';
import { percentile } from './stats.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const PROBE_EVERY_MS = 100;
const GIVE_UP_MS = 180_000;
const BUDGET_MS = 20_000;
const lab = labAt(13);

function log(line = '') {
  process.stdout.write(`${line}\n`);
}

/**
 * The first answer of the guest at `ip`: a probe starts every PROBE_EVERY_MS without waiting for the
 * ones before (an address that does not answer ARP yet holds a probe for seconds).
 */
function firstAnswer(ip: string): Promise<GuestStatus> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setInterval(() => {
      void guestStatus(ip).then((s) => {
        if (settled || typeof s === 'string') return;
        settled = true;
        clearInterval(timer);
        clearTimeout(limit);
        resolve(s);
      });
    }, PROBE_EVERY_MS);
    const limit = setTimeout(() => {
      settled = true;
      clearInterval(timer);
      reject(new Error(`the guest at ${ip} did not answer within ${GIVE_UP_MS / 1000} s`));
    }, GIVE_UP_MS);
  });
}

const row = (label: string, values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `  ${label.padEnd(30)} ${(percentile(sorted, 50) / 1000).toFixed(1).padStart(7)} ${(percentile(sorted, 95) / 1000).toFixed(1).padStart(7)}`;
};

async function main() {
  if (process.getuid?.() !== 0) throw new Error('the guest deploy benchmark needs root (it brings up a lab host)');
  let runtime: RunningRuntime | undefined;
  let world: VmWorld | undefined;
  try {
    const image = await guestImage();
    const [labInfo, started] = await Promise.all([lab.up(1), startRuntime()]);
    runtime = started;
    world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials), { name: 'benchguest', template: 'guest', network: 'untagged' });

    const toRunning: number[] = [];
    const toAnswer: number[] = [];
    const boot: number[] = [];
    const uptime: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      const begun = performance.now();
      const vm = (await world.done('deployVirtualMachine', world.deployParams(`guest-${i}`))).virtualmachine;
      const running = performance.now();
      const status = await firstAnswer(vm.nic[0].ipaddress);
      const answered = performance.now();
      if (status.hostname !== vm.name) throw new Error(`the guest at ${vm.nic[0].ipaddress} says it is ${status.hostname}, not ${vm.name}`);
      toRunning.push(running - begun);
      toAnswer.push(answered - begun);
      boot.push(answered - running);
      uptime.push(status.uptime * 1000);
      log(`  run ${i}: Running after ${((running - begun) / 1000).toFixed(1)} s, answered after ${((answered - begun) / 1000).toFixed(1)} s (guest uptime ${status.uptime.toFixed(1)} s)`);
      await world.done('destroyVirtualMachine', { id: vm.id, expunge: true });
    }
    log();
    log(`guest template ${image}: ${(statSync(image).size / 2 ** 20).toFixed(1)} MiB`);
    log(`deployVirtualMachine of the guest template on one lab host (qemu software emulation), ${RUNS} runs`);
    log();
    log(`  ${''.padEnd(30)}   p50 s   p95 s`);
    log(row('deploy → Running', toRunning));
    log(row('deploy → guest answers', toAnswer));
    log(row('Running → guest answers', boot));
    log(row('guest uptime at first answer', uptime));
    log();
    const p95 = percentile([...boot].sort((a, b) => a - b), 95);
    log(`budget: Running → answers under ${BUDGET_MS / 1000} s (p95): ${p95 < BUDGET_MS ? 'met' : 'MISSED'}`);
    if (process.env.BENCH_JSON) log(JSON.stringify({ runs: RUNS, imageBytes: statSync(image).size, toRunning, toAnswer, boot, uptime }));
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
