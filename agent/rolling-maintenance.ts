// KVM rolling maintenance on a host (docs hosts.md §14; upstream's RollingMaintenanceExecutor and its
// systemd service executor). A stage runs the admin's script from `rolling.maintenance.hooks.dir`,
// read from /etc/cloudstack/agent/agent.properties on the host as upstream's agent reads it:
// `<stage>`, `<stage>.sh` or `<stage>.py`, with the words of the payload appended.
//
// The script runs detached from the agent (setsid, its output and exit code in files of its run's
// directory), so an agent that restarts leaves it running: the command comes back to the agent (its
// queue message reappears), which finds the run's directory already made and only reads the files
// again. `mkdir` of that directory is the claim, so a script starts once per run whoever asks. A run
// whose process is gone without an exit code (the host restarted under it, as a Maintenance script
// may make it) counts as finished, as upstream counts a stage its agent restarted in.
import type { CommandPayload, CommandResult } from '../shared/agent/protocol.ts';
import { errorText } from './log.ts';
import { hostTarget, shq, type SshPool } from './ssh.ts';
import { CommandFailure } from './errors.ts';

export const AGENT_PROPERTIES = '/etc/cloudstack/agent/agent.properties';
export const RUNS_DIR = '/var/lib/mold/rolling-maintenance';
const OUTPUT_BYTES = 65536;
/** Upstream's agent: exit 70 (EX_SOFTWARE) from PreFlight or PreMaintenance says "not needed on this host". */
export const AVOID_MAINTENANCE_EXIT = 70;

/** Finds the stage's script; prints NODIR, NOSCRIPT or `SCRIPT <path>`. */
const findScript = (stage: string) => `
dir=$(sed -n 's/^[[:space:]]*rolling\\.maintenance\\.hooks\\.dir[[:space:]]*=[[:space:]]*//p' ${AGENT_PROPERTIES} 2>/dev/null | tail -n 1 | sed 's/[[:space:]]*$//')
if [ -z "$dir" ]; then echo NODIR; exit 0; fi
script=
for candidate in "$dir"/${stage} "$dir"/${stage}.sh "$dir"/${stage}.py; do
  if [ -f "$candidate" ]; then script=$candidate; break; fi
done
if [ -z "$script" ]; then echo NOSCRIPT; exit 0; fi
echo "SCRIPT $script"
`;

/** Starts the script unless its run was started before (mkdir is the claim). */
const startScript = (stage: string, run: string, words: string[]) => `${findScript(stage)}
mkdir -p ${RUNS_DIR} || exit 1
run=${shq(run)}
mkdir "$run" 2>/dev/null || exit 0
if [ -x "$script" ]; then set -- "$script"; else case "$script" in *.py) set -- python3 "$script" ;; *) set -- bash "$script" ;; esac; fi
set -- "$@" ${words.map(shq).join(' ')}
setsid bash -c 'run=$1; shift; cd "\${run%/*}"; "$@" >"$run/output" 2>&1 </dev/null; echo $? >"$run/rc.tmp"; mv "$run/rc.tmp" "$run/rc"' rolling-maintenance "$run" "$@" >/dev/null 2>&1 </dev/null &
echo $! >"$run/pid"
`;

/** Prints RC <code> then the output's tail; RUNNING; STARTING (claimed, pid not yet written); or LOST then the output's tail. */
const pollScript = (run: string) => `
run=${shq(run)}
[ -d "$run" ] || { echo MISSING; exit 0; }
if [ ! -f "$run/rc" ]; then
  pid=$(cat "$run/pid" 2>/dev/null)
  if [ -z "$pid" ]; then echo STARTING; exit 0; fi
  if kill -0 "$pid" 2>/dev/null; then echo RUNNING; exit 0; fi
fi
if [ -f "$run/rc" ]; then echo "RC $(cat "$run/rc")"; else echo LOST; fi
tail -c ${OUTPUT_BYTES} "$run/output" 2>/dev/null
`;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

export async function rollingMaintenanceStage(
  pool: SshPool,
  payload: CommandPayload<'rollingMaintenanceStage'>,
  signal?: AbortSignal,
): Promise<CommandResult<'rollingMaintenanceStage'>> {
  const t = hostTarget(payload.host);
  const stage = payload.stage;
  const pollSeconds = payload.pollSeconds ?? 10;
  const run = `${RUNS_DIR}/${payload.runId}`;
  const words = (payload.payload ?? '').trim().split(/\s+/).filter(Boolean);
  const started = Date.now();
  const first = await pool.exec(t, payload.probe ? findScript(stage) : startScript(stage, run, words), { timeoutMs: 30_000 });
  const head = first.stdout.split('\n')[0]?.trim() ?? '';
  if (first.code !== 0 && !head.startsWith('SCRIPT')) {
    throw new CommandFailure('HostCommandFailed', `Could not start the ${stage} script on ${t.address}: ${first.stderr.trim() || `exit ${first.code}`}`);
  }
  if (head === 'NODIR') {
    throw new CommandFailure('RollingMaintenanceNotConfigured', `Hooks directory is empty, please specify it on agent.properties (rolling.maintenance.hooks.dir in ${AGENT_PROPERTIES} on ${t.address})`);
  }
  if (head === 'NOSCRIPT') return { stage, found: false, finished: true, output: '' };
  const script = head.replace(/^SCRIPT /, '');
  if (payload.probe) return { stage, found: true, script, finished: true, output: '' };
  // A quick script answers at once; a long one is read every pollSeconds (upstream's ping interval).
  let wait = 250;
  for (;;) {
    let answer: string | undefined;
    try {
      const r = await pool.exec(t, pollScript(run), { timeoutMs: 30_000 });
      if (r.code === 0) answer = r.stdout;
    } catch (err) {
      // The host may be restarting under its own Maintenance script: keep asking until the timeout.
      pool.drop(t);
      if (Date.now() - started >= payload.timeoutSeconds * 1000) throw new CommandFailure('HostCommandFailed', `Lost ${t.address} during the ${stage} stage: ${errorText(err)}`);
    }
    if (answer !== undefined) {
      const [status = '', ...rest] = answer.split('\n');
      const output = rest.join('\n');
      if (status.startsWith('RC ')) return { stage, found: true, script, finished: true, exitCode: Number.parseInt(status.slice(3), 10), output };
      if (status === 'LOST') {
        return { stage, found: true, script, finished: true, exitCode: 0, output: `${output}${output && !output.endsWith('\n') ? '\n' : ''}(the script ended without an exit code, as when its host restarts: the stage counts as done)` };
      }
    }
    // Stopped (the agent shuts down, or no one waits any more): no outcome; the script runs on and the next agent reads it.
    if (signal?.aborted) throw new CommandFailure('Aborted', `Stopped waiting for the ${stage} script on ${t.address}; it keeps running there`);
    if (Date.now() - started >= payload.timeoutSeconds * 1000) return { stage, found: true, script, finished: false, output: '' };
    await sleep(Math.min(wait, pollSeconds * 1000), signal);
    wait *= 2;
  }
}
