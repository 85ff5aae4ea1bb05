//! ICMP errors about tunnelled packets (RFC 2473 §8): a router on the path between the
//! tunnel's ends cannot deliver a tunnel packet and reports it to the tunnel entry point
//! (this node: the home agent for packets to a mobile network, the mobile router for
//! packets from it). The error quotes the *tunnel* packet; the original sender would never
//! hear of it. The entry point reports it to the original sender instead, RFC 2473 §8.1:
//!
//! | error about the tunnel packet          | reported to the original IPv6 sender   | to an IPv4 sender                        |
//! | -------------------------------------- | -------------------------------------- | ---------------------------------------- |
//! | Packet Too Big (MTU m)                 | Packet Too Big, MTU m - 40 (min. 1280) | fragmentation needed, m - 40, if DF set  |
//! | Time Exceeded, Destination Unreachable, Parameter Problem | Destination Unreachable, code 3 (address unreachable) | Destination Unreachable, host unreachable |
//!
//! The quoted inner packet is the report's invoking packet. Only errors about packets this
//! node would tunnel to that very peer are relayed (the quoted outer destination is the
//! peer's tunnel end and the peer table maps the quoted inner addresses to it): a forged
//! error cannot make us send ICMP to anyone we do not tunnel for (RFC 5927 §4). No error is
//! reported about an ICMP error, nor to a multicast, unspecified or link-scope source (RFC
//! 4443 §2.4(e), RFC 1122 §3.2.2), and reports are rate-limited (RFC 4443 §2.4(f)).
//!
//! With an IPv4 outer header (IP in IPv4, or UDP as RFC 5555 behind a NAT) the error is
//! an ICMPv4 one ([`report_v4`]): "fragmentation needed" with next-hop MTU m becomes the
//! same reports with m minus the outer headers (20, or 28 with UDP). A router quotes as
//! much of the tunnel packet as fits in 576 octets (RFC 1812 §4.3.2.3), enough to find the
//! inner sender; a router that quotes only RFC 792's 8 octets past the outer header leaves
//! too little, and its errors are counted and not relayed. Without that relay, an IPv4
//! tunnel's narrow link silently dropped every packet larger than it (the outer header
//! carries DF).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::socket::MsgFlags;
use proto::ext::{IPV6_HEADER_LEN, Ipv6Header};
use proto::icmpv6::{ErrorMessage, Icmpv6Packet, Icmpv6Repr, Icmpv6Type, MIN_MTU};
use proto::rate::TokenBucket;
use proto::{IPPROTO_ICMPV6, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_UDP, icmpv4};
use socket2::SockFilter;
use tracing::{debug, warn};

use super::peers::{PeerReader, Remote, Snapshot};
use super::{Counters, MAX_PACKET, Sockets, addresses, is_link_scope};

/// ICMPv6 Destination Unreachable code 3 (RFC 4443 §3.1).
const CODE_ADDRESS_UNREACHABLE: u8 = 3;
/// The tunnel header this node puts in front (IPv6, RFC 2473 §5), which a Packet Too Big's
/// MTU must leave room for.
const TUNNEL_HEADER: u32 = IPV6_HEADER_LEN as u32;
/// An IPv4 header without options, and the UDP header after it (RFC 5555 §4.1).
const IPV4_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;
/// The smallest IPv4 MTU a router may report (RFC 791: every host takes 68 octets).
const MIN_MTU_V4: u32 = 68;

/// The report for the original sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report<'a> {
    /// An ICMPv6 error to an IPv6 sender.
    V6 {
        /// The original packet's source.
        to: Ipv6Addr,
        /// The message (checksum left to the kernel's raw ICMPv6 socket).
        message: Icmpv6Repr<'a>,
    },
    /// An ICMPv4 error to an IPv4 sender.
    V4 {
        /// The original datagram's source.
        to: Ipv4Addr,
        /// The message.
        message: icmpv4::ErrorMessage<'a>,
    },
}

/// Why a received ICMPv6 message is not reported on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRelayed {
    /// Not an ICMPv6 error, or not about a tunnel packet (another next header quoted).
    NotTunnelError,
    /// The quote is too short to hold the outer and inner headers.
    Truncated,
    /// No live binding has this tunnel end and these inner addresses (forged, stale, or
    /// not ours).
    NoBinding,
    /// The original packet is an ICMP error, or its source cannot be answered.
    NotReportable,
    /// A Packet Too Big about an IPv4 datagram that may be fragmented (DF clear): the
    /// sender needs no report; the path MTU of the tunnel is the kernel's business.
    Fragmentable,
}

/// What to report, and to whom, about the ICMPv6 error `icmp` (from the ICMPv6 header on,
/// as a raw ICMPv6 socket delivers it) received by this tunnel end.
///
/// # Errors
/// [`NotRelayed`]: why nothing is reported.
pub fn report<'a>(icmp: &'a [u8], peers: &Snapshot) -> Result<Report<'a>, NotRelayed> {
    let Ok(Icmpv6Repr::Error(error)) = Icmpv6Repr::parse_bytes(icmp) else {
        return Err(NotRelayed::NotTunnelError);
    };
    // A quote is cut (RFC 4443 §2.4(c)): the outer header's Payload Length says more than
    // is there, so no length check beyond the header itself.
    if error.invoking.len() < IPV6_HEADER_LEN {
        return Err(NotRelayed::Truncated);
    }
    let outer = Ipv6Header::new_unchecked(error.invoking);
    if !matches!(outer.next_header(), IPPROTO_IPV6 | IPPROTO_IPIP) {
        return Err(NotRelayed::NotTunnelError);
    }
    let inner = &error.invoking[IPV6_HEADER_LEN..];
    let too_big = (error.msg_type == Icmpv6Type::PacketTooBig)
        .then(|| error.param.saturating_sub(TUNNEL_HEADER));
    report_inner(inner, Remote::V6(outer.dst_addr()), too_big, peers)
}

/// What to report, and to whom, about the ICMPv4 error `icmp` (from the ICMPv4 header on)
/// received by this tunnel end: [`report`] for IPv4 outer headers.
///
/// # Errors
/// [`NotRelayed`]: why nothing is reported.
pub fn report_v4<'a>(icmp: &'a [u8], peers: &Snapshot) -> Result<Report<'a>, NotRelayed> {
    let error = icmpv4::ErrorMessage::parse(icmp).map_err(|_| NotRelayed::NotTunnelError)?;
    let quote = error.invoking;
    if quote.len() < IPV4_HEADER_LEN || quote[0] >> 4 != 4 {
        return Err(NotRelayed::Truncated);
    }
    let ihl = usize::from(quote[0] & 0x0f) * 4;
    let dst = Ipv4Addr::new(quote[16], quote[17], quote[18], quote[19]);
    let (tunnel_end, outer_len) = match quote[9] {
        IPPROTO_IPIP | IPPROTO_IPV6 => (Remote::V4(dst), ihl),
        IPPROTO_UDP => {
            let port = quote.get(ihl + 2..ihl + 4).ok_or(NotRelayed::Truncated)?;
            let port = u16::from_be_bytes([port[0], port[1]]);
            (
                Remote::Udp(SocketAddrV4::new(dst, port)),
                ihl + UDP_HEADER_LEN,
            )
        }
        _ => return Err(NotRelayed::NotTunnelError),
    };
    let inner = quote.get(outer_len..).ok_or(NotRelayed::Truncated)?;
    let too_big = (error.msg_type == icmpv4::DESTINATION_UNREACHABLE
        && error.code == icmpv4::CODE_FRAGMENTATION_NEEDED)
        .then(|| {
            // RFC 1191 §4: routers before it send 0; then the plateau below the tunnel
            // packet's length (§7).
            let total = u16::from_be_bytes([quote[2], quote[3]]);
            let mtu = match (error.rest & 0xffff) as u16 {
                0 => plateau_below(total),
                m => m,
            };
            u32::from(mtu).saturating_sub(outer_len as u32)
        });
    report_inner(inner, tunnel_end, too_big, peers)
}

/// RFC 1191 §7's table of common MTUs: the largest below `len` (68 at least).
fn plateau_below(len: u16) -> u16 {
    const PLATEAUS: [u16; 10] = [32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];
    PLATEAUS.into_iter().find(|&p| p < len).unwrap_or(68)
}

/// The report about the quoted `inner` packet of a tunnel packet to `tunnel_end`: a
/// Packet Too Big / fragmentation needed with the inner MTU `too_big`, else Destination
/// Unreachable.
fn report_inner<'a>(
    inner: &'a [u8],
    tunnel_end: Remote,
    too_big: Option<u32>,
    peers: &Snapshot,
) -> Result<Report<'a>, NotRelayed> {
    let (src, dst) = addresses(inner).ok_or(NotRelayed::Truncated)?;
    // Any of the destination's care-of addresses (RFC 5648): the quote says which one
    // the packet took.
    if !peers
        .tx_candidates(src, dst)
        .any(|p| p.remote == tunnel_end)
    {
        return Err(NotRelayed::NoBinding);
    }
    if is_link_scope(src) || src_is_multicast(src) || is_icmp_error(inner) {
        return Err(NotRelayed::NotReportable);
    }
    match src {
        IpAddr::V6(to) => {
            let message = if let Some(inner_mtu) = too_big {
                ErrorMessage {
                    msg_type: Icmpv6Type::PacketTooBig,
                    code: 0,
                    param: inner_mtu.max(MIN_MTU as u32),
                    invoking: inner,
                }
            } else {
                ErrorMessage {
                    msg_type: Icmpv6Type::DestinationUnreachable,
                    code: CODE_ADDRESS_UNREACHABLE,
                    param: 0,
                    invoking: inner,
                }
            };
            Ok(Report::V6 {
                to,
                message: Icmpv6Repr::Error(message),
            })
        }
        IpAddr::V4(to) => {
            let message = if let Some(inner_mtu) = too_big {
                // RFC 1191: only a datagram that may not be fragmented.
                if inner[6] & 0x40 == 0 {
                    return Err(NotRelayed::Fragmentable);
                }
                let mtu = u16::try_from(inner_mtu.max(MIN_MTU_V4)).unwrap_or(u16::MAX);
                icmpv4::ErrorMessage::fragmentation_needed(mtu, inner)
            } else {
                icmpv4::ErrorMessage::host_unreachable(inner)
            };
            Ok(Report::V4 { to, message })
        }
    }
}

fn src_is_multicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V6(a) => a.is_multicast(),
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
    }
}

/// Whether a packet is an ICMP error (no error is reported about one), or a fragment other
/// than the first of an IPv4 datagram (RFC 1122 §3.2.2). IPv6 extension headers before
/// ICMPv6 are not walked: such a packet is reported on, as RFC 4443 allows.
fn is_icmp_error(packet: &[u8]) -> bool {
    match packet.first().map(|b| b >> 4) {
        Some(6) => {
            packet.get(6) == Some(&IPPROTO_ICMPV6)
                && packet
                    .get(IPV6_HEADER_LEN)
                    .is_some_and(|&t| Icmpv6Type::from(t).is_error())
        }
        Some(4) => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let fragment_offset = packet
                .get(6..8)
                .map_or(0, |f| u16::from_be_bytes([f[0], f[1]]) & 0x1fff);
            fragment_offset != 0
                || (packet.get(9) == Some(&1)
                    && packet.get(ihl).is_some_and(|&t| icmpv4::is_error(t)))
        }
        _ => true,
    }
}

/// Reports sent per second at most (and in a burst): RFC 4443 §2.4(f) asks for a limit;
/// Packet Too Big reports are what keeps a sender's path MTU right, so the limit is
/// generous.
pub const REPORT_RATE: u32 = 100;

/// The classic BPF filter of the ICMPv6 socket: ICMPv6 errors only (types 1 to 4), so the
/// thread does not wake for neighbour discovery or echo. On a raw IPv6 socket the filter
/// sees the ICMPv6 message from its first octet.
pub fn icmp6_filter() -> Vec<SockFilter> {
    const LD_B_ABS: u16 = 0x30;
    const JGT_K: u16 = 0x25;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    vec![
        SockFilter::new(LD_B_ABS, 0, 0, 0),
        SockFilter::new(JEQ_K, 2, 0, 0),
        SockFilter::new(JGT_K, 1, 0, 4),
        SockFilter::new(RET_K, 0, 0, 0x4_0000),
        SockFilter::new(RET_K, 0, 0, 0),
    ]
}

/// The classic BPF filter of the raw IPv4 ICMP socket: errors a router sends about a
/// datagram (Destination Unreachable, Time Exceeded, Parameter Problem), so the thread
/// does not wake for echoes. A raw IPv4 socket's filter sees the IPv4 header first.
pub fn icmp4_filter() -> Vec<SockFilter> {
    const LDX_B_MSH: u16 = 0xb1;
    const LD_B_IND: u16 = 0x50;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    vec![
        // x = the IPv4 header's length; a = the ICMP type.
        SockFilter::new(LDX_B_MSH, 0, 0, 0),
        SockFilter::new(LD_B_IND, 0, 0, 0),
        SockFilter::new(JEQ_K, 3, 0, u32::from(icmpv4::DESTINATION_UNREACHABLE)),
        SockFilter::new(JEQ_K, 2, 0, u32::from(icmpv4::TIME_EXCEEDED)),
        SockFilter::new(JEQ_K, 1, 0, u32::from(icmpv4::PARAMETER_PROBLEM)),
        SockFilter::new(RET_K, 0, 0, 0),
        SockFilter::new(RET_K, 0, 0, 0x4_0000),
    ]
}

/// The relaying thread of one family's ICMP socket (`v4`: the ICMPv4 one, about IPv4
/// tunnel packets): reads errors, reports on those about our tunnel packets.
pub(super) fn icmp_loop(v4: bool, socks: &Sockets, peers: &mut PeerReader, counters: &Counters) {
    let (Some(icmp6), Some(icmp4)) = (&socks.icmp6, &socks.icmp4) else {
        return;
    };
    let sock = if v4 { icmp4 } else { icmp6 };
    let mut buf = vec![0u8; MAX_PACKET];
    let mut out = vec![0u8; MIN_MTU];
    let mut bucket = TokenBucket::new(REPORT_RATE);
    loop {
        let n = match nix::sys::socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                warn!(error = %e, v4, "ICMP receive failed; tunnel errors are no longer relayed");
                return;
            }
        };
        let snapshot = peers.refresh();
        let report = if v4 {
            // A raw IPv4 socket hands over the IPv4 header too.
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            buf[..n]
                .get(ihl..)
                .map_or(Err(NotRelayed::Truncated), |m| report_v4(m, snapshot))
        } else {
            report(&buf[..n], snapshot)
        };
        let report = match report {
            Ok(r) => r,
            Err(why) => {
                if why != NotRelayed::NotTunnelError {
                    Counters::inc(&counters.icmp_not_relayed);
                    debug!(?why, v4, "ICMP error about a tunnel packet not relayed");
                }
                continue;
            }
        };
        if !bucket.take(Instant::now()) {
            Counters::inc(&counters.icmp_limited);
            continue;
        }
        let sent = match report {
            Report::V6 { to, message } => {
                let len = message.buffer_len();
                message
                    .emit(&mut Icmpv6Packet::new_unchecked(&mut out[..len]))
                    .map_err(|e| io::Error::other(e.to_string()))
                    .and_then(|()| {
                        icmp6.send_to(&out[..len], &SocketAddrV6::new(to, 0, 0, 0).into())
                    })
            }
            Report::V4 { to, message } => message
                .emit(&mut out)
                .map_err(|e| io::Error::other(e.to_string()))
                .and_then(|len| icmp4.send_to(&out[..len], &SocketAddrV4::new(to, 0).into())),
        };
        match sent {
            Ok(_) => Counters::inc(&counters.icmp_relayed),
            Err(e) => {
                Counters::inc(&counters.io_errors);
                debug!(error = %e, "ICMP report not sent");
            }
        }
    }
}

#[cfg(test)]
mod tests;
