// Pods (upstream's CreatePodCmd, ListPodsByCmd, UpdatePodCmd, DeletePodCmd): a rack's management
// subnet in a zone, with the range of addresses reserved for Mold's own use. A pod's range lies in
// its gateway's subnet, leaves the gateway out, and overlaps no other pod's range in the zone.
import { InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { broadcastOf, cidrOf, formatIpv4, inCidr, ipRange, isIpv4, netmaskPrefix, parseCidr, parseIpv4, rangesOverlap } from '../../../shared/cloudstack/ip.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { createPod, deletePodRecord, Gone, listPods, listZones, NameInUse, NotEmpty, podContents, updatePod, type Pod, type Zone } from '../../../shared/db/infrastructure.ts';
import { ADMINS, completedEvent, defineCommand } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { allocationState, byName, INFRA_READERS, inUse, podParam, zoneParam } from './zones.ts';

/** Upstream's PodResponse (4.20): the range both as `ipranges` and the deprecated parallel lists. */
export function renderPod(pod: Pod, zoneName: string | undefined) {
  const ranges = pod.startip ? [{ startip: pod.startip, endip: pod.endip, forsystemvms: '0', vlanid: 'untagged' }] : [];
  return {
    id: pod.id,
    name: pod.name,
    zoneid: pod.zoneId,
    zonename: zoneName,
    gateway: pod.gateway,
    netmask: pod.netmask,
    ipranges: ranges,
    startip: ranges.map((range) => range.startip),
    endip: ranges.map((range) => range.endip),
    forsystemvms: ranges.map((range) => range.forsystemvms),
    vlanid: ranges.map((range) => range.vlanid),
    allocationstate: pod.allocationstate,
    hasannotations: false,
  };
}

const duplicatePod = (name: string, zone: Zone) =>
  new InvalidParameter(`A pod with name: ${name} already exists in zone ${zone.id}. Please specify a different pod name. `);

interface Addressing {
  gateway: string;
  netmask: string;
  startip: string;
  endip?: string;
}

/**
 * Upstream's createPod/checkPodAttributes checks, in its order and words; then the range must not
 * overlap another pod's range in the zone. Returns the range with its end filled in.
 */
export function checkPodAddressing(fields: Addressing, others: Pod[]): Required<Addressing> {
  if (!isIpv4(fields.gateway)) throw new InvalidParameter('The gateway is invalid');
  const prefix = netmaskPrefix(fields.netmask);
  if (prefix === undefined || prefix === 0) throw new InvalidParameter('The netmask is invalid');
  const { startip } = fields;
  if (!isIpv4(startip)) throw new InvalidParameter('The start address of the IP range is not a valid IP address.');
  if (fields.endip !== undefined && !isIpv4(fields.endip)) throw new InvalidParameter('The end address of the IP range is not a valid IP address.');
  const subnet = parseCidr(cidrOf(fields.gateway, fields.netmask))!;
  if (!inCidr(startip, subnet)) throw new InvalidParameter('The start address of the IP range is not in the CIDR subnet.');
  if (fields.endip !== undefined && !inCidr(fields.endip, subnet)) throw new InvalidParameter('The end address of the IP range is not in the CIDR subnet.');
  // Without an end, the range runs to the subnet's last host address (getIpRangeEndIpFromCidr).
  const endip = fields.endip ?? formatIpv4(broadcastOf(subnet) - 1);
  const range = ipRange(startip, endip)!;
  if (range.start > range.end) throw new InvalidParameter('The start IP address must have a lower value than the end IP address.');
  const gateway = parseIpv4(fields.gateway)!;
  if (rangesOverlap(range, { start: gateway, end: gateway })) throw new InvalidParameter("The gateway shouldn't overlap start/end ip addresses");
  for (const other of others) {
    const theirs = other.startip && other.endip ? ipRange(other.startip, other.endip) : undefined;
    if (theirs && rangesOverlap(range, theirs)) {
      throw new InvalidParameter(`The IP range ${startip}-${endip} overlaps with the IP range ${other.startip}-${other.endip} of pod ${other.name}`);
    }
  }
  return { gateway: fields.gateway, netmask: fields.netmask, startip, endip };
}

async function zoneNames(): Promise<Map<string, string>> {
  return new Map((await listZones()).map((zone) => [zone.id, zone.name]));
}

const createPodCommand = defineCommand({
  name: 'createPod',
  description: 'Creates a new Pod.',
  params: {
    name: param.string('the name of the Pod'),
    zoneid: param.uuid('the Zone ID in which the Pod will be created'),
    gateway: param.string('the gateway for the Pod'),
    netmask: param.string('the netmask for the Pod'),
    startip: param.string('the starting IP address for the Pod'),
    endip: param.string('the ending IP address for the Pod').optional(),
    allocationstate: param.string('Allocation state of this Pod for allocation of new resources').optional(),
  },
  roles: ADMINS,
  handler: async ({ params }) => {
    const zone = await zoneParam('createPod', 'zoneid', params.zoneid);
    const inZone = await listPods({ zoneId: zone.id });
    if (inZone.some((pod) => pod.name.toLowerCase() === params.name.toLowerCase())) throw duplicatePod(params.name, zone);
    const addressing = checkPodAddressing(params, inZone);
    const state = allocationState(params.allocationstate) ?? 'Enabled';
    const pod = await createPod(zone, { name: params.name, allocationstate: state, ...addressing }).catch((error) => {
      if (error instanceof NameInUse) throw duplicatePod(params.name, zone);
      if (error instanceof Gone) throw new InvalidParameter('Please specify a valid zone.');
      throw error;
    });
    return {
      body: { pod: renderPod(pod, zone.name) },
      events: [completedEvent('POD.CREATE', 'creating pod', { id: pod.id, type: 'Pod' }, `Pod Name: ${pod.name}`)],
    };
  },
});

const listPodsCommand = defineCommand({
  name: 'listPods',
  description: 'Lists all Pods.',
  params: {
    id: param.uuid('list Pods by ID').optional(),
    name: param.string('list Pods by name').optional(),
    zoneid: param.uuid('list Pods by Zone ID').optional(),
    allocationstate: param.string('list pods by allocation state').optional(),
    showcapacities: param.boolean('flag to display the capacity of the pods').optional(),
    ...listParams,
  },
  roles: INFRA_READERS,
  handler: async ({ params, settings }) => {
    const matches = (await listPods({ zoneId: params.zoneid?.toLowerCase() }))
      .filter((pod) => !params.id || pod.id === params.id.toLowerCase())
      .filter((pod) => params.name === undefined || pod.name.toLowerCase() === params.name.toLowerCase())
      .filter((pod) => params.allocationstate === undefined || pod.allocationstate.toLowerCase() === params.allocationstate.toLowerCase())
      .filter((pod) => matchesKeyword(params.keyword, pod.name))
      .sort(byName);
    const zones = await zoneNames();
    return { body: listResponse('pod', matches, params, settings, (pod) => renderPod(pod, zones.get(pod.zoneId))) };
  },
});

const updatePodCommand = defineCommand({
  name: 'updatePod',
  description: 'Updates a Pod.',
  params: {
    id: param.uuid('the ID of the Pod'),
    name: param.string('the name of the Pod').optional(),
    gateway: param.string('the gateway for the Pod').optional(),
    netmask: param.string('the netmask of the Pod').optional(),
    startip: param.string('the starting IP address for the Pod').optional(),
    endip: param.string('the ending IP address for the Pod').optional(),
    allocationstate: param.string('Allocation state of this cluster for allocation of new resources').optional(),
  },
  roles: ADMINS,
  handler: async ({ params }) => {
    const pod = await podParam('updatePod', 'id', params.id);
    const zone = await zoneParam('updatePod', 'id', pod.zoneId);
    const others = (await listPods({ zoneId: pod.zoneId })).filter((other) => other.id !== pod.id);
    if (params.name !== undefined && others.some((other) => other.name.toLowerCase() === params.name!.toLowerCase())) {
      throw duplicatePod(params.name, zone);
    }
    const readdressed = [params.gateway, params.netmask, params.startip, params.endip].some((value) => value !== undefined);
    const addressing = readdressed
      ? checkPodAddressing(
          {
            gateway: params.gateway ?? pod.gateway ?? '',
            netmask: params.netmask ?? pod.netmask ?? '',
            startip: params.startip ?? pod.startip ?? '',
            // A new start or subnet without an end runs to the subnet's end, as on creation.
            endip: params.endip ?? (params.startip === undefined && params.gateway === undefined && params.netmask === undefined ? pod.endip : undefined),
          },
          others,
        )
      : {};
    const state = allocationState(params.allocationstate);
    const updated = await updatePod(pod, {
      ...(params.name !== undefined && { name: params.name }),
      ...addressing,
      ...(state !== undefined && { allocationstate: state }),
    }).catch((error) => {
      throw error instanceof NameInUse ? duplicatePod(params.name!, zone) : error;
    });
    return {
      body: { pod: renderPod(updated, zone.name) },
      events: [completedEvent('POD.EDIT', 'updating pod', { id: pod.id, type: 'Pod' }, `Pod Id: ${pod.id}`)],
    };
  },
});

const deletePodCommand = defineCommand({
  name: 'deletePod',
  description: 'Deletes a Pod.',
  params: {
    id: param.uuid('the ID of the Pod'),
  },
  roles: ADMINS,
  handler: async ({ params }) => {
    const pod = await podParam('deletePod', 'id', params.id);
    const prefix = 'The pod cannot be deleted because ';
    const contents = await podContents(pod);
    if (contents) throw inUse(prefix, contents);
    await deletePodRecord(pod).catch(async (error) => {
      throw error instanceof NotEmpty ? inUse(prefix, await podContents(pod)) : error;
    });
    return {
      body: { success: true },
      events: [completedEvent('POD.DELETE', 'deleting pod', { id: pod.id, type: 'Pod' }, `Pod Id: ${pod.id}`)],
    };
  },
});

export const podCommands = [createPodCommand, listPodsCommand, updatePodCommand, deletePodCommand];
