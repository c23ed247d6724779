// A job whose execution is no longer running can never be completed by it: the execution was stopped,
// timed out as a whole, or (locally) died with the process. The sweeper closes such jobs with a reason.
import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import { sfn } from '../../shared/aws.ts';
import { cloudstackMillis, failJob, type Job, listPendingJobs } from '../../shared/db/jobs.ts';

/** How long a job may exist without an execution before it counts as orphaned. */
const START_GRACE_MS = 60_000;

export async function failOrphanedJobs(now = Date.now()): Promise<string[]> {
  const failed: string[] = [];
  for (const job of await listPendingJobs()) {
    const reason = await orphanReason(job, now);
    if (reason && (await failJob(job.jobid, 530, reason))) failed.push(job.jobid);
  }
  return failed;
}

async function orphanReason(job: Job, now: number): Promise<string | undefined> {
  if (!job.executionArn) {
    const age = now - cloudstackMillis(job.created);
    return age > START_GRACE_MS ? 'The job never started its execution.' : undefined;
  }
  try {
    const execution = await sfn().send(new DescribeExecutionCommand({ executionArn: job.executionArn }));
    if (execution.status === 'RUNNING' || execution.status === 'PENDING_REDRIVE') return undefined;
    const cause = execution.cause ?? execution.error ?? execution.status;
    return `The job's execution ended (${execution.status}) without completing it: ${cause}`;
  } catch (error) {
    if ((error as Error).name === 'ExecutionDoesNotExist') {
      return 'The job was interrupted: its execution no longer exists (the control plane restarted while it ran).';
    }
    throw error;
  }
}
