// Reserving a host's CPU and memory (and a pool's bytes) for a VM, so concurrent deploys never
// over-commit: the planner (shared/placement.ts) orders the hosts that may take the VM from what
// was read, then each reservation is one conditional write on the host item — it holds only while
// the host is still Up and Enabled and its allocated CPU and memory, raised by the VM's, stay
// within capacity × the cluster's over-provisioning factor. With a new disk, the pool's bytes are
// reserved in the same transaction. A refused reservation means someone else took the room: the
// next candidate is tried; when none holds, InsufficientCapacity (533) with upstream's text.
import { log } from '../log.ts';
import { DeleteCommand, GetCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../aws.ts';
import { InsufficientCapacity } from '../cloudstack/errors.ts';
import {
  allocationAlgorithm,
  noDeploymentText,
  parseTags,
  planPlacement,
  type CandidateHost,
  type CandidatePool,
  type Placement,
  type PlanResult,
} from '../placement.ts';
import { loadSettings, settingsFor, type Settings } from '../settings.ts';
import { getAffinityGroup } from './affinity-groups.ts';
import { hostKey, listHostRecords, type Host } from './hosts.ts';
import type { Account } from './identity.ts';
import { listClusters, listPods, listZones, type Cluster } from './infrastructure.ts';
import { getItems, isConditionFailure, tableName } from './items.ts';
import { releaseResources, reserveResources, type ResourceAmounts } from './limits.ts';
import { listStoragePools, overprovisioningFactor, releasePoolItem, reservePoolItem, type StoragePool } from './storage.ts';
import { listVmsOfAccount, vmKey, vmResources, volumeResources, type VirtualMachine } from './vms.ts';

/** What a host may hold in all: CPU MHz and memory bytes after the cluster's factors. */
export interface HostCaps {
  cpuMhz: number;
  memoryBytes: number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function reserveHostItem(hostId: string, cpuMhz: number, memoryBytes: number, caps: HostCaps) {
  return {
    TableName: tableName(),
    Key: hostKey(hostId),
    UpdateExpression: 'SET #cpu = if_not_exists(#cpu, :zero) + :cpu, #mem = if_not_exists(#mem, :zero) + :mem',
    ConditionExpression:
      'attribute_exists(pk) AND #status = :up AND #rs = :enabled AND (attribute_not_exists(#cpu) OR #cpu <= :cpuMax) AND (attribute_not_exists(#mem) OR #mem <= :memMax)',
    ExpressionAttributeNames: { '#cpu': 'cpuallocated', '#mem': 'memoryallocated', '#status': 'status', '#rs': 'resourcestate' },
    ExpressionAttributeValues: {
      ':zero': 0,
      ':cpu': cpuMhz,
      ':mem': memoryBytes,
      ':up': 'Up',
      ':enabled': 'Enabled',
      ':cpuMax': caps.cpuMhz - cpuMhz,
      ':memMax': caps.memoryBytes - memoryBytes,
    },
  };
}

// ---- the ledger: what each VM holds on a host ----
//
// The host's counters say how much is allocated, not to whom: a reservation whose taker died before
// recording it on the VM (a function killed between reserve and commit) would be lost in them for
// good. So every reservation also writes one hold item per (host, VM) in the same transaction —
// what it holds, when, and for which job — and every release deletes it in the same transaction as
// it lowers the counters. The capacity reconciler (functions/sweeper/capacity.ts) gives back a hold
// whose VM does not hold the host. A hold also makes the release idempotent: a second release of
// the same hold finds nothing to give back.

/** A VM's hold on a host's CPU and memory. */
export interface CapacityHold {
  hostId: string;
  vmId: string;
  cpuMhz: number;
  memoryBytes: number;
  /** When it was taken (ISO 8601). */
  at: string;
  /** The job that took it, when a job did. */
  jobId?: string;
}

/** Who takes a hold: the VM, and the job taking it for the VM. */
export interface Holder {
  vmId: string;
  jobId?: string;
}

const holdKey = (hostId: string, vmId: string) => ({ pk: `CAPACITY#${hostId}`, sk: `VM#${vmId}` });

function holdPut(hostId: string, holder: Holder, cpuMhz: number, memoryBytes: number) {
  const hold: CapacityHold = { hostId, vmId: holder.vmId, cpuMhz, memoryBytes, at: new Date().toISOString(), ...(holder.jobId && { jobId: holder.jobId }) };
  return { Put: { TableName: tableName(), Item: { ...holdKey(hostId, holder.vmId), ...hold }, ConditionExpression: 'attribute_not_exists(pk)' } };
}

/** The holds on a host's capacity. */
export async function listHolds(hostId: string): Promise<CapacityHold[]> {
  const holds: CapacityHold[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new QueryCommand({ TableName: tableName(), ConsistentRead: true, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': holdKey(hostId, '').pk }, ExclusiveStartKey: start }),
    );
    for (const item of page.Items ?? []) holds.push({ hostId: item.hostId, vmId: item.vmId, cpuMhz: item.cpuMhz, memoryBytes: item.memoryBytes, at: item.at, ...(item.jobId && { jobId: item.jobId }) });
    start = page.LastEvaluatedKey;
  } while (start);
  return holds;
}

/**
 * Raises the host's allocated CPU and memory for the VM, in one transaction with its hold: it holds
 * only while the host is Up and Enabled and both stay within `caps`. False when it does not hold.
 * A hold the VM already has there is given back first (a retry of a reservation whose taker died).
 */
export async function reserveHostCapacity(hostId: string, holder: Holder, cpuMhz: number, memoryBytes: number, caps: HostCaps): Promise<boolean> {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      await dynamo().send(new TransactWriteCommand({ TransactItems: [{ Update: reserveHostItem(hostId, cpuMhz, memoryBytes, caps) }, holdPut(hostId, holder, cpuMhz, memoryBytes)] as never }));
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const { conflict, conditions } = failedItems(error);
      // The hold first: the one there may be what fills the host.
      if (conditions[1]) await releaseHostCapacity(hostId, { id: holder.vmId });
      else if (conditions[0] || !conflict) return false;
      else await pause(5 + Math.random() * 20);
    }
  }
  return false;
}

/**
 * Takes CPU and memory on the host for the VM whatever the host's capacity (the VM runs there: the
 * figures must say so), with its hold. A hold the VM already has there stays as it is.
 */
export async function takeHostCapacity(hostId: string, holder: Holder, cpuMhz: number, memoryBytes: number): Promise<void> {
  const raise = {
    TableName: tableName(),
    Key: hostKey(hostId),
    UpdateExpression: 'SET #cpu = if_not_exists(#cpu, :zero) + :cpu, #mem = if_not_exists(#mem, :zero) + :mem',
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeNames: { '#cpu': 'cpuallocated', '#mem': 'memoryallocated' },
    ExpressionAttributeValues: { ':zero': 0, ':cpu': cpuMhz, ':mem': memoryBytes },
  };
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      await dynamo().send(new TransactWriteCommand({ TransactItems: [{ Update: raise }, holdPut(hostId, holder, cpuMhz, memoryBytes)] as never }));
      return;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      if (!failedItems(error).conflict) return; // the host is gone, or the hold is already there
      await pause(5 + Math.random() * 20);
    }
  }
}

/**
 * Gives the VM's CPU and memory on the host back, with its hold (never below zero; a host gone is
 * fine). Without a hold — a reservation older than the ledger — `vm`'s figures are given back.
 */
export async function releaseHostCapacity(hostId: string, vm: Pick<VirtualMachine, 'id'> & Partial<Pick<VirtualMachine, 'cpuNumber' | 'cpuSpeed' | 'memoryMiB'>>): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: holdKey(hostId, vm.id), ConsistentRead: true }));
    if (!Item) {
      if (vm.cpuNumber !== undefined && vm.cpuSpeed !== undefined && vm.memoryMiB !== undefined) {
        const { cpuMhz, memoryBytes } = vmHostCapacity(vm as Pick<VirtualMachine, 'cpuNumber' | 'cpuSpeed' | 'memoryMiB'>);
        await lowerHostCounters(hostId, cpuMhz, memoryBytes);
      }
      return;
    }
    const hold = Item as CapacityHold;
    try {
      await dynamo().send(
        new TransactWriteCommand({
          TransactItems: [
            { Delete: { TableName: tableName(), Key: holdKey(hostId, vm.id), ConditionExpression: '#at = :at', ExpressionAttributeNames: { '#at': 'at' }, ExpressionAttributeValues: { ':at': hold.at } } },
            { Update: lowerHostItem(hostId, hold.cpuMhz, hold.memoryBytes) },
          ],
        }),
      );
      return;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const { conflict, conditions } = failedItems(error);
      if (conditions[0]) return; // released meanwhile (or released and taken again: that one is not ours)
      if (conditions[1]) {
        // The host is gone, or holds less than that (a recount): the hold goes, the counters clamp.
        await dynamo().send(new DeleteCommand({ TableName: tableName(), Key: holdKey(hostId, vm.id), ConditionExpression: '#at = :at', ExpressionAttributeNames: { '#at': 'at' }, ExpressionAttributeValues: { ':at': hold.at } })).catch((again) => {
          if (!isConditionFailure(again)) throw again;
        });
        await clampHostCounters(hostId, hold.cpuMhz, hold.memoryBytes);
        return;
      }
      if (conflict) await pause(5 + Math.random() * 20);
    }
  }
}

function lowerHostItem(hostId: string, cpuMhz: number, memoryBytes: number) {
  return {
    TableName: tableName(),
    Key: hostKey(hostId),
    UpdateExpression: 'SET #cpu = #cpu - :cpu, #mem = #mem - :mem',
    ConditionExpression: 'attribute_exists(pk) AND #cpu >= :cpu AND #mem >= :mem',
    ExpressionAttributeNames: { '#cpu': 'cpuallocated', '#mem': 'memoryallocated' },
    ExpressionAttributeValues: { ':cpu': cpuMhz, ':mem': memoryBytes },
  };
}

async function lowerHostCounters(hostId: string, cpuMhz: number, memoryBytes: number): Promise<void> {
  try {
    await dynamo().send(new UpdateCommand(lowerHostItem(hostId, cpuMhz, memoryBytes)));
  } catch (error) {
    if (!isConditionFailure(error)) throw error;
    await clampHostCounters(hostId, cpuMhz, memoryBytes);
  }
}

/** A host holding less than a release gives back (an earlier release, a recount): zero. A host gone is fine. */
async function clampHostCounters(hostId: string, cpuMhz: number, memoryBytes: number): Promise<void> {
  await dynamo()
    .send(
      new UpdateCommand({
        TableName: tableName(),
        Key: hostKey(hostId),
        UpdateExpression: 'SET #cpu = :zero, #mem = :zero',
        ConditionExpression: 'attribute_exists(pk) AND (#cpu < :cpu OR #mem < :mem)',
        ExpressionAttributeNames: { '#cpu': 'cpuallocated', '#mem': 'memoryallocated' },
        ExpressionAttributeValues: { ':cpu': cpuMhz, ':mem': memoryBytes, ':zero': 0 },
      }),
    )
    .catch((again) => {
      if (!isConditionFailure(again)) throw again;
    });
}

// ---- what the planner needs ----

export interface Inventory {
  hosts: CandidateHost[];
  pools: CandidatePool[];
}

/** The zone's hosts with their parents and cluster factors, and its pools with theirs. */
export async function loadInventory(zoneId: string, global?: Settings): Promise<Inventory> {
  const settings = global ?? (await loadSettings());
  const [hosts, zones, pods, clusters, pools] = await Promise.all([
    listHostRecords({ zoneId }),
    listZones(),
    listPods({ zoneId }),
    listClusters({ zoneId }),
    listStoragePools({ zoneId }),
  ]);
  const zone = zones.find((z) => z.id === zoneId);
  const podById = new Map(pods.map((p) => [p.id, p]));
  const clusterById = new Map(clusters.map((c) => [c.id, c]));
  const factors = new Map<string, { cpu: number; memory: number }>();
  await Promise.all(
    clusters.map(async (cluster: Cluster) => {
      const scoped = await settingsFor({ clusterId: cluster.id, zoneId: cluster.zoneId }, settings);
      factors.set(cluster.id, { cpu: scoped.number('cpu.overprovisioning.factor') || 1, memory: scoped.number('mem.overprovisioning.factor') || 1 });
    }),
  );
  const candidates: CandidateHost[] = [];
  for (const host of hosts) {
    const pod = podById.get(host.podId);
    const cluster = clusterById.get(host.clusterId);
    if (!zone || !pod || !cluster) continue;
    const factor = factors.get(cluster.id)!;
    candidates.push({ host, zone, pod, cluster, cpuFactor: factor.cpu, memoryFactor: factor.memory });
  }
  const candidatePools = await Promise.all(pools.map(async (pool) => ({ pool, factor: await overprovisioningFactor(pool, settings) })));
  return { hosts: candidates, pools: candidatePools };
}

/**
 * The hosts the VM must avoid (other members of its host anti-affinity groups run there) and must
 * use (other members of its host affinity groups run there), from the groups' member lists.
 */
export async function affinityConstraints(vmId: string, affinityGroupIds: readonly string[]): Promise<{ avoidHostIds: string[]; requireHostIds: string[]; antiAffinityGroupIds: string[] }> {
  const avoid = new Set<string>();
  const require = new Set<string>();
  const groups = (await Promise.all(affinityGroupIds.map((id) => getAffinityGroup(id)))).filter((g) => g !== undefined);
  const memberIds = [...new Set(groups.flatMap((g) => g.virtualMachineIds).filter((id) => id !== vmId))];
  const members = new Map<string, VirtualMachine>();
  for (let i = 0; i < memberIds.length; i += 100) {
    const batch = memberIds.slice(i, i + 100);
    const items = await getItems<(VirtualMachine | undefined)[]>(batch.map((id) => vmKey(id)));
    items.forEach((vm) => vm && members.set(vm.id, vm));
  }
  for (const group of groups) {
    for (const memberId of group.virtualMachineIds) {
      const member = members.get(memberId);
      // A member holds its host while it has one (Starting, Running, Stopping, Migrating).
      if (!member?.hostId || member.id === vmId) continue;
      (group.type === 'host anti-affinity' ? avoid : require).add(member.hostId);
    }
  }
  return { avoidHostIds: [...avoid], requireHostIds: [...require], antiAffinityGroupIds: groups.filter((g) => g.type === 'host anti-affinity').map((g) => g.id) };
}

// ---- planning and reserving ----

export interface DeploymentRequest {
  vm: Pick<VirtualMachine, 'id' | 'instanceName' | 'accountId' | 'domainTree' | 'zoneId' | 'cpuNumber' | 'cpuSpeed' | 'memoryMiB' | 'affinityGroupIds'>;
  /** The offering's host tags and root disk storage tags (comma-separated or a list). */
  hostTags?: string | readonly string[];
  storageTags?: string | readonly string[];
  /** Bytes of the new root disk to reserve on a pool (deploy); omitted: none. */
  diskBytes?: number;
  /** The pool of the existing root volume (start): the host must reach it. */
  poolId?: string;
  /** A root admin's hostid. */
  hostId?: string;
  /** Hosts not to try (besides anti-affinity). */
  avoidHostIds?: readonly string[];
  /**
   * A cluster whose hosts may take the VM even while the cluster is Disabled: a host being emptied
   * for maintenance moves its VMs within its cluster, which rolling maintenance disables (as
   * upstream's does) only to keep new deployments out.
   */
  evacuatingClusterId?: string;
  settings?: Settings;
  /** For tests: the random numbers of the random algorithms. */
  random?: () => number;
  /** The InsufficientCapacity text when no host holds (upstream's deploy text by default). */
  noHostText?: string;
  /** Writes that must hold with the host's reservation, in one transaction. */
  coupled?: readonly CoupledWrite[];
  /** The job reserving (recorded on the hold, so that the reconciler leaves it while the job runs). */
  jobId?: string;
}

/** What planAndReserve holds for the VM; give it back with releaseReservation. */
export interface Reservation {
  vmId: string;
  hostId: string;
  host: Host;
  podId: string;
  clusterId: string;
  cpuMhz: number;
  memoryBytes: number;
  /** The pool holding the new disk's bytes, when one was reserved. */
  poolId?: string;
  pool?: StoragePool;
  poolBytes: number;
}

/** Why a candidate's reservation failed (from a transaction's cancellation reasons). */
function failedItems(error: unknown): { conflict: boolean; conditions: boolean[] } {
  const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return { conflict: reasons.some((r) => r.Code === 'TransactionConflict'), conditions: reasons.map((r) => r.Code === 'ConditionalCheckFailed') };
}

/**
 * A write that must hold in the same transaction as a host's reservation (the VM's record of where
 * it goes). When its condition fails, the whole placement stops with `abort`'s error.
 */
export interface CoupledWrite {
  item: (host: Placement['host']) => Record<string, unknown>;
  abort: () => Error;
}

// ---- anti-affinity slots ----
//
// The planner's anti-affinity filter reads where the group's members are, so two concurrent
// placements could both find a host free of the group. What makes it atomic: one slot item per
// (group, host), written in the host reservation's transaction on condition that it is free or
// already the VM's. A slot is never released: it stays until another member wants the host, which
// then finds the holder no longer there (stopped, moved, destroyed, gone, out of the group) and takes
// it over, conditional on the holder it read. A holder that is Starting without a host yet is placing
// itself on that host at this moment (the slot is only written with that host's reservation): held.

const slotKey = (groupId: string, hostId: string) => ({ pk: `AFFINITYSLOT#${groupId}`, sk: `HOST#${hostId}` });

function slotItem(groupId: string, hostId: string, vmId: string, stale: string | undefined) {
  return {
    Put: {
      TableName: tableName(),
      Item: { ...slotKey(groupId, hostId), groupId, hostId, vmId },
      ConditionExpression: stale ? 'attribute_not_exists(pk) OR vmId = :me OR vmId = :stale' : 'attribute_not_exists(pk) OR vmId = :me',
      ExpressionAttributeValues: { ':me': vmId, ...(stale && { ':stale': stale }) },
    },
  };
}

/** Whether the slot's holder still occupies the host for the group. Pure. */
export function holdsSlot(holder: Pick<VirtualMachine, 'state' | 'hostId' | 'migrateToHostId' | 'affinityGroupIds'> | undefined, groupId: string, hostId: string): boolean {
  if (!holder || !(holder.affinityGroupIds ?? []).includes(groupId)) return false;
  if (holder.state === 'Starting' && !holder.hostId) return true;
  if (['Stopped', 'Destroyed', 'Expunging', 'Error'].includes(holder.state)) return false;
  return holder.hostId === hostId || holder.migrateToHostId === hostId;
}

/** The slot's holder when it no longer holds it (to take over), 'held' when it does. */
async function slotState(groupId: string, hostId: string, vmId: string): Promise<{ stale?: string } | 'held'> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: slotKey(groupId, hostId), ConsistentRead: true }));
  if (!Item) return {};
  const holderId = String(Item.vmId);
  if (holderId === vmId) return {};
  const { Item: holder } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: vmKey(holderId), ConsistentRead: true }));
  return holdsSlot(holder as VirtualMachine | undefined, groupId, hostId) ? 'held' : { stale: holderId };
}

/** Reserves the host (and a pool when the placement has some); which pool held, or false. */
async function reservePlacement(
  placement: Placement,
  cpuMhz: number,
  memoryBytes: number,
  diskBytes: number,
  coupled: readonly CoupledWrite[] = [],
  holder: Holder,
  antiAffinityGroupIds: readonly string[],
): Promise<{ pool?: CandidatePool } | false> {
  const caps = { cpuMhz: placement.cpuCapacity, memoryBytes: placement.memoryCapacity };
  const hostId = placement.host.id;
  const stale = new Map<string, string>();
  const pools: (CandidatePool | undefined)[] = diskBytes > 0 ? placement.pools : [undefined];
  for (const candidate of pools) {
    for (let attempt = 0; attempt < 20; attempt++) {
      const items = [
        { Update: reserveHostItem(hostId, cpuMhz, memoryBytes, caps) },
        holdPut(hostId, holder, cpuMhz, memoryBytes),
        ...(candidate ? [reservePoolItem(candidate.pool as StoragePool, diskBytes, candidate.factor)] : []),
        ...coupled.map((c) => c.item(placement.host)),
        ...antiAffinityGroupIds.map((g) => slotItem(g, hostId, holder.vmId, stale.get(g))),
      ];
      try {
        await dynamo().send(new TransactWriteCommand({ TransactItems: items as never }));
        return candidate ? { pool: candidate } : {};
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        const { conflict, conditions } = failedItems(error);
        if (conditions[1]) {
          // The VM's hold from an attempt whose taker died (it may be what fills the host): given back, then taken again.
          await releaseHostCapacity(hostId, { id: holder.vmId });
          continue;
        }
        if (conditions[0]) return false; // the host no longer holds it
        const firstCoupled = candidate ? 3 : 2;
        const broken = coupled.findIndex((_, i) => conditions[firstCoupled + i]);
        if (broken >= 0) throw coupled[broken]!.abort();
        const firstSlot = firstCoupled + coupled.length;
        const taken = antiAffinityGroupIds.filter((_, i) => conditions[firstSlot + i]);
        if (taken.length > 0) {
          // Another member holds the host for a group, unless it has left it: then take it over.
          for (const groupId of taken) {
            const state = await slotState(groupId, hostId, holder.vmId);
            if (state === 'held') return false;
            if (state.stale) stale.set(groupId, state.stale);
            else stale.delete(groupId);
          }
          continue;
        }
        if (candidate && conditions[2]) break; // this pool no longer holds it: the next pool
        if (conflict || conditions.length === 0) {
          await pause(5 + Math.random() * 20);
          continue;
        }
        break;
      }
    }
  }
  return false;
}

/** The planner's answer for the request, from the zone's inventory now. */
export async function planDeployment(request: DeploymentRequest): Promise<PlanResult & { inventory: Inventory; antiAffinityGroupIds: string[] }> {
  const settings = request.settings ?? (await loadSettings());
  const algorithm = allocationAlgorithm(settings.raw('vm.allocation.algorithm'));
  const { vm } = request;
  const [inventory, affinity, accountVms] = await Promise.all([
    loadInventory(vm.zoneId, settings),
    affinityConstraints(vm.id, vm.affinityGroupIds ?? []),
    algorithm === 'userdispersing' || algorithm.startsWith('userconcentratedpod')
      ? listVmsOfAccount({ id: vm.accountId, domainTree: vm.domainTree }).then((vms) => vms.filter((other) => other.id !== vm.id))
      : Promise.resolve([]),
  ]);
  const antiAffinityGroupIds = affinity.antiAffinityGroupIds;
  const hosts = request.evacuatingClusterId
    ? inventory.hosts.map((candidate) => (candidate.host.clusterId === request.evacuatingClusterId ? { ...candidate, cluster: { allocationstate: 'Enabled' as const } } : candidate))
    : inventory.hosts;
  const plan = planPlacement(hosts, inventory.pools, {
    cpuNumber: vm.cpuNumber,
    cpuSpeed: vm.cpuSpeed,
    memoryBytes: vm.memoryMiB * 1024 * 1024,
    hostTags: parseTags(request.hostTags as string | string[] | undefined),
    storageTags: parseTags(request.storageTags as string | string[] | undefined),
    diskBytes: request.diskBytes ?? 0,
    poolId: request.poolId,
    hostId: request.hostId,
    requireHostIds: affinity.requireHostIds,
    avoidHostIds: [...(request.avoidHostIds ?? []), ...affinity.avoidHostIds],
    accountVms: accountVms.map((other) => ({ hostId: other.hostId, podId: other.podId })),
    algorithm,
    random: request.random,
  });
  return { ...plan, inventory, antiAffinityGroupIds };
}

/**
 * Plans the VM's placement and reserves the first candidate that still holds: host CPU and memory,
 * and the new disk's bytes on a pool. Throws InsufficientCapacity (533) with upstream's text when
 * no host can take the VM.
 */
export async function planAndReserve(request: DeploymentRequest): Promise<Reservation> {
  const { vm } = request;
  const cpuMhz = vm.cpuNumber * vm.cpuSpeed;
  const memoryBytes = vm.memoryMiB * 1024 * 1024;
  const diskBytes = request.diskBytes ?? 0;
  const { candidates, excluded, antiAffinityGroupIds } = await planDeployment(request);
  if (candidates.length === 0) log.info('no host for the VM', { vm: vm.instanceName, excluded });
  for (const placement of candidates) {
    const held = await reservePlacement(placement, cpuMhz, memoryBytes, diskBytes, request.coupled, { vmId: vm.id, ...(request.jobId && { jobId: request.jobId }) }, antiAffinityGroupIds);
    if (!held) continue;
    const host = { ...(placement.host as Host), cpuallocated: (placement.host.cpuallocated ?? 0) + cpuMhz, memoryallocated: (placement.host.memoryallocated ?? 0) + memoryBytes };
    return {
      vmId: vm.id,
      hostId: host.id,
      host,
      podId: host.podId,
      clusterId: host.clusterId,
      cpuMhz,
      memoryBytes,
      ...(held.pool && { poolId: held.pool.pool.id, pool: held.pool.pool as StoragePool }),
      poolBytes: held.pool ? diskBytes : 0,
    };
  }
  throw new InsufficientCapacity(request.noHostText ?? noDeploymentText(vm.instanceName));
}

/** Gives back what planAndReserve reserved. */
export async function releaseReservation(reservation: Pick<Reservation, 'vmId' | 'hostId' | 'poolId' | 'poolBytes'>): Promise<void> {
  await releaseHostCapacity(reservation.hostId, { id: reservation.vmId });
  if (reservation.poolId && reservation.poolBytes > 0) {
    await dynamo()
      .send(new UpdateCommand(releasePoolItem(reservation.poolId, reservation.poolBytes).Update))
      .catch((error) => {
        if (!isConditionFailure(error)) throw error;
      });
  }
}

/** The host capacity a VM holds while it has a host: its CPU MHz and memory bytes. */
export const vmHostCapacity = (vm: Pick<VirtualMachine, 'cpuNumber' | 'cpuSpeed' | 'memoryMiB'>) => ({ cpuMhz: vm.cpuNumber * vm.cpuSpeed, memoryBytes: vm.memoryMiB * 1024 * 1024 });

// ---- resource limits of a VM ----

/** What a VM with its root disk counts against limits: user_vm, cpu, memory, volume, primary_storage. */
export const vmLimitAmounts = (vm: Pick<VirtualMachine, 'cpuNumber' | 'memoryMiB'>, rootDiskBytes: number): ResourceAmounts => ({
  ...vmResources(vm),
  ...volumeResources({ sizeBytes: rootDiskBytes }),
});

/** Reserves the VM's resources against the account's and its domains' limits (532 when exceeded). */
export const reserveVmLimits = (account: string | Account, vm: Pick<VirtualMachine, 'cpuNumber' | 'memoryMiB'>, rootDiskBytes: number, settings?: Settings) =>
  reserveResources(account, vmLimitAmounts(vm, rootDiskBytes), { settings });

/** Gives the VM's resources back. */
export const releaseVmLimits = (account: string | Account, vm: Pick<VirtualMachine, 'cpuNumber' | 'memoryMiB'>, rootDiskBytes: number) =>
  releaseResources(account, vmLimitAmounts(vm, rootDiskBytes));


