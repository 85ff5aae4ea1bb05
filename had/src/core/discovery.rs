//! Dynamic Home Agent Address Discovery and Mobile Prefix Discovery, home agent side
//! (RFC 6275 §10.5, §10.6; RFC 3963 §7 for mobile routers).
//!
//! The home agents list (§10.5.1) is learnt from Router Advertisements with the H bit on
//! the home link, plus this home agent itself; a Home Agent Address Discovery Request to
//! the Home-Agents anycast address of a served prefix gets the list back, most preferred
//! first. A Mobile Prefix Solicitation from a registered mobile node (it arrives with a
//! Home Address option, [`Ha::handle_hao_packet`]) gets the home link's prefixes with the
//! lifetimes they have left. Both answers are rate-limited: a request is unauthenticated
//! and its answer is larger (up to 1280 octets for 48), so an unlimited answer would be a
//! reflector.

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use ipnet::Ipv6Net;
use proto::icmpv6::{
    HaadFlags, HaadReply, HaadRequest, Icmpv6Repr, MAX_REPLY_HOME_AGENTS,
    MobilePrefixAdvertisement, MpaFlags, NdOption, PrefixFlags, PrefixInformation, RaFlags,
    RouterAdvertisement, home_agents_anycast,
};
use tracing::debug;

use proto::model::CareOf;

use super::Ha;

/// RFC 4861 §6.2.1 AdvValidLifetime default: a served prefix no home-link Router
/// Advertisement has told us about is advertised with it.
pub const DEFAULT_VALID_LIFETIME: u32 = 2_592_000;
/// RFC 4861 §6.2.1 AdvPreferredLifetime default.
pub const DEFAULT_PREFERRED_LIFETIME: u32 = 604_800;
/// Most home agents remembered from the home link: a link rarely has more than a few, and
/// a forged Router Advertisement flood must not grow the list without bound.
pub const MAX_LEARNT_HOME_AGENTS: usize = 64;
/// Most prefixes whose home-link lifetimes are remembered.
const MAX_LEARNT_PREFIXES: usize = 64;

/// One home agent of the home link (RFC 6275 §10.5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeAgentEntry {
    /// The link-local source of its Router Advertisements (the list's key); `None` for
    /// this home agent itself.
    pub link_local: Option<Ipv6Addr>,
    /// Its global addresses: Prefix Information options with the R bit (§7.2).
    pub addresses: Vec<Ipv6Addr>,
    /// Home Agent Preference (higher first).
    pub preference: i16,
    /// Whether it serves mobile routers (R of its Home Agent Information option).
    pub mobile_router_support: bool,
    /// When it stops being a home agent; `None`: never (this home agent).
    pub expires: Option<Instant>,
}

/// The home agents list of the home link (RFC 6275 §10.5.1).
#[derive(Debug, Clone)]
pub struct HomeAgentsList {
    own: HomeAgentEntry,
    learnt: Vec<HomeAgentEntry>,
}

impl HomeAgentsList {
    /// A list holding only this home agent.
    pub fn new(own_address: Ipv6Addr, preference: i16, mobile_router_support: bool) -> Self {
        HomeAgentsList {
            own: HomeAgentEntry {
                link_local: None,
                addresses: vec![own_address],
                preference,
                mobile_router_support,
                expires: None,
            },
            learnt: Vec::new(),
        }
    }

    /// Takes in a Router Advertisement received on the home link from `src` (RFC 6275
    /// §10.5.1): with H set it adds or refreshes that router's entry, with a zero Home
    /// Agent Lifetime (or H clear) it removes it. Advertisements of this home agent itself
    /// and ones without a link-local source are ignored.
    pub fn on_router_advertisement(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        ra: &RouterAdvertisement<'_>,
    ) {
        if !src.is_unicast_link_local() {
            return;
        }
        let info = ra.options.iter().find_map(|o| match o {
            NdOption::HomeAgentInformation(h) => Some(*h),
            _ => None,
        });
        let addresses: Vec<Ipv6Addr> = ra
            .options
            .iter()
            .filter_map(|o| match o {
                NdOption::PrefixInformation(p) if p.flags.contains(PrefixFlags::R) => {
                    Some(p.prefix)
                }
                _ => None,
            })
            .filter(|a| !a.is_multicast() && !a.is_unspecified() && !a.is_unicast_link_local())
            .collect();
        if addresses.iter().any(|a| self.own.addresses.contains(a)) {
            return;
        }
        // §10.5.1: the lifetime is the option's, else the Router Lifetime; the preference
        // the option's, else 0. An option with lifetime 0 is invalid and ignored with its
        // advertisement's other Mobile IPv6 content (§7.4) — treat as no option.
        let info = info.filter(|h| h.lifetime != 0);
        let lifetime = info.map_or(ra.router_lifetime, |h| h.lifetime);
        let existing = self.learnt.iter().position(|e| e.link_local == Some(src));
        if !ra.flags.contains(RaFlags::H) || lifetime == 0 {
            if let Some(i) = existing {
                self.learnt.remove(i);
            }
            return;
        }
        let entry = HomeAgentEntry {
            link_local: Some(src),
            addresses,
            preference: info.map_or(0, |h| h.preference),
            mobile_router_support: info
                .is_some_and(|h| h.flags.contains(proto::icmpv6::HaInfoFlags::R)),
            expires: Some(now + Duration::from_secs(u64::from(lifetime))),
        };
        match existing {
            Some(i) => {
                // A later advertisement without R-bit prefixes keeps the addresses known.
                let old = std::mem::replace(&mut self.learnt[i], entry);
                if self.learnt[i].addresses.is_empty() {
                    self.learnt[i].addresses = old.addresses;
                }
            }
            None => {
                self.expire(now);
                if self.learnt.len() < MAX_LEARNT_HOME_AGENTS {
                    debug!(%src, addresses = ?entry.addresses, preference = entry.preference,
                        mobile_router_support = entry.mobile_router_support,
                        "home agent learnt from the home link");
                    self.learnt.push(entry);
                } else {
                    debug!(%src, "home agents list full: router advertisement not learnt");
                }
            }
        }
    }

    /// Drops entries whose lifetime ran out.
    pub fn expire(&mut self, now: Instant) {
        self.learnt
            .retain(|e| e.expires.is_none_or(|expires| expires > now));
    }

    /// The entries alive at `now`, this home agent first, then as learnt.
    pub fn entries(&self, now: Instant) -> impl Iterator<Item = &HomeAgentEntry> {
        std::iter::once(&self.own).chain(
            self.learnt
                .iter()
                .filter(move |e| e.expires.is_none_or(|x| x > now) && !e.addresses.is_empty()),
        )
    }

    /// The addresses a Reply lists (RFC 6275 §10.5.1, RFC 3963 §7.1) and the Reply's R
    /// bit: highest preference first; home agents of equal preference rotated by
    /// `spread` so that requests share the load among them; with `mobile_router` only
    /// those serving mobile routers, unless none does (then all, R clear). At most
    /// [`MAX_REPLY_HOME_AGENTS`] addresses, one per home agent.
    pub fn reply(&self, now: Instant, mobile_router: bool, spread: u16) -> (Vec<Ipv6Addr>, bool) {
        let alive: Vec<&HomeAgentEntry> = self.entries(now).collect();
        let serving_mrs = alive.iter().any(|e| e.mobile_router_support);
        let r = mobile_router && serving_mrs;
        let mut chosen: Vec<&HomeAgentEntry> = alive
            .into_iter()
            .filter(|e| !r || e.mobile_router_support)
            .collect();
        // Stable: equal preferences keep their order, which the rotation below spreads.
        chosen.sort_by_key(|e| std::cmp::Reverse(e.preference));
        let mut out = Vec::with_capacity(chosen.len());
        let mut i = 0;
        while i < chosen.len() {
            let end = chosen[i..]
                .iter()
                .position(|e| e.preference != chosen[i].preference)
                .map_or(chosen.len(), |n| i + n);
            let group = &mut chosen[i..end];
            let len = group.len();
            group.rotate_left(usize::from(spread) % len);
            out.extend(group.iter().map(|e| e.addresses[0]));
            i = end;
        }
        out.truncate(MAX_REPLY_HOME_AGENTS);
        (out, r)
    }
}

/// What the home link's Router Advertisements say of a prefix (RFC 6275 §10.6.1: the
/// home agent keeps the prefixes' lifetimes to advertise them to mobile nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LearntPrefix {
    flags: PrefixFlags,
    valid: u32,
    preferred: u32,
    at: Instant,
}

/// The lifetime `advertised` at `at`, as left at `now` (infinity stays infinity).
fn remaining(advertised: u32, at: Instant, now: Instant) -> u32 {
    if advertised == u32::MAX {
        return u32::MAX;
    }
    let elapsed = u32::try_from(now.saturating_duration_since(at).as_secs()).unwrap_or(u32::MAX);
    advertised.saturating_sub(elapsed)
}

/// The home link as its Router Advertisements describe it.
#[derive(Debug, Clone, Default)]
pub(crate) struct HomeLink {
    pub(crate) prefixes: HashMap<Ipv6Net, LearntPrefix>,
    pub(crate) managed: MpaFlags,
}

impl HomeLink {
    /// Seconds of valid lifetime the home link still gives the prefix holding `addr`, if
    /// its Router Advertisements named one (RFC 6275 §10.3.1: a home registration's
    /// lifetime must not exceed it).
    pub(crate) fn valid_left(&self, now: Instant, addr: &Ipv6Addr) -> Option<u32> {
        if self.prefixes.is_empty() {
            return None;
        }
        self.prefixes
            .iter()
            .filter(|(net, _)| net.contains(addr))
            .map(|(_, p)| remaining(p.valid, p.at, now))
            .min()
    }

    fn on_router_advertisement(&mut self, now: Instant, ra: &RouterAdvertisement<'_>) {
        let mut m = MpaFlags::empty();
        m.set(MpaFlags::M, ra.flags.contains(RaFlags::M));
        m.set(MpaFlags::O, ra.flags.contains(RaFlags::O));
        self.managed = m;
        for o in &ra.options {
            let NdOption::PrefixInformation(p) = o else {
                continue;
            };
            let Ok(net) = Ipv6Net::new(p.prefix, p.prefix_len) else {
                continue;
            };
            let net = net.trunc();
            if !self.prefixes.contains_key(&net) && self.prefixes.len() >= MAX_LEARNT_PREFIXES {
                continue;
            }
            self.prefixes.insert(
                net,
                LearntPrefix {
                    flags: PrefixFlags(p.flags.0 & (PrefixFlags::L.0 | PrefixFlags::A.0)),
                    valid: p.valid_lifetime,
                    preferred: p.preferred_lifetime,
                    at: now,
                },
            );
        }
    }
}

impl Ha {
    /// A Router Advertisement received from `src` on interface `ifindex` (hop limit 255
    /// checked by the shell, RFC 4861 §6.1.2). Only the home link's count.
    pub fn handle_router_advertisement(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        ifindex: u32,
        ra: &RouterAdvertisement<'_>,
    ) {
        if ifindex != self.cfg.home_ifindex {
            debug!(%src, ifindex, "router advertisement not from the home link: ignored");
            return;
        }
        self.stats.router_advertisements += 1;
        self.home_agents.on_router_advertisement(now, src, ra);
        self.home_link.on_router_advertisement(now, ra);
    }

    /// A Home Agent Address Discovery Request from `src` to `dst` (RFC 6275 §10.5). If
    /// `dst` is the Home-Agents anycast address of a served home prefix, the Reply goes to
    /// `src` from this home agent's address; poll [`Ha::poll_icmp_reply`]. Requests to
    /// other addresses, from unspecified or multicast sources, or beyond the answer rate
    /// are dropped and counted.
    pub fn handle_haad_request(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        request: &HaadRequest,
    ) {
        self.stats.haad_requests += 1;
        let ours = self
            .cfg
            .home_prefixes
            .iter()
            .any(|p| home_agents_anycast(p.network(), p.prefix_len()) == Some(dst));
        if !ours || src.is_unspecified() || src.is_multicast() || src.is_loopback() {
            self.stats.discovery_dropped += 1;
            debug!(%src, %dst, "home agent address discovery request not to our anycast address");
            return;
        }
        if !self.discovery_bucket.take(now) {
            self.stats.discovery_dropped += 1;
            debug!(%src, "home agent address discovery reply rate-limited");
            return;
        }
        self.home_agents.expire(now);
        let (home_agents, r) =
            self.home_agents
                .reply(now, request.flags.mobile_router(), request.identifier);
        let mut flags = HaadFlags::empty();
        flags.set(HaadFlags::R, r);
        let reply = Icmpv6Repr::HaadReply(HaadReply {
            identifier: request.identifier,
            flags,
            home_agents,
        });
        debug!(%src, identifier = request.identifier, mobile_router = r,
            "home agent address discovery reply");
        self.queue_icmp(self.cfg.ha_address, src, &reply, None);
    }

    /// The Mobile Prefix Advertisement answering a Solicitation with `identifier` from
    /// the registered home address `hoa` (RFC 6275 §10.6.2): every served home prefix,
    /// with the lifetimes the home link advertises for it now (RFC 4861 defaults when the
    /// home link has not said), and M/O as on the home link. `None` beyond the answer rate.
    pub(crate) fn mobile_prefix_advertisement(
        &mut self,
        now: Instant,
        identifier: u16,
    ) -> Option<Icmpv6Repr<'static>> {
        if !self.discovery_bucket.take(now) {
            self.stats.discovery_dropped += 1;
            return None;
        }
        Some(self.prefix_advertisement(now, identifier))
    }

    /// The advertisement itself: every served home prefix with the lifetimes the home link
    /// advertises for it now (RFC 4861 defaults when it has not said), M/O as there.
    fn prefix_advertisement(&self, now: Instant, identifier: u16) -> Icmpv6Repr<'static> {
        let options = self
            .cfg
            .home_prefixes
            .iter()
            .map(|p| {
                let learnt = self.home_link.prefixes.get(&p.trunc());
                let (flags, valid, preferred) = learnt.map_or(
                    (
                        PrefixFlags::L | PrefixFlags::A,
                        DEFAULT_VALID_LIFETIME,
                        DEFAULT_PREFERRED_LIFETIME,
                    ),
                    |l| {
                        (
                            l.flags,
                            remaining(l.valid, l.at, now),
                            remaining(l.preferred, l.at, now),
                        )
                    },
                );
                NdOption::PrefixInformation(PrefixInformation {
                    prefix_len: p.prefix_len(),
                    flags,
                    valid_lifetime: valid,
                    preferred_lifetime: preferred.min(valid),
                    prefix: p.network(),
                })
            })
            .collect();
        Icmpv6Repr::MobilePrefixAdvertisement(MobilePrefixAdvertisement {
            identifier,
            flags: self.home_link.managed,
            options,
        })
    }

    /// Unsolicited Mobile Prefix Advertisements (RFC 6275 §10.6.2) to every mobile node
    /// registered from an IPv6 care-of address, through an RH2 to its home address: the
    /// home prefixes changed. Not rate-limited (an operator's change, one per binding);
    /// sent once. Returns how many were queued (poll [`Ha::poll_icmp_reply`]).
    pub fn advertise_prefixes(&mut self, now: Instant) -> usize {
        let targets: Vec<(Ipv6Addr, Ipv6Addr)> = self
            .cache
            .iter()
            // One per mobile node: its first IPv6 care-of binding (RFC 5648: any BID
            // reaches the node).
            .filter_map(|(hoa, b)| {
                b.bindings().find_map(|c| match c.coa {
                    CareOf::V6(coa) if coa != *hoa => Some((*hoa, coa)),
                    _ => None,
                })
            })
            .collect();
        let n = targets.len();
        for (i, (hoa, coa)) in targets.into_iter().enumerate() {
            // Any Identifier will do for an unsolicited one; distinct ones help captures.
            let mpa = self.prefix_advertisement(now, i as u16);
            self.queue_icmp(self.cfg.ha_address, coa, &mpa, Some(hoa));
        }
        n
    }

    /// The home agents list at `now` (for the bus's state answer and the metrics).
    pub fn home_agents_list(&self, now: Instant) -> Vec<HomeAgentEntry> {
        self.home_agents.entries(now).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::icmpv6::{HaInfoFlags, HomeAgentInformation};

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn ra(
        h: bool,
        router_lifetime: u16,
        info: Option<(i16, u16, bool)>,
        global: Option<&str>,
    ) -> RouterAdvertisement<'static> {
        let mut options = Vec::new();
        if let Some((preference, lifetime, r)) = info {
            options.push(NdOption::HomeAgentInformation(HomeAgentInformation {
                flags: if r {
                    HaInfoFlags::R
                } else {
                    HaInfoFlags::empty()
                },
                preference,
                lifetime,
            }));
        }
        if let Some(g) = global {
            options.push(NdOption::PrefixInformation(PrefixInformation {
                prefix_len: 64,
                flags: PrefixFlags::L | PrefixFlags::A | PrefixFlags::R,
                valid_lifetime: 86400,
                preferred_lifetime: 14400,
                prefix: a(g),
            }));
        }
        RouterAdvertisement {
            flags: if h { RaFlags::H } else { RaFlags::empty() },
            router_lifetime,
            options,
            ..Default::default()
        }
    }

    #[test]
    fn learns_orders_and_forgets_home_agents() {
        let t0 = Instant::now();
        let mut list = HomeAgentsList::new(a("2001:db8:1::1"), 10, true);
        // A better home agent for mobile routers, a worse one for mobile nodes only.
        list.on_router_advertisement(
            t0,
            a("fe80::2"),
            &ra(true, 1800, Some((20, 100, true)), Some("2001:db8:1::2")),
        );
        list.on_router_advertisement(
            t0,
            a("fe80::3"),
            &ra(true, 1800, Some((5, 1000, false)), Some("2001:db8:1::3")),
        );
        // Not a home agent, and a home agent without a global address: not listed.
        list.on_router_advertisement(
            t0,
            a("fe80::4"),
            &ra(false, 1800, None, Some("2001:db8:1::4")),
        );
        list.on_router_advertisement(t0, a("fe80::5"), &ra(true, 1800, None, None));
        // Not link-local: ignored.
        list.on_router_advertisement(
            t0,
            a("2001:db8:1::6"),
            &ra(true, 1800, None, Some("2001:db8:1::6")),
        );
        assert_eq!(
            list.reply(t0, false, 0),
            (
                vec![a("2001:db8:1::2"), a("2001:db8:1::1"), a("2001:db8:1::3")],
                false
            )
        );
        // R: only those serving mobile routers.
        assert_eq!(
            list.reply(t0, true, 0),
            (vec![a("2001:db8:1::2"), a("2001:db8:1::1")], true)
        );
        // The Home Agent Lifetime (100 s), not the Router Lifetime, ends fe80::2.
        let later = t0 + Duration::from_secs(101);
        assert_eq!(list.reply(later, true, 0), (vec![a("2001:db8:1::1")], true));
        // A zero Router Lifetime without the option, or H cleared, removes at once.
        list.on_router_advertisement(t0, a("fe80::3"), &ra(false, 1800, None, None));
        assert_eq!(list.reply(t0, false, 0).0.len(), 2);
        list.on_router_advertisement(t0, a("fe80::2"), &ra(true, 0, None, None));
        assert_eq!(list.reply(t0, false, 0).0, vec![a("2001:db8:1::1")]);
    }

    #[test]
    fn equal_preferences_share_the_load_and_r_falls_back() {
        let t0 = Instant::now();
        let mut list = HomeAgentsList::new(a("2001:db8:1::1"), 0, false);
        list.on_router_advertisement(
            t0,
            a("fe80::2"),
            &ra(true, 1800, None, Some("2001:db8:1::2")),
        );
        let first: Vec<Ipv6Addr> = (0..2u16).map(|s| list.reply(t0, false, s).0[0]).collect();
        assert_eq!(first, vec![a("2001:db8:1::1"), a("2001:db8:1::2")]);
        // Nobody serves mobile routers: a request with R gets them all, R clear.
        assert!(!list.reply(t0, true, 0).1);
        assert_eq!(list.reply(t0, true, 0).0.len(), 2);
        // An advertisement naming our own address (our own RA looped back) is not a peer.
        list.on_router_advertisement(
            t0,
            a("fe80::1"),
            &ra(true, 1800, Some((99, 10, true)), Some("2001:db8:1::1")),
        );
        assert_eq!(list.reply(t0, false, 0).0.len(), 2);
    }

    #[test]
    fn a_flood_of_advertisements_is_bounded() {
        let t0 = Instant::now();
        let mut list = HomeAgentsList::new(a("2001:db8:1::1"), 0, true);
        for i in 0..1000u16 {
            let ll = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 1, i);
            let g = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 1, i).to_string();
            list.on_router_advertisement(t0, ll, &ra(true, 1800, None, Some(&g)));
        }
        assert_eq!(list.entries(t0).count(), 1 + MAX_LEARNT_HOME_AGENTS);
        assert!(list.reply(t0, false, 0).0.len() <= MAX_REPLY_HOME_AGENTS);
    }

    #[test]
    fn lifetimes_count_down() {
        let t0 = Instant::now();
        assert_eq!(remaining(100, t0, t0 + Duration::from_secs(30)), 70);
        assert_eq!(remaining(100, t0, t0 + Duration::from_secs(300)), 0);
        assert_eq!(
            remaining(u32::MAX, t0, t0 + Duration::from_secs(300)),
            u32::MAX
        );
    }
}
