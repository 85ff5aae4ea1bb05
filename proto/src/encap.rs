//! Tunnel encapsulation between mobile router and home agent: IPv6 or IPv4 inside IPv6
//! (RFC 2473), IPv4 (RFC 2003 / RFC 4213) or UDP/IPv4 (RFC 5555 §4.1, no TLV header), with
//! the forwarding step of RFC 2473 §3.1 and ECN per RFC 6040.
//!
//! Hot path: nothing here allocates, and each function passes over the packet at most once
//! (only the UDP checksum reads the whole inner packet).
//!
//! Sockets that write or strip the outer header themselves (UDP sockets, raw 4/41 sockets)
//! use [`forward_inner`] before sending and [`decapsulate_inner`] after receiving, with the
//! ECN/DSCP carried in `IP_TOS` / `IPV6_TCLASS` ancillary data.

use core::ops::Range;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ext::{
    IPV4_HEADER_LEN, IPV6_HEADER_LEN, Ipv4Header, Ipv4Repr, Ipv6Header, Ipv6Repr, UdpHeader,
    UdpRepr,
};
use crate::{Error, IPPROTO_DSTOPTS, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_UDP, Result, checksum};

pub use crate::ext::UDP_HEADER_LEN;
/// Outer hop limit / TTL a router uses by default (IANA default, RFC 3963 §5.5 has the MR use
/// the router default, docs/notes.md §9).
pub const DEFAULT_TUNNEL_HOP_LIMIT: u8 = 64;

/// Version of an IP packet, from its first nibble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpVersion {
    /// Reads the version nibble of `packet`, the way an RFC 5555 receiver tells the inner
    /// packet after a UDP header (docs/notes.md §11).
    pub fn of(packet: &[u8]) -> Result<IpVersion> {
        match packet.first().map(|b| b >> 4) {
            None => Err(Error::Truncated),
            Some(4) => Ok(IpVersion::V4),
            Some(6) => Ok(IpVersion::V6),
            Some(_) => Err(Error::Malformed("IP version")),
        }
    }

    /// Protocol number of this version when carried in IP: 4 or 41.
    pub const fn protocol(self) -> u8 {
        match self {
            IpVersion::V4 => IPPROTO_IPIP,
            IpVersion::V6 => IPPROTO_IPV6,
        }
    }
}

/// The ECN field (RFC 3168 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ecn {
    /// `00`: not ECN-capable.
    NotEct,
    /// `01`: ECT(1).
    Ect1,
    /// `10`: ECT(0).
    Ect0,
    /// `11`: congestion experienced.
    Ce,
}

impl Ecn {
    /// From the two low bits of a TOS / Traffic Class octet.
    pub const fn from_bits(bits: u8) -> Ecn {
        match bits & 0x03 {
            0 => Ecn::NotEct,
            1 => Ecn::Ect1,
            2 => Ecn::Ect0,
            _ => Ecn::Ce,
        }
    }

    /// The two-bit value.
    pub const fn bits(self) -> u8 {
        match self {
            Ecn::NotEct => 0,
            Ecn::Ect1 => 1,
            Ecn::Ect0 => 2,
            Ecn::Ce => 3,
        }
    }
}

/// Outer ECN on encapsulation, RFC 6040 §4.1 normal mode: a copy of the inner field
/// (CE included).
pub const fn ecn_encapsulate(inner: Ecn) -> Ecn {
    inner
}

/// Inner ECN after decapsulation, RFC 6040 §4.2 Figure 4; `None` means drop the packet
/// (CE on the outer header of a packet whose transport cannot be told about congestion).
pub const fn ecn_decapsulate(outer: Ecn, inner: Ecn) -> Option<Ecn> {
    match (inner, outer) {
        (Ecn::NotEct, Ecn::Ce) => None,
        (Ecn::NotEct, _) => Some(Ecn::NotEct),
        (Ecn::Ce, _) | (_, Ecn::Ce) => Some(Ecn::Ce),
        (Ecn::Ect0, Ecn::Ect1) => Some(Ecn::Ect1),
        (inner, _) => Some(inner),
    }
}

/// The outer header of a tunnel packet (RFC 5555 §5.1 formats, docs/notes.md §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encapsulation {
    /// Outer IPv6, next header 41 (inner IPv6) or 4 (inner IPv4).
    Ipv6 {
        /// Tunnel entry point.
        src_addr: Ipv6Addr,
        /// Tunnel exit point.
        dst_addr: Ipv6Addr,
    },
    /// Outer IPv4, protocol 41 or 4.
    Ipv4 {
        /// Tunnel entry point.
        src_addr: Ipv4Addr,
        /// Tunnel exit point.
        dst_addr: Ipv4Addr,
    },
    /// Outer IPv4 and UDP (NAT traversal or F flag); the inner packet follows the UDP header
    /// directly. The home agent's port is [`crate::DSMIP_UDP_PORT`].
    Udp4 {
        /// Tunnel entry point.
        src_addr: Ipv4Addr,
        /// Tunnel exit point.
        dst_addr: Ipv4Addr,
        /// UDP source port.
        src_port: u16,
        /// UDP destination port.
        dst_port: u16,
    },
}

impl Encapsulation {
    /// Octets put in front of the inner packet: 40, 20 or 28 (the MTU cost of the tunnel).
    pub const fn overhead(&self) -> usize {
        match self {
            Encapsulation::Ipv6 { .. } => IPV6_HEADER_LEN,
            Encapsulation::Ipv4 { .. } => IPV4_HEADER_LEN,
            Encapsulation::Udp4 { .. } => IPV4_HEADER_LEN + UDP_HEADER_LEN,
        }
    }
}

/// Tunnel-entry settings for [`encapsulate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncapParams {
    /// Outer Hop Limit / TTL (RFC 2473 §6.3: the tunnel's configured value).
    pub hop_limit: u8,
    /// Copy the inner DSCP to the outer header (RFC 2983 uniform model); otherwise 0.
    pub copy_dscp: bool,
    /// Outer IPv6 Flow Label (RFC 6438 suggests a hash of the inner flow); 0 = none.
    pub flow_label: u32,
    /// Outer IPv4 Identification: it must differ per packet, since a tunnel packet
    /// without DF may be fragmented on the way (RFC 6864 §4.1).
    pub ipv4_ident: u16,
    /// Compute the UDP checksum; `false` sends 0, which UDP over IPv4 permits (RFC 768).
    pub udp_checksum: bool,
    /// Decrement the inner Hop Limit / TTL as the forwarding step of RFC 2473 §3.1. Turn off
    /// when the packet was already forwarded (and decremented) by the kernel on its way to a
    /// TUN device, or when this node originated it.
    pub decrement_inner: bool,
}

impl Default for EncapParams {
    fn default() -> Self {
        EncapParams {
            hop_limit: DEFAULT_TUNNEL_HOP_LIMIT,
            copy_dscp: true,
            flow_label: 0,
            ipv4_ident: 0,
            udp_checksum: true,
            decrement_inner: true,
        }
    }
}

/// What [`forward_inner`] learned about the inner packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InnerPacket {
    /// IP version.
    pub version: IpVersion,
    /// Length per its own header (Payload Length + 40, or Total Length); shorter than the
    /// buffer when trailing octets were trimmed.
    pub len: usize,
    /// DSCP of the inner header.
    pub dscp: u8,
    /// ECN of the inner header (after decapsulation processing, for [`decapsulate_inner`]).
    pub ecn: Ecn,
    /// The packet may not be fragmented on the way: IPv4 with DF set, and every IPv6 one
    /// (routers never fragment IPv6).
    pub dont_frag: bool,
}

/// Result of the forwarding step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use]
pub enum ForwardOutcome {
    /// Ready to encapsulate.
    Forward(InnerPacket),
    /// Hop Limit / TTL would reach 0: send ICMPv6 Time Exceeded code 0 (RFC 4443 §3.3) or
    /// ICMP Time Exceeded code 0 (RFC 792). The packet is unchanged, ready to be quoted.
    HopLimitExceeded(IpVersion),
}

/// Result of [`encapsulate`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[must_use]
pub enum EncapOutcome {
    /// The outer packet is `buf[range]`.
    Encapsulated(Range<usize>),
    /// See [`ForwardOutcome::HopLimitExceeded`]; nothing was written.
    HopLimitExceeded(IpVersion),
}

/// Result of decapsulation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[must_use]
pub enum DecapOutcome<T> {
    /// Deliver the inner packet.
    Forward(T),
    /// RFC 6040 §4.2: outer CE on a Not-ECT inner packet; drop it (and count/log it: it
    /// also means the tunnel path marks congestion for a flow that cannot react).
    Drop(T),
}

/// A decapsulated packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decapsulated {
    /// The outer header, addresses and ports as on the wire (`src_*` is the peer).
    pub outer: Encapsulation,
    /// The inner packet's facts; `inner.ecn` is the value after RFC 6040 processing.
    pub inner: InnerPacket,
    /// Where the inner packet lies in the buffer (trailing octets trimmed).
    pub inner_range: Range<usize>,
}

/// RFC 1624 eqn. 3 incremental update of a checksum when a 16-bit word changes.
fn checksum_update(checksum_field: u16, old: u16, new: u16) -> u16 {
    checksum::finish(u32::from(!checksum_field) + u32::from(!old) + u32::from(new))
}

/// Checks an inner packet's own length against the buffer and reads its version, DSCP and
/// ECN. Trailing octets beyond the declared length are allowed (trimmed).
fn inspect_inner(inner: &[u8]) -> Result<InnerPacket> {
    match IpVersion::of(inner)? {
        IpVersion::V6 => {
            let p = Ipv6Header::new_unchecked(inner);
            if inner.len() < IPV6_HEADER_LEN {
                return Err(Error::Truncated);
            }
            if p.total_len() > inner.len() {
                return Err(Error::Truncated);
            }
            let tc = p.traffic_class();
            Ok(InnerPacket {
                version: IpVersion::V6,
                len: p.total_len(),
                dscp: tc >> 2,
                ecn: Ecn::from_bits(tc),
                dont_frag: true,
            })
        }
        IpVersion::V4 => {
            let p = Ipv4Header::new_unchecked(inner);
            if inner.len() < IPV4_HEADER_LEN {
                return Err(Error::Truncated);
            }
            let total = usize::from(p.total_len());
            if p.header_len() < IPV4_HEADER_LEN || total < p.header_len() {
                return Err(Error::BadLength);
            }
            if total > inner.len() {
                return Err(Error::Truncated);
            }
            Ok(InnerPacket {
                version: IpVersion::V4,
                len: total,
                dscp: p.dscp(),
                ecn: Ecn::from_bits(p.ecn()),
                dont_frag: p.dont_frag(),
            })
        }
    }
}

/// The forwarding step before encapsulation (RFC 2473 §3.1): validates the inner packet
/// (version from the first nibble, length from its own header) and, if `decrement`,
/// decrements its Hop Limit / TTL, updating the IPv4 header checksum incrementally
/// (RFC 1624). The inner IPv4 header checksum is not verified: a bad one stays bad.
///
/// # Errors
/// `Truncated`/`BadLength` when the header does not fit or disagrees with the buffer,
/// `Malformed("IP version")` for a first nibble other than 4 or 6.
pub fn forward_inner(inner: &mut [u8], decrement: bool) -> Result<ForwardOutcome> {
    let info = inspect_inner(inner)?;
    Ok(forward_step(inner, info, decrement))
}

/// The decrement of [`forward_inner`], on a packet `inspect_inner` has accepted.
fn forward_step(inner: &mut [u8], info: InnerPacket, decrement: bool) -> ForwardOutcome {
    if decrement {
        match info.version {
            IpVersion::V6 => {
                let mut p = Ipv6Header::new_unchecked(&mut *inner);
                let hop_limit = p.hop_limit();
                if hop_limit <= 1 {
                    return ForwardOutcome::HopLimitExceeded(IpVersion::V6);
                }
                p.set_hop_limit(hop_limit - 1);
            }
            IpVersion::V4 => {
                let mut p = Ipv4Header::new_unchecked(&mut *inner);
                let ttl = p.ttl();
                if ttl <= 1 {
                    return ForwardOutcome::HopLimitExceeded(IpVersion::V4);
                }
                let old = u16::from_be_bytes([ttl, p.protocol()]);
                let new = u16::from_be_bytes([ttl - 1, p.protocol()]);
                p.set_ttl(ttl - 1);
                p.set_checksum(checksum_update(p.checksum(), old, new));
            }
        }
    }
    ForwardOutcome::Forward(info)
}

/// Encapsulates in place: the inner packet is `buf[headroom..]` (trailing octets beyond its
/// own length are left out), and the outer header is written into
/// `buf[headroom - overhead..headroom]` without moving the inner packet.
///
/// Outer ECN = inner ECN (RFC 6040 §4.1 normal mode); outer DSCP = inner DSCP if
/// `params.copy_dscp`, else 0. Outer IPv4 has DF as the inner packet (RFC 2003 §5.1: set
/// if the inner IPv4 header has it, and for IPv6 inside, which no router fragments; clear
/// otherwise, so that a narrow link on the tunnel's path fragments the tunnel packet
/// instead of dropping what the sender let be fragmented), Identification `params.ipv4_ident`,
/// and a computed header checksum; the UDP checksum is computed unless
/// `params.udp_checksum` is off.
///
/// # Errors
/// `BufferTooSmall` if `headroom < enc.overhead()`; `Truncated` if `headroom` is past the
/// end; `BadLength` if the outer packet would exceed 65535 octets; inner-packet errors as in
/// [`forward_inner`].
pub fn encapsulate(
    enc: &Encapsulation,
    params: &EncapParams,
    buf: &mut [u8],
    headroom: usize,
) -> Result<EncapOutcome> {
    let overhead = enc.overhead();
    if headroom < overhead {
        return Err(Error::BufferTooSmall);
    }
    let (front, inner) = buf.split_at_mut_checked(headroom).ok_or(Error::Truncated)?;
    // Check the outer length before touching the inner packet.
    let info = inspect_inner(inner)?;
    // IPv6 Payload Length excludes the outer header; IPv4 Total Length includes it.
    let length_field = match enc {
        Encapsulation::Ipv6 { .. } => info.len,
        _ => overhead + info.len,
    };
    if length_field > usize::from(u16::MAX) {
        return Err(Error::BadLength);
    }
    let info = match forward_step(inner, info, params.decrement_inner) {
        ForwardOutcome::Forward(info) => info,
        ForwardOutcome::HopLimitExceeded(v) => return Ok(EncapOutcome::HopLimitExceeded(v)),
    };
    let inner = &inner[..info.len];
    let start = headroom - overhead;
    let outer = &mut front[start..];
    let (dscp, ecn) = outer_dscp_ecn(params, &info);
    match *enc {
        Encapsulation::Ipv6 { src_addr, dst_addr } => {
            Ipv6Repr {
                src_addr,
                dst_addr,
                next_header: info.version.protocol(),
                // Checked above: fits in u16.
                payload_len: info.len as u16,
                hop_limit: params.hop_limit,
                traffic_class: (dscp << 2) | ecn,
                flow_label: params.flow_label,
            }
            .emit(&mut Ipv6Header::new_unchecked(outer));
        }
        Encapsulation::Ipv4 { src_addr, dst_addr } => {
            outer_ipv4(
                src_addr,
                dst_addr,
                info.version.protocol(),
                info.len,
                (dscp, ecn, info.dont_frag),
                params,
            )
            .emit(&mut Ipv4Header::new_unchecked(outer))?;
        }
        Encapsulation::Udp4 {
            src_addr,
            dst_addr,
            src_port,
            dst_port,
        } => {
            let udp_len = UDP_HEADER_LEN + info.len;
            let tos = (dscp, ecn, info.dont_frag);
            outer_ipv4(src_addr, dst_addr, IPPROTO_UDP, udp_len, tos, params)
                .emit(&mut Ipv4Header::new_unchecked(&mut *outer))?;
            let udp = &mut outer[IPV4_HEADER_LEN..];
            UdpRepr {
                src_port,
                dst_port,
                payload_len: info.len as u16,
            }
            .emit(&mut UdpHeader::new_unchecked(&mut *udp))?;
            // The checksum is summed here rather than by the view: the inner packet is
            // not contiguous with the header in this borrow.
            let value = if params.udp_checksum {
                let mut acc =
                    checksum::pseudo_header_v4(&src_addr, &dst_addr, IPPROTO_UDP, udp_len as u16);
                acc = checksum::sum(acc, udp);
                match checksum::finish(checksum::sum(acc, inner)) {
                    // RFC 768: a computed zero is sent as all ones; zero means "none".
                    0 => 0xffff,
                    v => v,
                }
            } else {
                0
            };
            udp[6..8].copy_from_slice(&value.to_be_bytes());
        }
    }
    Ok(EncapOutcome::Encapsulated(start..headroom + info.len))
}

/// The outer header's DSCP and ECN for an inner packet: ECN copied (RFC 6040 §4.1 normal
/// mode), DSCP copied if `params.copy_dscp`, else 0.
fn outer_dscp_ecn(params: &EncapParams, info: &InnerPacket) -> (u8, u8) {
    let dscp = if params.copy_dscp { info.dscp } else { 0 };
    (dscp, ecn_encapsulate(info.ecn).bits())
}

/// The octet [`encapsulate`] writes as the outer IPv4 TOS / IPv6 Traffic Class for
/// `inner`: for a sender that lets the kernel write the outer header (a UDP socket).
///
/// # Errors
/// As [`encapsulate`] for the inner packet.
pub fn outer_tos(params: &EncapParams, inner: &[u8]) -> Result<u8> {
    let (dscp, ecn) = outer_dscp_ecn(params, &inspect_inner(inner)?);
    Ok((dscp << 2) | ecn)
}

fn outer_ipv4(
    src_addr: Ipv4Addr,
    dst_addr: Ipv4Addr,
    protocol: u8,
    payload_len: usize,
    (dscp, ecn, dont_frag): (u8, u8, bool),
    params: &EncapParams,
) -> Ipv4Repr {
    Ipv4Repr {
        src_addr,
        dst_addr,
        protocol,
        // Callers checked that the whole packet fits in 65535 octets.
        payload_len: payload_len as u16,
        ttl: params.hop_limit,
        dscp,
        ecn,
        ident: params.ipv4_ident,
        dont_frag,
        more_frags: false,
        frag_offset: 0,
    }
}

/// Decapsulation of an inner packet whose outer header is already gone (raw 4/41 or UDP
/// sockets): validates it as [`forward_inner`] does and applies RFC 6040 §4.2 with the outer
/// ECN the socket reported (setting CE in place, IPv4 checksum updated incrementally).
/// The inner Hop Limit / TTL is not touched (RFC 2473 §3.3: the exit point forwards it
/// normally).
pub fn decapsulate_inner(outer_ecn: Ecn, inner: &mut [u8]) -> Result<DecapOutcome<InnerPacket>> {
    let mut info = inspect_inner(inner)?;
    let Some(ecn) = ecn_decapsulate(outer_ecn, info.ecn) else {
        return Ok(DecapOutcome::Drop(info));
    };
    if ecn != info.ecn {
        match info.version {
            IpVersion::V6 => {
                // ECN is bits 4-5 of the second octet (low bits of Traffic Class).
                inner[1] = (inner[1] & 0xcf) | (ecn.bits() << 4);
            }
            IpVersion::V4 => {
                let old = u16::from_be_bytes([inner[0], inner[1]]);
                inner[1] = (inner[1] & !0x03) | ecn.bits();
                let new = u16::from_be_bytes([inner[0], inner[1]]);
                let mut p = Ipv4Header::new_unchecked(&mut *inner);
                p.set_checksum(checksum_update(p.checksum(), old, new));
            }
        }
        info.ecn = ecn;
    }
    Ok(DecapOutcome::Forward(info))
}

/// Decapsulates a whole tunnel packet (outer IPv6, IPv4 or IPv4+UDP, as read from AF_PACKET
/// or a raw socket that keeps the IP header): validates the outer headers and lengths, then
/// does what [`decapsulate_inner`] does.
///
/// Outer IPv6: Hop-by-Hop and Destination Options headers (e.g. the Tunnel Encapsulation
/// Limit, RFC 2473 §4.1.1) are stepped over without looking at their options; anything else
/// but 4/41 is not a tunnel packet. Outer IPv4: the header checksum must verify and the
/// packet must not be a fragment (reassembly is the kernel's job); protocol 4, 41 or 17.
/// UDP: its length must fit the IPv4 payload (trailing octets trimmed) and a non-zero
/// checksum must verify; the inner version comes from the first nibble after it.
///
/// # Errors
/// `Truncated`, `BadLength`, `BadChecksum`, or `Malformed` naming the offending field
/// (`"not a tunnel packet"` for an unexpected protocol).
pub fn decapsulate(buf: &mut [u8]) -> Result<DecapOutcome<Decapsulated>> {
    let (outer, outer_ecn, expected, start, end) = match IpVersion::of(buf)? {
        IpVersion::V6 => outer_ipv6(buf)?,
        IpVersion::V4 => outer_ipv4_parse(buf)?,
    };
    let inner = &mut buf[start..end];
    if let Some(expected) = expected
        && IpVersion::of(inner)? != expected
    {
        return Err(Error::Malformed("inner version disagrees with protocol"));
    }
    let wrap = |inner: InnerPacket| Decapsulated {
        outer,
        inner,
        inner_range: start..start + inner.len,
    };
    Ok(match decapsulate_inner(outer_ecn, inner)? {
        DecapOutcome::Forward(i) => DecapOutcome::Forward(wrap(i)),
        DecapOutcome::Drop(i) => DecapOutcome::Drop(wrap(i)),
    })
}

type Outer = (Encapsulation, Ecn, Option<IpVersion>, usize, usize);

fn outer_ipv6(buf: &[u8]) -> Result<Outer> {
    let p = Ipv6Header::new_checked(buf)?;
    let end = p.total_len();
    let mut offset = IPV6_HEADER_LEN;
    let mut next_header = p.next_header();
    loop {
        match next_header {
            0 | IPPROTO_DSTOPTS => {
                if next_header == 0 && offset != IPV6_HEADER_LEN {
                    return Err(Error::Malformed("Hop-by-Hop header not first"));
                }
                let h = crate::ext::ExtHeader::new_checked(&buf[offset..end])?;
                next_header = h.next_header();
                offset += h.header_len();
            }
            IPPROTO_IPV6 | IPPROTO_IPIP => break,
            _ => return Err(Error::Malformed("not a tunnel packet")),
        }
    }
    let expected = if next_header == IPPROTO_IPV6 {
        IpVersion::V6
    } else {
        IpVersion::V4
    };
    let outer = Encapsulation::Ipv6 {
        src_addr: p.src_addr(),
        dst_addr: p.dst_addr(),
    };
    Ok((
        outer,
        Ecn::from_bits(p.traffic_class()),
        Some(expected),
        offset,
        end,
    ))
}

fn outer_ipv4_parse(buf: &[u8]) -> Result<Outer> {
    let p = Ipv4Header::new_checked(buf)?;
    if !p.verify_checksum() {
        return Err(Error::BadChecksum);
    }
    if p.is_fragment() {
        return Err(Error::Malformed("outer IPv4 fragment"));
    }
    let (src_addr, dst_addr) = (p.src_addr(), p.dst_addr());
    let ecn = Ecn::from_bits(p.ecn());
    let start = p.header_len();
    let end = usize::from(p.total_len());
    match p.protocol() {
        IPPROTO_IPV6 => Ok((
            Encapsulation::Ipv4 { src_addr, dst_addr },
            ecn,
            Some(IpVersion::V6),
            start,
            end,
        )),
        IPPROTO_IPIP => Ok((
            Encapsulation::Ipv4 { src_addr, dst_addr },
            ecn,
            Some(IpVersion::V4),
            start,
            end,
        )),
        IPPROTO_UDP => {
            let udp = UdpHeader::new_checked(&buf[start..end])?;
            let udp_len = usize::from(udp.len());
            if !udp.verify_checksum_v4(&src_addr, &dst_addr) {
                return Err(Error::BadChecksum);
            }
            let outer = Encapsulation::Udp4 {
                src_addr,
                dst_addr,
                src_port: udp.src_port(),
                dst_port: udp.dst_port(),
            };
            Ok((outer, ecn, None, start + UDP_HEADER_LEN, start + udp_len))
        }
        _ => Err(Error::Malformed("not a tunnel packet")),
    }
}

#[cfg(test)]
mod tests;
