//! The home agent's configuration (`had.conf`): SHISA's `had` keys plus what Linux needs
//! (served home prefixes, lifetime limit, binding cache journal, authentication policy).
//!
//! ```text
//! interface eth0 {
//!     home-agent-address 2001:db8:1::1;
//!     home-prefix 2001:db8:1::/64;
//!     auth-database /etc/nemo/auth-database;
//!     prefixtable {
//!         2001:db8:1::100 2001:db8:100::/48 explicit;
//!         2001:db8:1::100 192.0.2.16/28 explicit;
//!     };
//! };
//! ```
//!
//! SHISA's had found its home prefixes and address on the home interface; so does ours
//! when `home-prefix` / `home-agent-address` are left out (the fields are then empty and
//! the daemon reads the interface). `conf/README.md` documents every key.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::{IpNet, Ipv6Net};

use crate::auth::AuthDatabase;
use crate::common::{
    Ctx, Effective, KeySpec, debug_level, flag, from_document, overlaps, shisa_ignored_all,
};
use crate::grammar::Document;
use crate::prefixtable::{self, PrefixTable};
use crate::{ConfError, Warning};

/// Default `binding-lifetime-max`, seconds.
pub const DEFAULT_BINDING_LIFETIME_MAX: Duration = Duration::from_secs(3600);
/// The largest lifetime a BU can carry: 65535 units of 4 s.
pub const MAX_BINDING_LIFETIME: Duration = Duration::from_secs(65535 * 4);
/// Default `binding-cache-file`.
pub const DEFAULT_BINDING_CACHE_FILE: &str = "/var/lib/nemo/had.journal";
/// Default `max-bindings`: a fleet per home agent.
pub const DEFAULT_MAX_BINDINGS: u32 = 100_000;
/// Default `mcoa-max-bindings`: care-of bindings (RFC 5648 BIDs) one home address may hold.
pub const DEFAULT_MCOA_MAX_BINDINGS: u32 = 8;
/// Default `flow-bindings-max`: flow bindings (RFC 6089) one home address may hold.
pub const DEFAULT_FLOW_BINDINGS_MAX: u32 = 16;
/// Default `redundancy-advert-interval`: the active home agent's heartbeat period.
pub const DEFAULT_REDUNDANCY_ADVERT_INTERVAL: Duration = Duration::from_millis(50);
/// Default `redundancy-dead-interval`: the silence after which a standby takes over.
pub const DEFAULT_REDUNDANCY_DEAD_INTERVAL: Duration = Duration::from_millis(300);
/// Default `nat-keepalive-interval` (RFC 5555 §3.1.3 suggests 110 s).
pub const DEFAULT_NAT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(110);

pub(crate) const SPEC: KeySpec = KeySpec {
    daemon: "had",
    single: &[
        "debug",
        "home-registration-lifetime",
        "mobile-node-mode",
        "key-management",
        "ipv4-mnp-support",
        "auth-database",
        "preference",
        "homelink-dad",
        "home-agent-address",
        "home-agent-ipv4-address",
        "binding-lifetime-max",
        "binding-cache-file",
        "binding-cache-etcd",
        "authentication",
        "binding-refresh-request",
        "nat-keepalive-interval",
        "replay-window",
        "max-bindings",
        "unlisted-home-addresses",
        "metrics-listen",
        "mcoa",
        "mcoa-bulk-registration",
        "mcoa-max-bindings",
        "flow-bindings",
        "flow-bindings-max",
        "redundancy",
        "redundancy-member",
        "redundancy-advert-interval",
        "redundancy-dead-interval",
    ],
    multi: &[
        "home-prefix",
        "prefixtable",
        "prefixtable-file",
        "legacy-ipv4-mnp-option",
        "namelookup",
        "command-port",
        "pager",
        "static-tunnel",
        "ipv4-dummy-tunnel",
    ],
    other: &[
        "home-address",
        "mobile-network-prefix",
        "registration-mode",
        "egress-interface",
        "optimistic-handover",
        "multiple-care-of-addresses",
    ],
};

/// Home agent redundancy (`redundancy yes;` and its keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redundancy {
    /// `redundancy-member NAME;`: this member's name in the store and in logs; `None`: the
    /// host name.
    pub member: Option<String>,
    /// `redundancy-advert-interval MS;`: the active one's heartbeat period.
    pub advert_interval: Duration,
    /// `redundancy-dead-interval MS;`: a standby that hears no heartbeat this long takes
    /// over.
    pub dead_interval: Duration,
}

/// Whether Binding Updates must be authenticated (RFC 4285).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaAuthentication {
    /// Every BU must carry a valid MN-HA authenticator from an SA of this database.
    Required(AuthDatabase),
    /// `authentication none;`: BUs are accepted unauthenticated (logged at start).
    None,
}

/// The home agent's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    /// The file it was read from.
    pub file: String,
    /// The `interface` block that applied, if any.
    pub interface: Option<String>,
    /// SHISA's `debug` level (0 = off).
    pub debug: u32,
    /// The home agent address; `None`: the home interface's global address (SHISA's way).
    pub home_agent_address: Option<Ipv6Addr>,
    /// The home agent's IPv4 address, for IPv4 care-of addresses later (DSMIPv6).
    pub home_agent_ipv4_address: Option<Ipv4Addr>,
    /// Served home prefixes; empty: the home interface's prefixes (SHISA's way).
    pub home_prefixes: Vec<Ipv6Net>,
    /// Longest binding granted; longer requests are cut to it.
    pub binding_lifetime_max: Duration,
    /// Which home address may register which prefixes, and how.
    pub prefix_table: PrefixTable,
    /// SHISA's `ipv4-mnp-support`: accept IPv4 mobile network prefixes (default on).
    pub ipv4_mnp_support: bool,
    /// Where acknowledged bindings are journaled, to survive restarts.
    pub binding_cache_file: PathBuf,
    /// `binding-cache-etcd URL [URL...];`: the binding cache in etcd too (its client
    /// endpoints, `http://HOST:PORT`): durable there before each BA, restored from there at
    /// start. Empty: the journal alone.
    pub binding_cache_etcd: Vec<String>,
    /// The authentication policy and keys.
    pub authentication: HaAuthentication,
    /// The auth-database named by `auth-database`, if any.
    pub auth_database: Option<PathBuf>,
    /// Home addresses whose BUs may carry SHISA's legacy IPv4 MNP option (type 11).
    pub legacy_ipv4_mnp_option: Vec<Ipv6Addr>,
    /// Send Binding Refresh Requests before bindings expire.
    pub binding_refresh_request: bool,
    /// The NAT keep-alive interval advertised to mobile routers behind a NAT (RFC 5555).
    pub nat_keepalive_interval: Duration,
    /// Most bindings held at once (`max-bindings`); new registrations beyond get 130.
    pub max_bindings: u32,
    /// `unlisted-home-addresses accept;`: register home addresses that neither the prefix
    /// table nor the auth-database names. Default `refuse` (129).
    pub accept_unlisted_home_addresses: bool,
    /// SHISA's `homelink-dad`: proxy Duplicate Address Detection on the home link before
    /// the first BA for a home address (RFC 6275 §10.3.1). Default on.
    pub homelink_dad: bool,
    /// SHISA's `preference`: this home agent's Home Agent Preference in DHAAD Replies
    /// (RFC 6275 §7.4, §10.5.1); default 0.
    pub home_agent_preference: i16,
    /// `metrics-listen "ADDRESS:PORT";`: serve the counters there (had's `--metrics`
    /// wins). Default: no listener.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `mcoa 0|1;`: accept Binding Updates with Binding Identifier options (RFC 5648,
    /// several care-of addresses per home address); off, they get BA 166. Default on.
    pub mcoa: bool,
    /// `mcoa-bulk-registration 0|1;`: accept several BID options in one BU (RFC 5648
    /// §5.4); off, such a BU gets 168. Default on.
    pub mcoa_bulk_registration: bool,
    /// `redundancy yes;`: one of several home agents serving this home agent address, the
    /// active one elected through etcd (issue 13). `None`: the only one.
    pub redundancy: Option<Redundancy>,
    /// `mcoa-max-bindings N;`: most BID bindings one home address holds; a new BID beyond
    /// gets the per-BID status 130. Default [`DEFAULT_MCOA_MAX_BINDINGS`].
    pub mcoa_max_bindings: u32,
    /// `flow-bindings 0|1;`: keep the flow bindings mobile routers send (RFC 6089); off,
    /// each Flow Identification option is answered 128 (administratively prohibited,
    /// §5.3.5). Default on.
    pub flow_bindings: bool,
    /// `flow-bindings-max N;`: most flow bindings one home address holds; a new one beyond
    /// is answered 128. Default [`DEFAULT_FLOW_BINDINGS_MAX`].
    pub flow_bindings_max: u32,
}

impl HaConfig {
    /// Reads and validates a configuration file. With several `interface` blocks, use
    /// [`HaConfig::from_file_for`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<(HaConfig, Vec<Warning>), ConfError> {
        Self::from_file_for(path, None)
    }

    /// Reads a configuration file for had serving home interface `interface`.
    pub fn from_file_for(
        path: impl AsRef<Path>,
        interface: Option<&str>,
    ) -> Result<(HaConfig, Vec<Warning>), ConfError> {
        let path = path.as_ref();
        let text = crate::read_to_string(path)?;
        Self::parse_str_for(&text, &path.display().to_string(), interface)
    }

    /// Parses configuration text. `file_name` names it in messages, and relative paths in
    /// it (`auth-database`, `prefixtable-file`) are taken from `file_name`'s directory.
    pub fn parse_str(text: &str, file_name: &str) -> Result<(HaConfig, Vec<Warning>), ConfError> {
        Self::parse_str_for(text, file_name, None)
    }

    /// [`HaConfig::parse_str`] for had serving `interface`.
    pub fn parse_str_for(
        text: &str,
        file_name: &str,
        interface: Option<&str>,
    ) -> Result<(HaConfig, Vec<Warning>), ConfError> {
        let doc = Document::parse(text, file_name)?;
        Self::from_document(&doc, interface)
    }

    /// Builds the configuration from a parsed document.
    pub fn from_document(
        doc: &Document,
        interface: Option<&str>,
    ) -> Result<(HaConfig, Vec<Warning>), ConfError> {
        from_document(doc, &SPEC, interface, build)
    }

    /// True when `hoa` is on a served home prefix (always true when the prefixes come
    /// from the interface, which the daemon checks instead).
    pub fn is_home_address(&self, hoa: Ipv6Addr) -> bool {
        self.home_prefixes.is_empty() || self.home_prefixes.iter().any(|p| p.contains(&hoa))
    }

    /// True when this mobile router may use SHISA's legacy type-11 IPv4 MNP option.
    pub fn accepts_legacy_ipv4_mnp_option(&self, hoa: Ipv6Addr) -> bool {
        self.legacy_ipv4_mnp_option.contains(&hoa)
    }
}

fn build(
    ctx: &mut Ctx,
    eff: &Effective<'_>,
    interface: Option<String>,
) -> Result<HaConfig, ConfError> {
    shisa_ignored_all(ctx, eff)?;
    // SHISA's key: this home agent's Home Agent Preference (RFC 6275 §7.4), a signed
    // 16-bit number; the home agents list orders DHAAD Replies by it (§10.5.1).
    let home_agent_preference = match eff.get("preference") {
        Some(s) => {
            let v = ctx.one(s, "preference NUMBER;")?;
            match v.text.parse::<i16>() {
                Ok(n) if !v.is_quoted() => n,
                _ => {
                    return Err(ctx.err_at(
                        v,
                        format!(
                            "the preference must be a number between -32768 and 32767 \
                             (RFC 6275 §7.4 Home Agent Preference), found '{v}'"
                        ),
                    ));
                }
            }
        }
        None => 0,
    };
    // SHISA's key: proxy Duplicate Address Detection before the first BA for a home
    // address (RFC 6275 §10.3.1). On unless turned off.
    let homelink_dad = match eff.get("homelink-dad") {
        Some(s) => ctx.boolean(ctx.one(s, "homelink-dad 0|1;")?)?,
        None => true,
    };
    if let Some(s) = eff.get("home-registration-lifetime") {
        let v = ctx.one(s, "home-registration-lifetime UNITS;")?;
        ctx.u32_in(v, "the home registration lifetime", 0..=65535)?;
        ctx.warn(s, "'home-registration-lifetime' is a mobile router setting (SHISA's had ignores it too); use binding-lifetime-max");
    }
    if let Some(s) = eff.get("mobile-node-mode") {
        ctx.one(s, "mobile-node-mode mobile-router;")?;
        ctx.warn(
            s,
            "'mobile-node-mode' is a mobile node setting; had ignores it",
        );
    }
    if let Some(s) = eff.get("key-management") {
        let v = ctx.one(s, "key-management 0|1;")?;
        if ctx.boolean(v)? {
            ctx.warn(s, "'key-management': IPsec/IKE is not supported (RFC 4285 keys are used instead); ignored");
        }
    }
    let debug = debug_level(ctx, eff)?;
    let ipv4_mnp_support = flag(ctx, eff, "ipv4-mnp-support", true)?;
    let binding_refresh_request = flag(ctx, eff, "binding-refresh-request", false)?;
    let binding_lifetime_max = match eff.get("binding-lifetime-max") {
        Some(s) => {
            let v = ctx.one(s, "binding-lifetime-max SECONDS;")?;
            let n = ctx.u32_in(
                v,
                "the maximum binding lifetime (seconds)",
                4..=MAX_BINDING_LIFETIME.as_secs(),
            )?;
            Duration::from_secs(u64::from(n))
        }
        None => DEFAULT_BINDING_LIFETIME_MAX,
    };
    let nat_keepalive_interval = match eff.get("nat-keepalive-interval") {
        Some(s) => {
            let v = ctx.one(s, "nat-keepalive-interval SECONDS;")?;
            Duration::from_secs(u64::from(ctx.u32_in(
                v,
                "the NAT keep-alive interval (seconds)",
                1..=65535,
            )?))
        }
        None => DEFAULT_NAT_KEEPALIVE_INTERVAL,
    };
    let binding_cache_file = match eff.get("binding-cache-file") {
        Some(s) => ctx.path(ctx.one(s, "binding-cache-file PATH;")?),
        None => PathBuf::from(DEFAULT_BINDING_CACHE_FILE),
    };
    let mut binding_cache_etcd = Vec::new();
    if let Some(s) = eff.get("binding-cache-etcd") {
        for v in ctx.some(s, "binding-cache-etcd URL [URL...];")? {
            let url = v.text.as_str();
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.split("//").nth(1).is_some_and(|rest| !rest.is_empty());
            if !ok {
                return Err(ctx.err_at(
                    v,
                    format!(
                        "an etcd endpoint is a URL such as \"http://192.0.2.10:2379\", found '{v}'"
                    ),
                ));
            }
            binding_cache_etcd.push(url.to_string());
        }
    }
    let redundancy = redundancy(ctx, eff)?;
    let home_agent_ipv4_address = match eff.get("home-agent-ipv4-address") {
        Some(s) => Some(ctx.ipv4(
            ctx.one(s, "home-agent-ipv4-address IPV4-ADDRESS;")?,
            "the home agent's IPv4 address",
        )?),
        None => None,
    };

    let mut home_prefixes: Vec<Ipv6Net> = Vec::new();
    for s in eff.all("home-prefix") {
        for v in ctx.some(s, "home-prefix IPV6-PREFIX/LEN [...];")? {
            let p = ctx.prefix6(v, "the home prefix")?;
            if let Some(q) = home_prefixes
                .iter()
                .find(|q| overlaps(&IpNet::V6(**q), &IpNet::V6(p)))
            {
                return Err(ctx.err_at(v, format!("home prefix {p} overlaps home prefix {q}")));
            }
            home_prefixes.push(p);
        }
    }
    let home_agent_address = match eff.get("home-agent-address") {
        Some(s) => {
            let v = ctx.one(s, "home-agent-address IPV6-ADDRESS;")?;
            let a = ctx.ipv6(v, "the home agent address")?;
            if !home_prefixes.is_empty() && !home_prefixes.iter().any(|p| p.contains(&a)) {
                return Err(ctx.err_at(
                    v,
                    format!("the home agent address {a} is on no home-prefix"),
                ));
            }
            Some(a)
        }
        None => None,
    };
    if redundancy.is_some() && home_agent_address.is_none() {
        let s = eff.get("redundancy").expect("on only when set");
        return Err(ctx.err_stmt(
            s,
            "redundancy needs home-agent-address: a standby does not hold the address, so it cannot be read from the interface",
        ));
    }

    let mut prefix_table = PrefixTable::default();
    for s in eff.all("prefixtable") {
        prefixtable::inline(ctx, s, &mut prefix_table)?;
    }
    for s in eff.all("prefixtable-file") {
        let v = ctx.one(s, "prefixtable-file PATH;")?;
        let path = ctx.path(v);
        prefixtable::from_file(ctx, &path, &mut prefix_table)?;
    }
    for e in &prefix_table.entries {
        let at = |m: String| ConfError::at(&e.file, e.location, m);
        if !home_prefixes.is_empty() && !home_prefixes.iter().any(|p| p.contains(&e.home_address)) {
            let list: Vec<String> = home_prefixes.iter().map(|p| p.to_string()).collect();
            return Err(at(format!(
                "home address {} is on no home prefix served here ({})",
                e.home_address,
                list.join(", ")
            )));
        }
        if let Some(h) = home_prefixes
            .iter()
            .find(|h| overlaps(&IpNet::V6(**h), &e.prefix))
        {
            return Err(at(format!(
                "mobile network prefix {} overlaps the home prefix {h}",
                e.prefix
            )));
        }
        if Some(e.home_address) == home_agent_address {
            return Err(at(format!(
                "home address {} is the home agent's own address",
                e.home_address
            )));
        }
    }
    if prefix_table.is_empty() {
        ctx.warnings.push(Warning::file(
            &ctx.file,
            "the prefix table is empty: mobile routers can register their home addresses but no prefixes",
        ));
    }
    if !ipv4_mnp_support
        && prefix_table
            .entries
            .iter()
            .any(|e| e.prefix.addr().is_ipv4())
    {
        let s = eff.get("ipv4-mnp-support").expect("off only when set");
        ctx.warn(
            s,
            "ipv4-mnp-support is off: the IPv4 rows of the prefix table are not used",
        );
    }

    let mut legacy_ipv4_mnp_option = Vec::new();
    for s in eff.all("legacy-ipv4-mnp-option") {
        for v in ctx.some(s, "legacy-ipv4-mnp-option HOME-ADDRESS [...];")? {
            let a = ctx.ipv6(
                v,
                "the home address of a router using SHISA's type-11 option",
            )?;
            if prefix_table.for_home_address(a).next().is_none() {
                ctx.warn(
                    s,
                    format!("legacy-ipv4-mnp-option: {a} has no prefix table row"),
                );
            }
            if !legacy_ipv4_mnp_option.contains(&a) {
                legacy_ipv4_mnp_option.push(a);
            }
        }
    }

    let auth_database = match eff.get("auth-database") {
        Some(s) => Some(ctx.path(ctx.one(s, "auth-database PATH;")?)),
        None => None,
    };
    let replay_window = match eff.get("replay-window") {
        Some(s) => {
            let v = ctx.one(s, "replay-window SECONDS;")?;
            Some(Duration::from_secs(u64::from(ctx.u32_in(
                v,
                "the replay window (seconds)",
                1..=3600,
            )?)))
        }
        None => None,
    };
    let metrics_listen = match eff.get("metrics-listen") {
        Some(s) => Some(ctx.socket_addr(
            ctx.one(s, "metrics-listen \"ADDRESS:PORT\";")?,
            "the metrics listener",
        )?),
        None => None,
    };
    let mcoa = flag(ctx, eff, "mcoa", true)?;
    let mcoa_bulk_registration = flag(ctx, eff, "mcoa-bulk-registration", true)?;
    let mcoa_max_bindings = match eff.get("mcoa-max-bindings") {
        Some(s) => ctx.u32_in(
            ctx.one(s, "mcoa-max-bindings N;")?,
            "the most care-of bindings (BIDs) of one home address",
            1..=1024,
        )?,
        None => DEFAULT_MCOA_MAX_BINDINGS,
    };
    let flow_bindings = flag(ctx, eff, "flow-bindings", true)?;
    let flow_bindings_max = match eff.get("flow-bindings-max") {
        Some(s) => ctx.u32_in(
            ctx.one(s, "flow-bindings-max N;")?,
            "the most flow bindings of one home address",
            1..=1024,
        )?,
        None => DEFAULT_FLOW_BINDINGS_MAX,
    };
    let max_bindings = match eff.get("max-bindings") {
        Some(s) => ctx.u32_in(
            ctx.one(s, "max-bindings N;")?,
            "the most bindings held at once",
            1..=10_000_000,
        )?,
        None => DEFAULT_MAX_BINDINGS,
    };
    let accept_unlisted_home_addresses = match eff.get("unlisted-home-addresses") {
        Some(s) => {
            let v = ctx.one(s, "unlisted-home-addresses accept|refuse;")?;
            match v.text.as_str() {
                "accept" => true,
                "refuse" => false,
                _ => return Err(ctx.err_at(v, format!("expected accept or refuse, found '{v}'"))),
            }
        }
        None => false,
    };
    let required = match eff.get("authentication") {
        Some(s) => {
            let v = ctx.one(s, "authentication required|none;")?;
            match v.text.as_str() {
                "required" => true,
                "none" => {
                    ctx.warn(
                        s,
                        "authentication none: Binding Updates are accepted unauthenticated",
                    );
                    if auth_database.is_some() {
                        ctx.warn(s, "authentication none: the auth-database is not used");
                    }
                    false
                }
                _ => return Err(ctx.err_at(v, format!("expected required or none, found '{v}'"))),
            }
        }
        None => true,
    };
    let authentication = if required {
        let Some(path) = &auth_database else {
            return Err(ConfError::file(
                &ctx.file,
                "authentication is required (the default) but no 'auth-database PATH;' is given: \
                 add one, or 'authentication none;' to accept unauthenticated Binding Updates",
            ));
        };
        let (mut db, mut w) = AuthDatabase::from_file(path)?;
        ctx.warnings.append(&mut w);
        if let Some(win) = replay_window {
            db.set_replay_window(win);
        }
        for hoa in prefix_table.home_addresses() {
            if db.by_home_address(hoa).is_none() {
                ctx.warnings.push(Warning::file(
                    &ctx.file,
                    format!(
                        "home address {hoa} of the prefix table has no auth-database entry, \
                         so no router can register it (RFC 4285 §5: a home address belongs to the \
                         SA that names it)"
                    ),
                ));
            }
        }
        HaAuthentication::Required(db)
    } else {
        HaAuthentication::None
    };

    Ok(HaConfig {
        file: ctx.file.clone(),
        interface,
        debug,
        home_agent_address,
        home_agent_ipv4_address,
        home_prefixes,
        binding_lifetime_max,
        prefix_table,
        ipv4_mnp_support,
        binding_cache_file,
        binding_cache_etcd,
        authentication,
        auth_database,
        legacy_ipv4_mnp_option,
        binding_refresh_request,
        nat_keepalive_interval,
        max_bindings,
        accept_unlisted_home_addresses,
        homelink_dad,
        home_agent_preference,
        metrics_listen,
        mcoa,
        mcoa_bulk_registration,
        mcoa_max_bindings,
        flow_bindings,
        flow_bindings_max,
        redundancy,
    })
}

/// `redundancy yes;` and the keys that tune it (ignored, with a warning, without it).
fn redundancy(ctx: &mut Ctx, eff: &Effective<'_>) -> Result<Option<Redundancy>, ConfError> {
    let on = flag(ctx, eff, "redundancy", false)?;
    let ms = |ctx: &Ctx,
              key: &str,
              range: std::ops::RangeInclusive<u64>|
     -> Result<Option<Duration>, ConfError> {
        match eff.get(key) {
            Some(s) => {
                let v = ctx.one(s, &format!("{key} MILLISECONDS;"))?;
                let n = ctx.u32_in(v, &format!("{key} (milliseconds)"), range)?;
                Ok(Some(Duration::from_millis(u64::from(n))))
            }
            None => Ok(None),
        }
    };
    let advert = ms(ctx, "redundancy-advert-interval", 10..=10_000)?;
    let dead = ms(ctx, "redundancy-dead-interval", 30..=60_000)?;
    let member = match eff.get("redundancy-member") {
        Some(s) => {
            let v = ctx.one(s, "redundancy-member NAME;")?;
            let ok = !v.text.is_empty()
                && v.text.len() <= proto::redundancy::MAX_NAME_LEN
                && v.text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(ctx.err_at(
                    v,
                    format!(
                        "a member name is 1 to 64 letters, digits, '-', '_' or '.', found '{v}'"
                    ),
                ));
            }
            Some(v.text.clone())
        }
        None => None,
    };
    if !on {
        for key in [
            "redundancy-member",
            "redundancy-advert-interval",
            "redundancy-dead-interval",
        ] {
            if let Some(s) = eff.get(key) {
                ctx.warn(s, format!("'{key}' without 'redundancy yes;' is ignored"));
            }
        }
        return Ok(None);
    }
    let advert_interval = advert.unwrap_or(DEFAULT_REDUNDANCY_ADVERT_INTERVAL);
    let dead_interval = dead.unwrap_or(DEFAULT_REDUNDANCY_DEAD_INTERVAL);
    if dead_interval < advert_interval * 3 {
        let s = eff
            .get("redundancy-dead-interval")
            .or_else(|| eff.get("redundancy-advert-interval"))
            .expect("the defaults keep the ratio");
        return Err(ctx.err_stmt(
            s,
            format!(
                "redundancy-dead-interval ({} ms) must be at least three advert intervals ({} ms): one lost heartbeat must not start a take-over",
                dead_interval.as_millis(),
                advert_interval.as_millis() * 3
            ),
        ));
    }
    Ok(Some(Redundancy {
        member,
        advert_interval,
        dead_interval,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RegistrationMode;

    const MINIMAL: &str = "\
home-agent-address 2001:db8:1::1;
home-prefix 2001:db8:1::/64;
authentication none;
prefixtable {
    2001:db8:1::100 2001:db8:100::/48 explicit;
    2001:db8:1::100 192.0.2.16/28 explicit;
};
";

    fn parse(t: &str) -> Result<(HaConfig, Vec<Warning>), ConfError> {
        HaConfig::parse_str(t, "had.conf")
    }

    fn err(t: &str) -> String {
        parse(t).unwrap_err().to_string()
    }

    #[test]
    fn minimal_with_defaults() {
        let (c, w) = parse(MINIMAL).unwrap();
        assert_eq!(w.len(), 1, "{w:?}"); // authentication none
        assert_eq!(c.home_prefixes, vec!["2001:db8:1::/64".parse().unwrap()]);
        assert_eq!(c.binding_lifetime_max, Duration::from_secs(3600));
        assert_eq!(
            c.binding_cache_file,
            PathBuf::from("/var/lib/nemo/had.journal")
        );
        assert_eq!(c.nat_keepalive_interval, Duration::from_secs(110));
        assert_eq!(c.authentication, HaAuthentication::None);
        let hoa: Ipv6Addr = "2001:db8:1::100".parse().unwrap();
        assert!(c.is_home_address(hoa));
        assert!(
            c.prefix_table
                .authorizes(hoa, &"192.0.2.16/28".parse().unwrap())
                .is_some()
        );
        assert!(
            c.prefix_table
                .authorizes(hoa, &"192.0.2.32/28".parse().unwrap())
                .is_none()
        );
        assert_eq!(c.prefix_table.entries[0].mode, RegistrationMode::Explicit);
        assert!(!c.accepts_legacy_ipv4_mnp_option(hoa));
    }

    #[test]
    fn errors() {
        assert_eq!(
            err(&MINIMAL.replace("authentication none;", "")),
            "had.conf: authentication is required (the default) but no 'auth-database PATH;' is given: \
             add one, or 'authentication none;' to accept unauthenticated Binding Updates"
        );
        assert!(err(&MINIMAL.replace("2001:db8:1::100 192", "2001:db8:2::100 192"))
            .starts_with("had.conf:6:5: home address 2001:db8:2::100 is on no home prefix served here (2001:db8:1::/64)"));
        assert!(
            err(&MINIMAL.replace(
                "home-agent-address 2001:db8:1::1",
                "home-agent-address 2001:db8:9::1"
            ))
            .contains("is on no home-prefix")
        );
        assert!(
            err(&MINIMAL.replace(
                "2001:db8:1::100 192.0.2.16/28",
                "2001:db8:1::101 2001:db8:100:1::/64"
            ))
            .contains("belongs to home address 2001:db8:1::100")
        );
        assert!(
            err(&MINIMAL.replace("192.0.2.16/28 explicit", "192.0.2.16/28 sometimes"))
                .contains("6:35: expected implicit or explicit, found 'sometimes'")
        );
        assert!(
            err(&format!("{MINIMAL}binding-lifetime-max 300000;")).contains("between 4 and 262140")
        );
        assert!(
            err(&format!("{MINIMAL}home-prefix 2001:db8:1:0:8000::/65;"))
                .contains("overlaps home prefix")
        );
        assert!(
            err(&format!("{MINIMAL}home-prefix 192.0.2.0/24;")).contains("must be an IPv6 prefix")
        );
        assert!(err(&format!("{MINIMAL}authentication maybe;")).contains("already set"));
        assert!(
            err(&MINIMAL.replace("authentication none", "authentication maybe"))
                .contains("expected required or none")
        );
        assert!(
            err(&format!(
                "{MINIMAL}mobile-network-prefix 2001:db8:100::/48;"
            ))
            .contains("is a mrd setting")
        );
        assert!(
            err(&format!("{MINIMAL}binding-refresh-reqest yes;"))
                .contains("did you mean 'binding-refresh-request'")
        );
        assert!(
            err(&format!(
                "{MINIMAL}prefixtable {{ 2001:db8:1::100 2001:db8:1:0:1::/80 explicit; }};"
            ))
            .contains("overlaps the home prefix")
        );
        // Ranges never routed into a tunnel (nemonetd would refuse the binding).
        for (p, why) in [
            ("fe80::/64", "overlaps fe80::/10"),
            ("ff0e::/16", "overlaps ff00::/8"),
            ("224.0.0.0/8", "overlaps 224.0.0.0/4"),
            ("127.0.0.0/8", "overlaps 127.0.0.0/8"),
        ] {
            let e = err(&format!(
                "{MINIMAL}prefixtable {{ 2001:db8:1::100 {p} explicit; }};"
            ));
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn binding_cap_and_unlisted_home_addresses() {
        let (c, _) = parse(MINIMAL).unwrap();
        assert_eq!(c.max_bindings, DEFAULT_MAX_BINDINGS);
        assert!(!c.accept_unlisted_home_addresses);
        let (c, _) = parse(&format!(
            "{MINIMAL}max-bindings 500;\nunlisted-home-addresses accept;\n"
        ))
        .unwrap();
        assert_eq!(c.max_bindings, 500);
        assert!(c.accept_unlisted_home_addresses);
        assert!(
            err(&format!("{MINIMAL}max-bindings 0;\n")).contains("the most bindings held at once")
        );
        assert!(
            err(&format!("{MINIMAL}unlisted-home-addresses maybe;\n"))
                .contains("expected accept or refuse, found 'maybe'")
        );
    }

    #[test]
    fn multiple_care_of_addresses() {
        let (c, _) = parse(MINIMAL).unwrap();
        assert!(c.mcoa);
        assert!(c.mcoa_bulk_registration);
        assert_eq!(c.mcoa_max_bindings, DEFAULT_MCOA_MAX_BINDINGS);
        let (c, _) = parse(&format!(
            "{MINIMAL}mcoa 1;\nmcoa-bulk-registration 0;\nmcoa-max-bindings 3;\n"
        ))
        .unwrap();
        assert!(c.mcoa);
        assert!(!c.mcoa_bulk_registration);
        assert_eq!(c.mcoa_max_bindings, 3);
        let (c, _) = parse(&format!("{MINIMAL}mcoa no;\n")).unwrap();
        assert!(!c.mcoa);
        let e = err(&format!("{MINIMAL}mcoa-max-bindings 0;\n"));
        assert!(e.contains("the most care-of bindings (BIDs)"), "{e}");
        assert!(e.contains("had.conf:8:"), "{e}");
        assert!(err(&format!("{MINIMAL}mcoa perhaps;\n")).contains("had.conf:8:"));
    }

    #[test]
    fn flow_bindings() {
        let (c, _) = parse(MINIMAL).unwrap();
        assert!(c.flow_bindings);
        assert_eq!(c.flow_bindings_max, DEFAULT_FLOW_BINDINGS_MAX);
        let (c, _) = parse(&format!(
            "{MINIMAL}flow-bindings 0;\nflow-bindings-max 4;\n"
        ))
        .unwrap();
        assert!(!c.flow_bindings);
        assert_eq!(c.flow_bindings_max, 4);
        let e = err(&format!("{MINIMAL}flow-bindings-max 0;\n"));
        assert!(
            e.contains("had.conf:8:") && e.contains("flow bindings"),
            "{e}"
        );
    }

    #[test]
    fn metrics_listener() {
        let (c, _) = parse(MINIMAL).unwrap();
        assert_eq!(c.metrics_listen, None);
        let (c, _) = parse(&format!("{MINIMAL}metrics-listen \"[::1]:9461\";\n")).unwrap();
        assert_eq!(c.metrics_listen, Some("[::1]:9461".parse().unwrap()));
        let e = err(&format!("{MINIMAL}metrics-listen \"localhost\";\n"));
        assert!(
            e.contains("the metrics listener: expected ADDRESS:PORT"),
            "{e}"
        );
        assert!(
            e.contains("had.conf:8:16:"),
            "names the line and column: {e}"
        );
    }

    #[test]
    fn legacy_option_list() {
        let (c, _) = parse(&format!("{MINIMAL}legacy-ipv4-mnp-option 2001:db8:1::100;")).unwrap();
        assert!(c.accepts_legacy_ipv4_mnp_option("2001:db8:1::100".parse().unwrap()));
    }

    #[test]
    fn shisa_file_without_our_keys_loads() {
        // SHISA's had found prefix and address on the interface; so does ours.
        let t = "debug 1;\ninterface eth0 {\n\tcommand-port 7778;\n\tpreference 10;\n\tauthentication none;\n\tprefixtable {\n\t\t2001:db8:1::100 2001:db8:100:: 48 explicit 111\n\t};\n};\n";
        let (c, w) = parse(t).unwrap();
        assert!(c.home_prefixes.is_empty());
        assert!(c.home_agent_address.is_none());
        assert_eq!(
            c.prefix_table.entries[0].prefix,
            "2001:db8:100::/48".parse::<IpNet>().unwrap()
        );
        assert_eq!(c.prefix_table.entries[0].binding_id, Some(111));
        assert!(w.iter().any(|w| w.message.contains("without ';'")));
        assert_eq!(c.home_agent_preference, 10);
        assert!(!w.iter().any(|w| w.message.contains("preference")));
    }

    #[test]
    fn binding_cache_in_etcd() {
        let (c, _) = parse(MINIMAL).unwrap();
        assert!(
            c.binding_cache_etcd.is_empty(),
            "the journal alone by default"
        );
        let (c, _) = parse(&format!(
            "{MINIMAL}binding-cache-etcd \"http://192.0.2.10:2379\" \"http://192.0.2.11:2379\";"
        ))
        .unwrap();
        assert_eq!(
            c.binding_cache_etcd,
            ["http://192.0.2.10:2379", "http://192.0.2.11:2379"]
        );
        let e = err(&format!("{MINIMAL}binding-cache-etcd 192.0.2.10;"));
        assert!(e.contains("an etcd endpoint is a URL"), "{e}");
        assert!(e.contains("had.conf:"), "{e}");
    }

    #[test]
    fn preference_is_a_signed_16_bit_number() {
        let (c, _) = parse(&format!("{MINIMAL}preference -5;")).unwrap();
        assert_eq!(c.home_agent_preference, -5);
        let (c, _) = parse(MINIMAL).unwrap();
        assert_eq!(c.home_agent_preference, 0);
        for bad in ["40000", "high", "\"7\""] {
            let e = err(&format!("{MINIMAL}preference {bad};"));
            assert!(e.contains("between -32768 and 32767"), "{bad}: {e}");
            assert!(e.contains("had.conf:"), "names the file and line: {e}");
        }
    }

    #[test]
    fn redundancy_keys() {
        let (c, _) = parse(MINIMAL).unwrap();
        assert_eq!(c.redundancy, None);
        let (c, _) = parse(&format!("{MINIMAL}redundancy yes;")).unwrap();
        assert_eq!(
            c.redundancy,
            Some(Redundancy {
                member: None,
                advert_interval: Duration::from_millis(50),
                dead_interval: Duration::from_millis(300),
            })
        );
        let (c, _) = parse(&format!(
            "{MINIMAL}redundancy yes;\nredundancy-member ha-2.rack4;\nredundancy-advert-interval 20;\nredundancy-dead-interval 100;"
        ))
        .unwrap();
        let r = c.redundancy.unwrap();
        assert_eq!(r.member.as_deref(), Some("ha-2.rack4"));
        assert_eq!(r.advert_interval, Duration::from_millis(20));
        assert_eq!(r.dead_interval, Duration::from_millis(100));
        let e = err(&format!(
            "{MINIMAL}redundancy yes;\nredundancy-dead-interval 100;"
        ));
        assert!(
            e.contains("had.conf:") && e.contains("three advert intervals"),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}redundancy yes;\nredundancy-member \"ha 2\";"
        ));
        assert!(e.contains("member name"), "{e}");
        let e = err(&format!(
            "{MINIMAL}redundancy yes;\nredundancy-advert-interval 5;"
        ));
        assert!(e.contains("redundancy-advert-interval"), "{e}");
        let e = err("home-prefix 2001:db8:1::/64;\nauthentication none;\nredundancy yes;");
        assert!(e.contains("redundancy needs home-agent-address"), "{e}");
        let (_, w) = parse(&format!("{MINIMAL}redundancy-member ha2;")).unwrap();
        assert!(
            w.iter()
                .any(|w| w.to_string().contains("without 'redundancy yes;'")),
            "{w:?}"
        );
    }
}
