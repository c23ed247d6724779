// Shared by the identity tests: one runtime per file, accounts of each role made through the API,
// and assertions for CloudStack refusals.
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { ApiClient, type ApiAnswer } from '../support/client.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';

export interface World {
  runtime: RunningRuntime;
  admin: ApiClient;
  rootDomainId: string;
}

export async function startWorld(): Promise<World> {
  const runtime = await startRuntime();
  return { runtime, admin: new ApiClient(runtime.apiUrl, runtime.credentials), rootDomainId: runtime.credentials.domainid };
}

export const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** Asserts an ok answer and returns the body inside `<command>response`. */
export function ok(answer: ApiAnswer, command: string): any {
  if (answer.status !== 200) throw new Error(`${command}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body[`${command.toLowerCase()}response`];
}

/** Asserts a CloudStack error envelope. */
export function refused(answer: ApiAnswer, command: string, errorcode: number, errortext: string | RegExp, cserrorcode?: number) {
  const body = answer.body[`${command.toLowerCase()}response`];
  expect(answer.status, JSON.stringify(answer.body)).toBe(errorcode);
  expect(body.errorcode).toBe(errorcode);
  if (cserrorcode !== undefined) expect(body.cserrorcode).toBe(cserrorcode);
  if (typeof errortext === 'string') expect(body.errortext).toBe(errortext);
  else expect(body.errortext).toMatch(errortext);
  expect(JSON.stringify(body)).not.toMatch(/\bat .*\.ts:\d+/);
  return body;
}

export const missing = (api: string, name: string) => `Unable to execute API command ${api} due to missing parameter ${name}`;
export const noEntity = (api: string, name: string, value: string) =>
  `Unable to execute API command ${api} due to invalid value. Invalid parameter ${name} value=${value} due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.`;

export interface Member {
  client: ApiClient;
  account: any;
  user: any;
  password: string;
}

/** An account (accounttype 0 user, 2 domain admin, 1 root admin) with API keys, made by `by`. */
export async function makeAccount(
  by: ApiClient,
  fields: { accounttype?: number; roleid?: string; domainid?: string; account?: string; username?: string } = {},
): Promise<Member> {
  const username = fields.username ?? unique('user');
  const password = `pw-${randomUUID()}`;
  const created = ok(
    await by.call('createAccount', {
      username,
      password,
      firstname: 'First',
      lastname: 'Last',
      email: `${username}@example.com`,
      ...(fields.roleid ? { roleid: fields.roleid } : { accounttype: fields.accounttype ?? 0 }),
      ...(fields.domainid && { domainid: fields.domainid }),
      ...(fields.account && { account: fields.account }),
    }),
    'createAccount',
  ).account;
  const user = created.user[0];
  const keys = ok(await by.call('registerUserKeys', { id: user.id }), 'registerUserKeys').userkeys;
  return { client: new ApiClient(by.url, keys), account: created, user, password };
}

export async function makeDomain(by: ApiClient, name = unique('dom'), parentdomainid?: string): Promise<any> {
  return ok(await by.call('createDomain', { name, ...(parentdomainid && { parentdomainid }) }), 'createDomain').domain;
}

/** Polls queryAsyncJobResult until the job ends; returns the queryasyncjobresultresponse. */
export async function finish(client: ApiClient, answer: ApiAnswer, command: string): Promise<any> {
  const { jobid } = ok(answer, command);
  expect(jobid).toMatch(/^[0-9a-f-]{36}$/);
  return client.waitForJob(jobid);
}
