// Virtual machines end to end on a two-host lab, through the HTTP API and a real agent: deploy (the
// domain on the chosen host has the offering's vCPUs and memory, a qcow2 overlay on the template and
// a config drive with the key and user data) → stop → start on the other host → reboot → destroy →
// recover → expunge (both hosts left clean); host anti-affinity; 20 concurrent deploys against
// capacity for 12. Needs root (the lab); skipped otherwise.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labAt, type Lab } from '../lab/lab.ts';
import { enrolAgent, startAgent, type RunningAgent } from '../support/agent.ts';
import { adminClient, type ApiClient } from '../support/client.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(6);
const VLAN = 100;

let labInfo: Lab;
let runtime: RunningRuntime;
let admin: ApiClient;
let agent: RunningAgent | undefined;
let server: Server;
let zoneId: string;
let networkId: string;
let templateId: string;
let offeringId: string;
let keyName: string;
let publicKey: string;
const hosts: Array<{ id: string; index: number; cpuTotal: number }> = [];

type Params = Record<string, string | number | boolean>;

async function ok(command: string, params: Params = {}) {
  const answer = await admin.call(command, params, { method: 'POST' });
  if (answer.status !== 200) throw new Error(`${command}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body[`${command.toLowerCase()}response`];
}

async function job(command: string, params: Params, timeoutMs = 120_000) {
  const { jobid } = await ok(command, params);
  return admin.waitForJob(jobid, timeoutMs, 50);
}

async function done(command: string, params: Params, timeoutMs = 120_000) {
  const result = await job(command, params, timeoutMs);
  if (result.jobstatus !== 1) throw new Error(`${command} failed: ${JSON.stringify(result.jobresult)}\n${agent?.output().slice(-3000)}`);
  return result.jobresult;
}

async function until<T>(what: string, read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const vm = async (id: string) => ((await ok('listVirtualMachines', { listall: true, pagesize: 500 })).virtualmachine ?? []).find((v: any) => v.id === id);
const hostIndex = (hostId: string) => hosts.find((h) => h.id === hostId)!.index;
const virsh = (index: number, ...args: string[]) => lab.hostExec(index, ['virsh', '-c', 'qemu:///system', ...args], { allowFail: true });
const domains = async (index: number) => (await virsh(index, 'list', '--all', '--name')).stdout.split('\n').map((l) => l.trim()).filter(Boolean);

function deployParams(name: string, extra: Params = {}): Params {
  return { zoneid: zoneId, serviceofferingid: offeringId, templateid: templateId, networkids: networkId, name, ...extra };
}

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'virtual machines on a two-host lab' : 'virtual machines on a two-host lab (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    [labInfo, runtime] = await Promise.all([lab.up(2), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: '2' } })]);
    admin = adminClient(runtime.apiUrl, runtime.credentials);
    const gw = lab.names.gateway;

    const dir = mkdtempSync(join(tmpdir(), 'mold-vm-template-'));
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'blank.qcow2'), '256M']);
    const image = readFileSync(join(dir, 'blank.qcow2'));
    server = createServer((_req, res) => void res.writeHead(200, { 'content-length': image.length }).end(image));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));

    zoneId = (await ok('createZone', { name: 'vmlab', networktype: 'Advanced', dns1: gw, internaldns1: gw })).zone.id;
    const podId = (await ok('createPod', { name: 'p1', zoneid: zoneId, gateway: gw, netmask: '255.255.255.0', startip: lab.names.hostAddress(100), endip: lab.names.hostAddress(150) })).pod.id;
    const clusterId = (await ok('addCluster', { clustername: 'c1', zoneid: zoneId, podid: podId, hypervisor: 'KVM', clustertype: 'CloudManaged' })).cluster[0].id;
    // Physical networks are made while the zone is still disabled, as upstream requires.
    const physicalId = (await done('createPhysicalNetwork', { zoneid: zoneId, name: 'phys', vlan: '200-299', isolationmethods: 'VLAN' })).physicalnetwork.id;
    const sharedOffering = (await ok('listNetworkOfferings', { name: 'DefaultSharedNetworkOffering' })).networkoffering[0].id;
    networkId = (
      await ok('createNetwork', {
        name: 'guests', displaytext: 'guests', networkofferingid: sharedOffering, zoneid: zoneId, physicalnetworkid: physicalId,
        vlan: VLAN, gateway: '10.66.0.1', netmask: '255.255.255.0', startip: '10.66.0.10', endip: '10.66.0.250',
      })
    ).network.id;

    for (const [command, id] of [['updateZone', zoneId], ['updatePod', podId], ['updateCluster', clusterId]] as const) await ok(command, { id, allocationstate: 'Enabled' });
    await ok('createStoragePool', { name: 'primary', zoneid: zoneId, podid: podId, clusterid: clusterId, scope: 'cluster', url: `SharedMountPoint://${labInfo.primaryDir}`, capacitybytes: 100 * 1024 ** 3 });

    // This machine's kernel cannot make 802.1Q links: guests get a VLAN bridge without an uplink.
    const enrolled = await enrolAgent(admin, runtime.apiUrl, zoneId);
    agent = await startAgent(enrolled.dir, { MOLD_AGENT_VLAN_FALLBACK: 'isolated' });
    for (const h of labInfo.hosts) {
      const added = await done('addHost', { zoneid: zoneId, podid: podId, clusterid: clusterId, url: h.address, username: 'root', password: labInfo.password, hypervisor: 'KVM' });
      const host = added.host[0];
      hosts.push({ id: host.id, index: h.index, cpuTotal: host.cpunumber * host.cpuspeed });
    }

    const osTypeId = (await ok('listOsTypes', { keyword: 'Other' })).ostype[0].id;
    templateId = (
      await ok('registerTemplate', {
        name: 'blank', displaytext: 'blank', format: 'QCOW2', hypervisor: 'KVM', zoneid: zoneId, ostypeid: osTypeId,
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/blank.qcow2`,
        checksum: `{SHA-256}${createHash('sha256').update(image).digest('hex')}`,
      })
    ).template[0].id;
    await until('the template to be ready', async () => (await ok('listTemplates', { id: templateId, templatefilter: 'all' })).template[0], (t) => t.isready === true || /rror|fail/i.test(t.status));

    // Guests here have no OS to answer ACPI: destroying them need not wait for a graceful stop.
    await ok('updateConfiguration', { name: 'vm.destroy.forcestop', value: true });
    offeringId = (await ok('createServiceOffering', { name: 'tiny', displaytext: 'tiny', cpunumber: 1, cpuspeed: 500, memory: 64 })).serviceoffering.id;
    const pair = await ok('createSSHKeyPair', { name: 'lab-key' });
    keyName = pair.keypair.name;
    const keyDir = mkdtempSync(join(tmpdir(), 'mold-key-'));
    execFileSync('sh', ['-c', `umask 077; cat > ${keyDir}/id`], { input: pair.keypair.privatekey });
    publicKey = execFileSync('ssh-keygen', ['-y', '-f', `${keyDir}/id`], { encoding: 'utf8' }).trim();
  }, 300_000);

  afterAll(async () => {
    await agent?.stop();
    await runtime?.stop();
    server?.close();
    await lab.down();
  }, 120_000);

  let first: any;

  it('deploys a VM: the domain on its host has the offering, an overlay on the template and a config drive with key and user data', async () => {
    const userData = '#cloud-config\nruncmd:\n  - echo hello from mold\n';
    const deployed = await done('deployVirtualMachine', deployParams('web-1', { keypair: keyName, userdata: Buffer.from(userData).toString('base64'), displayname: 'Web one' }));
    first = deployed.virtualmachine;
    expect(first).toMatchObject({ name: 'web-1', displayname: 'Web one', state: 'Running', cpunumber: 1, cpuspeed: 500, memory: 64, zoneid: zoneId, templateid: templateId, keypairs: keyName });
    expect(first.nic[0]).toMatchObject({ networkid: networkId, gateway: '10.66.0.1', netmask: '255.255.255.0', isdefault: true });
    expect(first.instancename).toMatch(/^i-\d+-\d+-VM$/);

    const index = hostIndex(first.hostid);
    expect(await domains(index)).toContain(first.instancename);
    const xml = (await virsh(index, 'dumpxml', first.instancename)).stdout;
    expect(xml).toMatch(/<vcpu[^>]*>1<\/vcpu>/);
    expect(xml).toMatch(/<memory unit='KiB'>65536<\/memory>/);
    const root = /<disk type='file' device='disk'>[\s\S]*?<source file='([^']+)'/.exec(xml)![1]!;
    expect(root.startsWith(labInfo.primaryDir)).toBe(true);
    expect(execFileSync('qemu-img', ['info', '-U', '--output=json', root], { encoding: 'utf8' })).toContain(`${templateId}.qcow2`);
    const iso = /<disk type='file' device='cdrom'>[\s\S]*?<source file='([^']+)'/.exec(xml)![1]!;
    const meta = JSON.parse(execFileSync('isoinfo', ['-R', '-x', '/openstack/latest/meta_data.json', '-i', iso], { encoding: 'utf8' }));
    expect(meta.hostname).toBe('web-1');
    expect(Object.values(meta.public_keys).map((k) => String(k).trim().split(' ').slice(0, 2).join(' '))).toContain(publicKey.split(' ').slice(0, 2).join(' '));
    expect(execFileSync('isoinfo', ['-R', '-x', '/openstack/latest/user_data', '-i', iso], { encoding: 'utf8' })).toBe(userData);
    expect(xml).toContain(`<mac address='${first.nic[0].macaddress}'/>`);
    expect(xml).toMatch(/<graphics type='vnc'/);
  }, 180_000);

  it('stops, starts on the other host, reboots, destroys, recovers and expunges, leaving both hosts clean', async () => {
    const stopped = await done('stopVirtualMachine', { id: first.id, forced: true });
    expect(stopped.virtualmachine.state).toBe('Stopped');
    const other = hosts.find((h) => h.id !== first.hostid)!;
    const started = await done('startVirtualMachine', { id: first.id, hostid: other.id });
    expect(started.virtualmachine).toMatchObject({ state: 'Running', hostid: other.id });
    expect((await virsh(other.index, 'domstate', first.instancename)).stdout.trim()).toBe('running');
    expect((await done('rebootVirtualMachine', { id: first.id })).virtualmachine.state).toBe('Running');

    expect((await done('destroyVirtualMachine', { id: first.id })).virtualmachine.state).toBe('Destroyed');
    expect((await vm(first.id)).state).toBe('Destroyed');
    expect((await ok('recoverVirtualMachine', { id: first.id })).virtualmachine.state).toBe('Stopped');
    await done('destroyVirtualMachine', { id: first.id, expunge: true });
    expect(await vm(first.id)).toBeUndefined();
    for (const h of hosts) expect(await domains(h.index)).not.toContain(first.instancename);
    const files = execFileSync('ls', [labInfo.primaryDir], { encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(files.filter((f) => f.includes(first.id))).toEqual([]);
    expect(files.filter((f) => f !== `${templateId}.qcow2` && !f.startsWith('marker'))).toEqual([]);
  }, 240_000);

  it('keeps the VMs of a host anti-affinity group on different hosts, and refuses a third with 533', async () => {
    const group = (await done('createAffinityGroup', { name: 'spread', type: 'host anti-affinity' })).affinitygroup;
    const a = (await done('deployVirtualMachine', deployParams('spread-1', { affinitygroupids: group.id }))).virtualmachine;
    const b = (await done('deployVirtualMachine', deployParams('spread-2', { affinitygroupids: group.id }))).virtualmachine;
    expect(a.hostid).not.toBe(b.hostid);
    const third = await job('deployVirtualMachine', deployParams('spread-3', { affinitygroupids: group.id }));
    expect(third.jobstatus).toBe(2);
    expect(third.jobresult.errorcode).toBe(533);
    for (const v of [a, b]) await done('destroyVirtualMachine', { id: v.id, expunge: true });
  }, 240_000);

  it('runs exactly as many of 20 concurrent deploys as the hosts hold (12); the other 8 fail, no host over-committed', async () => {
    // Six of these fit on each host and a seventh does not: 12 in all.
    const speed = Math.floor(Math.min(...hosts.map((h) => h.cpuTotal)) / 6);
    const big = (await ok('createServiceOffering', { name: 'sixth', displaytext: 'a sixth of a host', cpunumber: 1, cpuspeed: speed, memory: 64 })).serviceoffering.id;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => job('deployVirtualMachine', deployParams(`crowd-${i + 1}`, { serviceofferingid: big }), 300_000)),
    );
    const succeeded = results.filter((r) => r.jobstatus === 1);
    const failed = results.filter((r) => r.jobstatus === 2);
    expect(succeeded).toHaveLength(12);
    expect(failed).toHaveLength(8);
    expect(failed.every((r) => r.jobresult.errorcode === 533)).toBe(true);
    const running = (await ok('listVirtualMachines', { listall: true, state: 'Running', pagesize: 100 })).virtualmachine ?? [];
    expect(running).toHaveLength(12);
    for (const h of hosts) {
      const listed = (await ok('listHosts', { id: h.id })).host[0];
      expect(listed.cpuallocatedvalue).toBeLessThanOrEqual(h.cpuTotal);
      expect((await domains(h.index)).filter((d) => d.startsWith('i-'))).toHaveLength(6);
    }
    await Promise.all(succeeded.map((r) => done('destroyVirtualMachine', { id: r.jobresult.virtualmachine.id, expunge: true }, 300_000)));
    for (const h of hosts) expect((await domains(h.index)).filter((d) => d.startsWith('i-'))).toEqual([]);
  }, 600_000);
});
