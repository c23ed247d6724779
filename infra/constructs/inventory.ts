// The inventory: one DynamoDB table holding every entity, async job, event and setting. The stack
// creates it, or adopts an existing one named by the context value `moldTableName` (`cdk deploy -c
// moldTableName=<table>`): a table restored by point-in-time recovery, which DynamoDB always restores
// under a new name, or one an import filled (docs/operations.md, "Backup and restore").
import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, type ITable, Table } from 'aws-cdk-lib/aws-dynamodb';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { tableSchema } from '../../shared/db/table.ts';
import { acknowledgeWildcard } from '../nag.ts';

const key = (name: string) => ({ name, type: AttributeType.STRING });

/** The context value naming an existing table to adopt. */
export const ADOPT_TABLE_CONTEXT = 'moldTableName';

export class Inventory extends Construct {
  readonly table: ITable;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const adopted = this.node.tryGetContext(ADOPT_TABLE_CONTEXT) as string | undefined;
    if (adopted) {
      // Its keys, indexes, TTL and recovery settings are the operator's: a restore keeps the keys and
      // indexes but not TTL or point-in-time recovery, which the runbook turns back on.
      this.table = Table.fromTableAttributes(this, 'Table', { tableName: adopted, grantIndexPermissions: true });
      return;
    }
    const table = new Table(this, 'Table', {
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
      table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: key(index.partitionKey),
        sortKey: key(index.sortKey),
      });
    }
    this.table = table;
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
