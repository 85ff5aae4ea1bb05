//! Home Agent Switch (RFC 5142 §5): an operator tells registered mobile nodes and routers
//! to register with another home agent (this one is overloaded, going down for
//! maintenance, or being renumbered, §3).
//!
//! The message goes where a BRR goes (to the care-of address through a type 2 routing
//! header, or in UDP/IPv4 for an IPv4 care-of address) and is protected the same way as
//! the binding's BAs: signed with the binding's RFC 4285 mobility SA when it has one
//! (§5.1 asks for the BA's protection). With a timestamp SA (RFC 4285 §6) it also carries a
//! Mobility Message Replay Protection option with the home agent's clock, covered by the
//! authenticator: the router acts only on a HAS within the SA's window of its own clock and
//! later than the last one it took, so a captured HAS cannot be replayed later to send it
//! away again (without it, one signed HAS could be replayed for as long as the binding's
//! care-of address stays the same). The binding itself stays until the mobile node
//! de-registers or it expires. Not done: retransmission until the mobile node moves
//! (§5.2) — the operator repeats the command — and stopping after a Binding Error 2
//! (§5.3), which had ignores like every Binding Error.

use std::net::Ipv6Addr;
use std::time::Instant;

use proto::mh::{HomeAgentSwitch, MhRepr};
use proto::option::MobilityOption;
use proto::seq::NtpTimestamp;
use tracing::{info, warn};

use super::{Ha, care_of_for_mac};

impl Ha {
    /// Sends a Home Agent Switch to the binding of `hoa`, or to every binding when `None`.
    /// It lists `to` when given, else the other home agents of the home link as a
    /// discovery Reply would order them (highest preference first; only those serving
    /// mobile routers for a binding registered with R, RFC 3963 §7.1). With nothing to
    /// list nothing is sent: an empty list would send the node discovering home agents,
    /// and discovery would find this one again. Returns how many were queued (poll
    /// [`Ha::poll_transmit`]).
    /// `wall` is the time since the Unix epoch (the replay protection's timestamp).
    pub fn send_home_agent_switch(
        &mut self,
        now: Instant,
        wall: std::time::Duration,
        hoa: Option<Ipv6Addr>,
        to: &[Ipv6Addr],
    ) -> usize {
        let own = self.cfg.ha_address;
        let mut targets: Vec<Ipv6Addr> = match hoa {
            Some(h) if self.cache.contains_key(&h) => vec![h],
            Some(h) => {
                warn!(hoa = %h, "home agent switch: no binding for this home address");
                return 0;
            }
            None => self.cache.keys().copied().collect(),
        };
        targets.sort();
        let given: Vec<Ipv6Addr> = to.iter().copied().filter(|a| *a != own).collect();
        let mut sent = 0;
        for hoa in targets {
            let Some(bce) = self.cache.get(&hoa) else {
                continue;
            };
            let router = bce.flags & proto::mh::BuFlags::R.bits() != 0;
            let home_agents = if given.is_empty() {
                let (list, _) = self.home_agents.reply(now, router, 0);
                list.into_iter().filter(|a| *a != own).collect()
            } else {
                given.clone()
            };
            if home_agents.is_empty() {
                warn!(%hoa, "home agent switch: no other home agent known or given; not sent");
                continue;
            }
            let sa = bce
                .spi
                .and_then(|s| self.sas.get(&s))
                .map(|sa| (sa.spi, sa.key.clone(), sa.replay));
            let mut options = Vec::new();
            if let Some((spi, _, replay)) = &sa {
                // RFC 4285 §4, §8: replay protection, then the authenticator last.
                if matches!(replay, crate::config::ReplayProtection::Timestamps { .. }) {
                    options.push(MobilityOption::ReplayProtection {
                        timestamp: NtpTimestamp::from_unix(wall).0,
                    });
                }
                options.push(proto::auth::mn_ha_option(*spi));
            }
            // One message per mobile node: to its first care-of binding (RFC 5648: the
            // lowest BID), since the node, not each of its interfaces, moves.
            let c = &bce.first;
            let coa = c.coa;
            let coa_mac = c
                .coa_v4_option
                .map_or_else(|| care_of_for_mac(&c.coa), std::net::IpAddr::V4);
            let (addressing, udp) = self.addressing_to(&hoa, c);
            let repr = MhRepr::HomeAgentSwitch(HomeAgentSwitch {
                home_agents: home_agents.clone(),
                options,
            });
            let sign = sa.as_ref().map(|(_, key, _)| (key, coa_mac, hoa));
            let before = self.transmits.len();
            self.queue_mh(&repr, addressing, udp, sign, None);
            if self.transmits.len() > before {
                self.stats.home_agent_switches_sent += 1;
                sent += 1;
                info!(%hoa, %coa, ?home_agents, authenticated = sa.is_some(),
                    "home agent switch sent");
            }
        }
        sent
    }
}
