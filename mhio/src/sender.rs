//! Sending whole IPv6 signalling packets on an `IPPROTO_RAW` socket.
//!
//! The kernel here cannot put a type 2 routing header on a packet (`IPV6_RTHDR` gives
//! `EINVAL`) and checksums the MH over the care-of address when a Home Address option is
//! present (docs/notes.md §1, §4). So the packet is built whole by
//! [`proto::ext::emit_mobility_packet`] and written on `AF_INET6/SOCK_RAW/IPPROTO_RAW`, which on
//! Linux implies `IPV6_HDRINCL`: the kernel routes on the sendto address, fills nothing in
//! and sends the bytes as they are.
//!
//! Plain MH (no HAO, no RH2) goes the same way, so no `IPPROTO_MH` (135) socket is ever
//! opened: such a socket would also receive a second copy of every MH (see
//! [`crate::receiver`]).

use std::net::SocketAddrV6;
use std::os::fd::AsRawFd;

use proto::ext::{
    HAO_HEADER_LEN, IPV6_HEADER_LEN, Ipv6Header, MobilityPacketRepr, RH2_HEADER_LEN,
    emit_mobility_packet,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tracing::trace;

use crate::{Error, Result, if_index, register};

/// `IPPROTO_RAW`: on an IPv6 raw socket this means "I supply the IPv6 header".
const IPPROTO_RAW: i32 = 255;

/// A raw IPv6 socket that sends packets built in user space, header included.
#[derive(Debug)]
pub struct RawSender {
    socket: AsyncFd<Socket>,
    /// Index of the interface bound with `SO_BINDTODEVICE`, also the scope of link-local
    /// destinations.
    ifindex: u32,
}

impl RawSender {
    /// Opens the socket, optionally bound to `device` with `SO_BINDTODEVICE` (packets then
    /// leave by that interface whatever the routing table says for other interfaces).
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::Socket`] (needs CAP_NET_RAW), [`Error::NoSuchInterface`].
    pub fn new(device: Option<&str>) -> Result<Self> {
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(IPPROTO_RAW)))
            .map_err(|e| {
                Error::socket("opening an IPv6 IPPROTO_RAW socket (needs CAP_NET_RAW)", e)
            })?;
        let mut ifindex = 0;
        if let Some(dev) = device {
            ifindex = if_index(dev)?;
            socket
                .bind_device(Some(dev.as_bytes()))
                .map_err(|e| Error::socket(format!("SO_BINDTODEVICE {dev}"), e))?;
        }
        // Nothing is ever read from this socket: an IPPROTO_RAW socket receives nothing
        // (raw(7)), so no receive buffer fills up.
        socket
            .set_nonblocking(true)
            .map_err(|e| Error::socket("O_NONBLOCK on the IPPROTO_RAW socket", e))?;
        let socket = register(socket, "IPPROTO_RAW")?;
        Ok(RawSender { socket, ifindex })
    }

    /// Sends a whole IPv6 packet (header included) to its on-wire destination. Returns the
    /// length sent.
    ///
    /// # Errors
    /// [`Error::Packet`] if `packet` is not an IPv6 packet whose Payload Length matches its
    /// length; the send errors ([`Error::PermissionDenied`], [`Error::Unreachable`],
    /// [`Error::TooBig`], [`Error::Send`]) name the destination.
    pub async fn send_packet(&self, packet: &[u8]) -> Result<usize> {
        self.send_packet_via(packet, 0).await
    }

    /// [`RawSender::send_packet`] through interface `oif` (0: wherever the routing table
    /// says): a mobile router's signalling from a care-of address leaves through that
    /// address's interface (`IPV6_PKTINFO`), not the preferred default's, which may be
    /// another uplink whose access network drops foreign sources (BCP 38).
    ///
    /// # Errors
    /// As [`RawSender::send_packet`].
    pub async fn send_packet_via(&self, packet: &[u8], oif: u32) -> Result<usize> {
        let ip = Ipv6Header::new_checked(packet)?;
        if ip.version() != 6 {
            return Err(proto::Error::Malformed("version").into());
        }
        if ip.total_len() != packet.len() {
            return Err(proto::Error::BadLength.into());
        }
        let dst = ip.dst_addr();
        // Port must be 0 for raw IPv6 sockets. A link-local or multicast destination needs
        // the bound interface as its scope (without one the kernel refuses it).
        let scope = if dst.is_unicast_link_local() || dst.is_multicast() {
            self.ifindex
        } else {
            0
        };
        let addr = SockAddr::from(SocketAddrV6::new(dst, 0, 0, scope));
        loop {
            let mut guard = self
                .socket
                .writable()
                .await
                .map_err(|e| Error::send(dst, packet.len(), e))?;
            let sent = guard.try_io(|s| {
                if oif == 0 {
                    return s.get_ref().send_to(packet, &addr);
                }
                let info = nix::libc::in6_pktinfo {
                    ipi6_addr: nix::libc::in6_addr { s6_addr: [0; 16] },
                    ipi6_ifindex: oif,
                };
                let to = nix::sys::socket::SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, scope));
                nix::sys::socket::sendmsg(
                    s.get_ref().as_raw_fd(),
                    &[std::io::IoSlice::new(packet)],
                    &[nix::sys::socket::ControlMessage::Ipv6PacketInfo(&info)],
                    nix::sys::socket::MsgFlags::empty(),
                    Some(&to),
                )
                .map_err(std::io::Error::from)
            });
            match sent {
                Ok(Ok(n)) => {
                    trace!(%dst, len = n, "raw IPv6 packet sent");
                    return Ok(n);
                }
                Ok(Err(e)) => return Err(Error::send(dst, packet.len(), e)),
                Err(_would_block) => continue,
            }
        }
    }

    /// Builds `IPv6 | [RH2] | [DestOpts(HAO)] | MH` around `mh` with
    /// [`emit_mobility_packet`] (which fills the MH checksum with the HoA, RFC 6275 §6.1.1)
    /// and sends it. Returns the length sent.
    ///
    /// # Errors
    /// As [`RawSender::send_packet`]; [`Error::Packet`] if `mh` is not a whole MH.
    pub async fn send_mobility(&self, repr: &MobilityPacketRepr, mh: &[u8]) -> Result<usize> {
        // Largest possible: IPv6 + RH2 + HAO + the longest MH (256 * 8).
        let mut buf = [0u8; IPV6_HEADER_LEN + RH2_HEADER_LEN + HAO_HEADER_LEN + proto::mh::MAX_LEN];
        let len = emit_mobility_packet(repr, mh, &mut buf)?;
        self.send_packet(&buf[..len]).await
    }
}
