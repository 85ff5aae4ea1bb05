//! The mobile router core against the home agent core, on virtual time, through real bytes:
//! every packet is built with `emit_mobility_packet` and read back with `walk`, as the
//! daemons' shells do. Loss is simulated by dropping packets in either direction.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use had::{AuthPolicy, Ha, HaCoreConfig, HaEvent, Ipv4MnpSupport, PrefixMode, PrefixTableRow};
use ipnet::{Ipv4Net, Ipv6Net};
use mipsock::{CareOf, MdCommand, MdHint, MdInfo};
use mrd::{
    Ipv4MnpOutcome, Ipv4Support, MobilitySa, MrCore, MrCoreConfig, MrEvent, RegistrationMode,
    RegistrationState, StopReason,
};
use proto::ext::{Walk, walk};
use proto::mh::{BaStatus, MhRepr};
use proto::option::{Ipv4AckStatus, MobilityOption, ParseConfig};
use proto::seq::{Lifetime, SequenceNumber};

const KEY: &[u8] = b"mr1-ha-shared-key";
const SPI: u32 = 0x2001;
const NAI: &str = "mr1@example.net";

fn hoa() -> Ipv6Addr {
    "2001:db8:1::100".parse().unwrap()
}
fn ha_addr() -> Ipv6Addr {
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

fn mr_config() -> MrCoreConfig {
    let mut c = MrCoreConfig::new(hoa(), ha_addr());
    c.mnp_v6 = vec![mnp6()];
    c.mnp_v4 = vec![mnp4()];
    c.lifetime = Lifetime::from_secs(400);
    c.initial_sequence = SequenceNumber(1000);
    c.security = Some(MobilitySa {
        spi: SPI,
        key: KEY.to_vec(),
        nai: Some(NAI.as_bytes().to_vec()),
        hoa: None,
        replay: Default::default(),
    });
    c
}

fn ha_config() -> HaCoreConfig {
    let mut c = HaCoreConfig::new(vec!["2001:db8:1::/64".parse().unwrap()], ha_addr());
    c.home_ifindex = 2;
    c.max_lifetime = Duration::from_secs(3600);
    c.prefix_table = vec![
        PrefixTableRow {
            hoa: hoa(),
            prefix: mnp6().into(),
            mode: PrefixMode::Explicit,
        },
        PrefixTableRow {
            hoa: hoa(),
            prefix: mnp4().into(),
            mode: PrefixMode::Explicit,
        },
    ];
    c.auth = AuthPolicy::Required(vec![had::MobilitySa {
        spi: SPI,
        key: KEY.to_vec(),
        hoa: Some(hoa()),
        nai: Some(NAI.as_bytes().to_vec()),
        replay: had::ReplayProtection::default(),
    }]);
    c
}

fn rereg(coa: Ipv6Addr) -> MdInfo {
    MdInfo {
        command: MdCommand::Rereg,
        hint: MdHint::Addr,
        hoa: Some(hoa()),
        coa: Some(CareOf::V6(coa)),
        coa2: None,
        ifindex: 7,
        uplinks: Vec::new(),
    }
}

fn dereg_home() -> MdInfo {
    MdInfo {
        command: MdCommand::Dereghome,
        hint: MdHint::Home,
        hoa: Some(hoa()),
        coa: None,
        coa2: None,
        ifindex: 0,
        uplinks: Vec::new(),
    }
}

/// One packet seen on the virtual link.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// A BU left the MR: time since start (ms), sequence, lifetime units, dropped.
    Bu {
        at_ms: u64,
        seq: u16,
        lifetime: u16,
        dropped: bool,
    },
    /// A BA left the HA: time (ms), status, sequence, dropped.
    Ba {
        at_ms: u64,
        status: u8,
        seq: u16,
        dropped: bool,
    },
    /// Anything else the HA sent (BRR, BE): time (ms), MH type.
    Other { at_ms: u64, mh_type: u8 },
}

fn cyclic(pattern: &[bool], n: usize) -> bool {
    !pattern.is_empty() && pattern[n % pattern.len()]
}

/// The MR and HA cores joined by a lossy zero-latency link, on one virtual clock.
struct Pair {
    mr: MrCore,
    ha: Ha,
    /// Start of the test.
    t0: Instant,
    /// Virtual now.
    clock: Instant,
    /// Wall clock at `t0` (RFC 4285 timestamps on both sides).
    wall0: Duration,
    /// Drop the next MR→HA packets while this counter is non-zero.
    drop_up: u32,
    /// Drop the next HA→MR packets while this counter is non-zero.
    drop_down: u32,
    /// Drop every MR→HA packet (the MR has gone silent).
    mr_silent: bool,
    /// Cyclic loss patterns (true = drop), indexed by the packet count in each direction.
    up_pattern: Vec<bool>,
    down_pattern: Vec<bool>,
    up_count: usize,
    down_count: usize,
    seen: Vec<Seen>,
    mr_events: VecDeque<MrEvent>,
    ha_events: VecDeque<HaEvent>,
    /// A NAT in front of the MR's IPv4 care-of addresses: the outer source the home agent
    /// sees for UDP/IPv4 signalling from each (one port per care-of address).
    nat: Option<Ipv4Addr>,
}

impl Pair {
    fn new(mr_cfg: MrCoreConfig, ha_cfg: HaCoreConfig) -> Pair {
        let t0 = Instant::now();
        let wall0 = Duration::from_secs(1_800_000_000);
        let mut mr = MrCore::new(mr_cfg).unwrap();
        mr.set_wall_clock(t0, wall0);
        Pair {
            mr,
            ha: Ha::new(ha_cfg).unwrap(),
            t0,
            clock: t0,
            wall0,
            drop_up: 0,
            drop_down: 0,
            mr_silent: false,
            up_pattern: Vec::new(),
            down_pattern: Vec::new(),
            up_count: 0,
            down_count: 0,
            seen: Vec::new(),
            mr_events: VecDeque::new(),
            ha_events: VecDeque::new(),
            nat: None,
        }
    }

    /// The home agent's side of a BU sent in UDP/IPv4 from `from` to `to` (RFC 5555 §4.1):
    /// through the NAT when there is one.
    fn udp_path(&self, from: Ipv4Addr, to: SocketAddrV4) -> had::UdpV4Path {
        let peer = match self.nat {
            Some(public) => SocketAddrV4::new(public, 40000 + u16::from(from.octets()[3])),
            None => SocketAddrV4::new(from, proto::DSMIP_UDP_PORT),
        };
        had::UdpV4Path { peer, local: to }
    }

    fn wall(&self) -> Duration {
        self.wall0 + (self.clock - self.t0)
    }

    fn ms(&self) -> u64 {
        (self.clock - self.t0).as_millis() as u64
    }

    fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    fn md_info(&mut self, md: &MdInfo) {
        let now = self.clock;
        self.mr.handle_md_info(now, md);
        self.exchange();
    }

    /// Moves packets until both sides are quiet at the current instant.
    fn exchange(&mut self) {
        loop {
            let mut moved = false;
            while let Some(tx) = self.mr.poll_transmit() {
                moved = true;
                let pkt = tx.to_packet();
                let dropped =
                    self.mr_silent || self.drop_up > 0 || cyclic(&self.up_pattern, self.up_count);
                self.drop_up = self.drop_up.saturating_sub(1);
                self.up_count += 1;
                self.seen.push(Seen::Bu {
                    at_ms: self.ms(),
                    seq: tx.sequence.0,
                    lifetime: tx.lifetime.0,
                    dropped,
                });
                if dropped {
                    continue;
                }
                let Walk::Mobility(p) = walk(&pkt).expect("BU walks") else {
                    panic!("BU is not a Mobility Header packet")
                };
                let mut sig = had::ReceivedSignal::from_walk(&p, 1);
                if let (Some(to), Some(from)) = (tx.udp_v4, tx.udp_from) {
                    sig.udp_v4 = Some(self.udp_path(from, to));
                }
                let (now, wall) = (self.clock, self.wall());
                self.ha.handle_packet(now, wall, &sig);
            }
            while let Some(tx) = self.ha.poll_transmit() {
                moved = true;
                let pkt = tx.to_ipv6_packet();
                let dropped = self.drop_down > 0 || cyclic(&self.down_pattern, self.down_count);
                self.drop_down = self.drop_down.saturating_sub(1);
                self.down_count += 1;
                match tx.repr().expect("HA MH parses") {
                    MhRepr::BindingAck(ba) => self.seen.push(Seen::Ba {
                        at_ms: self.ms(),
                        status: ba.status.into(),
                        seq: ba.sequence.0,
                        dropped,
                    }),
                    other => self.seen.push(Seen::Other {
                        at_ms: self.ms(),
                        mh_type: other.mh_type().into(),
                    }),
                }
                if dropped {
                    continue;
                }
                let Walk::Mobility(p) = walk(&pkt).expect("BA walks") else {
                    panic!("BA is not a Mobility Header packet")
                };
                let now = self.clock;
                self.mr
                    .handle_packet(now, mrd::ReceivedSignal::from_packet(&p));
            }
            self.mr_events
                .extend(std::iter::from_fn(|| self.mr.poll_event()));
            self.ha_events
                .extend(std::iter::from_fn(|| self.ha.poll_event()));
            if !moved {
                break;
            }
        }
    }

    /// Runs both cores' timers up to and including `until`. A core that keeps asking for
    /// a time already passed without doing anything (a busy loop in the daemon) fails.
    fn run_until(&mut self, until: Instant) {
        let mut same_instant = 0u32;
        loop {
            let next = [self.mr.poll_timeout(), self.ha.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    same_instant = if t <= self.clock { same_instant + 1 } else { 0 };
                    assert!(
                        same_instant < 10_000,
                        "a core asks for the timer again and again at {:?} (mr {:?}, ha {:?})",
                        self.clock - self.t0,
                        self.mr
                            .poll_timeout()
                            .map(|t| t.saturating_duration_since(self.t0)),
                        self.ha
                            .poll_timeout()
                            .map(|t| t.saturating_duration_since(self.t0)),
                    );
                    self.clock = self.clock.max(t);
                    let now = self.clock;
                    self.mr.handle_timeout(now);
                    self.ha.handle_timeout(now);
                    self.exchange();
                }
                _ => break,
            }
        }
        self.clock = self.clock.max(until);
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.clock + d;
        self.run_until(until);
    }

    fn bus(&self) -> Vec<(u64, u16)> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Seen::Bu { at_ms, seq, .. } => Some((*at_ms, *seq)),
                _ => None,
            })
            .collect()
    }

    fn bas(&self) -> Vec<(u64, u8, u16)> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Seen::Ba {
                    at_ms, status, seq, ..
                } => Some((*at_ms, *status, *seq)),
                _ => None,
            })
            .collect()
    }

    fn mr_bul_adds(&mut self) -> Vec<(mipsock::Binding, Ipv4MnpOutcome)> {
        self.mr_events
            .drain(..)
            .filter_map(|e| match e {
                MrEvent::BulAdd { binding, ipv4, .. } => Some((binding, ipv4)),
                _ => None,
            })
            .collect()
    }

    fn ha_binding(&self) -> Option<mipsock::Binding> {
        self.ha.binding(self.clock, &hoa())
    }
}

#[test]
fn first_registration() {
    let mut p = Pair::new(mr_config(), ha_config());
    p.md_info(&rereg(coa1()));
    assert_eq!(p.bus(), [(0, 1000)]);
    assert_eq!(p.bas(), [(0, 0, 1000)]);
    assert_eq!(
        p.mr.state(),
        RegistrationState::Registered { refreshing: false }
    );
    let adds = p.mr_bul_adds();
    let [(b, ipv4)] = adds.as_slice() else {
        panic!("{adds:?}")
    };
    assert_eq!(b.coa, CareOf::V6(coa1()));
    assert_eq!(b.mnp_v6, vec![mnp6()]);
    assert_eq!(b.mnp_v4, vec![mnp4()]);
    assert_eq!(b.lifetime, 400);
    assert_eq!(b.coa_ifindex, Some(7));
    assert_eq!(
        *ipv4,
        Ipv4MnpOutcome::Acknowledged {
            rejected: Vec::new()
        }
    );
    // The HA holds the same binding.
    let bc = p.ha_binding().expect("binding cache entry");
    assert_eq!(bc.coa, CareOf::V6(coa1()));
    assert_eq!(bc.mnp_v6, vec![mnp6()]);
    assert_eq!(bc.mnp_v4, vec![mnp4()]);
    assert_eq!(bc.lifetime, 400);
    assert!(
        p.ha_events
            .iter()
            .any(|e| matches!(e, HaEvent::BcAdd(b) if b.hoa == hoa()))
    );
    // Both sides answer state dumps with the entry.
    assert_eq!(p.mr.handle_state_request(p.clock).len(), 1);
    assert_eq!(p.ha.handle_state_request(p.clock).len(), 1);
}

#[test]
fn refresh_keeps_the_binding() {
    let mut p = Pair::new(mr_config(), ha_config());
    p.md_info(&rereg(coa1()));
    p.run_for(Duration::from_secs(2000));
    // Refreshed 16 s before each expiry: every 384 s.
    let bus = p.bus();
    assert_eq!(
        bus,
        [
            (0, 1000),
            (384_000, 1001),
            (768_000, 1002),
            (1_152_000, 1003),
            (1_536_000, 1004),
            (1_920_000, 1005)
        ]
    );
    assert!(p.bas().iter().all(|b| b.1 == 0));
    assert_eq!(p.mr_bul_adds().len(), 6);
    let bc = p.ha_binding().expect("still registered");
    assert_eq!(bc.lifetime, 400 - 80);
    assert!(
        !p.ha_events
            .iter()
            .any(|e| matches!(e, HaEvent::BcRemove(_)))
    );
}

#[test]
fn bu_lost_three_times_then_registered() {
    let mut p = Pair::new(mr_config(), ha_config());
    p.drop_up = 3;
    p.md_info(&rereg(coa1()));
    p.run_for(Duration::from_secs(15));
    // 1.5 s, then 3 s, 6 s (RFC 6275 §11.8: doubling from the first timeout): the fourth
    // BU gets through at 10.5 s, each with a new sequence number.
    assert_eq!(
        p.bus(),
        [(0, 1000), (1500, 1001), (4500, 1002), (10500, 1003)]
    );
    assert_eq!(p.bas(), [(10500, 0, 1003)]);
    assert_eq!(p.mr_bul_adds().len(), 1);
    assert!(p.ha_binding().is_some());
    // The lifetime counts from the BU that got through.
    assert_eq!(p.mr.poll_timeout(), Some(p.at(10.5 + 384.0)));
}

#[test]
fn lost_acknowledgements_are_retransmitted_too() {
    let mut p = Pair::new(mr_config(), ha_config());
    p.drop_down = 2;
    p.md_info(&rereg(coa1()));
    p.run_for(Duration::from_secs(10));
    // The HA accepted each BU (new sequence numbers are newer); the MR only believes the
    // BA of its latest one.
    assert_eq!(p.bus(), [(0, 1000), (1500, 1001), (4500, 1002)]);
    assert_eq!(p.bas(), [(0, 0, 1000), (1500, 0, 1001), (4500, 0, 1002)]);
    assert!(matches!(p.mr.state(), RegistrationState::Registered { .. }));
}

#[test]
fn lifetime_expires_at_the_ha_when_the_mr_goes_silent() {
    let mut p = Pair::new(mr_config(), ha_config());
    p.md_info(&rereg(coa1()));
    p.mr_silent = true;
    p.run_until(p.at(399.999));
    assert!(p.ha_binding().is_some());
    assert!(
        !p.ha_events
            .iter()
            .any(|e| matches!(e, HaEvent::BcRemove(_)))
    );
    p.run_until(p.at(400.0));
    assert!(p.ha_binding().is_none(), "expired at exactly 400 s");
    assert!(
        p.ha_events
            .iter()
            .any(|e| matches!(e, HaEvent::BcRemove(b) if b.hoa == hoa()))
    );
    // The MR, whose refreshes went unanswered, withdrew its entry at the same instant.
    assert!(
        p.mr_events
            .iter()
            .any(|e| matches!(e, MrEvent::BulRemove { .. }))
    );
    assert_eq!(p.mr.state(), RegistrationState::Registering);
}

#[test]
fn deregistration_when_home() {
    let mut p = Pair::new(mr_config(), ha_config());
    p.md_info(&rereg(coa1()));
    p.run_for(Duration::from_secs(60));
    p.mr_events.clear();
    p.md_info(&dereg_home());
    let bus: Vec<_> = p
        .seen
        .iter()
        .filter(|s| matches!(s, Seen::Bu { .. }))
        .cloned()
        .collect();
    assert_eq!(
        bus.last(),
        Some(&Seen::Bu {
            at_ms: 60_000,
            seq: 1001,
            lifetime: 0,
            dropped: false
        })
    );
    assert_eq!(p.bas().last(), Some(&(60_000, 0, 1001)));
    assert!(p.ha_binding().is_none());
    assert!(
        p.ha_events
            .iter()
            .any(|e| matches!(e, HaEvent::BcRemove(_)))
    );
    let evs: Vec<_> = p.mr_events.drain(..).collect();
    // BUL_REMOVE, then the home address announced on the home link (RFC 6275 §11.5.5).
    assert!(
        matches!(evs.as_slice(), [MrEvent::BulRemove { binding }, MrEvent::HomeAdvertise { .. }]
            if binding.lifetime == 0),
        "{evs:?}"
    );
    assert_eq!(p.mr.state(), RegistrationState::Idle);
    // Nothing more is sent.
    let n = p.seen.len();
    p.run_for(Duration::from_secs(1000));
    assert_eq!(p.seen.len(), n);
    // Leaving home again registers anew (a first registration).
    p.md_info(&rereg(coa2()));
    assert_eq!(p.bas().last().map(|b| b.1), Some(0));
    assert_eq!(p.ha_binding().unwrap().coa, CareOf::V6(coa2()));
}

#[test]
fn handover_to_a_new_care_of_address() {
    let mut p = Pair::new(mr_config(), ha_config());
    p.md_info(&rereg(coa1()));
    p.run_for(Duration::from_secs(30));
    p.md_info(&rereg(coa2()));
    assert_eq!(p.bus(), [(0, 1000), (30_000, 1001)]);
    assert_eq!(p.ha_binding().unwrap().coa, CareOf::V6(coa2()));
    let adds = p.mr_bul_adds();
    assert_eq!(adds.last().unwrap().0.coa, CareOf::V6(coa2()));
}

#[test]
fn sequence_number_wraps_at_65535() {
    let mut cfg = mr_config();
    cfg.initial_sequence = SequenceNumber(65534);
    let mut p = Pair::new(cfg, ha_config());
    p.md_info(&rereg(coa1()));
    p.run_for(Duration::from_secs(800));
    // 65534 registers; the refreshes 65535 and 0 are newer for the HA (RFC 6275 §9.5.1).
    assert_eq!(p.bus(), [(0, 65534), (384_000, 65535), (768_000, 0)]);
    assert_eq!(
        p.bas(),
        [(0, 0, 65534), (384_000, 0, 65535), (768_000, 0, 0)]
    );
    // With losses across the wrap too.
    p.drop_up = 2;
    p.run_for(Duration::from_secs(400));
    assert_eq!(
        &p.bus()[3..],
        [(1_152_000, 1), (1_153_000, 2), (1_155_000, 3)]
    );
    assert_eq!(p.bas().last(), Some(&(1_155_000, 0, 3)));
    assert!(p.ha_binding().is_some());
}

#[test]
fn status_135_after_both_sides_restart() {
    let mut p = Pair::new(mr_config(), ha_config());
    p.md_info(&rereg(coa1()));
    p.run_for(Duration::from_secs(100));
    // The HA restarts and reloads its binding cache (sequence 1000 included).
    let (now, wall) = (p.clock, p.wall());
    let snapshot = p.ha.snapshot(now, wall);
    let mut ha = Ha::new(ha_config()).unwrap();
    assert_eq!(ha.restore(now, wall, snapshot), 1);
    p.ha = ha;
    // The MR restarts with a low sequence number.
    let mut cfg = mr_config();
    cfg.initial_sequence = SequenceNumber(5);
    let mut mr = MrCore::new(cfg).unwrap();
    mr.set_wall_clock(p.t0, p.wall0);
    p.mr = mr;
    p.mr_events.clear();
    p.md_info(&rereg(coa2()));
    // 5 is not newer than 1000: 135 carries 1000, the MR goes on with 1001 at once.
    assert_eq!(&p.bus()[1..], [(100_000, 5), (100_000, 1001)]);
    assert_eq!(&p.bas()[1..], [(100_000, 135, 1000), (100_000, 0, 1001)]);
    assert_eq!(p.mr_bul_adds().len(), 1);
    assert_eq!(p.ha_binding().unwrap().coa, CareOf::V6(coa2()));
}

#[test]
fn unauthorised_ipv6_prefix_142() {
    let mut cfg = mr_config();
    cfg.mnp_v6 = vec![mnp6(), "2001:db8:999::/48".parse().unwrap()];
    let mut p = Pair::new(cfg, ha_config());
    p.md_info(&rereg(coa1()));
    assert_eq!(p.bas(), [(0, 142, 1000)]);
    let evs: Vec<_> = p.mr_events.drain(..).collect();
    assert_eq!(
        evs,
        [MrEvent::Stopped {
            reason: StopReason::Refused(BaStatus::NotAuthorizedForPrefix)
        }]
    );
    assert!(p.ha_binding().is_none());
    // Stopped: no retransmissions, and a move does not restart it.
    p.run_for(Duration::from_secs(100));
    p.md_info(&rereg(coa2()));
    assert_eq!(p.bus().len(), 1);
}

#[test]
fn unauthorised_ipv4_prefix_133() {
    let mut cfg = mr_config();
    let rogue: Ipv4Net = "203.0.113.0/24".parse().unwrap();
    cfg.mnp_v4 = vec![mnp4(), rogue];
    let mut p = Pair::new(cfg, ha_config());
    p.md_info(&rereg(coa1()));
    // The IPv6 registration succeeds; the IPv4 Address Ack refuses one prefix.
    assert_eq!(p.bas(), [(0, 0, 1000)]);
    let adds = p.mr_bul_adds();
    let [(b, ipv4)] = adds.as_slice() else {
        panic!("{adds:?}")
    };
    assert_eq!(b.mnp_v4, vec![mnp4()]);
    assert_eq!(
        *ipv4,
        Ipv4MnpOutcome::Acknowledged {
            rejected: vec![(rogue, Ipv4AckStatus::PrefixAllocationUnauthorized)]
        }
    );
    assert_eq!(p.ha_binding().unwrap().mnp_v4, vec![mnp4()]);
    assert_eq!(p.mr.ipv4_support(), Ipv4Support::Supported);
}

#[test]
fn ha_without_ipv4_support_carries_on_with_ipv6() {
    let mut ha_cfg = ha_config();
    ha_cfg.ipv4_mnp = Ipv4MnpSupport::Unsupported;
    let mut p = Pair::new(mr_config(), ha_cfg);
    p.md_info(&rereg(coa1()));
    let adds = p.mr_bul_adds();
    let [(b, ipv4)] = adds.as_slice() else {
        panic!("{adds:?}")
    };
    assert_eq!(*ipv4, Ipv4MnpOutcome::HaUnsupported);
    assert!(b.mnp_v4.is_empty());
    assert_eq!(b.mnp_v6, vec![mnp6()]);
    assert_eq!(p.mr.ipv4_support(), Ipv4Support::Unsupported);
    let bc = p.ha_binding().unwrap();
    assert!(bc.mnp_v4.is_empty());
    assert_eq!(bc.mnp_v6, vec![mnp6()]);
    // Refreshes go on, IPv6 only.
    p.run_for(Duration::from_secs(400));
    assert_eq!(p.bus().len(), 2);
    assert!(p.ha_binding().is_some());
    let adds = p.mr_bul_adds();
    assert_eq!(adds[0].1, Ipv4MnpOutcome::NotRequested);
}

#[test]
fn implicit_mode_takes_prefixes_from_the_ha_table() {
    let mut cfg = mr_config();
    cfg.mode = RegistrationMode::Implicit;
    cfg.send_ipv4_mnps = false;
    let mut ha_cfg = ha_config();
    for row in &mut ha_cfg.prefix_table {
        row.mode = PrefixMode::Implicit;
    }
    let mut p = Pair::new(cfg, ha_cfg);
    p.md_info(&rereg(coa1()));
    assert_eq!(p.bas(), [(0, 0, 1000)]);
    let bc = p.ha_binding().unwrap();
    assert_eq!(bc.mnp_v6, vec![mnp6()]);
    // Shima's first method: the HA installs the IPv4 MNP from its table.
    assert_eq!(bc.mnp_v4, vec![mnp4()]);
}

#[test]
fn implicit_mode_without_prefixes_at_the_ha_is_143() {
    let mut cfg = mr_config();
    cfg.mode = RegistrationMode::Implicit;
    let mut ha_cfg = ha_config();
    ha_cfg.prefix_table.clear();
    let mut p = Pair::new(cfg, ha_cfg);
    p.md_info(&rereg(coa1()));
    assert_eq!(p.bas().first().map(|b| b.1), Some(143));
    assert_eq!(
        p.mr.state(),
        RegistrationState::Stopped(StopReason::Refused(BaStatus::ForwardingSetupFailed))
    );
}

#[test]
fn wrong_key_is_refused_and_the_unverifiable_146_ignored() {
    let mut cfg = mr_config();
    if let Some(sa) = &mut cfg.security {
        sa.key = b"not the HA's key".to_vec();
    }
    let mut p = Pair::new(cfg, ha_config());
    p.md_info(&rereg(coa1()));
    p.run_for(Duration::from_secs(11));
    // The HA answers 146, signed with the real key: the MR cannot authenticate it, so it
    // must not believe it (RFC 4285 §8) and keeps retrying (0, 1.5, 4.5, 10.5 s).
    assert!(p.bas().iter().all(|b| b.1 == 146));
    assert_eq!(p.bus().len(), 4);
    assert_eq!(p.mr.state(), RegistrationState::Registering);
    assert!(p.ha_binding().is_none());
}

#[test]
fn ha_refusing_mobile_routers_140() {
    let mut ha_cfg = ha_config();
    ha_cfg.mobile_router_support = false;
    let mut p = Pair::new(mr_config(), ha_cfg);
    p.md_info(&rereg(coa1()));
    assert_eq!(p.bas(), [(0, 140, 1000)]);
    assert_eq!(
        p.mr.state(),
        RegistrationState::Stopped(StopReason::Refused(
            BaStatus::MobileRouterOperationNotPermitted
        ))
    );
}

#[test]
fn binding_update_on_the_wire_is_what_the_ha_parses() {
    // The BU the MR emits, walked and parsed as the HA's shell would.
    let mut mr = MrCore::new(mr_config()).unwrap();
    let t0 = Instant::now();
    mr.set_wall_clock(t0, Duration::from_secs(1_800_000_000));
    mr.handle_md_info(t0, &rereg(coa1()));
    let tx = mr.poll_transmit().unwrap();
    let pkt = tx.to_packet();
    let Walk::Mobility(w) = walk(&pkt).unwrap() else {
        panic!()
    };
    w.verify_checksum().unwrap();
    let MhRepr::BindingUpdate(bu) = MhRepr::parse_bytes(w.payload, ParseConfig::new()).unwrap()
    else {
        panic!()
    };
    let types: Vec<u8> = bu.options.iter().map(|o| o.type_octet()).collect();
    // ACoA, MNP, IPv4 HoA, MN-ID, replay protection, MN-HA auth (last).
    assert_eq!(types, [3, 6, 29, 8, 10, 9]);
    assert!(matches!(
        bu.options[2],
        MobilityOption::Ipv4HomeAddress {
            p: true,
            prefix_len: 24,
            ..
        }
    ));
}

#[test]
fn unauthenticated_registration_when_both_sides_agree() {
    let mut cfg = mr_config();
    cfg.security = None;
    let mut ha_cfg = ha_config();
    ha_cfg.auth = AuthPolicy::Disabled;
    let mut p = Pair::new(cfg, ha_cfg);
    p.md_info(&rereg(coa1()));
    assert_eq!(p.bas(), [(0, 0, 1000)]);
    p.md_info(&dereg_home());
    assert_eq!(p.bas().last(), Some(&(0, 0, 1001)));
    assert!(p.ha_binding().is_none());
}

#[test]
fn unauthenticated_bu_is_dropped_by_an_authenticating_ha() {
    let mut cfg = mr_config();
    cfg.security = None;
    let mut p = Pair::new(cfg, ha_config());
    p.md_info(&rereg(coa1()));
    p.run_for(Duration::from_secs(5));
    // RFC 4285 §4: silently dropped; the MR backs off as for loss.
    assert!(p.bas().is_empty());
    assert_eq!(p.bus(), [(0, 1000), (1500, 1001), (4500, 1002)]);
}

#[test]
fn optimistic_mode_announces_before_the_ba() {
    let mut cfg = mr_config();
    cfg.optimistic = true;
    let mut p = Pair::new(cfg, ha_config());
    p.drop_up = 2;
    p.md_info(&rereg(coa1()));
    let evs: Vec<_> = p.mr_events.drain(..).collect();
    assert!(
        matches!(
            evs.as_slice(),
            [MrEvent::BulAdd {
                optimistic: true,
                ipv4: Ipv4MnpOutcome::Pending,
                ..
            }]
        ),
        "{evs:?}"
    );
    p.run_for(Duration::from_secs(5));
    assert_eq!(p.bas(), [(4500, 0, 1002)]);
    let evs: Vec<_> = p.mr_events.drain(..).collect();
    assert!(
        matches!(evs.as_slice(), [MrEvent::BulAdd { optimistic: false, binding, .. }] if binding.mnp_v4 == vec![mnp4()]),
        "{evs:?}"
    );
}

#[test]
fn binding_refresh_request_from_the_ha() {
    let mut ha_cfg = ha_config();
    ha_cfg.brr = Some(had::BrrConfig {
        before_expiry: Duration::from_secs(100),
    });
    let mut p = Pair::new(mr_config(), ha_cfg);
    p.md_info(&rereg(coa1()));
    p.run_for(Duration::from_secs(350));
    // The HA asks at 300 s (100 s before expiry), well before the MR's own 384 s.
    assert!(p.seen.contains(&Seen::Other {
        at_ms: 300_000,
        mh_type: 0
    }));
    assert_eq!(p.bus(), [(0, 1000), (300_000, 1001)]);
    assert_eq!(p.bas().last(), Some(&(300_000, 0, 1001)));
    assert_eq!(p.ha_binding().unwrap().lifetime, 400 - 50);
}

mod property {
    use super::*;
    use proptest::prelude::*;

    fn pattern() -> impl Strategy<Value = Vec<bool>> {
        // At least one packet of each cycle gets through.
        (
            prop::collection::vec(any::<bool>(), 0..8),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(mut v, i)| {
                let at = i.index(v.len() + 1);
                v.insert(at, false);
                v
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the loss and however the MR moves, it ends registered with its last
        /// care-of address on both sides, every BU carries the next sequence number and
        /// no second holds more than three BUs.
        #[test]
        fn converges_under_loss_and_moves(
            up in pattern(),
            down in pattern(),
            moves in prop::collection::vec((0u64..3000, any::<bool>()), 1..8),
            start in any::<u16>(),
            optimistic in any::<bool>(),
        ) {
            let mut cfg = mr_config();
            cfg.initial_sequence = SequenceNumber(start);
            cfg.optimistic = optimistic;
            let mut p = Pair::new(cfg, ha_config());
            p.up_pattern = up;
            p.down_pattern = down;
            let mut last = coa1();
            for (delay, which) in moves {
                p.run_for(Duration::from_millis(delay));
                last = if which { coa1() } else { coa2() };
                p.md_info(&rereg(last));
            }
            // Heavy loss can let a binding expire between refreshes; it must come back.
            let deadline = p.clock + Duration::from_secs(20_000);
            let done = |p: &Pair| {
                // Registered with nothing outstanding: the last BA matched the last BU.
                p.mr.state() == RegistrationState::Registered { refreshing: false }
                    && p.mr.binding().map(|b| b.coa) == Some(CareOf::V6(last))
            };
            while !done(&p) && p.clock < deadline {
                p.run_for(Duration::from_secs(1));
            }
            prop_assert!(done(&p), "state {:?}", p.mr.state());
            prop_assert_eq!(p.ha_binding().map(|b| b.coa), Some(CareOf::V6(last)));
            let bus = p.bus();
            for (i, w) in bus.windows(2).enumerate() {
                prop_assert_eq!(w[1].1, w[0].1.wrapping_add(1), "BU {} {:?}", i, bus);
            }
            for (i, (t, _)) in bus.iter().enumerate() {
                let in_window = bus[i..].iter().take_while(|(u, _)| *u < t + 1000).count();
                prop_assert!(in_window <= 3, "{:?}", bus);
            }
        }
    }
}

// ---- Multiple care-of addresses (RFC 5648, issue 15): this core against had's ----

fn uplink(coa: Ipv6Addr, ifindex: u32, ifname: &str) -> mipsock::Uplink {
    mipsock::Uplink {
        coa: CareOf::V6(coa),
        ifindex,
        ifname: ifname.into(),
        preference: ifindex,
    }
}

/// REREG from coa1 (eth0, BID 1) with these uplinks.
fn rereg_uplinks(uplinks: Vec<mipsock::Uplink>) -> MdInfo {
    MdInfo {
        uplinks,
        ..rereg(coa1())
    }
}

fn two_uplinks() -> MdInfo {
    rereg_uplinks(vec![uplink(coa1(), 7, "eth0"), uplink(coa2(), 8, "eth1")])
}

fn mcoa_mr_config() -> MrCoreConfig {
    let mut c = mr_config();
    c.multiple_coa = true;
    c.egress_interfaces = vec!["eth0".into(), "eth1".into()];
    c
}

/// (BID, care-of address) of bindings, sorted.
fn bid_keys<'a>(v: impl IntoIterator<Item = &'a mipsock::Binding>) -> Vec<(Option<u16>, CareOf)> {
    let mut k: Vec<_> = v.into_iter().map(|b| (b.binding_id, b.coa)).collect();
    k.sort_by_key(|(id, c)| (*id, c.to_string()));
    k
}

#[test]
fn mcoa_bulk_registration_with_had_then_an_uplink_lost_refreshes_and_deregistration() {
    let mut ha = ha_config();
    // Binding Refresh Requests 100 s before a binding expires: before our own refresh
    // (16 s before), so they are what makes us refresh.
    ha.brr = Some(had::BrrConfig {
        before_expiry: Duration::from_secs(100),
    });
    let mut p = Pair::new(mcoa_mr_config(), ha);
    p.md_info(&two_uplinks());
    let both = vec![(Some(1), CareOf::V6(coa1())), (Some(2), CareOf::V6(coa2()))];
    // One BU, one BA (after had's proxy DAD for the new home address): both bindings on
    // both sides, a BUL_ADD each.
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.bus().len(), 1, "{:?}", p.seen);
    assert_eq!(p.mr.mcoa_support(), mrd::McoaSupport::Supported);
    assert_eq!(bid_keys(&p.ha.bindings(p.clock, &hoa())), both);
    assert_eq!(bid_keys(p.mr.bindings()), both);
    let adds = p.mr_bul_adds();
    assert_eq!(bid_keys(adds.iter().map(|(b, _)| b)), both);

    // eth1 goes: BID 1 alone, at both ends.
    p.run_for(Duration::from_secs(5));
    p.md_info(&rereg_uplinks(vec![uplink(coa1(), 7, "eth0")]));
    let one = vec![(Some(1), CareOf::V6(coa1()))];
    assert_eq!(bid_keys(&p.ha.bindings(p.clock, &hoa())), one);
    assert_eq!(bid_keys(p.mr.bindings()), one);
    let removed: Vec<_> = p
        .mr_events
        .iter()
        .filter_map(|e| match e {
            MrEvent::BulRemove { binding } => Some((binding.binding_id, binding.coa)),
            _ => None,
        })
        .collect();
    assert_eq!(removed, [(Some(2), CareOf::V6(coa2()))]);

    // Refreshes keep it for hours: had's BRR for BID 1 (signed over its care-of
    // address) is answered at once by the bulk refresh.
    p.run_for(Duration::from_secs(3 * 3600));
    let brrs: Vec<u64> = p
        .seen
        .iter()
        .filter_map(|s| match s {
            Seen::Other { at_ms, mh_type: 0 } => Some(*at_ms),
            _ => None,
        })
        .collect();
    assert!(brrs.len() > 20, "{:?}", p.seen);
    for t in &brrs {
        assert!(
            p.bus().iter().any(|(b, _)| b == t),
            "no BU answers the BRR at {t}"
        );
    }
    assert_eq!(bid_keys(&p.ha.bindings(p.clock, &hoa())), one);
    assert!(matches!(p.mr.state(), RegistrationState::Registered { .. }));
    assert!(
        p.bas().iter().all(|(_, status, _)| *status == 0),
        "{:?}",
        p.bas()
    );

    // De-registration: the plain BU of lifetime 0 removes every binding.
    let now = p.clock;
    p.mr.deregister(now);
    p.exchange();
    assert!(p.ha.bindings(p.clock, &hoa()).is_empty());
    assert_eq!(p.mr.state(), RegistrationState::Idle);
    assert_eq!(p.mr.bindings().count(), 0);
}

#[test]
fn mcoa_refused_by_had_falls_back_to_the_plain_binding() {
    let mut ha = ha_config();
    ha.mcoa.enabled = false;
    let mut p = Pair::new(mcoa_mr_config(), ha);
    p.md_info(&two_uplinks());
    p.run_for(Duration::from_secs(2));
    assert_eq!(
        p.bas().iter().map(|(_, s, _)| *s).collect::<Vec<_>>(),
        [166, 0]
    );
    assert_eq!(p.mr.mcoa_support(), mrd::McoaSupport::Unsupported);
    let plain = vec![(None, CareOf::V6(coa1()))];
    assert_eq!(bid_keys(&p.ha.bindings(p.clock, &hoa())), plain);
    assert_eq!(bid_keys(p.mr.bindings()), plain);
}

#[test]
fn bulk_registration_refused_by_had_registers_each_uplink_by_its_own_bu() {
    let mut ha = ha_config();
    ha.mcoa.bulk_registration = false;
    let mut p = Pair::new(mcoa_mr_config(), ha);
    p.md_info(&two_uplinks());
    p.run_for(Duration::from_secs(2));
    // 168, then the care-of address in use alone, then the other uplink's own BU.
    assert_eq!(
        p.bas().iter().map(|(_, s, _)| *s).collect::<Vec<_>>(),
        [168, 0, 0]
    );
    assert_eq!(p.mr.mcoa_support(), mrd::McoaSupport::Individually);
    let both = vec![(Some(1), CareOf::V6(coa1())), (Some(2), CareOf::V6(coa2()))];
    assert_eq!(bid_keys(&p.ha.bindings(p.clock, &hoa())), both);
    assert_eq!(bid_keys(p.mr.bindings()), both);
    // Refreshes keep both: the primary's BU no longer sets O.
    p.run_for(Duration::from_secs(900));
    assert_eq!(bid_keys(&p.ha.bindings(p.clock, &hoa())), both);
    assert_eq!(bid_keys(p.mr.bindings()), both);
    assert!(p.bas().iter().skip(3).all(|(_, s, _)| *s == 0));
}

const HA_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

fn v4_uplink(addr: Ipv4Addr, ifindex: u32, ifname: &str) -> mipsock::Uplink {
    mipsock::Uplink {
        coa: CareOf::V4 {
            addr,
            udp_port: None,
        },
        ifindex,
        ifname: ifname.into(),
        preference: ifindex,
    }
}

#[test]
fn an_ipv4_uplink_behind_a_nat_registers_beside_the_bulk_registration_with_had() {
    let mut mr = mcoa_mr_config();
    mr.home_agent_v4 = Some(HA_V4);
    mr.egress_interfaces = vec!["eth0".into(), "eth1".into(), "wwan0".into()];
    let mut ha = ha_config();
    ha.ha_address_v4 = Some(HA_V4);
    // The satellite-like uplink waits as a backup (RFC 6089 BID-PRI).
    mr.bid_priorities = vec![(3, 20)];
    let mut p = Pair::new(mr, ha);
    p.nat = Some(Ipv4Addr::new(198, 51, 100, 200));
    p.mr.set_udp_local(SocketAddrV4::new(
        Ipv4Addr::new(10, 9, 0, 5),
        proto::DSMIP_UDP_PORT,
    ));
    let wwan0 = v4_uplink(Ipv4Addr::new(10, 9, 0, 5), 9, "wwan0");
    p.md_info(&rereg_uplinks(vec![
        uplink(coa1(), 7, "eth0"),
        uplink(coa2(), 8, "eth1"),
        wwan0.clone(),
    ]));
    p.run_for(Duration::from_secs(2));
    // The bulk BU (BIDs 1 and 2), then the IPv4 uplink's own, each accepted.
    assert_eq!(
        p.bas().iter().map(|(_, s, _)| *s).collect::<Vec<_>>(),
        [0, 0]
    );
    // had holds the IPv4 binding at the NAT's address and port, UDP; mrd the MR's own.
    let at_ha = p.ha.bindings(p.clock, &hoa());
    let v4 = at_ha
        .iter()
        .find(|b| b.binding_id == Some(3))
        .expect("BID 3 at had");
    assert_eq!(
        v4.coa,
        CareOf::V4 {
            addr: Ipv4Addr::new(198, 51, 100, 200),
            udp_port: Some(40005)
        }
    );
    assert!(v4.nat_detected);
    assert_eq!(at_ha.len(), 3);
    // Each binding's BID-PRI as mrd sent it, for had's data plane.
    let pris: Vec<(Option<u16>, u8)> = at_ha
        .iter()
        .map(|b| (b.binding_id, b.bid_priority))
        .collect();
    assert_eq!(pris, [(Some(1), 1), (Some(2), 1), (Some(3), 20)]);
    let at_mr: Vec<_> = p.mr.bindings().cloned().collect();
    let mine = at_mr.iter().find(|b| b.binding_id == Some(3)).unwrap();
    assert_eq!(
        mine.coa,
        CareOf::V4 {
            addr: Ipv4Addr::new(10, 9, 0, 5),
            udp_port: Some(proto::DSMIP_UDP_PORT)
        }
    );
    assert!(mine.nat_detected);
    assert_eq!(at_mr.len(), 3);
    // An hour of refreshes and NAT keepalives: all three stay, every BA accepts.
    p.run_for(Duration::from_secs(3600));
    assert_eq!(p.ha.bindings(p.clock, &hoa()).len(), 3);
    assert_eq!(p.mr.bindings().count(), 3);
    assert!(p.bas().iter().all(|(_, s, _)| *s == 0), "{:?}", p.bas());
    // The IPv4 uplink goes: the next bulk BU's O flag removes it at had too.
    p.md_info(&rereg_uplinks(vec![
        uplink(coa1(), 7, "eth0"),
        uplink(coa2(), 8, "eth1"),
    ]));
    p.run_for(Duration::from_secs(2));
    let keys = vec![(Some(1), CareOf::V6(coa1())), (Some(2), CareOf::V6(coa2()))];
    assert_eq!(bid_keys(&p.ha.bindings(p.clock, &hoa())), keys);
    assert_eq!(bid_keys(p.mr.bindings()), keys);
    // It comes back: registered again by its own BU.
    p.md_info(&rereg_uplinks(vec![
        uplink(coa1(), 7, "eth0"),
        uplink(coa2(), 8, "eth1"),
        wwan0,
    ]));
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.ha.bindings(p.clock, &hoa()).len(), 3);
    assert_eq!(p.mr.bindings().count(), 3);
}

mod mcoa_property {
    use super::*;
    use proptest::prelude::*;

    /// Loss of up to half the packets, at random but from a seed: a pattern of a prime
    /// length, so that no rotation of the router's transactions falls into step with it
    /// (a short cycle can drop every BU of one transaction for ever, which no network
    /// does).
    fn loss() -> impl Strategy<Value = Vec<bool>> {
        (any::<u64>(), 0u64..50).prop_map(|(seed, percent)| {
            let mut x = seed | 1;
            (0..997)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x % 100 < percent
                })
                .collect()
        })
    }

    /// The uplinks of a mask over eth0 and eth1 (IPv6), wwan0 and wwan1 (IPv4 behind a
    /// NAT); the first present is the care-of address in use. `None` for no uplink.
    fn uplinks_of(mask: u8) -> Option<MdInfo> {
        let all = [
            uplink(coa1(), 7, "eth0"),
            uplink(coa2(), 8, "eth1"),
            v4_uplink(Ipv4Addr::new(10, 9, 0, 5), 9, "wwan0"),
            v4_uplink(Ipv4Addr::new(10, 10, 0, 5), 10, "wwan1"),
        ];
        let ups: Vec<_> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, u)| u.clone())
            .collect();
        let first = ups.first()?.clone();
        Some(MdInfo {
            command: MdCommand::Rereg,
            hint: MdHint::Addr,
            hoa: Some(hoa()),
            coa: Some(first.coa),
            coa2: None,
            ifindex: first.ifindex,
            uplinks: ups,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Several care-of addresses of both families, IPv4 ones behind a NAT, under loss
        /// both ways, uplinks coming and going, the home agent allowing bulk registrations
        /// or not: no core busies itself, no second holds more than three BUs, and once
        /// the uplinks settle the router and the home agent hold one binding per uplink,
        /// the same ones.
        #[test]
        fn every_uplink_registered_on_both_sides_under_loss_and_changes(
            up in loss(),
            down in loss(),
            changes in prop::collection::vec((0u64..3000, 1u8..16), 1..6),
            bulk in any::<bool>(),
        ) {
            let mut mr = mcoa_mr_config();
            mr.home_agent_v4 = Some(HA_V4);
            mr.egress_interfaces =
                vec!["eth0".into(), "eth1".into(), "wwan0".into(), "wwan1".into()];
            let mut ha = ha_config();
            ha.ha_address_v4 = Some(HA_V4);
            ha.mcoa.bulk_registration = bulk;
            let mut p = Pair::new(mr, ha);
            p.nat = Some(Ipv4Addr::new(198, 51, 100, 200));
            p.mr.set_udp_local(SocketAddrV4::new(
                Ipv4Addr::new(10, 9, 0, 5),
                proto::DSMIP_UDP_PORT,
            ));
            p.up_pattern = up;
            p.down_pattern = down;
            let mut last = 1u8;
            for (delay, mask) in changes {
                p.run_for(Duration::from_millis(delay));
                if let Some(md) = uplinks_of(mask) {
                    last = mask;
                    p.md_info(&md);
                }
            }
            let want: Vec<u16> = (0..4u16).filter(|i| last & (1 << i) != 0).map(|i| i + 1).collect();
            let bids = |v: Vec<Option<u16>>| {
                let mut v: Vec<u16> = v.into_iter().flatten().collect();
                v.sort();
                v
            };
            let settled = |p: &Pair| {
                bids(p.mr.bindings().map(|b| b.binding_id).collect()) == want
                    && bids(p.ha.bindings(p.clock, &hoa()).iter().map(|b| b.binding_id).collect())
                        == want
            };
            // Losses can let a binding expire between refreshes, a gone IPv4 uplink can
            // stay at the home agent until its lifetime ends: within some lifetimes.
            let deadline = p.clock + Duration::from_secs(20_000);
            while !settled(&p) && p.clock < deadline {
                p.run_for(Duration::from_secs(1));
            }
            prop_assert!(
                settled(&p),
                "want {:?}; mrd {:?}; had {:?}",
                want,
                p.mr.bindings().map(|b| (b.binding_id, b.coa)).collect::<Vec<_>>(),
                p.ha.bindings(p.clock, &hoa()).iter().map(|b| (b.binding_id, b.coa)).collect::<Vec<_>>()
            );
            let bus = p.bus();
            for (i, (t, _)) in bus.iter().enumerate() {
                let in_window = bus[i..].iter().take_while(|(u, _)| *u < t + 1000).count();
                prop_assert!(in_window <= 3, "{:?}", bus);
            }
        }
    }
}
