// The agent's pure parts of a migration with storage (agent/migrate.ts): the domain XML pointed at the
// disks' new paths, the moved disks' device names, and what the scripts run for them.
import { describe, expect, it } from 'vitest';
import { devicesOf, relocateDisks, sourceScript, targetScript } from '../../agent/migrate.ts';

const XML = `<domain type='qemu'>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='/pools/a/root.qcow2'/>
      <backingStore type='file'>
        <format type='qcow2'/>
        <source file='/pools/a/template.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='/pools/a/data.qcow2'/>
      <backingStore/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/pools/a/vm-config.iso'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <graphics type='vnc' port='5901' listen='10.0.0.1'/>
  </devices>
</domain>`;

describe('relocateDisks', () => {
  it('points each moved disk at its new path and drops a mirrored disk\'s backing chain; the rest is untouched', () => {
    const out = relocateDisks(XML, [
      { from: '/pools/a/root.qcow2', to: '/pools/b/root.qcow2', copy: 'mirror' },
      { from: '/pools/a/vm-config.iso', to: '/pools/b/vm-config.iso', copy: 'file' },
    ]);
    expect(out).toContain("<source file='/pools/b/root.qcow2'/>");
    expect(out).not.toContain('/pools/a/root.qcow2');
    expect(out).not.toContain('template.qcow2');
    expect(out).toContain("<source file='/pools/b/vm-config.iso'/>");
    // Not moved: the data disk, its (empty) backing store, the graphics.
    expect(out).toContain("<source file='/pools/a/data.qcow2'/>\n      <backingStore/>");
    expect(out).toContain("<graphics type='vnc' port='5901' listen='10.0.0.1'/>");
    expect(out.match(/<disk /g)).toHaveLength(3);
  });

  it('changes nothing without moves, and escapes a path for XML', () => {
    expect(relocateDisks(XML, [])).toBe(XML);
    const out = relocateDisks(XML, [{ from: '/pools/a/data.qcow2', to: "/pools/b'&/data.qcow2", copy: 'mirror' }]);
    expect(out).toContain("<source file='/pools/b&apos;&amp;/data.qcow2'/>");
    expect(out).not.toMatch(/data\.qcow2'\/>\s*<backingStore\/>/);
  });
});

describe('devicesOf', () => {
  it('maps the moved disks\' paths to their targets from virsh domblklist --details', () => {
    const listed = ` Type   Device   Target   Source
------------------------------------------------
 file   disk     vda      /pools/a/root.qcow2
 file   disk     vdb      /pools/a/with space.qcow2
 file   cdrom    hdc      /pools/a/vm-config.iso
`;
    expect(devicesOf(listed, ['/pools/a/root.qcow2', '/pools/a/with space.qcow2'])).toEqual(
      new Map([
        ['/pools/a/root.qcow2', 'vda'],
        ['/pools/a/with space.qcow2', 'vdb'],
      ]),
    );
    expect(devicesOf(listed, ['/pools/a/other.qcow2']).size).toBe(0);
  });
});

describe('the scripts', () => {
  const key = { privateKey: 'PRIVATE', publicKey: 'ssh-ed25519 AAAA mold' };
  it('the target makes each disk anew: an empty qcow2 of the size, or the file written whole; a missing pool directory fails by name', () => {
    const script = targetScript('agent-1', key, [], undefined, [
      { path: '/pools/b/root.qcow2', sizeBytes: 1073741824 },
      { path: '/pools/b/vm-config.iso', content: 'aGVsbG8=' },
    ]);
    expect(script).toContain("[ -d '/pools/b' ] || fail NoTargetDirectory '/pools/b'");
    expect(script).toContain("rm -f '/pools/b/root.qcow2'");
    expect(script).toContain("qemu-img create -q -f qcow2 '/pools/b/root.qcow2' 1073741824");
    expect(script).toContain("printf '%s' 'aGVsbG8=' | base64 -d > '/pools/b/vm-config.iso'.part && mv -f '/pools/b/vm-config.iso'.part '/pools/b/vm-config.iso'");
    expect(targetScript('agent-1', key, [])).not.toContain('qemu-img');
  });

  it('the target looks for the domain first only when asked, and then before it changes anything', () => {
    const script = targetScript('agent-1', key, [100], undefined, [], 'i-2-5-VM');
    const check = script.indexOf("domstate --domain 'i-2-5-VM'");
    expect(check).toBeGreaterThan(0);
    expect(script.indexOf('@@here')).toBeGreaterThan(check);
    expect(script.indexOf('@@here')).toBeLessThan(script.indexOf('mold-migration'));
    expect(targetScript('agent-1', key, [100])).not.toContain('domstate');
  });

  it('the source migrates with --copy-storage-all for just the moved disks, from the rewritten XML', () => {
    const target = { hostId: 'h2', address: '10.0.0.2', port: 22, username: 'root', epoch: 1 };
    const plain = sourceScript('agent-1', key, { name: 'i-2-5-VM', target: target as never, vncListen: '10.0.0.2' }, ['ssh-ed25519 AAAA host']);
    expect(plain).toContain('dumpxml --migratable');
    expect(plain).not.toContain('--copy-storage-all');
    const moving = sourceScript('agent-1', key, { name: 'i-2-5-VM', target: target as never, vncListen: '10.0.0.2' }, ['ssh-ed25519 AAAA host'], { xml: '<domain/>', devices: ['vda', 'vdb'] });
    expect(moving).not.toContain('dumpxml');
    expect(moving).toContain(Buffer.from('<domain/>').toString('base64'));
    expect(moving).toContain("--copy-storage-all --migrate-disks 'vda,vdb'");
  });
});
