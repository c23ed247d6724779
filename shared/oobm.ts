// Out-of-band management (upstream's OutOfBandManagementService): a host's BMC configuration, the
// zone/cluster/host switches that enable it, its power-state machine and the `outofbandmanagement`
// response object. The BMC password is sealed to the host's agent when it is configured: no record,
// log or execution input holds it in the clear, and responses show it masked.
import type { OobmOptions, OobmTarget, SealedSecret } from './agent/protocol.ts';
import { ALERT_TYPES, createAlert } from './db/alerts.ts';
import type { Host } from './db/hosts.ts';
import type { Cluster, Zone } from './db/infrastructure.ts';
import type { Settings } from './settings.ts';

export const OOBM_DRIVERS = ['ipmitool', 'redfish'] as const;
export type OobmDriver = (typeof OOBM_DRIVERS)[number];

/** A host's BMC as configured (upstream's OutOfBandManagementVO). */
export interface OobmConfig {
  driver: OobmDriver;
  address: string;
  /** A string, as upstream keeps and shows it. */
  port: string;
  username: string;
  /** Sealed to the host's agent. */
  password: SealedSecret;
  enabled: boolean;
  /** New at each configure and password change: the agent's readings name the one they used. */
  configId?: string;
}

/** Upstream's OutOfBandManagement.PowerState. */
export const OOBM_POWER_STATES = ['On', 'Off', 'Unknown', 'Disabled'] as const;
export type OobmPowerState = (typeof OOBM_POWER_STATES)[number];
/** Upstream's PowerState.Event. */
export type OobmPowerEvent = 'On' | 'Off' | 'Unknown' | 'AuthError' | 'Disabled';

/**
 * Upstream's power-state machine: every state goes where the event says, an AuthError to Unknown.
 * Pure, so the table is the whole story.
 */
export function nextPowerState(event: OobmPowerEvent): OobmPowerState {
  return event === 'AuthError' ? 'Unknown' : event;
}

/** The event a BMC reading means (upstream's OutOfBandManagementDriverResponse.toEvent). */
export function readingEvent(reading: { powerState: 'On' | 'Off' | 'Unknown'; authError?: boolean }): OobmPowerEvent {
  if (reading.authError) return 'AuthError';
  return reading.powerState;
}

/**
 * Whether power actions may run on `host`, as upstream's checkOutOfBandManagementEnabledByZoneClusterHost:
 * undefined when they may, else its refusal text. A zone or cluster is enabled unless switched off.
 */
export function oobmRefusal(host: Pick<Host, 'oobm' | 'resourcestate'>, zone: Pick<Zone, 'oobmenabled'> | undefined, cluster: Pick<Cluster, 'oobmenabled'> | undefined): string | undefined {
  if (zone?.oobmenabled === false) return "Out-of-band management is disabled for the host's zone. Aborting Operation.";
  if (cluster?.oobmenabled === false) return "Out-of-band management is disabled for the host's cluster. Aborting Operation.";
  if (!host.oobm || !host.oobm.enabled || host.resourcestate === 'Degraded') return 'Out-of-band management is disabled or not configured for the host. Aborting Operation.';
  return undefined;
}

/** What the agent needs to reach the BMC. */
export const oobmTargetOf = (config: OobmConfig): OobmTarget => ({
  driver: config.driver,
  address: config.address,
  port: Number(config.port),
  username: config.username,
  password: config.password,
});

/** The outofbandmanagement.ipmitool.* and redfish.* settings as the agent takes them. */
export function oobmOptionsOf(settings: Settings): OobmOptions {
  const retries = Number.parseInt(settings.globalRaw('outofbandmanagement.ipmitool.retries'), 10);
  return {
    path: settings.globalRaw('outofbandmanagement.ipmitool.path'),
    interface: settings.globalRaw('outofbandmanagement.ipmitool.interface') === 'lan' ? 'lan' : 'lanplus',
    retries: Number.isInteger(retries) && retries >= 0 ? retries : 1,
    cipherSuite: settings.number('outofbandmanagement.ipmitool.cipher.suite'),
    redfish: {
      useHttps: settings.globalRaw('redfish.use.https') !== 'false',
      ignoreSsl: settings.globalRaw('redfish.ignore.ssl') === 'true',
      retries: settings.number('redfish.retries'),
    },
  };
}

/**
 * Upstream's OutOfBandManagementResponse built from a host's configuration (its field order): no
 * configuration reads as enabled false, power state Disabled. Upstream shows the password's first
 * character and ****; Mold cannot (it holds the password sealed) and shows **** alone.
 */
export function renderOobm(host: Pick<Host, 'oobm' | 'oobmpowerstate'>) {
  const config = host.oobm;
  if (!config) return { powerstate: 'Disabled' as OobmPowerState, enabled: false };
  return {
    powerstate: host.oobmpowerstate ?? 'Disabled',
    enabled: config.enabled,
    driver: config.driver,
    address: config.address,
    port: config.port,
    username: config.username,
    password: '****',
  };
}

/** Upstream's sendAuthError: ALERT.OOBM.AUTHERROR naming the host, its cluster and zone. */
export async function oobmAuthAlert(host: Host, message: string) {
  await createAlert({
    alertType: ALERT_TYPES.OOBM_AUTH_ERROR,
    subject: `Out-of-band management auth-error detected for host:${host.id} in cluster:${host.clusterId}, zone:${host.zoneId}`,
    content: message,
    zoneId: host.zoneId,
    podId: host.podId,
    clusterId: host.clusterId,
    resourceId: host.id,
    resourceType: 'Host',
  });
}
