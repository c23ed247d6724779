// Once per test run (vitest's globalSetup, in vitest's own process):
// - marks the run: MOLD_TEST_RUN, inherited by every worker and every process a test starts;
// - starts the one DynamoDB Local the test files' runtimes share, each in a table of its own;
// - with MOLD_TEST_STRESS=1, keeps every core busy with a CPU hog beside the suite, to prove it
//   passes on a loaded machine;
// - at the end (or when the run is interrupted) stops all that, removes whatever the test files left
//   (processes, labs) and fails the run if there was anything.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { startDynamoDbLocal } from '../../infra/local/dynamodb.ts';
import { freePort } from '../../infra/local/ports.ts';
import { withParentDeath } from '../../infra/local/processes.ts';
import { sweepRun } from './sweep.ts';
import { patience } from './wait.ts';

export default async function setup() {
  const run = randomUUID();
  process.env.MOLD_TEST_RUN = run;

  const hogs: ChildProcess[] = [];
  if (process.env.MOLD_TEST_STRESS === '1') {
    for (let i = 0; i < availableParallelism(); i++) {
      hogs.push(spawn(...withParentDeath('KILL', process.execPath, ['-e', 'for (;;) Math.sqrt(Math.random())']), { stdio: 'ignore' }));
    }
  }
  // Not waited for: a run of unit tests alone need not wait for a JVM; runtimes wait until it answers.
  // Its JVM's start stretches with the machine's load like any wait of the suite; the runtimes wait as long.
  process.env.MOLD_DYNAMODB_WAIT_SECONDS ??= String(patience(60_000) / 1000);
  const dynamodb = startDynamoDbLocal(undefined, await freePort());
  dynamodb.ready.catch(() => {}); // a failure shows in every runtime that waits for it
  process.env.MOLD_TEST_DYNAMODB = dynamodb.endpoint;

  let swept = false;
  // Interrupted (Ctrl-C), vitest exits without a teardown: sweep then, synchronously, in a process of its own.
  process.once('exit', () => {
    if (swept) return;
    for (const hog of hogs) hog.kill('SIGKILL');
    spawnSync(process.execPath, [join(import.meta.dirname, 'sweep.ts'), run], { stdio: 'inherit', timeout: 120_000 });
  });

  return async function teardown() {
    for (const hog of hogs) hog.kill('SIGKILL');
    await dynamodb.stop();
    const left = await sweepRun(run);
    swept = true;
    if (left.length > 0) throw new Error(`The test run left these behind (now removed):\n${left.map((line) => `  ${line}`).join('\n')}`);
  };
}
