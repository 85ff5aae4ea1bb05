//! The bodies of conf's fuzz targets (`fuzz/` at the workspace root), kept in the crate so
//! the seed corpora also run as ordinary tests (`tests/fuzz_corpus.rs`). Each panics only
//! on a bug: a parser panic, or an error or warning that points outside the text.
//!
//! The input is a file's octets, as the daemons read them: they go through the same UTF-8
//! check as [`crate::read_config_file`] first.

use crate::common::Ctx;
use crate::grammar::{Document, Statement};
use crate::prefixtable::{self, PrefixTable};
use crate::{AuthDatabase, ConfError, HaConfig, MrConfig, Warning};

/// Where the fuzzed text claims to live: `etc/` of this repository, so the relative
/// `auth-database` and `prefixtable-file` names below resolve to the shipped samples.
const CONF_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/fuzz.conf");

/// had.conf and mrd.conf: the grammar, then both daemons' typed layers, for the whole file
/// and for the first `interface` block it names.
///
/// Files the text names are not opened as given: every `auth-database` becomes the
/// sample `etc/auth-database` and every `prefixtable-file` the sample
/// `etc/prefixtable.cf`, so the checks between them still run but no input makes the
/// fuzzer read a file of its choice (a FIFO would hang it).
pub fn daemon_conf(data: &[u8]) {
    let Some(text) = text(data) else {
        return;
    };
    let mut doc = match Document::parse(&text, CONF_FILE) {
        Ok(doc) => doc,
        Err(e) => return check_error(&text, &e),
    };
    let mut interface = None;
    confine_files(&mut doc.statements, &mut interface);
    for iface in [None, interface.as_deref(), Some("eth0")] {
        let ha = HaConfig::from_document(&doc, iface);
        let mr = MrConfig::from_document(&doc, iface);
        let ha = check_result(&text, ha.map(|(_, w)| w));
        let mr = check_result(&text, mr.map(|(_, w)| w));
        // The same document must give the same verdict and the same warnings, in order.
        let ha2 = HaConfig::from_document(&doc, iface).map(|(_, w)| w);
        let mr2 = MrConfig::from_document(&doc, iface).map(|(_, w)| w);
        assert_eq!(ha, messages(ha2), "had.conf parse not deterministic");
        assert_eq!(mr, messages(mr2), "mrd.conf parse not deterministic");
    }
}

/// The auth-database. On success every SA is found by its SPI, home address and NAI.
pub fn auth_database(data: &[u8]) {
    let Some(text) = text(data) else {
        return;
    };
    match AuthDatabase::parse_str(&text, CONF_FILE) {
        Err(e) => check_error(&text, &e),
        Ok((db, warnings)) => {
            check_warnings(&text, &warnings);
            for sa in db.entries() {
                assert!(
                    sa.key.len() >= crate::auth::MIN_KEY_LEN,
                    "short key accepted"
                );
                assert!(sa.spi > 255, "reserved SPI {} accepted", sa.spi);
                assert_eq!(db.by_spi(sa.spi), Some(sa));
                if let Some(hoa) = sa.home_address {
                    assert_eq!(db.by_home_address(hoa), Some(sa));
                }
                if let Some(nai) = &sa.identifier {
                    assert_eq!(db.by_identifier(nai), Some(sa));
                }
            }
        }
    }
}

/// SHISA's separate prefix table file (`prefixtable-file`). On success no two rows of
/// different home addresses overlap, and every prefix has its host bits clear.
pub fn prefix_table(data: &[u8]) {
    let Some(text) = text(data) else {
        return;
    };
    let mut ctx = Ctx::new(CONF_FILE);
    let mut table = PrefixTable::default();
    match prefixtable::from_text(&mut ctx, &text, CONF_FILE, &mut table) {
        Err(e) => check_error(&text, &e),
        Ok(()) => {
            check_warnings(&text, &ctx.warnings);
            for (i, a) in table.entries.iter().enumerate() {
                assert_eq!(a.prefix, a.prefix.trunc(), "host bits in {}", a.prefix);
                for b in &table.entries[..i] {
                    assert!(
                        !crate::common::overlaps(&a.prefix, &b.prefix),
                        "{} and {} overlap",
                        a.prefix,
                        b.prefix
                    );
                }
            }
        }
    }
}

/// The octets as text, as [`crate::read_config_file`] takes them; `None` (after checking
/// the error) when they are not UTF-8.
fn text(data: &[u8]) -> Option<String> {
    match crate::text_of(CONF_FILE, data.to_vec()) {
        Ok(text) => Some(text),
        Err(e) => {
            // The error points at the first bad octet, in the valid text before it.
            let valid = std::str::from_utf8(data).unwrap_err().valid_up_to();
            let before = String::from_utf8_lossy(&data[..valid]);
            check_error(&before, &e);
            None
        }
    }
}

/// Points every `auth-database` and `prefixtable-file` at the samples in `etc/`, and
/// notes the first interface block's name.
fn confine_files(statements: &mut [Statement], interface: &mut Option<String>) {
    for s in statements {
        let sample = match s.name() {
            "auth-database" => Some("auth-database"),
            "prefixtable-file" => Some("prefixtable.cf"),
            "interface" => {
                if interface.is_none() {
                    *interface = s.args().first().map(|v| v.text.clone());
                }
                None
            }
            _ => None,
        };
        if let Some(sample) = sample {
            for v in &mut s.values[1..] {
                v.text = sample.to_owned();
            }
        }
        if let Some(block) = &mut s.block {
            confine_files(&mut block.statements, interface);
        }
    }
}

fn messages(r: Result<Vec<Warning>, ConfError>) -> Result<Vec<String>, String> {
    r.map(|w| w.iter().map(ToString::to_string).collect())
        .map_err(|e| e.to_string())
}

fn check_result(text: &str, r: Result<Vec<Warning>, ConfError>) -> Result<Vec<String>, String> {
    match &r {
        Ok(w) => check_warnings(text, w),
        Err(e) => check_error(text, e),
    }
    messages(r)
}

fn check_warnings(text: &str, warnings: &[Warning]) {
    for w in warnings {
        let _ = w.to_string();
        if w.file == CONF_FILE
            && let Some(l) = w.location
        {
            check_location(text, l.line, l.column, &w.to_string());
        }
    }
}

fn check_error(text: &str, e: &ConfError) {
    let m = e.to_string();
    if let ConfError::At {
        file, line, column, ..
    } = e
        && file == CONF_FILE
    {
        check_location(text, *line, *column, &m);
    }
}

/// A location names a line of the text and a column at most one past its end.
fn check_location(text: &str, line: u32, column: u32, what: &str) {
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(
        line >= 1 && (line as usize) <= lines.len(),
        "line {line} of a {}-line text: {what}",
        lines.len()
    );
    let chars = lines[line as usize - 1].chars().count();
    assert!(
        column >= 1 && (column as usize) <= chars + 1,
        "column {column} of a {chars}-character line: {what}"
    );
}
