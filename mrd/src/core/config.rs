//! The mobile router core's own configuration: plain public data, no parsing. The daemon's
//! shell maps SHISA's config (the `conf` crate) onto it.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use proto::model::FlowBinding;
use proto::seq::{Lifetime, SequenceNumber};

/// RFC 6275 §13: InitialBindackTimeoutFirstReg default (the HA runs DAD before answering a
/// first registration).
pub const INITIAL_BINDACK_TIMEOUT_FIRST_REG: Duration = Duration::from_millis(1500);
/// RFC 6275 §12: INITIAL_BINDACK_TIMEOUT.
pub const INITIAL_BINDACK_TIMEOUT: Duration = Duration::from_secs(1);
/// RFC 6275 §12: MAX_BINDACK_TIMEOUT.
pub const MAX_BINDACK_TIMEOUT: Duration = Duration::from_secs(32);
/// RFC 6275 §12: MAX_UPDATE_RATE, Binding Updates per second to one destination.
pub const MAX_UPDATE_RATE: u32 = 3;

/// How mobile network prefixes reach the home agent (RFC 3963 §5.2, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RegistrationMode {
    /// Every IPv6 MNP is listed in a Mobile Network Prefix option of every BU.
    #[default]
    Explicit,
    /// No MNP options: the HA takes the prefixes from its prefix table.
    Implicit,
}

pub use proto::auth::MobilitySa;

/// Everything the sans-IO mobile router core needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MrCoreConfig {
    /// The MR's IPv6 home address.
    pub home_address: Ipv6Addr,
    /// The home agent's IPv6 address; unspecified (`::`): found by dynamic home agent
    /// address discovery (RFC 6275 §11.4.1), as SHISA's mrd did.
    pub home_agent: Ipv6Addr,
    /// Length of the home prefix: discovery asks the Home-Agents anycast address of
    /// `home_address`/this (RFC 2526). 64 unless the home link says otherwise.
    pub home_prefix_len: u8,
    /// A mobile router (R in every BU, RFC 3963), or a mobile host (SHISA's mnd: the home
    /// address alone, RFC 6275; no prefixes).
    pub mobile_router: bool,
    /// The home agent's IPv4 address (reported in BUL_ADD for the data plane).
    pub home_agent_v4: Option<Ipv4Addr>,
    /// IPv6 mobile network prefixes.
    pub mnp_v6: Vec<Ipv6Net>,
    /// IPv4 mobile network prefixes.
    pub mnp_v4: Vec<Ipv4Net>,
    /// Explicit or implicit prefix registration (IPv6 MNPs).
    pub mode: RegistrationMode,
    /// Lifetime requested in each registration BU (4-s units).
    pub lifetime: Lifetime,
    /// Register the IPv4 MNPs in the same BU (RFC 5555 IPv4 Home Address options, P=1).
    pub send_ipv4_mnps: bool,
    /// Send SHISA's type-11 IPv4 MNP option (draft-shima-nemo-v4prefix as in KAME) instead
    /// of RFC 5555 option 29. Type 11 is IANA's CGA Parameters Request: only for SHISA-era
    /// home agents.
    pub legacy_ipv4_mnp_option: bool,
    /// RFC 4285 authentication; `None` = BUs go unauthenticated.
    pub security: Option<MobilitySa>,
    /// Announce BUL_ADD as soon as a BU for a new CoA leaves, before the BA.
    pub optimistic: bool,
    /// RFC 6275 §13 InitialBindackTimeoutFirstReg.
    pub initial_bindack_timeout_first_reg: Duration,
    /// RFC 6275 §12 INITIAL_BINDACK_TIMEOUT.
    pub initial_bindack_timeout: Duration,
    /// RFC 6275 §12 MAX_BINDACK_TIMEOUT.
    pub max_bindack_timeout: Duration,
    /// RFC 6275 §12 MAX_UPDATE_RATE (BUs per second to the HA).
    pub max_update_rate: u32,
    /// Refresh this long before the granted lifetime ends (at most half the lifetime).
    pub refresh_margin: Duration,
    /// Deregistration BUs sent before giving up (the HA's binding then just expires).
    pub dereg_max_transmissions: u32,
    /// Sequence number of the first BU. The shell should pick a random one (RFC 6275
    /// §11.7.1 lets a fresh MN start anywhere; a 135 resynchronises anyway).
    pub initial_sequence: SequenceNumber,
    /// Hop limit of the BUs.
    pub hop_limit: u8,
    /// From an IPv4 care-of address, set the F flag: ask for UDP encapsulation even
    /// without a NAT (RFC 5555 §3.1.3), and use it whatever the BA says.
    pub force_udp: bool,
    /// Keepalive (re-sent BU) period when UDP-encapsulated behind a NAT, if shorter than
    /// the Refresh time of the HA's NAT Detection option (else NATKATIMEOUT, 110 s).
    pub nat_keepalive_interval: Option<Duration>,
    /// Set L in home registrations (RFC 6275 §11.7.1): the home address's interface
    /// identifier is the one of the router's link-local address, so the home agent
    /// defends that link-local address on the home link too. The shell finds it out.
    pub link_local_compat: bool,
    /// Register every uplink of the movement detector at once (RFC 5648): one BU with a
    /// Binding Identifier option per IPv6 care-of address and the O flag, and one of its
    /// own from each IPv4 one.
    pub multiple_coa: bool,
    /// The egress interfaces, most preferred first: a care-of address's binding
    /// identifier is its interface's position here, the first 1 (`multiple_coa`).
    pub egress_interfaces: Vec<String>,
    /// Flow bindings (RFC 6089) asked for in every bulk registration, their `bids` the
    /// binding identifiers of egress interfaces (`binding_id`). Needs `multiple_coa`.
    pub flow_bindings: Vec<FlowBinding>,
    /// BID-PRI by binding identifier (RFC 6089 §4.1, 1-127): which bindings the home
    /// agent prefers for packets that match no flow binding; the others 1.
    pub bid_priorities: Vec<(u16, u8)>,
}

/// Octets the Flow Identification options of one BU may take together, padding
/// included: a Mobility Header is at most 2048 octets (its length counts 8-octet units in
/// one octet), and the rest of a bulk BU (BID options, prefixes, authentication) needs
/// room too.
pub const FLOW_OPTIONS_MAX: usize = 1024;

/// RFC 5555 §6: NATKATIMEOUT, the keepalive period when the HA gives none.
pub const NAT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(110);

impl MrCoreConfig {
    /// A configuration with RFC 6275's timers, explicit mode, a 420 s lifetime
    /// (SHISA's default home registration lifetime is of that order), IPv4 MNPs sent, no
    /// authentication, no prefixes.
    pub fn new(home_address: Ipv6Addr, home_agent: Ipv6Addr) -> Self {
        MrCoreConfig {
            home_address,
            home_agent,
            home_prefix_len: 64,
            mobile_router: true,
            home_agent_v4: None,
            mnp_v6: Vec::new(),
            mnp_v4: Vec::new(),
            mode: RegistrationMode::Explicit,
            lifetime: Lifetime::from_secs(420),
            send_ipv4_mnps: true,
            legacy_ipv4_mnp_option: false,
            security: None,
            optimistic: false,
            initial_bindack_timeout_first_reg: INITIAL_BINDACK_TIMEOUT_FIRST_REG,
            initial_bindack_timeout: INITIAL_BINDACK_TIMEOUT,
            max_bindack_timeout: MAX_BINDACK_TIMEOUT,
            max_update_rate: MAX_UPDATE_RATE,
            refresh_margin: Duration::from_secs(16),
            dereg_max_transmissions: 6,
            initial_sequence: SequenceNumber(0),
            hop_limit: 64,
            force_udp: false,
            nat_keepalive_interval: None,
            link_local_compat: false,
            multiple_coa: false,
            egress_interfaces: Vec::new(),
            flow_bindings: Vec::new(),
            bid_priorities: Vec::new(),
        }
    }
}

/// A configuration the core refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The home address is unspecified, multicast or IPv4-mapped.
    #[error("home address {0} is not a unicast IPv6 address")]
    BadHomeAddress(Ipv6Addr),
    /// The home agent address is unspecified, multicast or IPv4-mapped.
    #[error("home agent address {0} is not a unicast IPv6 address")]
    BadHomeAgent(Ipv6Addr),
    /// A mobile host registers no mobile network prefixes.
    #[error("a mobile host has no mobile network prefixes")]
    PrefixesOnAMobileHost,
    /// No room for the Home-Agents anycast address (RFC 2526 needs 8 host bits).
    #[error("home prefix length {0} leaves no room for the home agents anycast address")]
    BadHomePrefixLen(u8),
    /// A zero lifetime would make every registration a deregistration.
    #[error("requested lifetime must not be zero")]
    ZeroLifetime,
    /// RFC 4285 §5: SPIs 0-255 are reserved.
    #[error("mobility SPI {0} is reserved (0-255)")]
    ReservedSpi(u32),
    /// An empty HMAC key authenticates nothing.
    #[error("mobility SA key is empty")]
    EmptyKey,
    /// Timers must be positive and ordered.
    #[error("retransmission timers must be positive and not above MAX_BINDACK_TIMEOUT")]
    BadTimers,
    /// MAX_UPDATE_RATE of zero would never send anything.
    #[error("max update rate must be at least 1")]
    ZeroUpdateRate,
    /// An RFC 5555 IPv4 Home Address option cannot carry prefix length 0.
    #[error("IPv4 mobile network prefix {0} has length 0")]
    ZeroIpv4PrefixLen(Ipv4Net),
    /// Multiple care-of addresses number the egress interfaces: none are listed.
    #[error(
        "multiple care-of addresses need the egress interfaces: a binding identifier is an \
         interface's position among them"
    )]
    McoaWithoutEgressInterfaces,
    /// Flow bindings go through binding identifiers (RFC 6089 §4.3): none without MCoA.
    #[error(
        "flow bindings need multiple care-of addresses: a flow goes through binding identifiers"
    )]
    FlowBindingsWithoutMcoa,
    /// The Flow Identification options would not fit in a BU beside the rest.
    #[error(
        "the flow bindings take {0} octets of Flow Identification options, more than the \
         {FLOW_OPTIONS_MAX} a Binding Update leaves them: fewer flow bindings, or narrower ones"
    )]
    TooManyFlowBindings(usize),
    /// A flow binding the core cannot ask for.
    #[error("flow binding {fid}: {reason}")]
    BadFlowBinding {
        /// Its FID.
        fid: u16,
        /// What is wrong.
        reason: &'static str,
    },
}

fn unicast_v6(a: &Ipv6Addr) -> bool {
    !a.is_unspecified() && !a.is_multicast() && a.to_ipv4_mapped().is_none()
}

impl MrCoreConfig {
    /// Checks what the core relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !unicast_v6(&self.home_address) {
            return Err(ConfigError::BadHomeAddress(self.home_address));
        }
        if !self.home_agent.is_unspecified() && !unicast_v6(&self.home_agent) {
            return Err(ConfigError::BadHomeAgent(self.home_agent));
        }
        let has_prefixes = !self.mnp_v6.is_empty() || !self.mnp_v4.is_empty();
        if !self.mobile_router && has_prefixes {
            return Err(ConfigError::PrefixesOnAMobileHost);
        }
        if self.home_prefix_len > 120 {
            return Err(ConfigError::BadHomePrefixLen(self.home_prefix_len));
        }
        if self.lifetime.is_zero() {
            return Err(ConfigError::ZeroLifetime);
        }
        if let Some(sa) = &self.security {
            if sa.spi <= 255 {
                return Err(ConfigError::ReservedSpi(sa.spi));
            }
            if sa.key.is_empty() {
                return Err(ConfigError::EmptyKey);
            }
        }
        let t = [
            self.initial_bindack_timeout_first_reg,
            self.initial_bindack_timeout,
        ];
        if t.iter()
            .any(|d| d.is_zero() || *d > self.max_bindack_timeout)
        {
            return Err(ConfigError::BadTimers);
        }
        if self.max_update_rate == 0 {
            return Err(ConfigError::ZeroUpdateRate);
        }
        if let Some(n) = self.mnp_v4.iter().find(|n| n.prefix_len() == 0) {
            return Err(ConfigError::ZeroIpv4PrefixLen(*n));
        }
        if self.multiple_coa && self.egress_interfaces.is_empty() {
            return Err(ConfigError::McoaWithoutEgressInterfaces);
        }
        self.validate_flow_bindings()
    }

    /// RFC 6089 §4.2: FID and FID-PRI 0 are reserved, and a mobile node's FIDs and
    /// priorities are unique; §5.2.2.1: every BID referenced is one we register.
    fn validate_flow_bindings(&self) -> Result<(), ConfigError> {
        if self.flow_bindings.is_empty() {
            return Ok(());
        }
        if !self.multiple_coa {
            return Err(ConfigError::FlowBindingsWithoutMcoa);
        }
        let bids = 1..=self.egress_interfaces.len();
        for (i, f) in self.flow_bindings.iter().enumerate() {
            let bad = |reason| Err(ConfigError::BadFlowBinding { fid: f.fid, reason });
            let earlier = &self.flow_bindings[..i];
            if f.fid == 0 {
                return bad("FID 0 is reserved");
            }
            if f.priority == 0 {
                return bad("FID-PRI 0 is reserved");
            }
            if earlier.iter().any(|e| e.fid == f.fid) {
                return bad("FID listed twice");
            }
            if earlier.iter().any(|e| e.priority == f.priority) {
                return bad("FID-PRI shared with another flow binding");
            }
            if f.bids.is_empty() {
                return bad("no binding identifier");
            }
            if f.bids.iter().any(|b| !bids.contains(&usize::from(*b))) {
                return bad("a binding identifier that is no egress interface's");
            }
        }
        // Every flow binding identified at once (a first registration), each with all
        // its BIDs, and the most padding its alignment may need.
        let octets: usize = self
            .flow_bindings
            .iter()
            .map(|f| {
                let fi = proto::flow::FlowIdentification {
                    fid: f.fid,
                    fid_pri: f.priority,
                    status: proto::flow::FlowStatus::Successful,
                    sub_options: proto::flow::FlowSubOptions::List(&[
                        proto::flow::FlowSubOption::BindingReference(proto::flow::IdList::List(
                            &f.bids,
                        )),
                        proto::flow::FlowSubOption::TrafficSelector(f.selector.to_wire()),
                    ]),
                };
                2 + fi.data_len() + (fi.alignment().0 - 1)
            })
            .sum();
        if octets > FLOW_OPTIONS_MAX {
            return Err(ConfigError::TooManyFlowBindings(octets));
        }
        Ok(())
    }

    /// The binding identifier of a care-of address on interface `ifname` (RFC 5648):
    /// its position among the egress interfaces, the first 1.
    pub fn binding_id(&self, ifname: &str) -> Option<u16> {
        let i = self.egress_interfaces.iter().position(|n| n == ifname)?;
        u16::try_from(i + 1).ok()
    }

    /// The BID-PRI of binding identifier `bid` (RFC 6089 §4.1): configured, else 1; never
    /// 0, which RFC 6089 §5.2.1 keeps for RFC 5648's format.
    pub fn bid_priority(&self, bid: u16) -> u8 {
        self.bid_priorities
            .iter()
            .find(|(b, _)| *b == bid)
            .map_or(1, |(_, p)| (*p).clamp(1, 127))
    }
}
