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

/** A table of a running DynamoDB (the suite's), or a local runtime's data directory. */
export type InventoryTarget = { dynamodb: string; table: string } | { dataDir: string };

/** Where a runtime keeps its inventory: in the suite, a table of the shared DynamoDB Local; else its data directory. */
export const inventoryOf = (runtime: Pick<RunningRuntime, 'endpoints' | 'table' | 'dataDir'>): InventoryTarget =>
  process.env.MOLD_TEST_DYNAMODB ? { dynamodb: runtime.endpoints.dynamodb, table: runtime.table } : { dataDir: runtime.dataDir };

export function inventoryScript(mode: 'export' | 'import', file: string, target: InventoryTarget): Promise<ScriptRun> {
  const { MOLD_DYNAMODB_ENDPOINT: _endpoint, MOLD_TABLE: _table, MOLD_DATA_DIR: _dir, ...inherited } = process.env;
  const where = 'dataDir' in target ? { MOLD_DATA_DIR: target.dataDir } : { MOLD_DYNAMODB_ENDPOINT: target.dynamodb, MOLD_TABLE: target.table };
  return new Promise((done) => {
    execFile(
      process.execPath,
      [join(REPO_ROOT, 'scripts/inventory.ts'), mode, file],
      { cwd: REPO_ROOT, env: { ...inherited, ...where } },
      (error, stdout, stderr) => done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The table a runtime started on `dataDir` uses in the suite (test/support/runtime.ts names it so). */
export const tableOf = (dataDir: string) => `mold-${basename(dataDir)}`;

/** Imports `file` into a new data directory, puts `source`'s secrets beside it, and starts a runtime on it. */
export async function restoreInto(source: RunningRuntime, file: string, options: RuntimeOptions = {}): Promise<{ run: ScriptRun; runtime: RunningRuntime }> {
  const dataDir = tempDataDir();
  const shared = process.env.MOLD_TEST_DYNAMODB;
  const run = await inventoryScript('import', file, shared ? { dynamodb: shared, table: tableOf(dataDir) } : { dataDir });
  if (run.code !== 0) throw new Error(`import failed: ${run.stderr}`);
  for (const name of ['secret.key', 'ca.json', 'admin-credentials.json']) copyFileSync(join(source.dataDir, name), join(dataDir, name));
  return { run, runtime: await startRuntime({ ...options, dataDir }) };
}
