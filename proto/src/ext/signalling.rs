//! Whole Mobile IPv6 signalling packets: walking a received IPv6 packet to its Mobility
//! Header (or other upper layer), verifying the upper-layer checksum with the addresses Mobile
//! IPv6 puts in the pseudo-header, and building `IPv6 | RH2 | DestOpts(HAO) | MH` for an
//! `IPPROTO_RAW` socket.
//!
//! This exists because the kernel here cannot do it (docs/notes.md §1): packets with a HAO
//! or RH2 are dropped by the stack and must be read from AF_PACKET, and a type 2 routing
//! header cannot be sent with `IPV6_RTHDR`.

use core::ops::Range;
use std::net::Ipv6Addr;

use super::ipv6::{IPV6_HEADER_LEN, Ipv6Header, Ipv6Repr};
use super::options::{DestinationOptionsRepr, ExtHeader, HAO_HEADER_LEN, UnknownOption};
use super::routing::{RH2_HEADER_LEN, RoutingHeader, RoutingRepr};
use crate::{Error, IPPROTO_DSTOPTS, IPPROTO_MH, IPPROTO_ROUTING, Result, checksum};

/// Hop-by-Hop Options header (RFC 8200 §4.3).
const IPPROTO_HOPOPTS: u8 = 0;
/// Offset of the checksum inside the Mobility Header (RFC 6275 §6.1.1).
const MH_CHECKSUM: Range<usize> = 4..6;

/// Which source address made the upper-layer checksum verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumSource {
    /// The Home Address option's address, as RFC 6275 §6.1.1 / RFC 8200 §8.1 require
    /// (the receiver's view after swapping the HAO into the source).
    HomeAddress,
    /// The source on the wire (the care-of address). Accepted because some senders
    /// (Linux raw sockets, see docs/notes.md §4) checksum over it.
    OnWireSource,
}

/// A received IPv6 packet whose header chain has been walked.
///
/// The walk steps over Hop-by-Hop (only as the first header), Destination Options and
/// Routing headers and stops at the first other header: the Mobility Header, or anything
/// else (ICMPv6, ESP, AH, Fragment, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedPacket<'a> {
    /// Source address on the wire (the care-of address when a HAO is present).
    pub src_addr: Ipv6Addr,
    /// Destination address on the wire (the care-of address when an RH2 is present).
    pub dst_addr: Ipv6Addr,
    /// Hop Limit.
    pub hop_limit: u8,
    /// Address of the Home Address option, if one was present.
    pub home_address: Option<Ipv6Addr>,
    /// Address of the type 2 routing header, if one was present.
    pub rh2_home_address: Option<Ipv6Addr>,
    /// First unrecognised destination option, offset counted from the start of the IPv6
    /// header (usable as an ICMPv6 Parameter Problem pointer). The walk skipped it; the
    /// caller decides from `action()` whether the packet must be dropped.
    pub unknown_option: Option<UnknownOption>,
    /// Protocol number where the walk stopped (135 for a Mobility Header).
    pub upper_layer: u8,
    /// Where the upper layer lies in the buffer given to [`walk`].
    pub payload_range: Range<usize>,
    /// The upper layer: exactly the Mobility Header for [`Walk::Mobility`], otherwise
    /// everything up to the end of the IPv6 payload.
    pub payload: &'a [u8],
    /// Final destination for the pseudo-header (RFC 8200 §8.1).
    final_dst: Ipv6Addr,
}

/// Result of [`walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walk<'a> {
    /// The chain ends in a Mobility Header; `payload` is the MH (`(Header Len + 1) * 8`
    /// octets), whatever follows it in the IPv6 payload.
    Mobility(ReceivedPacket<'a>),
    /// The chain ends in another protocol (`upper_layer`); not a signalling packet for us,
    /// though ICMPv6 with a HAO (Mobile Prefix Solicitation, RFC 6275 §6.7) also ends here.
    Other(ReceivedPacket<'a>),
}

impl<'a> Walk<'a> {
    /// The walked packet, whatever it ends in.
    pub fn packet(&self) -> &ReceivedPacket<'a> {
        match self {
            Walk::Mobility(p) | Walk::Other(p) => p,
        }
    }
}

/// Walks an IPv6 packet as read from AF_PACKET after the link-layer header.
///
/// Rejects a Payload Length that runs past the buffer but ignores bytes after it (Ethernet
/// pads short frames). A Mobility Header is `(Header Len + 1) * 8` octets; octets of the
/// payload after it do not make the packet unparseable (RFC 8200 §4.7, RFC 6275 §9.2).
///
/// # Errors
/// `Truncated` / `BadLength` for inconsistent lengths, `Malformed` for a version other than 6,
/// a Hop-by-Hop header not in first place, a second HAO or RH2, or a malformed HAO / RH2.
pub fn walk(buf: &[u8]) -> Result<Walk<'_>> {
    let ip = Ipv6Header::new_checked(buf)?;
    let ip_repr = Ipv6Repr::parse(&ip)?;
    let end = ip.total_len();
    let mut packet = ReceivedPacket {
        src_addr: ip_repr.src_addr,
        dst_addr: ip_repr.dst_addr,
        hop_limit: ip_repr.hop_limit,
        home_address: None,
        rh2_home_address: None,
        unknown_option: None,
        upper_layer: ip_repr.next_header,
        payload_range: IPV6_HEADER_LEN..end,
        payload: &[],
        final_dst: ip_repr.dst_addr,
    };
    let mut offset = IPV6_HEADER_LEN;
    let mut next_header = ip_repr.next_header;
    // Every header consumes at least 8 octets, so this ends.
    loop {
        let rest = &buf[offset..end];
        let header_len = match next_header {
            IPPROTO_HOPOPTS => {
                if offset != IPV6_HEADER_LEN {
                    return Err(Error::Malformed("Hop-by-Hop header not first"));
                }
                let h = ExtHeader::new_checked(rest)?;
                next_header = h.next_header();
                h.header_len()
            }
            IPPROTO_DSTOPTS => {
                let h = ExtHeader::new_checked(rest)?;
                let opts = DestinationOptionsRepr::parse(&h)?;
                if let Some(hoa) = opts.home_address
                    && packet.home_address.replace(hoa).is_some()
                {
                    return Err(Error::Malformed("duplicate Home Address option"));
                }
                if let Some(u) = opts.unknown
                    && packet.unknown_option.is_none()
                {
                    packet.unknown_option = Some(UnknownOption {
                        offset: offset + u.offset,
                        ..u
                    });
                }
                next_header = opts.next_header;
                h.header_len()
            }
            IPPROTO_ROUTING => {
                let h = RoutingHeader::new_checked(rest)?;
                let r = RoutingRepr::parse(&h)?;
                if let RoutingRepr::Type2 {
                    segments_left,
                    home_address,
                    ..
                } = r
                {
                    if packet.rh2_home_address.replace(home_address).is_some() {
                        return Err(Error::Malformed("duplicate type 2 routing header"));
                    }
                    // With a segment left, the HoA is the final destination; with none,
                    // the address has already been swapped into the IPv6 header.
                    if segments_left == 1 {
                        packet.final_dst = home_address;
                    }
                }
                next_header = r.next_header();
                h.header_len()
            }
            IPPROTO_MH => {
                if rest.len() < 2 {
                    return Err(Error::Truncated);
                }
                let mh_len = (usize::from(rest[1]) + 1) * 8;
                if mh_len > rest.len() {
                    return Err(Error::Truncated);
                }
                // Octets after the MH: with Payload Proto 59 they are ignored (RFC 8200
                // §4.7); with another Payload Proto the receiver's RFC 6275 §9.2 check
                // answers with a Parameter Problem. Either way the MH is what its Header
                // Len says, and its checksum covers only that (§6.1.1).
                packet.upper_layer = IPPROTO_MH;
                packet.payload_range = offset..offset + mh_len;
                packet.payload = &rest[..mh_len];
                return Ok(Walk::Mobility(packet));
            }
            other => {
                packet.upper_layer = other;
                packet.payload_range = offset..end;
                packet.payload = rest;
                return Ok(Walk::Other(packet));
            }
        };
        offset += header_len;
    }
}

impl ReceivedPacket<'_> {
    /// Destination for the pseudo-header: the RH2 home address while the RH2 still has a
    /// segment left, else the IPv6 destination (RFC 8200 §8.1, docs/notes.md §4).
    pub fn pseudo_header_dst(&self) -> Ipv6Addr {
        self.final_dst
    }

    /// Verifies the upper-layer checksum (MH, or ICMPv6/UDP/TCP for [`Walk::Other`]):
    /// first with the HAO address as pseudo-header source, then with the on-wire source.
    ///
    /// # Errors
    /// [`Error::BadChecksum`] if neither source verifies.
    pub fn verify_checksum(&self) -> Result<ChecksumSource> {
        let dst = self.pseudo_header_dst();
        let len = self.payload.len() as u32;
        let verifies = |src: &Ipv6Addr| {
            let acc = checksum::pseudo_header_v6(src, &dst, self.upper_layer, len);
            checksum::finish(checksum::sum(acc, self.payload)) == 0
        };
        if let Some(hoa) = &self.home_address
            && verifies(hoa)
        {
            return Ok(ChecksumSource::HomeAddress);
        }
        if verifies(&self.src_addr) {
            return Ok(ChecksumSource::OnWireSource);
        }
        Err(Error::BadChecksum)
    }

    /// The addressing of this packet, as [`emit_mobility_packet`] takes it.
    pub fn repr(&self) -> MobilityPacketRepr {
        MobilityPacketRepr {
            src_addr: self.src_addr,
            dst_addr: self.dst_addr,
            hop_limit: self.hop_limit,
            home_address: self.home_address,
            rh2_home_address: self.rh2_home_address,
        }
    }
}

/// Addressing of an outgoing signalling packet.
///
/// RFC 6275 §6.1 allows a HAO only with a Binding Update and an RH2 only with a Binding
/// Acknowledgement (and §6.7/6.8 the same for Mobile Prefix Solicitation/Advertisement, which
/// are ICMPv6, not built here). The MH is opaque here, so the caller keeps to that rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MobilityPacketRepr {
    /// Source on the wire (CoA when `home_address` is set).
    pub src_addr: Ipv6Addr,
    /// Destination on the wire (CoA when `rh2_home_address` is set).
    pub dst_addr: Ipv6Addr,
    /// Hop Limit.
    pub hop_limit: u8,
    /// Home address to carry in a Home Address option (BU from a mobile router away).
    pub home_address: Option<Ipv6Addr>,
    /// Home address to carry in a type 2 routing header (BA to a mobile router away).
    pub rh2_home_address: Option<Ipv6Addr>,
}

/// Length of the packet [`emit_mobility_packet`] builds around an MH of `mh_len` octets
/// (and [`emit_upper_layer_packet`] around any upper layer of that length).
pub fn mobility_packet_len(repr: &MobilityPacketRepr, mh_len: usize) -> usize {
    IPV6_HEADER_LEN
        + if repr.rh2_home_address.is_some() {
            RH2_HEADER_LEN
        } else {
            0
        }
        + if repr.home_address.is_some() {
            HAO_HEADER_LEN
        } else {
            0
        }
        + mh_len
}

/// Builds `IPv6 | [RH2] | [DestOpts(HAO)] | MH` into `buf` (RFC 8200 §4.1 order: Routing
/// before the final Destination Options), copies `mh` and fills in its checksum with source
/// = HAO address if any and destination = RH2 address if any (RFC 6275 §6.1.1). The MH's own
/// checksum field is ignored. Traffic Class and Flow Label are 0. Returns the length written.
///
/// # Errors
/// `BadLength` if `mh` is not `(mh[1] + 1) * 8` octets long or the packet would exceed
/// 65535 octets of payload; `BufferTooSmall` if `buf` is shorter than
/// [`mobility_packet_len`].
pub fn emit_mobility_packet(repr: &MobilityPacketRepr, mh: &[u8], buf: &mut [u8]) -> Result<usize> {
    if mh.len() < 8 || mh.len() != (usize::from(mh[1]) + 1) * 8 {
        return Err(Error::BadLength);
    }
    emit_upper_layer_packet(repr, IPPROTO_MH, mh, MH_CHECKSUM, buf)
}

/// Builds `IPv6 | [RH2] | [DestOpts(HAO)] | upper layer` into `buf`, as
/// [`emit_mobility_packet`] does for an MH, for any upper layer whose checksum covers the
/// IPv6 pseudo-header (RFC 8200 §8.1) at `checksum_field`: ICMPv6 2..4, UDP (6..8), TCP
/// (16..18). A node with a binding for a mobile node sends it packets with an RH2 (RFC
/// 6275 §6.4, §9.3.2): the pseudo-header destination is then the home address. Returns
/// the length written.
///
/// # Errors
/// `BadLength` if `checksum` is not inside `upper` or the packet would exceed 65535 octets
/// of payload; `BufferTooSmall` if `buf` is shorter than [`mobility_packet_len`].
pub fn emit_upper_layer_packet(
    repr: &MobilityPacketRepr,
    next_header: u8,
    upper: &[u8],
    checksum_field: Range<usize>,
    buf: &mut [u8],
) -> Result<usize> {
    if checksum_field.len() != 2 || checksum_field.end > upper.len() {
        return Err(Error::BadLength);
    }
    let total = mobility_packet_len(repr, upper.len());
    let payload_len = u16::try_from(total - IPV6_HEADER_LEN).map_err(|_| Error::BadLength)?;
    let buf = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;

    let (ip_buf, mut rest) = buf.split_at_mut(IPV6_HEADER_LEN);
    let after_rh2 = if repr.home_address.is_some() {
        IPPROTO_DSTOPTS
    } else {
        next_header
    };
    let first = if repr.rh2_home_address.is_some() {
        IPPROTO_ROUTING
    } else {
        after_rh2
    };
    Ipv6Repr {
        src_addr: repr.src_addr,
        dst_addr: repr.dst_addr,
        next_header: first,
        payload_len,
        hop_limit: repr.hop_limit,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&mut Ipv6Header::new_unchecked(ip_buf));

    if let Some(hoa) = repr.rh2_home_address {
        RoutingRepr::type2(after_rh2, hoa).emit(rest)?;
        rest = &mut rest[RH2_HEADER_LEN..];
    }
    if let Some(hoa) = repr.home_address {
        DestinationOptionsRepr {
            next_header,
            home_address: Some(hoa),
            unknown: None,
        }
        .emit(rest)?;
        rest = &mut rest[HAO_HEADER_LEN..];
    }

    rest.copy_from_slice(upper);
    rest[checksum_field.clone()].fill(0);
    let src = repr.home_address.unwrap_or(repr.src_addr);
    let dst = repr.rh2_home_address.unwrap_or(repr.dst_addr);
    let value = checksum::v6(&src, &dst, next_header, rest);
    rest[checksum_field].copy_from_slice(&value.to_be_bytes());
    Ok(total)
}

#[cfg(test)]
mod tests;
