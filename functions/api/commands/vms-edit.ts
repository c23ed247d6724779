// Editing a user VM (upstream's UpdateVMCmd, UpgradeVMCmd, ScaleVMCmd, ResetVMSSHKeyCmd,
// GetVMUserDataCmd and UpdateVMAffinityGroupCmd over UserVmManagerImpl and AffinityGroupServiceImpl).
// Every call checks its whole input before anything changes and refuses as upstream does. The
// synchronous ones (updateVirtualMachine, changeServiceForVirtualMachine) then write the VM with one
// conditional update; the async ones (scaleVirtualMachine, resetSSHKeyForVirtualMachine,
// updateVMAffinityGroup) start statemachines/vm-edit.asl.json, whose one step
// (functions/tasks/vms-edit.ts) checks again and writes.
//
// What an edit changes takes effect at the VM's next start: a start rebuilds the domain and its
// config drive (hostname, keys, user data) from the records. Mold does not scale running VMs
// (no dynamic scaling on KVM here), so an offering changes only while the VM is Stopped.
import { getOsType } from '../../../shared/catalogue/os-types.ts';
import { InvalidParameter, PermissionDenied, ResourceLimitExceeded } from '../../../shared/cloudstack/errors.ts';
import { param } from '../../../shared/cloudstack/params.ts';
import { getAccount, type Account } from '../../../shared/db/identity.ts';
import { releaseResources, reserveResources, type ResourceAmounts } from '../../../shared/db/limits.ts';
import { getServiceOffering, usableInZone, visibleInDomain, type ServiceOffering } from '../../../shared/db/offerings.ts';
import { findKeyPairByName } from '../../../shared/db/ssh-keypairs.ts';
import { getTemplate } from '../../../shared/db/templates.ts';
import { getVmConsistent, transitionVm, updateVmRecord, type VirtualMachine, type VmChanges } from '../../../shared/db/vms.ts';
import type { Settings } from '../../../shared/settings.ts';
import { startAsync } from '../async.ts';
import { ALL_ROLES, completedEvent, defineCommand, type Caller } from '../command.ts';
import { isRootAdmin, resolveAccount, resolveDomain } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';
import { affinityGroupsOf, checkUserData, computeResources, HOSTNAME_RULE, isValidHostname, viewerOf, vmParam } from './vms.ts';
import { loadVmRenderContext, renderVm, renderVmFor, USER_DENIED_DETAILS, USER_READONLY_DETAILS, type VmViewer } from './vms-list.ts';

const RESOURCE_TYPE = 'VirtualMachine';
const STATE_MACHINE = 'vm-edit';

/** How upstream's messages name a VM (VMInstanceVO.toString). */
export const describeVm = (vm: Pick<VirtualMachine, 'instanceName'>) => `VM[User|${vm.instanceName}]`;

/** The VM by id for an edit: a Destroyed (or Expunging) VM is hidden from all but the root admin. */
async function editedVm(api: string, id: string, caller: Caller): Promise<VirtualMachine> {
  const vm = await vmParam(api, 'id', id, caller);
  if ((vm.state === 'Destroyed' || vm.state === 'Expunging') && !isRootAdmin(caller)) throw noSuchEntity(api, 'id', id);
  return vm;
}

async function ownerOf(vm: VirtualMachine): Promise<Account> {
  const owner = await getAccount(vm.accountId);
  if (!owner) throw new InvalidParameter(`The owner of ${describeVm(vm)} does not exist: ${vm.accountId}`);
  return owner;
}

// ---- details (the request parser lowercases map keys; upstream's names are camel case) ----

const CUSTOM_KEYS = ['cpuNumber', 'cpuSpeed', 'memory'] as const;
const USER_READONLY = USER_READONLY_DETAILS.split(',').map((name) => name.trim());
const KNOWN_DETAILS = [...CUSTOM_KEYS, 'rootdisksize', ...USER_DENIED_DETAILS, ...USER_READONLY];
const CANONICAL = new Map(KNOWN_DETAILS.map((name) => [name.toLowerCase(), name]));

function detailsOf(entries: readonly Record<string, string>[] | undefined): Record<string, string> {
  const details: Record<string, string> = {};
  for (const entry of entries ?? []) for (const [key, value] of Object.entries(entry)) details[CANONICAL.get(key.toLowerCase()) ?? key] = value;
  return details;
}

const isDynamic = (offering: ServiceOffering) => offering.cpunumber === undefined || offering.cpuspeed === undefined || offering.memory === undefined;

// ---- resource counts of a CPU / memory change ----

/** The counts a change of CPU and memory raises, and those it lowers. */
function resourceDeltas(from: Pick<VirtualMachine, 'cpuNumber' | 'memoryMiB'>, to: Pick<VirtualMachine, 'cpuNumber' | 'memoryMiB'>) {
  const up: ResourceAmounts = {};
  const down: ResourceAmounts = {};
  const cpu = to.cpuNumber - from.cpuNumber;
  const memory = to.memoryMiB - from.memoryMiB;
  if (cpu > 0) up.cpu = cpu;
  else if (cpu < 0) down.cpu = -cpu;
  if (memory > 0) up.memory = memory;
  else if (memory < 0) down.memory = -memory;
  return { up, down };
}

/**
 * Writes `changes` to a Stopped VM that is still exactly as read (its offering, CPU and memory),
 * with the owner's cpu and memory counts following: the increase is reserved first (refused with
 * 532 beyond a limit, nothing changed), given back if the VM moved meanwhile, and the decrease is
 * released once the VM is written.
 */
export async function writeStoppedWithResources(vm: VirtualMachine, changes: VmChanges, settings: Settings, changed: (now: VirtualMachine | undefined) => Error): Promise<VirtualMachine> {
  const { up, down } = resourceDeltas(vm, { cpuNumber: (changes.cpuNumber as number | undefined) ?? vm.cpuNumber, memoryMiB: (changes.memoryMiB as number | undefined) ?? vm.memoryMiB });
  await reserveResources(vm.accountId, up, { settings });
  const written = await transitionVm(vm.id, ['Stopped'], 'Stopped', changes, { serviceOfferingId: vm.serviceOfferingId, cpuNumber: vm.cpuNumber, memoryMiB: vm.memoryMiB });
  if (!written) {
    await releaseResources(vm.accountId, up);
    throw changed(await getVmConsistent(vm.id));
  }
  await releaseResources(vm.accountId, down);
  return written;
}

// ---- changing the offering (upgradeStoppedVirtualMachine, checkIfCanUpgrade) ----

const tagsOf = (csv: string | undefined) => (csv ?? '').split(',').map((tag) => tag.trim()).filter(Boolean);

/** upgradeVirtualMachine's refusal of a VM that is not Stopped (two spaces, as upstream). */
export const notStoppedForUpgrade = (vm: VirtualMachine) =>
  new InvalidParameter(`Unable to upgrade virtual machine ${describeVm(vm)}  in state ${vm.state}; make sure the virtual machine is stopped`);

/**
 * Checks a new offering (and custom details) for a Stopped VM as upstream's upgradeStoppedVirtualMachine
 * does, and returns what the VM becomes: offering, CPU, speed, memory and details.
 */
export async function planOfferingChange(api: string, vm: VirtualMachine, offeringId: string, detailEntries: readonly Record<string, string>[] | undefined, settings: Settings, rootAdmin: boolean): Promise<VmChanges> {
  const offering = await getServiceOffering(offeringId.toLowerCase());
  if (!offering) throw noSuchEntity(api, 'serviceofferingid', offeringId);
  if (offering.state !== 'Active') throw new InvalidParameter(`Unable to upgrade virtual machine ${vm.id} with an inactive service offering ${offering.id}`);
  const given = detailsOf(detailEntries);
  let resources: Pick<VirtualMachine, 'cpuNumber' | 'cpuSpeed' | 'memoryMiB'>;
  if (isDynamic(offering)) {
    if (Object.keys(given).length === 0) throw new InvalidParameter('Need to specify custom parameter values cpu, cpu speed and memory when using custom offering');
    resources = computeResources(offering, given, settings);
  } else {
    const maxCores = settings.number('vm.serviceoffering.cpu.cores.max') || 2147483647;
    const maxRam = settings.number('vm.serviceoffering.ram.size.max') || 2147483647;
    if (offering.cpunumber! > maxCores) throw new InvalidParameter(`Invalid cpu cores value, please choose another service offering with cpu cores between 1 and ${maxCores}`);
    if (offering.memory! > maxRam) throw new InvalidParameter(`Invalid memory value, please choose another service offering with memory between 32 and ${maxRam} MB`);
    resources = { cpuNumber: offering.cpunumber!, cpuSpeed: offering.cpuspeed!, memoryMiB: offering.memory! };
    if (offering.id === vm.serviceOfferingId) {
      throw new InvalidParameter(`Not upgrading vm ${describeVm(vm)} since it already has the requested service offering (${offering.name})`);
    }
  }
  const current = await getServiceOffering(vm.serviceOfferingId);
  const currentLocal = current?.storagetype === 'local';
  if (offering.storagetype === 'local' && !currentLocal) {
    throw new InvalidParameter(`Unable to upgrade virtual machine ${describeVm(vm)}, target offering use local storage but the storage pool where the volume is allocated is a shared storage.`);
  }
  if (offering.storagetype !== 'local' && currentLocal) {
    throw new InvalidParameter(`Unable to upgrade virtual machine ${describeVm(vm)}, target offering use shared storage but the storage pool where the volume is allocated is a local storage.`);
  }
  const currentTags = tagsOf(current?.storagetags);
  const newTags = tagsOf(offering.storagetags);
  if (!currentTags.every((tag) => newTags.includes(tag))) {
    throw new InvalidParameter(
      `Unable to upgrade virtual machine; the current service offering  should have tags as subset of the new service offering tags. Current service offering tags: [${currentTags.join(', ')}]; new service offering tags: [${newTags.join(', ')}]`,
    );
  }
  const owner = await ownerOf(vm);
  if (!rootAdmin && owner.roleType !== 'Admin' && !visibleInDomain(offering, owner.domainTree)) {
    throw new PermissionDenied(`Account ${owner.name} does not have access to service offering ${offering.id} (serviceofferingid)`);
  }
  if (!usableInZone(offering, vm.zoneId)) throw new InvalidParameter(`Service offering ${offering.id} (serviceofferingid) is not available in zone ${vm.zoneId}`);
  // The custom values live in the VM's details (upstream's upgradeVmDb), only for a custom offering.
  const details = Object.fromEntries(Object.entries(vm.details ?? {}).filter(([key]) => !(CUSTOM_KEYS as readonly string[]).includes(key)));
  if (isDynamic(offering)) for (const key of CUSTOM_KEYS) if (given[key] !== undefined) details[key] = given[key];
  return { serviceOfferingId: offering.id, ...resources, details };
}

/** A VM that moved while its offering was being changed: the refusal it now deserves. */
const upgradeRaced = (vm: VirtualMachine) => (now: VirtualMachine | undefined) =>
  now && now.state !== 'Stopped' ? notStoppedForUpgrade(now) : new InvalidParameter(`Unable to upgrade virtual machine ${describeVm(vm)}: it changed meanwhile; try again`);

/** Applies a planned offering change to a Stopped VM (counts follow; 532 beyond a limit). */
export const applyOfferingChange = (vm: VirtualMachine, changes: VmChanges, settings: Settings) => writeStoppedWithResources(vm, changes, settings, upgradeRaced(vm));

// ---- updateVirtualMachine ----

const stoppedFor = (name: string) => new InvalidParameter(`Virtual machine must be stopped prior to update ${name}`);

const updateVirtualMachineCommand = defineCommand({
  name: 'updateVirtualMachine',
  description:
    'Updates properties of a virtual machine. The VM has to be stopped and restarted for the new properties to take effect. UpdateVirtualMachine does not first check whether the VM is stopped. Therefore, stop the VM manually before issuing this call. Mold: name, displayname, ostypeid and details are changed only while the VM is Stopped; everything takes effect at its next start (its config drive is rebuilt then).',
  params: {
    id: param.uuid('The ID of the virtual machine'),
    displayname: param.string('user generated name').optional(),
    group: param.string('group of the virtual machine').optional(),
    haenable: param.boolean('true if high-availability is enabled for the virtual machine, false otherwise').optional(),
    ostypeid: param.uuid('the ID of the OS type that best represents this VM.').optional(),
    userdata: param
      .text(
        'an optional binary data that can be sent to the virtual machine upon a successful deployment. This binary data must be base64 encoded before adding it to the request. Using HTTP GET (via querystring), you can send up to 2KB of data after base64 encoding. Using HTTP POST (via POST body), you can send up to 32KB of data after base64 encoding.',
        1048576,
      )
      .optional(),
    isdynamicallyscalable: param
      .boolean('true if VM contains XS/VMWare tools inorder to support dynamic scaling of VM cpu/memory. This can be updated only when dynamic scaling is enabled on template, service offering and the corresponding global setting')
      .optional(),
    name: param.string('new host name of the vm. The VM has to be stopped/started for this update to take affect', 63).optional(),
    details: param.map("Details in key/value pairs. 'extraconfig' is not allowed to be passed in details.").optional(),
    cleanupdetails: param
      .boolean('optional boolean field, which indicates if details should be cleaned up or not (if set to true, details removed for this resource, details field ignored; if false or not set, no action)')
      .optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings, httpMethod }) => {
    const api = 'updateVirtualMachine';
    const vm = await editedVm(api, params.id, caller);
    if (params.ostypeid !== undefined && !getOsType(params.ostypeid)) throw noSuchEntity(api, 'ostypeid', params.ostypeid);
    if (vm.state === 'Error' || vm.state === 'Expunging') throw new InvalidParameter(`Vm with id ${vm.id} is not in the right state`);
    const stopped = vm.state === 'Stopped';
    const changes: VmChanges = {};

    if (params.displayname !== undefined && params.displayname !== vm.displayName) {
      if (!stopped) throw stoppedFor('displayname');
      changes.displayName = params.displayname;
    }
    if (params.name !== undefined) {
      if (!isValidHostname(params.name)) throw new InvalidParameter(`${HOSTNAME_RULE} (name)`);
      if (params.name !== vm.name) {
        if (!stopped) throw stoppedFor('name');
        changes.name = params.name;
      }
    }
    if (params.ostypeid !== undefined) {
      const osTypeId = params.ostypeid.toLowerCase();
      const currentOs = (vm.osTypeId as string | undefined) ?? (await getTemplate(vm.templateId))?.ostypeid;
      if (osTypeId !== currentOs) {
        if (!stopped) throw stoppedFor('ostypeid');
        changes.osTypeId = osTypeId;
      }
    }

    // Details: replaced as a whole (upstream's saveDetails); a user keeps its denied and read-only ones.
    const rootAdmin = isRootAdmin(caller);
    let newDetails: Record<string, string> | undefined;
    if (params.cleanupdetails) {
      if (!stopped) throw stoppedFor('details');
      newDetails = rootAdmin ? {} : Object.fromEntries(Object.entries(vm.details ?? {}).filter(([key]) => USER_DENIED_DETAILS.includes(key) || USER_READONLY.includes(key)));
    } else if (params.details && params.details.length > 0) {
      const given = detailsOf(params.details);
      if ('extraconfig' in given) throw new InvalidParameter("'extraconfig' should not be included in details as key");
      if (!rootAdmin) {
        for (const key of Object.keys(given)) {
          if (USER_DENIED_DETAILS.includes(key)) throw new InvalidParameter(`You're not allowed to add or edit the restricted setting: ${key}`);
          if (USER_READONLY.includes(key)) throw new InvalidParameter(`You're not allowed to add or edit the read-only setting: ${key}`);
        }
        for (const [key, value] of Object.entries(vm.details ?? {})) if (USER_DENIED_DETAILS.includes(key) || USER_READONLY.includes(key)) given[key] = value;
      }
      if (!stopped) throw stoppedFor('details');
      newDetails = given;
    }
    let resources: Pick<VirtualMachine, 'cpuNumber' | 'cpuSpeed' | 'memoryMiB'> | undefined;
    if (newDetails && !params.cleanupdetails) {
      // A custom offering's CPU and memory are its details (upstream's verifyVmLimits).
      const offering = await getServiceOffering(vm.serviceOfferingId);
      if (offering && (isDynamic(offering) || CUSTOM_KEYS.some((key) => newDetails![key] !== undefined))) resources = computeResources(offering, newDetails, settings);
    }
    if (newDetails) changes.details = newDetails;

    if (params.haenable !== undefined && params.haenable !== vm.haEnable) {
      const offering = await getServiceOffering(vm.serviceOfferingId);
      if (params.haenable && !offering?.offerha) throw new InvalidParameter("Can't enable ha for the vm as it's created from the Service offering having HA disabled");
      changes.haEnable = params.haenable;
    }
    if (params.userdata !== undefined) changes.userData = checkUserData(params.userdata.replaceAll('\\n', ''), httpMethod);
    if (params.isdynamicallyscalable !== undefined) {
      if (params.isdynamicallyscalable) {
        const [template, offering] = await Promise.all([getTemplate(vm.templateId), getServiceOffering(vm.serviceOfferingId)]);
        if (!template?.isdynamicallyscalable) throw new InvalidParameter('Dynamic Scaling cannot be enabled for the VM since its template does not have dynamic scaling enabled');
        if (!offering?.dynamicscalingenabled) throw new InvalidParameter('Dynamic Scaling cannot be enabled for the VM since its service offering does not have dynamic scaling enabled');
        // Mold has no dynamic scaling on KVM: enable.dynamic.scale.vm is false, always.
        throw new InvalidParameter('Dynamic Scaling cannot be enabled for the VM since corresponding global setting is set to false');
      }
      changes.isDynamicallyScalable = false;
    }
    if (params.group !== undefined) changes.group = params.group;

    let updated: VirtualMachine | undefined;
    const changedMeanwhile = (now: VirtualMachine | undefined) =>
      now && now.state !== 'Stopped' ? stoppedFor('details') : new InvalidParameter(`The virtual machine ${vm.id} changed meanwhile; try again`);
    if (resources && (resources.cpuNumber !== vm.cpuNumber || resources.memoryMiB !== vm.memoryMiB || resources.cpuSpeed !== vm.cpuSpeed)) {
      try {
        updated = await writeStoppedWithResources(vm, { ...changes, ...resources }, settings, changedMeanwhile);
      } catch (error) {
        // verifyVmLimits answers a limit as an invalid parameter.
        if (error instanceof ResourceLimitExceeded) throw new InvalidParameter(error.message);
        throw error;
      }
    } else if (Object.keys(changes).length > 0) {
      const needsStopped = ['displayName', 'name', 'osTypeId', 'details'].some((field) => field in changes);
      updated = await updateVmRecord(vm.id, changes, needsStopped ? ['Stopped'] : [vm.state]);
      if (!updated) throw changedMeanwhile(await getVmConsistent(vm.id));
    } else {
      updated = vm;
    }
    return {
      body: { virtualmachine: await renderVmFor(updated, viewerOf(caller)) },
      events: [completedEvent('VM.UPDATE', 'updating Vm', { id: vm.id, type: RESOURCE_TYPE }, `Vm Id: ${vm.id}`)],
    };
  },
});

// ---- changeServiceForVirtualMachine, scaleVirtualMachine ----

const changeServiceForVirtualMachineCommand = defineCommand({
  name: 'changeServiceForVirtualMachine',
  description:
    '(This API is deprecated, use scaleVirtualMachine API)Changes the service offering for a virtual machine. The virtual machine must be in a "Stopped" state for this command to take effect.',
  params: {
    id: param.uuid('The ID of the virtual machine'),
    serviceofferingid: param.uuid('the service offering ID to apply to the virtual machine'),
    details: param.map('name value pairs of custom parameters for cpuspeed, memory and cpunumber. example details[i].name=value').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    const api = 'changeServiceForVirtualMachine';
    const vm = await editedVm(api, params.id, caller);
    if (vm.state !== 'Stopped') throw notStoppedForUpgrade(vm);
    const changes = await planOfferingChange(api, vm, params.serviceofferingid, params.details, settings, isRootAdmin(caller));
    const updated = await applyOfferingChange(vm, changes, settings);
    return {
      body: { virtualmachine: await renderVmFor(updated, viewerOf(caller)) },
      events: [completedEvent('VM.UPGRADE', 'upgrading Vm', { id: vm.id, type: RESOURCE_TYPE }, `Vm Id: ${vm.id}`)],
    };
  },
});

const scaleVirtualMachineCommand = defineCommand({
  name: 'scaleVirtualMachine',
  description:
    'Scales the virtual machine to a new service offering. This command also considers the volume size in the service offering or disk offering linked to the new service offering and apply all characteristics to the root volume. Mold: Stopped VMs only (no dynamic scaling on KVM); the root volume keeps its size.',
  params: {
    id: param.uuid('The ID of the virtual machine'),
    serviceofferingid: param.uuid('the ID of the service offering for the virtual machine'),
    details: param.map('name value pairs of custom parameters for cpuspeed, memory and cpunumber. example details[i].name=value').optional(),
  },
  roles: ALL_ROLES,
  isasync: true,
  handler: async ({ params, caller, settings }) => {
    const api = 'scaleVirtualMachine';
    const vm = await editedVm(api, params.id, caller);
    if (vm.state === 'Running') throw new InvalidParameter('Scaling the VM dynamically is not supported for VMs running on Hypervisor [KVM].');
    if (vm.state !== 'Stopped') throw notStoppedForUpgrade(vm);
    const changes = await planOfferingChange(api, vm, params.serviceofferingid, params.details, settings, isRootAdmin(caller));
    return startAsync(caller, {
      cmd: api,
      stateMachine: STATE_MACHINE,
      input: { op: 'scale', vmId: vm.id, viewer: viewerOf(caller), args: { serviceOfferingId: changes.serviceOfferingId, details: params.details ?? [] } },
      instanceType: RESOURCE_TYPE,
      instanceId: vm.id,
      event: {
        type: 'VM.UPGRADE',
        description: `Upgrading Instance with ID: ${vm.id} to service offering with ID: ${changes.serviceOfferingId}`,
        resourceId: vm.id,
        resourceType: RESOURCE_TYPE,
      },
    });
  },
});

// ---- resetSSHKeyForVirtualMachine ----

export const notStoppedForKeyReset = (vm: VirtualMachine) => new InvalidParameter(`Vm ${describeVm(vm)} should be stopped to do SSH Key reset`);

const resetSSHKeyForVirtualMachineCommand = defineCommand({
  name: 'resetSSHKeyForVirtualMachine',
  description:
    'Resets the SSH Key for virtual machine. The virtual machine must be in a "Stopped" state. [async] Mold: the keys are those of the VM\'s owner (or of account/domainid); the next start\'s config drive carries them.',
  params: {
    id: param.uuid('The ID of the virtual machine'),
    keypair: param.string('name of the ssh key pair used to login to the virtual machine').optional(),
    keypairs: param.list(param.string('key pair name'), 'names of the ssh key pairs to be used to login to the virtual machine').optional(),
    account: param.string('an optional account for the ssh key. Must be used with domainId.').optional(),
    domainid: param.uuid('an optional domainId for the virtual machine. If the account parameter is used, domainId must also be used.').optional(),
  },
  roles: ALL_ROLES,
  isasync: true,
  handler: async ({ params, caller }) => {
    const api = 'resetSSHKeyForVirtualMachine';
    const vm = await editedVm(api, params.id, caller);
    // Whose keys: account/domainid when given (upstream's finalizeOwner), else the VM's owner's.
    let keyOwner: Account;
    if (params.account !== undefined || params.domainid !== undefined) {
      if (params.account === undefined) throw new InvalidParameter('Account and domainId are needed for resource creation (account)');
      const domain = params.domainid ? await resolveDomain(caller, params.domainid) : caller.domain;
      keyOwner = await resolveAccount(caller, domain, params.account);
    } else {
      keyOwner = await ownerOf(vm);
    }
    if (vm.state === 'Error' || vm.state === 'Expunging') throw new InvalidParameter('Vm with specified id is not in the right state');
    if (vm.state !== 'Stopped') throw notStoppedForKeyReset(vm);
    const names = [...new Set([...(params.keypairs ?? []), ...(params.keypair ? [params.keypair] : [])])];
    if (names.length === 0) throw new InvalidParameter("'keypair' or 'keyparis' must be specified");
    const publicKeys: Record<string, string> = {};
    for (const name of names) {
      const pair = await findKeyPairByName(keyOwner.id, name);
      if (!pair) throw new InvalidParameter(`Not all specified keyparis exist: account ${keyOwner.name} has no key pair named ${name} (keypair)`);
      publicKeys[pair.name] = pair.publicKey;
    }
    return startAsync(caller, {
      cmd: api,
      stateMachine: STATE_MACHINE,
      input: { op: 'resetSSHKey', vmId: vm.id, viewer: viewerOf(caller), args: { publicKeys } },
      instanceType: RESOURCE_TYPE,
      instanceId: vm.id,
      event: { type: 'VM.RESETSSHKEY', description: `resetting SSHKey for vm: ${vm.id}`, resourceId: vm.id, resourceType: RESOURCE_TYPE },
    });
  },
});

// ---- getVirtualMachineUserData ----

const getVirtualMachineUserDataCommand = defineCommand({
  name: 'getVirtualMachineUserData',
  description: 'Returns user data associated with the VM',
  since: '4.4',
  params: { virtualmachineid: param.uuid('The ID of the virtual machine') },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const api = 'getVirtualMachineUserData';
    const vm = await vmParam(api, 'virtualmachineid', params.virtualmachineid, caller);
    if ((vm.state === 'Destroyed' || vm.state === 'Expunging') && !isRootAdmin(caller)) throw noSuchEntity(api, 'virtualmachineid', params.virtualmachineid);
    return { body: { virtualmachineuserdata: { virtualmachineid: vm.id, ...(vm.userData !== undefined && { userdata: vm.userData }) } } };
  },
});

// ---- updateVMAffinityGroup ----

export const notStoppedForAffinity = (vm: VirtualMachine) =>
  new InvalidParameter(
    `Unable update affinity groups of the virtual machine ${describeVm(vm)} in state ${vm.state}; make sure the virtual machine is stopped and not in an error state before updating.`,
  );

/** The VM as updateVMAffinityGroup answers with it: upstream renders only its affinity groups (details=affgrp). */
export async function renderVmAffinity(vm: VirtualMachine, viewer: VmViewer): Promise<Record<string, unknown>> {
  const context = await loadVmRenderContext([vm], { fullView: viewer.rootAdmin, adminCaller: viewer.admin, details: ['affgrp'] });
  return renderVm(vm, context);
}

const updateVMAffinityGroupCommand = defineCommand({
  name: 'updateVMAffinityGroup',
  description:
    'Updates the affinity/anti-affinity group associations of a virtual machine. The VM has to be stopped and restarted for the new properties to take effect. Mold: the groups replace the VM\'s (none given: it leaves them all); they must be its owner\'s.',
  params: {
    id: param.uuid('The ID of the virtual machine'),
    affinitygroupids: param
      .list(param.uuid('affinity group id'), 'comma separated list of affinity groups id that are going to be applied to the virtual machine. Should be passed only when vm is created from a zone with Basic Network support. Mutually exclusive with securitygroupnames parameter')
      .optional(),
    affinitygroupnames: param
      .list(param.string('affinity group name'), 'comma separated list of affinity groups names that are going to be applied to the virtual machine. Should be passed only when vm is created from a zone with Basic Network support. Mutually exclusive with securitygroupids parameter')
      .optional(),
  },
  roles: ALL_ROLES,
  isasync: true,
  handler: async ({ params, caller }) => {
    const api = 'updateVMAffinityGroup';
    if (params.affinitygroupids?.length && params.affinitygroupnames?.length) {
      throw new InvalidParameter('affinitygroupids parameter is mutually exclusive with affinitygroupnames parameter');
    }
    const vm = await editedVm(api, params.id, caller);
    if (vm.state !== 'Stopped') throw notStoppedForAffinity(vm);
    const groups = await affinityGroupsOf(api, await ownerOf(vm), params.affinitygroupids, params.affinitygroupnames, caller);
    return startAsync(caller, {
      cmd: api,
      stateMachine: STATE_MACHINE,
      input: { op: 'affinityGroups', vmId: vm.id, viewer: viewerOf(caller), args: { groupIds: groups.map((group) => group.id) } },
      instanceType: 'AffinityGroup',
      event: { type: 'VM.AG.UPDATE', description: 'updating VM affinity group', resourceId: vm.id, resourceType: RESOURCE_TYPE },
    });
  },
});

export const vmEditCommands = [
  updateVirtualMachineCommand,
  changeServiceForVirtualMachineCommand,
  scaleVirtualMachineCommand,
  resetSSHKeyForVirtualMachineCommand,
  getVirtualMachineUserDataCommand,
  updateVMAffinityGroupCommand,
];
