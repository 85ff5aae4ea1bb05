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
pub mod grammar;
pub mod ha;
pub mod mr;
pub mod prefixtable;

pub use auth::{AuthAlgorithm, AuthDatabase, DEFAULT_REPLAY_WINDOW, MobilitySa, ReplayProtection};
pub use grammar::Location;
pub use ha::{HaAuthentication, HaConfig};
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
/// a short key, a setting that overrides another. The daemons log each at start.
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

/// Reads a file to a string, mapping the error to [`ConfError::Io`].
pub(crate) fn read_to_string(path: &std::path::Path) -> Result<String, ConfError> {
    std::fs::read_to_string(path).map_err(|source| ConfError::Io {
        file: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
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
