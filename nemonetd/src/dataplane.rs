//! The user-space data plane: one TUN device per node serving every binding, raw sockets
//! for the tunnel protocols (this kernel has no ip6_tunnel/sit/ipip, docs/notes.md §2).
//!
//! * **Out** (TUN → tunnel): one thread reads a packet into a buffer with [`HEADROOM`]
//!   free octets in front, finds the binding ([`PeerTable::tx_lookup`]: the HA by inner
//!   destination, the MR takes its HA), and [`proto::encap::encapsulate`] writes the outer
//!   header in place; the whole packet leaves through an `IPPROTO_RAW` socket (IPv6 or IPv4,
//!   header included), so one code path serves IPv6, IPv4 and UDP/IPv4 outer headers.
//! * **In** (tunnel → TUN): one thread per socket — raw IPv6 41 and 4 (bound: without a
//!   socket the kernel answers Parameter Problem, docs/notes.md §2), raw IPv4 41 and 4, and UDP
//!   (RFC 5555 §4.1) — checks the outer source and the inner source
//!   ([`PeerTable::rx_check`]), applies RFC 6040 ECN decapsulation, and writes the inner
//!   packet to the TUN.
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

use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use ipnet::IpNet;
use mipsock::{Binding, CareOf, Encapsulation as BindingEncap};
use nix::errno::Errno;
use nix::sys::socket::{
    self, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6, SockaddrStorage,
};
use proto::encap::{
    DecapOutcome, EncapOutcome, EncapParams, Encapsulation, IpVersion, decapsulate,
    decapsulate_inner,
};
use socket2::{Domain, Protocol, Socket, Type};
use tracing::{debug, info, warn};

use crate::gso::{
    Coalescer, F_NEEDS_CSUM, GSO_ECN, GSO_NONE, VNET_HDR_LEN, VnetHdr, finish_checksum, segment_tcp,
};
use crate::routes::{Mode, sources};
use crate::tun::Tun;

/// Free octets in front of every packet read from the TUN: the largest outer header is
/// 40 (IPv6); 64 keeps the inner packet aligned.
pub const HEADROOM: usize = 64;
/// Largest packet we read (IPv4/IPv6 without jumbograms).
pub const MAX_PACKET: usize = 65535;

/// Where tunnelled packets from a peer come from: the outer source we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Remote {
    /// IPv6 outer source.
    V6(Ipv6Addr),
    /// IPv4 outer source (protocol 41/4).
    V4(Ipv4Addr),
    /// IPv4 + UDP source address and port (after any NAT).
    Udp(SocketAddrV4),
}

/// A live binding as the data plane sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The binding.
    pub binding: Binding,
    /// The outer header towards the peer.
    pub encap: Encapsulation,
    /// The outer source we accept packets from.
    pub remote: Remote,
    /// Inner sources the HA accepts from this MR (HoA, MNPs, IPv4 too).
    pub sources: Vec<IpNet>,
    /// The outer source before the last move and when it changed: still accepted for
    /// [`MOVE_GRACE`], for the packets the MR sent from its old care-of address before its
    /// Binding Acknowledgement arrived (a vertical handover then loses nothing).
    pub previous_remote: Option<(Remote, std::time::Instant)>,
}

/// How long the HA still accepts tunnelled packets from a binding's previous care-of
/// address after a move: the BA's flight plus mrd's and nemonetd's reaction on the MR,
/// a few ms, with a wide margin. The inner-source check applies as always.
pub const MOVE_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// Why a peer cannot be built from a binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// An IPv4 care-of address with no IPv4 home agent address.
    #[error("IPv4 care-of address {0} but no IPv4 home agent address in the binding")]
    NoHaV4(Ipv4Addr),
}

impl Peer {
    /// The tunnel to and from the other end of `b`, from our side (`mode`): RFC 5555 §5.1
    /// formats, chosen by the CoA's family and the binding's encapsulation.
    pub fn new(mode: Mode, b: &Binding) -> Result<Peer, PeerError> {
        let (encap, remote) = match b.coa {
            CareOf::V6(coa) => match mode {
                Mode::MobileRouter => (
                    Encapsulation::Ipv6 {
                        src_addr: coa,
                        dst_addr: b.ha,
                    },
                    Remote::V6(b.ha),
                ),
                Mode::HomeAgent => (
                    Encapsulation::Ipv6 {
                        src_addr: b.ha,
                        dst_addr: coa,
                    },
                    Remote::V6(coa),
                ),
            },
            CareOf::V4 { addr, udp_port } => {
                let ha4 = b.ha_v4.ok_or(PeerError::NoHaV4(addr))?;
                match (b.encapsulation, mode) {
                    (BindingEncap::UdpIpv4 { ha_port }, Mode::MobileRouter) => (
                        Encapsulation::Udp4 {
                            src_addr: addr,
                            dst_addr: ha4,
                            src_port: udp_port.unwrap_or(proto::DSMIP_UDP_PORT),
                            dst_port: ha_port,
                        },
                        Remote::Udp(SocketAddrV4::new(ha4, ha_port)),
                    ),
                    (BindingEncap::UdpIpv4 { ha_port }, Mode::HomeAgent) => {
                        let port = udp_port.unwrap_or(proto::DSMIP_UDP_PORT);
                        (
                            Encapsulation::Udp4 {
                                src_addr: ha4,
                                dst_addr: addr,
                                src_port: ha_port,
                                dst_port: port,
                            },
                            Remote::Udp(SocketAddrV4::new(addr, port)),
                        )
                    }
                    // InIpv4, or an inconsistent InIpv6 with an IPv4 CoA: plain IP-in-IPv4.
                    (_, Mode::MobileRouter) => (
                        Encapsulation::Ipv4 {
                            src_addr: addr,
                            dst_addr: ha4,
                        },
                        Remote::V4(ha4),
                    ),
                    (_, Mode::HomeAgent) => (
                        Encapsulation::Ipv4 {
                            src_addr: ha4,
                            dst_addr: addr,
                        },
                        Remote::V4(addr),
                    ),
                }
            }
        };
        Ok(Peer {
            binding: b.clone(),
            encap,
            remote,
            sources: sources(b),
            previous_remote: None,
        })
    }

    fn covers(&self, a: IpAddr) -> bool {
        self.sources.iter().any(|n| n.contains(&a))
    }
}

/// Why an incoming tunnel packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxRefusal {
    /// The outer source is no live binding's CoA (HA) / not our HA (MR).
    UnknownOuterSource,
    /// HA: the inner source is outside that MR's HoA and MNPs.
    SpoofedInnerSource,
}

/// The bindings the data plane serves. Read per packet under an `RwLock`; written only on
/// binding events.
#[derive(Debug, Clone)]
pub struct PeerTable {
    mode: Mode,
    peers: Vec<Peer>,
}

impl PeerTable {
    /// An empty table.
    pub fn new(mode: Mode) -> Self {
        PeerTable {
            mode,
            peers: Vec::new(),
        }
    }

    /// Adds or replaces the binding's peer (a move replaces the outer header only, and
    /// keeps the old outer source acceptable for [`MOVE_GRACE`]).
    pub fn upsert(&mut self, mut peer: Peer) {
        let k = crate::routes::key(&peer.binding);
        match self
            .peers
            .iter_mut()
            .find(|p| crate::routes::key(&p.binding) == k)
        {
            Some(p) => {
                peer.previous_remote = if p.remote != peer.remote {
                    Some((p.remote, std::time::Instant::now()))
                } else {
                    p.previous_remote
                };
                *p = peer
            }
            None => self.peers.push(peer),
        }
    }

    /// Removes the binding's peer.
    pub fn remove(&mut self, b: &Binding) {
        let k = crate::routes::key(b);
        self.peers.retain(|p| crate::routes::key(&p.binding) != k);
    }

    /// Removes every peer.
    pub fn clear(&mut self) {
        self.peers.clear();
    }

    /// The peers.
    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    /// The peer a packet from the TUN goes to. HA: the binding whose HoA/MNPs contain the
    /// inner destination (longest prefix wins, for nested or overlapping registrations).
    /// MR: the binding whose mobile network the inner source belongs to, else the first
    /// (the MR's own traffic, e.g. from an address in no MNP).
    pub fn tx_lookup(&self, src: IpAddr, dst: IpAddr) -> Option<&Peer> {
        match self.mode {
            Mode::HomeAgent => self
                .peers
                .iter()
                .filter_map(|p| {
                    p.sources
                        .iter()
                        .filter(|n| n.contains(&dst))
                        .map(|n| n.prefix_len())
                        .max()
                        .map(|len| (len, p))
                })
                .max_by_key(|(len, _)| *len)
                .map(|(_, p)| p),
            Mode::MobileRouter => self
                .peers
                .iter()
                .find(|p| p.covers(src))
                .or_else(|| self.peers.first()),
        }
    }

    /// Whether a decapsulated packet may enter: RFC 3963 §6.4 / RFC 6275 §10.4.5 on the HA
    /// (outer source = a live binding's CoA, inner source inside that MR's HoA or MNPs),
    /// outer source = our HA on the MR.
    pub fn rx_check(&self, outer: Remote, inner_src: IpAddr) -> Result<(), RxRefusal> {
        let mut known = false;
        let from = |p: &&Peer| {
            p.remote == outer
                || p.previous_remote
                    .is_some_and(|(r, at)| r == outer && at.elapsed() < MOVE_GRACE)
        };
        for p in self.peers.iter().filter(from) {
            known = true;
            if self.mode == Mode::MobileRouter || p.covers(inner_src) {
                return Ok(());
            }
        }
        Err(if known {
            RxRefusal::SpoofedInnerSource
        } else {
            RxRefusal::UnknownOuterSource
        })
    }
}

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
            "data plane counters"
        );
    }

    /// A sum that changes whenever any counter does (to log only on change).
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
    /// UDP/IPv4 encapsulation (RFC 5555), when the port could be bound.
    pub udp: Option<Socket>,
}

impl Sockets {
    /// Opens every socket. `udp_port` 0 leaves UDP out; a port already taken is logged and
    /// left out too. The UDP socket carries DSMIPv6 data *and* signalling (nemonetd owns
    /// it; Mobility Headers are relayed to had / mrd over the bus).
    pub fn open(udp_port: u16) -> io::Result<Sockets> {
        let raw = |d: Domain, p: i32| Socket::new(d, Type::RAW, Some(Protocol::from(p)));
        let tx6 = raw(Domain::IPV6, libc_ipproto_raw())?;
        let tx4 = raw(Domain::IPV4, libc_ipproto_raw())?;
        let mut rx6 = Vec::new();
        let mut rx4 = Vec::new();
        for p in [41u8, 4u8] {
            let s6 = raw(Domain::IPV6, i32::from(p))?;
            socket::setsockopt(&s6, socket::sockopt::Ipv6RecvTClass, &true)
                .map_err(io::Error::from)?;
            rx6.push((p, s6));
            rx4.push((p, raw(Domain::IPV4, i32::from(p))?));
        }
        for s in rx6.iter().map(|(_, s)| s).chain(rx4.iter().map(|(_, s)| s)) {
            // Bursts from a fast sender: 4 MiB (the FORCE variant ignores rmem_max as root).
            let _ = s.set_recv_buffer_size(4 << 20);
        }
        let udp = if udp_port == 0 {
            None
        } else {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            socket::setsockopt(&s, socket::sockopt::IpRecvTos, &true).map_err(io::Error::from)?;
            socket::setsockopt(&s, socket::sockopt::Ipv4PacketInfo, &true)
                .map_err(io::Error::from)?;
            let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, udp_port));
            match s.bind(&addr.into()) {
                Ok(()) => Some(s),
                Err(e) => {
                    warn!(port = udp_port, error = %e, "UDP encapsulation socket not bound; UDP/IPv4 tunnels will not receive");
                    None
                }
            }
        };
        Ok(Sockets {
            tx6,
            tx4,
            rx6,
            rx4,
            udp,
        })
    }
}

fn libc_ipproto_raw() -> i32 {
    nix::libc::IPPROTO_RAW
}

/// Settings of the outgoing direction.
#[derive(Debug, Clone, Copy)]
pub struct TxConfig {
    /// Outer hop limit / TTL (RFC 2473 §6.3; routers use the default hop limit).
    pub hop_limit: u8,
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

/// The data plane: TUN, sockets, the peer table and counters.
#[derive(Debug)]
pub struct DataPlane {
    /// Where UDP-encapsulated Mobility Headers go (`None`: dropped).
    pub mh_relay: Option<MhRelay>,
    /// The TUN device.
    pub tun: Arc<Tun>,
    /// The sockets.
    pub sockets: Arc<Sockets>,
    /// The bindings.
    pub table: Arc<RwLock<PeerTable>>,
    /// Counters.
    pub counters: Arc<Counters>,
}

impl DataPlane {
    /// Starts the threads: one TUN reader and one reader per receive socket. They run until
    /// the process exits (the blocking reads have nothing to wake them, and nothing needs
    /// to: exit closes the TUN and removes the device).
    pub fn spawn(&self, tx: TxConfig) -> io::Result<()> {
        let (tun, socks, table, counters) = self.parts();
        std::thread::Builder::new()
            .name("nemonetd-tx".into())
            .spawn(move || tx_loop(&tun, &socks, &table, &counters, tx))?;
        for i in 0..self.sockets.rx6.len() {
            let (tun, socks, table, counters) = self.parts();
            std::thread::Builder::new()
                .name(format!("nemonetd-rx6-{}", self.sockets.rx6[i].0))
                .spawn(move || {
                    let (proto, s) = &socks.rx6[i];
                    rx6_loop(*proto, s.as_raw_fd(), &tun, &table, &counters)
                })?;
        }
        for i in 0..self.sockets.rx4.len() {
            let (tun, socks, table, counters) = self.parts();
            std::thread::Builder::new()
                .name(format!("nemonetd-rx4-{}", self.sockets.rx4[i].0))
                .spawn(move || rx4_loop(&socks.rx4[i].1, &tun, &table, &counters))?;
        }
        if self.sockets.udp.is_some() {
            let (tun, socks, table, counters) = self.parts();
            let relay = self.mh_relay.clone();
            std::thread::Builder::new()
                .name("nemonetd-rx-udp".into())
                .spawn(move || {
                    if let Some(s) = &socks.udp {
                        udp_loop(s.as_raw_fd(), &tun, &table, &counters, relay.as_ref())
                    }
                })?;
        }
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn parts(
        &self,
    ) -> (
        Arc<Tun>,
        Arc<Sockets>,
        Arc<RwLock<PeerTable>>,
        Arc<Counters>,
    ) {
        (
            Arc::clone(&self.tun),
            Arc::clone(&self.sockets),
            Arc::clone(&self.table),
            Arc::clone(&self.counters),
        )
    }
}

/// Size of one segment buffer: headroom plus the largest segment (headers + MSS) we expect;
/// the TUN MTU bounds it, and a TUN MTU above 16 KiB is not something we run.
const SEGMENT_BUF: usize = HEADROOM + 16384;

/// How a packet read from the TUN leaves: the socket and the outer destination.
fn route_out<'s>(socks: &'s Sockets, encap: &Encapsulation) -> (&'s Socket, SocketAddr) {
    match *encap {
        Encapsulation::Ipv6 { dst_addr, .. } => {
            (&socks.tx6, SocketAddrV6::new(dst_addr, 0, 0, 0).into())
        }
        Encapsulation::Ipv4 { dst_addr, .. } | Encapsulation::Udp4 { dst_addr, .. } => {
            (&socks.tx4, SocketAddrV4::new(dst_addr, 0).into())
        }
    }
}

/// Messages per `sendmmsg` call: room for a 64 KiB super-packet cut at an MSS of 1,024 or
/// more; a longer batch goes in several calls.
const TX_BATCH: usize = 64;

/// What `sendmmsg(2)` needs, allocated once per TX thread: the message headers, one
/// destination per message, and the (empty between calls) vector the I/O slices are built
/// in, so a batch costs no allocation.
struct TxBatch {
    headers: socket::MultiHeaders<SockaddrStorage>,
    dsts: Vec<Option<SockaddrStorage>>,
    iovs: Vec<[IoSlice<'static>; 1]>,
}

/// An empty vector of I/O slices for any lifetime, keeping `v`'s allocation: no element
/// survives, and a `Vec` collected in place from its own `IntoIter` reuses the buffer.
#[allow(
    clippy::unnecessary_filter_map,
    reason = "filter_map changes the element's lifetime; filter could not"
)]
fn recycle<'a, 'b>(v: Vec<[IoSlice<'a>; 1]>) -> Vec<[IoSlice<'b>; 1]> {
    v.into_iter().filter_map(|_| None).collect()
}

impl TxBatch {
    fn new() -> Self {
        Self {
            headers: socket::MultiHeaders::preallocate(TX_BATCH, None),
            dsts: Vec::with_capacity(TX_BATCH),
            iovs: Vec::with_capacity(TX_BATCH),
        }
    }

    /// `sendmmsg(2)` of whole packets to one destination, `TX_BATCH` at a time; returns
    /// how many were sent and their octets. An error before anything was sent is returned;
    /// one after a partial send ends the batch (the rest counted by the caller).
    fn send<'p>(
        &mut self,
        sock: &Socket,
        packets: impl IntoIterator<Item = &'p [u8]>,
        dst: SocketAddr,
    ) -> io::Result<(usize, usize)> {
        let mut iovs = recycle(std::mem::take(&mut self.iovs));
        iovs.extend(packets.into_iter().map(|p| [IoSlice::new(p)]));
        let dst = SockaddrStorage::from(dst);
        self.dsts.clear();
        self.dsts.resize(TX_BATCH.min(iovs.len()), Some(dst));
        let (mut sent, mut bytes) = (0, 0);
        let mut failure = None;
        while sent < iovs.len() {
            let chunk = &iovs[sent..iovs.len().min(sent + TX_BATCH)];
            match socket::sendmmsg(
                sock.as_raw_fd(),
                &mut self.headers,
                chunk,
                &self.dsts[..chunk.len()],
                [],
                MsgFlags::empty(),
            ) {
                Ok(results) => {
                    // nix reports the count only as its results, one per message sent.
                    let before = sent;
                    for r in results {
                        sent += 1;
                        bytes += r.bytes;
                    }
                    if sent == before {
                        break;
                    }
                }
                Err(Errno::EINTR) => {}
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        self.iovs = recycle(iovs);
        match failure {
            Some(e) if sent == 0 => Err(e.into()),
            _ => Ok((sent, bytes)),
        }
    }
}

fn tx_loop(
    tun: &Tun,
    socks: &Sockets,
    table: &RwLock<PeerTable>,
    counters: &Counters,
    tx: TxConfig,
) {
    let vnet = tun.vnet_hdr();
    // With offloads the virtio-net header is read into the headroom, just in front of the
    // packet, so a plain packet is still encapsulated in place.
    let front = if vnet {
        HEADROOM - VNET_HDR_LEN
    } else {
        HEADROOM
    };
    let mut buf = vec![0u8; HEADROOM + MAX_PACKET];
    let mut segments: Vec<Vec<u8>> = Vec::new();
    let mut lens = Vec::new();
    let mut ranges = Vec::new();
    let mut batch = TxBatch::new();
    let mut ident: u16 = 0;
    loop {
        let n = match tun.recv(&mut buf[front..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                warn!(error = %e, "TUN read failed; data plane out of service");
                return;
            }
        };
        let (hdr, len) = if vnet {
            match VnetHdr::parse(&buf[front..front + n]) {
                Some(h) => (h, n - VNET_HDR_LEN),
                None => {
                    Counters::inc(&counters.drop_malformed);
                    continue;
                }
            }
        } else {
            (VnetHdr::default(), n)
        };
        let end = HEADROOM + len;
        let Some((src, dst)) = addresses(&buf[HEADROOM..end]) else {
            Counters::inc(&counters.drop_malformed);
            continue;
        };
        if is_link_scope(src) || is_link_scope(dst) {
            Counters::inc(&counters.drop_link_scope);
            continue;
        }
        let encap = {
            let t = table.read().unwrap_or_else(|p| p.into_inner());
            match t.tx_lookup(src, dst) {
                Some(p) => p.encap,
                None => {
                    Counters::inc(&counters.drop_no_binding);
                    continue;
                }
            }
        };
        let mut params = EncapParams {
            hop_limit: tx.hop_limit,
            flow_label: flow_label(src, dst),
            // Already forwarded (and decremented) by the kernel: see the module docs.
            decrement_inner: false,
            ..EncapParams::default()
        };
        let (sock, to) = route_out(socks, &encap);
        if hdr.gso_type & !GSO_ECN == GSO_NONE {
            if hdr.flags & F_NEEDS_CSUM != 0
                && finish_checksum(&hdr, &mut buf[HEADROOM..end]).is_err()
            {
                Counters::inc(&counters.drop_malformed);
                continue;
            }
            ident = ident.wrapping_add(1);
            params.ipv4_ident = ident;
            let range = match proto::encap::encapsulate(&encap, &params, &mut buf[..end], HEADROOM)
            {
                Ok(EncapOutcome::Encapsulated(r)) => r,
                Ok(EncapOutcome::HopLimitExceeded(_)) | Err(_) => {
                    Counters::inc(&counters.drop_malformed);
                    continue;
                }
            };
            match sock.send_to(&buf[range], &to.into()) {
                Ok(len) => {
                    Counters::inc(&counters.tx_packets);
                    counters.tx_bytes.fetch_add(len as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    Counters::inc(&counters.io_errors);
                    debug!(error = %e, "tunnel send failed");
                }
            }
            continue;
        }
        // A TCP super-packet: cut, encapsulate each segment in place, send them at once.
        let needed = len.div_ceil(usize::from(hdr.gso_size.max(1))) + 1;
        while segments.len() < needed {
            segments.push(vec![0u8; SEGMENT_BUF]);
        }
        let cut = {
            let mut it = segments.iter_mut();
            segment_tcp(
                &hdr,
                &buf[HEADROOM..end],
                |_| match it.next() {
                    Some(v) => &mut v[HEADROOM..],
                    None => &mut [],
                },
                &mut lens,
            )
        };
        if cut.is_err() {
            Counters::inc(&counters.drop_malformed);
            continue;
        }
        ranges.clear();
        for (seg, &l) in segments.iter_mut().zip(&lens) {
            ident = ident.wrapping_add(1);
            params.ipv4_ident = ident;
            match proto::encap::encapsulate(&encap, &params, &mut seg[..HEADROOM + l], HEADROOM) {
                Ok(EncapOutcome::Encapsulated(r)) => ranges.push(r),
                Ok(EncapOutcome::HopLimitExceeded(_)) | Err(_) => {
                    Counters::inc(&counters.drop_malformed);
                }
            }
        }
        let packets = segments.iter().zip(&ranges).map(|(s, r)| &s[r.clone()]);
        match batch.send(sock, packets, to) {
            Ok((sent, bytes)) => {
                counters
                    .tx_packets
                    .fetch_add(sent as u64, Ordering::Relaxed);
                counters.tx_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                if sent < ranges.len() {
                    counters
                        .io_errors
                        .fetch_add((ranges.len() - sent) as u64, Ordering::Relaxed);
                }
            }
            Err(e) => {
                counters
                    .io_errors
                    .fetch_add(ranges.len() as u64, Ordering::Relaxed);
                debug!(error = %e, "tunnel batch send failed");
            }
        }
    }
}

/// The checks of every receive path: link-scope filter and the security check, counted.
fn admit(inner: &[u8], outer: Remote, table: &RwLock<PeerTable>, counters: &Counters) -> bool {
    let Some((src, dst)) = addresses(inner) else {
        Counters::inc(&counters.drop_malformed);
        return false;
    };
    if is_link_scope(src) || is_link_scope(dst) {
        Counters::inc(&counters.drop_link_scope);
        return false;
    }
    let verdict = table
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .rx_check(outer, src);
    match verdict {
        Ok(()) => true,
        Err(RxRefusal::UnknownOuterSource) => {
            Counters::inc(&counters.drop_unknown_outer);
            debug!(?outer, %src, "tunnelled packet from an unknown outer source dropped");
            false
        }
        Err(RxRefusal::SpoofedInnerSource) => {
            Counters::inc(&counters.drop_spoofed_inner);
            debug!(?outer, %src, "tunnelled packet with a foreign inner source dropped");
            false
        }
    }
}

/// Writes one TUN frame (virtio-net header included when the device has one), counting
/// `packets` inner packets of `bytes` octets.
fn write_tun(tun: &Tun, frame: &[u8], packets: u64, bytes: u64, counters: &Counters) {
    match tun.send(frame) {
        Ok(_) => {
            counters.rx_packets.fetch_add(packets, Ordering::Relaxed);
            counters.rx_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        Err(e) => {
            counters.io_errors.fetch_add(packets, Ordering::Relaxed);
            debug!(error = %e, "TUN write failed");
        }
    }
}

/// The common tail of the single-packet receive paths: checks, then the TUN write. The
/// inner packet is `buf[inner]`; at least [`VNET_HDR_LEN`] octets in front of it are free
/// for the (all-zero: complete checksum, no segmentation) virtio-net header.
fn deliver(
    buf: &mut [u8],
    inner: Range<usize>,
    outer: Remote,
    tun: &Tun,
    table: &RwLock<PeerTable>,
    counters: &Counters,
) {
    if !admit(&buf[inner.clone()], outer, table, counters) {
        return;
    }
    let start = if tun.vnet_hdr() {
        let s = inner.start - VNET_HDR_LEN;
        buf[s..inner.start].fill(0);
        s
    } else {
        inner.start
    };
    write_tun(tun, &buf[start..inner.end], 1, inner.len() as u64, counters);
}

/// Packets taken per `recvmmsg` on the IPv6 tunnel sockets (the common path).
const RX_BATCH: usize = 32;

/// Writes what the coalescer gathered, if anything.
fn flush(gro: &mut Coalescer, tun: &Tun, segments: &mut u64, counters: &Counters) {
    if let Some(frame) = gro.take() {
        let bytes = (frame.len() - VNET_HDR_LEN) as u64;
        write_tun(tun, frame, *segments, bytes, counters);
    }
    *segments = 0;
}

fn rx6_loop(proto: u8, fd: RawFd, tun: &Tun, table: &RwLock<PeerTable>, counters: &Counters) {
    let expected = if proto == 41 {
        IpVersion::V6
    } else {
        IpVersion::V4
    };
    // Room in front of each packet for the TUN's virtio-net header.
    let mut bufs: Vec<Vec<u8>> = (0..RX_BATCH)
        .map(|_| vec![0u8; VNET_HDR_LEN + MAX_PACKET])
        .collect();
    let mut headers =
        socket::MultiHeaders::<SockaddrIn6>::preallocate(RX_BATCH, Some(nix::cmsg_space!(i32)));
    let mut meta: Vec<(usize, Option<Ipv6Addr>, i32)> = Vec::with_capacity(RX_BATCH);
    let mut gro = Coalescer::new();
    let mut gathered = 0u64;
    loop {
        meta.clear();
        {
            let mut iovs: Vec<[io::IoSliceMut; 1]> = bufs
                .iter_mut()
                .map(|b| [io::IoSliceMut::new(&mut b[VNET_HDR_LEN..])])
                .collect();
            // Blocks for the first packet, then takes what is queued (MSG_WAITFORONE):
            // one wake-up per burst instead of one per packet.
            match socket::recvmmsg(
                fd,
                &mut headers,
                iovs.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(results) => {
                    for m in results {
                        let tclass = m
                            .cmsgs()
                            .ok()
                            .and_then(|mut c| {
                                c.find_map(|c| match c {
                                    ControlMessageOwned::Ipv6TClass(t) => Some(t),
                                    _ => None,
                                })
                            })
                            .unwrap_or(0);
                        meta.push((m.bytes, m.address.map(|a| a.ip()), tclass));
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    warn!(error = %e, proto, "raw IPv6 receive failed; path out of service");
                    return;
                }
            }
        }
        for (buf, &(n, from, tclass)) in bufs.iter_mut().zip(&meta) {
            let Some(from) = from else { continue };
            let inner = &mut buf[VNET_HDR_LEN..VNET_HDR_LEN + n];
            if IpVersion::of(inner).ok() != Some(expected) {
                Counters::inc(&counters.drop_malformed);
                continue;
            }
            // Raw IPv6 sockets strip the outer header; its ECN comes as IPV6_TCLASS.
            let ecn = proto::encap::Ecn::from_bits(tclass as u8);
            let len = match decapsulate_inner(ecn, inner) {
                Ok(DecapOutcome::Forward(info)) => info.len,
                Ok(DecapOutcome::Drop(_)) => {
                    Counters::inc(&counters.drop_ecn);
                    continue;
                }
                Err(_) => {
                    Counters::inc(&counters.drop_malformed);
                    continue;
                }
            };
            let inner = &buf[VNET_HDR_LEN..VNET_HDR_LEN + len];
            if !admit(inner, Remote::V6(from), table, counters) {
                continue;
            }
            if !tun.vnet_hdr() {
                write_tun(tun, inner, 1, len as u64, counters);
                continue;
            }
            if gro.push(inner) {
                gathered += 1;
                continue;
            }
            flush(&mut gro, tun, &mut gathered, counters);
            if gro.push(inner) {
                gathered = 1;
            } else {
                buf[..VNET_HDR_LEN].fill(0);
                write_tun(tun, &buf[..VNET_HDR_LEN + len], 1, len as u64, counters);
            }
        }
        // Never hold a packet past the end of a batch: the next may be long in coming.
        flush(&mut gro, tun, &mut gathered, counters);
    }
}

fn rx4_loop(sock: &Socket, tun: &Tun, table: &RwLock<PeerTable>, counters: &Counters) {
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        // Raw IPv4 sockets deliver the IP header: proto's decapsulate checks it whole. The
        // outer header (at least 20 octets) leaves room for the virtio-net header.
        let n = match nix::sys::socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                warn!(error = %e, "raw IPv4 receive failed; path out of service");
                return;
            }
        };
        match decapsulate(&mut buf[..n]) {
            Ok(DecapOutcome::Forward(d)) => {
                let Encapsulation::Ipv4 { src_addr, .. } = d.outer else {
                    Counters::inc(&counters.drop_malformed);
                    continue;
                };
                deliver(
                    &mut buf,
                    d.inner_range,
                    Remote::V4(src_addr),
                    tun,
                    table,
                    counters,
                );
            }
            Ok(DecapOutcome::Drop(_)) => Counters::inc(&counters.drop_ecn),
            Err(_) => Counters::inc(&counters.drop_malformed),
        }
    }
}

fn udp_loop(
    fd: RawFd,
    tun: &Tun,
    table: &RwLock<PeerTable>,
    counters: &Counters,
    relay: Option<&MhRelay>,
) {
    let mut buf = vec![0u8; VNET_HDR_LEN + MAX_PACKET];
    let mut cmsg = nix::cmsg_space!(u8, nix::libc::in_pktinfo);
    let port = socket::getsockname::<SockaddrIn>(fd).map_or(0, |a| a.port());
    loop {
        let (n, from, tos, local) = {
            let mut iov = [io::IoSliceMut::new(&mut buf[VNET_HDR_LEN..])];
            match socket::recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty()) {
                Ok(m) => {
                    let tos = m
                        .cmsgs()
                        .ok()
                        .and_then(|mut c| {
                            c.find_map(|c| match c {
                                ControlMessageOwned::Ipv4Tos(t) => Some(t),
                                _ => None,
                            })
                        })
                        .unwrap_or(0);
                    let local = m
                        .cmsgs()
                        .ok()
                        .and_then(|mut c| {
                            c.find_map(|c| match c {
                                ControlMessageOwned::Ipv4PacketInfo(i) => {
                                    Some(Ipv4Addr::from(u32::from_be(i.ipi_addr.s_addr)))
                                }
                                _ => None,
                            })
                        })
                        .unwrap_or(Ipv4Addr::UNSPECIFIED);
                    (
                        m.bytes,
                        m.address.map(|a| SocketAddrV4::new(a.ip(), a.port())),
                        tos,
                        SocketAddrV4::new(local, port),
                    )
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    warn!(error = %e, "UDP receive failed; path out of service");
                    return;
                }
            }
        };
        let Some(from) = from else { continue };
        let inner = &mut buf[VNET_HDR_LEN..VNET_HDR_LEN + n];
        if is_mobility_header(inner) {
            // DSMIPv6 signalling (RFC 5555 §4.2): had / mrd decide, over the bus.
            match relay.map(|r| r.try_send((local, from, inner.to_vec()))) {
                Some(Ok(())) => {
                    debug!(%from, %local, len = n, "mobility header relayed to the bus");
                }
                Some(Err(tokio::sync::mpsc::error::TrySendError::Full(_))) => {
                    Counters::inc(&counters.drop_relay_full);
                    debug!(%from, "bus relay queue full; mobility header dropped");
                }
                _ => debug!(%from, "mobility header in UDP with no relay; dropped"),
            }
            continue;
        }
        match decapsulate_inner(proto::encap::Ecn::from_bits(tos), inner) {
            Ok(DecapOutcome::Forward(info)) => deliver(
                &mut buf,
                VNET_HDR_LEN..VNET_HDR_LEN + info.len,
                Remote::Udp(from),
                tun,
                table,
                counters,
            ),
            Ok(DecapOutcome::Drop(_)) => Counters::inc(&counters.drop_ecn),
            Err(_) => Counters::inc(&counters.drop_malformed),
        }
    }
}

#[cfg(test)]
mod tests;
