//! The domain model every crate shares: what a binding is (care-of address, tunnel
//! encapsulation, prefixes, flags), defined once, with no I/O and no runtime.
//!
//! The cores of had and mrd produce these, the bus (`mipsock`) carries them, nemonetd
//! installs them. serde derives feed the bus's binary frames and its JSON/text views; a
//! few small types ([`CareOf`], [`BuFlags`]) are strings for people (`"192.0.2.5:4191"`,
//! `"A|H|R"`) and compact binary on the wire: their serde impls ask the format
//! `is_human_readable()`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::flow::FlowSelector;
use crate::mh::BuFlags;

/// Writes set bits by name joined with `|`; unnamed bits as hex.
pub fn fmt_bits(
    f: &mut fmt::Formatter<'_>,
    bits: u16,
    names: &[(u16, &str)],
    empty: &str,
) -> fmt::Result {
    if bits == 0 {
        return f.write_str(empty);
    }
    let mut rest = bits;
    let mut first = true;
    for &(bit, name) in names {
        if bits & bit != 0 {
            if !first {
                f.write_str("|")?;
            }
            f.write_str(name)?;
            first = false;
            rest &= !bit;
        }
    }
    if rest != 0 {
        if !first {
            f.write_str("|")?;
        }
        write!(f, "{rest:#x}")?;
    }
    Ok(())
}

/// Parses `a|b|0x40` against `names` (case-insensitive).
pub fn parse_bits(s: &str, names: &[(u16, &str)], empty: &str) -> Result<u16, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case(empty) {
        return Ok(0);
    }
    let mut bits = 0u16;
    for part in s.split(['|', ',']) {
        let part = part.trim();
        if let Some(hex) = part.strip_prefix("0x") {
            bits |=
                u16::from_str_radix(hex, 16).map_err(|e| format!("bad hex bits {part:?}: {e}"))?;
        } else if let Some(&(bit, _)) = names.iter().find(|(_, n)| n.eq_ignore_ascii_case(part)) {
            bits |= bit;
        } else {
            let known: Vec<&str> = names.iter().map(|(_, n)| *n).collect();
            return Err(format!(
                "unknown flag {part:?} (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(bits)
}

/// BU flag names for text and JSON, in wire order (RFC 6275 §6.1.7, RFC 3963 R, RFC 5555
/// F, RFC 5845 T, RFC 6602 B).
const BU_FLAG_NAMES: [(u16, &str); 10] = [
    (0x8000, "A"),
    (0x4000, "H"),
    (0x2000, "L"),
    (0x1000, "K"),
    (0x0800, "M"),
    (0x0400, "R"),
    (0x0200, "P"),
    (0x0100, "F"),
    (0x0080, "T"),
    (0x0040, "B"),
];

/// Text of the BU flags: `A|H|R`, `none` when empty, unnamed bits in hex.
impl fmt::Display for BuFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_bits(f, self.0, &BU_FLAG_NAMES, "none")
    }
}

impl FromStr for BuFlags {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_bits(s, &BU_FLAG_NAMES, "none").map(BuFlags)
    }
}

/// A care-of address: IPv6, or IPv4 (DSMIPv6, RFC 5555) with the UDP port when the
/// binding is UDP-encapsulated. Typed instead of SHISA's `::ffff:a.b.c.d` (docs/notes.md
/// §6). Text/JSON: `2001:db8::5`, `192.0.2.5`, `192.0.2.5:4191`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CareOf {
    /// IPv6 care-of address.
    V6(Ipv6Addr),
    /// IPv4 care-of address; `udp_port` is the MR's UDP port (as seen by the HA, after
    /// NAT) when the binding uses UDP encapsulation.
    V4 {
        /// The IPv4 address.
        addr: Ipv4Addr,
        /// The MR's UDP source port when UDP-encapsulated.
        udp_port: Option<u16>,
    },
}

impl fmt::Display for CareOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CareOf::V6(a) => write!(f, "{a}"),
            CareOf::V4 {
                addr,
                udp_port: None,
            } => write!(f, "{addr}"),
            CareOf::V4 {
                addr,
                udp_port: Some(p),
            } => write!(f, "{addr}:{p}"),
        }
    }
}

impl FromStr for CareOf {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(a) = s.parse::<Ipv6Addr>() {
            return Ok(CareOf::V6(a));
        }
        if let Ok(addr) = s.parse::<Ipv4Addr>() {
            return Ok(CareOf::V4 {
                addr,
                udp_port: None,
            });
        }
        if let Ok(sa) = s.parse::<SocketAddrV4>() {
            return Ok(CareOf::V4 {
                addr: *sa.ip(),
                udp_port: Some(sa.port()),
            });
        }
        Err(format!(
            "bad care-of address {s:?}: expected an IPv6 address, an IPv4 address or IPv4:port"
        ))
    }
}

/// The binary shape of [`CareOf`] (postcard has no use for the string form).
#[derive(Serialize, Deserialize)]
enum CareOfWire {
    V6(Ipv6Addr),
    V4(Ipv4Addr, Option<u16>),
}

impl Serialize for CareOf {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            match *self {
                CareOf::V6(a) => CareOfWire::V6(a),
                CareOf::V4 { addr, udp_port } => CareOfWire::V4(addr, udp_port),
            }
            .serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for CareOf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            Ok(match CareOfWire::deserialize(d)? {
                CareOfWire::V6(a) => CareOf::V6(a),
                CareOfWire::V4(addr, udp_port) => CareOf::V4 { addr, udp_port },
            })
        }
    }
}

/// Serde for the bit sets: a string for people, the integer on the wire.
#[macro_export]
macro_rules! serde_bits {
    ($t:ty, $int:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    serde::Serialize::serialize(&self.0, s)
                }
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = <String as serde::Deserialize>::deserialize(d)?;
                    s.parse().map_err(serde::de::Error::custom)
                } else {
                    <$int as serde::Deserialize>::deserialize(d).map(Self)
                }
            }
        }
    };
}
serde_bits!(BuFlags, u16);

/// How the tunnel between MR and HA is encapsulated (docs/notes.md §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encapsulation {
    /// IPv6 outer header (next header 41 for IPv6 inside, 4 for IPv4 inside): IPv6 CoA.
    InIpv6,
    /// IPv4 outer header (protocol 41 / 4): IPv4 CoA, no NAT, UDP not forced.
    InIpv4,
    /// IPv4 + UDP outer headers (RFC 5555: NAT detected or F flag). The MR's port is
    /// in [`CareOf::V4`]; the HA's port (4191) here.
    UdpIpv4 {
        /// The home agent's UDP port.
        ha_port: u16,
    },
}

/// A binding, as a binding cache entry (had: BC_ADD/BC_REMOVE) or a binding update list
/// entry (mrd: BUL_ADD/BUL_REMOVE): everything the data plane (nemonetd) needs to build
/// the tunnel and its routes without asking anyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The MR's IPv6 home address.
    pub hoa: Ipv6Addr,
    /// The MR's IPv4 home address, when one is registered (RFC 5555 §3.1.1).
    #[serde(default)]
    pub hoa_v4: Option<Ipv4Addr>,
    /// Current care-of address.
    pub coa: CareOf,
    /// The home agent's IPv6 address.
    pub ha: Ipv6Addr,
    /// The home agent's IPv4 address (DSMIPv6 tunnels from an IPv4 CoA end there).
    #[serde(default)]
    pub ha_v4: Option<Ipv4Addr>,
    /// IPv6 mobile network prefixes (RFC 3963 MNP options).
    #[serde(default)]
    pub mnp_v6: Vec<Ipv6Net>,
    /// IPv4 mobile network prefixes (registered in the same BU).
    #[serde(default)]
    pub mnp_v4: Vec<Ipv4Net>,
    /// Tunnel encapsulation in use.
    pub encapsulation: Encapsulation,
    /// Granted lifetime in seconds (0 on removal).
    #[serde(default)]
    pub lifetime: u32,
    /// Binding identifier (RFC 5648) when multiple CoAs are registered.
    #[serde(default)]
    pub binding_id: Option<u16>,
    /// Flags of the accepted Binding Update.
    #[serde(default)]
    pub flags: BuFlags,
    /// Whether the HA detected a NAT between CoA and HA (RFC 5555 §4.1).
    #[serde(default)]
    pub nat_detected: bool,
    /// Interface the CoA lives on (MR side), when known.
    #[serde(default)]
    pub coa_ifindex: Option<u32>,
    /// The flow bindings of the home address (RFC 6089), shared by all its BIDs, by
    /// increasing FID-PRI: which flows go through which of its care-of addresses.
    #[serde(default)]
    pub flows: Vec<FlowBinding>,
    /// The binding's BID-PRI (RFC 6089 §4.1, §5.1.1): among several care-of addresses,
    /// packets that match no flow binding go through the live ones of the lowest value,
    /// spread over those when several share it; 0: none given (RFC 5648's format), as 1.
    #[serde(default)]
    pub bid_priority: u8,
}

impl Binding {
    /// Why no tunnel or route may be built from this binding, if none may: a home, care-of
    /// or home agent address that cannot be one (unspecified, loopback, multicast,
    /// link-local, IPv4-mapped; for IPv4 also "this network" 0/8, 127/8, 169.254/16,
    /// 224/4 and 240/4 with the broadcast address), a care-of address equal to the home
    /// agent's (a tunnel to itself), or a mobile network prefix that is a default route
    /// or overlaps one of those ranges. had never registers such a binding (its prefix
    /// table, RFC 3963 §6.1; RFC 6275 §9.5.1 for the addresses), nor does mrd; this keeps
    /// anything else that writes to the bus from routing a node's default route, its
    /// link-local or multicast traffic into a tunnel, or replacing them with unreachable
    /// routes.
    pub fn unusable(&self) -> Option<String> {
        if let Some(why) = unusable_v6(self.hoa) {
            return Some(format!("home address {}: {why}", self.hoa));
        }
        if let Some(why) = unusable_v6(self.ha) {
            return Some(format!("home agent address {}: {why}", self.ha));
        }
        for (what, a) in [
            ("IPv4 home address", self.hoa_v4),
            ("IPv4 home agent address", self.ha_v4),
        ] {
            if let Some(a) = a
                && let Some(why) = unusable_v4(a)
            {
                return Some(format!("{what} {a}: {why}"));
            }
        }
        match self.coa {
            CareOf::V6(a) => {
                if let Some(why) = unusable_v6(a) {
                    return Some(format!("care-of address {a}: {why}"));
                }
                if a == self.ha {
                    return Some(format!("care-of address {a} is the home agent's"));
                }
            }
            CareOf::V4 { addr, .. } => {
                if let Some(why) = unusable_v4(addr) {
                    return Some(format!("care-of address {addr}: {why}"));
                }
                if Some(addr) == self.ha_v4 {
                    return Some(format!("care-of address {addr} is the home agent's"));
                }
            }
        }
        let prefixes = (self.mnp_v6.iter().copied().map(IpNet::V6))
            .chain(self.mnp_v4.iter().copied().map(IpNet::V4));
        for p in prefixes {
            if let Some(why) = unroutable_prefix(p) {
                return Some(format!("mobile network prefix {p} {why}"));
            }
        }
        None
    }
}

/// Why `p` cannot be a mobile network prefix, if it cannot: it is a default route, or it
/// overlaps a range that is never routed into a tunnel (unspecified, loopback,
/// IPv4-mapped, link-local, multicast; IPv4's "this network", loopback, link-local,
/// multicast, 240/4 and broadcast). had's prefix table and mrd's configuration refuse
/// such a prefix at load; nemonetd refuses a binding that holds one.
pub fn unroutable_prefix(p: IpNet) -> Option<String> {
    if p.prefix_len() == 0 {
        return Some("is a default route".into());
    }
    let r = match p {
        IpNet::V6(p) => V6_NOT_ROUTED
            .iter()
            .find(|r| r.contains(&p) || p.contains(*r))
            .map(|r| r.to_string()),
        IpNet::V4(p) => V4_NOT_ROUTED
            .iter()
            .find(|r| r.contains(&p) || p.contains(*r))
            .map(|r| r.to_string()),
    };
    r.map(|r| format!("overlaps {r}, which is never routed into a tunnel"))
}

/// IPv6 ranges no mobile network prefix may touch, and no address be in: unspecified,
/// loopback, IPv4-mapped, link-local, multicast.
const V6_NOT_ROUTED: [Ipv6Net; 5] = [
    ipv6_net(Ipv6Addr::UNSPECIFIED, 128),
    ipv6_net(Ipv6Addr::LOCALHOST, 128),
    ipv6_net(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96),
    ipv6_net(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
    ipv6_net(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
];

/// IPv4 ranges no mobile network prefix may touch: "this network", loopback, link-local,
/// multicast, and 240/4 with the limited broadcast address (RFC 6890).
const V4_NOT_ROUTED: [Ipv4Net; 5] = [
    ipv4_net(Ipv4Addr::new(0, 0, 0, 0), 8),
    ipv4_net(Ipv4Addr::new(127, 0, 0, 0), 8),
    ipv4_net(Ipv4Addr::new(169, 254, 0, 0), 16),
    ipv4_net(Ipv4Addr::new(224, 0, 0, 0), 4),
    ipv4_net(Ipv4Addr::new(240, 0, 0, 0), 4),
];

const fn ipv6_net(a: Ipv6Addr, len: u8) -> Ipv6Net {
    match Ipv6Net::new(a, len) {
        Ok(n) => n,
        Err(_) => panic!("a prefix length past 128"),
    }
}

const fn ipv4_net(a: Ipv4Addr, len: u8) -> Ipv4Net {
    match Ipv4Net::new(a, len) {
        Ok(n) => n,
        Err(_) => panic!("a prefix length past 32"),
    }
}

/// Why `a` cannot be a home, care-of or home agent address (RFC 6275 §9.5.1: not
/// multicast, unspecified or loopback; §3: routable, so not link-local; RFC 5555 §4.1: an
/// IPv4 care-of address comes as IPv4, not IPv4-mapped), if it cannot.
pub fn unusable_v6(a: Ipv6Addr) -> Option<&'static str> {
    V6_NOT_ROUTED.iter().position(|r| r.contains(&a)).map(|i| {
        [
            "unspecified",
            "loopback",
            "IPv4-mapped",
            "link-local",
            "multicast",
        ][i]
    })
}

/// Why `a` cannot be an IPv4 home, care-of or home agent address (not unicast, or not
/// routable), if it cannot.
pub fn unusable_v4(a: Ipv4Addr) -> Option<&'static str> {
    V4_NOT_ROUTED.iter().position(|r| r.contains(&a)).map(|i| {
        [
            "\"this network\"",
            "loopback",
            "link-local",
            "multicast",
            "reserved or broadcast",
        ][i]
    })
}

/// One flow binding (RFC 6089 §4.3): packets that match `selector` go through the
/// bindings `bids` (RFC 5648), a copy through each when several are listed (§5.3.6).
/// Entries are tried by increasing `priority` (FID-PRI), the first match wins; a packet
/// matching none takes the binding the data plane would choose without flow bindings.
/// An entry none of whose BIDs is registered is inactive (§4.3) and matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowBinding {
    /// Flow identifier, chosen by the mobile router, unique per home address.
    pub fid: u16,
    /// FID-PRI: lower is tried first.
    pub priority: u16,
    /// Which packets (towards the mobile network; see [`FlowSelector::reversed`]).
    pub selector: FlowSelector,
    /// The Binding Identifiers the flow is bound to.
    pub bids: Vec<u16>,
}

impl FlowBinding {
    /// The BIDs of `bids` that are registered (`registered`): the paths this flow takes;
    /// none: the entry is inactive.
    pub fn active_bids<'a>(&'a self, registered: &'a [u16]) -> impl Iterator<Item = u16> + 'a {
        self.bids.iter().copied().filter(|b| registered.contains(b))
    }
}

/// What the movement detector asks of the mobile router (SHISA's MD_INFO commands,
/// `MIPM_MD_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MdCommand {
    /// Re-register: a new care-of address (1).
    Rereg = 1,
    /// Deregister: back at home (2).
    Dereghome = 2,
    /// Deregister a foreign CoA (3).
    Deregforeign = 3,
    /// Scan for a better attachment (4).
    Scan = 4,
}

/// MD_INFO hint: what the detector's decision is based on (SHISA `MIPM_MD_*` hints).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MdHint {
    /// An interface index (1).
    Index = 1,
    /// An address (2).
    #[default]
    Addr = 2,
    /// At home (3).
    Home = 3,
}

/// A movement report (SHISA's MIPM_MD_INFO): the movement detector (babymdd) tells the
/// mobile router (mrd) its attachment changed, and to which care-of addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MdInfo {
    /// What to do.
    pub command: MdCommand,
    /// What the decision is based on.
    #[serde(default)]
    pub hint: MdHint,
    /// The home address concerned; `None` for every home address.
    #[serde(default)]
    pub hoa: Option<Ipv6Addr>,
    /// The (new) care-of address; `None` for SCAN.
    #[serde(default)]
    pub coa: Option<CareOf>,
    /// A second care-of address (the other family, or the old one), if any.
    #[serde(default)]
    pub coa2: Option<CareOf>,
    /// Interface of the care-of address.
    #[serde(default)]
    pub ifindex: u32,
    /// Every interface's usable care-of address (RFC 5648: each may be its own binding),
    /// the primary's included; empty for anything but REREG. Last, and left out of the
    /// encoding when empty, so an MD_INFO without uplinks is the same octets as before
    /// the field existed (mipsock reads those as having none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uplinks: Vec<Uplink>,
}

/// One usable care-of address per interface (RFC 5648: each may be its own binding, its
/// binding identifier chosen by the mobile router).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uplink {
    /// The interface's best care-of address (IPv6 before IPv4).
    pub coa: CareOf,
    /// Interface index.
    pub ifindex: u32,
    /// Interface name: what mrd.conf's `egress-interface` lists.
    pub ifname: String,
    /// The interface's preference, lower preferred (the movement detector's).
    #[serde(default)]
    pub preference: u32,
}

/// An ICMPv6 Parameter Problem a core asks its shell to send about a received Mobility
/// Header (RFC 6275 §9.2: Payload Proto other than 59, or Header Len below the type's
/// minimum; RFC 4443 §3.4), already rate-limited by the core (RFC 4443 §2.4(f)). The core
/// saw only the MH: the shell adds the MH's offset in the packet ([`Self::pointer`]) and
/// quotes the invoking packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParameterProblem {
    /// Source of the error: the unicast address the invoking packet was sent to.
    pub src: Ipv6Addr,
    /// The invoking packet's on-wire IPv6 source (no binding cache lookup, §9.2).
    pub dst: Ipv6Addr,
    /// ICMPv6 code: 0, erroneous header field.
    pub code: u8,
    /// Offset of the erroneous field from the start of the Mobility Header: 0 (Payload
    /// Proto) or 1 (Header Len).
    pub mh_pointer: u32,
    /// Interface the invoking packet arrived on; 0 when the core does not know (the
    /// routing table chooses).
    pub ifindex: u32,
}

impl ParameterProblem {
    /// The ICMPv6 Pointer: offset of the field from the start of the invoking IPv6 packet,
    /// given the MH's offset in it (`ext::ReceivedPacket::payload_range.start`).
    pub fn pointer(&self, mh_offset: usize) -> u32 {
        mh_offset as u32 + self.mh_pointer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding {
            hoa: "2001:db8:1::100".parse().unwrap(),
            hoa_v4: Some(Ipv4Addr::new(192, 0, 2, 17)),
            coa: CareOf::V6("2001:db8:a::2".parse().unwrap()),
            ha: "2001:db8:1::1".parse().unwrap(),
            ha_v4: Some(Ipv4Addr::new(203, 0, 113, 1)),
            mnp_v6: vec!["2001:db8:100::/48".parse().unwrap()],
            mnp_v4: vec!["192.0.2.16/28".parse().unwrap()],
            encapsulation: Encapsulation::InIpv6,
            lifetime: 600,
            binding_id: None,
            flags: BuFlags::A | BuFlags::H | BuFlags::R,
            nat_detected: false,
            coa_ifindex: None,
            flows: Vec::new(),
            bid_priority: 0,
        }
    }

    #[test]
    fn a_binding_of_documentation_addresses_is_usable() {
        assert_eq!(binding().unusable(), None);
        let mut b = binding();
        b.coa = CareOf::V4 {
            addr: Ipv4Addr::new(198, 51, 100, 200),
            udp_port: Some(40000),
        };
        b.mnp_v4.push("10.0.0.0/8".parse().unwrap());
        b.mnp_v6.push("2001:db8::/32".parse().unwrap());
        assert_eq!(b.unusable(), None);
    }

    #[test]
    fn unusable_addresses_and_prefixes_are_named() {
        type Change = fn(&mut Binding);
        let cases: Vec<(Change, &str)> = vec![
            (
                |b| b.hoa = Ipv6Addr::LOCALHOST,
                "home address ::1: loopback",
            ),
            (|b| b.hoa = "fe80::1".parse().unwrap(), "link-local"),
            (
                |b| b.ha = "ff02::2".parse().unwrap(),
                "home agent address ff02::2: multicast",
            ),
            (
                |b| b.coa = CareOf::V6(Ipv6Addr::UNSPECIFIED),
                "care-of address ::: unspecified",
            ),
            (
                |b| b.coa = CareOf::V6("::ffff:192.0.2.1".parse().unwrap()),
                "IPv4-mapped",
            ),
            (|b| b.coa = CareOf::V6(b.ha), "is the home agent's"),
            (
                |b| {
                    b.coa = CareOf::V4 {
                        addr: Ipv4Addr::new(203, 0, 113, 1),
                        udp_port: None,
                    }
                },
                "care-of address 203.0.113.1 is the home agent's",
            ),
            (
                |b| {
                    b.coa = CareOf::V4 {
                        addr: Ipv4Addr::BROADCAST,
                        udp_port: None,
                    }
                },
                "reserved or broadcast",
            ),
            (
                |b| b.hoa_v4 = Some(Ipv4Addr::new(127, 0, 0, 1)),
                "IPv4 home address 127.0.0.1: loopback",
            ),
            (
                |b| b.ha_v4 = Some(Ipv4Addr::new(0, 1, 2, 3)),
                "\"this network\"",
            ),
            (
                |b| b.mnp_v6.push("::/0".parse().unwrap()),
                "mobile network prefix ::/0 is a default route",
            ),
            (
                |b| b.mnp_v6.push("fe80::/64".parse().unwrap()),
                "overlaps fe80::/10",
            ),
            (
                |b| b.mnp_v6.push("8000::/1".parse().unwrap()),
                "8000::/1 overlaps fe80::/10",
            ),
            (
                |b| b.mnp_v4.push("0.0.0.0/0".parse().unwrap()),
                "0.0.0.0/0 is a default route",
            ),
            (
                |b| b.mnp_v4.push("224.0.0.0/4".parse().unwrap()),
                "overlaps 224.0.0.0/4",
            ),
            (
                |b| b.mnp_v4.push("169.254.1.0/24".parse().unwrap()),
                "overlaps 169.254.0.0/16",
            ),
            (
                |b| b.mnp_v4.push("64.0.0.0/2".parse().unwrap()),
                "overlaps 127.0.0.0/8",
            ),
        ];
        for (change, want) in cases {
            let mut b = binding();
            change(&mut b);
            let why = b.unusable().unwrap_or_else(|| panic!("usable: {b:?}"));
            assert!(why.contains(want), "{why:?} should say {want:?}");
        }
    }

    #[test]
    fn bu_flags_text_round_trip_keeps_unnamed_bits() {
        let f = BuFlags::A | BuFlags::H | BuFlags::R;
        assert_eq!(f.to_string(), "A|H|R");
        assert_eq!("a|h|r".parse::<BuFlags>().unwrap(), f);
        assert_eq!(BuFlags(0).to_string(), "none");
        let odd = BuFlags(0x8003);
        assert_eq!(odd.to_string(), "A|0x3");
        assert_eq!(odd.to_string().parse::<BuFlags>().unwrap(), odd);
        assert!(
            "A|Q"
                .parse::<BuFlags>()
                .unwrap_err()
                .contains("unknown flag")
        );
    }

    #[test]
    fn bu_flags_json_is_text_for_people() {
        let f = BuFlags::A | BuFlags::F;
        assert_eq!(serde_json::to_string(&f).unwrap(), "\"A|F\"");
        assert_eq!(serde_json::from_str::<BuFlags>("\"A|F\"").unwrap(), f);
    }

    #[test]
    fn care_of_text_forms() {
        let v4: CareOf = "192.0.2.5:4191".parse().unwrap();
        assert_eq!(
            v4,
            CareOf::V4 {
                addr: Ipv4Addr::new(192, 0, 2, 5),
                udp_port: Some(4191)
            }
        );
        assert_eq!(v4.to_string(), "192.0.2.5:4191");
        assert_eq!(
            "2001:db8::5".parse::<CareOf>().unwrap(),
            CareOf::V6("2001:db8::5".parse().unwrap())
        );
        assert!("2001:db8::5:4191:x".parse::<CareOf>().is_err());
        let json = serde_json::to_string(&v4).unwrap();
        assert_eq!(json, "\"192.0.2.5:4191\"");
        assert_eq!(serde_json::from_str::<CareOf>(&json).unwrap(), v4);
    }
}
