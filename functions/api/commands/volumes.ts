// Volumes (upstream's CreateVolumeCmd, AttachVolumeCmd, DetachVolumeCmd, ResizeVolumeCmd,
// DeleteVolumeCmd and ListVolumesCmd over VolumeApiServiceImpl), and the VolumeResponse renderer.
//
// A data volume is a record only (Allocated, no pool, no file) until it is first attached to a VM
// whose root disk has a pool: it is then placed on that pool and its file made there (on a running
// VM by the agent's attachDisk, on a stopped one by the next startVm). Every call checks its input
// here and refuses as upstream does, changing nothing; the async ones then claim the volume (`busy`,
// one operation at a time) and start their state machine (statemachines/volume-*.asl.json, steps in
// functions/tasks/volumes.ts), which gives back whatever it took when the agent fails.
//
// What a volume holds: its owner's `volume` and `primary_storage` counts from createVolume (or
// deploy, for a root volume) until it is deleted; its bytes on its pool (`poolReserved`) from its
// placement until its file is deleted.
import { randomUUID } from 'node:crypto';
import { InvalidParameter, PermissionDenied, ResourceUnavailable, UnsupportedAction } from '../../../shared/cloudstack/errors.ts';
import { listParams, param, scopeParams } from '../../../shared/cloudstack/params.ts';
import { listBody } from '../../../shared/cloudstack/render.ts';
import { getAccount, getDomain, type Account, type Domain } from '../../../shared/db/identity.ts';
import { getZone } from '../../../shared/db/infrastructure.ts';
import { BYTES_PER_GIB, releaseResources, reserveResources } from '../../../shared/db/limits.ts';
import { getDiskOffering, getServiceOffering, usableInZone, visibleInDomain, type DiskOffering } from '../../../shared/db/offerings.ts';
import { getStoragePool } from '../../../shared/db/storage.ts';
import { getTemplate } from '../../../shared/db/templates.ts';
import { deleteVolumeRecord, getVm, getVolume, listVolumeRecords, listVolumesOfVm, putVolume, updateVolumeIf, volumeResources, type VirtualMachine, type Volume } from '../../../shared/db/vms.ts';
import { cloudstackDate } from '../../../shared/db/jobs.ts';
import { startJob } from '../../../shared/orchestration.ts';
import { actorOf } from '../actor.ts';
import { startAsync } from '../async.ts';
import { ALL_ROLES, completedEvent, defineCommand, type Caller } from '../command.ts';
import { matchesKeyword, page } from '../paging.ts';
import { checkAccess, isDomainAdmin, isRootAdmin, ownedScope, resolveAccount, resolveDomain } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';
import type { Settings } from '../../../shared/settings.ts';
import { hostReaching } from '../../tasks/vms.ts';

const RESOURCE_TYPE = 'Volume';

/** Upstream's custom.diskoffering.size.min / .max defaults (GB). */
const CUSTOM_DISK_MIN_GIB = 1;
const CUSTOM_DISK_MAX_GIB = 1024;
/** vdb … vdz: device ids 1 to 25 (0 is the root disk). */
const MAX_DEVICE_ID = 25;
/** KVM's max_data_volumes_limit (hypervisor_capabilities). */
const MAX_DATA_VOLUMES = 24;

export interface VolumeViewer {
  rootAdmin: boolean;
  admin: boolean;
}
export const volumeViewerOf = (caller: Caller): VolumeViewer => ({ rootAdmin: isRootAdmin(caller), admin: isRootAdmin(caller) || isDomainAdmin(caller) });

// ---- rendering (VolumeResponse) ----

/** Reads each record a page of volumes refers to once. */
class Lookups {
  private readonly cache = new Map<string, Promise<unknown>>();
  private get<T>(key: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    if (!this.cache.has(key)) this.cache.set(key, load());
    return this.cache.get(key) as Promise<T | undefined>;
  }
  zone = (id: string) => this.get(`z${id}`, () => getZone(id));
  account = (id: string) => this.get<Account>(`a${id}`, () => getAccount(id));
  domain = (id: string) => this.get<Domain>(`d${id}`, () => getDomain(id));
  vm = (id: string) => this.get<VirtualMachine>(`v${id}`, () => getVm(id));
  diskOffering = (id: string) => this.get(`o${id}`, () => getDiskOffering(id));
  serviceOffering = (id: string) => this.get(`s${id}`, () => getServiceOffering(id));
  template = (id: string) => this.get(`t${id}`, () => getTemplate(id));
  pool = (id: string) => this.get(`p${id}`, () => getStoragePool(id));
}

async function renderVolume(volume: Volume, viewer: VolumeViewer, lookups: Lookups): Promise<Record<string, unknown>> {
  const [zone, account, domain, vm, offering, pool] = await Promise.all([
    lookups.zone(volume.zoneId),
    lookups.account(volume.accountId),
    lookups.domain(volume.domainId),
    volume.vmId ? lookups.vm(volume.vmId) : undefined,
    typeof volume.diskOfferingId === 'string' ? lookups.diskOffering(volume.diskOfferingId) : undefined,
    volume.poolId ? lookups.pool(volume.poolId) : undefined,
  ]);
  const template = volume.type === 'ROOT' && volume.templateId ? await lookups.template(volume.templateId) : undefined;
  const service = volume.type === 'ROOT' && vm ? await lookups.serviceOffering(vm.serviceOfferingId) : undefined;
  const placed = Boolean(volume.poolReserved);
  return {
    id: volume.id,
    name: volume.name,
    zoneid: volume.zoneId,
    ...(zone && { zonename: zone.name }),
    type: volume.type,
    ...(vm && volume.deviceId !== undefined && { deviceid: volume.deviceId }),
    ...(vm && {
      virtualmachineid: vm.id,
      vmname: vm.instanceName,
      vmdisplayname: vm.displayName,
      vmstate: vm.state,
      vmtype: 'User',
    }),
    provisioningtype: offering?.provisioningtype ?? 'thin',
    size: volume.sizeBytes,
    created: volume.created,
    state: volume.state,
    account: account?.name,
    domainid: volume.domainId,
    ...(domain && { domain: domain.name, domainpath: domain.path }),
    storagetype: offering?.storagetype ?? 'shared',
    hypervisor: placed ? 'KVM' : 'None',
    ...(offering && { diskofferingid: offering.id, diskofferingname: offering.name, diskofferingdisplaytext: offering.displaytext }),
    ...(service && { serviceofferingid: service.id, serviceofferingname: service.name, serviceofferingdisplaytext: service.displaytext }),
    ...(template && { templateid: template.id, templatename: template.name, templatedisplaytext: template.displaytext }),
    ...(viewer.rootAdmin && pool && { storageid: pool.id, storage: pool.name, clusterid: pool.clusterId, podid: pool.podId }),
    ...(viewer.rootAdmin && placed && { path: volume.path.split('/').pop() }),
    ...(typeof volume.attached === 'string' && { attached: volume.attached }),
    destroyed: volume.state === 'Destroy',
    isextractable: volume.type === 'DATADISK',
    displayvolume: true,
    quiescevm: false,
    supportsstoragesnapshot: false,
    hasannotations: false,
    deleteprotection: false,
  };
}

export async function renderVolumeFor(volume: Volume, viewer: VolumeViewer): Promise<Record<string, unknown>> {
  return renderVolume(volume, viewer, new Lookups());
}

// ---- helpers ----

async function volumeParam(api: string, name: string, id: string, caller: Caller): Promise<Volume> {
  const volume = await getVolume(id.toLowerCase());
  if (!volume || volume.state === 'Expunged' || volume.deleting) throw noSuchEntity(api, name, id);
  checkAccess(caller, volume, `volume ${volume.id}`);
  return volume;
}

async function vmParam(api: string, name: string, id: string, caller: Caller): Promise<VirtualMachine> {
  const vm = await getVm(id.toLowerCase());
  if (!vm || vm.state === 'Expunging') throw noSuchEntity(api, name, id);
  checkAccess(caller, vm, `VM ${vm.id}`);
  return vm;
}

const busyText = (volume: Volume) => `Volume ${volume.name} (${volume.id}) is busy with another operation; try again when it is over`;

/** Upstream's validateRootVolumeDetachAttach (a KVM VM). */
function checkRootDetachAttach(vm: VirtualMachine) {
  if (vm.state !== 'Stopped') throw new InvalidParameter('Root volume detach can happen only when vm is in states: Stopped or Destroyed');
}

// ---- disk offerings and sizes (createVolume; deployVirtualMachine's data disk) ----

/** ` (name)` when the refusal is to name its parameter (deployVirtualMachine), nothing for createVolume's texts. */
const naming = (name?: string) => (name ? ` (${name})` : '');

/** A size asked for (GB) must be positive. */
export function checkDiskSizeParam(sizeGiB: number | undefined, name?: string): void {
  if (sizeGiB !== undefined && sizeGiB <= 0) throw new InvalidParameter(`Disk size must be larger than 0${naming(name)}`);
}

/** The active disk offering by id. */
export async function diskOfferingParam(id: string, name?: string): Promise<DiskOffering> {
  const offering = await getDiskOffering(id.toLowerCase());
  if (!offering || offering.state !== 'Active') throw new InvalidParameter(`Please specify a valid disk offering.${naming(name)}`);
  return offering;
}

/** A customized offering needs a size within custom.diskoffering.size.min/max; a fixed one takes none. */
export function checkCustomSize(offering: DiskOffering, sizeGiB: number | undefined, name?: string): void {
  if (offering.customized) {
    if (sizeGiB === undefined) throw new InvalidParameter(`This disk offering requires a custom size specified${naming(name)}`);
    if (sizeGiB < CUSTOM_DISK_MIN_GIB || sizeGiB > CUSTOM_DISK_MAX_GIB) {
      throw new InvalidParameter(`Volume size: ${sizeGiB} GB is out of allowed range. Min: ${CUSTOM_DISK_MIN_GIB}. Max: ${CUSTOM_DISK_MAX_GIB}${naming(name)}`);
    }
  } else if (sizeGiB !== undefined) {
    throw new InvalidParameter(`This disk offering does not allow custom size${naming(name)}`);
  }
}

/** The owner may use the offering (its domains) in the zone (its zones). */
export function checkDiskOfferingAccess(offering: DiskOffering, caller: Caller, account: Account, domain: Pick<Domain, 'tree'>, zoneId: string): void {
  if (!isRootAdmin(caller) && !visibleInDomain(offering, domain.tree)) {
    throw new PermissionDenied(`Account ${account.name} does not have access to disk offering ${offering.id} (diskofferingid)`);
  }
  if (!usableInZone(offering, zoneId)) throw new InvalidParameter(`Disk offering ${offering.id} (diskofferingid) is not available in zone ${zoneId}`);
}

/** The volume's bytes: the offering's size, else the size asked for; at least 1 GB, at most storage.max.volume.size. */
export function diskBytesOf(offering: DiskOffering, sizeGiB: number | undefined, settings: Settings, name?: string): number {
  const bytes = offering.disksize > 0 ? offering.disksize * BYTES_PER_GIB : (sizeGiB ?? 0) * BYTES_PER_GIB;
  const maxGiB = settings.number('storage.max.volume.size');
  if (bytes < BYTES_PER_GIB) throw new InvalidParameter(`Please specify a size of at least 1 GB.${naming(name)}`);
  if (bytes > maxGiB * BYTES_PER_GIB) throw new InvalidParameter(`Requested volume size is ${(bytes / BYTES_PER_GIB).toFixed(2)} GB, but the maximum size allowed is ${maxGiB} GB.${naming(name)}`);
  return bytes;
}

/** A volume command's job: its state machine over the volume, with its event. */
function startVolumeJob(caller: Caller, api: string, stateMachine: string, volumeId: string, eventType: string, description: string, input: Record<string, unknown> = {}, withId = false) {
  return startAsync(caller, {
    cmd: api,
    stateMachine,
    input: { volumeId, ...input, viewer: volumeViewerOf(caller) },
    instanceType: RESOURCE_TYPE,
    instanceId: volumeId,
    withId,
    event: { type: eventType, description, resourceId: volumeId, resourceType: RESOURCE_TYPE },
  });
}

// ---- createVolume ----

const createVolumeCommand = defineCommand({
  name: 'createVolume',
  description:
    'Creates a disk volume from a disk offering. This disk volume must still be attached to  an Instance to make use of it. Mold: a record until it is first attached; then its qcow2 file is made on the primary storage of the VM\'s root disk.',
  params: {
    account: param.string('The Account associated with the disk volume. Must be used with the domainId parameter.').optional(),
    domainid: param
      .uuid('The domain ID associated with the disk offering. If used with the Account parameter returns the disk volume associated with the Account for the specified domain.If account is NOT provided then the volume will be assigned to the caller Account and domain.')
      .optional(),
    diskofferingid: param.uuid('The ID of the disk offering. Either diskOfferingId or snapshotId must be passed in.').optional(),
    name: param.string('The name of the disk volume').optional(),
    size: param.long('Arbitrary volume size').optional(),
    snapshotid: param.uuid('The Snapshot ID for the disk volume. Either diskOfferingId or snapshotId must be passed in.').optional(),
    zoneid: param.uuid('The ID of the availability zone').optional(),
    displayvolume: param.boolean('An optional field, whether to display the volume to the end User or not.').optional(),
  },
  roles: ALL_ROLES,
  isasync: true,
  handler: async ({ params, caller, settings }) => {
    const api = 'createVolume';
    let account = caller.account;
    let domain = caller.domain;
    if (params.account !== undefined || params.domainid !== undefined) {
      if (params.account === undefined) throw new InvalidParameter('Account and domainId are needed for resource creation (account)');
      domain = params.domainid ? await resolveDomain(caller, params.domainid) : caller.domain;
      account = await resolveAccount(caller, domain, params.account);
    }
    if (account.state === 'disabled' || account.state === 'locked') throw new PermissionDenied(`The owner of the volume is disabled: Acct[${account.id}-${account.name}]`);
    if (params.displayvolume !== undefined && !isRootAdmin(caller)) throw new PermissionDenied('Cannot update parameter displayvolume, only admin permitted ');
    if (params.snapshotid !== undefined) throw noSuchEntity(api, 'snapshotid', params.snapshotid);
    if (params.diskofferingid === undefined) throw new InvalidParameter('At least one of disk Offering ID or snapshot ID must be passed whilst creating volume');
    checkDiskSizeParam(params.size);
    const offering = await diskOfferingParam(params.diskofferingid);
    checkCustomSize(offering, params.size);
    if (params.zoneid === undefined) throw new InvalidParameter('Unable to find zone by id null (zoneid)');
    const zone = await getZone(params.zoneid.toLowerCase());
    if (!zone) throw noSuchEntity(api, 'zoneid', params.zoneid);
    checkDiskOfferingAccess(offering, caller, account, domain, zone.id);
    const bytes = diskBytesOf(offering, params.size, settings);
    if (zone.allocationstate === 'Disabled' && !isRootAdmin(caller)) throw new PermissionDenied(`Cannot perform this operation, Zone is currently disabled: ${zone.id}`);

    await reserveResources(account, volumeResources({ sizeBytes: bytes }), { settings });
    const volume: Volume = {
      id: randomUUID(),
      name: params.name?.trim() ? params.name : randomUUID(),
      type: 'DATADISK',
      zoneId: zone.id,
      poolId: '',
      path: '',
      sizeBytes: bytes,
      accountId: account.id,
      domainId: domain.id,
      domainTree: domain.tree,
      state: 'Allocated',
      created: cloudstackDate(),
      diskOfferingId: offering.id,
    };
    try {
      await putVolume(volume);
    } catch (error) {
      await releaseResources(account, volumeResources(volume));
      throw error;
    }
    return startVolumeJob(caller, api, 'volume-create', volume.id, 'VOLUME.CREATE', `Creating volume: ${volume.name}`, {}, true);
  },
});

// ---- attachVolume ----

const attachVolumeCommand = defineCommand({
  name: 'attachVolume',
  description: 'Attaches a disk volume to  an Instance. Mold: to a running VM live (hot-plugged through libvirt on its host); to a stopped one at its next start.',
  params: {
    deviceid: param
      .long('The ID of the device to map the volume to the guest OS. If no deviceID is informed, the next available deviceID will be chosen. Use 0 when volume needs to be attached as ROOT. Mold (KVM): 1 maps to /dev/vdb, 2 to /dev/vdc and so on.')
      .optional(),
    id: param.uuid('The ID of the disk volume'),
    virtualmachineid: param.uuid('    the ID of the Instance'),
  },
  roles: ALL_ROLES,
  isasync: true,
  handler: async ({ params, caller }) => {
    const api = 'attachVolume';
    const volume = await getVolume(params.id.toLowerCase());
    if (!volume || volume.state === 'Expunged' || volume.deleting) throw new InvalidParameter('Please specify a volume with the valid type: ROOT or DATADISK');
    if (volume.vmId) throw new InvalidParameter('Please specify a volume that is not attached to any VM.');
    if (volume.state === 'Destroy') throw new InvalidParameter('Please specify a volume that is not destroyed.');
    const vm = await getVm(params.virtualmachineid.toLowerCase());
    if (!vm || vm.state === 'Expunging') throw new InvalidParameter('Please specify a valid User VM.');
    if (vm.state !== 'Running' && vm.state !== 'Stopped') throw new InvalidParameter('Please specify a VM that is either running or stopped.');
    if (vm.zoneId !== volume.zoneId) throw new InvalidParameter('Please specify a VM that is in the same zone as the volume.');
    const attached = (await listVolumesOfVm(vm.id)).filter((v) => v.vmId === vm.id);
    if (params.deviceid === 0) {
      checkRootDetachAttach(vm);
      throw new InvalidParameter('Vm already has root volume attached to it');
    }
    if (attached.filter((v) => v.type === 'DATADISK').length >= MAX_DATA_VOLUMES) {
      throw new InvalidParameter(`The specified VM already has the maximum number of data disks (${MAX_DATA_VOLUMES}) attached. Please specify another VM.`);
    }
    checkAccess(caller, volume, `volume ${volume.id}`);
    checkAccess(caller, vm, `VM ${vm.id}`);
    if (volume.state !== 'Allocated' && volume.state !== 'Ready') throw new InvalidParameter('Volume state must be in Allocated, Ready or in Uploaded state');
    if (volume.busy) throw new InvalidParameter(busyText(volume));
    // Device ids taken: attached disks and attaches under way to this VM.
    const taken = new Set(attached.map((v) => v.deviceId ?? 0));
    let deviceId = params.deviceid;
    if (deviceId !== undefined) {
      if (deviceId < 1 || deviceId > MAX_DEVICE_ID) throw new InvalidParameter(`deviceId should be 1 ~ ${MAX_DEVICE_ID} (deviceid)`);
      if (taken.has(deviceId)) throw new InvalidParameter(`deviceId ${deviceId} is used by vm ${vm.id} (deviceid)`);
    } else {
      deviceId = 1;
      while (taken.has(deviceId)) deviceId++;
    }
    const token = randomUUID();
    const claimed = await updateVolumeIf(volume.id, { busy: undefined, vmId: undefined, state: volume.state }, { busy: token, pendingVmId: vm.id, pendingDeviceId: deviceId });
    if (!claimed) throw new InvalidParameter(busyText(volume));
    try {
      return await startVolumeJob(caller, api, 'volume-attach', volume.id, 'VOLUME.ATTACH', `attaching volume: ${volume.id} to vm: ${vm.id}`, { token });
    } catch (error) {
      await updateVolumeIf(volume.id, { busy: token }, { busy: undefined, pendingVmId: undefined, pendingDeviceId: undefined });
      throw error;
    }
  },
});

// ---- detachVolume ----

const detachVolumeCommand = defineCommand({
  name: 'detachVolume',
  description: 'Detaches a disk volume from an Instance. Mold: from a running VM live (the guest must release it); from a stopped one in the records.',
  params: {
    id: param.uuid(' The ID of the disk volume').optional(),
    deviceid: param.long('The device ID on the Instance where volume is detached from').optional(),
    virtualmachineid: param.uuid('The ID of the Instance where the volume is detached from').optional(),
  },
  roles: ALL_ROLES,
  isasync: true,
  handler: async ({ params, caller }) => {
    const api = 'detachVolume';
    const { id, deviceid, virtualmachineid } = params;
    if ((id === undefined && deviceid === undefined && virtualmachineid === undefined) || (id !== undefined && (deviceid !== undefined || virtualmachineid !== undefined)) || (id === undefined && (deviceid === undefined || virtualmachineid === undefined))) {
      throw new InvalidParameter('Please provide either a volume id, or a tuple(device id, instance id)');
    }
    let volume: Volume | undefined;
    if (id !== undefined) {
      volume = await getVolume(id.toLowerCase());
    } else {
      const vm = await vmParam(api, 'virtualmachineid', virtualmachineid!, caller);
      volume = (await listVolumesOfVm(vm.id)).find((v) => v.vmId === vm.id && v.deviceId === deviceid);
    }
    if (!volume || volume.state === 'Expunged' || volume.deleting) throw new InvalidParameter(`Unable to find volume with ID: ${id ?? `(device ${deviceid} of ${virtualmachineid})`}`);
    checkAccess(caller, volume, `volume ${volume.id}`);
    if (!volume.vmId) throw new InvalidParameter('The specified volume is not attached to a VM.');
    const vm = await getVm(volume.vmId);
    if (!vm || (vm.state !== 'Running' && vm.state !== 'Stopped' && vm.state !== 'Destroyed')) throw new InvalidParameter('Please specify a VM that is either running or stopped.');
    if (volume.type === 'ROOT') {
      checkRootDetachAttach(vm);
      throw new InvalidParameter(`Root volume detach is not supported by Mold: the root volume ${volume.id} stays with VM ${vm.id} until it is expunged`);
    }
    if (volume.busy) throw new InvalidParameter(busyText(volume));
    const token = randomUUID();
    const claimed = await updateVolumeIf(volume.id, { busy: undefined, vmId: vm.id }, { busy: token });
    if (!claimed) throw new InvalidParameter(busyText(volume));
    const description = `Detaching volume: ${volume.id}${deviceid !== undefined && virtualmachineid !== undefined ? ` with device id: ${deviceid} from Instance: ${vm.id}` : ''}`;
    try {
      return await startVolumeJob(caller, api, 'volume-detach', volume.id, 'VOLUME.DETACH', description, { token });
    } catch (error) {
      await updateVolumeIf(volume.id, { busy: token }, { busy: undefined });
      throw error;
    }
  },
});

// ---- resizeVolume ----

const resizeVolumeCommand = defineCommand({
  name: 'resizeVolume',
  description: 'Resizes a volume. Mold: a disk a running VM holds grows live (virsh blockresize); any other with qemu-img resize through a host of its pool.',
  params: {
    id: param.uuid('the ID of the disk volume'),
    size: param.long('New volume size in GB').optional(),
    shrinkok: param.boolean('Verify OK to Shrink').optional(),
    diskofferingid: param.uuid('new disk offering id').optional(),
  },
  roles: ALL_ROLES,
  isasync: true,
  handler: async ({ params, caller, settings }) => {
    const api = 'resizeVolume';
    const volume = await getVolume(params.id.toLowerCase());
    if (!volume || volume.state === 'Expunged' || volume.deleting) throw new InvalidParameter(`Unable to find volume by id=${params.id}`);
    const owner = await getAccount(volume.accountId);
    if (owner?.state === 'disabled') throw new PermissionDenied(`The owner of volume ${volume.id}  is disabled: Acct[${owner.id}-${owner.name}]`);
    checkAccess(caller, volume, `volume ${volume.id}`);
    // Upstream answers the checks of resizeVolume as UNSUPPORTED_ACTION_ERROR (432).
    const refuse = (text: string) => new UnsupportedAction(text);
    if (params.diskofferingid !== undefined) throw refuse('Mold does not change a volume\'s disk offering yet: resize it with size (diskofferingid)');
    if (volume.state !== 'Ready' && volume.state !== 'Allocated') {
      throw refuse(`Volume should be in ready or allocated state before attempting a resize. Volume ${volume.id} is in state ${volume.state}.`);
    }
    const offering: DiskOffering | undefined = typeof volume.diskOfferingId === 'string' ? await getDiskOffering(volume.diskOfferingId) : undefined;
    let newSize = volume.sizeBytes;
    if (params.size !== undefined) {
      if (offering?.disksizestrictness) throw refuse(`Resize of volume ${volume.id} is not allowed, since disk size is strictly fixed as per the disk offering`);
      if (offering?.customized && (params.size < CUSTOM_DISK_MIN_GIB || params.size > CUSTOM_DISK_MAX_GIB)) {
        throw refuse(`Volume size: ${params.size} GB is out of allowed range. Min: ${CUSTOM_DISK_MIN_GIB}. Max: ${CUSTOM_DISK_MAX_GIB}`);
      }
      if (volume.type === 'ROOT' && volume.vmId) {
        const vm = await getVm(volume.vmId);
        const service = vm ? await getServiceOffering(vm.serviceOfferingId) : undefined;
        if (service?.rootdisksize) {
          throw refuse(
            'Failed to resize Root volume. The service offering of this Volume has been configured with a root disk size; on such case a Root Volume can only be resized when changing to another Service Offering with a Root disk size. For more details please check out the Official Resizing Volumes documentation.',
          );
        }
      }
      newSize = params.size * BYTES_PER_GIB;
    }
    if (newSize !== volume.sizeBytes) {
      const maxGiB = settings.number('storage.max.volume.size');
      if (newSize < BYTES_PER_GIB) throw refuse('Please specify a size of at least 1 GB.');
      if (newSize > maxGiB * BYTES_PER_GIB) throw refuse(`Requested volume size is ${(newSize / BYTES_PER_GIB).toFixed(2)} GB, but the maximum size allowed is ${maxGiB} GB.`);
      if (volume.sizeBytes > newSize && !params.shrinkok) {
        throw refuse(`Going from existing size of ${volume.sizeBytes} to size of ${newSize} would shrink the volume.Need to sign off by supplying the shrinkok parameter with value of true.`);
      }
    }
    if (volume.busy) throw new InvalidParameter(busyText(volume));
    const growth = Math.max(0, newSize - volume.sizeBytes);
    if (growth > 0) await reserveResources(volume.accountId, { primary_storage: growth }, { settings });
    const token = randomUUID();
    const claimed = await updateVolumeIf(volume.id, { busy: undefined, state: volume.state, sizeBytes: volume.sizeBytes }, { busy: token, pendingSize: newSize, limitDelta: growth, shrinkOk: Boolean(params.shrinkok) });
    if (!claimed) {
      if (growth > 0) await releaseResources(volume.accountId, { primary_storage: growth });
      throw new InvalidParameter(busyText(volume));
    }
    const description = params.size !== undefined ? `Volume Id: ${volume.id} to size ${params.size} GB` : `Volume Id: ${volume.id}`;
    try {
      return await startVolumeJob(caller, api, 'volume-resize', volume.id, 'VOLUME.RESIZE', description, { token });
    } catch (error) {
      await updateVolumeIf(volume.id, { busy: token }, { busy: undefined, pendingSize: undefined, limitDelta: undefined, shrinkOk: undefined });
      if (growth > 0) await releaseResources(volume.accountId, { primary_storage: growth });
      throw error;
    }
  },
});

// ---- deleteVolume ----

const deleteVolumeCommand = defineCommand({
  name: 'deleteVolume',
  description: 'Deletes a detached disk volume. Mold: its file is removed from primary storage through a host of its pool right after the answer.',
  params: { id: param.uuid('The ID of the disk volume') },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const api = 'deleteVolume';
    const volume = await getVolume(params.id.toLowerCase());
    if (!volume || volume.state === 'Expunged' || volume.deleting) throw new InvalidParameter(`Unable to find volume with ID: ${params.id}`);
    if (volume.vmId) throw new InvalidParameter('Please specify a volume that is not attached to any VM.');
    checkAccess(caller, volume, `volume ${volume.id}`);
    if (volume.busy) throw new InvalidParameter(busyText(volume));
    const counted = volume.state !== 'Destroy';
    const event = completedEvent('VOLUME.DELETE', 'deleting volume', { id: volume.id, type: RESOURCE_TYPE }, `Volume Id: ${volume.id}`);
    if (!volume.poolReserved) {
      // Never placed: no file anywhere, only the record.
      const claimed = await updateVolumeIf(volume.id, { busy: undefined, vmId: undefined, poolReserved: undefined }, { busy: 'delete', state: 'Expunged' });
      if (!claimed) throw new InvalidParameter(busyText(volume));
      await deleteVolumeRecord(volume.id);
      if (counted) await releaseResources(volume.accountId, volumeResources(volume));
      return { body: { success: true }, events: [event] };
    }
    const pool = await getStoragePool(volume.poolId);
    if (pool && !(await hostReaching(pool))) {
      throw new ResourceUnavailable(`No Up host with an agent reaches primary storage pool ${pool.name} (${pool.id}) to delete volume ${volume.name}; try again when one is Up`);
    }
    const token = randomUUID();
    const claimed = await updateVolumeIf(volume.id, { busy: undefined, vmId: undefined }, { busy: token, deleting: true, state: 'Destroy' });
    if (!claimed) throw new InvalidParameter(busyText(volume));
    if (counted) await releaseResources(volume.accountId, volumeResources(volume));
    try {
      await startJob(
        { cmd: api, actor: actorOf(caller), jobinstancetype: RESOURCE_TYPE, jobinstanceid: volume.id },
        'volume-delete',
        { volumeId: volume.id, token, viewer: volumeViewerOf(caller) },
      );
    } catch (error) {
      await updateVolumeIf(volume.id, { busy: token }, { busy: undefined, deleting: undefined, state: volume.state });
      if (counted) await reserveResources(volume.accountId, volumeResources(volume)).catch(() => undefined);
      throw error;
    }
    return { body: { success: true }, events: [event] };
  },
});

// ---- listVolumes ----

const listVolumesCommand = defineCommand({
  name: 'listVolumes',
  description: 'Lists all volumes.',
  params: {
    ...listParams,
    ...scopeParams,
    id: param.uuid('The ID of the disk volume').optional(),
    ids: param.list(param.uuid('volume id'), 'the IDs of the volumes, mutually exclusive with id').optional(),
    name: param.string('The name of the disk volume').optional(),
    type: param.string('The type of disk volume').optional(),
    virtualmachineid: param.uuid('The ID of the Instance').optional(),
    zoneid: param.uuid('The ID of the availability zone').optional(),
    state: param.string('State of the volume. Possible values are: Ready, Allocated, Destroy, Expunging, Expunged.').optional(),
    diskofferingid: param.uuid('List volumes by disk offering').optional(),
    storageid: param.string('The ID of the storage pool, available to ROOT admin only').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    if (params.id !== undefined && params.ids !== undefined) throw new InvalidParameter('Specify either id or ids but not both parameters');
    const scope = await ownedScope(caller, params);
    const viewer = volumeViewerOf(caller);
    const ids = params.id !== undefined ? [params.id.toLowerCase()] : params.ids?.map((id) => id.toLowerCase());
    const type = params.type?.toUpperCase();
    const records = await listVolumeRecords({ domainTree: scope.tree, accountId: scope.accountId });
    const matches = records
      .filter((v) => (scope.recursive || scope.accountId ? true : v.domainTree === scope.tree))
      .filter((v) => v.state !== 'Expunged' && !v.deleting && (viewer.rootAdmin || v.state !== 'Destroy'))
      .filter((v) => !ids || ids.includes(v.id))
      .filter((v) => params.name === undefined || v.name === params.name)
      .filter((v) => type === undefined || v.type === type)
      .filter((v) => params.virtualmachineid === undefined || v.vmId === params.virtualmachineid.toLowerCase())
      .filter((v) => params.zoneid === undefined || v.zoneId === params.zoneid.toLowerCase())
      .filter((v) => params.state === undefined || v.state.toLowerCase() === params.state.toLowerCase())
      .filter((v) => params.diskofferingid === undefined || v.diskOfferingId === params.diskofferingid.toLowerCase())
      .filter((v) => params.storageid === undefined || (viewer.rootAdmin && v.poolId === params.storageid.toLowerCase()))
      .filter((v) => matchesKeyword(params.keyword, v.name));
    const lookups = new Lookups();
    const rows = await Promise.all(page(matches, params, settings).map((v) => renderVolume(v, viewer, lookups)));
    return { body: listBody('volume', rows, matches.length) };
  },
});

export const volumeCommands = [createVolumeCommand, attachVolumeCommand, detachVolumeCommand, resizeVolumeCommand, deleteVolumeCommand, listVolumesCommand];
