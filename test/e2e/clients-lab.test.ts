// Real clients, unchanged, against the local runtime and a one-host lab (lab 21). First Ansible's
// ngine_io.cloudstack collection (Debian's `ansible` package bundles it; it needs Debian's python3-cs):
// the repository's playbooks examples/ansible/zone.yml (zone, pod, cluster, physical and shared
// network, primary storage, the lab's host through a real agent, an offering, the lab's guest
// template) and examples/ansible/instance.yml (deploy, stop, expunge one small guest); the zone
// playbook's second run reports changed=0. Then libcloud's CloudStack driver (Debian's
// python3-libcloud, test/clients/libcloud-nodes.py) takes a node of its own through its life in that
// zone. Skipped without root (the lab) or without ansible and python3-cs; the libcloud part without
// python3-libcloud.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guestImage, labAt, type Lab } from '../lab/lab.ts';
import { enrolAgent, startAgent, type RunningAgent } from '../support/agent.ts';
import { adminClient, type ApiClient } from '../support/client.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';
import { patience, until } from '../support/wait.ts';

const PLAYBOOKS = resolve(import.meta.dirname, '../../examples/ansible');
const LIBCLOUD_NODES = resolve(import.meta.dirname, '../clients/libcloud-nodes.py');
const hasLibcloud = spawnSync('/usr/bin/python3', ['-c', 'import libcloud.compute.drivers.cloudstack'], { stdio: 'ignore' }).status === 0;
const isRoot = process.getuid?.() === 0;
const hasAnsible =
  spawnSync('ansible-playbook', ['--version'], { stdio: 'ignore' }).status === 0 &&
  spawnSync('/usr/bin/python3', ['-c', 'import cs, ansible_collections.ngine_io.cloudstack'], { stdio: 'ignore' }).status === 0;
const lab = labAt(21);
/** The API's time limit here: addHost answers once the agent has added the host, which a busy machine makes slow. */
const API_TIMEOUT_SECONDS = Math.round(patience(60_000) / 1000);

let labInfo: Lab;
let runtime: RunningRuntime;
let admin: ApiClient;
let agent: RunningAgent | undefined;
let server: Server | undefined;
let varsFile: string;
const zone = 'ansible';

interface Run {
  output: string;
  recap: { ok: number; changed: number; failed: number };
}

/** One ansible-playbook run against the runtime; its output and PLAY RECAP. */
function playbook(name: string, ...extra: string[]): Promise<Run> {
  const env = {
    ...process.env,
    CLOUDSTACK_ENDPOINT: runtime.apiUrl,
    CLOUDSTACK_KEY: runtime.credentials.apikey,
    CLOUDSTACK_SECRET: runtime.credentials.secretkey,
    CLOUDSTACK_TIMEOUT: String(API_TIMEOUT_SECONDS + 10),
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_HOST_KEY_CHECKING: 'False',
    ANSIBLE_LOCAL_TEMP: join(tmpdir(), 'mold-ansible-local'),
  };
  return new Promise((done, fail) => {
    execFile('ansible-playbook', ['-i', 'localhost,', join(PLAYBOOKS, name), '-e', `@${varsFile}`, ...extra], { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      const line = /localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)/.exec(output);
      if (!line) return fail(new Error(`ansible-playbook ${name} gave no recap (${error?.message}):\n${output}`));
      done({ output, recap: { ok: Number(line[1]), changed: Number(line[2]), failed: Number(line[3]) } });
    });
  });
}

const api = async (command: string, params: Record<string, string | number | boolean> = {}) => {
  const answer = await admin.call(command, params);
  if (answer.status !== 200) throw new Error(`${command}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body[`${command.toLowerCase()}response`];
};

const suite = isRoot && hasAnsible ? describe : describe.skip;
suite(`Ansible's ngine_io.cloudstack collection and libcloud's CloudStack driver on a lab${isRoot && hasAnsible ? '' : ' (skipped: needs root, ansible and python3-cs)'}`, () => {
  beforeAll(async () => {
    [labInfo, runtime] = await Promise.all([lab.up(1), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: '2', MOLD_API_TIMEOUT_SECONDS: String(API_TIMEOUT_SECONDS) } })]);
    admin = adminClient(runtime.apiUrl, runtime.credentials);
    // The lab's bootable guest, served on loopback for the agent to download.
    const image = readFileSync(await guestImage());
    server = createServer((_request, response) => void response.writeHead(200, { 'content-length': image.length }).end(image));
    await new Promise<void>((ready) => server!.listen(0, '127.0.0.1', ready));
    const names = lab.names;
    const vars = {
      zone,
      gateway: names.gateway,
      netmask: '255.255.255.0',
      pod_start_ip: names.address(150),
      pod_end_ip: names.address(180),
      guest_start_ip: names.address(200),
      guest_end_ip: names.address(250),
      primary_path: labInfo.primaryDir,
      host_address: labInfo.hosts[0]!.address,
      host_password: labInfo.password,
      template_url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/guest.qcow2`,
      vm: 'ansible-vm',
    };
    varsFile = join(mkdtempSync(join(tmpdir(), 'mold-ansible-')), 'vars.json');
    writeFileSync(varsFile, JSON.stringify(vars));
  }, patience(300_000));

  afterAll(async () => {
    await agent?.stop();
    server?.close();
    await runtime?.stop();
    await lab.down();
  }, patience(120_000));

  it('builds the zone: the zone alone first, then (an agent enrolled) the rest; a second run changes nothing', async () => {
    const first = await playbook('zone.yml', '--tags', 'zone');
    expect(first.recap, first.output).toEqual({ ok: 1, changed: 1, failed: 0 });
    const zoneId = (await api('listZones', { name: zone })).zone[0].id;
    agent = await startAgent((await enrolAgent(admin, runtime.apiUrl, zoneId)).dir);

    const built = await playbook('zone.yml');
    expect(built.recap.failed, built.output).toBe(0);
    // Eight tasks change; the template task, retried until the download is ready, ends on a look that changes nothing.
    expect(built.recap.changed, built.output).toBe(8);
    const [host] = (await api('listHosts', { zoneid: zoneId })).host;
    expect(host).toMatchObject({ ipaddress: labInfo.hosts[0]!.address, state: 'Up', resourcestate: 'Enabled' });
    expect((await api('listZones', { id: zoneId })).zone[0].allocationstate).toBe('Enabled');
    expect((await api('listTemplates', { templatefilter: 'all', name: `${zone}-guest` })).template[0]).toMatchObject({ isready: true });
    // The pool's size, measured by the host (the playbook gives none).
    const [pool] = (await until('the pool’s size from the host', () => api('listStoragePools', { zoneid: zoneId }), (p) => p.storagepool?.[0]?.disksizetotal > 0, { within: 60_000 })).storagepool;
    expect(pool).toMatchObject({ name: `${zone}-primary`, state: 'Up' });

    const again = await playbook('zone.yml');
    expect(again.recap, again.output).toEqual({ ok: built.recap.ok, changed: 0, failed: 0 });
  }, patience(900_000));

  it('deploys an instance (Running on the lab host, at an address of the shared network), stops it and expunges it', async () => {
    const run = await playbook('instance.yml');
    expect(run.recap, run.output).toEqual({ ok: 4, changed: 3, failed: 0 });
    const seen = JSON.parse(/"msg": "(\{.*\})"/.exec(run.output)![1]!.replace(/\\"/g, '"'));
    expect(seen).toMatchObject({ deployed: 'Running', host: labInfo.hosts[0]!.name, stopped: 'Stopped' });
    // Expunged: gone from the listing.
    expect(seen.address.split('.').slice(0, 3)).toEqual(lab.names.gateway.split('.').slice(0, 3));
    expect(await api('listVirtualMachines', { name: 'ansible-vm', listall: true })).toEqual({});
  }, patience(900_000));

  it.skipIf(!hasLibcloud)('libcloud: creates a node (started), reboots, stops, starts and destroys it with expunge', async () => {
    const env = {
      ...process.env,
      MOLD_API_URL: runtime.apiUrl,
      MOLD_APIKEY: runtime.credentials.apikey,
      MOLD_SECRETKEY: runtime.credentials.secretkey,
      MOLD_ZONE: zone,
      MOLD_SIZE: `${zone}-small`,
      MOLD_IMAGE: `${zone}-guest`,
      MOLD_NETWORK: `${zone}-guests`,
      MOLD_NODE: 'libcloud-node',
    };
    const out = await new Promise<string>((done, fail) =>
      execFile('/usr/bin/python3', [LIBCLOUD_NODES], { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => (error ? fail(new Error(`${error.message}\n${stderr}`)) : done(stdout))),
    );
    const seen = JSON.parse(out);
    // libcloud's NodeState: running.
    expect(seen.created).toMatchObject({ name: 'libcloud-node', state: 'running' });
    expect(seen.created.private_ips[0].split('.').slice(0, 3)).toEqual(lab.names.gateway.split('.').slice(0, 3));
    expect(seen).toMatchObject({ rebooted: true, stopped: 'Stopped', started: 'Running', got: 'running', destroyed: true });
    expect(seen.listed).toContain('libcloud-node');
    expect(seen.after).not.toContain('libcloud-node');
    expect(await api('listVirtualMachines', { name: 'libcloud-node', listall: true })).toEqual({});
  }, patience(900_000));
});
