// mold-agent status's view of its zone (agent/fleet-view.ts).
import { describe, expect, it } from 'vitest';
import { fleetLines } from '../../agent/fleet-view.ts';

describe("mold-agent status's zone view", () => {
  it('marks this agent, says whose lease holds or lapsed, and lists each host with its report, storage heartbeat, BMC and VMs', () => {
    const lines = fleetLines(
      {
        zoneid: 'z1',
        zonename: 'site-a',
        agent: [
          { id: 'a1', name: 'rack-1', state: 'Enabled', version: '0.2.0', lastseen: '2026-12-02T10:00:00+0000', leaseexpires: '2026-12-02T10:00:20+0000', holdslease: true, hostcount: 1 },
          { id: 'a2', name: 'rack-2', state: 'Enabled', leaseexpires: '2026-12-02T09:00:20+0000', holdslease: false, hostcount: 0 },
          { id: 'a3', name: 'new', state: 'Enabled', holdslease: false, hostcount: 0 },
        ],
        host: [
          {
            id: 'h1', name: 'kvm-1', ipaddress: '10.0.0.11', state: 'Up', resourcestate: 'Enabled', lastpinged: '2026-12-02T10:00:00+0000', reachable: true, agentname: 'rack-1', leaseepoch: 2,
            storageheartbeatage: 3, powerstate: 'On',
            vm: [{ name: 'web', instancename: 'i-2-3-VM', state: 'Running', haenable: true }, { name: 'db', instancename: 'i-2-4-VM', state: 'Stopped', haenable: false }],
          },
          { id: 'h2', name: 'kvm-2', ipaddress: '10.0.0.12', state: 'Down', resourcestate: 'Enabled', reachable: false, lastreporterror: 'no route to host', leaseepoch: 0, vm: [], haspared: 'the host still writes its storage heartbeat' },
        ],
      },
      'a2',
    );
    expect(lines).toEqual([
      'Zone site-a (z1)',
      '',
      'Agents (3):',
      '    rack-1 (a1)',
      '      state Enabled, lease held until 2026-12-02T10:00:20+0000, 1 host(s), version 0.2.0, last seen 2026-12-02T10:00:00+0000',
      '  * rack-2 (a2)',
      '      state Enabled, lease lapsed at 2026-12-02T09:00:20+0000, 0 host(s), version -, last seen never',
      '    new (a3)',
      '      state Enabled, no lease yet, 0 host(s), version -, last seen never',
      '',
      'Hosts (2):',
      '    kvm-1 10.0.0.11: Up, Enabled, storage heartbeat 3 s old, BMC On',
      '      agent rack-1 (lease epoch 2), last report 2026-12-02T10:00:00+0000: ok',
      '      VMs (2): web Running (HA), db Stopped',
      '    kvm-2 10.0.0.12: Down, Enabled, storage heartbeat no peer reading, BMC not configured',
      '      agent - (lease epoch 0), last report never: unreachable: no route to host',
      '      VMs (0): none',
      '      HA leaves it alone: the host still writes its storage heartbeat',
    ]);
  });

  it('says when VM HA is held in the zone (HA maintenance) and what it holds back on a host', () => {
    const host = { id: 'h1', name: 'kvm-1', ipaddress: '10.0.0.11', state: 'Down', resourcestate: 'Enabled', leaseepoch: 0, vm: [], haheld: 'VM HA is held (vm.ha.enabled is false): it would fence the host' };
    const held = (hamaintenance: string) => fleetLines({ zoneid: 'z1', zonename: 'site-a', vmhaenabled: false, hamaintenance, agent: [], host: [host] }, 'a1');
    expect(held('Global').slice(0, 2)).toEqual(['Zone site-a (z1)', 'VM HA: HA MAINTENANCE (the global vm.ha.enabled is false): nothing is fenced, stopped or restarted']);
    expect(held('Zone')[1]).toBe("VM HA: HA MAINTENANCE (the zone's vm.ha.enabled is false): nothing is fenced, stopped or restarted");
    expect(held('Global').at(-1)).toBe('      HA held: VM HA is held (vm.ha.enabled is false): it would fence the host');
    expect(fleetLines({ zoneid: 'z1', zonename: 'site-a', vmhaenabled: true, hamaintenance: 'None', agent: [], host: [{ ...host, haheld: undefined, hafencerefused: 'the host is in Maintenance: a host in maintenance is never fenced' }] }, 'a1')).toEqual([
      'Zone site-a (z1)',
      'VM HA: on',
      '',
      'Agents (0):',
      '',
      'Hosts (1):',
      '    kvm-1 10.0.0.11: Down, Enabled, storage heartbeat no peer reading, BMC not configured',
      '      agent - (lease epoch 0), last report never: ok',
      '      VMs (0): none',
      '      HA cannot fence it: the host is in Maintenance: a host in maintenance is never fenced',
    ]);
  });
});
