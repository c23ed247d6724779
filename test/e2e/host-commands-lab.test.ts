// Host commands end to end with a real agent process on lab 2 (network and mount namespaces running
// sshd and libvirtd): addHost with its password (facts as the host itself reports them; the password
// nowhere in the table, the runtime's output, the execution's input or the agent's output), the
// failures an operator meets (wrong password, unreachable address, libvirtd down), reconnect, ping,
// a dead agent's timeout, updateHostPassword, template download with right and wrong checksums, and
// deleteHost. Needs root; skipped otherwise. The same commands against a played agent are in
// test/integration/host-commands.test.ts.
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { createHash } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../shared/aws.ts';
import { getHost } from '../../shared/db/hosts.ts';
import { tableName } from '../../shared/db/items.ts';
import { getTemplate } from '../../shared/db/templates.ts';
import { alive, labAt, type Lab } from '../lab/lab.ts';
import { addHostAnswer } from '../support/add-host.ts';
import { enrolAgent, startAgent, type RunningAgent } from '../support/agent.ts';
import type { ApiClient } from '../support/client.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { blankQcow2 } from '../support/vm-world.ts';
import { patience, until, waitFor } from '../support/wait.ts';
import { ok, refused, startWorld, unique, type World } from '../integration/identity-fixtures.ts';

let world: World;
let admin: ApiClient;

async function hostCount(): Promise<number> {
  return ok(await admin.call('listHosts', { pagesize: -1 }), 'listHosts').count ?? 0;
}

/** Starts a command and returns its job id, asserting the async answer. */
async function start(command: string, params: Record<string, string | number | boolean>): Promise<string> {
  const body = ok(await admin.call(command, params), command);
  expect(Object.keys(body)).toEqual(['jobid']);
  return body.jobid;
}

const LAB_ID = 2;
const canRunLab = process.getuid?.() === 0;

beforeAll(async () => {
  if (!canRunLab) return;
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
});

afterAll(async () => {
  await world?.runtime.stop();
});

describe.skipIf(!canRunLab)(canRunLab ? 'host commands with a real agent on lab 2' : 'host commands with a real agent on lab 2 (skipped: the lab needs root)', () => {
  const lab = labAt(LAB_ID);
  let labInfo: Lab;
  let labZone: any;
  let labPod: any;
  let labCluster: any;
  let agent: RunningAgent | undefined;
  let server: Server;
  let serverUrl: string;
  // A real (empty) qcow2: the agent checks a QCOW2 download with qemu-img before keeping it.
  const image = blankQcow2();
  const imageSha256 = createHash('sha256').update(image).digest('hex');
  let host1: any;

  const addLabHost = async (address: string, password: string | undefined) => {
    return addHostAnswer(admin, {
      zoneid: labZone.id,
      podid: labPod.id,
      clusterid: labCluster.id,
      url: `ssh://${address}`,
      username: 'root',
      ...(password !== undefined && { password }),
      hypervisor: 'KVM',
    });
  };

  beforeAll(async () => {
    labInfo = await lab.up(2);
    labZone = ok(await admin.call('createZone', { name: unique('labz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
    labPod = ok(await admin.call('createPod', { zoneid: labZone.id, name: unique('labp'), gateway: lab.names.gateway, netmask: '255.255.255.0', startip: lab.names.address(200) }), 'createPod').pod;
    labCluster = ok(await admin.call('addCluster', { zoneid: labZone.id, podid: labPod.id, clustername: unique('labc'), hypervisor: 'KVM', clustertype: 'CloudManaged' }), 'addCluster').cluster[0];
    ok(
      await admin.call('createStoragePool', { zoneid: labZone.id, podid: labPod.id, clusterid: labCluster.id, name: unique('labsmp'), url: `SharedMountPoint://localhost${labInfo.primaryDir}` }),
      'createStoragePool',
    );
    server = createServer((request, response) => {
      if (request.url === '/image.qcow2') response.writeHead(200, { 'content-length': image.length }).end(image);
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const enrolled = await enrolAgent(admin, world.runtime.apiUrl, labZone.id);
    agent = await startAgent(enrolled.dir);
  }, patience(180_000));

  afterAll(async () => {
    await agent?.stop();
    server?.close();
    await lab.down();
  }, patience(120_000));

  it('adds host 1 with its password: Up, with the CPU facts virsh nodeinfo gives and /proc/meminfo’s memory', async () => {
    const job = await addLabHost(labInfo.hosts[0].address, labInfo.password);
    expect(job, JSON.stringify(job)).toMatchObject({ jobstatus: 1 });
    host1 = job.jobresult.host[0];
    const nodeinfo = Object.fromEntries(
      (await lab.hostExec(1, ['virsh', '-c', 'qemu:///system', 'nodeinfo'])).stdout
        .split('\n')
        .filter((line) => line.includes(':'))
        .map((line) => [line.slice(0, line.indexOf(':')).trim(), line.slice(line.indexOf(':') + 1).trim()]),
    );
    const hostname = (await lab.hostExec(1, ['hostname'])).stdout.trim();
    // Memory as upstream's KVMHostInfo reads it (MemTotal of /proc/meminfo); nodeinfo's figure can be smaller.
    const memTotalKiB = Number(/MemTotal:\s+(\d+) kB/.exec((await lab.hostExec(1, ['cat', '/proc/meminfo'])).stdout)![1]);
    expect(host1).toMatchObject({
      name: hostname,
      state: 'Up',
      resourcestate: 'Enabled',
      ipaddress: labInfo.hosts[0].address,
      cpunumber: Number(nodeinfo['CPU(s)']),
      cpuspeed: Number.parseInt(nodeinfo['CPU frequency'], 10),
      memorytotal: memTotalKiB * 1024,
      hypervisor: 'KVM',
      capabilities: 'hvm',
    });
    expect(await getHost(host1.id)).toMatchObject({ hostUuid: labInfo.hosts[0].hostUuid, domaintype: expect.stringMatching(/^(kvm|qemu)$/) });
    expect(agent!.output()).not.toContain(labInfo.password);
    expect(world.runtime.output()).not.toContain(labInfo.password);
    const scan = await dynamo().send(new ScanCommand({ TableName: tableName() }));
    expect(JSON.stringify(scan.Items)).not.toContain(labInfo.password);
  });

  it('fails naming the cause for a wrong password and an unreachable address, leaving no host', async () => {
    const hosts = await hostCount();
    const wrong = await addLabHost(labInfo.hosts[1].address, 'not-the-password');
    expect(wrong).toMatchObject({ jobstatus: 2, jobresult: { errortext: expect.stringContaining(`Authentication failed for root@${labInfo.hosts[1].address}`) } });
    const unreachable = await addLabHost(lab.names.address(99), labInfo.password);
    expect(unreachable).toMatchObject({ jobstatus: 2, jobresult: { errortext: expect.stringContaining(`Cannot reach ${lab.names.address(99)}:22`) } });
    expect(await hostCount()).toBe(hosts);
  });

  it('reconnects and pings host 1, and re-keys it with updateHostPassword', async () => {
    const reconnected = await admin.waitForJob(await start('reconnectHost', { id: host1.id }), 60_000);
    expect(reconnected).toMatchObject({ jobstatus: 1, jobresult: { host: { id: host1.id, state: 'Up', cpunumber: host1.cpunumber } } });
    const pinged = await admin.waitForJob(await start('pingHost', { id: host1.id }), 60_000);
    expect(pinged).toMatchObject({ jobstatus: 1, jobresult: { success: true, displaytext: expect.stringMatching(/^Host .* answered through its agent in \d+ ms$/) } });
    const rekeyed = await admin.waitForJob(await start('updateHostPassword', { hostid: host1.id, username: 'root', password: labInfo.password }), 60_000);
    expect(rekeyed).toMatchObject({ jobstatus: 1, jobresult: { success: true } });
    const wrong = await admin.waitForJob(await start('updateHostPassword', { hostid: host1.id, username: 'root', password: 'not-the-password' }), 60_000);
    expect(wrong).toMatchObject({ jobstatus: 2, jobresult: { errortext: expect.stringMatching(/Authentication failed/) } });
  });

  it('downloads a registered template from a loopback server into the lab’s primary storage, and reports a wrong checksum', async () => {
    const osType = ok(await admin.call('listOsTypes', { pagesize: 1 }), 'listOsTypes').ostype[0].id;
    const register = async (checksum: string) =>
      ok(
        await admin.call('registerTemplate', { name: unique('labtpl'), url: `${serverUrl}/image.qcow2`, format: 'QCOW2', hypervisor: 'KVM', zoneid: labZone.id, ostypeid: osType, checksum }),
        'registerTemplate',
      ).template[0];
    const rowOf = async (id: string) => ok(await admin.call('listTemplates', { templatefilter: 'all', id, zoneid: labZone.id }), 'listTemplates').template[0];
    const good = await register(`{SHA-256}${imageSha256}`);
    await until('the template download to end', () => rowOf(good.id), (row) => row.isready === true || /rror|mismatch/i.test(row.status), { within: 60_000 });
    expect(await rowOf(good.id)).toMatchObject({ isready: true, status: 'Download Complete', size: image.length });
    const file = join(labInfo.primaryDir, `${good.id}.qcow2`);
    expect(readFileSync(file).equals(image)).toBe(true);

    const bad = await register(`{SHA-256}${'0'.repeat(64)}`);
    await until('the bad download to fail', async () => (await getTemplate(bad.id))!.zones[labZone.id]?.downloadState, (state) => state === 'DOWNLOAD_ERROR', { within: 60_000 });
    const row = await rowOf(bad.id);
    expect(row.isready).toBe(false);
    expect(row.status).toMatch(new RegExp(`${imageSha256}|${'0'.repeat(64)}`));
    expect(existsSync(join(labInfo.primaryDir, `${bad.id}.qcow2`))).toBe(false);
  });

  it('fails naming the cause when libvirtd is not running on the host', async () => {
    const pid = Number(readFileSync(join(labInfo.dir, 'h2', 'libvirtd.pid'), 'utf8').trim());
    process.kill(pid, 'SIGTERM');
    await waitFor('libvirtd to exit', () => !alive(pid), { within: 10_000 });
    const job = await addLabHost(labInfo.hosts[1].address, labInfo.password);
    expect(job).toMatchObject({ jobstatus: 2, jobresult: { errortext: expect.stringMatching(/libvirt/i) } });
    expect(ok(await admin.call('listHosts', { zoneid: labZone.id }), 'listHosts').count).toBe(1);
  });

  it('fails a command on timeout with a clear error when the agent is down, then deletes the host', async () => {
    await agent!.stop();
    ok(await admin.call('updateConfiguration', { name: 'agent.command.timeout', value: '3' }), 'updateConfiguration');
    try {
      const job = await admin.waitForJob(await start('pingHost', { id: host1.id }), 30_000);
      expect(job).toMatchObject({ jobstatus: 2, jobresultcode: 530, jobresult: { errortext: 'The agent did not answer in time; the host or its agent may be down.' } });
    } finally {
      ok(await admin.call('resetConfiguration', { name: 'agent.command.timeout' }), 'resetConfiguration');
    }
    refused(await admin.call('deleteHost', { id: host1.id }), 'deleteHost', 530, /not in maintenance mode/);
    // As upstream, a Disabled host is no more deletable than an Enabled one: forced (it holds no VM).
    ok(await admin.call('updateHost', { id: host1.id, allocationstate: 'Disable' }), 'updateHost');
    refused(await admin.call('deleteHost', { id: host1.id }), 'deleteHost', 530, /not in maintenance mode/);
    expect(ok(await admin.call('deleteHost', { id: host1.id, forced: true }), 'deleteHost')).toEqual({ success: true });
    expect(await getHost(host1.id)).toBeUndefined();
  });
});
