//! The sans-IO home agent core: binding cache, BU processing, timers.
//!
//! Inputs: [`Ha::handle_packet`], [`Ha::handle_timeout`], [`Ha::restore`],
//! [`Ha::handle_state_request`], [`Ha::send_home_agent_switch`]. Outputs, pulled: [`Ha::poll_transmit`],
//! [`Ha::poll_event`], [`Ha::poll_timeout`]. Time: `now` is a monotonic
//! [`Instant`] the caller passes in (tests drive it virtually); `wall` is the wall clock
//! as a `Duration` since the UNIX epoch (RFC 4285 timestamps, persisted expiry).
//!
//! **Ordering contract.** For every acknowledged binding change the core queues a
//! [`HaEvent::Persist`] *before* it queues the BA. The shell must drain `poll_event`
//! (writing and fsync'ing the journal) before it sends what `poll_transmit` yields.

mod bu;
mod cache;
mod discovery;
mod flows;
mod mcoa;
mod switch;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::time::{Duration, Instant};

pub use discovery::{HomeAgentEntry, HomeAgentsList};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proto::ext::{
    MobilityPacketRepr, ReceivedPacket, emit_mobility_packet, emit_upper_layer_packet,
    mobility_packet_len,
};
use proto::icmpv6::{Icmpv6Packet, Icmpv6Repr};
use proto::mh::{BeStatus, BindingError, BindingRefreshRequest, MhRepr, MhType, Packet};
pub use proto::model::ParameterProblem;
use proto::model::{Binding, CareOf, Encapsulation};
use proto::option::{MobilityOption, ParseConfig};
use proto::rate::TokenBucket;
use smallvec::SmallVec;
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::config::{AuthPolicy, HaCoreConfig, MobilitySa, PrefixMode};
use crate::record::{JournalRecord, PersistedBinding};

pub(crate) use cache::{Bce, CareOfBinding, MnpV4, MnpV6};

/// Whether the shell already verified the MH checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumState {
    /// The shell verified it (e.g. with `proto::ext::ReceivedPacket::verify_checksum`).
    Verified,
    /// Not verified: the core checks it over the pseudo-header, accepting the home address
    /// or the on-wire source as pseudo-header source (RFC 6275 §6.1.1; Linux raw sockets
    /// checksum over the on-wire source, docs/notes.md §4). A bad checksum drops silently.
    Unverified,
}

/// The IPv4/UDP path of a DSMIPv6 signalling packet (RFC 5555 §4.2): the BU arrived in
/// UDP/IPv4, the BA must go back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpV4Path {
    /// The MR's side: outer IPv4 source and UDP source port as seen (after NAT) on receipt,
    /// the destination of the reply.
    pub peer: SocketAddrV4,
    /// The HA's side: outer IPv4 destination on receipt, the source of the reply.
    pub local: SocketAddrV4,
}

/// A received packet that is not signalling but carries a Home Address option (RFC 6275
/// §9.3.1), its upper-layer checksum verified by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaoSignal<'a> {
    /// IPv6 source on the wire: the mobile node's care-of address.
    pub src: Ipv6Addr,
    /// IPv6 destination on the wire: one of the home agent's addresses.
    pub dst: Ipv6Addr,
    /// The Home Address option's address.
    pub home_address: Ipv6Addr,
    /// The upper-layer protocol after the extension headers.
    pub upper_layer: u8,
    /// The upper-layer octets.
    pub payload: &'a [u8],
    /// Arrival interface.
    pub ifindex: u32,
}

/// A received Mobility Header and what the shell saw around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedSignal<'a> {
    /// IPv6 source on the wire (the CoA when a Home Address option is present).
    pub src: Ipv6Addr,
    /// IPv6 destination on the wire.
    pub dst: Ipv6Addr,
    /// Home Address destination option, if present.
    pub home_address: Option<Ipv6Addr>,
    /// The Mobility Header, exactly `(Header Len + 1) * 8` octets (longer is tolerated).
    pub mh: &'a [u8],
    /// Whether the shell verified the checksum.
    pub checksum: ChecksumState,
    /// Arrival interface.
    pub ifindex: u32,
    /// Set when the packet arrived UDP/IPv4-encapsulated (DSMIPv6 from an IPv4 CoA).
    pub udp_v4: Option<UdpV4Path>,
}

impl<'a> ReceivedSignal<'a> {
    /// From a packet walked by `proto::ext::walk` (checksum not yet verified).
    pub fn from_walk(p: &ReceivedPacket<'a>, ifindex: u32) -> Self {
        ReceivedSignal {
            src: p.src_addr,
            dst: p.dst_addr,
            home_address: p.home_address,
            mh: p.payload,
            checksum: ChecksumState::Unverified,
            ifindex,
            udp_v4: None,
        }
    }
}

/// A signalling packet to send: BA, BE, BRR or Home Agent Switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// IPv6 addressing (with RH2 for a BA/BRR to an MR away from home, RFC 6275 §9.5.4).
    pub addressing: MobilityPacketRepr,
    /// Send the IPv6 packet inside UDP/IPv4 along this path (RFC 5555 §4.2) instead of
    /// natively.
    pub udp_v4: Option<UdpV4Path>,
    /// The Mobility Header, checksum filled for `addressing`, MN-HA option signed.
    pub mh: Vec<u8>,
    /// Interface the triggering packet arrived on, if any.
    pub ifindex: Option<u32>,
}

impl Transmit {
    /// The MH parsed back (tests, logs).
    pub fn repr(&self) -> proto::Result<MhRepr<'_>> {
        MhRepr::parse_bytes(&self.mh, ParseConfig::new())
    }

    /// The whole IPv6 packet (`IPv6 | [RH2] | MH`) for an `IPPROTO_RAW` socket.
    pub fn to_ipv6_packet(&self) -> Vec<u8> {
        let mut buf = vec![0; mobility_packet_len(&self.addressing, self.mh.len())];
        let n = emit_mobility_packet(&self.addressing, &self.mh, &mut buf)
            .expect("MH emitted by the core is well-formed");
        buf.truncate(n);
        buf
    }
}

/// A proxy neighbour discovery entry for a registered home address (RFC 6275 §10.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxyNd {
    /// The home address to defend.
    pub hoa: Ipv6Addr,
    /// The derived link-local address to defend too (BU had the L flag).
    pub link_local: Option<Ipv6Addr>,
    /// Home link interface.
    pub ifindex: u32,
    /// NA with the Router flag (R=1 BU, RFC 3963 §6.3).
    pub router: bool,
}

/// Something for the shell to do besides sending signalling packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaEvent {
    /// Write this record to the journal (and fsync) before sending any further transmit.
    Persist(JournalRecord),
    /// Announce `BC_ADD` (binding created or refreshed).
    BcAdd(Binding),
    /// Announce `BC_REMOVE`.
    BcRemove(Binding),
    /// Start defending a home address on the home link (unsolicited NA).
    ProxyNdAdd(ProxyNd),
    /// Stop defending it.
    ProxyNdRemove(ProxyNd),
    /// Run Duplicate Address Detection for these addresses on the home link (RFC 6275
    /// §10.3.1): send a Neighbour Solicitation from `::` for each, and report any
    /// Neighbour Advertisement for one of them with [`Ha::handle_dad_defended`]. The verdict
    /// comes after the core's timer; nothing is installed before it.
    ProxyDadStart {
        /// The home address.
        hoa: Ipv6Addr,
        /// The addresses to check: the home address, and its link-local one with L.
        targets: Vec<Ipv6Addr>,
    },
}

/// A Binding Update waiting for proxy DAD (RFC 6275 §10.3.1), kept whole so that it is
/// processed again, with the verdict, exactly as it came.
#[derive(Debug, Clone)]
pub(crate) struct DadPending {
    pub deadline: Instant,
    pub targets: Vec<Ipv6Addr>,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub home_address: Option<Ipv6Addr>,
    pub mh: Vec<u8>,
    pub ifindex: u32,
    pub udp_v4: Option<UdpV4Path>,
}

/// What proxy DAD found for a home address, while its BU is processed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DadVerdict {
    /// Nobody answered: the binding may be created.
    Clear,
    /// Another node defends an address: BA 134.
    Defended,
}

/// BUs waiting for proxy DAD at most; beyond, new registrations get 130.
const MAX_DAD_PENDING: usize = 1024;

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HaStats {
    /// Packets handed to `handle_packet`.
    pub received: u64,
    /// Dropped: bad checksum.
    pub bad_checksum: u64,
    /// Dropped: unparsable MH.
    pub malformed: u64,
    /// BUs accepted (status 0).
    pub accepted: u64,
    /// BUs answered with a status >= 128.
    pub rejected: u64,
    /// The same, by status.
    pub refused_by_status: std::collections::BTreeMap<u8, u64>,
    /// Deregistrations processed.
    pub deregistered: u64,
    /// BUs dropped silently for lack of an authentication option (RFC 4285 §4).
    pub no_auth_option: u64,
    /// BUs dropped silently for an unknown SPI.
    pub unknown_spi: u64,
    /// BUs answered with 146 (MAC did not verify, or SA not for this HoA/NAI).
    pub auth_failed: u64,
    /// BUs answered with 144 or 145.
    pub replay_rejected: u64,
    /// BUs dropped silently for their care-of address (RFC 6275 §9.5.1): not unicast, one
    /// of the home agent's own, on the home link but not the home address, or inside the
    /// router's own mobile network prefixes.
    pub invalid_coa: u64,
    /// Other BUs dropped silently (not for a home agent, nonce indices, bad home address).
    pub dropped_other: u64,
    /// Binding Errors sent.
    pub binding_errors: u64,
    /// Binding Errors suppressed by the rate limit.
    pub binding_errors_limited: u64,
    /// ICMPv6 Parameter Problems asked for (RFC 6275 §9.2).
    pub parameter_problems: u64,
    /// Parameter Problems suppressed by the rate limit (shared with Binding Errors).
    pub parameter_problems_limited: u64,
    /// Binding Refresh Requests sent.
    pub brr_sent: u64,
    /// Home Agent Switch messages sent (RFC 5142), retransmissions included.
    pub home_agent_switches_sent: u64,
    /// Of those, retransmissions (RFC 5142 §5.2).
    pub home_agent_switches_retransmitted: u64,
    /// Bindings expired.
    pub expired: u64,
    /// Binding Identifier options (RFC 5648) refused with a per-BID status in a BA that
    /// accepted others (4, MCOA NOTCOMPLETE) or refused the BU.
    pub bids_refused: u64,
    /// New registrations refused because the cache held `max_bindings` (130).
    pub cache_full: u64,
    /// BUs for home addresses nothing in the configuration names, refused (129).
    pub unlisted_home_address: u64,
    /// Proxy DAD runs started.
    pub dad_started: u64,
    /// Registrations refused because another node defends the address (134).
    pub dad_defended: u64,
    /// Non-signalling packets with a Home Address option (RFC 6275 §9.3.1) received.
    pub hao_received: u64,
    /// Of those, from no live binding's care-of address: Binding Error 1.
    pub hao_unbound: u64,
    /// Of those with a live binding, not answered: only ICMPv6 Echo Requests are (the
    /// home agent cannot hand other traffic to its own stack as from the home address).
    pub hao_not_delivered: u64,
    /// Router Advertisements taken in from the home link (home agents list, §10.5.1).
    pub router_advertisements: u64,
    /// Home Agent Address Discovery Requests received (§10.5).
    pub haad_requests: u64,
    /// Mobile Prefix Solicitations answered (§10.6.2).
    pub mobile_prefix_solicitations: u64,
    /// Discovery requests dropped: not to our anycast address, odd source, or beyond the
    /// answer rate.
    pub discovery_dropped: u64,
}

/// The configuration could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Two SAs share an SPI.
    #[error("duplicate mobility SPI {0}")]
    DuplicateSpi(u32),
    /// A prefix table HoA lies in no served home prefix.
    #[error("prefix table home address {0} is not inside a served home prefix")]
    HoaOutsideHomePrefix(Ipv6Addr),
}

/// Per-HoA policy compiled from the prefix table. Held inline in `Ha::policy`'s slots,
/// with a router's usual one or two rows of each family inline too: every BU reads it,
/// and at a fleet's size each separate allocation is one more cache miss per BU (an `Arc`
/// and two `Vec`s were a fifth of the core's time with 100,000 bindings).
#[derive(Debug, Clone, Default)]
pub(crate) struct HoaPolicy {
    pub v6: SmallVec<[(Ipv6Net, PrefixMode); 2]>,
    pub v4: SmallVec<[(Ipv4Net, PrefixMode); 2]>,
    pub legacy_ipv4_mnp: bool,
}

/// A mobility SA with its key prepared for HMAC-SHA1 (derived once, at start).
#[derive(Debug)]
pub(crate) struct PreparedSa {
    pub sa: MobilitySa,
    pub key: proto::auth::MnHaKey,
}

impl std::ops::Deref for PreparedSa {
    type Target = MobilitySa;
    fn deref(&self) -> &MobilitySa {
        &self.sa
    }
}

/// The home agent core.
#[derive(Debug)]
pub struct Ha {
    pub(crate) cfg: HaCoreConfig,
    pub(crate) policy: HashMap<Ipv6Addr, HoaPolicy>,
    /// Inline, not behind an `Arc`: one dependent cache miss less per authenticated BU.
    pub(crate) sas: HashMap<u32, PreparedSa>,
    /// Home addresses some SA is bound to: only that SA may register them.
    pub(crate) named_hoas: HashSet<Ipv6Addr>,
    /// BUs of new registrations waiting for proxy DAD, by home address.
    pub(crate) dad: HashMap<Ipv6Addr, DadPending>,
    /// Set while a waiting BU is processed again with its verdict.
    pub(crate) dad_verdict: Option<(Ipv6Addr, DadVerdict)>,
    /// By home address; each entry holds its care-of bindings (the plain one, or one per
    /// RFC 5648 BID), see `cache.rs`.
    pub(crate) cache: HashMap<Ipv6Addr, Bce>,
    /// (deadline, HoA): the next expiry or BRR of any care-of binding of each entry;
    /// exactly one per entry.
    pub(crate) timers: BTreeSet<(Instant, Ipv6Addr)>,
    /// Last accepted RFC 4285 timestamp of HoAs whose binding was removed, kept for the
    /// timestamp window so a replayed BU cannot resurrect the binding (RFC 4285 §6).
    pub(crate) replay_floor: HashMap<Ipv6Addr, (u64, Instant)>,
    /// Home Agent Switch messages being retransmitted (RFC 5142 §5.2), by home address.
    pub(crate) switches: HashMap<Ipv6Addr, switch::PendingSwitch>,
    /// Care-of bindings beyond the first of each entry (RFC 5648's extra BIDs), kept up
    /// to date so that [`Ha::binding_count`] is O(1): the shell asks every step, and a
    /// walk over a fleet's cache cost 0.5 ms a step at 100,000 bindings (measured).
    pub(crate) extra_bindings: usize,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) icmp_errors: VecDeque<ParameterProblem>,
    /// Whole IPv6 packets of ICMPv6 answers (Echo Replies and Mobile Prefix
    /// Advertisements with an RH2, Home Agent Address Discovery Replies), for the shell's
    /// raw socket.
    pub(crate) icmp_replies: VecDeque<Vec<u8>>,
    /// The home agents of the home link (RFC 6275 §10.5.1).
    pub(crate) home_agents: HomeAgentsList,
    /// The home link's prefixes and M/O flags as its Router Advertisements give them.
    pub(crate) home_link: discovery::HomeLink,
    /// DHAAD Replies and Mobile Prefix Advertisements token bucket.
    pub(crate) discovery_bucket: TokenBucket,
    pub(crate) events: VecDeque<HaEvent>,
    /// Binding Error token bucket: (tokens, last refill).
    pub(crate) be_bucket: TokenBucket,
    pub(crate) stats: HaStats,
    /// Scratch buffer for emitting MHs.
    pub(crate) scratch: Vec<u8>,
}

impl Ha {
    /// A home agent core with an empty binding cache.
    pub fn new(cfg: HaCoreConfig) -> Result<Ha, ConfigError> {
        let mut policy: HashMap<Ipv6Addr, HoaPolicy> = HashMap::new();
        for row in &cfg.prefix_table {
            if !cfg.home_prefixes.iter().any(|p| p.contains(&row.hoa)) {
                return Err(ConfigError::HoaOutsideHomePrefix(row.hoa));
            }
            let e = policy.entry(row.hoa).or_default();
            match row.prefix {
                IpNet::V6(p) => e.v6.push((p.trunc(), row.mode)),
                IpNet::V4(p) => e.v4.push((p.trunc(), row.mode)),
            }
        }
        for hoa in &cfg.legacy_ipv4_mnp_hoas {
            policy.entry(*hoa).or_default().legacy_ipv4_mnp = true;
        }
        let mut sas = HashMap::new();
        if let AuthPolicy::Required(list) = &cfg.auth {
            for sa in list {
                let prepared = PreparedSa {
                    sa: sa.clone(),
                    key: proto::auth::MnHaKey::new(&sa.key),
                };
                if sas.insert(sa.spi, prepared).is_some() {
                    return Err(ConfigError::DuplicateSpi(sa.spi));
                }
            }
        }
        let named_hoas = sas.values().filter_map(|sa| sa.hoa).collect();
        if cfg.auth == AuthPolicy::Disabled {
            warn!("RFC 4285 authentication disabled by configuration: any node may register");
        }
        let burst = cfg.binding_error_rate;
        let home_agents = HomeAgentsList::new(
            cfg.ha_address,
            cfg.home_agent_preference,
            cfg.mobile_router_support,
        );
        let discovery_bucket = TokenBucket::new(cfg.discovery_reply_rate);
        Ok(Ha {
            cfg,
            policy,
            sas,
            named_hoas,
            dad: HashMap::new(),
            dad_verdict: None,
            cache: HashMap::new(),
            timers: BTreeSet::new(),
            replay_floor: HashMap::new(),
            switches: HashMap::new(),
            extra_bindings: 0,
            transmits: VecDeque::new(),
            icmp_errors: VecDeque::new(),
            icmp_replies: VecDeque::new(),
            home_agents,
            home_link: discovery::HomeLink::default(),
            discovery_bucket,
            events: VecDeque::new(),
            be_bucket: TokenBucket::new(burst),
            stats: HaStats::default(),
            scratch: vec![0; proto::mh::MAX_LEN],
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &HaCoreConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &HaStats {
        &self.stats
    }

    /// Number of home addresses in the cache (each with one binding, or with several
    /// RFC 5648 BID bindings: [`Ha::binding_count`]).
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// True if the binding cache is empty.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Number of bindings: one per home address, or one per BID of a home address
    /// registered with RFC 5648 Binding Identifiers.
    pub fn binding_count(&self) -> usize {
        debug_assert_eq!(
            self.cache.len() + self.extra_bindings,
            self.cache.values().map(Bce::count).sum::<usize>(),
            "extra_bindings out of step"
        );
        self.cache.len() + self.extra_bindings
    }

    /// The binding of `hoa` as the bus would announce it, with the remaining lifetime at
    /// `now`; with RFC 5648 BIDs, the one with the lowest BID ([`Ha::bindings`] has all).
    pub fn binding(&self, now: Instant, hoa: &Ipv6Addr) -> Option<Binding> {
        self.cache
            .get(hoa)
            .map(|b| self.to_binding(hoa, b, &b.first, now))
    }

    /// Every binding of `hoa` (one per BID with RFC 5648), by BID.
    pub fn bindings(&self, now: Instant, hoa: &Ipv6Addr) -> Vec<Binding> {
        self.cache.get(hoa).map_or_else(Vec::new, |b| {
            b.bindings()
                .map(|c| self.to_binding(hoa, b, c, now))
                .collect()
        })
    }

    /// Processes one received Mobility Header.
    pub fn handle_packet(&mut self, now: Instant, wall: Duration, signal: &ReceivedSignal<'_>) {
        self.stats.received += 1;
        let Ok(packet) = Packet::new_checked(signal.mh) else {
            self.stats.malformed += 1;
            debug!(src = %signal.src, "truncated mobility header dropped");
            return;
        };
        let mh = packet.as_bytes();
        if signal.checksum == ChecksumState::Unverified {
            let ok = signal
                .home_address
                .is_some_and(|h| packet.verify_checksum(&h, &signal.dst))
                || packet.verify_checksum(&signal.src, &signal.dst);
            if !ok {
                self.stats.bad_checksum += 1;
                debug!(src = %signal.src, "mobility header with bad checksum dropped");
                return;
            }
        }
        // RFC 6275 §9.2: Payload Proto other than 59 or Header Len below the minimum for
        // the type: drop, ICMPv6 Parameter Problem code 0 to the on-wire source, pointing
        // at the field (Linux's mip6_mh_filter checks these before the type too).
        if let Some(at) = packet.parameter_problem_pointer() {
            self.stats.malformed += 1;
            debug!(src = %signal.src, pointer = at, "malformed mobility header dropped");
            self.send_parameter_problem(now, signal, at);
            return;
        }
        // RFC 6275 §9.2: unknown MH types get a Binding Error status 2. A home agent that
        // does no route optimisation treats every type it does not process as unknown.
        let mh_type = packet.mh_type();
        match mh_type {
            MhType::BindingUpdate => {}
            MhType::BindingError => {
                self.handle_binding_error(signal, mh);
                return;
            }
            MhType::BindingAck | MhType::BindingRefreshRequest | MhType::HomeAgentSwitch => {
                debug!(src = %signal.src, ?mh_type, "mobility message not for a home agent ignored");
                return;
            }
            _ => {
                self.send_binding_error(now, signal, BeStatus::UnrecognizedMhType);
                return;
            }
        }
        let hoa = signal.home_address.unwrap_or(signal.src);
        // SHISA's legacy IPv4 MNP option (type 11) only for the HoAs configured for it;
        // for every other HoA type 11 is an unknown option, skipped (RFC 6275 §6.2.1).
        let policy = self.policy.get(&hoa).cloned();
        let legacy = policy.as_ref().is_some_and(|p| p.legacy_ipv4_mnp);
        let parse_cfg = ParseConfig::new().with_legacy_ipv4_mnp(legacy);
        match MhRepr::parse(&Packet::new_unchecked(mh), parse_cfg) {
            Ok(MhRepr::BindingUpdate(bu)) => self.process_bu(now, wall, signal, hoa, policy, &bu),
            Ok(_) => unreachable!("type checked above"),
            Err(proto::Error::Malformed("mobile network prefix length")) => {
                // RFC 3963 §6.2: a prefix length above 128 is an Invalid Prefix (141), not
                // a malformed message. Parse a copy with those lengths set to 0 (also 141);
                // the MAC is still checked over the original octets.
                let patched = zero_bad_mnp_lengths(mh);
                match MhRepr::parse(&Packet::new_unchecked(&patched[..]), parse_cfg) {
                    Ok(MhRepr::BindingUpdate(bu)) => {
                        self.process_bu(now, wall, signal, hoa, policy, &bu)
                    }
                    _ => {
                        self.stats.malformed += 1;
                        debug!(src = %signal.src, "malformed binding update dropped");
                    }
                }
            }
            Err(e) => {
                self.stats.malformed += 1;
                debug!(src = %signal.src, error = %e, "malformed binding update dropped");
            }
        }
    }

    /// Expires bindings and sends Binding Refresh Requests whose time has come. Each
    /// care-of binding of a home address (RFC 5648: one per BID) has its own lifetime;
    /// the home address's one timer wakes at the earliest.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, hoa)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(bce) = self.cache.get(&hoa) else {
                continue;
            };
            let due = bce.due();
            if due > now {
                // Refreshed since this was scheduled (timers are lazy, see bu.rs).
                self.reschedule(hoa, due);
                continue;
            }
            let (expired, brr): (Vec<_>, Vec<_>) = bce
                .bindings()
                .filter(|c| c.due <= now)
                .map(|c| (c.bid, c.expires <= now))
                .partition(|(_, gone)| *gone);
            for (bid, _) in brr {
                // The BRR time (RFC 6275 §9.5.5): once per registration.
                if let Some(c) = self
                    .cache
                    .get_mut(&hoa)
                    .and_then(|b| b.bindings_mut().find(|c| c.bid == bid))
                {
                    c.brr_sent = true;
                    c.due = c.expires;
                }
                self.send_brr(now, hoa, bid);
            }
            for (bid, _) in expired {
                self.stats.expired += 1;
                if let Some(c) = self.cache.get(&hoa).and_then(|b| b.get(bid)) {
                    info!(hoa = %hoa, coa = %c.coa, bid, "binding expired");
                }
                self.remove_care_of(now, hoa, bid);
            }
            if let Some(due) = self.cache.get(&hoa).map(Bce::due) {
                self.reschedule(hoa, due);
            }
        }
        self.replay_floor.retain(|_, (_, until)| *until > now);
    }

    /// Puts `hoa`'s entry in the timer set at `due` (it is not there: just popped).
    fn reschedule(&mut self, hoa: Ipv6Addr, due: Instant) {
        if let Some(bce) = self.cache.get_mut(&hoa) {
            bce.timer = due;
            self.timers.insert((due, hoa));
        }
    }

    /// The next time [`Ha::handle_timeout`] may have work to do. Timers are lazy (a refresh
    /// does not move its entry in the timer set), so this can be earlier than the next real
    /// expiry or BRR: a wakeup then only reschedules. Never later than the real deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = self.timers.first().map(|(t, _)| *t);
        let r = self.replay_floor.values().map(|(_, u)| *u).min();
        let d = self.dad.values().map(|p| p.deadline).min();
        let h = self.switches.values().map(|p| p.next).min();
        [t, r, d, h].into_iter().flatten().min()
    }

    /// A Neighbour Advertisement for `target` was seen on the home link (from another
    /// node): if a proxy DAD is running for it, the registration is refused with 134
    /// (RFC 6275 §10.3.1) and nothing is installed.
    pub fn handle_dad_defended(&mut self, now: Instant, wall: Duration, target: Ipv6Addr) {
        let Some(hoa) = self
            .dad
            .iter()
            .find(|(_, p)| p.targets.contains(&target))
            .map(|(h, _)| *h)
        else {
            return;
        };
        warn!(%hoa, %target, "proxy DAD: the address is defended on the home link; refusing the registration (134)");
        self.finish_dad(now, wall, hoa, DadVerdict::Defended);
    }

    /// Processes the BU that waited for DAD again, with the verdict.
    fn finish_dad(&mut self, now: Instant, wall: Duration, hoa: Ipv6Addr, verdict: DadVerdict) {
        let Some(p) = self.dad.remove(&hoa) else {
            return;
        };
        let signal = ReceivedSignal {
            src: p.src,
            dst: p.dst,
            home_address: p.home_address,
            mh: &p.mh,
            checksum: ChecksumState::Verified,
            ifindex: p.ifindex,
            udp_v4: p.udp_v4,
        };
        self.dad_verdict = Some((hoa, verdict));
        self.handle_packet(now, wall, &signal);
        self.dad_verdict = None;
    }

    /// Proxy DADs whose time has come, none defended: their registrations go ahead.
    pub fn handle_dad_timeouts(&mut self, now: Instant, wall: Duration) {
        let due: Vec<Ipv6Addr> = self
            .dad
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(h, _)| *h)
            .collect();
        for hoa in due {
            debug!(%hoa, "proxy DAD: nobody defends the address");
            self.finish_dad(now, wall, hoa, DadVerdict::Clear);
        }
    }

    /// Next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next ICMPv6 error to send. Poll right after [`Ha::handle_packet`], while the invoking
    /// packet is still at hand: the error quotes it. Independent of the journal.
    pub fn poll_icmp_error(&mut self) -> Option<ParameterProblem> {
        self.icmp_errors.pop_front()
    }

    /// A packet with a Home Address option that is not signalling (RFC 6275 §9.3.1). From
    /// the care-of address of a live binding for that home address it is processed as if
    /// sent from the home address: an ICMPv6 Echo Request is answered with an Echo Reply
    /// and a Mobile Prefix Solicitation with a Mobile Prefix Advertisement, to the care-of
    /// address with a type 2 routing header (§6.4, §9.3.2, §10.6.2), poll
    /// [`Ha::poll_icmp_reply`]; other traffic is counted, not delivered. Otherwise the
    /// packet is discarded and the source gets a Binding Error status 1 (rate-limited with
    /// the other errors, §9.3.3).
    pub fn handle_hao_packet(&mut self, now: Instant, sig: &HaoSignal<'_>) {
        self.stats.hao_received += 1;
        let hoa = sig.home_address;
        // Any care-of binding of the home address (RFC 5648: one per BID).
        let bound = self
            .cache
            .get(&hoa)
            .is_some_and(|b| b.bindings().any(|c| c.coa == CareOf::V6(sig.src)));
        if !bound {
            self.stats.hao_unbound += 1;
            debug!(src = %sig.src, %hoa, "home address option without a binding: binding error 1");
            let signal = ReceivedSignal {
                src: sig.src,
                dst: sig.dst,
                home_address: Some(hoa),
                mh: &[],
                checksum: ChecksumState::Verified,
                ifindex: sig.ifindex,
                udp_v4: None,
            };
            self.send_binding_error(
                now,
                &signal,
                BeStatus::UnknownBindingForHomeAddressDestinationOption,
            );
            return;
        }
        let request = (sig.upper_layer == proto::IPPROTO_ICMPV6)
            .then(|| Icmpv6Repr::parse_bytes(sig.payload).ok())
            .flatten()
            .filter(|_| !sig.dst.is_multicast());
        let reply = match &request {
            // RFC 4443 §4.2: the reply carries the request's identifier, sequence and data.
            Some(r @ Icmpv6Repr::EchoRequest(_)) => r.echo_reply(),
            // RFC 6275 §10.6.2: answered to the care-of address with an RH2.
            Some(Icmpv6Repr::MobilePrefixSolicitation(m)) => {
                self.stats.mobile_prefix_solicitations += 1;
                debug!(src = %sig.src, %hoa, identifier = m.identifier,
                    "mobile prefix solicitation: advertisement");
                let Some(mpa) = self.mobile_prefix_advertisement(now, m.identifier) else {
                    debug!(%hoa, "mobile prefix advertisement rate-limited");
                    return;
                };
                Some(mpa)
            }
            _ => None,
        };
        let Some(reply) = reply else {
            self.stats.hao_not_delivered += 1;
            debug!(src = %sig.src, %hoa, upper = sig.upper_layer,
                "traffic with a home address option from a bound care-of address not delivered");
            return;
        };
        self.queue_icmp(sig.dst, sig.src, &reply, Some(hoa));
    }

    /// Builds a whole IPv6 packet carrying `message` from `src` to `dst`, with a type 2
    /// routing header for `rh2` when given, and queues it for [`Ha::poll_icmp_reply`].
    pub(crate) fn queue_icmp(
        &mut self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        message: &Icmpv6Repr<'_>,
        rh2: Option<Ipv6Addr>,
    ) {
        let mut icmp = vec![0u8; message.buffer_len()];
        if let Err(e) = message.emit(&mut Icmpv6Packet::new_unchecked(&mut icmp[..])) {
            debug!(error = %e, "icmpv6 answer not built");
            return;
        }
        let addressing = MobilityPacketRepr {
            src_addr: src,
            dst_addr: dst,
            hop_limit: self.cfg.hop_limit,
            home_address: None,
            rh2_home_address: rh2,
        };
        let mut packet = vec![0u8; mobility_packet_len(&addressing, icmp.len())];
        match emit_upper_layer_packet(&addressing, proto::IPPROTO_ICMPV6, &icmp, 2..4, &mut packet)
        {
            Ok(_) => self.icmp_replies.push_back(packet),
            // Only a request near 64 KiB, which the RH2 pushes past the limit.
            Err(e) => debug!(error = %e, "icmpv6 answer not built"),
        }
    }

    /// Next ICMPv6 answer ([`Ha::handle_hao_packet`], [`Ha::handle_haad_request`]): a
    /// whole IPv6 packet for an `IPPROTO_RAW` socket.
    pub fn poll_icmp_reply(&mut self) -> Option<Vec<u8>> {
        self.icmp_replies.pop_front()
    }

    /// Next event (drain these, persisting, before sending transmits).
    pub fn poll_event(&mut self) -> Option<HaEvent> {
        self.events.pop_front()
    }

    /// The binding cache for a state request, in home address then BID order (stable for
    /// people and tests), lifetime = remaining seconds at `now`: one item per binding, so
    /// one per BID of a home address registered with RFC 5648. The shell answers the bus
    /// with one binding cache item each.
    pub fn handle_state_request(&self, now: Instant) -> Vec<Binding> {
        let mut items: Vec<Binding> = self
            .cache
            .iter()
            .flat_map(|(hoa, b)| b.bindings().map(move |c| (hoa, b, c)))
            .map(|(hoa, b, c)| self.to_binding(hoa, b, c, now))
            .collect();
        items.sort_by_key(|b| (b.hoa, b.binding_id));
        items
    }

    /// Every binding as a journal record with its absolute expiry, for compaction.
    pub fn snapshot(&self, now: Instant, wall: Duration) -> Vec<PersistedBinding> {
        let mut v: Vec<_> = self
            .cache
            .iter()
            .flat_map(|(hoa, b)| b.persisted_all(*hoa, now, wall))
            .collect();
        v.sort_by_key(|b| (b.hoa, b.bid));
        v
    }

    /// Reloads persisted bindings after a restart: bindings whose absolute expiry has
    /// passed (by `wall`) are dropped; the others get their remaining lifetime and are
    /// re-announced (BcAdd for each binding, ProxyNdAdd for each home address). Records
    /// for HoAs the configuration no longer serves are dropped too. The records of one home
    /// address (one per RFC 5648 BID) make one entry; what they share (sequence number,
    /// replay state, prefixes) comes from the one with the newest sequence number. Returns
    /// how many bindings were restored.
    pub fn restore(
        &mut self,
        now: Instant,
        wall: Duration,
        records: impl IntoIterator<Item = PersistedBinding>,
    ) -> usize {
        let wall_ms = wall.as_millis() as u64;
        let mut by_hoa: std::collections::BTreeMap<Ipv6Addr, Vec<PersistedBinding>> =
            std::collections::BTreeMap::new();
        for rec in records {
            if rec.expires_unix_ms <= wall_ms {
                debug!(hoa = %rec.hoa, bid = rec.bid, "persisted binding already expired");
                continue;
            }
            if !self.serves(&rec.hoa) {
                warn!(hoa = %rec.hoa, "persisted binding outside the served home prefixes dropped");
                continue;
            }
            by_hoa.entry(rec.hoa).or_default().push(rec);
        }
        let mut n = 0;
        for (hoa, mut recs) in by_hoa {
            let newest = recs
                .iter()
                .fold(None, |best: Option<&PersistedBinding>, r| match best {
                    Some(b)
                        if !proto::seq::SequenceNumber(r.sequence)
                            .is_newer_than(proto::seq::SequenceNumber(b.sequence)) =>
                    {
                        Some(b)
                    }
                    _ => Some(r),
                });
            let Some(newest) = newest.cloned() else {
                continue;
            };
            // A plain binding and BID bindings never live together (RFC 5648 §6.2); a
            // journal that says otherwise (hand-made) keeps the kind of the newest record.
            let mcoa = newest.bid.is_some();
            let before = recs.len();
            recs.retain(|r| r.bid.is_some() == mcoa);
            recs.sort_by_key(|r| r.bid);
            recs.dedup_by_key(|r| r.bid);
            if recs.len() != before {
                warn!(%hoa, dropped = before - recs.len(),
                    "persisted bindings mixing BID and plain bindings (or repeating a BID); kept the newest kind");
            }
            let expires_of =
                |r: &PersistedBinding| now + Duration::from_millis(r.expires_unix_ms - wall_ms);
            let mut bce = Bce::from_persisted(&newest, expires_of(&newest));
            for r in &recs {
                bce.upsert(Bce::care_of_from_persisted(r, expires_of(r)));
            }
            bce.timer = bce.due();
            if let Some(old) = self.cache.remove(&hoa) {
                self.timers.remove(&(old.timer, hoa));
                self.extra_bindings -= old.count() - 1;
            }
            self.extra_bindings += bce.count() - 1;
            self.timers.insert((bce.timer, hoa));
            for c in bce.bindings() {
                info!(hoa = %hoa, bid = c.bid, coa = %c.coa, seq = bce.sequence,
                    remaining_s = c.expires.saturating_duration_since(now).as_secs(), "binding restored");
            }
            self.events
                .push_back(HaEvent::ProxyNdAdd(self.proxy_nd(&hoa, &bce)));
            for c in bce.bindings() {
                let b = self.to_binding(&hoa, &bce, c, now);
                self.events.push_back(HaEvent::BcAdd(b));
                n += 1;
            }
            self.cache.insert(hoa, bce);
        }
        n
    }

    // ---- internals shared by bu.rs ----

    pub(crate) fn serves(&self, hoa: &Ipv6Addr) -> bool {
        self.cfg.home_prefixes.iter().any(|p| p.contains(hoa))
    }

    pub(crate) fn to_binding(
        &self,
        hoa: &Ipv6Addr,
        b: &Bce,
        c: &CareOfBinding,
        now: Instant,
    ) -> Binding {
        binding_of(&self.cfg, hoa, b, c, now)
    }

    pub(crate) fn proxy_nd(&self, hoa: &Ipv6Addr, b: &Bce) -> ProxyNd {
        proxy_nd_of(&self.cfg, hoa, b)
    }

    /// Removes every binding of a home address: Persist(Remove) and BcRemove for each
    /// (one per RFC 5648 BID), then ProxyNdRemove, in that order.
    pub(crate) fn remove_binding(&mut self, now: Instant, hoa: Ipv6Addr) -> Option<Bce> {
        let bce = self.cache.remove(&hoa)?;
        self.extra_bindings -= bce.count() - 1;
        // RFC 5142 §5.2: the node left (de-registered) or its binding expired.
        self.switches.remove(&hoa);
        self.timers.remove(&(bce.timer, hoa));
        if let Some(ts) = bce.last_timestamp {
            let window = self.replay_window(bce.spi);
            self.replay_floor.insert(hoa, (ts, now + window));
        }
        for c in bce.bindings() {
            self.queue_removal(now, hoa, &bce, c);
        }
        self.events
            .push_back(HaEvent::ProxyNdRemove(self.proxy_nd(&hoa, &bce)));
        Some(bce)
    }

    /// Removes one care-of binding of a home address (RFC 5648: one BID); the last one
    /// takes the home address with it ([`Ha::remove_binding`]).
    pub(crate) fn remove_care_of(&mut self, now: Instant, hoa: Ipv6Addr, bid: Option<u16>) {
        let Some(bce) = self.cache.get_mut(&hoa) else {
            return;
        };
        if bce.get(bid).is_none() {
            return;
        }
        if bce.count() == 1 {
            self.remove_binding(now, hoa);
            return;
        }
        let Some(c) = bce.remove(bid) else {
            return;
        };
        self.extra_bindings -= 1;
        let mut b = binding_of(&self.cfg, &hoa, bce, &c, now);
        b.lifetime = 0;
        self.events
            .push_back(HaEvent::Persist(JournalRecord::Remove { hoa, bid: c.bid }));
        self.events.push_back(HaEvent::BcRemove(b));
    }

    /// Persist(Remove) and BcRemove for care-of binding `c` of `bce`.
    pub(crate) fn queue_removal(
        &mut self,
        now: Instant,
        hoa: Ipv6Addr,
        bce: &Bce,
        c: &CareOfBinding,
    ) {
        self.events
            .push_back(HaEvent::Persist(JournalRecord::Remove { hoa, bid: c.bid }));
        let mut b = self.to_binding(&hoa, bce, c, now);
        b.lifetime = 0;
        self.events.push_back(HaEvent::BcRemove(b));
    }

    pub(crate) fn replay_window(&self, spi: Option<u32>) -> Duration {
        match spi.and_then(|s| self.sas.get(&s)).map(|sa| sa.replay) {
            Some(crate::config::ReplayProtection::Timestamps { window }) => window,
            _ => crate::config::DEFAULT_TIMESTAMP_WINDOW,
        }
    }

    /// Emits `repr` (signing it with `sign` = (SA key, CoA for the MAC, HoA) when given),
    /// fills the checksum for `addressing` and queues it.
    pub(crate) fn queue_mh(
        &mut self,
        repr: &MhRepr<'_>,
        addressing: MobilityPacketRepr,
        udp_v4: Option<UdpV4Path>,
        sign: Option<(&proto::auth::MnHaKey, std::net::IpAddr, Ipv6Addr)>,
        ifindex: Option<u32>,
    ) {
        let n = match repr.emit_to(&mut self.scratch) {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "could not emit a mobility header");
                return;
            }
        };
        let mut mh = self.scratch[..n].to_vec();
        if let Some((key, coa, hoa)) = sign
            && let Err(e) = key.sign(&mut mh, coa, &hoa)
        {
            warn!(error = %e, "could not sign a mobility header");
            return;
        }
        let src = addressing.home_address.unwrap_or(addressing.src_addr);
        let dst = addressing.rh2_home_address.unwrap_or(addressing.dst_addr);
        Packet::new_unchecked(&mut mh[..]).fill_checksum(&src, &dst);
        self.transmits.push_back(Transmit {
            addressing,
            udp_v4,
            mh,
            ifindex,
        });
    }

    fn send_binding_error(&mut self, now: Instant, signal: &ReceivedSignal<'_>, status: BeStatus) {
        // RFC 6275 §9.3.3: only to a unicast source, rate-limited like ICMPv6.
        let src = signal.src;
        if src.is_multicast() || src.is_unspecified() {
            return;
        }
        if !self.take_be_token(now) {
            self.stats.binding_errors_limited += 1;
            return;
        }
        self.stats.binding_errors += 1;
        debug!(dst = %src, status = u8::from(status), "binding error sent");
        let repr = MhRepr::BindingError(BindingError {
            status,
            home_address: signal.home_address.unwrap_or(Ipv6Addr::UNSPECIFIED),
            options: Vec::new(),
        });
        // Straight to the on-wire source, no RH2 (§9.3.3).
        let addressing = MobilityPacketRepr {
            src_addr: signal.dst,
            dst_addr: src,
            hop_limit: self.cfg.hop_limit,
            home_address: None,
            rh2_home_address: None,
        };
        self.queue_mh(
            &repr,
            addressing,
            signal.udp_v4.map(swap_path),
            None,
            Some(signal.ifindex),
        );
    }

    fn send_parameter_problem(&mut self, now: Instant, signal: &ReceivedSignal<'_>, at: usize) {
        // RFC 4443 §2.4(e): not about a packet sent to a multicast address or from an
        // address that does not identify one node. The UDP/IPv4 path (RFC 5555) has no
        // ICMPv6 reply path in this daemon.
        let src = signal.src;
        if src.is_multicast()
            || src.is_unspecified()
            || signal.dst.is_multicast()
            || signal.udp_v4.is_some()
        {
            return;
        }
        // RFC 4443 §2.4(f): rate-limited, one bucket with the Binding Errors (§9.3.3).
        if !self.take_be_token(now) {
            self.stats.parameter_problems_limited += 1;
            return;
        }
        self.stats.parameter_problems += 1;
        debug!(dst = %src, pointer = at, "ICMPv6 parameter problem queued");
        self.icmp_errors.push_back(ParameterProblem {
            src: signal.dst,
            dst: src,
            code: 0,
            mh_pointer: at as u32,
            ifindex: signal.ifindex,
        });
    }

    fn take_be_token(&mut self, now: Instant) -> bool {
        self.be_bucket.take(now)
    }

    /// A Binding Refresh Request for care-of binding `bid` of `hoa`, to its care-of
    /// address; for an RFC 5648 binding it names the BID (§6.4).
    fn send_brr(&mut self, _now: Instant, hoa: Ipv6Addr, bid: Option<u16>) {
        let Some(bce) = self.cache.get(&hoa) else {
            return;
        };
        let Some(c) = bce.get(bid) else {
            return;
        };
        let mut options = Vec::new();
        if let Some(bid) = bid {
            options.push(MobilityOption::BindingIdentifier {
                bid,
                status: 0,
                h: false,
                coa: None,
                bid_pri: 0,
            });
        }
        let sa = bce
            .spi
            .and_then(|s| self.sas.get(&s))
            .map(|sa| (sa.spi, sa.key.clone()));
        if let Some((spi, _)) = &sa {
            options.push(proto::auth::mn_ha_option(*spi));
        }
        let repr = MhRepr::BindingRefreshRequest(BindingRefreshRequest { options });
        let (addressing, udp) = self.addressing_to(&hoa, c);
        let coa_mac = c
            .coa_v4_option
            .map_or_else(|| care_of_for_mac(&c.coa), std::net::IpAddr::V4);
        self.stats.brr_sent += 1;
        info!(hoa = %hoa, coa = %c.coa, bid, "binding refresh request sent");
        let sign = sa.as_ref().map(|(_, key)| (key, coa_mac, hoa));
        self.queue_mh(&repr, addressing, udp, sign, None);
    }

    /// Where packets to a registered MR go: to the CoA with an RH2 carrying the HoA
    /// (RFC 6275 §6.4), or in UDP/IPv4 to the HoA for an IPv4 CoA (RFC 5555 §4.2).
    pub(crate) fn addressing_to(
        &self,
        hoa: &Ipv6Addr,
        b: &CareOfBinding,
    ) -> (MobilityPacketRepr, Option<UdpV4Path>) {
        match b.coa {
            CareOf::V6(coa) => (
                MobilityPacketRepr {
                    src_addr: self.cfg.ha_address,
                    dst_addr: coa,
                    hop_limit: self.cfg.hop_limit,
                    home_address: None,
                    rh2_home_address: (coa != *hoa).then_some(*hoa),
                },
                None,
            ),
            CareOf::V4 { addr, udp_port } => {
                let local = SocketAddrV4::new(
                    self.cfg.ha_address_v4.unwrap_or(Ipv4Addr::UNSPECIFIED),
                    proto::DSMIP_UDP_PORT,
                );
                (
                    MobilityPacketRepr {
                        src_addr: self.cfg.ha_address,
                        dst_addr: *hoa,
                        hop_limit: self.cfg.hop_limit,
                        home_address: None,
                        rh2_home_address: None,
                    },
                    Some(UdpV4Path {
                        peer: SocketAddrV4::new(addr, udp_port.unwrap_or(proto::DSMIP_UDP_PORT)),
                        local,
                    }),
                )
            }
        }
    }
}

/// The bus view of care-of binding `c` of a binding cache entry, lifetime remaining at
/// `now`: its own care-of address and BID, the entry's prefixes (RFC 5648 §7: a mobile
/// router's prefixes are reached through any of its care-of addresses).
pub(crate) fn binding_of(
    cfg: &HaCoreConfig,
    hoa: &Ipv6Addr,
    b: &Bce,
    c: &CareOfBinding,
    now: Instant,
) -> Binding {
    let encapsulation = match c.coa {
        CareOf::V6(_) => Encapsulation::InIpv6,
        CareOf::V4 { udp_port: None, .. } => Encapsulation::InIpv4,
        CareOf::V4 {
            udp_port: Some(_), ..
        } => Encapsulation::UdpIpv4 {
            ha_port: proto::DSMIP_UDP_PORT,
        },
    };
    Binding {
        hoa: *hoa,
        hoa_v4: b.hoa_v4,
        coa: c.coa,
        ha: cfg.ha_address,
        ha_v4: cfg.ha_address_v4,
        mnp_v6: b.mnp_v6.to_vec(),
        mnp_v4: b.mnp_v4.to_vec(),
        encapsulation,
        lifetime: c.expires.saturating_duration_since(now).as_secs() as u32,
        binding_id: c.bid,
        flags: proto::mh::BuFlags(b.flags),
        nat_detected: c.nat_detected,
        coa_ifindex: None,
        flows: b.flows.to_vec(),
        bid_priority: c.bid_pri,
    }
}

/// Proxy ND for a registered HoA (and its link-local address with L, RFC 6275 §10.4.1).
pub(crate) fn proxy_nd_of(cfg: &HaCoreConfig, hoa: &Ipv6Addr, b: &Bce) -> ProxyNd {
    let link_local = (b.flags & proto::mh::BuFlags::L.bits() != 0).then(|| {
        let o = hoa.octets();
        let mut ll = [0u8; 16];
        ll[0] = 0xfe;
        ll[1] = 0x80;
        ll[8..].copy_from_slice(&o[8..]);
        Ipv6Addr::from(ll)
    });
    ProxyNd {
        hoa: *hoa,
        link_local,
        ifindex: cfg.home_ifindex,
        router: b.flags & proto::mh::BuFlags::R.bits() != 0,
    }
}

/// A copy of a BU with every MNP option's prefix length above 128 set to 0.
fn zero_bad_mnp_lengths(mh: &[u8]) -> Vec<u8> {
    const OPTIONS: usize = 12;
    let mut out = mh.to_vec();
    let Some(region) = mh.get(OPTIONS..) else {
        return out;
    };
    for (at, t, data) in proto::option::raw_options(region).map_while(Result::ok) {
        if t == 6 && data.len() == 18 && data[1] > 128 {
            out[OPTIONS + at + 3] = 0;
        }
    }
    out
}

/// The reply path of a received UDP/IPv4 path is the same pair: `peer` stays the MR.
fn swap_path(p: UdpV4Path) -> UdpV4Path {
    p
}

/// The care-of address as RFC 4285's MAC input (IPv4 CoAs IPv4-mapped, see `proto::auth`).
pub(crate) fn care_of_for_mac(coa: &CareOf) -> std::net::IpAddr {
    match *coa {
        CareOf::V6(a) => a.into(),
        CareOf::V4 { addr, .. } => addr.into(),
    }
}
