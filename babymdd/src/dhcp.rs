//! DHCPv4 for IPv4 care-of addresses (DSMIPv6, RFC 5555), inside babymdd.
//!
//! * [`proto::dhcp`]: DHCP messages (their layout is proto's); [`encode`] here.
//! * [`client`]: the per-interface state machine, sans IO, on virtual time in tests.
//! * [`shell`]: UDP sockets bound to each egress link, and the rtnetlink requests that
//!   install the lease (address with the lease lifetime, default route).
//! * [`raw`]: an `AF_PACKET` socket per link for the messages that must leave from
//!   0.0.0.0 (DISCOVER, the SELECTING REQUEST), with IPv4/UDP headers from proto.
//!
//! Why a client of our own rather than driving `udhcpc`/`dhclient`: it starts in the
//! same wake-up as the link-up event (no fork/exec, no hook script), its state is in the
//! log and in one process that the supervisor restarts as a whole, its timers are testable
//! without a network, and it never asks for or writes DNS settings, so the host's
//! resolv.conf cannot be touched (a system client's default hook does write it, also from
//! inside a network namespace).
//!
//! The detector is not told about leases directly: the address appears over rtnetlink like
//! any other and is ranked as usual (IPv6 first).

pub mod client;
pub mod raw;
pub mod shell;

use proto::dhcp::{DhcpPacket, DhcpRepr};

/// The UDP payload of `m`.
///
/// # Errors
/// [`proto::Error::BadLength`] for an option longer than 255 octets (none the client
/// builds).
pub fn encode(m: &DhcpRepr) -> Result<Vec<u8>, proto::Error> {
    let mut b = vec![0u8; m.buffer_len()];
    m.emit(&mut DhcpPacket::new_unchecked(&mut b[..]))?;
    Ok(b)
}
