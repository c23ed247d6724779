// Virtual machines end to end on a two-host lab, through the HTTP API and a real agent: deploy (the
// domain on the chosen host has the offering's vCPUs and memory, a qcow2 overlay on the template and
// a config drive with the key and user data) → stop → start on the other host → reboot → destroy →
// recover → expunge (both hosts left clean); a data volume attached live; the console websocket; a VM
// killed behind Mold's back shows Stopped; host anti-affinity; 20 concurrent deploys against capacity
// for 12. Needs root (the lab); skipped otherwise.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { labAt, type Lab } from '../lab/lab.ts';
import { adminClient } from '../support/client.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';
import { graceMs } from '../../shared/vm-power-sync.ts';
import { buildVmWorld, PING_INTERVAL_SECONDS, type VmWorld } from '../support/vm-world.ts';
import { patience, until } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(6);

let labInfo: Lab;
let runtime: RunningRuntime;
let world: VmWorld;
let keyName: string;
let publicKey: string;

const ok = (command: string, params: Record<string, string | number | boolean> = {}) => world.ok(command, params);
const job = (command: string, params: Record<string, string | number | boolean>, timeoutMs?: number) => world.job(command, params, timeoutMs);
const done = (command: string, params: Record<string, string | number | boolean>, timeoutMs?: number) => world.done(command, params, timeoutMs);
const deployParams = (name: string, extra: Record<string, string | number | boolean> = {}) => world.deployParams(name, extra);
const vm = async (id: string) => ((await ok('listVirtualMachines', { listall: true, pagesize: 500 })).virtualmachine ?? []).find((v: any) => v.id === id);
const hostIndex = (hostId: string) => world.hosts.find((h) => h.id === hostId)!.index;
const virsh = (index: number, ...args: string[]) => lab.hostExec(index, ['virsh', '-c', 'qemu:///system', ...args], { allowFail: true });
const domains = async (index: number) => (await virsh(index, 'list', '--all', '--name')).stdout.split('\n').map((l) => l.trim()).filter(Boolean);

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'virtual machines on a two-host lab' : 'virtual machines on a two-host lab (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    [labInfo, runtime] = await Promise.all([lab.up(2), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: '2' } })]);
    world = await buildVmWorld(lab, labInfo, runtime, adminClient(runtime.apiUrl, runtime.credentials));
    const pair = await ok('createSSHKeyPair', { name: 'lab-key' });
    keyName = pair.keypair.name;
    const keyDir = mkdtempSync(join(tmpdir(), 'mold-key-'));
    execFileSync('sh', ['-c', `umask 077; cat > ${keyDir}/id`], { input: pair.keypair.privatekey });
    publicKey = execFileSync('ssh-keygen', ['-y', '-f', `${keyDir}/id`], { encoding: 'utf8' }).trim();
  }, patience(300_000));

  afterAll(async () => {
    await world?.close();
    await runtime?.stop();
    await lab.down();
  }, patience(120_000));

  let first: any;

  it('deploys a VM: the domain on its host has the offering, an overlay on the template and a config drive with key and user data', async () => {
    const userData = '#cloud-config\nruncmd:\n  - echo hello from mold\n';
    const deployed = await done('deployVirtualMachine', deployParams('web-1', { keypair: keyName, userdata: Buffer.from(userData).toString('base64'), displayname: 'Web one' }));
    first = deployed.virtualmachine;
    expect(first).toMatchObject({ name: 'web-1', displayname: 'Web one', state: 'Running', cpunumber: 1, cpuspeed: 500, memory: 64, zoneid: world.zoneId, templateid: world.templateId, keypairs: keyName });
    expect(first.nic[0]).toMatchObject({ networkid: world.networkId, gateway: '10.66.0.1', netmask: '255.255.255.0', isdefault: true });
    expect(first.instancename).toMatch(/^i-\d+-\d+-VM$/);

    const index = hostIndex(first.hostid);
    expect(await domains(index)).toContain(first.instancename);
    const xml = (await virsh(index, 'dumpxml', first.instancename)).stdout;
    expect(xml).toMatch(/<vcpu[^>]*>1<\/vcpu>/);
    expect(xml).toMatch(/<memory unit='KiB'>65536<\/memory>/);
    const root = /<disk type='file' device='disk'>[\s\S]*?<source file='([^']+)'/.exec(xml)![1]!;
    expect(root.startsWith(labInfo.primaryDir)).toBe(true);
    expect(execFileSync('qemu-img', ['info', '-U', '--output=json', root], { encoding: 'utf8' })).toContain(`${world.templateId}.qcow2`);
    const iso = /<disk type='file' device='cdrom'>[\s\S]*?<source file='([^']+)'/.exec(xml)![1]!;
    const meta = JSON.parse(execFileSync('isoinfo', ['-R', '-x', '/openstack/latest/meta_data.json', '-i', iso], { encoding: 'utf8' }));
    expect(meta.hostname).toBe('web-1');
    expect(Object.values(meta.public_keys).map((k) => String(k).trim().split(' ').slice(0, 2).join(' '))).toContain(publicKey.split(' ').slice(0, 2).join(' '));
    expect(execFileSync('isoinfo', ['-R', '-x', '/openstack/latest/user_data', '-i', iso], { encoding: 'utf8' })).toBe(userData);
    expect(xml).toContain(`<mac address='${first.nic[0].macaddress}'/>`);
    expect(xml).toMatch(/<graphics type='vnc'/);
  }, patience(180_000));

  it('stops, starts on the other host, reboots, destroys, recovers and expunges, leaving both hosts clean', async () => {
    const stopped = await done('stopVirtualMachine', { id: first.id, forced: true });
    expect(stopped.virtualmachine.state).toBe('Stopped');
    const other = world.hosts.find((h) => h.id !== first.hostid)!;
    const started = await done('startVirtualMachine', { id: first.id, hostid: other.id });
    expect(started.virtualmachine).toMatchObject({ state: 'Running', hostid: other.id });
    expect((await virsh(other.index, 'domstate', first.instancename)).stdout.trim()).toBe('running');
    expect((await done('rebootVirtualMachine', { id: first.id })).virtualmachine.state).toBe('Running');

    expect((await done('destroyVirtualMachine', { id: first.id })).virtualmachine.state).toBe('Destroyed');
    expect((await vm(first.id)).state).toBe('Destroyed');
    expect((await ok('recoverVirtualMachine', { id: first.id })).virtualmachine.state).toBe('Stopped');
    await done('destroyVirtualMachine', { id: first.id, expunge: true });
    expect(await vm(first.id)).toBeUndefined();
    for (const h of world.hosts) expect(await domains(h.index)).not.toContain(first.instancename);
    const files = execFileSync('ls', [labInfo.primaryDir], { encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(files.filter((f) => f.includes(first.id))).toEqual([]);
    expect(files.filter((f) => f !== `${world.templateId}.qcow2` && !f.startsWith('marker'))).toEqual([]);
  }, patience(240_000));

  it('attaches a data volume to a running VM live, and opens its console only with a valid token', async () => {
    const offering = (await ok('createDiskOffering', { name: 'small', displaytext: 'small', disksize: 1 })).diskoffering;
    const v = (await done('deployVirtualMachine', deployParams('console-1'))).virtualmachine;
    const volume = (await done('createVolume', { name: 'data-1', zoneid: world.zoneId, diskofferingid: offering.id })).volume;
    const attached = (await done('attachVolume', { id: volume.id, virtualmachineid: v.id })).volume;
    expect(attached).toMatchObject({ virtualmachineid: v.id, type: 'DATADISK' });
    const blk = (await virsh(hostIndex(v.hostid), 'domblklist', v.instancename)).stdout;
    expect(blk).toMatch(/vdb\s+\S+\.qcow2/);

    const endpoint = (await ok('createConsoleEndpoint', { virtualmachineid: v.id })).consoleendpoint;
    expect(endpoint.success).toBe(true);
    // The page a browser opens (test/e2e/console-browser.test.ts); a client of its own takes the websocket fields.
    expect(endpoint.url.startsWith(`http://${world.consoleListen}/resource/noVNC/vnc.html?`)).toBe(true);
    const websocketUrl = (e: any) => `ws://${e.websocket.host}:${e.websocket.port}/${e.websocket.path}?token=${e.websocket.token}`;
    const greeting = await new Promise<string>((resolve, reject) => {
      const socket = new WebSocket(websocketUrl(endpoint), 'binary');
      socket.once('message', (data: Buffer) => {
        resolve(data.toString('latin1'));
        socket.close();
      });
      socket.once('error', reject);
    });
    expect(greeting).toBe('RFB 003.008\n');
    // The token opened one session; it is spent now, and a forged one never opens any.
    const refusal = (url: string) =>
      new Promise<number>((resolve) => {
        const socket = new WebSocket(url, 'binary');
        socket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        socket.once('open', () => (socket.close(), resolve(101)));
        socket.once('error', () => resolve(-1));
      });
    expect(await refusal(websocketUrl(endpoint))).toBe(401);
    expect(await refusal(websocketUrl(endpoint).replace(/token=[^&]+/, 'token=mc1.e30.AAAA'))).toBe(401);
    await ok('updateConfiguration', { name: 'console.token.validity', value: 5 });
    const shortLived = (await ok('createConsoleEndpoint', { virtualmachineid: v.id })).consoleendpoint;
    await new Promise((r) => setTimeout(r, 6_000));
    expect(await refusal(websocketUrl(shortLived))).toBe(401);

    await done('stopVirtualMachine', { id: v.id, forced: true });
    await done('detachVolume', { id: volume.id });
    await ok('deleteVolume', { id: volume.id });
    await done('destroyVirtualMachine', { id: v.id, expunge: true });
  }, patience(180_000));

  it('shows a VM killed behind Mold\'s back as Stopped within a report interval, with an event', async () => {
    const v = (await done('deployVirtualMachine', deployParams('killed-1'))).virtualmachine;
    await virsh(hostIndex(v.hostid), 'destroy', v.instancename);
    // A fresh VM is judged once it is older than the grace (one ping.interval and a second); the next
    // report after that, at most an interval later, shows it stopped.
    const seen = await until('the VM to show Stopped', () => vm(v.id), (x) => x?.state === 'Stopped', {
      within: graceMs({ interval: PING_INTERVAL_SECONDS }) + 2 * PING_INTERVAL_SECONDS * 1000,
    });
    expect(seen.hostid).toBeUndefined();
    const events = (await ok('listEvents', { type: 'VM.STOP', listall: true, pagesize: 100 })).event ?? [];
    expect(events.some((e: any) => /Out of band VM power off/.test(e.description))).toBe(true);
    await done('destroyVirtualMachine', { id: v.id, expunge: true });
  }, patience(120_000));

  it('keeps the VMs of a host anti-affinity group on different hosts, and refuses a third with 533', async () => {
    const group = (await done('createAffinityGroup', { name: 'spread', type: 'host anti-affinity' })).affinitygroup;
    const a = (await done('deployVirtualMachine', deployParams('spread-1', { affinitygroupids: group.id }))).virtualmachine;
    const b = (await done('deployVirtualMachine', deployParams('spread-2', { affinitygroupids: group.id }))).virtualmachine;
    expect(a.hostid).not.toBe(b.hostid);
    const third = await job('deployVirtualMachine', deployParams('spread-3', { affinitygroupids: group.id }));
    expect(third.jobstatus).toBe(2);
    expect(third.jobresult.errorcode).toBe(533);
    for (const v of [a, b]) await done('destroyVirtualMachine', { id: v.id, expunge: true });
  }, patience(240_000));

  it('runs exactly as many of 20 concurrent deploys as the hosts hold (12); the other 8 fail, no host over-committed', async () => {
    // Six of these fit on each host and a seventh does not: 12 in all.
    const speed = Math.floor(Math.min(...world.hosts.map((h) => h.cpuTotal)) / 6);
    const big = (await ok('createServiceOffering', { name: 'sixth', displaytext: 'a sixth of a host', cpunumber: 1, cpuspeed: speed, memory: 64 })).serviceoffering.id;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => job('deployVirtualMachine', deployParams(`crowd-${i + 1}`, { serviceofferingid: big }), 300_000)),
    );
    const succeeded = results.filter((r) => r.jobstatus === 1);
    const failed = results.filter((r) => r.jobstatus === 2);
    expect(succeeded, JSON.stringify(failed.map((r) => r.jobresult.errortext))).toHaveLength(12);
    expect(failed).toHaveLength(8);
    expect(failed.every((r) => r.jobresult.errorcode === 533)).toBe(true);
    const running = (await ok('listVirtualMachines', { listall: true, state: 'Running', pagesize: 100 })).virtualmachine ?? [];
    expect(running).toHaveLength(12);
    for (const h of world.hosts) {
      const listed = (await ok('listHosts', { id: h.id })).host[0];
      expect(listed.cpuallocatedvalue).toBeLessThanOrEqual(h.cpuTotal);
      expect((await domains(h.index)).filter((d) => d.startsWith('i-'))).toHaveLength(6);
    }
    await Promise.all(succeeded.map((r) => done('destroyVirtualMachine', { id: r.jobresult.virtualmachine.id, expunge: true }, 300_000)));
    for (const h of world.hosts) expect((await domains(h.index)).filter((d) => d.startsWith('i-'))).toEqual([]);
  }, patience(600_000));
});
