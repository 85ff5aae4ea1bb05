//! The crate's error type.

use std::io;
use std::path::PathBuf;

use crate::frame::EncodeError;

/// What went wrong on the bus.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bus directory could not be created or read.
    #[error("bus directory {path}: {source}")]
    BusDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The endpoint's own socket could not be set up.
    #[error("endpoint socket {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// Endpoint names become file names: letters, digits, `-` and `_` only.
    #[error("bad endpoint name {0:?}: use 1-32 letters, digits, '-' or '_'")]
    BadName(String),
    /// `sun_path` holds 107 octets.
    #[error("socket path {0} is too long for a Unix socket (107 octets at most)")]
    PathTooLong(PathBuf),
    /// Waiting for or reading from the sockets failed.
    #[error("receive: {0}")]
    Recv(#[source] nix::Error),
    /// A message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Other I/O (the async wrapper's readiness registration).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
