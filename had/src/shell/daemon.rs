//! The driving loop: packets, bus messages, timers and signals in; journal, bus, proxy ND
//! and packets out, in that order (see the module docs of [`super`]).

use std::collections::{BTreeSet, HashSet};
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use mhio::{
    DiscoveryPacket, DiscoverySocket, GuardScope, HaoPacket, Inbound, NftGuard, ProxyNd, RawSender,
    Received, Receiver,
};
use mipsock::{
    AsyncEndpoint, Body, CareOf, Message, MhUdpIn, MhUdpOut, NodeType, NodetypeInfo, PacketBytes,
    StateItem,
};
use nemo_daemon::Signal;
use nemo_daemon::metrics::Sample;
use proto::mh::{BaStatus, MhRepr};
use tracing::{debug, error, info, warn};

mod redundant;

use super::etcd::{EtcdStore, StoreError};
use super::{Cli, Logging, ShellError, setup};
use crate::core::{ChecksumState, Ha, HaEvent, HaoSignal, ReceivedSignal, Transmit, UdpV4Path};
use crate::journal::Journal;
use crate::record::JournalRecord;
use crate::{AuthPolicy, HaCoreConfig};
use redundant::Redundant;

/// How often an idle loop looks whether a compaction's thread is done.
const COMPACTION_POLL: Duration = Duration::from_millis(20);

/// Unsolicited NAs after the first one for a newly defended home address (RFC 4861
/// §7.2.6: MAX_NEIGHBOR_ADVERTISEMENT is 3 in all), one per interval.
const NA_REPEATS: u8 = 2;
const NA_INTERVAL: Duration = Duration::from_secs(1);

/// Packets handled per step (per journal sync) at most.
const MAX_BATCH: usize = 64;

fn wall() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Reads the configuration for `cli.homeif` and maps it; logs its warnings.
fn load(cli: &Cli, home_ifindex: u32) -> Result<(conf::HaConfig, HaCoreConfig), ShellError> {
    let (cfg, warnings) = conf::HaConfig::from_file_for(&cli.config, Some(&cli.homeif))?;
    for w in &warnings {
        warn!("{w}");
    }
    let if_addrs = setup::interface_addresses(&cli.homeif);
    let core = setup::core_config(&cfg, &cli.homeif, home_ifindex, &if_addrs)?;
    Ok((cfg, core))
}

/// `had --check`: loads the configuration exactly as a start would (the home interface's
/// addresses stand in for missing keys when it exists here) and builds the core from it;
/// warnings go to stderr. Touches nothing.
pub(super) fn check(cli: &Cli) -> Result<String, ShellError> {
    let (cfg, warnings) = conf::HaConfig::from_file_for(&cli.config, Some(&cli.homeif))?;
    for w in &warnings {
        nemo_daemon::check::warning(w);
    }
    let home_ifindex = mhio::if_index(&cli.homeif).unwrap_or_else(|_| {
        nemo_daemon::check::warning(&format_args!(
            "interface {} does not exist here; addresses the configuration leaves \
             to it cannot be checked",
            cli.homeif
        ));
        0
    });
    let if_addrs = setup::interface_addresses(&cli.homeif);
    let core = setup::core_config(&cfg, &cli.homeif, home_ifindex, &if_addrs)?;
    let sas = match &core.auth {
        AuthPolicy::Required(list) => format!("{} mobility SAs", list.len()),
        AuthPolicy::Disabled => "authentication none".to_string(),
    };
    let summary = format!(
        "home agent {}, home prefixes {:?}, {} prefix table rows, {sas}, {} warnings",
        core.ha_address,
        core.home_prefixes,
        core.prefix_table.len(),
        warnings.len()
    );
    Ha::new(core)?;
    Ok(summary)
}

/// The care-of address a BA answers, for the log. A BA to an IPv4 care-of address travels
/// in UDP/IPv4 with the home address as its IPv6 destination (RFC 5555 §4.2): the care-of
/// address is the outer peer (the NAT's mapping, address and port, behind a NAT).
/// Otherwise it is the IPv6 destination: the care-of address, with an RH2 carrying the home
/// address (RFC 6275 §9.5.4), or the home address itself at home.
fn ba_care_of(tx: &Transmit) -> CareOf {
    match tx.udp_v4 {
        Some(path) => CareOf::V4 {
            addr: *path.peer.ip(),
            udp_port: Some(path.peer.port()),
        },
        None => CareOf::V6(tx.addressing.dst_addr),
    }
}

/// Meaning and defining RFC of a BA status, for logs: the status's own name, with what
/// the home agent means by it where one code covers several causes.
pub(crate) fn ba_status_name(status: u8) -> (&'static str, &'static str) {
    match status {
        // The core's "failed authentication" line before this one says which of the two.
        146 => (
            "MIPV6-AUTH-FAIL (authenticator not verified, or the SA not for this home address)",
            "RFC 4285",
        ),
        s => BaStatus::from(s).meaning(),
    }
}

/// A BA held until the data plane carries what its BU changed.
struct Held {
    hoa: Ipv6Addr,
    /// The bindings (by BID) of `hoa` not yet confirmed.
    pending: BTreeSet<Option<u16>>,
    tx: Transmit,
    /// When it is sent anyway.
    until: Instant,
}

struct Daemon {
    cli: Cli,
    logging: Logging,
    ha: Ha,
    journal: Journal,
    journal_path: PathBuf,
    bus: AsyncEndpoint,
    sender: RawSender,
    /// The binding cache in etcd, when configured (issue 13).
    etcd: Option<EtcdStore>,
    /// Bound to the home interface: answers to nodes on the home link (an MR that came
    /// home and de-registers, RFC 6275 §11.5.4) must reach them there, not follow the
    /// HoA/128 route of the binding into the tunnel.
    home_sender: RawSender,
    proxy: ProxyNd,
    /// The home link's Neighbour Solicitations (RFC 6275 §10.4.1: answered for `defended`).
    solicitations: mhio::SolicitationReceiver,
    /// The addresses had defends on the home link, and whether as a router's (the R flag
    /// of its answers): home addresses and their link-local forms.
    defended: std::collections::HashMap<Ipv6Addr, bool>,
    local: HashSet<Ipv6Addr>,
    /// When `local` was last read (re-read at most once a second, on a miss).
    local_read: Instant,
    /// Unsolicited NAs still to repeat: (when, home address, router flag, repeats left).
    na_repeats: Vec<(Instant, Ipv6Addr, bool, u8)>,
    /// ICMPv6 errors built in `on_packet` (they quote the packet), sent in `flush`.
    icmp_out: Vec<Vec<u8>>,
    /// A data plane (nemonetd) is on the bus: BAs for binding changes wait for its
    /// DATAPLANE_READY.
    dataplane: bool,
    /// BAs waiting for the data plane: (home address, the bindings of it not yet
    /// confirmed — one per BID after a bulk registration, RFC 5648 —, the BA, when to send
    /// it anyway).
    held: Vec<Held>,
    /// Bindings (home address, BID) whose change the data plane confirmed since the last
    /// flush.
    ready: HashSet<(Ipv6Addr, Option<u16>)>,
    /// One of several home agents for the address (issue 13): the election.
    redundancy: Option<Redundant>,
}

/// How long a BA waits for the data plane's confirmation before it is sent anyway (a
/// stuck or dead nemonetd must not keep a router from registering; it is logged). Below
/// the router's shortest retransmission timeout (1 s, RFC 6275 §11.8), so a late BA
/// still answers the BU it was for.
const DATAPLANE_WAIT: Duration = Duration::from_millis(500);

pub(super) async fn run(cli: Cli, logging: Logging) -> Result<(), ShellError> {
    let home_ifindex = mhio::if_index(&cli.homeif)?;
    let (cfg, core_cfg) = load(&cli, home_ifindex)?;
    let conf_metrics = cfg.metrics_listen;
    logging.set_debug(cli.debug || cfg.debug > 0);
    if core_cfg.auth == AuthPolicy::Disabled {
        warn!(config = %cfg.file, "authentication disabled ('authentication none;'): any node can register any home address of the prefix table");
    }
    let ha = Ha::new(core_cfg)?;

    // Guard first, then the receiver, then anything that sends (mhio's start order).
    // The guard also takes the kernel's copy of traffic with a Home Address option: had
    // answers it (RFC 6275 §9.3.1), the kernel would send a Parameter Problem.
    let guard = NftGuard::install_with(
        "had",
        GuardScope {
            home_address_option: true,
            forwarded_nd: true,
        },
    )?;
    let mut receiver = Receiver::new(None)?;
    let sender = RawSender::new(None)?;
    let home_sender = RawSender::new(Some(&cli.homeif))?;
    let proxy = ProxyNd::new(&cli.homeif).await?;
    // Home addresses are defended by had itself (mhio's nd_responder): the kernel's proxy
    // table walks lists at a fleet's size. Entries an older had left there go.
    match proxy.proxy_entries().await {
        Ok(stale) => {
            for a in &stale {
                if let Err(e) = proxy.remove(*a).await {
                    warn!(addr = %a, error = %e, "kernel proxy entry not removed");
                }
            }
            if !stale.is_empty() {
                info!(
                    entries = stale.len(),
                    "kernel proxy neighbour entries left by a previous had removed"
                );
            }
        }
        Err(e) => warn!(error = %e, "kernel proxy neighbour entries not listed"),
    }
    let solicitations = mhio::SolicitationReceiver::new(home_ifindex)?;
    // RFC 6275 §10.5: requests come to the Home-Agents anycast address of each home prefix
    // (RFC 2526); the home link's RAs fill the home agents list (§10.5.1).
    let anycast: Vec<Ipv6Addr> = ha
        .config()
        .home_prefixes
        .iter()
        .filter_map(|p| proto::icmpv6::home_agents_anycast(p.network(), p.prefix_len()))
        .collect();
    let discovery = DiscoverySocket::new(home_ifindex, &anycast)?;
    let mut discovery_buf = vec![0u8; 2048];

    let bus_dir = cli
        .bus_dir
        .clone()
        .unwrap_or_else(|| mipsock::bus_dir_from_env("default"));
    let bus = AsyncEndpoint::open(&bus_dir, "had", Default::default()).map_err(|source| {
        ShellError::Bus {
            dir: bus_dir.clone(),
            source,
        }
    })?;

    // Handlers before the ready line: a signal right after it must not kill us.
    let mut signals = nemo_daemon::Signals::install().map_err(|source| ShellError::Os {
        what: "signal handlers",
        source,
    })?;
    // The default lives under /var/lib/nemo, which a fresh install may lack.
    if let Some(dir) = cfg.binding_cache_file.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| ShellError::Os {
            what: "creating the binding-cache-file directory",
            source,
        })?;
    }
    let (mut journal, mut report) = Journal::open(&cfg.binding_cache_file, wall())?;
    for d in &report.damaged {
        error!(path = %cfg.binding_cache_file.display(), offset = d.offset, skipped = d.skipped, reason = %d.reason,
            "damaged binding cache journal record skipped");
    }
    // The replicated store is the authority at start: a standby taking over restores what
    // the active home agent stored there, whatever its own journal holds.
    let endpoints = if cli.etcd.is_empty() {
        cfg.binding_cache_etcd.clone()
    } else {
        cli.etcd.clone()
    };
    let redundancy_cfg = cfg.redundancy.clone();
    if redundancy_cfg.is_some() && endpoints.is_empty() {
        return Err(ShellError::Redundancy(format!(
            "{}: 'redundancy yes;' needs the store the members share: binding-cache-etcd or --etcd",
            cfg.file
        )));
    }
    let etcd = if endpoints.is_empty() {
        None
    } else {
        let mut store = EtcdStore::connect(&endpoints, ha.config().ha_address).await?;
        // A member starts as a standby: it loads the cache when it takes over.
        if redundancy_cfg.is_none() {
            let (bindings, expired) = store.load(wall()).await?;
            info!(endpoints = ?endpoints, bindings = bindings.len(), expired,
                journal_had = report.bindings.len(), "binding cache restored from etcd");
            journal.compact(&bindings)?;
            report.bindings = bindings;
            report.expired = expired;
        }
        Some(store)
    };
    let redundancy = match (&redundancy_cfg, &etcd) {
        (Some(rc), Some(store)) => {
            let name = rc
                .member
                .clone()
                .or_else(hostname)
                .unwrap_or_else(|| format!("had-{}", std::process::id()));
            let heartbeat = mhio::HeartbeatSocket::new(&cli.homeif, home_ifindex)?;
            let election = crate::redundancy::Election::new(
                Instant::now(),
                &name,
                rc.advert_interval,
                rc.dead_interval,
            );
            info!(member = %name, advert_ms = rc.advert_interval.as_millis() as u64,
                dead_ms = rc.dead_interval.as_millis() as u64,
                "redundancy: starting as a standby");
            Some(Redundant::new(
                election,
                heartbeat,
                store.watch_leader(),
                ha.config().ha_address,
            ))
        }
        _ => None,
    };
    let mut d = Daemon {
        journal_path: cfg.binding_cache_file.clone(),
        cli,
        logging,
        ha,
        journal,
        etcd,
        bus,
        sender,
        home_sender,
        proxy,
        solicitations,
        defended: std::collections::HashMap::new(),
        local: setup::local_addresses().into_iter().collect(),
        local_read: Instant::now(),
        na_repeats: Vec::new(),
        icmp_out: Vec::new(),
        dataplane: false,
        held: Vec::new(),
        ready: HashSet::new(),
        redundancy,
    };
    let restored = if d.redundancy.is_some() {
        d.clear_leftovers(std::mem::take(&mut report.bindings))
            .await;
        0
    } else {
        let n = d.ha.restore(Instant::now(), wall(), report.bindings);
        d.announce_role(true);
        n
    };
    d.flush().await;
    let c = d.ha.config();
    info!(homeif = %d.cli.homeif, ha = %c.ha_address, home_prefixes = ?c.home_prefixes,
        prefix_table_rows = c.prefix_table.len(), restored, expired = report.expired,
        journal = %d.journal_path.display(), bus = %bus_dir.display(), "had ready");
    let metrics = match d.cli.metrics.or(conf_metrics) {
        Some(addr) => Some(
            nemo_daemon::metrics::start(addr, metric_samples(&d))
                .await
                .map_err(|source| ShellError::Os {
                    what: "binding the metrics listener",
                    source,
                })?,
        ),
        None => None,
    };
    nemo_daemon::notify::ready();
    // Copies for the loop's wake-ups; the daemon reads its own.
    let mut leader_rx = d.redundancy.as_ref().map(|r| r.leader.clone());
    let heartbeat = d.redundancy.as_ref().map(|r| r.heartbeat.clone());

    // Readers whose last messages from us were dropped are told so (mipsock's gap
    // notices), again while their queue is full: nemonetd re-reads what it lost.
    let mut gap_retry: Option<Instant> = None;
    loop {
        let next = [
            d.ha.poll_timeout(),
            gap_retry,
            d.na_repeats.iter().map(|r| r.0).min(),
            d.held.iter().map(|h| h.until).min(),
            d.redundancy.as_ref().and_then(Redundant::poll_timeout),
            // A compaction's swap waits for the loop to come by: soon, even when idle.
            d.journal
                .compacting()
                .then(|| Instant::now() + COMPACTION_POLL),
        ]
        .into_iter()
        .flatten()
        .min();
        let deadline = next.map_or_else(
            || tokio::time::Instant::now() + Duration::from_secs(3600),
            Into::into,
        );
        tokio::select! {
            r = receiver.recv_inbound() => match r {
                Ok(rx) => {
                    d.on_signal(&rx);
                    // Whatever else is queued joins this step: one fdatasync for the
                    // batch (dropping a pending recv loses nothing, see mhio::Receiver).
                    for _ in 1..MAX_BATCH {
                        match receiver.recv_inbound().now_or_never() {
                            Some(Ok(rx)) => d.on_signal(&rx),
                            _ => break,
                        }
                    }
                }
                Err(e) => {
                    warn!(error = %e, "receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            m = d.bus.recv() => match m {
                Ok(msg) => d.on_bus(&msg),
                Err(e) => warn!(error = %e, "mipsock receive failed"),
            },
            () = tokio::time::sleep_until(deadline) => {
                d.ha.handle_timeout(Instant::now());
                d.ha.handle_dad_timeouts(Instant::now(), wall());
                d.ha.handle_switch_timeouts(Instant::now(), wall());
                d.repeat_nas();
            }
            r = discovery.recv(&mut discovery_buf) => match r {
                Ok(p) => d.on_discovery(&p, &discovery_buf[..p.len]),
                Err(e) => {
                    warn!(error = %e, "discovery receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            r = d.solicitations.recv() => match r {
                Ok(s) => d.on_solicitation(&s),
                Err(e) => {
                    warn!(error = %e, "neighbour solicitation receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            r = d.proxy.recv_advertisement() => match r {
                // Our own advertisements (for other addresses) are no defence.
                Ok((target, src)) if !d.local.contains(&src) => {
                    d.ha.handle_dad_defended(Instant::now(), wall(), target);
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(error = %e, "home link ICMPv6 receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            r = async {
                match &heartbeat {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => match r {
                Ok(hb) => d.on_heartbeat(&hb),
                Err(e) => {
                    warn!(error = %e, "heartbeat receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            r = async {
                match &mut leader_rx {
                    Some(rx) => rx.changed().await,
                    None => std::future::pending().await,
                }
            } => match r {
                Ok(()) => d.on_leader_changed(),
                Err(_) => leader_rx = None,
            },
            s = signals.recv() => match s {
                Signal::Stop(_) => { info!("{s}: stopping (bindings kept in the journal)"); break; }
                Signal::Reload => d.reload().await,
                Signal::DumpState => d.dump_state(),
            },
        }
        d.flush().await;
        d.drive_election().await;
        gap_retry = (d.bus.endpoint().send_gap_notices() > 0)
            .then(|| Instant::now() + mipsock::Endpoint::GAP_NOTICE_RETRY);
        if let Some(m) = &metrics {
            m.set(metric_samples(&d));
        }
    }

    nemo_daemon::notify::stopping();
    d.resign().await;
    d.announce_role(false);
    let mut failures = Vec::new();
    if let Err(e) = d.journal.sync() {
        failures.push(e.to_string());
    }
    if let Err(e) = guard.remove() {
        failures.push(e.to_string());
    } else {
        info!("nftables guard removed");
    }
    for f in &failures {
        error!("{f}");
    }
    info!(bindings = d.ha.len(), "had stopped");
    Ok(())
}

impl Daemon {
    fn announce_role(&self, enable: bool) {
        let msg = Message::new(Body::NodetypeInfo(NodetypeInfo {
            node_type: NodeType::HA,
            enable,
        }));
        if let Err(e) = self.bus.send(&msg) {
            warn!(error = %e, "NODETYPE_INFO not sent");
        }
    }

    fn is_local(&mut self, addr: Ipv6Addr) -> bool {
        if addr == self.ha.config().ha_address || self.local.contains(&addr) {
            return true;
        }
        // Addresses may have been added since the last look; transit MH must not make
        // every packet a getifaddrs(3).
        if self.local_read.elapsed() < Duration::from_secs(1) {
            return false;
        }
        self.local = setup::local_addresses().into_iter().collect();
        self.local_read = Instant::now();
        self.local.contains(&addr)
    }

    fn on_signal(&mut self, rx: &Inbound<'_>) {
        // A standby holds no binding and answers nothing (issue 13).
        if !self.serving() {
            return;
        }
        match rx {
            Inbound::Mobility(rx) => self.on_packet(rx),
            Inbound::HomeAddressOption(rx) => self.on_hao_packet(rx),
            // For a mobile node away, not for a home agent.
            Inbound::RoutedToHome(_) => {}
        }
    }

    /// Traffic with a Home Address option to one of our addresses (RFC 6275 §9.3.1).
    fn on_hao_packet(&mut self, rx: &HaoPacket<'_>) {
        let p = &rx.packet;
        let Some(home_address) = p.home_address else {
            return;
        };
        if !self.is_local(p.dst_addr) {
            return;
        }
        self.ha.handle_hao_packet(
            Instant::now(),
            &HaoSignal {
                src: p.src_addr,
                dst: p.dst_addr,
                home_address,
                upper_layer: p.upper_layer,
                payload: p.payload,
                ifindex: rx.ifindex,
            },
        );
        while let Some(reply) = self.ha.poll_icmp_reply() {
            self.icmp_out.push(reply);
        }
    }

    /// A Home Agent Address Discovery Request or a Router Advertisement (RFC 6275 §10.5).
    fn on_discovery(&mut self, p: &DiscoveryPacket, icmp: &[u8]) {
        if !self.serving() {
            return;
        }
        let now = Instant::now();
        match proto::icmpv6::Icmpv6Repr::parse_bytes(icmp) {
            Ok(proto::icmpv6::Icmpv6Repr::HaadRequest(req)) => {
                self.ha.handle_haad_request(now, p.src, p.dst, &req);
            }
            // RFC 4861 §6.1.2: an RA not sent with hop limit 255 was forwarded; dropped.
            Ok(proto::icmpv6::Icmpv6Repr::RouterAdvertisement(ra))
                if p.hop_limit == proto::icmpv6::ND_HOP_LIMIT =>
            {
                self.ha
                    .handle_router_advertisement(now, p.src, p.ifindex, &ra);
            }
            Ok(other) => debug!(src = %p.src, msg = ?other.msg_type(), hop_limit = p.hop_limit,
                "discovery socket: message ignored"),
            Err(e) => debug!(src = %p.src, error = %e, "malformed ICMPv6 on the discovery socket"),
        }
        while let Some(reply) = self.ha.poll_icmp_reply() {
            self.icmp_out.push(reply);
        }
    }

    fn on_packet(&mut self, rx: &Received<'_>) {
        let p = &rx.packet;
        // The HA forwards (proxy ND needs it): MH in transit is not ours.
        if !self.is_local(p.dst_addr) {
            debug!(src = %p.src_addr, dst = %p.dst_addr, "mobility header in transit ignored");
            return;
        }
        let signal = ReceivedSignal {
            checksum: ChecksumState::Verified,
            ..ReceivedSignal::from_walk(p, rx.ifindex)
        };
        debug!(src = %p.src_addr, hoa = ?p.home_address, ifindex = rx.ifindex, "mobility header received");
        self.ha.handle_packet(Instant::now(), wall(), &signal);
        // RFC 6275 §9.2: the guard keeps the kernel quiet, so we answer a malformed MH.
        while let Some(pp) = self.ha.poll_icmp_error() {
            let pointer = pp.pointer(p.payload_range.start);
            debug!(dst = %pp.dst, pointer, "ICMPv6 parameter problem for a malformed mobility header");
            self.icmp_out.push(mhio::parameter_problem(
                pp.src, pp.dst, pp.code, pointer, rx.bytes,
            ));
        }
    }

    /// Starts defending a home address (and its link-local form) on the home link: one
    /// unsolicited NA now (RFC 6275 §10.4.1 / RFC 4861 §7.2.6), repeated, which also covers
    /// neighbours whose link just came up; solicitations answered from now on.
    fn defend(&mut self, p: &crate::core::ProxyNd) {
        let repeat_at = Instant::now() + NA_INTERVAL;
        for a in std::iter::once(p.hoa).chain(p.link_local) {
            self.defended.insert(a, p.router);
            if let Err(e) = self.proxy.send_unsolicited_na(a, p.router) {
                warn!(hoa = %a, error = %e, "unsolicited NA not sent");
            }
            self.na_repeats.push((repeat_at, a, p.router, NA_REPEATS));
        }
        debug!(hoa = %p.hoa, link_local = ?p.link_local, router = p.router, "defended on the home link");
    }

    /// A Neighbour Solicitation on the home link: answered when it asks for an address we
    /// defend (RFC 4861 §7.2.4, RFC 6275 §10.4.1), from any node, DAD probes included (the
    /// answer to all nodes tells the prober the address is taken).
    fn on_solicitation(&mut self, s: &mhio::Solicitation) {
        if !self.serving() {
            return;
        }
        let Some(&router) = self.defended.get(&s.target) else {
            return;
        };
        if let Err(e) = self.proxy.answer(s, router) {
            debug!(target = %s.target, error = %e, "solicitation not answered");
        }
    }

    fn repeat_nas(&mut self) {
        let now = Instant::now();
        for r in &mut self.na_repeats {
            if r.0 <= now {
                if let Err(e) = self.proxy.send_unsolicited_na(r.1, r.2) {
                    debug!(hoa = %r.1, error = %e, "unsolicited NA not repeated");
                }
                r.0 = now + NA_INTERVAL;
                r.3 -= 1;
            }
        }
        self.na_repeats.retain(|r| r.3 > 0);
    }

    /// A UDP-encapsulated Mobility Header relayed by nemonetd, which owns UDP 4191 (a BU
    /// from an IPv4 care-of address, RFC 5555 §4.2): the outer source is the NAT's
    /// mapping, which the core compares with the IPv4 CoA option.
    fn on_mh_udp_in(&mut self, m: &MhUdpIn) {
        if !self.serving() {
            return;
        }
        let p = match proto::ext::walk(&m.packet.0) {
            Ok(proto::ext::Walk::Mobility(p)) => p,
            Ok(_) | Err(_) => {
                debug!(peer = %m.peer, "relayed UDP packet is not a mobility header; ignored");
                return;
            }
        };
        if !self.is_local(p.dst_addr) {
            debug!(dst = %p.dst_addr, peer = %m.peer, "relayed mobility header not for us ignored");
            return;
        }
        debug!(src = %p.src_addr, peer = %m.peer, local = %m.local, "mobility header in UDP/IPv4");
        let signal = ReceivedSignal {
            udp_v4: Some(UdpV4Path {
                peer: m.peer,
                local: m.local,
            }),
            ..ReceivedSignal::from_walk(&p, 0)
        };
        self.ha.handle_packet(Instant::now(), wall(), &signal);
        // No ICMPv6 error path inside UDP (the core queues none for it).
        while self.ha.poll_icmp_error().is_some() {}
    }

    fn on_bus(&mut self, msg: &Message) {
        if let Body::MhUdpIn(m) = &msg.body {
            self.on_mh_udp_in(m);
            return;
        }
        if msg.header.sender == "nemonetd" && !self.dataplane {
            info!("a data plane (nemonetd) is on the bus: BAs for binding changes now wait for it");
            self.dataplane = true;
        }
        if let Body::DataplaneReady(r) = &msg.body {
            self.ready.insert((r.hoa, r.binding_id));
            return;
        }
        if let Body::HaSwitch(m) = &msg.body
            && self.serving()
        {
            // An operator's `mipsock inject ha-switch` (RFC 5142 §5.1); flush() sends.
            let n = self
                .ha
                .send_home_agent_switch(Instant::now(), wall(), m.hoa, &m.home_agents);
            info!(from = %msg.header.sender, hoa = ?m.hoa, home_agents = ?m.home_agents,
                sent = n, "home agent switch requested");
            return;
        }
        if msg.body == Body::StateRequest {
            let now = Instant::now();
            // The binding cache, then the home agents list (RFC 6275 §10.5.1).
            let home_agents = self.ha.home_agents_list(now).into_iter().map(|e| {
                StateItem::HomeAgent(mipsock::HomeAgentInfo {
                    address: e.addresses[0],
                    preference: e.preference,
                    lifetime: e.expires.map_or(0, |x| {
                        u32::try_from(x.saturating_duration_since(now).as_secs())
                            .unwrap_or(u32::MAX)
                    }),
                    mobile_router: e.mobile_router_support,
                    origin: if e.link_local.is_none() {
                        mipsock::HomeAgentOrigin::Own
                    } else {
                        mipsock::HomeAgentOrigin::RouterAdvertisement
                    },
                    in_use: false,
                })
            });
            let items: Vec<StateItem> = (self.ha.handle_state_request(now).into_iter())
                .map(StateItem::Bc)
                .chain(home_agents)
                .collect();
            debug!(
                items = items.len(),
                from = msg.header.pid,
                "state request answered"
            );
            if let Err(e) = self.bus.reply_state(msg, items, 0) {
                warn!(error = %e, "state reply failed");
            }
        }
    }

    /// Events (journal first, synced), then bus and proxy ND, then transmits. ICMPv6
    /// errors owe nothing to the journal and go first.
    async fn flush(&mut self) {
        for packet in std::mem::take(&mut self.icmp_out) {
            if let Err(e) = self.sender_for(&packet).send_packet(&packet).await {
                debug!(error = %e, "ICMPv6 message not sent");
            }
        }
        let mut others = Vec::new();
        let mut records = Vec::new();
        while let Some(ev) = self.ha.poll_event() {
            match ev {
                HaEvent::Persist(rec) => {
                    self.journal.append(&rec);
                    if self.etcd.is_some() {
                        records.push(rec);
                    }
                }
                ev => others.push(ev),
            }
        }
        let mut persisted = match self.journal.sync() {
            Ok(()) => true,
            Err(e) => {
                error!(error = %e, "binding cache journal not written: acknowledgements withheld");
                false
            }
        };
        if let Some(store) = &mut self.etcd
            && persisted
            && !records.is_empty()
            && let Err(e) = store.apply(&records).await
        {
            // Issue 13: never acknowledge a binding the replicated store does not hold;
            // existing bindings keep being forwarded.
            error!(error = %e, records = records.len(),
                "binding changes not stored in etcd: acknowledgements withheld (the router retransmits)");
            persisted = false;
            if matches!(e, StoreError::Fenced { .. })
                && let Some(r) = &mut self.redundancy
            {
                r.election.handle_fenced(Instant::now());
            }
        }
        // The bindings this step changes: their BAs wait for the data plane (issue 11:
        // no BA for a new or changed binding before the data plane carries it, nothing
        // tunnelled for a removed one after its BA).
        let mut changed: HashSet<(Ipv6Addr, Option<u16>)> = HashSet::new();
        // The step's binding changes go to the bus together: one datagram wakes each
        // reader once for all of them (mipsock's send_batch; issue 13's fan-out goal).
        let mut announcements = Vec::new();
        for ev in others {
            match ev {
                HaEvent::BcAdd(b) => {
                    changed.insert((b.hoa, b.binding_id));
                    announcements.push(Message::new(Body::BcAdd(b)));
                }
                HaEvent::BcRemove(b) => {
                    changed.insert((b.hoa, b.binding_id));
                    announcements.push(Message::new(Body::BcRemove(b)));
                }
                ev => self.apply(ev).await,
            }
        }
        self.announce(&announcements);
        let now = Instant::now();
        while let Some(tx) = self.ha.poll_transmit() {
            if !persisted {
                continue;
            }
            let hoa = tx
                .addressing
                .rh2_home_address
                .unwrap_or(tx.addressing.dst_addr);
            let pending: BTreeSet<Option<u16>> = changed
                .iter()
                .filter(|(h, _)| *h == hoa)
                .map(|&(_, bid)| bid)
                .collect();
            if self.dataplane && !pending.is_empty() {
                self.held.push(Held {
                    hoa,
                    pending,
                    tx,
                    until: now + DATAPLANE_WAIT,
                });
            } else {
                self.send(&tx).await;
            }
        }
        // Held BAs whose every change is confirmed, or that waited long enough.
        let ready = std::mem::take(&mut self.ready);
        for h in &mut self.held {
            h.pending.retain(|bid| !ready.contains(&(h.hoa, *bid)));
        }
        let (go, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| h.pending.is_empty() || h.until <= now);
        self.held = keep;
        for h in go {
            if !h.pending.is_empty() {
                warn!(hoa = %h.hoa, bids = ?h.pending, waited_ms = DATAPLANE_WAIT.as_millis() as u64,
                    "the data plane did not confirm the binding change; sending the BA anyway");
            }
            self.send(&h.tx).await;
        }
        // Compaction folds and rewrites the journal on its own thread (journal module docs):
        // the loop pays only, at the swap, the records that came meanwhile.
        match self.journal.poll_compaction() {
            Ok(_) => {}
            Err(e) => {
                error!(error = %e, "journal compaction failed; the journal goes on as it was")
            }
        }
        if !self.journal.compacting()
            && self.journal.should_compact(self.ha.binding_count())
            && let Err(e) = self.journal.begin_compaction(wall())
        {
            error!(error = %e, "journal compaction could not start");
        }
    }

    async fn apply(&mut self, ev: HaEvent) {
        match ev {
            HaEvent::Persist(_) => {}
            HaEvent::BcAdd(b) => self.publish(Body::BcAdd(b)),
            HaEvent::BcRemove(b) => self.publish(Body::BcRemove(b)),
            HaEvent::ProxyNdAdd(p) => self.defend(&p),
            HaEvent::ProxyDadStart { hoa, targets } => {
                // RFC 6275 §10.3.1 / RFC 4862 §5.4.2: one NS from :: per address; the
                // core's timer gives the verdict.
                for t in targets {
                    let ns = mhio::dad_neighbour_solicitation(t);
                    if let Err(e) = self.home_sender.send_packet(&ns).await {
                        warn!(%hoa, target = %t, error = %e, "proxy DAD solicitation not sent");
                    }
                }
                debug!(%hoa, "proxy DAD: solicitations sent");
            }
            HaEvent::ProxyNdRemove(p) => {
                self.na_repeats
                    .retain(|r| r.1 != p.hoa && Some(r.1) != p.link_local);
                for a in std::iter::once(p.hoa).chain(p.link_local) {
                    if self.defended.remove(&a).is_some() {
                        debug!(hoa = %a, "no longer defended on the home link");
                    }
                }
            }
        }
    }

    fn publish(&self, body: Body) {
        if let Err(e) = self.bus.send(&Message::new(body)) {
            warn!(error = %e, "bus announcement failed");
        }
    }

    /// Puts `msgs` on the bus in datagrams of many (mipsock's `send_batch`): each reader
    /// wakes once for them all, and a fleet's announcements take a fraction of a reader's
    /// queue.
    fn announce(&self, msgs: &[Message]) {
        if let Err(e) = self.bus.send_batch(msgs) {
            warn!(error = %e, messages = msgs.len(), "bus announcements failed");
        }
    }

    async fn send(&self, tx: &Transmit) {
        let to = tx.addressing.dst_addr;
        if let Ok(MhRepr::BindingAck(ba)) = tx.repr() {
            let status = u8::from(ba.status);
            let (meaning, rfc) = ba_status_name(status);
            let hoa = tx.addressing.rh2_home_address.unwrap_or(to);
            let coa = ba_care_of(tx);
            if status < 128 {
                info!(%hoa, %coa, seq = ba.sequence.0, lifetime = ba.lifetime.units() as u32 * 4,
                    status, "binding acknowledged: {meaning} ({rfc})");
            } else {
                warn!(%hoa, %coa, seq = ba.sequence.0, status,
                    "binding update refused: {meaning} ({rfc})");
            }
        }
        if let Some(path) = tx.udp_v4 {
            // nemonetd owns UDP 4191 and sends it from there: same socket, same NAT mapping
            // as the data (RFC 5555 §5.2).
            debug!(dst = %to, peer = %path.peer, "reply in UDP/IPv4 handed to nemonetd");
            let msg = Message::new(Body::MhUdpOut(MhUdpOut {
                peer: path.peer,
                packet: PacketBytes(tx.to_ipv6_packet()),
                // From the address the BU came to: a NAT passes back only what comes from
                // the address its mapping was made towards, and on a home agent with
                // several IPv4 addresses the route's source may be another.
                from: (!path.local.ip().is_unspecified()).then(|| mipsock::UdpFrom {
                    addr: *path.local.ip(),
                    ifindex: 0,
                }),
            }));
            match self.bus.send(&msg) {
                Ok(r) if r.delivered == 0 => warn!(peer = %path.peer,
                    "nobody on the bus to send a UDP-encapsulated reply: DSMIPv6 needs nemonetd -h running (it owns UDP 4191)"),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "UDP-encapsulated reply not handed to nemonetd"),
            }
            return;
        }
        let packet = tx.to_ipv6_packet();
        if let Err(e) = self.sender_for(&packet).send_packet(&packet).await {
            warn!(error = %e, "signalling packet not sent");
        }
    }

    /// The home-link sender for a packet whose on-wire destination is on the home link
    /// (RFC 6275 §6.1, §9.5.4, §10.3.2: BAs, Binding Errors and Parameter Problems go
    /// straight to their destination, never into the tunnel of the binding they concern),
    /// else the routed one.
    fn sender_for(&self, packet: &[u8]) -> &RawSender {
        let on_home_link = proto::ext::Ipv6Header::new_checked(packet)
            .map(|ip| ip.dst_addr())
            .is_ok_and(|dst| {
                self.ha
                    .config()
                    .home_prefixes
                    .iter()
                    .any(|p| p.contains(&dst))
            });
        if on_home_link {
            &self.home_sender
        } else {
            &self.sender
        }
    }

    /// SIGUSR1: the binding cache to the log, one line a binding.
    fn dump_state(&self) {
        let bindings = self.ha.snapshot(Instant::now(), wall());
        for b in &bindings {
            info!(binding = ?b, "SIGUSR1: binding");
        }
        info!(
            bindings = bindings.len(),
            held_bas = self.held.len(),
            dataplane = self.dataplane,
            "SIGUSR1: state"
        );
    }

    /// SIGHUP: new configuration, same bindings; a bad file changes nothing.
    async fn reload(&mut self) {
        info!(config = %self.cli.config.display(), "SIGHUP: reloading the configuration");
        let (cfg, core_cfg) = match load(&self.cli, self.ha.config().home_ifindex) {
            Ok(c) => c,
            Err(e) => {
                error!("configuration not reloaded, the running one stays: {e}");
                return;
            }
        };
        self.logging.set_debug(self.cli.debug || cfg.debug > 0);
        if cfg.binding_cache_file != self.journal_path {
            warn!(new = %cfg.binding_cache_file.display(), kept = %self.journal_path.display(),
                "binding-cache-file changed: takes effect at the next start");
        }
        if core_cfg == *self.ha.config() {
            info!("configuration unchanged");
            return;
        }
        if core_cfg.auth == AuthPolicy::Disabled {
            warn!("authentication disabled ('authentication none;')");
        }
        let mut ha = match Ha::new(core_cfg) {
            Ok(ha) => ha,
            Err(e) => {
                error!("configuration not reloaded, the running one stays: {e}");
                return;
            }
        };
        let (now, wall) = (Instant::now(), wall());
        let snapshot = self.ha.snapshot(now, wall);
        ha.restore(now, wall, snapshot.clone());
        let mut withdrawn = HashSet::new();
        for b in &snapshot {
            if ha.binding(now, &b.hoa).is_none() {
                // No longer served: withdraw it everywhere (each RFC 5648 BID binding,
                // the proxy ND entry once per home address).
                info!(hoa = %b.hoa, bid = b.bid, "binding dropped by the new configuration");
                self.journal.append(&JournalRecord::Remove {
                    hoa: b.hoa,
                    bid: b.bid,
                });
                if let Some(mut old) = self
                    .ha
                    .bindings(now, &b.hoa)
                    .into_iter()
                    .find(|x| x.binding_id == b.bid)
                {
                    old.lifetime = 0;
                    self.publish(Body::BcRemove(old));
                }
                if withdrawn.insert(b.hoa) {
                    self.defended.remove(&b.hoa);
                }
            }
        }
        let prefixes_changed = ha.config().home_prefixes != self.ha.config().home_prefixes;
        self.ha = ha;
        if prefixes_changed {
            // RFC 6275 §10.6.2: the mobile nodes away hear of the new home prefixes.
            let n = self.ha.advertise_prefixes(now);
            while let Some(packet) = self.ha.poll_icmp_reply() {
                self.icmp_out.push(packet);
            }
            info!(mobile_nodes = n, prefixes = ?self.ha.config().home_prefixes,
                "home prefixes changed: unsolicited mobile prefix advertisements sent; the \
                 Home-Agents anycast addresses change at the next start");
        }
        let snap = self.ha.snapshot(now, wall);
        if let Err(e) = self.journal.compact(&snap) {
            error!(error = %e, "journal compaction after reload failed");
        }
        info!(bindings = self.ha.len(), "configuration reloaded");
    }
}

/// had's counters for the metrics listener (`--metrics`): the binding cache's size and
/// every core counter, under `had_`.
fn metric_samples(d: &Daemon) -> Vec<Sample> {
    let (ha, held_bas) = (&d.ha, d.held.len());
    let st = ha.stats();
    let mut v = vec![
        Sample::gauge(
            "had_bindings",
            "Bindings in the binding cache (one per BID of a home address registered with RFC 5648 Binding Identifiers).",
            ha.binding_count() as u64,
        ),
        Sample::gauge(
            "had_held_binding_acks",
            "BAs held until the data plane carries their binding.",
            held_bas as u64,
        ),
    ];
    let counters: [(&'static str, &'static str, u64); 31] = [
        (
            "had_mh_received",
            "Mobility Header packets handed to the core.",
            st.received,
        ),
        (
            "had_mh_bad_checksum",
            "Mobility Headers dropped for their checksum.",
            st.bad_checksum,
        ),
        (
            "had_mh_malformed",
            "Mobility Headers dropped as unparsable.",
            st.malformed,
        ),
        (
            "had_bu_accepted",
            "Binding Updates accepted (status 0).",
            st.accepted,
        ),
        (
            "had_deregistrations",
            "De-registrations processed.",
            st.deregistered,
        ),
        (
            "had_bu_no_auth_option",
            "BUs dropped without an MN-HA option (RFC 4285 §4).",
            st.no_auth_option,
        ),
        (
            "had_bu_unknown_spi",
            "BUs dropped for an unknown SPI.",
            st.unknown_spi,
        ),
        (
            "had_bu_auth_failed",
            "BUs answered 146 (MAC, or SA not for the home address).",
            st.auth_failed,
        ),
        (
            "had_bu_replay_refused",
            "BUs answered 144 or 145 (RFC 4285 §6).",
            st.replay_rejected,
        ),
        (
            "had_bu_invalid_coa",
            "BUs dropped for their care-of address (RFC 6275 §9.5.1).",
            st.invalid_coa,
        ),
        (
            "had_bu_dropped_other",
            "Other BUs dropped silently.",
            st.dropped_other,
        ),
        (
            "had_binding_errors",
            "Binding Errors sent.",
            st.binding_errors,
        ),
        (
            "had_binding_errors_limited",
            "Binding Errors suppressed by the rate limit.",
            st.binding_errors_limited,
        ),
        (
            "had_parameter_problems",
            "ICMPv6 Parameter Problems sent (RFC 6275 §9.2).",
            st.parameter_problems,
        ),
        (
            "had_parameter_problems_limited",
            "Parameter Problems suppressed by the rate limit.",
            st.parameter_problems_limited,
        ),
        (
            "had_brr_sent",
            "Binding Refresh Requests sent.",
            st.brr_sent,
        ),
        (
            "had_home_agent_switches_sent",
            "Home Agent Switch messages sent (RFC 5142), retransmissions included.",
            st.home_agent_switches_sent,
        ),
        (
            "had_home_agent_switches_retransmitted",
            "Home Agent Switch messages sent again, the node not having left (RFC 5142 section 5.2).",
            st.home_agent_switches_retransmitted,
        ),
        ("had_bindings_expired", "Bindings expired.", st.expired),
        (
            "had_bids_refused",
            "Binding Identifier options (RFC 5648) refused with a per-BID status.",
            st.bids_refused,
        ),
        (
            "had_bu_cache_full",
            "New registrations refused with 130 (max-bindings).",
            st.cache_full,
        ),
        (
            "had_bu_unlisted_home_address",
            "BUs refused with 129 (home address named nowhere).",
            st.unlisted_home_address,
        ),
        (
            "had_proxy_dad_started",
            "Proxy DAD runs started (RFC 6275 §10.3.1).",
            st.dad_started,
        ),
        (
            "had_proxy_dad_defended",
            "Registrations refused with 134 (address defended).",
            st.dad_defended,
        ),
        (
            "had_hao_received",
            "Non-signalling packets with a Home Address option.",
            st.hao_received,
        ),
        (
            "had_hao_unbound",
            "Of those, answered with Binding Error 1.",
            st.hao_unbound,
        ),
        (
            "had_hao_not_delivered",
            "Of those, from a bound care-of address, not delivered.",
            st.hao_not_delivered,
        ),
        (
            "had_router_advertisements",
            "Router Advertisements taken in from the home link (home agents list).",
            st.router_advertisements,
        ),
        (
            "had_haad_requests",
            "Home Agent Address Discovery Requests received (RFC 6275 10.5).",
            st.haad_requests,
        ),
        (
            "had_mobile_prefix_solicitations",
            "Mobile Prefix Solicitations answered (RFC 6275 10.6.2).",
            st.mobile_prefix_solicitations,
        ),
        (
            "had_discovery_dropped",
            "Discovery requests dropped: not to our anycast address, odd source, or rate-limited.",
            st.discovery_dropped,
        ),
    ];
    v.extend(
        counters
            .into_iter()
            .map(|(name, help, value)| Sample::counter(name, help, value)),
    );
    // One series per status seen, labelled with its number and name (BaStatus::meaning).
    v.extend(st.refused_by_status.iter().map(|(&status, &n)| {
        Sample::counter(
            "had_bu_refused",
            "Binding Updates refused, by BA status (128 or more).",
            n,
        )
        .label("status", status.to_string())
        .label("meaning", BaStatus::from(status).meaning().0)
    }));
    if let Some(r) = &d.redundancy {
        v.push(Sample::gauge(
            "had_redundancy_active",
            "1 while this member is the active home agent of its address, 0 as a standby.",
            u64::from(r.election.active_epoch().is_some()),
        ));
        v.push(Sample::counter(
            "had_redundancy_takeovers",
            "Times this member took over the home agent address and its bindings.",
            r.takeovers,
        ));
        v.push(Sample::counter(
            "had_redundancy_stepdowns",
            "Times this member stepped down to standby (another member took the leadership).",
            r.stepdowns,
        ));
    }
    v
}

/// The host name, for the member name when the configuration gives none.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use proto::ext::MobilityPacketRepr;

    use super::*;

    fn ba(dst: &str, rh2: Option<&str>, udp_v4: Option<UdpV4Path>) -> Transmit {
        Transmit {
            addressing: MobilityPacketRepr {
                src_addr: "2001:db8:1::1".parse().unwrap(),
                dst_addr: dst.parse().unwrap(),
                hop_limit: 64,
                home_address: None,
                rh2_home_address: rh2.map(|h| h.parse().unwrap()),
            },
            udp_v4,
            mh: Vec::new(),
            ifindex: None,
        }
    }

    #[test]
    fn a_udp_ba_is_logged_with_the_ipv4_care_of_address_not_the_home_address() {
        // RFC 5555 §4.2: inside UDP/IPv4 the BA is addressed to the home address.
        let path = UdpV4Path {
            peer: SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 200), 40000),
            local: SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 4191),
        };
        let tx = ba("2001:db8:1::100", None, Some(path));
        assert_eq!(ba_care_of(&tx).to_string(), "198.51.100.200:40000");
        // IPv6: to the care-of address, the home address in the RH2; at home, the HoA.
        let tx = ba("2001:db8:a::5", Some("2001:db8:1::100"), None);
        assert_eq!(ba_care_of(&tx).to_string(), "2001:db8:a::5");
        let tx = ba("2001:db8:1::100", None, None);
        assert_eq!(ba_care_of(&tx).to_string(), "2001:db8:1::100");
    }

    #[test]
    fn the_name_of_146_claims_no_cause_the_core_did_not_find() {
        // 146 is sent when the MAC does not verify and when it does but the SA is not for
        // the home address; the core's log line says which (core test
        // a_146_log_says_whether_the_mac_or_the_sa_failed).
        let (name, rfc) = ba_status_name(146);
        assert!(!name.contains("did not verify"), "{name}");
        assert!(name.contains("SA not for this home address"), "{name}");
        assert_eq!(rfc, "RFC 4285");
    }
}
