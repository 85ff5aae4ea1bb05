//! The bus messages: SHISA's AF_MOBILITY set (docs/notes.md §12) as typed Rust, plus the
//! state dump that lets a restarted daemon rebuild its view.
//!
//! Every type derives serde; the same derive feeds postcard (the wire), JSON (`mipsock tap
//! --json`, `mipsock inject --json`) and the one-line text of `mipsock tap` (see
//! [`crate::text`]), so the three cannot drift apart.
//!
//! A few small types ([`CareOf`], [`NodeType`], [`BuFlags`]) are strings in JSON
//! (`"192.0.2.5:4191"`, `"ha|mr"`, `"A|H|R"`) because that is how people write them, and
//! compact binary on the wire: their serde impls ask the format `is_human_readable()`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::str::FromStr;

use ipnet::Ipv6Net;

pub use proto::mh::BuFlags;
pub use proto::model::{Binding, CareOf, Encapsulation, MdCommand, MdHint, MdInfo, Uplink};
use proto::model::{fmt_bits, parse_bits};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Header fields every message carries, SHISA's `struct mip_msghdr` (`pid`, `seq`,
/// `errno`) plus what a broker-less bus needs to tell senders apart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Header {
    /// Request/reply correlation: a reply copies the request's `seq` (SHISA's `seq`).
    pub seq: u32,
    /// 0 for success, else an errno-like code explaining why a request failed
    /// (SHISA's `errno`).
    pub errno: u32,
    /// Sender's process id; filled in by [`crate::Endpoint::send`].
    pub pid: u32,
    /// Sender's endpoint name (`mrd`, `had`, `tap`...); filled in by the endpoint.
    pub sender: String,
    /// Per-endpoint datagram counter, starting at 1; filled in by the endpoint. A reader
    /// sees a gap when the writer had to drop messages for it (counted as `missed`).
    pub serial: u64,
    /// Send time, nanoseconds since the Unix epoch (CLOCK_REALTIME); filled in by the
    /// endpoint. Lets readers measure bus latency.
    pub sent_at_ns: u64,
}

/// One bus message. In JSON, unknown top-level keys (such as the `ts` that `mipsock tap
/// --json` adds) are ignored so tap lines replay through `mipsock inject --json`; inside
/// `header` and `body` unknown keys are errors, so typos are caught.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Header; every field may be omitted in JSON input.
    #[serde(default)]
    pub header: Header,
    /// What the message says.
    pub body: Body,
}

impl Message {
    /// A message with a default header (`seq` 0, `errno` 0); the endpoint fills in the rest.
    pub fn new(body: Body) -> Self {
        Message {
            header: Header::default(),
            body,
        }
    }

    /// Sets the correlation number.
    pub fn with_seq(mut self, seq: u32) -> Self {
        self.header.seq = seq;
        self
    }

    /// The type code of the body.
    pub fn message_type(&self) -> MessageType {
        self.body.message_type()
    }
}

/// The body of a message. Variant names are SHISA's `MIPM_*` names; JSON uses them in
/// snake case, e.g. `{"md_info": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Body {
    /// MIPM_NODETYPE_INFO: a daemon announces (or withdraws) a role.
    NodetypeInfo(NodetypeInfo),
    /// MIPM_BC_ADD: had installed or refreshed a binding cache entry.
    BcAdd(Binding),
    /// MIPM_BC_REMOVE: had removed a binding cache entry.
    BcRemove(Binding),
    /// MIPM_BC_FLUSH: had dropped its whole binding cache.
    BcFlush,
    /// MIPM_BUL_ADD: mrd added or refreshed a binding update list entry.
    BulAdd(Binding),
    /// MIPM_BUL_REMOVE: mrd removed a binding update list entry.
    BulRemove(Binding),
    /// MIPM_BUL_FLUSH: mrd dropped its whole binding update list.
    BulFlush,
    /// MIPM_MD_INFO: the movement detector's verdict.
    MdInfo(MdInfo),
    /// MIPM_HOME_HINT: a router advertisement for a home prefix was seen.
    HomeHint(HomeHint),
    /// MIPM_RR_HINT: tunnelled traffic from a correspondent; consider route optimisation.
    RrHint(RrHint),
    /// MIPM_BE_HINT: send or handle a Binding Error.
    BeHint(BeHint),
    /// MIPM_DAD: duplicate address detection on behalf of the home agent.
    Dad(Dad),
    /// Ask every owner to dump its state (not in SHISA). The reply copies `seq`.
    StateRequest,
    /// Part of an owner's answer to a [`Body::StateRequest`].
    StateDump(StateDump),
    /// Last message of an owner's answer.
    StateEnd(StateEnd),
    /// A Mobility Header packet that arrived UDP-encapsulated (RFC 5555, port 4191) on
    /// nemonetd's UDP socket; had (HA) or mrd (MR) handles it (not in SHISA).
    MhUdpIn(MhUdpIn),
    /// A Mobility Header packet for nemonetd to send UDP-encapsulated from its UDP socket
    /// (not in SHISA).
    MhUdpOut(MhUdpOut),
    /// nemonetd has applied a BC_ADD or BC_REMOVE: the data plane carries the binding (or
    /// no longer does). had holds the BA until then (not in SHISA).
    DataplaneReady(DataplaneReady),
    /// An operator asks had to send Home Agent Switch messages (RFC 5142) (not in SHISA).
    HaSwitch(HaSwitch),
    /// Sent by an endpoint, to one reader only, when the last messages it had for that
    /// reader were dropped (its queue was full) and nothing has reached it since: its
    /// serial is the last one the writer used, so the reader sees the gap even when the
    /// writer falls silent after a burst (not in SHISA).
    GapNotice,
}

/// The type code carried in the fixed frame header. SHISA's numbers where SHISA has the
/// message (docs/notes.md §12), 64 and up for ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MessageType {
    /// MIPM_NODETYPE_INFO
    NodetypeInfo = 1,
    /// MIPM_BC_ADD
    BcAdd = 2,
    /// MIPM_BC_REMOVE
    BcRemove = 4,
    /// MIPM_BC_FLUSH
    BcFlush = 5,
    /// MIPM_BUL_ADD
    BulAdd = 6,
    /// MIPM_BUL_REMOVE
    BulRemove = 8,
    /// MIPM_BUL_FLUSH
    BulFlush = 9,
    /// MIPM_MD_INFO
    MdInfo = 10,
    /// MIPM_HOME_HINT
    HomeHint = 11,
    /// MIPM_RR_HINT
    RrHint = 12,
    /// MIPM_BE_HINT
    BeHint = 13,
    /// MIPM_DAD
    Dad = 14,
    /// State dump request (ours).
    StateRequest = 64,
    /// State dump chunk (ours).
    StateDump = 65,
    /// End of a state dump (ours).
    StateEnd = 66,
    /// UDP-encapsulated Mobility Header received by nemonetd (ours).
    MhUdpIn = 67,
    /// Mobility Header for nemonetd to send UDP-encapsulated (ours).
    MhUdpOut = 68,
    /// The data plane applied a binding change (ours).
    DataplaneReady = 69,
    /// Send Home Agent Switch messages (ours).
    HaSwitch = 70,
    /// Messages for this reader were dropped (ours).
    GapNotice = 71,
}

impl MessageType {
    /// Every type, in code order.
    pub const ALL: [MessageType; 20] = [
        MessageType::NodetypeInfo,
        MessageType::BcAdd,
        MessageType::BcRemove,
        MessageType::BcFlush,
        MessageType::BulAdd,
        MessageType::BulRemove,
        MessageType::BulFlush,
        MessageType::MdInfo,
        MessageType::HomeHint,
        MessageType::RrHint,
        MessageType::BeHint,
        MessageType::Dad,
        MessageType::StateRequest,
        MessageType::StateDump,
        MessageType::StateEnd,
        MessageType::MhUdpIn,
        MessageType::MhUdpOut,
        MessageType::DataplaneReady,
        MessageType::HaSwitch,
        MessageType::GapNotice,
    ];

    /// The wire code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The type for a wire code; `None` for a code this version does not know.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Snake-case name, as in JSON and in `mipsock tap` lines (`md_info`).
    pub fn name(self) -> &'static str {
        match self {
            MessageType::NodetypeInfo => "nodetype_info",
            MessageType::BcAdd => "bc_add",
            MessageType::BcRemove => "bc_remove",
            MessageType::BcFlush => "bc_flush",
            MessageType::BulAdd => "bul_add",
            MessageType::BulRemove => "bul_remove",
            MessageType::BulFlush => "bul_flush",
            MessageType::MdInfo => "md_info",
            MessageType::HomeHint => "home_hint",
            MessageType::RrHint => "rr_hint",
            MessageType::BeHint => "be_hint",
            MessageType::Dad => "dad",
            MessageType::StateRequest => "state_request",
            MessageType::StateDump => "state_dump",
            MessageType::StateEnd => "state_end",
            MessageType::MhUdpIn => "mh_udp_in",
            MessageType::MhUdpOut => "mh_udp_out",
            MessageType::DataplaneReady => "dataplane_ready",
            MessageType::HaSwitch => "ha_switch",
            MessageType::GapNotice => "gap_notice",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a message type name nobody knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown message type {0:?} (known: {names})", names = MessageType::ALL.map(MessageType::name).join(", "))]
pub struct UnknownMessageType(pub String);

impl FromStr for MessageType {
    type Err = UnknownMessageType;

    /// Accepts `md_info`, `md-info`, `MD_INFO` and SHISA's `MIPM_MD_INFO`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.to_ascii_lowercase().replace('-', "_");
        let norm = norm.strip_prefix("mipm_").unwrap_or(&norm);
        MessageType::ALL
            .into_iter()
            .find(|t| t.name() == norm)
            .ok_or_else(|| UnknownMessageType(s.to_string()))
    }
}

impl Body {
    /// The type code of this body.
    pub fn message_type(&self) -> MessageType {
        match self {
            Body::NodetypeInfo(_) => MessageType::NodetypeInfo,
            Body::BcAdd(_) => MessageType::BcAdd,
            Body::BcRemove(_) => MessageType::BcRemove,
            Body::BcFlush => MessageType::BcFlush,
            Body::BulAdd(_) => MessageType::BulAdd,
            Body::BulRemove(_) => MessageType::BulRemove,
            Body::BulFlush => MessageType::BulFlush,
            Body::MdInfo(_) => MessageType::MdInfo,
            Body::HomeHint(_) => MessageType::HomeHint,
            Body::RrHint(_) => MessageType::RrHint,
            Body::BeHint(_) => MessageType::BeHint,
            Body::Dad(_) => MessageType::Dad,
            Body::StateRequest => MessageType::StateRequest,
            Body::StateDump(_) => MessageType::StateDump,
            Body::StateEnd(_) => MessageType::StateEnd,
            Body::MhUdpIn(_) => MessageType::MhUdpIn,
            Body::MhUdpOut(_) => MessageType::MhUdpOut,
            Body::DataplaneReady(_) => MessageType::DataplaneReady,
            Body::HaSwitch(_) => MessageType::HaSwitch,
            Body::GapNotice => MessageType::GapNotice,
        }
    }
}

/// SHISA's node type bitmask (KAME `mip6.h`): CN 0x01, HA 0x02, MN 0x04, MR 0x08.
/// JSON and text: `"ha|mr"`, `"none"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NodeType(pub u8);

impl NodeType {
    /// Correspondent node.
    pub const CN: NodeType = NodeType(0x01);
    /// Home agent.
    pub const HA: NodeType = NodeType(0x02);
    /// Mobile node.
    pub const MN: NodeType = NodeType(0x04);
    /// Mobile router.
    pub const MR: NodeType = NodeType(0x08);
    const NAMES: [(u8, &'static str); 4] = [(0x01, "cn"), (0x02, "ha"), (0x04, "mn"), (0x08, "mr")];

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: NodeType) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for NodeType {
    type Output = NodeType;
    fn bitor(self, rhs: NodeType) -> NodeType {
        NodeType(self.0 | rhs.0)
    }
}

impl fmt::Display for NodeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = NodeType::NAMES.map(|(b, n)| (u16::from(b), n));
        fmt_bits(f, u16::from(self.0), &names, "none")
    }
}

impl FromStr for NodeType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let names = NodeType::NAMES.map(|(b, n)| (u16::from(b), n));
        let bits = parse_bits(s, &names, "none")?;
        u8::try_from(bits)
            .map(NodeType)
            .map_err(|_| format!("node type {s:?} does not fit 8 bits"))
    }
}

proto::serde_bits!(NodeType, u8);

/// MIPM_NODETYPE_INFO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodetypeInfo {
    /// The roles concerned.
    pub node_type: NodeType,
    /// Role turned on (true) or off (false).
    pub enable: bool,
}

/// MIPM_HOME_HINT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeHint {
    /// Interface the advertisement arrived on.
    pub ifindex: u32,
    /// The home prefix seen.
    pub prefix: Ipv6Net,
}

/// MIPM_RR_HINT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RrHint {
    /// Home address the traffic was for.
    pub hoa: Ipv6Addr,
    /// The correspondent.
    pub peer: Ipv6Addr,
}

/// MIPM_BE_HINT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeHint {
    /// Binding Error status (RFC 6275 §6.1.9: 1 unknown HAO binding, 2 unknown MH type).
    pub status: u8,
    /// Where the offending packet came from.
    pub peer: Ipv6Addr,
    /// Care-of address in the offending packet.
    pub coa: CareOf,
    /// Home address in the offending packet.
    pub hoa: Ipv6Addr,
}

/// MIPM_DAD message codes: requests (user to data plane) below 128, results above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DadOp {
    /// Start DAD for an address (0).
    Do = 0,
    /// Stop DAD (1).
    Stop = 1,
    /// DAD for the link-local address (2).
    Linklocal = 2,
    /// DAD succeeded (128).
    Success = 128,
    /// DAD failed: duplicate (129).
    Fail = 129,
}

/// MIPM_DAD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dad {
    /// Request or result.
    pub op: DadOp,
    /// Interface.
    pub ifindex: u32,
    /// The address under test.
    pub addr: Ipv6Addr,
}

/// babymdd's state: the care-of address it currently selected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrentCoa {
    /// Selected care-of address; `None` when at home or detached.
    #[serde(default)]
    pub coa: Option<CareOf>,
    /// Its interface.
    #[serde(default)]
    pub ifindex: u32,
    /// Whether the node is on its home link.
    #[serde(default)]
    pub at_home: bool,
}

/// Where a daemon knows a home agent from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HomeAgentOrigin {
    /// had itself.
    Own,
    /// A Router Advertisement with the H bit on the home link (RFC 6275 §10.5.1).
    RouterAdvertisement,
    /// mrd's configuration (`home-agent-address`, `-a`).
    Configured,
    /// mrd's dynamic home agent address discovery (RFC 6275 §11.4.1).
    Discovered,
}

/// A home agent a daemon knows of: had's home agents list (RFC 6275 §10.5.1), or the one
/// mrd registers with and the others its discovery listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeAgentInfo {
    /// Its global address.
    pub address: Ipv6Addr,
    /// Home Agent Preference (RFC 6275 §7.4); 0 when unknown.
    #[serde(default)]
    pub preference: i16,
    /// Seconds it remains a home agent; 0: no expiry (had itself, mrd's).
    #[serde(default)]
    pub lifetime: u32,
    /// Whether it serves mobile routers (R, RFC 3963 §4.1).
    #[serde(default)]
    pub mobile_router: bool,
    /// Where it is known from.
    pub origin: HomeAgentOrigin,
    /// mrd: the home agent it registers with now.
    #[serde(default)]
    pub in_use: bool,
}

/// Which of nemonetd's data planes carries a binding (issue 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataplaneBackend {
    /// The kernel's SRv6 encapsulation and decapsulation (IPv6 outer headers).
    Kernel,
    /// nemonetd's TUN device, in user space.
    Tun,
}

/// How nemonetd carries one binding (`mipsock state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataplaneInfo {
    /// The binding's home address.
    pub hoa: Ipv6Addr,
    /// Its Binding Identifier (RFC 5648), if any.
    #[serde(default)]
    pub binding_id: Option<u16>,
    /// Its care-of address (the tunnel's far end).
    pub coa: CareOf,
    /// Which data plane carries it.
    pub backend: DataplaneBackend,
    /// Whether its path is in use: heard from within the liveness window (RFC 5648
    /// bindings); always true for a single binding.
    pub path_up: bool,
    /// Packets tunnelled to it and admitted from it since nemonetd took it (on the kernel
    /// path: to and from its care-of address, as the filter counts them); `None` when not
    /// known.
    #[serde(default)]
    pub packets: Option<(u64, u64)>,
    /// Their inner octets (to, from), when known.
    #[serde(default)]
    pub octets: Option<(u64, u64)>,
    /// What its path carries (to, from) in kbit/s, measured by packet pairs (0: not yet),
    /// among several care-of addresses (RFC 5648): the flows are spread in proportion.
    #[serde(default)]
    pub capacity_kbps: Option<(u32, u32)>,
}

/// One item of an owner's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateItem {
    /// A binding update list entry (mrd).
    Bul(Binding),
    /// A binding cache entry (had).
    Bc(Binding),
    /// The movement detector's current CoA (babymdd).
    CurrentCoa(CurrentCoa),
    /// A role the owner plays.
    NodeType(NodetypeInfo),
    /// A home agent the owner knows of (had's list, mrd's choice).
    HomeAgent(HomeAgentInfo),
    /// A binding as the data plane carries it (nemonetd).
    Dataplane(DataplaneInfo),
}

/// A chunk of an owner's answer to a state request. The header's `seq` is the request's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateDump {
    /// pid of the requester, so concurrent requests from other processes are not mixed.
    pub requester_pid: u32,
    /// Items of this chunk.
    pub items: Vec<StateItem>,
}

/// The end of an owner's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateEnd {
    /// pid of the requester.
    pub requester_pid: u32,
    /// Total number of items sent in the StateDump chunks before this.
    pub items: u32,
}

/// An IPv6 packet carried in a message: a hex string for people (JSON, `mipsock tap`),
/// raw octets on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PacketBytes(pub Vec<u8>);

impl fmt::Display for PacketBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for PacketBytes {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        if !s.len().is_multiple_of(2) {
            return Err(format!("odd number of hex digits ({})", s.len()));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&s[i..i + 2], 16)
                    .map_err(|e| format!("bad hex {:?}: {e}", &s[i..i + 2]))
            })
            .collect::<Result<Vec<u8>, String>>()
            .map(PacketBytes)
    }
}

impl Serialize for PacketBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for PacketBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            Vec::<u8>::deserialize(d).map(PacketBytes)
        }
    }
}

/// A UDP-encapsulated Mobility Header packet received on nemonetd's UDP socket (HA: port
/// 4191; MR: its DSMIPv6 socket). One socket per node carries signalling and data so the
/// NAT mapping of the BU is the one the data uses (RFC 5555 §5.2); nemonetd relays the
/// signalling here instead of writing it to the TUN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MhUdpIn {
    /// nemonetd's local address and port the datagram arrived on.
    pub local: SocketAddrV4,
    /// The outer source address and port (after any NAT).
    pub peer: SocketAddrV4,
    /// The inner IPv6 packet (next header 135, possibly after extension headers).
    pub packet: PacketBytes,
}

/// nemonetd's word that a binding change is in the data plane: for a BC_ADD, routes and
/// the tunnel's peer are in place; for a BC_REMOVE, nothing for the binding is tunnelled
/// any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataplaneReady {
    /// The binding's home address.
    pub hoa: Ipv6Addr,
    /// The change applied was a removal.
    pub removed: bool,
    /// The binding's identifier (RFC 5648): a bulk registration's BA waits for every
    /// binding it changed.
    #[serde(default)]
    pub binding_id: Option<u16>,
}

/// An operator's request to had: send a Home Agent Switch (RFC 5142) to the binding of
/// `hoa`, or to every binding, listing `home_agents`, or when empty the other home agents
/// of had's home agents list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaSwitch {
    /// The binding to move; `None`: every binding.
    #[serde(default)]
    pub hoa: Option<Ipv6Addr>,
    /// The home agents to list, most preferred first; empty: had's own list.
    #[serde(default)]
    pub home_agents: Vec<Ipv6Addr>,
}

/// A Mobility Header packet for nemonetd to send in UDP/IPv4 from its UDP socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MhUdpOut {
    /// Destination: HA, the address and port seen in the BU (the NAT's mapping); MR, the
    /// home agent's IPv4 address, port 4191.
    pub peer: SocketAddrV4,
    /// The inner IPv6 packet.
    pub packet: PacketBytes,
    /// MR: the care-of address to send from and its interface, for a router with several
    /// IPv4 uplinks (RFC 5648 §8.1: each IPv4 care-of address registers by a BU sent from
    /// it). `None`: the socket's and the kernel's choice. Left out of the encoding when
    /// `None`, so such a frame is the same octets as before the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<UdpFrom>,
}

/// Where a UDP-encapsulated Mobility Header leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpFrom {
    /// The source address (an address of ours).
    pub addr: Ipv4Addr,
    /// The interface it leaves through (0: the route's).
    pub ifindex: u32,
}
