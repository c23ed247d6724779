// queryAsyncJobResult and listAsyncJobs against jobs run by the real agent-command state machine:
// pending, then succeeded or failed (by SendTaskFailure or by the task's timeout), seen through the
// API in JSON and XML, and scoped to the account that started them.
import { randomUUID } from 'node:crypto';
import { SendTaskFailureCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sfn, sqs } from '../../shared/aws.ts';
import { actorFor, type Actor } from '../../shared/db/events.ts';
import {
  createDomain,
  findUserByApiKey,
  getAccount,
  getDomain,
  type Account,
  type Domain,
  type User,
} from '../../shared/db/identity.ts';
import { getJob, type Job } from '../../shared/db/jobs.ts';
import { startJob } from '../../shared/orchestration.ts';
import { clearSetting, storeSetting } from '../../shared/settings.ts';
import { receiveCommand, seedAgent } from '../support/agent-seed.ts';
import { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { until } from '../support/wait.ts';

const DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$/;

let runtime: RunningRuntime;
let admin: ApiClient;
let adminActor: Actor;
let root: Domain;

let alice: Member; // a User in ROOT
let bob: Member; // a User in ROOT, another account
let subAdmin: Member; // a DomainAdmin of ROOT/sub



beforeAll(async () => {
  runtime = await startRuntime();
  useRuntimeEndpoints(runtime);
  admin = new ApiClient(runtime.apiUrl, runtime.credentials);
  const adminUser = (await findUserByApiKey(runtime.credentials.apikey))!;
  const adminAccount = (await getAccount(adminUser.accountId))!;
  root = (await getDomain(adminUser.domainId))!;
  adminActor = actorFor(adminUser, adminAccount, root);
  const sub = await createDomain({ name: 'sub', parent: root });
  [alice, bob, subAdmin] = await Promise.all([seedMember(runtime.apiUrl, 'alice', root, 'User'), seedMember(runtime.apiUrl, 'bob', root, 'User'), seedMember(runtime.apiUrl, 'subadmin', sub, 'Domain Admin')]);
});

afterAll(async () => {
  await runtime?.stop();
});

/**
 * Starts the agent-command state machine for a job of `actor`, as an async command would: a pingHost
 * through a seeded agent of its own (so each job has its own queue), which the test then plays.
 * `timeoutSeconds` sets agent.command.timeout while the command is prepared.
 */
async function startAgentJob(actor: Actor, options: { timeoutSeconds?: number; cmd?: string; instance?: string; hostName?: string } = {}) {
  const { agent } = await seedAgent(randomUUID());
  if (options.timeoutSeconds !== undefined) await storeSetting('agent.command.timeout', String(options.timeoutSeconds));
  const job = await startJob(
    {
      cmd: options.cmd ?? 'rebootVirtualMachine',
      actor,
      event: { type: 'VM.REBOOT', description: 'rebooting vm' },
      ...(options.instance && { jobinstancetype: 'VirtualMachine', jobinstanceid: options.instance }),
    },
    'agent-command',
    { op: 'pingHost', args: { agentId: agent.id, host: { hostId: randomUUID(), address: '10.0.0.1', port: 22, username: 'root' }, name: options.hostName ?? 'h1' } },
  );
  if (options.timeoutSeconds !== undefined) {
    // Prepare has read the setting once the command is on the queue.
    await until('the command on the queue', async () => (await sqs().send(new GetQueueAttributesCommand({ QueueUrl: agent.queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes?.ApproximateNumberOfMessages ?? '0', (count) => count !== '0');
    await clearSetting('agent.command.timeout');
  }
  return { job, queueUrl: agent.queueUrl };
}

const receiveOne = (queueUrl: string) => receiveCommand(queueUrl);

async function query(client: ApiClient, jobid: string) {
  return client.call('queryAsyncJobResult', { jobid });
}

describe('queryAsyncJobResult', () => {
  it('shows a job pending, then succeeded with the response made of the agent’s result', async () => {
    const instance = randomUUID();
    const { job, queueUrl } = await startAgentJob(adminActor, { instance });

    const pending = await query(admin, job.jobid);
    expect(pending.status).toBe(200);
    expect(pending.body).toEqual({
      queryasyncjobresultresponse: {
        accountid: adminActor.accountId,
        account: 'admin',
        domainid: root.id,
        domainpath: 'ROOT',
        userid: adminActor.userId,
        cmd: 'rebootVirtualMachine',
        jobstatus: 0,
        jobprocstatus: 0,
        jobresultcode: 0,
        jobinstancetype: 'VirtualMachine',
        jobinstanceid: instance,
        created: expect.stringMatching(DATE),
        jobid: job.jobid,
      },
    });

    const message = await receiveOne(queueUrl);
    expect(message).toMatchObject({ commandId: job.jobid, type: 'pingHost', payload: { host: { address: '10.0.0.1', port: 22, username: 'root' } } });
    await sfn().send(new SendTaskSuccessCommand({ taskToken: message.taskToken, output: JSON.stringify({ elapsedMs: 12 }) }));
    const result = { success: true, displaytext: 'Host h1 answered through its agent in 12 ms' };

    const done = await admin.waitForJob(job.jobid);
    expect(done).toEqual({
      ...pending.body.queryasyncjobresultresponse,
      jobstatus: 1,
      jobresultcode: 0,
      jobresulttype: 'object',
      jobresult: result,
      completed: expect.stringMatching(DATE),
    });
    expect(Object.keys(done)).toEqual([
      'accountid', 'account', 'domainid', 'domainpath', 'userid', 'cmd', 'jobstatus', 'jobprocstatus', 'jobresultcode',
      'jobresulttype', 'jobresult', 'jobinstancetype', 'jobinstanceid', 'created', 'completed', 'jobid',
    ]);
  });

  it('ends a job whose agent reports a failure with jobstatus 2 and the CloudStack error', async () => {
    const { job, queueUrl } = await startAgentJob(adminActor);
    const message = await receiveOne(queueUrl);
    expect((await query(admin, job.jobid)).body.queryasyncjobresultresponse.jobstatus).toBe(0);
    await sfn().send(new SendTaskFailureCommand({ taskToken: message.taskToken, error: 'ResourceUnavailable', cause: 'Host h1 is unreachable' }));

    const failed = await admin.waitForJob(job.jobid);
    expect(failed).toMatchObject({
      jobstatus: 2,
      jobprocstatus: 0,
      jobresultcode: 534,
      jobresulttype: 'object',
      jobresult: { errorcode: 534, errortext: 'Host h1 is unreachable' },
      completed: expect.stringMatching(DATE),
    });
  });

  it('ends a job with an unknown agent error as 530 with the agent’s words', async () => {
    const { job, queueUrl } = await startAgentJob(adminActor);
    const message = await receiveOne(queueUrl);
    await sfn().send(new SendTaskFailureCommand({ taskToken: message.taskToken, error: 'HostUnreachable', cause: 'ssh: connection refused' }));
    expect(await admin.waitForJob(job.jobid)).toMatchObject({
      jobstatus: 2,
      jobresultcode: 530,
      jobresult: { errorcode: 530, errortext: 'ssh: connection refused' },
    });
  });

  it('fails a job nobody answers within the task timeout', async () => {
    const { job } = await startAgentJob(adminActor, { timeoutSeconds: 2 });
    expect((await query(admin, job.jobid)).body.queryasyncjobresultresponse.jobstatus).toBe(0);
    const failed = await admin.waitForJob(job.jobid);
    expect(failed).toMatchObject({
      jobstatus: 2,
      jobresultcode: 530,
      jobresult: { errorcode: 530, errortext: 'The agent did not answer in time; the host or its agent may be down.' },
    });
  });

  it('carries the same data in XML as in JSON', async () => {
    const { job, queueUrl } = await startAgentJob(adminActor, { instance: randomUUID(), hostName: 'a < b & "c"' });
    const message = await receiveOne(queueUrl);
    await sfn().send(new SendTaskSuccessCommand({ taskToken: message.taskToken, output: JSON.stringify({ elapsedMs: 3 }) }));
    const json = await admin.waitForJob(job.jobid);
    const xml = await admin.call('queryAsyncJobResult', { jobid: job.jobid }, { response: 'xml' });
    expect(xml.status).toBe(200);
    expect(xml.headers.get('content-type')).toMatch(/^text\/xml/);
    const escape = (text: string) => text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
    let expected = '';
    for (const [field, value] of Object.entries(json)) {
      expected +=
        typeof value === 'object'
          ? `<${field}>${Object.entries(value as Record<string, unknown>).map(([k, v]) => `<${k}>${escape(String(v))}</${k}>`).join('')}</${field}>`
          : `<${field}>${escape(String(value))}</${field}>`;
    }
    expect(xml.body).toBe(`<?xml version="1.0" encoding="UTF-8"?><queryasyncjobresultresponse cloud-stack-version="4.20.0.0">${expected}</queryasyncjobresultresponse>`);
  });

  it('lets the owning user see its job, and refuses other accounts with 531', async () => {
    const { job } = await startAgentJob(alice.actor, { cmd: 'stopVirtualMachine', timeoutSeconds: 60 });
    expect((await query(alice.client, job.jobid)).body.queryasyncjobresultresponse).toMatchObject({
      jobid: job.jobid,
      accountid: alice.account.id,
      account: 'alice',
      userid: alice.user.id,
    });
    // A root admin sees every job.
    expect((await query(admin, job.jobid)).status).toBe(200);

    const refused = await query(bob.client, job.jobid);
    expect(refused.status).toBe(531);
    expect(refused.body).toEqual({
      queryasyncjobresultresponse: {
        uuidList: [],
        errorcode: 531,
        cserrorcode: 4365,
        errortext: `Account Acct[${bob.account.id}-bob] is not authorized to see job id=${job.jobid}`,
      },
    });
    const adminJob = (await startAgentJob(adminActor, { timeoutSeconds: 60 })).job;
    expect((await query(alice.client, adminJob.jobid)).status).toBe(531);
    // A domain admin sees only jobs of accounts in its subtree: ROOT's are not.
    const byDomainAdmin = await query(subAdmin.client, adminJob.jobid);
    expect(byDomainAdmin.status).toBe(531);
    expect(byDomainAdmin.body.queryasyncjobresultresponse.errorcode).toBe(531);
    // The refusals left the jobs as they were.
    expect((await getJob(adminJob.jobid))?.jobstatus).toBe(0);
  });

  it('lets a domain admin see the jobs of its subtree', async () => {
    const { job } = await startAgentJob(subAdmin.actor, { timeoutSeconds: 60 });
    expect((await query(subAdmin.client, job.jobid)).body.queryasyncjobresultresponse.jobid).toBe(job.jobid);
  });

  it('refuses a missing, malformed or unknown jobid with 431 naming the parameter', async () => {
    const missing = await admin.call('queryAsyncJobResult');
    expect(missing.status).toBe(431);
    expect(missing.body.queryasyncjobresultresponse).toMatchObject({
      errorcode: 431,
      cserrorcode: 4350,
      errortext: 'Unable to execute API command queryasyncjobresult due to missing parameter jobid',
    });

    const malformed = await admin.call('queryAsyncJobResult', { jobid: 'not-a-job' });
    expect(malformed.status).toBe(431);
    expect(malformed.body.queryasyncjobresultresponse.errortext).toMatch(/^Unable to execute API command queryasyncjobresult due to invalid value\. Invalid parameter jobid value=not-a-job/);

    const unknown = randomUUID();
    const notFound = await admin.call('queryAsyncJobResult', { jobid: unknown });
    expect(notFound.status).toBe(431);
    expect(notFound.body).toEqual({
      queryasyncjobresultresponse: {
        uuidList: [],
        errorcode: 431,
        cserrorcode: 4350,
        errortext: `Unable to execute API command queryasyncjobresult due to invalid value. Invalid parameter jobid value=${unknown} due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.`,
      },
    });
  });
});

describe('listAsyncJobs', () => {
  let aliceJobs: Job[];
  let bobJob: Job;
  beforeAll(async () => {
    aliceJobs = [];
    for (const cmd of ['startVirtualMachine', 'stopVirtualMachine', 'destroyVirtualMachine']) {
      aliceJobs.push((await startAgentJob(alice.actor, { cmd, timeoutSeconds: 120 })).job);
    }
    bobJob = (await startAgentJob(bob.actor, { cmd: 'startVirtualMachine', timeoutSeconds: 120 })).job;
  });

  const ids = (body: any) => (body.listasyncjobsresponse.asyncjobs ?? []).map((job: any) => job.jobid);

  it('lists only the caller’s account’s jobs, oldest first as upstream, rendered as queryAsyncJobResult does', async () => {
    const { status, body } = await alice.client.call('listAsyncJobs');
    expect(status).toBe(200);
    const own = [...(await alice.client.call('listAsyncJobs', { pagesize: -1 })).body.listasyncjobsresponse.asyncjobs];
    expect(body.listasyncjobsresponse.count).toBe(own.length);
    expect(ids(body)).toEqual(expect.arrayContaining(aliceJobs.map((job) => job.jobid)));
    expect(ids(body)).not.toContain(bobJob.jobid);
    expect(body.listasyncjobsresponse.asyncjobs.every((job: any) => job.accountid === alice.account.id)).toBe(true);
    const mine = ids(body).filter((id: string) => aliceJobs.some((job) => job.jobid === id));
    expect(mine).toEqual(aliceJobs.map((job) => job.jobid));
    const single = body.listasyncjobsresponse.asyncjobs.find((job: any) => job.jobid === aliceJobs[0].jobid);
    expect(single).toEqual((await query(alice.client, aliceJobs[0].jobid)).body.queryasyncjobresultresponse);
  });

  it('ignores listall for a user, and lets an admin list everything with listall or one account by name', async () => {
    expect(ids((await alice.client.call('listAsyncJobs', { listall: true })).body)).not.toContain(bobJob.jobid);

    const adminOwn = ids((await admin.call('listAsyncJobs', { pagesize: -1 })).body);
    expect(adminOwn).not.toContain(bobJob.jobid);
    const all = ids((await admin.call('listAsyncJobs', { listall: true, pagesize: -1 })).body);
    expect(all).toEqual(expect.arrayContaining([bobJob.jobid, ...aliceJobs.map((job) => job.jobid)]));

    const bobs = ids((await admin.call('listAsyncJobs', { account: 'bob', domainid: root.id })).body);
    expect(bobs).toContain(bobJob.jobid);
    expect(bobs.some((id: string) => aliceJobs.some((job) => job.jobid === id))).toBe(false);

    // A domain admin of ROOT/sub sees nothing of ROOT's accounts.
    const fromSub = ids((await subAdmin.client.call('listAsyncJobs', { listall: true, pagesize: -1 })).body);
    expect(fromSub).not.toContain(bobJob.jobid);
  });

  it('filters by keyword (the command) and startdate, and pages', async () => {
    const stops = (await alice.client.call('listAsyncJobs', { keyword: 'STOPvirtual' })).body.listasyncjobsresponse;
    expect(stops.asyncjobs.every((job: any) => job.cmd === 'stopVirtualMachine')).toBe(true);
    expect(stops.asyncjobs.map((job: any) => job.jobid)).toContain(aliceJobs[1].jobid);

    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect(ids((await alice.client.call('listAsyncJobs', { startdate: `${today}T00:00:00+0000` })).body)).toContain(aliceJobs[0].jobid);
    expect((await alice.client.call('listAsyncJobs', { startdate: tomorrow })).body).toEqual({ listasyncjobsresponse: {} });

    const all = (await alice.client.call('listAsyncJobs', { pagesize: -1 })).body.listasyncjobsresponse;
    const first = (await alice.client.call('listAsyncJobs', { page: 1, pagesize: 2 })).body.listasyncjobsresponse;
    const second = (await alice.client.call('listAsyncJobs', { page: 2, pagesize: 2 })).body.listasyncjobsresponse;
    expect(first.count).toBe(all.count);
    expect(first.asyncjobs).toHaveLength(2);
    expect([...first.asyncjobs, ...second.asyncjobs].map((job: any) => job.jobid)).toEqual(all.asyncjobs.slice(0, 4).map((job: any) => job.jobid));
  });

  it('refuses another account for a user with 531, and bad values with 431', async () => {
    const other = await alice.client.call('listAsyncJobs', { account: 'bob' });
    expect(other.status).toBe(531);
    expect(other.body.listasyncjobsresponse).toMatchObject({ errorcode: 531, cserrorcode: 4365 });

    const badDate = await alice.client.call('listAsyncJobs', { startdate: '2024-02-30' });
    expect(badDate.status).toBe(431);
    expect(badDate.body.listasyncjobsresponse.errortext).toMatch(/startdate|Unable to parse date 2024-02-30 for command listasyncjobs/);

    const badDomain = await admin.call('listAsyncJobs', { domainid: randomUUID() });
    expect(badDomain.status).toBe(431);
    expect(badDomain.body.listasyncjobsresponse.errorcode).toBe(431);
  });
});
