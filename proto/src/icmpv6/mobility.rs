//! The ICMPv6 messages of Mobile IPv6 (RFC 6275 §6.5-§6.8): Dynamic Home Agent Address
//! Discovery and Mobile Prefix Discovery, with NEMO's R flag (RFC 3963 §4.2, §4.3), and the
//! Home-Agents subnet anycast address the requests go to (RFC 2526).
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+-------------------------------+
//! | Type 144..147 | Code 0        | Checksum                      |
//! +---------------+---------------+-------------------------------+
//! | Identifier                    | Flags / Reserved              |
//! +-------------------------------+-------------------------------+
//! | Reply: home agent addresses (16 octets each); Solicitation and |
//! | Advertisement: ND-format options (Prefix Information, ...)    |
//! ```
//! A Request's and a Reply's R bit is the top bit of the Reserved field (RFC 3963 §4.2,
//! §4.3); an Advertisement's M and O are the top two bits of its (RFC 6275 §6.8). Bits
//! without a name are kept as they arrived.

use std::net::Ipv6Addr;

use crate::mh::flags::flags_newtype;

use super::nd::NdOption;

/// Identifier and Flags/Reserved: the fixed part after Type, Code and Checksum.
pub const MOBILITY_FIXED_LEN: usize = 8;
/// How many home agent addresses a Reply may list so that it fits in the IPv6 minimum
/// MTU with its IPv6 header (RFC 6275 §10.5: "the Home Agent Address Discovery Reply
/// message MUST NOT be larger than the minimum MTU"; (1280 − 40 − 8) / 16).
pub const MAX_REPLY_HOME_AGENTS: usize = (super::MIN_MTU - 40 - MOBILITY_FIXED_LEN) / 16;

/// The 16-bit Reserved field of a Home Agent Address Discovery Request or Reply.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HaadFlags(pub u16);

impl HaadFlags {
    /// R: Request — the sender is a mobile router and wants home agents that support
    /// them; Reply — the listed home agents support mobile routers (RFC 3963 §4.2, §4.3).
    pub const R: HaadFlags = HaadFlags(0x8000);
    /// The bits no flag above defines.
    pub const RESERVED: u16 = 0x7fff;

    /// R: mobile router.
    pub const fn mobile_router(self) -> bool {
        self.contains(Self::R)
    }
}

flags_newtype!(HaadFlags, u16, &[(0x8000, "R")], 6);

/// The 16-bit field after a Mobile Prefix Advertisement's Identifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MpaFlags(pub u16);

impl MpaFlags {
    /// M: Managed address configuration, as on the home link (RFC 6275 §6.8).
    pub const M: MpaFlags = MpaFlags(0x8000);
    /// O: Other stateful configuration, as on the home link.
    pub const O: MpaFlags = MpaFlags(0x4000);
    /// The bits no flag above defines.
    pub const RESERVED: u16 = 0x3fff;
}

flags_newtype!(MpaFlags, u16, &[(0x8000, "M"), (0x4000, "O")], 6);

/// A Home Agent Address Discovery Request (RFC 6275 §6.5; RFC 3963 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HaadRequest {
    /// Identifier, copied into the Reply.
    pub identifier: u16,
    /// R and the reserved bits.
    pub flags: HaadFlags,
}

/// A Home Agent Address Discovery Reply (RFC 6275 §6.6; RFC 3963 §4.3): the home agents
/// in the order the mobile node should try them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HaadReply {
    /// The Request's Identifier.
    pub identifier: u16,
    /// R and the reserved bits.
    pub flags: HaadFlags,
    /// Home Agent Addresses, most preferred first. Parsed: every whole 16 octets of the
    /// body (a trailing partial address is ignored).
    pub home_agents: Vec<Ipv6Addr>,
}

/// A Mobile Prefix Solicitation (RFC 6275 §6.7).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MobilePrefixSolicitation<'a> {
    /// Identifier, copied into the Advertisement.
    pub identifier: u16,
    /// The Reserved field as received (sent as zero).
    pub reserved: u16,
    /// Options (none are defined; kept).
    pub options: Vec<NdOption<'a>>,
}

/// A Mobile Prefix Advertisement (RFC 6275 §6.8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MobilePrefixAdvertisement<'a> {
    /// The Solicitation's Identifier; for an unsolicited one, any value.
    pub identifier: u16,
    /// M, O and the reserved bits.
    pub flags: MpaFlags,
    /// Prefix Information options of the home link (and any others, kept).
    pub options: Vec<NdOption<'a>>,
}

/// The Home-Agents subnet anycast address of a subnet (RFC 2526 §2, Anycast ID 0x7E;
/// RFC 6275 §10.5): the highest addresses of the subnet hold the reserved anycast
/// addresses; for a 64-bit prefix (EUI-64 interface identifiers) the universal/local bit
/// of the identifier is cleared (`prefix:fdff:ffff:ffff:fffe`), otherwise every host bit
/// but the low 7 is one (`...ff:fffe`). `None` when the prefix leaves fewer than 8 host
/// bits (no room for the 128 reserved addresses).
pub fn home_agents_anycast(prefix: Ipv6Addr, prefix_len: u8) -> Option<Ipv6Addr> {
    const ANYCAST_ID: u128 = 0x7e;
    if prefix_len > 120 {
        return None;
    }
    let host_mask = u128::MAX >> prefix_len;
    let mut addr = (u128::from(prefix) & !host_mask) | (host_mask & !0x7f) | ANYCAST_ID;
    if prefix_len == 64 {
        // RFC 2526 §2: EUI-64 format; the u/l bit (0x02 of the identifier's first octet,
        // bit 70 of the address counting from the right as 57) is zero.
        addr &= !(1u128 << 57);
    }
    Some(Ipv6Addr::from(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anycast_addresses_of_rfc_2526() {
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(
            home_agents_anycast(a("2001:db8:1::"), 64),
            Some(a("2001:db8:1:0:fdff:ffff:ffff:fffe"))
        );
        // Host bits in the prefix argument are ignored.
        assert_eq!(
            home_agents_anycast(a("2001:db8:1::1234"), 64),
            Some(a("2001:db8:1:0:fdff:ffff:ffff:fffe"))
        );
        // Not 64 bits: no EUI-64 format, every host bit above the 7-bit ID set.
        assert_eq!(
            home_agents_anycast(a("2001:db8:1::"), 48),
            Some(a("2001:db8:1:ffff:ffff:ffff:ffff:fffe"))
        );
        assert_eq!(
            home_agents_anycast(a("2001:db8:1::ff00"), 120),
            Some(a("2001:db8:1::fffe"))
        );
        assert_eq!(home_agents_anycast(a("2001:db8:1::"), 121), None);
    }

    #[test]
    fn reply_fits_the_minimum_mtu() {
        assert_eq!(MAX_REPLY_HOME_AGENTS, 77);
        const { assert!(40 + MOBILITY_FIXED_LEN + 16 * MAX_REPLY_HOME_AGENTS <= 1280) };
    }

    #[test]
    fn flags_name_their_bits() {
        assert_eq!(format!("{:?}", HaadFlags(0x8001)), "HaadFlags(R|0x0001)");
        assert!(HaadFlags::R.mobile_router());
        assert_eq!(format!("{:?}", MpaFlags::M | MpaFlags::O), "MpaFlags(M|O)");
    }
}
