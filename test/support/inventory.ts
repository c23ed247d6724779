// `npm run export` / `npm run import` (scripts/inventory.ts) as a user runs them, against tables of the
// suite's DynamoDB Local, and a restore: an export imported into a new data directory that gets the
// source's data key, CA and admin credentials files, then a runtime started on it.
import { execFile } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { REPO_ROOT, startRuntime, tempDataDir, type RunningRuntime, type RuntimeOptions } from './runtime.ts';

export interface ScriptRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function inventoryScript(mode: 'export' | 'import', file: string, dynamodb: string, table: string): Promise<ScriptRun> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [join(REPO_ROOT, 'scripts/inventory.ts'), mode, file],
      { cwd: REPO_ROOT, env: { ...process.env, MOLD_DYNAMODB_ENDPOINT: dynamodb, MOLD_TABLE: table } },
      (error, stdout, stderr) => done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The table a runtime started on `dataDir` uses in the suite (test/support/runtime.ts names it so). */
export const tableOf = (dataDir: string) => `mold-${basename(dataDir)}`;

/** Imports `file` into a new data directory beside `source`'s secrets, and starts a runtime on it. */
export async function restoreInto(source: RunningRuntime, file: string, options: RuntimeOptions = {}): Promise<{ run: ScriptRun; runtime: RunningRuntime }> {
  const dataDir = tempDataDir();
  const run = await inventoryScript('import', file, source.endpoints.dynamodb, tableOf(dataDir));
  if (run.code !== 0) throw new Error(`import failed: ${run.stderr}`);
  for (const name of ['secret.key', 'ca.json', 'admin-credentials.json']) copyFileSync(join(source.dataDir, name), join(dataDir, name));
  return { run, runtime: await startRuntime({ ...options, dataDir }) };
}
