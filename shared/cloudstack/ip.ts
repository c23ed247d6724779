// Pure IPv4 helpers: addresses as unsigned 32-bit numbers, netmasks and CIDRs, address ranges and
// VLAN range lists ("100-199,300-399"), with upstream NetUtils' notion of what is valid.

/** A dotted quad with four decimal octets 0..255, no leading zeros (as InetAddressValidator). */
export function parseIpv4(text: string | undefined): number | undefined {
  if (typeof text !== 'string') return undefined;
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export const isIpv4 = (text: string | undefined) => parseIpv4(text) !== undefined;

export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/** The prefix length of a netmask of contiguous ones (0.0.0.0 .. 255.255.255.255), else undefined. */
export function netmaskPrefix(netmask: string | undefined): number | undefined {
  const value = parseIpv4(netmask);
  if (value === undefined) return undefined;
  const inverted = ~value >>> 0;
  // Contiguous ones: the inverted mask plus one is a power of two.
  if ((inverted & (inverted + 1)) !== 0) return undefined;
  return 32 - Math.log2(inverted + 1);
}

/** Upstream's isValidIp4Netmask: contiguous ones, not 0.0.0.0. */
export const isNetmask = (netmask: string | undefined) => {
  const prefix = netmaskPrefix(netmask);
  return prefix !== undefined && prefix > 0;
};

export function prefixNetmask(prefix: number): string {
  return formatIpv4(maskOf(prefix));
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export interface Cidr {
  /** The network address. */
  network: number;
  prefix: number;
}

/** "a.b.c.d/n" with n in 0..32; the address is reduced to its network. */
export function parseCidr(text: string | undefined): Cidr | undefined {
  if (typeof text !== 'string') return undefined;
  const match = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!match) return undefined;
  const address = parseIpv4(match[1]);
  const prefix = Number(match[2]);
  if (address === undefined || prefix > 32) return undefined;
  return { network: (address & maskOf(prefix)) >>> 0, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.network)}/${cidr.prefix}`;
}

/** The CIDR of `address` under `netmask` (upstream's ipAndNetMaskToCidr). */
export function cidrOf(address: string, netmask: string): string | undefined {
  const value = parseIpv4(address);
  const prefix = netmaskPrefix(netmask);
  if (value === undefined || prefix === undefined) return undefined;
  return formatCidr({ network: (value & maskOf(prefix)) >>> 0, prefix });
}

export function inCidr(address: string | number, cidr: Cidr | string): boolean {
  const value = typeof address === 'number' ? address : parseIpv4(address);
  const parsed = typeof cidr === 'string' ? parseCidr(cidr) : cidr;
  if (value === undefined || !parsed) return false;
  return ((value & maskOf(parsed.prefix)) >>> 0) === parsed.network;
}

/** The broadcast address of a CIDR. */
export function broadcastOf(cidr: Cidr): number {
  return (cidr.network | ~maskOf(cidr.prefix)) >>> 0;
}

/** Upstream's isNetworkorBroadcastIP: the address is the subnet's network or broadcast address. */
export function isNetworkOrBroadcast(address: string, netmask: string): boolean {
  const cidr = parseCidr(cidrOf(address, netmask));
  const value = parseIpv4(address);
  if (!cidr || value === undefined || cidr.prefix >= 31) return false;
  return value === cidr.network || value === broadcastOf(cidr);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  return ((a.network & maskOf(prefix)) >>> 0) === ((b.network & maskOf(prefix)) >>> 0);
}

/** An inclusive range of numbers (addresses or VLAN ids). */
export interface Range {
  start: number;
  end: number;
}

export const rangesOverlap = (a: Range, b: Range) => a.start <= b.end && b.start <= a.end;

export const rangeSize = (range: Range) => range.end - range.start + 1;

export function ipRange(start: string, end: string): Range | undefined {
  const s = parseIpv4(start);
  const e = parseIpv4(end);
  return s === undefined || e === undefined ? undefined : { start: s, end: e };
}

/** Zero-padded sort key of an address, so string order is numeric order. */
export const ipSortKey = (value: number) => value.toString(16).padStart(8, '0');

// ---- VLAN ranges ----

export const MIN_VLAN_ID = 0;
export const MAX_VLAN_ID = 4095;

export type VlanRangeResult = { ranges: Range[] } | { error: string };

/**
 * Upstream's validateVlanRange for a comma-separated list of `start-end` ranges: each within
 * MIN_VLAN_ID..MAX_VLAN_ID with start <= end. Mold also refuses ranges that overlap each other.
 * An empty string is no ranges.
 */
export function parseVlanRanges(text: string): VlanRangeResult {
  const rangeMessage = ` between ${MIN_VLAN_ID} and ${MAX_VLAN_ID}`;
  const ranges: Range[] = [];
  for (const token of text.split(',')) {
    const piece = token.trim();
    if (piece === '') {
      if (text.trim() === '') continue;
      return { error: `Please provide valid vnet range. vnet range should be a comma separated list of vlan ranges. example 500-500,600-601${rangeMessage}` };
    }
    const bounds = piece.split('-');
    if (bounds.length !== 2) {
      return { error: `Please provide valid vnet range. vnet range should be a comma separated list of vlan ranges. example 500-500,600-601${rangeMessage}` };
    }
    if (!bounds.every((b) => /^\d{1,10}$/.test(b.trim()))) {
      return { error: `Please provide valid vnet range. The vnet range should be a comma separated list example 2001-2012,3000-3005.${rangeMessage}` };
    }
    const [start, end] = bounds.map((b) => Number(b.trim()));
    if (start < MIN_VLAN_ID || end > MAX_VLAN_ID) return { error: `Vnet range has to be${rangeMessage}` };
    if (start > end) return { error: `Vnet range has to be${rangeMessage} and start range should be lesser than or equal to stop range` };
    const clash = ranges.find((other) => rangesOverlap(other, { start, end }));
    if (clash) return { error: `Vnet range ${start}-${end} overlaps with the range ${formatVlanRange(clash)}` };
    ranges.push({ start, end });
  }
  return { ranges: ranges.sort((a, b) => a.start - b.start) };
}

export const formatVlanRange = (range: Range) => `${range.start}-${range.end}`;

/** Upstream's generateVnetString: sorted ranges joined with commas (adjacent ranges stay apart). */
export function formatVlanRanges(ranges: readonly Range[]): string {
  return [...ranges].sort((a, b) => a.start - b.start).map(formatVlanRange).join(',');
}

export const vlanInRanges = (vlan: number, ranges: readonly Range[]) => ranges.some((r) => vlan >= r.start && vlan <= r.end);

/**
 * Upstream's Vlan.UNTAGGED: a shared network on the hosts' own LAN, without a tag (broadcast URI
 * vlan://untagged, broadcast domain type Native). Guests of such a network sit on the hosts' uplink.
 */
export const UNTAGGED = 'untagged';
/** A network's VLAN: an 802.1Q id, or untagged. */
export type VlanTag = number | typeof UNTAGGED;

/** A network's VLAN given as "100", "vlan://100", "untagged" or "vlan://untagged" (any case); undefined when it is none of these. */
export function parseVlanId(text: string): VlanTag | undefined {
  const match = /^(?:vlan:\/\/)?(\d{1,4}|untagged)$/i.exec(text.trim());
  if (!match) return undefined;
  if (match[1]!.toLowerCase() === UNTAGGED) return UNTAGGED;
  const id = Number(match[1]);
  return id >= MIN_VLAN_ID && id <= MAX_VLAN_ID ? id : undefined;
}
