//! Multiple Care-of Addresses registration (RFC 5648) on the home agent: a Binding Update
//! with Binding Identifier options registers, refreshes or removes one binding per BID of
//! its home address.
//!
//! The order, after steps 1 to 4 of `bu.rs` (care-of address, RFC 4285, H/R and home
//! subnet, sequence number — shared by every BID of a home address, §4.3):
//!
//! 1. the BU as a whole (`bu_level_check`): MCoA allowed (166), bulk registration allowed
//!    when several BIDs (168), each BID once, no IPv4 CoA option beside BID options
//!    (§8.1), over UDP/IPv4 at most one BID for the path the BU came by (§8.1), and no
//!    BID bindings over a plain binding unless the O flag replaces it (165);
//! 2. each BID (`Ha::bid_operations`): BID 0 is reserved (164), H (simultaneous home and
//!    foreign binding, §5.6) is not supported (169), its care-of address (the option's,
//!    else the BU's) must be a valid one (164), the home address as care-of address or a
//!    lifetime of 0 removes it (167 when there is none), and a new BID beyond
//!    `mcoa-max-bindings` gets 130;
//! 3. with at least one BID to register: room (130), R unchanged (139), prefixes
//!    (141-143), proxy DAD for a new home address — for the BU as a whole, since the
//!    prefixes and the proxy ND entry belong to the home address, shared by its BIDs;
//! 4. the changes (`Ha::apply_bid_operations`): with O, every binding the BU does not
//!    list goes; removals, then the BU's registrations, journal records for every binding
//!    left (they share the sequence number and replay state), BC_ADD for each registered
//!    BID, one BA carrying every BID with its status: 0 when all passed, 4 (MCOA
//!    NOTCOMPLETE) when some did, else the first refusal.
//!
//! The RFC's text was not at hand when this was written; where its wording is recalled,
//! not checked, the comment says so (see had/README.md, "MCoA").

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use proto::mh::{BaStatus, BindingUpdate};
use proto::model::{CareOf, FlowBinding};
use proto::option::MobilityOption;
use proto::seq::Lifetime;
use tracing::{debug, info, warn};

use super::bu::{Incoming, Prefixes, Step, Stop, r_flag_changed, refuse};
use super::flows::{FlowOutcome, flow_step};
use super::{
    Bce, CareOfBinding, Ha, HaEvent, HoaPolicy, MnpV4, MnpV6, ReceivedSignal, binding_of,
    proxy_nd_of,
};
use crate::config::McoaConfig;
use crate::record::JournalRecord;

/// One Binding Identifier option of a BU (RFC 5648 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BidRequest {
    pub bid: u16,
    /// BID-PRI (RFC 6089 §4.1); 0 in RFC 5648's format.
    pub bid_pri: u8,
    /// Simultaneous home and foreign binding.
    pub h: bool,
    pub coa: Option<IpAddr>,
}

/// What a BID option of a BU comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BidOp {
    /// Register or refresh the binding at this care-of address.
    Register {
        coa: CareOf,
        nat_detected: bool,
        /// The MR's own IPv4 CoA (the RFC 4285 MAC's), when DSMIPv6.
        v4_coa_option: Option<Ipv4Addr>,
    },
    /// Remove the binding (lifetime 0, or the home address as care-of address).
    Deregister,
    /// Refused with this per-BID status.
    Refused(BaStatus),
}

/// The BID options of `bu`, in order.
pub(super) fn bid_requests(bu: &BindingUpdate<'_>) -> Vec<BidRequest> {
    bu.options
        .iter()
        .filter_map(|o| match *o {
            MobilityOption::BindingIdentifier {
                bid,
                h,
                coa,
                bid_pri,
                ..
            } => Some(BidRequest {
                bid,
                bid_pri,
                h,
                coa,
            }),
            _ => None,
        })
        .collect()
}

/// What the BU-wide check needs to know besides the BID options.
#[derive(Debug, Clone, Copy)]
pub(super) struct BuContext {
    /// The BU carries RFC 5555's IPv4 Care-of Address option.
    pub v4_coa_option: bool,
    /// The BU came in UDP/IPv4 (DSMIPv6).
    pub udp: bool,
    /// The home address holds a plain binding (registered without a BID).
    pub plain_binding: bool,
    /// Lifetime 0.
    pub deregistration: bool,
    /// The O flag, read as such (a BID option is present, lifetime not 0).
    pub overwrite: bool,
}

/// Step 1: the BU as a whole. `Err` is the BA's status and the reason for the log.
pub(super) fn bu_level_check(
    reqs: &[BidRequest],
    cfg: &McoaConfig,
    cx: BuContext,
) -> Result<(), (BaStatus, &'static str)> {
    if !cfg.enabled {
        return Err((
            BaStatus::McoaProhibited,
            "multiple care-of addresses are turned off ('mcoa 0;')",
        ));
    }
    if reqs.len() > 1 && !cfg.bulk_registration {
        return Err((
            BaStatus::McoaBulkRegistrationProhibited,
            "bulk registration is turned off ('mcoa-bulk-registration 0;')",
        ));
    }
    let mut seen = HashSet::new();
    if !reqs.iter().all(|r| seen.insert(r.bid)) {
        return Err((
            BaStatus::McoaMalformed,
            "a BID appears twice in one Binding Update",
        ));
    }
    if cx.v4_coa_option {
        return Err((
            BaStatus::McoaMalformed,
            "an IPv4 Care-of Address option beside BID options (RFC 5648 §8.1: the BID \
             option carries the IPv4 care-of address)",
        ));
    }
    if cx.udp
        && reqs
            .iter()
            .filter(|r| !matches!(r.coa, Some(IpAddr::V6(_))))
            .count()
            > 1
    {
        return Err((
            BaStatus::McoaMalformed,
            "over UDP/IPv4, more than one BID for the IPv4 care-of address the BU came \
             from (RFC 5648 §8.1: one BU per IPv4 care-of address)",
        ));
    }
    if cx.plain_binding && (cx.deregistration || !cx.overwrite) {
        // RFC 5648 §6.2 (recalled): a BU with BIDs over a binding registered without one
        // is refused unless the O flag replaces it.
        return Err((
            BaStatus::McoaNonMcoaBindingExists,
            "the home address holds a binding registered without a BID; a BU with BIDs \
             must set the O flag to replace it",
        ));
    }
    Ok(())
}

/// Step 2's last part: new BIDs beyond `max` bindings per home address get 130.
/// `existing`: the BIDs the home address holds (empty with O, which replaces them all).
pub(super) fn limit_bids(ops: &mut [(u16, BidOp)], existing: &[u16], max: usize) -> usize {
    let removed: HashSet<u16> = ops
        .iter()
        .filter(|(_, op)| *op == BidOp::Deregister)
        .map(|(bid, _)| *bid)
        .collect();
    let mut held: HashSet<u16> = existing
        .iter()
        .copied()
        .filter(|b| !removed.contains(b))
        .collect();
    let mut refused = 0;
    for (bid, op) in ops.iter_mut() {
        if !matches!(op, BidOp::Register { .. }) || held.contains(bid) {
            continue;
        }
        if held.len() >= max {
            *op = BidOp::Refused(BaStatus::InsufficientResources);
            refused += 1;
        } else {
            held.insert(*bid);
        }
    }
    refused
}

/// The BA's status for these per-BID outcomes: 0 when none was refused, 4 (MCOA
/// NOTCOMPLETE, §4.4) when some were, else the first refusal.
pub(super) fn ba_status(ops: &[(u16, BidOp)]) -> BaStatus {
    let first_refusal = ops.iter().find_map(|(_, op)| match op {
        BidOp::Refused(s) => Some(*s),
        _ => None,
    });
    let any_done = ops.iter().any(|(_, op)| !matches!(op, BidOp::Refused(_)));
    match (first_refusal, any_done) {
        (None, _) => BaStatus::Accepted,
        (Some(_), true) => BaStatus::McoaNotComplete,
        (Some(s), false) => s,
    }
}

impl Ha {
    /// Steps 1 to 4 of this module for a BU with BID options.
    pub(super) fn mcoa_steps<'a>(
        &mut self,
        now: Instant,
        wall: Duration,
        signal: &ReceivedSignal<'_>,
        policy: Option<&HoaPolicy>,
        bu: &BindingUpdate<'a>,
        b: &mut Incoming<'a>,
    ) -> Step {
        let reqs = bid_requests(bu);
        let deregistration = bu.lifetime.is_zero();
        // 0x0040 is O only in a BU with a BID option (protocol.md §2.1: RFC 6602 took the
        // bit for PMIPv6's B); RFC 5648 ignores O in a de-registration.
        let overwrite = !deregistration && bu.flags.bulk_or_overwrite();
        let existing = self.cache.get(&b.hoa);
        let cx = BuContext {
            v4_coa_option: bu
                .options
                .iter()
                .any(|o| matches!(o, MobilityOption::Ipv4CareOfAddress(_))),
            udp: signal.udp_v4.is_some(),
            plain_binding: existing.is_some_and(|e| !e.is_mcoa()),
            deregistration,
            overwrite,
        };
        if let Err((status, reason)) = bu_level_check(&reqs, &self.cfg.mcoa, cx) {
            info!(hoa = %b.hoa, seq = b.seq.0, bids = reqs.len(), status = u8::from(status), reason,
                "binding update with BID options refused");
            self.stats.bids_refused += reqs.len() as u64;
            return Err(refuse(status));
        }
        let mut ops = self.bid_operations(signal, policy, bu, b, &reqs, deregistration);
        let held: Vec<u16> = match self.cache.get(&b.hoa) {
            Some(e) if !overwrite => e.bindings().filter_map(|c| c.bid).collect(),
            _ => Vec::new(),
        };
        let max = self.cfg.mcoa.max_bindings_per_home_address;
        if limit_bids(&mut ops, &held, max) > 0 {
            warn!(hoa = %b.hoa, max, "new BIDs beyond the bindings a home address may hold \
                refused (130; raise mcoa-max-bindings?)");
        }
        // Every BA from here on carries the per-BID statuses.
        for (slot, (_, op)) in b.reply.bids.iter_mut().zip(&ops) {
            if let BidOp::Refused(s) = op {
                slot.1 = u8::from(*s);
            }
        }
        let refused = ops
            .iter()
            .filter(|(_, op)| matches!(op, BidOp::Refused(_)))
            .count();
        self.stats.bids_refused += refused as u64;
        let registering = ops
            .iter()
            .any(|(_, op)| matches!(op, BidOp::Register { .. }));
        if refused == ops.len() {
            let status = ba_status(&ops);
            info!(hoa = %b.hoa, seq = b.seq.0, status = u8::from(status), "every BID of the binding update refused");
            return Err(refuse(status));
        }
        if !registering {
            self.apply_bid_operations(now, wall, signal, bu, b, &ops, None);
            return Err(Stop::Handled);
        }
        self.room_step(b)?;
        if r_flag_changed(b.existing.map(|e| e.1), b.flags) {
            return Err(refuse(BaStatus::RegistrationTypeChangeDisallowed));
        }
        let prefixes = self.prefix_step(policy, bu, b.flags)?;
        self.proxy_dad_step(now, signal, b)?;
        self.apply_bid_operations(now, wall, signal, bu, b, &ops, Some(prefixes));
        Ok(())
    }

    /// Step 2: what each BID option asks, in the BU's order.
    fn bid_operations(
        &self,
        signal: &ReceivedSignal<'_>,
        policy: Option<&HoaPolicy>,
        bu: &BindingUpdate<'_>,
        b: &Incoming<'_>,
        reqs: &[BidRequest],
        deregistration: bool,
    ) -> Vec<(u16, BidOp)> {
        let existing = self.cache.get(&b.hoa);
        let held = |bid: u16| existing.and_then(|e| e.get(Some(bid)));
        reqs.iter()
            .map(|r| {
                let op = self.bid_operation(signal, policy, bu, b, r, deregistration, held(r.bid));
                if let BidOp::Refused(s) = op {
                    debug!(hoa = %b.hoa, bid = r.bid, status = u8::from(s), "BID refused");
                }
                (r.bid, op)
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn bid_operation(
        &self,
        signal: &ReceivedSignal<'_>,
        policy: Option<&HoaPolicy>,
        bu: &BindingUpdate<'_>,
        b: &Incoming<'_>,
        r: &BidRequest,
        deregistration: bool,
        held: Option<&CareOfBinding>,
    ) -> BidOp {
        let hoa = b.hoa;
        // §4.3: BID 0 is reserved.
        if r.bid == 0 {
            return BidOp::Refused(BaStatus::McoaMalformed);
        }
        // §5.6.3: the simultaneous home and foreign binding needs the home agent to stop
        // defending the home address while the router uses it at home; not done here.
        if r.h {
            return BidOp::Refused(BaStatus::McoaSimultaneousHomeAndForeignProhibited);
        }
        let remove = || match held {
            Some(_) => BidOp::Deregister,
            // RFC 6275 §10.3.2: no binding at all is 133; a home address with others, but
            // not this BID, is the MCoA case (167, §6.2 as recalled).
            None if b.existing.is_none() => BidOp::Refused(BaStatus::NotHomeAgentForThisMobileNode),
            None => BidOp::Refused(BaStatus::McoaUnknownCoa),
        };
        if deregistration {
            return remove();
        }
        match r.coa {
            Some(IpAddr::V6(a)) => {
                if a == hoa {
                    // The home address as care-of address: this BID is at home (RFC 6275
                    // §9.5.1; without H, §5.6.1).
                    return remove();
                }
                if self
                    .coa_refusal(&CareOf::V6(a), hoa, signal, policy, bu)
                    .is_some()
                {
                    // §6.2: the Care-of Address field must hold a unicast routable address.
                    return BidOp::Refused(BaStatus::McoaMalformed);
                }
                BidOp::Register {
                    coa: CareOf::V6(a),
                    nat_detected: false,
                    v4_coa_option: None,
                }
            }
            Some(IpAddr::V4(a)) if signal.udp_v4.is_some() => {
                // §8.1: the BU came from this IPv4 care-of address (or through a NAT in
                // front of it): the outer source is the care-of address, the option's
                // the MR's own (NAT detection, RFC 5555 §4.1, done in step 1).
                BidOp::Register {
                    coa: b.coa,
                    nat_detected: b.nat_detected,
                    v4_coa_option: Some(a),
                }
            }
            Some(IpAddr::V4(a)) => match held {
                // A refresh from elsewhere (a bulk BU over IPv6) of an IPv4 binding
                // registered over UDP/IPv4 keeps its path and NAT mapping.
                Some(c)
                    if c.coa_v4_option == Some(a)
                        || matches!(c.coa, CareOf::V4 { addr, .. } if addr == a) =>
                {
                    BidOp::Register {
                        coa: c.coa,
                        nat_detected: c.nat_detected,
                        v4_coa_option: c.coa_v4_option,
                    }
                }
                // §8.1: an IPv4 care-of address is first registered by a BU from it, in
                // UDP/IPv4, so the home agent sees the path (and any NAT) to it.
                _ => BidOp::Refused(BaStatus::McoaMalformed),
            },
            // §6.2: no Care-of Address field, the BU's own care-of address.
            None => match b.coa {
                CareOf::V6(c) if c == hoa => remove(),
                coa => BidOp::Register {
                    coa,
                    nat_detected: b.nat_detected,
                    v4_coa_option: b.v4_coa_option,
                },
            },
        }
    }

    /// Step 4: the accepted BID operations (`prefixes` given when the BU registers),
    /// their events, and the BA.
    #[allow(clippy::too_many_arguments)]
    fn apply_bid_operations<'a>(
        &mut self,
        now: Instant,
        wall: Duration,
        signal: &ReceivedSignal<'_>,
        bu: &BindingUpdate<'a>,
        b: &Incoming<'a>,
        ops: &[(u16, BidOp)],
        prefixes: Option<Prefixes>,
    ) {
        let hoa = b.hoa;
        let status = ba_status(ops);
        let registering = prefixes.is_some();
        let overwrite = registering && bu.flags.bulk_or_overwrite();
        let (granted, expires, due) = if registering {
            self.grant(now, &hoa, bu.lifetime)
        } else {
            (Lifetime::ZERO, now, now)
        };
        let listed: HashSet<u16> = ops
            .iter()
            .filter(|(_, op)| matches!(op, BidOp::Register { .. }))
            .map(|(bid, _)| *bid)
            .collect();
        let deregistered: HashSet<u16> = ops
            .iter()
            .filter(|(_, op)| *op == BidOp::Deregister)
            .map(|(bid, _)| *bid)
            .collect();
        let reqs = bid_requests(bu);
        let bid_pri = |bid: u16| reqs.iter().find(|r| r.bid == bid).map_or(0, |r| r.bid_pri);
        let old: Vec<CareOfBinding> = self
            .cache
            .get(&hoa)
            .map(|e| e.bindings().cloned().collect())
            .unwrap_or_default();
        // With O every binding the BU does not register goes, the plain one included
        // (§4.2, §6.2).
        let goes = |c: &CareOfBinding| match c.bid {
            Some(bid) => deregistered.contains(&bid) || (overwrite && !listed.contains(&bid)),
            None => overwrite,
        };
        let mut kept: Vec<CareOfBinding> = old.iter().filter(|c| !goes(c)).cloned().collect();
        for (bid, op) in ops {
            let BidOp::Register {
                coa,
                nat_detected,
                v4_coa_option,
            } = *op
            else {
                continue;
            };
            kept.retain(|c| c.bid != Some(*bid));
            kept.push(CareOfBinding {
                bid: Some(*bid),
                coa,
                expires,
                due,
                lifetime_secs: granted.as_secs(),
                nat_detected,
                coa_v4_option: v4_coa_option,
                rh2: signal.home_address.is_some(),
                brr_sent: false,
                bid_pri: bid_pri(*bid),
            });
        }
        if kept.is_empty() {
            // Nothing left: the home address goes, as a de-registration without BIDs.
            self.remove_home_address(now, b);
            self.stats.deregistered += 1;
            self.stats.accepted += 1;
            info!(hoa = %hoa, coa = %b.coa, seq = b.seq.0, bids = ?deregistered, status = u8::from(status),
                "BID bindings deregistered; none left");
            self.send_ba(&b.reply, status, Lifetime::ZERO, Vec::new(), Vec::new());
            return;
        }
        if !self.replay_floor.is_empty() {
            self.replay_floor.remove(&hoa);
        }
        // Removals first, with the entry's data as it was.
        if let Some(e) = self.cache.get(&hoa) {
            let gone: Vec<CareOfBinding> = old.iter().filter(|c| goes(c)).cloned().collect();
            let mut events = Vec::new();
            for c in &gone {
                events.push(HaEvent::Persist(JournalRecord::Remove { hoa, bid: c.bid }));
                let mut x = binding_of(&self.cfg, &hoa, e, c, now);
                x.lifetime = 0;
                events.push(HaEvent::BcRemove(x));
            }
            self.events.extend(events);
        }
        // RFC 6089 §5.3.1: the flow options after the BID options, against the BIDs the
        // home address holds once they are applied.
        let held_bids: Vec<u16> = kept.iter().filter_map(|c| c.bid).collect();
        let old_flows: Vec<FlowBinding> = self
            .cache
            .get(&hoa)
            .map(|e| e.flows.to_vec())
            .unwrap_or_default();
        let FlowOutcome {
            flows,
            replies: flow_replies,
            refused: flows_refused,
        } = flow_step(&self.cfg.mcoa, &old_flows, &held_bids, &bu.options);
        let flows_changed = old_flows != flows;
        if flows_refused > 0 {
            info!(hoa = %hoa, seq = b.seq.0, refused = flows_refused, "flow bindings refused (RFC 6089; statuses in the BA)");
        }
        let new = !self.cache.contains_key(&hoa);
        let extra_before = self.cache.get(&hoa).map_or(0, |e| e.count() - 1);
        let mut prefixes = prefixes;
        let acks = prefixes
            .as_mut()
            .map(Prefixes::take_acks)
            .unwrap_or_default();
        let kept_len = kept.len();
        let bce = self.cache.entry(hoa).or_insert_with(|| {
            let first = kept[0].clone();
            Bce {
                timer: first.due,
                first,
                more: Box::new([]),
                mnp_v6: MnpV6::new(),
                mnp_v4: MnpV4::new(),
                last_timestamp: None,
                spi: None,
                hoa_v4: None,
                flags: b.flags.bits(),
                sequence: b.seq.0,
                flows: Box::new([]),
            }
        });
        let mut shared_changed = new;
        if flows_changed {
            bce.flows = flows.into_boxed_slice();
        }
        let first = kept.remove(0);
        bce.replace_all(first);
        for c in kept {
            bce.upsert(c);
        }
        let extra_after = bce.count() - 1;
        // What the home address's bindings share (§4.3: one sequence number space).
        bce.sequence = b.seq.0;
        if b.timestamp.is_some() {
            bce.last_timestamp = b.timestamp;
        }
        bce.spi = b.spi;
        if let Some(p) = &prefixes {
            let (mnp_v4, hoa_v4) = p.v4();
            if *bce.mnp_v6 != *p.v6 || *bce.mnp_v4 != *mnp_v4 || bce.hoa_v4 != hoa_v4 {
                shared_changed = true;
            }
            if bce.flags != b.flags.bits() {
                shared_changed = true;
            }
            if *bce.mnp_v6 != *p.v6 {
                bce.mnp_v6 = MnpV6::from_slice(&p.v6);
            }
            if *bce.mnp_v4 != *mnp_v4 {
                bce.mnp_v4 = MnpV4::from_slice(mnp_v4);
            }
            bce.hoa_v4 = hoa_v4;
            bce.flags = b.flags.bits();
        }
        self.extra_bindings = self.extra_bindings - extra_before + extra_after;
        let bce = self.cache.get_mut(&hoa).expect("just inserted");
        let earliest = bce.due();
        let moved = new || earliest < bce.timer;
        let old_timer = bce.timer;
        if moved {
            bce.timer = earliest;
        }
        let bce = &self.cache[&hoa];
        let mut events = Vec::new();
        // Every binding's record: they carry the shared sequence number and replay state.
        for c in bce.bindings() {
            events.push(HaEvent::Persist(JournalRecord::Upsert(
                bce.persisted(hoa, c, now, wall),
            )));
        }
        for c in bce.bindings() {
            let registered = c.bid.is_some_and(|bid| listed.contains(&bid));
            // Every binding carries the flow bindings: a change goes to each (nemonetd
            // reads them from any binding of the home address).
            if registered || (registering && shared_changed) || flows_changed {
                events.push(HaEvent::BcAdd(binding_of(&self.cfg, &hoa, bce, c, now)));
            }
        }
        if new {
            events.push(HaEvent::ProxyNdAdd(proxy_nd_of(&self.cfg, &hoa, bce)));
        }
        let (coas, mnp_v6) = (
            bce.bindings()
                .map(|c| (c.bid.unwrap_or(0), c.coa.to_string()))
                .collect::<Vec<_>>(),
            bce.mnp_v6.len(),
        );
        self.events.extend(events);
        if moved {
            if !new {
                self.timers.remove(&(old_timer, hoa));
            }
            self.timers.insert((earliest, hoa));
        }
        if !deregistered.is_empty() {
            self.stats.deregistered += 1;
        }
        self.stats.accepted += 1;
        if registering {
            info!(hoa = %hoa, seq = b.seq.0, lifetime = granted.as_secs(), status = u8::from(status),
                registered = listed.len(), deregistered = deregistered.len(), overwrite,
                bindings = kept_len, ?coas, mnp_v6, new, "BID bindings registered");
        } else {
            info!(hoa = %hoa, seq = b.seq.0, status = u8::from(status), bids = ?deregistered,
                bindings = kept_len, ?coas, "BID bindings deregistered; others left");
        }
        self.send_ba(&b.reply, status, granted, acks, flow_replies);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(bid: u16, coa: Option<&str>) -> BidRequest {
        BidRequest {
            bid,
            bid_pri: 0,
            h: false,
            coa: coa.map(|c| c.parse().unwrap()),
        }
    }

    fn cx() -> BuContext {
        BuContext {
            v4_coa_option: false,
            udp: false,
            plain_binding: false,
            deregistration: false,
            overwrite: false,
        }
    }

    fn status(r: Result<(), (BaStatus, &'static str)>) -> Option<BaStatus> {
        r.err().map(|e| e.0)
    }

    #[test]
    fn bu_level_statuses() {
        let on = McoaConfig::default();
        let two = [req(1, None), req(2, Some("2001:db8:b::7"))];
        assert_eq!(status(bu_level_check(&two, &on, cx())), None);
        let off = McoaConfig {
            enabled: false,
            ..on
        };
        assert_eq!(
            status(bu_level_check(&two, &off, cx())),
            Some(BaStatus::McoaProhibited)
        );
        let no_bulk = McoaConfig {
            bulk_registration: false,
            ..on
        };
        assert_eq!(
            status(bu_level_check(&two, &no_bulk, cx())),
            Some(BaStatus::McoaBulkRegistrationProhibited)
        );
        assert_eq!(status(bu_level_check(&two[..1], &no_bulk, cx())), None);
        let twice = [req(1, None), req(1, Some("2001:db8:b::7"))];
        assert_eq!(
            status(bu_level_check(&twice, &on, cx())),
            Some(BaStatus::McoaMalformed)
        );
        let with_v4_option = BuContext {
            v4_coa_option: true,
            ..cx()
        };
        assert_eq!(
            status(bu_level_check(&two[..1], &on, with_v4_option)),
            Some(BaStatus::McoaMalformed)
        );
        // Over UDP/IPv4: one BID for the path, others only with IPv6 CoAs.
        let udp = BuContext { udp: true, ..cx() };
        assert_eq!(status(bu_level_check(&two, &on, udp)), None);
        let two_v4 = [req(1, None), req(2, Some("192.0.2.9"))];
        assert_eq!(
            status(bu_level_check(&two_v4, &on, udp)),
            Some(BaStatus::McoaMalformed)
        );
        // Over a plain binding: only with O, and never in a de-registration.
        let plain = BuContext {
            plain_binding: true,
            ..cx()
        };
        assert_eq!(
            status(bu_level_check(&two, &on, plain)),
            Some(BaStatus::McoaNonMcoaBindingExists)
        );
        let plain_o = BuContext {
            overwrite: true,
            ..plain
        };
        assert_eq!(status(bu_level_check(&two, &on, plain_o)), None);
        let plain_dereg = BuContext {
            deregistration: true,
            ..plain_o
        };
        assert_eq!(
            status(bu_level_check(&two, &on, plain_dereg)),
            Some(BaStatus::McoaNonMcoaBindingExists)
        );
    }

    fn reg() -> BidOp {
        BidOp::Register {
            coa: CareOf::V6("2001:db8:a::5".parse().unwrap()),
            nat_detected: false,
            v4_coa_option: None,
        }
    }

    #[test]
    fn bid_limit_counts_what_the_home_address_would_hold() {
        // Holds 1 and 2; max 3: a refresh of 2 and new 3 pass, new 4 does not.
        let mut ops = vec![(2, reg()), (3, reg()), (4, reg())];
        assert_eq!(limit_bids(&mut ops, &[1, 2], 3), 1);
        assert_eq!(ops[2].1, BidOp::Refused(BaStatus::InsufficientResources));
        assert_eq!(ops[1].1, reg());
        // Removing 1 in the same BU makes room.
        let mut ops = vec![(1, BidOp::Deregister), (3, reg()), (4, reg())];
        assert_eq!(limit_bids(&mut ops, &[1, 2], 3), 0);
        // Already refused BIDs take no room.
        let mut ops = vec![(5, BidOp::Refused(BaStatus::McoaMalformed)), (6, reg())];
        assert_eq!(limit_bids(&mut ops, &[], 1), 0);
    }

    #[test]
    fn ba_status_from_the_bids() {
        let refused = BidOp::Refused(BaStatus::McoaUnknownCoa);
        assert_eq!(ba_status(&[(1, reg()), (2, reg())]), BaStatus::Accepted);
        assert_eq!(
            ba_status(&[(1, reg()), (2, refused)]),
            BaStatus::McoaNotComplete
        );
        assert_eq!(
            ba_status(&[(1, BidOp::Deregister), (2, refused)]),
            BaStatus::McoaNotComplete
        );
        assert_eq!(
            ba_status(&[(1, refused), (2, BidOp::Refused(BaStatus::McoaMalformed))]),
            BaStatus::McoaUnknownCoa
        );
    }
}
