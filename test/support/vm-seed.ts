// VM records for tests and benchmarks, written through the repository layer (shared/db/vms.ts)
// after useRuntimeEndpoints(): no host, agent or state machine involved.
import { randomUUID } from 'node:crypto';
import type { Account } from '../../shared/db/identity.ts';
import { cloudstackDate } from '../../shared/db/jobs.ts';
import { NONE_OS_TYPE } from '../../shared/catalogue/os-types.ts';
import { createTemplate, type Template } from '../../shared/db/templates.ts';
import { accountNumber, createVmRecords, instanceNameOf, nextNumber, type VirtualMachine, type Volume } from '../../shared/db/vms.ts';

export interface VmSeed extends Partial<VirtualMachine> {
  zoneId: string;
  serviceOfferingId: string;
  templateId: string;
}

/** A VM record and its root volume as deploy would write them (not yet stored). */
export async function makeVm(owner: Pick<Account, 'id' | 'domainId' | 'domainTree'> & { userId: string }, seed: VmSeed): Promise<{ vm: VirtualMachine; volume: Volume }> {
  const id = seed.id ?? randomUUID();
  const number = seed.number ?? (await nextNumber('vm'));
  const accountNo = await accountNumber(owner.id);
  const volumeId = randomUUID();
  const name = seed.name ?? `vm-${number}`;
  const vm: VirtualMachine = {
    id,
    number,
    instanceName: instanceNameOf(accountNo, number),
    name,
    displayName: seed.displayName ?? name,
    state: 'Running',
    accountId: owner.id,
    domainId: owner.domainId,
    domainTree: owner.domainTree,
    userId: owner.userId,
    cpuNumber: 1,
    cpuSpeed: 1000,
    memoryMiB: 512,
    rootVolumeId: volumeId,
    keypairs: [],
    affinityGroupIds: [],
    nics: [],
    details: {},
    haEnable: false,
    created: cloudstackDate(),
    ...seed,
  };
  const volume: Volume = {
    id: volumeId,
    name: `ROOT-${number}`,
    vmId: id,
    type: 'ROOT',
    zoneId: vm.zoneId,
    poolId: 'pool',
    path: `/pool/${volumeId}.qcow2`,
    sizeBytes: 2 * 1024 ** 3,
    templateId: vm.templateId,
    accountId: owner.id,
    domainId: owner.domainId,
    domainTree: owner.domainTree,
    state: 'Ready',
    deviceId: 0,
    created: vm.created,
  };
  return { vm, volume };
}

/** Writes a VM and its root volume; returns the VM. */
export async function seedVm(owner: Pick<Account, 'id' | 'domainId' | 'domainTree'> & { userId: string }, seed: VmSeed): Promise<VirtualMachine> {
  const { vm, volume } = await makeVm(owner, seed);
  await createVmRecords(vm, volume);
  return vm;
}

/** A public KVM template record in `zoneId`, owned by `owner` (registered, not downloaded). */
export function seedTemplate(owner: { accountId: string; domain: { id: string; tree: string } }, zoneId: string, name: string, displaytext: string): Promise<Template> {
  return createTemplate({
    kind: 'template',
    name,
    displaytext,
    url: 'http://10.0.0.1/template.qcow2',
    format: 'QCOW2',
    hypervisor: 'KVM',
    ostypeid: NONE_OS_TYPE.id,
    ispublic: true,
    isfeatured: false,
    isextractable: false,
    passwordenabled: false,
    sshkeyenabled: true,
    requireshvm: true,
    isdynamicallyscalable: false,
    directdownload: false,
    bootable: true,
    bits: 64,
    templatetype: 'USER',
    crossZones: false,
    accountId: owner.accountId,
    domainId: owner.domain.id,
    domainTree: owner.domain.tree,
    zoneIds: [zoneId],
  } as never);
}
