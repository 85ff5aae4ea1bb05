//! The IPv4 header (RFC 791), needed for DSMIPv6 outer headers (RFC 5555 §5.1) and IPv4
//! payloads in the tunnel.

use std::net::Ipv4Addr;

use crate::{Error, Result, checksum};

/// Length of an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;

/// Don't Fragment, in the 16-bit flags/fragment-offset word.
const FLAG_DF: u16 = 0x4000;
/// More Fragments.
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

pub(crate) mod field {
    use core::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// A view over an IPv4 header and whatever follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Header<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Header { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures `20 <= IHL*4 <= Total Length <= buffer length`. Bytes after Total Length
    /// (link-layer padding) are tolerated and ignored by [`payload`](Self::payload).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < IPV4_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        let total_len = usize::from(self.total_len());
        if header_len < IPV4_HEADER_LEN {
            return Err(Error::BadLength);
        }
        if header_len > len {
            return Err(Error::Truncated);
        }
        if total_len < header_len || total_len > len {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// IP version: 4 for a valid header.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in octets (IHL * 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated Services Code Point (RFC 2474).
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// ECN field (RFC 3168).
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total Length: header plus payload.
    pub fn total_len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::TOTAL_LEN];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::IDENT];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn flags_frag(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::FLAGS_FRAG];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// Fragment Offset in 8-octet units.
    pub fn frag_offset(&self) -> u16 {
        self.flags_frag() & FRAG_OFFSET_MASK
    }

    /// Whether this is a fragment (MF set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// Time to Live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header Checksum as stored.
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Whether the header (options included) sums to zero.
    pub fn verify_checksum(&self) -> bool {
        checksum::finish(checksum::sum(0, &self.buffer.as_ref()[..self.header_len()])) == 0
    }

    /// The payload, between the header (options skipped) and Total Length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Header<T> {
    /// Sets version and header length (octets, a multiple of 4).
    pub fn set_version_and_header_len(&mut self, version: u8, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = (version << 4) | ((header_len / 4) as u8 & 0x0f);
    }

    /// Sets DSCP and ECN.
    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = (dscp << 2) | (ecn & 0x03);
    }

    /// Sets Total Length.
    pub fn set_total_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::TOTAL_LEN].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets Identification.
    pub fn set_ident(&mut self, ident: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&ident.to_be_bytes());
    }

    /// Sets the flags and the fragment offset (8-octet units) together.
    pub fn set_flags_frag(&mut self, dont_frag: bool, more_frags: bool, frag_offset: u16) {
        let mut w = frag_offset & FRAG_OFFSET_MASK;
        if dont_frag {
            w |= FLAG_DF;
        }
        if more_frags {
            w |= FLAG_MF;
        }
        self.buffer.as_mut()[field::FLAGS_FRAG].copy_from_slice(&w.to_be_bytes());
    }

    /// Sets Time to Live.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets Protocol.
    pub fn set_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    /// Stores a checksum value as is.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Computes and stores the header checksum over the header length (options included).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = checksum::ipv4_header(&self.buffer.as_ref()[..self.header_len()]);
        self.set_checksum(value);
    }
}

/// The meaning of an IPv4 header. Options are skipped on parse and never emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol.
    pub protocol: u8,
    /// Payload length in octets (Total Length minus the header, options included).
    pub payload_len: u16,
    /// Time to Live.
    pub ttl: u8,
    /// DSCP (6 bits).
    pub dscp: u8,
    /// ECN (2 bits).
    pub ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// More Fragments.
    pub more_frags: bool,
    /// Fragment Offset in 8-octet units.
    pub frag_offset: u16,
}

impl Ipv4Repr {
    /// Parses a header: version 4, consistent lengths, checksum verified.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Header<T>) -> Result<Ipv4Repr> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::Malformed("IPv4 version"));
        }
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: packet.total_len() - packet.header_len() as u16,
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }

    /// Length of the header this emits (no options).
    pub const fn buffer_len(&self) -> usize {
        IPV4_HEADER_LEN
    }

    /// Writes a 20-octet header with its checksum; the payload is left alone.
    ///
    /// # Errors
    /// [`Error::BadLength`] if `payload_len + 20` does not fit Total Length.
    ///
    /// # Panics
    /// If the buffer is shorter than 20 octets.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Header<T>) -> Result<()> {
        let total = u16::try_from(IPV4_HEADER_LEN + usize::from(self.payload_len))
            .map_err(|_| Error::BadLength)?;
        packet.set_version_and_header_len(4, IPV4_HEADER_LEN);
        packet.set_dscp_ecn(self.dscp, self.ecn);
        packet.set_total_len(total);
        packet.set_ident(self.ident);
        packet.set_flags_frag(self.dont_frag, self.more_frags, self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 45 00 0073 0000 4000 40 11 b861 c0a80001 c0a800c7: the well-known header from
    // crate::checksum's tests (DF, TTL 64, UDP, 192.168.0.1 -> 192.168.0.199), total 0x73.
    static HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn packet() -> Vec<u8> {
        let mut v = HEADER.to_vec();
        v.resize(0x73, 0x11);
        v
    }

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::new(192, 168, 0, 1),
            dst_addr: Ipv4Addr::new(192, 168, 0, 199),
            protocol: 17,
            payload_len: 0x73 - 20,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    }

    #[test]
    fn deconstruct() {
        let buf = packet();
        let p = Ipv4Header::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.dscp(), 0);
        assert_eq!(p.ecn(), 0);
        assert_eq!(p.total_len(), 0x73);
        assert_eq!(p.ident(), 0);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.checksum(), 0xb861);
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 0x73 - 20);
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 20];
        let mut p = Ipv4Header::new_unchecked(&mut buf[..]);
        p.set_version_and_header_len(4, 20);
        p.set_dscp_ecn(0, 0);
        p.set_total_len(0x73);
        p.set_ident(0);
        p.set_flags_frag(true, false, 0);
        p.set_ttl(64);
        p.set_protocol(17);
        p.set_src_addr(repr().src_addr);
        p.set_dst_addr(repr().dst_addr);
        p.fill_checksum();
        assert_eq!(buf, HEADER);
    }

    #[test]
    fn parse() {
        let buf = packet();
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Header::new_unchecked(&buf[..])).unwrap(),
            repr()
        );
    }

    #[test]
    fn emit() {
        let mut buf = [0xa5u8; 20];
        repr()
            .emit(&mut Ipv4Header::new_unchecked(&mut buf[..]))
            .unwrap();
        assert_eq!(buf, HEADER);
    }

    #[test]
    fn options_are_skipped() {
        // IHL 6 with one NOP/EOL option word; payload starts at 24.
        let mut buf = [0u8; 28];
        buf[..20].copy_from_slice(&HEADER);
        buf[0] = 0x46;
        buf[2..4].copy_from_slice(&28u16.to_be_bytes());
        buf[20..24].copy_from_slice(&[1, 1, 1, 0]);
        buf[24..].copy_from_slice(&[9, 9, 9, 9]);
        let mut p = Ipv4Header::new_unchecked(&mut buf[..]);
        p.fill_checksum();
        let p = Ipv4Header::new_checked(&buf[..]).unwrap();
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(r.payload_len, 4);
        assert_eq!(p.payload(), &[9, 9, 9, 9]);
    }

    #[test]
    fn bad_input() {
        let buf = packet();
        assert_eq!(
            Ipv4Header::new_checked(&buf[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv4Header::new_checked(&buf[..0x72]).unwrap_err(),
            Error::BadLength
        );
        let mut b = packet();
        b[0] = 0x44; // IHL 4 < 5
        assert_eq!(
            Ipv4Header::new_checked(&b[..]).unwrap_err(),
            Error::BadLength
        );
        let mut b = packet();
        b[0] = 0x4f; // 60-octet header in a 0x73 buffer is fine; in 40 octets it is not
        assert_eq!(
            Ipv4Header::new_checked(&b[..40]).unwrap_err(),
            Error::Truncated
        );
        let mut b = packet();
        b[2..4].copy_from_slice(&10u16.to_be_bytes()); // total < header
        assert_eq!(
            Ipv4Header::new_checked(&b[..]).unwrap_err(),
            Error::BadLength
        );
        let mut b = packet();
        b[8] = 63; // checksum no longer matches
        let p = Ipv4Header::new_checked(&b[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p).unwrap_err(), Error::BadChecksum);
        let mut b = packet();
        b[0] = 0x65;
        let p = Ipv4Header::new_checked(&b[..]).unwrap();
        assert_eq!(
            Ipv4Repr::parse(&p).unwrap_err(),
            Error::Malformed("IPv4 version")
        );
        let big = Ipv4Repr {
            payload_len: u16::MAX,
            ..repr()
        };
        let mut out = [0u8; 20];
        assert_eq!(
            big.emit(&mut Ipv4Header::new_unchecked(&mut out[..])),
            Err(Error::BadLength)
        );
    }
}
