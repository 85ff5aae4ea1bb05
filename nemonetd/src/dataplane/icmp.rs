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
//! Outer IPv6 only: an ICMPv4 error about an IPv4-encapsulated packet quotes too little of
//! it (RFC 792: 8 octets past the outer header) to find the inner sender.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::socket::MsgFlags;
use proto::ext::{IPV6_HEADER_LEN, Ipv6Header};
use proto::icmpv6::{ErrorMessage, Icmpv6Packet, Icmpv6Repr, Icmpv6Type, MIN_MTU};
use proto::rate::TokenBucket;
use proto::{IPPROTO_ICMPV6, IPPROTO_IPIP, IPPROTO_IPV6, icmpv4};
use socket2::SockFilter;
use tracing::{debug, warn};

use super::peers::{PeerReader, Remote, Snapshot};
use super::{Counters, MAX_PACKET, Sockets, addresses, is_link_scope};

/// ICMPv6 Destination Unreachable code 3 (RFC 4443 §3.1).
const CODE_ADDRESS_UNREACHABLE: u8 = 3;
/// The tunnel header this node puts in front (IPv6, RFC 2473 §5), which a Packet Too Big's
/// MTU must leave room for.
const TUNNEL_HEADER: u32 = IPV6_HEADER_LEN as u32;
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
    let (src, dst) = addresses(inner).ok_or(NotRelayed::Truncated)?;
    let tunnel_end = Remote::V6(outer.dst_addr());
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
    let too_big = error.msg_type == Icmpv6Type::PacketTooBig;
    let inner_mtu = error.param.saturating_sub(TUNNEL_HEADER);
    match src {
        IpAddr::V6(to) => {
            let message = if too_big {
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
            let message = if too_big {
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

/// The filter of the raw IPv4 ICMP socket, which only sends: it must not queue what it
/// would receive (every ICMPv4 message to this host).
pub fn drop_all_filter() -> Vec<SockFilter> {
    vec![SockFilter::new(0x06, 0, 0, 0)]
}

/// The relaying thread: reads ICMPv6 errors, reports on those about our tunnel packets.
pub(super) fn icmp6_loop(socks: &Sockets, peers: &mut PeerReader, counters: &Counters) {
    let Some(icmp6) = &socks.icmp6 else { return };
    let mut buf = vec![0u8; MAX_PACKET];
    let mut out = vec![0u8; MIN_MTU];
    let mut bucket = TokenBucket::new(REPORT_RATE);
    loop {
        let n = match nix::sys::socket::recv(icmp6.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                warn!(error = %e, "ICMPv6 receive failed; tunnel errors are no longer relayed");
                return;
            }
        };
        let snapshot = peers.refresh();
        let report = match report(&buf[..n], snapshot) {
            Ok(r) => r,
            Err(why) => {
                if why != NotRelayed::NotTunnelError {
                    Counters::inc(&counters.icmp_not_relayed);
                    debug!(?why, "ICMPv6 error about a tunnel packet not relayed");
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
            Report::V4 { to, message } => match &socks.icmp4 {
                Some(icmp4) => message
                    .emit(&mut out)
                    .map_err(|e| io::Error::other(e.to_string()))
                    .and_then(|len| icmp4.send_to(&out[..len], &SocketAddrV4::new(to, 0).into())),
                None => continue,
            },
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
