// Child processes that never outlive their parent: on Linux, util-linux's `setpriv --pdeathsig` asks the
// kernel to signal the child the moment its parent dies, however it dies (SIGKILL included), which no
// exit handler of the parent can promise. Where setpriv is missing the child starts as it is.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

let setpriv: string | null | undefined;

/** The command line that runs `command args` and delivers `signal` to it when this process dies. */
export function withParentDeath(signal: 'KILL' | 'TERM', command: string, args: readonly string[]): [string, string[]] {
  // Found once, on this process's PATH: the child's own PATH may be narrower.
  setpriv ??= process.platform === 'linux' ? ((process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'setpriv')).find((path) => existsSync(path)) ?? null) : null;
  return setpriv ? [setpriv, ['--pdeathsig', signal, '--', command, ...args]] : [command, [...args]];
}
