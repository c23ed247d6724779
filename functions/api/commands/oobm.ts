// Out-of-band management (upstream's ConfigureOutOfBandManagementCmd, Enable/DisableOutOfBandManagement
// ForHost|Cluster|Zone, IssueOutOfBandManagementPowerActionCmd, ChangeOutOfBandManagementPasswordCmd).
// Root admins only, as upstream. The BMC password is sealed to the host's agent here, before anything
// is written or started, so no record, log or execution input holds it. Power actions and password
// changes are the agent's work (it is on the BMCs' network): agent-command jobs. The switches are
// async as upstream and run oobm-command (functions/tasks/oobm.ts).
import { randomInt, randomUUID } from 'node:crypto';
import { sealToAgent } from '../../../shared/agent/sealing.ts';
import { OOBM_POWER_ACTIONS } from '../../../shared/agent/protocol.ts';
import { InternalError, InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { param } from '../../../shared/cloudstack/params.ts';
import { updateHostRecord } from '../../../shared/db/hosts.ts';
import { OOBM_DRIVERS, renderOobm, type OobmConfig, type OobmDriver } from '../../../shared/oobm.ts';
import { startAsync } from '../async.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { ADDRESS, agentOfHost, hostParam } from './hosts.ts';
import { SCOPE_ID_PARAM, scopeRecord, startSwitch, type SwitchScope } from './switch-scopes.ts';

const STATE_MACHINE = 'oobm-command';

const configureCommand = defineCommand({
  name: 'configureOutOfBandManagement',
  description:
    "Configures a host's out-of-band management interface. Mold: driver ipmitool or redfish; the password is sealed to the host's agent (which runs ipmitool or speaks Redfish over HTTPS on the BMCs' network) and shown masked.",
  params: {
    hostid: param.uuid('the ID of the host'),
    driver: param.string('the host management interface driver, for example: ipmitool, redfish'),
    address: param.string('the host management interface IP address'),
    port: param.string('the host management interface port'),
    username: param.string('the host management interface user'),
    password: param.text('the host management interface password'),
  },
  roles: ADMINS,
  handler: async ({ params }) => {
    const host = await hostParam('configureOutOfBandManagement', 'hostid', params.hostid);
    const driver = params.driver.toLowerCase();
    if (!(OOBM_DRIVERS as readonly string[]).includes(driver)) {
      throw new InternalError('Out-of-band management driver is not available. Please provide a valid driver name.');
    }
    const address = params.address.trim();
    if (!ADDRESS.test(address)) throw new InvalidParameter(`Invalid parameter address value=${params.address}: it must be the BMC's IP address or host name`);
    const port = Number(params.port);
    if (!/^\d+$/.test(params.port.trim()) || port < 1 || port > 65535) throw new InvalidParameter(`Invalid parameter port value=${params.port}: a port number, 1 to 65535`);
    if (!params.username.trim()) throw new InvalidParameter('Invalid parameter username: the BMC user must not be empty');
    if (!params.password) throw new InvalidParameter('Invalid parameter password: the BMC password must not be empty');
    const agent = await agentOfHost(host);
    const oobm: OobmConfig = {
      driver: driver as OobmDriver,
      address,
      port: String(port),
      username: params.username.trim(),
      password: sealToAgent(agent.certificate, params.password),
      enabled: host.oobm?.enabled ?? false,
      configId: randomUUID(),
    };
    const updated = await updateHostRecord(host.id, { oobm, oobmpowerstate: host.oobmpowerstate ?? 'Disabled' });
    if (!updated) throw new InternalError('Failed to update out-of-band management config for the host in the database.');
    return {
      body: {
        outofbandmanagement: {
          hostid: host.id,
          ...renderOobm(updated),
          description: 'Out-of-band management successfully configured for the host',
          status: true,
        },
      },
      events: [
        {
          type: 'HOST.OOBM.CONFIGURE',
          description: `Successfully completed updating out-of-band management configuration. host id:${host.id} configuration:${address}:${port}`,
          resourceId: host.id,
          resourceType: 'Host',
        },
      ],
    };
  },
});

function switchCommand(enable: boolean, scope: SwitchScope) {
  const verb = enable ? 'enable' : 'disable';
  const name = `${verb}OutOfBandManagementFor${scope}`;
  const idParam = SCOPE_ID_PARAM[scope];
  return defineCommand({
    name,
    description: `${enable ? 'Enables' : 'Disables'} out-of-band management for a ${scope.toLowerCase()}`,
    params: { [idParam]: param.uuid(`the ID of the ${scope.toLowerCase()}`) } as Record<string, ReturnType<typeof param.uuid>>,
    roles: ADMINS,
    isasync: true,
    handler: async ({ params, caller }) => {
      const { id } = await scopeRecord(name, scope, (params as Record<string, string>)[idParam]!);
      return startSwitch(caller, name, STATE_MACHINE, { scope, id, enabled: enable }, {
        type: enable ? 'HOST.OOBM.ENABLE' : 'HOST.OOBM.DISABLE',
        description: `${enable ? 'enabling' : 'disabling'} out-of-band management on a ${scope.toLowerCase()}: ${id}`,
      });
    },
  });
}

const powerActionCommand = defineCommand({
  name: 'issueOutOfBandManagementPowerAction',
  description: "Initiates the specified power action to the host's out-of-band management interface",
  params: {
    hostid: param.uuid('the ID of the host'),
    action: param.string('out-of-band management power actions, valid actions are: ON, OFF, CYCLE, RESET, SOFT, STATUS'),
    timeout: param.long('optional operation timeout in seconds that overrides the global or cluster-level out-of-band management timeout setting').optional(),
  },
  roles: ADMINS,
  isasync: true,
  handler: async ({ params, caller }) => {
    const host = await hostParam('issueOutOfBandManagementPowerAction', 'hostid', params.hostid);
    // Upstream's PowerOperation.valueOf: the exact upper-case name.
    if (!(OOBM_POWER_ACTIONS as readonly string[]).includes(params.action)) {
      throw new InvalidParameter(`Invalid parameter action value=${params.action}: valid actions are: ${OOBM_POWER_ACTIONS.join(', ')}`);
    }
    if (params.timeout !== undefined && (params.timeout < 1 || params.timeout > 3600)) {
      throw new InvalidParameter(`Invalid parameter timeout value=${params.timeout}: 1 to 3600 seconds`);
    }
    const agent = await agentOfHost(host);
    return startAsync(caller, {
      cmd: 'issueOutOfBandManagementPowerAction',
      stateMachine: 'agent-command',
      input: { op: 'oobmPowerAction', args: { agentId: agent.id, hostId: host.id, action: params.action, ...(params.timeout !== undefined && { timeout: params.timeout }) } },
      instanceType: 'Host',
      instanceId: host.id,
      event: {
        type: 'HOST.OOBM.ACTION',
        description: `Issuing out-out-band management power action: ${params.action} to host: ${host.id}`,
        resourceId: host.id,
        resourceType: 'Host',
      },
    });
  },
});

/** Upstream's generateRandomPassword: letters and digits. */
function randomPassword(length = 12): string {
  const alphabet = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  return Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join('');
}

const changePasswordCommand = defineCommand({
  name: 'changeOutOfBandManagementPassword',
  description:
    "Changes out-of-band management interface password on the host and updates the interface configuration in CloudStack if the operation succeeds, else reverts the old password. Mold: the agent sets it on the BMC (ipmitool user set password, or a PATCH of the Redfish account), proves a login with it, and only then is it stored (sealed).",
  params: {
    hostid: param.uuid('the ID of the host'),
    password: param.text('the new host management interface password of maximum length 16, if none is provided a random password would be used').optional(),
  },
  roles: ADMINS,
  isasync: true,
  handler: async ({ params, caller }) => {
    const host = await hostParam('changeOutOfBandManagementPassword', 'hostid', params.hostid);
    const password = params.password || randomPassword();
    // Upstream's limit for every driver (its parameter's "maximum length 16").
    if (password.length > 16) throw new InvalidParameter(`Invalid parameter password: ${host.oobm?.driver === 'redfish' ? 'a BMC' : 'an IPMI'} password has at most 16 characters`);
    const agent = await agentOfHost(host);
    return startAsync(caller, {
      cmd: 'changeOutOfBandManagementPassword',
      stateMachine: 'agent-command',
      input: { op: 'oobmChangePassword', args: { agentId: agent.id, hostId: host.id, password: sealToAgent(agent.certificate, password) } },
      instanceType: 'Host',
      instanceId: host.id,
      event: { type: 'HOST.OOBM.CHANGEPASSWORD', description: `change out-of-band management password for host: ${host.id}`, resourceId: host.id, resourceType: 'Host' },
    });
  },
});

export const oobmCommands = [
  configureCommand,
  switchCommand(true, 'Host'),
  switchCommand(false, 'Host'),
  switchCommand(true, 'Cluster'),
  switchCommand(false, 'Cluster'),
  switchCommand(true, 'Zone'),
  switchCommand(false, 'Zone'),
  powerActionCommand,
  changePasswordCommand,
];
