//! The sans-IO mobile router core: Binding Update List for the home registration,
//! retransmission and refresh (RFC 6275 §11.7-§11.8), NEMO Basic Support (RFC 3963 §5),
//! IPv4 mobile network prefixes in the same BU (RFC 5555 §3.1.1, Shima's design) and
//! RFC 4285 authentication.
//!
//! No sockets, no clock, no files: the shell passes `now` (monotonic [`Instant`]) into
//! every call and the wall clock through [`MrCore::set_wall_clock`], and pulls
//! [`MrCore::poll_transmit`], [`MrCore::poll_event`] and [`MrCore::poll_timeout`].
//!
//! The Binding Update List (`bul`) holds one entry per home agent and binding
//! identifier; the core registers through its primary entry (the configured home agent),
//! so one MR registers one home address with one home agent. With multiple care-of
//! addresses (RFC 5648, `MrCoreConfig::multiple_coa`) the primary's BU is a bulk
//! registration of every IPv6 uplink of the movement detector (`mcoa`), each binding
//! identifier the home agent accepts gets an entry of its own, and the uplinks the bulk
//! BU cannot register (IPv4 ones, or all after a 168) run transactions of their own in
//! their entries (`individual`).
//!
//! Layout, as in had's core: this module holds the state, the movement reports and the
//! received signalling (BRR, BE, Parameter Problem); `bu` builds and sends Binding
//! Updates, `ba` processes Binding Acknowledgements, `timers` retransmits, refreshes
//! and expires, `status` decides what a refusal means.

mod ba;
mod bu;
mod bul;
mod coa;
mod config;
mod dhaad;
mod flows;
mod individual;
mod io;
mod mcoa;
mod mpd;
mod status;
mod switch;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use proto::auth;
use proto::ext::MobilityPacketRepr;
use proto::mh::{BaStatus, BeStatus, BindingAck, BindingUpdate, BuFlags, MhRepr, Packet};
use proto::model::{Binding, CareOf, Encapsulation, MdCommand, MdInfo};
use proto::option::{
    AUTH_SUBTYPE_MN_HA, Ipv4AckStatus, MN_ID_SUBTYPE_NAI, MobilityOption, ParseConfig,
};
use proto::rate::TokenBucket;
use proto::seq::{Lifetime, NtpTimestamp, SequenceNumber};
use tracing::{debug, error, info, warn};

use bul::{BidCoa, BindingUpdateList, BulEntry, Pending, Registered};
pub use bul::{Ipv4Support, McoaSupport};
pub use config::{
    ConfigError, FLOW_OPTIONS_MAX, INITIAL_BINDACK_TIMEOUT, INITIAL_BINDACK_TIMEOUT_FIRST_REG,
    MAX_BINDACK_TIMEOUT, MAX_UPDATE_RATE, MobilitySa, MrCoreConfig, NAT_KEEPALIVE_TIMEOUT,
    RegistrationMode,
};
pub use dhaad::{DHAAD_RETRIES, DHAAD_ROUND_PAUSE, INITIAL_DHAAD_TIMEOUT, IcmpTransmit};
pub use flows::{FS_MAX_FIDS, FlowSupport};
pub use io::{
    BuKind, Ipv4MnpOutcome, MrEvent, ParameterProblem, ReceivedSignal, StopReason, Transmit,
};
pub use mpd::{INITIAL_SOLICIT_TIMER, MAX_SOLICITATIONS};
pub use status::{Reaction, advice, reaction};

/// Counters of the mobile router core (the shell exports them as metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MrStats {
    /// Binding Updates sent, first transmissions and retransmissions.
    pub bu_sent: u64,
    /// Of those, retransmissions (RFC 6275 §11.8).
    pub bu_retransmitted: u64,
    /// Registrations acknowledged (status below 128).
    pub registrations: u64,
    /// De-registrations acknowledged.
    pub deregistrations: u64,
    /// Refusals received (status 128 or more).
    pub refused: u64,
    /// The last refusal's status.
    pub last_refusal: Option<u8>,
    /// Home Agent Address Discovery Requests sent (RFC 6275 §11.4.1).
    pub dhaad_requests: u64,
    /// Mobile Prefix Solicitations sent (RFC 6275 §11.4.2).
    pub mps_sent: u64,
    /// Mobile Prefix Advertisements taken from the home agent (§11.4.3).
    pub mpa_received: u64,
    /// Movements to a new care-of address acted on (handovers started).
    pub moves: u64,
    /// Binding Errors received from the home agent.
    pub binding_errors_received: u64,
    /// Binding Refresh Requests received.
    pub brr_received: u64,
    /// Home Agent Switch messages acted on (RFC 5142).
    pub home_agent_switches: u64,
    /// Home Agent Switch messages from our home agent dropped: not authenticated, or
    /// while not registered.
    pub home_agent_switches_dropped: u64,
    /// From the start of the last acknowledged registration's transaction (the movement
    /// or refresh) to its BA, in microseconds: the signalling part of a handover.
    pub last_registration_us: u64,
}

/// Where the home registration stands (for tests, logs and the shell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationState {
    /// No binding and no BU outstanding (at home, or nothing to do yet).
    Idle,
    /// A registration BU is outstanding and the HA holds no binding we know of.
    Registering,
    /// Registered; `refreshing` while a refresh (or move) BU is outstanding.
    Registered {
        /// A BU is outstanding.
        refreshing: bool,
    },
    /// A deregistration BU is outstanding.
    Deregistering,
    /// Stopped after a fatal refusal.
    Stopped(StopReason),
}

/// The mobile router's sans-IO core.
#[derive(Debug)]
pub struct MrCore {
    cfg: MrCoreConfig,
    /// The SA's key prepared for HMAC-SHA1 (`cfg.security`), derived once.
    mn_ha_key: Option<auth::MnHaKey>,
    parse_cfg: ParseConfig,
    /// The Binding Update List.
    bul: BindingUpdateList,
    /// Send times of the last `max_update_rate` BUs (MAX_UPDATE_RATE).
    send_log: VecDeque<Instant>,
    /// (monotonic, wall) pair from `set_wall_clock`.
    wall_anchor: Option<(Instant, Duration)>,
    /// Seconds to add to our wall clock, learnt from a 144 (RFC 4285 §6).
    clock_offset_secs: i64,
    /// The replay protection timestamp of the last Home Agent Switch acted on (RFC 4285
    /// §6): a later one must be later still.
    last_has_timestamp: Option<NtpTimestamp>,
    last_timestamp: Option<NtpTimestamp>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MrEvent>,
    stats: MrStats,
    icmp_errors: VecDeque<ParameterProblem>,
    /// Binding Errors to send, whole IPv6 packets.
    binding_errors: VecDeque<Vec<u8>>,
    /// ICMPv6 error token bucket (RFC 4443 §2.4(f)): tokens, last refill.
    icmp_bucket: TokenBucket,
    /// Local UDP port of the DSMIPv6 socket (nemonetd's), learnt from received signalling.
    udp_local_port: Option<u16>,
    /// Dynamic home agent address discovery under way (no home agent configured).
    discovery: Option<dhaad::Discovery>,
    /// Home agents of the last discovery Reply or Home Agent Switch not tried yet, in
    /// order.
    ha_candidates: Vec<Ipv6Addr>,
    /// The home agent a Home Agent Switch (RFC 5142) moves us away from, until a new one
    /// accepts us.
    switch_away_from: Option<Ipv6Addr>,
    /// Identifier of the last discovery Request.
    next_identifier: u16,
    /// ICMPv6 messages to send (discovery Requests, prefix Solicitations).
    icmp_out: VecDeque<IcmpTransmit>,
    /// Mobile prefix solicitation under way.
    solicitation: Option<mpd::Solicitation>,
    /// What the home agent said of the home prefix.
    home_prefix: Option<mpd::HomePrefix>,
    /// When to solicit the prefixes again.
    solicit_at: Option<Instant>,
    /// The uplinks of the last MD_INFO REREG with their binding identifiers (RFC 5648),
    /// when multiple care-of addresses are configured.
    uplinks: Vec<BidCoa>,
    /// Care-of addresses (BID, address) the home agent refused in an individual
    /// registration (`individual`): not asked for again until the next primary BA.
    individual_refused: Vec<(u16, Ipv6Addr)>,
}

/// Binding Errors 1 make us refresh at most once per this interval: a flood of forged
/// BEs (RFC 6275 §11.3.6 makes them hints only) costs at most one BU per second.
const BE_REFRESH_HOLDDOWN: Duration = Duration::from_secs(1);

/// BUs of an IPv6 registration without a BA before falling back to the IPv4 CoA
/// (docs/notes.md §6: 3 attempts in total).
const V4_FALLBACK_ATTEMPTS: u32 = 3;

/// The IPv4 address of an IPv4-mapped care-of address (the core's form of an IPv4 CoA).
fn coa_v4(coa: &Ipv6Addr) -> Option<Ipv4Addr> {
    coa.to_ipv4_mapped()
}

/// ICMPv6 errors per second (and burst) the MR sends at most.
const ICMP_ERROR_RATE: u32 = 10;

impl MrCore {
    /// A core for a validated configuration.
    pub fn new(cfg: MrCoreConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        if cfg.security.is_none() {
            warn!(hoa = %cfg.home_address, "no mobility SA: Binding Updates go unauthenticated");
        }
        if cfg.mode == RegistrationMode::Explicit && cfg.mnp_v6.is_empty() {
            warn!("explicit mode without IPv6 mobile network prefixes: the HA will see none");
        }
        let cfg_initial_identifier = cfg.initial_sequence.0;
        Ok(MrCore {
            parse_cfg: ParseConfig::new().with_legacy_ipv4_mnp(cfg.legacy_ipv4_mnp_option),
            mn_ha_key: cfg.security.as_ref().map(|sa| auth::MnHaKey::new(&sa.key)),
            bul: BindingUpdateList::new(BulEntry::new(cfg.home_agent, None, cfg.initial_sequence)),
            cfg,
            send_log: VecDeque::new(),
            wall_anchor: None,
            clock_offset_secs: 0,
            last_has_timestamp: None,
            last_timestamp: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: MrStats::default(),
            icmp_errors: VecDeque::new(),
            binding_errors: VecDeque::new(),
            icmp_bucket: TokenBucket::new(ICMP_ERROR_RATE),
            udp_local_port: None,
            discovery: None,
            ha_candidates: Vec::new(),
            switch_away_from: None,
            // Any start will do (the Reply must only match); the sequence number the
            // shell drew at random serves.
            next_identifier: cfg_initial_identifier,
            icmp_out: VecDeque::new(),
            solicitation: None,
            home_prefix: None,
            solicit_at: None,
            uplinks: Vec::new(),
            individual_refused: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MrCoreConfig {
        &self.cfg
    }

    /// Tells the core the wall clock (time since the UNIX epoch) at `now`; RFC 4285
    /// timestamps are derived from it. Call at start and whenever the wall clock jumps.
    pub fn set_wall_clock(&mut self, now: Instant, since_unix_epoch: Duration) {
        self.wall_anchor = Some((now, since_unix_epoch));
    }

    /// The counters.
    pub fn stats(&self) -> &MrStats {
        &self.stats
    }

    /// Where the registration stands.
    pub fn state(&self) -> RegistrationState {
        if let Some(r) = self.bul.primary.stopped
            && self.bul.primary.pending.is_none()
        {
            return RegistrationState::Stopped(r);
        }
        match (&self.bul.primary.pending, &self.bul.primary.registered) {
            (Some(p), _) if p.kind == BuKind::Deregister => RegistrationState::Deregistering,
            (p, Some(_)) => RegistrationState::Registered {
                refreshing: p.is_some(),
            },
            (Some(_), None) => RegistrationState::Registering,
            (None, None) => RegistrationState::Idle,
        }
    }

    /// What the core knows about the HA's IPv4 MNP support.
    pub fn ipv4_support(&self) -> Ipv4Support {
        self.bul.primary.ipv4_support
    }

    /// Lifetime the HA granted to the current binding (after §2.2 reduction).
    pub fn granted_lifetime(&self) -> Option<Lifetime> {
        self.bul.primary.registered.as_ref().map(|r| r.granted)
    }

    /// Sequence number of the last BU sent.
    pub fn last_sequence(&self) -> SequenceNumber {
        self.bul.primary.last_seq
    }

    /// The binding last announced with BUL_ADD, if still current (with several care-of
    /// addresses, the first of them).
    pub fn binding(&self) -> Option<&Binding> {
        self.bindings().next()
    }

    /// Every binding announced with BUL_ADD and still current: the plain one, or one per
    /// binding identifier (RFC 5648).
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.bul.entries().filter_map(|e| e.announced.as_ref())
    }

    /// What the core knows about the home agent's support of multiple care-of addresses.
    pub fn mcoa_support(&self) -> McoaSupport {
        self.bul.primary.mcoa
    }

    /// The answer to a state request: one binding per Binding Update List entry (what
    /// the last BUL_ADD announced, with the remaining lifetime at `now`).
    pub fn handle_state_request(&self, now: Instant) -> Vec<Binding> {
        self.bul
            .entries()
            .filter_map(|e| e.binding_at(now))
            .collect()
    }

    /// MIPM_MD_INFO from the movement detector.
    pub fn handle_md_info(&mut self, now: Instant, md: &MdInfo) {
        if let Some(hoa) = md.hoa
            && hoa != self.cfg.home_address
        {
            debug!(%hoa, "MD_INFO for another home address ignored");
            return;
        }
        match md.command {
            MdCommand::Rereg => {
                self.uplinks = self.bid_uplinks(md);
                self.rereg(now, md)
            }
            MdCommand::Dereghome => self.returned_home(now, md.ifindex),
            MdCommand::Deregforeign => self.deregister(now),
            MdCommand::Scan => {}
        }
        self.drive(now);
    }

    /// MD_INFO REREG: the care-of address to register, or the pair's other one.
    fn rereg(&mut self, now: Instant, md: &MdInfo) {
        match self.usable_coas(md) {
            (Some(CareOf::V6(coa)), second) => {
                self.bul.primary.alt_v4 = match second {
                    Some(CareOf::V4 { addr, .. }) => Some((addr, md.ifindex)),
                    _ => None,
                };
                self.move_to(now, coa, md.ifindex)
            }
            (Some(CareOf::V4 { addr, .. }), second) => {
                // docs/notes.md §6: an IPv6 CoA is preferred when both are offered.
                if let Some(CareOf::V6(coa)) = second {
                    self.move_to(now, coa, md.ifindex);
                } else if self.cfg.home_agent_v4.is_none() {
                    warn!(coa = %addr,
                        "IPv4 care-of address but no IPv4 address for the home agent \
                         configured; MD_INFO ignored");
                } else {
                    // DSMIPv6 (RFC 5555 §4.2), the core holds it IPv4-mapped.
                    self.move_to(now, addr.to_ipv6_mapped(), md.ifindex);
                }
            }
            (None, _) if md.coa.is_none() && md.coa2.is_none() => {
                debug!("MD_INFO REREG without a care-of address ignored")
            }
            // Refused, and said so.
            (None, _) => {}
        }
    }

    /// The care-of addresses of an MD_INFO REREG that may be registered (coa.rs): the
    /// movement detector is believed about where we are, not about what a care-of address
    /// may be. A refused one is named in a warning and sends no BU; the other of the pair,
    /// if usable, takes its place.
    fn usable_coas(&self, md: &MdInfo) -> (Option<CareOf>, Option<CareOf>) {
        let usable = |c: Option<CareOf>| {
            c.filter(|c| match coa::refusal(&self.cfg, c) {
                None => true,
                Some(reason) => {
                    warn!(coa = %c, reason, ifindex = md.ifindex,
                        "care-of address from the movement detector refused: no Binding Update from it");
                    false
                }
            })
        };
        match (usable(md.coa), usable(md.coa2)) {
            (None, second) => (second, None),
            pair => pair,
        }
    }

    /// Deregisters the current binding from its care-of address (MD_INFO DEREGFOREIGN, or
    /// the shell shutting down): lifetime 0, HAO and Alternate CoA as usual.
    pub fn deregister(&mut self, now: Instant) {
        // From where we are now: the CoA of an outstanding registration (a move) if any,
        // else the registered one.
        let Some(coa) = self
            .bul
            .primary
            .pending
            .as_ref()
            .filter(|p| p.kind == BuKind::Register)
            .map(|p| (p.coa, p.coa_ifindex))
            .or_else(|| {
                self.bul
                    .primary
                    .registered
                    .as_ref()
                    .map(|r| (r.coa, r.coa_ifindex))
            })
        else {
            debug!("nothing to deregister");
            return;
        };
        if coa.0 == self.cfg.home_address {
            return;
        }
        info!(hoa = %self.cfg.home_address, coa = %coa.0, "deregistering from the care-of address");
        self.bul.primary.pending =
            Some(self.new_pending(now, BuKind::Deregister, false, coa.0, coa.1));
        self.drive(now);
    }

    fn move_to(&mut self, now: Instant, coa: Ipv6Addr, ifindex: u32) {
        if let Some(r) = self.bul.primary.stopped {
            warn!(?r, %coa, "registration stopped; new care-of address not registered");
            return;
        }
        if coa == self.cfg.home_address {
            self.returned_home(now, ifindex);
            return;
        }
        if self.discovers_home_agent() && self.bul.primary.home_agent.is_unspecified() {
            self.start_discovery(now, coa, ifindex);
            return;
        }
        // With multiple care-of addresses, the same care-of address with other uplinks
        // is a new registration too (RFC 5648: the bulk BU lists them all).
        let bids = self.bulk_set(coa);
        if let Some(p) = &self.bul.primary.pending
            && p.kind == BuKind::Register
            && p.coa == coa
            && p.bids == bids
        {
            debug!(%coa, "registration from this care-of address already under way");
            return;
        }
        let same_coa = match (&self.bul.primary.pending, &self.bul.primary.registered) {
            (None, Some(r)) if r.coa == coa => {
                if r.bids == bids {
                    debug!(%coa, "already registered from this care-of address");
                    return;
                }
                true
            }
            (Some(p), _) => p.kind == BuKind::Register && p.coa == coa,
            _ => false,
        };
        if same_coa {
            info!(hoa = %self.cfg.home_address, %coa, ifindex, ha = %self.bul.primary.home_agent,
                uplinks = ?bids.iter().map(|b| (b.bid, b.coa)).collect::<Vec<_>>(),
                "uplinks changed: home registration");
        } else {
            info!(hoa = %self.cfg.home_address, %coa, ifindex, ha = %self.bul.primary.home_agent,
                "new care-of address: home registration");
            self.stats.moves += 1;
        }
        self.bul.primary.pending =
            Some(self.new_pending(now, BuKind::Register, false, coa, ifindex));
    }

    /// Back on the home link `ifindex` (the movement detector's interface; 0 unknown).
    fn returned_home(&mut self, now: Instant, ifindex: u32) {
        if self.bul.primary.registered.is_none() && self.bul.primary.pending.is_none() {
            debug!("at home with no binding: nothing to deregister");
            return;
        }
        if let Some(p) = &self.bul.primary.pending
            && p.kind == BuKind::Deregister
            && p.at_home
        {
            return;
        }
        info!(hoa = %self.cfg.home_address, ha = %self.bul.primary.home_agent,
            "returned home: deregistration");
        // RFC 6275 §11.5.5: once the de-registration BU has left, the router must answer
        // Neighbour Solicitations for its home address on the home link (the HA may need
        // them to deliver the BA). So the data plane hears now, not after the BA, that the
        // entry is gone and the router home: BUL_REMOVE with the home address as care-of
        // address and the home link, for nemonetd -m to put the home address there (issue
        // 11). The shell publishes events before it sends the BU.
        self.withdraw_at_home(ifindex);
        let hoa = self.cfg.home_address;
        self.bul.primary.pending =
            Some(self.new_pending(now, BuKind::Deregister, true, hoa, ifindex));
    }

    fn new_pending(
        &self,
        now: Instant,
        kind: BuKind,
        at_home: bool,
        coa: Ipv6Addr,
        coa_ifindex: u32,
    ) -> Pending {
        Pending {
            kind,
            at_home,
            coa,
            coa_ifindex,
            sequence: self.bul.primary.last_seq,
            transmissions: 0,
            first_registration: self.bul.primary.registered.is_none(),
            next_tx: now,
            last_sent: None,
            timestamp: None,
            v4_sent: Vec::new(),
            optimistic_announced: false,
            then_register: false,
            then_next_home_agent: false,
            after_type_change: false,
            started: now,
            bids: if kind == BuKind::Register && !at_home {
                self.bulk_set(coa)
            } else {
                Vec::new()
            },
            flows_sent: flows::FlowsSent::default(),
            kept: Vec::new(),
            overwrite: false,
        }
    }

    /// A received Mobility Header message (BA, BRR, BE, Home Agent Switch) from the
    /// network.
    pub fn handle_packet(&mut self, now: Instant, sig: ReceivedSignal<'_>) {
        self.process_packet(now, sig);
        self.drive(now);
    }

    /// Next ICMPv6 error to send. Poll right after [`MrCore::handle_packet`], while the
    /// invoking packet is at hand: the error quotes it.
    pub fn poll_icmp_error(&mut self) -> Option<ParameterProblem> {
        self.icmp_errors.pop_front()
    }

    fn take_icmp_token(&mut self, now: Instant) -> bool {
        self.icmp_bucket.take(now)
    }

    fn process_packet(&mut self, now: Instant, sig: ReceivedSignal<'_>) {
        // Signalling is ours when it comes from a home agent of the Binding Update List.
        if self.bul.entries().all(|e| e.home_agent != sig.src) {
            debug!(src = %sig.src, "signalling not from our home agent ignored");
            return;
        }
        if let Some(h) = sig.rh2_home_address
            && h != self.cfg.home_address
        {
            debug!(rh2 = %h, "type 2 routing header for another home address ignored");
            return;
        }
        let Ok(packet) = Packet::new_checked(sig.mh) else {
            debug!("truncated Mobility Header dropped");
            return;
        };
        // RFC 6275 §9.2: bad checksum, silent drop. The pseudo-header destination is the
        // home address of an RH2 (RFC 8200 §8.1); a sender whose kernel checksums over the
        // on-wire destination is tolerated, as `ReceivedPacket::verify_checksum` tolerates
        // the on-wire source.
        let final_dst = sig.rh2_home_address.unwrap_or(sig.dst);
        if !packet.verify_checksum(&sig.src, &final_dst)
            && !packet.verify_checksum(&sig.src, &sig.dst)
        {
            debug!("Mobility Header with a bad checksum dropped");
            return;
        }
        // RFC 6275 §9.2: Payload Proto != 59 or Header Len too small: drop, Parameter
        // Problem code 0 to the on-wire source (the guard keeps the kernel from sending it).
        if let Some(at) = packet.parameter_problem_pointer() {
            debug!(src = %sig.src, pointer = at, "malformed Mobility Header dropped");
            if !sig.dst.is_multicast() && self.take_icmp_token(now) {
                self.icmp_errors.push_back(ParameterProblem {
                    src: sig.dst,
                    dst: sig.src,
                    code: 0,
                    mh_pointer: at as u32,
                    ifindex: 0,
                });
            }
            return;
        }
        let repr = match MhRepr::parse(&packet, self.parse_cfg) {
            Ok(r) => r,
            Err(e) => {
                debug!(error = %e, "unparsable Mobility Header dropped");
                return;
            }
        };
        match repr {
            MhRepr::BindingAck(ba) => self.process_ba(now, &ba, sig.mh),
            MhRepr::BindingRefreshRequest(_) => self.process_brr(now, sig.mh),
            MhRepr::BindingError(be) => self.process_be(now, be.status, be.home_address),
            MhRepr::BindingUpdate(_) => debug!("Binding Update to a mobile router ignored"),
            MhRepr::HomeAgentSwitch(has) => self.process_has(now, sig.src, &has, sig.mh),
            MhRepr::Other { mh_type, .. } => {
                // RFC 6275 §9.2: a type we do not process (no route optimisation here)
                // draws a Binding Error status 2, rate-limited like ICMPv6 errors (§9.3.3).
                debug!(?mh_type, src = %sig.src, "unrecognised Mobility Header type");
                if !sig.dst.is_multicast() && self.take_icmp_token(now) {
                    self.queue_binding_error(sig.dst, sig.src, BeStatus::UnrecognizedMhType);
                }
            }
        }
    }

    /// Next Binding Error to send: a whole IPv6 packet, straight to the offending
    /// packet's source (RFC 6275 §9.3.3: no type 2 routing header, no HAO).
    pub fn poll_binding_error(&mut self) -> Option<Vec<u8>> {
        self.binding_errors.pop_front()
    }

    /// The offending packets come from the home agent, which puts no Home Address option
    /// on them: the BE's Home Address field is unspecified (§6.1.9).
    fn queue_binding_error(&mut self, src: Ipv6Addr, dst: Ipv6Addr, status: BeStatus) {
        let repr = MhRepr::BindingError(proto::mh::BindingError {
            status,
            home_address: Ipv6Addr::UNSPECIFIED,
            options: Vec::new(),
        });
        let mut mh = vec![0u8; repr.buffer_len()];
        if repr.emit_to(&mut mh).is_err() {
            return;
        }
        let addressing = MobilityPacketRepr {
            src_addr: src,
            dst_addr: dst,
            hop_limit: self.cfg.hop_limit,
            home_address: None,
            rh2_home_address: None,
        };
        let mut packet = vec![0u8; proto::ext::mobility_packet_len(&addressing, mh.len())];
        match proto::ext::emit_mobility_packet(&addressing, &mh, &mut packet) {
            Ok(n) => {
                packet.truncate(n);
                self.binding_errors.push_back(packet);
            }
            Err(e) => debug!(error = %e, "cannot build a Binding Error"),
        }
    }

    /// RFC 6275 §11.7.4: a BRR from the HA asks for a refresh now.
    fn process_brr(&mut self, now: Instant, mh: &[u8]) {
        self.stats.brr_received += 1;
        if self.bul.primary.stopped.is_some() || self.bul.primary.pending.is_some() {
            return;
        }
        if let Some(r) = &self.bul.primary.registered {
            // With an SA, only a BRR the HA signed may make us send (had signs them with
            // the binding's SA, RFC 4285 §5 computed over CoA | HoA | MH). With several
            // care-of addresses it asks for one binding identifier's, signed over its
            // care-of address; the bulk refresh answers it with the others.
            let mut coas = std::iter::once(r.coa).chain(
                self.bul
                    .others
                    .iter()
                    .filter_map(|e| e.registered.as_ref().map(|b| b.coa)),
            );
            if let Some(key) = &self.mn_ha_key
                && !coas.any(|c| {
                    key.verify(mh, IpAddr::V6(c), &self.cfg.home_address)
                        .unwrap_or(false)
                })
            {
                warn!("Binding Refresh Request without a valid MN-HA authenticator dropped");
                return;
            }
            info!(coa = %r.coa, "Binding Refresh Request: refreshing");
            let (coa, ifx) = (r.coa, r.coa_ifindex);
            self.bul.primary.pending =
                Some(self.new_pending(now, BuKind::Register, false, coa, ifx));
        }
    }

    /// RFC 6275 §11.3.6: Binding Error from the HA.
    fn process_be(&mut self, now: Instant, status: BeStatus, hoa: Ipv6Addr) {
        if hoa != self.cfg.home_address && !hoa.is_unspecified() {
            return;
        }
        self.stats.binding_errors_received += 1;
        match status {
            BeStatus::UnknownBindingForHomeAddressDestinationOption => {
                // A hint, never a verdict: a BE carries no authenticator, so anyone who
                // can spoof the HA's address could otherwise cut the tunnel. The binding
                // and its tunnel stay; an authenticated refresh asks the HA. If it really
                // lost the binding, the BA re-creates it; if no BA comes, the lifetime
                // runs out as for any unanswered refresh.
                let Some(r) = &self.bul.primary.registered else {
                    debug!("Binding Error 1 with no binding: nothing to check");
                    return;
                };
                if self.bul.primary.pending.is_some() || self.bul.primary.stopped.is_some() {
                    debug!("Binding Error 1 while a BU is outstanding: its BA will tell");
                    return;
                }
                if self
                    .bul
                    .primary
                    .be_refresh_at
                    .is_some_and(|t| now < t + BE_REFRESH_HOLDDOWN)
                {
                    debug!("Binding Error 1 within the hold-down of the last one ignored");
                    return;
                }
                warn!(ha = %self.bul.primary.home_agent, coa = %r.coa,
                    "Binding Error 1 (unknown binding) claims the home agent lost our binding: \
                     refreshing it, binding kept meanwhile");
                self.bul.primary.be_refresh_at = Some(now);
                let (coa, ifx) = (r.coa, r.coa_ifindex);
                self.bul.primary.pending =
                    Some(self.new_pending(now, BuKind::Register, false, coa, ifx));
            }
            BeStatus::UnrecognizedMhType => {
                error!(ha = %self.bul.primary.home_agent,
                    "Binding Error 2: the home agent does not recognise our MH type");
            }
            other => debug!(status = ?other, "Binding Error ignored"),
        }
    }

    /// The next Binding Update to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the bus.
    pub fn poll_event(&mut self) -> Option<MrEvent> {
        self.events.pop_front()
    }
}
