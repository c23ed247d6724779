// A zone ready for VMs whose agent the test plays (test/support/agent-seed.ts): a shared VLAN
// network, an enabled pod and cluster, one Up host record of the seeded agent, a SharedMountPoint
// pool, and a template the test "downloads" by answering the agent's command. Built through the API
// (and the repository layer for the host) after useRuntimeEndpoints().
import { expect } from 'vitest';
import type { CommandMessage } from '../../shared/agent/protocol.ts';
import { createHostRecord, getHost } from '../../shared/db/hosts.ts';
import { getCluster } from '../../shared/db/infrastructure.ts';
import { listAllocatedAddresses } from '../../shared/db/ipam.ts';
import { storedCounts } from '../../shared/db/limits.ts';
import { ok, unique } from '../integration/identity-fixtures.ts';
import { answer, receiveCommand, seedAgent, type SeededAgent } from './agent-seed.ts';
import type { ApiClient } from './client.ts';
import type { Member } from './members.ts';
import { until } from './wait.ts';

export const GiB = 1024 ** 3;
export const POOL_PATH = '/var/lib/mold/primary';

export interface PlayedZone {
  zone: any;
  network: any;
  pod: any;
  cluster: any;
  seeded: SeededAgent;
  host: any;
  pool: any;
  template: any;
}

/**
 * `octet` keeps each test file's addresses apart: hosts and pod in 10.<octet>.0.0/24, guests in
 * 10.<octet + 1>.0.0/24 on VLAN <octet × 10 + 10>.
 */
export async function seedPlayedZone(admin: ApiClient, octet: number, host: { cpunumber?: number; memorytotal?: number } = {}): Promise<PlayedZone> {
  const vlan = octet * 10 + 10;
  const zone = ok(await admin.call('createZone', { name: unique('vz'), networktype: 'Advanced', dns1: '8.8.8.8', dns2: '1.1.1.1' }), 'createZone').zone;
  // Physical networks are made while the zone is still disabled, as upstream requires.
  const physical = ok(await admin.call('createPhysicalNetwork', { zoneid: zone.id, name: unique('vphys'), vlan: `${vlan - 10}-${vlan - 1}` }), 'createPhysicalNetwork');
  if ((await admin.waitForJob(physical.jobid)).jobstatus !== 1) throw new Error('createPhysicalNetwork failed');
  const networkOffering = ok(await admin.call('listNetworkOfferings', { name: 'DefaultSharedNetworkOffering' }), 'listNetworkOfferings').networkoffering[0].id;
  const guests = `10.${octet + 1}.0`;
  const network = ok(
    await admin.call('createNetwork', { name: unique('vn'), networkofferingid: networkOffering, zoneid: zone.id, vlan, gateway: `${guests}.1`, netmask: '255.255.255.0', startip: `${guests}.10`, endip: `${guests}.99` }),
    'createNetwork',
  ).network;
  ok(await admin.call('updateZone', { id: zone.id, allocationstate: 'Enabled' }), 'updateZone');
  const infra = `10.${octet}.0`;
  const pod = ok(
    await admin.call('createPod', { zoneid: zone.id, name: unique('vp'), gateway: `${infra}.1`, netmask: '255.255.255.0', startip: `${infra}.10`, endip: `${infra}.49`, allocationstate: 'Enabled' }),
    'createPod',
  ).pod;
  const cluster = ok(
    await admin.call('addCluster', { zoneid: zone.id, podid: pod.id, clustername: unique('vc'), hypervisor: 'KVM', clustertype: 'CloudManaged', allocationstate: 'Enabled' }),
    'addCluster',
  ).cluster[0];
  const seeded = await seedAgent(zone.id);
  const record = await addPlayedHost(cluster.id, seeded, { name: unique('kvm'), ipaddress: `${infra}.11`, ...host });
  const pool = ok(
    await admin.call('createStoragePool', { zoneid: zone.id, podid: pod.id, clusterid: cluster.id, name: unique('vsmp'), url: `SharedMountPoint://localhost${POOL_PATH}`, capacitybytes: 500 * GiB }),
    'createStoragePool',
  ).storagepool;
  // The template: registered, then downloaded into the pool by the (played) agent.
  const osType = ok(await admin.call('listOsTypes', { pagesize: 1 }), 'listOsTypes').ostype[0].id;
  const template = ok(
    await admin.call('registerTemplate', { name: unique('vt'), url: 'http://127.0.0.1:9/image.qcow2', format: 'QCOW2', hypervisor: 'KVM', zoneid: zone.id, ostypeid: osType, ispublic: true }),
    'registerTemplate',
  ).template[0];
  const download = await receiveCommand(seeded.agent.queueUrl);
  if (download.type !== 'downloadTemplate') throw new Error(`expected a downloadTemplate command, got ${download.type}`);
  await answer(download, { result: { path: `${POOL_PATH}/${template.id}.qcow2`, size: 2 * GiB, checksum: '{SHA-256}00' } });
  await until('the template to be ready', async () => ok(await admin.call('listTemplates', { templatefilter: 'all', id: template.id, zoneid: zone.id }), 'listTemplates').template[0], (listed) => listed.isready === true);
  return { zone, network, pod, cluster, seeded, host: record, pool, template };
}

/** An Up, Enabled host in a played zone's cluster, driven by its played agent (4 × 2 GHz, 8 GiB unless told). */
export async function addPlayedHost(
  clusterId: string,
  seeded: Pick<SeededAgent, 'agent'>,
  host: { name: string; ipaddress: string; cpunumber?: number; memorytotal?: number },
) {
  return createHostRecord((await getCluster(clusterId))!, {
    cpunumber: 4,
    cpuspeed: 2000,
    memorytotal: 8 * GiB,
    ...host,
    status: 'Up',
    resourcestate: 'Enabled',
    agentId: seeded.agent.id,
    username: 'root',
    port: 22,
    lastpinged: new Date().toISOString(),
  });
}

/**
 * What the VM command tests read and play over a played zone made in their beforeAll (hence the
 * getters): counts to show a refusal changed nothing, and the agent's side of each command.
 */
export function playedVmChecks(admin: () => ApiClient, played: () => PlayedZone) {
  return {
    vmCount: async (): Promise<number> => ok(await admin().call('listVirtualMachines', { listall: true, pagesize: -1 }), 'listVirtualMachines').count ?? 0,
    jobCount: async (): Promise<number> => ok(await admin().call('listAsyncJobs', { listall: true, pagesize: -1 }), 'listAsyncJobs').count ?? 0,
    addressCount: async () => (await listAllocatedAddresses(played().network.id)).length,
    hostLoad: async () => {
      const current = (await getHost(played().host.id))!;
      return { cpu: current.cpuallocated ?? 0, memory: current.memoryallocated ?? 0 };
    },
    /** The account's stored counts, without the zeros (a count never raised reads as absent). */
    accountCounts: async (member: Member) => Object.fromEntries(Object.entries(await storedCounts('ACCOUNT', member.account.id)).filter(([, n]) => n !== 0)),
    /** Starts an async VM command and returns the answer's body. */
    begin: async (client: ApiClient, command: string, params: Record<string, string | number | boolean>) => ok(await client.call(command, params), command),
    /** deployVirtualMachine with `params`, the agent's startVm played as a success: the VM as the job answers it. */
    deployed: async (params: Record<string, string | number | boolean>) => {
      const deploy = ok(await admin().call('deployVirtualMachine', params), 'deployVirtualMachine');
      const start = await receiveCommand(played().seeded.agent.queueUrl);
      expect(start.type).toBe('startVm');
      await answer(start, started(start));
      const job = await admin().waitForJob(deploy.jobid);
      expect(job.jobstatus, JSON.stringify(job.jobresult)).toBe(1);
      return job.jobresult.virtualmachine;
    },
    /** Plays the agent for the next command: checks its type and answers it. */
    agentAnswers: async (type: string, outcome: { result: unknown } | { error: string; cause: string }): Promise<CommandMessage> => {
      const message = await receiveCommand(played().seeded.agent.queueUrl);
      expect(message.type).toBe(type);
      await answer(message, outcome);
      return message;
    },
  };
}

/** The agent's answer to a startVm: the domain runs. */
export const started = (message: CommandMessage) => ({ result: { name: (message.payload as any).vm.name, state: 'Running', vncPort: 5901 } });
