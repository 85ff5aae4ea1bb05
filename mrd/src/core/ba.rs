//! Binding Acknowledgement processing (RFC 6275 §11.7.3; RFC 3963 §5.3; RFC 5555 §4.4.2,
//! §4.1 NAT detection; RFC 4285 §6 timestamps; RFC 5648 per-binding statuses, `mcoa`):
//! what an accepted or refused BA does to the Binding Update List, and what the data
//! plane is told.

use super::*;

/// Whether a BA may be acted on (RFC 4285 §8).
pub(super) enum Authentic {
    /// Authenticated (or no SA).
    Yes,
    /// Dropped: no valid authenticator, or not our timestamp.
    No,
    /// A 144 echoing our timestamp: the home agent's clock, to resynchronise with.
    ClockResync(NtpTimestamp),
}

/// What a BA grants.
pub(super) struct Grant {
    pub(super) granted: Lifetime,
    pub(super) expires_at: Instant,
    pub(super) refresh_at: Instant,
    /// For a BU from an IPv4 care-of address, what the BA's NAT detection decides
    /// (`nat_decision`: UDP, a NAT seen, the keepalive period); `refresh_at` already
    /// keeps the keepalive.
    pub(super) v4: Option<(bool, bool, Option<Duration>)>,
}

impl MrCore {
    pub(super) fn process_ba(&mut self, now: Instant, ba: &BindingAck<'_>, mh: &[u8]) {
        let resync = ba.status == BaStatus::SequenceNumberOutOfWindow;
        // RFC 6275 §11.7.3: the sequence must match the outstanding BU, except in a 135
        // which carries the HA's last accepted sequence number.
        let Some(p) = self
            .bul
            .primary
            .pending
            .as_ref()
            .filter(|p| p.transmissions > 0 && (resync || ba.sequence == p.sequence))
        else {
            // Not the primary's: one of the uplinks' own registrations, if anything.
            if !self.individual_ba(now, ba, mh) {
                debug!(seq = %ba.sequence, "BA does not match an outstanding BU; dropped");
            }
            return;
        };
        let ts_resync = match self.ba_authentic(ba, mh, p) {
            Authentic::No => return,
            Authentic::Yes => None,
            Authentic::ClockResync(ts) => Some(ts),
        };
        let (name, rfc) = ba.status.meaning();
        let code = u8::from(ba.status);
        if resync {
            info!(ba_seq = %ba.sequence, our_seq = %p.sequence, status = code, meaning = name, rfc,
                "sequence number resynchronised; sending the next one");
            // RFC 6275 §11.7.3: go on from the home agent's number; but while the
            // uplinks' own BUs are outstanding, which share it, only a later one moves
            // ours (they may have taken numbers beyond it already).
            let others_outstanding = self.bul.others.iter().any(|e| e.pending.is_some());
            if !others_outstanding || ba.sequence.is_newer_than(self.bul.primary.last_seq) {
                self.bul.primary.last_seq = ba.sequence;
            }
            self.restart_transaction(now);
            return;
        }
        if let Some(ha_ts) = ts_resync {
            let ours = p.timestamp;
            self.adjust_clock(ha_ts, ours, code);
            self.restart_transaction(now);
            return;
        }
        if !p.bids.is_empty() && (164..=169).contains(&code) {
            let listed = p.bids.len() + p.kept.len();
            self.bulk_refused(now, ba.status, listed);
        } else if ba.status.is_accepted() {
            self.accepted(now, ba);
        } else {
            self.refused(now, ba.status);
        }
    }

    /// RFC 4285 §8: with an SA, only a BA with a valid MN-HA authenticator over the
    /// care-of address of `p` counts, and with timestamps it must echo the BU's (a 144
    /// echoes only the low 32 bits, the high ones being the home agent's clock: §6).
    pub(super) fn ba_authentic(&self, ba: &BindingAck<'_>, mh: &[u8], p: &Pending) -> Authentic {
        let Some(sa) = &self.cfg.security else {
            return Authentic::Yes;
        };
        let hoa = self.cfg.home_address;
        let auth_ok = ba.options.last().is_some_and(|o| {
            matches!(o, MobilityOption::Authentication { subtype, spi, .. }
                if *subtype == AUTH_SUBTYPE_MN_HA && *spi == sa.spi)
        }) && self
            .mn_ha_key
            .as_ref()
            .is_some_and(|k| k.verify(mh, IpAddr::V6(p.coa), &hoa).unwrap_or(false));
        if !auth_ok {
            warn!(seq = %ba.sequence, status = u8::from(ba.status),
                "BA without a valid MN-HA authenticator dropped");
            return Authentic::No;
        }
        if !sa.timestamps() {
            return Authentic::Yes;
        }
        let echoed = ba.options.iter().find_map(|o| match o {
            MobilityOption::ReplayProtection { timestamp } => Some(*timestamp),
            _ => None,
        });
        match (ba.status, echoed, p.timestamp.map(|t| t.0)) {
            (BaStatus::Mipv6IdMismatch, Some(e), Some(s)) if e as u32 == s as u32 => {
                Authentic::ClockResync(NtpTimestamp(e))
            }
            (_, Some(e), Some(s)) if e == s => Authentic::Yes,
            _ => {
                warn!(seq = %ba.sequence,
                    "BA does not echo our replay-protection timestamp; dropped");
                Authentic::No
            }
        }
    }

    /// A 144 echoing our timestamp with the home agent's seconds: our clock's offset to
    /// it (RFC 4285 §6).
    pub(super) fn adjust_clock(
        &mut self,
        ha_ts: NtpTimestamp,
        ours: Option<NtpTimestamp>,
        code: u8,
    ) {
        let ours = ours.map_or(0, |t| t.seconds());
        let delta = i64::from(ha_ts.seconds().wrapping_sub(ours) as i32);
        self.clock_offset_secs += delta;
        let (name, rfc) = BaStatus::from(code).meaning();
        info!(
            offset_secs = self.clock_offset_secs,
            status = code,
            meaning = name,
            rfc,
            "replay-protection timestamp refused; clock offset to the HA adjusted"
        );
    }

    /// The lifetime a BA grants to the BU of `p` (never more than asked), when it ends
    /// (counted from when the BU left: docs/notes.md §5) and when to refresh it (the
    /// refresh margin, or a shorter Binding Refresh Advice, RFC 6275 §6.2.4; from an IPv4
    /// care-of address, the NAT keepalive: RFC 5555 §4.4.2, docs/notes.md §6, the re-sent
    /// BU is the keepalive).
    pub(super) fn grant(&self, now: Instant, ba: &BindingAck<'_>, p: &Pending) -> Grant {
        let requested = self.cfg.lifetime;
        let granted = ba.lifetime.min(requested);
        if granted < requested {
            info!(requested = %requested, granted = %granted, "home agent granted a shorter lifetime");
        }
        let sent = p.last_sent.unwrap_or(now);
        let life = granted.as_duration();
        let expires_at = sent + life;
        let margin = self.cfg.refresh_margin.min(life / 2);
        let mut refresh_at = expires_at - margin;
        if let Some(bra) = ba.options.iter().find_map(|o| match o {
            MobilityOption::BindingRefreshAdvice { refresh_interval } => Some(*refresh_interval),
            _ => None,
        }) {
            // RFC 6275 §6.2.4: only meaningful when shorter than the lifetime.
            if !bra.is_zero() && bra < granted {
                refresh_at = refresh_at.min(sent + bra.as_duration());
                debug!(refresh_interval = %bra, "Binding Refresh Advice");
            }
        }
        let v4 = coa_v4(&p.coa).map(|_| self.nat_decision(ba));
        if let Some((_, _, Some(k))) = v4 {
            refresh_at = refresh_at.min(sent + k);
        }
        Grant {
            granted,
            expires_at,
            refresh_at,
            v4,
        }
    }

    /// Sends the next BU of the transaction at once, with a fresh back-off.
    pub(super) fn restart_transaction(&mut self, now: Instant) {
        if let Some(p) = &mut self.bul.primary.pending {
            p.transmissions = 0;
            p.next_tx = now;
        }
    }

    pub(super) fn accepted(&mut self, now: Instant, ba: &BindingAck<'_>) {
        let Some(p) = self.bul.primary.pending.take() else {
            return;
        };
        let (name, rfc) = ba.status.meaning();
        if p.kind == BuKind::Deregister {
            self.stats.deregistrations += 1;
            info!(hoa = %self.cfg.home_address, seq = %ba.sequence, "deregistration acknowledged");
            self.bul.primary.registered = None;
            // The binding's flow bindings went with it.
            self.bul.primary.flows_accepted.clear();
            self.withdraw();
            if p.at_home {
                self.events.push_back(MrEvent::HomeAdvertise {
                    hoa: self.cfg.home_address,
                });
            }
            self.register_after_type_change(now, &p);
            return;
        }
        self.stats.registrations += 1;
        if self.switch_away_from.take().is_some() {
            info!(ha = %self.bul.primary.home_agent, "Home Agent Switch complete");
        }
        self.stats.last_registration_us =
            u64::try_from(now.saturating_duration_since(p.started).as_micros()).unwrap_or(u64::MAX);
        if ba.status != BaStatus::Accepted {
            // 1: prefix discovery necessary (RFC 6275 §11.4.3); Mobile Prefix
            // Solicitation is not done by this core.
            info!(
                status = u8::from(ba.status),
                meaning = name,
                rfc,
                "BA accepted with a note"
            );
        }
        if self.cfg.mobile_router && !ba.flags.mobile_router() {
            // RFC 3963 §5.3: the HA does not support NEMO; deregister, then stop, or
            // (§7.1) try the next home agent discovery listed.
            let next = self.discovers_home_agent() && !self.ha_candidates.is_empty();
            if next {
                warn!(ha = %self.bul.primary.home_agent,
                    "home agent accepted the BU without R: it does not do NEMO; deregistering, then the next discovered home agent");
            } else {
                error!(ha = %self.bul.primary.home_agent,
                    "home agent accepted the BU without R: it does not do NEMO; deregistering");
                self.bul.primary.stopped = Some(StopReason::NotNemoCapable);
                self.events.push_back(MrEvent::Stopped {
                    reason: StopReason::NotNemoCapable,
                });
            }
            self.withdraw();
            self.bul.primary.registered = None;
            let mut d = self.new_pending(now, BuKind::Deregister, false, p.coa, p.coa_ifindex);
            d.first_registration = false;
            d.then_next_home_agent = next;
            self.bul.primary.pending = Some(d);
            return;
        }
        if ba.lifetime.is_zero() {
            warn!(seq = %ba.sequence, "BA accepted with lifetime 0; retrying");
            self.bul.primary.pending = Some(p);
            return;
        }
        // docs/notes.md §5 / RFC 6275 §11.7.3: a shorter lifetime counts from when the BU
        // left.
        let Grant {
            granted,
            expires_at,
            refresh_at,
            v4,
        } = self.grant(now, ba, &p);
        let (udp, nat) = match v4 {
            Some((udp, nat, keepalive)) => {
                info!(
                    udp,
                    nat,
                    keepalive_s = keepalive.map(|k| k.as_secs()),
                    "IPv4 care-of address: NAT detection answered"
                );
                (udp, nat)
            }
            None => (false, false),
        };
        let (mnp_v4, ipv4) = self.ipv4_outcome(ba, &p);
        let bulk = !p.bids.is_empty() && self.bulk_answered(ba);
        let registered = Registered {
            coa: p.coa,
            coa_ifindex: p.coa_ifindex,
            granted,
            expires_at,
            refresh_at,
            bids: if bulk { p.bids.clone() } else { Vec::new() },
        };
        self.bul.primary.registered = Some(registered.clone());
        if bulk {
            self.flows_answered(ba, &p.flows_sent);
            self.announce_bulk(ba, &p, &registered, &mnp_v4, &ipv4, (udp, nat));
            if ba.status == BaStatus::AcceptedPrefixDiscoveryNecessary {
                self.solicit_prefixes(now, "BA status 1: prefix discovery necessary");
            }
            return;
        }
        let binding = self.binding_for(
            p.coa,
            p.coa_ifindex,
            mnp_v4,
            granted.as_secs(),
            Some((udp, nat)),
        );
        info!(hoa = %binding.hoa, coa = %p.coa, ha = %binding.ha, seq = %ba.sequence,
            lifetime = granted.as_secs(), mnp_v6 = ?binding.mnp_v6, mnp_v4 = ?binding.mnp_v4,
            "home registration acknowledged");
        self.announce(binding, false, ipv4);
        // A plain registration replaces every binding identifier's at the home agent, and
        // with them the flow bindings that went through them.
        self.withdraw_bids(|_| true);
        self.bul.primary.flows_accepted.clear();
        // RFC 6275 §11.4.2: status 1 asks for prefix discovery.
        if ba.status == BaStatus::AcceptedPrefixDiscoveryNecessary {
            self.solicit_prefixes(now, "BA status 1: prefix discovery necessary");
        }
    }

    /// The robust rule of docs/notes.md §6 for a BA to a BU from an IPv4 CoA: plain
    /// IP-in-IPv4 only when F = 0 and Refresh = 0xFFFFFFFF (and we did not force UDP),
    /// UDP otherwise; keepalives every Refresh seconds when it is finite and non-zero,
    /// NATKATIMEOUT when it is 0 or the option is missing, none when it is 0xFFFFFFFF, and
    /// never less often than the configured keepalive interval while UDP is used.
    /// Returns (udp, nat seen, keepalive period).
    pub(super) fn nat_decision(&self, ba: &BindingAck<'_>) -> (bool, bool, Option<Duration>) {
        let nat = ba.options.iter().find_map(|o| match o {
            MobilityOption::NatDetection { f, refresh_time } => Some((*f, *refresh_time)),
            _ => None,
        });
        let none = proto::option::NAT_REFRESH_NONE;
        let udp = self.cfg.force_udp || !matches!(nat, Some((false, r)) if r == none);
        let (nat_seen, period) = match nat {
            Some((_, r)) if r == none => (false, None),
            Some((_, 0)) | None => (nat.is_some(), Some(NAT_KEEPALIVE_TIMEOUT)),
            Some((_, r)) => (true, Some(Duration::from_secs(u64::from(r)))),
        };
        let period = match (udp, period, self.cfg.nat_keepalive_interval) {
            (false, _, _) => None,
            (true, Some(p), Some(c)) => Some(p.min(c)),
            (true, None, Some(c)) => Some(c),
            (true, p, None) => p,
        };
        (udp, nat_seen, period)
    }

    /// Tells the core the local address of the UDP socket DSMIPv6 signalling arrived on
    /// (nemonetd's, from `MhUdpIn.local`): its port goes into `CareOf::V4`.
    pub fn set_udp_local(&mut self, local: SocketAddrV4) {
        self.udp_local_port = Some(local.port());
    }

    /// Which IPv4 MNPs the HA acknowledged (RFC 5555 §3.2.1; docs/notes.md §6: one IPv4
    /// Address Acknowledgement per IPv4 HoA option, matched by address, else by order).
    pub(super) fn ipv4_outcome(
        &mut self,
        ba: &BindingAck<'_>,
        p: &Pending,
    ) -> (Vec<Ipv4Net>, Ipv4MnpOutcome) {
        if p.v4_sent.is_empty() {
            return (Vec::new(), Ipv4MnpOutcome::NotRequested);
        }
        let acks: Vec<(Ipv4AckStatus, u8, std::net::Ipv4Addr)> = ba
            .options
            .iter()
            .filter_map(|o| match o {
                MobilityOption::Ipv4AddressAck {
                    status,
                    prefix_len,
                    address,
                } => Some((*status, *prefix_len, *address)),
                _ => None,
            })
            .collect();
        if acks.is_empty() {
            if self.cfg.legacy_ipv4_mnp_option {
                // SHISA's HA answers its type-11 option with no status option at all: an
                // accepted BA is all we get (docs/notes.md §6).
                return (
                    p.v4_sent.clone(),
                    Ipv4MnpOutcome::Acknowledged { rejected: vec![] },
                );
            }
            if self.bul.primary.ipv4_support != Ipv4Support::Unsupported {
                warn!(ha = %self.bul.primary.home_agent, mnp_v4 = ?p.v4_sent,
                    "home agent sent no IPv4 Address Acknowledgement: it does not support \
                     IPv4 mobile network prefixes; carrying on with IPv6 only");
            }
            self.bul.primary.ipv4_support = Ipv4Support::Unsupported;
            return (Vec::new(), Ipv4MnpOutcome::HaUnsupported);
        }
        self.bul.primary.ipv4_support = Ipv4Support::Supported;
        let mut ok = Vec::new();
        let mut rejected = Vec::new();
        for (i, net) in p.v4_sent.iter().enumerate() {
            let ack = acks
                .iter()
                .find(|a| a.2 == net.network())
                .or_else(|| acks.get(i));
            match ack {
                Some((status, plen, _)) if status.is_success() => {
                    // The acknowledged length overrides the requested one (RFC 5555 §3.2.1).
                    let n = Ipv4Net::new(net.network(), *plen)
                        .ok()
                        .filter(|_| *plen != 0)
                        .map_or(*net, |n| n.trunc());
                    ok.push(n);
                }
                Some((status, _, _)) => {
                    let (name, rfc) = status.meaning();
                    warn!(prefix = %net, status = u8::from(*status), meaning = name, rfc,
                        "IPv4 mobile network prefix refused; left out");
                    rejected.push((*net, *status));
                }
                None => {
                    warn!(prefix = %net, "no IPv4 Address Acknowledgement for this prefix; left out");
                    rejected.push((*net, Ipv4AckStatus::ReasonUnspecified));
                }
            }
        }
        (ok, Ipv4MnpOutcome::Acknowledged { rejected })
    }

    /// After the de-registration a 139 asked for: the registration again, from where the
    /// refused one was sent.
    pub(super) fn register_after_type_change(&mut self, now: Instant, dereg: &Pending) {
        if dereg.then_next_home_agent {
            self.try_next_home_agent(now, dereg.coa, dereg.coa_ifindex);
            return;
        }
        if !dereg.then_register || self.bul.primary.stopped.is_some() {
            return;
        }
        info!(hoa = %self.cfg.home_address, coa = %dereg.coa,
            "old binding removed; registering again");
        let mut r = self.new_pending(now, BuKind::Register, false, dereg.coa, dereg.coa_ifindex);
        r.after_type_change = true;
        self.bul.primary.pending = Some(r);
    }

    pub(super) fn refused(&mut self, now: Instant, status: BaStatus) {
        let Some(p) = &self.bul.primary.pending else {
            return;
        };
        let (name, rfc) = status.meaning();
        let code = u8::from(status);
        self.stats.refused += 1;
        self.stats.last_refusal = Some(code);
        if p.kind == BuKind::Deregister && status == BaStatus::NotHomeAgentForThisMobileNode {
            // RFC 6275 §10.3.2: the HA holds no binding for us; nothing left to delete.
            info!(hoa = %self.cfg.home_address, status = code, meaning = name, rfc,
                "home agent has no binding to deregister");
            let p = self.bul.primary.pending.take().expect("checked above");
            self.bul.primary.registered = None;
            self.withdraw();
            if p.at_home {
                self.events.push_back(MrEvent::HomeAdvertise {
                    hoa: self.cfg.home_address,
                });
            }
            self.register_after_type_change(now, &p);
            return;
        }
        let timestamps = self.cfg.security.as_ref().is_some_and(|sa| sa.timestamps());
        let mut what = reaction(status, timestamps);
        if what == Reaction::DeregisterThenRegister && p.after_type_change {
            what = Reaction::Stop;
        }
        if p.kind == BuKind::Register && what == Reaction::DeregisterThenRegister {
            warn!(hoa = %self.cfg.home_address, ha = %self.bul.primary.home_agent, status = code,
                meaning = name, rfc,
                "the home agent holds a binding of another registration type for our home \
                 address: de-registering it, then registering again");
            let (coa, ifx, at_home) = (p.coa, p.coa_ifindex, p.at_home);
            self.withdraw_optimistic();
            let mut d = self.new_pending(now, BuKind::Deregister, at_home, coa, ifx);
            d.then_register = true;
            d.first_registration = false;
            self.bul.primary.pending = Some(d);
            return;
        }
        // RFC 6275 §11.4.1: a discovered home agent that will not serve us (its policy or
        // its resources) makes way for the next one listed rather than being retried.
        if p.kind == BuKind::Register
            && what == Reaction::Retry
            && matches!(
                status,
                BaStatus::AdministrativelyProhibited | BaStatus::InsufficientResources
            )
        {
            let (coa, ifindex) = (p.coa, p.coa_ifindex);
            if self.try_next_home_agent(now, coa, ifindex) {
                warn!(
                    status = code,
                    meaning = name,
                    rfc,
                    "home registration refused"
                );
                return;
            }
        }
        let Some(p) = &self.bul.primary.pending else {
            return;
        };
        if p.kind == BuKind::Register && what == Reaction::Stop {
            // RFC 3963 §7.1: a discovered home agent that will not take us: the next one.
            let (coa, ifindex) = (p.coa, p.coa_ifindex);
            self.withdraw_optimistic();
            if self.try_next_home_agent(now, coa, ifindex) {
                warn!(
                    status = code,
                    meaning = name,
                    rfc,
                    "home registration refused"
                );
                return;
            }
            error!(hoa = %self.cfg.home_address, ha = %self.bul.primary.home_agent, status = code,
                meaning = name, rfc, advice = advice(status),
                "home registration refused for good: no further Binding Update to this home \
                 agent until the configuration is reloaded (SIGHUP)");
            let reason = StopReason::Refused(status);
            self.bul.primary.stopped = Some(reason);
            self.bul.primary.pending = None;
            self.bul.primary.registered = None;
            self.withdraw();
            self.events.push_back(MrEvent::Stopped { reason });
            return;
        }
        warn!(hoa = %self.cfg.home_address, status = code, meaning = name, rfc,
            seq = %p.sequence, kind = ?p.kind, "Binding Update refused; retrying with back-off");
        // An optimistic announcement no longer holds (the HA refused it).
        self.withdraw_optimistic();
    }

    /// Emits BUL_REMOVE for whatever was announced: the plain binding and every binding
    /// identifier's.
    pub(super) fn withdraw(&mut self) {
        self.withdraw_plain();
        self.withdraw_bids(|_| true);
    }

    /// Emits BUL_REMOVE for the plain binding, if announced.
    pub(super) fn withdraw_plain(&mut self) {
        self.bul.primary.announced_optimistic = false;
        if let Some(mut b) = self.bul.primary.announced.take() {
            b.lifetime = 0;
            info!(hoa = %b.hoa, coa = %b.coa, "binding update list entry removed");
            self.events.push_back(MrEvent::BulRemove { binding: b });
        }
    }

    /// Emits BUL_REMOVE for what was announced optimistically (no BA confirmed it).
    pub(super) fn withdraw_optimistic(&mut self) {
        if self.bul.primary.announced_optimistic {
            self.withdraw_plain();
        }
        self.withdraw_bids(|e| e.announced_optimistic);
    }

    /// Emits BUL_REMOVE for a router back on its home link `ifindex`: CoA = HoA and the
    /// home link, whatever was announced (or, with nothing announced yet, the configured
    /// prefixes), so the data plane sets the router up at home (RFC 6275 §11.5.5).
    pub(super) fn withdraw_at_home(&mut self, ifindex: u32) {
        self.withdraw_bids(|_| true);
        self.bul.primary.announced_optimistic = false;
        let mnp_v4 = match self.bul.primary.announced.take() {
            Some(b) => b.mnp_v4,
            None => self.cfg.mnp_v4.clone(),
        };
        let hoa = self.cfg.home_address;
        let b = self.binding_for(hoa, ifindex, mnp_v4, 0, None);
        info!(%hoa, ifindex, "binding update list entry removed: at home");
        self.events.push_back(MrEvent::BulRemove { binding: b });
    }

    pub(super) fn announce(&mut self, binding: Binding, optimistic: bool, ipv4: Ipv4MnpOutcome) {
        self.bul.primary.announced = Some(binding.clone());
        self.bul.primary.announced_optimistic = optimistic;
        self.events.push_back(MrEvent::BulAdd {
            binding,
            optimistic,
            ipv4,
        });
    }
}
