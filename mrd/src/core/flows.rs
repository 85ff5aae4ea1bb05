//! Flow bindings, mobile router side (RFC 6089).
//!
//! A flow binding (`MrCoreConfig::flow_bindings`) binds the packets a traffic selector
//! (RFC 6088) matches to binding identifiers (RFC 5648), so it rides on the bulk
//! registration of `mcoa`: every BU that carries Binding Identifier options carries the
//! flow bindings too, each of them restricted to the BIDs that BU registers (§5.2.2.1:
//! every BID referenced must be registered in this BU or an earlier one, and the O flag
//! removes the others). A flow binding none of whose BIDs is in the BU is left out, which
//! makes the home agent delete it (§5.2: all flow binding state is refreshed in every BU,
//! and what is not mentioned goes).
//!
//! What a flow binding becomes in a BU:
//! * a Flow Identification option (FID, FID-PRI, Status 0, one Binding Reference and one
//!   Traffic Selector sub-option, §5.2.2.1-§5.2.2.2) when the home agent has not accepted
//!   exactly this FID, priority, selector and BIDs: new, changed, or refused before (a
//!   Flow Identification option with a FID the home agent holds modifies it, and we send
//!   both sub-options rather than rely on what it kept);
//! * else its FID in a Flow Summary option (§5.2, at most 127 FIDs an option).
//!
//! The BA (§5.2.6) carries a copy of every Flow Identification option with its Status:
//! below 128 accepted; from 128 refused, logged, and sent again in the next BU. A Flow
//! Summary FID the home agent does not hold comes back as a Flow Identification option
//! with status 132 (FID not found): it lost it, and the next BU identifies it again. A BA
//! that accepts the BU but carries no Flow Identification option at all although the BU
//! had some: the home agent does not do flow bindings (it skipped options it does not
//! know), and gets none from then on, until the home agent changes (a new Binding Update
//! List entry) or mrd restarts.
//!
//! What the home agent accepted is kept in the primary Binding Update List entry; the
//! data plane learns it in `Binding.flows` of every BID binding's BUL_ADD. Plain BUs and
//! de-registrations carry no flow options (a lifetime-0 BU removes the flow bindings with
//! the binding). BID-PRI (§4.1, §5.2.1) goes in every BID option (`bu::bid_option`):
//! the interface's configured value, else 1, never 0.

use proto::flow::{FlowIdentification, FlowStatus, FlowSubOption, FlowSubOptions, IdList};
use proto::model::FlowBinding;

use super::*;

/// Most FIDs in one Flow Summary option (RFC 6089 §4.2.2: the Length octet holds 2 x 127).
pub const FS_MAX_FIDS: usize = 127;

/// Whether the home agent does flow bindings (RFC 6089), as learnt from its BAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowSupport {
    /// No BA to a BU with Flow Identification options yet.
    Unknown,
    /// A BA carried Flow Identification options.
    Supported,
    /// A BA to a BU with Flow Identification options carried none (§5.2.6): no flow
    /// options to this home agent any more.
    Unsupported,
}

/// The flow binding options of one BU, by what they carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FlowsSent {
    /// In Flow Identification options, with the BIDs of their Binding Reference.
    pub(crate) identified: Vec<FlowBinding>,
    /// Refreshed by their FID in Flow Summary options, as accepted before.
    pub(crate) summarised: Vec<FlowBinding>,
}

impl FlowsSent {
    /// The FIDs of the Flow Summary options, in order.
    pub(crate) fn summary_fids(&self) -> Vec<u16> {
        self.summarised.iter().map(|f| f.fid).collect()
    }

    /// The sub-options of each Flow Identification option, in the order of `identified`;
    /// they borrow its BID lists.
    pub(crate) fn sub_options(&self) -> Vec<[FlowSubOption<'_>; 2]> {
        self.identified
            .iter()
            .map(|f| {
                [
                    FlowSubOption::BindingReference(IdList::List(&f.bids)),
                    FlowSubOption::TrafficSelector(f.selector.to_wire()),
                ]
            })
            .collect()
    }
}

/// The mobility options of `sent`: a Flow Identification option per identified flow
/// binding (`subs` from [`FlowsSent::sub_options`]), then Flow Summary options of at most
/// [`FS_MAX_FIDS`] FIDs each.
pub(crate) fn flow_options<'a>(
    sent: &'a FlowsSent,
    subs: &'a [[FlowSubOption<'a>; 2]],
    fids: &'a [u16],
) -> impl Iterator<Item = MobilityOption<'a>> + 'a {
    let fi = sent.identified.iter().zip(subs).map(|(f, s)| {
        MobilityOption::FlowIdentification(FlowIdentification {
            fid: f.fid,
            fid_pri: f.priority,
            // §5.2.2.1: a BU's Status is 0.
            status: FlowStatus::Successful,
            sub_options: FlowSubOptions::List(s),
        })
    });
    let fs = fids
        .chunks(FS_MAX_FIDS)
        .map(|c| MobilityOption::FlowSummary(IdList::List(c)));
    fi.chain(fs)
}

impl MrCore {
    /// What the home agent holds of our flow bindings: accepted, with the BIDs sent.
    pub fn accepted_flows(&self) -> &[FlowBinding] {
        &self.bul.primary.flows_accepted
    }

    /// What the core knows about the home agent's support of flow bindings.
    pub fn flow_support(&self) -> FlowSupport {
        self.bul.primary.flow_support
    }

    /// The flow binding options of a BU registering the binding identifiers `bids` (none:
    /// a plain BU or a de-registration, no flow options).
    pub(super) fn flows_for(&self, bids: &[u16]) -> FlowsSent {
        let e = &self.bul.primary;
        let mut sent = FlowsSent::default();
        if bids.is_empty() || e.flow_support == FlowSupport::Unsupported {
            return sent;
        }
        // Without a binding the home agent holds no flow binding of ours either.
        let accepted: &[FlowBinding] = if e.registered.is_some() {
            &e.flows_accepted
        } else {
            &[]
        };
        for f in &self.cfg.flow_bindings {
            let in_bu: Vec<u16> = f
                .bids
                .iter()
                .copied()
                .filter(|b| bids.contains(b))
                .collect();
            if in_bu.is_empty() {
                // §5.2: not mentioned, so the home agent deletes it; §5.2.2.1 forbids
                // referencing BIDs that are not registered.
                continue;
            }
            let f = FlowBinding {
                bids: in_bu,
                ..f.clone()
            };
            if accepted.contains(&f) {
                sent.summarised.push(f);
            } else {
                sent.identified.push(f);
            }
        }
        sent
    }

    /// RFC 6089 §5.2.6: an accepted BA to a bulk registration that carried `sent`. What
    /// it accepted replaces what we held; the rest is asked for again in the next BU.
    pub(super) fn flows_answered(&mut self, ba: &BindingAck<'_>, sent: &FlowsSent) {
        let copies: Vec<(u16, FlowStatus)> = ba
            .options
            .iter()
            .filter_map(|o| match o {
                MobilityOption::FlowIdentification(fi) => Some((fi.fid, fi.status)),
                _ => None,
            })
            .collect();
        let ha = self.bul.primary.home_agent;
        let e = &mut self.bul.primary;
        if !sent.identified.is_empty() && copies.is_empty() {
            if e.flow_support != FlowSupport::Unsupported {
                info!(%ha,
                    fids = ?sent.identified.iter().map(|f| f.fid).collect::<Vec<_>>(),
                    "the home agent does not support flow bindings (RFC 6089 §5.2.6: no Flow \
                     Identification option in its BA): none sent to it from now on");
            }
            e.flow_support = FlowSupport::Unsupported;
            e.flows_accepted.clear();
            return;
        }
        if !copies.is_empty() {
            e.flow_support = FlowSupport::Supported;
        }
        let status_of = |fid: u16| copies.iter().find(|(f, _)| *f == fid).map(|(_, s)| *s);
        let mut accepted = Vec::new();
        for f in &sent.identified {
            match status_of(f.fid) {
                Some(st) if st.is_success() => accepted.push(f.clone()),
                Some(st) => {
                    let (name, rfc) = st.meaning();
                    warn!(fid = f.fid, priority = f.priority, bids = ?f.bids,
                        status = u8::from(st), meaning = name, rfc,
                        "flow binding refused by the home agent; asked for again in the next \
                         Binding Update");
                }
                None => warn!(
                    fid = f.fid,
                    "the BA has no Flow Identification option for this flow binding (RFC 6089 \
                     §5.2.6): not registered; asked for again in the next Binding Update"
                ),
            }
        }
        for f in &sent.summarised {
            match status_of(f.fid) {
                Some(st) if !st.is_success() => {
                    let (name, rfc) = st.meaning();
                    warn!(
                        fid = f.fid,
                        status = u8::from(st),
                        meaning = name,
                        rfc,
                        "the home agent does not hold the flow binding its Flow Summary \
                         refreshed; identified again in the next Binding Update"
                    );
                }
                // §5.3.3: a refreshed FID draws no option unless something is wrong.
                _ => accepted.push(f.clone()),
            }
        }
        if accepted != e.flows_accepted {
            info!(%ha, accepted = ?accepted.iter().map(|f| (f.fid, &f.bids)).collect::<Vec<_>>(),
                "flow bindings held by the home agent");
        }
        e.flows_accepted = accepted;
    }
}
