// A VM deployed from an ISO (vmSpec.iso): the domain XML gains a second cdrom with the ISO, booted
// first (per-device boot order: the config drive is a cdrom too), then the blank root disk; the
// startVm script checks the ISO file is there; a bad ISO path is refused before anything runs.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CommandFailure } from '../../agent/errors.ts';
import { checkVm, domainXml, startFailure, startScript } from '../../agent/vm.ts';
import type { VmSpec } from '../../shared/agent/protocol.ts';

const UUID = '5f0c1a9e-3b7d-4c2e-9a61-0d8f2b7c4e13';

function spec(over: Partial<VmSpec> = {}): VmSpec & { disks: NonNullable<VmSpec['disks']> } {
  return {
    name: 'i-2-18-VM',
    uuid: UUID,
    hostname: 'installer',
    vcpus: 1,
    cpuMhz: 1000,
    memoryMiB: 1024,
    disks: [
      { path: '/mnt/pool/vol-root.qcow2', sizeBytes: 20 * 2 ** 30, deviceId: 0 },
      { path: '/mnt/pool/vol-data.qcow2', sizeBytes: 2 ** 30, deviceId: 1 },
    ],
    configDrive: { path: `/mnt/pool/${UUID}-config.iso`, instanceId: UUID, publicKeys: {} },
    nics: [{ mac: '02:00:0a:01:00:05', vlan: 100, ip: '10.1.0.5', netmask: '255.255.255.0', gateway: '10.1.0.1', dns: [] }],
    vncListen: '10.77.4.11',
    iso: '/mnt/pool/iso-1.iso',
    ...over,
  } as never;
}

const cdroms = (xml: string) => [...xml.matchAll(/<disk type='file' device='cdrom'>([\s\S]*?)<\/disk>/g)].map((m) => m[1]!);
const disks = (xml: string) => [...xml.matchAll(/<disk type='file' device='disk'>([\s\S]*?)<\/disk>/g)].map((m) => m[1]!);

describe('domain XML of a VM with an ISO', () => {
  it('attaches the ISO as a second cdrom, booted first, then the root disk', () => {
    const xml = domainXml(spec(), { domainType: 'kvm', cpuShares: 1000 });
    const [config, iso] = cdroms(xml);
    expect(cdroms(xml)).toHaveLength(2);
    expect(config).toContain(`<source file='/mnt/pool/${UUID}-config.iso'/>`);
    expect(config).toContain(`<target dev='hdc' bus='ide'/>`);
    expect(config).not.toContain('<boot');
    expect(iso).toMatch(/<driver name='qemu' type='raw'\/>\s*<source file='\/mnt\/pool\/iso-1\.iso'\/>\s*<target dev='hdd' bus='ide'\/>\s*<readonly\/>\s*<boot order='1'\/>/);
    const [root, data] = disks(xml);
    expect(root).toContain(`<target dev='vda' bus='virtio'/>`);
    expect(root).toContain(`<boot order='2'/>`);
    expect(data).not.toContain('<boot');
    // libvirt refuses <os><boot dev=…/> together with per-device boot orders.
    expect(xml).not.toContain(`<boot dev=`);
    // Tags balance.
    expect(xml.match(/<disk /g)).toHaveLength(4);
    expect(xml.match(/<\/disk>/g)).toHaveLength(4);
  });

  it('without an ISO boots the disk as before, with one cdrom', () => {
    const xml = domainXml(spec({ iso: undefined }), { domainType: 'kvm', cpuShares: 1000 });
    expect(xml).toContain(`<boot dev='hd'/>`);
    expect(xml).not.toContain('<boot order=');
    expect(cdroms(xml)).toHaveLength(1);
  });

  it('escapes the ISO path and refuses one that is not an absolute file path', () => {
    const xml = domainXml(spec({ iso: `/mnt/p/it's <&>.iso` }), { domainType: 'kvm', cpuShares: 1000 });
    expect(xml).toContain(`<source file='/mnt/p/it&apos;s &lt;&amp;&gt;.iso'/>`);
    for (const iso of ['relative.iso', '/mnt/pool/', '/mnt/../etc/passwd', '/a\nb']) {
      expect(() => checkVm(spec({ iso }) as never)).toThrow(CommandFailure);
    }
    expect(() => checkVm(spec() as never)).not.toThrow();
  });

  it('the start script creates the blank root disk, fails NoSuchIsoFile when the ISO is missing, and is valid shell', () => {
    const vm = spec({ iso: `/mnt/p/it's "$(reboot)".iso` });
    const script = startScript(vm as never, domainXml(vm as never, { domainType: 'kvm', cpuShares: 1000 }));
    expect(spawnSync('sh', ['-n'], { input: script }).status).toBe(0);
    expect(script).toContain(`[ -f '/mnt/p/it'\\''s "$(reboot)".iso' ] || fail NoSuchIsoFile iso ""`);
    expect(script).toContain(`qemu-img create -q -f qcow2 "$p.part" ${20 * 2 ** 30}`);
    // The check comes before anything is defined.
    expect(script.indexOf('NoSuchIsoFile')).toBeLessThan(script.indexOf('define "$x"'));
    const failure = startFailure(spec() as never, 'kvm1', 'NoSuchIsoFile', 'iso', '');
    expect(failure).toBeInstanceOf(CommandFailure);
    expect(failure.message).toBe('The ISO file /mnt/pool/iso-1.iso of i-2-18-VM does not exist on kvm1 (is the ISO downloaded to this primary storage, and is the pool mounted?)');
  });
});
