// The inventory is one DynamoDB table. This definition is shared by the CDK stack and the local
// runtime's bootstrap, so both create exactly the same keys and indexes.
//
//   pk / sk        the item's own key, e.g. pk=JOB#<uuid> sk=JOB
//   gsi1pk/gsi1sk  "by kind" listings, e.g. gsi1pk=JOB#PENDING (sparse: only while a job runs)
export const TABLE_NAME_VARIABLE = 'MOLD_TABLE';

export const tableSchema = {
  partitionKey: 'pk',
  sortKey: 'sk',
  indexes: [{ name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' }],
} as const;
