// The first start of an installation: the built-in roles, the ROOT domain and the root admin
// (account and user `admin` with a password and API keys). Runs once; a marker item says so.
// On AWS it also puts Mold's agent CA in its secret (locally the runtime keeps it in a file).
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from './aws.ts';
import { CA_SECRET_VARIABLE, ensureCaSecret } from './crypto/ca.ts';
import { BUILTIN_ROLES } from './db/builtin-roles.ts';
import { randomCredential } from './crypto/credentials.ts';
import { createAccount, createDomain, getDomain, registerUserKeys } from './db/identity.ts';
import type { Actor } from './db/events.ts';
import { tableName } from './db/items.ts';
import { cloudstackDate } from './db/jobs.ts';
import { createRole } from './db/roles.ts';

export interface RootAdminCredentials {
  domain: string;
  domainid: string;
  username: string;
  password: string;
  apikey: string;
  secretkey: string;
}

const MARKER = { pk: 'BOOTSTRAP', sk: 'ROOT' };

/**
 * Fills the agent CA secret named by MOLD_CA_SECRET_ARN unless it holds a CA already; 'created',
 * 'present', or 'not configured' when the variable is unset.
 */
export async function bootstrapAgentCa(): Promise<'created' | 'present' | 'not configured'> {
  const secretArn = process.env[CA_SECRET_VARIABLE];
  if (!secretArn) return 'not configured';
  return (await ensureCaSecret(secretArn)) ? 'created' : 'present';
}

/** Creates everything once; the credentials exist in clear only in the return value. */
export async function bootstrapRootAdmin(): Promise<RootAdminCredentials | undefined> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: MARKER }));
  if (Item) return undefined;
  const roles = [];
  for (const role of BUILTIN_ROLES) {
    roles.push(
      await createRole({
        name: role.name,
        type: role.type,
        description: role.description,
        isdefault: true,
        ispublic: true,
        permissions: role.rules.map(([rule, permission]) => ({ rule, permission })),
      }),
    );
  }
  const rootAdminRole = roles.find((role) => role.name === 'Root Admin')!;
  const root = await createDomain({ name: 'ROOT' });
  const password = randomCredential(18);
  const { user } = await createAccount(
    { name: 'admin', domain: root, roleId: rootAdminRole.id, roleType: 'Admin' },
    { username: 'admin', password, firstname: 'Admin', lastname: 'User' },
  );
  const keys = await registerUserKeys(user);
  await dynamo().send(new PutCommand({ TableName: tableName(), Item: { ...MARKER, created: cloudstackDate(), rootDomainId: root.id } }));
  return { domain: 'ROOT', domainid: root.id, username: 'admin', password, ...keys };
}

let system: Actor | undefined;

/**
 * Who changes a host's status on its own: upstream's system user and account in the ROOT domain
 * (its events say account "system", user "system"). Mold has no such account record; the actor
 * names it so.
 */
export async function systemActor(): Promise<Actor> {
  if (system) return system;
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: MARKER }));
  const root = Item?.rootDomainId ? await getDomain(String(Item.rootDomainId)) : undefined;
  if (!root) throw new Error('the ROOT domain does not exist yet');
  system = {
    userId: 'system',
    username: 'system',
    accountId: 'system',
    accountName: 'system',
    domainId: root.id,
    domainName: root.name,
    domainPath: root.path,
    domainTree: root.tree,
  };
  return system;
}
