// Zones, pods and clusters: where hosts, storage and networks live. A pod belongs to a zone, a
// cluster to a pod; each carries an allocation state, and nothing is placed in a disabled one.
import { getItem, queryIndex } from './items.ts';

export type AllocationState = 'Enabled' | 'Disabled';

export interface Zone {
  id: string;
  name: string;
  networktype: 'Basic' | 'Advanced';
  allocationstate: AllocationState;
  created: string;
  [field: string]: unknown;
}

export interface Pod {
  id: string;
  name: string;
  zoneId: string;
  allocationstate: AllocationState;
  [field: string]: unknown;
}

export interface Cluster {
  id: string;
  name: string;
  zoneId: string;
  podId: string;
  allocationstate: AllocationState;
  [field: string]: unknown;
}

export const zoneKey = (id: string) => ({ pk: `ZONE#${id}`, sk: 'ZONE' });
export const podKey = (id: string) => ({ pk: `POD#${id}`, sk: 'POD' });
export const clusterKey = (id: string) => ({ pk: `CLUSTER#${id}`, sk: 'CLUSTER' });

export const getZone = (id: string) => getItem<Zone>(zoneKey(id).pk, 'ZONE');
export const getPod = (id: string) => getItem<Pod>(podKey(id).pk, 'POD');
export const getCluster = (id: string) => getItem<Cluster>(clusterKey(id).pk, 'CLUSTER');

/** Every zone, by name. */
export const listZones = () => queryIndex<Zone>({ index: 'gsi1', partition: 'ZONES' });
