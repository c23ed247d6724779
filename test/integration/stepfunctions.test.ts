// The local runtime runs the real statemachines/ files: SQS task tokens, SendTask*, timeouts,
// heartbeats, Retry and Catch, driven only through the AWS SDK as on AWS.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sfn, sqs } from '../../shared/aws.ts';
import { createJob, getJob } from '../../shared/db/jobs.ts';
import { clearSetting, storeSetting } from '../../shared/settings.ts';
import { receiveCommand, seedAgent } from '../support/agent-seed.ts';
import { finishedExecution } from '../support/executions.ts';
import { REPO_ROOT, startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { sleep } from '../support/wait.ts';

let runtime: RunningRuntime;

beforeAll(async () => {
  runtime = await startRuntime({
    statemachinesDirs: [join(REPO_ROOT, 'statemachines'), join(REPO_ROOT, 'test/fixtures/statemachines')],
  });
  useRuntimeEndpoints(runtime);
});

afterAll(async () => {
  await runtime?.stop();
});

async function newQueue(): Promise<string> {
  const { QueueUrl } = await sqs().send(new CreateQueueCommand({ QueueName: `agent-${randomUUID()}` }));
  return QueueUrl!;
}

/** A pingHost through a seeded agent, with agent.command.timeout at `timeoutSeconds` while it is prepared. */
async function startAgentCommand(timeoutSeconds: number) {
  const { agent } = await seedAgent(randomUUID());
  const sent = Date.now();
  const job = await createJob({ cmd: 'test.agentCommand' });
  const host = { hostId: randomUUID(), address: '10.0.0.5', port: 22, username: 'root' };
  await storeSetting('agent.command.timeout', String(timeoutSeconds));
  const { executionArn } = await sfn().send(
    new StartExecutionCommand({
      stateMachineArn: runtime.stateMachines['agent-command'],
      name: job.jobid,
      input: JSON.stringify({ jobId: job.jobid, op: 'pingHost', args: { agentId: agent.id, host, name: 'h1' } }),
    }),
  );
  const message = await receiveCommand(agent.queueUrl);
  await clearSetting('agent.command.timeout');
  const command = { commandId: job.jobid, type: 'pingHost', payload: { host } };
  return { message, job, command, executionArn: executionArn!, sent, received: Date.now() };
}

describe('agent-command state machine', () => {
  it('sends the command with a task token and completes the job on SendTaskSuccess', async () => {
    const { message, job, command, executionArn, sent, received } = await startAgentCommand(30);
    expect(message).toMatchObject(command);
    // The agent's deadline is agent.command.timeout from when the command was sent.
    expect(Date.parse(message.deadline)).toBeGreaterThanOrEqual(sent + 30_000);
    expect(Date.parse(message.deadline)).toBeLessThanOrEqual(received + 30_000);
    expect(message.taskToken).toEqual(expect.any(String));

    await sfn().send(new SendTaskSuccessCommand({ taskToken: message.taskToken, output: JSON.stringify({ elapsedMs: 42 }) }));

    const execution = await finishedExecution(executionArn);
    expect(execution.status).toBe('SUCCEEDED');
    expect(JSON.parse(execution.output!)).toEqual({ jobId: job.jobid, completed: true });
    expect(await getJob(job.jobid)).toMatchObject({ jobstatus: 1, jobresultcode: 0, jobresult: { success: true, displaytext: 'Host h1 answered through its agent in 42 ms' } });
  });

  it('fails with States.Timeout when nobody answers within TimeoutSeconds, and refuses a late answer', async () => {
    const started = Date.now();
    const { message, job, executionArn } = await startAgentCommand(2);

    const execution = await finishedExecution(executionArn);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    expect(execution.status).toBe('FAILED');
    expect(execution.error).toBe('States.Timeout');
    expect(await getJob(job.jobid)).toMatchObject({
      jobstatus: 2,
      jobresultcode: 530,
      jobresult: { errorcode: 530, errortext: 'The agent did not answer in time; the host or its agent may be down.' },
    });
    await expect(
      sfn().send(new SendTaskSuccessCommand({ taskToken: message.taskToken, output: '{}' })),
    ).rejects.toMatchObject({ name: 'TaskTimedOut' });
  });

  it('routes SendTaskFailure to the Catch, which fails the job with the cause', async () => {
    const { message, job, executionArn } = await startAgentCommand(30);
    await sfn().send(
      new SendTaskFailureCommand({ taskToken: message.taskToken, error: 'HostUnreachable', cause: 'ssh: connection refused by 10.0.0.5' }),
    );

    const execution = await finishedExecution(executionArn);
    expect(execution).toMatchObject({ status: 'FAILED', error: 'HostUnreachable', cause: 'ssh: connection refused by 10.0.0.5' });
    expect(await getJob(job.jobid)).toMatchObject({ jobstatus: 2, jobresult: { errortext: 'ssh: connection refused by 10.0.0.5' } });
  });

  it('refuses unknown and malformed task tokens as AWS does', async () => {
    await expect(sfn().send(new SendTaskSuccessCommand({ taskToken: 'garbage', output: '{}' }))).rejects.toMatchObject({
      name: 'InvalidToken',
    });
    await expect(
      sfn().send(new SendTaskSuccessCommand({ taskToken: randomUUID(), output: '{}' })),
    ).rejects.toMatchObject({ name: 'TaskTimedOut' });
  });
});

describe('HeartbeatSeconds', () => {
  async function startProbe() {
    const queueUrl = await newQueue();
    const { executionArn } = await sfn().send(
      new StartExecutionCommand({ stateMachineArn: runtime.stateMachines['heartbeat-probe'], input: JSON.stringify({ queueUrl }) }),
    );
    return { queueUrl, executionArn: executionArn! };
  }

  it('keeps a task alive past HeartbeatSeconds while heartbeats arrive', async () => {
    const { queueUrl, executionArn } = await startProbe();
    const { taskToken } = await receiveCommand(queueUrl);
    // Beats every 0.5 s for one and a half times the fixture's HeartbeatSeconds (4): the margin is
    // for a beat that a busy machine delays, not for the beats themselves.
    for (let beat = 0; beat < 12; beat++) {
      await sleep(500);
      await sfn().send(new SendTaskHeartbeatCommand({ taskToken }));
    }
    await sfn().send(new SendTaskSuccessCommand({ taskToken, output: '"done"' }));
    const execution = await finishedExecution(executionArn);
    expect(execution.status).toBe('SUCCEEDED');
    expect(JSON.parse(execution.output!)).toMatchObject({ answer: 'done' });
  });

  it('times a silent task out with States.Timeout, which Retry retries and Catch then catches', async () => {
    const { queueUrl, executionArn } = await startProbe();
    const first = await receiveCommand(queueUrl);
    const retried = await receiveCommand(queueUrl);
    expect(retried.taskToken).not.toBe(first.taskToken);
    const execution = await finishedExecution(executionArn);
    expect(execution.status).toBe('SUCCEEDED');
    expect(JSON.parse(execution.output!)).toMatchObject({ outcome: 'caught', error: { Error: 'States.Timeout' } });
  });
});
