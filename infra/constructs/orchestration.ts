// One Step Functions state machine per statemachines/*.asl.json file, deployed from the file as is:
// the local runtime runs the same files, so only DefinitionSubstitutions differ between the two.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ArnFormat, Stack, Validations } from 'aws-cdk-lib';
import { PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { arnSubstitution, lambdaFunctions, stateMachineSubstitution, type FunctionName } from '../functions.ts';
import { acknowledgeWildcard } from '../nag.ts';

const STATE_MACHINE_DIRECTORY = fileURLToPath(new URL('../../statemachines/', import.meta.url));
const ASL_SUFFIX = '.asl.json';

/** The ASL files, by state machine name (the file name without `.asl.json`). */
function aslFiles(): Map<string, string> {
  const files = readdirSync(STATE_MACHINE_DIRECTORY).filter((file) => file.endsWith(ASL_SUFFIX)).sort();
  return new Map(files.map((file) => [file.slice(0, -ASL_SUFFIX.length), `${STATE_MACHINE_DIRECTORY}${file}`]));
}

/**
 * The functions a definition refers to through `${<Name>FunctionArn}` and the state machines it starts
 * as children through `${<Name>StateMachineArn}`; anything else is a mistake.
 */
function references(name: string, definition: string, machines: string[]): { functions: FunctionName[]; children: string[] } {
  const functionsByVariable = new Map((Object.keys(lambdaFunctions) as FunctionName[]).map((fn) => [arnSubstitution(fn), fn]));
  const machinesByVariable = new Map(machines.map((machine) => [stateMachineSubstitution(machine), machine]));
  const variables = new Set([...definition.matchAll(/\$\{([^}]+)\}/g)].map((match) => match[1]));
  const functions: FunctionName[] = [];
  const children: string[] = [];
  for (const variable of variables) {
    const fn = functionsByVariable.get(variable);
    const child = machinesByVariable.get(variable);
    if (fn) functions.push(fn);
    else if (child) children.push(child);
    else throw new Error(`${name}${ASL_SUFFIX}: \${${variable}} names no function in infra/functions.ts and no state machine`);
  }
  return { functions, children };
}

export interface OrchestrationProps {
  readonly functions: Record<FunctionName, IFunction>;
  /** ARN (pattern) of the agent queues that Task states send commands to. */
  readonly agentQueueArns: string;
}

export class Orchestration extends Construct {
  readonly stateMachines = new Map<string, StateMachine>();

  constructor(scope: Construct, id: string, props: OrchestrationProps) {
    super(scope, id);
    const files = aslFiles();
    // A machine that starts another as a child is built after it, to substitute its ARN.
    const build = (name: string): StateMachine => this.stateMachines.get(name) ?? this.build(name, files.get(name)!, props, [...files.keys()], build);
    for (const name of files.keys()) build(name);
  }

  private build(name: string, file: string, props: OrchestrationProps, machines: string[], child: (name: string) => StateMachine): StateMachine {
    const definition = readFileSync(file, 'utf8');
    // Only the functions a file uses are substituted: a reference to the api function, which itself
    // refers to the state machines, would make a dependency cycle.
    const { functions, children } = references(name, definition, machines);
    const childMachines = children.map((childName) => [childName, child(childName)] as const);
    const stateMachine = new StateMachine(this, name, {
      stateMachineName: name,
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromString(definition),
      definitionSubstitutions: Object.fromEntries([
        ...functions.map((fn) => [arnSubstitution(fn), props.functions[fn].functionArn]),
        ...childMachines.map(([childName, machine]) => [stateMachineSubstitution(childName), machine.stateMachineArn]),
      ]),
      logs: {
        // The vendedlogs prefix keeps CloudWatch Logs' resource policy small however many machines log.
        destination: new LogGroup(this, `${name}Logs`, {
          logGroupName: `/aws/vendedlogs/states/mold/${name}`,
          retention: RetentionDays.ONE_MONTH,
        }),
        level: LogLevel.ALL,
        includeExecutionData: true,
      },
      tracingEnabled: true,
    });
    // The files invoke unqualified function ARNs, so no `:*` version wildcard is granted.
    if (functions.length > 0) {
      stateMachine.addToRolePolicy(
        new PolicyStatement({
          actions: ['lambda:InvokeFunction'],
          resources: functions.map((fn) => props.functions[fn].functionArn),
        }),
      );
    }
    stateMachine.addToRolePolicy(new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [props.agentQueueArns] }));
    for (const [childName, machine] of childMachines) this.grantChild(stateMachine, childName, machine);
    acknowledgeWildcard(
      stateMachine,
      props.agentQueueArns,
      'Agent queues are created per agent at enrolment; the name prefix confines the grant to them.',
    );
    Validations.of(stateMachine).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Added by CDK for X-Ray tracing and CloudWatch Logs delivery; neither xray:PutTraceSegments nor the logs:*LogDelivery actions support resource-level permissions.',
    });
    this.stateMachines.set(name, stateMachine);
    return stateMachine;
  }

  /**
   * What states:startExecution.sync:2 needs (the Step Functions developer guide's IAM policy for it):
   * start the child, describe and stop its executions, and the managed EventBridge rule through which
   * Step Functions learns that a child ended.
   */
  private grantChild(parent: StateMachine, childName: string, child: StateMachine) {
    child.grantStartExecution(parent);
    const stack = Stack.of(this);
    const executions = stack.formatArn({ service: 'states', resource: 'execution', resourceName: `${childName}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    parent.addToRolePolicy(new PolicyStatement({ actions: ['states:DescribeExecution', 'states:StopExecution'], resources: [executions] }));
    acknowledgeWildcard(parent, executions, 'Child execution ARNs are only known at run time; the grant covers executions of the one state machine this one starts.');
    const rule = stack.formatArn({ service: 'events', resource: 'rule', resourceName: 'StepFunctionsGetEventsForStepFunctionsExecutionRule' });
    parent.addToRolePolicy(new PolicyStatement({ actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'], resources: [rule] }));
  }

  grantStartExecution(grantee: IGrantable): void {
    for (const stateMachine of this.stateMachines.values()) stateMachine.grantStartExecution(grantee);
  }

  /** states:DescribeExecution on every execution of every state machine. */
  grantDescribeExecution(grantee: IGrantable): void {
    for (const name of this.stateMachines.keys()) {
      const executions = Stack.of(this).formatArn({
        service: 'states',
        resource: 'execution',
        resourceName: `${name}:*`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
      grantee.grantPrincipal.addToPrincipalPolicy(
        new PolicyStatement({ actions: ['states:DescribeExecution'], resources: [executions] }),
      );
      acknowledgeWildcard(grantee, executions, 'Execution ARNs are only known at run time; the grant covers executions of this one state machine.');
    }
  }

  /** states:SendTaskSuccess/Failure/Heartbeat for the tasks of every state machine (the agent gateway). */
  grantTaskResponse(grantee: IGrantable): void {
    for (const stateMachine of this.stateMachines.values()) stateMachine.grantTaskResponse(grantee);
  }

  /** The value of STATE_MACHINES_VARIABLE. */
  arnsJson(): string {
    const arns = Object.fromEntries([...this.stateMachines].map(([name, machine]) => [name, machine.stateMachineArn]));
    return Stack.of(this).toJsonString(arns);
  }
}
