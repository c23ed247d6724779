// The agent gateway as an agent sees it, driven by an independent client: node-forge keys and CSRs,
// requests signed with shared/agent/signing.ts, plain fetch to /agent/v1/* on the API's base URL.
// Enrolment with single-use tokens, certificates from Mold's CA, queue credentials through STS,
// signed requests (replays, skew, wrong keys, foreign CAs, revocation refused), and results and
// heartbeats that drive real Step Functions executions.
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import forge from 'node-forge';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Health } from '../../functions/agent-gateway/health.ts';
import { signRequest } from '../../shared/agent/signing.ts';
import { createCa, signAgentCsr } from '../../shared/crypto/ca.ts';
import { createAgentRecord, createEnrollmentToken } from '../../shared/db/agents.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { getItem } from '../../shared/db/items.ts';
import { createHostRecord } from '../../shared/db/hosts.ts';
import { getCluster } from '../../shared/db/infrastructure.ts';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Zone } from '../../shared/db/infrastructure.ts';
import { dynamo, sfn, sqs } from '../../shared/aws.ts';
import { ApiClient } from '../support/client.ts';
import { seedMember } from '../support/members.ts';
import { finishedExecution } from '../support/executions.ts';
import { sleep, until } from '../support/wait.ts';
import { REPO_ROOT, startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { seedZone } from '../support/zones.ts';

let runtime: RunningRuntime;
let admin: ApiClient;
let zone: Zone;
let base: string;
let stsEndpoint: string;

beforeAll(async () => {
  runtime = await startRuntime({
    statemachinesDirs: [join(REPO_ROOT, 'statemachines'), join(REPO_ROOT, 'test/fixtures/statemachines')],
  });
  useRuntimeEndpoints(runtime);
  admin = new ApiClient(runtime.apiUrl, runtime.credentials);
  zone = await seedZone(`agents-${randomUUID().slice(0, 8)}`);
  // The gateway shares the API's base URL: /client/api and /agent/v1 side by side.
  base = runtime.apiUrl.replace(/\/client\/api$/, '');
  stsEndpoint = (runtime.endpoints as { sts?: string }).sts!;
});

afterAll(async () => {
  await runtime?.stop();
});

// ---- an agent, written from the protocol ----

interface AgentKeys {
  privateKey: string;
  csr: string;
}

function agentKeys(): AgentKeys {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = keys.publicKey;
  csr.setSubject([{ name: 'commonName', value: 'whatever the agent asks for' }]);
  csr.sign(keys.privateKey, forge.md.sha256.create());
  return { privateKey: forge.pki.privateKeyToPem(keys.privateKey), csr: forge.pki.certificationRequestToPem(csr) };
}

const sshPublicKey = () => ssh2.utils.generateKeyPairSync('ed25519', { comment: 'mold-agent-test' }).public;

async function post(route: string, body: unknown, headers: Record<string, string> = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await fetch(`${base}/agent/v1/${route}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: text });
  return { status: response.status, body: (await response.json()) as any };
}

interface Enrolled {
  agentId: string;
  privateKey: string;
  certificate: string;
  caCertificate: string;
  queueUrl: string;
}

/** Signs as the agent does; `now` lets a test sign with a skewed clock. */
function signed(agent: { agentId: string; privateKey: string }, route: string, body: unknown, now = new Date()) {
  const text = JSON.stringify(body);
  return { text, headers: signRequest(agent.privateKey, agent.agentId, 'POST', `/agent/v1/${route}`, text, now) };
}

async function call(agent: { agentId: string; privateKey: string }, route: string, body: unknown) {
  const { text, headers } = signed(agent, route, body);
  return post(route, text, headers);
}

async function newToken(zoneid = zone.id): Promise<string> {
  const { status, body } = await admin.call('createAgentEnrollmentToken', { zoneid });
  expect(status).toBe(200);
  return body.createagentenrollmenttokenresponse.agentenrollmenttoken.token;
}

async function enrol(token?: string): Promise<Enrolled> {
  const keys = agentKeys();
  const { status, body } = await post('enrol', { token: token ?? (await newToken()), csr: keys.csr, sshPublicKey: sshPublicKey(), version: '0.1.0' });
  expect(status, JSON.stringify(body)).toBe(200);
  return { ...body, privateKey: keys.privateKey };
}

async function agentsListed(params: Record<string, string> = {}) {
  const { status, body } = await admin.call('listAgents', params);
  expect(status).toBe(200);
  return (body.listagentsresponse.agent ?? []) as any[];
}

async function eventsOfType(type: string) {
  const { body } = await admin.call('listEvents', { type, listall: true, pagesize: -1 });
  return (body.listeventsresponse.event ?? []) as any[];
}

// ---- the admin commands ----

describe('createAgentEnrollmentToken', () => {
  it('creates a single-use token for a zone, expiring in an hour by default, and records an event', async () => {
    const before = Math.floor(Date.now() / 1000) * 1000; // the answer's dates are to the second
    const { status, body } = await admin.call('createAgentEnrollmentToken', { zoneid: zone.id });
    const after = Date.now();
    expect(status).toBe(200);
    const token = body.createagentenrollmenttokenresponse.agentenrollmenttoken;
    expect(Object.keys(token).sort()).toEqual(['created', 'expires', 'id', 'token', 'zoneid', 'zonename']);
    expect(token).toMatchObject({ zoneid: zone.id, zonename: zone.name });
    expect(token.token.length).toBeGreaterThanOrEqual(40);
    const expires = Date.parse(token.expires.replace('+0000', 'Z'));
    // An hour from when it was made.
    expect(expires).toBeGreaterThanOrEqual(before + 60 * 60_000);
    expect(expires).toBeLessThanOrEqual(after + 60 * 60_000);
    // Only the digest is stored: the token itself appears nowhere in its record.
    const stored = JSON.stringify(await getItem(`AGENTTOKEN#${createHash('sha256').update(token.token).digest('hex')}`, 'TOKEN'));
    expect(stored).toContain(token.id);
    expect(stored).not.toContain(token.token);
    expect((await eventsOfType('AGENT.ENROLLMENT.TOKEN.CREATE')).some((e) => e.resourceid === token.id)).toBe(true);
  });

  it('takes a validity in minutes and refuses one out of range', async () => {
    const { body } = await admin.call('createAgentEnrollmentToken', { zoneid: zone.id, validity: 5 });
    const token = body.createagentenrollmenttokenresponse.agentenrollmenttoken;
    const minutes = (Date.parse(token.expires.replace('+0000', 'Z')) - Date.parse(token.created.replace('+0000', 'Z'))) / 60_000;
    expect(minutes).toBe(5);
    for (const validity of [0, -3, 100_000]) {
      const refused = await admin.call('createAgentEnrollmentToken', { zoneid: zone.id, validity });
      expect(refused.status).toBe(431);
      expect(refused.body.createagentenrollmenttokenresponse.errortext).toContain('validity');
    }
  });

  it('refuses a zone that does not exist, naming zoneid, and changes nothing', async () => {
    const events = (await eventsOfType('AGENT.ENROLLMENT.TOKEN.CREATE')).length;
    for (const zoneid of [randomUUID(), 'not-a-uuid']) {
      const { status, body } = await admin.call('createAgentEnrollmentToken', { zoneid });
      expect(status).toBe(431);
      expect(body.createagentenrollmenttokenresponse).toMatchObject({ errorcode: 431, cserrorcode: 4350 });
      expect(body.createagentenrollmenttokenresponse.errortext).toContain('zoneid');
    }
    expect((await eventsOfType('AGENT.ENROLLMENT.TOKEN.CREATE')).length).toBe(events);
  });

  it('is for admins only', async () => {
    const root = (await getDomain(runtime.credentials.domainid))!;
    for (const role of ['User', 'Domain Admin']) {
      const { client } = await seedMember(runtime.apiUrl, `agents-${role.replace(' ', '').toLowerCase()}-${randomUUID().slice(0, 6)}`, root, role);
      for (const [command, params] of [
        ['createAgentEnrollmentToken', { zoneid: zone.id }],
        ['listAgents', {}],
        ['listFleetStatus', {}],
        ['revokeAgent', { id: randomUUID() }],
      ] as const) {
        const { status, body } = await client.call(command, params);
        expect(status).toBe(432);
        expect(body[`${command.toLowerCase()}response`].errorcode).toBe(432);
      }
    }
  });
});

// ---- enrolment ----

describe('enrolment', () => {
  let agent: Enrolled;
  let token: string;

  beforeAll(async () => {
    token = await newToken();
    agent = await enrol(token);
  });

  it('returns a certificate for the agent, signed by Mold\'s CA, and the agent\'s own queue', async () => {
    const certificate = new X509Certificate(agent.certificate);
    const ca = new X509Certificate(agent.caCertificate);
    expect(certificate.checkIssued(ca)).toBe(true);
    expect(certificate.verify(ca.publicKey)).toBe(true);
    expect(certificate.subject).toContain(`CN=${agent.agentId}`);
    expect(certificate.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    const days = (Date.parse(certificate.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(364);
    expect(days).toBeLessThan(366);
    // The CA the runtime made at first start: a 0600 file in its data directory.
    const caFile = join(runtime.dataDir, 'ca.json');
    expect(statSync(caFile).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(caFile, 'utf8')).certificate).toBe(agent.caCertificate);
    expect(agent.queueUrl).toMatch(new RegExp(`/mold-agent-${agent.agentId}$`));
    expect(agent).toMatchObject({ zoneId: zone.id });
  });

  it('lists the agent with its certificate and SSH key, and records the enrolment', async () => {
    const [listed] = await agentsListed({ id: agent.agentId });
    expect(listed).toMatchObject({ id: agent.agentId, zoneid: zone.id, zonename: zone.name, state: 'Enabled', version: '0.1.0', ipaddress: '127.0.0.1' });
    expect(listed.sshpublickey).toMatch(/^ssh-ed25519 /);
    expect(listed.certificateserial).toBe(new X509Certificate(agent.certificate).serialNumber.toLowerCase());
    expect(listed.certificateexpires).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$/);
    expect((await agentsListed({ zoneid: zone.id })).map((a) => a.id)).toContain(agent.agentId);
    expect(await agentsListed({ zoneid: randomUUID() })).toEqual([]);
    expect((await eventsOfType('AGENT.ENROLL')).some((e) => e.resourceid === agent.agentId && e.resourcetype === 'Agent')).toBe(true);
  });

  it('refuses a token used before, expired, revoked or unknown', async () => {
    const keys = agentKeys();
    const attempt = (t: string) => post('enrol', { token: t, csr: keys.csr, sshPublicKey: sshPublicKey(), version: '0.1.0' });
    const count = (await agentsListed()).length;

    expect(await attempt(token)).toEqual({ status: 401, body: { error: 'the enrolment token was already used' } });

    const expired = await createEnrollmentToken({ zoneId: zone.id, expires: new Date(Date.now() - 1000) });
    expect(await attempt(expired.token)).toEqual({ status: 401, body: { error: 'the enrolment token has expired' } });

    const { body } = await admin.call('createAgentEnrollmentToken', { zoneid: zone.id });
    const revocable = body.createagentenrollmenttokenresponse.agentenrollmenttoken;
    expect((await admin.call('revokeAgentEnrollmentToken', { id: revocable.id })).body).toEqual({ revokeagentenrollmenttokenresponse: { success: true } });
    expect(await attempt(revocable.token)).toEqual({ status: 401, body: { error: 'the enrolment token was revoked' } });
    expect((await admin.call('revokeAgentEnrollmentToken', { id: revocable.id })).status).toBe(431);

    expect(await attempt('no-such-token')).toEqual({ status: 401, body: { error: 'the enrolment token is not valid' } });
    expect((await agentsListed()).length).toBe(count);
  });

  it('refuses a malformed request without using up the token', async () => {
    const fresh = await newToken();
    expect((await post('enrol', 'not json')).status).toBe(400);
    expect((await post('enrol', { token: fresh })).status).toBe(400);
    const refused = await post('enrol', { token: fresh, csr: 'not a csr', sshPublicKey: sshPublicKey(), version: '1' });
    expect(refused.status).toBe(400);
    // A CSR whose key is too small.
    const small = forge.pki.rsa.generateKeyPair({ bits: 1024 });
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = small.publicKey;
    csr.sign(small.privateKey, forge.md.sha256.create());
    const weak = await post('enrol', { token: fresh, csr: forge.pki.certificationRequestToPem(csr), sshPublicKey: sshPublicKey(), version: '1' });
    expect(weak).toEqual({ status: 400, body: { error: 'the CSR key must be RSA of at least 2048 bits' } });
    expect((await post('enrol', { token: fresh, csr: agentKeys().csr, sshPublicKey: 'nonsense', version: '1' })).status).toBe(400);
    // The token still works.
    await enrol(fresh);
  });

  it('gives one of two simultaneous enrolments with the same token the agent, and refuses the other', async () => {
    const shared = await newToken();
    const keys = agentKeys();
    const body = { token: shared, csr: keys.csr, sshPublicKey: sshPublicKey(), version: '0.1.0' };
    const answers = await Promise.all([post('enrol', body), post('enrol', body), post('enrol', body)]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 401, 401]);
  });
});

// ---- signed requests ----

describe('signed requests', () => {
  let agent: Enrolled;

  beforeAll(async () => {
    agent = await enrol();
  });

  it('hands out credentials that reach the agent\'s own queue, with a session policy naming only it', async () => {
    const { status, body } = await call(agent, 'credentials', {});
    expect(status).toBe(200);
    expect(body).toMatchObject({ queueUrl: agent.queueUrl, region: 'us-east-1', endpoint: runtime.endpoints.sqs });
    const lasts = Date.parse(body.expiration) - Date.now();
    expect(lasts).toBeGreaterThan(14 * 60_000);
    expect(lasts).toBeLessThanOrEqual(60 * 60_000);

    await sqs().send(new SendMessageCommand({ QueueUrl: agent.queueUrl, MessageBody: '{"hello":"agent"}' }));
    const own = new SQSClient({
      region: body.region,
      endpoint: body.endpoint,
      useQueueUrlAsEndpoint: false,
      credentials: { accessKeyId: body.accessKeyId, secretAccessKey: body.secretAccessKey, sessionToken: body.sessionToken },
    });
    const { Messages = [] } = await own.send(new ReceiveMessageCommand({ QueueUrl: body.queueUrl, WaitTimeSeconds: 5 }));
    expect(Messages.map((m) => m.Body)).toEqual(['{"hello":"agent"}']);

    // What STS was asked: the queue role, one session per agent, a policy on this queue's ARN only.
    const session = (await (await fetch(`${stsEndpoint}/sessions/${body.accessKeyId}`)).json()) as any;
    expect(session).toMatchObject({ roleArn: 'arn:aws:iam::000000000000:role/mold-agent-queue', roleSessionName: `mold-agent-${agent.agentId}`, durationSeconds: 900 });
    expect(JSON.parse(session.policy)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
          Resource: `arn:aws:sqs:us-east-1:000000000000:mold-agent-${agent.agentId}`,
        },
      ],
    });
  });

  it('refuses a replayed request', async () => {
    const { text, headers } = signed(agent, 'credentials', {});
    expect((await post('credentials', text, headers)).status).toBe(200);
    expect(await post('credentials', text, headers)).toEqual({ status: 401, body: { error: 'the nonce was already used' } });
  });

  it('refuses a timestamp more than five minutes off, either way', async () => {
    for (const offset of [-6 * 60_000, 6 * 60_000]) {
      const { text, headers } = signed(agent, 'credentials', {}, new Date(Date.now() + offset));
      expect(await post('credentials', text, headers)).toEqual({ status: 401, body: { error: 'the timestamp is outside the allowed window' } });
    }
    const { text, headers } = signed(agent, 'credentials', {}, new Date(Date.now() - 4 * 60_000));
    expect((await post('credentials', text, headers)).status).toBe(200);
  });

  it('refuses a request signed with another key, an altered body, another route, or no signature', async () => {
    const stranger = { agentId: agent.agentId, privateKey: agentKeys().privateKey };
    expect(await call(stranger, 'credentials', {})).toEqual({ status: 401, body: { error: 'the signature does not match' } });

    const { headers } = signed(agent, 'heartbeat', { commandId: 'c', taskToken: randomUUID() });
    expect((await post('heartbeat', JSON.stringify({ commandId: 'c', taskToken: randomUUID() }), headers)).status).toBe(401);
    const moved = signed(agent, 'heartbeat', { commandId: 'c', taskToken: randomUUID() });
    expect((await post('results', moved.text, moved.headers)).status).toBe(401);

    expect(await post('credentials', {})).toEqual({ status: 401, body: { error: 'the request is not signed' } });
    expect(await call({ agentId: randomUUID(), privateKey: agent.privateKey }, 'credentials', {})).toEqual({ status: 401, body: { error: 'unknown agent' } });
  });

  it('refuses an agent whose certificate is not from Mold\'s CA', async () => {
    const keys = agentKeys();
    const id = randomUUID();
    const foreign = signAgentCsr(createCa(), keys.csr, id);
    await createAgentRecord({
      id,
      name: 'impostor',
      zoneId: zone.id,
      certificate: foreign.certificate,
      certificateSerial: foreign.serial,
      certificateExpires: foreign.notAfter.toISOString(),
      sshPublicKey: sshPublicKey(),
      queueUrl: agent.queueUrl,
      version: '0.1.0',
    });
    expect(await call({ agentId: id, privateKey: keys.privateKey }, 'credentials', {})).toEqual({
      status: 401,
      body: { error: "the certificate is not issued by Mold's CA" },
    });
  });

  it('refuses a malformed body of a signed route with 400', async () => {
    expect((await call(agent, 'results', { commandId: 'x' })).status).toBe(400);
    expect((await call(agent, 'heartbeat', [])).status).toBe(400);
  });

  it('takes a report, touching the agent\'s last contact and version', async () => {
    const { status, body } = await call(agent, 'report', { version: '0.2.0', hosts: [] });
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body.pingIntervalSeconds).toBeGreaterThan(0);
    expect(body.hosts).toEqual([]);
    const [listed] = await agentsListed({ id: agent.agentId });
    expect(listed.version).toBe('0.2.0');
    expect(listed.lastseen).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('refuses a revoked agent on its next request, and lists it as Revoked', async () => {
    const revoked = await enrol();
    expect((await call(revoked, 'credentials', {})).status).toBe(200);
    const { status, body } = await admin.call('revokeAgent', { id: revoked.agentId });
    expect(status).toBe(200);
    expect(body).toEqual({ revokeagentresponse: { success: true } });
    expect(await call(revoked, 'credentials', {})).toEqual({ status: 403, body: { error: 'the agent is revoked' } });
    expect(await call(revoked, 'report', { version: '0.1.0', hosts: [] })).toEqual({ status: 403, body: { error: 'the agent is revoked' } });
    const [listed] = await agentsListed({ id: revoked.agentId });
    expect(listed.state).toBe('Revoked');
    expect((await agentsListed({ state: 'Revoked' })).map((a) => a.id)).toContain(revoked.agentId);
    expect((await eventsOfType('AGENT.REVOKE')).some((e) => e.resourceid === revoked.agentId)).toBe(true);

    const again = await admin.call('revokeAgent', { id: revoked.agentId });
    expect(again.status).toBe(431);
    const unknown = await admin.call('revokeAgent', { id: randomUUID() });
    expect(unknown.status).toBe(431);
    expect(unknown.body.revokeagentresponse.errortext).toContain('id');
  });
});

describe('a zone served by an agent', () => {
  it('cannot be deleted until its agents are revoked', async () => {
    const served = await seedZone(`agents-served-${randomUUID().slice(0, 8)}`);
    const agent = await enrol(await newToken(served.id));
    const refused = await admin.call('deleteZone', { id: served.id });
    expect(refused.status).toBe(536);
    expect(refused.body.deletezoneresponse.errortext).toContain('agents');
    expect((await admin.call('revokeAgent', { id: agent.agentId })).status).toBe(200);
    expect((await admin.call('deleteZone', { id: served.id })).status).toBe(200);
  });
});

// ---- results and heartbeats through Step Functions ----

describe('results and heartbeats', () => {
  let agent: Enrolled;
  let queue: SQSClient;

  beforeAll(async () => {
    agent = await enrol();
    const { body } = await call(agent, 'credentials', {});
    queue = new SQSClient({
      region: body.region,
      endpoint: body.endpoint,
      useQueueUrlAsEndpoint: false,
      credentials: { accessKeyId: body.accessKeyId, secretAccessKey: body.secretAccessKey, sessionToken: body.sessionToken },
    });
  });

  /** Starts the fixture machine (a waitForTaskToken send with a 4 s heartbeat) on the agent's queue. */
  async function startTask() {
    const { executionArn } = await sfn().send(
      new StartExecutionCommand({ stateMachineArn: runtime.stateMachines['heartbeat-probe'], input: JSON.stringify({ queueUrl: agent.queueUrl }) }),
    );
    const message = await until(
      'the fixture machine\'s message',
      async () => {
        const { Messages = [] } = await queue.send(new ReceiveMessageCommand({ QueueUrl: agent.queueUrl, WaitTimeSeconds: 1 }));
        return Messages.map((m) => JSON.parse(m.Body!)).find((m) => m.execution === executionArn);
      },
      (found) => found !== undefined,
      { every: 0 },
    );
    return { executionArn: executionArn!, taskToken: message.taskToken as string };
  }

  it('keeps a long task alive with heartbeats and completes it with the result', async () => {
    const { executionArn, taskToken } = await startTask();
    // The task's heartbeat is 4 s: without the gateway's heartbeats, every 0.5 s for 6 s, it would time out.
    for (let i = 0; i < 12; i++) {
      await sleep(500);
      expect(await call(agent, 'heartbeat', { commandId: 'c1', taskToken })).toEqual({ status: 200, body: { accepted: true } });
    }
    expect(await call(agent, 'results', { commandId: 'c1', taskToken, ok: true, result: { elapsedMs: 12 } })).toEqual({ status: 200, body: { accepted: true } });
    const execution = await finishedExecution(executionArn);
    expect(execution.status).toBe('SUCCEEDED');
    expect(JSON.parse(execution.output!).answer).toEqual({ elapsedMs: 12 });

    // The task is over: a late answer or heartbeat is not needed, and says so.
    expect(await call(agent, 'results', { commandId: 'c1', taskToken, ok: true, result: {} })).toEqual({ status: 200, body: { accepted: false } });
    expect(await call(agent, 'heartbeat', { commandId: 'c1', taskToken })).toEqual({ status: 200, body: { accepted: false } });
  });

  it('fails the task with the agent\'s error and cause', async () => {
    const { executionArn, taskToken } = await startTask();
    const failure = { error: 'HostUnreachable', cause: 'Cannot reach 10.77.9.99:22: connect ETIMEDOUT' };
    expect(await call(agent, 'results', { commandId: 'c2', taskToken, ok: false, failure })).toEqual({ status: 200, body: { accepted: true } });
    const execution = await finishedExecution(executionArn);
    expect(execution.status).toBe('FAILED');
    expect({ error: execution.error, cause: execution.cause }).toEqual(failure);
  });

  it('answers accepted: false for a token no task is waiting on', async () => {
    for (const taskToken of [randomUUID(), 'not-a-token']) {
      expect(await call(agent, 'results', { commandId: 'c3', taskToken, ok: true, result: {} })).toEqual({ status: 200, body: { accepted: false } });
      expect(await call(agent, 'heartbeat', { commandId: 'c3', taskToken })).toEqual({ status: 200, body: { accepted: false } });
    }
  });
});

describe('leases: several agents on one zone', () => {
  let a: Enrolled;
  let b: Enrolled;
  let hostId: string;
  let leaseZone: Zone;

  beforeAll(async () => {
    leaseZone = await seedZone(`leases-${randomUUID().slice(0, 8)}`);
    [a, b] = [await enrol(await newToken(leaseZone.id)), await enrol(await newToken(leaseZone.id))];
    const pod = (await admin.call('createPod', { zoneid: leaseZone.id, name: 'p', gateway: '10.9.0.1', netmask: '255.255.255.0', startip: '10.9.0.10' })).body.createpodresponse.pod;
    const cluster = (await admin.call('addCluster', { zoneid: leaseZone.id, podid: pod.id, clustername: 'c', hypervisor: 'KVM', clustertype: 'CloudManaged' })).body.addclusterresponse.cluster[0];
    const host = await createHostRecord((await getCluster(cluster.id))!, { name: 'h-lease', ipaddress: '10.9.0.11', agentId: a.agentId, leaseEpoch: 1 });
    hostId = host.id;
  });

  const expireLease = (agentId: string) =>
    dynamo().send(new UpdateCommand({ TableName: process.env.MOLD_TABLE!, Key: { pk: `AGENT#${agentId}`, sk: 'AGENT' }, UpdateExpression: 'SET leaseExpires = :past', ExpressionAttributeValues: { ':past': Date.now() - 1000 } }));

  it('renews a lease and answers the hosts held, with their epochs; listAgents shows them', async () => {
    expect(await call(a, 'lease', {})).toEqual({ status: 200, body: { leaseSeconds: 20, renewSeconds: 5, hosts: [{ hostId, epoch: 1 }] } });
    expect((await call(b, 'lease', {})).body.hosts).toEqual([]);
    const listed = await agentsListed({ zoneid: leaseZone.id });
    expect(listed.find((x) => x.id === a.agentId)).toMatchObject({ holdslease: true, hostcount: 1, host: [{ id: hostId, name: 'h-lease', ipaddress: '10.9.0.11', leaseepoch: 1 }] });
    expect(listed.find((x) => x.id === b.agentId)).toMatchObject({ holdslease: true, hostcount: 0, host: [] });
  });

  it('passes the host of a lapsed agent to a renewing one with the next epoch, and moves its queued command there', async () => {
    await sqs().send(
      new SendMessageCommand({
        QueueUrl: a.queueUrl,
        MessageBody: JSON.stringify({ commandId: 'queued-1', type: 'pingHost', deadline: new Date(Date.now() + 60_000).toISOString(), payload: { host: { hostId, address: '10.9.0.11', port: 22, username: 'root', epoch: 1 } }, taskToken: 'no-task' }),
      }),
    );
    await expireLease(a.agentId);
    expect((await call(b, 'lease', {})).body.hosts).toEqual([{ hostId, epoch: 2 }]);
    const events = (await eventsOfType('AGENT.LEASE.TRANSFER')).filter((e) => e.resourceid === hostId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ level: 'WARN', resourcetype: 'Host', account: 'system' });
    expect(events[0].description).toMatch(/taken over by agent .* with lease epoch 2 from agent .*: its lease lapsed/);
    // The command left on the lapsed agent's queue is on the holder's now, under the new epoch.
    const moved = await until(
      'the command on the new holder\'s queue',
      async () => (await sqs().send(new ReceiveMessageCommand({ QueueUrl: b.queueUrl, WaitTimeSeconds: 1 }))).Messages ?? [],
      (messages) => messages.length > 0,
    );
    expect(JSON.parse(moved[0]!.Body!)).toMatchObject({ commandId: 'queued-1', payload: { host: { hostId, epoch: 2 } } });
    expect((await sqs().send(new ReceiveMessageCommand({ QueueUrl: a.queueUrl, WaitTimeSeconds: 0 }))).Messages ?? []).toEqual([]);
  });

  it('refuses (409) the results and heartbeats of the agent that lost the host, not the holder\'s', async () => {
    const stale = await call(a, 'results', { commandId: 'c9', taskToken: 'no-task', ok: true, result: {}, lease: { hostId, epoch: 1 } });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatch(/stale epoch: host .* is held by another agent now \(epoch 2, this command's 1\)/);
    expect((await call(a, 'heartbeat', { commandId: 'c9', taskToken: 'no-task', lease: { hostId, epoch: 1 } })).status).toBe(409);
    expect((await call(b, 'results', { commandId: 'c9', taskToken: 'no-task', ok: true, result: {}, lease: { hostId, epoch: 2 } })).body).toEqual({ accepted: false });
    // Renewing again, the old agent holds nothing.
    expect((await call(a, 'lease', {})).body.hosts).toEqual([]);
  });

  it('hands the hosts of a revoked agent over', async () => {
    expect((await admin.call('revokeAgent', { id: b.agentId })).status).toBe(200);
    expect((await call(b, 'lease', {})).status).toBe(403);
    expect((await call(a, 'lease', {})).body.hosts).toEqual([{ hostId, epoch: 3 }]);
    expect((await eventsOfType('AGENT.LEASE.TRANSFER')).some((e) => e.resourceid === hostId && /epoch 3 .*it was revoked/.test(e.description))).toBe(true);
  });

  it('shows the zone at a glance with listFleetStatus: agents with their leases, hosts with the last report and their VMs', async () => {
    expect((await call(a, 'report', { version: '9.9.9', hosts: [{ hostId, reachable: false, error: 'Cannot reach 10.9.0.11:22: no route to host', domains: [] }] })).status).toBe(200);
    const answer = await admin.call('listFleetStatus', { zoneid: leaseZone.id });
    expect(answer.status).toBe(200);
    const { count, fleetstatus } = answer.body.listfleetstatusresponse;
    expect(count).toBe(1);
    expect(fleetstatus[0]).toMatchObject({ zoneid: leaseZone.id, zonename: leaseZone.name });
    // Both enrolled in the same second: their order is by id then, which the test does not know.
    const agents = fleetstatus[0].agent as { id: string }[];
    expect(agents).toHaveLength(2);
    expect(agents.find((x) => x.id === a.agentId)).toEqual(
      expect.objectContaining({ id: a.agentId, state: 'Enabled', version: '9.9.9', holdslease: true, hostcount: 1, leaseexpires: expect.any(String) }),
    );
    expect(agents.find((x) => x.id === b.agentId)).toEqual(expect.objectContaining({ id: b.agentId, state: 'Revoked', holdslease: false, hostcount: 0 }));
    expect(fleetstatus[0].host).toEqual([
      expect.objectContaining({ id: hostId, name: 'h-lease', agentid: a.agentId, leaseepoch: 3, reachable: false, lastreporterror: 'Cannot reach 10.9.0.11:22: no route to host', vm: [] }),
    ]);
    // Every zone without zoneid; an unknown zone is refused, naming the parameter.
    const all = (await admin.call('listFleetStatus')).body.listfleetstatusresponse.fleetstatus;
    expect(all.map((z: { zoneid: string }) => z.zoneid)).toEqual(expect.arrayContaining([zone.id, leaseZone.id]));
    const unknown = await admin.call('listFleetStatus', { zoneid: randomUUID() });
    expect(unknown.status).toBe(431);
    expect(unknown.body.listfleetstatusresponse.errortext).toContain('zoneid');
  });
});

describe('GET /health', () => {
  it('answers 200 with each check passed, for anyone, and counts the enabled agents\' queues', async () => {
    const answer = await fetch(`${base}/health`);
    expect(answer.status).toBe(200);
    const health = (await answer.json()) as Health;
    expect(health).toMatchObject({ status: 'ok', checks: { inventory: { ok: true }, queues: { ok: true } } });
    expect(health.checks.queues.agents).toBeGreaterThan(0);
    expect(health.checks.queues.backlog).toBeGreaterThanOrEqual(0);
    // Only GET; other methods find no route, as on API Gateway.
    expect((await fetch(`${base}/health`, { method: 'POST' })).status).toBe(404);
  });

  it('answers failing, naming the check, when a service does not answer', async () => {
    const saved = process.env.AWS_ENDPOINT_URL_SQS;
    // A port nothing listens on: SQS refuses every connection.
    process.env.AWS_ENDPOINT_URL_SQS = 'http://127.0.0.1:9';
    try {
      const { checkHealth } = await import('../../functions/agent-gateway/health.ts');
      const health = await checkHealth();
      expect(health.status).toBe('failing');
      expect(health.checks.inventory.ok).toBe(true);
      expect(health.checks.queues).toMatchObject({ ok: false });
      expect(health.checks.queues.agents).toBeUndefined();
    } finally {
      process.env.AWS_ENDPOINT_URL_SQS = saved;
    }
  });
});
