use super::*;
use crate::ext::options::UnknownOptionAction;
use proptest::prelude::*;

const COA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x10);
const HA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const HOA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);

// BU from CoA 2001:db8:2::10 to HA 2001:db8:1::1 with HAO 2001:db8:1::100. The MH checksum
// 0x9169 is over the HoA (0x9258 would be over the CoA); computed independently.
static BU_PACKET: [u8; 80] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x28, 0x3c, 0x40, // IPv6, plen 40, NH 60, HL 64
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10, // CoA
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, // HA
    0x87, 0x02, 0x01, 0x02, 0x00, 0x00, 0xc9, 0x10, // DestOpts: NH 135, PadN(2), HAO
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, // HoA
    0x3b, 0x01, 0x05, 0x00, 0x91, 0x69, 0x00, 0x2a, // MH BU, seq 42
    0xd0, 0x20, 0x00, 0x3c, 0x01, 0x02, 0x00, 0x00, // flags, lifetime 60, PadN(2)
];
const BU_CSUM_OVER_COA: [u8; 2] = [0x92, 0x58];

// BA from HA to CoA with RH2 HoA; MH checksum 0x600a over (HA, HoA).
static BA_PACKET: [u8; 80] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x28, 0x2b, 0x40, // IPv6, plen 40, NH 43, HL 64
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, // HA
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10, // CoA
    0x87, 0x02, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, // RH2: NH 135, type 2, SL 1
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, // HoA
    0x3b, 0x01, 0x06, 0x00, 0x60, 0x0a, 0x00, 0x80, // MH BA, status 0, K
    0x00, 0x2a, 0x00, 0x3c, 0x01, 0x02, 0x00, 0x00, // seq 42, lifetime 60, PadN(2)
];

fn bu_repr() -> MobilityPacketRepr {
    MobilityPacketRepr {
        src_addr: COA,
        dst_addr: HA,
        hop_limit: 64,
        home_address: Some(HOA),
        rh2_home_address: None,
    }
}

fn ba_repr() -> MobilityPacketRepr {
    MobilityPacketRepr {
        src_addr: HA,
        dst_addr: COA,
        hop_limit: 64,
        home_address: None,
        rh2_home_address: Some(HOA),
    }
}

/// The MH of a fixture with a garbage checksum, as a caller would hand it over.
fn mh_of(packet: &[u8]) -> Vec<u8> {
    let mut mh = packet[64..].to_vec();
    mh[4..6].copy_from_slice(&[0xde, 0xad]);
    mh
}

fn mobility(buf: &[u8]) -> ReceivedPacket<'_> {
    match walk(buf).unwrap() {
        Walk::Mobility(p) => p,
        other => panic!("not mobility: {other:?}"),
    }
}

#[test]
fn walk_bu_with_hao() {
    let p = mobility(&BU_PACKET);
    assert_eq!(p.src_addr, COA);
    assert_eq!(p.dst_addr, HA);
    assert_eq!(p.hop_limit, 64);
    assert_eq!(p.home_address, Some(HOA));
    assert_eq!(p.rh2_home_address, None);
    assert_eq!(p.unknown_option, None);
    assert_eq!(p.upper_layer, IPPROTO_MH);
    assert_eq!(p.payload_range, 64..80);
    assert_eq!(p.payload, &BU_PACKET[64..]);
    assert_eq!(p.pseudo_header_dst(), HA);
    assert_eq!(p.verify_checksum(), Ok(ChecksumSource::HomeAddress));
    assert_eq!(p.repr(), bu_repr());
}

#[test]
fn checksum_over_on_wire_source_is_accepted() {
    let mut b = BU_PACKET;
    b[68..70].copy_from_slice(&BU_CSUM_OVER_COA);
    assert_eq!(
        mobility(&b).verify_checksum(),
        Ok(ChecksumSource::OnWireSource)
    );
    b[68] ^= 1;
    assert_eq!(mobility(&b).verify_checksum(), Err(Error::BadChecksum));
    // A flipped body bit breaks it as well.
    let mut b = BU_PACKET;
    b[79] = 1;
    assert_eq!(mobility(&b).verify_checksum(), Err(Error::BadChecksum));
}

#[test]
fn walk_ba_with_rh2() {
    let p = mobility(&BA_PACKET);
    assert_eq!(p.src_addr, HA);
    assert_eq!(p.dst_addr, COA);
    assert_eq!(p.home_address, None);
    assert_eq!(p.rh2_home_address, Some(HOA));
    assert_eq!(p.payload_range, 64..80);
    assert_eq!(p.pseudo_header_dst(), HOA);
    assert_eq!(p.verify_checksum(), Ok(ChecksumSource::OnWireSource));
    assert_eq!(p.repr(), ba_repr());
}

#[test]
fn rh2_already_processed_uses_ipv6_destination() {
    // Segments Left 0: the HoA already sits in the destination field.
    let mut b = BA_PACKET;
    b[43] = 0;
    b[24..40].copy_from_slice(&HOA.octets());
    let p = mobility(&b);
    assert_eq!(p.rh2_home_address, Some(HOA));
    assert_eq!(p.pseudo_header_dst(), HOA);
    assert_eq!(p.verify_checksum(), Ok(ChecksumSource::OnWireSource));
    b[24..40].copy_from_slice(&COA.octets());
    assert_eq!(mobility(&b).pseudo_header_dst(), COA);
}

#[test]
fn emit_bu() {
    let mut buf = [0xa5u8; 90];
    assert_eq!(mobility_packet_len(&bu_repr(), 16), 80);
    let n = emit_mobility_packet(&bu_repr(), &mh_of(&BU_PACKET), &mut buf).unwrap();
    assert_eq!(n, 80);
    assert_eq!(&buf[..80], &BU_PACKET[..]);
    assert!(buf[80..].iter().all(|&b| b == 0xa5));
}

#[test]
fn emit_ba() {
    let mut buf = [0xa5u8; 80];
    let n = emit_mobility_packet(&ba_repr(), &mh_of(&BA_PACKET), &mut buf).unwrap();
    assert_eq!(n, 80);
    assert_eq!(buf, BA_PACKET);
}

#[test]
fn emit_both_in_rfc8200_order_and_walk_back() {
    let repr = MobilityPacketRepr {
        home_address: Some(HOA),
        rh2_home_address: Some("2001:db8:1::200".parse().unwrap()),
        ..bu_repr()
    };
    let mh = mh_of(&BU_PACKET);
    let mut buf = vec![0xa5u8; mobility_packet_len(&repr, mh.len())];
    assert_eq!(buf.len(), 104);
    emit_mobility_packet(&repr, &mh, &mut buf).unwrap();
    assert_eq!(buf[6], IPPROTO_ROUTING);
    assert_eq!(&buf[40..44], &[IPPROTO_DSTOPTS, 2, 2, 1]);
    assert_eq!(&buf[64..72], &[IPPROTO_MH, 2, 1, 2, 0, 0, 201, 16]);
    let p = mobility(&buf);
    assert_eq!(p.repr(), repr);
    assert_eq!(p.payload_range, 88..104);
    assert_eq!(p.pseudo_header_dst(), repr.rh2_home_address.unwrap());
    assert_eq!(p.verify_checksum(), Ok(ChecksumSource::HomeAddress));
}

#[test]
fn plain_mh_round_trip() {
    let repr = MobilityPacketRepr {
        src_addr: HOA,
        home_address: None,
        ..bu_repr()
    };
    let mh = mh_of(&BU_PACKET);
    let mut buf = [0xa5u8; 56];
    assert_eq!(emit_mobility_packet(&repr, &mh, &mut buf), Ok(56));
    assert_eq!(buf[6], IPPROTO_MH);
    assert_eq!(&buf[4..6], &[0, 16]);
    // Same pseudo-header as the HAO case, so the same checksum.
    assert_eq!(&buf[44..46], &[0x91, 0x69]);
    let p = mobility(&buf);
    assert_eq!(p.repr(), repr);
    assert_eq!(p.verify_checksum(), Ok(ChecksumSource::OnWireSource));
}

#[test]
fn trailing_link_padding_is_ignored() {
    let mut b = BU_PACKET.to_vec();
    b.extend_from_slice(&[0; 6]);
    let p = mobility(&b);
    assert_eq!(p.payload_range, 64..80);
    assert_eq!(p.verify_checksum(), Ok(ChecksumSource::HomeAddress));
}

/// RFC 8200 §4.7, RFC 6275 §9.2: octets after the MH inside the IPv6 payload (Payload
/// Length covers them) leave the MH walkable, for the receiver's checks to see.
#[test]
fn octets_after_the_mh_leave_it_walkable() {
    let mut b = BU_PACKET.to_vec();
    b.extend_from_slice(&[0xa5; 8]);
    b[5] = 48;
    let p = mobility(&b);
    assert_eq!(p.payload_range, 64..80);
    assert_eq!(p.payload, &BU_PACKET[64..80]);
    assert_eq!(p.verify_checksum(), Ok(ChecksumSource::HomeAddress));
}

#[test]
fn hop_by_hop_first_is_stepped_over() {
    // IPv6 | HbH(PadN 4) | DestOpts(HAO) | MH.
    let mut b = BU_PACKET[..40].to_vec();
    b[6] = 0;
    b[5] = 48;
    b.extend_from_slice(&[IPPROTO_DSTOPTS, 0, 1, 4, 0, 0, 0, 0]);
    b.extend_from_slice(&BU_PACKET[40..]);
    let p = mobility(&b);
    assert_eq!(p.payload_range, 72..88);
    assert_eq!(p.verify_checksum(), Ok(ChecksumSource::HomeAddress));

    // A Hop-by-Hop header after another header is malformed (RFC 8200 §4.1):
    // IPv6 | DestOpts(empty) | HbH | DestOpts(HAO) | MH.
    let mut b = BU_PACKET[..40].to_vec();
    b[5] = 56;
    b.extend_from_slice(&[0, 0, 1, 4, 0, 0, 0, 0]);
    b.extend_from_slice(&[IPPROTO_DSTOPTS, 0, 1, 4, 0, 0, 0, 0]);
    b.extend_from_slice(&BU_PACKET[40..]);
    assert_eq!(
        walk(&b).unwrap_err(),
        Error::Malformed("Hop-by-Hop header not first")
    );
}

#[test]
fn unknown_option_is_reported_with_packet_offset() {
    let mut b = BU_PACKET;
    // Replace PadN(2) by an unknown option 0x1e (skip) with two data octets.
    b[42] = 0x1e;
    let p = mobility(&b);
    let u = p.unknown_option.unwrap();
    assert_eq!(u.option_type, 0x1e);
    assert_eq!(u.offset, 42);
    assert_eq!(u.action(), UnknownOptionAction::Skip);
    assert_eq!(p.home_address, Some(HOA));
}

#[test]
fn other_routing_types_are_skipped() {
    let mut b = BA_PACKET;
    b[42] = 0; // type 0, Segments Left 1
    let p = mobility(&b);
    assert_eq!(p.rh2_home_address, None);
    assert_eq!(p.pseudo_header_dst(), COA);
}

#[test]
fn non_mobility_upper_layers() {
    // ICMPv6 after a HAO (a Mobile Prefix Solicitation's shape).
    let mut b = BU_PACKET;
    b[40] = 58;
    b[64..80].copy_from_slice(&[146, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let value = checksum::v6(&HOA, &HA, 58, &b[64..80]);
    b[66..68].copy_from_slice(&value.to_be_bytes());
    let w = walk(&b).unwrap();
    let Walk::Other(p) = &w else { panic!("{w:?}") };
    assert_eq!(p.upper_layer, 58);
    assert_eq!(p.payload_range, 64..80);
    assert_eq!(p.home_address, Some(HOA));
    assert_eq!(p.verify_checksum(), Ok(ChecksumSource::HomeAddress));
    assert_eq!(w.packet().upper_layer, 58);

    // ESP straight after the IPv6 header, and "no next header".
    for nh in [50, 59] {
        let mut b = BU_PACKET;
        b[6] = nh;
        let w = walk(&b).unwrap();
        assert!(matches!(&w, Walk::Other(p) if p.upper_layer == nh && p.payload_range == (40..80)));
    }
}

#[test]
fn bad_lengths() {
    // Buffer shorter than Payload Length says.
    assert_eq!(walk(&BU_PACKET[..79]).unwrap_err(), Error::BadLength);
    assert_eq!(walk(&BU_PACKET[..39]).unwrap_err(), Error::Truncated);
    // MH Header Len claims 24 octets, 16 present.
    let mut b = BU_PACKET;
    b[65] = 2;
    assert_eq!(walk(&b).unwrap_err(), Error::Truncated);
    // Payload ends inside the MH's first octets.
    let mut b = BU_PACKET;
    b[5] = 25;
    assert_eq!(walk(&b).unwrap_err(), Error::Truncated);
    // Payload ends inside the Destination Options header.
    let mut b = BU_PACKET;
    b[5] = 16;
    assert_eq!(walk(&b).unwrap_err(), Error::Truncated);
    // Not IPv6.
    let mut b = BU_PACKET;
    b[0] = 0x45;
    assert_eq!(walk(&b).unwrap_err(), Error::Malformed("IPv6 version"));
    // RH2 with Hdr Ext Len 3.
    let mut b = BA_PACKET.to_vec();
    b[41] = 3;
    b.splice(64..64, [0u8; 8]);
    b[5] = 48;
    assert_eq!(
        walk(&b).unwrap_err(),
        Error::Malformed("type 2 routing header length")
    );
}

#[test]
fn duplicate_hao_or_rh2() {
    // IPv6 | DestOpts(HAO) | DestOpts(HAO) | MH.
    let mut b = BU_PACKET[..64].to_vec();
    b[5] = 64;
    b[40] = IPPROTO_DSTOPTS;
    b.extend_from_slice(&BU_PACKET[40..]);
    assert_eq!(
        walk(&b).unwrap_err(),
        Error::Malformed("duplicate Home Address option")
    );
    let mut b = BA_PACKET[..64].to_vec();
    b[5] = 64;
    b[40] = IPPROTO_ROUTING;
    b.extend_from_slice(&BA_PACKET[40..]);
    assert_eq!(
        walk(&b).unwrap_err(),
        Error::Malformed("duplicate type 2 routing header")
    );
}

#[test]
fn emit_errors() {
    let mut buf = [0u8; 128];
    // MH length disagrees with its Header Len.
    assert_eq!(
        emit_mobility_packet(&bu_repr(), &BU_PACKET[64..72], &mut buf),
        Err(Error::BadLength)
    );
    assert_eq!(
        emit_mobility_packet(&bu_repr(), &[59, 0, 5], &mut buf),
        Err(Error::BadLength)
    );
    assert_eq!(
        emit_mobility_packet(&bu_repr(), &[], &mut buf),
        Err(Error::BadLength)
    );
    assert_eq!(
        emit_mobility_packet(&bu_repr(), &mh_of(&BU_PACKET), &mut buf[..79]),
        Err(Error::BufferTooSmall)
    );
}

fn addr() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

proptest! {
    #[test]
    fn walk_never_panics_on_random_bytes(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(w) = walk(&b) {
            let _ = w.packet().verify_checksum();
        }
    }

    #[test]
    fn walk_never_panics_on_mutated_packets(
        base in prop_oneof![Just(BU_PACKET), Just(BA_PACKET)],
        edits in proptest::collection::vec((0usize..80, any::<u8>()), 1..6),
        cut in 0usize..=80,
    ) {
        let mut b = base;
        for (i, v) in edits {
            b[i] = v;
        }
        if let Ok(w) = walk(&b[..cut]) {
            let p = w.packet();
            prop_assert!(p.payload_range.end <= cut);
            let _ = p.verify_checksum();
        }
    }

    #[test]
    fn emit_then_walk_round_trips(
        src in addr(), dst in addr(), hop_limit in any::<u8>(),
        hao in proptest::option::of(addr()), rh2 in proptest::option::of(addr()),
        body in proptest::collection::vec(any::<u8>(), 0..5).prop_map(|v| v.len()),
        fill in any::<u8>(),
    ) {
        let repr = MobilityPacketRepr {
            src_addr: src, dst_addr: dst, hop_limit,
            home_address: hao, rh2_home_address: rh2,
        };
        let mut mh = vec![fill; (body + 1) * 8];
        mh[0] = 59;
        mh[1] = body as u8;
        let mut buf = vec![0xa5u8; mobility_packet_len(&repr, mh.len())];
        emit_mobility_packet(&repr, &mh, &mut buf).unwrap();
        let p = mobility(&buf);
        prop_assert_eq!(p.repr(), repr);
        prop_assert_eq!(p.payload.len(), mh.len());
        let expected = if hao.is_some() {
            ChecksumSource::HomeAddress
        } else {
            ChecksumSource::OnWireSource
        };
        prop_assert_eq!(p.verify_checksum(), Ok(expected));
    }
}

/// An Echo Reply from the home agent to a mobile router away (RFC 6275 §9.3.2): `IPv6 |
/// RH2 | ICMPv6`, the ICMPv6 checksum over (HA, HoA); the walk sees the RH2's home
/// address as the pseudo-header destination and the checksum verifies.
#[test]
fn upper_layer_packet_with_rh2_checksums_over_the_home_address() {
    // Echo Reply: type 129, code 0, checksum, identifier 0x1234, sequence 7, "ping".
    let icmp = [
        129u8, 0, 0xff, 0xff, 0x12, 0x34, 0x00, 0x07, b'p', b'i', b'n', b'g',
    ];
    let repr = MobilityPacketRepr {
        src_addr: HA,
        dst_addr: COA,
        hop_limit: 64,
        home_address: None,
        rh2_home_address: Some(HOA),
    };
    let mut buf = vec![0u8; mobility_packet_len(&repr, icmp.len())];
    let n = emit_upper_layer_packet(&repr, 58, &icmp, 2..4, &mut buf).unwrap();
    assert_eq!(n, 40 + 24 + 12);
    assert_eq!(buf[6], IPPROTO_ROUTING);
    assert_eq!(&buf[24..40], &COA.octets());
    let Walk::Other(p) = walk(&buf).unwrap() else {
        panic!("an ICMPv6 packet is not an MH")
    };
    assert_eq!(p.upper_layer, 58);
    assert_eq!(p.rh2_home_address, Some(HOA));
    assert_eq!(p.pseudo_header_dst(), HOA);
    assert_eq!(p.verify_checksum(), Ok(ChecksumSource::OnWireSource));
    // Everything but the checksum is the caller's octets.
    assert_eq!(&p.payload[4..], &icmp[4..]);
    // The same with a HAO (a mobile node's own packet): the source in the pseudo-header is
    // the home address, and the Destination Options header names the upper layer.
    let from_mn = MobilityPacketRepr {
        src_addr: COA,
        dst_addr: HA,
        hop_limit: 64,
        home_address: Some(HOA),
        rh2_home_address: None,
    };
    let mut buf = vec![0u8; mobility_packet_len(&from_mn, icmp.len())];
    emit_upper_layer_packet(&from_mn, 58, &icmp, 2..4, &mut buf).unwrap();
    assert_eq!(buf[6], IPPROTO_DSTOPTS);
    assert_eq!(buf[40], 58);
    // The HAO sits where the home agent's filters look for it: octet 46.
    assert_eq!(buf[46], 201);
    let Walk::Other(p) = walk(&buf).unwrap() else {
        panic!("not an MH")
    };
    assert_eq!(p.verify_checksum(), Ok(ChecksumSource::HomeAddress));
    // A checksum field outside the upper layer is refused, not written past.
    assert_eq!(
        emit_upper_layer_packet(&repr, 58, &icmp[..3], 2..4, &mut buf),
        Err(Error::BadLength)
    );
}
