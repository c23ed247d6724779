// `mold-agent status`'s view of the zone, as `hosted-engine --vm-status` prints a self-hosted engine's
// hosts: one block per agent and per host, the lines an operator scans first.
import type { FleetResponse } from '../shared/agent/protocol.ts';

/** The zone's agents and hosts as text; `self` marks this agent. */
export function fleetLines(fleet: FleetResponse, self: string): string[] {
  const lines = [`Zone ${fleet.zonename} (${fleet.zoneid})`];
  if (fleet.vmhaenabled !== undefined) lines.push(fleet.vmhaenabled ? 'VM HA: on' : `VM HA: HA MAINTENANCE (${fleet.hamaintenance === 'Zone' ? "the zone's" : 'the global'} vm.ha.enabled is false): nothing is fenced, stopped or restarted`);
  lines.push('', `Agents (${fleet.agent.length}):`);
  for (const agent of fleet.agent) {
    const lease = agent.holdslease ? `lease held until ${agent.leaseexpires}` : agent.leaseexpires ? `lease lapsed at ${agent.leaseexpires}` : 'no lease yet';
    lines.push(
      `  ${agent.id === self ? '*' : ' '} ${agent.name} (${agent.id})`,
      `      state ${agent.state}, ${lease}, ${agent.hostcount} host(s), version ${agent.version ?? '-'}, last seen ${agent.lastseen ?? 'never'}`,
    );
  }
  lines.push('', `Hosts (${fleet.host.length}):`);
  for (const host of fleet.host) {
    const report = host.reachable === false ? `unreachable: ${host.lastreporterror ?? 'no reason given'}` : (host.lastreporterror ?? 'ok');
    const vms = host.vm.map((vm) => `${vm.name} ${vm.state}${vm.haenable ? ' (HA)' : ''}`);
    const beat = host.storageheartbeatage === undefined ? 'no peer reading' : `${host.storageheartbeatage} s old`;
    lines.push(
      `    ${host.name} ${host.ipaddress}: ${host.state}, ${host.resourcestate}, storage heartbeat ${beat}, BMC ${host.powerstate ?? 'not configured'}`,
      `      agent ${host.agentname ?? '-'} (lease epoch ${host.leaseepoch}), last report ${host.lastpinged ?? 'never'}: ${report}`,
      `      VMs (${vms.length}): ${vms.length ? vms.join(', ') : 'none'}`,
    );
    if (host.haheld) lines.push(`      HA held: ${host.haheld}`);
    if (host.hafencerefused) lines.push(`      HA cannot fence it: ${host.hafencerefused}`);
    if (host.haspared) lines.push(`      HA leaves it alone: ${host.haspared}`);
  }
  return lines;
}
