#!/bin/bash
# Throughput through nemonetd's tunnel against the same topology routed directly, in
# network namespaces MNN - MR - HA - CN (the namespace test's topology), one run: routed
# directly, then through each data plane (DATAPLANES, default "kernel tun"), TCP and UDP
# (1400-octet datagrams, unlimited rate: what arrives), IPv6 and IPv4 inside; a markdown
# table with the ratios to the direct path. For profiling by hand: `NND_HOLD=1` keeps the
# last data plane up until Enter is pressed. At fleet size: `FLEET="9 9999"` measures each
# data plane once per number, with that many other bindings on the home agent (each its own
# CoA, HoA and /64, no traffic) beside the measured one. `OUTER=ipv4|udp`: the measured
# binding's outer header is IPv4 (IP in IP, or UDP as behind a NAT) instead of IPv6.
# `STREAMS=N`: N parallel iperf3 streams (flows) instead of one.
# `NIC=1`: the MR-HA link behaves as two network cards (GRO merging tunnel packets).
#
#   cargo build --release -p nemonetd -p mipsock
#   sudo nemonetd/bench/tunnel.sh [seconds] [extra nemonetd flags, e.g. --no-offload]
set -euo pipefail
SECS=${1:-5}
shift || true
BIN=${BIN:-$(dirname "$0")/../../target/release}
P=nnd-bench-$$
TMP=$(mktemp -d)
cleanup() {
    for n in mnn mr ha cn; do
        for pid in $(ip netns pids $P-$n 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del $P-$n 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
x() { local n=$1; shift; ip netns exec $P-$n "$@"; }
for n in mnn mr ha cn; do ip netns add $P-$n; x $n ip link set lo up; done
link() { ip link add nb$$x type veth peer name nb$$y
         ip link set nb$$x netns $P-$1 name $2; ip link set nb$$y netns $P-$3 name $4
         x $1 ip link set $2 up; x $3 ip link set $4 up; }
link mnn eth0 mr mnn0; link mr eth0 ha eth0; link ha cn0 cn eth0
addr() { x $1 ip addr add $3 dev $2 nodad; x $1 ip addr add $4 dev $2; }
addr mnn eth0 2001:db8:100::2/64 198.51.100.2/24
addr mr mnn0 2001:db8:100::1/64 198.51.100.1/24
addr mr eth0 2001:db8:a::2/64 192.0.2.2/24
addr ha eth0 2001:db8:a::1/64 192.0.2.1/24
addr ha cn0 2001:db8:c::1/64 203.0.113.1/24
addr cn eth0 2001:db8:c::2/64 203.0.113.2/24
# NIC=1: the MR-HA link behaves as two network cards and a wire rather than a veth pair:
# packets cross it segmented (no TSO), and each receiving end coalesces them (GRO) in a
# NAPI thread of its own, as a card's interrupt batches them.
if [ -n "${NIC:-}" ]; then
    for n in mr ha; do
        x $n ethtool -K eth0 tso off gro on
        x $n sh -c 'echo 1 > /sys/class/net/eth0/threaded'
    done
fi
for n in mr ha; do x $n sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1; done
x mnn ip -6 route add default via 2001:db8:100::1; x mnn ip route add default via 198.51.100.1
x cn ip -6 route add default via 2001:db8:c::1; x cn ip route add default via 203.0.113.1
x cn iperf3 -s -D --logfile "$TMP/iperf3.log"

# Gbit/s received: TCP, or UDP (what the receiver got of an unlimited send).
tcp() { x mnn iperf3 -c "$1" -t "$SECS" -P "${STREAMS:-1}" -J | python3 -c \
    'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'; }
udp() { x mnn iperf3 -c "$1" -u -b 0 -l 1400 -t "$SECS" -P "${STREAMS:-1}" -J | python3 -c \
    'import json,sys; s=json.load(sys.stdin)["end"]["sum"]; print("%.2f" % (s["bits_per_second"]*(1-s["lost_percent"]/100)/1e9))'; }
measure() { echo "$(tcp 2001:db8:c::2) $(tcp 203.0.113.2) $(udp 2001:db8:c::2) $(udp 203.0.113.2)"; }

x mr ip -6 route add default via 2001:db8:a::1; x mr ip route add default via 192.0.2.1
x ha ip -6 route add 2001:db8:100::/64 via 2001:db8:a::2; x ha ip route add 198.51.100.0/24 via 192.0.2.2
read -r D6 D4 U6 U4 <<<"$(measure)"
x mr ip -6 route del default via 2001:db8:a::1; x mr ip route del default via 192.0.2.1
x ha ip -6 route del 2001:db8:100::/64 via 2001:db8:a::2; x ha ip route del 198.51.100.0/24 via 192.0.2.2

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo "| path | TCP IPv6 inside | TCP IPv4 inside | UDP IPv6 inside | UDP IPv4 inside |"
echo "| --- | --- | --- | --- | --- |"
echo "| routed directly | $D6 Gbit/s | $D4 | $U6 | $U4 |"
B="--hoa 2001:db8:1::100 --ha 2001:db8:a::1 --mnp 2001:db8:100::/64 --mnp 198.51.100.0/24 --flags A|H|R --lifetime 600"
# The outer header (OUTER): ipv6 (an IPv6 care-of address, the default), ipv4 (RFC 5555's
# IPv4 care-of address, IP in IPv4) or udp (the same in UDP, as behind a NAT). Bindings
# with an IPv4 outer header go through TUN whatever the data plane.
case ${OUTER:-ipv6} in
    ipv6) B="$B --coa 2001:db8:a::2" ;;
    ipv4) B="$B --coa 192.0.2.2 --ha-v4 192.0.2.1 --encap in-ipv4" ;;
    udp) B="$B --coa 192.0.2.2:4191 --ha-v4 192.0.2.1 --encap udp-ipv4" ;;
    *) echo "OUTER: ipv6, ipv4 or udp" >&2; exit 2 ;;
esac
# Other bindings for the home agent: N BC_ADDs, away from the measured one's addresses.
others() { python3 "$(dirname "$0")/bc-add.py" "$1" 2001:db8:2 0x1000; }
for DP in ${DATAPLANES:-kernel tun}; do
for F in ${FLEET:-0}; do
    mkdir -p "$TMP/bus-mr-$DP" "$TMP/bus-ha-$DP"
    ip netns exec $P-mr "$BIN/nemonetd" -f -m -b "$TMP/bus-mr-$DP" --dataplane "$DP" "$@" eth0 2>"$TMP/mr-$DP.log" &
    MRPID=$!
    ip netns exec $P-ha "$BIN/nemonetd" -f -h -b "$TMP/bus-ha-$DP" --dataplane "$DP" "$@" eth0 2>"$TMP/ha-$DP.log" &
    HAPID=$!
    until grep -q ' ready' "$TMP/mr-$DP.log" && grep -q ' ready' "$TMP/ha-$DP.log"; do sleep 0.1; done
    "$BIN/mipsock" inject bul-add -b "$TMP/bus-mr-$DP" $B >/dev/null
    "$BIN/mipsock" inject bc-add -b "$TMP/bus-ha-$DP" $B >/dev/null
    LABEL="$DP data plane"
    if [ "$F" -gt 0 ]; then
        others "$F" | "$BIN/mipsock" inject -b "$TMP/bus-ha-$DP" --json >/dev/null
        until [ "$(x ha ip -6 route show proto 110 | grep -c '::/64 dev')" -ge $((F + 1)) ]; do sleep 0.2; done
        LABEL="$DP data plane, $((F + 1)) bindings at the HA"
    fi
    until x mnn ping -c1 -W1 2001:db8:c::2 >/dev/null 2>&1; do sleep 0.2; done
    read -r T6 T4 V6 V4 <<<"$(measure)"
    echo "| $LABEL | $T6 ($(ratio "$T6" "$D6")) | $T4 ($(ratio "$T4" "$D4")) | $V6 ($(ratio "$V6" "$U6")) | $V4 ($(ratio "$V4" "$U4")) |"
    if [ -n "${NND_HOLD:-}" ]; then
        echo "namespaces $P-{mnn,mr,ha,cn}; logs in $TMP; Enter to go on"; read -r _
    fi
    kill "$MRPID" "$HAPID"; wait "$MRPID" "$HAPID" 2>/dev/null || true
done
done
