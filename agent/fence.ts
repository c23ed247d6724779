// The host side of agent leases (shared/agent-leases.ts): a fence file per host holding the highest
// lease epoch any agent acted under. Before an agent acts on a host it raises the fence to its
// command's epoch, under flock, in the same SSH round trip as the check; a fence already higher means
// another agent took the host over since, and the command is refused (StaleEpoch) without touching
// anything. The file lives on the host, so the check holds whichever agent, old or new, asks.
import { CommandFailure } from './errors.ts';
import { who, type SshConnection } from './ssh.ts';

/** On the host; one file per host id (lab hosts share a filesystem, and ids never collide). */
export const FENCE_DIR = '/var/lib/mold-agent/fence';

/** Exit status of a refused fence (EX_TEMPFAIL). */
const STALE = 75;

export function fenceScript(hostId: string, epoch: number): string {
  if (!/^[A-Za-z0-9-]+$/.test(hostId)) throw new CommandFailure('InvalidCommand', `Not a host id: ${hostId}`);
  if (!Number.isInteger(epoch) || epoch < 0) throw new CommandFailure('InvalidCommand', `Not a lease epoch: ${epoch}`);
  const file = `${FENCE_DIR}/${hostId}`;
  return [
    'set -e',
    `mkdir -p ${FENCE_DIR}`,
    `exec 9>>${file}.lock`,
    'flock -w 10 9',
    `cur=$(cat ${file} 2>/dev/null || true)`,
    'case "$cur" in ""|*[!0-9]*) cur=0 ;; esac',
    `if [ ${epoch} -lt "$cur" ]; then echo "$cur"; exit ${STALE}; fi`,
    `if [ ${epoch} -gt "$cur" ]; then echo ${epoch} > ${file}.new; mv ${file}.new ${file}; fi`,
    `echo ${epoch}`,
  ].join('\n');
}

/**
 * Raises the host's fence to `epoch`; throws StaleEpoch when it already holds a newer one. The
 * report's raise goes on the report's channels (`report`), a command's on the commands'.
 */
export async function raiseFence(conn: SshConnection, hostId: string, epoch: number, options: { report?: boolean } = {}): Promise<void> {
  const r = await conn.exec(fenceScript(hostId, epoch), { timeoutMs: 20_000, ...options });
  if (r.code === STALE) {
    throw new CommandFailure('StaleEpoch', `Host ${who(conn.target)} is held by another agent now: its fence holds lease epoch ${r.stdout.trim()}, this command's is ${epoch}`);
  }
  if (r.code !== 0) throw new CommandFailure('HostCommandFailed', `Checking the lease fence on ${who(conn.target)} failed (exit ${r.code ?? r.signal}): ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
}
