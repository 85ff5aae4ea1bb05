//! Duplication for flows that must not lose a packet (issue 15): with several care-of
//! addresses registered (RFC 5648), a packet of a flow the operator marked is sent through
//! every live path; the other end keeps the first copy and drops the others, by a bounded
//! window of recently seen packets. Both ends mark the same flows (`duplicate` in
//! nemonetd.conf); flow bindings signalled in the BU (RFC 6089) mark them per router
//! instead: a flow binding listing several BIDs is sent through each, and its later
//! copies are dropped by this same window (`peers::Snapshot::flow_route`).
//!
//! Which packets: [`DupRule`]s over the inner packet (protocol, a port range on either
//! side, DSCP). Which copies are the same: a hash of the inner packet without the fields a
//! path may change (IPv6 Traffic Class, IPv4 TOS and header checksum: RFC 6040 may copy a
//! CE mark from one path's outer header). Two packets identical in everything else within
//! the window are one packet sent twice — for the flows duplicated this is what we want;
//! a retransmission identical to an original that arrived is a duplicate anyway.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hasher};

use proto::encap::IpVersion;

use super::{InnerFields, inner_fields};

/// One flow selector: every condition given must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DupRule {
    /// IP protocol (inner), e.g. 17.
    pub proto: Option<u8>,
    /// A port range matched against either the source or the destination port (TCP, UDP,
    /// SCTP).
    pub ports: Option<(u16, u16)>,
    /// DSCP (the upper six bits of the Traffic Class / TOS), e.g. 46 (EF, voice).
    pub dscp: Option<u8>,
}

impl std::str::FromStr for DupRule {
    type Err = String;

    /// `udp`, `tcp`, `sctp` or `proto N`; `port N` or `port N-M`; `dscp N`; in any order,
    /// at least one: `"udp port 5004-5099"`, `"dscp 46"`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut r = DupRule::default();
        let mut words = s.split_whitespace();
        let number = |w: Option<&str>, what: &str, max: u32| -> Result<u32, String> {
            let w = w.ok_or_else(|| format!("'{what}' needs a number"))?;
            w.parse::<u32>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| format!("'{what} {w}': a number up to {max} expected"))
        };
        while let Some(w) = words.next() {
            match w {
                "udp" => r.proto = Some(17),
                "tcp" => r.proto = Some(6),
                "sctp" => r.proto = Some(132),
                "proto" => r.proto = Some(number(words.next(), "proto", 255)? as u8),
                "dscp" => r.dscp = Some(number(words.next(), "dscp", 63)? as u8),
                "port" => {
                    let v = words.next().ok_or("'port' needs N or N-M")?;
                    let (a, b) = v.split_once('-').unwrap_or((v, v));
                    let p = |x: &str| {
                        x.parse::<u16>()
                            .map_err(|_| format!("'port {v}': ports are 0-65535"))
                    };
                    let (a, b) = (p(a)?, p(b)?);
                    if a > b {
                        return Err(format!("'port {v}': the range is backwards"));
                    }
                    r.ports = Some((a, b));
                }
                other => {
                    return Err(format!(
                        "unknown word {other:?}: expected udp, tcp, sctp, proto N, port N[-M] or dscp N"
                    ));
                }
            }
        }
        if r == DupRule::default() {
            return Err(
                "an empty rule would duplicate everything; name a protocol, port or dscp".into(),
            );
        }
        Ok(r)
    }
}

impl fmt::Display for DupRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = Vec::new();
        if let Some(p) = self.proto {
            words.push(match p {
                6 => "tcp".to_string(),
                17 => "udp".to_string(),
                132 => "sctp".to_string(),
                p => format!("proto {p}"),
            });
        }
        if let Some((a, b)) = self.ports {
            words.push(if a == b {
                format!("port {a}")
            } else {
                format!("port {a}-{b}")
            });
        }
        if let Some(d) = self.dscp {
            words.push(format!("dscp {d}"));
        }
        f.write_str(&words.join(" "))
    }
}

impl DupRule {
    /// Whether the inner packet is of a flow this rule selects.
    pub fn matches(&self, packet: &[u8]) -> bool {
        let Some(InnerFields { proto, ports, dscp }) = inner_fields(packet) else {
            return false;
        };
        self.proto.is_none_or(|p| p == proto)
            && self.dscp.is_none_or(|d| d == dscp)
            && self.ports.is_none_or(|(a, b)| {
                ports.is_some_and(|(s, d)| (a..=b).contains(&s) || (a..=b).contains(&d))
            })
    }
}

/// Whether any of `rules` selects the packet.
pub fn selected(rules: &[DupRule], packet: &[u8]) -> bool {
    rules.iter().any(|r| r.matches(packet))
}

/// Packets remembered: at 50 packets a second per flow, a few seconds of a hundred flows;
/// 32 KiB of hashes twice over. A copy arriving later than that many packets after the
/// first is delivered again (a path that much slower is of no use to a duplicated flow).
pub const DEDUP_WINDOW: usize = 4096;

/// The last [`DEDUP_WINDOW`] duplicated packets seen, by hash.
#[derive(Debug)]
pub struct Dedup {
    order: VecDeque<u64>,
    seen: HashSet<u64>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for Dedup {
    fn default() -> Self {
        Dedup {
            order: VecDeque::with_capacity(DEDUP_WINDOW),
            seen: HashSet::with_capacity(DEDUP_WINDOW),
            // Keyed per process: which packets collide is not for a sender to choose.
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }
}

impl Dedup {
    /// The packet's identity across paths ([`module docs`](self)).
    fn key(&self, packet: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        match IpVersion::of(packet) {
            Ok(IpVersion::V6) if packet.len() >= 40 => {
                // Version, Traffic Class and Flow Label out; the rest whole.
                h.write(&packet[4..]);
            }
            Ok(IpVersion::V4) if packet.len() >= 20 => {
                h.write_u8(packet[0]);
                h.write(&packet[2..10]);
                h.write(&packet[12..]);
            }
            _ => h.write(packet),
        }
        h.finish()
    }

    /// Whether `packet` is the first copy seen (remembered from now on); `false`: a
    /// duplicate, to be dropped.
    pub fn first(&mut self, packet: &[u8]) -> bool {
        let k = self.key(packet);
        if !self.seen.insert(k) {
            return false;
        }
        if self.order.len() == DEDUP_WINDOW
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.order.push_back(k);
        true
    }

    /// Packets remembered now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp6(sport: u16, dport: u16, tc: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 48];
        p[0] = 0x60 | (tc >> 4);
        p[1] = tc << 4;
        p[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p[6] = 17;
        p[7] = 63;
        p[8] = 0x20;
        p[24] = 0x20;
        p[40..42].copy_from_slice(&sport.to_be_bytes());
        p[42..44].copy_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn udp4(dport: u16, tos: u8, frag: u16) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[1] = tos;
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[9] = 17;
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        p
    }

    #[test]
    fn rules_parse_print_and_refuse() {
        let r: DupRule = "udp port 5004-5099".parse().unwrap();
        assert_eq!(r.proto, Some(17));
        assert_eq!(r.ports, Some((5004, 5099)));
        assert_eq!(r.to_string(), "udp port 5004-5099");
        assert_eq!("dscp 46".parse::<DupRule>().unwrap().dscp, Some(46));
        assert_eq!(
            "proto 50".parse::<DupRule>().unwrap().to_string(),
            "proto 50"
        );
        for bad in ["", "port", "port 9-1", "port 70000", "dscp 64", "udp fast"] {
            assert!(bad.parse::<DupRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rules_select_by_protocol_port_either_side_and_dscp() {
        let voice: DupRule = "udp port 5004-5099".parse().unwrap();
        assert!(voice.matches(&udp6(40000, 5004, 0, b"rtp")));
        assert!(voice.matches(&udp6(5099, 40000, 0, b"rtp")));
        assert!(!voice.matches(&udp6(40000, 5100, 0, b"rtp")));
        let ef: DupRule = "dscp 46".parse().unwrap();
        assert!(ef.matches(&udp6(1, 2, 46 << 2, b"")));
        assert!(!ef.matches(&udp6(1, 2, 0, b"")));
        assert!(ef.matches(&udp4(9, 46 << 2, 0)));
        // A later fragment has no ports: not selected by a port rule.
        let v4: DupRule = "udp port 9".parse().unwrap();
        assert!(v4.matches(&udp4(9, 0, 0)));
        assert!(!v4.matches(&udp4(9, 0, 0x0010)));
        assert!(!selected(&[], &udp4(9, 0, 0)));
        assert!(!voice.matches(&[0x60; 10]));
    }

    #[test]
    fn the_window_keeps_the_first_copy_whatever_the_path_marked() {
        let mut d = Dedup::default();
        let a = udp6(1, 5004, 0, b"seq 1");
        assert!(d.first(&a));
        assert!(!d.first(&a));
        // The other copy with CE set by its path (ECN bits of the Traffic Class).
        assert!(!d.first(&udp6(1, 5004, 0b11, b"seq 1")));
        assert!(d.first(&udp6(1, 5004, 0, b"seq 2")));
        let v4 = udp4(9, 0, 0);
        assert!(d.first(&v4));
        let mut ce = v4.clone();
        ce[1] = 3;
        ce[10] = 0xff;
        assert!(!d.first(&ce));
        // Bounded: the oldest is forgotten.
        for i in 0..DEDUP_WINDOW as u32 {
            assert!(d.first(&udp6(2, 5004, 0, &i.to_be_bytes())));
        }
        assert_eq!(d.len(), DEDUP_WINDOW);
        assert!(d.first(&a), "forgotten after the window");
    }
}
