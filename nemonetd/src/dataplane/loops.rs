//! The packet loops, one thread each (started by [`super::DataPlane::spawn`]), generic
//! over the device ([`Backend`]). They read the peer table through their own
//! [`PeerReader`]: one refresh per batch, right after the blocking read, then every packet
//! of the batch is looked up in that snapshot without a lock; the clock is read through a
//! [`BatchClock`], at most once per batch.

use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;

use nix::errno::Errno;
use nix::sys::socket::{
    self, ControlMessageOwned, LinkAddr, MsgFlags, SockaddrIn, SockaddrIn6, SockaddrLike,
    SockaddrStorage,
};
use proto::encap::{
    DecapOutcome, EncapOutcome, EncapParams, Encapsulation, IpVersion, decapsulate,
    decapsulate_inner,
};
use socket2::Socket;
use tracing::{debug, info, warn};

use super::backend::Backend;
use super::peers::{BatchClock, PeerReader, Remote, RxRefusal, Snapshot, mono_ns};
use super::{
    Counters, HEADROOM, MAX_PACKET, MhRelay, Sockets, TxConfig, addresses, flow_hash, flow_label,
    is_link_scope, is_mobility_header, probe_of,
};
use crate::gso::{
    Coalescer, F_NEEDS_CSUM, GSO_ECN, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VNET_HDR_LEN,
    VnetHdr, finish_checksum, ip_header_len, partial_checksum, segment, segment_tcp,
};
use crate::gso::{IPPROTO_TCP, IPPROTO_UDP};

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
pub(super) const TX_BATCH: usize = 64;

/// What `sendmmsg(2)` needs, allocated once per TX thread: the message headers, one
/// destination per message, and the (empty between calls) vector the I/O slices are built
/// in, so a batch costs no allocation.
pub(super) struct TxBatch {
    headers: socket::MultiHeaders<SockaddrStorage>,
    /// The same with room for the egress control message: a header with control space
    /// but no message is refused by the kernel (EINVAL), so each kind has its own.
    headers_egress: socket::MultiHeaders<SockaddrStorage>,
    dsts: Vec<Option<SockaddrStorage>>,
    iovs: Vec<[IoSlice<'static>; 1]>,
}

/// An empty vector of I/O slices for any lifetime, keeping `v`'s allocation: no element
/// survives, and a `Vec` collected in place from its own `IntoIter` reuses the buffer.
#[allow(
    clippy::unnecessary_filter_map,
    reason = "filter_map changes the element's lifetime; filter could not"
)]
pub(super) fn recycle<'a, 'b>(v: Vec<[IoSlice<'a>; 1]>) -> Vec<[IoSlice<'b>; 1]> {
    v.into_iter().filter_map(|_| None).collect()
}

/// The control message that makes a tunnel packet leave through its care-of address's
/// interface (`IPV6_PKTINFO` / `IP_PKTINFO` with only the interface index set): the
/// route lookup is then restricted to that interface. Without it the kernel takes the
/// main table's preferred default, which on a router with several uplinks may be another
/// uplink than the care-of address's — a packet an access network's ingress filter (BCP
/// 38) drops, and rightly so.
#[derive(Debug, Clone, Copy)]
pub(super) enum Egress {
    V6(nix::libc::in6_pktinfo),
    V4(nix::libc::in_pktinfo),
}

impl Egress {
    /// For a packet to `to` that must leave through interface `oif`.
    pub(super) fn new(to: &SocketAddr, oif: u32) -> Self {
        match to {
            SocketAddr::V6(_) => Egress::V6(nix::libc::in6_pktinfo {
                ipi6_addr: nix::libc::in6_addr { s6_addr: [0; 16] },
                ipi6_ifindex: oif,
            }),
            SocketAddr::V4(_) => Egress::V4(nix::libc::in_pktinfo {
                ipi_ifindex: i32::try_from(oif).unwrap_or(0),
                ipi_spec_dst: nix::libc::in_addr { s_addr: 0 },
                ipi_addr: nix::libc::in_addr { s_addr: 0 },
            }),
        }
    }

    /// For a tunnel packet of `encap` to `to`, through interface `oif` when given. Without
    /// one, an IPv6 outer header names its source instead: the kernel then routes the
    /// packet by it (the rules `from` a care-of address apply, as they do to the packet on
    /// the wire) and skips choosing a source address for every packet (RFC 6724's rules,
    /// some 7 % of a TUN sending thread's time, for a header we wrote ourselves). Not both:
    /// given a source, Linux no longer holds the route lookup to the interface
    /// (`RT6_LOOKUP_F_IFACE` only with an unspecified source), and a router's flows left
    /// by one uplink whatever their care-of address (`tests/mcoa.rs`). The sending socket
    /// is free-binding, so a source not (or no longer) configured is no error: the header
    /// carries it either way.
    pub(super) fn outer(encap: &Encapsulation, to: &SocketAddr, oif: Option<u32>) -> Option<Self> {
        match (*encap, oif) {
            (_, Some(i)) => Some(Egress::new(to, i)),
            (Encapsulation::Ipv6 { src_addr, .. }, None) => {
                Some(Egress::V6(nix::libc::in6_pktinfo {
                    ipi6_addr: nix::libc::in6_addr {
                        s6_addr: src_addr.octets(),
                    },
                    ipi6_ifindex: 0,
                }))
            }
            (Encapsulation::Ipv4 { .. } | Encapsulation::Udp4 { .. }, None) => None,
        }
    }

    /// For an IPv4 packet that must leave from `src` through interface `oif` (0: the
    /// route's).
    pub(super) fn from_v4(src: Ipv4Addr, oif: u32) -> Self {
        Egress::V4(nix::libc::in_pktinfo {
            ipi_ifindex: i32::try_from(oif).unwrap_or(0),
            ipi_spec_dst: nix::libc::in_addr {
                s_addr: u32::from(src).to_be(),
            },
            ipi_addr: nix::libc::in_addr { s_addr: 0 },
        })
    }

    fn cmsg(&self) -> socket::ControlMessage<'_> {
        match self {
            Egress::V6(i) => socket::ControlMessage::Ipv6PacketInfo(i),
            Egress::V4(i) => socket::ControlMessage::Ipv4PacketInfo(i),
        }
    }
}

/// Sends one whole packet to `to`, through interface `egress` when given.
pub(super) fn send_one(
    sock: &Socket,
    packet: &[u8],
    to: SocketAddr,
    egress: Option<Egress>,
) -> io::Result<usize> {
    let Some(egress) = egress else {
        return sock.send_to(packet, &to.into());
    };
    let dst = SockaddrStorage::from(to);
    let iov = [IoSlice::new(packet)];
    socket::sendmsg(
        sock.as_raw_fd(),
        &iov,
        &[egress.cmsg()],
        MsgFlags::empty(),
        Some(&dst),
    )
    .map_err(io::Error::from)
}

impl TxBatch {
    pub(super) fn new() -> Self {
        Self {
            headers: socket::MultiHeaders::preallocate(TX_BATCH, None),
            headers_egress: socket::MultiHeaders::preallocate(
                TX_BATCH,
                Some(nix::cmsg_space!(nix::libc::in6_pktinfo)),
            ),
            dsts: Vec::with_capacity(TX_BATCH),
            iovs: Vec::with_capacity(TX_BATCH),
        }
    }

    /// `sendmmsg(2)` of whole packets to one destination, `TX_BATCH` at a time; returns
    /// how many were sent and their octets. An error before anything was sent is returned;
    /// one after a partial send ends the batch (the rest counted by the caller).
    pub(super) fn send<'p>(
        &mut self,
        sock: &Socket,
        packets: impl IntoIterator<Item = &'p [u8]>,
        dst: SocketAddr,
        egress: Option<Egress>,
    ) -> io::Result<(usize, usize)> {
        let cmsg = egress.as_ref().map(Egress::cmsg);
        let cmsgs: &[socket::ControlMessage<'_>] = cmsg.as_slice();
        let mut iovs = recycle(std::mem::take(&mut self.iovs));
        iovs.extend(packets.into_iter().map(|p| [IoSlice::new(p)]));
        let dst = SockaddrStorage::from(dst);
        self.dsts.clear();
        self.dsts.resize(TX_BATCH.min(iovs.len()), Some(dst));
        let (mut sent, mut bytes) = (0, 0);
        let mut failure = None;
        while sent < iovs.len() {
            let chunk = &iovs[sent..iovs.len().min(sent + TX_BATCH)];
            let headers = if cmsgs.is_empty() {
                &mut self.headers
            } else {
                &mut self.headers_egress
            };
            match socket::sendmmsg(
                sock.as_raw_fd(),
                headers,
                chunk,
                &self.dsts[..chunk.len()],
                cmsgs,
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

/// Segments per UDP segmentation offload send (`UDP_MAX_SEGMENTS` of Linux 4.18-6.x).
const UDP_GSO_SEGMENTS: usize = 64;
/// The most a UDP/IPv4 datagram carries, the sum of one send's segments.
const UDP_GSO_PAYLOAD: usize = 65535 - 20 - 8;

/// UDP segmentation offload (`UDP_SEGMENT`, Linux 4.18) for TCP super-packets through a
/// UDP/IPv4 tunnel (RFC 5555 §4.1): the segments, cut in user space as for the other
/// tunnels, leave in one send through the UDP socket, and the kernel writes each one's
/// outer IPv4 and UDP headers (checksums included) as it cuts the datagram, at the device
/// or later; one pass through the stack for up to 64 tunnel packets instead of one each.
struct UdpGso<'s> {
    sock: &'s Socket,
    /// The socket's port: the tunnel's source port when this one sends.
    port: u16,
    /// The segments side by side.
    buf: Vec<u8>,
}

impl<'s> UdpGso<'s> {
    fn new(socks: &'s Sockets) -> Option<UdpGso<'s>> {
        let sock = socks.udp.as_ref()?;
        let port = socket::getsockname::<SockaddrIn>(sock.as_raw_fd())
            .ok()?
            .port();
        Some(UdpGso {
            sock,
            port,
            buf: Vec::with_capacity(UDP_GSO_PAYLOAD),
        })
    }

    /// Sends `segments` (all `size` octets but the last, which may be shorter) from `src`
    /// to `to`, out of interface `oif` when given, with outer TOS `tos` and TTL `ttl`.
    /// Returns how many segments left and their outer octets, or the error of the first
    /// send (nothing sent); an error after that ends it (the rest counted by the caller).
    #[allow(
        clippy::too_many_arguments,
        reason = "one send's outer header, field by field"
    )]
    fn send<'p>(
        &mut self,
        segments: impl Iterator<Item = &'p [u8]>,
        size: usize,
        src: Ipv4Addr,
        to: SocketAddrV4,
        oif: Option<u32>,
        tos: u8,
        ttl: u8,
    ) -> Result<(usize, usize), Errno> {
        let per_send = (UDP_GSO_PAYLOAD / size.max(1)).clamp(1, UDP_GSO_SEGMENTS);
        let gso = size as u16;
        let info = nix::libc::in_pktinfo {
            ipi_ifindex: oif.and_then(|i| i32::try_from(i).ok()).unwrap_or(0),
            ipi_spec_dst: nix::libc::in_addr {
                s_addr: u32::from(src).to_be(),
            },
            ipi_addr: nix::libc::in_addr { s_addr: 0 },
        };
        let ttl = nix::libc::c_int::from(ttl);
        let dst = SockaddrIn::from(to);
        let mut segments = segments.peekable();
        let (mut sent, mut octets) = (0, 0);
        while segments.peek().is_some() {
            self.buf.clear();
            let mut n = 0;
            for seg in segments.by_ref().take(per_send) {
                self.buf.extend_from_slice(seg);
                n += 1;
            }
            let cmsgs = [
                socket::ControlMessage::UdpGsoSegments(&gso),
                socket::ControlMessage::Ipv4PacketInfo(&info),
                socket::ControlMessage::Ipv4Tos(&tos),
                socket::ControlMessage::Ipv4Ttl(&ttl),
            ];
            let iov = [IoSlice::new(&self.buf)];
            match socket::sendmsg(
                self.sock.as_raw_fd(),
                &iov,
                &cmsgs,
                MsgFlags::empty(),
                Some(&dst),
            ) {
                Ok(_) => {
                    sent += n;
                    octets += self.buf.len() + n * 28;
                }
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok((sent, octets))
    }
}

/// Tunnels what the device's queue `queue` hands over.
pub(super) fn tx_loop<B: Backend>(
    dev: &B,
    queue: usize,
    socks: &Sockets,
    peers: &mut PeerReader,
    counters: &Counters,
    tx: TxConfig,
) {
    let vnet = dev.offload();
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
    // Duplicated flows: the further paths of a packet, and the buffer its copies are
    // encapsulated in (allocated once).
    let mut extra: Vec<(Encapsulation, Option<u32>)> = Vec::new();
    let mut copy = vec![0u8; HEADROOM + MAX_PACKET];
    let mut ident: u16 = 0;
    let mut udp_gso = UdpGso::new(socks);
    loop {
        // One read is this loop's batch: a packet, or a super-packet of many segments.
        let n = match dev.recv(queue, &mut buf[front..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                warn!(device = dev.name(), error = %e, "device read failed; data plane out of service");
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
        let inner = &buf[HEADROOM..end];
        let snapshot = peers.refresh();
        let (encap, oif) =
            match snapshot.tx_route(src, dst, || flow_hash(inner)) {
                Some((p, group)) => {
                    let single = hdr.gso_type & !GSO_ECN == GSO_NONE;
                    extra.clear();
                    // A flow binding (RFC 6089 §5.3.6) decides first: its BIDs' paths, a copy
                    // through each (not TCP super-packets: TCP recovers its losses).
                    let p =
                        match snapshot.flow_route(group, inner) {
                            Some((chosen, copies)) => {
                                if single {
                                    extra.extend(copies.into_iter().map(|q| {
                                        (q.encap, q.binding.coa_ifindex.filter(|&i| i != 0))
                                    }));
                                }
                                chosen
                            }
                            None => {
                                // A flow that must not lose a packet: the same packet through
                                // every other live path too.
                                if single && snapshot.duplicated(group, inner) {
                                    extra.extend(
                                        snapshot.duplicate_paths(p, group).into_iter().map(|q| {
                                            (q.encap, q.binding.coa_ifindex.filter(|&i| i != 0))
                                        }),
                                    );
                                }
                                p
                            }
                        };
                    p.counters.0.tx(end - HEADROOM);
                    (p.encap, p.binding.coa_ifindex.filter(|&i| i != 0))
                }
                None => {
                    Counters::inc(&counters.drop_no_binding);
                    continue;
                }
            };
        // IPv6 tunnel packets of TCP through the GRO device, where it runs and the
        // kernel's routing may choose the way out (no care-of address's interface to hold
        // to): every TCP packet, so a flow's packets never overtake each other between the
        // two ways, and nothing else (a packet GRO cannot merge costs more there than a raw
        // send, measured on UDP).
        let gro = socks.outer_gro.as_ref().filter(|_| {
            oif.is_none() && matches!(encap, Encapsulation::Ipv6 { .. }) && is_tcp(inner)
        });
        let mut params = EncapParams {
            // The kernel's forwarding of what the GRO device receives takes one hop off.
            hop_limit: match gro {
                Some(_) => tx.hop_limit.saturating_add(1),
                None => tx.hop_limit,
            },
            flow_label: flow_label(src, dst),
            // Already forwarded (and decremented) by the kernel: see the module docs.
            decrement_inner: false,
            ..EncapParams::default()
        };
        let (sock, to) = route_out(socks, &encap);
        // The MR knows which interface its care-of address is on: the packet leaves there.
        let egress = Egress::outer(&encap, &to, oif);
        if hdr.gso_type & !GSO_ECN == GSO_NONE {
            if hdr.flags & F_NEEDS_CSUM != 0
                && finish_checksum(&hdr, &mut buf[HEADROOM..end]).is_err()
            {
                Counters::inc(&counters.drop_malformed);
                continue;
            }
            for &(encap, oif) in &extra {
                // A copy of the inner packet for each further path, encapsulated apart
                // and sent by the raw socket.
                copy[HEADROOM..end].copy_from_slice(&buf[HEADROOM..end]);
                ident = ident.wrapping_add(1);
                let params = EncapParams {
                    hop_limit: tx.hop_limit,
                    ipv4_ident: ident,
                    ..params
                };
                let (sock, to) = route_out(socks, &encap);
                let egress = Egress::outer(&encap, &to, oif);
                if let Ok(EncapOutcome::Encapsulated(r)) =
                    proto::encap::encapsulate(&encap, &params, &mut copy[..end], HEADROOM)
                {
                    match send_one(sock, &copy[r], to, egress) {
                        Ok(_) => Counters::inc(&counters.dup_tx),
                        Err(e) => {
                            Counters::inc(&counters.io_errors);
                            debug!(error = %e, "duplicate not sent");
                        }
                    }
                }
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
            if let Some(dev) = gro {
                write_outer(dev, &buf[range], counters);
                continue;
            }
            // Through the batch's headers, allocated once: a single `sendmsg` with a control
            // message would build its control buffer for every packet.
            match batch.send(sock, std::iter::once(&buf[range]), to, egress) {
                Ok((_, len)) => {
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
        if let Encapsulation::Udp4 {
            src_addr,
            dst_addr,
            src_port,
            dst_port,
        } = encap
            && let Some(gso) = udp_gso.as_mut()
            && gso.port == src_port
            && let Some(&size) = lens.first()
            && lens.iter().rev().skip(1).all(|&l| l == size)
            && lens.last().is_some_and(|&l| l <= size)
            && let Ok(tos) =
                proto::encap::outer_tos(&params, &segments[0][HEADROOM..HEADROOM + size])
        {
            let segs = segments
                .iter()
                .zip(&lens)
                .map(|(s, &l)| &s[HEADROOM..HEADROOM + l]);
            let to = SocketAddrV4::new(dst_addr, dst_port);
            match gso.send(segs, size, src_addr, to, oif, tos, tx.hop_limit) {
                Ok((sent, bytes)) => {
                    Counters::inc(&counters.udp_gso_sends);
                    counters
                        .tx_packets
                        .fetch_add(sent as u64, Ordering::Relaxed);
                    counters.tx_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                    if sent < lens.len() {
                        counters
                            .io_errors
                            .fetch_add((lens.len() - sent) as u64, Ordering::Relaxed);
                    }
                    continue;
                }
                // No segmentation offload here (a device without checksum offload: EIO;
                // a kernel before 4.18): segment by segment from now on.
                Err(e @ (Errno::EIO | Errno::EOPNOTSUPP | Errno::ENOPROTOOPT)) => {
                    warn!(error = %e, "UDP segmentation offload refused; UDP tunnel packets sent one by one");
                    udp_gso = None;
                }
                // This packet (a segment past the route's MTU, say): the path below
                // sends it, or says why not.
                Err(e) => {
                    debug!(error = %e, "UDP segmentation offload send failed; segment by segment")
                }
            }
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
        if let Some(dev) = gro {
            for (seg, r) in segments.iter().zip(&ranges) {
                write_outer(dev, &seg[r.clone()], counters);
            }
            continue;
        }
        let packets = segments.iter().zip(&ranges).map(|(s, r)| &s[r.clone()]);
        match batch.send(sock, packets, to, egress) {
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

/// Whether an inner packet is TCP (IPv6 without extension headers, or IPv4).
fn is_tcp(inner: &[u8]) -> bool {
    match inner.first().map(|b| b >> 4) {
        Some(6) => inner.get(6) == Some(&6),
        Some(4) => inner.get(9) == Some(&6),
        _ => false,
    }
}

/// Writes one IPv6 tunnel packet into the GRO device ([`super::open_outer_gro`]).
fn write_outer(dev: &crate::tun::Tun, packet: &[u8], counters: &Counters) {
    match dev.send(packet) {
        Ok(n) => {
            Counters::inc(&counters.tx_packets);
            counters.tx_bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        Err(e) => {
            Counters::inc(&counters.io_errors);
            debug!(error = %e, "write to the GRO device failed");
        }
    }
}

/// The checks of every receive path: link-scope filter and the security check, counted.
/// `local`, when known, is the outer destination (which of our care-of addresses).
/// Among several care-of addresses, the path is marked heard, and its probes consumed.
fn admit(
    inner: &[u8],
    outer: Remote,
    local: Option<IpAddr>,
    arrival_ns: Option<u64>,
    table: &Snapshot,
    clock: &mut BatchClock,
    counters: &Counters,
) -> bool {
    let Some((src, dst)) = addresses(inner) else {
        Counters::inc(&counters.drop_malformed);
        return false;
    };
    if is_link_scope(src) || is_link_scope(dst) {
        Counters::inc(&counters.drop_link_scope);
        return false;
    }
    match table.rx_check_at(outer, local, src, clock) {
        Ok(peer) if peer.is_mcoa() => {
            peer.counters.0.heard(mono_ns(clock.now()));
            if let Some(pair) = probe_of(inner) {
                Counters::inc(&counters.probes_rx);
                if let Some(pair) = pair {
                    // The kernel's time of arrival; without it, now (a batch read late
                    // narrows the gap: such measures are the ones the estimate drops).
                    let at = arrival_ns.unwrap_or_else(|| mono_ns(std::time::Instant::now()));
                    peer.counters.0.capacity.pair_probe(pair, at);
                }
                return false;
            }
            if !table.first_copy(peer, inner) {
                Counters::inc(&counters.dup_dropped);
                return false;
            }
            peer.counters.0.rx(inner.len());
            true
        }
        Ok(peer) => {
            peer.counters.0.rx(inner.len());
            true
        }
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

/// Writes one device frame (virtio-net header included when the device has one), counting
/// `packets` inner packets of `bytes` octets.
fn write_dev<B: Backend>(dev: &B, frame: &[u8], packets: u64, bytes: u64, counters: &Counters) {
    match dev.send(frame) {
        Ok(_) => {
            counters.rx_packets.fetch_add(packets, Ordering::Relaxed);
            counters.rx_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        Err(e) => {
            counters.io_errors.fetch_add(packets, Ordering::Relaxed);
            debug!(device = dev.name(), error = %e, "device write failed");
        }
    }
}

/// Where the receive loops put each admitted inner packet: coalesced with the packets
/// before it towards the device (TCP segments of one flow, when the device takes
/// super-packets) or written alone. A batch never ends with a packet held back.
#[derive(Default)]
struct RxSink {
    gro: Coalescer,
    /// Inner packets in the coalescer.
    gathered: u64,
}

impl RxSink {
    /// The inner packet `buf[inner]`, with at least [`VNET_HDR_LEN`] octets in front of
    /// it free for the (all-zero: complete checksum, no segmentation) virtio-net header.
    fn take<B: Backend>(
        &mut self,
        buf: &mut [u8],
        inner: Range<usize>,
        dev: &B,
        counters: &Counters,
    ) {
        let len = inner.len() as u64;
        if !dev.offload() {
            write_dev(dev, &buf[inner], 1, len, counters);
            return;
        }
        if self.gro.push(&buf[inner.clone()]) {
            self.gathered += 1;
            return;
        }
        self.end_batch(dev, counters);
        if self.gro.push(&buf[inner.clone()]) {
            self.gathered = 1;
        } else {
            let s = inner.start - VNET_HDR_LEN;
            buf[s..inner.start].fill(0);
            write_dev(dev, &buf[s..inner.end], 1, len, counters);
        }
    }

    /// Writes what the coalescer gathered, if anything: at the end of every batch (the
    /// next may be long in coming).
    fn end_batch<B: Backend>(&mut self, dev: &B, counters: &Counters) {
        flush(&mut self.gro, dev, &mut self.gathered, counters);
    }
}

/// One `recvmmsg` batch into `bufs`, each read from octet `offset` on (the room in front
/// is for the virtio-net header), with `cmsg` control space per message: it blocks for
/// the first message and takes what is queued then (MSG_WAITFORONE: one wake-up per burst
/// instead of one per packet); `each` sees every message received. EINTR is an empty
/// batch.
///
/// The headers are fresh for each batch (a few kilobytes zeroed for up to 32 messages):
/// nix leaves a header's `msg_controllen` at what the kernel wrote back the time before,
/// so a reused header cuts the control data of a message that has more of it than the one
/// before it in that slot (MSG_CTRUNC: UDP's coalesced size, the TOS and our address lost;
/// a coalesced read then looked like one datagram and the rest of it was dropped).
fn recv_batch<S: SockaddrLike + Copy>(
    fd: RawFd,
    bufs: &mut [Vec<u8>],
    offset: usize,
    cmsg: Option<Vec<u8>>,
    mut each: impl FnMut(&socket::RecvMsg<'_, '_, S>),
) -> nix::Result<()> {
    let mut headers = socket::MultiHeaders::<S>::preallocate(bufs.len(), cmsg);
    let mut iovs: Vec<[io::IoSliceMut; 1]> = bufs
        .iter_mut()
        .map(|b| [io::IoSliceMut::new(&mut b[offset..])])
        .collect();
    match socket::recvmmsg(
        fd,
        &mut headers,
        iovs.iter_mut(),
        MsgFlags::MSG_WAITFORONE,
        None,
    ) {
        Ok(results) => {
            for m in results {
                each(&m);
            }
            Ok(())
        }
        Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Packets taken per `recvmmsg` on the IPv6 tunnel sockets (the common path).
const RX_BATCH: usize = 32;

/// Writes what the coalescer gathered, if anything.
fn flush<B: Backend>(gro: &mut Coalescer, dev: &B, segments: &mut u64, counters: &Counters) {
    if let Some(frame) = gro.take() {
        let bytes = (frame.len() - VNET_HDR_LEN) as u64;
        write_dev(dev, frame, *segments, bytes, counters);
    }
    *segments = 0;
}

pub(super) fn rx6_loop<B: Backend>(
    proto: u8,
    fd: RawFd,
    dev: &B,
    peers: &mut PeerReader,
    counters: &Counters,
) {
    let expected = if proto == 41 {
        IpVersion::V6
    } else {
        IpVersion::V4
    };
    // Room in front of each packet for the TUN's virtio-net header.
    let mut bufs: Vec<Vec<u8>> = (0..RX_BATCH)
        .map(|_| vec![0u8; VNET_HDR_LEN + MAX_PACKET])
        .collect();
    // Per packet: its length, the outer source, the outer traffic class, our address it
    // came to, the kernel's time of arrival.
    type Meta = (usize, Option<Ipv6Addr>, i32, Option<IpAddr>, Option<u64>);
    let mut meta: Vec<Meta> = Vec::with_capacity(RX_BATCH);
    let mut sink = RxSink::default();
    loop {
        meta.clear();
        let received = recv_batch::<SockaddrIn6>(
            fd,
            &mut bufs,
            VNET_HDR_LEN,
            Some(nix::cmsg_space!(
                i32,
                nix::libc::in6_pktinfo,
                nix::libc::timespec
            )),
            |m| {
                let (mut tclass, mut local, mut at) = (0, None, None);
                for c in m.cmsgs().into_iter().flatten() {
                    match c {
                        ControlMessageOwned::Ipv6TClass(t) => tclass = t,
                        ControlMessageOwned::Ipv6PacketInfo(i) => {
                            local = Some(IpAddr::V6(Ipv6Addr::from(i.ipi6_addr.s6_addr)))
                        }
                        ControlMessageOwned::ScmTimestampns(t) => at = Some(timespec_ns(&t)),
                        _ => {}
                    }
                }
                meta.push((m.bytes, m.address.map(|a| a.ip()), tclass, local, at));
            },
        );
        if let Err(e) = received {
            warn!(error = %e, proto, "raw IPv6 receive failed; path out of service");
            return;
        }
        // The batch's snapshot and time, whatever the daemon publishes meanwhile.
        let table = peers.refresh();
        let mut clock = BatchClock::new();
        for (buf, &(n, from, tclass, local, at)) in bufs.iter_mut().zip(&meta) {
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
            let inner = VNET_HDR_LEN..VNET_HDR_LEN + len;
            if !admit(
                &buf[inner.clone()],
                Remote::V6(from),
                local,
                at,
                table,
                &mut clock,
                counters,
            ) {
                continue;
            }
            sink.take(buf, inner, dev, counters);
        }
        sink.end_batch(dev, counters);
    }
}

/// Tunnel packets taken per `recvmmsg` on the packet socket (each up to 64 KiB).
const RX_MERGED_BATCH: usize = 16;

/// Reads the tunnel packets that the receiving card merged (GRO), and the unmerged ones of
/// TCP flows, from a packet socket ([`super::Sockets::merged`]): each a virtio-net header
/// (the segment size the card's GRO kept) and the outer packet. A merged packet's inner
/// TCP super-packet goes to the device whole, with that segment size, as the kernel's own
/// tunnel would forward it; cut into those segments in user space when the device takes
/// no super-packets. Unmerged ones are coalesced towards the device as the raw sockets'
/// are, and never overtake a merged one (or the reverse): one socket, one thread, in the
/// kernel's order.
pub(super) fn rx_merged_loop<B: Backend>(
    fd: RawFd,
    dev: &B,
    peers: &mut PeerReader,
    counters: &Counters,
) {
    // Our own devices are left out by the socket's filter (`Sockets::open`).
    let mut bufs: Vec<Vec<u8>> = (0..RX_MERGED_BATCH)
        .map(|_| vec![0u8; VNET_HDR_LEN + MAX_PACKET])
        .collect();
    // Per packet: its length, the length of its device's link-layer header.
    let mut meta: Vec<(usize, usize)> = Vec::with_capacity(RX_MERGED_BATCH);
    let mut out = CaptureOut::default();
    loop {
        meta.clear();
        let received = recv_batch::<LinkAddr>(fd, &mut bufs, 0, None, |m| {
            // Ethernet-framed devices (loopback too); IP devices (TUN, a modem's raw IP,
            // PPP) have no header.
            let link = match m.address.map(|a| a.hatype()) {
                Some(nix::libc::ARPHRD_ETHER | nix::libc::ARPHRD_LOOPBACK) => 14,
                _ => 0,
            };
            meta.push((m.bytes, link));
        });
        if let Err(e) = received {
            warn!(error = %e, "packet socket receive failed; merged tunnel packets are lost");
            return;
        }
        let table = peers.refresh();
        let mut clock = BatchClock::new();
        for (buf, &(n, link)) in bufs.iter_mut().zip(&meta) {
            captured_packet(
                &mut buf[..n],
                link,
                dev,
                table,
                &mut clock,
                counters,
                &mut out,
            );
        }
        out.end_batch(dev, counters);
    }
}

/// What the packet socket's reader keeps between packets: the coalescer of unmerged TCP
/// packets, and the buffers a merged packet is cut into for a device without offloads.
#[derive(Default)]
pub(super) struct CaptureOut {
    sink: RxSink,
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
}

impl CaptureOut {
    /// Writes what the coalescer gathered: at the end of every batch.
    pub(super) fn end_batch<B: Backend>(&mut self, dev: &B, counters: &Counters) {
        self.sink.end_batch(dev, counters);
    }
}

/// One tunnel packet as the packet socket reads it: the virtio-net header, `link` octets
/// of link-layer header, the outer packet. The header's offsets count from the link-layer
/// header.
pub(super) fn captured_packet<B: Backend>(
    frame: &mut [u8],
    link: usize,
    dev: &B,
    table: &Snapshot,
    clock: &mut BatchClock,
    counters: &Counters,
    out: &mut CaptureOut,
) {
    let start = VNET_HDR_LEN + link;
    let Some(h) = VnetHdr::parse(frame).filter(|_| frame.len() > start) else {
        Counters::inc(&counters.drop_malformed);
        return;
    };
    let packet = &mut frame[start..];
    let (d, ecn_drop) = match decapsulate(packet) {
        Ok(DecapOutcome::Forward(d)) => (d, false),
        Ok(DecapOutcome::Drop(d)) => (d, true),
        Err(_) => return Counters::inc(&counters.drop_malformed),
    };
    let (remote, local) = match d.outer {
        Encapsulation::Ipv6 { src_addr, dst_addr } => (Remote::V6(src_addr), IpAddr::V6(dst_addr)),
        Encapsulation::Ipv4 { src_addr, dst_addr } => (Remote::V4(src_addr), IpAddr::V4(dst_addr)),
        // The filter takes no UDP: the UDP socket reads its own merged datagrams.
        Encapsulation::Udp4 { .. } => return Counters::inc(&counters.drop_malformed),
    };
    // Tunnel packets the node forwards (a host's own tunnel, behind the MR or beside the
    // HA) are the kernel's, whatever they carry.
    if !table.is_local_end(local) {
        return;
    }
    if ecn_drop {
        return Counters::inc(&counters.drop_ecn);
    }
    let inner = d.inner_range;
    // The packet socket sees packets to any of our addresses, and before the kernel data
    // plane's decapsulation when it routes through its pair: only our end of the very
    // binding's tunnel is ours to decapsulate.
    if let Some((src, _)) = addresses(&packet[inner.clone()])
        && let Ok(p) = table.rx_check_at(remote, Some(local), src, clock)
        && (p.local() != local || p.kernel_rx)
    {
        return;
    }
    // A merged packet's inner virtio-net header; `None` for an unmerged one.
    let gso = if h.gso_type & !GSO_ECN == GSO_NONE {
        None
    } else {
        let Some(gso) = inner_gso(&h, &packet[inner.clone()], link + inner.start) else {
            debug!(
                ?h,
                "merged tunnel packet that is no TCP or UDP super-packet dropped"
            );
            return Counters::inc(&counters.drop_malformed);
        };
        Some(gso)
    };
    // A UDP super-packet's datagrams are admitted one by one once cut: a duplicated flow's
    // copies (RFC 5648 paths) are told apart per datagram, however each path's card
    // happened to merge them.
    let udp = gso.is_some_and(|g| g.gso_type == GSO_UDP_L4);
    let mut admitted =
        |inner: &[u8]| admit(inner, remote, Some(local), None, table, clock, counters);
    if !udp && !admitted(&packet[inner.clone()]) {
        return;
    }
    let Some(gso) = gso else {
        // An unmerged TCP packet. Its checksum is partial when it comes from this host
        // (a veth pair): finished here, as a card would before the wire.
        if h.flags & F_NEEDS_CSUM != 0 {
            let at = link + inner.start;
            let hdr = VnetHdr {
                csum_start: h.csum_start.wrapping_sub(at as u16),
                ..h
            };
            if finish_checksum(&hdr, &mut packet[inner.clone()]).is_err() {
                return Counters::inc(&counters.drop_malformed);
            }
        }
        Counters::inc(&counters.tcp_capture_reads);
        let inner = start + inner.start..start + inner.end;
        return out.sink.take(frame, inner, dev, counters);
    };
    Counters::inc(&counters.merged_reads);
    // What the coalescer gathered came first.
    out.sink.end_batch(dev, counters);
    let payload = inner.len() - usize::from(gso.hdr_len);
    let count = payload.div_ceil(usize::from(gso.gso_size)).max(1) as u64;
    // UDP super-packets are cut here whatever the device: TUN takes UDP segmentation
    // (`VIRTIO_NET_HDR_GSO_UDP_L4`) only from Linux 6.2 on.
    if dev.offload() && !udp {
        // The device finishes the checksum from the pseudo-header's sum; `rx-gro-list`
        // left the first segment's whole checksum there.
        if h.flags & F_NEEDS_CSUM == 0
            && partial_checksum(&gso, &mut packet[inner.clone()]).is_err()
        {
            return Counters::inc(&counters.drop_malformed);
        }
        // The inner packet's own virtio-net header, in the octets in front of it.
        let at = link + inner.start;
        gso.write(&mut frame[at..at + VNET_HDR_LEN]);
        let bytes = inner.len() as u64;
        write_dev(dev, &frame[at..start + inner.end], count, bytes, counters);
        return;
    }
    let CaptureOut {
        bufs: segments,
        lens,
        ..
    } = out;
    while segments.len() < count as usize {
        segments.push(vec![0u8; SEGMENT_BUF]);
    }
    // A device with offloads reads a virtio-net header first: all zero, nothing to do.
    let pad = if dev.offload() { VNET_HDR_LEN } else { 0 };
    let cut = {
        let mut it = segments.iter_mut();
        segment(
            &gso,
            &packet[inner],
            |_| match it.next() {
                Some(v) => {
                    v[..pad].fill(0);
                    &mut v[pad..]
                }
                None => &mut [],
            },
            lens,
        )
    };
    if cut.is_err() {
        return Counters::inc(&counters.drop_malformed);
    }
    for (seg, &len) in segments.iter().zip(lens.iter()) {
        if !udp || admitted(&seg[pad..pad + len]) {
            write_dev(dev, &seg[..pad + len], 1, len as u64, counters);
        }
    }
}

/// The virtio-net header of a merged tunnel packet's inner packet (at octet `start` of
/// what the card's header counts from): a TCP super-packet of the version the card's GRO
/// named, or a UDP one (GRO merges those when the operator turns on
/// `rx-udp-gro-forwarding` or `rx-gro-list`; cut and checksummed whole by [`segment`]);
/// `None` for anything else. The checksum is partial at the transport header when the
/// card's header says so (GRO summed the payloads); `rx-gro-list` keeps each segment's
/// own checksum instead, and says nothing of where the header is.
fn inner_gso(h: &VnetHdr, inner: &[u8], start: usize) -> Option<VnetHdr> {
    let v4 = IpVersion::of(inner).ok()? == IpVersion::V4;
    let (proto, csum_offset) = match h.gso_type & !GSO_ECN {
        GSO_TCPV4 if v4 => (IPPROTO_TCP, 16),
        GSO_TCPV6 if !v4 => (IPPROTO_TCP, 16),
        GSO_UDP_L4 => (IPPROTO_UDP, 6),
        _ => return None,
    };
    if h.gso_size == 0 {
        return None;
    }
    let l4 = if proto == IPPROTO_TCP && h.flags & F_NEEDS_CSUM != 0 {
        if h.csum_offset != 16 {
            return None;
        }
        usize::from(h.csum_start).checked_sub(start)?
    } else {
        ip_header_len(inner, v4, proto).ok()?
    };
    let l4_len = if proto == IPPROTO_TCP {
        usize::from(*inner.get(l4 + 12)? >> 4) * 4
    } else {
        8
    };
    if (proto == IPPROTO_TCP && l4_len < 20) || inner.len() < l4 + l4_len {
        return None;
    }
    Some(VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: h.gso_type,
        hdr_len: (l4 + l4_len) as u16,
        gso_size: h.gso_size,
        csum_start: l4 as u16,
        csum_offset,
    })
}

/// Datagrams taken per `recvmmsg` on the IPv4 tunnel sockets: UDP (behind NATs, the
/// common IPv4 case) as many as on IPv6, raw IP in IPv4 fewer (each buffer is 64 KiB).
const RX4_BATCH: usize = 8;

pub(super) fn rx4_loop<B: Backend>(
    sock: &Socket,
    dev: &B,
    peers: &mut PeerReader,
    counters: &Counters,
) {
    let mut bufs: Vec<Vec<u8>> = (0..RX4_BATCH).map(|_| vec![0u8; MAX_PACKET]).collect();
    let mut lens: Vec<(usize, Option<u64>)> = Vec::with_capacity(RX4_BATCH);
    let mut sink = RxSink::default();
    loop {
        lens.clear();
        // Raw IPv4 sockets deliver the IP header: proto's decapsulate checks it whole. The
        // outer header (at least 20 octets) leaves room for the virtio-net header.
        let received = recv_batch::<SockaddrIn>(
            sock.as_raw_fd(),
            &mut bufs,
            0,
            Some(nix::cmsg_space!(nix::libc::timespec)),
            |m| {
                let at = m.cmsgs().into_iter().flatten().find_map(|c| match c {
                    ControlMessageOwned::ScmTimestampns(t) => Some(timespec_ns(&t)),
                    _ => None,
                });
                lens.push((m.bytes, at));
            },
        );
        if let Err(e) = received {
            warn!(error = %e, "raw IPv4 receive failed; path out of service");
            return;
        }
        let table = peers.refresh();
        let mut clock = BatchClock::new();
        for (buf, &(n, at)) in bufs.iter_mut().zip(&lens) {
            match decapsulate(&mut buf[..n]) {
                Ok(DecapOutcome::Forward(d)) => {
                    let Encapsulation::Ipv4 { src_addr, dst_addr } = d.outer else {
                        Counters::inc(&counters.drop_malformed);
                        continue;
                    };
                    let inner = d.inner_range;
                    if admit(
                        &buf[inner.clone()],
                        Remote::V4(src_addr),
                        // Which of our care-of addresses: several may share one far end.
                        Some(IpAddr::V4(dst_addr)),
                        at,
                        table,
                        &mut clock,
                        counters,
                    ) {
                        sink.take(buf, inner, dev, counters);
                    }
                }
                Ok(DecapOutcome::Drop(_)) => Counters::inc(&counters.drop_ecn),
                Err(_) => Counters::inc(&counters.drop_malformed),
            }
        }
        sink.end_batch(dev, counters);
    }
}

pub(super) fn udp_loop<B: Backend>(
    fd: RawFd,
    dev: &B,
    peers: &mut PeerReader,
    counters: &Counters,
    relay: Option<&MhRelay>,
) {
    let mut bufs: Vec<Vec<u8>> = (0..RX_BATCH)
        .map(|_| vec![0u8; VNET_HDR_LEN + MAX_PACKET])
        .collect();
    // Per datagram: its length, the sender, the outer TOS, our address it came to, with
    // UDP receive coalescing (`UDP_GRO`) the size of the datagrams it joins (0: one), and
    // the kernel's time of arrival.
    type Meta = (
        usize,
        Option<SocketAddrV4>,
        u8,
        SocketAddrV4,
        usize,
        Option<u64>,
    );
    let mut meta: Vec<Meta> = Vec::with_capacity(RX_BATCH);
    let port = socket::getsockname::<SockaddrIn>(fd).map_or(0, |a| a.port());
    let mut sink = RxSink::default();
    loop {
        meta.clear();
        let received = recv_batch::<SockaddrIn>(
            fd,
            &mut bufs,
            VNET_HDR_LEN,
            Some(nix::cmsg_space!(
                u8,
                nix::libc::in_pktinfo,
                i32,
                nix::libc::timespec
            )),
            |m| {
                let (mut tos, mut local, mut joined, mut at) = (0, Ipv4Addr::UNSPECIFIED, 0, None);
                for c in m.cmsgs().into_iter().flatten() {
                    match c {
                        ControlMessageOwned::Ipv4Tos(t) => tos = t,
                        ControlMessageOwned::Ipv4PacketInfo(i) => {
                            local = Ipv4Addr::from(u32::from_be(i.ipi_addr.s_addr))
                        }
                        ControlMessageOwned::UdpGroSegments(size) => {
                            joined = usize::try_from(size).unwrap_or(0)
                        }
                        ControlMessageOwned::ScmTimestampns(t) => at = Some(timespec_ns(&t)),
                        _ => {}
                    }
                }
                meta.push((
                    m.bytes,
                    m.address.map(|a| SocketAddrV4::new(a.ip(), a.port())),
                    tos,
                    SocketAddrV4::new(local, port),
                    joined,
                    at,
                ));
            },
        );
        if let Err(e) = received {
            warn!(error = %e, "UDP receive failed; path out of service");
            return;
        }
        let table = peers.refresh();
        let mut clock = BatchClock::new();
        for (buf, &(n, from, tos, local, joined, at)) in bufs.iter_mut().zip(&meta) {
            let Some(from) = from else { continue };
            // A coalesced read holds datagrams of `joined` octets side by side (the last
            // may be shorter), each one tunnel packet; the octets in front of each are the
            // one before's, taken already when the virtio-net header overwrites them.
            let size = if joined == 0 { n } else { joined };
            if size < n {
                Counters::inc(&counters.udp_gro_reads);
            }
            for offset in (0..n).step_by(size.max(1)) {
                let datagram = VNET_HDR_LEN + offset..VNET_HDR_LEN + n.min(offset + size);
                let path = UdpPath {
                    from,
                    local,
                    tos,
                    at,
                };
                udp_datagram(
                    buf, datagram, path, relay, table, &mut clock, &mut sink, dev, counters,
                );
            }
        }
        sink.end_batch(dev, counters);
    }
}

/// Where a UDP datagram came from and when.
#[derive(Debug, Clone, Copy)]
struct UdpPath {
    /// The sender (after any NAT).
    from: SocketAddrV4,
    /// Our address and port it came to.
    local: SocketAddrV4,
    /// The outer TOS.
    tos: u8,
    /// The kernel's time of arrival (ns), when it said.
    at: Option<u64>,
}

/// A kernel time (`SO_TIMESTAMPNS`) in ns.
fn timespec_ns(t: &nix::sys::time::TimeSpec) -> u64 {
    (t.tv_sec() as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec() as u64)
}

/// One tunnel packet of the UDP socket, `buf[datagram]`: a Mobility Header relayed to
/// the bus, anything else decapsulated and put in `sink`.
#[allow(clippy::too_many_arguments, reason = "the receive loop's state, lent")]
fn udp_datagram<B: Backend>(
    buf: &mut [u8],
    datagram: Range<usize>,
    UdpPath {
        from,
        local,
        tos,
        at,
    }: UdpPath,
    relay: Option<&MhRelay>,
    table: &Snapshot,
    clock: &mut BatchClock,
    sink: &mut RxSink,
    dev: &B,
    counters: &Counters,
) {
    let start = datagram.start;
    let n = datagram.len();
    let inner = &mut buf[datagram];
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
        return;
    }
    let len = match decapsulate_inner(proto::encap::Ecn::from_bits(tos), inner) {
        Ok(DecapOutcome::Forward(info)) => info.len,
        Ok(DecapOutcome::Drop(_)) => {
            Counters::inc(&counters.drop_ecn);
            return;
        }
        Err(_) => {
            Counters::inc(&counters.drop_malformed);
            return;
        }
    };
    let inner = start..start + len;
    if admit(
        &buf[inner.clone()],
        Remote::Udp(from),
        // Which of our care-of addresses (the MR's IPv4 uplinks towards one home agent,
        // RFC 5648): the packet's destination, as the kernel saw it after any NAT.
        (!local.ip().is_unspecified()).then_some(IpAddr::V4(*local.ip())),
        at,
        table,
        clock,
        counters,
    ) {
        sink.take(buf, inner, dev, counters);
    }
}

/// How often each path's probe is a pair ([`super::pair_probe`]): the capacity measure,
/// two probes of [`super::PAIR_LEN`] octets per path and direction, about 19 kbit/s.
const PAIR_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Path liveness among several care-of addresses (issue 15): every `interval`, a
/// [`super::path_probe`] through each path of every home address registered with more than
/// one, so the other end hears every path even when no flow of its own takes it; and a line
/// in the log when a path falls silent for longer than the snapshot's liveness limit (it
/// is then out of use, [`Snapshot::tx_lookup`]) or speaks again. Nothing is re-registered:
/// the binding stays, only the choice of path changes.
pub(super) fn probe_loop(
    socks: &Sockets,
    peers: &mut PeerReader,
    counters: &Counters,
    tx: TxConfig,
    interval: std::time::Duration,
) {
    let mut buf = [0u8; HEADROOM + super::PAIR_LEN];
    let mut up: std::collections::HashMap<(Ipv6Addr, Option<u16>), bool> =
        std::collections::HashMap::new();
    // Every PAIR_EVERY-th round each probe is a pair (issue 15, weights by capacity).
    let pair_every = (PAIR_INTERVAL.as_millis() / interval.as_millis().max(1)).max(1) as u64;
    let mut round: u64 = 0;
    loop {
        std::thread::sleep(interval);
        round = round.wrapping_add(1);
        let pairs = round.is_multiple_of(pair_every);
        let pair_id = (round / pair_every) as u32;
        let table = peers.refresh();
        let now = std::time::Instant::now();
        let now_ns = mono_ns(now);
        let mut seen = std::collections::HashSet::new();
        for p in table.multipath_peers() {
            let b = &p.binding;
            let (src, dst) = match table.mode() {
                crate::routes::Mode::HomeAgent => (b.ha, b.hoa),
                crate::routes::Mode::MobileRouter => (b.hoa, b.ha),
            };
            let params = EncapParams {
                hop_limit: tx.hop_limit,
                flow_label: flow_label(IpAddr::V6(src), IpAddr::V6(dst)),
                decrement_inner: false,
                ..EncapParams::default()
            };
            let (sock, to) = route_out(socks, &p.encap);
            let egress = Egress::outer(&p.encap, &to, b.coa_ifindex.filter(|&i| i != 0));
            // A pair leaves back to back, carrying what we measured of the other end's
            // pairs through this path; else one bare probe.
            let (_, from_kbps) = p.counters.0.capacity.read();
            let probes: &[Option<u8>] = if pairs { &[Some(0), Some(1)] } else { &[None] };
            for &position in probes {
                let len = match position {
                    Some(position) => {
                        let pair = super::PairProbe {
                            id: pair_id,
                            position,
                            report_kbps: from_kbps,
                        };
                        buf[HEADROOM..].copy_from_slice(&super::pair_probe(src, dst, pair));
                        super::PAIR_LEN
                    }
                    None => {
                        buf[HEADROOM..HEADROOM + 40].copy_from_slice(&super::path_probe(src, dst));
                        40
                    }
                };
                let frame = &mut buf[..HEADROOM + len];
                match proto::encap::encapsulate(&p.encap, &params, frame, HEADROOM) {
                    Ok(EncapOutcome::Encapsulated(r)) => {
                        match send_one(sock, &frame[r], to, egress) {
                            Ok(_) => Counters::inc(&counters.probes_tx),
                            Err(e) => {
                                Counters::inc(&counters.io_errors);
                                debug!(error = %e, coa = %b.coa, "path probe not sent");
                            }
                        }
                    }
                    _ => Counters::inc(&counters.drop_malformed),
                }
            }
            let Some(limit) = table.liveness() else {
                continue;
            };
            let key = (b.hoa, b.binding_id);
            seen.insert(key);
            let alive = p.counters.0.alive(now_ns, limit);
            let silent_ms =
                now_ns.saturating_sub(p.counters.0.heard.0.load(Ordering::Relaxed)) / 1_000_000;
            match (up.insert(key, alive), alive) {
                (Some(true) | None, false) => {
                    warn!(hoa = %b.hoa, bid = ?b.binding_id, coa = %b.coa,
                    silent_ms, "path silent: out of use until it is heard again")
                }
                (Some(false), true) => info!(hoa = %b.hoa, bid = ?b.binding_id, coa = %b.coa,
                    "path heard again: back in use"),
                _ => {}
            }
        }
        up.retain(|k, _| seen.contains(k));
    }
}
