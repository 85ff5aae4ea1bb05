//! Mobile Prefix Discovery, mobile node side (RFC 6275 §11.4.2-§11.4.3): the home agent
//! tells the router, away, how long its home prefix stays valid; the router asks for it
//! (a Mobile Prefix Solicitation with a Home Address option, from the care-of address)
//! when a BA says "prefix discovery necessary" (status 1), and again before what an
//! advertisement (solicited or not) told it runs out; and it never asks for a binding
//! lifetime beyond the home prefix's remaining valid lifetime (§11.7.1). Nothing is asked
//! unprompted: a home agent that never mentions prefixes sees no solicitation.

use proto::ext::{emit_upper_layer_packet, mobility_packet_len};
use proto::icmpv6::{
    Icmpv6Packet, Icmpv6Repr, MobilePrefixAdvertisement, MobilePrefixSolicitation, NdOption,
};

use super::*;

/// RFC 6275 §12 INITIAL_SOLICIT_TIMER.
pub const INITIAL_SOLICIT_TIMER: Duration = Duration::from_secs(3);
/// Solicitations of one round: 3, 6, 12, 24 s apart, then the round ends (the timeout
/// would pass MAX_BINDACK_TIMEOUT); the next trigger starts another.
pub const MAX_SOLICITATIONS: u32 = 5;

/// A solicitation under way.
#[derive(Debug, Clone)]
pub(crate) struct Solicitation {
    pub(crate) identifier: u16,
    pub(crate) transmissions: u32,
    pub(crate) next_tx: Instant,
}

/// What the home agent said of the home prefix (the one holding the home address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HomePrefix {
    /// When its valid lifetime ends; `None`: infinity.
    pub(crate) valid_until: Option<Instant>,
}

impl MrCore {
    /// Seconds of valid lifetime the home prefix has left at `now`, when a Mobile Prefix
    /// Advertisement said (and it is not infinite).
    pub fn home_prefix_valid_left(&self, now: Instant) -> Option<Duration> {
        self.home_prefix
            .and_then(|p| p.valid_until)
            .map(|t| t.saturating_duration_since(now))
    }

    /// Starts a solicitation now, unless one is under way.
    pub(super) fn solicit_prefixes(&mut self, now: Instant, why: &str) {
        if self.solicitation.is_some() {
            return;
        }
        self.next_identifier = self.next_identifier.wrapping_add(1);
        debug!(
            why,
            identifier = self.next_identifier,
            "mobile prefix solicitation"
        );
        self.solicitation = Some(Solicitation {
            identifier: self.next_identifier,
            transmissions: 0,
            next_tx: now,
        });
        self.solicit_at = None;
    }

    /// Sends a due solicitation from the registered care-of address (RFC 6275 §11.4.2:
    /// INITIAL_SOLICIT_TIMER, doubling); starts one when the time learnt runs out.
    pub(super) fn drive_solicitation(&mut self, now: Instant) {
        if self.solicit_at.is_some_and(|t| now >= t) {
            self.solicit_prefixes(now, "the home prefix lifetime runs out");
        }
        let Some(s) = &mut self.solicitation else {
            return;
        };
        if now < s.next_tx {
            return;
        }
        // Away, from an IPv6 care-of address: at home there is nothing to ask the home
        // agent; from an IPv4 one it would need IPv6-in-IPv4 (RFC 5555 §2.2).
        let Some((coa, ifindex)) = self
            .bul
            .primary
            .registered
            .as_ref()
            .map(|r| (r.coa, r.coa_ifindex))
            .filter(|(c, _)| *c != self.cfg.home_address && coa_v4(c).is_none())
        else {
            self.solicitation = None;
            return;
        };
        if s.transmissions >= MAX_SOLICITATIONS {
            warn!(ha = %self.bul.primary.home_agent, sent = s.transmissions,
                "no mobile prefix advertisement from the home agent");
            self.solicitation = None;
            return;
        }
        let message = Icmpv6Repr::MobilePrefixSolicitation(MobilePrefixSolicitation {
            identifier: s.identifier,
            reserved: 0,
            options: Vec::new(),
        });
        s.transmissions += 1;
        s.next_tx = now + INITIAL_SOLICIT_TIMER * (1u32 << (s.transmissions - 1).min(16));
        let mut icmp = vec![0u8; message.buffer_len()];
        if message
            .emit(&mut Icmpv6Packet::new_unchecked(&mut icmp[..]))
            .is_err()
        {
            return;
        }
        // RFC 6275 §6.7, §11.4.2: from the care-of address with a Home Address option.
        let addressing = MobilityPacketRepr {
            src_addr: coa,
            dst_addr: self.bul.primary.home_agent,
            hop_limit: self.cfg.hop_limit,
            home_address: Some(self.cfg.home_address),
            rh2_home_address: None,
        };
        let mut packet = vec![0u8; mobility_packet_len(&addressing, icmp.len())];
        if let Err(e) =
            emit_upper_layer_packet(&addressing, proto::IPPROTO_ICMPV6, &icmp, 2..4, &mut packet)
        {
            debug!(error = %e, "mobile prefix solicitation not built");
            return;
        }
        self.stats.mps_sent += 1;
        self.icmp_out.push_back(IcmpTransmit { packet, ifindex });
    }

    /// A Mobile Prefix Advertisement from `src` through a type 2 routing header to our
    /// home address (RFC 6275 §11.4.3): from our home agent, solicited or not, its Prefix
    /// Information option for the home prefix sets the valid lifetime the binding may
    /// use and when to ask again.
    pub fn handle_mobile_prefix_advertisement(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        mpa: &MobilePrefixAdvertisement<'_>,
    ) {
        if src != self.bul.primary.home_agent {
            debug!(%src, "mobile prefix advertisement not from our home agent ignored");
            return;
        }
        self.stats.mpa_received += 1;
        if self
            .solicitation
            .as_ref()
            .is_some_and(|s| s.identifier == mpa.identifier)
        {
            self.solicitation = None;
        }
        let hoa = self.cfg.home_address;
        let home = mpa.options.iter().find_map(|o| match o {
            NdOption::PrefixInformation(p)
                if ipnet::Ipv6Net::new(p.prefix, p.prefix_len)
                    .is_ok_and(|n| n.trunc().contains(&hoa)) =>
            {
                Some(*p)
            }
            _ => None,
        });
        let Some(p) = home else {
            debug!(
                identifier = mpa.identifier,
                "mobile prefix advertisement without our home prefix"
            );
            return;
        };
        if p.valid_lifetime == 0 {
            warn!(prefix = %p.prefix, prefix_len = p.prefix_len,
                "the home agent says the home prefix is no longer valid: the home address will be refused");
        }
        let valid_until = (p.valid_lifetime != u32::MAX)
            .then(|| now + Duration::from_secs(u64::from(p.valid_lifetime)));
        self.home_prefix = Some(HomePrefix { valid_until });
        // Ask again before the binding would have to shrink: one registration lifetime
        // (and a minute) before the end, or half-way for a short one.
        self.solicit_at = valid_until.map(|end| {
            let left = end.saturating_duration_since(now);
            let margin = (self.cfg.lifetime.as_duration() + Duration::from_secs(60)).min(left / 2);
            end - margin
        });
        info!(prefix = %p.prefix, prefix_len = p.prefix_len, valid_s = p.valid_lifetime,
            preferred_s = p.preferred_lifetime, "home prefix lifetimes from the home agent");
    }
}
