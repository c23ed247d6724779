// What a test run leaves behind is found and removed by the global teardown (test/support/sweep.ts):
// a process carrying the run's mark, and a lab brought up under it. Needs root for the lab part.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, labAt } from './lab.ts';
import { processesOfRun, sweepRun } from '../support/sweep.ts';
import { patience, waitFor } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(30);

describe('sweeping what a test run left', () => {
  afterAll(() => lab.down(), patience(60_000));

  it('stops a process that carries the run\'s mark, and names it', async () => {
    const run = randomUUID();
    const stray = spawn('sleep', ['600'], { detached: true, stdio: 'ignore', env: { ...process.env, MOLD_TEST_RUN: run } });
    stray.unref();
    await waitFor('the stray to carry its mark', () => processesOfRun(run).some((p) => p.pid === stray.pid));
    expect(processesOfRun(randomUUID())).toEqual([]);

    const left = await sweepRun(run);
    expect(left).toEqual([`process ${stray.pid} was still running: sleep 600`]);
    await waitFor('the stray to end', () => !alive(stray.pid!));
    expect(await sweepRun(run)).toEqual([]);
  });

  (isRoot ? it : it.skip)('takes down a lab brought up under the run: namespaces, links, mounts, daemons', async () => {
    const run = randomUUID();
    const previous = process.env.MOLD_TEST_RUN;
    process.env.MOLD_TEST_RUN = run;
    try {
      await lab.up(1);
    } finally {
      process.env.MOLD_TEST_RUN = previous;
    }
    expect(await lab.labNetns()).toHaveLength(1);

    const left = await sweepRun(run);
    expect(left[0]).toBe(`lab 30 (${lab.names.dir}) was still up`);
    expect(await lab.labNetns()).toEqual([]);
    expect(await lab.labLinks()).toEqual([]);
    expect(await lab.labMounts()).toEqual([]);
    expect(await lab.labPids()).toEqual([]);
    expect(existsSync(lab.names.dir)).toBe(false);
  }, patience(120_000));
});
