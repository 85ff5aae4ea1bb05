//! The home agent against the public catalogue of expected behaviour: the TAHI / IPv6 Ready
//! "Mobility Support in IPv6, Home Agent" conformance suite (groups 10.2 Processing Mobility
//! Headers, 10.3.1 Registration, 10.3.2 De-Registration, sequence numbers) and the NEMO
//! Basic Support HA behaviour of RFC 3963 §6. IPsec items are replaced by nothing (the
//! project authenticates with RFC 4285, tested in the core's unit tests).
//!
//! Each test is named after its catalogue item and drives the core with **real bytes**:
//! the BU is emitted as an MR emits it, wrapped in IPv6 (with HAO), walked by
//! `proto::ext::walk` exactly as the shell's receiver does, and the BA/BE that comes back
//! is turned into the IPv6 packet the shell would send and walked again. Time is virtual.
//! The map from catalogue item to test (and what is not applicable or not implemented) is
//! in `../../docs/conformance.md`.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use had::{
    ChecksumState, Ha, HaCoreConfig, HaEvent, ParameterProblem, PrefixMode, PrefixTableRow,
    ReceivedSignal, Transmit,
};
use ipnet::{IpNet, Ipv6Net};
use proto::ext::{MobilityPacketRepr, Walk, emit_mobility_packet, mobility_packet_len, walk};
use proto::mh::{BaFlags, BaStatus, BeStatus, BindingAck, BindingUpdate, BuFlags, MhRepr, MhType};
use proto::option::{MobilityOption, ParseConfig};
use proto::seq::{Lifetime, SequenceNumber};

const HA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
/// A mobile router in explicit mode: two MNPs in the prefix table.
const MR_EXPLICIT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
/// A mobile router in implicit mode: one MNP in the prefix table.
const MR_IMPLICIT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x200);
/// A home address with nothing in the prefix table (a plain MIPv6 mobile node).
const MN: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x300);
const COA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 5);
const COA2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, 7);
const IFINDEX: u32 = 3;
const WALL0: Duration = Duration::from_secs(1_800_000_000);

fn net(s: &str) -> Ipv6Net {
    s.parse().unwrap()
}

fn config() -> HaCoreConfig {
    let mut c = HaCoreConfig::new(vec![net("2001:db8:1::/64")], HA);
    c.home_ifindex = 2;
    c.max_lifetime = Duration::from_secs(1000);
    let row = |hoa, p: &str, mode| PrefixTableRow {
        hoa,
        prefix: p.parse::<IpNet>().unwrap(),
        mode,
    };
    c.prefix_table = vec![
        row(MR_EXPLICIT, "2001:db8:100::/48", PrefixMode::Explicit),
        row(MR_EXPLICIT, "2001:db8:101::/48", PrefixMode::Explicit),
        row(MR_IMPLICIT, "2001:db8:200::/48", PrefixMode::Implicit),
    ];
    c
}

/// A Binding Update as a mobile node or router builds it.
#[derive(Clone)]
struct Bu {
    seq: u16,
    flags: BuFlags,
    /// 4-second units.
    lifetime: u16,
    hoa: Ipv6Addr,
    coa: Ipv6Addr,
    /// Sent from the home address itself (no HAO, no Alternate CoA): CoA = HoA.
    from_home: bool,
    options: Vec<MobilityOption<'static>>,
}

impl Bu {
    /// A mobile router's home registration away from home: A, H, R; HAO; Alternate CoA.
    fn mr(hoa: Ipv6Addr, seq: u16) -> Bu {
        Bu {
            seq,
            flags: BuFlags::A | BuFlags::H | BuFlags::R,
            lifetime: 100,
            hoa,
            coa: COA,
            from_home: false,
            options: Vec::new(),
        }
    }

    fn mnp(mut self, p: &str) -> Bu {
        let n = net(p);
        self.options.push(MobilityOption::MobileNetworkPrefix {
            prefix_len: n.prefix_len(),
            prefix: n.addr(),
        });
        self
    }

    fn mh(&self) -> Vec<u8> {
        let mut options = Vec::new();
        if !self.from_home {
            options.push(MobilityOption::AlternateCareOfAddress(self.coa));
        }
        options.extend(self.options.iter().copied());
        let repr = MhRepr::BindingUpdate(BindingUpdate {
            sequence: SequenceNumber(self.seq),
            flags: self.flags,
            lifetime: Lifetime(self.lifetime),
            options,
        });
        let mut mh = vec![0; repr.buffer_len()];
        repr.emit_to(&mut mh).unwrap();
        mh
    }

    /// The IPv6 packet (`IPv6 | DestOpts(HAO) | MH`) with the MH changed by `mangle`
    /// before the checksum is computed.
    fn packet_with(&self, mangle: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut mh = self.mh();
        mangle(&mut mh);
        let addressing = MobilityPacketRepr {
            src_addr: if self.from_home { self.hoa } else { self.coa },
            dst_addr: HA,
            hop_limit: 64,
            home_address: (!self.from_home).then_some(self.hoa),
            rh2_home_address: None,
        };
        let mut buf = vec![0; mobility_packet_len(&addressing, mh.len())];
        let n = emit_mobility_packet(&addressing, &mh, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    fn packet(&self) -> Vec<u8> {
        self.packet_with(|_| {})
    }
}

struct Env {
    ha: Ha,
    t0: Instant,
    now: Instant,
}

impl Env {
    fn new() -> Env {
        Env::with(config())
    }
    fn with(c: HaCoreConfig) -> Env {
        let t0 = Instant::now();
        Env {
            ha: Ha::new(c).unwrap(),
            t0,
            now: t0,
        }
    }
    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.ha.handle_timeout(self.now);
    }
    /// Hands an IPv6 packet to the core the way the shell does.
    fn deliver(&mut self, packet: &[u8]) {
        let Walk::Mobility(p) = walk(packet).expect("a well-formed IPv6 packet") else {
            panic!("not a Mobility Header packet");
        };
        let sig = ReceivedSignal::from_walk(&p, IFINDEX);
        assert_eq!(sig.checksum, ChecksumState::Unverified);
        let wall = WALL0 + (self.now - self.t0);
        self.ha.handle_packet(self.now, wall, &sig);
    }
    fn transmits(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.ha.poll_transmit()).collect()
    }
    fn events(&mut self) -> Vec<HaEvent> {
        std::iter::from_fn(|| self.ha.poll_event()).collect()
    }
    fn icmp(&mut self) -> Vec<ParameterProblem> {
        std::iter::from_fn(|| self.ha.poll_icmp_error()).collect()
    }
    /// Sends `bu` and returns the one reply that must come back.
    fn reply(&mut self, bu: &Bu) -> Transmit {
        self.deliver(&bu.packet());
        let mut tx = self.transmits();
        assert_eq!(tx.len(), 1, "exactly one reply");
        tx.pop().unwrap()
    }
    /// Sends a raw packet and returns the one reply that must come back.
    fn reply_to(&mut self, packet: &[u8]) -> Transmit {
        self.deliver(packet);
        let mut tx = self.transmits();
        assert_eq!(tx.len(), 1, "exactly one reply");
        tx.pop().unwrap()
    }
    /// Registers `bu`, expecting status 0; drains the events.
    fn register(&mut self, bu: &Bu) -> Transmit {
        let tx = self.reply(bu);
        assert_eq!(ba(&tx).status, BaStatus::Accepted);
        self.events();
        tx
    }
}

fn ba(tx: &Transmit) -> BindingAck<'_> {
    match tx.repr().unwrap() {
        MhRepr::BindingAck(b) => b,
        other => panic!("not a BA: {other:?}"),
    }
}

/// The reply as it leaves: walked back from the IPv6 packet the shell would send.
fn on_wire(tx: &Transmit) -> (Ipv6Addr, Ipv6Addr, Option<Ipv6Addr>, Vec<u8>) {
    let bytes = tx.to_ipv6_packet();
    let Walk::Mobility(p) = walk(&bytes).unwrap() else {
        panic!("reply is not a Mobility Header packet")
    };
    assert!(p.verify_checksum().is_ok(), "reply checksum verifies");
    (
        p.src_addr,
        p.dst_addr,
        p.rh2_home_address,
        p.payload.to_vec(),
    )
}

/// No reply, no ICMP error, no state change: a silent drop.
fn assert_silent(e: &mut Env) {
    assert!(e.transmits().is_empty(), "no BA/BE");
    assert!(e.icmp().is_empty(), "no ICMPv6 error");
    assert!(e.events().is_empty(), "no event");
}

// ---------- 10.2 Processing Mobility Headers (HA_1_1_x) ----------

#[test]
fn ha_10_2_bad_checksum_silently_dropped() {
    let mut e = Env::new();
    let mut pkt = Bu::mr(MR_EXPLICIT, 1).mnp("2001:db8:100::/48").packet();
    // MH checksum: after IPv6 (40) and the Destination Options header with the HAO (24).
    pkt[64 + 4] ^= 0x5a;
    e.deliver(&pkt);
    assert_silent(&mut e);
    assert!(e.ha.is_empty());
    assert_eq!(e.ha.stats().bad_checksum, 1);
}

#[test]
fn ha_10_2_unknown_mh_type_binding_error_2() {
    let mut e = Env::new();
    let bu = Bu::mr(MR_EXPLICIT, 1);
    e.deliver(&bu.packet_with(|mh| mh[2] = 50));
    let tx = e.transmits();
    assert_eq!(tx.len(), 1);
    let (src, dst, rh2, mh) = on_wire(&tx[0]);
    // RFC 6275 §9.3.3: straight to the on-wire source, no RH2, HoA from the HAO.
    assert_eq!((src, dst, rh2), (HA, COA, None));
    match MhRepr::parse_bytes(&mh, ParseConfig::new()).unwrap() {
        MhRepr::BindingError(be) => {
            assert_eq!(be.status, BeStatus::UnrecognizedMhType);
            assert_eq!(be.home_address, MR_EXPLICIT);
        }
        other => panic!("not a BE: {other:?}"),
    }
    assert!(e.ha.is_empty());
}

#[test]
fn ha_10_2_unknown_mh_type_with_bce_binding_error_2_binding_kept() {
    let mut e = Env::new();
    e.register(&Bu::mr(MR_IMPLICIT, 1));
    e.deliver(&Bu::mr(MR_IMPLICIT, 2).packet_with(|mh| mh[2] = 200));
    let tx = e.transmits();
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].repr().unwrap().mh_type(), MhType::BindingError);
    assert!(e.events().is_empty());
    assert_eq!(
        e.ha.binding(e.now, &MR_IMPLICIT).unwrap().coa,
        mipsock::CareOf::V6(COA)
    );
}

#[test]
fn ha_10_2_payload_proto_not_59_parameter_problem() {
    let mut e = Env::new();
    // TAHI's "piggybacking": an upper-layer header announced after the MH.
    e.deliver(&Bu::mr(MR_IMPLICIT, 1).packet_with(|mh| mh[0] = 58));
    assert!(e.transmits().is_empty(), "no BA");
    let pp = e.icmp();
    assert_eq!(pp.len(), 1);
    assert_eq!((pp[0].src, pp[0].dst, pp[0].code), (HA, COA, 0));
    // Pointer at Payload Proto: MH offset 64 in this packet.
    assert_eq!(pp[0].pointer(64), 64);
    assert!(e.ha.is_empty());
}

/// Appends `extra` octets to the IPv6 payload after the MH (Payload Length grows; the MH
/// and its checksum stay as they are).
fn with_trailer(mut pkt: Vec<u8>, extra: &[u8]) -> Vec<u8> {
    pkt.extend_from_slice(extra);
    let plen = u16::from_be_bytes([pkt[4], pkt[5]]) + extra.len() as u16;
    pkt[4..6].copy_from_slice(&plen.to_be_bytes());
    pkt
}

/// TAHI "piggybacking" for real: the announced upper-layer header follows the MH. The
/// packet still reaches §9.2's check (RFC 8200 §4.7: trailing octets never make it
/// unparseable) and draws the Parameter Problem at Payload Proto.
#[test]
fn ha_10_2_payload_proto_not_59_with_the_header_after_it_parameter_problem() {
    let mut e = Env::new();
    let pkt = Bu::mr(MR_IMPLICIT, 1).packet_with(|mh| mh[0] = 58);
    // An ICMPv6 Echo Request header after the MH.
    e.deliver(&with_trailer(pkt, &[128, 0, 0, 0, 0, 1, 0, 1]));
    assert!(e.transmits().is_empty(), "no BA");
    let pp = e.icmp();
    assert_eq!(pp.len(), 1);
    assert_eq!((pp[0].dst, pp[0].code, pp[0].pointer(64)), (COA, 0, 64));
    assert!(e.ha.is_empty());
}

/// RFC 8200 §4.7: after a header whose Next Header is 59 the rest of the payload is
/// ignored; the BU is processed.
#[test]
fn ha_10_2_octets_after_a_payload_proto_59_mh_are_ignored() {
    let mut e = Env::new();
    let pkt = Bu::mr(MR_IMPLICIT, 1).packet();
    let tx = e.reply_to(&with_trailer(pkt, &[0xa5; 16]));
    assert_eq!(ba(&tx).status, BaStatus::Accepted);
    assert!(e.icmp().is_empty());
    assert_eq!(e.ha.len(), 1);
}

#[test]
fn ha_10_2_payload_proto_not_59_with_bce_parameter_problem_binding_kept() {
    let mut e = Env::new();
    e.register(&Bu::mr(MR_IMPLICIT, 1));
    let mut moved = Bu::mr(MR_IMPLICIT, 2);
    moved.coa = COA2;
    e.deliver(&moved.packet_with(|mh| mh[0] = 6));
    assert!(e.transmits().is_empty());
    assert_eq!(
        e.icmp()[0].dst,
        COA2,
        "to the on-wire source, no cache lookup"
    );
    assert!(e.events().is_empty());
    assert_eq!(
        e.ha.binding(e.now, &MR_IMPLICIT).unwrap().coa,
        mipsock::CareOf::V6(COA)
    );
}

#[test]
fn ha_10_2_header_len_too_short_parameter_problem() {
    let mut e = Env::new();
    // A BU needs Header Len 1 (16 octets); this one says 0 and is 8 octets long.
    e.deliver(&Bu::mr(MR_IMPLICIT, 1).packet_with(|mh| {
        mh.truncate(8);
        mh[1] = 0;
    }));
    assert!(e.transmits().is_empty());
    let pp = e.icmp();
    assert_eq!(pp.len(), 1);
    assert_eq!(
        (pp[0].code, pp[0].pointer(64)),
        (0, 65),
        "pointer at Header Len"
    );
    assert!(e.ha.is_empty());
}

#[test]
fn ha_10_2_header_len_too_short_with_bce_binding_kept() {
    let mut e = Env::new();
    e.register(&Bu::mr(MR_IMPLICIT, 1));
    e.deliver(&Bu::mr(MR_IMPLICIT, 2).packet_with(|mh| {
        mh.truncate(8);
        mh[1] = 0;
    }));
    assert_eq!(e.icmp().len(), 1);
    assert!(e.transmits().is_empty() && e.events().is_empty());
    assert!(e.ha.binding(e.now, &MR_IMPLICIT).is_some());
}

// ---------- 10.3.1 Primary Care-of Address Registration (HA_2_1_x, HA_2_2_x) ----------

#[test]
fn ha_10_3_1_valid_bu_a1_registers_and_acks() {
    let mut e = Env::new();
    let tx = e.reply(&Bu::mr(MR_IMPLICIT, 7));
    let a = ba(&tx);
    assert_eq!(a.status, BaStatus::Accepted);
    assert_eq!(a.sequence, SequenceNumber(7));
    assert_eq!(a.lifetime, Lifetime(100));
    // RFC 6275 §9.5.4: to the CoA with a type 2 routing header carrying the HoA.
    let (src, dst, rh2, _) = on_wire(&tx);
    assert_eq!((src, dst, rh2), (HA, COA, Some(MR_IMPLICIT)));
    let ev = e.events();
    assert!(
        ev.iter()
            .any(|v| matches!(v, HaEvent::BcAdd(b) if b.hoa == MR_IMPLICIT))
    );
    assert!(
        ev.iter()
            .any(|v| matches!(v, HaEvent::ProxyNdAdd(p) if p.hoa == MR_IMPLICIT))
    );
}

#[test]
fn ha_10_3_1_nonzero_reserved_fields_ignored() {
    // HA_2_1_14 "suspicious BU": reserved bits set must be ignored by the receiver.
    let mut e = Env::new();
    let pkt = Bu::mr(MR_IMPLICIT, 1).packet_with(|mh| {
        mh[3] = 0xff; // MH Reserved
        mh[9] |= BuFlags::RESERVED as u8; // BU flags reserved bits
    });
    e.deliver(&pkt);
    let tx = e.transmits();
    assert_eq!(ba(&tx[0]).status, BaStatus::Accepted);
    assert!(e.ha.binding(e.now, &MR_IMPLICIT).is_some());
}

#[test]
fn ha_10_3_1_k_flag_acked_with_k_clear() {
    // HA_2_1_10/11 (K=0, K=1): with no IKE to move, the BA never sets K
    // (RFC 6275 §10.3.1), and the registration succeeds either way.
    for k in [false, true] {
        let mut e = Env::new();
        let mut bu = Bu::mr(MR_IMPLICIT, 1);
        if k {
            bu.flags |= BuFlags::K;
        }
        let tx = e.reply(&bu);
        assert_eq!(ba(&tx).status, BaStatus::Accepted);
        assert_eq!(ba(&tx).flags.bits() & BaFlags::K.bits(), 0, "K={k}");
    }
}

#[test]
fn ha_10_3_1_refresh_with_shorter_lifetime_shortens_binding() {
    let mut e = Env::new();
    e.register(&Bu::mr(MR_IMPLICIT, 1)); // 400 s
    let mut refresh = Bu::mr(MR_IMPLICIT, 2);
    refresh.lifetime = 10; // 40 s
    assert_eq!(ba(&e.register(&refresh)).lifetime, Lifetime(10));
    e.advance(Duration::from_secs(41));
    assert!(e.ha.is_empty(), "expired at the new, shorter lifetime");
}

#[test]
fn ha_10_3_1_bu_with_nonce_indices_dropped() {
    // HA_2_2_7: a home registration must not carry Nonce Indices (RFC 6275 §9.5.1).
    let mut e = Env::new();
    let mut bu = Bu::mr(MR_IMPLICIT, 1);
    bu.options.push(MobilityOption::NonceIndices {
        home_nonce_index: 1,
        care_of_nonce_index: 2,
    });
    e.deliver(&bu.packet());
    assert_silent(&mut e);
    assert!(e.ha.is_empty());
}

#[test]
fn ha_10_3_1_hao_link_local_dropped() {
    // HA_2_2_9/10: a link-local home address (L=0 and L=1) is no home address.
    for l in [false, true] {
        let mut e = Env::new();
        let mut bu = Bu::mr("fe80::200".parse().unwrap(), 1);
        if l {
            bu.flags |= BuFlags::L;
        }
        e.deliver(&bu.packet());
        assert_silent(&mut e);
        assert!(e.ha.is_empty(), "L={l}");
    }
}

#[test]
fn ha_10_3_1_hao_multicast_dropped() {
    // HA_2_2_13: a multicast address in the HAO. If the walk already refuses it, the
    // shell never hands it over; either way nothing is registered and nothing answers.
    let mut e = Env::new();
    let bu = Bu::mr("ff0e::200".parse().unwrap(), 1);
    let pkt = bu.packet();
    if let Ok(Walk::Mobility(_)) = walk(&pkt) {
        e.deliver(&pkt);
    }
    assert_silent(&mut e);
    assert!(e.ha.is_empty());
}

#[test]
fn ha_10_3_1_not_home_subnet_a0_132() {
    // HA_2_2_2 (the A=1 case: core test `home_subnet_checks_131_132`): the BA is sent
    // even without A, as §10.3.1 requires for every refusal.
    let mut e = Env::new();
    let mut bu = Bu::mr("2001:db8:2::100".parse().unwrap(), 1);
    bu.flags = BuFlags::H | BuFlags::R;
    assert_eq!(ba(&e.reply(&bu)).status, BaStatus::NotHomeSubnet);
    assert!(e.ha.is_empty());
}

/// One TAHI sequence-number case: register with `first`, then send `second`.
fn sequence_case(first: u16, second: u16, accepted: bool) {
    let mut e = Env::new();
    e.register(&Bu::mr(MR_IMPLICIT, first));
    let tx = e.reply(&Bu::mr(MR_IMPLICIT, second));
    let a = ba(&tx);
    if accepted {
        assert_eq!(a.status, BaStatus::Accepted, "{first} then {second}");
        assert_eq!(a.sequence, SequenceNumber(second));
    } else {
        assert_eq!(
            a.status,
            BaStatus::SequenceNumberOutOfWindow,
            "{first} then {second}"
        );
        // RFC 6275 §9.5.1: the BA carries the last accepted sequence number.
        assert_eq!(a.sequence, SequenceNumber(first));
    }
}

macro_rules! sequence_cases {
    ($($name:ident: $first:expr, $second:expr => $accepted:expr;)*) => {$(
        #[test]
        fn $name() {
            sequence_case($first, $second, $accepted);
        }
    )*};
}

sequence_cases! {
    ha_10_3_1_valid_sn_15_then_16: 15, 16 => true;
    // TAHI counts a difference of exactly 32768 as newer; RFC 6275 §9.5.1's own example
    // ("last 15: 0..15 and 32783..65535 are less than or equal") does not, and neither do
    // we. These two assert the RFC (docs/conformance.md lists them as deviations).
    ha_10_3_1_sn_15_then_32783_half_window_is_old_per_rfc_135: 15, 32783 => false;
    ha_10_3_1_sn_overflow_32783_then_15_half_window_is_old_per_rfc_135: 32783, 15 => false;
    ha_10_3_1_invalid_sn_15_then_14_135: 15, 14 => false;
    ha_10_3_1_invalid_sn_15_then_15_135: 15, 15 => false;
    ha_10_3_1_invalid_sn_15_then_32784_135: 15, 32784 => false;
    ha_10_3_1_valid_sn_overflow_32783_then_32784: 32783, 32784 => true;
    ha_10_3_1_invalid_sn_overflow_32783_then_32782_135: 32783, 32782 => false;
    ha_10_3_1_invalid_sn_overflow_32783_then_32783_135: 32783, 32783 => false;
    ha_10_3_1_invalid_sn_overflow_32783_then_16_135: 32783, 16 => false;
}

// ---------- 10.3.2 Primary Care-of Address De-Registration (HA_3_x) ----------

fn assert_deregistered(e: &mut Env, hoa: Ipv6Addr) {
    let ev = e.events();
    assert!(
        ev.iter()
            .any(|v| matches!(v, HaEvent::BcRemove(b) if b.hoa == hoa))
    );
    assert!(
        ev.iter()
            .any(|v| matches!(v, HaEvent::ProxyNdRemove(p) if p.hoa == hoa))
    );
    assert!(e.ha.binding(e.now, &hoa).is_none());
}

#[test]
fn ha_10_3_2_dereg_lifetime0_coa_ne_hoa() {
    let mut e = Env::new();
    e.register(&Bu::mr(MR_IMPLICIT, 1));
    let mut bu = Bu::mr(MR_IMPLICIT, 2);
    bu.lifetime = 0;
    let tx = e.reply(&bu);
    assert_eq!(ba(&tx).status, BaStatus::Accepted);
    assert_eq!(ba(&tx).lifetime, Lifetime::ZERO);
    let (_, dst, rh2, _) = on_wire(&tx);
    assert_eq!((dst, rh2), (COA, Some(MR_IMPLICIT)));
    assert_deregistered(&mut e, MR_IMPLICIT);
}

#[test]
fn ha_10_3_2_dereg_lifetime0_coa_eq_hoa() {
    let mut e = Env::new();
    e.register(&Bu::mr(MR_IMPLICIT, 1));
    let mut bu = Bu::mr(MR_IMPLICIT, 2);
    bu.lifetime = 0;
    bu.from_home = true;
    let tx = e.reply(&bu);
    assert_eq!(ba(&tx).status, BaStatus::Accepted);
    // Back home: to the home address, no RH2.
    let (_, dst, rh2, _) = on_wire(&tx);
    assert_eq!((dst, rh2), (MR_IMPLICIT, None));
    assert_deregistered(&mut e, MR_IMPLICIT);
}

#[test]
fn ha_10_3_2_dereg_lifetime_nonzero_coa_eq_hoa() {
    let mut e = Env::new();
    e.register(&Bu::mr(MR_IMPLICIT, 1));
    let mut bu = Bu::mr(MR_IMPLICIT, 2);
    bu.from_home = true; // lifetime 100 units, CoA = HoA
    let tx = e.reply(&bu);
    assert_eq!(ba(&tx).status, BaStatus::Accepted);
    assert_eq!(ba(&tx).lifetime, Lifetime::ZERO);
    assert_deregistered(&mut e, MR_IMPLICIT);
}

#[test]
fn ha_10_3_2_invalid_dereg_not_home_agent_133() {
    // HA_3_2_1 (A=1, lifetime 0, CoA != HoA), HA_3_2_12 (A=0), HA_3_2_9 (from home).
    for (a, from_home) in [(true, false), (false, false), (false, true)] {
        let mut e = Env::new();
        let mut bu = Bu::mr(MR_IMPLICIT, 1);
        bu.lifetime = 0;
        bu.from_home = from_home;
        if !a {
            bu.flags = BuFlags::H | BuFlags::R;
        }
        let tx = e.reply(&bu);
        assert_eq!(
            ba(&tx).status,
            BaStatus::NotHomeAgentForThisMobileNode,
            "A={a} home={from_home}"
        );
        assert!(e.events().is_empty());
    }
}

// ---------- NEMO Basic Support, home agent (RFC 3963 §6) ----------

#[test]
fn nemo_ha_6_2_ba_carries_r_for_a_mobile_router_only() {
    let mut e = Env::new();
    assert_eq!(ba(&e.register(&Bu::mr(MR_IMPLICIT, 1))).flags, BaFlags::R);
    // A plain mobile node (R=0) is a MIPv6 home registration: accepted, no R in the BA.
    let mut mn = Bu::mr(MN, 1);
    mn.flags = BuFlags::A | BuFlags::H;
    let tx = e.reply(&mn);
    assert_eq!(ba(&tx).status, BaStatus::Accepted);
    assert_eq!(ba(&tx).flags, BaFlags::empty());
}

#[test]
fn nemo_ha_6_2_explicit_mode_refresh_replaces_the_prefix_list() {
    // RFC 3963 §6.2: prefixes in the binding but absent from a refresh stop being
    // forwarded; the MR repeats every MNP in every BU.
    let mut e = Env::new();
    e.register(
        &Bu::mr(MR_EXPLICIT, 1)
            .mnp("2001:db8:100::/48")
            .mnp("2001:db8:101::/48"),
    );
    assert_eq!(e.ha.binding(e.now, &MR_EXPLICIT).unwrap().mnp_v6.len(), 2);
    e.deliver(&Bu::mr(MR_EXPLICIT, 2).mnp("2001:db8:101::/48").packet());
    assert_eq!(ba(&e.transmits()[0]).status, BaStatus::Accepted);
    assert_eq!(
        e.ha.binding(e.now, &MR_EXPLICIT).unwrap().mnp_v6,
        vec![net("2001:db8:101::/48")]
    );
}

#[test]
fn nemo_ha_6_2_explicit_mode_all_or_nothing_141() {
    // One listed prefix the HA cannot forward refuses the whole BU (141), even next to a
    // valid one, and nothing is installed.
    let mut e = Env::new();
    let tx = e.reply(
        &Bu::mr(MR_EXPLICIT, 1)
            .mnp("2001:db8:100::/48")
            .mnp("ff0e::/16"),
    );
    assert_eq!(ba(&tx).status, BaStatus::InvalidPrefix);
    assert!(e.ha.is_empty());
}

#[test]
fn nemo_ha_6_2_deregistration_ignores_r_and_mnp_options() {
    // RFC 3963 §6.2 step 3/4: R is not checked on a de-registration, and MNP options in
    // it are ignored.
    let mut e = Env::new();
    e.register(&Bu::mr(MR_EXPLICIT, 1).mnp("2001:db8:100::/48"));
    let mut bu = Bu::mr(MR_EXPLICIT, 2).mnp("2001:db8:999::/48");
    bu.flags = BuFlags::A | BuFlags::H; // R dropped
    bu.lifetime = 0;
    assert_eq!(ba(&e.reply(&bu)).status, BaStatus::Accepted);
    assert_deregistered(&mut e, MR_EXPLICIT);
}

#[test]
fn nemo_ha_6_2_registration_defends_hoa_with_router_flag() {
    // RFC 3963 §6.3: proxy ND for an MR's HoA answers with the Router flag set.
    let mut e = Env::new();
    e.deliver(&Bu::mr(MR_IMPLICIT, 1).packet());
    let ev = e.events();
    let p = ev
        .iter()
        .find_map(|v| match v {
            HaEvent::ProxyNdAdd(p) => Some(*p),
            _ => None,
        })
        .expect("proxy ND started");
    assert!(p.router);
    assert_eq!(p.ifindex, 2, "on the home link");
}
