// The metrics views of listings (upstream's metrics plugin: ListVMsMetricsCmd, ListVolumesMetricsCmd):
// the same parameters, rows and checks as the listing they extend, each row with upstream's
// display figures added. The CloudStack UI shows its Instances and Volumes pages only when these
// are in listApis. A figure Mold does not measure (network and disk traffic, IOPS) is left out, as
// upstream leaves out a null one.
import type { AnyCommand, CommandDefinition } from '../command.ts';
import { defineCommand } from '../command.ts';
import { vmListCommands } from './vms-list.ts';
import { volumeCommands } from './volumes.ts';

export type Row = Record<string, any>;

/**
 * A metrics command over `base`: its answer's `itemName` rows, passed through `addFigures` (a page
 * at a time, so that figures needing records can read them once). `roles`: upstream authorises some
 * metrics commands more narrowly than their listing.
 */
export function metricsOf(
  base: AnyCommand,
  name: string,
  description: string,
  itemName: string,
  addFigures: (rows: Row[]) => Row[] | Promise<Row[]>,
  roles?: CommandDefinition['roles'],
): CommandDefinition<any> {
  const listing = base as CommandDefinition<any>;
  return defineCommand({
    name,
    description,
    params: listing.params,
    roles: roles ?? listing.roles,
    handler: async (context) => {
      const result = await listing.handler(context);
      const rows = result.body[itemName] as Row[] | undefined;
      return rows ? { ...result, body: { ...result.body, [itemName]: await addFigures(rows) } } : result;
    },
  });
}

export const byName = (commands: readonly AnyCommand[], name: string) => commands.find((command) => command.name === name)!;

/** Upstream's VmMetricsResponse: the first NIC's address, CPU in GHz and memory in GiB, as text. */
export function vmFigures(vm: Row): Row {
  return {
    ...vm,
    ...(vm.nic?.[0]?.ipaddress !== undefined && { ipaddress: vm.nic[0].ipaddress }),
    ...(vm.cpunumber !== undefined && vm.cpuspeed !== undefined && { cputotal: `${((vm.cpunumber * vm.cpuspeed) / 1000).toFixed(1)} Ghz` }),
    ...(vm.memory !== undefined && { memorytotal: `${(vm.memory / 1024).toFixed(2)} GiB` }),
  };
}

/** Upstream's VolumeMetricsResponse: the size in GiB and the storage type with the volume's type. */
export function volumeFigures(volume: Row): Row {
  const storagetype = typeof volume.storagetype === 'string' && volume.storagetype && volume.type
    ? `${volume.storagetype[0].toUpperCase()}${volume.storagetype.slice(1)} (${volume.type})`
    : volume.storagetype;
  return {
    ...volume,
    ...(storagetype !== undefined && { storagetype }),
    ...(volume.size !== undefined && { sizegb: `${(volume.size / 1024 ** 3).toFixed(2)} GiB` }),
  };
}

export const metricsCommands = [
  metricsOf(byName(vmListCommands, 'listVirtualMachines'), 'listVirtualMachinesMetrics', 'Lists VM metrics', 'virtualmachine', (rows) => rows.map(vmFigures)),
  metricsOf(byName(volumeCommands, 'listVolumes'), 'listVolumesMetrics', 'Lists volume metrics', 'volume', (rows) => rows.map(volumeFigures)),
];
