//! Runs the seed corpora of proto's fuzz targets (`fuzz/corpus/<target>` at the workspace
//! root) through the same checks the fuzzers make, so every seed — and every crash input
//! ever added there — stays fixed.
//!
//! The decapsulate and signalling_walk seeds are written by `write_seed_corpora` below
//! (`cargo test -p proto --test fuzz_corpus -- --ignored`); the mh_parse seeds came from
//! scapy (tests/scapy_packets.py) and our worked examples.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use proto::encap::{EncapOutcome, EncapParams, Encapsulation, encapsulate};
use proto::ext::{MobilityPacketRepr, emit_mobility_packet, mobility_packet_len};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Feeds every file of `target`'s corpus to `check`; returns how many there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = corpus(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed corpus directory") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        check(&data);
        n += 1;
    }
    n
}

#[test]
fn mh_parse_corpus_passes_the_fuzz_checks() {
    let n = replay("mh_parse", proto::fuzzing::mh_parse);
    assert!(
        n >= 10,
        "expected the mh_parse seed corpus, found {n} files"
    );
}

#[test]
fn signalling_walk_corpus_passes_the_fuzz_checks() {
    let n = replay("signalling_walk", proto::fuzzing::signalling_walk);
    assert!(
        n >= 10,
        "expected the signalling_walk seed corpus, found {n} files"
    );
}

#[test]
fn decapsulate_corpus_passes_the_fuzz_checks() {
    let n = replay("decapsulate", proto::fuzzing::decapsulate);
    assert!(
        n >= 10,
        "expected the decapsulate seed corpus, found {n} files"
    );
}

#[test]
fn icmpv6_parse_corpus_passes_the_fuzz_checks() {
    let n = replay("icmpv6_parse", proto::fuzzing::icmpv6_parse);
    assert!(
        n >= 8,
        "expected the icmpv6_parse seed corpus, found {n} files"
    );
}

#[test]
fn traffic_selector_corpus_passes_the_fuzz_checks() {
    let n = replay("traffic_selector", proto::fuzzing::traffic_selector);
    assert!(
        n >= 6,
        "expected the traffic_selector seed corpus, found {n} files"
    );
}

#[test]
fn seeds_are_real_messages() {
    // The seeds are worth something only if they parse: spot-check the worked example of
    // our worked example (explicit NEMO BU with an IPv4 MNP) and a tunnel packet.
    let data = std::fs::read(corpus("mh_parse").join("worked_example_bu")).unwrap();
    let repr = proto::mh::MhRepr::parse_bytes(&data, Default::default()).expect("parses");
    assert_eq!(repr.mh_type(), proto::mh::MhType::from(5));
    assert_eq!(repr.options().len(), 3);
    let mut data = std::fs::read(corpus("decapsulate").join("udp4_inner6")).unwrap();
    assert!(matches!(
        proto::encap::decapsulate(&mut data),
        Ok(proto::encap::DecapOutcome::Forward(_))
    ));
    let data = std::fs::read(corpus("mh_parse").join("bu_flow_bindings")).unwrap();
    let repr = proto::mh::MhRepr::parse_bytes(&data, Default::default()).expect("parses");
    let selectors = repr
        .options()
        .iter()
        .filter_map(|o| match o {
            proto::option::MobilityOption::FlowIdentification(fi) => fi.traffic_selector(),
            _ => None,
        })
        .count();
    assert_eq!(selectors, 2);
    let data = std::fs::read(corpus("traffic_selector").join("ipv6_sip_udp")).unwrap();
    let ts = proto::flow::TrafficSelector::parse(data[0], &data[2..2 + usize::from(data[1])])
        .expect("parses");
    assert!(ts.matches(&data[2 + usize::from(data[1])..]));
    let data = std::fs::read(corpus("signalling_walk").join("bu_hao")).unwrap();
    assert!(matches!(
        proto::ext::walk(&data),
        Ok(proto::ext::Walk::Mobility(_))
    ));
}

const COA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x10);
const HA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const HOA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
const COA4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const HA4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// A BU (sequence 42, lifetime 60, H/A/R flags) and a BA (status 0, K), checksums left
/// for emit_mobility_packet.
const BU: [u8; 16] = [
    0x3b, 0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0x2a, 0xd0, 0x20, 0x00, 0x3c, 0x01, 0x02, 0x00, 0x00,
];
const BA: [u8; 16] = [
    0x3b, 0x01, 0x06, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x2a, 0x00, 0x3c, 0x01, 0x02, 0x00, 0x00,
];

fn mobility_packet(hao: bool, rh2: bool, mh: &[u8]) -> Vec<u8> {
    let repr = MobilityPacketRepr {
        src_addr: if rh2 { HA } else { COA },
        dst_addr: if rh2 { COA } else { HA },
        hop_limit: 64,
        home_address: hao.then_some(HOA),
        rh2_home_address: rh2.then_some(HOA),
    };
    let mut buf = vec![0u8; mobility_packet_len(&repr, mh.len())];
    emit_mobility_packet(&repr, mh, &mut buf).unwrap();
    buf
}

/// An ICMPv6 echo request 2001:db8:10::5 -> 2001:db8:99::1, traffic class `tc`.
fn inner6(tc: u8) -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[0] = 0x60 | (tc >> 4);
    p[1] = tc << 4;
    p[5] = 8;
    p[6] = 58;
    p[7] = 64;
    p[8..24].copy_from_slice(&"2001:db8:10::5".parse::<Ipv6Addr>().unwrap().octets());
    p[24..40].copy_from_slice(&"2001:db8:99::1".parse::<Ipv6Addr>().unwrap().octets());
    p[40..48].copy_from_slice(&[0x80, 0, 0, 0, 0, 1, 0, 1]);
    let (src, dst) = (ip6(&p[8..24]), ip6(&p[24..40]));
    let c = proto::checksum::v6(&src, &dst, 58, &p[40..]);
    p[42..44].copy_from_slice(&c.to_be_bytes());
    p
}

fn ip6(b: &[u8]) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap())
}

/// An ICMP echo request 10.1.0.5 -> 203.0.113.9, TOS `tos`, `options` octets of IPv4
/// options (NOPs).
fn inner4(tos: u8, options: usize) -> Vec<u8> {
    let ihl = 20 + options;
    let mut p = vec![0u8; ihl + 8];
    p[0] = 0x40 | (ihl / 4) as u8;
    p[1] = tos;
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[4..6].copy_from_slice(&[0xbe, 0xef]);
    p[8] = 64;
    p[9] = 1;
    p[12..16].copy_from_slice(&[10, 1, 0, 5]);
    p[16..20].copy_from_slice(&[203, 0, 113, 9]);
    p[20..ihl].fill(1);
    let c = proto::checksum::ipv4_header(&p[..ihl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[ihl..].copy_from_slice(&[8, 0, 0xf7, 0xfd, 0, 1, 0, 1]);
    p
}

fn tunnel(enc: &Encapsulation, inner: &[u8], ecn: Option<u8>) -> Vec<u8> {
    let overhead = enc.overhead();
    let mut buf = vec![0u8; overhead + inner.len()];
    buf[overhead..].copy_from_slice(inner);
    let params = EncapParams {
        ipv4_ident: 0x1234,
        decrement_inner: false,
        ..EncapParams::default()
    };
    let EncapOutcome::Encapsulated(r) = encapsulate(enc, &params, &mut buf, overhead).unwrap()
    else {
        panic!("hop limit")
    };
    let mut out = buf[r].to_vec();
    if let Some(bits) = ecn {
        // Outer ECN set on the way (CE by a congested router): IPv6 only, no checksum.
        out[1] = (out[1] & 0xcf) | (bits << 4);
    }
    out
}

/// Writes the decapsulate and signalling_walk seeds: real packets, emitted by this crate.
#[test]
#[ignore = "writes the seed corpora; run by hand"]
fn write_seed_corpora() {
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };

    // signalling_walk: every addressing emit_mobility_packet builds, a Hop-by-Hop header,
    // an unknown destination option, ICMPv6 after a HAO, link-layer padding, and scapy's
    // whole packets from the mh_parse corpus.
    let bu_hao = mobility_packet(true, false, &BU);
    write("signalling_walk", "bu_hao", &bu_hao);
    write(
        "signalling_walk",
        "bu_plain",
        &mobility_packet(false, false, &BU),
    );
    write(
        "signalling_walk",
        "ba_rh2",
        &mobility_packet(false, true, &BA),
    );
    write(
        "signalling_walk",
        "hao_and_rh2",
        &mobility_packet(true, true, &BU),
    );
    let mut hbh = bu_hao[..40].to_vec();
    hbh[6] = 0;
    hbh[5] += 8;
    hbh.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    hbh.extend_from_slice(&bu_hao[40..]);
    write("signalling_walk", "hop_by_hop_first", &hbh);
    let mut unknown = bu_hao.clone();
    unknown[42] = 0x1e;
    write("signalling_walk", "unknown_option", &unknown);
    let mut icmp = bu_hao.clone();
    icmp[40] = 58;
    icmp[64..80].copy_from_slice(&[146, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    write("signalling_walk", "icmpv6_after_hao", &icmp);
    let mut padded = mobility_packet(false, true, &BA);
    padded.extend_from_slice(&[0; 6]);
    write("signalling_walk", "ethernet_padding", &padded);
    for name in [
        "scapy_ba_142",
        "scapy_ba_rh2_bra",
        "scapy_be_1",
        "scapy_brr",
        "scapy_bu_hao_mnp",
        "scapy_bu_mnid_ts",
    ] {
        let data = std::fs::read(corpus("mh_parse").join(name)).unwrap();
        write("signalling_walk", name, &data);
    }

    // decapsulate: each outer header around each inner version, ECN cases, IPv4 options,
    // a Tunnel Encapsulation Limit option, trailing padding.
    let v6 = Encapsulation::Ipv6 {
        src_addr: COA,
        dst_addr: HA,
    };
    let v4 = Encapsulation::Ipv4 {
        src_addr: COA4,
        dst_addr: HA4,
    };
    let udp = Encapsulation::Udp4 {
        src_addr: COA4,
        dst_addr: HA4,
        src_port: 49152,
        dst_port: proto::DSMIP_UDP_PORT,
    };
    for (name, enc) in [("ipv6", &v6), ("ipv4", &v4), ("udp4", &udp)] {
        write(
            "decapsulate",
            &format!("{name}_inner6"),
            &tunnel(enc, &inner6(0x2a), None),
        );
        write(
            "decapsulate",
            &format!("{name}_inner4"),
            &tunnel(enc, &inner4(0x2a, 0), None),
        );
    }
    write(
        "decapsulate",
        "ipv6_inner4_options",
        &tunnel(&v6, &inner4(0x02, 8), None),
    );
    write(
        "decapsulate",
        "ipv6_ce_on_ect0",
        &tunnel(&v6, &inner6(0x02), Some(3)),
    );
    write(
        "decapsulate",
        "ipv6_ce_on_not_ect",
        &tunnel(&v6, &inner6(0x00), Some(3)),
    );
    write(
        "decapsulate",
        "ipv6_ect1_on_ect0",
        &tunnel(&v6, &inner6(0x02), Some(1)),
    );
    // Outer IPv6 | DestOpts(Tunnel Encapsulation Limit 4, PadN) | IPv6.
    let plain = tunnel(&v6, &inner6(0), None);
    let mut tel = plain[..40].to_vec();
    tel[6] = 60;
    tel[5] += 8;
    tel.extend_from_slice(&[41, 0, 4, 1, 4, 1, 1, 0]);
    tel.extend_from_slice(&plain[40..]);
    write("decapsulate", "ipv6_encap_limit", &tel);
    let mut padded = tunnel(&v4, &inner4(0, 0), None);
    padded.extend_from_slice(&[0; 10]);
    write("decapsulate", "ipv4_ethernet_padding", &padded);
    let mut no_csum = tunnel(&udp, &inner6(0), None);
    no_csum[26..28].fill(0);
    write("decapsulate", "udp4_zero_checksum", &no_csum);
}

/// Writes the flow binding seeds (RFC 6089, RFC 6088): Mobility Headers with Flow
/// Identification and Flow Summary options for mh_parse, and selectors with packets for
/// traffic_selector (format, selector length, selector, packet).
#[test]
#[ignore = "writes the seed corpora; run by hand"]
fn write_flow_binding_seeds() {
    use proto::flow::{
        FlowIdentification, FlowStatus, FlowSubOption, FlowSubOptions, IdList, Ipv4TrafficSelector,
        Ipv6TrafficSelector, SelectorRange, TrafficSelector,
    };
    use proto::mh::{BaFlags, BaStatus, BindingAck, BindingUpdate, BuFlags, MhRepr};
    use proto::option::MobilityOption;
    use proto::seq::{Lifetime, SequenceNumber};

    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };
    let mh = |repr: &MhRepr<'_>| {
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit_to(&mut buf).unwrap();
        buf
    };
    let cn = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 1);
    let sip = Ipv6TrafficSelector {
        source_address: Some(SelectorRange::new(
            cn,
            Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 0xff),
        )),
        destination_address: Some(SelectorRange::single(HOA)),
        destination_port: Some(SelectorRange::new(5060, 5061)),
        traffic_class: Some(SelectorRange::single(0xb8)),
        next_header: Some(SelectorRange::single(17)),
        ..Default::default()
    };
    let web = Ipv4TrafficSelector {
        destination_address: Some(SelectorRange::single(Ipv4Addr::new(10, 1, 0, 5))),
        destination_port: Some(SelectorRange::single(443)),
        protocol: Some(SelectorRange::single(6)),
        ..Default::default()
    };
    let sip_subs = [
        FlowSubOption::BindingReference(IdList::List(&[1, 2])),
        FlowSubOption::TrafficSelector(TrafficSelector::Ipv6(sip)),
    ];
    let web_subs = [
        FlowSubOption::BindingReference(IdList::List(&[2])),
        FlowSubOption::TrafficSelector(TrafficSelector::Ipv4(web)),
        FlowSubOption::Unknown {
            sub_option_type: 4,
            data: &[11],
        },
    ];
    let fid = |fid, fid_pri, sub_options| {
        MobilityOption::FlowIdentification(FlowIdentification {
            fid,
            fid_pri,
            status: FlowStatus::Successful,
            sub_options,
        })
    };
    let bu = MhRepr::BindingUpdate(BindingUpdate {
        sequence: SequenceNumber(300),
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        lifetime: Lifetime(1000),
        options: vec![
            MobilityOption::AlternateCareOfAddress(COA),
            fid(1, 10, FlowSubOptions::List(&sip_subs)),
            fid(2, 20, FlowSubOptions::List(&web_subs)),
            MobilityOption::FlowSummary(IdList::List(&[3, 4])),
        ],
    });
    write("mh_parse", "bu_flow_bindings", &mh(&bu));
    let ba = MhRepr::BindingAck(BindingAck {
        status: BaStatus::from(0),
        flags: BaFlags::R,
        sequence: SequenceNumber(300),
        lifetime: Lifetime(1000),
        options: vec![
            fid(1, 10, FlowSubOptions::List(&sip_subs)),
            MobilityOption::FlowIdentification(FlowIdentification {
                fid: 3,
                fid_pri: 30,
                status: FlowStatus::FidNotFound,
                sub_options: FlowSubOptions::NONE,
            }),
        ],
    });
    write("mh_parse", "ba_flow_status", &mh(&ba));
    // A Binding Reference of 3 octets: the option parses, its sub-options do not.
    let bad = mh(&MhRepr::BindingUpdate(BindingUpdate {
        sequence: SequenceNumber(301),
        flags: BuFlags::A | BuFlags::H,
        lifetime: Lifetime(10),
        options: vec![MobilityOption::Unknown {
            option_type: 45,
            data: &[0, 5, 0, 5, 0, 0, 2, 3, 0, 1, 0],
        }],
    }));
    write("mh_parse", "bu_flow_malformed_sub_option", &bad);

    let seed = |format: u8, selector: &TrafficSelector<'_>, packet: &[u8]| {
        let mut out = vec![format, selector.buffer_len() as u8];
        let at = out.len();
        out.resize(at + selector.buffer_len(), 0);
        selector.emit(&mut out[at..]).unwrap();
        out.extend_from_slice(packet);
        out
    };
    // A SIP packet from the correspondent to the home address: UDP 5060, TC 0xb8.
    let mut sip_packet = vec![0x6b, 0x80, 0, 0, 0, 8, 17, 64];
    sip_packet.extend_from_slice(&cn.octets());
    sip_packet.extend_from_slice(&HOA.octets());
    sip_packet.extend_from_slice(&[0x13, 0xc4, 0x13, 0xc4, 0, 8, 0, 0]);
    let sip_ts = TrafficSelector::Ipv6(sip);
    let sip_seed = seed(2, &sip_ts, &sip_packet);
    write("traffic_selector", "ipv6_sip_udp", &sip_seed);
    // The same behind a Hop-by-Hop header and a first fragment.
    let mut ext = sip_packet[..40].to_vec();
    ext[5] = 24;
    ext[6] = 0;
    ext.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
    ext.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 7]);
    ext.extend_from_slice(&sip_packet[40..]);
    write(
        "traffic_selector",
        "ipv6_sip_hbh_fragment",
        &seed(2, &sip_ts, &ext),
    );
    // HTTPS over IPv4 to the home address, and a later fragment of it.
    let mut https = inner4(0, 0);
    https[9] = 6;
    https[16..20].copy_from_slice(&[10, 1, 0, 5]);
    https[20..24].copy_from_slice(&[0xc3, 0x50, 0x01, 0xbb]);
    let web_ts = TrafficSelector::Ipv4(web);
    write("traffic_selector", "ipv4_https", &seed(1, &web_ts, &https));
    let mut later = https.clone();
    later[7] = 0x20;
    write(
        "traffic_selector",
        "ipv4_https_later_fragment",
        &seed(1, &web_ts, &later),
    );
    // ESP SPI ranges, both families.
    let esp4 = TrafficSelector::Ipv4(Ipv4TrafficSelector {
        spi: Some(SelectorRange::new(0x100, 0x1ff)),
        ds: Some(SelectorRange::new(0, 0xfc)),
        ..Default::default()
    });
    let mut esp_packet = inner4(0x10, 4);
    esp_packet[9] = 50;
    esp_packet[24..28].copy_from_slice(&0x180u32.to_be_bytes());
    write(
        "traffic_selector",
        "ipv4_esp_options",
        &seed(1, &esp4, &esp_packet),
    );
    let label = TrafficSelector::Ipv6(Ipv6TrafficSelector {
        spi: Some(SelectorRange::single(0x180)),
        flow_label: Some(SelectorRange::new(0, 0xf_ffff)),
        ..Default::default()
    });
    write(
        "traffic_selector",
        "ipv6_spi_flow_label",
        &seed(2, &label, &inner6(0x2e)),
    );
    // An opaque format, and a selector with an end field but no start.
    let mut other = vec![7, 3, 1, 2, 3];
    other.extend_from_slice(&sip_packet);
    write("traffic_selector", "opaque_format", &other);
    let mut end_only = vec![1, 8, 0x40, 0, 0, 0, 10, 1, 0, 5];
    end_only.extend_from_slice(&https);
    write("traffic_selector", "ipv4_end_without_start", &end_only);
}
