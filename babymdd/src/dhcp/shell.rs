//! The DHCP clients' IO: one UDP socket per egress link, and the kernel state a lease
//! installs.
//!
//! **Sockets**: UDP, port 68, `SO_BINDTODEVICE` to the link, `SO_BROADCAST`,
//! `SO_REUSEADDR` (one socket per link on the same port) receives everything: the server
//! is asked to broadcast its replies (the broadcast flag), which Linux delivers to a
//! device-bound socket on a link without any IPv4 address. It sends only what has ciaddr
//! set (RENEWING, REBINDING: the leased address is on the link and is the source).
//! Messages with ciaddr 0.0.0.0 (DISCOVER, the SELECTING REQUEST) must have source
//! 0.0.0.0 (RFC 2131 §4.1), which a UDP socket cannot give (the kernel takes another
//! interface's address): they go out on a per-link `AF_PACKET` socket with headers we
//! build ([`super::raw`]).
//!
//! **Installed for a lease** (removed when it is lost, on link down, or when the link
//! goes away):
//! * the address, `yiaddr/prefix` with valid and preferred lifetimes equal to the lease
//!   time (refreshed on every renewal), so the kernel expires it even if babymdd dies;
//! * a default route in the main table `via router dev LINK proto dhcp metric
//!   BASE+preference` when the server gave a router: the IPv4 CoA must reach the home
//!   agent's IPv4 address, and the per-link metric keeps the preferred link's route first
//!   when several links hold leases.
//!
//! Nothing else: DNS options are never requested, so resolv.conf is never written.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, CacheInfo};
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::route::RouteProtocol;
use rtnetlink::{AddressMessageBuilder, Handle, RouteMessageBuilder};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::client::{Client, ClientConfig, Event, Lease, Transmit};
use super::raw::BroadcastSender;
use proto::dhcp::{CLIENT_PORT, SERVER_PORT};

/// Default base of the default routes' metrics (plus the link's preference).
pub const DEFAULT_ROUTE_METRIC: u32 = 1000;

struct Link {
    name: String,
    metric: u32,
    client: Client,
    sock: Arc<UdpSocket>,
    /// Sends what has to leave from 0.0.0.0.
    raw: BroadcastSender,
    reader: JoinHandle<()>,
    /// The lease whose address (and route) is in the kernel.
    installed: Option<Lease>,
    /// When the link came up (for the "bound after" log).
    up_at: Instant,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The DHCP clients of every up egress link.
pub struct Dhcp {
    handle: Handle,
    metric_base: u32,
    links: HashMap<u32, Link>,
    tx: mpsc::UnboundedSender<(u32, Vec<u8>)>,
    rx: mpsc::UnboundedReceiver<(u32, Vec<u8>)>,
}

impl std::fmt::Debug for Dhcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dhcp")
            .field("links", &self.links.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Dhcp {
    /// No link yet. `handle` is babymdd's rtnetlink handle.
    pub fn new(handle: Handle, metric_base: u32) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Dhcp {
            handle,
            metric_base,
            links: HashMap::new(),
            tx,
            rx,
        }
    }

    /// Whether a client runs on `ifindex`.
    pub fn running(&self, ifindex: u32) -> bool {
        self.links.contains_key(&ifindex)
    }

    /// The link came up: open its socket and send the first DISCOVER now.
    pub async fn link_up(&mut self, now: Instant, ifindex: u32, name: &str, preference: u32) {
        if self.running(ifindex) {
            return;
        }
        let mac = match self.mac(ifindex).await {
            Some(m) => m,
            None => {
                warn!(ifindex, name, "no Ethernet address: no DHCP on this link");
                return;
            }
        };
        let sock = match open_socket(name) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                warn!(ifindex, name, error = %e, "DHCP socket failed");
                return;
            }
        };
        let raw = match BroadcastSender::new(ifindex) {
            Ok(r) => r,
            Err(e) => {
                warn!(ifindex, name, error = %e, "DHCP packet socket failed");
                return;
            }
        };
        let seed = seed(ifindex);
        let mut client = Client::new(ClientConfig::new(mac, seed), now);
        client.start(now);
        let reader = tokio::spawn(read_loop(ifindex, sock.clone(), self.tx.clone()));
        info!(ifindex, name, "DHCP discovery started");
        self.links.insert(
            ifindex,
            Link {
                name: name.to_string(),
                metric: self.metric_base.saturating_add(preference),
                client,
                sock,
                raw,
                reader,
                installed: None,
                up_at: now,
            },
        );
    }

    /// The link went down or away: forget the lease and remove its address and route.
    pub async fn link_down(&mut self, ifindex: u32) {
        let Some(mut l) = self.links.remove(&ifindex) else {
            return;
        };
        l.client.stop();
        if let Some(lease) = l.installed.take() {
            info!(ifindex, name = %l.name, addr = %lease.addr, "link down: DHCP lease dropped");
            self.uninstall(ifindex, &lease, l.metric).await;
        }
    }

    /// The next datagram received on any link.
    pub async fn recv(&mut self) -> (u32, Vec<u8>) {
        match self.rx.recv().await {
            Some(p) => p,
            // We hold a sender, so this never ends; pend rather than spin if it did.
            None => std::future::pending().await,
        }
    }

    /// A datagram from `ifindex`'s socket.
    pub fn handle_packet(&mut self, now: Instant, ifindex: u32, payload: &[u8]) {
        if let Some(l) = self.links.get_mut(&ifindex) {
            l.client.handle(now, payload);
        }
    }

    /// The earliest client timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.links
            .values()
            .filter_map(|l| l.client.poll_timeout())
            .min()
    }

    /// Runs due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        for l in self.links.values_mut() {
            l.client.handle_timeout(now);
        }
    }

    /// Sends what the clients queued and applies their events to the kernel.
    pub async fn flush(&mut self) {
        let ifindexes: Vec<u32> = self.links.keys().copied().collect();
        for ifindex in ifindexes {
            while let Some(l) = self.links.get_mut(&ifindex) {
                if let Some(t) = l.client.poll_transmit() {
                    if from_unspecified(&t) {
                        if let Err(e) = l.raw.send(&t.payload) {
                            debug!(ifindex, error = %e, "DHCP broadcast send failed");
                        }
                        continue;
                    }
                    let to = SocketAddrV4::new(t.dst, SERVER_PORT);
                    // Not try_send_to: a fresh tokio socket has no readiness yet, and the
                    // first DISCOVER would fail with EWOULDBLOCK.
                    if let Err(e) = l.sock.send_to(&t.payload, to).await {
                        debug!(ifindex, %to, error = %e, "DHCP send failed");
                    }
                    continue;
                }
                let Some(ev) = l.client.poll_event() else {
                    break;
                };
                let (name, metric, up_at) = (l.name.clone(), l.metric, l.up_at);
                match ev {
                    Event::Bound(lease) => {
                        info!(ifindex, name, addr = %lease.addr, prefix_len = lease.prefix_len,
                            router = ?lease.router, server = %lease.server, lease_s = lease.lease_secs,
                            after_ms = lease.acquired.saturating_duration_since(up_at).as_millis() as u64,
                            "DHCP lease bound");
                        self.install(ifindex, &lease, metric).await;
                    }
                    Event::Renewed(lease) => {
                        debug!(ifindex, name, addr = %lease.addr, lease_s = lease.lease_secs, "DHCP lease renewed");
                        self.install(ifindex, &lease, metric).await;
                    }
                    Event::Lost(lease) => {
                        info!(ifindex, name, addr = %lease.addr, "DHCP lease lost");
                        self.uninstall(ifindex, &lease, metric).await;
                        if let Some(l) = self.links.get_mut(&ifindex) {
                            l.installed = None;
                        }
                    }
                }
            }
        }
    }

    async fn install(&mut self, ifindex: u32, lease: &Lease, metric: u32) {
        let mut req = self
            .handle
            .address()
            .add(ifindex, lease.addr.into(), lease.prefix_len)
            .replace();
        let mut ci = CacheInfo::default();
        ci.ifa_preferred = lease.lease_secs;
        ci.ifa_valid = lease.lease_secs;
        req.message_mut()
            .attributes
            .push(AddressAttribute::CacheInfo(ci));
        if let Err(e) = req.execute().await {
            warn!(ifindex, addr = %lease.addr, error = %e, "adding the DHCP address failed");
            return;
        }
        if let Some(l) = self.links.get_mut(&ifindex) {
            l.installed = Some(lease.clone());
        }
        if let Some(gw) = lease.router {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(ifindex)
                .protocol(RouteProtocol::Dhcp)
                .priority(metric)
                .build();
            if let Err(e) = self.handle.route().add(route).replace().execute().await {
                warn!(ifindex, router = %gw, metric, error = %e, "adding the DHCP default route failed");
            }
        }
    }

    async fn uninstall(&self, ifindex: u32, lease: &Lease, metric: u32) {
        // Gone already (the kernel expired it, or the link vanished) is success.
        if let Some(gw) = lease.router {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(ifindex)
                .protocol(RouteProtocol::Dhcp)
                .priority(metric)
                .build();
            if let Err(e) = self.handle.route().del(route).execute().await {
                debug!(ifindex, error = %e, "DHCP default route already gone");
            }
        }
        let msg = AddressMessageBuilder::<Ipv4Addr>::new()
            .index(ifindex)
            .address(lease.addr, lease.prefix_len)
            .build();
        if let Err(e) = self.handle.address().del(msg).execute().await {
            debug!(ifindex, addr = %lease.addr, error = %e, "DHCP address already gone");
        }
    }

    async fn mac(&self, ifindex: u32) -> Option<[u8; 6]> {
        let mut links = self.handle.link().get().match_index(ifindex).execute();
        while let Some(Ok(l)) = links.next().await {
            for a in &l.attributes {
                if let LinkAttribute::Address(hw) = a
                    && let Ok(mac) = <[u8; 6]>::try_from(hw.as_slice())
                {
                    return Some(mac);
                }
            }
        }
        None
    }
}

/// Whether `t` must leave with source 0.0.0.0: ciaddr is zero, the client has no address
/// yet (RFC 2131 §4.1, table 4), and a broadcast is what those messages are.
fn from_unspecified(t: &Transmit) -> bool {
    t.dst == Ipv4Addr::BROADCAST && t.payload.get(12..16).is_some_and(|c| c == [0; 4])
}

fn open_socket(name: &str) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.bind_device(Some(name.as_bytes()))?;
    s.set_broadcast(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, CLIENT_PORT).into())?;
    UdpSocket::from_std(s.into())
}

async fn read_loop(ifindex: u32, sock: Arc<UdpSocket>, tx: mpsc::UnboundedSender<(u32, Vec<u8>)>) {
    let mut buf = vec![0u8; 1500];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, _)) => {
                if tx.send((ifindex, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) => {
                debug!(ifindex, error = %e, "DHCP receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Seeds a client's generator: distinct per link, per process and per start.
fn seed(ifindex: u32) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ (u64::from(std::process::id()) << 32)
        ^ u64::from(ifindex).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}
