// queryAsyncJobResult and listAsyncJobs (upstream's QueryAsyncJobResultCmd and ListAsyncJobsCmd).
// A job belongs to the account whose user started it (its actor): a user sees its account's jobs,
// a domain admin those of its domain's subtree, a root admin all (upstream's queryJobResult).
import { InvalidParameter, PermissionDenied } from '../../../shared/cloudstack/errors.ts';
import { listParams, param, scopeParams } from '../../../shared/cloudstack/params.ts';
import { cloudstackMillis, getJob, type Job, JobStatus, listJobsUnder } from '../../../shared/db/jobs.ts';
import { ALL_ROLES, defineCommand, type Caller } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { describeAccount, inScope, isDomainAdmin, isRootAdmin, ownedScope } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';

/**
 * Upstream's AsyncJobResponse, in its field order. `cmd` is the API command's name: upstream shows
 * the Java class that ran it (org.apache.cloudstack.api.command...Cmd), which Mold does not have.
 * `jobresulttype` and `jobresult` appear once the job has a result, `completed` once it ended, and
 * the instance fields only when the job names both.
 */
export function renderJob(job: Job): Record<string, unknown> {
  const finished = job.jobstatus !== JobStatus.Pending;
  const actor = job.actor;
  return {
    ...(actor && {
      accountid: actor.accountId,
      account: actor.accountName,
      domainid: actor.domainId,
      domainpath: actor.domainPath,
      userid: actor.userId,
    }),
    cmd: job.cmd,
    jobstatus: job.jobstatus,
    jobprocstatus: job.jobprocstatus ?? 0,
    jobresultcode: job.jobresultcode,
    ...(finished && job.jobresult !== undefined && { jobresulttype: job.jobresulttype ?? 'object', jobresult: job.jobresult }),
    ...(job.jobinstancetype && job.jobinstanceid && { jobinstancetype: job.jobinstancetype, jobinstanceid: job.jobinstanceid }),
    created: job.created,
    ...(finished && job.completed && { completed: job.completed }),
    jobid: job.jobid,
  };
}

/**
 * Upstream's check: a normal user sees only its account's jobs, a domain admin those of accounts in
 * its subtree, a root admin every job. A job with no actor was started by the system (ROOT).
 */
function checkJobAccess(caller: Caller, job: Job): void {
  if (isRootAdmin(caller)) return;
  const owner = job.actor;
  if (isDomainAdmin(caller)) {
    if (owner && owner.domainTree.startsWith(caller.domain.tree)) return;
    throw new PermissionDenied(
      `${describeAccount(caller.account)} does not have permission to operate with resource ${describeAccount({ id: owner?.accountId ?? 'system', name: owner?.accountName ?? 'system' })}`,
    );
  }
  if (owner?.accountId === caller.account.id) return;
  throw new PermissionDenied(`Account ${describeAccount(caller.account)} is not authorized to see job id=${job.jobid}`);
}


/**
 * Upstream parses DATE parameters of most commands with "yyyy-MM-dd" (SimpleDateFormat, which
 * reads the leading date and ignores the rest): the start of that day, here in UTC.
 */
function parseDay(value: string, api: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})/.exec(value.trim());
  const time = match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : Number.NaN;
  const valid = match && new Date(time).getUTCDate() === Number(match[3]) && new Date(time).getUTCMonth() === Number(match[2]) - 1;
  if (!valid) {
    throw new InvalidParameter(`Unable to parse date ${value} for command ${api}, please pass dates in the format mentioned in the api documentation`);
  }
  return time;
}

/** The job's creation time, for ordering and date filters. */
const createdAt = (job: Job) => cloudstackMillis(job.timestamp ?? job.created);

const queryAsyncJobResult = defineCommand({
  name: 'queryAsyncJobResult',
  description: 'Retrieves the current status of asynchronous job.',
  params: {
    jobid: param.uuid('the ID of the asynchronous job'),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const job = await getJob(params.jobid.toLowerCase());
    if (!job) throw noSuchEntity('queryasyncjobresult', 'jobid', params.jobid);
    checkJobAccess(caller, job);
    return { body: renderJob(job) };
  },
});

const listAsyncJobs = defineCommand({
  name: 'listAsyncJobs',
  description: 'Lists all pending asynchronous jobs for the account.',
  params: {
    ...listParams,
    ...scopeParams,
    startdate: param.date('The start date of the async job (use format "yyyy-MM-dd\'T\'HH:mm:ss\'+\'SSSS")').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    const since = params.startdate === undefined ? undefined : parseDay(params.startdate, 'listasyncjobs');
    const scope = await ownedScope(caller, params);
    const jobs = (await listJobsUnder(scope.tree, scope.accountId))
      .filter((job) => job.actor && inScope(scope, { accountId: job.actor.accountId, domainTree: job.actor.domainTree }))
      .filter((job) => matchesKeyword(params.keyword, job.cmd))
      .filter((job) => since === undefined || createdAt(job) >= since)
      // Upstream orders by the job's id, ascending: oldest first.
      .sort((a, b) => createdAt(a) - createdAt(b));
    return { body: listResponse('asyncjobs', jobs, params, settings, renderJob) };
  },
});

export const jobCommands = [queryAsyncJobResult, listAsyncJobs];
