// A Step Functions execution, read through the SDK as any client would, once it has ended.
import { DescribeExecutionCommand, type DescribeExecutionCommandOutput } from '@aws-sdk/client-sfn';
import { sfn } from '../../shared/aws.ts';
import { until, type WaitOptions } from './wait.ts';

export function finishedExecution(executionArn: string, options?: WaitOptions): Promise<DescribeExecutionCommandOutput> {
  return until(`execution ${executionArn} to end`, () => sfn().send(new DescribeExecutionCommand({ executionArn })), (execution) => execution.status !== 'RUNNING', options);
}
