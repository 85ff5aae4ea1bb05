//! SHISA's configuration language for `mrd` and `had`, and SHISA's `auth-database`.
//!
//! A SHISA user brings their files: `key value;` statements, `interface NAME { ... };`
//! blocks, `prefixtable { HoA prefix/len implicit|explicit; };` rows (IPv6 or IPv4
//! prefixes), `static-tunnel`, `ipv4-dummy-tunnel`, `auth-database`, `#` comments. The
//! settings Linux needs beyond SHISA (home agent address, home address, home prefixes,
//! keys, ...) are written in the same grammar; `conf/README.md` lists every key.
//!
//! Layers:
//! * [`grammar`]: lexer and parser, producing a [`grammar::Document`] whose statements and
//!   values all carry their line and column.
//! * [`MrConfig`] and [`HaConfig`]: typed, validated configurations built from a document.
//!   SHISA keys that we accept but do not implement come back as [`Warning`]s, never
//!   silently dropped.
//! * [`AuthDatabase`]: the RFC 4285 mobility security associations of SHISA's
//!   `auth-database` file.
//!
//! Every error names the file, line and column: `had.conf:12:5: expected ';' after
//! 'home-registration-lifetime 100', found '}'`.

pub mod auth;
mod common;
#[doc(hidden)]
pub mod fuzzing;
pub mod grammar;
pub mod ha;
pub mod mr;
pub mod prefixtable;

pub use auth::{
    AuthAlgorithm, AuthDatabase, DEFAULT_TIMESTAMP_WINDOW, MobilitySa, ReplayProtection, SaEntry,
};
pub use grammar::Location;
pub use ha::{HaAuthentication, HaConfig, Redundancy};
pub use mr::MrConfig;
pub use prefixtable::{PrefixTable, PrefixTableEntry, RegistrationMode};

use std::fmt;

/// Why a configuration or auth-database file was refused.
///
/// `Display` gives `file:line:column: message` (or `file: message` when the problem is not
/// at one place, e.g. a required statement is missing).
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The file's name as given.
        file: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A syntax or value error at one place in the file.
    #[error("{file}:{line}:{column}: {message}")]
    At {
        /// The file's name as given.
        file: String,
        /// 1-based line.
        line: u32,
        /// 1-based column, counted in characters.
        column: u32,
        /// What was wrong, and what was expected.
        message: String,
    },
    /// A problem with the file as a whole (e.g. a required statement is missing).
    #[error("{file}: {message}")]
    File {
        /// The file's name as given.
        file: String,
        /// What was wrong, and what was expected.
        message: String,
    },
}

impl ConfError {
    pub(crate) fn at(file: &str, location: Location, message: impl Into<String>) -> Self {
        ConfError::At {
            file: file.to_owned(),
            line: location.line,
            column: location.column,
            message: message.into(),
        }
    }

    pub(crate) fn file(file: &str, message: impl Into<String>) -> Self {
        ConfError::File {
            file: file.to_owned(),
            message: message.into(),
        }
    }

    /// The line the error points at, if it points at one.
    pub fn line(&self) -> Option<u32> {
        match self {
            ConfError::At { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// Something accepted but worth telling the operator: a SHISA key we do not implement,
/// a key longer than SHISA's 16 octets, a setting that overrides another. The daemons log
/// each at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file the warning is about.
    pub file: String,
    /// Where in the file, when it is about one statement.
    pub location: Option<Location>,
    /// What was ignored or is doubtful, and why.
    pub message: String,
}

impl Warning {
    pub(crate) fn at(file: &str, location: Location, message: impl Into<String>) -> Self {
        Warning {
            file: file.to_owned(),
            location: Some(location),
            message: message.into(),
        }
    }

    pub(crate) fn file(file: &str, message: impl Into<String>) -> Self {
        Warning {
            file: file.to_owned(),
            location: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(l) => write!(f, "{}:{}:{}: {}", self.file, l.line, l.column, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// The largest configuration, auth-database or prefix table file read (1 MiB). Parsing
/// costs many times the text (a 10 MB file took some 820 MB, issue 17); real files are a
/// few kilobytes.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// Reads a configuration file of at most [`MAX_FILE_SIZE`] octets, mapping the errors to
/// [`ConfError`]: [`ConfError::Io`] when it cannot be read, [`ConfError::File`] when it is
/// larger than the limit. Never reads more than the limit plus one octet, whatever the file
/// claims (a FIFO, `/dev/zero`, a file still growing). For nemonetd's file too.
pub fn read_config_file(path: &std::path::Path) -> Result<String, ConfError> {
    use std::io::Read;
    let name = path.display().to_string();
    let io = |source| ConfError::Io {
        file: name.clone(),
        source,
    };
    let too_large = |size: Option<u64>| {
        let size = size.map_or_else(String::new, |n| format!("{n} octets, "));
        ConfError::file(
            &name,
            format!(
                "is {size}over the limit of {MAX_FILE_SIZE} octets (1 MiB) for a configuration \
                 file; is it the right file?"
            ),
        )
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // Refused before reading when the size is known...
    if let Ok(m) = file.metadata()
        && m.is_file()
        && m.len() > MAX_FILE_SIZE
    {
        return Err(too_large(Some(m.len())));
    }
    // ...and never read past the limit when it is not.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(too_large(None));
    }
    text_of(&name, bytes)
}

/// A file's octets as text, or the error naming its first octet that is not UTF-8.
pub(crate) fn text_of(name: &str, bytes: Vec<u8>) -> Result<String, ConfError> {
    String::from_utf8(bytes).map_err(|e| not_utf8(name, e.as_bytes(), e.utf8_error()))
}

/// Where the first octet that is not UTF-8 is, in the file's own terms: line and column
/// (characters, as [`Location`] counts them) of the valid text before it.
fn not_utf8(file: &str, bytes: &[u8], e: std::str::Utf8Error) -> ConfError {
    let valid = e.valid_up_to();
    let before = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    ConfError::At {
        file: file.to_owned(),
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
        message: format!(
            "octet 0x{:02x} is not UTF-8: configuration files are UTF-8 text (ASCII is \
             enough; a key in other octets is written 0x-prefixed hex)",
            bytes[valid]
        ),
    }
}

pub(crate) use read_config_file as read_to_string;

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in the temporary directory, removed on drop.
    pub(crate) struct TempFile(pub(crate) std::path::PathBuf);

    impl TempFile {
        pub(crate) fn new(name: &str, contents: &[u8]) -> TempFile {
            let path = std::env::temp_dir().join(format!("conf-{}-{name}", std::process::id()));
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn files_over_the_limit_are_refused_before_parsing() {
        let limit = MAX_FILE_SIZE as usize;
        // Comments only: at the limit the file loads, one octet more it does not.
        let mut text = vec![b'#'; limit - 1];
        text.push(b'\n');
        let at = TempFile::new("at-limit.conf", &text);
        assert_eq!(read_config_file(&at.0).unwrap().len(), limit);
        text.push(b'\n');
        let over = TempFile::new("over-limit.conf", &text);
        for e in [
            MrConfig::from_file(&over.0).unwrap_err(),
            HaConfig::from_file(&over.0).unwrap_err(),
            AuthDatabase::from_file(&over.0).unwrap_err(),
        ] {
            let m = e.to_string();
            assert!(matches!(e, ConfError::File { .. }), "{m}");
            assert!(m.starts_with(&over.0.display().to_string()), "{m}");
            assert!(
                m.ends_with(
                    "is 1048577 octets, over the limit of 1048576 octets (1 MiB) for a \
                     configuration file; is it the right file?"
                ),
                "{m}"
            );
        }
    }

    #[test]
    fn a_file_that_is_not_utf8_is_refused_at_its_first_bad_octet() {
        // Line 3, after "<tab>key 'é" (é is two octets, one character): column 8.
        let text = b"home-address 2001:db8:1::100;\n# ok\n\tkey '\xc3\xa9\xff';\n";
        let f = TempFile::new("latin.conf", text);
        let e = MrConfig::from_file(&f.0).unwrap_err();
        assert_eq!(e.line(), Some(3));
        let m = e.to_string();
        assert!(
            m.starts_with(&format!("{}:3:8: octet 0xff is not UTF-8", f.0.display())),
            "{m}"
        );
        // The auth-database and a first-line, first-column case.
        let f = TempFile::new("latin-auth", b"\xe9t\xe9 1000 'k'\n");
        let e = AuthDatabase::from_file(&f.0).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("{}:1:1: octet 0xe9", f.0.display())),
            "{e}"
        );
        // A sequence cut short at the end of the file.
        let f = TempFile::new("cut.conf", b"debug 0;\n\xe2\x82");
        let e = HaConfig::from_file(&f.0).unwrap_err();
        assert!(e.to_string().contains(":2:1: octet 0xe2"), "{e}");
    }

    #[test]
    fn an_endless_file_is_read_no_further_than_the_limit() {
        // /dev/zero claims no size and never ends (NULs are valid UTF-8): the old
        // read_to_string read until memory ran out.
        let e = read_config_file(std::path::Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero: is over the limit of 1048576 octets (1 MiB) for a configuration file; \
             is it the right file?"
        );
    }

    /// Every key either daemon accepts has a row in the README's table.
    #[test]
    fn every_key_is_documented() {
        let readme = include_str!("../README.md");
        for spec in [&crate::mr::SPEC, &crate::ha::SPEC] {
            for key in spec.all() {
                assert!(
                    readme.contains(&format!("| `{key} "))
                        || readme.contains(&format!("| `{key};")),
                    "conf/README.md lacks a row for '{key}' ({})",
                    spec.daemon
                );
            }
        }
        for key in ["spi", "key", "identifier"] {
            assert!(readme.contains(&format!("| `{key} ")), "{key}");
        }
    }
}
