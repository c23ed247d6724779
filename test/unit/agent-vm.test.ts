// What the agent writes for a VM: the libvirt domain XML, the config drive's files (OpenStack layout
// for cloud-init), the CPU shares, the bridge names, and the shell scripts that carry them to a host.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CommandFailure } from '../../agent/errors.ts';
import { parseDomstate, parseVncDisplay } from '../../agent/parse.ts';
import {
  checkVm,
  configDriveFiles,
  cpuShares,
  diskTarget,
  domainXml,
  expungeScript,
  nicBridge,
  parseProbe,
  startFailure,
  startScript,
  vlanBridge,
  vlanLink,
  xmlEscape,
} from '../../agent/vm.ts';
import type { VmSpec } from '../../shared/agent/protocol.ts';

const UUID = '5f0c1a9e-3b7d-4c2e-9a61-0d8f2b7c4e13';
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOaN0m3xZx2R1k7hQ8b0wq8XW0sA2pD2S0K7yQ0eG7Jb alice@laptop';

function spec(over: Partial<VmSpec> = {}): VmSpec & { disks: NonNullable<VmSpec['disks']> } {
  return {
    name: 'i-2-17-VM',
    uuid: UUID,
    hostname: 'web-1',
    vcpus: 2,
    cpuMhz: 1000,
    memoryMiB: 512,
    disks: [
      { path: '/mnt/pool/vol-data.qcow2', sizeBytes: 1 << 30, deviceId: 1 },
      { path: '/mnt/pool/vol-root.qcow2', backingFile: '/mnt/pool/tmpl.qcow2', sizeBytes: 8 * 2 ** 30, deviceId: 0 },
    ],
    configDrive: {
      path: `/mnt/pool/${UUID}-config.iso`,
      instanceId: UUID,
      publicKeys: { alice: KEY },
      userData: Buffer.from('#cloud-config\nruncmd:\n  - echo hi\n').toString('base64'),
      availabilityZone: 'zone-1',
    },
    nics: [
      { mac: '02:00:0a:01:00:05', vlan: 100, ip: '10.1.0.5', netmask: '255.255.255.0', gateway: '10.1.0.1', dns: ['10.1.0.2', '8.8.8.8'] },
      { mac: '02:00:0a:02:00:07', bridge: 'cloudbr0', ip: '10.2.0.7', netmask: '255.255.0.0', gateway: '10.2.0.1', dns: ['8.8.8.8'] },
    ],
    vncListen: '10.77.4.11',
    ...over,
  } as never;
}

/** Tags balance and every attribute value is quoted: enough to catch a broken template. */
function wellFormed(xml: string): boolean {
  const stack: string[] = [];
  for (const m of xml.matchAll(/<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w:-]+='[^'<&]*(?:&[a-z]+;[^'<&]*)*')*)\s*(\/?)>/g)) {
    if (m[1]) {
      if (stack.pop() !== m[2]) return false;
    } else if (!m[4]) stack.push(m[2]!);
  }
  const stripped = xml.replace(/<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w:-]+='[^'<&]*(?:&[a-z]+;[^'<&]*)*')*)\s*(\/?)>/g, '');
  return stack.length === 0 && !/[<>]/.test(stripped) && !/&(?!(amp|lt|gt|apos|quot);)/.test(stripped);
}

describe('domain XML', () => {
  it('has the offering, the disks by device id, the config drive, the NICs on their bridges, VNC and a console', () => {
    const xml = domainXml(spec(), { domainType: 'kvm', cpuShares: 2000 });
    expect(wellFormed(xml)).toBe(true);
    expect(xml).toMatch(/^<domain type='kvm'>/);
    expect(xml).toContain(`<name>i-2-17-VM</name>`);
    expect(xml).toContain(`<uuid>${UUID}</uuid>`);
    expect(xml).toContain(`<memory unit='MiB'>512</memory>`);
    expect(xml).toContain(`<vcpu placement='static'>2</vcpu>`);
    expect(xml).toMatch(/<cputune>\s*<shares>2000<\/shares>\s*<\/cputune>/);
    expect(xml).toContain(`<type arch='x86_64' machine='pc'>hvm</type>`);
    expect(xml).toMatch(/<features>\s*<acpi\/>\s*<apic\/>\s*<\/features>/);
    expect(xml).toContain('<on_poweroff>destroy</on_poweroff>');
    // vda is the root disk whatever order the spec lists them in.
    const disks = [...xml.matchAll(/<disk type='file' device='disk'>([\s\S]*?)<\/disk>/g)].map((m) => m[1]!);
    expect(disks).toHaveLength(2);
    expect(disks[0]).toContain(`<source file='/mnt/pool/vol-root.qcow2'/>`);
    expect(disks[0]).toContain(`<target dev='vda' bus='virtio'/>`);
    expect(disks[0]).toContain(`<driver name='qemu' type='qcow2' cache='none'/>`);
    expect(disks[1]).toContain(`<source file='/mnt/pool/vol-data.qcow2'/>`);
    expect(disks[1]).toContain(`<target dev='vdb' bus='virtio'/>`);
    expect(xml).toMatch(
      new RegExp(`<disk type='file' device='cdrom'>\\s*<driver name='qemu' type='raw'/>\\s*<source file='/mnt/pool/${UUID}-config.iso'/>\\s*<target dev='hdc' bus='ide'/>\\s*<readonly/>`),
    );
    const nics = [...xml.matchAll(/<interface type='bridge'>([\s\S]*?)<\/interface>/g)].map((m) => m[1]!);
    expect(nics).toHaveLength(2);
    expect(nics[0]).toContain(`<mac address='02:00:0a:01:00:05'/>`);
    expect(nics[0]).toContain(`<source bridge='mbr100'/>`);
    expect(nics[0]).toContain(`<model type='virtio'/>`);
    expect(nics[1]).toContain(`<source bridge='cloudbr0'/>`);
    expect(xml).toContain(`<graphics type='vnc' port='-1' autoport='yes' listen='10.77.4.11'>`);
    expect(xml).toMatch(/<serial type='pty'>[\s\S]*<console type='pty'>/);
  });

  it('escapes every value it places', () => {
    const vm = spec({ hostname: `a<b>&'"`, vncListen: `1.2.3.4' evil='1` });
    vm.disks[1]!.path = `/mnt/p/it's <&>.qcow2`;
    const xml = domainXml(vm, { domainType: 'qemu', cpuShares: 2 });
    expect(wellFormed(xml)).toBe(true);
    expect(xml).toMatch(/^<domain type='qemu'>/);
    expect(xml).toContain('<title>a&lt;b&gt;&amp;&apos;&quot;</title>');
    expect(xml).toContain(`<source file='/mnt/p/it&apos;s &lt;&amp;&gt;.qcow2'/>`);
    expect(xml).toContain(`listen='1.2.3.4&apos; evil=&apos;1'`);
    expect(xmlEscape(`&<>'"`)).toBe('&amp;&lt;&gt;&apos;&quot;');
  });

  it('names disks, bridges and VLAN links within the kernel limits', () => {
    expect([0, 1, 2, 25].map(diskTarget)).toEqual(['vda', 'vdb', 'vdc', 'vdz']);
    expect(vlanBridge(4094)).toBe('mbr4094');
    expect(vlanLink('eth0', 100)).toBe('eth0.100');
    expect(vlanLink('enp0s31f6', 4094)).toBe('enp0s31f6.4094');
    expect(vlanLink('enx001122334455', 4094)).toBe('mvl4094');
    expect(nicBridge({ mac: '02:00:00:00:00:01', vlan: 7, bridge: 'ignored', ip: '', netmask: '', gateway: '' }, 'vm')).toBe('mbr7');
    expect(() => nicBridge({ mac: '02:00:00:00:00:01', ip: '', netmask: '', gateway: '' }, 'i-1-1-VM')).toThrow(/neither a VLAN nor a bridge/);
  });

  it('puts an untagged network\'s NIC on the bridge of the host\'s uplink, and refuses it where the uplink has none', () => {
    const untagged = { mac: '02:00:00:00:00:01', vlan: 'untagged' as const, ip: '10.0.0.5', netmask: '255.255.255.0', gateway: '10.0.0.1' };
    expect(nicBridge(untagged, 'vm', 'cloudbr0')).toBe('cloudbr0');
    expect(() => nicBridge(untagged, 'i-1-1-VM')).toThrow(/untagged network, which needs the host's uplink on a bridge/);
    const vm = spec({ nics: [untagged] });
    expect(domainXml(vm, { domainType: 'qemu', cpuShares: 2, uplinkBridge: 'cloudbr0' })).toMatch(/<mac address='02:00:00:00:00:01'\/>\s*<source bridge='cloudbr0'\/>/);
    const script = startScript(vm, '<domain/>', { uplinkBridge: 'cloudbr0' });
    expect(script).toContain("[ -d /sys/class/net/'cloudbr0'/bridge ] || fail BridgeUnavailable nic0");
    expect(script).not.toContain('type vlan');
    expect(startFailure(vm, 'root@10.0.0.9', 'BridgeUnavailable', 'nic0', '', 'cloudbr0').message).toBe('Bridge cloudbr0 for NIC 02:00:00:00:00:01 of i-2-17-VM does not exist on root@10.0.0.9');
  });

  it('gives CPU shares as upstream: vCPUs × MHz, scaled into 1..10000 on cgroup v2', () => {
    expect(cpuShares(2, 1000)).toBe(2000);
    expect(cpuShares(2, 1000, { cgroup2: false, totalMhz: 4000 })).toBe(2000);
    expect(cpuShares(2, 1000, { cgroup2: true, totalMhz: 8000 })).toBe(2500);
    expect(cpuShares(16, 3000, { cgroup2: true, totalMhz: 8000 })).toBe(10_000);
    expect(cpuShares(16, 3000, { cgroup2: true })).toBe(10_000);
    expect(cpuShares(1, 1, { cgroup2: false })).toBe(2);
  });
});

describe('config drive', () => {
  it('holds the instance id, hostname, keys, zone, the decoded user data and the static network', () => {
    const files = configDriveFiles(spec());
    expect(Object.keys(files).sort()).toEqual(['openstack/latest/meta_data.json', 'openstack/latest/network_data.json', 'openstack/latest/user_data']);
    expect(JSON.parse(files['openstack/latest/meta_data.json']!.toString())).toEqual({
      uuid: UUID,
      hostname: 'web-1',
      name: 'web-1',
      launch_index: 0,
      public_keys: { alice: KEY },
      availability_zone: 'zone-1',
    });
    expect(files['openstack/latest/user_data']!.toString()).toBe('#cloud-config\nruncmd:\n  - echo hi\n');
    expect(JSON.parse(files['openstack/latest/network_data.json']!.toString())).toEqual({
      links: [
        { id: 'interface0', type: 'phy', ethernet_mac_address: '02:00:0a:01:00:05' },
        { id: 'interface1', type: 'phy', ethernet_mac_address: '02:00:0a:02:00:07' },
      ],
      networks: [
        { id: 'network0', type: 'ipv4', link: 'interface0', ip_address: '10.1.0.5', netmask: '255.255.255.0', routes: [{ network: '0.0.0.0', netmask: '0.0.0.0', gateway: '10.1.0.1' }] },
        { id: 'network1', type: 'ipv4', link: 'interface1', ip_address: '10.2.0.7', netmask: '255.255.0.0', routes: [] },
      ],
      services: [
        { type: 'dns', address: '10.1.0.2' },
        { type: 'dns', address: '8.8.8.8' },
      ],
    });
  });

  it('keeps binary user data byte for byte and leaves user_data out when there is none', () => {
    const bytes = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff, 0x00, 0x80]);
    const vm = spec();
    vm.configDrive.userData = bytes.toString('base64');
    expect(configDriveFiles(vm)['openstack/latest/user_data']!.equals(bytes)).toBe(true);
    const bare = spec({ configDrive: { path: '/p/c.iso', instanceId: UUID } });
    const files = configDriveFiles(bare);
    expect(files['openstack/latest/user_data']).toBeUndefined();
    const meta = JSON.parse(files['openstack/latest/meta_data.json']!.toString());
    expect(meta.public_keys).toEqual({});
    expect(meta).not.toHaveProperty('availability_zone');
  });
});

describe('checks before anything reaches a host', () => {
  const bad = (over: Partial<VmSpec>, re: RegExp) => {
    const err = (() => {
      try {
        checkVm(spec(over));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CommandFailure);
    expect((err as Error).message).toMatch(re);
  };
  it('refuses unusable names, paths, MACs and bridges', () => {
    expect(() => checkVm(spec())).not.toThrow();
    bad({ name: 'a b' }, /Unusable domain name/);
    bad({ name: '-x' }, /Unusable domain name/);
    bad({ uuid: 'nope' }, /not a UUID/);
    bad({ disks: [{ path: 'relative.qcow2', backingFile: '/t.qcow2', deviceId: 0 }] }, /not an absolute file path/);
    bad({ disks: [{ path: '/p/../etc/shadow', backingFile: '/t.qcow2', deviceId: 0 }] }, /not an absolute file path/);
    bad({ disks: [{ path: '/p/a', deviceId: 0 }] }, /neither a template file nor a size/);
    bad({ disks: [{ path: '/p/a', sizeBytes: 1, deviceId: 0 }, { path: '/p/b', sizeBytes: 1, deviceId: 0 }] }, /two disks with device id 0/);
    bad({ nics: [{ mac: 'zz', vlan: 1, ip: '', netmask: '', gateway: '' }] }, /not a MAC address/);
    bad({ nics: [{ mac: '02:00:00:00:00:01', bridge: 'br0; reboot', ip: '', netmask: '', gateway: '' }] }, /not a network device name/);
  });
});

describe('scripts', () => {
  const shellOk = (script: string) => {
    const r = spawnSync('sh', ['-n'], { input: script });
    return r.status === 0 ? 'ok' : r.stderr.toString();
  };

  it('are valid sh whatever the values hold, and carry the content base64-encoded', () => {
    const vm = spec();
    vm.disks[1]!.path = `/mnt/p/it's "$(reboot)" \`x\`.qcow2`;
    const xml = domainXml(vm, { domainType: 'kvm', cpuShares: 2000 });
    const script = startScript(vm, xml);
    expect(shellOk(script)).toBe('ok');
    expect(shellOk(startScript(vm, xml, { vlanFallback: 'isolated' }))).toBe('ok');
    expect(script).toContain(Buffer.from(xml).toString('base64'));
    expect(script).toContain(`'/mnt/p/it'\\''s "$(reboot)" \`x\`.qcow2'`);
    expect(script).not.toContain('<domain');
    // Size only where the overlay is to grow past the template; the data disk is blank.
    expect(script).toContain(`-gt "$vs" ] && size=${8 * 2 ** 30}`);
    expect(script).toMatch(/qemu-img create -q -f qcow2 "\$p.part" 1073741824/);
    expect(script).toContain('type vlan id 100');
    expect(script).toContain("[ -d /sys/class/net/'cloudbr0'/bridge ] || fail BridgeUnavailable nic1");
    const ex = expungeScript('i-2-17-VM', ['/p/a b.qcow2', `/p/it's.iso`]);
    expect(shellOk(ex)).toBe('ok');
    expect(ex).toContain(`f='/p/it'\\''s.iso'`);
  });

  it('run: disks made, config drive written, domain defined and started (a fake virsh, qemu-img, ip and genisoimage)', () => {
    const dir = spawnSync('mktemp', ['-d']).stdout.toString().trim();
    const bin = `${dir}/bin`;
    const calls = `${dir}/calls`;
    const fake = (name: string, body: string) =>
      spawnSync('sh', ['-c', `mkdir -p ${bin} && cat > ${bin}/${name} && chmod +x ${bin}/${name}`], { input: `#!/bin/sh\necho "${name} $*" >> ${calls}\n${body}\n` });
    fake('qemu-img', `case "$1" in info) echo '{ "virtual-size": 1048576, "format": "qcow2" }';; create) for a; do case "$a" in *.part) : > "$a";; esac; done;; esac`);
    fake('genisoimage', 'for a; do [ "$prev" = -o ] && out=$a; prev=$a; done; cp -r "$prev" "$out.dir"; : > "$out"');
    fake('ip', `case "$*" in "-o route show default") echo "default via 10.0.0.1 dev eth0 proto static";; *) :;; esac`);
    fake(
      'virsh',
      `case "$3" in domstate) [ -f ${dir}/started ] && echo running || echo "shut off";; start) [ ! -f ${dir}/started ] || { echo "error: Requested operation is not valid: Domain is already active" >&2; exit 1; }; : > ${dir}/started;; *"echo @@state"*) printf '@@state\\nrunning\\n\\n@@vnc\\n127.0.0.1:3\\n';; esac`,
    );
    const vm = spec({
      disks: [
        { path: `${dir}/root.qcow2`, backingFile: `${dir}/tmpl.qcow2`, sizeBytes: 2 << 20, deviceId: 0 },
        { path: `${dir}/data.qcow2`, sizeBytes: 1 << 20, deviceId: 1 },
      ],
      configDrive: { path: `${dir}/cd.iso`, instanceId: UUID, publicKeys: { alice: KEY }, userData: Buffer.from('hello').toString('base64') },
      nics: [{ mac: '02:00:00:00:00:01', vlan: 100, ip: '10.1.0.5', netmask: '255.255.255.0', gateway: '10.1.0.1' }],
    });
    const xml = domainXml(vm, { domainType: 'kvm', cpuShares: 2000 });
    const run = () => spawnSync('sh', ['-s'], { input: startScript(vm, xml), env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    try {
      // The template is missing: a named failure and nothing made.
      let r = run();
      expect(r.status).toBe(3);
      expect(r.stdout.toString()).toMatch(/^@@fail NoSuchTemplateFile disk0$/m);
      spawnSync('touch', [`${dir}/tmpl.qcow2`]);
      r = run();
      expect(r.stderr.toString()).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout.toString()).toContain('@@state\nrunning\n');
      expect(r.stdout.toString()).toContain('@@vnc\n127.0.0.1:3\n');
      expect(parseVncDisplay('127.0.0.1:3')).toBe(5903);
      const log = spawnSync('cat', [calls]).stdout.toString();
      expect(log).toContain(`qemu-img create -q -f qcow2 -F qcow2 -b ${dir}/tmpl.qcow2 ${dir}/root.qcow2.part ${2 << 20}`);
      expect(log).toContain(`qemu-img create -q -f qcow2 ${dir}/data.qcow2.part ${1 << 20}`);
      expect(log).toMatch(/genisoimage -quiet -input-charset utf-8 -o \S+cd\.iso\.part -V config-2 -J -r /);
      expect(log).toContain('ip link add name mbr100 type bridge');
      expect(log).toContain('ip link add link eth0 name eth0.100 type vlan id 100');
      expect(log).toContain('ip link set eth0.100 master mbr100');
      expect(log).toMatch(/virsh -c qemu:\/\/\/system define \/tmp\/mold-domain\.\w+/);
      expect(log).toContain('virsh -c qemu:///system start --domain i-2-17-VM');
      const written = (f: string) => spawnSync('cat', [`${dir}/cd.iso.part.dir/openstack/latest/${f}`]).stdout.toString();
      expect(JSON.parse(written('meta_data.json')).public_keys).toEqual({ alice: KEY });
      expect(written('user_data')).toBe('hello');
      expect(spawnSync('ls', [`${dir}/root.qcow2`, `${dir}/data.qcow2`, `${dir}/cd.iso`]).status).toBe(0);

      // Again: the disks are kept; the running domain refuses the start, which is fine.
      spawnSync('sh', ['-c', `: > ${calls}`]);
      r = run();
      expect(r.status).toBe(0);
      expect(r.stdout.toString()).toContain('@@state\nrunning\n');
      const again = spawnSync('cat', [calls]).stdout.toString();
      expect(again).not.toContain('qemu-img create');
      expect(again).not.toContain('resume');
      expect(again).toContain(' define ');
    } finally {
      spawnSync('rm', ['-rf', dir]);
    }
  });
});

describe('reading the host', () => {
  it('domstate and vncdisplay', () => {
    expect(parseDomstate('running\n\n')).toBe('Running');
    expect(parseDomstate('shut off\n')).toBe('Stopped');
    expect(parseDomstate('in shutdown')).toBe('Shutdown');
    expect(parseDomstate('paused')).toBe('Paused');
    expect(parseDomstate('pmsuspended')).toBe('Suspended');
    expect(parseDomstate('crashed')).toBe('Crashed');
    expect(parseDomstate('what')).toBe('Unknown');
    expect(parseVncDisplay(':0\n')).toBe(5900);
    expect(parseVncDisplay('10.77.4.11:12')).toBe(5912);
    expect(parseVncDisplay('[::1]:1')).toBe(5901);
    expect(parseVncDisplay('error: no graphics')).toBeUndefined();
  });

  it('the probe: domain type, cgroup version, the host MHz and the bridge of the uplink', () => {
    expect(parseProbe('@@type kvm\n@@cgroup 2\nCPU model:           x86_64\nCPU(s):              4\nCPU frequency:       2500 MHz\n')).toEqual({ domainType: 'kvm', cgroup2: true, totalMhz: 10_000 });
    expect(parseProbe('@@type qemu\n@@cgroup 1\nerror: failed\n')).toEqual({ domainType: 'qemu', cgroup2: false, totalMhz: undefined });
    expect(parseProbe('@@type qemu\n@@cgroup 2\n@@uplinkbridge cloudbr0\n').uplinkBridge).toBe('cloudbr0');
  });

  it('failures name the domain, the host and what the tool said', () => {
    const vm = spec();
    const f = (name: string, key: string, detail = '') => startFailure(vm, 'root@10.0.0.5', name, key, detail);
    expect(f('NoSuchTemplateFile', 'disk0').message).toBe(
      'The template file /mnt/pool/tmpl.qcow2 of i-2-17-VM does not exist on root@10.0.0.5 (is the template downloaded to this primary storage, and is the pool mounted?)',
    );
    expect(f('BridgeUnavailable', 'nic1').message).toBe('Bridge cloudbr0 for NIC 02:00:0a:02:00:07 of i-2-17-VM does not exist on root@10.0.0.5');
    expect(f('BridgeUnavailable', 'novlan100', 'Error: Unknown device type.').message).toMatch(/mbr100 .* cannot make 802\.1Q VLAN links/);
    expect(f('DefineFailed', 'define', "error: Failed to define domain from /tmp/x\nerror: operation failed: domain 'i-2-17-VM' already exists with uuid 1").message).toBe(
      "virsh define of domain i-2-17-VM on root@10.0.0.5 failed: Failed to define domain from /tmp/x; operation failed: domain 'i-2-17-VM' already exists with uuid 1",
    );
    expect(f('StartFailed', 'start', 'error: Failed to start domain').name).toBe('StartFailed');
  });
});
