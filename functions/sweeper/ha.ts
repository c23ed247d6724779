// VM HA's reconciler (the decisions are shared/vm-ha.ts). Each sweep:
// 0. every host HA is configured for: its host HA step (functions/sweeper/host-ha.ts), which may start
//    the fence below; while host HA acts on a host, the VM HA decision waits for its Fenced;
// 1. every Down host an agent manages: observe its fence (hafence and the fence job), its zone's and
//    cluster's out-of-band management switches and the VMs its record holds; decide; then act, each
//    step a conditional write: non-HA VMs → Stopped (alert), a power OFF through the BMC started as a
//    system job (claimed on the host record first, so two sweeps start one), and once the OFF is
//    confirmed the HA VMs → Stopped and flagged for restart;
// 2. every VM flagged for an HA restart and Stopped: claimed (Stopped → Starting, flag cleared) and
//    started by the vm-start state machine as the system, which places it on another Up host.
// A host Up again loses its fence record, so its next failure fences afresh.
// HA maintenance (vm.ha.enabled false for the host's or the VM's zone): the decisions hold everything
// back; the pass records it once (hafence.held on the host, haHeld on a flagged VM) with upstream's
// "VM high availability manager is disabled" alerts (when vm.ha.alerts.enabled), and when HA is on again
// the next pass decides from what it then reads.
import { systemActor } from '../../shared/bootstrap.ts';
import { ALERT_TYPES, createAlert } from '../../shared/db/alerts.ts';
import type { Actor } from '../../shared/db/events.ts';
import { getHost, listHostRecords, updateHostRecord, type Host } from '../../shared/db/hosts.ts';
import { getCluster, getPod, getZone } from '../../shared/db/infrastructure.ts';
import { cloudstackMillis, getJob, JobStatus } from '../../shared/db/jobs.ts';
import { listVmRecords, transitionVm, updateVmRecord, type VirtualMachine } from '../../shared/db/vms.ts';
import { hostDescription } from '../../shared/host-health.ts';
import { log } from '../../shared/log.ts';
import { oobmRefusal } from '../../shared/oobm.ts';
import { startJob } from '../../shared/orchestration.ts';
import { loadSettings, settingsFor, type Settings } from '../../shared/settings.ts';
import { heartbeatOf } from '../../shared/storage-heartbeat.ts';
import { reconcileHostHa } from './host-ha.ts';
import { stopFoundStopped } from '../../shared/vm-power-sync.ts';
import { cutOffHostAlert, decideHostVms, haDisabledHostAlert, haDisabledVmAlert, haStartingAlert, provenDeadAlert, restartable, restartStep, stoppedUnexpectedlyAlert, unableToFenceAlert, type FenceJob, type FenceStep } from '../../shared/vm-ha.ts';

export interface HaChange {
  kind: 'stopped' | 'released' | 'fence' | 'refused' | 'cleared' | 'restart' | 'held' | 'spared' | 'hostha';
  hostId?: string;
  vmId?: string;
  /** The host's new HA state (kind hostha). */
  state?: string;
}

async function readFenceJob(jobId: string | undefined): Promise<FenceJob | undefined> {
  if (!jobId) return undefined;
  const job = await getJob(jobId);
  if (!job) return undefined;
  if (job.jobstatus === JobStatus.Pending) return { status: 'pending' };
  if (job.jobstatus === JobStatus.Failed) return { status: 'failed', error: String(job.jobresult?.errortext ?? 'failed') };
  const oobm = job.jobresult?.outofbandmanagement as { powerstate?: string } | undefined;
  // When the OFF was asked (to the ms; `completed` has seconds only): its reading is later still.
  const asked = job.timestamp ?? job.created;
  return { status: 'succeeded', powerState: oobm?.powerstate ?? 'Unknown', at: cloudstackMillis(asked) };
}

async function hostDesc(host: Host): Promise<string> {
  const [zone, pod] = await Promise.all([getZone(host.zoneId), getPod(host.podId)]);
  return hostDescription(host, { zoneName: zone?.name ?? host.zoneId, podName: pod?.name ?? host.podId });
}

const alertPlace = (host: Host, vm?: VirtualMachine) => ({ zoneId: host.zoneId, podId: host.podId, clusterId: host.clusterId, resourceId: vm?.id ?? host.id, resourceType: vm ? 'VirtualMachine' : 'Host' });

/** Starts the power OFF that fences `host`, after claiming the fence on its record (as read: status and fence). */
async function startFence(actor: Actor, host: Host, reason: string, now: number): Promise<boolean> {
  const at = new Date(now).toISOString();
  // The claim: only the sweep whose write holds starts a job.
  const claimed = await updateHostRecord(host.id, { hafence: { at } }, { status: host.status, hafence: host.hafence });
  if (!claimed) return false;
  log.info('HA: fencing a host through its BMC', { hostId: host.id, reason });
  try {
    const job = await startJob(
      {
        cmd: 'issueOutOfBandManagementPowerAction',
        actor,
        jobinstancetype: 'Host',
        jobinstanceid: host.id,
        event: { type: 'HOST.OOBM.ACTION', description: `Issuing out-out-band management power action: OFF to host: ${host.id}`, resourceId: host.id, resourceType: 'Host' },
      },
      'agent-command',
      { op: 'oobmPowerAction', args: { agentId: host.agentId, hostId: host.id, action: 'OFF' } },
    );
    await updateHostRecord(host.id, { hafence: { jobId: job.jobid, at } }, { hafence: { at } });
  } catch (error) {
    // Not started: the claim without a job is retried after the fence timeout.
    log.warn('HA: the fence could not be started', { hostId: host.id, error: String(error) });
    return false;
  }
  await createAlert({
    alertType: ALERT_TYPES.HA_ACTION,
    subject: `HA Fencing of host id=${host.id}, in dc id=${host.zoneId} performed`,
    content: `HA Fencing has been performed for host id=${host.id}, uuid=${host.id} in datacenter id=${host.zoneId}: ${reason}`,
    ...alertPlace(host),
  });
  return true;
}

/** One host: its fence and the VMs its record holds; `fleet` (every host) for its peers' heartbeat readings. */
async function reconcileHost(actor: Actor, read: Host, fleet: readonly Host[], now: number, global: Settings, changes: HaChange[]) {
  const [zone, cluster] = await Promise.all([getZone(read.zoneId), getCluster(read.clusterId)]);
  const scoped = await settingsFor({ clusterId: read.clusterId, zoneId: read.zoneId }, global);
  const fenceJob = await readFenceJob(read.hafence?.jobId);
  let host = read;
  if (host.ha) {
    const context = { now, fleet, zone, cluster, scoped, pingIntervalSeconds: global.number('ping.interval'), fenceJob };
    const change = await reconcileHostHa(actor, host, context, (fenced, reason) => startFence(actor, fenced, reason, now));
    if (change) {
      changes.push({ kind: 'hostha', hostId: host.id, state: change.to });
      if (change.fence) changes.push({ kind: 'fence', hostId: host.id });
      host = (await getHost(host.id)) ?? host;
    }
  }
  // Host HA acts on the host unless it is off for it or cannot (no BMC, maintenance): then VM HA's own rules.
  const hostHa = host.ha?.state && host.ha.state !== 'Disabled' && host.ha.state !== 'Ineligible' ? host.ha.state : undefined;
  const vms = host.status === 'Down' || hostHa === 'Fenced' ? await listVmRecords({ hostId: host.id }) : [];
  const refusal = oobmRefusal(host, zone, cluster);
  const heartbeat = heartbeatOf(host, fleet, now, global.number('ping.interval'));
  const decision = decideHostVms(
    {
      status: host.status,
      resourceState: host.resourcestate,
      ...(refusal && { oobmRefusal: refusal }),
      ...(host.hafence && { fence: host.hafence }),
      fenceJob: host.hafence?.jobId === read.hafence?.jobId ? fenceJob : await readFenceJob(host.hafence?.jobId),
      ...(heartbeat && { heartbeat }),
      ...(host.oobmpowerstate && { powerState: host.oobmpowerstate }),
      ...(hostHa && { hostHa }),
    },
    vms,
    now,
    { fenceTimeoutMs: scoped.number('kvm.ha.fence.timeout') * 1000, haEnabled: scoped.boolean('vm.ha.enabled') },
  );
  const byId = new Map(vms.map((vm) => [vm.id, vm]));
  if (decision.proof === 'heartbeat' && decision.release.length > 0) log.warn('HA: a host is proven dead by its storage heartbeat', { hostId: host.id, reason: decision.reason, by: heartbeat?.by });
  for (const { id } of decision.stop) {
    const vm = byId.get(id)!;
    if (!(await stopFoundStopped(vm, host.id))) continue;
    log.info('HA: a VM of a Down host is Stopped (not HA-enabled)', { vmId: vm.id, hostId: host.id });
    await createAlert({ alertType: ALERT_TYPES.USERVM, ...stoppedUnexpectedlyAlert(vm, host), ...alertPlace(host, vm) });
    changes.push({ kind: 'stopped', hostId: host.id, vmId: vm.id });
  }
  const provenDesc = decision.proof === 'heartbeat' && decision.release.length > 0 ? await hostDesc(host) : undefined;
  for (const { id } of decision.release) {
    // Stopped and flagged: the restart pass below starts it elsewhere.
    const vm = byId.get(id)!;
    if (!(await stopFoundStopped(vm, host.id))) continue;
    changes.push({ kind: 'released', hostId: host.id, vmId: id });
    if (provenDesc) await createAlert({ alertType: ALERT_TYPES.HA_ACTION, ...provenDeadAlert(vm, provenDesc, decision.reason), ...alertPlace(host, vm) });
  }
  const step = decision.fence;
  if (step?.kind === 'fence' && (await startFence(actor, host, step.reason, now))) changes.push({ kind: 'fence', hostId: host.id });
  if (step?.kind === 'refused') {
    const recorded = await updateHostRecord(host.id, { hafence: { at: new Date(now).toISOString(), refused: step.refusal } }, { status: 'Down', hafence: host.hafence });
    if (recorded) {
      const desc = await hostDesc(host);
      for (const vm of vms.filter((v) => v.state === 'Running' && v.haEnable)) {
        await createAlert({ alertType: ALERT_TYPES.USERVM, ...unableToFenceAlert(vm, desc, step.reason), ...alertPlace(host, vm) });
      }
      changes.push({ kind: 'refused', hostId: host.id });
    }
  }
  if (step?.kind === 'held') {
    // Replaces any fence record: evidence from before the pause is not acted on after it.
    const recorded = await updateHostRecord(host.id, { hafence: { at: new Date(now).toISOString(), held: step.reason } }, { status: 'Down', hafence: host.hafence });
    if (recorded) {
      log.warn('HA: held back on a Down host (vm.ha.enabled is false)', { hostId: host.id, reason: step.reason });
      if (scoped.boolean('vm.ha.alerts.enabled')) {
        await createAlert({ alertType: ALERT_TYPES.HOST, ...haDisabledHostAlert(await hostDesc(host), step.reason), ...alertPlace(host) });
      }
      changes.push({ kind: 'held', hostId: host.id });
    }
  }
  if (step?.kind === 'spared') {
    const recorded = await updateHostRecord(host.id, { hafence: { at: new Date(now).toISOString(), spared: step.reason } }, { status: 'Down', hafence: host.hafence });
    if (recorded) {
      log.warn('HA: a Down host still writes its storage heartbeat: left alone', { hostId: host.id, by: heartbeat?.by, ageSeconds: heartbeat?.ageSeconds });
      await createAlert({ alertType: ALERT_TYPES.HOST, ...cutOffHostAlert(await hostDesc(host), step.reason), ...alertPlace(host) });
      changes.push({ kind: 'spared', hostId: host.id });
    }
  }
  if (step?.kind === 'clear' && (await updateHostRecord(host.id, { hafence: undefined }, { status: 'Up', hafence: host.hafence }))) changes.push({ kind: 'cleared', hostId: host.id });
}

/**
 * Starts every VM flagged for an HA restart (vm-start places it on an Up host). Reads the Stopped VMs
 * through the VM listing, whose in-process copy is reused while no VM changed (shared/db/vms.ts), so a
 * quiet sweep costs one version read.
 */
async function restartFlagged(actor: Actor, global: Settings, now: number, changes: HaChange[]) {
  const zones = new Map<string, Promise<Settings>>();
  const zoneSettings = (zoneId: string) => zones.get(zoneId) ?? zones.set(zoneId, settingsFor({ zoneId }, global)).get(zoneId)!;
  for (const vm of await listVmRecords({ states: ['Stopped'] })) {
    // Zone settings are read only for VMs that wait for a restart.
    if (!restartable(vm)) continue;
    const scoped = await zoneSettings(vm.zoneId);
    const step = restartStep(vm, scoped.boolean('vm.ha.enabled'), now);
    if (step === 'hold') {
      // Said once per pause; the flag stays for when HA is on again.
      if (!(await updateVmRecord(vm.id, { haHeld: new Date(now).toISOString() }, ['Stopped']))) continue;
      log.warn('HA: a restart is held (vm.ha.enabled is false)', { vmId: vm.id });
      if (scoped.boolean('vm.ha.alerts.enabled')) {
        await createAlert({ alertType: ALERT_TYPES.USERVM, ...haDisabledVmAlert(vm), zoneId: vm.zoneId, ...(vm.podId && { podId: vm.podId }), resourceId: vm.id, resourceType: 'VirtualMachine' });
      }
      changes.push({ kind: 'held', vmId: vm.id });
      continue;
    }
    if (step !== 'restart') continue;
    // Marked as HA's start: if it fails, its release queues it again (functions/tasks/vms.ts releaseStart).
    const claimed = await transitionVm(vm.id, ['Stopped'], 'Starting', { haRestart: undefined, haHeld: undefined, haStarting: true, haAttempts: (vm.haAttempts ?? 0) + 1 }, { haRestart: true, lastUpdated: vm.lastUpdated });
    if (!claimed) continue;
    try {
      await startJob(
        {
          cmd: 'startVirtualMachine',
          actor,
          jobinstancetype: 'VirtualMachine',
          jobinstanceid: vm.id,
          event: { type: 'VM.START', description: `starting Vm. Vm Id: ${vm.id} (HA)`, resourceId: vm.id, resourceType: 'VirtualMachine' },
        },
        'vm-start',
        { vmId: vm.id, viewer: { rootAdmin: true, admin: true } },
      );
    } catch (error) {
      // Not started: Stopped and flagged again, for the next pass.
      log.warn('HA: the restart could not be started', { vmId: vm.id, error: String(error) });
      await transitionVm(vm.id, ['Starting'], 'Stopped', { haRestart: true, haStarting: undefined, haAttempts: vm.haAttempts });
      continue;
    }
    log.info('HA: restarting a VM on another host', { vmId: vm.id, lastHostId: vm.lastHostId });
    await createAlert({ alertType: ALERT_TYPES.USERVM, ...haStartingAlert(vm), zoneId: vm.zoneId, ...(vm.podId && { podId: vm.podId }), resourceId: vm.id, resourceType: 'VirtualMachine' });
    changes.push({ kind: 'restart', vmId: vm.id });
  }
}

/** One HA pass. A host's failure is logged and does not stop the others'. */
export async function reconcileHa(now = Date.now()): Promise<HaChange[]> {
  const [actor, global] = await Promise.all([systemActor(), loadSettings()]);
  const changes: HaChange[] = [];
  const fleet = await listHostRecords();
  for (const host of fleet) {
    if (!host.agentId || (host.status !== 'Down' && !host.hafence && !host.ha)) continue;
    try {
      await reconcileHost(actor, host, fleet, now, global, changes);
    } catch (error) {
      log.warn('HA: reconciling a host failed', { hostId: host.id, error: String(error) });
    }
  }
  await restartFlagged(actor, global, now, changes);
  return changes;
}
