import { describe, expect, it } from 'vitest';
import {
  broadcastOf,
  cidrOf,
  cidrsOverlap,
  formatIpv4,
  formatVlanRanges,
  inCidr,
  ipRange,
  ipSortKey,
  isNetmask,
  isNetworkOrBroadcast,
  netmaskPrefix,
  parseCidr,
  parseIpv4,
  parseVlanId,
  parseVlanRanges,
  prefixNetmask,
  rangesOverlap,
  vlanInRanges,
} from '../../shared/cloudstack/ip.ts';

describe('IPv4 addresses', () => {
  it('parses dotted quads and formats them back', () => {
    expect(parseIpv4('10.1.2.3')).toBe(0x0a010203);
    expect(parseIpv4('255.255.255.255')).toBe(0xffffffff);
    expect(parseIpv4('0.0.0.0')).toBe(0);
    expect(formatIpv4(0x0a010203)).toBe('10.1.2.3');
    expect(formatIpv4(0xffffffff)).toBe('255.255.255.255');
  });

  it.each(['10.1.2', '10.1.2.3.4', '10.1.2.256', '10.1.2.-1', '10.01.2.3', 'a.b.c.d', '', ' 10.1.2.3', '10.1.2.3/24', '1e1.1.1.1'])(
    'refuses %j',
    (text) => expect(parseIpv4(text)).toBeUndefined(),
  );

  it('sort keys order addresses numerically', () => {
    const keys = ['10.0.0.9', '10.0.0.10', '9.255.255.255'].map((ip) => ipSortKey(parseIpv4(ip)!));
    expect([...keys].sort()).toEqual([keys[2], keys[0], keys[1]]);
  });
});

describe('netmasks and CIDRs', () => {
  it('knows contiguous netmasks', () => {
    expect(netmaskPrefix('255.255.255.0')).toBe(24);
    expect(netmaskPrefix('255.255.255.255')).toBe(32);
    expect(netmaskPrefix('255.255.254.0')).toBe(23);
    expect(netmaskPrefix('255.0.255.0')).toBeUndefined();
    expect(netmaskPrefix('255.255.255.1')).toBeUndefined();
    expect(isNetmask('0.0.0.0')).toBe(false);
    expect(isNetmask('255.255.255.192')).toBe(true);
    expect(isNetmask('nonsense')).toBe(false);
    expect(prefixNetmask(26)).toBe('255.255.255.192');
    expect(prefixNetmask(0)).toBe('0.0.0.0');
  });

  it('computes a CIDR from an address and netmask', () => {
    expect(cidrOf('10.56.23.1', '255.255.255.192')).toBe('10.56.23.0/26');
    expect(cidrOf('192.168.7.200', '255.255.0.0')).toBe('192.168.0.0/16');
    expect(cidrOf('x', '255.255.0.0')).toBeUndefined();
  });

  it('parses CIDRs and tests membership and overlap', () => {
    expect(parseCidr('10.0.0.7/24')).toEqual({ network: parseIpv4('10.0.0.0'), prefix: 24 });
    expect(parseCidr('10.0.0.0/33')).toBeUndefined();
    expect(parseCidr('10.0.0.0')).toBeUndefined();
    expect(inCidr('10.0.0.255', '10.0.0.0/24')).toBe(true);
    expect(inCidr('10.0.1.0', '10.0.0.0/24')).toBe(false);
    expect(cidrsOverlap(parseCidr('10.0.0.0/16')!, parseCidr('10.0.5.0/24')!)).toBe(true);
    expect(cidrsOverlap(parseCidr('10.0.0.0/24')!, parseCidr('10.0.1.0/24')!)).toBe(false);
    expect(formatIpv4(broadcastOf(parseCidr('10.0.0.0/26')!))).toBe('10.0.0.63');
  });

  it('spots network and broadcast addresses', () => {
    expect(isNetworkOrBroadcast('10.0.0.0', '255.255.255.0')).toBe(true);
    expect(isNetworkOrBroadcast('10.0.0.255', '255.255.255.0')).toBe(true);
    expect(isNetworkOrBroadcast('10.0.0.1', '255.255.255.0')).toBe(false);
  });
});

describe('address ranges', () => {
  it('overlap when they share an address', () => {
    const a = ipRange('10.0.0.10', '10.0.0.20')!;
    expect(rangesOverlap(a, ipRange('10.0.0.20', '10.0.0.30')!)).toBe(true);
    expect(rangesOverlap(a, ipRange('10.0.0.21', '10.0.0.30')!)).toBe(false);
    expect(rangesOverlap(a, ipRange('10.0.0.1', '10.0.0.50')!)).toBe(true);
    expect(ipRange('10.0.0.1', 'bad')).toBeUndefined();
  });
});

describe('VLAN ranges', () => {
  it('parses non-contiguous ranges in order', () => {
    expect(parseVlanRanges('300-399,100-199')).toEqual({ ranges: [{ start: 100, end: 199 }, { start: 300, end: 399 }] });
    expect(parseVlanRanges('')).toEqual({ ranges: [] });
    expect(parseVlanRanges('500-500')).toEqual({ ranges: [{ start: 500, end: 500 }] });
    expect(formatVlanRanges([{ start: 300, end: 399 }, { start: 100, end: 199 }])).toBe('100-199,300-399');
  });

  it('refuses malformed, reversed, out-of-bounds and overlapping ranges with upstream texts', () => {
    expect(parseVlanRanges('100')).toEqual({
      error: 'Please provide valid vnet range. vnet range should be a comma separated list of vlan ranges. example 500-500,600-601 between 0 and 4095',
    });
    expect(parseVlanRanges('a-b')).toEqual({
      error: 'Please provide valid vnet range. The vnet range should be a comma separated list example 2001-2012,3000-3005. between 0 and 4095',
    });
    expect(parseVlanRanges('4000-4096')).toEqual({ error: 'Vnet range has to be between 0 and 4095' });
    expect(parseVlanRanges('200-100')).toEqual({
      error: 'Vnet range has to be between 0 and 4095 and start range should be lesser than or equal to stop range',
    });
    expect(parseVlanRanges('100-199,150-250')).toEqual({ error: 'Vnet range 150-250 overlaps with the range 100-199' });
    expect(parseVlanRanges('100-199,,300-301')).toHaveProperty('error');
  });

  it('reads VLAN ids', () => {
    expect(parseVlanId('100')).toBe(100);
    expect(parseVlanId('vlan://100')).toBe(100);
    expect(parseVlanId('4096')).toBeUndefined();
    expect(parseVlanId('untagged')).toBe('untagged');
    expect(parseVlanId('VLAN://Untagged')).toBe('untagged');
    expect(parseVlanId('tagged')).toBeUndefined();
    expect(vlanInRanges(150, [{ start: 100, end: 199 }])).toBe(true);
    expect(vlanInRanges(200, [{ start: 100, end: 199 }])).toBe(false);
  });
});
