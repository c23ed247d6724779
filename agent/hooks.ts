// The libvirt qemu hook (docs hosts.md §13, upstream's agent/bindir/libvirtqemuhook): the agent installs
// /etc/libvirt/hooks/qemu on every host it adds or reconnects, so that operators' custom scripts in
// /etc/libvirt/hooks/custom/ run whenever libvirt starts, stops or migrates a guest:
// - only for libvirt's qemu operations (prepare, start, started, stopped, release, migrate, restore,
//   reconnect, attach); any other is logged and nothing runs;
// - the scripts named `<operation>_<name>` and `all_<name>`, in the order of the name after the first
//   `_` (so migrate_abc.py runs before all_cde.sh), every one with the hook's four arguments unchanged
//   and the domain XML libvirt gave the hook on its stdin;
// - a script that is not executable is logged and skipped; one still running after `timeoutSeconds`
//   (10 * 60, edited by hand as upstream's) gets SIGTERM (SIGKILL 10 s later);
// - every script's stdout and stderr, and the hook's own lines, are appended to
//   /var/log/libvirt/qemu-hook.log.
// The hook itself prints nothing and always exits 0: for `migrate begin` and `restore begin` libvirt
// takes the hook's stdout as the guest's new XML, and a failing hook would abort the guest's start.
// It is bash, not Python as upstream's: a Mold host needs nothing but libvirt, qemu and sshd.
//
// libvirtd looks for hook scripts only when it starts or reloads (SIGHUP; checked on the lab's
// libvirt 9.0), so a new or changed hook is followed by a reload: systemd's when libvirtd (or the
// modular virtqemud) runs under it, else SIGHUP to the pid in /run/<daemon>.pid.
import { CommandFailure } from './errors.ts';
import { shq, who, type SshConnection } from './ssh.ts';

export const HOOK_PATH = '/etc/libvirt/hooks/qemu';
export const CUSTOM_DIR = '/etc/libvirt/hooks/custom';
export const HOOK_LOG = '/var/log/libvirt/qemu-hook.log';
/** Marks a hook as Mold's: a different file without it is kept beside ours, never overwritten. */
const MARKER = '# mold-agent: libvirt qemu hook';
const KEPT = `${HOOK_PATH}.before-mold`;

export const QEMU_HOOK = `#!/bin/bash
${MARKER}
# Runs the custom scripts of ${CUSTOM_DIR}/ named <operation>_* and all_* for libvirt's qemu
# operations, each with this hook's four arguments and stdin; their output goes to ${HOOK_LOG}.
# A script still running after timeoutSeconds is terminated: edit the value here to change it.
timeoutSeconds=$((10 * 60))
customDir=${CUSTOM_DIR}
log=${HOOK_LOG}
validQemuActions=" prepare start started stopped release migrate restore reconnect attach "

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
# Nothing reaches libvirt on stdout: for migrate/restore begin it would become the guest's XML.
mkdir -p "\${log%/*}" 2>/dev/null
exec >>"$log" 2>&1
note() { printf '%s qemu-hook %s %s\\n' "$(date +%H:%M:%S,%3N)" "$1" "$2"; }

[ $# -eq 4 ] || exit 0
action=$2
case "$validQemuActions" in
  *" $action "*) ;;
  *) note ERROR "The given action: $action, is not a valid libvirt qemu operation."; exit 0 ;;
esac
[ -d "$customDir" ] || exit 0

input=$(mktemp) || exit 0
trap 'rm -f "$input"' EXIT
cat >"$input"

# <name after the first _> TAB <file name>, sorted by the first field (bytewise, stable).
for path in "$customDir"/"$action"_* "$customDir"/all_*; do
  [ -e "$path" ] || [ -L "$path" ] || continue
  name=\${path##*/}
  case "$name" in *$'\\t'*|*$'\\n'*) continue ;; esac
  printf '%s\\t%s\\n' "\${name#*_}" "$name"
done | sort -s -t $'\\t' -k1,1 | cut -f2- | while IFS= read -r name; do
  path=$customDir/$name
  note INFO "Executing custom script: $name, parameters: $*"
  if [ ! -f "$path" ] || [ ! -x "$path" ]; then
    note WARNING "Custom script: $name is not executable; skipping execution."
    continue
  fi
  timeout -k 10 "$timeoutSeconds" "$path" "$@" <"$input"
  rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    note ERROR "Custom script: $name terminated after timeout of $timeoutSeconds second[s]."
  elif [ $rc -ne 0 ]; then
    note ERROR "Custom script: $name finished with error: return code $rc"
  else
    note INFO "Custom script: $name finished successfully"
  fi
done
exit 0
`;

/**
 * The install script: the custom directory, the hook (replaced only when it differs; a foreign one is
 * kept as qemu.before-mold), and a reload of libvirtd when the hook changed. Prints `@@hook same`,
 * `@@hook installed` or `@@fail <why>`.
 */
export function installHookScript(hook = QEMU_HOOK): string {
  const b64 = Buffer.from(hook).toString('base64');
  return [
    'set -u',
    'export LC_ALL=C',
    `h=${shq(HOOK_PATH)}`,
    `fail() { printf '@@fail %s\\n' "$1"; exit 3; }`,
    `mkdir -p ${shq(CUSTOM_DIR)} ${shq(HOOK_LOG.replace(/\/[^/]*$/, ''))} || fail "cannot create ${CUSTOM_DIR}"`,
    `new=$(mktemp "$h.XXXXXX") || fail "cannot write in \${h%/*}"`,
    `printf '%s' ${shq(b64)} | base64 -d >"$new" && chmod 0755 "$new" || { rm -f "$new"; fail "cannot write $h"; }`,
    'if [ -f "$h" ] && cmp -s "$new" "$h"; then rm -f "$new"; echo "@@hook same"; exit 0; fi',
    `if [ -e "$h" ] && ! grep -qF ${shq(MARKER)} "$h" && [ ! -e ${shq(KEPT)} ]; then cp -p "$h" ${shq(KEPT)} || { rm -f "$new"; fail "cannot keep the existing $h"; }; fi`,
    'mv -f "$new" "$h" || { rm -f "$new"; fail "cannot replace $h"; }',
    // libvirtd sees the hook at its next start or reload.
    'reloaded=""',
    'for d in libvirtd virtqemud; do',
    '  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$d" 2>/dev/null; then',
    '    systemctl reload "$d" && reloaded=$d && break',
    '  fi',
    '  pid=$(cat "/run/$d.pid" 2>/dev/null) || continue',
    // A stale pid file must not signal whatever process took the number since.
    '  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$d" ] || continue',
    '  kill -HUP "$pid" && reloaded=$d && break',
    'done',
    '[ -n "$reloaded" ] || fail "the hook is installed, but neither libvirtd nor virtqemud could be told to reload (no active systemd unit, no /run/libvirtd.pid): restart libvirtd so that it runs the hook"',
    'echo "@@hook installed $reloaded"',
  ].join('\n') + '\n';
}

/** Installs (or refreshes) the qemu hook on the host; true when it changed and libvirtd was reloaded. */
export async function installHooks(conn: SshConnection): Promise<boolean> {
  const r = await conn.exec(installHookScript(), { timeoutMs: 30_000 });
  const failed = /^@@fail (.*)$/m.exec(r.stdout)?.[1];
  if (failed || r.code !== 0 || !/^@@hook (same|installed)/m.test(r.stdout)) {
    throw new CommandFailure(
      'HookInstallFailed',
      `Installing the libvirt qemu hook ${HOOK_PATH} on ${who(conn.target)} failed: ${failed ?? ((r.stderr || r.stdout).trim().slice(0, 500) || `exit ${r.code ?? r.signal}`)}`,
    );
  }
  return /^@@hook installed/m.test(r.stdout);
}
