import { describe, expect, it } from 'vitest';
import type { DomainUsage } from '../../shared/agent/protocol.ts';
import { advanceUsage, cpuPercent, pointFields, usageBetween, vmStatsFields, type VmUsage } from '../../shared/vm-stats.ts';

const reading = (at: number, counters: Partial<DomainUsage> = {}): DomainUsage => ({
  at,
  cpuTimeNs: 0,
  vcpus: 2,
  netRxBytes: 0,
  netTxBytes: 0,
  diskReadBytes: 0,
  diskWriteBytes: 0,
  diskReadReqs: 0,
  diskWriteReqs: 0,
  ...counters,
});

/** Feeds readings in order, returning the figures after each and the points they completed. */
function feed(readings: DomainUsage[], intervalMs: number) {
  let usage: VmUsage | undefined;
  const points = [];
  for (const r of readings) {
    const next = advanceUsage(usage, r, intervalMs);
    if (!next) continue;
    usage = next.usage;
    if (next.point) points.push(next.point);
  }
  return { usage: usage!, points };
}

describe('VM usage figures', () => {
  it('turns two readings into what happened between them', () => {
    const delta = usageBetween(reading(1_000, { cpuTimeNs: 1e9, netRxBytes: 100 }), reading(11_000, { cpuTimeNs: 6e9, netRxBytes: 300 }));
    expect(delta).toMatchObject({ elapsedMs: 10_000, cpuTimeNs: 5e9, vcpus: 2, netRxBytes: 200 });
    expect(cpuPercent(delta!)).toBe(25);
    // A counter that went down is a new qemu: all it counted is new.
    expect(usageBetween(reading(1_000, { diskWriteBytes: 5000 }), reading(2_000, { diskWriteBytes: 70 }))!.diskWriteBytes).toBe(70);
    // A reading not after the last one is no news.
    expect(usageBetween(reading(2_000), reading(2_000))).toBeUndefined();
    expect(usageBetween(reading(2_000), reading(1_000))).toBeUndefined();
  });

  it('bounds CPU at 100 % of the vCPUs and calls no time 0 %', () => {
    expect(cpuPercent({ elapsedMs: 1_000, cpuTimeNs: 5e9, vcpus: 2 })).toBe(100);
    expect(cpuPercent({ elapsedMs: 0, cpuTimeNs: 5e9, vcpus: 2 })).toBe(0);
  });

  it('sums traffic and I/O over the life of the VM, across a restart of its qemu', () => {
    const { usage } = feed(
      [reading(0, { netTxBytes: 1024 }), reading(10_000, { netTxBytes: 3072, diskReadReqs: 5 }), reading(20_000, { netTxBytes: 2048, diskReadReqs: 1 })],
      60_000,
    );
    // The first reading is the base: 2048 then, after the restart, 2048 more.
    expect(usage.totals.netTxBytes).toBe(4096);
    expect(usage.totals.diskReadReqs).toBe(6);
    expect(vmStatsFields(usage)).toMatchObject({ networkkbswrite: 4, diskioread: 6, memoryintfreekbs: -1 });
  });

  it('completes a history point once per interval, with the CPU and traffic of that interval', () => {
    const { usage, points } = feed(
      [
        reading(0),
        reading(30_000, { cpuTimeNs: 15e9, diskWriteBytes: 2048, diskWriteReqs: 2 }),
        reading(60_000, { cpuTimeNs: 60e9, diskWriteBytes: 4096, diskWriteReqs: 4, memoryKiB: 1024, memoryUnusedKiB: 256, memoryMaxKiB: 2048 }),
        reading(90_000, { cpuTimeNs: 60e9 }),
      ],
      60_000,
    );
    expect(points).toEqual([
      {
        at: 60_000,
        cpuUtilization: 50,
        networkReadKBs: 0,
        networkWriteKBs: 0,
        diskReadKBs: 0,
        diskWriteKBs: 4,
        diskReadIOs: 0,
        diskWriteIOs: 4,
        memoryKBs: 1024,
        intFreeMemoryKBs: 256,
        targetMemoryKBs: 2048,
      },
    ]);
    // The last 30 s: no CPU used, and they wait for the next point.
    expect(usage.cpuUtilization).toBe(0);
    expect(usage.pendingSince).toBe(60_000);
    expect(usage.pending.elapsedMs).toBe(30_000);
  });

  it('has no CPU figure after a single reading, and ignores a reading older than the last', () => {
    const first = advanceUsage(undefined, reading(5_000, { cpuTimeNs: 1e9 }), 60_000)!;
    expect(first.usage.cpuUtilization).toBeUndefined();
    expect(vmStatsFields(first.usage)).not.toHaveProperty('cpuused');
    expect(advanceUsage(first.usage, reading(4_000), 60_000)).toBeUndefined();
  });

  it("answers upstream's StatsResponse fields for a point", () => {
    const fields = pointFields(
      { at: 0, cpuUtilization: 12.345, networkReadKBs: 1536, networkWriteKBs: 0, diskReadKBs: 1, diskWriteKBs: 2, diskReadIOs: 3, diskWriteIOs: 4, memoryKBs: 100, intFreeMemoryKBs: 100 },
      '2026-12-03T07:00:00+0000',
    );
    expect(fields).toEqual({
      timestamp: '2026-12-03T07:00:00+0000',
      cpuused: '12.35%',
      diskioread: 3,
      diskiowrite: 4,
      diskiopstotal: 7,
      diskkbsread: 1,
      diskkbswrite: 2,
      // Free memory the guest reports as no less than it has: upstream's -1.
      memoryintfreekbs: -1,
      memorykbs: 100,
      networkkbsread: 1536,
      networkkbswrite: 0,
      networkread: '1.50 MiB',
      networkwrite: '0.00 MiB',
    });
  });
});
