// `npm run bench:restore`: reconciliation after a restore of a 1,000-VM inventory. Starts the local
// runtime, seeds a zone with BENCH_HOSTS hosts (default 10) of one agent and BENCH_VMS Running VMs
// (default 1,000) spread over them with their capacity taken, exports it, restores the export into a
// second runtime (as docs/operations.md's runbook does), and then feeds the agent's first report of a
// fleet that moved on: 10 % of the VMs stopped, 10 % moved to the next host, and 5 % more domains the
// inventory does not know. Times export, import and the report that reconciles (from the call to its
// end), then checks that the records converged: every stopped VM Stopped, every moved VM on its new
// host, every unknown domain listed by listUnmanagedInstances. See bench/README.md.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { HostReport } from '../shared/agent/protocol.ts';
import { getAgent } from '../shared/db/agents.ts';
import { reportingAgent } from '../test/support/agent-seed.ts';
import { takeHostCapacity } from '../shared/db/capacity.ts';
import { createHostRecord, type Host } from '../shared/db/hosts.ts';
import { getDomain } from '../shared/db/identity.ts';
import { createCluster, createPod, getZone } from '../shared/db/infrastructure.ts';
import type { VirtualMachine } from '../shared/db/vms.ts';
import { recordReport } from '../shared/host-reports.ts';
import { ApiClient } from '../test/support/client.ts';
import { inventoryOf, inventoryScript, restoreInto } from '../test/support/inventory.ts';
import { seedMember } from '../test/support/members.ts';
import { startRuntime, tempDataDir, useRuntimeEndpoints, type RunningRuntime } from '../test/support/runtime.ts';
import { seedVm } from '../test/support/vm-seed.ts';

process.env.MOLD_LOG_LEVEL ??= 'silent';
const HOSTS = Number(process.env.BENCH_HOSTS ?? 10);
const VMS = Number(process.env.BENCH_VMS ?? 1000);
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

const log = (line = '') => process.stdout.write(`${line}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function timed<T>(what: string, work: () => Promise<T>): Promise<T> {
  const begun = performance.now();
  const result = await work();
  log(`${what}: ${seconds(performance.now() - begun)}`);
  return result;
}

function ok(answer: { status: number; body: any }, command: string) {
  if (answer.status !== 200) throw new Error(`${command}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body[`${command.toLowerCase()}response`];
}

async function main() {
  const dir = tempDataDir();
  let source: RunningRuntime | undefined;
  let restored: RunningRuntime | undefined;
  try {
    source = await startRuntime();
    useRuntimeEndpoints(source);
    const admin = new ApiClient(source.apiUrl, source.credentials);
    const owner = await seedMember(source.apiUrl, `bench-${randomUUID().slice(0, 8)}`, (await getDomain(source.credentials.domainid))!, 'User');
    const zone = ok(await admin.call('createZone', { name: 'bench-restore', networktype: 'Advanced', dns1: '192.0.2.53' }), 'createZone').zone;
    const offering = ok(await admin.call('createServiceOffering', { name: 'bench', displaytext: 'bench', cpunumber: 1, cpuspeed: 100, memory: 64 }), 'createServiceOffering').serviceoffering;
    const pod = await createPod((await getZone(zone.id))!, { name: 'bench-pod', allocationstate: 'Enabled' });
    const cluster = await createCluster(pod, { name: 'bench-cluster', allocationstate: 'Enabled', hypervisor: 'KVM' });
    const agent = await reportingAgent(zone.id, 'bench-agent');
    const hosts: Host[] = [];
    for (let i = 0; i < HOSTS; i++) {
      hosts.push(await createHostRecord(cluster, { name: `bench-h${i}`, ipaddress: `10.81.${i >> 8}.${i & 255}`, agentId: agent.id, lastpinged: new Date().toISOString(), cpunumber: 64, cpuspeed: 3000, memorytotal: 512 * GiB }));
    }
    const vms: VirtualMachine[] = [];
    await timed(`seeded ${VMS} Running VMs on ${HOSTS} hosts`, async () => {
      for (let i = 0; i < VMS; i += 20) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(20, VMS - i) }, async (_, j) => {
            const host = hosts[(i + j) % HOSTS]!;
            const vm = await seedVm(
              { ...owner.account, userId: owner.user.id },
              { zoneId: zone.id, serviceOfferingId: offering.id, templateId: randomUUID(), cpuNumber: 1, cpuSpeed: 100, memoryMiB: 64, state: 'Running', created: '2020-01-01T00:00:00+0000', hostId: host.id, podId: host.podId, clusterId: host.clusterId, lastHostId: host.id },
            );
            await takeHostCapacity(host.id, { vmId: vm.id }, 100, 64 * MiB);
            return vm;
          }),
        );
        vms.push(...batch);
      }
    });

    const file = join(dir, 'backup.jsonl');
    const exported = await timed('export', () => inventoryScript('export', file, inventoryOf(source!)));
    if (exported.code !== 0) throw new Error(exported.stderr);
    log(`  ${exported.stdout.trim()}`);
    const restore = await timed('import and start of the restored runtime', () => restoreInto(source!, file));
    restored = restore.runtime;
    useRuntimeEndpoints(restored);

    // The fleet moved on: every 10th VM stopped, every 10th (offset 5) moved to the next host, and 5 % unknown domains.
    const stopped = vms.filter((_, i) => i % 10 === 0);
    const moved = new Map(vms.filter((_, i) => i % 10 === 5).map((vm) => [vm.id, hosts[(hosts.findIndex((h) => h.id === vm.hostId) + 1) % HOSTS]!]));
    const unknown = Array.from({ length: Math.round(VMS / 20) }, (_, i) => ({ name: `i-2-${900000 + i}-VM`, uuid: randomUUID(), state: 'Running' as const, hostId: hosts[i % HOSTS]!.id }));
    const stoppedIds = new Set(stopped.map((vm) => vm.id));
    const reports: HostReport[] = hosts.map((host) => ({
      hostId: host.id,
      reachable: true,
      libvirtd: true,
      memoryTotalBytes: 512 * GiB,
      memoryFreeBytes: 256 * GiB,
      loadAverage: 1,
      domains: [
        ...vms.filter((vm) => !stoppedIds.has(vm.id) && (moved.get(vm.id) ?? { id: vm.hostId }).id === host.id).map((vm) => ({ name: vm.instanceName, uuid: vm.id, state: 'Running' as const })),
        ...unknown.filter((domain) => domain.hostId === host.id).map(({ hostId: _h, ...domain }) => domain),
      ],
    }));
    await timed(`reconciling report (${HOSTS} hosts, ${reports.reduce((n, r) => n + r.domains.length, 0)} domains: ${stopped.length} VMs stopped, ${moved.size} moved, ${unknown.length} unknown)`, async () => {
      await recordReport((await getAgent(agent.id))!, { version: '0.1.0', hosts: reports });
    });

    const client = new ApiClient(restored.apiUrl, source.credentials);
    const listedVms: any[] = [];
    for (let page = 1; ; page++) {
      const rows = ok(await client.call('listVirtualMachines', { listall: true, page, pagesize: 500, details: 'min' }), 'listVirtualMachines').virtualmachine ?? [];
      listedVms.push(...rows);
      if (rows.length < 500) break;
    }
    const byId = new Map(listedVms.map((vm) => [vm.id, vm]));
    const wrong = [
      ...stopped.filter((vm) => byId.get(vm.id)?.state !== 'Stopped').map((vm) => `${vm.name} not Stopped`),
      ...[...moved].filter(([id, host]) => byId.get(id)?.hostid !== host.id).map(([id]) => `${id} not moved`),
    ];
    const listedUnknown = ok(await client.call('listUnmanagedInstances', { clusterid: cluster.id, pagesize: 500 }), 'listUnmanagedInstances').unmanagedinstance ?? [];
    if (listedUnknown.length !== unknown.length) wrong.push(`${listedUnknown.length} unmanaged listed, ${unknown.length} expected`);
    log(wrong.length === 0 ? 'converged after one report: every stopped VM Stopped, every moved VM on its host, every unknown domain listed' : `NOT converged: ${wrong.slice(0, 10).join('; ')}`);
    if (wrong.length > 0) process.exitCode = 1;
  } finally {
    await restored?.stop();
    await source?.stop();
    for (const made of [dir, restored?.dataDir, source?.dataDir]) if (made) rmSync(made, { recursive: true, force: true });
  }
}

await main();
