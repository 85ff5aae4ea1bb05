//! ARP for IPv4 over Ethernet (RFC 826), for the one message a home agent sends: the
//! gratuitous ARP that moves an IPv4 address to its interface when a standby takes over
//! (issue 13; RFC 5944 §4.6 uses the same message for a home agent's proxy ARP). Without
//! it, neighbours keep the dead member's link-layer address until their entry goes stale.
//!
//! ```text
//!  0               1               2               3
//! +-------------------------------+-------------------------------+
//! |  Hardware type (1 Ethernet)   |  Protocol type (0x0800 IPv4)  |
//! +---------------+---------------+-------------------------------+
//! | HLEN (6)      | PLEN (4)      |  Operation (1 request 2 reply)|
//! +---------------+---------------+-------------------------------+
//! | Sender hardware address (6) | Sender protocol address (4)     |
//! | Target hardware address (6) | Target protocol address (4)     |
//! +---------------------------------------------------------------+
//! ```
//! A gratuitous ARP is a request whose sender and target protocol addresses are both the
//! address announced (RFC 5227 §3 calls it an ARP Announcement), broadcast.

use std::net::Ipv4Addr;

use crate::{Error, Result};

/// Length of an Ethernet/IPv4 ARP packet.
pub const LEN: usize = 28;
/// The EtherType of ARP.
pub const ETHERTYPE: u16 = 0x0806;

/// An ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// 1.
    Request,
    /// 2.
    Reply,
    /// Any other value, kept.
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            v => Operation::Unknown(v),
        }
    }
}

impl From<Operation> for u16 {
    fn from(o: Operation) -> u16 {
        match o {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(v) => v,
        }
    }
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: Operation,
    /// Sender hardware address.
    pub sender_mac: [u8; 6],
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: [u8; 6],
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// The announcement of `ip` at `mac` (RFC 5227 §3).
    pub fn announcement(mac: [u8; 6], ip: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            operation: Operation::Request,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: [0; 6],
            target_ip: ip,
        }
    }

    /// Parses an ARP packet (after the Ethernet header).
    ///
    /// # Errors
    /// `Truncated` under [`LEN`] octets; `Malformed` for another hardware or protocol
    /// type or length.
    pub fn parse(bytes: &[u8]) -> Result<ArpRepr> {
        let b = bytes.get(..LEN).ok_or(Error::Truncated)?;
        if b[0..2] != [0, 1] || b[2..4] != [0x08, 0x00] || b[4] != 6 || b[5] != 4 {
            return Err(Error::Malformed("ARP hardware or protocol type"));
        }
        let mac = |o: usize| {
            let mut m = [0u8; 6];
            m.copy_from_slice(&b[o..o + 6]);
            m
        };
        let ip = |o: usize| Ipv4Addr::new(b[o], b[o + 1], b[o + 2], b[o + 3]);
        Ok(ArpRepr {
            operation: Operation::from(u16::from_be_bytes([b[6], b[7]])),
            sender_mac: mac(8),
            sender_ip: ip(14),
            target_mac: mac(18),
            target_ip: ip(24),
        })
    }

    /// Length of the emitted packet.
    pub fn buffer_len(&self) -> usize {
        LEN
    }

    /// Writes the packet into the first [`LEN`] octets of `out`; returns that length.
    ///
    /// # Errors
    /// `BufferTooSmall`.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize> {
        let b = out.get_mut(..LEN).ok_or(Error::BufferTooSmall)?;
        b[0..6].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
        b[6..8].copy_from_slice(&u16::from(self.operation).to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_mac);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac);
        b[24..28].copy_from_slice(&self.target_ip.octets());
        Ok(LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The announcement of 203.0.113.1 at 02:00:5e:00:53:01, as tcpdump -x shows it
    // after the Ethernet header.
    const FIXTURE: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x5e, 0x00, 0x53, 0x01, 203, 0,
        113, 1, 0, 0, 0, 0, 0, 0, 203, 0, 113, 1,
    ];

    #[test]
    fn announcement_fixture() {
        let a = ArpRepr::announcement([2, 0, 0x5e, 0, 0x53, 1], Ipv4Addr::new(203, 0, 113, 1));
        let mut out = [0u8; 40];
        assert_eq!(a.emit(&mut out), Ok(28));
        assert_eq!(out[..28], FIXTURE);
        assert_eq!(ArpRepr::parse(&FIXTURE), Ok(a));
        assert_eq!(a.emit(&mut [0u8; 27]), Err(Error::BufferTooSmall));
    }

    #[test]
    fn other_operations_are_kept_and_other_types_refused() {
        let mut b = FIXTURE;
        b[7] = 9;
        let r = ArpRepr::parse(&b).unwrap();
        assert_eq!(r.operation, Operation::Unknown(9));
        assert_eq!(u16::from(r.operation), 9);
        b[7] = 2;
        assert_eq!(ArpRepr::parse(&b).unwrap().operation, Operation::Reply);
        for (i, v) in [(1, 6), (2, 0x86), (4, 8), (5, 16)] {
            let mut b = FIXTURE;
            b[i] = v;
            assert!(
                matches!(ArpRepr::parse(&b), Err(Error::Malformed(_))),
                "{i}"
            );
        }
        for n in 0..28 {
            assert_eq!(ArpRepr::parse(&FIXTURE[..n]), Err(Error::Truncated));
        }
    }
}
