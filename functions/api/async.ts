// Async commands: the job record, its Scheduled event and the execution that will end it. The
// command answers with `jobid` (and the resource `id` where upstream does) at once.
import { recordEvent } from '../../shared/db/events.ts';
import type { JobEvent } from '../../shared/db/jobs.ts';
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
