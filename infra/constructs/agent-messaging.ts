// Agent command queues are made per agent at enrolment (one queue per site, named AGENT_QUEUE_PREFIX +
// the agent id) by the agent gateway. What exists up front is the dead-letter queue they redrive to,
// and the role whose credentials, narrowed by a session policy to one queue, the gateway hands agents.
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { ArnPrincipal, PolicyStatement, Role } from 'aws-cdk-lib/aws-iam';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { AGENT_DLQ_VARIABLE, AGENT_QUEUE_ACTIONS, AGENT_QUEUE_PREFIX, AGENT_QUEUE_ROLE_VARIABLE } from '../../functions/agent-gateway/config.ts';
import { acknowledgeWildcard } from '../nag.ts';

export { AGENT_QUEUE_PREFIX };

export class AgentMessaging extends Construct {
  /** Redrive target for agent queues. Its generated name does not start with AGENT_QUEUE_PREFIX, so
   * grants on agent queues never reach it. */
  readonly deadLetterQueue: Queue;
  /** ARN pattern matching every agent queue, present and future. */
  readonly agentQueueArns: string;
  /** Assumed by the gateway for agents; created by grantGateway. */
  queueRole?: Role;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      // SSE-SQS, not a customer key: senders then need no KMS grant.
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is the dead-letter queue of the agent queues, which are created at enrolment, outside this stack.',
    });
    this.agentQueueArns = Stack.of(this).formatArn({ service: 'sqs', resource: `${AGENT_QUEUE_PREFIX}*` });
  }

  /**
   * Lets the gateway create agent queues and hand out credentials for one of them: it may assume the
   * queue role, whose own policy reaches agent queues only; each AssumeRole adds a session policy
   * naming the one queue, so the credentials reach no other.
   */
  grantGateway(gateway: LambdaFunction): Role {
    gateway.addToRolePolicy(
      new PolicyStatement({ actions: ['sqs:CreateQueue', 'sqs:GetQueueAttributes', 'sqs:SetQueueAttributes'], resources: [this.agentQueueArns] }),
    );
    // Commands left on the queue of an agent that lost its lease move to the holder of their host (functions/agent-gateway/leases.ts).
    gateway.addToRolePolicy(
      new PolicyStatement({ actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:SendMessage'], resources: [this.agentQueueArns] }),
    );
    acknowledgeWildcard(gateway, this.agentQueueArns, 'Agent queues are created at enrolment, one per agent; the name prefix confines the grant to them.');
    const role = new Role(this, 'AgentQueueRole', {
      description: "Assumed by the agent gateway to give an agent credentials for its own queue (narrowed by a session policy)",
      assumedBy: new ArnPrincipal(gateway.role!.roleArn),
      // The ceiling of a role assumed by a role (role chaining) anyway.
      maxSessionDuration: Duration.hours(1),
    });
    role.addToPolicy(new PolicyStatement({ actions: [...AGENT_QUEUE_ACTIONS], resources: [this.agentQueueArns] }));
    acknowledgeWildcard(role, this.agentQueueArns, 'Each session is narrowed to one agent queue by its session policy; the role itself reaches agent queues only.');
    gateway.addToRolePolicy(new PolicyStatement({ actions: ['sts:AssumeRole'], resources: [role.roleArn] }));
    gateway.addEnvironment(AGENT_QUEUE_ROLE_VARIABLE, role.roleArn);
    gateway.addEnvironment(AGENT_DLQ_VARIABLE, this.deadLetterQueue.queueArn);
    this.queueRole = role;
    return role;
  }
}
