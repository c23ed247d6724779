// The work of the state machines' lambda:invoke Task states. Each action is one short, idempotent
// step; retries, waiting and compensation stay in the ASL.
import middy from '@middy/core';
import { z } from 'zod';
import { completeJob, failJob } from '../../shared/db/jobs.ts';

const stepFunctionsError = z.object({ Error: z.string(), Cause: z.string().optional() });

const action = z.discriminatedUnion('action', [
  z.object({ action: z.literal('completeJob'), jobId: z.string(), result: z.record(z.string(), z.unknown()) }),
  z.object({ action: z.literal('failJob'), jobId: z.string(), error: stepFunctionsError }),
]);

export type TaskAction = z.infer<typeof action>;

async function run(event: unknown) {
  const request = action.parse(event);
  switch (request.action) {
    case 'completeJob':
      return { jobId: request.jobId, completed: await completeJob(request.jobId, request.result) };
    case 'failJob': {
      const errortext = errorText(request.error);
      return { jobId: request.jobId, completed: await failJob(request.jobId, 530, errortext), errortext };
    }
  }
}

/** What the job's caller reads in `errortext`: the agent's own words, or what Step Functions saw. */
export function errorText({ Error: error, Cause: cause }: z.infer<typeof stepFunctionsError>): string {
  if (error === 'States.Timeout' || error === 'States.HeartbeatTimeout') {
    return 'The agent did not answer in time; the host or its agent may be down.';
  }
  return cause ? cause : error;
}

export const handler = middy().handler(run);
