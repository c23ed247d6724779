// Reading what hosts print: virsh's and /proc's text, and CloudStack's checksum notation. Pure
// functions, unit-tested against output captured from the lab's hosts.
import type { DomainUsage } from '../shared/agent/protocol.ts';

/**
 * A shell script that runs named commands one after the other, each section framed by markers with
 * its exit status, so one SSH round trip gathers everything. Output is merged (2>&1).
 */
export function sectionScript(sections: Record<string, string>): string {
  const lines = ['export LC_ALL=C'];
  for (const [name, command] of Object.entries(sections)) {
    lines.push(`echo '@@begin ${name}'`, `( ${command} ) 2>&1`, `echo "@@end ${name} $?"`);
  }
  return lines.join('\n');
}

export interface Section {
  output: string;
  code: number;
}

export function parseSections(text: string): Record<string, Section> {
  const sections: Record<string, Section> = {};
  const re = /^@@begin (\S+)\n([\s\S]*?)^@@end \1 (\d+)$/gm;
  for (const m of text.matchAll(re)) sections[m[1]!] = { output: m[2]!.replace(/\n$/, ''), code: Number(m[3]) };
  return sections;
}

/** `virsh version`: library and hypervisor versions. */
export function parseVirshVersion(text: string): { libvirtVersion?: string; qemuVersion?: string } {
  const lib = /Using library:\s*libvirt\s+(\S+)/.exec(text)?.[1];
  const hv = /Running hypervisor:\s*QEMU\s+(\S+)/i.exec(text)?.[1];
  return { libvirtVersion: lib, qemuVersion: hv };
}

export interface NodeInfo {
  cpuModel?: string;
  cpus?: number;
  cpuMhz?: number;
  sockets?: number;
  coresPerSocket?: number;
  threadsPerCore?: number;
  memoryKiB?: number;
}

/** `virsh nodeinfo`. */
export function parseNodeinfo(text: string): NodeInfo {
  const field = (label: string) => {
    const m = new RegExp(`^${label.replace(/[()]/g, '\\$&')}:\\s*(.+)$`, 'm').exec(text);
    return m?.[1]!.trim();
  };
  const int = (v: string | undefined) => {
    const n = v === undefined ? NaN : parseInt(v, 10);
    return Number.isFinite(n) ? n : undefined;
  };
  return {
    cpuModel: field('CPU model'),
    cpus: int(field('CPU(s)')),
    cpuMhz: int(field('CPU frequency')),
    sockets: int(field('CPU socket(s)')),
    coresPerSocket: int(field('Core(s) per socket')),
    threadsPerCore: int(field('Thread(s) per core')),
    memoryKiB: int(field('Memory size')),
  };
}

/** `virsh capabilities`: the host's UUID and architecture, and the domain types of its arch. */
export function parseCapabilities(xml: string): { hostUuid?: string; arch?: string; domainTypes: string[] } {
  const host = /<host>([\s\S]*?)<\/host>/.exec(xml)?.[1] ?? '';
  const hostUuid = /<uuid>\s*([^<\s]+)\s*<\/uuid>/.exec(host)?.[1];
  const arch = /<cpu>[\s\S]*?<arch>\s*([^<\s]+)\s*<\/arch>/.exec(host)?.[1];
  const domainTypes = new Set<string>();
  for (const g of xml.matchAll(/<guest>([\s\S]*?)<\/guest>/g)) {
    const guestArch = /<arch name='([^']+)'/.exec(g[1]!)?.[1] ?? /<arch name="([^"]+)"/.exec(g[1]!)?.[1];
    if (arch && guestArch !== arch) continue;
    for (const d of g[1]!.matchAll(/<domain type=['"]([^'"]+)['"]/g)) domainTypes.add(d[1]!);
  }
  return { hostUuid, arch, domainTypes: [...domainTypes] };
}

/** `virsh domcapabilities`: the domain type it describes (kvm or qemu). */
export function parseDomcapabilitiesType(xml: string): string | undefined {
  return /<domain>\s*([^<\s]+)\s*<\/domain>/.exec(xml)?.[1];
}

/** /proc/meminfo, in bytes. */
export function parseMeminfo(text: string): { totalBytes?: number; freeBytes?: number } {
  const kib = (label: string) => {
    const m = new RegExp(`^${label}:\\s*(\\d+)\\s*kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  // MemAvailable is what a new guest can get without swapping (page cache included).
  return { totalBytes: kib('MemTotal'), freeBytes: kib('MemAvailable') ?? kib('MemFree') };
}

/** /proc/loadavg: the one-minute load. */
export function parseLoadavg(text: string): number | undefined {
  const n = parseFloat(text.trim().split(/\s+/)[0] ?? '');
  return Number.isFinite(n) ? n : undefined;
}

export type PowerState = 'Running' | 'Stopped' | 'Paused' | 'Shutdown' | 'Crashed' | 'Suspended' | 'Unknown';

// virDomainState: 0 nostate, 1 running, 2 blocked, 3 paused, 4 shutdown (in progress), 5 shutoff,
// 6 crashed, 7 pmsuspended.
const STATES: Record<number, PowerState> = {
  0: 'Unknown',
  1: 'Running',
  2: 'Running',
  3: 'Paused',
  4: 'Shutdown',
  5: 'Stopped',
  6: 'Crashed',
  7: 'Suspended',
};

/** `virsh domstate` (its first line: libvirt words, e.g. "shut off", "in shutdown"). */
export function parseDomstate(text: string): PowerState {
  const word = text.trim().split('\n')[0]!.trim().toLowerCase();
  const states: Record<string, PowerState> = {
    running: 'Running',
    idle: 'Running',
    blocked: 'Running',
    paused: 'Paused',
    'in shutdown': 'Shutdown',
    'shut off': 'Stopped',
    crashed: 'Crashed',
    pmsuspended: 'Suspended',
    'no state': 'Unknown',
  };
  return states[word] ?? 'Unknown';
}

/** `virsh vncdisplay` (`:3`, `10.0.0.5:3`, `[::1]:3`): the TCP port, 5900 + display. */
export function parseVncDisplay(text: string): number | undefined {
  const m = /:(\d+)\s*$/.exec(text.trim().split('\n')[0] ?? '');
  return m ? 5900 + Number(m[1]) : undefined;
}

/**
 * Domains from `virsh list --all --uuid --name` (lines `uuid name`) and `virsh domstats --state`
 * (blocks `Domain: 'name'` / `state.state=N`).
 */
/** `virsh domstats` output: each domain's name with its `key=value` fields. */
function domstatsBlocks(domstats: string): Map<string, Map<string, string>> {
  const blocks = new Map<string, Map<string, string>>();
  for (const block of domstats.split(/^Domain: /m).slice(1)) {
    const name = /^'(.*)'\s*$/m.exec(block)?.[1];
    if (name === undefined) continue;
    const fields = new Map<string, string>();
    for (const m of block.matchAll(/^\s+([\w.]+)=(.*)$/gm)) fields.set(m[1]!, m[2]!.trim());
    blocks.set(name, fields);
  }
  return blocks;
}

/**
 * A running domain's counters from `virsh domstats --nowait --cpu-total --vcpu --balloon --interface --block`,
 * summed over its NICs and disks; undefined without cpu.time or its disks' counters (not running, or
 * not readable now).
 */
function usageOf(fields: Map<string, string>, at: number): DomainUsage | undefined {
  const number = (key: string) => {
    const value = fields.get(key);
    return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
  };
  const sum = (prefix: 'net' | 'block', suffix: string) => {
    let total = 0;
    for (let i = 0; i < (number(`${prefix}.count`) ?? 0); i++) total += number(`${prefix}.${i}.${suffix}`) ?? 0;
    return total;
  };
  const cpuTimeNs = number('cpu.time');
  if (cpuTimeNs === undefined) return undefined;
  // Read with --nowait: a domain busy with a job (a migration) has no disk counters this time. Totals
  // that dropped to 0 would read as a restarted qemu; the next report reads them all.
  for (let i = 0; i < (number('block.count') ?? 0); i++) if (number(`block.${i}.rd.bytes`) === undefined) return undefined;
  const memory = number('balloon.current');
  const memoryMax = number('balloon.maximum');
  const unused = number('balloon.unused');
  return {
    at,
    cpuTimeNs,
    vcpus: Math.max(1, number('vcpu.current') ?? 1),
    ...(memory !== undefined && { memoryKiB: memory }),
    ...(memoryMax !== undefined && { memoryMaxKiB: memoryMax }),
    ...(unused !== undefined && { memoryUnusedKiB: unused }),
    netRxBytes: sum('net', 'rx.bytes'),
    netTxBytes: sum('net', 'tx.bytes'),
    diskReadBytes: sum('block', 'rd.bytes'),
    diskWriteBytes: sum('block', 'wr.bytes'),
    diskReadReqs: sum('block', 'rd.reqs'),
    diskWriteReqs: sum('block', 'wr.reqs'),
  };
}

/**
 * `virsh list --all --uuid --name` with the states of `virsh domstats --state` and, for running domains,
 * the usage counters of `virsh domstats --list-running …` read at `at` (ms).
 */
export function parseDomains(list: string, domstats: string, usage = '', at = Date.now()): Array<{ name: string; uuid: string; state: PowerState; usage?: DomainUsage }> {
  const states = new Map<string, PowerState>();
  for (const [name, fields] of domstatsBlocks(domstats)) states.set(name, STATES[Number(fields.get('state.state'))] ?? 'Unknown');
  const usages = new Map<string, DomainUsage>();
  for (const [name, fields] of domstatsBlocks(usage)) {
    const counters = usageOf(fields, at);
    if (counters) usages.set(name, counters);
  }
  const domains: Array<{ name: string; uuid: string; state: PowerState; usage?: DomainUsage }> = [];
  for (const line of list.split('\n')) {
    const m = /^\s*([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\s+(.+?)\s*$/i.exec(line);
    if (!m) continue;
    const counters = usages.get(m[2]!);
    domains.push({ uuid: m[1]!, name: m[2]!, state: states.get(m[2]!) ?? 'Unknown', ...(counters && { usage: counters }) });
  }
  return domains;
}

export type ChecksumAlgorithm = 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

const ALGORITHMS: Record<string, ChecksumAlgorithm> = {
  MD5: 'md5',
  'SHA-1': 'sha1',
  SHA1: 'sha1',
  'SHA-224': 'sha224',
  SHA224: 'sha224',
  'SHA-256': 'sha256',
  SHA256: 'sha256',
  'SHA-384': 'sha384',
  SHA384: 'sha384',
  'SHA-512': 'sha512',
  SHA512: 'sha512',
};
const LABELS: Record<ChecksumAlgorithm, string> = {
  md5: 'MD5',
  sha1: 'SHA-1',
  sha224: 'SHA-224',
  sha256: 'SHA-256',
  sha384: 'SHA-384',
  sha512: 'SHA-512',
};
const HEX_LENGTH: Record<ChecksumAlgorithm, number> = { md5: 32, sha1: 40, sha224: 56, sha256: 64, sha384: 96, sha512: 128 };

export interface Checksum {
  algorithm: ChecksumAlgorithm;
  hex: string;
}

/**
 * CloudStack's checksum notation: `{ALGORITHM}hex` (`{SHA-256}…`, `{MD5}…`), or bare hex, which
 * upstream reads as MD5. Throws on anything else.
 */
export function parseChecksum(text: string): Checksum {
  const m = /^\s*(?:\{([A-Za-z0-9-]+)\})?\s*([0-9a-fA-F]+)\s*$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a checksum ({ALGORITHM}hex or hex)`);
  const algorithm = m[1] ? ALGORITHMS[m[1].toUpperCase()] : 'md5';
  if (!algorithm) throw new Error(`unknown checksum algorithm ${m[1]} (MD5, SHA-1, SHA-224, SHA-256, SHA-384, SHA-512)`);
  const hex = m[2]!.toLowerCase();
  if (hex.length !== HEX_LENGTH[algorithm]) throw new Error(`a ${LABELS[algorithm]} checksum has ${HEX_LENGTH[algorithm]} hex digits, "${m[2]}" has ${hex.length}`);
  return { algorithm, hex };
}

export function formatChecksum(c: Checksum): string {
  return `{${LABELS[c.algorithm]}}${c.hex}`;
}

/** The line of authorized_keys tagged with `comment`, removed; the rest kept as is. */
export function authorizedKeysScript(publicKeyLine: string | undefined, comment: string): string {
  // Rewrites the file in place (cat >) rather than renaming over it, so its inode, owner and mode
  // survive (it may be a bind mount or a symlink).
  const escaped = comment.replace(/[.[\]*^$\\+?(){}|/-]/g, '\\$&');
  const add = publicKeyLine ? `printf '%s\\n' ${shellQuote(publicKeyLine)} >> "$t" &&` : '';
  // A line already there, once, is left alone: sshd may be reading the file for a login that needs it
  // (another migration to this host, under way while this one is prepared).
  const present = publicKeyLine
    ? `[ "$(grep -c -E ' ${escaped}$' ~/.ssh/authorized_keys)" = 1 ] && grep -qxF ${shellQuote(publicKeyLine)} ~/.ssh/authorized_keys && exit 0`
    : '';
  return [
    'umask 077',
    'mkdir -p ~/.ssh',
    '[ -e ~/.ssh/authorized_keys ] || touch ~/.ssh/authorized_keys',
    ...(present ? [present] : []),
    't=$(mktemp ~/.ssh/.mold-agent.XXXXXX)',
    `{ grep -v -E ' ${escaped}$' ~/.ssh/authorized_keys || true; } > "$t" && ${add} cat "$t" > ~/.ssh/authorized_keys; rc=$?`,
    'rm -f "$t"',
    'exit $rc',
  ].join('\n');
}

/**
 * Rewrites authorized_keys so that the Mold agent keys in it (lines tagged mold-agent-<id>) are exactly
 * `lines`; other keys stay. As authorizedKeysScript, in place, and only when that changes the file: sshd may
 * be reading it for the agent's own new connection (a report's first to a host just added).
 */
export function agentKeysScript(lines: string[]): string {
  return [
    'umask 077',
    'mkdir -p ~/.ssh',
    'touch ~/.ssh/authorized_keys',
    't=$(mktemp ~/.ssh/.mold-agent.XXXXXX)',
    `{ grep -v -E ' mold-agent-[0-9A-Fa-f-]+$' ~/.ssh/authorized_keys || true; } > "$t" && printf '%s\\n' ${lines.map(shellQuote).join(' ')} >> "$t" && { cmp -s "$t" ~/.ssh/authorized_keys || cat "$t" > ~/.ssh/authorized_keys; }; rc=$?`,
    'rm -f "$t"',
    'exit $rc',
  ].join('\n');
}

export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
