// Async-job records. Every async API command writes one before its Step Functions execution starts,
// and every path of that execution (success, failure, timeout, a restart of the local runtime)
// completes it. Field names follow upstream's AsyncJobResponse.
import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { dynamo } from '../aws.ts';
import type { Actor } from './events.ts';
import { getItem, queryIndex, tableName } from './items.ts';

export const JobStatus = { Pending: 0, Succeeded: 1, Failed: 2 } as const;

/** The event an async job records when it ends (upstream records it with the job's outcome). */
export interface JobEvent {
  type: string;
  description: string;
  resourceId?: string;
  resourceType?: string;
}

export interface Job {
  jobid: string;
  /** The API command, e.g. deleteAccount. */
  cmd: string;
  jobstatus: number;
  jobresultcode: number;
  /** Upstream's progress of a pending job (Mold: a long job's steps done so far, e.g. rolling maintenance's stages). */
  jobprocstatus?: number;
  jobresulttype: 'object';
  jobresult?: Record<string, unknown>;
  jobinstancetype?: string;
  jobinstanceid?: string;
  created: string;
  /** When it was created, to the millisecond (ISO 8601): orders jobs of the same second. */
  timestamp?: string;
  completed?: string;
  executionArn?: string;
  actor?: Actor;
  event?: JobEvent;
}

const PENDING = 'JOB#PENDING';
const key = (jobid: string) => ({ pk: `JOB#${jobid}`, sk: 'JOB' });

/** CloudStack's timestamp format: 2026-11-22T07:52:42+0000. */
export function cloudstackDate(date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, '+0000');
}

/** A cloudstackDate (or ISO 8601) in milliseconds; NaN when it is not a date. */
export const cloudstackMillis = (date: unknown): number => (typeof date === 'string' ? Date.parse(date.replace(/\+0000$/, 'Z')) : Number.NaN);

export async function createJob(fields: Pick<Job, 'cmd'> & Partial<Job>): Promise<Job> {
  const now = new Date();
  const job: Job = {
    jobid: randomUUID(),
    jobstatus: JobStatus.Pending,
    jobresultcode: 0,
    jobresulttype: 'object',
    created: cloudstackDate(now),
    timestamp: now.toISOString(),
    ...fields,
  };
  const owner = job.actor ? { gsi2pk: 'JOBS', gsi2sk: `${job.actor.domainTree}${job.actor.accountId}/${job.created}#${job.jobid}` } : {};
  await dynamo().send(
    new PutCommand({ TableName: tableName(), Item: { ...key(job.jobid), gsi1pk: PENDING, gsi1sk: job.created, ...owner, ...job } }),
  );
  return job;
}

export const getJob = (jobid: string) => getItem<Job>(key(jobid).pk, 'JOB');

export async function setJobExecution(jobid: string, executionArn: string): Promise<void> {
  await dynamo().send(
    new UpdateCommand({
      TableName: tableName(),
      Key: key(jobid),
      UpdateExpression: 'SET executionArn = :arn',
      ExpressionAttributeValues: { ':arn': executionArn },
    }),
  );
}

/** A pending job's progress (jobprocstatus); a job that has ended keeps what it had. */
export async function setJobProgress(jobid: string, jobprocstatus: number): Promise<void> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: key(jobid),
        UpdateExpression: 'SET jobprocstatus = :progress',
        ConditionExpression: 'jobstatus = :pending',
        ExpressionAttributeValues: { ':progress': jobprocstatus, ':pending': JobStatus.Pending },
      }),
    );
  } catch (error) {
    if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
  }
}

export function completeJob(jobid: string, result: Record<string, unknown>): Promise<Job | undefined> {
  return finishJob(jobid, JobStatus.Succeeded, 0, result);
}

export function failJob(jobid: string, errorcode: number, errortext: string): Promise<Job | undefined> {
  return finishJob(jobid, JobStatus.Failed, errorcode, { errorcode, errortext });
}

/**
 * Moves a pending job to its final state. Only a pending job moves, so a late or repeated
 * completion cannot overwrite the first; the finished job is returned only to the call that did it.
 */
async function finishJob(jobid: string, status: number, resultcode: number, result: Record<string, unknown>) {
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: key(jobid),
        UpdateExpression:
          'SET jobstatus = :status, jobresultcode = :code, jobresult = :result, completed = :now REMOVE gsi1pk, gsi1sk',
        ConditionExpression: 'jobstatus = :pending',
        ExpressionAttributeValues: {
          ':status': status,
          ':code': resultcode,
          ':result': result,
          ':now': cloudstackDate(),
          ':pending': JobStatus.Pending,
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return Attributes as Job;
  } catch (error) {
    if ((error as Error).name === 'ConditionalCheckFailedException') return undefined;
    throw error;
  }
}

export function listPendingJobs(): Promise<Job[]> {
  return queryIndex<Job>({ index: 'gsi1', partition: PENDING });
}

/** Jobs of the subtree at `tree` (or of one account), newest first. */
export function listJobsUnder(tree: string, accountId?: string): Promise<Job[]> {
  return queryIndex<Job>({ index: 'gsi2', partition: 'JOBS', prefix: accountId ? `${tree}${accountId}/` : tree, descending: true });
}
