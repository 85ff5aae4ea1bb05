//! Parse and emit of a home-registration Binding Update carrying two Mobile Network Prefix
//! options, an IPv4 Home Address option (IPv4 MNP) and an MN-HA authentication option: the
//! message an MR sends on every move and refresh. Goal: under 200 ns each way.
//!
//! Run: `cargo bench -p proto --bench bu`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use proto::encap::{EncapOutcome, EncapParams, Encapsulation, encapsulate};
use proto::mh::{BindingUpdate, BuFlags, MhRepr};
use proto::option::{MobilityOption, ParseConfig};
use proto::seq::{Lifetime, SequenceNumber};

const HOA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
const COA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 5);
const HA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const KEY: &[u8] = b"0123456789abcdef";

fn bu() -> MhRepr<'static> {
    MhRepr::BindingUpdate(BindingUpdate {
        sequence: SequenceNumber(4242),
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        lifetime: Lifetime(1000),
        options: vec![
            MobilityOption::MobileNetworkPrefix {
                prefix_len: 48,
                prefix: Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0),
            },
            MobilityOption::MobileNetworkPrefix {
                prefix_len: 64,
                prefix: Ipv6Addr::new(0x2001, 0xdb8, 0x200, 1, 0, 0, 0, 0),
            },
            MobilityOption::Ipv4HomeAddress {
                prefix_len: 28,
                p: true,
                address: Ipv4Addr::new(192, 0, 2, 16),
            },
            proto::auth::mn_ha_option(0x1234),
        ],
    })
}

fn bench_bu(c: &mut Criterion) {
    let repr = bu();
    let mut wire = vec![0u8; repr.buffer_len()];
    repr.emit_to(&mut wire).unwrap();

    c.bench_function("bu_parse (2 MNP + IPv4 HoA + auth)", |b| {
        b.iter(|| MhRepr::parse_bytes(black_box(&wire), ParseConfig::default()).unwrap())
    });

    let mut out = vec![0u8; repr.buffer_len()];
    c.bench_function("bu_emit (2 MNP + IPv4 HoA + auth)", |b| {
        b.iter(|| black_box(&repr).emit_to(black_box(&mut out)).unwrap())
    });

    // What an MR does per BU beyond emit: the RFC 4285 MAC and the checksum.
    c.bench_function("bu_emit_sign_checksum", |b| {
        b.iter(|| {
            let n = repr.emit_to(&mut out).unwrap();
            proto::auth::sign(&mut out[..n], IpAddr::V6(COA), &HOA, KEY).unwrap();
            let mut pkt = proto::mh::Packet::new_unchecked(&mut out[..n]);
            pkt.fill_checksum(&HOA, &HA);
            black_box(n)
        })
    });

    // The MAC alone: key derived per call vs a prepared key (what had and mrd keep).
    let n = repr.emit_to(&mut out).unwrap();
    c.bench_function("auth_sign (key per call)", |b| {
        b.iter(|| proto::auth::sign(black_box(&mut out[..n]), IpAddr::V6(COA), &HOA, KEY).unwrap())
    });
    let key = proto::auth::MnHaKey::new(KEY);
    c.bench_function("auth_sign (prepared key)", |b| {
        b.iter(|| {
            key.sign(black_box(&mut out[..n]), IpAddr::V6(COA), &HOA)
                .unwrap()
        })
    });
}

fn bench_encap(c: &mut Criterion) {
    // A 1400-octet inner IPv6 packet into UDP/IPv4, in place: the NATed data path.
    let enc = Encapsulation::Udp4 {
        src_addr: Ipv4Addr::new(198, 51, 100, 7),
        dst_addr: Ipv4Addr::new(203, 0, 113, 1),
        src_port: 40000,
        dst_port: proto::DSMIP_UDP_PORT,
    };
    let mut inner = vec![0u8; 1400];
    inner[0] = 0x60;
    inner[4..6].copy_from_slice(&(1400u16 - 40).to_be_bytes());
    inner[6] = 17;
    inner[7] = 64;
    let mut buf = vec![0u8; 28 + 1400];
    c.bench_function("encap_udp4_1400", |b| {
        b.iter(|| {
            buf[28..].copy_from_slice(&inner);
            match encapsulate(&enc, &EncapParams::default(), &mut buf, 28).unwrap() {
                EncapOutcome::Encapsulated(r) => black_box(r.len()),
                _ => unreachable!(),
            }
        })
    });
}

criterion_group!(benches, bench_bu, bench_encap);
criterion_main!(benches);
