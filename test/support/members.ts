// Accounts of a given role for tests, seeded through the repository layer (fast, no API calls),
// each with API keys and an ApiClient. Needs useRuntimeEndpoints() first.
import { actorFor, type Actor } from '../../shared/db/events.ts';
import { createAccount, registerUserKeys, type Account, type Domain, type User } from '../../shared/db/identity.ts';
import { listRoles, type Role } from '../../shared/db/roles.ts';
import { ApiClient } from './client.ts';

export interface Member {
  client: ApiClient;
  actor: Actor;
  account: Account;
  user: User;
  password: string;
}

/** A new account `name` in `domain` with the named (or given) role, and its user of the same name. */
export async function seedMember(apiUrl: string, name: string, domain: Domain, role: string | Pick<Role, 'id' | 'type'>): Promise<Member> {
  const chosen = typeof role === 'string' ? (await listRoles()).find((r) => r.name === role) : role;
  if (!chosen) throw new Error(`no role named ${role}`);
  const password = `${name}-password`;
  const { account, user } = await createAccount(
    { name, domain, roleId: chosen.id, roleType: chosen.type },
    { username: name, password, firstname: name, lastname: 'Tester' },
  );
  const keys = await registerUserKeys(user);
  return { client: new ApiClient(apiUrl, keys), actor: actorFor(user, account, domain), account, user: { ...user, ...keys }, password };
}
