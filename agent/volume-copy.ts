// A volume's move between primary storage pools (migrateVolume of a stopped VM's or a detached
// volume), on a host that mounts both: copyDisk writes the volume anew on the target pool with
// `qemu-img convert` (a root overlay comes out whole, without its template: the target pool need not
// hold the template), checks the copy and only then gives it its name; removeFiles deletes what the
// move left behind once the control plane has recorded it (the source, a stopped VM's config drive),
// or a copy the control plane could not record. Both converge when repeated.
import type { CommandPayload, CommandResult } from '../shared/agent/protocol.ts';
import { CommandFailure } from './errors.ts';
import { hostTarget, shq, who, type SshPool } from './ssh.ts';
import { checkPath, firstLines, runScript } from './vm.ts';
import { deleteDisk } from './volumes.ts';

export function copyScript(source: string, destination: string): string {
  return [
    'set -u',
    'export LC_ALL=C',
    `fail() { printf '@@fail %s %s\\n%s\\n' "$1" "$2" "$3"; exit 3; }`,
    `s=${shq(source)}`,
    `d=${shq(destination)}`,
    `vsize() { qemu-img info -U --output=json "$1" 2>/dev/null | sed -n 's/.*"virtual-size": *\\([0-9][0-9]*\\).*/\\1/p' | head -n 1; }`,
    // Repeated after the source was removed: the copy is what there is.
    'if [ ! -e "$s" ] && [ -f "$d" ]; then echo "@@size $(vsize "$d")"; echo @@done; exit 0; fi',
    '[ -f "$s" ] || fail NoSuchDisk source ""',
    '[ -d "${d%/*}" ] || fail NoTargetDirectory target "${d%/*}"',
    'rm -f "$d.part"',
    // Without -U: a disk that a running qemu holds keeps its write lock, and convert is refused.
    'out=$(qemu-img convert -f qcow2 -O qcow2 "$s" "$d.part" 2>&1) || { rm -f "$d.part"; case "$out" in *lock*) fail DiskInUse convert "$out" ;; *) fail CopyFailed convert "$out" ;; esac; }',
    'out=$(qemu-img check -q -f qcow2 "$d.part" 2>&1) || { rm -f "$d.part"; fail CopyFailed check "$out"; }',
    'want=$(vsize "$s"); got=$(vsize "$d.part")',
    '[ -n "$got" ] && [ "$got" = "$want" ] || { rm -f "$d.part"; fail CopyFailed size "virtual size $got, the source has $want"; }',
    'sync "$d.part" 2>/dev/null || sync',
    'mv -f "$d.part" "$d" || { rm -f "$d.part"; fail CopyFailed rename "cannot rename $d.part"; }',
    'echo "@@size $got"',
    'echo @@done',
  ].join('\n') + '\n';
}

export async function copyDisk(pool: SshPool, payload: CommandPayload<'copyDisk'>): Promise<CommandResult<'copyDisk'>> {
  const { source, destination } = payload;
  checkPath('The source disk', source);
  checkPath('The target disk', destination);
  if (source === destination) throw new CommandFailure('InvalidCommand', `Copying ${source} onto itself`);
  const t = hostTarget(payload.host);
  const where = who(t);
  const r = await runScript(pool, t, copyScript(source, destination), (payload.timeoutSeconds ?? 3600) * 1000);
  const failed = /^@@fail (\S+) (\S+)\n([\s\S]*)$/m.exec(r.stdout);
  if (failed) {
    const [, name, key, detail] = failed;
    const d = firstLines(detail!);
    switch (name) {
      case 'NoSuchDisk':
        throw new CommandFailure(name, `The disk ${source} does not exist on ${where} (is its pool mounted there?)`);
      case 'NoTargetDirectory':
        throw new CommandFailure(name, `The target pool's directory ${d} does not exist on ${where} (is the pool mounted there?)`);
      case 'DiskInUse':
        throw new CommandFailure(name, `${source} on ${where} is in use by a running VM: ${d}`);
      default:
        throw new CommandFailure('CopyFailed', `Copying ${source} to ${destination} on ${where} failed (${key}): ${d}`);
    }
  }
  if (r.code !== 0 || !/^@@done$/m.test(r.stdout)) {
    throw new CommandFailure('HostCommandFailed', `Copying ${source} to ${destination} on ${where} failed (exit ${r.code ?? r.signal}): ${firstLines(r.stderr || r.stdout)}`);
  }
  return { destination, sizeBytes: Number(/^@@size (\d+)$/m.exec(r.stdout)?.[1] ?? 0) };
}

export async function removeFiles(pool: SshPool, payload: CommandPayload<'removeFiles'>): Promise<CommandResult<'removeFiles'>> {
  const removed: string[] = [];
  for (const path of payload.paths) {
    if ((await deleteDisk(pool, { host: payload.host, path })).removed) removed.push(path);
  }
  return { removed };
}
