//! The kernel data plane's BPF encapsulation (issue 12), for kernels without SRv6
//! lightweight tunnels (`CONFIG_IPV6_SEG6_LWTUNNEL`) as well as with them: two small tc
//! programs on the veth pair's far side ([`crate::routes::KernelRoutes::peer`]) put on and
//! take off the RFC 2473 outer IPv6 header, where the SRv6 routes would.
//!
//! * **Encapsulation** (tcx ingress of `peer`): what the host routed into `dev` arrives
//!   here. The program looks the inner destination up in [`EncapMap`] (a longest-prefix
//!   trie: the mobile network prefixes and home addresses at a home agent, the default
//!   route at a mobile router), opens 40 octets of room between the Ethernet and the
//!   inner IP header (`bpf_skb_adjust_room`, which also keeps TCP super-packets valid:
//!   they are cut into tunnel packets when they leave), writes the outer header (next
//!   header 41 or 4, our end point, the far end, the tunnel hop limit) and lets the packet
//!   go on: the kernel routes it by its outer header (rule `iif PEER from LOCAL`). A
//!   destination without an entry passes unchanged and meets the encapsulation table's
//!   fail-closed unreachable route.
//! * **Decapsulation** (tcx egress of `peer`): the decapsulation rules route a tunnel
//!   packet to one of our end points (after the ingress filter accepted it) out of `peer`
//!   by a plain route; the program strips the outer header, so what reaches `dev` is the
//!   inner packet, received there like one from the TUN device.
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

// bpf(2) commands.
const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_LOOKUP_ELEM: u32 = 1;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_MAP_DELETE_ELEM: u32 = 3;
const BPF_PROG_LOAD: u32 = 5;
const BPF_LINK_CREATE: u32 = 28;

const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_LPM_TRIE: u32 = 11;
/// Required of a longest-prefix trie.
const BPF_F_NO_PREALLOC: u32 = 1;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
const BPF_TCX_INGRESS: u32 = 46;
const BPF_TCX_EGRESS: u32 = 47;

// Helpers.
const MAP_LOOKUP_ELEM: i32 = 1;
const SKB_STORE_BYTES: i32 = 9;
const SKB_LOAD_BYTES: i32 = 26;
const SKB_ADJUST_ROOM: i32 = 50;

// bpf_skb_adjust_room's mode and flags.
const BPF_ADJ_ROOM_MAC: i32 = 1;
/// Keep the super-packet's segment size: `dev`'s MTU already leaves room for the outer
/// header, and a decapsulated packet should leave in the segments it came in.
const BPF_F_ADJ_ROOM_FIXED_GSO: i32 = 1;
const BPF_F_ADJ_ROOM_ENCAP_L3_IPV6: i32 = 1 << 2;
const BPF_F_ADJ_ROOM_DECAP_L3_IPV4: i32 = 1 << 7;
const BPF_F_ADJ_ROOM_DECAP_L3_IPV6: i32 = 1 << 8;

/// tc verdicts (the same numbers for tcx).
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

/// Counters the programs keep (one u64 each, in [`Tunnel::counters`]'s order).
const COUNTER_ENCAP_REFUSED: i32 = 0;
const COUNTER_DECAP_REFUSED: i32 = 1;
const COUNTERS: u32 = 2;

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
    let license = c"BSD";
    let mut log = vec![0u8; 1 << 16];
    let mut attr = [0u64; 16];
    attr[0] = pair(BPF_PROG_TYPE_SCHED_CLS, insns.len() as u32);
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
        self.jumps.push((self.insns.len(), to));
        self.raw(code, dst, R::R0, 0, imm);
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

    /// Adds one to counter `index` of the array map `counters` (clobbers r0-r5).
    fn count(&mut self, counters: &OwnedFd, index: i32) {
        self.st_imm(Size::W, R::Fp, -80, index);
        self.ld_map(R::R1, counters);
        self.stack_ptr(R::R2, -80);
        self.call(MAP_LOOKUP_ELEM);
        self.jeq(R::R0, 0, "counted");
        self.mov_imm(R::R1, 1);
        self.atomic_add(R::R0, 0, R::R1);
        self.label("counted");
    }
}

/// The encapsulation program (tcx ingress of `peer`). Stack: the map key at fp-24 (21
/// octets), the Ethernet type read at fp-32, the outer header built at fp-72 (40 octets:
/// its addresses 8-aligned at fp-64 and fp-48), the new Ethernet type at fp-76, a counter
/// index at fp-80.
fn encap_program(map: &OwnedFd, counters: &OwnedFd) -> Vec<u64> {
    let mut a = Asm::default();
    a.mov(R::R6, R::R1);
    for off in [-24, -16, -8] {
        a.st_imm(Size::Dw, R::Fp, off, 0);
    }
    // The inner packet's family, by its Ethernet type.
    a.mov(R::R1, R::R6);
    a.mov_imm(R::R2, 12);
    a.stack_ptr(R::R3, -32);
    a.mov_imm(R::R4, 2);
    a.call(SKB_LOAD_BYTES);
    a.jne(R::R0, 0, "pass");
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
        a.mov(R::R1, R::R6);
        a.mov_imm(R::R2, at);
        a.stack_ptr(R::R3, -19);
        a.mov_imm(R::R4, len);
        a.call(SKB_LOAD_BYTES);
        a.jne(R::R0, 0, "pass");
        a.mov_imm(R::R8, next_header);
        a.ja("lookup");
    }
    a.label("lookup");
    a.st_imm(Size::W, R::Fp, -24, ((KEY_SIZE - 4) * 8) as i32);
    a.ld_map(R::R1, map);
    a.stack_ptr(R::R2, -24);
    a.call(MAP_LOOKUP_ELEM);
    a.jeq(R::R0, 0, "pass");
    a.mov(R::R9, R::R0);
    // The outer header: version 6, traffic class and flow label 0, the payload length
    // (the inner packet: the frame less its Ethernet header), next header, hop limit, our
    // end point, the far end.
    a.st_imm(Size::W, R::Fp, -72, 0x60);
    a.ldx(Size::W, R::R1, R::R6, 0);
    a.add_imm(R::R1, -ETH_HLEN);
    a.be16(R::R1);
    a.stx(Size::H, R::Fp, -68, R::R1);
    a.stx(Size::B, R::Fp, -66, R::R8);
    a.ldx(Size::B, R::R1, R::R9, 32);
    a.stx(Size::B, R::Fp, -65, R::R1);
    for i in 0..4i16 {
        a.ldx(Size::Dw, R::R1, R::R9, 8 * i);
        a.stx(Size::Dw, R::Fp, -64 + 8 * i, R::R1);
    }
    a.mov(R::R1, R::R6);
    a.mov_imm(R::R2, IPV6_HLEN);
    a.mov_imm(R::R3, BPF_ADJ_ROOM_MAC);
    a.mov_imm(
        R::R4,
        BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_FIXED_GSO,
    );
    a.call(SKB_ADJUST_ROOM);
    a.jne(R::R0, 0, "refused");
    a.mov(R::R1, R::R6);
    a.mov_imm(R::R2, ETH_HLEN);
    a.stack_ptr(R::R3, -72);
    a.mov_imm(R::R4, IPV6_HLEN);
    a.mov_imm(R::R5, 0);
    a.call(SKB_STORE_BYTES);
    a.jne(R::R0, 0, "refused");
    a.st_imm(Size::H, R::Fp, -76, ethertype_le(ETH_P_IPV6));
    a.mov(R::R1, R::R6);
    a.mov_imm(R::R2, 12);
    a.stack_ptr(R::R3, -76);
    a.mov_imm(R::R4, 2);
    a.mov_imm(R::R5, 0);
    a.call(SKB_STORE_BYTES);
    a.jne(R::R0, 0, "refused");
    a.exit_with(TC_ACT_OK);
    a.label("refused");
    // A packet the kernel would not open room in (a UDP super-packet, say): dropped and
    // counted, never sent on without its outer header.
    a.count(counters, COUNTER_ENCAP_REFUSED);
    a.exit_with(TC_ACT_SHOT);
    a.label("pass");
    a.exit_with(TC_ACT_OK);
    a.finish()
}

/// The decapsulation program (tcx egress of `peer`). Stack: the Ethernet type at fp-8,
/// the next header at fp-6, the inner Ethernet type at fp-4, a counter index at fp-80.
fn decap_program(counters: &OwnedFd) -> Vec<u64> {
    let mut a = Asm::default();
    a.mov(R::R6, R::R1);
    a.mov(R::R1, R::R6);
    a.mov_imm(R::R2, 12);
    a.stack_ptr(R::R3, -8);
    a.mov_imm(R::R4, 2);
    a.call(SKB_LOAD_BYTES);
    a.jne(R::R0, 0, "pass");
    a.ldx(Size::H, R::R1, R::Fp, -8);
    a.jne(R::R1, ethertype_le(ETH_P_IPV6), "pass");
    a.mov(R::R1, R::R6);
    a.mov_imm(R::R2, ETH_HLEN + 6);
    a.stack_ptr(R::R3, -6);
    a.mov_imm(R::R4, 1);
    a.call(SKB_LOAD_BYTES);
    a.jne(R::R0, 0, "pass");
    a.ldx(Size::B, R::R1, R::Fp, -6);
    a.jeq(R::R1, 41, "v6");
    a.jeq(R::R1, 4, "v4");
    a.ja("pass");
    a.label("v6");
    a.mov_imm(R::R7, ethertype_le(ETH_P_IPV6));
    a.mov_imm(R::R8, BPF_F_ADJ_ROOM_DECAP_L3_IPV6);
    a.ja("strip");
    a.label("v4");
    a.mov_imm(R::R7, ethertype_le(ETH_P_IP));
    a.mov_imm(R::R8, BPF_F_ADJ_ROOM_DECAP_L3_IPV4);
    a.label("strip");
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
    a.mov(R::R1, R::R6);
    a.mov_imm(R::R2, 12);
    a.stack_ptr(R::R3, -4);
    a.mov_imm(R::R4, 2);
    a.mov_imm(R::R5, 0);
    a.call(SKB_STORE_BYTES);
    a.jne(R::R0, 0, "refused");
    a.exit_with(TC_ACT_OK);
    a.label("refused");
    a.count(counters, COUNTER_DECAP_REFUSED);
    a.exit_with(TC_ACT_SHOT);
    a.label("pass");
    a.exit_with(TC_ACT_OK);
    a.finish()
}

/// The encapsulation map: inner destination prefix → (our end point, far end, hop limit).
#[derive(Debug)]
pub struct EncapMap {
    fd: OwnedFd,
}

/// The map key of a destination prefix.
fn encap_key(dst: &IpNet) -> [u8; KEY_SIZE as usize] {
    let mut k = [0u8; KEY_SIZE as usize];
    let bits = 8 + u32::from(dst.prefix_len());
    k[..4].copy_from_slice(&bits.to_ne_bytes());
    match dst.trunc() {
        IpNet::V6(n) => {
            k[4] = 6;
            k[5..].copy_from_slice(&n.network().octets());
        }
        IpNet::V4(n) => {
            k[4] = 4;
            k[5..9].copy_from_slice(&n.network().octets());
        }
    }
    k
}

/// The map value: our end point, the far end and the hop limit the outer header leaves
/// with. The encapsulated packet is forwarded from `peer` (its hop limit is decremented
/// once), so the map holds one more than what goes on the wire.
fn encap_value(local: Ipv6Addr, remote: Ipv6Addr, hop_limit: u8) -> [u8; VALUE_SIZE as usize] {
    let mut v = [0u8; VALUE_SIZE as usize];
    v[..16].copy_from_slice(&local.octets());
    v[16..32].copy_from_slice(&remote.octets());
    v[32] = hop_limit.saturating_add(1);
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
                Ok(Some((a(0..16), a(16..32), v[32].saturating_sub(1))))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The two programs, attached to `peer`, with their maps. Dropping it detaches them.
#[derive(Debug)]
pub struct Tunnel {
    encap: std::sync::Arc<EncapMap>,
    counters: OwnedFd,
    _links: [OwnedFd; 2],
    _progs: [OwnedFd; 2],
}

impl Tunnel {
    /// Creates the maps, loads both programs and attaches them to the device with index
    /// `ifindex`. An error says which step the kernel refused (no BPF, no tcx before
    /// Linux 6.6, the verifier's complaint).
    pub fn attach(ifindex: u32) -> io::Result<Tunnel> {
        let ctx = |what: &str| {
            let what = what.to_owned();
            move |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"))
        };
        let map = map_create(
            BPF_MAP_TYPE_LPM_TRIE,
            KEY_SIZE,
            VALUE_SIZE,
            ENCAP_ENTRIES,
            BPF_F_NO_PREALLOC,
        )
        .map_err(ctx("BPF map (longest-prefix trie)"))?;
        let counters =
            map_create(BPF_MAP_TYPE_ARRAY, 4, 8, COUNTERS, 0).map_err(ctx("BPF map (array)"))?;
        let encap = prog_load("nemo_encap", &encap_program(&map, &counters))
            .map_err(ctx("BPF program load"))?;
        let decap =
            prog_load("nemo_decap", &decap_program(&counters)).map_err(ctx("BPF program load"))?;
        let ingress =
            tcx_attach(&encap, ifindex, BPF_TCX_INGRESS).map_err(ctx("tcx attach (ingress)"))?;
        let egress =
            tcx_attach(&decap, ifindex, BPF_TCX_EGRESS).map_err(ctx("tcx attach (egress)"))?;
        Ok(Tunnel {
            encap: std::sync::Arc::new(EncapMap { fd: map }),
            counters,
            _links: [ingress, egress],
            _progs: [encap, decap],
        })
    }

    /// The encapsulation map (shared with the route logic's [`crate::netops::RtNetOps`]).
    pub fn encap(&self) -> std::sync::Arc<EncapMap> {
        self.encap.clone()
    }

    /// Packets dropped because the kernel refused to add or strip the outer header:
    /// (encapsulation, decapsulation).
    pub fn refused(&self) -> (u64, u64) {
        let read = |i: u32| {
            let mut v = [0u8; 8];
            map_lookup(&self.counters, &i.to_ne_bytes(), &mut v)
                .map(|()| u64::from_ne_bytes(v))
                .unwrap_or(0)
        };
        (
            read(COUNTER_ENCAP_REFUSED as u32),
            read(COUNTER_DECAP_REFUSED as u32),
        )
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
        let v = encap_value(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED, 255);
        assert_eq!(v[32], 255);
    }

    /// The kernel's verifier accepts both programs (root; no device is touched).
    #[test]
    fn the_programs_pass_the_verifier() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let map = map_create(
            BPF_MAP_TYPE_LPM_TRIE,
            KEY_SIZE,
            VALUE_SIZE,
            16,
            BPF_F_NO_PREALLOC,
        )
        .unwrap();
        let counters = map_create(BPF_MAP_TYPE_ARRAY, 4, 8, COUNTERS, 0).unwrap();
        prog_load("nemo_encap", &encap_program(&map, &counters)).unwrap();
        prog_load("nemo_decap", &decap_program(&counters)).unwrap();
        let m = EncapMap { fd: map };
        let dst: IpNet = "2001:db8:7::/48".parse().unwrap();
        let (l, r) = (Ipv6Addr::LOCALHOST, "2001:db8::1".parse().unwrap());
        m.insert(&dst, l, r, 64).unwrap();
        assert_eq!(m.get(&dst).unwrap(), Some((l, r, 64)));
        m.remove(&dst).unwrap();
        m.remove(&dst).unwrap();
        assert_eq!(m.get(&dst).unwrap(), None);
    }
}
