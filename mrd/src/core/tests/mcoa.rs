//! Multiple care-of addresses (RFC 5648, issue 15): the bulk registration from the
//! movement detector's uplinks, per-BID statuses, the fallback to a home agent without
//! MCoA, on virtual time with a scripted home agent.
//!
//! Uplinks: eth0 (BID 1) holds coa1, the care-of address in use, interface 3; eth1 (BID 2)
//! holds coa2, interface 4.

use proto::model::Uplink;

use super::*;

pub(super) fn mcoa_cfg() -> MrCoreConfig {
    let mut c = cfg();
    c.multiple_coa = true;
    c.egress_interfaces = vec!["eth0".into(), "eth1".into(), "wwan0".into()];
    c
}

pub(super) fn up(coa: CareOf, ifindex: u32, ifname: &str) -> Uplink {
    Uplink {
        coa,
        ifindex,
        ifname: ifname.into(),
        preference: ifindex,
    }
}

pub(super) fn eth0() -> Uplink {
    up(CareOf::V6(coa1()), 3, "eth0")
}

pub(super) fn eth1() -> Uplink {
    up(CareOf::V6(coa2()), 4, "eth1")
}

/// REREG from coa1 on interface 3 with these uplinks.
pub(super) fn rereg_up(uplinks: Vec<Uplink>) -> MdInfo {
    MdInfo {
        uplinks,
        ..rereg(coa1())
    }
}

fn bid(bid: u16, coa: Ipv6Addr) -> MobilityOption<'static> {
    MobilityOption::BindingIdentifier {
        bid,
        status: 0,
        h: false,
        coa: Some(IpAddr::V6(coa)),
        bid_pri: 1,
    }
}

/// A BID option of a BA: the status, no care-of address.
pub(super) fn bid_status(bid: u16, status: u8) -> MobilityOption<'static> {
    MobilityOption::BindingIdentifier {
        bid,
        status,
        h: false,
        coa: None,
        bid_pri: 0,
    }
}

/// The BID options of a BU: (BID, care-of address).
pub(super) fn bids_of(bu: &SentBu) -> Vec<(u16, Ipv6Addr)> {
    bu.options
        .iter()
        .filter_map(|o| match *o {
            MobilityOption::BindingIdentifier {
                bid,
                coa: Some(IpAddr::V6(c)),
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

/// The bus events as (add or remove, BID, care-of address, optimistic).
pub(super) fn bus(evs: &[MrEvent]) -> Vec<(&'static str, Option<u16>, CareOf, bool)> {
    evs.iter()
        .filter_map(|e| match e {
            MrEvent::BulAdd {
                binding,
                optimistic,
                ..
            } => Some(("add", binding.binding_id, binding.coa, *optimistic)),
            MrEvent::BulRemove { binding } => {
                Some(("remove", binding.binding_id, binding.coa, false))
            }
            _ => None,
        })
        .collect()
}

const V6A: fn() -> CareOf = || CareOf::V6(coa1());
const V6B: fn() -> CareOf = || CareOf::V6(coa2());

/// Both IPv6 uplinks up at `t`: the bulk BU that follows.
pub(super) fn bulk_bu(mr: &mut MrCore, t: Instant) -> SentBu {
    mr.handle_md_info(t, &rereg_up(vec![eth0(), eth1()]));
    next_bu(mr)
}

/// The home agent's BA to `bu`: accepted, the IPv4 prefix too, both BIDs accepted.
pub(super) fn bulk_ba(bu: &SentBu) -> Ba {
    Ba::ok(bu)
        .opt(v4_ack(0, mnp4()))
        .opt(bid_status(1, 0))
        .opt(bid_status(2, 0))
}

/// Registered from coa1 with both uplinks (BA 100 ms after t0, both BIDs accepted).
fn registered_bulk(mr: &mut MrCore, t0: Instant) -> SentBu {
    let bu = bulk_bu(mr, t0);
    assert_eq!(bids_of(&bu), [(1, coa1()), (2, coa2())]);
    deliver(mr, ms(t0, 100), &bulk_ba(&bu).packet(coa1()));
    assert_eq!(
        bus(&events(mr)),
        [
            ("add", Some(1), V6A(), false),
            ("add", Some(2), V6B(), false)
        ]
    );
    bu
}

#[test]
fn bulk_bu_lists_every_ipv6_uplink_with_the_o_flag_and_the_authenticator_last() {
    let t0 = Instant::now();
    let mut c = mcoa_cfg();
    c.security = Some(sa(false));
    let mut mr = MrCore::new(c).unwrap();
    // An IPv4 uplink (no IPv4 address for the home agent configured here, so nothing to
    // send its BU to) and one on an interface mrd.conf does not list are left out.
    let v4 = up(
        CareOf::V4 {
            addr: Ipv4Addr::new(198, 51, 100, 5),
            udp_port: None,
        },
        5,
        "wwan0",
    );
    let stranger = up(CareOf::V6("2001:db8:c::5".parse().unwrap()), 6, "wlan9");
    mr.handle_md_info(t0, &rereg_up(vec![eth0(), eth1(), v4, stranger]));
    let bu = next_bu(&mut mr);
    assert_eq!(bu.flags, BuFlags::A | BuFlags::H | BuFlags::R | BuFlags::O);
    let (last, rest) = bu.options.split_last().unwrap();
    assert!(
        matches!(
            last,
            MobilityOption::Authentication {
                subtype: 1,
                spi: SPI,
                ..
            }
        ),
        "{last:?}"
    );
    assert_eq!(
        rest,
        [
            MobilityOption::AlternateCareOfAddress(coa1()),
            bid(1, coa1()),
            bid(2, coa2()),
            MobilityOption::MobileNetworkPrefix {
                prefix_len: 48,
                prefix: mnp6().network()
            },
            MobilityOption::Ipv4HomeAddress {
                prefix_len: 24,
                p: true,
                address: mnp4().network()
            },
            MobilityOption::MobileNodeIdentifier {
                subtype: 1,
                identifier: b"mr1@example.net"
            },
        ]
    );
    // From the care-of address in use, by its interface; signed over it (RFC 4285).
    assert_eq!(bu.tx.ifindex, 3);
    assert_eq!(bu.tx.addressing.src_addr, coa1());
    assert_eq!(bu.tx.addressing.home_address, Some(hoa()));
    assert!(auth::verify(&bu.tx.mh, IpAddr::V6(coa1()), &hoa(), KEY).unwrap());
    // The options are where the RFCs want them: BID with a care-of address at 8n+2.
    let mh = &bu.tx.mh;
    let mut off = 12;
    while off < mh.len() {
        match mh[off] {
            0 => off += 1,
            t => {
                if t == 35 {
                    assert_eq!(off % 8, 2, "BID option at {off}");
                    assert_eq!(mh[off + 1], 20);
                }
                off += 2 + usize::from(mh[off + 1]);
            }
        }
    }
    assert!(events(&mut mr).is_empty(), "nothing before the BA");
    assert_eq!(mr.mcoa_support(), McoaSupport::Unknown);
}

#[test]
fn ba_with_per_bid_statuses_announces_each_accepted_bid() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(mcoa_cfg()).unwrap();
    registered_bulk(&mut mr, t0);
    assert_eq!(mr.mcoa_support(), McoaSupport::Supported);
    let b: Vec<_> = mr.bindings().cloned().collect();
    assert_eq!(b.len(), 2);
    for (b, (id, coa, ifx)) in b.iter().zip([(1, coa1(), 3), (2, coa2(), 4)]) {
        assert_eq!(b.binding_id, Some(id));
        assert_eq!(b.coa, CareOf::V6(coa));
        assert_eq!(b.coa_ifindex, Some(ifx));
        assert_eq!(b.ha, ha());
        assert_eq!(b.mnp_v6, vec![mnp6()]);
        assert_eq!(b.mnp_v4, vec![mnp4()]);
        assert_eq!(b.lifetime, 400);
        assert_eq!(b.encapsulation, proto::model::Encapsulation::InIpv6);
    }
    // The state dump: every binding, with its remaining lifetime.
    let dump = mr.handle_state_request(ms(t0, 100_000));
    let ids: Vec<_> = dump.iter().map(|b| (b.binding_id, b.lifetime)).collect();
    assert_eq!(ids, [(Some(1), 300), (Some(2), 300)]);

    // MCOA NOTCOMPLETE (4): BID 1 accepted (0: the BA's status), BID 2 refused (130).
    let mut mr = MrCore::new(mcoa_cfg()).unwrap();
    let bu = bulk_bu(&mut mr, t0);
    deliver(
        &mut mr,
        ms(t0, 100),
        &Ba::ok(&bu)
            .status(4)
            .opt(v4_ack(0, mnp4()))
            .opt(bid_status(1, 0))
            .opt(bid_status(2, 130))
            .packet(coa1()),
    );
    assert_eq!(bus(&events(&mut mr)), [("add", Some(1), V6A(), false)]);
    assert!(matches!(
        mr.state(),
        RegistrationState::Registered { refreshing: false }
    ));
    // The next refresh lists both again (the uplinks have not changed).
    let t = mr.poll_timeout().unwrap();
    mr.handle_timeout(t);
    assert_eq!(bids_of(&next_bu(&mut mr)), [(1, coa1()), (2, coa2())]);
}

#[test]
fn a_lost_uplink_leaves_the_next_bu_and_is_removed_after_its_ba() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(mcoa_cfg()).unwrap();
    let first = registered_bulk(&mut mr, t0);
    // eth1 goes: the same care-of address in use, one uplink left: a new registration at
    // once, not a move.
    mr.handle_md_info(ms(t0, 5000), &rereg_up(vec![eth0()]));
    let bu = next_bu(&mut mr);
    assert_eq!(bu.seq, first.seq + 1);
    assert_eq!(bids_of(&bu), [(1, coa1())]);
    assert!(bu.flags.contains(BuFlags::O));
    assert_eq!(mr.stats().moves, 1);
    assert!(events(&mut mr).is_empty(), "BID 2 stays until the BA");
    // The same MD_INFO again is nothing new.
    mr.handle_md_info(ms(t0, 5010), &rereg_up(vec![eth0()]));
    assert!(mr.poll_transmit().is_none());
    deliver(
        &mut mr,
        ms(t0, 5100),
        &Ba::ok(&bu).opt(bid_status(1, 0)).packet(coa1()),
    );
    assert_eq!(
        bus(&events(&mut mr)),
        [
            ("add", Some(1), V6A(), false),
            ("remove", Some(2), V6B(), false)
        ]
    );
    assert_eq!(mr.bindings().count(), 1);
    // Registered with this set: the same MD_INFO sends nothing; eth1 back is a new one.
    mr.handle_md_info(ms(t0, 6000), &rereg_up(vec![eth0()]));
    assert!(mr.poll_transmit().is_none());
    mr.handle_md_info(ms(t0, 7000), &rereg_up(vec![eth0(), eth1()]));
    let bu = next_bu(&mut mr);
    assert_eq!(bids_of(&bu), [(1, coa1()), (2, coa2())]);
}

#[test]
fn refreshes_carry_the_current_set() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(mcoa_cfg()).unwrap();
    let first = registered_bulk(&mut mr, t0);
    assert_eq!(mr.poll_timeout(), Some(ms(t0, 384_000)));
    mr.handle_timeout(ms(t0, 384_000));
    let bu = next_bu(&mut mr);
    assert_eq!(bu.seq, first.seq + 1);
    assert_eq!(bu.flags, first.flags);
    assert_eq!(bu.options, first.options);
    deliver(&mut mr, ms(t0, 384_100), &bulk_ba(&bu).packet(coa1()));
    assert_eq!(
        bus(&events(&mut mr)),
        [
            ("add", Some(1), V6A(), false),
            ("add", Some(2), V6B(), false)
        ]
    );
    // Unanswered refreshes: at expiry every BID's binding goes.
    let t = mr.poll_timeout().unwrap();
    mr.handle_timeout(t);
    let _ = drain_tx(&mut mr);
    for _ in 0..8 {
        let t = mr.poll_timeout().unwrap();
        mr.handle_timeout(t);
        let _ = drain_tx(&mut mr);
    }
    let evs = events(&mut mr);
    assert_eq!(
        bus(&evs),
        [
            ("remove", Some(1), V6A(), false),
            ("remove", Some(2), V6B(), false)
        ]
    );
    assert_eq!(mr.bindings().count(), 0);
}

#[test]
fn a_home_agent_without_mcoa_gets_the_care_of_address_in_use_alone() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(mcoa_cfg()).unwrap();
    let bu = bulk_bu(&mut mr, t0);
    assert_eq!(bids_of(&bu).len(), 2);
    // It skipped the options it does not know and registered the Alternate CoA.
    deliver(
        &mut mr,
        ms(t0, 100),
        &Ba::ok(&bu).opt(v4_ack(0, mnp4())).packet(coa1()),
    );
    assert_eq!(bus(&events(&mut mr)), [("add", None, V6A(), false)]);
    assert_eq!(mr.mcoa_support(), McoaSupport::Unsupported);
    // Refreshes are plain; a change of the uplinks alone is nothing new for it.
    mr.handle_md_info(ms(t0, 1000), &rereg_up(vec![eth0()]));
    assert!(mr.poll_transmit().is_none());
    mr.handle_timeout(ms(t0, 384_000));
    let refresh = next_bu(&mut mr);
    assert!(bids_of(&refresh).is_empty());
    assert_eq!(refresh.flags, BuFlags::A | BuFlags::H | BuFlags::R);
    // A move is plain too.
    mr.handle_md_info(
        ms(t0, 385_000),
        &MdInfo {
            uplinks: vec![eth1()],
            ifindex: 4,
            ..rereg(coa2())
        },
    );
    let moved = next_bu(&mut mr);
    assert_eq!(moved.tx.addressing.src_addr, coa2());
    assert!(bids_of(&moved).is_empty());
}

#[test]
fn an_mcoa_refusal_of_the_whole_bu_falls_back_at_once() {
    // 168 (bulk registration prohibited) makes individual registrations instead:
    // individual.rs.
    for status in [164u8, 165, 166, 167, 169] {
        let t0 = Instant::now();
        let mut mr = MrCore::new(mcoa_cfg()).unwrap();
        let bu = bulk_bu(&mut mr, t0);
        deliver(
            &mut mr,
            ms(t0, 100),
            &Ba::ok(&bu)
                .status(status)
                .opt(bid_status(1, 0))
                .opt(bid_status(2, 0))
                .packet(coa1()),
        );
        assert_eq!(mr.mcoa_support(), McoaSupport::Unsupported, "{status}");
        assert_eq!(mr.stats().last_refusal, Some(status));
        // The plain BU leaves at once, a new sequence number.
        let plain = next_bu(&mut mr);
        assert_eq!(plain.seq, bu.seq + 1, "{status}");
        assert!(bids_of(&plain).is_empty());
        assert!(!plain.flags.contains(BuFlags::O));
        deliver(
            &mut mr,
            ms(t0, 200),
            &Ba::ok(&plain).opt(v4_ack(0, mnp4())).packet(coa1()),
        );
        assert_eq!(bus(&events(&mut mr)), [("add", None, V6A(), false)]);
    }
    // Another refusal of a bulk BU is the usual one: retried with the BIDs.
    let t0 = Instant::now();
    let mut mr = MrCore::new(mcoa_cfg()).unwrap();
    let bu = bulk_bu(&mut mr, t0);
    deliver(
        &mut mr,
        ms(t0, 100),
        &Ba::ok(&bu).status(130).packet(coa1()),
    );
    assert!(mr.poll_transmit().is_none(), "back-off");
    let t = mr.poll_timeout().unwrap();
    mr.handle_timeout(t);
    assert_eq!(bids_of(&next_bu(&mut mr)).len(), 2);
    assert_eq!(mr.mcoa_support(), McoaSupport::Unknown);
}

#[test]
fn from_a_plain_binding_to_a_bulk_one_and_back() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(mcoa_cfg()).unwrap();
    // A movement detector without uplinks (an older one): the plain BU.
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    assert!(bids_of(&bu).is_empty());
    assert!(!bu.flags.contains(BuFlags::O));
    deliver(
        &mut mr,
        ms(t0, 100),
        &Ba::ok(&bu).opt(v4_ack(0, mnp4())).packet(coa1()),
    );
    assert_eq!(bus(&events(&mut mr)), [("add", None, V6A(), false)]);
    // Uplinks: the bulk BU, whose O replaced the plain binding at the HA: the BIDs are
    // announced, then the plain binding removed.
    mr.handle_md_info(ms(t0, 1000), &rereg_up(vec![eth0(), eth1()]));
    let bu = next_bu(&mut mr);
    deliver(&mut mr, ms(t0, 1100), &bulk_ba(&bu).packet(coa1()));
    assert_eq!(
        bus(&events(&mut mr)),
        [
            ("add", Some(1), V6A(), false),
            ("add", Some(2), V6B(), false),
            ("remove", None, V6A(), false)
        ]
    );
    // The care-of address in use no longer among the uplinks (an inconsistent detector):
    // registered alone, the plain binding replacing the BIDs.
    mr.handle_md_info(ms(t0, 2000), &rereg_up(vec![eth1()]));
    let bu = next_bu(&mut mr);
    assert!(bids_of(&bu).is_empty());
    deliver(
        &mut mr,
        ms(t0, 2100),
        &Ba::ok(&bu).opt(v4_ack(0, mnp4())).packet(coa1()),
    );
    assert_eq!(
        bus(&events(&mut mr)),
        [
            ("add", None, V6A(), false),
            ("remove", Some(1), V6A(), false),
            ("remove", Some(2), V6B(), false)
        ]
    );
}

#[test]
fn deregistration_is_plain_and_removes_every_bid() {
    // At home: every BID's BUL_REMOVE, then the one at home; the BU is the plain one of
    // lifetime 0, which removes every binding of the home address.
    let t0 = Instant::now();
    let mut mr = MrCore::new(mcoa_cfg()).unwrap();
    registered_bulk(&mut mr, t0);
    let mut home = md(MdCommand::Dereghome);
    home.ifindex = 3;
    mr.handle_md_info(ms(t0, 1000), &home);
    let evs = events(&mut mr);
    assert_eq!(
        bus(&evs),
        [
            ("remove", Some(1), V6A(), false),
            ("remove", Some(2), V6B(), false),
            ("remove", None, CareOf::V6(hoa()), false)
        ]
    );
    let dereg = next_bu(&mut mr);
    assert_eq!(dereg.lifetime, Lifetime::ZERO);
    assert!(bids_of(&dereg).is_empty());
    assert!(!dereg.flags.contains(BuFlags::O));
    deliver(&mut mr, ms(t0, 1100), &Ba::ok(&dereg).packet(hoa()));
    assert_eq!(mr.state(), RegistrationState::Idle);
    assert_eq!(mr.bindings().count(), 0);

    // From the foreign link (stopping): the plain BU from the care-of address in use; its
    // BA removes every BID.
    let mut mr = MrCore::new(mcoa_cfg()).unwrap();
    registered_bulk(&mut mr, t0);
    mr.deregister(ms(t0, 1000));
    let dereg = next_bu(&mut mr);
    assert_eq!(dereg.lifetime, Lifetime::ZERO);
    assert_eq!(dereg.tx.addressing.src_addr, coa1());
    assert!(bids_of(&dereg).is_empty());
    assert!(events(&mut mr).is_empty());
    deliver(&mut mr, ms(t0, 1100), &Ba::ok(&dereg).packet(coa1()));
    assert_eq!(
        bus(&events(&mut mr)),
        [
            ("remove", Some(1), V6A(), false),
            ("remove", Some(2), V6B(), false)
        ]
    );
    assert_eq!(mr.state(), RegistrationState::Idle);
}

#[test]
fn optimistic_bulk_registration() {
    let t0 = Instant::now();
    let mut c = mcoa_cfg();
    c.optimistic = true;
    let mut mr = MrCore::new(c).unwrap();
    let bu = bulk_bu(&mut mr, t0);
    assert_eq!(
        bus(&events(&mut mr)),
        [("add", Some(1), V6A(), true), ("add", Some(2), V6B(), true)]
    );
    // BID 2 refused: confirmed BID 1, BID 2 withdrawn.
    deliver(
        &mut mr,
        ms(t0, 100),
        &Ba::ok(&bu)
            .status(4)
            .opt(v4_ack(0, mnp4()))
            .opt(bid_status(1, 0))
            .opt(bid_status(2, 129))
            .packet(coa1()),
    );
    assert_eq!(
        bus(&events(&mut mr)),
        [
            ("add", Some(1), V6A(), false),
            ("remove", Some(2), V6B(), false)
        ]
    );
    // A new uplink is announced as its BU leaves; what is announced already is not.
    let eth1b = up(CareOf::V6("2001:db8:b::6".parse().unwrap()), 4, "eth1");
    mr.handle_md_info(ms(t0, 1000), &rereg_up(vec![eth0(), eth1b.clone()]));
    let bu = next_bu(&mut mr);
    assert_eq!(bus(&events(&mut mr)), [("add", Some(2), eth1b.coa, true)]);
    // Refused as a whole: the optimistic BID goes, the confirmed one stays.
    deliver(
        &mut mr,
        ms(t0, 1100),
        &Ba::ok(&bu).status(130).packet(coa1()),
    );
    assert_eq!(
        bus(&events(&mut mr)),
        [("remove", Some(2), eth1b.coa, false)]
    );
    assert_eq!(mr.bindings().count(), 1);
}

#[test]
fn without_mcoa_the_uplinks_change_nothing() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(cfg()).unwrap();
    let bu = bulk_bu(&mut mr, t0);
    // The BU of first_registration_bu_is_complete, octet for octet.
    let mut plain = MrCore::new(cfg()).unwrap();
    plain.handle_md_info(t0, &rereg(coa1()));
    assert_eq!(bu.tx, next_bu(&mut plain).tx);
    deliver(
        &mut mr,
        ms(t0, 100),
        &Ba::ok(&bu).opt(v4_ack(0, mnp4())).packet(coa1()),
    );
    assert_eq!(bus(&events(&mut mr)), [("add", None, V6A(), false)]);
    // A change of the uplinks alone sends nothing.
    mr.handle_md_info(ms(t0, 1000), &rereg_up(vec![eth0()]));
    assert!(mr.poll_transmit().is_none());
    assert_eq!(mr.mcoa_support(), McoaSupport::Unknown);
}

#[test]
fn multiple_care_of_addresses_need_the_egress_interfaces() {
    let mut c = cfg();
    c.multiple_coa = true;
    assert_eq!(
        MrCore::new(c).unwrap_err(),
        ConfigError::McoaWithoutEgressInterfaces
    );
    let c = mcoa_cfg();
    assert_eq!(c.binding_id("eth0"), Some(1));
    assert_eq!(c.binding_id("wwan0"), Some(3));
    assert_eq!(c.binding_id("lo"), None);
}

#[test]
fn a_binding_refresh_request_for_any_bid_refreshes_the_bulk_registration() {
    let t0 = Instant::now();
    let mut c = mcoa_cfg();
    c.security = Some(sa(false));
    let mut mr = MrCore::new(c).unwrap();
    let bu = bulk_bu(&mut mr, t0);
    deliver(
        &mut mr,
        ms(t0, 100),
        &bulk_ba(&bu).signed(KEY, coa1()).packet(coa1()),
    );
    assert_eq!(mr.bindings().count(), 2);
    // had asks for BID 2's binding, signed over its care-of address, sent to it.
    let brr = |key: &'static [u8], over: Ipv6Addr| {
        let repr = MhRepr::BindingRefreshRequest(BindingRefreshRequest {
            options: vec![bid_status(2, 0), auth::mn_ha_option(SPI)],
        });
        let mut mh = vec![0; repr.buffer_len()];
        repr.emit_to(&mut mh).unwrap();
        auth::sign(&mut mh, IpAddr::V6(over), &hoa(), key).unwrap();
        wrap(&mh, coa2())
    };
    deliver(&mut mr, ms(t0, 1000), &brr(b"another key 0123", coa2()));
    assert!(mr.poll_transmit().is_none(), "forged");
    deliver(&mut mr, ms(t0, 2000), &brr(KEY, coa2()));
    let refresh = next_bu(&mut mr);
    assert_eq!(bids_of(&refresh), [(1, coa1()), (2, coa2())]);
    assert_eq!(refresh.tx.addressing.src_addr, coa1());
}

/// RFC 6089 §4.1, §5.2.1: each BID option carries its interface's BID-PRI (1 unless
/// configured, never 0), and each binding announced carries it to the data plane.
#[test]
fn each_bid_carries_its_bid_pri_to_the_home_agent_and_the_data_plane() {
    let t0 = Instant::now();
    let mut c = mcoa_cfg();
    c.bid_priorities = vec![(2, 10)];
    let mut mr = MrCore::new(c).unwrap();
    let bu = bulk_bu(&mut mr, t0);
    let pris: Vec<(u16, u8)> = bu
        .options
        .iter()
        .filter_map(|o| match *o {
            MobilityOption::BindingIdentifier { bid, bid_pri, .. } => Some((bid, bid_pri)),
            _ => None,
        })
        .collect();
    assert_eq!(pris, [(1, 1), (2, 10)]);
    deliver(&mut mr, ms(t0, 100), &bulk_ba(&bu).packet(coa1()));
    let announced: Vec<(Option<u16>, u8)> = events(&mut mr)
        .iter()
        .filter_map(|e| match e {
            MrEvent::BulAdd { binding, .. } => Some((binding.binding_id, binding.bid_priority)),
            _ => None,
        })
        .collect();
    assert_eq!(announced, [(Some(1), 1), (Some(2), 10)]);
}
