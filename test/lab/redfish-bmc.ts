// A lab host's Redfish BMC: a small Redfish service (HTTPS, basic auth) whose ComputerSystem is the lab
// host. Its power state and Reset actions go through test/lab/bmc.sh, the same chassis script that
// OpenIPMI's ipmi_sim drives, so both BMCs act on the host in exactly the same way. It runs in this
// machine's namespace on the host's BMC address (as ipmi_sim does): a host that loses power keeps it.
//
//   node test/lab/redfish-bmc.ts <dir> <address> <port> <host dir> <netns> <veth>
//
// <dir> holds cert.pem and key.pem (made by the lab with openssl), `user` (the account's name) and
// `password` (its password; a PATCH of the account rewrites it, so a changed password outlives a
// restart). Resources: the service root, /redfish/v1/Systems (one member), the ComputerSystem with
// PowerState and #ComputerSystem.Reset, and /redfish/v1/AccountService/Accounts (one account).
// Like many real BMCs (apache/cloudstack#13376) it answers 409 to a Reset that asks for the power
// state the system is already in.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';

const [dir, address, port, hostDir, netns, veth] = process.argv.slice(2);
if (!dir || !address || !port || !hostDir || !netns || !veth) {
  console.error('usage: redfish-bmc.ts <dir> <address> <port> <host dir> <netns> <veth>');
  process.exit(2);
}
const BMC_SCRIPT = join(import.meta.dirname, 'bmc.sh');
const SYSTEM = '/redfish/v1/Systems/System.Embedded.1';
const ACCOUNT = '/redfish/v1/AccountService/Accounts/2';
const RESET_TYPES = ['On', 'ForceOn', 'ForceOff', 'GracefulShutdown', 'ForceRestart', 'GracefulRestart', 'PowerCycle'];
const run = promisify(execFile);

const user = () => readFileSync(join(dir, 'user'), 'utf8').trim();
const password = () => readFileSync(join(dir, 'password'), 'utf8').trim();

/** bmc.sh <host dir> <netns> <veth> get|set ...: the chassis, as ipmi_sim's chassis_control runs it. */
const chassis = (...args: string[]) => run(BMC_SCRIPT, [hostDir, netns, veth, ...args], { timeout: 10_000 });

async function powerState(): Promise<'On' | 'Off'> {
  const { stdout } = await chassis('get', 'power');
  return /power:1/.test(stdout) ? 'On' : 'Off';
}

/** What each ResetType asks of the chassis, and the state in which it is refused (409). */
const RESETS: Record<string, { refusedWhen?: 'On' | 'Off'; set: string[] }> = {
  On: { refusedWhen: 'On', set: ['power', '1'] },
  ForceOn: { refusedWhen: 'On', set: ['power', '1'] },
  ForceOff: { refusedWhen: 'Off', set: ['power', '0'] },
  GracefulShutdown: { refusedWhen: 'Off', set: ['shutdown', '1'] },
  ForceRestart: { set: ['reset', '1'] },
  GracefulRestart: { set: ['reset', '1'] },
  PowerCycle: { set: ['power', '0', 'power', '1'] },
};

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { ...(text && { 'content-type': 'application/json' }), 'odata-version': '4.0', ...headers });
  res.end(text);
}

/** A Redfish error body (the Base message registry's form). */
const error = (messageId: string, message: string) => ({
  error: { code: `Base.1.8.${messageId}`, message, '@Message.ExtendedInfo': [{ MessageId: `Base.1.8.${messageId}`, Message: message, Severity: 'Warning' }] },
});

function authorized(req: IncomingMessage): boolean {
  const m = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon > 0 && decoded.slice(0, colon) === user() && decoded.slice(colon + 1) === password();
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 65_536) return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function handle(req: IncomingMessage, res: ServerResponse) {
  const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '') || '/';
  const log = (status: number) => console.log(JSON.stringify({ at: new Date().toISOString(), method: req.method, path, status }));
  // The service root answers without credentials, as the specification has it.
  if (req.method === 'GET' && path === '/redfish/v1') {
    send(res, 200, { '@odata.id': '/redfish/v1', '@odata.type': '#ServiceRoot.v1_5_0.ServiceRoot', Id: 'RootService', RedfishVersion: '1.6.0', Systems: { '@odata.id': '/redfish/v1/Systems' }, AccountService: { '@odata.id': '/redfish/v1/AccountService' } });
    return log(200);
  }
  if (!authorized(req)) {
    send(res, 401, error('InsufficientPrivilege', 'There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation.'), { 'www-authenticate': 'Basic realm="Redfish"' });
    return log(401);
  }
  const route = `${req.method} ${path}`;
  if (route === 'GET /redfish/v1/Systems') {
    send(res, 200, { '@odata.id': '/redfish/v1/Systems', '@odata.type': '#ComputerSystemCollection.ComputerSystemCollection', Name: 'Computer System Collection', Members: [{ '@odata.id': SYSTEM }], 'Members@odata.count': 1 });
  } else if (route === `GET ${SYSTEM}`) {
    send(res, 200, {
      '@odata.id': SYSTEM,
      '@odata.type': '#ComputerSystem.v1_10_0.ComputerSystem',
      Id: 'System.Embedded.1',
      Name: netns,
      SystemType: 'Physical',
      PowerState: await powerState(),
      Actions: { '#ComputerSystem.Reset': { target: `${SYSTEM}/Actions/ComputerSystem.Reset`, 'ResetType@Redfish.AllowableValues': RESET_TYPES } },
    });
  } else if (route === `POST ${SYSTEM}/Actions/ComputerSystem.Reset`) {
    const resetType = (((await readBody(req)) as { ResetType?: unknown } | undefined)?.ResetType ?? '') as string;
    const reset = RESETS[resetType];
    if (!reset) {
      send(res, 400, error('ActionParameterValueNotInList', `The value '${resetType}' for the parameter ResetType in the action ComputerSystem.Reset is not in the list of acceptable values.`));
      return log(400);
    }
    if (reset.refusedWhen && (await powerState()) === reset.refusedWhen) {
      send(res, 409, error('GeneralError', `Unable to perform the operation because the server is already powered ${reset.refusedWhen.toLowerCase()}.`));
      return log(409);
    }
    await chassis('set', ...reset.set);
    send(res, 204);
  } else if (route === 'GET /redfish/v1/AccountService/Accounts') {
    send(res, 200, { '@odata.id': '/redfish/v1/AccountService/Accounts', Name: 'Accounts Collection', Members: [{ '@odata.id': ACCOUNT }], 'Members@odata.count': 1 });
  } else if (route === `GET ${ACCOUNT}`) {
    send(res, 200, { '@odata.id': ACCOUNT, '@odata.type': '#ManagerAccount.v1_4_0.ManagerAccount', Id: '2', UserName: user(), RoleId: 'Administrator', Enabled: true, Password: null });
  } else if (route === `PATCH ${ACCOUNT}`) {
    const next = ((await readBody(req)) as { Password?: unknown } | undefined)?.Password;
    if (typeof next !== 'string' || next.length < 1 || next.length > 20) {
      send(res, 400, error('PropertyValueFormatError', 'The value for the property Password is of a different format than the property can accept.'));
      return log(400);
    }
    writeFileSync(join(dir, 'password'), next + '\n', { mode: 0o600 });
    send(res, 200, { '@odata.id': ACCOUNT, Id: '2', UserName: user() });
  } else {
    send(res, 404, error('ResourceMissingAtURI', `The resource at the URI ${path} was not found.`));
    return log(404);
  }
  return log(res.statusCode);
}

const server = createServer({ cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) }, (req, res) => {
  handle(req, res).catch((err: Error) => {
    console.error(JSON.stringify({ at: new Date().toISOString(), error: err.message }));
    if (!res.headersSent) send(res, 500, error('InternalError', 'The request failed due to an internal service error.'));
    else res.end();
  });
});
server.listen(Number(port), address, () => console.log(JSON.stringify({ at: new Date().toISOString(), listening: `${address}:${port}` })));
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
