use super::*;
use crate::netops::{Call, FakeNetOps};
use mipsock::{BuFlags, CareOf, Encapsulation};

fn mr_cfg() -> RouteConfig {
    RouteConfig {
        mode: Mode::MobileRouter,
        tun: "nemo0".into(),
        table: 100,
        rule_priority: 20100,
        ipv4_own_traffic: true,
        kernel: None,
    }
}

fn ha_cfg() -> RouteConfig {
    RouteConfig {
        mode: Mode::HomeAgent,
        tun: "nemo0".into(),
        table: TABLE_MAIN,
        rule_priority: 20100,
        ipv4_own_traffic: false,
        kernel: None,
    }
}

fn binding(hoa: &str, coa: &str, mnp6: &[&str], mnp4: &[&str]) -> Binding {
    Binding {
        hoa: hoa.parse().unwrap(),
        hoa_v4: None,
        coa: coa.parse().unwrap(),
        ha: "2001:db8:1::1".parse().unwrap(),
        ha_v4: Some("192.0.2.1".parse().unwrap()),
        mnp_v6: mnp6.iter().map(|p| p.parse().unwrap()).collect(),
        mnp_v4: mnp4.iter().map(|p| p.parse().unwrap()).collect(),
        encapsulation: Encapsulation::InIpv6,
        lifetime: 600,
        binding_id: None,
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        nat_detected: false,
        coa_ifindex: None,
        flows: Vec::new(),
        bid_priority: 0,
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn mr_fake() -> FakeNetOps {
    let mut f = FakeNetOps::default();
    f.local.push("198.51.100.1".parse().unwrap());
    f
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn mr_binding() -> Binding {
    binding(
        "2001:db8:1::100",
        "2001:db8:a::5",
        &["2001:db8:100::/64"],
        &["198.51.100.0/24"],
    )
}

#[test]
fn mr_add_installs_tables_then_rules() {
    run(async {
        let mut m = RouteManager::new(mr_cfg(), mr_fake());
        m.add(&mr_binding()).await.unwrap();
        let calls = m.net().take();
        let rule = |s: &str| Call::RuleAdd(RuleSpec::from(net(s), 100, 20102));
        // Issue 17 defect 3: before the tunnel rule, what main knows inside each MNP
        // (routes of the MNP's length or longer) wins, for any source.
        let inside = |s: &str, len: u32| {
            let to = net(s);
            Call::RuleAdd(RuleSpec {
                family: crate::netops::Family::of(&to),
                priority: 20101,
                from: None,
                to: Some(to),
                table: TABLE_MAIN,
                suppress_prefixlen: Some(len),
                iif: None,
                blackhole: false,
                fwmark: None,
                ipproto: None,
            })
        };
        let expected_rules = [
            rule("2001:db8:100::/64"),
            rule("2001:db8:1::100/128"),
            rule("198.51.100.0/24"),
            inside("2001:db8:100::/64", 63),
            inside("198.51.100.0/24", 23),
        ];
        for r in &expected_rules {
            assert!(calls.contains(r), "missing {r:?} in {calls:#?}");
        }
        let mut default4 = RouteSpec::dev(100, net("0.0.0.0/0"), "nemo0");
        default4.pref_src = Some("198.51.100.1".parse().unwrap());
        for r in [
            RouteSpec::dev(100, net("::/0"), "nemo0"),
            default4,
            // Issue 17 defect 4: fail closed when the TUN device (and its routes) vanish.
            RouteSpec::unreachable(100, net("::/0"), FAIL_CLOSED_METRIC),
            RouteSpec::unreachable(100, net("0.0.0.0/0"), FAIL_CLOSED_METRIC),
        ] {
            assert!(calls.contains(&Call::RouteAdd(r.clone())), "missing {r}");
        }
        assert!(calls.contains(&Call::AddrAdd("nemo0".into(), net("2001:db8:1::100/128"))));
        // The MR's own IPv4 traffic: main without defaults, then T.
        assert!(calls.iter().any(|c| matches!(c, Call::RuleAdd(r)
            if r.priority == 20104 && r.suppress_prefixlen == Some(0) && r.table == TABLE_MAIN)));
        assert!(calls.iter().any(|c| matches!(c, Call::RuleAdd(r)
            if r.priority == 20105 && r.table == 100 && r.from.is_none())));
        // Rules only after every route: never divert into an empty table.
        let last_route = calls
            .iter()
            .rposition(|c| matches!(c, Call::RouteAdd(_) | Call::AddrAdd(..)))
            .unwrap();
        let first_rule = calls
            .iter()
            .position(|c| matches!(c, Call::RuleAdd(_)))
            .unwrap();
        assert!(last_route < first_rule);
        // Every rule and route is in our table or main, and every route in ours.
        assert!(calls.iter().all(|c| match c {
            Call::RouteAdd(r) => r.table == 100,
            _ => true,
        }));
    });
}

#[test]
fn refresh_changes_nothing() {
    run(async {
        let mut m = RouteManager::new(mr_cfg(), mr_fake());
        let b = mr_binding();
        m.add(&b).await.unwrap();
        m.net().take();
        let mut refreshed = b.clone();
        refreshed.lifetime = 400;
        m.add(&refreshed).await.unwrap();
        assert_eq!(m.net().take(), vec![]);
    });
}

#[test]
fn move_to_new_ipv6_coa_changes_no_route() {
    run(async {
        let mut m = RouteManager::new(mr_cfg(), mr_fake());
        let b = mr_binding();
        m.add(&b).await.unwrap();
        m.net().take();
        let mut moved = b.clone();
        moved.coa = "2001:db8:b::7".parse().unwrap();
        m.add(&moved).await.unwrap();
        assert_eq!(m.net().take(), vec![]);
    });
}

#[test]
fn the_outer_exception_is_there_whatever_the_coa() {
    run(async {
        let mut m = RouteManager::new(mr_cfg(), mr_fake());
        let b = mr_binding();
        m.add(&b).await.unwrap();
        let to_ha = RuleSpec {
            family: Family::V4,
            priority: 20101,
            from: None,
            to: Some(net("192.0.2.1/32")),
            table: TABLE_MAIN,
            suppress_prefixlen: None,
            iif: None,
            blackhole: false,
            ipproto: None,
            fwmark: None,
        };
        // Already with an IPv6 CoA: the first BU in UDP after a move to an IPv4 CoA must
        // not enter the old tunnel.
        assert!(m.net().take().contains(&Call::RuleAdd(to_ha)));
        let mut moved = b.clone();
        moved.coa = "203.0.113.5".parse().unwrap();
        moved.encapsulation = Encapsulation::InIpv4;
        m.add(&moved).await.unwrap();
        assert_eq!(m.net().take(), vec![]);
        // And back to IPv6: nothing changes.
        m.add(&b).await.unwrap();
        assert_eq!(m.net().take(), vec![]);
    });
}

#[test]
fn remove_deletes_exactly_what_was_added_in_reverse_order() {
    run(async {
        let mut m = RouteManager::new(mr_cfg(), mr_fake());
        let b = mr_binding();
        m.add(&b).await.unwrap();
        let added = m.net().take();
        m.remove(&b).await.unwrap();
        let removed = m.net().take();
        assert_eq!(added.len(), removed.len());
        for c in &added {
            let inverse = match c.clone() {
                Call::RouteAdd(r) => Call::RouteDel(r),
                Call::RuleAdd(r) => Call::RuleDel(r),
                Call::AddrAdd(d, a) => Call::AddrDel(d, a),
                other => panic!("unexpected {other:?}"),
            };
            assert!(removed.contains(&inverse), "{inverse:?} not removed");
        }
        // Rules go first, so no packet is diverted into a table being emptied.
        let last_rule = removed
            .iter()
            .rposition(|c| matches!(c, Call::RuleDel(_)))
            .unwrap();
        let first_route = removed
            .iter()
            .position(|c| matches!(c, Call::RouteDel(_)))
            .unwrap();
        assert!(last_rule < first_route);
        assert!(m.installed().is_empty());
        // A second removal (duplicate message) does nothing.
        m.remove(&b).await.unwrap();
        assert_eq!(m.net().take(), vec![]);
    });
}

#[test]
fn ha_routes_every_prefix_and_hoa_into_the_tunnel() {
    run(async {
        let mut m = RouteManager::new(ha_cfg(), FakeNetOps::default());
        let mut b = mr_binding();
        b.hoa_v4 = Some("192.0.2.100".parse().unwrap());
        b.mnp_v6.push("2001:db8:200::/56".parse().unwrap());
        m.add(&b).await.unwrap();
        let mut calls = m.net().take();
        calls.sort_by_key(|c| format!("{c:?}"));
        let mut expected: Vec<Call> = [
            "2001:db8:100::/64",
            "2001:db8:200::/56",
            "2001:db8:1::100/128",
            "198.51.100.0/24",
            "192.0.2.100/32",
        ]
        .iter()
        .map(|p| Call::RouteAdd(RouteSpec::dev(TABLE_MAIN, net(p), "nemo0")))
        .collect();
        expected.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(calls, expected);
    });
}

/// `calls` replaced the two prefixes' routes of ours in place and created the home
/// address's: nothing else.
fn prefixes_replaced_in_place(calls: &[Call]) {
    assert!(
        calls
            .iter()
            .all(|c| matches!(c, Call::RouteAdd(_) | Call::RouteReplace(_))),
        "{calls:#?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| matches!(c, Call::RouteReplace(_)))
            .count(),
        2,
        "{calls:#?}"
    );
}

/// A route of someone else's with the key one of ours needs (an operator's static route
/// for a mobile network prefix, say) is never replaced, and so never deleted with ours:
/// the binding's other routes go in, the add fails (EEXIST) and is tried again at the next
/// reconcile; once it is gone, ours goes in. A previous run's route of ours (protocol 110,
/// found at start) is replaced, without a moment unrouted.
#[test]
fn someone_elses_route_is_never_replaced_and_a_previous_runs_is() {
    run(async {
        let mnp = (TABLE_MAIN, net("2001:db8:100::/64"), None);
        let mut fake = FakeNetOps::default();
        fake.taken.insert(mnp);
        let mut m = RouteManager::new(ha_cfg(), fake);
        let b = mr_binding();
        let e = m.add(&b).await.unwrap_err();
        assert_eq!(e.errno, Some(crate::netops::EEXIST));
        let calls = m.net().take();
        assert!(
            !calls.iter().any(|c| matches!(c, Call::RouteReplace(_))),
            "{calls:#?}"
        );
        assert!(!m.installed().routes.iter().any(|r| r.dst == mnp.1));
        assert!(
            m.installed()
                .routes
                .iter()
                .any(|r| r.dst == net("198.51.100.0/24"))
        );
        // Tried again, still refused, still not replaced.
        assert!(m.reconcile().await.is_err());
        assert_eq!(
            m.net().take(),
            vec![Call::RouteAdd(RouteSpec::dev(TABLE_MAIN, mnp.1, "nemo0"))]
        );
        // The operator removes theirs: ours follows.
        m.net().taken.clear();
        m.reconcile().await.unwrap();
        assert!(m.installed().routes.iter().any(|r| r.dst == mnp.1));
        // Removal deletes only what we made.
        m.remove_all().await.unwrap();

        // A previous run's route of ours: replaced.
        let mut fake = FakeNetOps::default();
        fake.taken.insert(mnp);
        fake.ours.insert(mnp);
        let mut m = RouteManager::new(ha_cfg(), fake);
        let keys = m.net().our_route_keys().await.unwrap();
        m.adopt(Some(keys));
        m.add(&b).await.unwrap();
        let calls = m.net().take();
        assert!(
            calls.contains(&Call::RouteReplace(RouteSpec::dev(
                TABLE_MAIN, mnp.1, "nemo0"
            ))),
            "{calls:#?}"
        );
    });
}

#[test]
fn ha_mnp_dropped_from_a_refresh_stops_being_routed() {
    // RFC 3963 §6.2 explicit mode: prefixes absent from a refresh stop being forwarded.
    run(async {
        let mut m = RouteManager::new(ha_cfg(), FakeNetOps::default());
        let mut b = mr_binding();
        b.mnp_v6.push("2001:db8:200::/56".parse().unwrap());
        m.add(&b).await.unwrap();
        m.net().take();
        b.mnp_v6.pop();
        m.add(&b).await.unwrap();
        assert_eq!(
            m.net().take(),
            vec![Call::RouteDel(RouteSpec::dev(
                TABLE_MAIN,
                net("2001:db8:200::/56"),
                "nemo0"
            ))]
        );
    });
}

#[test]
fn two_bindings_share_the_defaults_until_the_last_goes() {
    run(async {
        let mut m = RouteManager::new(mr_cfg(), mr_fake());
        let a = mr_binding();
        let mut b = binding(
            "2001:db8:1::200",
            "2001:db8:a::5",
            &["2001:db8:300::/64"],
            &[],
        );
        b.binding_id = Some(2);
        m.add(&a).await.unwrap();
        m.net().take();
        m.add(&b).await.unwrap();
        let added_b = m.net().take();
        // b brought only its own rules/routes/address: the IPv6 default was there already.
        assert!(
            !added_b
                .iter()
                .any(|c| matches!(c, Call::RouteAdd(r) if r.dst == net("::/0")))
        );
        assert!(added_b.contains(&Call::RuleAdd(RuleSpec::from(
            net("2001:db8:300::/64"),
            100,
            20102
        ))));
        m.remove(&a).await.unwrap();
        let removed_a = m.net().take();
        assert!(
            !removed_a
                .iter()
                .any(|c| matches!(c, Call::RouteDel(r) if r.dst == net("::/0")))
        );
        assert!(removed_a.contains(&Call::RuleDel(RuleSpec::from(
            net("2001:db8:100::/64"),
            100,
            20102
        ))));
        m.remove(&b).await.unwrap();
        let removed_b = m.net().take();
        assert!(removed_b.contains(&Call::RouteDel(RouteSpec::dev(100, net("::/0"), "nemo0"))));
        assert!(m.installed().is_empty());
    });
}

#[test]
fn failed_requests_are_retried_at_the_next_event() {
    run(async {
        let mut f = mr_fake();
        f.fail_with = Some(1); // EPERM
        let mut m = RouteManager::new(mr_cfg(), f);
        let b = mr_binding();
        assert!(m.add(&b).await.is_err());
        assert!(m.installed().is_empty());
        let attempted = m.net().take().len();
        m.net().fail_with = None;
        m.add(&b).await.unwrap();
        assert_eq!(m.net().take().len(), attempted);
    });
}

#[test]
fn rule_priorities_cover_what_we_install() {
    let cfg = mr_cfg();
    let mut b = mr_binding();
    b.coa = "203.0.113.5".parse().unwrap();
    let l = Lookups {
        mnp_v4_source: Some("198.51.100.1".parse().unwrap()),
        mnp_links: vec![("mnn0".into(), "198.51.100.1".parse().unwrap())],
    };
    let s = desired(&cfg, &b, &l);
    assert!(
        s.rules
            .iter()
            .all(|r| cfg.rule_priorities().contains(&r.priority))
    );
}

/// RFC 3963 §5.5 (issue 11): on the mobile network's links (where the MR holds an address
/// inside an MNP), a source that is one of the MR's own addresses is dropped before
/// anything else, and any source outside the MNPs after the tunnel rules.
#[test]
fn ingress_filtering_on_the_mobile_network_links() {
    run(async {
        let mut f = mr_fake();
        f.ifaddrs = vec![
            ("mnn0".into(), "2001:db8:100::1".parse().unwrap()),
            ("mnn0".into(), "198.51.100.1".parse().unwrap()),
            // The tunnel device is never a mobile-network link.
            ("nemo0".into(), "2001:db8:100::9".parse().unwrap()),
        ];
        let mut m = RouteManager::new(mr_cfg(), f);
        m.add(&mr_binding()).await.unwrap();
        let rules = &m.installed().rules;
        let blackhole =
            |fam, from: Option<&str>, prio| RuleSpec::blackhole(fam, "mnn0", from.map(net), prio);
        for r in [
            blackhole(Family::V6, Some("2001:db8:100::1/128"), 20100),
            blackhole(Family::V4, Some("198.51.100.1/32"), 20100),
            blackhole(Family::V6, Some("2001:db8:1::100/128"), 20100),
            blackhole(Family::V6, None, 20103),
            blackhole(Family::V4, None, 20103),
        ] {
            assert!(rules.contains(&r), "missing {r} in {rules:#?}");
        }
        assert!(!rules.iter().any(|r| r.iif.as_deref() == Some("nemo0")));
        // Spoofed own sources are caught before the tunnel rule, foreign ones after it.
        let tunnel = rules
            .iter()
            .find(|r| r.from == Some(net("2001:db8:100::/64")))
            .unwrap();
        assert!(tunnel.priority > 20100 && tunnel.priority < 20103);
        assert!(
            rules
                .iter()
                .all(|r| mr_cfg().rule_priorities().contains(&r.priority))
        );
        m.remove_all().await.unwrap();
        assert!(m.installed().is_empty());
    });
}

/// The binding a router back on its home link removes: the home address as care-of
/// address, the home link's interface index (2, "eth0" in the fakes).
fn at_home(b: &Binding) -> Binding {
    let mut h = b.clone();
    h.coa = CareOf::V6(h.hoa);
    h.coa_ifindex = Some(2);
    h.lifetime = 0;
    h
}

fn with_home_link(mut f: FakeNetOps) -> FakeNetOps {
    f.links.insert(2, "eth0".into());
    f
}

fn via(table: u32, dst: &str, gw: &str, metric: Option<u32>) -> RouteSpec {
    RouteSpec {
        table,
        dst: net(dst),
        src: None,
        dev: "eth0".into(),
        via: Some(gw.parse().unwrap()),
        pref_src: None,
        unreachable: false,
        metric,
        encap: None,
    }
}

/// Issue 11 (return home): BC_REMOVE with CoA = HoA routes the mobile network to its router
/// on the home link, natively: each MNP's tunnel route is replaced in place (same key, no
/// moment without a route), the HoA/128 into the tunnel goes; the next BC_ADD (away again)
/// puts the tunnel back the same way.
#[test]
fn ha_at_home_routes_the_prefixes_via_the_home_address_on_the_home_link() {
    run(async {
        let mut m = RouteManager::new(ha_cfg(), with_home_link(FakeNetOps::default()));
        let b = mr_binding();
        m.add(&b).await.unwrap();
        m.net().take();
        m.remove(&at_home(&b)).await.unwrap();
        let calls = m.net().take();
        let hoa = "2001:db8:1::100";
        assert_eq!(
            calls,
            vec![
                Call::RouteReplace(via(TABLE_MAIN, "198.51.100.0/24", hoa, None)),
                Call::RouteReplace(via(TABLE_MAIN, "2001:db8:100::/64", hoa, None)),
                Call::RouteDel(RouteSpec::dev(
                    TABLE_MAIN,
                    net("2001:db8:1::100/128"),
                    "nemo0"
                )),
            ]
        );
        assert_eq!(m.bindings().count(), 1, "the at-home state is kept");
        // Away again: the tunnel routes replace the native ones in place.
        m.add(&b).await.unwrap();
        let calls = m.net().take();
        prefixes_replaced_in_place(&calls);
        assert_eq!(calls.len(), 3);
        assert!(m.installed().routes.iter().all(|r| r.via.is_none()));
        // A plain removal later (away, the binding ended) leaves only the prefixes'
        // unreachable routes.
        m.remove(&b).await.unwrap();
        assert!(m.installed().routes.iter().all(|r| r.unreachable));
        assert_eq!(m.installed().routes.len(), 2);
    });
}

/// Issue 11: BUL_REMOVE with CoA = HoA on the MR: tunnel rules, routes and the HoA on the
/// TUN go; the HoA goes on the home link as an ordinary /64 address and IPv4 leaves through
/// the HA (`via inet6`), in main; adds before removals. Leaving home undoes exactly that.
#[test]
fn mr_at_home_puts_the_home_address_on_the_home_link() {
    run(async {
        let mut m = RouteManager::new(mr_cfg(), with_home_link(mr_fake()));
        let b = mr_binding();
        m.add(&b).await.unwrap();
        m.net().take();
        m.remove(&at_home(&b)).await.unwrap();
        let calls = m.net().take();
        let home_addr = Call::AddrAdd("eth0".into(), net("2001:db8:1::100/64"));
        let home_v4 = Call::RouteAdd(via(
            TABLE_MAIN,
            "0.0.0.0/0",
            "2001:db8:1::1",
            Some(HOME_V4_METRIC),
        ));
        assert_eq!(calls[..2], [home_addr, home_v4], "{calls:#?}");
        assert!(
            calls[2..]
                .iter()
                .all(|c| matches!(c, Call::RuleDel(_) | Call::RouteDel(_) | Call::AddrDel(..)))
        );
        assert!(calls.contains(&Call::AddrDel("nemo0".into(), net("2001:db8:1::100/128"))));
        let installed = m.installed();
        assert!(installed.rules.is_empty());
        assert_eq!(installed.routes.len(), 1);
        assert_eq!(installed.addrs.len(), 1);
        // Away again (BUL_ADD from a foreign link): the tunnel back, the home state gone.
        m.add(&b).await.unwrap();
        let calls = m.net().take();
        assert!(calls.contains(&Call::AddrDel("eth0".into(), net("2001:db8:1::100/64"))));
        assert!(calls.contains(&Call::RouteDel(via(
            TABLE_MAIN,
            "0.0.0.0/0",
            "2001:db8:1::1",
            Some(HOME_V4_METRIC)
        ))));
        assert!(!m.installed().rules.is_empty());
    });
}

/// An IPv6-only mobile network at home needs no IPv4 route; a removal from a care-of
/// address (not at home), or at home without a known home link, removes everything.
#[test]
fn at_home_without_ipv4_or_without_a_home_link() {
    run(async {
        let mut m = RouteManager::new(mr_cfg(), with_home_link(mr_fake()));
        let b = binding(
            "2001:db8:1::100",
            "2001:db8:a::5",
            &["2001:db8:100::/64"],
            &[],
        );
        m.add(&b).await.unwrap();
        m.remove(&at_home(&b)).await.unwrap();
        assert!(m.installed().routes.is_empty());
        assert_eq!(m.installed().addrs.len(), 1);
        m.remove(&b).await.unwrap();
        assert!(m.installed().is_empty());

        // The HA without the home link's name: a plain removal (the prefix unreachable).
        let mut m = RouteManager::new(ha_cfg(), FakeNetOps::default());
        m.add(&b).await.unwrap();
        m.remove(&at_home(&b)).await.unwrap();
        assert_eq!(m.bindings().count(), 0);
        let left: Vec<String> = m.installed().routes.iter().map(|r| r.to_string()).collect();
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(
            m.installed().routes.iter().all(|r| r.unreachable),
            "{left:?}"
        );
    });
}

/// Issue 11: a packet for a mobile network whose binding ended (away from home) is answered
/// at once with Destination Unreachable: the HA keeps an `unreachable` route per prefix
/// (not for the home address, which is on the home link), with the tunnel route's key, so
/// the next registration replaces it in place and the next removal replaces the tunnel
/// route by it, never a moment without a route; a flush removes them.
#[test]
fn ha_keeps_ended_mobile_networks_unreachable() {
    run(async {
        let mut m = RouteManager::new(ha_cfg(), FakeNetOps::default());
        let b = binding(
            "2001:db8:1::100",
            "2001:db8:a::5",
            &["2001:db8:100::/64"],
            &["198.51.100.0/24"],
        );
        m.add(&b).await.unwrap();
        m.net().take();
        m.remove(&b).await.unwrap();
        let calls = m.net().take();
        let unreachable = |dst: &str| RouteSpec {
            table: TABLE_MAIN,
            dst: net(dst),
            src: None,
            dev: String::new(),
            via: None,
            pref_src: None,
            unreachable: true,
            metric: None,
            encap: None,
        };
        assert_eq!(
            calls,
            vec![
                Call::RouteReplace(unreachable("198.51.100.0/24")),
                Call::RouteReplace(unreachable("2001:db8:100::/64")),
                Call::RouteDel(RouteSpec::dev(
                    TABLE_MAIN,
                    net("2001:db8:1::100/128"),
                    "nemo0"
                )),
            ]
        );
        // Registered again: replaced in place, nothing deleted.
        m.add(&b).await.unwrap();
        let calls = m.net().take();
        assert_eq!(calls.len(), 3, "{calls:#?}");
        prefixes_replaced_in_place(&calls);
        assert!(m.installed().routes.iter().all(|r| !r.unreachable));
        // A flush (BC_FLUSH, shutdown) removes everything.
        m.remove(&b).await.unwrap();
        m.remove_all().await.unwrap();
        assert!(m.installed().is_empty());
        // The mobile router keeps nothing: its tunnel table fails closed already.
        let mut mr = RouteManager::new(mr_cfg(), mr_fake());
        mr.add(&b).await.unwrap();
        mr.remove(&b).await.unwrap();
        assert!(mr.installed().is_empty());
    });
}

#[test]
fn a_deferred_batch_is_installed_by_one_reconcile() {
    run(async {
        let mut m = RouteManager::new(ha_cfg(), FakeNetOps::default());
        m.defer(true);
        let b1 = mr_binding();
        let b2 = binding(
            "2001:db8:1::200",
            "2001:db8:a::3",
            &["2001:db8:200::/64"],
            &[],
        );
        m.add(&b1).await.unwrap();
        m.add(&b2).await.unwrap();
        m.remove(&b1).await.unwrap();
        assert!(m.net().take().is_empty(), "nothing before the batch ends");
        m.defer(false);
        m.reconcile().await.unwrap();
        let calls = m.net().take();
        // Only b2's routes: b1 came and went inside the batch; its prefixes are kept
        // unreachable (an ended binding, issue 11).
        assert!(calls.contains(&Call::RouteAdd(RouteSpec::dev(
            TABLE_MAIN,
            net("2001:db8:200::/64"),
            "nemo0"
        ))));
        assert!(
            !calls.iter().any(|c| matches!(c, Call::RouteAdd(r) if r.dst == net("2001:db8:100::/64") && !r.unreachable)),
            "{calls:?}"
        );
    });
}

/// RFC 5648: the care-of addresses of one home address, each its own binding (BID), share
/// the home address's routes; with the kernel data plane configured they stay on TUN (the
/// kernel would need one multipath route), and the routes stay until the last BID goes.
#[test]
fn bindings_with_identifiers_share_routes_on_tun() {
    run(async {
        let mut cfg = ha_cfg();
        cfg.kernel = Some(KernelRoutes {
            method: KernelMethod::Srv6,
            dev: "nemo0k".into(),
            peer: "nemo0kx".into(),
            table: 1100,
            hop_limit: 64,
            source: Some("2001:db8:1::1".parse().unwrap()),
            outer: None,
        });
        let plain = mr_binding();
        assert!(kernel_ends(&cfg, &plain).is_some());
        let mut one = mr_binding();
        one.binding_id = Some(1);
        let mut two = binding(
            "2001:db8:1::100",
            "2001:db8:b::5",
            &["2001:db8:100::/64"],
            &["198.51.100.0/24"],
        );
        two.binding_id = Some(2);
        assert_eq!(kernel_candidate(&cfg, &one), None);
        assert_eq!(tunnel_dev(&cfg, &two), "nemo0");
        let mut m = RouteManager::new(cfg, FakeNetOps::default());
        m.add(&one).await.unwrap();
        let first = m.net().take();
        assert!(first.contains(&Call::RouteAdd(RouteSpec::dev(
            TABLE_MAIN,
            net("2001:db8:100::/64"),
            "nemo0"
        ))));
        assert!(
            !first
                .iter()
                .any(|c| matches!(c, Call::RouteAdd(r) if r.encap.is_some())),
            "{first:?}"
        );
        m.add(&two).await.unwrap();
        assert_eq!(m.net().take(), vec![], "the second path adds nothing");
        m.remove(&one).await.unwrap();
        assert_eq!(m.net().take(), vec![], "nor does the first's end remove");
        m.remove(&two).await.unwrap();
        let last = m.net().take();
        assert!(
            !last.is_empty() && !m.installed().routes.iter().any(|r| r.dev == "nemo0"),
            "{last:?} {:?}",
            m.installed()
        );
    });
}

/// Issue 12: on a mobile router the kernel path's outer packets leave through the care-of
/// address's interface and its default router (a table of their own), not the main
/// table's default route, which moves to a new uplink before the care-of address does.
#[test]
fn mr_kernel_outer_packets_leave_by_the_care_of_interface() {
    let mut cfg = mr_cfg();
    let k = KernelRoutes {
        method: KernelMethod::Srv6,
        dev: "nemo0k".into(),
        peer: "nemo0kx".into(),
        table: 1100,
        hop_limit: 64,
        source: Some("2001:db8:a::5".parse().unwrap()),
        outer: None,
    };
    cfg.kernel = Some(k.clone());
    let b = mr_binding();
    let outer_rule = |table: u32| {
        let mut r = RuleSpec::lookup(Family::V6, KPRIO_OUTER, table);
        r.iif = Some("nemo0kx".into());
        r.from = Some(net("2001:db8:a::5/128"));
        r
    };
    run(async {
        // Without a known default router: the main table, as before.
        let mut m = RouteManager::new(cfg, FakeNetOps::default());
        m.add(&b).await.unwrap();
        let rules = &m.installed().rules;
        assert!(rules.contains(&outer_rule(TABLE_MAIN)), "{rules:?}");
        // With one: its own table, a default route through the interface, from the next
        // reconcile on (the shared kernel state follows the configuration as it is).
        let gw: Ipv6Addr = "fe80::1".parse().unwrap();
        m.set_kernel_outer(Some((gw, "eth0".into())));
        m.reconcile().await.unwrap();
        let s = m.installed();
        assert!(s.rules.contains(&outer_rule(1103)), "{:?}", s.rules);
        assert!(!s.rules.contains(&outer_rule(TABLE_MAIN)));
        let mut route = RouteSpec::dev(1103, net("::/0"), "eth0");
        route.via = Some(IpAddr::V6(gw));
        assert!(s.routes.contains(&route), "{:?}", s.routes);
        // The binding's own state never held the shared part.
        assert!(
            !desired(m.config(), &b, &Lookups::default())
                .rules
                .iter()
                .any(|r| r.priority == KPRIO_OUTER)
        );
    });
}

/// Random sequences of what the bus and the kernel do to the route manager: bindings of
/// three home addresses (overlapping prefixes, IPv6 or IPv4 care-of addresses, with and
/// without BIDs) added, moved, removed, back home, flushed; every kernel request failing
/// for a while; an operator's route appearing in the way of a prefix and going again.
/// A model kernel takes the requests that succeeded. After every step the manager's belief
/// (`installed`) is the kernel, no route it did not make is ever replaced or deleted, and
/// once the kernel accepts requests again a reconcile reaches a fixed point (a second one
/// asks nothing); a flush leaves nothing of ours.
mod props {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    type Key = crate::netops::RouteKey;

    #[derive(Debug, Clone)]
    enum Op {
        Add {
            hoa: usize,
            v: u8,
        },
        Remove {
            hoa: usize,
            v: u8,
        },
        Home {
            hoa: usize,
            v: u8,
        },
        Flush,
        Break,
        Heal,
        /// An operator's route for pool prefix `i` appears (if the key is free) or goes.
        Operator(usize),
    }

    const PREFIXES: [&str; 5] = [
        "2001:db8:100::/64",
        "2001:db8:100::/48",
        "2001:db8:200::/64",
        "198.51.100.0/24",
        "198.51.100.0/28",
    ];

    fn variant(hoa: usize, v: u8) -> Binding {
        let hoas = ["2001:db8:1::100", "2001:db8:1::200", "2001:db8:1::300"];
        let coa = match v % 3 {
            0 => "2001:db8:a::5".to_string(),
            1 => format!("2001:db8:b::{}", hoa + 1),
            _ => "198.51.100.200:4191".to_string(),
        };
        let (mut v6, mut v4) = (Vec::new(), Vec::new());
        for (i, p) in PREFIXES.iter().enumerate() {
            if (v >> 2) & (1 << i) != 0 || i == hoa {
                if p.contains(':') {
                    v6.push(*p)
                } else {
                    v4.push(*p)
                }
            }
        }
        let mut b = binding(hoas[hoa], &coa, &v6, &v4);
        if let CareOf::V4 { .. } = b.coa {
            b.encapsulation = Encapsulation::UdpIpv4 { ha_port: 4191 };
        }
        if v & 0x80 != 0 {
            b.binding_id = Some(u16::from(v % 3) + 1);
        }
        b
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (0usize..3, any::<u8>()).prop_map(|(hoa, v)| Op::Add { hoa, v }),
            2 => (0usize..3, any::<u8>()).prop_map(|(hoa, v)| Op::Remove { hoa, v }),
            1 => (0usize..3, any::<u8>()).prop_map(|(hoa, v)| Op::Home { hoa, v }),
            1 => Just(Op::Flush),
            1 => Just(Op::Break),
            2 => Just(Op::Heal),
            1 => (0usize..PREFIXES.len()).prop_map(Op::Operator),
        ]
    }

    /// The model kernel: our routes by key, an operator's keys, rules, addresses.
    #[derive(Default)]
    struct Kernel {
        routes: BTreeMap<Key, RouteSpec>,
        foreign: BTreeSet<Key>,
        rules: BTreeSet<RuleSpec>,
        addrs: BTreeSet<(String, IpNet)>,
    }

    impl Kernel {
        /// Applies the calls of a step; `broken`: every one of them failed.
        fn apply(&mut self, calls: Vec<Call>, broken: bool) -> Result<(), TestCaseError> {
            for c in calls {
                if let Call::RouteReplace(r) | Call::RouteDel(r) = &c {
                    prop_assert!(
                        !self.foreign.contains(&r.key()),
                        "an operator's route touched: {c:?}"
                    );
                }
                if broken {
                    continue;
                }
                match c {
                    Call::RouteAdd(r) => {
                        if !self.foreign.contains(&r.key()) {
                            prop_assert!(
                                !self.routes.contains_key(&r.key()),
                                "an add over a route of ours: {r:?}"
                            );
                            self.routes.insert(r.key(), r);
                        }
                    }
                    Call::RouteReplace(r) => {
                        self.routes.insert(r.key(), r);
                    }
                    Call::RouteDel(r) => {
                        self.routes.remove(&r.key());
                    }
                    Call::RuleAdd(r) => {
                        self.rules.insert(r);
                    }
                    Call::RuleDel(r) => {
                        self.rules.remove(&r);
                    }
                    Call::AddrAdd(d, a) => {
                        self.addrs.insert((d, a));
                    }
                    Call::AddrDel(d, a) => {
                        self.addrs.remove(&(d, a));
                    }
                    Call::LinkSet(..) | Call::Flush => {}
                }
            }
            Ok(())
        }

        fn matches(&self, s: &KernelState) -> Result<(), TestCaseError> {
            let ours: BTreeMap<Key, RouteSpec> =
                s.routes.iter().map(|r| (r.key(), r.clone())).collect();
            prop_assert_eq!(&ours, &self.routes);
            prop_assert_eq!(&s.rules, &self.rules);
            prop_assert_eq!(&s.addrs, &self.addrs);
            Ok(())
        }
    }

    fn fake(mr: bool) -> FakeNetOps {
        let f = if mr { mr_fake() } else { FakeNetOps::default() };
        with_home_link(f)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn the_managers_belief_is_the_kernel_and_no_one_elses_route_is_touched(
            mr in any::<bool>(),
            ops in proptest::collection::vec(op(), 1..30),
        ) {
            run(async {
                let cfg = if mr { mr_cfg() } else { ha_cfg() };
                let table = cfg.table;
                let mut m = RouteManager::new(cfg, fake(mr));
                let mut k = Kernel::default();
                for op in &ops {
                    match *op {
                        Op::Add { hoa, v } => {
                            let _ = m.add(&variant(hoa, v)).await;
                        }
                        Op::Remove { hoa, v } => {
                            let mut b = variant(hoa, v);
                            b.lifetime = 0;
                            let _ = m.remove(&b).await;
                        }
                        Op::Home { hoa, v } => {
                            let _ = m.remove(&at_home(&variant(hoa, v))).await;
                        }
                        Op::Flush => {
                            let _ = m.remove_all().await;
                        }
                        Op::Break => m.net().fail_with = Some(100),
                        Op::Heal => {
                            m.net().fail_with = None;
                            let _ = m.reconcile().await;
                        }
                        Op::Operator(i) => {
                            // The operator's route at the key a binding's prefix route
                            // would take (the HA's main table, the MR's own).
                            let key = (table, net(PREFIXES[i]), None);
                            let full = (table, net(PREFIXES[i]), None, None);
                            if k.foreign.remove(&full) {
                                m.net().taken.remove(&key);
                            } else if !k.routes.contains_key(&full) {
                                k.foreign.insert(full);
                                m.net().taken.insert(key);
                            }
                        }
                    }
                    // Whether this step's requests failed (a Heal's reconcile runs healed).
                    let broken = m.net().fail_with.is_some();
                    let calls = m.net().take();
                    k.apply(calls, broken)?;
                    k.matches(m.installed())?;
                }
                // Healed: a reconcile, then a second asks nothing of the kernel.
                m.net().fail_with = None;
                let _ = m.reconcile().await;
                let calls = m.net().take();
                k.apply(calls, false)?;
                k.matches(m.installed())?;
                let _ = m.reconcile().await;
                let again: Vec<Call> = m
                    .net()
                    .take()
                    .into_iter()
                    // Routes in an operator's way are asked for again each time.
                    .filter(|c| !matches!(c, Call::RouteAdd(r) if k.foreign.contains(&r.key())))
                    .collect();
                prop_assert_eq!(again, Vec::<Call>::new());
                // A flush leaves nothing of ours; the operator's routes are untouched.
                let _ = m.remove_all().await;
                let calls = m.net().take();
                k.apply(calls, false)?;
                prop_assert!(k.routes.is_empty(), "left: {:?}", k.routes);
                prop_assert!(k.rules.is_empty() && k.addrs.is_empty());
                Ok(())
            })?;
        }
    }
}
