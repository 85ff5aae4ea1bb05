//! Router Solicitations (RFC 4861 §4.1, §6.3.7) on a raw ICMPv6 socket.
//!
//! Sent when an egress link comes up so the access router answers with an RA now rather
//! than at its next periodic one (up to 600 s by default, RFC 4861 §6.2.1): the new CoA
//! is autoconfigured as soon as DAD allows.

use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};

use proto::icmpv6::{Icmpv6Packet, Icmpv6Repr, ND_HOP_LIMIT, RouterSolicitation};
use socket2::{Domain, Protocol, Socket, Type};

/// All-routers link-local multicast (RFC 4291 §2.7.1).
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// The Router Solicitation we send: no Source Link-Layer Address option (it is optional,
/// and the router then answers to all-nodes or resolves us by ND), checksum left zero (the
/// kernel fills it in for ICMPv6 raw sockets, RFC 3542 §3.1).
fn router_solicitation() -> Vec<u8> {
    let repr = Icmpv6Repr::RouterSolicitation(RouterSolicitation::default());
    let mut buf = vec![0u8; repr.buffer_len()];
    // Cannot fail: the buffer has the length asked for, and there are no options.
    let emitted = repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]));
    debug_assert!(emitted.is_ok(), "{emitted:?}");
    buf
}

/// A send-only raw ICMPv6 socket for Router Solicitations.
#[derive(Debug)]
pub struct RsSender {
    sock: Socket,
    message: Vec<u8>,
}

impl RsSender {
    /// Opens the socket (needs CAP_NET_RAW).
    pub fn open() -> io::Result<Self> {
        let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
        // RFC 4861 §6.1.1: routers discard an RS whose hop limit is not 255 (proof that
        // it was not forwarded).
        sock.set_multicast_hops_v6(u32::from(ND_HOP_LIMIT))?;
        sock.set_multicast_loop_v6(false)?;
        sock.set_nonblocking(true)?;
        block_all_icmp6(&sock)?;
        Ok(RsSender {
            sock,
            message: router_solicitation(),
        })
    }

    /// Sends one RS on `ifindex`. Fails with EADDRNOTAVAIL while the link's link-local
    /// address is still tentative (the detector waits for it).
    pub fn send(&self, ifindex: u32) -> io::Result<()> {
        self.sock.set_multicast_if_v6(ifindex)?;
        let to = SocketAddrV6::new(ALL_ROUTERS, 0, 0, ifindex);
        self.sock.send_to(&self.message, &to.into())?;
        Ok(())
    }
}

/// We never read this socket: an ICMP6_FILTER that blocks every type keeps the kernel
/// from queueing every ICMPv6 packet of the host on it (RFC 3542 §3.2).
fn block_all_icmp6(sock: &Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    const ICMP6_FILTER: nix::libc::c_int = 1;
    let filter = [u32::MAX; 8];
    // SAFETY: a valid socket fd and a 32-octet buffer that lives through the call.
    let rc = unsafe {
        nix::libc::setsockopt(
            sock.as_raw_fd(),
            nix::libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            filter.as_ptr().cast(),
            std::mem::size_of_val(&filter) as nix::libc::socklen_t,
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
    #[test]
    fn router_solicitation_octets() {
        // Type 133, code 0, checksum zero for the kernel, 4 reserved octets.
        assert_eq!(super::router_solicitation(), [133, 0, 0, 0, 0, 0, 0, 0]);
    }
}
