//! Receiving Mobility Header packets below the IP layer, on an AF_PACKET socket.
//!
//! Why not a raw `IPPROTO_MH` socket: this kernel has no `IPV6_MIP6`, so a packet with a Home
//! Address option or a type 2 routing header never reaches one; the stack drops it and sends
//! an ICMPv6 Parameter Problem (docs/notes.md §1). AF_PACKET taps the frame in
//! `__netif_receive_skb` before the IPv6 stack and netfilter's prerouting hook, so it sees
//! every MH addressed to this host; the [`crate::NftGuard`] then drops the kernel's copy in
//! prerouting so no ICMP error goes out.
//!
//! One receiver gets both kinds: MH with HAO/RH2 and plain MH (a BU from a mobile router at
//! home, the BA back). No raw 135 socket is opened anywhere in this crate, so nothing is
//! processed twice. Without one, the kernel answers a plain MH to a local address with a
//! Parameter Problem "unrecognized Next Header" (code 1, measured in `tests/netns.rs`), which is why the guard
//! drops every MH to a local address, not only those carrying HAO/RH2.
//!
//! The socket is `SOCK_DGRAM` (link header stripped), bound to `ETH_P_IPV6` on one
//! interface or all, never promiscuous, with the [`crate::bpf`] filter attached; our own
//! transmissions (`PACKET_OUTGOING`) are filtered out. A router also sees MH in transit
//! (frames addressed to its MAC but to another IPv6 destination): the caller checks the
//! destination against its own addresses.

use std::io;
use std::os::fd::AsRawFd;

use nix::libc;
use nix::sys::socket::{LinkAddr, recvfrom};
use proto::ext::{ChecksumSource, ReceivedPacket, Walk, walk};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tracing::{debug, trace};

use crate::{Error, Result, bpf, if_index, register};

/// `ETH_P_IPV6`.
pub(crate) const ETH_P_IPV6: u16 = 0x86dd;
/// Largest IPv6 packet without jumbograms: 40 + 65535.
const MAX_PACKET: usize = 40 + 65535;

/// A frame that passed the filter, before the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Interface it arrived on.
    pub ifindex: u32,
    /// The IPv6 packet (from the IPv6 header on).
    pub bytes: &'a [u8],
}

/// A Mobility Header packet whose chain has been walked and whose checksum verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received<'a> {
    /// Interface it arrived on.
    pub ifindex: u32,
    /// The whole IPv6 packet.
    pub bytes: &'a [u8],
    /// The walk: addresses, HAO / RH2 home address, and the MH as `payload`.
    pub packet: ReceivedPacket<'a>,
    /// Which source made the MH checksum verify (RFC 6275 §6.1.1 wants the HoA).
    pub checksum: ChecksumSource,
}

/// A packet that is not signalling but carries a Home Address option (RFC 6275 §9.3.1),
/// its upper-layer checksum verified (TCP, UDP, ICMPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaoPacket<'a> {
    /// Interface it arrived on.
    pub ifindex: u32,
    /// The whole IPv6 packet.
    pub bytes: &'a [u8],
    /// The walk: `home_address` is set, `payload` is the upper layer.
    pub packet: ReceivedPacket<'a>,
}

/// What [`Receiver::recv_inbound`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// A Mobility Header.
    Mobility(Received<'a>),
    /// Other traffic with a Home Address option.
    HomeAddressOption(HaoPacket<'a>),
    /// ICMPv6 after a type 2 routing header: a home agent's Mobile Prefix Advertisement
    /// or Echo Reply to a mobile node away (RFC 6275 §6.8, §9.3.2); `packet.rh2_home_address`
    /// is set, the checksum verified over the home address.
    RoutedToHome(HaoPacket<'a>),
}

impl<'a> Inbound<'a> {
    /// The Mobility Header packet, if this is one.
    pub fn into_mobility(self) -> Option<Received<'a>> {
        match self {
            Inbound::Mobility(r) => Some(r),
            Inbound::HomeAddressOption(_) | Inbound::RoutedToHome(_) => None,
        }
    }
}

/// What the receiver keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mobility,
    HomeAddressOption,
    RoutedToHome,
}

/// Whether a frame is ours to return, and as what: an MH whose checksum verifies, or
/// another upper layer after a Home Address option whose checksum verifies (over the home
/// address, as the mobile node computed it, RFC 6275 §6.3). Anything else is logged and
/// dropped.
fn classify(ifindex: u32, bytes: &[u8]) -> Option<Kind> {
    match walk(bytes) {
        Ok(Walk::Mobility(p)) => match p.verify_checksum() {
            Ok(_) => Some(Kind::Mobility),
            Err(e) => {
                debug!(ifindex, src = %p.src_addr, error = %e, "MH dropped");
                None
            }
        },
        Ok(Walk::Other(p)) if p.home_address.is_some() => match p.verify_checksum() {
            Ok(_) => Some(Kind::HomeAddressOption),
            // Upper layers without a pseudo-header checksum (ESP, a fragment, ...).
            Err(_) if !matches!(p.upper_layer, 6 | 17 | 58) => Some(Kind::HomeAddressOption),
            Err(e) => {
                debug!(ifindex, src = %p.src_addr, upper = p.upper_layer, error = %e,
                    "packet with a Home Address option dropped");
                None
            }
        },
        Ok(Walk::Other(p)) if p.rh2_home_address.is_some() && p.upper_layer == 58 => {
            match p.verify_checksum() {
                Ok(_) => Some(Kind::RoutedToHome),
                Err(e) => {
                    debug!(ifindex, src = %p.src_addr, error = %e,
                        "ICMPv6 after a type 2 routing header dropped");
                    None
                }
            }
        }
        Ok(Walk::Other(p)) => {
            trace!(ifindex, src = %p.src_addr, upper = p.upper_layer, "not an MH");
            None
        }
        Err(e) => {
            debug!(ifindex, error = %e, "IPv6 packet does not walk; dropped");
            None
        }
    }
}

/// AF_PACKET receiver of Mobility Header packets.
#[derive(Debug)]
pub struct Receiver {
    socket: AsyncFd<Socket>,
    buf: Box<[u8]>,
}

impl Receiver {
    /// Opens the receiver on interface `device`, or on every interface for `None`.
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::Socket`] (needs CAP_NET_RAW), [`Error::NoSuchInterface`].
    pub fn new(device: Option<&str>) -> Result<Self> {
        let ifindex = device.map(if_index).transpose()?.unwrap_or(0);
        // Protocol 0: the socket receives nothing until bound below, so no unfiltered
        // packet can be queued before the filter is attached (packet(7)).
        let socket = Socket::new(Domain::PACKET, Type::DGRAM, Some(Protocol::from(0)))
            .map_err(|e| Error::socket("opening an AF_PACKET socket (needs CAP_NET_RAW)", e))?;
        socket
            .attach_filter(&bpf::filter())
            .map_err(|e| Error::socket("attaching the Mobility Header BPF filter", e))?;
        bind_packet(&socket, ETH_P_IPV6, ifindex).map_err(|e| {
            Error::socket(
                format!("binding the AF_PACKET socket to ETH_P_IPV6 on ifindex {ifindex}"),
                e,
            )
        })?;
        socket
            .set_nonblocking(true)
            .map_err(|e| Error::socket("O_NONBLOCK on the AF_PACKET socket", e))?;
        let socket = register(socket, "AF_PACKET")?;
        debug!(ifindex, "AF_PACKET Mobility Header receiver open");
        Ok(Receiver {
            socket,
            buf: vec![0; MAX_PACKET].into_boxed_slice(),
        })
    }

    /// The next frame that passed the filter, not yet walked.
    ///
    /// # Errors
    /// [`Error::Receive`].
    pub async fn recv_frame(&mut self) -> Result<Frame<'_>> {
        let (ifindex, len) = self.recv_into().await?;
        Ok(Frame {
            ifindex,
            bytes: &self.buf[..len],
        })
    }

    /// The next packet that walks to a Mobility Header with a verifying checksum. Packets
    /// that do not walk (malformed) or whose checksum fails are dropped silently, as RFC 6275
    /// §9.2 says for the checksum, with a debug log; so is other traffic carrying a Home
    /// Address option ([`Receiver::recv_inbound`] returns it).
    ///
    /// # Errors
    /// [`Error::Receive`].
    pub async fn recv(&mut self) -> Result<Received<'_>> {
        let len = loop {
            let (ifindex, len) = self.recv_into().await?;
            if classify(ifindex, &self.buf[..len]) == Some(Kind::Mobility) {
                break (ifindex, len);
            }
        };
        Ok(self
            .signal_at(len)
            .into_mobility()
            .expect("classified as an MH"))
    }

    /// The next packet that walks to a Mobility Header with a verifying checksum, that
    /// carries a Home Address option before another upper layer (RFC 6275 §9.3.1: the
    /// home agent answers it for a live binding, or sends Binding Error 1), or that carries
    /// ICMPv6 after a type 2 routing header (for a mobile node away). Malformed packets and
    /// bad checksums are dropped as by [`Receiver::recv`].
    ///
    /// # Errors
    /// [`Error::Receive`].
    pub async fn recv_inbound(&mut self) -> Result<Inbound<'_>> {
        let len = loop {
            let (ifindex, len) = self.recv_into().await?;
            if classify(ifindex, &self.buf[..len]).is_some() {
                break (ifindex, len);
            }
        };
        Ok(self.signal_at(len))
    }

    /// The packet in the buffer, classified already (walked again to return borrows of the
    /// buffer; the walk is cheap).
    fn signal_at(&self, (ifindex, len): (u32, usize)) -> Inbound<'_> {
        let bytes = &self.buf[..len];
        match walk(bytes) {
            Ok(Walk::Mobility(packet)) => {
                let checksum = packet.verify_checksum().expect("verified by classify");
                Inbound::Mobility(Received {
                    ifindex,
                    bytes,
                    packet,
                    checksum,
                })
            }
            Ok(Walk::Other(packet)) if packet.home_address.is_none() => {
                Inbound::RoutedToHome(HaoPacket {
                    ifindex,
                    bytes,
                    packet,
                })
            }
            Ok(Walk::Other(packet)) => Inbound::HomeAddressOption(HaoPacket {
                ifindex,
                bytes,
                packet,
            }),
            Err(_) => unreachable!("walked by classify"),
        }
    }

    async fn recv_into(&mut self) -> Result<(u32, usize)> {
        loop {
            let mut guard = self.socket.readable().await.map_err(Error::Receive)?;
            let buf = &mut self.buf;
            let res =
                guard.try_io(|s| recvfrom::<LinkAddr>(s.as_raw_fd(), buf).map_err(io::Error::from));
            match res {
                Ok(Ok((len, addr))) => {
                    let (ifindex, pkttype) = addr
                        .map(|a| (a.ifindex() as u32, a.pkttype()))
                        .unwrap_or((0, 0));
                    // The filter already drops these; kept in case it is ever detached.
                    if pkttype == bpf::PACKET_OUTGOING {
                        continue;
                    }
                    return Ok((ifindex, len));
                }
                Ok(Err(e)) => return Err(Error::Receive(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

/// `bind(2)` of a packet socket to an EtherType and interface (0 = all).
pub(crate) fn bind_packet(socket: &Socket, protocol: u16, ifindex: u32) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: the fd is a valid open socket owned by `socket`; the pointer and length
    // describe `sll`, which lives across the call.
    let rc = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&raw const sll).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
