// The agent's journal answers a redelivered command from its recorded outcome, across restarts.
import { appendFileSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandMessage } from '../../shared/agent/protocol.ts';
import { Journal, parseJournal } from '../../agent/journal.ts';
import { gatewayBase } from '../../agent/gateway.ts';
import { toFailure } from '../../agent/commands.ts';
import { CommandFailure } from '../../agent/errors.ts';
import { keyComment, withComment } from '../../agent/state.ts';

function tempJournal() {
  return join(mkdtempSync(join(tmpdir(), 'mold-agent-journal-')), 'journal.jsonl');
}

describe('journal', () => {
  it('records outcomes durably (0600) and reloads them', async () => {
    const path = tempJournal();
    const j = await Journal.open(path);
    expect(j.size).toBe(0);
    await j.record('c1', 'pingHost', { ok: true, result: { elapsedMs: 3 } });
    await j.record('c2', 'addHost', { ok: false, failure: { error: 'AuthenticationFailed', cause: 'Authentication failed for root@10.77.1.12: wrong username or password' } });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = await Journal.open(path);
    expect(again.size).toBe(2);
    expect(again.get('c1')!.outcome).toEqual({ ok: true, result: { elapsedMs: 3 } });
    expect(again.get('c2')!.outcome).toMatchObject({ ok: false, failure: { error: 'AuthenticationFailed' } });
    expect(again.get('c3')).toBeUndefined();
  });

  it('keeps the first outcome of a command', async () => {
    const j = await Journal.open(tempJournal());
    await j.record('c1', 'pingHost', { ok: true, result: 1 });
    const second = await j.record('c1', 'pingHost', { ok: true, result: 2 });
    expect(second.outcome).toEqual({ ok: true, result: 1 });
    expect(readFileSync(j.path, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('serialises concurrent appends into whole lines', async () => {
    const j = await Journal.open(tempJournal());
    await Promise.all(Array.from({ length: 50 }, (_, i) => j.record(`c${i}`, 'pingHost', { ok: true, result: { i, pad: 'x'.repeat(5000) } })));
    const reloaded = await Journal.open(j.path);
    expect(reloaded.size).toBe(50);
  });

  it('skips a torn last line (a crash mid-append)', async () => {
    const path = tempJournal();
    const j = await Journal.open(path);
    await j.record('c1', 'pingHost', { ok: true, result: {} });
    appendFileSync(path, '{"commandId":"c2","type":"pingHost","at":"2025-');
    const reloaded = await Journal.open(path);
    expect(reloaded.size).toBe(1);
    expect(parseJournal('garbage\n{}\n')).toEqual([]);
  });

  it('drops old entries when it compacts', async () => {
    const path = tempJournal();
    let now = Date.parse('2025-01-01T00:00:00Z');
    const j = await Journal.open(path, { compactAt: 10, retentionMs: 3600_000, now: () => now });
    for (let i = 0; i < 5; i++) await j.record(`old${i}`, 'pingHost', { ok: true, result: i });
    now += 2 * 3600_000;
    for (let i = 0; i < 5; i++) await j.record(`new${i}`, 'pingHost', { ok: true, result: i });
    expect(j.size).toBe(5);
    expect(j.get('old0')).toBeUndefined();
    expect(j.get('new4')).toBeDefined();
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(5);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('bounds the file even when every entry is recent', async () => {
    const j = await Journal.open(tempJournal(), { compactAt: 10 });
    for (let i = 0; i < 10; i++) await j.record(`c${i}`, 'pingHost', { ok: true, result: i });
    expect(j.size).toBe(5);
    expect(j.get('c9')).toBeDefined();
  });
});

describe('command messages', () => {
  it('parses the body Step Functions sends', () => {
    const body = {
      commandId: 'job-1',
      type: 'pingHost',
      deadline: '2030-01-01T00:00:00.000Z',
      payload: { host: { hostId: 'h', address: '10.77.1.11', username: 'root' } },
      taskToken: 'tok',
    };
    expect(commandMessage.parse(body).type).toBe('pingHost');
    expect(commandMessage.safeParse({ ...body, type: 'formatDisk' }).success).toBe(false);
    expect(commandMessage.safeParse({ ...body, taskToken: undefined }).success).toBe(false);
  });
});

describe('failures', () => {
  it('carry the failure name and the cause the job shows', () => {
    expect(toFailure(new CommandFailure('HostUnreachable', 'Cannot reach 10.77.1.99:22: no route to host'), 'addHost')).toEqual({
      error: 'HostUnreachable',
      cause: 'Cannot reach 10.77.1.99:22: no route to host',
    });
    expect(toFailure(new Error('boom'), 'pingHost')).toEqual({ error: 'AgentError', cause: 'The agent failed to run pingHost: boom' });
  });
});

describe('gateway URL', () => {
  it('derives /agent/v1 from the API URL or its origin', () => {
    expect(gatewayBase('http://127.0.0.1:8080/client/api')).toBe('http://127.0.0.1:8080/agent/v1');
    expect(gatewayBase('http://127.0.0.1:8080/client/api/')).toBe('http://127.0.0.1:8080/agent/v1');
    expect(gatewayBase('https://mold.example.com')).toBe('https://mold.example.com/agent/v1');
    expect(gatewayBase('https://mold.example.com/agent/v1')).toBe('https://mold.example.com/agent/v1');
    expect(gatewayBase('https://x.execute-api.eu-west-1.amazonaws.com/prod/client/api')).toBe('https://x.execute-api.eu-west-1.amazonaws.com/prod/agent/v1');
    expect(() => gatewayBase('ftp://x')).toThrow(/http or https/);
  });
});

describe('ssh key comment', () => {
  it('tags the agent key with its id', () => {
    expect(withComment('ssh-ed25519 AAAAC3Nz mold-agent', keyComment('abc'))).toBe('ssh-ed25519 AAAAC3Nz mold-agent-abc');
  });
});


