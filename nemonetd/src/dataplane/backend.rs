//! The device side of the user-space data plane: where the packets to tunnel come from and
//! where decapsulated packets go. Today's one implementation is the TUN device
//! ([`crate::tun::Tun`]); the kernel data plane ([`crate::kernel`]: SRv6 or BPF
//! encapsulation) replaces the packet loops altogether rather than implementing this
//! trait, and sits beside it behind the same [`crate::dataplane::peers`] table.
//!
//! The trait is exactly what the loops of [`crate::dataplane`] use: blocking reads and
//! writes of whole frames, whether frames carry a virtio-net header (offloads: TCP
//! super-packets and partial checksums, [`crate::gso`]), and a name for logs. The device's
//! MTU and addresses are kernel state the daemon sets through rtnetlink on that name, like
//! the routes pointing at it (docs/notes.md §2), so they are not here.

use std::io;

use crate::tun::Tun;

/// A device the packet loops read packets to tunnel from and write decapsulated packets
/// to. Shared by every loop thread (`&self`): one read or write is one whole frame.
pub trait Backend: Send + Sync + 'static {
    /// The device's name (routes point at it; logs say it).
    fn name(&self) -> &str;

    /// Whether every frame, both ways, starts with a virtio-net header
    /// ([`crate::gso::VNET_HDR_LEN`] octets): the kernel may then hand over TCP
    /// super-packets and partial checksums, and accepts coalesced ones
    /// ([`crate::gso`]). Fixed for the device's life.
    fn offload(&self) -> bool;

    /// How many queues frames to tunnel come from: one reader thread each. The device
    /// keeps each flow on one queue.
    fn queues(&self) -> usize {
        1
    }

    /// Reads one frame to tunnel from queue `queue` (blocking); its length.
    fn recv(&self, queue: usize, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes one decapsulated frame.
    fn send(&self, frame: &[u8]) -> io::Result<usize>;
}

impl Backend for Tun {
    fn name(&self) -> &str {
        Tun::name(self)
    }

    fn offload(&self) -> bool {
        self.vnet_hdr()
    }

    fn queues(&self) -> usize {
        Tun::queues(self)
    }

    fn recv(&self, queue: usize, buf: &mut [u8]) -> io::Result<usize> {
        Tun::recv(self, queue, buf)
    }

    fn send(&self, frame: &[u8]) -> io::Result<usize> {
        Tun::send(self, frame)
    }
}
