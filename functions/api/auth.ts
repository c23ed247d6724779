// Authentication: an API key with a request signature, or a login session key. Either way the
// caller's user, account and domain must be enabled; anything else is upstream's 401.
import { Unauthenticated } from '../../shared/cloudstack/errors.ts';
import { sign, signatureMatches } from '../../shared/cloudstack/signature.ts';
import { openSecret } from '../../shared/crypto/secrets.ts';
import { findUserByApiKey, getAccount, getDomain, getUser, useSession, type User } from '../../shared/db/identity.ts';
import { getRole } from '../../shared/db/roles.ts';
import type { Settings } from '../../shared/settings.ts';
import type { Caller } from './command.ts';
import { stringParam, type ApiRequest } from './request.ts';

export async function authenticate(request: ApiRequest, settings: Settings): Promise<Caller> {
  const sessionkey = stringParam(request, 'sessionkey');
  if (sessionkey) return bySession(request, sessionkey, settings);
  if (stringParam(request, 'apikey') && stringParam(request, 'signature')) return bySignature(request, settings);
  throw new Unauthenticated();
}

async function bySession(request: ApiRequest, sessionkey: string, settings: Settings): Promise<Caller> {
  // The parameter carries the key (a cookie alone could be sent by any page the browser visits);
  // a sessionkey cookie, when sent too, must agree with it.
  const cookie = request.cookies.sessionkey;
  if (cookie !== undefined && cookie !== sessionkey) throw new Unauthenticated('unable to verify user credentials');
  const session = await useSession(sessionkey, settings.number('session.timeout'));
  if (!session) throw new Unauthenticated('unable to verify user credentials');
  const user = await getUser(session.userId);
  if (!user) throw new Unauthenticated('unable to verify user credentials');
  return { ...(await resolveCaller(user)), sessionkey };
}

async function bySignature(request: ApiRequest, settings: Settings): Promise<Caller> {
  const user = await findUserByApiKey(stringParam(request, 'apikey')!);
  if (!user?.secretkey) throw new Unauthenticated();
  const expected = sign(request.pairs, await openSecret(user.secretkey));
  if (!signatureMatches(expected, stringParam(request, 'signature')!)) throw new Unauthenticated();
  if (stringParam(request, 'signatureversion') === '3') checkExpiry(stringParam(request, 'expires'), settings);
  return resolveCaller(user);
}

function checkExpiry(expires: string | undefined, settings: Settings): void {
  if (!expires) throw new Unauthenticated();
  const at = parseExpires(expires);
  if (at === undefined) throw new Unauthenticated();
  const now = Date.now();
  if (at < now) throw new Unauthenticated();
  if (at > now + settings.number('api.signature.max.expiry') * 1000) throw new Unauthenticated();
}

/** yyyy-MM-dd'T'HH:mm:ssZ as upstream writes it (+0000), or any ISO 8601 with an offset. */
export function parseExpires(value: string): number | undefined {
  const normalized = value.replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
  if (!/(Z|[+-]\d{2}:\d{2})$/.test(normalized)) return undefined;
  const time = Date.parse(normalized);
  return Number.isNaN(time) ? undefined : time;
}

/** The caller behind a user, refused unless user, account and domain are all enabled. */
export async function resolveCaller(user: User): Promise<Caller> {
  const [account, domain] = await Promise.all([getAccount(user.accountId), getDomain(user.domainId)]);
  if (!account || !domain) throw new Unauthenticated();
  if (user.state !== 'enabled' || account.state !== 'enabled' || domain.state !== 'Active') {
    throw new Unauthenticated('User is disabled or locked, or its account or domain is: unable to verify user credentials');
  }
  const role = await getRole(account.roleId);
  if (!role) throw new Unauthenticated();
  return { user, account, domain, role };
}
