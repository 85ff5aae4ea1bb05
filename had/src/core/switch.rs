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
//! de-registers or it expires.
//!
//! Retransmission (§5.2): the message is sent again, with a fresh timestamp, after
//! INITIAL_BINDACK_TIMEOUT (1 s, RFC 6275 §13), the wait doubling each time up to
//! MAX_BINDACK_TIMEOUT (32 s), until the node's binding here goes (it de-registered, having
//! moved, or it expired). A Binding Error with status 2 from the node (§5.3: it does not
//! know the message) stops it at once; so does the last retransmission at the 32 s wait.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use proto::mh::{BeStatus, HomeAgentSwitch, MhRepr};
use proto::option::MobilityOption;
use proto::seq::NtpTimestamp;
use tracing::{info, warn};

use super::{Ha, ReceivedSignal, care_of_for_mac};

/// INITIAL_BINDACK_TIMEOUT (RFC 6275 §13): the first retransmission's wait.
const INITIAL_WAIT: Duration = Duration::from_secs(1);
/// MAX_BINDACK_TIMEOUT (RFC 6275 §13): the longest wait; the message sent after it is
/// the last.
const MAX_WAIT: Duration = Duration::from_secs(32);

/// A Home Agent Switch still being retransmitted (RFC 5142 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingSwitch {
    /// When it is sent again.
    pub(crate) next: Instant,
    /// The wait before that.
    wait: Duration,
    /// The home agents it lists.
    home_agents: Vec<Ipv6Addr>,
    /// Times sent so far.
    pub(crate) sent: u32,
}

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
            if self.send_switch(wall, hoa, &home_agents) {
                sent += 1;
                self.switches.insert(
                    hoa,
                    PendingSwitch {
                        next: now + INITIAL_WAIT,
                        wait: INITIAL_WAIT,
                        home_agents,
                        sent: 1,
                    },
                );
            }
        }
        sent
    }

    /// Retransmits the Home Agent Switch messages whose wait is over (RFC 5142 §5.2).
    /// `wall` is the time since the Unix epoch (each copy's replay protection).
    pub fn handle_switch_timeouts(&mut self, now: Instant, wall: Duration) {
        let due: Vec<Ipv6Addr> = self
            .switches
            .iter()
            .filter(|(_, p)| p.next <= now)
            .map(|(h, _)| *h)
            .collect();
        for hoa in due {
            let Some(mut p) = self.switches.remove(&hoa) else {
                continue;
            };
            if !self.cache.contains_key(&hoa) || !self.send_switch(wall, hoa, &p.home_agents) {
                continue;
            }
            p.sent += 1;
            self.stats.home_agent_switches_retransmitted += 1;
            if p.wait >= MAX_WAIT {
                info!(%hoa, sent = p.sent, "home agent switch: last retransmission (RFC 5142 §5.2)");
                continue;
            }
            p.wait = (p.wait * 2).min(MAX_WAIT);
            p.next = now + p.wait;
            self.switches.insert(hoa, p);
        }
    }

    /// A Binding Error from a node (RFC 6275 §9.3.4 for a home agent: nothing to do with
    /// it), except that status 2 from a node we are sending Home Agent Switch messages to
    /// means it does not know them: stop (RFC 5142 §5.3).
    pub(crate) fn handle_binding_error(&mut self, signal: &ReceivedSignal<'_>, mh: &[u8]) {
        let Ok(MhRepr::BindingError(be)) =
            MhRepr::parse(&proto::mh::Packet::new_unchecked(mh), Default::default())
        else {
            return;
        };
        let hoa = if be.home_address.is_unspecified() {
            signal.home_address.unwrap_or(signal.src)
        } else {
            be.home_address
        };
        if be.status == BeStatus::UnrecognizedMhType && self.switches.remove(&hoa).is_some() {
            info!(%hoa, src = %signal.src,
                "home agent switch not understood by the node (Binding Error 2): no more retransmissions (RFC 5142 §5.3)");
        }
    }

    /// Sends one Home Agent Switch to `hoa`'s binding listing `home_agents`; whether it was
    /// queued.
    fn send_switch(&mut self, wall: Duration, hoa: Ipv6Addr, home_agents: &[Ipv6Addr]) -> bool {
        let Some(bce) = self.cache.get(&hoa) else {
            return false;
        };
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
            home_agents: home_agents.to_vec(),
            options,
        });
        let sign = sa.as_ref().map(|(_, key, _)| (key, coa_mac, hoa));
        let before = self.transmits.len();
        self.queue_mh(&repr, addressing, udp, sign, None);
        if self.transmits.len() == before {
            return false;
        }
        self.stats.home_agent_switches_sent += 1;
        info!(%hoa, %coa, ?home_agents, authenticated = sa.is_some(), "home agent switch sent");
        true
    }
}
