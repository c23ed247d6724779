// The task of statemachines/vm-edit.asl.json: the job's half of scaleVirtualMachine,
// resetSSHKeyForVirtualMachine and updateVMAffinityGroup. The API call checked the input; this step
// reads the VM again, checks again (it may have moved since), and writes it with one conditional
// update (or transaction), so a retry that finds its work done only renders the VM.
import { z } from 'zod';
import { InvalidParameter } from '../../shared/cloudstack/errors.ts';
import { getVmConsistent, replaceVmAffinityGroups, transitionVm, type VirtualMachine } from '../../shared/db/vms.ts';
import { loadSettings } from '../../shared/settings.ts';
import { applyOfferingChange, notStoppedForAffinity, notStoppedForKeyReset, notStoppedForUpgrade, planOfferingChange, renderVmAffinity } from '../api/commands/vms-edit.ts';
import { renderVmFor, type VmViewer } from '../api/commands/vms-list.ts';
import { stepFunctionsError } from './jobs.ts';

const viewer = z.object({ rootAdmin: z.boolean(), admin: z.boolean() }).default({ rootAdmin: false, admin: false });

export const vmEditActions = [
  z.object({
    action: z.literal('vmEditTask'),
    op: z.enum(['scale', 'resetSSHKey', 'affinityGroups']),
    jobId: z.string(),
    vmId: z.string(),
    viewer,
    args: z.record(z.string(), z.unknown()).default({}),
    error: stepFunctionsError.optional(),
  }),
] as const;
export type VmEditTask = z.infer<(typeof vmEditActions)[number]>;

const scaleArgs = z.object({ serviceOfferingId: z.string(), details: z.array(z.record(z.string(), z.string())).default([]) });
const keyArgs = z.object({ publicKeys: z.record(z.string(), z.string()) });
const groupArgs = z.object({ groupIds: z.array(z.string()) });

async function currentVm(vmId: string): Promise<VirtualMachine> {
  const vm = await getVmConsistent(vmId);
  if (!vm) throw new InvalidParameter(`Unable to find a virtual machine with id ${vmId}: it was removed meanwhile`);
  return vm;
}

const render = async (vm: VirtualMachine, who: VmViewer) => ({ virtualmachine: await renderVmFor(vm, who) });

/** The offering (and custom details) as planned by the API call, applied with the counts following; the VM records the job that did it. */
async function scale(jobId: string, vmId: string, who: VmViewer, args: z.infer<typeof scaleArgs>) {
  const vm = await currentVm(vmId);
  if (vm.state !== 'Stopped') throw notStoppedForUpgrade(vm);
  // A retry of a step that wrote already: done.
  if (vm.editJobId === jobId) return render(vm, who);
  const settings = await loadSettings();
  const changes = await planOfferingChange('scaleVirtualMachine', vm, args.serviceOfferingId, args.details, settings, who.rootAdmin);
  return render(await applyOfferingChange(vm, { ...changes, editJobId: jobId }, settings), who);
}

/** The new keys on the record: the next start's config drive carries them (upstream keeps them in the VM's details). */
async function resetSSHKey(vmId: string, who: VmViewer, args: z.infer<typeof keyArgs>) {
  const vm = await currentVm(vmId);
  if (vm.state === 'Error' || vm.state === 'Expunging') throw new InvalidParameter('Vm with specified id is not in the right state');
  if (vm.state !== 'Stopped') throw notStoppedForKeyReset(vm);
  const updated = await transitionVm(vm.id, ['Stopped'], 'Stopped', { keypairs: Object.keys(args.publicKeys), sshPublicKeys: args.publicKeys });
  if (!updated) throw notStoppedForKeyReset(await currentVm(vmId));
  return render(updated, who);
}

/** The VM leaves the groups it no longer names and joins the new ones, in one transaction. */
async function affinityGroups(vmId: string, who: VmViewer, args: z.infer<typeof groupArgs>) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const vm = await currentVm(vmId);
    if (vm.state !== 'Stopped') throw notStoppedForAffinity(vm);
    const outcome = await replaceVmAffinityGroups(vm.id, vm.affinityGroupIds ?? [], args.groupIds);
    if (outcome === 'group') throw new InvalidParameter('An affinity group of the request was deleted meanwhile (affinitygroupids); try again');
    if (outcome === 'done') return { virtualmachine: await renderVmAffinity(await currentVm(vmId), who) };
    // 'vm': its state or its groups changed since read; read again.
  }
  throw new InvalidParameter(`The affinity groups of virtual machine ${vmId} changed meanwhile; try again`);
}

export async function runVmEditTask(task: VmEditTask): Promise<unknown> {
  switch (task.op) {
    case 'scale':
      return scale(task.jobId, task.vmId, task.viewer, scaleArgs.parse(task.args));
    case 'resetSSHKey':
      return resetSSHKey(task.vmId, task.viewer, keyArgs.parse(task.args));
    case 'affinityGroups':
      return affinityGroups(task.vmId, task.viewer, groupArgs.parse(task.args));
  }
}
