//! The Internet checksum (RFC 1071) and the IPv6 pseudo-header (RFC 8200 §8.1) used by the
//! Mobility Header (RFC 6275 §6.1.1), UDP and ICMPv6.

use std::net::{Ipv4Addr, Ipv6Addr};

/// One's-complement sum of `data` as big-endian 16-bit words, folded to 32 bits.
/// An odd trailing byte is padded with a zero byte on the right.
pub fn sum(acc: u32, data: &[u8]) -> u32 {
    // A u64 accumulator cannot overflow for any buffer that fits in memory.
    let mut wide = u64::from(acc);
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        wide += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        wide += u64::from(*last) << 8;
    }
    while wide > 0xffff_ffff {
        wide = (wide & 0xffff) + (wide >> 16);
    }
    wide as u32
}

/// Folds a partial sum and complements it: the value to store in a checksum field.
pub fn finish(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Partial sum of the IPv6 pseudo-header: source, destination, 32-bit upper-layer length,
/// three zero octets and the next-header value.
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, length: u32) -> u32 {
    let mut acc = sum(0, &src.octets());
    acc = sum(acc, &dst.octets());
    acc = sum(acc, &length.to_be_bytes());
    sum(acc, &[0, 0, 0, next_header])
}

/// Partial sum of the IPv4 pseudo-header (RFC 768): source, destination, zero, protocol,
/// 16-bit length.
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: u8, length: u16) -> u32 {
    let mut acc = sum(0, &src.octets());
    acc = sum(acc, &dst.octets());
    acc = sum(acc, &[0, protocol]);
    sum(acc, &length.to_be_bytes())
}

/// Checksum of `data` (with its checksum field zeroed) under an IPv6 pseudo-header.
pub fn v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, data: &[u8]) -> u16 {
    finish(sum(
        pseudo_header_v6(src, dst, next_header, data.len() as u32),
        data,
    ))
}

/// Checksum of an IPv4 header (its checksum field zeroed).
pub fn ipv4_header(header: &[u8]) -> u16 {
    finish(sum(0, header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(sum(0, &data)), !0xddf2);
    }

    #[test]
    fn odd_length_pads_right() {
        assert_eq!(sum(0, &[0x12]), 0x1200);
        assert_eq!(sum(0, &[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn ipv4_header_known_value() {
        // A well-known IPv4 header whose checksum is 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_header(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(finish(sum(0, &h)), 0);
    }

    #[test]
    fn large_buffer_does_not_overflow() {
        let data = vec![0xff; 1 << 20];
        assert_eq!(finish(sum(0, &data)), 0);
    }
}
