// The one Lambda behind /client/api: parse → find the command → validate → execute → render.
// Authentication and RBAC join this pipeline with the API core.
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { CloudStackError, InvalidParameter, UnsupportedAction } from '../../shared/cloudstack/errors.ts';
import { renderError, renderResponse, responseFormat } from '../../shared/cloudstack/render.ts';
import { log } from '../../shared/log.ts';
import { findCommand } from './registry.ts';
import { requestParameters } from './request.ts';

async function handleRequest(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  const params = requestParameters(event);
  const format = responseFormat(params.response);
  const requestId = event.requestContext?.requestId ?? 'local';
  try {
    const command = findCommand(params.command);
    if (!command) throw new UnsupportedAction();
    const parsed = command.params.safeParse(params);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new InvalidParameter(`Unable to execute API command ${command.name.toLowerCase()} due to invalid value for parameter ${String(issue.path[0] ?? '')}: ${issue.message}`);
    }
    const body = await command.handler({ params: parsed.data, requestId });
    return renderResponse(`${command.name.toLowerCase()}response`, body, format);
  } catch (error) {
    if (error instanceof CloudStackError) {
      log.info('command refused', { requestId, command: params.command, errorcode: error.errorcode, errortext: error.message });
    } else {
      log.error('command failed', { requestId, command: params.command, error: String((error as Error)?.stack ?? error) });
    }
    return renderError(params.command, error, format);
  }
}

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>().handler(handleRequest);
