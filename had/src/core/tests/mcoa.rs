//! Multiple Care-of Addresses (RFC 5648) on virtual time: BUs with Binding Identifier
//! options built as an MR builds them (the parent module's `Bu`), the BAs and events that
//! come back.

use super::*;

const COA3: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 9);

/// The BA's BID options: (BID, status), in order.
fn bids(tx: &Transmit) -> Vec<(u16, u8)> {
    ba_of(tx)
        .options
        .iter()
        .filter_map(|o| match *o {
            MobilityOption::BindingIdentifier {
                bid, status, coa, ..
            } => {
                assert_eq!(coa, None, "no care-of address in a BA's BID option");
                Some((bid, status))
            }
            _ => None,
        })
        .collect()
}

/// (BID, care-of address) of every BcAdd / BcRemove among `ev`.
fn announced(ev: &[HaEvent], removals: bool) -> Vec<(Option<u16>, CareOf)> {
    ev.iter()
        .filter_map(|e| match e {
            HaEvent::BcAdd(b) if !removals => Some((b.binding_id, b.coa)),
            HaEvent::BcRemove(b) if removals => Some((b.binding_id, b.coa)),
            _ => None,
        })
        .collect()
}

/// (BID, care-of address) of every binding the state dump lists for `hoa`.
fn state(e: &Env, hoa: Ipv6Addr) -> Vec<(Option<u16>, CareOf)> {
    e.ha.handle_state_request(e.now)
        .into_iter()
        .filter(|b| b.hoa == hoa)
        .map(|b| (b.binding_id, b.coa))
        .collect()
}

fn v6(a: Ipv6Addr) -> CareOf {
    CareOf::V6(a)
}

/// BIDs 1 (the BU's own CoA) and 2 (COA2 in the option) registered in one bulk BU, seq 1.
fn bulk(e: &mut Env) {
    let tx = e.ba(&Bu::new(HOA1, 1).opt(bid(1, None)).opt(bid(2, Some(COA2))));
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(bids(&tx), [(1, 0), (2, 0)]);
    e.events();
}

#[test]
fn bulk_registration_registers_every_bid() {
    let mut e = Env::new(cfg());
    let tx = e.ba(&Bu::new(HOA1, 1).opt(bid(1, None)).opt(bid(2, Some(COA2))));
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(ba_of(&tx).lifetime, Lifetime(100));
    assert_eq!(bids(&tx), [(1, 0), (2, 0)]);
    // The BA goes where the BU came from (RFC 6275 §9.5.4), whatever the BIDs name.
    assert_eq!(tx.addressing.dst_addr, COA);
    let ev = e.events();
    assert_eq!(
        announced(&ev, false),
        [(Some(1), v6(COA)), (Some(2), v6(COA2))]
    );
    // One journal record per BID, one proxy ND entry for the home address, both before
    // the BA (ordering contract).
    let records: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            HaEvent::Persist(JournalRecord::Upsert(b)) => Some((b.hoa, b.bid, b.sequence)),
            _ => None,
        })
        .collect();
    assert_eq!(records, [(HOA1, Some(1), 1), (HOA1, Some(2), 1)]);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, HaEvent::ProxyNdAdd(p) if p.hoa == HOA1))
            .count(),
        1
    );
    // Both carry the home address's prefixes (implicit mode here).
    for e in &ev {
        if let HaEvent::BcAdd(b) = e {
            assert_eq!(b.mnp_v6, nets6(&["2001:db8:100::/48"]));
            assert_eq!(b.hoa, HOA1);
        }
    }
    assert_eq!(state(&e, HOA1), [(Some(1), v6(COA)), (Some(2), v6(COA2))]);
    assert_eq!((e.ha.len(), e.ha.binding_count()), (1, 2));
}

#[test]
fn individual_registration_of_a_second_bid_shares_the_sequence_number() {
    let mut e = Env::new(cfg());
    assert_eq!(
        status(&e.ba(&Bu::new(HOA1, 1).opt(bid(1, None)))),
        BaStatus::Accepted
    );
    e.events();
    // The second interface registers its own BID from its own CoA.
    let mut second = Bu::new(HOA1, 2).opt(bid(2, None));
    second.coa = COA2;
    let tx = e.ba(&second);
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(bids(&tx), [(2, 0)]);
    assert_eq!(tx.addressing.dst_addr, COA2);
    // Only the new BID is announced: nothing changed for BID 1.
    assert_eq!(announced(&e.events(), false), [(Some(2), v6(COA2))]);
    assert_eq!(state(&e, HOA1), [(Some(1), v6(COA)), (Some(2), v6(COA2))]);
    // One sequence number space per home address (RFC 5648 §4.3): BID 1 may not reuse 2.
    let tx = e.ba(&Bu::new(HOA1, 2).opt(bid(1, None)));
    assert_eq!(status(&tx), BaStatus::SequenceNumberOutOfWindow);
    assert_eq!(bids(&tx), [(1, 135)]);
    assert_eq!(ba_of(&tx).sequence, SequenceNumber(2));
    // A refresh moving BID 1 to a third address keeps BID 2.
    assert_eq!(
        status(&e.ba(&Bu::new(HOA1, 3).opt(bid(1, Some(COA3))))),
        BaStatus::Accepted
    );
    assert_eq!(announced(&e.events(), false), [(Some(1), v6(COA3))]);
    assert_eq!(state(&e, HOA1), [(Some(1), v6(COA3)), (Some(2), v6(COA2))]);
}

#[test]
fn deregistering_one_bid_leaves_the_others() {
    let mut e = Env::new(cfg());
    bulk(&mut e);
    let mut dereg = Bu::new(HOA1, 2).opt(bid(2, None));
    dereg.lifetime = 0;
    let tx = e.ba(&dereg);
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(bids(&tx), [(2, 0)]);
    assert_eq!(ba_of(&tx).lifetime, Lifetime::ZERO);
    let ev = e.events();
    assert_eq!(announced(&ev, true), [(Some(2), v6(COA2))]);
    assert!(ev.iter().any(|e| matches!(
        e,
        HaEvent::Persist(JournalRecord::Remove { hoa, bid: Some(2) }) if *hoa == HOA1
    )));
    // BID 1 stays, and so does the proxy ND entry; its record carries the new sequence.
    assert!(!ev.iter().any(|e| matches!(e, HaEvent::ProxyNdRemove(_))));
    assert!(ev.iter().any(|e| matches!(
        e,
        HaEvent::Persist(JournalRecord::Upsert(b)) if b.bid == Some(1) && b.sequence == 2
    )));
    assert_eq!(state(&e, HOA1), [(Some(1), v6(COA))]);

    // An unknown BID beside a known one: MCOA NOTCOMPLETE, 167 for the unknown one.
    let mut dereg = Bu::new(HOA1, 3).opt(bid(9, None)).opt(bid(1, None));
    dereg.lifetime = 0;
    let tx = e.ba(&dereg);
    assert_eq!(status(&tx), BaStatus::McoaNotComplete);
    assert_eq!(bids(&tx), [(9, 167), (1, 0)]);
    // The last BID took the home address with it.
    let ev = e.events();
    assert_eq!(announced(&ev, true), [(Some(1), v6(COA))]);
    assert!(
        ev.iter()
            .any(|e| matches!(e, HaEvent::ProxyNdRemove(p) if p.hoa == HOA1))
    );
    assert!(e.ha.is_empty());
    // Nothing left at all: 133 as for any de-registration without a binding.
    let mut dereg = Bu::new(HOA1, 4).opt(bid(1, None));
    dereg.lifetime = 0;
    let tx = e.ba(&dereg);
    assert_eq!(status(&tx), BaStatus::NotHomeAgentForThisMobileNode);
    assert_eq!(bids(&tx), [(1, 133)]);
}

#[test]
fn the_home_address_as_a_bids_care_of_address_deregisters_it() {
    let mut e = Env::new(cfg());
    bulk(&mut e);
    // BID 2 reports itself at home (RFC 6275 §9.5.1 per BID), BID 1 refreshes.
    let tx = e.ba(&Bu::new(HOA1, 2).opt(bid(1, None)).opt(bid(2, Some(HOA1))));
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(bids(&tx), [(1, 0), (2, 0)]);
    assert_eq!(announced(&e.events(), true), [(Some(2), v6(COA2))]);
    assert_eq!(state(&e, HOA1), [(Some(1), v6(COA))]);
}

#[test]
fn overwrite_flag_replaces_every_binding() {
    let mut e = Env::new(cfg());
    bulk(&mut e);
    let mut o = Bu::new(HOA1, 2).opt(bid(3, Some(COA3)));
    o.flags |= BuFlags::O;
    let tx = e.ba(&o);
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(bids(&tx), [(3, 0)]);
    let ev = e.events();
    assert_eq!(
        announced(&ev, true),
        [(Some(1), v6(COA)), (Some(2), v6(COA2))]
    );
    assert_eq!(announced(&ev, false), [(Some(3), v6(COA3))]);
    // The removals come before the new binding.
    let first_add = ev.iter().position(|e| matches!(e, HaEvent::BcAdd(_)));
    let last_remove = ev.iter().rposition(|e| matches!(e, HaEvent::BcRemove(_)));
    assert!(last_remove < first_add);
    assert!(!ev.iter().any(|e| matches!(e, HaEvent::ProxyNdRemove(_))));
    assert_eq!(state(&e, HOA1), [(Some(3), v6(COA3))]);
    // O in a de-registration is ignored (RFC 5648 §6.2): only the listed BID goes.
    e.ba(&Bu::new(HOA1, 3).opt(bid(4, Some(COA2))));
    e.events();
    let mut d = Bu::new(HOA1, 4).opt(bid(4, None));
    d.lifetime = 0;
    d.flags |= BuFlags::O;
    assert_eq!(status(&e.ba(&d)), BaStatus::Accepted);
    assert_eq!(state(&e, HOA1), [(Some(3), v6(COA3))]);
}

#[test]
fn bid_bindings_and_a_plain_binding_replace_each_other() {
    let mut e = Env::new(cfg());
    // A plain binding: BIDs without O are refused (165), with O they replace it.
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 1))), BaStatus::Accepted);
    e.events();
    let tx = e.ba(&Bu::new(HOA1, 2).opt(bid(1, None)));
    assert_eq!(status(&tx), BaStatus::McoaNonMcoaBindingExists);
    assert_eq!(bids(&tx), [(1, 165)]);
    assert!(e.events().is_empty(), "a refusal changes nothing");
    assert_eq!(state(&e, HOA1), [(None, v6(COA))]);
    let mut o = Bu::new(HOA1, 3).opt(bid(1, None)).opt(bid(2, Some(COA2)));
    o.flags |= BuFlags::O;
    assert_eq!(status(&e.ba(&o)), BaStatus::Accepted);
    let ev = e.events();
    assert_eq!(announced(&ev, true), [(None, v6(COA))]);
    assert!(ev.iter().any(|e| matches!(
        e,
        HaEvent::Persist(JournalRecord::Remove { hoa, bid: None }) if *hoa == HOA1
    )));
    assert_eq!(state(&e, HOA1), [(Some(1), v6(COA)), (Some(2), v6(COA2))]);

    // A BU without a BID option replaces every BID binding (RFC 5648 §6.2).
    let mut plain = Bu::new(HOA1, 4);
    plain.coa = COA3;
    let tx = e.ba(&plain);
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert!(bids(&tx).is_empty());
    let ev = e.events();
    assert_eq!(
        announced(&ev, true),
        [(Some(1), v6(COA)), (Some(2), v6(COA2))]
    );
    assert_eq!(announced(&ev, false), [(None, v6(COA3))]);
    assert_eq!(state(&e, HOA1), [(None, v6(COA3))]);

    // ... and a de-registration without one removes them all.
    let mut o = Bu::new(HOA1, 5).opt(bid(1, None)).opt(bid(2, Some(COA2)));
    o.flags |= BuFlags::O;
    e.ba(&o);
    e.events();
    let mut d = Bu::new(HOA1, 6);
    d.lifetime = 0;
    assert_eq!(status(&e.ba(&d)), BaStatus::Accepted);
    let ev = e.events();
    assert_eq!(announced(&ev, true).len(), 2);
    assert!(e.ha.is_empty());
}

#[test]
fn each_bid_expires_on_its_own() {
    let mut e = Env::new(cfg());
    // BID 1 for 400 s; BID 2 for 100 s, registered 10 s later.
    e.ba(&Bu::new(HOA1, 1).opt(bid(1, None)));
    e.advance(Duration::from_secs(10));
    let mut short = Bu::new(HOA1, 2).opt(bid(2, Some(COA2)));
    short.lifetime = 25;
    e.ba(&short);
    e.events();
    assert_eq!(e.ha.poll_timeout(), Some(e.t0 + Duration::from_secs(110)));
    e.advance(Duration::from_secs(99));
    assert_eq!(e.ha.binding_count(), 2);
    e.advance(Duration::from_secs(1));
    let ev = e.events();
    assert_eq!(announced(&ev, true), [(Some(2), v6(COA2))]);
    assert!(!ev.iter().any(|e| matches!(e, HaEvent::ProxyNdRemove(_))));
    assert_eq!(state(&e, HOA1), [(Some(1), v6(COA))]);
    assert_eq!(e.ha.stats().expired, 1);
    assert_eq!(e.ha.poll_timeout(), Some(e.t0 + Duration::from_secs(400)));
    e.advance(Duration::from_secs(290));
    let ev = e.events();
    assert_eq!(announced(&ev, true), [(Some(1), v6(COA))]);
    assert!(ev.iter().any(|e| matches!(e, HaEvent::ProxyNdRemove(_))));
    assert!(e.ha.is_empty());
    assert_eq!(e.ha.poll_timeout(), None);
}

#[test]
fn binding_refresh_requests_name_the_bid() {
    let mut c = cfg();
    c.brr = Some(BrrConfig {
        before_expiry: Duration::from_secs(60),
    });
    let mut e = Env::new(c);
    bulk(&mut e);
    e.advance(Duration::from_secs(340));
    let mut to = Vec::new();
    while let Some(tx) = e.ha.poll_transmit() {
        let MhRepr::BindingRefreshRequest(brr) = tx.repr().unwrap() else {
            panic!("not a BRR");
        };
        let named: Vec<u16> = brr
            .options
            .iter()
            .filter_map(|o| match *o {
                MobilityOption::BindingIdentifier { bid, coa: None, .. } => Some(bid),
                _ => None,
            })
            .collect();
        to.push((tx.addressing.dst_addr, named));
    }
    assert_eq!(to, [(COA, vec![1]), (COA2, vec![2])]);
}

#[test]
fn refusals_per_bid_and_per_bu() {
    let mut e = Env::new(cfg());
    // 164: BID 0 is reserved; a BID twice; a care-of address that is not one.
    let tx = e.ba(&Bu::new(HOA1, 1).opt(bid(0, None)).opt(bid(1, None)));
    assert_eq!(status(&tx), BaStatus::McoaNotComplete);
    assert_eq!(bids(&tx), [(0, 164), (1, 0)]);
    let tx = e.ba(&Bu::new(HOA1, 2).opt(bid(1, None)).opt(bid(1, Some(COA2))));
    assert_eq!(status(&tx), BaStatus::McoaMalformed);
    assert_eq!(bids(&tx), [(1, 164), (1, 164)]);
    let multicast: Ipv6Addr = "ff0e::1".parse().unwrap();
    let tx = e.ba(&Bu::new(HOA1, 3).opt(bid(2, Some(multicast))));
    assert_eq!(status(&tx), BaStatus::McoaMalformed);
    assert_eq!(bids(&tx), [(2, 164)]);
    // An IPv4 care-of address not first registered over UDP/IPv4 (RFC 5648 §8.1).
    let tx = e.ba(&Bu::new(HOA1, 4).opt(MobilityOption::BindingIdentifier {
        bid: 3,
        status: 0,
        h: false,
        coa: Some(Ipv4Addr::new(192, 0, 2, 77).into()),
        bid_pri: 0,
    }));
    assert_eq!(bids(&tx), [(3, 164)]);
    // 169: simultaneous home and foreign binding is not supported.
    let tx = e.ba(&Bu::new(HOA1, 5).opt(MobilityOption::BindingIdentifier {
        bid: 4,
        status: 0,
        h: true,
        coa: None,
        bid_pri: 0,
    }));
    assert_eq!(
        status(&tx),
        BaStatus::McoaSimultaneousHomeAndForeignProhibited
    );
    assert_eq!(state(&e, HOA1), [(Some(1), v6(COA))]);
    assert_eq!(e.ha.stats().bids_refused, 1 + 2 + 1 + 1 + 1);

    // 166 and 168 from the configuration.
    let mut c = cfg();
    c.mcoa.enabled = false;
    let mut e = Env::new(c);
    let tx = e.ba(&Bu::new(HOA1, 1).opt(bid(1, None)));
    assert_eq!(status(&tx), BaStatus::McoaProhibited);
    assert_eq!(bids(&tx), [(1, 166)]);
    assert!(e.ha.is_empty());
    // A BU without BIDs is still served.
    assert_eq!(status(&e.ba(&Bu::new(HOA1, 2))), BaStatus::Accepted);
    let mut c = cfg();
    c.mcoa.bulk_registration = false;
    let mut e = Env::new(c);
    let tx = e.ba(&Bu::new(HOA1, 1).opt(bid(1, None)).opt(bid(2, Some(COA2))));
    assert_eq!(status(&tx), BaStatus::McoaBulkRegistrationProhibited);
    assert_eq!(bids(&tx), [(1, 168), (2, 168)]);
    assert_eq!(
        status(&e.ba(&Bu::new(HOA1, 2).opt(bid(1, None)))),
        BaStatus::Accepted
    );
}

#[test]
fn bids_per_home_address_are_bounded() {
    let mut c = cfg();
    c.mcoa.max_bindings_per_home_address = 2;
    let mut e = Env::new(c);
    let tx = e.ba(&Bu::new(HOA1, 1)
        .opt(bid(1, None))
        .opt(bid(2, Some(COA2)))
        .opt(bid(3, Some(COA3))));
    assert_eq!(status(&tx), BaStatus::McoaNotComplete);
    assert_eq!(bids(&tx), [(1, 0), (2, 0), (3, 130)]);
    assert_eq!(e.ha.binding_count(), 2);
    // Refreshes of held BIDs are not new ones; a new one is refused alone (130).
    assert_eq!(
        status(&e.ba(&Bu::new(HOA1, 2).opt(bid(2, Some(COA3))))),
        BaStatus::Accepted
    );
    let tx = e.ba(&Bu::new(HOA1, 3).opt(bid(5, Some(COA3))));
    assert_eq!(status(&tx), BaStatus::InsufficientResources);
    assert_eq!(bids(&tx), [(5, 130)]);
    // With O the BU's own BIDs are all there will be.
    let mut o = Bu::new(HOA1, 4)
        .opt(bid(5, Some(COA3)))
        .opt(bid(6, Some(COA2)));
    o.flags |= BuFlags::O;
    assert_eq!(status(&e.ba(&o)), BaStatus::Accepted);
    e.events();
    assert_eq!(state(&e, HOA1), [(Some(5), v6(COA3)), (Some(6), v6(COA2))]);
}

#[test]
fn authentication_and_replay_protection_still_apply() {
    let mut e = Env::new(auth_cfg());
    // Unsigned: dropped silently (RFC 4285 §4), BIDs or not.
    e.send(&Bu::new(HOA1, 1).opt(bid(1, None)));
    assert!(e.ha.poll_transmit().is_none());
    assert_eq!(e.ha.stats().no_auth_option, 1);
    // The wrong key: 146, every BID with it, nothing registered.
    let wrong = Bu::new(HOA1, 1)
        .opt(bid(1, None))
        .opt(bid(2, Some(COA2)))
        .signed(1000, KEY2, e.wall());
    let tx = e.ba(&wrong);
    assert_eq!(status(&tx), BaStatus::Mipv6AuthFail);
    assert_eq!(bids(&tx), [(1, 146), (2, 146)]);
    assert!(e.ha.is_empty());
    // Signed: registered; the BA is signed too, over the BU's care-of address.
    let good = Bu::new(HOA1, 1)
        .opt(bid(1, None))
        .opt(bid(2, Some(COA2)))
        .signed(1000, KEY1, e.wall());
    let tx = e.ba(&good);
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert!(proto::auth::verify(&tx.mh, COA.into(), &HOA1, KEY1).unwrap());
    assert_eq!(e.ha.binding_count(), 2);
    // The same BU again: its timestamp is no longer fresh (144), nothing changes.
    e.advance(Duration::from_secs(1));
    let mut replay = good.clone();
    replay.seq = 2;
    let tx = e.ba(&replay);
    assert_eq!(status(&tx), BaStatus::Mipv6IdMismatch);
    assert_eq!(e.ha.binding_count(), 2);
    // A de-registration of one BID, signed: the others stay; its replay does nothing.
    let mut d = Bu::new(HOA1, 3)
        .opt(bid(2, None))
        .signed(1000, KEY1, e.wall());
    d.lifetime = 0;
    assert_eq!(status(&e.ba(&d)), BaStatus::Accepted);
    assert_eq!(e.ha.binding_count(), 1);
    let tx = e.ba(&d);
    assert_eq!(status(&tx), BaStatus::Mipv6IdMismatch);
    assert_eq!(e.ha.binding_count(), 1);
}

#[test]
fn prefixes_belong_to_the_home_address() {
    let mut e = Env::new(cfg());
    bulk(&mut e);
    // BID 2's refresh lists an explicit prefix: every BID's binding now carries it.
    let tx = e.ba(&Bu::new(HOA1, 2)
        .opt(bid(2, Some(COA2)))
        .mnp("2001:db8:200::/48"));
    assert_eq!(status(&tx), BaStatus::Accepted);
    let ev = e.events();
    let adds: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            HaEvent::BcAdd(b) => Some((b.binding_id, b.mnp_v6.clone())),
            _ => None,
        })
        .collect();
    let want = nets6(&["2001:db8:200::/48"]);
    assert_eq!(adds, [(Some(1), want.clone()), (Some(2), want)]);
    // Explicit prefixes are still all or nothing (142), for the whole BU.
    let tx = e.ba(&Bu::new(HOA1, 3).opt(bid(1, None)).mnp("2001:db8:999::/48"));
    assert_eq!(status(&tx), BaStatus::NotAuthorizedForPrefix);
    assert_eq!(bids(&tx), [(1, 142)]);
    assert_eq!(e.ha.binding_count(), 2);
}

#[test]
fn restart_restores_every_bid() {
    let mut e = Env::new(cfg());
    bulk(&mut e);
    let mut second = Bu::new(HOA1, 7).opt(bid(2, Some(COA3)));
    second.lifetime = 50;
    e.ba(&second);
    e.ba(&Bu::new(HOA2, 1));
    e.advance(Duration::from_secs(20));
    let snap = e.ha.snapshot(e.now, e.wall());
    let keys: Vec<_> = snap.iter().map(|b| (b.hoa, b.bid, b.sequence)).collect();
    assert_eq!(
        keys,
        [(HOA1, Some(1), 7), (HOA1, Some(2), 7), (HOA2, None, 1)]
    );
    // Through the journal's encoding and fold, as after a real restart.
    let restored = through_the_journal(&e);
    assert_eq!(restored, snap);
    let mut e2 = Env::new(cfg());
    e2.now = e2.t0;
    let n = e2.ha.restore(e2.now, e.wall(), restored);
    assert_eq!(n, 3);
    let ev = e2.events();
    assert_eq!(
        announced(&ev, false),
        [(Some(1), v6(COA)), (Some(2), v6(COA3)), (None, v6(COA))]
    );
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, HaEvent::ProxyNdAdd(_)))
            .count(),
        2
    );
    assert_eq!(state(&e2, HOA1), [(Some(1), v6(COA)), (Some(2), v6(COA3))]);
    // The shared sequence number survived; each BID keeps its own lifetime.
    assert_eq!(
        status(&e2.ba(&Bu::new(HOA1, 7).opt(bid(1, None)))),
        BaStatus::SequenceNumberOutOfWindow
    );
    assert_eq!(
        e2.ha.poll_timeout(),
        Some(e2.now + Duration::from_secs(180))
    );
}

#[test]
fn ipv4_care_of_address_in_the_bid_option_over_udp() {
    let mut e = Env::new(cfg());
    let local = std::net::SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 4191);
    let send = |e: &mut Env, bu: Bu, peer: std::net::SocketAddrV4| {
        let mh = bu.bytes();
        let sig = ReceivedSignal {
            src: bu.hoa,
            dst: HA,
            home_address: None,
            mh: &mh,
            checksum: ChecksumState::Unverified,
            ifindex: 3,
            udp_v4: Some(UdpV4Path { peer, local }),
        };
        let wall = e.wall();
        e.ha.handle_packet(e.now, wall, &sig);
        e.ha.poll_transmit().expect("a BA")
    };
    // Behind a NAT: the MR's own 10.0.0.5 in the BID option, 100.64.0.9:40000 seen.
    let own = Ipv4Addr::new(10, 0, 0, 5);
    let mut bu = Bu::new(HOA1, 1).opt(MobilityOption::BindingIdentifier {
        bid: 1,
        status: 0,
        h: false,
        coa: Some(own.into()),
        bid_pri: 0,
    });
    bu.hao = false;
    let peer = std::net::SocketAddrV4::new(Ipv4Addr::new(100, 64, 0, 9), 40000);
    let tx = send(&mut e, bu.clone(), peer);
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(bids(&tx), [(1, 0)]);
    assert_eq!(tx.udp_v4.map(|p| p.peer), Some(peer));
    // NAT detected against the BID option's address (RFC 5555 §4.1, RFC 5648 §8.1).
    assert!(
        ba_of(&tx)
            .options
            .iter()
            .any(|o| matches!(o, MobilityOption::NatDetection { f: true, .. }))
    );
    let nat_coa = CareOf::V4 {
        addr: *peer.ip(),
        udp_port: Some(40000),
    };
    assert_eq!(state(&e, HOA1), [(Some(1), nat_coa)]);
    e.events();
    // A bulk refresh over IPv6 keeps the IPv4 binding's path, and adds an IPv6 one.
    let tx = e.ba(&Bu::new(HOA1, 2)
        .opt(MobilityOption::BindingIdentifier {
            bid: 1,
            status: 0,
            h: false,
            coa: Some(own.into()),
            bid_pri: 0,
        })
        .opt(bid(2, Some(COA2))));
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(state(&e, HOA1), [(Some(1), nat_coa), (Some(2), v6(COA2))]);
    // The IPv4 Care-of Address option beside a BID option: 164 (RFC 5648 §8.1).
    let mut bu = bu.opt(MobilityOption::Ipv4CareOfAddress(own));
    bu.seq = 3;
    let tx = send(&mut e, bu, peer);
    assert_eq!(status(&tx), BaStatus::McoaMalformed);
}
