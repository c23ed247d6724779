// Two agents serving one zone of a two-host lab (shared/agent-leases.ts): the one holding the hosts is
// killed (SIGKILL) in the middle of a deploy; the deploy completes once, through the survivor, which
// holds both hosts with a newer epoch (the hosts' fence files say so too); revived, the old agent holds
// nothing and a command of its old epoch is refused by the host's fence and handed back, so it acts on
// nothing. Revoking an agent hands its hosts over as well. Needs root (the lab); skipped otherwise.
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FENCE_DIR } from '../../agent/fence.ts';
import { sqs } from '../../shared/aws.ts';
import { getAgent } from '../../shared/db/agents.ts';
import { freePort } from '../../infra/local/ports.ts';
import { labAt, type Lab } from '../lab/lab.ts';
import { enrolAgent, startAgent, type EnrolledAgent, type RunningAgent } from '../support/agent.ts';
import { adminClient } from '../support/client.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { buildVmWorld, type VmWorld } from '../support/vm-world.ts';
import { patience, until } from '../support/wait.ts';

const isRoot = process.getuid?.() === 0;
const lab = labAt(20);
/** Short leases (renewed every 2 s), so a takeover comes within a test's patience. */
const LEASE_SECONDS = 8;

let labInfo: Lab;
let runtime: RunningRuntime;
let world: VmWorld;
let first: { agentId: string; dir: string; run: RunningAgent };
let second: { enrolled: EnrolledAgent; run: RunningAgent };
let revived: RunningAgent | undefined;
let admin: ReturnType<typeof adminClient>;

const ok = (command: string, params: Record<string, string | number | boolean> = {}) => world.ok(command, params);
const agents = async () => (await ok('listAgents', { zoneid: world.zoneId })).agent as any[];
const agentRow = async (id: string) => (await agents()).find((a) => a.id === id);
const virsh = (index: number, ...args: string[]) => lab.hostExec(index, ['virsh', '-c', 'qemu:///system', ...args], { allowFail: true });
const domains = async (index: number) => (await virsh(index, 'list', '--all', '--name')).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
const fence = async (index: number, hostId: string) => (await lab.hostExec(index, ['cat', `${FENCE_DIR}/${hostId}`], { allowFail: true })).stdout.trim();

const suite = isRoot ? describe : describe.skip;
suite(isRoot ? 'two agents on one zone' : 'two agents on one zone (skipped: the lab needs root)', () => {
  beforeAll(async () => {
    [labInfo, runtime] = await Promise.all([lab.up(2), startRuntime({ env: { MOLD_SWEEP_INTERVAL_SECONDS: '2' } })]);
    useRuntimeEndpoints(runtime);
    admin = adminClient(runtime.apiUrl, runtime.credentials);
    const set = await admin.call('updateConfiguration', { name: 'agent.lease.seconds', value: LEASE_SECONDS }, { method: 'POST' });
    if (set.status !== 200) throw new Error(JSON.stringify(set.body));
    world = await buildVmWorld(lab, labInfo, runtime, admin, { name: 'ha' });
    first = { agentId: world.agentId, dir: world.agentDir, run: world.agent };
    const enrolled = await enrolAgent(admin, runtime.apiUrl, world.zoneId, mkdtempSync(join(tmpdir(), 'mold-agent-b-')));
    second = { enrolled, run: await startAgent(enrolled.dir, { MOLD_AGENT_VLAN_FALLBACK: 'isolated', MOLD_AGENT_CONSOLE_LISTEN: `127.0.0.1:${await freePort()}` }) };
  }, patience(300_000));

  afterAll(async () => {
    // For whoever reads a failure: what each agent said.
    writeFileSync(join(tmpdir(), `mold-agent-ha-lab-${process.env.MOLD_LAB_BASE ?? 0}.log`), [first?.run, second?.run, revived].map((r) => r?.output() ?? '').join('\n=====\n'));
    await revived?.stop();
    await second?.run.stop();
    await world?.close();
    await runtime?.stop();
    await lab.down();
  }, patience(120_000));

  it('lists both agents holding their leases, the first with both hosts under epoch 1', async () => {
    await until('both agents to hold their leases', agents, (list) => list.length === 2 && list.every((a) => a.holdslease === true), { within: 30_000 });
    const a = await agentRow(first.agentId);
    expect(a.hostcount).toBe(2);
    expect(a.host.map((h: any) => h.id).sort()).toEqual(world.hosts.map((h) => h.id).sort());
    expect(a.host.every((h: any) => h.leaseepoch === 1)).toBe(true);
    expect(a.leaseexpires).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect((await agentRow(second.enrolled.agentId)).hostcount).toBe(0);
    for (const h of world.hosts) await until(`the fence of ${h.address} to hold epoch 1`, () => fence(h.index, h.id), (v) => v === '1', { within: 30_000 });
    // The holder puts the zone's agent keys on its hosts (its next report): the second agent can reach them.
    const secondKey = second.enrolled.sshPublicKey.split(' ')[1]!;
    for (const h of world.hosts) {
      await until(`the second agent's key on ${h.address}`, async () => (await lab.hostExec(h.index, ['cat', '/root/.ssh/authorized_keys'])).stdout, (keys) => keys.includes(secondKey), { within: 60_000 });
    }
  }, patience(120_000));

  it('completes a deploy once through the survivor when the holding agent is killed in the middle of it', async () => {
    const target = world.hosts[0]!;
    const { jobid } = await ok('deployVirtualMachine', world.deployParams('ha-1', { hostid: target.id }));
    // Killed once it has started the VM's startVm (its log says so), before it could answer.
    await until('the first agent to start the deploy\'s startVm', async () => first.run.lines(), (lines) => lines.some((l) => l.message === 'command started' && l.type === 'startVm'), {
      within: 60_000,
      every: 20,
    });
    first.run.process.kill('SIGKILL');
    await until('the first agent to be dead', async () => first.run.process.exitCode !== null || first.run.process.signalCode !== null, (dead) => dead, { within: 10_000 });
    expect(first.run.lines().filter((l) => l.message === 'command' && l.type === 'startVm')).toEqual([]);

    const result = await admin.waitForJob(jobid, 180_000, 200);
    expect(result.jobstatus, JSON.stringify(result.jobresult)).toBe(1);
    const vm = result.jobresult.virtualmachine;
    expect(vm).toMatchObject({ name: 'ha-1', state: 'Running', hostid: target.id });
    // Once: one domain on the lab, and the survivor ran the startVm (moved to it) and answered once.
    expect(await domains(target.index)).toContain(vm.instancename);
    expect(await domains(world.hosts[1]!.index)).not.toContain(vm.instancename);
    const answered = second.run.lines().filter((l) => l.message === 'command' && l.type === 'startVm' && l.commandId === `${jobid}-startVm`);
    expect(answered).toHaveLength(1);
    expect(answered[0]).toMatchObject({ outcome: 'success' });

    // The survivor holds both hosts under epoch 2; the hosts' fences say 2.
    const b = await until('the survivor to hold both hosts', () => agentRow(second.enrolled.agentId), (row) => row.hostcount === 2, { within: 60_000 });
    expect(b.host.every((h: any) => h.leaseepoch === 2)).toBe(true);
    expect((await agentRow(first.agentId)).hostcount).toBe(0);
    for (const h of world.hosts) expect(await fence(h.index, h.id)).toBe('2');
    const events = ((await ok('listEvents', { type: 'AGENT.LEASE.TRANSFER', listall: true, pagesize: 100 })).event ?? []) as any[];
    for (const h of world.hosts) expect(events.some((e) => e.resourceid === h.id && /epoch 2 .*lease lapsed/.test(e.description))).toBe(true);
    // The hosts are Up, reported by the survivor.
    await until('both hosts to be Up', async () => (await ok('listHosts', { zoneid: world.zoneId })).host as any[], (hosts) => hosts.every((h) => h.state === 'Up'), { within: 60_000 });
  }, patience(300_000));

  it('revived, the old agent holds nothing, and a command of its old epoch is refused by the host and handed back', async () => {
    revived = await startAgent(first.dir, { MOLD_AGENT_VLAN_FALLBACK: 'isolated' });
    await until('the revived agent to renew its lease', () => agentRow(first.agentId), (row) => row.holdslease === true, { within: 30_000 });
    expect((await agentRow(first.agentId)).hostcount).toBe(0);
    expect((await agentRow(second.enrolled.agentId)).hostcount).toBe(2);

    // A command as it was sent before the takeover (epoch 1), lying on the old agent's queue.
    const target = world.hosts[0]!;
    const queueUrl = (await getAgent(first.agentId))!.queueUrl;
    const commandId = `stale-${Date.now()}`;
    await sqs().send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify({
          commandId,
          type: 'pingHost',
          deadline: new Date(Date.now() + 600_000).toISOString(),
          payload: { host: { hostId: target.id, address: target.address, port: 22, username: 'root', epoch: 1 } },
          taskToken: 'no-such-task',
        }),
      }),
    );
    const handed = await until('the revived agent to hand the stale command back', async () => revived!.lines(), (lines) => lines.some((l) => l.message === 'command handed back' && l.commandId === commandId), { within: 60_000 });
    expect(handed.find((l) => l.message === 'command handed back' && l.commandId === commandId)).toMatchObject({ moved: true, reason: expect.stringMatching(/fence holds lease epoch 2/) });
    expect(revived.lines().filter((l) => l.message === 'command' && l.commandId === commandId)).toEqual([]);
    // The holder ran it under its own epoch; the fence still says 2.
    await until('the survivor to run the handed-back command', async () => second.run.lines(), (lines) => lines.some((l) => l.message === 'command' && l.commandId === commandId), { within: 60_000 });
    expect(await fence(target.index, target.id)).toBe('2');
  }, patience(180_000));

  it('hands the hosts of a revoked agent to the other', async () => {
    // Revoking the survivor: the revived first agent takes both hosts, with epoch 3.
    await ok('revokeAgent', { id: second.enrolled.agentId });
    const a = await until('the first agent to hold both hosts again', () => agentRow(first.agentId), (row) => row.hostcount === 2, { within: 60_000 });
    expect(a.host.every((h: any) => h.leaseepoch === 3)).toBe(true);
    for (const h of world.hosts) await until(`the fence of ${h.address} to hold epoch 3`, () => fence(h.index, h.id), (v) => v === '3', { within: 60_000 });
    const events = ((await ok('listEvents', { type: 'AGENT.LEASE.TRANSFER', listall: true, pagesize: 100 })).event ?? []) as any[];
    expect(events.filter((e) => /epoch 3 .*revoked/.test(e.description))).toHaveLength(2);
  }, patience(120_000));
});
