// Out-of-band management end to end on lab 22: a real agent process runs the real ipmitool against each
// lab host's BMC (OpenIPMI's ipmi_sim; test/lab/bmc.sh is its chassis), and every power action acts on
// the host itself: OFF cuts its link and kills sshd, libvirtd and qemu; ON boots it again and Mold sees
// it come back Up; RESET boots it afresh; SOFT powers it off. The background power-state sync (the
// agent's reports, ping.interval 2 s here) sees a host switched on behind Mold's back. A wrong password
// and an address where no BMC answers fail the job with a clear cause; changeOutOfBandManagementPassword
// really changes the BMC's password. A total power loss takes the BMC with the host. The password never appears in a record, the runtime's output, the
// agent's output or an execution's input. Needs root; skipped otherwise.
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../shared/aws.ts';
import { tableName } from '../../shared/db/items.ts';
import { alive, labAt, type Lab } from '../lab/lab.ts';
import { enrolAgent, startAgent, type RunningAgent } from '../support/agent.ts';
import { addHostAnswer } from '../support/add-host.ts';
import type { ApiClient } from '../support/client.ts';
import { ApiClient as Client } from '../support/client.ts';
import { startRuntime, useRuntimeEndpoints } from '../support/runtime.ts';
import { patience, until, waitFor } from '../support/wait.ts';
import { ok, unique, type World } from '../integration/identity-fixtures.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const LAB_ID = 22;
const canRunLab = process.getuid?.() === 0;
const NEW_PASSWORD = 'Renewed-0123';

let world: World;
let admin: ApiClient;

beforeAll(async () => {
  if (!canRunLab) return;
  // The sweeper every 2 s: a powered-off host leaves Up within seconds of its reports stopping.
  const runtime = await startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: '2' } });
  world = { runtime, admin: new Client(runtime.apiUrl, runtime.credentials), rootDomainId: runtime.credentials.domainid };
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
});

afterAll(async () => {
  await world?.runtime.stop();
});

describe.skipIf(!canRunLab)(canRunLab ? 'out-of-band management against the lab’s BMCs' : 'out-of-band management against the lab’s BMCs (skipped: the lab needs root)', () => {
  const lab = labAt(LAB_ID);
  let labInfo: Lab;
  let agent: RunningAgent | undefined;
  const hosts: any[] = [];

  const start = async (command: string, params: Record<string, string | number>) => {
    const body = ok(await admin.call(command, params), command);
    expect(Object.keys(body)).toEqual(['jobid']);
    return body.jobid as string;
  };
  const run = async (command: string, params: Record<string, string | number>, quietMs = 60_000) => admin.waitForJob(await start(command, params), quietMs);
  const power = (i: number, action: string) => run('issueOutOfBandManagementPowerAction', { hostid: hosts[i - 1].id, action });
  const listed = async (i: number) => ok(await admin.call('listHosts', { id: hosts[i - 1].id }), 'listHosts').host[0];
  const pidOf = (i: number, daemon: string) => {
    try {
      return Number(readFileSync(join(labInfo.dir, `h${i}`, `${daemon}.pid`), 'utf8').trim());
    } catch {
      return 0;
    }
  };
  /** The host runs: its daemons live (what its BMC's power state must agree with). */
  const running = (i: number) => ['sshd', 'libvirtd'].every((d) => alive(pidOf(i, d)));
  const configure = async (i: number, extra: Record<string, string> = {}) => {
    const bmc = labInfo.hosts[i - 1].bmc;
    const params = { hostid: hosts[i - 1].id, driver: 'ipmitool', address: bmc.address, port: String(bmc.port), username: bmc.username, password: labInfo.bmcPassword, ...extra };
    return ok(await admin.call('configureOutOfBandManagement', params), 'configureOutOfBandManagement');
  };

  beforeAll(async () => {
    labInfo = await lab.up(2);
    ok(await admin.call('updateConfiguration', { name: 'ping.interval', value: '2' }), 'updateConfiguration');
    const zone = ok(await admin.call('createZone', { name: unique('oobz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
    const pod = ok(await admin.call('createPod', { zoneid: zone.id, name: unique('oobp'), gateway: lab.names.gateway, netmask: '255.255.255.0', startip: lab.names.address(200) }), 'createPod').pod;
    const cluster = ok(await admin.call('addCluster', { zoneid: zone.id, podid: pod.id, clustername: unique('oobc'), hypervisor: 'KVM', clustertype: 'CloudManaged' }), 'addCluster').cluster[0];
    const enrolled = await enrolAgent(admin, world.runtime.apiUrl, zone.id);
    agent = await startAgent(enrolled.dir);
    for (const h of labInfo.hosts) {
      const job = await addHostAnswer(admin, { zoneid: zone.id, podid: pod.id, clusterid: cluster.id, url: `ssh://${h.address}`, username: 'root', password: labInfo.password, hypervisor: 'KVM' });
      expect(job, JSON.stringify(job)).toMatchObject({ jobstatus: 1 });
      hosts.push(job.jobresult.host[0]);
    }
  }, patience(240_000));

  afterAll(async () => {
    await agent?.stop();
    await lab.down();
    // Every BMC ends with the lab.
    expect(lab.bmcPids()).toEqual([]);
  }, patience(120_000));

  it('configures and enables both BMCs; STATUS reads the host On', async () => {
    for (const i of [1, 2]) {
      expect((await configure(i)).outofbandmanagement).toMatchObject({ enabled: false, password: '****' });
      expect((await run('enableOutOfBandManagementForHost', { hostid: hosts[i - 1].id })).jobstatus).toBe(1);
    }
    const job = await power(1, 'STATUS');
    expect(job, JSON.stringify(job)).toMatchObject({ jobstatus: 1, jobresult: { outofbandmanagement: { hostid: hosts[0].id, powerstate: 'On', action: 'STATUS', status: true, description: 'Chassis Power is on' } } });
  });

  it('OFF cuts the host off and kills its processes; OFF again is no error; Mold sees the host go', async () => {
    const job = await power(1, 'OFF');
    expect(job, JSON.stringify(job)).toMatchObject({ jobstatus: 1, jobresult: { outofbandmanagement: { powerstate: 'Off', action: 'OFF', description: 'Chassis Power Control: Down/Off' } } });
    await waitFor('host 1’s sshd and libvirtd to die', () => !alive(pidOf(1, 'sshd')) && !alive(pidOf(1, 'libvirtd')), { within: 10_000 });
    expect(running(2)).toBe(true);
    expect((await power(1, 'OFF')).jobresult.outofbandmanagement).toMatchObject({ powerstate: 'Off' });
    expect((await listed(1)).outofbandmanagement.powerstate).toBe('Off');
    await until('host 1 to leave Up', async () => (await listed(1)).state, (state) => state !== 'Up', { within: 60_000 });
  });

  it('ON boots the host again, and it comes back Up', async () => {
    const job = await power(1, 'ON');
    expect(job, JSON.stringify(job)).toMatchObject({ jobstatus: 1, jobresult: { outofbandmanagement: { powerstate: 'On', action: 'ON' } } });
    await waitFor('host 1 to boot', () => running(1), { within: 30_000 });
    await until('host 1 to be Up again', async () => (await listed(1)).state, (state) => state === 'Up', { within: 90_000 });
  });

  it('RESET boots the host afresh; SOFT powers it off; the background sync sees it switched on behind Mold’s back', async () => {
    const before = pidOf(1, 'libvirtd');
    expect((await power(1, 'RESET')).jobstatus).toBe(1);
    await waitFor('host 1 to boot afresh', () => pidOf(1, 'libvirtd') !== before && running(1), { within: 30_000 });

    expect((await power(1, 'SOFT')).jobstatus).toBe(1);
    await waitFor('host 1 to shut down', () => !running(1), { within: 30_000 });
    await until('the sync to read host 1 Off', async () => (await listed(1)).outofbandmanagement.powerstate, (s) => s === 'Off', { within: 30_000 });

    // Behind Mold's back: straight to the BMC with ipmitool.
    const bmc = labInfo.hosts[0].bmc;
    const { spawnSync } = await import('node:child_process');
    const direct = spawnSync('ipmitool', ['-I', 'lanplus', '-C', '3', '-H', bmc.address, '-U', bmc.username, '-E', 'chassis', 'power', 'on'], { env: { ...process.env, IPMI_PASSWORD: labInfo.bmcPassword }, encoding: 'utf8' });
    expect(direct.stdout).toContain('Up/On');
    await until('the sync to read host 1 On', async () => (await listed(1)).outofbandmanagement.powerstate, (s) => s === 'On', { within: 30_000 });
    await until('host 1 to be Up again', async () => (await listed(1)).state, (state) => state === 'Up', { within: 90_000 });
  });

  it('fails with a clear cause for a wrong password and for an address where no BMC answers', async () => {
    await configure(2, { password: 'wrong-password' });
    const refused = await power(2, 'STATUS');
    expect(refused).toMatchObject({ jobstatus: 2, jobresult: { errorcode: 530 } });
    expect(refused.jobresult.errortext).toMatch(new RegExp(`^Out-of-band Management action \\(STATUS\\) on host \\(${hosts[1].id}\\) failed due to authentication error: .*RAKP.*\\. Please check configured credentials\\.$`));
    expect((await listed(2)).outofbandmanagement.powerstate).toBe('Unknown');
    expect(ok(await admin.call('listAlerts', { type: '29' }), 'listAlerts').alert.some((a: any) => a.description.includes(hosts[1].id))).toBe(true);

    await configure(2, { address: lab.names.address(199) });
    const silent = await power(2, 'OFF');
    expect(silent).toMatchObject({ jobstatus: 2, jobresult: { errorcode: 530 } });
    expect(silent.jobresult.errortext).toMatch(new RegExp(`^Out-of-band Management action \\(OFF\\) on host \\(${hosts[1].id}\\) failed with error: `));
    expect(running(2)).toBe(true);
  });

  it('changes the BMC password for real, and uses the new one from then on', async () => {
    await configure(2);
    const job = await run('changeOutOfBandManagementPassword', { hostid: hosts[1].id, password: NEW_PASSWORD });
    expect(job, JSON.stringify(job)).toMatchObject({ jobstatus: 1, jobresult: { outofbandmanagement: { hostid: hosts[1].id, status: true } } });
    const bmc = labInfo.hosts[1].bmc;
    const { spawnSync } = await import('node:child_process');
    const status = (password: string) =>
      spawnSync('ipmitool', ['-I', 'lanplus', '-C', '3', '-H', bmc.address, '-U', bmc.username, '-E', 'chassis', 'power', 'status'], { env: { ...process.env, IPMI_PASSWORD: password }, encoding: 'utf8' });
    expect(status(NEW_PASSWORD).stdout).toContain('Chassis Power is on');
    expect(status(labInfo.bmcPassword).status).not.toBe(0);
    expect((await power(2, 'STATUS')).jobresult.outofbandmanagement).toMatchObject({ powerstate: 'On' });
  });

  it('total power loss (the BMC gone with the host): the action fails as the BMC not answering, and the host is dead', async () => {
    await lab.powerLoss(2);
    expect(running(2)).toBe(false);
    const job = await power(2, 'STATUS');
    expect(job).toMatchObject({ jobstatus: 2, jobresult: { errorcode: 530 } });
    expect(job.jobresult.errortext).toMatch(new RegExp(`^Out-of-band Management action \\(STATUS\\) on host \\(${hosts[1].id}\\) failed with error: `));
    expect((await listed(2)).outofbandmanagement.powerstate).toBe('Unknown');
  });

  it('never shows the BMC password: not in a record, the runtime’s output or the agent’s', async () => {
    const items: unknown[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await dynamo().send(new ScanCommand({ TableName: tableName(), ExclusiveStartKey }));
      items.push(...(page.Items ?? []));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    for (const secret of [labInfo.bmcPassword, NEW_PASSWORD]) {
      expect(JSON.stringify(items)).not.toContain(secret);
      expect(world.runtime.output()).not.toContain(secret);
      expect(agent!.output()).not.toContain(secret);
    }
  });
});
