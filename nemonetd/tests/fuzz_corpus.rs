//! Runs the seed corpora of nemonetd's fuzz targets (`fuzz/corpus/<target>` at the
//! workspace root) through the same checks the fuzzers make, so every seed — and every
//! crash input ever added there — stays fixed.
//!
//! The seeds are TCP super-packets as the kernel hands them to a TUN reader with offloads,
//! and bursts of segments as they come out of the tunnel, written by `write_seed_corpora`
//! below (`cargo test -p nemonetd --test fuzz_corpus -- --ignored`).

use std::path::{Path, PathBuf};

use nemonetd::gso::{F_NEEDS_CSUM, GSO_ECN, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VNET_HDR_LEN};
use proto::checksum;

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Feeds every file of `target`'s corpus to `check`; returns how many there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = corpus(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed corpus directory") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        check(&data);
        n += 1;
    }
    n
}

#[test]
fn gso_segment_corpus_passes_the_fuzz_checks() {
    let n = replay("gso_segment", nemonetd::fuzzing::gso_segment);
    assert!(
        n >= 5,
        "expected the gso_segment seed corpus, found {n} files"
    );
}

#[test]
fn gro_coalesce_corpus_passes_the_fuzz_checks() {
    let n = replay("gro_coalesce", nemonetd::fuzzing::gro_coalesce);
    assert!(
        n >= 5,
        "expected the gro_coalesce seed corpus, found {n} files"
    );
}

/// A TCP packet 2001:db8:100::2 -> 2001:db8:c::2 (or 198.51.100.2 -> 203.0.113.2), ports
/// 40000 -> 5201, `payload_len` octets, `flags`, `options` octets of TCP options (NOPs);
/// lengths and checksums right.
fn tcp(v4: bool, payload_len: usize, flags: u8, options: usize) -> Vec<u8> {
    let ip_len = if v4 { 20 } else { 40 };
    let tcp_len = 20 + options;
    let mut p = vec![0u8; ip_len + tcp_len + payload_len];
    if v4 {
        p[0] = 0x45;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[6] = 0x40; // DF
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[198, 51, 100, 2]);
        p[16..20].copy_from_slice(&[203, 0, 113, 2]);
        let c = checksum::ipv4_header(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((tcp_len + payload_len) as u16).to_be_bytes());
        p[6] = 6;
        p[7] = 64;
        p[8..24].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        p[24..40].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0xc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    }
    let t = ip_len;
    p[t..t + 2].copy_from_slice(&40000u16.to_be_bytes());
    p[t + 2..t + 4].copy_from_slice(&5201u16.to_be_bytes());
    p[t + 4..t + 8].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
    p[t + 8..t + 12].copy_from_slice(&0x0000_1000u32.to_be_bytes());
    p[t + 12] = ((tcp_len / 4) as u8) << 4;
    p[t + 13] = flags;
    p[t + 14..t + 16].copy_from_slice(&502u16.to_be_bytes());
    p[t + 20..t + tcp_len].fill(1);
    for (i, b) in p[t + tcp_len..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let l4 = p.len() - t;
    let pseudo = if v4 {
        let s: [u8; 4] = p[12..16].try_into().unwrap();
        let d: [u8; 4] = p[16..20].try_into().unwrap();
        checksum::pseudo_header_v4(&s.into(), &d.into(), 6, l4 as u16)
    } else {
        let s: [u8; 16] = p[8..24].try_into().unwrap();
        let d: [u8; 16] = p[24..40].try_into().unwrap();
        checksum::pseudo_header_v6(&s.into(), &d.into(), 6, l4 as u32)
    };
    let c = checksum::finish(checksum::sum(pseudo, &p[t..]));
    p[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
    p
}

/// A virtio-net header (native byte order) and a packet.
fn with_vnet(flags: u8, gso_type: u8, gso_size: u16, csum: (u16, u16), p: &[u8]) -> Vec<u8> {
    let mut b = vec![flags, gso_type];
    b.extend_from_slice(&0u16.to_ne_bytes());
    b.extend_from_slice(&gso_size.to_ne_bytes());
    b.extend_from_slice(&csum.0.to_ne_bytes());
    b.extend_from_slice(&csum.1.to_ne_bytes());
    assert_eq!(b.len(), VNET_HDR_LEN);
    b.extend_from_slice(p);
    b
}

/// A gro_coalesce step pushing `p` as it is.
fn raw(p: &[u8]) -> Vec<u8> {
    let mut s = vec![0];
    s.extend_from_slice(&(p.len() as u16).to_le_bytes());
    s.extend_from_slice(p);
    s
}

/// A gro_coalesce step pushing the next segment of the flow, `len` octets, PSH if `push`.
fn next(len: u16, push: bool) -> Vec<u8> {
    let mut s = vec![if push { 3 } else { 1 }];
    s.extend_from_slice(&len.to_le_bytes());
    s
}

/// Writes the seed corpora.
#[test]
#[ignore = "writes the seed corpora; run by hand"]
fn write_seed_corpora() {
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };

    // gso_segment: TSO super-packets of both families, ECN, options, FIN/PSH/CWR, an
    // empty one, partial checksums (TCP and UDP) without segmentation.
    for (name, v4) in [("v4", true), ("v6", false)] {
        let gso = if v4 { GSO_TCPV4 } else { GSO_TCPV6 };
        let ip_len = if v4 { 20 } else { 40 };
        let p = tcp(v4, 3000, 0x18, 0);
        write(
            "gso_segment",
            &format!("tso_{name}"),
            &with_vnet(F_NEEDS_CSUM, gso, 1400, (ip_len, 16), &p),
        );
        let p = tcp(v4, 2000, 0x18 | 0x01 | 0x80, 12);
        write(
            "gso_segment",
            &format!("tso_{name}_ecn_fin_options"),
            &with_vnet(F_NEEDS_CSUM, gso | GSO_ECN, 536, (ip_len, 16), &p),
        );
        let p = tcp(v4, 0, 0x10, 0);
        write(
            "gso_segment",
            &format!("tso_{name}_empty"),
            &with_vnet(0, gso, 1400, (0, 0), &p),
        );
        let p = tcp(v4, 200, 0x18, 0);
        write(
            "gso_segment",
            &format!("csum_only_{name}"),
            &with_vnet(F_NEEDS_CSUM, 0, 0, (ip_len, 16), &p),
        );
    }
    // UDP super-packets as a card's GRO merges them (the packet socket's reads), both
    // families, the last datagram shorter.
    for (name, v4) in [("v4", true), ("v6", false)] {
        let mut p = tcp(v4, 2488, 0x18, 0);
        let ip_len = if v4 { 20 } else { 40 };
        if v4 {
            p[9] = 17;
        } else {
            p[6] = 17;
        }
        let udp_len = (p.len() - ip_len) as u16;
        p[ip_len + 4..ip_len + 6].copy_from_slice(&udp_len.to_be_bytes());
        write(
            "gso_segment",
            &format!("udp_gro_{name}"),
            &with_vnet(F_NEEDS_CSUM, GSO_UDP_L4, 1000, (ip_len as u16, 6), &p),
        );
    }
    let mut udp = vec![0u8; 8];
    udp[0..2].copy_from_slice(&0xfffeu16.to_be_bytes());
    udp[2..4].copy_from_slice(&0x0001u16.to_be_bytes());
    write(
        "gso_segment",
        "udp_zero_checksum",
        &with_vnet(F_NEEDS_CSUM, 0, 0, (0, 6), &udp),
    );

    // gro_coalesce: a burst that merges (ending in PSH), one that is interrupted by
    // another flow, a short segment in the middle, pure ACKs, both families.
    for (name, v4) in [("v4", true), ("v6", false)] {
        let first = tcp(v4, 1400, 0x10, 0);
        let mut s = raw(&first);
        for _ in 0..5 {
            s.extend_from_slice(&next(1400, false));
        }
        s.extend_from_slice(&next(600, true));
        s.extend_from_slice(&next(1400, false));
        write("gro_coalesce", &format!("burst_{name}"), &s);

        let mut s = raw(&first);
        s.extend_from_slice(&next(1400, false));
        s.extend_from_slice(&raw(&tcp(v4, 100, 0x12, 0)));
        s.extend_from_slice(&raw(&tcp(!v4, 1000, 0x10, 8)));
        s.extend_from_slice(&next(1000, false));
        s.extend_from_slice(&next(200, false));
        s.extend_from_slice(&next(1000, false));
        write("gro_coalesce", &format!("interrupted_{name}"), &s);
    }
    let mut s = raw(&tcp(false, 0, 0x10, 0));
    s.extend_from_slice(&raw(&tcp(true, 0, 0x10, 0)));
    s.extend_from_slice(&next(0, false));
    write("gro_coalesce", "pure_acks", &s);
}
