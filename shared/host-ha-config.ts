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

/**
 * Upstream's HA providers for hosts (HAManagerImpl's map, keyed by the class name in lower case):
 * Mold's hosts are KVM, so the KVM provider alone. `name` is the class name that
 * listHostHAProviders shows and the UI offers; configureHAForHost takes it in any case.
 */
export const HOST_HA_PROVIDERS = { kvmhaprovider: { name: 'KVMHAProvider', hypervisor: 'KVM' } } as const;
export type HostHaProvider = keyof typeof HOST_HA_PROVIDERS;

/** The provider `value` names (any case), as upstream's haProviderMap.get(value.toLowerCase()). */
export function hostHaProvider(value: string): HostHaProvider | undefined {
  const key = value.toLowerCase();
  return Object.hasOwn(HOST_HA_PROVIDERS, key) ? (key as HostHaProvider) : undefined;
}

/**
 * Upstream's HostHAResponse built from a host's HA configuration, as listHosts embeds it (`hostha`)
 * and listHostHAResources lists it: none reads as disabled, state Disabled; a state the reconciler
 * has not set yet reads Disabled too (upstream's setHaState(null)).
 */
export function renderHostHa(host: { ha?: HostHaConfig }) {
  if (!host.ha) return { haenable: false, hastate: 'Disabled' as HaState };
  return { haenable: host.ha.enabled, hastate: host.ha.state ?? ('Disabled' as HaState), haprovider: host.ha.provider };
}

/** Upstream's refusal to enable or disable HA on a host that has no provider configured. */
export const haNotConfigured = (hostId: string) => `HAProvider is not provided for the resource [${hostId}], failing configuration.`;
