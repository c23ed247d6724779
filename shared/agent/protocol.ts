// The contract between the control plane and the on-prem agent, used by both sides: the commands the
// agent runs (their payloads and results), the message that carries a command on the agent's queue,
// and the bodies of the agent gateway's routes (/agent/v1/*). Nothing here talks to AWS or to a host.
import { z } from 'zod';
import { UNTAGGED } from '../cloudstack/ip.ts';

export const GATEWAY_PATH = '/agent/v1';
/** The control plane's health check (GET, unauthenticated), answered by the gateway function. */
export const HEALTH_PATH = '/health';

// ---- what a command acts on ----

/** A host the agent already manages: it logs in with its own SSH key. */
export const hostTarget = z.object({
  hostId: z.string(),
  address: z.string(),
  port: z.number().int().default(22),
  username: z.string(),
  /**
   * Report answers only: the shared mount point pools the host reaches, whose size and use the
   * agent measures on it (upstream's hosts answer ModifyStoragePoolCommand with the pool's figures).
   */
  pools: z.array(z.object({ id: z.string(), path: z.string().max(4096) })).max(64).optional(),
  /**
   * The epoch of the lease under which the agent drives the host (shared/agent-leases.ts). Before it
   * acts, the agent raises the host's fence file to it, and a host whose fence holds a newer epoch
   * refuses (StaleEpoch): an agent that lost the host never acts on it again.
   */
  epoch: z.number().int().nonnegative().optional(),
});
export type HostTarget = z.infer<typeof hostTarget>;

/** A secret sealed to the agent's public key (shared/agent/sealing.ts). */
export const sealedSecret = z.object({ alg: z.literal('RSA-OAEP-256+A256GCM'), key: z.string(), iv: z.string(), tag: z.string(), data: z.string() });
export type SealedSecret = z.infer<typeof sealedSecret>;

/** What the agent learns about a KVM host when it adds or reconnects it. */
export const hostFacts = z.object({
  hostname: z.string(),
  hostUuid: z.string(),
  /** Logical CPUs (upstream's cpunumber), MHz per CPU, sockets. */
  cpus: z.number().int().positive(),
  cpuMhz: z.number().int().nonnegative(),
  cpuSockets: z.number().int().positive(),
  memoryBytes: z.number().int().positive(),
  arch: z.string(),
  libvirtVersion: z.string(),
  qemuVersion: z.string(),
  /** kvm with hardware virtualisation, qemu under software emulation. */
  domainType: z.enum(['kvm', 'qemu']),
  /** The host key's SHA-256 fingerprint, pinned from then on. */
  hostKeyFingerprint: z.string(),
});
export type HostFacts = z.infer<typeof hostFacts>;

/** A domain's power state as the agent reads it (`virsh domstate`). */
export const domainPowerState = z.enum(['Running', 'Stopped', 'Paused', 'Shutdown', 'Crashed', 'Suspended', 'Unknown']);

// ---- virtual machines (the agent turns a VmSpec into libvirt domain XML; every command is safe to repeat) ----

/**
 * One guest NIC: the agent puts it on the bridge of `vlan` over the host's uplink (the device of its
 * default route), or, for an untagged network, on the bridge that holds the uplink itself (as
 * cloudbr0 on CloudStack's KVM hosts), so the guest sits on the hosts' own LAN.
 */
export const nicSpec = z.object({
  mac: z.string(),
  /** 802.1Q id, or `untagged`; absent when `bridge` names an existing bridge on the host. */
  vlan: z.union([z.number().int().min(1).max(4094), z.literal(UNTAGGED)]).optional(),
  bridge: z.string().optional(),
  ip: z.string(),
  netmask: z.string(),
  gateway: z.string(),
  dns: z.array(z.string()).default([]),
});
export type NicSpec = z.input<typeof nicSpec>;

export const diskSpec = z.object({
  /** Absolute path on the host (primary storage), e.g. <pool path>/<volume id>.qcow2. */
  path: z.string(),
  /** For a root disk made from a template: a qcow2 overlay on this file (created when missing). */
  backingFile: z.string().optional(),
  /** Virtual size; a root overlay grows to it, a blank data disk is created with it. */
  sizeBytes: z.number().int().positive().optional(),
  /** Order on the bus: 0 is the root disk (vda), 1 vdb, … */
  deviceId: z.number().int().min(0).max(25),
});
export type DiskSpec = z.input<typeof diskSpec>;

/** Everything a start needs: upstream's "start rebuilds the VM from the database". */
export const vmSpec = z.object({
  /** The libvirt domain name: the instance name (i-<account>-<vm>-VM). */
  name: z.string(),
  /** The VM's id, also the domain's UUID. */
  uuid: z.string(),
  hostname: z.string(),
  vcpus: z.number().int().positive(),
  /** MHz per vCPU (the offering's speed): becomes the domain's CPU shares. */
  cpuMhz: z.number().int().positive(),
  memoryMiB: z.number().int().positive(),
  disks: z.array(diskSpec).min(1),
  /** The config drive (OpenStack layout, label config-2) for cloud-init, rebuilt on every start. */
  configDrive: z.object({
    path: z.string(),
    instanceId: z.string(),
    /** key name → OpenSSH public key line. */
    publicKeys: z.record(z.string(), z.string()).default({}),
    /** base64, as the API took it. */
    userData: z.string().optional(),
    availabilityZone: z.string().optional(),
  }),
  nics: z.array(nicSpec),
  /** VNC listens on this host address (the console proxy connects to it). */
  vncListen: z.string(),
  /** A VM deployed from an ISO: the ISO's file on the host (primary storage), a second cdrom booted before the (blank) root disk. */
  iso: z.string().optional(),
});
export type VmSpec = z.input<typeof vmSpec>;

export const domainState = z.object({ name: z.string(), state: domainPowerState, vncPort: z.number().int().optional() });

export const vmCommands = {
  /** Creates missing disks (overlay on the template, blank data disks), writes the config drive, makes sure the NIC's bridge exists, defines the domain (replacing an older definition) and starts it unless it runs. */
  startVm: { payload: z.object({ host: hostTarget, vm: vmSpec }), result: domainState },
  /** ACPI shutdown, then destroy after `timeoutSeconds`; `forced` destroys at once; then undefines it (disks stay). Stopped already: fine. */
  stopVm: {
    payload: z.object({ host: hostTarget, name: z.string(), forced: z.boolean().default(false), timeoutSeconds: z.number().int().positive().default(60) }),
    result: z.object({ name: z.string(), state: domainPowerState, forced: z.boolean() }),
  },
  /** In place (`virsh reboot`, reset if the guest ignores it): no new definition. */
  rebootVm: { payload: z.object({ host: hostTarget, name: z.string() }), result: domainState },
  /**
   * Live-migrates the running domain `name` from `host` to `target` (libvirt's, over qemu+ssh with the
   * zone's migration key, which the agent puts on both hosts first): the target's bridges for `vlans`
   * are made, VNC listens on `vncListen` there, and the domain's definition moves with it. Already
   * running on the target and gone from `host`: fine. A failed migration leaves it running on `host`.
   * With `storage` (migrateVirtualMachineWithVolume), the disks move too: each `mirror` disk is
   * created empty on the target at `to` and copied while the guest runs (virsh migrate
   * --copy-storage-all --migrate-disks), each `file` (a read-only config drive) is copied by the agent
   * first; the domain's XML names the new paths. A failed migration removes what it created on the target.
   */
  migrateVm: {
    payload: z.object({
      host: hostTarget,
      target: hostTarget,
      name: z.string(),
      vncListen: z.string(),
      vlans: z.array(z.number().int().min(1).max(4094)).default([]),
      timeoutSeconds: z.number().int().positive().default(600),
      storage: z.array(z.object({ from: z.string(), to: z.string(), copy: z.enum(['mirror', 'file']) })).max(32).default([]),
    }),
    result: domainState,
  },
  /** Destroys and undefines the domain (if there) and deletes `files` (disks, config drive). Gone already: fine. */
  expungeVm: { payload: z.object({ host: hostTarget, name: z.string(), files: z.array(z.string()) }), result: z.object({ removed: z.array(z.string()) }) },
} as const;

// ---- volumes (data disks on primary storage; every command is safe to repeat) ----

export const volumeCommands = {
  /**
   * Creates the disk when missing (a blank qcow2 of `disk.sizeBytes`), then attaches it to the running
   * domain `vmName`, live and in its definition (virsh attach-device --live --config). Attached
   * already: fine. A failure removes a file it created.
   */
  attachDisk: {
    payload: z.object({ host: hostTarget, vmName: z.string(), disk: diskSpec }),
    result: z.object({ vmName: z.string(), target: z.string(), created: z.boolean() }),
  },
  /** Detaches the disk at `path` from the running domain `vmName`, live and from its definition, waiting up to `waitSeconds` for the guest to release it. Not attached: fine. */
  detachDisk: {
    payload: z.object({ host: hostTarget, vmName: z.string(), path: z.string(), waitSeconds: z.number().int().positive().default(15) }),
    result: z.object({ vmName: z.string(), detached: z.boolean() }),
  },
  /**
   * Sets the disk's virtual size: through the running domain `vmName` when it has the disk (virsh
   * blockresize), else qemu-img resize. Shrinking only with `shrinkOk` and never live. A disk not yet
   * created: nothing to do (`exists` false). The size already: fine.
   */
  resizeDisk: {
    payload: z.object({ host: hostTarget, path: z.string(), sizeBytes: z.number().int().positive(), vmName: z.string().optional(), shrinkOk: z.boolean().default(false) }),
    result: z.object({ path: z.string(), exists: z.boolean(), sizeBytes: z.number(), live: z.boolean() }),
  },
  /** Deletes the disk file (refused while a qemu holds it). Gone already: fine. */
  deleteDisk: {
    payload: z.object({ host: hostTarget, path: z.string() }),
    result: z.object({ path: z.string(), removed: z.boolean() }),
  },
  /**
   * Writes the qcow2 at `source` anew at `destination` (another pool the host mounts) with qemu-img
   * convert, a root overlay without its template; checked, then renamed into place. Refused while a
   * qemu holds the source. Done already (the copy there, the source gone): fine.
   */
  copyDisk: {
    payload: z.object({ host: hostTarget, source: z.string(), destination: z.string(), timeoutSeconds: z.number().int().positive().optional() }),
    result: z.object({ destination: z.string(), sizeBytes: z.number() }),
  },
  /** Deletes each file as deleteDisk does (what a volume's move left behind). Gone already: fine. */
  removeFiles: {
    payload: z.object({ host: hostTarget, paths: z.array(z.string()).min(1).max(16) }),
    result: z.object({ removed: z.array(z.string()) }),
  },
} as const;

// ---- out-of-band management (the agent is on the BMCs' network: it runs ipmitool or speaks Redfish itself) ----

/** The power states a BMC reports, as upstream's OutOfBandManagement.PowerState (Disabled is the control plane's). */
export const bmcPowerState = z.enum(['On', 'Off', 'Unknown']);
export const OOBM_POWER_ACTIONS = ['ON', 'OFF', 'CYCLE', 'RESET', 'SOFT', 'STATUS'] as const;

/** How the agent reaches a host's BMC; the password sealed to the agent. */
export const oobmTarget = z.object({
  driver: z.enum(['ipmitool', 'redfish']),
  address: z.string(),
  port: z.number().int().min(1).max(65535),
  username: z.string(),
  password: sealedSecret,
});
export type OobmTarget = z.infer<typeof oobmTarget>;

/** The outofbandmanagement.ipmitool.* settings as they stand when the command is sent. */
export const ipmitoolOptions = z.object({
  path: z.string(),
  interface: z.enum(['lan', 'lanplus']),
  retries: z.number().int().min(0),
  cipherSuite: z.number().int().min(0).max(17),
});
export type IpmitoolOptions = z.infer<typeof ipmitoolOptions>;

/** The redfish.* settings (upstream's RedfishOutOfBandManagementDriver) as they stand when the command is sent. */
export const redfishOptions = z.object({
  useHttps: z.boolean(),
  /** True: the BMC's certificate is not verified. False: it must chain to a CA the agent trusts. */
  ignoreSsl: z.boolean(),
  /** Further attempts after a request that got no HTTP answer (2 s apart). */
  retries: z.number().int().min(0),
});
export type RedfishOptions = z.infer<typeof redfishOptions>;

/** Every driver's settings: each command carries them, the agent uses its BMC's driver's. */
export const oobmOptions = ipmitoolOptions.extend({ redfish: redfishOptions });
export type OobmOptions = z.infer<typeof oobmOptions>;

export const oobmCommands = {
  /**
   * One chassis power action (ipmitool chassis power on|off|cycle|reset|soft|status, or Redfish's
   * ComputerSystem.Reset and PowerState) under
   * `timeoutSeconds`; every action reads the power state afterwards. A failure names the host and
   * the action as upstream's job errors do: OobmAuthError (the BMC refused the credentials),
   * OobmUnreachable (no answer), OobmActionFailed.
   */
  oobmPowerAction: {
    payload: z.object({ hostId: z.string(), oobm: oobmTarget, options: oobmOptions, action: z.enum(OOBM_POWER_ACTIONS), timeoutSeconds: z.number().int().positive() }),
    result: z.object({ action: z.enum(OOBM_POWER_ACTIONS), powerState: bmcPowerState, result: z.string() }),
  },
  /** Sets the BMC user's password (ipmitool user set password), then proves a login with it. */
  oobmChangePassword: {
    payload: z.object({ hostId: z.string(), oobm: oobmTarget, options: oobmOptions, newPassword: sealedSecret, timeoutSeconds: z.number().int().positive() }),
    result: z.object({ changed: z.literal(true) }),
  },
} as const;

// ---- KVM rolling maintenance (docs hosts.md §14; upstream's RollingMaintenanceCommand) ----

export const ROLLING_MAINTENANCE_STAGES = ['PreFlight', 'PreMaintenance', 'Maintenance', 'PostMaintenance'] as const;
export type RollingMaintenanceStage = (typeof ROLLING_MAINTENANCE_STAGES)[number];

export const rollingMaintenanceCommands = {
  /**
   * Runs one stage's script from the host's `rolling.maintenance.hooks.dir` (read from
   * /etc/cloudstack/agent/agent.properties there): `<stage>`, `<stage>.sh` or `<stage>.py`, with the
   * words of `payload` appended as arguments. The script runs detached on the host (setsid), writing
   * its output and exit code to files under /var/lib/mold/rolling-maintenance/<runId>/, so it keeps
   * running if the agent restarts; the agent (the same or a restarted one, handed the same command)
   * starts it once and reads the files every `pollSeconds` until the exit code is there or
   * `timeoutSeconds` have passed. No script for the stage: `found` false, nothing ran. `probe` only
   * says whether the stage has a script.
   */
  rollingMaintenanceStage: {
    payload: z.object({
      host: hostTarget,
      stage: z.enum(ROLLING_MAINTENANCE_STAGES),
      runId: z.string().regex(/^[A-Za-z0-9._-]{1,200}$/),
      payload: z.string().max(4096).optional(),
      probe: z.boolean().default(false),
      timeoutSeconds: z.number().int().positive(),
      pollSeconds: z.number().int().positive().default(10),
    }),
    result: z.object({
      stage: z.enum(ROLLING_MAINTENANCE_STAGES),
      found: z.boolean(),
      script: z.string().optional(),
      /** Absent: it did not finish within timeoutSeconds (or never ran). */
      exitCode: z.number().int().optional(),
      finished: z.boolean(),
      /** The script's stdout and stderr (the last 64 KiB). */
      output: z.string().default(''),
    }),
  },
} as const;

// ---- the commands ----

export const agentCommands = {
  /** Runs `true` on a managed host: the round trip of the command channel itself. */
  pingHost: {
    payload: z.object({ host: hostTarget }),
    result: z.object({ elapsedMs: z.number() }),
  },
  /**
   * Reaches a new host by password (or, without one, by the agent's key already installed there),
   * checks libvirt and qemu, installs the agent's SSH key and gathers facts. The password is used for
   * this connection only.
   */
  addHost: {
    payload: z.object({ host: hostTarget, password: sealedSecret.optional() }),
    result: hostFacts,
  },
  /** Reconnects to a managed host with the agent's key and gathers its facts again. */
  reconnectHost: {
    payload: z.object({ host: hostTarget }),
    result: hostFacts,
  },
  /**
   * Re-keys a host: logs in with the new password, installs the agent's current key (dropping any
   * older key of this agent), checks that the key works. With setOnHost, first sets the password on
   * the host through the key.
   */
  updateHostPassword: {
    payload: z.object({ host: hostTarget, password: sealedSecret, setOnHost: z.boolean().default(false) }),
    result: z.object({ rekeyed: z.literal(true) }),
  },
  /**
   * Downloads a template from its URL (fetched by the agent itself) into primary storage through a host
   * that mounts the pool, verifying the checksum on the way.
   */
  downloadTemplate: {
    payload: z.object({
      host: hostTarget,
      templateId: z.string(),
      url: z.string(),
      /** CloudStack's form: `{SHA-256}hex`, `{MD5}hex`, … or bare hex (MD5). */
      checksum: z.string().optional(),
      /** The registered format (QCOW2, RAW, ISO); a QCOW2 download is checked with qemu-img before it is kept. */
      format: z.string().optional(),
      /** Absolute path on the host where the file must end up. */
      destination: z.string(),
    }),
    result: z.object({ path: z.string(), size: z.number(), checksum: z.string() }),
  },
  ...vmCommands,
  ...volumeCommands,
  ...oobmCommands,
  ...rollingMaintenanceCommands,
} as const;

export type AgentCommandType = keyof typeof agentCommands;
export const AGENT_COMMAND_TYPES = Object.keys(agentCommands) as AgentCommandType[];
export type CommandPayload<T extends AgentCommandType> = z.input<(typeof agentCommands)[T]['payload']>;
export type CommandResult<T extends AgentCommandType> = z.infer<(typeof agentCommands)[T]['result']>;

/** A command as it sits on the agent's queue (the body Step Functions sends). */
export const commandMessage = z.object({
  commandId: z.string(),
  type: z.enum(AGENT_COMMAND_TYPES as [AgentCommandType, ...AgentCommandType[]]),
  /** ISO 8601; the agent does not start a command after it. */
  deadline: z.string(),
  payload: z.unknown(),
  taskToken: z.string(),
});
export type CommandMessage = z.infer<typeof commandMessage>;

/**
 * Why a command failed, as the job's errortext will read it. `error` is the failure's name
 * (SendTaskFailure's error), e.g. HostUnreachable, AuthenticationFailed, NoLibvirt.
 */
export const commandFailure = z.object({ error: z.string().max(256), cause: z.string().max(32_000) });

// ---- the gateway's routes (all POST, JSON bodies; every route but /enrol is signed) ----

/** POST /agent/v1/enrol: unsigned; the token is the credential. */
export const enrolRequest = z.object({
  token: z.string(),
  /** PKCS#10, PEM (node-forge), for an RSA key of at least 2048 bits. */
  csr: z.string(),
  /** The agent's SSH public key (authorized_keys line) that it installs on hosts. */
  sshPublicKey: z.string(),
  name: z.string().max(255).optional(),
  version: z.string().max(64),
});
export const enrolResponse = z.object({
  agentId: z.string(),
  zoneId: z.string(),
  certificate: z.string(),
  caCertificate: z.string(),
  queueUrl: z.string(),
});

/** POST /agent/v1/credentials: short-lived credentials that reach only this agent's queue. */
export const credentialsResponse = z.object({
  queueUrl: z.string(),
  region: z.string(),
  /** Set where SQS is not AWS's own endpoint (the local runtime). */
  endpoint: z.string().optional(),
  accessKeyId: z.string(),
  secretAccessKey: z.string(),
  sessionToken: z.string(),
  /** ISO 8601. */
  expiration: z.string(),
});

/** POST /agent/v1/results: a command's outcome (SendTaskSuccess / SendTaskFailure). */
export const resultRequest = z.union([
  z.object({ commandId: z.string(), taskToken: z.string(), ok: z.literal(true), result: z.unknown(), lease: z.object({ hostId: z.string(), epoch: z.number().int() }).optional() }),
  z.object({ commandId: z.string(), taskToken: z.string(), ok: z.literal(false), failure: commandFailure, lease: z.object({ hostId: z.string(), epoch: z.number().int() }).optional() }),
]);
/** `accepted: false` when the task is already over (timed out, or answered before): nothing to redo. */
export const resultResponse = z.object({ accepted: z.boolean() });

/** POST /agent/v1/heartbeat: a long command is still running (SendTaskHeartbeat). */
export const heartbeatRequest = z.object({ commandId: z.string(), taskToken: z.string(), lease: z.object({ hostId: z.string(), epoch: z.number().int() }).optional() });

/**
 * POST /agent/v1/lease: renews the agent's lease on its hosts (every renewSeconds). The answer lists the
 * hosts it holds, each with its epoch: hosts of an agent whose lease lapsed are taken over here.
 */
export const leaseResponse = z.object({
  leaseSeconds: z.number().positive(),
  renewSeconds: z.number().positive(),
  hosts: z.array(z.object({ hostId: z.string(), epoch: z.number().int().nonnegative() })),
});
export type LeaseResponse = z.infer<typeof leaseResponse>;

/**
 * POST /agent/v1/fleet: the agent's zone at a glance (shared/fleet-status.ts, as listFleetStatus), for
 * `mold-agent status`. Only what the agent prints is checked; the rest passes through.
 */
export const fleetResponse = z
  .object({
    zoneid: z.string(),
    zonename: z.string(),
    // Optional: a control plane older than HA maintenance does not send them.
    vmhaenabled: z.boolean().optional(),
    hamaintenance: z.string().optional(),
    agent: z.array(
      z.object({ id: z.string(), name: z.string(), state: z.string(), version: z.string().optional(), lastseen: z.string().optional(), leaseexpires: z.string().optional(), holdslease: z.boolean(), hostcount: z.number() }).loose(),
    ),
    host: z.array(
      z
        .object({
          id: z.string(),
          name: z.string(),
          ipaddress: z.string(),
          state: z.string(),
          resourcestate: z.string(),
          lastpinged: z.string().optional(),
          reachable: z.boolean().optional(),
          lastreporterror: z.string().optional(),
          agentname: z.string().optional(),
          leaseepoch: z.number(),
          haheld: z.string().optional(),
          hafencerefused: z.string().optional(),
          haspared: z.string().optional(),
          storageheartbeatage: z.number().optional(),
          powerstate: z.string().optional(),
          vm: z.array(z.object({ name: z.string(), instancename: z.string(), state: z.string(), haenable: z.boolean() }).loose()),
        })
        .loose(),
    ),
  })
  .loose();
export type FleetResponse = z.infer<typeof fleetResponse>;

/** POST /agent/v1/handback: a command for a host this agent does not hold (any more); the gateway hands it to the holder. */
export const handbackRequest = z.object({ message: commandMessage, reason: z.string().max(1024) });

/**
 * A running domain's usage counters as libvirt keeps them (`virsh domstats`), cumulative since its qemu
 * started: the control plane turns two of them into rates (shared/vm-stats.ts).
 */
export const domainUsage = z.object({
  /** When they were read on the host (ms since the epoch). */
  at: z.number(),
  cpuTimeNs: z.number().nonnegative(),
  vcpus: z.number().int().positive(),
  /** balloon.current, balloon.maximum and balloon.unused (KiB; unused needs the guest's balloon driver). */
  memoryKiB: z.number().nonnegative().optional(),
  memoryMaxKiB: z.number().nonnegative().optional(),
  memoryUnusedKiB: z.number().nonnegative().optional(),
  netRxBytes: z.number().nonnegative(),
  netTxBytes: z.number().nonnegative(),
  diskReadBytes: z.number().nonnegative(),
  diskWriteBytes: z.number().nonnegative(),
  diskReadReqs: z.number().nonnegative(),
  diskWriteReqs: z.number().nonnegative(),
});
export type DomainUsage = z.infer<typeof domainUsage>;

export const domainReport = z.object({ name: z.string(), uuid: z.string(), state: domainPowerState, usage: domainUsage.optional() });

export const hostReport = z.object({
  hostId: z.string(),
  /** Did the agent reach the host over SSH this time? */
  reachable: z.boolean(),
  /** Why not, or what is wrong with libvirtd. */
  error: z.string().max(1024).optional(),
  /** Does libvirtd answer (`virsh version`)? */
  libvirtd: z.boolean().optional(),
  memoryTotalBytes: z.number().optional(),
  memoryFreeBytes: z.number().optional(),
  /** One-minute load average. */
  loadAverage: z.number().optional(),
  /**
   * When the agent began reading the host (ms since the epoch, its clock): the domains are as they
   * were then. The power sync judges no VM that changed after it (shared/vm-power-sync.ts).
   */
  gatheredAt: z.number().optional(),
  domains: z.array(domainReport).default([]),
  /** The pools of the host's target as measured on it (df): bytes in all and bytes used. */
  pools: z.array(z.object({ id: z.string(), capacityBytes: z.number().nonnegative(), usedBytes: z.number().nonnegative() })).max(64).optional(),
  /**
   * The storage heartbeats the host read in its pools (shared/storage-heartbeat.ts): each host id's
   * heartbeat age in seconds by this host's clock, the freshest where several pools hold one.
   */
  heartbeats: z.record(z.string().max(64), z.number()).optional(),
  /** The host's BMC as the agent last read it (background power-state sync), when it watches one. */
  oobm: z
    .object({
      powerState: bmcPowerState,
      authError: z.boolean().optional(),
      error: z.string().max(1024).optional(),
      at: z.string(),
      /** The configuration the reading was made with (WatchedHost's oobm.configId). */
      configId: z.string().max(64).optional(),
    })
    .optional(),
});
export type HostReport = z.infer<typeof hostReport>;

/** POST /agent/v1/report: the periodic state report (also the agent's first call on start). */
export const reportRequest = z.object({
  version: z.string().max(64),
  hosts: z.array(hostReport),
  /** Where the agent's console proxy is reached (ws:// or wss://); absent when it runs none. */
  consoleUrl: z.url({ protocol: /^wss?$/ }).max(2048).optional(),
});
export type ReportRequest = z.infer<typeof reportRequest>;
/** The hosts the agent is to watch and how often to report (ping.interval). */
/**
 * A watched host; `oobm` when out-of-band management is enabled for it (host, cluster and zone), so
 * the agent reads its BMC's power state in the background (outofbandmanagement.sync.poolsize at once).
 */
export const watchedHost = hostTarget.extend({
  /** configId names this configuration: a reading made with an older one (a changed password) is not taken. */
  oobm: oobmTarget.extend({ configId: z.string().max(64) }).optional(),
});
export type WatchedHost = z.infer<typeof watchedHost>;
export const reportResponse = z.object({
  pingIntervalSeconds: z.number().positive(),
  hosts: z.array(watchedHost),
  oobm: z.object({ options: oobmOptions, timeoutSeconds: z.number().int().positive(), poolSize: z.number().int().positive() }).optional(),
  /**
   * The SSH keys (authorized_keys lines, each tagged mold-agent-<id>) of every Enabled agent of the
   * zone: the reporter puts exactly these agent keys on its hosts, so another agent can take a host
   * over, and a revoked one's key goes.
   */
  agentKeys: z.array(z.string()).optional(),
  /** Every host of the zone (whichever agent holds it): one that left this agent's list but is here passed to another agent, and keeps its key. */
  zoneHostIds: z.array(z.string()).optional(),
});
export type ReportResponse = z.infer<typeof reportResponse>;
