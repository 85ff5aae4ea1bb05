//! The redundancy heartbeat's socket (issue 13): UDP on the home link, to and from
//! [`proto::redundancy::GROUP`] port [`proto::redundancy::PORT`].
//!
//! Sent with hop limit 255; any that arrive with less are dropped (read from each
//! datagram's `IPV6_HOPLIMIT`), so only a node on the home link can send one (RFC 5082's
//! check, as ND does). Only link-local sources are taken.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;

use proto::redundancy::{GROUP, HeartbeatRepr, PORT};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::{Error, Result};

/// A heartbeat heard, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    /// The sender's epoch.
    pub epoch: u64,
    /// The home agent address it serves.
    pub home_agent: Ipv6Addr,
    /// Its member name.
    pub name: String,
    /// Its link-local address.
    pub from: Ipv6Addr,
}

/// The heartbeat socket of one home interface (clones share it: one sends, another
/// waits to receive).
#[derive(Debug, Clone)]
pub struct HeartbeatSocket {
    socket: std::sync::Arc<UdpSocket>,
    ifindex: u32,
}

impl HeartbeatSocket {
    /// Binds `[::]:PORT` on `homeif` (index `ifindex`) and joins the group there.
    ///
    /// # Errors
    /// [`Error::Socket`] naming the failing call.
    pub fn new(homeif: &str, ifindex: u32) -> Result<HeartbeatSocket> {
        let named = |what: &'static str| move |e| Error::socket(what, e);
        let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))
            .map_err(named("heartbeat socket"))?;
        s.set_only_v6(true).map_err(named("IPV6_V6ONLY"))?;
        s.set_reuse_address(true).map_err(named("SO_REUSEADDR"))?;
        s.bind_device(Some(homeif.as_bytes()))
            .map_err(named("SO_BINDTODEVICE"))?;
        s.set_multicast_if_v6(ifindex)
            .map_err(named("IPV6_MULTICAST_IF"))?;
        s.set_multicast_hops_v6(255)
            .map_err(named("IPV6_MULTICAST_HOPS"))?;
        s.set_multicast_loop_v6(false)
            .map_err(named("IPV6_MULTICAST_LOOP"))?;
        // The hop limit of each datagram, checked in `recv` (IPV6_MINHOPCOUNT is enforced
        // for TCP only).
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv6RecvHopLimit, &true)
            .map_err(|e| Error::socket("IPV6_RECVHOPLIMIT", e.into()))?;
        s.bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, PORT, 0, 0).into())
            .map_err(named("binding the heartbeat port"))?;
        s.join_multicast_v6(&GROUP, ifindex)
            .map_err(named("joining the heartbeat group"))?;
        s.set_nonblocking(true).map_err(named("O_NONBLOCK"))?;
        let socket = UdpSocket::from_std(std::net::UdpSocket::from(s))
            .map_err(named("registering the heartbeat socket"))?;
        Ok(HeartbeatSocket {
            socket: std::sync::Arc::new(socket),
            ifindex,
        })
    }

    /// Multicasts `hb`.
    ///
    /// # Errors
    /// The send's.
    pub async fn send(&self, hb: &HeartbeatRepr<'_>) -> std::io::Result<()> {
        let mut buf = [0u8; proto::redundancy::FIXED_LEN + proto::redundancy::MAX_NAME_LEN];
        let n = hb
            .emit(&mut buf)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.socket
            .send_to(&buf[..n], SocketAddrV6::new(GROUP, PORT, 0, self.ifindex))
            .await?;
        Ok(())
    }

    /// The next well-formed heartbeat from a link-local source; others are skipped
    /// (`Err` only when the socket fails).
    ///
    /// # Errors
    /// The receive's.
    pub async fn recv(&self) -> std::io::Result<Heard> {
        let mut buf = [0u8; 512];
        loop {
            let (n, from, hop_limit) = self
                .socket
                .async_io(tokio::io::Interest::READABLE, || {
                    recv_one(&self.socket, &mut buf)
                })
                .await?;
            // RFC 5082's check, as ND's (RFC 4861 §7.1.1): only a neighbour sends 255.
            if hop_limit != Some(255) {
                tracing::debug!(%from, ?hop_limit, "heartbeat not from a neighbour dropped");
                continue;
            }
            if !from.is_unicast_link_local() {
                tracing::debug!(%from, "heartbeat from a non-link-local source dropped");
                continue;
            }
            match HeartbeatRepr::parse(&buf[..n]) {
                Ok(hb) if hb.kind == proto::redundancy::HeartbeatType::Advertisement => {
                    return Ok(Heard {
                        epoch: hb.epoch,
                        home_agent: hb.home_agent,
                        name: hb.name.to_owned(),
                        from,
                    });
                }
                Ok(hb) => {
                    tracing::debug!(
                        kind = u8::from(hb.kind),
                        "heartbeat of an unknown type skipped"
                    )
                }
                Err(e) => tracing::debug!(error = %e, %from, "malformed heartbeat dropped"),
            }
        }
    }
}

/// One datagram: its length, source and hop limit.
fn recv_one(socket: &UdpSocket, buf: &mut [u8]) -> std::io::Result<(usize, Ipv6Addr, Option<u8>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg};
    let mut cmsg = nix::cmsg_space!(nix::libc::c_int);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrIn6>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(std::io::Error::from)?;
    let from = msg.address.map_or(Ipv6Addr::UNSPECIFIED, |a| a.ip());
    let mut hop_limit = None;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::Ipv6HopLimit(h) = c {
            hop_limit = u8::try_from(h).ok();
        }
    }
    Ok((msg.bytes, from, hop_limit))
}
