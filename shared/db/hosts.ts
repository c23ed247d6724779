// Hosts: the KVM machines of a cluster. A host carries CloudStack's two state machines: its
// connection Status (is the agent reaching it?) and its ResourceState (may anything be placed on
// it, is it in maintenance?). Both change only through the transition functions below, which
// follow upstream's Status.java and ResourceState.java and refuse anything else.
import { TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { dynamo } from '../aws.ts';
import { clusterKey, type Cluster, type Pod, type Zone } from './infrastructure.ts';
import { getItem, isConditionFailure, queryIndex, tableName } from './items.ts';
import { cloudstackDate } from './jobs.ts';
import type { OobmConfig, OobmPowerState } from '../oobm.ts';
import type { HaFence } from '../vm-ha.ts';
import type { HeartbeatReadings } from '../storage-heartbeat.ts';
import type { HostHaConfig } from '../host-ha-config.ts';

// ---- Status: the connection state machine (upstream's Status, without Rebalancing, which needs
// several management servers) ----

export const HOST_STATUSES = ['Creating', 'Connecting', 'Up', 'Down', 'Disconnected', 'Alert', 'Removed', 'Error'] as const;
export type HostStatus = (typeof HOST_STATUSES)[number];

export const STATUS_EVENTS = [
  'AgentConnected',
  'PingTimeout',
  'ShutdownRequested',
  'AgentDisconnected',
  'HostDown',
  'Ping',
  'ManagementServerDown',
  'WaitedTooLong',
  'Remove',
  'Ready',
  'Error',
  // Mold's own: the agent's reports on the host stopped. Upstream learns of a lost agent from its
  // dropped connection (AgentDisconnected, then investigators); Mold's agent holds no connection, so
  // the sweeper notices silence and the host goes Disconnected until ping.timeout decides.
  'PingMissed',
] as const;
export type StatusEvent = (typeof STATUS_EVENTS)[number];

type Table<S extends string, E extends string> = Partial<Record<S | 'new', Partial<Record<E, S>>>>;

const STATUS_TRANSITIONS: Table<HostStatus, StatusEvent> = {
  new: { AgentConnected: 'Connecting' },
  Creating: { AgentConnected: 'Connecting', Error: 'Error' },
  Connecting: {
    AgentConnected: 'Connecting',
    Ready: 'Up',
    PingTimeout: 'Alert',
    ShutdownRequested: 'Disconnected',
    HostDown: 'Down',
    Ping: 'Connecting',
    ManagementServerDown: 'Disconnected',
    AgentDisconnected: 'Alert',
    PingMissed: 'Disconnected',
  },
  Up: {
    PingTimeout: 'Alert',
    AgentDisconnected: 'Alert',
    ShutdownRequested: 'Disconnected',
    HostDown: 'Down',
    Ping: 'Up',
    AgentConnected: 'Connecting',
    ManagementServerDown: 'Disconnected',
    Remove: 'Removed',
    PingMissed: 'Disconnected',
  },
  Disconnected: {
    ShutdownRequested: 'Disconnected',
    PingTimeout: 'Alert',
    AgentConnected: 'Connecting',
    Ping: 'Up',
    HostDown: 'Down',
    ManagementServerDown: 'Disconnected',
    WaitedTooLong: 'Alert',
    Remove: 'Removed',
    AgentDisconnected: 'Disconnected',
  },
  Down: {
    AgentConnected: 'Connecting',
    Remove: 'Removed',
    ManagementServerDown: 'Down',
    AgentDisconnected: 'Down',
    PingTimeout: 'Down',
    HostDown: 'Down',
  },
  Alert: {
    AgentConnected: 'Connecting',
    Ping: 'Up',
    Remove: 'Removed',
    ManagementServerDown: 'Alert',
    AgentDisconnected: 'Alert',
    ShutdownRequested: 'Disconnected',
    HostDown: 'Down',
  },
  Error: { AgentConnected: 'Connecting' },
};

// ---- ResourceState: the allocation and maintenance state machine (upstream's ResourceState) ----

export const RESOURCE_STATES = [
  'Creating',
  'Enabled',
  'Disabled',
  'ErrorInPrepareForMaintenance',
  'PrepareForMaintenance',
  'ErrorInMaintenance',
  'Maintenance',
  'Error',
  'Degraded',
] as const;
export type ResourceState = (typeof RESOURCE_STATES)[number];

export const RESOURCE_EVENTS = [
  'InternalCreated',
  'Enable',
  'Disable',
  'AdminAskMaintenance',
  'AdminCancelMaintenance',
  'InternalEnterMaintenance',
  'UnableToMigrate',
  'UnableToMaintain',
  'ErrorsCorrected',
  'Error',
  'DeleteHost',
  'DeclareHostDegraded',
  'EnableDegradedHost',
] as const;
export type ResourceEvent = (typeof RESOURCE_EVENTS)[number];

const RESOURCE_TRANSITIONS: Table<ResourceState, ResourceEvent> = {
  new: { InternalCreated: 'Enabled' },
  Creating: { InternalCreated: 'Enabled', Error: 'Error' },
  Enabled: {
    Enable: 'Enabled',
    InternalCreated: 'Enabled',
    Disable: 'Disabled',
    AdminAskMaintenance: 'PrepareForMaintenance',
    DeclareHostDegraded: 'Degraded',
    InternalEnterMaintenance: 'Maintenance',
  },
  Disabled: {
    Enable: 'Enabled',
    Disable: 'Disabled',
    InternalCreated: 'Disabled',
    DeclareHostDegraded: 'Degraded',
    DeleteHost: 'Disabled',
  },
  PrepareForMaintenance: {
    InternalEnterMaintenance: 'Maintenance',
    AdminCancelMaintenance: 'Enabled',
    UnableToMigrate: 'ErrorInPrepareForMaintenance',
    UnableToMaintain: 'ErrorInMaintenance',
    InternalCreated: 'PrepareForMaintenance',
  },
  Maintenance: {
    AdminCancelMaintenance: 'Enabled',
    InternalCreated: 'Maintenance',
    DeleteHost: 'Disabled',
    DeclareHostDegraded: 'Degraded',
  },
  ErrorInPrepareForMaintenance: {
    InternalCreated: 'ErrorInPrepareForMaintenance',
    Disable: 'Disabled',
    DeleteHost: 'Disabled',
    InternalEnterMaintenance: 'Maintenance',
    AdminCancelMaintenance: 'Enabled',
    UnableToMigrate: 'ErrorInPrepareForMaintenance',
    UnableToMaintain: 'ErrorInMaintenance',
    ErrorsCorrected: 'PrepareForMaintenance',
  },
  ErrorInMaintenance: {
    InternalCreated: 'ErrorInMaintenance',
    AdminAskMaintenance: 'PrepareForMaintenance',
    Disable: 'Disabled',
    DeleteHost: 'Disabled',
    AdminCancelMaintenance: 'Enabled',
  },
  Error: { InternalCreated: 'Error' },
  Degraded: { DeleteHost: 'Disabled', EnableDegradedHost: 'Enabled', AdminAskMaintenance: 'Maintenance' },
};

/** A transition the state machine does not have. */
export class IllegalTransition extends Error {
  readonly machine: 'Status' | 'ResourceState';
  readonly from: string | undefined;
  readonly event: string;

  constructor(machine: 'Status' | 'ResourceState', from: string | undefined, event: string) {
    // Upstream's resourceStateTransitTo words it so (NoTransitionException).
    super(
      machine === 'ResourceState'
        ? `No next resource state found for current state =${from} event =${event}`
        : `No next status found for current status =${from} event =${event}`,
    );
    this.name = 'IllegalTransition';
    this.machine = machine;
    this.from = from;
    this.event = event;
  }
}

/** The status after `event`; `undefined` stands for a host not yet known (upstream's null state). */
export function nextStatus(current: HostStatus | undefined, event: StatusEvent): HostStatus {
  const next = STATUS_TRANSITIONS[current ?? 'new']?.[event];
  if (!next) throw new IllegalTransition('Status', current, event);
  return next;
}

export function nextResourceState(current: ResourceState | undefined, event: ResourceEvent): ResourceState {
  const next = RESOURCE_TRANSITIONS[current ?? 'new']?.[event];
  if (!next) throw new IllegalTransition('ResourceState', current, event);
  return next;
}

/** The events that may happen in a state (upstream's getPossibleEvents). */
export const possibleStatusEvents = (current: HostStatus | undefined) => Object.keys(STATUS_TRANSITIONS[current ?? 'new'] ?? {}) as StatusEvent[];
export const possibleResourceEvents = (current: ResourceState | undefined) =>
  Object.keys(RESOURCE_TRANSITIONS[current ?? 'new'] ?? {}) as ResourceEvent[];

/** Upstream's ResourceState.isMaintenanceState. */
export const isMaintenanceState = (state: ResourceState) =>
  state === 'Maintenance' || state === 'ErrorInMaintenance' || state === 'PrepareForMaintenance' || state === 'ErrorInPrepareForMaintenance';

/** Upstream's ResourceState.canAttemptMaintenance. */
export const canAttemptMaintenance = (state: ResourceState) =>
  state !== 'Maintenance' && state !== 'PrepareForMaintenance' && state !== 'ErrorInPrepareForMaintenance';

/**
 * Whether new VMs may go to this host: it is Up and Enabled, and its zone, pod and cluster are all
 * Enabled (nothing is placed in a disabled zone, pod or cluster, nor on a host in maintenance).
 */
export function acceptsPlacement(host: Pick<Host, 'status' | 'resourcestate'>, parents: { zone: Pick<Zone, 'allocationstate'>; pod: Pick<Pod, 'allocationstate'>; cluster: Pick<Cluster, 'allocationstate'> }): boolean {
  return (
    host.status === 'Up' &&
    host.resourcestate === 'Enabled' &&
    parents.zone.allocationstate === 'Enabled' &&
    parents.pod.allocationstate === 'Enabled' &&
    parents.cluster.allocationstate === 'Enabled'
  );
}

// ---- the host record ----

export interface Host {
  id: string;
  name: string;
  zoneId: string;
  podId: string;
  clusterId: string;
  /** Upstream's Host.Type; Mold's hosts are hypervisor hosts. */
  type: 'Routing';
  hypervisor: 'KVM';
  status: HostStatus;
  resourcestate: ResourceState;
  ipaddress: string;
  /** Physical CPU: cores, MHz per core, sockets. */
  cpunumber: number;
  cpuspeed: number;
  cpusockets: number;
  /** Bytes of RAM. */
  memorytotal: number;
  /** What VMs placed here hold: MHz and bytes. */
  cpuallocated: number;
  memoryallocated: number;
  /** As last reported: percent of CPU, bytes of memory. */
  cpuused: number;
  memoryused: number;
  /** CPU load average as last reported. */
  cpuloadaverage?: number;
  capabilities: string;
  hosttags: string[];
  version?: string;
  hypervisorversion?: string;
  arch: string;
  annotation?: string;
  lastannotated?: string;
  /** Username of whoever wrote the annotation. */
  annotatedby?: string;
  /** When the agent last reported on the host (ISO 8601). */
  lastpinged?: string;
  disconnected?: string;
  created: string;
  /** The agent that drives the host: it holds the host's lease (shared/agent-leases.ts). */
  agentId?: string;
  /** The lease's epoch: raised by one each time the host passes to another agent; every command carries it. */
  leaseEpoch?: number;
  /** libvirt's host UUID. */
  hostUuid?: string;
  /** SSH login and port the agent uses. */
  username?: string;
  port?: number;
  libvirtversion?: string;
  qemuversion?: string;
  /** kvm with hardware virtualisation, qemu under software emulation. */
  domaintype?: 'kvm' | 'qemu';
  /** The host key's SHA-256 fingerprint, as the agent pinned it at addHost. */
  hostkeyfingerprint?: string;
  /** The host's BMC (shared/oobm.ts), its password sealed to the agent. */
  oobm?: OobmConfig;
  /** The BMC's power state as last read (upstream's OutOfBandManagement.PowerState). */
  oobmpowerstate?: OobmPowerState;
  /** VM HA's fence of the host while it is Down (shared/vm-ha.ts). */
  hafence?: HaFence;
  /** The storage heartbeats this host last read in its pools (shared/storage-heartbeat.ts). */
  heartbeats?: HeartbeatReadings;
  /** Host HA's configuration and state (shared/host-ha-config.ts). */
  ha?: HostHaConfig;
  [field: string]: unknown;
}

export const hostKey = (id: string) => ({ pk: `HOST#${id}`, sk: 'HOST' });

export const getHost = (id: string) => getItem<Host>(hostKey(id).pk, 'HOST');

const hostSortKey = (host: Pick<Host, 'zoneId' | 'podId' | 'clusterId' | 'name' | 'id'>) =>
  `${host.zoneId}/${host.podId}/${host.clusterId}/${host.name.toLowerCase()}#${host.id}`;

/** Hosts by zone, pod and cluster (each narrowing needs the ones before it), by name. */
export function listHostRecords(where: { zoneId?: string; podId?: string; clusterId?: string } = {}): Promise<Host[]> {
  let prefix: string | undefined;
  if (where.zoneId) {
    prefix = `${where.zoneId}/`;
    if (where.podId) {
      prefix += `${where.podId}/`;
      if (where.clusterId) prefix += `${where.clusterId}/`;
    }
  }
  return queryIndex<Host>({ index: 'gsi1', partition: 'HOSTS', prefix });
}

export type NewHost = Partial<Omit<Host, 'zoneId' | 'podId' | 'clusterId'>> & { name: string; ipaddress: string };

/**
 * A host record in a cluster, as addHost will write it once the agent has reached the host (tests
 * seed hosts with it). The cluster's host count goes up in the same transaction, so a cluster is
 * never deleted under a new host.
 */
export async function createHostRecord(cluster: Cluster, fields: NewHost): Promise<Host> {
  const host: Host = {
    id: randomUUID(),
    type: 'Routing',
    hypervisor: 'KVM',
    status: 'Up',
    resourcestate: 'Enabled',
    cpunumber: 4,
    cpuspeed: 2000,
    cpusockets: 1,
    memorytotal: 8 * 1024 ** 3,
    cpuallocated: 0,
    memoryallocated: 0,
    cpuused: 0,
    memoryused: 0,
    capabilities: 'hvm,snapshot',
    hosttags: [],
    arch: 'x86_64',
    created: cloudstackDate(),
    ...fields,
    zoneId: cluster.zoneId,
    podId: cluster.podId,
    clusterId: cluster.id,
  };
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: tableName(),
              Item: { ...hostKey(host.id), gsi1pk: 'HOSTS', gsi1sk: hostSortKey(host), ...host },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
          {
            Update: {
              TableName: tableName(),
              Key: clusterKey(cluster.id),
              UpdateExpression: 'ADD hostCount :one',
              ConditionExpression: 'attribute_exists(pk)',
              ExpressionAttributeValues: { ':one': 1 },
            },
          },
        ],
      }),
    );
  } catch (error) {
    if (isConditionFailure(error)) throw new Error(`cluster ${cluster.id} no longer exists`);
    throw error;
  }
  return host;
}

/** Removes a host record and gives its place in the cluster back. */
export async function deleteHostRecord(host: Host): Promise<void> {
  await dynamo().send(
    new TransactWriteCommand({
      TransactItems: [
        { Delete: { TableName: tableName(), Key: hostKey(host.id), ConditionExpression: 'attribute_exists(pk)' } },
        {
          Update: {
            TableName: tableName(),
            Key: clusterKey(host.clusterId),
            UpdateExpression: 'ADD hostCount :minus',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeValues: { ':minus': -1 },
          },
        },
      ],
    }),
  );
}

export type HostChanges = Partial<Pick<Host, 'name' | 'hosttags' | 'annotation' | 'lastannotated' | 'annotatedby' | 'cpuallocated' | 'memoryallocated' | 'cpuused' | 'memoryused' | 'cpuloadaverage' | 'lastpinged' | 'disconnected' | 'version' | 'hypervisorversion' | 'capabilities' | 'status' | 'resourcestate'
  | 'cpunumber' | 'cpuspeed' | 'cpusockets' | 'memorytotal' | 'arch' | 'hostUuid' | 'username' | 'port' | 'libvirtversion' | 'qemuversion' | 'domaintype' | 'hostkeyfingerprint' | 'oobm' | 'oobmpowerstate' | 'hafence' | 'heartbeats' | 'ha'>>
  // The agent's last report on the host (shared/host-health.ts LastReport), for the sweeper.
  & { lastreport?: { reachable: boolean; libvirtd?: boolean; error?: string; at: string } };

/**
 * Sets fields of a host; `expect` makes the write conditional on current values (so a state
 * transition computed from a read never overwrites a concurrent one). Resolves undefined when the
 * host is gone or the expectation no longer holds.
 */
export async function updateHostRecord(
  id: string,
  changes: HostChanges,
  expect: Partial<Pick<Host, 'status' | 'resourcestate' | 'lastpinged' | 'oobmpowerstate' | 'hafence' | 'ha'>> = {},
): Promise<Host | undefined> {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets: string[] = [];
  const removes: string[] = [];
  let index = 0;
  const current = await getHost(id);
  if (!current) return undefined;
  const updated = { ...current, ...changes } as Host;
  const fields: Record<string, unknown> = { ...changes };
  if (changes.name !== undefined) fields.gsi1sk = hostSortKey(updated);
  for (const [field, value] of Object.entries(fields)) {
    const name = `#f${index}`;
    names[name] = field;
    if (value === undefined) removes.push(name);
    else {
      values[`:v${index}`] = value;
      sets.push(`${name} = :v${index}`);
    }
    index++;
  }
  const conditions = ['attribute_exists(pk)'];
  for (const [field, value] of Object.entries(expect)) {
    names[`#e${index}`] = field;
    // An expected field given as undefined must still be absent.
    if (value === undefined) conditions.push(`attribute_not_exists(#e${index})`);
    else {
      values[`:e${index}`] = value;
      conditions.push(`#e${index} = :e${index}`);
    }
    index++;
  }
  if (sets.length === 0 && removes.length === 0) return current;
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: hostKey(id),
        UpdateExpression: [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].join(' ').trim(),
        ConditionExpression: conditions.join(' AND '),
        ExpressionAttributeNames: names,
        ...(Object.keys(values).length > 0 && { ExpressionAttributeValues: values }),
        ReturnValues: 'ALL_NEW',
      }),
    );
    const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, ...host } = Attributes as Record<string, unknown>;
    return host as Host;
  } catch (error) {
    if (isConditionFailure(error)) return undefined;
    throw error;
  }
}

/**
 * Moves a host's resource state by `event`, atomically: the write holds only if nobody changed
 * the state since it was read. Throws IllegalTransition for a transition upstream does not have.
 */
export async function transitionResourceState(id: string, event: ResourceEvent, changes: HostChanges = {}): Promise<Host | undefined> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const host = await getHost(id);
    if (!host) return undefined;
    const next = nextResourceState(host.resourcestate, event);
    const updated = await updateHostRecord(id, { ...changes, resourcestate: next }, { resourcestate: host.resourcestate });
    if (updated) return updated;
  }
  throw new Error(`host ${id}: resource state kept changing under ${event}`);
}

/** As transitionResourceState, for the connection status. */
export async function transitionStatus(id: string, event: StatusEvent, changes: HostChanges = {}): Promise<Host | undefined> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const host = await getHost(id);
    if (!host) return undefined;
    const next = nextStatus(host.status, event);
    const updated = await updateHostRecord(id, { ...changes, status: next }, { status: host.status });
    if (updated) return updated;
  }
  throw new Error(`host ${id}: status kept changing under ${event}`);
}

// ---- maintenance: one host per cluster prepares at a time ----

/** The resource states in which a host holds its cluster's maintenance (upstream counts both). */
export const PREPARING_STATES: readonly ResourceState[] = ['PrepareForMaintenance', 'ErrorInPrepareForMaintenance'];

export type MaintenanceClaim = { claimed: Host } | { busy: Host } | { gone: true };

/**
 * AdminAskMaintenance, atomically with upstream's rule that one host per cluster prepares at a time.
 * The cluster names the host that last began preparing (`maintenanceHostId`); the claim is one
 * transaction of the host's transition and the cluster's name, on condition that the name is what
 * was read. It is never released: a holder that no longer prepares (entered Maintenance, cancelled,
 * deleted) is taken over conditional on it, as anti-affinity slots are, so a lost release can never
 * block a cluster. Throws IllegalTransition from a state without AdminAskMaintenance.
 */
export async function claimMaintenance(id: string): Promise<MaintenanceClaim> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const host = await getHost(id);
    if (!host) return { gone: true };
    const next = nextResourceState(host.resourcestate, 'AdminAskMaintenance');
    const cluster = await getItem<{ maintenanceHostId?: string }>(clusterKey(host.clusterId).pk, 'CLUSTER');
    const holderId = cluster?.maintenanceHostId;
    if (holderId && holderId !== host.id) {
      const holder = await getHost(holderId);
      if (holder && PREPARING_STATES.includes(holder.resourcestate)) return { busy: holder };
    }
    try {
      await dynamo().send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: tableName(),
                Key: clusterKey(host.clusterId),
                UpdateExpression: 'SET maintenanceHostId = :me',
                ConditionExpression: holderId ? 'attribute_exists(pk) AND maintenanceHostId = :seen' : 'attribute_exists(pk) AND attribute_not_exists(maintenanceHostId)',
                ExpressionAttributeValues: { ':me': host.id, ...(holderId && { ':seen': holderId }) },
              },
            },
            {
              Update: {
                TableName: tableName(),
                Key: hostKey(host.id),
                UpdateExpression: 'SET resourcestate = :next',
                ConditionExpression: 'resourcestate = :current',
                ExpressionAttributeValues: { ':next': next, ':current': host.resourcestate },
              },
            },
          ],
        }),
      );
      return { claimed: { ...host, resourcestate: next } };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }
  throw new Error(`host ${id}: its cluster's maintenance kept changing`);
}
