//! The type 2 routing header (RFC 6275 §6.4) and enough of the generic routing header
//! (RFC 8200 §4.4) to step over other types.

use std::net::Ipv6Addr;

use super::ipv6::addr_at;
use super::options::ExtHeader;
use crate::{Error, Result};

/// Routing Type of the Mobile IPv6 routing header.
pub const ROUTING_TYPE_2: u8 = 2;
/// Length of a type 2 routing header.
pub const RH2_HEADER_LEN: usize = 24;

mod field {
    use core::ops::Range;

    pub const NEXT_HEADER: usize = 0;
    pub const HDR_EXT_LEN: usize = 1;
    pub const ROUTING_TYPE: usize = 2;
    pub const SEGMENTS_LEFT: usize = 3;
    pub const RESERVED: Range<usize> = 4..8;
    pub const HOME_ADDRESS: Range<usize> = 8..24;
}

/// A view over a routing header of any type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RoutingHeader<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        RoutingHeader { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Ensures the four fixed octets and the whole announced length are present.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        if buf.len() < 4 || buf.len() < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Next Header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hdr Ext Len (8-octet units after the first 8).
    pub fn header_len_field(&self) -> u8 {
        self.buffer.as_ref()[field::HDR_EXT_LEN]
    }

    /// Length of the whole header in octets.
    pub fn header_len(&self) -> usize {
        ExtHeader::new_unchecked(self.buffer.as_ref()).header_len()
    }

    /// Routing Type.
    pub fn routing_type(&self) -> u8 {
        self.buffer.as_ref()[field::ROUTING_TYPE]
    }

    /// Segments Left.
    pub fn segments_left(&self) -> u8 {
        self.buffer.as_ref()[field::SEGMENTS_LEFT]
    }

    /// The home address of a type 2 header (needs a 24-octet buffer).
    pub fn home_address(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), field::HOME_ADDRESS.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RoutingHeader<T> {
    /// Sets Next Header.
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = nh;
    }

    /// Sets Hdr Ext Len.
    pub fn set_header_len_field(&mut self, len: u8) {
        self.buffer.as_mut()[field::HDR_EXT_LEN] = len;
    }

    /// Sets Routing Type.
    pub fn set_routing_type(&mut self, t: u8) {
        self.buffer.as_mut()[field::ROUTING_TYPE] = t;
    }

    /// Sets Segments Left.
    pub fn set_segments_left(&mut self, n: u8) {
        self.buffer.as_mut()[field::SEGMENTS_LEFT] = n;
    }

    /// Zeroes the 32-bit Reserved field.
    pub fn clear_reserved(&mut self) {
        self.buffer.as_mut()[field::RESERVED].fill(0);
    }

    /// Sets the home address of a type 2 header.
    pub fn set_home_address(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::HOME_ADDRESS].copy_from_slice(&addr.octets());
    }
}

/// A routing header: the type 2 header Mobile IPv6 uses, or any other type, which is only
/// stepped over (RFC 8200 §4.4 processing of other types is the kernel's business).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoutingRepr {
    /// Type 2 (RFC 6275 §6.4): `NH | 2 | 2 | SegLeft | reserved | HoA`.
    Type2 {
        /// Next Header.
        next_header: u8,
        /// Segments Left: 1 as sent; 0 once the home address has been swapped in.
        segments_left: u8,
        /// The home address.
        home_address: Ipv6Addr,
    },
    /// Any other routing type.
    Other {
        /// Next Header.
        next_header: u8,
        /// Routing Type.
        routing_type: u8,
        /// Segments Left.
        segments_left: u8,
        /// Whole header length in octets.
        header_len: usize,
    },
}

impl RoutingRepr {
    /// A type 2 header as a mobile node's peer sends it (Segments Left 1).
    pub const fn type2(next_header: u8, home_address: Ipv6Addr) -> Self {
        RoutingRepr::Type2 {
            next_header,
            segments_left: 1,
            home_address,
        }
    }

    /// Parses a routing header. Type 2 must have Hdr Ext Len 2 and Segments Left 0 or 1
    /// (it holds exactly one address, RFC 6275 §6.4); the reserved field is ignored.
    pub fn parse<T: AsRef<[u8]>>(header: &RoutingHeader<T>) -> Result<Self> {
        header.check_len()?;
        if header.routing_type() != ROUTING_TYPE_2 {
            return Ok(RoutingRepr::Other {
                next_header: header.next_header(),
                routing_type: header.routing_type(),
                segments_left: header.segments_left(),
                header_len: header.header_len(),
            });
        }
        if header.header_len_field() != 2 {
            return Err(Error::Malformed("type 2 routing header length"));
        }
        if header.segments_left() > 1 {
            return Err(Error::Malformed("type 2 routing header segments left"));
        }
        Ok(RoutingRepr::Type2 {
            next_header: header.next_header(),
            segments_left: header.segments_left(),
            home_address: header.home_address(),
        })
    }

    /// Next Header.
    pub const fn next_header(&self) -> u8 {
        match *self {
            RoutingRepr::Type2 { next_header, .. } | RoutingRepr::Other { next_header, .. } => {
                next_header
            }
        }
    }

    /// Header length: 24 for type 2.
    pub const fn buffer_len(&self) -> usize {
        match *self {
            RoutingRepr::Type2 { .. } => RH2_HEADER_LEN,
            RoutingRepr::Other { header_len, .. } => header_len,
        }
    }

    /// Writes a type 2 header.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] for a short buffer; `Malformed` for `Other`, whose
    /// type-specific data this crate does not keep.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let RoutingRepr::Type2 {
            next_header,
            segments_left,
            home_address,
        } = *self
        else {
            return Err(Error::Malformed("only type 2 routing headers are emitted"));
        };
        let out = buf.get_mut(..RH2_HEADER_LEN).ok_or(Error::BufferTooSmall)?;
        let mut h = RoutingHeader::new_unchecked(out);
        h.set_next_header(next_header);
        h.set_header_len_field(2);
        h.set_routing_type(ROUTING_TYPE_2);
        h.set_segments_left(segments_left);
        h.clear_reserved();
        h.set_home_address(home_address);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // NH 135, Hdr Ext Len 2, type 2, Segments Left 1, reserved, HoA 2001:db8:1::100.
    static RH2: [u8; 24] = [
        0x87, 0x02, 0x02, 0x01, 0, 0, 0, 0, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00,
    ];

    fn hoa() -> Ipv6Addr {
        "2001:db8:1::100".parse().unwrap()
    }

    #[test]
    fn deconstruct() {
        let h = RoutingHeader::new_checked(&RH2[..]).unwrap();
        assert_eq!(h.next_header(), 135);
        assert_eq!(h.header_len_field(), 2);
        assert_eq!(h.header_len(), 24);
        assert_eq!(h.routing_type(), 2);
        assert_eq!(h.segments_left(), 1);
        assert_eq!(h.home_address(), hoa());
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 24];
        let mut h = RoutingHeader::new_unchecked(&mut buf[..]);
        h.set_next_header(135);
        h.set_header_len_field(2);
        h.set_routing_type(2);
        h.set_segments_left(1);
        h.clear_reserved();
        h.set_home_address(hoa());
        assert_eq!(buf, RH2);
    }

    #[test]
    fn parse() {
        let h = RoutingHeader::new_checked(&RH2[..]).unwrap();
        assert_eq!(
            RoutingRepr::parse(&h).unwrap(),
            RoutingRepr::type2(135, hoa())
        );
        // Reserved octets are ignored on receipt.
        let mut b = RH2;
        b[4..8].copy_from_slice(&[1, 2, 3, 4]);
        let h = RoutingHeader::new_checked(&b[..]).unwrap();
        assert_eq!(
            RoutingRepr::parse(&h).unwrap(),
            RoutingRepr::type2(135, hoa())
        );
    }

    #[test]
    fn emit() {
        let mut buf = [0xa5u8; 24];
        RoutingRepr::type2(135, hoa()).emit(&mut buf).unwrap();
        assert_eq!(buf, RH2);
        let mut short = [0u8; 23];
        assert_eq!(
            RoutingRepr::type2(135, hoa()).emit(&mut short),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn other_types_are_generic() {
        // Type 0 with one address (deprecated, RFC 5095) and type 4 (SRH) shapes.
        let mut b = RH2;
        b[2] = 0;
        let h = RoutingHeader::new_checked(&b[..]).unwrap();
        let r = RoutingRepr::parse(&h).unwrap();
        assert_eq!(
            r,
            RoutingRepr::Other {
                next_header: 135,
                routing_type: 0,
                segments_left: 1,
                header_len: 24
            }
        );
        assert_eq!(r.buffer_len(), 24);
        assert!(r.emit(&mut [0u8; 24]).is_err());
        let b = [59u8, 0, 4, 0, 0, 0, 0, 0];
        let h = RoutingHeader::new_checked(&b[..]).unwrap();
        assert_eq!(RoutingRepr::parse(&h).unwrap().buffer_len(), 8);
    }

    #[test]
    fn bad_input() {
        assert_eq!(
            RoutingHeader::new_checked(&RH2[..23]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            RoutingHeader::new_checked(&RH2[..3]).unwrap_err(),
            Error::Truncated
        );
        let mut b = [0u8; 32];
        b[..24].copy_from_slice(&RH2);
        b[1] = 3;
        let h = RoutingHeader::new_checked(&b[..]).unwrap();
        assert_eq!(
            RoutingRepr::parse(&h).unwrap_err(),
            Error::Malformed("type 2 routing header length")
        );
        let mut b = RH2;
        b[3] = 2;
        let h = RoutingHeader::new_checked(&b[..]).unwrap();
        assert_eq!(
            RoutingRepr::parse(&h).unwrap_err(),
            Error::Malformed("type 2 routing header segments left")
        );
    }
}
