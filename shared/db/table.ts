// The inventory is one DynamoDB table. This definition is shared by the CDK stack and the local
// runtime's bootstrap, so both create exactly the same keys and indexes.
//
//   pk / sk        the item's own key, e.g. pk=ACCOUNT#<uuid> sk=ACCOUNT
//   gsi1pk/gsi1sk  listings of one kind, sorted for begins_with: e.g. gsi1pk=ACCOUNTS and
//                  gsi1sk=<domain tree><name>, so a domain's subtree is one key-prefix query
//   gsi2pk/gsi2sk  a second listing where one is not enough (pending jobs, jobs by owner)
//   expiresAt      epoch seconds after which DynamoDB may delete the item (sessions, counters);
//                  code never relies on the deletion and checks expiry itself
export const TABLE_NAME_VARIABLE = 'MOLD_TABLE';

export const tableSchema = {
  partitionKey: 'pk',
  sortKey: 'sk',
  timeToLiveAttribute: 'expiresAt',
  indexes: [
    { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
    { name: 'gsi2', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
  ],
} as const;

export type IndexName = (typeof tableSchema.indexes)[number]['name'];
