// What the agent does on a KVM host over an open SSH connection: check libvirt and gather facts
// (addHost, reconnectHost), manage its key in authorized_keys, set a password, gather the periodic
// report. Each is one script in one SSH round trip.
import type { HostFacts, HostReport, HostTarget } from '../shared/agent/protocol.ts';
import { CommandFailure, failures } from './errors.ts';
import {
  authorizedKeysScript,
  parseCapabilities,
  parseDomains,
  parseDomcapabilitiesType,
  parseLoadavg,
  parseMeminfo,
  parseNodeinfo,
  parseSections,
  parseVirshVersion,
  sectionScript,
  shellQuote,
  type Section,
} from './parse.ts';
import { HEARTBEAT_DIR, STORAGE_HEARTBEAT_SECONDS } from '../shared/storage-heartbeat.ts';
import { who, type SshConnection } from './ssh.ts';

const VIRSH = 'virsh -c qemu:///system';

/** Why virsh did not answer, in the operator's words; undefined when it did. */
export function libvirtProblem(section: Section | undefined): string | undefined {
  if (!section) return 'the host did not run the check';
  if (section.code === 0) return undefined;
  const text = section.output.trim();
  if (section.code === 127 || /virsh: (command )?not found/.test(text)) return 'virsh not found (install libvirt-clients and libvirt-daemon)';
  if (/Failed to connect socket|failed to connect to the hypervisor|No such file or directory|Connection refused/i.test(text)) {
    return `libvirt is not running (libvirtd does not answer: ${firstError(text)})`;
  }
  return firstError(text) || `virsh exited ${section.code}`;
}

function firstError(text: string): string {
  const line = text.split('\n').find((l) => /^error:/.test(l.trim())) ?? text.split('\n')[0] ?? '';
  return line.replace(/^error:\s*/, '').trim().slice(0, 300);
}

export const FACTS_SCRIPT = sectionScript({
  hostname: 'hostname',
  arch: 'uname -m',
  version: `${VIRSH} version`,
  nodeinfo: `${VIRSH} nodeinfo`,
  capabilities: `${VIRSH} capabilities`,
  domcapsKvm: `${VIRSH} domcapabilities --virttype kvm`,
  domcapsQemu: `${VIRSH} domcapabilities --virttype qemu`,
  meminfo: 'cat /proc/meminfo',
});

/** Facts from FACTS_SCRIPT's output; throws NoLibvirt when libvirt or qemu is missing. */
export function factsFromOutput(output: string, hostWho: string, hostKeyFingerprint: string): HostFacts {
  const s = parseSections(output);
  const problem = libvirtProblem(s.version);
  if (problem) throw failures.noLibvirt(hostWho, problem);
  const { libvirtVersion, qemuVersion } = parseVirshVersion(s.version!.output);
  if (!qemuVersion) throw failures.noLibvirt(hostWho, 'libvirt has no QEMU driver (install libvirt-daemon-driver-qemu and qemu-system)');
  const caps = s.capabilities && s.capabilities.code === 0 ? parseCapabilities(s.capabilities.output) : undefined;
  if (!caps) throw failures.noLibvirt(hostWho, `virsh capabilities failed: ${libvirtProblem(s.capabilities)}`);
  const kvm = s.domcapsKvm?.code === 0 && parseDomcapabilitiesType(s.domcapsKvm.output) === 'kvm' && caps.domainTypes.includes('kvm');
  const qemu = s.domcapsQemu?.code === 0 && parseDomcapabilitiesType(s.domcapsQemu.output) === 'qemu';
  if (!kvm && !qemu) {
    throw failures.noLibvirt(hostWho, `qemu cannot run guests here (virsh domcapabilities: ${libvirtProblem(s.domcapsQemu) ?? 'no kvm or qemu domain type'})`);
  }
  const node = parseNodeinfo(s.nodeinfo?.output ?? '');
  const mem = parseMeminfo(s.meminfo?.output ?? '');
  const memoryBytes = mem.totalBytes ?? (node.memoryKiB ? node.memoryKiB * 1024 : undefined);
  const hostname = s.hostname?.output.trim();
  const missing = [
    !hostname && 'hostname',
    !caps.hostUuid && 'host UUID',
    !node.cpus && 'CPU count',
    !memoryBytes && 'memory size',
  ].filter(Boolean);
  if (missing.length) throw new CommandFailure('HostFactsUnavailable', `Cannot read the ${missing.join(', ')} of ${hostWho} (virsh nodeinfo / capabilities / /proc/meminfo)`);
  return {
    hostname: hostname!,
    hostUuid: caps.hostUuid!,
    cpus: node.cpus!,
    cpuMhz: node.cpuMhz ?? 0,
    cpuSockets: node.sockets && node.sockets > 0 ? node.sockets : 1,
    memoryBytes: memoryBytes!,
    arch: caps.arch ?? s.arch?.output.trim() ?? node.cpuModel ?? 'x86_64',
    libvirtVersion: libvirtVersion ?? 'unknown',
    qemuVersion,
    domainType: kvm ? 'kvm' : 'qemu',
    hostKeyFingerprint,
  };
}

export async function gatherFacts(conn: SshConnection): Promise<HostFacts> {
  const r = await conn.exec(FACTS_SCRIPT, { timeoutMs: 60_000 });
  return factsFromOutput(r.stdout + r.stderr, who(conn.target), conn.hostKeyFingerprint);
}

async function runScript(conn: SshConnection, what: string, script: string, input?: string) {
  const r = await conn.exec(script, { timeoutMs: 30_000, input });
  if (r.code !== 0) {
    throw new CommandFailure('HostCommandFailed', `${what} on ${who(conn.target)} failed (exit ${r.code ?? r.signal}): ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
  }
  return r;
}

/** Installs `publicKeyLine` (tagged `comment`), dropping any older line with the same tag. */
export async function installKey(conn: SshConnection, publicKeyLine: string, comment: string): Promise<void> {
  await runScript(conn, 'Installing the agent\'s SSH key', authorizedKeysScript(publicKeyLine, comment));
}

export async function removeKey(conn: SshConnection, comment: string): Promise<void> {
  await runScript(conn, 'Removing the agent\'s SSH key', authorizedKeysScript(undefined, comment));
}

/**
 * Destroys and undefines every domain named as Mold names VMs (i-<account>-<vm>-<suffix>) and prints
 * their names. For a host deleted with forced=true while it ran VMs, whose records are already Stopped:
 * left running they would write to disks that may start elsewhere.
 */
export const DESTROY_VMS_SCRIPT = [
  'LC_ALL=C; export LC_ALL',
  "for d in $(virsh -c qemu:///system list --all --name | grep -E '^i-[0-9]+-[0-9]+-[A-Za-z0-9-]+$'); do",
  '  virsh -c qemu:///system destroy "$d" >/dev/null 2>&1',
  '  virsh -c qemu:///system undefine --nvram "$d" >/dev/null 2>&1 || virsh -c qemu:///system undefine "$d" >/dev/null 2>&1',
  '  echo "$d"',
  'done',
].join('\n');

export async function destroyVms(conn: SshConnection): Promise<string[]> {
  const r = await runScript(conn, 'Destroying the VMs', DESTROY_VMS_SCRIPT);
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

/** Sets the user's password (through chpasswd's stdin: never on a command line). */
export async function setPassword(conn: SshConnection, username: string, password: string): Promise<void> {
  if (/[:\n]/.test(username) || /\n/.test(password)) throw new CommandFailure('InvalidPassword', 'The username or password contains a character chpasswd cannot take');
  try {
    await runScript(conn, 'Setting the password', 'chpasswd', `${username}:${password}\n`);
  } catch (err) {
    // chpasswd's message cannot hold the password, but keep the failure terse anyway.
    if (err instanceof CommandFailure) throw new CommandFailure('HostCommandFailed', `Setting the password of ${who(conn.target)} failed: chpasswd refused it`);
    throw err;
  }
}

const REPORT_SECTIONS = {
  version: `${VIRSH} version`,
  meminfo: 'cat /proc/meminfo',
  loadavg: 'cat /proc/loadavg',
  list: `${VIRSH} list --all --uuid --name`,
  domstats: `${VIRSH} domstats --state --nowait`,
  // Apart from the states: a domain whose counters cannot be read must not lose its state.
  // --nowait (both): libvirt asks no qemu that is busy with a job (a live migration), so a report
  // never waits behind one; such a domain's counters come in the next report.
  usage: `${VIRSH} domstats --list-running --nowait --cpu-total --vcpu --balloon --interface --block`,
};
export const REPORT_SCRIPT = sectionScript(REPORT_SECTIONS);

type PoolTarget = NonNullable<HostTarget['pools']>[number];

/**
 * The storage heartbeat in one pool (shared/storage-heartbeat.ts): starts the host's writer loop
 * there unless it runs (its pid file names a process whose command line is this writer's), then
 * prints each heartbeat file of the pool as `<host id> <age in seconds>` by this host's clock. The
 * writer is detached from the report's session and holds none of its descriptors, so it outlives it
 * and runs until the host stops.
 */
export function heartbeatScript(poolPath: string, hostId: string): string {
  const dir = `${poolPath.replace(/\/+$/, '')}/${HEARTBEAT_DIR}`;
  const loop = `while :; do date +%s > "$1.new" && mv -f "$1.new" "$1"; sleep ${STORAGE_HEARTBEAT_SECONDS}; done`;
  return [
    `d=${shellQuote(dir)}; f="$d"/${shellQuote(hostId)}`,
    'mkdir -p "$d" || exit 1',
    'pid=$(cat "$f.pid" 2>/dev/null)',
    'if [ -z "$pid" ] || ! tr "\\0" " " < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "mold-heartbeat $f"; then',
    `  setsid sh -c ${shellQuote(loop)} mold-heartbeat "$f" </dev/null >/dev/null 2>&1 &`,
    '  echo $! > "$f.pid"',
    'fi',
    'now=$(date +%s)',
    'for g in "$d"/*; do',
    '  case $g in *.pid|*.new) continue ;; esac',
    '  v=$(cat "$g" 2>/dev/null); case $v in \'\'|*[!0-9]*) continue ;; esac',
    '  echo "${g##*/} $((now - v))"',
    'done',
  ].join('\n');
}

/** `<host id> <age>` lines of the heartbeat sections into ages by host id (the freshest of each). */
export function parseHeartbeats(sections: readonly (Section | undefined)[]): Record<string, number> | undefined {
  const ages: Record<string, number> = {};
  let read = false;
  for (const section of sections) {
    if (!section || section.code !== 0) continue;
    read = true;
    for (const line of section.output.split('\n')) {
      const m = /^([A-Za-z0-9-]{1,64}) (-?\d+)$/.exec(line.trim());
      if (!m) continue;
      // A clock a little behind the writer's reads a small negative age: fresh.
      const age = Math.max(0, Number(m[2]));
      ages[m[1]!] = Math.min(ages[m[1]!] ?? Infinity, age);
    }
  }
  return read ? ages : undefined;
}

/** The report script, with one `df` of each pool's path (pool0, pool1, …) and its storage heartbeat (beat0, beat1, …). */
export function reportScript(pools: readonly PoolTarget[] = [], hostId?: string): string {
  if (pools.length === 0) return REPORT_SCRIPT;
  const dfs = Object.fromEntries(pools.map((pool, i) => [`pool${i}`, `df -B1 --output=size,used -- ${shellQuote(pool.path)}`]));
  const beats = hostId ? Object.fromEntries(pools.map((pool, i) => [`beat${i}`, heartbeatScript(pool.path, hostId)])) : {};
  return sectionScript({ ...REPORT_SECTIONS, ...dfs, ...beats });
}

/** `df -B1 --output=size,used`: its figures line; undefined when df failed or said nothing usable. */
export function parseDf(section: { output: string; code: number } | undefined): { capacityBytes: number; usedBytes: number } | undefined {
  if (!section || section.code !== 0) return undefined;
  const figures = section.output.trim().split('\n').at(-1)?.trim().split(/\s+/).map(Number);
  if (!figures || figures.length !== 2 || figures.some((n) => !Number.isSafeInteger(n) || n < 0)) return undefined;
  return { capacityBytes: figures[0]!, usedBytes: figures[1]! };
}

export function reportFromOutput(hostId: string, output: string, pools: readonly PoolTarget[] = []): HostReport {
  const s = parseSections(output);
  const measured = pools.flatMap((pool, i) => {
    const figures = parseDf(s[`pool${i}`]);
    return figures ? [{ id: pool.id, ...figures }] : [];
  });
  const heartbeats = parseHeartbeats(pools.map((_, i) => s[`beat${i}`]));
  // A domain list that could not be read is not an empty one: the control plane would take every VM
  // on the host for stopped. Such a report says libvirtd is not answering.
  const problem =
    libvirtProblem(s.version) ??
    (s.list?.code === 0 ? undefined : `virsh list failed: ${(s.list?.output ?? 'no output').trim().split('\n')[0]}`);
  const mem = parseMeminfo(s.meminfo?.output ?? '');
  const domains = problem ? [] : parseDomains(s.list!.output, s.domstats?.code === 0 ? s.domstats.output : '', s.usage?.code === 0 ? s.usage.output : '');
  return {
    hostId,
    reachable: true,
    libvirtd: !problem,
    ...(problem && { error: problem.slice(0, 1024) }),
    memoryTotalBytes: mem.totalBytes,
    memoryFreeBytes: mem.freeBytes,
    loadAverage: parseLoadavg(s.loadavg?.output ?? ''),
    domains,
    ...(measured.length > 0 && { pools: measured }),
    ...(heartbeats && { heartbeats }),
  };
}

export async function gatherReport(conn: SshConnection, hostId: string, timeoutMs: number, pools: readonly PoolTarget[] = []): Promise<HostReport> {
  const gatheredAt = Date.now();
  const r = await conn.exec(reportScript(pools, hostId), { timeoutMs, report: true });
  return { ...reportFromOutput(hostId, r.stdout + r.stderr, pools), gatheredAt };
}
