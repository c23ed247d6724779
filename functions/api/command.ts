// One definition per API command, as upstream's @APICommand: the name, what it does and how it
// answers. The registry, validation and listApis are derived from these definitions.
import type { z } from 'zod';

export interface CommandContext<P> {
  params: P;
  requestId: string;
}

export interface CommandDefinition<S extends z.ZodType = z.ZodType> {
  name: string;
  description: string;
  /** The parameters, with CloudStack's (lower-case) names. */
  params: S;
  /** The object the response body is built from; the envelope is `<name lower-cased>response`. */
  handler: (context: CommandContext<z.infer<S>>) => Promise<Record<string, unknown>>;
}

export function defineCommand<S extends z.ZodType>(definition: CommandDefinition<S>): CommandDefinition<S> {
  return definition;
}
