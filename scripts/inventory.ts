// `npm run export -- <file>` and `npm run import -- <file>`: the whole inventory to one file and back
// (format: shared/inventory-archive.ts), so that a site can keep a copy, restore it, or move between the
// local runtime and AWS. Where:
//   --aws                       the deployed stack's table, MOLD_TABLE, with the usual AWS credentials
//   MOLD_DYNAMODB_ENDPOINT      a DynamoDB (Local) already running, table MOLD_TABLE (default mold)
//   otherwise                   the local runtime's data directory, MOLD_DATA_DIR (default .mold): its
//                               DynamoDB Local if the runtime is running (export only), else one started
//                               here on its data
// An import goes only into an empty table, and only once the whole file has been read and checked.
import { existsSync, readFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BatchWriteItemCommand, DynamoDBClient, DescribeTableCommand, ScanCommand, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../infra/local/aws-local.ts';
import { ensureTable, startDynamoDbLocal } from '../infra/local/dynamodb.ts';
import { freePort } from '../infra/local/ports.ts';
import { ArchiveRefused, readArchive, writeArchive, type Item } from '../shared/inventory-archive.ts';

const REPO_ROOT = resolve(import.meta.dirname, '..');
const USAGE = 'usage: npm run export -- <file> [--aws] | npm run import -- <file> [--aws]';

class Refused extends Error {}

interface Target {
  client: DynamoDBClient;
  table: string;
  where: string;
  close(): Promise<void>;
}

const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function openTarget(mode: 'export' | 'import', aws: boolean): Promise<Target> {
  const table = process.env.MOLD_TABLE || 'mold';
  if (aws) {
    if (!process.env.MOLD_TABLE) throw new Refused('--aws needs MOLD_TABLE: the stack output InventoryTableName');
    const client = new DynamoDBClient({});
    return { client, table, where: `table ${table} on AWS`, close: async () => client.destroy() };
  }
  const local = (endpoint: string): DynamoDBClientConfig => ({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  const endpoint = process.env.MOLD_DYNAMODB_ENDPOINT;
  if (endpoint) {
    if (mode === 'import') await ensureTable(endpoint, table);
    const client = new DynamoDBClient(local(endpoint));
    return { client, table, where: `table ${table} at ${endpoint}`, close: async () => client.destroy() };
  }
  const dataDir = resolve(process.env.MOLD_DATA_DIR ?? join(REPO_ROOT, '.mold'));
  const runtimeFile = join(dataDir, 'runtime.json');
  const running = existsSync(runtimeFile) ? (JSON.parse(readFileSync(runtimeFile, 'utf8')) as { pid: number; endpoints: { dynamodb: string } }) : undefined;
  if (running && isRunning(running.pid)) {
    if (mode === 'import') throw new Refused(`the local runtime is running on ${dataDir} (pid ${running.pid}): an import fills a control plane that is not running yet; stop it, or choose another MOLD_DATA_DIR`);
    const client = new DynamoDBClient(local(running.endpoints.dynamodb));
    return { client, table, where: `the running local runtime's table ${table} (${dataDir})`, close: async () => client.destroy() };
  }
  const dynamodb = startDynamoDbLocal(join(dataDir, 'dynamodb'), await freePort());
  await dynamodb.ready;
  if (mode === 'import') await ensureTable(dynamodb.endpoint, table);
  const client = new DynamoDBClient(local(dynamodb.endpoint));
  return {
    client,
    table,
    where: `the local runtime's table ${table} (${dataDir})`,
    close: async () => {
      client.destroy();
      await dynamodb.stop();
    },
  };
}

/** The table's items a page at a time, less those whose time to live has passed (sessions, nonces). */
async function* scan(target: Target): AsyncIterable<Item[]> {
  const now = Math.floor(Date.now() / 1000);
  let start: Item | undefined;
  do {
    const page = await target.client.send(new ScanCommand({ TableName: target.table, ExclusiveStartKey: start, ConsistentRead: true }));
    yield (page.Items ?? []).filter((item) => !(item.expiresAt?.N !== undefined && Number(item.expiresAt.N) <= now));
    start = page.LastEvaluatedKey;
  } while (start);
}

async function exportTo(file: string, target: Target) {
  await target.client.send(new DescribeTableCommand({ TableName: target.table })).catch((error: Error) => {
    throw error.name === 'ResourceNotFoundException' ? new Refused(`nothing to export: ${target.where} does not exist`) : error;
  });
  const out = await open(file, 'wx', 0o600).catch((error: NodeJS.ErrnoException) => {
    throw new Refused(error.code === 'EEXIST' ? `${file} exists: an export never overwrites a file` : `cannot write ${file}: ${error.message}`);
  });
  try {
    const count = await writeArchive({ exportedAt: new Date().toISOString(), table: target.table }, scan(target), (line) => out.write(line).then(() => undefined));
    await out.sync();
    process.stdout.write(`exported ${count} items from ${target.where} to ${file}\n`);
  } finally {
    await out.close();
  }
}

async function importInto({ header, items }: ReturnType<typeof readArchive>, target: Target) {
  const present = await target.client.send(new ScanCommand({ TableName: target.table, Limit: 1, Select: 'COUNT' }));
  if ((present.Count ?? 0) > 0 || present.LastEvaluatedKey) {
    throw new Refused(`${target.where} is not empty: an import goes only into an empty control plane (a new data directory, or a stack before \`npm run bootstrap\`)`);
  }
  for (let i = 0; i < items.length; i += 25) {
    let requests = items.slice(i, i + 25).map((item) => ({ PutRequest: { Item: item } }));
    for (let attempt = 0; requests.length > 0; attempt++) {
      const answer = await target.client.send(new BatchWriteItemCommand({ RequestItems: { [target.table]: requests } }));
      requests = (answer.UnprocessedItems?.[target.table] ?? []) as typeof requests;
      if (requests.length > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 50 * 2 ** attempt)));
    }
  }
  process.stdout.write(`imported ${items.length} items (exported ${header.exportedAt} from table ${header.table}) into ${target.where}\n`);
}

async function main() {
  const [mode, ...rest] = process.argv.slice(2);
  const aws = rest.includes('--aws');
  const files = rest.filter((arg) => arg !== '--aws');
  if ((mode !== 'export' && mode !== 'import') || files.length !== 1) throw new Refused(USAGE);
  const file = resolve(files[0]!);
  // The file is read and checked before any table is touched.
  const archive =
    mode === 'import'
      ? readArchive(
          await readFile(file, 'utf8').catch((error: Error) => {
            throw new Refused(`cannot read ${file}: ${error.message}`);
          }),
        )
      : undefined;
  const target = await openTarget(mode, aws);
  try {
    await (archive ? importInto(archive, target) : exportTo(file, target));
  } finally {
    await target.close();
  }
}

main().catch((error) => {
  const known = error instanceof Refused || error instanceof ArchiveRefused;
  process.stderr.write(`mold: ${known ? error.message : (error as Error).stack}\n`);
  process.exit(1);
});
