// addHost, reconnectHost, pingHost, updateHostPassword, deleteHost and registerTemplate's download,
// through /client/api and the real agent-command state machine. First with the test playing the
// agent (it reads the command from the agent's queue, opens the sealed password with the agent's key
// and answers through Step Functions as the gateway would): every refusal changes nothing, every
// agent failure names its cause in the job and leaves no host, and no password is ever stored,
// logged or put in an execution's input. The same commands with a real agent process against a
// lab's KVM hosts are in test/e2e/host-commands-lab.test.ts.
import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostFacts } from '../../shared/agent/protocol.ts';
import { openSealed } from '../../shared/agent/sealing.ts';
import { dynamo, sfn } from '../../shared/aws.ts';
import { createHostRecord, getHost } from '../../shared/db/hosts.ts';
import { getCluster } from '../../shared/db/infrastructure.ts';
import { tableName } from '../../shared/db/items.ts';
import { getJob } from '../../shared/db/jobs.ts';
import { getTemplate } from '../../shared/db/templates.ts';
import { answer, receiveCommand, seedAgent, type SeededAgent } from '../support/agent-seed.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { patience } from '../support/wait.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { missing, noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';

const PASSWORD = `pw-${randomUUID()}-secret`;
const NEW_PASSWORD = `pw-${randomUUID()}-renewed`;

let world: World;
let admin: ApiClient;
let user: ApiClient;
let zone: any;
let pod: any;
let cluster: any;
let otherPod: any;
let otherCluster: any;
let bareZone: any; // no agent
let bareZonePod: any;
let bareZoneCluster: any;
let seeded: SeededAgent;

const facts = (overrides: Partial<HostFacts> = {}): HostFacts => ({
  hostname: 'kvm-a',
  hostUuid: randomUUID(),
  cpus: 4,
  cpuMhz: 2400,
  cpuSockets: 1,
  memoryBytes: 4 * 1024 ** 3,
  arch: 'x86_64',
  libvirtVersion: '9.0.0',
  qemuVersion: '7.2.0',
  domainType: 'qemu',
  hostKeyFingerprint: 'SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
  ...overrides,
});

let nextAddress = 20;
const freshAddress = () => `10.66.0.${nextAddress++}`;

async function hostCount(): Promise<number> {
  return ok(await admin.call('listHosts', { pagesize: -1 }), 'listHosts').count ?? 0;
}

async function jobCount(): Promise<number> {
  return ok(await admin.call('listAsyncJobs', { listall: true, pagesize: -1 }), 'listAsyncJobs').count ?? 0;
}

/** Starts a command and returns its job id, asserting the async answer. */
async function start(command: string, params: Record<string, string | number | boolean>): Promise<string> {
  const body = ok(await admin.call(command, params), command);
  expect(Object.keys(body)).toEqual(['jobid']);
  return body.jobid;
}

async function addHostParams(address = freshAddress(), extra: Record<string, string | number | boolean> = {}) {
  return { zoneid: zone.id, podid: pod.id, clusterid: cluster.id, url: `ssh://${address}`, username: 'root', password: PASSWORD, hypervisor: 'KVM', ...extra };
}

/**
 * addHost through the simulated agent: the command it got, the finished job, and the API's answer,
 * which came once the job had ended (upstream's addHost is synchronous): its result, or its error.
 */
async function addHostAnswered(address: string, outcome: { result: unknown } | { error: string; cause: string }, extra: Record<string, string | number | boolean> = {}) {
  const call = admin.call('addHost', await addHostParams(address, extra));
  const message = await receiveCommand(seeded.agent.queueUrl);
  await answer(message, outcome);
  const answered = await call;
  const jobid = message.commandId;
  const job = await admin.waitForJob(jobid);
  if (job.jobstatus === 1) expect(ok(answered, 'addHost')).toEqual({ count: 1, ...job.jobresult });
  else refused(answered, 'addHost', job.jobresultcode, job.jobresult.errortext);
  return { jobid, message, job };
}

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  user = (await seedMember(world.runtime.apiUrl, unique('hcuser'), (await getDomain(world.rootDomainId))!, 'User')).client;
  const makeZone = async () => ok(await admin.call('createZone', { name: unique('hcz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
  const makePod = async (z: any, third: number) =>
    ok(await admin.call('createPod', { zoneid: z.id, name: unique('hcp'), gateway: `10.${third}.0.1`, netmask: '255.255.255.0', startip: `10.${third}.0.10` }), 'createPod').pod;
  const makeCluster = async (z: any, p: any) =>
    ok(await admin.call('addCluster', { zoneid: z.id, podid: p.id, clustername: unique('hcc'), hypervisor: 'KVM', clustertype: 'CloudManaged' }), 'addCluster').cluster[0];
  zone = await makeZone();
  pod = await makePod(zone, 60);
  cluster = await makeCluster(zone, pod);
  otherPod = await makePod(zone, 61);
  otherCluster = await makeCluster(zone, otherPod);
  bareZone = await makeZone();
  bareZonePod = await makePod(bareZone, 62);
  bareZoneCluster = await makeCluster(bareZone, bareZonePod);
  seeded = await seedAgent(zone.id, { version: '0.1.0-test' });
});

afterAll(async () => {
  await world?.runtime.stop();
});

describe('addHost refusals', () => {
  it('refuses every bad parameter with 431 naming it, and changes nothing', async () => {
    const hosts = await hostCount();
    const jobs = await jobCount();
    const base = await addHostParams('10.66.1.1');
    const without = (name: string) => Object.fromEntries(Object.entries(base).filter(([key]) => key !== name));
    for (const name of ['zoneid', 'podid', 'url', 'hypervisor']) {
      refused(await admin.call('addHost', without(name)), 'addHost', 431, missing('addhost', name));
    }
    refused(await admin.call('addHost', { ...base, zoneid: 'nope' }), 'addHost', 431, /Invalid parameter zoneid value=nope/);
    const unknown = randomUUID();
    refused(await admin.call('addHost', { ...base, zoneid: unknown }), 'addHost', 431, noEntity('addhost', 'zoneid', unknown));
    refused(await admin.call('addHost', { ...base, podid: unknown }), 'addHost', 431, noEntity('addhost', 'podid', unknown));
    refused(await admin.call('addHost', { ...base, podid: bareZonePod.id }), 'addHost', 431, `Pod with specified podId${bareZonePod.id} doesn't belong to the zone with specified zoneId${zone.id}`);
    refused(await admin.call('addHost', { ...base, clustername: cluster.name }), 'addHost', 431, "Can't specify cluster by both id and name");
    refused(await admin.call('addHost', without('username')), 'addHost', 431, 'Username need to be provided.');
    refused(await admin.call('addHost', { ...base, hypervisor: 'XenServer' }), 'addHost', 431, `Do not support HypervisorType XenServer for ${base.url}`);
    refused(await admin.call('addHost', { ...base, clusterid: unknown }), 'addHost', 431, noEntity('addhost', 'clusterid', unknown));
    refused(await admin.call('addHost', { ...base, clusterid: otherCluster.id }), 'addHost', 431, new RegExp(`clusterid ${otherCluster.id} doesn't belong to the pod`));
    refused(await admin.call('addHost', { ...without('clusterid'), clustername: 'no-such-cluster' }), 'addHost', 431, /no cluster named no-such-cluster \(clustername\)/);
    refused(await admin.call('addHost', without('clusterid')), 'addHost', 431, /Either clusterid or clustername is required/);
    refused(await admin.call('addHost', { ...base, allocationstate: 'Maybe' }), 'addHost', 431, "Unable to resolve Allocation State 'Maybe' to a supported state");
    for (const url of ['ftp://10.66.1.1', 'ssh://10.66.1.1/some/path', 'ssh://root@10.66.1.1', 'ssh://bad host', '']) {
      const answer = await admin.call('addHost', { ...base, url });
      if (url === '') refused(answer, 'addHost', 431, missing('addhost', 'url'));
      else refused(answer, 'addHost', 431, /^Invalid parameter url value=/);
    }
    // Only admins.
    refused(await user.call('addHost', base), 'addHost', 432, 'The given command does not exist or it is not available for user');
    expect(await hostCount()).toBe(hosts);
    expect(await jobCount()).toBe(jobs);
  });

  it('refuses a zone without an agent, and a second host at the same address, changing nothing', async () => {
    const hosts = await hostCount();
    const jobs = await jobCount();
    refused(
      await admin.call('addHost', { ...(await addHostParams('10.66.1.2')), zoneid: bareZone.id, podid: bareZonePod.id, clusterid: bareZoneCluster.id }),
      'addHost',
      534,
      `No agent is enrolled in zone ${bareZone.name} (${bareZone.id}): enrol one (createAgentEnrollmentToken, then mold-agent enrol) before adding hosts`,
    );
    const taken = await createHostRecord((await getCluster(cluster.id))!, { name: unique('taken'), ipaddress: '10.66.1.3' });
    for (const url of ['10.66.1.3', 'http://10.66.1.3', 'ssh://10.66.1.3:2222']) {
      refused(await admin.call('addHost', { ...(await addHostParams()), url }), 'addHost', 431, `A host with address 10.66.1.3 (url) already exists in zone ${zone.name}: ${taken.name} (${taken.id})`);
    }
    expect(await hostCount()).toBe(hosts + 1);
    expect(await jobCount()).toBe(jobs);
    ok(await admin.call('deleteHost', { id: taken.id, forced: true }), 'deleteHost');
  });
});

describe('addHost through the agent', () => {
  it('seals the password to the agent, makes an Up host of the facts, and never stores or logs the password', async () => {
    const address = freshAddress();
    const learnt = facts({ hostname: 'kvm-facts', cpus: 8, cpuMhz: 2100, cpuSockets: 2, memoryBytes: 16 * 1024 ** 3 });
    const sent = Date.now();
    const call = admin.call('addHost', await addHostParams(address, { hosttags: 'ssd,fast' }));
    const message = await receiveCommand(seeded.agent.queueUrl);
    const jobid = message.commandId;
    expect(message).toMatchObject({ type: 'addHost', payload: { host: { address, port: 22, username: 'root' } } });
    // agent.command.timeout (60 s by default) from when it was sent.
    expect(Date.parse(message.deadline)).toBeGreaterThanOrEqual(sent + 60_000);
    expect(Date.parse(message.deadline)).toBeLessThanOrEqual(Date.now() + 60_000);
    const payload = message.payload as any;
    expect(openSealed(seeded.privateKeyPem, payload.password)).toBe(PASSWORD);
    await answer(message, { result: learnt });

    // Answered once the job has ended, with upstream's ListResponse of the host.
    const answered = ok(await call, 'addHost');
    const job = await admin.waitForJob(jobid);
    expect(job).toMatchObject({ jobstatus: 1, cmd: 'addHost', jobinstancetype: 'Host', jobinstanceid: payload.host.hostId });
    const [host] = job.jobresult.host;
    expect(answered).toEqual({ count: 1, host: [host] });
    expect(host).toMatchObject({
      id: payload.host.hostId,
      name: 'kvm-facts',
      state: 'Up',
      resourcestate: 'Enabled',
      type: 'Routing',
      hypervisor: 'KVM',
      ipaddress: address,
      zoneid: zone.id,
      podid: pod.id,
      clusterid: cluster.id,
      cpunumber: 8,
      cpuspeed: 2100,
      cpusockets: 2,
      memorytotal: 16 * 1024 ** 3,
      hypervisorversion: '7.2.0',
      version: '0.1.0-test',
      capabilities: 'hvm',
      hosttags: 'ssd,fast',
      arch: 'x86_64',
      lastpinged: expect.any(String),
    });
    expect(ok(await admin.call('listHosts', { id: host.id }), 'listHosts').host[0]).toEqual(host);
    expect(await getHost(host.id)).toMatchObject({
      agentId: seeded.agent.id,
      hostUuid: learnt.hostUuid,
      username: 'root',
      port: 22,
      libvirtversion: '9.0.0',
      qemuversion: '7.2.0',
      domaintype: 'qemu',
      hostkeyfingerprint: learnt.hostKeyFingerprint,
    });
    const events = ok(await admin.call('listEvents', { type: 'HOST.ADD', listall: true }), 'listEvents').event;
    expect(events.map((e: any) => e.state)).toEqual(expect.arrayContaining(['Scheduled', 'Completed']));
    expect(events.find((e: any) => e.state === 'Completed')).toMatchObject({ level: 'INFO', resourceid: host.id });

    // The password is nowhere: not in any record, not in the runtime's output, not in the execution's input.
    const items: unknown[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await dynamo().send(new ScanCommand({ TableName: tableName(), ExclusiveStartKey }));
      items.push(...(page.Items ?? []));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    expect(items.length).toBeGreaterThan(10);
    expect(JSON.stringify(items)).not.toContain(PASSWORD);
    expect(world.runtime.output()).not.toContain(PASSWORD);
    const execution = await sfn().send(new DescribeExecutionCommand({ executionArn: (await getJob(jobid))!.executionArn! }));
    expect(execution.input).toContain('RSA-OAEP-256+A256GCM');
    expect(execution.input).not.toContain(PASSWORD);
    expect(execution.output ?? '').not.toContain(PASSWORD);
  });

  it('adds a host with the agent’s key only when no password is given, Disabled on request', async () => {
    const address = freshAddress();
    const { message, job } = await addHostAnswered(address, { result: facts({ hostname: 'kvm-keyonly' }) }, { password: '', allocationstate: 'Disabled' });
    expect((message.payload as any).password).toBeUndefined();
    expect(job.jobstatus).toBe(1);
    expect(job.jobresult.host[0]).toMatchObject({ name: 'kvm-keyonly', state: 'Up', resourcestate: 'Disabled', ipaddress: address });
  });

  it('fails the job with the agent’s words for a wrong password, an unreachable host or no libvirt, leaving no host', async () => {
    const hosts = await hostCount();
    for (const [error, cause] of [
      ['AuthenticationFailed', 'Authentication failed for root@10.66.0.99: wrong username or password'],
      ['HostUnreachable', 'Cannot reach 10.66.0.99:22: connect ECONNREFUSED'],
      ['NoLibvirt', 'libvirt is not running on 10.66.0.99: virsh: failed to connect to the hypervisor'],
    ]) {
      const { job } = await addHostAnswered(freshAddress(), { error, cause });
      expect(job).toMatchObject({ jobstatus: 2, jobresultcode: 530, jobresult: { errorcode: 530, errortext: cause } });
    }
    expect(await hostCount()).toBe(hosts);
    const failed = ok(await admin.call('listEvents', { type: 'HOST.ADD', level: 'ERROR', listall: true }), 'listEvents').event;
    expect(failed[0].description).toMatch(/^Error while adding host at .*: libvirt is not running/);
  });

  it('fails the job when the agent’s facts name a machine already added under another address', async () => {
    const hosts = await hostCount();
    const existing = (await getHost((await addHostAnswered(freshAddress(), { result: facts({ hostname: 'kvm-twice' }) })).job.jobresult.host[0].id))!;
    const { job } = await addHostAnswered(freshAddress(), { result: facts({ hostname: 'kvm-twice', hostUuid: existing.hostUuid }) });
    expect(job).toMatchObject({ jobstatus: 2, jobresultcode: 431, jobresult: { errortext: expect.stringContaining(`is already added as kvm-twice (${existing.id})`) } });
    expect(await hostCount()).toBe(hosts + 1);
  });

  it('fails on an answer that is not facts, leaving no host', async () => {
    const hosts = await hostCount();
    const { job } = await addHostAnswered(freshAddress(), { result: { hostname: 'half' } });
    expect(job).toMatchObject({ jobstatus: 2, jobresultcode: 530, jobresult: { errortext: expect.stringMatching(/^The agent answered addHost with a result Mold cannot read/) } });
    expect(await hostCount()).toBe(hosts);
  });

  it('answers 530 naming the job when the agent is slower than the API’s time limit; the job goes on and adds the host', async () => {
    const address = freshAddress();
    const call = admin.call('addHost', await addHostParams(address));
    const message = await receiveCommand(seeded.agent.queueUrl);
    // The agent answers only after the API has (2 s before MOLD_API_TIMEOUT_SECONDS, 29 by default).
    const text = `The host at ${address} is still being added after the API's time limit; its job ${message.commandId} goes on (queryAsyncJobResult, listHosts)`;
    refused(await call, 'addHost', 530, text);
    await answer(message, { result: facts({ hostname: 'kvm-slow' }) });
    const job = await admin.waitForJob(message.commandId);
    expect(job.jobstatus).toBe(1);
    expect(ok(await admin.call('listHosts', { id: job.jobresult.host[0].id }), 'listHosts').host[0]).toMatchObject({ name: 'kvm-slow', ipaddress: address, state: 'Up' });
  }, patience(120_000));

  it('fails on timeout with a clear error when the agent does not answer (agent.command.timeout)', async () => {
    ok(await admin.call('updateConfiguration', { name: 'agent.command.timeout', value: '2' }), 'updateConfiguration');
    try {
      const hosts = await hostCount();
      const call = admin.call('addHost', await addHostParams());
      const message = await receiveCommand(seeded.agent.queueUrl);
      refused(await call, 'addHost', 530, 'The agent did not answer in time; the host or its agent may be down.');
      const job = await admin.waitForJob(message.commandId);
      expect(job).toMatchObject({ jobstatus: 2, jobresultcode: 530, jobresult: { errortext: 'The agent did not answer in time; the host or its agent may be down.' } });
      expect(await hostCount()).toBe(hosts);
    } finally {
      ok(await admin.call('resetConfiguration', { name: 'agent.command.timeout' }), 'resetConfiguration');
    }
  });
});

describe('reconnectHost, pingHost, updateHostPassword', () => {
  let host: any;
  let hostUuid: string;
  beforeAll(async () => {
    const learnt = facts({ hostname: 'kvm-ops' });
    hostUuid = learnt.hostUuid;
    host = (await addHostAnswered(freshAddress(), { result: learnt })).job.jobresult.host[0];
  });

  it('refuses an unknown host, and a host no agent manages', async () => {
    const unknown = randomUUID();
    const jobs = await jobCount();
    for (const command of ['reconnectHost', 'pingHost']) {
      refused(await admin.call(command, {}), command, 431, missing(command.toLowerCase(), 'id'));
      refused(await admin.call(command, { id: unknown }), command, 431, noEntity(command.toLowerCase(), 'id', unknown));
    }
    const seededOnly = await createHostRecord((await getCluster(cluster.id))!, { name: unique('recordonly'), ipaddress: '10.66.2.1' });
    for (const command of ['reconnectHost', 'pingHost']) {
      refused(await admin.call(command, { id: seededOnly.id }), command, 534, `Host ${seededOnly.name} (${seededOnly.id}) has no agent: it was not added through one. Delete it and add it again with addHost.`);
    }
    refused(await admin.call('updateHostPassword', { hostid: seededOnly.id, username: 'root', password: NEW_PASSWORD }), 'updateHostPassword', 534, /has no agent/);
    expect(await jobCount()).toBe(jobs);
    ok(await admin.call('deleteHost', { id: seededOnly.id, forced: true }), 'deleteHost');
  });

  it('reconnects: the agent gathers facts again and the host is Up with them', async () => {
    const jobid = await start('reconnectHost', { id: host.id });
    const message = await receiveCommand(seeded.agent.queueUrl);
    expect(message).toMatchObject({ commandId: jobid, type: 'reconnectHost', payload: { host: { hostId: host.id, address: host.ipaddress, port: 22, username: 'root' } } });
    await answer(message, { result: facts({ hostname: 'kvm-ops', hostUuid, memoryBytes: 6 * 1024 ** 3, qemuVersion: '8.0.0' }) });
    const job = await admin.waitForJob(jobid);
    expect(job).toMatchObject({ jobstatus: 1, cmd: 'reconnectHost', jobresult: { host: { id: host.id, state: 'Up', memorytotal: 6 * 1024 ** 3, hypervisorversion: '8.0.0' } } });
    const events = ok(await admin.call('listEvents', { type: 'HOST.RECONNECT', listall: true }), 'listEvents').event;
    expect(events.find((e: any) => e.state === 'Completed')).toMatchObject({ description: `Completed: reconnecting host: ${host.id}`, resourceid: host.id });
  });

  it('refuses to reconnect when another machine answers at the host’s address', async () => {
    const jobid = await start('reconnectHost', { id: host.id });
    await answer(await receiveCommand(seeded.agent.queueUrl), { result: facts({ hostname: 'impostor' }) });
    const job = await admin.waitForJob(jobid);
    expect(job).toMatchObject({ jobstatus: 2, jobresultcode: 530, jobresult: { errortext: expect.stringMatching(new RegExp(`^The machine at ${host.ipaddress} is not host kvm-ops any more: its host UUID is .*, not ${hostUuid}$`)) } });
    expect((await getHost(host.id))!.name).toBe('kvm-ops');
  });

  it('pings a host through its agent, recording no event', async () => {
    const before = ok(await admin.call('listEvents', { listall: true, pagesize: -1 }), 'listEvents').count;
    const jobid = await start('pingHost', { id: host.id });
    const message = await receiveCommand(seeded.agent.queueUrl);
    expect(message).toMatchObject({ type: 'pingHost', payload: { host: { hostId: host.id, address: host.ipaddress } } });
    await answer(message, { result: { elapsedMs: 7.4 } });
    expect(await admin.waitForJob(jobid)).toMatchObject({ jobstatus: 1, cmd: 'pingHost', jobinstanceid: host.id, jobresult: { success: true, displaytext: 'Host kvm-ops answered through its agent in 7 ms' } });
    expect(ok(await admin.call('listEvents', { listall: true, pagesize: -1 }), 'listEvents').count).toBe(before);
  });

  it('updates a host’s password through its agent: sealed, never stored, the login kept', async () => {
    const jobs = await jobCount();
    refused(await admin.call('updateHostPassword', { username: 'root', password: NEW_PASSWORD }), 'updateHostPassword', 431, 'You should provide an host id.');
    const unknown = randomUUID();
    refused(await admin.call('updateHostPassword', { hostid: unknown, username: 'root', password: NEW_PASSWORD }), 'updateHostPassword', 431, noEntity('updatehostpassword', 'hostid', unknown));
    refused(await admin.call('updateHostPassword', { hostid: host.id, username: ' ', password: NEW_PASSWORD }), 'updateHostPassword', 431, 'Username should be non empty string');
    refused(await admin.call('updateHostPassword', { hostid: host.id, password: NEW_PASSWORD }), 'updateHostPassword', 431, missing('updatehostpassword', 'username'));
    refused(await admin.call('updateHostPassword', { hostid: host.id, username: 'root' }), 'updateHostPassword', 431, missing('updatehostpassword', 'password'));
    expect(await jobCount()).toBe(jobs);

    const jobid = await start('updateHostPassword', { hostid: host.id, username: 'admin', password: NEW_PASSWORD, update_passwd_on_host: true });
    const message = await receiveCommand(seeded.agent.queueUrl);
    const payload = message.payload as any;
    expect(payload).toMatchObject({ host: { hostId: host.id, username: 'admin' }, setOnHost: true });
    expect(openSealed(seeded.privateKeyPem, payload.password)).toBe(NEW_PASSWORD);
    await answer(message, { result: { rekeyed: true } });
    expect(await admin.waitForJob(jobid)).toMatchObject({ jobstatus: 1, jobresult: { success: true } });
    expect((await getHost(host.id))!.username).toBe('admin');
    const scan = await dynamo().send(new ScanCommand({ TableName: tableName() }));
    expect(JSON.stringify(scan.Items)).not.toContain(NEW_PASSWORD);
    expect(world.runtime.output()).not.toContain(NEW_PASSWORD);

    const failing = await start('updateHostPassword', { hostid: host.id, username: 'admin', password: 'wrong' });
    await answer(await receiveCommand(seeded.agent.queueUrl), { error: 'AuthenticationFailed', cause: `Authentication failed for admin@${host.ipaddress}: wrong username or password` });
    expect(await admin.waitForJob(failing)).toMatchObject({ jobstatus: 2, jobresult: { errortext: `Authentication failed for admin@${host.ipaddress}: wrong username or password` } });
  });
});

describe('deleteHost', () => {
  it('refuses an unknown host and an Enabled one without forced, changing nothing', async () => {
    const unknown = randomUUID();
    refused(await admin.call('deleteHost', {}), 'deleteHost', 431, missing('deletehost', 'id'));
    refused(await admin.call('deleteHost', { id: unknown }), 'deleteHost', 431, noEntity('deletehost', 'id', unknown));
    const host = await createHostRecord((await getCluster(cluster.id))!, { name: unique('enabled'), ipaddress: '10.66.3.1' });
    const hosts = await hostCount();
    refused(
      await admin.call('deleteHost', { id: host.id }),
      'deleteHost',
      530,
      `Host ${host.id} cannot be deleted as it is not in maintenance mode. Either put the host into maintenance or perform a forced deletion.`,
    );
    refused(await admin.call('deleteHost', { id: host.id, forced: false }), 'deleteHost', 530, /cannot be deleted as it is not in maintenance mode/);
    refused(await user.call('deleteHost', { id: host.id }), 'deleteHost', 432, 'The given command does not exist or it is not available for user');
    expect(await hostCount()).toBe(hosts);
    expect(await getHost(host.id)).toBeDefined();
  });

  it('deletes a Maintenance host, or any with forced (a Disabled one only so, as upstream), giving the cluster its place back', async () => {
    const c = await getCluster(cluster.id);
    const disabled = await createHostRecord(c!, { name: unique('disabled'), ipaddress: '10.66.3.2', resourcestate: 'Disabled' });
    const maintenance = await createHostRecord(c!, { name: unique('maint'), ipaddress: '10.66.3.3', resourcestate: 'Maintenance' });
    const enabled = await createHostRecord(c!, { name: unique('forced'), ipaddress: '10.66.3.4' });
    const hosts = await hostCount();
    refused(await admin.call('deleteHost', { id: disabled.id }), 'deleteHost', 530, `Host ${disabled.id} cannot be deleted as it is not in maintenance mode. Either put the host into maintenance or perform a forced deletion.`);
    expect(await hostCount()).toBe(hosts);
    expect(ok(await admin.call('deleteHost', { id: disabled.id, forced: true }), 'deleteHost')).toEqual({ success: true });
    expect(ok(await admin.call('deleteHost', { id: maintenance.id }), 'deleteHost')).toEqual({ success: true });
    expect(ok(await admin.call('deleteHost', { id: enabled.id, forced: true }), 'deleteHost')).toEqual({ success: true });
    expect(await hostCount()).toBe(hosts - 3);
    for (const host of [disabled, maintenance, enabled]) expect(await getHost(host.id)).toBeUndefined();
    refused(await admin.call('deleteHost', { id: enabled.id, forced: true }), 'deleteHost', 431, noEntity('deletehost', 'id', enabled.id));
    const events = ok(await admin.call('listEvents', { type: 'HOST.DELETE', listall: true }), 'listEvents').event;
    expect(events.map((e: any) => e.resourceid)).toEqual(expect.arrayContaining([disabled.id, maintenance.id, enabled.id]));
  });
});

describe('template download on registerTemplate', () => {
  const QCOW2_SHA256 = `{SHA-256}${'ab'.repeat(32)}`;
  let pool: any;
  let downloader: any;
  beforeAll(async () => {
    pool = ok(
      await admin.call('createStoragePool', { zoneid: zone.id, podid: otherPod.id, clusterid: otherCluster.id, name: unique('smp'), url: 'SharedMountPoint://localhost/var/lib/mold/primary/' }),
      'createStoragePool',
    ).storagepool;
    downloader = (await addHostAnswered(freshAddress(), { result: facts({ hostname: 'kvm-dl' }) }, { podid: otherPod.id, clusterid: otherCluster.id })).job.jobresult.host[0];
  });

  const register = async (z: any, name = unique('tpl')) =>
    ok(
      await admin.call('registerTemplate', { name, url: 'http://127.0.0.1:9/image.qcow2', format: 'QCOW2', hypervisor: 'KVM', zoneid: z.id, ostypeid: await osType(), checksum: QCOW2_SHA256 }),
      'registerTemplate',
    ).template[0];
  const osType = async () => ok(await admin.call('listOsTypes', { pagesize: 1 }), 'listOsTypes').ostype[0].id;
  const row = async (id: string, zoneid: string) => ok(await admin.call('listTemplates', { templatefilter: 'all', id, zoneid }), 'listTemplates').template[0];

  it('has an Up host of the pool’s cluster download it into the pool: ready, Download Complete', async () => {
    const template = await register(zone);
    expect(template).toMatchObject({ isready: false });
    const message = await receiveCommand(seeded.agent.queueUrl);
    expect(message).toMatchObject({
      type: 'downloadTemplate',
      payload: {
        host: { hostId: downloader.id, address: downloader.ipaddress, username: 'root', port: 22 },
        templateId: template.id,
        url: 'http://127.0.0.1:9/image.qcow2',
        checksum: QCOW2_SHA256,
        destination: `/var/lib/mold/primary/${template.id}.qcow2`,
      },
    });
    // Long downloads get a long deadline (6 h); the agent's heartbeats keep them alive.
    expect(Date.parse(message.deadline)).toBeGreaterThan(Date.now() + 3600_000);
    expect(await row(template.id, zone.id)).toMatchObject({ isready: false, status: '0% Downloaded' });
    await answer(message, { result: { path: `/var/lib/mold/primary/${template.id}.qcow2`, size: 1234567, checksum: 'ab'.repeat(32) } });
    const job = await admin.waitForJob(message.commandId);
    expect(job).toMatchObject({ jobstatus: 1, cmd: 'registerTemplate', jobinstancetype: 'Template', jobinstanceid: template.id });
    expect(await row(template.id, zone.id)).toMatchObject({ isready: true, status: 'Download Complete', size: 1234567 });
    expect((await getTemplate(template.id))!.zones[zone.id]).toMatchObject({
      downloadState: 'DOWNLOADED',
      installPath: `/var/lib/mold/primary/${template.id}.qcow2`,
      poolId: pool.id,
      size: 1234567,
    });
    const events = ok(await admin.call('listEvents', { type: 'TEMPLATE.DOWNLOAD.SUCCESS', listall: true }), 'listEvents').event;
    expect(events[0]).toMatchObject({ resourceid: template.id, level: 'INFO' });
  });

  it('marks the copy failed with the agent’s reason (a wrong checksum)', async () => {
    const template = await register(zone);
    const message = await receiveCommand(seeded.agent.queueUrl);
    const cause = `Checksum mismatch for ${template.id}: expected SHA-256 ${'ab'.repeat(32)}, got ${'cd'.repeat(32)}`;
    await answer(message, { error: 'ChecksumMismatch', cause });
    expect(await admin.waitForJob(message.commandId)).toMatchObject({ jobstatus: 2, jobresult: { errortext: cause } });
    expect(await row(template.id, zone.id)).toMatchObject({ isready: false, status: cause });
    const events = ok(await admin.call('listEvents', { type: 'TEMPLATE.DOWNLOAD.FAILED', listall: true }), 'listEvents').event;
    expect(events[0]).toMatchObject({ resourceid: template.id, level: 'ERROR', description: `Template ${template.id} could not be downloaded: ${cause}` });
  });

  it('leaves the copy of a zone with no host or pool to download to as registered, not ready', async () => {
    const jobs = await jobCount();
    const template = await register(bareZone);
    expect(await row(template.id, bareZone.id)).toMatchObject({ isready: false, status: 'Download pending' });
    expect(await jobCount()).toBe(jobs);
  });
});
