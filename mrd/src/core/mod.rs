//! The sans-IO mobile router core: Binding Update List for the home registration,
//! retransmission and refresh (RFC 6275 §11.7-§11.8), NEMO Basic Support (RFC 3963 §5),
//! IPv4 mobile network prefixes in the same BU (RFC 5555 §3.1.1, Shima's design) and
//! RFC 4285 authentication.
//!
//! No sockets, no clock, no files: the shell passes `now` (monotonic [`Instant`]) into
//! every call and the wall clock through [`MrCore::set_wall_clock`], and pulls
//! [`MrCore::poll_transmit`], [`MrCore::poll_event`] and [`MrCore::poll_timeout`].
//!
//! One MR registers one home address with one home agent, so the Binding Update List holds
//! at most one entry: the home registration.

mod coa;
mod config;
mod io;
mod status;

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

pub use config::{
    ConfigError, INITIAL_BINDACK_TIMEOUT, INITIAL_BINDACK_TIMEOUT_FIRST_REG, MAX_BINDACK_TIMEOUT,
    MAX_UPDATE_RATE, MobilitySa, MrCoreConfig, NAT_KEEPALIVE_TIMEOUT, RegistrationMode,
};
pub use io::{
    BuKind, Ipv4MnpOutcome, MrEvent, ParameterProblem, ReceivedSignal, StopReason, Transmit,
};
pub use status::{Reaction, advice, reaction};

/// Whether the HA registers IPv4 MNPs, as learnt from its BAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ipv4Support {
    /// No BA to a BU with IPv4 options seen yet.
    Unknown,
    /// The HA answered IPv4 options with IPv4 Address Acknowledgements.
    Supported,
    /// A BA carried none (RFC 5555 §3.2.1): IPv4 options are no longer sent to this HA.
    Unsupported,
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

/// The binding the HA holds, as acknowledged.
///
/// Care-of addresses are kept as `Ipv6Addr` inside the core; an IPv4 CoA (DSMIPv6, RFC
/// 5555) is held IPv4-mapped (`::ffff:a.b.c.d`), which is also its form in the RFC 4285
/// MAC (`proto::auth`). It never reaches the wire in that form (docs/notes.md §6): the BU
/// carries it in an IPv4 CoA option and the bus as `CareOf::V4`.
#[derive(Debug, Clone)]
struct Registered {
    coa: Ipv6Addr,
    coa_ifindex: u32,
    granted: Lifetime,
    expires_at: Instant,
    refresh_at: Instant,
}

/// The outstanding BU transaction (one at a time: a new one replaces the old, RFC 6275
/// §11.7.1 "a move while a BU is outstanding replaces it").
#[derive(Debug, Clone)]
struct Pending {
    kind: BuKind,
    /// Deregistration from the home link: source HoA, no HAO, no Alternate CoA.
    at_home: bool,
    /// CoA this BU registers (the HoA when deregistering at home).
    coa: Ipv6Addr,
    coa_ifindex: u32,
    /// Sequence number of the last BU sent for this transaction.
    sequence: SequenceNumber,
    /// BUs sent so far in this transaction (reset by a 135/144 resynchronisation).
    transmissions: u32,
    /// The HA holds no binding for us: the first timeout covers its DAD (RFC 6275 §11.8).
    first_registration: bool,
    /// When to send the next BU of this transaction.
    next_tx: Instant,
    /// When the last BU left: the granted lifetime counts from here (docs/notes.md §5).
    last_sent: Option<Instant>,
    /// RFC 4285 timestamp of the last BU.
    timestamp: Option<NtpTimestamp>,
    /// IPv4 MNPs listed in the last BU.
    v4_sent: Vec<Ipv4Net>,
    /// Optimistic BUL_ADD already announced for this transaction.
    optimistic_announced: bool,
    /// A de-registration after a 139: register again once it is acknowledged.
    then_register: bool,
    /// This registration follows a 139 recovery: another 139 stops.
    after_type_change: bool,
}

/// The mobile router's sans-IO core.
#[derive(Debug)]
pub struct MrCore {
    cfg: MrCoreConfig,
    /// The SA's key prepared for HMAC-SHA1 (`cfg.security`), derived once.
    mn_ha_key: Option<auth::MnHaKey>,
    parse_cfg: ParseConfig,
    /// Last sequence number sent; the next BU uses its successor.
    last_seq: SequenceNumber,
    registered: Option<Registered>,
    pending: Option<Pending>,
    /// What the last BUL_ADD announced (state dumps, BUL_REMOVE).
    announced: Option<Binding>,
    /// That announcement was optimistic: no BA has confirmed it yet.
    announced_optimistic: bool,
    /// Send times of the last `max_update_rate` BUs (MAX_UPDATE_RATE).
    send_log: VecDeque<Instant>,
    ipv4_support: Ipv4Support,
    stopped: Option<StopReason>,
    /// (monotonic, wall) pair from `set_wall_clock`.
    wall_anchor: Option<(Instant, Duration)>,
    /// Seconds to add to our wall clock, learnt from a 144 (RFC 4285 §6).
    clock_offset_secs: i64,
    last_timestamp: Option<NtpTimestamp>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MrEvent>,
    icmp_errors: VecDeque<ParameterProblem>,
    /// Binding Errors to send, whole IPv6 packets.
    binding_errors: VecDeque<Vec<u8>>,
    /// ICMPv6 error token bucket (RFC 4443 §2.4(f)): tokens, last refill.
    icmp_bucket: TokenBucket,
    /// Local UDP port of the DSMIPv6 socket (nemonetd's), learnt from received signalling.
    udp_local_port: Option<u16>,
    /// The IPv4 CoA offered beside an IPv6 one (MD_INFO `coa2`): the fallback when the
    /// IPv6 registration gets no BA (docs/notes.md §6).
    alt_v4: Option<(Ipv4Addr, u32)>,
    /// When a Binding Error 1 last made us refresh (BE_REFRESH_HOLDDOWN).
    be_refresh_at: Option<Instant>,
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
        Ok(MrCore {
            parse_cfg: ParseConfig::new().with_legacy_ipv4_mnp(cfg.legacy_ipv4_mnp_option),
            mn_ha_key: cfg.security.as_ref().map(|sa| auth::MnHaKey::new(&sa.key)),
            // The first BU uses `initial_sequence`.
            last_seq: SequenceNumber(cfg.initial_sequence.0.wrapping_sub(1)),
            cfg,
            registered: None,
            pending: None,
            announced: None,
            announced_optimistic: false,
            send_log: VecDeque::new(),
            ipv4_support: Ipv4Support::Unknown,
            stopped: None,
            wall_anchor: None,
            clock_offset_secs: 0,
            last_timestamp: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            icmp_errors: VecDeque::new(),
            binding_errors: VecDeque::new(),
            icmp_bucket: TokenBucket::new(ICMP_ERROR_RATE),
            udp_local_port: None,
            alt_v4: None,
            be_refresh_at: None,
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

    /// Where the registration stands.
    pub fn state(&self) -> RegistrationState {
        if let Some(r) = self.stopped
            && self.pending.is_none()
        {
            return RegistrationState::Stopped(r);
        }
        match (&self.pending, &self.registered) {
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
        self.ipv4_support
    }

    /// Lifetime the HA granted to the current binding (after §2.2 reduction).
    pub fn granted_lifetime(&self) -> Option<Lifetime> {
        self.registered.as_ref().map(|r| r.granted)
    }

    /// Sequence number of the last BU sent.
    pub fn last_sequence(&self) -> SequenceNumber {
        self.last_seq
    }

    /// The binding last announced with BUL_ADD, if still current.
    pub fn binding(&self) -> Option<&Binding> {
        self.announced.as_ref()
    }

    /// The answer to a state request: one binding per Binding Update List entry (what
    /// the last BUL_ADD announced, with the remaining lifetime at `now`).
    pub fn handle_state_request(&self, now: Instant) -> Vec<Binding> {
        let mut b = match &self.announced {
            Some(b) => b.clone(),
            None => return Vec::new(),
        };
        if let Some(r) = &self.registered {
            b.lifetime = r.expires_at.saturating_duration_since(now).as_secs() as u32;
        }
        vec![b]
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
            MdCommand::Rereg => match self.usable_coas(md) {
                (Some(CareOf::V6(coa)), second) => {
                    self.alt_v4 = match second {
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
            },
            MdCommand::Dereghome => self.returned_home(now),
            MdCommand::Deregforeign => self.deregister(now),
            MdCommand::Scan => {}
        }
        self.drive(now);
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
            .pending
            .as_ref()
            .filter(|p| p.kind == BuKind::Register)
            .map(|p| (p.coa, p.coa_ifindex))
            .or_else(|| self.registered.as_ref().map(|r| (r.coa, r.coa_ifindex)))
        else {
            debug!("nothing to deregister");
            return;
        };
        if coa.0 == self.cfg.home_address {
            return;
        }
        info!(hoa = %self.cfg.home_address, coa = %coa.0, "deregistering from the care-of address");
        self.pending = Some(self.new_pending(now, BuKind::Deregister, false, coa.0, coa.1));
        self.drive(now);
    }

    fn move_to(&mut self, now: Instant, coa: Ipv6Addr, ifindex: u32) {
        if let Some(r) = self.stopped {
            warn!(?r, %coa, "registration stopped; new care-of address not registered");
            return;
        }
        if coa == self.cfg.home_address {
            self.returned_home(now);
            return;
        }
        if let Some(p) = &self.pending
            && p.kind == BuKind::Register
            && p.coa == coa
        {
            debug!(%coa, "registration from this care-of address already under way");
            return;
        }
        if self.pending.is_none()
            && let Some(r) = &self.registered
            && r.coa == coa
        {
            debug!(%coa, "already registered from this care-of address");
            return;
        }
        info!(hoa = %self.cfg.home_address, %coa, ifindex, ha = %self.cfg.home_agent,
            "new care-of address: home registration");
        self.pending = Some(self.new_pending(now, BuKind::Register, false, coa, ifindex));
    }

    fn returned_home(&mut self, now: Instant) {
        if self.registered.is_none() && self.pending.is_none() {
            debug!("at home with no binding: nothing to deregister");
            return;
        }
        if let Some(p) = &self.pending
            && p.kind == BuKind::Deregister
            && p.at_home
        {
            return;
        }
        info!(hoa = %self.cfg.home_address, ha = %self.cfg.home_agent,
            "returned home: deregistration");
        let hoa = self.cfg.home_address;
        self.pending = Some(self.new_pending(now, BuKind::Deregister, true, hoa, 0));
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
            sequence: self.last_seq,
            transmissions: 0,
            first_registration: self.registered.is_none(),
            next_tx: now,
            last_sent: None,
            timestamp: None,
            v4_sent: Vec::new(),
            optimistic_announced: false,
            then_register: false,
            after_type_change: false,
        }
    }

    /// A received Mobility Header message (BA, BRR, BE) from the network.
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
        if sig.src != self.cfg.home_agent {
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
        if self.stopped.is_some() || self.pending.is_some() {
            return;
        }
        if let Some(r) = &self.registered {
            // With an SA, only a BRR the HA signed may make us send (had signs them with
            // the binding's SA, RFC 4285 §5 computed over CoA | HoA | MH).
            if let Some(key) = &self.mn_ha_key
                && !key
                    .verify(mh, IpAddr::V6(r.coa), &self.cfg.home_address)
                    .unwrap_or(false)
            {
                warn!("Binding Refresh Request without a valid MN-HA authenticator dropped");
                return;
            }
            info!(coa = %r.coa, "Binding Refresh Request: refreshing");
            let (coa, ifx) = (r.coa, r.coa_ifindex);
            self.pending = Some(self.new_pending(now, BuKind::Register, false, coa, ifx));
        }
    }

    /// RFC 6275 §11.3.6: Binding Error from the HA.
    fn process_be(&mut self, now: Instant, status: BeStatus, hoa: Ipv6Addr) {
        if hoa != self.cfg.home_address && !hoa.is_unspecified() {
            return;
        }
        match status {
            BeStatus::UnknownBindingForHomeAddressDestinationOption => {
                // A hint, never a verdict: a BE carries no authenticator, so anyone who
                // can spoof the HA's address could otherwise cut the tunnel. The binding
                // and its tunnel stay; an authenticated refresh asks the HA. If it really
                // lost the binding, the BA re-creates it; if no BA comes, the lifetime
                // runs out as for any unanswered refresh.
                let Some(r) = &self.registered else {
                    debug!("Binding Error 1 with no binding: nothing to check");
                    return;
                };
                if self.pending.is_some() || self.stopped.is_some() {
                    debug!("Binding Error 1 while a BU is outstanding: its BA will tell");
                    return;
                }
                if self
                    .be_refresh_at
                    .is_some_and(|t| now < t + BE_REFRESH_HOLDDOWN)
                {
                    debug!("Binding Error 1 within the hold-down of the last one ignored");
                    return;
                }
                warn!(ha = %self.cfg.home_agent, coa = %r.coa,
                    "Binding Error 1 (unknown binding) claims the home agent lost our binding: \
                     refreshing it, binding kept meanwhile");
                self.be_refresh_at = Some(now);
                let (coa, ifx) = (r.coa, r.coa_ifindex);
                self.pending = Some(self.new_pending(now, BuKind::Register, false, coa, ifx));
            }
            BeStatus::UnrecognizedMhType => {
                error!(ha = %self.cfg.home_agent,
                    "Binding Error 2: the home agent does not recognise our MH type");
            }
            other => debug!(status = ?other, "Binding Error ignored"),
        }
    }

    fn process_ba(&mut self, now: Instant, ba: &BindingAck<'_>, mh: &[u8]) {
        let hoa = self.cfg.home_address;
        let Some(p) = &self.pending else {
            debug!(seq = %ba.sequence, "BA with no BU outstanding dropped");
            return;
        };
        if p.transmissions == 0 {
            return;
        }
        let resync = ba.status == BaStatus::SequenceNumberOutOfWindow;
        // RFC 6275 §11.7.3: the sequence must match the outstanding BU, except in a 135
        // which carries the HA's last accepted sequence number.
        if !resync && ba.sequence != p.sequence {
            debug!(seq = %ba.sequence, expected = %p.sequence,
                "BA does not match the outstanding BU; dropped");
            return;
        }
        // RFC 4285 §8: with an SA, only authenticated BAs count.
        let mut ts_resync = None;
        if let Some(sa) = &self.cfg.security {
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
                return;
            }
            if sa.timestamps() {
                let echoed = ba.options.iter().find_map(|o| match o {
                    MobilityOption::ReplayProtection { timestamp } => Some(*timestamp),
                    _ => None,
                });
                let sent = p.timestamp.map(|t| t.0);
                match (ba.status, echoed, sent) {
                    // RFC 4285 §6: a 144 echoes only the low 32 bits; the high 32 bits are
                    // the HA's clock.
                    (BaStatus::Mipv6IdMismatch, Some(e), Some(s)) if e as u32 == s as u32 => {
                        ts_resync = Some(NtpTimestamp(e));
                    }
                    (_, Some(e), Some(s)) if e == s => {}
                    _ => {
                        warn!(seq = %ba.sequence,
                            "BA does not echo our replay-protection timestamp; dropped");
                        return;
                    }
                }
            }
        }
        let (name, rfc) = ba.status.meaning();
        let code = u8::from(ba.status);
        if resync {
            info!(ba_seq = %ba.sequence, our_seq = %p.sequence, status = code, meaning = name, rfc,
                "sequence number resynchronised; sending the next one");
            self.last_seq = ba.sequence;
            self.restart_transaction(now);
            return;
        }
        if let Some(ha_ts) = ts_resync {
            let ours = p.timestamp.map_or(0, |t| t.seconds());
            let delta = i64::from(ha_ts.seconds().wrapping_sub(ours) as i32);
            self.clock_offset_secs += delta;
            info!(
                offset_secs = self.clock_offset_secs,
                status = code,
                meaning = name,
                rfc,
                "replay-protection timestamp refused; clock offset to the HA adjusted"
            );
            self.restart_transaction(now);
            return;
        }
        if ba.status.is_accepted() {
            self.accepted(now, ba);
        } else {
            self.refused(now, ba.status);
        }
    }

    /// Sends the next BU of the transaction at once, with a fresh back-off.
    fn restart_transaction(&mut self, now: Instant) {
        if let Some(p) = &mut self.pending {
            p.transmissions = 0;
            p.next_tx = now;
        }
    }

    fn accepted(&mut self, now: Instant, ba: &BindingAck<'_>) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let (name, rfc) = ba.status.meaning();
        if p.kind == BuKind::Deregister {
            info!(hoa = %self.cfg.home_address, seq = %ba.sequence, "deregistration acknowledged");
            self.registered = None;
            self.withdraw();
            if p.at_home {
                self.events.push_back(MrEvent::HomeAdvertise {
                    hoa: self.cfg.home_address,
                });
            }
            self.register_after_type_change(now, &p);
            return;
        }
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
        if !ba.flags.mobile_router() {
            // RFC 3963 §5.3: the HA does not support NEMO; deregister and stop.
            error!(ha = %self.cfg.home_agent,
                "home agent accepted the BU without R: it does not do NEMO; deregistering");
            self.stopped = Some(StopReason::NotNemoCapable);
            self.events.push_back(MrEvent::Stopped {
                reason: StopReason::NotNemoCapable,
            });
            self.withdraw();
            self.registered = None;
            let mut d = self.new_pending(now, BuKind::Deregister, false, p.coa, p.coa_ifindex);
            d.first_registration = false;
            self.pending = Some(d);
            return;
        }
        let requested = self.cfg.lifetime;
        if ba.lifetime.is_zero() {
            warn!(seq = %ba.sequence, "BA accepted with lifetime 0; retrying");
            self.pending = Some(p);
            return;
        }
        let granted = ba.lifetime.min(requested);
        if granted < requested {
            // docs/notes.md §5 / RFC 6275 §11.7.3: the remaining lifetime shrinks by the
            // difference, i.e. it is `granted` counted from when the BU left.
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
        let (udp, nat) = match coa_v4(&p.coa) {
            Some(_) => {
                let (udp, nat, keepalive) = self.nat_decision(ba);
                if let Some(k) = keepalive {
                    // RFC 5555 §4.4.2 / docs/notes.md §6: the re-sent BU is the keepalive.
                    refresh_at = refresh_at.min(sent + k);
                }
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
        self.registered = Some(Registered {
            coa: p.coa,
            coa_ifindex: p.coa_ifindex,
            granted,
            expires_at,
            refresh_at,
        });
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
    }

    /// The robust rule of docs/notes.md §6 for a BA to a BU from an IPv4 CoA: plain
    /// IP-in-IPv4 only when F = 0 and Refresh = 0xFFFFFFFF (and we did not force UDP),
    /// UDP otherwise; keepalives every Refresh seconds when it is finite and non-zero,
    /// NATKATIMEOUT when it is 0 or the option is missing, none when it is 0xFFFFFFFF, and
    /// never less often than the configured keepalive interval while UDP is used.
    /// Returns (udp, nat seen, keepalive period).
    fn nat_decision(&self, ba: &BindingAck<'_>) -> (bool, bool, Option<Duration>) {
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
    fn ipv4_outcome(&mut self, ba: &BindingAck<'_>, p: &Pending) -> (Vec<Ipv4Net>, Ipv4MnpOutcome) {
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
            if self.ipv4_support != Ipv4Support::Unsupported {
                warn!(ha = %self.cfg.home_agent, mnp_v4 = ?p.v4_sent,
                    "home agent sent no IPv4 Address Acknowledgement: it does not support \
                     IPv4 mobile network prefixes; carrying on with IPv6 only");
            }
            self.ipv4_support = Ipv4Support::Unsupported;
            return (Vec::new(), Ipv4MnpOutcome::HaUnsupported);
        }
        self.ipv4_support = Ipv4Support::Supported;
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
    fn register_after_type_change(&mut self, now: Instant, dereg: &Pending) {
        if !dereg.then_register || self.stopped.is_some() {
            return;
        }
        info!(hoa = %self.cfg.home_address, coa = %dereg.coa,
            "old binding removed; registering again");
        let mut r = self.new_pending(now, BuKind::Register, false, dereg.coa, dereg.coa_ifindex);
        r.after_type_change = true;
        self.pending = Some(r);
    }

    fn refused(&mut self, now: Instant, status: BaStatus) {
        let Some(p) = &self.pending else {
            return;
        };
        let (name, rfc) = status.meaning();
        let code = u8::from(status);
        if p.kind == BuKind::Deregister && status == BaStatus::NotHomeAgentForThisMobileNode {
            // RFC 6275 §10.3.2: the HA holds no binding for us; nothing left to delete.
            info!(hoa = %self.cfg.home_address, status = code, meaning = name, rfc,
                "home agent has no binding to deregister");
            let p = self.pending.take().expect("checked above");
            self.registered = None;
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
            warn!(hoa = %self.cfg.home_address, ha = %self.cfg.home_agent, status = code,
                meaning = name, rfc,
                "the home agent holds a binding of another registration type for our home \
                 address: de-registering it, then registering again");
            let (coa, ifx, at_home) = (p.coa, p.coa_ifindex, p.at_home);
            if self.announced_optimistic {
                self.withdraw();
            }
            let mut d = self.new_pending(now, BuKind::Deregister, at_home, coa, ifx);
            d.then_register = true;
            d.first_registration = false;
            self.pending = Some(d);
            return;
        }
        if p.kind == BuKind::Register && what == Reaction::Stop {
            error!(hoa = %self.cfg.home_address, ha = %self.cfg.home_agent, status = code,
                meaning = name, rfc, advice = advice(status),
                "home registration refused for good: no further Binding Update to this home \
                 agent until the configuration is reloaded (SIGHUP)");
            let reason = StopReason::Refused(status);
            self.stopped = Some(reason);
            self.pending = None;
            self.registered = None;
            self.withdraw();
            self.events.push_back(MrEvent::Stopped { reason });
            return;
        }
        warn!(hoa = %self.cfg.home_address, status = code, meaning = name, rfc,
            seq = %p.sequence, kind = ?p.kind, "Binding Update refused; retrying with back-off");
        // An optimistic announcement no longer holds (the HA refused it).
        if self.announced_optimistic {
            self.withdraw();
        }
    }

    /// Emits BUL_REMOVE for whatever was announced.
    fn withdraw(&mut self) {
        self.announced_optimistic = false;
        if let Some(mut b) = self.announced.take() {
            b.lifetime = 0;
            info!(hoa = %b.hoa, coa = %b.coa, "binding update list entry removed");
            self.events.push_back(MrEvent::BulRemove { binding: b });
        }
    }

    fn announce(&mut self, binding: Binding, optimistic: bool, ipv4: Ipv4MnpOutcome) {
        self.announced = Some(binding.clone());
        self.announced_optimistic = optimistic;
        self.events.push_back(MrEvent::BulAdd {
            binding,
            optimistic,
            ipv4,
        });
    }

    /// The bus view of a binding; `encap` = (udp, nat) from the BA for an IPv4 CoA
    /// (`None` before any BA: UDP, the format the BU itself used).
    fn binding_for(
        &self,
        coa: Ipv6Addr,
        ifindex: u32,
        mnp_v4: Vec<Ipv4Net>,
        life: u32,
        encap: Option<(bool, bool)>,
    ) -> Binding {
        let flags = self.bu_flags_from(&coa);
        let (coa, encapsulation, nat_detected) = match coa_v4(&coa) {
            None => (CareOf::V6(coa), Encapsulation::InIpv6, false),
            Some(addr) => {
                let (udp, nat) = encap.unwrap_or((true, false));
                if udp {
                    (
                        CareOf::V4 {
                            addr,
                            udp_port: Some(self.udp_local_port.unwrap_or(0)),
                        },
                        Encapsulation::UdpIpv4 {
                            ha_port: proto::DSMIP_UDP_PORT,
                        },
                        nat,
                    )
                } else {
                    (
                        CareOf::V4 {
                            addr,
                            udp_port: None,
                        },
                        Encapsulation::InIpv4,
                        false,
                    )
                }
            }
        };
        Binding {
            hoa: self.cfg.home_address,
            hoa_v4: None,
            coa,
            ha: self.cfg.home_agent,
            ha_v4: self.cfg.home_agent_v4,
            mnp_v6: self.cfg.mnp_v6.clone(),
            mnp_v4,
            encapsulation,
            lifetime: life,
            binding_id: None,
            flags,
            nat_detected,
            coa_ifindex: (ifindex != 0).then_some(ifindex),
        }
    }

    fn bu_flags(&self) -> BuFlags {
        // RFC 3963 §5.1: R with H and A on every home registration (kept on
        // deregistration too, where the HA ignores it, RFC 3963 §6.2); L when the home
        // address shares its interface identifier with our link-local (RFC 6275 §11.7.1).
        let l = if self.cfg.link_local_compat {
            BuFlags::L
        } else {
            BuFlags::empty()
        };
        BuFlags::A | BuFlags::H | BuFlags::R | l
    }

    /// Flags of a BU from `coa`: F (RFC 5555 §3.1.3) only from an IPv4 CoA when forced.
    fn bu_flags_from(&self, coa: &Ipv6Addr) -> BuFlags {
        if self.cfg.force_udp && coa_v4(coa).is_some() {
            self.bu_flags() | BuFlags::F
        } else {
            self.bu_flags()
        }
    }

    /// Timers fired.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive(now);
    }

    /// The next instant at which [`MrCore::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |i: Instant| t = Some(t.map_or(i, |t| t.min(i)));
        if let Some(p) = &self.pending {
            at(p.next_tx);
        }
        if let Some(r) = &self.registered {
            at(r.expires_at);
            if self.pending.is_none() && self.stopped.is_none() {
                at(r.refresh_at);
            }
        }
        t
    }

    /// The next Binding Update to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the bus.
    pub fn poll_event(&mut self) -> Option<MrEvent> {
        self.events.pop_front()
    }

    /// Runs every timer that is due at `now`.
    fn drive(&mut self, now: Instant) {
        if let Some(r) = &self.registered {
            if now >= r.expires_at {
                // No acknowledged refresh in time: the HA has dropped the binding.
                warn!(coa = %r.coa, "binding lifetime expired before a refresh was acknowledged");
                let (coa, ifx) = (r.coa, r.coa_ifindex);
                self.registered = None;
                // An optimistic entry for a newer CoA stays until its own BA decides.
                if !self.announced_optimistic {
                    self.withdraw();
                }
                match &mut self.pending {
                    Some(p) if p.kind == BuKind::Deregister => {
                        // Nothing left to deregister.
                        self.pending = None;
                    }
                    Some(_) => {}
                    None if self.stopped.is_none() => {
                        self.pending =
                            Some(self.new_pending(now, BuKind::Register, false, coa, ifx));
                    }
                    None => {}
                }
            } else if now >= r.refresh_at && self.pending.is_none() && self.stopped.is_none() {
                debug!(coa = %r.coa, "refreshing the home registration");
                let (coa, ifx) = (r.coa, r.coa_ifindex);
                self.pending = Some(self.new_pending(now, BuKind::Register, false, coa, ifx));
            }
        }
        let Some(p) = &mut self.pending else {
            return;
        };
        if now < p.next_tx {
            return;
        }
        if p.kind == BuKind::Deregister && p.transmissions >= self.cfg.dereg_max_transmissions {
            warn!(hoa = %self.cfg.home_address, attempts = p.transmissions,
                "deregistration not acknowledged; giving up (the binding will expire)");
            self.pending = None;
            self.registered = None;
            self.withdraw();
            return;
        }
        // MAX_UPDATE_RATE (RFC 6275 §11.8): at most N BUs in any one second.
        let rate = self.cfg.max_update_rate as usize;
        while self.send_log.len() > rate {
            self.send_log.pop_front();
        }
        if self.send_log.len() == rate {
            let allowed = self.send_log[0] + Duration::from_secs(1);
            if now < allowed {
                debug!(
                    delay_ms = (allowed - now).as_millis() as u64,
                    "BU delayed by MAX_UPDATE_RATE"
                );
                p.next_tx = allowed;
                return;
            }
        }
        // docs/notes.md §6: an IPv6 registration unanswered after 3 BUs in total falls
        // back to the IPv4 CoA offered beside it.
        if p.kind == BuKind::Register
            && !p.at_home
            && coa_v4(&p.coa).is_none()
            && p.transmissions >= V4_FALLBACK_ATTEMPTS
            && self.cfg.home_agent_v4.is_some()
            && let Some((addr, ifindex)) = self.alt_v4.take()
        {
            warn!(coa = %p.coa, attempts = p.transmissions, v4_coa = %addr,
                "no BA to the IPv6 registration; falling back to the IPv4 care-of address");
            self.pending = Some(self.new_pending(
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

    fn wall_clock(&self, now: Instant) -> Duration {
        let base = match self.wall_anchor {
            Some((i, w)) => w + now.saturating_duration_since(i),
            None => Duration::ZERO,
        };
        let off = Duration::from_secs(self.clock_offset_secs.unsigned_abs());
        if self.clock_offset_secs >= 0 {
            base + off
        } else {
            base.saturating_sub(off)
        }
    }

    fn next_timestamp(&mut self, now: Instant) -> NtpTimestamp {
        if self.wall_anchor.is_none() && self.last_timestamp.is_none() {
            // The HA will answer 144 and we resynchronise, but the shell forgot something.
            warn!("RFC 4285 timestamps requested but no wall clock given (set_wall_clock)");
        }
        let mut ts = NtpTimestamp::from_unix(self.wall_clock(now));
        // RFC 4285 §6: later than any earlier one, even within one clock tick.
        if let Some(last) = self.last_timestamp
            && !ts.is_later_than(last)
        {
            ts = NtpTimestamp(last.0.wrapping_add(1));
        }
        self.last_timestamp = Some(ts);
        ts
    }

    fn send_bu(&mut self, now: Instant) {
        let seq = self.last_seq.next();
        let ts = match &self.cfg.security {
            Some(sa) if sa.timestamps() => Some(self.next_timestamp(now)),
            _ => None,
        };
        let send_v4 = self.cfg.send_ipv4_mnps
            && self.ipv4_support != Ipv4Support::Unsupported
            && !self.cfg.mnp_v4.is_empty();
        let Some(p) = &mut self.pending else {
            return;
        };
        let cfg = &self.cfg;
        let hoa = cfg.home_address;
        let register = p.kind == BuKind::Register;
        let lifetime = if register {
            cfg.lifetime
        } else {
            Lifetime::ZERO
        };
        let mut options: Vec<MobilityOption<'_>> = Vec::new();
        let v4_coa = coa_v4(&p.coa).filter(|_| !p.at_home);
        if let Some(a) = v4_coa {
            // RFC 5555 §3.1.2, §4.2: from an IPv4 CoA, no Alternate CoA (nor HAO).
            options.push(MobilityOption::Ipv4CareOfAddress(a));
        } else if !p.at_home {
            // RFC 6275 §11.7.1: mandatory in home registrations from a CoA.
            options.push(MobilityOption::AlternateCareOfAddress(p.coa));
        }
        let mut v4_sent = Vec::new();
        if register {
            if cfg.mode == RegistrationMode::Explicit {
                // RFC 3963 §5.2: every MNP in every BU (the HA drops what is not listed).
                options.extend(
                    cfg.mnp_v6
                        .iter()
                        .map(|n| MobilityOption::MobileNetworkPrefix {
                            prefix_len: n.prefix_len(),
                            prefix: n.network(),
                        }),
                );
            }
            if send_v4 {
                for n in &cfg.mnp_v4 {
                    options.push(if cfg.legacy_ipv4_mnp_option {
                        MobilityOption::LegacyIpv4Mnp {
                            prefix_len: n.prefix_len(),
                            prefix: n.network(),
                        }
                    } else {
                        // RFC 5555 §3.1.1, §4.4.2: a mobile router asks for its prefix
                        // with P=1.
                        MobilityOption::Ipv4HomeAddress {
                            prefix_len: n.prefix_len(),
                            p: true,
                            address: n.network(),
                        }
                    });
                    v4_sent.push(*n);
                }
            }
        }
        // RFC 4285 §4, §8: MN-ID, then replay protection, then MN-HA authentication last.
        if let Some(sa) = &cfg.security {
            if let Some(nai) = &sa.nai {
                options.push(MobilityOption::MobileNodeIdentifier {
                    subtype: MN_ID_SUBTYPE_NAI,
                    identifier: nai,
                });
            }
            if let Some(ts) = ts {
                options.push(MobilityOption::ReplayProtection { timestamp: ts.0 });
            }
            options.push(auth::mn_ha_option(sa.spi));
        }
        let l = if cfg.link_local_compat {
            BuFlags::L
        } else {
            BuFlags::empty()
        };
        let flags = if cfg.force_udp && v4_coa.is_some() {
            BuFlags::A | BuFlags::H | BuFlags::R | BuFlags::F | l
        } else {
            BuFlags::A | BuFlags::H | BuFlags::R | l
        };
        let repr = MhRepr::BindingUpdate(BindingUpdate {
            sequence: seq,
            flags,
            lifetime,
            options,
        });
        let mut mh = vec![0u8; repr.buffer_len()];
        if let Err(e) = repr.emit_to(&mut mh) {
            error!(error = %e, "cannot build the Binding Update");
            return;
        }
        if let Some(key) = &self.mn_ha_key
            && let Err(e) = key.sign(&mut mh, IpAddr::V6(p.coa), &hoa)
        {
            error!(error = %e, "cannot sign the Binding Update");
            return;
        }
        let mut udp_v4 = None;
        let addressing = if let Some(ha_v4) = cfg.home_agent_v4.filter(|_| v4_coa.is_some()) {
            // RFC 5555 §4.2: inner source = HoA, no HAO, in UDP/IPv4 to the HA's 4191.
            udp_v4 = Some(SocketAddrV4::new(ha_v4, proto::DSMIP_UDP_PORT));
            MobilityPacketRepr {
                src_addr: hoa,
                dst_addr: cfg.home_agent,
                hop_limit: cfg.hop_limit,
                home_address: None,
                rh2_home_address: None,
            }
        } else if p.at_home {
            // RFC 6275 §11.5.4: from the home link, source = HoA, no HAO.
            MobilityPacketRepr {
                src_addr: hoa,
                dst_addr: cfg.home_agent,
                hop_limit: cfg.hop_limit,
                home_address: None,
                rh2_home_address: None,
            }
        } else {
            MobilityPacketRepr {
                src_addr: p.coa,
                dst_addr: cfg.home_agent,
                hop_limit: cfg.hop_limit,
                home_address: Some(hoa),
                rh2_home_address: None,
            }
        };
        p.transmissions += 1;
        p.sequence = seq;
        p.last_sent = Some(now);
        p.timestamp = ts;
        p.v4_sent = v4_sent;
        p.next_tx = now + Self::retransmission_timeout(cfg, p.transmissions, p.first_registration);
        debug!(seq = %seq, kind = ?p.kind, coa = %p.coa, attempt = p.transmissions,
            next_ms = (p.next_tx - now).as_millis() as u64, "Binding Update sent");
        self.last_seq = seq;
        self.send_log.push_back(now);
        self.transmits.push_back(Transmit {
            addressing,
            mh,
            sequence: seq,
            lifetime,
            kind: p.kind,
            udp_v4,
        });
        // Optimistic mode: announce the new binding as the BU leaves, unless it only
        // refreshes the one already announced.
        let optimistic = self.cfg.optimistic && register && !p.optimistic_announced;
        let already = self.registered.as_ref().is_some_and(|r| r.coa == p.coa);
        if optimistic && !already {
            p.optimistic_announced = true;
            let (coa, ifx, v4) = (p.coa, p.coa_ifindex, p.v4_sent.clone());
            let ipv4 = if v4.is_empty() {
                Ipv4MnpOutcome::NotRequested
            } else {
                Ipv4MnpOutcome::Pending
            };
            let b = self.binding_for(coa, ifx, v4, self.cfg.lifetime.as_secs(), None);
            info!(hoa = %b.hoa, coa = %coa, "optimistic binding update list entry");
            self.announce(b, true, ipv4);
        }
    }
}
