// What a test run leaves behind, found and removed: every process that carries the run's mark in its
// environment (MOLD_TEST_RUN, which the global setup sets and every child inherits: runtimes, their
// DynamoDB Local, agents, lab daemons), and every lab whose state directory names the run (its
// namespaces, links, mounts and guests). The global teardown calls sweepRun and fails the run if it
// found anything; when the run is interrupted, the setup's exit handler runs this file as a command.
//   node test/support/sweep.ts <run id>
import { readdirSync, readFileSync } from 'node:fs';
import { alive, labAt, labsOfRun } from '../lab/lab.ts';
import { sleep } from './wait.ts';

/** Live processes (not zombies) marked with the run, other than this process, its ancestors and vitest's own. */
export function processesOfRun(run: string): { pid: number; command: string }[] {
  const mark = `MOLD_TEST_RUN=${run}`;
  const spared = ancestors();
  const found: { pid: number; command: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || spared.has(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(mark) || !alive(pid)) continue;
      const command = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim();
      // vitest's workers end with it; the run's children are what must not outlive their files.
      if (/vitest/.test(command)) continue;
      found.push({ pid, command });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

function ancestors(): Set<number> {
  const pids = new Set<number>();
  for (let pid = process.pid; pid > 1 && !pids.has(pid); ) {
    pids.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  return pids;
}

/** Removes what run `run` left; returns a line for each thing it had to remove. */
export async function sweepRun(run: string): Promise<string[]> {
  const left: string[] = [];
  for (const id of await labsOfRun(run)) {
    const lab = labAt(id);
    left.push(`lab ${id} (${lab.names.dir}) was still up`);
    await lab.down();
  }
  let strays = processesOfRun(run);
  left.push(...strays.map(({ pid, command }) => `process ${pid} was still running: ${command.slice(0, 200)}`));
  // A stopping runtime or agent gets a moment to end cleanly, then no more.
  for (const { pid } of strays) signal(pid, 'SIGTERM');
  for (let i = 0; i < 50 && strays.length > 0; i++) {
    await sleep(100);
    strays = processesOfRun(run);
  }
  for (const { pid } of strays) signal(pid, 'SIGKILL');
  return left;
}

function signal(pid: number, name: NodeJS.Signals) {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

if (import.meta.main) {
  const run = process.argv[2];
  if (!run) {
    console.error('usage: node test/support/sweep.ts <run id>');
    process.exit(2);
  }
  const left = await sweepRun(run);
  for (const line of left) console.error(`left behind by the test run: ${line}`);
}
