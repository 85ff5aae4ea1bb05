//! The bodies of babymdd's fuzz targets (`fuzz/` at the workspace root), kept in the crate
//! so the seed corpora also run as ordinary tests (`tests/fuzz_corpus.rs`). Each panics
//! only on a bug: a parser panic, or a broken invariant.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::dhcp::client::{Client, ClientConfig, Event, Lease, State};
use proto::dhcp::{BOOTREPLY, BOOTREQUEST, DhcpRepr, MessageType};

use crate::dhcp::encode;

/// A received DHCP message ([`DhcpRepr::parse`], what the client runs on every datagram
/// that reaches port 68). What parses re-emits to the same message.
pub fn dhcp_message(data: &[u8]) {
    let Ok(m) = DhcpRepr::parse_bytes(data) else {
        return;
    };
    let b = encode(&m).expect("a parsed message must re-emit (its options fit)");
    assert!(
        b.len() >= 300,
        "emitted message shorter than BOOTP's 300 octets"
    );
    let again = DhcpRepr::parse_bytes(&b).expect("an emitted message must parse");
    assert_eq!(again, m, "parse(emit(parse(x))) changed the message");
}

/// The interface's hardware address in [`dhcp_client`].
const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x42];

/// The DHCP client state machine driven by a script read from `data`: start, stop, time
/// passing (timers fire), received datagrams as they are or shaped into replies to the
/// client's last request (its xid and our chaddr), in any order and any state.
///
/// Invariants after every step: every datagram sent is a BOOTREQUEST from us that parses;
/// a lease is held exactly in BOUND, RENEWING and REBINDING, is never 0.0.0.0, and has
/// acquired <= T1 <= T2 <= expiry; the events tell the shell exactly the lease the client
/// holds (Bound for a new address, Renewed for the same one, Lost for the one it had); a
/// fired timer is re-armed in the future (no busy loop), and only a stopped client has
/// none.
pub fn dhcp_client(data: &[u8]) {
    let mut s = Script(data);
    let t0 = Instant::now();
    let mut now = t0;
    let seed = u64::from_le_bytes(s.array());
    let mut c = Client::new(ClientConfig::new(MAC, seed), now);
    let mut h = Harness { xid: 0, held: None };
    while let Some(op) = s.u8() {
        match op % 6 {
            0 => c.start(now),
            1 => {
                let lease = c.stop();
                assert_eq!(lease, h.held.take(), "stop() returned another lease");
            }
            2 => {
                // Up to ~49 days, so that any number of steps stays within a century.
                now += Duration::from_millis(u64::from(u32::from_le_bytes(s.array())));
                fire(&mut c, now);
            }
            3 => {
                if let Some(t) = c.poll_timeout() {
                    now = now.max(t);
                    fire(&mut c, now);
                }
            }
            4 => {
                let len = usize::from(u16::from_le_bytes(s.array()));
                let raw = s.take(len);
                c.handle(now, raw);
                if raw.len() >= 44 {
                    // The same octets as a reply to our last request.
                    let mut b = raw.to_vec();
                    b[0] = BOOTREPLY;
                    b[4..8].copy_from_slice(&h.xid.to_be_bytes());
                    b[28..34].copy_from_slice(&MAC);
                    c.handle(now, &b);
                }
            }
            _ => {
                let reply = s.reply(h.xid);
                c.handle(now, &reply);
            }
        }
        h.check(&mut c, now);
    }
}

/// Runs the timer if it is due, and checks it was re-armed in the future.
fn fire(c: &mut Client, now: Instant) {
    if c.poll_timeout().is_some_and(|t| t <= now) {
        c.handle_timeout(now);
        if let Some(t) = c.poll_timeout() {
            assert!(
                t > now,
                "timer re-armed at or before now: the driver would spin"
            );
        }
    }
}

struct Harness {
    /// The xid of the last request sent.
    xid: u32,
    /// The lease the events say the client holds.
    held: Option<Lease>,
}

impl Harness {
    fn check(&mut self, c: &mut Client, now: Instant) {
        while let Some(t) = c.poll_transmit() {
            let m = DhcpRepr::parse_bytes(&t.payload).expect("a sent datagram must parse");
            assert_eq!(m.op, BOOTREQUEST);
            assert_eq!(m.chaddr, MAC);
            assert!(
                t.dst == Ipv4Addr::BROADCAST || c.lease().is_some_and(|l| l.server == t.dst),
                "sent to {} in {:?}",
                t.dst,
                c.state()
            );
            self.xid = m.xid;
        }
        while let Some(e) = c.poll_event() {
            match e {
                Event::Bound(l) => {
                    assert!(
                        self.held.is_none(),
                        "Bound {} while {:?} is still installed",
                        l.addr,
                        self.held.as_ref().map(|h| h.addr)
                    );
                    self.held = Some(l);
                }
                Event::Renewed(l) => {
                    let held = self.held.as_ref().expect("Renewed without a lease");
                    assert_eq!(held.addr, l.addr, "Renewed another address");
                    self.held = Some(l);
                }
                Event::Lost(l) => {
                    assert_eq!(Some(&l), self.held.as_ref(), "Lost a lease not held");
                    self.held = None;
                }
            }
        }
        assert_eq!(
            c.lease(),
            self.held.as_ref(),
            "events disagree with the lease held"
        );
        let bound = matches!(c.state(), State::Bound | State::Renewing | State::Rebinding);
        assert_eq!(bound, c.lease().is_some(), "lease held in {:?}", c.state());
        if let Some(l) = c.lease() {
            assert!(!l.addr.is_unspecified(), "lease of 0.0.0.0");
            assert!(l.prefix_len <= 32);
            assert!(l.acquired <= l.renew_at && l.renew_at <= l.rebind_at);
            assert!(l.rebind_at <= l.expires_at && l.acquired < l.expires_at);
            assert!(l.acquired <= now);
        }
        assert_eq!(
            c.poll_timeout().is_none(),
            *c.state() == State::Stopped,
            "timer {:?} in {:?}",
            c.poll_timeout(),
            c.state()
        );
    }
}

/// The fuzzer's bytes, read front to back; zeros once they run out.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0; N];
        let n = N.min(self.0.len());
        a[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        a
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }

    fn addr(&mut self) -> Ipv4Addr {
        Ipv4Addr::from(self.array::<4>())
    }

    /// A well-formed reply to `xid`: message type, yiaddr and each option the client
    /// reads, present or not, from the script.
    fn reply(&mut self, xid: u32) -> Vec<u8> {
        let [kind, present] = self.array();
        let mut m = DhcpRepr::request(xid, MAC, MessageType::from(kind % 9));
        m.op = BOOTREPLY;
        m.yiaddr = self.addr();
        let opt = |bit: u8| present & (1 << bit) != 0;
        if opt(0) {
            m.server_id = Some(self.addr());
        }
        if opt(1) {
            m.lease_time = Some(u32::from_le_bytes(self.array()));
        }
        if opt(2) {
            m.renewal_time = Some(u32::from_le_bytes(self.array()));
        }
        if opt(3) {
            m.rebinding_time = Some(u32::from_le_bytes(self.array()));
        }
        if opt(4) {
            m.subnet_mask = Some(self.addr());
        }
        if opt(5) {
            m.router = Some(self.addr());
        }
        encode(&m).expect("a reply of named options must emit")
    }
}
