//! The bodies of nemonetd's fuzz targets (`fuzz/` at the workspace root), kept in the
//! crate so the seed corpora also run as ordinary tests (`tests/fuzz_corpus.rs`). Each
//! panics only on a bug: a panic in the offload code, or a broken invariant.

use std::net::{Ipv4Addr, Ipv6Addr};

use proto::checksum;

use crate::gso::{
    Coalescer, F_NEEDS_CSUM, GSO_ECN, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VNET_HDR_LEN, VnetHdr,
    finish_checksum, segment_tcp, segment_udp,
};

/// What the TUN reader gets: a virtio-net header and a packet. [`finish_checksum`] and,
/// for a TCP GSO type, [`segment_tcp`]; for UDP (what a packet socket hands over merged),
/// [`segment_udp`].
///
/// Invariants: a finished checksum verifies against the sum the field held, and nothing
/// else changes; segments carry the payload in order, each with correct lengths, IPv4
/// header checksum and TCP checksum, consecutive sequence numbers, FIN/PSH only on the
/// last and CWR only on the first; and when the coalescer takes all the segments back, it
/// gives the super-packet again.
pub fn gso_segment(data: &[u8]) {
    let Some(h) = VnetHdr::parse(data) else {
        return;
    };
    let packet = &data[VNET_HDR_LEN..];

    let mut p = packet.to_vec();
    if finish_checksum(&h, &mut p).is_ok() {
        let start = usize::from(h.csum_start);
        let field = start + usize::from(h.csum_offset);
        assert_eq!(p[..field], packet[..field]);
        assert_eq!(p[field + 2..], packet[field + 2..]);
        if h.csum_offset % 2 == 0 {
            let held = u16::from_be_bytes([packet[field], packet[field + 1]]);
            assert_eq!(
                checksum::finish(checksum::sum(u32::from(held), &p[start..])),
                0,
                "finished checksum does not verify"
            );
        }
    }

    if h.gso_type & !GSO_ECN == GSO_UDP_L4 {
        return udp_datagrams(&h, packet);
    }
    let Some(segments) = segment(&h, packet) else {
        return;
    };
    let v4 = h.gso_type & !GSO_ECN == GSO_TCPV4;
    let (ip_len, tcp_len) = header_lens(packet, v4);
    let hdrs = ip_len + tcp_len;
    let payload = &packet[hdrs..];
    let mss = usize::from(h.gso_size);
    assert_eq!(segments.len(), payload.len().div_ceil(mss).max(1));
    let seq0 = u32::from_be_bytes(packet[ip_len + 4..ip_len + 8].try_into().unwrap());
    let mut carried = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        assert!(seg.len() > hdrs && seg.len() - hdrs <= mss || payload.is_empty());
        check_segment(seg, v4, ip_len, 6);
        let seq = u32::from_be_bytes(seg[ip_len + 4..ip_len + 8].try_into().unwrap());
        assert_eq!(
            seq,
            seq0.wrapping_add(carried.len() as u32),
            "sequence number"
        );
        let flags = seg[ip_len + 13];
        let last = i + 1 == segments.len();
        if !last {
            assert_eq!(flags & 0x09, 0, "FIN or PSH before the last segment");
        }
        if i > 0 {
            assert_eq!(flags & 0x80, 0, "CWR after the first segment");
        }
        carried.extend_from_slice(&seg[hdrs..]);
    }
    assert_eq!(carried, payload, "segments do not carry the payload");

    // Coalescing undoes segmentation, when the coalescer takes every segment.
    let mut gro = Coalescer::new();
    if segments.len() > 1 && segments.iter().all(|s| gro.push(s)) {
        let out = gro.take().expect("segments gathered").to_vec();
        let merged = &out[VNET_HDR_LEN..];
        assert_eq!(merged.len(), packet.len());
        // Everything but the length and checksum fields (recomputed), the flags (FIN
        // refused, PSH only from the last) and, for IPv6, the payload length.
        let mut a = merged.to_vec();
        let mut b = packet.to_vec();
        for x in [&mut a, &mut b] {
            if v4 {
                x[2..4].fill(0);
                x[10..12].fill(0);
            } else {
                x[4..6].fill(0);
            }
            x[ip_len + 13] &= !(0x08 | 0x80);
            x[ip_len + 16..ip_len + 18].fill(0);
        }
        assert_eq!(a, b, "coalescing did not give the super-packet back");
    }
}

/// TCP receive coalescing as the tunnel receiver drives it: each decapsulated packet is
/// pushed; when it does not join, what is gathered is taken and written, and the packet
/// starts a new gathering or goes out alone. Packets come raw from the input, or as the
/// next segment of the last raw packet's flow (so that merges are reachable), optionally
/// with one octet changed.
///
/// Invariants: a single gathered packet comes out untouched with an empty header; a merged
/// one, after the kernel's step (finishing the checksum, [`finish_checksum`]) and
/// segmentation ([`segment_tcp`]) with the header it got, gives back exactly the packets
/// that went in, but for the IPv4 Identification.
pub fn gro_coalesce(data: &[u8]) {
    let mut s = data;
    let mut gro = Coalescer::new();
    let mut gathered: Vec<Vec<u8>> = Vec::new();
    let mut flow: Option<Vec<u8>> = None;
    while let Some((&op, rest)) = s.split_first() {
        s = rest;
        let len = usize::from(u16::from_le_bytes([byte(&mut s), byte(&mut s)]));
        let pkt = if op & 1 == 0 {
            let (p, rest) = s.split_at(len.min(s.len()));
            s = rest;
            flow = Some(p.to_vec());
            p.to_vec()
        } else {
            let Some(prev) = flow.as_mut() else {
                continue;
            };
            let Some(mut next) = next_segment(prev, len % 2048, op & 2 != 0) else {
                continue;
            };
            *prev = next.clone();
            if op & 4 != 0 {
                let at = usize::from(byte(&mut s)) % next.len();
                next[at] ^= byte(&mut s) | 1;
            }
            next
        };
        if gro.push(&pkt) {
            gathered.push(pkt);
            continue;
        }
        flush(&mut gro, &mut gathered);
        if gro.push(&pkt) {
            gathered.push(pkt);
        }
    }
    flush(&mut gro, &mut gathered);
}

fn byte(s: &mut &[u8]) -> u8 {
    match s.split_first() {
        Some((&b, rest)) => {
            *s = rest;
            b
        }
        None => 0,
    }
}

/// The segment after `prev` in its TCP flow: same headers, `len` octets of payload, the
/// sequence number after `prev`'s payload, PSH if `push`; lengths and checksums right.
fn next_segment(prev: &[u8], len: usize, push: bool) -> Option<Vec<u8>> {
    let v4 = match prev.first()? >> 4 {
        4 => true,
        6 => false,
        _ => return None,
    };
    let ip_len = if v4 {
        usize::from(prev[0] & 0x0f) * 4
    } else {
        40
    };
    let tcp_len = usize::from(*prev.get(ip_len + 12)? >> 4) * 4;
    let hdrs = ip_len + tcp_len;
    if ip_len < 20 || tcp_len < 20 || prev.len() < hdrs || hdrs + len > 65535 {
        return None;
    }
    let seq = u32::from_be_bytes(prev[ip_len + 4..ip_len + 8].try_into().unwrap());
    let mut p = prev[..hdrs].to_vec();
    p.extend((0..len).map(|i| (i as u8).wrapping_mul(7)));
    let seq = seq.wrapping_add((prev.len() - hdrs) as u32);
    p[ip_len + 4..ip_len + 8].copy_from_slice(&seq.to_be_bytes());
    p[ip_len + 13] = (p[ip_len + 13] & !0x08) | if push { 0x08 } else { 0 };
    fix_lengths_and_checksums(&mut p, v4, ip_len);
    Some(p)
}

fn fix_lengths_and_checksums(p: &mut [u8], v4: bool, ip_len: usize) {
    let l4 = p.len() - ip_len;
    if v4 {
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        let ident = u16::from_be_bytes([p[4], p[5]]).wrapping_add(1);
        p[4..6].copy_from_slice(&ident.to_be_bytes());
        p[10..12].fill(0);
        let c = checksum::ipv4_header(&p[..ip_len]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        p[4..6].copy_from_slice(&(l4 as u16).to_be_bytes());
    }
    p[ip_len + 16..ip_len + 18].fill(0);
    let c = checksum::finish(checksum::sum(pseudo(p, v4, 6, l4), &p[ip_len..]));
    p[ip_len + 16..ip_len + 18].copy_from_slice(&c.to_be_bytes());
}

fn pseudo(p: &[u8], v4: bool, proto: u8, l4: usize) -> u32 {
    if v4 {
        let s: [u8; 4] = p[12..16].try_into().unwrap();
        let d: [u8; 4] = p[16..20].try_into().unwrap();
        checksum::pseudo_header_v4(&Ipv4Addr::from(s), &Ipv4Addr::from(d), proto, l4 as u16)
    } else {
        let s: [u8; 16] = p[8..24].try_into().unwrap();
        let d: [u8; 16] = p[24..40].try_into().unwrap();
        checksum::pseudo_header_v6(&Ipv6Addr::from(s), &Ipv6Addr::from(d), proto, l4 as u32)
    }
}

/// Takes what the coalescer gathered and checks it against the packets pushed.
fn flush(gro: &mut Coalescer, gathered: &mut Vec<Vec<u8>>) {
    let Some(out) = gro.take().map(<[u8]>::to_vec) else {
        assert!(gathered.is_empty(), "pushed packets lost");
        return;
    };
    assert!(gro.is_empty());
    let pushed = std::mem::take(gathered);
    let h = VnetHdr::parse(&out).expect("a header");
    let mut merged = out[VNET_HDR_LEN..].to_vec();
    if let [one] = &pushed[..] {
        assert_eq!(h, VnetHdr::default(), "a single packet with offloads");
        assert_eq!(&merged, one, "a single packet changed");
        return;
    }
    let v4 = merged[0] >> 4 == 4;
    assert_eq!(h.flags, F_NEEDS_CSUM);
    assert_eq!(h.gso_type, if v4 { GSO_TCPV4 } else { GSO_TCPV6 });
    let total: usize = pushed
        .iter()
        .map(|p| p.len() - usize::from(h.hdr_len))
        .sum();
    assert_eq!(
        merged.len(),
        usize::from(h.hdr_len) + total,
        "payload lost or added"
    );
    // The kernel's part: finish the checksum, then cut as a NIC's TSO would.
    finish_checksum(&h, &mut merged).expect("offsets inside the packet");
    let segments = segment(&h, &merged).expect("a coalesced packet segments");
    assert_eq!(
        segments.len(),
        pushed.len(),
        "segments differ from the pushed packets"
    );
    for (i, (seg, orig)) in segments.iter().zip(&pushed).enumerate() {
        let (mut a, mut b) = (seg.clone(), orig.clone());
        if v4 {
            // Identification is renumbered; the header checksum follows it.
            for x in [&mut a, &mut b] {
                x[4..6].fill(0);
                x[10..12].fill(0);
            }
        }
        assert_eq!(
            a,
            b,
            "segment {i} of {} differs from what was pushed",
            pushed.len()
        );
    }
}

/// IP and TCP header lengths of a packet `segment_tcp` accepted.
fn header_lens(p: &[u8], v4: bool) -> (usize, usize) {
    let ip_len = if v4 { usize::from(p[0] & 0x0f) * 4 } else { 40 };
    (ip_len, usize::from(p[ip_len + 12] >> 4) * 4)
}

/// [`segment_tcp`] into buffers as long as a segment can be: the packet, or 120 octets of
/// headers (IPv4 and TCP with all their options) and one MSS.
fn segment(h: &VnetHdr, packet: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mss = usize::from(h.gso_size.max(1));
    let size = packet.len().min(120 + mss).max(1);
    let n = packet.len().div_ceil(mss) + 1;
    let mut bufs = vec![0u8; size * n];
    let mut lens = Vec::new();
    {
        let mut chunks = bufs.chunks_mut(size);
        segment_tcp(h, packet, |_| chunks.next().unwrap_or_default(), &mut lens).ok()?;
    }
    Some(
        lens.iter()
            .enumerate()
            .map(|(i, &l)| bufs[i * size..i * size + l].to_vec())
            .collect(),
    )
}

/// [`segment_udp`]'s invariants: datagrams of `gso_size` payload octets (only the last
/// may carry fewer), each with right IP lengths, IPv4 header checksum, UDP length and UDP
/// checksum, carrying the payload in order behind the super-packet's headers.
fn udp_datagrams(h: &VnetHdr, packet: &[u8]) {
    let size = usize::from(h.gso_size.max(1));
    // IPv4 with all its options and UDP: 68 octets of headers.
    let buf_len = packet.len().min(68 + size).max(1);
    let mut bufs = vec![0u8; buf_len * (packet.len().div_ceil(size) + 1)];
    let mut lens = Vec::new();
    {
        let mut chunks = bufs.chunks_mut(buf_len);
        if segment_udp(h, packet, |_| chunks.next().unwrap_or_default(), &mut lens).is_err() {
            return;
        }
    }
    let v4 = packet[0] >> 4 == 4;
    let ip_len = if v4 {
        usize::from(packet[0] & 0x0f) * 4
    } else {
        40
    };
    let hdrs = ip_len + 8;
    let mut carried = Vec::new();
    for (i, &len) in lens.iter().enumerate() {
        let d = &bufs[i * buf_len..i * buf_len + len];
        assert!(
            len > hdrs && len - hdrs <= size,
            "datagram {i}: {len} octets"
        );
        if i + 1 < lens.len() {
            assert_eq!(len - hdrs, size, "a short datagram before the last");
        }
        let udp_len = u16::from_be_bytes([d[ip_len + 4], d[ip_len + 5]]);
        assert_eq!(usize::from(udp_len), len - ip_len, "UDP length");
        check_segment(d, v4, ip_len, 17);
        let addrs = if v4 { 12..20 } else { 8..40 };
        assert_eq!(d[addrs.clone()], packet[addrs], "addresses");
        assert_eq!(d[ip_len..ip_len + 4], packet[ip_len..ip_len + 4], "ports");
        carried.extend_from_slice(&d[hdrs..]);
    }
    assert_eq!(
        carried,
        packet[hdrs..],
        "datagrams do not carry the payload"
    );
}

/// A segment's IP length field, IPv4 header checksum and TCP checksum are right.
fn check_segment(seg: &[u8], v4: bool, ip_len: usize, proto: u8) {
    let l4 = seg.len() - ip_len;
    if v4 {
        assert_eq!(usize::from(u16::from_be_bytes([seg[2], seg[3]])), seg.len());
        assert_eq!(
            checksum::ipv4_header(&seg[..ip_len]),
            0,
            "IPv4 header checksum"
        );
    } else {
        assert_eq!(usize::from(u16::from_be_bytes([seg[4], seg[5]])), l4);
    }
    let c = checksum::finish(checksum::sum(pseudo(seg, v4, proto, l4), &seg[ip_len..]));
    assert_eq!(c, 0, "transport checksum of a segment");
}
