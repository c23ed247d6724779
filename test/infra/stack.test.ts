import { readdirSync, readFileSync } from 'node:fs';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arnSubstitution, lambdaFunctions, stateMachineSubstitution, type FunctionName } from '../../infra/functions.ts';
import { TABLE_NAME_VARIABLE, tableSchema } from '../../shared/db/table.ts';
import { synthesize, type Synthesized } from './synth.ts';
import { patience } from '../support/wait.ts';

const functionNames = Object.keys(lambdaFunctions) as FunctionName[];
const stateMachineDirectory = new URL('../../statemachines/', import.meta.url);
const aslFiles = readdirSync(stateMachineDirectory).filter((file) => file.endsWith('.asl.json'));

let synthesized: Synthesized;
let template: Template;

beforeAll(() => {
  synthesized = synthesize();
  template = Template.fromJSON(synthesized.template);
}, patience(120_000));
afterAll(() => synthesized?.dispose());

function logicalIds(type: string, props: Record<string, unknown> = {}): string[] {
  return Object.keys(template.findResources(type, { Properties: Match.objectLike(props) }));
}

function onlyLogicalId(type: string, props: Record<string, unknown> = {}): string {
  const ids = logicalIds(type, props);
  expect(ids, `one ${type} matching ${JSON.stringify(props)}`).toHaveLength(1);
  return ids[0];
}

/** Functions are told apart by their description, which comes from infra/functions.ts. */
const functionId = (name: FunctionName) =>
  onlyLogicalId('AWS::Lambda::Function', { Description: lambdaFunctions[name].description });
const tableId = () => onlyLogicalId('AWS::DynamoDB::Table');
const arnOf = (logicalId: string) => ({ 'Fn::GetAtt': [logicalId, 'Arn'] });

/** Flattens a CloudFormation Fn::Join into a string, rendering each Ref as `<LogicalId>`. */
function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  const node = value as Record<string, any>;
  if (node.Ref) return `<${node.Ref}>`;
  if (node['Fn::Join']) return node['Fn::Join'][1].map(flatten).join(node['Fn::Join'][0]);
  throw new Error(`cannot flatten ${JSON.stringify(value)}`);
}

/** Every Allow statement of the policies attached to a function's role. */
function statementsOfFunction(name: FunctionName): { Action: string | string[]; Resource: unknown }[] {
  const role = template.toJSON().Resources[functionId(name)].Properties.Role['Fn::GetAtt'][0];
  const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: role }] } });
  return Object.values(policies).flatMap((policy: any) => policy.Properties.PolicyDocument.Statement);
}

const key = (attribute: string, type: 'HASH' | 'RANGE') => ({ AttributeName: attribute, KeyType: type });

describe('inventory table', () => {
  it('is on-demand, recoverable, protected and retained, with the shared key schema', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        DeletionProtectionEnabled: true,
        KeySchema: [key(tableSchema.partitionKey, 'HASH'), key(tableSchema.sortKey, 'RANGE')],
        GlobalSecondaryIndexes: tableSchema.indexes.map((index) => ({
          IndexName: index.name,
          KeySchema: [key(index.partitionKey, 'HASH'), key(index.sortKey, 'RANGE')],
          Projection: { ProjectionType: 'ALL' },
        })),
      }),
    });
  });

  it('declares every key attribute as a string', () => {
    const attributes = [tableSchema.partitionKey, tableSchema.sortKey, ...tableSchema.indexes.flatMap((i) => [i.partitionKey, i.sortKey])];
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      AttributeDefinitions: Match.arrayEquals(attributes.map((name) => ({ AttributeName: name, AttributeType: 'S' }))),
    });
  });

  it('adopts an existing table named by -c moldTableName: no table of its own, the functions read and write that one, the secrets are the same', () => {
    const adopted = synthesize({ bundle: false, context: { moldTableName: 'mold-restored' } });
    try {
      const other = Template.fromJSON(adopted.template);
      other.resourceCountIs('AWS::DynamoDB::Table', 0);
      const resources = Object.values(adopted.template.Resources) as any[];
      const functions = resources.filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Environment?.Variables?.[TABLE_NAME_VARIABLE] !== undefined);
      expect(functions).toHaveLength(functionNames.length);
      for (const fn of functions) expect(fn.Properties.Environment.Variables[TABLE_NAME_VARIABLE]).toBe('mold-restored');
      const grants = JSON.stringify(resources.filter((r) => r.Type === 'AWS::IAM::Policy'));
      expect(grants).toMatch(/:table\/mold-restored"/);
      expect(grants).toMatch(/:table\/mold-restored\/index\/\*"/);
      expect(adopted.template.Outputs.TableName.Value).toBe('mold-restored');
      // The data key and the CA are the stack's own, untouched: agents keep their certificates.
      const secrets = (template: Record<string, any>) => Object.entries(template.Resources).filter(([, r]: [string, any]) => r.Type === 'AWS::SecretsManager::Secret').map(([id]) => id);
      expect(secrets(adopted.template)).toEqual(secrets(synthesized.template));
      expect(adopted.violations).toEqual([]);
    } finally {
      adopted.dispose();
    }
  }, patience(120_000));
});

describe('functions', () => {
  it('are exactly the functions of infra/functions.ts, on Node.js 24 and arm64, told the table name', () => {
    template.resourceCountIs('AWS::Lambda::Function', functionNames.length);
    for (const name of functionNames) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Description: lambdaFunctions[name].description,
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Environment: { Variables: Match.objectLike({ [TABLE_NAME_VARIABLE]: { Ref: tableId() } }) },
      });
    }
  });

  it('may read and write the table', () => {
    for (const name of functionNames) {
      expect(statementsOfFunction(name), name).toContainEqual(
        expect.objectContaining({ Action: expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:Query']), Resource: expect.arrayContaining([arnOf(tableId())]) }),
      );
    }
  });

  it('gives the api a map of every state machine to its ARN, and leave to start them', () => {
    const api = template.toJSON().Resources[functionId('api')].Properties;
    const map = JSON.parse(flatten(api.Environment.Variables.MOLD_STATE_MACHINES));
    const expected = Object.fromEntries(
      aslFiles.map((file) => {
        const name = file.replace(/\.asl\.json$/, '');
        return [name, `<${onlyLogicalId('AWS::StepFunctions::StateMachine', { StateMachineName: name })}>`];
      }),
    );
    expect(map).toEqual(expected);
    const actions = statementsOfFunction('api').flatMap((statement) => statement.Action);
    expect(actions).toEqual(expect.arrayContaining(['states:StartExecution', 'states:DescribeExecution']));
    expect(statementsOfFunction('sweeper').flatMap((statement) => statement.Action)).toContain('states:DescribeExecution');
    expect(statementsOfFunction('tasks').flatMap((statement) => statement.Action)).not.toContain('states:StartExecution');
  });
});

describe('HTTP API', () => {
  it('routes ANY /client/api to the api function through a Lambda proxy integration', () => {
    template.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    const integration = onlyLogicalId('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      IntegrationUri: arnOf(functionId('api')),
      PayloadFormatVersion: '2.0',
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'ANY /client/api',
      Target: { 'Fn::Join': ['', ['integrations/', { Ref: integration }]] },
    });
  });

  it('routes POST /agent/v1/{proxy+} and GET /health to the agent gateway function', () => {
    const integration = onlyLogicalId('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      IntegrationUri: arnOf(functionId('agent-gateway')),
      PayloadFormatVersion: '2.0',
    });
    for (const routeKey of ['POST /agent/v1/{proxy+}', 'GET /health']) {
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        RouteKey: routeKey,
        Target: { 'Fn::Join': ['', ['integrations/', { Ref: integration }]] },
      });
    }
  });

  it('logs access on its auto-deployed default stage', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.anyValue() },
    });
  });
});

describe('agent messaging', () => {
  it('has an encrypted dead-letter queue that refuses requests without TLS', () => {
    const queue = onlyLogicalId('AWS::SQS::Queue');
    const encrypted = template.toJSON().Resources[queue].Properties;
    expect(encrypted.SqsManagedSseEnabled === true || encrypted.KmsMasterKeyId !== undefined).toBe(true);
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queue }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});

describe('agent gateway', () => {
  const agentQueues = 'arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:mold-agent-*';
  const resourcesOf = (statements: { Action: string | string[]; Resource: unknown }[], action: string) =>
    statements.filter((s) => [s.Action].flat().includes(action)).flatMap((s) => [s.Resource].flat());

  it('may create agent queues and move commands between them (a lapsed agent\'s to its hosts\' new holder), and nothing else of SQS', () => {
    const statements = statementsOfFunction('agent-gateway');
    const actions = ['sqs:CreateQueue', 'sqs:GetQueueAttributes', 'sqs:SetQueueAttributes', 'sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:SendMessage'];
    for (const action of actions) {
      expect(resourcesOf(statements, action).map(flatten), action).toEqual([agentQueues]);
    }
    const sqsActions = statements.flatMap((s) => [s.Action].flat()).filter((a) => a.startsWith('sqs:'));
    expect(new Set(sqsActions)).toEqual(new Set(actions));
  });

  it('may answer the tasks of the state machines', () => {
    const statements = statementsOfFunction('agent-gateway');
    const machines = Object.keys(template.findResources('AWS::StepFunctions::StateMachine')).map((id) => ({ Ref: id }));
    for (const action of ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat']) {
      expect(resourcesOf(statements, action), action).toEqual(expect.arrayContaining(machines));
    }
  });

  it('assumes only the agent queue role, which trusts only the gateway and reaches only agent queues', () => {
    const roleId = onlyLogicalId('AWS::IAM::Role', { Description: Match.stringLikeRegexp('agent gateway') });
    const role = template.toJSON().Resources[roleId].Properties;
    const gatewayRole = template.toJSON().Resources[functionId('agent-gateway')].Properties.Role['Fn::GetAtt'][0];
    expect(role.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { AWS: arnOf(gatewayRole) } },
    ]);
    expect(role.MaxSessionDuration).toBe(3600);
    const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } });
    const statements = Object.values(policies).flatMap((policy: any) => policy.Properties.PolicyDocument.Statement);
    expect(statements.map((s: any) => ({ ...s, Resource: flatten(s.Resource) }))).toEqual([
      {
        Effect: 'Allow',
        Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
        Resource: agentQueues,
      },
    ]);
    expect(resourcesOf(statementsOfFunction('agent-gateway'), 'sts:AssumeRole')).toEqual([arnOf(roleId)]);
    const env = template.toJSON().Resources[functionId('agent-gateway')].Properties.Environment.Variables;
    expect(env.MOLD_AGENT_QUEUE_ROLE_ARN).toEqual(arnOf(roleId));
    expect(env.MOLD_AGENT_DLQ_ARN).toEqual(arnOf(onlyLogicalId('AWS::SQS::Queue')));
  });
});

describe('schedules', () => {
  it('invokes the sweeper every minute', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [Match.objectLike({ Arn: arnOf(functionId('sweeper')) })],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: arnOf(functionId('sweeper')),
      Principal: 'events.amazonaws.com',
    });
  });
});

describe('state machines', () => {
  it('exist once per ASL file', () => {
    expect(aslFiles.length).toBeGreaterThan(0);
    template.resourceCountIs('AWS::StepFunctions::StateMachine', aslFiles.length);
  });

  it.each(aslFiles)('%s is deployed verbatim, its function variables substituted', (file) => {
    const source = readFileSync(new URL(file, stateMachineDirectory), 'utf8');
    const name = file.replace(/\.asl\.json$/, '');
    const machine = template.toJSON().Resources[onlyLogicalId('AWS::StepFunctions::StateMachine', { StateMachineName: name })].Properties;

    expect(machine.DefinitionString).toBe(source);
    expect(JSON.parse(machine.DefinitionString)).toEqual(JSON.parse(source));

    const used = new Set([...source.matchAll(/\$\{(\w+)\}/g)].map((match) => match[1]));
    const machineNames = aslFiles.map((f) => f.replace(/\.asl\.json$/, ''));
    const expected = Object.fromEntries([
      ...functionNames.filter((fn) => used.has(arnSubstitution(fn))).map((fn) => [arnSubstitution(fn), arnOf(functionId(fn))]),
      // A child state machine (states:startExecution.sync:2) by its ARN, which Ref gives.
      ...machineNames
        .filter((child) => used.has(stateMachineSubstitution(child)))
        .map((child) => [stateMachineSubstitution(child), { Ref: onlyLogicalId('AWS::StepFunctions::StateMachine', { StateMachineName: child }) }]),
    ]);
    expect(Object.keys(expected).sort()).toEqual([...used].sort());
    expect(machine.DefinitionSubstitutions ?? {}).toEqual(expected);

    expect(machine.LoggingConfiguration.Level).toBe('ALL');
    expect(machine.TracingConfiguration).toEqual({ Enabled: true });
  });

  it('may invoke exactly the functions they use and send to agent queues only', () => {
    for (const machine of Object.values(template.findResources('AWS::StepFunctions::StateMachine'))) {
      const role = machine.Properties.RoleArn['Fn::GetAtt'][0];
      const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: role }] } });
      const statements = Object.values(policies).flatMap((policy: any) => policy.Properties.PolicyDocument.Statement);
      const resourcesOf = (action: string) =>
        statements.filter((statement) => statement.Action === action).flatMap((statement) => [statement.Resource].flat());

      expect(resourcesOf('sqs:SendMessage').map(flatten)).toEqual([
        'arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:mold-agent-*',
      ]);
      const substituted = Object.entries(machine.Properties.DefinitionSubstitutions ?? {});
      expect(resourcesOf('lambda:InvokeFunction')).toEqual(substituted.filter(([name]) => name.endsWith('FunctionArn')).map(([, arn]) => arn));
      // Each child it starts: start it, describe and stop its executions, the managed rule that reports their end.
      const children = substituted.filter(([name]) => name.endsWith('StateMachineArn')).map(([, arn]) => arn);
      expect(resourcesOf('states:StartExecution')).toEqual(children);
      if (children.length > 0) {
        const actions = statements.flatMap((statement) => [statement.Action].flat());
        expect(actions).toEqual(expect.arrayContaining(['states:DescribeExecution', 'states:StopExecution', 'events:PutTargets', 'events:PutRule', 'events:DescribeRule']));
      }
    }
  });

  it('lets host-maintenance start vm-migrate as a child', () => {
    const machine = template.toJSON().Resources[onlyLogicalId('AWS::StepFunctions::StateMachine', { StateMachineName: 'host-maintenance' })].Properties;
    expect(machine.DefinitionSubstitutions[stateMachineSubstitution('vm-migrate')]).toEqual({ Ref: onlyLogicalId('AWS::StepFunctions::StateMachine', { StateMachineName: 'vm-migrate' }) });
  });

  it('lets rolling-maintenance start host-maintenance as a child (which starts vm-migrate in turn)', () => {
    const machine = template.toJSON().Resources[onlyLogicalId('AWS::StepFunctions::StateMachine', { StateMachineName: 'rolling-maintenance' })].Properties;
    expect(machine.DefinitionSubstitutions[stateMachineSubstitution('host-maintenance')]).toEqual({ Ref: onlyLogicalId('AWS::StepFunctions::StateMachine', { StateMachineName: 'host-maintenance' }) });
  });
});

describe('secrets at rest', () => {
  it('keeps the data key in Secrets Manager under a rotating customer-managed KMS key, retained', () => {
    const keyId = onlyLogicalId('AWS::KMS::Key', { EnableKeyRotation: true });
    template.hasResource('AWS::SecretsManager::Secret', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({ KmsKeyId: arnOf(keyId), GenerateSecretString: Match.objectLike({ PasswordLength: 64 }) }),
    });
  });

  it('gives only the api function the data key, and the CA only to the agent gateway and the api (console tokens), by ARN in their environment', () => {
    const secretId = onlyLogicalId('AWS::SecretsManager::Secret', { GenerateSecretString: Match.objectLike({ PasswordLength: 64 }) });
    const caId = onlyLogicalId('AWS::SecretsManager::Secret', { Description: Match.stringLikeRegexp('agent CA') });
    const env = (name: FunctionName) => template.toJSON().Resources[functionId(name)].Properties.Environment.Variables;
    const reads = (name: FunctionName) =>
      statementsOfFunction(name)
        .filter((s) => [s.Action].flat().includes('secretsmanager:GetSecretValue'))
        .flatMap((s) => [s.Resource].flat());
    expect(env('api').MOLD_DATA_KEY_SECRET_ARN).toEqual({ Ref: secretId });
    expect(reads('api')).toEqual(expect.arrayContaining([{ Ref: caId }, { Ref: secretId }]));
    expect(reads('api')).toHaveLength(2);
    expect(env('agent-gateway').MOLD_CA_SECRET_ARN).toEqual({ Ref: caId });
    expect(env('api').MOLD_CA_SECRET_ARN).toEqual({ Ref: caId });
    expect(reads('agent-gateway')).toEqual([{ Ref: caId }]);
    for (const name of functionNames) {
      if (name !== 'api') expect(env(name).MOLD_DATA_KEY_SECRET_ARN).toBeUndefined();
      if (name !== 'agent-gateway' && name !== 'api') expect(env(name).MOLD_CA_SECRET_ARN).toBeUndefined();
      if (name !== 'api' && name !== 'agent-gateway') expect(reads(name)).toEqual([]);
    }
  });

  it('keeps the agent CA in a retained secret under the same key, filled by bootstrap', () => {
    const keyId = onlyLogicalId('AWS::KMS::Key', { EnableKeyRotation: true });
    template.hasResource('AWS::SecretsManager::Secret', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({ Description: Match.stringLikeRegexp('agent CA'), KmsKeyId: arnOf(keyId) }),
    });
  });
});
