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
import { arnSubstitution, lambdaFunctions, type FunctionName } from '../functions.ts';
import { acknowledgeWildcard } from '../nag.ts';

const STATE_MACHINE_DIRECTORY = fileURLToPath(new URL('../../statemachines/', import.meta.url));
const ASL_SUFFIX = '.asl.json';

/** The ASL files, by state machine name (the file name without `.asl.json`). */
function aslFiles(): Map<string, string> {
  const files = readdirSync(STATE_MACHINE_DIRECTORY).filter((file) => file.endsWith(ASL_SUFFIX)).sort();
  return new Map(files.map((file) => [file.slice(0, -ASL_SUFFIX.length), `${STATE_MACHINE_DIRECTORY}${file}`]));
}

/** The functions a definition refers to through `${<Name>FunctionArn}`; anything else is a mistake. */
function referencedFunctions(name: string, definition: string): FunctionName[] {
  const byVariable = new Map((Object.keys(lambdaFunctions) as FunctionName[]).map((fn) => [arnSubstitution(fn), fn]));
  const variables = new Set([...definition.matchAll(/\$\{([^}]+)\}/g)].map((match) => match[1]));
  return [...variables].map((variable) => {
    const fn = byVariable.get(variable);
    if (!fn) throw new Error(`${name}${ASL_SUFFIX}: \${${variable}} names no function in infra/functions.ts`);
    return fn;
  });
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
    for (const [name, file] of aslFiles()) this.stateMachines.set(name, this.build(name, file, props));
  }

  private build(name: string, file: string, props: OrchestrationProps): StateMachine {
    const definition = readFileSync(file, 'utf8');
    // Only the functions a file uses are substituted: a reference to the api function, which itself
    // refers to the state machines, would make a dependency cycle.
    const functions = referencedFunctions(name, definition);
    const stateMachine = new StateMachine(this, name, {
      stateMachineName: name,
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromString(definition),
      definitionSubstitutions: Object.fromEntries(
        functions.map((fn) => [arnSubstitution(fn), props.functions[fn].functionArn]),
      ),
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
    return stateMachine;
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
