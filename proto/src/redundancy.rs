//! The heartbeat home agents serving one home agent address send each other on the home
//! link (issue 13). Our own format: no RFC defines home agent redundancy on the wire (RFC
//! 5142 moves mobile nodes between home agents, it does not elect them).
//!
//! The active home agent multicasts one every advertisement interval, in UDP, with hop
//! limit 255 (read as proof of an on-link sender, as RFC 4861 §7.1.1 does for ND). A
//! standby that hears none for the dead interval takes the leadership through the store.
//! The store decides; the heartbeat only tells a standby that the active lives, so a forged
//! one can at worst delay a take-over, never cause one.
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+-------------------------------+
//! |  Version (1)  |     Type      |  Advertisement interval (ms)  |
//! +---------------+---------------+-------------------------------+
//! |                     Epoch (64 bits)                           |
//! |                                                               |
//! +---------------------------------------------------------------+
//! |                 Home Agent Address (128 bits)                 |
//! |                              ...                              |
//! +---------------+-----------------------------------------------+
//! |   Name length |  Member name (UTF-8, 0-64 octets) ...
//! +---------------+----------------------------
//! ```
//! The epoch is the store's revision of the leadership key when this member took it: a
//! later leader always has a larger one. Octets after the name are ignored (a later
//! version may add fields).

use std::net::Ipv6Addr;

use crate::{Error, Result};

/// Version 1.
pub const VERSION: u8 = 1;
/// Octets before the name.
pub const FIXED_LEN: usize = 29;
/// Longest member name.
pub const MAX_NAME_LEN: usize = 64;
/// The UDP port heartbeats are sent to and from.
pub const PORT: u16 = 4196;
/// The group they are sent to: a transient link-scope group (RFC 4291 §2.7, T flag set),
/// which needs no assignment for traffic among our own home agents.
pub const GROUP: Ipv6Addr = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0x6e65, 0x6d6f);

/// A heartbeat's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeartbeatType {
    /// 1: the sender is the active home agent of the address.
    Advertisement,
    /// Any other value, kept.
    Unknown(u8),
}

impl From<u8> for HeartbeatType {
    fn from(v: u8) -> Self {
        match v {
            1 => HeartbeatType::Advertisement,
            v => HeartbeatType::Unknown(v),
        }
    }
}

impl From<HeartbeatType> for u8 {
    fn from(t: HeartbeatType) -> u8 {
        match t {
            HeartbeatType::Advertisement => 1,
            HeartbeatType::Unknown(v) => v,
        }
    }
}

/// A heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeartbeatRepr<'a> {
    /// Its type.
    pub kind: HeartbeatType,
    /// How often the sender sends them, milliseconds.
    pub interval_ms: u16,
    /// The sender's leadership epoch.
    pub epoch: u64,
    /// The home agent address it serves.
    pub home_agent: Ipv6Addr,
    /// The sender's member name (for logs).
    pub name: &'a str,
}

impl<'a> HeartbeatRepr<'a> {
    /// Parses a heartbeat.
    ///
    /// # Errors
    /// `Truncated` when the buffer ends early, `Malformed` for another version, a name that
    /// is not UTF-8 or longer than [`MAX_NAME_LEN`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let fixed = bytes.get(..FIXED_LEN).ok_or(Error::Truncated)?;
        if fixed[0] != VERSION {
            return Err(Error::Malformed("heartbeat version"));
        }
        let name_len = usize::from(fixed[28]);
        if name_len > MAX_NAME_LEN {
            return Err(Error::Malformed("heartbeat name length"));
        }
        let name = bytes
            .get(FIXED_LEN..FIXED_LEN + name_len)
            .ok_or(Error::Truncated)?;
        let name = std::str::from_utf8(name).map_err(|_| Error::Malformed("heartbeat name"))?;
        let mut epoch = [0u8; 8];
        epoch.copy_from_slice(&fixed[4..12]);
        let mut ha = [0u8; 16];
        ha.copy_from_slice(&fixed[12..28]);
        Ok(HeartbeatRepr {
            kind: HeartbeatType::from(fixed[1]),
            interval_ms: u16::from_be_bytes([fixed[2], fixed[3]]),
            epoch: u64::from_be_bytes(epoch),
            home_agent: Ipv6Addr::from(ha),
            name,
        })
    }

    /// The name as emitted: cut to [`MAX_NAME_LEN`] octets on a character boundary.
    fn emitted_name(&self) -> &str {
        let mut end = self.name.len().min(MAX_NAME_LEN);
        while !self.name.is_char_boundary(end) {
            end -= 1;
        }
        &self.name[..end]
    }

    /// Length of the emitted heartbeat.
    pub fn buffer_len(&self) -> usize {
        FIXED_LEN + self.emitted_name().len()
    }

    /// Writes the heartbeat into the first [`buffer_len`](Self::buffer_len) octets of
    /// `out`; returns that length.
    ///
    /// # Errors
    /// `BufferTooSmall`.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let name = self.emitted_name();
        out[0] = VERSION;
        out[1] = u8::from(self.kind);
        out[2..4].copy_from_slice(&self.interval_ms.to_be_bytes());
        out[4..12].copy_from_slice(&self.epoch.to_be_bytes());
        out[12..28].copy_from_slice(&self.home_agent.octets());
        out[28] = name.len() as u8;
        out[FIXED_LEN..].copy_from_slice(name.as_bytes());
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: [u8; 32] = [
        1, 1, 0, 50, // version, advertisement, 50 ms
        0, 0, 0, 0, 0, 0, 0x01, 0x2c, // epoch 300
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // 2001:db8:1::1
        3, b'h', b'a', b'1',
    ];

    fn repr() -> HeartbeatRepr<'static> {
        HeartbeatRepr {
            kind: HeartbeatType::Advertisement,
            interval_ms: 50,
            epoch: 300,
            home_agent: "2001:db8:1::1".parse().unwrap(),
            name: "ha1",
        }
    }

    #[test]
    fn fixture_round_trips() {
        let r = repr();
        assert_eq!(r.buffer_len(), FIXTURE.len());
        let mut out = [0u8; 64];
        let n = r.emit(&mut out).unwrap();
        assert_eq!(&out[..n], &FIXTURE);
        assert_eq!(HeartbeatRepr::parse(&FIXTURE).unwrap(), r);
        assert_eq!(r.emit(&mut [0u8; 31]), Err(Error::BufferTooSmall));
    }

    #[test]
    fn unknown_types_are_kept_and_trailing_octets_ignored() {
        let mut b = FIXTURE.to_vec();
        b[1] = 9;
        b.extend_from_slice(&[0xaa; 5]);
        let r = HeartbeatRepr::parse(&b).unwrap();
        assert_eq!(r.kind, HeartbeatType::Unknown(9));
        assert_eq!(u8::from(r.kind), 9);
        assert_eq!(r.name, "ha1");
    }

    #[test]
    fn malformed_heartbeats_are_refused() {
        for n in 0..FIXTURE.len() {
            assert_eq!(
                HeartbeatRepr::parse(&FIXTURE[..n]),
                Err(Error::Truncated),
                "{n}"
            );
        }
        let mut b = FIXTURE;
        b[0] = 2;
        assert!(matches!(HeartbeatRepr::parse(&b), Err(Error::Malformed(_))));
        let mut b = FIXTURE;
        b[29] = 0xff;
        assert!(matches!(HeartbeatRepr::parse(&b), Err(Error::Malformed(_))));
        let mut b = FIXTURE.to_vec();
        b[28] = 65;
        b.resize(FIXED_LEN + 65, b'x');
        assert!(matches!(HeartbeatRepr::parse(&b), Err(Error::Malformed(_))));
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let name = "é".repeat(40); // 80 octets
        let r = HeartbeatRepr {
            name: &name,
            ..repr()
        };
        assert_eq!(r.buffer_len(), FIXED_LEN + 64);
        let mut out = [0u8; 128];
        let n = r.emit(&mut out).unwrap();
        let back = HeartbeatRepr::parse(&out[..n]).unwrap();
        assert_eq!(back.name, "é".repeat(32));
    }
}
