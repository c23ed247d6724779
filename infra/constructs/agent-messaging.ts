// Agent command queues are made per agent at enrolment (one queue per site, named AGENT_QUEUE_PREFIX +
// the agent id). What exists up front is the dead-letter queue they redrive to.
import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export const AGENT_QUEUE_PREFIX = 'mold-agent-';

export class AgentMessaging extends Construct {
  /** Redrive target for agent queues. Its generated name does not start with AGENT_QUEUE_PREFIX, so
   * grants on agent queues never reach it. */
  readonly deadLetterQueue: Queue;
  /** ARN pattern matching every agent queue, present and future. */
  readonly agentQueueArns: string;

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
}
