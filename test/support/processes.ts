// Every process a test file starts ends with it. Children are started through spawnChild: the kernel
// sends them SIGTERM if the test process dies (the runtime and the agent stop cleanly on it), and the
// setup file (test/support/setup-file.ts) stops whatever a file left running when the file ends,
// passed or failed. The suite's global teardown then checks that nothing of the run is left.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { withParentDeath } from '../../infra/local/processes.ts';

const running = new Set<ChildProcess>();

export interface Child {
  child: ChildProcess;
  /** Everything printed so far, stdout and stderr together. */
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Starts `command args` tied to this test process, and records its output. */
export function spawnChild(command: string, args: readonly string[], options: SpawnOptions = {}): Child {
  const child = spawn(...withParentDeath('TERM', command, args), { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  running.add(child);
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  return { child, output: () => output, exited };
}

/** Sends `signal` and waits for the exit; SIGKILL after `graceMs` if it has not gone by then. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 30_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(timer);
}

/** Stops every child still running; the setup file calls it after each test file. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...running].map((child) => stopChild(child)));
}
