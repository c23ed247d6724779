// The host, cluster and zone switches of upstream's out-of-band management and HA framework
// (enable/disable…ForHost|Cluster|Zone): which id parameter each scope takes, its lookup, and the job
// that turns the switch.
import type { Host } from '../../../shared/db/hosts.ts';
import type { Cluster, Zone } from '../../../shared/db/infrastructure.ts';
import { startAsync } from '../async.ts';
import type { Caller } from '../command.ts';
import { hostParam } from './hosts.ts';
import { clusterParam, zoneParam } from './zones.ts';

export type SwitchScope = 'Host' | 'Cluster' | 'Zone';

export const SCOPE_ID_PARAM = { Host: 'hostid', Cluster: 'clusterid', Zone: 'zoneid' } as const satisfies Record<SwitchScope, string>;

/** The record `raw` names for `scope`, or 431 naming `api`'s id parameter. */
export function scopeRecord(api: string, scope: 'Host', raw: string): Promise<Host>;
export function scopeRecord(api: string, scope: SwitchScope, raw: string): Promise<Host | Cluster | Zone>;
export function scopeRecord(api: string, scope: SwitchScope, raw: string): Promise<Host | Cluster | Zone> {
  const name = SCOPE_ID_PARAM[scope];
  return scope === 'Host' ? hostParam(api, name, raw) : scope === 'Cluster' ? clusterParam(api, name, raw) : zoneParam(api, name, raw);
}

/** Starts `stateMachine`'s `switch` op turning the scope's record `id` on or off, its event about that record. */
export function startSwitch(caller: Caller, cmd: string, stateMachine: string, target: { scope: SwitchScope; id: string; enabled: boolean }, event: { type: string; description: string }) {
  const { scope, id } = target;
  return startAsync(caller, { cmd, stateMachine, input: { op: 'switch', args: target }, instanceType: scope, instanceId: id, event: { ...event, resourceId: id, resourceType: scope } });
}
