//! Errors of the mobility I/O layer. Every variant names what failed and, where there is
//! one, the usual fix.

use std::io;
use std::net::Ipv6Addr;

/// What went wrong talking to the kernel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening or configuring a socket failed (`what` says which one and why it is needed).
    #[error("{what}: {source}")]
    Socket {
        /// The step, e.g. "opening an IPPROTO_RAW socket (needs CAP_NET_RAW)".
        what: String,
        /// The kernel's answer.
        source: io::Error,
    },
    /// `EPERM`/`EACCES` on send: missing CAP_NET_RAW, or an nftables/ip6tables output rule
    /// dropped the packet.
    #[error(
        "sending to {dst}: permission denied (needs CAP_NET_RAW; or an nftables output rule rejects it): {source}"
    )]
    PermissionDenied {
        /// Destination on the wire.
        dst: Ipv6Addr,
        /// The kernel's answer.
        source: io::Error,
    },
    /// `ENETUNREACH`/`EHOSTUNREACH`/`EADDRNOTAVAIL` on send: no route to the destination (or
    /// no usable source) through the bound interface.
    #[error(
        "sending to {dst}: no route to the destination ({source}); check `ip -6 route get {dst}`"
    )]
    Unreachable {
        /// Destination on the wire.
        dst: Ipv6Addr,
        /// The kernel's answer.
        source: io::Error,
    },
    /// `EMSGSIZE` on send: the packet is larger than the path MTU.
    #[error("sending to {dst}: {len}-octet packet exceeds the link MTU ({source})")]
    TooBig {
        /// Destination on the wire.
        dst: Ipv6Addr,
        /// Packet length.
        len: usize,
        /// The kernel's answer.
        source: io::Error,
    },
    /// Any other send failure.
    #[error("sending to {dst}: {source}")]
    Send {
        /// Destination on the wire.
        dst: Ipv6Addr,
        /// The kernel's answer.
        source: io::Error,
    },
    /// Receiving failed.
    #[error("receiving on the AF_PACKET socket: {0}")]
    Receive(#[source] io::Error),
    /// The packet handed to a sender is not a well-formed IPv6 packet, or could not be built.
    #[error("building or checking the IPv6 packet: {0}")]
    Packet(#[from] proto::Error),
    /// An interface name that does not exist (in this network namespace).
    #[error("interface {name:?} not found: {detail}")]
    NoSuchInterface {
        /// The name given.
        name: String,
        /// What the lookup said.
        detail: String,
    },
    /// Running `nft` failed.
    #[error("nft: {what} failed: {detail}{hint}")]
    Nft {
        /// The step, e.g. "installing table inet nemo-had".
        what: String,
        /// nft's stderr or the spawn error.
        detail: String,
        /// How to fix it, prefixed with "; " (empty when there is no usual fix).
        hint: &'static str,
    },
    /// A sysctl write failed.
    #[error("writing {value} to {path}: {source} (needs root in this network namespace)")]
    Sysctl {
        /// The /proc/sys path.
        path: String,
        /// The value.
        value: String,
        /// The kernel's answer.
        source: io::Error,
    },
    /// An rtnetlink request failed.
    #[error("netlink: {what}: {source}")]
    Netlink {
        /// The request, e.g. "adding proxy neighbour 2001:db8::1 on eth0".
        what: String,
        /// The error rtnetlink returned.
        source: rtnetlink::Error,
    },
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Classifies a send error by errno, naming the destination.
    pub(crate) fn send(dst: Ipv6Addr, len: usize, source: io::Error) -> Self {
        use nix::libc;
        match source.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => Error::PermissionDenied { dst, source },
            Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EADDRNOTAVAIL) => {
                Error::Unreachable { dst, source }
            }
            Some(libc::EMSGSIZE) => Error::TooBig { dst, len, source },
            _ => Error::Send { dst, source },
        }
    }

    pub(crate) fn socket(what: impl Into<String>, source: io::Error) -> Self {
        Error::Socket {
            what: what.into(),
            source,
        }
    }
}
