// The Infrastructure metrics figures (functions/api/commands/infra-metrics.ts) against upstream's
// MetricsServiceImpl and *MetricsResponse arithmetic: formats, rounding, absent figures, thresholds.
import { describe, expect, it } from 'vitest';
import { clusterFigures, hostFigures, hostTotals, javaFixed2, storagePoolFigures, summaryFigures, zoneFigures } from '../../functions/api/commands/infra-metrics.ts';

const GiB = 1024 ** 3;
const host = (fields: Partial<Parameters<typeof clusterFigures>[1][number]> = {}) => ({
  cpunumber: 4, cpuspeed: 1000, cpuallocated: 0, cpuused: 0, memorytotal: 4 * GiB, memoryused: 0, memoryallocated: 0, status: 'Up' as const, ...fields,
});

describe('javaFixed2', () => {
  it('rounds half up on the shortest decimal form, as Java’s %.2f', () => {
    expect(javaFixed2(1.005)).toBe('1.01');
    expect(javaFixed2(2.675)).toBe('2.68');
    expect(javaFixed2(0.125)).toBe('0.13');
    expect(javaFixed2(-0.125)).toBe('-0.13');
    expect(javaFixed2(-0.001)).toBe('0.00');
    expect(javaFixed2(27.272727)).toBe('27.27');
    expect(javaFixed2(0)).toBe('0.00');
    expect(javaFixed2(1e-7)).toBe('0.00');
    expect(javaFixed2(123456.789)).toBe('123456.79');
  });
});

describe('summaryFigures (zones and clusters)', () => {
  it('leaves out what divides by zero or is not used yet', () => {
    expect(summaryFigures(hostTotals([]))).toEqual({ cputotal: '0.00 Ghz', memorytotal: '0.00 GB' });
    const idle = summaryFigures(hostTotals([host()]));
    expect(idle).toEqual({
      cputotal: '4.00 Ghz', cpuallocated: '0.00%', memorytotal: '4.00 GB', memoryallocated: '0.00%',
      cputhreshold: false, cpudisablethreshold: false, cpuallocatedthreshold: false, cpuallocateddisablethreshold: false,
      memorythreshold: false, memorydisablethreshold: false, memoryallocatedthreshold: false, memoryallocateddisablethreshold: false,
    });
  });

  it('averages use over the hosts and gives the deviations as upstream does (CPU as a ratio, memory in percent)', () => {
    const figures = summaryFigures(hostTotals([host({ cpuused: 10, memoryused: GiB }), host({ cpuused: 50, memoryused: 3 * GiB })]));
    expect(figures).toMatchObject({ cpuused: '30.00%', cpumaxdeviation: '0.67%', memoryused: '50.00%', memorymaxdeviation: '50.00%' });
  });

  it('flags each threshold strictly above 0.75 (notification) and 0.85 (disable)', () => {
    const at = (share: number) =>
      summaryFigures(hostTotals([host({ cpuallocated: 4000 * share, cpuused: 100 * share, memoryused: 4 * GiB * share, memoryallocated: 4 * GiB * share })]));
    const flags = (figures: Record<string, unknown>) => Object.fromEntries(Object.entries(figures).filter(([name]) => name.endsWith('threshold')));
    const all = (notify: boolean, disable: boolean) => ({
      cputhreshold: notify, cpudisablethreshold: disable, cpuallocatedthreshold: notify, cpuallocateddisablethreshold: disable,
      memorythreshold: notify, memorydisablethreshold: disable, memoryallocatedthreshold: notify, memoryallocateddisablethreshold: disable,
    });
    expect(flags(at(0.75))).toEqual(all(false, false));
    expect(flags(at(0.8))).toEqual(all(true, false));
    expect(flags(at(0.85))).toEqual(all(true, false));
    expect(flags(at(0.9))).toEqual(all(true, true));
  });
});

describe('zoneFigures and clusterFigures', () => {
  it('count enabled managed clusters, and Up hosts', () => {
    const zone = zoneFigures({ id: 'z', allocationstate: 'Disabled' }, [{ allocationstate: 'Enabled' }, { allocationstate: 'Disabled' }, { allocationstate: 'Enabled', managedstate: 'Managed' }], []);
    expect(zone).toMatchObject({ id: 'z', state: 'Disabled', clusters: '2 / 3' });
    const cluster = clusterFigures({ id: 'c', allocationstate: 'Enabled', managedstate: 'Managed' }, [host(), host({ status: 'Down' }), host({ status: 'Disconnected' })]);
    expect(cluster).toMatchObject({ id: 'c', state: 'Enabled', hosts: '1 / 3', cputotal: '12.00 Ghz' });
    expect(clusterFigures({ allocationstate: 'Enabled', managedstate: 'Unmanaged' }, []).state).toBe('Unmanaged');
  });
});

describe('hostFigures', () => {
  const row = { id: 'h', cpunumber: 2, cpuspeed: 2400, cpuused: '12.5%', cpuallocated: '80%', memorytotal: 10 * GiB, memoryused: 9 * GiB, memoryallocated: 5 * GiB, networkkbsread: 1024 * 1024, networkkbswrite: 0, outofbandmanagement: { powerstate: 'On' } };

  it('turns the HostResponse’s percentages into GHz, bytes into GB, and counts Running of the VMs on it', () => {
    expect(hostFigures(row, [{ state: 'Running' }, { state: 'Stopping' }, { state: 'Running' }])).toEqual({
      ...row,
      powerstate: 'On',
      instances: '2 / 3',
      cputotalghz: '4.80 Ghz',
      cpuusedghz: '0.60 Ghz',
      cpuallocatedghz: '3.84 Ghz',
      memorytotalgb: '10.00 GB',
      memoryusedgb: '9.00 GB',
      memoryallocatedgb: '5.00 GB',
      networkread: '1.00 GB',
      networkwrite: '0.00 GB',
      cputhreshold: false,
      cpudisablethreshold: false,
      cpuallocatedthreshold: true,
      cpuallocateddisablethreshold: false,
      memorythreshold: true,
      memorydisablethreshold: true,
      memoryallocatedthreshold: false,
      memoryallocateddisablethreshold: false,
    });
  });

  it('leaves out what the row does not have', () => {
    const bare = hostFigures({ cpunumber: 1, cpuspeed: 1000, memorytotal: GiB }, []);
    expect(bare).toEqual({ cpunumber: 1, cpuspeed: 1000, memorytotal: GiB, instances: '0 / 0', cputotalghz: '1.00 Ghz', memorytotalgb: '1.00 GB' });
  });
});

describe('storagePoolFigures', () => {
  it('gives the sizes with the factor, and upstream’s thresholds (the allocated disable one compares the used size, as upstream)', () => {
    const pool = { id: 'p', disksizetotal: 100 * GiB, disksizeused: 90 * GiB, disksizeallocated: 10 * GiB, overprovisionfactor: '1.0' };
    expect(storagePoolFigures(pool)).toEqual({
      ...pool,
      disksizeusedgb: '90.00 GB',
      disksizetotalgb: '100.00 GB (x1.0)',
      disksizeallocatedgb: '10.00 GB',
      disksizeunallocatedgb: '90.00 GB',
      storageusagethreshold: true,
      storageusagedisablethreshold: true,
      storageallocatedthreshold: false,
      storageallocateddisablethreshold: true,
    });
    const overprovisioned = storagePoolFigures({ disksizetotal: 100 * GiB, disksizeallocated: 160 * GiB, overprovisionfactor: '2.0' });
    expect(overprovisioned).toEqual({
      disksizetotal: 100 * GiB, disksizeallocated: 160 * GiB, overprovisionfactor: '2.0',
      disksizetotalgb: '100.00 GB (x2.0)', disksizeallocatedgb: '160.00 GB', disksizeunallocatedgb: '40.00 GB', storageallocatedthreshold: true,
    });
  });
});
