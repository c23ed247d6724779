// The VM console (upstream's CreateConsoleEndpointCmd over ConsoleAccessManagerImpl, 4.18+). Upstream
// hands out a URL of its console proxy VM; Mold's console proxy is the agent of the VM's host
// (agent/console.ts), at the address its reports give. The token is a ticket signed with Mold's CA key
// (shared/crypto/console-token.ts) naming the VM, its host's address and VNC port, an expiry
// (console.token.validity) and a nonce; the agent checks it with the CA certificate it holds and
// accepts each token once.
//
// As upstream, a refusal past parameter validation is not an error response but an endpoint with
// `success: false` and the reason in `details`.
import { getAgent } from '../../../shared/db/agents.ts';
import { getHost } from '../../../shared/db/hosts.ts';
import { getVm, type VirtualMachine } from '../../../shared/db/vms.ts';
import { loadCa } from '../../../shared/crypto/ca.ts';
import { consoleTicketFor, signConsoleToken } from '../../../shared/crypto/console-token.ts';
import { param } from '../../../shared/cloudstack/params.ts';
import { consolePageUrl, websocketPath, websocketPort } from '../../../shared/console-page.ts';
import { ALL_ROLES, defineCommand } from '../command.ts';
import { canAccess } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';

const refused = (details: string) => ({ consoleendpoint: { success: false, details } });

/** ConsoleAccessManagerImpl wraps what generateAccessEndpoint throws in this. */
const internal = (message: string) => refused(`Server Internal Error: ${message}`);

const blank = 'sending blank response for console access request';

/** The websocket fields upstream gives beside the URL, from the agent's console URL. */
function websocketOf(consoleUrl: string, token: string, extra: string | undefined) {
  const u = new URL(consoleUrl);
  return {
    token,
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: websocketPort(u),
    path: websocketPath(u),
    ...(extra && { extra }),
  };
}

async function endpointFor(vm: VirtualMachine, validitySeconds: number, extra: string | undefined) {
  // Upstream refuses Stopped, Error and Destroyed; Mold knows a VM's display only once it runs.
  if (vm.state !== 'Running') return internal(`VM ${vm.id} must be running to connect console, ${blank}`);
  if (!vm.hostId) return internal(`VM ${vm.id} lost host info, ${blank}`);
  const host = await getHost(vm.hostId);
  if (!host) return internal(`VM ${vm.id}'s host does not exist, ${blank}`);
  const vncPort = typeof vm.vncPort === 'number' ? vm.vncPort : undefined;
  if (vncPort === undefined) return refused(`The VNC display of VM ${vm.id} is not known (it was started before Mold recorded displays): stop and start it to reach its console`);
  const agent = host.agentId ? await getAgent(host.agentId) : undefined;
  if (!agent || agent.state !== 'Enabled') return refused(`Console access is not available: no enabled agent serves host ${host.name}`);
  if (!agent.consoleUrl) {
    return refused(`Console access is not available: agent ${agent.name} (serving host ${host.name}) runs no console proxy; start it with \`mold-agent run --console-listen <ip:port> [--console-url <ws(s) URL>]\``);
  }
  let privateKey: string;
  try {
    privateKey = (await loadCa()).privateKey;
  } catch {
    return refused('Console access denied. Ticket service is not ready yet');
  }
  const ticket = consoleTicketFor({ vmId: vm.id, agentId: agent.id, hostAddress: host.ipaddress, vncPort }, validitySeconds);
  const token = signConsoleToken(privateKey, ticket);
  return {
    consoleendpoint: {
      success: true,
      url: consolePageUrl(agent.consoleUrl, token, extra),
      websocket: websocketOf(agent.consoleUrl, token, extra),
    },
  };
}

const createConsoleEndpointCommand = defineCommand({
  name: 'createConsoleEndpoint',
  description:
    "Create a console endpoint to connect to a VM console. Mold: the URL is a page (noVNC) served by the console proxy run by the agent of the VM's host; opened in a browser it shows the VM's screen. `websocket` gives that proxy's websocket (subprotocol binary) for clients of their own. The token is signed by Mold's CA, lasts console.token.validity seconds and opens one session (loading the page does not use it).",
  since: '4.18.0',
  params: {
    virtualmachineid: param.uuid('ID of the VM'),
    token: param.string('(optional) extra security token, valid when the extra validation is enabled').optional(),
  },
  roles: ALL_ROLES,
  isasync: false,
  handler: async ({ params, caller, settings }) => {
    const vm = await getVm(params.virtualmachineid.toLowerCase());
    if (!vm) throw noSuchEntity('createConsoleEndpoint', 'virtualmachineid', params.virtualmachineid);
    if (!canAccess(caller, vm)) return { body: refused('Permission denied') };
    return { body: await endpointFor(vm, settings.number('console.token.validity'), params.token) };
  },
});

export const consoleCommands = [createConsoleEndpointCommand];
