// Physical networks, the built-in network offerings, guest networks and their VLAN IP ranges.
//
// Keys:
//   PHYSNET#<id> / PHYSNET          a physical network; gsi1 PHYSICALNETWORKS / <created>#<id>
//   PHYSNETVLAN#<physnet>#<vlan>    guard: the VLAN is taken by a network on that physical network
//   NETWORK#<id> / NETWORK          a guest network; gsi1 NETWORKS / <created>#<id>
//   VLANRANGE#<id> / VLANRANGE      an IP range of a network; gsi1 VLANRANGES, gsi2 NETWORKRANGES#<network>
//
// Races are closed with conditions: a network is created only while its physical network's VLAN
// ranges are the ones it was checked against (`vlanVersion`), and the physical network counts its
// networks (`networkCount`), so neither a range in use nor a physical network in use can go away
// under a concurrent create. A network's ranges change only at the `rangesVersion` they were
// checked at, so two overlapping ranges never both land.
import { DeleteCommand, GetCommand, PutCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../aws.ts';
import { type Range, type VlanTag } from '../cloudstack/ip.ts';
import { addZoneContentCheck, contentsOf, type Zone } from './infrastructure.ts';
import { isConditionFailure, queryIndex, tableName } from './items.ts';

export interface PhysicalNetwork {
  id: string;
  name: string;
  zoneId: string;
  state: 'Enabled' | 'Disabled';
  vlanRanges: Range[];
  isolationmethods: string[];
  broadcastdomainrange: 'ZONE' | 'POD';
  tags: string[];
  networkspeed?: string;
  domainId?: string;
  created: string;
  /** Bumped whenever vlanRanges change. */
  vlanVersion: number;
  /** Guest networks on this physical network. */
  networkCount: number;
}

export interface Network {
  id: string;
  name: string;
  displaytext: string;
  zoneId: string;
  physicalNetworkId: string;
  networkOfferingId: string;
  guestiptype: 'Shared';
  vlan: VlanTag;
  gateway: string;
  netmask: string;
  cidr: string;
  acltype: 'Domain' | 'Account';
  domainId: string;
  domainTree: string;
  accountId?: string;
  subdomainaccess?: boolean;
  networkdomain?: string;
  state: 'Setup' | 'Allocated' | 'Implemented';
  created: string;
  /** Bumped whenever an IP range is added. */
  rangesVersion: number;
  /** Set while a deletion checks that nothing is allocated; allocations back off. */
  deleting?: boolean;
}

export interface VlanIpRange {
  id: string;
  networkId: string;
  zoneId: string;
  physicalNetworkId: string;
  vlan: VlanTag;
  gateway: string;
  netmask: string;
  cidr: string;
  startip: string;
  endip: string;
  domainId: string;
  accountId?: string;
  created: string;
  deleting?: boolean;
}

export const networkKeys = {
  physicalNetwork: (id: string) => ({ pk: `PHYSNET#${id}`, sk: 'PHYSNET' }),
  vlanGuard: (physicalNetworkId: string, vlan: VlanTag) => ({ pk: `PHYSNETVLAN#${physicalNetworkId}#${vlan}`, sk: 'GUARD' }),
  network: (id: string) => ({ pk: `NETWORK#${id}`, sk: 'NETWORK' }),
  range: (id: string) => ({ pk: `VLANRANGE#${id}`, sk: 'VLANRANGE' }),
};

/** A condition of the write failed: someone changed the record since it was read. */
export class ConcurrentChange extends Error {}

async function consistentGet<T>(key: { pk: string; sk: string }): Promise<T | undefined> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: key, ConsistentRead: true }));
  if (!Item) return undefined;
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _s1, gsi2pk: _g2, gsi2sk: _s2, ...record } = Item;
  return record as T;
}

async function write(send: () => Promise<unknown>): Promise<void> {
  try {
    await send();
  } catch (error) {
    if (isConditionFailure(error)) throw new ConcurrentChange();
    throw error;
  }
}

// ---- physical networks ----

const physicalNetworkItem = (network: PhysicalNetwork) => ({
  ...networkKeys.physicalNetwork(network.id),
  gsi1pk: 'PHYSICALNETWORKS',
  gsi1sk: `${network.created}#${network.id}`,
  ...network,
});

export const getPhysicalNetwork = (id: string) => consistentGet<PhysicalNetwork>(networkKeys.physicalNetwork(id));

export const listPhysicalNetworks = () => queryIndex<PhysicalNetwork>({ index: 'gsi1', partition: 'PHYSICALNETWORKS' });

export async function putPhysicalNetwork(network: PhysicalNetwork): Promise<void> {
  await dynamo().send(new PutCommand({ TableName: tableName(), Item: physicalNetworkItem(network), ConditionExpression: 'attribute_not_exists(pk)' }));
}

/** Writes the changed physical network if neither its ranges nor its networks changed since `read`. */
export async function replacePhysicalNetwork(read: PhysicalNetwork, updated: PhysicalNetwork): Promise<void> {
  await write(() =>
    dynamo().send(
      new PutCommand({
        TableName: tableName(),
        Item: physicalNetworkItem(updated),
        ConditionExpression: 'vlanVersion = :v AND networkCount = :n',
        ExpressionAttributeValues: { ':v': read.vlanVersion, ':n': read.networkCount },
      }),
    ),
  );
}

/** Deletes it while no network uses it; ConcurrentChange otherwise. */
export async function deletePhysicalNetworkRecord(network: PhysicalNetwork): Promise<void> {
  await write(() =>
    dynamo().send(
      new DeleteCommand({
        TableName: tableName(),
        Key: networkKeys.physicalNetwork(network.id),
        ConditionExpression: 'networkCount = :zero',
        ExpressionAttributeValues: { ':zero': 0 },
      }),
    ),
  );
}

// ---- network offerings (built in, as upstream's ConfigurationServerImpl creates them) ----

export interface NetworkOffering {
  id: string;
  name: string;
  displaytext: string;
  guestiptype: 'Shared' | 'Isolated' | 'L2';
  traffictype: 'Guest';
  specifyvlan: boolean;
  specifyipranges: boolean;
  availability: 'Optional' | 'Required';
  conservemode: boolean;
  egressdefaultpolicy: boolean;
  ispersistent: boolean;
  services: { name: string; provider: string }[];
  networkrate?: number;
  /** Mold can create networks from it now. */
  usable: boolean;
  created: string;
}

const VR = 'VirtualRouter';
const svc = (provider: string, ...names: string[]) => names.map((name) => ({ name, provider }));

export const NETWORK_OFFERINGS: readonly NetworkOffering[] = [
  {
    id: '6b2f3c1e-5c1a-4a8e-9a0e-2f1d6c1a0001',
    name: 'DefaultSharedNetworkOfferingWithSGService',
    displaytext: 'Offering for Shared Security group enabled networks',
    guestiptype: 'Shared',
    traffictype: 'Guest',
    specifyvlan: true,
    specifyipranges: true,
    availability: 'Optional',
    conservemode: true,
    egressdefaultpolicy: true,
    ispersistent: false,
    services: [...svc(VR, 'Dhcp', 'Dns', 'UserData'), ...svc('SecurityGroupProvider', 'SecurityGroup')],
    usable: false,
    created: '2024-01-01T00:00:00+0000',
  },
  {
    id: '6b2f3c1e-5c1a-4a8e-9a0e-2f1d6c1a0002',
    name: 'DefaultSharedNetworkOffering',
    displaytext: 'Offering for Shared networks',
    guestiptype: 'Shared',
    traffictype: 'Guest',
    specifyvlan: true,
    specifyipranges: true,
    availability: 'Optional',
    conservemode: true,
    egressdefaultpolicy: true,
    ispersistent: false,
    services: svc(VR, 'Dhcp', 'Dns', 'UserData'),
    usable: true,
    created: '2024-01-01T00:00:00+0000',
  },
  {
    id: '6b2f3c1e-5c1a-4a8e-9a0e-2f1d6c1a0003',
    name: 'DefaultIsolatedNetworkOfferingWithSourceNatService',
    displaytext: 'Offering for Isolated networks with Source Nat service enabled',
    guestiptype: 'Isolated',
    traffictype: 'Guest',
    specifyvlan: false,
    specifyipranges: false,
    availability: 'Required',
    conservemode: true,
    egressdefaultpolicy: true,
    ispersistent: false,
    services: svc(VR, 'Dhcp', 'Dns', 'UserData', 'Firewall', 'Gateway', 'Lb', 'SourceNat', 'StaticNat', 'PortForwarding', 'Vpn'),
    usable: false,
    created: '2024-01-01T00:00:00+0000',
  },
  {
    id: '6b2f3c1e-5c1a-4a8e-9a0e-2f1d6c1a0004',
    name: 'DefaultIsolatedNetworkOffering',
    displaytext: 'Offering for Isolated networks with no Source Nat service',
    guestiptype: 'Isolated',
    traffictype: 'Guest',
    specifyvlan: true,
    specifyipranges: true,
    availability: 'Optional',
    conservemode: true,
    egressdefaultpolicy: true,
    ispersistent: false,
    services: svc(VR, 'Dhcp', 'Dns', 'UserData'),
    usable: false,
    created: '2024-01-01T00:00:00+0000',
  },
  {
    id: '6b2f3c1e-5c1a-4a8e-9a0e-2f1d6c1a0005',
    name: 'DefaultL2NetworkOffering',
    displaytext: 'Offering for L2 networks',
    guestiptype: 'L2',
    traffictype: 'Guest',
    specifyvlan: false,
    specifyipranges: false,
    availability: 'Optional',
    conservemode: true,
    egressdefaultpolicy: true,
    ispersistent: false,
    services: [],
    usable: false,
    created: '2024-01-01T00:00:00+0000',
  },
];

export const getNetworkOffering = (id: string) => NETWORK_OFFERINGS.find((offering) => offering.id === id);

// ---- networks ----

const networkItem = (network: Network) => ({ ...networkKeys.network(network.id), gsi1pk: 'NETWORKS', gsi1sk: `${network.created}#${network.id}`, ...network });

const rangeItem = (range: VlanIpRange) => ({
  ...networkKeys.range(range.id),
  gsi1pk: 'VLANRANGES',
  gsi1sk: `${range.created}#${range.id}`,
  gsi2pk: `NETWORKRANGES#${range.networkId}`,
  gsi2sk: `${range.created}#${range.id}`,
  ...range,
});

export const getNetwork = (id: string) => consistentGet<Network>(networkKeys.network(id));
export const getVlanIpRange = (id: string) => consistentGet<VlanIpRange>(networkKeys.range(id));

export const listNetworks = () => queryIndex<Network>({ index: 'gsi1', partition: 'NETWORKS' });
export const listVlanIpRanges = () => queryIndex<VlanIpRange>({ index: 'gsi1', partition: 'VLANRANGES' });
export const listRangesOfNetwork = (networkId: string) => queryIndex<VlanIpRange>({ index: 'gsi2', partition: `NETWORKRANGES#${networkId}` });

/**
 * The network with its first IP range, its VLAN claimed on the physical network, and the physical
 * network's count of networks raised, in one transaction: it lands only if the VLAN is free and
 * the physical network's ranges are still those of `physical` (ConcurrentChange otherwise).
 */
export async function createNetworkRecord(network: Network, firstRange: VlanIpRange, physical: PhysicalNetwork): Promise<void> {
  const table = tableName();
  await write(() =>
    dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: table, Item: networkItem(network), ConditionExpression: 'attribute_not_exists(pk)' } },
          { Put: { TableName: table, Item: rangeItem(firstRange), ConditionExpression: 'attribute_not_exists(pk)' } },
          {
            Put: {
              TableName: table,
              Item: { ...networkKeys.vlanGuard(physical.id, network.vlan), networkId: network.id },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
          {
            Update: {
              TableName: table,
              Key: networkKeys.physicalNetwork(physical.id),
              UpdateExpression: 'SET networkCount = networkCount + :one',
              ConditionExpression: 'attribute_exists(pk) AND vlanVersion = :v',
              ExpressionAttributeValues: { ':one': 1, ':v': physical.vlanVersion },
            },
          },
        ],
      }),
    ),
  );
}

export async function updateNetworkRecord(network: Network, changes: Partial<Pick<Network, 'name' | 'displaytext'>>): Promise<Network> {
  const updated = { ...network, ...changes };
  await write(() =>
    dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: networkKeys.network(network.id),
        UpdateExpression: 'SET #name = :name, displaytext = :text',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#name': 'name' },
        ExpressionAttributeValues: { ':name': updated.name, ':text': updated.displaytext },
      }),
    ),
  );
  return updated;
}

/** Marks (or unmarks) a network or range as being deleted; false when it is gone or already marked. */
export async function markDeleting(key: { pk: string; sk: string }, deleting: boolean): Promise<boolean> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: key,
        ...(deleting
          ? { UpdateExpression: 'SET deleting = :t', ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(deleting)', ExpressionAttributeValues: { ':t': true } }
          : { UpdateExpression: 'REMOVE deleting', ConditionExpression: 'attribute_exists(pk)' }),
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

/** The network, its ranges and its VLAN guard go; its physical network counts one network less. */
export async function deleteNetworkRecords(network: Network, ranges: readonly VlanIpRange[]): Promise<void> {
  const table = tableName();
  await dynamo().send(
    new TransactWriteCommand({
      TransactItems: [
        { Delete: { TableName: table, Key: networkKeys.network(network.id) } },
        ...ranges.map((range) => ({ Delete: { TableName: table, Key: networkKeys.range(range.id) } })),
        { Delete: { TableName: table, Key: networkKeys.vlanGuard(network.physicalNetworkId, network.vlan) } },
        {
          Update: {
            TableName: table,
            Key: networkKeys.physicalNetwork(network.physicalNetworkId),
            UpdateExpression: 'SET networkCount = networkCount - :one',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeValues: { ':one': 1 },
          },
        },
      ],
    }),
  );
}

/** Adds a range to a network if no other range was added since the network was read. */
export async function addVlanIpRange(network: Network, range: VlanIpRange): Promise<void> {
  const table = tableName();
  await write(() =>
    dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: table, Item: rangeItem(range), ConditionExpression: 'attribute_not_exists(pk)' } },
          {
            Update: {
              TableName: table,
              Key: networkKeys.network(network.id),
              UpdateExpression: 'SET rangesVersion = rangesVersion + :one',
              ConditionExpression: 'attribute_exists(pk) AND rangesVersion = :v AND attribute_not_exists(deleting)',
              ExpressionAttributeValues: { ':one': 1, ':v': network.rangesVersion },
            },
          },
        ],
      }),
    ),
  );
}

export async function deleteVlanIpRangeRecord(range: VlanIpRange): Promise<void> {
  await dynamo().send(new DeleteCommand({ TableName: tableName(), Key: networkKeys.range(range.id) }));
}

/** Every range of a network, read from the table itself (not an index), so it is current. */
export async function currentRangesOfNetwork(networkId: string): Promise<VlanIpRange[]> {
  const listed = await listRangesOfNetwork(networkId);
  const current = await Promise.all(listed.map((range) => getVlanIpRange(range.id)));
  return current.filter((range): range is VlanIpRange => range !== undefined);
}

// A zone with physical networks is not empty (upstream's checkIfZoneIsDeletable).
addZoneContentCheck(async (zone: Zone) =>
  contentsOf('there are physical networks in this zone', (await listPhysicalNetworks()).filter((n) => n.zoneId === zone.id).map((n) => n.name)),
);
