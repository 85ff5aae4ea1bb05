//! Recorded sequences: timed observations in, expected outputs (with the virtual time they
//! come out at) out. Each case reads like a netlink trace (`ip monitor`).
//!
//! Interfaces: eth0 = index 2 (preference 0, preferred), eth1 = index 3 (preference 1),
//! mip0 = index 9. Home address 2001:db8:1::100, home prefix 2001:db8:1::/64 (derived).

use super::*;

const HOA: &str = "2001:db8:1::100";

/// One step of a recorded sequence.
#[derive(Debug, Clone)]
enum Step {
    /// One netlink message; decided at once.
    Obs(Observation),
    /// Several messages read in one wake-up (the start-up dump): decided once.
    Batch(Vec<Observation>),
    /// SIGHUP.
    Sighup,
}

/// An expected output, written compactly.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Exp {
    /// REREG with this CoA (IPv6 or IPv4 text) on this interface.
    Rereg(&'static str, u32),
    /// DEREGHOME on this interface.
    Home(u32),
    /// Router Solicitation on this interface.
    Rs(u32),
}

fn cfg() -> DetectorConfig {
    DetectorConfig {
        interfaces: vec![
            WatchedInterface {
                name: "eth0".into(),
                preference: 0,
            },
            WatchedInterface {
                name: "eth1".into(),
                preference: 1,
            },
        ],
        mip_interface: Some("mip0".into()),
        home_address: Some(HOA.parse().unwrap()),
        home_prefixes: Vec::new(),
        hold_down: Duration::from_millis(2000),
        accept_optimistic: false,
        multiple_coa: false,
    }
}

fn name(ifindex: u32) -> &'static str {
    match ifindex {
        2 => "eth0",
        3 => "eth1",
        4 => "wlan0",
        9 => "mip0",
        _ => "other",
    }
}

fn link(ifindex: u32, up: bool) -> Observation {
    Observation::Link(LinkInfo {
        ifindex,
        name: name(ifindex).into(),
        up,
        loopback: false,
    })
}

fn up(ifindex: u32) -> Step {
    Step::Obs(link(ifindex, true))
}

fn down(ifindex: u32) -> Step {
    Step::Obs(link(ifindex, false))
}

fn a(ifindex: u32, cidr: &str, flags: AddrFlags) -> Observation {
    let (addr, len) = cidr.split_once('/').unwrap();
    let addr: IpAddr = addr.parse().unwrap();
    let scope = match addr {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Scope::Link,
        _ => Scope::Global,
    };
    Observation::AddrAdded(AddrInfo {
        ifindex,
        addr,
        prefix_len: len.parse().unwrap(),
        flags,
        scope,
    })
}

/// A usable address (also: a flags change to usable, as the kernel re-sends NEWADDR).
fn addr(ifindex: u32, cidr: &str) -> Step {
    Step::Obs(a(ifindex, cidr, AddrFlags::default()))
}

fn tentative(ifindex: u32, cidr: &str) -> Step {
    Step::Obs(a(
        ifindex,
        cidr,
        AddrFlags {
            tentative: true,
            ..Default::default()
        },
    ))
}

fn deprecated(ifindex: u32, cidr: &str) -> Step {
    Step::Obs(a(
        ifindex,
        cidr,
        AddrFlags {
            deprecated: true,
            ..Default::default()
        },
    ))
}

fn dadfailed(ifindex: u32, cidr: &str) -> Step {
    Step::Obs(a(
        ifindex,
        cidr,
        AddrFlags {
            tentative: true,
            dadfailed: true,
            ..Default::default()
        },
    ))
}

fn del(ifindex: u32, address: &str) -> Step {
    Step::Obs(Observation::AddrRemoved {
        ifindex,
        addr: address.parse().unwrap(),
    })
}

/// The usual start: both links up with link-local and global addresses, as a dump.
fn dump_two_links() -> Step {
    Step::Batch(vec![
        link(2, true),
        link(3, true),
        link(9, true),
        a(2, "fe80::2/64", AddrFlags::default()),
        a(3, "fe80::3/64", AddrFlags::default()),
        a(2, "2001:db8:a::5/64", AddrFlags::default()),
        a(3, "2001:db8:b::5/64", AddrFlags::default()),
        a(9, "2001:db8:1::100/128", AddrFlags::default()),
    ])
}

/// Replays `steps` on virtual time, firing the hold-down timer whenever it falls before
/// the next step (and after the last step, up to `end_ms`).
fn replay(cfg: DetectorConfig, steps: &[(u64, Step)], end_ms: u64) -> (Detector, Vec<(u64, Exp)>) {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut d = Detector::new(cfg);
    let mut out = Vec::new();
    for (ms, step) in steps {
        fire_until(&mut d, t0, at(*ms), &mut out);
        let now = at(*ms);
        match step.clone() {
            Step::Obs(o) => d.handle(now, o),
            Step::Batch(batch) => {
                for o in batch {
                    d.observe(now, o);
                }
                d.decide(now);
            }
            Step::Sighup => d.resend(),
        }
        drain(&mut d, t0, now, &mut out);
    }
    fire_until(&mut d, t0, at(end_ms), &mut out);
    (d, out)
}

fn fire_until(d: &mut Detector, t0: Instant, t: Instant, out: &mut Vec<(u64, Exp)>) {
    while let Some(deadline) = d.poll_timeout() {
        if deadline > t {
            break;
        }
        d.handle_timeout(deadline);
        drain(d, t0, deadline, out);
    }
}

fn drain(d: &mut Detector, t0: Instant, now: Instant, out: &mut Vec<(u64, Exp)>) {
    while let Some(o) = d.poll_output() {
        out.push(((now - t0).as_millis() as u64, to_exp(&o, d)));
    }
}

fn to_exp(o: &Output, d: &Detector) -> Exp {
    match o {
        Output::SendRouterSolicitation { ifindex } => Exp::Rs(*ifindex),
        Output::MdInfo(md) => {
            // Every MD_INFO names the home address.
            assert_eq!(md.hoa, d.home_address(), "{md:?}");
            match md.command {
                MdCommand::Rereg => {
                    assert_eq!(md.hint, MdHint::Addr);
                    let coa = md.coa.expect("REREG carries a CoA").to_string();
                    Exp::Rereg(Box::leak(coa.into_boxed_str()), md.ifindex)
                }
                MdCommand::Dereghome => {
                    assert_eq!(md.hint, MdHint::Home);
                    Exp::Home(md.ifindex)
                }
                other => panic!("unexpected command {other:?}"),
            }
        }
    }
}

fn check(steps: &[(u64, Step)], end_ms: u64, expected: &[(u64, Exp)]) -> Detector {
    check_with(cfg(), steps, end_ms, expected)
}

fn check_with(
    cfg: DetectorConfig,
    steps: &[(u64, Step)],
    end_ms: u64,
    expected: &[(u64, Exp)],
) -> Detector {
    let (d, out) = replay(cfg, steps, end_ms);
    assert_eq!(out, expected, "outputs (ms, what) differ");
    d
}

#[test]
fn startup_reconcile_picks_preferred_interface_once() {
    let d = check(
        &[(0, dump_two_links())],
        10_000,
        &[
            (0, Exp::Rs(2)),
            (0, Exp::Rs(3)),
            (0, Exp::Rereg("2001:db8:a::5", 2)),
        ],
    );
    assert_eq!(
        d.current_coa(),
        CurrentCoa {
            coa: Some(CareOf::V6("2001:db8:a::5".parse().unwrap())),
            ifindex: 2,
            at_home: false
        }
    );
}

#[test]
fn startup_batch_hides_transient_states() {
    // The dump shows eth1's address first, eth0's later in the same batch: decided once,
    // so mrd never hears of eth1.
    check(
        &[(
            0,
            Step::Batch(vec![
                link(3, true),
                a(3, "2001:db8:b::5/64", AddrFlags::default()),
                link(2, true),
                a(2, "2001:db8:a::5/64", AddrFlags::default()),
            ]),
        )],
        5000,
        &[(0, Exp::Rereg("2001:db8:a::5", 2))],
    );
}

#[test]
fn startup_replay_of_queued_events_converges() {
    // Subscribed, then dumped: events queued during the dump are replayed after it, even
    // those the dump already reflects (a stale "tentative" NEWADDR for an address the
    // dump shows usable, then the "usable" one again, then eth0's address going away).
    // One decision at the end: the kernel's final state, and nothing in between.
    check(
        &[(
            0,
            Step::Batch(vec![
                // dump
                link(2, true),
                link(3, true),
                a(2, "2001:db8:a::5/64", AddrFlags::default()),
                a(3, "2001:db8:b::5/64", AddrFlags::default()),
                // queued events
                a(
                    2,
                    "2001:db8:a::5/64",
                    AddrFlags {
                        tentative: true,
                        ..Default::default()
                    },
                ),
                a(2, "2001:db8:a::5/64", AddrFlags::default()),
                Observation::AddrRemoved {
                    ifindex: 2,
                    addr: "2001:db8:a::5".parse().unwrap(),
                },
            ]),
        )],
        5000,
        &[(0, Exp::Rereg("2001:db8:b::5", 3))],
    );
}

#[test]
fn new_address_after_ra_tentative_then_usable() {
    // Link comes up, link-local DAD, RA → SLAAC address tentative for ~2.6 s, then usable.
    check(
        &[
            (0, up(2)),
            (0, tentative(2, "fe80::2/64")),
            (900, addr(2, "fe80::2/64")),
            (1500, tentative(2, "2001:db8:a::5/64")),
            (4100, addr(2, "2001:db8:a::5/64")),
        ],
        10_000,
        &[(900, Exp::Rs(2)), (4100, Exp::Rereg("2001:db8:a::5", 2))],
    );
}

#[test]
fn dad_failed_address_is_never_used() {
    check(
        &[
            (0, up(2)),
            (0, tentative(2, "2001:db8:a::5/64")),
            (1000, dadfailed(2, "2001:db8:a::5/64")),
            (1500, addr(3, "2001:db8:b::5/64")), // eth1 not known yet: ignored
            (1600, up(3)),
            (1700, addr(3, "2001:db8:b::5/64")),
        ],
        10_000,
        &[(1700, Exp::Rereg("2001:db8:b::5", 3))],
    );
}

#[test]
fn deprecated_coa_moves_to_other_interface_at_once() {
    check(
        &[
            (0, dump_two_links()),
            (5000, deprecated(2, "2001:db8:a::5/64")),
        ],
        20_000,
        &[
            (0, Exp::Rs(2)),
            (0, Exp::Rs(3)),
            (0, Exp::Rereg("2001:db8:a::5", 2)),
            (5000, Exp::Rereg("2001:db8:b::5", 3)),
        ],
    );
}

#[test]
fn deprecated_coa_prefers_fresh_address_on_same_link() {
    // Renumbering: a new prefix arrives on eth0 while the old one is deprecated.
    check(
        &[
            (0, dump_two_links()),
            (3000, addr(2, "2001:db8:aa::5/64")),
            (4000, deprecated(2, "2001:db8:a::5/64")),
        ],
        20_000,
        &[
            (0, Exp::Rs(2)),
            (0, Exp::Rs(3)),
            (0, Exp::Rereg("2001:db8:a::5", 2)),
            (4000, Exp::Rereg("2001:db8:aa::5", 2)),
        ],
    );
}

#[test]
fn link_down_switches_to_other_interface_at_once() {
    // Linux deletes static global addresses on link down (keep_addr_on_down=0): the link
    // message comes first, the DELADDR after; the switch happens on the first.
    check(
        &[
            (0, dump_two_links()),
            (5000, down(2)),
            (5000, del(2, "2001:db8:a::5")),
        ],
        20_000,
        &[
            (0, Exp::Rs(2)),
            (0, Exp::Rs(3)),
            (0, Exp::Rereg("2001:db8:a::5", 2)),
            (5000, Exp::Rereg("2001:db8:b::5", 3)),
        ],
    );
}

#[test]
fn flapping_link_is_held_down() {
    // eth0 (preferred) flaps; eth1 carries the binding meanwhile. eth0 comes back for
    // less than the hold-down twice (no signalling), then stays: one switch back, 2 s
    // after its address became usable.
    let d = check(
        &[
            (0, dump_two_links()),
            (1000, down(2)),
            (1000, del(2, "2001:db8:a::5")),
            (1500, up(2)),
            (1500, addr(2, "2001:db8:a::5/64")),
            (2500, down(2)),
            (2500, del(2, "2001:db8:a::5")),
            (3000, up(2)),
            (3000, addr(2, "2001:db8:a::5/64")),
            (4000, down(2)),
            (4000, del(2, "2001:db8:a::5")),
            (6000, up(2)),
            (6100, addr(2, "2001:db8:a::5/64")),
        ],
        20_000,
        &[
            (0, Exp::Rs(2)),
            (0, Exp::Rs(3)),
            (0, Exp::Rereg("2001:db8:a::5", 2)),
            (1000, Exp::Rereg("2001:db8:b::5", 3)),
            // link-local fe80::2 survives in this recording, so each up solicits at once
            (1500, Exp::Rs(2)),
            (3000, Exp::Rs(2)),
            (6000, Exp::Rs(2)),
            (8100, Exp::Rereg("2001:db8:a::5", 2)),
        ],
    );
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn better_address_waits_for_hold_down_but_worse_never_switches() {
    check(
        &[
            (0, up(3)),
            (0, addr(3, "2001:db8:b::5/64")),
            (100, addr(3, "2001:db8:b::6/64")), // same link: stick with ::5
            (1000, up(2)),
            (1000, addr(2, "2001:db8:a::5/64")),
        ],
        10_000,
        &[
            (0, Exp::Rereg("2001:db8:b::5", 3)),
            (3000, Exp::Rereg("2001:db8:a::5", 2)),
        ],
    );
}

#[test]
fn losing_the_coa_while_better_is_held_down_switches_at_once() {
    check(
        &[
            (0, up(3)),
            (0, addr(3, "2001:db8:b::5/64")),
            (1000, up(2)),
            (1000, addr(2, "2001:db8:a::5/64")),
            (1500, down(3)),
        ],
        10_000,
        &[
            (0, Exp::Rereg("2001:db8:b::5", 3)),
            (1500, Exp::Rereg("2001:db8:a::5", 2)),
        ],
    );
}

#[test]
fn coming_home_and_leaving_again() {
    // eth1 is plugged into the home link; the HoA's /64 appears there.
    let d = check(
        &[
            (0, dump_two_links()),
            (5000, del(3, "2001:db8:b::5")),
            (5000, addr(3, "2001:db8:1::5/64")),
        ],
        7000,
        &[
            (0, Exp::Rs(2)),
            (0, Exp::Rs(3)),
            (0, Exp::Rereg("2001:db8:a::5", 2)),
            // eth0's CoA still works: home must be stable for the hold-down first.
            (7000, Exp::Home(3)),
        ],
    );
    assert!(d.current_coa().at_home);
    let md = d.md_info().unwrap();
    assert_eq!(md.coa, Some(CareOf::V6("2001:db8:1::5".parse().unwrap())));
    // Leaving home: the home-prefix address goes, eth0 is used at once.
    check(
        &[
            (0, dump_two_links()),
            (5000, addr(3, "2001:db8:1::5/64")),
            (8000, del(3, "2001:db8:1::5")),
        ],
        10_000,
        &[
            (0, Exp::Rs(2)),
            (0, Exp::Rs(3)),
            (0, Exp::Rereg("2001:db8:a::5", 2)),
            (7000, Exp::Home(3)),
            (8000, Exp::Rereg("2001:db8:a::5", 2)),
        ],
    );
}

#[test]
fn starting_at_home_deregisters_at_once() {
    check(
        &[(
            0,
            Step::Batch(vec![
                link(2, true),
                a(2, "2001:db8:1::100/64", AddrFlags::default()),
            ]),
        )],
        5000,
        &[(0, Exp::Home(2))],
    );
}

#[test]
fn home_hint_from_the_bus_means_home() {
    check(
        &[
            (0, up(3)),
            (0, addr(3, "2001:db8:b::5/64")),
            (
                5000,
                Step::Obs(Observation::HomeHint {
                    ifindex: 3,
                    prefix: "2001:db8:1::/64".parse().unwrap(),
                }),
            ),
        ],
        10_000,
        // The link has been up since 0, so the hint is "stable" already.
        &[(0, Exp::Rereg("2001:db8:b::5", 3)), (5000, Exp::Home(3))],
    );
    // A hint for another home prefix changes nothing.
    check(
        &[
            (0, up(3)),
            (0, addr(3, "2001:db8:b::5/64")),
            (
                5000,
                Step::Obs(Observation::HomeHint {
                    ifindex: 3,
                    prefix: "2001:db8:2::/64".parse().unwrap(),
                }),
            ),
        ],
        10_000,
        &[(0, Exp::Rereg("2001:db8:b::5", 3))],
    );
}

#[test]
fn ipv4_only_then_ipv6_preferred() {
    let d = check(
        &[
            (0, up(2)),
            (0, addr(2, "192.0.2.5/24")),
            (0, addr(2, "169.254.1.1/16")), // link-local IPv4: never a CoA
            (1000, up(3)),
            (1000, addr(3, "2001:db8:b::5/64")),
        ],
        10_000,
        &[
            (0, Exp::Rereg("192.0.2.5", 2)),
            // IPv6 beats IPv4 even on the less preferred interface, after the hold-down.
            (3000, Exp::Rereg("2001:db8:b::5", 3)),
        ],
    );
    // coa2 carries the other family's best address.
    let md = d.md_info().unwrap();
    assert_eq!(md.coa2, Some("192.0.2.5".parse().unwrap()));
}

#[test]
fn ipv4_used_when_ipv6_lost() {
    check(
        &[
            (0, up(2)),
            (0, addr(2, "2001:db8:a::5/64")),
            (0, addr(2, "192.0.2.5/24")),
            (5000, del(2, "2001:db8:a::5")),
        ],
        10_000,
        &[
            (0, Exp::Rereg("2001:db8:a::5", 2)),
            (5000, Exp::Rereg("192.0.2.5", 2)),
        ],
    );
}

#[test]
fn detached_then_reattached_and_sighup() {
    let d = check(
        &[
            (0, up(2)),
            (0, addr(2, "2001:db8:a::5/64")),
            (1000, down(2)),
            (1000, del(2, "2001:db8:a::5")),
            (1200, Step::Sighup), // detached: nothing to repeat
            (2000, up(2)),
            (2000, addr(2, "2001:db8:a::7/64")),
            (3000, Step::Sighup),
        ],
        10_000,
        &[
            (0, Exp::Rereg("2001:db8:a::5", 2)),
            (2000, Exp::Rereg("2001:db8:a::7", 2)),
            (3000, Exp::Rereg("2001:db8:a::7", 2)),
        ],
    );
    assert_eq!(
        d.selection(),
        Selection::Foreign {
            coa: "2001:db8:a::7".parse().unwrap(),
            ifindex: 2
        }
    );
}

#[test]
fn unwatched_and_mip_interfaces_are_ignored() {
    check(
        &[
            (0, up(4)), // wlan0 not on the list
            (0, addr(4, "2001:db8:c::5/64")),
            (0, up(9)),
            (0, addr(9, "2001:db8:e::1/64")),
            (100, up(2)),
            (100, addr(2, "fe80::2/64")),
            (100, addr(2, "2001:db8:a::5/64")),
        ],
        10_000,
        &[(100, Exp::Rs(2)), (100, Exp::Rereg("2001:db8:a::5", 2))],
    );
}

#[test]
fn home_address_learnt_from_mip_interface() {
    let mut c = cfg();
    c.home_address = None;
    let d = check_with(
        c,
        &[
            (0, up(9)),
            (0, addr(9, "fe80::9/64")),
            (0, addr(9, "2001:db8:1::100/64")),
            (0, up(2)),
            (0, addr(2, "2001:db8:a::5/64")),
            (1000, up(3)),
            (1000, addr(3, "2001:db8:1::77/64")),
        ],
        10_000,
        &[(0, Exp::Rereg("2001:db8:a::5", 2)), (3000, Exp::Home(3))],
    );
    assert_eq!(d.home_address(), Some(HOA.parse().unwrap()));
}

#[test]
fn watch_all_without_interface_list() {
    let mut c = cfg();
    c.interfaces.clear();
    check_with(
        c,
        &[
            (
                0,
                Step::Obs(Observation::Link(LinkInfo {
                    ifindex: 1,
                    name: "lo".into(),
                    up: true,
                    loopback: true,
                })),
            ),
            (0, Step::Obs(a(1, "::1/128", AddrFlags::default()))),
            (0, up(4)),
            (0, addr(4, "2001:db8:c::5/64")),
            (0, up(3)),
            (0, addr(3, "2001:db8:b::5/64")),
        ],
        10_000,
        // The lower index wins (SHISA's order), after the hold-down.
        &[
            (0, Exp::Rereg("2001:db8:c::5", 4)),
            (2000, Exp::Rereg("2001:db8:b::5", 3)),
        ],
    );
}

#[test]
fn optimistic_addresses_only_when_allowed() {
    let optimistic = |c: DetectorConfig| {
        replay(
            c,
            &[
                (0, up(2)),
                (
                    0,
                    Step::Obs(a(
                        2,
                        "2001:db8:a::5/64",
                        AddrFlags {
                            tentative: true,
                            optimistic: true,
                            ..Default::default()
                        },
                    )),
                ),
            ],
            5000,
        )
        .1
    };
    assert_eq!(optimistic(cfg()), vec![]);
    let mut c = cfg();
    c.accept_optimistic = true;
    assert_eq!(optimistic(c), vec![(0, Exp::Rereg("2001:db8:a::5", 2))]);
}

// --- Uplinks (RFC 5648) ---

fn mcoa() -> DetectorConfig {
    DetectorConfig {
        multiple_coa: true,
        ..cfg()
    }
}

/// An MD_INFO REREG as (care-of address, interface, [(uplink interface, its address)]).
type Md = (String, u32, Vec<(String, String)>);

fn md_of(md: &MdInfo) -> Md {
    (
        md.coa.expect("REREG carries a CoA").to_string(),
        md.ifindex,
        md.uplinks
            .iter()
            .map(|u| (u.ifname.clone(), u.coa.to_string()))
            .collect(),
    )
}

/// Replays `steps` and returns every REREG with its uplinks, and when it came out.
fn rereg_uplinks(cfg: DetectorConfig, steps: &[(u64, Step)], end_ms: u64) -> Vec<(u64, Md)> {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut d = Detector::new(cfg);
    let mut out = Vec::new();
    let mut take = |d: &mut Detector, now: Instant| {
        while let Some(o) = d.poll_output() {
            if let Output::MdInfo(md) = o
                && md.command == MdCommand::Rereg
            {
                out.push(((now - t0).as_millis() as u64, md_of(&md)));
            }
        }
    };
    let fire = |d: &mut Detector, t: Instant, take: &mut dyn FnMut(&mut Detector, Instant)| {
        while let Some(deadline) = d.poll_timeout() {
            if deadline > t {
                break;
            }
            d.handle_timeout(deadline);
            take(d, deadline);
        }
    };
    for (ms, step) in steps {
        fire(&mut d, at(*ms), &mut take);
        let now = at(*ms);
        match step.clone() {
            Step::Obs(o) => d.handle(now, o),
            Step::Batch(batch) => {
                for o in batch {
                    d.observe(now, o);
                }
                d.decide(now);
            }
            Step::Sighup => d.resend(),
        }
        take(&mut d, now);
    }
    fire(&mut d, at(end_ms), &mut take);
    out
}

fn md(coa: &str, ifindex: u32, uplinks: &[(&str, &str)]) -> Md {
    (
        coa.to_string(),
        ifindex,
        uplinks
            .iter()
            .map(|(n, a)| (n.to_string(), a.to_string()))
            .collect(),
    )
}

#[test]
fn every_rereg_lists_the_uplinks_but_without_mcoa_their_changes_send_nothing() {
    // Without multiple care-of addresses: the uplinks ride along, as information; eth1
    // going away is not worth an MD_INFO (the selection stays), as before.
    let steps = [(0, dump_two_links()), (5000, down(3)), (6000, Step::Sighup)];
    assert_eq!(
        rereg_uplinks(cfg(), &steps, 10_000),
        [
            (
                0,
                md(
                    "2001:db8:a::5",
                    2,
                    &[("eth0", "2001:db8:a::5"), ("eth1", "2001:db8:b::5")]
                )
            ),
            (6000, md("2001:db8:a::5", 2, &[("eth0", "2001:db8:a::5")])),
        ]
    );
    // The outputs the other tests see are the same as they always were.
    check(
        &steps,
        10_000,
        &[
            (0, Exp::Rs(2)),
            (0, Exp::Rs(3)),
            (0, Exp::Rereg("2001:db8:a::5", 2)),
            (6000, Exp::Rereg("2001:db8:a::5", 2)),
        ],
    );
}

#[test]
fn with_mcoa_an_uplink_lost_or_back_is_a_rereg_with_the_same_care_of_address() {
    let got = rereg_uplinks(
        mcoa(),
        &[
            (0, dump_two_links()),
            (5000, down(3)),
            (5000, del(3, "2001:db8:b::5")),
            (8000, up(3)),
            // SLAAC again: tentative first (not yet an uplink), then usable.
            (8000, tentative(3, "2001:db8:b::7/64")),
            (9000, addr(3, "2001:db8:b::7/64")),
            // The same set again: nothing.
            (9500, addr(3, "2001:db8:b::7/64")),
        ],
        20_000,
    );
    let both = |b: &str| {
        md(
            "2001:db8:a::5",
            2,
            &[("eth0", "2001:db8:a::5"), ("eth1", b)],
        )
    };
    assert_eq!(
        got,
        [
            (0, both("2001:db8:b::5")),
            (5000, md("2001:db8:a::5", 2, &[("eth0", "2001:db8:a::5")])),
            (9000, both("2001:db8:b::7")),
        ]
    );
}

#[test]
fn each_interface_offers_ipv6_before_ipv4_and_never_a_home_prefix_address() {
    let got = rereg_uplinks(
        mcoa(),
        &[
            (
                0,
                Step::Batch(vec![
                    link(2, true),
                    link(3, true),
                    a(2, "192.0.2.5/24", AddrFlags::default()),
                    a(2, "2001:db8:a::5/64", AddrFlags::default()),
                    a(3, "198.51.100.5/24", AddrFlags::default()),
                ]),
            ),
            // eth1 meets the home prefix: not an uplink, and home after the hold-down.
            (3000, addr(3, "2001:db8:1::5/64")),
            (3000, del(3, "198.51.100.5")),
        ],
        10_000,
    );
    assert_eq!(
        got,
        [
            (
                0,
                md(
                    "2001:db8:a::5",
                    2,
                    &[("eth0", "2001:db8:a::5"), ("eth1", "198.51.100.5")]
                )
            ),
            (3000, md("2001:db8:a::5", 2, &[("eth0", "2001:db8:a::5")])),
        ]
    );
}

#[test]
fn the_selected_address_is_its_interfaces_uplink_during_a_hold_down() {
    // On IPv4 at eth0; an IPv6 address arrives on eth0 and waits out the hold-down: until
    // the switch, eth0's uplink is the IPv4 address in use, so the selection is always
    // one of the uplinks. A better interface coming up is an uplink at once.
    let got = rereg_uplinks(
        mcoa(),
        &[
            (0, up(3)),
            (0, addr(3, "192.0.2.5/24")),
            (1000, addr(3, "2001:db8:b::5/64")),
            (1500, up(2)),
            (1500, addr(2, "2001:db8:a::5/64")),
        ],
        10_000,
    );
    assert_eq!(
        got,
        [
            (0, md("192.0.2.5", 3, &[("eth1", "192.0.2.5")])),
            // eth1's IPv6 address is better, held down until 3000; eth0 comes up at 1500,
            // an uplink at once (the selection stays where it is).
            (
                1500,
                md(
                    "192.0.2.5",
                    3,
                    &[("eth0", "2001:db8:a::5"), ("eth1", "192.0.2.5")]
                )
            ),
            // The hold-down of eth1's IPv6 address ended at 3000, but eth0 (preferred)
            // is better still and waits until 3500.
            (
                3500,
                md(
                    "2001:db8:a::5",
                    2,
                    &[("eth0", "2001:db8:a::5"), ("eth1", "2001:db8:b::5")]
                )
            ),
        ]
    );
}

#[test]
fn sighup_and_dereghome_with_mcoa() {
    let got = rereg_uplinks(
        mcoa(),
        &[
            (0, dump_two_links()),
            (1000, Step::Sighup),
            (2000, del(3, "2001:db8:b::5")),
            (2000, addr(3, "2001:db8:1::5/64")),
        ],
        10_000,
    );
    let both = md(
        "2001:db8:a::5",
        2,
        &[("eth0", "2001:db8:a::5"), ("eth1", "2001:db8:b::5")],
    );
    assert_eq!(
        got,
        [
            (0, both.clone()),
            (1000, both),
            (2000, md("2001:db8:a::5", 2, &[("eth0", "2001:db8:a::5")])),
        ]
    );
    // At home: DEREGHOME, no uplinks.
    let (d, _) = replay(
        mcoa(),
        &[
            (0, dump_two_links()),
            (2000, del(3, "2001:db8:b::5")),
            (2000, addr(3, "2001:db8:1::5/64")),
        ],
        10_000,
    );
    let md = d.md_info().unwrap();
    assert_eq!(md.command, MdCommand::Dereghome);
    assert!(md.uplinks.is_empty());
    assert!(d.uplinks().is_empty());
}
