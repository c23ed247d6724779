// A VM's usage figures from its domain's counters, as pure functions (the records are
// shared/db/vm-stats.ts; the agent reads the counters with `virsh domstats`). libvirt's counters are
// cumulative since the domain's qemu started, so figures come from two readings: CPU as a share of the
// VM's vCPUs over the time between them, traffic and I/O as what happened between them. As upstream with
// vm.stats.increment.metrics on (its default), a VM's traffic and I/O figures in listings are summed over
// its life: a new qemu (restart, migration) starts its counters at zero, and the sums carry on.
// Every vm.stats.interval the figures since the previous history point become one point of the VM's
// usage history (listVirtualMachinesUsageHistory).
import type { DomainUsage } from './agent/protocol.ts';

/** What happened between two readings, or since the last history point. */
export interface UsageDelta {
  /** Wall time covered (ms) and CPU time used in it (ns), over `vcpus`. */
  elapsedMs: number;
  cpuTimeNs: number;
  vcpus: number;
  netRxBytes: number;
  netTxBytes: number;
  diskReadBytes: number;
  diskWriteBytes: number;
  diskReadReqs: number;
  diskWriteReqs: number;
}

/** A VM's running figures: the last reading, the sums of its life, and what is not yet in its history. */
export interface VmUsage {
  last: DomainUsage;
  /** CPU used between the last two readings, in % of the VM's vCPUs; undefined after a single reading. */
  cpuUtilization?: number;
  totals: Omit<UsageDelta, 'elapsedMs' | 'cpuTimeNs' | 'vcpus'>;
  /** Since the last history point, and when that was (ms; the first reading when there is none yet). */
  pending: UsageDelta;
  pendingSince: number;
}

/** One point of a VM's usage history: upstream's VmStatsEntry figures over the interval before `at`. */
export interface UsagePoint {
  at: number;
  cpuUtilization: number;
  networkReadKBs: number;
  networkWriteKBs: number;
  diskReadKBs: number;
  diskWriteKBs: number;
  diskReadIOs: number;
  diskWriteIOs: number;
  memoryKBs?: number;
  intFreeMemoryKBs?: number;
  targetMemoryKBs?: number;
}

const COUNTERS = ['netRxBytes', 'netTxBytes', 'diskReadBytes', 'diskWriteBytes', 'diskReadReqs', 'diskWriteReqs'] as const;

const zeroDelta = (vcpus: number): UsageDelta => ({ elapsedMs: 0, cpuTimeNs: 0, vcpus, netRxBytes: 0, netTxBytes: 0, diskReadBytes: 0, diskWriteBytes: 0, diskReadReqs: 0, diskWriteReqs: 0 });

/**
 * What happened between two readings. A counter that went down means a new qemu: what it counted
 * since is all of it. Undefined when `now` is not later than `before`.
 */
export function usageBetween(before: DomainUsage, now: DomainUsage): UsageDelta | undefined {
  if (!(now.at > before.at)) return undefined;
  const since = (key: 'cpuTimeNs' | (typeof COUNTERS)[number]) => (now[key] >= before[key] ? now[key] - before[key] : now[key]);
  const delta = { ...zeroDelta(now.vcpus), elapsedMs: now.at - before.at, cpuTimeNs: since('cpuTimeNs') };
  for (const key of COUNTERS) delta[key] = since(key);
  return delta;
}

/** CPU time over wall time × vCPUs, in %, at most 100. */
export function cpuPercent(delta: Pick<UsageDelta, 'elapsedMs' | 'cpuTimeNs' | 'vcpus'>): number {
  if (delta.elapsedMs <= 0) return 0;
  return Math.min(100, (delta.cpuTimeNs / (delta.elapsedMs * 1e6 * delta.vcpus)) * 100);
}

const addDelta = (a: UsageDelta, b: UsageDelta): UsageDelta => {
  const sum = { ...a, elapsedMs: a.elapsedMs + b.elapsedMs, cpuTimeNs: a.cpuTimeNs + b.cpuTimeNs, vcpus: b.vcpus };
  for (const key of COUNTERS) sum[key] = a[key] + b[key];
  return sum;
};

/**
 * The VM's figures after a new reading, and the history point it completes, if the last one is at
 * least `intervalMs` old. A reading not newer than the last changes nothing.
 */
export function advanceUsage(current: VmUsage | undefined, reading: DomainUsage, intervalMs: number): { usage: VmUsage; point?: UsagePoint } | undefined {
  if (!current) {
    const totals = { netRxBytes: 0, netTxBytes: 0, diskReadBytes: 0, diskWriteBytes: 0, diskReadReqs: 0, diskWriteReqs: 0 };
    return { usage: { last: reading, totals, pending: zeroDelta(reading.vcpus), pendingSince: reading.at } };
  }
  const delta = usageBetween(current.last, reading);
  if (!delta) return undefined;
  const totals = { ...current.totals };
  for (const key of COUNTERS) totals[key] += delta[key];
  const pending = addDelta(current.pending, delta);
  const usage: VmUsage = { last: reading, cpuUtilization: cpuPercent(delta), totals, pending, pendingSince: current.pendingSince };
  if (reading.at - current.pendingSince < intervalMs) return { usage };
  const point: UsagePoint = {
    at: reading.at,
    cpuUtilization: cpuPercent(pending),
    networkReadKBs: Math.round(pending.netRxBytes / 1024),
    networkWriteKBs: Math.round(pending.netTxBytes / 1024),
    diskReadKBs: Math.round(pending.diskReadBytes / 1024),
    diskWriteKBs: Math.round(pending.diskWriteBytes / 1024),
    diskReadIOs: pending.diskReadReqs,
    diskWriteIOs: pending.diskWriteReqs,
    ...memoryFigures(reading),
  };
  return { usage: { ...usage, pending: zeroDelta(reading.vcpus), pendingSince: reading.at }, point };
}

/** Upstream's memory figures (KiB): the balloon's current size, what the guest leaves unused, the target. */
export function memoryFigures(reading: DomainUsage): Pick<UsagePoint, 'memoryKBs' | 'intFreeMemoryKBs' | 'targetMemoryKBs'> {
  return {
    ...(reading.memoryKiB !== undefined && { memoryKBs: reading.memoryKiB }),
    ...(reading.memoryUnusedKiB !== undefined && { intFreeMemoryKBs: reading.memoryUnusedKiB }),
    ...(reading.memoryMaxKiB !== undefined && { targetMemoryKBs: reading.memoryMaxKiB }),
  };
}

/** Upstream's memoryintfreekbs: -1 when the guest does not tell (or tells no less than it has). */
const freeMemoryKBs = (memory: Pick<UsagePoint, 'memoryKBs' | 'intFreeMemoryKBs'>) =>
  memory.intFreeMemoryKBs !== undefined && memory.memoryKBs !== undefined && memory.intFreeMemoryKBs < memory.memoryKBs ? memory.intFreeMemoryKBs : -1;

/** "12.34%", as upstream's DecimalFormat("#.##") prints a share. */
export const percentText = (value: number) => `${Math.round(value * 100) / 100}%`;

/** "1.50 MiB" from KiB, as upstream's metrics responses print traffic. */
export const mibText = (kib: number) => `${(kib / 1024).toFixed(2)} MiB`;

/** The fields of upstream's UserVmResponse stats (and StatsResponse) for a VM's running figures. */
export function vmStatsFields(usage: VmUsage): Record<string, string | number> {
  const kib = (bytes: number) => Math.round(bytes / 1024);
  const memory = memoryFigures(usage.last);
  return {
    ...(usage.cpuUtilization !== undefined && { cpuused: percentText(usage.cpuUtilization) }),
    networkkbsread: kib(usage.totals.netRxBytes),
    networkkbswrite: kib(usage.totals.netTxBytes),
    diskkbsread: kib(usage.totals.diskReadBytes),
    diskkbswrite: kib(usage.totals.diskWriteBytes),
    diskioread: usage.totals.diskReadReqs,
    diskiowrite: usage.totals.diskWriteReqs,
    ...(memory.memoryKBs !== undefined && { memorykbs: memory.memoryKBs }),
    memoryintfreekbs: freeMemoryKBs(memory),
    ...(memory.targetMemoryKBs !== undefined && { memorytargetkbs: memory.targetMemoryKBs }),
  };
}

/** A history point as upstream's StatsResponse, its time in CloudStack's format (UTC). */
export function pointFields(point: UsagePoint, timestamp: string): Record<string, string | number> {
  return {
    timestamp,
    cpuused: percentText(point.cpuUtilization),
    diskioread: point.diskReadIOs,
    diskiowrite: point.diskWriteIOs,
    diskiopstotal: point.diskReadIOs + point.diskWriteIOs,
    diskkbsread: point.diskReadKBs,
    diskkbswrite: point.diskWriteKBs,
    memoryintfreekbs: freeMemoryKBs(point),
    ...(point.memoryKBs !== undefined && { memorykbs: point.memoryKBs }),
    ...(point.targetMemoryKBs !== undefined && { memorytargetkbs: point.targetMemoryKBs }),
    networkkbsread: point.networkReadKBs,
    networkkbswrite: point.networkWriteKBs,
    networkread: mibText(point.networkReadKBs),
    networkwrite: mibText(point.networkWriteKBs),
  };
}
