//! Home Agent Switch, mobile router side (RFC 5142 §6): the home agent we are registered
//! with tells us to register with another one.
//!
//! Only a message that could come from that home agent is considered (`process_packet`
//! drops signalling from any other source), and only one carrying a valid MN-HA
//! authenticator for our mobility SA (RFC 4285) is acted on: the same protection as its
//! BAs (RFC 5142 §5.1), which is what keeps a stranger from moving the router away.
//! Without an SA there is nothing to check, and the message is ignored. With a timestamp
//! SA (RFC 4285 §6) the HAS must also carry a Mobility Message Replay Protection option
//! (covered by the authenticator) within the SA's window of our clock (the one synchronised
//! with the home agent's by its 144s) and later than the last HAS we took: a captured HAS
//! replayed later is dropped, where the authenticator alone would pass it for as long as
//! our care-of address stays the same.
//!
//! Acting on it: a de-registration with the current home agent (its binding and proxy
//! ND entry for our home address would otherwise stand in the new home agent's way: its
//! proxy DAD would find the address defended), then a registration with the first home
//! agent listed, the others kept for a refusal as after discovery (RFC 3963 §7.1). With
//! no usable address listed the router runs discovery (RFC 5142 §6.2), the old home
//! agent left out of its answer.

use super::*;

impl MrCore {
    pub(super) fn process_has(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        has: &proto::mh::HomeAgentSwitch<'_>,
        mh: &[u8],
    ) {
        let old = self.bul.primary.home_agent;
        let Some(r) = &self.bul.primary.registered else {
            warn!(%src, "Home Agent Switch while not registered ignored");
            self.stats.home_agent_switches_dropped += 1;
            return;
        };
        if self.bul.primary.stopped.is_some() {
            self.stats.home_agent_switches_dropped += 1;
            return;
        }
        // From where we are now: the care-of address of a move under way if any (the HA
        // may already hold it), else the registered one. The HA signs over its binding's
        // care-of address, so either may be the one.
        let registered = (r.coa, r.coa_ifindex);
        let moving = self
            .bul
            .primary
            .pending
            .as_ref()
            .filter(|p| p.kind == BuKind::Register)
            .map(|p| (p.coa, p.coa_ifindex));
        let authenticated = match (&self.cfg.security, &self.mn_ha_key) {
            (Some(sa), Some(key)) => {
                let last_is_ours = has.options.last().is_some_and(|o| {
                    matches!(o, MobilityOption::Authentication { subtype, spi, .. }
                        if *subtype == AUTH_SUBTYPE_MN_HA && *spi == sa.spi)
                });
                last_is_ours
                    && [Some(registered), moving]
                        .into_iter()
                        .flatten()
                        .any(|(c, _)| {
                            key.verify(mh, IpAddr::V6(c), &self.cfg.home_address)
                                .unwrap_or(false)
                        })
            }
            _ => false,
        };
        if authenticated && !self.has_is_fresh(now, has) {
            self.stats.home_agent_switches_dropped += 1;
            return;
        }
        if !authenticated {
            self.stats.home_agent_switches_dropped += 1;
            if self.cfg.security.is_none() {
                warn!(%src, home_agents = ?has.home_agents,
                    "Home Agent Switch ignored: no mobility SA to authenticate it with");
            } else {
                warn!(%src, home_agents = ?has.home_agents,
                    "Home Agent Switch without a valid MN-HA authenticator dropped");
            }
            return;
        }
        let listed: Vec<Ipv6Addr> = has
            .home_agents
            .iter()
            .copied()
            .filter(|a| {
                !a.is_unspecified()
                    && !a.is_multicast()
                    && !a.is_loopback()
                    && !a.is_unicast_link_local()
                    && *a != old
            })
            .collect();
        self.stats.home_agent_switches += 1;
        let (coa, ifindex) = moving.unwrap_or(registered);
        if listed.is_empty() && coa_v4(&coa).is_some() {
            warn!(%src, "Home Agent Switch without a usable home agent, and discovery needs an \
                IPv6 care-of address: staying");
            return;
        }
        info!(from = %old, to = ?listed, %coa,
            "Home Agent Switch: de-registering from the current home agent, then moving");
        self.switch_away_from = Some(old);
        self.ha_candidates = listed;
        let mut d = self.new_pending(now, BuKind::Deregister, false, coa, ifindex);
        d.first_registration = false;
        d.then_next_home_agent = true;
        self.bul.primary.pending = Some(d);
    }

    /// RFC 4285 §6 for an unsolicited message: with a timestamp SA, the HAS's replay
    /// protection timestamp is within the window of our clock and later than the last
    /// accepted HAS's (remembered when it is). Logs why when not.
    fn has_is_fresh(&mut self, now: Instant, has: &proto::mh::HomeAgentSwitch<'_>) -> bool {
        let Some(sa) = self.cfg.security.as_ref().filter(|sa| sa.timestamps()) else {
            return true;
        };
        let window = sa.replay_window();
        let Some(ts) = has.options.iter().find_map(|o| match o {
            MobilityOption::ReplayProtection { timestamp } => Some(NtpTimestamp(*timestamp)),
            _ => None,
        }) else {
            warn!("Home Agent Switch without replay protection dropped (our SA uses timestamps)");
            return false;
        };
        let ours = NtpTimestamp::from_unix(self.wall_clock(now));
        if !ts.is_within(ours, window) {
            warn!(their = ?ts.to_unix(), ours = ?ours.to_unix(), window_s = window.as_secs(),
                "Home Agent Switch outside the replay window dropped (a replay, or clocks apart)");
            return false;
        }
        if self
            .last_has_timestamp
            .is_some_and(|last| !ts.is_later_than(last))
        {
            warn!("Home Agent Switch not later than the last one taken: a replay, dropped");
            return false;
        }
        self.last_has_timestamp = Some(ts);
        true
    }

    /// After the de-registration a Home Agent Switch asked for: the first home agent it
    /// listed, or discovery when it listed none. True when the router moved on.
    pub(super) fn switch_home_agent(&mut self, now: Instant, coa: Ipv6Addr, ifindex: u32) -> bool {
        if self.switch_away_from.is_none() {
            return false;
        }
        if self.ha_candidates.is_empty() {
            info!(%coa, "Home Agent Switch listed no home agent: discovering one");
            let next_seq = SequenceNumber(self.bul.primary.last_seq.0.wrapping_add(1));
            self.withdraw_bids(|_| true);
            self.bul.primary = BulEntry::new(Ipv6Addr::UNSPECIFIED, None, next_seq);
            self.discovery = None;
            self.start_discovery(now, coa, ifindex);
            return true;
        }
        let next = self.ha_candidates.remove(0);
        info!(from = ?self.switch_away_from, to = %next, "Home Agent Switch: registering with the new home agent");
        self.use_home_agent(now, next, coa, ifindex);
        true
    }
}
