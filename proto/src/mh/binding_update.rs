//! Binding Update (MH type 5; RFC 6275 §6.1.7, RFC 3963 §4.1, RFC 5555 §3.1.3,
//! RFC 5648 §4.2).

use crate::option::{MobilityOption, ParseConfig, parse_options};
use crate::seq::{Lifetime, SequenceNumber};
use crate::{Error, Result};

/// The 16-bit flags field of a Binding Update (docs/notes.md §8). Bits without a name
/// are kept as received.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BuFlags(pub u16);

impl BuFlags {
    /// A: acknowledgement requested (RFC 6275).
    pub const A: BuFlags = BuFlags(0x8000);
    /// H: home registration (RFC 6275).
    pub const H: BuFlags = BuFlags(0x4000);
    /// L: link-local address compatibility (RFC 6275).
    pub const L: BuFlags = BuFlags(0x2000);
    /// K: key management mobility capability (RFC 6275).
    pub const K: BuFlags = BuFlags(0x1000);
    /// M: MAP registration (RFC 5380).
    pub const M: BuFlags = BuFlags(0x0800);
    /// R: mobile router (RFC 3963); requires H.
    pub const R: BuFlags = BuFlags(0x0400);
    /// P: proxy registration (RFC 5213).
    pub const P: BuFlags = BuFlags(0x0200);
    /// F: force UDP encapsulation (RFC 5555).
    pub const F: BuFlags = BuFlags(0x0100);
    /// T: TLV-header format (RFC 5845).
    pub const T: BuFlags = BuFlags(0x0080);
    /// B: bulk binding update (RFC 6602).
    pub const B: BuFlags = BuFlags(0x0040);
    /// O: overwrite all bindings (RFC 5648 figure 4). The same bit as [`BuFlags::B`]:
    /// RFC 5648 never registered it and RFC 6602 later took 0x0040 for PMIPv6's B. Read it
    /// as O only in a MIPv6/NEMO BU carrying a Binding Identifier option.
    pub const O: BuFlags = BuFlags(0x0040);
    /// The bits no flag above defines.
    pub const RESERVED: u16 = 0x003f;

    /// A: the sender asks for a Binding Acknowledgement.
    pub const fn ack(self) -> bool {
        self.contains(Self::A)
    }
    /// H: home registration.
    pub const fn home_registration(self) -> bool {
        self.contains(Self::H)
    }
    /// L: link-local address compatibility.
    pub const fn link_local_compat(self) -> bool {
        self.contains(Self::L)
    }
    /// K: key management mobility capability.
    pub const fn key_management(self) -> bool {
        self.contains(Self::K)
    }
    /// M: MAP registration.
    pub const fn map_registration(self) -> bool {
        self.contains(Self::M)
    }
    /// R: the sender is a mobile router.
    pub const fn mobile_router(self) -> bool {
        self.contains(Self::R)
    }
    /// P: proxy registration.
    pub const fn proxy(self) -> bool {
        self.contains(Self::P)
    }
    /// F: force UDP encapsulation.
    pub const fn force_udp(self) -> bool {
        self.contains(Self::F)
    }
    /// T: TLV-header format.
    pub const fn tlv_header(self) -> bool {
        self.contains(Self::T)
    }
    /// B (PMIPv6 bulk) or O (MCoA overwrite): bit 0x0040, see [`BuFlags::O`].
    pub const fn bulk_or_overwrite(self) -> bool {
        self.contains(Self::B)
    }
}

super::flags::flags_newtype!(
    BuFlags,
    u16,
    &[
        (0x8000, "A"),
        (0x4000, "H"),
        (0x2000, "L"),
        (0x1000, "K"),
        (0x0800, "M"),
        (0x0400, "R"),
        (0x0200, "P"),
        (0x0100, "F"),
        (0x0080, "T"),
        (0x0040, "B/O"),
    ],
    6
);

/// A Binding Update (RFC 6275 §6.1.7): sequence number, flags, lifetime and options.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BindingUpdate<'a> {
    /// Sequence Number.
    pub sequence: SequenceNumber,
    /// Flags.
    pub flags: BuFlags,
    /// Requested lifetime; zero de-registers.
    pub lifetime: Lifetime,
    /// Mobility options without padding, in wire order.
    pub options: Vec<MobilityOption<'a>>,
}

impl<'a> BindingUpdate<'a> {
    /// Octets of the fixed part after the common MH header (RFC 6275 §6.1.7).
    pub const FIXED_LEN: usize = 6;

    /// Parses the message data (MH octets 6 up to the Header Len boundary).
    pub(crate) fn parse_data(data: &'a [u8], cfg: ParseConfig) -> Result<Self> {
        let fixed = data.get(..Self::FIXED_LEN).ok_or(Error::Truncated)?;
        Ok(BindingUpdate {
            sequence: SequenceNumber(u16::from_be_bytes([fixed[0], fixed[1]])),
            flags: BuFlags(u16::from_be_bytes([fixed[2], fixed[3]])),
            lifetime: Lifetime(u16::from_be_bytes([fixed[4], fixed[5]])),
            options: parse_options(&data[Self::FIXED_LEN..], cfg)?,
        })
    }

    /// Writes the fixed part into `fixed` (exactly [`Self::FIXED_LEN`] octets).
    pub(crate) fn emit_fixed(&self, fixed: &mut [u8]) {
        fixed[0..2].copy_from_slice(&self.sequence.0.to_be_bytes());
        fixed[2..4].copy_from_slice(&self.flags.0.to_be_bytes());
        fixed[4..6].copy_from_slice(&self.lifetime.0.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let f = BuFlags::A | BuFlags::H | BuFlags::R;
        assert_eq!(f.bits(), 0xc400);
        assert!(f.ack() && f.home_registration() && f.mobile_router());
        assert!(!f.key_management() && !f.force_udp() && !f.proxy());
        let mut g = f;
        g.set(BuFlags::K, true);
        assert_eq!(g.bits(), 0xd400);
        g.set(BuFlags::H, false);
        assert_eq!(g.bits(), 0x9400);
        assert_eq!(format!("{f:?}"), "BuFlags(A|H|R)");
        assert_eq!(format!("{:?}", BuFlags(0x0041)), "BuFlags(B/O|0x0001)");
        assert_eq!(BuFlags::O, BuFlags::B);
        assert!(BuFlags(0x0040).bulk_or_overwrite());
        let all = [
            (
                BuFlags::L,
                BuFlags::link_local_compat as fn(BuFlags) -> bool,
            ),
            (BuFlags::M, BuFlags::map_registration),
            (BuFlags::F, BuFlags::force_udp),
            (BuFlags::T, BuFlags::tlv_header),
            (BuFlags::P, BuFlags::proxy),
            (BuFlags::K, BuFlags::key_management),
        ];
        for (flag, get) in all {
            assert!(get(flag));
            assert!(!get(BuFlags(!flag.0)));
        }
        assert_eq!((f & BuFlags::H), BuFlags::H);
    }
}
