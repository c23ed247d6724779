// createConsoleEndpoint through /client/api, end to end but for the KVM host: an agent enrols through
// the gateway, says where its console proxy is in a signed report, and a ConsoleProxy (agent/console.ts)
// on loopback in front of a stand-in VNC server accepts the URL the API hands out. Then upstream's
// response shape, who may ask (owner, domain admin, root admin; others get success=false "Permission
// denied"), the refusals (not Running, no console configured, unknown VM, bad parameters) and the
// console.token.validity setting.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import forge from 'node-forge';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ConsoleProxy } from '../../agent/console.ts';
import { enrolAgent } from '../../agent/enrol.ts';
import { AgentRunner } from '../../agent/runner.ts';
import { signRequest } from '../../shared/agent/signing.ts';
import { verifyConsoleToken } from '../../shared/crypto/console-token.ts';
import { getAgent } from '../../shared/db/agents.ts';
import { createHostRecord, type Host } from '../../shared/db/hosts.ts';
import { createCluster, createPod, type Zone } from '../../shared/db/infrastructure.ts';
import { getDomain, type Domain } from '../../shared/db/identity.ts';
import type { VirtualMachine } from '../../shared/db/vms.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { patience, until, waitFor } from '../support/wait.ts';
import { seedVm } from '../support/vm-seed.ts';
import { seedZone } from '../support/zones.ts';
import { noEntity, refused, unique } from './identity-fixtures.ts';

const API = 'createConsoleEndpoint';
const RFB = 'RFB 003.008\n';

let runtime: RunningRuntime;
let admin: ApiClient;
let base: string;
let zone: Zone;
let rootDomain: Domain;
let sub: Domain;
let owner: Member;
let stranger: Member;
let domainAdmin: Member;
let subUser: Member;
let agent: { agentId: string; privateKey: string; caCertificate: string };
let bareAgent: { agentId: string; privateKey: string; caCertificate: string };
let host: Host;
let bareHost: Host;
let vnc: Server;
let vncPort: number;
let proxy: ConsoleProxy;
const vms: Record<string, VirtualMachine> = {};

async function post(route: string, text: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${base}/agent/v1/${route}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: text });
  return { status: response.status, body: (await response.json()) as any };
}

async function enrol() {
  const { body } = await admin.call('createAgentEnrollmentToken', { zoneid: zone.id });
  const token = body.createagentenrollmenttokenresponse.agentenrollmenttoken.token;
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = keys.publicKey;
  csr.sign(keys.privateKey, forge.md.sha256.create());
  const sshPublicKey = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'console-test' }).public;
  const enrolled = await post('enrol', JSON.stringify({ token, csr: forge.pki.certificationRequestToPem(csr), sshPublicKey, version: '0.1.0' }));
  expect(enrolled.status, JSON.stringify(enrolled.body)).toBe(200);
  return { ...enrolled.body, privateKey: forge.pki.privateKeyToPem(keys.privateKey) } as { agentId: string; privateKey: string; caCertificate: string };
}

async function report(a: { agentId: string; privateKey: string }, body: Record<string, unknown>) {
  const text = JSON.stringify({ version: '0.1.0', hosts: [], ...body });
  return post('report', text, signRequest(a.privateKey, a.agentId, 'POST', '/agent/v1/report', text));
}

const endpoint = async (client: ApiClient, params: Record<string, string>) => {
  const answer = await client.call(API, params);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body.createconsoleendpointresponse.consoleendpoint;
};

/** The websocket a client builds from the endpoint's `websocket` fields, as the console page does. */
const websocketUrl = (e: any) => `ws://${e.websocket.host}:${e.websocket.port}/${e.websocket.path}?token=${e.websocket.token}`;

/** A request with its path sent as written (fetch would resolve `..` before sending). */
function rawRequest(port: number, path: string, method = 'GET') {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens the URL; resolves with the first message, or the HTTP status of a refusal. */
function open(url: string) {
  const ws = new WebSocket(url, ['binary']);
  return new Promise<{ ws: WebSocket; first?: Buffer; status?: number }>((resolve) => {
    ws.once('message', (data) => resolve({ ws, first: data as Buffer }));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ ws, status: res.statusCode });
    });
    ws.once('error', () => {});
  });
}

beforeAll(async () => {
  runtime = await startRuntime();
  useRuntimeEndpoints(runtime);
  base = runtime.apiUrl.replace(/\/client\/api$/, '');
  const { ApiClient } = await import('../support/client.ts');
  admin = new ApiClient(runtime.apiUrl, runtime.credentials);
  rootDomain = (await getDomain(runtime.credentials.domainid))!;
  const subId = (await admin.call('createDomain', { name: unique('consub') })).body.createdomainresponse.domain.id;
  sub = (await getDomain(subId))!;
  [owner, stranger, domainAdmin, subUser] = await Promise.all([
    seedMember(runtime.apiUrl, unique('cown'), sub, 'User'),
    seedMember(runtime.apiUrl, unique('cstr'), rootDomain, 'User'),
    seedMember(runtime.apiUrl, unique('cda'), sub, 'Domain Admin'),
    seedMember(runtime.apiUrl, unique('csu'), sub, 'User'),
  ]);
  zone = await seedZone(unique('cz'));

  vnc = createServer((s) => {
    s.write(RFB);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => vnc.listen(0, '127.0.0.1', r));
  vncPort = (vnc.address() as { port: number }).port;

  [agent, bareAgent] = [await enrol(), await enrol()];
  proxy = new ConsoleProxy({
    caCertificatePem: agent.caCertificate,
    agentId: agent.agentId,
    listen: { host: '127.0.0.1', port: 0 },
    servesHost: (address) => address === '127.0.0.1',
  });
  const bound = await proxy.start();
  const consoleUrl = `ws://127.0.0.1:${bound.port}/websockify`;
  expect(proxy.url).toBe(consoleUrl);
  const reported = await report(agent, { consoleUrl });
  expect(reported.status, JSON.stringify(reported.body)).toBe(200);
  expect((await getAgent(agent.agentId))?.consoleUrl).toBe(consoleUrl);

  const pod = await createPod(zone, { name: unique('cp'), allocationstate: 'Enabled' });
  const cluster = await createCluster(pod, { name: unique('cc'), allocationstate: 'Enabled', hypervisor: 'KVM' });
  host = await createHostRecord(cluster, { name: unique('ch'), ipaddress: '127.0.0.1', agentId: agent.agentId });
  bareHost = await createHostRecord(cluster, { name: unique('ch'), ipaddress: '127.0.0.2', agentId: bareAgent.agentId });

  const of = (m: Member) => ({ ...m.account, userId: m.user.id });
  const seed = { zoneId: zone.id, serviceOfferingId: randomUUID(), templateId: randomUUID() };
  const on = (h: Host) => ({ hostId: h.id, podId: h.podId, clusterId: h.clusterId });
  vms.running = await seedVm(of(owner), { ...seed, ...on(host), state: 'Running', vncPort });
  vms.stopped = await seedVm(of(owner), { ...seed, state: 'Stopped', lastHostId: host.id });
  vms.error = await seedVm(of(owner), { ...seed, state: 'Error' });
  vms.destroyed = await seedVm(of(owner), { ...seed, state: 'Destroyed', lastHostId: host.id });
  vms.starting = await seedVm(of(owner), { ...seed, ...on(host), state: 'Starting' });
  vms.bare = await seedVm(of(owner), { ...seed, ...on(bareHost), state: 'Running', vncPort: 5900 });
  vms.noDisplay = await seedVm(of(owner), { ...seed, ...on(host), state: 'Running' });
}, patience(120_000));

afterAll(async () => {
  await proxy?.stop();
  await new Promise<void>((r) => (vnc ? vnc.close(() => r()) : r()));
  await runtime?.stop();
});

describe('createConsoleEndpoint', () => {
  it('gives the owner upstream\'s shape: success, url (a page), websocket {token, host, port, path}; the token opens the guest\'s VNC once', async () => {
    const before = Math.floor(Date.now() / 1000);
    const e = await endpoint(owner.client, { virtualmachineid: vms.running!.id });
    const after = Math.ceil(Date.now() / 1000);
    expect(Object.keys(e)).toEqual(['success', 'url', 'websocket']);
    expect(e.success).toBe(true);
    const consoleUrl = (await getAgent(agent.agentId))!.consoleUrl!;
    const port = new URL(consoleUrl).port;
    expect(e.websocket).toEqual({ token: e.websocket.token, host: '127.0.0.1', port, path: 'websockify' });
    // Upstream's page URL: the proxy's noVNC page, told the websocket's port and the token.
    expect(e.url).toBe(`http://127.0.0.1:${port}/resource/noVNC/vnc.html?autoconnect=true&port=${port}&token=${e.websocket.token}`);

    const check = verifyConsoleToken(agent.caCertificate, e.websocket.token, { expect: { vmId: vms.running!.id, agentId: agent.agentId } });
    if (!check.ok) throw new Error(check.reason);
    expect(check.ticket).toMatchObject({ vm: vms.running!.id, agent: agent.agentId, host: '127.0.0.1', port: vncPort });
    // 60 s (console.token.validity) from when it was made.
    expect(check.ticket.exp).toBeGreaterThanOrEqual(before + 60);
    expect(check.ticket.exp).toBeLessThanOrEqual(after + 60);

    // Loading the page (twice, as a reload would) uses no token: the websocket then opens the session.
    for (let i = 0; i < 2; i++) {
      const page = await fetch(e.url);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await page.text()).toContain('<script type="module" src="console.js">');
    }
    const first = await open(websocketUrl(e));
    expect(first.first?.toString()).toBe(RFB);
    first.ws.close();
    // Single use: the same token again is refused.
    expect((await open(websocketUrl(e))).status).toBe(401);
    // A new endpoint opens a new session.
    const again = await open(websocketUrl(await endpoint(owner.client, { virtualmachineid: vms.running!.id })));
    expect(again.first?.toString()).toBe(RFB);
    again.ws.close();
  });

  it('is given to the domain admin of the VM\'s domain and to the root admin; echoes the extra token', async () => {
    expect((await endpoint(domainAdmin.client, { virtualmachineid: vms.running!.id })).success).toBe(true);
    const e = await endpoint(admin, { virtualmachineid: vms.running!.id, token: 'extra-123' });
    expect(e.success).toBe(true);
    expect(e.websocket.extra).toBe('extra-123');
    expect(new URL(e.url).searchParams.get('extra')).toBe('extra-123');
  });

  it('refuses others as upstream does: success false, "Permission denied"', async () => {
    for (const m of [stranger, subUser]) {
      expect(await endpoint(m.client, { virtualmachineid: vms.running!.id })).toEqual({ success: false, details: 'Permission denied' });
    }
  });

  it('refuses a VM that is not Running with upstream\'s text', async () => {
    for (const vm of [vms.stopped!, vms.error!, vms.destroyed!, vms.starting!]) {
      expect(await endpoint(owner.client, { virtualmachineid: vm.id }), vm.state).toEqual({
        success: false,
        details: `Server Internal Error: VM ${vm.id} must be running to connect console, sending blank response for console access request`,
      });
    }
  });

  it('says clearly when the host\'s agent runs no console proxy, or the display is unknown', async () => {
    const e = await endpoint(owner.client, { virtualmachineid: vms.bare!.id });
    expect(e.success).toBe(false);
    expect(e.details).toMatch(new RegExp(`^Console access is not available: agent \\S+ \\(serving host ${bareHost.name}\\) runs no console proxy; start it with \`mold-agent run --console-listen <ip:port>`));
    const d = await endpoint(owner.client, { virtualmachineid: vms.noDisplay!.id });
    expect(d).toEqual({ success: false, details: `The VNC display of VM ${vms.noDisplay!.id} is not known (it was started before Mold recorded displays): stop and start it to reach its console` });
  });

  it('forgets the console when the agent reports without one, and refuses a report with a non-websocket URL', async () => {
    expect((await report(bareAgent, { consoleUrl: 'http://10.0.0.1:6080/' })).status).toBe(400);
    expect((await report(bareAgent, { consoleUrl: 'wss://console.example.com/a1' })).status).toBe(200);
    const e = await endpoint(owner.client, { virtualmachineid: vms.bare!.id });
    expect(e.success).toBe(true);
    expect(e.websocket).toMatchObject({ host: 'console.example.com', port: '443', path: 'a1' });
    // The page beside the websocket, over https; the page is told the websocket's path, which is not upstream's.
    expect(e.url.startsWith('https://console.example.com/resource/noVNC/vnc.html?autoconnect=true&port=443&path=a1&token=mc1.')).toBe(true);
    expect((await report(bareAgent, {})).status).toBe(200);
    expect((await getAgent(bareAgent.agentId))?.consoleUrl).toBeUndefined();
    expect((await endpoint(owner.client, { virtualmachineid: vms.bare!.id })).success).toBe(false);
  });

  it('follows console.token.validity', async () => {
    expect((await admin.call('updateConfiguration', { name: 'console.token.validity', value: '300' })).status).toBe(200);
    try {
      const before = Math.floor(Date.now() / 1000);
      const e = await endpoint(owner.client, { virtualmachineid: vms.running!.id });
      const after = Math.ceil(Date.now() / 1000);
      const check = verifyConsoleToken(agent.caCertificate, e.websocket.token);
      if (!check.ok) throw new Error(check.reason);
      expect(check.ticket.exp).toBeGreaterThanOrEqual(before + 300);
      expect(check.ticket.exp).toBeLessThanOrEqual(after + 300);
      refused(await admin.call('updateConfiguration', { name: 'console.token.validity', value: '7200' }), 'updateConfiguration', 431, /range: \[5-3600\]/);
    } finally {
      await admin.call('updateConfiguration', { name: 'console.token.validity', value: '60' });
    }
  });

  it('serves the console page and noVNC\'s files from the proxy, and nothing else', async () => {
    const port = Number(new URL(proxy.url).port);
    const page = await rawRequest(port, '/resource/noVNC/vnc.html?autoconnect=true&token=whatever');
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toMatch(/connect-src 'self'/);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    for (const [path, type] of [['console.js', 'text/javascript'], ['console.css', 'text/css'], ['core/rfb.js', 'text/javascript'], ['core/util/browser.js', 'text/javascript'], ['vendor/pako/lib/zlib/inflate.js', 'text/javascript']]) {
      const r = await rawRequest(port, `/resource/noVNC/${path}`);
      expect(r.status, path).toBe(200);
      expect(r.headers['content-type'], path).toMatch(new RegExp(`^${type}`));
    }
    expect((await rawRequest(port, '/resource/noVNC/core/rfb.js', 'HEAD')).status).toBe(200);
    for (const path of [
      '/resource/noVNC/../../../../etc/passwd',
      '/resource/noVNC/core/../../package.json',
      '/resource/noVNC/%2e%2e/%2e%2e/package.json',
      '/resource/noVNC/..%2f..%2fpackage.json',
      '/resource/noVNC//etc/passwd',
      '/resource/noVNC/vendor/pako/README.md',
      '/resource/noVNC/core/',
      '/resource/noVNC/',
      '/resource/noVNC/VNC.HTML',
      '/resource/noVNC/nope.js',
    ]) {
      expect((await rawRequest(port, path)).status, path).toBe(404);
    }
    expect((await rawRequest(port, '/resource/noVNC/vnc.html', 'POST')).status).toBe(405);
    // Elsewhere: the websocket's place, which plain HTTP does not open.
    expect((await rawRequest(port, '/websockify')).status).toBe(426);
    expect(proxy.sessionCount).toBe(0);
  });

  it('refuses bad parameters with 431 naming them', async () => {
    refused(await owner.client.call(API, {}), API, 431, `Unable to execute API command ${API.toLowerCase()} due to missing parameter virtualmachineid`);
    const missingVm = randomUUID();
    refused(await owner.client.call(API, { virtualmachineid: missingVm }), API, 431, noEntity(API.toLowerCase(), 'virtualmachineid', missingVm));
    refused(await owner.client.call(API, { virtualmachineid: 'not-a-uuid' }), API, 431, /virtualmachineid/);
  });
});

describe('mold-agent run --console-listen', () => {
  it('runs the proxy, reports its URL, learns its hosts from the answer and serves their VMs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mold-console-agent-'));
    let runner: AgentRunner | undefined;
    try {
      const { body } = await admin.call('createAgentEnrollmentToken', { zoneid: zone.id });
      const state = await enrolAgent({ url: runtime.apiUrl, token: body.createagentenrollmenttokenresponse.agentenrollmenttoken.token, dir, name: 'console-runner' });
      const pod = await createPod(zone, { name: unique('cp'), allocationstate: 'Enabled' });
      const cluster = await createCluster(pod, { name: unique('cc'), allocationstate: 'Enabled', hypervisor: 'KVM' });
      const own = await createHostRecord(cluster, { name: unique('ch'), ipaddress: '127.0.0.1', agentId: state.config.agentId });
      const vm = await seedVm(
        { ...owner.account, userId: owner.user.id },
        { zoneId: zone.id, serviceOfferingId: randomUUID(), templateId: randomUUID(), hostId: own.id, podId: own.podId, clusterId: own.clusterId, state: 'Running', vncPort },
      );
      runner = await AgentRunner.create(state, { console: { listen: { host: '127.0.0.1', port: 0 } } });
      await runner.start();
      const url = runner.console!.url;
      expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/websockify$/);
      await until('the agent to publish its console URL', async () => (await getAgent(state.config.agentId))?.consoleUrl, (published) => published === url);
      // The host list arrives with the first report's answer; until then the proxy serves no host.
      let session: Awaited<ReturnType<typeof open>> | undefined;
      await waitFor('the console proxy to serve the host', async () => {
        const e = await endpoint(owner.client, { virtualmachineid: vm.id });
        expect(e.url.startsWith(`${url.replace(/^ws:/, 'http:').replace(/websockify$/, 'resource/noVNC/vnc.html')}?autoconnect=true&port=`)).toBe(true);
        session = await open(websocketUrl(e));
        return session.first !== undefined;
      });
      expect(session!.first!.toString()).toBe(RFB);
      session!.ws.close();
    } finally {
      await runner?.stop(1000);
      rmSync(dir, { recursive: true, force: true });
    }
  }, patience(60_000));
});
