use core::fmt;

/// Why a buffer could not be parsed or emitted.
///
/// Parsing never panics: every malformed input ends in one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The buffer ends before the structure it claims to hold.
    Truncated,
    /// A length field disagrees with the buffer or with the fixed size of the structure.
    BadLength,
    /// A field holds a value the format forbids (the string names the field).
    Malformed(&'static str),
    /// The checksum does not verify.
    BadChecksum,
    /// The buffer handed to `emit` is too short for `buffer_len()`.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("truncated: buffer ends before the structure does"),
            Error::BadLength => f.write_str("length field inconsistent with the buffer"),
            Error::Malformed(field) => write!(f, "malformed field: {field}"),
            Error::BadChecksum => f.write_str("checksum does not verify"),
            Error::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl std::error::Error for Error {}

/// Result of parsing or emitting a wire structure.
pub type Result<T> = core::result::Result<T, Error>;
