// The agent as a process against the local runtime's gateway: `mold-agent enrol` with a token from
// createAgentEnrollmentToken, `mold-agent run` (credentials, first report, long poll), a command put
// on its queue by hand (the message Step Functions would send, with a task token that is not real,
// so the gateway answers accepted:false), the same commandId again answered from the journal and not
// run twice, `status`, and a clean stop on SIGTERM. The command targets a closed loopback port, so no
// lab is needed (the host side is test/lab/agent-host.test.ts); this file could live in test/integration.
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomCredential } from '../../shared/crypto/credentials.ts';
import { createEnrollmentToken } from '../../shared/db/agents.ts';
import { agentCli } from '../support/agent.ts';
import { adminClient, type ApiClient } from '../support/client.ts';
import { REPO_ROOT, startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { patience, until } from '../support/wait.ts';

const CLI = join(REPO_ROOT, 'agent/cli.ts');

/** The first of the agent's log lines that `match` picks, once it is printed; else what it printed last. */
async function line(run: ReturnType<typeof agentCli>, what: string, match: (l: Record<string, any>) => boolean): Promise<Record<string, any>> {
  try {
    return (await until(what, () => run.lines().find(match), (found) => found !== undefined, { every: 25 }))!;
  } catch (error) {
    throw new Error(`${(error as Error).message}\nthe agent's last lines:\n${run.output().slice(-3000)}`);
  }
}

describe('mold-agent against the local runtime', () => {
  let runtime: RunningRuntime;
  let admin: ApiClient;
  let dir: string;
  let zoneId: string;
  let run: ReturnType<typeof agentCli> | undefined;
  let agentJson: { agentId: string; queueUrl: string };

  beforeAll(async () => {
    runtime = await startRuntime();
    admin = adminClient(runtime.apiUrl, runtime.credentials);
    const zone = await admin.call('createZone', { name: 'agent-zone', networktype: 'Advanced', dns1: '8.8.8.8' });
    zoneId = (zone.body as { createzoneresponse: { zone: { id: string } } }).createzoneresponse.zone.id;
    dir = mkdtempSync(join(tmpdir(), 'mold-agent-run-'));
  }, patience(120_000));

  afterAll(async () => {
    await runtime?.stop();
  }, patience(120_000));

  it('enrols with a token, once', async () => {
    const r = await admin.call('createAgentEnrollmentToken', { zoneid: zoneId });
    const token = (r.body as { createagentenrollmenttokenresponse: { agentenrollmenttoken: { token: string } } }).createagentenrollmenttokenresponse.agentenrollmenttoken.token;
    const enrol = agentCli(['enrol', '--url', runtime.apiUrl, `--token=${token}`, '--dir', dir, '--name', 'lab-agent']);
    expect(await enrol.exited, enrol.output()).toBe(0);
    const line = enrol.lines()[0]!;
    expect(line).toMatchObject({ message: 'enrolled', zoneId, dir });
    expect(line.sshPublicKey).toMatch(new RegExp(`^ssh-ed25519 \\S+ mold-agent-${line.agentId}$`));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const f of ['agent.json', 'agent-key.pem', 'agent-cert.pem', 'ca-cert.pem', 'ssh-key', 'ssh-key.pub']) {
      expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    }
    agentJson = JSON.parse(readFileSync(join(dir, 'agent.json'), 'utf8'));
    expect(agentJson.agentId).toBe(line.agentId);

    // The token is used up; the directory is taken.
    const again = agentCli(['enrol', '--url', runtime.apiUrl, '--token', token, '--dir', mkdtempSync(join(tmpdir(), 'mold-agent-run-'))]);
    expect(await again.exited).toBe(1);
    expect(again.output()).toMatch(/refused enrol \(HTTP 4\d\d\)/);
    const taken = agentCli(['enrol', '--url', runtime.apiUrl, '--token', token, '--dir', dir]);
    expect(await taken.exited).toBe(1);
    expect(taken.output()).toContain('already holds an enrolled agent');
  });

  it('takes --token=<token> for a token that begins with -, as earlier releases drew one in 32', async () => {
    useRuntimeEndpoints(runtime);
    const { token } = await createEnrollmentToken({ zoneId, token: `-${randomCredential(31)}` });
    const other = mkdtempSync(join(tmpdir(), 'mold-agent-run-'));
    // Written as a separate argument, Node's parser takes it for an option and says how to pass it.
    const separate = agentCli(['enrol', '--url', runtime.apiUrl, '--token', token, '--dir', other]);
    expect(await separate.exited).toBe(2);
    expect(separate.output()).toContain(`'--token=-XYZ'`);
    const joined = agentCli(['enrol', '--url', runtime.apiUrl, `--token=${token}`, '--dir', other]);
    expect(await joined.exited, joined.output()).toBe(0);
    expect(joined.lines()[0]).toMatchObject({ message: 'enrolled', zoneId });
  });

  it('prints its status, then its zone as the control plane sees it', () => {
    const s = spawnSync(process.execPath, [CLI, 'status', '--dir', dir], { encoding: 'utf8' });
    expect(s.status, s.stderr).toBe(0);
    expect(s.stdout).toContain(`Agent:         ${agentJson.agentId} (lab-agent)`);
    expect(s.stdout).toContain(`Zone:          ${zoneId}`);
    expect(s.stdout).toContain('Journal:       0 command result(s)');
    expect(s.stdout).toMatch(/ssh-ed25519 \S+ mold-agent-/);
    expect(s.stdout).toContain(`Zone agent-zone (${zoneId})`);
    // This agent, marked; it has not run yet, so it holds no lease.
    expect(s.stdout).toContain(`  * lab-agent (${agentJson.agentId})\n      state Enabled, no lease yet, 0 host(s)`);
    expect(s.stdout).toContain('Hosts (0):');

    const json = JSON.parse(spawnSync(process.execPath, [CLI, 'status', '--dir', dir, '--json'], { encoding: 'utf8' }).stdout);
    expect(json.fleet).toMatchObject({ zoneid: zoneId, host: [] });
    expect(json.fleet.agent).toContainEqual(expect.objectContaining({ id: agentJson.agentId, holdslease: false }));
    // --local asks nothing of the control plane.
    const local = spawnSync(process.execPath, [CLI, 'status', '--dir', dir, '--local'], { encoding: 'utf8' });
    expect(local.status).toBe(0);
    expect(local.stdout).not.toContain('Hosts (');
  });

  it('runs: reports, long-polls, answers a command, and answers its redelivery from the journal', async () => {
    run = agentCli(['run', '--dir', dir]);
    const ready = await line(run, 'ready', (l) => l.message === 'ready');
    expect(ready).toMatchObject({ agentId: agentJson.agentId, queueUrl: agentJson.queueUrl });
    const listed = await admin.call('listAgents', { id: agentJson.agentId });
    expect(JSON.stringify(listed.body)).toContain(agentJson.agentId);

    const sqs = new SQSClient({ region: 'us-east-1', endpoint: runtime.endpoints.sqs, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const body = {
      commandId: 'cmd-ping-1',
      type: 'pingHost',
      deadline: new Date(Date.now() + 60_000).toISOString(),
      // Nothing listens there: the command fails fast, and its failure is what the journal replays.
      payload: { host: { hostId: 'h1', address: '127.0.0.1', port: 1, username: 'root' } },
      taskToken: 'not-a-real-task-token',
    };
    await sqs.send(new SendMessageCommand({ QueueUrl: agentJson.queueUrl, MessageBody: JSON.stringify(body) }));
    const first = await line(run, 'the command line', (l) => l.message === 'command' && l.commandId === 'cmd-ping-1');
    expect(first).toMatchObject({ type: 'pingHost', outcome: 'failure', error: 'HostUnreachable', accepted: false });
    expect(first.replayed).toBeUndefined();

    await sqs.send(new SendMessageCommand({ QueueUrl: agentJson.queueUrl, MessageBody: JSON.stringify(body) }));
    const second = await line(run, 'the replay', (l) => l.message === 'command' && l.commandId === 'cmd-ping-1' && l.replayed);
    expect(second).toMatchObject({ outcome: 'failure', error: 'HostUnreachable', replayed: true });
    const journal = readFileSync(join(dir, 'journal.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(journal).toHaveLength(1);
    expect(journal[0].outcome.failure.cause).toBe('Cannot reach 127.0.0.1:1: connection refused (is sshd running?)');

    // Past its deadline: not run, answered Expired.
    await sqs.send(new SendMessageCommand({ QueueUrl: agentJson.queueUrl, MessageBody: JSON.stringify({ ...body, commandId: 'cmd-late', deadline: new Date(Date.now() - 1000).toISOString() }) }));
    const late = await line(run, 'the expired command', (l) => l.message === 'command' && l.commandId === 'cmd-late');
    expect(late).toMatchObject({ outcome: 'failure', error: 'Expired' });
    sqs.destroy();
  });

  it('stops cleanly on SIGTERM', async () => {
    run!.child.kill('SIGTERM');
    expect(await run!.exited).toBe(0);
    expect(run!.lines().some((l) => l.message === 'stopped')).toBe(true);
    expect(run!.output()).not.toMatch(/"level":"(warn|error)"/);
  });
});
