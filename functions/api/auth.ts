// Authentication: an API key with a request signature, or a login session key. Either way the
// caller's user, account and domain must be enabled; anything else is upstream's 401.
import { Unauthenticated } from '../../shared/cloudstack/errors.ts';
import { sign, signatureMatches } from '../../shared/cloudstack/signature.ts';
import { openSecret } from '../../shared/crypto/secrets.ts';
import { findUserByApiKey, getUser, identityKey, useSession, type Account, type Domain, type User } from '../../shared/db/identity.ts';
import { getItems } from '../../shared/db/items.ts';
import { getRole, roleKey, type Role } from '../../shared/db/roles.ts';
import type { Settings } from '../../shared/settings.ts';
import type { Caller } from './command.ts';
import { stringParam, type ApiRequest } from './request.ts';

/** Keys longer than this are no keys of ours; refusing them early keeps them out of table keys. */
const MAX_KEY_BYTES = 512;

const tooLong = (value: string) => Buffer.byteLength(value, 'utf8') > MAX_KEY_BYTES;

/**
 * `settings` starts reading the settings: only a request with credentials asks for them, and then at
 * once, so that read and the credentials' run side by side. A request without credentials costs no
 * read at all.
 */
export async function authenticate(request: ApiRequest, settings: () => Promise<Settings>): Promise<Caller> {
  const sessionkey = stringParam(request, 'sessionkey');
  if (sessionkey) return bySession(request, sessionkey, settings());
  if (stringParam(request, 'apikey') && stringParam(request, 'signature')) return bySignature(request, settings());
  throw new Unauthenticated();
}

/** Upstream's ApiServlet answers every failed session check with this text. */
const sessionRefused = () => new Unauthenticated('unable to verify user credentials');

async function bySession(request: ApiRequest, sessionkey: string, settings: Promise<Settings>): Promise<Caller> {
  // The parameter carries the key (a cookie alone could be sent by any page the browser visits);
  // a sessionkey cookie, when sent too, must agree with it.
  const cookie = request.cookies.sessionkey;
  if (cookie !== undefined && cookie !== sessionkey) throw sessionRefused();
  if (tooLong(sessionkey)) throw sessionRefused();
  const session = await useSession(sessionkey, (await settings).number('session.timeout'));
  if (!session) throw sessionRefused();
  const user = await getUser(session.userId);
  if (!user) throw sessionRefused();
  try {
    return { ...(await resolveCaller(user)), sessionkey };
  } catch (error) {
    throw error instanceof Unauthenticated ? sessionRefused() : error;
  }
}

async function bySignature(request: ApiRequest, settings: Promise<Settings>): Promise<Caller> {
  const apikey = stringParam(request, 'apikey')!;
  if (tooLong(apikey)) throw new Unauthenticated();
  const user = await userByApiKey(apikey);
  if (!user?.secretkey) throw new Unauthenticated();
  const expected = sign(request.pairs, await openSecret(user.secretkey));
  if (!signatureMatches(expected, stringParam(request, 'signature')!)) throw new Unauthenticated();
  if (stringParam(request, 'signatureversion') === '3') checkExpiry(stringParam(request, 'expires'), await settings);
  return resolveCaller(user);
}

// Which user an API key belongs to, remembered per process: it saves a read of the key's guard item
// on every call. The user record itself is always read fresh, and must still carry the key, so a
// key that was replaced or a user that was deleted is refused at once.
const userIdByApiKey = new Map<string, string>();
const USER_ID_BY_API_KEY_MAX = 10_000;

async function userByApiKey(apikey: string): Promise<User | undefined> {
  const knownId = userIdByApiKey.get(apikey);
  if (knownId !== undefined) {
    const user = await getUser(knownId);
    if (user?.apikey === apikey) return user;
    userIdByApiKey.delete(apikey);
  }
  const user = await findUserByApiKey(apikey);
  if (user?.apikey !== apikey) return undefined;
  if (userIdByApiKey.size >= USER_ID_BY_API_KEY_MAX) userIdByApiKey.delete(userIdByApiKey.keys().next().value!);
  userIdByApiKey.set(apikey, user.id);
  return user;
}

function checkExpiry(expires: string | undefined, settings: Settings): void {
  if (!expires) throw new Unauthenticated();
  const at = parseExpires(expires);
  if (at === undefined) throw new Unauthenticated();
  const now = Date.now();
  if (at < now) throw new Unauthenticated();
  if (at > now + settings.number('api.signature.max.expiry') * 1000) throw new Unauthenticated();
}

const EXPIRES = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * yyyy-MM-dd'T'HH:mm:ssZ as upstream parses it (e.g. 2026-11-22T07:52:42+0000), also with a colon
 * in the offset, Z, or milliseconds; anything else is malformed.
 */
export function parseExpires(value: string): number | undefined {
  if (!EXPIRES.test(value)) return undefined;
  const time = Date.parse(value.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  return Number.isNaN(time) ? undefined : time;
}

/** The caller behind a user, refused unless user, account and domain are all enabled. */
// The role each account had when last seen: fetched in the same round trip as the account, and
// fetched again only when the account turns out to have another.
const lastRoleOf = new Map<string, string>();

export async function resolveCaller(user: User): Promise<Caller> {
  const guessedRole = lastRoleOf.get(user.accountId);
  const [account, domain, guessed] = await getItems<[Account, Domain, Role]>([
    identityKey.account(user.accountId),
    identityKey.domain(user.domainId),
    ...(guessedRole ? [roleKey(guessedRole)] : []),
  ] as never);
  if (!account || !domain) throw new Unauthenticated();
  if (user.state !== 'enabled' || account.state !== 'enabled' || domain.state !== 'Active') {
    // Upstream: "disabled or locked user accessing the api" is logged; the caller learns only 401.
    throw new Unauthenticated();
  }
  const role = guessed?.id === account.roleId ? guessed : await getRole(account.roleId);
  if (!role) throw new Unauthenticated();
  lastRoleOf.set(account.id, role.id);
  return { user, account, domain, role };
}
