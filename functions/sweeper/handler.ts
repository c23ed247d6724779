// Runs on an EventBridge schedule (and on the local runtime's timer): reconciliation passes that no
// single request owns.
import middy from '@middy/core';
import { systemActor } from '../../shared/bootstrap.ts';
import { log } from '../../shared/log.ts';
import { startPendingDownloads } from '../../shared/template-downloads.ts';
import { repairAddresses, type AddressRepair } from './addresses.ts';
import { repairCapacity, type CapacityRepair } from './capacity.ts';
import { reconcileHa, type HaChange } from './ha.ts';
import { sweepHosts, type HostChange } from './hosts.ts';
import { failOrphanedJobs } from './jobs.ts';
import { repairResourceCounts, type CountRepair } from './resource-counts.ts';
import { expungeDestroyedVms } from './vms.ts';

async function sweep() {
  const orphanedJobs = await failOrphanedJobs();
  if (orphanedJobs.length > 0) log.info('failed orphaned jobs', { jobIds: orphanedJobs });
  // A failing host pass must not fail the sweep: the jobs are already dealt with.
  let hostChanges: HostChange[] = [];
  try {
    hostChanges = await sweepHosts();
    if (hostChanges.length > 0) log.info('host status changes', { changes: hostChanges });
  } catch (error) {
    log.error('host sweep failed', { error: (error as Error).message });
  }
  // VM HA right after the host pass, so that a host just judged Down is dealt with in the same sweep.
  let haChanges: HaChange[] = [];
  try {
    haChanges = await reconcileHa();
    if (haChanges.length > 0) log.info('HA changes', { changes: haChanges });
  } catch (error) {
    log.error('HA pass failed', { error: (error as Error).message });
  }
  // After the jobs: a hold whose job was just failed as orphaned is released in the same sweep.
  let capacityRepairs: CapacityRepair[] = [];
  try {
    capacityRepairs = await repairCapacity(await systemActor());
    if (capacityRepairs.length > 0) log.warn('released leaked capacity holds', { repairs: capacityRepairs });
  } catch (error) {
    log.error('capacity repair pass failed', { error: (error as Error).message });
  }
  let addressRepairs: AddressRepair[] = [];
  try {
    addressRepairs = await repairAddresses(await systemActor());
    if (addressRepairs.length > 0) log.warn('released orphaned addresses', { repairs: addressRepairs });
  } catch (error) {
    log.error('address repair pass failed', { error: (error as Error).message });
  }
  let countRepairs: CountRepair[] = [];
  try {
    countRepairs = await repairResourceCounts(await systemActor());
    if (countRepairs.length > 0) log.warn('recounted resource counts', { repairs: countRepairs });
  } catch (error) {
    log.error('resource recount pass failed', { error: (error as Error).message });
  }
  let downloadsStarted = 0;
  try {
    downloadsStarted = await startPendingDownloads(await systemActor());
    if (downloadsStarted > 0) log.info('template downloads started', { count: downloadsStarted });
  } catch (error) {
    log.error('template download pass failed', { error: (error as Error).message });
  }
  let vmsExpunged: string[] = [];
  try {
    vmsExpunged = await expungeDestroyedVms(await systemActor());
    if (vmsExpunged.length > 0) log.info('expunging destroyed VMs', { vmIds: vmsExpunged });
  } catch (error) {
    log.error('VM expunge pass failed', { error: (error as Error).message });
  }
  return { orphanedJobs, hostChanges, haChanges, capacityRepairs, addressRepairs, countRepairs, downloadsStarted, vmsExpunged };
}

export const handler = middy().handler(sweep);
