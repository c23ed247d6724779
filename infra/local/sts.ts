// STS stand-in: answers AssumeRole in STS's Query protocol (form-encoded request, XML response) so the
// gateway's @aws-sdk/client-sts call is the same locally as on AWS. The SQS emulator checks no
// credentials, so what it hands out are random strings; each session's request (role, session name,
// session policy) is kept and shown at GET /sessions/<access key id>, so tests can see what a set of
// credentials would be allowed on AWS.
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LOCAL_ACCOUNT } from './aws-local.ts';
import { readBody } from './stepfunctions/server.ts';

export interface AssumedSession {
  roleArn: string;
  roleSessionName: string;
  policy?: string;
  durationSeconds: number;
  expiration: string;
}

const ROLE_ARN = /^arn:aws:iam::(\d{12}):role\/(.+)$/;
const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;

class StsError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

const escapeXml = (text: string) => text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

export class LocalSts {
  readonly sessions = new Map<string, AssumedSession>();

  assumeRole(params: URLSearchParams): Record<string, string> {
    const roleArn = params.get('RoleArn') ?? '';
    const roleSessionName = params.get('RoleSessionName') ?? '';
    const role = ROLE_ARN.exec(roleArn);
    if (!role) throw new StsError('ValidationError', `1 validation error detected: Value '${roleArn}' at 'roleArn' failed to satisfy constraint`);
    if (!SESSION_NAME.test(roleSessionName)) throw new StsError('ValidationError', `1 validation error detected: Value '${roleSessionName}' at 'roleSessionName' failed to satisfy constraint`);
    const durationSeconds = Number(params.get('DurationSeconds') ?? 3600);
    if (!Number.isInteger(durationSeconds) || durationSeconds < 900 || durationSeconds > 43_200) {
      throw new StsError('ValidationError', `1 validation error detected: Value '${params.get('DurationSeconds')}' at 'durationSeconds' failed to satisfy constraint`);
    }
    const policy = params.get('Policy') ?? undefined;
    if (policy !== undefined) {
      try {
        JSON.parse(policy);
      } catch {
        throw new StsError('MalformedPolicyDocument', 'The policy is not in the valid JSON format.');
      }
    }
    const accessKeyId = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
    const expiration = new Date(Date.now() + durationSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    this.sessions.set(accessKeyId, { roleArn, roleSessionName, policy, durationSeconds, expiration });
    const roleName = role[2].split('/').pop()!;
    return {
      AccessKeyId: accessKeyId,
      SecretAccessKey: randomBytes(30).toString('base64'),
      SessionToken: randomBytes(96).toString('base64'),
      Expiration: expiration,
      Arn: `arn:aws:sts::${role[1]}:assumed-role/${roleName}/${roleSessionName}`,
      AssumedRoleId: `AROA${randomBytes(8).toString('hex').toUpperCase()}:${roleSessionName}`,
    };
  }
}

export function stsRequestListener(sts: LocalSts) {
  return async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const session = /^\/sessions\/([A-Z0-9]+)$/.exec(url.pathname);
    if (request.method === 'GET' && session) {
      const found = sts.sessions.get(session[1]);
      response.writeHead(found ? 200 : 404, { 'content-type': 'application/json' });
      response.end(JSON.stringify(found ?? { error: 'no such session' }));
      return;
    }
    const requestId = randomUUID();
    const params = new URLSearchParams(url.search);
    for (const [name, value] of new URLSearchParams((await readBody(request)).toString('utf8'))) params.set(name, value);
    try {
      const action = params.get('Action');
      if (action !== 'AssumeRole') throw new StsError('InvalidAction', `Could not find operation ${action} for version ${params.get('Version')}`);
      const c = sts.assumeRole(params);
      response.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
      response.end(
        `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>` +
          `<Credentials><AccessKeyId>${c.AccessKeyId}</AccessKeyId><SecretAccessKey>${escapeXml(c.SecretAccessKey)}</SecretAccessKey>` +
          `<SessionToken>${escapeXml(c.SessionToken)}</SessionToken><Expiration>${c.Expiration}</Expiration></Credentials>` +
          `<AssumedRoleUser><Arn>${escapeXml(c.Arn)}</Arn><AssumedRoleId>${escapeXml(c.AssumedRoleId)}</AssumedRoleId></AssumedRoleUser>` +
          `</AssumeRoleResult><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></AssumeRoleResponse>`,
      );
    } catch (error) {
      const known = error instanceof StsError;
      response.writeHead(known ? 400 : 500, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
      response.end(
        `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>${known ? 'Sender' : 'Receiver'}</Type>` +
          `<Code>${known ? error.code : 'InternalFailure'}</Code><Message>${escapeXml((error as Error).message)}</Message></Error>` +
          `<RequestId>${requestId}</RequestId></ErrorResponse>`,
      );
    }
  };
}

/** The role the local gateway "assumes"; nothing checks it, but its shape is AWS's. */
export const LOCAL_AGENT_QUEUE_ROLE_ARN = `arn:aws:iam::${LOCAL_ACCOUNT}:role/mold-agent-queue`;
