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
    to_tunnel: std::sync::Mutex<std::collections::VecDeque<Vec<u8>>>,
    written: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl Backend for FakeDevice {
    fn name(&self) -> &str {
        "fake0"
    }

    fn offload(&self) -> bool {
        false
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
    let Ok(socks) = Sockets::open(0) else { return };
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
