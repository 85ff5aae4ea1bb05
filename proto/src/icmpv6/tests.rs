use super::*;

const LL_ROUTER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const HOA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];

// The checksums below were computed independently (RFC 1071 sum over the RFC 8200 §8.1
// pseudo-header, in Python) for the addresses each test names.

/// Unsolicited NA for 2001:db8:1::100 from a router (R, O), TLLA 02:00:00:00:00:0a;
/// checksum for fe80::1 → ff02::1.
static NA: [u8; 32] = [
    0x88, 0x00, 0xa7, 0x59, 0xa0, 0x00, 0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a,
];

/// DAD NS for 2001:db8:1::100; checksum for :: → ff02::1:ff00:100.
static NS: [u8; 24] = [
    0x87, 0x00, 0x4a, 0xee, 0x00, 0x00, 0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
];

/// RS with SLLA 02:00:00:00:00:0b; checksum for fe80::b → ff02::2.
static RS: [u8; 16] = [
    0x85, 0x00, 0x7a, 0x18, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b,
];

/// RA from a home agent (H), hop limit 64, lifetime 1800 s, SLLA 02:00:00:00:00:01,
/// MTU 1500, prefix 2001:db8:1::/64 (L, A, 86400 s / 14400 s); checksum for
/// fe80::1 → ff02::1.
static RA: [u8; 64] = [
    0x86, 0x00, 0x2b, 0xb8, 0x40, 0x20, 0x07, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0x05, 0xdc,
    0x03, 0x04, 0x40, 0xc0, 0x00, 0x01, 0x51, 0x80, 0x00, 0x00, 0x38, 0x40, 0x00, 0x00, 0x00, 0x00,
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

fn na_repr() -> Icmpv6Repr<'static> {
    Icmpv6Repr::NeighborAdvertisement(NeighborAdvertisement {
        flags: NaFlags::R | NaFlags::O,
        target: HOA,
        options: vec![NdOption::TargetLinkLayerAddress(&MAC)],
    })
}

fn ra_repr() -> Icmpv6Repr<'static> {
    Icmpv6Repr::RouterAdvertisement(RouterAdvertisement {
        cur_hop_limit: 64,
        flags: RaFlags::H,
        router_lifetime: 1800,
        reachable_time: 0,
        retrans_timer: 0,
        options: vec![
            NdOption::SourceLinkLayerAddress(&[0x02, 0, 0, 0, 0, 0x01]),
            NdOption::Mtu(1500),
            NdOption::PrefixInformation(PrefixInformation {
                prefix_len: 64,
                flags: PrefixFlags::L | PrefixFlags::A,
                valid_lifetime: 86400,
                preferred_lifetime: 14400,
                prefix: "2001:db8:1::".parse().unwrap(),
            }),
        ],
    })
}

/// Emits `repr` over a dirty buffer, checks the octets against `fixture` (checksum
/// aside, emit leaves it zero), fills the checksum for `src` → `dst` and compares again.
fn emits_as(repr: &Icmpv6Repr<'_>, fixture: &[u8], src: Ipv6Addr, dst: Ipv6Addr) {
    assert_eq!(repr.buffer_len(), fixture.len());
    let mut buf = vec![0xa5u8; fixture.len()];
    let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut p).unwrap();
    assert_eq!(p.checksum(), 0, "emit leaves the checksum to the kernel");
    p.fill_checksum(&src, &dst);
    assert_eq!(buf, fixture);
    let p = Icmpv6Packet::new_checked(fixture).unwrap();
    assert!(p.verify_checksum(&src, &dst));
    assert_eq!(&Icmpv6Repr::parse(&p).unwrap(), repr);
}

#[test]
fn neighbor_advertisement() {
    let p = Icmpv6Packet::new_checked(&NA[..]).unwrap();
    assert_eq!(p.msg_type(), Icmpv6Type::NeighborAdvertisement);
    assert_eq!(p.msg_code(), 0);
    assert_eq!(p.checksum(), 0xa759);
    assert!(p.na_flags().router() && !p.na_flags().solicited() && p.na_flags().override_flag());
    assert_eq!(p.target_addr(), HOA);
    assert_eq!(p.nd_options(), &NA[24..]);
    emits_as(&na_repr(), &NA, LL_ROUTER, ALL_NODES);
    // The 24 reserved bits after R/S/O are ignored on receipt and zero on emit.
    let mut b = NA;
    b[5..8].copy_from_slice(&[1, 2, 3]);
    assert_eq!(Icmpv6Repr::parse_bytes(&b).unwrap(), na_repr());
}

#[test]
fn neighbor_solicitation() {
    let repr = Icmpv6Repr::NeighborSolicitation(NeighborSolicitation {
        target: HOA,
        options: vec![],
    });
    emits_as(&repr, &NS, Ipv6Addr::UNSPECIFIED, solicited_node(HOA));
    assert_eq!(
        Icmpv6Packet::new_checked(&NS[..]).unwrap().target_addr(),
        HOA
    );
}

#[test]
fn router_solicitation() {
    let repr = Icmpv6Repr::RouterSolicitation(RouterSolicitation {
        options: vec![NdOption::SourceLinkLayerAddress(&[0x02, 0, 0, 0, 0, 0x0b])],
    });
    emits_as(
        &repr,
        &RS,
        "fe80::b".parse().unwrap(),
        "ff02::2".parse().unwrap(),
    );
    // Without options: the 8 octets babymdd sends.
    let bare = Icmpv6Repr::RouterSolicitation(RouterSolicitation::default());
    let mut buf = [0xa5u8; 8];
    bare.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]))
        .unwrap();
    assert_eq!(buf, [133, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn router_advertisement() {
    let p = Icmpv6Packet::new_checked(&RA[..]).unwrap();
    assert_eq!(p.cur_hop_limit(), 64);
    assert_eq!(p.ra_flags(), RaFlags::H);
    assert_eq!(p.router_lifetime(), 1800);
    assert_eq!((p.reachable_time(), p.retrans_timer()), (0, 0));
    emits_as(&ra_repr(), &RA, LL_ROUTER, ALL_NODES);
}

#[test]
fn unknown_nd_options_are_kept() {
    // The NA with a Nonce option (type 14, RFC 3971 §5.3.2) after the TLLA.
    let mut b = NA.to_vec();
    b.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6]);
    let r = Icmpv6Repr::parse_bytes(&b).unwrap();
    let Icmpv6Repr::NeighborAdvertisement(na) = &r else {
        panic!("{r:?}")
    };
    assert_eq!(
        na.options[1],
        NdOption::Unknown {
            option_type: 14,
            data: &[1, 2, 3, 4, 5, 6]
        }
    );
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]))
        .unwrap();
    b[2..4].fill(0);
    assert_eq!(out, b);
}

// A Parameter Problem about a 48-octet packet, pointer 40 (its Payload Proto); checksum
// for 2001:db8:1::1 → 2001:db8:2::2.
#[test]
fn parameter_problem() {
    let src: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8:2::2".parse().unwrap();
    let invoking: Vec<u8> = (0..48u8).collect();
    let repr = Icmpv6Repr::Error(ErrorMessage::parameter_problem(
        PARAM_PROBLEM_ERRONEOUS_HEADER_FIELD,
        40,
        &invoking,
    ));
    let mut expected = vec![4, 0, 0, 0, 0, 0, 0, 40];
    expected.extend_from_slice(&invoking);
    let mut buf = vec![0xa5u8; repr.buffer_len()];
    repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]))
        .unwrap();
    assert_eq!(buf, expected);
    let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(p.error_field(), 40);
    assert_eq!(p.invoking_packet(), &invoking[..]);
    assert_eq!(Icmpv6Repr::parse(&p).unwrap(), repr);

    // As a whole IPv6 packet: header, then the message with its checksum.
    let mut pkt = vec![0xa5u8; repr.ipv6_packet_len()];
    repr.emit_ipv6_packet(src, dst, 64, &mut pkt).unwrap();
    let ip = Ipv6Repr::parse(&Ipv6Header::new_checked(&pkt[..]).unwrap()).unwrap();
    assert_eq!((ip.src_addr, ip.dst_addr), (src, dst));
    assert_eq!((ip.next_header, ip.payload_len, ip.hop_limit), (58, 56, 64));
    assert_eq!(u16::from_be_bytes([pkt[42], pkt[43]]), 0x75ab);
    assert!(
        Icmpv6Packet::new_checked(&pkt[40..])
            .unwrap()
            .verify_checksum(&src, &dst)
    );
}

#[test]
fn error_quotes_up_to_the_minimum_mtu() {
    // RFC 4443 §2.4(c): the whole error packet fits in 1280 octets.
    let invoking = vec![0x5a; 1500];
    let repr = Icmpv6Repr::Error(ErrorMessage::parameter_problem(0, 41, &invoking));
    assert_eq!(repr.ipv6_packet_len(), MIN_MTU);
    let mut pkt = vec![0u8; MIN_MTU];
    repr.emit_ipv6_packet(HOA, HOA, 64, &mut pkt).unwrap();
    assert_eq!(u16::from_be_bytes([pkt[4], pkt[5]]) as usize, MIN_MTU - 40);
    assert!(pkt[48..].iter().all(|&b| b == 0x5a));
    // One octet less fits exactly.
    let repr = Icmpv6Repr::Error(ErrorMessage::parameter_problem(0, 41, &invoking[..1232]));
    assert_eq!(repr.ipv6_packet_len(), MIN_MTU);
}

#[test]
fn echo() {
    // Echo Request, id 1, seq 2, "hi"; checksum for fe80::1 -> fe80::b.
    let b = [128, 0, 0x1a, 0x41, 0, 1, 0, 2, b'h', b'i'];
    let (src, dst) = (LL_ROUTER, "fe80::b".parse().unwrap());
    let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
    assert_eq!(
        (p.echo_ident(), p.echo_seq_no(), p.echo_data()),
        (1, 2, &b"hi"[..])
    );
    let r = Icmpv6Repr::parse(&p).unwrap();
    let echo = Echo {
        ident: 1,
        seq_no: 2,
        data: b"hi",
    };
    assert_eq!(r, Icmpv6Repr::EchoRequest(echo));
    emits_as(&r, &b, src, dst);
    // The reply: same fields, type 129.
    let reply = r.echo_reply().unwrap();
    assert_eq!(reply, Icmpv6Repr::EchoReply(echo));
    let mut out = [0u8; 10];
    let mut p = Icmpv6Packet::new_unchecked(&mut out[..]);
    reply.emit(&mut p).unwrap();
    p.fill_checksum(&dst, &src);
    assert_eq!((out[0], &out[4..]), (129, &b[4..]));
    assert_eq!(reply.echo_reply(), None);
    // A non-zero code is not an Echo of RFC 4443 §4: kept whole.
    let mut odd = b;
    odd[1] = 1;
    assert!(matches!(
        Icmpv6Repr::parse_bytes(&odd).unwrap(),
        Icmpv6Repr::Other { code: 1, .. }
    ));
}

#[test]
fn other_messages_are_kept() {
    // Redirect (not decoded here): type, code and body kept.
    let mut b = vec![137, 0, 0x12, 0x34];
    b.extend_from_slice(&[0; 36]);
    let r = Icmpv6Repr::parse_bytes(&b).unwrap();
    assert_eq!(
        r,
        Icmpv6Repr::Other {
            msg_type: Icmpv6Type::Redirect,
            code: 0,
            body: &b[4..]
        }
    );
    let mut out = vec![0u8; b.len()];
    r.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]))
        .unwrap();
    assert_eq!(&out[4..], &b[4..]);
    // An unassigned type with only a header.
    assert_eq!(
        Icmpv6Repr::parse_bytes(&[250, 7, 0, 0]).unwrap(),
        Icmpv6Repr::Other {
            msg_type: Icmpv6Type::Unknown(250),
            code: 7,
            body: &[]
        }
    );
    // An unassigned error type still parses as an error.
    assert!(matches!(
        Icmpv6Repr::parse_bytes(&[100, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
        Icmpv6Repr::Error(ErrorMessage {
            msg_type: Icmpv6Type::Unknown(100),
            ..
        })
    ));
}

#[test]
fn bad_messages() {
    assert_eq!(Icmpv6Repr::parse_bytes(&[]), Err(Error::Truncated));
    assert_eq!(Icmpv6Repr::parse_bytes(&NA[..3]), Err(Error::Truncated));
    assert_eq!(Icmpv6Repr::parse_bytes(&NA[..23]), Err(Error::Truncated));
    assert_eq!(Icmpv6Repr::parse_bytes(&RA[..15]), Err(Error::Truncated));
    assert_eq!(Icmpv6Repr::parse_bytes(&RS[..7]), Err(Error::Truncated));
    assert_eq!(
        Icmpv6Repr::parse_bytes(&[4, 0, 0, 0, 0]),
        Err(Error::Truncated)
    );
    let mut b = NA;
    b[1] = 1;
    assert_eq!(
        Icmpv6Repr::parse_bytes(&b),
        Err(Error::Malformed("ND code"))
    );
    let mut b = NS;
    b[8] = 0xff;
    assert_eq!(
        Icmpv6Repr::parse_bytes(&b),
        Err(Error::Malformed("ND target address"))
    );
    let mut b = NA;
    b[25] = 0;
    assert_eq!(
        Icmpv6Repr::parse_bytes(&b),
        Err(Error::Malformed("ND option length 0"))
    );
    let mut b = NA;
    b[25] = 2;
    assert_eq!(Icmpv6Repr::parse_bytes(&b), Err(Error::Truncated));
    // A damaged checksum is the caller's to see.
    let mut b = NA;
    b[3] ^= 1;
    assert!(
        !Icmpv6Packet::new_checked(&b[..])
            .unwrap()
            .verify_checksum(&LL_ROUTER, &ALL_NODES)
    );
    // Emit into a short buffer.
    let mut out = [0u8; 31];
    assert_eq!(
        na_repr().emit(&mut Icmpv6Packet::new_unchecked(&mut out[..])),
        Err(Error::BufferTooSmall)
    );
    assert_eq!(
        na_repr().emit_ipv6_packet(HOA, HOA, 255, &mut [0u8; 71]),
        Err(Error::BufferTooSmall)
    );
}

#[test]
fn parse_never_panics_on_prefixes() {
    // Every prefix of every fixture, and every type over them.
    for fixture in [&NA[..], &NS[..], &RS[..], &RA[..]] {
        for n in 0..=fixture.len() {
            for t in [1u8, 2, 3, 4, 128, 133, 134, 135, 136, 137, 200] {
                let mut b = fixture[..n].to_vec();
                if let Some(first) = b.first_mut() {
                    *first = t;
                }
                if let Ok(r) = Icmpv6Repr::parse_bytes(&b) {
                    let mut out = vec![0u8; r.buffer_len()];
                    r.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]))
                        .unwrap();
                }
            }
        }
    }
}

// DHAAD and MPD messages as scapy 2.5 builds them (checksums by scapy for the addresses
// each test names).
const HA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const HA2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
const COA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);
const ANYCAST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0xfdff, 0xffff, 0xffff, 0xfffe);

/// HAAD Request, Identifier 0x1234, R; 2001:db8:2::2 → the home agents anycast address.
static HAAD_REQUEST: [u8; 8] = [0x90, 0x00, 0x84, 0x12, 0x12, 0x34, 0x80, 0x00];

/// HAAD Reply to it listing 2001:db8:1::1 then ::2, R; 2001:db8:1::1 → 2001:db8:2::2.
static HAAD_REPLY: [u8; 40] = [
    0x91, 0x00, 0x25, 0x79, 0x12, 0x34, 0x80, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
];

/// Mobile Prefix Solicitation, Identifier 0x4321; 2001:db8:1::100 → 2001:db8:1::1.
static MPS: [u8; 8] = [0x92, 0x00, 0xce, 0x26, 0x43, 0x21, 0x00, 0x00];

/// Mobile Prefix Advertisement answering it: 2001:db8:1::/64 (L, A, 86400 s / 14400 s);
/// 2001:db8:1::1 → 2001:db8:1::100.
static MPA: [u8; 40] = [
    0x93, 0x00, 0xd1, 0xc6, 0x43, 0x21, 0x00, 0x00, 0x03, 0x04, 0x40, 0xc0, 0x00, 0x01, 0x51, 0x80,
    0x00, 0x00, 0x38, 0x40, 0x00, 0x00, 0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// Emits `repr` with its checksum for `src` → `dst`.
fn emit_checksummed(repr: &Icmpv6Repr<'_>, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let mut out = vec![0xa5u8; repr.buffer_len()];
    let mut p = Icmpv6Packet::new_unchecked(&mut out[..]);
    repr.emit(&mut p).unwrap();
    p.fill_checksum(&src, &dst);
    out
}

#[test]
fn home_agent_address_discovery_bytes() {
    let request = Icmpv6Repr::parse_bytes(&HAAD_REQUEST).unwrap();
    assert_eq!(
        request,
        Icmpv6Repr::HaadRequest(HaadRequest {
            identifier: 0x1234,
            flags: HaadFlags::R,
        })
    );
    assert_eq!(emit_checksummed(&request, COA, ANYCAST), HAAD_REQUEST);
    assert_eq!(home_agents_anycast(HA, 64), Some(ANYCAST));

    let reply = Icmpv6Repr::parse_bytes(&HAAD_REPLY).unwrap();
    assert_eq!(
        reply,
        Icmpv6Repr::HaadReply(HaadReply {
            identifier: 0x1234,
            flags: HaadFlags::R,
            home_agents: vec![HA, HA2],
        })
    );
    assert_eq!(reply.buffer_len(), HAAD_REPLY.len());
    assert_eq!(emit_checksummed(&reply, HA, COA), HAAD_REPLY);
    assert!(Icmpv6Packet::new_unchecked(&HAAD_REPLY[..]).verify_checksum(&HA, &COA));
}

#[test]
fn mobile_prefix_discovery_bytes() {
    let mps = Icmpv6Repr::parse_bytes(&MPS).unwrap();
    assert_eq!(
        mps,
        Icmpv6Repr::MobilePrefixSolicitation(MobilePrefixSolicitation {
            identifier: 0x4321,
            reserved: 0,
            options: vec![],
        })
    );
    assert_eq!(emit_checksummed(&mps, HOA, HA), MPS);

    let mpa = Icmpv6Repr::parse_bytes(&MPA).unwrap();
    let home_prefix = NdOption::PrefixInformation(PrefixInformation {
        prefix_len: 64,
        flags: PrefixFlags::L | PrefixFlags::A,
        valid_lifetime: 86400,
        preferred_lifetime: 14400,
        prefix: "2001:db8:1::".parse().unwrap(),
    });
    assert_eq!(
        mpa,
        Icmpv6Repr::MobilePrefixAdvertisement(MobilePrefixAdvertisement {
            identifier: 0x4321,
            flags: MpaFlags::empty(),
            options: vec![home_prefix],
        })
    );
    assert_eq!(emit_checksummed(&mpa, HA, HOA), MPA);
    // M and O sit in the top bits of the field after the Identifier.
    let mut managed = MPA;
    managed[6] = 0xc0;
    let Icmpv6Repr::MobilePrefixAdvertisement(m) = Icmpv6Repr::parse_bytes(&managed).unwrap()
    else {
        panic!("not an MPA");
    };
    assert_eq!(m.flags, MpaFlags::M | MpaFlags::O);
}

#[test]
fn odd_discovery_messages() {
    // Too short for the Identifier: truncated, not a panic.
    for t in [144u8, 145, 146, 147] {
        assert_eq!(
            Icmpv6Repr::parse_bytes(&[t, 0, 0, 0, 0x12, 0x34]),
            Err(Error::Truncated)
        );
    }
    // A Code other than 0 is not the RFC's message: kept whole.
    let mut coded = HAAD_REQUEST;
    coded[1] = 3;
    assert!(matches!(
        Icmpv6Repr::parse_bytes(&coded).unwrap(),
        Icmpv6Repr::Other { code: 3, .. }
    ));
    // A Reply whose list ends in a partial address keeps the whole ones.
    let Icmpv6Repr::HaadReply(r) = Icmpv6Repr::parse_bytes(&HAAD_REPLY[..30]).unwrap() else {
        panic!("not a reply");
    };
    assert_eq!(r.home_agents, vec![HA]);
    // Reserved bits of a Request are kept; options of an MPS with a zero length are not.
    let Icmpv6Repr::HaadRequest(q) =
        Icmpv6Repr::parse_bytes(&[0x90, 0, 0, 0, 0, 1, 0x00, 0x05]).unwrap()
    else {
        panic!("not a request");
    };
    assert_eq!((q.flags.mobile_router(), q.flags.bits()), (false, 5));
    assert_eq!(
        Icmpv6Repr::parse_bytes(&[0x92, 0, 0, 0, 0, 1, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]),
        Err(Error::Malformed("ND option length 0"))
    );
}
