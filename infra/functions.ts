// The Lambda functions of the control plane: one list, used by the CDK stack to build them and by the
// local runtime to call the same handler modules in-process.
export const lambdaFunctions = {
  api: { entry: 'functions/api/handler.ts', description: 'CloudStack-compatible /client/api' },
  tasks: { entry: 'functions/tasks/handler.ts', description: 'Task states of the state machines' },
  sweeper: { entry: 'functions/sweeper/handler.ts', description: 'Scheduled reconciliation of jobs and hosts' },
  'agent-gateway': { entry: 'functions/agent-gateway/handler.ts', description: 'Enrolment and signed requests of on-prem agents (/agent/v1/*)' },
} as const;

export type FunctionName = keyof typeof lambdaFunctions;

/**
 * The definition substitution that carries each function's ARN into the ASL files, e.g.
 * `${TasksFunctionArn}` for `tasks`.
 */
export function arnSubstitution(name: FunctionName): string {
  const pascal = name.replace(/(^|-)([a-z])/g, (_m, _dash, c: string) => c.toUpperCase());
  return `${pascal}FunctionArn`;
}

/**
 * The definition substitution that carries a state machine's ARN into the files that start it as a
 * child (states:startExecution.sync:2), e.g. `${VmMigrateStateMachineArn}` for `vm-migrate`.
 */
export function stateMachineSubstitution(name: string): string {
  const pascal = name.replace(/(^|-)([a-z])/g, (_m, _dash, c: string) => c.toUpperCase());
  return `${pascal}StateMachineArn`;
}
