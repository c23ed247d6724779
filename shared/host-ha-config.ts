// Host HA's configuration on the records (upstream's HAConfig for a host, and its cluster and zone
// switches): what the host HA commands write and the sweeper's host HA pass reads.
import type { Cluster, Zone } from './db/infrastructure.ts';
import type { HaState } from './host-ha.ts';

/** A host's HA configuration (`ha` on its record); `state` and `since` are the reconciler's. */
export interface HostHaConfig {
  provider: 'kvmhaprovider';
  enabled: boolean;
  state?: HaState;
  /** When `state` was entered (ISO 8601). */
  since?: string;
  /** Power OFFs started in the current Fencing spell. */
  fenceAttempts?: number;
}

/** Host HA acts on the host: enabled for it, and not switched off for its cluster or zone. */
export const hostHaEnabled = (host: { ha?: HostHaConfig }, cluster: Pick<Cluster, 'haenabled'> | undefined, zone: Pick<Zone, 'haenabled'> | undefined) =>
  host.ha?.enabled === true && cluster?.haenabled !== false && zone?.haenabled !== false;
