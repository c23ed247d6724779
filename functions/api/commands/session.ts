// login and logout (upstream's DefaultLoginAPIAuthenticatorCmd and DefaultLogoutAPIAuthenticatorCmd).
import { ApiLimitExceeded, AuthenticationFailed, MethodNotAllowed, Unauthenticated } from '../../../shared/cloudstack/errors.ts';
import { param } from '../../../shared/cloudstack/params.ts';
import { verifyPassword } from '../../../shared/crypto/passwords.ts';
import { recordEvent } from '../../../shared/db/events.ts';
import { ALERT_TYPES, createAlert } from '../../../shared/db/alerts.ts';
import {
  clearFailedLogins,
  countFailedLogin,
  createSession,
  endSession,
  findUserByName,
  getAccount,
  getDomain,
  listAllDomains,
  ACCOUNT_TYPE,
  type Domain,
  type User,
} from '../../../shared/db/identity.ts';
import { log } from '../../../shared/log.ts';
import { actorOf } from '../actor.ts';
import { resolveCaller } from '../auth.ts';
import { definePublicCommand } from '../command.ts';
import { clearWindow, countInWindow, peekWindow } from '../throttle.ts';

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

const cookie = (secure: boolean, name: string, value: string, maxAge?: number) =>
  `${name}=${value}; Path=/client; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}${maxAge === undefined ? '' : `; Max-Age=${maxAge}`}`;

const login = definePublicCommand({
  public: true,
  name: 'login',
  description:
    'Logs a user into the CloudStack. A successful login attempt will generate a JSESSIONID cookie value that can be passed in subsequent Query command calls until the "logout" command has been issued or the session has expired.',
  params: {
    username: param.string('Username'),
    password: param.text('Hashed password (Default is MD5). If you wish to use any other hashing algorithm, you would need to write a custom authentication adapter See Docs section.'),
    domain: param.string('Path of the domain that the user belongs to. Example: domain=/com/cloud/internal. If no domain is passed in, the ROOT (/) domain is assumed.').optional(),
    domainid: param.uuid('The id of the domain that the user belongs to. If both domain and domainId are passed in, "domainId" parameter takes precedence.').optional(),
  },
  handler: async ({ params, httpMethod, sourceIp, settings, secure }) => {
    if (httpMethod !== 'POST') throw new MethodNotAllowed('Please use HTTP POST to authenticate using this API');
    const domain = params.domainid ? await getDomain(params.domainid) : await domainByPath(params.domain ?? '/');
    if (!domain) {
      if (params.domainid) throw new Unauthenticated('Invalid domain id entered, please enter a valid one');
      // Upstream names the path as it normalised it: with a leading and a trailing slash.
      const path = params.domain!.replace(/^\/?/, '/').replace(/\/?$/, '/');
      throw new AuthenticationFailed(`Unable to find the domain from the path ${path}`);
    }
    const failed = new AuthenticationFailed(`Failed to authenticate user ${params.username} in domain ${domain.id}; please provide valid credentials`);
    const allowed = settings.number('incorrect.login.attempts.allowed');
    const windowSeconds = settings.number('login.throttle.window');
    // Failures of one user name from one address, in a window: slows guessing at a password upstream
    // never disables (an admin's), and stands in the way of no one else, whoever shares the address.
    const throttled = `login#${sourceIp}#${domain.id}#${params.username.toLowerCase()}`;
    const { count, retryAfterMs } = await peekWindow(throttled, windowSeconds);
    if (count >= allowed) {
      throw new ApiLimitExceeded(`Too many failed login attempts for this user from this address; retry after ${Math.ceil(retryAfterMs / 1000)} seconds.`);
    }
    const user = await findUserByName(domain.id, params.username);
    if (!user || !(await verifyPassword(params.password, user.password))) {
      await countInWindow(throttled, windowSeconds);
      if (user) await countFailure(user, allowed, domain, sourceIp);
      throw failed;
    }
    const caller = await resolveCaller(user).catch((error) => {
      if (error instanceof Unauthenticated) {
        throw new AuthenticationFailed(`User ${params.username} (or their account) in domain ${domain.name} is disabled/locked. Please contact the administrator.`);
      }
      throw error;
    });
    await Promise.all([clearFailedLogins(user), count > 0 && clearWindow(throttled)]);
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
        timezoneoffset: timezoneOffset(user.timezone),
        registered: 'false',
        sessionkey: session.sessionkey,
        is2faenabled: 'false',
        is2faverified: 'false',
        issuerfor2fa: 'Mold',
        providerfor2fa: 'none',
      },
      cookies: [cookie(secure, 'JSESSIONID', session.sessionkey), cookie(secure, 'sessionkey', session.sessionkey)],
    };
  },
});

/**
 * The user's offset from UTC now, in hours, as upstream's Java Float.toString writes it ("0.0", "5.5",
 * "-4.0"): the UI parses it as JSON right after login and never loads without it.
 */
export function timezoneOffset(timezone: string | undefined, at = new Date()): string {
  let hours = 0;
  if (timezone) {
    try {
      const part = new Intl.DateTimeFormat('en-US', { timeZone: timezone, timeZoneName: 'longOffset' })
        .formatToParts(at)
        .find((p) => p.type === 'timeZoneName')?.value;
      const match = part?.match(/GMT([+-])(\d{2}):(\d{2})/);
      if (match) hours = (match[1] === '-' ? -1 : 1) * (Number(match[2]) + Number(match[3]) / 60);
    } catch {
      // An id Intl doesn't know: upstream's TimeZone.getTimeZone falls back to GMT.
    }
  }
  return Number.isInteger(hours) ? hours.toFixed(1) : String(hours);
}

/**
 * Upstream's count of failed logins in a row per user: at incorrect.login.attempts.allowed the user
 * is disabled (an Admin-type account's users never are: upstream's isInternalAccount), and Mold
 * raises an alert for the operator.
 */
async function countFailure(user: User, allowed: number, domain: Domain, sourceIp: string): Promise<void> {
  const account = await getAccount(user.accountId);
  if (!account || account.roleType === 'Admin') return;
  if (!(await countFailedLogin(user, allowed))) return;
  log.warn('user disabled after failed logins', { userId: user.id, attempts: allowed, sourceIp });
  await createAlert({
    alertType: ALERT_TYPES.USER_LOGIN,
    subject: `User ${user.username} in domain ${domain.path} has been disabled due to multiple failed login attempts`,
    content: `${allowed} failed login attempts in a row (incorrect.login.attempts.allowed), the last from ${sourceIp}. enableUser lets the user log in again.`,
    resourceId: user.id,
    resourceType: 'User',
  });
}

const logout = definePublicCommand({
  public: true,
  name: 'logout',
  description: 'Logs out the user',
  params: {},
  handler: async ({ caller, secure }) => {
    if (caller?.sessionkey) {
      await endSession(caller.sessionkey);
      await recordEvent(actorOf(caller), { type: 'USER.LOGOUT', description: 'user has logged out', resourceId: caller.user.id, resourceType: 'User' });
    }
    return { body: { description: 'success' }, cookies: [cookie(secure, 'JSESSIONID', '', 0), cookie(secure, 'sessionkey', '', 0)] };
  },
});

export const sessionCommands = [login, logout];
