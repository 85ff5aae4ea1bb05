//! Individual registrations (RFC 5648 §5.3, §8.1; issue 15): IPv4 uplinks beside a bulk
//! registration, a router whose care-of address in use is an IPv4 one, and a home agent
//! that refuses bulk registrations (168), on virtual time with a scripted home agent.
//!
//! Uplinks: eth0 (BID 1) holds coa1 (IPv6), interface 3; eth1 (BID 2) holds coa2 (IPv6),
//! interface 4; wwan0 (BID 3) holds V4B behind a NAT, interface 5.

use std::net::SocketAddrV4;

use proto::model::{Encapsulation, Uplink};

use super::mcoa::{bid_status, bus, eth0, eth1, mcoa_cfg, rereg_up, up};
use super::*;

const V4B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 9);

fn wwan0() -> Uplink {
    up(
        CareOf::V4 {
            addr: V4B,
            udp_port: None,
        },
        5,
        "wwan0",
    )
}

/// MCoA, an SA, and an IPv4 address for the home agent.
fn dual_cfg() -> MrCoreConfig {
    let mut c = mcoa_cfg();
    c.security = Some(sa(false));
    c.home_agent_v4 = Some(HA_V4);
    c
}

/// The Binding Identifier options of a BU: (BID, care-of address), IPv4 ones as such.
fn bid_opts(bu: &SentBu) -> Vec<(u16, IpAddr)> {
    bu.options
        .iter()
        .filter_map(|o| match *o {
            MobilityOption::BindingIdentifier {
                bid,
                coa: Some(c),
                status: 0,
                h: false,
                // RFC 6089 §5.2.1: never 0; 1 unless binding-priority says otherwise.
                bid_pri: 1,
            } => Some((bid, c)),
            MobilityOption::BindingIdentifier { .. } => panic!("odd BID option {o:?}"),
            _ => None,
        })
        .collect()
}

fn v6(a: Ipv6Addr) -> IpAddr {
    IpAddr::V6(a)
}

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn has_v4_coa_option(bu: &SentBu) -> bool {
    bu.options
        .iter()
        .any(|o| matches!(o, MobilityOption::Ipv4CareOfAddress(_)))
}

/// A signed BA over IPv6 to a BU from `coa`.
fn signed(ba: Ba, coa: Ipv6Addr) -> Vec<u8> {
    ba.signed(KEY, coa).packet(coa)
}

/// Registered with eth0 (bulk, BID 1) and wwan0 (its own BU, BID 3, behind a NAT whose
/// keepalive is 30 s); returns the bulk BU and the uplink's.
fn registered_dual(mr: &mut MrCore, t0: Instant) -> (SentBu, SentBu) {
    mr.set_udp_local("198.51.100.9:4191".parse().unwrap());
    mr.handle_md_info(t0, &rereg_up(vec![eth0(), wwan0()]));
    let bulk = next_bu(mr);
    // The bulk registration lists the IPv6 uplinks only: the IPv4 one first registers by
    // a BU from it (RFC 5648 §8.1).
    assert_eq!(bid_opts(&bulk), [(1, v6(coa1()))]);
    assert!(bulk.flags.contains(BuFlags::O));
    assert!(mr.poll_transmit().is_none(), "one transaction at a time");
    deliver(
        mr,
        ms(t0, 100),
        &signed(
            Ba::ok(&bulk).opt(v4_ack(0, mnp4())).opt(bid_status(1, 0)),
            coa1(),
        ),
    );
    assert_eq!(
        bus(&events(mr)),
        [("add", Some(1), CareOf::V6(coa1()), false)]
    );
    // The IPv4 uplink's own BU leaves at once.
    let own = next_bu(mr);
    assert_eq!(own.seq, bulk.seq + 1, "one sequence number space");
    deliver(
        mr,
        ms(t0, 150),
        &ba_v4(
            Ba::ok(&own)
                .opt(v4_ack(0, mnp4()))
                .opt(nat_opt(false, 30))
                .opt(bid_status(3, 0)),
            V4B,
        ),
    );
    (bulk, own)
}

#[test]
fn an_ipv4_uplink_beside_a_bulk_registration_registers_by_its_own_bu() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(dual_cfg()).unwrap();
    let (bulk, own) = registered_dual(&mut mr, t0);
    // In UDP/IPv4 to the home agent's 4191, from the uplink's address through its
    // interface; the BID option holds the address, no IPv4 CoA option, no O.
    assert_eq!(
        own.tx.udp_v4,
        Some(SocketAddrV4::new(HA_V4, proto::DSMIP_UDP_PORT))
    );
    assert_eq!(own.tx.udp_from, Some(V4B));
    assert_eq!(own.tx.ifindex, 5);
    assert_eq!(own.tx.addressing.src_addr, hoa());
    assert_eq!(own.tx.addressing.home_address, None);
    assert_eq!(bid_opts(&own), [(3, v4(V4B))]);
    assert!(!has_v4_coa_option(&own));
    assert_eq!(own.flags, BuFlags::A | BuFlags::H | BuFlags::R);
    // The prefixes as in the bulk BU (the home agent keeps what a BU lists), signed over
    // the IPv4 care-of address (RFC 4285 over the IPv4-mapped form).
    assert!(
        own.options
            .iter()
            .any(|o| matches!(o, MobilityOption::MobileNetworkPrefix { .. }))
    );
    assert!(
        own.options
            .iter()
            .any(|o| matches!(o, MobilityOption::Ipv4HomeAddress { p: true, .. }))
    );
    assert!(auth::verify(&own.tx.mh, IpAddr::V4(V4B), &hoa(), KEY).unwrap());
    assert!(matches!(
        own.options.last(),
        Some(MobilityOption::Authentication { .. })
    ));
    // Its binding: UDP behind the NAT the BA saw, from nemonetd's port.
    let evs = events(&mut mr);
    let MrEvent::BulAdd { binding, .. } = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(binding.binding_id, Some(3));
    assert_eq!(
        binding.coa,
        CareOf::V4 {
            addr: V4B,
            udp_port: Some(4191)
        }
    );
    assert_eq!(
        binding.encapsulation,
        Encapsulation::UdpIpv4 {
            ha_port: proto::DSMIP_UDP_PORT
        }
    );
    assert!(binding.nat_detected);
    assert_eq!(binding.coa_ifindex, Some(5));
    assert_eq!(binding.mnp_v4, [mnp4()]);
    assert_eq!(mr.handle_state_request(ms(t0, 200)).len(), 2);

    // The NAT's keepalive: the uplink's BU again at 30 s, over its own path.
    let t = mr.poll_timeout().unwrap();
    assert_eq!(
        t,
        ms(t0, 150) + Duration::from_secs(30) - Duration::from_millis(50)
    );
    mr.handle_timeout(t);
    let again = next_bu(&mut mr);
    assert_eq!(bid_opts(&again), [(3, v4(V4B))]);
    assert_eq!(again.seq, own.seq + 1);
    deliver(
        &mut mr,
        t + Duration::from_millis(40),
        &ba_v4(
            Ba::ok(&again).opt(nat_opt(false, 30)).opt(bid_status(3, 0)),
            V4B,
        ),
    );
    assert_eq!(
        bus(&events(&mut mr)).len(),
        1,
        "a refresh announces the binding again"
    );

    // The bulk refresh lists the IPv4 one with its address, so its O flag keeps it; its
    // BA changes nothing of it.
    let mut t = mr.poll_timeout().unwrap();
    let mut refresh = None;
    while refresh.is_none() {
        mr.handle_timeout(t);
        for bu in drain_tx(&mut mr) {
            if bu.tx.udp_v4.is_some() {
                deliver(
                    &mut mr,
                    t,
                    &ba_v4(
                        Ba::ok(&bu).opt(nat_opt(false, 30)).opt(bid_status(3, 0)),
                        V4B,
                    ),
                );
            } else {
                refresh = Some(bu);
            }
        }
        events(&mut mr);
        t = mr.poll_timeout().unwrap();
    }
    let refresh = refresh.unwrap();
    assert_eq!(bid_opts(&refresh), [(1, v6(coa1())), (3, v4(V4B))]);
    assert!(refresh.flags.contains(BuFlags::O));
    assert!(refresh.seq > bulk.seq);
    let now = t0 + Duration::from_secs(390);
    deliver(
        &mut mr,
        now,
        &signed(
            Ba::ok(&refresh)
                .opt(v4_ack(0, mnp4()))
                .opt(bid_status(1, 0))
                .opt(bid_status(3, 0)),
            coa1(),
        ),
    );
    assert_eq!(
        bus(&events(&mut mr)),
        [("add", Some(1), CareOf::V6(coa1()), false)],
        "the kept IPv4 binding is neither announced again nor withdrawn"
    );
    assert_eq!(mr.handle_state_request(now).len(), 2);

    // The IPv4 uplink goes: withdrawn at once, and a bulk BU without it (its O flag
    // removes it at the home agent).
    mr.handle_md_info(now, &rereg_up(vec![eth0()]));
    let evs = bus(&events(&mut mr));
    assert!(
        evs.iter().any(|e| e.0 == "remove" && e.1 == Some(3)),
        "{evs:?}"
    );
    let without = next_bu(&mut mr);
    assert_eq!(bid_opts(&without), [(1, v6(coa1()))]);
    assert!(without.flags.contains(BuFlags::O));
}

#[test]
fn a_primary_bu_leaving_cancels_the_uplinks_outstanding_ones() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(dual_cfg()).unwrap();
    mr.handle_md_info(t0, &rereg_up(vec![eth0(), wwan0()]));
    let bulk = next_bu(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 100),
        &signed(Ba::ok(&bulk).opt(bid_status(1, 0)), coa1()),
    );
    events(&mut mr);
    let own = next_bu(&mut mr);
    assert_eq!(bid_opts(&own), [(3, v4(V4B))]);
    // A new IPv6 uplink: a new bulk registration, which cancels the IPv4 one's BU.
    mr.handle_md_info(ms(t0, 120), &rereg_up(vec![eth0(), eth1(), wwan0()]));
    let bulk2 = next_bu(&mut mr);
    assert_eq!(bid_opts(&bulk2), [(1, v6(coa1())), (2, v6(coa2()))]);
    assert!(mr.poll_transmit().is_none());
    // The cancelled BU's BA is dropped; the bulk BA brings the IPv4 BU again.
    deliver(
        &mut mr,
        ms(t0, 150),
        &ba_v4(Ba::ok(&own).opt(bid_status(3, 0)), V4B),
    );
    assert!(bus(&events(&mut mr)).is_empty());
    assert!(mr.poll_transmit().is_none());
    deliver(
        &mut mr,
        ms(t0, 200),
        &signed(
            Ba::ok(&bulk2).opt(bid_status(1, 0)).opt(bid_status(2, 0)),
            coa1(),
        ),
    );
    // MAX_UPDATE_RATE: the fourth BU within the second waits for its end.
    assert!(mr.poll_transmit().is_none());
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 1000)));
    mr.handle_timeout(ms(t0, 1000));
    let own2 = next_bu(&mut mr);
    assert_eq!(bid_opts(&own2), [(3, v4(V4B))]);
    assert_eq!(own2.seq, bulk2.seq + 1);
}

#[test]
fn a_refused_uplink_is_asked_again_only_after_the_next_home_registration() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(dual_cfg()).unwrap();
    mr.handle_md_info(t0, &rereg_up(vec![eth0(), wwan0()]));
    let bulk = next_bu(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 100),
        &signed(Ba::ok(&bulk).opt(bid_status(1, 0)), coa1()),
    );
    events(&mut mr);
    let own = next_bu(&mut mr);
    // 130: no room for another binding.
    deliver(
        &mut mr,
        ms(t0, 150),
        &ba_v4(Ba::ok(&own).status(4).opt(bid_status(3, 130)), V4B),
    );
    assert!(bus(&events(&mut mr)).is_empty());
    assert_eq!(mr.stats().last_refusal, Some(130));
    // Nothing until the bulk refresh (at 400 - 16 s).
    let t = mr.poll_timeout().unwrap();
    assert!(t >= ms(t0, 384_000), "{:?}", t - t0);
    mr.handle_timeout(t);
    let refresh = next_bu(&mut mr);
    assert_eq!(bid_opts(&refresh), [(1, v6(coa1()))]);
    deliver(
        &mut mr,
        t,
        &signed(Ba::ok(&refresh).opt(bid_status(1, 0)), coa1()),
    );
    assert_eq!(bid_opts(&next_bu(&mut mr)), [(3, v4(V4B))]);
}

#[test]
fn a_135_to_an_uplinks_bu_moves_the_shared_sequence_number_forward_only() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(dual_cfg()).unwrap();
    mr.handle_md_info(t0, &rereg_up(vec![eth0(), wwan0()]));
    let bulk = next_bu(&mut mr);
    deliver(
        &mut mr,
        ms(t0, 100),
        &signed(Ba::ok(&bulk).opt(bid_status(1, 0)), coa1()),
    );
    let own = next_bu(&mut mr);
    // The home agent last accepted a later number (another path's BU overtook this one).
    let mut ba = Ba::ok(&own).status(135);
    ba.seq = own.seq + 5;
    deliver(&mut mr, ms(t0, 150), &ba_v4(ba, V4B));
    let again = next_bu(&mut mr);
    assert_eq!(again.seq, own.seq + 6);
    // An older one moves nothing back (the next BU waits for MAX_UPDATE_RATE: three
    // left within this second).
    let mut ba = Ba::ok(&again).status(135);
    ba.seq = own.seq - 3;
    deliver(&mut mr, ms(t0, 160), &ba_v4(ba, V4B));
    assert!(mr.poll_transmit().is_none());
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 1000)));
    mr.handle_timeout(ms(t0, 1000));
    assert_eq!(next_bu(&mut mr).seq, again.seq + 1);
    // A forged BA (not signed) is no answer.
    let mut forged = Ba::ok(&again);
    forged.seq = again.seq + 1;
    deliver(&mut mr, ms(t0, 170), &forged.packet(hoa()));
    assert!(bus(&events(&mut mr)).iter().all(|e| e.1 != Some(3)));
}

#[test]
fn an_ipv4_care_of_address_in_use_registers_alone_and_the_others_by_their_own_bus() {
    let t0 = Instant::now();
    let mut c = dual_cfg();
    c.egress_interfaces = vec!["eth0".into(), "eth1".into()];
    let mut mr = MrCore::new(c).unwrap();
    mr.set_udp_local("10.0.0.5:4191".parse().unwrap());
    let mut md = rereg_v4(V4COA);
    let v4a = up(
        CareOf::V4 {
            addr: V4COA,
            udp_port: None,
        },
        3,
        "eth0",
    );
    let v4b = up(
        CareOf::V4 {
            addr: V4B,
            udp_port: None,
        },
        4,
        "eth1",
    );
    md.uplinks = vec![v4a, v4b];
    mr.handle_md_info(t0, &md);
    let first = next_bu(&mut mr);
    // In UDP/IPv4 it can list its own BID alone; O, since the home agent may hold a
    // plain binding of ours; the BID option holds the address (no IPv4 CoA option).
    assert!(first.tx.udp_v4.is_some());
    assert_eq!(first.tx.udp_from, Some(V4COA));
    assert_eq!(bid_opts(&first), [(1, v4(V4COA))]);
    assert!(!has_v4_coa_option(&first));
    assert!(first.flags.contains(BuFlags::O));
    assert!(mr.poll_transmit().is_none());
    deliver(
        &mut mr,
        ms(t0, 100),
        &ba_v4(
            Ba::ok(&first)
                .opt(v4_ack(0, mnp4()))
                .opt(nat_opt(false, 0))
                .opt(bid_status(1, 0)),
            V4COA,
        ),
    );
    let evs = events(&mut mr);
    let MrEvent::BulAdd { binding, .. } = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(binding.binding_id, Some(1));
    assert!(binding.nat_detected);
    assert!(matches!(
        binding.encapsulation,
        Encapsulation::UdpIpv4 { .. }
    ));
    // The other uplink: its own BU, without O (that would remove the first).
    let second = next_bu(&mut mr);
    assert_eq!(second.tx.udp_from, Some(V4B));
    assert_eq!(second.tx.ifindex, 4);
    assert_eq!(bid_opts(&second), [(2, v4(V4B))]);
    assert!(!second.flags.contains(BuFlags::O));
    deliver(
        &mut mr,
        ms(t0, 150),
        &ba_v4(Ba::ok(&second).opt(bid_status(2, 0)), V4B),
    );
    assert_eq!(
        bus(&events(&mut mr)),
        [(
            "add",
            Some(2),
            CareOf::V4 {
                addr: V4B,
                udp_port: Some(4191)
            },
            false
        )]
    );
    // The primary's keepalive refresh (NATKATIMEOUT, 110 s): its BID again, no O now.
    let mut t = mr.poll_timeout().unwrap();
    loop {
        mr.handle_timeout(t);
        let bus_ = drain_tx(&mut mr);
        if let Some(p) = bus_.iter().find(|b| b.tx.udp_from == Some(V4COA)) {
            assert_eq!(bid_opts(p), [(1, v4(V4COA))]);
            assert!(!p.flags.contains(BuFlags::O));
            break;
        }
        for b in &bus_ {
            deliver(&mut mr, t, &ba_v4(Ba::ok(b).opt(bid_status(2, 0)), V4B));
        }
        t = mr.poll_timeout().unwrap();
        assert!(t < t0 + Duration::from_secs(120), "{:?}", t - t0);
    }
}

#[test]
fn a_168_makes_every_uplink_register_by_its_own_bu() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(dual_cfg()).unwrap();
    mr.handle_md_info(t0, &rereg_up(vec![eth0(), eth1()]));
    let bulk = next_bu(&mut mr);
    assert_eq!(bid_opts(&bulk), [(1, v6(coa1())), (2, v6(coa2()))]);
    deliver(
        &mut mr,
        ms(t0, 100),
        &signed(Ba::ok(&bulk).status(168), coa1()),
    );
    assert_eq!(mr.mcoa_support(), McoaSupport::Individually);
    // The care-of address in use alone, with O (the first of this home agent's).
    let first = next_bu(&mut mr);
    assert_eq!(first.seq, bulk.seq + 1);
    assert_eq!(bid_opts(&first), [(1, v6(coa1()))]);
    assert!(first.flags.contains(BuFlags::O));
    deliver(
        &mut mr,
        ms(t0, 200),
        &signed(
            Ba::ok(&first).opt(v4_ack(0, mnp4())).opt(bid_status(1, 0)),
            coa1(),
        ),
    );
    assert_eq!(
        bus(&events(&mut mr)),
        [("add", Some(1), CareOf::V6(coa1()), false)]
    );
    // Then the other from its own address, through its interface, without O.
    let second = next_bu(&mut mr);
    assert_eq!(bid_opts(&second), [(2, v6(coa2()))]);
    assert!(!second.flags.contains(BuFlags::O));
    assert_eq!(second.tx.addressing.src_addr, coa2());
    assert_eq!(second.tx.addressing.home_address, Some(hoa()));
    assert_eq!(second.tx.ifindex, 4);
    assert_eq!(second.tx.udp_v4, None);
    assert!(
        second
            .options
            .contains(&MobilityOption::AlternateCareOfAddress(coa2()))
    );
    assert!(auth::verify(&second.tx.mh, IpAddr::V6(coa2()), &hoa(), KEY).unwrap());
    deliver(
        &mut mr,
        ms(t0, 250),
        &signed(Ba::ok(&second).opt(bid_status(2, 0)), coa2()),
    );
    assert_eq!(
        bus(&events(&mut mr)),
        [("add", Some(2), CareOf::V6(coa2()), false)]
    );
    // Refreshes: each its own, the primary without O now.
    let t = mr.poll_timeout().unwrap();
    mr.handle_timeout(t);
    let refreshes = drain_tx(&mut mr);
    assert_eq!(refreshes.len(), 1, "the primary first");
    assert_eq!(bid_opts(&refreshes[0]), [(1, v6(coa1()))]);
    assert!(!refreshes[0].flags.contains(BuFlags::O));
    deliver(
        &mut mr,
        t,
        &signed(Ba::ok(&refreshes[0]).opt(bid_status(1, 0)), coa1()),
    );
    let evs = bus(&events(&mut mr));
    assert!(
        evs.iter().all(|e| e.0 == "add"),
        "nothing withdrawn: {evs:?}"
    );
    // A second 168 to a one-BID BU is not ours to fall back from: plain from now on.
    let t = mr.poll_timeout().unwrap();
    mr.handle_timeout(t);
    for bu in drain_tx(&mut mr) {
        if bu.tx.addressing.src_addr == coa1() {
            deliver(&mut mr, t, &signed(Ba::ok(&bu).status(168), coa1()));
            assert_eq!(mr.mcoa_support(), McoaSupport::Unsupported);
        }
    }
}

mod abuse {
    use super::*;
    use proptest::prelude::*;

    /// A BA's content: status, how far behind the last BU's sequence number, lifetime,
    /// BID options (BID, status), NAT detection's refresh time, how it is signed.
    type AnyBa = (u8, u16, u16, Vec<(u16, u8)>, Option<u32>, u8);

    /// A BA of arbitrary content from the home agent's address: any status, sequence
    /// number and lifetime, any BID options (status, BID), NAT detection or not, signed
    /// over either uplink's address or not at all.
    fn ba() -> impl Strategy<Value = AnyBa> {
        (
            any::<u8>(),
            0u16..12,
            any::<u16>(),
            prop::collection::vec((0u16..5, any::<u8>()), 0..4),
            prop::option::of(any::<u32>()),
            0u8..3,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever BAs arrive (forged, replayed, refusing, with odd BID statuses) while
        /// uplinks of both families come and go: no panic, no timer asked for again and
        /// again at one instant, never more than three BUs in any second, and what the
        /// router announces names only uplinks it has.
        #[test]
        fn arbitrary_bas_and_uplink_changes_keep_the_router_sane(
            steps in prop::collection::vec((0u64..4000, 0u8..16, prop::option::of(ba())), 1..40),
        ) {
            let t0 = Instant::now();
            let mut mr = MrCore::new(dual_cfg()).unwrap();
            mr.set_udp_local("198.51.100.9:4191".parse().unwrap());
            let mut now = t0;
            let mut sent: Vec<(Instant, u16)> = Vec::new();
            let mut last_seq = 0u16;
            for (delay, mask, ba) in steps {
                now += Duration::from_millis(delay);
                // Timers up to now, counting the calls at each instant.
                let mut same = 0;
                while let Some(t) = mr.poll_timeout().filter(|t| *t <= now) {
                    same += 1;
                    prop_assert!(same < 1000, "timer asked for again and again at {:?}", t - t0);
                    mr.handle_timeout(t.max(t0));
                    for bu in drain_tx(&mut mr) {
                        sent.push((t, bu.seq));
                        last_seq = bu.seq;
                    }
                }
                let ups: Vec<Uplink> = [eth0(), eth1(), wwan0()]
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, u)| u)
                    .collect();
                if let Some(first) = ups.first().cloned() {
                    let md = MdInfo {
                        coa: Some(first.coa),
                        ifindex: first.ifindex,
                        uplinks: ups,
                        ..rereg(coa1())
                    };
                    mr.handle_md_info(now, &md);
                }
                if let Some((status, seq_off, lifetime, bids, nat, sign)) = ba {
                    let mut b = Ba {
                        status,
                        r: true,
                        seq: last_seq.wrapping_sub(seq_off),
                        lifetime: Lifetime(lifetime),
                        options: Vec::new(),
                        sign: None,
                    };
                    if let Some(r) = nat {
                        b = b.opt(nat_opt(false, r));
                    }
                    for (bid, st) in bids {
                        b = b.opt(bid_status(bid, st));
                    }
                    let pkt = match sign {
                        0 => b.signed(KEY, coa1()).packet(coa1()),
                        1 => ba_v4(b, V4B),
                        _ => b.packet(coa1()),
                    };
                    deliver(&mut mr, now, &pkt);
                }
                for bu in drain_tx(&mut mr) {
                    sent.push((now, bu.seq));
                    last_seq = bu.seq;
                }
                for e in events(&mut mr) {
                    if let MrEvent::BulAdd { binding, .. } = e {
                        prop_assert!(
                            [CareOf::V6(coa1()), CareOf::V6(coa2())].contains(&binding.coa)
                                || matches!(binding.coa, CareOf::V4 { addr, .. } if addr == V4B),
                            "{binding:?}"
                        );
                    }
                }
            }
            for (i, (t, _)) in sent.iter().enumerate() {
                let in_window = sent[i..].iter().take_while(|(u, _)| *u < *t + Duration::from_secs(1)).count();
                prop_assert!(in_window <= 3, "{:?}", sent.iter().map(|(u, s)| (*u - t0, *s)).collect::<Vec<_>>());
            }
        }
    }
}
