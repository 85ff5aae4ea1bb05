//! Wire formats for NEMO Basic Support (RFC 3963) on Mobile IPv6 (RFC 6275) and
//! Dual-Stack MIPv6 (RFC 5555).
//!
//! Every format comes in two layers, after smoltcp's `wire` module:
//! a zero-copy view over a byte buffer (`Packet<T: AsRef<[u8]>>`, getters need only
//! `AsRef`, setters `AsMut`) and a `Repr` that carries the meaning, with
//! `parse`, `buffer_len` and `emit`. Codes never fail to parse: unknown values are kept as
//! `Unknown(..)`. Nothing here does I/O, allocates a socket or reads a clock.

#![forbid(unsafe_code)]

pub mod arp;
pub mod auth;
pub mod checksum;
pub mod dhcp;
pub mod encap;
pub mod ext;
pub mod flow;
pub mod icmpv4;
pub mod icmpv6;
pub mod mh;
pub mod model;
pub mod option;
pub mod rate;
pub mod redundancy;
pub mod seq;

#[doc(hidden)]
pub mod fuzzing;

mod error;

pub use error::{Error, Result};

/// IP protocol number of the Mobility Header (RFC 6275 §6.1.1).
pub const IPPROTO_MH: u8 = 135;
/// "No next header": the Payload Proto value every MH must carry (RFC 6275 §6.1.1).
pub const IPPROTO_NONE: u8 = 59;
/// IPv6 Destination Options header (carries the Home Address option).
pub const IPPROTO_DSTOPTS: u8 = 60;
/// IPv6 Routing header (type 2 carries the home address to the MN).
pub const IPPROTO_ROUTING: u8 = 43;
/// IPv4 encapsulated in IP (RFC 2003 / RFC 2473).
pub const IPPROTO_IPIP: u8 = 4;
/// IPv6 encapsulated in IP (RFC 2473 / RFC 4213).
pub const IPPROTO_IPV6: u8 = 41;
/// UDP.
pub const IPPROTO_UDP: u8 = 17;
/// ICMPv6 (RFC 4443).
pub const IPPROTO_ICMPV6: u8 = 58;
/// UDP port of DSMIPv6 signalling and UDP encapsulation at the home agent (RFC 5555 §8).
pub const DSMIP_UDP_PORT: u16 = 4191;
