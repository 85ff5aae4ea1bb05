//! The user-space data plane: one device (a TUN, [`backend::Backend`]) serving every
//! binding, raw sockets for the tunnel protocols (this kernel has no ip6_tunnel/sit/ipip,
//! docs/notes.md §2). Three parts:
//!
//! * [`peers`]: which binding a packet belongs to — a pure table, published by the daemon
//!   as immutable snapshots that the packet threads read without a lock;
//! * [`backend`]: the device side (read packets to tunnel, write decapsulated ones,
//!   offloads, name), implemented by [`crate::tun::Tun`];
//! * the packet loops (private `loops` module), one thread each, generic over the backend:
//!
//!   * **Out** (device → tunnel): one thread reads a packet into a buffer with
//!     [`HEADROOM`] free octets in front, finds the binding ([`Snapshot::tx_lookup`]: the
//!     HA by inner destination, the MR takes its HA), and [`proto::encap::encapsulate`]
//!     writes the outer header in place; the whole packet leaves through an `IPPROTO_RAW`
//!     socket (IPv6 or IPv4, header included), so one code path serves IPv6, IPv4 and
//!     UDP/IPv4 outer headers.
//!   * **In** (tunnel → device): one thread per socket — raw IPv6 41 and 4 (bound: without
//!     a socket the kernel answers Parameter Problem, docs/notes.md §2), raw IPv4 41 and 4,
//!     and UDP (RFC 5555 §4.1) — checks the outer source and the inner source
//!     ([`Snapshot::rx_check`]), applies RFC 6040 ECN decapsulation, and writes the inner
//!     packet to the device, TCP segments of one flow coalesced into one write when the
//!     device takes super-packets.
//!
//!   Each loop takes the newest peer snapshot once per batch (a `recvmmsg` batch on every
//!   socket) and reads the clock at most once per batch, only
//!   for a packet from a binding's previous care-of address ([`BatchClock`]).
//!
//! Hop limit (RFC 2473 §3.1): a packet read from the TUN was already *forwarded* by the
//! kernel, which decremented its Hop Limit / TTL on the way to the TUN route; decrementing
//! again would cost two hops per tunnel entry, so `decrement_inner` is off. Packets the node
//! originates itself (the MR's own traffic from its HoA) are not forwarded and keep their
//! hop limit, as for any locally originated packet. At the exit the kernel forwards the
//! decapsulated packet from the TUN and decrements it then (RFC 2473 §3.3).
//!
//! Link-scope source or destination never enters or leaves the tunnel (the TUN emits MLDv2
//! reports from `::` when its carrier comes up, docs/notes.md §2).

pub mod backend;
pub mod dup;
pub mod icmp;
mod loops;
pub mod peers;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::socket;
use proto::encap::IpVersion;
use socket2::{Domain, Protocol, Socket, Type};
use tracing::{info, warn};

pub use backend::Backend;
pub use peers::{
    BatchClock, MOVE_GRACE, Peer, PeerError, PeerReader, PeerTable, Remote, RxRefusal, SharedPeers,
    Snapshot,
};

/// Free octets in front of every packet read from the TUN: the largest outer header is
/// 40 (IPv6); 64 keeps the inner packet aligned.
pub const HEADROOM: usize = 64;
/// Largest packet we read (IPv4/IPv6 without jumbograms).
pub const MAX_PACKET: usize = 65535;

/// Packet counters, shared by the data plane threads (relaxed atomics: statistics only).
#[derive(Debug, Default)]
pub struct Counters {
    /// Packets encapsulated and sent.
    pub tx_packets: AtomicU64,
    /// Their octets (outer).
    pub tx_bytes: AtomicU64,
    /// Packets decapsulated and written to the TUN.
    pub rx_packets: AtomicU64,
    /// Their octets (inner).
    pub rx_bytes: AtomicU64,
    /// Link-scope source or destination (either direction).
    pub drop_link_scope: AtomicU64,
    /// From the TUN with no binding to send it to.
    pub drop_no_binding: AtomicU64,
    /// Tunnelled from an outer source that is no live binding's CoA / not our HA.
    pub drop_unknown_outer: AtomicU64,
    /// HA: inner source outside the MR's HoA and MNPs.
    pub drop_spoofed_inner: AtomicU64,
    /// Malformed inner or outer packet.
    pub drop_malformed: AtomicU64,
    /// RFC 6040: CE on the outer header of a Not-ECT inner packet.
    pub drop_ecn: AtomicU64,
    /// Send or TUN write failures.
    pub io_errors: AtomicU64,
    /// DSMIPv6 signalling dropped because the bus relay queue was full (a flood).
    pub drop_relay_full: AtomicU64,
    /// ICMP errors about tunnel packets reported to the original sender (RFC 2473 §8).
    pub icmp_relayed: AtomicU64,
    /// ICMPv6 errors quoting a tunnel packet of no live binding, or not to be reported on.
    pub icmp_not_relayed: AtomicU64,
    /// Reports suppressed by the rate limit.
    pub icmp_limited: AtomicU64,
    /// Path probes sent (one per care-of address among several, every probe interval).
    pub probes_tx: AtomicU64,
    /// Path probes received (consumed, not delivered).
    pub probes_rx: AtomicU64,
    /// Extra copies sent of packets of duplicated flows (one per further live path).
    pub dup_tx: AtomicU64,
    /// Copies of duplicated flows' packets dropped on arrival (another copy came first).
    pub dup_dropped: AtomicU64,
    /// TCP super-packets sent through the UDP tunnel by segmentation offload (each several
    /// tunnel packets in one or two sends).
    pub udp_gso_sends: AtomicU64,
    /// Reads of the UDP tunnel socket that held several tunnel packets (coalesced).
    pub udp_gro_reads: AtomicU64,
    /// Tunnel packets merged by the receiving card (GRO) read whole, with their segment
    /// size, from a packet socket ([`Sockets::merged`]).
    pub merged_reads: AtomicU64,
    /// Unmerged TCP tunnel packets read from that packet socket (a TCP flow's packets are
    /// read by one socket, in their order).
    pub tcp_capture_reads: AtomicU64,
    /// The bindings read again from their owner because bus messages were dropped for us
    /// (not a packet counter; kept here with the daemon's others).
    pub bus_resyncs: AtomicU64,
}

impl Counters {
    fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Logs every counter in one structured line.
    pub fn log(&self, why: &str) {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        info!(
            why,
            tx_packets = g(&self.tx_packets),
            tx_bytes = g(&self.tx_bytes),
            rx_packets = g(&self.rx_packets),
            rx_bytes = g(&self.rx_bytes),
            drop_link_scope = g(&self.drop_link_scope),
            drop_no_binding = g(&self.drop_no_binding),
            drop_unknown_outer = g(&self.drop_unknown_outer),
            drop_spoofed_inner = g(&self.drop_spoofed_inner),
            drop_malformed = g(&self.drop_malformed),
            drop_ecn = g(&self.drop_ecn),
            io_errors = g(&self.io_errors),
            drop_relay_full = g(&self.drop_relay_full),
            icmp_relayed = g(&self.icmp_relayed),
            icmp_not_relayed = g(&self.icmp_not_relayed),
            icmp_limited = g(&self.icmp_limited),
            probes_tx = g(&self.probes_tx),
            probes_rx = g(&self.probes_rx),
            dup_tx = g(&self.dup_tx),
            dup_dropped = g(&self.dup_dropped),
            udp_gso_sends = g(&self.udp_gso_sends),
            udp_gro_reads = g(&self.udp_gro_reads),
            merged_reads = g(&self.merged_reads),
            tcp_capture_reads = g(&self.tcp_capture_reads),
            bus_resyncs = g(&self.bus_resyncs),
            "data plane counters"
        );
    }

    /// A sum that changes whenever any counter but the path probes' does (to log only on
    /// change: the probes tick all the time).
    pub fn fingerprint(&self) -> u64 {
        [
            &self.tx_packets,
            &self.rx_packets,
            &self.drop_link_scope,
            &self.drop_no_binding,
            &self.drop_unknown_outer,
            &self.drop_spoofed_inner,
            &self.drop_malformed,
            &self.drop_ecn,
            &self.io_errors,
            &self.drop_relay_full,
            &self.icmp_relayed,
            &self.icmp_not_relayed,
            &self.icmp_limited,
            &self.dup_tx,
            &self.dup_dropped,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .fold(0u64, u64::wrapping_add)
    }
}

/// Source and destination of an IP packet, if its header is there.
pub fn addresses(packet: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match IpVersion::of(packet).ok()? {
        IpVersion::V6 if packet.len() >= 40 => {
            let s: [u8; 16] = packet[8..24].try_into().ok()?;
            let d: [u8; 16] = packet[24..40].try_into().ok()?;
            Some((Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into()))
        }
        IpVersion::V4 if packet.len() >= 20 => {
            let s: [u8; 4] = packet[12..16].try_into().ok()?;
            let d: [u8; 4] = packet[16..20].try_into().ok()?;
            Some((Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into()))
        }
        _ => None,
    }
}

/// Addresses that must not cross the tunnel: unspecified, loopback, link-local unicast,
/// and multicast of interface/link scope (IPv6 ff01::/16, ff02::/16; IPv4 224.0.0.0/24 and
/// the limited broadcast).
pub fn is_link_scope(a: IpAddr) -> bool {
    match a {
        IpAddr::V6(a) => {
            let s = a.segments();
            a.is_unspecified()
                || a.is_loopback()
                || (s[0] & 0xffc0) == 0xfe80
                || (a.is_multicast() && (s[0] & 0x000f) <= 2)
        }
        IpAddr::V4(a) => {
            a.is_unspecified()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_broadcast()
                || a.octets()[..3] == [224, 0, 0]
        }
    }
}

/// Outer IPv6 Flow Label (RFC 6438): a hash of the inner addresses, so ECMP and LAG in the
/// access network spread different inner flows while each stays on one path (never
/// reordered). Addresses only, not ports: fragments and ICMP errors of a flow hash alike.
/// Never 0 (0 means "no label").
pub fn flow_label(src: IpAddr, dst: IpAddr) -> u32 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15; // 2^64 / golden ratio: a cheap mixing multiplier
    let fold = |a: IpAddr| -> u64 {
        match a {
            IpAddr::V6(a) => {
                let v = u128::from(a);
                (v as u64) ^ ((v >> 64) as u64)
            }
            IpAddr::V4(a) => u64::from(u32::from(a)),
        }
    };
    let h = (fold(src).wrapping_mul(K) ^ fold(dst)).wrapping_mul(K);
    match ((h >> 40) as u32) & 0xf_ffff {
        0 => 1,
        l => l,
    }
}

/// A packet's flow, for the choice among several care-of addresses (RFC 5648): the
/// addresses, and for TCP, UDP and SCTP the protocol and ports when they are in this
/// packet. Fragments (IPv4 MF or offset, an IPv6 Fragment header: the ports are not
/// read behind extension headers) hash by addresses alone, so every fragment of a
/// datagram takes one path; ICMP errors hash by their own addresses.
pub fn flow_hash(packet: &[u8]) -> u64 {
    let Some((src, dst)) = addresses(packet) else {
        return 0;
    };
    let base = u64::from(flow_label(src, dst)) << 32 ^ u64::from(flow_label(dst, src));
    match inner_fields(packet) {
        Some(InnerFields {
            proto,
            ports: Some((s, d)),
            ..
        }) => {
            let p = u64::from(s) << 16 | u64::from(d);
            base ^ (p << 8 | u64::from(proto)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        }
        _ => base,
    }
}

/// What the flow hash and the duplication rules read in an inner packet beyond its
/// addresses.
pub(crate) struct InnerFields {
    /// Protocol (IPv4) / next header (IPv6, the first one).
    pub proto: u8,
    /// (source, destination) of TCP, UDP and SCTP when they follow the IP header directly
    /// and the packet is no IPv4 fragment (a later fragment has none, and every fragment
    /// of a datagram must be read alike).
    pub ports: Option<(u16, u16)>,
    /// DSCP: the upper six bits of the Traffic Class / TOS.
    pub dscp: u8,
}

/// The [`InnerFields`] of an inner packet, if its IP header is there.
pub(crate) fn inner_fields(packet: &[u8]) -> Option<InnerFields> {
    let (proto, l4, dscp) = match IpVersion::of(packet).ok()? {
        IpVersion::V6 if packet.len() >= 40 => {
            let tc = (packet[0] << 4) | (packet[1] >> 4);
            (packet[6], Some(40), tc >> 2)
        }
        IpVersion::V4 if packet.len() >= 20 => {
            let fragment = u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0;
            let l4 = (!fragment).then_some(usize::from(packet[0] & 0x0f) * 4);
            (packet[9], l4, packet[1] >> 2)
        }
        _ => return None,
    };
    let ports = match proto {
        6 | 17 | 132 => l4.and_then(|o| packet.get(o..o + 4)).map(|p| {
            (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            )
        }),
        _ => None,
    };
    Some(InnerFields { proto, ports, dscp })
}

/// A path probe (issue 15, path liveness among several care-of addresses): an IPv6 header
/// alone, next header 59 (No Next Header, RFC 8200 §4.7), from our end's identity to the
/// other's inside the tunnel (the MR: home address to home agent; the HA: the reverse), so
/// both ends' checks admit it like any packet of the binding. The receiving data plane
/// takes it as a sign of life of the path it came through and consumes it.
pub fn path_probe(src: Ipv6Addr, dst: Ipv6Addr) -> [u8; 40] {
    let mut p = [0u8; 40];
    p[0] = 0x60;
    p[6] = 59;
    // Hop limit 1: delivered to no one beyond the tunnel's end, were it ever forwarded.
    p[7] = 1;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p
}

/// Whether an inner packet is a path probe: a [`path_probe`] (IPv6, next header 59,
/// nothing after the header) or one of a [`pair_probe`]'s pair. Neither carries anything
/// for anyone beyond the tunnel.
pub fn is_path_probe(inner: &[u8]) -> bool {
    probe_of(inner).is_some()
}

/// What path probe `inner` is, if it is one: `Some(None)` a bare [`path_probe`],
/// `Some(Some(pair))` one of a [`pair_probe`]'s pair. One look at the packet each.
pub fn probe_of(inner: &[u8]) -> Option<Option<PairProbe>> {
    if inner.len() == 40 && inner[0] >> 4 == 6 && inner[6] == 59 && inner[4..6] == [0, 0] {
        return Some(None);
    }
    pair_probe_of(inner).map(Some)
}

/// Inner octets of each probe of a pair ([`pair_probe`]): large enough that the narrowest
/// link of the path spaces the two by their size, small enough for any path (1280 with
/// IPv6 outer, less than that with UDP/IPv4's).
pub const PAIR_LEN: usize = 1200;

/// What a [`pair_probe`] carries after its IPv6 header: "NMPP", the pair's number, its
/// place in the pair (0, 1), and the capacity the sender measured on the pairs it
/// received through the same path (kbit/s, 0: none yet), so each end learns what its
/// own direction of a path carries.
const PAIR_TAG: [u8; 4] = *b"NMPP";

/// One probe of a pair as read ([`pair_probe_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairProbe {
    /// The pair's number.
    pub id: u32,
    /// 0: the first of the pair, 1: the second.
    pub position: u8,
    /// The other end's measure of what our packets through this path get, kbit/s; 0:
    /// none yet.
    pub report_kbps: u32,
}

/// A probe of a packet pair (issue 15, weights by capacity): a [`path_probe`] padded to
/// [`PAIR_LEN`] octets. Two leave back to back through one path; the link that is the
/// narrowest between them spaces them by its transmission time of one, which the
/// receiving end measures ([`CapacityLine`]) — packet-pair dispersion, as bprobe and
/// pathrate measure a path's bottleneck capacity.
pub fn pair_probe(src: Ipv6Addr, dst: Ipv6Addr, p: PairProbe) -> [u8; PAIR_LEN] {
    let mut out = [0u8; PAIR_LEN];
    out[..40].copy_from_slice(&path_probe(src, dst));
    out[4..6].copy_from_slice(&((PAIR_LEN - 40) as u16).to_be_bytes());
    out[40..44].copy_from_slice(&PAIR_TAG);
    out[44..48].copy_from_slice(&p.id.to_be_bytes());
    out[48] = p.position;
    out[52..56].copy_from_slice(&p.report_kbps.to_be_bytes());
    out
}

/// The pair probe `inner` is, if it is one: IPv6, next header 59, exactly [`PAIR_LEN`]
/// octets as its payload length says, the tag, a place of 0 or 1.
pub fn pair_probe_of(inner: &[u8]) -> Option<PairProbe> {
    if inner.len() != PAIR_LEN
        || inner[0] >> 4 != 6
        || inner[6] != 59
        || usize::from(u16::from_be_bytes([inner[4], inner[5]])) != PAIR_LEN - 40
        || inner[40..44] != PAIR_TAG
        || inner[48] > 1
    {
        return None;
    }
    let u32_at =
        |i: usize| u32::from_be_bytes([inner[i], inner[i + 1], inner[i + 2], inner[i + 3]]);
    Some(PairProbe {
        id: u32_at(44),
        position: inner[48],
        report_kbps: u32_at(52),
    })
}

/// The sockets of the data plane.
#[derive(Debug)]
pub struct Sockets {
    /// `AF_INET6/SOCK_RAW/IPPROTO_RAW`: sends whole IPv6 packets (outer header included).
    pub tx6: Socket,
    /// `AF_INET/SOCK_RAW/IPPROTO_RAW`: sends whole IPv4 packets (IP_HDRINCL implied).
    pub tx4: Socket,
    /// Raw IPv6, next header 41 and 4.
    pub rx6: Vec<(u8, Socket)>,
    /// Raw IPv4, protocol 41 and 4.
    pub rx4: Vec<(u8, Socket)>,
    /// A packet socket for the tunnel packets that the receiving card merged (GRO) and
    /// for the unmerged ones of TCP flows: a raw socket would hand merged ones over
    /// without their segment size, and a flow's packets must be read by one socket
    /// ([`crate::bpf::SocketFilters`] splits the traffic). `None` when the kernel refuses
    /// the filters: the raw sockets then get everything, as before.
    pub merged: Option<Socket>,
    /// The filters of `merged` and the raw sockets, told whose tunnel packets `merged`
    /// takes, and the far ends they were last told.
    filters: Option<crate::bpf::SocketFilters>,
    captured: std::sync::Mutex<Vec<Ipv6Addr>>,
    /// UDP/IPv4 encapsulation (RFC 5555), when the port could be bound.
    pub udp: Option<Socket>,
    /// Raw ICMPv6: errors about tunnel packets in, reports to IPv6 senders out (RFC 2473
    /// §8); `None` if it could not be opened (the tunnel works without).
    pub icmp6: Option<Socket>,
    /// Raw ICMPv4: errors about IPv4 tunnel packets in (BPF: Destination Unreachable,
    /// Time Exceeded, Parameter Problem), reports to IPv4 senders out.
    pub icmp4: Option<Socket>,
    /// The TUN data plane's GRO device for IPv6 tunnel packets ([`open_outer_gro`]), set
    /// by the daemon after `open`; `None`: raw sends.
    pub outer_gro: Option<crate::tun::Tun>,
}

impl Sockets {
    /// Opens every socket. `udp_port` 0 leaves UDP out; a port already taken is logged and
    /// left out too. The UDP socket carries DSMIPv6 data *and* signalling (nemonetd owns
    /// it; Mobility Headers are relayed to had / mrd over the bus). `own`: our devices,
    /// whose received packets the packet socket for merged tunnel packets leaves out.
    pub fn open(udp_port: u16, own: &[&str]) -> io::Result<Sockets> {
        let raw = |d: Domain, p: i32| Socket::new(d, Type::RAW, Some(Protocol::from(p)));
        let tx6 = raw(Domain::IPV6, libc_ipproto_raw())?;
        // Tunnel packets name their source in `IPV6_PKTINFO` (`loops::Egress::outer`); the
        // header we wrote carries it whether or not the address is configured (yet).
        tx6.set_freebind_v6(true)?;
        let tx4 = raw(Domain::IPV4, libc_ipproto_raw())?;
        let mut rx6 = Vec::new();
        let mut rx4 = Vec::new();
        for p in [41u8, 4u8] {
            let s6 = raw(Domain::IPV6, i32::from(p))?;
            socket::setsockopt(&s6, socket::sockopt::Ipv6RecvTClass, &true)
                .map_err(io::Error::from)?;
            // The outer destination: which of our care-of addresses a packet came to,
            // when several share one far end (RFC 5648 on the MR).
            socket::setsockopt(&s6, socket::sockopt::Ipv6RecvPacketInfo, &true)
                .map_err(io::Error::from)?;
            rx6.push((p, s6));
            rx4.push((p, raw(Domain::IPV4, i32::from(p))?));
        }
        for s in rx6.iter().map(|(_, s)| s).chain(rx4.iter().map(|(_, s)| s)) {
            // Bursts from a fast sender: 4 MiB (the FORCE variant ignores rmem_max as root).
            let _ = s.set_recv_buffer_size(4 << 20);
            // The kernel's time of arrival: packet pairs measure a path's capacity by it.
            let _ = socket::setsockopt(s, socket::sockopt::ReceiveTimestampns, &true);
        }
        let udp = if udp_port == 0 {
            None
        } else {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            socket::setsockopt(&s, socket::sockopt::IpRecvTos, &true).map_err(io::Error::from)?;
            socket::setsockopt(&s, socket::sockopt::Ipv4PacketInfo, &true)
                .map_err(io::Error::from)?;
            // Receive coalescing (Linux 5.0): a burst of one far end's equal-sized tunnel
            // packets, or one sent by segmentation offload and never cut on the way, comes
            // in one read. Without it, one read each.
            if let Err(e) = socket::setsockopt(&s, socket::sockopt::UdpGroSegment, &true) {
                info!(error = %e, "UDP receive coalescing unavailable");
            }
            let _ = s.set_recv_buffer_size(4 << 20);
            let _ = socket::setsockopt(&s, socket::sockopt::ReceiveTimestampns, &true);
            let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, udp_port));
            match s.bind(&addr.into()) {
                Ok(()) => Some(s),
                Err(e) => {
                    warn!(port = udp_port, error = %e, "UDP encapsulation socket not bound; UDP/IPv4 tunnels will not receive");
                    None
                }
            }
        };
        let icmp6 = raw(Domain::IPV6, nix::libc::IPPROTO_ICMPV6)
            .and_then(|s| s.attach_filter(&icmp::icmp6_filter()).map(|()| s));
        let icmp4 = raw(Domain::IPV4, nix::libc::IPPROTO_ICMP)
            .and_then(|s| s.attach_filter(&icmp::icmp4_filter()).map(|()| s));
        let (icmp6, icmp4) = match (icmp6, icmp4) {
            (Ok(a), Ok(b)) => (Some(a), Some(b)),
            (a, b) => {
                let e = a
                    .err()
                    .or(b.err())
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                warn!(error = %e, "ICMP sockets not opened: errors on the tunnel path are not relayed to senders");
                (None, None)
            }
        };
        let raw: Vec<&Socket> = rx6.iter().chain(&rx4).map(|(_, s)| s).collect();
        let own: Vec<u32> = own
            .iter()
            .filter_map(|n| nix::net::if_::if_nametoindex(*n).ok())
            .collect();
        let (merged, filters) = match open_merged(&raw, &own) {
            Ok((s, f)) => (Some(s), Some(f)),
            Err(e) => {
                warn!(error = %e, "tunnel packets merged by the receiving card (GRO) cannot be read whole: TCP through raw IP tunnels stalls on cards that merge them (turn GRO off there: ethtool -K DEV gro off)");
                (None, None)
            }
        };
        Ok(Sockets {
            tx6,
            tx4,
            rx6,
            rx4,
            merged,
            filters,
            captured: Default::default(),
            udp,
            icmp6,
            icmp4,
            outer_gro: None,
        })
    }
}

/// Opens the packet socket for merged tunnel packets ([`Sockets::merged`]) and puts the
/// filter that leaves those out on each of the `raw` tunnel sockets: all or nothing, so
/// that every tunnel packet is read by exactly one socket.
fn open_merged(raw: &[&Socket], own: &[u32]) -> io::Result<(Socket, crate::bpf::SocketFilters)> {
    use crate::bpf::SocketFilters;
    use nix::libc;
    let filters = SocketFilters::load(own)?;
    // SOCK_RAW: the virtio-net header is refused on SOCK_DGRAM. Protocol 0: nothing is
    // queued before the filter is on and the socket listens ([`Sockets::merged_listen`]).
    let s = Socket::new(Domain::PACKET, Type::RAW, None)?;
    for option in [PACKET_VNET_HDR, PACKET_IGNORE_OUTGOING] {
        setsockopt_int(&s, libc::SOL_PACKET, option, 1)?;
    }
    SocketFilters::attach(&s, &filters.merged)?;
    let _ = s.set_recv_buffer_size(4 << 20);
    for (i, r) in raw.iter().enumerate() {
        if let Err(e) = SocketFilters::attach(*r, &filters.unmerged) {
            raw[..i].iter().for_each(|r| SocketFilters::detach(*r));
            return Err(e);
        }
    }
    Ok((s, filters))
}

impl Sockets {
    /// Hands the packet socket the tunnel packets of `far_ends` (sorted; those of the
    /// bindings the raw sockets receive, [`PeerTable::watch_raw_ip_rx`]): merged ones and
    /// TCP ones. It listens while there are any: listening, its filter runs on every
    /// packet the node receives (forwarded ones too).
    pub fn capture(&self, far_ends: &[Ipv6Addr]) {
        let Some(filters) = &self.filters else { return };
        let mut captured = self.captured.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<Ipv6Addr> = captured
            .iter()
            .filter(|a| far_ends.binary_search(a).is_err())
            .copied()
            .collect();
        let new: Vec<Ipv6Addr> = far_ends
            .iter()
            .filter(|a| captured.binary_search(a).is_err())
            .copied()
            .collect();
        let warn = |e: io::Error, far_end: &Ipv6Addr| warn!(error = %e, %far_end, "tunnel packet filters not told of a far end");
        // The raw sockets leave a far end's TCP packets to the packet socket only once it
        // listens; if it cannot, they keep them all (and the next change tries again).
        if captured.is_empty() && !far_ends.is_empty() && !self.merged_listen(true) {
            return;
        }
        for a in &new {
            if let Err(e) = filters.set_far_end(*a) {
                warn(e, a);
            }
        }
        for a in &gone {
            if let Err(e) = filters.drop_far_end(*a) {
                warn(e, a);
            }
        }
        if !captured.is_empty() && far_ends.is_empty() {
            self.merged_listen(false);
        }
        *captured = far_ends.to_vec();
    }

    /// Starts (`true`) or stops the packet socket's listening; whether it did.
    fn merged_listen(&self, on: bool) -> bool {
        use nix::libc;
        let Some(s) = &self.merged else { return false };
        // Every protocol (the filter takes IPv6 and IPv4) on every device (a mobile
        // router's uplinks come and go), as a capture does: a capture sees a packet before
        // the IP layer does, and leaves the IP layer the packet's only owner (a socket
        // bound to the IP protocols is served after it, and the IP layer then copies
        // every packet it receives: measured, a sixth of the kernel path's UDP rate and
        // an eighth of TUN's).
        // Protocol 0 unhooks it.
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = if on {
            (libc::ETH_P_ALL as u16).to_be()
        } else {
            0
        };
        // SAFETY: bind with a sockaddr_ll of the size given.
        let r = unsafe {
            libc::bind(
                s.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r == 0 {
            info!(
                on,
                "packet socket for merged tunnel packets (GRO) and TCP ones"
            );
        } else {
            let e = io::Error::last_os_error();
            warn!(error = %e, on, "packet socket for merged tunnel packets not (un)bound");
        }
        r == 0
    }
}

/// Opens the GRO device of the TUN data plane's IPv6 tunnel packets (`IFF_NAPI`, Linux
/// 4.15). A raw IPv6 socket sends each 1,400-octet tunnel packet through the kernel's
/// whole output path, and no interface of Linux takes an IPv6-in-IPv6 super-packet from
/// user space to segment (the virtio-net header has no `SKB_GSO_IPXIP6`). Written into
/// this device instead, the tunnel packets of one TCP super-packet are merged again by
/// the device's GRO (the kernel's IPv6-in-IPv6 GRO), and the kernel forwards one
/// super-packet to the far end, cut into tunnel packets by the uplink's card or not at
/// all. The packets are *forwarded*: IPv6 forwarding must be on (it is on routers), they
/// cross netfilter's forward hooks, and their hop limit is decremented once (written one
/// higher). [`tune_outer_gro`] sets the device up once it is up.
pub fn open_outer_gro(name: &str) -> io::Result<crate::tun::Tun> {
    let forwarding = std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding")?;
    if forwarding.trim() != "1" {
        return Err(io::Error::other(
            "IPv6 forwarding is off (net.ipv6.conf.all.forwarding)",
        ));
    }
    crate::tun::Tun::open_napi(name)
}

/// How long the GRO device holds merged segments for more (µs as ns): a TCP super-packet's
/// tunnel packets are written back to back, microseconds apart.
const OUTER_GRO_FLUSH_NS: u32 = 20_000;

/// Gives the GRO device `name` its NAPI thread (the merging and forwarding run beside the
/// thread that writes) and its flush timeout (without it, each write is flushed alone and
/// nothing merges, measured).
pub fn tune_outer_gro(name: &str) -> io::Result<()> {
    let dir = std::path::Path::new("/sys/class/net").join(name);
    std::fs::write(
        dir.join("gro_flush_timeout"),
        OUTER_GRO_FLUSH_NS.to_string(),
    )?;
    std::fs::write(dir.join("threaded"), "1")
}

/// A socket option whose value is a C `int`, of those nix has no type for.
pub(crate) fn setsockopt_int(
    sock: &impl AsRawFd,
    level: nix::libc::c_int,
    name: nix::libc::c_int,
    value: nix::libc::c_int,
) -> io::Result<()> {
    use nix::libc;
    // SAFETY: setsockopt with a c_int value that outlives the call.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// linux/if_packet.h: each read starts with a virtio-net header; the socket does not see
// what the node sends.
const PACKET_VNET_HDR: nix::libc::c_int = 15;
const PACKET_IGNORE_OUTGOING: nix::libc::c_int = 23;

/// Sends `packet` from the UDP socket to `to`, from the address `from` and through
/// interface `ifindex` (0: the route's) when given: a DSMIPv6 Binding Update of one of a
/// mobile router's IPv4 care-of addresses must leave from that address, through its
/// uplink (RFC 5648 §8.1), whichever uplink the main table prefers.
pub fn send_udp_from(
    sock: &Socket,
    packet: &[u8],
    to: SocketAddrV4,
    from: Option<(Ipv4Addr, u32)>,
) -> io::Result<usize> {
    let egress = from.map(|(addr, ifindex)| loops::Egress::from_v4(addr, ifindex));
    loops::send_one(sock, packet, SocketAddr::V4(to), egress)
}

fn libc_ipproto_raw() -> i32 {
    nix::libc::IPPROTO_RAW
}

/// Settings of the outgoing direction.
#[derive(Debug, Clone, Copy)]
pub struct TxConfig {
    /// Outer hop limit / TTL (RFC 2473 §6.3; routers use the default hop limit).
    pub hop_limit: u8,
    /// How often each care-of address among several is probed ([`path_probe`]); `None`:
    /// never (and every registered path is used).
    pub probe_interval: Option<std::time::Duration>,
}

/// A Mobility Header that arrived UDP-encapsulated: (local address, outer source, inner
/// IPv6 packet). The UDP thread hands it to the daemon, which publishes it on the bus
/// (`MhUdpIn`) for had / mrd instead of writing it to the TUN.
pub type MhRelay = tokio::sync::mpsc::Sender<(SocketAddrV4, SocketAddrV4, Vec<u8>)>;

/// Mobility Headers from UDP waiting for the bus at most: a flood of forged DSMIPv6
/// signalling costs this much memory and no more (the rest is dropped and counted).
pub const MH_RELAY_QUEUE: usize = 256;

/// Whether an inner packet is IPv6 ending in a Mobility Header (next header 135, possibly
/// after extension headers): DSMIPv6 signalling, not data.
pub fn is_mobility_header(inner: &[u8]) -> bool {
    if inner.len() < 40 || inner[0] >> 4 != 6 || !matches!(inner[6], 135 | 0 | 43 | 60) {
        return false;
    }
    matches!(proto::ext::walk(inner), Ok(proto::ext::Walk::Mobility(_)))
}

/// The data plane: the device, the sockets, the published peer table and the counters.
#[derive(Debug)]
pub struct DataPlane<B: Backend> {
    /// Where UDP-encapsulated Mobility Headers go (`None`: dropped).
    pub mh_relay: Option<MhRelay>,
    /// The device packets come from and go to (the TUN).
    pub backend: Arc<B>,
    /// The sockets.
    pub sockets: Arc<Sockets>,
    /// The bindings, as the daemon publishes them ([`PeerTable::shared`]).
    pub peers: Arc<SharedPeers>,
    /// Counters.
    pub counters: Arc<Counters>,
}

impl<B: Backend> DataPlane<B> {
    /// Starts the threads: one reader per device queue and per receive socket, each with
    /// its own [`PeerReader`]. They run until the process exits (the blocking reads have
    /// nothing to wake them, and nothing needs to: exit closes the TUN and removes the
    /// device).
    pub fn spawn(&self, tx: TxConfig) -> io::Result<()> {
        for queue in 0..self.backend.queues() {
            let (dev, socks, mut peers, counters) = self.parts();
            std::thread::Builder::new()
                .name(format!("nemonetd-tx-{queue}"))
                .spawn(move || loops::tx_loop(&*dev, queue, &socks, &mut peers, &counters, tx))?;
        }
        for i in 0..self.sockets.rx6.len() {
            let (dev, socks, mut peers, counters) = self.parts();
            std::thread::Builder::new()
                .name(format!("nemonetd-rx6-{}", self.sockets.rx6[i].0))
                .spawn(move || {
                    let (proto, s) = &socks.rx6[i];
                    loops::rx6_loop(*proto, s.as_raw_fd(), &*dev, &mut peers, &counters)
                })?;
        }
        for i in 0..self.sockets.rx4.len() {
            let (dev, socks, mut peers, counters) = self.parts();
            std::thread::Builder::new()
                .name(format!("nemonetd-rx4-{}", self.sockets.rx4[i].0))
                .spawn(move || loops::rx4_loop(&socks.rx4[i].1, &*dev, &mut peers, &counters))?;
        }
        if self.sockets.merged.is_some() {
            let (dev, socks, mut peers, counters) = self.parts();
            std::thread::Builder::new()
                .name("nemonetd-rx-gro".into())
                .spawn(move || {
                    if let Some(s) = &socks.merged {
                        loops::rx_merged_loop(s.as_raw_fd(), &*dev, &mut peers, &counters)
                    }
                })?;
        }
        if let Some(interval) = tx.probe_interval {
            let (_, socks, mut peers, counters) = self.parts();
            std::thread::Builder::new()
                .name("nemonetd-probe".into())
                .spawn(move || loops::probe_loop(&socks, &mut peers, &counters, tx, interval))?;
        }
        if self.sockets.icmp6.is_some() {
            for v4 in [false, true] {
                let (_, socks, mut peers, counters) = self.parts();
                std::thread::Builder::new()
                    .name(format!("nemonetd-icmp{}", if v4 { 4 } else { 6 }))
                    .spawn(move || icmp::icmp_loop(v4, &socks, &mut peers, &counters))?;
            }
        }
        if self.sockets.udp.is_some() {
            let (dev, socks, mut peers, counters) = self.parts();
            let relay = self.mh_relay.clone();
            std::thread::Builder::new()
                .name("nemonetd-rx-udp".into())
                .spawn(move || {
                    if let Some(s) = &socks.udp {
                        let fd = s.as_raw_fd();
                        loops::udp_loop(fd, &*dev, &mut peers, &counters, relay.as_ref())
                    }
                })?;
        }
        Ok(())
    }

    /// What one thread takes: shared handles, and a reader of its own.
    fn parts(&self) -> (Arc<B>, Arc<Sockets>, PeerReader, Arc<Counters>) {
        (
            Arc::clone(&self.backend),
            Arc::clone(&self.sockets),
            self.peers.reader(),
            Arc::clone(&self.counters),
        )
    }
}

#[cfg(test)]
mod tests;
