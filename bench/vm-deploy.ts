// `npm run bench:deploy` (root): how much Mold adds to starting a VM. Brings up a one-host lab (lab id
// 11), the local runtime and a real agent, then 20 times: deployVirtualMachine → job done (Running)
// through the HTTP API, and, on the same host in the same run, raw `virsh define` + `virsh start` of an
// equal domain (the deployed VM's own XML under another name, UUID and MAC, with its own overlay). Prints
// p50 and p95 of both and the difference. See bench/README.md.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { labAt } from '../test/lab/lab.ts';
import { adminClient } from '../test/support/client.ts';
import { startRuntime, type RunningRuntime } from '../test/support/runtime.ts';
import { buildVmWorld, type VmWorld } from '../test/support/vm-world.ts';
import { percentile } from './stats.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const TARGET_EXTRA_MS = 1000;
const lab = labAt(11);

function log(line = '') {
  process.stdout.write(`${line}\n`);
}

async function virsh(index: number, ...args: string[]) {
  return lab.hostExec(index, ['virsh', '-c', 'qemu:///system', ...args]);
}

/** The deployed domain's XML as an equal, independent domain: new name, UUID, MAC and overlay. */
function rawTwin(xml: string, name: string, overlay: string): string {
  return xml
    .replace(/<name>[^<]+<\/name>/, `<name>${name}</name>`)
    .replace(/<uuid>[^<]+<\/uuid>/, `<uuid>${randomUUID()}</uuid>`)
    .replace(/<mac address='[^']+'\/>/g, `<mac address='02:00:00:${[0, 0, 0].map(() => Math.floor(Math.random() * 256).toString(16).padStart(2, '0')).join(':')}'/>`)
    .replace(/(<disk type='file' device='disk'>[\s\S]*?<source file=')[^']+(')/, `$1${overlay}$2`)
    .replace(/<target dev='vnet\d+'\/>/g, '')
    .replace(/ id='\d+'/, '');
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('the deploy benchmark needs root (it brings up a lab host)');
  let runtime: RunningRuntime | undefined;
  let world: VmWorld | undefined;
  try {
    const [labInfo, started] = await Promise.all([lab.up(1), startRuntime()]);
    runtime = started;
    world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials), { name: 'bench' });
    const template = `${labInfo.primaryDir}/${world.templateId}.qcow2`;

    const mold: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i <= RUNS; i++) {
      const begun = performance.now();
      const vm = (await world.done('deployVirtualMachine', world.deployParams(`bench-${i}`))).virtualmachine;
      const moldMs = performance.now() - begun;

      const name = `raw-${i}`;
      const overlay = `${labInfo.primaryDir}/${name}.qcow2`;
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', template, overlay]);
      const xmlFile = `${labInfo.primaryDir}/${name}.xml`;
      execFileSync('sh', ['-c', `cat > ${xmlFile}`], { input: rawTwin((await virsh(1, 'dumpxml', vm.instancename)).stdout, name, overlay) });
      const rawBegun = performance.now();
      await virsh(1, 'define', xmlFile);
      await virsh(1, 'start', name);
      const rawMs = performance.now() - rawBegun;

      // The first round warms both paths up (libvirt's caches, the agent's connection) and is not counted.
      if (i > 0) {
        mold.push(moldMs);
        raw.push(rawMs);
      }
      await virsh(1, 'destroy', name);
      await virsh(1, 'undefine', name);
      rmSync(overlay, { force: true });
      rmSync(xmlFile, { force: true });
      await world.done('destroyVirtualMachine', { id: vm.id, expunge: true });
    }
    mold.sort((a, b) => a - b);
    raw.sort((a, b) => a - b);
    const figures = {
      mold: { p50: percentile(mold, 50), p95: percentile(mold, 95) },
      raw: { p50: percentile(raw, 50), p95: percentile(raw, 95) },
    };
    const extra = figures.mold.p50 - figures.raw.p50;
    log(`deployVirtualMachine → Running (API, Step Functions, agent, SSH, libvirt; client polling every 20 ms) vs raw virsh define + start, ${RUNS} runs each`);
    log();
    log('                         p50 ms   p95 ms');
    log(`  deployVirtualMachine ${figures.mold.p50.toFixed(0).padStart(8)} ${figures.mold.p95.toFixed(0).padStart(8)}`);
    log(`  virsh define + start ${figures.raw.p50.toFixed(0).padStart(8)} ${figures.raw.p95.toFixed(0).padStart(8)}`);
    log(`  Mold adds (p50)      ${extra.toFixed(0).padStart(8)}          ratio ${(figures.mold.p50 / figures.raw.p50).toFixed(2)}`);
    log();
    log(`target: at most ${TARGET_EXTRA_MS} ms above raw: ${extra <= TARGET_EXTRA_MS ? 'met' : 'MISSED'}`);
    if (process.env.BENCH_JSON) log(JSON.stringify({ runs: RUNS, ...figures, extraP50: extra }));
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
