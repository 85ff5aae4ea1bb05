//! IPv6, IPv4 and UDP headers, the Mobile IPv6 extension headers (Home Address destination option,
//! RFC 6275 §6.3; type 2 routing header, §6.4) and whole signalling packets built or walked in
//! user space.
//!
//! The IPv4/IPv6/UDP header views are shared with [`crate::encap`].

mod ipv4;
mod ipv6;
mod options;
mod routing;
mod signalling;
mod udp;

pub use ipv4::{IPV4_HEADER_LEN, Ipv4Header, Ipv4Repr};
pub use ipv6::{IPV6_HEADER_LEN, Ipv6Header, Ipv6Repr};
pub use options::{
    DestinationOptionsRepr, ExtHeader, HAO_HEADER_LEN, HOME_ADDRESS_OPT_DATA_LEN, Ipv6OptionRepr,
    Ipv6OptionsIter, OPT_HOME_ADDRESS, OPT_PAD1, OPT_PADN, UnknownOption, UnknownOptionAction,
};
pub use routing::{RH2_HEADER_LEN, ROUTING_TYPE_2, RoutingHeader, RoutingRepr};
pub use signalling::{
    ChecksumSource, MobilityPacketRepr, ReceivedPacket, Walk, emit_mobility_packet,
    emit_upper_layer_packet, mobility_packet_len, walk,
};
pub use udp::{UDP_HEADER_LEN, UdpHeader, UdpRepr};
