// End to end on a two-host lab, through the HTTP API and a real agent process: enrol → addHost twice
// (by password, then by the agent's key alone) → both Up with the hosts' real CPU and memory → a
// template downloaded to primary storage → one host cut off → Disconnected, then Down, with events and
// alerts → restored → Up again. Then the command channel's edges: a command delivered twice runs once,
// and a command to an agent that is down fails on its timeout. Needs root (the lab); skipped otherwise.
import { createHash } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labAt, type Lab } from '../lab/lab.ts';
import { addHostAnswer } from '../support/add-host.ts';
import { adminClient, type ApiClient } from '../support/client.ts';
import { enrolAgent, startAgent, type EnrolledAgent, type RunningAgent } from '../support/agent.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';
import { patience, until } from '../support/wait.ts';
import { freePort } from '../../infra/local/ports.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(3);
const PING_INTERVAL = 2;
const PING_TIMEOUT = 2;
const SWEEP_SECONDS = 1;
/**
 * A cut-off host changes state within: the silence the sweeper judges (ping.timeout × ping.interval),
 * one sweep, and the agent's probe of the host giving up (its SSH handshake limit, 10 s).
 */
const HOST_STATE_MS = (PING_TIMEOUT * PING_INTERVAL + SWEEP_SECONDS + 10) * 1000;
/** A command the agent was told to give up on after this many seconds has failed by then. */
const COMMAND_TIMEOUT = 3;

let runtime: RunningRuntime;
let labInfo: Lab;
let port: number;
const RUNTIME_ENV = { MOLD_SWEEP_INTERVAL_SECONDS: String(SWEEP_SECONDS) };
let admin: ApiClient;
let agent: RunningAgent | undefined;
let enrolled: EnrolledAgent;
let templateServer: Server;
let templateUrl: string;
let earlyTemplateId: string;
let osTypeId: string;
let templateBytes: Buffer;
let zoneId: string;
let podId: string;
let clusterId: string;
const hostIds: string[] = [];

async function ok(command: string, params: Record<string, string | number | boolean> = {}) {
  const answer = await admin.call(command, params);
  if (answer.status !== 200) throw new Error(`${command}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body[`${command.toLowerCase()}response`];
}

async function job(command: string, params: Record<string, string | number | boolean>, timeoutMs = 60_000) {
  const { jobid } = await ok(command, params);
  return admin.waitForJob(jobid, timeoutMs);
}

async function host(id: string) {
  return (await ok('listHosts', { id })).host[0];
}

function registration(name: string) {
  return {
    name,
    displaytext: name,
    url: templateUrl,
    format: 'QCOW2',
    hypervisor: 'KVM',
    zoneid: zoneId,
    ostypeid: osTypeId,
    checksum: `{SHA-256}${createHash('sha256').update(templateBytes).digest('hex')}`,
  };
}

async function template(id: string) {
  return (await ok('listTemplates', { id, templatefilter: 'all' })).template[0];
}

/** The host's own view of itself: `virsh nodeinfo` for CPUs, /proc/meminfo for memory. */
async function nodeinfo(index: number) {
  const { stdout } = await lab.hostExec(index, ['virsh', '-c', 'qemu:///system', 'nodeinfo']);
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(stdout)![1]);
  const meminfo = (await lab.hostExec(index, ['cat', '/proc/meminfo'])).stdout;
  return { cpus: field('CPU\\(s\\)'), mhz: field('CPU frequency'), memoryKiB: Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)![1]) };
}

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'the agent on a two-host lab' : 'the agent on a two-host lab (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    // A fixed port: the agent keeps its base URL across the runtime's restart (last test).
    port = await freePort();
    [labInfo, runtime] = await Promise.all([lab.up(2), startRuntime({ port, env: RUNTIME_ENV })]);
    admin = adminClient(runtime.apiUrl, runtime.credentials);

    // A qcow2 image served from loopback; the agent fetches it itself.
    const dir = await mkdtemp(join(tmpdir(), 'mold-template-'));
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'tiny.qcow2'), '64M']);
    templateBytes = readFileSync(join(dir, 'tiny.qcow2'));
    templateServer = createServer((req, res) => {
      if (req.url !== '/tiny.qcow2') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': templateBytes.length }).end(templateBytes);
    });
    await new Promise<void>((r) => templateServer.listen(0, '127.0.0.1', r));
    templateUrl = `http://127.0.0.1:${(templateServer.address() as AddressInfo).port}/tiny.qcow2`;

    zoneId = (await ok('createZone', { name: 'lab', networktype: 'Advanced', dns1: lab.names.gateway, internaldns1: lab.names.gateway })).zone.id;
    podId = (await ok('createPod', { name: 'pod1', zoneid: zoneId, gateway: lab.names.gateway, netmask: '255.255.255.0', startip: lab.names.address(100), endip: lab.names.address(150) })).pod.id;
    clusterId = (await ok('addCluster', { clustername: 'c1', zoneid: zoneId, podid: podId, hypervisor: 'KVM', clustertype: 'CloudManaged' })).cluster[0].id;
    for (const [id, allocationstate] of [['updateZone', zoneId], ['updatePod', podId], ['updateCluster', clusterId]]) {
      await ok(id, { id: allocationstate, allocationstate: 'Enabled' });
    }
    await ok('createStoragePool', {
      name: 'primary',
      zoneid: zoneId,
      podid: podId,
      clusterid: clusterId,
      scope: 'cluster',
      url: `SharedMountPoint:///${lab.names.dir.replace(/^\//, '')}/primary`,
    });
    osTypeId = (await ok('listOsTypes', { keyword: 'Other' })).ostype[0].id;
    // Registered before the zone has any host: the sweeper starts its download once one is Up.
    earlyTemplateId = (await ok('registerTemplate', registration('early'))).template[0].id;
    await ok('updateConfiguration', { name: 'ping.interval', value: PING_INTERVAL });
    await ok('updateConfiguration', { name: 'ping.timeout', value: PING_TIMEOUT });
  }, patience(180_000));

  afterAll(async () => {
    await agent?.stop();
    await runtime?.stop();
    templateServer?.close();
    await lab.down();
  }, patience(120_000));

  it('enrols an agent with a single-use token and lists it', async () => {
    enrolled = await enrolAgent(admin, runtime.apiUrl, zoneId);
    const [listed] = (await ok('listAgents', { id: enrolled.agentId })).agent;
    agent = await startAgent(enrolled.dir);
    expect(listed).toMatchObject({ id: enrolled.agentId, zoneid: zoneId, state: 'Enabled' });
    // The key the admin reads from listAgents is the agent's (the comment may differ).
    expect(listed.sshpublickey.split(' ').slice(0, 2)).toEqual(enrolled.sshPublicKey.split(' ').slice(0, 2));
  }, patience(60_000));

  it('adds a host by password and a second by the agent key alone; both come Up with their real facts', async () => {
    const password = labInfo.password;
    const first = await addHostAnswer(admin, { zoneid: zoneId, podid: podId, clusterid: clusterId, url: `ssh://${lab.names.hostAddress(1)}`, username: 'root', password, hypervisor: 'KVM' });
    expect(first.jobstatus).toBe(1);
    const added = first.jobresult.host[0];
    hostIds.push(added.id);

    // Key-only: the admin puts the agent's public key (from listAgents) on the host beforehand.
    await lab.hostExec(2, ['sh', '-c', `printf '%s\\n' '${enrolled.sshPublicKey}' >> /root/.ssh/authorized_keys`]);
    const second = await addHostAnswer(admin, { zoneid: zoneId, podid: podId, clusterid: clusterId, url: lab.names.hostAddress(2), username: 'root', hypervisor: 'KVM' });
    expect(second.jobstatus).toBe(1);
    hostIds.push(second.jobresult.host[0].id);

    for (const [i, id] of hostIds.entries()) {
      const listed = await host(id);
      const facts = await nodeinfo(i + 1);
      expect(listed).toMatchObject({
        state: 'Up',
        resourcestate: 'Enabled',
        name: `${lab.names.netnsPrefix}${i + 1}`,
        ipaddress: lab.names.hostAddress(i + 1),
        hypervisor: 'KVM',
        cpunumber: facts.cpus,
        cpuspeed: facts.mhz,
        memorytotal: facts.memoryKiB * 1024,
        zoneid: zoneId,
        clusterid: clusterId,
      });
    }
    // The first host now trusts the agent's key: the password was used once and is stored nowhere.
    const keys = await readFile(join(lab.names.dir, 'h1', 'root-ssh', 'authorized_keys'), 'utf8');
    expect(keys).toContain(enrolled.sshPublicKey.split(' ')[1]);
    expect(runtime.output()).not.toContain(password);
    expect(agent!.output()).not.toContain(password);
  }, patience(120_000));

  it('downloads a registered template to primary storage and verifies its checksum', async () => {
    const registered = await ok('registerTemplate', registration('tiny'));
    const templateId = registered.template[0].id;
    const ready = await until('the template to be ready', () => template(templateId), (t) => t.isready === true || /fail|error/i.test(t.status ?? ''));
    expect(ready.status).toBe('Download Complete');
    expect(ready.isready).toBe(true);
    const onDisk = join(lab.names.dir, 'primary', `${templateId}.qcow2`);
    expect(existsSync(onDisk)).toBe(true);
    expect(readFileSync(onDisk).equals(templateBytes)).toBe(true);
    // The one registered before any host was Up follows through the sweeper.
    const early = await until('the early template to be ready', () => template(earlyTemplateId), (t) => t.isready === true || /fail|error/i.test(t.status ?? ''), { within: 60_000 });
    expect(early.status).toBe('Download Complete');
    expect(existsSync(join(lab.names.dir, 'primary', `${earlyTemplateId}.qcow2`))).toBe(true);
  }, patience(120_000));

  it('moves a host that is cut off to Disconnected, then Down, with events and alerts, and back Up when it returns', async () => {
    const [, cutId] = hostIds;
    const veth = `${lab.names.vethPrefix}2`;
    execFileSync('ip', ['link', 'set', veth, 'down']);
    try {
      const seen = new Set<string>();
      await until('Disconnected', () => host(cutId), (h) => (seen.add(h.state), h.state === 'Disconnected'), { within: HOST_STATE_MS });
      await until('Down', () => host(cutId), (h) => (seen.add(h.state), h.state === 'Down'), { within: HOST_STATE_MS });
      // In order; Alert comes between when the agent's verdict (unreachable) is later than ping.timeout.
      expect([...seen]).toEqual(['Up', 'Disconnected', 'Alert', 'Down'].filter((s) => seen.has(s)));
      expect(seen.has('Disconnected')).toBe(true);
      // The other host stays Up all along.
      expect((await host(hostIds[0]!)).state).toBe('Up');
    } finally {
      execFileSync('ip', ['link', 'set', veth, 'up']);
    }
    await until('Up again', () => host(cutId), (h) => h.state === 'Up', { within: HOST_STATE_MS });

    const events = (await ok('listEvents', { type: 'HOST.STATUS.TRANSITION', listall: true, pagesize: 100 })).event ?? [];
    const forHost = events.filter((e: any) => e.resourceid === cutId || e.description?.includes(cutId)).map((e: any) => e.description);
    expect(forHost.some((d: string) => /from Up to Disconnected/.test(d))).toBe(true);
    expect(forHost.some((d: string) => /from (Disconnected|Alert) to Down/.test(d))).toBe(true);
    expect(forHost.some((d: string) => /to Up/.test(d))).toBe(true);
    const alerts = (await ok('listAlerts', { pagesize: 100 })).alert ?? [];
    const subjects = alerts.map((a: any) => a.description as string);
    expect(subjects.some((s: string) => s.startsWith(`Host disconnected, name: ${lab.names.netnsPrefix}2`))).toBe(true);
    expect(subjects.some((s: string) => s.startsWith(`Host is down, name: ${lab.names.netnsPrefix}2`))).toBe(true);
    expect(alerts.every((a: any) => a.type === 7)).toBe(true);
  }, patience(120_000));

  it('runs a command delivered twice only once', async () => {
    await agent!.stop();
    agent = undefined;
    const { jobid } = await ok('pingHost', { id: hostIds[0]! });
    // The command waits on the stopped agent's queue; deliver it a second time, as SQS may.
    const sqs = new SQSClient({
      endpoint: runtime.endpoints.sqs,
      useQueueUrlAsEndpoint: false,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const queueUrl = JSON.parse(await readFile(join(enrolled.dir, 'agent.json'), 'utf8')).queueUrl as string;
    let body: string | undefined;
    for (let i = 0; i < 50 && !body; i++) {
      const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1, MaxNumberOfMessages: 1 }));
      if (Messages?.[0]) {
        body = Messages[0].Body!;
        await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
        await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
        await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: Messages[0].ReceiptHandle! }));
      }
    }
    expect(body, JSON.stringify(await admin.call('queryAsyncJobResult', { jobid }))).toBeDefined();
    const { commandId } = JSON.parse(body!) as { commandId: string };

    agent = await startAgent(enrolled.dir);
    const done = await admin.waitForJob(jobid, 30_000);
    expect(done.jobstatus, `${JSON.stringify(done.jobresult)}\n${agent.output().slice(-4000)}`).toBe(1);
    // One run. The other copy is answered from the journal, or (arriving while the first ran) folded
    // into it; either way both copies leave the queue.
    // Only the lines that say how a copy ended (the agent also logs each run's start).
    const mine = () => agent!.lines().filter((l) => l.commandId === commandId && (l.message === 'command' || l.message === 'command redelivered while running'));
    await until('both copies handled', async () => mine(), (l) => l.length >= 2, { within: 15_000 });
    expect(mine().filter((l) => l.message === 'command' && !l.replayed)).toHaveLength(1);
    expect(mine().filter((l) => (l.message === 'command' && l.replayed) || l.message === 'command redelivered while running')).toHaveLength(1);
    await until(
      'the queue to be empty',
      async () => (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))).Attributes!,
      (a) => a.ApproximateNumberOfMessages === '0' && a.ApproximateNumberOfMessagesNotVisible === '0',
      { within: 15_000 },
    );
  }, patience(90_000));

  it('fails a command on its timeout, with a clear error, when the agent is down', async () => {
    await agent?.stop();
    agent = undefined;
    await ok('updateConfiguration', { name: 'agent.command.timeout', value: COMMAND_TIMEOUT });
    const failed = await job('pingHost', { id: hostIds[0]! }, (COMMAND_TIMEOUT + SWEEP_SECONDS + 5) * 1000);
    expect(failed).toMatchObject({ jobstatus: 2, jobresult: { errorcode: 530 } });
    expect(failed.jobresult.errortext).toMatch(/did not answer in time/);
  }, patience(60_000));

  it('keeps serving after the local runtime restarts (its SQS emulator loses the queues)', async () => {
    await ok('updateConfiguration', { name: 'agent.command.timeout', value: 60 });
    agent = await startAgent(enrolled.dir);
    const dataDir = runtime.dataDir;
    await runtime.stop();
    runtime = await startRuntime({ dataDir, port, env: RUNTIME_ENV });
    const done = await job('pingHost', { id: hostIds[0]! }, 60_000);
    expect(done.jobstatus, `${JSON.stringify(done.jobresult)}\n${agent.output().slice(-3000)}`).toBe(1);
  }, patience(120_000));
});
