//! The classic BPF program attached to the AF_PACKET receiver.
//!
//! It keeps only IPv6 packets not sent by this host whose header chain reaches the Mobility
//! Header (135) directly or after up to [`MAX_EXT_HEADERS`] Hop-by-Hop (0), Routing (43) or
//! Destination Options (60) headers: `MH`, `DestOpts(HAO) | MH` (BU from a mobile router
//! away), `RH2 | MH` (BA to it), `RH2 | DestOpts | MH`. It also keeps any packet whose first
//! header is Destination Options with a Home Address option at its usual place, octet 6
//! of the header (8n+6 alignment after a PadN, RFC 6275 §6.3): a mobile node's traffic
//! with a HAO, which the home agent answers or refuses (RFC 6275 §9.3.1). And it keeps a
//! packet whose first header is a type 2 routing header followed by ICMPv6: the Mobile
//! Prefix Advertisement (and Echo Reply) a home agent sends to a mobile node away (RFC 6275
//! §6.8, §9.3.2), which this kernel would refuse like any RH2. Everything else
//! is dropped in the kernel, so the daemon never wakes up for ordinary traffic. User space walks the chain
//! again with [`proto::ext::walk`], which is the real check; the filter is an optimisation.
//!
//! On a `SOCK_DGRAM` packet socket the filter sees the packet from the network header on
//! (packet(7)), so offset 0 is the first octet of the IPv6 header.

use socket2::SockFilter;

/// Offset of the Home Address option type in a packet whose first extension header is
/// Destination Options with the HAO placed as every implementation we know places it:
/// 40 (IPv6) + 2 (Next Header, Hdr Ext Len) + 4 (PadN).
pub const HAO_TYPE_OFFSET: u32 = 46;
/// The Home Address option type (RFC 6275 §6.3).
pub const HAO_TYPE: u8 = 201;

/// Extension headers the filter steps over before giving up.
pub const MAX_EXT_HEADERS: usize = 3;

/// `PACKET_OUTGOING` from `<linux/if_packet.h>`: a copy of a packet this host sent.
pub const PACKET_OUTGOING: u8 = 4;

// Opcodes from <linux/bpf_common.h> / <linux/filter.h>.
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ST: u16 = 0x02;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_B: u16 = 0x10;
const BPF_IMM: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_IND: u16 = 0x40;
const BPF_MEM: u16 = 0x60;
const BPF_ADD: u16 = 0x00;
const BPF_AND: u16 = 0x50;
const BPF_LSH: u16 = 0x60;
const BPF_JEQ: u16 = 0x10;
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_TAX: u16 = 0x00;
/// `SKF_AD_OFF + SKF_AD_PKTTYPE`: the ancillary "load skb->pkt_type" offset.
const SKF_AD_PKTTYPE: u32 = (-0x1000i32 + 4) as u32;
/// Accept: the whole packet (bigger than any IPv6 packet).
const ACCEPT_LEN: u32 = 0x4_0000;

/// One instruction with symbolic jump targets, resolved by [`program`].
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The next instruction.
    Next,
    /// The start of extension-header block `n`.
    Block(usize),
    Accept,
    Drop,
    /// The start of the header-chain walk.
    Chain,
    /// The test for a type 2 routing header followed by ICMPv6.
    Rh2,
}

#[derive(Debug, Clone, Copy)]
struct Insn {
    code: u16,
    jt: Target,
    jf: Target,
    k: u32,
}

fn op(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: Target::Next,
        jf: Target::Next,
        k,
    }
}

fn jeq(k: u32, jt: Target, jf: Target) -> Insn {
    Insn {
        code: BPF_JMP | BPF_JEQ | BPF_K,
        jt,
        jf,
        k,
    }
}

/// "A holds a next-header value": accept 135, go on to block `next` for 0/43/60, else drop.
fn classify(out: &mut Vec<Insn>, next: Target) {
    out.push(jeq(
        u32::from(proto::IPPROTO_MH),
        Target::Accept,
        Target::Next,
    ));
    out.push(jeq(u32::from(proto::IPPROTO_DSTOPTS), next, Target::Next));
    out.push(jeq(u32::from(proto::IPPROTO_ROUTING), next, Target::Next));
    out.push(jeq(0, next, Target::Drop));
}

/// One resolved classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instruction {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

/// The filter program, ready for `SO_ATTACH_FILTER`.
pub fn filter() -> Vec<SockFilter> {
    program()
        .into_iter()
        .map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k))
        .collect()
}

/// The filter of the home agent's Neighbour Solicitation receiver
/// ([`crate::SolicitationReceiver`]): IPv6 packets not sent by this host whose first next
/// header is ICMPv6, with hop limit 255 (RFC 4861 §7.1.1) and type 135. A solicitation
/// behind extension headers is not taken (none of the home link's nodes sends one).
pub fn ns_filter() -> Vec<SockFilter> {
    ns_program()
        .into_iter()
        .map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k))
        .collect()
}

/// The program of [`ns_filter`]. Jumps are relative to the next instruction; the last two
/// instructions accept (8) and drop (9).
pub fn ns_program() -> Vec<Instruction> {
    let i = |code: u16, jt: u8, jf: u8, k: u32| Instruction { code, jt, jf, k };
    let jeq = BPF_JMP | BPF_JEQ | BPF_K;
    let ldb = BPF_LD | BPF_B | BPF_ABS;
    vec![
        i(BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_AD_PKTTYPE),
        i(jeq, 7, 0, u32::from(PACKET_OUTGOING)),
        i(ldb, 0, 0, 6),
        i(jeq, 0, 5, u32::from(proto::IPPROTO_ICMPV6)),
        i(ldb, 0, 0, 7),
        i(jeq, 0, 3, 255),
        i(ldb, 0, 0, 40),
        i(jeq, 0, 1, 135),
        i(BPF_RET | BPF_K, 0, 0, ACCEPT_LEN),
        i(BPF_RET | BPF_K, 0, 0, 0),
    ]
}

/// The filter program.
pub fn program() -> Vec<Instruction> {
    let mut insns = Vec::new();
    let mut blocks = Vec::new();
    // Our own transmissions come back as PACKET_OUTGOING copies: never ours to process.
    insns.push(op(BPF_LD | BPF_W | BPF_ABS, SKF_AD_PKTTYPE));
    insns.push(jeq(u32::from(PACKET_OUTGOING), Target::Drop, Target::Next));
    // Version 6.
    insns.push(op(BPF_LD | BPF_B | BPF_ABS, 0));
    insns.push(op(BPF_ALU | BPF_AND | BPF_K, 0xf0));
    insns.push(jeq(0x60, Target::Next, Target::Drop));
    // Destination Options first, a HAO at octet 46: a mobile node's packet, whatever its
    // upper layer. A shorter packet fails the load and is dropped: it cannot carry an MH
    // after such a header either.
    insns.push(op(BPF_LD | BPF_B | BPF_ABS, 6));
    insns.push(jeq(
        u32::from(proto::IPPROTO_DSTOPTS),
        Target::Next,
        Target::Rh2,
    ));
    insns.push(op(BPF_LD | BPF_B | BPF_ABS, HAO_TYPE_OFFSET));
    insns.push(jeq(u32::from(HAO_TYPE), Target::Accept, Target::Chain));
    // A still holds octet 6 here. Routing header first, of type 2 (octet 42), then ICMPv6
    // (its Next Header, octet 40).
    let rh2_at = insns.len();
    insns.push(jeq(
        u32::from(proto::IPPROTO_ROUTING),
        Target::Next,
        Target::Chain,
    ));
    insns.push(op(BPF_LD | BPF_B | BPF_ABS, 42));
    insns.push(jeq(2, Target::Next, Target::Chain));
    insns.push(op(BPF_LD | BPF_B | BPF_ABS, 40));
    insns.push(jeq(
        u32::from(proto::IPPROTO_ICMPV6),
        Target::Accept,
        Target::Chain,
    ));
    let chain_at = insns.len();
    // Next Header of the IPv6 header. X = offset of the current extension header - 40.
    insns.push(op(BPF_LDX | BPF_W | BPF_IMM, 0));
    insns.push(op(BPF_LD | BPF_B | BPF_ABS, 6));
    classify(&mut insns, Target::Block(0));
    for n in 0..MAX_EXT_HEADERS {
        blocks.push(insns.len());
        // A = Next Header of this extension header, kept in M[0] while X moves on by
        // (Hdr Ext Len + 1) * 8 (RFC 8200 §4.3-4.6: all three count 8-octet units).
        insns.push(op(BPF_LD | BPF_B | BPF_IND, 40));
        insns.push(op(BPF_ST, 0));
        insns.push(op(BPF_LD | BPF_B | BPF_IND, 41));
        insns.push(op(BPF_ALU | BPF_ADD | BPF_K, 1));
        insns.push(op(BPF_ALU | BPF_LSH | BPF_K, 3));
        insns.push(op(BPF_ALU | BPF_ADD | BPF_X, 0));
        insns.push(op(BPF_MISC | BPF_TAX, 0));
        insns.push(op(BPF_LD | BPF_W | BPF_MEM, 0));
        let next = if n + 1 < MAX_EXT_HEADERS {
            Target::Block(n + 1)
        } else {
            Target::Drop
        };
        classify(&mut insns, next);
    }
    let drop_at = insns.len();
    insns.push(op(BPF_RET | BPF_K, 0));
    let accept_at = insns.len();
    insns.push(op(BPF_RET | BPF_K, ACCEPT_LEN));

    let resolve = |at: usize, t: Target| -> u8 {
        let to = match t {
            Target::Next => at + 1,
            Target::Block(n) => blocks[n],
            Target::Accept => accept_at,
            Target::Drop => drop_at,
            Target::Chain => chain_at,
            Target::Rh2 => rh2_at,
        };
        u8::try_from(to - (at + 1)).expect("forward jump within 255 instructions")
    };
    insns
        .iter()
        .enumerate()
        .map(|(at, i)| {
            let is_jump = i.code & 0x07 == BPF_JMP;
            let (jt, jf) = if is_jump {
                (resolve(at, i.jt), resolve(at, i.jf))
            } else {
                (0, 0)
            };
            Instruction {
                code: i.code,
                jt,
                jf,
                k: i.k,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! A minimal classic-BPF interpreter for the instructions [`program`] uses, so the
    //! filter is tested against byte fixtures without a kernel.
    use super::*;

    /// Runs the resolved program as the kernel would; returns the accepted length (0 =
    /// drop). A load past the end of the packet drops it, as in the kernel.
    fn run_resolved(pkt: &[u8], pkttype: u8) -> u32 {
        run(&program(), pkt, pkttype)
    }

    fn run(prog: &[Instruction], pkt: &[u8], pkttype: u8) -> u32 {
        let (mut a, mut x, mut m0, mut pc) = (0u32, 0u32, 0u32, 0usize);
        let byte = |off: u32| pkt.get(off as usize).map(|&b| u32::from(b));
        loop {
            let Instruction { code, jt, jf, k } = prog[pc];
            pc += 1;
            match code {
                c if c == BPF_LD | BPF_W | BPF_ABS && k == SKF_AD_PKTTYPE => a = u32::from(pkttype),
                c if c == BPF_LD | BPF_B | BPF_ABS => match byte(k) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == BPF_LD | BPF_B | BPF_IND => match byte(x + k) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == BPF_LDX | BPF_W | BPF_IMM => x = k,
                c if c == BPF_ST => m0 = a,
                c if c == BPF_LD | BPF_W | BPF_MEM => a = m0,
                c if c == BPF_ALU | BPF_ADD | BPF_K => a += k,
                c if c == BPF_ALU | BPF_ADD | BPF_X => a += x,
                c if c == BPF_ALU | BPF_AND | BPF_K => a &= k,
                c if c == BPF_ALU | BPF_LSH | BPF_K => a <<= k,
                c if c == BPF_MISC | BPF_TAX => x = a,
                c if c == BPF_RET | BPF_K => return k,
                c if c == BPF_JMP | BPF_JEQ | BPF_K => {
                    pc += usize::from(if a == k { jt } else { jf });
                }
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn ipv6(next_header: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        p[6] = next_header;
        p[7] = 64;
        p.extend_from_slice(payload);
        p
    }

    fn ext(next_header: u8, len8: u8) -> Vec<u8> {
        let mut h = vec![0u8; (usize::from(len8) + 1) * 8];
        h[0] = next_header;
        h[1] = len8;
        h
    }

    const MH: [u8; 16] = [59, 1, 5, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn accepts_mh_chains() {
        let plain = ipv6(135, &MH);
        assert_eq!(run_resolved(&plain, 0), ACCEPT_LEN);
        let hao = ipv6(60, &[ext(135, 2), MH.to_vec()].concat());
        assert_eq!(run_resolved(&hao, 0), ACCEPT_LEN);
        let rh2 = ipv6(43, &[ext(135, 2), MH.to_vec()].concat());
        assert_eq!(run_resolved(&rh2, 0), ACCEPT_LEN);
        let three = ipv6(
            0,
            &[ext(43, 0), ext(60, 2), ext(135, 2), MH.to_vec()].concat(),
        );
        assert_eq!(run_resolved(&three, 0), ACCEPT_LEN);
    }

    /// `DestOpts(PadN, HAO)` as mobile nodes send it: the option type at octet 6.
    fn hao_header(next_header: u8) -> Vec<u8> {
        let mut h = ext(next_header, 2);
        h[2..6].copy_from_slice(&[1, 2, 0, 0]);
        h[6] = HAO_TYPE;
        h[7] = 16;
        h
    }

    #[test]
    fn accepts_any_traffic_with_a_home_address_option() {
        // An Echo Request and a UDP datagram from a mobile node away (RFC 6275 §9.3.1).
        let echo = ipv6(
            60,
            &[hao_header(58), vec![128, 0, 0, 0, 0, 1, 0, 1]].concat(),
        );
        assert_eq!(echo[HAO_TYPE_OFFSET as usize], HAO_TYPE);
        assert_eq!(run_resolved(&echo, 0), ACCEPT_LEN);
        let udp = ipv6(60, &[hao_header(17), vec![0; 8]].concat());
        assert_eq!(run_resolved(&udp, 0), ACCEPT_LEN);
        // Not our own copies.
        assert_eq!(run_resolved(&udp, PACKET_OUTGOING), 0);
        // Another option at octet 46 is not a HAO.
        let mut other = udp.clone();
        other[HAO_TYPE_OFFSET as usize] = 0x1e;
        assert_eq!(run_resolved(&other, 0), 0);
    }

    /// `RH2(HoA)`: Segments Left 1, type 2 (RFC 6275 §6.4).
    fn rh2_header(next_header: u8) -> Vec<u8> {
        let mut h = ext(next_header, 2);
        h[2] = 2;
        h[3] = 1;
        h
    }

    #[test]
    fn accepts_icmpv6_after_a_type_2_routing_header() {
        // A Mobile Prefix Advertisement to a mobile node away (RFC 6275 §6.8).
        let mpa = ipv6(
            43,
            &[rh2_header(58), vec![147, 0, 0, 0, 0, 1, 0, 0]].concat(),
        );
        assert_eq!(run_resolved(&mpa, 0), ACCEPT_LEN);
        // A BA after an RH2 still goes the chain's way.
        assert_eq!(
            run_resolved(&ipv6(43, &[rh2_header(135), MH.to_vec()].concat()), 0),
            ACCEPT_LEN
        );
        // A type 0 routing header before ICMPv6, or an RH2 before UDP: not ours.
        let mut type0 = mpa.clone();
        type0[42] = 0;
        assert_eq!(run_resolved(&type0, 0), 0);
        let udp = ipv6(43, &[rh2_header(17), vec![0; 8]].concat());
        assert_eq!(run_resolved(&udp, 0), 0);
        // Cut inside the routing header.
        assert_eq!(run_resolved(&mpa[..41], 0), 0);
    }

    #[test]
    fn drops_the_rest() {
        // Our own copies.
        assert_eq!(run_resolved(&ipv6(135, &MH), PACKET_OUTGOING), 0);
        // ICMPv6, UDP, HAO before ICMPv6 (Mobile Prefix Solicitation), too many headers.
        assert_eq!(run_resolved(&ipv6(58, &[0; 8]), 0), 0);
        assert_eq!(run_resolved(&ipv6(17, &[0; 8]), 0), 0);
        assert_eq!(
            run_resolved(&ipv6(60, &[ext(58, 2), vec![0; 8]].concat()), 0),
            0
        );
        let four = [ext(60, 0), ext(60, 0), ext(60, 0), ext(135, 0), MH.to_vec()].concat();
        assert_eq!(run_resolved(&ipv6(60, &four), 0), 0);
        // Truncated extension header, IPv4.
        assert_eq!(run_resolved(&ipv6(60, &[60]), 0), 0);
        let mut v4 = ipv6(135, &MH);
        v4[0] = 0x45;
        assert_eq!(run_resolved(&v4, 0), 0);
    }

    #[test]
    fn the_solicitation_filter_keeps_only_on_link_neighbour_solicitations() {
        let prog = ns_program();
        let mut ns = ipv6(proto::IPPROTO_ICMPV6, &[135, 0, 0, 0, 0, 0, 0, 0]);
        ns[7] = 255;
        assert_eq!(run(&prog, &ns, 0), ACCEPT_LEN);
        // Multicast (to the solicited-node group) and unicast alike.
        assert_eq!(run(&prog, &ns, 2), ACCEPT_LEN);
        // Our own, a forwarded one (hop limit 254), an NA, another protocol, a runt.
        assert_eq!(run(&prog, &ns, PACKET_OUTGOING), 0);
        let mut forwarded = ns.clone();
        forwarded[7] = 254;
        assert_eq!(run(&prog, &forwarded, 0), 0);
        let mut na = ns.clone();
        na[40] = 136;
        assert_eq!(run(&prog, &na, 0), 0);
        let mut udp = ns.clone();
        udp[6] = 17;
        assert_eq!(run(&prog, &udp, 0), 0);
        assert_eq!(run(&prog, &ns[..40], 0), 0);
    }
}
