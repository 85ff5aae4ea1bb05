//! Home Agent Switch (MH type 12; RFC 5142 §4): a home agent tells a mobile node (or
//! router) to register with another home agent.
//!
//! ```text
//!  6               7               8
//! +---------------+---------------+-------------------------------+
//! | # of Addresses|   Reserved    | Home Agent Addresses (16 × n) |
//! +---------------+---------------+-------------------------------+
//! | Mobility options (MN-HA authentication last, RFC 4285)        |
//! +---------------------------------------------------------------+
//! ```
//!
//! The order of the first two octets (count, then reserved) is Wireshark's
//! (`packet-mip6.c`: `MIP6_HAS_NRADR_OFF 6`, `MIP6_HAS_RES_OFF 7`) [IMPL]; the RFC text
//! itself could not be read here (docs/conformance.md).

use std::net::Ipv6Addr;

use crate::option::{MobilityOption, ParseConfig, parse_options};
use crate::{Error, Result};

/// A Home Agent Switch message (RFC 5142 §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct HomeAgentSwitch<'a> {
    /// The home agents to switch to, most preferred first (RFC 5142 §5.1). Empty: the
    /// mobile node finds one itself (Dynamic Home Agent Address Discovery, §6.2).
    pub home_agents: Vec<Ipv6Addr>,
    /// Mobility options without padding, in wire order (the MN-HA authentication option
    /// last when the binding is authenticated, RFC 4285 §5).
    pub options: Vec<MobilityOption<'a>>,
}

impl<'a> HomeAgentSwitch<'a> {
    /// Octets of the fixed part before the addresses: # of Addresses, Reserved.
    pub const HEADER_LEN: usize = 2;
    /// Most addresses the count field can name (the 2048-octet MH limit allows 127).
    pub const MAX_ADDRESSES: usize = 255;

    /// Octets of the fixed part after the common MH header: count, reserved, addresses.
    pub fn fixed_len(&self) -> usize {
        Self::HEADER_LEN + 16 * self.home_agents.len()
    }

    /// Parses the message data (MH octets 6 up to the Header Len boundary). The count must
    /// fit inside the Header Len boundary: `Malformed("home agent switch address count")`
    /// otherwise (the alignment of the whole MH to 8 octets is Header Len's, RFC 6275
    /// §6.1.1, so any count that fits leaves the options 8-aligned).
    pub(crate) fn parse_data(data: &'a [u8], cfg: ParseConfig) -> Result<Self> {
        let header = data.get(..Self::HEADER_LEN).ok_or(Error::Truncated)?;
        let count = usize::from(header[0]);
        let end = Self::HEADER_LEN + 16 * count;
        let addrs = data
            .get(Self::HEADER_LEN..end)
            .ok_or(Error::Malformed("home agent switch address count"))?;
        let home_agents = addrs
            .chunks_exact(16)
            .map(|c| Ipv6Addr::from(<[u8; 16]>::try_from(c).expect("16 octets")))
            .collect();
        Ok(HomeAgentSwitch {
            home_agents,
            options: parse_options(&data[end..], cfg)?,
        })
    }

    /// Writes the fixed part into `fixed` (exactly [`Self::fixed_len`] octets). The
    /// caller has checked the count fits (`MhRepr::emit_to`).
    pub(crate) fn emit_fixed(&self, fixed: &mut [u8]) {
        fixed[0] = self.home_agents.len() as u8;
        fixed[1] = 0;
        for (chunk, a) in fixed[Self::HEADER_LEN..]
            .chunks_exact_mut(16)
            .zip(&self.home_agents)
        {
            chunk.copy_from_slice(&a.octets());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{MnHaKey, mn_ha_option};
    use crate::mh::{MhRepr, MhType, Packet};
    use crate::option::AUTH_SUBTYPE_MN_HA;

    const CFG: ParseConfig = ParseConfig::new();

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }
    fn ha() -> Ipv6Addr {
        a("2001:db8:2::1")
    }
    fn hoa() -> Ipv6Addr {
        a("2001:db8:2::100")
    }
    fn coa() -> Ipv6Addr {
        a("2001:db8:1::2")
    }

    /// One address, no options. By hand: Payload Proto 59, Header Len 2 (24 octets in
    /// all: 6 + 2 + 16), type 12, reserved, checksum, # of Addresses 1, Reserved 0,
    /// 2001:db8:2::2. Checksum computed with python3 (RFC 6275 §6.1.1 pseudo-header,
    /// `struct` sums) over src = HA 2001:db8:2::1, dst = HoA 2001:db8:2::100 (the RH2's
    /// address).
    static HAS_BYTES: [u8; 24] = [
        0x3b, 0x02, 0x0c, 0x00, 0x2d, 0x2a, 0x01, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
    ];

    /// Two addresses, then the MN-HA authentication option (RFC 4285, SPI 0x100) at 45
    /// (8n+5, so it ends on the 64-octet boundary) after a PadN of 5 at 40: Header Len 7.
    /// Authenticator: python3 `hmac`/`hashlib`, HMAC-SHA1 with key 00..0f over
    /// CoA 2001:db8:1::2 | HoA 2001:db8:2::100 | MH up to the SPI with the checksum zero,
    /// first 96 bits; then the checksum as above.
    static SIGNED_HAS: [u8; 64] = [
        0x3b, 0x07, 0x0c, 0x00, 0x70, 0x9d, 0x02, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x03,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x03, 0x00, 0x00, 0x00,
        0x09, 0x11, 0x01, 0x00, 0x00, 0x01, 0x00, 0xa5, 0xff, 0xe8, 0xb2, 0xad, 0xe6, 0xc0, 0x7d,
        0xe8, 0x71, 0x95, 0x0c,
    ];
    const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    fn has_repr() -> MhRepr<'static> {
        MhRepr::HomeAgentSwitch(HomeAgentSwitch {
            home_agents: vec![a("2001:db8:2::2")],
            options: vec![],
        })
    }

    fn signed_repr() -> MhRepr<'static> {
        MhRepr::HomeAgentSwitch(HomeAgentSwitch {
            home_agents: vec![a("2001:db8:2::2"), a("2001:db8:3::1")],
            options: vec![mn_ha_option(0x100)],
        })
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&HAS_BYTES[..]).unwrap();
        assert_eq!(p.mh_type(), MhType::HomeAgentSwitch);
        assert_eq!(p.total_len(), 24);
        assert_eq!(p.message_data()[0], 1);
        assert!(p.verify_checksum(&ha(), &hoa()));
        assert_eq!(p.parameter_problem_pointer(), None);
        let p = Packet::new_checked(&SIGNED_HAS[..]).unwrap();
        assert_eq!(p.header_len(), 7);
        assert!(p.verify_checksum(&ha(), &hoa()));
    }

    #[test]
    fn parse() {
        let mut b = HAS_BYTES;
        b[4..6].fill(0);
        assert_eq!(MhRepr::parse_bytes(&b, CFG), Ok(has_repr()));
        assert_eq!(MhRepr::parse_bytes(&HAS_BYTES, CFG), Ok(has_repr()));
        let r = MhRepr::parse_bytes(&SIGNED_HAS, CFG).unwrap();
        let MhRepr::HomeAgentSwitch(m) = &r else {
            panic!("{r:?}")
        };
        assert_eq!(m.home_agents, [a("2001:db8:2::2"), a("2001:db8:3::1")]);
        assert_eq!(
            m.options,
            [MobilityOption::Authentication {
                subtype: AUTH_SUBTYPE_MN_HA,
                spi: 0x100,
                data: &SIGNED_HAS[52..],
            }]
        );
    }

    #[test]
    fn emit() {
        let repr = has_repr();
        assert_eq!(repr.buffer_len(), 24);
        let mut buf = [0xa5u8; 24];
        repr.emit_to(&mut buf).unwrap();
        Packet::new_unchecked(&mut buf[..]).fill_checksum(&ha(), &hoa());
        assert_eq!(buf, HAS_BYTES);
    }

    #[test]
    fn emit_sign_matches_independent_fixture() {
        let repr = signed_repr();
        assert_eq!(repr.buffer_len(), 64);
        let mut buf = [0xa5u8; 64];
        repr.emit_to(&mut buf).unwrap();
        let key = MnHaKey::new(&KEY);
        key.sign(&mut buf, coa().into(), &hoa()).unwrap();
        Packet::new_unchecked(&mut buf[..]).fill_checksum(&ha(), &hoa());
        assert_eq!(buf, SIGNED_HAS);
        assert_eq!(key.verify(&SIGNED_HAS, coa().into(), &hoa()), Ok(true));
        // Another binding's addresses, or any changed address, fail.
        assert_eq!(key.verify(&SIGNED_HAS, hoa().into(), &hoa()), Ok(false));
        let mut t = SIGNED_HAS;
        t[23] ^= 1;
        assert_eq!(key.verify(&t, coa().into(), &hoa()), Ok(false));
    }

    #[test]
    fn no_addresses() {
        // RFC 5142 §6.2: none listed, the mobile node discovers one. Header Len 0.
        let repr = MhRepr::HomeAgentSwitch(HomeAgentSwitch::default());
        let mut buf = [0xa5u8; 8];
        assert_eq!(repr.emit_to(&mut buf), Ok(8));
        assert_eq!(buf, [59, 0, 12, 0, 0, 0, 0, 0]);
        assert_eq!(MhRepr::parse_bytes(&buf, CFG), Ok(repr));
    }

    #[test]
    fn count_must_fit_header_len() {
        // Count 2 but room for one address only.
        let mut b = HAS_BYTES;
        b[6] = 2;
        assert_eq!(
            MhRepr::parse_bytes(&b, CFG),
            Err(Error::Malformed("home agent switch address count"))
        );
        // Count 255 in the smallest MH.
        let b = [59u8, 0, 12, 0, 0, 0, 255, 0];
        assert_eq!(
            MhRepr::parse_bytes(&b, CFG),
            Err(Error::Malformed("home agent switch address count"))
        );
        // Header Len beyond the buffer.
        assert_eq!(
            MhRepr::parse_bytes(&HAS_BYTES[..16], CFG),
            Err(Error::Truncated)
        );
        // Room left after the addresses is parsed as options: 8 zero octets are Pad1s.
        let mut b = HAS_BYTES.to_vec();
        b[1] = 3;
        b.extend_from_slice(&[0; 8]);
        assert_eq!(MhRepr::parse_bytes(&b, CFG), Ok(has_repr()));
        // A reserved octet set is ignored.
        let mut b = HAS_BYTES;
        b[7] = 0xff;
        assert_eq!(MhRepr::parse_bytes(&b, CFG), Ok(has_repr()));
    }

    #[test]
    fn too_many_addresses_do_not_emit() {
        // 127 addresses fit the 2048-octet MH (8 + 16 × 127 = 2040); 128 do not.
        let mut m = HomeAgentSwitch {
            home_agents: vec![ha(); 127],
            options: vec![],
        };
        let repr = MhRepr::HomeAgentSwitch(m.clone());
        let mut buf = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit_to(&mut buf), Ok(2040));
        assert_eq!(buf[6], 127);
        assert_eq!(MhRepr::parse_bytes(&buf, CFG), Ok(repr));
        m.home_agents.push(ha());
        let repr = MhRepr::HomeAgentSwitch(m);
        let mut buf = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit_to(&mut buf), Err(Error::BadLength));
    }
}
