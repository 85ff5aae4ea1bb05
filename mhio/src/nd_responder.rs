//! The home agent's own answers to Neighbour Solicitations for the addresses it defends
//! (RFC 6275 §10.4.1, RFC 3963 §6.3): what the kernel's proxy neighbour entries did, in
//! user space.
//!
//! Why: the kernel keeps proxy entries in a table of 16 hash buckets (`pneigh`), so every
//! insert, delete and lookup walks a list as long as a sixteenth of the entries. At a
//! fleet's 100,000 home addresses a take-over spent 174 s adding them (measured,
//! `tests/failover.rs takeover_at_fleet_size`), and each new registration paid the walk
//! inside had's loop. Here the lookup is the caller's hash map, and a had that dies leaves
//! no entry behind for its host to go on answering.
//!
//! The receiver is an AF_PACKET socket on the home interface: it sees a solicitation
//! whether it is multicast to a solicited-node group this host never joined (the socket
//! turns on all-multicast reception, `PACKET_MR_ALLMULTI`, for as long as it is open) or
//! unicast to a home address, which the kernel would forward into the binding's tunnel
//! (had's nftables guard drops forwarded ND). The [`crate::bpf::ns_filter`] keeps only
//! solicitations with hop limit 255; [`parse_solicitation`] checks the rest of RFC 4861
//! §7.1.1.

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::AsRawFd;

use nix::libc;
use nix::sys::socket::{LinkAddr, recvfrom};
use proto::icmpv6::{Icmpv6Repr, NdOption};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tracing::{debug, trace};

use crate::{Error, Result, bpf, register, solicited_node};

/// A valid Neighbour Solicitation (RFC 4861 §7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solicitation {
    /// Its source: `::` for Duplicate Address Detection.
    pub src: Ipv6Addr,
    /// Its destination: a solicited-node group, or the target itself.
    pub dst: Ipv6Addr,
    /// The address asked about.
    pub target: Ipv6Addr,
    /// The Source Link-Layer Address option's address, if any.
    pub source_mac: Option<[u8; 6]>,
}

impl Solicitation {
    /// Where the answer goes (RFC 4861 §7.2.4): the solicitor, or all nodes when it asked
    /// from `::` (a node checking whether the address is taken).
    pub fn answer_to(&self) -> Ipv6Addr {
        if self.src.is_unspecified() {
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)
        } else {
            self.src
        }
    }
}

/// Checks an IPv6 packet against RFC 4861 §7.1.1 and returns the solicitation: hop limit
/// 255, ICMPv6 right after the header with a verifying checksum, code 0, a target that is
/// not multicast, and from `::` only to a solicited-node group and without a Source
/// Link-Layer Address option. `None` for anything else.
pub fn parse_solicitation(packet: &[u8]) -> Option<Solicitation> {
    let ip = proto::ext::Ipv6Header::new_checked(packet).ok()?;
    if ip.hop_limit() != 255 || ip.next_header() != proto::IPPROTO_ICMPV6 {
        return None;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let end = 40 + usize::from(ip.payload_len());
    let icmp = packet.get(40..end)?;
    if icmp.len() < 24 || icmp[1] != 0 {
        return None;
    }
    if proto::checksum::v6(&src, &dst, proto::IPPROTO_ICMPV6, icmp) != 0 {
        return None;
    }
    let Ok(Icmpv6Repr::NeighborSolicitation(ns)) = Icmpv6Repr::parse_bytes(icmp) else {
        return None;
    };
    if ns.target.is_multicast() {
        return None;
    }
    let source_mac = ns.options.iter().find_map(|o| match o {
        NdOption::SourceLinkLayerAddress(a) if a.len() >= 6 => {
            let mut m = [0u8; 6];
            m.copy_from_slice(&a[..6]);
            Some(m)
        }
        _ => None,
    });
    if src.is_unspecified() && (dst != solicited_node(ns.target) || source_mac.is_some()) {
        return None;
    }
    Some(Solicitation {
        src,
        dst,
        target: ns.target,
        source_mac,
    })
}

/// Receives the home link's Neighbour Solicitations.
#[derive(Debug)]
pub struct SolicitationReceiver {
    socket: AsyncFd<Socket>,
    buf: Box<[u8]>,
}

impl SolicitationReceiver {
    /// Opens the receiver on interface `ifindex`.
    ///
    /// # Errors
    /// [`Error::Socket`] naming the failing call.
    pub fn new(ifindex: u32) -> Result<Self> {
        // Protocol 0 until bound: nothing unfiltered is queued first (packet(7)).
        let socket = Socket::new(Domain::PACKET, Type::DGRAM, Some(Protocol::from(0)))
            .map_err(|e| Error::socket("opening an AF_PACKET socket (needs CAP_NET_RAW)", e))?;
        socket
            .attach_filter(&bpf::ns_filter())
            .map_err(|e| Error::socket("attaching the Neighbour Solicitation filter", e))?;
        crate::receiver::bind_packet(&socket, crate::receiver::ETH_P_IPV6, ifindex).map_err(
            |e| {
                Error::socket(
                    format!("binding the solicitation receiver to ifindex {ifindex}"),
                    e,
                )
            },
        )?;
        all_multicast(&socket, ifindex)
            .map_err(|e| Error::socket("PACKET_ADD_MEMBERSHIP (all multicast)", e))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| Error::socket("O_NONBLOCK on the solicitation receiver", e))?;
        let socket = register(socket, "AF_PACKET (solicitations)")?;
        debug!(ifindex, "Neighbour Solicitation receiver open");
        Ok(SolicitationReceiver {
            socket,
            buf: vec![0; 1500].into_boxed_slice(),
        })
    }

    /// The next valid solicitation; others are dropped.
    ///
    /// # Errors
    /// [`Error::Receive`].
    pub async fn recv(&mut self) -> Result<Solicitation> {
        loop {
            let mut guard = self.socket.readable().await.map_err(Error::Receive)?;
            let r = guard.try_io(|s| {
                recvfrom::<LinkAddr>(s.get_ref().as_raw_fd(), &mut self.buf)
                    .map_err(io::Error::from)
            });
            match r {
                Ok(Ok((n, _from))) => {
                    match parse_solicitation(&self.buf[..n.min(self.buf.len())]) {
                        Some(s) => return Ok(s),
                        None => trace!(len = n, "invalid neighbour solicitation dropped"),
                    }
                }
                Ok(Err(e)) => return Err(Error::Receive(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

/// All multicast frames on `ifindex` reach this socket (a membership the kernel drops with
/// the socket, so a dead had leaves the interface as it was).
fn all_multicast(socket: &Socket, ifindex: u32) -> io::Result<()> {
    // SAFETY: packet_mreq is plain old data; all-zero is a valid value.
    let mut mr: libc::packet_mreq = unsafe { std::mem::zeroed() };
    mr.mr_ifindex = ifindex as i32;
    mr.mr_type = libc::PACKET_MR_ALLMULTI as u16;
    // SAFETY: a valid socket; the pointer and length describe `mr`, alive across the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            (&raw const mr).cast(),
            std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOA: &str = "2001:db8:1::100";
    const NODE: &str = "2001:db8:1::50";

    /// An NS as scapy builds it: `src` → `dst` for `target`, with a Source Link-Layer
    /// Address option when `slla`.
    fn ns(src: &str, dst: Ipv6Addr, target: &str, slla: bool, hop_limit: u8) -> Vec<u8> {
        let (src, target): (Ipv6Addr, Ipv6Addr) = (src.parse().unwrap(), target.parse().unwrap());
        let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&target.octets());
        if slla {
            icmp.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 0x50]);
        }
        let c = proto::checksum::v6(&src, &dst, 58, &icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
        p.extend_from_slice(&[58, hop_limit]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&icmp);
        p
    }

    #[test]
    fn valid_solicitations() {
        let hoa: Ipv6Addr = HOA.parse().unwrap();
        let sn = solicited_node(hoa);
        assert_eq!(sn, "ff02::1:ff00:100".parse::<Ipv6Addr>().unwrap());
        let s = parse_solicitation(&ns(NODE, sn, HOA, true, 255)).unwrap();
        assert_eq!(s.target, hoa);
        assert_eq!(s.source_mac, Some([2, 0, 0, 0, 0, 0x50]));
        assert_eq!(s.answer_to(), NODE.parse::<Ipv6Addr>().unwrap());
        // Unicast to the home address (a neighbour confirming its cache).
        let s = parse_solicitation(&ns(NODE, hoa, HOA, false, 255)).unwrap();
        assert_eq!(s.dst, hoa);
        // DAD: from ::, to the solicited-node group; answered to all nodes.
        let s = parse_solicitation(&ns("::", sn, HOA, false, 255)).unwrap();
        assert_eq!(s.answer_to(), "ff02::1".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn invalid_solicitations_are_dropped() {
        let hoa: Ipv6Addr = HOA.parse().unwrap();
        let sn = solicited_node(hoa);
        // Forwarded (hop limit below 255).
        assert!(parse_solicitation(&ns(NODE, sn, HOA, true, 254)).is_none());
        // A multicast target.
        assert!(parse_solicitation(&ns(NODE, sn, "ff02::1", true, 255)).is_none());
        // DAD to another group, or with a source link-layer address.
        assert!(parse_solicitation(&ns("::", hoa, HOA, false, 255)).is_none());
        assert!(parse_solicitation(&ns("::", sn, HOA, true, 255)).is_none());
        // A bad checksum, a non-zero code, a runt.
        let mut p = ns(NODE, sn, HOA, true, 255);
        p[50] ^= 1;
        assert!(parse_solicitation(&p).is_none());
        let mut p = ns(NODE, sn, HOA, true, 255);
        p[41] = 1;
        assert!(parse_solicitation(&p).is_none());
        let p = ns(NODE, sn, HOA, true, 255);
        for n in 0..p.len() - 8 {
            assert!(parse_solicitation(&p[..n]).is_none(), "{n}");
        }
    }
}
