// Starting long operations: an async job record first, then the Step Functions execution that
// completes it. The execution is named after the job, so a retried start cannot run twice.
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { env, sfn } from './aws.ts';
import { createJob, failJob, setJobExecution, type Job } from './db/jobs.ts';

/** JSON map of state machine name (its file name without .asl.json) to ARN. */
export const STATE_MACHINES_VARIABLE = 'MOLD_STATE_MACHINES';

export function stateMachineArn(name: string): string {
  const arn = (JSON.parse(env(STATE_MACHINES_VARIABLE)) as Record<string, string>)[name];
  if (!arn) throw new Error(`no state machine named ${name}`);
  return arn;
}

/**
 * Creates the job and starts `stateMachine` with `{jobId, ...input}`. If the start fails, the job
 * fails with the reason rather than staying pending.
 */
export async function startJob(
  job: Pick<Job, 'cmd'> & Partial<Job>,
  stateMachine: string,
  input: Record<string, unknown>,
): Promise<Job> {
  const created = await createJob(job);
  try {
    const { executionArn } = await sfn().send(
      new StartExecutionCommand({
        stateMachineArn: stateMachineArn(stateMachine),
        name: created.jobid,
        input: JSON.stringify({ jobId: created.jobid, ...input }),
      }),
    );
    await setJobExecution(created.jobid, executionArn!);
    return { ...created, executionArn };
  } catch (error) {
    await failJob(created.jobid, 530, `The job could not be started: ${(error as Error).message}`);
    throw error;
  }
}
