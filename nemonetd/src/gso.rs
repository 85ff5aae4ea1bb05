//! TUN offloads: the virtio-net header (`IFF_VNET_HDR`) and TCP segmentation in user space.
//!
//! With `TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)` the kernel hands the TUN
//! reader whole TCP super-packets (up to 64 KiB, one read instead of ~45) and packets whose
//! transport checksum is left for "the device" to finish. Being the device, we finish the
//! checksum ([`finish_checksum`]) and cut super-packets into MSS-sized segments
//! ([`segment_tcp`]) before encapsulating each (wireguard-go does the same; linux-notes: the
//! offloads are where TUN speed comes from). UDP segmentation offload is not enabled, so
//! the kernel segments UDP itself.
//!
//! The header is in native byte order (legacy virtio without `TUNSETVNETLE`).

use proto::checksum;

/// Size of `struct virtio_net_hdr` (no `num_buffers`): the TUN default.
pub const VNET_HDR_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: finish the checksum at `csum_start + csum_offset`.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN` bit: the flow uses ECN (CWR handled per segment anyway).
pub const GSO_ECN: u8 = 0x80;

/// `struct virtio_net_hdr`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `F_NEEDS_CSUM` or 0.
    pub flags: u8,
    /// `GSO_*` (with `GSO_ECN`).
    pub gso_type: u8,
    /// Length of the headers (unreliable from some paths; recomputed).
    pub hdr_len: u16,
    /// Segment payload size (MSS).
    pub gso_size: u16,
    /// Where the checksummed part starts.
    pub csum_start: u16,
    /// Where, from `csum_start`, the checksum field is.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Reads the header from the first [`VNET_HDR_LEN`] octets.
    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        (b.len() >= VNET_HDR_LEN).then(|| VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }
}

/// Why a packet could not be finished or segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GsoError {
    /// Offsets outside the packet, or headers that do not parse.
    #[error("malformed offload packet")]
    Malformed,
    /// A GSO type we did not ask for.
    #[error("unsupported GSO type {0}")]
    Unsupported(u8),
}

/// Finishes a partial checksum (`F_NEEDS_CSUM`): the field holds the pseudo-header sum; the
/// device sums from `csum_start` to the end and stores the complement.
pub fn finish_checksum(h: &VnetHdr, packet: &mut [u8]) -> Result<(), GsoError> {
    let start = usize::from(h.csum_start);
    let field = start + usize::from(h.csum_offset);
    if field + 2 > packet.len() {
        return Err(GsoError::Malformed);
    }
    let c = checksum::finish(checksum::sum(0, &packet[start..]));
    packet[field..field + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Cuts a TCP super-packet (IPv4 or IPv6 without extension headers) into segments of at
/// most `h.gso_size` payload octets, each written by `out(i)` into the buffer it returns
/// (at least headers + MSS long); returns the lengths. Per segment: IP length fields, IPv4
/// Identification + i and header checksum, TCP sequence number, FIN/PSH only on the last,
/// CWR only on the first, and a full TCP checksum.
pub fn segment_tcp<'a>(
    h: &VnetHdr,
    packet: &[u8],
    mut out: impl FnMut(usize) -> &'a mut [u8],
    lens: &mut Vec<usize>,
) -> Result<(), GsoError> {
    lens.clear();
    let mss = usize::from(h.gso_size);
    if mss == 0 || packet.is_empty() {
        return Err(GsoError::Malformed);
    }
    let v4 = match h.gso_type & !GSO_ECN {
        GSO_TCPV4 => true,
        GSO_TCPV6 => false,
        other => return Err(GsoError::Unsupported(other)),
    };
    let ip_len = if v4 {
        if packet[0] >> 4 != 4 || packet.len() < 20 {
            return Err(GsoError::Malformed);
        }
        usize::from(packet[0] & 0x0f) * 4
    } else {
        if packet[0] >> 4 != 6 || packet.len() < 40 || packet[6] != 6 {
            return Err(GsoError::Malformed);
        }
        40
    };
    if v4 && (ip_len < 20 || packet[9] != 6) {
        return Err(GsoError::Malformed);
    }
    if packet.len() < ip_len + 20 {
        return Err(GsoError::Malformed);
    }
    let tcp_len = usize::from(packet[ip_len + 12] >> 4) * 4;
    let hdrs = ip_len + tcp_len;
    if tcp_len < 20 || packet.len() < hdrs {
        return Err(GsoError::Malformed);
    }
    let payload = &packet[hdrs..];
    let seq0 = u32::from_be_bytes(packet[ip_len + 4..ip_len + 8].try_into().expect("4 octets"));
    let id0 = u16::from_be_bytes([packet[4], packet[5]]);
    let flags0 = packet[ip_len + 13];
    let n = payload.len().div_ceil(mss).max(1);
    for (i, chunk) in payload
        .chunks(mss)
        .chain(
            // A super-packet without payload (should not happen): pass it as one segment.
            std::iter::once(&payload[..0]).filter(|_| payload.is_empty()),
        )
        .enumerate()
    {
        let seg_len = hdrs + chunk.len();
        let seg = out(i);
        if seg.len() < seg_len {
            return Err(GsoError::Malformed);
        }
        let seg = &mut seg[..seg_len];
        seg[..hdrs].copy_from_slice(&packet[..hdrs]);
        seg[hdrs..].copy_from_slice(chunk);
        let tcp_seg_len = tcp_len + chunk.len();
        // Sequence number.
        let seq = seq0.wrapping_add((i * mss) as u32);
        seg[ip_len + 4..ip_len + 8].copy_from_slice(&seq.to_be_bytes());
        // Flags: FIN (0x01) and PSH (0x08) only on the last, CWR (0x80) only on the first.
        let mut flags = flags0;
        if i + 1 < n {
            flags &= !(0x01 | 0x08);
        }
        if i > 0 {
            flags &= !0x80;
        }
        seg[ip_len + 13] = flags;
        seg[ip_len + 16..ip_len + 18].fill(0);
        let pseudo = if v4 {
            let total = seg_len as u16;
            seg[2..4].copy_from_slice(&total.to_be_bytes());
            seg[4..6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
            seg[10..12].fill(0);
            let hc = checksum::ipv4_header(&seg[..ip_len]);
            seg[10..12].copy_from_slice(&hc.to_be_bytes());
            let src: [u8; 4] = seg[12..16].try_into().expect("4 octets");
            let dst: [u8; 4] = seg[16..20].try_into().expect("4 octets");
            checksum::pseudo_header_v4(&src.into(), &dst.into(), 6, tcp_seg_len as u16)
        } else {
            seg[4..6].copy_from_slice(&(tcp_seg_len as u16).to_be_bytes());
            let src: [u8; 16] = seg[8..24].try_into().expect("16 octets");
            let dst: [u8; 16] = seg[24..40].try_into().expect("16 octets");
            checksum::pseudo_header_v6(&src.into(), &dst.into(), 6, tcp_seg_len as u32)
        };
        let c = checksum::finish(checksum::sum(pseudo, &seg[ip_len..]));
        seg[ip_len + 16..ip_len + 18].copy_from_slice(&c.to_be_bytes());
        lens.push(seg_len);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn tcp(v4: bool, payload_len: usize, flags: u8) -> Vec<u8> {
        let ip_len = if v4 { 20 } else { 40 };
        let mut p = vec![0u8; ip_len + 20 + payload_len];
        if v4 {
            p[0] = 0x45;
            let total = p.len() as u16;
            p[2..4].copy_from_slice(&total.to_be_bytes());
            p[4..6].copy_from_slice(&0xfffeu16.to_be_bytes());
            p[8] = 64;
            p[9] = 6;
            p[12..16].copy_from_slice(&[198, 51, 100, 2]);
            p[16..20].copy_from_slice(&[203, 0, 113, 2]);
        } else {
            p[0] = 0x60;
            p[4..6].copy_from_slice(&((20 + payload_len) as u16).to_be_bytes());
            p[6] = 6;
            p[7] = 64;
            p[8..24].copy_from_slice(&"2001:db8:100::2".parse::<Ipv6Addr>().unwrap().octets());
            p[24..40].copy_from_slice(&"2001:db8:c::2".parse::<Ipv6Addr>().unwrap().octets());
        }
        let t = ip_len;
        p[t..t + 2].copy_from_slice(&40000u16.to_be_bytes());
        p[t + 2..t + 4].copy_from_slice(&5201u16.to_be_bytes());
        p[t + 4..t + 8].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        p[t + 12] = 5 << 4;
        p[t + 13] = flags;
        for (i, b) in p[t + 20..].iter_mut().enumerate() {
            *b = i as u8;
        }
        p
    }

    fn tcp_checksum_ok(seg: &[u8], v4: bool) -> bool {
        let ip_len = if v4 { 20 } else { 40 };
        let l4 = &seg[ip_len..];
        let pseudo = if v4 {
            let s: [u8; 4] = seg[12..16].try_into().unwrap();
            let d: [u8; 4] = seg[16..20].try_into().unwrap();
            checksum::pseudo_header_v4(&Ipv4Addr::from(s), &Ipv4Addr::from(d), 6, l4.len() as u16)
        } else {
            let s: [u8; 16] = seg[8..24].try_into().unwrap();
            let d: [u8; 16] = seg[24..40].try_into().unwrap();
            checksum::pseudo_header_v6(&Ipv6Addr::from(s), &Ipv6Addr::from(d), 6, l4.len() as u32)
        };
        checksum::finish(checksum::sum(pseudo, l4)) == 0
    }

    #[test]
    fn segments_carry_the_payload_in_order_with_valid_headers() {
        for v4 in [true, false] {
            let ip_len = if v4 { 20 } else { 40 };
            let p = tcp(v4, 3000, 0x18 | 0x01 | 0x80); // PSH ACK FIN CWR
            let h = VnetHdr {
                gso_type: if v4 { GSO_TCPV4 } else { GSO_TCPV6 },
                gso_size: 1400,
                ..Default::default()
            };
            let mut bufs = vec![vec![0u8; 2000]; 4];
            let mut it = bufs.iter_mut();
            let mut lens = Vec::new();
            segment_tcp(&h, &p, |_| it.next().unwrap().as_mut_slice(), &mut lens).unwrap();
            assert_eq!(
                lens,
                vec![ip_len + 20 + 1400, ip_len + 20 + 1400, ip_len + 20 + 200]
            );
            let mut payload = Vec::new();
            for (i, (b, &len)) in bufs.iter().zip(&lens).enumerate() {
                let seg = &b[..len];
                assert!(tcp_checksum_ok(seg, v4), "segment {i} checksum");
                if v4 {
                    assert_eq!(checksum::ipv4_header(&seg[..20]), 0, "IPv4 header checksum");
                    assert_eq!(u16::from_be_bytes([seg[2], seg[3]]) as usize, len);
                    assert_eq!(
                        u16::from_be_bytes([seg[4], seg[5]]),
                        0xfffeu16.wrapping_add(i as u16)
                    );
                } else {
                    assert_eq!(u16::from_be_bytes([seg[4], seg[5]]) as usize, len - 40);
                }
                let seq = u32::from_be_bytes(seg[ip_len + 4..ip_len + 8].try_into().unwrap());
                assert_eq!(seq, 0xffff_fff0u32.wrapping_add(1400 * i as u32));
                let flags = seg[ip_len + 13];
                assert_eq!(flags & 0x09 != 0, i == 2, "FIN/PSH only last");
                assert_eq!(flags & 0x80 != 0, i == 0, "CWR only first");
                assert!(flags & 0x10 != 0, "ACK everywhere");
                payload.extend_from_slice(&seg[ip_len + 20..]);
            }
            assert_eq!(payload, p[ip_len + 20..]);
        }
    }

    #[test]
    fn partial_checksums_are_finished() {
        let mut p = tcp(false, 100, 0x10);
        // What the kernel leaves: the pseudo-header sum, not complemented.
        let s: [u8; 16] = p[8..24].try_into().unwrap();
        let d: [u8; 16] = p[24..40].try_into().unwrap();
        let pseudo = checksum::pseudo_header_v6(&Ipv6Addr::from(s), &Ipv6Addr::from(d), 6, 120);
        let folded = !checksum::finish(pseudo);
        p[56..58].copy_from_slice(&folded.to_be_bytes());
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 40,
            csum_offset: 16,
            ..Default::default()
        };
        finish_checksum(&h, &mut p).unwrap();
        assert!(tcp_checksum_ok(&p, false));
        let bad = VnetHdr {
            csum_start: 200,
            ..h
        };
        assert_eq!(finish_checksum(&bad, &mut p), Err(GsoError::Malformed));
    }

    #[test]
    fn header_parses_in_native_order() {
        let mut b = [0u8; 10];
        b[0] = F_NEEDS_CSUM;
        b[1] = GSO_TCPV6;
        b[4..6].copy_from_slice(&1400u16.to_ne_bytes());
        let h = VnetHdr::parse(&b).unwrap();
        assert_eq!((h.flags, h.gso_type, h.gso_size), (1, 4, 1400));
        assert!(VnetHdr::parse(&b[..9]).is_none());
    }
}
