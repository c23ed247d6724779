// Live migration between two hosts the agent manages, and the host-to-host access it needs.
//
// libvirt migrates peer to peer from the source: the source's libvirtd (through `virsh migrate`)
// reaches the target's over qemu+ssh as root with the zone's migration key, and qemu streams the
// memory over tcp to the target's address. The agent provisions that access when it adds a host (the
// key's private half in ~/.ssh/mold-migration-<agent>, its public half in authorized_keys) and removes
// both when it forgets the host, so a removed host can neither reach nor be reached. The target's SSH
// host keys go into the source's known_hosts from the agent's own connection to the target, whose key
// the agent pinned when it added the host: nothing is trusted on first use between hosts.
import type { CommandPayload, CommandResult } from '../shared/agent/protocol.ts';
import { CommandFailure } from './errors.ts';
import { authorizedKeysScript, parseDomstate, parseVncDisplay } from './parse.ts';
import { hostTarget, shq, who, type SshConnection, type SshPool, type SshTarget } from './ssh.ts';
import { checkPath, firstLines, runScript, vlanBridgeLines, VIRSH } from './vm.ts';

export interface MigrationKey {
  privateKey: string;
  publicKey: string;
}

/** Where the migration key's private half lives on a host. */
export const migrationKeyPath = (agentId: string) => `$HOME/.ssh/mold-migration-${agentId}`;
const comment = (agentId: string) => `mold-migration-${agentId}`;

/** Installs the migration key on a host (both halves), or with `key` undefined removes it. */
export function migrationAccessScript(agentId: string, key: MigrationKey | undefined): string {
  const path = migrationKeyPath(agentId);
  const file = key
    ? // A file of its own, renamed into place only when it differs: several migrations to or from one host
      // may prepare at once (host maintenance), and none may pull the key from under another.
      `umask 077; mkdir -p ~/.ssh; p=$(mktemp "${path}.XXXXXX") && printf '%s' ${shq(Buffer.from(key.privateKey).toString('base64'))} | base64 -d > "$p" && { cmp -s "$p" "${path}" && rm -f "$p" || mv -f "$p" "${path}"; } || { rm -f "$p"; exit 1; }`
    : `rm -f "${path}"`;
  return `${file}\n${authorizedKeysScript(key?.publicKey, comment(agentId))}`;
}

export async function installMigrationAccess(conn: SshConnection, agentId: string, key: MigrationKey | undefined): Promise<void> {
  const r = await conn.exec(migrationAccessScript(agentId, key), { timeoutMs: 30_000 });
  if (r.code !== 0) {
    throw new CommandFailure('HostCommandFailed', `${key ? 'Installing' : 'Removing'} the migration key on ${who(conn.target)} failed (exit ${r.code ?? r.signal}): ${firstLines(r.stderr || r.stdout, 300)}`);
  }
}

/**
 * A disk the target must have before a migration with storage: an empty qcow2 of the source's
 * virtual size that qemu fills while the guest runs (`sizeBytes`), or a small read-only file (the
 * config drive) the agent copies itself (`content`, base64).
 */
type Moves = NonNullable<CommandPayload<'migrateVm'>['storage']>;

export type TargetDisk = { path: string; sizeBytes: number } | { path: string; content: string };

/** Shell lines that write one target disk anew (a leftover of an earlier attempt is replaced). */
function targetDiskLines(disk: TargetDisk): string[] {
  const p = shq(disk.path);
  const dir = shq(disk.path.replace(/\/[^/]*$/, '') || '/');
  const write =
    'sizeBytes' in disk
      ? `out=$(qemu-img create -q -f qcow2 ${p} ${disk.sizeBytes} 2>&1) || { rm -f ${p}; fail DiskCreateFailed ${p} "$out"; }`
      : `{ printf '%s' ${shq(disk.content)} | base64 -d > ${p}.part && mv -f ${p}.part ${p}; } || { rm -f ${p}.part; fail DiskCreateFailed ${p} "cannot write the file"; }`;
  return [`[ -d ${dir} ] || fail NoTargetDirectory ${dir} "the target pool's directory is missing"`, `rm -f ${p}`, write];
}

/**
 * The migratable domain XML with each moved disk's source at its new path. A mirrored disk's
 * backing chain goes: the copy on the target is whole (qemu's full mirror), without the template.
 * Pure; unit-tested.
 */
export function relocateDisks(xml: string, moves: readonly { from: string; to: string; copy: 'mirror' | 'file' }[]): string {
  return xml.replace(/<disk\b[\s\S]*?<\/disk>/g, (disk) => {
    const move = moves.find((m) => disk.includes(`file='${xmlAttr(m.from)}'`));
    if (!move) return disk;
    let out = disk.replace(`file='${xmlAttr(move.from)}'`, `file='${xmlAttr(move.to)}'`);
    if (move.copy === 'mirror') out = out.replace(/\s*<backingStore\b[\s\S]*<\/backingStore>/, '').replace(/\s*<backingStore\/>/, '');
    return out;
  });
}

const xmlAttr = (text: string) => text.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');

/** The device names (vda, …) of the domain's disks at `paths`, from `virsh domblklist --details`. Pure. */
export function devicesOf(domblklist: string, paths: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const line of domblklist.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 4 && paths.includes(cols.slice(3).join(' '))) found.set(cols.slice(3).join(' '), cols[2]!);
  }
  return found;
}

/** known_hosts' name for an address and port. */
const knownHostsName = (t: SshTarget) => (t.port === 22 ? t.address : `[${t.address}]:${t.port}`);

/** Shell that prints the domain's state and VNC display on this host, as `targetState` reads them. */
const stateQuery = (name: string) => `LC_ALL=C ${VIRSH} "echo @@state; domstate --domain ${shq(name)}; echo @@vnc; vncdisplay --domain ${shq(name)}" 2>&1`;

/** The domain's state and VNC port from `stateQuery`'s output; undefined when this host has no such domain. */
function stateFrom(stdout: string) {
  const state = /^@@state\n(.*)$/m.exec(stdout)?.[1];
  if (state === undefined || /error:/.test(state)) return undefined;
  return { state: parseDomstate(state), vncPort: parseVncDisplay(/^@@vnc\n(.*)$/m.exec(stdout)?.[1] ?? '') };
}

/**
 * The target's part, before the migration: the migration key (a host added before live migration
 * existed has none), the VLAN bridges the domain's NICs need, and its SSH host keys (printed). Given
 * `ifNotHere`, it first looks for that domain on the target and, if it runs there (a repeated command),
 * prints its state after `@@here` and changes nothing: one round trip for the check and the preparation.
 */
export function targetScript(agentId: string, key: MigrationKey, vlans: readonly number[], vlanFallback?: 'isolated', disks: readonly TargetDisk[] = [], ifNotHere?: string): string {
  return [
    'set -u',
    `fail() { printf '@@fail %s %s\\n%s\\n' "$1" "$2" "$3"; exit 3; }`,
    ...(ifNotHere ? [`here=$(${stateQuery(ifNotHere)})`, `if [ "$(printf '%s\\n' "$here" | sed -n 2p)" = running ]; then printf '@@here\\n%s\\n' "$here"; exit 0; fi`] : []),
    `( ${migrationAccessScript(agentId, key).replace(/\n/g, '\n  ')}\n) >/dev/null 2>&1 || fail KeyInstallFailed key "cannot install the migration key"`,
    ...vlanBridgeLines(vlans, vlanFallback),
    ...disks.flatMap(targetDiskLines),
    'echo @@hostkeys',
    'cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null',
    '',
  ].join('\n');
}

/**
 * The source's part: its own copy of the key, the target's host keys in known_hosts (older lines for
 * that name dropped), then `virsh migrate` with the domain's migratable XML whose VNC listen address
 * is the target's. After a failure it says where the domain is, so the control plane knows it stayed.
 */
export function sourceScript(
  agentId: string,
  key: MigrationKey,
  payload: { name: string; target: SshTarget; vncListen: string },
  hostKeys: string[],
  storage?: { xml: string; devices: readonly string[] },
): string {
  const t = payload.target;
  const name = shq(payload.name);
  const khName = knownHostsName(t);
  const escaped = khName.replace(/[.[\]*^$\\+?(){}|/-]/g, '\\$&');
  const lines = hostKeys.map((k) => `${khName} ${k.split(/\s+/).slice(0, 2).join(' ')}`);
  if (!/^[A-Za-z0-9._:-]+$/.test(t.address) || !/^[A-Za-z0-9._-]+$/.test(t.username)) throw new CommandFailure('InvalidCommand', `Cannot migrate to ${who(t)}: unusual address or username`);
  // Double-quoted in the script: $HOME expands, nothing else in it can.
  const uri = `qemu+ssh://${t.username}@${t.address}:${t.port}/system?keyfile=${migrationKeyPath(agentId)}&no_tty=1`;
  const listen = payload.vncListen.replace(/[^0-9A-Za-z.:-]/g, '');
  return [
    'set -u',
    'export LC_ALL=C',
    `V=${shq(VIRSH)}`,
    `fail() { printf '@@fail %s %s\\n%s\\n' "$1" "$2" "$3"; exit 3; }`,
    'x=""',
    `trap 'rm -f $x' EXIT`,
    `( ${migrationAccessScript(agentId, key).replace(/\n/g, '\n  ')}\n) >/dev/null 2>&1 || fail KeyInstallFailed key "cannot install the migration key"`,
    'kh=~/.ssh/known_hosts; touch "$kh"',
    // Under a lock, replaced by a rename and only when it changes: several migrations from this host
    // run at once (host maintenance), and none may lose another's lines or read a half-written file.
    `( flock 9; k=$(mktemp ~/.ssh/.mold-kh.XXXXXX) && { grep -v -E '^${escaped} ' "$kh" || true; } > "$k" && printf '%s\\n' ${lines.map(shq).join(' ')} >> "$k" && { cmp -s "$k" "$kh" || mv -f "$k" "$kh"; }; rm -f "$k" ) 9>~/.ssh/.mold-kh.lock`,
    `s=$($V domstate --domain ${name} 2>&1) || fail NotOnSource domstate "$s"`,
    `[ "$s" = running ] || [ "$s" = paused ] || fail NotRunning domstate "$s"`,
    'x=$(mktemp /tmp/mold-migrate.XXXXXX) || fail MigrationFailed xml "mktemp failed"',
    // The VNC server moves with the domain: it must listen on an address of the target.
    // With storage motion the agent has rewritten the XML (the disks' new paths); otherwise the domain's own.
    storage
      ? `out=$(printf '%s' ${shq(Buffer.from(storage.xml).toString('base64'))} | base64 -d)`
      : `out=$($V dumpxml --migratable --domain ${name} 2>&1) || fail MigrationFailed xml "$out"`,
    `printf '%s\\n' "$out" | sed -e "/<graphics /s/listen='[^']*'/listen='${listen}'/" -e "/<listen type='address'/s/address='[^']*'/address='${listen}'/" > "$x"`,
    // --unsafe: libvirt cannot tell that a SharedMountPoint directory is shared and refuses the
    // read-only config drive (no cache=none); the control plane sends migrateVm only to a host that
    // reaches the VM's pool, and the writable disks are cache=none.
    // --copy-storage-all --migrate-disks: qemu mirrors just the moved disks into the files made on the
    // target (over NBD to the target's address) while the guest runs; the others stay on shared storage.
    `if ! out=$($V migrate --live --persistent --undefinesource --unsafe${storage ? ` --copy-storage-all --migrate-disks ${shq(storage.devices.join(','))}` : ''} --domain ${name} --desturi "${uri}" --migrateuri ${shq(`tcp://${t.address}`)} --xml "$x" 2>&1); then`,
    `  now=$($V domstate --domain ${name} 2>&1)`,
    '  fail MigrationFailed "$now" "$out"',
    'fi',
    'echo @@migrated',
    '',
  ].join('\n');
}

async function targetState(pool: SshPool, t: SshTarget, name: string) {
  return stateFrom((await pool.exec(t, stateQuery(name), { timeoutMs: 60_000 })).stdout);
}

export async function migrateVm(pool: SshPool, agentId: string, key: MigrationKey | undefined, payload: CommandPayload<'migrateVm'>): Promise<CommandResult<'migrateVm'>> {
  if (!key) throw new CommandFailure('NoMigrationKey', 'This agent has no migration key (its state directory is not writable?)');
  const source = hostTarget(payload.host);
  const target = hostTarget(payload.target);
  const { name } = payload;
  const done = (at: { state: ReturnType<typeof parseDomstate>; vncPort?: number }) => ({ name, state: at.state, ...(at.vncPort !== undefined && { vncPort: at.vncPort }) });
  // A repeated command (the agent restarted after migrating): the domain runs on the target only.
  const landedBefore = async (at: ReturnType<typeof stateFrom>) =>
    at?.state === 'Running' && (await pool.exec(source, `LC_ALL=C ${VIRSH} domstate --domain ${shq(name)}`, { timeoutMs: 60_000 })).code !== 0;
  const storage = payload.storage ?? [];
  // With storage the source's disks are read first, which needs the domain there: the target is asked
  // before. Without, the target's preparation asks itself (one SSH round trip fewer).
  if (storage.length > 0) {
    const already = await targetState(pool, target, name);
    if (await landedBefore(already)) return done(already!);
  }
  const motion = storage.length > 0 ? await readStorage(pool, source, name, storage) : undefined;
  const fallback = process.env.MOLD_AGENT_VLAN_FALLBACK === 'isolated' ? 'isolated' : undefined;
  const prepare = (ifNotHere?: string) => runScript(pool, target, targetScript(agentId, key, payload.vlans ?? [], fallback, motion?.disks, ifNotHere), 60_000);
  let prepared = await prepare(storage.length > 0 ? undefined : name);
  if (/^@@here$/m.test(prepared.stdout)) {
    const here = stateFrom(prepared.stdout);
    if (await landedBefore(here)) return done(here!);
    // Running on both (the source's copy not yet gone): prepared as any other time, and virsh decides.
    prepared = await prepare();
  }
  const prepFailed = /^@@fail (\S+) (\S+)\n([\s\S]*)$/m.exec(prepared.stdout);
  if (prepFailed || prepared.code !== 0) {
    await removeCopies(pool, target, storage);
    throw new CommandFailure('MigrationFailed', `Preparing ${who(target)} to receive ${name} failed: ${firstLines(prepFailed ? `${prepFailed[1]} ${prepFailed[2]}: ${prepFailed[3]}` : prepared.stderr || prepared.stdout)}`);
  }
  const hostKeys = (prepared.stdout.split('@@hostkeys\n')[1] ?? '').split('\n').map((l) => l.trim()).filter((l) => /^(ssh|ecdsa)-/.test(l));
  if (hostKeys.length === 0) throw new CommandFailure('MigrationFailed', `${who(target)} has no readable SSH host key (/etc/ssh/ssh_host_*_key.pub): the source could not verify it`);
  const timeoutMs = (payload.timeoutSeconds ?? 600) * 1000;
  let r;
  try {
    r = await runScript(pool, source, sourceScript(agentId, key, { name, target, vncListen: payload.vncListen }, hostKeys, motion), timeoutMs);
  } catch (err) {
    // Timed out: libvirt's migration job is cancelled, so the domain keeps running on the source.
    if (err instanceof CommandFailure && err.name === 'Timeout') {
      await pool.exec(source, `LC_ALL=C ${VIRSH} domjobabort --domain ${shq(name)}`, { timeoutMs: 30_000 }).catch(() => undefined);
      await removeCopies(pool, target, storage);
      throw new CommandFailure('MigrationFailed', `Migrating ${name} from ${who(source)} to ${who(target)} did not finish within ${payload.timeoutSeconds ?? 600} s; it was cancelled`);
    }
    throw err;
  }
  const failed = /^@@fail (\S+) (.*)\n([\s\S]*)$/m.exec(r.stdout);
  // The domain stayed on the source: the copies made for it on the target go.
  if (failed || r.code !== 0 || !/^@@migrated$/m.test(r.stdout)) await removeCopies(pool, target, storage);
  if (failed) {
    if (failed[1] === 'NotOnSource' || failed[1] === 'NotRunning') {
      throw new CommandFailure('MigrationFailed', `${name} is not running on ${who(source)} (${failed[2]}: ${firstLines(failed[3]!, 300)})`);
    }
    throw new CommandFailure('MigrationFailed', `Migrating ${name} from ${who(source)} to ${who(target)} failed (${firstLines(failed[3]!, 600)}); on the source it is ${failed[2]}`);
  }
  if (r.code !== 0 || !/^@@migrated$/m.test(r.stdout)) {
    throw new CommandFailure('MigrationFailed', `Migrating ${name} from ${who(source)} to ${who(target)} failed (exit ${r.code ?? r.signal}): ${firstLines(r.stderr || r.stdout)}`);
  }
  const landed = await targetState(pool, target, name);
  if (!landed) throw new CommandFailure('MigrationFailed', `virsh migrate of ${name} finished but ${who(target)} does not have the domain`);
  return done(landed);
}

/**
 * What the target needs for a migration with storage, read on the source: each mirrored disk's
 * virtual size and device, each copied file's content, and the domain's XML with the new paths.
 */
async function readStorage(pool: SshPool, source: SshTarget, name: string, storage: Moves) {
  for (const move of storage) {
    checkPath('A disk to move', move.from);
    checkPath('A disk\'s new path', move.to);
    if (move.from === move.to) throw new CommandFailure('InvalidCommand', `Moving ${move.from} onto itself`);
  }
  const fail = (what: string, text: string) => new CommandFailure('MigrationFailed', `Reading ${what} of ${name} on ${who(source)} failed: ${firstLines(text, 300)}`);
  const listed = await pool.exec(source, `LC_ALL=C ${VIRSH} domblklist --details --domain ${shq(name)}`, { timeoutMs: 60_000 });
  if (listed.code !== 0) throw fail('the disks', listed.stderr || listed.stdout);
  const mirrored = storage.filter((m) => m.copy === 'mirror');
  const devices = devicesOf(listed.stdout, mirrored.map((m) => m.from));
  const missing = mirrored.find((m) => !devices.has(m.from));
  if (missing) throw new CommandFailure('MigrationFailed', `${name} on ${who(source)} has no disk ${missing.from}`);
  const disks: TargetDisk[] = [];
  for (const move of storage) {
    if (move.copy === 'mirror') {
      const info = await pool.exec(source, `qemu-img info -U --output=json ${shq(move.from)}`, { timeoutMs: 60_000 });
      const sizeBytes = Number(/"virtual-size":\s*(\d+)/.exec(info.stdout)?.[1]);
      if (info.code !== 0 || !Number.isSafeInteger(sizeBytes)) throw fail(`the size of ${move.from}`, info.stderr || info.stdout);
      disks.push({ path: move.to, sizeBytes });
    } else {
      const read = await pool.exec(source, `base64 -w0 ${shq(move.from)}`, { timeoutMs: 60_000 });
      if (read.code !== 0) throw fail(move.from, read.stderr || read.stdout);
      disks.push({ path: move.to, content: read.stdout.trim() });
    }
  }
  const dumped = await pool.exec(source, `LC_ALL=C ${VIRSH} dumpxml --migratable --domain ${shq(name)}`, { timeoutMs: 60_000 });
  if (dumped.code !== 0) throw fail('the domain XML', dumped.stderr || dumped.stdout);
  return { disks, devices: mirrored.map((m) => devices.get(m.from)!), xml: relocateDisks(dumped.stdout, storage) };
}

/** Removes the disks made on the target for a migration that did not happen (best effort: Mold's books never counted them). */
async function removeCopies(pool: SshPool, target: SshTarget, storage: Moves = []) {
  if (storage.length === 0) return;
  await pool.exec(target, `rm -f ${storage.flatMap((m) => [shq(m.to), shq(`${m.to}.part`)]).join(' ')}`, { timeoutMs: 30_000 }).catch(() => undefined);
}
