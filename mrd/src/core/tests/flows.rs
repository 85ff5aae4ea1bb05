//! Flow bindings (RFC 6089) on the bulk registration: what each BU carries (Flow
//! Identification or Flow Summary), what the BA's copies do, on virtual time with a
//! scripted home agent. Uplinks as in `mcoa`: eth0 = BID 1 (coa1, in use), eth1 = BID 2
//! (coa2); wwan0 = BID 3 has no uplink.

use proto::flow::{
    FlowIdentification, FlowSelector, FlowStatus, FlowSubOptions, Ipv6TrafficSelector,
    SelectorRange,
};
use proto::model::FlowBinding;

use super::mcoa::{bid_status, bids_of, bulk_ba, bulk_bu, eth0, eth1, mcoa_cfg, rereg_up};
use super::*;

fn sip() -> FlowBinding {
    FlowBinding {
        fid: 1,
        priority: 10,
        selector: FlowSelector::Ipv6(Ipv6TrafficSelector {
            source_address: Some(SelectorRange::new(
                "2001:db8:c::".parse().unwrap(),
                "2001:db8:c::ffff:ffff:ffff:ffff".parse().unwrap(),
            )),
            source_port: Some(SelectorRange::single(5060)),
            next_header: Some(SelectorRange::single(17)),
            ..Default::default()
        }),
        bids: vec![2, 1],
    }
}

/// Bound to wwan0 alone, which has no uplink: never in a BU.
fn backup() -> FlowBinding {
    FlowBinding {
        fid: 2,
        priority: 20,
        selector: FlowSelector::Ipv6(Ipv6TrafficSelector {
            traffic_class: Some(SelectorRange::single(46 << 2)),
            ..Default::default()
        }),
        bids: vec![3],
    }
}

fn flow_cfg() -> MrCoreConfig {
    let mut c = mcoa_cfg();
    c.flow_bindings = vec![sip(), backup()];
    c
}

/// The Flow Identification options of a BU or BA, decoded: (FID, FID-PRI, status, BIDs,
/// selector).
type Fi = (u16, u16, u8, Option<Vec<u16>>, Option<FlowSelector>);

fn fis(options: &[MobilityOption<'_>]) -> Vec<Fi> {
    options
        .iter()
        .filter_map(|o| match o {
            MobilityOption::FlowIdentification(fi) => {
                // §5.2.2.1: exactly one Binding Reference and one Traffic Selector.
                let subs: Vec<_> = fi.sub_options.iter().map(Result::unwrap).collect();
                assert_eq!(subs.len(), 2, "{fi:?}");
                Some((
                    fi.fid,
                    fi.fid_pri,
                    u8::from(fi.status),
                    fi.binding_ids().map(|ids| ids.iter().collect()),
                    fi.traffic_selector()
                        .and_then(|ts| FlowSelector::from_wire(&ts)),
                ))
            }
            _ => None,
        })
        .collect()
}

/// The FIDs of a BU's Flow Summary options.
fn fs(bu: &SentBu) -> Vec<u16> {
    bu.options
        .iter()
        .filter_map(|o| match o {
            MobilityOption::FlowSummary(ids) => Some(ids.iter().collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The copy of a Flow Identification option a home agent puts in its BA (§5.3.5; the
/// sub-options do not matter to the router).
fn fi_copy(fid: u16, priority: u16, status: u8) -> MobilityOption<'static> {
    MobilityOption::FlowIdentification(FlowIdentification {
        fid,
        fid_pri: priority,
        status: FlowStatus::from(status),
        sub_options: FlowSubOptions::NONE,
    })
}

/// The flows of every BUL_ADD, by BID.
fn announced_flows(evs: &[MrEvent]) -> Vec<(Option<u16>, Vec<FlowBinding>)> {
    evs.iter()
        .filter_map(|e| match e {
            MrEvent::BulAdd { binding, .. } => Some((binding.binding_id, binding.flows.clone())),
            _ => None,
        })
        .collect()
}

/// The first bulk BU from both uplinks, answered with `fi` (and both BIDs accepted).
fn first_bu_answered(
    mr: &mut MrCore,
    t0: Instant,
    fi: Option<MobilityOption<'static>>,
) -> (SentBu, Vec<MrEvent>) {
    let bu = bulk_bu(mr, t0);
    let mut ba = bulk_ba(&bu);
    if let Some(fi) = fi {
        ba = ba.opt(fi);
    }
    deliver(mr, ms(t0, 100), &ba.packet(coa1()));
    (bu, events(mr))
}

fn refresh(mr: &mut MrCore) -> SentBu {
    let t = mr.poll_timeout().unwrap();
    mr.handle_timeout(t);
    next_bu(mr)
}

#[test]
fn the_first_bulk_bu_identifies_each_flow_binding_with_the_bids_it_registers() {
    let t0 = Instant::now();
    let mut c = flow_cfg();
    c.security = Some(sa(false));
    let mut mr = MrCore::new(c).unwrap();
    let bu = bulk_bu(&mut mr, t0);
    assert_eq!(bids_of(&bu), [(1, coa1()), (2, coa2())]);
    // sip through BIDs 2 and 1, as configured; backup's only BID (3) is not in this BU,
    // so it is left out (§5.2.2.1: only registered BIDs may be referenced).
    assert_eq!(
        fis(&bu.options),
        [(1, 10, 0, Some(vec![2, 1]), Some(sip().selector))]
    );
    assert!(fs(&bu).is_empty());
    // After the prefixes, before the MN-ID and the authenticator (which stays last).
    let kinds: Vec<u8> = bu.options.iter().map(MobilityOption::type_octet).collect();
    assert_eq!(kinds, [3, 35, 35, 6, 29, 45, 8, 9], "{:?}", bu.options);
    assert!(auth::verify(&bu.tx.mh, IpAddr::V6(coa1()), &hoa(), KEY).unwrap());
    assert_eq!(mr.flow_support(), FlowSupport::Unknown);
    assert!(mr.accepted_flows().is_empty());
}

#[test]
fn an_accepted_flow_binding_is_announced_and_refreshed_by_flow_summary() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(flow_cfg()).unwrap();
    let (_, evs) = first_bu_answered(&mut mr, t0, Some(fi_copy(1, 10, 0)));
    assert_eq!(mr.flow_support(), FlowSupport::Supported);
    assert_eq!(mr.accepted_flows(), [sip()]);
    // Every BID binding's BUL_ADD carries what the home agent accepted.
    assert_eq!(
        announced_flows(&evs),
        [(Some(1), vec![sip()]), (Some(2), vec![sip()])]
    );
    // §5.2: the refresh mentions it again, unchanged: by FID in a Flow Summary.
    let bu = refresh(&mut mr);
    assert!(fis(&bu.options).is_empty(), "{:?}", bu.options);
    assert_eq!(fs(&bu), [1]);
    // A BA without a copy (a refreshed FID draws none) keeps it.
    deliver(&mut mr, ms(t0, 384_100), &bulk_ba(&bu).packet(coa1()));
    assert_eq!(mr.accepted_flows(), [sip()]);
    assert_eq!(mr.flow_support(), FlowSupport::Supported);
    assert_eq!(
        announced_flows(&events(&mut mr)),
        [(Some(1), vec![sip()]), (Some(2), vec![sip()])]
    );
    // The home agent lost it: 132 for the summarised FID, identified again next time.
    let bu = refresh(&mut mr);
    assert_eq!(fs(&bu), [1]);
    deliver(
        &mut mr,
        ms(t0, 768_100),
        &bulk_ba(&bu).opt(fi_copy(1, 10, 132)).packet(coa1()),
    );
    assert!(mr.accepted_flows().is_empty());
    assert_eq!(
        announced_flows(&events(&mut mr)),
        [(Some(1), vec![]), (Some(2), vec![])]
    );
    let bu = refresh(&mut mr);
    assert_eq!(
        fis(&bu.options),
        [(1, 10, 0, Some(vec![2, 1]), Some(sip().selector))]
    );
    assert!(fs(&bu).is_empty());
}

#[test]
fn a_refused_flow_binding_is_identified_again_in_the_next_bu() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(flow_cfg()).unwrap();
    // 131: BID not found.
    let (_, evs) = first_bu_answered(&mut mr, t0, Some(fi_copy(1, 10, 131)));
    assert_eq!(mr.flow_support(), FlowSupport::Supported);
    assert!(mr.accepted_flows().is_empty());
    assert_eq!(
        announced_flows(&evs),
        [(Some(1), vec![]), (Some(2), vec![])]
    );
    let bu = refresh(&mut mr);
    assert_eq!(
        fis(&bu.options),
        [(1, 10, 0, Some(vec![2, 1]), Some(sip().selector))]
    );
    assert!(fs(&bu).is_empty());
}

#[test]
fn a_ba_without_any_flow_identification_means_no_flow_bindings_for_that_home_agent() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(flow_cfg()).unwrap();
    let (_, evs) = first_bu_answered(&mut mr, t0, None);
    assert_eq!(mr.flow_support(), FlowSupport::Unsupported);
    assert!(mr.accepted_flows().is_empty());
    assert_eq!(
        announced_flows(&evs),
        [(Some(1), vec![]), (Some(2), vec![])]
    );
    // Still a bulk registration, without flow options.
    let bu = refresh(&mut mr);
    assert_eq!(bids_of(&bu), [(1, coa1()), (2, coa2())]);
    assert!(fis(&bu.options).is_empty());
    assert!(fs(&bu).is_empty());
}

#[test]
fn a_lost_uplink_narrows_the_binding_reference_and_a_flow_without_bids_is_left_out() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(flow_cfg()).unwrap();
    first_bu_answered(&mut mr, t0, Some(fi_copy(1, 10, 0)));
    // eth1 (BID 2) goes: sip changes (BID 1 alone), so it is identified again (§5.2.2.2).
    mr.handle_md_info(ms(t0, 5000), &rereg_up(vec![eth0()]));
    let bu = next_bu(&mut mr);
    assert_eq!(bids_of(&bu), [(1, coa1())]);
    assert_eq!(
        fis(&bu.options),
        [(1, 10, 0, Some(vec![1]), Some(sip().selector))]
    );
    deliver(
        &mut mr,
        ms(t0, 5100),
        &Ba::ok(&bu)
            .opt(bid_status(1, 0))
            .opt(fi_copy(1, 10, 0))
            .packet(coa1()),
    );
    let narrowed = FlowBinding {
        bids: vec![1],
        ..sip()
    };
    assert_eq!(mr.accepted_flows(), std::slice::from_ref(&narrowed));
    assert_eq!(
        announced_flows(&events(&mut mr)),
        [(Some(1), vec![narrowed])]
    );
    // A flow bound to BID 2 alone has nothing to go through: not mentioned at all (the
    // home agent deletes it, §5.2).
    let mut c = mcoa_cfg();
    c.flow_bindings = vec![FlowBinding {
        bids: vec![2],
        ..sip()
    }];
    let mut mr = MrCore::new(c).unwrap();
    mr.handle_md_info(t0, &rereg_up(vec![eth0()]));
    let bu = next_bu(&mut mr);
    assert!(fis(&bu.options).is_empty());
    assert!(fs(&bu).is_empty());
}

#[test]
fn de_registrations_and_plain_bus_carry_no_flow_options() {
    let t0 = Instant::now();
    let mut mr = MrCore::new(flow_cfg()).unwrap();
    first_bu_answered(&mut mr, t0, Some(fi_copy(1, 10, 0)));
    mr.deregister(ms(t0, 1000));
    let dereg = next_bu(&mut mr);
    assert_eq!(dereg.lifetime, Lifetime::ZERO);
    assert!(fis(&dereg.options).is_empty());
    assert!(fs(&dereg).is_empty());
    deliver(&mut mr, ms(t0, 1100), &Ba::ok(&dereg).packet(coa1()));
    assert_eq!(mr.state(), RegistrationState::Idle);
    // The lifetime-0 BU removed them with the binding (§5.2.2.4 by way of RFC 6275).
    assert!(mr.accepted_flows().is_empty());
    // Registering again identifies them afresh.
    mr.handle_md_info(ms(t0, 2000), &rereg_up(vec![eth0(), eth1()]));
    let bu = next_bu(&mut mr);
    assert_eq!(fis(&bu.options).len(), 1);

    // Without uplinks (an older movement detector), the BU is the plain one: no BIDs, so
    // no flow bindings either.
    let mut mr = MrCore::new(flow_cfg()).unwrap();
    mr.handle_md_info(t0, &rereg(coa1()));
    let bu = next_bu(&mut mr);
    assert!(bids_of(&bu).is_empty());
    assert!(fis(&bu.options).is_empty());
    assert!(fs(&bu).is_empty());
}

#[test]
fn flow_summaries_hold_127_fids_each() {
    let sent = super::super::flows::FlowsSent {
        identified: Vec::new(),
        summarised: (1..=130u16)
            .map(|fid| FlowBinding {
                fid,
                priority: fid,
                ..sip()
            })
            .collect(),
    };
    let fids = sent.summary_fids();
    let subs = sent.sub_options();
    let sizes: Vec<usize> = super::super::flows::flow_options(&sent, &subs, &fids)
        .map(|o| match o {
            MobilityOption::FlowSummary(ids) => ids.len(),
            o => panic!("{o:?}"),
        })
        .collect();
    assert_eq!(sizes, [FS_MAX_FIDS, 3]);
}

#[test]
fn flow_bindings_that_would_not_fit_in_a_bu_are_refused() {
    let many = |n: u16| {
        let mut c = mcoa_cfg();
        c.flow_bindings = (1..=n)
            .map(|fid| FlowBinding {
                fid,
                priority: fid,
                bids: vec![1, 2],
                ..sip()
            })
            .collect();
        MrCore::new(c)
    };
    // sip: 8 octets of fixed part, a 6-octet Binding Reference, a 36-octet selector
    // sub-option and its padding (8n).
    let mut mr = many(15).unwrap();
    let bu = bulk_bu(&mut mr, Instant::now());
    assert_eq!(fis(&bu.options).len(), 15);
    assert!(matches!(
        many(40).unwrap_err(),
        ConfigError::TooManyFlowBindings(n) if n > FLOW_OPTIONS_MAX
    ));
}

#[test]
fn flow_bindings_are_validated() {
    let mut c = flow_cfg();
    c.multiple_coa = false;
    assert_eq!(
        MrCore::new(c).unwrap_err(),
        ConfigError::FlowBindingsWithoutMcoa
    );
    let bad = |f: FlowBinding| {
        let mut c = flow_cfg();
        c.flow_bindings.push(f);
        MrCore::new(c).unwrap_err()
    };
    let reason = |f| match bad(f) {
        ConfigError::BadFlowBinding { reason, .. } => reason,
        e => panic!("{e:?}"),
    };
    let other = |fid, priority, bids| FlowBinding {
        fid,
        priority,
        bids,
        ..sip()
    };
    assert_eq!(reason(other(0, 99, vec![1])), "FID 0 is reserved");
    assert_eq!(reason(other(9, 0, vec![1])), "FID-PRI 0 is reserved");
    assert_eq!(reason(other(1, 99, vec![1])), "FID listed twice");
    assert_eq!(
        reason(other(9, 10, vec![1])),
        "FID-PRI shared with another flow binding"
    );
    assert_eq!(reason(other(9, 99, vec![])), "no binding identifier");
    assert_eq!(
        reason(other(9, 99, vec![4])),
        "a binding identifier that is no egress interface's"
    );
}
