//! Sending DHCP messages with source address 0.0.0.0 (RFC 2131 §4.1) before the lease's
//! address is configured.
//!
//! A UDP socket cannot do it: with `SO_BINDTODEVICE` on a link without any IPv4 address
//! the kernel still picks a source address, from another interface (the lab saw a
//! DISCOVER leave with the home link's address; the server may answer to that address or
//! drop the message). So the IPv4 and UDP headers are built here and the datagram goes out
//! on an `AF_PACKET`/`SOCK_DGRAM` socket (`ETH_P_IP`, to the Ethernet broadcast address,
//! on the link's ifindex), which puts on the wire exactly what we wrote. The socket has
//! protocol 0 so it never receives anything; replies still arrive on the UDP socket.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::libc;
use proto::IPPROTO_UDP;
use proto::dhcp::{CLIENT_PORT, SERVER_PORT};
use proto::ext::{IPV4_HEADER_LEN, Ipv4Header, Ipv4Repr, UDP_HEADER_LEN, UdpHeader, UdpRepr};

const ETH_P_IP: u16 = 0x0800;
/// RFC 2131 §4.1 leaves it open; 64 like Linux's default.
const TTL: u8 = 64;
/// DSCP of the IPv4 header: CS0 with the old "low delay" TOS bit (0x10), as ISC dhclient
/// and udhcpc send.
const DSCP: u8 = 0x10 >> 2;

/// `src:68 → dst:67` as an IPv4 datagram: header (no options, DF clear, checksummed), UDP
/// header (checksummed) and `payload`. The layouts are proto's.
///
/// # Errors
/// [`proto::Error::BadLength`] for a payload too long for one IPv4 datagram.
pub fn datagram(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    payload: &[u8],
) -> Result<Vec<u8>, proto::Error> {
    let payload_len = u16::try_from(payload.len()).map_err(|_| proto::Error::BadLength)?;
    let udp = UdpRepr {
        src_port: CLIENT_PORT,
        dst_port: SERVER_PORT,
        payload_len,
    };
    let udp_len =
        u16::try_from(UDP_HEADER_LEN + payload.len()).map_err(|_| proto::Error::BadLength)?;
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IPPROTO_UDP,
        payload_len: udp_len,
        ttl: TTL,
        dscp: DSCP,
        ecn: 0,
        ident,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    };
    let mut p = vec![0u8; IPV4_HEADER_LEN + usize::from(udp_len)];
    let (header, rest) = p.split_at_mut(IPV4_HEADER_LEN);
    ip.emit(&mut Ipv4Header::new_unchecked(header))?;
    rest[UDP_HEADER_LEN..].copy_from_slice(payload);
    let mut u = UdpHeader::new_unchecked(rest);
    udp.emit(&mut u)?;
    u.fill_checksum_v4(&src, &dst);
    Ok(p)
}

/// An `AF_PACKET`/`SOCK_DGRAM` socket that sends IPv4 datagrams to the Ethernet broadcast
/// address of one link.
#[derive(Debug)]
pub struct BroadcastSender {
    fd: OwnedFd,
    ifindex: u32,
    ident: u16,
}

impl BroadcastSender {
    /// Needs `CAP_NET_RAW` (babymdd already has it for its other sockets).
    pub fn new(ifindex: u32) -> io::Result<Self> {
        // SAFETY: plain socket(2); protocol 0: the socket receives nothing.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(BroadcastSender {
            fd,
            ifindex,
            ident: (std::process::id() as u16) ^ (ifindex as u16).rotate_left(8),
        })
    }

    /// Sends `payload` from 0.0.0.0:68 to 255.255.255.255:67, link-layer broadcast.
    /// Non-blocking: a full device queue is an error (the retransmission covers it).
    pub fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        self.ident = self.ident.wrapping_add(1);
        let p = datagram(
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            self.ident,
            payload,
        )
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = ETH_P_IP.to_be();
        sa.sll_ifindex = self.ifindex as i32;
        sa.sll_halen = 6;
        sa.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        // SAFETY: a valid fd, a buffer and an address that live through the call, with
        // their true lengths.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                p.as_ptr().cast(),
                p.len(),
                0,
                (&raw const sa).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::checksum;

    #[test]
    fn headers_and_checksums() {
        let payload = [1u8, 2, 3, 4, 5];
        let p = datagram(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, 0x1234, &payload).unwrap();
        assert_eq!(p.len(), 20 + 8 + 5);
        assert_eq!(&p[..2], &[0x45, 0x10], "IHL 5, TOS low delay as before");
        assert_eq!(&p[6..9], &[0, 0, 64], "DF clear, TTL 64");
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 33);
        assert_eq!(u16::from_be_bytes([p[4], p[5]]), 0x1234);
        assert_eq!(p[9], 17);
        assert_eq!(&p[12..16], &[0, 0, 0, 0]);
        assert_eq!(&p[16..20], &[255, 255, 255, 255]);
        // A correct header sums to zero (all ones before the complement).
        assert_eq!(checksum::finish(checksum::sum(0, &p[..20])), 0);
        assert_eq!(u16::from_be_bytes([p[20], p[21]]), 68);
        assert_eq!(u16::from_be_bytes([p[22], p[23]]), 67);
        assert_eq!(u16::from_be_bytes([p[24], p[25]]), 13);
        let acc = checksum::pseudo_header_v4(&Ipv4Addr::UNSPECIFIED, &Ipv4Addr::BROADCAST, 17, 13);
        assert_eq!(checksum::finish(checksum::sum(acc, &p[20..])), 0);
        assert_eq!(&p[28..], &payload);
    }
}
