// Every command Mold answers, by name. A command is listed here only when it works end to end.
import { decide } from '../../shared/db/roles.ts';
import { isPublic, type AnyCommand, type Caller } from './command.ts';
import { capabilityCommands } from './commands/capabilities.ts';
import { sessionCommands } from './commands/session.ts';

export const COMMANDS: AnyCommand[] = [...capabilityCommands, ...sessionCommands];

const byName = new Map(COMMANDS.map((command) => [command.name, command]));

/** Command names are case-sensitive, as upstream's API name map is. */
export function findCommand(name: string | undefined): AnyCommand | undefined {
  return name === undefined ? undefined : byName.get(name);
}

/**
 * The caller's role decides by its first matching rule; a command no rule matches is open to the
 * role types its definition names (upstream's DynamicRoleBasedAPIAccessChecker).
 */
export function mayCall(caller: Caller, command: AnyCommand): boolean {
  if (isPublic(command)) return true;
  const decision = decide(caller.role, command.name);
  if (decision) return decision === 'allow';
  return command.roles.includes(caller.role.type);
}
