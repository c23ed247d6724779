// The metrics views of listings (upstream's metrics plugin: ListVMsMetricsCmd, ListVolumesMetricsCmd):
// the same parameters, rows and checks as the listing they extend, each row with upstream's
// display figures added. The CloudStack UI shows its Instances and Volumes pages only when these
// are in listApis. A figure Mold has not measured (a stopped VM's traffic, a VM not yet reported) is
// left out, as upstream leaves out a null one.
import type { AnyCommand, CommandDefinition } from '../command.ts';
import { defineCommand } from '../command.ts';
import { InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { listBody } from '../../../shared/cloudstack/render.ts';
import { cloudstackDate } from '../../../shared/db/jobs.ts';
import { vmUsageHistory } from '../../../shared/db/vm-stats.ts';
import { mibText, pointFields } from '../../../shared/vm-stats.ts';
import { parseDateParam } from '../dates.ts';
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

/**
 * Upstream's VmMetricsResponse: the first NIC's address, CPU in GHz and memory in GiB, and the VM's
 * traffic and disk I/O (its stats fields, in KiB) in MiB, as text.
 */
export function vmFigures(vm: Row): Row {
  const mib = (field: string, kib: unknown) => (typeof kib === 'number' ? { [field]: mibText(kib) } : {});
  return {
    ...vm,
    ...(vm.nic?.[0]?.ipaddress !== undefined && { ipaddress: vm.nic[0].ipaddress }),
    ...(vm.cpunumber !== undefined && vm.cpuspeed !== undefined && { cputotal: `${((vm.cpunumber * vm.cpuspeed) / 1000).toFixed(1)} Ghz` }),
    ...(vm.memory !== undefined && { memorytotal: `${(vm.memory / 1024).toFixed(2)} GiB` }),
    ...mib('networkread', vm.networkkbsread),
    ...mib('networkwrite', vm.networkkbswrite),
    ...mib('diskread', vm.diskkbsread),
    ...mib('diskwrite', vm.diskkbswrite),
    ...(typeof vm.diskioread === 'number' && typeof vm.diskiowrite === 'number' && { diskiopstotal: vm.diskioread + vm.diskiowrite }),
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

const HISTORY_API = 'listVirtualMachinesUsageHistory';

/**
 * Upstream's ListVMsUsageHistoryCmd: each VM's usage history points (shared/db/vm-stats.ts), kept
 * vm.stats.max.retention.time. The VMs are those the caller's listVirtualMachines would list for the
 * same id, ids, name and keyword (upstream lists any VM here; Mold keeps its listing's scope).
 */
function usageHistoryCommand(listing: CommandDefinition<any>): CommandDefinition<any> {
  return defineCommand({
    name: HISTORY_API,
    description: 'Lists VM stats',
    since: '4.17',
    params: {
      id: param.uuid('the ID of the virtual machine.').optional(),
      ids: param.list(param.uuid('id'), 'the IDs of the virtual machines, mutually exclusive with id.').optional(),
      name: param.string('name of the virtual machine (a substring match is made against the parameter value returning the data for all matching VMs).').optional(),
      startdate: param.date('start date to filter stats.Use format "yyyy-MM-dd hh:mm:ss")').optional(),
      enddate: param.date('end date to filter stats.Use format "yyyy-MM-dd hh:mm:ss")').optional(),
      ...listParams,
    },
    roles: listing.roles,
    handler: async (context) => {
      const { params } = context;
      const from = params.startdate === undefined ? undefined : parseDateParam(params.startdate, 'start', HISTORY_API.toLowerCase());
      const to = params.enddate === undefined ? undefined : parseDateParam(params.enddate, 'end', HISTORY_API.toLowerCase());
      if (from !== undefined && to !== undefined && from > to) throw new InvalidParameter('startDate cannot be after endDate.');
      const { id, ids, name, keyword, page, pagesize } = params;
      const listed = await listing.handler({ ...context, params: { id, ids, name, keyword, page, pagesize, details: ['min'] } });
      const rows = (listed.body.virtualmachine ?? []) as Row[];
      const vms = await Promise.all(
        rows.map(async (vm) => ({
          id: vm.id,
          name: vm.name,
          displayname: vm.displayname,
          stats: (await vmUsageHistory(vm.id, { from, to })).map((point) => pointFields(point, cloudstackDate(new Date(point.at)))),
        })),
      );
      return { body: listBody('virtualmachine', vms, Number(listed.body.count ?? vms.length)) };
    },
  });
}

export const metricsCommands = [
  usageHistoryCommand(byName(vmListCommands, 'listVirtualMachines') as CommandDefinition<any>),
  metricsOf(byName(vmListCommands, 'listVirtualMachines'), 'listVirtualMachinesMetrics', 'Lists VM metrics', 'virtualmachine', (rows) => rows.map(vmFigures)),
  metricsOf(byName(volumeCommands, 'listVolumes'), 'listVolumesMetrics', 'Lists volume metrics', 'volume', (rows) => rows.map(volumeFigures)),
];
