//! Sequences of hostile and odd Binding Updates on virtual time: any flags, sequence
//! numbers and lifetimes, Binding Identifier options of every shape, prefixes that are
//! and are not the router's, IPv4 home and care-of addresses, over IPv6 or UDP/IPv4,
//! signed, badly signed or not, with time passing between them, with and without proxy
//! DAD before a new home address is registered. Whatever comes, the core
//! keeps its word to the rest of had (the journal and the bus see what the cache holds)
//! and never loses a binding to a BU it refused. What `proto` will not emit (a prefix
//! length past 128, say) goes on the wire as an option of unknown contents with a known
//! type.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddrV4};

use proptest::prelude::*;

use super::*;

const COA3: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 9);
const HOAS: [Ipv6Addr; 3] = [HOA1, HOA2, HOA4];
const COAS: [Ipv6Addr; 3] = [COA, COA2, COA3];

/// One option of a BU, as the strategy draws it.
#[derive(Debug, Clone)]
enum Opt {
    Bid {
        bid: u16,
        status: u8,
        h: bool,
        bid_pri: u8,
        coa: Option<IpAddr>,
    },
    Mnp(u8, Ipv6Addr),
    V4Home(u8, bool, Ipv4Addr),
    V4CareOf(Ipv4Addr),
    AltCoa(Ipv6Addr),
    Legacy(u8, Ipv4Addr),
    Refresh(u16),
    Unknown(u8, Vec<u8>),
}

impl Opt {
    fn option(&self) -> MobilityOption<'static> {
        match *self {
            Opt::Bid {
                bid,
                status,
                h,
                bid_pri,
                coa,
            } => MobilityOption::BindingIdentifier {
                bid,
                status,
                h,
                bid_pri,
                coa,
            },
            Opt::Mnp(prefix_len, prefix) => {
                MobilityOption::MobileNetworkPrefix { prefix_len, prefix }
            }
            Opt::V4Home(prefix_len, p, address) => MobilityOption::Ipv4HomeAddress {
                prefix_len,
                p,
                address,
            },
            Opt::V4CareOf(a) => MobilityOption::Ipv4CareOfAddress(a),
            Opt::AltCoa(a) => MobilityOption::AlternateCareOfAddress(a),
            Opt::Legacy(prefix_len, prefix) => MobilityOption::LegacyIpv4Mnp { prefix_len, prefix },
            Opt::Refresh(r) => MobilityOption::BindingRefreshAdvice {
                refresh_interval: Lifetime(r),
            },
            Opt::Unknown(option_type, ref data) => MobilityOption::Unknown {
                option_type,
                data: Box::leak(data.clone().into_boxed_slice()),
            },
        }
    }
}

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        Just(Ipv4Addr::new(192, 0, 2, 0)),
        Just(Ipv4Addr::new(10, 2, 0, 0)),
        Just(Ipv4Addr::new(10, 3, 0, 0)),
        Just(Ipv4Addr::UNSPECIFIED),
        Just(Ipv4Addr::new(198, 51, 100, 7)),
        Just(Ipv4Addr::new(203, 0, 113, 9)),
        Just(Ipv4Addr::BROADCAST),
        any::<u32>().prop_map(Ipv4Addr::from),
    ]
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        proptest::sample::select(COAS.to_vec()),
        proptest::sample::select(HOAS.to_vec()),
        Just(HA),
        Just(Ipv6Addr::UNSPECIFIED),
        Just(Ipv6Addr::LOCALHOST),
        Just("ff02::1".parse().unwrap()),
        Just("fe80::1".parse().unwrap()),
        Just("2001:db8:100::".parse().unwrap()),
        Just("2001:db8:300::".parse().unwrap()),
    ]
}

fn opt() -> impl Strategy<Value = Opt> {
    prop_oneof![
        4 => (
            0u16..5,
            prop_oneof![3 => Just(0u8), 1 => any::<u8>()],
            prop_oneof![4 => Just(false), 1 => Just(true)],
            prop_oneof![Just(0u8), 1u8..=127],
            prop_oneof![
                Just(None),
                v6().prop_map(|a| Some(IpAddr::V6(a))),
                v4().prop_map(|a| Some(IpAddr::V4(a))),
            ],
        )
            .prop_map(|(bid, status, h, bid_pri, coa)| Opt::Bid {
                bid,
                status,
                h,
                bid_pri,
                coa,
            }),
        2 => (prop_oneof![Just(48u8), Just(64u8), 0u8..=128], v6()).prop_map(|(l, p)| Opt::Mnp(l, p)),
        2 => (prop_oneof![Just(24u8), Just(32u8), 1u8..=32], any::<bool>(), v4())
            .prop_map(|(l, p, a)| Opt::V4Home(l, p, a)),
        1 => v4().prop_map(Opt::V4CareOf),
        1 => v6().prop_map(Opt::AltCoa),
        1 => (0u8..=32, v4()).prop_map(|(l, p)| Opt::Legacy(l, p)),
        1 => any::<u16>().prop_map(Opt::Refresh),
        1 => (2u8..=255, proptest::collection::vec(any::<u8>(), 0..24))
            .prop_map(|(t, d)| Opt::Unknown(t, d)),
    ]
}

/// How a BU is protected (RFC 4285), when the home agent asks for it.
#[derive(Debug, Clone, Copy)]
enum Signing {
    None,
    Right,
    WrongKey,
}

/// One step of a run.
#[derive(Debug, Clone)]
enum Step {
    /// Time passes (milliseconds); timers run.
    Wait(u32),
    Bu {
        hoa: usize,
        coa: usize,
        /// Sequence: the next one for this home address, or any number.
        seq: Option<u16>,
        flags: u16,
        lifetime: u16,
        hao: bool,
        opts: Vec<Opt>,
        /// Over UDP/IPv4 (RFC 5555 §4.1), from this NATed source port.
        udp: Option<u16>,
        signing: Signing,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => prop_oneof![0u32..2000, Just(100_000u32), Just(500_000u32)].prop_map(Step::Wait),
        6 => (
            (0usize..3, 0usize..3, prop_oneof![3 => Just(None), 1 => any::<u16>().prop_map(Some)]),
            prop_oneof![
                3 => Just((BuFlags::A | BuFlags::H | BuFlags::R).0),
                1 => Just((BuFlags::A | BuFlags::H | BuFlags::R | BuFlags::O).0),
                1 => any::<u16>(),
            ],
            prop_oneof![Just(0u16), Just(1u16), Just(25u16), Just(100u16), any::<u16>()],
            prop_oneof![4 => Just(true), 1 => Just(false)],
            proptest::collection::vec(opt(), 0..4),
            prop_oneof![4 => Just(None), 1 => (1024u16..).prop_map(Some)],
            prop_oneof![1 => Just(Signing::None), 4 => Just(Signing::Right), 1 => Just(Signing::WrongKey)],
        )
            .prop_map(|((hoa, coa, seq), flags, lifetime, hao, opts, udp, signing)| Step::Bu {
                hoa,
                coa,
                seq,
                flags,
                lifetime,
                hao,
                opts,
                udp,
                signing,
            }),
    ]
}

/// What the bus was told, or what the journal holds: (home address, BID) → care-of address.
type View = BTreeMap<(Ipv6Addr, Option<u16>), CareOf>;

/// The cache as the state dump shows it.
fn cache(e: &Env) -> View {
    e.ha.handle_state_request(e.now)
        .into_iter()
        .map(|b| ((b.hoa, b.binding_id), b.coa))
        .collect()
}

/// Applies `ev` to the bus's and the journal's views.
fn apply(ev: &[HaEvent], bus: &mut View, journal: &mut View) {
    for ev in ev {
        match ev {
            HaEvent::BcAdd(b) => {
                bus.insert((b.hoa, b.binding_id), b.coa);
            }
            HaEvent::BcRemove(b) => {
                bus.remove(&(b.hoa, b.binding_id));
            }
            HaEvent::Persist(JournalRecord::Upsert(b)) => {
                journal.insert((b.hoa, b.bid), b.coa);
            }
            HaEvent::Persist(JournalRecord::Remove { hoa, bid }) => {
                journal.remove(&(*hoa, *bid));
            }
            _ => {}
        }
    }
}

fn config(auth: bool, dad: bool) -> HaCoreConfig {
    let mut c = if auth { auth_cfg() } else { cfg() };
    // RFC 6275 §10.3.1: a new home address is registered only after DAD's verdict, which
    // the timer gives (nobody defends it here).
    c.proxy_dad = dad.then(|| Duration::from_secs(1));
    if let AuthPolicy::Required(sas) = &mut c.auth {
        sas.push(sa(1002, KEY3, Some(HOA4), None));
    }
    c.ha_address_v4 = Some(Ipv4Addr::new(203, 0, 113, 1));
    c
}

/// Sends one drawn BU; returns the status of the BA that came back, if one did.
#[allow(clippy::too_many_arguments, reason = "one BU, field by field")]
fn send(
    e: &mut Env,
    seqs: &mut [u16; 3],
    (hoa_i, coa_i, seq): (usize, usize, Option<u16>),
    flags: u16,
    lifetime: u16,
    hao: bool,
    opts: &[Opt],
    udp: Option<u16>,
    signing: Signing,
) -> Option<BaStatus> {
    let hoa = HOAS[hoa_i];
    let seq = seq.unwrap_or_else(|| {
        seqs[hoa_i] = seqs[hoa_i].wrapping_add(1);
        seqs[hoa_i]
    });
    let mut bu = Bu::new(hoa, seq);
    bu.flags = BuFlags(flags);
    bu.lifetime = lifetime;
    bu.coa = COAS[coa_i];
    bu.hao = hao && udp.is_none();
    for o in opts {
        bu = bu.opt(o.option());
    }
    let keys: [(u32, &'static [u8]); 3] = [(1000, KEY1), (1001, KEY2), (1002, KEY3)];
    match signing {
        Signing::None => {}
        Signing::Right => bu = bu.signed(keys[hoa_i].0, keys[hoa_i].1, e.wall()),
        Signing::WrongKey => bu = bu.signed(keys[hoa_i].0, KEY3, e.wall()),
    }
    let mh = bu.bytes();
    let src = if bu.hao { bu.coa } else { bu.hoa };
    let sig = ReceivedSignal {
        src,
        dst: HA,
        home_address: bu.hao.then_some(bu.hoa),
        mh: &mh,
        checksum: ChecksumState::Unverified,
        ifindex: 3,
        udp_v4: udp.map(|port| UdpV4Path {
            peer: SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 200), port),
            local: SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 4191),
        }),
    };
    let wall = e.wall();
    e.ha.handle_packet(e.now, wall, &sig);
    let mut status = None;
    while let Some(tx) = e.ha.poll_transmit() {
        let repr = tx.repr().expect("every answer encodes");
        if let MhRepr::BindingAck(ba) = repr {
            assert!(status.is_none(), "one BA per BU");
            status = Some(ba.status);
        }
    }
    status
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// After every step: the bus's view (BC_ADD / BC_REMOVE applied in order) and the
    /// journal's (its records applied as a restart would) are the cache; a BU that was
    /// refused or got no answer changed nothing; an accepted one changed no other home
    /// address's bindings; every answer encodes; and a restart from the journal finds the
    /// cache.
    #[test]
    fn the_bus_and_the_journal_follow_the_cache_and_refused_bus_change_nothing(
        auth in any::<bool>(),
        dad in any::<bool>(),
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let mut e = Env::new(config(auth, dad));
        let (mut bus, mut journal) = (View::new(), View::new());
        let mut seqs = [0u16; 3];
        for s in &steps {
            let before = cache(&e);
            match s {
                Step::Wait(ms) => {
                    e.advance(Duration::from_millis(u64::from(*ms)));
                    // BAs of registrations that waited for DAD leave now.
                    while let Some(tx) = e.ha.poll_transmit() {
                        prop_assert!(tx.repr().is_ok());
                    }
                }
                Step::Bu { hoa, coa, seq, flags, lifetime, hao, opts, udp, signing } => {
                    let status = send(
                        &mut e,
                        &mut seqs,
                        (*hoa, *coa, *seq),
                        *flags,
                        *lifetime,
                        *hao,
                        opts,
                        *udp,
                        *signing,
                    );
                    let after = cache(&e);
                    match status {
                        Some(st) if st.is_accepted() => {
                            let others = |v: &View| -> View {
                                v.iter()
                                    .filter(|((h, _), _)| *h != HOAS[*hoa])
                                    .map(|(k, c)| (*k, *c))
                                    .collect()
                            };
                            prop_assert_eq!(others(&after), others(&before), "{:?}", s);
                        }
                        _ => prop_assert_eq!(&after, &before, "refused ({:?}): {:?}", status, s),
                    }
                }
            }
            let ev = e.events();
            apply(&ev, &mut bus, &mut journal);
            let now = cache(&e);
            prop_assert_eq!(&bus, &now, "the bus after {:?}", s);
            prop_assert_eq!(&journal, &now, "the journal after {:?}", s);
        }
        let restarted: View = through_the_journal(&e)
            .into_iter()
            .map(|b| ((b.hoa, b.bid), b.coa))
            .collect();
        prop_assert_eq!(restarted, cache(&e));
    }
}
