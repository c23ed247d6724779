// Parameters against the command's zod schemas, refused as upstream words it: 431 naming the
// parameter, for a missing one or a value of the wrong type.
import { z } from 'zod';
import { InvalidParameter } from '../../shared/cloudstack/errors.ts';
import type { AnyCommand } from './command.ts';
import type { ParamValue } from './request.ts';

const schemas = new WeakMap<AnyCommand, z.ZodType>();

export function validateParams(command: AnyCommand, raw: Record<string, ParamValue>): any {
  let schema = schemas.get(command);
  if (!schema) {
    schema = z.object(command.params);
    schemas.set(command, schema);
  }
  const api = command.name.toLowerCase();
  // An empty value counts as absent, as upstream's servlet drops it.
  const given = Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== ''));
  const parsed = schema.safeParse(given);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const name = String(issue.path[0] ?? '');
  if (given[name] === undefined) throw new InvalidParameter(`Unable to execute API command ${api} due to missing parameter ${name}`);
  const value = typeof given[name] === 'string' ? given[name] : JSON.stringify(given[name]);
  throw new InvalidParameter(`Unable to execute API command ${api} due to invalid value. Invalid parameter ${name} value=${visible(value)}: ${issue.message}`);
}

/** How much of a refused value its error repeats. */
const SHOWN = 200;

/**
 * A refused value as the error shows it: at most SHOWN characters (with the length of the rest), and
 * control and formatting characters written as \uXXXX, so none acts on the reader.
 */
function visible(value: string): string {
  const shown = value.length > SHOWN ? `${value.slice(0, SHOWN)}…(${value.length} characters)` : value;
  return shown.replace(/[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029\ufffe\uffff]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`);
}

/** Upstream's ParamProcessWorker refusal for an id that names nothing (9999 where upstream wraps it). */
export function noSuchEntity(api: string, param: string, value: string, cserrorcode?: number): InvalidParameter {
  return new InvalidParameter(
    `Unable to execute API command ${api.toLowerCase()} due to invalid value. Invalid parameter ${param} value=${value} due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.`,
    cserrorcode,
  );
}
