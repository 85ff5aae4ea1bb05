//! The daemon: start-up (flush stale state, TUN, sockets, state dump), the event loop over
//! the mipsock bus and signals, and teardown.

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Duration;

use mipsock::{
    AsyncEndpoint, Binding, Body, DataplaneReady, EndpointOptions, Message, MhUdpIn, MhUdpOut,
    PacketBytes, StateItem,
};
use nemo_daemon::Signal;
use nemo_daemon::metrics::Sample;
use tracing::{debug, info, warn};

use crate::config::Settings;
use crate::dataplane::{Counters, DataPlane, Peer, PeerTable, Sockets, TxConfig};
use crate::kernel::KernelPlane;
use crate::netops::KernelEvent;
use crate::netops::{NetOps, RtNetOps};
use crate::routes::{KernelState, Mode, RouteManager};
use crate::tun::Tun;
use proto::encap::Encapsulation;

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A system call or device failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A kernel request failed at start.
    #[error(transparent)]
    Net(#[from] crate::netops::NetOpsError),
    /// The mipsock bus failed.
    #[error("mipsock: {0}")]
    Bus(#[from] mipsock::Error),
    /// `dataplane kernel` was asked for and cannot be set up.
    #[error("kernel data plane: {0}")]
    Kernel(String),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> DaemonError {
    move |source| DaemonError::Io { what, source }
}

/// At most this many bus messages already waiting are handled as one batch. A batch
/// costs a pass over every binding (the peer snapshot, the filter, the routes), so a
/// fleet's burst must come in few: 100,000 bindings in batches of 256 were 390 passes
/// over up to 100,000, and took minutes.
const BUS_BATCH: usize = 4096;
/// Between two state dumps asked for because bus messages were lost for us: a burst that
/// outruns us (a home agent taking over a fleet) is read again once, not once per loss.
const RESYNC_GAP: Duration = Duration::from_secs(1);

/// The smallest MTU an IPv6 link may have (RFC 8200 §5).
const IPV6_MIN_MTU: u32 = 1280;

struct Daemon {
    settings: Settings,
    routes: RouteManager<RtNetOps>,
    /// The bindings; every change is published to the packet threads.
    table: PeerTable,
    counters: Arc<Counters>,
    egress_mtu: u32,
    tun_mtu: u32,
    /// The sockets (the UDP one sends the relayed DSMIPv6 signalling).
    sockets: Arc<Sockets>,
    /// Local port of the UDP socket (0: none).
    udp_port: u16,
    /// The kernel data plane, when it runs.
    kernel: Option<KernelPlane>,
    /// Its filter's counters, as last read: drops by reason, packets per far end.
    kernel_counts: crate::kernel::KernelCounters,
    /// While a state dump is applied: the kernel filter was synced for all of it first,
    /// and is synced once more at the end (one nft transaction, not one per binding).
    defer_kernel: bool,
}

impl Daemon {
    fn mode(&self) -> Mode {
        self.settings.routes.mode
    }

    /// TUN MTU = egress MTU minus the encapsulation (docs/notes.md §2), so the kernel sends
    /// Packet Too Big / fragmentation needed before a packet reaches the tunnel. The MR
    /// follows its binding's encapsulation; the HA serves every kind at once and takes the
    /// largest overhead (IPv6, 40).
    async fn update_mtu(&mut self) {
        let overhead = match self.mode() {
            Mode::HomeAgent => 40,
            Mode::MobileRouter => self
                .table
                .peers()
                .map(|p| p.encap.overhead() as u32)
                .max()
                .unwrap_or(40),
        };
        let mtu = self.egress_mtu.saturating_sub(overhead).max(IPV6_MIN_MTU);
        // The kernel data plane's device carries IPv6 outer headers only.
        let kernel_mtu = self.egress_mtu.saturating_sub(40).max(IPV6_MIN_MTU);
        if let Some(k) = &self.kernel {
            let dev = k.routes().dev.clone();
            if self.routes.net().link_mtu(&dev).await.ok() != Some(kernel_mtu) {
                match self
                    .routes
                    .net()
                    .link_set(&dev, None, Some(kernel_mtu))
                    .await
                {
                    Ok(()) => info!(dev = %dev, mtu = kernel_mtu, "kernel tunnel MTU set"),
                    Err(e) => warn!(error = %e, "cannot set the kernel tunnel MTU"),
                }
            }
        }
        if mtu != self.tun_mtu {
            let tun = self.settings.routes.tun.clone();
            match self.routes.net().link_set(&tun, None, Some(mtu)).await {
                Ok(()) => {
                    info!(tun = %tun, mtu, egress_mtu = self.egress_mtu, overhead, "tunnel MTU set");
                    self.tun_mtu = mtu;
                }
                Err(e) => warn!(error = %e, "cannot set the tunnel MTU"),
            }
        }
    }

    async fn binding_added(&mut self, b: &Binding) {
        if b.lifetime == 0 {
            return self.binding_removed(b).await;
        }
        let mut peer = match Peer::new(self.mode(), b) {
            Ok(mut p) => {
                // MR: UDP data leaves from our own UDP socket's port, the one the BU used,
                // so the NAT keeps one mapping for both (RFC 5555 §5.2).
                if let (Mode::MobileRouter, Encapsulation::Udp4 { src_port, .. }) =
                    (self.mode(), &mut p.encap)
                    && self.udp_port != 0
                {
                    *src_port = self.udp_port;
                }
                p
            }
            Err(e) => {
                warn!(hoa = %b.hoa, coa = %b.coa, error = %e, "binding ignored");
                return;
            }
        };
        self.place_kernel_source(b);
        self.place_kernel_outer(b).await;
        // After the source is placed: the first binding places it.
        peer.kernel_rx = crate::routes::kernel_decapsulates(self.routes.config(), b).is_some();
        let kernel = crate::routes::kernel_ends(self.routes.config(), b).is_some();
        let dataplane = if kernel { "kernel" } else { "tun" };
        info!(hoa = %b.hoa, coa = %b.coa, encap = ?peer.encap, mnp_v6 = ?b.mnp_v6, mnp_v4 = ?b.mnp_v4, lifetime = b.lifetime, dataplane, "binding up");
        // Data plane first: once a route points into the TUN, its packets find a peer.
        // Kernel bindings are in the peer table too: the ICMP errors about the tunnel
        // packets the kernel sends come to our ICMPv6 socket and are relayed to the
        // original sender like the TUN path's (RFC 2473 §8, [`crate::dataplane::icmp`]).
        self.table.upsert(peer);
        // A refresh (same end points, same prefixes) changes nothing in the filter: no
        // walk over every binding for it.
        let cfg = self.routes.config();
        let refresh = self
            .routes
            .binding(&crate::routes::key(b))
            .is_some_and(|old| {
                use crate::routes::{kernel_decapsulates, kernel_ends};
                kernel_ends(cfg, old) == kernel_ends(cfg, b)
                    && kernel_decapsulates(cfg, old) == kernel_decapsulates(cfg, b)
                    && crate::routes::sources(old) == crate::routes::sources(b)
            });
        // Received through the kernel's decapsulation (sent through TUN: RFC 5648's
        // bindings): its far end must be in the filter before it sends.
        let received = crate::routes::kernel_decapsulates(cfg, b).is_some();
        if (kernel || received) && !refresh {
            // Filter first: the routes below steer packets into the kernel's tunnel, and
            // the far end's packets must find their chain.
            self.sync_kernel(&[b]).await;
        }
        self.update_mtu().await;
        if let Err(e) = self.routes.add(b).await {
            warn!(hoa = %b.hoa, error = %e, "binding's routes incomplete; retried at the next event");
        }
        if !kernel && !received && !refresh {
            // A binding that left the kernel path (an IPv4 CoA now).
            self.sync_kernel(&[]).await;
        }
    }

    /// The kernel's tunnel source follows a binding that could use the kernel path when no
    /// other binding uses it (the MR's CoA after a move, the HA's first address); a
    /// binding with another local end point then takes the TUN device.
    fn place_kernel_source(&mut self, b: &Binding) {
        let cfg = self.routes.config();
        let Some((local, _)) = crate::routes::kernel_candidate(cfg, b) else {
            return;
        };
        if cfg.kernel.as_ref().and_then(|k| k.source) == Some(local) {
            return;
        }
        let key = crate::routes::key(b);
        let others = self
            .routes
            .bindings()
            .any(|o| crate::routes::key(o) != key && crate::routes::kernel_ends(cfg, o).is_some());
        if !others {
            self.routes.set_kernel_source(Some(local));
        }
    }

    /// A mobile router's outer packets on the kernel path leave by the care-of address's
    /// interface and its default router ([`crate::routes::KernelRoutes::outer`]): looked up
    /// in the main table for the binding's interface at each BUL_ADD (a move, a refresh).
    /// Without an interface or a default router there, the main table as before.
    /// Whether the way out changed.
    async fn place_kernel_outer(&mut self, b: &Binding) -> bool {
        if self.mode() != Mode::MobileRouter
            || crate::routes::kernel_ends(self.routes.config(), b).is_none()
        {
            return false;
        }
        let outer = match b.coa_ifindex {
            Some(index) => {
                let net = self.routes.net();
                match (
                    net.default_gateway6(index).await,
                    net.link_name(index).await,
                ) {
                    (Ok(Some(gw)), Ok(Some(dev))) => Some((gw, dev)),
                    (Err(e), _) | (_, Err(e)) => {
                        warn!(ifindex = index, error = %e, "care-of interface's default router not read; outer packets follow the main table");
                        None
                    }
                    _ => None,
                }
            }
            None => None,
        };
        let current = self
            .routes
            .config()
            .kernel
            .as_ref()
            .and_then(|k| k.outer.clone());
        if current == outer {
            return false;
        }
        info!(outer = ?outer, "kernel path: outer packets' way out");
        self.routes.set_kernel_outer(outer);
        true
    }

    /// The care-of interface's default router changed between two BUL_ADDs (a new router
    /// on the link, an RA's lifetime running out): the kernel path's outer route follows
    /// at once instead of at the next BUL_ADD.
    async fn follow_default_router(&mut self) -> Result<(), crate::netops::NetOpsError> {
        if self.mode() != Mode::MobileRouter {
            return Ok(());
        }
        let cfg = self.routes.config();
        let Some(b) = self
            .routes
            .bindings()
            .find(|b| crate::routes::kernel_ends(cfg, b).is_some())
            .cloned()
        else {
            return Ok(());
        };
        // The outer route is part of the kernel's shared state, which every reconcile
        // builds from the configuration as it is.
        if self.place_kernel_outer(&b).await {
            self.routes.reconcile().await?;
        }
        Ok(())
    }

    /// Brings the kernel data plane's filter and tunnel source to the live bindings, and
    /// `coming`, about to be added to them.
    async fn sync_kernel(&mut self, coming: &[&Binding]) {
        if self.defer_kernel {
            return;
        }
        let Some(k) = &mut self.kernel else { return };
        let keys: std::collections::BTreeSet<_> =
            coming.iter().map(|b| crate::routes::key(b)).collect();
        let live = self
            .routes
            .bindings()
            .filter(|b| !keys.contains(&crate::routes::key(b)));
        if let Err(e) = k
            .sync(
                self.routes.config(),
                live.chain(coming.iter().copied()),
                std::time::Instant::now(),
            )
            .await
        {
            warn!(error = %e, "kernel data plane filter not updated; rebuilt at the next event");
        }
        k.end_points_moved(self.routes.net()).await;
    }

    /// The word to had that a binding change it announced is applied (home agent only:
    /// the MR's BA has already arrived when mrd announces).
    fn dataplane_ready(&self, body: &Body) -> Option<DataplaneReady> {
        match (self.mode(), body) {
            (Mode::HomeAgent, Body::BcAdd(b)) => Some(DataplaneReady {
                hoa: b.hoa,
                removed: b.lifetime == 0,
                binding_id: b.binding_id,
            }),
            (Mode::HomeAgent, Body::BcRemove(b)) => Some(DataplaneReady {
                hoa: b.hoa,
                removed: true,
                binding_id: b.binding_id,
            }),
            _ => None,
        }
    }

    /// Reconciles with a change made to the kernel from outside.
    async fn on_kernel(&mut self, ev: KernelEvent) {
        let r = match ev {
            KernelEvent::RouteGone(t, d, s, m, u) => self.routes.route_gone((t, d, s, m, u)).await,
            KernelEvent::RuleGone(rule) => self.routes.rule_gone(&rule).await,
            KernelEvent::DefaultRoute6 => self.follow_default_router().await,
            KernelEvent::LinkMtu(name, mtu) => {
                // A device that appeared may be an uplink.
                if let Some(k) = &mut self.kernel {
                    k.attach_uplinks(self.routes.net()).await;
                }
                if name == self.settings.ifname && mtu != self.egress_mtu {
                    info!(ifname = %name, from = self.egress_mtu, to = mtu,
                        "egress MTU changed; resizing the tunnel");
                    self.egress_mtu = mtu;
                    self.update_mtu().await;
                } else if name == self.settings.routes.tun && mtu != self.tun_mtu {
                    // Notifications can be stale (our own TUN coming up at 1500 before we
                    // sized it): believe the kernel's current value.
                    let tun = self.settings.routes.tun.clone();
                    let now = self.routes.net().link_mtu(&tun).await.unwrap_or(mtu);
                    if now != self.tun_mtu {
                        warn!(tun = %name, mtu = now, "tunnel MTU changed from outside; setting it back");
                        self.tun_mtu = now;
                        self.update_mtu().await;
                    }
                }
                Ok(())
            }
        };
        if let Err(e) = r {
            warn!(error = %e, "kernel state not restored; retried at the next event");
        }
    }

    async fn binding_removed(&mut self, b: &Binding) {
        info!(hoa = %b.hoa, coa = %b.coa, "binding down");
        // Routes first: no packet is steered into the TUN without a peer to take it.
        if let Err(e) = self.routes.remove(b).await {
            warn!(hoa = %b.hoa, error = %e, "removal incomplete");
        }
        self.table.remove(b);
        let cfg = self.routes.config();
        if !self
            .routes
            .bindings()
            .any(|o| crate::routes::kernel_ends(cfg, o).is_some())
        {
            self.routes.set_kernel_source(None);
        }
        self.sync_kernel(&[]).await;
        self.update_mtu().await;
    }

    async fn flush(&mut self) {
        info!("all bindings flushed");
        if let Err(e) = self.routes.remove_all().await {
            warn!(error = %e, "flush incomplete");
        }
        self.table.clear();
        self.routes.set_kernel_source(None);
        self.sync_kernel(&[]).await;
    }

    async fn handle(&mut self, body: &Body) {
        if let Body::BulAdd(b) | Body::BcAdd(b) | Body::BulRemove(b) | Body::BcRemove(b) = body
            && let Some(why) = b.unusable()
        {
            // Nothing of it was installed (an add is refused the same way), so a removal
            // has nothing to take away either; above all, no route is replaced by it.
            warn!(hoa = %b.hoa, coa = %b.coa, msg_type = body.message_type().name(), why, "binding refused: no tunnel or route built from it");
            return;
        }
        match (self.mode(), body) {
            (Mode::MobileRouter, Body::BulAdd(b)) | (Mode::HomeAgent, Body::BcAdd(b)) => {
                self.binding_added(b).await
            }
            (Mode::MobileRouter, Body::BulRemove(b)) | (Mode::HomeAgent, Body::BcRemove(b)) => {
                self.binding_removed(b).await
            }
            (Mode::MobileRouter, Body::BulFlush) | (Mode::HomeAgent, Body::BcFlush) => {
                self.flush().await
            }
            (_, Body::MhUdpOut(m)) => self.send_mh(m),
            _ => {}
        }
    }

    /// Sends a Mobility Header from had / mrd in UDP/IPv4 from our UDP socket.
    fn send_mh(&self, m: &MhUdpOut) {
        let Some(s) = &self.sockets.udp else {
            warn!(peer = %m.peer, "DSMIPv6 signalling to send but no UDP socket (udp-port 0 or not bound); dropped");
            return;
        };
        let from = m.from.map(|f| (f.addr, f.ifindex));
        match crate::dataplane::send_udp_from(s, &m.packet.0, m.peer, from) {
            Ok(_) => {
                debug!(peer = %m.peer, ?from, len = m.packet.0.len(), "mobility header sent in UDP")
            }
            Err(e) => warn!(peer = %m.peer, ?from, error = %e, "mobility header not sent in UDP"),
        }
    }

    fn log_state(&self) {
        let t = &self.table;
        for p in t.peers() {
            info!(hoa = %p.binding.hoa, coa = %p.binding.coa, encap = ?p.encap, sources = ?p.sources, "peer");
        }
        let installed = self.routes.installed();
        info!(
            peers = t.len(),
            routes = installed.routes.len(),
            rules = installed.rules.len(),
            addrs = installed.addrs.len(),
            tun_mtu = self.tun_mtu,
            kernel = self.kernel.is_some(),
            "state"
        );
        if self.kernel.is_some() {
            let (spoofed_inner, no_binding, link_scope) = self.kernel_counts.drops;
            let (encap_refused, decap_refused) = self.kernel_counts.refused;
            info!(
                spoofed_inner,
                no_binding,
                link_scope,
                encap_refused,
                decap_refused,
                malformed = self.kernel_counts.malformed,
                "kernel data plane drops (at the last counters read)"
            );
        }
        self.counters.log("SIGUSR1");
    }

    /// Every binding as the data plane carries it, for `mipsock state`: its backend, its
    /// path's liveness, its packet counts (on the kernel path, its far end's, as the
    /// filter counted them at the last read).
    fn state_items(&self) -> Vec<mipsock::StateItem> {
        let kernel = self.kernel_far_ends();
        let now_ns = crate::dataplane::peers::mono_ns(std::time::Instant::now());
        let liveness = self.table.liveness();
        let mut items: Vec<_> = self
            .table
            .peers()
            .map(|p| {
                let key = (p.binding.hoa, p.binding.binding_id);
                let far_end = kernel.get(&key);
                let on_kernel = far_end.is_some();
                let (txp, txb, rxp, rxb) = p.counters.0.read();
                let (packets, octets) = match far_end {
                    Some(remote) => match self.kernel_counts.far_ends.get(remote) {
                        Some(c) => (
                            Some((c.sent_packets, c.received_packets)),
                            Some((c.sent_octets, c.received_octets)),
                        ),
                        None => (None, None),
                    },
                    None => (Some((txp, rxp)), Some((txb, rxb))),
                };
                mipsock::StateItem::Dataplane(mipsock::DataplaneInfo {
                    hoa: p.binding.hoa,
                    binding_id: p.binding.binding_id,
                    coa: p.binding.coa,
                    backend: if on_kernel {
                        mipsock::DataplaneBackend::Kernel
                    } else {
                        mipsock::DataplaneBackend::Tun
                    },
                    path_up: liveness
                        .filter(|_| p.is_mcoa())
                        .is_none_or(|limit| p.counters.0.alive(now_ns, limit)),
                    packets,
                    octets,
                    capacity_kbps: p.is_mcoa().then(|| p.counters.0.capacity.read()),
                })
            })
            .collect();
        items.sort_by_key(|i| match i {
            mipsock::StateItem::Dataplane(d) => (d.hoa, d.binding_id),
            _ => (std::net::Ipv6Addr::UNSPECIFIED, None),
        });
        items
    }

    /// Reads the kernel data plane's counters.
    async fn read_kernel_counters(&mut self) {
        if let Some(k) = &self.kernel
            && let Some(c) = k.counters().await
        {
            self.kernel_counts = c;
        }
    }

    /// The far end of every binding the kernel data plane carries: its packets are counted
    /// per far end ([`crate::kernel::KernelCounters`]).
    fn kernel_far_ends(&self) -> HashMap<(Ipv6Addr, Option<u16>), Ipv6Addr> {
        let cfg = self.routes.config();
        self.routes
            .bindings()
            .filter_map(|b| {
                crate::routes::kernel_ends(cfg, b)
                    .map(|(_, remote)| ((b.hoa, b.binding_id), remote))
            })
            .collect()
    }

    async fn teardown(&mut self) {
        if let Err(e) = self.routes.remove_all().await {
            warn!(error = %e, "teardown: removal incomplete");
        }
        let cfg = self.routes.config().clone();
        match self
            .routes
            .net()
            .flush_ours(cfg.rule_priorities(), cfg.table, &KernelState::default())
            .await
        {
            Ok(n) => debug!(left_over = n, "teardown flush"),
            Err(e) => warn!(error = %e, "teardown flush incomplete"),
        }
        if let Some(mut k) = self.kernel.take() {
            k.stop(self.routes.net()).await;
        }
        self.counters.log("exit");
    }
}

/// Runs the daemon until SIGTERM/SIGINT. Must run on a tokio runtime (current-thread is
/// enough: the packet work happens on the data plane's own threads). `reload` is SIGHUP's
/// look at the configuration file, given the running settings.
pub async fn run(
    settings: Settings,
    bus_dir: std::path::PathBuf,
    state_timeout: Duration,
    mut reload: impl FnMut(&Settings),
) -> Result<(), DaemonError> {
    let mut net = RtNetOps::new().map_err(io("netlink socket"))?;
    // A crashed run may have left the local table's rule moved (the kernel data plane):
    // local delivery first, whatever happens next.
    match crate::kernel::restore_local_rule(&mut net).await {
        Ok(true) => {
            warn!("the local table's rule was left moved by a previous run: put back at priority 0")
        }
        Ok(false) => {}
        Err(e) => warn!(error = %e, "local table rule not checked"),
    }
    let mut settings = settings;
    // Subscribed before anything is read or installed: no change in between is missed.
    let mut kernel = crate::netops::kernel_events().map_err(io("netlink notifications"))?;
    let mode = settings.routes.mode;
    // What a crashed run left (rules, unreachable defaults) stays until the state dump
    // tells what is still wanted: until then the mobile network fails closed instead of
    // leaving untunnelled.
    let egress_mtu = net.link_mtu(&settings.ifname).await?;
    let tun = Tun::open(
        &settings.routes.tun.clone(),
        settings.offload,
        settings.tun_queues,
    )
    .map_err(io("TUN device"))?;
    info!(tun = %tun.name(), offload = tun.vnet_hdr(), queues = tun.queues(), "TUN device open");
    net.link_set(tun.name(), Some(true), None).await?;
    let kernel_plane = start_kernel(&mut net, &mut settings, egress_mtu).await?;
    let outer_gro = match settings.outer_gro {
        true => open_outer_gro(&mut net, &settings.routes.tun).await,
        false => None,
    };
    let own: Vec<&str> = std::iter::once(tun.name())
        .chain(outer_gro.as_ref().map(|d| d.name()))
        .collect();
    let mut sockets = Sockets::open(settings.udp_port, &own).map_err(io("tunnel sockets"))?;
    sockets.outer_gro = outer_gro;
    let udp_port = sockets
        .udp
        .as_ref()
        .and_then(|s| s.local_addr().ok())
        .and_then(|a| a.as_socket())
        .map_or(0, |a| a.port());
    if udp_port != 0 {
        info!(
            port = udp_port,
            "UDP socket for DSMIPv6 data and signalling (relayed to had/mrd over the bus)"
        );
    }
    let sockets = Arc::new(sockets);
    let mut table = PeerTable::new(mode);
    {
        let sockets = Arc::clone(&sockets);
        table.watch_raw_ip_rx(move |ends| sockets.capture(ends));
    }
    // Path liveness among several care-of addresses (RFC 5648): LIVENESS_INTERVALS probe
    // intervals without a word from a path take it out of use.
    let probe_interval = (settings.path_probe_interval_ms > 0)
        .then(|| Duration::from_millis(u64::from(settings.path_probe_interval_ms)));
    table.set_liveness(probe_interval.map(|i| crate::config::LIVENESS_INTERVALS * i));
    if !settings.duplicate.is_empty() {
        let rules: Vec<String> = settings.duplicate.iter().map(|r| r.to_string()).collect();
        info!(
            ?rules,
            "flows duplicated over every live path of routers with several care-of addresses"
        );
    }
    table.set_duplicate(settings.duplicate.clone());
    let counters = Arc::new(Counters::default());
    let (mh_tx, mut mh_rx) = tokio::sync::mpsc::channel(crate::dataplane::MH_RELAY_QUEUE);
    let dp = DataPlane {
        mh_relay: Some(mh_tx),
        backend: Arc::new(tun),
        sockets: Arc::clone(&sockets),
        peers: table.shared(),
        counters: Arc::clone(&counters),
    };
    dp.spawn(TxConfig {
        hop_limit: settings.hop_limit,
        probe_interval,
    })
    .map_err(io("data plane threads"))?;

    let mut d = Daemon {
        routes: RouteManager::new(settings.routes.clone(), net),
        settings,
        table,
        counters,
        egress_mtu,
        tun_mtu: 0,
        sockets,
        udp_port,
        kernel: kernel_plane,
        kernel_counts: Default::default(),
        defer_kernel: false,
    };
    d.update_mtu().await;

    let mut signals = nemo_daemon::Signals::install().map_err(io("signal handlers"))?;

    let ep = AsyncEndpoint::open(&bus_dir, "nemonetd", EndpointOptions::default())?;
    // A previous run's routes (after a crash) are taken over by the bindings' routes, which
    // replace them without a gap; any other route in the way is left alone.
    match d.routes.net().our_route_keys().await {
        Ok(keys) => d.routes.adopt(Some(keys)),
        Err(e) => {
            warn!(error = %e, "routes of a previous run not read; those in a binding's way stay until flushed")
        }
    }
    // Start order does not matter: the signalling daemon tells us what it holds.
    resync(&mut d, &ep, state_timeout).await?;
    // After a crash: our routes and rules from last time, recognised by protocol 110 and
    // our priority range, removed only now and only where no binding wants them.
    let cfg = d.routes.config().clone();
    let keep = d.routes.installed().clone();
    match d
        .routes
        .net()
        .flush_ours(cfg.rule_priorities(), cfg.table, &keep)
        .await
    {
        Ok(0) => {}
        Ok(stale) => info!(stale, "removed routes and rules left by a previous run"),
        Err(e) => warn!(error = %e, "routes and rules of a previous run not all removed"),
    }
    d.routes.adopt(None);
    info!(mode = ?d.mode(), tun = %d.settings.routes.tun, bus = %bus_dir.display(), "ready");
    let metrics = match d.settings.metrics {
        Some(addr) => Some(
            nemo_daemon::metrics::start(
                addr,
                metric_samples(
                    &d.counters,
                    &d.table,
                    &d.kernel_counts,
                    &d.kernel_far_ends(),
                ),
            )
            .await
            .map_err(io("binding the metrics listener"))?,
        ),
        None => None,
    };
    nemo_daemon::notify::ready();

    let mut tick = tokio::time::interval(Duration::from_secs(60));
    // The snapshot the metrics listener serves, refreshed every second (when enabled).
    let mut metrics_tick = tokio::time::interval(Duration::from_secs(1));
    let mut last = d.counters.fingerprint();
    // The bus never blocks a writer: when our queue is full a message for us is dropped,
    // and we see a gap in its sender's serials. A lost BC_ADD would leave a router
    // without its tunnel, so the owners' state is read again (SHISA's operators send
    // SIGHUP for this; we do not wait for them).
    let mut missed = ep.endpoint().missed();
    let mut last_resync = tokio::time::Instant::now();
    let mut resync_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            msg = ep.recv() => {
                // A burst (a fleet registering, had restarting): what is already waiting is
                // handled together, and the kernel path's filter changed once for all of
                // it (one nft transaction), before any DATAPLANE_READY.
                let mut batch = vec![msg?];
                while batch.len() < BUS_BATCH {
                    match ep.endpoint().try_recv() {
                        Ok(Some(m)) => batch.push(m),
                        Ok(None) => break,
                        Err(e) => {
                            warn!(error = %e, "bus receive failed");
                            break;
                        }
                    }
                }
                let batched = batch.len() > 1;
                d.defer_kernel = batched;
                d.routes.defer(batched);
                d.table.defer(batched);
                let mut ready = Vec::new();
                for msg in &batch {
                    debug!(kind = %msg.message_type(), from = %msg.header.sender, "bus message");
                    if msg.body == Body::StateRequest {
                        // `mipsock state`: how each binding is carried (issue 12).
                        d.read_kernel_counters().await;
                        if let Err(e) = ep.reply_state(msg, d.state_items(), 0) {
                            warn!(error = %e, "state reply failed");
                        }
                        continue;
                    }
                    d.handle(&msg.body).await;
                    ready.extend(d.dataplane_ready(&msg.body));
                }
                if batched {
                    // Data plane first, as for one event: the peers, then the filter, then
                    // the routes that steer packets to them.
                    d.table.defer(false);
                    d.defer_kernel = false;
                    d.routes.defer(false);
                    d.sync_kernel(&[]).await;
                    if let Err(e) = d.routes.reconcile().await {
                        warn!(error = %e, "routes of the batch incomplete; retried at the next event");
                    }
                }
                // had holds its BA until the data plane carries the change: the batch's
                // confirmations go together (one wake-up for had).
                let ready: Vec<Message> = ready
                    .into_iter()
                    .map(|r| Message::new(Body::DataplaneReady(r)))
                    .collect();
                if let Err(e) = ep.send_batch(&ready) {
                    warn!(messages = ready.len(), error = %e, "DATAPLANE_READY not sent");
                }
                let now_missed = ep.endpoint().missed();
                if now_missed != missed {
                    let at = resync_at.unwrap_or((last_resync + RESYNC_GAP).max(tokio::time::Instant::now()));
                    warn!(lost = now_missed - missed, in_ms = at.saturating_duration_since(tokio::time::Instant::now()).as_millis() as u64,
                        "bus messages were dropped for us (our queue was full): the bindings are read again from their owner");
                    missed = now_missed;
                    resync_at = Some(at);
                }
            }
            Some((local, peer, packet)) = mh_rx.recv() => {
                let msg = Message::new(Body::MhUdpIn(MhUdpIn { local, peer, packet: PacketBytes(packet) }));
                if let Err(e) = ep.send(&msg) {
                    warn!(error = %e, "UDP-encapsulated mobility header not relayed to the bus");
                }
            }
            Some(ev) = kernel.recv() => d.on_kernel(ev).await,
            // A moved router's previous care-of address leaves the kernel path's filter.
            _ = grace_end(&d) => d.sync_kernel(&[]).await,
            _ = tokio::time::sleep_until(resync_at.unwrap_or_else(tokio::time::Instant::now)), if resync_at.is_some() => {
                resync_at = None;
                last_resync = tokio::time::Instant::now();
                match resync(&mut d, &ep, state_timeout).await {
                    Ok(()) => d.counters.bus_resyncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    Err(e) => {
                        warn!(error = %e, "bindings not read again; tried again in a second");
                        resync_at = Some(last_resync + RESYNC_GAP);
                        0
                    }
                };
                // What was lost before or during the dump is in it.
                missed = ep.endpoint().missed();
            }
            s = signals.recv() => match s {
                Signal::Stop(_) => { info!("{s}: stopping"); break; }
                Signal::DumpState => {
                    d.read_kernel_counters().await;
                    d.log_state()
                }
                Signal::Reload => {
                    reload(&d.settings);
                    // SHISA's SIGHUP habit: re-read the owners' state (after a lost message).
                    resync(&mut d, &ep, state_timeout).await?;
                }
            },
            _ = metrics_tick.tick(), if metrics.is_some() => {
                d.read_kernel_counters().await;
                if let Some(m) = &metrics {
                    m.set(metric_samples(&d.counters, &d.table, &d.kernel_counts, &d.kernel_far_ends()));
                }
            }
            _ = tick.tick() => {
                let now = d.counters.fingerprint();
                if now != last {
                    d.counters.log("periodic");
                    last = now;
                }
            }
        }
    }
    info!("terminating");
    nemo_daemon::notify::stopping();
    d.teardown().await;
    Ok(())
}

/// Sleeps until the kernel data plane's next grace time ends; forever without one.
async fn grace_end(d: &Daemon) {
    match d.kernel.as_ref().and_then(KernelPlane::next_deadline) {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

/// Sets up the kernel data plane as `dataplane` says: `tun` none; `auto` where it can be
/// (the reason logged where not); `kernel` or fail. On success the route logic learns its
/// devices and tables.
async fn start_kernel(
    net: &mut RtNetOps,
    settings: &mut Settings,
    egress_mtu: u32,
) -> Result<Option<KernelPlane>, DaemonError> {
    use crate::kernel::{Choice, EncapChoice};
    let choice = settings.dataplane;
    let mut encapsulation = settings.kernel_encapsulation;
    if choice == Choice::Auto && settings.routes.mode == Mode::MobileRouter {
        // Measured (`nemo-lab handover --repeat 5`, 2026-12-04, nemonetd/README.md): with
        // SRv6 and the nftables filter, a move cost the kernel path 20-30 ms more than TUN
        // (an `nft` and an `ip sr` process per move); with BPF, whose filter is in its
        // maps, 1-6 ms. So `auto` takes the kernel path on a mobile router with BPF only;
        // `dataplane kernel` forces it with SRv6 too.
        if encapsulation == EncapChoice::Srv6 {
            crate::kernel::remove_leftovers(net, &settings.routes.tun).await;
            info!(
                "data plane: TUN for every binding (dataplane auto on a mobile router takes the kernel's with BPF only; dataplane kernel forces it)"
            );
            return Ok(None);
        }
        encapsulation = EncapChoice::Bpf;
    }
    if choice == Choice::Tun {
        // A kernel data plane a crashed run left (its routes and rules go with the flush).
        crate::kernel::remove_leftovers(net, &settings.routes.tun).await;
        info!("data plane: TUN for every binding (dataplane tun)");
        return Ok(None);
    }
    let Some((dev, peer)) = crate::kernel::veth_names(&settings.routes.tun) else {
        let why = format!(
            "tunnel-name {:?} leaves no room for the veth pair's names",
            settings.routes.tun
        );
        return match choice {
            Choice::Kernel => Err(DaemonError::Kernel(why)),
            _ => {
                warn!("{why}: data plane TUN for every binding");
                Ok(None)
            }
        };
    };
    let routes = crate::routes::KernelRoutes {
        dev,
        peer,
        table: settings.kernel_table,
        hop_limit: settings.hop_limit,
        method: crate::routes::KernelMethod::default(),
        source: None,
        outer: None,
    };
    let mtu = egress_mtu.saturating_sub(40).max(IPV6_MIN_MTU);
    let started = KernelPlane::start(net, routes, settings.routes.mode, mtu, encapsulation).await;
    match started {
        Ok(k) => {
            let routes = k.routes().clone();
            info!(dev = %routes.dev, encapsulation = %routes.method,
                "data plane: kernel for IPv6 outer headers, TUN for IPv4 ones");
            settings.routes.kernel = Some(routes);
            Ok(Some(k))
        }
        Err(e) if choice == Choice::Kernel => Err(DaemonError::Kernel(e)),
        Err(e) => {
            warn!(reason = %e, "kernel data plane unavailable: TUN for every binding");
            Ok(None)
        }
    }
}

/// Asks the owners (mrd or had) for their bindings and installs them; bindings we hold that
/// the owner no longer has are removed.
async fn resync(d: &mut Daemon, ep: &AsyncEndpoint, timeout: Duration) -> Result<(), DaemonError> {
    let mode = d.mode();
    // mnd is mrd's mobile-host mode, on its own endpoint name.
    let owners: &[&str] = match mode {
        Mode::MobileRouter => &["mrd", "mnd"],
        Mode::HomeAgent => &["had"],
    };
    let answer = ep.request_state_from(timeout, owners).await?;
    // Only the owner's complete answer says which bindings no longer exist (babymdd's,
    // beside mrd, says nothing about them).
    let owner_answered = answer.complete_from(owners);
    let dumped: Vec<&Binding> = answer
        .owners
        .iter()
        .flat_map(|o| o.items.iter())
        .filter_map(|item| match (mode, item) {
            (Mode::MobileRouter, StateItem::Bul(b)) | (Mode::HomeAgent, StateItem::Bc(b)) => {
                Some(b)
            }
            _ => None,
        })
        .collect();
    // The kernel path's tunnel source and filter first, for the whole dump at once: one
    // nft transaction rather than one per binding (a HA's restart with a fleet), and no
    // moment with decapsulation routes but no filter.
    for b in &dumped {
        d.place_kernel_source(b);
    }
    d.sync_kernel(&dumped).await;
    // One batch for the whole dump (and the removals it implies): one snapshot of the
    // peers, one pass over the routes, however many bindings.
    d.defer_kernel = true;
    d.routes.defer(true);
    d.table.defer(true);
    let mut seen = std::collections::BTreeSet::new();
    for b in &dumped {
        seen.insert(crate::routes::key(b));
        d.binding_added(b).await;
    }
    info!(
        owners = answer.owners.len(),
        bindings = seen.len(),
        "state dump received"
    );
    if owner_answered {
        let stale: Vec<Binding> = d
            .routes
            .bindings()
            .filter(|b| !seen.contains(&crate::routes::key(b)))
            .cloned()
            .collect();
        for b in stale {
            d.binding_removed(&b).await;
        }
    }
    // What came meanwhile is newer than the dump, and in the same batch: a busy owner's
    // burst during a dump is thousands of messages.
    for msg in &answer.other {
        d.handle(&msg.body).await;
    }
    // Data plane first, as at the end of a batch: the peers, the filter, then the routes.
    d.table.defer(false);
    d.defer_kernel = false;
    d.routes.defer(false);
    d.sync_kernel(&[]).await;
    if let Err(e) = d.routes.reconcile().await {
        warn!(error = %e, "routes of the state dump incomplete; retried at the next event");
    }
    Ok(())
}

/// The TUN data plane's GRO device for IPv6 tunnel packets (`TUNo`), up and tuned; `None`
/// (raw sends, logged) where it cannot be had.
async fn open_outer_gro(net: &mut RtNetOps, tun: &str) -> Option<crate::tun::Tun> {
    let name: String = format!("{tun}o").chars().take(15).collect();
    let dev = match crate::dataplane::open_outer_gro(&name) {
        Ok(d) => d,
        Err(e) => {
            warn!(error = %e, "IPv6 tunnel packets sent one by one (no GRO device)");
            return None;
        }
    };
    if let Err(e) = net.link_set(dev.name(), Some(true), None).await {
        warn!(error = %e, "GRO device not up; IPv6 tunnel packets sent one by one");
        return None;
    }
    if let Err(e) = crate::dataplane::tune_outer_gro(dev.name()) {
        warn!(error = %e, dev = dev.name(), "GRO device untuned: its writes are not merged");
    }
    info!(
        dev = dev.name(),
        "IPv6 tunnel packets through a GRO device, forwarded merged"
    );
    Some(dev)
}

/// The data plane's counters for the metrics listener (`--metrics`), under `nemonetd_`.
fn metric_samples(
    c: &Counters,
    table: &PeerTable,
    kernel: &crate::kernel::KernelCounters,
    kernel_far_ends: &HashMap<(Ipv6Addr, Option<u16>), Ipv6Addr>,
) -> Vec<Sample> {
    let kernel_drops = kernel.drops;
    let kernel_bindings = kernel_far_ends.len() as u64;
    let peers = table.peers();
    let now_ns = crate::dataplane::peers::mono_ns(std::time::Instant::now());
    let g = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let mut v = vec![
        Sample::gauge(
            "nemonetd_bindings",
            "Bindings the data plane carries.",
            table.len() as u64,
        ),
        Sample::gauge(
            "nemonetd_kernel_bindings",
            "Of them, those the kernel data plane carries (IPv6 outer header); the others go through the TUN device.",
            kernel_bindings,
        ),
    ];
    // Per binding (issue 16): labelled by home address and binding identifier, so a
    // fleet's bindings are told apart; kept across moves.
    for p in peers {
        let (mut txp, mut txb, mut rxp, mut rxb) = p.counters.0.read();
        // On the kernel path, its far end's counters in the filter.
        if let Some(c) = kernel_far_ends
            .get(&(p.binding.hoa, p.binding.binding_id))
            .and_then(|remote| kernel.far_ends.get(remote))
        {
            (txp, txb, rxp, rxb) = (
                c.sent_packets,
                c.sent_octets,
                c.received_packets,
                c.received_octets,
            );
        }
        let hoa = p.binding.hoa.to_string();
        let bid = p
            .binding
            .binding_id
            .map_or_else(String::new, |b| b.to_string());
        for (name, help, value) in [
            (
                "nemonetd_binding_tx_packets",
                "Packets tunnelled to this binding.",
                txp,
            ),
            (
                "nemonetd_binding_tx_octets",
                "Their octets, inner packets.",
                txb,
            ),
            (
                "nemonetd_binding_rx_packets",
                "Tunnelled packets from this binding admitted.",
                rxp,
            ),
            (
                "nemonetd_binding_rx_octets",
                "Their octets, inner packets.",
                rxb,
            ),
        ] {
            v.push(
                Sample::counter(name, help, value)
                    .label("hoa", &hoa)
                    .label("bid", &bid),
            );
        }
        if p.is_mcoa() {
            let (to, from) = p.counters.0.capacity.read();
            for (dir, kbps) in [("to", to), ("from", from)] {
                v.push(
                    Sample::gauge(
                        "nemonetd_binding_path_capacity_kbps",
                        "What this care-of address's path carries, kbit/s, by packet pairs: direction to (the other end's measure of our packets) or from (ours of its); 0 not measured yet. Flows spread over the paths in proportion to `to` (RFC 5648 bindings only).",
                        u64::from(kbps),
                    )
                    .label("hoa", &hoa)
                    .label("bid", &bid)
                    .label("direction", dir),
                );
            }
        }
        if let Some(limit) = table.liveness().filter(|_| p.is_mcoa()) {
            v.push(
                Sample::gauge(
                    "nemonetd_binding_path_up",
                    "1 while this care-of address's path is heard from (probes or data), 0 once it is silent for four probe intervals and out of use (RFC 5648 bindings only).",
                    u64::from(p.counters.0.alive(now_ns, limit)),
                )
                .label("hoa", &hoa)
                .label("bid", &bid),
            );
        }
    }
    for (name, help, value) in [
        (
            "nemonetd_tx_packets",
            "Packets encapsulated and sent.",
            g(&c.tx_packets),
        ),
        (
            "nemonetd_tx_octets",
            "Octets sent, outer headers included.",
            g(&c.tx_bytes),
        ),
        (
            "nemonetd_rx_packets",
            "Packets decapsulated and delivered.",
            g(&c.rx_packets),
        ),
        (
            "nemonetd_rx_octets",
            "Octets delivered, inner packets.",
            g(&c.rx_bytes),
        ),
        (
            "nemonetd_io_errors",
            "Send, receive or device write failures.",
            g(&c.io_errors),
        ),
        (
            "nemonetd_icmp_relayed",
            "ICMP errors on the tunnel path reported to the sender (RFC 2473 §8).",
            g(&c.icmp_relayed),
        ),
        (
            "nemonetd_icmp_not_relayed",
            "ICMP errors about tunnel packets not reported (no binding, or not reportable).",
            g(&c.icmp_not_relayed),
        ),
        (
            "nemonetd_icmp_limited",
            "ICMP reports suppressed by the rate limit.",
            g(&c.icmp_limited),
        ),
        (
            "nemonetd_path_probes_sent",
            "Path probes sent through the care-of addresses of routers registered with several.",
            g(&c.probes_tx),
        ),
        (
            "nemonetd_path_probes_received",
            "Path probes received (each a sign of life of its path).",
            g(&c.probes_rx),
        ),
        (
            "nemonetd_duplicates_sent",
            "Extra copies sent of duplicated flows' packets (one per further live path).",
            g(&c.dup_tx),
        ),
        (
            "nemonetd_duplicates_dropped",
            "Later copies of duplicated flows' packets dropped on arrival.",
            g(&c.dup_dropped),
        ),
        (
            "nemonetd_udp_segmentation_offload_sends",
            "TCP super-packets sent through the UDP tunnel by segmentation offload.",
            g(&c.udp_gso_sends),
        ),
        (
            "nemonetd_udp_coalesced_reads",
            "Reads of the UDP tunnel socket that held several tunnel packets.",
            g(&c.udp_gro_reads),
        ),
        (
            "nemonetd_merged_reads",
            "Tunnel packets merged by the receiving card (GRO) read whole from a packet socket.",
            g(&c.merged_reads),
        ),
        (
            "nemonetd_tcp_capture_reads",
            "Unmerged TCP tunnel packets read from that packet socket, so that a flow's packets are read by one socket, in their order.",
            g(&c.tcp_capture_reads),
        ),
        (
            "nemonetd_bus_resyncs",
            "Times the bindings were read again from their owner because bus messages were dropped for us (our queue was full).",
            g(&c.bus_resyncs),
        ),
    ] {
        v.push(Sample::counter(name, help, value));
    }
    for (reason, value) in [
        // Both data planes' drops: the kernel's filter counts in nftables.
        ("link_scope", g(&c.drop_link_scope) + kernel_drops.2),
        ("no_binding", g(&c.drop_no_binding) + kernel_drops.1),
        ("unknown_outer", g(&c.drop_unknown_outer)),
        ("spoofed_inner", g(&c.drop_spoofed_inner) + kernel_drops.0),
        ("malformed", g(&c.drop_malformed) + kernel.malformed),
        ("ecn", g(&c.drop_ecn)),
        ("relay_full", g(&c.drop_relay_full)),
        // The kernel's BPF encapsulation: what it would not open room in (a UDP
        // super-packet), or strip.
        ("encap_refused", kernel.refused.0),
        ("decap_refused", kernel.refused.1),
    ] {
        v.push(
            Sample::counter(
                "nemonetd_dropped_packets",
                "Packets dropped, by reason.",
                value,
            )
            .label("reason", reason),
        );
    }
    v
}
