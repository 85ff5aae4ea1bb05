//! Mobility Header I/O on Linux, shared by the signalling daemons (`had`, `mrd`).
//!
//! The kernel here is built without `IPV6_MIP6` (`docs/notes.md` §1), so:
//! * **out**: packets are built whole in user space (`IPv6 | [RH2] | [DestOpts(HAO)] | MH`,
//!   [`proto::ext::emit_mobility_packet`]) and written on an `IPPROTO_RAW` socket
//!   ([`RawSender`]);
//! * **in**: they are read below the IP layer on AF_PACKET with a BPF filter
//!   ([`Receiver`]), and walked with [`proto::ext::walk`];
//! * **guard**: an nftables table the daemon owns drops the kernel's copy of MH addressed to
//!   us in prerouting, so the stack sends no ICMPv6 Parameter Problem ([`NftGuard`]);
//! * **errors**: the ICMPv6 Parameter Problem RFC 6275 §9.2 asks for about a malformed MH,
//!   which the guarded kernel no longer sends ([`parameter_problem`]);
//! * **home link**: proxy neighbour discovery and unsolicited NAs for registered home
//!   addresses ([`ProxyNd`]);
//! * **discovery**: Home Agent Address Discovery Requests on the Home-Agents anycast
//!   addresses and the home link's Router Advertisements ([`DiscoverySocket`]).
//!
//! Start order in a daemon: install the guard, open the receiver, then send; drop the guard
//! last (on SIGTERM/SIGINT too) so the table does not outlive the daemon. A table left by
//! `kill -9` is replaced by the next install.
//!
//! Everything is async on tokio; constructors must run inside a runtime. Sockets are opened
//! in the network namespace of the calling thread.

mod arp;
mod discovery;
mod error;
mod guard;
mod heartbeat;
mod icmp;
mod nd_responder;
mod proxy_nd;
mod receiver;
mod sender;

pub mod bpf;

pub use arp::announce_ipv4;
pub use discovery::{DiscoveryPacket, DiscoverySocket, set_icmp6_filter};
pub use error::{Error, Result};
pub use guard::{GuardScope, NftGuard};
pub use heartbeat::{Heard, HeartbeatSocket};
pub use icmp::{
    CODE_ERRONEOUS_HEADER_FIELD, IPPROTO_ICMPV6, MAX_ERROR_LEN, NEIGHBOUR_ADVERTISEMENT,
    NEIGHBOUR_SOLICITATION, PARAMETER_PROBLEM, advertised_target, dad_neighbour_solicitation,
    parameter_problem, solicited_node,
};
pub use nd_responder::{Solicitation, SolicitationReceiver, parse_solicitation};
pub use proxy_nd::{
    NA_LEN, ProxyNd, announce_own_address, link_holding, neighbour_advertisement, write_sysctl,
};
pub use receiver::{Frame, HaoPacket, Inbound, Received, Receiver};
pub use sender::RawSender;

/// Index of interface `name` in the caller's network namespace.
///
/// # Errors
/// [`Error::NoSuchInterface`].
pub fn if_index(name: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|e| Error::NoSuchInterface {
        name: name.to_owned(),
        detail: e.desc().to_owned(),
    })
}

/// Registers an owned socket with the current tokio reactor.
pub(crate) fn register(
    socket: socket2::Socket,
    what: &str,
) -> Result<tokio::io::unix::AsyncFd<socket2::Socket>> {
    // SAFETY: `socket2::Socket` owns its descriptor, keeps it open until dropped and
    // always returns the same one from `as_raw_fd`; the AsyncFd owns the Socket, and this
    // crate never swaps it out through `get_mut`.
    unsafe { tokio::io::unix::AsyncFd::register(socket) }.map_err(|e| {
        Error::socket(
            format!("registering the {what} socket with tokio"),
            e.into(),
        )
    })
}
