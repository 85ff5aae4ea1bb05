//! The kernel data plane's BPF encapsulation (issue 12), for kernels without SRv6
//! lightweight tunnels (`CONFIG_IPV6_SEG6_LWTUNNEL`) as well as with them: two small tc
//! programs on the veth pair's far side ([`crate::routes::KernelRoutes::peer`]) put on and
//! take off the RFC 2473 outer IPv6 header, where the SRv6 routes would.
//!
//! * **Encapsulation** (tcx egress of `dev`): what the host routed into `dev` (after the
//!   kernel checked it against the tunnel MTU) is seen here. The program looks the inner
//!   destination up in [`EncapMap`] (a longest-prefix trie: the mobile network prefixes
//!   and home addresses at a home agent, the default route at a mobile router), opens 40
//!   octets of room between the Ethernet and the inner IP header (`bpf_skb_adjust_room`,
//!   which also keeps TCP super-packets valid: they are cut into tunnel packets when they
//!   leave), writes the outer header (next header 41 or 4, our end point, the far end,
//!   the tunnel hop limit), asks the kernel's routing for the outer packet as if it
//!   arrived on `peer` (`bpf_fib_lookup`: the rules `iif PEER from LOCAL` apply) and sends
//!   it straight out of that uplink to the next hop's address (`bpf_redirect`). Without
//!   such a route, or while the next hop's address is not known yet (the kernel learns it
//!   when it forwards one), it goes on to `peer` and is forwarded from there
//!   (`bpf_redirect_neigh` would resolve it, but not from an egress hook: measured, the
//!   packets were lost). A destination without an entry passes unchanged to `peer` and
//!   meets the encapsulation table's fail-closed unreachable route. Outer packets sent
//!   straight out do not cross netfilter's forward and postrouting hooks; the program
//!   counts them itself.
//! * **Decapsulation** (tcx egress of `peer`): the decapsulation rules route a tunnel
//!   packet to one of our end points (after the ingress filter accepted it) out of `peer`
//!   by a plain route; the program strips the outer header, so what reaches `dev` is the
//!   inner packet, received there like one from the TUN device. The same program at the
//!   ingress of each Ethernet uplink ([`Tunnel::uplink_attach`]) does it before the
//!   kernel routes the outer packet, and sends the inner one into `dev`'s receive side;
//!   the route through the pair stays for what it passes on.
//!
//! tcx attachments are links owned by this process: when nemonetd exits or dies, the
//! kernel detaches the programs and frees their maps, so nothing is left behind.
//!
//! The programs are written here as eBPF instructions ([`Asm`]): the machine's only Rust
//! toolchain cannot target BPF (that needs a nightly compiler and bpf-linker), a C
//! compiler for BPF would be one more build dependency, and each program is some forty
//! instructions that the kernel's verifier checks at load.

use std::collections::HashMap;
use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use ipnet::IpNet;
use nix::libc;

mod sockets;
pub use sockets::SocketFilters;

// bpf(2) commands.
const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_LOOKUP_ELEM: u32 = 1;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_MAP_DELETE_ELEM: u32 = 3;
const BPF_PROG_LOAD: u32 = 5;
const BPF_LINK_CREATE: u32 = 28;

const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_LPM_TRIE: u32 = 11;
/// Required of a longest-prefix trie.
const BPF_F_NO_PREALLOC: u32 = 1;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
const BPF_TCX_INGRESS: u32 = 46;
const BPF_TCX_EGRESS: u32 = 47;

// Helpers.
const MAP_LOOKUP_ELEM: i32 = 1;
const SKB_STORE_BYTES: i32 = 9;
const SKB_LOAD_BYTES: i32 = 26;
const SKB_ADJUST_ROOM: i32 = 50;
const SKB_LOAD_BYTES_RELATIVE: i32 = 68;
/// bpf_skb_load_bytes_relative's start: the network header.
const BPF_HDR_START_NET: i32 = 1;

// bpf_skb_adjust_room's mode and flags.
const BPF_ADJ_ROOM_MAC: i32 = 1;
/// Keep the super-packet's segment size: `dev`'s MTU already leaves room for the outer
/// header, and a decapsulated packet should leave in the segments it came in.
const BPF_F_ADJ_ROOM_FIXED_GSO: i32 = 1;
const BPF_F_ADJ_ROOM_ENCAP_L3_IPV6: i32 = 1 << 2;
const BPF_F_ADJ_ROOM_DECAP_L3_IPV4: i32 = 1 << 7;
const BPF_F_ADJ_ROOM_DECAP_L3_IPV6: i32 = 1 << 8;

/// tc verdicts (the same numbers for tcx).
const TC_ACT_UNSPEC: i32 = -1;
const TC_ACT_OK: i32 = 0;
const TC_ACT_SHOT: i32 = 2;

/// An Ethernet type as a little-endian load of its two octets in network order reads it.
const fn ethertype_le(t: u16) -> i32 {
    t.swap_bytes() as i32
}
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_IP: u16 = 0x0800;
const ETH_HLEN: i32 = 14;
const IPV6_HLEN: i32 = 40;

/// The encapsulation map's key: a prefix length in bits, then the family (4 or 6) and the
/// address (an IPv4 address in the first four octets, the rest zero).
const KEY_SIZE: u32 = 4 + 1 + 16;
/// Its value: our end point, the far end, the outer hop limit, padding.
const VALUE_SIZE: u32 = 40;
/// How many destinations the map holds: prefixes and home addresses of a fleet.
pub const ENCAP_ENTRIES: u32 = 262_144;

/// Counters the programs keep (one u64 each in an array map).
const COUNTER_ENCAP_REFUSED: i32 = 0;
const COUNTER_DECAP_REFUSED: i32 = 1;
const COUNTER_SPOOFED_INNER: i32 = 2;
const COUNTER_NO_BINDING: i32 = 3;
const COUNTER_LINK_SCOPE: i32 = 4;
const COUNTER_MALFORMED: i32 = 5;
const COUNTERS: u32 = 6;

/// How many of our own end points the uplink program knows.
const LOCAL_ENTRIES: u32 = 4096;

/// The filter's far ends: key the outer address, value [`FAR_VALUE_SIZE`] octets.
const FAR_VALUE_SIZE: u32 = 40;
/// Its flags (u32): what the far end may send.
const FAR_FLAGS: i16 = 0;
/// Any inner source (a mobile router trusts its home agent's).
const FAR_ANY_SOURCE: u32 = 1;
/// Admitted packets go to the TUN device ([`crate::routes::TUN_RECEIVE_MARK`]).
const FAR_TO_TUN: u32 = 2;
/// Its counters (u64 each): packets and inner octets received and sent.
const FAR_RX_PACKETS: i16 = 8;
const FAR_RX_OCTETS: i16 = 16;
const FAR_TX_PACKETS: i16 = 24;
const FAR_TX_OCTETS: i16 = 32;
/// How many far ends and source prefixes the filter holds.
pub const FILTER_ENTRIES: u32 = 262_144;
/// The sources map's key: a prefix length in bits, the far end, the family, the address.
const SOURCE_KEY_SIZE: u32 = 4 + 16 + 1 + 16;

// bpf_fib_lookup's parameters (struct bpf_fib_lookup, 64 octets) and results.
const FIB_LOOKUP: i32 = 69;
const FIB_PARAMS_SIZE: i32 = 64;
const FIB_FAMILY: i16 = 0;
const FIB_L4_PROTOCOL: i16 = 1;
const FIB_IFINDEX: i16 = 8;
const FIB_SRC: i16 = 16;
const FIB_SMAC: i32 = 52;
const FIB_DMAC: i32 = 58;
const BPF_FIB_LKUP_RET_SUCCESS: i32 = 0;
const AF_INET6: i32 = 10;

// __sk_buff fields.
const SKB_LEN: i16 = 0;
const SKB_PKT_TYPE: i16 = 4;
const SKB_MARK: i16 = 8;
const SKB_PROTOCOL: i16 = 16;
const SKB_IFINDEX: i16 = 40;
const SKB_GSO_SIZE: i16 = 176;
/// `skb->pkt_type` of a frame addressed to this host.
const PACKET_HOST: i32 = 0;
const REDIRECT: i32 = 23;
/// bpf_redirect to the device's receive side.
const BPF_F_INGRESS: i32 = 1;

fn bpf(cmd: u32, attr: &mut [u64]) -> io::Result<i64> {
    // SAFETY: `attr` is a zero-padded bpf_attr of the command's layout, valid for the
    // call; the pointers inside it point at buffers the caller keeps alive.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr.as_mut_ptr(),
            std::mem::size_of_val(attr),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_of(r: i64) -> OwnedFd {
    // SAFETY: the bpf call returned this new descriptor, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

/// Two u32 fields as one u64 of a bpf_attr (little-endian machines only: the programs are
/// for this kernel, and nemonetd runs on x86_64 and aarch64).
fn pair(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
}

fn map_create(kind: u32, key: u32, value: u32, entries: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut attr = [0u64; 8];
    attr[0] = pair(kind, key);
    attr[1] = pair(value, entries);
    attr[2] = pair(flags, 0);
    bpf(BPF_MAP_CREATE, &mut attr).map(fd_of)
}

fn map_update(map: &OwnedFd, key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut attr = [0u64; 4];
    attr[0] = pair(map.as_raw_fd() as u32, 0);
    attr[1] = key.as_ptr() as u64;
    attr[2] = value.as_ptr() as u64;
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

fn map_delete(map: &OwnedFd, key: &[u8]) -> io::Result<()> {
    let mut attr = [0u64; 4];
    attr[0] = pair(map.as_raw_fd() as u32, 0);
    attr[1] = key.as_ptr() as u64;
    match bpf(BPF_MAP_DELETE_ELEM, &mut attr) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        r => r.map(drop),
    }
}

fn map_lookup(map: &OwnedFd, key: &[u8], value: &mut [u8]) -> io::Result<()> {
    let mut attr = [0u64; 4];
    attr[0] = pair(map.as_raw_fd() as u32, 0);
    attr[1] = key.as_ptr() as u64;
    attr[2] = value.as_mut_ptr() as u64;
    bpf(BPF_MAP_LOOKUP_ELEM, &mut attr).map(drop)
}

/// Loads a tc program; the verifier's log is the error when it refuses it.
fn prog_load(name: &str, insns: &[u64]) -> io::Result<OwnedFd> {
    prog_load_as(BPF_PROG_TYPE_SCHED_CLS, name, insns)
}

/// Loads a program of type `kind`.
fn prog_load_as(kind: u32, name: &str, insns: &[u64]) -> io::Result<OwnedFd> {
    // The programs are our own code: BSD like the rest, and GPL too, as the kernel asks
    // of a program that calls bpf_fib_lookup (a GPL-only helper).
    let license = c"Dual BSD/GPL";
    let mut log = vec![0u8; 1 << 16];
    let mut attr = [0u64; 16];
    attr[0] = pair(kind, insns.len() as u32);
    attr[1] = insns.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    // log_level 1, log_size, log_buf: kept for the error.
    attr[3] = pair(1, log.len() as u32);
    attr[4] = log.as_mut_ptr() as u64;
    // prog_name at octet 48.
    let mut n = [0u8; 16];
    for (d, s) in n.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    attr[6] = u64::from_le_bytes(n[..8].try_into().expect("8 octets"));
    attr[7] = u64::from_le_bytes(n[8..].try_into().expect("8 octets"));
    bpf(BPF_PROG_LOAD, &mut attr).map(fd_of).map_err(|e| {
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let text = String::from_utf8_lossy(&log[..end]);
        let tail: Vec<&str> = text.lines().rev().take(6).collect();
        io::Error::new(
            e.kind(),
            format!(
                "{name}: {e}; verifier: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ),
        )
    })
}

/// Attaches a program to a device's tcx hook (Linux 6.6): the returned link detaches it
/// when closed.
fn tcx_attach(prog: &OwnedFd, ifindex: u32, attach_type: u32) -> io::Result<OwnedFd> {
    let mut attr = [0u64; 6];
    attr[0] = pair(prog.as_raw_fd() as u32, ifindex);
    attr[1] = pair(attach_type, 0);
    bpf(BPF_LINK_CREATE, &mut attr).map(fd_of)
}

/// eBPF registers.
#[derive(Clone, Copy)]
#[repr(u8)]
enum R {
    R0 = 0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    Fp,
}

/// Memory access sizes.
#[derive(Clone, Copy)]
enum Size {
    B = 0x10,
    H = 0x08,
    W = 0x00,
    Dw = 0x18,
}

/// A small eBPF assembler: instructions as the kernel takes them (one u64 each, little
/// endian), jumps to named labels resolved at [`Asm::finish`].
#[derive(Default)]
struct Asm {
    insns: Vec<u64>,
    labels: HashMap<&'static str, usize>,
    jumps: Vec<(usize, &'static str)>,
}

impl Asm {
    fn raw(&mut self, code: u8, dst: R, src: R, off: i16, imm: i32) {
        let regs = (dst as u8) | ((src as u8) << 4);
        self.insns.push(
            u64::from(code)
                | (u64::from(regs) << 8)
                | (u64::from(off as u16) << 16)
                | (u64::from(imm as u32) << 32),
        );
    }
    fn mov_imm(&mut self, dst: R, imm: i32) {
        self.raw(0xb7, dst, R::R0, 0, imm);
    }
    fn mov(&mut self, dst: R, src: R) {
        self.raw(0xbf, dst, src, 0, 0);
    }
    fn add_imm(&mut self, dst: R, imm: i32) {
        self.raw(0x07, dst, R::R0, 0, imm);
    }
    fn or_imm(&mut self, dst: R, imm: i32) {
        self.raw(0x47, dst, R::R0, 0, imm);
    }
    fn and_imm(&mut self, dst: R, imm: i32) {
        self.raw(0x57, dst, R::R0, 0, imm);
    }
    fn lsh_imm(&mut self, dst: R, imm: i32) {
        self.raw(0x67, dst, R::R0, 0, imm);
    }
    fn rsh_imm(&mut self, dst: R, imm: i32) {
        self.raw(0x77, dst, R::R0, 0, imm);
    }
    /// dst += src.
    fn add(&mut self, dst: R, src: R) {
        self.raw(0x0f, dst, src, 0, 0);
    }
    /// dst = htons(dst) (the low 16 bits, to big endian).
    fn be16(&mut self, dst: R) {
        self.raw(0xdc, dst, R::R0, 0, 16);
    }
    fn ldx(&mut self, size: Size, dst: R, src: R, off: i16) {
        self.raw(0x61 | size as u8, dst, src, off, 0);
    }
    fn stx(&mut self, size: Size, dst: R, off: i16, src: R) {
        self.raw(0x63 | size as u8, dst, src, off, 0);
    }
    fn st_imm(&mut self, size: Size, dst: R, off: i16, imm: i32) {
        self.raw(0x62 | size as u8, dst, R::R0, off, imm);
    }
    /// `lock *(u64 *)(dst + off) += src`.
    fn atomic_add(&mut self, dst: R, off: i16, src: R) {
        self.raw(0xdb, dst, src, off, 0);
    }
    /// dst = the map with descriptor `fd` (a two-slot load the kernel relocates).
    fn ld_map(&mut self, dst: R, fd: &OwnedFd) {
        self.raw(0x18, dst, R::R1, 0, fd.as_raw_fd());
        self.insns.push(0);
    }
    /// r3 = fp + off (a stack buffer for a helper).
    fn stack_ptr(&mut self, dst: R, off: i32) {
        self.mov(dst, R::Fp);
        self.add_imm(dst, off);
    }
    fn call(&mut self, helper: i32) {
        self.raw(0x85, R::R0, R::R0, 0, helper);
    }
    fn exit_with(&mut self, verdict: i32) {
        self.mov_imm(R::R0, verdict);
        self.raw(0x95, R::R0, R::R0, 0, 0);
    }
    fn jump(&mut self, code: u8, dst: R, imm: i32, to: &'static str) {
        self.jump_with(code, dst, R::R0, imm, to);
    }
    fn jump_with(&mut self, code: u8, dst: R, src: R, imm: i32, to: &'static str) {
        self.jumps.push((self.insns.len(), to));
        self.raw(code, dst, src, 0, imm);
    }
    fn ja(&mut self, to: &'static str) {
        self.jump(0x05, R::R0, 0, to);
    }
    fn jeq(&mut self, dst: R, imm: i32, to: &'static str) {
        self.jump(0x15, dst, imm, to);
    }
    fn jne(&mut self, dst: R, imm: i32, to: &'static str) {
        self.jump(0x55, dst, imm, to);
    }
    /// Goes to `to` if dst <= src (unsigned).
    fn jle(&mut self, dst: R, src: R, to: &'static str) {
        self.jump_with(0xbd, dst, src, 0, to);
    }
    fn label(&mut self, name: &'static str) {
        let fresh = self.labels.insert(name, self.insns.len()).is_none();
        assert!(fresh, "label {name} twice");
    }
    fn finish(mut self) -> Vec<u64> {
        for (at, to) in std::mem::take(&mut self.jumps) {
            let target = self.labels[to];
            let off = (target as i64 - at as i64 - 1) as i16;
            self.insns[at] = (self.insns[at] & !0xffff_0000) | (u64::from(off as u16) << 16);
        }
        self.insns
    }

    /// The shared end of every counted drop: `drop` adds one to the counter whose index
    /// is in r7 (array map `counters`) and drops the packet. Emitted once per program.
    fn counted_drop(&mut self, counters: &OwnedFd) {
        self.label("drop");
        self.stx(Size::W, R::Fp, -144, R::R7);
        self.ld_map(R::R1, counters);
        self.stack_ptr(R::R2, -144);
        self.call(MAP_LOOKUP_ELEM);
        self.jeq(R::R0, 0, "shot");
        self.mov_imm(R::R1, 1);
        self.atomic_add(R::R0, 0, R::R1);
        self.label("shot");
        self.exit_with(TC_ACT_SHOT);
    }

    /// Jumps to `drop` with counter `index`.
    fn drop_counting(&mut self, index: i32) {
        self.mov_imm(R::R7, index);
        self.ja("drop");
    }

    /// r0 = bpf_skb_load_bytes(ctx, at, fp + to, len); on failure the packet passes
    /// untouched (too short to be ours).
    fn load(&mut self, at: i32, to: i32, len: i32) {
        self.load_or(at, to, len, "pass");
    }

    /// [`Asm::load`], going to `short` when the packet is too short.
    fn load_or(&mut self, at: i32, to: i32, len: i32, short: &'static str) {
        self.mov(R::R1, R::R6);
        self.mov_imm(R::R2, at);
        self.stack_ptr(R::R3, to);
        self.mov_imm(R::R4, len);
        self.call(SKB_LOAD_BYTES);
        self.jne(R::R0, 0, short);
    }

    /// r0 = bpf_skb_load_bytes_relative(ctx, at, fp + to, len, network header): `at`
    /// counts from the network header whatever the socket sees in front of it; going to
    /// `short` when the packet is too short.
    fn load_net_or(&mut self, at: i32, to: i32, len: i32, short: &'static str) {
        self.mov(R::R1, R::R6);
        self.mov_imm(R::R2, at);
        self.stack_ptr(R::R3, to);
        self.mov_imm(R::R4, len);
        self.mov_imm(R::R5, BPF_HDR_START_NET);
        self.call(SKB_LOAD_BYTES_RELATIVE);
        self.jne(R::R0, 0, short);
    }

    /// bpf_skb_store_bytes(ctx, at, fp + from, len, 0); on failure a refusal.
    fn store(&mut self, at: i32, from: i32, len: i32, refusal: &'static str) {
        self.mov(R::R1, R::R6);
        self.mov_imm(R::R2, at);
        self.stack_ptr(R::R3, from);
        self.mov_imm(R::R4, len);
        self.mov_imm(R::R5, 0);
        self.call(SKB_STORE_BYTES);
        self.jne(R::R0, 0, refusal);
    }
}

/// The encapsulation program (tcx ingress of `peer`). Stack: the map key at fp-24 (21
/// octets), the Ethernet type read at fp-32, the outer header built at fp-72 (40 octets:
/// its addresses 8-aligned at fp-64 and fp-48), the new Ethernet type at fp-76, a counter
/// index at fp-144. Registers kept across calls: r6 the context, r7 the inner packet's
/// length, r8 the next header, r9 the map entry.
fn encap_program(maps: &Maps, peer_ifindex: u32) -> Vec<u64> {
    let mut a = Asm::default();
    a.mov(R::R6, R::R1);
    // A tunnel packet the decapsulation program sent back in for the TUN device.
    a.ldx(Size::W, R::R1, R::R6, SKB_MARK);
    a.and_imm(R::R1, crate::routes::TUN_RECEIVE_MARK as i32);
    a.jne(R::R1, 0, "pass");
    for off in [-24, -16, -8] {
        a.st_imm(Size::Dw, R::Fp, off, 0);
    }
    // The inner packet's family, by its Ethernet type.
    a.load(12, -32, 2);
    a.ldx(Size::H, R::R7, R::Fp, -32);
    a.jeq(R::R7, ethertype_le(ETH_P_IPV6), "v6");
    a.jeq(R::R7, ethertype_le(ETH_P_IP), "v4");
    a.ja("pass");
    // Its destination into the key: IPv6's at octet 24 of its header, IPv4's at 16.
    for (label, family, at, len, next_header) in [
        ("v6", 6, ETH_HLEN + 24, 16, 41),
        ("v4", 4, ETH_HLEN + 16, 4, 4),
    ] {
        a.label(label);
        a.st_imm(Size::B, R::Fp, -20, family);
        a.load(at, -19, len);
        a.mov_imm(R::R8, next_header);
        a.ja("lookup");
    }
    a.label("lookup");
    a.st_imm(Size::W, R::Fp, -24, ((KEY_SIZE - 4) * 8) as i32);
    a.ld_map(R::R1, &maps.encap);
    a.stack_ptr(R::R2, -24);
    a.call(MAP_LOOKUP_ELEM);
    a.jeq(R::R0, 0, "pass");
    a.mov(R::R9, R::R0);
    // The outer header: version 6, traffic class and flow label 0, the payload length
    // (the inner packet: the frame less its Ethernet header), next header, hop limit, our
    // end point, the far end.
    a.st_imm(Size::W, R::Fp, -72, 0x60);
    a.ldx(Size::W, R::R7, R::R6, SKB_LEN);
    a.add_imm(R::R7, -ETH_HLEN);
    a.mov(R::R1, R::R7);
    a.be16(R::R1);
    a.stx(Size::H, R::Fp, -68, R::R1);
    a.stx(Size::B, R::Fp, -66, R::R8);
    a.ldx(Size::B, R::R1, R::R9, 32);
    a.stx(Size::B, R::Fp, -65, R::R1);
    for i in 0..4i16 {
        a.ldx(Size::Dw, R::R1, R::R9, 8 * i);
        a.stx(Size::Dw, R::Fp, -64 + 8 * i, R::R1);
    }
    // Counted as sent to the far end (its entry in the filter's map).
    a.ld_map(R::R1, &maps.far_ends);
    a.stack_ptr(R::R2, -48);
    a.call(MAP_LOOKUP_ELEM);
    a.jeq(R::R0, 0, "room");
    a.mov_imm(R::R1, 1);
    a.atomic_add(R::R0, FAR_TX_PACKETS, R::R1);
    a.atomic_add(R::R0, FAR_TX_OCTETS, R::R7);
    a.label("room");
    a.mov(R::R1, R::R6);
    a.mov_imm(R::R2, IPV6_HLEN);
    a.mov_imm(R::R3, BPF_ADJ_ROOM_MAC);
    a.mov_imm(
        R::R4,
        BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_FIXED_GSO,
    );
    a.call(SKB_ADJUST_ROOM);
    a.jne(R::R0, 0, "refused");
    a.store(ETH_HLEN, -72, IPV6_HLEN, "refused");
    a.st_imm(Size::H, R::Fp, -76, ethertype_le(ETH_P_IPV6));
    a.store(12, -76, 2, "refused");
    // Straight to the uplink: the route the kernel would give the outer packet arriving
    // on `peer` (its rules see that input interface and our end point as the source),
    // then out of that device with its neighbour's address. Anything else (no route, no
    // neighbour entry yet) goes on to `peer` and is forwarded there.
    for off in (-216..-152).step_by(8) {
        a.st_imm(Size::Dw, R::Fp, off, 0);
    }
    a.st_imm(Size::B, R::Fp, -216 + FIB_FAMILY, AF_INET6);
    a.stx(Size::B, R::Fp, -216 + FIB_L4_PROTOCOL, R::R8);
    a.st_imm(Size::W, R::Fp, -216 + FIB_IFINDEX, peer_ifindex as i32);
    for i in 0..4i16 {
        a.ldx(Size::Dw, R::R1, R::Fp, -64 + 8 * i);
        a.stx(Size::Dw, R::Fp, -216 + FIB_SRC + 8 * i, R::R1);
    }
    a.mov(R::R1, R::R6);
    a.stack_ptr(R::R2, -216);
    a.mov_imm(R::R3, FIB_PARAMS_SIZE);
    a.mov_imm(R::R4, 0);
    a.call(FIB_LOOKUP);
    a.jne(R::R0, BPF_FIB_LKUP_RET_SUCCESS, "routed");
    // The Ethernet header: the neighbour's address, then the device's.
    a.store(0, -216 + FIB_DMAC, 6, "routed");
    a.store(6, -216 + FIB_SMAC, 6, "routed");
    a.ldx(Size::W, R::R1, R::Fp, -216 + FIB_IFINDEX);
    a.mov_imm(R::R2, 0);
    a.call(REDIRECT);
    a.raw(0x95, R::R0, R::R0, 0, 0);
    // Routed from `peer` instead, it is forwarded: its hop limit one more, so that the
    // wire carries the tunnel's.
    a.label("routed");
    a.ldx(Size::B, R::R1, R::R9, 32);
    a.jeq(R::R1, 255, "forwarded");
    a.add_imm(R::R1, 1);
    a.stx(Size::B, R::Fp, -80, R::R1);
    a.store(ETH_HLEN + 7, -80, 1, "refused");
    a.label("forwarded");
    a.exit_with(TC_ACT_OK);
    // A packet the kernel would not open room in (a UDP super-packet, say): dropped and
    // counted, never sent on without its outer header.
    a.label("refused");
    a.drop_counting(COUNTER_ENCAP_REFUSED);
    a.counted_drop(&maps.counters);
    a.label("pass");
    a.exit_with(TC_ACT_OK);
    a.finish()
}

/// The decapsulation program (tcx egress of `peer`), with the ingress filter of RFC 3963
/// §6.3 in front of it: the outer source must be a far end the filter knows
/// ([`FarEnds`]), the inner source (at a home agent) inside that router's prefixes, neither
/// inner address link-scope; the rest is dropped and counted. A far end whose bindings are
/// sent through TUN (RFC 5648's) has its admitted packets marked
/// ([`crate::routes::TUN_RECEIVE_MARK`]) and sent back in through `peer`: the
/// decapsulation rules skip marked packets, so they are delivered to the TUN data plane's
/// raw sockets.
///
/// Stack: the Ethernet type at fp-8, the outer header at fp-56 (its source, the far end,
/// at fp-48), the inner addresses at fp-96 (IPv6: source, destination; IPv4: source at
/// fp-96, destination at fp-92), the source key at fp-136 (37 octets in 40 zeroed), the
/// new Ethernet type at fp-4, a counter index at fp-144. Registers kept across calls: r6
/// the context, r8 the inner family, r9 the far end's entry.
///
/// The same program at an uplink's ingress ([`Hook::Uplink`]) first asks whether the
/// outer destination is one of our end points (the `locals` map; anything else passes on
/// untouched to the next program and the stack), leaves the far ends sent through TUN to
/// the route through the pair (uncounted: the pair's program counts them), and sends the
/// stripped packet into `dev`'s receive side with `dev`'s own Ethernet address (the
/// pair's), where it arrives as it would have through the pair: one routing decision, one
/// forwarding and one pass through the pair fewer per packet. The pair remains the path
/// for uplinks that are no Ethernet devices and for whatever the program passes on.
fn decap_program(maps: &Maps, peer_ifindex: u32, hook: Hook) -> Vec<u64> {
    let mut a = Asm::default();
    a.mov(R::R6, R::R1);
    if let Hook::Uplink { .. } = hook {
        // Only frames addressed to this device (PACKET_HOST): a bridge's port sees its
        // bridge's as another host's, and they take the bridge's path.
        a.ldx(Size::W, R::R1, R::R6, SKB_PKT_TYPE);
        a.jne(R::R1, 0, "pass");
    }
    a.load(12, -8, 2);
    a.ldx(Size::H, R::R1, R::Fp, -8);
    a.jne(R::R1, ethertype_le(ETH_P_IPV6), "pass");
    a.load(ETH_HLEN, -56, IPV6_HLEN);
    a.ldx(Size::B, R::R1, R::Fp, -56 + 6);
    if let Hook::Uplink { .. } = hook {
        a.jeq(R::R1, 41, "ours");
        a.jeq(R::R1, 4, "ours");
        a.ja("pass");
        a.label("ours");
        a.ld_map(R::R1, &maps.locals);
        a.stack_ptr(R::R2, -32);
        a.call(MAP_LOOKUP_ELEM);
        a.jeq(R::R0, 0, "pass");
        a.ldx(Size::B, R::R1, R::Fp, -56 + 6);
    }
    a.jeq(R::R1, 41, "v6");
    a.jeq(R::R1, 4, "v4");
    a.ja("cut");
    // Link-scope inner addresses never cross (fe80::/10 either side, ff02::/16 as the
    // destination; 169.254/16 either side).
    a.label("v6");
    a.load_or(ETH_HLEN + IPV6_HLEN + 8, -96, 32, "cut");
    for (at, label) in [(-96, "v6_dst"), (-80, "v6_mc")] {
        a.ldx(Size::B, R::R1, R::Fp, at);
        a.ldx(Size::B, R::R2, R::Fp, at + 1);
        a.jne(R::R1, 0xfe, label);
        a.and_imm(R::R2, 0xc0);
        a.jeq(R::R2, 0x80, "link_scope");
        a.label(label);
    }
    a.jne(R::R1, 0xff, "v6_ok");
    a.jeq(R::R2, 0x02, "link_scope");
    a.label("v6_ok");
    a.mov_imm(R::R8, 6);
    a.ja("far_end");
    a.label("v4");
    a.load_or(ETH_HLEN + IPV6_HLEN + 12, -96, 8, "cut");
    for (at, label) in [(-96, "v4_dst"), (-92, "v4_ok")] {
        a.ldx(Size::B, R::R1, R::Fp, at);
        a.ldx(Size::B, R::R2, R::Fp, at + 1);
        a.jne(R::R1, 169, label);
        a.jeq(R::R2, 254, "link_scope");
        a.label(label);
    }
    a.mov_imm(R::R8, 4);
    a.label("far_end");
    a.ld_map(R::R1, &maps.far_ends);
    a.stack_ptr(R::R2, -48);
    a.call(MAP_LOOKUP_ELEM);
    a.jeq(R::R0, 0, "no_binding");
    a.mov(R::R9, R::R0);
    a.ldx(Size::W, R::R1, R::R9, FAR_FLAGS);
    a.and_imm(R::R1, FAR_ANY_SOURCE as i32);
    a.jne(R::R1, 0, "admitted");
    // The inner source among the far end's prefixes: key (far end, family, source).
    for off in [-136, -128, -120, -112, -104] {
        a.st_imm(Size::Dw, R::Fp, off, 0);
    }
    a.st_imm(Size::W, R::Fp, -136, (SOURCE_KEY_SIZE - 4) as i32 * 8);
    for i in 0..4i16 {
        a.ldx(Size::W, R::R1, R::Fp, -48 + 4 * i);
        a.stx(Size::W, R::Fp, -132 + 4 * i, R::R1);
    }
    a.stx(Size::B, R::Fp, -116, R::R8);
    a.jeq(R::R8, 4, "source4");
    a.load_or(ETH_HLEN + IPV6_HLEN + 8, -115, 16, "cut");
    a.ja("source");
    a.label("source4");
    a.load_or(ETH_HLEN + IPV6_HLEN + 12, -115, 4, "cut");
    a.label("source");
    a.ld_map(R::R1, &maps.sources);
    a.stack_ptr(R::R2, -136);
    a.call(MAP_LOOKUP_ELEM);
    a.jeq(R::R0, 0, "spoofed");
    a.label("admitted");
    if let Hook::Uplink { .. } = hook {
        a.ldx(Size::W, R::R1, R::R9, FAR_FLAGS);
        a.and_imm(R::R1, FAR_TO_TUN as i32);
        a.jne(R::R1, 0, "pass");
    }
    a.mov_imm(R::R1, 1);
    a.atomic_add(R::R9, FAR_RX_PACKETS, R::R1);
    a.ldx(Size::W, R::R1, R::R6, SKB_LEN);
    a.add_imm(R::R1, -(ETH_HLEN + IPV6_HLEN));
    a.atomic_add(R::R9, FAR_RX_OCTETS, R::R1);
    a.ldx(Size::W, R::R1, R::R9, FAR_FLAGS);
    a.and_imm(R::R1, FAR_TO_TUN as i32);
    a.jeq(R::R1, 0, "strip");
    a.ldx(Size::W, R::R1, R::R6, SKB_MARK);
    a.or_imm(R::R1, crate::routes::TUN_RECEIVE_MARK as i32);
    a.stx(Size::W, R::R6, SKB_MARK, R::R1);
    a.mov_imm(R::R1, peer_ifindex as i32);
    a.mov_imm(R::R2, BPF_F_INGRESS);
    a.call(REDIRECT);
    a.raw(0x95, R::R0, R::R0, 0, 0);
    // Strip the outer header; the Ethernet type follows the inner packet's family.
    a.label("strip");
    a.jeq(R::R8, 4, "strip4");
    a.mov_imm(R::R7, ethertype_le(ETH_P_IPV6));
    a.mov_imm(R::R8, BPF_F_ADJ_ROOM_DECAP_L3_IPV6);
    a.ja("room");
    a.label("strip4");
    a.mov_imm(R::R7, ethertype_le(ETH_P_IP));
    a.mov_imm(R::R8, BPF_F_ADJ_ROOM_DECAP_L3_IPV4);
    a.label("room");
    a.mov(R::R1, R::R6);
    a.mov_imm(R::R2, -IPV6_HLEN);
    a.mov_imm(R::R3, BPF_ADJ_ROOM_MAC);
    a.mov(R::R4, R::R8);
    a.or_imm(R::R4, BPF_F_ADJ_ROOM_FIXED_GSO);
    a.call(SKB_ADJUST_ROOM);
    a.jeq(R::R0, 0, "stripped");
    // Kernels before 6.3 know no DECAP flags; the receiving side reads the family from the
    // Ethernet type written below anyway.
    a.mov(R::R1, R::R6);
    a.mov_imm(R::R2, -IPV6_HLEN);
    a.mov_imm(R::R3, BPF_ADJ_ROOM_MAC);
    a.mov_imm(R::R4, BPF_F_ADJ_ROOM_FIXED_GSO);
    a.call(SKB_ADJUST_ROOM);
    a.jne(R::R0, 0, "refused");
    a.label("stripped");
    a.stx(Size::H, R::Fp, -4, R::R7);
    a.store(12, -4, 2, "refused");
    match hook {
        Hook::Peer => a.exit_with(TC_ACT_OK),
        Hook::Uplink { dev_ifindex } => {
            let mac = crate::kernel::VETH_MAC;
            a.st_imm(
                Size::W,
                R::Fp,
                -160,
                i32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
            );
            a.st_imm(
                Size::H,
                R::Fp,
                -156,
                i32::from(u16::from_le_bytes([mac[4], mac[5]])),
            );
            a.store(0, -160, 6, "refused");
            a.mov_imm(R::R1, dev_ifindex as i32);
            a.mov_imm(R::R2, BPF_F_INGRESS);
            a.call(REDIRECT);
            a.raw(0x95, R::R0, R::R0, 0, 0);
        }
    }
    a.label("link_scope");
    a.drop_counting(COUNTER_LINK_SCOPE);
    a.label("no_binding");
    a.drop_counting(COUNTER_NO_BINDING);
    a.label("spoofed");
    a.drop_counting(COUNTER_SPOOFED_INNER);
    a.label("refused");
    a.drop_counting(COUNTER_DECAP_REFUSED);
    a.label("cut");
    match hook {
        // What the decapsulation rules sent here and cannot be taken apart (cut short, an
        // extension header before the inner packet) must not go on unstripped: it would
        // reach `dev` as the same tunnel packet, and the rules would send it round again
        // until its hop limit ran out, for anyone who sends one to our end point.
        Hook::Peer => a.drop_counting(COUNTER_MALFORMED),
        // At an uplink, the path through the pair deals with it.
        Hook::Uplink { .. } => a.ja("pass"),
    }
    a.counted_drop(&maps.counters);
    a.label("pass");
    // At an uplink, what is not ours goes on to whatever program comes after (tcx's
    // "next"), as if we were not there. Nothing but the decapsulation rules' packets
    // should leave the pair's far side.
    a.exit_with(match hook {
        Hook::Peer => TC_ACT_SHOT,
        Hook::Uplink { .. } => TC_ACT_UNSPEC,
    });
    a.finish()
}

/// Where the decapsulation program runs.
#[derive(Debug, Clone, Copy)]
enum Hook {
    /// The egress of the pair's far side (`peer`), after the decapsulation rules.
    Peer,
    /// The ingress of an uplink; decapsulated packets go into `dev`'s receive side.
    Uplink { dev_ifindex: u32 },
}

/// The encapsulation map: inner destination prefix → (our end point, far end, hop limit).
#[derive(Debug)]
pub struct EncapMap {
    fd: OwnedFd,
}

/// Writes the family (4 or 6) and `net`'s address into `to` (17 octets: an IPv4 address
/// in the first four after the family, the rest zero), and returns the bits of it a
/// longest-prefix match compares: the family's eight and the prefix's.
fn family_and_prefix(net: &IpNet, to: &mut [u8]) -> u32 {
    match net.trunc() {
        IpNet::V6(n) => {
            to[0] = 6;
            to[1..17].copy_from_slice(&n.network().octets());
        }
        IpNet::V4(n) => {
            to[0] = 4;
            to[1..5].copy_from_slice(&n.network().octets());
        }
    }
    8 + u32::from(net.prefix_len())
}

/// The map key of a destination prefix.
fn encap_key(dst: &IpNet) -> [u8; KEY_SIZE as usize] {
    let mut k = [0u8; KEY_SIZE as usize];
    let bits = family_and_prefix(dst, &mut k[4..]);
    k[..4].copy_from_slice(&bits.to_ne_bytes());
    k
}

/// The map value: our end point, the far end and the hop limit the outer header leaves
/// with.
fn encap_value(local: Ipv6Addr, remote: Ipv6Addr, hop_limit: u8) -> [u8; VALUE_SIZE as usize] {
    let mut v = [0u8; VALUE_SIZE as usize];
    v[..16].copy_from_slice(&local.octets());
    v[16..32].copy_from_slice(&remote.octets());
    v[32] = hop_limit;
    v
}

impl EncapMap {
    /// Sends what is routed to `dst` through the tunnel from `local` to `remote`.
    pub fn insert(
        &self,
        dst: &IpNet,
        local: Ipv6Addr,
        remote: Ipv6Addr,
        hop_limit: u8,
    ) -> io::Result<()> {
        map_update(
            &self.fd,
            &encap_key(dst),
            &encap_value(local, remote, hop_limit),
        )
    }

    /// Stops encapsulating towards `dst`; absent is success.
    pub fn remove(&self, dst: &IpNet) -> io::Result<()> {
        map_delete(&self.fd, &encap_key(dst))
    }

    /// The entry for exactly `dst`: (our end point, far end, outer hop limit on the wire).
    pub fn get(&self, dst: &IpNet) -> io::Result<Option<(Ipv6Addr, Ipv6Addr, u8)>> {
        let mut v = [0u8; VALUE_SIZE as usize];
        match map_lookup(&self.fd, &encap_key(dst), &mut v) {
            Ok(()) => {
                let a = |r: std::ops::Range<usize>| {
                    Ipv6Addr::from(<[u8; 16]>::try_from(&v[r]).expect("16 octets"))
                };
                Ok(Some((a(0..16), a(16..32), v[32])))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The programs' maps.
#[derive(Debug)]
struct Maps {
    encap: OwnedFd,
    far_ends: OwnedFd,
    sources: OwnedFd,
    counters: OwnedFd,
    /// Our end points (16 octets each): the uplink program's outer destinations.
    locals: OwnedFd,
}

impl Maps {
    fn create(entries: u32) -> io::Result<Maps> {
        let ctx = |what: &'static str| {
            move |e: io::Error| io::Error::new(e.kind(), format!("BPF map ({what}): {e}"))
        };
        Ok(Maps {
            encap: map_create(
                BPF_MAP_TYPE_LPM_TRIE,
                KEY_SIZE,
                VALUE_SIZE,
                entries,
                BPF_F_NO_PREALLOC,
            )
            .map_err(ctx("encapsulation, longest-prefix trie"))?,
            far_ends: map_create(BPF_MAP_TYPE_HASH, 16, FAR_VALUE_SIZE, entries, 0)
                .map_err(ctx("far ends, hash"))?,
            sources: map_create(
                BPF_MAP_TYPE_LPM_TRIE,
                SOURCE_KEY_SIZE,
                1,
                entries,
                BPF_F_NO_PREALLOC,
            )
            .map_err(ctx("sources, longest-prefix trie"))?,
            counters: map_create(BPF_MAP_TYPE_ARRAY, 4, 8, COUNTERS, 0)
                .map_err(ctx("counters, array"))?,
            locals: map_create(BPF_MAP_TYPE_HASH, 16, 1, LOCAL_ENTRIES, 0)
                .map_err(ctx("end points, hash"))?,
        })
    }
}

/// The sources map's key: a far end and an inner source prefix.
fn source_key(far_end: Ipv6Addr, net: &IpNet) -> [u8; SOURCE_KEY_SIZE as usize] {
    let mut k = [0u8; SOURCE_KEY_SIZE as usize];
    k[4..20].copy_from_slice(&far_end.octets());
    // The far end is matched whole.
    let bits = 128 + family_and_prefix(net, &mut k[20..]);
    k[..4].copy_from_slice(&bits.to_ne_bytes());
    k
}

/// What the filter lets a far end send ([`Tunnel::far_end_set`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FarEndPolicy {
    /// Any inner source (the mobile router's view of its home agent); else only the
    /// prefixes given with [`Tunnel::source_add`].
    pub any_source: bool,
    /// Admitted packets are for the TUN device.
    pub to_tun: bool,
}

/// One far end's counts: (packets, inner octets) received and admitted, and sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FarEndCounts {
    /// Received and admitted: packets, inner octets.
    pub received: (u64, u64),
    /// Sent: packets, inner octets.
    pub sent: (u64, u64),
}

/// The drops the programs counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    /// An inner source outside the far end's prefixes.
    pub spoofed_inner: u64,
    /// An outer source that is no far end of ours.
    pub no_binding: u64,
    /// A link-scope inner address.
    pub link_scope: u64,
    /// The kernel would not open room for the outer header.
    pub encap_refused: u64,
    /// The kernel would not strip it.
    pub decap_refused: u64,
    /// A tunnel packet to our end point that could not be taken apart (cut short, an
    /// extension header before the inner packet).
    pub malformed: u64,
}

/// The programs, attached to the pair and to the uplinks, with their maps. Dropping it
/// detaches them.
#[derive(Debug)]
pub struct Tunnel {
    encap: std::sync::Arc<EncapMap>,
    far_ends: OwnedFd,
    sources: OwnedFd,
    counters: OwnedFd,
    locals: OwnedFd,
    /// The decapsulation program for uplinks ([`Hook::Uplink`]).
    uplink: OwnedFd,
    /// Its attachments, by the uplink's index.
    uplinks: HashMap<u32, OwnedFd>,
    _links: [OwnedFd; 2],
    _progs: [OwnedFd; 2],
}

impl Tunnel {
    /// Creates the maps, loads both programs and attaches them: the encapsulation to the
    /// egress of the pair's host side (`dev_ifindex`), the decapsulation to the egress of
    /// its far side (`ifindex`). An error says which step the kernel refused (no BPF, no
    /// tcx before Linux 6.6, the verifier's complaint).
    pub fn attach(ifindex: u32, dev_ifindex: u32) -> io::Result<Tunnel> {
        let ctx = |what: &str| {
            let what = what.to_owned();
            move |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"))
        };
        let maps = Maps::create(ENCAP_ENTRIES.max(FILTER_ENTRIES))?;
        let encap = prog_load("nemo_encap", &encap_program(&maps, ifindex))
            .map_err(ctx("BPF program load"))?;
        let decap = prog_load("nemo_decap", &decap_program(&maps, ifindex, Hook::Peer))
            .map_err(ctx("BPF program load"))?;
        let uplink = prog_load(
            "nemo_uplink",
            &decap_program(&maps, ifindex, Hook::Uplink { dev_ifindex }),
        )
        .map_err(ctx("BPF program load"))?;
        let ingress = tcx_attach(&encap, dev_ifindex, BPF_TCX_EGRESS)
            .map_err(ctx("tcx attach (the host side's egress)"))?;
        let egress =
            tcx_attach(&decap, ifindex, BPF_TCX_EGRESS).map_err(ctx("tcx attach (egress)"))?;
        let Maps {
            encap: encap_map,
            far_ends,
            sources,
            counters,
            locals,
        } = maps;
        Ok(Tunnel {
            encap: std::sync::Arc::new(EncapMap { fd: encap_map }),
            far_ends,
            sources,
            counters,
            locals,
            uplink,
            uplinks: HashMap::new(),
            _links: [ingress, egress],
            _progs: [encap, decap],
        })
    }

    /// The encapsulation map (shared with the route logic's [`crate::netops::RtNetOps`]).
    pub fn encap(&self) -> std::sync::Arc<EncapMap> {
        self.encap.clone()
    }

    /// Admits what `far_end` sends as `policy` says; a known far end keeps its counters.
    pub fn far_end_set(&self, far_end: Ipv6Addr, policy: FarEndPolicy) -> io::Result<()> {
        let mut v = [0u8; FAR_VALUE_SIZE as usize];
        // A change of flags rewrites the counters read a moment before: the packets
        // counted in between are lost to the count, not to the flow (flags change rarely).
        if let Err(e) = map_lookup(&self.far_ends, &far_end.octets(), &mut v)
            && e.raw_os_error() != Some(libc::ENOENT)
        {
            return Err(e);
        }
        let flags = if policy.any_source { FAR_ANY_SOURCE } else { 0 }
            | if policy.to_tun { FAR_TO_TUN } else { 0 };
        v[..4].copy_from_slice(&flags.to_ne_bytes());
        map_update(&self.far_ends, &far_end.octets(), &v)
    }

    /// Stops admitting anything from `far_end` (its source prefixes are removed apart).
    pub fn far_end_remove(&self, far_end: Ipv6Addr) -> io::Result<()> {
        map_delete(&self.far_ends, &far_end.octets())
    }

    /// Admits inner sources inside `net` from `far_end`.
    pub fn source_add(&self, far_end: Ipv6Addr, net: &IpNet) -> io::Result<()> {
        map_update(&self.sources, &source_key(far_end, net), &[0])
    }

    /// Stops admitting `net` from `far_end`; absent is success.
    pub fn source_remove(&self, far_end: Ipv6Addr, net: &IpNet) -> io::Result<()> {
        map_delete(&self.sources, &source_key(far_end, net))
    }

    /// Decapsulates at the uplinks' ingress what is sent to `local` (one of our end
    /// points).
    pub fn local_add(&self, local: Ipv6Addr) -> io::Result<()> {
        map_update(&self.locals, &local.octets(), &[0])
    }

    /// Leaves what is sent to `local` to the route through the pair; absent is success.
    pub fn local_remove(&self, local: Ipv6Addr) -> io::Result<()> {
        map_delete(&self.locals, &local.octets())
    }

    /// Attaches the uplink program to the ingress of device `ifindex` (nothing if it is
    /// there already); true when it was attached now.
    pub fn uplink_attach(&mut self, ifindex: u32) -> io::Result<bool> {
        if self.uplinks.contains_key(&ifindex) {
            return Ok(false);
        }
        let link = tcx_attach(&self.uplink, ifindex, BPF_TCX_INGRESS)?;
        self.uplinks.insert(ifindex, link);
        Ok(true)
    }

    /// Keeps the uplink attachments of the devices `keep` accepts, detaches the others
    /// (a device that went away took its attachment with it; its descriptor is freed).
    pub fn uplinks_retain(&mut self, keep: impl Fn(u32) -> bool) {
        self.uplinks.retain(|i, _| keep(*i));
    }

    /// The devices whose ingress the uplink program is attached to.
    pub fn uplinks(&self) -> impl Iterator<Item = u32> + '_ {
        self.uplinks.keys().copied()
    }

    /// A far end's counts; `None` when the filter does not know it.
    pub fn far_end_counts(&self, far_end: Ipv6Addr) -> Option<FarEndCounts> {
        let mut v = [0u8; FAR_VALUE_SIZE as usize];
        map_lookup(&self.far_ends, &far_end.octets(), &mut v).ok()?;
        let u = |at: i16| {
            let at = at as usize;
            u64::from_ne_bytes(v[at..at + 8].try_into().expect("8 octets"))
        };
        Some(FarEndCounts {
            received: (u(FAR_RX_PACKETS), u(FAR_RX_OCTETS)),
            sent: (u(FAR_TX_PACKETS), u(FAR_TX_OCTETS)),
        })
    }

    /// What the programs dropped, by reason.
    pub fn drops(&self) -> Drops {
        let read = |i: i32| {
            let mut v = [0u8; 8];
            map_lookup(&self.counters, &(i as u32).to_ne_bytes(), &mut v)
                .map(|()| u64::from_ne_bytes(v))
                .unwrap_or(0)
        };
        Drops {
            spoofed_inner: read(COUNTER_SPOOFED_INNER),
            no_binding: read(COUNTER_NO_BINDING),
            link_scope: read(COUNTER_LINK_SCOPE),
            encap_refused: read(COUNTER_ENCAP_REFUSED),
            decap_refused: read(COUNTER_DECAP_REFUSED),
            malformed: read(COUNTER_MALFORMED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_encode_as_the_kernel_reads_them() {
        let mut a = Asm::default();
        a.mov_imm(R::R0, 2);
        a.ldx(Size::H, R::R7, R::Fp, -32);
        a.jeq(R::R7, 0xdd86, "x");
        a.label("x");
        a.exit_with(0);
        let insns = a.finish();
        // mov64 r0, 2: code b7, dst 0, imm 2.
        assert_eq!(insns[0], 0x0000_0002_0000_00b7);
        // ldxh r7, [r10-32]: code 69, dst 7, src 10, off -32.
        assert_eq!(insns[1], 0x0000_0000_ffe0_a769);
        // jeq r7, 0xdd86, +0 (the label is the next instruction).
        assert_eq!(insns[2], 0x0000_dd86_0000_0715);
    }

    #[test]
    fn keys_carry_the_family_and_prefix_length() {
        let k = encap_key(&"2001:db8:1::/48".parse().unwrap());
        assert_eq!(u32::from_ne_bytes(k[..4].try_into().unwrap()), 56);
        assert_eq!(k[4], 6);
        assert_eq!(&k[5..11], &[0x20, 0x01, 0x0d, 0xb8, 0, 1]);
        let k = encap_key(&"192.0.2.77/24".parse().unwrap());
        assert_eq!(u32::from_ne_bytes(k[..4].try_into().unwrap()), 32);
        assert_eq!(&k[4..9], &[4, 192, 0, 2, 0]);
        assert!(k[9..].iter().all(|&b| b == 0));
        let v = encap_value(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED, 64);
        assert_eq!(v[32], 64);
    }

    /// The kernel's verifier accepts both programs (root; no device is touched).
    #[test]
    fn the_programs_pass_the_verifier() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let maps = Maps::create(16).unwrap();
        prog_load("nemo_encap", &encap_program(&maps, 1)).unwrap();
        prog_load("nemo_decap", &decap_program(&maps, 1, Hook::Peer)).unwrap();
        prog_load(
            "nemo_uplink",
            &decap_program(&maps, 1, Hook::Uplink { dev_ifindex: 2 }),
        )
        .unwrap();
        SocketFilters::load(&[]).unwrap();
        let f = SocketFilters::load(&[1, 2]).unwrap();
        let far: Ipv6Addr = "::ffff:192.0.2.2".parse().unwrap();
        f.set_far_end(far).unwrap();
        f.drop_far_end(far).unwrap();
        f.drop_far_end(far).unwrap();
        let m = EncapMap { fd: maps.encap };
        let dst: IpNet = "2001:db8:7::/48".parse().unwrap();
        let (l, r) = (Ipv6Addr::LOCALHOST, "2001:db8::1".parse().unwrap());
        m.insert(&dst, l, r, 64).unwrap();
        assert_eq!(m.get(&dst).unwrap(), Some((l, r, 64)));
        m.remove(&dst).unwrap();
        m.remove(&dst).unwrap();
        assert_eq!(m.get(&dst).unwrap(), None);
    }
}
