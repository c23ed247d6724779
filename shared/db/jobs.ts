// Async-job records. Every async API command writes one before its Step Functions execution starts,
// and every path of that execution (success, failure, timeout, a restart of the local runtime)
// completes it. Field names follow upstream's AsyncJobResponse.
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { dynamo, env } from '../aws.ts';
import { TABLE_NAME_VARIABLE } from './table.ts';

export const JobStatus = { Pending: 0, Succeeded: 1, Failed: 2 } as const;

export interface Job {
  jobid: string;
  cmd: string;
  jobstatus: number;
  jobresultcode: number;
  jobresulttype: 'object';
  jobresult?: Record<string, unknown>;
  jobinstancetype?: string;
  jobinstanceid?: string;
  accountid?: string;
  userid?: string;
  created: string;
  completed?: string;
  executionArn?: string;
}

const PENDING = 'JOB#PENDING';
const table = () => env(TABLE_NAME_VARIABLE);
const key = (jobid: string) => ({ pk: `JOB#${jobid}`, sk: 'JOB' });

/** CloudStack's timestamp format: 2026-11-22T07:52:42+0000. */
export function cloudstackDate(date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, '+0000');
}

export async function createJob(fields: Pick<Job, 'cmd'> & Partial<Job>): Promise<Job> {
  const job: Job = {
    jobid: randomUUID(),
    jobstatus: JobStatus.Pending,
    jobresultcode: 0,
    jobresulttype: 'object',
    created: cloudstackDate(),
    ...fields,
  };
  await dynamo().send(
    new PutCommand({ TableName: table(), Item: { ...key(job.jobid), gsi1pk: PENDING, gsi1sk: job.created, ...job } }),
  );
  return job;
}

export async function getJob(jobid: string): Promise<Job | undefined> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: table(), Key: key(jobid) }));
  return Item ? stripKeys(Item) : undefined;
}

export async function setJobExecution(jobid: string, executionArn: string): Promise<void> {
  await dynamo().send(
    new UpdateCommand({
      TableName: table(),
      Key: key(jobid),
      UpdateExpression: 'SET executionArn = :arn',
      ExpressionAttributeValues: { ':arn': executionArn },
    }),
  );
}

export function completeJob(jobid: string, result: Record<string, unknown>): Promise<boolean> {
  return finishJob(jobid, JobStatus.Succeeded, 0, result);
}

export function failJob(jobid: string, errorcode: number, errortext: string): Promise<boolean> {
  return finishJob(jobid, JobStatus.Failed, errorcode, { errorcode, errortext });
}

/**
 * Moves a pending job to its final state. Only a pending job moves, so a late or repeated
 * completion cannot overwrite the first; the answer says whether this call was the one that did.
 */
async function finishJob(jobid: string, status: number, resultcode: number, result: Record<string, unknown>) {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: table(),
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
      }),
    );
    return true;
  } catch (error) {
    if ((error as Error).name === 'ConditionalCheckFailedException') return false;
    throw error;
  }
}

export async function listPendingJobs(): Promise<Job[]> {
  const jobs: Job[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new QueryCommand({
        TableName: table(),
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :pending',
        ExpressionAttributeValues: { ':pending': PENDING },
        ExclusiveStartKey,
      }),
    );
    jobs.push(...(page.Items ?? []).map(stripKeys));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return jobs;
}

function stripKeys(item: Record<string, unknown>): Job {
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, ...job } = item;
  return job as unknown as Job;
}
