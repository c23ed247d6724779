// The fleet at a glance, as `hosted-engine --vm-status` shows a self-hosted engine's hosts: per zone its
// agents (lease, version, last seen, hosts held) and per host its state, the agent's last word on it,
// who drives it and the VMs placed on it. Read by the API (listFleetStatus) and by the agent gateway
// for `mold-agent status`, so both print the same thing. Each zone also says whether VM HA acts there or
// is held (HA maintenance: vm.ha.enabled false globally or for the zone), and each host what HA holds
// back on it or why it cannot be fenced, its storage heartbeat's age as a peer read it and its BMC's power state.
import { holdsLease } from './agent-leases.ts';
import { listAgentRecords, type Agent } from './db/agents.ts';
import { listHostRecords, type Host } from './db/hosts.ts';
import { listZones } from './db/infrastructure.ts';
import { cloudstackDate } from './db/jobs.ts';
import { listVmRecords, type VirtualMachine } from './db/vms.ts';
import type { LastReport } from './host-health.ts';
import { loadSettings, scopedOverrides } from './settings.ts';
import { heartbeatOf, type HeartbeatReading } from './storage-heartbeat.ts';
import { haMode, type HaMaintenance } from './vm-ha.ts';

export interface FleetAgent {
  id: string;
  name: string;
  state: string;
  version?: string;
  lastseen?: string;
  leaseexpires?: string;
  holdslease: boolean;
  hostcount: number;
}

export interface FleetHost {
  id: string;
  name: string;
  ipaddress: string;
  state: string;
  resourcestate: string;
  lastpinged?: string;
  /** The agent's last report: whether it reached the host, and what went wrong if not. */
  reachable?: boolean;
  lastreporterror?: string;
  agentid?: string;
  agentname?: string;
  leaseepoch: number;
  /** What VM HA holds back on the host (HA maintenance), if anything. */
  haheld?: string;
  /** Why VM HA cannot fence the host (no usable BMC, the host in maintenance), if it found so. */
  hafencerefused?: string;
  /** Why VM HA leaves the Down host alone: it still writes its storage heartbeat. */
  haspared?: string;
  /** Its storage heartbeat's age (seconds) as a healthy peer last read it, and when; absent when none did lately. */
  storageheartbeatage?: number;
  storageheartbeatread?: string;
  /** Its BMC's power state as last read (out-of-band management). */
  powerstate?: string;
  vm: { id: string; name: string; instancename: string; state: string; haenable: boolean }[];
}

export interface FleetZone {
  zoneid: string;
  zonename: string;
  /** vm.ha.enabled as it applies in the zone: false is HA maintenance (nothing fenced, stopped or restarted). */
  vmhaenabled: boolean;
  /** Why HA is held in the zone: None (it acts), Global (the global value) or Zone (the zone's own). */
  hamaintenance: HaMaintenance;
  /** Global HA maintenance: vm.ha.enabled is false globally (zones with their own true still act). */
  globalhamaintenance: boolean;
  agent: FleetAgent[];
  host: FleetHost[];
}

/** An agent's lease as listings show it: when it ends (absent until first renewed) and whether it holds. */
export function leaseView(agent: Agent, now: number): { leaseexpires?: string; holdslease: boolean } {
  return {
    ...(agent.leaseExpires !== undefined && { leaseexpires: cloudstackDate(new Date(agent.leaseExpires)) }),
    holdslease: agent.leaseExpires !== undefined && holdsLease(agent, now),
  };
}

/** Every zone's fleet, or one zone's; zones by name, agents by age, hosts by name. */
export async function fleetStatus(zoneId?: string, now = Date.now()): Promise<FleetZone[]> {
  const [allZones, global] = await Promise.all([listZones(), loadSettings()]);
  const zones = allZones.filter((zone) => !zoneId || zone.id === zoneId).sort((a, b) => a.name.localeCompare(b.name));
  const globalHa = global.boolean('vm.ha.enabled');
  return Promise.all(
    zones.map(async (zone) => {
      const [agents, hosts, vms, zoneValues] = await Promise.all([
        listAgentRecords({ zoneId: zone.id }),
        listHostRecords({ zoneId: zone.id }),
        listVmRecords({ zoneId: zone.id, excludeDestroyed: true }),
        scopedOverrides('Zone', zone.id),
      ]);
      const zoneHa = zoneValues.get('vm.ha.enabled');
      const ha = haMode(globalHa, zoneHa === undefined ? undefined : zoneHa.toLowerCase() === 'true');
      const live = hosts.filter((host) => host.status !== 'Removed');
      const agentName = new Map(agents.map((agent) => [agent.id, agent.name]));
      return {
        zoneid: zone.id,
        zonename: zone.name,
        vmhaenabled: ha.enabled,
        hamaintenance: ha.maintenance,
        globalhamaintenance: !globalHa,
        agent: agents
          .sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id))
          .map((agent) => ({
            id: agent.id,
            name: agent.name,
            state: agent.state,
            version: agent.version,
            lastseen: agent.lastseen,
            ...leaseView(agent, now),
            hostcount: live.filter((host) => host.agentId === agent.id).length,
          })),
        host: live
          .sort((a, b) => a.name.localeCompare(b.name))
          .map((host) => fleetHost(host, agentName, vms.filter((vm) => vm.hostId === host.id), heartbeatOf(host, live, now, global.number('ping.interval')))),
      };
    }),
  );
}

function fleetHost(host: Host, agentName: Map<string, string>, vms: readonly VirtualMachine[], heartbeat: HeartbeatReading | undefined): FleetHost {
  const report = host.lastreport as LastReport | undefined;
  return {
    id: host.id,
    name: host.name,
    ipaddress: host.ipaddress,
    state: host.status,
    resourcestate: host.resourcestate,
    lastpinged: host.lastpinged,
    ...(report && { reachable: report.reachable, ...(report.error && { lastreporterror: report.error }) }),
    ...(host.agentId && { agentid: host.agentId, agentname: agentName.get(host.agentId) }),
    leaseepoch: host.leaseEpoch ?? 0,
    ...(host.hafence?.held && { haheld: host.hafence.held }),
    ...(host.hafence?.refused && { hafencerefused: host.hafence.refused }),
    ...(host.hafence?.spared && { haspared: host.hafence.spared }),
    ...(heartbeat && { storageheartbeatage: heartbeat.ageSeconds, storageheartbeatread: cloudstackDate(new Date(heartbeat.at)) }),
    ...(host.oobmpowerstate && { powerstate: host.oobmpowerstate }),
    vm: vms.map((vm) => ({ id: vm.id, name: vm.name, instancename: vm.instanceName, state: vm.state, haenable: vm.haEnable })),
  };
}
