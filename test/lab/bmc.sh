#!/bin/bash
# A lab host's chassis, as its BMC (OpenIPMI's ipmi_sim, `chassis_control`) drives it:
#   bmc.sh <host dir> <netns> <veth> get <parm>...      -> prints <parm>:<value> lines
#   bmc.sh <host dir> <netns> <veth> set <parm> <value>...
# (ipmi_sim appends get|set and what follows to the configured command.)
# power 0 cuts the host's link at once and kills every process in its namespace (sshd, libvirtd,
# qemu) just after: the machine lost power. power 1 brings the link up and boots it again through the
# lab's own start script (<host dir>/boot.sh). reset is both; shutdown is a soft power-off (SIGTERM,
# then SIGKILL after 3 s). Status is on while the host's processes live or its boot runs.
# ipmi_sim waits for this script and runs an action again if it takes more than about a second, so
# everything slow happens in a detached child, which closes every inherited descriptor (the lock
# below and ipmi_sim's own sockets) before it starts anything.
hd=$1 ns=$2 veth=$3
shift 3
op=$1
shift

echo "$(date +%T.%N) $op $*" >>"$hd/bmc/actions.log" 2>/dev/null
exec 9>"$hd/bmc.lock"
flock -w 5 9

# Live (not zombie) processes in the host's namespace: the machine runs.
live() {
  local p state
  for p in $(ip netns pids "$ns" 2>/dev/null); do
    state=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -c1)
    [ -n "$state" ] && [ "$state" != Z ] && return 0
  done
  return 1
}

# The host's power work (killing it, booting it) runs detached under host.lock, one piece at a time:
# a boot waits for the kill before it, a kill for the boot before it.
working() {
  ! flock -n "$hd/host.lock" true 2>/dev/null
}

powered() {
  [ "$(cat "$hd/power" 2>/dev/null)" = on ] && { live || working; }
}

# Runs a bash snippet detached, holding host.lock, with no descriptor but stdio inherited (neither the
# lock below nor ipmi_sim's sockets): the host's daemons must hold neither.
detached() {
  setsid bash -c 'for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-"; done
    exec 8>"$HD/host.lock"; flock 8; eval "$1"' bmc-child "$1" </dev/null >>"$hd/daemons.log" 2>&1 9>&- &
}
export HD="$hd" NS="$ns" VETH="$veth"

# Each piece of work first checks that the power is still wanted the way it was asked (an off and an
# on in quick succession may take the lock in either order), and a boot first kills what an off left.
KILL_ALL='for round in $(seq 1 100); do pids=$(ip netns pids "$NS" 2>/dev/null); [ -z "$pids" ] && break; kill -9 $pids 2>/dev/null; sleep 0.05; done'
WANTED='[ "$(cat "$HD/power")" = '
KILL="$WANTED"'off ] || exit 0; '"$KILL_ALL"
BOOT="$WANTED"'on ] || exit 0; '"$KILL_ALL"'; ip link set "$VETH" up; ip netns exec "$NS" unshare --mount --uts --propagation private sh "$HD/boot.sh" 8>&-'

# Power off: the host is cut off at once (link down, status off); its processes die just after.
off() {
  echo off >"$hd/power"
  ip link set "$veth" down 2>/dev/null
  detached "$KILL"
}

boot() {
  echo on >"$hd/power"
  detached "$BOOT"
}

case "$op" in
get)
  for parm in "$@"; do
    case "$parm" in
    power) if powered; then echo "power:1"; else echo "power:0"; fi ;;
    *) echo "$parm:0" ;;
    esac
  done
  ;;
set)
  while [ $# -ge 2 ]; do
    parm=$1 value=$2
    shift 2
    case "$parm:$value" in
    power:0) off ;;
    power:1) powered || boot ;;
    reset:1)
      ip link set "$veth" down 2>/dev/null
      boot
      ;;
    shutdown:1)
      echo off >"$hd/power"
      detached "$WANTED"'off ] || exit 0; pids=$(ip netns pids "$NS" 2>/dev/null); [ -z "$pids" ] || kill -TERM $pids 2>/dev/null; sleep 3; '"$KILL"'; ip link set "$VETH" down'
      ;;
    esac
  done
  ;;
esac
exit 0
