// `mold-agent run`: long-polls the agent's queue and runs each command it carries, concurrently.
// For every message: a commandId already in the journal is answered from it (never run twice); one
// still running here (a redelivery while it runs) only refreshes the receipt handle; otherwise the
// command runs (or fails as Expired past its deadline), its outcome is journaled, sent to the gateway
// (/results) and only then is the message deleted. A message whose result could not be delivered stays
// on the queue: its redelivery is answered from the journal.
import type { Message } from '@aws-sdk/client-sqs';
import { AGENT_COMMAND_TYPES, commandMessage, type CommandMessage } from '../shared/agent/protocol.ts';
import { runCommand, type CommandContext } from './commands.ts';
import { ConsoleProxy, type ConsoleProxyOptions } from './console.ts';
import { failures } from './errors.ts';
import { gateway as gatewayClient, GatewayError, isStaleEpoch, type CommandLease, type Gateway } from './gateway.ts';
import { Journal, type Outcome } from './journal.ts';
import { errorText, log } from './log.ts';
import { Queue } from './queue.ts';
import { Reporter } from './reporter.ts';
import { KnownHosts, SshPool } from './ssh.ts';
import { agentVersion, FILES, type AgentState } from './state.ts';
import { join } from 'node:path';

export const HEARTBEAT_MS = 20_000;
/**
 * While a command runs, its message stays invisible this long past each heartbeat. Short enough that
 * the command of an agent that died reappears, and moves to its host's new holder, well within the
 * state machines' HeartbeatSeconds (60).
 */
const VISIBILITY_SECONDS = 30;
const MAX_CONCURRENT = 16;
/** On SIGTERM, in-flight commands get this long to finish before they are abandoned. */
const STOP_GRACE_MS = 10_000;
const RESULT_RETRIES = [500, 2_000, 5_000];

interface InFlight {
  commandId: string;
  /** The latest delivery's handle (it extends and hands back the message)… */
  receiptHandle: string;
  /** …and every copy delivered while it ran, all deleted once the command is answered. */
  duplicates: string[];
  abort: AbortController;
  done: Promise<void>;
}

export interface AgentOptions {
  maxConcurrent?: number;
  heartbeatMs?: number;
  /** The console proxy (agent/console.ts), when `--console-listen` is given. */
  console?: Pick<ConsoleProxyOptions, 'listen' | 'url' | 'tls'>;
}

/** The host and epoch a command acts under, when it carries one. */
function leaseOf(command: CommandMessage): CommandLease | undefined {
  const host = (command.payload as { host?: { hostId?: unknown; epoch?: unknown } } | undefined)?.host;
  return typeof host?.hostId === 'string' && typeof host.epoch === 'number' ? { hostId: host.hostId, epoch: host.epoch } : undefined;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

export class AgentRunner {
  readonly state: AgentState;
  readonly gateway: Gateway;
  readonly queue: Queue;
  readonly pool: SshPool;
  readonly reporter: Reporter;
  private journal!: Journal;
  private readonly inflight = new Map<string, InFlight>();
  /** Every command being handled, in flight or finishing (deleting its messages): what a stop waits for. */
  private readonly handling = new Set<InFlight>();
  private readonly stopping = new AbortController();
  private readonly maxConcurrent: number;
  private readonly heartbeatMs: number;
  private slotFreed: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  /** Resolves with the exit code when the agent has stopped. */
  readonly stopped: Promise<number>;
  private resolveStopped!: (code: number) => void;
  private exitCode = 0;
  readonly console: ConsoleProxy | undefined;
  /** The addresses of the hosts the control plane last listed for this agent: the console serves only these. */
  private servedHosts = new Set<string>();
  /** The hosts this agent holds under its lease, with their epochs, as the last renewal answered. */
  private held = new Map<string, number>();
  private leaseTimer: NodeJS.Timeout | undefined;
  private renewal: Promise<void> | undefined;

  private constructor(state: AgentState, knownHosts: KnownHosts, options: AgentOptions) {
    this.state = state;
    this.gateway = gatewayClient(state.config.url, state.config.agentId, state.privateKeyPem);
    this.queue = new Queue(this.gateway);
    this.pool = new SshPool(state.sshPrivateKey, knownHosts);
    if (options.console) {
      this.console = new ConsoleProxy({
        ...options.console,
        caCertificatePem: state.caCertificatePem,
        agentId: state.config.agentId,
        servesHost: async (address) => {
          if (this.servedHosts.has(address)) return true;
          // A host added since the last report: the control plane's current list settles it.
          await this.reporter.reportOnce().catch((err) => log.warn('cannot refresh the host list', { error: errorText(err) }));
          return this.servedHosts.has(address);
        },
      });
    }
    // Every report tells the control plane where the console is (or that there is none), and its
    // answer says which hosts are this agent's.
    const reporting: Gateway = {
      ...this.gateway,
      report: async (body) => {
        const answer = await this.gateway.report({ ...body, ...(this.console && { consoleUrl: this.console.url }) });
        this.servedHosts = new Set(answer.hosts.map((h) => h.address));
        return answer;
      },
    };
    this.reporter = new Reporter(reporting, this.pool, state.config.agentId, agentVersion(), state.privateKeyPem);
    this.reporter.onRevoked = () => this.revoked();
    this.maxConcurrent = options.maxConcurrent ?? MAX_CONCURRENT;
    this.heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
    this.stopped = new Promise((r) => (this.resolveStopped = r));
  }

  static async create(state: AgentState, options: AgentOptions = {}): Promise<AgentRunner> {
    const knownHosts = await KnownHosts.open(join(state.dir, FILES.knownHosts));
    const runner = new AgentRunner(state, knownHosts, options);
    runner.journal = await Journal.open(join(state.dir, FILES.journal));
    return runner;
  }

  private context(signal: AbortSignal): CommandContext {
    return {
      agentId: this.state.config.agentId,
      privateKeyPem: this.state.privateKeyPem,
      sshPublicKey: this.state.sshPublicKey,
      migrationKey: this.state.migrationKey,
      pool: this.pool,
      knownHosts: this.pool.knownHosts,
      hostKeyed: (t) => this.reporter.hostKeyed(t),
      signal,
    };
  }

  /** Gets queue credentials (retrying while the gateway is unreachable), starts the reporter and the poll loop. */
  async start(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.queue.open();
        break;
      } catch (err) {
        if (err instanceof GatewayError && err.revoked) {
          this.revoked();
          return;
        }
        if (this.stopping.signal.aborted) return;
        const wait = Math.min(30_000, 1000 * 2 ** attempt);
        log.warn('cannot get queue credentials', { error: errorText(err), retryInMs: wait });
        await sleep(wait, this.stopping.signal);
      }
    }
    // Listening before the first report, which hands out its URL.
    if (this.console) await this.console.start();
    // The lease first: the first report then lists the hosts it took over.
    await this.renewLease();
    this.reporter.start();
    this.loop = this.poll();
    log.info('ready', {
      agentId: this.state.config.agentId,
      zoneId: this.state.config.zoneId,
      queueUrl: this.queue.queueUrl,
      version: agentVersion(),
      journal: this.journal.size,
    });
  }

  /** Renews the lease (shared/agent-leases.ts) and schedules the next renewal; a host gained is reported at once, which raises its fence. */
  private async renewLease(): Promise<void> {
    if (this.stopping.signal.aborted) return;
    const started = Date.now();
    let next = 5;
    try {
      const answer = await this.gateway.lease();
      next = answer.renewSeconds;
      const gained = answer.hosts.filter((h) => this.held.get(h.hostId) !== h.epoch);
      const lost = [...this.held.keys()].filter((id) => !answer.hosts.some((h) => h.hostId === id));
      this.held = new Map(answer.hosts.map((h) => [h.hostId, h.epoch]));
      if (gained.length || lost.length) {
        log.info('lease', { holds: answer.hosts, gained: gained.map((h) => h.hostId), lost });
        if (gained.length && this.loop) void this.reporter.reportOnce().catch((err) => log.warn('report failed', { error: errorText(err) }));
      }
    } catch (err) {
      if (err instanceof GatewayError && err.revoked) return this.revoked();
      log.warn('lease renewal failed', { error: errorText(err), retryInSeconds: next });
    }
    if (this.stopping.signal.aborted) return;
    clearTimeout(this.leaseTimer);
    // At a fixed rate: a slow renewal (a loaded gateway) does not push the next one back by its own length.
    this.leaseTimer = setTimeout(() => {
      this.renewal = this.renewLease().finally(() => (this.renewal = undefined));
    }, Math.max(0, next * 1000 - (Date.now() - started)));
  }

  /** The hosts held under the lease (hostId → epoch), as last renewed. */
  get leases(): ReadonlyMap<string, number> {
    return this.held;
  }

  /**
   * A command for a host another agent holds now (the host's fence or the gateway said so): the
   * gateway hands it to the holder, and this copy goes; if it could not, the message stays and
   * comes back.
   */
  private async handBack(command: CommandMessage, entry: InFlight, reason: string) {
    try {
      const answer = await this.gateway.handback({ message: command, reason });
      log.info('command handed back', { commandId: command.commandId, type: command.type, reason, moved: answer.moved });
      if (!answer.moved) return;
    } catch (err) {
      log.warn('cannot hand a command back', { commandId: command.commandId, error: errorText(err) });
      return;
    }
    this.inflight.delete(command.commandId);
    await this.queue.delete(entry.receiptHandle).catch(() => {});
    for (const handle of entry.duplicates) await this.queue.delete(handle).catch(() => {});
  }

  private revoked() {
    log.error('this agent has been revoked: the gateway refuses it; enrol again with a new token', { agentId: this.state.config.agentId });
    this.exitCode = 3;
    void this.stop();
  }

  private async poll() {
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      if (this.inflight.size >= this.maxConcurrent) {
        await new Promise<void>((r) => (this.slotFreed = r));
        continue;
      }
      let messages: Message[];
      try {
        // Received for VISIBILITY_SECONDS, not the queue's default: a command this agent dies with comes back soon.
        messages = await this.queue.receive(this.maxConcurrent - this.inflight.size, this.stopping.signal, VISIBILITY_SECONDS);
        failures = 0;
      } catch (err) {
        if (this.stopping.signal.aborted) break;
        if (err instanceof GatewayError && err.revoked) return this.revoked();
        failures++;
        const wait = Math.min(10_000, 500 * 2 ** Math.min(failures, 5));
        log.warn('receiving from the queue failed', { error: errorText(err), retryInMs: wait });
        await sleep(wait, this.stopping.signal);
        // Ask the gateway afresh: the queue may have moved (a restarted local runtime) or the
        // credentials been cut short.
        await this.queue.open().catch((error) => log.warn('cannot renew the queue credentials', { error: errorText(error) }));
        continue;
      }
      for (const m of messages) this.dispatch(m);
    }
  }

  private dispatch(message: Message) {
    const receiptHandle = message.ReceiptHandle!;
    let command: CommandMessage;
    try {
      const parsed = commandMessage.safeParse(JSON.parse(message.Body ?? ''));
      if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      command = parsed.data;
    } catch (err) {
      void this.poison(message, errorText(err));
      return;
    }
    const running = this.inflight.get(command.commandId);
    if (running) {
      // Delivered again while it runs: the visibility timeout ran out (the newest handle is the one
      // that extends), or SQS delivered a second copy (which must be deleted too).
      running.duplicates.push(running.receiptHandle);
      running.receiptHandle = receiptHandle;
      log.info('command redelivered while running', { commandId: command.commandId, type: command.type });
      return;
    }
    const abort = new AbortController();
    const entry: InFlight = { commandId: command.commandId, receiptHandle, duplicates: [], abort, done: Promise.resolve() };
    this.inflight.set(command.commandId, entry);
    this.handling.add(entry);
    entry.done = this.handle(command, entry).finally(() => {
      this.handling.delete(entry);
      // Unless handle() let go of it already and a later copy runs under the same id.
      if (this.inflight.get(command.commandId) === entry) this.inflight.delete(command.commandId);
      this.slotFreed?.();
      this.slotFreed = undefined;
    });
  }

  /** A message that is not a command: answered as a failure if it carries a task token, then deleted. */
  private async poison(message: Message, reason: string) {
    log.error('malformed message on the queue', { messageId: message.MessageId, reason });
    let body: { taskToken?: unknown; commandId?: unknown } = {};
    try {
      body = JSON.parse(message.Body ?? '');
    } catch {}
    if (typeof body.taskToken === 'string') {
      const type = (body as { type?: unknown }).type;
      const cause = typeof type === 'string' && !AGENT_COMMAND_TYPES.includes(type as never)
        ? `This agent (version ${agentVersion()}) does not know the command type ${type}`
        : `The agent could not read the command: ${reason}`;
      await this.gateway
        .result({ commandId: String(body.commandId ?? message.MessageId), taskToken: body.taskToken, ok: false, failure: { error: 'InvalidCommand', cause: cause.slice(0, 32_000) } })
        .catch((err) => log.warn('cannot report a malformed command', { error: errorText(err) }));
    }
    await this.queue.delete(message.ReceiptHandle!).catch(() => {});
  }

  private async handle(command: CommandMessage, entry: InFlight) {
    const started = performance.now();
    const { commandId, type } = command;
    const journaled = this.journal.get(commandId);
    let outcome: Outcome;
    let replayed = false;
    if (journaled) {
      outcome = journaled.outcome;
      replayed = true;
    } else {
      const deadline = Date.parse(command.deadline);
      if (Number.isFinite(deadline) && deadline < Date.now()) {
        const e = failures.expired(commandId, command.deadline);
        outcome = { ok: false, failure: { error: e.name, cause: e.message } };
      } else {
        log.info('command started', { commandId, type, ...leaseOf(command) });
        const heartbeat = setInterval(() => void this.heartbeat(command, entry), this.heartbeatMs);
        try {
          outcome = await runCommand(this.context(entry.abort.signal), type, command.payload);
        } finally {
          clearInterval(heartbeat);
        }
        if (!outcome.ok && outcome.failure.error === 'StaleEpoch') {
          // Not an outcome either: the host is another agent's now, and so is the command.
          await this.handBack(command, entry, outcome.failure.cause);
          return;
        }
        if (!outcome.ok && entry.abort.signal.aborted && this.stopping.signal.aborted) {
          // Cut short by the shutdown: not an outcome. Hand the message back at once; the next start runs it.
          await this.queue.setVisibility(entry.receiptHandle, 0).catch(() => {});
          log.info('command abandoned', { commandId, type, ms: Math.round(performance.now() - started) });
          return;
        }
      }
      await this.journal.record(commandId, type, outcome);
    }
    const delivered = await this.deliver(command, outcome);
    if (delivered === 'stale') {
      await this.handBack(command, entry, 'the gateway refused the result: the host is held by another agent now');
      return;
    }
    const accepted = delivered;
    const ms = Math.round(performance.now() - started);
    const line = {
      commandId,
      type,
      outcome: outcome.ok ? 'success' : 'failure',
      ...(!outcome.ok && { error: outcome.failure.error }),
      ms,
      ...(replayed && { replayed: true }),
      ...(accepted === false && { accepted: false }),
    };
    if (accepted === undefined) {
      log.warn('command result not delivered; the message stays on the queue and its redelivery is answered from the journal', line);
      return;
    }
    log.info('command', line);
    if (!accepted) log.info('the control plane no longer waits for this command (its task is over)', { commandId, type });
    // Done: from here a copy that arrives is answered from the journal. Were it still folded into this
    // run while the deletes below wait on the queue, its handle would be added after they were read,
    // and the copy would sit on the queue until its visibility ran out.
    this.inflight.delete(commandId);
    await this.queue.delete(entry.receiptHandle).catch((err) => log.warn('cannot delete a message', { commandId, error: errorText(err) }));
    // A stale handle of the same message fails to delete; that is fine.
    for (const handle of entry.duplicates) await this.queue.delete(handle).catch(() => {});
  }

  /** Sends the outcome; true/false as the gateway answers, undefined when it could not be delivered, `stale` when the host is another agent's now. */
  private async deliver(command: CommandMessage, outcome: Outcome): Promise<boolean | undefined | 'stale'> {
    const lease = leaseOf(command);
    const body = outcome.ok
      ? { commandId: command.commandId, taskToken: command.taskToken, ok: true as const, result: outcome.result, ...(lease && { lease }) }
      : { commandId: command.commandId, taskToken: command.taskToken, ok: false as const, failure: outcome.failure, ...(lease && { lease }) };
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.gateway.result(body)).accepted;
      } catch (err) {
        if (isStaleEpoch(err)) return 'stale';
        const g = err instanceof GatewayError ? err : undefined;
        if (g?.revoked) {
          this.revoked();
          return undefined;
        }
        // A refusal of this request (400, 401) will not change on retry.
        const retryable = !g || g.status === 0 || g.status >= 500 || g.status === 429;
        if (!retryable || attempt >= RESULT_RETRIES.length || this.stopping.signal.aborted) {
          log.warn('cannot deliver a result', { commandId: command.commandId, error: errorText(err) });
          return undefined;
        }
        await sleep(RESULT_RETRIES[attempt]!);
      }
    }
  }

  private async heartbeat(command: CommandMessage, entry: InFlight) {
    const { commandId, taskToken } = command;
    await this.queue.setVisibility(entry.receiptHandle, VISIBILITY_SECONDS).catch((err) => log.warn('cannot extend a message\'s visibility', { commandId, error: errorText(err) }));
    try {
      const lease = leaseOf(command);
      const waiting = await this.gateway.heartbeat({ commandId, taskToken, ...(lease && { lease }) });
      if (!waiting) {
        log.info('the control plane no longer waits for this command; stopping it', { commandId, type: command.type });
        entry.abort.abort();
      }
    } catch (err) {
      if (isStaleEpoch(err)) {
        log.info('the host of this command is held by another agent now; stopping it', { commandId, type: command.type });
        entry.abort.abort();
        return;
      }
      log.warn('heartbeat failed', { commandId, error: errorText(err) });
    }
  }

  get journalSize(): number {
    return this.journal.size;
  }

  /** Stops polling, lets in-flight commands finish (abandons them after a grace period), closes SSH. */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    if (!this.stopping.signal.aborted) {
      this.stopping.abort();
      log.info('stopping', { inFlight: this.inflight.size });
      this.slotFreed?.();
      clearTimeout(this.leaseTimer);
      await this.renewal?.catch(() => {});
      clearTimeout(this.leaseTimer);
      await this.reporter.stop();
      await this.console?.stop().catch((err) => log.warn('cannot stop the console proxy', { error: errorText(err) }));
      await this.loop?.catch(() => {});
      const pending = [...this.handling];
      if (pending.length) {
        // Past the grace period, abort them; closing the connections ends any SSH command they wait on.
        const timer = setTimeout(() => {
          pending.forEach((p) => p.abort.abort());
          void this.pool.closeAll();
        }, graceMs);
        await Promise.all(pending.map((p) => p.done.catch(() => {})));
        clearTimeout(timer);
      }
      await this.pool.closeAll();
      this.queue.close();
      log.info('stopped', { agentId: this.state.config.agentId });
      this.resolveStopped(this.exitCode);
    }
    await this.stopped;
  }
}
