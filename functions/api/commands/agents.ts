// On-prem agents (Mold's own commands; upstream's agents connect to the management server instead):
// an admin creates a single-use enrolment token for a zone, hands it to `mold-agent enrol`, lists the
// agents that enrolled and revokes one. The token is shown once; only its SHA-256 is kept.
import { InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import {
  createEnrollmentToken,
  findEnrollmentToken,
  getAgent,
  listAgentRecords,
  revokeAgentRecord,
  revokeEnrollmentToken,
  TOKEN_VALIDITY,
  type Agent,
} from '../../../shared/db/agents.ts';
import { fleetStatus, leaseView } from '../../../shared/fleet-status.ts';
import { listHostRecords, type Host } from '../../../shared/db/hosts.ts';
import { listZones } from '../../../shared/db/infrastructure.ts';
import { actorOf } from '../actor.ts';
import { ADMINS, completedEvent, defineCommand } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { noSuchEntity } from '../validate.ts';
import { zoneParam } from './zones.ts';

/** An agent as listAgents shows it, with the hosts it holds under its lease (shared/agent-leases.ts). */
export function renderAgent(agent: Agent, zoneName: string | undefined, held: Host[] = [], now = Date.now()) {
  return {
    id: agent.id,
    name: agent.name,
    zoneid: agent.zoneId,
    zonename: zoneName,
    state: agent.state,
    version: agent.version,
    ipaddress: agent.ipaddress,
    created: agent.created,
    lastseen: agent.lastseen,
    certificateserial: agent.certificateSerial,
    certificateexpires: agent.certificateExpires,
    sshpublickey: agent.sshPublicKey,
    ...(agent.consoleUrl && { consoleurl: agent.consoleUrl }),
    // Mold's own: the lease (absent until the agent first renews it) and the hosts it drives.
    ...leaseView(agent, now),
    hostcount: held.length,
    host: held.map((host) => ({ id: host.id, name: host.name, ipaddress: host.ipaddress, leaseepoch: host.leaseEpoch ?? 0 })),
  };
}

const createAgentEnrollmentToken = defineCommand({
  name: 'createAgentEnrollmentToken',
  description: 'Creates a single-use token with which an on-prem agent enrols for a zone. The token is shown only in this response.',
  params: {
    zoneid: param.uuid('the ID of the zone the agent will serve'),
    validity: param
      .integer(`minutes the token stays valid, from ${TOKEN_VALIDITY.min} to ${TOKEN_VALIDITY.max}; default ${TOKEN_VALIDITY.default}`)
      .optional(),
  },
  roles: ADMINS,
  handler: async ({ params, caller }) => {
    const validity = params.validity ?? TOKEN_VALIDITY.default;
    if (validity < TOKEN_VALIDITY.min || validity > TOKEN_VALIDITY.max) {
      throw new InvalidParameter(`Invalid parameter validity value=${params.validity}: it must be from ${TOKEN_VALIDITY.min} to ${TOKEN_VALIDITY.max} minutes`);
    }
    const zone = await zoneParam('createAgentEnrollmentToken', 'zoneid', params.zoneid);
    const { token, record } = await createEnrollmentToken({ zoneId: zone.id, validityMinutes: validity, actor: actorOf(caller) });
    return {
      body: {
        agentenrollmenttoken: { id: record.id, token, zoneid: zone.id, zonename: zone.name, created: record.created, expires: record.expires },
      },
      events: [
        completedEvent('AGENT.ENROLLMENT.TOKEN.CREATE', 'creating agent enrollment token', { id: record.id, type: 'AgentEnrollmentToken' }, `Zone Id: ${zone.id}`),
      ],
    };
  },
});

const revokeAgentEnrollmentToken = defineCommand({
  name: 'revokeAgentEnrollmentToken',
  description: 'Revokes an unused agent enrollment token.',
  params: { id: param.uuid('the ID of the enrollment token') },
  roles: ADMINS,
  handler: async ({ params }) => {
    const id = params.id.toLowerCase();
    const token = await findEnrollmentToken(id);
    if (!token) throw noSuchEntity('revokeAgentEnrollmentToken', 'id', params.id);
    if (!(await revokeEnrollmentToken(id))) {
      throw new InvalidParameter(`The enrollment token ${id} was already ${token.used ? 'used' : 'revoked'}`);
    }
    return {
      body: { success: true },
      events: [completedEvent('AGENT.ENROLLMENT.TOKEN.REVOKE', 'revoking agent enrollment token', { id, type: 'AgentEnrollmentToken' })],
    };
  },
});

const listAgents = defineCommand({
  name: 'listAgents',
  description: 'Lists on-prem agents.',
  params: {
    id: param.uuid('the ID of the agent').optional(),
    zoneid: param.uuid('the ID of the zone').optional(),
    state: param.string('the state of the agent: Enabled or Revoked').optional(),
    ...listParams,
  },
  roles: ADMINS,
  handler: async ({ params, settings }) => {
    const agents = (await listAgentRecords({ zoneId: params.zoneid?.toLowerCase() }))
      .filter((agent) => !params.id || agent.id === params.id.toLowerCase())
      .filter((agent) => !params.state || agent.state.toLowerCase() === params.state.toLowerCase())
      .filter((agent) => matchesKeyword(params.keyword, agent.name))
      .sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id));
    const zones = new Map((await listZones()).map((zone) => [zone.id, zone.name]));
    const hosts = await listHostRecords(params.zoneid ? { zoneId: params.zoneid.toLowerCase() } : {});
    const heldBy = (agent: Agent) => hosts.filter((host) => host.agentId === agent.id && host.status !== 'Removed');
    return { body: listResponse('agent', agents, params, settings, (agent) => renderAgent(agent, zones.get(agent.zoneId), heldBy(agent))) };
  },
});

const revokeAgent = defineCommand({
  name: 'revokeAgent',
  description: 'Revokes an on-prem agent: its next request to the gateway is refused, and its hosts pass to another agent of the zone that holds its lease.',
  params: { id: param.uuid('the ID of the agent') },
  roles: ADMINS,
  handler: async ({ params }) => {
    const agent = await getAgent(params.id.toLowerCase());
    if (!agent) throw noSuchEntity('revokeAgent', 'id', params.id);
    const revoked = await revokeAgentRecord(agent.id);
    if (!revoked) throw new InvalidParameter(`Agent ${agent.id} is already revoked`);
    return {
      body: { success: true },
      events: [completedEvent('AGENT.REVOKE', 'revoking agent', { id: agent.id, type: 'Agent' }, `Agent Name: ${agent.name}`)],
    };
  },
});

const listFleetStatus = defineCommand({
  name: 'listFleetStatus',
  description:
    "Lists each zone's fleet at a glance: its agents (lease, version, last seen, hosts held), its hosts (state, the agent's last report, the agent driving it, the VMs placed on it, what VM HA holds back on it or why it cannot fence it) and whether VM HA acts in the zone or is held (HA maintenance: vmhaenabled, hamaintenance None/Global/Zone, globalhamaintenance; set with updateConfiguration name=vm.ha.enabled [zoneid]).",
  params: {
    zoneid: param.uuid('the ID of the zone').optional(),
    ...listParams,
  },
  roles: ADMINS,
  handler: async ({ params, settings }) => {
    if (params.zoneid) await zoneParam('listFleetStatus', 'zoneid', params.zoneid);
    return { body: listResponse('fleetstatus', await fleetStatus(params.zoneid?.toLowerCase()), params, settings, (zone) => zone) };
  },
});

export const agentCommands = [createAgentEnrollmentToken, revokeAgentEnrollmentToken, listAgents, revokeAgent, listFleetStatus];
