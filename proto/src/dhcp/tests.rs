use super::*;

/// A DHCPACK as busybox udhcpd sends it (header, cookie, options), cut after End:
/// 192.168.77.10 for 01:02:03:04:05:06, server .1, lease 600 s, a /24 mask, two routers,
/// a DNS server, two pads.
fn ack_bytes() -> Vec<u8> {
    let mut b = vec![0u8; 240];
    b[0] = 2;
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    b[10] = 0x80;
    b[16..20].copy_from_slice(&[192, 168, 77, 10]);
    b[28..34].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
    b[236..240].copy_from_slice(&MAGIC_COOKIE);
    b.extend_from_slice(&[53, 1, 5]);
    b.extend_from_slice(&[54, 4, 192, 168, 77, 1]);
    b.extend_from_slice(&[51, 4, 0, 0, 2, 88]);
    b.extend_from_slice(&[1, 4, 255, 255, 255, 0]);
    b.extend_from_slice(&[0, 0]); // pads
    b.extend_from_slice(&[3, 8, 192, 168, 77, 1, 192, 168, 77, 2]);
    b.extend_from_slice(&[6, 4, 192, 168, 77, 53]); // DNS: kept, never acted on
    b.push(255);
    b
}

/// The DISCOVER babymdd's client sends from 02:00:00:00:00:42, xid 0x11223344, 3 s into
/// the exchange: broadcast flag, client identifier (type 1 + MAC), the parameters it asks
/// for; End, zero padding to 300 octets.
fn discover_bytes() -> Vec<u8> {
    let mut b = vec![0u8; 300];
    b[..12].copy_from_slice(&[1, 1, 6, 0, 0x11, 0x22, 0x33, 0x44, 0, 3, 0x80, 0]);
    b[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 0x42]);
    b[236..240].copy_from_slice(&[99, 130, 83, 99]);
    let opts = [
        53, 1, 1, // DHCPDISCOVER
        61, 7, 1, 2, 0, 0, 0, 0, 0x42, // client identifier
        55, 6, 1, 3, 51, 54, 58, 59, // parameter request list
        255,
    ];
    b[240..240 + opts.len()].copy_from_slice(&opts);
    b
}

fn discover() -> DhcpRepr {
    let mut m = DhcpRepr::request(0x1122_3344, [2, 0, 0, 0, 0, 0x42], MessageType::Discover);
    m.secs = 3;
    m.broadcast = true;
    m.client_id = Some(vec![1, 2, 0, 0, 0, 0, 0x42]);
    m.parameter_request_list = vec![1, 3, 51, 54, 58, 59];
    m
}

fn emit(m: &DhcpRepr) -> Vec<u8> {
    let mut b = vec![0xa5u8; m.buffer_len()];
    m.emit(&mut DhcpPacket::new_unchecked(&mut b[..])).unwrap();
    b
}

#[test]
fn discover_octets() {
    assert_eq!(emit(&discover()), discover_bytes());
    assert_eq!(
        DhcpRepr::parse_bytes(&discover_bytes()).unwrap(),
        discover()
    );
}

#[test]
fn deconstruct() {
    let b = ack_bytes();
    let p = DhcpPacket::new_checked(&b[..]).unwrap();
    assert_eq!((p.op(), p.htype(), p.hlen(), p.hops()), (2, 1, 6, 0));
    assert_eq!(p.xid(), 0xdead_beef);
    assert_eq!((p.secs(), p.flags()), (0, FLAG_BROADCAST));
    assert_eq!(p.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(p.yiaddr(), Ipv4Addr::new(192, 168, 77, 10));
    assert_eq!(
        (p.siaddr(), p.giaddr()),
        (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED)
    );
    assert_eq!(&p.chaddr()[..6], &[1, 2, 3, 4, 5, 6]);
    assert!(p.sname().iter().chain(p.file()).all(|&x| x == 0));
    assert!(p.has_magic_cookie());
    assert_eq!(&p.options()[..3], &[53, 1, 5]);
}

#[test]
fn parse_ack() {
    let m = DhcpRepr::parse_bytes(&ack_bytes()).unwrap();
    assert_eq!(m.op, BOOTREPLY);
    assert_eq!(m.xid, 0xdead_beef);
    assert!(m.broadcast);
    assert_eq!(m.yiaddr, Ipv4Addr::new(192, 168, 77, 10));
    assert_eq!(m.chaddr, [1, 2, 3, 4, 5, 6]);
    assert_eq!(m.message_type, Some(MessageType::Ack));
    assert_eq!(m.server_id, Some(Ipv4Addr::new(192, 168, 77, 1)));
    assert_eq!(m.lease_time, Some(600));
    assert_eq!(m.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(m.router, Some(Ipv4Addr::new(192, 168, 77, 1)));
    assert_eq!(m.renewal_time, None);
    assert_eq!(
        m.other_options,
        vec![DhcpOption {
            code: 6,
            data: vec![192, 168, 77, 53]
        }]
    );
}

#[test]
fn other_options_are_kept_in_order() {
    let mut b = ack_bytes();
    b.pop(); // End
    b.extend_from_slice(&[52, 1, 3]); // Option Overload: kept, not followed
    b.extend_from_slice(&[224, 0]); // a site-specific option with no data
    b.push(255);
    let m = DhcpRepr::parse_bytes(&b).unwrap();
    let codes: Vec<u8> = m.other_options.iter().map(|o| o.code).collect();
    assert_eq!(codes, [6, opt::OVERLOAD, 224]);
    assert_eq!(DhcpRepr::parse_bytes(&emit(&m)).unwrap(), m);
}

#[test]
fn emit_parse_roundtrip_and_layout() {
    let mut m = DhcpRepr::request(
        0x0102_0304,
        [0xa, 0xb, 0xc, 0xd, 0xe, 0xf],
        MessageType::Request,
    );
    m.broadcast = true;
    m.secs = 3;
    m.requested_ip = Some(Ipv4Addr::new(10, 0, 0, 7));
    m.server_id = Some(Ipv4Addr::new(10, 0, 0, 1));
    m.client_id = Some(vec![1, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf]);
    m.parameter_request_list = vec![1, 3, 51, 54, 58, 59];
    let b = emit(&m);
    assert_eq!(b.len(), MIN_LEN);
    assert_eq!(&b[..4], &[1, 1, 6, 0]);
    assert_eq!(&b[4..8], &[1, 2, 3, 4]);
    assert_eq!(&b[8..12], &[0, 3, 0x80, 0]);
    assert_eq!(&b[236..243], &[99, 130, 83, 99, 53, 1, 3]);
    assert_eq!(DhcpRepr::parse_bytes(&b).unwrap(), m);
    // Past 300 octets the message is as long as its options.
    m.other_options.push(DhcpOption {
        code: 77,
        data: vec![7; 100],
    });
    assert_eq!(m.buffer_len(), 240 + 3 + 9 + 6 + 6 + 8 + 102 + 1);
    assert_eq!(DhcpRepr::parse_bytes(&emit(&m)).unwrap(), m);
}

#[test]
fn wrong_lengths_of_named_options_are_ignored() {
    let mut b = ack_bytes();
    b.pop();
    b.extend_from_slice(&[53, 2, 5, 5]); // message type of two octets
    b.extend_from_slice(&[58, 2, 0, 1]); // T1 of two octets
    b.push(255);
    let m = DhcpRepr::parse_bytes(&b).unwrap();
    assert_eq!(
        m.message_type,
        Some(MessageType::Ack),
        "the first one stands"
    );
    assert_eq!(m.renewal_time, None);
}

#[test]
fn malformed() {
    assert_eq!(DhcpRepr::parse_bytes(&[0; 100]), Err(Error::Truncated));
    let mut b = ack_bytes();
    b[236] = 0;
    assert_eq!(
        DhcpRepr::parse_bytes(&b),
        Err(Error::Malformed("DHCP magic cookie"))
    );
    let mut b = ack_bytes();
    b.truncate(b.len() - 4); // inside the DNS option, End gone
    assert_eq!(DhcpRepr::parse_bytes(&b), Err(Error::Truncated));
    let mut b = ack_bytes();
    b.truncate(b.len() - 6); // only the DNS option's code left
    assert_eq!(DhcpRepr::parse_bytes(&b), Err(Error::Truncated));
    let mut b = ack_bytes();
    b[1] = 6;
    assert_eq!(
        DhcpRepr::parse_bytes(&b),
        Err(Error::Malformed("DHCP htype/hlen (not Ethernet)"))
    );
    // No End at all is accepted: the options simply stop.
    let mut b = ack_bytes();
    b.pop();
    assert!(DhcpRepr::parse_bytes(&b).is_ok());
    // Emit errors.
    let mut out = vec![0u8; 299];
    assert_eq!(
        discover().emit(&mut DhcpPacket::new_unchecked(&mut out[..])),
        Err(Error::BufferTooSmall)
    );
    let mut m = discover();
    m.client_id = Some(vec![0; 256]);
    let mut out = vec![0u8; m.buffer_len()];
    assert_eq!(
        m.emit(&mut DhcpPacket::new_unchecked(&mut out[..])),
        Err(Error::BadLength)
    );
}

#[test]
fn parse_never_panics_on_prefixes() {
    for b in [ack_bytes(), discover_bytes()] {
        for n in 0..=b.len() {
            if let Ok(m) = DhcpRepr::parse_bytes(&b[..n]) {
                assert_eq!(DhcpRepr::parse_bytes(&emit(&m)).unwrap(), m);
            }
        }
    }
}
