// Out-of-band management through the redfish driver, end to end on lab 18: a real agent process speaks
// HTTPS to each lab host's Redfish BMC (test/lab/redfish-bmc.ts, whose power actions run the same
// chassis script as the IPMI BMCs, test/lab/bmc.sh), and every action acts on the host itself: OFF
// (upstream's GracefulShutdown) takes it down, OFF again is no error though the BMC answers 409, ON
// boots it and Mold sees it come back Up, RESET boots it afresh. The agent verifies the BMC's
// certificate (redfish.ignore.ssl false, upstream's default): host 1's is given to it in
// NODE_EXTRA_CA_CERTS, host 2's is not, so host 2's BMC is refused until redfish.ignore.ssl is true.
// A wrong password fails with upstream's authentication error; changeOutOfBandManagementPassword
// really changes the BMC account's password; the background power-state sync sees the host switched
// off and on behind Mold's back; a total power loss (BMC gone too) fails as a BMC that does not answer.
// The password never appears in a record or any output.
// Needs root; skipped otherwise.
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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

const LAB_ID = 18;
const canRunLab = process.getuid?.() === 0;
const NEW_PASSWORD = 'Renewed-4567';

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

describe.skipIf(!canRunLab)(canRunLab ? 'out-of-band management through Redfish against the lab’s BMCs' : 'out-of-band management through Redfish (skipped: the lab needs root)', () => {
  const lab = labAt(LAB_ID);
  let labInfo: Lab;
  let agent: RunningAgent | undefined;
  const hosts: any[] = [];
  const bmcs: Array<{ address: string; port: number; username: string; caFile: string }> = [];

  const run = async (command: string, params: Record<string, string | number>) => {
    const body = ok(await admin.call(command, params), command);
    expect(Object.keys(body)).toEqual(['jobid']);
    return admin.waitForJob(body.jobid as string, 60_000);
  };
  const power = (i: number, action: string) => run('issueOutOfBandManagementPowerAction', { hostid: hosts[i - 1].id, action });
  const listed = async (i: number) => ok(await admin.call('listHosts', { id: hosts[i - 1].id }), 'listHosts').host[0];
  const setting = async (name: string, value: string) => ok(await admin.call('updateConfiguration', { name, value }), 'updateConfiguration');
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
    const bmc = bmcs[i - 1]!;
    const params = { hostid: hosts[i - 1].id, driver: 'redfish', address: bmc.address, port: String(bmc.port), username: bmc.username, password: labInfo.bmcPassword, ...extra };
    return ok(await admin.call('configureOutOfBandManagement', params), 'configureOutOfBandManagement');
  };
  /** The BMC's ComputerSystem read straight from it (curl, trusting its certificate), with `password`. */
  const direct = (i: number, password: string) => {
    const bmc = bmcs[i - 1]!;
    const r = spawnSync('curl', ['-s', '--cacert', bmc.caFile, '-u', `${bmc.username}:${password}`, '-w', '\n%{http_code}', `https://${bmc.address}:${bmc.port}/redfish/v1/Systems/System.Embedded.1`], { encoding: 'utf8' });
    const lines = r.stdout.trim().split('\n');
    return { status: Number(lines.pop()), body: lines.join('\n') };
  };

  beforeAll(async () => {
    labInfo = await lab.up(2);
    for (const i of [1, 2]) bmcs.push(await lab.startRedfish(i, labInfo.bmcPassword));
    await setting('ping.interval', '2');
    const zone = ok(await admin.call('createZone', { name: unique('rfz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
    const pod = ok(await admin.call('createPod', { zoneid: zone.id, name: unique('rfp'), gateway: lab.names.gateway, netmask: '255.255.255.0', startip: lab.names.address(200) }), 'createPod').pod;
    const cluster = ok(await admin.call('addCluster', { zoneid: zone.id, podid: pod.id, clustername: unique('rfc'), hypervisor: 'KVM', clustertype: 'CloudManaged' }), 'addCluster').cluster[0];
    const enrolled = await enrolAgent(admin, world.runtime.apiUrl, zone.id);
    // The agent trusts host 1's BMC certificate (and Node's own CA list); host 2's is self-signed and unknown to it.
    agent = await startAgent(enrolled.dir, { NODE_EXTRA_CA_CERTS: bmcs[0]!.caFile });
    for (const h of labInfo.hosts) {
      const job = await addHostAnswer(admin, { zoneid: zone.id, podid: pod.id, clusterid: cluster.id, url: `ssh://${h.address}`, username: 'root', password: labInfo.password, hypervisor: 'KVM' });
      expect(job, JSON.stringify(job)).toMatchObject({ jobstatus: 1 });
      hosts.push(job.jobresult.host[0]);
    }
  }, patience(240_000));

  afterAll(async () => {
    await agent?.stop();
    await lab.down();
    // Every BMC, the Redfish ones too, ends with the lab.
    expect(lab.bmcPids()).toEqual([]);
  }, patience(120_000));

  it('configures and enables both BMCs with driver redfish; STATUS reads host 1 On over verified HTTPS', async () => {
    for (const i of [1, 2]) {
      expect((await configure(i)).outofbandmanagement).toMatchObject({ driver: 'redfish', port: '443', enabled: false, password: '****' });
      expect((await run('enableOutOfBandManagementForHost', { hostid: hosts[i - 1].id })).jobstatus).toBe(1);
    }
    expect((await listed(1)).outofbandmanagement).toMatchObject({ driver: 'redfish', enabled: true, password: '****' });
    const job = await power(1, 'STATUS');
    expect(job, JSON.stringify(job)).toMatchObject({ jobstatus: 1, jobresult: { outofbandmanagement: { hostid: hosts[0].id, powerstate: 'On', action: 'STATUS', status: true, description: '200' } } });
  });

  it('refuses a BMC whose certificate the agent does not trust, unless redfish.ignore.ssl is true', async () => {
    const refused = await power(2, 'STATUS');
    expect(refused).toMatchObject({ jobstatus: 2, jobresult: { errorcode: 530 } });
    expect(refused.jobresult.errortext).toMatch(new RegExp(`^Out-of-band Management action \\(STATUS\\) on host \\(${hosts[1].id}\\) failed with error: the BMC's certificate at https://${bmcs[1]!.address}:443/redfish/v1/Systems/ is not trusted \\(DEPTH_ZERO_SELF_SIGNED_CERT`));
    expect(running(2)).toBe(true);

    await setting('redfish.ignore.ssl', 'true');
    expect((await power(2, 'STATUS')).jobresult.outofbandmanagement).toMatchObject({ powerstate: 'On', description: '200' });
    await setting('redfish.ignore.ssl', 'false');
    expect((await power(2, 'STATUS')).jobstatus).toBe(2);
  });

  it('OFF takes the host down; OFF again succeeds though the BMC answers 409; Mold sees the host go', async () => {
    const job = await power(1, 'OFF');
    expect(job, JSON.stringify(job)).toMatchObject({ jobstatus: 1, jobresult: { outofbandmanagement: { powerstate: 'Off', action: 'OFF', description: '204' } } });
    await waitFor('host 1’s sshd and libvirtd to die', () => !alive(pidOf(1, 'sshd')) && !alive(pidOf(1, 'libvirtd')), { within: 15_000 });
    expect(running(2)).toBe(true);
    expect(JSON.parse(direct(1, labInfo.bmcPassword).body).PowerState).toBe('Off');

    const again = await power(1, 'OFF');
    expect(again, JSON.stringify(again)).toMatchObject({ jobstatus: 1, jobresult: { outofbandmanagement: { powerstate: 'Off', action: 'OFF', description: '409: already Off' } } });
    expect((await listed(1)).outofbandmanagement.powerstate).toBe('Off');
    await until('host 1 to leave Up', async () => (await listed(1)).state, (state) => state !== 'Up', { within: 60_000 });
  });

  it('ON boots the host again, and it comes back Up; RESET boots it afresh', async () => {
    const job = await power(1, 'ON');
    expect(job, JSON.stringify(job)).toMatchObject({ jobstatus: 1, jobresult: { outofbandmanagement: { powerstate: 'On', action: 'ON', description: '204' } } });
    await waitFor('host 1 to boot', () => running(1), { within: 30_000 });
    await until('host 1 to be Up again', async () => (await listed(1)).state, (state) => state === 'Up', { within: 90_000 });

    const before = pidOf(1, 'libvirtd');
    expect((await power(1, 'RESET')).jobstatus).toBe(1);
    await waitFor('host 1 to boot afresh', () => pidOf(1, 'libvirtd') !== before && running(1), { within: 30_000 });
    await until('host 1 to be Up after the reset', async () => (await listed(1)).state, (state) => state === 'Up', { within: 90_000 });
  });

  it('a wrong password fails with upstream’s authentication error, the power state Unknown and an alert', async () => {
    await configure(1, { password: 'wrong-password' });
    const refused = await power(1, 'STATUS');
    expect(refused).toMatchObject({ jobstatus: 2, jobresult: { errorcode: 530 } });
    expect(refused.jobresult.errortext).toMatch(
      new RegExp(`^Out-of-band Management action \\(STATUS\\) on host \\(${hosts[0].id}\\) failed due to authentication error: Failed to get System ID for host '${bmcs[0]!.address}' with request 'GET: https://${bmcs[0]!.address}:443/redfish/v1/Systems/'\\. The expected HTTP status code is '200' but it got '401'\\..* Please check configured credentials\\.$`),
    );
    expect((await listed(1)).outofbandmanagement.powerstate).toBe('Unknown');
    expect(ok(await admin.call('listAlerts', { type: '29' }), 'listAlerts').alert.some((a: any) => a.description.includes(hosts[0].id))).toBe(true);
    expect(running(1)).toBe(true);
  });

  it('changes the BMC account’s password for real, and uses the new one from then on', async () => {
    await configure(1);
    const job = await run('changeOutOfBandManagementPassword', { hostid: hosts[0].id, password: NEW_PASSWORD });
    expect(job, JSON.stringify(job)).toMatchObject({ jobstatus: 1, jobresult: { outofbandmanagement: { hostid: hosts[0].id, status: true } } });
    expect(direct(1, NEW_PASSWORD).status).toBe(200);
    expect(direct(1, labInfo.bmcPassword).status).toBe(401);
    expect((await power(1, 'STATUS')).jobresult.outofbandmanagement).toMatchObject({ powerstate: 'On' });
    await until('the sync to read host 1 On', async () => (await listed(1)).outofbandmanagement.powerstate, (s) => s === 'On', { within: 30_000 });
  });

  it('the background sync follows the BMC: host 1 switched off and on behind Mold’s back', async () => {
    const reset = (resetType: string) => {
      const bmc = bmcs[0]!;
      const r = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', bmc.caFile, '-u', `${bmc.username}:${NEW_PASSWORD}`, '-H', 'content-type: application/json', '-d', JSON.stringify({ ResetType: resetType }), `https://${bmc.address}:${bmc.port}/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset`], { encoding: 'utf8' });
      return Number(r.stdout);
    };
    expect(reset('ForceOff')).toBe(204);
    await waitFor('host 1 to die', () => !running(1), { within: 15_000 });
    await until('the sync to read host 1 Off', async () => (await listed(1)).outofbandmanagement.powerstate, (s) => s === 'Off', { within: 30_000 });
    expect(reset('On')).toBe(204);
    await until('the sync to read host 1 On', async () => (await listed(1)).outofbandmanagement.powerstate, (s) => s === 'On', { within: 30_000 });
    await until('host 1 to be Up again', async () => (await listed(1)).state, (state) => state === 'Up', { within: 90_000 });
  });

  it('total power loss (the BMC gone with the host): the action fails as the BMC not answering, after redfish.retries', async () => {
    await setting('redfish.ignore.ssl', 'true');
    await setting('redfish.retries', '1');
    await lab.powerLoss(2);
    expect(running(2)).toBe(false);
    const job = await power(2, 'STATUS');
    expect(job).toMatchObject({ jobstatus: 2, jobresult: { errorcode: 530 } });
    expect(job.jobresult.errortext).toBe(
      `Out-of-band Management action (STATUS) on host (${hosts[1].id}) failed with error: Failed to execute HTTP GET request retry attempt 1/1 [URL: https://${bmcs[1]!.address}:443/redfish/v1/Systems/] due to exception ECONNREFUSED: connect ECONNREFUSED ${bmcs[1]!.address}:443`,
    );
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
