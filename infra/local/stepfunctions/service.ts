// A Step Functions stand-in: the API subset Mold uses, with executions run by aws-local-stepfunctions.
// Task resources do what they do on AWS: lambda:invoke calls the local handler, sqs:sendMessage
// sends to the SQS emulator, and .waitForTaskToken waits for SendTaskSuccess/Failure, with
// TimeoutSeconds and HeartbeatSeconds enforced. Executions live in memory and die with the process.
import { randomUUID } from 'node:crypto';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { ExecutionAbortedError, ExecutionTimeoutError, StateMachine } from 'aws-local-stepfunctions';
import { LOCAL_ACCOUNT, LOCAL_REGION } from '../aws-local.ts';
import { invokeLocal, localFunctionName } from '../lambda.ts';
import { asEngineDefinition, taskStates, type AslDefinition, type AslState, type StateMachineFile } from './definitions.ts';

/** An error the AWS JSON protocol returns as `{"__type": type, "message": ...}`. */
export class ServiceError extends Error {
  readonly type: string;
  constructor(type: string, message: string) {
    super(message);
    this.type = type;
  }
}

/** An error a Task state raises, matched by Retry and Catch on its name, as on AWS. */
class TaskError extends Error {
  constructor(name: string, cause: string) {
    super(cause);
    this.name = name;
  }
}

type Status = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

interface Execution {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: Status;
  input: string;
  output?: string;
  error?: string;
  cause?: string;
  startDate: Date;
  stopDate?: Date;
  abort: () => void;
  /** Settles when the execution ends, however it ends. */
  ended: Promise<void>;
  end: () => void;
}

interface WaitingTask {
  executionArn: string;
  state: string;
  heartbeatMs?: number;
  heartbeatTimer?: NodeJS.Timeout;
  resolve: (output: unknown) => void;
  reject: (error: Error) => void;
}

// Task results are JSON by construction (SDK responses, handler results, SendTaskSuccess output).
type TaskHandler = (input: any, token?: string, heartbeatSeconds?: number) => Promise<any>;

// aws-local-stepfunctions gives a Task without TimeoutSeconds 60 s; AWS gives it (practically) no
// limit. This is the longest timer Node can arm (about 24.8 days).
const NO_TIMEOUT_SECONDS = 2_147_483;

export class LocalStepFunctions {
  private readonly machines = new Map<string, { name: string; runner: StateMachine; definition: AslDefinition }>();
  private readonly executions = new Map<string, Execution>();
  private readonly waiting = new Map<string, WaitingTask>();
  private readonly sqs: SQSClient;

  constructor(files: StateMachineFile[], sqs: SQSClient) {
    this.sqs = sqs;
    for (const { name, definition } of files) {
      const runnable = forLocalEngine(definition);
      // Validated when the file was loaded; the runner skips it to not do the work twice.
      const runner = new StateMachine(asEngineDefinition(runnable), { validationOptions: { noValidate: true } });
      this.machines.set(stateMachineArn(name), { name, runner, definition: runnable });
    }
  }

  startExecution(request: { stateMachineArn: string; name?: string; input?: string }) {
    const machine = this.machines.get(request.stateMachineArn);
    if (!machine) throw new ServiceError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${request.stateMachineArn}'`);
    const name = request.name ?? randomUUID();
    const executionArn = `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:execution:${machine.name}:${name}`;
    const inputText = request.input ?? '{}';
    const existing = this.executions.get(executionArn);
    if (existing) {
      // StartExecution is idempotent for the same name and input while the execution runs.
      if (existing.status === 'RUNNING' && existing.input === inputText) return summary(existing);
      throw new ServiceError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    }
    let input: Parameters<StateMachine['run']>[0];
    try {
      input = JSON.parse(inputText);
    } catch {
      throw new ServiceError('InvalidExecutionInput', 'Invalid State Machine Execution Input: not valid JSON');
    }

    const tokenSlot: { token?: string } = {};
    const context = {
      Execution: { Id: executionArn, Name: name },
      StateMachine: { Id: request.stateMachineArn, Name: machine.name },
      // Reading $$.Task.Token issues a token; the Task that reads it claims it synchronously
      // (aws-local-stepfunctions evaluates Parameters and calls the task with no await between).
      Task: {
        get Token() {
          tokenSlot.token ??= randomUUID();
          return tokenSlot.token;
        },
      },
    };
    const run = machine.runner.run(input, {
      context,
      overrides: { taskResourceLocalHandlers: this.taskHandlers(machine.definition, executionArn, tokenSlot) },
    });
    let end = () => {};
    const ended = new Promise<void>((resolve) => (end = resolve));
    const execution: Execution = {
      executionArn,
      stateMachineArn: request.stateMachineArn,
      name,
      status: 'RUNNING',
      input: inputText,
      startDate: new Date(),
      abort: run.abort,
      ended,
      end,
    };
    this.executions.set(executionArn, execution);
    void this.closeAbandonedTasks(executionArn, run.eventLogs);
    run.result.then(
      (output) => this.finish(execution, 'SUCCEEDED', { output: JSON.stringify(output) }),
      (error: Error) => this.finish(execution, ...failure(error)),
    );
    return summary(execution);
  }

  describeExecution({ executionArn }: { executionArn: string }) {
    const execution = this.execution(executionArn);
    return {
      ...summary(execution),
      stateMachineArn: execution.stateMachineArn,
      name: execution.name,
      status: execution.status,
      input: execution.input,
      inputDetails: { included: true },
      ...(execution.output !== undefined && { output: execution.output, outputDetails: { included: true } }),
      ...(execution.stopDate && { stopDate: epochSeconds(execution.stopDate) }),
      ...(execution.error !== undefined && { error: execution.error }),
      ...(execution.cause !== undefined && { cause: execution.cause }),
    };
  }

  stopExecution({ executionArn, error, cause }: { executionArn: string; error?: string; cause?: string }) {
    const execution = this.execution(executionArn);
    if (execution.status === 'RUNNING') {
      this.finish(execution, 'ABORTED', { error, cause });
      execution.abort();
    }
    return { stopDate: epochSeconds(execution.stopDate ?? new Date()) };
  }

  listExecutions(request: { stateMachineArn: string; statusFilter?: Status; maxResults?: number; nextToken?: string }) {
    if (!this.machines.has(request.stateMachineArn)) {
      throw new ServiceError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${request.stateMachineArn}'`);
    }
    const all = [...this.executions.values()]
      .filter((e) => e.stateMachineArn === request.stateMachineArn)
      .filter((e) => !request.statusFilter || e.status === request.statusFilter)
      .reverse();
    const start = request.nextToken ? Number(request.nextToken) : 0;
    const size = request.maxResults || 100;
    const page = all.slice(start, start + size);
    return {
      executions: page.map((e) => ({
        ...summary(e),
        stateMachineArn: e.stateMachineArn,
        name: e.name,
        status: e.status,
        ...(e.stopDate && { stopDate: epochSeconds(e.stopDate) }),
      })),
      ...(start + size < all.length && { nextToken: String(start + size) }),
    };
  }

  sendTaskSuccess({ taskToken, output }: { taskToken: string; output: string }) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(output);
    } catch {
      throw new ServiceError('InvalidOutput', 'Invalid Output: not valid JSON');
    }
    this.claim(taskToken).resolve(parsed);
    return {};
  }

  sendTaskFailure({ taskToken, error, cause }: { taskToken: string; error?: string; cause?: string }) {
    this.claim(taskToken).reject(new TaskError(error ?? '', cause ?? ''));
    return {};
  }

  sendTaskHeartbeat({ taskToken }: { taskToken: string }) {
    const task = this.task(taskToken);
    this.armHeartbeat(taskToken, task);
    return {};
  }

  /** Aborts every running execution, as when the process ends. */
  stop() {
    for (const execution of this.executions.values()) {
      if (execution.status === 'RUNNING') {
        this.finish(execution, 'ABORTED', { cause: 'the local runtime stopped' });
        execution.abort();
      }
    }
  }

  private taskHandlers(definition: AslDefinition, executionArn: string, tokenSlot: { token?: string }) {
    const handlers: Record<string, TaskHandler> = {};
    for (const [stateName, state] of taskStates(definition)) {
      const handler: TaskHandler = this.taskHandler(stateName, state, executionArn);
      handlers[stateName] = (input) => {
        const token = tokenSlot.token;
        tokenSlot.token = undefined;
        const [taskInput, heartbeatSeconds] = withoutHiddenFields(input);
        return handler(taskInput, token, heartbeatSeconds);
      };
    }
    return handlers;
  }

  private taskHandler(stateName: string, state: AslState, executionArn: string) {
    const resource = state.Resource ?? '';
    if (resource === 'arn:aws:states:::lambda:invoke') {
      return async (input: { FunctionName: string; Payload?: unknown }) => ({
        ExecutedVersion: '$LATEST',
        Payload: await invokeLambda(input.FunctionName, input.Payload ?? {}),
        StatusCode: 200,
      });
    }
    if (resource.startsWith('arn:aws:lambda:')) {
      return async (input: unknown) => invokeLambda(resource, input);
    }
    const sendMessage = async (input: { QueueUrl: string; MessageBody: unknown }) => {
      const body = typeof input.MessageBody === 'string' ? input.MessageBody : JSON.stringify(input.MessageBody);
      const sent = await this.sqs.send(new SendMessageCommand({ QueueUrl: input.QueueUrl, MessageBody: body }));
      return { MessageId: sent.MessageId, MD5OfMessageBody: sent.MD5OfMessageBody };
    };
    if (resource === 'arn:aws:states:::sqs:sendMessage') return sendMessage;
    if (resource === 'arn:aws:states:::states:startExecution.sync:2') {
      return (input: { StateMachineArn: string; Name?: string; Input?: unknown }) => this.runChild(input);
    }
    return async (input: { QueueUrl: string; MessageBody: unknown }, token?: string, heartbeatPath?: number) => {
      const heartbeatSeconds = (state.HeartbeatSeconds as number | undefined) ?? heartbeatPath;
      if (!token) throw new TaskError('States.Runtime', `state ${stateName} waits for a task token but does not pass $$.Task.Token`);
      const result = new Promise((resolve, reject) => {
        const task: WaitingTask = { executionArn, state: stateName, resolve, reject };
        if (heartbeatSeconds) task.heartbeatMs = heartbeatSeconds * 1000;
        this.waiting.set(token, task);
        this.armHeartbeat(token, task);
      });
      try {
        await sendMessage(input);
      } catch (error) {
        this.forget(token);
        throw error;
      }
      return result;
    };
  }

  /**
   * states:startExecution.sync:2: starts the child and waits for its end. As on AWS, the Task's
   * result is the child's DescribeExecution with Input and Output as JSON; a child that did not
   * succeed fails the Task with States.TaskFailed and that description as the Cause.
   */
  private async runChild(input: { StateMachineArn: string; Name?: string; Input?: unknown }) {
    const inputText = typeof input.Input === 'string' ? input.Input : JSON.stringify(input.Input ?? {});
    const { executionArn } = this.startExecution({ stateMachineArn: input.StateMachineArn, name: input.Name, input: inputText });
    const execution = this.execution(executionArn);
    await execution.ended;
    const described = {
      ExecutionArn: execution.executionArn,
      StateMachineArn: execution.stateMachineArn,
      Name: execution.name,
      Status: execution.status,
      StartDate: epochSeconds(execution.startDate),
      ...(execution.stopDate && { StopDate: epochSeconds(execution.stopDate) }),
      Input: JSON.parse(execution.input),
      ...(execution.output !== undefined && { Output: JSON.parse(execution.output) }),
      ...(execution.error !== undefined && { Error: execution.error }),
      ...(execution.cause !== undefined && { Cause: execution.cause }),
    };
    if (execution.status !== 'SUCCEEDED') throw new TaskError('States.TaskFailed', JSON.stringify(described));
    return described;
  }

  private armHeartbeat(token: string, task: WaitingTask) {
    if (!task.heartbeatMs) return;
    clearTimeout(task.heartbeatTimer);
    task.heartbeatTimer = setTimeout(() => {
      this.forget(token);
      // AWS raises States.HeartbeatTimeout, which States.Timeout also matches; the local engine
      // matches error names exactly, so the broader name is the one Retry and Catch see.
      task.reject(new TaskError('States.Timeout', `no heartbeat for ${task.heartbeatMs! / 1000} seconds`));
    }, task.heartbeatMs);
  }

  /** A task that timed out, or whose execution moved on, no longer accepts answers: TaskTimedOut. */
  private async closeAbandonedTasks(executionArn: string, events: AsyncGenerator<any>) {
    for await (const event of events) {
      if (event.type !== 'StateExited' && event.type !== 'StateFailed') continue;
      for (const [token, task] of this.waiting) {
        if (task.executionArn === executionArn && task.state === event.state?.name) this.forget(token);
      }
    }
  }

  private claim(token: string): WaitingTask {
    const task = this.task(token);
    this.forget(token);
    return task;
  }

  private task(token: string): WaitingTask {
    const task = this.waiting.get(token);
    if (task) return task;
    if (!/^[0-9a-f-]{36}$/.test(token)) throw new ServiceError('InvalidToken', 'Invalid Token');
    throw new ServiceError('TaskTimedOut', 'Task Timed Out: the task is no longer waiting for an answer');
  }

  private forget(token: string) {
    const task = this.waiting.get(token);
    if (task) clearTimeout(task.heartbeatTimer);
    this.waiting.delete(token);
  }

  private execution(executionArn: string): Execution {
    const execution = this.executions.get(executionArn);
    if (!execution) throw new ServiceError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
    return execution;
  }

  private finish(execution: Execution, status: Status, details: { output?: string; error?: string; cause?: string }) {
    if (execution.status !== 'RUNNING') return;
    Object.assign(execution, { status, stopDate: new Date() }, details);
    execution.end();
    for (const [token, task] of this.waiting) {
      if (task.executionArn === execution.executionArn) this.forget(token);
    }
  }
}

export function stateMachineArn(name: string): string {
  return `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:${name}`;
}

async function invokeLambda(functionNameOrArn: string, event: unknown): Promise<unknown> {
  const name = localFunctionName(functionNameOrArn);
  if (!name) throw new TaskError('Lambda.ResourceNotFoundException', `Function not found: ${functionNameOrArn}`);
  try {
    return await invokeLocal(name, event);
  } catch (error) {
    // As the lambda:invoke integration reports a function error: Error is the error type and
    // Cause the function's error object.
    const { name: errorType, message: errorMessage } = error as Error;
    throw new TaskError(errorType, JSON.stringify({ errorMessage, errorType }));
  }
}

function failure(error: Error): [Status, { error?: string; cause?: string }] {
  if (error instanceof ExecutionTimeoutError) return ['TIMED_OUT', { error: 'States.Timeout' }];
  if (error instanceof ExecutionAbortedError) return ['ABORTED', {}];
  const cause = (error as Error & { cause?: Error }).cause ?? error;
  return ['FAILED', { error: cause.name, cause: cause.message }];
}

function summary(execution: Execution) {
  return { executionArn: execution.executionArn, startDate: epochSeconds(execution.startDate) };
}

function epochSeconds(date: Date): number {
  return date.getTime() / 1000;
}

/**
 * Adapts a definition to the engine without changing what it means on AWS:
 * - a Task without a timeout gets AWS's effective "none" instead of the engine's 60 s;
 * - TimeoutSecondsPath and HeartbeatSecondsPath are read from the state input, as on AWS (the engine
 *   reads the timeout from the Parameters output, and has no heartbeats): both are carried through
 *   Parameters in hidden fields that the task handler takes off again before doing the work.
 */
function forLocalEngine(definition: AslDefinition): AslDefinition {
  const copy: AslDefinition = structuredClone(definition);
  for (const [, state] of taskStates(copy)) {
    const parameters = state.Parameters as Record<string, unknown> | undefined;
    if (typeof state.TimeoutSecondsPath === 'string' && parameters) {
      parameters[`${HIDDEN.timeout}.$`] = state.TimeoutSecondsPath;
      state.TimeoutSecondsPath = `$.${HIDDEN.timeout}`;
    }
    if (typeof state.HeartbeatSecondsPath === 'string' && parameters) {
      parameters[`${HIDDEN.heartbeat}.$`] = state.HeartbeatSecondsPath;
      delete state.HeartbeatSecondsPath;
    }
    if (!('TimeoutSeconds' in state) && !('TimeoutSecondsPath' in state)) state.TimeoutSeconds = NO_TIMEOUT_SECONDS;
  }
  return copy;
}

const HIDDEN = { timeout: '__moldTimeoutSeconds', heartbeat: '__moldHeartbeatSeconds' } as const;

/**
 * A Task's effective input without the hidden fields, and the heartbeat they carried. The input
 * itself stays as it is: the engine reads the timeout from it after the handler is called.
 */
function withoutHiddenFields(input: unknown): [unknown, number | undefined] {
  if (!input || typeof input !== 'object' || Array.isArray(input)) return [input, undefined];
  const { [HIDDEN.timeout]: _timeout, [HIDDEN.heartbeat]: heartbeat, ...rest } = input as Record<string, unknown>;
  return [rest, heartbeat as number | undefined];
}
