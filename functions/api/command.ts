// One definition per API command, as upstream's @APICommand: the name, its parameters (zod schemas
// with CloudStack types), the role types that may call it, whether it is async, the event it
// records, and its handler. Validation, RBAC, listApis and the docs are derived from it.
import type { z } from 'zod';
import type { Account, Domain, RoleType, User } from '../../shared/db/identity.ts';
import type { Role } from '../../shared/db/roles.ts';
import type { Settings } from '../../shared/settings.ts';

export const ALL_ROLES: readonly RoleType[] = ['Admin', 'ResourceAdmin', 'DomainAdmin', 'User'];
export const ADMINS: readonly RoleType[] = ['Admin'];
export const DOMAIN_ADMINS: readonly RoleType[] = ['Admin', 'DomainAdmin'];

/** Who is calling, as resolved by authentication. */
export interface Caller {
  user: User;
  account: Account;
  domain: Domain;
  role: Role;
  sessionkey?: string;
}

export interface Recorded {
  /** Upstream's event type, e.g. ACCOUNT.CREATE. */
  type: string;
  description: string;
  resourceId?: string;
  resourceType?: string;
}

/** The event of a state-changing call, worded as upstream's ActionEventUtils does for an @ActionEvent. */
export function completedEvent(type: string, action: string, resource?: { id: string; type: string }, details = ''): Recorded {
  return {
    type,
    description: `Successfully completed ${action}.${details ? ` ${details}` : ''}`,
    ...(resource && { resourceId: resource.id, resourceType: resource.type }),
  };
}

export interface CommandContext<P> {
  params: P;
  caller: Caller;
  settings: Settings;
  requestId: string;
  sourceIp: string;
  httpMethod: string;
  /** Cookies of the request, by name. */
  cookies: Record<string, string>;
  /** When the answer must be sent by (epoch ms): the function's time limit, which API Gateway's matches. */
  deadline: number;
  /** The client reached the API over HTTPS: cookies it is given are Secure. */
  secure: boolean;
}

export interface CommandResult {
  /** The response object, without the `<name>response` envelope. */
  body: Record<string, unknown>;
  /** Events to record for this call (state-changing commands). */
  events?: Recorded[];
  /** Cookies to set, as Set-Cookie values. */
  cookies?: string[];
}

export interface CommandDefinition<S extends z.ZodRawShape = z.ZodRawShape> {
  name: string;
  description: string;
  since?: string;
  params: S;
  /** Role types that may call it when no rule of the caller's role decides (upstream's `authorized`). */
  roles: readonly RoleType[];
  /** Async commands return a jobid and finish through queryAsyncJobResult. */
  isasync?: boolean;
  /** The answer's envelope when upstream's command names it otherwise (its getCommandName); else `<name>response`. */
  responseName?: string;
  /** Read-only commands record no event and are the only ones read-only roles reach by default. */
  handler: (context: CommandContext<z.output<z.ZodObject<S>>>) => Promise<CommandResult>;
}

/** A command that needs no authenticated caller (login). */
export interface PublicCommandDefinition<S extends z.ZodRawShape = z.ZodRawShape>
  extends Omit<CommandDefinition<S>, 'handler' | 'roles'> {
  public: true;
  handler: (context: Omit<CommandContext<z.output<z.ZodObject<S>>>, 'caller'> & { caller?: Caller }) => Promise<CommandResult>;
}

export type AnyCommand = CommandDefinition<any> | PublicCommandDefinition<any>;

export function defineCommand<S extends z.ZodRawShape>(definition: CommandDefinition<S>): CommandDefinition<S> {
  return definition;
}

export function definePublicCommand<S extends z.ZodRawShape>(definition: PublicCommandDefinition<S>): PublicCommandDefinition<S> {
  return definition;
}

export const isPublic = (command: AnyCommand): command is PublicCommandDefinition<any> => 'public' in command;
