//! Gratuitous ARP (an ARP Announcement, RFC 5227 §3) on the home link: the IPv4 home agent
//! address moved to this interface (issue 13).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use nix::libc;
use proto::arp::{ArpRepr, ETHERTYPE, LEN};
use socket2::{Domain, Socket, Type};

use crate::{Error, Result};

/// Broadcasts the announcement of `ip` at `mac` on interface `ifindex` (a packet socket:
/// the kernel adds the Ethernet header).
///
/// # Errors
/// [`Error::Socket`] naming the failing call.
pub fn announce_ipv4(ifindex: u32, mac: [u8; 6], ip: Ipv4Addr) -> Result<()> {
    let socket = Socket::new(
        Domain::PACKET,
        Type::DGRAM,
        Some(i32::from(ETHERTYPE.to_be()).into()),
    )
    .map_err(|e| Error::socket("opening a packet socket for ARP (needs CAP_NET_RAW)", e))?;
    let mut packet = [0u8; LEN];
    ArpRepr::announcement(mac, ip)
        .emit(&mut packet)
        .map_err(|e| Error::socket("building the ARP announcement", io::Error::other(e)))?;
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ETHERTYPE.to_be();
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    // SAFETY: the fd is a valid open socket owned by `socket`; the pointers and lengths
    // describe `packet` and `sll`, which live across the call.
    let rc = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&raw const sll).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(Error::socket(
            "sending the ARP announcement",
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}
