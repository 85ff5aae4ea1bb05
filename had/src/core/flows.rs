//! Flow bindings on the home agent (RFC 6089 §5.3): the Flow Identification and Flow
//! Summary options of an accepted Binding Update edit the home address's list of flow
//! bindings, and the BA carries a copy of each Flow Identification option with its
//! status (§5.3.5).
//!
//! The rules, in the order [`flow_step`] applies them, after the BU's Binding Identifier
//! options (§5.3.1: a Binding Reference may name a BID the same BU registers):
//!
//! * flow bindings turned off (`flow-bindings 0;`): every Flow Identification option is
//!   answered 128, administratively prohibited (§5.3.5), and none is kept;
//! * two Flow Identification options with one FID: all of them are refused (§5.3.2),
//!   with 130 (malformed; the RFC names no code for it);
//! * FID 0 and FID-PRI 0 are reserved (§4.2): 130; so is a sub-option region that does
//!   not parse, or more than one Traffic Selector or Binding Reference (§4.2.1.3-4);
//! * a new FID (§5.3.2.1): without a Traffic Selector or a Binding Reference, 130; a TS
//!   Format other than RFC 6088's two, 133; a BID the home address does not hold, 131;
//!   else added, active;
//! * a known FID (§5.3.2.2): its priority replaced, and its selector and BIDs when the
//!   option carries them (the same checks); a refused modification keeps the entry as it
//!   was, since the BU still names it;
//! * a Flow Summary FID (§5.3.3): kept unchanged; unknown, a Flow Identification option
//!   with that FID and 132 goes back; named twice, once is enough;
//! * every FID the BU does not name goes (§5.3.4);
//! * a new FID beyond `flow-bindings-max` is answered 128: what one authenticated router
//!   makes the home agent hold stays bounded.
//!
//! The list stays ordered by FID-PRI (FID breaking ties) as §4.3 orders it; entries none
//! of whose BIDs is registered are inactive and skipped by the data plane (§4.3), and
//! stay until the mobile router stops naming them.

use std::collections::HashSet;

use proto::flow::{
    FlowIdentification, FlowSelector, FlowStatus, FlowSubOption, FlowSubOptions, TrafficSelector,
};
use proto::model::FlowBinding;
use proto::option::MobilityOption;

use crate::config::McoaConfig;

/// What a BU's flow options come to.
#[derive(Debug, Default)]
pub(super) struct FlowOutcome<'a> {
    /// The home address's flow bindings after the BU, by FID-PRI.
    pub flows: Vec<FlowBinding>,
    /// The BA's Flow Identification options: each received one copied with its status,
    /// then one per unknown Flow Summary FID (132).
    pub replies: Vec<MobilityOption<'a>>,
    /// How many Flow Identification options were refused.
    pub refused: usize,
}

/// A copy of `fi` with `status`, its sub-options octet for octet (§5.3.5).
fn copy<'a>(fi: &FlowIdentification<'a>, status: FlowStatus) -> MobilityOption<'a> {
    MobilityOption::FlowIdentification(FlowIdentification { status, ..*fi })
}

/// The one Traffic Selector and one Binding Reference an option may carry, or the status
/// that refuses it.
struct Parts<'a> {
    selector: Option<TrafficSelector<'a>>,
    bids: Option<Vec<u16>>,
}

fn parts<'a>(subs: &FlowSubOptions<'a>) -> Result<Parts<'a>, FlowStatus> {
    let mut p = Parts {
        selector: None,
        bids: None,
    };
    for s in subs.iter() {
        match s.map_err(|_| FlowStatus::OptionMalformed)? {
            FlowSubOption::TrafficSelector(ts) => {
                if p.selector.replace(ts).is_some() {
                    return Err(FlowStatus::OptionMalformed);
                }
            }
            FlowSubOption::BindingReference(ids) => {
                if p.bids.replace(ids.iter().collect()).is_some() {
                    return Err(FlowStatus::OptionMalformed);
                }
            }
            // Sub-options we do not know are skipped (§4.2.1), RFC 7109's among them.
            FlowSubOption::Unknown { .. } => {}
        }
    }
    Ok(p)
}

/// The selector of a Traffic Selector sub-option we can apply (§5.3.2.1: else 133).
fn selector(ts: &TrafficSelector<'_>) -> Result<FlowSelector, FlowStatus> {
    FlowSelector::from_wire(ts).ok_or(FlowStatus::TsFormatNotSupported)
}

/// BIDs a Binding Reference may name: registered ones only, every one of them (§5.3.2.1).
fn bids(ids: Vec<u16>, registered: &[u16]) -> Result<Vec<u16>, FlowStatus> {
    if ids.iter().all(|b| registered.contains(b)) {
        Ok(ids)
    } else {
        Err(FlowStatus::BidNotFound)
    }
}

/// A new flow binding from `fi` (§5.3.2.1).
fn new_entry(fi: &FlowIdentification<'_>, registered: &[u16]) -> Result<FlowBinding, FlowStatus> {
    let p = parts(&fi.sub_options)?;
    let (Some(ts), Some(ids)) = (p.selector, p.bids) else {
        return Err(FlowStatus::OptionMalformed);
    };
    Ok(FlowBinding {
        fid: fi.fid,
        priority: fi.fid_pri,
        selector: selector(&ts)?,
        bids: bids(ids, registered)?,
    })
}

/// `old` modified by `fi` (§5.3.2.2): what the option carries replaces what it had.
fn modified(
    old: &FlowBinding,
    fi: &FlowIdentification<'_>,
    registered: &[u16],
) -> Result<FlowBinding, FlowStatus> {
    let p = parts(&fi.sub_options)?;
    Ok(FlowBinding {
        fid: old.fid,
        priority: fi.fid_pri,
        selector: match p.selector {
            Some(ts) => selector(&ts)?,
            None => old.selector,
        },
        bids: match p.bids {
            Some(ids) => bids(ids, registered)?,
            None => old.bids.clone(),
        },
    })
}

/// The flow options of an accepted BU, applied to the home address's flow bindings `old`;
/// `registered`: its BIDs once the BU's own Binding Identifier options are applied.
pub(super) fn flow_step<'a>(
    cfg: &McoaConfig,
    old: &[FlowBinding],
    registered: &[u16],
    options: &[MobilityOption<'a>],
) -> FlowOutcome<'a> {
    // The common BU names no flow at all: nothing kept (§5.3.4), nothing to answer, and
    // nothing else to set up on the BU path.
    if !options.iter().any(|o| {
        matches!(
            o,
            MobilityOption::FlowIdentification(_) | MobilityOption::FlowSummary(_)
        )
    }) {
        return FlowOutcome::default();
    }
    let fis: Vec<&FlowIdentification<'a>> = options
        .iter()
        .filter_map(|o| match o {
            MobilityOption::FlowIdentification(fi) => Some(fi),
            _ => None,
        })
        .collect();
    let mut out = FlowOutcome::default();
    if !cfg.flow_bindings {
        out.replies = fis
            .iter()
            .map(|fi| copy(fi, FlowStatus::AdministrativelyProhibited))
            .collect();
        out.refused = fis.len();
        return out;
    }
    let mut seen = HashSet::new();
    let twice: HashSet<u16> = fis
        .iter()
        .filter(|fi| !seen.insert(fi.fid))
        .map(|fi| fi.fid)
        .collect();
    // §5.3.2: if two options share a FID, all of them are refused, not only those two.
    let all_refused = !twice.is_empty();
    let mut named: HashSet<u16> = HashSet::new();
    for fi in &fis {
        named.insert(fi.fid);
        let known = old.iter().find(|f| f.fid == fi.fid);
        let verdict = if all_refused || fi.fid == 0 || fi.fid_pri == 0 {
            Err(FlowStatus::OptionMalformed)
        } else {
            match known {
                Some(k) => modified(k, fi, registered),
                None => new_entry(fi, registered),
            }
        };
        let verdict = verdict.and_then(|f| {
            let held = out.flows.len() + old.iter().filter(|o| !named.contains(&o.fid)).count();
            if known.is_none() && held >= cfg.flow_bindings_max {
                Err(FlowStatus::AdministrativelyProhibited)
            } else {
                Ok(f)
            }
        });
        match verdict {
            Ok(f) => {
                out.flows.push(f);
                out.replies.push(copy(fi, FlowStatus::Successful));
            }
            Err(status) => {
                out.refused += 1;
                // A refused modification keeps the entry the BU still names.
                if let Some(k) = known
                    && !out.flows.iter().any(|f| f.fid == k.fid)
                {
                    out.flows.push(k.clone());
                }
                out.replies.push(copy(fi, status));
            }
        }
    }
    let summarized = options.iter().filter_map(|o| match o {
        MobilityOption::FlowSummary(ids) => Some(ids.iter()),
        _ => None,
    });
    for fid in summarized.flatten() {
        if !named.insert(fid) {
            // Named by a Flow Identification option or earlier in a summary (§5.3.3).
            continue;
        }
        match old.iter().find(|f| f.fid == fid) {
            Some(k) => out.flows.push(k.clone()),
            None => out
                .replies
                .push(MobilityOption::FlowIdentification(FlowIdentification {
                    fid,
                    fid_pri: 0,
                    status: FlowStatus::FidNotFound,
                    sub_options: FlowSubOptions::NONE,
                })),
        }
    }
    // §5.3.4: what the BU does not name is gone (nothing to do: only named entries were
    // carried over). §4.3: ordered by FID-PRI.
    out.flows.sort_by_key(|f| (f.priority, f.fid));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::flow::{IdList, Ipv6TrafficSelector, SelectorRange};

    fn udp() -> TrafficSelector<'static> {
        TrafficSelector::Ipv6(Ipv6TrafficSelector {
            next_header: Some(SelectorRange::single(17)),
            ..Default::default()
        })
    }

    /// A Flow Identification option as a BU carries it, sub-options leaked for 'static.
    fn fi(
        fid: u16,
        pri: u16,
        ts: Option<TrafficSelector<'static>>,
        bids: Option<&[u16]>,
    ) -> MobilityOption<'static> {
        let mut subs = Vec::new();
        if let Some(b) = bids {
            let b: &'static [u16] = Box::leak(b.to_vec().into_boxed_slice());
            subs.push(FlowSubOption::BindingReference(IdList::List(b)));
        }
        if let Some(ts) = ts {
            subs.push(FlowSubOption::TrafficSelector(ts));
        }
        MobilityOption::FlowIdentification(FlowIdentification {
            fid,
            fid_pri: pri,
            status: FlowStatus::Successful,
            sub_options: FlowSubOptions::List(Box::leak(subs.into_boxed_slice())),
        })
    }

    fn statuses(out: &FlowOutcome<'_>) -> Vec<(u16, u8)> {
        out.replies
            .iter()
            .map(|o| match o {
                MobilityOption::FlowIdentification(f) => (f.fid, u8::from(f.status)),
                _ => unreachable!(),
            })
            .collect()
    }

    fn entry(fid: u16, pri: u16, bids: &[u16]) -> FlowBinding {
        FlowBinding {
            fid,
            priority: pri,
            selector: FlowSelector::from_wire(&udp()).unwrap(),
            bids: bids.to_vec(),
        }
    }

    #[test]
    fn new_flow_bindings_are_added_in_priority_order() {
        let cfg = McoaConfig::default();
        let opts = [
            fi(2, 20, Some(udp()), Some(&[1, 2])),
            fi(1, 10, Some(udp()), Some(&[2])),
        ];
        let out = flow_step(&cfg, &[], &[1, 2], &opts);
        assert_eq!(statuses(&out), vec![(2, 0), (1, 0)]);
        assert_eq!(out.flows, vec![entry(1, 10, &[2]), entry(2, 20, &[1, 2])]);
        assert_eq!(out.refused, 0);
    }

    #[test]
    fn refusals_carry_the_rfc_statuses() {
        let cfg = McoaConfig::default();
        let other = TrafficSelector::Other {
            format: 9,
            data: &[1, 2, 3, 4],
        };
        let opts = [
            fi(1, 10, None, Some(&[1])),                     // no selector: 130
            fi(2, 20, Some(udp()), None),                    // no Binding Reference: 130
            fi(3, 30, Some(other), Some(&[1])),              // TS Format 9: 133
            fi(4, 40, Some(udp()), Some(&[1, 7])),           // BID 7 not held: 131
            fi(0, 50, Some(udp()), Some(&[1])),              // FID 0: 130
            fi(6, 0, Some(udp()), Some(&[1])),               // FID-PRI 0: 130
            MobilityOption::FlowSummary(IdList::List(&[9])), // unknown FID: 132
        ];
        let out = flow_step(&cfg, &[], &[1], &opts);
        assert_eq!(
            statuses(&out),
            vec![
                (1, 130),
                (2, 130),
                (3, 133),
                (4, 131),
                (0, 130),
                (6, 130),
                (9, 132)
            ]
        );
        assert!(out.flows.is_empty());
        assert_eq!(out.refused, 6);
    }

    #[test]
    fn a_fid_twice_refuses_every_flow_identification_option() {
        let cfg = McoaConfig::default();
        let opts = [
            fi(1, 10, Some(udp()), Some(&[1])),
            fi(2, 20, Some(udp()), Some(&[1])),
            fi(1, 30, Some(udp()), Some(&[1])),
        ];
        let out = flow_step(&cfg, &[], &[1], &opts);
        assert_eq!(statuses(&out), vec![(1, 130), (2, 130), (1, 130)]);
        assert!(out.flows.is_empty());
    }

    #[test]
    fn known_fids_are_modified_refreshed_or_removed() {
        let cfg = McoaConfig::default();
        let old = [entry(1, 10, &[1]), entry(2, 20, &[2]), entry(3, 30, &[1])];
        let opts = [
            // Modify 1: new priority, BIDs kept (no Binding Reference).
            fi(1, 40, None, None),
            // Refresh 2 by summary; 3 is not named: removed.
            MobilityOption::FlowSummary(IdList::List(&[2, 2])),
        ];
        let out = flow_step(&cfg, &old, &[1, 2], &opts);
        assert_eq!(statuses(&out), vec![(1, 0)]);
        assert_eq!(out.flows, vec![entry(2, 20, &[2]), entry(1, 40, &[1])]);
        // A modification naming a BID not held is refused and the entry kept as it was.
        let out = flow_step(&cfg, &old, &[1, 2], &[fi(1, 5, None, Some(&[9]))]);
        assert_eq!(statuses(&out), vec![(1, 131)]);
        assert_eq!(out.flows, vec![entry(1, 10, &[1])]);
        // Nothing named: nothing left (§5.3.4).
        assert!(flow_step(&cfg, &old, &[1, 2], &[]).flows.is_empty());
    }

    #[test]
    fn inactive_entries_stay_while_named() {
        // BID 2 deregistered: entry 2 is inactive but refreshed, so it stays (§4.3).
        let cfg = McoaConfig::default();
        let old = [entry(2, 20, &[2])];
        let out = flow_step(
            &cfg,
            &old,
            &[1],
            &[MobilityOption::FlowSummary(IdList::List(&[2]))],
        );
        assert_eq!(out.flows, old.to_vec());
        assert_eq!(out.flows[0].active_bids(&[1]).count(), 0);
    }

    #[test]
    fn turned_off_or_full_answers_administratively_prohibited() {
        let off = McoaConfig {
            flow_bindings: false,
            ..McoaConfig::default()
        };
        let out = flow_step(&off, &[], &[1], &[fi(1, 10, Some(udp()), Some(&[1]))]);
        assert_eq!(statuses(&out), vec![(1, 128)]);
        assert!(out.flows.is_empty());
        let two = McoaConfig {
            flow_bindings_max: 2,
            ..McoaConfig::default()
        };
        let old = [entry(1, 10, &[1])];
        let opts = [
            fi(2, 20, Some(udp()), Some(&[1])),
            fi(3, 30, Some(udp()), Some(&[1])),
            MobilityOption::FlowSummary(IdList::List(&[1])),
        ];
        let out = flow_step(&two, &old, &[1], &opts);
        assert_eq!(statuses(&out), vec![(2, 0), (3, 128)]);
        assert_eq!(out.flows.len(), 2);
    }
}
