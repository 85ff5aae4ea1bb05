use super::*;
use mipsock::BuFlags;
use std::net::Ipv6Addr;

fn binding(hoa: &str, coa: &str, mnp6: &[&str], mnp4: &[&str]) -> Binding {
    Binding {
        hoa: hoa.parse().unwrap(),
        hoa_v4: None,
        coa: coa.parse().unwrap(),
        ha: "2001:db8:1::1".parse().unwrap(),
        ha_v4: Some("192.0.2.1".parse().unwrap()),
        mnp_v6: mnp6.iter().map(|p| p.parse().unwrap()).collect(),
        mnp_v4: mnp4.iter().map(|p| p.parse().unwrap()).collect(),
        encapsulation: BindingEncap::InIpv6,
        lifetime: 600,
        binding_id: None,
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        nat_detected: false,
        coa_ifindex: None,
        flows: Vec::new(),
        bid_priority: 0,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn now() -> BatchClock {
    BatchClock::new()
}

/// The HoA of the binding a packet to `d` goes to (HA), from a CN.
fn to(s: &Snapshot, d: &str) -> Option<String> {
    let d = ip(d);
    let cn = if d.is_ipv4() {
        ip("203.0.113.9")
    } else {
        ip("2001:db8:ffff::1")
    };
    s.tx_lookup(cn, d, || 0).map(|p| p.binding.hoa.to_string())
}

#[test]
fn outer_headers_per_rfc5555_formats() {
    let b = binding("2001:db8:1::100", "2001:db8:a::5", &[], &[]);
    let mr = Peer::new(Mode::MobileRouter, &b).unwrap();
    assert_eq!(
        mr.encap,
        Encapsulation::Ipv6 {
            src_addr: "2001:db8:a::5".parse().unwrap(),
            dst_addr: "2001:db8:1::1".parse().unwrap()
        }
    );
    assert_eq!(mr.remote, Remote::V6("2001:db8:1::1".parse().unwrap()));
    let ha = Peer::new(Mode::HomeAgent, &b).unwrap();
    assert_eq!(ha.remote, Remote::V6("2001:db8:a::5".parse().unwrap()));

    let mut b4 = binding("2001:db8:1::100", "203.0.113.5", &[], &[]);
    b4.encapsulation = BindingEncap::InIpv4;
    let ha = Peer::new(Mode::HomeAgent, &b4).unwrap();
    assert_eq!(
        ha.encap,
        Encapsulation::Ipv4 {
            src_addr: "192.0.2.1".parse().unwrap(),
            dst_addr: "203.0.113.5".parse().unwrap()
        }
    );

    let mut bu = binding("2001:db8:1::100", "203.0.113.5:40000", &[], &[]);
    bu.encapsulation = BindingEncap::UdpIpv4 { ha_port: 4191 };
    let ha = Peer::new(Mode::HomeAgent, &bu).unwrap();
    assert_eq!(
        ha.encap,
        Encapsulation::Udp4 {
            src_addr: "192.0.2.1".parse().unwrap(),
            dst_addr: "203.0.113.5".parse().unwrap(),
            src_port: 4191,
            dst_port: 40000
        }
    );
    assert_eq!(ha.remote, Remote::Udp("203.0.113.5:40000".parse().unwrap()));
    let mr = Peer::new(Mode::MobileRouter, &bu).unwrap();
    assert_eq!(mr.remote, Remote::Udp("192.0.2.1:4191".parse().unwrap()));

    b4.ha_v4 = None;
    assert!(Peer::new(Mode::MobileRouter, &b4).is_err());
}

#[test]
fn ha_looks_up_by_inner_destination_longest_prefix() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let a = binding(
        "2001:db8:1::100",
        "2001:db8:a::5",
        &["2001:db8:100::/48"],
        &["198.51.100.0/24"],
    );
    let b = binding(
        "2001:db8:1::200",
        "2001:db8:b::5",
        &["2001:db8:100:5::/64"],
        &[],
    );
    t.upsert(Peer::new(Mode::HomeAgent, &a).unwrap());
    t.upsert(Peer::new(Mode::HomeAgent, &b).unwrap());
    let s = t.snapshot();
    assert_eq!(
        to(&s, "2001:db8:100:1::1").as_deref(),
        Some("2001:db8:1::100")
    );
    assert_eq!(
        to(&s, "2001:db8:100:5::1").as_deref(),
        Some("2001:db8:1::200")
    );
    assert_eq!(
        to(&s, "2001:db8:1::200").as_deref(),
        Some("2001:db8:1::200")
    );
    assert_eq!(to(&s, "198.51.100.7").as_deref(), Some("2001:db8:1::100"));
    assert!(to(&s, "2001:db8:9::1").is_none());
    assert!(to(&s, "198.51.101.7").is_none());
    // A move replaces the outer header, nothing else.
    let mut moved = a.clone();
    moved.coa = "2001:db8:c::5".parse().unwrap();
    t.upsert(Peer::new(Mode::HomeAgent, &moved).unwrap());
    assert_eq!(t.len(), 2);
    let s = t.snapshot();
    assert_eq!(
        s.tx_lookup(ip("2001:db8:ffff::1"), ip("2001:db8:100:1::1"), || 0)
            .map(|p| p.encap),
        Some(Encapsulation::Ipv6 {
            src_addr: "2001:db8:1::1".parse().unwrap(),
            dst_addr: "2001:db8:c::5".parse().unwrap()
        })
    );
    t.remove(&b);
    let s = t.snapshot();
    assert_eq!(
        to(&s, "2001:db8:100:5::1").as_deref(),
        Some("2001:db8:1::100")
    );
    assert_eq!(to(&s, "2001:db8:1::200"), None);
}

#[test]
fn ha_overlapping_prefixes_of_both_families_longest_wins_and_removal_uncovers() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let mut wide = binding(
        "2001:db8:1::1:1",
        "2001:db8:a::1",
        &["2001:db8:100::/40"],
        &["10.0.0.0/8"],
    );
    wide.hoa_v4 = Some("192.0.2.101".parse().unwrap());
    let mid = binding(
        "2001:db8:1::1:2",
        "2001:db8:a::2",
        &["2001:db8:100::/48"],
        &["10.1.0.0/16"],
    );
    // The HoA of another MR inside `mid`'s prefix: the /128 wins over the /48.
    let narrow = binding(
        "2001:db8:100:0:1::9",
        "2001:db8:a::3",
        &["2001:db8:100:7::/64"],
        &["10.1.2.0/24"],
    );
    for b in [&wide, &mid, &narrow] {
        t.upsert(Peer::new(Mode::HomeAgent, b).unwrap());
    }
    let s = t.snapshot();
    assert_eq!(
        to(&s, "2001:db8:1ff::1").as_deref(),
        Some("2001:db8:1::1:1")
    );
    assert_eq!(
        to(&s, "2001:db8:100:6::1").as_deref(),
        Some("2001:db8:1::1:2")
    );
    assert_eq!(
        to(&s, "2001:db8:100:7::1").as_deref(),
        Some("2001:db8:100:0:1::9")
    );
    assert_eq!(
        to(&s, "2001:db8:100:0:1::9").as_deref(),
        Some("2001:db8:100:0:1::9")
    );
    assert_eq!(
        to(&s, "2001:db8:100:0:1::8").as_deref(),
        Some("2001:db8:1::1:2")
    );
    assert_eq!(to(&s, "10.9.9.9").as_deref(), Some("2001:db8:1::1:1"));
    assert_eq!(to(&s, "10.1.9.9").as_deref(), Some("2001:db8:1::1:2"));
    assert_eq!(to(&s, "10.1.2.9").as_deref(), Some("2001:db8:100:0:1::9"));
    assert_eq!(to(&s, "192.0.2.101").as_deref(), Some("2001:db8:1::1:1"));
    assert_eq!(to(&s, "192.0.2.102"), None);
    // IPv4-mapped IPv6 is IPv6: no IPv4 prefix matches it.
    assert_eq!(to(&s, "::ffff:10.1.2.9"), None);

    t.remove(&narrow);
    let s = t.snapshot();
    assert_eq!(
        to(&s, "2001:db8:100:7::1").as_deref(),
        Some("2001:db8:1::1:2")
    );
    assert_eq!(to(&s, "10.1.2.9").as_deref(), Some("2001:db8:1::1:2"));
    assert_eq!(
        to(&s, "2001:db8:100:0:1::9").as_deref(),
        Some("2001:db8:1::1:2")
    );
    t.remove(&mid);
    let s = t.snapshot();
    assert_eq!(
        to(&s, "2001:db8:100:7::1").as_deref(),
        Some("2001:db8:1::1:1")
    );
    assert_eq!(to(&s, "10.1.2.9").as_deref(), Some("2001:db8:1::1:1"));
    t.clear();
    let s = t.snapshot();
    assert!(s.peers().is_empty());
    assert_eq!(to(&s, "10.1.2.9"), None);
}

#[test]
fn ha_two_bindings_with_one_prefix_the_later_wins_as_before() {
    // Two registrations of one prefix (an operator's mistake, or RFC 5648 multiple
    // care-of addresses): the linear scan took the last of the longest matches.
    let mut t = PeerTable::new(Mode::HomeAgent);
    let a = binding(
        "2001:db8:1::1",
        "2001:db8:a::1",
        &["2001:db8:100::/48"],
        &[],
    );
    let mut b = a.clone();
    b.binding_id = Some(2);
    b.coa = "2001:db8:a::2".parse().unwrap();
    t.upsert(Peer::new(Mode::HomeAgent, &a).unwrap());
    t.upsert(Peer::new(Mode::HomeAgent, &b).unwrap());
    let s = t.snapshot();
    assert_eq!(
        s.tx_lookup(ip("2001:db8:ffff::1"), ip("2001:db8:100::1"), || 0)
            .map(|p| p.remote),
        Some(Remote::V6("2001:db8:a::2".parse().unwrap()))
    );
}

#[test]
fn ha_accepts_only_the_coa_and_the_mrs_own_sources() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let a = binding(
        "2001:db8:1::100",
        "2001:db8:a::5",
        &["2001:db8:100::/48"],
        &["198.51.100.0/24"],
    );
    t.upsert(Peer::new(Mode::HomeAgent, &a).unwrap());
    let s = t.snapshot();
    let coa = Remote::V6("2001:db8:a::5".parse().unwrap());
    let c = &mut now();
    assert!(s.rx_check(coa, ip("2001:db8:100::7"), c).is_ok());
    assert!(s.rx_check(coa, ip("2001:db8:1::100"), c).is_ok());
    assert!(s.rx_check(coa, ip("198.51.100.7"), c).is_ok());
    assert_eq!(
        s.rx_check(coa, ip("2001:db8:dead::1"), c),
        Err(RxRefusal::SpoofedInnerSource)
    );
    assert_eq!(
        s.rx_check(coa, ip("203.0.113.1"), c),
        Err(RxRefusal::SpoofedInnerSource)
    );
    assert_eq!(
        s.rx_check(
            Remote::V6("2001:db8:a::6".parse().unwrap()),
            ip("2001:db8:100::7"),
            c
        ),
        Err(RxRefusal::UnknownOuterSource)
    );
    // Same address, another kind of outer header: another remote.
    assert_eq!(
        s.rx_check(
            Remote::V4("192.0.2.5".parse().unwrap()),
            ip("2001:db8:100::7"),
            c
        ),
        Err(RxRefusal::UnknownOuterSource)
    );
    t.remove(&a);
    assert_eq!(
        t.snapshot().rx_check(coa, ip("2001:db8:100::7"), c),
        Err(RxRefusal::UnknownOuterSource)
    );
}

#[test]
fn ha_two_mrs_behind_one_nat_address_each_with_its_own_sources() {
    // IP-in-IPv4 from two MRs behind one NAT: one outer source, two bindings.
    let mut t = PeerTable::new(Mode::HomeAgent);
    let mut a = binding("2001:db8:1::1", "203.0.113.5", &["2001:db8:100::/48"], &[]);
    a.encapsulation = BindingEncap::InIpv4;
    let mut b = binding("2001:db8:1::2", "203.0.113.5", &["2001:db8:200::/48"], &[]);
    b.encapsulation = BindingEncap::InIpv4;
    t.upsert(Peer::new(Mode::HomeAgent, &a).unwrap());
    t.upsert(Peer::new(Mode::HomeAgent, &b).unwrap());
    let s = t.snapshot();
    let nat = Remote::V4("203.0.113.5".parse().unwrap());
    let c = &mut now();
    assert!(s.rx_check(nat, ip("2001:db8:100::1"), c).is_ok());
    assert!(s.rx_check(nat, ip("2001:db8:200::1"), c).is_ok());
    assert_eq!(
        s.rx_check(nat, ip("2001:db8:300::1"), c),
        Err(RxRefusal::SpoofedInnerSource)
    );
}

#[test]
fn ha_accepts_the_previous_coa_for_a_moment_after_a_move() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let a = binding(
        "2001:db8:1::100",
        "2001:db8:a::5",
        &["2001:db8:100::/48"],
        &[],
    );
    t.upsert(Peer::new(Mode::HomeAgent, &a).unwrap());
    let old = Remote::V6("2001:db8:a::5".parse().unwrap());
    let new = Remote::V6("2001:db8:b::5".parse().unwrap());
    let mut moved = a.clone();
    moved.coa = "2001:db8:b::5".parse().unwrap();
    let before = Instant::now();
    t.upsert(Peer::new(Mode::HomeAgent, &moved).unwrap());
    let s = t.snapshot();
    // Packets the MR sent from the old CoA before its BA arrived still enter...
    let c = &mut now();
    assert!(s.rx_check(old, ip("2001:db8:100::7"), c).is_ok());
    assert!(s.rx_check(new, ip("2001:db8:100::7"), c).is_ok());
    // ...with the inner-source check as always...
    assert_eq!(
        s.rx_check(old, ip("2001:db8:dead::1"), c),
        Err(RxRefusal::SpoofedInnerSource)
    );
    // ...a refresh at the new CoA keeps the grace running...
    t.upsert(Peer::new(Mode::HomeAgent, &moved).unwrap());
    let s = t.snapshot();
    assert!(s.rx_check(old, ip("2001:db8:100::7"), c).is_ok());
    // ...and once it is over, the old CoA is unknown (a batch after the grace).
    let late = &mut BatchClock::at(before + MOVE_GRACE + Duration::from_millis(20));
    assert_eq!(
        s.rx_check(old, ip("2001:db8:100::7"), late),
        Err(RxRefusal::UnknownOuterSource)
    );
    assert!(s.rx_check(new, ip("2001:db8:100::7"), late).is_ok());
}

#[test]
fn the_clock_is_read_only_for_packets_from_a_previous_coa() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let a = binding(
        "2001:db8:1::100",
        "2001:db8:a::5",
        &["2001:db8:100::/48"],
        &[],
    );
    t.upsert(Peer::new(Mode::HomeAgent, &a).unwrap());
    let s = t.snapshot();
    let mut c = BatchClock::new();
    let coa = Remote::V6("2001:db8:a::5".parse().unwrap());
    assert!(s.rx_check(coa, ip("2001:db8:100::7"), &mut c).is_ok());
    assert!(c.0.is_none());
    let stranger = Remote::V6("2001:db8:f::5".parse().unwrap());
    let _ = s.rx_check(stranger, ip("2001:db8:100::7"), &mut c);
    assert!(c.0.is_none());
    // Read once, then the same time for the rest of the batch.
    let first = c.now();
    assert_eq!(c.now(), first);
}

#[test]
fn mr_accepts_any_inner_source_but_only_from_its_ha() {
    let mut t = PeerTable::new(Mode::MobileRouter);
    let a = binding(
        "2001:db8:1::100",
        "2001:db8:a::5",
        &["2001:db8:100::/48"],
        &[],
    );
    t.upsert(Peer::new(Mode::MobileRouter, &a).unwrap());
    let s = t.snapshot();
    let ha = Remote::V6("2001:db8:1::1".parse().unwrap());
    let c = &mut now();
    assert!(s.rx_check(ha, ip("2001:db8:ffff::1"), c).is_ok());
    assert_eq!(
        s.rx_check(
            Remote::V6("2001:db8:a::9".parse().unwrap()),
            ip("2001:db8:ffff::1"),
            c
        ),
        Err(RxRefusal::UnknownOuterSource)
    );
    // Everything from the mobile network goes to the HA.
    assert!(
        s.tx_lookup(ip("2001:db8:100::7"), ip("2001:db8:ffff::1"), || 0)
            .is_some()
    );
    assert!(
        s.tx_lookup(ip("198.51.100.7"), ip("203.0.113.1"), || 0)
            .is_some()
    );
    t.remove(&a);
    let s = t.snapshot();
    assert!(
        s.tx_lookup(ip("2001:db8:100::7"), ip("2001:db8:ffff::1"), || 0)
            .is_none()
    );
    assert_eq!(
        s.rx_check(ha, ip("2001:db8:ffff::1"), c),
        Err(RxRefusal::UnknownOuterSource)
    );
}

#[test]
fn mr_with_several_care_of_addresses_picks_one_per_flow() {
    // RFC 5648 multiple care-of addresses on the MR: the bindings of one home address
    // share its mobile network; a packet of the network (or of the router itself, from an
    // address in no prefix) takes its flow's binding; another home address's prefixes
    // (a second registration) keep their own binding.
    let mut t = PeerTable::new(Mode::MobileRouter);
    let mut one = binding(
        "2001:db8:1::100",
        "2001:db8:a::5",
        &["2001:db8:100::/48"],
        &[],
    );
    one.binding_id = Some(1);
    let mut two = binding(
        "2001:db8:1::100",
        "2001:db8:b::5",
        &["2001:db8:100::/48"],
        &["198.51.100.0/24"],
    );
    two.binding_id = Some(2);
    let other = binding(
        "2001:db8:1::200",
        "2001:db8:a::5",
        &["2001:db8:200::/48"],
        &[],
    );
    t.upsert(Peer::new(Mode::MobileRouter, &one).unwrap());
    t.upsert(Peer::new(Mode::MobileRouter, &two).unwrap());
    t.upsert(Peer::new(Mode::MobileRouter, &other).unwrap());
    let s = t.snapshot();
    let via = |src: &str, flow: u64| {
        s.tx_lookup(ip(src), ip("2001:db8:ffff::1"), || flow)
            .map(|p| (p.binding.hoa.to_string(), p.binding.binding_id))
    };
    for src in ["2001:db8:100:7::1", "198.51.100.7", "2001:db8:9::1"] {
        let bids: std::collections::BTreeSet<Option<u16>> = (0..64u64)
            .map(|f| via(src, f.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .map(|v| {
                assert_eq!(v.as_ref().unwrap().0, "2001:db8:1::100", "{src}");
                v.unwrap().1
            })
            .collect();
        assert_eq!(bids.len(), 2, "{src}: flows over both care-of addresses");
    }
    assert_eq!(
        via("2001:db8:200::1", 5),
        Some(("2001:db8:1::200".into(), None))
    );
}

#[test]
fn refreshes_publish_nothing_and_readers_follow_changes() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let shared = t.shared();
    let mut r = shared.reader();
    assert!(r.refresh().peers().is_empty());
    let a = binding(
        "2001:db8:1::100",
        "2001:db8:a::5",
        &["2001:db8:100::/48"],
        &[],
    );
    t.upsert(Peer::new(Mode::HomeAgent, &a).unwrap());
    let generation = shared.generation.load(Ordering::Relaxed);
    assert_eq!(
        to(r.refresh(), "2001:db8:100::1").as_deref(),
        Some("2001:db8:1::100")
    );
    // The same binding again, a new lifetime: nothing a packet sees.
    let mut refreshed = a.clone();
    refreshed.lifetime = 300;
    t.upsert(Peer::new(Mode::HomeAgent, &refreshed).unwrap());
    assert_eq!(shared.generation.load(Ordering::Relaxed), generation);
    assert_eq!(t.peers().next().unwrap().binding.lifetime, 300);
    // A new prefix is published.
    let mut grown = refreshed.clone();
    grown.mnp_v6.push("2001:db8:200::/48".parse().unwrap());
    t.upsert(Peer::new(Mode::HomeAgent, &grown).unwrap());
    assert_eq!(
        to(r.refresh(), "2001:db8:200::1").as_deref(),
        Some("2001:db8:1::100")
    );
    // Removing what is not there publishes nothing; a removal does.
    let generation = shared.generation.load(Ordering::Relaxed);
    t.remove(&binding("2001:db8:1::999", "2001:db8:a::5", &[], &[]));
    assert_eq!(shared.generation.load(Ordering::Relaxed), generation);
    t.remove(&a);
    assert_eq!(to(r.refresh(), "2001:db8:200::1"), None);
    // A reader made late starts from the current snapshot.
    assert!(shared.reader().refresh().peers().is_empty());
}

#[test]
fn readers_on_other_threads_see_every_publication() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let shared = t.shared();
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    let (back, done) = std::sync::mpsc::channel::<usize>();
    let reader = std::thread::spawn(move || {
        let mut r = shared.reader();
        // Told how many bindings there are, the reader must find them all at once.
        for n in rx {
            back.send(r.refresh().peers().len().min(n)).unwrap();
        }
    });
    for i in 1..=50u16 {
        let b = binding(
            &format!("2001:db8:1::{i:x}"),
            "2001:db8:a::5",
            &[&format!("2001:db8:{i:x}::/48")],
            &[],
        );
        t.upsert(Peer::new(Mode::HomeAgent, &b).unwrap());
        tx.send(usize::from(i)).unwrap();
        assert_eq!(done.recv().unwrap(), usize::from(i));
    }
    drop(tx);
    reader.join().unwrap();
}

/// The old linear scan, as the reference the index must agree with.
/// The home address a packet goes to, by a scan of every binding (the bindings of one
/// home address form a group). HA: the longest prefix containing the destination, a tie
/// to the later binding's group (the later registration); MR: the first group, by its
/// first binding's arrival, with a prefix containing the source, else the first group.
fn linear_tx(mode: Mode, peers: &[Arc<Peer>], src: IpAddr, dst: IpAddr) -> Option<Ipv6Addr> {
    let mut groups: Vec<Ipv6Addr> = Vec::new();
    for p in peers {
        if !groups.contains(&p.binding.hoa) {
            groups.push(p.binding.hoa);
        }
    }
    match mode {
        Mode::HomeAgent => peers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                p.sources
                    .iter()
                    .filter(|n| n.contains(&dst))
                    .map(|n| n.prefix_len())
                    .max()
                    .map(|len| (len, i, p.binding.hoa))
            })
            .max_by_key(|&(len, i, _)| (len, i))
            .map(|(_, _, hoa)| hoa),
        Mode::MobileRouter => groups
            .iter()
            .copied()
            .find(|&g| peers.iter().any(|p| p.binding.hoa == g && p.covers(src)))
            .or(groups.first().copied()),
    }
}

#[test]
fn the_index_agrees_with_a_linear_scan_on_nested_random_tables() {
    // Deterministic pseudo-random prefixes nested in a small space, so that many overlap.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for mode in [Mode::HomeAgent, Mode::MobileRouter] {
        for _round in 0..20 {
            let mut t = PeerTable::new(mode);
            let mut bs = Vec::new();
            for i in 0..(rnd() % 12 + 1) as u16 {
                let r = rnd();
                let len6 = [32u8, 40, 48, 56, 64, 128][(r % 6) as usize];
                let len4 = [8u8, 16, 24, 32][((r >> 8) % 4) as usize];
                let p6 = format!("2001:db8:{:x}{:x}::/{len6}", r >> 16 & 3, r >> 18 & 3);
                let p4 = format!("10.{}.{}.0/{len4}", r >> 20 & 1, r >> 21 & 1);
                let mut b = binding(
                    &format!("2001:db8:1::{:x}", r >> 22 & 0xf),
                    &format!("2001:db8:a::{i:x}"),
                    &[&p6],
                    &[&p4],
                );
                b.binding_id = Some(i);
                t.upsert(Peer::new(mode, &b).unwrap());
                bs.push(b);
            }
            if rnd() % 2 == 0 {
                let victim = &bs[(rnd() % bs.len() as u64) as usize];
                t.remove(victim);
            }
            let s = t.snapshot();
            for _ in 0..200 {
                let r = rnd();
                let a6 = Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    (r & 0x33) as u16,
                    (r >> 8) as u16 & 1,
                    0,
                    0,
                    0,
                    (r >> 16) as u16 & 0xf,
                );
                let a4 = Ipv4Addr::new(10, (r >> 24) as u8 & 1, (r >> 25) as u8 & 1, 7);
                let ha6 = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, (r >> 32) as u16 & 0xf);
                for a in [IpAddr::V6(a6), IpAddr::V4(a4), IpAddr::V6(ha6)] {
                    let (src, dst) = match mode {
                        Mode::HomeAgent => (ip("2001:db8:ffff::1"), a),
                        Mode::MobileRouter => (a, ip("2001:db8:ffff::1")),
                    };
                    let want = linear_tx(mode, &t.peers().cloned().collect::<Vec<_>>(), src, dst);
                    let got = s.tx_lookup(src, dst, || 0).map(|p| p.binding.hoa);
                    assert_eq!(got, want, "{mode:?} {src} -> {dst}");
                }
            }
        }
    }
}

#[test]
fn prefix_masks_cover_the_edges() {
    assert_eq!(u128::ones_then_zeros(0), 0);
    assert_eq!(u128::ones_then_zeros(128), u128::MAX);
    assert_eq!(u128::ones_then_zeros(1), 1 << 127);
    assert_eq!(u32::ones_then_zeros(0), 0);
    assert_eq!(u32::ones_then_zeros(32), u32::MAX);
    assert_eq!(u32::ones_then_zeros(24), 0xffff_ff00);
    // A default route registered as a prefix matches everything of its family.
    let mut t = PeerTable::new(Mode::HomeAgent);
    let b = binding(
        "2001:db8:1::100",
        "2001:db8:a::5",
        &["::/0"],
        &["0.0.0.0/0"],
    );
    t.upsert(Peer::new(Mode::HomeAgent, &b).unwrap());
    let s = t.snapshot();
    assert_eq!(to(&s, "3fff::1").as_deref(), Some("2001:db8:1::100"));
    assert_eq!(to(&s, "8.8.8.8").as_deref(), Some("2001:db8:1::100"));
}

#[test]
fn a_snapshot_built_after_the_grace_forgets_the_previous_coa() {
    let a = binding(
        "2001:db8:1::100",
        "2001:db8:b::5",
        &["2001:db8:100::/48"],
        &[],
    );
    let mut p = Peer::new(Mode::HomeAgent, &a).unwrap();
    let old = Remote::V6("2001:db8:a::5".parse().unwrap());
    let Some(moved_at) = Instant::now().checked_sub(MOVE_GRACE * 5) else {
        return; // a clock younger than a second: nothing to test
    };
    p.previous_remote = Some((old, moved_at));
    let s = Snapshot::build(Mode::HomeAgent, vec![Arc::new(p)]);
    // The entry is gone: the old CoA is unknown, and no clock is read for it.
    let mut c = BatchClock::new();
    assert_eq!(
        s.rx_check(old, ip("2001:db8:100::7"), &mut c),
        Err(RxRefusal::UnknownOuterSource)
    );
    assert!(c.0.is_none());
}

/// Issue 16: each binding's traffic is counted on its peer; the count survives a refresh
/// and a move (the table replaces the peer, not its counters), and the admitting peer is
/// the one whose traffic it is.
#[test]
fn per_binding_counters_follow_the_binding() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let a = binding(
        "2001:db8:1::100",
        "2001:db8:a::5",
        &["2001:db8:100::/48"],
        &[],
    );
    let b = binding(
        "2001:db8:1::200",
        "2001:db8:b::5",
        &["2001:db8:200::/48"],
        &[],
    );
    t.upsert(Peer::new(Mode::HomeAgent, &a).unwrap());
    t.upsert(Peer::new(Mode::HomeAgent, &b).unwrap());
    let s = t.snapshot();
    let c = &mut now();
    let p = s
        .rx_check(
            Remote::V6("2001:db8:a::5".parse().unwrap()),
            ip("2001:db8:100::7"),
            c,
        )
        .unwrap();
    assert_eq!(p.binding.hoa, a.hoa, "the admitting peer is the sender's");
    p.counters.0.rx(100);
    s.tx_lookup(ip("2001:db8:c::1"), ip("2001:db8:100::7"), || 0)
        .unwrap()
        .counters
        .0
        .tx(60);
    // A move of the first binding: a new peer, the same counters.
    let moved = binding(
        "2001:db8:1::100",
        "2001:db8:a::6",
        &["2001:db8:100::/48"],
        &[],
    );
    t.upsert(Peer::new(Mode::HomeAgent, &moved).unwrap());
    let s = t.snapshot();
    let count = |hoa: &str| {
        s.peers()
            .iter()
            .find(|p| p.binding.hoa.to_string() == hoa)
            .unwrap()
            .counters
            .0
            .read()
    };
    assert_eq!(count("2001:db8:1::100"), (1, 60, 1, 100));
    assert_eq!(count("2001:db8:1::200"), (0, 0, 0, 0));
}

/// Several care-of addresses of one home address (RFC 5648): the bindings of the BIDs
/// form one group behind the prefixes; each flow picks one, the same one every time;
/// packets from any of the care-of addresses are admitted.
#[test]
fn multiple_care_of_addresses_share_the_flows() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let path = |bid: u16, coa: &str| {
        let mut b = binding("2001:db8:1::100", coa, &["2001:db8:100::/48"], &[]);
        b.binding_id = Some(bid);
        Peer::new(Mode::HomeAgent, &b).unwrap()
    };
    t.upsert(path(1, "2001:db8:a::2"));
    t.upsert(path(2, "2001:db8:b::2"));
    // Another router, single care-of address.
    t.upsert(
        Peer::new(
            Mode::HomeAgent,
            &binding(
                "2001:db8:1::200",
                "2001:db8:a::9",
                &["2001:db8:200::/48"],
                &[],
            ),
        )
        .unwrap(),
    );
    let s = t.snapshot();
    let (cn, mnn) = (ip("2001:db8:ffff::1"), ip("2001:db8:100::7"));
    let bid_of = |s: &Snapshot, flow: u64| {
        s.tx_lookup(cn, mnn, || flow)
            .and_then(|p| p.binding.binding_id)
    };
    let mut per_bid = [0u32; 3];
    for flow in 0..1000u64 {
        let h = flow.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let bid = bid_of(&s, h).unwrap();
        assert_eq!(bid_of(&s, h), Some(bid), "a flow keeps its path");
        per_bid[usize::from(bid)] += 1;
    }
    assert!(
        per_bid[1] > 400 && per_bid[2] > 400,
        "flows spread evenly: {per_bid:?}"
    );
    // The single binding asks for no flow hash.
    let other = s.tx_lookup(cn, ip("2001:db8:200::1"), || panic!("hashed"));
    assert_eq!(other.unwrap().binding.hoa.to_string(), "2001:db8:1::200");
    assert_eq!(s.tx_candidates(cn, mnn).count(), 2);
    for coa in ["2001:db8:a::2", "2001:db8:b::2"] {
        let outer = Remote::V6(coa.parse().unwrap());
        assert!(s.rx_check(outer, mnn, &mut now()).is_ok(), "{coa}");
    }

    // BID 1 goes: its flows move to BID 2, BID 2's flows stay where they were
    // (rendezvous hashing moves only the flows of the path that went).
    let before: Vec<Option<u16>> = (0..200u64).map(|f| bid_of(&s, f * 7919)).collect();
    let mut one = binding(
        "2001:db8:1::100",
        "2001:db8:a::2",
        &["2001:db8:100::/48"],
        &[],
    );
    one.binding_id = Some(1);
    t.remove(&one);
    let s = t.snapshot();
    for (f, was) in (0..200u64).zip(before) {
        assert_eq!(bid_of(&s, f * 7919), Some(2), "was {was:?}");
    }
    assert_eq!(
        s.rx_check(
            Remote::V6("2001:db8:a::2".parse().unwrap()),
            mnn,
            &mut now()
        )
        .err(),
        Some(RxRefusal::UnknownOuterSource)
    );
    // And back: the flows that were on BID 2 never moved.
    t.upsert(path(1, "2001:db8:a::2"));
    let s = t.snapshot();
    let on_two: Vec<u64> = (0..200u64)
        .map(|f| f * 7919)
        .filter(|&h| bid_of(&s, h) == Some(2))
        .collect();
    assert!(!on_two.is_empty());
    t.upsert(path(3, "2001:db8:c::2"));
    let s = t.snapshot();
    let moved = on_two.iter().filter(|&&h| bid_of(&s, h) == Some(1)).count();
    assert_eq!(moved, 0, "a new path takes flows only for itself");
}

/// The HA's binding of identifier `bid` of 2001:db8:1::100 (2001:db8:100::/48) through
/// `coa`, BID-PRI `pri`.
fn mcoa_path(bid: u16, coa: &str, pri: u8) -> Peer {
    let mut b = binding("2001:db8:1::100", coa, &["2001:db8:100::/48"], &[]);
    b.binding_id = Some(bid);
    b.bid_priority = pri;
    Peer::new(Mode::HomeAgent, &b).unwrap()
}

/// Path `bid` of `s` heard from at `at_ms` (ms of [`mono_ns`]'s clock).
fn heard(s: &Snapshot, bid: u16, at_ms: u64) {
    for p in s
        .peers()
        .iter()
        .filter(|p| p.binding.binding_id == Some(bid))
    {
        p.counters.0.heard(at_ms * 1_000_000);
    }
}

/// The BIDs 256 flows from a correspondent to the mobile network take at `now_ms`.
fn bids_at(s: &Snapshot, now_ms: u64) -> std::collections::BTreeSet<u16> {
    let (cn, mnn) = (ip("2001:db8:ffff::1"), ip("2001:db8:100::7"));
    (0..256u64)
        .map(|f| {
            s.tx_route_at(
                cn,
                mnn,
                || f.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                || now_ms * 1_000_000,
            )
            .and_then(|(p, _)| p.binding.binding_id)
            .unwrap()
        })
        .collect()
}

/// Path liveness on virtual time: a silent path among several is out of use until it is
/// heard again; when none is heard, every path is used rather than none.
#[test]
fn silent_paths_are_left_out_and_taken_back() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let limit = Duration::from_millis(80);
    t.set_liveness(Some(limit));
    t.upsert(mcoa_path(1, "2001:db8:a::2", 0));
    t.upsert(mcoa_path(2, "2001:db8:b::2", 0));
    let s = t.snapshot();
    assert_eq!(s.multipath_peers().count(), 2);
    // Both heard at 1,000 ms: both in use until 1,080.
    heard(&s, 1, 1000);
    heard(&s, 2, 1000);
    assert_eq!(bids_at(&s, 1079), [1, 2].into());
    // Path 2 heard again at 1,050, path 1 not: at 1,080 path 1 is out of use.
    heard(&s, 2, 1050);
    assert_eq!(bids_at(&s, 1080), [2].into());
    assert_eq!(bids_at(&s, 1129), [2].into());
    // Path 1 speaks again at 1,130 (path 2 heard at 1,120 too): both again.
    heard(&s, 2, 1120);
    heard(&s, 1, 1130);
    assert_eq!(bids_at(&s, 1131), [1, 2].into());
    // Neither heard for the limit: both used (better a chance than certain loss).
    assert_eq!(bids_at(&s, 5000), [1, 2].into());
    // Without a limit, silence changes nothing.
    t.set_liveness(None);
    assert_eq!(bids_at(&t.snapshot(), 1080), [1, 2].into());
}

/// RFC 6089 §5.1.1: flows no flow binding decides go through the live paths of the
/// lowest BID-PRI, spread among those; a backup of a higher value takes them only when
/// none of those lives, and gives them back when one speaks again.
#[test]
fn the_lowest_bid_pri_carries_the_flows_and_a_higher_one_is_the_backup() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let limit = Duration::from_millis(80);
    t.set_liveness(Some(limit));
    // Two LTE uplinks of priority 1 (one as RFC 5648 sends it: 0, read as 1), a
    // satellite one of 10.
    t.upsert(mcoa_path(1, "2001:db8:a::2", 1));
    t.upsert(mcoa_path(2, "2001:db8:b::2", 0));
    t.upsert(mcoa_path(3, "2001:db8:c::2", 10));
    let s = t.snapshot();
    for bid in [1, 2, 3] {
        heard(&s, bid, 1000);
    }
    assert_eq!(bids_at(&s, 1010), [1, 2].into(), "spread over priority 1");
    // Path 2 falls silent: path 1 alone, the satellite still waits.
    heard(&s, 1, 1050);
    heard(&s, 3, 1050);
    assert_eq!(bids_at(&s, 1085), [1].into());
    // Both LTE paths silent: the satellite carries everything.
    heard(&s, 3, 1100);
    assert_eq!(bids_at(&s, 1140), [3].into());
    // LTE path 2 speaks again: the flows go back to it.
    heard(&s, 2, 1150);
    assert_eq!(bids_at(&s, 1160), [2].into());
    // A change of priority is a change for packets: a new snapshot is published.
    let before = t.snapshot();
    t.upsert(mcoa_path(3, "2001:db8:c::2", 1));
    assert!(!Arc::ptr_eq(&before, &t.snapshot()));
}

/// The MR's care-of addresses share one far end (the HA): the outer destination tells
/// which path a packet came through.
#[test]
fn the_outer_destination_tells_the_path_apart() {
    let mut t = PeerTable::new(Mode::MobileRouter);
    for (bid, coa) in [(1, "2001:db8:a::2"), (2, "2001:db8:b::2")] {
        let mut b = binding("2001:db8:1::100", coa, &["2001:db8:100::/48"], &[]);
        b.binding_id = Some(bid);
        t.upsert(Peer::new(Mode::MobileRouter, &b).unwrap());
    }
    let s = t.snapshot();
    let ha = Remote::V6("2001:db8:1::1".parse().unwrap());
    let via = |local: Option<&str>| {
        s.rx_check_at(ha, local.map(ip), ip("2001:db8:c::1"), &mut now())
            .unwrap()
            .binding
            .binding_id
    };
    assert_eq!(via(Some("2001:db8:b::2")), Some(2));
    assert_eq!(via(Some("2001:db8:a::2")), Some(1));
    // Unknown or absent: the first, as before.
    assert_eq!(via(Some("2001:db8:9::9")), Some(1));
    assert_eq!(via(None), Some(1));
}

/// Duplicated flows, on virtual time: the copy takes every other live path, or the same
/// path again when it is the only one; a chosen path not heard for half the liveness limit
/// (maybe dying, not yet out of use) sends both copies through the fresh one; flows no rule
/// selects, and single-path destinations, none.
#[test]
fn duplicates_take_the_fresh_paths_at_least_twice() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    t.set_liveness(Some(Duration::from_millis(80)));
    t.set_duplicate(vec!["udp port 5004".parse().unwrap()]);
    for (bid, coa) in [(1, "2001:db8:a::2"), (2, "2001:db8:b::2")] {
        let mut b = binding("2001:db8:1::100", coa, &["2001:db8:100::/48"], &[]);
        b.binding_id = Some(bid);
        t.upsert(Peer::new(Mode::HomeAgent, &b).unwrap());
    }
    t.upsert(
        Peer::new(
            Mode::HomeAgent,
            &binding(
                "2001:db8:1::200",
                "2001:db8:a::9",
                &["2001:db8:200::/48"],
                &[],
            ),
        )
        .unwrap(),
    );
    let s = t.snapshot();
    let ms = |m: u64| m * 1_000_000;
    let heard = |bid: u16, at: u64| {
        for p in s
            .peers()
            .iter()
            .filter(|p| p.binding.binding_id == Some(bid))
        {
            p.counters.0.heard(ms(at));
        }
    };
    let udp = |dport: u16, dst: &str| {
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[6] = 17;
        p[24..40].copy_from_slice(&dst.parse::<Ipv6Addr>().unwrap().octets());
        p[42..44].copy_from_slice(&dport.to_be_bytes());
        p
    };
    let cn = ip("2001:db8:ffff::1");
    let mnn = ip("2001:db8:100::7");
    let voice = udp(5004, "2001:db8:100::7");
    // The copies of flow `f` at `now` (ms): (chosen, the further copies).
    let copies = |f: u64, now: u64| {
        let (chosen, group) = s.tx_route_at(cn, mnn, || f, || ms(now)).unwrap();
        assert!(s.duplicated(group, &voice));
        assert!(!s.duplicated(group, &udp(9000, "2001:db8:100::7")));
        let more: Vec<Option<u16>> = s
            .duplicate_paths_at(chosen, group, ms(now))
            .iter()
            .map(|p| p.binding.binding_id)
            .collect();
        (chosen.binding.binding_id, more)
    };
    // Both fresh: one copy through each.
    heard(1, 1000);
    heard(2, 1000);
    for f in 0..16 {
        let (chosen, more) = copies(f, 1010);
        assert_eq!(more.len(), 1);
        assert_ne!(more[0], chosen);
    }
    // Path 1 last heard at 1,000, path 2 at 1,045; at 1,050 path 1 is alive (80 ms) but
    // not fresh (40 ms): a flow on path 1 also sends twice through path 2; a flow on path
    // 2 still sends its copy through path 1 (another path while one lives).
    heard(2, 1045);
    let on = |bid| {
        (0..64u64)
            .find(|&f| copies(f, 1050).0 == Some(bid))
            .unwrap()
    };
    assert_eq!(copies(on(1), 1050).1, vec![Some(2), Some(2)]);
    assert_eq!(copies(on(2), 1050).1, vec![Some(1)]);
    // Path 2 alive but not fresh (heard 1,045, now 1,100: 55 ms), path 1 heard just now:
    // a flow on path 1 still sends its copy through path 2, not twice through path 1 (if
    // path 1 is the one dying, the copies must not share its fate).
    heard(1, 1099);
    assert_eq!(copies(on(1), 1100).1, vec![Some(2)]);
    // Path 1 out of use (last heard 1,099, now 1,180), path 2 heard at 1,170: every flow
    // on path 2, twice.
    heard(2, 1170);
    for f in 0..16 {
        assert_eq!(copies(f, 1180), (Some(2), vec![Some(2)]));
    }
    // One path only: nothing duplicated.
    let (_, single) = s.tx_route(cn, ip("2001:db8:200::1"), || 7).unwrap();
    assert!(!s.duplicated(single, &udp(5004, "2001:db8:200::1")));
}

/// A UDP/IPv6 packet from `src` port `sport` to `dst` port `dport`.
fn udp6(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[0] = 0x60;
    p[5] = 8;
    p[6] = 17;
    p[7] = 64;
    p[8..24].copy_from_slice(&src.parse::<Ipv6Addr>().unwrap().octets());
    p[24..40].copy_from_slice(&dst.parse::<Ipv6Addr>().unwrap().octets());
    p[40..42].copy_from_slice(&sport.to_be_bytes());
    p[42..44].copy_from_slice(&dport.to_be_bytes());
    p
}

/// Flow bindings (RFC 6089 §5.3.6) as had sends them: a voice flow (from the
/// correspondent's port 5060) bound to BIDs 2 and 1 (a copy through each), any other UDP
/// to BID 2, a flow bound only to an unregistered BID 3 (inactive); the home agent sends
/// by the selectors, the mobile router by their reverse, and each drops the later copies
/// of the duplicated flow it receives.
#[test]
fn flow_bindings_steer_and_duplicate_by_their_bids() {
    use proto::flow::{Ipv6TrafficSelector, SelectorRange};
    use proto::model::FlowBinding;
    let sel = |sport: Option<u16>| {
        FlowSelector::Ipv6(Ipv6TrafficSelector {
            next_header: Some(SelectorRange::single(17)),
            source_port: sport.map(SelectorRange::single),
            ..Default::default()
        })
    };
    let flows = vec![
        FlowBinding {
            fid: 9,
            priority: 5,
            selector: sel(Some(9)),
            bids: vec![3],
        },
        FlowBinding {
            fid: 2,
            priority: 20,
            selector: sel(None),
            bids: vec![2],
        },
        FlowBinding {
            fid: 1,
            priority: 10,
            selector: sel(Some(5060)),
            bids: vec![2, 1],
        },
    ];
    let table = |mode: Mode| {
        let mut t = PeerTable::new(mode);
        for (bid, coa) in [(1, "2001:db8:a::2"), (2, "2001:db8:b::2")] {
            let mut b = binding("2001:db8:1::100", coa, &["2001:db8:100::/48"], &[]);
            b.binding_id = Some(bid);
            b.flows = flows.clone();
            t.upsert(Peer::new(mode, &b).unwrap());
        }
        t.snapshot()
    };
    let (cn, mnn) = ("2001:db8:ffff::1", "2001:db8:100::7");
    let route = |s: &Snapshot, p: &[u8], src: &str, dst: &str| {
        let (_, group) = s.tx_route(ip(src), ip(dst), || 0).unwrap();
        s.flow_route_at(group, p, 0).map(|(c, more)| {
            (
                c.binding.binding_id,
                more.iter()
                    .map(|q| q.binding.binding_id)
                    .collect::<Vec<_>>(),
            )
        })
    };
    let ha = table(Mode::HomeAgent);
    let voice = udp6(cn, 5060, mnn, 40000);
    assert_eq!(route(&ha, &voice, cn, mnn), Some((Some(2), vec![Some(1)])));
    let other_udp = udp6(cn, 7000, mnn, 40000);
    assert_eq!(route(&ha, &other_udp, cn, mnn), Some((Some(2), vec![])));
    // The inactive entry (BID 3) matches nothing; the next one (any UDP) does.
    assert_eq!(
        route(&ha, &udp6(cn, 9, mnn, 1), cn, mnn),
        Some((Some(2), vec![]))
    );
    // TCP: no flow binding; the data plane's own choice stands.
    let mut tcp = udp6(cn, 5060, mnn, 40000);
    tcp[6] = 6;
    assert_eq!(route(&ha, &tcp, cn, mnn), None);
    // The mobile router sends the reverse direction.
    let mr = table(Mode::MobileRouter);
    let up = udp6(mnn, 40000, cn, 5060);
    assert_eq!(route(&mr, &up, mnn, cn), Some((Some(2), vec![Some(1)])));
    assert_eq!(route(&mr, &voice, mnn, cn), Some((Some(2), vec![])));
    // Receiving: the second copy of a duplicated flow's packet is dropped, other flows'
    // packets never are.
    let p1 = &ha.peers()[0];
    assert!(ha.first_copy(p1, &up));
    assert!(!ha.first_copy(&ha.peers()[1], &up));
    let other_up = udp6(mnn, 40000, cn, 7000);
    assert!(ha.first_copy(p1, &other_up) && ha.first_copy(p1, &other_up));
    assert!(mr.first_copy(&mr.peers()[0], &voice));
    assert!(!mr.first_copy(&mr.peers()[1], &voice));
}

/// A UDP/IPv6 packet from `src` port `sport` to `dst` port `dport` cut into a first
/// fragment (with the UDP header) and a later one (without), identification `id`.
fn fragments6(src: &str, sport: u16, dst: &str, dport: u16, id: u32) -> (Vec<u8>, Vec<u8>) {
    let base = udp6(src, sport, dst, dport);
    let frag = |offset_units: u16, more: bool, payload: &[u8]| {
        let mut p = base[..40].to_vec();
        p[6] = 44;
        p[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        let field = (offset_units << 3) | u16::from(more);
        p.extend_from_slice(&[17, 0]);
        p.extend_from_slice(&field.to_be_bytes());
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(payload);
        p
    };
    (frag(0, true, &base[40..48]), frag(1, false, &[0xab; 8]))
}

/// RFC 6089 §5.3.6: a fragmented packet's later fragments, which carry no ports, go
/// where its first fragment's flow binding sent it, and are de-duplicated alike.
#[test]
fn later_fragments_follow_the_first_fragments_flow_binding() {
    use proto::flow::{Ipv6TrafficSelector, SelectorRange};
    use proto::model::FlowBinding;
    let flows = vec![FlowBinding {
        fid: 1,
        priority: 10,
        selector: FlowSelector::Ipv6(Ipv6TrafficSelector {
            next_header: Some(SelectorRange::single(17)),
            source_port: Some(SelectorRange::single(5060)),
            ..Default::default()
        }),
        bids: vec![2, 1],
    }];
    let mut t = PeerTable::new(Mode::HomeAgent);
    for (bid, coa) in [(1, "2001:db8:a::2"), (2, "2001:db8:b::2")] {
        let mut b = binding("2001:db8:1::100", coa, &["2001:db8:100::/48"], &[]);
        b.binding_id = Some(bid);
        b.flows = flows.clone();
        t.upsert(Peer::new(Mode::HomeAgent, &b).unwrap());
    }
    let s = t.snapshot();
    let (cn, mnn) = ("2001:db8:ffff::1", "2001:db8:100::7");
    let (_, group) = s.tx_route(ip(cn), ip(mnn), || 0).unwrap();
    let route = |p: &[u8]| {
        s.flow_route_at(group, p, 0)
            .map(|(c, more)| (c.binding.binding_id, more.len()))
    };
    let (first, later) = fragments6(cn, 5060, mnn, 4000, 77);
    // A later fragment seen alone matches nothing (no ports)...
    let (_, stray) = fragments6(cn, 5060, mnn, 4000, 78);
    assert_eq!(route(&stray), None);
    // ...but after its first fragment, it goes the same way, copies and all.
    assert_eq!(route(&first), Some((Some(2), 1)));
    assert_eq!(route(&later), Some((Some(2), 1)));
    // Another packet's later fragment (another identification) still matches nothing.
    assert_eq!(route(&stray), None);
    // Receiving (at the MR, the reverse direction's selector): the later fragment's
    // second copy is dropped like the first fragment's.
    let mut t = PeerTable::new(Mode::MobileRouter);
    for (bid, coa) in [(1, "2001:db8:a::2"), (2, "2001:db8:b::2")] {
        let mut b = binding("2001:db8:1::100", coa, &["2001:db8:100::/48"], &[]);
        b.binding_id = Some(bid);
        b.flows = flows.clone();
        t.upsert(Peer::new(Mode::MobileRouter, &b).unwrap());
    }
    let mr = t.snapshot();
    let (p1, p2) = (&mr.peers()[0], &mr.peers()[1]);
    assert!(mr.first_copy(p1, &first) && !mr.first_copy(p2, &first));
    assert!(mr.first_copy(p1, &later) && !mr.first_copy(p2, &later));
}

#[test]
fn fragment_memory_is_bounded() {
    let mut m = FragmentMemory::default();
    let key = |i: u32| (ip("2001:db8::1"), ip("2001:db8::2"), i);
    for i in 0..(FragmentMemory::CAPACITY as u32 + 10) {
        m.remember(key(i), 1);
    }
    assert_eq!(m.by_packet.len(), FragmentMemory::CAPACITY);
    assert_eq!(m.recall(&key(0)), None);
    assert_eq!(m.recall(&key(FragmentMemory::CAPACITY as u32 + 9)), Some(1));
}

fn pair(id: u32, position: u8, report_kbps: u32) -> crate::dataplane::PairProbe {
    crate::dataplane::PairProbe {
        id,
        position,
        report_kbps,
    }
}

/// Packet pairs: the gap between the two of a pair gives a measure; the estimate is the
/// second-largest of the last eight (one measure too high is dropped, gaps widened by
/// our own packets are outvoted); a lost first, a mismatched pair or a zero gap measure
/// nothing; reports set the other direction.
#[test]
fn packet_pairs_measure_a_path_and_the_other_end_reports_ours() {
    let c = CapacityLine::default();
    assert_eq!(c.read(), (0, 0));
    // 1200 octets in 960 us: 10 Mbit/s.
    let gap = |id: u32, at: u64, gap_ns: u64| {
        c.pair_probe(pair(id, 0, 0), at);
        c.pair_probe(pair(id, 1, 0), at + gap_ns);
    };
    gap(1, 1_000_000, 960_000);
    assert_eq!(c.read(), (0, 10_000));
    // One far too high (a burst), then three of 10 Mbit/s: the high one is dropped.
    gap(2, 2_000_000, 96_000);
    assert_eq!(c.read().1, 100_000, "two measures: the larger");
    gap(3, 3_000_000, 960_000);
    gap(4, 4_000_000, 960_000);
    assert_eq!(c.read().1, 10_000);
    // Widened gaps (our own packets between the two) do not pull it down.
    gap(5, 5_000_000, 1_920_000);
    gap(6, 6_000_000, 1_920_000);
    assert_eq!(c.read().1, 10_000);
    // A second without its first, a pair of mismatched numbers, both at one time.
    c.pair_probe(pair(7, 1, 0), 7_000_000);
    c.pair_probe(pair(8, 0, 0), 8_000_000);
    c.pair_probe(pair(9, 1, 0), 8_100_000);
    gap(10, 9_000_000, 0);
    assert_eq!(c.read().1, 10_000);
    // The other end's report: what our packets get.
    c.pair_probe(pair(11, 0, 40_000), 10_000_000);
    assert_eq!(c.read(), (40_000, 10_000));
}

/// Weighted rendezvous hashing: with every path's capacity known, each path takes flows
/// in proportion to it; measured alike (as paths faster than the cap are), the flows stay
/// where they were; a measure that wavers by less than half moves no flow; one path not
/// measured yet makes every path draw alike.
#[test]
fn flows_spread_in_proportion_to_the_paths_capacities() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    t.upsert(mcoa_path(1, "2001:db8:a::2", 0));
    t.upsert(mcoa_path(2, "2001:db8:b::2", 0));
    t.upsert(mcoa_path(3, "2001:db8:c::2", 0));
    let s = t.snapshot();
    // The other end's report of what our packets get through path `bid`.
    let report = |bid: u16, kbps: u32| {
        s.peers()
            .iter()
            .find(|p| p.binding.binding_id == Some(bid))
            .unwrap()
            .counters
            .0
            .capacity
            .pair_probe(pair(1, 0, kbps), 1)
    };
    let (cn, mnn) = (ip("2001:db8:ffff::1"), ip("2001:db8:100::7"));
    let choices = || -> Vec<u16> {
        (0..20_000u64)
            .map(|f| {
                s.tx_lookup(cn, mnn, || f.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                    .and_then(|p| p.binding.binding_id)
                    .unwrap()
            })
            .collect()
    };
    let shares = |v: &[u16]| -> Vec<f64> {
        (1..=3)
            .map(|b| v.iter().filter(|&&x| x == b).count() as f64 / v.len() as f64)
            .collect()
    };
    let alike = choices();
    for share in shares(&alike) {
        assert!((share - 1.0 / 3.0).abs() < 0.03, "{share}");
    }
    // Not all measured: alike, as before.
    report(1, 40_000);
    assert_eq!(choices(), alike);
    // Measured alike (here beyond the cap): nothing moves either.
    report(1, 900_000);
    report(2, 300_000);
    report(3, CAPACITY_MAX_KBPS);
    assert_eq!(choices(), alike);
    // 40, 20 and 20 Mbit/s: a half, a quarter, a quarter.
    report(1, 40_000);
    report(2, 20_000);
    report(3, 20_000);
    let before = choices();
    let sh = shares(&before);
    assert!((sh[0] - 0.5).abs() < 0.03, "{sh:?}");
    assert!((sh[1] - 0.25).abs() < 0.03, "{sh:?}");
    assert!((sh[2] - 0.25).abs() < 0.03, "{sh:?}");
    // Measures that waver by less than half move nothing.
    report(1, 55_000);
    report(2, 14_000);
    assert_eq!(choices(), before);
    // Path 1 halves: only flows leave it, none moves between the others.
    report(1, 20_000);
    let after = choices();
    for (a, b) in before.iter().zip(&after) {
        assert!(a == b || *a == 1, "a flow moved from {a} to {b}");
    }
    for share in shares(&after) {
        assert!((share - 1.0 / 3.0).abs() < 0.03, "{share}");
    }
}

/// A batch publishes once, at its end, with every edit of it; a removal leaves no trace
/// and the arrival order (which decides ties) is kept across the holes it closes.
#[test]
fn a_batch_publishes_once_in_arrival_order() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let peer = |i: u16, coa: &str| {
        let hoa = format!("2001:db8:1::{i:x}");
        let mnp = format!("2001:db8:100:{i:x}::/64");
        Peer::new(Mode::HomeAgent, &binding(&hoa, coa, &[&mnp], &[])).unwrap()
    };
    let before = t.snapshot();
    t.defer(true);
    for i in 1..=5 {
        t.upsert(peer(i, "2001:db8:a::5"));
    }
    t.remove(&peer(2, "2001:db8:a::5").binding);
    t.remove(&peer(4, "2001:db8:a::5").binding);
    // A move of one already in the table keeps its place.
    t.upsert(peer(1, "2001:db8:a::6"));
    assert!(
        Arc::ptr_eq(&before, &t.snapshot()),
        "nothing published within the batch"
    );
    t.defer(false);
    let order: Vec<String> = t
        .snapshot()
        .peers()
        .iter()
        .map(|p| p.binding.hoa.to_string())
        .collect();
    assert_eq!(order, ["2001:db8:1::1", "2001:db8:1::3", "2001:db8:1::5"]);
    assert_eq!(t.len(), 3);
    // Edits after the batch go to the right entries (the index follows the closed holes).
    t.upsert(peer(5, "2001:db8:a::7"));
    t.remove(&peer(3, "2001:db8:a::5").binding);
    let s = t.snapshot();
    assert_eq!(s.peers().len(), 2);
    assert_eq!(
        s.tx_lookup(ip("2001:db8:ffff::1"), ip("2001:db8:100:5::1"), || 0)
            .map(|p| p.encap),
        Some(Encapsulation::Ipv6 {
            src_addr: "2001:db8:1::1".parse().unwrap(),
            dst_addr: "2001:db8:a::7".parse().unwrap()
        })
    );
    // Removing an unknown binding publishes nothing.
    let s = t.snapshot();
    t.remove(&peer(9, "2001:db8:a::5").binding);
    assert!(Arc::ptr_eq(&s, &t.snapshot()));
}

/// The far ends handed to the packet socket: those whose tunnel packets the raw sockets
/// read (IPv6 and IP-in-IPv4 care-of addresses, IPv4 ones IPv4-mapped, a moved binding's
/// previous one too), sorted, told only when they change; not UDP ones, nor those the
/// kernel data plane decapsulates.
#[test]
fn far_ends_of_raw_ip_bindings_are_told_when_they_change() {
    let told: Arc<Mutex<Vec<Vec<Ipv6Addr>>>> = Arc::default();
    let mut t = PeerTable::new(Mode::HomeAgent);
    let sink = told.clone();
    t.watch_raw_ip_rx(move |ends| sink.lock().unwrap().push(ends.to_vec()));
    let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    let peer = |b: &Binding| Peer::new(Mode::HomeAgent, b).unwrap();
    t.upsert(peer(&binding("2001:db8:1::100", "2001:db8:a::5", &[], &[])));
    let mut b4 = binding("2001:db8:1::200", "203.0.113.5", &[], &[]);
    b4.encapsulation = BindingEncap::InIpv4;
    t.upsert(peer(&b4));
    let mut bu = binding("2001:db8:1::300", "203.0.113.6:40000", &[], &[]);
    bu.encapsulation = BindingEncap::UdpIpv4 { ha_port: 4191 };
    t.upsert(peer(&bu));
    let mut kernel = peer(&binding("2001:db8:1::400", "2001:db8:a::9", &[], &[]));
    kernel.kernel_rx = true;
    t.upsert(kernel);
    t.upsert(peer(&binding("2001:db8:1::100", "2001:db8:a::6", &[], &[])));
    t.remove(&b4);
    t.clear();
    assert_eq!(
        *told.lock().unwrap(),
        [
            vec![],
            vec![a("2001:db8:a::5")],
            vec![a("::ffff:203.0.113.5"), a("2001:db8:a::5")],
            vec![
                a("::ffff:203.0.113.5"),
                a("2001:db8:a::5"),
                a("2001:db8:a::6")
            ],
            vec![a("2001:db8:a::5"), a("2001:db8:a::6")],
            vec![],
        ]
    );
}
