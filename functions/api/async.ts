// Async commands: the job record, its Scheduled event and the execution that will end it. The
// command answers with `jobid` (and the resource `id` where upstream does) at once, or, for a command
// upstream answers synchronously, with the job's result once it has ended (runToEnd).
import { setTimeout as sleep } from 'node:timers/promises';
import { errorFromCode, InternalError } from '../../shared/cloudstack/errors.ts';
import { recordEvent } from '../../shared/db/events.ts';
import { getJob, JobStatus, type JobEvent } from '../../shared/db/jobs.ts';
import { startJob } from '../../shared/orchestration.ts';
import { actorOf } from './actor.ts';
import type { Caller, CommandResult } from './command.ts';

export interface AsyncStart {
  cmd: string;
  stateMachine: string;
  input: Record<string, unknown>;
  instanceType?: string;
  instanceId?: string;
  event: JobEvent;
  /** Also answer with the resource id (upstream's BaseAsyncCreateCmd). */
  withId?: boolean;
}

export async function startAsync(caller: Caller, start: AsyncStart): Promise<CommandResult> {
  const actor = actorOf(caller);
  const job = await startJob(
    { cmd: start.cmd, actor, event: start.event, jobinstancetype: start.instanceType, jobinstanceid: start.instanceId },
    start.stateMachine,
    start.input,
  );
  await recordEvent(actor, { ...start.event, description: `Scheduled: ${start.event.description}`, state: 'Scheduled' });
  return { body: { jobid: job.jobid, ...(start.withId && start.instanceId ? { id: start.instanceId } : {}) } };
}

/** How long before the API's deadline a wait gives up: time to read the job once more, render and answer. */
const ANSWER_MARGIN_MS = 2_000;
const FIRST_LOOK_MS = 100;
const LONGEST_LOOK_MS = 500;

/**
 * For a command upstream answers synchronously whose work runs through a state machine (addHost: its
 * clients read the host from the answer itself). Starts the job as startAsync does, then reads the job
 * until it ends, within the API's time limit (`deadline`), and answers with its result, or throws its
 * error as the command's own. If the limit comes first, the job goes on and the answer (530) says
 * `stillRunning(jobid)`, so the caller can follow it with queryAsyncJobResult.
 */
export async function runToEnd(caller: Caller, start: AsyncStart, deadline: number, stillRunning: (jobid: string) => string): Promise<CommandResult> {
  const jobid = (await startAsync(caller, start)).body.jobid as string;
  // Polling, not a Step Functions wait: the caller holds the request open, and the job's end is a
  // write to one record.
  for (let look = FIRST_LOOK_MS; Date.now() + look < deadline - ANSWER_MARGIN_MS; look = Math.min(look * 1.5, LONGEST_LOOK_MS)) {
    await sleep(look);
    const job = await getJob(jobid);
    if (job?.jobstatus === JobStatus.Succeeded) return { body: job.jobresult ?? {} };
    if (job?.jobstatus === JobStatus.Failed) throw errorFromCode(job.jobresultcode, String(job.jobresult?.errortext ?? 'The job failed'));
  }
  throw new InternalError(stillRunning(jobid));
}
