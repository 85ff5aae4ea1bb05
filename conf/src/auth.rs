//! SHISA's `auth-database` (KAME `shisad/auth.c`): the RFC 4285 mobility security
//! associations, one per line:
//!
//! ```text
//! # comment
//! 2001:db8:1::100   1000    0x000102030405060708090a0b0c0d0e0f
//! 2001:db8:1::101   0x3e9   "sixteen-byte-key"   # a trailing comment
//! mr3@example.org   1002    'a key given as text'   2001:db8:1::300
//! ```
//!
//! Fields: the mobile router's home address (SHISA) or its NAI (ours, for the RFC 4283
//! Mobile Node Identifier option); the SPI, decimal or `0x` hex; the shared key, either
//! `0x` followed by hex digits or a quoted string (`'...'` or `"..."`) whose octets are the
//! key; then, optionally, the other identity: the home address an NAI entry may register,
//! or the NAI of a home-address entry. Anything after that must be a `#` comment.
//!
//! A home address belongs to the one entry that names it (RFC 4285 §5, RFC 3963 §6.1.2):
//! an NAI entry without a home address authenticates no home registration.
//!
//! Each entry is a mobility SA (RFC 4285 §5.1): SPI (0-255 reserved), key, HMAC-SHA1-96
//! (MN-HA, subtype 1) and timestamp replay protection with a window of 7 s by default.
//! Keys are at least 16 octets ([`MIN_KEY_LEN`]); SHISA truncated keys to 16 octets, so we
//! use the whole key and warn when it is longer, since a SHISA peer would then compute a
//! different authenticator.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use crate::grammar::{Tok, Value, ValueKind, lex};
use crate::{ConfError, Location, Warning};

pub use proto::auth::{DEFAULT_TIMESTAMP_WINDOW, MobilitySa, ReplayProtection};

/// The shortest key accepted, in the auth-database and in mrd.conf's `key`: 16 octets, as
/// RFC 4285 §5.1 recommends and SHISA uses. An HMAC-SHA1 key of a few octets is found by
/// trying them all against one captured BU (RFC 2104 §3 discourages keys shorter than the
/// hash's 20-octet output already).
pub const MIN_KEY_LEN: usize = 16;

/// SHISA's key length: longer keys draw a warning (a SHISA peer truncates them).
pub const RECOMMENDED_KEY_LEN: usize = 16;

/// The error for a key shorter than [`MIN_KEY_LEN`] (`what`: "the key of SPI 1000").
pub(crate) fn short_key(what: &str, len: usize) -> String {
    format!(
        "{what} is {len} octet{}; at least {MIN_KEY_LEN} are required (RFC 4285 §5.1; a key of a \
         few octets is found by trying them all against one captured BU): give 0x and 32 hex \
         digits, or a quoted string of 16 characters",
        if len == 1 { "" } else { "s" }
    )
}

/// The authenticator algorithm of a mobility SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthAlgorithm {
    /// First 96 bits of HMAC-SHA1 (RFC 4285 §5.2, MN-HA subtype 1).
    HmacSha1_96,
}

/// One mobility security association as the configuration states it: an auth-database
/// line or mrd.conf's `authentication` block, with where it was written. The daemons
/// run on [`proto::auth::MobilitySa`] ([`SaEntry::to_sa`]).
#[derive(Clone, PartialEq, Eq)]
pub struct SaEntry {
    /// The Mobility SPI (RFC 4285 §5); never 0-255.
    pub spi: u32,
    /// The shared key.
    pub key: Vec<u8>,
    /// The authenticator algorithm.
    pub algorithm: AuthAlgorithm,
    /// The replay protection.
    pub replay: ReplayProtection,
    /// The mobile router's home address, when the entry names one.
    pub home_address: Option<Ipv6Addr>,
    /// The mobile router's NAI (RFC 4283), when the entry names one.
    pub identifier: Option<String>,
    /// Where the entry was defined: `file:line`.
    pub origin: String,
}

impl SaEntry {
    /// A mobility SA with the defaults: HMAC-SHA1-96, timestamps with a 7 s window.
    pub fn new(spi: u32, key: Vec<u8>) -> Self {
        SaEntry {
            spi,
            key,
            algorithm: AuthAlgorithm::HmacSha1_96,
            replay: ReplayProtection::Timestamps {
                window: DEFAULT_TIMESTAMP_WINDOW,
            },
            home_address: None,
            identifier: None,
            origin: String::new(),
        }
    }

    /// The timestamp window.
    pub fn replay_window(&self) -> Duration {
        self.to_sa().replay_window()
    }

    /// The security association the daemons use: SPI, key, replay protection, and the
    /// home address and NAI it is bound to.
    pub fn to_sa(&self) -> MobilitySa {
        MobilitySa {
            spi: self.spi,
            key: self.key.clone(),
            hoa: self.home_address,
            nai: self.identifier.as_ref().map(|n| n.as_bytes().to_vec()),
            replay: self.replay,
        }
    }
}

// Keys stay out of logs.
impl fmt::Debug for SaEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaEntry")
            .field("spi", &self.spi)
            .field("key", &format_args!("<{} octets>", self.key.len()))
            .field("algorithm", &self.algorithm)
            .field("replay", &self.replay)
            .field("home_address", &self.home_address)
            .field("identifier", &self.identifier)
            .field("origin", &self.origin)
            .finish()
    }
}

/// The mobility SAs of an `auth-database` file, looked up by SPI, home address or NAI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthDatabase {
    entries: Vec<SaEntry>,
    by_spi: HashMap<u32, usize>,
    by_hoa: HashMap<Ipv6Addr, usize>,
    by_nai: HashMap<String, usize>,
}

impl AuthDatabase {
    /// Reads and checks an auth-database file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<(AuthDatabase, Vec<Warning>), ConfError> {
        let path = path.as_ref();
        let text = crate::read_to_string(path)?;
        Self::parse_str(&text, &path.display().to_string())
    }

    /// Parses auth-database text; `file` names it in messages.
    pub fn parse_str(text: &str, file: &str) -> Result<(AuthDatabase, Vec<Warning>), ConfError> {
        let mut db = AuthDatabase::default();
        let mut warnings = Vec::new();
        let tokens = lex(text, file)?;
        let mut lines: Vec<Vec<Value>> = Vec::new();
        let mut current_line = 0;
        for t in tokens {
            let v = match t.tok {
                Tok::Value(v) => v,
                _ => {
                    return Err(ConfError::at(
                        file,
                        t.location,
                        "unexpected '{', '}' or ';': expected HOME-ADDRESS-OR-NAI SPI KEY \
                         (quote a key that contains them)",
                    ));
                }
            };
            if v.location.line != current_line {
                current_line = v.location.line;
                lines.push(Vec::new());
            }
            if let Some(l) = lines.last_mut() {
                l.push(v);
            }
        }
        for fields in lines {
            let sa = entry(file, &fields, &mut warnings)?;
            db.insert(file, fields[0].location, sa)?;
        }
        Ok((db, warnings))
    }

    fn insert(&mut self, file: &str, at: Location, sa: SaEntry) -> Result<(), ConfError> {
        if let Some(&i) = self.by_spi.get(&sa.spi) {
            return Err(ConfError::at(
                file,
                at,
                format!(
                    "SPI {} is already used by {}",
                    sa.spi, self.entries[i].origin
                ),
            ));
        }
        if let Some(hoa) = sa.home_address
            && let Some(&i) = self.by_hoa.get(&hoa)
        {
            return Err(ConfError::at(
                file,
                at,
                format!(
                    "home address {hoa} already has an entry at {}",
                    self.entries[i].origin
                ),
            ));
        }
        if let Some(nai) = &sa.identifier
            && let Some(&i) = self.by_nai.get(nai)
        {
            return Err(ConfError::at(
                file,
                at,
                format!(
                    "identifier {nai} already has an entry at {}",
                    self.entries[i].origin
                ),
            ));
        }
        let i = self.entries.len();
        self.by_spi.insert(sa.spi, i);
        if let Some(hoa) = sa.home_address {
            self.by_hoa.insert(hoa, i);
        }
        if let Some(nai) = &sa.identifier {
            self.by_nai.insert(nai.clone(), i);
        }
        self.entries.push(sa);
        Ok(())
    }

    /// The SA for an SPI received in an MN-HA authentication option.
    pub fn by_spi(&self, spi: u32) -> Option<&SaEntry> {
        self.by_spi.get(&spi).map(|&i| &self.entries[i])
    }

    /// The SA of a home address.
    pub fn by_home_address(&self, hoa: Ipv6Addr) -> Option<&SaEntry> {
        self.by_hoa.get(&hoa).map(|&i| &self.entries[i])
    }

    /// The SA of an NAI (RFC 4283 Mobile Node Identifier).
    pub fn by_identifier(&self, nai: &str) -> Option<&SaEntry> {
        self.by_nai.get(nai).map(|&i| &self.entries[i])
    }

    /// All SAs in file order.
    pub fn entries(&self) -> &[SaEntry] {
        &self.entries
    }

    /// Number of SAs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no SA.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets the timestamp window of every SA (the `replay-window` key).
    pub fn set_replay_window(&mut self, window: Duration) {
        for e in &mut self.entries {
            e.replay = ReplayProtection::Timestamps { window };
        }
    }
}

const USAGE: &str = "HOME-ADDRESS-OR-NAI SPI KEY [NAI-OR-HOME-ADDRESS], the key as 0x-prefixed \
                     hex or a quoted string";

fn entry(file: &str, fields: &[Value], warnings: &mut Vec<Warning>) -> Result<SaEntry, ConfError> {
    let at = |v: &Value, m: String| ConfError::at(file, v.location, m);
    let [id, spi, key, rest @ ..] = fields else {
        let last = &fields[fields.len() - 1];
        return Err(at(
            last,
            format!("expected {USAGE}; the line ends after '{last}'"),
        ));
    };
    let other = rest.first();
    if let Some(extra) = rest.get(1) {
        return Err(at(
            extra,
            format!(
                "unexpected '{extra}' after the {} (a comment starts with '#')",
                if other.is_some() {
                    "second identity"
                } else {
                    "key"
                }
            ),
        ));
    }
    let (mut home_address, mut identifier) = match &id.kind {
        ValueKind::Address(IpAddr::V6(a)) => (Some(*a), None),
        ValueKind::Address(IpAddr::V4(_)) => {
            return Err(at(
                id,
                format!("expected an IPv6 home address or an NAI, found the IPv4 address {id}"),
            ));
        }
        _ if is_nai(&id.text) => (None, Some(id.text.clone())),
        _ => {
            return Err(at(
                id,
                format!("expected an IPv6 home address or an NAI (user@realm), found '{id}'"),
            ));
        }
    };
    let spi_value = if spi.is_quoted() {
        None
    } else if let Some(hex) = spi
        .text
        .strip_prefix("0x")
        .or_else(|| spi.text.strip_prefix("0X"))
    {
        u32::from_str_radix(hex, 16).ok()
    } else {
        spi.text.parse::<u32>().ok()
    };
    let spi_value = spi_value.ok_or_else(|| {
        at(
            spi,
            format!("expected the SPI (a number, decimal or 0x hex), found '{spi}'"),
        )
    })?;
    if spi_value <= 255 {
        return Err(at(
            spi,
            format!("SPI {spi_value} is reserved (RFC 4285 §5: 0-255); use 256 or more"),
        ));
    }
    let key_bytes = parse_key(key).map_err(|m| at(key, m))?;
    if key_bytes.len() < MIN_KEY_LEN {
        return Err(at(
            key,
            short_key(&format!("the key of SPI {spi_value}"), key_bytes.len()),
        ));
    }
    if key_bytes.len() > RECOMMENDED_KEY_LEN {
        warnings.push(Warning::at(
            file,
            key.location,
            format!(
                "the key of SPI {spi_value} is {} octets; SHISA truncates keys to 16 octets, so a \
                 SHISA peer would compute a different authenticator",
                key_bytes.len()
            ),
        ));
    }
    match (other, home_address) {
        (None, _) => {}
        (Some(v), Some(_)) if is_nai(&v.text) && !v.is_quoted() => {
            identifier = Some(v.text.clone());
        }
        (Some(v), Some(hoa)) => {
            return Err(at(
                v,
                format!(
                    "expected the NAI (user@realm) of home address {hoa} after the key, \
                     found '{v}' (a comment starts with '#')"
                ),
            ));
        }
        (Some(v), None) => match &v.kind {
            ValueKind::Address(IpAddr::V6(a)) => home_address = Some(*a),
            _ => {
                return Err(at(
                    v,
                    format!(
                        "expected the IPv6 home address {} may register after the key, \
                         found '{v}' (a comment starts with '#')",
                        id.text
                    ),
                ));
            }
        },
    }
    if home_address.is_none() {
        warnings.push(Warning::at(
            file,
            id.location,
            format!(
                "{} (SPI {spi_value}) names no home address, so it can register none: add the \
                 home address it may register after the key",
                id.text
            ),
        ));
    }
    let mut sa = SaEntry::new(spi_value, key_bytes);
    sa.home_address = home_address;
    sa.identifier = identifier;
    sa.origin = format!("{file}:{}", id.location.line);
    Ok(sa)
}

/// An NAI as RFC 4282 writes it, loosely: `user@realm`, no white space.
pub(crate) fn is_nai(s: &str) -> bool {
    match s.split_once('@') {
        Some((user, realm)) => {
            !realm.is_empty()
                && !realm.contains('@')
                && !user.is_empty()
                && s.len() <= 253
                && s.chars().all(|c| c.is_ascii_graphic())
        }
        None => false,
    }
}

/// A key: `0x` + an even number of hex digits, or a quoted string's octets.
pub(crate) fn parse_key(v: &Value) -> Result<Vec<u8>, String> {
    if v.is_quoted() {
        if v.text.is_empty() {
            return Err("the key is empty".to_owned());
        }
        return Ok(v.text.as_bytes().to_vec());
    }
    let Some(hex) = v
        .text
        .strip_prefix("0x")
        .or_else(|| v.text.strip_prefix("0X"))
    else {
        return Err(format!(
            "expected a key as 0x-prefixed hex or a quoted string, found '{v}'"
        ));
    };
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "the hex key '{v}' must have an even number of hex digits after 0x"
        ));
    }
    Ok((0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHISA_STYLE: &str = "\
# the line started '#' shows comment.
2001:DB8:0:80be::1000 10000\t'shared-key in 16'  # trailing text is a comment
2001:DB8:0:80be::1001 0x2711           0x0102030405060708090a0b0c0d0e0f10
mr3@example.org 10002 \"0123456789abcdef\" 2001:db8:0:80be::1002
";

    #[test]
    fn parses_shisa_format_and_looks_up() {
        let (db, warnings) = AuthDatabase::parse_str(SHISA_STYLE, "authdata").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(db.len(), 3);
        let a = db.by_spi(10000).unwrap();
        assert_eq!(a.key, b"shared-key in 16");
        assert_eq!(
            a.home_address,
            Some("2001:db8:0:80be::1000".parse().unwrap())
        );
        assert_eq!(a.algorithm, AuthAlgorithm::HmacSha1_96);
        assert_eq!(a.replay_window(), Duration::from_secs(7));
        assert_eq!(a.origin, "authdata:2");
        let b = db
            .by_home_address("2001:db8:0:80be::1001".parse().unwrap())
            .unwrap();
        assert_eq!(b.spi, 10001);
        assert_eq!(b.key, (1..=16).collect::<Vec<u8>>());
        let c = db.by_identifier("mr3@example.org").unwrap();
        assert_eq!(c.spi, 10002);
        assert_eq!(
            c.home_address,
            Some("2001:db8:0:80be::1002".parse().unwrap())
        );
        assert!(db.by_spi(1).is_none());
        // Keys stay out of Debug output.
        assert!(!format!("{a:?}").contains("shared"));
    }

    /// A 16-octet key, for errors found after the key.
    const K: &str = "0x00112233445566778899aabbccddeeff";

    #[test]
    fn errors_name_file_and_line() {
        let e = |t: &str| {
            AuthDatabase::parse_str(t, "authdata")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            e("\n2001:db8::1 255 0x00112233445566778899aabbccddeeff\n"),
            "authdata:2:13: SPI 255 is reserved (RFC 4285 §5: 0-255); use 256 or more"
        );
        assert!(
            e("2001:db8::1 1000\n")
                .starts_with("authdata:1:13: expected HOME-ADDRESS-OR-NAI SPI KEY")
        );
        assert!(e("2001:db8::1 1000 secret\n").contains("1:18: expected a key as 0x-prefixed hex"));
        assert!(e("2001:db8::1 1000 0x123\n").contains("even number of hex digits"));
        assert!(e("2001:db8::1 x 0x00\n").contains("expected the SPI"));
        assert!(e("192.0.2.1 1000 0x00\n").contains("IPv4 address"));
        assert!(e("nobody 1000 0x00\n").contains("expected an IPv6 home address or an NAI"));
        assert!(
            e(&format!("2001:db8::1 1000 {K} extra\n")).contains(
                "expected the NAI (user@realm) of home address 2001:db8::1 after the key"
            )
        );
        assert!(
            e(&format!("a@b 1000 {K} b@c\n"))
                .contains("expected the IPv6 home address a@b may register")
        );
        assert!(
            e("a@b 1000 0x00 2001:db8::1 more\n")
                .contains("1:27: unexpected 'more' after the second identity")
        );
        assert!(
            e(&format!("a@b 1000 {K} 2001:db8::1\n2001:db8::1 1001 {K}\n"))
                .contains("home address 2001:db8::1 already has an entry at authdata:1")
        );
        assert!(e("2001:db8::1 1000 0x00; \n").contains("unexpected '{', '}' or ';'"));
        assert!(
            e(&format!("2001:db8::1 1000 {K}\n2001:db8::2 1000 {K}\n"))
                .starts_with("authdata:2:1: SPI 1000 is already used by authdata:1")
        );
        assert!(
            e(&format!("2001:db8::1 1000 {K}\n2001:db8::1 1001 {K}\n"))
                .contains("home address 2001:db8::1 already has an entry at authdata:1")
        );
        assert!(e("2001:db8::1 1000 ''\n").contains("the key is empty"));
    }

    #[test]
    fn short_keys_are_refused_long_keys_warn() {
        let e = |t: &str| AuthDatabase::parse_str(t, "a").unwrap_err().to_string();
        assert!(e("2001:db8::1 1000 'short'\n").starts_with(
            "a:1:18: the key of SPI 1000 is 5 octets; at least 16 are required (RFC 4285 §5.1"
        ));
        assert!(e("2001:db8::1 1000 0x01\n").contains("is 1 octet; at least 16"));
        assert!(e("2001:db8::1 1000 'fifteen-octets!'\n").contains("is 15 octets"));
        let (_, w) = AuthDatabase::parse_str("2001:db8::1 1000 'sixteen-octets!!'\n", "a").unwrap();
        assert!(w.is_empty(), "{w:?}");
        let (_, w) = AuthDatabase::parse_str(
            "2001:db8::1 1000 0x000102030405060708090a0b0c0d0e0f10111213\n",
            "a",
        )
        .unwrap();
        assert!(w[0].message.contains("SHISA truncates"));
    }

    #[test]
    fn both_identities_on_one_line() {
        let (db, w) = AuthDatabase::parse_str(
            "2001:db8::1 1000 'sixteen-byte-key' mr1@example.org\n\
             mr2@example.org 1001 'sixteen-byte-key' 2001:db8::2 # mr2\n",
            "a",
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        let hoa1: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let hoa2: Ipv6Addr = "2001:db8::2".parse().unwrap();
        assert_eq!(db.by_identifier("mr1@example.org").unwrap().spi, 1000);
        assert_eq!(db.by_home_address(hoa1).unwrap().spi, 1000);
        assert_eq!(db.by_home_address(hoa2).unwrap().spi, 1001);
        assert_eq!(
            db.by_identifier("mr2@example.org").unwrap().home_address,
            Some(hoa2)
        );
    }

    #[test]
    fn nai_without_home_address_warns() {
        let (db, w) =
            AuthDatabase::parse_str("mr3@example.org 1002 'sixteen-byte-key'\n", "a").unwrap();
        assert_eq!(db.len(), 1);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].to_string().starts_with(
                "a:1:1: mr3@example.org (SPI 1002) names no home address, so it can register none"
            ),
            "{}",
            w[0]
        );
    }

    #[test]
    fn replay_window_can_be_set() {
        let (mut db, _) = AuthDatabase::parse_str(SHISA_STYLE, "a").unwrap();
        db.set_replay_window(Duration::from_secs(3));
        assert!(
            db.entries()
                .iter()
                .all(|e| e.replay_window() == Duration::from_secs(3))
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(s in "\\PC*") {
                let _ = AuthDatabase::parse_str(&s, "f");
            }

            #[test]
            fn never_panics_on_near_misses(
                id in prop_oneof![Just("2001:db8::1"), Just("a@b"), Just("x"), Just("10.0.0.1")],
                spi in prop_oneof![Just("0x"), Just("0x1ff"), Just("256"), Just("4294967296"), Just("'1'")],
                key in "(0x[0-9a-f]{0,5}|'[a-z ]{0,20}'|\"\"|[a-z]{0,3})",
            ) {
                let _ = AuthDatabase::parse_str(&format!("{id} {spi} {key}\n"), "f");
            }
        }
    }
}
