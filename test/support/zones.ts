// A minimal zone record for tests that need one (templates, offerings): written through the
// repository layer after useRuntimeEndpoints(). Switch to createZone from shared/db/infrastructure.ts
// once it exists.
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { dynamo } from '../../shared/aws.ts';
import { zoneKey, type AllocationState, type Zone } from '../../shared/db/infrastructure.ts';
import { tableName } from '../../shared/db/items.ts';
import { cloudstackDate } from '../../shared/db/jobs.ts';

export async function seedZone(name: string, options: { allocationstate?: AllocationState } = {}): Promise<Zone> {
  const zone: Zone = {
    id: randomUUID(),
    name,
    networktype: 'Advanced',
    allocationstate: options.allocationstate ?? 'Enabled',
    created: cloudstackDate(),
  };
  await dynamo().send(
    new PutCommand({ TableName: tableName(), Item: { ...zoneKey(zone.id), gsi1pk: 'ZONES', gsi1sk: name.toLowerCase(), ...zone } }),
  );
  return zone;
}
