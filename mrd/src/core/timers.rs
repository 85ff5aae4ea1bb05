//! Timers: retransmission with exponential back-off (RFC 6275 §11.8), refresh before the
//! granted lifetime ends, expiry, and the IPv4 fallback of docs/notes.md §6.

use super::*;

/// MAX_UPDATE_RATE (RFC 6275 §11.8): at most N BUs in any one second, whichever
/// transaction sends them. `Some(t)`: the next BU must wait until `t`.
pub(super) fn update_rate_wait(
    send_log: &mut VecDeque<Instant>,
    cfg: &MrCoreConfig,
    now: Instant,
) -> Option<Instant> {
    let rate = cfg.max_update_rate as usize;
    while send_log.len() > rate {
        send_log.pop_front();
    }
    if send_log.len() < rate {
        return None;
    }
    let allowed = send_log[0] + Duration::from_secs(1);
    (now < allowed).then(|| {
        debug!(
            delay_ms = (allowed - now).as_millis() as u64,
            "BU delayed by MAX_UPDATE_RATE"
        );
        allowed
    })
}

impl MrCore {
    /// Timers fired.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive(now);
    }

    /// The next instant at which [`MrCore::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |i: Instant| t = Some(t.map_or(i, |t| t.min(i)));
        if let Some(p) = &self.bul.primary.pending {
            at(p.next_tx);
        }
        if let Some(d) = &self.discovery {
            at(d.next_tx);
        }
        if let Some(s) = &self.solicitation {
            at(s.next_tx);
        }
        if let Some(t) = self.solicit_at {
            at(t);
        }
        if let Some(r) = &self.bul.primary.registered {
            at(r.expires_at);
            if self.bul.primary.pending.is_none() && self.bul.primary.stopped.is_none() {
                at(r.refresh_at);
            }
        }
        if let Some(i) = self.individual_timeout() {
            at(i);
        }
        t
    }

    /// Runs every timer that is due at `now`: the uplinks' bindings that went (their
    /// removal may need a primary BU), the primary registration's, then the uplinks' own
    /// registrations (`individual`), which wait for it.
    pub(super) fn drive(&mut self, now: Instant) {
        self.withdraw_individual(now);
        self.drive_primary(now);
        self.drive_individual(now);
    }

    fn drive_primary(&mut self, now: Instant) {
        self.drive_discovery(now);
        self.drive_solicitation(now);
        if let Some(r) = &self.bul.primary.registered {
            if now >= r.expires_at {
                // No acknowledged refresh in time: the HA has dropped the binding.
                warn!(coa = %r.coa, "binding lifetime expired before a refresh was acknowledged");
                let (coa, ifx) = (r.coa, r.coa_ifindex);
                self.bul.primary.registered = None;
                // An optimistic entry for a newer CoA stays until its own BA decides.
                if !self.bul.primary.announced_optimistic {
                    self.withdraw_plain();
                }
                self.withdraw_bids(|e| !e.announced_optimistic);
                match &mut self.bul.primary.pending {
                    Some(p) if p.kind == BuKind::Deregister => {
                        // Nothing left to deregister.
                        self.bul.primary.pending = None;
                    }
                    Some(_) => {}
                    None if self.bul.primary.stopped.is_none() => {
                        self.bul.primary.pending =
                            Some(self.new_pending(now, BuKind::Register, false, coa, ifx));
                    }
                    None => {}
                }
            } else if now >= r.refresh_at
                && self.bul.primary.pending.is_none()
                && self.bul.primary.stopped.is_none()
            {
                debug!(coa = %r.coa, "refreshing the home registration");
                let (coa, ifx) = (r.coa, r.coa_ifindex);
                self.bul.primary.pending =
                    Some(self.new_pending(now, BuKind::Register, false, coa, ifx));
            }
        }
        let Some(p) = &mut self.bul.primary.pending else {
            return;
        };
        if now < p.next_tx {
            return;
        }
        if p.kind == BuKind::Deregister && p.transmissions >= self.cfg.dereg_max_transmissions {
            warn!(hoa = %self.cfg.home_address, attempts = p.transmissions,
                "deregistration not acknowledged; giving up (the binding will expire)");
            let next = p.then_next_home_agent.then_some((p.coa, p.coa_ifindex));
            self.bul.primary.pending = None;
            self.bul.primary.registered = None;
            self.withdraw();
            if let Some((coa, ifindex)) = next {
                // Its BU leaves at the next timeout, which is now.
                self.try_next_home_agent(now, coa, ifindex);
            }
            return;
        }
        if let Some(allowed) = update_rate_wait(&mut self.send_log, &self.cfg, now) {
            p.next_tx = allowed;
            return;
        }
        // docs/notes.md §6: an IPv6 registration unanswered after 3 BUs in total falls
        // back to the IPv4 CoA offered beside it.
        if p.kind == BuKind::Register
            && !p.at_home
            && coa_v4(&p.coa).is_none()
            && p.transmissions >= V4_FALLBACK_ATTEMPTS
            && self.cfg.home_agent_v4.is_some()
            && let Some((addr, ifindex)) = self.bul.primary.alt_v4.take()
        {
            warn!(coa = %p.coa, attempts = p.transmissions, v4_coa = %addr,
                "no BA to the IPv6 registration; falling back to the IPv4 care-of address");
            self.bul.primary.pending = Some(self.new_pending(
                now,
                BuKind::Register,
                false,
                addr.to_ipv6_mapped(),
                ifindex,
            ));
        }
        self.send_bu(now);
    }

    /// RFC 6275 §11.8 retransmission timeout after the `n`-th BU of a transaction: the
    /// first one waits InitialBindackTimeoutFirstReg for a first registration (the HA runs
    /// DAD before answering) or INITIAL_BINDACK_TIMEOUT, and the timeout doubles with each
    /// retransmission up to MAX_BINDACK_TIMEOUT: 1.5-3-6-12-24-32-32 s for a first
    /// registration, 1-2-4-…-32-32 s otherwise.
    pub fn retransmission_timeout(
        cfg: &MrCoreConfig,
        n: u32,
        first_registration: bool,
    ) -> Duration {
        let base = if first_registration {
            cfg.initial_bindack_timeout_first_reg
        } else {
            cfg.initial_bindack_timeout
        };
        let doublings = n.saturating_sub(1).min(31);
        base.checked_mul(1u32 << doublings)
            .unwrap_or(cfg.max_bindack_timeout)
            .min(cfg.max_bindack_timeout)
    }
}
