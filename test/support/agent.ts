// A real agent process for tests: `mold-agent enrol` with a token from the API, then `mold-agent run`,
// each a child process as an operator would start them.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApiClient } from './client.ts';
import { spawnChild, stopChild } from './processes.ts';
import { REPO_ROOT } from './runtime.ts';
import { sleep, waitFor } from './wait.ts';

const CLI = join(REPO_ROOT, 'agent/cli.ts');

export interface EnrolledAgent {
  agentId: string;
  dir: string;
  sshPublicKey: string;
}

export interface RunningAgent {
  process: ChildProcess;
  /** Everything printed so far. */
  output(): string;
  /** The JSON log lines printed so far. */
  lines(): Array<Record<string, any>>;
  stop(): Promise<number | null>;
}

/** `mold-agent <args>` as a child process of this test; `lines()` are its JSON log lines. */
export function agentCli(args: string[], env: Record<string, string> = {}) {
  const run = spawnChild(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
  const lines = () =>
    run
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, any>);
  return { ...run, lines };
}

/** The gateway's base URL: the API's, without /client/api. */
export const gatewayBase = (apiUrl: string) => apiUrl.replace(/\/client\/api$/, '');

/** Creates an enrolment token for `zoneId` through the API and enrols a new agent with it. */
export async function enrolAgent(admin: ApiClient, apiUrl: string, zoneId: string, dir = mkdtempSync(join(tmpdir(), 'mold-agent-'))): Promise<EnrolledAgent> {
  const created = await admin.call('createAgentEnrollmentToken', { zoneid: zoneId });
  if (created.status !== 200) throw new Error(`createAgentEnrollmentToken: ${JSON.stringify(created.body)}`);
  const token = created.body.createagentenrollmenttokenresponse.agentenrollmenttoken.token as string;
  const run = agentCli(['enrol', '--url', gatewayBase(apiUrl), '--token', token, '--dir', dir]);
  const code = await run.exited;
  if (code !== 0) throw new Error(`mold-agent enrol exited ${code}:\n${run.output()}`);
  const enrolled = JSON.parse(run.output().trim().split('\n').pop()!) as { agentId: string; sshPublicKey: string };
  return { agentId: enrolled.agentId, sshPublicKey: enrolled.sshPublicKey, dir };
}

/** An agent's long poll, in tests: after a stop, its last poll lapses within this. */
export const AGENT_WAIT_SECONDS = 1;

/** Starts `mold-agent run` and resolves once it says it is ready. */
export async function startAgent(dir: string, env: Record<string, string> = {}): Promise<RunningAgent> {
  const run = agentCli(['run', '--dir', dir], { MOLD_AGENT_WAIT_SECONDS: String(AGENT_WAIT_SECONDS), ...env });
  await waitFor('mold-agent run to be ready', () => {
    if (run.child.exitCode !== null) throw new Error(`mold-agent run exited ${run.child.exitCode}:\n${run.output()}`);
    return run.lines().some((l) => l.message === 'ready');
  }, { every: 50 });
  return {
    process: run.child,
    output: run.output,
    lines: run.lines,
    stop: async () => {
      await stopChild(run.child);
      const code = await run.exited;
      // A poll the agent abandoned may still be open at the queue: let it lapse, or it could take
      // (and hide) the next command meant for a later agent.
      await sleep(AGENT_WAIT_SECONDS * 1000 + 500);
      return code;
    },
  };
}
