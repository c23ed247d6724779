// startRollingMaintenance: upstream's StartRollingMaintenanceCmd (root admin, async), run by
// statemachines/rolling-maintenance.asl.json with its decisions in shared/rolling-maintenance.ts.
// The handler refuses here, before any job, what upstream refuses (or reports as a failed run with
// nothing done): no scope or more than one scope list (Mold refuses two with 431 rather than pick
// one silently), ids that name nothing, a timeout not above kvm.rolling.maintenance.ping.interval,
// and, unless `forced`, a host in scope that is not Up and Enabled (one already in maintenance).
import { InternalError, InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { param } from '../../../shared/cloudstack/params.ts';
import { listHostRecords, type Host } from '../../../shared/db/hosts.ts';
import { errorText, eventTypeOf, groupByCluster, SCOPE_TEXT, timeoutRefused, TIMEOUT_TEXT } from '../../../shared/rolling-maintenance.ts';
import { loadSettings } from '../../../shared/settings.ts';
import { startAsync } from '../async.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { hostParam } from './hosts.ts';
import { clusterParam, podParam, zoneParam } from './zones.ts';

const API = 'startRollingMaintenance';
const SCOPES = [
  { param: 'podids', scope: 'Pod' },
  { param: 'clusterids', scope: 'Cluster' },
  { param: 'zoneids', scope: 'Zone' },
  { param: 'hostids', scope: 'Host' },
] as const;

/** The hosts a scope list names, each id checked as upstream's parameter processing checks it. */
async function hostsOf(scope: (typeof SCOPES)[number]['scope'], name: string, ids: string[]): Promise<Host[]> {
  const hosts: Host[] = [];
  for (const id of ids) {
    if (scope === 'Host') hosts.push(await hostParam(API, name, id));
    else if (scope === 'Cluster') {
      const cluster = await clusterParam(API, name, id);
      hosts.push(...(await listHostRecords({ zoneId: cluster.zoneId, podId: cluster.podId, clusterId: cluster.id })));
    } else if (scope === 'Pod') {
      const pod = await podParam(API, name, id);
      hosts.push(...(await listHostRecords({ zoneId: pod.zoneId, podId: pod.id })));
    } else {
      const zone = await zoneParam(API, name, id);
      hosts.push(...(await listHostRecords({ zoneId: zone.id })));
    }
  }
  return hosts;
}

const startRollingMaintenanceCommand = defineCommand({
  name: API,
  description:
    "Start rolling maintenance. Mold: the hosts' agents run the stage scripts (PreFlight, PreMaintenance, Maintenance, PostMaintenance) from rolling.maintenance.hooks.dir in /etc/cloudstack/agent/agent.properties on each host; each host enters maintenance through prepareHostForMaintenance (its VMs live-migrated within its cluster) between PreMaintenance and Maintenance; jobprocstatus counts the stages run so far.",
  params: {
    podids: param.list(param.uuid('id'), 'the IDs of the pods to start maintenance on').optional(),
    clusterids: param.list(param.uuid('id'), 'the IDs of the clusters to start maintenance on').optional(),
    zoneids: param.list(param.uuid('id'), 'the IDs of the zones to start maintenance on').optional(),
    hostids: param.list(param.uuid('id'), 'the IDs of the hosts to start maintenance on').optional(),
    forced: param.boolean('if rolling mechanism should continue in case of an error').optional(),
    payload: param.text('the command to execute while hosts are on maintenance', 4096).optional(),
    timeout: param.integer('optional operation timeout (in seconds) that overrides the global timeout setting').optional(),
  },
  roles: ADMINS,
  isasync: true,
  handler: async ({ params, caller }) => {
    const given = SCOPES.filter((s) => (params[s.param]?.length ?? 0) > 0);
    if (given.length !== 1) throw new InvalidParameter(SCOPE_TEXT);
    const [{ param: name, scope }] = given as [(typeof SCOPES)[number]];
    const ids = params[name]!;
    const settings = await loadSettings();
    const pingInterval = settings.number('kvm.rolling.maintenance.ping.interval');
    const timeout = params.timeout ?? settings.number('kvm.rolling.maintenance.stage.timeout');
    if (timeoutRefused(timeout, pingInterval)) throw new InvalidParameter(TIMEOUT_TEXT);
    const hosts = await hostsOf(scope, name, ids);
    const forced = params.forced ?? false;
    if (!forced) {
      // Upstream's performStateChecks, which fail the run before it acts on any host.
      for (const host of hosts) {
        if (host.status !== 'Up') throw new InternalError(errorText(`Host ${host.id} is not connected, state = ${host.status}`));
        if (host.resourcestate !== 'Enabled') throw new InternalError(errorText(`Host ${host.id} is not enabled, state = ${host.resourcestate}`));
      }
    }
    const eventType = eventTypeOf(scope.toLowerCase() as 'host');
    return startAsync(caller, {
      cmd: API,
      stateMachine: 'rolling-maintenance',
      input: {
        args: {
          scope,
          ids,
          eventType,
          forced,
          timeout,
          pingInterval,
          waitMaintenance: settings.number('kvm.rolling.maintenance.wait.maintenance.timeout'),
          ...(params.payload !== undefined && { payload: params.payload }),
          clusters: groupByCluster(hosts),
        },
      },
      event: { type: eventType, description: `Starting rolling maintenance on entity: ${scope} with IDs: [${ids.join(', ')}]`, resourceType: scope },
    });
  },
});

export const rollingMaintenanceCommands = [startRollingMaintenanceCommand];
