// The volume commands on a KVM host: attachDisk (a blank qcow2 created when missing, then hot-plugged
// into the running domain, live and in its definition), detachDisk, resizeDisk (virsh blockresize
// for a disk a running domain holds, qemu-img resize otherwise) and deleteDisk. Each is one script
// over one SSH round trip and converges when repeated: what is done already is left alone. Values
// reach the scripts quoted (shq) or base64-encoded, never bare.
import type { CommandPayload, CommandResult } from '../shared/agent/protocol.ts';
import { CommandFailure } from './errors.ts';
import { hostTarget, shq, who, type SshPool } from './ssh.ts';
import { checkPath, diskTarget, diskXml, firstLines, runScript, VIRSH, virshProblem } from './vm.ts';

const SCRIPT_TIMEOUT_MS = 120_000;
const DOMAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,254}$/;

function checkName(name: string) {
  if (!DOMAIN_NAME.test(name)) throw new CommandFailure('InvalidCommand', `Unusable domain name ${JSON.stringify(name)}`);
}

const PRELUDE = ['set -u', 'export LC_ALL=C', `V=${shq(VIRSH)}`, `fail() { printf '@@fail %s %s\\n%s\\n' "$1" "$2" "$3"; exit 3; }`];

/**
 * Shell lines that set $live and $cfg to 1 when the running domain $n has the disk $p in its live
 * state and in its definition; fails NoDomain / VmNotRunning / NoLibvirt otherwise.
 */
const HAS_DISK = [
  'st=$($V domstate --domain "$n" 2>&1) || { case "$st" in *"failed to get domain"*|*"Domain not found"*) fail NoDomain domstate "$st" ;; *) fail NoLibvirt domstate "$st" ;; esac; }',
  '[ "$st" = running ] || [ "$st" = paused ] || fail VmNotRunning domstate "$st"',
  // domblklist --details: Type Device Target Source (two header lines).
  'has() { $V domblklist --domain "$n" --details $1 2>/dev/null | awk \'NR>2 && $2=="disk" {print $4}\' | grep -Fxq -- "$p"; }',
  'live=0; has "" && live=1',
  'cfg=0; has --inactive && cfg=1',
];

export function attachScript(vmName: string, disk: { path: string; deviceId: number; sizeBytes?: number }): string {
  const L = [
    ...PRELUDE,
    `n=${shq(vmName)}`,
    `p=${shq(disk.path)}`,
    ...HAS_DISK,
    'if [ $live = 1 ] && [ $cfg = 1 ]; then echo "@@created 0"; echo @@done; exit 0; fi',
    'created=0',
    'if [ ! -e "$p" ]; then',
    `  out=$(qemu-img create -q -f qcow2 "$p.part" ${disk.sizeBytes ?? 0} 2>&1) && mv -f "$p.part" "$p" || { rm -f "$p.part"; fail DiskCreateFailed disk "$out"; }`,
    '  created=1',
    'fi',
    'x=$(mktemp /tmp/mold-disk.XXXXXX) || fail AttachFailed attach "mktemp failed"',
    `printf '%s' ${shq(Buffer.from(diskXml(disk)).toString('base64'))} | base64 -d > "$x"`,
    'undo() { rm -f "$x"; [ $created = 1 ] && rm -f "$p"; }',
    'if [ $live = 0 ]; then out=$($V attach-device --domain "$n" --file "$x" --live 2>&1) || { undo; fail AttachFailed live "$out"; }; fi',
    'if [ $cfg = 0 ]; then out=$($V attach-device --domain "$n" --file "$x" --config 2>&1) || { [ $live = 1 ] || $V detach-disk --domain "$n" "$p" --live >/dev/null 2>&1; undo; fail AttachFailed config "$out"; }; fi',
    'rm -f "$x"',
    'echo "@@created $created"',
    'echo @@done',
  ];
  return L.join('\n') + '\n';
}

export function detachScript(vmName: string, path: string, waitSeconds: number): string {
  const L = [
    ...PRELUDE,
    `n=${shq(vmName)}`,
    `p=${shq(path)}`,
    ...HAS_DISK,
    'if [ $cfg = 1 ]; then out=$($V detach-disk --domain "$n" "$p" --config 2>&1) || fail DetachFailed config "$out"; fi',
    'if [ $live = 1 ]; then',
    '  out=$($V detach-disk --domain "$n" "$p" --live 2>&1) || { has "" && fail DetachFailed live "$out"; }',
    // The guest releases a virtio disk when it handles the unplug request: wait for it.
    `  i=0; while has "" && [ $i -lt ${waitSeconds * 4} ]; do sleep 0.25; i=$((i+1)); done`,
    `  has "" && fail DetachTimeout live ""`,
    'fi',
    'echo "@@detached $((live + cfg))"',
    'echo @@done',
  ];
  return L.join('\n') + '\n';
}

export function resizeScript(path: string, sizeBytes: number, vmName: string | undefined, shrinkOk: boolean): string {
  const L = [
    ...PRELUDE,
    `p=${shq(path)}`,
    'if [ ! -e "$p" ]; then echo "@@size 0"; echo "@@missing"; echo @@done; exit 0; fi',
    'size() { qemu-img info -U --output=json "$p" 2>/dev/null | sed -n \'s/.*"virtual-size": *\\([0-9][0-9]*\\).*/\\1/p\' | head -n 1; }',
    'vs=$(size)',
    '[ -n "$vs" ] || fail ResizeFailed info "$(qemu-img info -U "$p" 2>&1)"',
    `want=${sizeBytes}`,
    'if [ "$vs" = "$want" ]; then echo "@@size $vs"; echo "@@live 0"; echo @@done; exit 0; fi',
    `[ "$want" -gt "$vs" ] || [ ${shrinkOk ? 1 : 0} = 1 ] || fail ShrinkRefused size "$vs"`,
    'live=0',
  ];
  if (vmName) {
    L.push(
      `n=${shq(vmName)}`,
      'st=$($V domstate --domain "$n" 2>/dev/null) || st=""',
      'if [ "$st" = running ] || [ "$st" = paused ]; then',
      '  if $V domblklist --domain "$n" --details 2>/dev/null | awk \'NR>2 {print $4}\' | grep -Fxq -- "$p"; then live=1; fi',
      'fi',
    );
  }
  L.push(
    'if [ $live = 1 ]; then',
    '  [ "$want" -gt "$vs" ] || fail ShrinkRefused live "$vs"',
    '  out=$($V blockresize --domain "$n" --path "$p" --size "${want}B" 2>&1) || fail ResizeFailed blockresize "$out"',
    'else',
    `  out=$(qemu-img resize -q ${shrinkOk ? '--shrink ' : ''}-f qcow2 "$p" "$want" 2>&1) || fail ResizeFailed qemu-img "$out"`,
    'fi',
    'echo "@@size $(size)"',
    'echo "@@live $live"',
    'echo @@done',
  );
  return L.join('\n') + '\n';
}

export function deleteScript(path: string): string {
  const L = [
    ...PRELUDE,
    `p=${shq(path)}`,
    'rm -f "$p.part"',
    'if [ ! -e "$p" ] && [ ! -L "$p" ]; then echo "@@removed 0"; echo @@done; exit 0; fi',
    // A disk a qemu holds has its write lock taken: qemu-img refuses it without -U.
    'if [ -f "$p" ] && ! out=$(qemu-img info "$p" 2>&1); then case "$out" in *"lock"*) fail DiskInUse lock "$out" ;; esac; fi',
    'out=$(rm -f "$p" 2>&1) || fail RemoveFailed rm "$out"',
    'echo "@@removed 1"',
    'echo @@done',
  ];
  return L.join('\n') + '\n';
}

type Failed = { error: string; key: string; detail: string };

async function run(pool: SshPool, host: CommandPayload<'attachDisk'>['host'], script: string, what: string): Promise<{ out: string; failed?: Failed }> {
  const t = hostTarget(host);
  const r = await runScript(pool, t, script, SCRIPT_TIMEOUT_MS);
  const m = /^@@fail (\S+) (\S+)\n([\s\S]*)$/m.exec(r.stdout);
  if (m) {
    if (m[1] === 'NoLibvirt') throw virshProblem(t, m[3]!);
    return { out: r.stdout, failed: { error: m[1]!, key: m[2]!, detail: m[3]! } };
  }
  if (r.code !== 0 || !/^@@done$/m.test(r.stdout)) {
    throw new CommandFailure('HostCommandFailed', `${what} on ${who(t)} failed (exit ${r.code ?? r.signal}): ${firstLines(r.stderr || r.stdout)}`);
  }
  return { out: r.stdout };
}

export async function attachDisk(pool: SshPool, payload: CommandPayload<'attachDisk'>): Promise<CommandResult<'attachDisk'>> {
  const { vmName, disk } = payload;
  checkName(vmName);
  checkPath(`The disk of ${vmName}`, disk.path);
  if (disk.backingFile) throw new CommandFailure('InvalidCommand', `attachDisk takes blank data disks only, not one on ${disk.backingFile}`);
  if (disk.deviceId < 1) throw new CommandFailure('InvalidCommand', `Device id 0 of ${vmName} is its root disk`);
  const where = who(hostTarget(payload.host));
  const target = diskTarget(disk.deviceId);
  const { out, failed } = await run(pool, payload.host, attachScript(vmName, disk), `Attaching ${disk.path} to ${vmName}`);
  if (failed) {
    const d = firstLines(failed.detail);
    switch (failed.error) {
      case 'NoDomain':
        throw new CommandFailure('VmNotRunning', `Cannot attach ${disk.path} to ${vmName} on ${where}: no such domain`);
      case 'VmNotRunning':
        throw new CommandFailure('VmNotRunning', `Cannot attach ${disk.path} to ${vmName} on ${where}: it is not running (${d})`);
      case 'DiskCreateFailed':
        throw new CommandFailure(failed.error, `Creating disk ${disk.path} for ${vmName} on ${where} failed: ${d}`);
      default:
        throw new CommandFailure('AttachFailed', `Attaching ${disk.path} to ${vmName} as ${target} on ${where} failed: ${d}`);
    }
  }
  return { vmName, target, created: /^@@created 1$/m.test(out) };
}

export async function detachDisk(pool: SshPool, payload: CommandPayload<'detachDisk'>): Promise<CommandResult<'detachDisk'>> {
  const { vmName, path } = payload;
  checkName(vmName);
  checkPath(`The disk of ${vmName}`, path);
  const where = who(hostTarget(payload.host));
  const waitSeconds = payload.waitSeconds ?? 15;
  const { out, failed } = await run(pool, payload.host, detachScript(vmName, path, waitSeconds), `Detaching ${path} from ${vmName}`);
  if (failed) {
    const d = firstLines(failed.detail);
    switch (failed.error) {
      // The domain is gone or stopped: the disk is not attached to anything running.
      case 'NoDomain':
      case 'VmNotRunning':
        return { vmName, detached: false };
      case 'DetachTimeout':
        throw new CommandFailure(
          failed.error,
          `The guest of ${vmName} on ${where} did not release ${path} within ${waitSeconds} s (it was asked to; a guest without an OS or without hot-unplug support never does): it stays attached until the VM stops`,
        );
      default:
        throw new CommandFailure('DetachFailed', `Detaching ${path} from ${vmName} on ${where} failed: ${d}`);
    }
  }
  return { vmName, detached: !/^@@detached 0$/m.test(out) };
}

export async function resizeDisk(pool: SshPool, payload: CommandPayload<'resizeDisk'>): Promise<CommandResult<'resizeDisk'>> {
  const { path, sizeBytes, vmName } = payload;
  checkPath('The disk', path);
  if (vmName !== undefined) checkName(vmName);
  const where = who(hostTarget(payload.host));
  const { out, failed } = await run(pool, payload.host, resizeScript(path, sizeBytes, vmName, payload.shrinkOk ?? false), `Resizing ${path}`);
  if (failed) {
    const d = firstLines(failed.detail);
    if (failed.error === 'ShrinkRefused') {
      throw new CommandFailure(
        failed.error,
        failed.key === 'live'
          ? `Cannot shrink ${path} while ${vmName} runs with it on ${where}: stop the VM or detach the disk first`
          : `Shrinking ${path} from ${d} to ${sizeBytes} bytes on ${where} needs shrinkok`,
      );
    }
    throw new CommandFailure('ResizeFailed', `Resizing ${path} to ${sizeBytes} bytes on ${where} failed (${failed.key}): ${d}`);
  }
  if (/^@@missing$/m.test(out)) return { path, exists: false, sizeBytes, live: false };
  return { path, exists: true, sizeBytes: Number(/^@@size (\d+)$/m.exec(out)?.[1] ?? sizeBytes), live: /^@@live 1$/m.test(out) };
}

export async function deleteDisk(pool: SshPool, payload: CommandPayload<'deleteDisk'>): Promise<CommandResult<'deleteDisk'>> {
  const { path } = payload;
  checkPath('The disk', path);
  const where = who(hostTarget(payload.host));
  const { out, failed } = await run(pool, payload.host, deleteScript(path), `Deleting ${path}`);
  if (failed) {
    const d = firstLines(failed.detail);
    if (failed.error === 'DiskInUse') throw new CommandFailure(failed.error, `${path} on ${where} is in use by a running VM: ${d}`);
    throw new CommandFailure('RemoveFailed', `Removing ${path} on ${where} failed: ${d}`);
  }
  return { path, removed: /^@@removed 1$/m.test(out) };
}
