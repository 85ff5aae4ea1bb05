use super::*;
use mipsock::BuFlags;

fn binding(hoa: &str, coa: &str, mnp6: &[&str], mnp4: &[&str]) -> Binding {
    Binding {
        hoa: hoa.parse().unwrap(),
        hoa_v4: None,
        coa: coa.parse().unwrap(),
        ha: "2001:db8:1::1".parse().unwrap(),
        ha_v4: Some("192.0.2.1".parse().unwrap()),
        mnp_v6: mnp6.iter().map(|p| p.parse().unwrap()).collect(),
        mnp_v4: mnp4.iter().map(|p| p.parse().unwrap()).collect(),
        encapsulation: BindingEncap::InIpv6,
        lifetime: 600,
        binding_id: None,
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        nat_detected: false,
        coa_ifindex: None,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn outer_headers_per_rfc5555_formats() {
    let b = binding("2001:db8:1::100", "2001:db8:a::5", &[], &[]);
    let mr = Peer::new(Mode::MobileRouter, &b).unwrap();
    assert_eq!(
        mr.encap,
        Encapsulation::Ipv6 {
            src_addr: "2001:db8:a::5".parse().unwrap(),
            dst_addr: "2001:db8:1::1".parse().unwrap()
        }
    );
    assert_eq!(mr.remote, Remote::V6("2001:db8:1::1".parse().unwrap()));
    let ha = Peer::new(Mode::HomeAgent, &b).unwrap();
    assert_eq!(ha.remote, Remote::V6("2001:db8:a::5".parse().unwrap()));

    let mut b4 = binding("2001:db8:1::100", "203.0.113.5", &[], &[]);
    b4.encapsulation = BindingEncap::InIpv4;
    let ha = Peer::new(Mode::HomeAgent, &b4).unwrap();
    assert_eq!(
        ha.encap,
        Encapsulation::Ipv4 {
            src_addr: "192.0.2.1".parse().unwrap(),
            dst_addr: "203.0.113.5".parse().unwrap()
        }
    );

    let mut bu = binding("2001:db8:1::100", "203.0.113.5:40000", &[], &[]);
    bu.encapsulation = BindingEncap::UdpIpv4 { ha_port: 4191 };
    let ha = Peer::new(Mode::HomeAgent, &bu).unwrap();
    assert_eq!(
        ha.encap,
        Encapsulation::Udp4 {
            src_addr: "192.0.2.1".parse().unwrap(),
            dst_addr: "203.0.113.5".parse().unwrap(),
            src_port: 4191,
            dst_port: 40000
        }
    );
    assert_eq!(ha.remote, Remote::Udp("203.0.113.5:40000".parse().unwrap()));
    let mr = Peer::new(Mode::MobileRouter, &bu).unwrap();
    assert_eq!(mr.remote, Remote::Udp("192.0.2.1:4191".parse().unwrap()));

    b4.ha_v4 = None;
    assert!(Peer::new(Mode::MobileRouter, &b4).is_err());
}

#[test]
fn ha_looks_up_by_inner_destination_longest_prefix() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let a = binding(
        "2001:db8:1::100",
        "2001:db8:a::5",
        &["2001:db8:100::/48"],
        &["198.51.100.0/24"],
    );
    let b = binding(
        "2001:db8:1::200",
        "2001:db8:b::5",
        &["2001:db8:100:5::/64"],
        &[],
    );
    t.upsert(Peer::new(Mode::HomeAgent, &a).unwrap());
    t.upsert(Peer::new(Mode::HomeAgent, &b).unwrap());
    let cn = ip("2001:db8:ffff::1");
    let to = |t: &PeerTable, d: &str| t.tx_lookup(cn, ip(d)).map(|p| p.binding.hoa.to_string());
    assert_eq!(
        to(&t, "2001:db8:100:1::1").as_deref(),
        Some("2001:db8:1::100")
    );
    assert_eq!(
        to(&t, "2001:db8:100:5::1").as_deref(),
        Some("2001:db8:1::200")
    );
    assert_eq!(
        to(&t, "2001:db8:1::200").as_deref(),
        Some("2001:db8:1::200")
    );
    assert_eq!(
        t.tx_lookup(ip("203.0.113.9"), ip("198.51.100.7"))
            .map(|p| p.binding.hoa),
        Some(a.hoa)
    );
    assert!(to(&t, "2001:db8:9::1").is_none());
    // A move replaces the outer header, nothing else.
    let mut moved = a.clone();
    moved.coa = "2001:db8:c::5".parse().unwrap();
    t.upsert(Peer::new(Mode::HomeAgent, &moved).unwrap());
    assert_eq!(t.peers().len(), 2);
    t.remove(&b);
    assert_eq!(
        to(&t, "2001:db8:100:5::1").as_deref(),
        Some("2001:db8:1::100")
    );
}

#[test]
fn ha_accepts_only_the_coa_and_the_mrs_own_sources() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let a = binding(
        "2001:db8:1::100",
        "2001:db8:a::5",
        &["2001:db8:100::/48"],
        &["198.51.100.0/24"],
    );
    t.upsert(Peer::new(Mode::HomeAgent, &a).unwrap());
    let coa = Remote::V6("2001:db8:a::5".parse().unwrap());
    assert_eq!(t.rx_check(coa, ip("2001:db8:100::7")), Ok(()));
    assert_eq!(t.rx_check(coa, ip("2001:db8:1::100")), Ok(()));
    assert_eq!(t.rx_check(coa, ip("198.51.100.7")), Ok(()));
    assert_eq!(
        t.rx_check(coa, ip("2001:db8:dead::1")),
        Err(RxRefusal::SpoofedInnerSource)
    );
    assert_eq!(
        t.rx_check(coa, ip("203.0.113.1")),
        Err(RxRefusal::SpoofedInnerSource)
    );
    assert_eq!(
        t.rx_check(
            Remote::V6("2001:db8:a::6".parse().unwrap()),
            ip("2001:db8:100::7")
        ),
        Err(RxRefusal::UnknownOuterSource)
    );
    t.remove(&a);
    assert_eq!(
        t.rx_check(coa, ip("2001:db8:100::7")),
        Err(RxRefusal::UnknownOuterSource)
    );
}

#[test]
fn ha_accepts_the_previous_coa_for_a_moment_after_a_move() {
    let mut t = PeerTable::new(Mode::HomeAgent);
    let a = binding(
        "2001:db8:1::100",
        "2001:db8:a::5",
        &["2001:db8:100::/48"],
        &[],
    );
    t.upsert(Peer::new(Mode::HomeAgent, &a).unwrap());
    let old = Remote::V6("2001:db8:a::5".parse().unwrap());
    let new = Remote::V6("2001:db8:b::5".parse().unwrap());
    let mut moved = a.clone();
    moved.coa = "2001:db8:b::5".parse().unwrap();
    t.upsert(Peer::new(Mode::HomeAgent, &moved).unwrap());
    // Packets the MR sent from the old CoA before its BA arrived still enter...
    assert_eq!(t.rx_check(old, ip("2001:db8:100::7")), Ok(()));
    assert_eq!(t.rx_check(new, ip("2001:db8:100::7")), Ok(()));
    // ...with the inner-source check as always...
    assert_eq!(
        t.rx_check(old, ip("2001:db8:dead::1")),
        Err(RxRefusal::SpoofedInnerSource)
    );
    // ...a refresh at the new CoA keeps the grace running...
    t.upsert(Peer::new(Mode::HomeAgent, &moved).unwrap());
    assert_eq!(t.rx_check(old, ip("2001:db8:100::7")), Ok(()));
    // ...and once it is over, the old CoA is unknown.
    std::thread::sleep(MOVE_GRACE + std::time::Duration::from_millis(20));
    assert_eq!(
        t.rx_check(old, ip("2001:db8:100::7")),
        Err(RxRefusal::UnknownOuterSource)
    );
    assert_eq!(t.rx_check(new, ip("2001:db8:100::7")), Ok(()));
}

#[test]
fn mr_accepts_any_inner_source_but_only_from_its_ha() {
    let mut t = PeerTable::new(Mode::MobileRouter);
    let a = binding(
        "2001:db8:1::100",
        "2001:db8:a::5",
        &["2001:db8:100::/48"],
        &[],
    );
    t.upsert(Peer::new(Mode::MobileRouter, &a).unwrap());
    let ha = Remote::V6("2001:db8:1::1".parse().unwrap());
    assert_eq!(t.rx_check(ha, ip("2001:db8:ffff::1")), Ok(()));
    assert_eq!(
        t.rx_check(
            Remote::V6("2001:db8:a::9".parse().unwrap()),
            ip("2001:db8:ffff::1")
        ),
        Err(RxRefusal::UnknownOuterSource)
    );
    // Everything from the mobile network goes to the HA.
    assert!(
        t.tx_lookup(ip("2001:db8:100::7"), ip("2001:db8:ffff::1"))
            .is_some()
    );
    assert!(t.tx_lookup(ip("198.51.100.7"), ip("203.0.113.1")).is_some());
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
            .send(&tx, packets.iter().map(|p| &p[..]), dst)
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
    assert!(batch.send(&tx, [&[1u8, 2, 3][..]], dst).is_err());
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
