// Ending async jobs: the last step of every state machine, on success and in its Catch.
import { z } from 'zod';
import { errorFromName } from '../../shared/cloudstack/errors.ts';
import { recordEvent } from '../../shared/db/events.ts';
import { completeJob, failJob, type Job } from '../../shared/db/jobs.ts';

export const stepFunctionsError = z.object({ Error: z.string(), Cause: z.string().optional() });
type StepFunctionsError = z.infer<typeof stepFunctionsError>;

export async function completeJobAction(jobId: string, result: Record<string, unknown>) {
  const job = await completeJob(jobId, result);
  await recordJobEvent(job, 'INFO');
  return { jobId, completed: Boolean(job) };
}

export async function failJobAction(jobId: string, error: StepFunctionsError) {
  const { errorcode, errortext } = jobError(error);
  const job = await failJob(jobId, errorcode, errortext);
  await recordJobEvent(job, 'ERROR', errortext);
  return { jobId, completed: Boolean(job), errortext };
}

async function recordJobEvent(job: Job | undefined, level: 'INFO' | 'ERROR', errortext?: string) {
  if (!job?.actor || !job.event) return;
  const description = errortext ? `Error while ${job.event.description}: ${errortext}` : `Completed: ${job.event.description}`;
  await recordEvent(job.actor, { ...job.event, description, level, state: 'Completed' });
}

/** What the job's caller reads: the CloudStack error a task threw, the agent's words, or what Step Functions saw. */
export function jobError({ Error: name, Cause: cause }: StepFunctionsError): { errorcode: number; errortext: string } {
  if (name === 'States.Timeout' || name === 'States.HeartbeatTimeout') {
    return { errorcode: 530, errortext: 'The agent did not answer in time; the host or its agent may be down.' };
  }
  const message = lambdaErrorMessage(cause);
  // An agent's AuthenticationFailed is a host's login refusing it, not the API caller's credentials:
  // those two classes count only when a task threw them.
  const callerAuthentication = name === 'AuthenticationFailed' || name === 'Unauthenticated';
  const known = callerAuthentication && message === undefined ? undefined : errorFromName(name, message ?? cause ?? name);
  if (known) return { errorcode: known.errorcode, errortext: known.message };
  if (message !== undefined) {
    // An unexpected failure inside a task: the details are in its log, not in the job.
    return { errorcode: 530, errortext: 'Internal error executing command, please contact your system administrator' };
  }
  return { errorcode: 530, errortext: cause || name };
}

/** The errorMessage of a Lambda function error's Cause, if the Cause is one. */
function lambdaErrorMessage(cause: string | undefined): string | undefined {
  if (!cause?.startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown; errorType?: unknown };
    return typeof parsed.errorMessage === 'string' && typeof parsed.errorType === 'string' ? parsed.errorMessage : undefined;
  } catch {
    return undefined;
  }
}
