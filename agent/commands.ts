// One handler per command type of shared/agent/protocol.ts. A handler returns the command's result or
// throws a CommandFailure whose name and message the job reports. Passwords are opened here, used for
// one connection and dropped; they are never logged, journaled or written anywhere.
import { agentCommands, type AgentCommandType, type CommandResult, type HostTarget, type SealedSecret } from '../shared/agent/protocol.ts';
import { openSealed } from '../shared/agent/sealing.ts';
import { downloadTemplate } from './download.ts';
import { CommandFailure } from './errors.ts';
import { raiseFence } from './fence.ts';
import { gatherFacts, installKey, setPassword } from './host.ts';
import { installHooks } from './hooks.ts';
import type { Outcome } from './journal.ts';
import { errorText } from './log.ts';
import { connect, hostTarget, type KnownHosts, type SshPool, type SshTarget, who } from './ssh.ts';
import { keyComment } from './state.ts';
import { installMigrationAccess, migrateVm, type MigrationKey } from './migrate.ts';
import { changePassword, powerAction } from './oobm.ts';
import { expungeVm, rebootVm, startVm, stopVm } from './vm.ts';
import { attachDisk, deleteDisk, detachDisk, resizeDisk } from './volumes.ts';
import { copyDisk, removeFiles } from './volume-copy.ts';
import { rollingMaintenanceStage } from './rolling-maintenance.ts';

export interface CommandContext {
  agentId: string;
  /** The agent's RSA key (PEM): opens sealed secrets. */
  privateKeyPem: string;
  /** The agent's SSH public key, authorized_keys form. */
  sshPublicKey: string;
  /** The zone's migration key (agent/migrate.ts), put on every host the agent adds. */
  migrationKey?: MigrationKey;
  pool: SshPool;
  knownHosts: KnownHosts;
  /** Called when a host was (re)keyed, so the reporter does not remove the key it just installed. */
  hostKeyed?: (target: SshTarget) => void;
  signal?: AbortSignal;
}

function open(ctx: CommandContext, sealed: SealedSecret, host: SshTarget): string {
  try {
    return openSealed(ctx.privateKeyPem, sealed);
  } catch {
    throw new CommandFailure('SecretUnreadable', `The password for ${who(host)} cannot be opened with this agent's key (was it sealed to another agent's certificate?)`);
  }
}

/** Logs in with the agent's key after installing it: proves the host accepts it from now on. */
async function verifyKey(ctx: CommandContext, host: SshTarget) {
  ctx.pool.drop(host);
  try {
    const conn = await ctx.pool.get(host);
    const r = await conn.exec('true', { timeoutMs: 15_000 });
    if (r.code !== 0) throw new Error(`\`true\` exited ${r.code}`);
    return conn;
  } catch (err) {
    if (err instanceof CommandFailure && err.name !== 'AuthenticationFailed') throw err;
    throw new CommandFailure(
      'AuthenticationFailed',
      `The agent's SSH key was installed on ${who(host)} but logging in with it failed (${errorText(err)}); check sshd's PubkeyAuthentication and AuthorizedKeysFile`,
    );
  }
}

type Handler<T extends AgentCommandType> = (ctx: CommandContext, payload: ReturnType<(typeof agentCommands)[T]['payload']['parse']>) => Promise<CommandResult<T>>;

const handlers: { [T in AgentCommandType]: Handler<T> } = {
  async pingHost(ctx, { host }) {
    const t = hostTarget(host);
    const started = performance.now();
    const r = await ctx.pool.exec(t, 'true', { timeoutMs: 15_000 }).catch((err) => {
      if (err instanceof CommandFailure && err.name === 'Timeout') ctx.pool.drop(t);
      throw err;
    });
    if (r.code !== 0) throw new CommandFailure('HostCommandFailed', `\`true\` exited ${r.code ?? r.signal} on ${who(t)}`);
    return { elapsedMs: Math.round((performance.now() - started) * 100) / 100 };
  },

  async addHost(ctx, { host, password }) {
    const t = hostTarget(host);
    const comment = keyComment(ctx.agentId);
    ctx.pool.drop(t);
    if (password) {
      const secret = open(ctx, password, t);
      // The operator names this host: whatever key it offers is pinned from now on.
      const conn = await connect(t, { password: secret }, ctx.knownHosts, 'learn');
      try {
        const facts = await gatherFacts(conn);
        await installHooks(conn);
        await installKey(conn, ctx.sshPublicKey, comment);
        ctx.hostKeyed?.(t);
        const keyed = await verifyKey(ctx, t);
        if (ctx.migrationKey) await installMigrationAccess(keyed, ctx.agentId, ctx.migrationKey);
        return facts;
      } finally {
        conn.end();
      }
    }
    // Key-only: an admin put the agent's public key (`mold-agent status`) on the host beforehand.
    const conn = await ctx.pool.get(t, 'learn');
    const facts = await gatherFacts(conn);
    await installHooks(conn);
    // Re-tagged, so a later removal finds it whatever comment the admin gave it.
    await installKey(conn, ctx.sshPublicKey, comment);
    ctx.hostKeyed?.(t);
    if (ctx.migrationKey) await installMigrationAccess(conn, ctx.agentId, ctx.migrationKey);
    return facts;
  },

  async reconnectHost(ctx, { host }) {
    const t = hostTarget(host);
    ctx.pool.drop(t);
    const conn = await ctx.pool.get(t);
    const facts = await gatherFacts(conn);
    if (ctx.migrationKey) await installMigrationAccess(conn, ctx.agentId, ctx.migrationKey);
    // A newer agent's hook replaces an older one's.
    await installHooks(conn);
    return facts;
  },

  async updateHostPassword(ctx, { host, password, setOnHost }) {
    const t = hostTarget(host);
    const secret = open(ctx, password, t);
    if (setOnHost) await setPassword(await ctx.pool.get(t), t.username, secret);
    const conn = await connect(t, { password: secret }, ctx.knownHosts, 'verify');
    try {
      await installKey(conn, ctx.sshPublicKey, keyComment(ctx.agentId));
      ctx.hostKeyed?.(t);
    } finally {
      conn.end();
    }
    await verifyKey(ctx, t);
    return { rekeyed: true as const };
  },

  async downloadTemplate(ctx, payload) {
    return await downloadTemplate(ctx.pool, { ...payload, host: { ...payload.host, port: payload.host.port ?? 22 } }, ctx.signal);
  },

  async startVm(ctx, payload) {
    return await startVm(ctx.pool, payload);
  },

  async stopVm(ctx, payload) {
    return await stopVm(ctx.pool, payload, ctx.signal);
  },

  async rebootVm(ctx, payload) {
    return await rebootVm(ctx.pool, payload);
  },

  async migrateVm(ctx, payload) {
    return await migrateVm(ctx.pool, ctx.agentId, ctx.migrationKey, payload);
  },

  async expungeVm(ctx, payload) {
    return await expungeVm(ctx.pool, payload);
  },

  async attachDisk(ctx, payload) {
    return await attachDisk(ctx.pool, payload);
  },

  async detachDisk(ctx, payload) {
    return await detachDisk(ctx.pool, payload);
  },

  async resizeDisk(ctx, payload) {
    return await resizeDisk(ctx.pool, payload);
  },

  async deleteDisk(ctx, payload) {
    return await deleteDisk(ctx.pool, payload);
  },

  async copyDisk(ctx, payload) {
    return await copyDisk(ctx.pool, payload);
  },

  async removeFiles(ctx, payload) {
    return await removeFiles(ctx.pool, payload);
    },

  async rollingMaintenanceStage(ctx, payload) {
    return await rollingMaintenanceStage(ctx.pool, payload, ctx.signal);
  },

  async oobmPowerAction(ctx, { hostId, oobm, options, action, timeoutSeconds }) {
    const password = openBmcPassword(ctx, oobm.password, hostId);
    return await powerAction(hostId, { ...oobm, password }, options, action, timeoutSeconds, ctx.signal);
  },

  async oobmChangePassword(ctx, { hostId, oobm, options, newPassword, timeoutSeconds }) {
    const password = openBmcPassword(ctx, oobm.password, hostId);
    return await changePassword(hostId, { ...oobm, password }, options, openBmcPassword(ctx, newPassword, hostId), timeoutSeconds, ctx.signal);
  },
};

function openBmcPassword(ctx: CommandContext, sealed: SealedSecret, hostId: string): string {
  try {
    return openSealed(ctx.privateKeyPem, sealed);
  } catch {
    throw new CommandFailure('SecretUnreadable', `The out-of-band management password of host ${hostId} cannot be opened with this agent's key (was it sealed to another agent's certificate?); configure it again`);
  }
}

/** A failure as the protocol carries it (commandFailure's limits). */
export function toFailure(err: unknown, type: string): { error: string; cause: string } {
  if (err instanceof CommandFailure) return { error: err.name.slice(0, 256), cause: err.message.slice(0, 32_000) };
  return { error: 'AgentError', cause: `The agent failed to run ${type}: ${errorText(err)}`.slice(0, 32_000) };
}

/** Validates the payload and runs the command; never throws. */
export async function runCommand(ctx: CommandContext, type: AgentCommandType, payload: unknown): Promise<Outcome> {
  const parsed = agentCommands[type].payload.safeParse(payload);
  if (!parsed.success) {
    return { ok: false, failure: { error: 'InvalidCommand', cause: `The ${type} command's payload is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` } };
  }
  try {
    // Under a lease: the host's fence first, so an agent that lost the host touches nothing on it.
    const host = (parsed.data as { host?: HostTarget }).host;
    if (host?.epoch !== undefined && type !== 'addHost') await raiseFence(await ctx.pool.get(hostTarget(host)), host.hostId, host.epoch);
    const handler = handlers[type] as Handler<AgentCommandType>;
    const result = await handler(ctx, parsed.data as never);
    return { ok: true, result };
  } catch (err) {
    return { ok: false, failure: toFailure(err, type) };
  }
}
