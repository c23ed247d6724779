// `npm run bench:ha` (root): host power loss → the HA guest answering from another host. Brings up the
// HA lab tests' two-host lab (test/support/ha-lab.ts; lab id 32) with BMCs, the local runtime (sweeps
// every 2 s) and a real agent, with ping.interval 10 s, ping.timeout 2.5 and kvm.ha.fence.timeout 10 s
// (the settings an operator tunes for fast HA; the defaults, 60 s each, are upstream's), out-of-band
// management on both hosts and one HA guest (offering offerha) of the lab's bootable template. Then BENCH_TRIALS times (default 5) for each
// way a host can die, in turn:
// - power off: the host goes off and its BMC stays (a crashed server): Mold fences it through the BMC;
// - total power loss: the BMC goes too: Mold proves the host dead by its storage heartbeat.
// The clock starts at the power cut, and each phase ends when the API first shows it (polled every
// 250 ms): detect (the host Down), fence (the guest's record leaves the dead host: fenced or proven
// dead), restart (Running on the other host), answer (the guest's status page answers with a new boot
// id). The dead host is then powered on through Mold (its BMC restarted first after a total loss) and
// waited Up; the next trial cuts the host the guest now runs on. Target: p95 ≤ 60 s. See bench/README.md.
import { performance } from 'node:perf_hooks';
import { STORAGE_HEARTBEAT_SECONDS } from '../shared/storage-heartbeat.ts';
import { labAt } from '../test/lab/lab.ts';
import { waitForGuest } from '../test/support/guest.ts';
import { FENCE_TIMEOUT, PING_INTERVAL, PING_TIMEOUT, startHaLab, type HaLab } from '../test/support/ha-lab.ts';
import { until } from '../test/support/wait.ts';
import { percentile } from './stats.ts';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 5);
const TARGET_SECONDS = 60;
const lab = labAt(32);

const log = (line = '') => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (ms: number) => (ms / 1000).toFixed(1).padStart(6);

type Way = 'power off' | 'total power loss';
interface Trial {
  way: Way;
  detect: number;
  fence: number;
  restart: number;
  answer: number;
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('the HA benchmark needs root (it brings up lab hosts)');
  let ha: HaLab | undefined;
  try {
    ha = await startHaLab(lab, 'benchha');
    const { world: w, labInfo } = ha;
    const hostState = (id: string) => ha!.listedHost(w.hosts.find((h) => h.id === id)!.index);
    const vmState = (id: string) => ha!.listedVm(id);
    const bothUp = () => until('both hosts Up', async () => (await w.ok('listHosts', { zoneid: w.zoneId })).host as any[], (hs) => hs.length === 2 && hs.every((h) => h.state === 'Up'), { within: 120_000 });
    const vm = (await w.done('deployVirtualMachine', w.deployParams('bench-ha', { serviceofferingid: ha.haOffering, hostid: ha.hostOfIndex(1).id }))).virtualmachine;
    const ip = vm.nic[0].ipaddress as string;
    let bootId = (await waitForGuest(ip, 'the HA guest to boot', () => true, 180_000)).bootId;
    log(`HA guest ${vm.name} on the lab's hosts; ping.interval ${PING_INTERVAL} s, ping.timeout ${PING_TIMEOUT}, kvm.ha.fence.timeout ${FENCE_TIMEOUT} s, storage heartbeat every ${STORAGE_HEARTBEAT_SECONDS} s`);
    log('');
    log('trial  way                  detect   fence  restart  answer   (s from the power cut)');

    const trials: Trial[] = [];
    for (let i = 0; i < 2 * TRIALS; i++) {
      const way: Way = i % 2 === 0 ? 'power off' : 'total power loss';
      const victimId = (await vmState(vm.id)).hostid as string;
      const victim = w.hosts.find((h) => h.id === victimId)!;
      const cut = performance.now();
      if (way === 'power off') await lab.powerOff(victim.index);
      else await lab.powerLoss(victim.index);
      const marks: Partial<Record<keyof Omit<Trial, 'way'>, number>> = {};
      while (marks.restart === undefined) {
        const [host, guest] = await Promise.all([hostState(victim.id), vmState(vm.id)]);
        const at = performance.now() - cut;
        if (marks.detect === undefined && host.state === 'Down') marks.detect = at;
        if (marks.fence === undefined && !(guest.state === 'Running' && guest.hostid === victim.id)) marks.fence = at;
        if (guest.state === 'Running' && guest.hostid !== victim.id) marks.restart = at;
        if (at > 600_000) throw new Error(`trial ${i + 1}: the guest did not run elsewhere within 10 minutes (host ${host.state}, guest ${guest.state} on ${guest.hostid})`);
        await sleep(250);
      }
      const fresh = await waitForGuest(ip, 'the HA guest to answer from its new host', (s) => s.bootId !== bootId, 180_000);
      bootId = fresh.bootId;
      const trial: Trial = { way, detect: marks.detect ?? marks.fence!, fence: marks.fence!, restart: marks.restart, answer: performance.now() - cut };
      trials.push(trial);
      log(`${String(i + 1).padStart(5)}  ${way.padEnd(18)} ${seconds(trial.detect)}  ${seconds(trial.fence)}  ${seconds(trial.restart)}  ${seconds(trial.answer)}`);
      // Back: the BMC (after a total loss), then the host through Mold, then both hosts Up.
      if (way === 'total power loss') await lab.startBmc(victim.index, labInfo.bmcPassword);
      await w.done('issueOutOfBandManagementPowerAction', { hostid: victim.id, action: 'ON' });
      await bothUp();
    }

    log('');
    log('phase (s from the power cut)   power off: p50    p95   total power loss: p50    p95');
    for (const phase of ['detect', 'fence', 'restart', 'answer'] as const) {
      const figures = (['power off', 'total power loss'] as const).map((way) => {
        const sorted = trials.filter((t) => t.way === way).map((t) => t[phase]).sort((a, b) => a - b);
        return `${seconds(percentile(sorted, 50))} ${seconds(percentile(sorted, 95))}`;
      });
      log(`${phase.padEnd(30)} ${figures[0]}              ${figures[1]}`);
    }
    const all = trials.map((t) => t.answer).sort((a, b) => a - b);
    log('');
    log(`answering again, all ${trials.length} trials: p50 ${seconds(percentile(all, 50)).trim()} s, p95 ${seconds(percentile(all, 95)).trim()} s (target: p95 ≤ ${TARGET_SECONDS} s)`);
  } finally {
    await ha?.close();
    await lab.down();
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
