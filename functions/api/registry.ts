import type { CommandDefinition } from './command.ts';
import { listCapabilities } from './commands/listCapabilities.ts';

const definitions: CommandDefinition[] = [listCapabilities];

const byName = new Map(definitions.map((definition) => [definition.name, definition]));

/** Command names are case-sensitive, as upstream's API name map is. */
export function findCommand(name: string | undefined): CommandDefinition | undefined {
  return name === undefined ? undefined : byName.get(name);
}
