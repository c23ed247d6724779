// Timers of the control plane: the sweeper's reconciliation pass, once a minute.
import { Duration } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

export interface SchedulesProps {
  readonly sweeper: IFunction;
}

export class Schedules extends Construct {
  readonly sweep: Rule;

  constructor(scope: Construct, id: string, props: SchedulesProps) {
    super(scope, id);
    this.sweep = new Rule(this, 'Sweep', {
      schedule: Schedule.rate(Duration.minutes(1)),
      // No retries: the next run a minute later does the same work, and stale retries would pile up.
      targets: [new LambdaFunction(props.sweeper, { retryAttempts: 0, maxEventAge: Duration.minutes(1) })],
    });
  }
}
