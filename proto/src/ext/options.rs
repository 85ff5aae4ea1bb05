//! Hop-by-Hop / Destination Options headers (RFC 8200 §4.2-4.6) and the Home Address
//! destination option (RFC 6275 §6.3).

use std::net::Ipv6Addr;

use super::ipv6::addr_at;
use crate::{Error, Result};

/// Option type of Pad1 (a single octet, no length).
pub const OPT_PAD1: u8 = 0;
/// Option type of PadN.
pub const OPT_PADN: u8 = 1;
/// Option type of the Home Address option (RFC 6275 §6.3).
pub const OPT_HOME_ADDRESS: u8 = 201;
/// Option Data Length of the Home Address option.
pub const HOME_ADDRESS_OPT_DATA_LEN: u8 = 16;
/// Length of the canonical Destination Options header carrying only a HAO.
pub const HAO_HEADER_LEN: usize = 24;

/// A view over any IPv6 extension header whose length is `(Hdr Ext Len + 1) * 8`: Hop-by-Hop
/// Options, Destination Options and Routing (RFC 8200 §4.3-4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ExtHeader<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        ExtHeader { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Ensures the first two octets and the whole announced length are present.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        if buf.len() < 2 || buf.len() < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Next Header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// Hdr Ext Len: length in 8-octet units, not counting the first 8 octets.
    pub fn header_len_field(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// Length of the whole header in octets.
    pub fn header_len(&self) -> usize {
        (usize::from(self.header_len_field()) + 1) * 8
    }

    /// Octets after Next Header and Hdr Ext Len: the options area of an options header.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[2..self.header_len()]
    }
}

/// What RFC 8200 §4.2 asks of a node that does not recognise an option: the two high-order
/// bits of the option type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnknownOptionAction {
    /// `00`: skip the option and go on.
    Skip,
    /// `01`: discard the packet.
    Discard,
    /// `10`: discard and send ICMPv6 Parameter Problem code 2, even to multicast.
    DiscardAndReport,
    /// `11`: discard and send Parameter Problem code 2 unless the destination is multicast.
    DiscardAndReportUnicast,
}

impl UnknownOptionAction {
    /// Action bits of an option type.
    pub const fn of(option_type: u8) -> Self {
        match option_type >> 6 {
            0 => UnknownOptionAction::Skip,
            1 => UnknownOptionAction::Discard,
            2 => UnknownOptionAction::DiscardAndReport,
            _ => UnknownOptionAction::DiscardAndReportUnicast,
        }
    }
}

/// One option of an options header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6OptionRepr<'a> {
    /// Pad1.
    Pad1,
    /// PadN with this many data octets.
    PadN(u8),
    /// Home Address option (RFC 6275 §6.3).
    HomeAddress(Ipv6Addr),
    /// Anything else, kept so the caller can apply [`UnknownOptionAction`].
    Unknown {
        /// Option Type.
        option_type: u8,
        /// Option Data.
        data: &'a [u8],
    },
}

/// Walks the TLV options of an options header area (`ExtHeader::data`). Yields
/// `(offset from the start of the extension header, option)` and stops after the first error.
#[derive(Debug, Clone)]
pub struct Ipv6OptionsIter<'a> {
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Ipv6OptionsIter<'a> {
    /// Iterates over `data`, the octets after Next Header and Hdr Ext Len.
    pub fn new(data: &'a [u8]) -> Self {
        Ipv6OptionsIter {
            data,
            pos: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for Ipv6OptionsIter<'a> {
    type Item = Result<(usize, Ipv6OptionRepr<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        // Offsets are reported from the start of the header, as ICMPv6 pointers count.
        let offset = self.pos + 2;
        let option_type = self.data[self.pos];
        if option_type == OPT_PAD1 {
            self.pos += 1;
            return Some(Ok((offset, Ipv6OptionRepr::Pad1)));
        }
        let Some(&len) = self.data.get(self.pos + 1) else {
            self.failed = true;
            return Some(Err(Error::Truncated));
        };
        let start = self.pos + 2;
        let end = start + usize::from(len);
        let Some(data) = self.data.get(start..end) else {
            self.failed = true;
            return Some(Err(Error::BadLength));
        };
        self.pos = end;
        let repr = match option_type {
            OPT_PADN => Ipv6OptionRepr::PadN(len),
            OPT_HOME_ADDRESS => {
                if len != HOME_ADDRESS_OPT_DATA_LEN {
                    self.failed = true;
                    return Some(Err(Error::Malformed("Home Address option length")));
                }
                Ipv6OptionRepr::HomeAddress(addr_at(data, 0))
            }
            _ => Ipv6OptionRepr::Unknown { option_type, data },
        };
        Some(Ok((offset, repr)))
    }
}

/// An option this crate does not know, found while parsing an options header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnknownOption {
    /// Option Type.
    pub option_type: u8,
    /// Offset of the option type octet from the start of the extension header (add the
    /// header's own offset for an ICMPv6 Parameter Problem pointer).
    pub offset: usize,
}

impl UnknownOption {
    /// What RFC 8200 §4.2 asks a receiver to do about it.
    pub const fn action(&self) -> UnknownOptionAction {
        UnknownOptionAction::of(self.option_type)
    }
}

/// A Destination Options header as far as Mobile IPv6 cares: its next header, the Home
/// Address option if any, and the first unknown option if any.
///
/// `emit` writes the canonical form and never unknown options: with a home address,
/// `NH | 2 | PadN(1, 2, 0, 0) | 201 | 16 | HoA` (24 octets, HAO type at 8n+6 as RFC 6275 §6.3
/// requires); without, an empty header padded with PadN (8 octets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestinationOptionsRepr {
    /// Next Header.
    pub next_header: u8,
    /// The address in the Home Address option.
    pub home_address: Option<Ipv6Addr>,
    /// First option that is neither padding nor a HAO (skipped on parse, never emitted).
    pub unknown: Option<UnknownOption>,
}

impl DestinationOptionsRepr {
    /// Parses any Destination (or Hop-by-Hop) Options header. More than one HAO is an
    /// error (RFC 6275 §6.3: at most one per IPv6 header).
    pub fn parse<T: AsRef<[u8]>>(header: &ExtHeader<T>) -> Result<Self> {
        header.check_len()?;
        let mut repr = DestinationOptionsRepr {
            next_header: header.next_header(),
            home_address: None,
            unknown: None,
        };
        for item in Ipv6OptionsIter::new(header.data()) {
            let (offset, option) = item?;
            match option {
                Ipv6OptionRepr::Pad1 | Ipv6OptionRepr::PadN(_) => {}
                Ipv6OptionRepr::HomeAddress(addr) => {
                    if repr.home_address.replace(addr).is_some() {
                        return Err(Error::Malformed("duplicate Home Address option"));
                    }
                }
                Ipv6OptionRepr::Unknown { option_type, .. } => {
                    repr.unknown.get_or_insert(UnknownOption {
                        option_type,
                        offset,
                    });
                }
            }
        }
        Ok(repr)
    }

    /// Length of the canonical header: 24 with a HAO, 8 without.
    pub const fn buffer_len(&self) -> usize {
        if self.home_address.is_some() {
            HAO_HEADER_LEN
        } else {
            8
        }
    }

    /// Writes the canonical header (see the type's documentation).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `buf` is shorter than `buffer_len()`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let out = buf
            .get_mut(..self.buffer_len())
            .ok_or(Error::BufferTooSmall)?;
        out[0] = self.next_header;
        match self.home_address {
            Some(hoa) => {
                out[1] = 2;
                out[2..6].copy_from_slice(&[OPT_PADN, 2, 0, 0]);
                out[6] = OPT_HOME_ADDRESS;
                out[7] = HOME_ADDRESS_OPT_DATA_LEN;
                out[8..24].copy_from_slice(&hoa.octets());
            }
            None => {
                out[1] = 0;
                out[2..8].copy_from_slice(&[OPT_PADN, 4, 0, 0, 0, 0]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Next header 135, Hdr Ext Len 2, PadN(2), HAO 2001:db8:1::100.
    static HAO_HEADER: [u8; 24] = [
        0x87, 0x02, 0x01, 0x02, 0x00, 0x00, 0xc9, 0x10, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00,
    ];

    fn hoa() -> Ipv6Addr {
        "2001:db8:1::100".parse().unwrap()
    }

    fn repr() -> DestinationOptionsRepr {
        DestinationOptionsRepr {
            next_header: 135,
            home_address: Some(hoa()),
            unknown: None,
        }
    }

    #[test]
    fn deconstruct() {
        let h = ExtHeader::new_checked(&HAO_HEADER[..]).unwrap();
        assert_eq!(h.next_header(), 135);
        assert_eq!(h.header_len_field(), 2);
        assert_eq!(h.header_len(), 24);
        let opts: Vec<_> = Ipv6OptionsIter::new(h.data())
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            opts,
            vec![
                (2, Ipv6OptionRepr::PadN(2)),
                (6, Ipv6OptionRepr::HomeAddress(hoa()))
            ]
        );
    }

    #[test]
    fn parse() {
        let h = ExtHeader::new_checked(&HAO_HEADER[..]).unwrap();
        assert_eq!(DestinationOptionsRepr::parse(&h).unwrap(), repr());
    }

    #[test]
    fn emit() {
        let mut buf = [0xa5u8; 24];
        repr().emit(&mut buf).unwrap();
        assert_eq!(buf, HAO_HEADER);
        let mut short = [0xa5u8; 23];
        assert_eq!(repr().emit(&mut short), Err(Error::BufferTooSmall));
    }

    #[test]
    fn emit_without_hao_round_trips() {
        let r = DestinationOptionsRepr {
            home_address: None,
            ..repr()
        };
        let mut buf = [0xa5u8; 8];
        r.emit(&mut buf).unwrap();
        assert_eq!(buf, [0x87, 0, 1, 4, 0, 0, 0, 0]);
        let h = ExtHeader::new_checked(&buf[..]).unwrap();
        assert_eq!(DestinationOptionsRepr::parse(&h).unwrap(), r);
    }

    #[test]
    fn other_layouts_parse() {
        // Pad1 x2, HAO at offset 4, PadN(0), an unknown option 0x1e (skip), a second unknown
        // 0xde, PadN(0): 32 octets, Hdr Ext Len 3.
        let mut b = vec![59, 3, 0, 0, 0xc9, 16];
        b.extend_from_slice(&hoa().octets());
        b.extend_from_slice(&[1, 0, 0x1e, 2, 0xaa, 0xbb, 0xde, 0, 1, 0]);
        assert_eq!(b.len(), 32);
        let h = ExtHeader::new_checked(&b[..]).unwrap();
        let r = DestinationOptionsRepr::parse(&h).unwrap();
        assert_eq!(r.next_header, 59);
        assert_eq!(r.home_address, Some(hoa()));
        let unknown = r.unknown.unwrap();
        assert_eq!(
            unknown,
            UnknownOption {
                option_type: 0x1e,
                offset: 24
            }
        );
        assert_eq!(unknown.action(), UnknownOptionAction::Skip);
        assert_eq!(
            UnknownOptionAction::of(0xde),
            UnknownOptionAction::DiscardAndReportUnicast
        );
        assert_eq!(UnknownOptionAction::of(0x40), UnknownOptionAction::Discard);
        assert_eq!(
            UnknownOptionAction::of(0x80),
            UnknownOptionAction::DiscardAndReport
        );
    }

    #[test]
    fn bad_input() {
        // Announced 24 octets, 16 present.
        assert_eq!(
            ExtHeader::new_checked(&HAO_HEADER[..16]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            ExtHeader::new_checked(&[0u8][..]).unwrap_err(),
            Error::Truncated
        );
        // HAO with length 15.
        let mut b = HAO_HEADER;
        b[7] = 15;
        let h = ExtHeader::new_checked(&b[..]).unwrap();
        assert_eq!(
            DestinationOptionsRepr::parse(&h).unwrap_err(),
            Error::Malformed("Home Address option length")
        );
        // HAO claiming 17 octets runs past the header.
        b[7] = 17;
        let h = ExtHeader::new_checked(&b[..]).unwrap();
        assert_eq!(
            DestinationOptionsRepr::parse(&h).unwrap_err(),
            Error::BadLength
        );
        // Option type in the last octet with no length octet.
        let b = [59u8, 0, 1, 3, 0, 0, 0, 0x1e];
        let h = ExtHeader::new_checked(&b[..]).unwrap();
        assert_eq!(
            DestinationOptionsRepr::parse(&h).unwrap_err(),
            Error::Truncated
        );
        // Two HAOs in one header.
        let mut b = vec![59, 5, 1, 2, 0, 0, 0xc9, 16];
        b.extend_from_slice(&hoa().octets());
        b.extend_from_slice(&[1, 2, 0, 0, 0xc9, 16]);
        b.extend_from_slice(&hoa().octets());
        b.extend_from_slice(&[0, 0]);
        assert_eq!(b.len(), 48);
        let h = ExtHeader::new_checked(&b[..]).unwrap();
        assert_eq!(
            DestinationOptionsRepr::parse(&h).unwrap_err(),
            Error::Malformed("duplicate Home Address option")
        );
    }
}
