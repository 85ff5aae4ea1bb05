//! External truth, the other way round: packets built by scapy (another implementation of
//! the Mobility Header, HAO and RH2) parse to the Reprs we expect, and their checksums
//! verify with the pseudo-header rule of RFC 6275 §6.1.1.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::path::Path;

use proto::ext::{ChecksumSource, Walk, walk};
use proto::mh::{
    BaFlags, BaStatus, BeStatus, BindingAck, BindingError, BindingRefreshRequest, BindingUpdate,
    BuFlags, MhRepr,
};
use proto::option::{MobilityOption, ParseConfig};
use proto::seq::{Lifetime, SequenceNumber};

const HOA: &str = "2001:db8:1::100";
const COA: &str = "2001:db8:a::5";
const HA: &str = "2001:db8:1::1";

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn scapy_packets() -> BTreeMap<String, Vec<u8>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scapy_packets.py");
    common::run_scapy(&script)
        .lines()
        .map(|line| {
            let (name, hex) = line.split_once(' ').expect("`name hex` line");
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (name.to_string(), bytes)
        })
        .collect()
}

/// Walks the packet, checks its MH checksum and returns the parsed MH with what the walk saw.
fn parse(
    bytes: &[u8],
) -> (
    MhRepr<'_>,
    Option<Ipv6Addr>,
    Option<Ipv6Addr>,
    ChecksumSource,
) {
    let Walk::Mobility(pkt) = walk(bytes).expect("walk") else {
        panic!("scapy packet does not end in a Mobility Header");
    };
    let source = pkt.verify_checksum().expect("scapy's checksum verifies");
    let repr = MhRepr::parse_bytes(pkt.payload, ParseConfig::default()).expect("parse MH");
    (repr, pkt.home_address, pkt.rh2_home_address, source)
}

#[test]
fn scapy_packets_parse_to_expected_reprs() {
    let packets = scapy_packets();
    assert_eq!(packets.len(), 7, "every scapy packet printed: {packets:?}");

    let (repr, hao, rh2, source) = parse(&packets["bu_hao_mnp"]);
    assert_eq!(hao, Some(ip(HOA)));
    assert_eq!(rh2, None);
    // scapy sums over the home address, as RFC 6275 §6.1.1 requires.
    assert_eq!(source, ChecksumSource::HomeAddress);
    assert_eq!(
        repr,
        MhRepr::BindingUpdate(BindingUpdate {
            sequence: SequenceNumber(4242),
            flags: BuFlags::A | BuFlags::H | BuFlags::R,
            lifetime: Lifetime(1000),
            options: vec![
                MobilityOption::AlternateCareOfAddress(ip(COA)),
                MobilityOption::MobileNetworkPrefix {
                    prefix_len: 48,
                    prefix: ip("2001:db8:100::"),
                },
                MobilityOption::MobileNetworkPrefix {
                    prefix_len: 64,
                    prefix: ip("2001:db8:200:1::"),
                },
            ],
        })
    );

    let (repr, hao, rh2, _) = parse(&packets["ba_rh2_bra"]);
    assert_eq!((hao, rh2), (None, Some(ip(HOA))));
    assert_eq!(
        repr,
        MhRepr::BindingAck(BindingAck {
            status: BaStatus::from(0),
            flags: BaFlags::R,
            sequence: SequenceNumber(4242),
            lifetime: Lifetime(900),
            options: vec![MobilityOption::BindingRefreshAdvice {
                refresh_interval: Lifetime(450),
            }],
        })
    );

    let (repr, _, rh2, _) = parse(&packets["ba_142"]);
    assert_eq!(rh2, Some(ip(HOA)));
    let MhRepr::BindingAck(ba) = repr else {
        panic!("not a BA: {repr:?}")
    };
    assert_eq!(ba.status, BaStatus::from(142));
    assert!(!ba.status.is_accepted());
    assert_eq!(ba.sequence, SequenceNumber(7));
    assert!(ba.options.is_empty());

    let (repr, ..) = parse(&packets["be_2"]);
    assert_eq!(
        repr,
        MhRepr::BindingError(BindingError {
            status: BeStatus::from(2),
            home_address: Ipv6Addr::UNSPECIFIED,
            options: vec![],
        })
    );
    let (repr, ..) = parse(&packets["be_1"]);
    assert_eq!(
        repr,
        MhRepr::BindingError(BindingError {
            status: BeStatus::from(1),
            home_address: ip(HOA),
            options: vec![],
        })
    );

    let (repr, ..) = parse(&packets["brr"]);
    assert_eq!(
        repr,
        MhRepr::BindingRefreshRequest(BindingRefreshRequest { options: vec![] })
    );

    let (repr, hao, ..) = parse(&packets["bu_mnid_ts"]);
    assert_eq!(hao, Some(ip(HOA)));
    assert_eq!(
        repr,
        MhRepr::BindingUpdate(BindingUpdate {
            sequence: SequenceNumber(1),
            flags: BuFlags::A | BuFlags::H,
            lifetime: Lifetime(25),
            options: vec![
                MobilityOption::MobileNodeIdentifier {
                    subtype: 1,
                    identifier: b"mr1@example.org",
                },
                MobilityOption::ReplayProtection {
                    timestamp: 0x0123_4567_89ab_cdef,
                },
            ],
        })
    );
}

#[test]
fn scapy_bu_travels_from_coa_to_ha() {
    let packets = scapy_packets();
    let walked = walk(&packets["bu_hao_mnp"]).expect("walk");
    assert_eq!(walked.packet().src_addr, ip(COA));
    assert_eq!(walked.packet().dst_addr, ip(HA));
    assert_eq!(walked.packet().upper_layer, proto::IPPROTO_MH);
}
