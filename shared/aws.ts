// The only place that builds AWS clients. Endpoints come from the SDK's standard
// AWS_ENDPOINT_URL_<SERVICE> variables, so the same code talks to AWS or to the local runtime.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';

const clients = new Map<string, unknown>();

/**
 * Every call is answered or fails: a connection that cannot be made in 5 s, or a request unanswered
 * in 15 s, is an error the SDK retries (then reports), never a wait without end. The API's own limit
 * is 29 s, so a retried call still ends within it.
 */
const requestHandler = { connectionTimeout: 5_000, requestTimeout: 15_000 };

/** One client per service and endpoint: a process that is pointed elsewhere gets a new one. */
function client<T>(service: string, make: () => T): T {
  const key = `${service} ${process.env[`AWS_ENDPOINT_URL_${service}`] ?? ''}`;
  let existing = clients.get(key) as T | undefined;
  if (!existing) {
    existing = make();
    clients.set(key, existing);
  }
  return existing;
}

export function dynamo(): DynamoDBDocumentClient {
  return client('DYNAMODB', () =>
    DynamoDBDocumentClient.from(new DynamoDBClient({ requestHandler }), { marshallOptions: { removeUndefinedValues: true } }),
  );
}

export function sfn(): SFNClient {
  return client('SFN', () => new SFNClient({ requestHandler }));
}

/** Requests go to the configured endpoint, not to the host in a queue URL (emulators name odd hosts). */
export function sqs(): SQSClient {
  return client('SQS', () => new SQSClient({ useQueueUrlAsEndpoint: false, requestHandler }));
}

export function sts(): STSClient {
  return client('STS', () => new STSClient({ requestHandler }));
}

/** A required environment variable; its absence is a deployment bug, so it fails loudly. */
export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}
