// Loads the ASL files of statemachines/ as CDK deploys them: every `${Name}` replaced from the
// definition substitutions. A file that cannot run here is refused at start-up, naming the file.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';

export type AslState = Record<string, unknown> & { Type: string; Resource?: string };
export interface AslDefinition {
  StartAt: string;
  States: Record<string, AslState>;
  [field: string]: unknown;
}

export interface StateMachineFile {
  name: string;
  file: string;
  definition: AslDefinition;
}

export class InvalidStateMachine extends Error {}

const SUPPORTED_RESOURCES = [
  /^arn:aws:states:::lambda:invoke$/,
  /^arn:aws:lambda:[^:]+:\d+:function:[^:]+(:[^:]+)?$/,
  /^arn:aws:states:::sqs:sendMessage(\.waitForTaskToken)?$/,
  /^arn:aws:states:::states:startExecution\.sync:2$/,
];

export function loadStateMachines(dir: string, substitutions: Record<string, string>): StateMachineFile[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.asl.json'))
    .sort()
    .map((file) => loadStateMachine(join(dir, file), substitutions));
}

export function loadStateMachine(file: string, substitutions: Record<string, string>): StateMachineFile {
  const fail = (reason: string): never => {
    throw new InvalidStateMachine(`${file}: ${reason}`);
  };
  const text = readFileSync(file, 'utf8').replace(/\$\{(\w+)\}/g, (_match, variable: string) =>
    variable in substitutions ? substitutions[variable] : fail(`unknown substitution \${${variable}}`),
  );
  let definition: AslDefinition;
  try {
    definition = JSON.parse(text);
  } catch (error) {
    return fail(`not valid JSON: ${(error as Error).message}`);
  }
  try {
    new StateMachine(asEngineDefinition(definition));
  } catch (error) {
    fail((error as Error).message.replace(/\s+/g, ' ').trim());
  }
  for (const [stateName, state] of taskStates(definition)) {
    if (!SUPPORTED_RESOURCES.some((pattern) => pattern.test(state.Resource ?? ''))) {
      fail(`state ${stateName}: resource ${state.Resource} has no local stand-in`);
    }
    if ('HeartbeatSecondsPath' in state && !state.Parameters) {
      fail(`state ${stateName}: HeartbeatSecondsPath needs Parameters to be run locally`);
    }
  }
  return { name: basename(file, '.asl.json'), file, definition };
}

/** Every Task state, including those inside Parallel branches and Map iterators. */
export function* taskStates(definition: AslDefinition): Generator<[string, AslState]> {
  for (const [name, state] of Object.entries(definition.States)) {
    if (state.Type === 'Task') yield [name, state];
    const nested = [
      ...((state.Branches as AslDefinition[] | undefined) ?? []),
      ...[state.Iterator, state.ItemProcessor].filter(Boolean),
    ] as AslDefinition[];
    for (const machine of nested) yield* taskStates(machine);
  }
}

/** Our loose view of ASL handed to the engine's strict one; the engine validates it itself. */
export function asEngineDefinition(definition: AslDefinition): StateMachineDefinition {
  return definition as unknown as StateMachineDefinition;
}
