//! External truth: every message and option this crate emits, written to a pcap and decoded
//! by tshark (Wireshark's dissector, an independent implementation), field by field.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proto::encap::{EncapOutcome, EncapParams, Encapsulation, encapsulate};
use proto::ext::{MobilityPacketRepr, emit_mobility_packet, mobility_packet_len};
use proto::mh::{
    BaFlags, BaStatus, BeStatus, BindingAck, BindingError, BindingRefreshRequest, BindingUpdate,
    BuFlags, MhRepr,
};
use proto::option::{Ipv4AckStatus, MobilityOption, NAT_REFRESH_NONE};
use proto::seq::{Lifetime, SequenceNumber};

const HOA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
const COA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 5);
const HA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const COA4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const HA4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

/// A whole IPv6 signalling packet around `mh`, checksummed as a peer expects.
fn packet(mh: &MhRepr<'_>, src: Ipv6Addr, dst: Ipv6Addr, hao: bool, rh2: bool) -> Vec<u8> {
    let mut mh_buf = vec![0u8; mh.buffer_len()];
    mh.emit_to(&mut mh_buf).expect("emit MH");
    let repr = MobilityPacketRepr {
        src_addr: src,
        dst_addr: dst,
        hop_limit: 64,
        home_address: hao.then_some(HOA),
        rh2_home_address: rh2.then_some(HOA),
    };
    let mut out = vec![0u8; mobility_packet_len(&repr, mh_buf.len())];
    emit_mobility_packet(&repr, &mh_buf, &mut out).expect("emit packet");
    out
}

/// The inner packet in UDP/IPv4 to the home agent's port 4191 (RFC 5555 §4.2).
fn in_udp4(inner: &[u8], src_port: u16, dst_port: u16) -> Vec<u8> {
    let enc = Encapsulation::Udp4 {
        src_addr: COA4,
        dst_addr: HA4,
        src_port,
        dst_port,
    };
    let mut buf = vec![0u8; enc.overhead()];
    buf.extend_from_slice(inner);
    let params = EncapParams {
        decrement_inner: false,
        ..EncapParams::default()
    };
    match encapsulate(&enc, &params, &mut buf, enc.overhead()).expect("encapsulate") {
        EncapOutcome::Encapsulated(range) => buf[range].to_vec(),
        other => panic!("not encapsulated: {other:?}"),
    }
}

type Fields = BTreeMap<String, Vec<String>>;

/// Asserts that tshark decoded `field` with exactly `expected` values (in order).
fn check(pkt: &Fields, name: &str, field: &str, expected: &[&str]) {
    let got: Vec<&str> = pkt
        .get(field)
        .map(|v| v.iter().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        got, expected,
        "{name}: tshark field {field} (all fields: {pkt:#?})"
    );
}

#[test]
fn tshark_decodes_every_message_and_option() {
    let auth_data = [0x5a; 12];
    let nai = b"mr1@example.org";

    // 1: home registration BU, explicit mode, both MNP families, from an IPv6 CoA.
    let bu = MhRepr::BindingUpdate(BindingUpdate {
        sequence: SequenceNumber(4242),
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        lifetime: Lifetime(1000),
        options: vec![
            MobilityOption::AlternateCareOfAddress(COA),
            MobilityOption::MobileNetworkPrefix {
                prefix_len: 48,
                prefix: "2001:db8:100::".parse().unwrap(),
            },
            MobilityOption::MobileNetworkPrefix {
                prefix_len: 64,
                prefix: "2001:db8:200:1::".parse().unwrap(),
            },
            MobilityOption::Ipv4HomeAddress {
                prefix_len: 28,
                p: true,
                address: Ipv4Addr::new(192, 0, 2, 16),
            },
            MobilityOption::MobileNodeIdentifier {
                subtype: 1,
                identifier: nai,
            },
            // 2026-01-01T00:00:00Z in NTP format (seconds since 1900, 32-bit fraction).
            MobilityOption::ReplayProtection {
                timestamp: 3_976_214_400u64 << 32,
            },
            MobilityOption::Authentication {
                subtype: 1,
                spi: 0x1234,
                data: &auth_data,
            },
        ],
    });
    // 2: its BA with every option an HA returns.
    let ba = MhRepr::BindingAck(BindingAck {
        status: BaStatus::from(0),
        flags: BaFlags::R,
        sequence: SequenceNumber(4242),
        lifetime: Lifetime(900),
        options: vec![
            MobilityOption::BindingRefreshAdvice {
                refresh_interval: Lifetime(450),
            },
            MobilityOption::Ipv4AddressAck {
                status: Ipv4AckStatus::from(0),
                prefix_len: 28,
                address: Ipv4Addr::new(192, 0, 2, 16),
            },
            MobilityOption::NatDetection {
                f: true,
                refresh_time: 110,
            },
        ],
    });
    // 3: a rejected BA: prefix not authorised.
    let ba_reject = MhRepr::BindingAck(BindingAck {
        status: BaStatus::from(142),
        flags: BaFlags::R,
        sequence: SequenceNumber(7),
        lifetime: Lifetime(0),
        options: vec![MobilityOption::Ipv4AddressAck {
            status: Ipv4AckStatus::from(133),
            prefix_len: 0,
            address: Ipv4Addr::new(192, 0, 2, 64),
        }],
    });
    // 4: Binding Error, unknown MH type.
    let be = MhRepr::BindingError(BindingError {
        status: BeStatus::from(2),
        home_address: HOA,
        options: vec![],
    });
    // 5: Binding Refresh Request with a Binding Identifier.
    let brr = MhRepr::BindingRefreshRequest(BindingRefreshRequest {
        options: vec![MobilityOption::BindingIdentifier {
            bid: 9,
            status: 0,
            h: false,
            coa: None,
            bid_pri: 0,
        }],
    });
    // 6: BU from an IPv4 CoA (RFC 5555 §4.2): F flag, IPv4 CoA option, BID with an IPv6
    //    CoA elsewhere, in UDP/IPv4 to port 4191.
    let bu4 = MhRepr::BindingUpdate(BindingUpdate {
        sequence: SequenceNumber(65535),
        flags: BuFlags::A | BuFlags::H | BuFlags::R | BuFlags::F,
        lifetime: Lifetime(65535),
        options: vec![
            MobilityOption::Ipv4HomeAddress {
                prefix_len: 32,
                p: false,
                address: Ipv4Addr::UNSPECIFIED,
            },
            MobilityOption::Ipv4CareOfAddress(COA4),
            MobilityOption::BindingIdentifier {
                bid: 2,
                status: 0,
                h: true,
                coa: Some(IpAddr::V6(COA)),
                bid_pri: 0,
            },
        ],
    });
    // 7: its BA, no NAT: F=0 and "no keepalive needed".
    let ba4 = MhRepr::BindingAck(BindingAck {
        status: BaStatus::from(0),
        flags: BaFlags::R,
        sequence: SequenceNumber(65535),
        lifetime: Lifetime(65535),
        options: vec![MobilityOption::NatDetection {
            f: false,
            refresh_time: NAT_REFRESH_NONE,
        }],
    });

    let packets = vec![
        packet(&bu, COA, HA, true, false),
        packet(&ba, HA, COA, false, true),
        packet(&ba_reject, HA, COA, false, true),
        packet(&be, HA, COA, false, false),
        packet(&brr, HA, HOA, false, false),
        in_udp4(
            &packet(&bu4, HOA, HA, false, false),
            40000,
            proto::DSMIP_UDP_PORT,
        ),
        in_udp4(
            &packet(&ba4, HA, HOA, false, false),
            proto::DSMIP_UDP_PORT,
            40000,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("every-message.pcap");
    common::write_pcap(&pcap, &packets);

    let fields = [
        "ipv6.src",
        "ipv6.dst",
        "ipv6.opt.mipv6.home_address",
        "ipv6.routing.type",
        "ipv6.routing.mipv6.home_address",
        "udp.dstport",
        "mip6.proto",
        "mip6.hlen",
        "mip6.mhtype",
        "mip6.bu.seqnr",
        "mip6.bu.a_flag",
        "mip6.bu.h_flag",
        "mip6.bu.l_flag",
        "mip6.bu.k_flag",
        "mip6.nemo.bu.r_flag",
        "mip6.bu.f_flag",
        "mip6.bu.lifetime",
        "mip6.ba.status",
        "mip6.ba.k_flag",
        "mip6.nemo.ba.r_flag",
        "mip6.ba.seqnr",
        "mip6.ba.lifetime",
        "mip6.be.status",
        "mip6.be.haddr",
        "mip6.bra.interval",
        "mip6.acoa.acoa",
        "mip6.nemo.mnp.pfl",
        "mip6.nemo.mnp.mnp",
        "mip6.mnid.subtype",
        "mip6.mnid.identifier",
        "mip6.auth.subtype",
        "mip6.auth.mobility_spi",
        "mip6.auth.auth_data",
        "mip6.mseg_id.timestamp",
        "mip6.ipv4ha.preflen",
        "mip6.ipv4ha.p_flag",
        "mip6.ipv4ha.ha",
        "mip6.ipv4aa.sts",
        "mip6.natd.f_flag",
        "mip6.natd.refresh_t",
        "mip6.ipv4coa.addr",
        "mip6.bi.bid",
        "mip6.bi.status",
        "mip6.bi.h_flag",
        "mip6.bi.coa_ipv6",
        "_ws.expert.message",
    ];
    let decoded = common::tshark_fields(&pcap, &["udp.port==4191,ipv6"], &fields);
    assert_eq!(decoded.len(), packets.len());

    // No malformed-packet or bad-length complaints anywhere.
    for (i, pkt) in decoded.iter().enumerate() {
        if let Some(msgs) = pkt.get("_ws.expert.message") {
            let bad: Vec<_> = msgs
                .iter()
                .filter(|m| {
                    let m = m.to_lowercase();
                    m.contains("malformed") || m.contains("invalid") || m.contains("bogus")
                })
                .collect();
            assert!(
                bad.is_empty(),
                "packet {}: tshark complains: {bad:?}",
                i + 1
            );
        }
    }

    let p = &decoded[0];
    let n = "BU";
    check(p, n, "ipv6.src", &["2001:db8:a::5"]);
    check(p, n, "ipv6.opt.mipv6.home_address", &["2001:db8:1::100"]);
    check(p, n, "mip6.proto", &["59"]);
    check(p, n, "mip6.mhtype", &["5"]);
    check(p, n, "mip6.bu.seqnr", &["4242"]);
    check(p, n, "mip6.bu.a_flag", &["1"]);
    check(p, n, "mip6.bu.h_flag", &["1"]);
    check(p, n, "mip6.bu.l_flag", &["0"]);
    check(p, n, "mip6.bu.k_flag", &["0"]);
    check(p, n, "mip6.nemo.bu.r_flag", &["1"]);
    check(p, n, "mip6.bu.f_flag", &["0"]);
    check(p, n, "mip6.bu.lifetime", &["1000"]);
    check(p, n, "mip6.acoa.acoa", &["2001:db8:a::5"]);
    check(p, n, "mip6.nemo.mnp.pfl", &["48", "64"]);
    check(
        p,
        n,
        "mip6.nemo.mnp.mnp",
        &["2001:db8:100::", "2001:db8:200:1::"],
    );
    check(p, n, "mip6.ipv4ha.preflen", &["28"]);
    check(p, n, "mip6.ipv4ha.p_flag", &["1"]);
    check(p, n, "mip6.ipv4ha.ha", &["192.0.2.16"]);
    check(p, n, "mip6.mnid.subtype", &["1"]);
    check(p, n, "mip6.mnid.identifier", &["mr1@example.org"]);
    // Wireshark reads the 64-bit timestamp as seconds since 1970 plus nanoseconds, not as
    // RFC 4285's NTP format, so NTP seconds for 2026 print as 2096: the octets are right.
    check(
        p,
        n,
        "mip6.mseg_id.timestamp",
        &["Jan  1, 2096 00:00:00.000000000 UTC"],
    );
    check(p, n, "mip6.auth.subtype", &["1"]);
    check(p, n, "mip6.auth.mobility_spi", &["4660"]);
    // Wireshark shows Length - 7 octets of authentication data (10 of the 12): its
    // dissector subtracts the option header twice. A hand-made option shows the same.
    check(p, n, "mip6.auth.auth_data", &["5a5a5a5a5a5a5a5a5a5a"]);

    let p = &decoded[1];
    let n = "BA";
    check(p, n, "ipv6.routing.type", &["2"]);
    check(
        p,
        n,
        "ipv6.routing.mipv6.home_address",
        &["2001:db8:1::100"],
    );
    check(p, n, "mip6.mhtype", &["6"]);
    check(p, n, "mip6.ba.status", &["0"]);
    check(p, n, "mip6.ba.k_flag", &["0"]);
    check(p, n, "mip6.nemo.ba.r_flag", &["1"]);
    check(p, n, "mip6.ba.seqnr", &["4242"]);
    check(p, n, "mip6.ba.lifetime", &["900"]);
    check(p, n, "mip6.bra.interval", &["450"]);
    check(p, n, "mip6.ipv4aa.sts", &["0"]);
    check(p, n, "mip6.natd.f_flag", &["1"]);
    check(p, n, "mip6.natd.refresh_t", &["110"]);

    let p = &decoded[2];
    let n = "BA 142";
    check(p, n, "mip6.ba.status", &["142"]);
    check(p, n, "mip6.ba.seqnr", &["7"]);
    check(p, n, "mip6.ipv4aa.sts", &["133"]);

    let p = &decoded[3];
    let n = "BE";
    check(p, n, "mip6.mhtype", &["7"]);
    check(p, n, "mip6.be.status", &["2"]);
    check(p, n, "mip6.be.haddr", &["2001:db8:1::100"]);

    let p = &decoded[4];
    let n = "BRR";
    check(p, n, "mip6.mhtype", &["0"]);
    check(p, n, "mip6.bi.bid", &["9"]);

    let p = &decoded[5];
    let n = "BU over UDP/IPv4";
    check(p, n, "udp.dstport", &["4191"]);
    check(p, n, "ipv6.src", &["2001:db8:1::100"]);
    check(p, n, "mip6.mhtype", &["5"]);
    check(p, n, "mip6.bu.seqnr", &["65535"]);
    check(p, n, "mip6.bu.f_flag", &["1"]);
    check(p, n, "mip6.nemo.bu.r_flag", &["1"]);
    check(p, n, "mip6.bu.lifetime", &["65535"]);
    check(p, n, "mip6.ipv4ha.preflen", &["32"]);
    check(p, n, "mip6.ipv4ha.p_flag", &["0"]);
    check(p, n, "mip6.ipv4ha.ha", &["0.0.0.0"]);
    check(p, n, "mip6.ipv4coa.addr", &["198.51.100.7"]);
    check(p, n, "mip6.bi.bid", &["2"]);
    check(p, n, "mip6.bi.h_flag", &["1"]);
    check(p, n, "mip6.bi.coa_ipv6", &["2001:db8:a::5"]);

    let p = &decoded[6];
    let n = "BA over UDP/IPv4";
    check(p, n, "mip6.mhtype", &["6"]);
    check(p, n, "mip6.natd.f_flag", &["0"]);
    check(p, n, "mip6.natd.refresh_t", &["4294967295"]);
}

/// A minimal inner packet: IPv6 or IPv4 header + 8 octets of UDP, from the mobile network
/// to a correspondent.
fn inner(v6: bool) -> Vec<u8> {
    let mut p = Vec::new();
    if v6 {
        p.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, 17, 64]);
        p.extend_from_slice(&"2001:db8:100::10".parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(&"2001:db8:ffff::1".parse::<Ipv6Addr>().unwrap().octets());
    } else {
        p.extend_from_slice(&[0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 17, 0, 0]);
        p.extend_from_slice(&[192, 0, 2, 20, 203, 0, 113, 99]);
        let c = proto::checksum::ipv4_header(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    // UDP 5000 -> 6000, length 8, checksum 0: "not present" over IPv4, "illegal" over IPv6
    // (RFC 8200 §8.1), which shows tshark really judges the inner header it found.
    p.extend_from_slice(&[0x13, 0x88, 0x17, 0x70, 0, 8, 0, 0]);
    p
}

#[test]
fn tshark_decodes_every_encapsulation() {
    let outers = [
        Encapsulation::Ipv6 {
            src_addr: COA,
            dst_addr: HA,
        },
        Encapsulation::Ipv4 {
            src_addr: COA4,
            dst_addr: HA4,
        },
        Encapsulation::Udp4 {
            src_addr: COA4,
            dst_addr: HA4,
            src_port: 40000,
            dst_port: proto::DSMIP_UDP_PORT,
        },
    ];
    let mut packets = Vec::new();
    for outer in &outers {
        for v6 in [true, false] {
            let mut buf = vec![0u8; outer.overhead()];
            buf.extend_from_slice(&inner(v6));
            let params = EncapParams {
                hop_limit: 60,
                ..EncapParams::default()
            };
            match encapsulate(outer, &params, &mut buf, outer.overhead()).expect("encapsulate") {
                EncapOutcome::Encapsulated(range) => packets.push(buf[range].to_vec()),
                other => panic!("not encapsulated: {other:?}"),
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("encapsulations.pcap");
    common::write_pcap(&pcap, &packets);
    let fields = [
        "ip.src",
        "ip.dst",
        "ip.proto",
        "ip.ttl",
        "ip.flags.df",
        "ip.checksum.status",
        "ipv6.src",
        "ipv6.dst",
        "ipv6.nxt",
        "ipv6.hlim",
        "udp.srcport",
        "udp.dstport",
        "udp.checksum.status",
    ];
    let decoded = common::tshark_fields(&pcap, &["udp.port==4191,ipv6"], &fields);
    assert_eq!(decoded.len(), 6);
    let mn6 = "2001:db8:100::10";
    let cn6 = "2001:db8:ffff::1";
    let coa = "2001:db8:a::5";
    let ha = "2001:db8:1::1";

    // Inner hop limit / TTL 64 leaves the tunnel entry as 63; the outer header carries 60.
    let p = &decoded[0];
    check(p, "6in6", "ipv6.src", &[coa, mn6]);
    check(p, "6in6", "ipv6.dst", &[ha, cn6]);
    check(p, "6in6", "ipv6.nxt", &["41", "17"]);
    check(p, "6in6", "ipv6.hlim", &["60", "63"]);
    let p = &decoded[1];
    check(p, "4in6", "ipv6.src", &[coa]);
    check(p, "4in6", "ipv6.nxt", &["4"]);
    check(p, "4in6", "ip.src", &["192.0.2.20"]);
    check(p, "4in6", "ip.ttl", &["63"]);
    check(p, "4in6", "ip.checksum.status", &["1"]);
    let p = &decoded[2];
    check(p, "6in4", "ip.src", &["198.51.100.7"]);
    check(p, "6in4", "ip.proto", &["41"]);
    check(p, "6in4", "ip.ttl", &["60"]);
    check(p, "6in4", "ip.flags.df", &["1"]);
    check(p, "6in4", "ip.checksum.status", &["1"]);
    check(p, "6in4", "ipv6.src", &[mn6]);
    check(p, "6in4", "ipv6.hlim", &["63"]);
    let p = &decoded[3];
    check(p, "4in4", "ip.src", &["198.51.100.7", "192.0.2.20"]);
    check(p, "4in4", "ip.proto", &["4", "17"]);
    check(p, "4in4", "ip.ttl", &["60", "63"]);
    check(p, "4in4", "ip.checksum.status", &["1", "1"]);
    let p = &decoded[4];
    check(p, "6inUDP", "ip.proto", &["17"]);
    check(p, "6inUDP", "udp.srcport", &["40000", "5000"]);
    check(p, "6inUDP", "udp.dstport", &["4191", "6000"]);
    check(p, "6inUDP", "udp.checksum.status", &["1", "4"]);
    check(p, "6inUDP", "ipv6.src", &[mn6]);
    check(p, "6inUDP", "ipv6.hlim", &["63"]);
    // tshark is told one inner protocol per UDP port: decode again as IPv4 for the last one.
    let decoded = common::tshark_fields(&pcap, &["udp.port==4191,ip"], &fields);
    let p = &decoded[5];
    check(p, "4inUDP", "ip.src", &["198.51.100.7", "192.0.2.20"]);
    check(p, "4inUDP", "ip.ttl", &["60", "63"]);
    check(p, "4inUDP", "udp.dstport", &["4191", "6000"]);
    check(p, "4inUDP", "udp.checksum.status", &["1", "3"]);
}

/// A whole IPv6 packet carrying `repr` from `src` to `dst`, checksummed.
fn icmpv6_packet(
    repr: &proto::icmpv6::Icmpv6Repr<'_>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
) -> Vec<u8> {
    let mut out = vec![0u8; repr.ipv6_packet_len()];
    repr.emit_ipv6_packet(src, dst, hop_limit, &mut out)
        .expect("emit ICMPv6 packet");
    out
}

#[test]
fn tshark_decodes_icmpv6_and_neighbor_discovery() {
    use proto::icmpv6::{
        Echo, ErrorMessage, Icmpv6Repr, NaFlags, NdOption, NeighborAdvertisement,
        NeighborSolicitation, PrefixFlags, PrefixInformation, RaFlags, RouterAdvertisement,
        RouterSolicitation, solicited_node,
    };
    let ll_ha: Ipv6Addr = "fe80::1".parse().unwrap();
    let ll_mr: Ipv6Addr = "fe80::b".parse().unwrap();
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let all_routers: Ipv6Addr = "ff02::2".parse().unwrap();
    let ha_mac = [0x02, 0, 0, 0, 0, 0x0a];
    let mr_mac = [0x02, 0, 0, 0, 0, 0x0b];

    // 1: the home agent's unsolicited NA defending a mobile router's HoA (mhio::ProxyNd).
    let na = Icmpv6Repr::NeighborAdvertisement(NeighborAdvertisement {
        flags: NaFlags::R | NaFlags::O,
        target: HOA,
        options: vec![NdOption::TargetLinkLayerAddress(&ha_mac)],
    });
    // 2: babymdd's RS (no options), and 3: one with a Source Link-Layer Address.
    let rs = Icmpv6Repr::RouterSolicitation(RouterSolicitation::default());
    let rs_slla = Icmpv6Repr::RouterSolicitation(RouterSolicitation {
        options: vec![NdOption::SourceLinkLayerAddress(&mr_mac)],
    });
    // 4: proxy DAD's NS.
    let ns = Icmpv6Repr::NeighborSolicitation(NeighborSolicitation {
        target: HOA,
        options: vec![],
    });
    // 5: a home agent's RA (RFC 6275 §7.1, §7.2): H flag, prefix with R, MTU.
    let ra = Icmpv6Repr::RouterAdvertisement(RouterAdvertisement {
        cur_hop_limit: 64,
        flags: RaFlags::H,
        router_lifetime: 1800,
        reachable_time: 30_000,
        retrans_timer: 1_000,
        options: vec![
            NdOption::SourceLinkLayerAddress(&ha_mac),
            NdOption::Mtu(1500),
            NdOption::PrefixInformation(PrefixInformation {
                prefix_len: 64,
                flags: PrefixFlags::L | PrefixFlags::A | PrefixFlags::R,
                valid_lifetime: 86_400,
                preferred_lifetime: 14_400,
                prefix: HA,
            }),
        ],
    });
    // 6: the Parameter Problem about a BU with a bad Payload Proto (mhio).
    let bu = MhRepr::BindingUpdate(BindingUpdate {
        sequence: SequenceNumber(1),
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        lifetime: Lifetime(100),
        options: vec![],
    });
    let mut invoking = packet(&bu, COA, HA, false, false);
    invoking[40] = 6;
    let pp = Icmpv6Repr::Error(ErrorMessage::parameter_problem(0, 40, &invoking));
    // 7: the home agent's Echo Reply to a request (had answers a HAO probe).
    let echo = Icmpv6Repr::EchoRequest(Echo {
        ident: 0x4242,
        seq_no: 7,
        data: b"probe",
    })
    .echo_reply()
    .unwrap();

    let packets = vec![
        icmpv6_packet(&na, ll_ha, all_nodes, 255),
        icmpv6_packet(&rs, ll_mr, all_routers, 255),
        icmpv6_packet(&rs_slla, ll_mr, all_routers, 255),
        icmpv6_packet(&ns, Ipv6Addr::UNSPECIFIED, solicited_node(HOA), 255),
        icmpv6_packet(&ra, ll_ha, all_nodes, 255),
        icmpv6_packet(&pp, HA, COA, 64),
        icmpv6_packet(&echo, HA, HOA, 64),
    ];
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("icmpv6.pcap");
    common::write_pcap(&pcap, &packets);
    let fields = [
        "ipv6.dst",
        "ipv6.hlim",
        "icmpv6.type",
        "icmpv6.code",
        "icmpv6.checksum.status",
        "icmpv6.nd.na.flag.r",
        "icmpv6.nd.na.flag.s",
        "icmpv6.nd.na.flag.o",
        "icmpv6.nd.na.target_address",
        "icmpv6.nd.ns.target_address",
        "icmpv6.nd.ra.cur_hop_limit",
        "icmpv6.nd.ra.flag.m",
        "icmpv6.nd.ra.flag.h",
        "icmpv6.nd.ra.router_lifetime",
        "icmpv6.nd.ra.reachable_time",
        "icmpv6.nd.ra.retrans_timer",
        "icmpv6.opt.type",
        "icmpv6.opt.length",
        "icmpv6.opt.src_linkaddr",
        "icmpv6.opt.target_linkaddr",
        "icmpv6.opt.mtu",
        "icmpv6.opt.prefix.length",
        "icmpv6.opt.prefix.flag.l",
        "icmpv6.opt.prefix.flag.a",
        "icmpv6.opt.prefix.flag.r",
        "icmpv6.opt.prefix.valid_lifetime",
        "icmpv6.opt.prefix.preferred_lifetime",
        "icmpv6.opt.prefix",
        "icmpv6.pointer",
        "icmpv6.echo.identifier",
        "icmpv6.echo.sequence_number",
        "data.data",
        "mip6.mhtype",
        "_ws.expert.message",
    ];
    let decoded = common::tshark_fields(&pcap, &[], &fields);
    assert_eq!(decoded.len(), packets.len());
    for (i, pkt) in decoded.iter().enumerate() {
        // Every checksum good, no complaint.
        check(
            pkt,
            &format!("packet {}", i + 1),
            "icmpv6.checksum.status",
            &["1"],
        );
        if i < 5 {
            check(pkt, &format!("packet {}", i + 1), "ipv6.hlim", &["255"]);
            check(pkt, &format!("packet {}", i + 1), "_ws.expert.message", &[]);
        }
    }

    let p = &decoded[0];
    let n = "NA";
    check(p, n, "icmpv6.type", &["136"]);
    check(p, n, "icmpv6.code", &["0"]);
    check(p, n, "icmpv6.nd.na.flag.r", &["1"]);
    check(p, n, "icmpv6.nd.na.flag.s", &["0"]);
    check(p, n, "icmpv6.nd.na.flag.o", &["1"]);
    check(p, n, "icmpv6.nd.na.target_address", &["2001:db8:1::100"]);
    check(p, n, "icmpv6.opt.type", &["2"]);
    check(p, n, "icmpv6.opt.length", &["1"]);
    check(p, n, "icmpv6.opt.target_linkaddr", &["02:00:00:00:00:0a"]);

    let p = &decoded[1];
    let n = "RS";
    check(p, n, "ipv6.dst", &["ff02::2"]);
    check(p, n, "icmpv6.type", &["133"]);
    check(p, n, "icmpv6.code", &["0"]);
    check(p, n, "icmpv6.opt.type", &[]);

    let p = &decoded[2];
    let n = "RS with SLLA";
    check(p, n, "icmpv6.type", &["133"]);
    check(p, n, "icmpv6.opt.type", &["1"]);
    check(p, n, "icmpv6.opt.src_linkaddr", &["02:00:00:00:00:0b"]);

    let p = &decoded[3];
    let n = "DAD NS";
    check(p, n, "ipv6.dst", &["ff02::1:ff00:100"]);
    check(p, n, "icmpv6.type", &["135"]);
    check(p, n, "icmpv6.nd.ns.target_address", &["2001:db8:1::100"]);

    let p = &decoded[4];
    let n = "RA";
    check(p, n, "icmpv6.type", &["134"]);
    check(p, n, "icmpv6.nd.ra.cur_hop_limit", &["64"]);
    check(p, n, "icmpv6.nd.ra.flag.m", &["0"]);
    check(p, n, "icmpv6.nd.ra.flag.h", &["1"]);
    check(p, n, "icmpv6.nd.ra.router_lifetime", &["1800"]);
    check(p, n, "icmpv6.nd.ra.reachable_time", &["30000"]);
    check(p, n, "icmpv6.nd.ra.retrans_timer", &["1000"]);
    check(p, n, "icmpv6.opt.type", &["1", "5", "3"]);
    check(p, n, "icmpv6.opt.length", &["1", "1", "4"]);
    check(p, n, "icmpv6.opt.src_linkaddr", &["02:00:00:00:00:0a"]);
    check(p, n, "icmpv6.opt.mtu", &["1500"]);
    check(p, n, "icmpv6.opt.prefix.length", &["64"]);
    check(p, n, "icmpv6.opt.prefix.flag.l", &["1"]);
    check(p, n, "icmpv6.opt.prefix.flag.a", &["1"]);
    check(p, n, "icmpv6.opt.prefix.flag.r", &["1"]);
    check(p, n, "icmpv6.opt.prefix.valid_lifetime", &["86400"]);
    check(p, n, "icmpv6.opt.prefix.preferred_lifetime", &["14400"]);
    check(p, n, "icmpv6.opt.prefix", &["2001:db8:1::1"]);

    let p = &decoded[5];
    let n = "Parameter Problem";
    check(p, n, "icmpv6.type", &["4"]);
    check(p, n, "icmpv6.code", &["0"]);
    check(p, n, "icmpv6.pointer", &["40"]);
    check(p, n, "ipv6.dst", &["2001:db8:a::5", "2001:db8:1::1"]);

    let p = &decoded[6];
    let n = "Echo Reply";
    check(p, n, "icmpv6.type", &["129"]);
    check(p, n, "icmpv6.code", &["0"]);
    check(p, n, "icmpv6.echo.identifier", &["0x4242"]);
    check(p, n, "icmpv6.echo.sequence_number", &["7"]);
    check(p, n, "data.data", &["70726f6265"]);
}

/// RFC 6275 §6.5-§6.8 and §7.3-§7.4 as had emits them: DHAAD Request and Reply, Mobile
/// Prefix Solicitation and Advertisement, and an RA with the Advertisement Interval and
/// Home Agent Information options (issue 14).
#[test]
fn tshark_decodes_home_agent_and_mobile_prefix_discovery() {
    use proto::icmpv6::{
        HaInfoFlags, HaadFlags, HaadReply, HaadRequest, HomeAgentInformation, Icmpv6Repr,
        MobilePrefixAdvertisement, MobilePrefixSolicitation, MpaFlags, NdOption, PrefixFlags,
        PrefixInformation, RaFlags, RouterAdvertisement, home_agents_anycast,
    };
    let anycast = home_agents_anycast(HA, 64).unwrap();
    let ha2: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
    let request = Icmpv6Repr::HaadRequest(HaadRequest {
        identifier: 0x1234,
        flags: HaadFlags::R,
    });
    let reply = Icmpv6Repr::HaadReply(HaadReply {
        identifier: 0x1234,
        flags: HaadFlags::R,
        home_agents: vec![HA, ha2],
    });
    let mps = Icmpv6Repr::MobilePrefixSolicitation(MobilePrefixSolicitation {
        identifier: 0x4321,
        reserved: 0,
        options: vec![],
    });
    let home_prefix = NdOption::PrefixInformation(PrefixInformation {
        prefix_len: 64,
        flags: PrefixFlags::L | PrefixFlags::A,
        valid_lifetime: 7100,
        preferred_lifetime: 3500,
        prefix: "2001:db8:1::".parse().unwrap(),
    });
    let mpa = Icmpv6Repr::MobilePrefixAdvertisement(MobilePrefixAdvertisement {
        identifier: 0x4321,
        flags: MpaFlags::M,
        options: vec![home_prefix],
    });
    let ra = Icmpv6Repr::RouterAdvertisement(RouterAdvertisement {
        flags: RaFlags::H,
        router_lifetime: 1800,
        options: vec![
            NdOption::AdvertisementInterval(3000),
            NdOption::HomeAgentInformation(HomeAgentInformation {
                flags: HaInfoFlags::R,
                preference: -2,
                lifetime: 600,
            }),
        ],
        ..Default::default()
    });
    let packets = vec![
        icmpv6_packet(&request, COA, anycast, 64),
        icmpv6_packet(&reply, HA, COA, 64),
        icmpv6_packet(&mps, HOA, HA, 64),
        icmpv6_packet(&mpa, HA, HOA, 64),
        icmpv6_packet(
            &ra,
            "fe80::1".parse().unwrap(),
            "ff02::1".parse().unwrap(),
            255,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("discovery.pcap");
    common::write_pcap(&pcap, &packets);
    let fields = [
        "ipv6.dst",
        "icmpv6.type",
        "icmpv6.code",
        "icmpv6.checksum.status",
        "icmpv6.mip6.identifier",
        "icmpv6.mip6.home_agent_address",
        "icmpv6.mip6.flag.m",
        "icmpv6.mip6.flag.o",
        "icmpv6.opt.type",
        "icmpv6.opt.prefix",
        "icmpv6.opt.prefix.valid_lifetime",
        "icmpv6.opt.prefix.preferred_lifetime",
        "icmpv6.opt.advertisement_interval",
        "icmpv6.opt.home_agent_preference",
        "icmpv6.opt.home_agent_lifetime",
        "icmpv6.nd.ra.flag.h",
        "_ws.expert.message",
    ];
    let decoded = common::tshark_fields(&pcap, &[], &fields);
    assert_eq!(decoded.len(), packets.len());
    for (i, pkt) in decoded.iter().enumerate() {
        let n = format!("packet {}", i + 1);
        check(pkt, &n, "icmpv6.checksum.status", &["1"]);
        check(pkt, &n, "icmpv6.code", &["0"]);
        check(pkt, &n, "_ws.expert.message", &[]);
    }
    let p = &decoded[0];
    check(
        p,
        "HAAD Request",
        "ipv6.dst",
        &["2001:db8:1:0:fdff:ffff:ffff:fffe"],
    );
    check(p, "HAAD Request", "icmpv6.type", &["144"]);
    check(p, "HAAD Request", "icmpv6.mip6.identifier", &["4660"]);
    let p = &decoded[1];
    check(p, "HAAD Reply", "icmpv6.type", &["145"]);
    check(p, "HAAD Reply", "icmpv6.mip6.identifier", &["4660"]);
    check(
        p,
        "HAAD Reply",
        "icmpv6.mip6.home_agent_address",
        &["2001:db8:1::1", "2001:db8:1::2"],
    );
    let p = &decoded[2];
    check(p, "MPS", "icmpv6.type", &["146"]);
    check(p, "MPS", "icmpv6.mip6.identifier", &["17185"]);
    let p = &decoded[3];
    let n = "MPA";
    check(p, n, "icmpv6.type", &["147"]);
    check(p, n, "icmpv6.mip6.identifier", &["17185"]);
    check(p, n, "icmpv6.mip6.flag.m", &["1"]);
    check(p, n, "icmpv6.mip6.flag.o", &["0"]);
    check(p, n, "icmpv6.opt.type", &["3"]);
    check(p, n, "icmpv6.opt.prefix", &["2001:db8:1::"]);
    check(p, n, "icmpv6.opt.prefix.valid_lifetime", &["7100"]);
    check(p, n, "icmpv6.opt.prefix.preferred_lifetime", &["3500"]);
    let p = &decoded[4];
    let n = "RA with HA Information";
    check(p, n, "icmpv6.nd.ra.flag.h", &["1"]);
    check(p, n, "icmpv6.opt.type", &["7", "8"]);
    check(p, n, "icmpv6.opt.advertisement_interval", &["3000"]);
    // RFC 6275 §7.4 makes the preference signed; Wireshark shows the 16 bits unsigned:
    // -2 on the wire is 0xfffe.
    check(p, n, "icmpv6.opt.home_agent_preference", &["65534"]);
    check(p, n, "icmpv6.opt.home_agent_lifetime", &["600"]);
}

#[test]
fn tshark_decodes_a_dhcp_discover() {
    use proto::dhcp::{CLIENT_PORT, DhcpPacket, DhcpRepr, MessageType, SERVER_PORT};
    use proto::ext::{IPV4_HEADER_LEN, Ipv4Header, Ipv4Repr, UDP_HEADER_LEN, UdpHeader, UdpRepr};
    // The DISCOVER babymdd's client sends, from 0.0.0.0:68 to 255.255.255.255:67 as its
    // packet socket writes it (babymdd/src/dhcp/raw.rs).
    let mac = [0x02, 0, 0, 0, 0, 0x42];
    let mut m = DhcpRepr::request(0x1122_3344, mac, MessageType::Discover);
    m.secs = 3;
    m.broadcast = true;
    m.client_id = Some(vec![1, 0x02, 0, 0, 0, 0, 0x42]);
    m.parameter_request_list = vec![1, 3, 51, 54, 58, 59];
    let mut payload = vec![0u8; m.buffer_len()];
    m.emit(&mut DhcpPacket::new_unchecked(&mut payload[..]))
        .unwrap();

    let (src, dst) = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST);
    let udp_len = UDP_HEADER_LEN + payload.len();
    let mut p = vec![0u8; IPV4_HEADER_LEN + udp_len];
    Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: proto::IPPROTO_UDP,
        payload_len: udp_len as u16,
        ttl: 64,
        dscp: 4,
        ecn: 0,
        ident: 0x1234,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    }
    .emit(&mut Ipv4Header::new_unchecked(&mut p[..IPV4_HEADER_LEN]))
    .unwrap();
    p[IPV4_HEADER_LEN + UDP_HEADER_LEN..].copy_from_slice(&payload);
    let mut udp = UdpHeader::new_unchecked(&mut p[IPV4_HEADER_LEN..]);
    UdpRepr {
        src_port: CLIENT_PORT,
        dst_port: SERVER_PORT,
        payload_len: payload.len() as u16,
    }
    .emit(&mut udp)
    .unwrap();
    udp.fill_checksum_v4(&src, &dst);

    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("dhcp.pcap");
    common::write_pcap(&pcap, &[p]);
    let fields = [
        "ip.src",
        "ip.dst",
        "ip.ttl",
        "ip.dsfield",
        "ip.checksum.status",
        "udp.srcport",
        "udp.dstport",
        "udp.checksum.status",
        "dhcp.type",
        "dhcp.hw.type",
        "dhcp.hw.len",
        "dhcp.hops",
        "dhcp.id",
        "dhcp.secs",
        "dhcp.flags.bc",
        "dhcp.ip.client",
        "dhcp.hw.mac_addr",
        "dhcp.cookie",
        "dhcp.option.type",
        "dhcp.option.dhcp",
        "dhcp.option.request_list_item",
        "dhcp.option.end",
        "_ws.expert.message",
    ];
    let decoded = common::tshark_fields(&pcap, &[], &fields);
    assert_eq!(decoded.len(), 1);
    let p = &decoded[0];
    let n = "DHCPDISCOVER";
    check(p, n, "ip.src", &["0.0.0.0"]);
    check(p, n, "ip.dst", &["255.255.255.255"]);
    check(p, n, "ip.ttl", &["64"]);
    check(p, n, "ip.dsfield", &["0x10"]);
    check(p, n, "ip.checksum.status", &["1"]);
    check(p, n, "udp.srcport", &["68"]);
    check(p, n, "udp.dstport", &["67"]);
    check(p, n, "udp.checksum.status", &["1"]);
    check(p, n, "dhcp.type", &["1"]);
    // The header's htype, then the Client-identifier's type octet (1: Ethernet) and its
    // address, which tshark shows with the same fields.
    check(p, n, "dhcp.hw.type", &["0x01", "0x01"]);
    check(p, n, "dhcp.hw.len", &["6"]);
    check(p, n, "dhcp.hops", &["0"]);
    check(p, n, "dhcp.id", &["0x11223344"]);
    check(p, n, "dhcp.secs", &["3"]);
    check(p, n, "dhcp.flags.bc", &["1"]);
    check(p, n, "dhcp.ip.client", &["0.0.0.0"]);
    check(
        p,
        n,
        "dhcp.hw.mac_addr",
        &["02:00:00:00:00:42", "02:00:00:00:00:42"],
    );
    check(p, n, "dhcp.cookie", &["99.130.83.99"]);
    // End is its own field; the zero octets after it, up to 300, show as Pad.
    check(p, n, "dhcp.option.type", &["53", "61", "55", "0"]);
    check(p, n, "dhcp.option.dhcp", &["1"]);
    check(
        p,
        n,
        "dhcp.option.request_list_item",
        &["1", "3", "51", "54", "58", "59"],
    );
    check(p, n, "dhcp.option.end", &["255"]);
    check(p, n, "_ws.expert.message", &[]);
}

/// A Home Agent Switch (RFC 5142) as had sends it: to the care-of address through an RH2,
/// two home agents listed, MN-HA authentication last. Wireshark's dissector reads the count
/// at octet 6 and the reserved octet at 7 (the RFC's figure, copied into its source), the
/// layout `proto::mh::HomeAgentSwitch` uses. Only the fixed part is judged: Wireshark 4.0's
/// `dissect_mip6_has` returns `2 + 16 × n` as the options' offset, leaving out the 6
/// octets of the common header, so it walks the options from the wrong place (and calls
/// an empty HAS malformed).
#[test]
fn tshark_decodes_home_agent_switch() {
    use proto::mh::HomeAgentSwitch;
    let other: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
    let third: Ipv6Addr = "2001:db8:7::1".parse().unwrap();
    let has = MhRepr::HomeAgentSwitch(HomeAgentSwitch {
        home_agents: vec![other, third],
        options: vec![proto::auth::mn_ha_option(0x1234)],
    });
    let empty = MhRepr::HomeAgentSwitch(HomeAgentSwitch::default());
    let packets = vec![
        packet(&has, HA, COA, false, true),
        packet(&empty, HA, COA, false, true),
    ];
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("has.pcap");
    common::write_pcap(&pcap, &packets);
    let fields = [
        "ipv6.routing.mipv6.home_address",
        "mip6.proto",
        "mip6.hlen",
        "mip6.mhtype",
        "mip6.has.num_addrs",
        "mip6.has.reserved",
        "mip6.has.address",
    ];
    let decoded = common::tshark_fields(&pcap, &[], &fields);
    assert_eq!(decoded.len(), 2);
    let (p, n) = (&decoded[0], "HAS");
    check(
        p,
        n,
        "ipv6.routing.mipv6.home_address",
        &["2001:db8:1::100"],
    );
    check(p, n, "mip6.proto", &["59"]);
    check(p, n, "mip6.mhtype", &["12"]);
    // 8 + 2 × 16 + PadN 5 + 19 = 64 octets.
    check(p, n, "mip6.hlen", &["7"]);
    check(p, n, "mip6.has.num_addrs", &["2"]);
    check(p, n, "mip6.has.reserved", &["0x00"]);
    check(
        p,
        n,
        "mip6.has.address",
        &["2001:db8:1::2", "2001:db8:7::1"],
    );
    let (p, n) = (&decoded[1], "empty HAS");
    check(p, n, "mip6.mhtype", &["12"]);
    check(p, n, "mip6.hlen", &["0"]);
    check(p, n, "mip6.has.num_addrs", &["0"]);
    check(p, n, "mip6.has.address", &[]);
}

/// One option tshark delimited but did not dissect, from its PDML: where it starts in the
/// packet, and its octets.
#[derive(Debug)]
struct Undissected {
    pos: usize,
    bytes: Vec<u8>,
}

/// The options of type `option_type` in one packet's PDML (Wireshark shows them as
/// `Unknown (0x..)` nodes whose size and value are what its option walk took), and the
/// position of the Mobility Header.
fn undissected(pdml_packet: &str, option_type: u8) -> (usize, Vec<Undissected>) {
    let attr = |line: &str, name: &str| -> String {
        let key = format!(" {name}=\"");
        let at = line
            .find(&key)
            .unwrap_or_else(|| panic!("{name} in {line}"))
            + key.len();
        line[at..].split('"').next().unwrap().to_string()
    };
    let mh = pdml_packet
        .lines()
        .find(|l| l.contains("<proto name=\"mipv6\""))
        .map(|l| attr(l, "pos").parse().unwrap())
        .expect("a Mobility Header");
    let show = format!("show=\"Unknown (0x{option_type:02x})\"");
    let opts = pdml_packet
        .lines()
        .filter(|l| l.contains(&show))
        .map(|l| {
            let hex = attr(l, "value");
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(attr(l, "size").parse::<usize>().unwrap(), bytes.len());
            Undissected {
                pos: attr(l, "pos").parse().unwrap(),
                bytes,
            }
        })
        .collect();
    (mh, opts)
}

/// The sub-options of a Flow Identification option's octets, read by hand at RFC 6089's
/// offsets (Figure 2: sub-options after 8 octets; Figure 3: Type, Length, data; Pad1 alone),
/// padding dropped: (offset from the option's Type, type, data).
fn sub_options_by_hand(opt: &[u8]) -> Vec<(usize, u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 8;
    while at < opt.len() {
        match opt[at] {
            0 => at += 1,
            t => {
                let len = usize::from(opt[at + 1]);
                if t != 1 {
                    out.push((at, t, opt[at + 2..at + 2 + len].to_vec()));
                }
                at += 2 + len;
            }
        }
    }
    assert_eq!(at, opt.len(), "sub-options overrun the option");
    out
}

/// RFC 6089's flow binding options in a BU and in the home agent's BA. Wireshark (4.0.17
/// here) names options 44 and 45 but dissects neither, nor RFC 6088's selectors: what it
/// vouches for is each option's type, where it starts and where it ends (it walks the
/// options by our Length octets, and the options after ours still decode: the NAI and the
/// MN-HA authenticator). The octets it delimits are then read here by hand, at the offsets
/// of RFC 6089's and RFC 6088's figures, not by proto's parser; their alignments are
/// measured from the Mobility Header's position as tshark gives it.
#[test]
fn tshark_walks_flow_binding_options() {
    use proto::flow::{
        FlowIdentification, FlowStatus, FlowSubOption, FlowSubOptions, IdList, Ipv4TrafficSelector,
        Ipv6TrafficSelector, SelectorRange, TrafficSelector,
    };
    use proto::option::ParseConfig;

    let cn_first: Ipv6Addr = "2001:db8:c::1".parse().unwrap();
    let cn_last: Ipv6Addr = "2001:db8:c::ff".parse().unwrap();
    let web = Ipv4Addr::new(192, 0, 2, 20);
    // FID 1: SIP from a range of correspondents to the home address, over BIDs 1 and 2.
    let sip = [
        FlowSubOption::BindingReference(IdList::List(&[1, 2])),
        FlowSubOption::TrafficSelector(TrafficSelector::Ipv6(Ipv6TrafficSelector {
            source_address: Some(SelectorRange::new(cn_first, cn_last)),
            destination_address: Some(SelectorRange::single(HOA)),
            destination_port: Some(SelectorRange::new(5060, 5061)),
            traffic_class: Some(SelectorRange::single(0xb8)),
            next_header: Some(SelectorRange::single(17)),
            ..Default::default()
        })),
    ];
    // FID 2: HTTPS to an IPv4 home address, over BID 2.
    let https = [
        FlowSubOption::BindingReference(IdList::List(&[2])),
        FlowSubOption::TrafficSelector(TrafficSelector::Ipv4(Ipv4TrafficSelector {
            destination_address: Some(SelectorRange::single(web)),
            destination_port: Some(SelectorRange::single(443)),
            protocol: Some(SelectorRange::single(6)),
            ..Default::default()
        })),
    ];
    let auth_data = [0x5a; 12];
    let bu = MhRepr::BindingUpdate(BindingUpdate {
        sequence: SequenceNumber(300),
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        lifetime: Lifetime(1000),
        options: vec![
            MobilityOption::AlternateCareOfAddress(COA),
            MobilityOption::FlowIdentification(FlowIdentification {
                fid: 1,
                fid_pri: 10,
                status: FlowStatus::Successful,
                sub_options: FlowSubOptions::List(&sip),
            }),
            MobilityOption::FlowIdentification(FlowIdentification {
                fid: 2,
                fid_pri: 20,
                status: FlowStatus::Successful,
                sub_options: FlowSubOptions::List(&https),
            }),
            // FIDs 3 and 4 kept as they are (§5.2.3).
            MobilityOption::FlowSummary(IdList::List(&[3, 4])),
            MobilityOption::MobileNodeIdentifier {
                subtype: 1,
                identifier: b"mr1@example.org",
            },
            MobilityOption::Authentication {
                subtype: 1,
                spi: 0x1234,
                data: &auth_data,
            },
        ],
    });
    // The home agent's BA (§5.3.5): each Flow Identification option of the BU copied
    // with its status (FID 1 accepted, FID 2's BID unknown), and FID 3 of the summary
    // unknown (§5.3.3).
    let mut bu_mh = vec![0u8; bu.buffer_len()];
    bu.emit_to(&mut bu_mh).unwrap();
    let received = MhRepr::parse_bytes(&bu_mh, ParseConfig::default()).unwrap();
    let copies: Vec<_> = received
        .options()
        .iter()
        .filter_map(|o| match o {
            MobilityOption::FlowIdentification(fi) => Some(*fi),
            _ => None,
        })
        .collect();
    assert_eq!(copies.len(), 2);
    let ba = MhRepr::BindingAck(BindingAck {
        status: BaStatus::from(0),
        flags: BaFlags::R,
        sequence: SequenceNumber(300),
        lifetime: Lifetime(1000),
        options: vec![
            MobilityOption::FlowIdentification(FlowIdentification {
                status: FlowStatus::Successful,
                ..copies[0]
            }),
            MobilityOption::FlowIdentification(FlowIdentification {
                status: FlowStatus::BidNotFound,
                ..copies[1]
            }),
            MobilityOption::FlowIdentification(FlowIdentification {
                fid: 3,
                fid_pri: 30,
                status: FlowStatus::FidNotFound,
                sub_options: FlowSubOptions::NONE,
            }),
        ],
    });

    let packets = vec![
        packet(&bu, COA, HA, true, false),
        packet(&ba, HA, COA, false, true),
    ];
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("flow-bindings.pcap");
    common::write_pcap(&pcap, &packets);

    let fields = [
        "mip6.mhtype",
        "mip6.bu.seqnr",
        "mip6.ba.status",
        "mip6.mobility_opt",
        "mip6.acoa.acoa",
        "mip6.mnid.identifier",
        "mip6.auth.mobility_spi",
        "_ws.expert.message",
    ];
    let decoded = common::tshark_fields(&pcap, &[], &fields);
    assert_eq!(decoded.len(), 2);
    for (i, pkt) in decoded.iter().enumerate() {
        let bad: Vec<_> = pkt
            .get("_ws.expert.message")
            .into_iter()
            .flatten()
            .filter(|m| *m != "IE data not dissected yet")
            .collect();
        assert!(
            bad.is_empty(),
            "packet {}: tshark complains: {bad:?}",
            i + 1
        );
    }
    let p = &decoded[0];
    check(p, "BU", "mip6.mhtype", &["5"]);
    check(p, "BU", "mip6.bu.seqnr", &["300"]);
    check(p, "BU", "mip6.mobility_opt", &["45", "45", "44"]);
    check(p, "BU", "mip6.acoa.acoa", &["2001:db8:a::5"]);
    // Options after ours, found where our lengths say: the NAI and the authenticator.
    check(p, "BU", "mip6.mnid.identifier", &["mr1@example.org"]);
    check(p, "BU", "mip6.auth.mobility_spi", &["4660"]);
    let p = &decoded[1];
    check(p, "BA", "mip6.mhtype", &["6"]);
    check(p, "BA", "mip6.ba.status", &["0"]);
    check(p, "BA", "mip6.mobility_opt", &["45", "45", "45"]);

    let pdml = common::tshark_pdml(&pcap, &[]);
    let per_packet: Vec<&str> = pdml.split("<packet>").skip(1).collect();
    assert_eq!(per_packet.len(), 2);

    // The BU.
    let (mh, fids) = undissected(per_packet[0], 45);
    let (_, summaries) = undissected(per_packet[0], 44);
    assert_eq!(fids.len(), 2);
    // FID 1: FID, FID-PRI, Reserved, Status (RFC 6089 Figure 2).
    let o = &fids[0].bytes;
    assert_eq!(&o[..8], &[45, (o.len() - 2) as u8, 0, 1, 0, 10, 0, 0]);
    // Its Type on 8n from the MH: the IPv6 selector inside needs 8n (RFC 6088 §3.2).
    assert_eq!((fids[0].pos - mh) % 8, 0);
    let subs = sub_options_by_hand(o);
    assert_eq!(subs.len(), 2);
    // Binding Reference (type 2): BIDs 1 and 2, on 2n.
    assert_eq!((subs[0].1, subs[0].2.as_slice()), (2, &[0, 1, 0, 2][..]));
    assert_eq!((fids[0].pos + subs[0].0 - mh) % 2, 0);
    // Traffic Selector (type 3): TS Format 2, Reserved, flags A B C K L M O, then the
    // fields in flag order (RFC 6088 Figure 2), on 8n.
    let (at, t, ts) = &subs[1];
    assert_eq!(*t, 3);
    assert_eq!((fids[0].pos + at - mh) % 8, 0);
    let mut want = vec![2, 0, 0xe0, 0x3a, 0, 0];
    want.extend_from_slice(&cn_first.octets());
    want.extend_from_slice(&cn_last.octets());
    want.extend_from_slice(&HOA.octets());
    want.extend_from_slice(&[0x13, 0xc4, 0x13, 0xc5, 0xb8, 17]);
    assert_eq!(ts, &want);
    // FID 2: on 4n (the IPv4 selector's address), BID 2, flags C I M (RFC 6088 Figure 1).
    let o = &fids[1].bytes;
    assert_eq!(&o[..8], &[45, (o.len() - 2) as u8, 0, 2, 0, 20, 0, 0]);
    assert_eq!((fids[1].pos - mh) % 4, 0);
    let subs = sub_options_by_hand(o);
    assert_eq!((subs[0].1, subs[0].2.as_slice()), (2, &[0, 2][..]));
    let (at, t, ts) = &subs[1];
    assert_eq!(*t, 3);
    assert_eq!((fids[1].pos + at - mh) % 4, 0);
    assert_eq!(ts, &[1, 0, 0x20, 0x88, 0, 0, 192, 0, 2, 20, 0x01, 0xbb, 6]);
    // The Flow Summary: FIDs 3 and 4 on 2n (RFC 6089 Figure 6).
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].bytes, [44, 4, 0, 3, 0, 4]);
    assert_eq!((summaries[0].pos - mh) % 2, 0);
    let bu_opts: Vec<Vec<u8>> = fids.iter().map(|f| f.bytes.clone()).collect();

    // The BA: the copies octet for octet but the Status, still aligned for their
    // selectors, and FID 3 alone with status 132.
    let (mh, fids) = undissected(per_packet[1], 45);
    assert_eq!(fids.len(), 3);
    for (i, (copy, status)) in fids.iter().zip([0u8, 131]).enumerate() {
        assert_eq!(copy.bytes[..7], bu_opts[i][..7]);
        assert_eq!(copy.bytes[7], status);
        assert_eq!(copy.bytes[8..], bu_opts[i][8..]);
    }
    assert_eq!((fids[0].pos - mh) % 8, 0);
    assert_eq!((fids[1].pos - mh) % 4, 0);
    assert_eq!(fids[2].bytes, [45, 6, 0, 3, 0, 30, 0, 132]);
}
