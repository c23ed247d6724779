// The agent reads virsh's and /proc's text (samples captured from the lab's hosts: Debian 12, libvirt
// 9.0.0, QEMU 7.2) and CloudStack's checksum notation.
import { describe, expect, it } from 'vitest';
import { factsFromOutput, libvirtProblem, reportFromOutput, reportScript } from '../../agent/host.ts';
import {
  authorizedKeysScript,
  formatChecksum,
  parseCapabilities,
  parseChecksum,
  parseDomains,
  parseDomcapabilitiesType,
  parseLoadavg,
  parseMeminfo,
  parseNodeinfo,
  parseSections,
  parseVirshVersion,
  sectionScript,
} from '../../agent/parse.ts';
import { CommandFailure } from '../../agent/errors.ts';

const VERSION = `Compiled against library: libvirt 9.0.0
Using library: libvirt 9.0.0
Using API: QEMU 9.0.0
Running hypervisor: QEMU 7.2.22
`;

const NODEINFO = `CPU model:           x86_64
CPU(s):              2
CPU frequency:       2596 MHz
CPU socket(s):       1
Core(s) per socket:  2
Thread(s) per core:  1
NUMA cell(s):        1
Memory size:         7170252 KiB
`;

// Trimmed: the real document lists CPU features, caches, secmodels and machine types too.
const CAPABILITIES = `<capabilities>

  <host>
    <uuid>0368e20c-ece1-4721-a372-7ef24b92a2ee</uuid>
    <cpu>
      <arch>x86_64</arch>
      <model>kvm64</model>
      <vendor>AMD</vendor>
      <topology sockets='1' dies='1' cores='2' threads='1'/>
    </cpu>
    <migration_features>
      <live/>
      <uri_transports>
        <uri_transport>tcp</uri_transport>
      </uri_transports>
    </migration_features>
  </host>

  <guest>
    <os_type>hvm</os_type>
    <arch name='i686'>
      <wordsize>32</wordsize>
      <emulator>/usr/bin/qemu-system-i386</emulator>
      <domain type='qemu'/>
      <domain type='kvm'/>
    </arch>
  </guest>

  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'>
      <wordsize>64</wordsize>
      <emulator>/usr/bin/qemu-system-x86_64</emulator>
      <machine maxCpus='255'>pc-i440fx-7.2</machine>
      <domain type='qemu'/>
      <domain type='kvm'/>
    </arch>
  </guest>

</capabilities>
`;

const QEMU_ONLY = CAPABILITIES.replace(/\s*<domain type='kvm'\/>/g, '');

const DOMCAPS = (type: string) => `<domainCapabilities>
  <path>/usr/bin/qemu-system-x86_64</path>
  <domain>${type}</domain>
  <machine>pc-i440fx-7.2</machine>
  <arch>x86_64</arch>
</domainCapabilities>`;

const MEMINFO = `MemTotal:       24684084 kB
MemFree:        24023664 kB
MemAvailable:   24218844 kB
Buffers:           15492 kB
`;

const DOWN = `error: failed to connect to the hypervisor
error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory`;

function section(name: string, output: string, code = 0) {
  return `@@begin ${name}\n${output}${output.endsWith('\n') || output === '' ? '' : '\n'}@@end ${name} ${code}\n`;
}

function factsOutput(overrides: Record<string, [string, number]> = {}) {
  const sections: Record<string, [string, number]> = {
    hostname: ['moldlab1-h1\n', 0],
    arch: ['x86_64\n', 0],
    version: [VERSION, 0],
    nodeinfo: [NODEINFO, 0],
    capabilities: [CAPABILITIES, 0],
    domcapsKvm: [DOMCAPS('kvm'), 0],
    domcapsQemu: [DOMCAPS('qemu'), 0],
    meminfo: [MEMINFO, 0],
    ...overrides,
  };
  return Object.entries(sections)
    .map(([n, [o, c]]) => section(n, o, c))
    .join('');
}

describe('sections', () => {
  it('frames each command with its exit status', () => {
    const script = sectionScript({ a: 'echo one', b: 'false' });
    expect(script).toContain("echo '@@begin a'");
    expect(script).toContain('echo "@@end b $?"');
    const parsed = parseSections(section('a', 'one\ntwo\n') + section('b', '', 1));
    expect(parsed).toEqual({ a: { output: 'one\ntwo', code: 0 }, b: { output: '', code: 1 } });
  });
});

describe('virsh output', () => {
  it('reads versions', () => {
    expect(parseVirshVersion(VERSION)).toEqual({ libvirtVersion: '9.0.0', qemuVersion: '7.2.22' });
    expect(parseVirshVersion('Compiled against library: libvirt 9.0.0\nUsing library: libvirt 9.0.0\n')).toEqual({ libvirtVersion: '9.0.0', qemuVersion: undefined });
  });

  it('reads nodeinfo', () => {
    expect(parseNodeinfo(NODEINFO)).toEqual({
      cpuModel: 'x86_64',
      cpus: 2,
      cpuMhz: 2596,
      sockets: 1,
      coresPerSocket: 2,
      threadsPerCore: 1,
      memoryKiB: 7170252,
    });
  });

  it('reads the host UUID, arch and domain types of the host arch', () => {
    expect(parseCapabilities(CAPABILITIES)).toEqual({ hostUuid: '0368e20c-ece1-4721-a372-7ef24b92a2ee', arch: 'x86_64', domainTypes: ['qemu', 'kvm'] });
    expect(parseCapabilities(QEMU_ONLY).domainTypes).toEqual(['qemu']);
    expect(parseDomcapabilitiesType(DOMCAPS('kvm'))).toBe('kvm');
  });

  it('reads memory and load', () => {
    expect(parseMeminfo(MEMINFO)).toEqual({ totalBytes: 24684084 * 1024, freeBytes: 24218844 * 1024 });
    expect(parseMeminfo('MemTotal: 100 kB\nMemFree: 10 kB\n')).toEqual({ totalBytes: 102400, freeBytes: 10240 });
    expect(parseLoadavg('0.08 1.16 2.48 1/133 14106\n')).toBe(0.08);
    expect(parseLoadavg('')).toBeUndefined();
  });

  it('reads domains with their power states', () => {
    const list = '5c50b04c-8241-44b5-9a85-8a3ae4bfc28d t1\n01a39305-ecf7-4d36-964e-ea17e6264c2a t2\n\n';
    const domstats = "Domain: 't1'\n  state.state=3\n  state.reason=1\n\nDomain: 't2'\n  state.state=5\n  state.reason=0\n\n";
    expect(parseDomains(list, domstats)).toEqual([
      { uuid: '5c50b04c-8241-44b5-9a85-8a3ae4bfc28d', name: 't1', state: 'Paused' },
      { uuid: '01a39305-ecf7-4d36-964e-ea17e6264c2a', name: 't2', state: 'Stopped' },
    ]);
    expect(parseDomains('5c50b04c-8241-44b5-9a85-8a3ae4bfc28d i-2-3-VM\n', "Domain: 'i-2-3-VM'\n  state.state=1\n")[0]!.state).toBe('Running');
    expect(parseDomains('5c50b04c-8241-44b5-9a85-8a3ae4bfc28d x\n', '')[0]!.state).toBe('Unknown');
    expect(parseDomains('\n', '')).toEqual([]);
  });

  it("reads a running domain's usage counters, summed over its NICs and disks", () => {
    // `virsh domstats --list-running --cpu-total --vcpu --balloon --interface --block` of a lab guest
    // (user-mode NIC: no counters), and a second domain with two bridged NICs.
    const usage = [
      "Domain: 'i-2-9-VM'",
      '  cpu.time=8550000000\n  cpu.user=7730000000\n  cpu.system=820000000\n  cpu.cache.monitor.count=0',
      '  balloon.current=262144\n  balloon.maximum=262144\n  balloon.last-update=0\n  balloon.rss=216860',
      '  vcpu.current=2\n  vcpu.maximum=2\n  vcpu.0.state=1\n  vcpu.0.time=6010000000\n  vcpu.1.state=1\n  vcpu.1.time=1530000000',
      '  net.count=1\n  block.count=1\n  block.0.name=vda\n  block.0.path=/tmp/moldlab29/primary/g.qcow2\n  block.0.backingIndex=1',
      '  block.0.rd.reqs=438\n  block.0.rd.bytes=12975104\n  block.0.rd.times=136700409\n  block.0.wr.reqs=0\n  block.0.wr.bytes=0',
      '  block.0.allocation=0\n  block.0.capacity=67108864\n  block.0.physical=12861440',
      '',
      "Domain: 'i-2-10-VM'",
      '  cpu.time=1000\n  vcpu.current=1\n  balloon.current=1024\n  balloon.unused=512',
      '  net.count=2\n  net.0.name=vnet0\n  net.0.rx.bytes=100\n  net.0.rx.pkts=2\n  net.0.tx.bytes=200\n  net.1.name=vnet1\n  net.1.rx.bytes=1\n  net.1.tx.bytes=2',
      '  block.count=2\n  block.0.rd.reqs=1\n  block.0.rd.bytes=10\n  block.0.wr.reqs=2\n  block.0.wr.bytes=20\n  block.1.rd.reqs=3\n  block.1.rd.bytes=30\n  block.1.wr.reqs=4\n  block.1.wr.bytes=40',
      '',
    ].join('\n');
    const list = '5c50b04c-8241-44b5-9a85-8a3ae4bfc28d i-2-9-VM\n01a39305-ecf7-4d36-964e-ea17e6264c2a i-2-10-VM\n8f6b0a57-0f0e-4f53-9d0b-3c1d2a7e9b11 i-2-11-VM\n';
    const states = "Domain: 'i-2-9-VM'\n  state.state=1\nDomain: 'i-2-10-VM'\n  state.state=1\nDomain: 'i-2-11-VM'\n  state.state=5\n";
    const [first, second, stopped] = parseDomains(list, states, usage, 1_000);
    expect(first!.usage).toEqual({
      at: 1_000,
      cpuTimeNs: 8_550_000_000,
      vcpus: 2,
      memoryKiB: 262144,
      memoryMaxKiB: 262144,
      netRxBytes: 0,
      netTxBytes: 0,
      diskReadBytes: 12975104,
      diskWriteBytes: 0,
      diskReadReqs: 438,
      diskWriteReqs: 0,
    });
    expect(second!.usage).toEqual({
      at: 1_000,
      cpuTimeNs: 1000,
      vcpus: 1,
      memoryKiB: 1024,
      memoryUnusedKiB: 512,
      netRxBytes: 101,
      netTxBytes: 202,
      diskReadBytes: 40,
      diskWriteBytes: 60,
      diskReadReqs: 4,
      diskWriteReqs: 6,
    });
    // A domain not running has no counters; one whose counters could not be read keeps its state.
    expect(stopped).toEqual({ uuid: '8f6b0a57-0f0e-4f53-9d0b-3c1d2a7e9b11', name: 'i-2-11-VM', state: 'Stopped' });
    expect(parseDomains(list, states, "Domain: 'i-2-9-VM'\n  balloon.current=1\n")[0]).toEqual({ uuid: '5c50b04c-8241-44b5-9a85-8a3ae4bfc28d', name: 'i-2-9-VM', state: 'Running' });

    // Read with --nowait while the domain is busy (a migration): its disks without counters are no
    // reading at all, not totals fallen to 0.
    const busy = "Domain: 'i-2-9-VM'\n  cpu.time=9000\n  net.count=0\n  block.count=1\n  block.0.name=vda\n  block.0.path=/p/g.qcow2\n";
    expect(parseDomains(list, states, busy)[0]).toEqual({ uuid: '5c50b04c-8241-44b5-9a85-8a3ae4bfc28d', name: 'i-2-9-VM', state: 'Running' });
  });

  it('explains why virsh does not answer', () => {
    expect(libvirtProblem({ output: VERSION, code: 0 })).toBeUndefined();
    expect(libvirtProblem({ output: DOWN, code: 1 })).toMatch(/^libvirt is not running \(libvirtd does not answer: failed to connect to the hypervisor\)/);
    expect(libvirtProblem({ output: 'sh: 1: virsh: not found', code: 127 })).toMatch(/^virsh not found/);
  });
});

describe('facts', () => {
  it('gathers the host facts from one run', () => {
    expect(factsFromOutput(factsOutput(), 'root@10.77.1.11', 'SHA256:abc')).toEqual({
      hostname: 'moldlab1-h1',
      hostUuid: '0368e20c-ece1-4721-a372-7ef24b92a2ee',
      cpus: 2,
      cpuMhz: 2596,
      cpuSockets: 1,
      memoryBytes: 24684084 * 1024,
      arch: 'x86_64',
      libvirtVersion: '9.0.0',
      qemuVersion: '7.2.22',
      domainType: 'kvm',
      hostKeyFingerprint: 'SHA256:abc',
    });
  });

  it('says qemu when the host has no hardware virtualisation', () => {
    const out = factsOutput({ capabilities: [QEMU_ONLY, 0], domcapsKvm: ['error: unsupported configuration: KVM is not supported', 1] });
    expect(factsFromOutput(out, 'root@h', 'fp').domainType).toBe('qemu');
  });

  it('fails NoLibvirt naming the host and the cause', () => {
    const down = () => factsFromOutput(factsOutput({ version: [DOWN, 1], capabilities: [DOWN, 1] }), 'root@10.77.1.12', 'fp');
    expect(down).toThrow(CommandFailure);
    expect(down).toThrow(/^No usable libvirt on root@10\.77\.1\.12: libvirt is not running/);
    try {
      down();
    } catch (err) {
      expect((err as Error).name).toBe('NoLibvirt');
    }
    expect(() => factsFromOutput(factsOutput({ version: ['sh: 1: virsh: not found', 127] }), 'root@h', 'fp')).toThrow(/No usable libvirt on root@h: virsh not found/);
    expect(() => factsFromOutput(factsOutput({ version: ['Using library: libvirt 9.0.0\n', 0] }), 'root@h', 'fp')).toThrow(/no QEMU driver/);
  });
});

describe('reports', () => {
  it('reports memory, load, libvirtd and domains', () => {
    const out =
      section('version', VERSION) +
      section('meminfo', MEMINFO) +
      section('loadavg', '0.50 0.40 0.30 1/100 1\n') +
      section('list', '5c50b04c-8241-44b5-9a85-8a3ae4bfc28d t1\n') +
      section('domstats', "Domain: 't1'\n  state.state=1\n");
    expect(reportFromOutput('h-1', out)).toEqual({
      hostId: 'h-1',
      reachable: true,
      libvirtd: true,
      memoryTotalBytes: 24684084 * 1024,
      memoryFreeBytes: 24218844 * 1024,
      loadAverage: 0.5,
      domains: [{ uuid: '5c50b04c-8241-44b5-9a85-8a3ae4bfc28d', name: 't1', state: 'Running' }],
    });
  });

  it('reports a host whose libvirtd is down as reachable, with the reason', () => {
    const out = section('version', DOWN, 1) + section('meminfo', MEMINFO) + section('loadavg', '1.00 0 0 1/1 1\n') + section('list', DOWN, 1) + section('domstats', DOWN, 1);
    const r = reportFromOutput('h-2', out);
    expect(r).toMatchObject({ hostId: 'h-2', reachable: true, libvirtd: false, domains: [], loadAverage: 1 });
    expect(r.error).toMatch(/^libvirt is not running/);
  });

  it('measures each pool it is given with df; a pool df cannot read is left out', () => {
    const pools = [
      { id: 'p-1', path: '/mnt/shared' },
      { id: 'p-2', path: "/mnt/it's gone" },
    ];
    expect(reportScript(pools)).toContain("df -B1 --output=size,used -- '/mnt/it'\\''s gone'");
    const out =
      section('version', VERSION) +
      section('meminfo', MEMINFO) +
      section('loadavg', '0 0 0 1/1 1\n') +
      section('list', '') +
      section('domstats', '') +
      section('pool0', '       1B-blocks        Used\n   105089261568  3221225472\n') +
      section('pool1', "df: '/mnt/it's gone': No such file or directory\n", 1);
    expect(reportFromOutput('h-4', out, pools).pools).toEqual([{ id: 'p-1', capacityBytes: 105089261568, usedBytes: 3221225472 }]);
  });

  it('does not report an unreadable domain list as an empty one', () => {
    const out = section('version', VERSION) + section('meminfo', MEMINFO) + section('loadavg', '0 0 0 1/1 1\n') + section('list', 'error: internal error\n', 1) + section('domstats', '', 0);
    const r = reportFromOutput('h-3', out);
    expect(r).toMatchObject({ hostId: 'h-3', reachable: true, libvirtd: false, domains: [] });
    expect(r.error).toBe('virsh list failed: error: internal error');
  });
});

describe('checksums', () => {
  const md5 = 'd41d8cd98f00b204e9800998ecf8427e';
  const sha256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

  it('reads CloudStack notation; bare hex is MD5', () => {
    expect(parseChecksum(`{SHA-256}${sha256}`)).toEqual({ algorithm: 'sha256', hex: sha256 });
    expect(parseChecksum(`{sha256}${sha256.toUpperCase()}`)).toEqual({ algorithm: 'sha256', hex: sha256 });
    expect(parseChecksum(`{MD5}${md5}`)).toEqual({ algorithm: 'md5', hex: md5 });
    expect(parseChecksum(md5)).toEqual({ algorithm: 'md5', hex: md5 });
    expect(parseChecksum(`{SHA-1}${'a'.repeat(40)}`).algorithm).toBe('sha1');
    expect(parseChecksum(`{SHA-512}${'b'.repeat(128)}`).algorithm).toBe('sha512');
    expect(formatChecksum({ algorithm: 'sha256', hex: sha256 })).toBe(`{SHA-256}${sha256}`);
  });

  it('refuses what is not a checksum', () => {
    expect(() => parseChecksum('{CRC32}1234abcd')).toThrow(/unknown checksum algorithm CRC32/);
    expect(() => parseChecksum(`{SHA-256}${md5}`)).toThrow(/SHA-256 checksum has 64 hex digits/);
    expect(() => parseChecksum('not hex')).toThrow(/is not a checksum/);
    expect(() => parseChecksum(sha256)).toThrow(/MD5 checksum has 32 hex digits/);
  });
});

describe('authorized_keys', () => {
  it('replaces the agent\'s tagged line only, in place', () => {
    const script = authorizedKeysScript('ssh-ed25519 AAAA mold-agent-1234', 'mold-agent-1234');
    expect(script).toContain("grep -v -E ' mold\\-agent\\-1234$'");
    expect(script).toContain("printf '%s\\n' 'ssh-ed25519 AAAA mold-agent-1234'");
    expect(script).toContain('cat "$t" > ~/.ssh/authorized_keys');
    expect(authorizedKeysScript(undefined, 'mold-agent-1234')).not.toContain('printf');
  });

  it('leaves the file alone when the line is there once already', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, readFileSync, statSync, writeFileSync } = await import('node:fs');
    const home = mkdtempSync('/tmp/mold-ak-');
    const line = 'ssh-ed25519 AAAA mold-agent-1234';
    const run = () => execFileSync('sh', ['-c', authorizedKeysScript(line, 'mold-agent-1234')], { env: { ...process.env, HOME: home } });
    run();
    expect(readFileSync(`${home}/.ssh/authorized_keys`, 'utf8')).toBe(`${line}\n`);
    writeFileSync(`${home}/.ssh/authorized_keys`, `${line}\nssh-rsa BBBB other\n`);
    const before = statSync(`${home}/.ssh/authorized_keys`).mtimeMs;
    run();
    expect(readFileSync(`${home}/.ssh/authorized_keys`, 'utf8')).toBe(`${line}\nssh-rsa BBBB other\n`);
    expect(statSync(`${home}/.ssh/authorized_keys`).mtimeMs).toBe(before);
    writeFileSync(`${home}/.ssh/authorized_keys`, `ssh-ed25519 OLD mold-agent-1234\nssh-rsa BBBB other\n`);
    run();
    expect(readFileSync(`${home}/.ssh/authorized_keys`, 'utf8')).toBe(`ssh-rsa BBBB other\n${line}\n`);
  });
});
