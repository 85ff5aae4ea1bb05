//! The TUN data plane's socket filters: which tunnel packets the raw sockets read and
//! which the packet socket reads ([`SocketFilters`]).

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::libc;

use super::{
    Asm, BPF_F_NO_PREALLOC, BPF_HDR_START_NET, BPF_MAP_TYPE_HASH, BPF_PROG_TYPE_SOCKET_FILTER,
    ETH_P_IP, ETH_P_IPV6, IPV6_HLEN, MAP_LOOKUP_ELEM, PACKET_HOST, R, SKB_GSO_SIZE, SKB_IFINDEX,
    SKB_LOAD_BYTES_RELATIVE, SKB_PKT_TYPE, SKB_PROTOCOL, Size, ethertype_le, map_create,
    map_delete, map_update, prog_load_as,
};

// setsockopt(SOL_SOCKET) options (asm-generic/socket.h).
const SO_ATTACH_BPF: libc::c_int = 50;
const SO_DETACH_BPF: libc::c_int = 27;

/// What a socket filter returns to keep the whole packet (a length no packet reaches).
const KEEP_ALL: i32 = -1;

const BPF_MAP_TYPE_LRU_HASH: u32 = 9;
const MAP_UPDATE_ELEM: i32 = 2;
const BPF_ANY: i32 = 0;

/// A flow's key in the `fragmented` map: inner source and destination (IPv4 addresses in
/// the first four octets of sixteen, the rest zero), then the TCP ports.
const FLOW_KEY_SIZE: u32 = 16 + 16 + 4;
/// Flows with a fragmented tunnel packet on its way through reassembly: a bounded LRU
/// table (an entry whose reassembly never completed is pushed out by newer ones).
const FRAGMENTED_ENTRIES: u32 = 4096;

/// Far ends the packet socket reads for: as many as bindings, allocated as they come.
const FAR_END_ENTRIES: u32 = 262_144;

// Stack layout of both programs.
/// One octet.
const SCRATCH: i32 = -8;
/// The ten first octets of an IPv4 header (or an inner header's first ten).
const HEADER: i32 = -24;
/// An extension or Fragment header's first four octets.
const EXT: i32 = -32;
/// The flow key.
const KEY: i32 = -72;
/// The value a new `fragmented` entry starts with.
const ONE: i32 = -80;
/// The outer source as a `far_ends` key (IPv4 IPv4-mapped).
const SOURCE: i32 = -96;
/// The inner TCP header's first 13 octets (ports to Data Offset).
const TCP: i32 = -112;

/// Tunnel packets that the receiving card's GRO merged into one (a TCP super-packet
/// behind one outer header, `SKB_GSO_IPXIP6`/`SKB_GSO_IPXIP4`) cannot be read whole
/// from a raw socket: it hands over the bytes without the segment size, and the inner
/// packet cannot be cut back into the sender's segments. A packet socket with the
/// virtio-net header (`PACKET_VNET_HDR`) hands over both.
///
/// A TCP flow's merged packets and the ones GRO left alone (a flush that found one
/// segment) must then be read by the same socket: read by two threads, they overtook each
/// other, and the sender took the reordering for loss (measured: 8,155 retransmissions in
/// 5 s at 4.4 Gbit/s, 6,107 of them reported back as duplicates). So these two socket
/// filters split the traffic by flow, and every tunnel packet is read once:
///
/// * [`SocketFilters::merged`] on the packet socket keeps tunnel packets addressed to
///   this host whose outer header is IPv6 with next header 41 or 4 (directly or after one
///   Hop-by-Hop or Destination Options header: the Tunnel Encapsulation Limit, RFC 2473
///   §4.1.1) or IPv4 with protocol 41 or 4, that are either GSO packets or carry a TCP
///   packet with data (IPv6 with TCP as its next header, or an unfragmented IPv4 one;
///   pure acknowledgements have no data to be overtaken) and are no fragment themselves;
/// * [`SocketFilters::unmerged`] on the raw tunnel sockets keeps everything else that is
///   no GSO packet: other inner packets, outer headers the packet socket leaves, and the
///   TCP packets the kernel reassembled from outer fragments, which the packet socket
///   cannot read whole. A reassembled packet looks like one that came whole, so the packet
///   socket's filter counts each first fragment of a TCP packet per flow in a map as it
///   passes, and the raw sockets' filter takes one TCP packet of that flow per count.
///
/// Both take only what comes from the far ends of bindings whose tunnel packets the raw
/// sockets read ([`SocketFilters::set_far_end`]): what the kernel data plane decapsulates
/// is not copied to the packet socket, nor what strangers send. The raw sockets keep every
/// packet that is no GSO packet from anyone else.
///
/// A socket filter reads `gso_size` from Linux 5.7 on; a kernel that refuses the programs
/// keeps the raw sockets alone, as before.
#[derive(Debug)]
pub struct SocketFilters {
    /// For the raw sockets.
    pub unmerged: OwnedFd,
    /// For the packet socket.
    pub merged: OwnedFd,
    /// The far ends' outer source addresses (IPv4-mapped for IPv4).
    far_ends: OwnedFd,
}

impl SocketFilters {
    /// Loads both programs; the packet socket's leaves out what arrives on the devices
    /// `skip` (ours: what we write into them is received there, and the GRO device's
    /// merged packets are the ones we send), and the raw sockets' keeps it.
    pub fn load(skip: &[u32]) -> io::Result<SocketFilters> {
        let fragmented = map_create(
            BPF_MAP_TYPE_LRU_HASH,
            FLOW_KEY_SIZE,
            8,
            FRAGMENTED_ENTRIES,
            0,
        )?;
        let far_ends = map_create(BPF_MAP_TYPE_HASH, 16, 1, FAR_END_ENTRIES, BPF_F_NO_PREALLOC)?;
        Ok(SocketFilters {
            unmerged: prog_load_as(
                BPF_PROG_TYPE_SOCKET_FILTER,
                "nemo_unmerged",
                &unmerged_program(skip, &far_ends, &fragmented),
            )?,
            merged: prog_load_as(
                BPF_PROG_TYPE_SOCKET_FILTER,
                "nemo_merged",
                &merged_program(skip, &far_ends, &fragmented),
            )?,
            far_ends,
        })
    }

    /// Attaches `prog` to `sock` (`SO_ATTACH_BPF`), replacing any filter it had.
    pub fn attach(sock: &impl AsRawFd, prog: &OwnedFd) -> io::Result<()> {
        crate::dataplane::setsockopt_int(sock, libc::SOL_SOCKET, SO_ATTACH_BPF, prog.as_raw_fd())
    }

    /// Takes a socket's filter off (`SO_DETACH_BPF`); a socket without one is left as is.
    pub fn detach(sock: &impl AsRawFd) {
        let _ = crate::dataplane::setsockopt_int(sock, libc::SOL_SOCKET, SO_DETACH_BPF, 0);
    }

    /// Hands a far end's merged and TCP tunnel packets to the packet socket. A far end is
    /// added before its binding is acknowledged, so before it sends through the tunnel.
    pub fn set_far_end(&self, far_end: Ipv6Addr) -> io::Result<()> {
        map_update(&self.far_ends, &far_end.octets(), &[1])
    }

    /// Leaves a far end's tunnel packets to the raw sockets alone.
    pub fn drop_far_end(&self, far_end: Ipv6Addr) -> io::Result<()> {
        map_delete(&self.far_ends, &far_end.octets())
    }
}

impl Asm {
    /// r0 = bpf_skb_load_bytes_relative(ctx, r2, fp + to, len, network header), going to
    /// `short` when the packet is too short; the offset is in r2 already.
    fn load_net_at(&mut self, to: i32, len: i32, short: &'static str) {
        self.mov(R::R1, R::R6);
        self.stack_ptr(R::R3, to);
        self.mov_imm(R::R4, len);
        self.mov_imm(R::R5, BPF_HDR_START_NET);
        self.call(SKB_LOAD_BYTES_RELATIVE);
        self.jne(R::R0, 0, short);
    }

    /// The ports of the TCP header read at `TCP` into the flow key, and r1 = the TCP
    /// header's length (its Data Offset words).
    fn tcp_header_len(&mut self) {
        self.ldx(Size::W, R::R0, R::Fp, TCP as i16);
        self.stx(Size::W, R::Fp, (KEY + 32) as i16, R::R0);
        self.ldx(Size::B, R::R1, R::Fp, (TCP + 12) as i16);
        self.rsh_imm(R::R1, 4);
        self.lsh_imm(R::R1, 2);
    }

    /// dst = the length of the IPv4 header whose first octet is at fp + `at` (its IHL
    /// words).
    fn ipv4_header_len(&mut self, dst: R, at: i32) {
        self.ldx(Size::B, dst, R::Fp, at as i16);
        self.and_imm(dst, 0xf);
        self.lsh_imm(dst, 2);
    }

    /// [`Asm::load_net_at`] from r9 + `at`.
    fn load_inner(&mut self, at: i32, to: i32, len: i32, short: &'static str) {
        self.mov(R::R2, R::R9);
        self.add_imm(R::R2, at);
        self.load_net_at(to, len, short);
    }

    /// Whether the packet at r9 (from the network header on) is a TCP packet with data:
    /// IPv6 with TCP as its next header, or IPv4 with protocol TCP that is no fragment, and
    /// more than its headers; if so its flow key is written at `KEY` and the program goes
    /// on, else to `other`.
    fn inner_tcp_key(&mut self, other: &'static str) {
        self.load_inner(0, HEADER, 10, other);
        self.ldx(Size::B, R::R0, R::Fp, HEADER as i16);
        self.rsh_imm(R::R0, 4);
        self.jeq(R::R0, 6, "tcp6");
        self.jne(R::R0, 4, other);
        self.ldx(Size::B, R::R0, R::Fp, (HEADER + 9) as i16);
        self.jne(R::R0, 6, other);
        // Flags and fragment offset (big endian): MF or an offset is a fragment.
        self.ldx(Size::H, R::R0, R::Fp, (HEADER + 6) as i16);
        self.and_imm(R::R0, i32::from(u16::from_be(0x3fff)));
        self.jne(R::R0, 0, other);
        for at in (0..32).step_by(8) {
            self.st_imm(Size::Dw, R::Fp, (KEY + at) as i16, 0);
        }
        self.st_imm(Size::W, R::Fp, (KEY + 32) as i16, 0);
        self.load_inner(12, KEY, 4, other);
        self.load_inner(16, KEY + 16, 4, other);
        // The TCP header after the IPv4 header.
        self.ipv4_header_len(R::R2, HEADER);
        self.add(R::R2, R::R9);
        self.load_net_at(TCP, 13, other);
        // r1 = the IP and TCP headers' length, r0 = the IPv4 Total Length.
        self.tcp_header_len();
        self.ipv4_header_len(R::R2, HEADER);
        self.add(R::R1, R::R2);
        self.ldx(Size::H, R::R0, R::Fp, (HEADER + 2) as i16);
        self.ja("length");
        self.label("tcp6");
        self.ldx(Size::B, R::R0, R::Fp, (HEADER + 6) as i16);
        self.jne(R::R0, 6, other);
        self.load_inner(8, KEY, 32, other);
        self.load_inner(IPV6_HLEN, TCP, 13, other);
        // r1 = the TCP header's length, r0 = the IPv6 Payload Length.
        self.tcp_header_len();
        self.ldx(Size::H, R::R0, R::Fp, (HEADER + 4) as i16);
        self.label("length");
        self.be16(R::R0);
        // Without payload (a pure acknowledgement; SYN, FIN, RST alone): no data of the
        // flow to overtake, left to the raw sockets with the other packets.
        self.jle(R::R0, R::R1, other);
    }

    /// r9 = where the inner packet starts behind an IPv6 outer header whose next header
    /// is in r0, following one Hop-by-Hop or Destination Options header; goes to `tunnel`
    /// (next header 41 or 4, r9 set), `fragment` (a Fragment header at r9) or `other`.
    fn outer_ipv6(&mut self, tunnel: &'static str, fragment: &'static str, other: &'static str) {
        self.mov_imm(R::R9, IPV6_HLEN);
        self.jeq(R::R0, 41, tunnel);
        self.jeq(R::R0, 4, tunnel);
        self.jeq(R::R0, 44, fragment);
        self.jeq(R::R0, 0, "option");
        self.jne(R::R0, 60, other);
        self.label("option");
        self.mov_imm(R::R2, IPV6_HLEN);
        self.load_net_at(EXT, 2, other);
        // Its length: (Hdr Ext Len + 1) × 8 octets (RFC 8200 §4.3).
        self.ldx(Size::B, R::R9, R::Fp, (EXT + 1) as i16);
        self.add_imm(R::R9, 1);
        self.lsh_imm(R::R9, 3);
        self.add_imm(R::R9, IPV6_HLEN);
        self.ldx(Size::B, R::R0, R::Fp, EXT as i16);
        self.jeq(R::R0, 41, tunnel);
        self.jeq(R::R0, 4, tunnel);
        self.jeq(R::R0, 44, fragment);
        self.ja(other);
    }

    /// r0 = the `far_ends` entry of the outer source (at the network header: IPv6 if r7
    /// says so, else IPv4), or 0.
    fn far_end(&mut self, far_ends: &OwnedFd, other: &'static str) {
        self.jne(R::R7, ethertype_le(ETH_P_IPV6), "source4");
        self.mov_imm(R::R2, 8);
        self.load_net_at(SOURCE, 16, other);
        self.ja("source");
        self.label("source4");
        // ::ffff:a.b.c.d
        self.st_imm(Size::Dw, R::Fp, SOURCE as i16, 0);
        self.st_imm(Size::W, R::Fp, (SOURCE + 8) as i16, -65536);
        self.mov_imm(R::R2, 12);
        self.load_net_at(SOURCE + 12, 4, other);
        self.label("source");
        self.ld_map(R::R1, far_ends);
        self.stack_ptr(R::R2, SOURCE);
        self.call(MAP_LOOKUP_ELEM);
    }

    /// The checks both filters share: `skip`'s devices, anything not addressed to this
    /// host and anything but IPv6 and IPv4 go to `other`; r7 = the packet's protocol, and
    /// an IPv4 packet goes to `ipv4`, an IPv6 one on with its next header in r0.
    fn ours(&mut self, skip: &[u32], other: &'static str) {
        self.ldx(Size::W, R::R0, R::R6, SKB_IFINDEX);
        for &ifindex in skip {
            self.jeq(R::R0, ifindex as i32, other);
        }
        self.ldx(Size::W, R::R0, R::R6, SKB_PKT_TYPE);
        self.jne(R::R0, PACKET_HOST, other);
        self.ldx(Size::W, R::R7, R::R6, SKB_PROTOCOL);
        self.jeq(R::R7, ethertype_le(ETH_P_IP), "ipv4");
        self.jne(R::R7, ethertype_le(ETH_P_IPV6), other);
        self.load_net_or(6, SCRATCH, 1, other);
        self.ldx(Size::B, R::R0, R::Fp, SCRATCH as i16);
    }
}

/// The raw tunnel sockets' filter: drops GSO packets, and the TCP tunnel packets of
/// `far_ends` (the packet socket's filter takes them), except one per fragmented packet
/// of that flow counted in `fragmented`. Stack: see the constants above.
fn unmerged_program(skip: &[u32], far_ends: &OwnedFd, fragmented: &OwnedFd) -> Vec<u64> {
    let mut a = Asm::default();
    a.mov(R::R6, R::R1);
    a.ldx(Size::W, R::R0, R::R6, SKB_GSO_SIZE);
    a.jne(R::R0, 0, "drop");
    a.ours(skip, "keep");
    // A Fragment header here would be one the kernel did not reassemble: not ours.
    a.outer_ipv6("inner", "keep", "keep");
    a.label("ipv4");
    a.load_net_or(0, SCRATCH, 1, "keep");
    a.ipv4_header_len(R::R9, SCRATCH);
    a.label("inner");
    a.inner_tcp_key("keep");
    a.far_end(far_ends, "keep");
    a.jeq(R::R0, 0, "keep");
    a.ld_map(R::R1, fragmented);
    a.stack_ptr(R::R2, KEY);
    a.call(MAP_LOOKUP_ELEM);
    a.jeq(R::R0, 0, "drop");
    a.ldx(Size::Dw, R::R1, R::R0, 0);
    a.jeq(R::R1, 0, "drop");
    a.mov_imm(R::R1, -1);
    a.atomic_add(R::R0, 0, R::R1);
    a.label("keep");
    a.exit_with(KEEP_ALL);
    a.label("drop");
    a.exit_with(0);
    a.finish()
}

/// The packet socket's filter (it sees the link-layer header, if the device has one, in
/// front of the IP header): keeps GSO tunnel packets and unfragmented TCP ones addressed
/// to this host from `far_ends`, and counts each first fragment of a TCP tunnel packet
/// from there in `fragmented`. r8 = the GSO segment size, then what to do (below).
fn merged_program(skip: &[u32], far_ends: &OwnedFd, fragmented: &OwnedFd) -> Vec<u64> {
    let mut a = Asm::default();
    a.mov(R::R6, R::R1);
    a.ldx(Size::W, R::R8, R::R6, SKB_GSO_SIZE);
    // Our own devices: what we write into them is received there, never a tunnel packet
    // for us (the GRO device's merged packets are the ones we send).
    a.ours(skip, "drop");
    a.outer_ipv6("tunnel", "fragment6", "drop");
    a.label("fragment6");
    a.jne(R::R8, 0, "drop");
    a.mov(R::R2, R::R9);
    a.load_net_at(EXT, 4, "drop");
    a.ldx(Size::B, R::R0, R::Fp, EXT as i16);
    a.jeq(R::R0, 41, "first6");
    a.jne(R::R0, 4, "drop");
    a.label("first6");
    // The offset (13 bits, big endian, then three flag bits): only the first fragment
    // carries the inner header.
    a.ldx(Size::H, R::R0, R::Fp, (EXT + 2) as i16);
    a.and_imm(R::R0, i32::from(u16::from_be(0xfff8)));
    a.jne(R::R0, 0, "drop");
    a.add_imm(R::R9, 8);
    a.mov_imm(R::R8, 1);
    a.ja("inner");
    a.label("tunnel");
    a.jne(R::R8, 0, "gso");
    a.ja("inner");
    a.label("ipv4");
    a.load_net_or(0, HEADER, 10, "drop");
    a.ldx(Size::B, R::R0, R::Fp, (HEADER + 9) as i16);
    a.jeq(R::R0, 41, "tunnel4");
    a.jne(R::R0, 4, "drop");
    a.label("tunnel4");
    a.jne(R::R8, 0, "gso");
    a.ipv4_header_len(R::R9, HEADER);
    a.ldx(Size::H, R::R0, R::Fp, (HEADER + 6) as i16);
    a.and_imm(R::R0, i32::from(u16::from_be(0x3fff)));
    a.jeq(R::R0, 0, "inner");
    // A fragment: the first (MF, offset 0) is counted, the others left to the kernel.
    a.and_imm(R::R0, i32::from(u16::from_be(0x1fff)));
    a.jne(R::R0, 0, "drop");
    a.mov_imm(R::R8, 1);
    a.label("inner");
    a.inner_tcp_key("drop");
    a.ja("candidate");
    a.label("gso");
    a.mov_imm(R::R8, 2);
    // Kept (r8 0: unfragmented TCP, 2: GSO) or counted (1: a first fragment) only from
    // our far ends, looked up last: most packets a node receives are no tunnel packets.
    a.label("candidate");
    a.far_end(far_ends, "drop");
    a.jeq(R::R0, 0, "drop");
    a.jne(R::R8, 1, "keep");
    a.ld_map(R::R1, fragmented);
    a.stack_ptr(R::R2, KEY);
    a.call(MAP_LOOKUP_ELEM);
    a.jeq(R::R0, 0, "new");
    a.mov_imm(R::R1, 1);
    a.atomic_add(R::R0, 0, R::R1);
    a.ja("drop");
    a.label("new");
    a.st_imm(Size::Dw, R::Fp, ONE as i16, 1);
    a.ld_map(R::R1, fragmented);
    a.stack_ptr(R::R2, KEY);
    a.stack_ptr(R::R3, ONE);
    a.mov_imm(R::R4, BPF_ANY);
    a.call(MAP_UPDATE_ELEM);
    a.label("drop");
    a.exit_with(0);
    a.label("keep");
    a.exit_with(KEEP_ALL);
    a.finish()
}
