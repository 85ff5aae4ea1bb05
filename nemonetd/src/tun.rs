//! The TUN device, opened through `/dev/net/tun` with one ioctl.
//!
//! Why not the `tun-rs` crate: we need exactly one flag set (`IFF_TUN | IFF_NO_PI`: the
//! kernel hands us bare IP packets, whose first nibble tells the version, which is all the
//! encapsulation needs) and a blocking fd for a dedicated thread; everything else (MTU,
//! up, addresses) goes through rtnetlink like the rest of our kernel state. Twenty lines
//! of ioctl cost less than a dependency tree, and leave room for IFF_VNET_HDR /
//! TUNSETOFFLOAD and IFF_MULTI_QUEUE later without waiting on a crate's API.
//!
//! The device is not persistent: closing the last fd (our exit, or a crash) removes it,
//! and the kernel drops its routes with it.
//!
//! With several queues (`IFF_MULTI_QUEUE`), the device is opened once per queue; the
//! kernel gives each flow one queue (by its hash), so a reader thread per queue spreads
//! the flows over the cores and keeps each flow's packets in order. Writes go through the
//! first queue's fd: any queue's write is a packet received on the device.

use std::fs::{File, OpenOptions};
use std::io;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

use nix::libc;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags (a `short`), padded to
/// the size of the union (40 octets on 64-bit Linux).
#[repr(C)]
struct IfReqFlags {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// An open TUN device delivering bare IPv4/IPv6 packets.
#[derive(Debug)]
pub struct Tun {
    /// One fd per queue (one without `IFF_MULTI_QUEUE`).
    queues: Vec<File>,
    name: String,
    vnet_hdr: bool,
}

impl Tun {
    /// Creates (or attaches to) the TUN device `name` (at most 15 octets) with `queues`
    /// queues (at least one). With `offload`, every packet is preceded by a virtio-net
    /// header and the kernel may hand over TCP super-packets and partial checksums
    /// ([`crate::gso`]); if the kernel refuses the offloads, the device is reopened without
    /// them, and if it refuses several queues, with one.
    pub fn open(name: &str, offload: bool, queues: usize) -> io::Result<Tun> {
        let queues = queues.max(1);
        if queues > 1 {
            match Self::open_queues(name, offload, queues) {
                Ok(t) => return Ok(t),
                Err(e) => tracing::warn!(error = %e, queues, "TUN queues refused; one queue"),
            }
        }
        Self::open_queues(name, offload, 1)
    }

    fn open_queues(name: &str, offload: bool, queues: usize) -> io::Result<Tun> {
        let multi = queues > 1;
        let mut first = None;
        if offload {
            match Self::open_flags(name, true, multi) {
                Ok(t) => first = Some(t),
                Err(e) => tracing::warn!(error = %e, "TUN offloads refused; plain TUN"),
            }
        }
        let mut tun = match first {
            Some(t) => t,
            None => Self::open_flags(name, false, multi)?,
        };
        // The other queues attach to the device the first one made, with its flags.
        for _ in 1..queues {
            let more = Self::open_flags(&tun.name, tun.vnet_hdr, true)?;
            tun.queues.extend(more.queues);
        }
        Ok(tun)
    }

    fn open_flags(name: &str, vnet_hdr: bool, multi_queue: bool) -> io::Result<Tun> {
        Self::open_with(name, vnet_hdr, multi_queue, false)
    }

    /// A TUN device whose written packets go through NAPI and GRO (`IFF_NAPI`).
    pub fn open_napi(name: &str) -> io::Result<Tun> {
        Self::open_with(name, false, false, true)
    }

    fn open_with(name: &str, vnet_hdr: bool, multi_queue: bool, napi: bool) -> io::Result<Tun> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad interface name {name:?}"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")?;
        let mut req = IfReqFlags {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TUN
                | libc::IFF_NO_PI
                | if vnet_hdr { libc::IFF_VNET_HDR } else { 0 }
                | if multi_queue {
                    libc::IFF_MULTI_QUEUE
                } else {
                    0
                }
                | if napi { IFF_NAPI } else { 0 }) as libc::c_short,
            _pad: [0; 22],
        };
        for (dst, src) in req.name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        // SAFETY: TUNSETIFF reads (and writes back the chosen name into) a `struct ifreq`;
        // `req` is a properly sized and aligned, NUL-terminated ifreq that outlives the call,
        // and the fd is an open /dev/net/tun.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        if vnet_hdr {
            let offloads = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
            // SAFETY: TUNSETOFFLOAD takes its argument by value (an unsigned long of
            // TUN_F_* bits), no memory is passed; the fd is the TUN device just set up.
            let rc = unsafe {
                libc::ioctl(
                    file.as_raw_fd(),
                    libc::TUNSETOFFLOAD,
                    libc::c_ulong::from(offloads),
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let len = req
            .name
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(req.name.len());
        let name = req.name[..len].iter().map(|&c| c as u8 as char).collect();
        Ok(Tun {
            queues: vec![file],
            name,
            vnet_hdr,
        })
    }

    /// The device name the kernel gave.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether packets carry a virtio-net header ([`crate::gso::VNET_HDR_LEN`] octets) in
    /// both directions.
    pub fn vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// How many queues the device has (reader threads it wants).
    pub fn queues(&self) -> usize {
        self.queues.len()
    }

    /// Reads one packet from queue `queue` (blocking).
    pub fn recv(&self, queue: usize, buf: &mut [u8]) -> io::Result<usize> {
        // `Read for &File`: several threads share the device without a lock; each read or
        // write is one whole packet.
        (&self.queues[queue % self.queues.len()]).read(buf)
    }

    /// Writes one packet.
    pub fn send(&self, packet: &[u8]) -> io::Result<usize> {
        (&self.queues[0]).write(packet)
    }
}

/// `IFF_NAPI` (linux/if_tun.h, Linux 4.15).
const IFF_NAPI: libc::c_int = 0x0010;
