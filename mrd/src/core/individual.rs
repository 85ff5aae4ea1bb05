//! Individual registrations (RFC 5648 §5.3, §8.1): uplinks that register by a Binding
//! Update of their own, one Binding Identifier option each, beside the primary
//! registration (`mcoa`).
//!
//! Which uplinks: the IPv4 care-of addresses beside a bulk registration (a BU in UDP/IPv4
//! from each, so the home agent learns the path and any NAT in front of it), and every
//! uplink but the care-of address in use when the primary BU lists that one alone (it is
//! an IPv4 one itself, or the home agent refused bulk registrations with 168).
//!
//! Each such uplink's Binding Update List entry runs a transaction of its own: sent from
//! its care-of address through its interface (in UDP/IPv4 to the home agent's IPv4
//! address for an IPv4 one), retransmitted with the back-off of RFC 6275 §11.8, refreshed
//! before its lifetime ends and, behind a NAT, at the keepalive interval of its BA (RFC
//! 5555 §4.4.2: the BU is the keepalive). They share the home agent's sequence number
//! space with the primary (RFC 5648 §4.3) and MAX_UPDATE_RATE; they run only while the
//! primary holds a binding with binding identifiers. A new registration waits while a
//! primary BU with the O flag is outstanding, which would remove it (such a BU cancels
//! the new ones; they start again after its BA); refreshes go on, since it lists what
//! they hold; a de-registration or a plain BU cancels them all. Each BU lists the prefixes as the
//! primary's do (the home agent keeps what a BU lists, RFC 3963 §5.2) and refreshes the
//! flow bindings held by their FIDs (RFC 6089 §5.2: what a BU does not mention goes).
//!
//! A refused uplink is not asked for again until the next primary BA. An uplink that goes
//! or changes address is withdrawn from the data plane at once; at the home agent, a bulk
//! registration's O flag removes it (one is sent at once), else its lifetime ends it.

use super::ba::{Authentic, Grant};
use super::bu::{
    bid_option, book_sent, bu_addressing, flags_for, prefix_options, registration_lifetime,
    security_options, signed_mh,
};
use super::mcoa::bid_status;
use super::timers::update_rate_wait;
use super::*;

impl MrCore {
    /// The binding identifiers the primary registration carries (none without one).
    fn primary_bids(&self) -> Vec<u16> {
        self.bul
            .primary
            .registered
            .as_ref()
            .map(|r| r.bids.iter().map(|b| b.bid).collect())
            .unwrap_or_default()
    }

    /// The binding identifiers the home agent holds by the uplinks' own registrations.
    pub(super) fn individually_registered(&self) -> Vec<u16> {
        let carried = self.primary_bids();
        let ha = self.bul.primary.home_agent;
        self.bul
            .others
            .iter()
            .filter(|e| e.home_agent == ha && e.registered.is_some())
            .filter_map(|e| e.binding_id)
            .filter(|b| !carried.contains(b))
            .collect()
    }

    /// What the uplinks' own registrations may do, by the primary's state: `None`
    /// nothing (no binding with binding identifiers, or a de-registration outstanding);
    /// `Some(false)` refresh what they hold (a primary BU with the O flag outstanding, or
    /// not sent yet, would remove what they newly register); `Some(true)` anything.
    fn individual_allowed(&self) -> Option<bool> {
        let e = &self.bul.primary;
        if !self.cfg.multiple_coa
            || e.mcoa == McoaSupport::Unsupported
            || e.stopped.is_some()
            || e.registered.as_ref().is_none_or(|r| r.bids.is_empty())
        {
            return None;
        }
        match &e.pending {
            None => Some(true),
            Some(p) if p.kind == BuKind::Deregister || p.bids.is_empty() => None,
            Some(p) => Some(p.transmissions > 0 && !p.overwrite),
        }
    }

    /// The uplinks that register by BUs of their own.
    fn individual_uplinks(&self) -> Vec<BidCoa> {
        let Some(r) = &self.bul.primary.registered else {
            return Vec::new();
        };
        let single = self.single_bid(&r.coa);
        self.uplinks
            .iter()
            .filter(|u| !r.bids.iter().any(|b| b.bid == u.bid))
            .filter(|u| single || coa_v4(&u.coa).is_some())
            .copied()
            .collect()
    }

    /// The uplinks' own registrations: each uplink's transaction starts, retransmits or
    /// refreshes as due.
    pub(super) fn drive_individual(&mut self, now: Instant) {
        let Some(new_allowed) = self.individual_allowed() else {
            return;
        };
        for u in self.individual_uplinks() {
            if self.individual_refused.contains(&(u.bid, u.coa)) {
                continue;
            }
            let refresh = self
                .bul
                .bid_entry_mut(u.bid)
                .and_then(|e| e.registered.as_ref())
                .is_some_and(|r| r.coa == u.coa);
            if !refresh && !new_allowed {
                continue;
            }
            let first = self
                .bul
                .bid_entry_mut(u.bid)
                .is_none_or(|e| e.registered.is_none());
            let mut fresh = self.new_pending(now, BuKind::Register, false, u.coa, u.ifindex);
            fresh.bids = vec![u];
            fresh.first_registration = first;
            let e = self.bid_entry(u.bid);
            let due = match (&e.pending, &e.registered) {
                (Some(p), _) if p.coa == u.coa => false,
                (_, Some(r)) if r.coa == u.coa => now >= r.refresh_at,
                _ => true,
            };
            if due {
                debug!(bid = u.bid, coa = %u.coa, refresh = !first,
                    "registration of an uplink by a Binding Update of its own");
                e.pending = Some(fresh);
            }
            self.send_individual(now, u.bid);
        }
    }

    /// Withdraws the uplinks' own bindings that expired, or whose uplink went or changed
    /// address; with a bulk registration, its O flag then removes them at the home agent.
    pub(super) fn withdraw_individual(&mut self, now: Instant) {
        let carried = self.primary_bids();
        let ha = self.bul.primary.home_agent;
        let uplinks = self.uplinks.clone();
        let mut gone_registered = false;
        let gone = |e: &BulEntry| {
            let Some(bid) = e
                .binding_id
                .filter(|b| e.home_agent == ha && !carried.contains(b))
            else {
                return false;
            };
            let coa = match (&e.registered, &e.pending) {
                (Some(r), _) => r.coa,
                (None, Some(p)) => p.coa,
                (None, None) => return false,
            };
            let expired = e.registered.as_ref().is_some_and(|r| now >= r.expires_at);
            expired || !uplinks.iter().any(|u| u.bid == bid && u.coa == coa)
        };
        for e in self.bul.others.iter().filter(|e| gone(e)) {
            if let Some(r) = &e.registered {
                gone_registered = true;
                if now >= r.expires_at {
                    warn!(bid = ?e.binding_id, coa = %r.coa,
                        "an uplink's binding expired before a refresh was acknowledged");
                } else {
                    info!(bid = ?e.binding_id, coa = %r.coa, "uplink gone: its binding withdrawn");
                }
            }
        }
        self.withdraw_bids(gone);
        let bulk = self
            .bul
            .primary
            .registered
            .as_ref()
            .filter(|r| !r.bids.is_empty() && !self.single_bid(&r.coa))
            .map(|r| (r.coa, r.coa_ifindex));
        if gone_registered
            && self.bul.primary.pending.is_none()
            && self.bul.primary.stopped.is_none()
            && let Some((coa, ifindex)) = bulk
        {
            // The O flag of a bulk registration without it removes it at the home agent.
            self.bul.primary.pending =
                Some(self.new_pending(now, BuKind::Register, false, coa, ifindex));
        }
    }

    /// Ends the uplinks' transactions outstanding when a primary BU leaves that removes
    /// what they would register: `all` (a de-registration, a plain BU: every binding goes
    /// at the home agent), else the new registrations only (a BU with the O flag keeps
    /// the bindings it lists, which the refreshes are). Their BAs, if any come, are
    /// dropped, and they start again after the primary's BA.
    pub(super) fn cancel_individual(&mut self, all: bool) {
        for e in &mut self.bul.others {
            let refresh = match (&e.registered, &e.pending) {
                (Some(r), Some(p)) => r.coa == p.coa,
                _ => false,
            };
            if all || !refresh {
                e.pending = None;
            }
        }
    }

    /// Sends the next BU of every uplink transaction at once, with a fresh back-off.
    fn restart_individual(&mut self, now: Instant) {
        for p in self
            .bul
            .others
            .iter_mut()
            .filter_map(|e| e.pending.as_mut())
        {
            p.transmissions = 0;
            p.next_tx = now;
        }
    }

    /// When the uplinks' registrations next need [`MrCore::handle_timeout`].
    pub(super) fn individual_timeout(&self) -> Option<Instant> {
        let carried = self.primary_bids();
        let allowed = self.individual_allowed();
        let ha = self.bul.primary.home_agent;
        self.bul
            .others
            .iter()
            .filter(|e| e.home_agent == ha && e.binding_id.is_some_and(|b| !carried.contains(&b)))
            .flat_map(|e| {
                let r = e.registered.as_ref();
                let runs = |p: &Pending| {
                    allowed.is_some_and(|new| new || r.is_some_and(|r| r.coa == p.coa))
                };
                [
                    r.map(|r| r.expires_at),
                    r.filter(|_| allowed.is_some() && e.pending.is_none())
                        .map(|r| r.refresh_at),
                    e.pending.as_ref().filter(|p| runs(p)).map(|p| p.next_tx),
                ]
            })
            .flatten()
            .min()
    }

    /// The BU of uplink `bid`'s transaction, when due.
    fn send_individual(&mut self, now: Instant, bid: u16) {
        let Some(p) = self.bul.bid_entry_mut(bid).and_then(|e| e.pending.as_mut()) else {
            return;
        };
        if now < p.next_tx {
            return;
        }
        if let Some(allowed) = update_rate_wait(&mut self.send_log, &self.cfg, now) {
            p.next_tx = allowed;
            return;
        }
        let (coa, ifindex) = (p.coa, p.coa_ifindex);
        let v4 = coa_v4(&coa);
        let ha_v4 = self.cfg.home_agent_v4;
        if v4.is_some() && ha_v4.is_none() {
            return;
        }
        let ts = match &self.cfg.security {
            Some(sa) if sa.timestamps() => Some(self.next_timestamp(now)),
            _ => None,
        };
        let prefix_left = self.home_prefix_valid_left(now);
        let send_v4 = self.sends_ipv4_mnps();
        let flows = flows::FlowsSent {
            identified: Vec::new(),
            summarised: match self.bul.primary.flow_support {
                FlowSupport::Unsupported => Vec::new(),
                _ => self.bul.primary.flows_accepted.clone(),
            },
        };
        let fids = flows.summary_fids();
        let seq = self.bul.primary.last_seq.next();
        let cfg = &self.cfg;
        let hoa = cfg.home_address;
        let mut options: Vec<MobilityOption<'_>> = Vec::new();
        if v4.is_none() {
            // RFC 6275 §11.7.1: mandatory in home registrations from a care-of address.
            options.push(MobilityOption::AlternateCareOfAddress(coa));
        }
        // RFC 5648 §8.1: from an IPv4 care-of address, its Binding Identifier option holds
        // it, and no IPv4 Care-of Address option goes beside.
        options.push(bid_option(
            &BidCoa { bid, coa, ifindex },
            cfg.bid_priority(bid),
        ));
        let v4_sent = prefix_options(cfg, send_v4, &mut options);
        options.extend(flows::flow_options(&flows, &[], &fids));
        security_options(cfg, ts, &mut options);
        let lifetime = registration_lifetime(cfg, prefix_left);
        let repr = MhRepr::BindingUpdate(BindingUpdate {
            sequence: seq,
            flags: flags_for(cfg, v4.is_some()),
            lifetime,
            options,
        });
        let Some(mh) = signed_mh(&repr, self.mn_ha_key.as_ref(), &coa, &hoa) else {
            return;
        };
        let ha = self.bul.primary.home_agent;
        let (addressing, udp_v4) = bu_addressing(cfg, ha, &coa, v4.is_some(), false);
        let Some(p) = self.bul.bid_entry_mut(bid).and_then(|e| e.pending.as_mut()) else {
            return;
        };
        book_sent(&self.cfg, &mut self.stats, p, now, seq, ts);
        p.v4_sent = v4_sent;
        p.flows_sent = flows;
        debug!(seq = %seq, bid, %coa, attempt = p.transmissions,
            next_ms = (p.next_tx - now).as_millis() as u64, "uplink's Binding Update sent");
        self.bul.primary.last_seq = seq;
        self.send_log.push_back(now);
        self.transmits.push_back(Transmit {
            addressing,
            mh,
            sequence: seq,
            lifetime,
            kind: BuKind::Register,
            udp_v4,
            udp_from: udp_v4.and(v4),
            ifindex,
        });
    }

    /// A BA to one of the uplinks' own BUs; `false` when it answers none of them.
    pub(super) fn individual_ba(&mut self, now: Instant, ba: &BindingAck<'_>, mh: &[u8]) -> bool {
        let resync = ba.status == BaStatus::SequenceNumberOutOfWindow;
        let ha = self.bul.primary.home_agent;
        let Some(p) = self
            .bul
            .others
            .iter()
            .filter(|e| e.home_agent == ha)
            .filter_map(|e| e.pending.as_ref())
            .find(|p| p.transmissions > 0 && (resync || p.sequence == ba.sequence))
            .cloned()
        else {
            return false;
        };
        let Some(&uplink) = p.bids.first() else {
            return false;
        };
        let bid = uplink.bid;
        let code = u8::from(ba.status);
        match self.ba_authentic(ba, mh, &p) {
            Authentic::No => return true,
            Authentic::ClockResync(ts) => {
                self.adjust_clock(ts, p.timestamp, code);
                self.restart_individual(now);
                return true;
            }
            Authentic::Yes => {}
        }
        if resync {
            // Several transactions share one sequence number space: only a later number
            // moves ours.
            if ba.sequence.is_newer_than(self.bul.primary.last_seq) {
                self.bul.primary.last_seq = ba.sequence;
            }
            info!(ba_seq = %ba.sequence, bid, "sequence number resynchronised; uplinks' Binding Updates sent again");
            self.restart_individual(now);
            return true;
        }
        if let Some(e) = self.bul.bid_entry_mut(bid) {
            e.pending = None;
        }
        let status = bid_status(ba, bid).unwrap_or(ba.status);
        if !ba.status.is_accepted() || !status.is_accepted() || ba.lifetime.is_zero() {
            let (name, rfc) = status.meaning();
            self.stats.refused += 1;
            self.stats.last_refusal = Some(u8::from(status));
            warn!(bid, coa = %p.coa, status = u8::from(status), meaning = name, rfc,
                "the home agent refuses this uplink's care-of address; asked again after the \
                 next home registration");
            self.individual_refused.push((bid, p.coa));
            self.withdraw_bids(|e| e.binding_id == Some(bid));
            return true;
        }
        self.stats.registrations += 1;
        let Grant {
            granted,
            expires_at,
            refresh_at,
            v4,
        } = self.grant(now, ba, &p);
        let (udp, nat) = v4.map_or((false, false), |(udp, nat, _)| (udp, nat));
        self.flows_answered(ba, &p.flows_sent);
        // The prefixes are the home address's, as the primary registration got them.
        let mnp_v4 = self
            .bul
            .entries()
            .filter(|e| e.binding_id != Some(bid))
            .find_map(|e| e.announced.as_ref())
            .map(|b| b.mnp_v4.clone())
            .unwrap_or_default();
        let ipv4 = if p.v4_sent.is_empty() {
            Ipv4MnpOutcome::NotRequested
        } else {
            Ipv4MnpOutcome::Acknowledged {
                rejected: Vec::new(),
            }
        };
        let mut binding = self.binding_for(
            p.coa,
            p.coa_ifindex,
            mnp_v4,
            granted.as_secs(),
            Some((udp, nat)),
        );
        binding.binding_id = Some(bid);
        binding.bid_priority = self.cfg.bid_priority(bid);
        binding.flows = self.bul.primary.flows_accepted.clone();
        info!(hoa = %binding.hoa, bid, coa = %p.coa, seq = %ba.sequence, lifetime = granted.as_secs(),
            udp, nat, "uplink registered by its own Binding Update");
        let e = self.bid_entry(bid);
        e.registered = Some(Registered {
            coa: p.coa,
            coa_ifindex: p.coa_ifindex,
            granted,
            expires_at,
            refresh_at,
            bids: Vec::new(),
        });
        e.announced = Some(binding.clone());
        e.announced_optimistic = false;
        self.events.push_back(MrEvent::BulAdd {
            binding,
            optimistic: false,
            ipv4,
        });
        // A flow binding through this uplink reaches the home agent with a primary BU
        // (RFC 6089 §5.2.2.1: its BIDs must be registered first): the next one, now.
        let wanted = self.cfg.flow_bindings.iter().any(|f| f.bids.contains(&bid))
            && !self
                .bul
                .primary
                .flows_accepted
                .iter()
                .any(|f| f.bids.contains(&bid))
            && self.bul.primary.flow_support != FlowSupport::Unsupported;
        if wanted
            && self.bul.primary.pending.is_none()
            && let Some(r) = &self.bul.primary.registered
        {
            let (coa, ifindex) = (r.coa, r.coa_ifindex);
            self.bul.primary.pending =
                Some(self.new_pending(now, BuKind::Register, false, coa, ifindex));
        }
        true
    }
}
