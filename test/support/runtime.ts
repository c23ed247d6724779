// Runs `npm start`'s entry point as a child process, as a user would, and hands tests its endpoints.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(REPO_ROOT, 'infra/local/main.ts');

export interface RuntimeInfo {
  apiUrl: string;
  endpoints: { dynamodb: string; sqs: string; sfn: string };
  stateMachines: Record<string, string>;
}

export interface RunningRuntime extends RuntimeInfo {
  dataDir: string;
  /** The root admin's credentials, as written on first start. */
  credentials: { username: string; password: string; apikey: string; secretkey: string; domainid: string };
  process: ChildProcess;
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
}

export function runMain(options: RuntimeOptions = {}) {
  const dataDir = options.dataDir ?? tempDataDir();
  const child = spawn(process.execPath, [MAIN], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      MOLD_DATA_DIR: dataDir,
      MOLD_PORT: String(options.port ?? 0),
      MOLD_LOG_LEVEL: 'silent',
      MOLD_STOP_WITH_PARENT: '1',
      ...(options.statemachinesDirs && { MOLD_STATEMACHINES_DIRS: options.statemachinesDirs.join(':') }),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return { child, dataDir, exited, output: () => output };
}

export async function startRuntime(options: RuntimeOptions = {}): Promise<RunningRuntime> {
  const run = runMain(options);
  const ready = await Promise.race([
    // Generous: beside the lab tests' guests on two cores, a JVM can take a while to come up.
    waitFor(() => /Ready in/.test(run.output()), 55_000).then(() => true),
    run.exited.then(() => false),
  ]);
  if (!ready) throw new Error(`the runtime exited before it was ready:\n${run.output()}`);
  const info = JSON.parse(readFileSync(join(run.dataDir, 'runtime.json'), 'utf8')) as RuntimeInfo;
  return {
    ...info,
    credentials: JSON.parse(readFileSync(join(run.dataDir, 'admin-credentials.json'), 'utf8')),
    dataDir: run.dataDir,
    process: run.child,
    output: run.output,
    stop: async () => {
      run.child.kill('SIGINT');
      return run.exited;
    },
  };
}

export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Points this test process's SDK clients (and the shared repository code) at a runtime. */
export function useRuntimeEndpoints(runtime: RuntimeInfo, dataDir: string) {
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: runtime.endpoints.dynamodb,
    AWS_ENDPOINT_URL_SQS: runtime.endpoints.sqs,
    AWS_ENDPOINT_URL_SFN: runtime.endpoints.sfn,
    MOLD_TABLE: 'mold',
    MOLD_STATE_MACHINES: JSON.stringify(runtime.stateMachines),
    MOLD_SECRET_KEY_FILE: join(dataDir, 'secret.key'),
  });
}
