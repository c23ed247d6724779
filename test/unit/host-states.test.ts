// The host's two state machines alone: every legal transition of upstream's Status.java and
// ResourceState.java (without Rebalancing), Mold's own PingMissed, and a refusal for everything else.
import { describe, expect, it } from 'vitest';
import {
  acceptsPlacement,
  canAttemptMaintenance,
  HOST_STATUSES,
  IllegalTransition,
  isMaintenanceState,
  nextResourceState,
  nextStatus,
  possibleResourceEvents,
  possibleStatusEvents,
  RESOURCE_EVENTS,
  RESOURCE_STATES,
  STATUS_EVENTS,
  type HostStatus,
  type ResourceEvent,
  type ResourceState,
  type StatusEvent,
} from '../../shared/db/hosts.ts';

// Upstream's tables, transcribed independently of the implementation: [from, event, to].
const STATUS: [HostStatus | undefined, StatusEvent, HostStatus][] = [
  [undefined, 'AgentConnected', 'Connecting'],
  ['Creating', 'AgentConnected', 'Connecting'],
  ['Creating', 'Error', 'Error'],
  ['Connecting', 'AgentConnected', 'Connecting'],
  ['Connecting', 'Ready', 'Up'],
  ['Connecting', 'PingTimeout', 'Alert'],
  ['Connecting', 'ShutdownRequested', 'Disconnected'],
  ['Connecting', 'HostDown', 'Down'],
  ['Connecting', 'Ping', 'Connecting'],
  ['Connecting', 'ManagementServerDown', 'Disconnected'],
  ['Connecting', 'AgentDisconnected', 'Alert'],
  ['Up', 'PingTimeout', 'Alert'],
  ['Up', 'AgentDisconnected', 'Alert'],
  ['Up', 'ShutdownRequested', 'Disconnected'],
  ['Up', 'HostDown', 'Down'],
  ['Up', 'Ping', 'Up'],
  ['Up', 'AgentConnected', 'Connecting'],
  ['Up', 'ManagementServerDown', 'Disconnected'],
  ['Up', 'Remove', 'Removed'],
  ['Disconnected', 'ShutdownRequested', 'Disconnected'],
  ['Disconnected', 'PingTimeout', 'Alert'],
  ['Disconnected', 'AgentConnected', 'Connecting'],
  ['Disconnected', 'Ping', 'Up'],
  ['Disconnected', 'HostDown', 'Down'],
  ['Disconnected', 'ManagementServerDown', 'Disconnected'],
  ['Disconnected', 'WaitedTooLong', 'Alert'],
  ['Disconnected', 'Remove', 'Removed'],
  ['Disconnected', 'AgentDisconnected', 'Disconnected'],
  ['Down', 'AgentConnected', 'Connecting'],
  ['Down', 'Remove', 'Removed'],
  ['Down', 'ManagementServerDown', 'Down'],
  ['Down', 'AgentDisconnected', 'Down'],
  ['Down', 'PingTimeout', 'Down'],
  ['Down', 'HostDown', 'Down'],
  ['Alert', 'AgentConnected', 'Connecting'],
  ['Alert', 'Ping', 'Up'],
  ['Alert', 'Remove', 'Removed'],
  ['Alert', 'ManagementServerDown', 'Alert'],
  ['Alert', 'AgentDisconnected', 'Alert'],
  ['Alert', 'ShutdownRequested', 'Disconnected'],
  ['Alert', 'HostDown', 'Down'],
  ['Error', 'AgentConnected', 'Connecting'],
  // Mold's own: the agent's reports stopped (upstream's dropped connection has no counterpart here).
  ['Connecting', 'PingMissed', 'Disconnected'],
  ['Up', 'PingMissed', 'Disconnected'],
];

const RESOURCE: [ResourceState | undefined, ResourceEvent, ResourceState][] = [
  [undefined, 'InternalCreated', 'Enabled'],
  ['Creating', 'InternalCreated', 'Enabled'],
  ['Creating', 'Error', 'Error'],
  ['Enabled', 'Enable', 'Enabled'],
  ['Enabled', 'InternalCreated', 'Enabled'],
  ['Enabled', 'Disable', 'Disabled'],
  ['Enabled', 'AdminAskMaintenance', 'PrepareForMaintenance'],
  ['Enabled', 'DeclareHostDegraded', 'Degraded'],
  ['Enabled', 'InternalEnterMaintenance', 'Maintenance'],
  ['Disabled', 'Enable', 'Enabled'],
  ['Disabled', 'Disable', 'Disabled'],
  ['Disabled', 'InternalCreated', 'Disabled'],
  ['Disabled', 'DeclareHostDegraded', 'Degraded'],
  ['Disabled', 'DeleteHost', 'Disabled'],
  ['PrepareForMaintenance', 'InternalEnterMaintenance', 'Maintenance'],
  ['PrepareForMaintenance', 'AdminCancelMaintenance', 'Enabled'],
  ['PrepareForMaintenance', 'UnableToMigrate', 'ErrorInPrepareForMaintenance'],
  ['PrepareForMaintenance', 'UnableToMaintain', 'ErrorInMaintenance'],
  ['PrepareForMaintenance', 'InternalCreated', 'PrepareForMaintenance'],
  ['Maintenance', 'AdminCancelMaintenance', 'Enabled'],
  ['Maintenance', 'InternalCreated', 'Maintenance'],
  ['Maintenance', 'DeleteHost', 'Disabled'],
  ['Maintenance', 'DeclareHostDegraded', 'Degraded'],
  ['ErrorInPrepareForMaintenance', 'InternalCreated', 'ErrorInPrepareForMaintenance'],
  ['ErrorInPrepareForMaintenance', 'Disable', 'Disabled'],
  ['ErrorInPrepareForMaintenance', 'DeleteHost', 'Disabled'],
  ['ErrorInPrepareForMaintenance', 'InternalEnterMaintenance', 'Maintenance'],
  ['ErrorInPrepareForMaintenance', 'AdminCancelMaintenance', 'Enabled'],
  ['ErrorInPrepareForMaintenance', 'UnableToMigrate', 'ErrorInPrepareForMaintenance'],
  ['ErrorInPrepareForMaintenance', 'UnableToMaintain', 'ErrorInMaintenance'],
  ['ErrorInPrepareForMaintenance', 'ErrorsCorrected', 'PrepareForMaintenance'],
  ['ErrorInMaintenance', 'InternalCreated', 'ErrorInMaintenance'],
  ['ErrorInMaintenance', 'AdminAskMaintenance', 'PrepareForMaintenance'],
  ['ErrorInMaintenance', 'Disable', 'Disabled'],
  ['ErrorInMaintenance', 'DeleteHost', 'Disabled'],
  ['ErrorInMaintenance', 'AdminCancelMaintenance', 'Enabled'],
  ['Error', 'InternalCreated', 'Error'],
  ['Degraded', 'DeleteHost', 'Disabled'],
  ['Degraded', 'EnableDegradedHost', 'Enabled'],
  ['Degraded', 'AdminAskMaintenance', 'Maintenance'],
];

describe('host Status', () => {
  it.each(STATUS)('%s --%s--> %s', (from, event, to) => {
    expect(nextStatus(from, event)).toBe(to);
  });

  it('refuses every other (status, event) pair, naming both', () => {
    const legal = new Set(STATUS.map(([from, event]) => `${from}|${event}`));
    let refused = 0;
    for (const from of [undefined, ...HOST_STATUSES]) {
      for (const event of STATUS_EVENTS) {
        if (legal.has(`${from}|${event}`)) continue;
        expect(() => nextStatus(from, event)).toThrow(IllegalTransition);
        refused++;
      }
    }
    expect(refused).toBe((HOST_STATUSES.length + 1) * STATUS_EVENTS.length - STATUS.length);
    expect(() => nextStatus('Removed', 'AgentConnected')).toThrow('No next status found for current status =Removed event =AgentConnected');
  });

  it('walks a host through connect, loss of contact and recovery', () => {
    let status = nextStatus(undefined, 'AgentConnected');
    status = nextStatus(status, 'Ready');
    expect(status).toBe('Up');
    status = nextStatus(status, 'PingTimeout');
    expect(status).toBe('Alert');
    status = nextStatus(status, 'HostDown');
    expect(status).toBe('Down');
    expect(() => nextStatus(status, 'Ping')).toThrow(IllegalTransition);
    status = nextStatus(status, 'AgentConnected');
    expect(nextStatus(status, 'Ready')).toBe('Up');
  });

  it('takes a silent host only from Up or Connecting to Disconnected, never further', () => {
    for (const from of ['Disconnected', 'Alert', 'Down', 'Removed', 'Error', 'Creating', undefined] as const) {
      expect(() => nextStatus(from, 'PingMissed')).toThrow(IllegalTransition);
    }
    // From there upstream's own events decide: HostDown or WaitedTooLong, and Ping back Up.
    expect(nextStatus('Disconnected', 'HostDown')).toBe('Down');
    expect(nextStatus('Disconnected', 'WaitedTooLong')).toBe('Alert');
    expect(nextStatus('Disconnected', 'Ping')).toBe('Up');
  });

  it('lists the possible events of a status', () => {
    expect(possibleStatusEvents('Error')).toEqual(['AgentConnected']);
    expect(possibleStatusEvents('Removed')).toEqual([]);
  });
});

describe('host ResourceState', () => {
  it.each(RESOURCE)('%s --%s--> %s', (from, event, to) => {
    expect(nextResourceState(from, event)).toBe(to);
  });

  it('refuses every other (state, event) pair with upstream’s words', () => {
    const legal = new Set(RESOURCE.map(([from, event]) => `${from}|${event}`));
    let refused = 0;
    for (const from of [undefined, ...RESOURCE_STATES]) {
      for (const event of RESOURCE_EVENTS) {
        if (legal.has(`${from}|${event}`)) continue;
        expect(() => nextResourceState(from, event)).toThrow(IllegalTransition);
        refused++;
      }
    }
    expect(refused).toBe((RESOURCE_STATES.length + 1) * RESOURCE_EVENTS.length - RESOURCE.length);
    expect(() => nextResourceState('Maintenance', 'Enable')).toThrow('No next resource state found for current state =Maintenance event =Enable');
    expect(() => nextResourceState('Maintenance', 'Disable')).toThrow(IllegalTransition);
    expect(() => nextResourceState('PrepareForMaintenance', 'Enable')).toThrow(IllegalTransition);
  });

  it('goes through maintenance as the guide describes: prepare first, then maintenance, cancel back to Enabled', () => {
    const prepare = nextResourceState('Enabled', 'AdminAskMaintenance');
    expect(prepare).toBe('PrepareForMaintenance');
    expect(nextResourceState(prepare, 'UnableToMigrate')).toBe('ErrorInPrepareForMaintenance');
    const maintenance = nextResourceState(prepare, 'InternalEnterMaintenance');
    expect(maintenance).toBe('Maintenance');
    expect(nextResourceState(maintenance, 'AdminCancelMaintenance')).toBe('Enabled');
    // A disabled host cannot be asked into maintenance.
    expect(() => nextResourceState('Disabled', 'AdminAskMaintenance')).toThrow(IllegalTransition);
  });

  it('knows the maintenance states', () => {
    expect(RESOURCE_STATES.filter(isMaintenanceState)).toEqual(['ErrorInPrepareForMaintenance', 'PrepareForMaintenance', 'ErrorInMaintenance', 'Maintenance']);
    expect(RESOURCE_STATES.filter((s) => !canAttemptMaintenance(s))).toEqual(['ErrorInPrepareForMaintenance', 'PrepareForMaintenance', 'Maintenance']);
    expect(possibleResourceEvents('Degraded')).toEqual(['DeleteHost', 'EnableDegradedHost', 'AdminAskMaintenance']);
  });
});

describe('placement', () => {
  const enabled = { allocationstate: 'Enabled' as const };
  const disabled = { allocationstate: 'Disabled' as const };
  const parents = { zone: enabled, pod: enabled, cluster: enabled };

  it('takes only Up, Enabled hosts in an enabled zone, pod and cluster', () => {
    expect(acceptsPlacement({ status: 'Up', resourcestate: 'Enabled' }, parents)).toBe(true);
    for (const resourcestate of RESOURCE_STATES.filter((s) => s !== 'Enabled')) {
      expect(acceptsPlacement({ status: 'Up', resourcestate }, parents)).toBe(false);
    }
    for (const status of HOST_STATUSES.filter((s) => s !== 'Up')) {
      expect(acceptsPlacement({ status, resourcestate: 'Enabled' }, parents)).toBe(false);
    }
    for (const level of ['zone', 'pod', 'cluster'] as const) {
      expect(acceptsPlacement({ status: 'Up', resourcestate: 'Enabled' }, { ...parents, [level]: disabled })).toBe(false);
    }
  });
});
