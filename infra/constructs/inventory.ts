// The inventory: one DynamoDB table holding every entity, async job, event and setting.
import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table } from 'aws-cdk-lib/aws-dynamodb';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { tableSchema } from '../../shared/db/table.ts';
import { acknowledgeWildcard } from '../nag.ts';

const key = (name: string) => ({ name, type: AttributeType.STRING });

export class Inventory extends Construct {
  readonly table: Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = new Table(this, 'Table', {
      partitionKey: key(tableSchema.partitionKey),
      sortKey: key(tableSchema.sortKey),
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: tableSchema.timeToLiveAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // The table is the cloud's whole state: neither a stack update nor a stack deletion may drop it.
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of tableSchema.indexes) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: key(index.partitionKey),
        sortKey: key(index.sortKey),
      });
    }
  }

  grantReadWriteData(grantee: IGrantable): void {
    this.table.grantReadWriteData(grantee);
    acknowledgeWildcard(
      grantee,
      `${this.table.tableArn}/index/*`,
      'Queries go through the global secondary indexes of this one table; the wildcard covers only its indexes.',
    );
  }
}
