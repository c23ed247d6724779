// The fleet at a glance, as `hosted-engine --vm-status` shows a self-hosted engine's hosts: per zone its
// agents (lease, version, last seen, hosts held) and per host its state, the agent's last word on it,
// who drives it and the VMs placed on it. Read by the API (listFleetStatus) and by the agent gateway
// for `mold-agent status`, so both print the same thing.
import { holdsLease } from './agent-leases.ts';
import { listAgentRecords, type Agent } from './db/agents.ts';
import { listHostRecords, type Host } from './db/hosts.ts';
import { listZones } from './db/infrastructure.ts';
import { cloudstackDate } from './db/jobs.ts';
import { listVmRecords, type VirtualMachine } from './db/vms.ts';
import type { LastReport } from './host-health.ts';

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
  vm: { id: string; name: string; instancename: string; state: string; haenable: boolean }[];
}

export interface FleetZone {
  zoneid: string;
  zonename: string;
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
  const zones = (await listZones()).filter((zone) => !zoneId || zone.id === zoneId).sort((a, b) => a.name.localeCompare(b.name));
  return Promise.all(
    zones.map(async (zone) => {
      const [agents, hosts, vms] = await Promise.all([listAgentRecords({ zoneId: zone.id }), listHostRecords({ zoneId: zone.id }), listVmRecords({ zoneId: zone.id, excludeDestroyed: true })]);
      const live = hosts.filter((host) => host.status !== 'Removed');
      const agentName = new Map(agents.map((agent) => [agent.id, agent.name]));
      return {
        zoneid: zone.id,
        zonename: zone.name,
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
          .map((host) => fleetHost(host, agentName, vms.filter((vm) => vm.hostId === host.id))),
      };
    }),
  );
}

function fleetHost(host: Host, agentName: Map<string, string>, vms: readonly VirtualMachine[]): FleetHost {
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
    vm: vms.map((vm) => ({ id: vm.id, name: vm.name, instancename: vm.instanceName, state: vm.state, haenable: vm.haEnable })),
  };
}
