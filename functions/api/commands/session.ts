// login and logout (upstream's DefaultLoginAPIAuthenticatorCmd and DefaultLogoutAPIAuthenticatorCmd).
import { ApiLimitExceeded, AuthenticationFailed, MethodNotAllowed, Unauthenticated } from '../../../shared/cloudstack/errors.ts';
import { param } from '../../../shared/cloudstack/params.ts';
import { verifyPassword } from '../../../shared/crypto/passwords.ts';
import { recordEvent } from '../../../shared/db/events.ts';
import { createSession, endSession, findUserByName, getDomain, listAllDomains, ACCOUNT_TYPE, type Domain } from '../../../shared/db/identity.ts';
import { actorOf } from '../actor.ts';
import { resolveCaller } from '../auth.ts';
import { definePublicCommand } from '../command.ts';
import { countInWindow, peekWindow } from '../throttle.ts';

/**
 * 531, upstream's CloudAuthenticationException: a failed login. Upstream serializes it with
 * getSerializedApiError(531, text), so the envelope carries no cserrorcode.
 */

/** "/", "/child/" or "ROOT/child": the domain at that path below ROOT. */
async function domainByPath(path: string): Promise<Domain | undefined> {
  const relative = path.replace(/^\/+|\/+$/g, '').replace(/^ROOT(\/|$)/i, '');
  const wanted = relative ? `ROOT/${relative}`.toLowerCase() : 'root';
  return (await listAllDomains()).find((domain) => domain.path.toLowerCase() === wanted);
}

const cookie = (name: string, value: string, maxAge?: number) =>
  `${name}=${value}; Path=/client; HttpOnly; SameSite=Lax${maxAge === undefined ? '' : `; Max-Age=${maxAge}`}`;

const login = definePublicCommand({
  public: true,
  name: 'login',
  description:
    'Logs a user into the CloudStack. A successful login attempt will generate a JSESSIONID cookie value that can be passed in subsequent Query command calls until the "logout" command has been issued or the session has expired.',
  params: {
    username: param.string('Username'),
    password: param.string('Hashed password (Default is MD5). If you wish to use any other hashing algorithm, you would need to write a custom authentication adapter See Docs section.'),
    domain: param.string('Path of the domain that the user belongs to. Example: domain=/com/cloud/internal. If no domain is passed in, the ROOT (/) domain is assumed.').optional(),
    domainid: param.uuid('The id of the domain that the user belongs to. If both domain and domainId are passed in, "domainId" parameter takes precedence.').optional(),
  },
  handler: async ({ params, httpMethod, sourceIp, settings }) => {
    if (httpMethod !== 'POST') throw new MethodNotAllowed('Please use HTTP POST to authenticate using this API');
    const domain = params.domainid ? await getDomain(params.domainid) : await domainByPath(params.domain ?? '/');
    if (!domain) {
      if (params.domainid) throw new Unauthenticated('Invalid domain id entered, please enter a valid one');
      // Upstream names the path as it normalised it: with a leading and a trailing slash.
      const path = params.domain!.replace(/^\/?/, '/').replace(/\/?$/, '/');
      throw new AuthenticationFailed(`Unable to find the domain from the path ${path}`);
    }
    const failed = new AuthenticationFailed(`Failed to authenticate user ${params.username} in domain ${domain.id}; please provide valid credentials`);
    const windowSeconds = settings.number('login.throttle.window');
    const allowed = settings.number('incorrect.login.attempts.allowed');
    const counters = [`login#user#${domain.id}#${params.username.toLowerCase()}`, `login#source#${sourceIp}`];
    for (const counter of counters) {
      const { count, retryAfterMs } = await peekWindow(counter, windowSeconds);
      if (count >= allowed) {
        throw new ApiLimitExceeded(`Too many failed login attempts for this user or from this address; retry after ${Math.ceil(retryAfterMs / 1000)} seconds.`);
      }
    }
    const user = await findUserByName(domain.id, params.username);
    if (!user || !(await verifyPassword(params.password, user.password))) {
      for (const counter of counters) await countInWindow(counter, windowSeconds);
      throw failed;
    }
    const caller = await resolveCaller(user).catch((error) => {
      if (error instanceof Unauthenticated) {
        throw new AuthenticationFailed(`User ${params.username} (or their account) in domain ${domain.name} is disabled/locked. Please contact the administrator.`);
      }
      throw error;
    });
    const timeout = settings.number('session.timeout');
    const session = await createSession(user.id, timeout);
    await recordEvent(actorOf(caller), { type: 'USER.LOGIN', description: `user has logged in from IP Address /${sourceIp}`, resourceId: user.id, resourceType: 'User' });
    return {
      body: {
        username: user.username,
        userid: user.id,
        domainid: domain.id,
        timeout,
        account: caller.account.name,
        firstname: user.firstname,
        lastname: user.lastname,
        type: String(ACCOUNT_TYPE[caller.account.roleType]),
        ...(user.timezone && { timezone: user.timezone }),
        registered: 'false',
        sessionkey: session.sessionkey,
        is2faenabled: 'false',
        issuerfor2fa: 'Mold',
        providerfor2fa: 'none',
      },
      cookies: [cookie('JSESSIONID', session.sessionkey), cookie('sessionkey', session.sessionkey)],
    };
  },
});

const logout = definePublicCommand({
  public: true,
  name: 'logout',
  description: 'Logs out the user',
  params: {},
  handler: async ({ caller }) => {
    if (caller?.sessionkey) {
      await endSession(caller.sessionkey);
      await recordEvent(actorOf(caller), { type: 'USER.LOGOUT', description: 'user has logged out', resourceId: caller.user.id, resourceType: 'User' });
    }
    return { body: { description: 'success' }, cookies: [cookie('JSESSIONID', '', 0), cookie('sessionkey', '', 0)] };
  },
});

export const sessionCommands = [login, logout];
