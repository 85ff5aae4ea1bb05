//! Helpers shared by the typed configurations: value conversion with precise messages,
//! argument counts, key suggestions, interface-block selection, and the SHISA keys that
//! are accepted but not implemented.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::grammar::{Document, Statement, Value};
use crate::{ConfError, Warning};

/// The context of one file being turned into a typed configuration.
pub(crate) struct Ctx {
    pub(crate) file: String,
    pub(crate) base_dir: PathBuf,
    pub(crate) warnings: Vec<Warning>,
}

impl Ctx {
    pub(crate) fn new(file: &str) -> Self {
        let base_dir = Path::new(file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Ctx {
            file: file.to_owned(),
            base_dir,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn err_at(&self, v: &Value, message: impl Into<String>) -> ConfError {
        ConfError::at(&self.file, v.location, message)
    }

    pub(crate) fn err_stmt(&self, s: &Statement, message: impl Into<String>) -> ConfError {
        ConfError::at(&self.file, s.location(), message)
    }

    pub(crate) fn warn(&mut self, s: &Statement, message: impl Into<String>) {
        self.warnings
            .push(Warning::at(&self.file, s.location(), message));
    }

    /// A path from the file, relative to the directory of the file that names it.
    pub(crate) fn path(&self, v: &Value) -> PathBuf {
        let p = PathBuf::from(&v.text);
        if p.is_absolute() {
            p
        } else {
            self.base_dir.join(p)
        }
    }

    /// Exactly one argument, or an error showing the usage.
    pub(crate) fn one<'s>(&self, s: &'s Statement, usage: &str) -> Result<&'s Value, ConfError> {
        self.no_block(s, usage)?;
        match s.args() {
            [v] => Ok(v),
            [] => Err(self.err_stmt(s, format!("'{}' needs a value: {usage}", s.name()))),
            [first, extra, ..] => {
                if extra.location.line > first.location.line {
                    // Most likely a forgotten ';' at the end of the line.
                    return Err(self.err_at(
                        extra,
                        format!(
                            "expected ';' after '{} {}' (line {}), found '{}'",
                            s.name(),
                            first,
                            first.location.line,
                            extra
                        ),
                    ));
                }
                Err(self.err_at(
                    extra,
                    format!(
                        "'{}' takes one value, found also '{}': {usage}",
                        s.name(),
                        extra
                    ),
                ))
            }
        }
    }

    /// At least one argument.
    pub(crate) fn some<'s>(&self, s: &'s Statement, usage: &str) -> Result<&'s [Value], ConfError> {
        self.no_block(s, usage)?;
        if s.args().is_empty() {
            return Err(self.err_stmt(s, format!("'{}' needs a value: {usage}", s.name())));
        }
        Ok(s.args())
    }

    pub(crate) fn no_block(&self, s: &Statement, usage: &str) -> Result<(), ConfError> {
        match &s.block {
            Some(b) => Err(ConfError::at(
                &self.file,
                b.open,
                format!("'{}' takes no block: {usage}", s.name()),
            )),
            None => Ok(()),
        }
    }

    pub(crate) fn u32_in(
        &self,
        v: &Value,
        what: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u32, ConfError> {
        let n: u64 = match v.text.parse() {
            Ok(n) if !v.is_quoted() => n,
            _ => {
                return Err(self.err_at(v, format!("expected {what} (a number), found '{v}'")));
            }
        };
        if !range.contains(&n) {
            return Err(self.err_at(
                v,
                format!(
                    "{what} must be between {} and {}, found {n}",
                    range.start(),
                    range.end()
                ),
            ));
        }
        u32::try_from(n).map_err(|_| self.err_at(v, format!("{what} is too large: {n}")))
    }

    /// An `ADDRESS:PORT` (`"[::1]:9461"`, `"127.0.0.1:9461"`; quoted, since the grammar's
    /// bare words stop at `:`-free tokens only by accident).
    pub(crate) fn socket_addr(&self, v: &Value, what: &str) -> Result<SocketAddr, ConfError> {
        v.text.parse().map_err(|_| {
            self.err_at(
                v,
                format!(
                    "{what}: expected ADDRESS:PORT such as \"[::1]:9461\" or \"127.0.0.1:9461\", found '{v}'"
                ),
            )
        })
    }

    /// SHISA's integer booleans (0 off, anything else on) and yes/no, on/off, true/false.
    pub(crate) fn boolean(&self, v: &Value) -> Result<bool, ConfError> {
        if !v.is_quoted() {
            match v.text.to_ascii_lowercase().as_str() {
                "yes" | "on" | "true" | "enable" => return Ok(true),
                "no" | "off" | "false" | "disable" => return Ok(false),
                t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                    return Ok(t.bytes().any(|b| b != b'0'));
                }
                _ => {}
            }
        }
        Err(self.err_at(
            v,
            format!("expected yes or no (or SHISA's 1 or 0), found '{v}'"),
        ))
    }

    pub(crate) fn ipv6(&self, v: &Value, what: &str) -> Result<Ipv6Addr, ConfError> {
        match v.text.parse::<IpAddr>() {
            Ok(IpAddr::V6(a)) if !v.is_quoted() => {
                if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                    return Err(
                        self.err_at(v, format!("{what} must be a unicast address, found {a}"))
                    );
                }
                // fe80::/10: home and home agent addresses are global (RFC 6275 §4.1).
                if a.segments()[0] & 0xffc0 == 0xfe80 {
                    return Err(self.err_at(
                        v,
                        format!("{what} must be a global address, found the link-local {a}"),
                    ));
                }
                Ok(a)
            }
            Ok(IpAddr::V4(_)) => Err(self.err_at(
                v,
                format!("{what} must be an IPv6 address, found the IPv4 address {v}"),
            )),
            _ => Err(self.err_at(v, format!("expected {what} (an IPv6 address), found '{v}'"))),
        }
    }

    pub(crate) fn ipv4(&self, v: &Value, what: &str) -> Result<Ipv4Addr, ConfError> {
        match v.text.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) if !v.is_quoted() => {
                if a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback() {
                    return Err(
                        self.err_at(v, format!("{what} must be a unicast address, found {a}"))
                    );
                }
                Ok(a)
            }
            Ok(IpAddr::V6(_)) => Err(self.err_at(
                v,
                format!("{what} must be an IPv4 address, found the IPv6 address {v}"),
            )),
            _ => Err(self.err_at(v, format!("expected {what} (an IPv4 address), found '{v}'"))),
        }
    }

    /// A prefix `address/length`; host bits must be zero. `len` may come as a separate
    /// value (SHISA's older `2001:db8:a:: 64` form).
    pub(crate) fn prefix(
        &self,
        v: &Value,
        len: Option<&Value>,
        what: &str,
    ) -> Result<IpNet, ConfError> {
        let (addr_text, len_text) = match (v.text.split_once('/'), len) {
            (Some((a, l)), None) => (a, l.to_owned()),
            (None, Some(l)) => (v.text.as_str(), l.text.clone()),
            (Some(_), Some(l)) => {
                return Err(self.err_at(
                    l,
                    format!("{what} '{v}' already has a length; unexpected '{l}'"),
                ));
            }
            (None, None) => {
                return Err(self.err_at(
                    v,
                    format!(
                        "expected {what} as address/length (e.g. 2001:db8:100::/48), found '{v}'"
                    ),
                ));
            }
        };
        let addr: IpAddr = match addr_text.parse() {
            Ok(a) if !v.is_quoted() => a,
            _ => {
                return Err(self.err_at(
                    v,
                    format!("expected {what} as address/length, found '{v}': '{addr_text}' is not an address"),
                ));
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len_loc = len.unwrap_or(v);
        let len: u8 = match len_text.parse::<u8>() {
            Ok(l) if (1..=max).contains(&l) => l,
            _ => {
                return Err(self.err_at(
                    len_loc,
                    format!(
                        "{what} '{v}': the prefix length must be 1 to {max}, found '{len_text}'"
                    ),
                ));
            }
        };
        let net = IpNet::new(addr, len).map_err(|e| self.err_at(v, format!("{what}: {e}")))?;
        if net.trunc() != net {
            return Err(self.err_at(
                v,
                format!(
                    "{what} {addr}/{len} has host bits set: did you mean {}?",
                    net.trunc()
                ),
            ));
        }
        Ok(net)
    }

    /// A mobile network prefix (RFC 3963): a [`Self::prefix`] that can be routed into a
    /// tunnel ([`proto::model::unroutable_prefix`]).
    pub(crate) fn mobile_network_prefix(
        &self,
        v: &Value,
        len: Option<&Value>,
    ) -> Result<IpNet, ConfError> {
        let what = "the mobile network prefix";
        let p = self.prefix(v, len, what)?;
        match proto::model::unroutable_prefix(p) {
            Some(why) => Err(self.err_at(v, format!("{what} {p} {why}"))),
            None => Ok(p),
        }
    }

    pub(crate) fn prefix6(&self, v: &Value, what: &str) -> Result<Ipv6Net, ConfError> {
        match self.prefix(v, None, what)? {
            IpNet::V6(p) => Ok(p),
            IpNet::V4(_) => {
                Err(self.err_at(v, format!("{what} must be an IPv6 prefix, found '{v}'")))
            }
        }
    }

    pub(crate) fn name(&self, v: &Value, what: &str) -> Result<String, ConfError> {
        let ok = !v.text.is_empty()
            && v.text.len() < 16
            && v.text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
        if !ok {
            return Err(self.err_at(
                v,
                format!("expected {what} (an interface name, at most 15 characters), found '{v}'"),
            ));
        }
        Ok(v.text.clone())
    }
}

/// Minimal edit distance, for "did you mean" suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest known key, if close enough to be a plausible typo.
pub(crate) fn suggest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let key = key.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (distance(&key, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The error for an unknown key, naming the closest known one.
pub(crate) fn unknown_key(ctx: &Ctx, s: &Statement, daemon: &str, known: &[&str]) -> ConfError {
    let hint = match suggest(s.name(), known) {
        Some(k) => format!("; did you mean '{k}'?"),
        None => String::new(),
    };
    ctx.err_stmt(s, format!("unknown key '{}' for {daemon}{hint}", s.name()))
}

/// SHISA keys both daemons accept and ignore, and why.
pub(crate) const SHISA_IGNORED: &[(&str, &str)] = &[
    (
        "namelookup",
        "SHISA's telnet console is not provided (use 'mipsock state'); ignored",
    ),
    (
        "command-port",
        "SHISA's telnet console is not provided (use 'mipsock state'); ignored",
    ),
    (
        "pager",
        "SHISA's telnet console is not provided (use 'mipsock state'); ignored",
    ),
];

/// Handles the SHISA-only keys common to both daemons that we accept and ignore. Returns
/// true when the statement was one of them.
pub(crate) fn shisa_ignored(ctx: &mut Ctx, s: &Statement) -> Result<bool, ConfError> {
    if let Some((_, why)) = SHISA_IGNORED.iter().find(|(k, _)| *k == s.name()) {
        let v = ctx.one(s, &format!("{} NUMBER;", s.name()))?;
        ctx.u32_in(v, s.name(), 0..=u64::from(u32::MAX))?;
        ctx.warn(s, format!("'{}': {why}", s.name()));
        return Ok(true);
    }
    match s.name() {
        "static-tunnel" => {
            check_static_tunnel(ctx, s)?;
            ctx.warn(
                s,
                "'static-tunnel': nemonetd creates one tunnel per binding by itself; the static \
                 tunnel names are not needed and are ignored",
            );
            Ok(true)
        }
        "ipv4-dummy-tunnel" => {
            check_dummy_tunnel(ctx, s)?;
            ctx.warn(
                s,
                "'ipv4-dummy-tunnel': our tunnels carry IPv4 without dummy addresses; ignored",
            );
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Checks and warns about every SHISA-only key both daemons accept and ignore, in the order
/// both have always reported them: `namelookup`, `command-port`, `pager`, then
/// `static-tunnel`, `ipv4-dummy-tunnel`.
pub(crate) fn shisa_ignored_all(ctx: &mut Ctx, eff: &Effective<'_>) -> Result<(), ConfError> {
    for s in eff
        .all("namelookup")
        .chain(eff.all("command-port"))
        .chain(eff.all("pager"))
    {
        shisa_ignored(ctx, s)?;
    }
    for s in eff.all("static-tunnel").chain(eff.all("ipv4-dummy-tunnel")) {
        shisa_ignored(ctx, s)?;
    }
    Ok(())
}

/// A `KEY yes|no;` flag: its value if given, else `default`.
pub(crate) fn flag(
    ctx: &Ctx,
    eff: &Effective<'_>,
    key: &str,
    default: bool,
) -> Result<bool, ConfError> {
    match eff.get(key) {
        Some(s) => ctx.boolean(ctx.one(s, &format!("{key} yes|no;"))?),
        None => Ok(default),
    }
}

/// `debug NUMBER;`: the debug level, 0 when not given.
pub(crate) fn debug_level(ctx: &Ctx, eff: &Effective<'_>) -> Result<u32, ConfError> {
    match eff.get("debug") {
        Some(s) => {
            let v = ctx.one(s, "debug NUMBER;")?;
            ctx.u32_in(v, "the debug level", 0..=u64::from(u32::MAX))
        }
        None => Ok(0),
    }
}

/// Builds a daemon's configuration from a parsed document: selects the keys in effect for
/// `interface` under `spec`, then runs `build`; returns the result with the warnings.
pub(crate) fn from_document<T>(
    doc: &Document,
    spec: &KeySpec,
    interface: Option<&str>,
    build: impl FnOnce(&mut Ctx, &Effective<'_>, Option<String>) -> Result<T, ConfError>,
) -> Result<(T, Vec<Warning>), ConfError> {
    let mut ctx = Ctx::new(&doc.file);
    let (eff, iface) = effective(&mut ctx, spec, doc, interface)?;
    let cfg = build(&mut ctx, &eff, iface)?;
    Ok((cfg, ctx.warnings))
}

fn table_rows<'s>(ctx: &Ctx, s: &'s Statement, usage: &str) -> Result<&'s [Statement], ConfError> {
    if !s.args().is_empty() {
        return Err(ctx.err_at(
            &s.args()[0],
            format!("'{}' takes no value before its block: {usage}", s.name()),
        ));
    }
    match &s.block {
        Some(b) => Ok(&b.statements),
        None => Err(ctx.err_stmt(s, format!("'{}' needs a block: {usage}", s.name()))),
    }
}

fn check_static_tunnel(ctx: &Ctx, s: &Statement) -> Result<(), ConfError> {
    let usage = "static-tunnel { IFNAME HOME-ADDRESS [BINDING-ID]; ... };";
    for row in table_rows(ctx, s, usage)? {
        ctx.no_block(row, usage)?;
        match row.values.as_slice() {
            [ifname, hoa] | [ifname, hoa, _] => {
                ctx.name(ifname, "a tunnel interface name")?;
                ctx.ipv6(hoa, "the home address")?;
                if let Some(bid) = row.values.get(2) {
                    ctx.u32_in(bid, "the binding identifier", 0..=65535)?;
                }
            }
            _ => return Err(ctx.err_stmt(row, format!("expected a row of {usage}"))),
        }
    }
    Ok(())
}

fn check_dummy_tunnel(ctx: &Ctx, s: &Statement) -> Result<(), ConfError> {
    let usage = "ipv4-dummy-tunnel { IFNAME MR-IPV4-ADDRESS HA-IPV4-ADDRESS; ... };";
    for row in table_rows(ctx, s, usage)? {
        ctx.no_block(row, usage)?;
        match row.values.as_slice() {
            [ifname, mr, ha] => {
                ctx.name(ifname, "a tunnel interface name")?;
                ctx.ipv4(mr, "the mobile router's dummy IPv4 address")?;
                ctx.ipv4(ha, "the home agent's dummy IPv4 address")?;
            }
            _ => return Err(ctx.err_stmt(row, format!("expected a row of {usage}"))),
        }
    }
    Ok(())
}

/// The global statements and those of the selected interface block (and its name).
pub(crate) struct Selected<'d> {
    global: Vec<&'d Statement>,
    inner: Vec<&'d Statement>,
    name: Option<String>,
}

/// The statements in effect for a daemon: SHISA reads the global statements and those of
/// the `interface` block named like its interface argument. Returns (global statements,
/// selected block's statements, its name).
pub(crate) fn select_interface<'d>(
    ctx: &mut Ctx,
    doc: &'d Document,
    interface: Option<&str>,
) -> Result<Selected<'d>, ConfError> {
    let mut global = Vec::new();
    let mut blocks: Vec<(&'d Statement, String)> = Vec::new();
    for s in &doc.statements {
        if s.name() == "interface" {
            let usage = "interface NAME { ... };";
            let name = match s.args() {
                [n] => ctx.name(n, "the interface name")?,
                [] => return Err(ctx.err_stmt(s, format!("'interface' needs a name: {usage}"))),
                [_, extra, ..] => {
                    return Err(ctx.err_at(
                        extra,
                        format!("'interface' takes one name, found also '{extra}': {usage}"),
                    ));
                }
            };
            let Some(block) = &s.block else {
                return Err(ctx.err_stmt(s, format!("'interface {name}' needs a block: {usage}")));
            };
            if let Some(inner) = block.statements.iter().find(|i| i.name() == "interface") {
                return Err(ctx.err_stmt(inner, "'interface' blocks cannot be nested"));
            }
            if let Some((prev, _)) = blocks.iter().find(|(_, n)| *n == name) {
                return Err(ctx.err_stmt(
                    s,
                    format!(
                        "'interface {name}' is already defined at line {}",
                        prev.location().line
                    ),
                ));
            }
            blocks.push((s, name));
        } else {
            global.push(s);
        }
    }
    let chosen = match interface {
        Some(want) => {
            let found = blocks.iter().find(|(_, n)| n == want);
            if found.is_none() && !blocks.is_empty() {
                ctx.warnings.push(Warning::file(
                    &ctx.file,
                    format!("no 'interface {want}' block; using the global statements only"),
                ));
            }
            found
        }
        None => match blocks.as_slice() {
            [] => None,
            [one] => Some(one),
            [_, second, ..] => {
                let names: Vec<&str> = blocks.iter().map(|(_, n)| n.as_str()).collect();
                return Err(ctx.err_stmt(
                    second.0,
                    format!(
                        "several interface blocks ({}): say which one applies (the daemon's \
                         interface argument)",
                        names.join(", ")
                    ),
                ));
            }
        },
    };
    match chosen {
        Some((s, name)) => {
            let inner = s
                .block
                .as_ref()
                .map(|b| b.statements.iter().collect())
                .unwrap_or_default();
            Ok(Selected {
                global,
                inner,
                name: Some(name.clone()),
            })
        }
        None => Ok(Selected {
            global,
            inner: Vec::new(),
            name: None,
        }),
    }
}

/// The keys a daemon knows.
pub(crate) struct KeySpec {
    /// "mrd" or "had", for messages.
    pub(crate) daemon: &'static str,
    /// Keys that may appear once per scope (an interface block overrides the global one).
    pub(crate) single: &'static [&'static str],
    /// Keys that may repeat; their statements accumulate (global first).
    pub(crate) multi: &'static [&'static str],
    /// Keys of the other daemon, refused with a pointer to it.
    pub(crate) other: &'static [&'static str],
}

impl KeySpec {
    pub(crate) fn all(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.single.iter().chain(self.multi).copied().collect();
        v.push("interface");
        v
    }
}

/// The statements in effect, by key.
pub(crate) struct Effective<'d> {
    single: Vec<(&'static str, &'d Statement)>,
    multi: Vec<&'d Statement>,
}

impl<'d> Effective<'d> {
    /// The statement of a single-valued key.
    pub(crate) fn get(&self, key: &str) -> Option<&'d Statement> {
        self.single.iter().find(|(k, _)| *k == key).map(|(_, s)| *s)
    }

    /// The statements of a repeatable key, in order.
    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'d Statement> + 'a {
        self.multi.iter().copied().filter(move |s| s.name() == key)
    }
}

fn collect_scope<'d>(
    ctx: &Ctx,
    spec: &KeySpec,
    stmts: &[&'d Statement],
) -> Result<Effective<'d>, ConfError> {
    let mut eff = Effective {
        single: Vec::new(),
        multi: Vec::new(),
    };
    for s in stmts {
        let name = s.name();
        if let Some(k) = spec.single.iter().find(|k| **k == name) {
            if let Some((_, prev)) = eff.single.iter().find(|(p, _)| p == k) {
                return Err(ctx.err_stmt(
                    s,
                    format!("'{name}' is already set at line {}", prev.location().line),
                ));
            }
            eff.single.push((k, s));
        } else if spec.multi.contains(&name) {
            eff.multi.push(s);
        } else if spec.other.contains(&name) {
            let other = if spec.daemon == "mrd" { "had" } else { "mrd" };
            return Err(ctx.err_stmt(
                s,
                format!(
                    "'{name}' is a {other} setting; {} does not accept it",
                    spec.daemon
                ),
            ));
        } else if name == "interface" {
            return Err(ctx.err_stmt(s, "'interface' blocks cannot be nested"));
        } else {
            return Err(unknown_key(ctx, s, spec.daemon, &spec.all()));
        }
    }
    Ok(eff)
}

/// Selects the interface block, checks every key of every scope, and merges the global
/// statements with the selected block's (the block's single-valued keys win).
pub(crate) fn effective<'d>(
    ctx: &mut Ctx,
    spec: &KeySpec,
    doc: &'d Document,
    interface: Option<&str>,
) -> Result<(Effective<'d>, Option<String>), ConfError> {
    let Selected {
        global,
        inner,
        name,
    } = select_interface(ctx, doc, interface)?;
    // Keys of blocks for other interfaces are checked too, so a typo never hides.
    for s in &doc.statements {
        if s.name() == "interface"
            && let Some(b) = &s.block
        {
            let stmts: Vec<&Statement> = b.statements.iter().collect();
            collect_scope(ctx, spec, &stmts)?;
        }
    }
    let g = collect_scope(ctx, spec, &global)?;
    let i = collect_scope(ctx, spec, &inner)?;
    let mut single = i.single;
    for (k, s) in g.single {
        if !single.iter().any(|(ik, _)| *ik == k) {
            single.push((k, s));
        }
    }
    let mut multi = g.multi;
    multi.extend(i.multi);
    Ok((Effective { single, multi }, name))
}

/// Split a prefix list into IPv6 and IPv4.
pub(crate) fn split_prefixes(prefixes: &[IpNet]) -> (Vec<Ipv6Net>, Vec<Ipv4Net>) {
    let mut v6 = Vec::new();
    let mut v4 = Vec::new();
    for p in prefixes {
        match p {
            IpNet::V6(p) => v6.push(*p),
            IpNet::V4(p) => v4.push(*p),
        }
    }
    (v6, v4)
}

/// True when two prefixes share addresses.
pub(crate) fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let known = [
            "home-address",
            "home-agent-address",
            "home-registration-lifetime",
        ];
        assert_eq!(suggest("home-adress", &known), Some("home-address"));
        assert_eq!(
            suggest("home-agent-addr", &known),
            Some("home-agent-address")
        );
        assert_eq!(
            suggest("Home-Registration-Lifetime", &known),
            Some("home-registration-lifetime")
        );
        assert_eq!(suggest("colour", &known), None);
    }
}
