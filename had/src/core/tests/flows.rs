//! Flow bindings (RFC 6089) on virtual time: bulk BUs carrying Flow Identification and
//! Flow Summary options, emitted and parsed as on the wire; the BA's copies, the events
//! (BC_ADD carries the list to nemonetd, the journal keeps it) and a restart.

use proto::flow::{
    FlowIdentification, FlowStatus, FlowSubOption, FlowSubOptions, IdList, Ipv6TrafficSelector,
    SelectorRange, TrafficSelector,
};
use proto::model::FlowBinding;

use super::*;

fn voice() -> Ipv6TrafficSelector {
    Ipv6TrafficSelector {
        next_header: Some(SelectorRange::single(17)),
        source_port: Some(SelectorRange::new(5004, 5099)),
        ..Default::default()
    }
}

/// A Flow Identification option as mrd sends it: Binding Reference, then the selector.
fn fi(fid: u16, pri: u16, bids: &[u16]) -> MobilityOption<'static> {
    let bids: &'static [u16] = Box::leak(bids.to_vec().into_boxed_slice());
    let subs: &'static [FlowSubOption<'static>] = Box::leak(Box::new([
        FlowSubOption::BindingReference(IdList::List(bids)),
        FlowSubOption::TrafficSelector(TrafficSelector::Ipv6(voice())),
    ]));
    MobilityOption::FlowIdentification(FlowIdentification {
        fid,
        fid_pri: pri,
        status: FlowStatus::Successful,
        sub_options: FlowSubOptions::List(subs),
    })
}

fn summary(fids: &[u16]) -> MobilityOption<'static> {
    MobilityOption::FlowSummary(IdList::List(Box::leak(fids.to_vec().into_boxed_slice())))
}

fn entry(fid: u16, priority: u16, bids: &[u16]) -> FlowBinding {
    FlowBinding {
        fid,
        priority,
        selector: proto::flow::FlowSelector::Ipv6(voice()),
        bids: bids.to_vec(),
    }
}

/// The BA's Flow Identification options: (FID, status), in order, and that each comes
/// after every BID option (§5.3.1 processes BIDs first; the copies name them).
fn flow_statuses(tx: &Transmit) -> Vec<(u16, u8)> {
    let ba = ba_of(tx);
    let last_bid = ba
        .options
        .iter()
        .rposition(|o| matches!(o, MobilityOption::BindingIdentifier { .. }));
    let first_fi = ba
        .options
        .iter()
        .position(|o| matches!(o, MobilityOption::FlowIdentification(_)));
    if let (Some(b), Some(f)) = (last_bid, first_fi) {
        assert!(b < f, "flow options after the BID options");
    }
    ba.options
        .iter()
        .filter_map(|o| match o {
            MobilityOption::FlowIdentification(f) => Some((f.fid, u8::from(f.status))),
            _ => None,
        })
        .collect()
}

/// The flow bindings of every BcAdd among `ev`, per BID.
fn announced_flows(ev: &[HaEvent]) -> Vec<(Option<u16>, Vec<FlowBinding>)> {
    ev.iter()
        .filter_map(|e| match e {
            HaEvent::BcAdd(b) => Some((b.binding_id, b.flows.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_bulk_registration_with_flow_bindings_keeps_and_announces_them() {
    let mut e = Env::new(cfg());
    let tx = e.ba(&Bu::new(HOA1, 1)
        .opt(bid(1, None))
        .opt(bid(2, Some(COA2)))
        .opt(fi(7, 10, &[2]))
        .opt(fi(8, 20, &[1, 2])));
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(flow_statuses(&tx), [(7, 0), (8, 0)]);
    // The copy is the option as received, sub-options and all (§5.3.5).
    let ba = ba_of(&tx);
    let copy = ba
        .options
        .iter()
        .find_map(|o| match o {
            MobilityOption::FlowIdentification(f) if f.fid == 8 => Some(*f),
            _ => None,
        })
        .unwrap();
    assert_eq!(copy.fid_pri, 20);
    assert_eq!(
        copy.sub_options
            .binding_ids()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        copy.sub_options.traffic_selector(),
        Some(TrafficSelector::Ipv6(voice()))
    );
    let ev = e.events();
    let want = vec![entry(7, 10, &[2]), entry(8, 20, &[1, 2])];
    assert_eq!(
        announced_flows(&ev),
        [(Some(1), want.clone()), (Some(2), want.clone())]
    );
    // Journaled with each BID's record, before the BA.
    for r in ev.iter().filter_map(|e| match e {
        HaEvent::Persist(JournalRecord::Upsert(b)) => Some(b),
        _ => None,
    }) {
        assert_eq!(r.flows, want);
    }
}

#[test]
fn refresh_by_summary_removal_by_omission() {
    let mut e = Env::new(cfg());
    e.ba(&Bu::new(HOA1, 1)
        .opt(bid(1, None))
        .opt(bid(2, Some(COA2)))
        .opt(fi(7, 10, &[2])));
    e.events();
    // A refresh naming FID 7 in a summary keeps it; nothing changes for the data plane,
    // and the BA has no Flow Identification option for it (§5.3.5).
    let tx = e.ba(&Bu::new(HOA1, 2)
        .opt(bid(1, None))
        .opt(bid(2, Some(COA2)))
        .opt(summary(&[7])));
    assert_eq!(flow_statuses(&tx), []);
    let ev = e.events();
    assert!(
        announced_flows(&ev)
            .iter()
            .all(|(_, f)| *f == [entry(7, 10, &[2])])
    );
    // A summary naming an unknown FID: 132 in a Flow Identification option (§5.3.3).
    let tx = e.ba(&Bu::new(HOA1, 3)
        .opt(bid(1, None))
        .opt(bid(2, Some(COA2)))
        .opt(summary(&[7, 9])));
    assert_eq!(flow_statuses(&tx), [(9, 132)]);
    e.events();
    // A BU that names no FID removes them all (§5.3.4); every BID is told.
    let tx = e.ba(&Bu::new(HOA1, 4).opt(bid(1, None)).opt(bid(2, Some(COA2))));
    assert_eq!(status(&tx), BaStatus::Accepted);
    let ev = e.events();
    assert_eq!(announced_flows(&ev), [(Some(1), vec![]), (Some(2), vec![])]);
}

#[test]
fn deregistering_a_bid_leaves_its_flow_binding_inactive_not_gone() {
    let mut e = Env::new(cfg());
    e.ba(&Bu::new(HOA1, 1)
        .opt(bid(1, None))
        .opt(bid(2, Some(COA2)))
        .opt(fi(7, 10, &[2])));
    e.events();
    let mut dereg = Bu::new(HOA1, 2).opt(bid(2, None)).opt(summary(&[7]));
    dereg.lifetime = 0;
    let tx = e.ba(&dereg);
    assert_eq!(status(&tx), BaStatus::Accepted);
    let ev = e.events();
    // BID 1 is told the list (unchanged here) only if it changed: it did not.
    assert!(
        announced_flows(&ev)
            .iter()
            .all(|(_, f)| *f == [entry(7, 10, &[2])])
    );
    // FID 7 names only BID 2, gone: a new flow binding naming it is refused (131)...
    let tx = e.ba(&Bu::new(HOA1, 3)
        .opt(bid(1, None))
        .opt(summary(&[7]))
        .opt(fi(8, 20, &[2])));
    assert_eq!(flow_statuses(&tx), [(8, 131)]);
    // ...and FID 7 is still held, inactive, while refreshed.
    let snap = e.ha.snapshot(e.now, e.wall());
    assert_eq!(snap[0].flows, [entry(7, 10, &[2])]);
}

#[test]
fn a_plain_binding_has_no_bid_to_bind_a_flow_to() {
    let mut e = Env::new(cfg());
    let tx = e.ba(&Bu::new(HOA1, 1).opt(fi(7, 10, &[1])).opt(summary(&[3])));
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(flow_statuses(&tx), [(7, 131), (3, 132)]);
    let ev = e.events();
    assert_eq!(announced_flows(&ev), [(None, vec![])]);
}

#[test]
fn flow_bindings_turned_off_are_answered_128_and_kept_nowhere() {
    let mut c = cfg();
    c.mcoa.flow_bindings = false;
    let mut e = Env::new(c);
    let tx = e.ba(&Bu::new(HOA1, 1).opt(bid(1, None)).opt(fi(7, 10, &[1])));
    assert_eq!(status(&tx), BaStatus::Accepted);
    assert_eq!(flow_statuses(&tx), [(7, 128)]);
    assert!(
        announced_flows(&e.events())
            .iter()
            .all(|(_, f)| f.is_empty())
    );
}

#[test]
fn flow_bindings_survive_a_restart() {
    let mut e = Env::new(cfg());
    e.ba(&Bu::new(HOA1, 1)
        .opt(bid(1, None))
        .opt(bid(2, Some(COA2)))
        .opt(fi(7, 10, &[1, 2])));
    let restored = through_the_journal(&e);
    let mut e2 = Env::new(cfg());
    e2.now = e2.t0;
    assert_eq!(e2.ha.restore(e2.now, e.wall(), restored), 2);
    let want = vec![entry(7, 10, &[1, 2])];
    assert_eq!(
        announced_flows(&e2.events()),
        [(Some(1), want.clone()), (Some(2), want)]
    );
    // The restored list is the one a Flow Summary refreshes.
    let tx = e2.ba(&Bu::new(HOA1, 2)
        .opt(bid(1, None))
        .opt(bid(2, Some(COA2)))
        .opt(summary(&[7])));
    assert_eq!(flow_statuses(&tx), []);
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Random octets in Flow Identification and Flow Summary options of a bulk
        /// registration (sub-options that parse or do not, any FID, any BIDs): no panic,
        /// every answer encodes, an accepted BU's Flow Identification copies are one per
        /// option that parsed plus one per unknown summarised FID, the list stays within
        /// `flow-bindings-max`, and its journal records decode back to it.
        #[test]
        fn random_flow_options_never_panic(
            opts in proptest::collection::vec(
                (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40)),
                0..24,
            ),
        ) {
            let mut bu = Bu::new(HOA1, 1).opt(bid(1, None)).opt(bid(2, Some(COA2)));
            for (fi, data) in &opts {
                let data: &'static [u8] = Box::leak(data.clone().into_boxed_slice());
                bu = bu.opt(MobilityOption::Unknown {
                    option_type: if *fi { 45 } else { 44 },
                    data,
                });
            }
            let mut e = Env::new(cfg());
            e.send(&bu);
            while let Some(tx) = e.ha.poll_transmit() {
                prop_assert!(tx.repr().is_ok());
            }
            for ev in e.events() {
                if let HaEvent::Persist(rec) = ev {
                    let mut v = Vec::new();
                    rec.encode(&mut v);
                    prop_assert_eq!(JournalRecord::decode(&v), Ok(rec.clone()));
                    if let JournalRecord::Upsert(b) = rec {
                        prop_assert!(b.flows.len() <= crate::config::DEFAULT_FLOW_BINDINGS_MAX);
                    }
                }
            }
        }
    }
}
