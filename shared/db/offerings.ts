// Compute (service) and disk offerings: what a VM or volume may be made with. Offerings belong to
// no account; `domainIds` scopes one to domains (and their subdomains), empty for public ones, and
// `zoneIds` to zones, empty for all. Deleting one makes it Inactive, as upstream does: it stays
// readable (VMs keep referring to it) but is no longer listed by default nor usable. Names need
// not be unique (upstream allows duplicates), so no guard items.
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../aws.ts';
import { getItem, isConditionFailure, queryIndex, tableName } from './items.ts';

export type OfferingState = 'Active' | 'Inactive';
export type StorageType = 'shared' | 'local';

interface OfferingBase {
  id: string;
  name: string;
  displaytext: string;
  /** Domains the offering is visible in (with their subdomains); empty: public. */
  domainIds: string[];
  /** Zones the offering may be used in; empty: all zones. */
  zoneIds: string[];
  storagetype: StorageType;
  provisioningtype: 'thin' | 'sparse' | 'fat';
  /** none (unset), writeback, writethrough or hypervisor_default. */
  cacheMode?: string;
  sortkey: number;
  state: OfferingState;
  /** yyyy-MM-dd'T'HH:mm:ss+0000 */
  created: string;
  /** ISO time with milliseconds: the listing order after sortkey. */
  createdAt: string;
}

export interface ServiceOffering extends OfferingBase {
  cpunumber?: number;
  cpuspeed?: number;
  /** MB */
  memory?: number;
  /** True when cpu number or memory is chosen at deploy time. */
  customized: boolean;
  /** Upstream's service offering details: mincpunumber, maxcpunumber, minmemory, maxmemory. */
  details: Record<string, string>;
  offerha: boolean;
  limitcpuuse: boolean;
  isvolatile: boolean;
  dynamicscalingenabled: boolean;
  hosttags?: string;
  /** Storage tags of the root disk. */
  storagetags?: string;
  /** GB */
  rootdisksize?: number;
  diskOfferingId?: string;
  diskofferingstrictness: boolean;
  encryptroot: boolean;
  purgeresources: boolean;
}

export interface DiskOffering extends OfferingBase {
  /** GB; 0 for a customized offering. */
  disksize: number;
  customized: boolean;
  tags?: string;
  displayoffering: boolean;
  disksizestrictness: boolean;
  encrypt: boolean;
}

export const offeringKey = {
  service: (id: string) => ({ pk: `SERVICEOFFERING#${id}`, sk: 'SERVICEOFFERING' }),
  disk: (id: string) => ({ pk: `DISKOFFERING#${id}`, sk: 'DISKOFFERING' }),
};

export const getServiceOffering = (id: string) => getItem<ServiceOffering>(offeringKey.service(id).pk, 'SERVICEOFFERING');
export const getDiskOffering = (id: string) => getItem<DiskOffering>(offeringKey.disk(id).pk, 'DISKOFFERING');

/** Every service offering (Active and Inactive), in creation order. */
export const listServiceOfferings = () => queryIndex<ServiceOffering>({ index: 'gsi1', partition: 'SERVICEOFFERINGS' });
/** Every disk offering (Active and Inactive), in creation order. */
export const listDiskOfferings = () => queryIndex<DiskOffering>({ index: 'gsi1', partition: 'DISKOFFERINGS' });

const serviceItem = (offering: ServiceOffering) => ({
  ...offeringKey.service(offering.id),
  gsi1pk: 'SERVICEOFFERINGS',
  gsi1sk: `${offering.createdAt}#${offering.id}`,
  ...offering,
});

const diskItem = (offering: DiskOffering) => ({
  ...offeringKey.disk(offering.id),
  gsi1pk: 'DISKOFFERINGS',
  gsi1sk: `${offering.createdAt}#${offering.id}`,
  ...offering,
});

export class OfferingGone extends Error {}

async function write(Item: Record<string, unknown>, exists: boolean): Promise<void> {
  try {
    await dynamo().send(
      new PutCommand({
        TableName: tableName(),
        Item,
        ConditionExpression: exists ? 'attribute_exists(pk)' : 'attribute_not_exists(pk)',
      }),
    );
  } catch (error) {
    if (isConditionFailure(error)) throw new OfferingGone(String(Item.id));
    throw error;
  }
}

export const putServiceOffering = (offering: ServiceOffering) => write(serviceItem(offering), false).then(() => offering);
export const replaceServiceOffering = (offering: ServiceOffering) => write(serviceItem(offering), true).then(() => offering);
export const putDiskOffering = (offering: DiskOffering) => write(diskItem(offering), false).then(() => offering);
export const replaceDiskOffering = (offering: DiskOffering) => write(diskItem(offering), true).then(() => offering);

/**
 * Whether an offering scoped to `domainIds` is visible to someone in the domain at `tree`: public
 * offerings are, and so are those of the caller's domain or any domain above it.
 */
export function visibleInDomain(offering: Pick<OfferingBase, 'domainIds'>, tree: string): boolean {
  if (offering.domainIds.length === 0) return true;
  return offering.domainIds.some((id) => tree.includes(`/${id}/`));
}

/** Whether the offering may be used in the zone (no zones: all of them). */
export function usableInZone(offering: Pick<OfferingBase, 'zoneIds'>, zoneId: string): boolean {
  return offering.zoneIds.length === 0 || offering.zoneIds.includes(zoneId);
}
