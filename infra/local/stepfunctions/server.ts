// The AWS JSON 1.0 protocol in front of LocalStepFunctions, so @aws-sdk/client-sfn (and the AWS
// CLI) talk to it as to the real service: POST / with X-Amz-Target: AWSStepFunctions.<Operation>.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ServiceError, type LocalStepFunctions } from './service.ts';

const OPERATIONS = {
  StartExecution: 'startExecution',
  DescribeExecution: 'describeExecution',
  StopExecution: 'stopExecution',
  ListExecutions: 'listExecutions',
  SendTaskSuccess: 'sendTaskSuccess',
  SendTaskFailure: 'sendTaskFailure',
  SendTaskHeartbeat: 'sendTaskHeartbeat',
} as const satisfies Record<string, keyof LocalStepFunctions>;

export function stepFunctionsRequestListener(service: LocalStepFunctions) {
  return async (request: IncomingMessage, response: ServerResponse) => {
    const target = String(request.headers['x-amz-target'] ?? '');
    const operation = target.replace(/^AWSStepFunctions\./, '') as keyof typeof OPERATIONS;
    try {
      const method = OPERATIONS[operation];
      if (!method) throw new ServiceError('UnknownOperationException', `Unknown operation ${target}`);
      const body = JSON.parse((await readBody(request)).toString('utf8') || '{}');
      send(response, 200, (service[method] as (input: unknown) => unknown).call(service, body));
    } catch (error) {
      if (error instanceof ServiceError) {
        send(response, 400, { __type: error.type, message: error.message });
      } else {
        send(response, 500, { __type: 'InternalFailure', message: (error as Error).message });
      }
    }
  };
}

function send(response: ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
  response.end(JSON.stringify(body));
}

/** A body larger than readBody's limit. */
export class BodyTooLarge extends Error {}

/** The whole body of a request; BodyTooLarge (having read no further) past `limit` bytes. */
export async function readBody(request: IncomingMessage, limit = Infinity): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new BodyTooLarge(`request body over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
