//! ICMPv6 (RFC 4443): the error messages the daemons originate, Echo, the Neighbor
//! Discovery messages (RFC 4861) they send and read, and Mobile IPv6's home agent and
//! prefix discovery (RFC 6275 §6.5-§6.8).
//!
//! ```text
//!  0       1       2       3       4               8
//! +-------+-------+-------+-------+---------------+---------------------------------+
//! | Type  | Code  |   Checksum    | 32-bit field  | message body                    |
//! +-------+-------+-------+-------+---------------+---------------------------------+
//! ```
//! The 32-bit field is an error's Pointer or MTU (RFC 4443 §3), a Router Advertisement's
//! Cur Hop Limit, flags and Router Lifetime, a Neighbor Advertisement's flags, or reserved.
//!
//! The checksum covers the IPv6 pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1).
//! [`Icmpv6Repr::emit`] leaves it zero, as a raw ICMPv6 socket wants it (the kernel fills
//! it, RFC 3542 §3.1); [`Icmpv6Packet::fill_checksum`] or [`Icmpv6Repr::emit_ipv6_packet`]
//! compute it where the whole packet is built here. [`Icmpv6Repr::parse`] does not verify
//! it: a raw ICMPv6 socket delivers only messages whose checksum the kernel verified, and
//! does not give the destination address to verify with; [`Icmpv6Packet::verify_checksum`]
//! is there for packets read below the IP layer.

mod mobility;
mod nd;

use std::net::Ipv6Addr;

pub use mobility::{
    HaadFlags, HaadReply, HaadRequest, MAX_REPLY_HOME_AGENTS, MOBILITY_FIXED_LEN,
    MobilePrefixAdvertisement, MobilePrefixSolicitation, MpaFlags, home_agents_anycast,
};
pub use nd::{
    ADVERTISEMENT_INTERVAL_LEN, HOME_AGENT_INFORMATION_LEN, HaInfoFlags, HomeAgentInformation,
    MAX_OPTION_LEN, MTU_OPTION_LEN, NaFlags, NdOption, NdOptionType, NdOptions,
    NeighborAdvertisement, NeighborSolicitation, PREFIX_INFORMATION_LEN, PrefixFlags,
    PrefixInformation, RaFlags, RouterAdvertisement, RouterSolicitation, nd_options_len,
    parse_nd_options, solicited_node,
};

use crate::ext::{IPV6_HEADER_LEN, Ipv6Header, Ipv6Repr};
use crate::option::code_enum;
use crate::{Error, IPPROTO_ICMPV6, Result, checksum};

code_enum! {
    /// ICMPv6 message type (RFC 4443 §2.1; IANA "ICMPv6 Parameters"). Types below 128
    /// are errors.
    pub enum Icmpv6Type(u8) {
        /// RFC 4443 §3.1.
        DestinationUnreachable = 1,
        /// RFC 4443 §3.2.
        PacketTooBig = 2,
        /// RFC 4443 §3.3.
        TimeExceeded = 3,
        /// RFC 4443 §3.4.
        ParameterProblem = 4,
        /// RFC 4443 §4.1.
        EchoRequest = 128,
        /// RFC 4443 §4.2.
        EchoReply = 129,
        /// RFC 4861 §4.1.
        RouterSolicitation = 133,
        /// RFC 4861 §4.2.
        RouterAdvertisement = 134,
        /// RFC 4861 §4.3.
        NeighborSolicitation = 135,
        /// RFC 4861 §4.4.
        NeighborAdvertisement = 136,
        /// RFC 4861 §4.5.
        Redirect = 137,
        /// RFC 6275 §6.5.
        HomeAgentAddressDiscoveryRequest = 144,
        /// RFC 6275 §6.6.
        HomeAgentAddressDiscoveryReply = 145,
        /// RFC 6275 §6.7.
        MobilePrefixSolicitation = 146,
        /// RFC 6275 §6.8.
        MobilePrefixAdvertisement = 147,
    }
}

impl Icmpv6Type {
    /// Error messages have types 0 to 127 (RFC 4443 §2.1).
    pub fn is_error(self) -> bool {
        u8::from(self) < 128
    }

    /// The four Mobile IPv6 discovery messages (RFC 6275 §6.5-§6.8).
    pub fn is_mobility(self) -> bool {
        matches!(
            self,
            Icmpv6Type::HomeAgentAddressDiscoveryRequest
                | Icmpv6Type::HomeAgentAddressDiscoveryReply
                | Icmpv6Type::MobilePrefixSolicitation
                | Icmpv6Type::MobilePrefixAdvertisement
        )
    }

    /// The fixed part every message of this type has: what a message must hold before
    /// its fields can be read.
    fn min_len(self) -> usize {
        match self {
            t if t.is_error() => ERROR_HEADER_LEN,
            Icmpv6Type::EchoRequest | Icmpv6Type::EchoReply => 8,
            Icmpv6Type::RouterSolicitation => field::RS_OPTIONS,
            Icmpv6Type::RouterAdvertisement => field::RA_OPTIONS,
            Icmpv6Type::NeighborSolicitation | Icmpv6Type::NeighborAdvertisement => {
                field::NS_NA_OPTIONS
            }
            Icmpv6Type::Redirect => 40,
            t if t.is_mobility() => MOBILITY_FIXED_LEN,
            _ => HEADER_LEN,
        }
    }
}

/// Parameter Problem code 0: erroneous header field encountered (RFC 4443 §3.4).
pub const PARAM_PROBLEM_ERRONEOUS_HEADER_FIELD: u8 = 0;
/// Parameter Problem code 1: unrecognized Next Header type encountered.
pub const PARAM_PROBLEM_UNRECOGNIZED_NEXT_HEADER: u8 = 1;
/// Parameter Problem code 2: unrecognized IPv6 option encountered.
pub const PARAM_PROBLEM_UNRECOGNIZED_IPV6_OPTION: u8 = 2;

/// Type, Code and Checksum: what every ICMPv6 message has (RFC 4443 §2.1).
pub const HEADER_LEN: usize = 4;
/// An error message before the invoking packet: Type, Code, Checksum, 32-bit field.
pub const ERROR_HEADER_LEN: usize = 8;
/// The IPv6 minimum MTU (RFC 8200 §5). An error message must not make a packet longer
/// than this (RFC 4443 §2.4(c)).
pub const MIN_MTU: usize = 1280;
/// The most of the invoking packet an error quotes: what fits in [`MIN_MTU`] after the
/// IPv6 header (no extension headers) and the error's own header.
pub const MAX_INVOKING_LEN: usize = MIN_MTU - IPV6_HEADER_LEN - ERROR_HEADER_LEN;
/// RFC 4861 §6.1.1, §7.1.1: ND messages are sent, and accepted, only with hop limit 255.
pub const ND_HOP_LIMIT: u8 = 255;

mod field {
    use core::ops::Range;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Pointer, MTU, or the start of the ND fields.
    pub const WORD: Range<usize> = 4..8;
    pub const INVOKING: usize = 8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQ_NO: Range<usize> = 6..8;
    pub const ECHO_DATA: usize = 8;
    pub const RA_CUR_HOP_LIMIT: usize = 4;
    pub const RA_FLAGS: usize = 5;
    pub const RA_ROUTER_LIFETIME: Range<usize> = 6..8;
    pub const RA_REACHABLE_TIME: Range<usize> = 8..12;
    pub const RA_RETRANS_TIMER: Range<usize> = 12..16;
    pub const NA_FLAGS: usize = 4;
    pub const TARGET: Range<usize> = 8..24;
    pub const RS_OPTIONS: usize = 8;
    pub const RA_OPTIONS: usize = 16;
    pub const NS_NA_OPTIONS: usize = 24;
    /// DHAAD and MPD (RFC 6275 §6.5-§6.8).
    pub const MOBILITY_IDENTIFIER: Range<usize> = 4..6;
    pub const MOBILITY_FLAGS: Range<usize> = 6..8;
    pub const MOBILITY_BODY: usize = 8;
}

/// A view over an ICMPv6 message (no IPv6 header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures the buffer holds the fixed part of its type (4 octets for a type without a
    /// name here), so every accessor of that type is safe.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b.len() < self.msg_type().min_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Type.
    pub fn msg_type(&self) -> Icmpv6Type {
        Icmpv6Type::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum as stored.
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Whether the whole buffer sums to zero under the pseudo-header of `src` → `dst`.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        checksum::v6(src, dst, IPPROTO_ICMPV6, self.buffer.as_ref()) == 0
    }

    /// The 32-bit field after the checksum: an error's Pointer (Parameter Problem) or MTU
    /// (Packet Too Big); unused for the other errors.
    pub fn error_field(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::WORD];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// An error's invoking packet, as much of it as the message quotes.
    pub fn invoking_packet(&self) -> &[u8] {
        &self.buffer.as_ref()[field::INVOKING..]
    }

    /// Echo Request or Reply: Identifier.
    pub fn echo_ident(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::ECHO_IDENT];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Echo Request or Reply: Sequence Number.
    pub fn echo_seq_no(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::ECHO_SEQ_NO];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Echo Request or Reply: Data.
    pub fn echo_data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::ECHO_DATA..]
    }

    /// Everything after Type, Code and Checksum.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Router Advertisement: Cur Hop Limit.
    pub fn cur_hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::RA_CUR_HOP_LIMIT]
    }

    /// Router Advertisement: the flags octet.
    pub fn ra_flags(&self) -> RaFlags {
        RaFlags(self.buffer.as_ref()[field::RA_FLAGS])
    }

    /// Router Advertisement: Router Lifetime, seconds.
    pub fn router_lifetime(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::RA_ROUTER_LIFETIME];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Router Advertisement: Reachable Time, milliseconds.
    pub fn reachable_time(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::RA_REACHABLE_TIME];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Router Advertisement: Retrans Timer, milliseconds.
    pub fn retrans_timer(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::RA_RETRANS_TIMER];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Neighbor Advertisement: the first flags octet (R, S, O).
    pub fn na_flags(&self) -> NaFlags {
        NaFlags(self.buffer.as_ref()[field::NA_FLAGS])
    }

    /// Neighbor Solicitation or Advertisement: Target Address.
    pub fn target_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::TARGET]);
        Ipv6Addr::from(a)
    }

    /// DHAAD or MPD message: Identifier.
    pub fn mobility_identifier(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::MOBILITY_IDENTIFIER];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// DHAAD or MPD message: the 16-bit flags / reserved field after the Identifier.
    pub fn mobility_flags(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::MOBILITY_FLAGS];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The options region of an RS, RA, NS or NA; empty for other types.
    pub fn nd_options(&self) -> &[u8] {
        match nd_options_start(self.msg_type()) {
            Some(start) => &self.buffer.as_ref()[start..],
            None => &[],
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets Type.
    pub fn set_msg_type(&mut self, t: Icmpv6Type) {
        self.buffer.as_mut()[field::TYPE] = t.into();
    }

    /// Sets Code.
    pub fn set_msg_code(&mut self, code: u8) {
        self.buffer.as_mut()[field::CODE] = code;
    }

    /// Stores a checksum value as is.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Echo Request or Reply: sets Identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        self.buffer.as_mut()[field::ECHO_IDENT].copy_from_slice(&value.to_be_bytes());
    }

    /// Echo Request or Reply: sets Sequence Number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        self.buffer.as_mut()[field::ECHO_SEQ_NO].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the 32-bit field after the checksum (Pointer, MTU, ND flags and reserved).
    pub fn set_error_field(&mut self, value: u32) {
        self.buffer.as_mut()[field::WORD].copy_from_slice(&value.to_be_bytes());
    }

    /// Router Advertisement: sets Cur Hop Limit.
    pub fn set_cur_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::RA_CUR_HOP_LIMIT] = value;
    }

    /// Router Advertisement: sets the flags octet.
    pub fn set_ra_flags(&mut self, flags: RaFlags) {
        self.buffer.as_mut()[field::RA_FLAGS] = flags.0;
    }

    /// Router Advertisement: sets Router Lifetime.
    pub fn set_router_lifetime(&mut self, value: u16) {
        self.buffer.as_mut()[field::RA_ROUTER_LIFETIME].copy_from_slice(&value.to_be_bytes());
    }

    /// Router Advertisement: sets Reachable Time.
    pub fn set_reachable_time(&mut self, value: u32) {
        self.buffer.as_mut()[field::RA_REACHABLE_TIME].copy_from_slice(&value.to_be_bytes());
    }

    /// Router Advertisement: sets Retrans Timer.
    pub fn set_retrans_timer(&mut self, value: u32) {
        self.buffer.as_mut()[field::RA_RETRANS_TIMER].copy_from_slice(&value.to_be_bytes());
    }

    /// DHAAD or MPD message: sets Identifier.
    pub fn set_mobility_identifier(&mut self, value: u16) {
        self.buffer.as_mut()[field::MOBILITY_IDENTIFIER].copy_from_slice(&value.to_be_bytes());
    }

    /// DHAAD or MPD message: sets the flags / reserved field.
    pub fn set_mobility_flags(&mut self, value: u16) {
        self.buffer.as_mut()[field::MOBILITY_FLAGS].copy_from_slice(&value.to_be_bytes());
    }

    /// Neighbor Advertisement: sets the flags word (R, S, O; the reserved 24 bits zero).
    pub fn set_na_flags(&mut self, flags: NaFlags) {
        self.set_error_field(u32::from(flags.0) << 24);
    }

    /// Neighbor Solicitation or Advertisement: sets Target Address.
    pub fn set_target_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET].copy_from_slice(&addr.octets());
    }

    /// Computes and stores the checksum over the whole buffer under the pseudo-header of
    /// `src` → `dst`.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let value = checksum::v6(src, dst, IPPROTO_ICMPV6, self.buffer.as_ref());
        self.set_checksum(value);
    }
}

/// An ICMPv6 error message (RFC 4443 §2.1, §3): type, code, the 32-bit field and the
/// invoking packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorMessage<'a> {
    /// An error type (below 128).
    pub msg_type: Icmpv6Type,
    /// Code.
    pub code: u8,
    /// Pointer (Parameter Problem), MTU (Packet Too Big), or zero (unused).
    pub param: u32,
    /// The invoking packet from its IPv6 header on. Emitted cut to
    /// [`MAX_INVOKING_LEN`] octets (RFC 4443 §2.4(c)); parsed whole.
    pub invoking: &'a [u8],
}

impl<'a> ErrorMessage<'a> {
    /// A Parameter Problem (RFC 4443 §3.4): `pointer` is the offset of the erroneous octet
    /// from the start of `invoking`.
    pub const fn parameter_problem(code: u8, pointer: u32, invoking: &'a [u8]) -> Self {
        ErrorMessage {
            msg_type: Icmpv6Type::ParameterProblem,
            code,
            param: pointer,
            invoking,
        }
    }

    /// How much of the invoking packet [`Icmpv6Repr::emit`] quotes.
    pub fn quoted_len(&self) -> usize {
        self.invoking.len().min(MAX_INVOKING_LEN)
    }
}

/// The fields of an Echo Request or Reply (RFC 4443 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Echo<'a> {
    /// Identifier.
    pub ident: u16,
    /// Sequence Number.
    pub seq_no: u16,
    /// Data.
    pub data: &'a [u8],
}

/// The meaning of an ICMPv6 message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Icmpv6Repr<'a> {
    /// An error message (any type below 128).
    Error(ErrorMessage<'a>),
    /// Router Solicitation.
    RouterSolicitation(RouterSolicitation<'a>),
    /// Router Advertisement.
    RouterAdvertisement(RouterAdvertisement<'a>),
    /// Neighbor Solicitation.
    NeighborSolicitation(NeighborSolicitation<'a>),
    /// Neighbor Advertisement.
    NeighborAdvertisement(NeighborAdvertisement<'a>),
    /// Echo Request (RFC 4443 §4.1), Code 0.
    EchoRequest(Echo<'a>),
    /// Echo Reply (RFC 4443 §4.2), Code 0.
    EchoReply(Echo<'a>),
    /// Home Agent Address Discovery Request (RFC 6275 §6.5), Code 0.
    HaadRequest(HaadRequest),
    /// Home Agent Address Discovery Reply (RFC 6275 §6.6), Code 0.
    HaadReply(HaadReply),
    /// Mobile Prefix Solicitation (RFC 6275 §6.7), Code 0.
    MobilePrefixSolicitation(MobilePrefixSolicitation<'a>),
    /// Mobile Prefix Advertisement (RFC 6275 §6.8), Code 0.
    MobilePrefixAdvertisement(MobilePrefixAdvertisement<'a>),
    /// Any other informational message (an Echo or a discovery message with a non-zero
    /// Code, Redirect, ...): its type, code and the octets after the checksum, kept as
    /// they are.
    Other {
        /// Type (128 or more).
        msg_type: Icmpv6Type,
        /// Code.
        code: u8,
        /// Everything after the checksum.
        body: &'a [u8],
    },
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses a message. Neighbor Discovery messages are validated as far as the ICMPv6
    /// octets go (RFC 4861 §6.1, §7.1.1): Code 0, the fixed part present, a Target Address
    /// that is not multicast, no option of length zero. The hop limit of 255 and the rules
    /// tied to the IPv6 addresses are the caller's to check. The checksum is not verified
    /// (module docs).
    pub fn parse(packet: &Icmpv6Packet<&'a [u8]>) -> Result<Self> {
        packet.check_len()?;
        let buf: &'a [u8] = packet.buffer;
        let msg_type = packet.msg_type();
        let code = packet.msg_code();
        if msg_type.is_error() {
            return Ok(Icmpv6Repr::Error(ErrorMessage {
                msg_type,
                code,
                param: packet.error_field(),
                invoking: &buf[field::INVOKING..],
            }));
        }
        let is_echo = matches!(msg_type, Icmpv6Type::EchoRequest | Icmpv6Type::EchoReply);
        if is_echo && code == 0 && buf.len() >= field::ECHO_DATA {
            let echo = Echo {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: &buf[field::ECHO_DATA..],
            };
            return Ok(if msg_type == Icmpv6Type::EchoRequest {
                Icmpv6Repr::EchoRequest(echo)
            } else {
                Icmpv6Repr::EchoReply(echo)
            });
        }
        if msg_type.is_mobility() && code == 0 {
            return Self::parse_mobility(packet);
        }
        let Some(options_start) = nd_options_start(msg_type) else {
            return Ok(Icmpv6Repr::Other {
                msg_type,
                code,
                body: &buf[HEADER_LEN..],
            });
        };
        if code != 0 {
            return Err(Error::Malformed("ND code"));
        }
        let options = parse_nd_options(&buf[options_start..])?;
        let target = || {
            let t = packet.target_addr();
            if t.is_multicast() {
                Err(Error::Malformed("ND target address"))
            } else {
                Ok(t)
            }
        };
        Ok(match msg_type {
            Icmpv6Type::RouterSolicitation => {
                Icmpv6Repr::RouterSolicitation(RouterSolicitation { options })
            }
            Icmpv6Type::RouterAdvertisement => {
                Icmpv6Repr::RouterAdvertisement(RouterAdvertisement {
                    cur_hop_limit: packet.cur_hop_limit(),
                    flags: packet.ra_flags(),
                    router_lifetime: packet.router_lifetime(),
                    reachable_time: packet.reachable_time(),
                    retrans_timer: packet.retrans_timer(),
                    options,
                })
            }
            Icmpv6Type::NeighborSolicitation => {
                Icmpv6Repr::NeighborSolicitation(NeighborSolicitation {
                    target: target()?,
                    options,
                })
            }
            _ => Icmpv6Repr::NeighborAdvertisement(NeighborAdvertisement {
                flags: packet.na_flags(),
                target: target()?,
                options,
            }),
        })
    }

    /// A DHAAD or MPD message of Code 0 whose fixed part is present.
    fn parse_mobility(packet: &Icmpv6Packet<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        let identifier = packet.mobility_identifier();
        let bits = packet.mobility_flags();
        let body = &buf[field::MOBILITY_BODY..];
        Ok(match packet.msg_type() {
            Icmpv6Type::HomeAgentAddressDiscoveryRequest => Icmpv6Repr::HaadRequest(HaadRequest {
                identifier,
                flags: HaadFlags(bits),
            }),
            Icmpv6Type::HomeAgentAddressDiscoveryReply => Icmpv6Repr::HaadReply(HaadReply {
                identifier,
                flags: HaadFlags(bits),
                home_agents: body
                    .chunks_exact(16)
                    .map(|c| Ipv6Addr::from(<[u8; 16]>::try_from(c).unwrap_or_default()))
                    .collect(),
            }),
            Icmpv6Type::MobilePrefixSolicitation => {
                Icmpv6Repr::MobilePrefixSolicitation(MobilePrefixSolicitation {
                    identifier,
                    reserved: bits,
                    options: parse_nd_options(body)?,
                })
            }
            _ => Icmpv6Repr::MobilePrefixAdvertisement(MobilePrefixAdvertisement {
                identifier,
                flags: MpaFlags(bits),
                options: parse_nd_options(body)?,
            }),
        })
    }

    /// [`parse`](Self::parse) of a message in `bytes` (as a raw ICMPv6 socket returns it).
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Self> {
        Self::parse(&Icmpv6Packet::new_unchecked(bytes))
    }

    /// The Echo Reply answering this message if it is an Echo Request: the same
    /// Identifier, Sequence Number and Data (RFC 4443 §4.2).
    pub fn echo_reply(&self) -> Option<Icmpv6Repr<'a>> {
        match self {
            Icmpv6Repr::EchoRequest(e) => Some(Icmpv6Repr::EchoReply(*e)),
            _ => None,
        }
    }

    /// The message's Type.
    pub fn msg_type(&self) -> Icmpv6Type {
        match self {
            Icmpv6Repr::Error(e) => e.msg_type,
            Icmpv6Repr::RouterSolicitation(_) => Icmpv6Type::RouterSolicitation,
            Icmpv6Repr::RouterAdvertisement(_) => Icmpv6Type::RouterAdvertisement,
            Icmpv6Repr::NeighborSolicitation(_) => Icmpv6Type::NeighborSolicitation,
            Icmpv6Repr::NeighborAdvertisement(_) => Icmpv6Type::NeighborAdvertisement,
            Icmpv6Repr::EchoRequest(_) => Icmpv6Type::EchoRequest,
            Icmpv6Repr::EchoReply(_) => Icmpv6Type::EchoReply,
            Icmpv6Repr::HaadRequest(_) => Icmpv6Type::HomeAgentAddressDiscoveryRequest,
            Icmpv6Repr::HaadReply(_) => Icmpv6Type::HomeAgentAddressDiscoveryReply,
            Icmpv6Repr::MobilePrefixSolicitation(_) => Icmpv6Type::MobilePrefixSolicitation,
            Icmpv6Repr::MobilePrefixAdvertisement(_) => Icmpv6Type::MobilePrefixAdvertisement,
            Icmpv6Repr::Other { msg_type, .. } => *msg_type,
        }
    }

    /// Octets [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::Error(e) => ERROR_HEADER_LEN + e.quoted_len(),
            Icmpv6Repr::RouterSolicitation(m) => field::RS_OPTIONS + nd_options_len(&m.options),
            Icmpv6Repr::RouterAdvertisement(m) => field::RA_OPTIONS + nd_options_len(&m.options),
            Icmpv6Repr::NeighborSolicitation(m) => {
                field::NS_NA_OPTIONS + nd_options_len(&m.options)
            }
            Icmpv6Repr::NeighborAdvertisement(m) => {
                field::NS_NA_OPTIONS + nd_options_len(&m.options)
            }
            Icmpv6Repr::EchoRequest(e) | Icmpv6Repr::EchoReply(e) => {
                field::ECHO_DATA + e.data.len()
            }
            Icmpv6Repr::HaadRequest(_) => MOBILITY_FIXED_LEN,
            Icmpv6Repr::HaadReply(m) => MOBILITY_FIXED_LEN + 16 * m.home_agents.len(),
            Icmpv6Repr::MobilePrefixSolicitation(m) => {
                MOBILITY_FIXED_LEN + nd_options_len(&m.options)
            }
            Icmpv6Repr::MobilePrefixAdvertisement(m) => {
                MOBILITY_FIXED_LEN + nd_options_len(&m.options)
            }
            Icmpv6Repr::Other { body, .. } => HEADER_LEN + body.len(),
        }
    }

    /// Writes the message into the first [`buffer_len`](Self::buffer_len) octets of
    /// `packet`, reserved fields zero and the checksum zero (module docs).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] for a short buffer; [`Error::BadLength`] for an option too
    /// long for its Length field.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv6Packet<T>) -> Result<()> {
        let len = self.buffer_len();
        let buf = packet
            .buffer
            .as_mut()
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall)?;
        // Type, Code, Checksum and the reserved 32-bit field where there is one.
        let fixed = buf.len().min(ERROR_HEADER_LEN);
        buf[..fixed].fill(0);
        let mut p = Icmpv6Packet::new_unchecked(&mut *buf);
        p.set_msg_type(self.msg_type());
        match self {
            Icmpv6Repr::Error(e) => {
                p.set_msg_code(e.code);
                p.set_error_field(e.param);
                buf[field::INVOKING..].copy_from_slice(&e.invoking[..e.quoted_len()]);
            }
            Icmpv6Repr::RouterSolicitation(m) => {
                nd::emit_after(field::RS_OPTIONS, &m.options, buf)?;
            }
            Icmpv6Repr::RouterAdvertisement(m) => {
                p.set_cur_hop_limit(m.cur_hop_limit);
                p.set_ra_flags(m.flags);
                p.set_router_lifetime(m.router_lifetime);
                p.set_reachable_time(m.reachable_time);
                p.set_retrans_timer(m.retrans_timer);
                nd::emit_after(field::RA_OPTIONS, &m.options, buf)?;
            }
            Icmpv6Repr::NeighborSolicitation(m) => {
                p.set_target_addr(m.target);
                nd::emit_after(field::NS_NA_OPTIONS, &m.options, buf)?;
            }
            Icmpv6Repr::NeighborAdvertisement(m) => {
                p.set_na_flags(m.flags);
                p.set_target_addr(m.target);
                nd::emit_after(field::NS_NA_OPTIONS, &m.options, buf)?;
            }
            Icmpv6Repr::EchoRequest(e) | Icmpv6Repr::EchoReply(e) => {
                p.set_echo_ident(e.ident);
                p.set_echo_seq_no(e.seq_no);
                buf[field::ECHO_DATA..].copy_from_slice(e.data);
            }
            Icmpv6Repr::HaadRequest(m) => {
                p.set_mobility_identifier(m.identifier);
                p.set_mobility_flags(m.flags.0);
            }
            Icmpv6Repr::HaadReply(m) => {
                p.set_mobility_identifier(m.identifier);
                p.set_mobility_flags(m.flags.0);
                for (slot, ha) in buf[field::MOBILITY_BODY..]
                    .chunks_exact_mut(16)
                    .zip(&m.home_agents)
                {
                    slot.copy_from_slice(&ha.octets());
                }
            }
            Icmpv6Repr::MobilePrefixSolicitation(m) => {
                p.set_mobility_identifier(m.identifier);
                p.set_mobility_flags(m.reserved);
                nd::emit_after(field::MOBILITY_BODY, &m.options, buf)?;
            }
            Icmpv6Repr::MobilePrefixAdvertisement(m) => {
                p.set_mobility_identifier(m.identifier);
                p.set_mobility_flags(m.flags.0);
                nd::emit_after(field::MOBILITY_BODY, &m.options, buf)?;
            }
            Icmpv6Repr::Other { code, body, .. } => {
                p.set_msg_code(*code);
                buf[HEADER_LEN..].copy_from_slice(body);
            }
        }
        Ok(())
    }

    /// Length of the IPv6 packet [`emit_ipv6_packet`](Self::emit_ipv6_packet) writes.
    pub fn ipv6_packet_len(&self) -> usize {
        IPV6_HEADER_LEN + self.buffer_len()
    }

    /// Writes a whole IPv6 packet (no extension headers) carrying this message from `src`
    /// to `dst`, checksum filled, into the first
    /// [`ipv6_packet_len`](Self::ipv6_packet_len) octets of `out`: what an `IPPROTO_RAW`
    /// socket or a packet socket sends.
    ///
    /// # Errors
    /// As [`emit`](Self::emit); [`Error::BadLength`] past 65535 octets of payload.
    pub fn emit_ipv6_packet(
        &self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        out: &mut [u8],
    ) -> Result<()> {
        let icmp_len = self.buffer_len();
        let payload_len = u16::try_from(icmp_len).map_err(|_| Error::BadLength)?;
        let out = out
            .get_mut(..IPV6_HEADER_LEN + icmp_len)
            .ok_or(Error::BufferTooSmall)?;
        let (ip, icmp) = out.split_at_mut(IPV6_HEADER_LEN);
        Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IPPROTO_ICMPV6,
            payload_len,
            hop_limit,
            traffic_class: 0,
            flow_label: 0,
        }
        .emit(&mut Ipv6Header::new_unchecked(ip));
        let mut packet = Icmpv6Packet::new_unchecked(icmp);
        self.emit(&mut packet)?;
        packet.fill_checksum(&src, &dst);
        Ok(())
    }
}

/// Where the options of an RS, RA, NS or NA start; `None` for other types.
fn nd_options_start(t: Icmpv6Type) -> Option<usize> {
    match t {
        Icmpv6Type::RouterSolicitation => Some(field::RS_OPTIONS),
        Icmpv6Type::RouterAdvertisement => Some(field::RA_OPTIONS),
        Icmpv6Type::NeighborSolicitation | Icmpv6Type::NeighborAdvertisement => {
            Some(field::NS_NA_OPTIONS)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
