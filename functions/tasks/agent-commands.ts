// Task actions of statemachines/agent-command.asl.json: each command an agent runs for the control
// plane, as { prepare, finish, abort } in one place. Prepare picks the agent's queue and builds the
// command message; Finish turns the agent's result into records and the job's response; Abort
// releases or marks what the command held when anything failed (the agent, its silence, Prepare or
// Finish). Every step is idempotent: Lambda retries and a redelivered command change nothing twice.
// Secrets in args arrive sealed to the agent's certificate (the API handler sealed them), so neither
// the execution's history nor these steps ever see a password.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { agentCommands, hostTarget, OOBM_POWER_ACTIONS, sealedSecret, type AgentCommandType, type HostFacts, type HostTarget } from '../../shared/agent/protocol.ts';
import { getZone } from '../../shared/db/infrastructure.ts';
import { oobmOptionsOf, nextPowerState, oobmAuthAlert, oobmRefusal, oobmTargetOf, readingEvent, renderOobm } from '../../shared/oobm.ts';
import { settingsFor } from '../../shared/settings.ts';
import { InternalError, InvalidParameter, ResourceUnavailable } from '../../shared/cloudstack/errors.ts';
import { getAgent, type Agent } from '../../shared/db/agents.ts';
import { recordEvent } from '../../shared/db/events.ts';
import { createHostRecord, getHost, listHostRecords, transitionStatus, updateHostRecord, type Host } from '../../shared/db/hosts.ts';
import { getCluster } from '../../shared/db/infrastructure.ts';
import { cloudstackDate, getJob } from '../../shared/db/jobs.ts';
import { getTemplate, markTemplateDownloaded, markTemplateDownloading, markTemplateFailed, TemplateGone } from '../../shared/db/templates.ts';
import { loadSettings } from '../../shared/settings.ts';
import { hostContext, renderHost } from '../api/commands/hosts.ts';
import { jobError, stepFunctionsError } from './jobs.ts';

export const AGENT_OPS = ['pingHost', 'addHost', 'reconnectHost', 'updateHostPassword', 'downloadTemplate', 'oobmPowerAction', 'oobmChangePassword'] as const;
export type AgentOp = (typeof AGENT_OPS)[number];

/**
 * A download's time limit. Its agent heartbeats while it streams (HeartbeatSeconds in the state
 * machine), so a dead agent still fails the job within a minute; this only bounds a slow download.
 */
export const DOWNLOAD_TIMEOUT_SECONDS = 6 * 3600;

const prepared = z.object({
  queueUrl: z.string(),
  command: z.object({ commandId: z.string(), type: z.string(), deadline: z.string(), payload: z.unknown() }),
  timeoutSeconds: z.number(),
});
type Prepared = z.infer<typeof prepared>;

const anyArgs = z.record(z.string(), z.unknown());
export const agentCommandActions = [
  z.object({ action: z.literal('prepareAgentCommand'), jobId: z.string(), op: z.enum(AGENT_OPS), args: anyArgs }),
  z.object({ action: z.literal('finishAgentCommand'), jobId: z.string(), op: z.enum(AGENT_OPS), args: anyArgs, prepared, result: z.unknown() }),
  z.object({ action: z.literal('abortAgentCommand'), jobId: z.string(), op: z.enum(AGENT_OPS), args: anyArgs, error: stepFunctionsError }),
] as const;
export type AgentCommandTask = z.infer<(typeof agentCommandActions)[number]>;

// ---- what each op's args hold (written by the API handler that started the job) ----

export const pingHostArgs = z.object({ agentId: z.string(), host: hostTarget, name: z.string() });
export const addHostArgs = z.object({
  agentId: z.string(),
  hostId: z.string(),
  zoneId: z.string(),
  podId: z.string(),
  clusterId: z.string(),
  address: z.string(),
  port: z.number().int(),
  username: z.string(),
  password: sealedSecret.optional(),
  hosttags: z.array(z.string()),
  allocationstate: z.enum(['Enabled', 'Disabled']),
});
export const reconnectHostArgs = z.object({ hostId: z.string() });
export const updateHostPasswordArgs = z.object({ agentId: z.string(), hostId: z.string(), username: z.string(), password: sealedSecret, setOnHost: z.boolean() });
export const oobmPowerActionArgs = z.object({ agentId: z.string(), hostId: z.string(), action: z.enum(OOBM_POWER_ACTIONS), timeout: z.number().int().positive().optional() });
export const oobmChangePasswordArgs = z.object({ agentId: z.string(), hostId: z.string(), password: sealedSecret });
export const downloadTemplateArgs = z.object({
  agentId: z.string(),
  templateId: z.string(),
  zoneId: z.string(),
  hostId: z.string(),
  poolId: z.string(),
  destination: z.string(),
});

interface OpDefinition<A extends z.ZodType> {
  type: AgentCommandType;
  args: A;
  /** Short commands take agent.command.timeout (unless prepare names its own); the others DOWNLOAD_TIMEOUT_SECONDS. */
  short: boolean;
  prepare(jobId: string, args: z.infer<A>): Promise<{ agentId: string; payload: unknown; timeoutSeconds?: number }>;
  finish(jobId: string, args: z.infer<A>, result: any, prepared: Prepared): Promise<Record<string, unknown>>;
  /** `error` is the failure's name (the agent's, e.g. OobmAuthError, or States.Timeout). */
  abort?(jobId: string, args: z.infer<A>, errortext: string, error: string): Promise<void>;
}

const define = <A extends z.ZodType>(op: OpDefinition<A>) => op;

/** How the agent reaches a managed host: its own key, the login and port learnt at addHost, and the epoch of the lease it drives it under. */
export const targetOf = (host: Host): HostTarget => ({
  hostId: host.id,
  address: host.ipaddress,
  port: host.port ?? 22,
  username: host.username ?? 'root',
  ...(host.leaseEpoch !== undefined && { epoch: host.leaseEpoch }),
});

async function managedHost(hostId: string): Promise<Host> {
  const host = await getHost(hostId);
  if (!host) throw new InvalidParameter(`Host with id ${hostId} doesn't exist`);
  return host;
}

function agentOf(host: Host): string {
  if (!host.agentId) throw new ResourceUnavailable(`Host ${host.name} (${host.id}) has no agent: it was not added through one. Delete it and add it again with addHost.`);
  return host.agentId;
}

/** The fields a host record takes from the agent's facts. */
function factFields(facts: HostFacts, agent: Agent | undefined) {
  return {
    cpunumber: facts.cpus,
    cpuspeed: facts.cpuMhz,
    cpusockets: facts.cpuSockets,
    memorytotal: facts.memoryBytes,
    arch: facts.arch,
    hostUuid: facts.hostUuid,
    // Upstream's KVM host reports the hypervisor's (qemu's) version here and the agent's as `version`.
    hypervisorversion: facts.qemuVersion,
    libvirtversion: facts.libvirtVersion,
    qemuversion: facts.qemuVersion,
    domaintype: facts.domainType,
    hostkeyfingerprint: facts.hostKeyFingerprint,
    ...(agent?.version && { version: agent.version }),
  };
}

const rendered = async (host: Host) => renderHost(host, await hostContext([host]));

async function recordJobOutcome(jobId: string, event: { type: string; description: string; level: 'INFO' | 'ERROR'; resourceId: string; resourceType: string }) {
  const job = await getJob(jobId);
  if (job?.actor) await recordEvent(job.actor, { ...event, state: 'Completed' });
}

const OPS = {
  pingHost: define({
    type: 'pingHost',
    args: pingHostArgs,
    short: true,
    prepare: async (_jobId, args) => ({ agentId: args.agentId, payload: { host: args.host } }),
    finish: async (_jobId, args, result: { elapsedMs: number }) => ({
      success: true,
      displaytext: `Host ${args.name} answered through its agent in ${Math.round(result.elapsedMs)} ms`,
    }),
  }),

  addHost: define({
    type: 'addHost',
    args: addHostArgs,
    short: true,
    prepare: async (_jobId, args) => ({
      agentId: args.agentId,
      payload: { host: { hostId: args.hostId, address: args.address, port: args.port, username: args.username }, ...(args.password && { password: args.password }) },
    }),
    finish: async (_jobId, args, facts: HostFacts) => {
      const zoneHosts = await listHostRecords({ zoneId: args.zoneId });
      // A retried Finish finds the host it wrote.
      const own = zoneHosts.find((host) => host.id === args.hostId);
      if (own) return { host: [await rendered(own)] };
      const sameAddress = zoneHosts.find((host) => host.ipaddress === args.address);
      if (sameAddress) throw new InvalidParameter(`A host with address ${args.address} already exists in this zone: ${sameAddress.name} (${sameAddress.id})`);
      const sameMachine = zoneHosts.find((host) => host.hostUuid === facts.hostUuid);
      if (sameMachine) {
        throw new InvalidParameter(`The host at ${args.address} is already added as ${sameMachine.name} (${sameMachine.id}) at ${sameMachine.ipaddress}: its host UUID is ${facts.hostUuid}`);
      }
      const cluster = await getCluster(args.clusterId);
      if (!cluster) throw new ResourceUnavailable(`Cluster ${args.clusterId} no longer exists`);
      const agent = await getAgent(args.agentId);
      const now = new Date();
      const host = await createHostRecord(cluster, {
        id: args.hostId,
        name: facts.hostname,
        ipaddress: args.address,
        ...factFields(facts, agent),
        capabilities: 'hvm',
        hosttags: args.hosttags,
        status: 'Up',
        resourcestate: args.allocationstate,
        agentId: args.agentId,
        // The first lease on the host: its agent's, raised each time it passes to another.
        leaseEpoch: 1,
        username: args.username,
        port: args.port,
        lastpinged: now.toISOString(),
        created: cloudstackDate(now),
      });
      return { host: [await rendered(host)] };
    },
  }),

  reconnectHost: define({
    type: 'reconnectHost',
    args: reconnectHostArgs,
    short: true,
    prepare: async (_jobId, args) => {
      const host = await managedHost(args.hostId);
      return { agentId: agentOf(host), payload: { host: targetOf(host) } };
    },
    finish: async (_jobId, args, facts: HostFacts) => {
      const host = await managedHost(args.hostId);
      if (host.hostUuid && host.hostUuid !== facts.hostUuid) {
        throw new InternalError(`The machine at ${host.ipaddress} is not host ${host.name} any more: its host UUID is ${facts.hostUuid}, not ${host.hostUuid}`);
      }
      const changes = { ...factFields(facts, host.agentId ? await getAgent(host.agentId) : undefined), lastpinged: new Date().toISOString() };
      // Upstream's reconnect: the agent connects again (Connecting), then reports Ready (Up).
      const connecting = host.status === 'Connecting' ? host : await transitionStatus(host.id, 'AgentConnected', changes);
      const up = connecting && (await transitionStatus(host.id, 'Ready', changes));
      if (!up) throw new InvalidParameter(`Host with id ${args.hostId} doesn't exist`);
      return { host: await rendered(up) };
    },
  }),

  updateHostPassword: define({
    type: 'updateHostPassword',
    args: updateHostPasswordArgs,
    short: true,
    prepare: async (_jobId, args) => {
      const host = await managedHost(args.hostId);
      return { agentId: args.agentId, payload: { host: { ...targetOf(host), username: args.username }, password: args.password, setOnHost: args.setOnHost } };
    },
    finish: async (_jobId, args) => {
      // The agent re-keyed the host for this login; the password itself is gone with the command.
      if (!(await updateHostRecord(args.hostId, { username: args.username }))) throw new InvalidParameter(`Host with id ${args.hostId} doesn't exist`);
      return { success: true };
    },
  }),

  downloadTemplate: define({
    type: 'downloadTemplate',
    args: downloadTemplateArgs,
    short: false,
    prepare: async (_jobId, args) => {
      const template = await getTemplate(args.templateId);
      if (!template) throw new ResourceUnavailable(`Template ${args.templateId} no longer exists`);
      const host = await managedHost(args.hostId);
      await markTemplateDownloading(template.id, args.zoneId, 0);
      return {
        agentId: args.agentId,
        payload: {
          host: targetOf(host),
          templateId: template.id,
          url: template.url,
          ...(template.checksum && { checksum: template.checksum }),
          format: template.format,
          destination: args.destination,
        },
      };
    },
    finish: async (jobId, args, result: { path: string; size: number; checksum: string }) => {
      await markTemplateDownloaded(args.templateId, args.zoneId, { size: result.size, physicalsize: result.size, installPath: result.path, poolId: args.poolId });
      const description = `Template ${args.templateId} downloaded to ${result.path} in primary storage pool ${args.poolId}`;
      await recordJobOutcome(jobId, { type: 'TEMPLATE.DOWNLOAD.SUCCESS', description, level: 'INFO', resourceId: args.templateId, resourceType: 'Template' });
      return { success: true, displaytext: description };
    },
    abort: async (jobId, args, errortext) => {
      try {
        await markTemplateFailed(args.templateId, args.zoneId, errortext);
      } catch (error) {
        if (!(error instanceof TemplateGone)) throw error;
      }
      const description = `Template ${args.templateId} could not be downloaded: ${errortext}`;
      await recordJobOutcome(jobId, { type: 'TEMPLATE.DOWNLOAD.FAILED', description, level: 'ERROR', resourceId: args.templateId, resourceType: 'Template' });
    },
  }),

  oobmPowerAction: define({
    type: 'oobmPowerAction',
    args: oobmPowerActionArgs,
    short: true,
    prepare: async (_jobId, args) => {
      const { payload, actionTimeout } = await oobmCommandFor(args.hostId, args.timeout);
      // The agent's own deadline is the action's; the task's adds room for the queue and the answer.
      return { agentId: args.agentId, payload: { ...payload, action: args.action, timeoutSeconds: actionTimeout }, timeoutSeconds: actionTimeout + 30 };
    },
    finish: async (_jobId, args, result: { action: string; powerState: 'On' | 'Off' | 'Unknown'; result: string }) => {
      // Upstream moves the power state on STATUS only; Mold reads it after every action, so the
      // answer and listHosts show the state the action left.
      const host = await managedHost(args.hostId);
      const updated = (host.oobm && (await updateHostRecord(host.id, { oobmpowerstate: nextPowerState(readingEvent(result)) }))) || host;
      return {
        outofbandmanagement: { hostid: host.id, ...renderOobm(updated), action: args.action, description: result.result, status: true },
      };
    },
    abort: async (_jobId, args, errortext, error) => {
      const host = await getHost(args.hostId);
      if (!host?.oobm) return;
      // A BMC that does not answer, or refuses the credentials, leaves the power state Unknown.
      if (error === 'OobmAuthError' || error === 'OobmUnreachable') await updateHostRecord(host.id, { oobmpowerstate: 'Unknown' });
      if (error === 'OobmAuthError') await oobmAuthAlert(host, errortext);
    },
  }),

  oobmChangePassword: define({
    type: 'oobmChangePassword',
    args: oobmChangePasswordArgs,
    short: true,
    prepare: async (_jobId, args) => {
      const { payload, actionTimeout } = await oobmCommandFor(args.hostId);
      return { agentId: args.agentId, payload: { ...payload, newPassword: args.password, timeoutSeconds: actionTimeout }, timeoutSeconds: 3 * actionTimeout + 30 };
    },
    finish: async (_jobId, args) => {
      const host = await managedHost(args.hostId);
      if (!host.oobm) throw new InternalError(`Failed to change out-of-band management password for host (${host.id}) in the database.`);
      // The BMC took the new password and a login with it worked: only now is it kept (sealed).
      await updateHostRecord(host.id, { oobm: { ...host.oobm, password: args.password, configId: randomUUID() } });
      return { outofbandmanagement: { hostid: host.id, status: true } };
    },
  }),
} satisfies Record<AgentOp, OpDefinition<any>>;

/**
 * What an out-of-band management command needs: upstream's checks (enabled for the zone, the cluster
 * and the host), the BMC's target and the ipmitool settings, and the action timeout (cluster-scoped).
 */
async function oobmCommandFor(hostId: string, timeout?: number) {
  const host = await managedHost(hostId);
  const [zone, cluster] = await Promise.all([getZone(host.zoneId), getCluster(host.clusterId)]);
  const refusal = oobmRefusal(host, zone, cluster);
  if (refusal) throw new InternalError(refusal);
  const global = await loadSettings();
  const scoped = await settingsFor({ clusterId: host.clusterId, zoneId: host.zoneId }, global);
  const actionTimeout = timeout ?? scoped.number('outofbandmanagement.action.timeout');
  return { host, actionTimeout, payload: { hostId: host.id, oobm: oobmTargetOf(host.oobm!), options: oobmOptionsOf(global) } };
}

async function prepare(jobId: string, op: AgentOp, rawArgs: unknown): Promise<Prepared> {
  const definition: OpDefinition<any> = OPS[op];
  const args = definition.args.parse(rawArgs);
  const { agentId, payload, timeoutSeconds: own } = await definition.prepare(jobId, args);
  const agent = await getAgent(agentId);
  if (!agent) throw new ResourceUnavailable(`Agent ${agentId} no longer exists; enrol an agent in the zone and try again`);
  if (agent.state !== 'Enabled') throw new ResourceUnavailable(`Agent ${agent.name} (${agent.id}) is revoked; enrol an agent in the zone and try again`);
  const timeoutSeconds = own ?? (definition.short ? (await loadSettings()).number('agent.command.timeout') : DOWNLOAD_TIMEOUT_SECONDS);
  return {
    queueUrl: agent.queueUrl,
    // The job's id is the command's: a retried Prepare sends the same command, which the agent runs once.
    command: {
      commandId: jobId,
      type: definition.type,
      deadline: new Date(Date.now() + timeoutSeconds * 1000).toISOString(),
      payload: agentCommands[definition.type].payload.parse(payload),
    },
    timeoutSeconds,
  };
}

async function finish(jobId: string, op: AgentOp, rawArgs: unknown, preparedCommand: Prepared, rawResult: unknown) {
  const definition: OpDefinition<any> = OPS[op];
  const parsed = agentCommands[definition.type].result.safeParse(rawResult);
  if (!parsed.success) throw new InternalError(`The agent answered ${definition.type} with a result Mold cannot read: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
  return definition.finish(jobId, definition.args.parse(rawArgs), parsed.data, preparedCommand);
}

async function abort(jobId: string, op: AgentOp, rawArgs: unknown, error: z.infer<typeof stepFunctionsError>) {
  const definition: OpDefinition<any> = OPS[op];
  const args = definition.args.safeParse(rawArgs);
  if (args.success && definition.abort) await definition.abort(jobId, args.data, jobError(error).errortext, error.Error);
  return { jobId, aborted: true };
}

export function runAgentCommandTask(task: AgentCommandTask) {
  switch (task.action) {
    case 'prepareAgentCommand':
      return prepare(task.jobId, task.op, task.args);
    case 'finishAgentCommand':
      return finish(task.jobId, task.op, task.args, task.prepared, task.result);
    case 'abortAgentCommand':
      return abort(task.jobId, task.op, task.args, task.error);
  }
}
