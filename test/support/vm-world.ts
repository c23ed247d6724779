// A zone ready for VMs on a lab, built through the HTTP API as an operator would: zone, pod and
// cluster, a shared network (VLAN 100, or untagged on the lab's own network, where this machine
// reaches the guests), SharedMountPoint primary storage on the lab's shared directory, a real agent
// with the lab's hosts added, a template downloaded into the pool (a blank qcow2, or the lab's
// bootable guest, test/lab/guest) and a small service offering. Used by the VM end-to-end tests and
// the deploy benchmarks.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../infra/local/ports.ts';
import { guestImage, type Lab, type labAt } from '../lab/lab.ts';
import { addHostAnswer } from './add-host.ts';
import { enrolAgent, startAgent, type RunningAgent } from './agent.ts';
import type { ApiClient } from './client.ts';
import type { RunningRuntime } from './runtime.ts';
import { until } from './wait.ts';

export type Params = Record<string, string | number | boolean>;

/** The agent reports every 10 s here (not 60): a VM killed behind Mold's back shows within a test's patience. */
export const PING_INTERVAL_SECONDS = 10;

export interface VmWorldOptions {
  /** The zone's name. */
  name?: string;
  /** `guest`: the lab's bootable guest template (then the offering has 128 MB); `blank` (default): an empty qcow2. */
  template?: 'blank' | 'guest';
  /** `untagged`: the network is the lab's own subnet (guests answer this machine at their IPAM addresses); default VLAN 100. */
  network?: 'vlan' | 'untagged';
}

export interface VmWorld {
  zoneId: string;
  networkId: string;
  templateId: string;
  /** 1 vCPU × 500 MHz, 64 MB (128 MB with the guest template). */
  offeringId: string;
  hosts: Array<{ id: string; index: number; address: string; cpuTotal: number }>;
  agent: RunningAgent;
  /** The agent's id and its directory (to start it again). */
  agentId: string;
  agentDir: string;
  /** Where the agent's console proxy listens (loopback). */
  consoleListen: string;
  /** Signed POST; throws on anything but 200. */
  ok(command: string, params?: Params): Promise<any>;
  /** An async command's finished job. */
  job(command: string, params: Params, timeoutMs?: number): Promise<any>;
  /** An async command's result; throws (with the agent's last lines) when the job failed. */
  done(command: string, params: Params, timeoutMs?: number): Promise<any>;
  deployParams(name: string, extra?: Params): Params;
  close(): Promise<void>;
}

export async function buildVmWorld(lab: ReturnType<typeof labAt>, labInfo: Lab, runtime: RunningRuntime, admin: ApiClient, options: VmWorldOptions = {}): Promise<VmWorld> {
  const { name = 'vmlab', template = 'blank', network = 'vlan' } = options;
  let agent: RunningAgent | undefined;
  const ok = async (command: string, params: Params = {}) => {
    const answer = await admin.call(command, params, { method: 'POST' });
    if (answer.status !== 200) throw new Error(`${command}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body[`${command.toLowerCase()}response`];
  };
  const job = async (command: string, params: Params, timeoutMs = 120_000) => admin.waitForJob((await ok(command, params)).jobid, timeoutMs, 20);
  const done = async (command: string, params: Params, timeoutMs = 120_000) => {
    const result = await job(command, params, timeoutMs);
    if (result.jobstatus !== 1) throw new Error(`${command} failed: ${JSON.stringify(result.jobresult)}\n${await hostsNow()}\n${agent?.output().slice(-3000) ?? ''}`);
    return result.jobresult;
  };
  // What the hosts and their latest events said when a job failed: most lab failures start there.
  const hostsNow = async () => {
    const hosts = (await ok('listHosts', {}).catch(() => undefined))?.host ?? [];
    const events = (await ok('listEvents', { listall: true, pagesize: 10, type: 'HOST.STATUS.TRANSITION' }).catch(() => undefined))?.event ?? [];
    return [...hosts.map((h: any) => `host ${h.name}: ${h.state}/${h.resourcestate}, last ping ${h.lastpinged}`), ...events.map((e: any) => `${e.created} ${e.type}: ${e.description}`)].join('\n');
  };
  const gw = lab.names.gateway;

  // The template, served from loopback; the agent fetches it into primary storage.
  const image = template === 'guest' ? readFileSync(await guestImage()) : blankQcow2();
  const server: Server = createServer((_req, res) => void res.writeHead(200, { 'content-length': image.length }).end(image));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));

  const zoneId = (await ok('createZone', { name, networktype: 'Advanced', dns1: gw, internaldns1: gw })).zone.id;
  const podId = (await ok('createPod', { name: 'p1', zoneid: zoneId, gateway: gw, netmask: '255.255.255.0', startip: lab.names.hostAddress(100), endip: lab.names.hostAddress(150) })).pod.id;
  const clusterId = (await ok('addCluster', { clustername: 'c1', zoneid: zoneId, podid: podId, hypervisor: 'KVM', clustertype: 'CloudManaged' })).cluster[0].id;
  // Physical networks are made while the zone is still disabled, as upstream requires.
  const physicalId = (await done('createPhysicalNetwork', { zoneid: zoneId, name: 'phys', vlan: '200-299', isolationmethods: 'VLAN' })).physicalnetwork.id;
  const sharedOffering = (await ok('listNetworkOfferings', { name: 'DefaultSharedNetworkOffering' })).networkoffering[0].id;
  const addressing =
    network === 'untagged'
      ? { vlan: 'untagged', gateway: gw, netmask: '255.255.255.0', startip: lab.names.address(200), endip: lab.names.address(250) }
      : { vlan: 100, gateway: '10.66.0.1', netmask: '255.255.255.0', startip: '10.66.0.10', endip: '10.66.0.250' };
  const networkId = (
    await ok('createNetwork', { name: 'guests', displaytext: 'guests', networkofferingid: sharedOffering, zoneid: zoneId, physicalnetworkid: physicalId, ...addressing })
  ).network.id;
  for (const [command, id] of [['updateZone', zoneId], ['updatePod', podId], ['updateCluster', clusterId]] as const) await ok(command, { id, allocationstate: 'Enabled' });
  await ok('createStoragePool', { name: 'primary', zoneid: zoneId, podid: podId, clusterid: clusterId, scope: 'cluster', url: `SharedMountPoint://${labInfo.primaryDir}`, capacitybytes: 100 * 1024 ** 3 });

  // This machine's kernel cannot make 802.1Q links: guests get a VLAN bridge without an uplink.
  await ok('updateConfiguration', { name: 'ping.interval', value: PING_INTERVAL_SECONDS });
  // Its console proxy listens on loopback only: the side of the network the clients are on here.
  const consoleListen = `127.0.0.1:${await freePort()}`;
  const enrolled = await enrolAgent(admin, runtime.apiUrl, zoneId);
  agent = await startAgent(enrolled.dir, { MOLD_AGENT_VLAN_FALLBACK: 'isolated', MOLD_AGENT_CONSOLE_LISTEN: consoleListen });
  const hosts: VmWorld['hosts'] = [];
  for (const h of labInfo.hosts) {
    const added = await addHostAnswer(admin, { zoneid: zoneId, podid: podId, clusterid: clusterId, url: h.address, username: 'root', password: labInfo.password, hypervisor: 'KVM' });
    if (added.jobstatus !== 1) throw new Error(`addHost failed: ${JSON.stringify(added.jobresult)}\n${agent?.output().slice(-3000) ?? ''}`);
    const host = added.jobresult.host[0];
    hosts.push({ id: host.id, index: h.index, address: h.address, cpuTotal: host.cpunumber * host.cpuspeed });
  }

  const osTypeId = (await ok('listOsTypes', { keyword: 'Other' })).ostype[0].id;
  const templateId = (
    await ok('registerTemplate', {
      name: template, displaytext: template, format: 'QCOW2', hypervisor: 'KVM', zoneid: zoneId, ostypeid: osTypeId,
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/${template}.qcow2`,
      checksum: `{SHA-256}${createHash('sha256').update(image).digest('hex')}`,
    })
  ).template[0].id;
  await until('the template to be ready', async () => (await ok('listTemplates', { id: templateId, templatefilter: 'all' })).template[0], (t) => t.isready === true || /rror|fail/i.test(t.status), { within: 60_000 });
  server.close();

  // Destroying a VM need not wait for a graceful stop (the blank template's guests could not answer one).
  await ok('updateConfiguration', { name: 'vm.destroy.forcestop', value: true });
  // The guest's kernel and initramfs do not fit in 64 MB.
  const memory = template === 'guest' ? 128 : 64;
  const offeringId = (await ok('createServiceOffering', { name: 'tiny', displaytext: 'tiny', cpunumber: 1, cpuspeed: 500, memory })).serviceoffering.id;

  return {
    zoneId,
    networkId,
    templateId,
    offeringId,
    hosts,
    agent,
    agentId: enrolled.agentId,
    agentDir: enrolled.dir,
    consoleListen,
    ok,
    job,
    done,
    deployParams: (vmName, extra = {}) => ({ zoneid: zoneId, serviceofferingid: offeringId, templateid: templateId, networkids: networkId, name: vmName, ...extra }),
    close: async () => {
      await agent?.stop();
    },
  };
}

/** An empty 256 MB qcow2: a template with no OS, for tests that need nothing from the guest. */
export function blankQcow2(): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'mold-vm-template-'));
  try {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'blank.qcow2'), '256M']);
    return readFileSync(join(dir, 'blank.qcow2'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
