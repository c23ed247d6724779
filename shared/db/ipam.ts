// IP address management for guest networks: one item per allocated address, keyed by network and
// address and written with attribute_not_exists, so an address is never handed out twice, even by
// concurrent callers.
//
//   NETADDR#<network> / IP#<8 hex digits>   an allocated address (a strongly consistent query lists
//                                            a network's addresses, or those of one range)
//
// Allocation writes first and checks after: once its address item is in, it re-reads the network
// and the range (consistently); if either is gone or being deleted it takes the address back and
// tries elsewhere. Deletions mark the network or range first and then look for addresses, so an
// allocation and a deletion can never both succeed.
import { DeleteCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../aws.ts';
import { InsufficientCapacity, InvalidParameter } from '../cloudstack/errors.ts';
import { formatIpv4, ipRange, ipSortKey, parseIpv4, type Range } from '../cloudstack/ip.ts';
import { isConditionFailure, tableName } from './items.ts';
import { cloudstackDate } from './jobs.ts';
import { getNetwork, getVlanIpRange, listRangesOfNetwork, type VlanIpRange } from './networks.ts';

export interface AllocatedAddress {
  networkId: string;
  rangeId: string;
  ipaddress: string;
  allocated: string;
  /** The VM it was allocated for (absent on addresses allocated before addresses named their VM). */
  vmId?: string;
}

export const addressKey = (networkId: string, address: number) => ({ pk: `NETADDR#${networkId}`, sk: `IP#${ipSortKey(address)}` });

/** Upstream's InsufficientAddressCapacityException (533, cserrorcode 4320). */
export const insufficientAddressCapacity = () => new InsufficientCapacity('Insufficient address capacity', 4320);

/** The addresses allocated in a network (optionally within one address range), in address order. */
export async function listAllocatedAddresses(networkId: string, within?: Range): Promise<AllocatedAddress[]> {
  const found: AllocatedAddress[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new QueryCommand({
        TableName: tableName(),
        ConsistentRead: true,
        KeyConditionExpression: within ? 'pk = :pk AND sk BETWEEN :from AND :to' : 'pk = :pk AND begins_with(sk, :ip)',
        ExpressionAttributeValues: within
          ? { ':pk': `NETADDR#${networkId}`, ':from': `IP#${ipSortKey(within.start)}`, ':to': `IP#${ipSortKey(within.end)}` }
          : { ':pk': `NETADDR#${networkId}`, ':ip': 'IP#' },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) {
      found.push({ networkId: item.networkId, rangeId: item.rangeId, ipaddress: item.ipaddress, allocated: item.allocated, ...(item.vmId && { vmId: item.vmId }) });
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return found;
}

export async function countAllocatedAddresses(networkId: string, within?: Range): Promise<number> {
  return (await listAllocatedAddresses(networkId, within)).length;
}

/** Claims one address item; false when it is already taken. */
async function claim(networkId: string, rangeId: string, address: number, allocated: string, vmId: string | undefined): Promise<boolean> {
  try {
    await dynamo().send(
      new PutCommand({
        TableName: tableName(),
        Item: { ...addressKey(networkId, address), networkId, rangeId, ipaddress: formatIpv4(address), allocated, ...(vmId && { vmId }) },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

async function unclaim(networkId: string, address: number): Promise<void> {
  await dynamo().send(new DeleteCommand({ TableName: tableName(), Key: addressKey(networkId, address) }));
}

interface Candidate {
  address: number;
  range: VlanIpRange;
}

/** Every address of the usable ranges but the gateway and those already allocated. */
function freeCandidates(ranges: readonly VlanIpRange[], taken: ReadonlySet<number>): Candidate[] {
  const candidates: Candidate[] = [];
  for (const range of ranges) {
    const bounds = ipRange(range.startip, range.endip)!;
    const gateway = parseIpv4(range.gateway);
    for (let address = bounds.start; address <= bounds.end; address++) {
      if (address !== gateway && !taken.has(address)) candidates.push({ address, range });
    }
  }
  return candidates;
}

/**
 * Allocates a free address of the network (the preferred one if given). Throws upstream's
 * InsufficientAddressCapacityException when every address of its ranges is taken.
 */
export async function allocateAddress(networkId: string, options: { preferred?: string; vmId?: string } = {}): Promise<AllocatedAddress> {
  const network = await getNetwork(networkId);
  if (!network || network.deleting) throw new InvalidParameter(`Unable to find network by id ${networkId}`);
  const ranges = (await listRangesOfNetwork(networkId)).filter((range) => !range.deleting);
  const taken = new Set((await listAllocatedAddresses(networkId)).map((a) => parseIpv4(a.ipaddress)!));
  let candidates: Candidate[];
  if (options.preferred !== undefined) {
    const preferred = parseIpv4(options.preferred);
    if (preferred === undefined) throw new InvalidParameter(`Invalid format for the ipaddress parameter: ${options.preferred}`);
    const range = ranges.find((r) => {
      const bounds = ipRange(r.startip, r.endip)!;
      return preferred >= bounds.start && preferred <= bounds.end;
    });
    if (!range || preferred === parseIpv4(network.gateway)) {
      throw new InvalidParameter(`The IP address ${options.preferred} is not in the IP ranges of network ${network.name}`);
    }
    if (taken.has(preferred)) throw new InvalidParameter(`The IP address ${options.preferred} is already allocated in network ${network.name}`);
    candidates = [{ address: preferred, range }];
  } else {
    // Start at a random free address so concurrent callers rarely reach for the same one.
    const free = freeCandidates(ranges, taken);
    const offset = free.length ? Math.floor(Math.random() * free.length) : 0;
    candidates = [...free.slice(offset), ...free.slice(0, offset)];
  }
  const allocated = cloudstackDate();
  for (const { address, range } of candidates) {
    if (!(await claim(networkId, range.id, address, allocated, options.vmId))) continue;
    // Written first, checked after: a range or network being deleted does not keep the address.
    const [currentNetwork, currentRange] = await Promise.all([getNetwork(networkId), getVlanIpRange(range.id)]);
    if (!currentNetwork || currentNetwork.deleting) {
      await unclaim(networkId, address);
      throw new InvalidParameter(`Unable to find network by id ${networkId}`);
    }
    if (!currentRange || currentRange.deleting) {
      await unclaim(networkId, address);
      continue;
    }
    return { networkId, rangeId: range.id, ipaddress: formatIpv4(address), allocated, ...(options.vmId && { vmId: options.vmId }) };
  }
  if (options.preferred !== undefined) {
    throw new InvalidParameter(`The IP address ${options.preferred} is already allocated in network ${network.name}`);
  }
  throw insufficientAddressCapacity();
}

/**
 * Gives an address back; false when it was not allocated. With `as`, only while it is still that
 * allocation (the same VM, allocated at the same time): a repair never takes an address allocated again.
 */
export async function releaseAddress(networkId: string, ip: string, as?: Pick<AllocatedAddress, 'vmId' | 'allocated'>): Promise<boolean> {
  const address = parseIpv4(ip);
  if (address === undefined) throw new InvalidParameter(`Invalid format for the ipaddress parameter: ${ip}`);
  try {
    await dynamo().send(
      new DeleteCommand({
        TableName: tableName(),
        Key: addressKey(networkId, address),
        ...(as
          ? { ConditionExpression: 'vmId = :vm AND allocated = :allocated', ExpressionAttributeValues: { ':vm': as.vmId, ':allocated': as.allocated } }
          : { ConditionExpression: 'attribute_exists(pk)' }),
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}
