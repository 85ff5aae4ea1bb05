use super::loops::{TX_BATCH, TxBatch, recycle};
use super::*;
use std::io::IoSlice;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn link_scope_never_enters_the_tunnel() {
    for a in [
        "::",
        "::1",
        "fe80::1",
        "ff02::16",
        "ff01::1",
        "169.254.1.1",
        "224.0.0.22",
        "255.255.255.255",
        "0.0.0.0",
    ] {
        assert!(is_link_scope(ip(a)), "{a}");
    }
    for a in [
        "2001:db8::1",
        "ff05::2",
        "ff0e::1",
        "198.51.100.1",
        "239.1.1.1",
    ] {
        assert!(!is_link_scope(ip(a)), "{a}");
    }
}

#[test]
fn addresses_of_packets() {
    let mut v6 = [0u8; 40];
    v6[0] = 0x60;
    v6[8..24].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    v6[24..40].copy_from_slice(&"ff02::16".parse::<Ipv6Addr>().unwrap().octets());
    assert_eq!(addresses(&v6), Some((ip("2001:db8::1"), ip("ff02::16"))));
    assert_eq!(addresses(&v6[..39]), None);
    let mut v4 = [0u8; 20];
    v4[0] = 0x45;
    v4[12..16].copy_from_slice(&[198, 51, 100, 7]);
    v4[16..20].copy_from_slice(&[203, 0, 113, 1]);
    assert_eq!(
        addresses(&v4),
        Some((ip("198.51.100.7"), ip("203.0.113.1")))
    );
    assert_eq!(addresses(&[0x10; 40]), None);
}

#[test]
fn flow_labels_are_per_flow_20_bits_never_zero() {
    let a = flow_label(ip("2001:db8:100::2"), ip("2001:db8:c::2"));
    assert_eq!(a, flow_label(ip("2001:db8:100::2"), ip("2001:db8:c::2")));
    assert_ne!(a, flow_label(ip("2001:db8:c::2"), ip("2001:db8:100::2")));
    assert_ne!(a, flow_label(ip("2001:db8:100::3"), ip("2001:db8:c::2")));
    for i in 0..1000u32 {
        let l = flow_label(IpAddr::V4(Ipv4Addr::from(i)), ip("203.0.113.1"));
        assert!(l != 0 && l < (1 << 20));
    }
}

#[test]
fn mobility_headers_are_told_from_data() {
    // IPv6 header, next header 135, an 8-octet MH (Payload Proto 59, Header Len 0).
    let mut mh = vec![0u8; 48];
    mh[0] = 0x60;
    mh[5] = 8;
    mh[6] = 135;
    mh[7] = 64;
    mh[40] = 59;
    mh[42] = 6; // BRR
    assert!(is_mobility_header(&mh));
    let mut udp = mh.clone();
    udp[6] = 17;
    assert!(!is_mobility_header(&udp));
    let mut v4 = mh.clone();
    v4[0] = 0x45;
    assert!(!is_mobility_header(&v4));
    assert!(!is_mobility_header(&mh[..30]));
}

#[test]
fn a_batch_longer_than_one_sendmmsg_arrives_whole_and_in_order() {
    let rx = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let dst = rx.local_addr().unwrap();
    let tx = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
    // Several calls' worth, packets of different lengths.
    let n = 2 * TX_BATCH + 5;
    let packets: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 1 + i % 7]).collect();
    let mut batch = TxBatch::new();
    for _ in 0..2 {
        // Twice: the headers and the slice vector are reused.
        let (sent, bytes) = batch
            .send(&tx, packets.iter().map(|p| &p[..]), dst, None)
            .unwrap();
        assert_eq!(sent, n);
        assert_eq!(bytes, packets.iter().map(Vec::len).sum::<usize>());
        let mut buf = [0u8; 64];
        for p in &packets {
            let len = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..len], &p[..]);
        }
    }
}

#[test]
fn a_batch_to_nowhere_is_an_error_not_a_count() {
    // IPv4 socket, IPv6 destination: the first message fails, so the batch does.
    let tx = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
    let dst = SocketAddr::from((Ipv6Addr::LOCALHOST, 9));
    let mut batch = TxBatch::new();
    assert!(batch.send(&tx, [&[1u8, 2, 3][..]], dst, None).is_err());
}

/// The MR's tunnel packets leave through the care-of address's interface: the interface
/// index rides in IP_PKTINFO / IPV6_PKTINFO, and the kernel honours it (an interface
/// that does not exist fails the send instead of some other uplink taking the packet).
#[test]
fn the_egress_interface_is_the_care_of_addresses() {
    use super::loops::{Egress, send_one};
    let rx = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let dst = rx.local_addr().unwrap();
    let tx = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
    let lo = nix::net::if_::if_nametoindex("lo").unwrap();
    let mut batch = TxBatch::new();
    let (sent, _) = batch
        .send(
            &tx,
            [&[7u8; 3][..], &[8u8; 2][..]],
            dst,
            Some(Egress::new(&dst, lo)),
        )
        .unwrap();
    assert_eq!(sent, 2);
    assert_eq!(
        send_one(&tx, &[9u8; 4], dst, Some(Egress::new(&dst, lo))).unwrap(),
        4
    );
    let mut buf = [0u8; 16];
    let got: Vec<usize> = (0..3).map(|_| rx.recv(&mut buf).unwrap()).collect();
    assert_eq!(got, vec![3, 2, 4]);
    // No such interface: refused, not sent elsewhere.
    let nowhere = Some(Egress::new(&dst, 999_999));
    assert!(send_one(&tx, &[1u8], dst, nowhere).is_err());
    assert!(batch.send(&tx, [&[1u8][..]], dst, nowhere).is_err());
}

/// An IPv6 tunnel packet without an egress interface names its outer source (the kernel
/// routes by it and chooses none); with one, only the interface: Linux holds a lookup to
/// the interface only when the source is unspecified. IPv4 outer headers name neither
/// without an interface.
#[test]
fn the_outer_source_is_named_only_without_an_egress_interface() {
    use super::loops::Egress;
    let src: Ipv6Addr = "2001:db8:a::2".parse().unwrap();
    let v6 = proto::encap::Encapsulation::Ipv6 {
        src_addr: src,
        dst_addr: "2001:db8:a::1".parse().unwrap(),
    };
    let to = SocketAddr::new(ip("2001:db8:a::1"), 0);
    match Egress::outer(&v6, &to, None) {
        Some(Egress::V6(i)) => {
            assert_eq!(Ipv6Addr::from(i.ipi6_addr.s6_addr), src);
            assert_eq!(i.ipi6_ifindex, 0);
        }
        other => panic!("{other:?}"),
    }
    match Egress::outer(&v6, &to, Some(7)) {
        Some(Egress::V6(i)) => {
            assert_eq!(Ipv6Addr::from(i.ipi6_addr.s6_addr), Ipv6Addr::UNSPECIFIED);
            assert_eq!(i.ipi6_ifindex, 7);
        }
        other => panic!("{other:?}"),
    }
    let v4 = proto::encap::Encapsulation::Ipv4 {
        src_addr: "192.0.2.2".parse().unwrap(),
        dst_addr: "192.0.2.1".parse().unwrap(),
    };
    let to4 = SocketAddr::new(ip("192.0.2.1"), 0);
    assert!(Egress::outer(&v4, &to4, None).is_none());
    assert!(matches!(Egress::outer(&v4, &to4, Some(7)), Some(Egress::V4(i)) if i.ipi_ifindex == 7));
}

#[test]
fn recycled_slice_vectors_keep_their_allocation() {
    let data = [0u8; 4];
    let mut v: Vec<[IoSlice<'_>; 1]> = Vec::with_capacity(TX_BATCH);
    v.extend((0..10).map(|_| [IoSlice::new(&data)]));
    let at = v.as_ptr() as usize;
    let w: Vec<[IoSlice<'static>; 1]> = recycle(v);
    assert!(w.is_empty());
    assert_eq!(w.capacity(), TX_BATCH);
    assert_eq!(w.as_ptr() as usize, at);
}

/// A device that hands over prepared frames, then fails (which ends the loop), and keeps
/// what is written to it.
#[derive(Debug, Default)]
struct FakeDevice {
    /// Whether frames carry a virtio-net header.
    offload: bool,
    to_tunnel: std::sync::Mutex<std::collections::VecDeque<Vec<u8>>>,
    written: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl Backend for FakeDevice {
    fn name(&self) -> &str {
        "fake0"
    }

    fn offload(&self) -> bool {
        self.offload
    }

    fn recv(&self, _queue: usize, buf: &mut [u8]) -> io::Result<usize> {
        let frame = self.to_tunnel.lock().unwrap().pop_front();
        let frame = frame.ok_or_else(|| io::Error::other("no more frames"))?;
        buf[..frame.len()].copy_from_slice(&frame);
        Ok(frame.len())
    }

    fn send(&self, frame: &[u8]) -> io::Result<usize> {
        self.written.lock().unwrap().push(frame.to_vec());
        Ok(frame.len())
    }
}

fn ipv6_packet(src: &str, dst: &str) -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[0] = 0x60;
    p[5] = 8;
    p[6] = 59;
    p[7] = 64;
    p[8..24].copy_from_slice(&src.parse::<Ipv6Addr>().unwrap().octets());
    p[24..40].copy_from_slice(&dst.parse::<Ipv6Addr>().unwrap().octets());
    p
}

#[test]
fn the_tx_loop_drops_what_it_cannot_tunnel_and_stops_with_its_device() {
    // The raw sockets need CAP_NET_RAW; without it there is nothing to test here (the
    // namespace tests run the loops for real).
    let Ok(socks) = Sockets::open(0, &[]) else {
        return;
    };
    let dev = FakeDevice::default();
    dev.to_tunnel.lock().unwrap().extend([
        // No binding for it (an empty table).
        ipv6_packet("2001:db8:100::1", "2001:db8:c::2"),
        // Link scope: never tunnelled.
        ipv6_packet("fe80::1", "2001:db8:c::2"),
        ipv6_packet("2001:db8:100::1", "ff02::16"),
        // Not an IP packet.
        vec![0x10; 40],
    ]);
    let table = PeerTable::new(crate::routes::Mode::MobileRouter);
    let mut reader = table.shared().reader();
    let counters = Counters::default();
    super::loops::tx_loop(
        &dev,
        0,
        &socks,
        &mut reader,
        &counters,
        TxConfig {
            hop_limit: 64,
            probe_interval: None,
        },
    );
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    assert_eq!(get(&counters.drop_no_binding), 1);
    assert_eq!(get(&counters.drop_link_scope), 2);
    assert_eq!(get(&counters.drop_malformed), 1);
    assert_eq!(get(&counters.tx_packets), 0);
    assert!(dev.written.lock().unwrap().is_empty());
    assert!(dev.to_tunnel.lock().unwrap().is_empty());
}

/// The flow hash behind the choice among care-of addresses: ports count for TCP/UDP,
/// fragments hash by addresses alone, and nothing panics on short packets.
#[test]
fn flow_hash_by_ports_unless_fragmented() {
    fn udp4(sport: u16, frag: u16) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[9] = 17;
        p[12..16].copy_from_slice(&[198, 51, 100, 2]);
        p[16..20].copy_from_slice(&[203, 0, 113, 2]);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&9u16.to_be_bytes());
        p
    }
    fn udp6(sport: u16, next: u8) -> Vec<u8> {
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[6] = next;
        p[8..24].copy_from_slice(&"2001:db8:100::2".parse::<Ipv6Addr>().unwrap().octets());
        p[24..40].copy_from_slice(&"2001:db8:c::2".parse::<Ipv6Addr>().unwrap().octets());
        p[40..42].copy_from_slice(&sport.to_be_bytes());
        p
    }
    assert_ne!(flow_hash(&udp4(1000, 0)), flow_hash(&udp4(1001, 0)));
    assert_eq!(
        flow_hash(&udp4(1000, 0)),
        flow_hash(&udp4(1000, 0x4000)),
        "DF"
    );
    // A first fragment (MF) and a later one (offset): addresses only, the same hash.
    assert_eq!(
        flow_hash(&udp4(1000, 0x2000)),
        flow_hash(&udp4(1001, 0x0010))
    );
    assert_ne!(flow_hash(&udp6(1000, 17)), flow_hash(&udp6(1001, 17)));
    // Behind a Fragment header (44) the ports are not read.
    assert_eq!(flow_hash(&udp6(1000, 44)), flow_hash(&udp6(1001, 44)));
    for n in 0..48 {
        let _ = flow_hash(&udp6(1, 17)[..n]);
        let _ = flow_hash(&udp4(1, 0)[..n.min(28)]);
    }
}

#[test]
fn path_probes_are_recognised_and_nothing_else() {
    let a: Ipv6Addr = "2001:db8:1::100".parse().unwrap();
    let b: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
    let p = path_probe(a, b);
    assert!(is_path_probe(&p));
    assert_eq!(addresses(&p), Some((IpAddr::V6(a), IpAddr::V6(b))));
    let mut with_payload = p.to_vec();
    with_payload[5] = 8;
    with_payload.extend([0u8; 8]);
    assert!(!is_path_probe(&with_payload));
    let mut udp = p;
    udp[6] = 17;
    assert!(!is_path_probe(&udp));
    assert!(!is_path_probe(&p[..39]));
}

#[test]
fn pair_probes_carry_their_place_and_report_and_nothing_else_passes_for_one() {
    let a: Ipv6Addr = "2001:db8:1::100".parse().unwrap();
    let b: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
    let want = PairProbe {
        id: 0x0102_0304,
        position: 1,
        report_kbps: 25_000,
    };
    let p = pair_probe(a, b, want);
    assert_eq!(p.len(), PAIR_LEN);
    // An IPv6 header, next header 59, hop limit 1, the payload length of the rest.
    assert_eq!(&p[..8], &[0x60, 0, 0, 0, 0x04, 0x88, 59, 1]);
    assert_eq!(&p[40..44], b"NMPP");
    assert_eq!(pair_probe_of(&p), Some(want));
    assert!(is_path_probe(&p));
    assert_eq!(addresses(&p), Some((IpAddr::V6(a), IpAddr::V6(b))));
    let broken = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut q = p.to_vec();
        f(&mut q);
        q
    };
    for q in [
        broken(&|q| q.truncate(PAIR_LEN - 1)),
        broken(&|q| q.push(0)),
        broken(&|q| q[40] = b'X'),
        broken(&|q| q[48] = 2),
        broken(&|q| q[5] ^= 1),
        broken(&|q| q[6] = 17),
        broken(&|q| q[0] = 0x45),
    ] {
        assert_eq!(pair_probe_of(&q), None);
        assert!(!is_path_probe(&q));
    }
}

/// A tunnel packet as the card's GRO merges it and the packet socket reads it: the
/// virtio-net header, an Ethernet header, the outer IPv6 header (`coa` to `to`), the
/// inner IPv6 header, a TCP header with the partial checksum GRO leaves, `payload` octets
/// in segments of `mss`.
fn merged_frame(coa: &str, to: &str, inner_src: &str, payload: usize, mss: u16) -> Vec<u8> {
    use crate::gso::{F_NEEDS_CSUM, GSO_TCPV6, VnetHdr};
    let tcp_at = 14 + 40 + 40;
    let mut tcp = vec![0u8; 20 + payload];
    tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18;
    for (i, b) in tcp[20..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let h = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV6,
        hdr_len: (tcp_at + 20) as u16,
        gso_size: mss,
        csum_start: tcp_at as u16,
        csum_offset: 16,
    };
    tunnel_frame(h, coa, to, inner_src, 6, tcp)
}

/// A tunnel packet as the packet socket reads it: the card's virtio-net header `h`, an
/// Ethernet header, an IPv6 outer header from `coa` to `to`, an inner IPv6 header from
/// `inner_src` to 2001:db8:c::2 with `next_header`, then `l4`, whose checksum field (at
/// `h.csum_offset`) holds the pseudo-header's sum, as GRO leaves it.
fn tunnel_frame(
    h: crate::gso::VnetHdr,
    coa: &str,
    to: &str,
    inner_src: &str,
    next_header: u8,
    mut l4: Vec<u8>,
) -> Vec<u8> {
    use crate::gso::VNET_HDR_LEN;
    let (src, dst): (Ipv6Addr, Ipv6Addr) =
        (inner_src.parse().unwrap(), "2001:db8:c::2".parse().unwrap());
    let len = l4.len() as u16;
    let pseudo = proto::checksum::pseudo_header_v6(&src, &dst, next_header, u32::from(len));
    let at = usize::from(h.csum_offset);
    l4[at..at + 2].copy_from_slice(&(!proto::checksum::finish(pseudo)).to_be_bytes());
    let mut f = vec![0u8; VNET_HDR_LEN + 14 + 40 + 40];
    h.write(&mut f);
    let p = &mut f[VNET_HDR_LEN..];
    p[12..14].copy_from_slice(&[0x86, 0xdd]);
    let (outer, inner) = p[14..].split_at_mut(40);
    outer[0] = 0x60;
    outer[4..6].copy_from_slice(&(40 + len).to_be_bytes());
    outer[6] = 41;
    outer[7] = 64;
    outer[8..24].copy_from_slice(&coa.parse::<Ipv6Addr>().unwrap().octets());
    outer[24..40].copy_from_slice(&to.parse::<Ipv6Addr>().unwrap().octets());
    inner[0] = 0x60;
    inner[4..6].copy_from_slice(&len.to_be_bytes());
    inner[6] = next_header;
    inner[7] = 63;
    inner[8..24].copy_from_slice(&src.octets());
    inner[24..40].copy_from_slice(&dst.octets());
    f.extend_from_slice(&l4);
    f
}

/// The HA's table with one router: CoA 2001:db8:a::2, HA 2001:db8:1::1, MNP
/// 2001:db8:100::/64.
fn one_router() -> PeerTable {
    let mut t = PeerTable::new(crate::routes::Mode::HomeAgent);
    t.upsert(Peer::new(crate::routes::Mode::HomeAgent, &router_binding()).unwrap());
    t
}

/// The binding of [`one_router`]: HoA 2001:db8:1::100, CoA 2001:db8:a::2, MNP
/// 2001:db8:100::/64, at home agent 2001:db8:1::1.
fn router_binding() -> mipsock::Binding {
    mipsock::Binding {
        hoa: "2001:db8:1::100".parse().unwrap(),
        hoa_v4: None,
        coa: mipsock::CareOf::V6("2001:db8:a::2".parse().unwrap()),
        ha: "2001:db8:1::1".parse().unwrap(),
        ha_v4: None,
        mnp_v6: vec!["2001:db8:100::/64".parse().unwrap()],
        mnp_v4: Vec::new(),
        encapsulation: mipsock::Encapsulation::InIpv6,
        lifetime: 600,
        binding_id: None,
        flags: mipsock::BuFlags::A | mipsock::BuFlags::H | mipsock::BuFlags::R,
        nat_detected: false,
        coa_ifindex: None,
        flows: Vec::new(),
        bid_priority: 0,
    }
}

fn take_merged(dev: &FakeDevice, table: &PeerTable, mut frame: Vec<u8>, counters: &Counters) {
    let snapshot = table.snapshot();
    let mut clock = BatchClock::new();
    let mut out = super::loops::CaptureOut::default();
    super::loops::captured_packet(
        &mut frame, 14, dev, &snapshot, &mut clock, counters, &mut out,
    );
    out.end_batch(dev, counters);
}

/// An unmerged TCP tunnel packet as the packet socket reads it: [`merged_frame`] with no
/// segmentation, `payload` octets from sequence number `seq`, PSH set or not, its checksum
/// complete or left partial (as from a sender on this host).
fn single_frame(seq: u32, payload: usize, psh: bool, partial: bool) -> Vec<u8> {
    use crate::gso::{F_NEEDS_CSUM, VnetHdr};
    let (coa, ha, mnn) = ("2001:db8:a::2", "2001:db8:1::1", "2001:db8:100::2");
    let mut f = merged_frame(coa, ha, mnn, payload, 0);
    let tcp_at = 14 + 40 + 40;
    let h = VnetHdr {
        flags: if partial { F_NEEDS_CSUM } else { 0 },
        gso_type: crate::gso::GSO_NONE,
        hdr_len: 0,
        gso_size: 0,
        csum_start: if partial { tcp_at as u16 } else { 0 },
        csum_offset: if partial { 16 } else { 0 },
    };
    h.write(&mut f);
    let n = crate::gso::VNET_HDR_LEN;
    let tcp = n + tcp_at;
    f[tcp + 4..tcp + 8].copy_from_slice(&seq.to_be_bytes());
    f[tcp + 13] = if psh { 0x18 } else { 0x10 };
    if !partial {
        let (src, dst) = (mnn.parse().unwrap(), "2001:db8:c::2".parse().unwrap());
        let pseudo = proto::checksum::pseudo_header_v6(&src, &dst, 6, (20 + payload) as u32);
        f[tcp + 16..tcp + 18].fill(0);
        let c = proto::checksum::finish(proto::checksum::sum(pseudo, &f[tcp..]));
        f[tcp + 16..tcp + 18].copy_from_slice(&c.to_be_bytes());
    }
    f
}

/// Unmerged TCP tunnel packets read from the packet socket are coalesced towards the
/// device like the raw sockets' (a flow's packets are read by that one socket, so they
/// never overtake its merged ones), what was gathered is written before a merged packet
/// that follows, and a partial checksum is finished.
#[test]
fn unmerged_tcp_tunnel_packets_keep_their_order() {
    let table = one_router();
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let dev = offloading_device();
    let counters = Counters::default();
    let snapshot = table.snapshot();
    let mut clock = BatchClock::new();
    let mut out = super::loops::CaptureOut::default();
    let mut frames = vec![
        single_frame(1000, 100, false, false),
        single_frame(1100, 100, false, false),
    ];
    let mut merged = merged_frame(
        "2001:db8:a::2",
        "2001:db8:1::1",
        "2001:db8:100::2",
        250,
        100,
    );
    let n = crate::gso::VNET_HDR_LEN + 14 + 40 + 40;
    merged[n + 4..n + 8].copy_from_slice(&1200u32.to_be_bytes());
    frames.push(merged);
    for mut f in frames {
        super::loops::captured_packet(&mut f, 14, &dev, &snapshot, &mut clock, &counters, &mut out);
    }
    out.end_batch(&dev, &counters);
    let written = dev.written.lock().unwrap();
    let n = crate::gso::VNET_HDR_LEN;
    let seqs: Vec<(u32, usize)> = written
        .iter()
        .map(|w| {
            (
                u32::from_be_bytes(w[n + 44..n + 48].try_into().unwrap()),
                w.len() - n - 60,
            )
        })
        .collect();
    assert_eq!(seqs, [(1000, 200), (1200, 250)]);
    assert_eq!(
        (
            get(&counters.tcp_capture_reads),
            get(&counters.merged_reads)
        ),
        (2, 1)
    );
    drop(written);

    let dev = FakeDevice::default();
    take_merged(&dev, &table, single_frame(1000, 77, true, true), &counters);
    let written = dev.written.lock().unwrap();
    assert_eq!(written.len(), 1);
    assert!(tcp6_checksum_holds(&written[0]));
}

/// Whether the TCP checksum of an IPv6 packet (no extension headers) verifies.
fn tcp6_checksum_holds(packet: &[u8]) -> bool {
    let src: [u8; 16] = packet[8..24].try_into().unwrap();
    let dst: [u8; 16] = packet[24..40].try_into().unwrap();
    let len = (packet.len() - 40) as u32;
    let pseudo = proto::checksum::pseudo_header_v6(&src.into(), &dst.into(), 6, len);
    proto::checksum::finish(proto::checksum::sum(pseudo, &packet[40..])) == 0
}

/// A device taking super-packets and partial checksums (a virtio-net header).
fn offloading_device() -> FakeDevice {
    FakeDevice {
        offload: true,
        ..Default::default()
    }
}

/// A merged tunnel packet reaches a device with offloads as one super-packet with the
/// card's segment size and its offsets counted from the inner packet, and one without
/// them as segments of that size with complete checksums.
#[test]
fn merged_tunnel_packets_reach_the_device_in_their_segments() {
    use crate::gso::{F_NEEDS_CSUM, GSO_TCPV6, VNET_HDR_LEN, VnetHdr};
    let table = one_router();
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let dev = offloading_device();
    let counters = Counters::default();
    let frame = merged_frame(
        "2001:db8:a::2",
        "2001:db8:1::1",
        "2001:db8:100::2",
        250,
        100,
    );
    take_merged(&dev, &table, frame, &counters);
    let written = dev.written.lock().unwrap();
    assert_eq!(written.len(), 1);
    let h = VnetHdr::parse(&written[0]).unwrap();
    assert_eq!(
        h,
        VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6,
            hdr_len: 60,
            gso_size: 100,
            csum_start: 40,
            csum_offset: 16
        }
    );
    assert_eq!(written[0].len(), VNET_HDR_LEN + 40 + 20 + 250);
    assert_eq!(
        written[0][VNET_HDR_LEN + 8..VNET_HDR_LEN + 24],
        "2001:db8:100::2".parse::<Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(
        (get(&counters.merged_reads), get(&counters.rx_packets)),
        (1, 3)
    );

    let dev = FakeDevice::default();
    let counters = Counters::default();
    let frame = merged_frame(
        "2001:db8:a::2",
        "2001:db8:1::1",
        "2001:db8:100::2",
        250,
        100,
    );
    take_merged(&dev, &table, frame, &counters);
    let written = dev.written.lock().unwrap();
    let lens: Vec<usize> = written.iter().map(Vec::len).collect();
    assert_eq!(lens, [160, 160, 110]);
    for (i, seg) in written.iter().enumerate() {
        assert!(tcp6_checksum_holds(seg), "segment {i}");
        let seq = u32::from_be_bytes(seg[44..48].try_into().unwrap());
        assert_eq!(seq, 1000 + 100 * i as u32);
    }
    assert_eq!(get(&counters.rx_packets), 3);
}

/// A merged tunnel packet carrying UDP (GRO merges one flow's datagrams when the operator
/// turns on `rx-udp-gro-forwarding` or `rx-gro-list`; dropped as malformed before): the
/// device gets each datagram, with its own lengths and a complete checksum, with or
/// without offloads.
#[test]
fn merged_udp_tunnel_packets_reach_the_device_as_datagrams() {
    use crate::gso::{F_NEEDS_CSUM, GSO_UDP_L4, VNET_HDR_LEN, VnetHdr};
    let table = one_router();
    let (coa, ha, mnn) = ("2001:db8:a::2", "2001:db8:1::1", "2001:db8:100::2");
    for (offload, partial) in [(true, true), (false, true), (true, false)] {
        let dev = FakeDevice {
            offload,
            ..Default::default()
        };
        let counters = Counters::default();
        // merged_frame's 20-octet TCP header and 238 octets: a UDP header and 250.
        let mut f = merged_frame(coa, ha, mnn, 238, 100);
        let udp_at = 14 + 40 + 40;
        VnetHdr {
            flags: if partial { F_NEEDS_CSUM } else { 0 },
            gso_type: GSO_UDP_L4,
            hdr_len: (udp_at + 8) as u16,
            gso_size: 100,
            csum_start: if partial { udp_at as u16 } else { 0 },
            csum_offset: if partial { 6 } else { 0 },
        }
        .write(&mut f);
        let inner = VNET_HDR_LEN + 14 + 40;
        f[inner + 6] = 17;
        f[inner + 44..inner + 46].copy_from_slice(&258u16.to_be_bytes());
        take_merged(&dev, &table, f, &counters);
        let written = dev.written.lock().unwrap();
        let pad = if offload { VNET_HDR_LEN } else { 0 };
        let lens: Vec<usize> = written.iter().map(|w| w.len() - pad).collect();
        assert_eq!(lens, [148, 148, 98], "offload {offload}, partial {partial}");
        for (i, w) in written.iter().enumerate() {
            assert!(
                w[..pad].iter().all(|&b| b == 0),
                "{i}: a virtio-net header of zeros"
            );
            let d = &w[pad..];
            assert_eq!(usize::from(u16::from_be_bytes([d[4], d[5]])), d.len() - 40);
            assert_eq!(
                usize::from(u16::from_be_bytes([d[44], d[45]])),
                d.len() - 40
            );
            let (src, dst): ([u8; 16], [u8; 16]) =
                (d[8..24].try_into().unwrap(), d[24..40].try_into().unwrap());
            let pseudo = proto::checksum::pseudo_header_v6(
                &src.into(),
                &dst.into(),
                17,
                (d.len() - 40) as u32,
            );
            assert_eq!(
                proto::checksum::finish(proto::checksum::sum(pseudo, &d[40..])),
                0,
                "{i}: UDP checksum"
            );
        }
        assert_eq!(
            (
                counters.merged_reads.load(Ordering::Relaxed),
                counters.rx_packets.load(Ordering::Relaxed),
                counters.drop_malformed.load(Ordering::Relaxed)
            ),
            (1, 3, 0)
        );
    }
}

/// A merged UDP tunnel packet as the packet socket reads it: from `coa` to the home agent,
/// datagrams of `size` octets from `inner_src` port 40000 to 2001:db8:c::2 port 5004
/// carrying `payload`, the checksum left partial as GRO leaves it.
fn udp_merged_frame(coa: &str, inner_src: &str, payload: &[u8], size: u16) -> Vec<u8> {
    use crate::gso::{F_NEEDS_CSUM, GSO_UDP_L4, VnetHdr};
    let udp_at = 14 + 40 + 40;
    let mut udp = vec![0u8; 8 + payload.len()];
    let len = udp.len() as u16;
    udp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&5004u16.to_be_bytes());
    udp[4..6].copy_from_slice(&len.to_be_bytes());
    udp[8..].copy_from_slice(payload);
    let h = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_UDP_L4,
        hdr_len: (udp_at + 8) as u16,
        gso_size: size,
        csum_start: udp_at as u16,
        csum_offset: 6,
    };
    tunnel_frame(h, coa, "2001:db8:1::1", inner_src, 17, udp)
}

/// The host behind the router of [`one_router`].
const MNN: &str = "2001:db8:100::2";

/// Merged UDP from a stranger's outer source, or with an inner source outside the
/// router's prefixes: nothing reaches the device, and each datagram is counted as the raw
/// sockets count theirs.
#[test]
fn merged_udp_from_strangers_is_refused_datagram_by_datagram() {
    let table = one_router();
    let dev = FakeDevice::default();
    let counters = Counters::default();
    let payload = [7u8; 300];
    take_merged(
        &dev,
        &table,
        udp_merged_frame("2001:db8:a::7", MNN, &payload, 100),
        &counters,
    );
    let spoofed = udp_merged_frame("2001:db8:a::2", "2001:db8:666::2", &payload, 100);
    take_merged(&dev, &table, spoofed, &counters);
    assert!(dev.written.lock().unwrap().is_empty());
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    assert_eq!(
        (
            get(&counters.drop_unknown_outer),
            get(&counters.drop_spoofed_inner)
        ),
        (3, 3)
    );
}

/// A duplicated flow (RFC 5648 paths, `duplicate udp port 5004`) whose copies each path's
/// card merged differently: its datagrams are told apart one by one, so each reaches the
/// device once. Admitted as whole super-packets, the second path's would all have passed.
#[test]
fn merged_copies_of_a_duplicated_flow_reach_the_device_once() {
    let mut t = PeerTable::new(crate::routes::Mode::HomeAgent);
    for (bid, coa) in [(1, "2001:db8:a::2"), (2, "2001:db8:b::2")] {
        let mut b = router_binding();
        b.binding_id = Some(bid);
        b.coa = mipsock::CareOf::V6(coa.parse().unwrap());
        t.upsert(Peer::new(crate::routes::Mode::HomeAgent, &b).unwrap());
    }
    t.set_duplicate(vec!["udp port 5004".parse().unwrap()]);
    let dev = FakeDevice::default();
    let counters = Counters::default();
    let payload: Vec<u8> = (0..400u32).map(|i| (i / 100 + 1) as u8).collect();
    // Path 1 merged all four datagrams; path 2 the last three, then the first three.
    take_merged(
        &dev,
        &t,
        udp_merged_frame("2001:db8:a::2", MNN, &payload, 100),
        &counters,
    );
    take_merged(
        &dev,
        &t,
        udp_merged_frame("2001:db8:b::2", MNN, &payload[100..], 100),
        &counters,
    );
    take_merged(
        &dev,
        &t,
        udp_merged_frame("2001:db8:b::2", MNN, &payload[..300], 100),
        &counters,
    );
    let written = dev.written.lock().unwrap();
    let firsts: Vec<u8> = written.iter().map(|d| d[48]).collect();
    assert_eq!(firsts, [1, 2, 3, 4], "each datagram once, in order");
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    assert_eq!(
        (get(&counters.dup_dropped), get(&counters.drop_malformed)),
        (6, 0)
    );
}

/// `rx-gro-list` merges TCP too, and keeps the first segment's complete checksum (no
/// `F_NEEDS_CSUM`, no offsets): a device with offloads gets the super-packet with the
/// checksum left partial, as it finishes it; one without, segments with theirs.
#[test]
fn tcp_merged_as_a_fragment_list_reaches_the_device() {
    use crate::gso::{VNET_HDR_LEN, VnetHdr, finish_checksum};
    let table = one_router();
    let (coa, ha, mnn) = ("2001:db8:a::2", "2001:db8:1::1", "2001:db8:100::2");
    for offload in [true, false] {
        let dev = FakeDevice {
            offload,
            ..Default::default()
        };
        let counters = Counters::default();
        let mut f = merged_frame(coa, ha, mnn, 250, 100);
        let mut h = VnetHdr::parse(&f).unwrap();
        (h.flags, h.csum_start, h.csum_offset) = (0, 0, 0);
        h.write(&mut f);
        // Not the partial sum: what the first segment carried.
        let tcp = VNET_HDR_LEN + 14 + 80;
        f[tcp + 16..tcp + 18].copy_from_slice(&0xbeefu16.to_be_bytes());
        take_merged(&dev, &table, f, &counters);
        let mut written = dev.written.lock().unwrap();
        if offload {
            assert_eq!(written.len(), 1);
            let h = VnetHdr::parse(&written[0]).unwrap();
            let packet = &mut written[0][VNET_HDR_LEN..];
            finish_checksum(&h, packet).unwrap();
            assert!(tcp6_checksum_holds(packet));
        } else {
            assert_eq!(written.len(), 3);
            assert!(written.iter().all(|seg| tcp6_checksum_holds(seg)));
        }
        assert_eq!(counters.drop_malformed.load(Ordering::Relaxed), 0);
    }
}

/// What a packet socket sees beyond the tunnel packets of our bindings is left alone or
/// refused, and counted as the raw sockets would count it.
#[test]
fn merged_packets_not_ours_are_not_decapsulated() {
    let table = one_router();
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let dev = offloading_device();
    let counters = Counters::default();
    let (coa, ha, mnn) = ("2001:db8:a::2", "2001:db8:1::1", "2001:db8:100::2");
    for (outer_src, outer_dst, inner_src, mss) in [
        // To another address than this binding's end of the tunnel (another of ours, or
        // a tunnel the node forwards, from a stranger too): left alone, not counted.
        (coa, "2001:db8:1::9", mnn, 100),
        ("2001:db8:a::7", "2001:db8:1::9", "2001:db8:666::2", 100),
        // From an unknown outer source, with a foreign inner source: refused and counted.
        ("2001:db8:a::7", ha, mnn, 100),
        (coa, ha, "2001:db8:666::2", 100),
        // No segment size.
        (coa, ha, mnn, 0),
    ] {
        let frame = merged_frame(outer_src, outer_dst, inner_src, 250, mss);
        take_merged(&dev, &table, frame, &counters);
    }
    // Offsets that point outside the inner packet, and short frames.
    let whole = merged_frame(coa, ha, mnn, 250, 100);
    let mut bad = whole.clone();
    bad[6..8].copy_from_slice(&20u16.to_ne_bytes());
    take_merged(&dev, &table, bad, &counters);
    for n in [0, 9, 24, 60, 100] {
        take_merged(&dev, &table, whole[..n].to_vec(), &counters);
    }
    assert!(dev.written.lock().unwrap().is_empty());
    assert_eq!(get(&counters.drop_unknown_outer), 1);
    assert_eq!(get(&counters.drop_spoofed_inner), 1);
    assert_eq!(get(&counters.drop_malformed), 7);
    assert_eq!(get(&counters.merged_reads), 0);
}
