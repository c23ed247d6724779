// The agent gateway (/agent/v1/*): how on-prem agents talk to the control plane. Enrolment trades a
// single-use token for a client certificate signed by Mold's CA and a queue of the agent's own; every
// other route is a request signed with the agent's key (shared/agent/signing.ts), verified against
// the certificate stored at enrolment, whose nonce is used once.
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { randomUUID, X509Certificate } from 'node:crypto';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { SendTaskFailureCommand, SendTaskHeartbeatCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { z } from 'zod';
import { env, sfn, sqs, sts } from '../../shared/aws.ts';
import {
  credentialsResponse,
  enrolRequest,
  enrolResponse,
  GATEWAY_PATH,
  handbackRequest,
  HEALTH_PATH,
  heartbeatRequest,
  leaseResponse,
  reportRequest,
  resultRequest,
} from '../../shared/agent/protocol.ts';
import { SIGNATURE_HEADERS, verifyRequest } from '../../shared/agent/signing.ts';
import { checkAgentCertificate, checkCsr, InvalidCsr, loadCa, signAgentCsr } from '../../shared/crypto/ca.ts';
import {
  createAgentRecord,
  getAgent,
  peekEnrollmentToken,
  redeemEnrollmentToken,
  touchAgent,
  useNonce,
  type Agent,
} from '../../shared/db/agents.ts';
import { recordEvent } from '../../shared/db/events.ts';
import { getHost } from '../../shared/db/hosts.ts';
import { getZone } from '../../shared/db/infrastructure.ts';
import { leaseStillHeld, renewLease } from '../../shared/agent-leases.ts';
import { fleetStatus } from '../../shared/fleet-status.ts';
import { recordReport } from '../../shared/host-reports.ts';
import { log } from '../../shared/log.ts';
import { AGENT_QUEUE_ROLE_VARIABLE, agentQueueName, CREDENTIALS_SECONDS, sessionPolicy } from './config.ts';
import { drainOrphanedQueues, reroute } from './leases.ts';
import { checkHealth } from './health.ts';
import { createAgentQueue } from './queues.ts';

/** A refusal the agent is told about: its HTTP status and a reason in `{ error }`. */
class Refusal extends Error {
  readonly status: number;
  constructor(status: number, reason: string) {
    super(reason);
    this.status = status;
  }
}

const unauthorized = (reason: string) => new Refusal(401, reason);

interface Request {
  method: string;
  path: string;
  body: string;
  headers: Record<string, string | undefined>;
  sourceIp: string;
}

type Route = (request: Request) => Promise<unknown>;
type SignedRoute = (agent: Agent, request: Request) => Promise<unknown>;

function parse<T extends z.ZodType>(schema: T, body: string): z.output<T> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Refusal(400, 'the body is not JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Refusal(400, `malformed request: ${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return parsed.data;
}

// ---- enrolment ----

const TOKEN_REFUSALS = {
  unknown: 'the enrolment token is not valid',
  used: 'the enrolment token was already used',
  expired: 'the enrolment token has expired',
  revoked: 'the enrolment token was revoked',
} as const;

const enrol: Route = async (request) => {
  const body = parse(enrolRequest, request.body);
  // Everything that can be refused without using up the token is checked first.
  try {
    checkCsr(body.csr);
  } catch (error) {
    if (error instanceof InvalidCsr) throw new Refusal(400, error.message);
    throw error;
  }
  if (!/^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$/.test(body.sshPublicKey.trim())) {
    throw new Refusal(400, 'malformed request: sshPublicKey: not an authorized_keys line');
  }
  const known = await peekEnrollmentToken(body.token);
  if (!known) throw unauthorized(TOKEN_REFUSALS.unknown);
  const zone = await getZone(known.zoneId);
  if (!zone) throw unauthorized('the zone of the enrolment token no longer exists');

  const agentId = randomUUID();
  const redemption = await redeemEnrollmentToken(body.token, agentId);
  if (!redemption.ok) throw unauthorized(TOKEN_REFUSALS[redemption.reason]);
  const { token } = redemption;

  const ca = await loadCa();
  const issued = signAgentCsr(ca, body.csr, agentId);
  const { queueUrl, queueArn } = await createAgentQueue(agentId);
  const agent = await createAgentRecord({
    id: agentId,
    name: body.name ?? `agent-${agentId.slice(0, 8)}`,
    zoneId: token.zoneId,
    certificate: issued.certificate,
    certificateSerial: issued.serial,
    certificateExpires: issued.notAfter.toISOString().replace(/\.\d{3}Z$/, '+0000'),
    sshPublicKey: body.sshPublicKey.trim(),
    queueUrl,
    queueArn,
    version: body.version,
    ipaddress: request.sourceIp,
  });
  if (token.actor) {
    await recordEvent(token.actor, {
      type: 'AGENT.ENROLL',
      description: `Successfully completed enrolling agent. Agent Name: ${agent.name}, Zone Id: ${agent.zoneId}`,
      resourceId: agent.id,
      resourceType: 'Agent',
    });
  }
  log.info('agent enrolled', { agentId, zoneId: agent.zoneId, tokenId: token.id, serial: issued.serial });
  return enrolResponse.parse({ agentId, zoneId: agent.zoneId, certificate: issued.certificate, caCertificate: ca.certificate, queueUrl });
};

// ---- signed routes ----

async function authenticate(request: Request): Promise<Agent> {
  let agent: Agent | undefined;
  const check = await verifyRequest(request.headers, request.method, request.path, request.body, async (agentId) => {
    agent = await getAgent(agentId);
    if (!agent) return undefined;
    try {
      return new X509Certificate(agent.certificate).publicKey;
    } catch {
      return undefined;
    }
  });
  if (!check.ok) throw unauthorized(check.reason);
  const ca = await loadCa();
  const certificate = checkAgentCertificate(ca.certificate, agent!.certificate, agent!.id);
  if (!certificate.ok) throw unauthorized(certificate.reason);
  if (agent!.state !== 'Enabled') throw new Refusal(403, 'the agent is revoked');
  if (!(await useNonce(agent!.id, check.nonce))) throw unauthorized('the nonce was already used');
  return agent!;
}

const credentials: SignedRoute = async (agent) => {
  let queueArn = agent.queueArn;
  if (!queueArn) {
    const { Attributes } = await sqs().send(new GetQueueAttributesCommand({ QueueUrl: agent.queueUrl, AttributeNames: ['QueueArn'] }));
    queueArn = Attributes!.QueueArn!;
  }
  const { Credentials } = await sts().send(
    new AssumeRoleCommand({
      RoleArn: env(AGENT_QUEUE_ROLE_VARIABLE),
      RoleSessionName: agentQueueName(agent.id),
      Policy: sessionPolicy(queueArn),
      DurationSeconds: CREDENTIALS_SECONDS,
    }),
  );
  if (!Credentials?.AccessKeyId || !Credentials.SecretAccessKey || !Credentials.SessionToken || !Credentials.Expiration) {
    throw new Error('STS answered AssumeRole without credentials');
  }
  return credentialsResponse.parse({
    queueUrl: agent.queueUrl,
    region: env('AWS_REGION'),
    // Only the local runtime points SQS elsewhere; on AWS the agent uses the regional endpoint.
    ...(process.env.AWS_ENDPOINT_URL_SQS && { endpoint: process.env.AWS_ENDPOINT_URL_SQS }),
    accessKeyId: Credentials.AccessKeyId,
    secretAccessKey: Credentials.SecretAccessKey,
    sessionToken: Credentials.SessionToken,
    expiration: Credentials.Expiration.toISOString(),
  });
};

/** The task is over (timed out, answered before, its execution gone): the answer is not needed. */
const TASK_GONE = new Set(['TaskTimedOut', 'InvalidToken', 'TaskDoesNotExist']);

async function lenient(send: () => Promise<unknown>): Promise<{ accepted: boolean }> {
  try {
    await send();
    return { accepted: true };
  } catch (error) {
    const name = (error as Error).name;
    if (TASK_GONE.has(name)) return { accepted: false };
    if (name === 'InvalidOutput') throw new Refusal(400, 'the result is not valid JSON for Step Functions');
    throw error;
  }
}

/**
 * A command's answer counts only from the agent that holds its host under the command's epoch (or a
 * newer one of its own): a revived agent that lost the host is refused (409), and hands the command back.
 */
async function checkLease(agent: Agent, lease: { hostId: string; epoch: number } | undefined) {
  if (!lease) return;
  const host = await getHost(lease.hostId);
  if (!leaseStillHeld(host, agent.id, lease.epoch)) {
    throw new Refusal(409, `stale epoch: host ${lease.hostId} is held by another agent now (epoch ${host?.leaseEpoch ?? 0}, this command's ${lease.epoch})`);
  }
}

const results: SignedRoute = async (agent, request) => {
  const body = parse(resultRequest, request.body);
  await checkLease(agent, body.lease);
  const outcome = await lenient(() =>
    body.ok
      ? sfn().send(new SendTaskSuccessCommand({ taskToken: body.taskToken, output: JSON.stringify(body.result ?? null) }))
      : sfn().send(new SendTaskFailureCommand({ taskToken: body.taskToken, error: body.failure.error, cause: body.failure.cause })),
  );
  log.info('agent result', { agentId: agent.id, commandId: body.commandId, ok: body.ok, accepted: outcome.accepted });
  return outcome;
};

const heartbeat: SignedRoute = async (agent, request) => {
  const body = parse(heartbeatRequest, request.body);
  await checkLease(agent, body.lease);
  return lenient(() => sfn().send(new SendTaskHeartbeatCommand({ taskToken: body.taskToken })));
};

const report: SignedRoute = async (agent, request) => {
  const body = parse(reportRequest, request.body);
  // No consoleUrl: the agent runs no console (any more), so none is handed out.
  await touchAgent(agent.id, { version: body.version, ipaddress: request.sourceIp, consoleUrl: body.consoleUrl ?? null });
  return recordReport(agent, body);
};

const lease: SignedRoute = async (agent) => {
  const renewal = await renewLease(agent.id);
  if (!renewal) throw new Refusal(403, 'the agent is revoked');
  // What the zone's lapsed agents left on their queues goes to the hosts' holders now.
  await drainOrphanedQueues({ ...agent, leaseExpires: Date.now() + renewal.leaseSeconds * 1000 }, renewal.agents);
  if (renewal.taken.length) log.info('hosts taken over', { agentId: agent.id, hosts: renewal.taken.map((t) => ({ hostId: t.hostId, from: t.from, epoch: t.epoch })) });
  return leaseResponse.parse({ leaseSeconds: renewal.leaseSeconds, renewSeconds: renewal.renewSeconds, hosts: renewal.hosts });
};

const handback: SignedRoute = async (agent, request) => {
  const body = parse(handbackRequest, request.body);
  // Sent to the holder even if that is this agent: the copy carries the host's current epoch.
  const outcome = await reroute(body.message, '', undefined);
  log.info('command handed back', { agentId: agent.id, commandId: body.message.commandId, reason: body.reason, ...outcome });
  return outcome;
};

const fleet: SignedRoute = async (agent) => {
  const [zone] = await fleetStatus(agent.zoneId);
  if (!zone) throw new Refusal(404, `the agent's zone ${agent.zoneId} no longer exists`);
  return zone;
};

const ROUTES: Record<string, { signed: false; run: Route } | { signed: true; run: SignedRoute }> = {
  enrol: { signed: false, run: enrol },
  credentials: { signed: true, run: credentials },
  results: { signed: true, run: results },
  heartbeat: { signed: true, run: heartbeat },
  report: { signed: true, run: report },
  lease: { signed: true, run: lease },
  handback: { signed: true, run: handback },
  fleet: { signed: true, run: fleet },
};

function respond(status: number, body: unknown): APIGatewayProxyStructuredResultV2 {
  return { statusCode: status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

export async function handler(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  const path = event.rawPath;
  if (path === HEALTH_PATH && event.requestContext.http.method.toUpperCase() === 'GET') {
    const health = await checkHealth();
    return respond(health.status === 'ok' ? 200 : 503, health);
  }
  const name = path.startsWith(`${GATEWAY_PATH}/`) ? path.slice(GATEWAY_PATH.length + 1) : '';
  const route = Object.hasOwn(ROUTES, name) ? ROUTES[name] : undefined;
  if (!route) return respond(404, { error: 'no such route' });
  const method = event.requestContext.http.method.toUpperCase();
  if (method !== 'POST') return respond(405, { error: 'only POST is accepted' });
  const request: Request = {
    method,
    path,
    body: event.body ? (event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body) : '',
    headers: event.headers ?? {},
    sourceIp: event.requestContext.http.sourceIp,
  };
  try {
    const answer = route.signed ? await route.run(await authenticate(request), request) : await route.run(request);
    return respond(200, answer);
  } catch (error) {
    if (error instanceof Refusal) {
      log.info('agent request refused', { route: name, agentId: request.headers[SIGNATURE_HEADERS.agent], status: error.status, reason: error.message });
      return respond(error.status, { error: error.message });
    }
    log.error('agent request failed', { route: name, agentId: request.headers[SIGNATURE_HEADERS.agent], error: String((error as Error)?.stack ?? error) });
    return respond(500, { error: 'internal error' });
  }
}
