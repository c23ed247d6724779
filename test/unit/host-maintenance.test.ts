// The decisions of host maintenance (shared/host-maintenance.ts): when preparing may begin, in
// upstream's words and order, and what a host becomes once every move has ended.
import { describe, expect, it } from 'vitest';
import { RESOURCE_STATES, type ResourceState } from '../../shared/db/hosts.ts';
import type { VmState } from '../../shared/db/vms.ts';
import { cancelRefusalText, clusterBusyText, decideEvacuation, maintenanceRefusal, prepareFailure } from '../../shared/host-maintenance.ts';

const host = (resourcestate: ResourceState) => ({ id: 'h1', name: 'kvm1', clusterId: 'c1', resourcestate });
const vms = (...states: VmState[]) => states.map((state, i) => ({ id: `v${i}`, state }));

describe('maintenanceRefusal', () => {
  it('lets an Enabled, ErrorInMaintenance or Degraded host with nothing in the way begin', () => {
    for (const state of ['Enabled', 'ErrorInMaintenance', 'Degraded'] as const) {
      expect(maintenanceRefusal(host(state), [host('Enabled')], vms('Running', 'Stopped'), [])).toBeUndefined();
    }
  });

  it('refuses a host already preparing or in Maintenance with upstream\'s text, first of all', () => {
    for (const state of ['Maintenance', 'PrepareForMaintenance', 'ErrorInPrepareForMaintenance'] as const) {
      expect(maintenanceRefusal(host(state), [{ id: 'h2', resourcestate: 'PrepareForMaintenance' }], vms('Starting'), [{}])).toBe(
        `Host is already in state ${state}. Cannot recall for maintenance until resolved.`,
      );
    }
  });

  it('refuses while another host of the cluster prepares (also with errors), before looking at VMs', () => {
    for (const other of ['PrepareForMaintenance', 'ErrorInPrepareForMaintenance'] as const) {
      expect(maintenanceRefusal(host('Enabled'), [host('Enabled'), { id: 'h2', resourcestate: other }], vms('Starting'), [])).toBe(clusterBusyText('c1'));
    }
    for (const other of RESOURCE_STATES.filter((s) => s !== 'PrepareForMaintenance' && s !== 'ErrorInPrepareForMaintenance')) {
      expect(maintenanceRefusal(host('Enabled'), [{ id: 'h2', resourcestate: other }], [], [])).toBeUndefined();
    }
  });

  it('refuses migrations under way, VMs starting or stopping, and VMs in error, in that order', () => {
    const incoming = 'Host contains incoming VMs migrating. Please wait for them to complete before putting to maintenance.';
    expect(maintenanceRefusal(host('Enabled'), [], vms('Error', 'Starting'), [{}])).toBe(incoming);
    expect(maintenanceRefusal(host('Enabled'), [], vms('Migrating', 'Starting'), [])).toBe(incoming);
    const busy = 'Host contains VMs in starting/stopping state. Please wait for them to complete before putting to maintenance.';
    expect(maintenanceRefusal(host('Enabled'), [], vms('Error', 'Starting'), [])).toBe(busy);
    expect(maintenanceRefusal(host('Enabled'), [], vms('Stopping'), [])).toBe(busy);
    expect(maintenanceRefusal(host('Enabled'), [], vms('Running', 'Error'), [])).toBe('Host contains VMs in error/unknown/shutdown state. Please fix errors to proceed.');
  });

  it('refuses a state without AdminAskMaintenance (Disabled)', () => {
    expect(maintenanceRefusal(host('Disabled'), [], [], [])).toMatch(/^Cannot transit resource state of Host kvm1 \(h1\) to Maintenance/);
    expect(maintenanceRefusal(host('Creating'), [], [], [])).toMatch(/^Cannot transit resource state/);
  });

  it('words refusals as upstream\'s commands do', () => {
    expect(prepareFailure('x')).toBe('Failed to prepare host for maintenance due to: x');
    expect(cancelRefusalText({ id: 'h1', resourcestate: 'Enabled' })).toBe('Cannot perform cancelMaintenance when resource state is Enabled, hostId = h1');
  });
});

describe('decideEvacuation', () => {
  it('leaves a host that no longer prepares (cancelled meanwhile) as it is', () => {
    for (const state of RESOURCE_STATES.filter((s) => s !== 'PrepareForMaintenance')) {
      expect(decideEvacuation(host(state), [{ vmId: 'v0', failed: 'x' }], vms('Running'))).toEqual({ kind: 'cancelled' });
    }
  });

  it('enters Maintenance when nothing occupies the host any more (Stopped, Destroyed VMs do not)', () => {
    expect(decideEvacuation(host('PrepareForMaintenance'), [], [])).toEqual({ kind: 'maintenance' });
    expect(decideEvacuation(host('PrepareForMaintenance'), [{ vmId: 'v0', moved: true }], vms('Stopped', 'Destroyed', 'Expunging'))).toEqual({ kind: 'maintenance' });
    // A move that failed for a VM that then stopped leaves nothing behind either.
    expect(decideEvacuation(host('PrepareForMaintenance'), [{ vmId: 'v0', failed: 'gone' }], vms('Stopped'))).toEqual({ kind: 'maintenance' });
  });

  it('is unable when a VM still occupies the host, each with its move\'s failure or its state', () => {
    const decision = decideEvacuation(
      host('PrepareForMaintenance'),
      [{ vmId: 'v0', failed: 'Unable to find a server to migrate the vm to' }, { vmId: 'v1', skipped: 'the VM is Starting' }, { vmId: 'v2', moved: true }],
      vms('Running', 'Starting', 'Stopped', 'Migrating', 'Error', 'Stopping'),
    );
    expect(decision).toEqual({
      kind: 'unable',
      reasons: [
        { vmId: 'v0', reason: 'Unable to find a server to migrate the vm to' },
        { vmId: 'v1', reason: 'it is Starting on the host' },
        { vmId: 'v3', reason: 'it is Migrating on the host' },
        { vmId: 'v4', reason: 'it is Error on the host' },
        { vmId: 'v5', reason: 'it is Stopping on the host' },
      ],
    });
  });
});

describe('the agent destroys the VMs of a deleted host', () => {
  it('destroys and undefines the domains named as Mold names VMs, and nothing else', async () => {
    const { execFileSync } = await import('node:child_process');
    const { chmodSync, mkdtempSync, readFileSync, writeFileSync } = await import('node:fs');
    const { DESTROY_VMS_SCRIPT } = await import('../../agent/host.ts');
    const bin = mkdtempSync('/tmp/mold-virsh-');
    writeFileSync(
      `${bin}/virsh`,
      `#!/bin/sh\necho "$@" >> ${bin}/calls\ncase "$3" in list) printf 'i-2-7-VM\\nother-domain\\ni-10-11-VM\\n';; esac\n`,
    );
    chmodSync(`${bin}/virsh`, 0o755);
    const out = execFileSync('sh', ['-c', DESTROY_VMS_SCRIPT], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } }).toString();
    expect(out.trim().split('\n')).toEqual(['i-2-7-VM', 'i-10-11-VM']);
    const calls = readFileSync(`${bin}/calls`, 'utf8');
    expect(calls).toContain('destroy i-2-7-VM');
    expect(calls).toContain('undefine --nvram i-10-11-VM');
    expect(calls).not.toContain('other-domain');
  });
});
