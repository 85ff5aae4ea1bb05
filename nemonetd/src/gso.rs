//! TUN offloads: the virtio-net header (`IFF_VNET_HDR`) and TCP segmentation in user space.
//!
//! With `TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)` the kernel hands the TUN
//! reader whole TCP super-packets (up to 64 KiB, one read instead of ~45) and packets whose
//! transport checksum is left for "the device" to finish. Being the device, we finish the
//! checksum ([`finish_checksum`]) and cut super-packets into MSS-sized segments
//! ([`segment_tcp`]) before encapsulating each (wireguard-go does the same; docs/notes.md §2: the
//! offloads are where TUN speed comes from). UDP segmentation offload is not enabled, so
//! the kernel segments UDP itself; the UDP super-packets a packet socket reads (a card's
//! GRO merged them) are cut here ([`segment_udp`]).
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
/// `VIRTIO_NET_HDR_GSO_UDP_L4`: UDP datagrams of `gso_size` payload octets each.
pub const GSO_UDP_L4: u8 = 5;
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

    /// Writes the header into the first [`VNET_HDR_LEN`] octets of `b`.
    pub fn write(&self, b: &mut [u8]) {
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
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

/// Offset of the checksum in a UDP header.
const UDP_CSUM_OFFSET: u16 = 6;

/// Finishes a partial checksum (`F_NEEDS_CSUM`): the field holds the pseudo-header sum; the
/// device sums from `csum_start` to the end and stores the complement.
pub fn finish_checksum(h: &VnetHdr, packet: &mut [u8]) -> Result<(), GsoError> {
    let start = usize::from(h.csum_start);
    let field = start + usize::from(h.csum_offset);
    if field + 2 > packet.len() {
        return Err(GsoError::Malformed);
    }
    transport_checksum(&mut packet[start..], h.csum_offset.into(), 0);
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
    let ip_len = ip_header_len(packet, v4, IPPROTO_TCP)?;
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
        let seg = copy_segment(packet, hdrs, chunk, out(i))?;
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
        let pseudo = ip_lengths(seg, v4, ip_len, i, IPPROTO_TCP);
        seg[ip_len + 16..ip_len + 18].fill(0);
        transport_checksum(&mut seg[ip_len..], 16, pseudo);
        lens.push(seg.len());
    }
    Ok(())
}

/// Cuts a UDP super-packet into its datagrams, as [`segment_tcp`] cuts TCP: what a card's
/// GRO merged from one flow's datagrams of equal size when the operator turned on
/// `rx-udp-gro-forwarding` or `rx-gro-list` (a packet socket names it
/// `VIRTIO_NET_HDR_GSO_UDP_L4`, family unsaid: the version nibble tells). Each datagram
/// carries `h.gso_size` payload octets (the last may carry fewer), with its IP length
/// fields, IPv4 Identification + i and header checksum, UDP length and a full UDP checksum
/// (all ones for a computed zero, RFC 768, RFC 8200 §8.1).
pub fn segment_udp<'a>(
    h: &VnetHdr,
    packet: &[u8],
    mut out: impl FnMut(usize) -> &'a mut [u8],
    lens: &mut Vec<usize>,
) -> Result<(), GsoError> {
    lens.clear();
    let size = usize::from(h.gso_size);
    if h.gso_type & !GSO_ECN != GSO_UDP_L4 {
        return Err(GsoError::Unsupported(h.gso_type));
    }
    let v4 = match packet.first().map(|b| b >> 4) {
        Some(4) => true,
        Some(6) => false,
        _ => return Err(GsoError::Malformed),
    };
    let ip_len = ip_header_len(packet, v4, IPPROTO_UDP)?;
    let hdrs = ip_len + 8;
    if size == 0 || packet.len() <= hdrs {
        return Err(GsoError::Malformed);
    }
    for (i, chunk) in packet[hdrs..].chunks(size).enumerate() {
        let seg = copy_segment(packet, hdrs, chunk, out(i))?;
        let udp_len = 8 + chunk.len();
        seg[ip_len + 4..ip_len + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        let pseudo = ip_lengths(seg, v4, ip_len, i, IPPROTO_UDP);
        seg[ip_len + 6..ip_len + 8].fill(0);
        transport_checksum(&mut seg[ip_len..], UDP_CSUM_OFFSET.into(), pseudo);
        lens.push(seg.len());
    }
    Ok(())
}

/// [`segment_tcp`] or [`segment_udp`], as the header's GSO type says.
pub fn segment<'a>(
    h: &VnetHdr,
    packet: &[u8],
    out: impl FnMut(usize) -> &'a mut [u8],
    lens: &mut Vec<usize>,
) -> Result<(), GsoError> {
    if h.gso_type & !GSO_ECN == GSO_UDP_L4 {
        segment_udp(h, packet, out, lens)
    } else {
        segment_tcp(h, packet, out, lens)
    }
}

/// TCP's protocol number, in a super-packet's IP header.
pub const IPPROTO_TCP: u8 = 6;
/// UDP's protocol number, in a super-packet's IP header.
pub const IPPROTO_UDP: u8 = 17;

/// The length of the IP header a super-packet starts with: IPv4 (options allowed) or
/// IPv6 without extension headers, carrying `proto`.
pub fn ip_header_len(packet: &[u8], v4: bool, proto: u8) -> Result<usize, GsoError> {
    let (version, len, next) = if v4 {
        let len = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
        (4, len, 9)
    } else {
        (6, 40, 6)
    };
    if packet.len() < len.max(20) || packet[0] >> 4 != version || len < 20 || packet[next] != proto
    {
        return Err(GsoError::Malformed);
    }
    Ok(len)
}

/// Copies a segment's headers (`packet[..hdrs]`) and payload `chunk` into `buf`; the
/// segment, or `Malformed` when the buffer is too short.
fn copy_segment<'a>(
    packet: &[u8],
    hdrs: usize,
    chunk: &[u8],
    buf: &'a mut [u8],
) -> Result<&'a mut [u8], GsoError> {
    let len = hdrs + chunk.len();
    let seg = buf.get_mut(..len).ok_or(GsoError::Malformed)?;
    seg[..hdrs].copy_from_slice(&packet[..hdrs]);
    seg[hdrs..].copy_from_slice(chunk);
    Ok(seg)
}

/// Leaves a super-packet's transport checksum partial, as a device's segmentation expects
/// it (`F_NEEDS_CSUM` at `h.csum_start`): the pseudo-header's sum over the whole length.
pub fn partial_checksum(h: &VnetHdr, packet: &mut [u8]) -> Result<(), GsoError> {
    let start = usize::from(h.csum_start);
    let field = start + usize::from(h.csum_offset);
    let v4 = packet.first().is_some_and(|b| b >> 4 == 4);
    if field + 2 > packet.len() || start < if v4 { 20 } else { 40 } {
        return Err(GsoError::Malformed);
    }
    let proto = if h.csum_offset == UDP_CSUM_OFFSET {
        IPPROTO_UDP
    } else {
        IPPROTO_TCP
    };
    let sum = pseudo_header(packet, v4, proto, packet.len() - start);
    packet[field..field + 2].copy_from_slice(&(!checksum::finish(sum)).to_be_bytes());
    Ok(())
}

/// The pseudo-header sum of a packet's transport checksum, for `l4_len` octets of `proto`.
fn pseudo_header(packet: &[u8], v4: bool, proto: u8, l4_len: usize) -> u32 {
    if v4 {
        let src: [u8; 4] = packet[12..16].try_into().expect("4 octets");
        let dst: [u8; 4] = packet[16..20].try_into().expect("4 octets");
        checksum::pseudo_header_v4(&src.into(), &dst.into(), proto, l4_len as u16)
    } else {
        let src: [u8; 16] = packet[8..24].try_into().expect("16 octets");
        let dst: [u8; 16] = packet[24..40].try_into().expect("16 octets");
        checksum::pseudo_header_v6(&src.into(), &dst.into(), proto, l4_len as u32)
    }
}

/// Writes the checksum of the transport header `l4` starts with, at octet `at`: over all
/// of `l4` as it stands (what its checksum field holds too) and `pseudo`. A UDP checksum
/// computed as zero goes out as all ones (RFC 768; zero means "none", invalid over IPv6,
/// RFC 8200 §8.1).
fn transport_checksum(l4: &mut [u8], at: usize, pseudo: u32) {
    let c = match checksum::finish(checksum::sum(pseudo, l4)) {
        0 if at == usize::from(UDP_CSUM_OFFSET) => 0xffff,
        c => c,
    };
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Writes segment `i`'s IP length field and, for IPv4, its Identification (the
/// super-packet's + i, as the kernel's segmentation numbers them) and header checksum;
/// returns the pseudo-header sum of its transport checksum.
fn ip_lengths(seg: &mut [u8], v4: bool, ip_len: usize, i: usize, proto: u8) -> u32 {
    let total = seg.len();
    let l4_len = total - ip_len;
    if v4 {
        seg[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let id = u16::from_be_bytes([seg[4], seg[5]]).wrapping_add(i as u16);
        seg[4..6].copy_from_slice(&id.to_be_bytes());
        seg[10..12].fill(0);
        let hc = checksum::ipv4_header(&seg[..ip_len]);
        seg[10..12].copy_from_slice(&hc.to_be_bytes());
    } else {
        seg[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    }
    pseudo_header(seg, v4, proto, l4_len)
}

/// TCP receive coalescing towards the TUN (the GRO half of the offloads): consecutive
/// full-sized segments of one TCP flow, decapsulated from one receive batch, become one
/// super-packet written with a virtio-net GSO header, so the kernel forwards one packet
/// instead of ~45. Only plain data segments (flags ACK, PSH allowed on the last) with
/// identical IP and TCP headers (options included, as Linux GRO requires) are merged;
/// anything else is written as it came.
#[derive(Debug)]
pub struct Coalescer {
    /// `VNET_HDR_LEN` octets of header, then the packet being gathered.
    buf: Vec<u8>,
    len: usize,
    count: usize,
    v4: bool,
    ip_len: usize,
    tcp_len: usize,
    seg_size: usize,
    next_seq: u32,
    last_full: bool,
}

impl Default for Coalescer {
    fn default() -> Self {
        Self::new()
    }
}

const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;

impl Coalescer {
    /// An empty coalescer with room for a 64 KiB packet.
    pub fn new() -> Self {
        Coalescer {
            buf: vec![0u8; VNET_HDR_LEN + 65535],
            len: 0,
            count: 0,
            v4: false,
            ip_len: 0,
            tcp_len: 0,
            seg_size: 0,
            next_seq: 0,
            last_full: false,
        }
    }

    /// Whether nothing is gathered.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// IP and TCP header lengths of a mergeable TCP data segment, and its flags.
    fn tcp_segment(pkt: &[u8]) -> Option<(bool, usize, usize, u8)> {
        let (v4, ip_len) = match pkt.first()? >> 4 {
            4 if pkt.len() >= 20
                && pkt[0] & 0x0f == 5
                && pkt[9] == 6
                // DF only: no MF, no offset.
                && u16::from_be_bytes([pkt[6], pkt[7]]) & 0x3fff == 0
                && usize::from(u16::from_be_bytes([pkt[2], pkt[3]])) == pkt.len() =>
            {
                (true, 20)
            }
            // At most 65535 octets, like IPv4: what the gathering buffer holds.
            6 if pkt.len() >= 40
                && pkt.len() <= 65535
                && pkt[6] == 6
                && usize::from(u16::from_be_bytes([pkt[4], pkt[5]])) + 40 == pkt.len() =>
            {
                (false, 40)
            }
            _ => return None,
        };
        let tcp_len = usize::from(*pkt.get(ip_len + 12)? >> 4) * 4;
        if tcp_len < 20 || pkt.len() <= ip_len + tcp_len {
            return None; // no payload: nothing to gain (pure ACKs)
        }
        let flags = pkt[ip_len + 13];
        if flags & !TCP_PSH != TCP_ACK || pkt[ip_len + 18..ip_len + 20] != [0, 0] {
            return None;
        }
        // Only segments whose checksums verify, as Linux GRO does (inet_gro_receive,
        // tcp_gro_receive): a merged packet goes to the kernel with its TCP checksum left
        // partial, to be completed over whatever it carries, so a segment damaged in the
        // tunnel (IP-in-IPv6 carries no payload checksum) would come out looking intact.
        if v4 && checksum::ipv4_header(&pkt[..20]) != 0 {
            return None;
        }
        let l4 = pkt.len() - ip_len;
        let pseudo = if v4 {
            let s: [u8; 4] = pkt[12..16].try_into().expect("4");
            let d: [u8; 4] = pkt[16..20].try_into().expect("4");
            checksum::pseudo_header_v4(&s.into(), &d.into(), 6, l4 as u16)
        } else {
            let s: [u8; 16] = pkt[8..24].try_into().expect("16");
            let d: [u8; 16] = pkt[24..40].try_into().expect("16");
            checksum::pseudo_header_v6(&s.into(), &d.into(), 6, l4 as u32)
        };
        if checksum::finish(checksum::sum(pseudo, &pkt[ip_len..])) != 0 {
            return None;
        }
        Some((v4, ip_len, tcp_len, flags))
    }

    /// Appends `pkt` if it continues what is gathered (or starts gathering when empty);
    /// `false` leaves the coalescer unchanged: flush it and write `pkt` yourself.
    pub fn push(&mut self, pkt: &[u8]) -> bool {
        let Some((v4, ip_len, tcp_len, flags)) = Self::tcp_segment(pkt) else {
            return false;
        };
        let hdrs = ip_len + tcp_len;
        let plen = pkt.len() - hdrs;
        let seq = u32::from_be_bytes(pkt[ip_len + 4..ip_len + 8].try_into().expect("4"));
        if self.count == 0 {
            if flags & TCP_PSH != 0 {
                return false; // ends a burst: nothing can follow it
            }
            self.buf[VNET_HDR_LEN..VNET_HDR_LEN + pkt.len()].copy_from_slice(pkt);
            (self.len, self.count, self.v4, self.ip_len, self.tcp_len) =
                (pkt.len(), 1, v4, ip_len, tcp_len);
            (self.seg_size, self.next_seq, self.last_full) =
                (plen, seq.wrapping_add(plen as u32), true);
            return true;
        }
        let head = &self.buf[VNET_HDR_LEN..VNET_HDR_LEN + self.len];
        let same_ip = if v4 {
            // Version/IHL, TOS; flags+offset, TTL, protocol; addresses.
            self.v4
                && head[..2] == pkt[..2]
                && head[6..10] == pkt[6..10]
                && head[12..20] == pkt[12..20]
        } else {
            // Version, traffic class, flow label; next header, hop limit; addresses.
            !self.v4 && head[..4] == pkt[..4] && head[6..40] == pkt[6..40]
        };
        let t = ip_len;
        let same_tcp = tcp_len == self.tcp_len
            // Ports; acknowledgement, data offset; window; options.
            && head[t..t + 4] == pkt[t..t + 4]
            && head[t + 8..t + 13] == pkt[t + 8..t + 13]
            && head[t + 14..t + 16] == pkt[t + 14..t + 16]
            && head[t + 20..t + tcp_len] == pkt[t + 20..t + tcp_len];
        if !same_ip
            || !same_tcp
            || seq != self.next_seq
            || !self.last_full
            || plen > self.seg_size
            || head[t + 13] & TCP_PSH != 0
            || self.len + plen > 65535
        {
            return false;
        }
        let at = VNET_HDR_LEN + self.len;
        self.buf[at..at + plen].copy_from_slice(&pkt[hdrs..]);
        self.buf[VNET_HDR_LEN + t + 13] |= flags & TCP_PSH;
        self.len += plen;
        self.count += 1;
        self.next_seq = seq.wrapping_add(plen as u32);
        self.last_full = plen == self.seg_size;
        true
    }

    /// The gathered packet with its virtio-net header, ready for the TUN; empties the
    /// coalescer. A single segment goes out untouched (GSO none, checksum complete); a
    /// merged one with GSO TCPv4/TCPv6, its lengths fixed and the TCP checksum left partial
    /// (pseudo-header sum) for the kernel, as a NIC's GRO would hand it over.
    pub fn take(&mut self) -> Option<&[u8]> {
        if self.count == 0 {
            return None;
        }
        let (ip_len, len) = (self.ip_len, self.len);
        let mut h = VnetHdr::default();
        if self.count > 1 {
            let p = &mut self.buf[VNET_HDR_LEN..VNET_HDR_LEN + len];
            let tcp_total = len - ip_len;
            let pseudo = if self.v4 {
                p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                p[10..12].fill(0);
                let c = checksum::ipv4_header(&p[..20]);
                p[10..12].copy_from_slice(&c.to_be_bytes());
                let s: [u8; 4] = p[12..16].try_into().expect("4");
                let d: [u8; 4] = p[16..20].try_into().expect("4");
                checksum::pseudo_header_v4(&s.into(), &d.into(), 6, tcp_total as u16)
            } else {
                p[4..6].copy_from_slice(&(tcp_total as u16).to_be_bytes());
                let s: [u8; 16] = p[8..24].try_into().expect("16");
                let d: [u8; 16] = p[24..40].try_into().expect("16");
                checksum::pseudo_header_v6(&s.into(), &d.into(), 6, tcp_total as u32)
            };
            p[ip_len + 16..ip_len + 18].copy_from_slice(&(!checksum::finish(pseudo)).to_be_bytes());
            h = VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: if self.v4 { GSO_TCPV4 } else { GSO_TCPV6 },
                hdr_len: (ip_len + self.tcp_len) as u16,
                gso_size: self.seg_size as u16,
                csum_start: ip_len as u16,
                csum_offset: 16,
            };
        }
        h.write(&mut self.buf);
        self.count = 0;
        Some(&self.buf[..VNET_HDR_LEN + len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// An IPv4 or IPv6 header for `l4_len` octets of `proto`, followed by them (zero).
    fn ip_packet(v4: bool, proto: u8, l4_len: usize) -> Vec<u8> {
        let ip_len = if v4 { 20 } else { 40 };
        let mut p = vec![0u8; ip_len + l4_len];
        if v4 {
            p[0] = 0x45;
            let total = p.len() as u16;
            p[2..4].copy_from_slice(&total.to_be_bytes());
            p[4..6].copy_from_slice(&0xfffeu16.to_be_bytes());
            p[8] = 64;
            p[9] = proto;
            p[12..16].copy_from_slice(&[198, 51, 100, 2]);
            p[16..20].copy_from_slice(&[203, 0, 113, 2]);
        } else {
            p[0] = 0x60;
            p[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            p[6] = proto;
            p[7] = 64;
            p[8..24].copy_from_slice(&"2001:db8:100::2".parse::<Ipv6Addr>().unwrap().octets());
            p[24..40].copy_from_slice(&"2001:db8:c::2".parse::<Ipv6Addr>().unwrap().octets());
        }
        p
    }

    fn tcp(v4: bool, payload_len: usize, flags: u8) -> Vec<u8> {
        let ip_len = if v4 { 20 } else { 40 };
        let mut p = ip_packet(v4, 6, 20 + payload_len);
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
        l4_checksum_ok(seg, v4, 6)
    }

    fn l4_checksum_ok(seg: &[u8], v4: bool, proto: u8) -> bool {
        let ip_len = if v4 { 20 } else { 40 };
        let l4 = &seg[ip_len..];
        let pseudo = if v4 {
            let s: [u8; 4] = seg[12..16].try_into().unwrap();
            let d: [u8; 4] = seg[16..20].try_into().unwrap();
            checksum::pseudo_header_v4(
                &Ipv4Addr::from(s),
                &Ipv4Addr::from(d),
                proto,
                l4.len() as u16,
            )
        } else {
            let s: [u8; 16] = seg[8..24].try_into().unwrap();
            let d: [u8; 16] = seg[24..40].try_into().unwrap();
            checksum::pseudo_header_v6(
                &Ipv6Addr::from(s),
                &Ipv6Addr::from(d),
                proto,
                l4.len() as u32,
            )
        };
        checksum::finish(checksum::sum(pseudo, l4)) == 0
    }

    /// A UDP super-packet as GRO merges one: the lengths cover all, the checksum field
    /// holds the pseudo-header's partial sum.
    fn udp_super_packet(v4: bool, payload_len: usize) -> Vec<u8> {
        let ip_len = if v4 { 20 } else { 40 };
        let mut p = ip_packet(v4, 17, 8 + payload_len);
        let u = ip_len;
        p[u..u + 2].copy_from_slice(&40000u16.to_be_bytes());
        p[u + 2..u + 4].copy_from_slice(&5201u16.to_be_bytes());
        p[u + 4..u + 6].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
        p[u + 6..u + 8].copy_from_slice(&0x1234u16.to_be_bytes());
        for (i, b) in p[u + 8..].iter_mut().enumerate() {
            *b = (i / 7) as u8;
        }
        p
    }

    #[test]
    fn udp_super_packets_are_cut_into_their_datagrams() {
        for v4 in [true, false] {
            let ip_len = if v4 { 20 } else { 40 };
            let p = udp_super_packet(v4, 3000);
            let h = VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: GSO_UDP_L4,
                gso_size: 1200,
                csum_start: ip_len as u16,
                csum_offset: UDP_CSUM_OFFSET,
                ..Default::default()
            };
            let mut bufs = vec![vec![0u8; 1400]; 3];
            let mut it = bufs.iter_mut();
            let mut lens = Vec::new();
            segment(&h, &p, |_| it.next().unwrap().as_mut_slice(), &mut lens).unwrap();
            assert_eq!(lens, vec![ip_len + 1208, ip_len + 1208, ip_len + 608]);
            let mut payload = Vec::new();
            for (i, (b, &len)) in bufs.iter().zip(&lens).enumerate() {
                let d = &b[..len];
                let addrs = if v4 { 12..20 } else { 8..40 };
                assert_eq!(d[addrs.clone()], p[addrs], "{v4} {i}: addresses");
                assert_eq!(
                    d[ip_len..ip_len + 4],
                    p[ip_len..ip_len + 4],
                    "{v4} {i}: ports"
                );
                let udp_len = u16::from_be_bytes([d[ip_len + 4], d[ip_len + 5]]);
                assert_eq!(usize::from(udp_len), len - ip_len);
                assert!(l4_checksum_ok(d, v4, 17), "{v4} {i}: UDP checksum");
                if v4 {
                    assert_eq!(u16::from_be_bytes([d[2], d[3]]) as usize, len);
                    assert_eq!(
                        u16::from_be_bytes([d[4], d[5]]),
                        0xfffeu16.wrapping_add(i as u16)
                    );
                    assert_eq!(checksum::ipv4_header(&d[..20]), 0, "{i}: header checksum");
                } else {
                    assert_eq!(u16::from_be_bytes([d[4], d[5]]) as usize, len - 40);
                }
                payload.extend_from_slice(&d[ip_len + 8..]);
            }
            assert_eq!(payload, p[ip_len + 8..]);
        }
    }

    #[test]
    fn udp_super_packets_that_are_not_udp_are_refused() {
        let h = VnetHdr {
            gso_type: GSO_UDP_L4,
            gso_size: 1200,
            ..Default::default()
        };
        // Cut into up to four buffers of `len` octets.
        let cut = |h: &VnetHdr, p: &[u8], len: usize| {
            let mut bufs = vec![vec![0u8; len]; 4];
            let mut it = bufs.iter_mut();
            segment_udp(h, p, |_| it.next().unwrap().as_mut_slice(), &mut Vec::new())
        };
        for (p, why) in [
            (tcp(false, 3000, 0x10), "TCP inside"),
            (udp_super_packet(true, 0), "no payload"),
            (
                udp_super_packet(false, 3000)[..45].to_vec(),
                "cut in the UDP header",
            ),
            (vec![0x50; 60], "no IP version"),
            (Vec::new(), "empty"),
        ] {
            assert_eq!(cut(&h, &p, 2000), Err(GsoError::Malformed), "{why}");
        }
        let zero = VnetHdr { gso_size: 0, ..h };
        let r = cut(&zero, &udp_super_packet(true, 3000), 2000);
        assert_eq!(r, Err(GsoError::Malformed), "segment size 0");
        let r = cut(&h, &udp_super_packet(true, 3000), 100);
        assert_eq!(r, Err(GsoError::Malformed), "buffer too short");
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
    fn coalescing_undoes_segmentation() {
        for v4 in [true, false] {
            let ip_len = if v4 { 20 } else { 40 };
            let p = tcp(v4, 3000, 0x18); // PSH ACK
            let h = VnetHdr {
                gso_type: if v4 { GSO_TCPV4 } else { GSO_TCPV6 },
                gso_size: 1400,
                ..Default::default()
            };
            let mut bufs = vec![vec![0u8; 2000]; 4];
            let mut it = bufs.iter_mut();
            let mut lens = Vec::new();
            segment_tcp(&h, &p, |_| it.next().unwrap().as_mut_slice(), &mut lens).unwrap();
            let mut c = Coalescer::new();
            for (b, &l) in bufs.iter().zip(&lens) {
                assert!(c.push(&b[..l]));
            }
            // After PSH nothing more joins.
            assert!(!c.push(&bufs[0][..lens[0]]));
            let out = c.take().unwrap().to_vec();
            assert!(c.is_empty());
            let vh = VnetHdr::parse(&out).unwrap();
            assert_eq!(vh.gso_type, h.gso_type);
            assert_eq!(
                (vh.gso_size, vh.csum_start, vh.csum_offset),
                (1400, ip_len as u16, 16)
            );
            assert_eq!(vh.flags, F_NEEDS_CSUM);
            let mut merged = out[VNET_HDR_LEN..].to_vec();
            assert_eq!(merged.len(), p.len());
            assert_eq!(merged[ip_len + 20..], p[ip_len + 20..]);
            assert_eq!(merged[ip_len + 13], 0x18);
            if v4 {
                assert_eq!(checksum::ipv4_header(&merged[..20]), 0);
            }
            // What the kernel (the "device") does with the partial checksum.
            finish_checksum(&vh, &mut merged).unwrap();
            assert!(tcp_checksum_ok(&merged, v4));
        }
    }

    #[test]
    fn coalescing_refuses_gaps_other_flows_and_control_segments() {
        let p = tcp(false, 2800, 0x10);
        let h = VnetHdr {
            gso_type: GSO_TCPV6,
            gso_size: 1400,
            ..Default::default()
        };
        let mut bufs = vec![vec![0u8; 2000]; 2];
        let mut it = bufs.iter_mut();
        let mut lens = Vec::new();
        segment_tcp(&h, &p, |_| it.next().unwrap().as_mut_slice(), &mut lens).unwrap();
        let (a, b) = (&bufs[0][..lens[0]], &bufs[1][..lens[1]]);
        let mut c = Coalescer::new();
        assert!(c.push(a));
        assert!(!c.push(a), "same sequence number twice");
        let mut other = b.to_vec();
        other[40 + 2] ^= 1; // another destination port
        assert!(!c.push(&other));
        let mut syn = b.to_vec();
        syn[40 + 13] = 0x12;
        assert!(!c.push(&syn));
        assert!(c.push(b));
        // A single gathered segment goes out untouched.
        let mut single = Coalescer::new();
        assert!(single.push(a));
        let out = single.take().unwrap();
        assert_eq!(out[..VNET_HDR_LEN], [0u8; VNET_HDR_LEN]);
        assert_eq!(&out[VNET_HDR_LEN..], a);
        // Pure ACKs are not gathered at all.
        let ack = tcp(true, 0, 0x10);
        assert!(!Coalescer::new().push(&ack));
    }

    #[test]
    fn segments_with_bad_checksums_are_not_coalesced() {
        // Found by the gro_coalesce fuzz target: a segment whose TCP checksum does not
        // verify was merged, and the merged packet's checksum, completed by the kernel,
        // then verified: damaged data delivered as good.
        for v4 in [true, false] {
            let ip_len = if v4 { 20 } else { 40 };
            let p = tcp(v4, 2800, 0x10);
            let h = VnetHdr {
                gso_type: if v4 { GSO_TCPV4 } else { GSO_TCPV6 },
                gso_size: 1400,
                ..Default::default()
            };
            let mut bufs = vec![vec![0u8; 2000]; 2];
            let mut it = bufs.iter_mut();
            let mut lens = Vec::new();
            segment_tcp(&h, &p, |_| it.next().unwrap().as_mut_slice(), &mut lens).unwrap();
            let (a, b) = (&bufs[0][..lens[0]], &bufs[1][..lens[1]]);
            let mut damaged = b.to_vec();
            damaged[ip_len + 20 + 100] ^= 0x04;
            let mut c = Coalescer::new();
            assert!(c.push(a));
            assert!(!c.push(&damaged), "a payload bit flipped in the tunnel");
            assert!(
                !Coalescer::new().push(&damaged),
                "nor does it start a gathering"
            );
            assert!(c.push(b));
            if v4 {
                let mut bad_header = b.to_vec();
                bad_header[8] ^= 1; // TTL, under the IPv4 header checksum
                assert!(!Coalescer::new().push(&bad_header));
            }
        }
    }

    #[test]
    fn an_ipv6_packet_over_65535_octets_is_not_gathered() {
        // Payload Length 65535: 65575 octets, more than the gathering buffer holds
        // (the push used to panic slicing it).
        let mut p = tcp(false, 65535 - 20, 0x10);
        assert_eq!(p.len(), 65575);
        assert_eq!(p[4..6], [0xff, 0xff]);
        let s: [u8; 16] = p[8..24].try_into().unwrap();
        let d: [u8; 16] = p[24..40].try_into().unwrap();
        let pseudo = checksum::pseudo_header_v6(&s.into(), &d.into(), 6, 65535);
        let c = checksum::finish(checksum::sum(pseudo, &p[40..]));
        p[56..58].copy_from_slice(&c.to_be_bytes());
        assert!(tcp_checksum_ok(&p, false));
        assert!(!Coalescer::new().push(&p));
    }

    #[test]
    fn udp_zero_checksum_is_sent_as_all_ones() {
        // A UDP "packet" whose complete sum is 0xffff, so the checksum computes to zero.
        let mut p = vec![0u8; 8];
        p[0..2].copy_from_slice(&0xfffeu16.to_be_bytes());
        p[2..4].copy_from_slice(&0x0001u16.to_be_bytes());
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 0,
            csum_offset: UDP_CSUM_OFFSET,
            ..Default::default()
        };
        finish_checksum(&h, &mut p).unwrap();
        assert_eq!(p[6..8], [0xff, 0xff]);
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
