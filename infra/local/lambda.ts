// Lambda stand-in: calls the same handler modules the CDK stack deploys, in this process.
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { lambdaFunctions, type FunctionName } from '../functions.ts';
import { LOCAL_ACCOUNT, LOCAL_REGION } from './aws-local.ts';

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

const FUNCTION_PREFIX = 'mold-';
const root = resolve(import.meta.dirname, '../..');
const loaded = new Map<FunctionName, Promise<Handler>>();

export function localFunctionArn(name: FunctionName): string {
  return `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${FUNCTION_PREFIX}${name}`;
}

/** The function a name or ARN (with or without a qualifier) refers to, if it is one of ours. */
export function localFunctionName(nameOrArn: string): FunctionName | undefined {
  const name = nameOrArn.includes(':function:') ? nameOrArn.split(':function:')[1].split(':')[0] : nameOrArn;
  const bare = name.startsWith(FUNCTION_PREFIX) ? name.slice(FUNCTION_PREFIX.length) : name;
  return bare in lambdaFunctions ? (bare as FunctionName) : undefined;
}

/** `timeoutMs`: what the context's getRemainingTimeInMillis starts from (API Gateway's limit for the API's routes). */
export async function invokeLocal(name: FunctionName, event: unknown, timeoutMs = 900_000): Promise<unknown> {
  let handler = loaded.get(name);
  if (!handler) {
    const url = pathToFileURL(resolve(root, lambdaFunctions[name].entry)).href;
    handler = import(url).then((module: { handler: Handler }) => module.handler);
    loaded.set(name, handler);
  }
  return (await handler)(event, lambdaContext(name, timeoutMs));
}

function lambdaContext(name: FunctionName, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  return {
    awsRequestId: randomUUID(),
    functionName: `${FUNCTION_PREFIX}${name}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: localFunctionArn(name),
    memoryLimitInMB: '1024',
    logGroupName: `/aws/lambda/${FUNCTION_PREFIX}${name}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}
