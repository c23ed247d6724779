// The decisions behind agent leases, without storage: which hosts a renewing agent takes over (those
// of an agent whose lease lapsed, that was revoked or is gone), with the epoch raised by one; what a
// lease-less agent keeps; when an agent's answer for a host still counts; and the host's fence script.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fenceScript, FENCE_DIR } from '../../agent/fence.ts';
import { decideTakeovers, holdsLease, leaseStillHeld, leaseTiming, renewing } from '../../shared/agent-leases.ts';
import type { Agent } from '../../shared/db/agents.ts';
import type { Host } from '../../shared/db/hosts.ts';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const agent = (id: string, fields: Partial<Agent> = {}): Agent =>
  ({ id, name: id, zoneId: 'z1', state: 'Enabled', created: '2026-01-01T00:00:00+0000', leaseExpires: NOW + 10_000, ...fields }) as Agent;
const host = (id: string, agentId: string | undefined, fields: Partial<Host> = {}): Host =>
  ({ id, name: id, zoneId: 'z1', status: 'Up', agentId, leaseEpoch: 3, ...fields }) as Host;

describe('leases', () => {
  it('renews four times per lease', () => {
    expect(leaseTiming(20)).toEqual({ leaseSeconds: 20, renewSeconds: 5 });
    expect(leaseTiming(4).renewSeconds).toBe(1);
  });

  it('holds a lease while it is renewed and Enabled; one never taken holds (an agent from before leases)', () => {
    expect(holdsLease(agent('a'), NOW)).toBe(true);
    expect(holdsLease(agent('a', { leaseExpires: NOW - 1 }), NOW)).toBe(false);
    expect(holdsLease(agent('a', { state: 'Revoked' }), NOW)).toBe(false);
    expect(holdsLease(agent('a', { leaseExpires: undefined }), NOW)).toBe(true);
    expect(renewing(agent('a', { leaseExpires: undefined }), NOW)).toBe(false);
  });

  it('takes over the hosts of a lapsed, revoked or vanished agent, with the next epoch and the reason', () => {
    const agents = [agent('b'), agent('lapsed', { leaseExpires: NOW - 1 }), agent('revoked', { state: 'Revoked' }), agent('live')];
    const hosts = [
      host('h1', 'lapsed'),
      host('h2', 'revoked', { leaseEpoch: undefined }),
      host('h3', 'gone'),
      host('h4', 'live'),
      host('h5', 'b'),
      host('h6', undefined),
      host('h7', 'lapsed', { status: 'Removed' }),
      host('h8', 'lapsed', { zoneId: 'z2' }),
    ];
    expect(decideTakeovers(agents[0]!, agents, hosts, NOW)).toEqual([
      { hostId: 'h1', hostName: 'h1', from: 'lapsed', fromEpoch: 3, epoch: 4, reason: 'its lease lapsed' },
      { hostId: 'h2', hostName: 'h2', from: 'revoked', fromEpoch: 0, epoch: 1, reason: 'it was revoked' },
      { hostId: 'h3', hostName: 'h3', from: 'gone', fromEpoch: 3, epoch: 4, reason: 'it no longer exists' },
    ]);
  });

  it('takes nothing for an agent that is not renewing itself, and nothing from a lease-less agent', () => {
    const lapsed = agent('b', { leaseExpires: NOW - 1 });
    expect(decideTakeovers(lapsed, [lapsed, agent('x', { leaseExpires: NOW - 5 })], [host('h1', 'x')], NOW)).toEqual([]);
    const legacy = agent('old', { leaseExpires: undefined });
    expect(decideTakeovers(agent('b'), [agent('b'), legacy], [host('h1', 'old')], NOW)).toEqual([]);
  });

  it('counts an answer only from the holder under its epoch or newer', () => {
    expect(leaseStillHeld(host('h', 'a', { leaseEpoch: 2 }), 'a', 2)).toBe(true);
    expect(leaseStillHeld(host('h', 'a', { leaseEpoch: 2 }), 'a', 3)).toBe(true);
    expect(leaseStillHeld(host('h', 'a', { leaseEpoch: 3 }), 'a', 2)).toBe(false);
    expect(leaseStillHeld(host('h', 'b', { leaseEpoch: 3 }), 'a', 3)).toBe(false);
    expect(leaseStillHeld(undefined, 'a', 1)).toBe(true);
  });
});

describe('the host’s fence', () => {
  // The script as the host runs it, on this machine in a scratch directory in place of FENCE_DIR.
  const run = (dir: string, hostId: string, epoch: number) => {
    try {
      return { code: 0, out: execFileSync('sh', ['-c', fenceScript(hostId, epoch).replaceAll(FENCE_DIR, dir)], { encoding: 'utf8' }).trim() };
    } catch (error) {
      const e = error as { status: number; stdout: string };
      return { code: e.status, out: String(e.stdout).trim() };
    }
  };

  it('raises to a newer epoch, accepts the same, refuses an older one (exit 75, naming the fence)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mold-fence-'));
    try {
      expect(run(dir, 'h-1', 1)).toEqual({ code: 0, out: '1' });
      expect(run(dir, 'h-1', 3)).toEqual({ code: 0, out: '3' });
      expect(run(dir, 'h-1', 3)).toEqual({ code: 0, out: '3' });
      expect(run(dir, 'h-1', 2)).toEqual({ code: 75, out: '3' });
      expect(readFileSync(join(dir, 'h-1'), 'utf8').trim()).toBe('3');
      // Another host's fence is its own.
      expect(run(dir, 'h-2', 1)).toEqual({ code: 0, out: '1' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses what is not a host id or an epoch', () => {
    expect(() => fenceScript('h; rm -rf /', 1)).toThrow(/Not a host id/);
    expect(() => fenceScript('h', -1)).toThrow(/Not a lease epoch/);
  });
});
