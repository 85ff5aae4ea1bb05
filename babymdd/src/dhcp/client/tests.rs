//! The client on virtual time against a scripted server.

use super::*;

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x42];
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
const ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 10);

fn client(t0: Instant) -> Client {
    Client::new(ClientConfig::new(MAC, 0x1234_5678), t0)
}

/// Takes the one queued datagram, parsed.
fn sent(c: &mut Client) -> (Ipv4Addr, DhcpRepr) {
    let t = c.poll_transmit().expect("a datagram");
    assert!(c.poll_transmit().is_none(), "only one datagram");
    (t.dst, DhcpRepr::parse_bytes(&t.payload).unwrap())
}

fn reply(req: &DhcpRepr, t: MessageType, lease: u32) -> Vec<u8> {
    let mut m = DhcpRepr::request(req.xid, req.chaddr, t);
    m.op = BOOTREPLY;
    m.broadcast = req.broadcast;
    m.yiaddr = if t == MessageType::Nak {
        Ipv4Addr::UNSPECIFIED
    } else {
        req.requested_ip.unwrap_or(if req.ciaddr.is_unspecified() {
            ADDR
        } else {
            req.ciaddr
        })
    };
    m.server_id = Some(SERVER);
    if t != MessageType::Nak {
        m.lease_time = Some(lease);
        m.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
        m.router = Some(SERVER);
    }
    crate::dhcp::encode(&m).unwrap()
}

/// DISCOVER → OFFER → REQUEST → ACK at `t0`; returns the lease.
fn bind(c: &mut Client, t0: Instant, lease: u32) -> Lease {
    c.start(t0);
    let (dst, d) = sent(c);
    assert_eq!(dst, Ipv4Addr::BROADCAST);
    assert_eq!(d.message_type, Some(MessageType::Discover));
    assert!(d.broadcast, "broadcast flag: we cannot receive unicast yet");
    c.handle(t0, &reply(&d, MessageType::Offer, lease));
    let (dst, r) = sent(c);
    assert_eq!(dst, Ipv4Addr::BROADCAST);
    assert_eq!(r.message_type, Some(MessageType::Request));
    assert_eq!(r.requested_ip, Some(ADDR));
    assert_eq!(r.server_id, Some(SERVER));
    assert_eq!(r.xid, d.xid);
    c.handle(t0, &reply(&r, MessageType::Ack, lease));
    match c.poll_event() {
        Some(Event::Bound(l)) => l,
        other => panic!("expected Bound, got {other:?}"),
    }
}

#[test]
fn offer_ack_binds_with_lease_times() {
    let t0 = Instant::now();
    let mut c = client(t0);
    let l = bind(&mut c, t0, 600);
    assert_eq!(l.addr, ADDR);
    assert_eq!(l.prefix_len, 24);
    assert_eq!(l.router, Some(SERVER));
    assert_eq!(l.server, SERVER);
    assert_eq!(l.renew_at, t0 + Duration::from_secs(300));
    assert_eq!(l.rebind_at, t0 + Duration::from_secs(525));
    assert_eq!(l.expires_at, t0 + Duration::from_secs(600));
    assert_eq!(c.state(), &State::Bound);
    assert_eq!(c.poll_timeout(), Some(l.renew_at));
    assert!(c.poll_transmit().is_none());
}

#[test]
fn ignores_other_xid_and_chaddr_and_requests() {
    let t0 = Instant::now();
    let mut c = client(t0);
    c.start(t0);
    let (_, d) = sent(&mut c);
    let mut other = d.clone();
    other.xid ^= 1;
    c.handle(t0, &reply(&other, MessageType::Offer, 60));
    let mut other = d.clone();
    other.chaddr[5] ^= 1;
    c.handle(t0, &reply(&other, MessageType::Offer, 60));
    // Our own broadcast DISCOVER looped back is a BOOTREQUEST.
    c.handle(t0, &crate::dhcp::encode(&d).unwrap());
    c.handle(t0, &[1, 2, 3]);
    assert_eq!(c.state(), &State::Selecting);
    assert!(c.poll_transmit().is_none());
}

#[test]
fn discover_backoff_doubles_with_bounded_jitter() {
    let t0 = Instant::now();
    let mut c = client(t0);
    c.start(t0);
    let (_, first) = sent(&mut c);
    let mut now = t0;
    // 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 64 s, each ±min(1 s, base/4).
    for base in [
        250u64, 500, 1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 64_000,
    ] {
        let t = c.poll_timeout().unwrap();
        let wait = t - now;
        let base = Duration::from_millis(base);
        let j = (base / 4).min(Duration::from_secs(1));
        assert!(
            wait >= base - j && wait <= base + j,
            "wait {wait:?} outside {base:?} ± {j:?}"
        );
        // Early: nothing.
        c.handle_timeout(t - Duration::from_millis(1));
        assert!(c.poll_transmit().is_none());
        now = t;
        c.handle_timeout(now);
        let (dst, d) = sent(&mut c);
        assert_eq!(dst, Ipv4Addr::BROADCAST);
        assert_eq!(d.message_type, Some(MessageType::Discover));
        assert_eq!(d.xid, first.xid, "retransmissions keep the xid");
        assert_eq!(
            u64::from(d.secs),
            (now - t0).as_secs(),
            "secs since the start"
        );
    }
}

#[test]
fn jitter_differs_between_seeds() {
    let t0 = Instant::now();
    let waits: Vec<Duration> = (1..=8u64)
        .map(|seed| {
            let mut c = Client::new(ClientConfig::new(MAC, seed * 7919), t0);
            c.start(t0);
            c.poll_timeout().unwrap() - t0
        })
        .collect();
    assert!(waits.iter().any(|w| *w != waits[0]), "no jitter: {waits:?}");
}

#[test]
fn request_unanswered_falls_back_to_discover() {
    let t0 = Instant::now();
    let mut c = client(t0);
    c.start(t0);
    let (_, d) = sent(&mut c);
    c.handle(t0, &reply(&d, MessageType::Offer, 60));
    let (_, r) = sent(&mut c);
    assert_eq!(r.message_type, Some(MessageType::Request));
    // request_attempts = 4: three retransmissions, then DISCOVER with a new xid.
    for _ in 0..3 {
        let t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
        let (_, r2) = sent(&mut c);
        assert_eq!(r2.message_type, Some(MessageType::Request));
        assert_eq!(r2.xid, r.xid);
    }
    let t = c.poll_timeout().unwrap();
    c.handle_timeout(t);
    let (_, d2) = sent(&mut c);
    assert_eq!(d2.message_type, Some(MessageType::Discover));
    assert_ne!(d2.xid, d.xid);
    assert_eq!(c.state(), &State::Selecting);
}

#[test]
fn nak_restarts_discovery_then_pauses_on_repeats() {
    let t0 = Instant::now();
    let mut c = client(t0);
    c.start(t0);
    let (_, d) = sent(&mut c);
    c.handle(t0, &reply(&d, MessageType::Offer, 60));
    let (_, r) = sent(&mut c);
    c.handle(t0, &reply(&r, MessageType::Nak, 0));
    assert!(c.poll_event().is_none(), "no lease was held");
    // First NAK: DISCOVER at once, new xid.
    let (_, d2) = sent(&mut c);
    assert_eq!(d2.message_type, Some(MessageType::Discover));
    assert_ne!(d2.xid, d.xid);
    // Second NAK in a row: a pause (initial_rto = 250 ms ± 62.5 ms) before the next
    // DISCOVER.
    c.handle(t0, &reply(&d2, MessageType::Offer, 60));
    let (_, r2) = sent(&mut c);
    c.handle(t0, &reply(&r2, MessageType::Nak, 0));
    assert!(c.poll_transmit().is_none());
    assert_eq!(c.state(), &State::Init);
    let t = c.poll_timeout().unwrap();
    assert!(
        t - t0 >= Duration::from_micros(187_500) && t - t0 <= Duration::from_micros(312_500),
        "pause {:?}",
        t - t0
    );
    c.handle_timeout(t);
    let (_, d3) = sent(&mut c);
    assert_eq!(d3.message_type, Some(MessageType::Discover));
    // And the lease then works as usual.
    c.handle(t, &reply(&d3, MessageType::Offer, 60));
    let (_, r3) = sent(&mut c);
    c.handle(t, &reply(&r3, MessageType::Ack, 60));
    assert!(matches!(c.poll_event(), Some(Event::Bound(_))));
}

#[test]
fn renew_at_t1_unicast_to_the_server() {
    let t0 = Instant::now();
    let mut c = client(t0);
    c.cfg.renew_min_retry = Duration::from_secs(10);
    let l = bind(&mut c, t0, 600);
    c.handle_timeout(l.renew_at);
    let (dst, r) = sent(&mut c);
    assert_eq!(dst, SERVER, "RENEWING is unicast");
    assert_eq!(r.message_type, Some(MessageType::Request));
    assert_eq!(r.ciaddr, ADDR);
    assert_eq!(r.requested_ip, None);
    assert_eq!(r.server_id, None);
    assert!(!r.broadcast);
    assert_eq!(c.state(), &State::Renewing);
    // Next try: half of the 225 s left to T2.
    assert_eq!(
        c.poll_timeout(),
        Some(l.renew_at + Duration::from_millis(112_500))
    );
    let t = l.renew_at + Duration::from_secs(1);
    c.handle(t, &reply(&r, MessageType::Ack, 600));
    match c.poll_event() {
        Some(Event::Renewed(n)) => {
            assert_eq!(n.addr, ADDR);
            assert_eq!(n.expires_at, t + Duration::from_secs(600));
        }
        other => panic!("expected Renewed, got {other:?}"),
    }
    assert_eq!(c.state(), &State::Bound);
    assert_eq!(c.poll_timeout(), Some(t + Duration::from_secs(300)));
}

#[test]
fn rebind_at_t2_broadcast_then_expiry() {
    let t0 = Instant::now();
    let mut c = client(t0);
    c.cfg.renew_min_retry = Duration::from_secs(10);
    let l = bind(&mut c, t0, 600);
    // Renewing: retries at half the time left to T2, at least 10 s, never past T2.
    let mut now = l.renew_at;
    c.handle_timeout(now);
    let mut renews = 0;
    while c.state() == &State::Renewing || c.poll_timeout().is_some_and(|t| t < l.rebind_at) {
        let (dst, _) = sent(&mut c);
        assert_eq!(dst, SERVER);
        renews += 1;
        now = c.poll_timeout().unwrap();
        assert!(now <= l.rebind_at);
        c.handle_timeout(now);
        if now == l.rebind_at {
            break;
        }
    }
    assert!(renews >= 3, "{renews} renew attempts");
    assert_eq!(c.state(), &State::Rebinding);
    let (dst, r) = sent(&mut c);
    assert_eq!(dst, Ipv4Addr::BROADCAST, "REBINDING is broadcast");
    assert_eq!(r.ciaddr, ADDR);
    assert_eq!(r.server_id, None);
    // Nobody answers: retries until the expiry, then the lease is lost and discovery
    // starts at once.
    loop {
        let t = c.poll_timeout().unwrap();
        assert!(t <= l.expires_at);
        c.handle_timeout(t);
        if t == l.expires_at {
            break;
        }
        let (dst, _) = sent(&mut c);
        assert_eq!(dst, Ipv4Addr::BROADCAST);
    }
    assert_eq!(c.poll_event(), Some(Event::Lost(l)));
    let (_, d) = sent(&mut c);
    assert_eq!(d.message_type, Some(MessageType::Discover));
    assert_eq!(c.state(), &State::Selecting);
    assert!(c.lease().is_none());
}

#[test]
fn rebinding_ack_from_another_server() {
    let t0 = Instant::now();
    let mut c = client(t0);
    let l = bind(&mut c, t0, 100);
    c.handle_timeout(l.renew_at);
    let _ = sent(&mut c);
    c.handle_timeout(l.rebind_at);
    let (_, r) = sent(&mut c);
    let mut ack = DhcpRepr::parse_bytes(&reply(&r, MessageType::Ack, 100)).unwrap();
    ack.server_id = Some(Ipv4Addr::new(192, 168, 77, 2));
    c.handle(l.rebind_at, &crate::dhcp::encode(&ack).unwrap());
    match c.poll_event() {
        Some(Event::Renewed(n)) => assert_eq!(n.server, Ipv4Addr::new(192, 168, 77, 2)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn nak_while_renewing_loses_the_lease() {
    let t0 = Instant::now();
    let mut c = client(t0);
    let l = bind(&mut c, t0, 600);
    c.handle_timeout(l.renew_at);
    let (_, r) = sent(&mut c);
    c.handle(l.renew_at, &reply(&r, MessageType::Nak, 0));
    assert_eq!(c.poll_event(), Some(Event::Lost(l)));
    let (_, d) = sent(&mut c);
    assert_eq!(d.message_type, Some(MessageType::Discover));
}

#[test]
fn stop_forgets_the_lease() {
    let t0 = Instant::now();
    let mut c = client(t0);
    let l = bind(&mut c, t0, 600);
    assert_eq!(c.stop(), Some(l));
    assert_eq!(c.state(), &State::Stopped);
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(t0 + Duration::from_secs(1000));
    assert!(c.poll_transmit().is_none());
    assert!(c.poll_event().is_none());
    // Link up again: a fresh discovery.
    let l2 = bind(&mut c, t0 + Duration::from_secs(5), 600);
    assert_eq!(l2.addr, ADDR);
}

#[test]
fn start_while_bound_gives_the_lease_up() {
    // Found by the dhcp_client fuzz target: a second start() kept the lease in SELECTING,
    // and the next ACK for another address replaced it without a Lost, which would leave
    // the old address installed. (The shell starts each client once today, on a new
    // link; the state machine must not depend on that.)
    let t0 = Instant::now();
    let mut c = client(t0);
    let l = bind(&mut c, t0, 600);
    c.start(t0 + Duration::from_secs(1));
    assert_eq!(c.poll_event(), Some(Event::Lost(l)));
    assert_eq!(c.lease(), None);
    assert_eq!(c.state(), &State::Selecting);
    let (_, d) = sent(&mut c);
    assert_eq!(d.message_type, Some(MessageType::Discover));
}

#[test]
fn renewing_ack_without_an_address_is_ignored() {
    // Found by the dhcp_client fuzz target: an ACK with yiaddr 0.0.0.0 while RENEWING
    // replaced the lease by one for 0.0.0.0 (Lost, then Bound 0.0.0.0 for the shell to
    // install). OFFERs were already checked; ACKs now are too, like other addresses no
    // server may assign.
    for yiaddr in [
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(224, 0, 0, 1),
        Ipv4Addr::LOCALHOST,
    ] {
        let t0 = Instant::now();
        let mut c = client(t0);
        let l = bind(&mut c, t0, 600);
        c.handle_timeout(l.renew_at);
        let (_, r) = sent(&mut c);
        let mut ack = DhcpRepr::parse_bytes(&reply(&r, MessageType::Ack, 600)).unwrap();
        ack.yiaddr = yiaddr;
        c.handle(l.renew_at, &crate::dhcp::encode(&ack).unwrap());
        assert_eq!(c.poll_event(), None, "{yiaddr}");
        assert_eq!(c.lease(), Some(&l));
        assert_eq!(c.state(), &State::Renewing);
        // Nor is such an address offered.
        let mut c = client(t0);
        c.start(t0);
        let (_, d) = sent(&mut c);
        let mut offer = DhcpRepr::parse_bytes(&reply(&d, MessageType::Offer, 600)).unwrap();
        offer.yiaddr = yiaddr;
        c.handle(t0, &crate::dhcp::encode(&offer).unwrap());
        assert_eq!(c.state(), &State::Selecting, "{yiaddr}");
    }
}

#[test]
fn server_t1_t2_and_odd_masks() {
    let t0 = Instant::now();
    let mut c = client(t0);
    c.start(t0);
    let (_, d) = sent(&mut c);
    c.handle(t0, &reply(&d, MessageType::Offer, 100));
    let (_, r) = sent(&mut c);
    let mut ack = DhcpRepr::parse_bytes(&reply(&r, MessageType::Ack, 100)).unwrap();
    ack.renewal_time = Some(20);
    ack.rebinding_time = Some(500); // past the lease: clamped
    ack.subnet_mask = Some(Ipv4Addr::new(255, 0, 255, 0));
    c.handle(t0, &crate::dhcp::encode(&ack).unwrap());
    let Some(Event::Bound(l)) = c.poll_event() else {
        panic!()
    };
    assert_eq!(l.renew_at, t0 + Duration::from_secs(20));
    assert_eq!(l.rebind_at, t0 + Duration::from_secs(100));
    assert_eq!(l.prefix_len, 32);
}

#[test]
fn infinite_lease_never_renews_soon() {
    let t0 = Instant::now();
    let mut c = client(t0);
    let l = bind(&mut c, t0, u32::MAX);
    assert_eq!(l.lease_secs, u32::MAX, "the shell installs it as 'forever'");
    assert!(l.renew_at >= t0 + Duration::from_secs(u64::from(u32::MAX / 2)));
    c.handle_timeout(t0 + Duration::from_secs(86_400 * 365));
    assert!(c.poll_transmit().is_none());
    assert_eq!(c.state(), &State::Bound);
}
