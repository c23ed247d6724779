#!/bin/bash
# A lab host's chassis, as its BMC (OpenIPMI's ipmi_sim, `chassis_control`) drives it:
#   bmc.sh <host dir> <netns> <veth> get <parm>...      -> prints <parm>:<value> lines
#   bmc.sh <host dir> <netns> <veth> set <parm> <value>...
# (ipmi_sim appends get|set and what follows to the configured command.)
# power 0 cuts the host's link and kills every process in its namespace (sshd, libvirtd, qemu): the
# machine lost power. power 1 brings the link up and boots it again through the lab's own start script
# (<host dir>/boot.sh). reset is both; shutdown is a soft power-off (SIGTERM, then SIGKILL).
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

powered() {
  [ "$(cat "$hd/power" 2>/dev/null)" != off ] && live
}

kill_all() {
  local signal=$1 round pids
  for round in $(seq 1 40); do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -z "$pids" ] && return 0
    kill "-$signal" $pids 2>/dev/null
    [ "$signal" = TERM ] && return 0
    sleep 0.05
  done
}

off() {
  echo off >"$hd/power"
  ip link set "$veth" down 2>/dev/null
  kill_all KILL
}

# Detached, with no descriptor but stdio: the lock must not stay held by the host's daemons.
detached() {
  setsid bash -c 'for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-"; done; exec "$@"' bmc-child "$@" </dev/null >>"$hd/daemons.log" 2>&1 9>&- &
}

boot() {
  echo on >"$hd/power"
  ip link set "$veth" up 2>/dev/null
  detached ip netns exec "$ns" unshare --mount --uts --propagation private sh "$hd/boot.sh"
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
      off
      boot
      ;;
    shutdown:1)
      echo off >"$hd/power"
      kill_all TERM
      detached bash -c "sleep 3; ip link set '$veth' down; pids=\$(ip netns pids '$ns'); [ -z \"\$pids\" ] || kill -9 \$pids"
      ;;
    esac
  done
  ;;
esac
exit 0
