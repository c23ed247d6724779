// Whether a live-migrated guest kept its boot, told apart from a guest kernel crash that is not Mold's.
//
// Under software emulation (QEMU 7.2's TCG, as in the lab) a guest's kernel sometimes crashes within
// seconds of landing from a live migration: guest memory comes over corrupted (a general protection fault
// in virtio_net, or list corruption in the page allocator), the kernel panics and reboots (`panic=10`).
// Raw `virsh migrate` of lab guests does it too, about one move in 24 under load, with no Mold command
// involved. Such a reboot happens inside the qemu that received the migration; one caused by Mold would be
// a new qemu, and a VM event. So a changed boot id passes only when both say it was the guest's own crash.
import { expect } from 'vitest';
import type { labAt } from '../lab/lab.ts';
import { waitForGuest } from './guest.ts';
import type { VmWorld } from './vm-world.ts';

/** When a test's moves began, for `expectBootKept`: a second early, as events carry whole seconds. */
export const movesBegin = () => Date.now() - 1000;

/**
 * Expects the guest `vm` (now on lab host `hostIndex`) to answer with the boot id `before`; a changed one
 * passes, with a warning, only if the guest still runs in the qemu that received it (started with
 * `-incoming`) and no VM stop, start, reboot or create was recorded for it since `since` (`movesBegin`).
 */
export async function expectBootKept(world: Pick<VmWorld, 'ok'>, lab: Pick<ReturnType<typeof labAt>, 'hostExec'>, vm: { id: string; name: string; instancename: string; nic: Array<{ ipaddress: string }> }, hostIndex: number, before: string, since: number) {
  const now = (await waitForGuest(vm.nic[0]!.ipaddress, `guest ${vm.name}`)).bootId;
  if (now === before) return;
  const qemu = await lab.hostExec(hostIndex, ['sh', '-c', `tr '\\0' ' ' < /proc/$(cat /run/libvirt/qemu/${vm.instancename}.pid)/cmdline`]);
  expect(qemu.stdout, `guest ${vm.name} booted again; its qemu on host ${hostIndex}`).toMatch(/-incoming /);
  const events = (await world.ok('listEvents', { listall: true, pagesize: 500 })).event ?? [];
  const lifecycle = events.filter((e: any) => e.resourceid === vm.id && /^VM\.(STOP|START|REBOOT|CREATE)$/.test(e.type) && Date.parse(e.created.replace('+0000', 'Z')) >= since);
  expect(lifecycle, `guest ${vm.name} booted again; Mold's VM events since the moves began`).toEqual([]);
  console.warn(`guest ${vm.name} booted again inside the qemu that received it: its kernel crashed after a TCG live migration, not Mold's doing`);
}
