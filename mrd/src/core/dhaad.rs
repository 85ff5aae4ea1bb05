//! Dynamic Home Agent Address Discovery, mobile router side (RFC 6275 §11.4.1; RFC 3963
//! §7.1): with no home agent configured (SHISA's mrd had no such key: its home agents came
//! from DHAAD), the router asks the Home-Agents anycast address of its home prefix
//! (RFC 2526) from its care-of address, with R set so that only home agents serving mobile
//! routers answer; it registers with the first one listed, and moves on to the next one
//! when a home agent refuses it for good (RFC 3963 §7.1: 140-143, and any refusal a retry
//! cannot mend).

use proto::icmpv6::{HaadFlags, HaadReply, HaadRequest, Icmpv6Repr, home_agents_anycast};

use super::*;

/// RFC 6275 §12 INITIAL_DHAAD_TIMEOUT.
pub const INITIAL_DHAAD_TIMEOUT: Duration = Duration::from_secs(3);
/// RFC 6275 §12 DHAAD_RETRIES: retransmissions after the first Request.
pub const DHAAD_RETRIES: u32 = 4;
/// After a round of Requests without a Reply (3 + 6 + 12 + 24 + 48 s), the next round
/// starts this long after the last timeout: a router whose home network is unreachable
/// must not give up for good, nor flood.
pub const DHAAD_ROUND_PAUSE: Duration = Duration::from_secs(60);

/// A discovery under way.
#[derive(Debug, Clone)]
pub(crate) struct Discovery {
    /// The Identifier the Reply must carry.
    pub(crate) identifier: u16,
    /// Requests sent in this round.
    pub(crate) transmissions: u32,
    pub(crate) next_tx: Instant,
    /// The care-of address the Request leaves from (and the registration will use).
    pub(crate) coa: Ipv6Addr,
    pub(crate) coa_ifindex: u32,
}

/// An ICMPv6 message for the shell's raw socket: a whole IPv6 packet and the interface it
/// must leave by (the care-of address's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpTransmit {
    /// The IPv6 packet, checksum filled.
    pub packet: Vec<u8>,
    /// Outgoing interface (0: the routing table's choice).
    pub ifindex: u32,
}

impl MrCore {
    /// Whether the home agent comes from discovery (none configured).
    pub fn discovers_home_agent(&self) -> bool {
        self.cfg.home_agent.is_unspecified()
    }

    /// The home agent in use: the configured one, or the one discovery chose
    /// (unspecified until then).
    pub fn home_agent(&self) -> Ipv6Addr {
        self.bul.primary.home_agent
    }

    /// The home agents the last Reply listed that are still to be tried.
    pub fn discovered_home_agents(&self) -> &[Ipv6Addr] {
        &self.ha_candidates
    }

    /// Starts (or re-aims) discovery from `coa` on `ifindex`: the Request leaves now.
    pub(super) fn start_discovery(&mut self, now: Instant, coa: Ipv6Addr, ifindex: u32) {
        if coa_v4(&coa).is_some() {
            // RFC 5555 §4.1 would need the Request in IPv6-in-IPv4 with the home address
            // as source; a router without a home agent cannot get that far.
            warn!(%coa, "dynamic home agent discovery needs an IPv6 care-of address; \
                configure home-agent-address to register from IPv4");
            return;
        }
        if let Some(d) = &self.discovery
            && d.coa == coa
        {
            return;
        }
        self.next_identifier = self.next_identifier.wrapping_add(1);
        info!(hoa = %self.cfg.home_address, %coa, ifindex,
            "no home agent configured: dynamic home agent address discovery");
        self.discovery = Some(Discovery {
            identifier: self.next_identifier,
            transmissions: 0,
            next_tx: now,
            coa,
            coa_ifindex: ifindex,
        });
    }

    /// Sends a due Request (RFC 6275 §11.4.1: INITIAL_DHAAD_TIMEOUT, doubling, at most
    /// DHAAD_RETRIES retransmissions; then a pause and a new round).
    pub(super) fn drive_discovery(&mut self, now: Instant) {
        let Some(d) = &mut self.discovery else {
            return;
        };
        if now < d.next_tx {
            return;
        }
        if d.transmissions > DHAAD_RETRIES {
            warn!(coa = %d.coa, requests = d.transmissions, pause_s = DHAAD_ROUND_PAUSE.as_secs(),
                "no home agent answered the discovery; trying again later");
            d.transmissions = 0;
            d.next_tx = now + DHAAD_ROUND_PAUSE;
            return;
        }
        let Some(anycast) = home_agents_anycast(self.cfg.home_address, self.cfg.home_prefix_len)
        else {
            return;
        };
        // RFC 3963 §7.1: R asks for home agents that serve mobile routers.
        let mut flags = HaadFlags::empty();
        flags.set(HaadFlags::R, self.cfg.mobile_router);
        let request = Icmpv6Repr::HaadRequest(HaadRequest {
            identifier: d.identifier,
            flags,
        });
        let mut packet = vec![0u8; request.ipv6_packet_len()];
        if let Err(e) = request.emit_ipv6_packet(d.coa, anycast, self.cfg.hop_limit, &mut packet) {
            debug!(error = %e, "home agent address discovery request not built");
            return;
        }
        d.transmissions += 1;
        d.next_tx = now + INITIAL_DHAAD_TIMEOUT * (1u32 << (d.transmissions - 1).min(16));
        debug!(coa = %d.coa, %anycast, identifier = d.identifier, n = d.transmissions,
            "home agent address discovery request");
        self.stats.dhaad_requests += 1;
        self.icmp_out.push_back(IcmpTransmit {
            packet,
            ifindex: d.coa_ifindex,
        });
    }

    /// A Home Agent Address Discovery Reply from `src` (RFC 6275 §11.4.1): if it answers
    /// the Request outstanding, the router registers with the first home agent listed
    /// and keeps the others for a refusal.
    pub fn handle_haad_reply(&mut self, now: Instant, src: Ipv6Addr, reply: &HaadReply) {
        let Some(d) = &self.discovery else {
            debug!(%src, "home agent address discovery reply with no request outstanding ignored");
            return;
        };
        if reply.identifier != d.identifier {
            debug!(%src, identifier = reply.identifier, expected = d.identifier,
                "home agent address discovery reply for another request ignored");
            return;
        }
        let mut list: VecDeque<Ipv6Addr> = reply
            .home_agents
            .iter()
            .copied()
            .filter(|a| !a.is_unspecified() && !a.is_multicast() && !a.is_loopback())
            // RFC 5142 §6.2: not the home agent that told us to leave.
            .filter(|a| Some(*a) != self.switch_away_from)
            .collect();
        if self.cfg.mobile_router && !reply.flags.mobile_router() {
            // RFC 3963 §7.1: R clear means none of them serves mobile routers; a
            // registration would be refused (140). Ask again later.
            warn!(%src, home_agents = ?list,
                "discovered home agents do not serve mobile routers; asking again later");
            return;
        }
        let Some(first) = list.pop_front() else {
            debug!(%src, "home agent address discovery reply lists nobody");
            return;
        };
        let (coa, ifindex) = (d.coa, d.coa_ifindex);
        self.discovery = None;
        info!(ha = %first, others = ?list, "home agent discovered");
        self.ha_candidates = list.into();
        self.use_home_agent(now, first, coa, ifindex);
        self.drive(now);
    }

    /// Registers with `ha` from `coa`: a fresh Binding Update List entry (a new home agent
    /// holds no binding and no sequence number of ours).
    pub(super) fn use_home_agent(
        &mut self,
        now: Instant,
        ha: Ipv6Addr,
        coa: Ipv6Addr,
        ifindex: u32,
    ) {
        let next_seq = SequenceNumber(self.bul.primary.last_seq.0.wrapping_add(1));
        // The old home agent's binding identifiers go with it.
        self.withdraw_bids(|_| true);
        self.bul.primary = BulEntry::new(ha, None, next_seq);
        self.bul.primary.pending =
            Some(self.new_pending(now, BuKind::Register, false, coa, ifindex));
    }

    /// After a refusal for good from a discovered home agent (or one a Home Agent Switch
    /// named): the next one listed, if any (RFC 3963 §7.1). True when the router moved
    /// on.
    pub(super) fn try_next_home_agent(
        &mut self,
        now: Instant,
        coa: Ipv6Addr,
        ifindex: u32,
    ) -> bool {
        if let Some(old) = self.switch_away_from
            && self.bul.primary.home_agent == old
        {
            // The de-registration a Home Agent Switch asked for is over.
            return self.switch_home_agent(now, coa, ifindex);
        }
        let switching = self.switch_away_from.is_some();
        if !(self.discovers_home_agent() || switching) || self.ha_candidates.is_empty() {
            return false;
        }
        let next = self.ha_candidates.remove(0);
        warn!(refused_by = %self.bul.primary.home_agent, next = %next,
            "trying the next discovered home agent");
        self.use_home_agent(now, next, coa, ifindex);
        true
    }

    /// The next ICMPv6 message to send (Home Agent Address Discovery Requests).
    pub fn poll_icmp_transmit(&mut self) -> Option<IcmpTransmit> {
        self.icmp_out.pop_front()
    }
}
