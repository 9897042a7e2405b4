#!/usr/bin/env bash
# A cluster of N "machines" on this one: network namespaces joined by veth pairs to a bridge on a private subnet,
# each with its own hostname (UTS namespace) and its own /dev/shm (a private tmpfs in a mount namespace).
# mpirun reaches them through an rsh agent that enters a host's namespaces instead of using ssh.
#
#   eng/netns-cluster.sh up N [--hostname NAME] [--shm-size SIZE]
#   eng/netns-cluster.sh down
#   eng/netns-cluster.sh exec HOST COMMAND...     run a command on host HOST (1..N)
#   eng/netns-cluster.sh link HOST up|down        take a host's link down or up
#   eng/netns-cluster.sh rate HOST RATE|off       limit a host's link (both directions, tc htb): "2mbit"
#   eng/netns-cluster.sh loss HOST PERCENT|off    drop that share of a host's packets (both directions, nftables): "5%"
#   eng/netns-cluster.sh delay HOST MS|off        hold every packet of a host's link MS milliseconds (both directions,
#                                                 NFQUEUE and eng/nfqueue-delay.py): a distant host, without sch_netem
#   eng/netns-cluster.sh netem HOST ARGS...|off   tc netem on a host's link (both directions): "delay 20ms";
#                                                 needs the kernel's sch_netem, which some VMs lack (rate, loss and delay do not)
#
# `up` prints the state folder, which holds:
#   hostfile   one line per host ("10.77.0.1 slots=1"; edit slots or write your own)
#   rsh-agent  for `mpirun --mca plm_rsh_agent <folder>/rsh-agent`
#   mca        the MPI options that keep OpenMPI on the bridge: `mpirun $(cat <folder>/mca) ...`
# Like ssh, the agent starts commands with a clean environment (PATH and HOME only): pass what the ranks need with
# mpirun -x NAME. Hosts are 10.77.0.1..N; this machine is 10.77.0.254 on the bridge (mpirun runs here).
# --hostname gives every host the same name (containers on one box that see different /dev/shm); default zc-hostI.
# `down` removes everything `up` made and is safe to run at any time; `up` runs it first, and on failure.
# Needs root and iproute2 (installed with apt-get when missing, as build.sh does). The folder is
# $ZERO_CLUSTER_DIR, default /run/zero-netns-cluster.
set -euo pipefail

state="${ZERO_CLUSTER_DIR:-/run/zero-netns-cluster}"
prefix=zc
bridge="${prefix}-br0"
subnet=10.77.0
mask=24

fail() { echo "netns-cluster: $*" >&2; exit 1; }

require_root_and_tools() {
  [ "$(id -u)" = 0 ] || fail "must run as root (network namespaces and tmpfs mounts need it)"
  if ! command -v ip >/dev/null 2>&1 || ! command -v tc >/dev/null 2>&1 || ! command -v nsenter >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 util-linux >/dev/null
    fi
  fi
  command -v ip >/dev/null 2>&1 || fail "iproute2 (ip, tc) is required: apt-get install -y iproute2"
  command -v nsenter >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1 || fail "util-linux (nsenter, unshare) is required"
  ip netns list >/dev/null 2>&1 || fail "this kernel or container does not allow network namespaces (ip netns list failed)"
}

hosts() { [ -f "$state/hosts" ] && cat "$state/hosts" || true; }

down() {
  # Processes of a host (its namespace holder and anything started in it), then namespaces, links, bridge, folder.
  local i
  for i in $(hosts); do
    if [ -f "$state/host$i.pid" ]; then
      kill "$(cat "$state/host$i.pid")" 2>/dev/null || true
    fi
    if ip netns pids "${prefix}-host$i" >/dev/null 2>&1; then
      for pid in $(ip netns pids "${prefix}-host$i" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    fi
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${prefix}-host[0-9]*$" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^${prefix}-v[0-9]*$" || true); do
    ip link del "$link" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  rm -rf "$state"
}

up() {
  local n="$1"; shift
  local same_name="" shm_size=256m
  while [ $# -gt 0 ]; do
    case "$1" in
      --hostname) same_name="$2"; shift 2 ;;
      --shm-size) shm_size="$2"; shift 2 ;;
      *) fail "unknown option $1" ;;
    esac
  done
  [[ "$n" =~ ^[1-9][0-9]{0,2}$ ]] && [ "$n" -le 200 ] || fail "N must be a number of hosts from 1 to 200, not '$n'"
  down
  trap 'status=$?; [ $status = 0 ] || { echo "netns-cluster: up failed; cleaning up" >&2; down; }' EXIT
  mkdir -p "$state"
  ip link add "$bridge" type bridge
  ip addr add "$subnet.254/$mask" dev "$bridge"
  ip link set "$bridge" up
  : > "$state/hostfile"
  local i
  for i in $(seq 1 "$n"); do
    local ns="${prefix}-host$i" name="${same_name:-${prefix}-host$i}"
    ip netns add "$ns"
    ip link add "${prefix}-v$i" type veth peer name eth0 netns "$ns"
    ip link set "${prefix}-v$i" master "$bridge" up
    ip -n "$ns" addr add "$subnet.$i/$mask" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    # The host: a process that holds a new mount and UTS namespace inside the network namespace, with its own
    # hostname and a private /dev/shm. Commands enter its namespaces with nsenter.
    ip netns exec "$ns" unshare --mount --uts --propagation private -- sh -c \
      "hostname '$name' && mount -t tmpfs -o size=$shm_size,mode=1777 tmpfs /dev/shm && echo ready > '$state/host$i.ready' && exec sleep infinity" \
      </dev/null >/dev/null 2>&1 &
    echo $! > "$state/host$i.pid"
    echo "$i" >> "$state/hosts"
    echo "$subnet.$i slots=1" >> "$state/hostfile"
    mkdir -p "$state/host$i.tmp"
  done
  for i in $(seq 1 "$n"); do
    for _ in $(seq 1 100); do [ -f "$state/host$i.ready" ] && break; sleep 0.05; done
    [ -f "$state/host$i.ready" ] || fail "host $i did not start"
  done
  cat > "$state/rsh-agent" <<EOF
#!/bin/sh
# mpirun's rsh agent for this cluster: "rsh-agent [ssh options] HOST COMMAND" runs COMMAND in HOST's namespaces,
# with a clean environment as ssh would give. Like ssh -o ServerAliveInterval=1 -o ServerAliveCountMax=2, it gives up
# (exit 255) once the host's link has been down for 2 s, which tells mpirun that the host is lost. TMPDIR is the
# host's own, as a machine's /tmp is: OpenMPI's session folder is named after the hostname, which hosts may share.
while [ \$# -gt 0 ] && [ "\${1#-}" != "\$1" ]; do shift; done
host="\$1"; shift
i="\${host##*.}"
case "\$host" in ${prefix}-host*) i="\${host#${prefix}-host}" ;; esac
pid="\$(cat "$state/host\$i.pid" 2>/dev/null)" || { echo "rsh-agent: no host \$host in $state" >&2; exit 255; }
# The command writes into fifos that this script relays: when the link is lost, the relays end and mpirun sees this
# "connection" close, although the processes on the host, cut off, live on (as they would behind a dead ssh link).
fifos="\$(mktemp -d)"
mkfifo "\$fifos/out" "\$fifos/err"
cat "\$fifos/out" & out=\$!
cat "\$fifos/err" >&2 & err=\$!
env -i PATH="\$PATH" HOME="\${HOME:-/root}" TMPDIR="$state/host\$i.tmp" nsenter --target "\$pid" --net --mount --uts -- /bin/sh -c "\$*" >"\$fifos/out" 2>"\$fifos/err" &
child=\$!
trap 'rm -rf "\$fifos"' EXIT
missed=0
while kill -0 "\$child" 2>/dev/null; do
  if [ "\$(cat /sys/class/net/${prefix}-v\$i/operstate 2>/dev/null)" = up ]; then missed=0; else missed=\$((missed + 1)); fi
  if [ "\$missed" -ge 2 ]; then
    echo "rsh-agent: connection to \$host lost: its link has been down for \$missed s" >&2
    kill -9 "\$child" "\$out" "\$err" 2>/dev/null
    exit 255
  fi
  sleep 1
done
wait "\$child"
status=\$?
wait "\$out" "\$err"
exit \$status
EOF
  chmod +x "$state/rsh-agent"
  echo "--mca plm_rsh_agent $state/rsh-agent --mca btl tcp,self,vader --mca btl_tcp_if_include $subnet.0/$mask --mca oob_tcp_if_include $subnet.0/$mask" > "$state/mca"
  trap - EXIT
  echo "$state"
}

host_pid() {
  [ -f "$state/host$1.pid" ] || fail "no host $1 (is the cluster up?)"
  cat "$state/host$1.pid"
}

netem() {
  local i="$1"; shift
  local ns="${prefix}-host$i"
  if [ "${1:-}" = off ]; then
    tc qdisc del dev "${prefix}-v$i" root 2>/dev/null || true
    ip netns exec "$ns" tc qdisc del dev eth0 root 2>/dev/null || true
  else
    tc qdisc replace dev "${prefix}-v$i" root netem "$@" 2>/dev/null \
      || fail "tc netem failed: this kernel may lack sch_netem (tc qdisc add ... netem: 'qdisc kind is unknown'); 'delay', 'rate' and 'loss' need no netem"
    ip netns exec "$ns" tc qdisc replace dev eth0 root netem "$@"
  fi
}

# A rate limit (htb) on both directions of a host's link: a slow network, without sch_netem.
rate() {
  local i="$1" value="$2"
  local ns="${prefix}-host$i"
  tc qdisc del dev "${prefix}-v$i" root 2>/dev/null || true
  ip netns exec "$ns" tc qdisc del dev eth0 root 2>/dev/null || true
  [ "$value" = off ] && return
  tc qdisc add dev "${prefix}-v$i" root handle 1: htb default 1
  tc class add dev "${prefix}-v$i" parent 1: classid 1:1 htb rate "$value"
  ip netns exec "$ns" tc qdisc add dev eth0 root handle 1: htb default 1
  ip netns exec "$ns" tc class add dev eth0 parent 1: classid 1:1 htb rate "$value"
}

# A fixed delay on both directions of a host's link, without sch_netem: iptables hands the link's packets to an
# NFQUEUE that eng/nfqueue-delay.py, running in the host's network namespace, holds for that long. The rules bypass the
# queue when nothing reads it, so stopping the delayer never blocks the link.
delay() {
  local i="$1" ms="$2"
  local ns="${prefix}-host$i"
  local tool iptables
  for tool in iptables python3; do
    if ! command -v "$tool" >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables python3 >/dev/null
    fi
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is required for delay: apt-get install -y iptables python3"
  done
  [ "$ms" = off ] || { [[ "$ms" =~ ^[0-9]+$ ]] && [ "$ms" -le 10000 ]; } || fail "delay takes whole milliseconds from 0 to 10000, or off, not '$2'"
  iptables=iptables
  ip netns exec "$ns" iptables -L -n >/dev/null 2>&1 || iptables=iptables-legacy
  for chain in "OUTPUT -o eth0" "INPUT -i eth0"; do
    # shellcheck disable=SC2086
    while ip netns exec "$ns" "$iptables" -D $chain -j NFQUEUE --queue-num 0 --queue-bypass 2>/dev/null; do :; done
  done
  if [ -f "$state/host$i.delay.pid" ]; then
    # The old delayer must be gone before a new one binds the queue (the kernel allows one reader).
    local old
    old="$(cat "$state/host$i.delay.pid")"
    kill "$old" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
    rm -f "$state/host$i.delay.pid" "$state/host$i.delay.ready"
  fi
  [ "$ms" = off ] && return
  ip netns exec "$ns" python3 "$(cd "$(dirname "$0")" && pwd)/nfqueue-delay.py" 0 "$ms" "$state/host$i.delay.ready" </dev/null >"$state/host$i.delay.log" 2>&1 &
  echo $! > "$state/host$i.delay.pid"
  for _ in $(seq 1 100); do [ -f "$state/host$i.delay.ready" ] && break; kill -0 "$!" 2>/dev/null || break; sleep 0.05; done
  [ -f "$state/host$i.delay.ready" ] || fail "the delayer of host $i did not start: $(cat "$state/host$i.delay.log")"
  for chain in "OUTPUT -o eth0" "INPUT -i eth0"; do
    # shellcheck disable=SC2086
    ip netns exec "$ns" "$iptables" -A $chain -j NFQUEUE --queue-num 0 --queue-bypass \
      || fail "iptables could not queue host $i's packets (does the kernel have the NFQUEUE target?)"
  done
}

# Random packet loss (nftables) on both directions of a host's link, without sch_netem.
loss() {
  local i="$1" percent="${2%\%}"
  local ns="${prefix}-host$i"
  if ! command -v nft >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null
  fi
  command -v nft >/dev/null 2>&1 || fail "nftables (nft) is required for loss: apt-get install -y nftables"
  ip netns exec "$ns" nft delete table inet zcfault 2>/dev/null || true
  [ "$percent" = off ] && return
  [[ "$percent" =~ ^[0-9]+$ ]] && [ "$percent" -le 100 ] || fail "loss takes a whole percentage from 0 to 100, or off, not '$2'"
  ip netns exec "$ns" nft -f - <<EOF
table inet zcfault {
  chain in { type filter hook input priority 0; numgen random mod 100 < $percent drop; }
  chain out { type filter hook output priority 0; numgen random mod 100 < $percent drop; }
}
EOF
}

case "${1:-}" in
  up) [ $# -ge 2 ] || fail "usage: $0 up N [--hostname NAME] [--shm-size SIZE]"; require_root_and_tools; shift; up "$@" ;;
  down) require_root_and_tools; down ;;
  exec) [ $# -ge 3 ] || fail "usage: $0 exec HOST COMMAND..."; pid="$(host_pid "$2")"; shift 2; exec nsenter --target "$pid" --net --mount --uts -- "$@" ;;
  link) [ $# = 3 ] || fail "usage: $0 link HOST up|down"; host_pid "$2" >/dev/null; ip link set "${prefix}-v$2" "$3" ;;
  rate) [ $# = 3 ] || fail "usage: $0 rate HOST RATE|off"; host_pid "$2" >/dev/null; rate "$2" "$3" ;;
  loss) [ $# = 3 ] || fail "usage: $0 loss HOST PERCENT|off"; host_pid "$2" >/dev/null; loss "$2" "$3" ;;
  delay) [ $# = 3 ] || fail "usage: $0 delay HOST MS|off"; host_pid "$2" >/dev/null; delay "$2" "$3" ;;
  netem) [ $# -ge 3 ] || fail "usage: $0 netem HOST ARGS...|off"; host_pid "$2" >/dev/null; h="$2"; shift 2; netem "$h" "$@" ;;
  *) fail "usage: $0 up N [--hostname NAME] [--shm-size SIZE] | down | exec HOST CMD... | link HOST up|down | rate HOST RATE|off | loss HOST PERCENT|off | delay HOST MS|off | netem HOST ARGS...|off" ;;
esac
