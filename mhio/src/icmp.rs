//! ICMPv6 errors the daemons send themselves, and the Neighbour Discovery packets of proxy
//! DAD. The octets are laid out by [`proto::icmpv6`]; this module only picks the addresses.
//!
//! The nftables guard ([`crate::NftGuard`]) keeps the kernel from seeing any MH addressed to
//! us, so the kernel no longer answers a malformed one; RFC 6275 §9.2 asks for an ICMPv6
//! Parameter Problem (code 0) pointing at Payload Proto or Header Len. The daemons build it
//! here and send it with [`crate::RawSender::send_packet`] like any other packet.

use std::net::Ipv6Addr;

use proto::icmpv6::{
    ErrorMessage, Icmpv6Repr, MIN_MTU, ND_HOP_LIMIT, NeighborSolicitation,
    PARAM_PROBLEM_ERRONEOUS_HEADER_FIELD,
};

/// ICMPv6 next header value.
pub const IPPROTO_ICMPV6: u8 = proto::IPPROTO_ICMPV6;
/// ICMPv6 Parameter Problem (RFC 4443 §3.4).
pub const PARAMETER_PROBLEM: u8 = 4;
/// Code 0: erroneous header field encountered.
pub const CODE_ERRONEOUS_HEADER_FIELD: u8 = PARAM_PROBLEM_ERRONEOUS_HEADER_FIELD;
/// An ICMPv6 error must not exceed the IPv6 minimum MTU (RFC 4443 §2.4(c)).
pub const MAX_ERROR_LEN: usize = MIN_MTU;
/// Hop limit of the errors we originate (the usual default).
const HOP_LIMIT: u8 = 64;

/// The octets of a whole IPv6 packet carrying `repr` from `src` to `dst`, checksum filled.
fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, repr: &Icmpv6Repr<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; repr.ipv6_packet_len()];
    // Cannot fail: the buffer has the length asked for, and the messages built here stay
    // within the minimum MTU.
    let emitted = repr.emit_ipv6_packet(src, dst, hop_limit, &mut buf);
    debug_assert!(emitted.is_ok(), "{emitted:?}");
    buf
}

/// A whole IPv6 packet carrying an ICMPv6 Parameter Problem from `src` to `dst` about
/// `invoking` (the offending IPv6 packet, header included), quoting as much of it as fits
/// in 1280 octets. `pointer` is the offset of the erroneous octet from the start of
/// `invoking` (RFC 4443 §3.4). Checksum filled.
pub fn parameter_problem(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    code: u8,
    pointer: u32,
    invoking: &[u8],
) -> Vec<u8> {
    let repr = Icmpv6Repr::Error(ErrorMessage::parameter_problem(code, pointer, invoking));
    ipv6_packet(src, dst, HOP_LIMIT, &repr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ext::{Ipv6Header, Ipv6Repr};

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);

    #[test]
    fn layout_and_checksum() {
        let invoking: Vec<u8> = (0..48u8).collect();
        let p = parameter_problem(SRC, DST, 0, 40, &invoking);
        assert_eq!(p.len(), 40 + 8 + 48);
        let ip = Ipv6Header::new_checked(&p[..]).unwrap();
        let r = Ipv6Repr::parse(&ip).unwrap();
        assert_eq!((r.src_addr, r.dst_addr), (SRC, DST));
        assert_eq!((r.next_header, r.payload_len, r.hop_limit), (58, 56, 64));
        assert_eq!(&p[40..42], &[4, 0]);
        assert_eq!(&p[44..48], &[0, 0, 0, 40]);
        assert_eq!(&p[48..], &invoking[..]);
        // The checksum verifies: summing with it in place gives 0xffff.
        let acc = proto::checksum::pseudo_header_v6(&SRC, &DST, 58, 56);
        assert_eq!(
            proto::checksum::finish(proto::checksum::sum(acc, &p[40..])),
            0
        );
    }

    #[test]
    fn quote_is_cut_at_1280() {
        let invoking = vec![0xa5; 1500];
        let p = parameter_problem(SRC, DST, 0, 41, &invoking);
        assert_eq!(p.len(), MAX_ERROR_LEN);
        assert_eq!(u16::from_be_bytes([p[4], p[5]]) as usize, 1280 - 40);
    }
}

/// ICMPv6 Neighbour Solicitation (RFC 4861 §4.3).
pub const NEIGHBOUR_SOLICITATION: u8 = 135;
/// ICMPv6 Neighbour Advertisement (RFC 4861 §4.4).
pub const NEIGHBOUR_ADVERTISEMENT: u8 = 136;

/// The solicited-node multicast address of `target` (RFC 4291 §2.7.1).
pub fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    proto::icmpv6::solicited_node(target)
}

/// A whole IPv6 packet carrying the Neighbour Solicitation of Duplicate Address Detection
/// for `target` (RFC 4862 §5.4.2): from the unspecified address to the target's
/// solicited-node address, hop limit 255, no Source Link-Layer Address option (forbidden
/// with an unspecified source). Checksum filled.
pub fn dad_neighbour_solicitation(target: Ipv6Addr) -> Vec<u8> {
    let repr = Icmpv6Repr::NeighborSolicitation(NeighborSolicitation {
        target,
        options: Vec::new(),
    });
    ipv6_packet(
        Ipv6Addr::UNSPECIFIED,
        solicited_node(target),
        ND_HOP_LIMIT,
        &repr,
    )
}

/// The target of a Neighbour Advertisement, from an ICMPv6 message as a raw ICMPv6 socket
/// returns it (no IPv6 header): `None` for anything else, or one that is not a valid
/// advertisement (RFC 4861 §7.1.2).
pub fn advertised_target(icmp: &[u8]) -> Option<Ipv6Addr> {
    match Icmpv6Repr::parse_bytes(icmp) {
        Ok(Icmpv6Repr::NeighborAdvertisement(na)) => Some(na.target),
        _ => None,
    }
}

#[cfg(test)]
mod nd_tests {
    use super::*;
    use proto::ext::{Ipv6Header, Ipv6Repr};

    #[test]
    fn dad_solicitation_bytes() {
        let target: Ipv6Addr = "2001:db8:1::100".parse().unwrap();
        let p = dad_neighbour_solicitation(target);
        let ip = Ipv6Header::new_checked(&p[..]).unwrap();
        let r = Ipv6Repr::parse(&ip).unwrap();
        assert_eq!(r.src_addr, Ipv6Addr::UNSPECIFIED);
        assert_eq!(r.dst_addr, "ff02::1:ff00:100".parse::<Ipv6Addr>().unwrap());
        assert_eq!((r.hop_limit, r.next_header, r.payload_len), (255, 58, 24));
        let icmp = &p[40..];
        assert_eq!((icmp[0], icmp[1]), (135, 0));
        assert_eq!(&icmp[8..24], &target.octets());
        // The checksum verifies: summing with it in place gives 0.
        assert_eq!(proto::checksum::v6(&r.src_addr, &r.dst_addr, 58, icmp), 0);
    }

    #[test]
    fn advertised_targets() {
        let t: Ipv6Addr = "2001:db8:1::100".parse().unwrap();
        let na = crate::neighbour_advertisement(t, [2, 0, 0, 0, 0, 1], true);
        assert_eq!(advertised_target(&na), Some(t));
        let mut ns = dad_neighbour_solicitation(t)[40..].to_vec();
        assert_eq!(advertised_target(&ns), None);
        ns.truncate(10);
        assert_eq!(advertised_target(&ns), None);
    }
}
