//! What goes in and out of the core: received signalling, packets to send, events for the
//! bus.

use std::net::{Ipv6Addr, SocketAddrV4};

use ipnet::Ipv4Net;
use proto::ext::{MobilityPacketRepr, ReceivedPacket, emit_mobility_packet, mobility_packet_len};
use proto::mh::BaStatus;
use proto::model::Binding;
pub use proto::model::ParameterProblem;
use proto::option::Ipv4AckStatus;
use proto::seq::{Lifetime, SequenceNumber};

/// A Mobility Header message received from the network, with the addressing the walk
/// found (`proto::ext::walk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedSignal<'a> {
    /// IPv6 source on the wire.
    pub src: Ipv6Addr,
    /// IPv6 destination on the wire (the CoA when a type 2 routing header is present).
    pub dst: Ipv6Addr,
    /// Address of the type 2 routing header, if any (our home address).
    pub rh2_home_address: Option<Ipv6Addr>,
    /// The Mobility Header, exactly `(Header Len + 1) * 8` octets.
    pub mh: &'a [u8],
}

impl<'a> ReceivedSignal<'a> {
    /// From a walked packet (`proto::ext::Walk::Mobility`).
    pub fn from_packet(p: &ReceivedPacket<'a>) -> Self {
        ReceivedSignal {
            src: p.src_addr,
            dst: p.dst_addr,
            rh2_home_address: p.rh2_home_address,
            mh: p.payload,
        }
    }
}

/// What a Binding Update does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuKind {
    /// Home registration (first one, after a move, or a refresh).
    Register,
    /// Deregistration (lifetime 0).
    Deregister,
}

/// A Binding Update to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// IPv6 addressing, Home Address option included (`proto::ext::emit_mobility_packet`).
    pub addressing: MobilityPacketRepr,
    /// The Mobility Header, authenticated if an SA is configured. Its checksum is left
    /// zero: `emit_mobility_packet` computes it with the HoA as source (RFC 6275 §6.1.1).
    pub mh: Vec<u8>,
    /// Sequence number of this BU.
    pub sequence: SequenceNumber,
    /// Requested lifetime.
    pub lifetime: Lifetime,
    /// Registration or deregistration.
    pub kind: BuKind,
    /// From an IPv4 care-of address (RFC 5555 §4.2): send the IPv6 packet in UDP/IPv4 to
    /// this address (the HA's IPv4 address, port 4191) instead of natively.
    pub udp_v4: Option<SocketAddrV4>,
    /// With `udp_v4`: the IPv4 care-of address it leaves from (through `ifindex`).
    pub udp_from: Option<std::net::Ipv4Addr>,
    /// The care-of address's interface (0: unknown): the BU leaves through it, since the
    /// main table's preferred default may be another uplink, whose ingress filter (BCP 38)
    /// would drop a packet from this care-of address.
    pub ifindex: u32,
}

impl Transmit {
    /// The whole IPv6 packet (`IPv6 | [DestOpts(HAO)] | MH`), checksum filled in, ready
    /// for an `IPPROTO_RAW` socket.
    pub fn to_packet(&self) -> Vec<u8> {
        let mut buf = vec![0; mobility_packet_len(&self.addressing, self.mh.len())];
        // The MH is emitted by this crate with a consistent Header Len, so this cannot
        // fail; an empty packet would be dropped by the shell's send anyway.
        match emit_mobility_packet(&self.addressing, &self.mh, &mut buf) {
            Ok(n) => buf.truncate(n),
            Err(_) => buf.clear(),
        }
        buf
    }
}

/// What became of the IPv4 mobile network prefixes of a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipv4MnpOutcome {
    /// None configured, or sending them is turned off.
    NotRequested,
    /// Optimistic announcement: sent, not acknowledged yet.
    Pending,
    /// The BA carried no IPv4 Address Acknowledgement: the HA does not support IPv4 MNPs
    /// (RFC 5555 §3.2.1, Shima §4): IPv6 only.
    HaUnsupported,
    /// The HA answered; the prefixes it refused, with the IPv4 Address Ack status.
    Acknowledged {
        /// Refused prefixes (left out of the binding).
        rejected: Vec<(Ipv4Net, Ipv4AckStatus)>,
    },
}

/// Why the MR stopped registering with its HA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// A refusal that retrying cannot fix (see [`super::status::reaction`]).
    Refused(BaStatus),
    /// The HA accepted the BU without R: it does not do NEMO (RFC 3963 §5.3). The MR
    /// deregisters and stops.
    NotNemoCapable,
}

/// Something the shell announces on the bus (or logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MrEvent {
    /// MIPM_BUL_ADD: a binding was registered (or refreshed, or announced optimistically).
    BulAdd {
        /// The binding; `mnp_v4` holds only the IPv4 MNPs the HA acknowledged.
        binding: Binding,
        /// Announced as the BU left, before any BA (optimistic mode).
        optimistic: bool,
        /// The IPv4 side of the registration.
        ipv4: Ipv4MnpOutcome,
    },
    /// MIPM_BUL_REMOVE: the binding is gone (deregistered, expired, refused, withdrawn).
    BulRemove {
        /// The binding last announced, lifetime 0.
        binding: Binding,
    },
    /// The MR stopped sending BUs to its HA.
    Stopped {
        /// Why.
        reason: StopReason,
    },
    /// Back home and de-registered (RFC 6275 §11.5.5): the home address is the MR's own
    /// on the home link again; the shell multicasts unsolicited Neighbour Advertisements
    /// for it (Override set, so the home link's caches leave the home agent's proxy).
    HomeAdvertise {
        /// The home address.
        hoa: std::net::Ipv6Addr,
    },
}
