//! The mobile router's configuration (`mrd.conf`): SHISA's `mrd` keys plus what Linux
//! needs (home address, home agent address, mobile network prefixes, keys).
//!
//! ```text
//! interface mip0 {
//!     home-address 2001:db8:1::100;
//!     home-agent-address 2001:db8:1::1;
//!     mobile-network-prefix 2001:db8:100::/48;
//!     mobile-network-prefix 192.0.2.16/28;
//!     home-registration-lifetime 150;       # 4 s units: 600 s
//!     auth-database /etc/nemo/auth-database;
//! };
//! ```
//!
//! Statements may be global or inside the `interface` block named like mrd's interface
//! argument (SHISA's rule); a single-valued key set in both takes the block's value.
//! `conf/README.md` documents every key.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proto::flow::{FlowSelector, Ipv4TrafficSelector, Ipv6TrafficSelector, SelectorRange};

use crate::auth::{AuthDatabase, ReplayProtection, SaEntry, is_nai, parse_key};
use crate::common::{
    Ctx, Effective, KeySpec, debug_level, flag, from_document, overlaps, shisa_ignored_all,
    split_prefixes,
};
use crate::grammar::{Document, Statement, Value};
use crate::prefixtable::{self, PrefixTable, RegistrationMode};
use crate::{ConfError, Warning};

/// Default `home-registration-lifetime`, in SHISA's 4 s units (600 s).
pub const DEFAULT_HOME_REGISTRATION_LIFETIME: u16 = 150;

pub(crate) const SPEC: KeySpec = KeySpec {
    daemon: "mrd",
    single: &[
        "debug",
        "home-registration-lifetime",
        "mobile-node-mode",
        "key-management",
        "ipv4-mnp-support",
        "auth-database",
        "home-address",
        "home-agent-address",
        "home-agent-ipv4-address",
        "registration-mode",
        "authentication",
        "legacy-ipv4-mnp-option",
        "optimistic-handover",
        "force-udp-encapsulation",
        "nat-keepalive-interval",
        "metrics-listen",
        "multiple-care-of-addresses",
    ],
    multi: &[
        "mobile-network-prefix",
        "egress-interface",
        "prefixtable",
        "prefixtable-file",
        "namelookup",
        "command-port",
        "pager",
        "preference",
        "homelink-dad",
        "static-tunnel",
        "ipv4-dummy-tunnel",
        "flow-binding",
        "binding-priority",
    ],
    other: &[
        "home-prefix",
        "binding-lifetime-max",
        "binding-cache-file",
        "binding-refresh-request",
        "nat-keepalive-interval",
        "replay-window",
        "mcoa",
        "mcoa-bulk-registration",
        "mcoa-max-bindings",
    ],
};

/// The mobile router's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MrConfig {
    /// The file it was read from.
    pub file: String,
    /// The `interface` block that applied, if any.
    pub interface: Option<String>,
    /// SHISA's `debug` level (0 = off); the `-d` flag also turns debug logs on.
    pub debug: u32,
    /// `mobile-node-mode mobile-host;` (SHISA's mnd): a mobile node registering its home
    /// address alone (no R flag, no prefixes, RFC 6275). Default: a mobile router.
    pub mobile_host: bool,
    /// The home address (`home-address`, or the single home address of the prefix table).
    pub home_address: Ipv6Addr,
    /// The home agent (`home-agent-address`). `None` in a SHISA file without it: the
    /// address must then come from the command line (SHISA's `mrd -a`).
    pub home_agent_address: Option<Ipv6Addr>,
    /// The home agent's IPv4 address (`home-agent-ipv4-address`), for IPv4 care-of
    /// addresses later (DSMIPv6).
    pub home_agent_ipv4_address: Option<Ipv4Addr>,
    /// IPv6 mobile network prefixes (`mobile-network-prefix` and prefix table rows).
    pub mobile_network_prefixes: Vec<Ipv6Net>,
    /// IPv4 mobile network prefixes (same sources). Empty when `ipv4-mnp-support` is off.
    pub ipv4_mobile_network_prefixes: Vec<Ipv4Net>,
    /// Explicit (prefix options in the BU) or implicit (the HA's prefix table).
    pub registration_mode: RegistrationMode,
    /// Requested binding lifetime in 4 s units (SHISA's `home-registration-lifetime`).
    pub home_registration_lifetime: u16,
    /// SHISA's `ipv4-mnp-support`: register IPv4 mobile network prefixes (default on).
    pub ipv4_mnp_support: bool,
    /// Interfaces for care-of addresses, most preferred first (`egress-interface`).
    pub egress_interfaces: Vec<String>,
    /// The mobility SA; `None` only after an explicit `authentication none;`.
    pub authentication: Option<SaEntry>,
    /// The auth-database named by `auth-database`, if any.
    pub auth_database: Option<PathBuf>,
    /// Also send SHISA's legacy IPv4 MNP option (type 11); off by default.
    pub legacy_ipv4_mnp_option: bool,
    /// Announce the new binding to the data plane as soon as the BU leaves.
    pub optimistic_handover: bool,
    /// `force-udp-encapsulation`: from an IPv4 care-of address, set the F flag and use
    /// UDP encapsulation even without a NAT (RFC 5555). Default off.
    pub force_udp_encapsulation: bool,
    /// `nat-keepalive-interval` in seconds: re-send the BU (the NAT keepalive) at least
    /// this often when UDP-encapsulated, if shorter than the HA's Refresh time. Default
    /// none (the HA's Refresh, else NATKATIMEOUT 110 s).
    pub nat_keepalive_interval: Option<u32>,
    /// `metrics-listen "ADDRESS:PORT";`: serve the counters there (mrd's `--metrics`
    /// wins). Default: no listener.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `multiple-care-of-addresses yes|no;`: register a care-of address on every egress
    /// interface at once (RFC 5648), each its own binding, its binding identifier the
    /// interface's position in `egress-interface` (first = 1). Default off.
    pub multiple_care_of_addresses: bool,
    /// `flow-binding FID { ... };` blocks (RFC 6089): flows towards the mobile network
    /// bound to egress interfaces' binding identifiers, in file order. Needs
    /// `multiple-care-of-addresses yes;`.
    pub flow_bindings: Vec<MrFlowBinding>,
    /// `binding-priority IFNAME N;` (1-127): the BID-PRI of that egress interface's
    /// binding (RFC 6089 §4.1); packets that match no flow binding go through the live
    /// bindings of the lowest value. Unlisted interfaces: 1. Needs
    /// `multiple-care-of-addresses yes;`.
    pub binding_priorities: Vec<(String, u8)>,
}

/// One `flow-binding FID { ... };` block: a flow binding the mobile router asks its home
/// agent for (RFC 6089 §4.3, §5.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MrFlowBinding {
    /// The FID (1-65535; 0 is reserved, RFC 6089 §4.2), unique in the file.
    pub fid: u16,
    /// FID-PRI (`priority`, 1-65535), unique in the file: lower is tried first.
    pub priority: u16,
    /// `via`: the egress interfaces the flow goes through, each standing for its binding
    /// identifier (its position in `egress-interface`); several = a copy through each.
    pub via: Vec<String>,
    /// The binary traffic selector (RFC 6088), written for packets towards the mobile
    /// network: source = the correspondent, destination = the mobile network.
    pub selector: FlowSelector,
    /// `file:line` of the block, for messages.
    pub origin: String,
}

impl MrConfig {
    /// The RFC 5648 binding identifier of a care-of address on interface `ifname`: its
    /// position in `egress-interface`, the first 1; `None` for an interface not listed.
    pub fn binding_id(&self, ifname: &str) -> Option<u16> {
        let i = self.egress_interfaces.iter().position(|n| n == ifname)?;
        u16::try_from(i + 1).ok()
    }

    /// The BID-PRI of interface `ifname`'s binding (RFC 6089 §4.1): `binding-priority`,
    /// else 1 (never 0: RFC 6089 §5.2.1 keeps 0 for RFC 5648's format).
    pub fn binding_priority(&self, ifname: &str) -> u8 {
        self.binding_priorities
            .iter()
            .find(|(n, _)| n == ifname)
            .map_or(1, |(_, p)| *p)
    }

    /// The binding identifiers of a flow binding's `via` interfaces, in its order.
    pub fn flow_bids(&self, flow: &MrFlowBinding) -> Vec<u16> {
        flow.via.iter().filter_map(|n| self.binding_id(n)).collect()
    }
}

impl MrConfig {
    /// The requested binding lifetime.
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.home_registration_lifetime) * 4)
    }

    /// Both prefix lists as one.
    pub fn all_prefixes(&self) -> Vec<IpNet> {
        self.mobile_network_prefixes
            .iter()
            .map(|p| IpNet::V6(*p))
            .chain(
                self.ipv4_mobile_network_prefixes
                    .iter()
                    .map(|p| IpNet::V4(*p)),
            )
            .collect()
    }

    /// Reads and validates a configuration file. With several `interface` blocks, use
    /// [`MrConfig::from_file_for`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<(MrConfig, Vec<Warning>), ConfError> {
        Self::from_file_for(path, None)
    }

    /// Reads a configuration file for mrd running on `interface` (SHISA's argument).
    pub fn from_file_for(
        path: impl AsRef<Path>,
        interface: Option<&str>,
    ) -> Result<(MrConfig, Vec<Warning>), ConfError> {
        let path = path.as_ref();
        let text = crate::read_to_string(path)?;
        Self::parse_str_for(&text, &path.display().to_string(), interface)
    }

    /// Parses configuration text. `file_name` names it in messages, and relative paths in
    /// it (`auth-database`, `prefixtable-file`) are taken from `file_name`'s directory.
    pub fn parse_str(text: &str, file_name: &str) -> Result<(MrConfig, Vec<Warning>), ConfError> {
        Self::parse_str_for(text, file_name, None)
    }

    /// [`MrConfig::parse_str`] for mrd running on `interface`.
    pub fn parse_str_for(
        text: &str,
        file_name: &str,
        interface: Option<&str>,
    ) -> Result<(MrConfig, Vec<Warning>), ConfError> {
        let doc = Document::parse(text, file_name)?;
        Self::from_document(&doc, interface)
    }

    /// Builds the configuration from a parsed document.
    pub fn from_document(
        doc: &Document,
        interface: Option<&str>,
    ) -> Result<(MrConfig, Vec<Warning>), ConfError> {
        from_document(doc, &SPEC, interface, build)
    }
}

fn build(
    ctx: &mut Ctx,
    eff: &Effective<'_>,
    interface: Option<String>,
) -> Result<MrConfig, ConfError> {
    shisa_ignored_all(ctx, eff)?;
    for s in eff.all("preference").chain(eff.all("homelink-dad")) {
        let v = ctx.one(s, &format!("{} NUMBER;", s.name()))?;
        ctx.u32_in(v, s.name(), 0..=65535)?;
        ctx.warn(
            s,
            format!(
                "'{}' is a home agent setting in SHISA; mrd ignores it",
                s.name()
            ),
        );
    }

    let debug = debug_level(ctx, eff)?;
    // SHISA built mrd (mobile routers) and mnd (mobile hosts, RFC 6275 without R) from one
    // source; so do we: `mobile-host` registers the home address alone.
    let mobile_host = match eff.get("mobile-node-mode") {
        Some(s) => {
            let v = ctx.one(s, "mobile-node-mode mobile-router|mobile-host;")?;
            match v.text.as_str() {
                "mobile-router" => false,
                "mobile-host" => true,
                _ => {
                    return Err(ctx.err_at(
                        v,
                        format!("expected mobile-router or mobile-host, found '{v}'"),
                    ));
                }
            }
        }
        None => false,
    };
    if let Some(s) = eff.get("key-management") {
        let v = ctx.one(s, "key-management 0|1;")?;
        if ctx.boolean(v)? {
            ctx.warn(s, "'key-management': IPsec/IKE is not supported (RFC 4285 keys are used instead); the K flag is not set");
        }
    }
    let home_registration_lifetime = match eff.get("home-registration-lifetime") {
        Some(s) => {
            let v = ctx.one(s, "home-registration-lifetime UNITS-OF-4-SECONDS;")?;
            ctx.u32_in(
                v,
                "the home registration lifetime (in 4 s units)",
                1..=65535,
            )? as u16
        }
        None => DEFAULT_HOME_REGISTRATION_LIFETIME,
    };
    let ipv4_mnp_support = flag(ctx, eff, "ipv4-mnp-support", true)?;
    let legacy_ipv4_mnp_option = flag(ctx, eff, "legacy-ipv4-mnp-option", false)?;
    let optimistic_handover = flag(ctx, eff, "optimistic-handover", false)?;
    let force_udp_encapsulation = flag(ctx, eff, "force-udp-encapsulation", false)?;
    let nat_keepalive_interval = match eff.get("nat-keepalive-interval") {
        Some(s) => Some(ctx.u32_in(
            ctx.one(s, "nat-keepalive-interval SECONDS;")?,
            "the NAT keepalive interval (seconds)",
            1..=110,
        )?),
        None => None,
    };
    let metrics_listen = match eff.get("metrics-listen") {
        Some(s) => Some(ctx.socket_addr(
            ctx.one(s, "metrics-listen \"ADDRESS:PORT\";")?,
            "the metrics listener",
        )?),
        None => None,
    };
    let home_agent_address = match eff.get("home-agent-address") {
        Some(s) => Some(ctx.ipv6(
            ctx.one(s, "home-agent-address IPV6-ADDRESS;")?,
            "the home agent address",
        )?),
        // SHISA's mrd had no such key: its home agent came from DHAAD, as ours does then
        // (RFC 6275 §11.4.1), unless -a names one.
        None => None,
    };
    let home_agent_ipv4_address = match eff.get("home-agent-ipv4-address") {
        Some(s) => Some(ctx.ipv4(
            ctx.one(s, "home-agent-ipv4-address IPV4-ADDRESS;")?,
            "the home agent's IPv4 address",
        )?),
        None => None,
    };
    let mut table = PrefixTable::default();
    for s in eff.all("prefixtable") {
        prefixtable::inline(ctx, s, &mut table)?;
    }
    for s in eff.all("prefixtable-file") {
        let v = ctx.one(s, "prefixtable-file PATH;")?;
        let path = ctx.path(v);
        prefixtable::from_file(ctx, &path, &mut table)?;
    }
    let home_address = match eff.get("home-address") {
        Some(s) => ctx.ipv6(
            ctx.one(s, "home-address IPV6-ADDRESS;")?,
            "the home address",
        )?,
        None => match table.home_addresses().as_slice() {
            [one] => *one,
            [] => {
                return Err(ConfError::file(
                    &ctx.file,
                    "no home address: add 'home-address IPV6-ADDRESS;'",
                ));
            }
            several => {
                let list: Vec<String> = several.iter().map(|a| a.to_string()).collect();
                return Err(ConfError::file(
                    &ctx.file,
                    format!(
                        "the prefix table names several home addresses ({}): add 'home-address IPV6-ADDRESS;' to say which is this router's",
                        list.join(", ")
                    ),
                ));
            }
        },
    };
    if Some(home_address) == home_agent_address {
        let s = eff.get("home-agent-address").expect("set above");
        return Err(ctx.err_stmt(s, "the home agent address equals the home address"));
    }

    // Prefixes: rows of this home address, then mobile-network-prefix statements.
    let mut prefixes: Vec<(IpNet, String)> = Vec::new();
    let mut row_modes: Vec<RegistrationMode> = Vec::new();
    let mut others = 0;
    for e in &table.entries {
        if e.home_address == home_address {
            prefixes.push((e.prefix, format!("{}:{}", e.file, e.location.line)));
            if !row_modes.contains(&e.mode) {
                row_modes.push(e.mode);
            }
        } else {
            others += 1;
        }
    }
    if others > 0 {
        ctx.warnings.push(Warning::file(
            &ctx.file,
            format!("{others} prefix table row(s) of other home addresses ignored (this router is {home_address})"),
        ));
    }
    for s in eff.all("mobile-network-prefix") {
        for v in ctx.some(s, "mobile-network-prefix PREFIX/LEN [...];")? {
            let p = ctx.mobile_network_prefix(v, None)?;
            if let Some((q, at)) = prefixes.iter().find(|(q, _)| overlaps(q, &p)) {
                if *q == p {
                    continue; // the same prefix in the table and as a statement
                }
                return Err(ctx.err_at(v, format!("mobile network prefix {p} overlaps {q} ({at})")));
            }
            prefixes.push((p, format!("{}:{}", ctx.file, v.location.line)));
        }
    }
    for (p, at) in &prefixes {
        if let IpNet::V6(p6) = p
            && p6.contains(&home_address)
        {
            return Err(ConfError::file(
                &ctx.file,
                format!(
                    "mobile network prefix {p} ({at}) contains the home address {home_address}"
                ),
            ));
        }
    }
    let list: Vec<IpNet> = prefixes.iter().map(|(p, _)| *p).collect();
    let (mobile_network_prefixes, mut ipv4_mobile_network_prefixes) = split_prefixes(&list);
    if !ipv4_mnp_support && !ipv4_mobile_network_prefixes.is_empty() {
        let s = eff.get("ipv4-mnp-support").expect("off only when set");
        ctx.warn(
            s,
            format!(
                "ipv4-mnp-support is off: {} IPv4 mobile network prefix(es) will not be registered",
                ipv4_mobile_network_prefixes.len()
            ),
        );
        ipv4_mobile_network_prefixes.clear();
    }
    if mobile_host {
        if let Some((p, at)) = prefixes.first() {
            return Err(ConfError::file(
                &ctx.file,
                format!(
                    "mobile network prefix {p} ({at}) on a mobile host: 'mobile-node-mode mobile-host' registers the home address alone (a mobile router has prefixes)"
                ),
            ));
        }
    } else if mobile_network_prefixes.is_empty() && ipv4_mobile_network_prefixes.is_empty() {
        ctx.warnings.push(Warning::file(
            &ctx.file,
            "no mobile network prefix: the router registers its home address only",
        ));
    }

    let registration_mode = match eff.get("registration-mode") {
        Some(s) => {
            let v = ctx.one(s, "registration-mode explicit|implicit;")?;
            let m = match v.text.as_str() {
                "explicit" => RegistrationMode::Explicit,
                "implicit" => RegistrationMode::Implicit,
                _ => {
                    return Err(
                        ctx.err_at(v, format!("expected explicit or implicit, found '{v}'"))
                    );
                }
            };
            if row_modes.iter().any(|r| *r != m) {
                ctx.warn(
                    s,
                    format!("registration-mode {m} overrides the modes of the prefix table rows"),
                );
            }
            m
        }
        None => match row_modes.as_slice() {
            [one] => *one,
            [] => RegistrationMode::Explicit,
            _ => {
                return Err(ConfError::file(
                    &ctx.file,
                    format!(
                        "the prefix table rows of {home_address} mix implicit and explicit: add 'registration-mode explicit|implicit;'"
                    ),
                ));
            }
        },
    };

    let mut egress_interfaces: Vec<String> = Vec::new();
    for s in eff.all("egress-interface") {
        for v in ctx.some(s, "egress-interface IFNAME [IFNAME...];")? {
            let n = ctx.name(v, "an egress interface")?;
            if egress_interfaces.contains(&n) {
                return Err(ctx.err_at(v, format!("egress interface {n} is listed twice")));
            }
            egress_interfaces.push(n);
        }
    }

    let multiple_care_of_addresses = flag(ctx, eff, "multiple-care-of-addresses", false)?;
    if multiple_care_of_addresses && egress_interfaces.is_empty() {
        let s = eff
            .get("multiple-care-of-addresses")
            .expect("on only when set");
        return Err(ctx.err_stmt(
            s,
            "multiple-care-of-addresses needs 'egress-interface IFNAME [...];': a care-of \
             address's binding identifier (RFC 5648) is its interface's position there",
        ));
    }

    let flow_bindings = flow_bindings(ctx, eff, &egress_interfaces, multiple_care_of_addresses)?;
    let binding_priorities =
        binding_priorities(ctx, eff, &egress_interfaces, multiple_care_of_addresses)?;

    let auth_database = match eff.get("auth-database") {
        Some(s) => Some(ctx.path(ctx.one(s, "auth-database PATH;")?)),
        None => None,
    };
    let authentication = authentication(ctx, eff, home_address, auth_database.as_deref())?;

    Ok(MrConfig {
        file: ctx.file.clone(),
        interface,
        debug,
        mobile_host,
        home_address,
        home_agent_address,
        home_agent_ipv4_address,
        mobile_network_prefixes,
        ipv4_mobile_network_prefixes,
        registration_mode,
        home_registration_lifetime,
        ipv4_mnp_support,
        egress_interfaces,
        authentication,
        auth_database,
        legacy_ipv4_mnp_option,
        optimistic_handover,
        force_udp_encapsulation,
        nat_keepalive_interval,
        metrics_listen,
        multiple_care_of_addresses,
        flow_bindings,
        binding_priorities,
    })
}

const BINDING_PRIORITY_USAGE: &str = "binding-priority IFNAME N; (N 1-127, lower first)";

/// Every `binding-priority IFNAME N;` in effect: an egress interface each, at most once.
fn binding_priorities(
    ctx: &mut Ctx,
    eff: &Effective<'_>,
    egress: &[String],
    multiple_coa: bool,
) -> Result<Vec<(String, u8)>, ConfError> {
    let mut out: Vec<(String, u8)> = Vec::new();
    for s in eff.all("binding-priority") {
        if !multiple_coa {
            return Err(ctx.err_stmt(
                s,
                "binding-priority needs 'multiple-care-of-addresses yes;': it orders the \
                 bindings of several care-of addresses (RFC 6089 §4.1, BID-PRI)",
            ));
        }
        let [name, n] = ctx.some(s, BINDING_PRIORITY_USAGE)? else {
            return Err(ctx.err_stmt(
                s,
                format!("'binding-priority' takes two values: {BINDING_PRIORITY_USAGE}"),
            ));
        };
        let ifname = ctx.name(name, "an egress interface")?;
        if !egress.contains(&ifname) {
            return Err(ctx.err_at(
                name,
                format!(
                    "{ifname} is not an egress interface: binding-priority orders the \
                     bindings of those listed by 'egress-interface' ({})",
                    egress.join(" ")
                ),
            ));
        }
        if out.iter().any(|(n, _)| *n == ifname) {
            return Err(ctx.err_at(name, format!("binding-priority of {ifname} is already set")));
        }
        // RFC 6089 §4.1: 7 bits, 0 reserved.
        let p = ctx.u32_in(n, "the binding priority (BID-PRI)", 1..=127)? as u8;
        out.push((ifname, p));
    }
    Ok(out)
}

const FLOW_USAGE: &str = "flow-binding FID { priority N; via IFNAME [IFNAME...]; [protocol NAME|N;] \
    [port N[-M];] [local-port N[-M];] [correspondent ADDRESS[/LEN];] [local ADDRESS[/LEN];] \
    [dscp N[-M];] [family inet|inet6;] };";

/// The keys of a `flow-binding` block.
const FLOW_KEYS: &[&str] = &[
    "priority",
    "via",
    "protocol",
    "port",
    "local-port",
    "correspondent",
    "local",
    "dscp",
    "family",
];

/// Protocol (IPv4) / next header (IPv6) names `protocol` takes (IANA protocol numbers).
const PROTOCOLS: &[(&str, u8)] = &[
    ("icmp", 1),
    ("tcp", 6),
    ("udp", 17),
    ("dccp", 33),
    ("esp", 50),
    ("icmp6", 58),
    ("ipv6-icmp", 58),
    ("sctp", 132),
    ("udplite", 136),
];

/// An address or a prefix of a flow binding, as the selector's start/end range.
#[derive(Clone, Copy)]
enum AddressRange {
    V4(SelectorRange<Ipv4Addr>),
    V6(SelectorRange<Ipv6Addr>),
}

impl AddressRange {
    fn family(&self) -> &'static str {
        match self {
            AddressRange::V4(_) => "inet",
            AddressRange::V6(_) => "inet6",
        }
    }
}

/// Every `flow-binding` block in effect (global ones, then the interface block's), checked
/// against each other: FIDs and priorities unique (RFC 6089 §4.2: FID-PRI is unique per
/// mobile node).
fn flow_bindings(
    ctx: &mut Ctx,
    eff: &Effective<'_>,
    egress: &[String],
    multiple_coa: bool,
) -> Result<Vec<MrFlowBinding>, ConfError> {
    let mut out: Vec<MrFlowBinding> = Vec::new();
    for s in eff.all("flow-binding") {
        if !multiple_coa {
            return Err(ctx.err_stmt(
                s,
                "flow-binding needs 'multiple-care-of-addresses yes;': a flow binding (RFC \
                 6089) goes through binding identifiers, which only multiple care-of \
                 addresses (RFC 5648) register",
            ));
        }
        let (fb, fid_at, priority_at) = flow_binding(ctx, s, egress)?;
        if let Some(prev) = out.iter().find(|p| p.fid == fb.fid) {
            return Err(ctx.err_at(
                fid_at,
                format!(
                    "flow-binding {} is already defined at {}",
                    fb.fid, prev.origin
                ),
            ));
        }
        if let Some(prev) = out.iter().find(|p| p.priority == fb.priority) {
            return Err(ctx.err_at(
                priority_at,
                format!(
                    "priority {} is already that of flow-binding {} ({}): each flow binding \
                     needs its own (RFC 6089 §4.2, FID-PRI)",
                    fb.priority, prev.fid, prev.origin
                ),
            ));
        }
        out.push(fb);
    }
    Ok(out)
}

/// One `flow-binding FID { ... };` block; also where its FID and its priority were written.
fn flow_binding<'s>(
    ctx: &mut Ctx,
    s: &'s Statement,
    egress: &[String],
) -> Result<(MrFlowBinding, &'s Value, &'s Value), ConfError> {
    let fid_at = match s.args() {
        [v] => v,
        [] => {
            return Err(ctx.err_stmt(s, format!("'flow-binding' needs its FID: {FLOW_USAGE}")));
        }
        [_, extra, ..] => {
            return Err(ctx.err_at(
                extra,
                format!("'flow-binding' takes one FID, found also '{extra}': {FLOW_USAGE}"),
            ));
        }
    };
    // RFC 6089 §4.2: FID 0 is reserved.
    let fid = ctx.u32_in(fid_at, "the flow identifier (FID)", 1..=65535)? as u16;
    let Some(b) = &s.block else {
        return Err(ctx.err_stmt(
            s,
            format!("'flow-binding {fid}' needs a block: {FLOW_USAGE}"),
        ));
    };
    let mut seen: Vec<(&str, u32)> = Vec::new();
    let mut priority = None;
    let mut via: Vec<String> = Vec::new();
    let mut protocol: Option<(u8, &Value)> = None;
    let mut port = None;
    let mut local_port = None;
    let mut correspondent: Option<(AddressRange, &Value)> = None;
    let mut local: Option<(AddressRange, &Value)> = None;
    let mut dscp = None;
    let mut family: Option<(&str, &Value)> = None;
    for st in &b.statements {
        let name = st.name();
        if !FLOW_KEYS.contains(&name) {
            return Err(crate::common::unknown_key(
                ctx,
                st,
                "a flow-binding block",
                FLOW_KEYS,
            ));
        }
        if let Some((_, line)) = seen.iter().find(|(k, _)| *k == name) {
            return Err(ctx.err_stmt(st, format!("'{name}' is already set at line {line}")));
        }
        seen.push((name, st.location().line));
        match name {
            "priority" => {
                let v = ctx.one(st, "priority N; (FID-PRI, 1-65535, lower first)")?;
                // RFC 6089 §4.2: FID-PRI 0 is reserved too.
                let n = ctx.u32_in(v, "the priority (FID-PRI)", 1..=65535)? as u16;
                priority = Some((n, v));
            }
            "via" => {
                for v in ctx.some(st, "via IFNAME [IFNAME...];")? {
                    let n = ctx.name(v, "an egress interface")?;
                    if !egress.contains(&n) {
                        return Err(ctx.err_at(
                            v,
                            format!(
                                "'{n}' is not an egress interface (egress-interface {}): a flow \
                                 goes through an egress interface's binding identifier",
                                egress.join(" ")
                            ),
                        ));
                    }
                    if via.contains(&n) {
                        return Err(ctx.err_at(v, format!("'{n}' is listed twice in 'via'")));
                    }
                    via.push(n);
                }
            }
            "protocol" => {
                let v = ctx.one(st, "protocol udp|tcp|sctp|icmp|icmp6|NUMBER;")?;
                let n = match PROTOCOLS
                    .iter()
                    .find(|(k, _)| v.text.eq_ignore_ascii_case(k))
                {
                    Some((_, n)) if !v.is_quoted() => *n,
                    _ => {
                        let names: Vec<&str> = PROTOCOLS.iter().map(|(k, _)| *k).collect();
                        let n = v.text.parse::<u8>().ok().filter(|_| !v.is_quoted());
                        n.ok_or_else(|| {
                            ctx.err_at(
                                v,
                                format!(
                                    "expected a protocol ({}) or its number (0-255), found '{v}'",
                                    names.join(", ")
                                ),
                            )
                        })?
                    }
                };
                protocol = Some((n, v));
            }
            "port" => {
                let v = ctx.one(st, "port N; or port N-M; (the correspondent's port)")?;
                port = Some(number_range(ctx, v, "the correspondent's port", 65535)?);
            }
            "local-port" => {
                let v = ctx.one(st, "local-port N; or local-port N-M;")?;
                local_port = Some(number_range(ctx, v, "the local port", 65535)?);
            }
            "correspondent" => {
                let v = ctx.one(st, "correspondent ADDRESS; or correspondent PREFIX/LEN;")?;
                correspondent = Some((address_range(ctx, v, "the correspondent")?, v));
            }
            "local" => {
                let v = ctx.one(st, "local ADDRESS; or local PREFIX/LEN;")?;
                local = Some((address_range(ctx, v, "the local address")?, v));
            }
            "dscp" => {
                let v = ctx.one(st, "dscp N; or dscp N-M; (0-63)")?;
                let r = number_range(ctx, v, "the DSCP", 63)?;
                // The selector holds the DS octet: the DSCP is its 6 high bits (RFC 2474).
                dscp = Some(SelectorRange {
                    start: (r.start as u8) << 2,
                    end: r.end.map(|e| (e as u8) << 2),
                });
            }
            _ => {
                let v = ctx.one(st, "family inet|inet6;")?;
                let f = match v.text.as_str() {
                    "inet" => "inet",
                    "inet6" => "inet6",
                    _ => {
                        return Err(ctx.err_at(v, format!("expected inet or inet6, found '{v}'")));
                    }
                };
                family = Some((f, v));
            }
        }
    }
    let missing = |what: &str| {
        ConfError::at(
            &ctx.file,
            b.close,
            format!("flow-binding {fid} needs '{what}': {FLOW_USAGE}"),
        )
    };
    let (priority, priority_at) = priority.ok_or_else(|| missing("priority N;"))?;
    if via.is_empty() {
        return Err(missing("via IFNAME [IFNAME...];"));
    }
    // One family for the whole selector: the addresses say which, or `family` does.
    if let (Some((c, _)), Some((l, lv))) = (&correspondent, &local)
        && c.family() != l.family()
    {
        return Err(ctx.err_at(
            lv,
            format!(
                "flow-binding {fid} mixes families: the local address is {} but the \
                 correspondent is {}",
                l.family(),
                c.family()
            ),
        ));
    }
    let from_addresses = correspondent.or(local).map(|(a, v)| (a.family(), v));
    let family = match (family, from_addresses) {
        (Some((f, fv)), Some((a, av))) if f != a => {
            return Err(ctx.err_at(
                av,
                format!(
                    "'{av}' is {a} but flow-binding {fid} says 'family {f};' (line {})",
                    fv.location.line
                ),
            ));
        }
        (Some((f, _)), _) | (None, Some((f, _))) => f,
        (None, None) => {
            return Err(ctx.err_stmt(
                s,
                format!(
                    "flow-binding {fid}: no address says whether the flow is IPv4 or IPv6: \
                     add 'family inet;' or 'family inet6;'"
                ),
            ));
        }
    };
    if let Some((n, v)) = protocol
        && !v.text.bytes().all(|c| c.is_ascii_digit())
    {
        let clash = match (family, n) {
            ("inet6", 1) => Some("icmp6"),
            ("inet", 58) => Some("icmp"),
            _ => None,
        };
        if let Some(want) = clash {
            return Err(ctx.err_at(
                v,
                format!("protocol {v} in an {family} flow binding: did you mean {want}?"),
            ));
        }
    }
    let protocol = protocol.map(|(n, _)| SelectorRange::single(n));
    let ports = |r: Option<SelectorRange<u32>>| {
        r.map(|r| SelectorRange {
            start: r.start as u16,
            end: r.end.map(|e| e as u16),
        })
    };
    // Written for packets towards the mobile network (RFC 6088 as RFC 6089 uses it): the
    // correspondent is the source, the mobile network the destination.
    let (source_port, destination_port) = (ports(port), ports(local_port));
    let selector = if family == "inet" {
        let v4 = |a: Option<(AddressRange, &Value)>| match a {
            Some((AddressRange::V4(r), _)) => Some(r),
            _ => None,
        };
        FlowSelector::Ipv4(Ipv4TrafficSelector {
            source_address: v4(correspondent),
            destination_address: v4(local),
            source_port,
            destination_port,
            ds: dscp,
            protocol,
            ..Default::default()
        })
    } else {
        let v6 = |a: Option<(AddressRange, &Value)>| match a {
            Some((AddressRange::V6(r), _)) => Some(r),
            _ => None,
        };
        FlowSelector::Ipv6(Ipv6TrafficSelector {
            source_address: v6(correspondent),
            destination_address: v6(local),
            source_port,
            destination_port,
            traffic_class: dscp,
            next_header: protocol,
            ..Default::default()
        })
    };
    let fb = MrFlowBinding {
        fid,
        priority,
        via,
        selector,
        origin: format!("{}:{}", ctx.file, s.location().line),
    };
    Ok((fb, fid_at, priority_at))
}

/// `N` or `N-M` (inclusive, N not above M), each at most `max`.
fn number_range(
    ctx: &Ctx,
    v: &Value,
    what: &str,
    max: u32,
) -> Result<SelectorRange<u32>, ConfError> {
    let bad = || {
        ctx.err_at(
            v,
            format!("expected {what} as N or N-M (0-{max}), found '{v}'"),
        )
    };
    let num = |t: &str| -> Result<u32, ConfError> {
        match t.parse::<u32>() {
            Ok(n) if !v.is_quoted() && !t.starts_with('+') && n <= max => Ok(n),
            _ => Err(bad()),
        }
    };
    match v.text.split_once('-') {
        None => Ok(SelectorRange::single(num(&v.text)?)),
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(ctx.err_at(
                    v,
                    format!("{what}: the range {a}-{b} is reversed: write {b}-{a}"),
                ));
            }
            Ok(SelectorRange::new(a, b))
        }
    }
}

/// An address (the selector's start alone) or a prefix (from its first address to its
/// last).
fn address_range(ctx: &Ctx, v: &Value, what: &str) -> Result<AddressRange, ConfError> {
    if v.text.contains('/') {
        return Ok(match ctx.prefix(v, None, what)? {
            IpNet::V4(n) if n.prefix_len() == 32 => {
                AddressRange::V4(SelectorRange::single(n.addr()))
            }
            IpNet::V4(n) => AddressRange::V4(SelectorRange::new(n.network(), n.broadcast())),
            IpNet::V6(n) if n.prefix_len() == 128 => {
                AddressRange::V6(SelectorRange::single(n.addr()))
            }
            IpNet::V6(n) => AddressRange::V6(SelectorRange::new(n.network(), n.broadcast())),
        });
    }
    match v.text.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) if !v.is_quoted() => {
            Ok(AddressRange::V4(SelectorRange::single(a)))
        }
        Ok(std::net::IpAddr::V6(a)) if !v.is_quoted() => {
            Ok(AddressRange::V6(SelectorRange::single(a)))
        }
        _ => Err(ctx.err_at(
            v,
            format!("expected {what} as an address or a prefix (ADDRESS/LEN), found '{v}'"),
        )),
    }
}

const AUTH_USAGE: &str = "authentication { spi NUMBER; key 0xHEX|\"TEXT\"; [identifier NAI;] [replay-window SECONDS;] }; or authentication none;";

fn authentication(
    ctx: &mut Ctx,
    eff: &Effective<'_>,
    hoa: Ipv6Addr,
    database: Option<&Path>,
) -> Result<Option<SaEntry>, ConfError> {
    let stmt = eff.get("authentication");
    if let Some(s) = stmt {
        if s.block.is_none() {
            let v = ctx.one(s, AUTH_USAGE)?;
            if v.text != "none" {
                return Err(ctx.err_at(v, format!("expected 'none' or a block: {AUTH_USAGE}")));
            }
            ctx.warn(
                s,
                "authentication none: Binding Updates are sent unauthenticated",
            );
            if database.is_some() {
                ctx.warn(s, "authentication none: the auth-database is not used");
            }
            return Ok(None);
        }
        if database.is_some() {
            ctx.warn(
                s,
                "the authentication block is used; the auth-database is not consulted",
            );
        }
        return block(ctx, s).map(Some);
    }
    if let Some(path) = database {
        let (db, mut w) = AuthDatabase::from_file(path)?;
        ctx.warnings.append(&mut w);
        return match db.by_home_address(hoa) {
            Some(sa) => Ok(Some(sa.clone())),
            None => Err(ConfError::file(
                &ctx.file,
                format!(
                    "the auth-database {} has no entry for the home address {hoa}",
                    path.display()
                ),
            )),
        };
    }
    Err(ConfError::file(
        &ctx.file,
        format!(
            "no authentication configured: add 'auth-database PATH;', an authentication block ({AUTH_USAGE})"
        ),
    ))
}

fn block(ctx: &mut Ctx, s: &Statement) -> Result<SaEntry, ConfError> {
    if let Some(a) = s.args().first() {
        return Err(ctx.err_at(
            a,
            format!("'authentication' takes a block or 'none', not both: {AUTH_USAGE}"),
        ));
    }
    let b = s.block.as_ref().expect("checked by the caller");
    let known = ["spi", "key", "identifier", "replay-window"];
    let mut spi = None;
    let mut key = None;
    let mut identifier = None;
    let mut window = None;
    let mut seen: Vec<(&str, u32)> = Vec::new();
    for st in &b.statements {
        let name = st.name();
        if !known.contains(&name) {
            return Err(crate::common::unknown_key(
                ctx,
                st,
                "an authentication block",
                &known,
            ));
        }
        if let Some((_, line)) = seen.iter().find(|(k, _)| *k == name) {
            return Err(ctx.err_stmt(st, format!("'{name}' is already set at line {line}")));
        }
        seen.push((name, st.location().line));
        match name {
            "spi" => {
                let v = ctx.one(st, "spi NUMBER;")?;
                let n = ctx.u32_in(v, "the SPI", 0..=u64::from(u32::MAX))?;
                if n <= 255 {
                    return Err(ctx.err_at(
                        v,
                        format!("SPI {n} is reserved (RFC 4285 §5: 0-255); use 256 or more"),
                    ));
                }
                spi = Some(n);
            }
            "key" => {
                let v = ctx.one(st, "key 0xHEX|\"TEXT\";")?;
                let k = parse_key(v).map_err(|m| ctx.err_at(v, m))?;
                if k.len() < crate::auth::MIN_KEY_LEN {
                    return Err(ctx.err_at(v, crate::auth::short_key("the key", k.len())));
                }
                key = Some(k);
            }
            "identifier" => {
                let v = ctx.one(st, "identifier \"user@realm\";")?;
                if !is_nai(&v.text) {
                    return Err(ctx.err_at(v, format!("expected an NAI (user@realm), found '{v}'")));
                }
                identifier = Some(v.text.clone());
            }
            _ => {
                let v = ctx.one(st, "replay-window SECONDS;")?;
                window = Some(ctx.u32_in(v, "the replay window (seconds)", 1..=3600)?);
            }
        }
    }
    let missing = |what: &str| {
        ConfError::at(
            &ctx.file,
            b.close,
            format!("the authentication block needs '{what}': {AUTH_USAGE}"),
        )
    };
    let spi = spi.ok_or_else(|| missing("spi"))?;
    let key = key.ok_or_else(|| missing("key"))?;
    let mut sa = SaEntry::new(spi, key);
    sa.identifier = identifier;
    if let Some(w) = window {
        sa.replay = ReplayProtection::Timestamps {
            window: Duration::from_secs(u64::from(w)),
        };
    }
    sa.origin = format!("{}:{}", ctx.file, s.location().line);
    Ok(sa)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "\
home-address 2001:db8:1::100;
home-agent-address 2001:db8:1::1;
mobile-network-prefix 2001:db8:100::/48;
mobile-network-prefix 192.0.2.16/28;
authentication { spi 1000; key 0x000102030405060708090a0b0c0d0e0f; };
";

    fn parse(t: &str) -> Result<(MrConfig, Vec<Warning>), ConfError> {
        MrConfig::parse_str(t, "mrd.conf")
    }

    fn err(t: &str) -> String {
        parse(t).unwrap_err().to_string()
    }

    #[test]
    fn a_mobile_host_registers_its_home_address_alone() {
        let host = "mobile-node-mode mobile-host;\nhome-address 2001:db8:1::200;\n\
            authentication { spi 1001; key 0x000102030405060708090a0b0c0d0e0f; };\n";
        let (c, w) = parse(host).unwrap();
        assert!(c.mobile_host);
        assert!(c.all_prefixes().is_empty());
        assert!(
            w.is_empty(),
            "no 'no mobile network prefix' warning for a host: {w:?}"
        );
        let (c, _) = parse(MINIMAL).unwrap();
        assert!(!c.mobile_host);
    }

    #[test]
    fn minimal_with_defaults() {
        let (c, w) = parse(MINIMAL).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            c.home_address,
            "2001:db8:1::100".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            c.mobile_network_prefixes,
            vec!["2001:db8:100::/48".parse().unwrap()]
        );
        assert_eq!(
            c.ipv4_mobile_network_prefixes,
            vec!["192.0.2.16/28".parse().unwrap()]
        );
        assert_eq!(c.registration_mode, RegistrationMode::Explicit);
        assert_eq!(c.lifetime(), Duration::from_secs(600));
        assert!(c.ipv4_mnp_support);
        assert!(!c.legacy_ipv4_mnp_option);
        assert!(!c.optimistic_handover);
        let sa = c.authentication.unwrap();
        assert_eq!(sa.spi, 1000);
        assert_eq!(sa.key.len(), 16);
        assert_eq!(sa.replay_window(), Duration::from_secs(7));
    }

    #[test]
    fn interface_block_overrides_global() {
        let t = format!(
            "{MINIMAL}home-registration-lifetime 10;\ninterface mip0 {{ home-registration-lifetime 20; egress-interface wlan0 eth0; }};\n"
        );
        let (c, _) = parse(&t).unwrap();
        assert_eq!(c.interface.as_deref(), Some("mip0"));
        assert_eq!(c.home_registration_lifetime, 20);
        assert_eq!(c.egress_interfaces, vec!["wlan0", "eth0"]);
        let t2 = format!("{t}interface mip1 {{ home-registration-lifetime 30; }};\n");
        assert!(
            parse(&t2)
                .unwrap_err()
                .to_string()
                .contains("several interface blocks (mip0, mip1)")
        );
        let (c, _) = MrConfig::parse_str_for(&t2, "mrd.conf", Some("mip1")).unwrap();
        assert_eq!(c.home_registration_lifetime, 30);
        let (c, w) = MrConfig::parse_str_for(&t2, "mrd.conf", Some("mip9")).unwrap();
        assert_eq!(c.home_registration_lifetime, 10);
        assert!(
            w.iter()
                .any(|w| w.message.contains("no 'interface mip9' block"))
        );
        // Typos in other interface blocks are still found.
        let t3 = format!("{t}interface mip1 {{ home-registration-lifetme 30; }};\n");
        assert!(
            MrConfig::parse_str_for(&t3, "mrd.conf", Some("mip0"))
                .unwrap_err()
                .to_string()
                .contains("did you mean 'home-registration-lifetime'")
        );
    }

    #[test]
    fn prefixes_and_mode_from_prefixtable() {
        let t = "\
home-agent-address 2001:db8:1::1;
authentication none;
prefixtable {
    2001:db8:1::100 2001:db8:100::/48 implicit;
    2001:db8:1::100 192.0.2.16/28 implicit;
};
";
        let (c, w) = parse(t).unwrap();
        assert_eq!(
            c.home_address,
            "2001:db8:1::100".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(c.registration_mode, RegistrationMode::Implicit);
        assert_eq!(c.all_prefixes().len(), 2);
        assert!(c.authentication.is_none());
        assert!(w.iter().any(|w| w.message.contains("unauthenticated")));
    }

    #[test]
    fn errors() {
        assert_eq!(
            err(&MINIMAL.replace("home-address", "home-adress")),
            "mrd.conf:1:1: unknown key 'home-adress' for mrd; did you mean 'home-address'?"
        );
        assert_eq!(
            err(&format!("{MINIMAL}home-prefix 2001:db8:1::/64;")),
            "mrd.conf:6:1: 'home-prefix' is a had setting; mrd does not accept it"
        );
        assert!(err(&MINIMAL.replace("2001:db8:100::/48", "2001:db8:100::1/48"))
            .contains("3:23: the mobile network prefix 2001:db8:100::1/48 has host bits set: did you mean 2001:db8:100::/48?"));
        assert!(
            err(&MINIMAL.replace("192.0.2.16/28", "192.0.2.16/33"))
                .contains("the prefix length must be 1 to 32, found '33'")
        );
        assert!(
            err(&MINIMAL.replace("192.0.2.16/28", "2001:db8:100:1::/64"))
                .contains("overlaps 2001:db8:100::/48")
        );
        let (c, w) = parse(&MINIMAL.replace("home-agent-address 2001:db8:1::1;", "")).unwrap();
        assert!(c.home_agent_address.is_none(), "found by DHAAD");
        assert!(w.is_empty(), "{w:?}");
        assert!(err(&MINIMAL.replace("spi 1000", "spi 7")).contains("SPI 7 is reserved"));
        assert!(
            err(&MINIMAL.replace("2001:db8:1::100", "fe80::100"))
                .contains("must be a global address, found the link-local fe80::100")
        );
        assert!(err(&MINIMAL.replace("spi 1000; ", "")).contains("needs 'spi'"));
        assert!(
            err(&MINIMAL.replace("spi 1000;", "spi 1000; colour 1;"))
                .contains("unknown key 'colour'")
        );
        assert!(
            err(&MINIMAL.replace("authentication {", "#")).contains("no authentication configured")
        );
        assert!(
            err(&format!("{MINIMAL}home-address 2001:db8:1::101;"))
                .contains("6:1: 'home-address' is already set at line 1")
        );
        // A mobile host (SHISA's mnd) has no prefixes.
        assert!(
            err(&format!("{MINIMAL}mobile-node-mode mobile-host;")).contains(
                "on a mobile host: 'mobile-node-mode mobile-host' registers the home address alone"
            )
        );
        assert!(
            err(&format!("{MINIMAL}mobile-node-mode mobile-bus;"))
                .contains("expected mobile-router or mobile-host, found 'mobile-bus'")
        );
        assert!(
            err(&format!("{MINIMAL}home-registration-lifetime 0;")).contains("between 1 and 65535")
        );
        assert_eq!(
            err(&format!("{MINIMAL}debug 1\noptimistic-handover yes;")),
            "mrd.conf:7:1: expected ';' after 'debug 1' (line 6), found 'optimistic-handover'"
        );
        assert!(
            err(&format!("{MINIMAL}optimistic-handover maybe;")).contains("expected yes or no")
        );
        assert!(
            err(&format!("{MINIMAL}home-agent-ipv4-address 2001:db8::5;"))
                .contains("must be an IPv4 address")
        );
        assert!(
            err(&MINIMAL.replace("2001:db8:1::1;", "2001:db8:1::100;"))
                .contains("equals the home address")
        );
    }

    #[test]
    fn shisa_keys_warn() {
        let t = format!(
            "{MINIMAL}debug 1;\nnamelookup 0;\ncommand-port 7778;\nkey-management 1;\nmobile-node-mode mobile-router;\n\
             ipv4-dummy-tunnel {{ gif0 192.0.2.1 203.0.113.1; }};\nstatic-tunnel {{ nemo3 2001:db8:1::100 111; }};\n"
        );
        let (c, w) = parse(&t).unwrap();
        assert_eq!(c.debug, 1);
        let all: Vec<String> = w.iter().map(|w| w.to_string()).collect();
        assert!(
            all.iter()
                .any(|m| m.starts_with("mrd.conf:7:1: 'namelookup'")),
            "{all:?}"
        );
        assert!(all.iter().any(|m| m.contains("'command-port'")));
        assert!(all.iter().any(|m| m.contains("K flag")));
        assert!(
            all.iter()
                .any(|m| m.contains("need no dummy") || m.contains("without dummy addresses"))
        );
        assert!(all.iter().any(|m| m.contains("'static-tunnel'")));
    }

    #[test]
    fn binding_priorities_name_egress_interfaces_once_with_1_to_127() {
        let base = format!(
            "{MINIMAL}egress-interface wlan0 eth0 sat0;\nmultiple-care-of-addresses yes;\n"
        );
        let (c, w) = parse(&format!(
            "{base}binding-priority sat0 10;\nbinding-priority wlan0 2;\n"
        ))
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.binding_priority("sat0"), 10);
        assert_eq!(c.binding_priority("wlan0"), 2);
        assert_eq!(c.binding_priority("eth0"), 1, "unlisted: 1");
        let (c, _) = parse(&base).unwrap();
        assert!(c.binding_priorities.is_empty());
        assert_eq!(
            err(&format!("{base}binding-priority eth9 3;\n")),
            "mrd.conf:8:18: eth9 is not an egress interface: binding-priority orders the \
             bindings of those listed by 'egress-interface' (wlan0 eth0 sat0)"
        );
        for bad in ["0", "128", "x"] {
            assert!(
                err(&format!("{base}binding-priority sat0 {bad};\n")).contains("mrd.conf:8:23:"),
                "{bad}"
            );
        }
        assert!(
            err(&format!("{base}binding-priority sat0;\n"))
                .contains("'binding-priority' takes two values")
        );
        assert!(
            err(&format!(
                "{base}binding-priority sat0 3;\nbinding-priority sat0 4;\n"
            ))
            .contains("mrd.conf:9:18: binding-priority of sat0 is already set")
        );
        assert!(
            err(&format!(
                "{MINIMAL}egress-interface wlan0;\nbinding-priority wlan0 3;\n"
            ))
            .contains("binding-priority needs 'multiple-care-of-addresses yes;'")
        );
    }

    #[test]
    fn multiple_care_of_addresses_number_the_egress_interfaces() {
        let (c, _) = parse(MINIMAL).unwrap();
        assert!(!c.multiple_care_of_addresses, "off by default");
        let t = format!(
            "{MINIMAL}egress-interface wlan0 eth0;\negress-interface wwan0;\nmultiple-care-of-addresses yes;\n"
        );
        let (c, w) = parse(&t).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert!(c.multiple_care_of_addresses);
        assert_eq!(c.binding_id("wlan0"), Some(1));
        assert_eq!(c.binding_id("eth0"), Some(2));
        assert_eq!(c.binding_id("wwan0"), Some(3));
        assert_eq!(c.binding_id("eth9"), None);
        let (c, _) = parse(&t.replace("yes;", "no;")).unwrap();
        assert!(!c.multiple_care_of_addresses);
        // SHISA's integers, as every boolean.
        let (c, _) = parse(&t.replace("yes;", "1;")).unwrap();
        assert!(c.multiple_care_of_addresses);
        assert_eq!(
            err(&format!("{MINIMAL}multiple-care-of-addresses yes;\n")),
            "mrd.conf:6:1: multiple-care-of-addresses needs 'egress-interface IFNAME [...];': \
             a care-of address's binding identifier (RFC 5648) is its interface's position there"
        );
        assert!(
            err(&t.replace("yes;", "perhaps;")).starts_with("mrd.conf:8:28: expected yes or no"),
            "{}",
            err(&t.replace("yes;", "perhaps;"))
        );
        assert!(
            err(&format!("{t}multiple-care-of-addresses no;\n"))
                .contains("9:1: 'multiple-care-of-addresses' is already set at line 8")
        );
        // had's keys are had's.
        assert_eq!(
            err(&format!("{MINIMAL}mcoa 1;\n")),
            "mrd.conf:6:1: 'mcoa' is a had setting; mrd does not accept it"
        );
        // In an interface block, as any key.
        let (c, _) = MrConfig::parse_str_for(
            &format!(
                "{MINIMAL}interface mip0 {{ egress-interface eth0 eth1; multiple-care-of-addresses yes; }};\n"
            ),
            "mrd.conf",
            Some("mip0"),
        )
        .unwrap();
        assert_eq!(c.binding_id("eth1"), Some(2));
    }

    #[test]
    fn ipv4_mnp_support_off_drops_ipv4_prefixes() {
        let (c, w) = parse(&format!("{MINIMAL}ipv4-mnp-support 0;")).unwrap();
        assert!(!c.ipv4_mnp_support);
        assert!(c.ipv4_mobile_network_prefixes.is_empty());
        assert!(w[0].message.contains("will not be registered"));
    }

    #[test]
    fn an_inline_key_shorter_than_16_octets_is_refused() {
        let key = "key 0x000102030405060708090a0b0c0d0e0f;";
        assert!(MINIMAL.contains(key));
        for (short, octets) in [("key 0x01;", 1), ("key 'fifteen-octets!';", 15)] {
            let m = err(&MINIMAL.replace(key, short));
            assert!(
                m.starts_with(&format!(
                    "mrd.conf:5:32: the key is {octets} octet{}; at least 16 are required",
                    if octets == 1 { "" } else { "s" }
                )),
                "{m}"
            );
        }
        let (c, w) = parse(&MINIMAL.replace(key, "key \"sixteen-octets!!\";")).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.authentication.unwrap().key, b"sixteen-octets!!");
    }

    /// MINIMAL with two egress interfaces and multiple care-of addresses (flow bindings
    /// need them), then `more`; the first line of `more` is line 8.
    fn with_flows(more: &str) -> String {
        format!("{MINIMAL}egress-interface eth0 eth1;\nmultiple-care-of-addresses yes;\n{more}")
    }

    #[test]
    fn flow_bindings_become_selectors_towards_the_mobile_network() {
        let t = with_flows(
            "flow-binding 1 {
    priority 10;
    via eth1 eth0;
    protocol udp;
    port 5060;
    local-port 40000-40100;
    correspondent 2001:db8:c::/64;
    local 2001:db8:100:1::1;
    dscp 46;
};
flow-binding 7 { priority 5; via eth0; protocol 6; family inet; };
flow-binding 8 { priority 6; via eth1; correspondent 198.51.100.0/24; dscp 8-10; };
",
        );
        let (c, w) = parse(&t).unwrap();
        assert!(w.is_empty(), "{w:?}");
        let [f1, f7, f8] = c.flow_bindings.as_slice() else {
            panic!("{:?}", c.flow_bindings)
        };
        assert_eq!(
            (f1.fid, f1.priority, f1.via.as_slice()),
            (1, 10, &["eth1".to_string(), "eth0".to_string()][..])
        );
        assert_eq!(c.flow_bids(f1), [2, 1]);
        assert_eq!(f1.origin, "mrd.conf:8");
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(
            f1.selector,
            FlowSelector::Ipv6(Ipv6TrafficSelector {
                source_address: Some(SelectorRange::new(
                    a("2001:db8:c::"),
                    a("2001:db8:c::ffff:ffff:ffff:ffff")
                )),
                destination_address: Some(SelectorRange::single(a("2001:db8:100:1::1"))),
                source_port: Some(SelectorRange::single(5060)),
                destination_port: Some(SelectorRange::new(40000, 40100)),
                traffic_class: Some(SelectorRange::single(46 << 2)),
                next_header: Some(SelectorRange::single(17)),
                ..Default::default()
            })
        );
        assert_eq!(
            f7.selector,
            FlowSelector::Ipv4(Ipv4TrafficSelector {
                protocol: Some(SelectorRange::single(6)),
                ..Default::default()
            })
        );
        assert_eq!(c.flow_bids(f7), [1]);
        assert_eq!(
            f8.selector,
            FlowSelector::Ipv4(Ipv4TrafficSelector {
                source_address: Some(SelectorRange::new(
                    Ipv4Addr::new(198, 51, 100, 0),
                    Ipv4Addr::new(198, 51, 100, 255)
                )),
                ds: Some(SelectorRange::new(32, 40)),
                ..Default::default()
            })
        );
        // None by default; in an interface block like any repeatable key.
        assert!(parse(MINIMAL).unwrap().0.flow_bindings.is_empty());
        let (c, _) = MrConfig::parse_str_for(
            &format!(
                "{MINIMAL}interface mip0 {{ egress-interface eth0; multiple-care-of-addresses yes;\n\
                 flow-binding 3 {{ priority 1; via eth0; family inet6; }}; }};\n"
            ),
            "mrd.conf",
            Some("mip0"),
        )
        .unwrap();
        assert_eq!(c.flow_bindings[0].fid, 3);
    }

    #[test]
    fn flow_binding_errors_name_the_line_and_the_field() {
        let one = |body: &str| err(&with_flows(&format!("flow-binding 1 {{\n{body}\n}};\n")));
        let cases: &[(&str, &str)] = &[
            (
                "priority 1; via eth0;",
                "mrd.conf:8:1: flow-binding 1: no address says whether the flow is IPv4 or \
                 IPv6: add 'family inet;' or 'family inet6;'",
            ),
            (
                "priority 1; via eth0; correspondent 2001:db8:c::/64; local 192.0.2.17;",
                "mrd.conf:9:60: flow-binding 1 mixes families: the local address is inet but \
                 the correspondent is inet6",
            ),
            (
                "priority 1; via eth0; family inet; local 2001:db8:100::1;",
                "mrd.conf:9:42: '2001:db8:100::1' is inet6 but flow-binding 1 says 'family \
                 inet;' (line 9)",
            ),
            (
                "priority 1; via eth0 wlan9; family inet6;",
                "mrd.conf:9:22: 'wlan9' is not an egress interface (egress-interface eth0 \
                 eth1): a flow goes through an egress interface's binding identifier",
            ),
            (
                "priority 1; via eth0 eth0; family inet6;",
                "mrd.conf:9:22: 'eth0' is listed twice in 'via'",
            ),
            (
                "priority 1; via eth0; family inet6; port 5070-5060;",
                "mrd.conf:9:42: the correspondent's port: the range 5070-5060 is reversed: \
                 write 5060-5070",
            ),
            (
                "priority 1; via eth0; family inet6; local-port 70000;",
                "mrd.conf:9:48: expected the local port as N or N-M (0-65535), found '70000'",
            ),
            (
                "priority 1; via eth0; family inet6; dscp 64;",
                "mrd.conf:9:42: expected the DSCP as N or N-M (0-63), found '64'",
            ),
            (
                "priority 1; via eth0; family inet6; protocol icmp;",
                "mrd.conf:9:46: protocol icmp in an inet6 flow binding: did you mean icmp6?",
            ),
            (
                "priority 1; via eth0; family inet6; protocol gopher;",
                "mrd.conf:9:46: expected a protocol (icmp, tcp, udp, dccp, esp, icmp6, \
                 ipv6-icmp, sctp, udplite) or its number (0-255), found 'gopher'",
            ),
            (
                "priority 1; via eth0; family inet7;",
                "mrd.conf:9:30: expected inet or inet6, found 'inet7'",
            ),
            (
                "priority 0; via eth0; family inet6;",
                "mrd.conf:9:10: the priority (FID-PRI) must be between 1 and 65535, found 0",
            ),
            (
                "via eth0; family inet6;",
                "mrd.conf:10:1: flow-binding 1 needs 'priority N;': flow-binding FID { \
                 priority N; via IFNAME [IFNAME...]; [protocol NAME|N;] [port N[-M];] \
                 [local-port N[-M];] [correspondent ADDRESS[/LEN];] [local ADDRESS[/LEN];] \
                 [dscp N[-M];] [family inet|inet6;] };",
            ),
            (
                "priority 1; family inet6; priority 2;",
                "mrd.conf:9:27: 'priority' is already set at line 9",
            ),
            (
                "priority 1; via eth0; family inet6; correspondant 2001:db8::1;",
                "mrd.conf:9:37: unknown key 'correspondant' for a flow-binding block; did you \
                 mean 'correspondent'?",
            ),
            (
                "priority 1; via eth0; correspondent 2001:db8:c::1/64;",
                "mrd.conf:9:37: the correspondent 2001:db8:c::1/64 has host bits set: did you \
                 mean 2001:db8:c::/64?",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(one(body), *want, "{body}");
        }
        let two = |a: &str, b: &str| {
            err(&with_flows(&format!(
                "flow-binding {a};\nflow-binding {b};\n"
            )))
        };
        assert_eq!(
            two(
                "1 { priority 1; via eth0; family inet; }",
                "1 { priority 2; via eth0; family inet; }"
            ),
            "mrd.conf:9:14: flow-binding 1 is already defined at mrd.conf:8"
        );
        assert_eq!(
            two(
                "1 { priority 1; via eth0; family inet; }",
                "2 { priority 1; via eth0; family inet; }"
            ),
            "mrd.conf:9:27: priority 1 is already that of flow-binding 1 (mrd.conf:8): each \
             flow binding needs its own (RFC 6089 §4.2, FID-PRI)"
        );
        assert_eq!(
            err(&with_flows(
                "flow-binding 0 { priority 1; via eth0; family inet; };\n"
            )),
            "mrd.conf:8:14: the flow identifier (FID) must be between 1 and 65535, found 0"
        );
        assert_eq!(
            err(&with_flows(
                "flow-binding { priority 1; via eth0; family inet; };\n"
            )),
            format!("mrd.conf:8:1: 'flow-binding' needs its FID: {FLOW_USAGE}")
        );
        assert_eq!(
            err(&with_flows("flow-binding 4;\n")),
            format!("mrd.conf:8:1: 'flow-binding 4' needs a block: {FLOW_USAGE}")
        );
        // Without multiple care-of addresses there are no binding identifiers to name.
        assert_eq!(
            err(&format!(
                "{MINIMAL}egress-interface eth0;\nflow-binding 1 {{ priority 1; via eth0; family inet; }};\n"
            )),
            "mrd.conf:7:1: flow-binding needs 'multiple-care-of-addresses yes;': a flow \
             binding (RFC 6089) goes through binding identifiers, which only multiple \
             care-of addresses (RFC 5648) register"
        );
    }
}
