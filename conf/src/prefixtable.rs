//! The NEMO prefix table (RFC 3963 §6.1.2): which home address may register which IPv6
//! or IPv4 mobile network prefixes, and in which registration mode.
//!
//! SHISA writes it inline, `prefixtable { HoA prefix/len implicit|explicit [bid]; };`, or
//! (older versions) in a separate file of rows `HoA prefix len mode [bid]`
//! (`sampleconf/prefixtable.cf`), which we read with `prefixtable-file PATH;`. Both the
//! `prefix/len` and the `prefix len` forms are accepted, as is a row without its `;`.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::Path;

use ipnet::IpNet;

use crate::common::{Ctx, overlaps};
use crate::grammar::{Document, Statement, Terminator};
use crate::{ConfError, Location};

/// How a mobile router tells its home agent its prefixes (RFC 3963 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RegistrationMode {
    /// The BU carries no prefix option; the home agent uses its prefix table.
    Implicit,
    /// The BU lists each prefix in a Mobile Network Prefix option (IPv6) or an RFC 5555
    /// IPv4 Home Address option with P=1 (IPv4).
    #[default]
    Explicit,
}

impl fmt::Display for RegistrationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegistrationMode::Implicit => "implicit",
            RegistrationMode::Explicit => "explicit",
        })
    }
}

/// One row: this home address may own this prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixTableEntry {
    /// The mobile router's home address.
    pub home_address: Ipv6Addr,
    /// A mobile network prefix it may register (IPv6 or IPv4), host bits zero.
    pub prefix: IpNet,
    /// The row's registration mode.
    pub mode: RegistrationMode,
    /// SHISA's binding identifier (multiple care-of addresses); kept, not used.
    pub binding_id: Option<u16>,
    /// The file the row is in.
    pub file: String,
    /// Where the row starts.
    pub location: Location,
}

/// The prefix table: rows in file order, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrefixTable {
    /// The rows.
    pub entries: Vec<PrefixTableEntry>,
}

impl PrefixTable {
    /// The rows of one home address.
    pub fn for_home_address(&self, hoa: Ipv6Addr) -> impl Iterator<Item = &PrefixTableEntry> {
        self.entries.iter().filter(move |e| e.home_address == hoa)
    }

    /// The row authorising `hoa` to register exactly `prefix`, if any.
    pub fn authorizes(&self, hoa: Ipv6Addr, prefix: &IpNet) -> Option<&PrefixTableEntry> {
        self.entries
            .iter()
            .find(|e| e.home_address == hoa && e.prefix == *prefix)
    }

    /// The row owning a prefix that overlaps `prefix`, whatever its home address.
    pub fn owner_of(&self, prefix: &IpNet) -> Option<&PrefixTableEntry> {
        self.entries.iter().find(|e| overlaps(&e.prefix, prefix))
    }

    /// The distinct home addresses, in order of first appearance.
    pub fn home_addresses(&self) -> Vec<Ipv6Addr> {
        let mut out: Vec<Ipv6Addr> = Vec::new();
        for e in &self.entries {
            if !out.contains(&e.home_address) {
                out.push(e.home_address);
            }
        }
        out
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a row, refusing a prefix already owned by another home address. A repeated
    /// row (SHISA repeats rows with different binding identifiers) is dropped with a
    /// warning.
    pub(crate) fn insert(&mut self, ctx: &mut Ctx, e: PrefixTableEntry) -> Result<(), ConfError> {
        if let Some(prev) = self.entries.iter().find(|p| overlaps(&p.prefix, &e.prefix)) {
            if prev.home_address != e.home_address {
                return Err(ConfError::at(
                    &e.file,
                    e.location,
                    format!(
                        "prefix {} overlaps {}, which belongs to home address {} ({}:{})",
                        e.prefix, prev.prefix, prev.home_address, prev.file, prev.location.line
                    ),
                ));
            }
            if prev.prefix != e.prefix {
                return Err(ConfError::at(
                    &e.file,
                    e.location,
                    format!(
                        "prefix {} overlaps {} of the same home address ({}:{})",
                        e.prefix, prev.prefix, prev.file, prev.location.line
                    ),
                ));
            }
            if prev.mode != e.mode {
                return Err(ConfError::at(
                    &e.file,
                    e.location,
                    format!(
                        "prefix {} of {} is {} here but {} at {}:{}",
                        e.prefix, e.home_address, e.mode, prev.mode, prev.file, prev.location.line
                    ),
                ));
            }
            ctx.warnings.push(crate::Warning::at(
                &e.file,
                e.location,
                format!(
                    "prefix {} of {} repeated (first at {}:{}); multiple care-of address \
                     registration (binding identifiers) is not supported, the repeat is ignored",
                    e.prefix, e.home_address, prev.file, prev.location.line
                ),
            ));
            return Ok(());
        }
        self.entries.push(e);
        Ok(())
    }
}

const USAGE: &str = "HOME-ADDRESS PREFIX/LEN implicit|explicit [BINDING-ID];";

/// Parses one row in the context `ctx` (whose file is the row's file).
pub(crate) fn row(ctx: &mut Ctx, s: &Statement) -> Result<PrefixTableEntry, ConfError> {
    ctx.no_block(s, USAGE)?;
    let v = &s.values;
    if v.len() < 3 {
        return Err(ctx.err_stmt(
            s,
            format!("expected a prefix table row: {USAGE} found '{}'", s.words()),
        ));
    }
    let home_address = ctx.ipv6(&v[0], "the home address")?;
    // `2001:db8:a:: 64` (older SHISA) or `2001:db8:a::/64`.
    let separate_len =
        !v[1].text.contains('/') && v.len() >= 4 && v[2].text.bytes().all(|b| b.is_ascii_digit());
    let (prefix, rest) = if separate_len {
        (ctx.mobile_network_prefix(&v[1], Some(&v[2]))?, &v[3..])
    } else {
        (ctx.mobile_network_prefix(&v[1], None)?, &v[2..])
    };
    let mode = match rest[0].text.as_str() {
        "implicit" => RegistrationMode::Implicit,
        "explicit" => RegistrationMode::Explicit,
        _ => {
            return Err(ctx.err_at(
                &rest[0],
                format!("expected implicit or explicit, found '{}'", rest[0]),
            ));
        }
    };
    let binding_id = match &rest[1..] {
        [] => None,
        [bid] => Some(ctx.u32_in(bid, "the binding identifier", 0..=65535)? as u16),
        [_, extra, ..] => {
            return Err(ctx.err_at(
                extra,
                format!("unexpected '{extra}' after the binding identifier: {USAGE}"),
            ));
        }
    };
    Ok(PrefixTableEntry {
        home_address,
        prefix,
        mode,
        binding_id,
        file: ctx.file.clone(),
        location: s.location(),
    })
}

/// Reads the rows of an inline `prefixtable { ... };` statement into `table`.
pub(crate) fn inline(
    ctx: &mut Ctx,
    s: &Statement,
    table: &mut PrefixTable,
) -> Result<(), ConfError> {
    let usage = format!("prefixtable {{ {USAGE} ... }};");
    if let Some(a) = s.args().first() {
        return Err(ctx.err_at(
            a,
            format!("'prefixtable' takes no value before its block: {usage}"),
        ));
    }
    let Some(block) = &s.block else {
        return Err(ctx.err_stmt(s, format!("'prefixtable' needs a block: {usage}")));
    };
    let mut newline_rows = 0;
    let mut bids = 0;
    for r in &block.statements {
        let e = row(ctx, r)?;
        if r.terminator == Terminator::Newline {
            newline_rows += 1;
        }
        if e.binding_id.is_some() {
            bids += 1;
        }
        table.insert(ctx, e)?;
    }
    if newline_rows > 0 {
        ctx.warn(
            s,
            format!("{newline_rows} prefix table row(s) without ';' accepted"),
        );
    }
    if bids > 0 {
        ctx.warn(s, "binding identifiers in the prefix table are ignored (no multiple care-of address support)");
    }
    Ok(())
}

/// Reads a SHISA `prefixtable.cf` file (one row per line, `;` optional) into `table`.
pub(crate) fn from_file(
    ctx: &mut Ctx,
    path: &Path,
    table: &mut PrefixTable,
) -> Result<(), ConfError> {
    let text = crate::read_to_string(path)?;
    from_text(ctx, &text, &path.display().to_string(), table)
}

/// [`from_file`] on the file's text; `name` names the file in messages.
pub(crate) fn from_text(
    ctx: &mut Ctx,
    text: &str,
    name: &str,
    table: &mut PrefixTable,
) -> Result<(), ConfError> {
    let doc = Document::parse_rows(text, name)?;
    let mut sub = Ctx::new(name);
    for r in &doc.statements {
        let e = row(&mut sub, r)?;
        table.insert(&mut sub, e)?;
    }
    ctx.warnings.append(&mut sub.warnings);
    Ok(())
}
