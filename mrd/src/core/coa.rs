//! Which care-of addresses from the movement detector the mobile router may register.
//!
//! RFC 6275 §9.5.1 has the home agent silently discard a BU whose care-of address is
//! multicast, unspecified or loopback; a care-of address is a unicast routable address
//! (RFC 6275 §3). Sending such a BU only earns retransmissions into silence, so the MR
//! refuses the address itself and says why. It also refuses the home agent's own
//! addresses and addresses inside its own mobile network prefixes (RFC 3963 §5: those are
//! routed through the tunnel to the care-of address, a loop); had drops those too.

use std::net::{Ipv4Addr, Ipv6Addr};

use proto::model::CareOf;

use super::MrCoreConfig;

/// Why `coa` cannot be registered as a care-of address, if it cannot. The home address
/// itself passes: it means the router is at home (the de-registration).
pub(crate) fn refusal(cfg: &MrCoreConfig, coa: &CareOf) -> Option<&'static str> {
    match *coa {
        CareOf::V6(a) => refusal_v6(cfg, a),
        CareOf::V4 { addr, .. } => refusal_v4(cfg, addr),
    }
}

fn refusal_v6(cfg: &MrCoreConfig, a: Ipv6Addr) -> Option<&'static str> {
    if a.is_multicast() {
        Some("multicast (RFC 6275 §9.5.1)")
    } else if a.is_unspecified() {
        Some("unspecified (RFC 6275 §9.5.1)")
    } else if a.is_loopback() {
        Some("loopback (RFC 6275 §9.5.1)")
    } else if a.is_unicast_link_local() {
        Some("link-local: not routable to the home agent (RFC 6275 §3)")
    } else if a.to_ipv4_mapped().is_some() {
        Some("IPv4-mapped: an IPv4 care-of address comes as IPv4 (RFC 5555 §4.1)")
    } else if a == cfg.home_agent {
        Some("the home agent's own address")
    } else if cfg.mnp_v6.iter().any(|n| n.contains(&a)) {
        Some("inside our own mobile network prefix (RFC 3963 §5)")
    } else {
        None
    }
}

fn refusal_v4(cfg: &MrCoreConfig, a: Ipv4Addr) -> Option<&'static str> {
    let first = a.octets()[0];
    if a.is_unspecified() {
        Some("unspecified (RFC 6275 §9.5.1)")
    } else if a.is_broadcast() {
        Some("broadcast (RFC 6275 §9.5.1)")
    } else if a.is_multicast() {
        Some("multicast (RFC 6275 §9.5.1)")
    } else if a.is_loopback() {
        Some("loopback (RFC 6275 §9.5.1)")
    } else if a.is_link_local() {
        Some("link-local: not routable to the home agent (RFC 6275 §3)")
    } else if first == 0 || first >= 240 {
        Some("not a unicast address (0/8 or 240/4)")
    } else if Some(a) == cfg.home_agent_v4 {
        Some("the home agent's own IPv4 address")
    } else if cfg.mnp_v4.iter().any(|n| n.contains(&a)) {
        Some("inside our own IPv4 mobile network prefix (RFC 3963 §5, RFC 5555 §3.1.1)")
    } else {
        None
    }
}
