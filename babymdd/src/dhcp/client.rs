//! The DHCPv4 client state machine (RFC 2131 §4.4, figure 5), sans IO.
//!
//! One [`Client`] per interface. Inputs carry `now`: [`Client::start`],
//! [`Client::handle`] (a received UDP payload), [`Client::handle_timeout`]; outputs are
//! pulled: [`Client::poll_transmit`], [`Client::poll_event`], [`Client::poll_timeout`].
//! Randomness (transaction IDs, retransmission jitter) comes from a seeded generator, so
//! a test replays exactly.
//!
//! States: INIT → SELECTING (DISCOVER sent) → REQUESTING (REQUEST for the first OFFER)
//! → BOUND → at T1 RENEWING (unicast REQUEST to the server) → at T2 REBINDING (broadcast
//! REQUEST) → at expiry the lease is lost and discovery starts again. A NAK in REQUESTING,
//! RENEWING or REBINDING restarts discovery (the first one at once, repeated ones after a
//! growing pause so a confused server cannot make us spin). No DECLINE: the kernel's
//! address is the lease's, and the shell installs it with the lease lifetime so the kernel
//! expires it even if babymdd dies.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use proto::dhcp::{BOOTREPLY, DhcpRepr, MessageType, opt};
use tracing::{debug, warn};

/// Retransmission and timing parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Interface hardware address (chaddr and client identifier).
    pub mac: [u8; 6],
    /// First retransmission timeout in SELECTING and REQUESTING; doubles up to
    /// `max_rto`. RFC 2131 §4.1 suggests 4 s; we start at 250 ms because a lost first
    /// DISCOVER on a new link is a handover gap (at 1 s one lost DISCOVER made an
    /// IPv6 → IPv4 handover take 1.24 s in the lab).
    pub initial_rto: Duration,
    /// Largest retransmission timeout (RFC 2131 §4.1: 64 s).
    pub max_rto: Duration,
    /// REQUESTs sent for one OFFER before discovery starts again.
    pub request_attempts: u32,
    /// Smallest wait between REQUESTs in RENEWING/REBINDING (RFC 2131 §4.4.5: 60 s);
    /// never past T2 or the expiry.
    pub renew_min_retry: Duration,
    /// Seed of the generator for transaction IDs and jitter.
    pub seed: u64,
}

impl ClientConfig {
    /// Defaults for `mac`.
    pub fn new(mac: [u8; 6], seed: u64) -> Self {
        ClientConfig {
            mac,
            initial_rto: Duration::from_millis(250),
            max_rto: Duration::from_secs(64),
            request_attempts: 4,
            renew_min_retry: Duration::from_secs(60),
            seed,
        }
    }
}

/// An acknowledged lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Our address (yiaddr).
    pub addr: Ipv4Addr,
    /// From the subnet mask option (default /32 when absent: no on-link assumption).
    pub prefix_len: u8,
    /// First router option.
    pub router: Option<Ipv4Addr>,
    /// The server that granted it (server identifier).
    pub server: Ipv4Addr,
    /// Lease time (`u32::MAX` seconds = infinite).
    pub lease_secs: u32,
    /// When the ACK arrived.
    pub acquired: Instant,
    /// T1.
    pub renew_at: Instant,
    /// T2.
    pub rebind_at: Instant,
    /// Expiry.
    pub expires_at: Instant,
}

/// What the client tells the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new lease: install the address (and route).
    Bound(Lease),
    /// The same address with new times (renewed or rebound): refresh the lifetimes.
    Renewed(Lease),
    /// The lease is gone (expired or NAKed): remove the address (and route).
    Lost(Lease),
}

/// A datagram to send from port 68 to port 67.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// 255.255.255.255, or the server in RENEWING.
    pub dst: Ipv4Addr,
    /// The DHCP message.
    pub payload: Vec<u8>,
}

/// RFC 2131 figure 5 (INIT-REBOOT and REBOOTING are not used: we always discover).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not started, or stopped (link down).
    Stopped,
    /// Waiting before discovery (after repeated NAKs).
    Init,
    /// DISCOVER sent, waiting for an OFFER.
    Selecting,
    /// REQUEST sent for this offer, waiting for the ACK.
    Requesting {
        /// The offered address.
        addr: Ipv4Addr,
        /// The offering server.
        server: Ipv4Addr,
    },
    /// Lease held.
    Bound,
    /// T1 passed: asking our server.
    Renewing,
    /// T2 passed: asking any server.
    Rebinding,
}

/// One interface's DHCP client.
#[derive(Debug)]
pub struct Client {
    cfg: ClientConfig,
    state: State,
    xid: u32,
    rng: u64,
    lease: Option<Lease>,
    /// Next timer (retransmission, T1, T2, expiry or the post-NAK pause).
    timer: Option<Instant>,
    /// Retransmissions so far in this exchange.
    attempt: u32,
    /// Start of the current exchange (`secs` field).
    exchange_start: Instant,
    /// NAKs since the last lease.
    naks: u32,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

/// Options we ask for: mask, router, lease time, server id, T1, T2. Never DNS.
const PARAMETERS: [u8; 6] = [
    opt::SUBNET_MASK,
    opt::ROUTER,
    opt::LEASE_TIME,
    opt::SERVER_ID,
    opt::RENEWAL_TIME,
    opt::REBINDING_TIME,
];

/// Whether a server may hand out `a` (yiaddr) as our address: not 0.0.0.0 (a server's
/// "no address", which the shell would install), not broadcast, multicast or loopback.
fn assignable(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback())
}

impl Client {
    /// A stopped client.
    pub fn new(cfg: ClientConfig, now: Instant) -> Self {
        let rng = cfg.seed | 1;
        Client {
            cfg,
            state: State::Stopped,
            xid: 0,
            rng,
            lease: None,
            timer: None,
            attempt: 0,
            exchange_start: now,
            naks: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The lease held, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Starts discovery now (link up). A lease still held (a link up without a link down
    /// before it) is given up first, as [`Event::Lost`]: only BOUND, RENEWING and
    /// REBINDING hold one, and discovery may well find another address.
    pub fn start(&mut self, now: Instant) {
        if let Some(l) = self.lease.take() {
            self.events.push_back(Event::Lost(l));
        }
        self.naks = 0;
        self.discover(now);
    }

    /// Stops (link down) and forgets the lease, returning it so the shell removes the
    /// address. No RELEASE: the link is down, nothing would carry it.
    pub fn stop(&mut self) -> Option<Lease> {
        self.state = State::Stopped;
        self.timer = None;
        self.transmits.clear();
        self.lease.take()
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Client::handle_timeout`] should run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer
    }

    /// xorshift64*: good enough for xids and jitter.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The `attempt`-th retransmission timeout: `initial_rto`·2^attempt capped at
    /// `max_rto`, randomised by ±min(1 s, a quarter of it) (RFC 2131 §4.1: ±1 s on 4 s).
    fn backoff(&mut self, attempt: u32) -> Duration {
        let base = self
            .cfg
            .initial_rto
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cfg.max_rto);
        let j = (base / 4).min(Duration::from_secs(1));
        let span = (j.as_micros() as u64) * 2 + 1;
        let r = Duration::from_micros(self.random() % span);
        base - j + r
    }

    fn new_exchange(&mut self, now: Instant) {
        self.xid = self.random() as u32;
        self.attempt = 0;
        self.exchange_start = now;
    }

    fn message(&self, now: Instant, t: MessageType) -> DhcpRepr {
        let mut m = DhcpRepr::request(self.xid, self.cfg.mac, t);
        m.secs = now
            .saturating_duration_since(self.exchange_start)
            .as_secs()
            .min(u64::from(u16::MAX)) as u16;
        let mut id = vec![1];
        id.extend_from_slice(&self.cfg.mac);
        m.client_id = Some(id);
        m.parameter_request_list = PARAMETERS.to_vec();
        m
    }

    fn discover(&mut self, now: Instant) {
        self.state = State::Selecting;
        self.new_exchange(now);
        self.send_discover(now);
    }

    fn send_discover(&mut self, now: Instant) {
        let mut m = self.message(now, MessageType::Discover);
        m.broadcast = true;
        self.push(Ipv4Addr::BROADCAST, &m);
        self.timer = Some(now + self.backoff(self.attempt));
    }

    fn send_request_selecting(&mut self, now: Instant, addr: Ipv4Addr, server: Ipv4Addr) {
        let mut m = self.message(now, MessageType::Request);
        m.broadcast = true;
        m.requested_ip = Some(addr);
        m.server_id = Some(server);
        self.push(Ipv4Addr::BROADCAST, &m);
        self.timer = Some(now + self.backoff(self.attempt));
    }

    /// RENEWING (unicast to the server) or REBINDING (broadcast): ciaddr set, no
    /// server id or requested address (RFC 2131 §4.3.2 table 4). Next try after half the
    /// time left to `deadline`, at least `renew_min_retry`, never past `deadline`.
    fn send_request_bound(&mut self, now: Instant, dst: Ipv4Addr, deadline: Instant) {
        let Some(addr) = self.lease.as_ref().map(|l| l.addr) else {
            return;
        };
        let mut m = self.message(now, MessageType::Request);
        m.ciaddr = addr;
        self.push(dst, &m);
        let left = deadline.saturating_duration_since(now);
        let wait = (left / 2).max(self.cfg.renew_min_retry).min(left);
        self.timer = Some(now + wait);
    }

    fn push(&mut self, dst: Ipv4Addr, m: &DhcpRepr) {
        debug!(kind = ?m.message_type, %dst, xid = m.xid, attempt = self.attempt, "DHCP send");
        match super::encode(m) {
            Ok(payload) => self.transmits.push_back(Transmit { dst, payload }),
            // Unreachable with the options built above; the retransmission timer runs on.
            Err(e) => warn!(error = %e, "DHCP message not encodable"),
        }
    }

    /// Runs the timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timer.is_none_or(|t| t > now) {
            return;
        }
        self.timer = None;
        match self.state.clone() {
            State::Stopped => {}
            State::Init => self.discover(now),
            State::Selecting => {
                self.attempt += 1;
                self.send_discover(now);
            }
            State::Requesting { addr, server } => {
                self.attempt += 1;
                if self.attempt >= self.cfg.request_attempts {
                    self.discover(now);
                } else {
                    self.send_request_selecting(now, addr, server);
                }
            }
            State::Bound | State::Renewing | State::Rebinding => self.lease_timer(now),
        }
    }

    fn lease_timer(&mut self, now: Instant) {
        let Some(l) = self.lease.clone() else {
            return self.discover(now);
        };
        if now >= l.expires_at {
            self.lose(now);
        } else if now >= l.rebind_at {
            if self.state != State::Rebinding {
                self.state = State::Rebinding;
                self.new_exchange(now);
            }
            self.send_request_bound(now, Ipv4Addr::BROADCAST, l.expires_at);
        } else if now >= l.renew_at {
            if self.state != State::Renewing {
                self.state = State::Renewing;
                self.new_exchange(now);
            }
            self.send_request_bound(now, l.server, l.rebind_at);
        } else {
            self.timer = Some(l.renew_at);
        }
    }

    /// The lease is gone: tell the shell, and discover again at once.
    fn lose(&mut self, now: Instant) {
        if let Some(l) = self.lease.take() {
            self.events.push_back(Event::Lost(l));
        }
        self.discover(now);
    }

    /// A UDP payload received on port 68 of this interface.
    pub fn handle(&mut self, now: Instant, payload: &[u8]) {
        let Ok(m) = DhcpRepr::parse_bytes(payload) else {
            return;
        };
        if m.op != BOOTREPLY || m.xid != self.xid || m.chaddr != self.cfg.mac {
            return;
        }
        debug!(kind = ?m.message_type, yiaddr = %m.yiaddr, server = ?m.server_id,
            state = ?self.state, "DHCP reply");
        match (self.state.clone(), m.message_type) {
            (State::Selecting, Some(MessageType::Offer)) => {
                let Some(server) = m.server_id else {
                    return;
                };
                if !assignable(m.yiaddr) {
                    return;
                }
                // The first offer wins (RFC 2131 §4.4.1 lets the client choose).
                self.state = State::Requesting {
                    addr: m.yiaddr,
                    server,
                };
                self.attempt = 0;
                self.send_request_selecting(now, m.yiaddr, server);
            }
            (State::Requesting { addr, server }, Some(MessageType::Ack)) => {
                if m.server_id.is_some_and(|s| s != server) || m.yiaddr != addr {
                    return;
                }
                self.bind(now, &m, server);
            }
            (State::Renewing | State::Rebinding, Some(MessageType::Ack)) => {
                let Some(old) = self.lease.clone() else {
                    return;
                };
                if !assignable(m.yiaddr) {
                    return;
                }
                let server = m.server_id.unwrap_or(old.server);
                if m.yiaddr != old.addr {
                    // Another address: the old one is gone.
                    self.lease = None;
                    self.events.push_back(Event::Lost(old));
                }
                self.bind(now, &m, server);
            }
            (State::Requesting { server, .. }, Some(MessageType::Nak)) => {
                if m.server_id.is_some_and(|s| s != server) {
                    return;
                }
                self.nak(now);
            }
            (State::Renewing | State::Rebinding, Some(MessageType::Nak)) => self.nak(now),
            _ => {}
        }
    }

    fn nak(&mut self, now: Instant) {
        self.naks += 1;
        if let Some(l) = self.lease.take() {
            self.events.push_back(Event::Lost(l));
        }
        if self.naks == 1 {
            self.discover(now);
        } else {
            // Repeated NAKs: pause before asking again.
            self.state = State::Init;
            self.transmits.clear();
            let pause = self.backoff(self.naks - 2);
            self.timer = Some(now + pause);
        }
    }

    fn bind(&mut self, now: Instant, m: &DhcpRepr, server: Ipv4Addr) {
        let secs = m.lease_time.unwrap_or(3600).max(1);
        let lease_d = Duration::from_secs(u64::from(secs));
        // RFC 2131 §4.4.5: T1 = 0.5, T2 = 0.875 of the lease unless the server says;
        // keep T1 <= T2 <= lease whatever it says.
        let t2 = m
            .rebinding_time
            .map(|s| Duration::from_secs(u64::from(s)))
            .unwrap_or(lease_d * 7 / 8)
            .min(lease_d);
        let t1 = m
            .renewal_time
            .map(|s| Duration::from_secs(u64::from(s)))
            .unwrap_or(lease_d / 2)
            .min(t2);
        let prefix_len = m.subnet_mask.map_or(32, |mask| {
            let bits = u32::from(mask);
            // A non-contiguous mask is bogus; fall back to /32.
            if bits.leading_ones() + bits.trailing_zeros() == 32 {
                bits.leading_ones() as u8
            } else {
                32
            }
        });
        let lease = Lease {
            addr: m.yiaddr,
            prefix_len,
            router: m.router,
            server,
            lease_secs: secs,
            acquired: now,
            renew_at: now + t1,
            rebind_at: now + t2,
            expires_at: now + lease_d,
        };
        let renewed = self.lease.as_ref().is_some_and(|l| l.addr == lease.addr);
        self.state = State::Bound;
        self.naks = 0;
        self.lease = Some(lease.clone());
        self.timer = Some(lease.renew_at);
        self.events.push_back(if renewed {
            Event::Renewed(lease)
        } else {
            Event::Bound(lease)
        });
    }
}

#[cfg(test)]
mod tests;
