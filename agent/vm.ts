// The VM commands on a KVM host: startVm (disks, config drive, VLAN bridge, domain XML, define, start),
// stopVm, rebootVm and expungeVm. Each runs as few SSH round trips as it can (startVm: one script,
// plus one probe per host and agent process), and each converges when repeated: what exists is kept,
// what is gone is fine. The content (domain XML, config drive files) is built here by pure functions
// and shipped base64-encoded inside the script, so no value ever reaches a shell or libvirt unquoted.
import { posix } from 'node:path';
import type { CommandPayload, CommandResult, DiskSpec, NicSpec, VmSpec } from '../shared/agent/protocol.ts';
import { UNTAGGED } from '../shared/cloudstack/ip.ts';
import { CommandFailure, failures } from './errors.ts';
import { log } from './log.ts';
import { parseDomstate, parseNodeinfo, parseVncDisplay, type PowerState } from './parse.ts';
import { hostTarget, shq, who, type SshPool, type SshTarget } from './ssh.ts';

export const VIRSH = 'virsh -c qemu:///system';
/** Shell: the host's uplink, the device of its default route. */
const UPLINK = `ip -o route show default | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p' | head -n 1`;
/** libvirt's <shares> becomes cpu.weight on cgroup v2, whose range ends here. */
const CGROUP2_MAX_SHARES = 10_000;
const SCRIPT_TIMEOUT_MS = 120_000;
const STOP_POLL_MS = 500;

type Vm = Omit<VmSpec, 'disks' | 'nics' | 'configDrive'> & {
  disks: DiskSpec[];
  nics: Array<NicSpec & { dns?: string[] }>;
  configDrive: Omit<VmSpec['configDrive'], 'publicKeys'> & { publicKeys?: Record<string, string> };
};

// ---- pure builders ----

export function xmlEscape(value: string | number): string {
  return String(value).replace(/[&<>'"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** The bridge a VLAN's NICs join on every host: deterministic, and within IFNAMSIZ (15). */
export function vlanBridge(vlan: number): string {
  return `mbr${vlan}`;
}

/** The 802.1Q link over `uplink` that the VLAN's bridge enslaves. */
export function vlanLink(uplink: string, vlan: number): string {
  const name = `${uplink}.${vlan}`;
  return name.length <= 15 ? name : `mvl${vlan}`;
}

/**
 * Which bridge the NIC sits on: its VLAN's, for an untagged network the one that holds the host's
 * uplink (`uplinkBridge`, from the host's probe), or the bridge the spec names. Throws
 * BridgeUnavailable when there is none.
 */
export function nicBridge(nic: NicSpec, vmName: string, uplinkBridge?: string): string {
  if (nic.vlan === UNTAGGED) {
    if (uplinkBridge) return uplinkBridge;
    throw new CommandFailure('BridgeUnavailable', `NIC ${nic.mac} of ${vmName} is on an untagged network, which needs the host's uplink on a bridge (as cloudbr0 on a CloudStack KVM host); this host's uplink is on none`);
  }
  if (nic.vlan !== undefined) return vlanBridge(nic.vlan);
  if (nic.bridge) return nic.bridge;
  throw new CommandFailure('BridgeUnavailable', `NIC ${nic.mac} of ${vmName} has neither a VLAN nor a bridge to join`);
}

/** vda, vdb, … by device id. */
export function diskTarget(deviceId: number): string {
  return `vd${String.fromCharCode(97 + deviceId)}`;
}

/**
 * CPU shares: the MHz the offering guarantees (vCPUs × speed), as upstream. On cgroup v2 libvirt takes
 * at most 10,000, so (as upstream does there) the value is the VM's fraction of the host's MHz scaled
 * to that range.
 */
export function cpuShares(vcpus: number, cpuMhz: number, host?: { cgroup2: boolean; totalMhz?: number }): number {
  const shares = vcpus * cpuMhz;
  if (!host?.cgroup2) return Math.max(2, shares);
  if (host.totalMhz && host.totalMhz > 0) return Math.min(CGROUP2_MAX_SHARES, Math.max(1, Math.ceil((shares * CGROUP2_MAX_SHARES) / host.totalMhz)));
  return Math.min(CGROUP2_MAX_SHARES, Math.max(1, shares));
}

export interface DomainOptions {
  domainType: 'kvm' | 'qemu';
  cpuShares: number;
  /** The bridge holding the host's uplink, where untagged networks' NICs go. */
  uplinkBridge?: string;
}

/** A qcow2 disk's <disk> element: in the domain XML, and alone for a live attach. */
export function diskXml(disk: { path: string; deviceId: number }): string {
  return [
    `<disk type='file' device='disk'>`,
    `  <driver name='qemu' type='qcow2' cache='none'/>`,
    `  <source file='${xmlEscape(disk.path)}'/>`,
    `  <target dev='${diskTarget(disk.deviceId)}' bus='virtio'/>`,
    `</disk>`,
    '',
  ].join('\n');
}

/** The libvirt domain of `vm`. */
export function domainXml(vm: Vm, options: DomainOptions): string {
  const e = xmlEscape;
  const disks = [...vm.disks].sort((a, b) => a.deviceId - b.deviceId);
  const lines = [
    `<domain type='${e(options.domainType)}'>`,
    `  <name>${e(vm.name)}</name>`,
    `  <uuid>${e(vm.uuid)}</uuid>`,
    `  <title>${e(vm.hostname)}</title>`,
    `  <memory unit='MiB'>${vm.memoryMiB}</memory>`,
    `  <currentMemory unit='MiB'>${vm.memoryMiB}</currentMemory>`,
    `  <vcpu placement='static'>${vm.vcpus}</vcpu>`,
    `  <cputune>`,
    `    <shares>${options.cpuShares}</shares>`,
    `  </cputune>`,
    `  <os>`,
    `    <type arch='x86_64' machine='pc'>hvm</type>`,
    // Booted from the disk; a VM with an ISO from the ISO first (per-device order: the config drive is a cdrom too).
    ...(vm.iso ? [] : [`    <boot dev='hd'/>`]),
    `  </os>`,
    `  <features>`,
    `    <acpi/>`,
    `    <apic/>`,
    `  </features>`,
    `  <clock offset='utc'/>`,
    `  <on_poweroff>destroy</on_poweroff>`,
    `  <on_reboot>restart</on_reboot>`,
    `  <on_crash>destroy</on_crash>`,
    `  <devices>`,
  ];
  for (const d of disks) {
    const xml = diskXml(d).trimEnd().split('\n');
    if (vm.iso && d.deviceId === 0) xml.splice(xml.length - 1, 0, `  <boot order='2'/>`);
    lines.push(...xml.map((line) => `    ${line}`));
  }
  // The config drive on IDE, as upstream attaches it (hdc): every guest's firmware and kernel read it.
  lines.push(
    `    <disk type='file' device='cdrom'>`,
    `      <driver name='qemu' type='raw'/>`,
    `      <source file='${e(vm.configDrive.path)}'/>`,
    `      <target dev='hdc' bus='ide'/>`,
    `      <readonly/>`,
    `    </disk>`,
  );
  if (vm.iso) {
    lines.push(
      `    <disk type='file' device='cdrom'>`,
      `      <driver name='qemu' type='raw'/>`,
      `      <source file='${e(vm.iso)}'/>`,
      `      <target dev='hdd' bus='ide'/>`,
      `      <readonly/>`,
      `      <boot order='1'/>`,
      `    </disk>`,
    );
  }
  for (const nic of vm.nics) {
    lines.push(
      `    <interface type='bridge'>`,
      `      <mac address='${e(nic.mac)}'/>`,
      `      <source bridge='${e(nicBridge(nic, vm.name, options.uplinkBridge))}'/>`,
      `      <model type='virtio'/>`,
      `    </interface>`,
    );
  }
  lines.push(
    `    <serial type='pty'>`,
    `      <target port='0'/>`,
    `    </serial>`,
    `    <console type='pty'>`,
    `      <target type='serial' port='0'/>`,
    `    </console>`,
    `    <graphics type='vnc' port='-1' autoport='yes' listen='${e(vm.vncListen)}'>`,
    `      <listen type='address' address='${e(vm.vncListen)}'/>`,
    `    </graphics>`,
    `    <memballoon model='virtio'/>`,
    `  </devices>`,
    `</domain>`,
    '',
  );
  return lines.join('\n');
}

/** The config drive's files (OpenStack layout, read by cloud-init's ConfigDrive source), by path. */
export function configDriveFiles(vm: Vm): Record<string, Buffer> {
  const cd = vm.configDrive;
  const meta = {
    uuid: cd.instanceId,
    hostname: vm.hostname,
    name: vm.hostname,
    launch_index: 0,
    public_keys: cd.publicKeys ?? {},
    ...(cd.availabilityZone !== undefined && { availability_zone: cd.availabilityZone }),
  };
  const links = vm.nics.map((nic, i) => ({ id: `interface${i}`, type: 'phy', ethernet_mac_address: nic.mac.toLowerCase() }));
  // Only the first NIC carries the default route: two default routes would fight.
  const networks = vm.nics.map((nic, i) => ({
    id: `network${i}`,
    type: 'ipv4',
    link: `interface${i}`,
    ip_address: nic.ip,
    netmask: nic.netmask,
    routes: i === 0 && nic.gateway ? [{ network: '0.0.0.0', netmask: '0.0.0.0', gateway: nic.gateway }] : [],
  }));
  const dns = [...new Set(vm.nics.flatMap((n) => n.dns ?? []))];
  const network = { links, networks, services: dns.map((address) => ({ type: 'dns', address })) };
  const files: Record<string, Buffer> = {
    'openstack/latest/meta_data.json': Buffer.from(`${JSON.stringify(meta, null, 2)}\n`),
    'openstack/latest/network_data.json': Buffer.from(`${JSON.stringify(network, null, 2)}\n`),
  };
  if (cd.userData) files['openstack/latest/user_data'] = Buffer.from(cd.userData, 'base64');
  return files;
}

export function checkPath(what: string, path: string) {
  if (!posix.isAbsolute(path) || path.endsWith('/') || /[\n\0]/.test(path) || path.split('/').includes('..')) {
    throw new CommandFailure('InvalidCommand', `${what} is not an absolute file path: ${JSON.stringify(path)}`);
  }
}

/** Rejects what the XML or the scripts must never see. */
export function checkVm(vm: Vm): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]{0,254}$/.test(vm.name)) throw new CommandFailure('InvalidCommand', `Unusable domain name ${JSON.stringify(vm.name)}`);
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(vm.uuid)) throw new CommandFailure('InvalidCommand', `${vm.name}: the uuid ${JSON.stringify(vm.uuid)} is not a UUID`);
  const ids = new Set<number>();
  for (const d of vm.disks) {
    checkPath(`Disk ${d.deviceId} of ${vm.name}`, d.path);
    if (d.backingFile) checkPath(`The template file of ${vm.name}`, d.backingFile);
    if (ids.has(d.deviceId)) throw new CommandFailure('InvalidCommand', `${vm.name} has two disks with device id ${d.deviceId}`);
    ids.add(d.deviceId);
    if (!d.backingFile && !d.sizeBytes) throw new CommandFailure('InvalidCommand', `Disk ${d.deviceId} of ${vm.name} has neither a template file nor a size`);
  }
  checkPath(`The config drive of ${vm.name}`, vm.configDrive.path);
  if (vm.iso !== undefined) checkPath(`The ISO of ${vm.name}`, vm.iso);
  for (const nic of vm.nics) {
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(nic.mac)) throw new CommandFailure('InvalidCommand', `${vm.name}: ${JSON.stringify(nic.mac)} is not a MAC address`);
    if (nic.vlan === undefined && nic.bridge !== undefined && !/^[A-Za-z0-9_.:-]{1,15}$/.test(nic.bridge)) {
      throw new CommandFailure('BridgeUnavailable', `${vm.name}: ${JSON.stringify(nic.bridge)} is not a network device name`);
    }
  }
}

const b64 = (data: string | Buffer) => shq(Buffer.from(data).toString('base64'));

/**
 * The startVm script. On a failure it prints `@@fail <Name> <key>` and the failing tool's output, and
 * exits 3; on success `@@state` and `@@vnc` lines, each followed by virsh's answer.
 */
export interface StartOptions {
  /**
   * Where the host's kernel cannot make 802.1Q links (no CONFIG_VLAN_8021Q, as in some CI kernels):
   * `isolated` makes the VLAN's bridge without an uplink (guests on one host reach each other, not
   * other hosts) instead of failing. From MOLD_AGENT_VLAN_FALLBACK; never the default.
   */
  vlanFallback?: 'isolated';
  /** The bridge holding the host's uplink (the host's probe), for untagged networks' NICs. */
  uplinkBridge?: string;
}

/**
 * Shell lines (for a script with `fail`) that make each VLAN's bridge over an 802.1Q link of the
 * uplink (the default route's device) when missing: startVm's, and migrateVm's on the target.
 */
export function vlanBridgeLines(vlans: readonly number[], vlanFallback?: 'isolated'): string[] {
  const L: string[] = [];
  if (vlans.length) {
    L.push(
      `up=$(${UPLINK})`,
      `[ -n "$up" ] || fail BridgeUnavailable uplink "no default route"`,
    );
    for (const v of vlans) {
      const br = vlanBridge(v);
      L.push(
        `vl="$up.${v}"; [ \${#vl} -le 15 ] || vl=mvl${v}`,
        `[ -e /sys/class/net/${br} ] || out=$(ip link add name ${br} type bridge 2>&1) || [ -e /sys/class/net/${br} ] || fail BridgeUnavailable vlan${v} "$out"`,
        `if [ ! -e "/sys/class/net/$vl" ] && ! out=$(ip link add link "$up" name "$vl" type vlan id ${v} 2>&1) && [ ! -e "/sys/class/net/$vl" ]; then`,
        '  case "$out" in',
        vlanFallback === 'isolated'
          ? `    *"Unknown device type"*) vl=""; echo "@@isolated ${v}" ;;`
          : `    *"Unknown device type"*) fail BridgeUnavailable novlan${v} "$out" ;;`,
        `    *) fail BridgeUnavailable vlan${v} "$out" ;;`,
        '  esac',
        'fi',
        `out=$( { { [ -z "$vl" ] || { ip link set "$vl" master ${br} && ip link set "$vl" up; }; } && ip link set ${br} up; } 2>&1) || fail BridgeUnavailable vlan${v} "$out"`,
      );
    }
  }
  return L;
}

export function startScript(vm: Vm, xml: string, options: StartOptions = {}): string {
  const L: string[] = [
    'set -u',
    'export LC_ALL=C',
    `V=${shq(VIRSH)}`,
    `fail() { printf '@@fail %s %s\\n%s\\n' "$1" "$2" "$3"; exit 3; }`,
    'tmp=""',
    `trap 'rm -rf $tmp' EXIT`,
  ];
  // Bridges first (a missing one leaves no files behind).
  L.push(...vlanBridgeLines([...new Set(vm.nics.flatMap((n) => (typeof n.vlan === 'number' ? [n.vlan] : [])))], options.vlanFallback));
  vm.nics.forEach((nic, i) => {
    if (typeof nic.vlan !== 'number') {
      const br = nicBridge(nic, vm.name, options.uplinkBridge);
      L.push(`[ -d /sys/class/net/${shq(br)}/bridge ] || fail BridgeUnavailable nic${i} ""`);
    }
  });

  for (const d of [...vm.disks].sort((a, b) => a.deviceId - b.deviceId)) {
    const key = `disk${d.deviceId}`;
    L.push(`p=${shq(d.path)}`, 'if [ ! -e "$p" ]; then');
    if (d.backingFile) {
      L.push(
        `  b=${shq(d.backingFile)}`,
        `  [ -f "$b" ] || fail NoSuchTemplateFile ${key} ""`,
        '  info=$(qemu-img info -U --output=json "$b" 2>&1) || fail DiskCreateFailed ' + key + ' "$info"',
        `  vs=$(printf '%s\\n' "$info" | sed -n 's/.*"virtual-size": *\\([0-9][0-9]*\\).*/\\1/p' | head -n 1)`,
        '  size=""',
        d.sizeBytes ? `  [ -n "$vs" ] && [ ${d.sizeBytes} -gt "$vs" ] && size=${d.sizeBytes}` : '',
        `  out=$(qemu-img create -q -f qcow2 -F qcow2 -b "$b" "$p.part" $size 2>&1) && mv -f "$p.part" "$p" || { rm -f "$p.part"; fail DiskCreateFailed ${key} "$out"; }`,
      );
    } else {
      L.push(`  out=$(qemu-img create -q -f qcow2 "$p.part" ${d.sizeBytes} 2>&1) && mv -f "$p.part" "$p" || { rm -f "$p.part"; fail DiskCreateFailed ${key} "$out"; }`);
    }
    L.push('fi');
  }

  if (vm.iso) L.push(`[ -f ${shq(vm.iso)} ] || fail NoSuchIsoFile iso ""`);

  // The config drive: rebuilt on every start from what the control plane holds now.
  L.push(
    'mk=$(command -v genisoimage || command -v mkisofs || command -v xorrisofs) || fail ConfigDriveFailed cd "genisoimage not found (install genisoimage)"',
    'tmp=$(mktemp -d /tmp/mold-configdrive.XXXXXX) || fail ConfigDriveFailed cd "mktemp failed"',
    'mkdir -p "$tmp/cd/openstack/latest"',
  );
  for (const [path, content] of Object.entries(configDriveFiles(vm))) {
    L.push(`printf '%s' ${b64(content)} | base64 -d > "$tmp/cd/"${shq(path)} || fail ConfigDriveFailed cd "cannot write ${path}"`);
  }
  L.push(
    `iso=${shq(vm.configDrive.path)}`,
    'out=$("$mk" -quiet -input-charset utf-8 -o "$iso.part" -V config-2 -J -r "$tmp/cd" 2>&1) && mv -f "$iso.part" "$iso" || { rm -f "$iso.part"; fail ConfigDriveFailed cd "$out"; }',
  );

  // Define (replacing an older definition: start rebuilds from the database), then start unless running.
  const name = shq(vm.name);
  L.push(
    'x=$(mktemp /tmp/mold-domain.XXXXXX) || fail DefineFailed define "mktemp failed"',
    'tmp="$tmp $x"',
    `printf '%s' ${b64(xml)} | base64 -d > "$x"`,
    'out=$($V define "$x" 2>&1) || fail DefineFailed define "$out"',
    // Started unless it runs: `start` refuses an active domain, which is then running or paused.
    `if ! out=$($V start --domain ${name} 2>&1); then`,
    '  case "$out" in',
    `    *"already active"*) [ "$($V domstate --domain ${name} 2>&1)" != paused ] || out=$($V resume --domain ${name} 2>&1) || fail StartFailed start "$out" ;;`,
    '    *) fail StartFailed start "$out" ;;',
    '  esac',
    'fi',
    // One virsh for both (each virsh costs a libvirt connection).
    `$V "echo @@state; domstate --domain ${name}; echo @@vnc; vncdisplay --domain ${name}" 2>&1`,
  );
  return L.filter((l) => l !== '').join('\n') + '\n';
}

// ---- on the host ----

export interface HostProfile {
  domainType: 'kvm' | 'qemu';
  cgroup2: boolean;
  totalMhz?: number;
  /** The bridge that is, or holds, the host's uplink (cloudbr0 on a CloudStack KVM host). */
  uplinkBridge?: string;
}

const PROBE_SCRIPT = [
  'export LC_ALL=C',
  // kvm only when libvirt offers it and the device opens (a container may list it but refuse it).
  `if [ -c /dev/kvm ] && ( exec 3<>/dev/kvm ) 2>/dev/null && ${VIRSH} domcapabilities --virttype kvm 2>/dev/null | grep -q '<domain>kvm</domain>'; then echo '@@type kvm'; else echo '@@type qemu'; fi`,
  `[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ] && echo '@@cgroup 2' || echo '@@cgroup 1'`,
  // The uplink's bridge: the uplink itself when it is a bridge, else the bridge it is a port of.
  `up=$(${UPLINK}); m=$(basename "$(readlink "/sys/class/net/$up/master" 2>/dev/null)" 2>/dev/null)`,
  `if [ -n "$up" ] && [ -d "/sys/class/net/$up/bridge" ]; then echo "@@uplinkbridge $up"; elif [ -n "$m" ] && [ -d "/sys/class/net/$m/bridge" ]; then echo "@@uplinkbridge $m"; fi`,
  `${VIRSH} nodeinfo 2>&1`,
].join('\n');

export function parseProbe(text: string): HostProfile {
  const node = parseNodeinfo(text);
  return {
    domainType: /^@@type kvm$/m.test(text) ? 'kvm' : 'qemu',
    cgroup2: /^@@cgroup 2$/m.test(text),
    uplinkBridge: /^@@uplinkbridge (\S+)$/m.exec(text)?.[1],
    totalMhz: node.cpus && node.cpuMhz ? node.cpus * node.cpuMhz : undefined,
  };
}

// Per host, for the life of the agent process: what a host offers does not change under a running
// agent (a re-probe happens after a failed define or start anyway).
const profiles = new Map<string, Promise<HostProfile>>();
const profileKey = (t: SshTarget) => `${t.username}@${t.address}:${t.port}`;

export function forgetHostProfiles(): void {
  profiles.clear();
}

async function hostProfile(pool: SshPool, t: SshTarget): Promise<HostProfile> {
  const k = profileKey(t);
  let p = profiles.get(k);
  if (!p) {
    p = pool.exec(t, PROBE_SCRIPT, { timeoutMs: 30_000 }).then((r) => parseProbe(r.stdout));
    profiles.set(k, p);
    p.catch(() => profiles.get(k) === p && profiles.delete(k));
  }
  return await p;
}

export function firstLines(text: string, max = 800): string {
  return text.trim().replace(/^error:\s*/gm, '').split('\n').filter((l) => l.trim()).join('; ').slice(0, max);
}

/** The failure a startScript `@@fail` line stands for, in an operator's words. */
export function startFailure(vm: Vm, host: string, name: string, key: string, detail: string, uplinkBridge?: string): CommandFailure {
  const d = firstLines(detail);
  const disk = /^disk(\d+)$/.exec(key) ? vm.disks.find((x) => `disk${x.deviceId}` === key) : undefined;
  const nic = /^nic(\d+)$/.exec(key) ? vm.nics[Number(key.slice(3))] : undefined;
  switch (name) {
    case 'NoSuchTemplateFile':
      return new CommandFailure(name, `The template file ${disk?.backingFile} of ${vm.name} does not exist on ${host} (is the template downloaded to this primary storage, and is the pool mounted?)`);
    case 'NoSuchIsoFile':
      return new CommandFailure(name, `The ISO file ${vm.iso} of ${vm.name} does not exist on ${host} (is the ISO downloaded to this primary storage, and is the pool mounted?)`);
    case 'DiskCreateFailed':
      return new CommandFailure(name, `Creating disk ${disk?.path} of ${vm.name} on ${host} failed: ${d}`);
    case 'ConfigDriveFailed':
      return new CommandFailure(name, `Writing the config drive ${vm.configDrive.path} of ${vm.name} on ${host} failed: ${d}`);
    case 'BridgeUnavailable':
      if (key.startsWith('novlan')) {
        return new CommandFailure(name, `Cannot set up the VLAN bridge ${vlanBridge(Number(key.slice(6)))} for ${vm.name} on ${host}: the kernel cannot make 802.1Q VLAN links (load the 8021q module; a kernel without CONFIG_VLAN_8021Q needs MOLD_AGENT_VLAN_FALLBACK=isolated on the agent): ${d}`);
      }
      if (nic) return new CommandFailure(name, `Bridge ${nicBridge(nic, vm.name, uplinkBridge)} for NIC ${nic.mac} of ${vm.name} does not exist on ${host}`);
      return new CommandFailure(name, `Cannot set up the VLAN bridge${key.startsWith('vlan') ? ` ${vlanBridge(Number(key.slice(4)))}` : ''} for ${vm.name} on ${host}: ${d}`);
    case 'DefineFailed':
      return new CommandFailure(name, `virsh define of domain ${vm.name} on ${host} failed: ${d}`);
    case 'StartFailed':
      return new CommandFailure(name, `virsh start of domain ${vm.name} on ${host} failed: ${d}`);
    default:
      return new CommandFailure(name, `Starting ${vm.name} on ${host} failed at ${key}: ${d}`);
  }
}

export function notDefined(text: string): boolean {
  return /failed to get domain|Domain not found|no domain with matching name/i.test(text);
}

export function virshProblem(t: SshTarget, text: string): CommandFailure {
  if (/Failed to connect socket|failed to connect to the hypervisor|virsh: (command )?not found/i.test(text)) {
    return failures.noLibvirt(who(t), firstLines(text, 300));
  }
  return new CommandFailure('HostCommandFailed', `virsh on ${who(t)} failed: ${firstLines(text)}`);
}

type StartPayload = CommandPayload<'startVm'>;

export async function startVm(pool: SshPool, payload: StartPayload): Promise<CommandResult<'startVm'>> {
  const t = hostTarget(payload.host);
  const vm = payload.vm as Vm;
  checkVm(vm);
  const profile = await hostProfile(pool, t);
  const { uplinkBridge } = profile;
  // Probed afresh next time: the host's uplink may be put on a bridge meanwhile.
  if (!uplinkBridge && vm.nics.some((n) => n.vlan === UNTAGGED)) profiles.delete(profileKey(t));
  const xml = domainXml(vm, { domainType: profile.domainType, cpuShares: cpuShares(vm.vcpus, vm.cpuMhz, profile), uplinkBridge });
  const vlanFallback = process.env.MOLD_AGENT_VLAN_FALLBACK === 'isolated' ? 'isolated' : undefined;
  const script = startScript(vm, xml, { vlanFallback, uplinkBridge });
  const r = await runScript(pool, t, script, SCRIPT_TIMEOUT_MS);
  const out = r.stdout;
  for (const m of out.matchAll(/^@@isolated (\d+)$/gm)) {
    log.warn('no 802.1Q support on the host: the VLAN bridge has no uplink', { host: who(t), domain: vm.name, vlan: Number(m[1]), bridge: vlanBridge(Number(m[1])) });
  }
  const failed = /^@@fail (\S+) (\S+)\n([\s\S]*)$/m.exec(out);
  if (failed) {
    if (failed[1] === 'DefineFailed' || failed[1] === 'StartFailed' || failed[1] === 'BridgeUnavailable') profiles.delete(profileKey(t));
    throw startFailure(vm, who(t), failed[1]!, failed[2]!, failed[3]!, uplinkBridge);
  }
  const state = /^@@state\n(.*)$/m.exec(out)?.[1];
  if (r.code !== 0 || state === undefined) {
    throw new CommandFailure('StartFailed', `Starting ${vm.name} on ${who(t)} failed (exit ${r.code ?? r.signal}): ${firstLines(r.stderr || out)}`);
  }
  const vncPort = parseVncDisplay(/^@@vnc\n(.*)$/m.exec(out)?.[1] ?? '');
  return { name: vm.name, state: parseDomstate(state), ...(vncPort !== undefined && { vncPort }) };
}

/** Runs a script sent on stdin (no command-line length limit: user data may be 32 KB). */
export async function runScript(pool: SshPool, t: SshTarget, script: string, timeoutMs: number) {
  const command = 't=$(mktemp /tmp/mold-agent.XXXXXX) || exit 1; cat > "$t"; sh "$t" </dev/null; rc=$?; rm -f "$t"; exit $rc';
  return await pool.exec(t, command, { timeoutMs, input: script });
}

async function virsh(pool: SshPool, t: SshTarget, args: string, timeoutMs = 60_000) {
  return await pool.exec(t, `LC_ALL=C ${VIRSH} ${args}`, { timeoutMs });
}

/** The domain's state, or undefined when it is not defined. */
async function domstate(pool: SshPool, t: SshTarget, name: string): Promise<PowerState | undefined> {
  const r = await virsh(pool, t, `domstate --domain ${shq(name)}`);
  if (r.code === 0) return parseDomstate(r.stdout);
  const text = r.stderr || r.stdout;
  if (notDefined(text)) return undefined;
  throw virshProblem(t, text);
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

async function destroy(pool: SshPool, t: SshTarget, name: string): Promise<void> {
  const r = await virsh(pool, t, `destroy --domain ${shq(name)}`);
  if (r.code === 0) return;
  const text = r.stderr || r.stdout;
  if (notDefined(text) || /not running/i.test(text)) return;
  const now = await domstate(pool, t, name);
  if (now === undefined || now === 'Stopped') return;
  throw new CommandFailure('StopFailed', `virsh destroy of domain ${name} on ${who(t)} failed: ${firstLines(text)}`);
}

export async function stopVm(pool: SshPool, payload: CommandPayload<'stopVm'>, signal?: AbortSignal): Promise<CommandResult<'stopVm'>> {
  const result = await halt(pool, payload, signal);
  // As upstream's KVM agent does: a stopped VM leaves no definition behind (its disks stay), so the
  // next start defines it afresh on whichever host it lands.
  await expungeVm(pool, { host: payload.host, name: payload.name, files: [] });
  return result;
}

async function halt(pool: SshPool, payload: CommandPayload<'stopVm'>, signal?: AbortSignal): Promise<CommandResult<'stopVm'>> {
  const t = hostTarget(payload.host);
  const { name } = payload;
  const state = await domstate(pool, t, name);
  if (state === undefined || state === 'Stopped') return { name, state: 'Stopped', forced: false };
  // A paused or crashed guest cannot take an ACPI request: off at once.
  if (payload.forced || state === 'Paused' || state === 'Crashed' || state === 'Suspended') {
    await destroy(pool, t, name);
    return { name, state: 'Stopped', forced: true };
  }
  const r = await virsh(pool, t, `shutdown --domain ${shq(name)}`);
  if (r.code !== 0) {
    const text = r.stderr || r.stdout;
    if (notDefined(text) || /not running/i.test(text)) return { name, state: 'Stopped', forced: false };
    // The guest cannot be asked (no ACPI): the timeout would change nothing.
    await destroy(pool, t, name);
    return { name, state: 'Stopped', forced: true };
  }
  const deadline = Date.now() + (payload.timeoutSeconds ?? 60) * 1000;
  while (Date.now() < deadline && !signal?.aborted) {
    await sleep(Math.min(STOP_POLL_MS, Math.max(0, deadline - Date.now())), signal);
    const now = await domstate(pool, t, name);
    if (now === undefined || now === 'Stopped') return { name, state: 'Stopped', forced: false };
  }
  await destroy(pool, t, name);
  return { name, state: 'Stopped', forced: true };
}

async function vncPort(pool: SshPool, t: SshTarget, name: string): Promise<number | undefined> {
  const r = await virsh(pool, t, `vncdisplay --domain ${shq(name)}`);
  return r.code === 0 ? parseVncDisplay(r.stdout) : undefined;
}

export async function rebootVm(pool: SshPool, payload: CommandPayload<'rebootVm'>): Promise<CommandResult<'rebootVm'>> {
  const t = hostTarget(payload.host);
  const { name } = payload;
  const state = await domstate(pool, t, name);
  if (state !== 'Running') {
    throw new CommandFailure('VmNotRunning', `Cannot reboot ${name} on ${who(t)}: ${state === undefined ? 'no such domain' : `it is not running (state ${state})`}`);
  }
  const r = await virsh(pool, t, `reboot --domain ${shq(name)}`);
  if (r.code !== 0) {
    // No ACPI or guest agent to ask: a hard reset does what the user asked for.
    const reset = await virsh(pool, t, `reset --domain ${shq(name)}`);
    if (reset.code !== 0) {
      throw new CommandFailure('RebootFailed', `Rebooting domain ${name} on ${who(t)} failed: ${firstLines(r.stderr || r.stdout)}; virsh reset: ${firstLines(reset.stderr || reset.stdout)}`);
    }
  }
  const after = (await domstate(pool, t, name)) ?? 'Unknown';
  const port = after === 'Running' ? await vncPort(pool, t, name) : undefined;
  return { name, state: after, ...(port !== undefined && { vncPort: port }) };
}

/** The expungeVm script: `@@removed <index>` per file it deleted; `@@fail <Name> <key>` as startScript. */
export function expungeScript(name: string, files: string[]): string {
  const n = shq(name);
  const L = [
    'set -u',
    'export LC_ALL=C',
    `V=${shq(VIRSH)}`,
    `fail() { printf '@@fail %s %s\\n%s\\n' "$1" "$2" "$3"; exit 3; }`,
    `st=$($V domstate --domain ${n} 2>&1); rc=$?`,
    'if [ $rc -eq 0 ]; then',
    `  [ "$st" = "shut off" ] || out=$($V destroy --domain ${n} 2>&1) || [ "$($V domstate --domain ${n} 2>&1)" = "shut off" ] || fail StopFailed destroy "$out"`,
    `  out=$($V undefine --domain ${n} --nvram 2>&1) || out=$($V undefine --domain ${n} 2>&1) || fail UndefineFailed undefine "$out"`,
    'else',
    '  case "$st" in *"failed to get domain"*|*"Domain not found"*) ;; *) fail NoLibvirt domstate "$st" ;; esac',
    'fi',
  ];
  files.forEach((f, i) => {
    L.push(
      `f=${shq(f)}`,
      'rm -f "$f.part"',
      `if [ -e "$f" ] || [ -L "$f" ]; then out=$(rm -f "$f" 2>&1) || fail RemoveFailed file${i} "$out"; echo "@@removed ${i}"; fi`,
    );
  });
  L.push('echo "@@done"');
  return L.join('\n') + '\n';
}

export async function expungeVm(pool: SshPool, payload: CommandPayload<'expungeVm'>): Promise<CommandResult<'expungeVm'>> {
  const t = hostTarget(payload.host);
  const { name, files } = payload;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]{0,254}$/.test(name)) throw new CommandFailure('InvalidCommand', `Unusable domain name ${JSON.stringify(name)}`);
  for (const f of files) checkPath(`A file of ${name}`, f);
  const r = await runScript(pool, t, expungeScript(name, files), SCRIPT_TIMEOUT_MS);
  const failed = /^@@fail (\S+) (\S+)\n([\s\S]*)$/m.exec(r.stdout);
  if (failed) {
    const [, error, key, detail] = failed;
    if (error === 'NoLibvirt') throw virshProblem(t, detail!);
    if (error === 'RemoveFailed') throw new CommandFailure(error, `Removing ${files[Number(key!.slice(4))]} of ${name} on ${who(t)} failed: ${firstLines(detail!)}`);
    throw new CommandFailure(error!, `virsh ${key} of domain ${name} on ${who(t)} failed: ${firstLines(detail!)}`);
  }
  if (r.code !== 0 || !/^@@done$/m.test(r.stdout)) {
    throw new CommandFailure('ExpungeFailed', `Expunging ${name} on ${who(t)} failed (exit ${r.code ?? r.signal}): ${firstLines(r.stderr || r.stdout)}`);
  }
  const removed = [...r.stdout.matchAll(/^@@removed (\d+)$/gm)].map((m) => files[Number(m[1])]!);
  return { removed };
}
