//! Neighbor Discovery (RFC 4861 §4): Router Solicitation and Advertisement, Neighbor
//! Solicitation and Advertisement, and their options (§4.6), with the Mobile IPv6 additions
//! to the Router Advertisement (RFC 6275 §7.1, §7.2).
//!
//! Options are kept in order; options without a name here are kept as
//! [`NdOption::Unknown`] and re-emit unchanged (RFC 4861 §4.6: receivers skip options they
//! do not recognise).

use std::net::Ipv6Addr;

use crate::mh::flags::flags_newtype;
use crate::option::code_enum;
use crate::{Error, Result};

code_enum! {
    /// Neighbor Discovery option type (RFC 4861 §4.6; IANA "IPv6 Neighbor Discovery Option
    /// Formats").
    pub enum NdOptionType(u8) {
        /// RFC 4861 §4.6.1.
        SourceLinkLayerAddress = 1,
        /// RFC 4861 §4.6.1.
        TargetLinkLayerAddress = 2,
        /// RFC 4861 §4.6.2.
        PrefixInformation = 3,
        /// RFC 4861 §4.6.3.
        RedirectedHeader = 4,
        /// RFC 4861 §4.6.4.
        Mtu = 5,
        /// RFC 6275 §7.3.
        AdvertisementInterval = 7,
        /// RFC 6275 §7.4.
        HomeAgentInformation = 8,
    }
}

/// Length of the Prefix Information option (Length 4, RFC 4861 §4.6.2).
pub const PREFIX_INFORMATION_LEN: usize = 32;
/// Length of the MTU option (Length 1, RFC 4861 §4.6.4).
pub const MTU_OPTION_LEN: usize = 8;
/// Length of the Advertisement Interval option (Length 1, RFC 6275 §7.3).
pub const ADVERTISEMENT_INTERVAL_LEN: usize = 8;
/// Length of the Home Agent Information option (Length 1, RFC 6275 §7.4).
pub const HOME_AGENT_INFORMATION_LEN: usize = 8;
/// Longest option the 8-bit Length field (in units of 8 octets) can describe.
pub const MAX_OPTION_LEN: usize = 255 * 8;

/// The flags octet of a Router Advertisement (RFC 4861 §4.2, RFC 6275 §7.1). Bits without
/// a name here (Prf of RFC 4191, P of RFC 4389, ...) are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RaFlags(pub u8);

impl RaFlags {
    /// M: Managed address configuration (addresses from DHCPv6).
    pub const M: RaFlags = RaFlags(0x80);
    /// O: Other configuration (other settings from DHCPv6).
    pub const O: RaFlags = RaFlags(0x40);
    /// H: the router is a home agent on this link (RFC 6275 §7.1).
    pub const H: RaFlags = RaFlags(0x20);
    /// The bits no flag above defines.
    pub const RESERVED: u8 = 0x1f;
}

flags_newtype!(RaFlags, u8, &[(0x80, "M"), (0x40, "O"), (0x20, "H")], 4);

/// The first octet of a Neighbor Advertisement's flags word (RFC 4861 §4.4). The other
/// 24 reserved bits are sent as zero and ignored; unnamed bits of this octet are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NaFlags(pub u8);

impl NaFlags {
    /// R: the sender is a router.
    pub const R: NaFlags = NaFlags(0x80);
    /// S: sent in response to a Neighbor Solicitation.
    pub const S: NaFlags = NaFlags(0x40);
    /// O: override an existing cache entry's link-layer address.
    pub const O: NaFlags = NaFlags(0x20);
    /// The bits no flag above defines.
    pub const RESERVED: u8 = 0x1f;

    /// R: Router flag.
    pub const fn router(self) -> bool {
        self.contains(Self::R)
    }
    /// S: Solicited flag.
    pub const fn solicited(self) -> bool {
        self.contains(Self::S)
    }
    /// O: Override flag.
    pub const fn override_flag(self) -> bool {
        self.contains(Self::O)
    }
}

flags_newtype!(NaFlags, u8, &[(0x80, "R"), (0x40, "S"), (0x20, "O")], 4);

/// The flags octet of a Prefix Information option (RFC 4861 §4.6.2, RFC 6275 §7.2).
/// Unnamed bits are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PrefixFlags(pub u8);

impl PrefixFlags {
    /// L: on-link.
    pub const L: PrefixFlags = PrefixFlags(0x80);
    /// A: autonomous address-configuration (SLAAC, RFC 4862).
    pub const A: PrefixFlags = PrefixFlags(0x40);
    /// R: Router Address: the Prefix field holds the router's whole global address
    /// (RFC 6275 §7.2).
    pub const R: PrefixFlags = PrefixFlags(0x20);
    /// The bits no flag above defines.
    pub const RESERVED: u8 = 0x1f;
}

flags_newtype!(PrefixFlags, u8, &[(0x80, "L"), (0x40, "A"), (0x20, "R")], 4);

/// The Reserved field of a Home Agent Information option (RFC 6275 §7.4, RFC 3963 §4.1).
/// Unnamed bits are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HaInfoFlags(pub u16);

impl HaInfoFlags {
    /// R: the home agent supports mobile routers (RFC 3963 §4.1).
    pub const R: HaInfoFlags = HaInfoFlags(0x8000);
    /// The bits no flag above defines.
    pub const RESERVED: u16 = 0x7fff;
}

flags_newtype!(HaInfoFlags, u16, &[(0x8000, "R")], 6);

/// A Home Agent Information option (RFC 6275 §7.4): how a home agent ranks itself on the
/// link, and for how long it serves as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HomeAgentInformation {
    /// R and the reserved bits.
    pub flags: HaInfoFlags,
    /// Home Agent Preference: higher is better (two's complement; 0 when the option is
    /// absent).
    pub preference: i16,
    /// Home Agent Lifetime, seconds (absent option: the Router Lifetime; 0 is not
    /// allowed on the wire and the receiver ignores such an option, §10.5.1).
    pub lifetime: u16,
}

/// A Prefix Information option (RFC 4861 §4.6.2). The reserved fields are sent as zero
/// and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrefixInformation {
    /// Prefix Length in bits.
    pub prefix_len: u8,
    /// L, A and R.
    pub flags: PrefixFlags,
    /// Valid Lifetime, seconds (all ones: infinity).
    pub valid_lifetime: u32,
    /// Preferred Lifetime, seconds (all ones: infinity).
    pub preferred_lifetime: u32,
    /// Prefix (or, with R, the router's address).
    pub prefix: Ipv6Addr,
}

/// One Neighbor Discovery option (RFC 4861 §4.6). Variable data borrows the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdOption<'a> {
    /// Source Link-Layer Address (§4.6.1): the address with any padding up to the option's
    /// 8-octet boundary as received; 6 octets for Ethernet. Emitted padded with zeros.
    SourceLinkLayerAddress(&'a [u8]),
    /// Target Link-Layer Address (§4.6.1), as [`NdOption::SourceLinkLayerAddress`].
    TargetLinkLayerAddress(&'a [u8]),
    /// Prefix Information (§4.6.2).
    PrefixInformation(PrefixInformation),
    /// MTU (§4.6.4).
    Mtu(u32),
    /// Advertisement Interval (RFC 6275 §7.3), milliseconds.
    AdvertisementInterval(u32),
    /// Home Agent Information (RFC 6275 §7.4).
    HomeAgentInformation(HomeAgentInformation),
    /// Any other option: its type and the octets after the Length field, kept so it
    /// re-emits unchanged.
    Unknown {
        /// Type.
        option_type: u8,
        /// The octets after Type and Length (Length × 8 − 2 of them when parsed).
        data: &'a [u8],
    },
}

impl<'a> NdOption<'a> {
    /// The option's Type.
    pub fn option_type(&self) -> NdOptionType {
        match self {
            NdOption::SourceLinkLayerAddress(_) => NdOptionType::SourceLinkLayerAddress,
            NdOption::TargetLinkLayerAddress(_) => NdOptionType::TargetLinkLayerAddress,
            NdOption::PrefixInformation(_) => NdOptionType::PrefixInformation,
            NdOption::Mtu(_) => NdOptionType::Mtu,
            NdOption::AdvertisementInterval(_) => NdOptionType::AdvertisementInterval,
            NdOption::HomeAgentInformation(_) => NdOptionType::HomeAgentInformation,
            NdOption::Unknown { option_type, .. } => NdOptionType::from(*option_type),
        }
    }

    /// Decodes one option from its type and the octets after its Length field.
    fn parse(option_type: u8, data: &'a [u8]) -> Result<Self> {
        Ok(match NdOptionType::from(option_type) {
            NdOptionType::SourceLinkLayerAddress => NdOption::SourceLinkLayerAddress(data),
            NdOptionType::TargetLinkLayerAddress => NdOption::TargetLinkLayerAddress(data),
            NdOptionType::PrefixInformation => {
                if data.len() != PREFIX_INFORMATION_LEN - 2 {
                    return Err(Error::BadLength);
                }
                let word =
                    |i: usize| u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
                let mut prefix = [0u8; 16];
                prefix.copy_from_slice(&data[14..30]);
                NdOption::PrefixInformation(PrefixInformation {
                    prefix_len: data[0],
                    flags: PrefixFlags(data[1]),
                    valid_lifetime: word(2),
                    preferred_lifetime: word(6),
                    prefix: Ipv6Addr::from(prefix),
                })
            }
            NdOptionType::Mtu => {
                if data.len() != MTU_OPTION_LEN - 2 {
                    return Err(Error::BadLength);
                }
                NdOption::Mtu(u32::from_be_bytes([data[2], data[3], data[4], data[5]]))
            }
            NdOptionType::AdvertisementInterval => {
                if data.len() != ADVERTISEMENT_INTERVAL_LEN - 2 {
                    return Err(Error::BadLength);
                }
                NdOption::AdvertisementInterval(u32::from_be_bytes([
                    data[2], data[3], data[4], data[5],
                ]))
            }
            NdOptionType::HomeAgentInformation => {
                if data.len() != HOME_AGENT_INFORMATION_LEN - 2 {
                    return Err(Error::BadLength);
                }
                NdOption::HomeAgentInformation(HomeAgentInformation {
                    flags: HaInfoFlags(u16::from_be_bytes([data[0], data[1]])),
                    preference: i16::from_be_bytes([data[2], data[3]]),
                    lifetime: u16::from_be_bytes([data[4], data[5]]),
                })
            }
            _ => NdOption::Unknown { option_type, data },
        })
    }

    /// Octets after Type and Length this option writes before padding.
    fn data_len(&self) -> usize {
        match self {
            NdOption::SourceLinkLayerAddress(d)
            | NdOption::TargetLinkLayerAddress(d)
            | NdOption::Unknown { data: d, .. } => d.len(),
            NdOption::PrefixInformation(_) => PREFIX_INFORMATION_LEN - 2,
            NdOption::Mtu(_) => MTU_OPTION_LEN - 2,
            NdOption::AdvertisementInterval(_) => ADVERTISEMENT_INTERVAL_LEN - 2,
            NdOption::HomeAgentInformation(_) => HOME_AGENT_INFORMATION_LEN - 2,
        }
    }

    /// Octets on the wire: Type, Length and data, padded to a multiple of 8 (§4.6).
    pub fn buffer_len(&self) -> usize {
        (2 + self.data_len()).div_ceil(8) * 8
    }

    /// Writes the option into `buf`, exactly [`buffer_len`](Self::buffer_len) octets.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] for a short `buf`; [`Error::BadLength`] when the data
    /// does not fit the 8-bit Length field.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let len = self.buffer_len();
        if len > MAX_OPTION_LEN {
            return Err(Error::BadLength);
        }
        let buf = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        buf.fill(0);
        buf[0] = self.option_type().into();
        buf[1] = (len / 8) as u8;
        let d = &mut buf[2..];
        match self {
            NdOption::SourceLinkLayerAddress(a)
            | NdOption::TargetLinkLayerAddress(a)
            | NdOption::Unknown { data: a, .. } => d[..a.len()].copy_from_slice(a),
            NdOption::PrefixInformation(p) => {
                d[0] = p.prefix_len;
                d[1] = p.flags.0;
                d[2..6].copy_from_slice(&p.valid_lifetime.to_be_bytes());
                d[6..10].copy_from_slice(&p.preferred_lifetime.to_be_bytes());
                d[14..30].copy_from_slice(&p.prefix.octets());
            }
            NdOption::Mtu(mtu) | NdOption::AdvertisementInterval(mtu) => {
                d[2..6].copy_from_slice(&mtu.to_be_bytes())
            }
            NdOption::HomeAgentInformation(h) => {
                d[0..2].copy_from_slice(&h.flags.0.to_be_bytes());
                d[2..4].copy_from_slice(&h.preference.to_be_bytes());
                d[4..6].copy_from_slice(&h.lifetime.to_be_bytes());
            }
        }
        Ok(())
    }
}

/// Zero-copy iterator over an ND options region. After the first error it yields that
/// error once and then stops.
#[derive(Debug, Clone)]
pub struct NdOptions<'a> {
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> NdOptions<'a> {
    /// Walks `region`, the octets from the first option to the end of the message.
    pub fn new(region: &'a [u8]) -> Self {
        NdOptions {
            data: region,
            pos: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for NdOptions<'a> {
    type Item = Result<NdOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.data.get(self.pos..).filter(|r| !r.is_empty())?;
        let r = match rest {
            // RFC 4861 §4.6: "Nodes MUST silently discard an ND packet that contains an
            // option with length zero."
            [_, 0, ..] => Err(Error::Malformed("ND option length 0")),
            [t, len, ..] => {
                let total = usize::from(*len) * 8;
                rest.get(2..total)
                    .ok_or(Error::Truncated)
                    .and_then(|data| NdOption::parse(*t, data))
                    .inspect(|_| self.pos += total)
            }
            _ => Err(Error::Truncated),
        };
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

/// Parses an options region into its options, in order.
pub fn parse_nd_options(region: &[u8]) -> Result<Vec<NdOption<'_>>> {
    NdOptions::new(region).collect()
}

/// Octets the options take on the wire.
pub fn nd_options_len(options: &[NdOption<'_>]) -> usize {
    options.iter().map(NdOption::buffer_len).sum()
}

/// Writes `options` one after the other at the start of `buf`.
fn emit_nd_options(options: &[NdOption<'_>], buf: &mut [u8]) -> Result<()> {
    let mut pos = 0;
    for o in options {
        o.emit(buf.get_mut(pos..).ok_or(Error::BufferTooSmall)?)?;
        pos += o.buffer_len();
    }
    Ok(())
}

/// A Router Solicitation (RFC 4861 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RouterSolicitation<'a> {
    /// Options (Source Link-Layer Address, unknown ones).
    pub options: Vec<NdOption<'a>>,
}

/// A Router Advertisement (RFC 4861 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RouterAdvertisement<'a> {
    /// Cur Hop Limit (0: unspecified).
    pub cur_hop_limit: u8,
    /// M, O, H and the other flag bits.
    pub flags: RaFlags,
    /// Router Lifetime, seconds (0: not a default router).
    pub router_lifetime: u16,
    /// Reachable Time, milliseconds (0: unspecified).
    pub reachable_time: u32,
    /// Retrans Timer, milliseconds (0: unspecified).
    pub retrans_timer: u32,
    /// Options (Source Link-Layer Address, MTU, Prefix Information, unknown ones).
    pub options: Vec<NdOption<'a>>,
}

/// A Neighbor Solicitation (RFC 4861 §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NeighborSolicitation<'a> {
    /// Target Address.
    pub target: Ipv6Addr,
    /// Options (Source Link-Layer Address, unknown ones). None with an unspecified IPv6
    /// source (DAD, RFC 4861 §4.3).
    pub options: Vec<NdOption<'a>>,
}

/// A Neighbor Advertisement (RFC 4861 §4.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NeighborAdvertisement<'a> {
    /// R, S and O.
    pub flags: NaFlags,
    /// Target Address.
    pub target: Ipv6Addr,
    /// Options (Target Link-Layer Address, unknown ones).
    pub options: Vec<NdOption<'a>>,
}

/// Emits `options` after the fixed part of an ND message of `fixed_len` octets.
pub(super) fn emit_after(
    fixed_len: usize,
    options: &[NdOption<'_>],
    message: &mut [u8],
) -> Result<()> {
    emit_nd_options(
        options,
        message.get_mut(fixed_len..).ok_or(Error::BufferTooSmall)?,
    )
}

/// The solicited-node multicast address of `addr` (RFC 4291 §2.7.1): where Neighbor
/// Solicitations for it are sent.
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // A Prefix Information option as radvd sends it: 2001:db8:1::/64, L and A, valid
    // 86400 s, preferred 14400 s.
    static PREFIX_INFO: [u8; 32] = [
        0x03, 0x04, 0x40, 0xc0, 0x00, 0x01, 0x51, 0x80, 0x00, 0x00, 0x38, 0x40, 0x00, 0x00, 0x00,
        0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ];

    fn prefix_info() -> NdOption<'static> {
        NdOption::PrefixInformation(PrefixInformation {
            prefix_len: 64,
            flags: PrefixFlags::L | PrefixFlags::A,
            valid_lifetime: 86400,
            preferred_lifetime: 14400,
            prefix: "2001:db8:1::".parse().unwrap(),
        })
    }

    #[test]
    fn prefix_information_bytes() {
        let opts = parse_nd_options(&PREFIX_INFO).unwrap();
        assert_eq!(opts, vec![prefix_info()]);
        let mut out = [0xa5u8; 32];
        prefix_info().emit(&mut out).unwrap();
        assert_eq!(out, PREFIX_INFO);
    }

    #[test]
    fn link_layer_mtu_and_unknown_options() {
        let region = [
            1, 1, 0x02, 0, 0, 0, 0, 0x0a, // SLLA, Ethernet
            5, 1, 0, 0, 0, 0, 0x05, 0xdc, // MTU 1500
            7, 1, 0, 0, 0, 0, 0x03, 0xe8, // Advertisement Interval, 1000 ms
            99, 1, 1, 2, 3, 4, 5, 6, // an option without a name here
            2, 2, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, // TLLA, 8-octet address
        ];
        let opts = parse_nd_options(&region).unwrap();
        assert_eq!(
            opts,
            vec![
                NdOption::SourceLinkLayerAddress(&[0x02, 0, 0, 0, 0, 0x0a]),
                NdOption::Mtu(1500),
                NdOption::AdvertisementInterval(1000),
                NdOption::Unknown {
                    option_type: 99,
                    data: &[1, 2, 3, 4, 5, 6]
                },
                NdOption::TargetLinkLayerAddress(&[1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0]),
            ]
        );
        assert_eq!(opts[4].option_type(), NdOptionType::TargetLinkLayerAddress);
        assert_eq!(opts[2].option_type(), NdOptionType::AdvertisementInterval);
        assert_eq!(opts[3].option_type(), NdOptionType::from(99));
        assert_eq!(nd_options_len(&opts), region.len());
        let mut out = vec![0xa5u8; region.len()];
        emit_nd_options(&opts, &mut out).unwrap();
        assert_eq!(out, region);
        // An 8-octet address is padded to 16 octets on emit.
        assert_eq!(
            NdOption::TargetLinkLayerAddress(&[1, 2, 3, 4, 5, 6, 7, 8]).buffer_len(),
            16
        );
    }

    #[test]
    fn home_agent_information_bytes() {
        // R set, preference -2, lifetime 1800 s (RFC 6275 §7.4, RFC 3963 §4.1).
        let wire = [8, 1, 0x80, 0x00, 0xff, 0xfe, 0x07, 0x08];
        let info = NdOption::HomeAgentInformation(HomeAgentInformation {
            flags: HaInfoFlags::R,
            preference: -2,
            lifetime: 1800,
        });
        assert_eq!(parse_nd_options(&wire).unwrap(), vec![info]);
        let mut out = [0xa5u8; 8];
        info.emit(&mut out).unwrap();
        assert_eq!(out, wire);
        // Unnamed reserved bits survive a round trip.
        let odd = [8, 1, 0x00, 0x01, 0, 0, 0, 1];
        let parsed = parse_nd_options(&odd).unwrap();
        assert!(matches!(
            parsed[0],
            NdOption::HomeAgentInformation(HomeAgentInformation {
                flags: HaInfoFlags(1),
                ..
            })
        ));
        parsed[0].emit(&mut out).unwrap();
        assert_eq!(out, odd);
        assert_eq!(
            parse_nd_options(&[8, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadLength)
        );
    }

    #[test]
    fn bad_options() {
        assert_eq!(
            parse_nd_options(&[1, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::Malformed("ND option length 0"))
        );
        assert_eq!(parse_nd_options(&[1]), Err(Error::Truncated));
        assert_eq!(
            parse_nd_options(&[1, 2, 0, 0, 0, 0, 0, 0]),
            Err(Error::Truncated)
        );
        assert_eq!(
            parse_nd_options(&[5, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadLength)
        );
        assert_eq!(parse_nd_options(&PREFIX_INFO[..24]), Err(Error::Truncated));
        let mut p = PREFIX_INFO;
        p[1] = 3;
        assert_eq!(parse_nd_options(&p[..24]), Err(Error::BadLength));
        let mut it = NdOptions::new(&[1, 0, 1, 1]);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        let big = [0u8; MAX_OPTION_LEN];
        let mut out = vec![0u8; 2 * MAX_OPTION_LEN];
        assert_eq!(
            NdOption::Unknown {
                option_type: 99,
                data: &big
            }
            .emit(&mut out),
            Err(Error::BadLength)
        );
        assert_eq!(
            NdOption::Mtu(1280).emit(&mut out[..7]),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn flags_debug_names_bits() {
        assert_eq!(format!("{:?}", NaFlags::R | NaFlags::O), "NaFlags(R|O)");
        assert_eq!(format!("{:?}", RaFlags(0x88)), "RaFlags(M|0x08)");
        assert!((NaFlags::S).solicited());
        assert!(!(NaFlags::S).override_flag());
    }

    #[test]
    fn solicited_node_address() {
        assert_eq!(
            solicited_node("2001:db8:1::1:2345:6789".parse().unwrap()),
            "ff02::1:ff45:6789".parse::<Ipv6Addr>().unwrap()
        );
    }
}
