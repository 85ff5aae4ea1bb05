//! The home agent core's own configuration: plain public data, no parsing. The daemon's
//! shell maps SHISA's config (`conf::HaConfig`) onto it.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::{IpNet, Ipv6Net};

pub use proto::auth::{DEFAULT_TIMESTAMP_WINDOW, MobilitySa, ReplayProtection};

/// How a prefix table row is used (RFC 3963 §6.1.1/§6.1.2, SHISA's `prefixtable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrefixMode {
    /// Installed when the BU carries no prefix option for its family (implicit mode;
    /// for IPv4 this is the first method of Shima's paper). Also authorises the prefix when
    /// the MR lists it explicitly.
    Implicit,
    /// Only authorises the prefix when the MR lists it in the BU (explicit mode).
    Explicit,
}

/// One row of the prefix table: `HoA prefix/len implicit|explicit;`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrefixTableRow {
    /// The mobile router's IPv6 home address.
    pub hoa: Ipv6Addr,
    /// An IPv6 or IPv4 mobile network prefix this MR may own. A prefix listed in a BU is
    /// authorised when it lies inside (or equals) a row's prefix.
    pub prefix: IpNet,
    /// Implicit or explicit.
    pub mode: PrefixMode,
}

/// How the HA treats RFC 5555 IPv4 Home Address options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Ipv4MnpSupport {
    /// IPv4 home addresses / MNPs are registered (after the prefix table says yes).
    #[default]
    Enabled,
    /// Every IPv4 Home Address option is answered with an IPv4 Address Acknowledgement
    /// status 129 (administratively prohibited); the IPv6 registration proceeds.
    Prohibited,
    /// Behave like an HA without DSMIPv6: IPv4 Home Address options are ignored and the BA
    /// carries no IPv4 Address Acknowledgement, which tells the MR the HA does not support
    /// IPv4 (RFC 5555 §3.2.1). Implicit IPv4 rows are not installed either.
    Unsupported,
}

/// Authentication of Binding Updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthPolicy {
    /// RFC 4285 MN-HA authentication required: BUs without the option, or with an unknown
    /// SPI, are silently dropped (and counted).
    Required(Vec<MobilitySa>),
    /// No authentication at all. Needs an explicit config statement; the shell logs a
    /// warning at start.
    Disabled,
}

/// Binding Refresh Requests (RFC 6275 §9.5.5, §10.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BrrConfig {
    /// Send a BRR this long before a binding expires (if the lifetime is longer).
    pub before_expiry: Duration,
}

/// Multiple Care-of Addresses registration (RFC 5648): Binding Updates carrying Binding
/// Identifier options register one binding per BID for a home address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct McoaConfig {
    /// Accept BUs with BID options; off, they get BA 166 (MCOA PROHIBITED). Config
    /// `mcoa 0|1;`, default on.
    pub enabled: bool,
    /// Accept several BID options in one BU (bulk registration, RFC 5648 §5.4); off,
    /// such a BU gets 168 (MCOA BULK REGISTRATION PROHIBITED). Config
    /// `mcoa-bulk-registration 0|1;`, default on.
    pub bulk_registration: bool,
    /// Most BID bindings one home address holds; a new BID beyond gets the per-BID
    /// status 130 (Insufficient resources). Config `mcoa-max-bindings N;`, default
    /// [`DEFAULT_MCOA_MAX_BINDINGS`].
    pub max_bindings_per_home_address: usize,
    /// Keep flow bindings (RFC 6089); off, each Flow Identification option is answered
    /// 128. Config `flow-bindings 0|1;`, default on.
    pub flow_bindings: bool,
    /// Most flow bindings one home address holds; a new one beyond is answered 128.
    /// Config `flow-bindings-max N;`.
    pub flow_bindings_max: usize,
}

/// Default of [`McoaConfig::max_bindings_per_home_address`]: a router with a handful of
/// uplinks, and a bound on what one authenticated router can make the home agent hold.
pub const DEFAULT_MCOA_MAX_BINDINGS: usize = 8;

/// Default of [`McoaConfig::flow_bindings_max`]: a few flows per uplink, bounded.
pub const DEFAULT_FLOW_BINDINGS_MAX: usize = 16;

impl Default for McoaConfig {
    fn default() -> Self {
        McoaConfig {
            enabled: true,
            bulk_registration: true,
            max_bindings_per_home_address: DEFAULT_MCOA_MAX_BINDINGS,
            flow_bindings: true,
            flow_bindings_max: DEFAULT_FLOW_BINDINGS_MAX,
        }
    }
}

/// Everything the sans-IO core needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaCoreConfig {
    /// Home prefixes this HA serves (RFC 3963 §6.1: the HoA must lie in one, else 132).
    pub home_prefixes: Vec<Ipv6Net>,
    /// The HA's IPv6 address: source of BAs, BEs and BRRs.
    pub ha_address: Ipv6Addr,
    /// The HA's IPv4 address (DSMIPv6 tunnels from an IPv4 CoA end there; reported in
    /// BC_ADD).
    pub ha_address_v4: Option<Ipv4Addr>,
    /// Home link interface index (where proxy ND defends registered HoAs).
    pub home_ifindex: u32,
    /// Upper bound of a granted lifetime (RFC 6275 §10.3.1 "local policy"); rounded down
    /// to 4-s units.
    pub max_lifetime: Duration,
    /// Accept mobile routers (R flag, RFC 3963); otherwise BA 140.
    pub mobile_router_support: bool,
    /// The prefix table.
    pub prefix_table: Vec<PrefixTableRow>,
    /// IPv4 home addresses / MNPs (RFC 5555, Shima).
    pub ipv4_mnp: Ipv4MnpSupport,
    /// Home addresses whose BUs may carry SHISA's legacy IPv4 MNP option (type 11, which
    /// collides with IANA's CGA Parameters Request).
    pub legacy_ipv4_mnp_hoas: Vec<Ipv6Addr>,
    /// Authentication.
    pub auth: AuthPolicy,
    /// Binding Refresh Requests; `None` = never sent.
    pub brr: Option<BrrConfig>,
    /// Binding Errors are rate-limited (RFC 6275 §9.3.3, like ICMPv6): at most this many
    /// per second, in bursts of the same size.
    pub binding_error_rate: u32,
    /// Home Agent Address Discovery Replies and Mobile Prefix Advertisements sent at most
    /// this many per second, in bursts of the same size: a request costs its sender 48
    /// octets and its answer up to 1280, so unlimited answers would make a reflector.
    pub discovery_reply_rate: u32,
    /// This home agent's Home Agent Preference in the home agents list (RFC 6275 §7.4,
    /// §10.5.1): higher is tried first. SHISA's `preference`; default 0.
    pub home_agent_preference: i16,
    /// Hop limit of the packets the HA sends.
    pub hop_limit: u8,
    /// Refresh time (seconds) of the NAT Detection option when a NAT is seen (RFC 5555
    /// §3.2.2): the MR's keepalive period. Config `nat-keepalive-interval`, default 110.
    pub nat_keepalive_secs: u32,
    /// Most home addresses held at once (each with its plain binding or its BID
    /// bindings); a new registration beyond it is refused with 130 (Insufficient
    /// resources). Config `max-bindings`.
    pub max_bindings: usize,
    /// Accept home addresses neither the prefix table nor an SA names. Off, a BU for such
    /// an address is refused with 129 (Administratively prohibited): with `authentication
    /// none;` anyone could otherwise fill the cache with random addresses of the home
    /// prefix. Config `unlisted-home-addresses accept|refuse`.
    pub accept_unlisted_home_addresses: bool,
    /// Proxy Duplicate Address Detection (RFC 6275 §10.3.1): before the first BA for a
    /// home address (and, with L, its link-local address) the home agent runs DAD for it on
    /// the home link; a defended address gets BA 134 and no binding. `None`: off (the
    /// core's default, for tests and tools); the daemon's `homelink-dad 1;` (the default)
    /// sets RetransTimer x DupAddrDetectTransmits, 1 s.
    pub proxy_dad: Option<Duration>,
    /// Multiple Care-of Addresses (RFC 5648).
    pub mcoa: McoaConfig,
}

/// Default of [`HaCoreConfig::max_bindings`] (and of had's `max-bindings`).
pub const DEFAULT_MAX_BINDINGS: usize = 100_000;

impl HaCoreConfig {
    /// A configuration with the usual defaults: MRs accepted, IPv4 enabled, max lifetime
    /// 3600 s, unlisted home addresses accepted... and **authentication disabled**, which
    /// a shell must only keep after an explicit config statement.
    pub fn new(home_prefixes: Vec<Ipv6Net>, ha_address: Ipv6Addr) -> Self {
        HaCoreConfig {
            home_prefixes,
            ha_address,
            ha_address_v4: None,
            home_ifindex: 0,
            max_lifetime: Duration::from_secs(3600),
            mobile_router_support: true,
            prefix_table: Vec::new(),
            ipv4_mnp: Ipv4MnpSupport::Enabled,
            legacy_ipv4_mnp_hoas: Vec::new(),
            auth: AuthPolicy::Disabled,
            brr: None,
            binding_error_rate: 10,
            discovery_reply_rate: 10,
            home_agent_preference: 0,
            hop_limit: 64,
            nat_keepalive_secs: 110,
            max_bindings: DEFAULT_MAX_BINDINGS,
            accept_unlisted_home_addresses: true,
            proxy_dad: None,
            mcoa: McoaConfig::default(),
        }
    }
}
