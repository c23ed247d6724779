// The control plane on AWS, as one stack.
import { type App, CfnOutput, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Construct } from 'constructs';
import { AgentMessaging } from './constructs/agent-messaging.ts';
import { Api } from './constructs/api.ts';
import { ControlPlaneFunctions } from './constructs/functions.ts';
import { Inventory } from './constructs/inventory.ts';
import { STATE_MACHINES_VARIABLE } from '../shared/orchestration.ts';
import { Orchestration } from './constructs/orchestration.ts';
import { Schedules } from './constructs/schedules.ts';
import { Secrets } from './constructs/secrets.ts';

export const STACK_NAME = 'MoldStack';

export class MoldStack extends Stack {
  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    const inventory = new Inventory(this, 'Inventory');
    const functions = new ControlPlaneFunctions(this, 'Functions', { inventory });
    const { api, sweeper, 'agent-gateway': agentGateway } = functions.byName;
    const secrets = new Secrets(this, 'Secrets');
    secrets.grantDataKey(api);
    secrets.grantAgentCa(agentGateway);
    // createConsoleEndpoint signs console tokens with the same CA the agents trust.
    secrets.grantAgentCa(api);
    const messaging = new AgentMessaging(this, 'AgentMessaging');
    messaging.grantGateway(agentGateway);
    const orchestration = new Orchestration(this, 'Orchestration', {
      functions: functions.byName,
      agentQueueArns: messaging.agentQueueArns,
    });
    orchestration.grantStartExecution(api);
    orchestration.grantDescribeExecution(api);
    orchestration.grantDescribeExecution(sweeper);
    // The sweeper starts the template downloads that had nowhere to go at registration, expunges, and HA's fences and restarts.
    orchestration.grantStartExecution(sweeper);
    orchestration.grantTaskResponse(agentGateway);
    api.addEnvironment(STATE_MACHINES_VARIABLE, orchestration.arnsJson());
    sweeper.addEnvironment(STATE_MACHINES_VARIABLE, orchestration.arnsJson());
    const endpoint = new Api(this, 'Api', { handler: api, agentGateway });
    new Schedules(this, 'Schedules', { sweeper });

    new CfnOutput(this, 'ApiUrl', { value: endpoint.url });
    new CfnOutput(this, 'TableName', { value: inventory.table.tableName });
    new CfnOutput(this, 'AgentGatewayUrl', { value: endpoint.baseUrl, description: 'mold-agent enrol --url <this>' });
    new CfnOutput(this, 'DataKeySecretArn', { value: secrets.dataKey.secretArn });
    new CfnOutput(this, 'AgentCaSecretArn', { value: secrets.agentCa.secretArn });
    new CfnOutput(this, 'AgentDeadLetterQueueArn', { value: messaging.deadLetterQueue.queueArn });
  }
}

/** The app as deployed: MoldStack checked by cdk-nag's AwsSolutions pack. Tests build it the same way. */
export function buildApp(app: App): MoldStack {
  const stack = new MoldStack(app, STACK_NAME);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
