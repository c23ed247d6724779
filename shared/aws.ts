// The only place that builds AWS clients. Endpoints come from the SDK's standard
// AWS_ENDPOINT_URL_<SERVICE> variables, so the same code talks to AWS or to the local runtime.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';

let documentClient: DynamoDBDocumentClient | undefined;
let sfnClient: SFNClient | undefined;
let sqsClient: SQSClient | undefined;

export function dynamo(): DynamoDBDocumentClient {
  documentClient ??= DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return documentClient;
}

export function sfn(): SFNClient {
  sfnClient ??= new SFNClient({});
  return sfnClient;
}

export function sqs(): SQSClient {
  sqsClient ??= new SQSClient({});
  return sqsClient;
}

/** A required environment variable; its absence is a deployment bug, so it fails loudly. */
export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}
