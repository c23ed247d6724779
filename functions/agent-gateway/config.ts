// What the gateway learns from its environment, and the names the stack and the local runtime share
// with it. Kept free of CDK imports: the Lambda bundle includes this file.

/** Every agent's queue is named this plus the agent id; the IAM grants are on the prefix. */
export const AGENT_QUEUE_PREFIX = 'mold-agent-';

/** The role the gateway assumes (with a session policy) to hand an agent credentials for its queue. */
export const AGENT_QUEUE_ROLE_VARIABLE = 'MOLD_AGENT_QUEUE_ROLE_ARN';

/** The dead-letter queue agent queues redrive to (set on AWS; the local runtime has none). */
export const AGENT_DLQ_VARIABLE = 'MOLD_AGENT_DLQ_ARN';

/** How long an agent's queue credentials last: STS's minimum, so a revoked agent's last credentials soon lapse. */
export const CREDENTIALS_SECONDS = 900;

/** The actions the credentials allow, on the agent's own queue only. */
export const AGENT_QUEUE_ACTIONS = ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'] as const;

export const agentQueueName = (agentId: string) => `${AGENT_QUEUE_PREFIX}${agentId}`;

/** The session policy of an agent's credentials: only its own queue, whatever the role allows. */
export function sessionPolicy(queueArn: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: [...AGENT_QUEUE_ACTIONS], Resource: queueArn }],
  });
}
