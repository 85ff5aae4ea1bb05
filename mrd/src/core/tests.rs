//! Virtual-time tests of the mobile router core alone: a scripted home agent builds the
//! Binding Acknowledgements byte for byte.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipnet::{Ipv4Net, Ipv6Net};
use proto::auth::{self, ReplayProtection};
use proto::ext::{MobilityPacketRepr, Walk, emit_mobility_packet, mobility_packet_len, walk};
use proto::mh::{
    BaFlags, BaStatus, BeStatus, BindingAck, BindingError, BindingRefreshRequest, BindingUpdate,
    BuFlags, MhRepr,
};
use proto::model::{CareOf, MdCommand, MdHint, MdInfo};
use proto::option::{Ipv4AckStatus, MobilityOption, ParseConfig};
use proto::seq::{Lifetime, NtpTimestamp, SequenceNumber};

use super::*;

mod flows;
mod individual;
mod mcoa;

const KEY: &[u8] = b"0123456789abcdef";
const SPI: u32 = 0x1000;

fn hoa() -> Ipv6Addr {
    "2001:db8:1::100".parse().unwrap()
}
fn ha() -> Ipv6Addr {
    "2001:db8:1::1".parse().unwrap()
}
fn coa1() -> Ipv6Addr {
    "2001:db8:a::5".parse().unwrap()
}
fn coa2() -> Ipv6Addr {
    "2001:db8:b::5".parse().unwrap()
}
fn mnp6() -> Ipv6Net {
    "2001:db8:100::/48".parse().unwrap()
}
fn mnp4() -> Ipv4Net {
    "192.0.2.0/24".parse().unwrap()
}
fn mnp4b() -> Ipv4Net {
    "198.51.100.0/25".parse().unwrap()
}

fn cfg() -> MrCoreConfig {
    let mut c = MrCoreConfig::new(hoa(), ha());
    c.mnp_v6 = vec![mnp6()];
    c.mnp_v4 = vec![mnp4()];
    c.lifetime = Lifetime::from_secs(400);
    c.initial_sequence = SequenceNumber(100);
    c
}

fn sa(ts: bool) -> MobilitySa {
    MobilitySa {
        spi: SPI,
        key: KEY.to_vec(),
        nai: Some(b"mr1@example.net".to_vec()),
        hoa: None,
        replay: if ts {
            ReplayProtection::default()
        } else {
            ReplayProtection::SequenceOnly
        },
    }
}

fn ms(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn rereg(coa: Ipv6Addr) -> MdInfo {
    MdInfo {
        command: MdCommand::Rereg,
        hint: MdHint::Addr,
        hoa: Some(hoa()),
        coa: Some(CareOf::V6(coa)),
        coa2: None,
        ifindex: 3,
        uplinks: Vec::new(),
    }
}

fn md(command: MdCommand) -> MdInfo {
    MdInfo {
        command,
        hint: MdHint::Home,
        hoa: None,
        coa: None,
        coa2: None,
        ifindex: 0,
        uplinks: Vec::new(),
    }
}

/// The BU's fixed fields and options, owned.
#[derive(Debug, Clone)]
struct SentBu {
    tx: Transmit,
    seq: u16,
    flags: BuFlags,
    lifetime: Lifetime,
    options: Vec<MobilityOption<'static>>,
}

fn parse_bu(tx: Transmit) -> SentBu {
    let mh: &'static [u8] = Box::leak(tx.mh.clone().into_boxed_slice());
    let MhRepr::BindingUpdate(BindingUpdate {
        sequence,
        flags,
        lifetime,
        options,
    }) = MhRepr::parse_bytes(mh, ParseConfig::new().with_legacy_ipv4_mnp(true)).unwrap()
    else {
        panic!("not a BU");
    };
    SentBu {
        tx,
        seq: sequence.0,
        flags,
        lifetime,
        options,
    }
}

fn next_bu(mr: &mut MrCore) -> SentBu {
    parse_bu(mr.poll_transmit().expect("a BU"))
}

fn drain_tx(mr: &mut MrCore) -> Vec<SentBu> {
    std::iter::from_fn(|| mr.poll_transmit())
        .map(parse_bu)
        .collect()
}

fn events(mr: &mut MrCore) -> Vec<MrEvent> {
    std::iter::from_fn(|| mr.poll_event()).collect()
}

/// A scripted BA: what the HA puts in it.
struct Ba {
    status: u8,
    r: bool,
    seq: u16,
    lifetime: Lifetime,
    options: Vec<MobilityOption<'static>>,
    /// Sign with this key (for this CoA).
    sign: Option<(&'static [u8], Ipv6Addr)>,
}

impl Ba {
    fn ok(bu: &SentBu) -> Ba {
        Ba {
            status: 0,
            r: true,
            seq: bu.seq,
            lifetime: bu.lifetime,
            options: Vec::new(),
            sign: None,
        }
    }
    fn status(mut self, s: u8) -> Ba {
        self.status = s;
        self
    }
    fn opt(mut self, o: MobilityOption<'static>) -> Ba {
        self.options.push(o);
        self
    }
    fn lifetime(mut self, l: Lifetime) -> Ba {
        self.lifetime = l;
        self
    }
    fn signed(mut self, key: &'static [u8], coa: Ipv6Addr) -> Ba {
        self.sign = Some((key, coa));
        self.options.push(auth::mn_ha_option(SPI));
        self
    }
    /// The IPv6 packet HA -> CoA with an RH2 (RFC 6275 §9.5.4).
    fn packet(&self, coa: Ipv6Addr) -> Vec<u8> {
        self.packet_from(ha(), coa)
    }
    /// The same from another home agent.
    fn packet_from(&self, from: Ipv6Addr, coa: Ipv6Addr) -> Vec<u8> {
        let repr = MhRepr::BindingAck(BindingAck {
            status: BaStatus::from(self.status),
            flags: if self.r { BaFlags::R } else { BaFlags::empty() },
            sequence: SequenceNumber(self.seq),
            lifetime: self.lifetime,
            options: self.options.clone(),
        });
        let mut mh = vec![0; repr.buffer_len()];
        repr.emit_to(&mut mh).unwrap();
        if let Some((key, c)) = self.sign {
            auth::sign(&mut mh, IpAddr::V6(c), &hoa(), key).unwrap();
        }
        wrap_from(from, &mh, coa)
    }
}

fn wrap(mh: &[u8], coa: Ipv6Addr) -> Vec<u8> {
    wrap_from(ha(), mh, coa)
}

fn wrap_from(from: Ipv6Addr, mh: &[u8], coa: Ipv6Addr) -> Vec<u8> {
    let addressing = MobilityPacketRepr {
        src_addr: from,
        dst_addr: coa,
        hop_limit: 64,
        home_address: None,
        rh2_home_address: (coa != hoa()).then_some(hoa()),
    };
    let mut buf = vec![0; mobility_packet_len(&addressing, mh.len())];
    emit_mobility_packet(&addressing, mh, &mut buf).unwrap();
    buf
}

fn deliver(mr: &mut MrCore, now: Instant, pkt: &[u8]) {
    let Walk::Mobility(p) = walk(pkt).unwrap() else {
        panic!("not MH")
    };
    mr.handle_packet(now, ReceivedSignal::from_packet(&p));
}

/// Registers from `coa1` at t0 (BA 100 ms later); returns the BU.
fn registered(mr: &mut MrCore, t0: Instant) -> SentBu {
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(mr);
    deliver(
        mr,
        ms(t0, 100),
        &Ba::ok(&bu).opt(v4_ack(0, mnp4())).packet(coa1()),
    );
    assert!(matches!(
        mr.state(),
        RegistrationState::Registered { refreshing: false }
    ));
    bu
}

fn v4_ack(status: u8, net: Ipv4Net) -> MobilityOption<'static> {
    MobilityOption::Ipv4AddressAck {
        status: Ipv4AckStatus::from(status),
        prefix_len: if status < 128 { net.prefix_len() } else { 0 },
        address: net.network(),
    }
}

fn bul_add(evs: &[MrEvent]) -> Option<(&proto::model::Binding, bool, &Ipv4MnpOutcome)> {
    evs.iter().find_map(|e| match e {
        MrEvent::BulAdd {
            binding,
            optimistic,
            ipv4,
        } => Some((binding, *optimistic, ipv4)),
        _ => None,
    })
}

fn is_remove(e: &MrEvent) -> bool {
    matches!(e, MrEvent::BulRemove { .. })
}

#[test]
fn first_registration_bu_is_complete() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    assert_eq!(mr.poll_timeout(), None);
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    assert_eq!(bu.seq, 100);
    assert_eq!(bu.flags, BuFlags::A | BuFlags::H | BuFlags::R);
    assert_eq!(bu.lifetime, Lifetime::from_secs(400));
    assert_eq!(bu.tx.kind, BuKind::Register);
    assert_eq!(
        bu.options,
        vec![
            MobilityOption::AlternateCareOfAddress(coa1()),
            MobilityOption::MobileNetworkPrefix {
                prefix_len: 48,
                prefix: mnp6().network()
            },
            MobilityOption::Ipv4HomeAddress {
                prefix_len: 24,
                p: true,
                address: mnp4().network()
            },
        ]
    );
    // On the wire: CoA -> HA, HAO = HoA, checksum over the HoA (RFC 6275 §6.1.1).
    let pkt = bu.tx.to_packet();
    let Walk::Mobility(p) = walk(&pkt).unwrap() else {
        panic!()
    };
    assert_eq!((p.src_addr, p.dst_addr), (coa1(), ha()));
    assert_eq!(p.home_address, Some(hoa()));
    assert_eq!(p.rh2_home_address, None);
    assert_eq!(
        p.verify_checksum().unwrap(),
        proto::ext::ChecksumSource::HomeAddress
    );
    assert_eq!(mr.state(), RegistrationState::Registering);
    assert!(events(&mut mr).is_empty());
    // Registered on the BA.
    deliver(
        &mut mr,
        ms(t0, 50),
        &Ba::ok(&bu).opt(v4_ack(0, mnp4())).packet(coa1()),
    );
    let evs = events(&mut mr);
    let (b, optimistic, ipv4) = bul_add(&evs).unwrap();
    assert!(!optimistic);
    assert_eq!(
        *ipv4,
        Ipv4MnpOutcome::Acknowledged {
            rejected: Vec::new()
        }
    );
    assert_eq!(b.hoa, hoa());
    assert_eq!(b.coa, CareOf::V6(coa1()));
    assert_eq!(b.ha, ha());
    assert_eq!(b.mnp_v6, vec![mnp6()]);
    assert_eq!(b.mnp_v4, vec![mnp4()]);
    assert_eq!(b.encapsulation, proto::model::Encapsulation::InIpv6);
    assert_eq!(b.lifetime, 400);
    assert_eq!(b.coa_ifindex, Some(3));
    assert_eq!(b.flags, BuFlags::A | BuFlags::H | BuFlags::R);
    assert_eq!(mr.ipv4_support(), Ipv4Support::Supported);
    // State dump: one item per BUL entry, remaining lifetime.
    let items = mr.handle_state_request(ms(t0, 100_000));
    let [entry] = items.as_slice() else {
        panic!("{items:?}")
    };
    assert_eq!(entry.lifetime, 300);
    assert_eq!(entry.coa, CareOf::V6(coa1()));
}

#[test]
fn implicit_mode_sends_no_prefix_options() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.mode = RegistrationMode::Implicit;
    c.send_ipv4_mnps = false;
    let mut mr = MrCore::new(c).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    assert_eq!(
        bu.options,
        vec![MobilityOption::AlternateCareOfAddress(coa1())]
    );
    deliver(&mut mr, ms(t0, 10), &Ba::ok(&bu).packet(coa1()));
    let evs = events(&mut mr);
    let (b, _, ipv4) = bul_add(&evs).unwrap();
    assert_eq!(*ipv4, Ipv4MnpOutcome::NotRequested);
    assert!(b.mnp_v4.is_empty());
}

#[test]
fn legacy_option_replaces_rfc5555_option() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.legacy_ipv4_mnp_option = true;
    let mut mr = MrCore::new(c).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    assert!(bu.options.contains(&MobilityOption::LegacyIpv4Mnp {
        prefix_len: 24,
        prefix: mnp4().network()
    }));
    assert!(
        !bu.options
            .iter()
            .any(|o| matches!(o, MobilityOption::Ipv4HomeAddress { .. }))
    );
    // SHISA's HA sends no status option: the accepted BA is the acknowledgement.
    deliver(&mut mr, ms(t0, 10), &Ba::ok(&bu).packet(coa1()));
    let evs = events(&mut mr);
    assert_eq!(bul_add(&evs).unwrap().0.mnp_v4, vec![mnp4()]);
}

/// Sends nothing back and records when each BU leaves.
fn schedule(mr: &mut MrCore, t0: Instant, n: usize) -> Vec<(u64, u16)> {
    let mut out = Vec::new();
    let mut now = t0;
    while out.len() < n {
        for bu in drain_tx(mr) {
            out.push(((now - t0).as_millis() as u64, bu.seq));
        }
        if out.len() >= n {
            break;
        }
        now = mr.poll_timeout().expect("a timer");
        mr.handle_timeout(now);
    }
    out.truncate(n);
    out
}

fn gaps(s: &[(u64, u16)]) -> Vec<u64> {
    s.windows(2).map(|w| w[1].0 - w[0].0).collect()
}

#[test]
fn retransmission_first_registration_1_5_3_6_to_32() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let s = schedule(&mut mr, t0, 10);
    assert_eq!(
        gaps(&s),
        [1500, 3000, 6000, 12000, 24000, 32000, 32000, 32000, 32000]
    );
    // A new, larger sequence number every time (RFC 6275 §11.8).
    let seqs: Vec<u16> = s.iter().map(|x| x.1).collect();
    assert_eq!(seqs, (100..110).collect::<Vec<u16>>());
    assert_eq!(mr.state(), RegistrationState::Registering);
}

#[test]
fn retransmission_after_move_starts_at_1s() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    registered(&mut mr, t0);
    events(&mut mr);
    let t1 = ms(t0, 10_000);
    mr.handle_md_info(t1, &rereg(coa2()));
    let s = schedule(&mut mr, t1, 9);
    assert_eq!(
        gaps(&s),
        [1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000]
    );
    assert_eq!(s[0].1, 101);
    assert!(matches!(
        mr.state(),
        RegistrationState::Registered { refreshing: true }
    ));
}

#[test]
fn retransmission_timeout_function() {
    let c = cfg();
    let f = |n, first| MrCore::retransmission_timeout(&c, n, first).as_millis();
    assert_eq!(f(1, true), 1500);
    assert_eq!(f(2, true), 3000);
    assert_eq!(f(3, true), 6000);
    assert_eq!(f(5, true), 24000);
    assert_eq!(f(8, true), 32000);
    assert_eq!(f(1000, true), 32000);
    assert_eq!(f(1, false), 1000);
    assert_eq!(f(6, false), 32000);
    assert_eq!(f(u32::MAX, false), 32000);
}

#[test]
fn max_update_rate_three_per_second() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    // Flapping between two CoAs every 100 ms: each move replaces the outstanding BU.
    let mut sent = Vec::new();
    for i in 0..10u64 {
        let now = ms(t0, i * 100);
        mr.handle_timeout(now);
        mr.handle_md_info(now, &rereg(if i % 2 == 0 { coa1() } else { coa2() }));
        for bu in drain_tx(&mut mr) {
            sent.push((i * 100, bu.seq, bu.tx.addressing.src_addr));
        }
    }
    assert_eq!(
        sent.iter().map(|s| s.0).collect::<Vec<_>>(),
        [0, 100, 200],
        "{sent:?}"
    );
    // The fourth BU waits for the first to age out of the one-second window and carries
    // the latest CoA (the last move was to coa2 at 900 ms).
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 1000)));
    mr.handle_timeout(ms(t0, 1000));
    let bu = next_bu(&mut mr);
    assert_eq!(bu.seq, 103);
    assert_eq!(bu.tx.addressing.src_addr, coa2());
    // Any window of one second holds at most three BUs.
    let mut all: Vec<u64> = sent.iter().map(|s| s.0).collect();
    all.push(1000);
    all.extend(
        schedule(&mut mr, ms(t0, 1000), 6)
            .iter()
            .skip(1)
            .map(|s| s.0 + 1000),
    );
    for (i, t) in all.iter().enumerate() {
        assert!(
            all[i..].iter().take_while(|u| **u < t + 1000).count() <= 3,
            "{all:?}"
        );
    }
}

#[test]
fn refresh_before_expiry() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    registered(&mut mr, t0);
    events(&mut mr);
    // Lifetime counted from the BU (t0): 400 s, refresh 16 s before.
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 384_000)));
    mr.handle_timeout(ms(t0, 383_999));
    assert!(mr.poll_transmit().is_none());
    mr.handle_timeout(ms(t0, 384_000));
    let bu = next_bu(&mut mr);
    assert_eq!(bu.seq, 101);
    assert_eq!(bu.lifetime, Lifetime::from_secs(400));
    // A refresh repeats every prefix (RFC 3963 §5.2).
    assert_eq!(bu.options.len(), 3);
    // Not a first registration: 1 s.
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 385_000)));
    deliver(
        &mut mr,
        ms(t0, 384_200),
        &Ba::ok(&bu).opt(v4_ack(0, mnp4())).packet(coa1()),
    );
    let evs = events(&mut mr);
    assert_eq!(bul_add(&evs).unwrap().0.lifetime, 400);
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 384_000 + 384_000)));
}

#[test]
fn shorter_granted_lifetime_is_counted_from_the_bu() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    // Requested 400 s, granted 100 s, BA 1 s after the BU: remaining = 400 - 300 - 1 s.
    deliver(
        &mut mr,
        ms(t0, 1000),
        &Ba::ok(&bu)
            .lifetime(Lifetime::from_secs(100))
            .opt(v4_ack(0, mnp4()))
            .packet(coa1()),
    );
    assert_eq!(mr.granted_lifetime(), Some(Lifetime::from_secs(100)));
    let evs = events(&mut mr);
    assert_eq!(bul_add(&evs).unwrap().0.lifetime, 100);
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 84_000)));
    // A granted lifetime above the request is not believed.
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 10),
        &Ba::ok(&bu)
            .lifetime(Lifetime::from_secs(4000))
            .packet(coa1()),
    );
    assert_eq!(mr.granted_lifetime(), Some(Lifetime::from_secs(400)));
}

#[test]
fn binding_refresh_advice_and_request() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 10),
        &Ba::ok(&bu)
            .opt(MobilityOption::BindingRefreshAdvice {
                refresh_interval: Lifetime::from_secs(100),
            })
            .packet(coa1()),
    );
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 100_000)));
    // A Binding Refresh Request from the HA refreshes at once (RFC 6275 §11.7.4).
    let mut brr = vec![0; 8];
    MhRepr::BindingRefreshRequest(BindingRefreshRequest::default())
        .emit_to(&mut brr)
        .unwrap();
    deliver(&mut mr, ms(t0, 50_000), &wrap(&brr, coa1()));
    let bu = next_bu(&mut mr);
    assert_eq!(bu.seq, 101);
    assert_eq!(bu.lifetime, Lifetime::from_secs(400));
}

#[test]
fn status_135_resynchronises() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    assert_eq!(bu.seq, 100);
    // The HA's last accepted sequence number is 40000: the BA carries it.
    let mut ba = Ba::ok(&bu).status(135);
    ba.seq = 40000;
    deliver(&mut mr, ms(t0, 30), &ba.packet(coa1()));
    let bu2 = next_bu(&mut mr);
    assert_eq!(bu2.seq, 40001);
    assert!(events(&mut mr).is_empty());
    // Fresh back-off from the resynchronised BU.
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 1530)));
    deliver(&mut mr, ms(t0, 60), &Ba::ok(&bu2).packet(coa1()));
    assert!(bul_add(&events(&mut mr)).is_some());
}

#[test]
fn sequence_wraps_at_65535() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.initial_sequence = SequenceNumber(65534);
    let mut mr = MrCore::new(c).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let s = schedule(&mut mr, t0, 4);
    assert_eq!(
        s.iter().map(|x| x.1).collect::<Vec<_>>(),
        [65534, 65535, 0, 1]
    );
    // The BA for sequence 1 registers.
    let seq = mr.last_sequence();
    let mut ba = Ba::ok(&next_bu_like(seq));
    ba.seq = seq.0;
    deliver(&mut mr, ms(t0, 5000), &ba.packet(coa1()));
    assert!(matches!(mr.state(), RegistrationState::Registered { .. }));
}

/// A stand-in for a BU already drained (only seq and lifetime are used by `Ba::ok`).
fn next_bu_like(seq: SequenceNumber) -> SentBu {
    SentBu {
        tx: Transmit {
            addressing: MobilityPacketRepr {
                src_addr: coa1(),
                dst_addr: ha(),
                hop_limit: 64,
                home_address: Some(hoa()),
                rh2_home_address: None,
            },
            mh: Vec::new(),
            sequence: seq,
            lifetime: Lifetime::from_secs(400),
            kind: BuKind::Register,
            udp_v4: None,
            udp_from: None,
            ifindex: 3,
        },
        seq: seq.0,
        flags: BuFlags::A,
        lifetime: Lifetime::from_secs(400),
        options: Vec::new(),
    }
}

#[test]
fn stale_ba_and_foreign_source_ignored() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu1 = next_bu(&mut mr);
    mr.handle_timeout(ms(t0, 1500));
    let _bu2 = next_bu(&mut mr);
    // The BA for the first transmission no longer matches (RFC 6275 §11.7.3).
    deliver(&mut mr, ms(t0, 1600), &Ba::ok(&bu1).packet(coa1()));
    assert_eq!(mr.state(), RegistrationState::Registering);
    assert!(events(&mut mr).is_empty());
    // Bad checksum: dropped.
    let mut pkt = Ba::ok(&bu1).packet(coa1());
    let n = pkt.len();
    pkt[n - 1] ^= 0xff;
    deliver(&mut mr, ms(t0, 1700), &pkt);
    assert_eq!(mr.state(), RegistrationState::Registering);
}

#[test]
fn every_refusal_status() {
    for mode in [RegistrationMode::Explicit, RegistrationMode::Implicit] {
        for code in (128u8..=178).filter(|c| *c != 135) {
            let t0 = Instant::now();
            let mut c = cfg();
            c.mode = mode;
            let mut mr = MrCore::new(c).unwrap();
            mr.handle_md_info(t0, &rereg(coa1()));
            let bu = next_bu(&mut mr);
            deliver(
                &mut mr,
                ms(t0, 100),
                &Ba::ok(&bu).status(code).packet(coa1()),
            );
            let evs = events(&mut mr);
            // RFC 3963 §5.3: 140-143 in either mode; wrong HA, DAD failed, bad keys too;
            // 145 because this configuration sends no timestamps.
            let fatal = matches!(code, 131..=134 | 140..=143 | 145 | 146);
            let expected = match code {
                139 => Reaction::DeregisterThenRegister,
                _ if fatal => Reaction::Stop,
                _ => Reaction::Retry,
            };
            assert_eq!(reaction(BaStatus::from(code), false), expected, "{code}");
            if code == 145 {
                // With timestamps sent, a 145 is the HA's error: retried.
                assert_eq!(reaction(BaStatus::from(code), true), Reaction::Retry);
            }
            if code == 139 {
                // Covered by `type_change_139_deregisters_then_registers_once`.
                assert!(evs.is_empty(), "{code}: {evs:?}");
                assert_eq!(next_bu(&mut mr).lifetime, Lifetime::ZERO);
            } else if fatal {
                let reason = StopReason::Refused(BaStatus::from(code));
                assert_eq!(evs, vec![MrEvent::Stopped { reason }], "{code}");
                assert_eq!(mr.state(), RegistrationState::Stopped(reason));
                assert_eq!(mr.poll_timeout(), None, "{code}");
                // A later move is not registered with this HA.
                mr.handle_md_info(ms(t0, 5000), &rereg(coa2()));
                assert!(mr.poll_transmit().is_none());
            } else {
                assert!(evs.is_empty(), "{code}: {evs:?}");
                // Retried with the back-off, a new sequence number.
                assert_eq!(mr.poll_timeout(), Some(ms(t0, 1500)), "{code}");
                mr.handle_timeout(ms(t0, 1500));
                assert_eq!(next_bu(&mut mr).seq, 101, "{code}");
            }
            let (name, rfc) = BaStatus::from(code).meaning();
            assert!(!name.is_empty() && rfc.starts_with("RFC"), "{code}");
        }
    }
}

#[test]
fn accepted_without_r_means_no_nemo() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    let mut ba = Ba::ok(&bu);
    ba.r = false;
    deliver(&mut mr, ms(t0, 100), &ba.packet(coa1()));
    assert_eq!(
        events(&mut mr),
        vec![MrEvent::Stopped {
            reason: StopReason::NotNemoCapable
        }]
    );
    // RFC 3963 §5.3: deregister the binding the HA created.
    let dereg = next_bu(&mut mr);
    assert_eq!(dereg.lifetime, Lifetime::ZERO);
    assert_eq!(dereg.tx.kind, BuKind::Deregister);
    assert_eq!(dereg.tx.addressing.home_address, Some(hoa()));
    assert_eq!(mr.state(), RegistrationState::Deregistering);
    deliver(&mut mr, ms(t0, 200), &Ba::ok(&dereg).packet(coa1()));
    assert_eq!(
        mr.state(),
        RegistrationState::Stopped(StopReason::NotNemoCapable)
    );
    assert!(mr.poll_transmit().is_none());
}

#[test]
fn ha_without_ipv4_support_means_ipv6_only() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    // No IPv4 Address Acknowledgement at all.
    deliver(&mut mr, ms(t0, 100), &Ba::ok(&bu).packet(coa1()));
    let evs = events(&mut mr);
    let (b, _, ipv4) = bul_add(&evs).unwrap();
    assert_eq!(*ipv4, Ipv4MnpOutcome::HaUnsupported);
    assert!(b.mnp_v4.is_empty());
    assert_eq!(b.mnp_v6, vec![mnp6()]);
    assert_eq!(mr.ipv4_support(), Ipv4Support::Unsupported);
    // The refresh no longer carries IPv4 options.
    mr.handle_timeout(ms(t0, 384_000));
    let bu = next_bu(&mut mr);
    assert!(
        !bu.options
            .iter()
            .any(|o| matches!(o, MobilityOption::Ipv4HomeAddress { .. }))
    );
    deliver(&mut mr, ms(t0, 384_100), &Ba::ok(&bu).packet(coa1()));
    let evs = events(&mut mr);
    assert_eq!(*bul_add(&evs).unwrap().2, Ipv4MnpOutcome::NotRequested);
}

#[test]
fn per_prefix_ipv4_refusal() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.mnp_v4 = vec![mnp4(), mnp4b()];
    let mut mr = MrCore::new(c).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    let v4: Vec<_> = bu
        .options
        .iter()
        .filter(|o| matches!(o, MobilityOption::Ipv4HomeAddress { p: true, .. }))
        .collect();
    assert_eq!(v4.len(), 2);
    // Acks in the other order: matched by address.
    deliver(
        &mut mr,
        ms(t0, 100),
        &Ba::ok(&bu)
            .opt(v4_ack(133, mnp4b()))
            .opt(v4_ack(0, mnp4()))
            .packet(coa1()),
    );
    let evs = events(&mut mr);
    let (b, _, ipv4) = bul_add(&evs).unwrap();
    assert_eq!(b.mnp_v4, vec![mnp4()]);
    assert_eq!(
        *ipv4,
        Ipv4MnpOutcome::Acknowledged {
            rejected: vec![(mnp4b(), Ipv4AckStatus::PrefixAllocationUnauthorized)]
        }
    );
    assert_eq!(
        Ipv4AckStatus::PrefixAllocationUnauthorized.meaning(),
        ("Prefix allocation unauthorized", "RFC 5555")
    );
}

#[test]
fn authenticated_bu_verifies() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.security = Some(sa(true));
    let mut mr = MrCore::new(c).unwrap();
    let wall = Duration::from_secs(1_800_000_000);
    mr.set_wall_clock(t0, wall);
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    // RFC 4285: MN-ID, replay protection, MN-HA auth last.
    let n = bu.options.len();
    assert_eq!(
        bu.options[n - 3],
        MobilityOption::MobileNodeIdentifier {
            subtype: 1,
            identifier: b"mr1@example.net"
        }
    );
    let MobilityOption::ReplayProtection { timestamp } = bu.options[n - 2] else {
        panic!()
    };
    assert_eq!(
        NtpTimestamp(timestamp).to_unix().unwrap().as_secs(),
        wall.as_secs()
    );
    assert!(matches!(
        bu.options[n - 1],
        MobilityOption::Authentication {
            subtype: 1,
            spi: SPI,
            ..
        }
    ));
    assert!(auth::verify(&bu.tx.mh, IpAddr::V6(coa1()), &hoa(), KEY).unwrap());
    assert!(!auth::verify(&bu.tx.mh, IpAddr::V6(coa1()), &hoa(), b"other key").unwrap());
    // Timestamps grow even when the wall clock does not move.
    mr.handle_timeout(ms(t0, 1500));
    let bu2 = next_bu(&mut mr);
    let MobilityOption::ReplayProtection { timestamp: t2 } = bu2.options[n - 2] else {
        panic!()
    };
    assert!(NtpTimestamp(t2).is_later_than(NtpTimestamp(timestamp)));
    assert!(auth::verify(&bu2.tx.mh, IpAddr::V6(coa1()), &hoa(), KEY).unwrap());
}

#[test]
fn forged_or_unauthenticated_ba_ignored() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.security = Some(sa(true));
    let mut mr = MrCore::new(c).unwrap();
    mr.set_wall_clock(t0, Duration::from_secs(1_800_000_000));
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    let ts = bu
        .options
        .iter()
        .find_map(|o| match o {
            MobilityOption::ReplayProtection { timestamp } => Some(*timestamp),
            _ => None,
        })
        .unwrap();
    let replay = MobilityOption::ReplayProtection { timestamp: ts };
    // No authentication option at all.
    deliver(&mut mr, ms(t0, 10), &Ba::ok(&bu).opt(replay).packet(coa1()));
    // Wrong key (a forger without the SA).
    deliver(
        &mut mr,
        ms(t0, 20),
        &Ba::ok(&bu)
            .opt(replay)
            .signed(b"guessed key!!!!!", coa1())
            .packet(coa1()),
    );
    // Right key, timestamp not echoed.
    deliver(
        &mut mr,
        ms(t0, 30),
        &Ba::ok(&bu)
            .opt(MobilityOption::ReplayProtection { timestamp: ts + 1 })
            .signed(KEY, coa1())
            .packet(coa1()),
    );
    // A forged refusal must not stop us either.
    deliver(
        &mut mr,
        ms(t0, 40),
        &Ba::ok(&bu)
            .status(146)
            .opt(replay)
            .signed(b"bad", coa1())
            .packet(coa1()),
    );
    assert!(events(&mut mr).is_empty());
    assert_eq!(mr.state(), RegistrationState::Registering);
    // The genuine BA registers.
    deliver(
        &mut mr,
        ms(t0, 50),
        &Ba::ok(&bu)
            .opt(v4_ack(0, mnp4()))
            .opt(replay)
            .signed(KEY, coa1())
            .packet(coa1()),
    );
    assert!(bul_add(&events(&mut mr)).is_some());
}

#[test]
fn status_144_resynchronises_the_timestamp_clock() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.security = Some(sa(true));
    let mut mr = MrCore::new(c).unwrap();
    mr.set_wall_clock(t0, Duration::from_secs(1_800_000_000));
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    let ts = |bu: &SentBu| {
        bu.options
            .iter()
            .find_map(|o| match o {
                MobilityOption::ReplayProtection { timestamp } => Some(NtpTimestamp(*timestamp)),
                _ => None,
            })
            .unwrap()
    };
    let sent = ts(&bu);
    // The HA's clock is 100 s ahead: high 32 bits from its clock, low 32 echoed.
    let ha_ts = NtpTimestamp::from_parts(sent.seconds() + 100, sent.fraction());
    deliver(
        &mut mr,
        ms(t0, 10),
        &Ba::ok(&bu)
            .status(144)
            .opt(MobilityOption::ReplayProtection { timestamp: ha_ts.0 })
            .signed(KEY, coa1())
            .packet(coa1()),
    );
    let bu2 = next_bu(&mut mr);
    assert_eq!(bu2.seq, 101);
    assert_eq!(ts(&bu2).seconds(), sent.seconds() + 100);
    assert!(events(&mut mr).is_empty());
}

#[test]
fn deregistration_when_home() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    registered(&mut mr, t0);
    events(&mut mr);
    let mut home = md(MdCommand::Dereghome);
    home.ifindex = 2;
    mr.handle_md_info(ms(t0, 10_000), &home);
    let bu = next_bu(&mut mr);
    assert_eq!(bu.lifetime, Lifetime::ZERO);
    assert_eq!(bu.tx.kind, BuKind::Deregister);
    // RFC 6275 §11.5.4: from the HoA, no HAO, no prefixes.
    assert_eq!(bu.tx.addressing.src_addr, hoa());
    assert_eq!(bu.tx.addressing.home_address, None);
    assert!(bu.options.is_empty());
    assert_eq!(mr.state(), RegistrationState::Deregistering);
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 11_000)));
    // Issue 11, RFC 6275 §11.5.5: the router must answer for its home address on the home
    // link once the BU has left, so BUL_REMOVE comes with it, not after the BA: CoA = HoA,
    // the home link's interface, the prefixes, for the data plane's at-home state.
    let evs = events(&mut mr);
    let [MrEvent::BulRemove { binding }] = evs.as_slice() else {
        panic!("{evs:?}")
    };
    assert_eq!(binding.lifetime, 0);
    assert_eq!(binding.coa, CareOf::V6(hoa()));
    assert_eq!(binding.coa_ifindex, Some(2));
    assert!(!binding.mnp_v6.is_empty());
    assert!(mr.handle_state_request(ms(t0, 10_050)).is_empty());
    deliver(
        &mut mr,
        ms(t0, 10_100),
        &Ba::ok(&bu).lifetime(Lifetime::ZERO).packet(hoa()),
    );
    let evs = events(&mut mr);
    let [MrEvent::HomeAdvertise { hoa: h }] = evs.as_slice() else {
        panic!("{evs:?}")
    };
    assert_eq!(*h, hoa());
    assert_eq!(mr.state(), RegistrationState::Idle);
    assert_eq!(mr.poll_timeout(), None);
    assert!(mr.handle_state_request(ms(t0, 10_200)).is_empty());
}

#[test]
fn deregistration_gives_up() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    registered(&mut mr, t0);
    events(&mut mr);
    mr.handle_md_info(ms(t0, 10_000), &md(MdCommand::Dereghome));
    let s = schedule(&mut mr, ms(t0, 10_000), 6);
    assert_eq!(gaps(&s), [1000, 2000, 4000, 8000, 16000]);
    let give_up = mr.poll_timeout().unwrap();
    assert_eq!(give_up, ms(t0, 10_000 + 31_000 + 32_000));
    mr.handle_timeout(give_up);
    assert!(mr.poll_transmit().is_none());
    assert!(events(&mut mr).iter().any(is_remove));
    assert_eq!(mr.state(), RegistrationState::Idle);
}

#[test]
fn deregistration_from_foreign_link() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    registered(&mut mr, t0);
    events(&mut mr);
    mr.handle_md_info(ms(t0, 1000), &md(MdCommand::Deregforeign));
    let bu = next_bu(&mut mr);
    assert_eq!(bu.lifetime, Lifetime::ZERO);
    assert_eq!(bu.tx.addressing.src_addr, coa1());
    assert_eq!(bu.tx.addressing.home_address, Some(hoa()));
    assert_eq!(
        bu.options,
        vec![MobilityOption::AlternateCareOfAddress(coa1())]
    );
}

#[test]
fn optimistic_mode() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.optimistic = true;
    let mut mr = MrCore::new(c).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    let evs = events(&mut mr);
    let (b, optimistic, ipv4) = bul_add(&evs).unwrap();
    assert!(optimistic);
    assert_eq!(*ipv4, Ipv4MnpOutcome::Pending);
    assert_eq!(b.coa, CareOf::V6(coa1()));
    // Retransmissions do not announce again.
    mr.handle_timeout(ms(t0, 1500));
    let bu2 = next_bu(&mut mr);
    assert!(events(&mut mr).is_empty());
    // Confirmed by the BA.
    deliver(
        &mut mr,
        ms(t0, 1600),
        &Ba::ok(&bu2).opt(v4_ack(0, mnp4())).packet(coa1()),
    );
    let evs = events(&mut mr);
    let (_, optimistic, _) = bul_add(&evs).unwrap();
    assert!(!optimistic);
    drop(bu);
    // A refresh is not announced optimistically.
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 1500 + 384_000)));
    mr.handle_timeout(ms(t0, 1500 + 384_000));
    let _ = next_bu(&mut mr);
    assert!(events(&mut mr).is_empty());
    // A move is, and a refusal withdraws that unconfirmed entry.
    mr.handle_md_info(ms(t0, 386_000), &rereg(coa2()));
    let bu3 = next_bu(&mut mr);
    assert!(bul_add(&events(&mut mr)).unwrap().1);
    deliver(
        &mut mr,
        ms(t0, 386_100),
        &Ba::ok(&bu3).status(130).packet(coa2()),
    );
    let evs = events(&mut mr);
    assert!(
        matches!(evs.as_slice(), [MrEvent::BulRemove { binding }] if binding.coa == CareOf::V6(coa2())),
        "{evs:?}"
    );
    // The retransmission that gets through announces it again, confirmed.
    let t = mr.poll_timeout().unwrap();
    mr.handle_timeout(t);
    let bu4 = next_bu(&mut mr);
    assert!(events(&mut mr).is_empty());
    deliver(
        &mut mr,
        t,
        &Ba::ok(&bu4).opt(v4_ack(0, mnp4())).packet(coa2()),
    );
    let evs = events(&mut mr);
    let (b, optimistic, _) = bul_add(&evs).unwrap();
    assert!(!optimistic);
    assert_eq!(b.coa, CareOf::V6(coa2()));

    // From scratch: a refusal withdraws the optimistic entry.
    let mut c = cfg();
    c.optimistic = true;
    let mut mr = MrCore::new(c).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    events(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 100),
        &Ba::ok(&bu).status(129).packet(coa1()),
    );
    let evs = events(&mut mr);
    assert!(
        matches!(evs.as_slice(), [MrEvent::BulRemove { .. }]),
        "{evs:?}"
    );
}

#[test]
fn move_while_outstanding_replaces_the_bu() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu1 = next_bu(&mut mr);
    mr.handle_md_info(ms(t0, 500), &rereg(coa2()));
    let bu2 = next_bu(&mut mr);
    assert_eq!(bu2.seq, 101);
    assert_eq!(bu2.tx.addressing.src_addr, coa2());
    // Same CoA again: nothing new.
    mr.handle_md_info(ms(t0, 600), &rereg(coa2()));
    assert!(mr.poll_transmit().is_none());
    // The BA to the replaced BU does not register the old CoA.
    deliver(&mut mr, ms(t0, 700), &Ba::ok(&bu1).packet(coa1()));
    assert_eq!(mr.state(), RegistrationState::Registering);
    deliver(
        &mut mr,
        ms(t0, 800),
        &Ba::ok(&bu2).opt(v4_ack(0, mnp4())).packet(coa2()),
    );
    let evs = events(&mut mr);
    assert_eq!(bul_add(&evs).unwrap().0.coa, CareOf::V6(coa2()));
}

#[test]
fn binding_expires_when_refreshes_go_unanswered() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    registered(&mut mr, t0);
    events(&mut mr);
    let mut removed_at = None;
    while removed_at.is_none() {
        let now = mr.poll_timeout().unwrap();
        mr.handle_timeout(now);
        drain_tx(&mut mr);
        if events(&mut mr).iter().any(is_remove) {
            removed_at = Some(now);
        }
    }
    assert_eq!(removed_at, Some(ms(t0, 400_000)));
    // It keeps trying.
    assert_eq!(mr.state(), RegistrationState::Registering);
    assert!(mr.poll_timeout().is_some());
}

/// Issue 17 defect 1: a Binding Error (unauthenticated, forgeable) must not take down a
/// working binding. RFC 6275 §11.3.6 makes it a hint: the MR refreshes, keeping the
/// binding (no BUL_REMOVE), at most once per hold-down, and only the BA decides.
#[test]
fn binding_error_unknown_binding_refreshes_keeping_the_binding() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    registered(&mut mr, t0);
    events(&mut mr);
    let be = MhRepr::BindingError(BindingError {
        status: BeStatus::UnknownBindingForHomeAddressDestinationOption,
        home_address: hoa(),
        options: vec![],
    });
    let mut mh = vec![0; be.buffer_len()];
    be.emit_to(&mut mh).unwrap();
    let addressing = MobilityPacketRepr {
        src_addr: ha(),
        dst_addr: coa1(),
        hop_limit: 64,
        home_address: None,
        rh2_home_address: None,
    };
    let mut pkt = vec![0; mobility_packet_len(&addressing, mh.len())];
    emit_mobility_packet(&addressing, &mh, &mut pkt).unwrap();
    deliver(&mut mr, ms(t0, 5000), &pkt);
    assert!(
        events(&mut mr).is_empty(),
        "binding kept, nothing announced"
    );
    assert_eq!(
        mr.state(),
        RegistrationState::Registered { refreshing: true }
    );
    let bu = next_bu(&mut mr);
    assert_eq!(bu.lifetime, Lifetime::from_secs(400));
    // A refresh, not a first registration: 1 s.
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 6000)));
    // More BEs while the refresh is outstanding: nothing more is sent.
    for i in 0..20 {
        deliver(&mut mr, ms(t0, 5100 + i), &pkt);
    }
    assert!(mr.poll_transmit().is_none());
    assert!(events(&mut mr).is_empty());
    deliver(
        &mut mr,
        ms(t0, 5200),
        &Ba::ok(&bu).opt(v4_ack(0, mnp4())).packet(coa1()),
    );
    assert!(!events(&mut mr).iter().any(is_remove));
    assert_eq!(
        mr.state(),
        RegistrationState::Registered { refreshing: false }
    );
    // Within the hold-down another BE draws no BU; after it, one.
    deliver(&mut mr, ms(t0, 5500), &pkt);
    assert!(mr.poll_transmit().is_none());
    deliver(&mut mr, ms(t0, 6100), &pkt);
    let again = next_bu(&mut mr);
    assert!(events(&mut mr).is_empty());
    // A forged BE with no HA behind it: the refresh goes unanswered, the binding stays
    // until its lifetime ends as for any unanswered refresh.
    let mut now = ms(t0, 6100);
    let mut removed = None;
    while removed.is_none() && now < ms(t0, 500_000) {
        now = mr.poll_timeout().unwrap().max(now);
        mr.handle_timeout(now);
        drain_tx(&mut mr);
        if events(&mut mr).iter().any(is_remove) {
            removed = Some(now);
        }
    }
    // The refresh acknowledged at 5.2 s counts from its BU (5 s).
    assert_eq!(removed, Some(ms(t0, 405_000)), "{again:?}");
}

/// Issue 17 defect 8: a 139 (the HA holds a binding of the other registration type for
/// our home address) used to be retried for ever. The MR de-registers, registers again,
/// and stops if the HA still answers 139.
#[test]
fn type_change_139_deregisters_then_registers_once() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 100),
        &Ba::ok(&bu).status(139).packet(coa1()),
    );
    assert!(events(&mut mr).is_empty());
    let dereg = next_bu(&mut mr);
    assert_eq!(dereg.lifetime, Lifetime::ZERO);
    assert_eq!(mr.state(), RegistrationState::Deregistering);
    deliver(&mut mr, ms(t0, 200), &Ba::ok(&dereg).packet(coa1()));
    let again = next_bu(&mut mr);
    assert_eq!(again.lifetime, Lifetime::from_secs(400));
    assert!(again.seq > dereg.seq);
    deliver(
        &mut mr,
        ms(t0, 300),
        &Ba::ok(&again).opt(v4_ack(0, mnp4())).packet(coa1()),
    );
    assert!(bul_add(&events(&mut mr)).is_some());
    assert_eq!(
        mr.state(),
        RegistrationState::Registered { refreshing: false }
    );

    // A de-registration the HA answers 133 (it held nothing after all) also leads on.
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 100),
        &Ba::ok(&bu).status(139).packet(coa1()),
    );
    let dereg = next_bu(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 200),
        &Ba::ok(&dereg).status(133).packet(coa1()),
    );
    let again = next_bu(&mut mr);
    // Still 139: stop, no endless loop of de-registrations.
    deliver(
        &mut mr,
        ms(t0, 300),
        &Ba::ok(&again).status(139).packet(coa1()),
    );
    let reason = StopReason::Refused(BaStatus::from(139));
    assert_eq!(events(&mut mr), vec![MrEvent::Stopped { reason }]);
    assert_eq!(mr.state(), RegistrationState::Stopped(reason));
    assert!(mr.poll_transmit().is_none());
    assert_eq!(mr.poll_timeout(), None);
}

#[test]
fn config_is_validated() {
    let mut c = cfg();
    c.lifetime = Lifetime::ZERO;
    assert_eq!(MrCore::new(c).unwrap_err(), ConfigError::ZeroLifetime);
    let mut c = cfg();
    c.security = Some(MobilitySa {
        spi: 5,
        ..sa(false)
    });
    assert_eq!(MrCore::new(c).unwrap_err(), ConfigError::ReservedSpi(5));
    let mut c = cfg();
    c.home_agent = "ff02::2".parse().unwrap();
    assert!(MrCore::new(c).is_err());
    // Unspecified: found by discovery; but the anycast address needs 8 host bits.
    let mut c = cfg();
    c.home_agent = Ipv6Addr::UNSPECIFIED;
    c.home_prefix_len = 121;
    assert_eq!(
        MrCore::new(c).unwrap_err(),
        ConfigError::BadHomePrefixLen(121)
    );
    let mut c = cfg();
    c.mnp_v4 = vec![Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0).unwrap()];
    assert!(MrCore::new(c).is_err());
    assert!(!format!("{:?}", sa(false)).contains("0123"));
}

#[test]
fn deregistration_without_binding_at_the_ha_completes() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    registered(&mut mr, t0);
    events(&mut mr);
    mr.handle_md_info(ms(t0, 1000), &md(MdCommand::Dereghome));
    let bu = next_bu(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 1100),
        &Ba::ok(&bu).status(133).packet(hoa()),
    );
    assert!(events(&mut mr).iter().any(is_remove));
    assert_eq!(mr.state(), RegistrationState::Idle);
}

#[test]
fn accepted_codes_register() {
    for code in 0u8..128 {
        let t0 = Instant::now();
        let mut mr = MrCore::new(cfg()).unwrap();
        mr.handle_md_info(t0, &rereg(coa1()));
        let bu = next_bu(&mut mr);
        deliver(
            &mut mr,
            ms(t0, 10),
            &Ba::ok(&bu)
                .status(code)
                .opt(v4_ack(0, mnp4()))
                .packet(coa1()),
        );
        assert!(bul_add(&events(&mut mr)).is_some(), "{code}");
        let (name, _) = BaStatus::from(code).meaning();
        assert!(!name.is_empty());
    }
}

#[test]
fn binding_refresh_request_must_be_signed_with_an_sa() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.security = Some(sa(false));
    let mut mr = MrCore::new(c).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 10),
        &Ba::ok(&bu)
            .opt(v4_ack(0, mnp4()))
            .signed(KEY, coa1())
            .packet(coa1()),
    );
    assert!(matches!(mr.state(), RegistrationState::Registered { .. }));
    let brr = |key: Option<&[u8]>| {
        let mut options = Vec::new();
        if key.is_some() {
            options.push(auth::mn_ha_option(SPI));
        }
        let repr = MhRepr::BindingRefreshRequest(BindingRefreshRequest { options });
        let mut mh = vec![0; repr.buffer_len()];
        repr.emit_to(&mut mh).unwrap();
        if let Some(k) = key {
            auth::sign(&mut mh, IpAddr::V6(coa1()), &hoa(), k).unwrap();
        }
        wrap(&mh, coa1())
    };
    deliver(&mut mr, ms(t0, 1000), &brr(None));
    deliver(&mut mr, ms(t0, 1000), &brr(Some(b"forged")));
    assert!(mr.poll_transmit().is_none());
    deliver(&mut mr, ms(t0, 1000), &brr(Some(KEY)));
    assert_eq!(next_bu(&mut mr).seq, 101);
}

/// A BA packet from the HA whose MH `mangle` changes (checksum refilled by `wrap`).
fn mangled_ba(bu: &SentBu, mangle: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let repr = MhRepr::BindingAck(BindingAck {
        status: BaStatus::Accepted,
        flags: BaFlags::R,
        sequence: SequenceNumber(bu.seq),
        lifetime: bu.lifetime,
        options: Vec::new(),
    });
    let mut mh = vec![0; repr.buffer_len()];
    repr.emit_to(&mut mh).unwrap();
    mangle(&mut mh);
    wrap(&mh, coa1())
}

#[test]
fn malformed_ba_gets_parameter_problem_and_changes_nothing() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    // Payload Proto 6: pointer at octet 0 of the MH.
    deliver(&mut mr, ms(t0, 10), &mangled_ba(&bu, |mh| mh[0] = 6));
    let pp = mr.poll_icmp_error().expect("parameter problem");
    assert_eq!(
        pp,
        ParameterProblem {
            src: coa1(),
            dst: ha(),
            code: 0,
            mh_pointer: 0,
            ifindex: 0,
        }
    );
    // The MH follows IPv6 (40) and the RH2 (24).
    assert_eq!(pp.pointer(64), 64);
    // Header Len 0 for a BA (minimum 1): pointer at octet 1.
    deliver(
        &mut mr,
        ms(t0, 20),
        &mangled_ba(&bu, |mh| {
            mh.truncate(8);
            mh[1] = 0;
        }),
    );
    assert_eq!(mr.poll_icmp_error().map(|p| p.mh_pointer), Some(1));
    assert!(mr.poll_icmp_error().is_none());
    assert!(!matches!(mr.state(), RegistrationState::Registered { .. }));
    // The good BA still registers.
    deliver(&mut mr, ms(t0, 30), &Ba::ok(&bu).packet(coa1()));
    assert!(matches!(mr.state(), RegistrationState::Registered { .. }));
    assert!(mr.poll_icmp_error().is_none());
}

#[test]
fn parameter_problems_from_the_mr_are_rate_limited() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    let bad = mangled_ba(&bu, |mh| mh[0] = 6);
    for _ in 0..15 {
        deliver(&mut mr, ms(t0, 1), &bad);
    }
    assert_eq!(std::iter::from_fn(|| mr.poll_icmp_error()).count(), 10);
    deliver(&mut mr, ms(t0, 1001), &bad);
    assert_eq!(std::iter::from_fn(|| mr.poll_icmp_error()).count(), 1);
}

// ---------- DSMIPv6: registration from an IPv4 care-of address (RFC 5555) ----------

const V4COA: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const HA_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

fn v4_cfg() -> MrCoreConfig {
    let mut c = cfg();
    c.home_agent_v4 = Some(HA_V4);
    c.security = Some(sa(false));
    c
}

fn rereg_v4(addr: Ipv4Addr) -> MdInfo {
    MdInfo {
        coa: Some(CareOf::V4 {
            addr,
            udp_port: None,
        }),
        ..rereg(coa1())
    }
}

/// The BA as the HA sends it inside UDP/IPv4: to the HoA, no RH2, MAC over the mapped CoA.
fn ba_v4(ba: Ba, coa: Ipv4Addr) -> Vec<u8> {
    let repr = MhRepr::BindingAck(BindingAck {
        status: BaStatus::from(ba.status),
        flags: BaFlags::R,
        sequence: SequenceNumber(ba.seq),
        lifetime: ba.lifetime,
        options: ba
            .options
            .iter()
            .copied()
            .chain([auth::mn_ha_option(SPI)])
            .collect(),
    });
    let mut mh = vec![0; repr.buffer_len()];
    repr.emit_to(&mut mh).unwrap();
    auth::sign(&mut mh, IpAddr::V4(coa), &hoa(), KEY).unwrap();
    wrap(&mh, hoa())
}

fn nat_opt(f: bool, refresh_time: u32) -> MobilityOption<'static> {
    MobilityOption::NatDetection { f, refresh_time }
}

/// Registers from V4COA with a BA carrying `nat`; returns the BU and the BUL_ADD binding.
fn registered_v4(
    mr: &mut MrCore,
    t0: Instant,
    nat: Option<MobilityOption<'static>>,
) -> (SentBu, proto::model::Binding) {
    mr.handle_md_info(t0, &rereg_v4(V4COA));
    let bu = next_bu(mr);
    mr.set_udp_local("10.0.0.5:40123".parse().unwrap());
    let mut ba = Ba::ok(&bu).opt(v4_ack(0, mnp4()));
    if let Some(o) = nat {
        ba = ba.opt(o);
    }
    deliver(mr, ms(t0, 100), &ba_v4(ba, V4COA));
    let evs = events(mr);
    let b = bul_add(&evs).expect("BUL_ADD").0.clone();
    (bu, b)
}

#[test]
fn ipv4_coa_bu_goes_in_udp_to_the_ha_with_the_ipv4_coa_option() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(v4_cfg()).unwrap();
    mr.handle_md_info(t0, &rereg_v4(V4COA));
    let bu = next_bu(&mut mr);
    // RFC 5555 §4.2: UDP/IPv4 to HA:4191, inner source = HoA, no HAO, no Alternate CoA.
    assert_eq!(
        bu.tx.udp_v4,
        Some(std::net::SocketAddrV4::new(HA_V4, proto::DSMIP_UDP_PORT))
    );
    assert_eq!(bu.tx.addressing.src_addr, hoa());
    assert_eq!(bu.tx.addressing.dst_addr, ha());
    assert_eq!(bu.tx.addressing.home_address, None);
    assert!(bu.flags.contains(BuFlags::A | BuFlags::H | BuFlags::R));
    assert!(!bu.flags.contains(BuFlags::F));
    assert!(
        bu.options
            .iter()
            .any(|o| matches!(o, MobilityOption::Ipv4CareOfAddress(a) if *a == V4COA))
    );
    assert!(
        !bu.options
            .iter()
            .any(|o| matches!(o, MobilityOption::AlternateCareOfAddress(_)))
    );
    // IPv4 MNPs as over IPv6 (IPv4 HoA option, P=1), MNP option, MN-HA auth last.
    assert!(
        bu.options
            .iter()
            .any(|o| matches!(o, MobilityOption::Ipv4HomeAddress { p: true, .. }))
    );
    assert!(matches!(
        bu.options.last(),
        Some(MobilityOption::Authentication { .. })
    ));
    // MAC over the IPv4-mapped CoA (proto::auth convention).
    assert!(auth::verify(&bu.tx.mh, IpAddr::V4(V4COA), &hoa(), KEY).unwrap());
    // The whole packet walks as a BU from the HoA.
    let pkt = bu.tx.to_packet();
    let Walk::Mobility(p) = walk(&pkt).unwrap() else {
        panic!()
    };
    assert_eq!(p.src_addr, hoa());
    assert_eq!(p.home_address, None);
}

#[test]
fn no_nat_means_plain_ip_in_ipv4_and_no_keepalive() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(v4_cfg()).unwrap();
    let (_, b) = registered_v4(&mut mr, t0, Some(nat_opt(false, u32::MAX)));
    assert_eq!(
        b.coa,
        CareOf::V4 {
            addr: V4COA,
            udp_port: None
        }
    );
    assert_eq!(b.encapsulation, proto::model::Encapsulation::InIpv4);
    assert!(!b.nat_detected);
    assert_eq!(b.ha_v4, Some(HA_V4));
    assert_eq!(b.mnp_v4, vec![mnp4()]);
    // Refresh as usual: 400 s - 16 s.
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 384_000)));
}

#[test]
fn nat_means_udp_and_keepalives_at_the_refresh_time() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(v4_cfg()).unwrap();
    let (bu, b) = registered_v4(&mut mr, t0, Some(nat_opt(true, 20)));
    assert_eq!(
        b.coa,
        CareOf::V4 {
            addr: V4COA,
            udp_port: Some(40123)
        }
    );
    assert_eq!(
        b.encapsulation,
        proto::model::Encapsulation::UdpIpv4 { ha_port: 4191 }
    );
    assert!(b.nat_detected);
    // Keepalive = the BU again, 20 s after the last one left.
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 20_000)));
    mr.handle_timeout(ms(t0, 19_999));
    assert!(mr.poll_transmit().is_none());
    mr.handle_timeout(ms(t0, 20_000));
    let ka = next_bu(&mut mr);
    assert_eq!(ka.seq, bu.seq + 1);
    assert!(ka.tx.udp_v4.is_some());
    deliver(
        &mut mr,
        ms(t0, 20_050),
        &ba_v4(
            Ba::ok(&ka).opt(v4_ack(0, mnp4())).opt(nat_opt(true, 20)),
            V4COA,
        ),
    );
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 40_000)));
}

#[test]
fn refresh_zero_or_missing_option_means_udp_with_natkatimeout() {
    for nat in [Some(nat_opt(false, 0)), Some(nat_opt(true, 0)), None] {
        let t0 = Instant::now();
        let mut mr = MrCore::new(v4_cfg()).unwrap();
        let (_, b) = registered_v4(&mut mr, t0, nat);
        assert_eq!(
            b.encapsulation,
            proto::model::Encapsulation::UdpIpv4 { ha_port: 4191 },
            "{nat:?}"
        );
        assert_eq!(mr.poll_timeout(), Some(ms(t0, 110_000)), "{nat:?}");
    }
}

#[test]
fn f_with_infinite_refresh_means_udp_without_keepalive() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(v4_cfg()).unwrap();
    let (_, b) = registered_v4(&mut mr, t0, Some(nat_opt(true, u32::MAX)));
    assert_eq!(
        b.encapsulation,
        proto::model::Encapsulation::UdpIpv4 { ha_port: 4191 }
    );
    assert!(!b.nat_detected);
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 384_000)));
}

#[test]
fn forced_udp_sets_f_and_wins_over_the_ba() {
    let t0 = Instant::now();
    let mut c = v4_cfg();
    c.force_udp = true;
    let mut mr = MrCore::new(c).unwrap();
    let (bu, b) = registered_v4(&mut mr, t0, Some(nat_opt(false, u32::MAX)));
    assert!(bu.flags.contains(BuFlags::F));
    assert!(b.flags.contains(BuFlags::F));
    assert_eq!(
        b.encapsulation,
        proto::model::Encapsulation::UdpIpv4 { ha_port: 4191 }
    );
    // F is never set from an IPv6 CoA.
    mr.handle_md_info(ms(t0, 1000), &rereg(coa1()));
    let bu = next_bu(&mut mr);
    assert!(!bu.flags.contains(BuFlags::F));
    assert!(bu.tx.udp_v4.is_none());
}

#[test]
fn configured_keepalive_interval_is_shorter() {
    let t0 = Instant::now();
    let mut c = v4_cfg();
    c.nat_keepalive_interval = Some(Duration::from_secs(3));
    let mut mr = MrCore::new(c).unwrap();
    registered_v4(&mut mr, t0, Some(nat_opt(true, 110)));
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 3_000)));
    mr.handle_timeout(ms(t0, 3_000));
    assert!(next_bu(&mut mr).tx.udp_v4.is_some());
    // Without UDP the interval does not apply.
    let t0 = Instant::now();
    let mut c = v4_cfg();
    c.nat_keepalive_interval = Some(Duration::from_secs(3));
    let mut mr = MrCore::new(c).unwrap();
    registered_v4(&mut mr, t0, Some(nat_opt(false, u32::MAX)));
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 384_000)));
}

#[test]
fn switch_v6_to_v4_and_back() {
    let t0 = Instant::now();
    let mut c = v4_cfg();
    c.security = None;
    let mut mr = MrCore::new(c).unwrap();
    registered(&mut mr, t0);
    events(&mut mr);
    // IPv6 -> IPv4 (NAT).
    mr.handle_md_info(ms(t0, 1000), &rereg_v4(V4COA));
    let bu = next_bu(&mut mr);
    assert!(bu.tx.udp_v4.is_some());
    let ba = Ba::ok(&bu)
        .opt(v4_ack(0, mnp4()))
        .opt(nat_opt(true, 30))
        .packet(hoa());
    deliver(&mut mr, ms(t0, 1100), &ba);
    let evs = events(&mut mr);
    let b = bul_add(&evs).unwrap().0;
    assert!(matches!(b.coa, CareOf::V4 { addr, udp_port: Some(_) } if addr == V4COA));
    // IPv4 -> IPv6: a plain BU with HAO and Alternate CoA, BUL_ADD back to InIpv6.
    mr.handle_md_info(ms(t0, 2000), &rereg(coa2()));
    let bu = next_bu(&mut mr);
    assert!(bu.tx.udp_v4.is_none());
    assert_eq!(bu.tx.addressing.src_addr, coa2());
    assert_eq!(bu.tx.addressing.home_address, Some(hoa()));
    assert!(
        !bu.options
            .iter()
            .any(|o| matches!(o, MobilityOption::Ipv4CareOfAddress(_)))
    );
    deliver(
        &mut mr,
        ms(t0, 2100),
        &Ba::ok(&bu).opt(v4_ack(0, mnp4())).packet(coa2()),
    );
    let evs = events(&mut mr);
    let b = bul_add(&evs).unwrap().0;
    assert_eq!(b.coa, CareOf::V6(coa2()));
    assert_eq!(b.encapsulation, proto::model::Encapsulation::InIpv6);
    // Refresh back on the lifetime schedule (no NAT keepalive).
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 2000 + 384_000)));
}

#[test]
fn ipv6_coa_preferred_and_ipv4_needs_the_ha_ipv4_address() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(v4_cfg()).unwrap();
    let md = MdInfo {
        coa2: Some(CareOf::V6(coa1())),
        ..rereg_v4(V4COA)
    };
    mr.handle_md_info(t0, &md);
    assert!(next_bu(&mut mr).tx.udp_v4.is_none());
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg_v4(V4COA));
    assert!(mr.poll_transmit().is_none());
}

#[test]
fn ipv6_registration_without_ba_falls_back_to_the_ipv4_coa_after_three_bus() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(v4_cfg()).unwrap();
    let md = MdInfo {
        coa2: Some(CareOf::V4 {
            addr: V4COA,
            udp_port: None,
        }),
        ..rereg(coa1())
    };
    mr.handle_md_info(t0, &md);
    let mut t = t0;
    for _ in 0..3 {
        let bu = next_bu(&mut mr);
        assert!(bu.tx.udp_v4.is_none());
        t = mr.poll_timeout().unwrap();
        mr.handle_timeout(t);
    }
    // The 4th BU goes from the IPv4 CoA, in UDP, a fresh transaction.
    let bu = next_bu(&mut mr);
    assert!(bu.tx.udp_v4.is_some());
    assert!(
        bu.options
            .iter()
            .any(|o| matches!(o, MobilityOption::Ipv4CareOfAddress(a) if *a == V4COA))
    );
    deliver(
        &mut mr,
        t + Duration::from_millis(50),
        &ba_v4(
            Ba::ok(&bu).opt(v4_ack(0, mnp4())).opt(nat_opt(true, 30)),
            V4COA,
        ),
    );
    let evs = events(&mut mr);
    assert!(matches!(
        bul_add(&evs).unwrap().0.coa,
        CareOf::V4 { addr, .. } if addr == V4COA
    ));
    // Without an IPv4 alternative nothing changes.
    let mut mr = MrCore::new(v4_cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    for _ in 0..5 {
        assert!(next_bu(&mut mr).tx.udp_v4.is_none());
        let t = mr.poll_timeout().unwrap();
        mr.handle_timeout(t);
    }
}

// ---------- care-of addresses from the bus (RFC 6275 §9.5.1, issue 17) ----------

#[test]
fn unusable_care_of_addresses_from_the_bus_send_no_bu() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(v4_cfg()).unwrap();
    let v6 = [
        "ff02::1",
        "::",
        "::1",
        "fe80::5",
        "::ffff:10.0.0.5",
        // The home agent's address, and our own mobile network prefix.
        "2001:db8:1::1",
        "2001:db8:100:1::5",
    ];
    for coa in v6 {
        mr.handle_md_info(t0, &rereg(coa.parse().unwrap()));
        assert!(mr.poll_transmit().is_none(), "{coa}");
    }
    let v4 = [
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(127, 1, 2, 3),
        Ipv4Addr::new(224, 0, 0, 1),
        Ipv4Addr::new(239, 1, 1, 1),
        Ipv4Addr::new(169, 254, 0, 9),
        Ipv4Addr::new(240, 0, 0, 1),
        HA_V4,
        // Inside our own 192.0.2.0/24.
        Ipv4Addr::new(192, 0, 2, 9),
    ];
    for addr in v4 {
        mr.handle_md_info(t0, &rereg_v4(addr));
        assert!(mr.poll_transmit().is_none(), "{addr}");
    }
    assert!(events(&mut mr).is_empty());
    assert!(matches!(mr.state(), RegistrationState::Idle));
    // A usable address still registers.
    mr.handle_md_info(t0, &rereg(coa1()));
    assert_eq!(next_bu(&mut mr).tx.addressing.src_addr, coa1());
}

#[test]
fn a_refused_care_of_address_leaves_the_binding_alone() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    registered(&mut mr, t0);
    events(&mut mr);
    mr.handle_md_info(ms(t0, 200), &rereg("ff02::1".parse().unwrap()));
    assert!(mr.poll_transmit().is_none());
    assert!(events(&mut mr).is_empty());
    assert_eq!(mr.binding().map(|b| b.coa), Some(CareOf::V6(coa1())));
    // The home address itself is the way home, not a refused care-of address.
    mr.handle_md_info(ms(t0, 300), &rereg(hoa()));
    let bu = next_bu(&mut mr);
    assert_eq!(bu.lifetime, Lifetime::ZERO);
}

#[test]
fn the_other_care_of_address_of_the_pair_stands_in_for_a_refused_one() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(v4_cfg()).unwrap();
    // A link-local IPv6 CoA beside a usable IPv4 one: the IPv4 one is registered.
    let md = MdInfo {
        coa: Some(CareOf::V6("fe80::5".parse().unwrap())),
        coa2: Some(CareOf::V4 {
            addr: V4COA,
            udp_port: None,
        }),
        ..rereg(coa1())
    };
    mr.handle_md_info(t0, &md);
    let bu = next_bu(&mut mr);
    assert!(bu.tx.udp_v4.is_some());
    // A usable IPv6 CoA beside a broadcast IPv4 one: no IPv4 fallback is kept.
    let mut mr = MrCore::new(v4_cfg()).unwrap();
    let md = MdInfo {
        coa2: Some(CareOf::V4 {
            addr: Ipv4Addr::BROADCAST,
            udp_port: None,
        }),
        ..rereg(coa1())
    };
    mr.handle_md_info(t0, &md);
    let mut t = t0;
    for _ in 0..5 {
        assert!(next_bu(&mut mr).tx.udp_v4.is_none());
        t = mr.poll_timeout().unwrap();
        mr.handle_timeout(t);
    }
    assert!(t > t0);
}

/// RFC 6275 §11.5.5: the de-registration from home, once acknowledged (or answered 133,
/// the HA holding nothing), tells the shell to announce the home address on the home
/// link; a de-registration from a care-of address does not.
#[test]
fn home_advertise_after_deregistering_from_home() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    registered(&mut mr, t0);
    events(&mut mr);
    mr.handle_md_info(ms(t0, 1000), &md(MdCommand::Dereghome));
    let bu = next_bu(&mut mr);
    deliver(&mut mr, ms(t0, 1100), &Ba::ok(&bu).packet(hoa()));
    let evs = events(&mut mr);
    assert!(evs.iter().any(is_remove));
    assert!(
        evs.contains(&MrEvent::HomeAdvertise { hoa: hoa() }),
        "{evs:?}"
    );
    // From a care-of address: no announcement.
    let mut mr = MrCore::new(cfg()).unwrap();
    registered(&mut mr, t0);
    events(&mut mr);
    mr.deregister(ms(t0, 1000));
    let bu = next_bu(&mut mr);
    deliver(&mut mr, ms(t0, 1100), &Ba::ok(&bu).packet(coa1()));
    assert!(
        !events(&mut mr)
            .iter()
            .any(|e| matches!(e, MrEvent::HomeAdvertise { .. }))
    );
}

/// RFC 6275 §11.7.1: with a link-local address sharing the home address's interface
/// identifier, home registrations carry L (de-registrations too).
#[test]
fn l_flag_when_the_link_local_shares_the_interface_identifier() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.link_local_compat = true;
    let mut mr = MrCore::new(c).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    assert!(bu.flags.link_local_compat(), "{:?}", bu.flags);
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    assert!(!next_bu(&mut mr).flags.link_local_compat());
}

/// The counters the shell exports: BUs sent and retransmitted, a registration and the time
/// its transaction took, a refusal and its status, a move.
#[test]
fn stats_count_what_happened() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let _first = next_bu(&mut mr);
    // No BA: the first timeout (1.5 s for a first registration) retransmits.
    mr.handle_timeout(ms(t0, 1500));
    let bu = next_bu(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 1520),
        &Ba::ok(&bu).opt(v4_ack(0, mnp4())).packet(coa1()),
    );
    let s = mr.stats().clone();
    assert_eq!((s.bu_sent, s.bu_retransmitted), (2, 1));
    assert_eq!((s.registrations, s.moves), (1, 1));
    assert_eq!(s.last_registration_us, 1_520_000);
    // A move refused with 142 (not authorised for the prefix): counted, status kept.
    mr.handle_md_info(ms(t0, 5000), &rereg(coa2()));
    let bu = next_bu(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 5010),
        &Ba::ok(&bu).status(142).packet(coa2()),
    );
    let s = mr.stats();
    assert_eq!((s.moves, s.refused, s.last_refusal), (2, 1, Some(142)));
}

fn ha2() -> Ipv6Addr {
    "2001:db8:1::2".parse().unwrap()
}

fn discovering() -> MrCore {
    let mut c = cfg();
    c.home_agent = Ipv6Addr::UNSPECIFIED;
    MrCore::new(c).unwrap()
}

/// The Request in a discovery transmit: (source, destination, identifier, R, ifindex).
fn haad_request(tx: &IcmpTransmit) -> (Ipv6Addr, Ipv6Addr, u16, bool, u32) {
    let ip = proto::ext::Ipv6Header::new_checked(&tx.packet[..]).unwrap();
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let icmp = &tx.packet[40..];
    assert!(proto::icmpv6::Icmpv6Packet::new_unchecked(icmp).verify_checksum(&src, &dst));
    let proto::icmpv6::Icmpv6Repr::HaadRequest(r) =
        proto::icmpv6::Icmpv6Repr::parse_bytes(icmp).unwrap()
    else {
        panic!("not a request")
    };
    (src, dst, r.identifier, r.flags.mobile_router(), tx.ifindex)
}

fn haad_reply(identifier: u16, r: bool, list: &[Ipv6Addr]) -> proto::icmpv6::HaadReply {
    let mut flags = proto::icmpv6::HaadFlags::empty();
    flags.set(proto::icmpv6::HaadFlags::R, r);
    proto::icmpv6::HaadReply {
        identifier,
        flags,
        home_agents: list.to_vec(),
    }
}

/// RFC 6275 §11.4.1, §12: with no home agent configured, a new care-of address starts
/// discovery: Requests from it (R set, RFC 3963 §7.1) to the Home-Agents anycast address
/// of the home prefix, 3 s then doubling, DHAAD_RETRIES retransmissions, then a pause; no
/// BU before a Reply.
#[test]
fn discovery_requests_and_their_timers() {
    let t0 = Instant::now();
    let mut mr = discovering();
    assert!(mr.discovers_home_agent());
    mr.handle_md_info(t0, &rereg(coa1()));
    assert!(mr.poll_transmit().is_none(), "no BU without a home agent");
    let anycast: Ipv6Addr = "2001:db8:1:0:fdff:ffff:ffff:fffe".parse().unwrap();
    let first = haad_request(&mr.poll_icmp_transmit().expect("request"));
    assert_eq!(
        (first.0, first.1, first.3, first.4),
        (coa1(), anycast, true, 3)
    );
    let mut t = t0;
    for gap in [3u64, 6, 12, 24] {
        assert_eq!(mr.poll_timeout(), Some(t + Duration::from_secs(gap)));
        t += Duration::from_secs(gap);
        mr.handle_timeout(t);
        let r = haad_request(&mr.poll_icmp_transmit().expect("retransmission"));
        assert_eq!(r.2, first.2, "same identifier within a round");
    }
    // The fourth retransmission waits 48 s, then a pause of a minute and a new round.
    t += Duration::from_secs(48);
    mr.handle_timeout(t);
    assert!(mr.poll_icmp_transmit().is_none());
    assert_eq!(mr.poll_timeout(), Some(t + DHAAD_ROUND_PAUSE));
    t += DHAAD_ROUND_PAUSE;
    mr.handle_timeout(t);
    assert!(mr.poll_icmp_transmit().is_some());
    assert_eq!(mr.stats().dhaad_requests, 6);
    assert!(mr.poll_transmit().is_none());
}

/// A Reply with R lists home agents serving mobile routers: the router registers with the
/// first; one for another request, or without R, changes nothing.
#[test]
fn discovery_reply_starts_the_registration() {
    let t0 = Instant::now();
    let mut mr = discovering();
    mr.handle_md_info(t0, &rereg(coa1()));
    let id = haad_request(&mr.poll_icmp_transmit().unwrap()).2;
    mr.handle_haad_reply(
        ms(t0, 10),
        ha(),
        &haad_reply(id.wrapping_add(1), true, &[ha()]),
    );
    mr.handle_haad_reply(ms(t0, 10), ha(), &haad_reply(id, false, &[ha()]));
    assert!(mr.poll_transmit().is_none());
    assert!(mr.home_agent().is_unspecified());
    mr.handle_haad_reply(ms(t0, 20), ha(), &haad_reply(id, true, &[ha(), ha2()]));
    assert_eq!(mr.home_agent(), ha());
    assert_eq!(mr.discovered_home_agents(), &[ha2()]);
    let bu = next_bu(&mut mr);
    assert_eq!(bu.tx.addressing.dst_addr, ha());
    assert_eq!(bu.tx.addressing.src_addr, coa1());
    deliver(
        &mut mr,
        ms(t0, 50),
        &Ba::ok(&bu).opt(v4_ack(0, mnp4())).packet(coa1()),
    );
    assert!(matches!(mr.state(), RegistrationState::Registered { .. }));
    // Discovery is over: no more Requests, and a move registers directly.
    mr.handle_timeout(ms(t0, 10_000));
    assert!(mr.poll_icmp_transmit().is_none());
    mr.handle_md_info(ms(t0, 20_000), &rereg(coa2()));
    assert_eq!(next_bu(&mut mr).tx.addressing.dst_addr, ha());
    assert!(mr.poll_icmp_transmit().is_none());
}

/// RFC 3963 §7.1: a discovered home agent refusing the router for good (here 140, not a
/// home agent for mobile routers after all) sends it to the next one listed; when none is
/// left, the refusal stops the router as with a configured home agent.
#[test]
fn a_refusing_discovered_home_agent_makes_way_for_the_next() {
    let t0 = Instant::now();
    let mut mr = discovering();
    mr.handle_md_info(t0, &rereg(coa1()));
    let id = haad_request(&mr.poll_icmp_transmit().unwrap()).2;
    mr.handle_haad_reply(t0, ha(), &haad_reply(id, true, &[ha(), ha2()]));
    let bu = next_bu(&mut mr);
    deliver(&mut mr, ms(t0, 30), &Ba::ok(&bu).status(140).packet(coa1()));
    assert_eq!(mr.home_agent(), ha2());
    let bu2 = next_bu(&mut mr);
    assert_eq!(bu2.tx.addressing.dst_addr, ha2());
    assert!(!matches!(mr.state(), RegistrationState::Stopped(_)));
    // The second refuses too: nobody left, stopped.
    assert_eq!(mr.discovered_home_agents(), &[] as &[Ipv6Addr]);
    deliver(
        &mut mr,
        ms(t0, 60),
        &Ba::ok(&bu2).status(142).packet_from(ha2(), coa1()),
    );
    assert!(matches!(mr.state(), RegistrationState::Stopped(_)));
}

/// A mobile host (SHISA's mnd, RFC 6275): BUs without R and without prefix options; a BA
/// without R is the expected answer, not a home agent without NEMO (RFC 3963 §5.3 is for
/// routers); DHAAD asks without R.
#[test]
fn a_mobile_host_registers_without_r_or_prefixes() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.mobile_router = false;
    assert_eq!(
        MrCore::new(c.clone()).unwrap_err(),
        ConfigError::PrefixesOnAMobileHost
    );
    c.mnp_v6.clear();
    c.mnp_v4.clear();
    let mut mr = MrCore::new(c.clone()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    assert!(!bu.flags.mobile_router() && bu.flags.home_registration());
    assert!(!bu.options.iter().any(|o| matches!(
        o,
        MobilityOption::MobileNetworkPrefix { .. } | MobilityOption::Ipv4HomeAddress { .. }
    )));
    let mut ba = Ba::ok(&bu);
    ba.r = false;
    deliver(&mut mr, ms(t0, 50), &ba.packet(coa1()));
    assert!(matches!(mr.state(), RegistrationState::Registered { .. }));
    assert!(mr.poll_transmit().is_none(), "no deregistration");
    // Discovery without R.
    c.home_agent = Ipv6Addr::UNSPECIFIED;
    let mut mr = MrCore::new(c).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let (_, _, id, r, _) = haad_request(&mr.poll_icmp_transmit().unwrap());
    assert!(!r);
    mr.handle_haad_reply(t0, ha(), &haad_reply(id, false, &[ha()]));
    assert!(!next_bu(&mut mr).flags.mobile_router());
}

/// The Solicitation in a transmit: (source, destination, home address option, identifier).
fn mps_of(tx: &IcmpTransmit) -> (Ipv6Addr, Ipv6Addr, Option<Ipv6Addr>, u16) {
    let Walk::Other(p) = walk(&tx.packet).unwrap() else {
        panic!("not ICMPv6")
    };
    assert_eq!(p.upper_layer, 58);
    assert!(
        p.verify_checksum().is_ok(),
        "checksum over the home address"
    );
    let proto::icmpv6::Icmpv6Repr::MobilePrefixSolicitation(m) =
        proto::icmpv6::Icmpv6Repr::parse_bytes(p.payload).unwrap()
    else {
        panic!("not an MPS")
    };
    (p.src_addr, p.dst_addr, p.home_address, m.identifier)
}

fn mpa(identifier: u16, valid: u32) -> proto::icmpv6::MobilePrefixAdvertisement<'static> {
    use proto::icmpv6::{NdOption, PrefixFlags, PrefixInformation};
    proto::icmpv6::MobilePrefixAdvertisement {
        identifier,
        flags: proto::icmpv6::MpaFlags::empty(),
        options: vec![NdOption::PrefixInformation(PrefixInformation {
            prefix_len: 64,
            flags: PrefixFlags::L | PrefixFlags::A,
            valid_lifetime: valid,
            preferred_lifetime: valid / 2,
            prefix: "2001:db8:1::".parse().unwrap(),
        })],
    }
}

/// RFC 6275 §11.4.2-§11.4.3, §11.7.1: a BA with status 1 makes the router solicit the
/// home prefixes (HAO, from the care-of address, 3 s doubling); the advertisement's valid
/// lifetime caps the next BUs' lifetime and brings the next solicitation before it ends;
/// advertisements from anyone but the home agent change nothing.
#[test]
fn mobile_prefix_discovery_caps_the_binding_lifetime() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    assert!(
        mr.poll_icmp_transmit().is_none(),
        "nothing asked unprompted"
    );
    deliver(
        &mut mr,
        ms(t0, 50),
        &Ba::ok(&bu).status(1).opt(v4_ack(0, mnp4())).packet(coa1()),
    );
    assert!(matches!(mr.state(), RegistrationState::Registered { .. }));
    let (src, dst, hao, id) = mps_of(&mr.poll_icmp_transmit().expect("solicitation"));
    assert_eq!((src, dst, hao), (coa1(), ha(), Some(hoa())));
    // Unanswered: again 3 s later, with the same identifier.
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 3050)));
    mr.handle_timeout(ms(t0, 3050));
    assert_eq!(mps_of(&mr.poll_icmp_transmit().unwrap()).3, id);
    // Not from our home agent: ignored.
    mr.handle_mobile_prefix_advertisement(ms(t0, 3100), ha2(), &mpa(id, 300));
    assert_eq!(mr.home_prefix_valid_left(ms(t0, 3100)), None);
    // From it: 300 s valid.
    mr.handle_mobile_prefix_advertisement(ms(t0, 3100), ha(), &mpa(id, 300));
    assert_eq!(
        mr.home_prefix_valid_left(ms(t0, 3100)),
        Some(Duration::from_secs(300))
    );
    assert_eq!(mr.stats().mpa_received, 1);
    // No more retransmissions of that solicitation.
    mr.handle_timeout(ms(t0, 9100));
    assert!(mr.poll_icmp_transmit().is_none());
    // A move: the BU asks for 300 - 10 s at most, not the configured 400.
    mr.handle_md_info(ms(t0, 13_100), &rereg(coa2()));
    let bu = next_bu(&mut mr);
    assert_eq!(bu.lifetime, Lifetime::from_secs(290));
    // Before the 300 s end (half-way for a lifetime this short) the router asks again.
    deliver(
        &mut mr,
        ms(t0, 13_150),
        &Ba::ok(&bu).opt(v4_ack(0, mnp4())).packet(coa2()),
    );
    mr.handle_timeout(ms(t0, 153_100));
    let (src, _, _, id2) = mps_of(
        &mr.poll_icmp_transmit()
            .expect("solicitation before the end"),
    );
    assert_eq!(src, coa2());
    assert_ne!(id2, id);
    assert_eq!(mr.stats().mps_sent, 3);
}

/// RFC 3963 §5.3, §7.1: a discovered home agent that accepts without R does no NEMO: the
/// router de-registers from it, then registers with the next one discovery listed.
#[test]
fn a_discovered_home_agent_without_nemo_is_left_for_the_next() {
    let t0 = Instant::now();
    let mut mr = discovering();
    mr.handle_md_info(t0, &rereg(coa1()));
    let id = haad_request(&mr.poll_icmp_transmit().unwrap()).2;
    mr.handle_haad_reply(t0, ha(), &haad_reply(id, true, &[ha(), ha2()]));
    let bu = next_bu(&mut mr);
    let mut ba = Ba::ok(&bu);
    ba.r = false;
    deliver(&mut mr, ms(t0, 30), &ba.packet(coa1()));
    let dereg = next_bu(&mut mr);
    assert_eq!(dereg.lifetime, Lifetime::ZERO);
    assert_eq!(dereg.tx.addressing.dst_addr, ha());
    assert!(!matches!(mr.state(), RegistrationState::Stopped(_)));
    let mut ack = Ba::ok(&dereg);
    ack.r = false;
    deliver(&mut mr, ms(t0, 60), &ack.packet(coa1()));
    mr.handle_timeout(ms(t0, 60));
    let next = next_bu(&mut mr);
    assert_eq!(next.tx.addressing.dst_addr, ha2());
    assert!(next.flags.mobile_router() && !next.lifetime.is_zero());
    // With a configured home agent the same BA stops the router (nothing to move to).
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    let mut ba = Ba::ok(&bu);
    ba.r = false;
    deliver(&mut mr, ms(t0, 30), &ba.packet(coa1()));
    assert_eq!(next_bu(&mut mr).lifetime, Lifetime::ZERO);
}

/// RFC 6275 §11.4.1: a discovered home agent refusing by policy (129) or for lack of
/// resources (130) makes way for the next one; a configured one is retried as before.
#[test]
fn a_discovered_home_agent_refusing_129_makes_way_for_the_next() {
    let t0 = Instant::now();
    let mut mr = discovering();
    mr.handle_md_info(t0, &rereg(coa1()));
    let id = haad_request(&mr.poll_icmp_transmit().unwrap()).2;
    mr.handle_haad_reply(t0, ha(), &haad_reply(id, true, &[ha(), ha2()]));
    let bu = next_bu(&mut mr);
    deliver(&mut mr, ms(t0, 30), &Ba::ok(&bu).status(129).packet(coa1()));
    assert_eq!(next_bu(&mut mr).tx.addressing.dst_addr, ha2());
    // Configured: 129 is retried with back-off at the same home agent.
    let mut mr = MrCore::new(cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    deliver(&mut mr, ms(t0, 30), &Ba::ok(&bu).status(129).packet(coa1()));
    assert!(mr.poll_transmit().is_none());
    mr.handle_timeout(mr.poll_timeout().unwrap());
    assert_eq!(next_bu(&mut mr).tx.addressing.dst_addr, ha());
}

// ---------- Home Agent Switch (RFC 5142) ----------

fn ha3() -> Ipv6Addr {
    "2001:db8:7::1".parse().unwrap()
}

/// A Home Agent Switch from `from` to `coa1()` through an RH2, listing `list`, signed
/// with `key` (over CoA `coa1()`) when given.
fn has_packet(from: Ipv6Addr, list: &[Ipv6Addr], key: Option<&[u8]>) -> Vec<u8> {
    let mut options = Vec::new();
    if key.is_some() {
        options.push(auth::mn_ha_option(SPI));
    }
    let repr = MhRepr::HomeAgentSwitch(proto::mh::HomeAgentSwitch {
        home_agents: list.to_vec(),
        options,
    });
    let mut mh = vec![0; repr.buffer_len()];
    repr.emit_to(&mut mh).unwrap();
    if let Some(k) = key {
        auth::sign(&mut mh, IpAddr::V6(coa1()), &hoa(), k).unwrap();
    }
    wrap_from(from, &mh, coa1())
}

/// A Home Agent Switch like [`has_packet`]'s, signed, with a replay protection timestamp
/// (RFC 4285 §6) of `ts` when given.
fn has_packet_ts(from: Ipv6Addr, list: &[Ipv6Addr], ts: Option<NtpTimestamp>) -> Vec<u8> {
    let mut options = Vec::new();
    if let Some(ts) = ts {
        options.push(MobilityOption::ReplayProtection { timestamp: ts.0 });
    }
    options.push(auth::mn_ha_option(SPI));
    let repr = MhRepr::HomeAgentSwitch(proto::mh::HomeAgentSwitch {
        home_agents: list.to_vec(),
        options,
    });
    let mut mh = vec![0; repr.buffer_len()];
    repr.emit_to(&mut mh).unwrap();
    auth::sign(&mut mh, IpAddr::V6(coa1()), &hoa(), KEY).unwrap();
    wrap_from(from, &mh, coa1())
}

/// RFC 4285 §6 for the unsolicited HAS: with a timestamp SA, a signed HAS without a
/// timestamp, one outside the window, and a replay of the one already taken are dropped;
/// a fresh one moves the router. (The authenticator alone would let a captured HAS be
/// replayed for as long as the care-of address stays the same.)
#[test]
fn home_agent_switch_replays_are_dropped() {
    let t0 = Instant::now();
    let wall = Duration::from_secs(1_800_000_000);
    let mut c = cfg();
    c.security = Some(sa(true));
    let mut mr = MrCore::new(c).unwrap();
    mr.set_wall_clock(t0, wall);
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    let ts = bu
        .options
        .iter()
        .find_map(|o| match o {
            MobilityOption::ReplayProtection { timestamp } => Some(*timestamp),
            _ => None,
        })
        .unwrap();
    deliver(
        &mut mr,
        ms(t0, 10),
        &Ba::ok(&bu)
            .opt(MobilityOption::ReplayProtection { timestamp: ts })
            .opt(v4_ack(0, mnp4()))
            .signed(KEY, coa1())
            .packet(coa1()),
    );
    assert!(matches!(mr.state(), RegistrationState::Registered { .. }));
    let at = |secs: u64| NtpTimestamp::from_unix(wall + Duration::from_secs(secs));
    // No timestamp: dropped.
    deliver(&mut mr, ms(t0, 1000), &has_packet_ts(ha(), &[ha2()], None));
    // Captured an hour ago: outside the 7 s window.
    let hour_ago = NtpTimestamp::from_unix(wall - Duration::from_secs(3600));
    deliver(
        &mut mr,
        ms(t0, 1100),
        &has_packet_ts(ha(), &[ha2()], Some(hour_ago)),
    );
    assert_eq!(mr.stats().home_agent_switches, 0);
    assert_eq!(mr.stats().home_agent_switches_dropped, 2);
    assert!(mr.poll_transmit().is_none());
    // Fresh: taken (de-registration from the current home agent first).
    let fresh = has_packet_ts(ha(), &[ha2()], Some(at(2)));
    deliver(&mut mr, ms(t0, 2000), &fresh);
    assert_eq!(mr.stats().home_agent_switches, 1);
    assert_eq!(mr.state(), RegistrationState::Deregistering);
    // The same message again, within the window: not later than the last, dropped.
    deliver(&mut mr, ms(t0, 2100), &fresh);
    assert_eq!(mr.stats().home_agent_switches, 1);
    assert_eq!(mr.stats().home_agent_switches_dropped, 3);
}

/// Registered from `coa1()` with an SA (signed BA), at t0 + 10 ms.
fn registered_signed(t0: Instant) -> MrCore {
    let mut c = cfg();
    c.security = Some(sa(false));
    let mut mr = MrCore::new(c).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 10),
        &Ba::ok(&bu)
            .opt(v4_ack(0, mnp4()))
            .signed(KEY, coa1())
            .packet(coa1()),
    );
    assert!(matches!(mr.state(), RegistrationState::Registered { .. }));
    events(&mut mr);
    mr
}

/// RFC 5142 §6.1: an authenticated Home Agent Switch from our home agent: de-register
/// there, then register with the first home agent listed; the data plane hears of the
/// old binding's end and of the new one.
#[test]
fn home_agent_switch_moves_to_the_first_listed_home_agent() {
    let t0 = Instant::now();
    let mut mr = registered_signed(t0);
    deliver(
        &mut mr,
        ms(t0, 1000),
        &has_packet(ha(), &[ha(), ha2(), ha3()], Some(KEY)),
    );
    assert_eq!(mr.stats().home_agent_switches, 1);
    assert_eq!(mr.state(), RegistrationState::Deregistering);
    let dereg = next_bu(&mut mr);
    assert_eq!(dereg.tx.addressing.dst_addr, ha());
    assert!(dereg.lifetime.is_zero());
    assert!(mr.poll_transmit().is_none());
    deliver(
        &mut mr,
        ms(t0, 1010),
        &Ba::ok(&dereg).signed(KEY, coa1()).packet(coa1()),
    );
    assert!(events(&mut mr).iter().any(is_remove));
    assert_eq!(mr.home_agent(), ha2());
    // Our own home agent left out of the list; the third kept for a refusal.
    assert_eq!(mr.discovered_home_agents(), &[ha3()]);
    let bu = next_bu(&mut mr);
    assert_eq!(bu.tx.addressing.dst_addr, ha2());
    assert_eq!(bu.tx.addressing.src_addr, coa1());
    assert!(!bu.lifetime.is_zero());
    deliver(
        &mut mr,
        ms(t0, 1020),
        &Ba::ok(&bu)
            .opt(v4_ack(0, mnp4()))
            .signed(KEY, coa1())
            .packet_from(ha2(), coa1()),
    );
    assert!(matches!(mr.state(), RegistrationState::Registered { .. }));
    let evs = events(&mut mr);
    assert_eq!(bul_add(&evs).expect("BUL_ADD").0.ha, ha2());
    // A later Home Agent Switch from the old home agent is a stranger's.
    deliver(
        &mut mr,
        ms(t0, 2000),
        &has_packet(ha(), &[ha3()], Some(KEY)),
    );
    assert!(mr.poll_transmit().is_none());
    assert_eq!(mr.home_agent(), ha2());
}

/// The new home agent refuses for good: the next one listed.
#[test]
fn home_agent_switch_refused_by_the_first_tries_the_next() {
    let t0 = Instant::now();
    let mut mr = registered_signed(t0);
    deliver(
        &mut mr,
        ms(t0, 1000),
        &has_packet(ha(), &[ha2(), ha3()], Some(KEY)),
    );
    let dereg = next_bu(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 1010),
        &Ba::ok(&dereg).signed(KEY, coa1()).packet(coa1()),
    );
    let bu = next_bu(&mut mr);
    assert_eq!(bu.tx.addressing.dst_addr, ha2());
    deliver(
        &mut mr,
        ms(t0, 1020),
        &Ba::ok(&bu)
            .status(129)
            .signed(KEY, coa1())
            .packet_from(ha2(), coa1()),
    );
    assert_eq!(mr.home_agent(), ha3());
    assert_eq!(next_bu(&mut mr).tx.addressing.dst_addr, ha3());
}

/// A stranger must not move the router: unsigned, wrongly signed, from another address,
/// malformed, or with no SA to check it with, the message changes nothing.
#[test]
fn home_agent_switch_unauthenticated_or_foreign_is_ignored() {
    let t0 = Instant::now();
    let mut mr = registered_signed(t0);
    let stranger: Ipv6Addr = "2001:db8:66::6".parse().unwrap();
    let mut malformed = has_packet(ha(), &[ha2()], Some(KEY));
    // # of Addresses 3 in a message with room for one (checksum refilled by wrap).
    let mh_at = malformed.len() - 48;
    malformed[mh_at + 6] = 3;
    let mh = malformed[mh_at..].to_vec();
    let malformed = wrap(&mh, coa1());
    for pkt in [
        has_packet(ha(), &[ha2()], None),
        has_packet(ha(), &[ha2()], Some(b"not-the-key-0000")),
        has_packet(stranger, &[ha2()], Some(KEY)),
        malformed,
    ] {
        deliver(&mut mr, ms(t0, 1000), &pkt);
        assert!(mr.poll_transmit().is_none());
        assert!(mr.poll_binding_error().is_none());
        assert!(matches!(
            mr.state(),
            RegistrationState::Registered { refreshing: false }
        ));
        assert_eq!(mr.home_agent(), ha());
    }
    assert_eq!(mr.stats().home_agent_switches, 0);
    assert_eq!(mr.stats().home_agent_switches_dropped, 2);
    // Without an SA nothing can be checked: ignored as well.
    let mut mr = MrCore::new(cfg()).unwrap();
    registered(&mut mr, t0);
    deliver(&mut mr, ms(t0, 1000), &has_packet(ha(), &[ha2()], None));
    assert!(mr.poll_transmit().is_none());
    assert_eq!(mr.home_agent(), ha());
    assert_eq!(mr.stats().home_agent_switches_dropped, 1);
}

/// RFC 5142 §6.2: no home agent listed: discovery, the old home agent left out of its
/// answer.
#[test]
fn home_agent_switch_without_addresses_discovers_another() {
    let t0 = Instant::now();
    let mut mr = registered_signed(t0);
    deliver(&mut mr, ms(t0, 1000), &has_packet(ha(), &[], Some(KEY)));
    let dereg = next_bu(&mut mr);
    assert!(dereg.lifetime.is_zero());
    deliver(
        &mut mr,
        ms(t0, 1010),
        &Ba::ok(&dereg).signed(KEY, coa1()).packet(coa1()),
    );
    assert!(mr.poll_transmit().is_none());
    let (src, _, id, r, _) = haad_request(&mr.poll_icmp_transmit().expect("DHAAD request"));
    assert_eq!(src, coa1());
    assert!(r);
    mr.handle_haad_reply(ms(t0, 1020), ha(), &haad_reply(id, true, &[ha(), ha2()]));
    assert_eq!(mr.home_agent(), ha2());
    assert_eq!(next_bu(&mut mr).tx.addressing.dst_addr, ha2());
}
