//! Mobility options: the TLVs that follow the fixed part of a Mobility Header message
//! (RFC 6275 §6.2), with the options of NEMO (RFC 3963 §4.3), the MN Identifier (RFC 4283),
//! MN-HA authentication (RFC 4285), DSMIPv6 (RFC 5555 §3), MCoA (RFC 5648 §4.3) and flow
//! bindings (RFC 6089 §4.2, their contents in [`crate::flow`]).
//!
//! * [`MobilityOption`] is the Repr of one option, borrowing variable data from the buffer.
//! * [`Options`] walks an options region zero-copy, yielding `Result<MobilityOption>` and
//!   stopping at the first malformed option.
//! * [`emit_options`] / [`options_len`] lay a list out with the alignment padding of
//!   RFC 6275 §6.2.1 and pad the end to a multiple of 8 octets.
//!
//! Offsets passed to the layout functions are **from the start of the Mobility Header**,
//! because the `xn+y` alignment rules are stated relative to it (the MH itself starts on an
//! 8-octet boundary).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::flow::{FlowIdentification, IdList};
use crate::seq::Lifetime;
use crate::{Error, Result};

/// Declares a `u8`/`u16` code enum whose unknown values survive as `Unknown(..)`, so codes
/// never fail to parse and re-emit unchanged.
macro_rules! code_enum {
    (
        $(#[$attr:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$vattr:meta])* $variant:ident = $value:literal, )+
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vattr])* $variant, )+
            /// A value without a name here; kept so it re-emits unchanged. Constructing it
            /// with a named value is a caller error (use `From`).
            Unknown($ty),
        }

        impl ::core::convert::From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            fn from(value: $name) -> $ty {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use code_enum;

/// Parser choices that change how option bytes are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ParseConfig {
    /// Decode option type 11 as SHISA's IPv4 Mobile Network Prefix option
    /// ([`MobilityOption::LegacyIpv4Mnp`]). Off by default: IANA assigns 11 to the CGA
    /// Parameters Request option (RFC 4866), so only a peer known to be SHISA-era gear
    /// (draft-shima-nemo-v4prefix) should be read this way.
    pub legacy_ipv4_mnp: bool,
}

impl ParseConfig {
    /// The standards-only configuration (same as `Default`).
    pub const fn new() -> Self {
        ParseConfig {
            legacy_ipv4_mnp: false,
        }
    }

    /// Sets [`ParseConfig::legacy_ipv4_mnp`].
    #[must_use]
    pub const fn with_legacy_ipv4_mnp(mut self, on: bool) -> Self {
        self.legacy_ipv4_mnp = on;
        self
    }
}

code_enum! {
    /// Mobility option type (IANA "Mobility Options" registry; docs/notes.md §8).
    pub enum OptionType(u8) {
        /// RFC 6275 §6.2.2: a single octet, no length.
        Pad1 = 0,
        /// RFC 6275 §6.2.3.
        PadN = 1,
        /// RFC 6275 §6.2.4.
        BindingRefreshAdvice = 2,
        /// RFC 6275 §6.2.5.
        AlternateCareOfAddress = 3,
        /// RFC 6275 §6.2.6.
        NonceIndices = 4,
        /// RFC 6275 §6.2.7.
        BindingAuthorizationData = 5,
        /// RFC 3963 §4.3.
        MobileNetworkPrefix = 6,
        /// RFC 5568 (FMIPv6); also SHISA's pre-RFC Binding Identifier.
        MhLinkLayerAddress = 7,
        /// RFC 4283 §3.
        MobileNodeIdentifier = 8,
        /// RFC 4285 §5 (MN-HA / MN-AAA).
        Authentication = 9,
        /// RFC 4285 §6 (MESG-ID).
        ReplayProtection = 10,
        /// RFC 4866; also SHISA's IPv4 MNP option, see [`ParseConfig::legacy_ipv4_mnp`].
        CgaParametersRequest = 11,
        /// RFC 4866; also SHISA's IPv4 HoA option.
        CgaParameters = 12,
        /// RFC 5096.
        Experimental = 18,
        /// RFC 5094.
        VendorSpecific = 19,
        /// RFC 5555 §3.1.1.
        Ipv4HomeAddress = 29,
        /// RFC 5555 §3.2.1.
        Ipv4AddressAck = 30,
        /// RFC 5555 §3.2.2.
        NatDetection = 31,
        /// RFC 5555 §3.1.2.
        Ipv4CareOfAddress = 32,
        /// RFC 5648 §4.3.
        BindingIdentifier = 35,
        /// RFC 6089 §4.2.2 (see [`crate::flow`] on the number).
        FlowSummary = 44,
        /// RFC 6089 §4.2.
        FlowIdentification = 45,
    }
}

/// SHISA's option type for the IPv4 Mobile Network Prefix option; collides with IANA's CGA
/// Parameters Request (RFC 4866).
pub const LEGACY_IPV4_MNP_TYPE: u8 = 11;
/// Mobile Node Identifier subtype: NAI (RFC 4283 §3).
pub const MN_ID_SUBTYPE_NAI: u8 = 1;
/// Authentication option subtype: MN-HA (RFC 4285 §5.1).
pub const AUTH_SUBTYPE_MN_HA: u8 = 1;
/// Authentication option subtype: MN-AAA (RFC 4285 §5.2).
pub const AUTH_SUBTYPE_MN_AAA: u8 = 2;
/// Length of the HMAC-SHA1-96 authenticator of RFC 4285 and RFC 6275 §5.2.6.
pub const AUTHENTICATOR_LEN: usize = 12;
/// NAT Detection refresh time meaning "no keepalives needed" (RFC 5555 §3.2.2).
pub const NAT_REFRESH_NONE: u32 = 0xffff_ffff;

code_enum! {
    /// Status of an IPv4 Address Acknowledgement option (RFC 5555 §3.2.1). Values below
    /// 128 mean success.
    pub enum Ipv4AckStatus(u8) {
        /// 0.
        Success = 0,
        /// 128.
        ReasonUnspecified = 128,
        /// 129.
        AdministrativelyProhibited = 129,
        /// 130.
        IncorrectIpv4HomeAddress = 130,
        /// 131.
        InvalidIpv4Address = 131,
        /// 132.
        DynamicIpv4HomeAddressAssignmentNotAvailable = 132,
        /// 133.
        PrefixAllocationUnauthorized = 133,
    }
}

impl Ipv4AckStatus {
    /// Name and defining RFC of the status, for logs (RFC 5555 §3.2.1).
    pub fn meaning(self) -> (&'static str, &'static str) {
        match u8::from(self) {
            0 => ("Success", "RFC 5555"),
            128 => ("Failure, reason unspecified", "RFC 5555"),
            129 => ("Administratively prohibited", "RFC 5555"),
            130 => ("Incorrect IPv4 home address", "RFC 5555"),
            131 => ("Invalid IPv4 address", "RFC 5555"),
            132 => (
                "Dynamic IPv4 home address assignment not available",
                "RFC 5555",
            ),
            133 => ("Prefix allocation unauthorized", "RFC 5555"),
            s if s < 128 => ("Success (unassigned code)", "RFC 5555"),
            _ => ("Failure (unassigned code)", "RFC 5555"),
        }
    }
}

impl Ipv4AckStatus {
    /// True for 0-127 (RFC 5555 §3.2.1).
    pub fn is_success(self) -> bool {
        u8::from(self) < 128
    }
}

/// One mobility option (RFC 6275 §6.2). Variable-length data borrows the parsed buffer.
///
/// Reserved bits and fields are not kept: they are sent as zero and ignored on receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MobilityOption<'a> {
    /// One octet of padding (RFC 6275 §6.2.2).
    Pad1,
    /// Padding of `len + 2` octets; `len` is the Length field (RFC 6275 §6.2.3). Emitted
    /// with zero contents; received contents are ignored.
    PadN(u8),
    /// RFC 6275 §6.2.4: suggested refresh interval, in the same 4-second units as lifetimes.
    BindingRefreshAdvice {
        /// Refresh interval.
        refresh_interval: Lifetime,
    },
    /// RFC 6275 §6.2.5: the care-of address to register instead of the IPv6 source.
    AlternateCareOfAddress(Ipv6Addr),
    /// RFC 6275 §6.2.6 (return routability only).
    NonceIndices {
        /// Home Nonce Index.
        home_nonce_index: u16,
        /// Care-of Nonce Index.
        care_of_nonce_index: u16,
    },
    /// RFC 6275 §6.2.7: the authenticator; must be the last option.
    BindingAuthorizationData(&'a [u8]),
    /// RFC 3963 §4.3: one IPv6 Mobile Network Prefix.
    MobileNetworkPrefix {
        /// Prefix length, 0..=128.
        prefix_len: u8,
        /// The prefix.
        prefix: Ipv6Addr,
    },
    /// RFC 4283 §3. `identifier` is never empty.
    MobileNodeIdentifier {
        /// Subtype ([`MN_ID_SUBTYPE_NAI`] = 1).
        subtype: u8,
        /// The identifier, e.g. an NAI `user@realm`.
        identifier: &'a [u8],
    },
    /// RFC 4285 §5: MN-HA or MN-AAA authentication; must be the last option (an MN-HA one
    /// precedes an MN-AAA one). `data` is never empty.
    Authentication {
        /// [`AUTH_SUBTYPE_MN_HA`] or [`AUTH_SUBTYPE_MN_AAA`].
        subtype: u8,
        /// Mobility SPI (0-255 reserved).
        spi: u32,
        /// Authentication data (12 octets for HMAC-SHA1-96).
        data: &'a [u8],
    },
    /// RFC 4285 §6: 64-bit NTP timestamp (see [`crate::seq::NtpTimestamp`]).
    ReplayProtection {
        /// The timestamp.
        timestamp: u64,
    },
    /// RFC 5555 §3.1.1. `prefix_len` is 1..=32.
    Ipv4HomeAddress {
        /// Prefix length (6 bits on the wire; 0 is invalid).
        prefix_len: u8,
        /// P: a mobile network prefix is requested.
        p: bool,
        /// The IPv4 home address or prefix; 0.0.0.0 asks the HA to allocate one.
        address: Ipv4Addr,
    },
    /// RFC 5555 §3.2.1.
    Ipv4AddressAck {
        /// Status.
        status: Ipv4AckStatus,
        /// Allocated prefix length, 0..=32 (0 on failure).
        prefix_len: u8,
        /// The IPv4 home address the HA registered.
        address: Ipv4Addr,
    },
    /// RFC 5555 §3.2.2.
    NatDetection {
        /// F: UDP encapsulation required.
        f: bool,
        /// Keepalive period in seconds; 0 = ignore; [`NAT_REFRESH_NONE`] = none needed.
        refresh_time: u32,
    },
    /// RFC 5555 §3.1.2.
    Ipv4CareOfAddress(Ipv4Addr),
    /// RFC 5648 §4.3. BID 0 is reserved but parsed, so an HA can answer it with
    /// MCOA MALFORMED (164).
    BindingIdentifier {
        /// Binding ID.
        bid: u16,
        /// Per-BID status (BA status codes; meaningful in a BA only).
        status: u8,
        /// H: simultaneous home and foreign binding.
        h: bool,
        /// BID-PRI (RFC 6089 §4.1): the 7 bits after H, RFC 5648's reserved bits. 0 is RFC
        /// 5648's format (§5.2.1); otherwise the care-of address's place in the ordered
        /// list, lower first. A BA copies the BU's (§5.3.5).
        bid_pri: u8,
        /// Optional care-of address (IPv4 or IPv6).
        coa: Option<IpAddr>,
    },
    /// RFC 6089 §4.2.2: the FIDs of flow bindings to keep (refresh), at least one.
    FlowSummary(IdList<'a>),
    /// RFC 6089 §4.2: one flow binding to add or modify (BU), or its outcome (BA).
    FlowIdentification(FlowIdentification<'a>),
    /// SHISA's IPv4 Mobile Network Prefix option (draft-shima-nemo-v4prefix as implemented
    /// in KAME): `11 | 6 | reserved | prefix len | IPv4 prefix`, alignment 4n. Type 11
    /// collides with IANA's CGA Parameters Request (RFC 4866): it is only parsed with
    /// [`ParseConfig::legacy_ipv4_mnp`], and only emitted when the caller lists it.
    LegacyIpv4Mnp {
        /// Prefix length, 0..=32.
        prefix_len: u8,
        /// The IPv4 prefix.
        prefix: Ipv4Addr,
    },
    /// Any other option, kept byte for byte (RFC 6275 §6.2.1: unknown options are skipped).
    Unknown {
        /// The Type octet (never 0 or 1).
        option_type: u8,
        /// The option data (after the Length octet).
        data: &'a [u8],
    },
}

/// Largest value of an option's Length octet.
const MAX_DATA: usize = u8::MAX as usize;

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn ipv4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn ipv6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

fn expect_len(data: &[u8], len: usize) -> Result<()> {
    if data.len() == len {
        Ok(())
    } else {
        Err(Error::BadLength)
    }
}

impl<'a> MobilityOption<'a> {
    /// The option's type. [`MobilityOption::LegacyIpv4Mnp`] reports
    /// `OptionType::CgaParametersRequest` (11), the IANA meaning of its code point.
    pub fn option_type(&self) -> OptionType {
        OptionType::from(self.type_octet())
    }

    /// The Type octet as sent.
    pub fn type_octet(&self) -> u8 {
        match *self {
            MobilityOption::Pad1 => 0,
            MobilityOption::PadN(_) => 1,
            MobilityOption::BindingRefreshAdvice { .. } => 2,
            MobilityOption::AlternateCareOfAddress(_) => 3,
            MobilityOption::NonceIndices { .. } => 4,
            MobilityOption::BindingAuthorizationData(_) => 5,
            MobilityOption::MobileNetworkPrefix { .. } => 6,
            MobilityOption::MobileNodeIdentifier { .. } => 8,
            MobilityOption::Authentication { .. } => 9,
            MobilityOption::ReplayProtection { .. } => 10,
            MobilityOption::Ipv4HomeAddress { .. } => 29,
            MobilityOption::Ipv4AddressAck { .. } => 30,
            MobilityOption::NatDetection { .. } => 31,
            MobilityOption::Ipv4CareOfAddress(_) => 32,
            MobilityOption::BindingIdentifier { .. } => 35,
            MobilityOption::FlowSummary(_) => 44,
            MobilityOption::FlowIdentification(_) => 45,
            MobilityOption::LegacyIpv4Mnp { .. } => LEGACY_IPV4_MNP_TYPE,
            MobilityOption::Unknown { option_type, .. } => option_type,
        }
    }

    /// Value of the Length octet (octets after Type and Length); 0 for Pad1, which has none.
    /// May exceed 255 for over-long data, which `emit` then refuses.
    pub fn data_len(&self) -> usize {
        match *self {
            MobilityOption::Pad1 => 0,
            MobilityOption::PadN(n) => n as usize,
            MobilityOption::BindingRefreshAdvice { .. } => 2,
            MobilityOption::AlternateCareOfAddress(_) => 16,
            MobilityOption::NonceIndices { .. } => 4,
            MobilityOption::BindingAuthorizationData(d) => d.len(),
            MobilityOption::MobileNetworkPrefix { .. } => 18,
            MobilityOption::MobileNodeIdentifier { identifier, .. } => 1 + identifier.len(),
            MobilityOption::Authentication { data, .. } => 5 + data.len(),
            MobilityOption::ReplayProtection { .. } => 8,
            MobilityOption::Ipv4HomeAddress { .. }
            | MobilityOption::Ipv4AddressAck { .. }
            | MobilityOption::NatDetection { .. }
            | MobilityOption::Ipv4CareOfAddress(_)
            | MobilityOption::LegacyIpv4Mnp { .. } => 6,
            MobilityOption::BindingIdentifier { coa, .. } => match coa {
                None => 4,
                Some(IpAddr::V4(_)) => 8,
                Some(IpAddr::V6(_)) => 20,
            },
            MobilityOption::FlowSummary(fids) => fids.wire_len(),
            MobilityOption::FlowIdentification(fi) => fi.data_len(),
            MobilityOption::Unknown { data, .. } => data.len(),
        }
    }

    /// Octets the option occupies on the wire, Type and Length included.
    pub fn wire_len(&self) -> usize {
        match self {
            MobilityOption::Pad1 => 1,
            _ => 2 + self.data_len(),
        }
    }

    /// The `xn+y` alignment of the option's Type octet as `(x, y)` (RFC 6275 §6.2.1;
    /// docs/notes.md §8). `(1, 0)` means none.
    ///
    /// Binding Authorization Data and Authentication have a further rule when they are the
    /// last option: see [`emit_options`].
    pub fn alignment(&self) -> (usize, usize) {
        match *self {
            MobilityOption::BindingRefreshAdvice { .. } | MobilityOption::NonceIndices { .. } => {
                (2, 0)
            }
            MobilityOption::AlternateCareOfAddress(_) => (8, 6),
            MobilityOption::BindingAuthorizationData(_) => (8, 2),
            MobilityOption::MobileNetworkPrefix { .. } => (8, 4),
            MobilityOption::Authentication { .. } => (4, 1),
            MobilityOption::ReplayProtection { .. } => (8, 2),
            MobilityOption::Ipv4HomeAddress { .. }
            | MobilityOption::Ipv4AddressAck { .. }
            | MobilityOption::NatDetection { .. }
            | MobilityOption::Ipv4CareOfAddress(_)
            | MobilityOption::LegacyIpv4Mnp { .. } => (4, 0),
            MobilityOption::BindingIdentifier { coa: None, .. } => (2, 0),
            MobilityOption::BindingIdentifier { coa: Some(_), .. } => (8, 2),
            MobilityOption::FlowSummary(_) => (2, 0),
            MobilityOption::FlowIdentification(fi) => fi.alignment(),
            MobilityOption::Pad1
            | MobilityOption::PadN(_)
            | MobilityOption::MobileNodeIdentifier { .. }
            | MobilityOption::Unknown { .. } => (1, 0),
        }
    }

    /// Options that must be last with nothing after them, because a MAC computed up to
    /// them must cover the whole message (RFC 6275 §6.2.7, RFC 4285 §5).
    fn must_end_message(&self) -> bool {
        matches!(
            self,
            MobilityOption::BindingAuthorizationData(_) | MobilityOption::Authentication { .. }
        )
    }

    /// Parses one option from its Type octet and data (the `Length` octets after the
    /// Length field). Pad1 has no data; pass an empty slice.
    #[inline]
    pub fn parse(option_type: u8, data: &'a [u8], cfg: ParseConfig) -> Result<Self> {
        Ok(match option_type {
            0 => {
                expect_len(data, 0)?;
                MobilityOption::Pad1
            }
            1 => MobilityOption::PadN(data.len().try_into().map_err(|_| Error::BadLength)?),
            2 => {
                expect_len(data, 2)?;
                MobilityOption::BindingRefreshAdvice {
                    refresh_interval: Lifetime(be16(data)),
                }
            }
            3 => {
                expect_len(data, 16)?;
                MobilityOption::AlternateCareOfAddress(ipv6(data))
            }
            4 => {
                expect_len(data, 4)?;
                MobilityOption::NonceIndices {
                    home_nonce_index: be16(&data[0..2]),
                    care_of_nonce_index: be16(&data[2..4]),
                }
            }
            5 => {
                if data.is_empty() {
                    return Err(Error::BadLength);
                }
                MobilityOption::BindingAuthorizationData(data)
            }
            6 => {
                expect_len(data, 18)?;
                let prefix_len = data[1];
                if prefix_len > 128 {
                    return Err(Error::Malformed("mobile network prefix length"));
                }
                MobilityOption::MobileNetworkPrefix {
                    prefix_len,
                    prefix: ipv6(&data[2..18]),
                }
            }
            8 => {
                if data.is_empty() {
                    return Err(Error::BadLength);
                }
                if data.len() == 1 {
                    return Err(Error::Malformed("mobile node identifier empty"));
                }
                MobilityOption::MobileNodeIdentifier {
                    subtype: data[0],
                    identifier: &data[1..],
                }
            }
            9 => {
                // Subtype and SPI, then at least one octet of authentication data.
                if data.len() < 6 {
                    return Err(Error::BadLength);
                }
                MobilityOption::Authentication {
                    subtype: data[0],
                    spi: be32(&data[1..5]),
                    data: &data[5..],
                }
            }
            10 => {
                expect_len(data, 8)?;
                MobilityOption::ReplayProtection {
                    timestamp: u64::from_be_bytes(data.try_into().map_err(|_| Error::BadLength)?),
                }
            }
            LEGACY_IPV4_MNP_TYPE if cfg.legacy_ipv4_mnp => {
                expect_len(data, 6)?;
                let prefix_len = data[1];
                if prefix_len > 32 {
                    return Err(Error::Malformed("IPv4 mobile network prefix length"));
                }
                MobilityOption::LegacyIpv4Mnp {
                    prefix_len,
                    prefix: ipv4(&data[2..6]),
                }
            }
            29 => {
                expect_len(data, 6)?;
                let w = be16(data);
                let prefix_len = (w >> 10) as u8;
                // RFC 5555 §3.1.1: zero is an error; more than 32 cannot be an IPv4 prefix.
                if prefix_len == 0 || prefix_len > 32 {
                    return Err(Error::Malformed("IPv4 home address prefix length"));
                }
                MobilityOption::Ipv4HomeAddress {
                    prefix_len,
                    p: w & 0x0200 != 0,
                    address: ipv4(&data[2..6]),
                }
            }
            30 => {
                expect_len(data, 6)?;
                let prefix_len = data[1] >> 2;
                if prefix_len > 32 {
                    return Err(Error::Malformed(
                        "IPv4 address acknowledgement prefix length",
                    ));
                }
                MobilityOption::Ipv4AddressAck {
                    status: Ipv4AckStatus::from(data[0]),
                    prefix_len,
                    address: ipv4(&data[2..6]),
                }
            }
            31 => {
                expect_len(data, 6)?;
                MobilityOption::NatDetection {
                    f: data[0] & 0x80 != 0,
                    refresh_time: be32(&data[2..6]),
                }
            }
            32 => {
                expect_len(data, 6)?;
                MobilityOption::Ipv4CareOfAddress(ipv4(&data[2..6]))
            }
            35 => {
                let coa = match data.len() {
                    4 => None,
                    8 => Some(IpAddr::V4(ipv4(&data[4..8]))),
                    20 => Some(IpAddr::V6(ipv6(&data[4..20]))),
                    _ => return Err(Error::BadLength),
                };
                MobilityOption::BindingIdentifier {
                    bid: be16(data),
                    status: data[2],
                    h: data[3] & 0x80 != 0,
                    bid_pri: data[3] & 0x7f,
                    coa,
                }
            }
            44 => MobilityOption::FlowSummary(IdList::parse(data)?),
            45 => MobilityOption::FlowIdentification(FlowIdentification::parse(data)?),
            option_type => MobilityOption::Unknown { option_type, data },
        })
    }

    /// Checks what `emit` cannot encode: over-long data, out-of-range prefix lengths,
    /// empty data where the format forbids it, and `Unknown` with a pad type.
    pub fn check_emit(&self) -> Result<()> {
        if self.data_len() > MAX_DATA {
            return Err(Error::BadLength);
        }
        match *self {
            MobilityOption::BindingAuthorizationData([]) => Err(Error::BadLength),
            MobilityOption::Authentication { data: [], .. } => Err(Error::BadLength),
            MobilityOption::MobileNodeIdentifier { identifier: [], .. } => {
                Err(Error::Malformed("mobile node identifier empty"))
            }
            MobilityOption::MobileNetworkPrefix { prefix_len, .. } if prefix_len > 128 => {
                Err(Error::Malformed("mobile network prefix length"))
            }
            MobilityOption::Ipv4HomeAddress { prefix_len, .. }
                if prefix_len == 0 || prefix_len > 32 =>
            {
                Err(Error::Malformed("IPv4 home address prefix length"))
            }
            MobilityOption::Ipv4AddressAck { prefix_len, .. } if prefix_len > 32 => Err(
                Error::Malformed("IPv4 address acknowledgement prefix length"),
            ),
            MobilityOption::LegacyIpv4Mnp { prefix_len, .. } if prefix_len > 32 => {
                Err(Error::Malformed("IPv4 mobile network prefix length"))
            }
            MobilityOption::Unknown { option_type, .. } if option_type <= 1 => {
                Err(Error::Malformed("unknown option with a pad type"))
            }
            MobilityOption::FlowSummary(fids) => fids.check_emit(),
            MobilityOption::FlowIdentification(fi) => fi.check_emit(),
            _ => Ok(()),
        }
    }

    /// Writes the option into the first [`wire_len`](Self::wire_len) octets of `buf`,
    /// every octet included (reserved fields and PadN contents as zero).
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        self.check_emit()?;
        let len = self.wire_len();
        let buf = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        buf[0] = self.type_octet();
        if let MobilityOption::Pad1 = self {
            return Ok(());
        }
        buf[1] = self.data_len() as u8;
        let d = &mut buf[2..];
        match *self {
            MobilityOption::Pad1 => {}
            MobilityOption::PadN(_) => d.fill(0),
            MobilityOption::BindingRefreshAdvice { refresh_interval } => {
                d.copy_from_slice(&refresh_interval.0.to_be_bytes());
            }
            MobilityOption::AlternateCareOfAddress(a) => d.copy_from_slice(&a.octets()),
            MobilityOption::NonceIndices {
                home_nonce_index,
                care_of_nonce_index,
            } => {
                d[0..2].copy_from_slice(&home_nonce_index.to_be_bytes());
                d[2..4].copy_from_slice(&care_of_nonce_index.to_be_bytes());
            }
            MobilityOption::BindingAuthorizationData(a) => d.copy_from_slice(a),
            MobilityOption::MobileNetworkPrefix { prefix_len, prefix } => {
                d[0] = 0;
                d[1] = prefix_len;
                d[2..18].copy_from_slice(&prefix.octets());
            }
            MobilityOption::MobileNodeIdentifier {
                subtype,
                identifier,
            } => {
                d[0] = subtype;
                d[1..].copy_from_slice(identifier);
            }
            MobilityOption::Authentication { subtype, spi, data } => {
                d[0] = subtype;
                d[1..5].copy_from_slice(&spi.to_be_bytes());
                d[5..].copy_from_slice(data);
            }
            MobilityOption::ReplayProtection { timestamp } => {
                d.copy_from_slice(&timestamp.to_be_bytes());
            }
            MobilityOption::Ipv4HomeAddress {
                prefix_len,
                p,
                address,
            } => {
                let w = (u16::from(prefix_len) << 10) | if p { 0x0200 } else { 0 };
                d[0..2].copy_from_slice(&w.to_be_bytes());
                d[2..6].copy_from_slice(&address.octets());
            }
            MobilityOption::Ipv4AddressAck {
                status,
                prefix_len,
                address,
            } => {
                d[0] = status.into();
                d[1] = prefix_len << 2;
                d[2..6].copy_from_slice(&address.octets());
            }
            MobilityOption::NatDetection { f, refresh_time } => {
                d[0..2].copy_from_slice(&(if f { 0x8000u16 } else { 0 }).to_be_bytes());
                d[2..6].copy_from_slice(&refresh_time.to_be_bytes());
            }
            MobilityOption::Ipv4CareOfAddress(a) => {
                d[0..2].fill(0);
                d[2..6].copy_from_slice(&a.octets());
            }
            MobilityOption::BindingIdentifier {
                bid,
                status,
                h,
                bid_pri,
                coa,
            } => {
                d[0..2].copy_from_slice(&bid.to_be_bytes());
                d[2] = status;
                d[3] = if h { 0x80 } else { 0 } | (bid_pri & 0x7f);
                match coa {
                    None => {}
                    Some(IpAddr::V4(a)) => d[4..8].copy_from_slice(&a.octets()),
                    Some(IpAddr::V6(a)) => d[4..20].copy_from_slice(&a.octets()),
                }
            }
            MobilityOption::LegacyIpv4Mnp { prefix_len, prefix } => {
                d[0] = 0;
                d[1] = prefix_len;
                d[2..6].copy_from_slice(&prefix.octets());
            }
            MobilityOption::FlowSummary(fids) => fids.emit(d),
            MobilityOption::FlowIdentification(fi) => fi.emit_data(d)?,
            MobilityOption::Unknown { data, .. } => d.copy_from_slice(data),
        }
        Ok(())
    }
}

/// Zero-copy iterator over an options region, yielding every option including Pad1 and
/// PadN. After the first error it yields that error once and then stops.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    data: &'a [u8],
    pos: usize,
    cfg: ParseConfig,
    failed: bool,
}

impl<'a> Options<'a> {
    /// Walks `region`, the octets from the first option to the end of the Mobility Header.
    pub fn new(region: &'a [u8], cfg: ParseConfig) -> Self {
        Options {
            data: region,
            pos: 0,
            cfg,
            failed: false,
        }
    }

    /// Offset within the region of the next option to be read.
    pub fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<MobilityOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.data.get(self.pos..).filter(|r| !r.is_empty())?;
        let r = raw_tlv(rest).and_then(|(t, data, len)| {
            let opt = MobilityOption::parse(t, data, self.cfg)?;
            self.pos += len;
            Ok(opt)
        });
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

/// Splits the TLV at the start of `rest` into (type, data, total length).
#[inline]
fn raw_tlv(rest: &[u8]) -> Result<(u8, &[u8], usize)> {
    match rest {
        [] => Err(Error::Truncated),
        [0, ..] => Ok((0, &[], 1)),
        [_] => Err(Error::Truncated),
        [t, len, tail @ ..] => {
            let len = *len as usize;
            let data = tail.get(..len).ok_or(Error::Truncated)?;
            Ok((*t, data, 2 + len))
        }
    }
}

/// Walks the raw TLVs of an options region without decoding them: yields
/// `(offset in region, type, data)`. Used where only some options matter and the others
/// must not be interpreted (e.g. locating the authentication option, [`crate::auth`]).
pub fn raw_options(region: &[u8]) -> impl Iterator<Item = Result<(usize, u8, &[u8])>> {
    let mut pos = 0;
    let mut failed = false;
    core::iter::from_fn(move || {
        if failed || pos >= region.len() {
            return None;
        }
        match raw_tlv(&region[pos..]) {
            Ok((t, data, len)) => {
                let at = pos;
                pos += len;
                Some(Ok((at, t, data)))
            }
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    })
}

/// Parses an options region into the list of meaningful options, dropping Pad1 and PadN.
/// One allocation for typical messages.
pub fn parse_options<'a>(region: &'a [u8], cfg: ParseConfig) -> Result<Vec<MobilityOption<'a>>> {
    // Nearly every option is at least 6 octets once aligned, so this rarely regrows.
    let mut out = Vec::with_capacity(region.len() / 6 + 1);
    // The same walk as `Options`, written out so each option is built in place.
    let mut pos = 0;
    while let Some(rest) = region.get(pos..).filter(|r| !r.is_empty()) {
        let (t, data, len) = raw_tlv(rest)?;
        pos += len;
        // Pad1 and PadN carry no meaning; their contents are ignored (RFC 6275 §6.2.3).
        if t > 1 {
            out.push(MobilityOption::parse(t, data, cfg)?);
        }
    }
    Ok(out)
}

/// Padding to insert before `opt` when the next free MH offset is `off`.
///
/// Normally `(y - off) mod x` for the option's `xn+y` (RFC 6275 §6.2.1). When the option is
/// the last one and must end the message (Binding Authorization Data, Authentication), it
/// is placed so it **ends** on an 8-octet boundary and needs no trailing padding: 8n+2 for
/// a 12-octet authenticator (RFC 6275 §6.2.7) and 8n+5 for a 12-octet MN-HA MAC, which
/// also satisfies its 4n+1. For other data lengths ending on a boundary wins over the
/// nominal alignment, since padding after the MAC would not be covered by it.
fn pad_before(off: usize, opt: &MobilityOption<'_>, is_last: bool) -> usize {
    if is_last && opt.must_end_message() {
        (off + opt.wire_len()).wrapping_neg() & 7
    } else {
        // x is a power of two (KAME's MIP6_PADLEN).
        let (x, y) = opt.alignment();
        y.wrapping_sub(off) & (x - 1)
    }
}

/// Octets [`emit_options`] writes for `opts` when the first option goes at MH offset
/// `start_offset`, padding included; `start_offset + options_len(..)` is a multiple of 8.
pub fn options_len(start_offset: usize, opts: &[MobilityOption<'_>]) -> usize {
    let mut off = start_offset;
    for (i, opt) in opts.iter().enumerate() {
        off += pad_before(off, opt, i + 1 == opts.len());
        off += opt.wire_len();
    }
    off += off.wrapping_neg() & 7;
    off - start_offset
}

fn write_pad(buf: &mut [u8]) {
    match buf.len() {
        0 => {}
        1 => buf[0] = 0,
        n => {
            buf[0] = 1;
            buf[1] = (n - 2) as u8;
            buf[2..].fill(0);
        }
    }
}

/// Writes `opts` in order into `buf`, whose first octet is at MH offset `start_offset`,
/// inserting Pad1/PadN so each option's Type octet lands on its alignment and padding the
/// end to a multiple of 8 (see `pad_before` for the last-option rule). Options already in
/// the list (including pads) are written as given. Returns the octets written, equal to
/// [`options_len`]. Does not allocate.
pub fn emit_options(
    buf: &mut [u8],
    start_offset: usize,
    opts: &[MobilityOption<'_>],
) -> Result<usize> {
    let total = options_len(start_offset, opts);
    let buf = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
    write_options(buf, start_offset, opts)
}

/// [`emit_options`] into a buffer of exactly `options_len(start_offset, opts)` octets.
pub(crate) fn write_options(
    buf: &mut [u8],
    start_offset: usize,
    opts: &[MobilityOption<'_>],
) -> Result<usize> {
    let total = buf.len();
    let mut pos = 0;
    for (i, opt) in opts.iter().enumerate() {
        let pad = pad_before(start_offset + pos, opt, i + 1 == opts.len());
        write_pad(&mut buf[pos..pos + pad]);
        pos += pad;
        opt.emit(&mut buf[pos..])?;
        pos += opt.wire_len();
    }
    write_pad(&mut buf[pos..total]);
    Ok(total)
}

#[cfg(test)]
pub(crate) mod strategies {
    //! proptest strategies for option lists, shared with the MH tests.
    use super::*;
    use proptest::prelude::*;

    fn v6() -> impl Strategy<Value = Ipv6Addr> {
        any::<u128>().prop_map(Ipv6Addr::from)
    }

    fn v4() -> impl Strategy<Value = Ipv4Addr> {
        any::<u32>().prop_map(Ipv4Addr::from)
    }

    /// Data for variable options; leaked so the options can borrow it for 'static.
    fn bytes(min: usize, max: usize) -> impl Strategy<Value = &'static [u8]> {
        proptest::collection::vec(any::<u8>(), min..=max)
            .prop_map(|v| &*Box::leak(v.into_boxed_slice()))
    }

    /// Any option that may appear before the last one (no pads, no Authentication or
    /// Binding Authorization Data). `legacy` allows LegacyIpv4Mnp (parse with the flag)
    /// instead of Unknown{11}.
    pub fn middle_option(legacy: bool) -> impl Strategy<Value = MobilityOption<'static>> {
        prop_oneof![
            any::<u16>().prop_map(|v| MobilityOption::BindingRefreshAdvice {
                refresh_interval: Lifetime(v)
            }),
            v6().prop_map(MobilityOption::AlternateCareOfAddress),
            (any::<u16>(), any::<u16>()).prop_map(|(h, c)| MobilityOption::NonceIndices {
                home_nonce_index: h,
                care_of_nonce_index: c
            }),
            (0u8..=128, v6()).prop_map(|(prefix_len, prefix)| {
                MobilityOption::MobileNetworkPrefix { prefix_len, prefix }
            }),
            (any::<u8>(), bytes(1, 40)).prop_map(|(subtype, identifier)| {
                MobilityOption::MobileNodeIdentifier {
                    subtype,
                    identifier,
                }
            }),
            any::<u64>().prop_map(|timestamp| MobilityOption::ReplayProtection { timestamp }),
            (1u8..=32, any::<bool>(), v4()).prop_map(|(prefix_len, p, address)| {
                MobilityOption::Ipv4HomeAddress {
                    prefix_len,
                    p,
                    address,
                }
            }),
            (any::<u8>(), 0u8..=32, v4()).prop_map(|(s, prefix_len, address)| {
                MobilityOption::Ipv4AddressAck {
                    status: Ipv4AckStatus::from(s),
                    prefix_len,
                    address,
                }
            }),
            (any::<bool>(), any::<u32>())
                .prop_map(|(f, refresh_time)| MobilityOption::NatDetection { f, refresh_time }),
            v4().prop_map(MobilityOption::Ipv4CareOfAddress),
            (
                any::<u16>(),
                any::<u8>(),
                any::<bool>(),
                prop_oneof![
                    Just(None),
                    v4().prop_map(|a| Some(IpAddr::V4(a))),
                    v6().prop_map(|a| Some(IpAddr::V6(a)))
                ]
            )
                .prop_map(|(bid, status, h, coa)| MobilityOption::BindingIdentifier {
                    bid,
                    status,
                    h,
                    bid_pri: (bid % 128) as u8,
                    coa
                }),
            (0u8..=32, v4()).prop_map(move |(prefix_len, prefix)| {
                if legacy {
                    MobilityOption::LegacyIpv4Mnp { prefix_len, prefix }
                } else {
                    MobilityOption::Unknown {
                        option_type: LEGACY_IPV4_MNP_TYPE,
                        data: Box::leak(Box::new([0, prefix_len, 1, 2, 3, 4])),
                    }
                }
            }),
            crate::flow::strategies::ids().prop_map(MobilityOption::FlowSummary),
            crate::flow::strategies::flow_identification()
                .prop_map(MobilityOption::FlowIdentification),
            // Unknown types: anything we do not decode.
            (
                prop_oneof![Just(7u8), 12u8..=28, 33u8..=34, 36u8..=43, 46u8..=255],
                bytes(0, 40)
            )
                .prop_map(|(option_type, data)| MobilityOption::Unknown { option_type, data }),
        ]
    }

    /// Options allowed last: the above, or Authentication / Binding Authorization Data.
    pub fn last_option(legacy: bool) -> impl Strategy<Value = MobilityOption<'static>> {
        prop_oneof![
            middle_option(legacy),
            (any::<u8>(), any::<u32>(), bytes(1, 24)).prop_map(|(subtype, spi, data)| {
                MobilityOption::Authentication { subtype, spi, data }
            }),
            bytes(1, 24).prop_map(MobilityOption::BindingAuthorizationData),
        ]
    }

    /// A list of up to 8 options where only the last may be an authentication option.
    pub fn option_list(legacy: bool) -> impl Strategy<Value = Vec<MobilityOption<'static>>> {
        (
            proptest::collection::vec(middle_option(legacy), 0..8),
            proptest::option::of(last_option(legacy)),
        )
            .prop_map(|(mut v, last)| {
                v.extend(last);
                v
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CFG: ParseConfig = ParseConfig::new();
    const LEGACY: ParseConfig = ParseConfig::new().with_legacy_ipv4_mnp(true);

    fn one(bytes: &[u8], cfg: ParseConfig) -> Result<MobilityOption<'_>> {
        let mut it = Options::new(bytes, cfg);
        let o = it.next().expect("one option")?;
        assert_eq!(it.offset(), bytes.len(), "whole fixture consumed");
        assert!(it.next().is_none());
        Ok(o)
    }

    fn emitted(o: &MobilityOption<'_>) -> Vec<u8> {
        let mut buf = vec![0xa5; o.wire_len()];
        o.emit(&mut buf).unwrap();
        buf
    }

    /// (fixture bytes, Repr) pairs: deconstruct = parse of bytes, construct = emit of Repr.
    fn fixtures() -> Vec<(Vec<u8>, MobilityOption<'static>)> {
        let coa: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
        let mut acoa = vec![3, 16];
        acoa.extend_from_slice(&coa.octets());
        let mnp: Ipv6Addr = "2001:db8:100::".parse().unwrap();
        let mut mnp_b = vec![6, 18, 0, 48];
        mnp_b.extend_from_slice(&mnp.octets());
        let bid_v6: Ipv6Addr = "2001:db8::9".parse().unwrap();
        let mut bid6 = vec![35, 20, 0x00, 0x02, 0x00, 0x80];
        bid6.extend_from_slice(&bid_v6.octets());
        vec![
            (vec![0], MobilityOption::Pad1),
            (vec![1, 0], MobilityOption::PadN(0)),
            (vec![1, 3, 0, 0, 0], MobilityOption::PadN(3)),
            (
                vec![2, 2, 0x01, 0x2c],
                MobilityOption::BindingRefreshAdvice {
                    refresh_interval: Lifetime(300),
                },
            ),
            (acoa, MobilityOption::AlternateCareOfAddress(coa)),
            (
                vec![4, 4, 0x12, 0x34, 0x56, 0x78],
                MobilityOption::NonceIndices {
                    home_nonce_index: 0x1234,
                    care_of_nonce_index: 0x5678,
                },
            ),
            (
                vec![5, 3, 0xde, 0xad, 0x01],
                MobilityOption::BindingAuthorizationData(&[0xde, 0xad, 0x01]),
            ),
            (
                mnp_b,
                MobilityOption::MobileNetworkPrefix {
                    prefix_len: 48,
                    prefix: mnp,
                },
            ),
            (
                b"\x08\x08\x01mr@nemo".to_vec(),
                MobilityOption::MobileNodeIdentifier {
                    subtype: MN_ID_SUBTYPE_NAI,
                    identifier: b"mr@nemo",
                },
            ),
            (
                vec![9, 8, 1, 0, 0, 0x01, 0x00, 0xaa, 0xbb, 0xcc],
                MobilityOption::Authentication {
                    subtype: AUTH_SUBTYPE_MN_HA,
                    spi: 256,
                    data: &[0xaa, 0xbb, 0xcc],
                },
            ),
            (
                vec![10, 8, 0xe9, 0x1c, 0x2a, 0x00, 0x80, 0, 0, 0x01],
                MobilityOption::ReplayProtection {
                    timestamp: 0xe91c_2a00_8000_0001,
                },
            ),
            (
                // /28 with P set: 0x7200 (our worked example).
                vec![29, 6, 0x72, 0x00, 192, 0, 2, 16],
                MobilityOption::Ipv4HomeAddress {
                    prefix_len: 28,
                    p: true,
                    address: Ipv4Addr::new(192, 0, 2, 16),
                },
            ),
            (
                vec![29, 6, 0x80, 0x00, 0, 0, 0, 0],
                MobilityOption::Ipv4HomeAddress {
                    prefix_len: 32,
                    p: false,
                    address: Ipv4Addr::UNSPECIFIED,
                },
            ),
            (
                vec![30, 6, 0, 28 << 2, 192, 0, 2, 16],
                MobilityOption::Ipv4AddressAck {
                    status: Ipv4AckStatus::Success,
                    prefix_len: 28,
                    address: Ipv4Addr::new(192, 0, 2, 16),
                },
            ),
            (
                vec![30, 6, 133, 0, 192, 0, 2, 16],
                MobilityOption::Ipv4AddressAck {
                    status: Ipv4AckStatus::PrefixAllocationUnauthorized,
                    prefix_len: 0,
                    address: Ipv4Addr::new(192, 0, 2, 16),
                },
            ),
            (
                vec![31, 6, 0x80, 0, 0, 0, 0, 110],
                MobilityOption::NatDetection {
                    f: true,
                    refresh_time: 110,
                },
            ),
            (
                vec![31, 6, 0, 0, 0xff, 0xff, 0xff, 0xff],
                MobilityOption::NatDetection {
                    f: false,
                    refresh_time: NAT_REFRESH_NONE,
                },
            ),
            (
                vec![32, 6, 0, 0, 198, 51, 100, 7],
                MobilityOption::Ipv4CareOfAddress(Ipv4Addr::new(198, 51, 100, 7)),
            ),
            (
                vec![35, 4, 0x00, 0x01, 0x00, 0x00],
                MobilityOption::BindingIdentifier {
                    bid: 1,
                    status: 0,
                    h: false,
                    bid_pri: 0,
                    coa: None,
                },
            ),
            (
                // RFC 6089 §4.1: H set, BID-PRI 10 in the 7 bits after it.
                vec![35, 4, 0x00, 0x05, 0x00, 0x8a],
                MobilityOption::BindingIdentifier {
                    bid: 5,
                    status: 0,
                    h: true,
                    bid_pri: 10,
                    coa: None,
                },
            ),
            (
                vec![35, 8, 0x00, 0x07, 164, 0x00, 198, 51, 100, 7],
                MobilityOption::BindingIdentifier {
                    bid: 7,
                    status: 164,
                    h: false,
                    bid_pri: 0,
                    coa: Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7))),
                },
            ),
            (
                bid6,
                MobilityOption::BindingIdentifier {
                    bid: 2,
                    status: 0,
                    h: true,
                    bid_pri: 0,
                    coa: Some(IpAddr::V6(bid_v6)),
                },
            ),
            (
                // RFC 6089 §4.2.2: FIDs 1 and 0x1234.
                vec![44, 4, 0x00, 0x01, 0x12, 0x34],
                MobilityOption::FlowSummary(IdList::List(&[1, 0x1234])),
            ),
            (
                // RFC 6089 §4.2 in a BA: FID 3, FID-PRI 1, status 132 (FID not found).
                vec![45, 6, 0x00, 0x03, 0x00, 0x01, 0x00, 132],
                MobilityOption::FlowIdentification(FlowIdentification {
                    fid: 3,
                    fid_pri: 1,
                    status: crate::flow::FlowStatus::FidNotFound,
                    sub_options: crate::flow::FlowSubOptions::NONE,
                }),
            ),
            (
                // With a Binding Reference of BID 1 and an IPv4 selector with the protocol
                // alone (no alignment): 45 | 19 | FID 1 | PRI 5 | 0 | 0 | 2 2 0 1 | 3 7 1 0
                // 0x00 0x08 0 0 17.
                vec![
                    45, 19, 0, 1, 0, 5, 0, 0, 2, 2, 0, 1, 3, 7, 1, 0, 0x00, 0x08, 0, 0, 17,
                ],
                MobilityOption::FlowIdentification(FlowIdentification {
                    fid: 1,
                    fid_pri: 5,
                    status: crate::flow::FlowStatus::Successful,
                    sub_options: crate::flow::FlowSubOptions::List(&[
                        crate::flow::FlowSubOption::BindingReference(IdList::List(&[1])),
                        crate::flow::FlowSubOption::TrafficSelector(
                            crate::flow::TrafficSelector::Ipv4(crate::flow::Ipv4TrafficSelector {
                                protocol: Some(crate::flow::SelectorRange {
                                    start: 17,
                                    end: None,
                                }),
                                source_address: None,
                                destination_address: None,
                                spi: None,
                                source_port: None,
                                destination_port: None,
                                ds: None,
                            }),
                        ),
                    ]),
                }),
            ),
            (
                vec![18, 3, 1, 2, 3],
                MobilityOption::Unknown {
                    option_type: 18,
                    data: &[1, 2, 3],
                },
            ),
            (
                vec![200, 0],
                MobilityOption::Unknown {
                    option_type: 200,
                    data: &[],
                },
            ),
        ]
    }

    #[test]
    fn deconstruct_and_parse() {
        for (bytes, repr) in fixtures() {
            assert_eq!(one(&bytes, CFG), Ok(repr), "{bytes:x?}");
        }
    }

    #[test]
    fn construct_and_emit() {
        for (bytes, repr) in fixtures() {
            assert_eq!(repr.wire_len(), bytes.len(), "{repr:?}");
            assert_eq!(emitted(&repr), bytes, "{repr:?}");
        }
    }

    #[test]
    fn reserved_bits_ignored() {
        // IPv4 HoA reserved 0x01FF set, NAT reserved set, MNP reserved set, BID reserved.
        assert_eq!(
            one(&[29, 6, 0x81, 0xff, 10, 0, 0, 1], CFG),
            Ok(MobilityOption::Ipv4HomeAddress {
                prefix_len: 32,
                p: false,
                address: Ipv4Addr::new(10, 0, 0, 1),
            })
        );
        assert_eq!(
            one(&[31, 6, 0x7f, 0xff, 0, 0, 0, 5], CFG),
            Ok(MobilityOption::NatDetection {
                f: false,
                refresh_time: 5
            })
        );
        assert_eq!(
            one(&[30, 6, 0, (24 << 2) | 3, 10, 0, 0, 0], CFG),
            Ok(MobilityOption::Ipv4AddressAck {
                status: Ipv4AckStatus::Success,
                prefix_len: 24,
                address: Ipv4Addr::new(10, 0, 0, 0),
            })
        );
        // RFC 5648's reserved bits after H are RFC 6089's BID-PRI.
        assert_eq!(
            one(&[35, 4, 0, 1, 0, 0x7f], CFG),
            Ok(MobilityOption::BindingIdentifier {
                bid: 1,
                status: 0,
                h: false,
                bid_pri: 127,
                coa: None
            })
        );
        // PadN contents are ignored.
        assert_eq!(one(&[1, 2, 0xff, 0xee], CFG), Ok(MobilityOption::PadN(2)));
    }

    #[test]
    fn legacy_ipv4_mnp_only_when_asked() {
        let bytes = [11, 6, 0, 24, 10, 1, 2, 0];
        assert_eq!(
            one(&bytes, CFG),
            Ok(MobilityOption::Unknown {
                option_type: 11,
                data: &bytes[2..]
            })
        );
        let legacy = MobilityOption::LegacyIpv4Mnp {
            prefix_len: 24,
            prefix: Ipv4Addr::new(10, 1, 2, 0),
        };
        assert_eq!(one(&bytes, LEGACY), Ok(legacy));
        assert_eq!(emitted(&legacy), bytes);
        assert_eq!(legacy.alignment(), (4, 0));
        assert_eq!(legacy.option_type(), OptionType::CgaParametersRequest);
        assert_eq!(
            one(&[11, 5, 0, 24, 10, 1, 2], LEGACY),
            Err(Error::BadLength)
        );
        assert_eq!(
            one(&[11, 6, 0, 33, 10, 1, 2, 0], LEGACY),
            Err(Error::Malformed("IPv4 mobile network prefix length"))
        );
    }

    #[test]
    fn bad_options() {
        let cases: &[(&[u8], Error)] = &[
            (&[2], Error::Truncated),
            (&[2, 2, 0], Error::Truncated),
            (&[1, 5, 0, 0], Error::Truncated),
            (&[2, 3, 0, 0, 0], Error::BadLength),
            (&[2, 1, 0], Error::BadLength),
            (
                &[3, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                Error::BadLength,
            ),
            (&[4, 0], Error::BadLength),
            (&[5, 0], Error::BadLength),
            (&[8, 0], Error::BadLength),
            (&[8, 1, 1], Error::Malformed("mobile node identifier empty")),
            (&[9, 5, 1, 0, 0, 1, 0], Error::BadLength),
            (&[9, 0], Error::BadLength),
            (&[10, 4, 0, 0, 0, 0], Error::BadLength),
            (
                &[29, 6, 0x00, 0x00, 10, 0, 0, 1],
                Error::Malformed("IPv4 home address prefix length"),
            ),
            (
                &[29, 6, 0x84, 0x00, 10, 0, 0, 1],
                Error::Malformed("IPv4 home address prefix length"),
            ),
            (&[29, 7, 0x80, 0, 10, 0, 0, 1, 0], Error::BadLength),
            (
                &[30, 6, 0, 33 << 2, 10, 0, 0, 1],
                Error::Malformed("IPv4 address acknowledgement prefix length"),
            ),
            (&[31, 4, 0, 0, 0, 0], Error::BadLength),
            (&[32, 4, 10, 0, 0, 1], Error::BadLength),
            (&[35, 0], Error::BadLength),
            (&[35, 6, 0, 1, 0, 0, 0, 0], Error::BadLength),
            (
                &[35, 16, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                Error::BadLength,
            ),
            (&[44, 0], Error::BadLength),
            (&[44, 3, 0, 1, 0], Error::BadLength),
            (&[45, 5, 0, 1, 0, 1, 0], Error::BadLength),
        ];
        for (bytes, err) in cases {
            assert_eq!(one(bytes, CFG), Err(*err), "{bytes:?}");
        }
        let mut mnp = [0u8; 20];
        mnp[0] = 6;
        mnp[1] = 18;
        mnp[3] = 129;
        assert_eq!(
            one(&mnp, CFG),
            Err(Error::Malformed("mobile network prefix length"))
        );
    }

    #[test]
    fn iterator_stops_at_first_error() {
        // A good BRA, a truncated ACoA, then bytes that would parse.
        let bytes = [2, 2, 0, 1, 3, 16, 0, 0, 1, 0];
        let got: Vec<_> = Options::new(&bytes, CFG).collect();
        assert_eq!(
            got,
            vec![
                Ok(MobilityOption::BindingRefreshAdvice {
                    refresh_interval: Lifetime(1)
                }),
                Err(Error::Truncated)
            ]
        );
        assert_eq!(parse_options(&bytes, CFG), Err(Error::Truncated));
        // Raw walk agrees.
        let raw: Vec<_> = raw_options(&bytes).collect();
        assert_eq!(raw, vec![Ok((0, 2, &bytes[2..4])), Err(Error::Truncated)]);
    }

    #[test]
    fn parse_options_drops_pads() {
        let bytes = [0, 1, 1, 0, 2, 2, 0, 9, 0, 1, 0];
        assert_eq!(
            parse_options(&bytes, CFG),
            Ok(vec![MobilityOption::BindingRefreshAdvice {
                refresh_interval: Lifetime(9)
            }])
        );
    }

    /// our worked example (an explicit NEMO BU with an IPv4 MNP), options part (MH offsets 12..64).
    #[test]
    fn worked_example_layout() {
        let coa: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
        let mnp: Ipv6Addr = "2001:db8:100::".parse().unwrap();
        let opts = [
            MobilityOption::AlternateCareOfAddress(coa),
            MobilityOption::MobileNetworkPrefix {
                prefix_len: 48,
                prefix: mnp,
            },
            MobilityOption::Ipv4HomeAddress {
                prefix_len: 28,
                p: true,
                address: Ipv4Addr::new(192, 0, 2, 16),
            },
        ];
        assert_eq!(options_len(12, &opts), 52);
        let mut buf = [0xa5; 52];
        assert_eq!(emit_options(&mut buf, 12, &opts), Ok(52));
        let mut want = vec![1, 0, 3, 16];
        want.extend_from_slice(&coa.octets());
        want.extend_from_slice(&[1, 2, 0, 0, 6, 18, 0, 48]);
        want.extend_from_slice(&mnp.octets());
        want.extend_from_slice(&[29, 6, 0x72, 0x00, 192, 0, 2, 16]);
        assert_eq!(&buf[..], &want[..]);
        assert_eq!(parse_options(&buf, CFG).unwrap(), opts);
    }

    #[test]
    fn auth_last_ends_on_8_octet_boundary() {
        let mac = [0x11; 12];
        let auth = MobilityOption::Authentication {
            subtype: AUTH_SUBTYPE_MN_HA,
            spi: 0x1000,
            data: &mac,
        };
        for start in 0..16 {
            let n = options_len(start, &[auth]);
            let mut buf = vec![0xa5; n];
            emit_options(&mut buf, start, &[auth]).unwrap();
            let type_at = start + n - 19;
            assert_eq!(type_at % 8, 5, "start {start}");
            assert_eq!(buf[n - 19], 9);
            assert_eq!((start + n) % 8, 0);
        }
        // After an MN-ID in a BU (options at 12): 12 + 3 + 7 = 22 -> pad 7 (PadN 5) -> 29.
        let id = MobilityOption::MobileNodeIdentifier {
            subtype: 1,
            identifier: b"mr@home",
        };
        let opts = [id, auth];
        let n = options_len(12, &opts);
        assert_eq!(n, 36);
        let mut buf = vec![0xa5; n];
        emit_options(&mut buf, 12, &opts).unwrap();
        assert_eq!(&buf[10..17], &[1, 5, 0, 0, 0, 0, 0]);
        assert_eq!(&buf[17..19], &[9, 17]);
        // Not last: plain 4n+1 and trailing padding.
        let opts = [auth, id];
        let mut buf = vec![0xa5; options_len(12, &opts)];
        emit_options(&mut buf, 12, &opts).unwrap();
        assert_eq!(buf[1], 9); // MH offset 13 = 4n+1
        assert_eq!(parse_options(&buf, CFG).unwrap(), opts);
    }

    #[test]
    fn binding_authorization_data_last() {
        let bad = MobilityOption::BindingAuthorizationData(&[7; 12]);
        let nonces = MobilityOption::NonceIndices {
            home_nonce_index: 1,
            care_of_nonce_index: 2,
        };
        let opts = [nonces, bad];
        let n = options_len(12, &opts);
        let mut buf = vec![0xa5; n];
        emit_options(&mut buf, 12, &opts).unwrap();
        // Nonce Indices at MH 12..18, then the BAD at 18 = 8n+2, ending at 32.
        assert_eq!(n, 20);
        assert_eq!(buf[6], 5);
        assert_eq!(parse_options(&buf, CFG).unwrap(), opts);
        // After a BRA (12..16) the BAD is padded to 8n+2 = 18.
        let bra = MobilityOption::BindingRefreshAdvice {
            refresh_interval: Lifetime(1),
        };
        let opts = [bra, bad];
        let mut buf = vec![0xa5; options_len(12, &opts)];
        assert_eq!(buf.len(), 20);
        emit_options(&mut buf, 12, &opts).unwrap();
        assert_eq!(&buf[4..7], &[1, 0, 5]);
    }

    /// A BU's options (MH offset 12) with flow bindings: the Flow Identification option with
    /// an IPv6 selector goes to 8n (its sub-options need it, RFC 6088 §3.2), the Flow
    /// Summary to 2n, the MN-HA authenticator last.
    #[test]
    fn flow_binding_layout() {
        use crate::flow::{
            FlowStatus, FlowSubOption, FlowSubOptions, Ipv6TrafficSelector, SelectorRange,
            TrafficSelector,
        };
        let hoa: Ipv6Addr = "2001:db8:1::100".parse().unwrap();
        let subs = [
            FlowSubOption::BindingReference(IdList::List(&[2])),
            FlowSubOption::TrafficSelector(TrafficSelector::Ipv6(Ipv6TrafficSelector {
                destination_address: Some(SelectorRange::single(hoa)),
                ..Default::default()
            })),
        ];
        let fid = MobilityOption::FlowIdentification(FlowIdentification {
            fid: 1,
            fid_pri: 1,
            status: FlowStatus::Successful,
            sub_options: FlowSubOptions::List(&subs),
        });
        assert_eq!(fid.alignment(), (8, 0));
        let mac = [0x11; 12];
        let opts = [
            MobilityOption::BindingRefreshAdvice {
                refresh_interval: Lifetime(1),
            },
            fid,
            MobilityOption::FlowSummary(IdList::List(&[4, 5])),
            MobilityOption::Authentication {
                subtype: AUTH_SUBTYPE_MN_HA,
                spi: 0x1000,
                data: &mac,
            },
        ];
        let n = options_len(12, &opts);
        let mut buf = vec![0xa5; n];
        emit_options(&mut buf, 12, &opts).unwrap();
        // BRA at MH 12..16; the Flow Identification option's Type at MH 16, 8n already.
        assert_eq!(&buf[0..4], &[2, 2, 0, 1]);
        assert_eq!(buf[4], 45);
        // FID data: 6 fixed, Binding Reference at +8 (MH 24), PadN of 4 at +12, the
        // selector sub-option at +16 (MH 32), its address at MH 40.
        let fid_len = usize::from(buf[5]);
        assert_eq!(fid_len, 6 + 4 + 4 + 2 + 2 + 4 + 16);
        assert_eq!(&buf[12..16], &[2, 2, 0, 2]);
        assert_eq!(&buf[16..20], &[1, 2, 0, 0]);
        assert_eq!(&buf[20..24], &[3, 22, 2, 0]);
        assert_eq!(&buf[24..28], &[0x20, 0, 0, 0]);
        assert_eq!(&buf[28..44], &hoa.octets());
        // Flow Summary at MH 56 (2n), then the authenticator at 8n+5 ending the message.
        assert_eq!(&buf[44..50], &[44, 4, 0, 4, 0, 5]);
        assert_eq!((12 + n) % 8, 0);
        assert_eq!(buf[n - 19], 9);
        assert_eq!(parse_options(&buf, CFG).unwrap(), opts);
    }

    /// A Flow Identification option whose sub-options do not parse is still an option (so
    /// the home agent can answer it with status 130) and re-emits unchanged.
    #[test]
    fn malformed_flow_sub_options_keep_the_option() {
        let bytes = [45, 8, 0, 9, 0, 1, 0, 0, 2, 1];
        let MobilityOption::FlowIdentification(fi) = one(&bytes, CFG).unwrap() else {
            panic!("not a Flow Identification option");
        };
        assert_eq!(fi.fid, 9);
        assert!(fi.sub_options.check().is_err());
        assert_eq!(emitted(&MobilityOption::FlowIdentification(fi)), bytes);
    }

    #[test]
    fn empty_list_pads_to_8() {
        assert_eq!(options_len(12, &[]), 4);
        assert_eq!(options_len(8, &[]), 0);
        assert_eq!(options_len(24, &[]), 0);
        assert_eq!(options_len(15, &[]), 1);
        let mut buf = [0xa5; 4];
        emit_options(&mut buf, 12, &[]).unwrap();
        assert_eq!(buf, [1, 2, 0, 0]);
        let mut buf = [0xa5; 1];
        emit_options(&mut buf, 15, &[]).unwrap();
        assert_eq!(buf, [0]);
    }

    #[test]
    fn emit_refuses_unencodable() {
        let big = [0u8; 300];
        let mut buf = [0u8; 400];
        let bad: &[MobilityOption<'_>] = &[
            MobilityOption::Unknown {
                option_type: 200,
                data: &big[..256],
            },
            MobilityOption::MobileNodeIdentifier {
                subtype: 1,
                identifier: &big[..255],
            },
            MobilityOption::Authentication {
                subtype: 1,
                spi: 1,
                data: &[],
            },
            MobilityOption::BindingAuthorizationData(&[]),
            MobilityOption::Ipv4HomeAddress {
                prefix_len: 0,
                p: false,
                address: Ipv4Addr::UNSPECIFIED,
            },
            MobilityOption::Ipv4HomeAddress {
                prefix_len: 33,
                p: false,
                address: Ipv4Addr::UNSPECIFIED,
            },
            MobilityOption::MobileNetworkPrefix {
                prefix_len: 129,
                prefix: Ipv6Addr::UNSPECIFIED,
            },
            MobilityOption::Unknown {
                option_type: 1,
                data: &[],
            },
        ];
        for o in bad {
            assert!(o.emit(&mut buf).is_err(), "{o:?}");
            assert!(emit_options(&mut buf, 12, &[*o]).is_err(), "{o:?}");
        }
        let ok = MobilityOption::PadN(0);
        assert_eq!(ok.emit(&mut buf[..1]), Err(Error::BufferTooSmall));
        assert_eq!(
            emit_options(&mut buf[..3], 12, &[]),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn option_type_codes() {
        assert_eq!(OptionType::from(29), OptionType::Ipv4HomeAddress);
        assert_eq!(u8::from(OptionType::BindingIdentifier), 35);
        assert_eq!(OptionType::from(44), OptionType::FlowSummary);
        assert_eq!(OptionType::from(45), OptionType::FlowIdentification);
        assert_eq!(OptionType::from(99), OptionType::Unknown(99));
        assert_eq!(u8::from(OptionType::Unknown(99)), 99);
        for t in 0..=255u8 {
            assert_eq!(u8::from(OptionType::from(t)), t);
            assert_eq!(u8::from(Ipv4AckStatus::from(t)), t);
        }
        assert!(Ipv4AckStatus::Success.is_success());
        assert!(Ipv4AckStatus::Unknown(5).is_success());
        assert!(!Ipv4AckStatus::InvalidIpv4Address.is_success());
    }

    proptest! {
        #[test]
        fn layout_round_trip(
            start in 0usize..64,
            opts in strategies::option_list(false),
        ) {
            let n = options_len(start, &opts);
            prop_assert_eq!((start + n) % 8, 0);
            let mut buf = vec![0xa5; n];
            prop_assert_eq!(emit_options(&mut buf, start, &opts), Ok(n));
            // Every option's Type octet on its alignment.
            let mut it = Options::new(&buf, CFG);
            let mut i = 0;
            loop {
                let at = it.offset();
                let Some(o) = it.next() else { break };
                let o = o.unwrap();
                if matches!(o, MobilityOption::Pad1 | MobilityOption::PadN(_)) {
                    continue;
                }
                let is_last = i + 1 == opts.len();
                if !(is_last && o.must_end_message()) {
                    let (x, y) = o.alignment();
                    prop_assert_eq!((start + at) % x, y, "{:?}", o);
                } else {
                    prop_assert_eq!(at + o.wire_len(), n);
                }
                i += 1;
            }
            prop_assert_eq!(parse_options(&buf, CFG).unwrap(), opts);
        }

        #[test]
        fn legacy_round_trip(opts in strategies::option_list(true)) {
            let n = options_len(12, &opts);
            let mut buf = vec![0xa5; n];
            emit_options(&mut buf, 12, &opts).unwrap();
            prop_assert_eq!(parse_options(&buf, LEGACY).unwrap(), opts);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            for cfg in [CFG, LEGACY] {
                let _ = parse_options(&bytes, cfg);
                for o in Options::new(&bytes, cfg).flatten() {
                    // Whatever parses re-emits.
                    let mut buf = vec![0; o.wire_len()];
                    o.emit(&mut buf).unwrap();
                }
            }
            let _ = raw_options(&bytes).count();
        }
    }
}
