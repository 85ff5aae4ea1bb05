#!/bin/bash
# How long nemonetd -h takes to carry N bindings (each its own IPv6 CoA, HoA and /64 MNP)
# that arrive as N BC_ADD messages in one burst on the bus, with each data plane
# (DATAPLANES, default "kernel tun"): from the first message to the last MNP route in the
# kernel, and the bindings per second. One namespace with its home link; root.
#
#   cargo build --release -p nemonetd -p mipsock
#   sudo nemonetd/bench/fleet.sh [N]
set -euo pipefail
N=${1:-1000}
BIN=${BIN:-$(dirname "$0")/../../target/release}
P=nnd-fleet-$$
TMP=$(mktemp -d)
cleanup() {
    for pid in $(ip netns pids $P 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del $P 2>/dev/null || true
    ip netns del $P-peer 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add $P; ip netns add $P-peer
ip link add nf$$a type veth peer name nf$$b
ip link set nf$$a netns $P name eth0; ip link set nf$$b netns $P-peer name eth0
ip -n $P link set lo up; ip -n $P link set eth0 up; ip -n $P-peer link set eth0 up
ip -n $P addr add 2001:db8:a::1/64 dev eth0 nodad
ip netns exec $P sysctl -qw net.ipv6.conf.all.forwarding=1
python3 "$(dirname "$0")/bc-add.py" "$N" >"$TMP/bc.json"
echo "| data plane | $N bindings in | bindings/s |"
echo "| --- | --- | --- |"
for DP in ${DATAPLANES:-kernel tun}; do
    mkdir -p "$TMP/bus-$DP"
    ip netns exec $P "$BIN/nemonetd" -f -h -b "$TMP/bus-$DP" --dataplane "$DP" eth0 2>"$TMP/ha-$DP.log" &
    PID=$!
    until grep -q ' ready' "$TMP/ha-$DP.log"; do sleep 0.1; done
    T0=$(date +%s.%N)
    "$BIN/mipsock" inject -b "$TMP/bus-$DP" --json <"$TMP/bc.json" >/dev/null
    until [ "$(ip -n $P -6 route show proto 110 | grep -c '::/64 dev')" -ge "$N" ]; do sleep 0.05; done
    T1=$(date +%s.%N)
    python3 -c "t=$T1-$T0; print('| %s | %.2f s | %.0f |' % ('$DP', t, $N/t))"
    kill "$PID"; wait "$PID" 2>/dev/null || true
done
