use super::*;
use crate::DSMIP_UDP_PORT;
use proptest::prelude::*;

// Inner IPv6: 2001:db8:10::5 -> 2001:db8:99::1, TC 0x2a (AF11, ECT(0)), hop limit 64,
// ICMPv6 echo request. Inner IPv4: 10.1.0.5 -> 203.0.113.9, TOS 0x2a, TTL 64, ICMP echo.
// `*_FWD` are the same after the forwarding step (hop limit / TTL 63, IPv4 checksum fixed).
// Outer: CoA 2001:db8:2::10 / 192.0.2.10 port 49152 -> HA 2001:db8:1::1 / 198.51.100.1
// port 4191, hop limit 64, IPv4 id 0x1234 + DF. All checksums computed independently.
static INNER6: [u8; 48] = [
    0x62, 0xa0, 0x00, 0x00, 0x00, 0x08, 0x3a, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x10, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x99, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0x23, 0x9a, 0x00, 0x01, 0x00, 0x01,
];
static INNER6_FWD: [u8; 48] = [
    0x62, 0xa0, 0x00, 0x00, 0x00, 0x08, 0x3a, 0x3f, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x10, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x99, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0x23, 0x9a, 0x00, 0x01, 0x00, 0x01,
];
static INNER4: [u8; 28] = [
    0x45, 0x2a, 0x00, 0x1c, 0xbe, 0xef, 0x00, 0x00, 0x40, 0x01, 0x75, 0xb8, 0x0a, 0x01, 0x00, 0x05,
    0xcb, 0x00, 0x71, 0x09, 0x08, 0x00, 0xf7, 0xfd, 0x00, 0x01, 0x00, 0x01,
];
static INNER4_FWD: [u8; 28] = [
    0x45, 0x2a, 0x00, 0x1c, 0xbe, 0xef, 0x00, 0x00, 0x3f, 0x01, 0x76, 0xb8, 0x0a, 0x01, 0x00, 0x05,
    0xcb, 0x00, 0x71, 0x09, 0x08, 0x00, 0xf7, 0xfd, 0x00, 0x01, 0x00, 0x01,
];
static OUTER6_FOR6: [u8; 40] = [
    0x62, 0xa0, 0x00, 0x00, 0x00, 0x30, 0x29, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
];
static OUTER6_FOR4: [u8; 40] = [
    0x62, 0xa0, 0x00, 0x00, 0x00, 0x1c, 0x04, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
];
static OUTER4_FOR6: [u8; 20] = [
    0x45, 0x2a, 0x00, 0x44, 0x12, 0x34, 0x40, 0x00, 0x40, 0x29, 0x3b, 0xf4, 0xc0, 0x00, 0x02, 0x0a,
    0xc6, 0x33, 0x64, 0x01,
];
// The inner IPv4 packet leaves DF clear, and so do the outer IPv4 headers around it
// (RFC 2003 §5.1); around IPv6 they set it.
static OUTER4_FOR4: [u8; 20] = [
    0x45, 0x2a, 0x00, 0x30, 0x12, 0x34, 0x00, 0x00, 0x40, 0x04, 0x7c, 0x2d, 0xc0, 0x00, 0x02, 0x0a,
    0xc6, 0x33, 0x64, 0x01,
];
static UDP4_FOR6: [u8; 28] = [
    0x45, 0x2a, 0x00, 0x4c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x3c, 0x04, 0xc0, 0x00, 0x02, 0x0a,
    0xc6, 0x33, 0x64, 0x01, 0xc0, 0x00, 0x10, 0x5f, 0x00, 0x38, 0xa6, 0x39,
];
static UDP4_FOR4: [u8; 28] = [
    0x45, 0x2a, 0x00, 0x38, 0x12, 0x34, 0x00, 0x00, 0x40, 0x11, 0x7c, 0x18, 0xc0, 0x00, 0x02, 0x0a,
    0xc6, 0x33, 0x64, 0x01, 0xc0, 0x00, 0x10, 0x5f, 0x00, 0x24, 0x43, 0x07,
];

const COA6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x10);
const HA6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const COA4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const HA4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const HEADROOM: usize = 64;

fn ipv6_outer() -> Encapsulation {
    Encapsulation::Ipv6 {
        src_addr: COA6,
        dst_addr: HA6,
    }
}

fn ipv4_outer() -> Encapsulation {
    Encapsulation::Ipv4 {
        src_addr: COA4,
        dst_addr: HA4,
    }
}

fn udp_outer() -> Encapsulation {
    Encapsulation::Udp4 {
        src_addr: COA4,
        dst_addr: HA4,
        src_port: 49152,
        dst_port: DSMIP_UDP_PORT,
    }
}

fn params() -> EncapParams {
    EncapParams {
        ipv4_ident: 0x1234,
        ..EncapParams::default()
    }
}

/// (outer, inner before, inner after forwarding, expected outer header)
type Combo = (Encapsulation, &'static [u8], &'static [u8], &'static [u8]);

fn combos() -> [Combo; 6] {
    [
        (ipv6_outer(), &INNER6, &INNER6_FWD, &OUTER6_FOR6),
        (ipv6_outer(), &INNER4, &INNER4_FWD, &OUTER6_FOR4),
        (ipv4_outer(), &INNER6, &INNER6_FWD, &OUTER4_FOR6),
        (ipv4_outer(), &INNER4, &INNER4_FWD, &OUTER4_FOR4),
        (udp_outer(), &INNER6, &INNER6_FWD, &UDP4_FOR6),
        (udp_outer(), &INNER4, &INNER4_FWD, &UDP4_FOR4),
    ]
}

fn with_headroom(inner: &[u8]) -> Vec<u8> {
    let mut buf = vec![0xa5u8; HEADROOM];
    buf.extend_from_slice(inner);
    buf
}

fn encapsulated(enc: &Encapsulation, p: &EncapParams, buf: &mut [u8]) -> Range<usize> {
    match encapsulate(enc, p, buf, HEADROOM).unwrap() {
        EncapOutcome::Encapsulated(r) => r,
        other => panic!("{other:?}"),
    }
}

fn forwarded(buf: &mut [u8]) -> Decapsulated {
    match decapsulate(buf).unwrap() {
        DecapOutcome::Forward(d) => d,
        other => panic!("{other:?}"),
    }
}

fn ipv4_header_sums_to_zero(header: &[u8]) -> bool {
    checksum::finish(checksum::sum(0, header)) == 0
}

#[test]
fn overheads() {
    assert_eq!(ipv6_outer().overhead(), 40);
    assert_eq!(ipv4_outer().overhead(), 20);
    assert_eq!(udp_outer().overhead(), 28);
}

#[test]
fn encapsulate_six_combos() {
    for (enc, inner, inner_fwd, outer) in combos() {
        let mut buf = with_headroom(inner);
        let range = encapsulated(&enc, &params(), &mut buf);
        let start = HEADROOM - enc.overhead();
        assert_eq!(range, start..HEADROOM + inner.len(), "{enc:?}");
        assert_eq!(&buf[start..HEADROOM], outer, "{enc:?}");
        assert_eq!(&buf[HEADROOM..], inner_fwd, "{enc:?}");
        assert!(buf[..start].iter().all(|&b| b == 0xa5));
    }
}

/// An inner IPv4 packet with DF set keeps the outer IPv4 header's DF set (RFC 2003 §5.1
/// MUST); the header checksum follows.
#[test]
fn outer_ipv4_df_follows_the_inner_packet() {
    let mut inner = INNER4;
    inner[6] |= 0x40;
    inner[10..12].fill(0);
    let c = crate::checksum::ipv4_header(&inner[..20]);
    inner[10..12].copy_from_slice(&c.to_be_bytes());
    for enc in [ipv4_outer(), udp_outer()] {
        let mut buf = with_headroom(&inner);
        let range = encapsulated(&enc, &params(), &mut buf);
        let outer = &buf[range.start..];
        assert_eq!(outer[6], 0x40, "{enc:?}");
        assert_eq!(crate::checksum::ipv4_header(&outer[..20]), 0, "{enc:?}");
    }
}

#[test]
fn decapsulate_six_combos() {
    for (enc, inner, inner_fwd, outer) in combos() {
        let mut buf = [outer, inner_fwd].concat();
        let d = forwarded(&mut buf);
        assert_eq!(d.outer, enc);
        assert_eq!(d.inner_range, outer.len()..buf.len());
        assert_eq!(
            d.inner,
            InnerPacket {
                version: IpVersion::of(inner).unwrap(),
                len: inner.len(),
                dscp: 0x0a,
                ecn: Ecn::Ect0,
                dont_frag: IpVersion::of(inner).unwrap() == IpVersion::V6,
            }
        );
        // Outer ECT(0) on inner ECT(0): nothing changes.
        assert_eq!(&buf[d.inner_range], inner_fwd);
    }
}

#[test]
fn checksums_after_encapsulation() {
    for (enc, inner, _, _) in combos() {
        let mut buf = with_headroom(inner);
        let range = encapsulated(&enc, &params(), &mut buf);
        let pkt = &buf[range];
        let inner_at = enc.overhead();
        if IpVersion::of(inner).unwrap() == IpVersion::V4 {
            assert!(ipv4_header_sums_to_zero(&pkt[inner_at..inner_at + 20]));
        }
        if let Encapsulation::Ipv4 { .. } | Encapsulation::Udp4 { .. } = enc {
            assert!(ipv4_header_sums_to_zero(&pkt[..20]));
        }
        if let Encapsulation::Udp4 { .. } = enc {
            let udp = &pkt[20..];
            let acc = checksum::pseudo_header_v4(&COA4, &HA4, IPPROTO_UDP, udp.len() as u16);
            assert_eq!(checksum::finish(checksum::sum(acc, udp)), 0);
        }
    }
}

#[test]
fn udp_checksum_may_be_zero() {
    let p = EncapParams {
        udp_checksum: false,
        ..params()
    };
    let mut buf = with_headroom(&INNER6);
    let range = encapsulated(&udp_outer(), &p, &mut buf);
    assert_eq!(&buf[range.start + 26..range.start + 28], &[0, 0]);
    let d = forwarded(&mut buf[range]);
    assert_eq!(d.inner.version, IpVersion::V6);
}

#[test]
fn hop_limit_exceeded_leaves_packet_alone() {
    for (enc, inner, _, _) in combos() {
        for hl in [0u8, 1] {
            let mut inner = inner.to_vec();
            let v4 = IpVersion::of(&inner).unwrap() == IpVersion::V4;
            inner[if v4 { 8 } else { 7 }] = hl;
            let mut buf = with_headroom(&inner);
            let before = buf.clone();
            let version = if v4 { IpVersion::V4 } else { IpVersion::V6 };
            assert_eq!(
                encapsulate(&enc, &params(), &mut buf, HEADROOM),
                Ok(EncapOutcome::HopLimitExceeded(version))
            );
            assert_eq!(buf, before);
            // Without the forwarding step it goes through unchanged.
            let p = EncapParams {
                decrement_inner: false,
                ..params()
            };
            let r = encapsulated(&enc, &p, &mut buf);
            assert_eq!(&buf[HEADROOM..r.end], &inner[..]);
        }
    }
}

#[test]
fn ttl_decrement_keeps_ipv4_checksum_valid_at_the_edges() {
    // Checksums that pass through 0x0000 / 0xffff during the RFC 1624 update.
    for ttl in 2..=255u8 {
        for ident in [0u16, 0xffff, 0x8000, 0x7fff, 0x1234] {
            let mut h = [0u8; 20];
            let mut p = Ipv4Header::new_unchecked(&mut h[..]);
            Ipv4Repr {
                src_addr: Ipv4Addr::new(0, 0, 0, 0),
                dst_addr: Ipv4Addr::new(255, 255, 255, 255),
                protocol: 0xff,
                payload_len: 0,
                ttl,
                dscp: 0,
                ecn: 0,
                ident,
                dont_frag: false,
                more_frags: false,
                frag_offset: 0,
            }
            .emit(&mut p)
            .unwrap();
            assert!(matches!(
                forward_inner(&mut h, true),
                Ok(ForwardOutcome::Forward(_))
            ));
            assert_eq!(h[8], ttl - 1);
            assert!(ipv4_header_sums_to_zero(&h), "ttl {ttl} ident {ident:#x}");
        }
    }
}

#[test]
fn ecn_and_dscp_on_encapsulation() {
    // Inner CE is copied as CE (RFC 6040 normal mode).
    let mut inner = INNER4;
    inner[1] = 0x2b;
    let mut buf = with_headroom(&inner);
    let r = encapsulated(&ipv6_outer(), &params(), &mut buf);
    let outer = Ipv6Header::new_unchecked(&buf[r.clone()]);
    assert_eq!(outer.traffic_class(), 0x2b);
    // Without DSCP copy only the ECN field is carried.
    let p = EncapParams {
        copy_dscp: false,
        ..params()
    };
    let mut buf = with_headroom(&inner);
    let r = encapsulated(&ipv4_outer(), &p, &mut buf);
    assert_eq!(buf[r.start + 1], 0x03);
    assert!(ipv4_header_sums_to_zero(&buf[r.start..r.start + 20]));
    let mut buf = with_headroom(&INNER6);
    let r = encapsulated(&udp_outer(), &p, &mut buf);
    assert_eq!(buf[r.start + 1], 0x02);
    // What a sender leaving the outer header to the kernel asks for is what is written.
    assert_eq!(outer_tos(&p, &INNER6), Ok(0x02));
    assert_eq!(outer_tos(&p, &inner), Ok(0x03));
    assert_eq!(outer_tos(&params(), &inner), Ok(0x2b));
    assert_eq!(outer_tos(&p, &INNER6[..10]), Err(Error::Truncated));
    // Flow label on the IPv6 outer header.
    let p = EncapParams {
        flow_label: 0xabcde,
        ..params()
    };
    let mut buf = with_headroom(&INNER6);
    let r = encapsulated(&ipv6_outer(), &p, &mut buf);
    assert_eq!(Ipv6Header::new_unchecked(&buf[r]).flow_label(), 0xabcde);
}

#[test]
fn rfc6040_decapsulation_table() {
    use Ecn::*;
    // Rows: inner; columns: outer Not-ECT, ECT(0), ECT(1), CE (RFC 6040 Figure 4).
    let table = [
        (NotEct, [Some(NotEct), Some(NotEct), Some(NotEct), None]),
        (Ect0, [Some(Ect0), Some(Ect0), Some(Ect1), Some(Ce)]),
        (Ect1, [Some(Ect1), Some(Ect1), Some(Ect1), Some(Ce)]),
        (Ce, [Some(Ce), Some(Ce), Some(Ce), Some(Ce)]),
    ];
    for (inner, row) in table {
        for (outer, expected) in [NotEct, Ect0, Ect1, Ce].into_iter().zip(row) {
            assert_eq!(
                ecn_decapsulate(outer, inner),
                expected,
                "{inner:?}/{outer:?}"
            );
        }
    }
    for bits in 0..4 {
        assert_eq!(Ecn::from_bits(bits).bits(), bits);
        assert_eq!(ecn_encapsulate(Ecn::from_bits(bits)), Ecn::from_bits(bits));
    }
}

#[test]
fn decapsulation_applies_ecn_in_place() {
    for (enc, _, inner_fwd, outer) in combos() {
        for (inner_ecn, outer_ecn) in [
            (Ecn::NotEct, Ecn::NotEct),
            (Ecn::NotEct, Ecn::Ce),
            (Ecn::Ect0, Ecn::Ce),
            (Ecn::Ect1, Ecn::Ce),
            (Ecn::Ect0, Ecn::Ect1),
            (Ecn::Ce, Ecn::NotEct),
        ] {
            // Re-encapsulate so that every checksum is right for the chosen ECN values.
            let mut inner = inner_fwd.to_vec();
            let v4 = inner[0] >> 4 == 4;
            if v4 {
                inner[1] = (inner[1] & !3) | inner_ecn.bits();
                Ipv4Header::new_unchecked(&mut inner[..]).fill_checksum();
            } else {
                inner[1] = (inner[1] & 0xcf) | (inner_ecn.bits() << 4);
            }
            let mut buf = with_headroom(&inner);
            let p = EncapParams {
                decrement_inner: false,
                ..params()
            };
            let r = encapsulated(&enc, &p, &mut buf);
            // Rewrite the outer ECN as a congested router on the path would.
            let pkt = &mut buf[r];
            if let Encapsulation::Ipv6 { .. } = enc {
                pkt[1] = (pkt[1] & 0xcf) | (outer_ecn.bits() << 4);
            } else {
                pkt[1] = (pkt[1] & !3) | outer_ecn.bits();
                Ipv4Header::new_unchecked(&mut pkt[..]).fill_checksum();
            }
            let expected = ecn_decapsulate(outer_ecn, inner_ecn);
            let d = match (decapsulate(pkt).unwrap(), expected) {
                (DecapOutcome::Drop(d), None) => d,
                (DecapOutcome::Forward(d), Some(e)) => {
                    assert_eq!(d.inner.ecn, e);
                    d
                }
                (got, _) => panic!("{got:?} for {inner_ecn:?}/{outer_ecn:?}"),
            };
            assert_eq!(d.inner_range, outer.len()..pkt.len());
            let inner = &pkt[d.inner_range];
            if let Some(e) = expected {
                if v4 {
                    assert_eq!(inner[1] & 3, e.bits());
                    assert!(ipv4_header_sums_to_zero(&inner[..20]));
                } else {
                    assert_eq!((inner[1] >> 4) & 3, e.bits());
                }
            }
        }
    }
}

#[test]
fn decapsulate_inner_for_sockets_without_outer_header() {
    let mut inner = INNER4_FWD;
    let out = decapsulate_inner(Ecn::Ce, &mut inner).unwrap();
    assert!(matches!(out, DecapOutcome::Forward(i) if i.ecn == Ecn::Ce && i.len == 28));
    assert_eq!(inner[1], 0x2b);
    assert!(ipv4_header_sums_to_zero(&inner[..20]));
    let mut inner = INNER6_FWD;
    inner[1] &= 0xcf;
    let out = decapsulate_inner(Ecn::Ce, &mut inner).unwrap();
    assert!(matches!(out, DecapOutcome::Drop(i) if i.ecn == Ecn::NotEct));
}

#[test]
fn trailing_octets_are_trimmed() {
    // After the inner packet on encapsulation.
    let mut buf = with_headroom(&[&INNER6[..], &[0xee; 5]].concat());
    let r = encapsulated(&ipv6_outer(), &params(), &mut buf);
    assert_eq!(r, 24..HEADROOM + 48);
    assert_eq!(&buf[r.start + 4..r.start + 6], &[0, 48]);
    // After the outer packet (link padding) and after the inner inside the outer.
    let mut buf = [&OUTER4_FOR4[..], &INNER4_FWD[..], &[0; 6]].concat();
    assert_eq!(forwarded(&mut buf).inner_range, 20..48);
    let mut buf = [&UDP4_FOR4[..], &INNER4_FWD[..]].concat();
    // Claim one more octet in IPv4 and UDP lengths than the inner packet needs.
    buf.push(0);
    buf[3] += 1;
    Ipv4Header::new_unchecked(&mut buf[..]).fill_checksum();
    buf[25] += 1;
    buf[26..28].fill(0);
    assert_eq!(forwarded(&mut buf).inner_range, 28..56);
}

#[test]
fn outer_ipv6_destination_options_are_stepped_over() {
    // Tunnel Encapsulation Limit option (RFC 2473 §4.1.1): type 4, length 1, value 4, PadN.
    let mut buf = OUTER6_FOR6.to_vec();
    buf[6] = IPPROTO_DSTOPTS;
    buf[5] += 8;
    buf.extend_from_slice(&[IPPROTO_IPV6, 0, 4, 1, 4, 1, 1, 0]);
    buf.extend_from_slice(&INNER6_FWD);
    let d = forwarded(&mut buf);
    assert_eq!(d.inner_range, 48..96);
    assert_eq!(d.outer, ipv6_outer());
}

#[test]
fn encapsulation_errors() {
    let mut buf = with_headroom(&INNER6);
    assert_eq!(
        encapsulate(&ipv6_outer(), &params(), &mut buf, 39),
        Err(Error::BufferTooSmall)
    );
    assert_eq!(
        encapsulate(&ipv6_outer(), &params(), &mut buf[..HEADROOM], HEADROOM),
        Err(Error::Truncated)
    );
    assert_eq!(
        encapsulate(&ipv6_outer(), &params(), &mut buf[..HEADROOM - 1], HEADROOM),
        Err(Error::Truncated)
    );
    let mut bad = with_headroom(&INNER6);
    bad[HEADROOM] = 0x52;
    assert_eq!(
        encapsulate(&ipv6_outer(), &params(), &mut bad, HEADROOM),
        Err(Error::Malformed("IP version"))
    );
    // Inner shorter than its own header claims.
    for inner in [&INNER6[..47], &INNER6[..39], &INNER4[..27], &INNER4[..19]] {
        let mut buf = with_headroom(inner);
        assert_eq!(
            encapsulate(&ipv4_outer(), &params(), &mut buf, HEADROOM),
            Err(Error::Truncated)
        );
    }
    let mut ihl = with_headroom(&INNER4);
    ihl[HEADROOM] = 0x44;
    assert_eq!(
        encapsulate(&ipv4_outer(), &params(), &mut ihl, HEADROOM),
        Err(Error::BadLength)
    );
    // 65516-octet inner IPv4 packet: fits IPv6 (payload length), not IPv4 (total length).
    let mut big = vec![0u8; HEADROOM + 65516];
    big[HEADROOM..HEADROOM + 20].copy_from_slice(&INNER4[..20]);
    big[HEADROOM + 2..HEADROOM + 4].copy_from_slice(&65516u16.to_be_bytes());
    assert!(matches!(
        encapsulate(&ipv6_outer(), &params(), &mut big, HEADROOM),
        Ok(EncapOutcome::Encapsulated(_))
    ));
    let before = big.clone();
    assert_eq!(
        encapsulate(&ipv4_outer(), &params(), &mut big, HEADROOM),
        Err(Error::BadLength)
    );
    assert_eq!(big, before);
}

#[test]
fn decapsulation_errors() {
    let whole = |outer: &[u8], inner: &[u8]| [outer, inner].concat();
    assert_eq!(decapsulate(&mut []), Err(Error::Truncated));
    // Outer length disagrees with the buffer.
    let mut b = whole(&OUTER6_FOR6, &INNER6_FWD);
    assert_eq!(decapsulate(&mut b[..87]), Err(Error::BadLength));
    let mut b = whole(&OUTER4_FOR4, &INNER4_FWD);
    assert_eq!(decapsulate(&mut b[..47]), Err(Error::BadLength));
    // Bad outer IPv4 checksum.
    let mut b = whole(&OUTER4_FOR4, &INNER4_FWD);
    b[8] = 1;
    assert_eq!(decapsulate(&mut b), Err(Error::BadChecksum));
    // Fragment.
    let mut b = whole(&OUTER4_FOR4, &INNER4_FWD);
    b[6] = 0x20;
    Ipv4Header::new_unchecked(&mut b[..]).fill_checksum();
    assert_eq!(
        decapsulate(&mut b),
        Err(Error::Malformed("outer IPv4 fragment"))
    );
    // Not a tunnel protocol.
    let mut b = whole(&OUTER4_FOR4, &INNER4_FWD);
    b[9] = 6;
    Ipv4Header::new_unchecked(&mut b[..]).fill_checksum();
    assert_eq!(
        decapsulate(&mut b),
        Err(Error::Malformed("not a tunnel packet"))
    );
    let mut b = whole(&OUTER6_FOR6, &INNER6_FWD);
    b[6] = 58;
    assert_eq!(
        decapsulate(&mut b),
        Err(Error::Malformed("not a tunnel packet"))
    );
    // Protocol 41 carrying IPv4.
    let mut b = whole(&OUTER6_FOR6[..], &[&INNER4_FWD[..], &[0; 20]].concat());
    assert_eq!(
        decapsulate(&mut b),
        Err(Error::Malformed("inner version disagrees with protocol"))
    );
    // Inner shorter than its header says.
    let mut b = whole(&OUTER6_FOR6, &INNER6_FWD);
    b[5] -= 1;
    assert_eq!(decapsulate(&mut b[..87]), Err(Error::Truncated));
    // UDP: bad checksum, bad length, no room for the header, unknown inner version.
    let mut b = whole(&UDP4_FOR6, &INNER6_FWD);
    b[27] ^= 0xff;
    assert_eq!(decapsulate(&mut b), Err(Error::BadChecksum));
    let mut b = whole(&UDP4_FOR6, &INNER6_FWD);
    b[25] = 7;
    assert_eq!(decapsulate(&mut b), Err(Error::BadLength));
    let mut b = whole(&UDP4_FOR6, &INNER6_FWD);
    b[25] += 1;
    assert_eq!(decapsulate(&mut b), Err(Error::BadLength));
    let mut b = UDP4_FOR6[..24].to_vec();
    b[3] = 24;
    Ipv4Header::new_unchecked(&mut b[..]).fill_checksum();
    assert_eq!(decapsulate(&mut b), Err(Error::Truncated));
    let mut b = whole(&UDP4_FOR6, &INNER6_FWD);
    b[26..28].fill(0);
    b[28] = 0x12;
    assert_eq!(decapsulate(&mut b), Err(Error::Malformed("IP version")));
}

fn inner_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<u8>(),
        2u8..=255,
    )
        .prop_map(|(v4, payload, tos, hl)| {
            if v4 {
                let mut b = vec![0u8; 20];
                Ipv4Repr {
                    src_addr: Ipv4Addr::new(10, 0, 0, 1),
                    dst_addr: Ipv4Addr::new(10, 0, 0, 2),
                    protocol: 17,
                    payload_len: payload.len() as u16,
                    ttl: hl,
                    dscp: tos >> 2,
                    ecn: tos & 3,
                    ident: u16::from(tos) * 257,
                    dont_frag: tos & 1 == 0,
                    more_frags: false,
                    frag_offset: 0,
                }
                .emit(&mut Ipv4Header::new_unchecked(&mut b[..]))
                .unwrap();
                b.extend_from_slice(&payload);
                b
            } else {
                let mut b = vec![0u8; 40];
                Ipv6Repr {
                    src_addr: COA6,
                    dst_addr: HA6,
                    next_header: 17,
                    payload_len: payload.len() as u16,
                    hop_limit: hl,
                    traffic_class: tos,
                    flow_label: 0x12345,
                }
                .emit(&mut Ipv6Header::new_unchecked(&mut b[..]));
                b.extend_from_slice(&payload);
                b
            }
        })
}

fn encapsulation() -> impl Strategy<Value = Encapsulation> {
    prop_oneof![
        Just(ipv6_outer()),
        Just(ipv4_outer()),
        (any::<u16>(), any::<u16>()).prop_map(|(s, d)| Encapsulation::Udp4 {
            src_addr: COA4,
            dst_addr: HA4,
            src_port: s,
            dst_port: d,
        }),
    ]
}

proptest! {
    #[test]
    fn encap_decap_round_trip(
        inner in inner_packet(),
        enc in encapsulation(),
        hop_limit in any::<u8>(),
        copy_dscp in any::<bool>(),
        udp_checksum in any::<bool>(),
    ) {
        let p = EncapParams { hop_limit, copy_dscp, udp_checksum, ..params() };
        let mut buf = with_headroom(&inner);
        let r = encapsulated(&enc, &p, &mut buf);
        let forwarded_inner = buf[HEADROOM..].to_vec();
        if inner[0] >> 4 == 4 {
            prop_assert!(ipv4_header_sums_to_zero(&forwarded_inner[..20]));
            prop_assert_eq!(forwarded_inner[8], inner[8] - 1);
        } else {
            prop_assert_eq!(forwarded_inner[7], inner[7] - 1);
        }
        let start = r.start;
        let d = forwarded(&mut buf[r]);
        prop_assert_eq!(d.outer, enc);
        prop_assert_eq!(d.inner.len, inner.len());
        prop_assert_eq!(&buf[start + d.inner_range.start..start + d.inner_range.end], &forwarded_inner[..]);
    }

    #[test]
    fn decapsulate_never_panics(mut b in proptest::collection::vec(any::<u8>(), 0..128)) {
        let len = b.len();
        if let Ok(DecapOutcome::Forward(d) | DecapOutcome::Drop(d)) = decapsulate(&mut b) {
            prop_assert!(d.inner_range.end <= len);
        }
        let _ = decapsulate_inner(Ecn::Ce, &mut b);
    }

    #[test]
    fn decapsulate_never_panics_on_mutated_packets(
        which in 0usize..6,
        edits in proptest::collection::vec((0usize..96, any::<u8>()), 1..5),
        cut in 0usize..=96,
    ) {
        let (_, _, inner_fwd, outer) = combos()[which];
        let mut b = [outer, inner_fwd].concat();
        for (i, v) in edits {
            if let Some(x) = b.get_mut(i) {
                *x = v;
            }
        }
        let cut = cut.min(b.len());
        let _ = decapsulate(&mut b[..cut]);
    }

    #[test]
    fn encapsulate_never_panics(
        mut b in proptest::collection::vec(any::<u8>(), 0..128),
        headroom in 0usize..130,
        enc in encapsulation(),
    ) {
        let len = b.len();
        if let Ok(EncapOutcome::Encapsulated(r)) = encapsulate(&enc, &params(), &mut b, headroom) {
            prop_assert!(r.end <= len);
        }
    }
}
