// The periodic state report: on start and every pingIntervalSeconds (the control plane's ping.interval,
// from the previous report's answer), each host the control plane lists is checked over SSH and the
// findings go to /report. The answer is the list of hosts to watch; a host that leaves the list is
// forgotten (connection closed, pin dropped) and, best effort, the agent's key is removed from it.
import type { HostReport, HostTarget, ReportResponse, WatchedHost } from '../shared/agent/protocol.ts';
import { openSealed } from '../shared/agent/sealing.ts';
import { CommandFailure } from './errors.ts';
import { raiseFence } from './fence.ts';
import { agentKeysScript } from './parse.ts';
import type { Gateway } from './gateway.ts';
import { destroyVms, gatherReport, removeKey } from './host.ts';
import { installMigrationAccess } from './migrate.ts';
import { errorText, log } from './log.ts';
import { readPowerState } from './oobm.ts';
import { hostTarget, where, type SshPool, type SshTarget } from './ssh.ts';
import { keyComment } from './state.ts';

const RETRY_SECONDS = 30;
/** How long a report waits for the BMC of a host that just stopped answering. */
const INLINE_BMC_READ_SECONDS = 3;

export class Reporter {
  private readonly gateway: Gateway;
  private readonly pool: SshPool;
  private readonly agentId: string;
  private readonly version: string;
  private hosts = new Map<string, WatchedHost>();
  private readonly privateKeyPem: string | undefined;
  /** The background power-state sync: each watched BMC's last reading, and the reads under way. */
  private power = new Map<string, NonNullable<HostReport['oobm']>>();
  private reading = new Set<string>();
  private oobm: ReportResponse['oobm'];
  private keyedAt = new Map<string, number>();
  /** Per host (address:port), the zone's agent keys last put there: written again only when they change. */
  private keysApplied = new Map<string, string>();
  /** Per host id, the lease epoch this agent's reports last raised its fence to. */
  private fenced = new Map<string, number>();
  private listedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  intervalSeconds = RETRY_SECONDS;
  /** Called when the gateway says this agent is revoked. */
  onRevoked?: () => void;

  constructor(gateway: Gateway, pool: SshPool, agentId: string, version: string, privateKeyPem?: string) {
    this.privateKeyPem = privateKeyPem;
    this.gateway = gateway;
    this.pool = pool;
    this.agentId = agentId;
    this.version = version;
  }

  /** A command just installed the agent's key on `t`: a stale host list must not remove it. */
  hostKeyed(t: SshTarget) {
    this.keyedAt.set(where(t), Date.now());
  }

  start() {
    this.schedule(0);
  }

  private schedule(seconds: number) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => (this.running = undefined));
    }, seconds * 1000);
  }

  private async tick() {
    const wasEmpty = this.hosts.size === 0;
    const started = Date.now();
    try {
      await this.reportOnce();
      // After a start the agent knows its hosts only from this first answer: report them at once.
      // Else one report per interval, start to start: counted from the end, reports that took 6 s on
      // a loaded host came every 16 s, past the sweeper's 1.5 intervals, and healthy hosts went Down.
      this.schedule(wasEmpty && this.hosts.size > 0 ? 0 : Math.max(0, this.intervalSeconds - (Date.now() - started) / 1000));
    } catch (err) {
      if ((err as { revoked?: boolean }).revoked) {
        this.onRevoked?.();
        return;
      }
      log.warn('report failed', { error: errorText(err), retryInSeconds: Math.min(this.intervalSeconds, RETRY_SECONDS) });
      this.schedule(Math.min(this.intervalSeconds, RETRY_SECONDS));
    }
  }

  /** One host's state; never throws. */
  async checkHost(h: HostTarget, timeoutMs: number): Promise<HostReport> {
    const t = hostTarget(h);
    try {
      const conn = await this.pool.get(t);
      // The holder's report raises the host's fence to its epoch: from then on an agent that lost the
      // host acts on nothing there. A report only reads, so both go at once, on two channels.
      // Once per epoch per host: after that the report costs what it did before leases.
      const fence = h.epoch !== undefined && this.fenced.get(h.hostId) !== h.epoch ? raiseFence(conn, h.hostId, h.epoch, { report: true }).then(() => this.fenced.set(h.hostId, h.epoch!)) : undefined;
      const [report] = await Promise.all([gatherReport(conn, h.hostId, timeoutMs, h.pools), fence]);
      return report;
    } catch (err) {
      // A command that timed out leaves a connection that may be dead: start afresh next time.
      this.pool.drop(t);
      return { hostId: h.hostId, reachable: false, error: (err instanceof CommandFailure ? err.message : errorText(err)).slice(0, 1024), domains: [] };
    }
  }

  async reportOnce(): Promise<void> {
    const timeoutMs = Math.max(5_000, Math.min(20_000, this.intervalSeconds * 800));
    const hosts = await Promise.all(
      [...this.hosts.values()].map(async (h) => {
        const report = await this.checkHost(h, timeoutMs);
        // A host that stopped answering: its BMC's word now, in this report, rather than one report later
        // (a host unreachable and powered off is Down at once: shared/host-health.ts).
        // Briefly: a BMC gone with its host must not hold the report up.
        if (!report.reachable && h.oobm && !this.reading.has(h.hostId)) await this.readPower(h, INLINE_BMC_READ_SECONDS);
        const power = h.oobm && this.power.get(h.hostId);
        return power ? { ...report, oobm: power } : report;
      }),
    );
    const sentAt = Date.now();
    const answer = await this.gateway.report({ version: this.version, hosts });
    this.intervalSeconds = answer.pingIntervalSeconds;
    this.oobm = answer.oobm;
    for (const hostId of this.power.keys()) if (!answer.hosts.some((h) => h.hostId === hostId && h.oobm)) this.power.delete(hostId);
    this.syncPower(answer.hosts);
    const next = new Map(answer.hosts.map((h) => [h.hostId, h]));
    const listed = new Set(answer.hosts.map((h) => where(hostTarget(h))));
    for (const [hostId, h] of this.hosts) {
      if (next.has(hostId)) continue;
      const t = hostTarget(h);
      // Re-added under a new id (deleteHost, then addHost of the same address) since the last list.
      // Or passed to another agent of the zone (its lease): this agent's key stays, to take it back one day.
      const inZone = answer.zoneHostIds?.includes(hostId) ?? false;
      if (inZone || listed.has(where(t)) || (this.keyedAt.get(where(t)) ?? 0) >= this.listedAt) {
        if (inZone) this.pool.drop(t);
        log.info('host forgotten', { hostId, address: h.address, keyKept: true, ...(inZone && { heldByAnother: true }) });
        continue;
      }
      void this.forget(hostId, t);
    }
    this.hosts = next;
    // In the background: a slow host must not hold up the next report.
    if (answer.agentKeys) void this.syncAgentKeys(answer.agentKeys);
    // The list is the control plane's view when the request left.
    this.listedAt = sentAt;
    for (const [k, at] of this.keyedAt) if (at < sentAt - 3600_000) this.keyedAt.delete(k);
  }

  /**
   * Puts the zone's agent keys on every host this agent holds, so that another agent of the zone can
   * take a host over (and a revoked agent's key goes). Never without this agent's own key in the list.
   */
  private async syncAgentKeys(lines: string[]) {
    const own = keyComment(this.agentId);
    if (!lines.some((line) => line.trim().endsWith(` ${own}`))) return;
    const wanted = [...lines].map((l) => l.trim()).sort();
    const digest = wanted.join('\n');
    await Promise.all(
      [...this.hosts.values()].map(async (h) => {
        const t = hostTarget(h);
        if (this.keysApplied.get(where(t)) === digest) return;
        try {
          const conn = await this.pool.get(t);
          const r = await conn.exec(agentKeysScript(wanted), { timeoutMs: 20_000 });
          if (r.code !== 0) throw new Error(`exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 200)}`);
          this.keysApplied.set(where(t), digest);
          log.info('agent keys set on host', { hostId: h.hostId, keys: wanted.length });
        } catch (err) {
          log.warn('cannot set the zone\'s agent keys on a host', { hostId: h.hostId, error: errorText(err) });
        }
      }),
    );
  }

  /**
   * Reads the power state of each watched BMC in the background (at most
   * outofbandmanagement.sync.poolsize at once), so a slow or dead BMC never holds up a report: the
   * next report carries whatever has been read by then.
   */
  private syncPower(hosts: WatchedHost[]) {
    const settings = this.oobm;
    if (!settings || !this.privateKeyPem) return;
    const queue = hosts.filter((h) => h.oobm && !this.reading.has(h.hostId));
    const next = async (): Promise<void> => {
      const h = queue.shift();
      if (!h || this.stopped) return;
      await this.readPower(h);
      return next();
    };
    for (let i = 0; i < Math.min(settings.poolSize, queue.length); i++) void next();
  }

  /** Reads one watched host's BMC power state into `power` (within `maxSeconds` when given); never throws. */
  private async readPower(h: WatchedHost, maxSeconds?: number) {
    const settings = this.oobm;
    if (!settings || !this.privateKeyPem || !h.oobm) return;
    this.reading.add(h.hostId);
    try {
      const password = openSealed(this.privateKeyPem, h.oobm.password);
      const read = await readPowerState({ ...h.oobm, password }, settings.options, Math.min(settings.timeoutSeconds, maxSeconds ?? Infinity));
      if (this.hosts.get(h.hostId)?.oobm) this.power.set(h.hostId, { ...read, at: new Date().toISOString(), configId: h.oobm.configId });
    } catch (err) {
      this.power.set(h.hostId, { powerState: 'Unknown', error: `the BMC password cannot be opened: ${errorText(err)}`.slice(0, 1024), at: new Date().toISOString(), configId: h.oobm.configId });
    } finally {
      this.reading.delete(h.hostId);
    }
  }

  private async forget(hostId: string, t: SshTarget) {
    try {
      const conn = await this.pool.get(t);
      // Deleted from the zone: what Mold ran there stops (deleteHost forced=true on a host that still
      // held VMs; their records are Stopped already). A host in Maintenance runs none.
      const destroyed = await destroyVms(conn).catch((err) => {
        log.warn('destroying the VMs of a deleted host failed', { hostId, address: t.address, error: errorText(err) });
        return [];
      });
      if (destroyed.length > 0) log.info('VMs of a deleted host destroyed', { hostId, address: t.address, vms: destroyed });
      // Its access to the other hosts first: it goes with the agent's key.
      await installMigrationAccess(conn, this.agentId, undefined);
      await removeKey(conn, keyComment(this.agentId));
      log.info('host forgotten', { hostId, address: t.address, keyRemoved: true });
    } catch (err) {
      log.info('host forgotten', { hostId, address: t.address, keyRemoved: false, error: errorText(err) });
    } finally {
      this.pool.drop(t);
      await this.pool.knownHosts.forget(t);
    }
  }

  get watched(): HostTarget[] {
    return [...this.hosts.values()];
  }

  async stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => {});
  }
}
