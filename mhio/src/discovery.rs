//! The discovery sockets of RFC 6275 §10.5 and §11.4.1. The home agent's takes Home Agent
//! Address Discovery Requests to the Home-Agents anycast addresses and the home link's
//! Router Advertisements that fill the home agents list; the mobile router's takes the
//! Replies.
//!
//! A raw ICMPv6 socket with an `ICMP6_FILTER` passing only those types (RFC 3542
//! §3.2), so the kernel does not queue the host's other ICMPv6 on it; `IPV6_RECVPKTINFO`
//! and `IPV6_RECVHOPLIMIT` give the destination (which anycast address), the arrival
//! interface and the hop limit (an RA must arrive with 255, RFC 4861 §6.1.2). The anycast
//! addresses are joined with `IPV6_JOIN_ANYCAST`: the kernel then accepts packets to them
//! and answers Neighbour Solicitations for them as anycast (no Override flag, RFC 4861
//! §7.2.7), so several home agents on one link can hold the same address.

use std::io::IoSliceMut;
use std::net::Ipv6Addr;
use std::os::fd::AsRawFd;

use nix::libc;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tracing::info;

use crate::{Error, Result};

/// `ICMP6_FILTER` (RFC 3542 §3.2; `<netinet/icmp6.h>`).
const ICMP6_FILTER: libc::c_int = 1;
/// ICMPv6 Router Advertisement.
const ROUTER_ADVERTISEMENT: u8 = 134;
/// ICMPv6 Home Agent Address Discovery Request.
const HAAD_REQUEST: u8 = 144;
/// ICMPv6 Home Agent Address Discovery Reply.
const HAAD_REPLY: u8 = 145;

/// Sets `sock`'s ICMPv6 type filter so that only `pass` types are queued on it (RFC 3542
/// §3.2: a set bit blocks the type on Linux). An empty `pass` blocks everything, for a
/// socket that only sends.
///
/// # Errors
/// The `setsockopt` error.
pub fn set_icmp6_filter(sock: &Socket, pass: &[u8]) -> std::io::Result<()> {
    let mut filter = [u32::MAX; 8];
    for t in pass {
        filter[usize::from(t >> 5)] &= !(1u32 << (t & 31));
    }
    // SAFETY: a valid socket fd and a 32-octet buffer that lives through the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            filter.as_ptr().cast(),
            std::mem::size_of_val(&filter) as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One message read from the discovery socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryPacket {
    /// IPv6 source.
    pub src: Ipv6Addr,
    /// IPv6 destination (an anycast address for a request, a multicast or our own
    /// address for an RA).
    pub dst: Ipv6Addr,
    /// Arrival interface.
    pub ifindex: u32,
    /// Hop limit on arrival.
    pub hop_limit: u8,
    /// Octets of the ICMPv6 message at the start of the caller's buffer.
    pub len: usize,
}

/// The discovery socket.
#[derive(Debug)]
pub struct DiscoverySocket {
    socket: AsyncFd<Socket>,
}

impl DiscoverySocket {
    /// Opens the socket and joins each of `anycast` on `home_ifindex` (needs CAP_NET_RAW;
    /// the join needs forwarding on the interface or the prefix on it, which a home agent
    /// has).
    ///
    /// # Errors
    /// [`Error::Socket`] naming the step and, for a join, the address.
    pub fn new(home_ifindex: u32, anycast: &[Ipv6Addr]) -> Result<Self> {
        Self::open(&[ROUTER_ADVERTISEMENT, HAAD_REQUEST], home_ifindex, anycast)
    }

    /// The mobile router's socket: Home Agent Address Discovery Replies (to its care-of
    /// addresses).
    ///
    /// # Errors
    /// [`Error::Socket`] naming the step.
    pub fn replies() -> Result<Self> {
        Self::open(&[HAAD_REPLY], 0, &[])
    }

    fn open(types: &[u8], home_ifindex: u32, anycast: &[Ipv6Addr]) -> Result<Self> {
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
            .map_err(|e| Error::socket("opening a raw ICMPv6 socket (needs CAP_NET_RAW)", e))?;
        let setup = |what: &str, r: std::io::Result<()>| {
            r.map_err(|e| Error::socket(format!("{what} on the discovery socket"), e))
        };
        setup("ICMP6_FILTER", set_icmp6_filter(&socket, types))?;
        setup(
            "IPV6_RECVPKTINFO",
            nix::sys::socket::setsockopt(
                &socket,
                nix::sys::socket::sockopt::Ipv6RecvPacketInfo,
                &true,
            )
            .map_err(std::io::Error::from),
        )?;
        setup(
            "IPV6_RECVHOPLIMIT",
            nix::sys::socket::setsockopt(
                &socket,
                nix::sys::socket::sockopt::Ipv6RecvHopLimit,
                &true,
            )
            .map_err(std::io::Error::from),
        )?;
        setup("O_NONBLOCK", socket.set_nonblocking(true))?;
        for addr in anycast {
            join_anycast(&socket, *addr, home_ifindex).map_err(|e| {
                Error::socket(
                    format!("joining the anycast address {addr} (IPV6_JOIN_ANYCAST)"),
                    e,
                )
            })?;
            info!(%addr, ifindex = home_ifindex, "home agents anycast address joined");
        }
        Ok(DiscoverySocket {
            socket: crate::register(socket, "discovery")?,
        })
    }

    /// The next message of the socket's types, its octets at the start of `buf`.
    ///
    /// # Errors
    /// [`Error::Socket`] when the socket fails.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<DiscoveryPacket> {
        loop {
            let mut guard = self
                .socket
                .readable()
                .await
                .map_err(|e| Error::socket("waiting on the discovery socket", e))?;
            let r = guard.try_io(|s| recv_one(s.get_ref(), buf));
            match r {
                Ok(Ok(Some(p))) => return Ok(p),
                // Without its ancillary data the message cannot be judged: skipped.
                Ok(Ok(None)) => {}
                Ok(Err(e)) => return Err(Error::socket("receiving on the discovery socket", e)),
                Err(_would_block) => {}
            }
        }
    }
}

fn recv_one(socket: &Socket, buf: &mut [u8]) -> std::io::Result<Option<DiscoveryPacket>> {
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrIn6>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(std::io::Error::from)?;
    let Some(src) = msg.address.map(|a| a.ip()) else {
        return Ok(None);
    };
    let mut dst = None;
    let mut hop_limit = None;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        match c {
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                dst = Some((Ipv6Addr::from(info.ipi6_addr.s6_addr), info.ipi6_ifindex));
            }
            ControlMessageOwned::Ipv6HopLimit(h) => hop_limit = u8::try_from(h).ok(),
            _ => {}
        }
    }
    let (Some((dst, ifindex)), Some(hop_limit)) = (dst, hop_limit) else {
        return Ok(None);
    };
    Ok(Some(DiscoveryPacket {
        src,
        dst,
        ifindex,
        hop_limit,
        len: msg.bytes,
    }))
}

fn join_anycast(socket: &Socket, addr: Ipv6Addr, ifindex: u32) -> std::io::Result<()> {
    let mreq = libc::ipv6_mreq {
        ipv6mr_multiaddr: libc::in6_addr {
            s6_addr: addr.octets(),
        },
        ipv6mr_interface: ifindex,
    };
    // SAFETY: a valid socket fd and an ipv6_mreq that lives through the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_JOIN_ANYCAST,
            std::ptr::from_ref(&mreq).cast(),
            std::mem::size_of_val(&mreq) as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn filter_bits_block_all_but_the_passed_types() {
        // The bit arithmetic of RFC 3542's ICMP6_FILTER_SETPASS, checked for 134 and 144:
        // word 4, bits 6 and 16.
        let mut filter = [u32::MAX; 8];
        for t in [134u8, 144] {
            filter[usize::from(t >> 5)] &= !(1u32 << (t & 31));
        }
        assert_eq!(filter[4], !((1 << 6) | (1 << 16)));
        assert!(
            filter
                .iter()
                .enumerate()
                .all(|(i, w)| i == 4 || *w == u32::MAX)
        );
    }
}
