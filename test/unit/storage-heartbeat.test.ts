// The storage heartbeat (shared/storage-heartbeat.ts, agent/host.ts): which peer reading HA takes for a
// host, the thresholds, the parsing of the report's heartbeat sections, and the script itself run with
// sh in a scratch folder: it starts one writer, keeps one writer over many reports, and reads the ages.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { heartbeatScript, parseHeartbeats, reportFromOutput, reportScript } from '../../agent/host.ts';
import { heartbeatFresh, heartbeatOf, heartbeatProvesDead, HEARTBEAT_DIR, STORAGE_HEARTBEAT_SECONDS, type HeartbeatReader } from '../../shared/storage-heartbeat.ts';

const NOW = Date.parse('2026-12-03T12:00:00.000Z');
const iso = (ago: number) => new Date(NOW - ago).toISOString();
const reader = (id: string, ages: Record<string, number>, ago = 1000, over: Partial<HeartbeatReader> = {}): HeartbeatReader => ({ id, clusterId: 'c1', status: 'Up', heartbeats: { at: iso(ago), ages }, ...over });

describe('heartbeatOf: the freshest recent reading of a host by a healthy peer of its cluster', () => {
  const host = { id: 'h1', clusterId: 'c1' };

  it('takes the smallest age among Up peers of the cluster that read it lately', () => {
    const readers = [reader('h2', { h1: 30 }), reader('h3', { h1: 4 }, 2000), reader('h4', { h1: 1 }, 1000, { status: 'Alert' }), reader('h5', { h1: 0 }, 1000, { clusterId: 'c2' }), reader('h1', { h1: 0 })];
    expect(heartbeatOf(host, readers, NOW, 10)).toEqual({ ageSeconds: 4, at: NOW - 2000, by: 'h3' });
  });

  it('ignores readings older than three report intervals, peers that did not read it, and has nothing without a reading', () => {
    expect(heartbeatOf(host, [reader('h2', { h1: 1 }, 30_001)], NOW, 10)).toBeUndefined();
    expect(heartbeatOf(host, [reader('h2', { h9: 1 })], NOW, 10)).toBeUndefined();
    expect(heartbeatOf(host, [{ id: 'h2', clusterId: 'c1', status: 'Up' }], NOW, 10)).toBeUndefined();
    expect(heartbeatOf(host, [], NOW, 10)).toBeUndefined();
  });

  it('fresh up to three periods; proof of death past the fence timeout and three periods', () => {
    expect(STORAGE_HEARTBEAT_SECONDS).toBe(5);
    expect([undefined, 0, 15, 16].map((age) => heartbeatFresh(age === undefined ? undefined : { ageSeconds: age }))).toEqual([false, true, true, false]);
    expect([undefined, 25, 26].map((age) => heartbeatProvesDead(age === undefined ? undefined : { ageSeconds: age }, 10))).toEqual([false, false, true]);
  });
});

describe('the report\'s heartbeat sections', () => {
  it('parses `<host id> <age>` lines, the freshest per host over pools; a failed section is no reading', () => {
    const ok = (output: string) => ({ output, code: 0 });
    expect(parseHeartbeats([ok('h1 3\nh2 40\ngarbage\n'), ok('h2 7\nh3 -1'), { output: 'h1 0', code: 1 }])).toEqual({ h1: 3, h2: 7, h3: 0 });
    expect(parseHeartbeats([{ output: '', code: 1 }, undefined])).toBeUndefined();
    expect(parseHeartbeats([ok('')])).toEqual({});
  });

  it('rides in the report of a host with pools, beside their df', () => {
    const pools = [{ id: 'p1', path: '/srv/p1' }];
    expect(reportScript(pools, 'h1')).toContain(`'/srv/p1/${HEARTBEAT_DIR}'`);
    const out = ['@@begin beat0', 'h1 2', 'h2 9', '@@end beat0 0', '@@begin list', '', '@@end list 0', '@@begin version', 'Using library: libvirt 9.0.0', '@@end version 0'].join('\n');
    expect(reportFromOutput('h1', out, pools).heartbeats).toEqual({ h1: 2, h2: 9 });
  });
});

describe('heartbeatScript run by sh', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mold-heartbeat-'));
  const run = (hostId: string) => execFileSync('sh', ['-c', heartbeatScript(dir, hostId)], { encoding: 'utf8' });
  const writerPid = (hostId: string) => Number(readFileSync(join(dir, HEARTBEAT_DIR, `${hostId}.pid`), 'utf8'));
  afterAll(() => {
    for (const id of ['ha', 'hb']) {
      try {
        // The writer leads its own session (setsid): its group takes its `sleep` with it.
        process.kill(-writerPid(id));
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts one writer per host and keeps it over later runs, and reads every host\'s age', async () => {
    run('ha');
    const first = writerPid('ha');
    await new Promise((resolve) => setTimeout(resolve, 300));
    run('ha');
    run('hb');
    expect(writerPid('ha')).toBe(first);
    expect(() => process.kill(first, 0)).not.toThrow();
    // A peer's file written 100 s ago reads 100 s old (or a second more, across a tick).
    writeFileSync(join(dir, HEARTBEAT_DIR, 'hc'), `${Math.floor(Date.now() / 1000) - 100}\n`);
    const ages = parseHeartbeats([{ output: run('hb'), code: 0 }])!;
    expect(ages.ha).toBeLessThanOrEqual(1);
    expect(ages.hc).toBeGreaterThanOrEqual(100);
    expect(ages.hc).toBeLessThanOrEqual(101);
  });

  it('starts a new writer when the old one is gone (the host rebooted)', () => {
    const old = writerPid('ha');
    process.kill(-old);
    execFileSync('sh', ['-c', `while kill -0 ${old} 2>/dev/null; do sleep 0.05; done`]);
    run('ha');
    expect(writerPid('ha')).not.toBe(old);
    expect(() => process.kill(writerPid('ha'), 0)).not.toThrow();
  });
});
