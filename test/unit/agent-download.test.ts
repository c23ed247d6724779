// What the agent makes of qemu-img's word on a downloaded QCOW2 template (agent/download.ts).
import { describe, expect, it } from 'vitest';
import { qcow2Problem } from '../../agent/download.ts';

const out = (stdout: string) => ({ code: 0, stdout, stderr: '' });

describe('the QCOW2 check of a download', () => {
  it('keeps a sound image, leaked clusters and all', () => {
    expect(qcow2Problem(out('{\n  "virtual-size": 67108864,\n  "filename": "/p/t.qcow2.part",\n  "format": "qcow2"\n}\n'))).toBeUndefined();
  });

  it('names what qemu-img check said about a corrupt or foreign file', () => {
    expect(qcow2Problem(out("qemu-img: Could not open '/p/t.qcow2.part': Image is not in qcow2 format\n@@check 1\n"))).toBe("Could not open '/p/t.qcow2.part': Image is not in qcow2 format");
    expect(qcow2Problem(out('ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x40000 size 0x10000\n@@check 2\n'))).toMatch(/^ERROR: counting reference/);
    expect(qcow2Problem({ code: 127, stdout: '', stderr: 'sh: qemu-img: not found' })).toBe('sh: qemu-img: not found');
  });

  it('refuses an image with a backing file: a template must stand alone', () => {
    expect(qcow2Problem(out('{ "format": "qcow2", "backing-filename": "/etc/shadow" }'))).toBe('it has a backing file (/etc/shadow); a template must stand alone');
  });
});
