// The one Lambda behind /client/api, a pipeline: parse → authenticate → authorise → throttle →
// validate → execute → record events → render. Each step is a function of its own module; every
// request is watched for running longer than api.slow.request.threshold (slow.ts).
import { performance } from 'node:perf_hooks';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { CloudStackError, UnsupportedAction } from '../../shared/cloudstack/errors.ts';
import { renderError, renderResponse, responseFormat } from '../../shared/cloudstack/render.ts';
import { recordEvent } from '../../shared/db/events.ts';
import { log } from '../../shared/log.ts';
import { loadSettings, type Settings } from '../../shared/settings.ts';
import { actorOf } from './actor.ts';
import { authenticate } from './auth.ts';
import { isPublic, type Caller } from './command.ts';
import { findCommand, mayCall } from './registry.ts';
import { parseRequest, stringParam } from './request.ts';
import { watchSlowRequest } from './slow.ts';
import { throttle } from './throttle.ts';
import { validateParams } from './validate.ts';

async function handleRequest(event: APIGatewayProxyEventV2, lambda: Pick<Context, 'getRemainingTimeInMillis'>): Promise<APIGatewayProxyStructuredResultV2> {
  const started = performance.now();
  const deadline = Date.now() + lambda.getRemainingTimeInMillis();
  const request = parseRequest(event);
  const format = responseFormat(stringParam(request, 'response'));
  const commandName = stringParam(request, 'command');
  // Timed from before parsing: a parse that takes long is what the guard is first for.
  const slow = watchSlowRequest(request.requestId, commandName, started);
  // Read once, and only by a request that gets as far as needing them (not one refused unread).
  let settingsLoaded: Promise<Settings> | undefined;
  const loadedSettings = () => {
    if (!settingsLoaded) {
      settingsLoaded = loadSettings();
      settingsLoaded.catch(() => {});
      slow.bound(settingsLoaded);
    }
    return settingsLoaded;
  };
  try {
    if (request.tooLarge) throw request.tooLarge;
    const found = findCommand(commandName);
    let caller: Caller | undefined;
    if (found && isPublic(found)) {
      // logout ends the session it is given, if that session is still good.
      caller = stringParam(request, 'sessionkey') ? await authenticate(request, loadedSettings).catch(() => undefined) : undefined;
    } else {
      // Unauthenticated callers learn nothing, not even which commands exist: upstream's 401.
      caller = await authenticate(request, loadedSettings);
      if (!found || !mayCall(caller, found)) throw new UnsupportedAction();
      await throttle(caller, await loadedSettings());
    }
    const settings = await loadedSettings();
    const command = found;
    // Upstream's ParamUnpackWorker, then ParamProcessWorker: undecodable names (430), then values (431).
    if (request.malformed) throw request.malformed;
    const params = validateParams(command, request.params);
    const context = { params, settings, requestId: request.requestId, sourceIp: request.sourceIp, httpMethod: request.method, cookies: request.cookies, secure: request.secure, deadline };
    const result = await (command.handler as (c: typeof context & { caller?: Caller }) => ReturnType<typeof command.handler>)({ ...context, caller });
    if (caller && result.events) {
      const actor = actorOf(caller);
      for (const recorded of result.events) await recordEvent(actor, recorded);
    }
    const response = renderResponse(('responseName' in command && command.responseName) || `${command.name.toLowerCase()}response`, result.body, format);
    slow.done(response.statusCode);
    return result.cookies ? { ...response, cookies: result.cookies } : response;
  } catch (error) {
    if (error instanceof CloudStackError) {
      log.info('command refused', { requestId: request.requestId, command: commandName, errorcode: error.errorcode, errortext: error.message });
    } else {
      log.error('command failed', { requestId: request.requestId, command: commandName, error: String((error as Error)?.stack ?? error) });
    }
    // Upstream names the envelope after the command when it knows the command, else `errorresponse`.
    const response = renderError(findCommand(commandName)?.name, error, format);
    slow.done(response.statusCode);
    return response;
  }
}

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>().handler(handleRequest);
