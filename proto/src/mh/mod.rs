//! The IPv6 Mobility Header (RFC 6275 §6.1) and the messages NEMO Basic Support and
//! DSMIPv6 exchange in it: Binding Update, Binding Acknowledgement, Binding Error,
//! Binding Refresh Request and Home Agent Switch (RFC 5142). Every other MH type parses
//! as [`MhRepr::Other`].
//!
//! ```text
//!  0       1       2       3       4       5       6
//! +-------+-------+-------+-------+-------+-------+------------------------+
//! | Proto | HdrLen| MH Ty | Rsvd  |    Checksum   | message data, options  |
//! +-------+-------+-------+-------+-------+-------+------------------------+
//! ```
//! Total length = (Header Len + 1) × 8 octets.

mod binding_ack;
mod binding_error;
mod binding_update;
pub(crate) mod flags;
mod home_agent_switch;

use std::net::Ipv6Addr;

pub use binding_ack::{BaFlags, BaStatus, BindingAck};
pub use binding_error::{BeStatus, BindingError, BindingRefreshRequest};
pub use binding_update::{BindingUpdate, BuFlags};
pub use home_agent_switch::HomeAgentSwitch;

use crate::option::{MobilityOption, ParseConfig, code_enum, options_len, write_options};
use crate::{Error, IPPROTO_MH, IPPROTO_NONE, Result, checksum};

mod field {
    use core::ops::Range;

    pub const PAYLOAD_PROTO: usize = 0;
    pub const HEADER_LEN: usize = 1;
    pub const MH_TYPE: usize = 2;
    pub const RESERVED: usize = 3;
    pub const CHECKSUM: Range<usize> = 4..6;
    pub const DATA: usize = 6;
}

/// Octets of the common header before the message data.
pub const HEADER_LEN: usize = field::DATA;
/// Largest possible Mobility Header: Header Len 255.
pub const MAX_LEN: usize = 256 * 8;

code_enum! {
    /// Mobility Header type (docs/notes.md §8).
    pub enum MhType(u8) {
        /// 0: Binding Refresh Request (RFC 6275).
        BindingRefreshRequest = 0,
        /// 1: Home Test Init (RFC 6275).
        HomeTestInit = 1,
        /// 2: Care-of Test Init (RFC 6275).
        CareOfTestInit = 2,
        /// 3: Home Test (RFC 6275).
        HomeTest = 3,
        /// 4: Care-of Test (RFC 6275).
        CareOfTest = 4,
        /// 5: Binding Update (RFC 6275).
        BindingUpdate = 5,
        /// 6: Binding Acknowledgement (RFC 6275).
        BindingAck = 6,
        /// 7: Binding Error (RFC 6275).
        BindingError = 7,
        /// 8: Fast Binding Update (RFC 5568).
        FastBindingUpdate = 8,
        /// 9: Fast Binding Acknowledgement (RFC 5568).
        FastBindingAck = 9,
        /// 10: Fast Neighbor Advertisement (RFC 5568).
        FastNeighborAdvertisement = 10,
        /// 11: Experimental Mobility Header (RFC 5096).
        Experimental = 11,
        /// 12: Home Agent Switch (RFC 5142).
        HomeAgentSwitch = 12,
        /// 13: Heartbeat (RFC 5847).
        Heartbeat = 13,
        /// 14: Handover Initiate (RFC 5568).
        HandoverInitiate = 14,
        /// 15: Handover Acknowledge (RFC 5568).
        HandoverAcknowledge = 15,
        /// 16: Binding Revocation (RFC 5846).
        BindingRevocation = 16,
        /// 17: Localized Routing Initiation (RFC 6705).
        LocalizedRoutingInitiation = 17,
        /// 18: Localized Routing Acknowledgment (RFC 6705).
        LocalizedRoutingAck = 18,
    }
}

impl MhType {
    /// Smallest valid Header Len for the type (RFC 6275 §9.2, as Linux `mip6_mh_len()`
    /// enforces): BRR 0; HoTI, CoTI, BU, BA 1; HoT, CoT, BE 2. `None` where this crate
    /// knows no minimum.
    pub fn min_header_len(self) -> Option<u8> {
        match self {
            MhType::BindingRefreshRequest => Some(0),
            MhType::HomeTestInit
            | MhType::CareOfTestInit
            | MhType::BindingUpdate
            | MhType::BindingAck => Some(1),
            MhType::HomeTest | MhType::CareOfTest | MhType::BindingError => Some(2),
            _ => None,
        }
    }
}

/// A read/write view of a Mobility Header in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Ensures the common header fits and the length Header Len claims fits in the buffer,
    /// so no accessor can panic. A buffer longer than the MH is accepted; accessors stop at
    /// the Header Len boundary.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < self.total_len() {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Payload Proto (must be 59, RFC 6275 §6.1.1).
    pub fn payload_proto(&self) -> u8 {
        self.buffer.as_ref()[field::PAYLOAD_PROTO]
    }

    /// Header Len: MH length in 8-octet units, not counting the first 8 octets.
    pub fn header_len(&self) -> u8 {
        self.buffer.as_ref()[field::HEADER_LEN]
    }

    /// Total MH length in octets, `(Header Len + 1) × 8`.
    pub fn total_len(&self) -> usize {
        (usize::from(self.header_len()) + 1) * 8
    }

    /// MH Type.
    pub fn mh_type(&self) -> MhType {
        MhType::from(self.buffer.as_ref()[field::MH_TYPE])
    }

    /// Reserved octet.
    pub fn reserved(&self) -> u8 {
        self.buffer.as_ref()[field::RESERVED]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The whole Mobility Header, up to the Header Len boundary.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.total_len()]
    }

    /// Message data: the octets after the common header up to the Header Len boundary
    /// (type-specific fixed part, then options).
    pub fn message_data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..self.total_len()]
    }

    /// True if the checksum verifies under the IPv6 pseudo-header (RFC 6275 §6.1.1). `src`
    /// is the home address when the packet carries a Home Address option, `dst` the final
    /// destination (the RH2 address if present) (docs/notes.md §4).
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let data = self.as_bytes();
        let acc = checksum::pseudo_header_v6(src, dst, IPPROTO_MH, data.len() as u32);
        checksum::finish(checksum::sum(acc, data)) == 0
    }

    /// Where an ICMPv6 Parameter Problem (code 0) should point, if this MH must be
    /// rejected that way (RFC 6275 §9.2): `Some(0)` for a Payload Proto other than 59,
    /// `Some(1)` for a Header Len below the type's minimum, `None` otherwise.
    pub fn parameter_problem_pointer(&self) -> Option<usize> {
        if self.payload_proto() != IPPROTO_NONE {
            return Some(field::PAYLOAD_PROTO);
        }
        match self.mh_type().min_header_len() {
            Some(min) if self.header_len() < min => Some(field::HEADER_LEN),
            _ => None,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets Payload Proto.
    pub fn set_payload_proto(&mut self, value: u8) {
        self.buffer.as_mut()[field::PAYLOAD_PROTO] = value;
    }

    /// Sets Header Len.
    pub fn set_header_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HEADER_LEN] = value;
    }

    /// Sets MH Type.
    pub fn set_mh_type(&mut self, value: MhType) {
        self.buffer.as_mut()[field::MH_TYPE] = value.into();
    }

    /// Sets the reserved octet.
    pub fn set_reserved(&mut self, value: u8) {
        self.buffer.as_mut()[field::RESERVED] = value;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Mutable message data (see [`Packet::message_data`]).
    pub fn message_data_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[field::DATA..end]
    }

    /// Computes and stores the checksum (see [`Packet::verify_checksum`] for the
    /// addresses). Call it last: after `emit` and after [`crate::auth::sign`].
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::v6(src, dst, IPPROTO_MH, self.as_bytes());
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed Mobility Header message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MhRepr<'a> {
    /// Type 0.
    BindingRefreshRequest(BindingRefreshRequest<'a>),
    /// Type 5.
    BindingUpdate(BindingUpdate<'a>),
    /// Type 6.
    BindingAck(BindingAck<'a>),
    /// Type 7.
    BindingError(BindingError<'a>),
    /// Type 12 (RFC 5142).
    HomeAgentSwitch(HomeAgentSwitch<'a>),
    /// Any other type, undecoded: `data` is the message data (MH octet 6 up to the Header
    /// Len boundary). Its length must make the MH a multiple of 8 octets to be emitted.
    /// Using it for types 0, 5, 6, 7 or 12 is a caller error (it would re-parse as those).
    Other {
        /// MH Type.
        mh_type: MhType,
        /// Message data.
        data: &'a [u8],
    },
}

impl<'a> From<BindingUpdate<'a>> for MhRepr<'a> {
    fn from(m: BindingUpdate<'a>) -> Self {
        MhRepr::BindingUpdate(m)
    }
}

impl<'a> From<BindingAck<'a>> for MhRepr<'a> {
    fn from(m: BindingAck<'a>) -> Self {
        MhRepr::BindingAck(m)
    }
}

impl<'a> From<BindingError<'a>> for MhRepr<'a> {
    fn from(m: BindingError<'a>) -> Self {
        MhRepr::BindingError(m)
    }
}

impl<'a> From<HomeAgentSwitch<'a>> for MhRepr<'a> {
    fn from(m: HomeAgentSwitch<'a>) -> Self {
        MhRepr::HomeAgentSwitch(m)
    }
}

impl<'a> From<BindingRefreshRequest<'a>> for MhRepr<'a> {
    fn from(m: BindingRefreshRequest<'a>) -> Self {
        MhRepr::BindingRefreshRequest(m)
    }
}

impl<'a> MhRepr<'a> {
    /// Parses a checked packet: Payload Proto must be 59 (else
    /// `Error::Malformed("payload proto")`) and Header Len at least the type's minimum
    /// (else `Error::Malformed("header len")`); see
    /// [`Packet::parameter_problem_pointer`] for the ICMPv6 reply. The checksum is not
    /// checked here (it needs the addresses): call [`Packet::verify_checksum`] first.
    /// One pass over the options, one allocation for the option list.
    pub fn parse(packet: &Packet<&'a [u8]>, cfg: ParseConfig) -> Result<MhRepr<'a>> {
        packet.check_len()?;
        if packet.payload_proto() != IPPROTO_NONE {
            return Err(Error::Malformed("payload proto"));
        }
        let mh_type = packet.mh_type();
        if let Some(min) = mh_type.min_header_len()
            && packet.header_len() < min
        {
            return Err(Error::Malformed("header len"));
        }
        let data: &'a [u8] = &packet.buffer[field::DATA..packet.total_len()];
        Ok(match mh_type {
            MhType::BindingRefreshRequest => {
                MhRepr::BindingRefreshRequest(BindingRefreshRequest::parse_data(data, cfg)?)
            }
            MhType::BindingUpdate => MhRepr::BindingUpdate(BindingUpdate::parse_data(data, cfg)?),
            MhType::BindingAck => MhRepr::BindingAck(BindingAck::parse_data(data, cfg)?),
            MhType::BindingError => MhRepr::BindingError(BindingError::parse_data(data, cfg)?),
            MhType::HomeAgentSwitch => {
                MhRepr::HomeAgentSwitch(HomeAgentSwitch::parse_data(data, cfg)?)
            }
            mh_type => MhRepr::Other { mh_type, data },
        })
    }

    /// Parses a raw Mobility Header: [`Packet::new_checked`] then [`MhRepr::parse`].
    pub fn parse_bytes(bytes: &'a [u8], cfg: ParseConfig) -> Result<MhRepr<'a>> {
        Self::parse(&Packet::new_checked(bytes)?, cfg)
    }

    /// The MH Type.
    pub fn mh_type(&self) -> MhType {
        match self {
            MhRepr::BindingRefreshRequest(_) => MhType::BindingRefreshRequest,
            MhRepr::BindingUpdate(_) => MhType::BindingUpdate,
            MhRepr::BindingAck(_) => MhType::BindingAck,
            MhRepr::BindingError(_) => MhType::BindingError,
            MhRepr::HomeAgentSwitch(_) => MhType::HomeAgentSwitch,
            MhRepr::Other { mh_type, .. } => *mh_type,
        }
    }

    /// The options (empty for `Other`).
    pub fn options(&self) -> &[MobilityOption<'a>] {
        match self {
            MhRepr::BindingRefreshRequest(m) => &m.options,
            MhRepr::BindingUpdate(m) => &m.options,
            MhRepr::BindingAck(m) => &m.options,
            MhRepr::BindingError(m) => &m.options,
            MhRepr::HomeAgentSwitch(m) => &m.options,
            MhRepr::Other { .. } => &[],
        }
    }

    /// Octets of the type-specific fixed part.
    fn fixed_len(&self) -> usize {
        match self {
            MhRepr::BindingRefreshRequest(_) => BindingRefreshRequest::FIXED_LEN,
            MhRepr::BindingUpdate(_) => BindingUpdate::FIXED_LEN,
            MhRepr::BindingAck(_) => BindingAck::FIXED_LEN,
            MhRepr::BindingError(_) => BindingError::FIXED_LEN,
            MhRepr::HomeAgentSwitch(m) => m.fixed_len(),
            MhRepr::Other { data, .. } => data.len(),
        }
    }

    /// Exact length `emit` writes: common header, fixed part, options with alignment
    /// padding, padded to a multiple of 8.
    /// For `Other` it is the common header plus `data`, unpadded.
    pub fn buffer_len(&self) -> usize {
        if let MhRepr::Other { data, .. } = self {
            return HEADER_LEN + data.len();
        }
        let start = HEADER_LEN + self.fixed_len();
        start + options_len(start, self.options())
    }

    /// Writes the whole MH into the start of the packet's buffer, every octet included:
    /// Payload Proto 59, Header Len, type, zero reserved octet, **zero checksum** (fill it
    /// with [`Packet::fill_checksum`] afterwards, after [`crate::auth::sign`] if used),
    /// fixed part, options and padding. Does not allocate.
    ///
    /// Errors: `BufferTooSmall`; `BadLength` if the MH would exceed [`MAX_LEN`] (which
    /// also bounds a Home Agent Switch's address count) or an `Other` message's length is
    /// not a multiple of 8; option errors from
    /// [`MobilityOption::check_emit`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        self.emit_to(packet.buffer.as_mut()).map(|_| ())
    }

    /// Emits into the start of `buf` and returns the length written (the same as
    /// [`MhRepr::emit`] on a packet over `buf`).
    pub fn emit_to(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        if len > MAX_LEN || !len.is_multiple_of(8) {
            return Err(Error::BadLength);
        }
        let buf = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        buf[field::PAYLOAD_PROTO] = IPPROTO_NONE;
        buf[field::HEADER_LEN] = (len / 8 - 1) as u8;
        buf[field::MH_TYPE] = self.mh_type().into();
        buf[field::RESERVED] = 0;
        buf[field::CHECKSUM].fill(0);
        let start = HEADER_LEN + self.fixed_len();
        let (fixed, opts) = buf[field::DATA..].split_at_mut(self.fixed_len());
        match self {
            MhRepr::BindingRefreshRequest(m) => m.emit_fixed(fixed),
            MhRepr::BindingUpdate(m) => m.emit_fixed(fixed),
            MhRepr::BindingAck(m) => m.emit_fixed(fixed),
            MhRepr::BindingError(m) => m.emit_fixed(fixed),
            MhRepr::HomeAgentSwitch(m) => m.emit_fixed(fixed),
            MhRepr::Other { data, .. } => fixed.copy_from_slice(data),
        }
        // `opts` is exactly options_len(start, ..) long: buffer_len() computed it.
        write_options(opts, start, self.options())?;
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::option::{Ipv4AckStatus, NAT_REFRESH_NONE, strategies};
    use crate::seq::{Lifetime, SequenceNumber};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const CFG: ParseConfig = ParseConfig::new();

    fn hoa() -> Ipv6Addr {
        "2001:db8:2::100".parse().unwrap()
    }
    fn ha() -> Ipv6Addr {
        "2001:db8:2::1".parse().unwrap()
    }

    /// our worked example (an explicit NEMO BU with an IPv4 MNP), checksum computed independently (python3) over
    /// src = HoA 2001:db8:2::100, dst = HA 2001:db8:2::1.
    static BU_BYTES: [u8; 64] = [
        0x3b, 0x07, 0x05, 0x00, 0xe1, 0x5a, 0x03, 0xe8, 0xc4, 0x00, 0x00, 0x96, 0x01, 0x00, 0x03,
        0x10, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x02, 0x01, 0x02, 0x00, 0x00, 0x06, 0x12, 0x00, 0x30, 0x20, 0x01, 0x0d, 0xb8, 0x01,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1d, 0x06, 0x72, 0x00,
        0xc0, 0x00, 0x02, 0x10,
    ];

    fn bu_repr() -> MhRepr<'static> {
        MhRepr::BindingUpdate(BindingUpdate {
            sequence: SequenceNumber(1000),
            flags: BuFlags::A | BuFlags::H | BuFlags::R,
            lifetime: Lifetime(150),
            options: vec![
                MobilityOption::AlternateCareOfAddress("2001:db8:1::2".parse().unwrap()),
                MobilityOption::MobileNetworkPrefix {
                    prefix_len: 48,
                    prefix: "2001:db8:100::".parse().unwrap(),
                },
                MobilityOption::Ipv4HomeAddress {
                    prefix_len: 28,
                    p: true,
                    address: Ipv4Addr::new(192, 0, 2, 16),
                },
            ],
        })
    }

    /// BA: status 0, R, seq 1000, lifetime 150, BRA 128, IPv4 Ack /28, NAT Detection F
    /// 110 s; checksum (python3) over src = HA, dst = HoA.
    static BA_BYTES: [u8; 32] = [
        59,
        3,
        6,
        0,
        0xda,
        0xa2,
        0,
        0x40,
        0x03,
        0xe8,
        0x00,
        0x96, // header, fixed
        2,
        2,
        0,
        0x80, // BRA at 12 (2n)
        30,
        6,
        0,
        28 << 2,
        192,
        0,
        2,
        16, // IPv4 Ack at 16 (4n)
        31,
        6,
        0x80,
        0,
        0,
        0,
        0,
        110, // NAT Detection at 24 (4n)
    ];

    fn ba_repr() -> MhRepr<'static> {
        MhRepr::BindingAck(BindingAck {
            status: BaStatus::Accepted,
            flags: BaFlags::R,
            sequence: SequenceNumber(1000),
            lifetime: Lifetime(150),
            options: vec![
                MobilityOption::BindingRefreshAdvice {
                    refresh_interval: Lifetime(128),
                },
                MobilityOption::Ipv4AddressAck {
                    status: Ipv4AckStatus::Success,
                    prefix_len: 28,
                    address: Ipv4Addr::new(192, 0, 2, 16),
                },
                MobilityOption::NatDetection {
                    f: true,
                    refresh_time: 110,
                },
            ],
        })
    }

    fn be_bytes() -> Vec<u8> {
        let mut v = vec![59, 2, 7, 0, 0, 0, 2, 0];
        v.extend_from_slice(&hoa().octets());
        v
    }

    fn be_repr() -> MhRepr<'static> {
        MhRepr::BindingError(BindingError {
            status: BeStatus::UnrecognizedMhType,
            home_address: hoa(),
            options: vec![],
        })
    }

    static BRR_BYTES: [u8; 8] = [59, 0, 0, 0, 0, 0, 0, 0];

    /// HoTI: reserved(2) + cookie(8), Header Len 1.
    static HOTI_BYTES: [u8; 16] = [59, 1, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];

    fn all_fixtures() -> Vec<(Vec<u8>, MhRepr<'static>)> {
        let mut bu = BU_BYTES.to_vec();
        bu[4..6].fill(0);
        let mut ba = BA_BYTES.to_vec();
        ba[4..6].fill(0);
        vec![
            (bu, bu_repr()),
            (ba, ba_repr()),
            (be_bytes(), be_repr()),
            (
                BRR_BYTES.to_vec(),
                MhRepr::BindingRefreshRequest(BindingRefreshRequest::default()),
            ),
            (
                HOTI_BYTES.to_vec(),
                MhRepr::Other {
                    mh_type: MhType::HomeTestInit,
                    data: &HOTI_BYTES[6..],
                },
            ),
        ]
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&BU_BYTES[..]).unwrap();
        assert_eq!(p.payload_proto(), 59);
        assert_eq!(p.header_len(), 7);
        assert_eq!(p.total_len(), 64);
        assert_eq!(p.mh_type(), MhType::BindingUpdate);
        assert_eq!(p.reserved(), 0);
        assert_eq!(p.checksum(), 0xe15a);
        assert_eq!(p.message_data(), &BU_BYTES[6..]);
        assert!(p.verify_checksum(&hoa(), &ha()));
        assert!(!p.verify_checksum(&"2001:db8:1::2".parse().unwrap(), &ha()));
        assert_eq!(p.parameter_problem_pointer(), None);

        let p = Packet::new_checked(&BA_BYTES[..]).unwrap();
        assert_eq!(p.mh_type(), MhType::BindingAck);
        assert_eq!(p.total_len(), 32);
        assert!(p.verify_checksum(&ha(), &hoa()));
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 64];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_payload_proto(59);
        p.set_header_len(7);
        p.set_mh_type(MhType::BindingUpdate);
        p.set_reserved(0);
        p.message_data_mut().copy_from_slice(&BU_BYTES[6..]);
        p.fill_checksum(&hoa(), &ha());
        assert_eq!(p.checksum(), 0xe15a);
        assert_eq!(&buf[..], &BU_BYTES[..]);
    }

    #[test]
    fn parse() {
        for (bytes, repr) in all_fixtures() {
            assert_eq!(MhRepr::parse_bytes(&bytes, CFG), Ok(repr), "{bytes:x?}");
        }
        // With the checksum set, too.
        assert_eq!(MhRepr::parse_bytes(&BU_BYTES, CFG), Ok(bu_repr()));
    }

    #[test]
    fn emit() {
        for (bytes, repr) in all_fixtures() {
            assert_eq!(repr.buffer_len(), bytes.len(), "{repr:?}");
            let mut buf = vec![0xa5; bytes.len()];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            repr.emit(&mut p).unwrap();
            assert_eq!(buf, bytes, "{repr:?}");
        }
    }

    #[test]
    fn worked_example_with_checksum() {
        let repr = bu_repr();
        assert_eq!(repr.buffer_len(), 64);
        let mut buf = [0xa5u8; 64];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut p).unwrap();
        assert_eq!(p.header_len(), 7);
        p.fill_checksum(&hoa(), &ha());
        assert_eq!(buf, BU_BYTES);
        // IPv4 HoA u16 for a /28 with P: 0x7200.
        assert_eq!(&buf[58..60], &[0x72, 0x00]);
    }

    #[test]
    fn ba_with_checksum() {
        let mut buf = [0xa5u8; 32];
        let n = ba_repr().emit_to(&mut buf).unwrap();
        assert_eq!(n, 32);
        Packet::new_unchecked(&mut buf[..]).fill_checksum(&ha(), &hoa());
        assert_eq!(buf, BA_BYTES);
    }

    #[test]
    fn bu_without_options_is_16_octets() {
        let repr = MhRepr::BindingUpdate(BindingUpdate {
            sequence: SequenceNumber(1),
            flags: BuFlags::A | BuFlags::H,
            lifetime: Lifetime::ZERO,
            options: vec![],
        });
        let mut buf = [0xa5u8; 16];
        repr.emit_to(&mut buf).unwrap();
        assert_eq!(buf, [59, 1, 5, 0, 0, 0, 0, 1, 0xc0, 0, 0, 0, 1, 2, 0, 0]);
        assert_eq!(MhRepr::parse_bytes(&buf, CFG), Ok(repr));
    }

    #[test]
    fn ba_nat_detection_no_nat() {
        let repr = MhRepr::BindingAck(BindingAck {
            status: BaStatus::NotAuthorizedForPrefix,
            flags: BaFlags::R,
            sequence: SequenceNumber(7),
            lifetime: Lifetime::ZERO,
            options: vec![MobilityOption::NatDetection {
                f: false,
                refresh_time: NAT_REFRESH_NONE,
            }],
        });
        let mut buf = vec![0xa5; repr.buffer_len()];
        repr.emit_to(&mut buf).unwrap();
        // NAT Detection at 12 (4n), then PadN 2 to reach 24: Header Len 2.
        assert_eq!(
            buf,
            [
                59, 2, 6, 0, 0, 0, 142, 0x40, 0, 7, 0, 0, 31, 6, 0, 0, 0xff, 0xff, 0xff, 0xff, 1,
                2, 0, 0
            ]
        );
        assert_eq!(MhRepr::parse_bytes(&buf, CFG), Ok(repr));
    }

    #[test]
    fn bad_headers() {
        // Too short for the common header / for Header Len.
        assert_eq!(
            Packet::new_checked(&[59u8, 0, 0][..]),
            Err(Error::Truncated)
        );
        assert_eq!(Packet::new_checked(&BU_BYTES[..63]), Err(Error::Truncated));
        assert_eq!(
            MhRepr::parse_bytes(&BU_BYTES[..56], CFG),
            Err(Error::Truncated)
        );
        // Payload Proto not 59.
        let mut b = BU_BYTES;
        b[0] = 6;
        assert_eq!(
            MhRepr::parse_bytes(&b, CFG),
            Err(Error::Malformed("payload proto"))
        );
        assert_eq!(
            Packet::new_checked(&b[..])
                .unwrap()
                .parameter_problem_pointer(),
            Some(0)
        );
        // Header Len below the minimum: BU with Header Len 0, BE with 1.
        let b = [59u8, 0, 5, 0, 0, 0, 0, 1];
        assert_eq!(
            MhRepr::parse_bytes(&b, CFG),
            Err(Error::Malformed("header len"))
        );
        assert_eq!(
            Packet::new_checked(&b[..])
                .unwrap()
                .parameter_problem_pointer(),
            Some(1)
        );
        let mut b = be_bytes();
        b[1] = 1;
        assert_eq!(
            MhRepr::parse_bytes(&b, CFG),
            Err(Error::Malformed("header len"))
        );
        // Header Len larger than the buffer.
        let mut b = BU_BYTES;
        b[1] = 8;
        assert_eq!(MhRepr::parse_bytes(&b, CFG), Err(Error::Truncated));
        // Header Len shorter than the options: the MNP (36..56) cut at 48.
        let mut b = BU_BYTES;
        b[1] = 5;
        assert_eq!(MhRepr::parse_bytes(&b, CFG), Err(Error::Truncated));
        // An option whose length runs past the end.
        let mut b = BU_BYTES;
        b[57] = 7;
        assert_eq!(MhRepr::parse_bytes(&b, CFG), Err(Error::Truncated));
        // A fixed-size option with the wrong length (IPv4 HoA 4 + PadN 0).
        let mut b = BU_BYTES;
        b[57] = 4;
        b[62] = 1;
        b[63] = 0;
        assert_eq!(MhRepr::parse_bytes(&b, CFG), Err(Error::BadLength));
        // IPv4 HoA prefix length 0.
        let mut b = BU_BYTES;
        b[58] = 0x02;
        assert_eq!(
            MhRepr::parse_bytes(&b, CFG),
            Err(Error::Malformed("IPv4 home address prefix length"))
        );
        // Longer buffer than the MH: fine, the tail is ignored.
        let mut long = BU_BYTES.to_vec();
        long.extend_from_slice(&[0xff; 8]);
        assert_eq!(MhRepr::parse_bytes(&long, CFG), Ok(bu_repr()));
    }

    #[test]
    fn misaligned_options_still_parse() {
        // Alignment is a sender's duty; a receiver parses by length (RFC 6275 §6.2.1).
        let mut b = vec![59, 2, 5, 0, 0, 0, 0, 1, 0x80, 0, 0, 1];
        b.extend_from_slice(&[29, 6, 0x80, 0, 10, 0, 0, 1]); // at 12: 4n, fine
        b.extend_from_slice(&[3, 2, 0, 0]); // wrong fixed length for ACoA
        assert_eq!(MhRepr::parse_bytes(&b, CFG), Err(Error::BadLength));
        let mut b = vec![59, 2, 5, 0, 0, 0, 0, 1, 0x80, 0, 0, 1];
        b.extend_from_slice(&[0, 29, 6, 0x80, 0, 10, 0, 0, 1, 1, 1, 0]); // v4 HoA at 13
        let MhRepr::BindingUpdate(bu) = MhRepr::parse_bytes(&b, CFG).unwrap() else {
            panic!()
        };
        assert_eq!(bu.options.len(), 1);
    }

    #[test]
    fn emit_errors() {
        let repr = bu_repr();
        let mut buf = [0u8; 63];
        assert_eq!(repr.emit_to(&mut buf), Err(Error::BufferTooSmall));
        let other = MhRepr::Other {
            mh_type: MhType::Heartbeat,
            data: &[0; 5],
        };
        let mut buf = [0u8; 64];
        assert_eq!(other.emit_to(&mut buf), Err(Error::BadLength));
        let big = [0u8; 200];
        let huge = MhRepr::BindingRefreshRequest(BindingRefreshRequest {
            options: vec![
                MobilityOption::Unknown {
                    option_type: 200,
                    data: &big,
                };
                11
            ],
        });
        let mut buf = vec![0u8; huge.buffer_len()];
        assert_eq!(huge.emit_to(&mut buf), Err(Error::BadLength));
    }

    #[test]
    fn every_type_parses() {
        for t in 0..=255u8 {
            let mut b = [0u8; 24];
            b[0] = 59;
            b[1] = 2;
            b[2] = t;
            let r = MhRepr::parse_bytes(&b, CFG);
            let r = r.unwrap_or_else(|e| panic!("type {t}: {e}"));
            assert_eq!(r.mh_type(), MhType::from(t));
            assert_eq!(u8::from(MhType::from(t)), t);
        }
        assert_eq!(MhType::from(18), MhType::LocalizedRoutingAck);
        assert_eq!(MhType::from(19), MhType::Unknown(19));
    }

    fn arb_mh() -> impl Strategy<Value = MhRepr<'static>> {
        let opts = || strategies::option_list(false);
        prop_oneof![
            (any::<u16>(), any::<u16>(), any::<u16>(), opts()).prop_map(|(s, f, l, options)| {
                MhRepr::BindingUpdate(BindingUpdate {
                    sequence: SequenceNumber(s),
                    flags: BuFlags(f),
                    lifetime: Lifetime(l),
                    options,
                })
            }),
            (any::<u8>(), any::<u8>(), any::<u16>(), any::<u16>(), opts()).prop_map(
                |(st, f, s, l, options)| MhRepr::BindingAck(BindingAck {
                    status: BaStatus::from(st),
                    flags: BaFlags(f),
                    sequence: SequenceNumber(s),
                    lifetime: Lifetime(l),
                    options,
                })
            ),
            (any::<u8>(), any::<u128>(), opts()).prop_map(|(st, a, options)| {
                MhRepr::BindingError(BindingError {
                    status: BeStatus::from(st),
                    home_address: Ipv6Addr::from(a),
                    options,
                })
            }),
            opts().prop_map(
                |options| MhRepr::BindingRefreshRequest(BindingRefreshRequest { options })
            ),
            (proptest::collection::vec(any::<u128>(), 0..6), opts()).prop_map(|(a, options)| {
                MhRepr::HomeAgentSwitch(HomeAgentSwitch {
                    home_agents: a.into_iter().map(Ipv6Addr::from).collect(),
                    options,
                })
            }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_mh(), src in any::<u128>(), dst in any::<u128>()) {
            let len = repr.buffer_len();
            prop_assert_eq!(len % 8, 0);
            let mut buf = vec![0xa5; len];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            repr.emit(&mut p).unwrap();
            prop_assert_eq!(p.total_len(), len);
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            p.fill_checksum(&src, &dst);
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum(&src, &dst));
            prop_assert_eq!(MhRepr::parse(&p, CFG), Ok(repr));
        }

        #[test]
        fn truncations_never_panic(repr in arb_mh(), cut in any::<prop::sample::Index>()) {
            let mut buf = vec![0; repr.buffer_len()];
            repr.emit_to(&mut buf).unwrap();
            let cut = cut.index(buf.len());
            prop_assert!(MhRepr::parse_bytes(&buf[..cut], CFG).is_err());
        }

        #[test]
        fn random_bytes_never_panic(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..96),
            t in 0u8..13,
            legacy in any::<bool>(),
        ) {
            // Make the header plausible often enough to reach option parsing.
            if bytes.len() >= 8 {
                bytes[0] = 59;
                bytes[1] = (bytes.len() / 8 - 1) as u8;
                bytes[2] = t;
            }
            let cfg = ParseConfig::new().with_legacy_ipv4_mnp(legacy);
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = p.verify_checksum(&Ipv6Addr::LOCALHOST, &Ipv6Addr::LOCALHOST);
                let _ = p.parameter_problem_pointer();
                if let Ok(r) = MhRepr::parse(&p, cfg) {
                    // Whatever parses re-emits to the same meaning.
                    let mut out = vec![0; r.buffer_len()];
                    r.emit_to(&mut out).unwrap();
                    prop_assert_eq!(MhRepr::parse_bytes(&out, cfg), Ok(r));
                }
            }
        }
    }
}
