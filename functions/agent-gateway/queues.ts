// Each agent's command queue, made at enrolment. CreateQueue is idempotent for the same attributes, so
// the local runtime also calls this at start to bring back the queues its in-memory SQS emulator lost.
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { sqs } from '../../shared/aws.ts';
import { listAgentRecords, setAgentQueue } from '../../shared/db/agents.ts';
import { AGENT_DLQ_VARIABLE, agentQueueName } from './config.ts';

export async function createAgentQueue(agentId: string): Promise<{ queueUrl: string; queueArn: string }> {
  const deadLetterArn = process.env[AGENT_DLQ_VARIABLE];
  const attributes: Record<string, string> = {
    // Long polls by default; the agent extends visibility (ChangeMessageVisibility) for long commands.
    ReceiveMessageWaitTimeSeconds: '20',
    VisibilityTimeout: '120',
  };
  // The local emulator has no dead-letter queue and no encryption to speak of; on AWS both are set.
  if (deadLetterArn) {
    attributes.SqsManagedSseEnabled = 'true';
    attributes.RedrivePolicy = JSON.stringify({ deadLetterTargetArn: deadLetterArn, maxReceiveCount: 5 });
  }
  const { QueueUrl } = await sqs().send(new CreateQueueCommand({ QueueName: agentQueueName(agentId), Attributes: attributes }));
  const { Attributes } = await sqs().send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  return { queueUrl: QueueUrl!, queueArn: Attributes!.QueueArn! };
}

/** Makes sure every enabled agent has its queue, and that its record names the queue as it is now. */
export async function restoreAgentQueues(): Promise<number> {
  let restored = 0;
  for (const agent of await listAgentRecords()) {
    if (agent.state !== 'Enabled') continue;
    const { queueUrl, queueArn } = await createAgentQueue(agent.id);
    if (queueUrl !== agent.queueUrl || queueArn !== agent.queueArn) await setAgentQueue(agent.id, queueUrl, queueArn);
    restored++;
  }
  return restored;
}
