//! The mobile router against the public catalogue of expected behaviour: the TAHI / IPv6
//! Ready "Mobility Support in IPv6, Mobile Node" items that apply to a mobile router's home
//! registration (MH processing of what the HA sends, BU contents, BA processing) and the
//! NEMO Basic Support MR behaviour of RFC 3963 §5. No IPsec: RFC 4285 items are in the
//! core's unit tests.
//!
//! Real bytes both ways: BAs are emitted, wrapped in IPv6 with a type 2 routing header and
//! walked as the shell's receiver does; BUs are taken as the IPv6 packet the shell sends
//! and walked back. Time is virtual. Items already covered by `src/core/tests.rs` and
//! `tests/pair.rs` are referenced from `../../docs/conformance.md`, not repeated here.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use ipnet::Ipv6Net;
use mipsock::{CareOf, MdCommand, MdHint, MdInfo};
use mrd::{MrCore, MrCoreConfig, ReceivedSignal, RegistrationMode, RegistrationState};
use proto::ext::{MobilityPacketRepr, Walk, emit_mobility_packet, mobility_packet_len, walk};
use proto::mh::{BaFlags, BaStatus, BindingAck, BindingUpdate, BuFlags, MhRepr};
use proto::option::{MobilityOption, ParseConfig};
use proto::seq::{Lifetime, SequenceNumber};

fn hoa() -> Ipv6Addr {
    "2001:db8:1::100".parse().unwrap()
}
fn ha() -> Ipv6Addr {
    "2001:db8:1::1".parse().unwrap()
}
fn coa() -> Ipv6Addr {
    "2001:db8:a::5".parse().unwrap()
}
fn mnps() -> Vec<Ipv6Net> {
    vec![
        "2001:db8:100::/48".parse().unwrap(),
        "2001:db8:101::/48".parse().unwrap(),
    ]
}

fn config() -> MrCoreConfig {
    let mut c = MrCoreConfig::new(hoa(), ha());
    c.mode = RegistrationMode::Explicit;
    c.mnp_v6 = mnps();
    c.lifetime = Lifetime::from_secs(400);
    c.initial_sequence = SequenceNumber(10);
    c
}

fn ms(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn rereg() -> MdInfo {
    MdInfo {
        command: MdCommand::Rereg,
        hint: MdHint::Addr,
        hoa: Some(hoa()),
        coa: Some(CareOf::V6(coa())),
        coa2: None,
        ifindex: 7,
        uplinks: Vec::new(),
    }
}

/// A BU as it leaves the MR: (on-wire source, destination, HAO, parsed BU).
struct SentBu {
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hao: Option<Ipv6Addr>,
    bu: BindingUpdate<'static>,
}

fn next_bu(mr: &mut MrCore) -> SentBu {
    let packet = mr.poll_transmit().expect("a BU").to_packet();
    let Walk::Mobility(p) = walk(&packet).unwrap() else {
        panic!("not MH")
    };
    assert!(p.verify_checksum().is_ok());
    let mh: &'static [u8] = Box::leak(p.payload.to_vec().into_boxed_slice());
    let MhRepr::BindingUpdate(bu) = MhRepr::parse_bytes(mh, ParseConfig::new()).unwrap() else {
        panic!("not a BU")
    };
    SentBu {
        src: p.src_addr,
        dst: p.dst_addr,
        hao: p.home_address,
        bu,
    }
}

/// The IPv6 packet HA -> CoA (RH2 with `rh2`) carrying a BA for `bu`, its MH changed by
/// `mangle` before the checksum.
fn ba_packet(bu: &SentBu, rh2: Ipv6Addr, mangle: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let repr = MhRepr::BindingAck(BindingAck {
        status: BaStatus::Accepted,
        flags: BaFlags::R,
        sequence: bu.bu.sequence,
        lifetime: bu.bu.lifetime,
        options: Vec::new(),
    });
    let mut mh = vec![0; repr.buffer_len()];
    repr.emit_to(&mut mh).unwrap();
    mangle(&mut mh);
    let addressing = MobilityPacketRepr {
        src_addr: ha(),
        dst_addr: coa(),
        hop_limit: 64,
        home_address: None,
        rh2_home_address: Some(rh2),
    };
    let mut buf = vec![0; mobility_packet_len(&addressing, mh.len())];
    let n = emit_mobility_packet(&addressing, &mh, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn deliver(mr: &mut MrCore, now: Instant, packet: &[u8]) {
    let Walk::Mobility(p) = walk(packet).unwrap() else {
        panic!("not MH")
    };
    mr.handle_packet(now, ReceivedSignal::from_packet(&p));
}

fn mnp_options(bu: &BindingUpdate<'_>) -> Vec<Ipv6Net> {
    bu.options
        .iter()
        .filter_map(|o| match *o {
            MobilityOption::MobileNetworkPrefix { prefix_len, prefix } => {
                Some(Ipv6Net::new(prefix, prefix_len).unwrap())
            }
            _ => None,
        })
        .collect()
}

fn registered(mr: &MrCore) -> bool {
    matches!(mr.state(), RegistrationState::Registered { .. })
}

#[test]
fn mr_9_2_ba_bad_checksum_silently_ignored() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(config()).unwrap();
    mr.handle_md_info(t0, &rereg());
    let bu = next_bu(&mut mr);
    let mut pkt = ba_packet(&bu, hoa(), |_| {});
    // MH checksum: after IPv6 (40) and the type 2 routing header (24).
    pkt[64 + 4] ^= 0xa5;
    deliver(&mut mr, ms(t0, 100), &pkt);
    assert!(!registered(&mr));
    assert!(mr.poll_icmp_error().is_none(), "silently");
    // The BU is retransmitted on schedule (RFC 6275 §11.8: 1.5 s for a first one).
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 1500)));
}

#[test]
fn mr_9_2_ba_with_nonzero_reserved_fields_accepted() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(config()).unwrap();
    mr.handle_md_info(t0, &rereg());
    let bu = next_bu(&mut mr);
    let pkt = ba_packet(&bu, hoa(), |mh| {
        mh[3] = 0xff; // MH Reserved
        mh[7] |= BaFlags::RESERVED; // BA flags reserved bits
    });
    deliver(&mut mr, ms(t0, 100), &pkt);
    assert!(registered(&mr));
}

#[test]
fn mr_11_7_1_bu_is_a_nemo_home_registration() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(config()).unwrap();
    mr.handle_md_info(t0, &rereg());
    let s = next_bu(&mut mr);
    // From the CoA to the HA, the HoA in a Home Address option.
    assert_eq!((s.src, s.dst, s.hao), (coa(), ha(), Some(hoa())));
    // A, H and R (RFC 3963 §5.1: R requires H); the Alternate CoA option (RFC 6275
    // §11.7.1); every MNP in explicit mode (RFC 3963 §5.2).
    assert_eq!(s.bu.flags, BuFlags::A | BuFlags::H | BuFlags::R);
    assert!(
        s.bu.options
            .contains(&MobilityOption::AlternateCareOfAddress(coa()))
    );
    assert_eq!(mnp_options(&s.bu), mnps());
    assert_eq!(s.bu.sequence, SequenceNumber(10));
}

#[test]
fn mr_nemo_5_2_refresh_repeats_every_mnp_with_r_and_a_new_sequence() {
    // RFC 3963 §5.2 / §6.2: prefixes absent from a refresh stop being forwarded, so each
    // BU lists them all; R stays set (a change would be refused with 139).
    let t0 = Instant::now();
    let mut mr = MrCore::new(config()).unwrap();
    mr.handle_md_info(t0, &rereg());
    let first = next_bu(&mut mr);
    deliver(&mut mr, ms(t0, 100), &ba_packet(&first, hoa(), |_| {}));
    assert!(registered(&mr));
    let refresh_at = mr.poll_timeout().expect("refresh scheduled");
    assert!(
        refresh_at < ms(t0, 400_100),
        "refreshed before the lifetime ends"
    );
    mr.handle_timeout(refresh_at);
    let refresh = next_bu(&mut mr);
    assert_eq!(refresh.bu.flags, first.bu.flags);
    assert_eq!(mnp_options(&refresh.bu), mnps());
    assert!(refresh.bu.sequence.is_newer_than(first.bu.sequence));
    assert_eq!(refresh.hao, Some(hoa()));
}

#[test]
fn mr_11_7_3_ba_with_rh2_for_another_home_address_ignored() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(config()).unwrap();
    mr.handle_md_info(t0, &rereg());
    let bu = next_bu(&mut mr);
    let other: Ipv6Addr = "2001:db8:1::999".parse().unwrap();
    deliver(&mut mr, ms(t0, 100), &ba_packet(&bu, other, |_| {}));
    assert!(!registered(&mr));
    // The right one still registers.
    deliver(&mut mr, ms(t0, 200), &ba_packet(&bu, hoa(), |_| {}));
    assert!(registered(&mr));
}

#[test]
fn mr_9_2_ba_piggybacking_and_short_header_len_parameter_problem() {
    // The MN suite's "invalid BA (piggybacking / invalid header length)": dropped, the
    // binding not registered, an ICMPv6 Parameter Problem pointing into the real packet.
    let t0 = Instant::now();
    let mut mr = MrCore::new(config()).unwrap();
    mr.handle_md_info(t0, &rereg());
    let bu = next_bu(&mut mr);
    for (mangle, pointer) in [
        (
            Box::new(|mh: &mut Vec<u8>| mh[0] = 6) as Box<dyn FnOnce(&mut Vec<u8>)>,
            64,
        ),
        (
            Box::new(|mh: &mut Vec<u8>| {
                mh.truncate(8);
                mh[1] = 0;
            }),
            65,
        ),
    ] {
        let pkt = ba_packet(&bu, hoa(), mangle);
        let Walk::Mobility(p) = walk(&pkt).unwrap() else {
            panic!()
        };
        let offset = p.payload_range.start;
        mr.handle_packet(ms(t0, 100), ReceivedSignal::from_packet(&p));
        let pp = mr.poll_icmp_error().expect("parameter problem");
        assert_eq!((pp.src, pp.dst, pp.code), (coa(), ha(), 0));
        assert_eq!(pp.pointer(offset), pointer);
        assert!(!registered(&mr));
    }
}

/// A 24-octet MH of `mh_type` (long enough for a Home Test) from the HA to our CoA, with
/// a type 2 routing header to the home address.
fn other_mh_from_ha(mh_type: u8) -> Vec<u8> {
    let mut mh = [0u8; 24];
    mh[..3].copy_from_slice(&[59, 2, mh_type]);
    let addressing = MobilityPacketRepr {
        src_addr: ha(),
        dst_addr: coa(),
        hop_limit: 64,
        home_address: None,
        rh2_home_address: Some(hoa()),
    };
    let mut buf = vec![0; mobility_packet_len(&addressing, mh.len())];
    let n = emit_mobility_packet(&addressing, &mh, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// RFC 6275 §9.2 (TAHI MN "Unrecognized MH Type"): an MH type the MR does not process,
/// from its HA, draws a Binding Error status 2 straight back to the source (§9.3.3: no
/// RH2, no HAO), rate-limited; the registration is untouched.
#[test]
fn mr_9_2_unrecognized_mh_type_binding_error_2() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(config()).unwrap();
    mr.handle_md_info(t0, &rereg());
    let bu = next_bu(&mut mr);
    deliver(&mut mr, ms(t0, 50), &ba_packet(&bu, hoa(), |_| {}));
    assert!(registered(&mr));
    // Type 3 (Home Test, route optimisation: not done by a mobile router) and type 42.
    for (i, mh_type) in [3u8, 42].into_iter().enumerate() {
        deliver(&mut mr, ms(t0, 100 + i as u64), &other_mh_from_ha(mh_type));
        let be = mr.poll_binding_error().expect("a Binding Error");
        let Walk::Mobility(p) = walk(&be).unwrap() else {
            panic!("not MH")
        };
        assert_eq!((p.src_addr, p.dst_addr), (coa(), ha()));
        assert_eq!((p.home_address, p.rh2_home_address), (None, None));
        assert!(p.verify_checksum().is_ok());
        match MhRepr::parse_bytes(p.payload, ParseConfig::new()).unwrap() {
            MhRepr::BindingError(e) => {
                assert_eq!(u8::from(e.status), 2);
                assert_eq!(e.home_address, Ipv6Addr::UNSPECIFIED);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(registered(&mr));
    assert!(mr.poll_transmit().is_none());
    // A flood is rate-limited (10 per second here, like ICMPv6 errors).
    let packet = other_mh_from_ha(42);
    let mut sent = 0;
    for i in 0..100 {
        deliver(&mut mr, ms(t0, 200 + i), &packet);
        sent += std::iter::from_fn(|| mr.poll_binding_error()).count();
    }
    assert!(sent <= 10, "{sent} Binding Errors for 100 packets in 0.1 s");
}
