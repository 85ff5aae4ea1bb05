//! The UDP header (RFC 768): DSMIPv6's UDP encapsulation (RFC 5555 §4.1, in
//! [`crate::encap`]) and the DHCPv4 datagrams babymdd sends below the IP layer.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::{Error, IPPROTO_UDP, Result, checksum};

/// Length of a UDP header.
pub const UDP_HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// A view over a UDP header and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpHeader<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpHeader { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures `8 <= Length <= buffer length`. Octets after Length (IPv4 padding) are
    /// tolerated and ignored by [`payload`](Self::payload) and the checksum.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < UDP_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let udp_len = usize::from(self.len());
        if udp_len < UDP_HEADER_LEN || udp_len > len {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source Port.
    pub fn src_port(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::SRC_PORT];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Destination Port.
    pub fn dst_port(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::DST_PORT];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Length: header plus payload.
    pub fn len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Whether Length says there is no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= UDP_HEADER_LEN
    }

    /// Checksum as stored (0: none computed, allowed over IPv4 only).
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The datagram up to Length: header and payload.
    fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }

    /// The payload, up to Length.
    pub fn payload(&self) -> &[u8] {
        &self.datagram()[UDP_HEADER_LEN..]
    }

    /// Whether the checksum verifies under the IPv4 pseudo-header; a zero checksum (none
    /// sent, RFC 768) passes.
    pub fn verify_checksum_v4(&self, src: &Ipv4Addr, dst: &Ipv4Addr) -> bool {
        self.checksum() == 0
            || checksum::finish(checksum::sum(
                checksum::pseudo_header_v4(src, dst, IPPROTO_UDP, self.len()),
                self.datagram(),
            )) == 0
    }

    /// Whether the checksum verifies under the IPv6 pseudo-header; zero is not allowed
    /// over IPv6 (RFC 8200 §8.1).
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        self.checksum() != 0 && checksum::v6(src, dst, IPPROTO_UDP, self.datagram()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpHeader<T> {
    /// Sets Source Port.
    pub fn set_src_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&port.to_be_bytes());
    }

    /// Sets Destination Port.
    pub fn set_dst_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&port.to_be_bytes());
    }

    /// Sets Length.
    pub fn set_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    /// Stores a checksum value as is.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Computes and stores the checksum over header and payload (up to Length) under the
    /// IPv4 pseudo-header. A computed zero is sent as all ones (RFC 768: zero means none).
    pub fn fill_checksum_v4(&mut self, src: &Ipv4Addr, dst: &Ipv4Addr) {
        self.set_checksum(0);
        let acc = checksum::pseudo_header_v4(src, dst, IPPROTO_UDP, self.len());
        let value = checksum::finish(checksum::sum(acc, self.datagram()));
        self.set_checksum(if value == 0 { 0xffff } else { value });
    }

    /// As [`fill_checksum_v4`](Self::fill_checksum_v4) under the IPv6 pseudo-header.
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let value = checksum::v6(src, dst, IPPROTO_UDP, self.datagram());
        self.set_checksum(if value == 0 { 0xffff } else { value });
    }
}

/// The meaning of a UDP header. The checksum is not part of it: verify and fill it with
/// the view, which knows the addresses and the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source Port.
    pub src_port: u16,
    /// Destination Port.
    pub dst_port: u16,
    /// Payload length in octets (Length minus the header).
    pub payload_len: u16,
}

impl UdpRepr {
    /// Parses a header ([`UdpHeader::check_len`]); the checksum is the caller's to verify.
    pub fn parse<T: AsRef<[u8]>>(packet: &UdpHeader<T>) -> Result<UdpRepr> {
        packet.check_len()?;
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: packet.len() - UDP_HEADER_LEN as u16,
        })
    }

    /// Length of the header.
    pub const fn buffer_len(&self) -> usize {
        UDP_HEADER_LEN
    }

    /// Writes the header with a zero checksum; the payload is left alone.
    ///
    /// # Errors
    /// [`Error::BadLength`] if `payload_len + 8` does not fit Length;
    /// [`Error::BufferTooSmall`] for a buffer shorter than the header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut UdpHeader<T>) -> Result<()> {
        let len = self
            .payload_len
            .checked_add(UDP_HEADER_LEN as u16)
            .ok_or(Error::BadLength)?;
        if packet.buffer.as_ref().len() < UDP_HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        packet.set_checksum(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    // 5000 -> 6000, length 12, payload "ping", checksum for 192.0.2.1 -> 192.0.2.2
    // (computed independently: RFC 768 sum in Python).
    static DATAGRAM: [u8; 12] = [
        0x13, 0x88, 0x17, 0x70, 0x00, 0x0c, 0x72, 0x09, b'p', b'i', b'n', b'g',
    ];

    fn repr() -> UdpRepr {
        UdpRepr {
            src_port: 5000,
            dst_port: 6000,
            payload_len: 4,
        }
    }

    #[test]
    fn deconstruct() {
        let p = UdpHeader::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (5000, 6000, 12));
        assert_eq!(p.checksum(), 0x7209);
        assert_eq!(p.payload(), b"ping");
        assert!(!p.is_empty());
        assert!(p.verify_checksum_v4(&SRC, &DST));
        assert!(!p.verify_checksum_v4(&DST, &DST));
        assert_eq!(UdpRepr::parse(&p).unwrap(), repr());
    }

    #[test]
    fn emit_and_checksum() {
        let mut buf = [0xa5u8; 12];
        buf[8..].copy_from_slice(b"ping");
        let mut p = UdpHeader::new_unchecked(&mut buf[..]);
        repr().emit(&mut p).unwrap();
        assert_eq!(p.checksum(), 0);
        p.fill_checksum_v4(&SRC, &DST);
        assert_eq!(buf, DATAGRAM);
        // Over IPv6 the same datagram gets its own checksum, and it verifies.
        let (s6, d6) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        let mut p = UdpHeader::new_unchecked(&mut buf[..]);
        p.fill_checksum_v6(&s6, &d6);
        assert!(p.verify_checksum_v6(&s6, &d6));
        p.set_checksum(0);
        assert!(
            !p.verify_checksum_v6(&s6, &d6),
            "zero is not allowed over IPv6"
        );
    }

    #[test]
    fn zero_checksum_is_sent_as_all_ones() {
        // A datagram whose sum comes out as zero: adjust the payload until it does.
        let mut buf = [0u8; 10];
        let mut p = UdpHeader::new_unchecked(&mut buf[..]);
        repr_of(2).emit(&mut p).unwrap();
        p.fill_checksum_v4(&SRC, &DST);
        let c = p.checksum();
        // Adding the checksum to the payload makes the complement sum 0xffff → 0.
        let mut buf2 = buf;
        buf2[8..10].copy_from_slice(&c.to_be_bytes());
        let mut p = UdpHeader::new_unchecked(&mut buf2[..]);
        p.fill_checksum_v4(&SRC, &DST);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum_v4(&SRC, &DST));
    }

    fn repr_of(payload_len: u16) -> UdpRepr {
        UdpRepr {
            payload_len,
            ..repr()
        }
    }

    #[test]
    fn bad_input() {
        assert_eq!(
            UdpHeader::new_checked(&DATAGRAM[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            UdpHeader::new_checked(&DATAGRAM[..11]).unwrap_err(),
            Error::BadLength
        );
        let mut b = DATAGRAM;
        b[5] = 7;
        assert_eq!(
            UdpHeader::new_checked(&b[..]).unwrap_err(),
            Error::BadLength
        );
        // Trailing octets after Length are not the datagram's.
        let mut long = DATAGRAM.to_vec();
        long.extend_from_slice(&[0xee; 6]);
        let p = UdpHeader::new_checked(&long[..]).unwrap();
        assert_eq!(p.payload(), b"ping");
        assert!(p.verify_checksum_v4(&SRC, &DST));
        let mut out = [0u8; 7];
        assert_eq!(
            repr().emit(&mut UdpHeader::new_unchecked(&mut out[..])),
            Err(Error::BufferTooSmall)
        );
        let mut out = [0u8; 8];
        assert_eq!(
            repr_of(u16::MAX).emit(&mut UdpHeader::new_unchecked(&mut out[..])),
            Err(Error::BadLength)
        );
    }
}
