// Power-state sync: the VM records follow what the hosts report (upstream's
// VirtualMachinePowerStateSyncImpl and VirtualMachineManagerImpl's handlePowerOnReportWithNoPendingJobsOnVM /
// handlePowerOffReportWithNoPendingJobsOnVM, for KVM). One reconcile step per agent report: the desired
// state (the records of the VMs on the reported hosts) against the observed one (the domains each host
// reports). The decision is pure (reconcilePowerStates); syncVmPowerStates reads and writes around it.
//
// What upstream does, and Mold with it:
// - KVM reports only powered-on domains (running, blocked, paused); a VM whose domain is absent from its
//   host's report (PowerReportMissing) or not powered on is synced to Stopped once its last state change
//   is older than a grace period: its host's capacity is released, hostId cleared (lastHostId kept),
//   a VM.STOP event "Out of band VM power off" recorded by the system, and an ALERT.TYPE.SYNC alert
//   "VM state sync alert" sent. An HA-enabled VM is flagged for an HA restart (haRestart), which the
//   sweeper's HA pass (functions/sweeper/ha.ts) carries out, as upstream schedules one; not while
//   vm.ha.enabled is false in its zone (HA maintenance), which upstream's "Unable to schedule restart"
//   alert says instead.
// - A Stopped VM whose domain is reported powered on goes Running on that host: VM.START "Out of band VM
//   power on" and the same alert. Its capacity is reserved there; when the host cannot hold it the VM
//   still runs there, so the capacity is taken all the same and the alert says the host is over-committed.
// - A Running VM whose host no longer runs it while another reported host does moved there (a live
//   migration behind Mold's back, or one whose job lost track of it): its record and its capacity follow
//   it (taken on the new host, released on the old), with a VM.MIGRATE event and the same alert.
// - Starting, Stopping, Migrating, Destroyed, Expunging and Error VMs are left alone (a job is at work or
//   nothing runs), as are domains that are not Mold's (no VM with that uuid and instance name).
//
// Races with commands: a report is gathered before it arrives, so a command may have changed a VM in
// between. Only VMs whose last state change (lastUpdated, else created) is older than the grace period,
// and older than the moment the agent began reading the hosts (gatheredAt, less a skew allowance: a
// report can wait behind a slow host or a busy gateway for longer than the grace), are judged, and every write is conditional on the VM being exactly as read (state, host, lastUpdated):
// a concurrent start or stop wins, and the next report looks again.
//
// Cost per report: one query of the host index (gsi2 VMHOST#<host>) per healthy reported host, in
// parallel; one BatchGetItem only when a host runs a powered-on domain with an instance name that is
// not recorded on a reported host (a Stopped VM powered on behind Mold's back); writes only for changes.
import type { HostReport } from './agent/protocol.ts';
import { systemActor } from './bootstrap.ts';
import { ALERT_TYPES, createAlert } from './db/alerts.ts';
import { releaseHostCapacity, reserveHostCapacity, takeHostCapacity, vmHostCapacity } from './db/capacity.ts';
import { recordEvent, type Actor } from './db/events.ts';
import type { Host } from './db/hosts.ts';
import { getDomain } from './db/identity.ts';
import { getItems } from './db/items.ts';
import { listVmRecords, removedVmKey, transitionVm, vmKey, type VirtualMachine } from './db/vms.ts';
import { isHealthy, type PingSettings } from './host-health.ts';
import { log } from './log.ts';
import { cpuCapacityOf, memoryCapacityOf } from './placement.ts';
import { settingsFor } from './settings.ts';
import { cloudstackMillis } from './db/jobs.ts';
import { foundStoppedStep, haDisabledVmAlert } from './vm-ha.ts';
import { forEachConcurrently } from './concurrency.ts';

export type DomainReport = HostReport['domains'][number];

/** How many VMs one report changes at once. */
const SYNC_CONCURRENCY = 16;
export type PowerState = DomainReport['state'];

/** Upstream's event descriptions and alert subject. */
export const POWER_OFF_EVENT = 'Out of band VM power off';
export const POWER_ON_EVENT = 'Out of band VM power on';
export const SYNC_ALERT_SUBJECT = 'VM state sync alert';

/**
 * A reported domain state as upstream's KVM resource sees it (LibvirtComputingResource's power states):
 * running, blocked and paused are on; shut off and in shutdown are off; and what upstream maps to
 * PowerUnknown (crashed, pmsuspended, no state) it leaves out of its report, so it counts as off too —
 * except Mold's `Unknown`, which the agent also reports when it could not read the states at all: no word.
 */
export function powerOf(state: PowerState): 'on' | 'off' | 'unknown' {
  switch (state) {
    case 'Running':
    case 'Paused':
      return 'on';
    case 'Unknown':
      return 'unknown';
    default:
      return 'off';
  }
}

/** What the decision needs of a VM record. */
export type SyncedVm = Pick<VirtualMachine, 'id' | 'instanceName' | 'state' | 'hostId' | 'created'> & { lastUpdated?: unknown; startJobId?: unknown };

/** One healthy host report: the host was reached and libvirt answered. */
export interface ReportedHost {
  hostId: string;
  domains: readonly DomainReport[];
}

export type PowerSyncAction<V extends SyncedVm = SyncedVm> =
  /** Running on `hostId`, which reports its domain off (`observed`) or not at all ('missing'): → Stopped. */
  | { kind: 'powerOff'; vm: V; hostId: string; observed: PowerState | 'missing' }
  /** Stopped, and `hostId` reports its domain on: → Running there. */
  | { kind: 'powerOn'; vm: V; hostId: string; observed: PowerState }
  /** Running on `fromHostId`, which no longer runs it, and `hostId` reports it on: it moved there (a migration behind Mold's back, or one whose job lost track). */
  | { kind: 'moved'; vm: V; hostId: string; fromHostId: string; observed: PowerState };


/** When the VM last changed state: upstream's update_time, else its creation (upstream's fallbacks). */
export function lastChange(vm: Pick<SyncedVm, 'lastUpdated' | 'created'>): number {
  const at = typeof vm.lastUpdated === 'string' ? cloudstackMillis(vm.lastUpdated) : NaN;
  return Number.isNaN(at) ? cloudstackMillis(vm.created) : at;
}

/**
 * How old a VM's last state change must be before a report may contradict it. A report is gathered
 * within the agent's per-host timeout — max(5 s, min(20 s, 0.8 × ping.interval)) — before it is sent,
 * so a change older than max(ping.interval, 5 s) happened before the report was taken (upstream waits
 * 2 × ping.interval for a missing VM; Mold's reports carry every domain, so one interval will do).
 * One second more for lastUpdated's whole seconds.
 */
export const graceMs = (ping: Pick<PingSettings, 'interval'>) => Math.max(ping.interval, 5) * 1000 + 1000;

/**
 * Allowance between an agent's clock and the control plane's, and for lastUpdated's whole seconds,
 * when a VM's last change is compared with when its host was read.
 */
export const GATHERED_SKEW_MS = 2000;

/**
 * The `now` to judge a report by: a VM is judged when its last change is older than `now - grace`
 * and, where the agent said when it read its hosts, older than the earliest of those readings (less
 * GATHERED_SKEW_MS). A report that waited (a slow host, a busy gateway) then never contradicts a change
 * it could not have seen. Pure.
 */
export function judgingNow(now: number, grace: number, gatheredAt: readonly (number | undefined)[]): number {
  const times = gatheredAt.filter((at): at is number => typeof at === 'number');
  return times.length === 0 ? now : Math.min(now, Math.min(...times) - GATHERED_SKEW_MS + grace);
}

/** An instance name as Mold (and upstream) gives them: i-<account>-<vm>-<suffix>. */
export const looksLikeInstanceName = (name: string) => /^i-\d+-\d+-.+/.test(name);

type Sighting = { hostId: string; domain: DomainReport };

function sightings(hosts: readonly ReportedHost[]): Map<string, Sighting[]> {
  const byUuid = new Map<string, Sighting[]>();
  for (const host of hosts) {
    for (const domain of host.domains) {
      const list = byUuid.get(domain.uuid) ?? [];
      list.push({ hostId: host.hostId, domain });
      byUuid.set(domain.uuid, list);
    }
  }
  return byUuid;
}

/**
 * The ids of VMs to read besides those recorded on the reported hosts: powered-on domains that look
 * like Mold's (a VM's id is its domain's uuid) but are not among `known` — a Stopped VM powered on
 * behind Mold's back, or a domain that is not Mold's at all (the read finds no VM, or another name).
 */
export function unexpectedDomains(hosts: readonly ReportedHost[], known: Iterable<string>): string[] {
  const knownIds = new Set(known);
  const ids = new Set<string>();
  for (const host of hosts) {
    for (const domain of host.domains) {
      if (powerOf(domain.state) === 'on' && !knownIds.has(domain.uuid) && looksLikeInstanceName(domain.name)) ids.add(domain.uuid);
    }
  }
  return [...ids];
}

/**
 * The reported domains that are no VM of Mold's: no VM has the domain's uuid, or the one that has it
 * carries another instance name (a VM's domain is named by its instance name and has its id). Pure.
 */
export function unmanagedOf(hosts: readonly ReportedHost[], vms: readonly Pick<VirtualMachine, 'id' | 'instanceName'>[]): { hostId: string; domain: DomainReport }[] {
  const names = new Map(vms.map((vm) => [vm.id, vm.instanceName]));
  return hosts.flatMap((host) => host.domains.filter((domain) => names.get(domain.uuid) !== domain.name).map((domain) => ({ hostId: host.hostId, domain })));
}

/**
 * The reconcile step: what to change so that the records follow the reports. `hosts` are the healthy
 * reports (a host not among them says nothing: its VMs are not judged); `vms` the records of the VMs
 * on those hosts and of the unexpected domains. Pure.
 */
export function reconcilePowerStates<V extends SyncedVm>(hosts: readonly ReportedHost[], vms: readonly V[], now: number, grace: number): PowerSyncAction<V>[] {
  const reported = new Set(hosts.map((host) => host.hostId));
  const seen = sightings(hosts);
  const actions: PowerSyncAction<V>[] = [];
  const done = new Set<string>();
  for (const vm of vms) {
    if (done.has(vm.id)) continue;
    done.add(vm.id);
    if (vm.state !== 'Running' && vm.state !== 'Stopped') continue;
    if (vm.startJobId) continue;
    if (now - lastChange(vm) < grace) continue;
    // Its domain: the VM's uuid under the VM's instance name (anything else is not this VM).
    const mine = (seen.get(vm.id) ?? []).filter((sighting) => sighting.domain.name === vm.instanceName);
    const on = mine.filter((sighting) => powerOf(sighting.domain.state) === 'on');
    if (vm.state === 'Running') {
      if (!vm.hostId || !reported.has(vm.hostId)) continue;
      const own = mine.find((sighting) => sighting.hostId === vm.hostId);
      if (own && powerOf(own.domain.state) !== 'off') continue;
      // Powered on elsewhere: an out-of-band migration, not a power-off. (A VM being migrated by
      // Mold is Migrating and not judged at all.)
      if (on[0]) {
        actions.push({ kind: 'moved', vm, hostId: on[0].hostId, fromHostId: vm.hostId, observed: on[0].domain.state });
        continue;
      }
      actions.push({ kind: 'powerOff', vm, hostId: vm.hostId, observed: own?.domain.state ?? 'missing' });
    } else if (on[0]) {
      actions.push({ kind: 'powerOn', vm, hostId: on[0].hostId, observed: on[0].domain.state });
    }
  }
  return actions;
}

// ---- what is said ----

/** Upstream's alert content: "VM <hostname>(<instance name>) state is sync-ed (<from> -> <to>) from out-of-context transition." */
export function syncAlertContent(vm: Pick<VirtualMachine, 'name' | 'instanceName'>, from: string, to: 'Running' | 'Stopped'): string {
  const text = `VM ${vm.name}(${vm.instanceName}) state is sync-ed (${from} -> ${to}) from out-of-context transition.`;
  return to === 'Running' ? `${text} VM network environment may need to be reset` : text;
}

/** Why, in Mold's words (the event's and the log's detail). */
export function observedText(action: Pick<PowerSyncAction, 'kind' | 'observed'>, hostName: string): string {
  if (action.kind === 'powerOn') return `host ${hostName} reports its domain ${action.observed}`;
  return action.observed === 'missing' ? `host ${hostName} no longer reports its domain` : `host ${hostName} reports its domain ${action.observed}`;
}

// ---- reading and writing ----

/** The system acting in the VM's domain (upstream: User.UID_SYSTEM, Account.ACCOUNT_ID_SYSTEM, the VM's domain). */
export async function syncActor(vm: VirtualMachine): Promise<Actor> {
  const system = await systemActor();
  const domain = await getDomain(vm.domainId);
  return domain ? { ...system, domainId: domain.id, domainName: domain.name, domainPath: domain.path, domainTree: domain.tree } : system;
}

/** Which of `ids` name an expunged VM (its removed record remains). */
async function removedVms(ids: readonly string[]): Promise<Set<string>> {
  const removed = new Set<string>();
  const unique = [...new Set(ids)];
  for (let i = 0; i < unique.length; i += 100) {
    const chunk = unique.slice(i, i + 100);
    const items = await getItems<(Record<string, unknown> | undefined)[]>(chunk.map(removedVmKey));
    items.forEach((item, index) => item && removed.add(chunk[index]!));
  }
  return removed;
}

async function readVms(ids: readonly string[]): Promise<VirtualMachine[]> {
  const found: VirtualMachine[] = [];
  for (let i = 0; i < ids.length; i += 100) {
    const items = await getItems<(VirtualMachine | undefined)[]>(ids.slice(i, i + 100).map((id) => vmKey(id)));
    for (const vm of items) if (vm) found.push(vm);
  }
  return found;
}


/**
 * A Running VM found not running on `hostId` → Stopped, its capacity there released, only if it is
 * still exactly as read. An HA-enabled VM is flagged for an HA restart (shared/vm-ha.ts), as
 * upstream schedules one for a VM that stopped without a stop command, unless `flag` says otherwise
 * (HA maintenance). Resolves whether it moved.
 */
export async function stopFoundStopped(vm: VirtualMachine, hostId: string, flag = vm.haEnable): Promise<boolean> {
  const moved = await transitionVm(vm.id, ['Running'], 'Stopped', { hostId: undefined, lastHostId: hostId, ...(flag && { haRestart: true, haHeld: undefined }) }, { hostId, lastUpdated: vm.lastUpdated });
  if (!moved) return false;
  // Recorded first, released after (as a stop): a lost race gives nothing back.
  await releaseHostCapacity(hostId, vm);
  return true;
}

/** The power sync's alert on a VM whose state it changed, in the host's zone, pod and cluster. */
function syncAlert(vm: VirtualMachine, host: Host, content: string) {
  return createAlert({
    alertType: ALERT_TYPES.SYNC,
    subject: SYNC_ALERT_SUBJECT,
    content,
    zoneId: vm.zoneId,
    ...(host.podId && { podId: host.podId }),
    ...(host.clusterId && { clusterId: host.clusterId }),
    resourceId: vm.id,
    resourceType: 'VirtualMachine',
  });
}

async function powerOff(vm: VirtualMachine, host: Host, action: PowerSyncAction): Promise<boolean> {
  const zone = vm.haEnable ? await settingsFor({ zoneId: vm.zoneId }) : undefined;
  const ha = foundStoppedStep(vm, zone?.boolean('vm.ha.enabled') ?? true);
  if (!(await stopFoundStopped(vm, host.id, ha === 'flag'))) return false;
  const why = observedText(action, host.name);
  log.info('VM power-state sync: Running -> Stopped', { vm: vm.instanceName, vmId: vm.id, hostId: host.id, observed: action.observed });
  await recordEvent(await syncActor(vm), { type: 'VM.STOP', description: POWER_OFF_EVENT, resourceId: vm.id, resourceType: 'VirtualMachine' });
  await syncAlert(vm, host, `${syncAlertContent(vm, 'Running', 'Stopped')} (${why})`);
  if (ha === 'held') {
    log.warn('VM power-state sync: an HA VM found stopped is not restarted (vm.ha.enabled is false)', { vmId: vm.id });
    if (zone!.boolean('vm.ha.alerts.enabled')) {
      await createAlert({ alertType: ALERT_TYPES.USERVM, ...haDisabledVmAlert(vm), zoneId: vm.zoneId, ...(host.podId && { podId: host.podId }), ...(host.clusterId && { clusterId: host.clusterId }), resourceId: vm.id, resourceType: 'VirtualMachine' });
    }
  }
  return true;
}

/**
 * Takes a VM found running on `host` into the host's books: within capacity when it holds (`held`),
 * regardless when not, since the VM runs there either way.
 */
async function takeFoundVm(vm: VirtualMachine, host: Host) {
  const { cpuMhz, memoryBytes } = vmHostCapacity(vm);
  const scoped = await settingsFor({ clusterId: host.clusterId, zoneId: host.zoneId });
  const caps = {
    cpuMhz: cpuCapacityOf(host, scoped.number('cpu.overprovisioning.factor') || 1),
    memoryBytes: memoryCapacityOf(host, scoped.number('mem.overprovisioning.factor') || 1),
  };
  const held = await reserveHostCapacity(host.id, { vmId: vm.id }, cpuMhz, memoryBytes, caps);
  if (!held) await takeHostCapacity(host.id, { vmId: vm.id }, cpuMhz, memoryBytes);
  return { cpuMhz, memoryBytes, held };
}

async function powerOn(vm: VirtualMachine, host: Host, action: PowerSyncAction): Promise<boolean> {
  // Reserved first, recorded after; a lost race gives it back.
  const { cpuMhz, memoryBytes, held } = await takeFoundVm(vm, host);
  const moved = await transitionVm(
    vm.id,
    ['Stopped'],
    'Running',
    { hostId: host.id, lastHostId: host.id, podId: host.podId, clusterId: host.clusterId },
    { hostId: undefined, lastUpdated: vm.lastUpdated },
  );
  if (!moved) {
    await releaseHostCapacity(host.id, vm);
    return false;
  }
  const why = observedText(action, host.name);
  const overcommitted = held ? '' : ` Host ${host.name} (${host.id}) cannot hold it (${cpuMhz} MHz, ${memoryBytes} bytes): its capacity is over-committed.`;
  if (!held) log.warn('VM power-state sync: the host cannot hold a VM found running there', { vm: vm.instanceName, vmId: vm.id, hostId: host.id, cpuMhz, memoryBytes });
  log.info('VM power-state sync: Stopped -> Running', { vm: vm.instanceName, vmId: vm.id, hostId: host.id, observed: action.observed });
  await recordEvent(await syncActor(vm), { type: 'VM.START', description: POWER_ON_EVENT, resourceId: vm.id, resourceType: 'VirtualMachine' });
  await syncAlert(vm, host, `${syncAlertContent(vm, 'Stopped', 'Running')} (${why}).${overcommitted}`);
  return true;
}

/** Upstream's VM.MIGRATE for a VM found on another host (Mold's description). */
export const MOVED_EVENT = 'Out of band VM migration';

async function moved(vm: VirtualMachine, host: Host, action: PowerSyncAction): Promise<boolean> {
  if (action.kind !== 'moved') return false;
  // Taken on the new host first, recorded, then given back on the old: a lost race gives the new back.
  const { cpuMhz, memoryBytes, held } = await takeFoundVm(vm, host);
  const recorded = await transitionVm(
    vm.id,
    ['Running'],
    'Running',
    { hostId: host.id, lastHostId: host.id, podId: host.podId, clusterId: host.clusterId },
    { hostId: action.fromHostId, lastUpdated: vm.lastUpdated },
  );
  if (!recorded) {
    await releaseHostCapacity(host.id, vm);
    return false;
  }
  await releaseHostCapacity(action.fromHostId, vm);
  log.info('VM power-state sync: Running on another host', { vm: vm.instanceName, vmId: vm.id, from: action.fromHostId, hostId: host.id });
  await recordEvent(await syncActor(vm), { type: 'VM.MIGRATE', description: MOVED_EVENT, resourceId: vm.id, resourceType: 'VirtualMachine' });
  await syncAlert(vm, host, `${syncAlertContent(vm, 'Running', 'Running')} (host ${host.name} reports its domain ${action.observed}; it was recorded on host ${action.fromHostId}).${held ? '' : ` Host ${host.name} (${host.id}) cannot hold it: its capacity is over-committed.`}`);
  return true;
}

/**
 * Reconciles the VMs of the agent's report with it: `reports` as the agent sent them, `hosts` the
 * agent's hosts (others' are ignored). Resolves the changes made (a change that lost a race to a
 * command is left out). Never throws: a failure is logged, and the next report tries again.
 */
export async function syncVmPowerStates(
  reports: readonly HostReport[],
  hosts: ReadonlyMap<string, Host>,
  ping: Pick<PingSettings, 'interval'>,
  now = Date.now(),
): Promise<{ applied: PowerSyncAction<VirtualMachine>[]; unmanaged: { hostId: string; domain: DomainReport }[] }> {
  try {
    const healthy = new Map<string, ReportedHost>();
    for (const report of reports) if (hosts.has(report.hostId) && isHealthy(report)) healthy.set(report.hostId, { hostId: report.hostId, domains: report.domains ?? [] });
    if (healthy.size === 0) return { applied: [], unmanaged: [] };
    const reported = [...healthy.values()];
    const recorded = (await Promise.all(reported.map((host) => listVmRecords({ hostId: host.hostId })))).flat();
    // Every other reported domain is read once: the powered-on ones that look like Mold's may be VMs to
    // sync; the rest, and those no VM owns, are the hosts' unmanaged domains.
    const recordedIds = new Set(recorded.map((vm) => vm.id));
    const others = [...new Set(reported.flatMap((host) => host.domains.map((domain) => domain.uuid)).filter((uuid) => !recordedIds.has(uuid)))];
    const found = others.length > 0 ? await readVms(others) : [];
    const extra = new Set(unexpectedDomains(reported, recordedIds));
    const vms = [...recorded, ...found.filter((vm) => extra.has(vm.id))];
    // A domain of a VM expunged since the report was read is not a stranger.
    const strangers = unmanagedOf(reported, [...recorded, ...found]);
    const expunged = await removedVms(strangers.map(({ domain }) => domain.uuid));
    const unmanaged = strangers.filter(({ domain }) => !expunged.has(domain.uuid));
    const grace = graceMs(ping);
    const actions = reconcilePowerStates(reported, vms, judgingNow(now, grace, reports.filter((r) => healthy.has(r.hostId)).map((r) => r.gatheredAt)), grace);
    const applied: PowerSyncAction<VirtualMachine>[] = [];
    // Each action concerns one VM, written on condition: a restore's hundreds of changes overlap.
    await forEachConcurrently(actions, SYNC_CONCURRENCY, async (action) => {
      const host = hosts.get(action.hostId)!;
      try {
        const apply = action.kind === 'powerOff' ? powerOff : action.kind === 'powerOn' ? powerOn : moved;
        if (await apply(action.vm, host, action)) applied.push(action);
      } catch (error) {
        log.warn('VM power-state sync failed for a VM', { vmId: action.vm.id, hostId: action.hostId, kind: action.kind, error: String(error) });
      }
    });
    return { applied, unmanaged };
  } catch (error) {
    log.warn('VM power-state sync failed', { error: String(error) });
    return { applied: [], unmanaged: [] };
  }
}
