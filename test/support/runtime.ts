// Runs `npm start`'s entry point as a child process, as a user would, and hands tests its endpoints.
// Inside the test suite, runtimes keep their inventory in the one DynamoDB Local the suite's global
// setup started (each in a table of its own): a JVM per test file would cost the suite minutes.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { spawnChild, stopChild, type Child } from './processes.ts';
import { waitFor } from './wait.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(REPO_ROOT, 'infra/local/main.ts');

export interface RuntimeInfo {
  apiUrl: string;
  endpoints: { dynamodb: string; sqs: string; sfn: string };
  stateMachines: Record<string, string>;
  table: string;
}

export interface RunningRuntime extends RuntimeInfo {
  dataDir: string;
  /** The root admin's credentials, as written on first start. */
  credentials: { username: string; password: string; apikey: string; secretkey: string; domainid: string };
  process: Child['child'];
  /** Everything printed so far. */
  output(): string;
  /** Ctrl-C, then wait for the process to exit; resolves with its exit code. */
  stop(): Promise<number | null>;
}

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'mold-test-'));
}

export interface RuntimeOptions {
  dataDir?: string;
  port?: number;
  statemachinesDirs?: string[];
  env?: Record<string, string>;
  /** Start a DynamoDB Local of its own, as `npm start` does, instead of using the suite's. */
  ownDynamoDb?: boolean;
}

/** The suite's DynamoDB Local (test/support/global-setup.ts), when there is one. */
const SHARED_DYNAMODB = process.env.MOLD_TEST_DYNAMODB;

export function runMain(options: RuntimeOptions = {}) {
  const dataDir = options.dataDir ?? tempDataDir();
  const { MOLD_TABLE: _table, MOLD_DYNAMODB_ENDPOINT: _endpoint, ...inherited } = process.env;
  const shared = SHARED_DYNAMODB && !options.ownDynamoDb;
  const run = spawnChild(process.execPath, [MAIN], {
    cwd: REPO_ROOT,
    env: {
      ...inherited,
      MOLD_DATA_DIR: dataDir,
      MOLD_PORT: String(options.port ?? 0),
      MOLD_LOG_LEVEL: 'silent',
      // The data directory names the table, so a restart on the same directory finds its data.
      ...(shared && { MOLD_DYNAMODB_ENDPOINT: SHARED_DYNAMODB, MOLD_TABLE: `mold-${basename(dataDir)}` }),
      ...(options.statemachinesDirs && { MOLD_STATEMACHINES_DIRS: options.statemachinesDirs.join(':') }),
      ...options.env,
    },
  });
  return { ...run, dataDir };
}

/**
 * How long a runtime's start may take on a quiet machine (stretched by SLACK where it is waited for).
 * A start takes seconds (DynamoDB Local's JVM, when it has its own, ~7 s), but it is only waited for,
 * never judged: the generous figure lets a heavily shared machine through (at a load average of ~30 on
 * two cores, starts took over a minute).
 */
export const RUNTIME_START_MS = 60_000;

export async function startRuntime(options: RuntimeOptions = {}): Promise<RunningRuntime> {
  const run = runMain(options);
  let exitCode: number | null | undefined;
  void run.exited.then((code) => (exitCode = code));
  try {
    await waitFor('the runtime to be ready', () => {
      if (exitCode !== undefined) throw new Error(`the runtime exited (${exitCode}) before it was ready`);
      return /Ready in/.test(run.output());
    }, { within: RUNTIME_START_MS, every: 50 });
  } catch (error) {
    throw new Error(`${(error as Error).message}; it printed:\n${run.output()}`);
  }
  const info = JSON.parse(readFileSync(join(run.dataDir, 'runtime.json'), 'utf8')) as RuntimeInfo;
  return {
    ...info,
    credentials: JSON.parse(readFileSync(join(run.dataDir, 'admin-credentials.json'), 'utf8')),
    dataDir: run.dataDir,
    process: run.child,
    output: run.output,
    stop: async () => {
      await stopChild(run.child, 'SIGINT');
      return run.exited;
    },
  };
}

/** Points this test process's SDK clients (and the shared repository code) at a runtime. */
export function useRuntimeEndpoints(runtime: RuntimeInfo & { dataDir: string }) {
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: runtime.endpoints.dynamodb,
    AWS_ENDPOINT_URL_SQS: runtime.endpoints.sqs,
    AWS_ENDPOINT_URL_SFN: runtime.endpoints.sfn,
    MOLD_TABLE: runtime.table,
    MOLD_STATE_MACHINES: JSON.stringify(runtime.stateMachines),
    MOLD_SECRET_KEY_FILE: join(runtime.dataDir, 'secret.key'),
  });
}
