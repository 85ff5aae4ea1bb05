//! ICMP for IPv4 (RFC 792): the error messages a tunnel entry point sends about an IPv4
//! packet it tunnelled (RFC 2473 §8.1 (b): Destination Unreachable, including
//! "fragmentation needed" with the next-hop MTU of RFC 1191 §4), and their parsing.
//!
//! ```text
//!  0       1       2       3       4               8
//! +-------+-------+-------+-------+---------------+----------------------------------+
//! | Type  | Code  |   Checksum    | rest of header| invoking datagram (IP header on) |
//! +-------+-------+-------+-------+---------------+----------------------------------+
//! ```
//! The checksum covers the ICMP message only (no pseudo-header); [`ErrorMessage::emit`]
//! fills it, since a raw IPv4 ICMP socket sends what it is given. As much of the invoking
//! datagram is quoted as fits in 576 octets (RFC 1812 §4.3.2.3).

use crate::{Error, Result, checksum};

/// Destination Unreachable (RFC 792).
pub const DESTINATION_UNREACHABLE: u8 = 3;
/// Source Quench (RFC 792, deprecated by RFC 6633): an error all the same.
pub const SOURCE_QUENCH: u8 = 4;
/// Redirect (RFC 792).
pub const REDIRECT: u8 = 5;
/// Time Exceeded (RFC 792).
pub const TIME_EXCEEDED: u8 = 11;
/// Parameter Problem (RFC 792).
pub const PARAMETER_PROBLEM: u8 = 12;

/// Destination Unreachable code 1: host unreachable.
pub const CODE_HOST_UNREACHABLE: u8 = 1;
/// Destination Unreachable code 4: fragmentation needed and DF set (RFC 1191 §4).
pub const CODE_FRAGMENTATION_NEEDED: u8 = 4;

/// ICMP header before the quoted datagram.
pub const HEADER_LEN: usize = 8;
/// Largest error message this module emits, IPv4 header included (RFC 1812 §4.3.2.3).
pub const MAX_ERROR_DATAGRAM: usize = 576;
/// Octets of the invoking datagram quoted at most: 576 - 20 (IPv4) - 8 (ICMP).
pub const MAX_QUOTED: usize = MAX_ERROR_DATAGRAM - 20 - HEADER_LEN;

/// Whether an ICMPv4 type is an error (RFC 1122 §3.2.2: no error is sent about one).
pub const fn is_error(msg_type: u8) -> bool {
    matches!(
        msg_type,
        DESTINATION_UNREACHABLE | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAMETER_PROBLEM
    )
}

/// An ICMPv4 error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorMessage<'a> {
    /// Type.
    pub msg_type: u8,
    /// Code.
    pub code: u8,
    /// The 32-bit "rest of header": zero, a Parameter Problem's pointer in the top octet,
    /// or "fragmentation needed"'s next-hop MTU in the low 16 bits (RFC 1191 §4).
    pub rest: u32,
    /// The invoking datagram from its IPv4 header on. Emitted cut to [`MAX_QUOTED`]
    /// octets; parsed whole.
    pub invoking: &'a [u8],
}

impl<'a> ErrorMessage<'a> {
    /// "Fragmentation needed and DF set" with the next-hop MTU (RFC 1191 §4).
    pub fn fragmentation_needed(next_hop_mtu: u16, invoking: &'a [u8]) -> Self {
        ErrorMessage {
            msg_type: DESTINATION_UNREACHABLE,
            code: CODE_FRAGMENTATION_NEEDED,
            rest: u32::from(next_hop_mtu),
            invoking,
        }
    }

    /// "Host unreachable".
    pub fn host_unreachable(invoking: &'a [u8]) -> Self {
        ErrorMessage {
            msg_type: DESTINATION_UNREACHABLE,
            code: CODE_HOST_UNREACHABLE,
            rest: 0,
            invoking,
        }
    }

    /// Parses an ICMPv4 message that is an error (as a raw ICMP socket returns it, after
    /// the IPv4 header); the checksum is verified.
    ///
    /// # Errors
    /// `Truncated` under 8 octets, `Malformed` for a type that is no error,
    /// `BadChecksum`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let header = bytes.get(..HEADER_LEN).ok_or(Error::Truncated)?;
        if !is_error(header[0]) {
            return Err(Error::Malformed("not an ICMPv4 error"));
        }
        if checksum::finish(checksum::sum(0, bytes)) != 0 {
            return Err(Error::BadChecksum);
        }
        Ok(ErrorMessage {
            msg_type: header[0],
            code: header[1],
            rest: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
            invoking: &bytes[HEADER_LEN..],
        })
    }

    /// Octets of the invoking datagram [`emit`](Self::emit) quotes.
    pub fn quoted_len(&self) -> usize {
        self.invoking.len().min(MAX_QUOTED)
    }

    /// Length of the emitted message.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.quoted_len()
    }

    /// Writes the message, checksum filled, into the first
    /// [`buffer_len`](Self::buffer_len) octets of `out`; returns that length.
    ///
    /// # Errors
    /// `BufferTooSmall`.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        out[0] = self.msg_type;
        out[1] = self.code;
        out[2..4].fill(0);
        out[4..8].copy_from_slice(&self.rest.to_be_bytes());
        out[HEADER_LEN..].copy_from_slice(&self.invoking[..self.quoted_len()]);
        let value = checksum::finish(checksum::sum(0, out));
        out[2..4].copy_from_slice(&value.to_be_bytes());
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An IPv4 header (20) and 8 octets of UDP, the invoking datagram of the fixtures.
    const DATAGRAM: [u8; 28] = [
        0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 203, 0, 113, 2,
        198, 51, 100, 2, 0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00,
    ];

    #[test]
    fn fragmentation_needed_fixture() {
        let m = ErrorMessage::fragmentation_needed(1360, &DATAGRAM);
        let mut out = [0u8; 64];
        let n = m.emit(&mut out).unwrap();
        assert_eq!(n, 36);
        // Type 3, code 4, checksum, unused 0, next-hop MTU 1360 (0x0550). The checksum
        // 0x899a was computed separately (Python) over these octets.
        assert_eq!(&out[..8], &[3, 4, 0x89, 0x9a, 0, 0, 0x05, 0x50]);
        assert_eq!(&out[8..n], &DATAGRAM);
        assert_eq!(ErrorMessage::parse(&out[..n]).unwrap(), m);
    }

    #[test]
    fn quotes_at_most_what_fits_in_576_octets() {
        let big = vec![0x45u8; 2000];
        let m = ErrorMessage::host_unreachable(&big);
        assert_eq!(m.buffer_len(), 576 - 20);
        let mut out = vec![0u8; m.buffer_len()];
        m.emit(&mut out).unwrap();
        let parsed = ErrorMessage::parse(&out).unwrap();
        assert_eq!((parsed.msg_type, parsed.code), (3, 1));
        assert_eq!(parsed.invoking.len(), MAX_QUOTED);
        assert_eq!(m.emit(&mut [0u8; 10]), Err(Error::BufferTooSmall));
    }

    #[test]
    fn parse_refuses_what_is_not_an_error() {
        assert_eq!(ErrorMessage::parse(&[3, 1, 0]), Err(Error::Truncated));
        // An Echo Request (8) with a good checksum.
        let mut echo = [8u8, 0, 0, 0, 0, 1, 0, 1];
        let c = checksum::finish(checksum::sum(0, &echo));
        echo[2..4].copy_from_slice(&c.to_be_bytes());
        assert!(matches!(
            ErrorMessage::parse(&echo),
            Err(Error::Malformed(_))
        ));
        let mut bad = [0u8; 36];
        ErrorMessage::host_unreachable(&DATAGRAM)
            .emit(&mut bad)
            .unwrap();
        bad[9] ^= 1;
        assert_eq!(ErrorMessage::parse(&bad), Err(Error::BadChecksum));
        for t in [3, 4, 5, 11, 12] {
            assert!(is_error(t));
        }
        for t in [0, 8, 13, 14] {
            assert!(!is_error(t));
        }
    }
}
