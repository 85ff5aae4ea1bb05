//! The redundancy heartbeat's socket (issue 13): UDP on the home link, to and from
//! [`proto::redundancy::GROUP`] port [`proto::redundancy::PORT`].
//!
//! Sent with hop limit 255; the kernel drops any that arrive with less
//! (`IPV6_MINHOPCOUNT`), so only a node on the home link can send one (RFC 5082's check,
//! as ND does). Only link-local sources are taken.

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
        let min: nix::libc::c_int = 255;
        // SAFETY: a valid socket and an int option of the right size.
        let rc = unsafe {
            nix::libc::setsockopt(
                s.as_raw_fd(),
                nix::libc::IPPROTO_IPV6,
                nix::libc::IPV6_MINHOPCOUNT,
                std::ptr::from_ref(&min).cast(),
                std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(Error::socket(
                "IPV6_MINHOPCOUNT 255",
                std::io::Error::last_os_error(),
            ));
        }
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
            let (n, from) = self.socket.recv_from(&mut buf).await?;
            let std::net::SocketAddr::V6(from) = from else {
                continue;
            };
            if !from.ip().is_unicast_link_local() {
                tracing::debug!(from = %from.ip(), "heartbeat from a non-link-local source dropped");
                continue;
            }
            match HeartbeatRepr::parse(&buf[..n]) {
                Ok(hb) if hb.kind == proto::redundancy::HeartbeatType::Advertisement => {
                    return Ok(Heard {
                        epoch: hb.epoch,
                        home_agent: hb.home_agent,
                        name: hb.name.to_owned(),
                        from: *from.ip(),
                    });
                }
                Ok(hb) => {
                    tracing::debug!(
                        kind = u8::from(hb.kind),
                        "heartbeat of an unknown type skipped"
                    )
                }
                Err(e) => {
                    tracing::debug!(error = %e, from = %from.ip(), "malformed heartbeat dropped")
                }
            }
        }
    }
}
