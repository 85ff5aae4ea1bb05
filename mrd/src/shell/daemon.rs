//! The driving loop: MD_INFO, BAs, timers and signals in; BUs and BUL events out.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mhio::{NftGuard, RawSender, Received, Receiver};
use mipsock::{
    AsyncEndpoint, Body, MdCommand, MdHint, MdInfo, Message, MhUdpIn, MhUdpOut, NodeType,
    NodetypeInfo, PacketBytes, StateItem,
};
use nemo_daemon::Signal;
use nemo_daemon::metrics::Sample;
use tracing::{debug, error, info, warn};

use super::{Cli, Logging, SHUTDOWN_GRACE, ShellError, setup};
use crate::core::{
    Ipv4MnpOutcome, MrCore, MrCoreConfig, MrEvent, ReceivedSignal, RegistrationState,
};

fn wall() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Reads the configuration for `cli.ifname` and maps it; logs its warnings.
fn load(cli: &Cli) -> Result<(conf::MrConfig, MrCoreConfig), ShellError> {
    let (cfg, warnings) = conf::MrConfig::from_file_for(&cli.config, Some(&cli.ifname))?;
    for w in &warnings {
        warn!("{w}");
    }
    let cfg = setup::node_mode(cfg, cli.mnd)?;
    let mut core = setup::core_config(&cfg, cli.home_agent)?;
    core.link_local_compat = link_local_shares_iid(core.home_address);
    Ok((cfg, core))
}

/// RFC 6275 §11.7.1: L is set when the home address's interface identifier is that of a
/// link-local address of ours (then the home agent defends that one too).
fn link_local_shares_iid(hoa: std::net::Ipv6Addr) -> bool {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return false;
    };
    let iid = &hoa.octets()[8..];
    let found = addrs
        .filter_map(|a| a.address?.as_sockaddr_in6().map(|s| s.ip()))
        .any(|ip| ip.is_unicast_link_local() && &ip.octets()[8..] == iid);
    if found {
        info!(%hoa, "a link-local address of ours has the home address's interface identifier: BUs carry L");
    }
    found
}

/// `mrd --check`: loads the configuration exactly as a start would and builds the core
/// from it; warnings go to stderr. Touches nothing.
pub(super) fn check(cli: &Cli) -> Result<String, ShellError> {
    let (cfg, warnings) = conf::MrConfig::from_file_for(&cli.config, Some(&cli.ifname))?;
    for w in &warnings {
        nemo_daemon::check::warning(w);
    }
    let cfg = setup::node_mode(cfg, cli.mnd)?;
    let core = setup::core_config(&cfg, cli.home_agent)?;
    let ha = if core.home_agent.is_unspecified() {
        "found by dynamic home agent address discovery".to_string()
    } else {
        core.home_agent.to_string()
    };
    let mcoa = if core.multiple_coa {
        let bids: Vec<String> = core
            .egress_interfaces
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{n}={}", i + 1))
            .collect();
        let flows: Vec<String> = core
            .flow_bindings
            .iter()
            .map(|f| format!("{}->{:?}", f.fid, f.bids))
            .collect();
        let flows = if flows.is_empty() {
            String::new()
        } else {
            format!(", flow bindings (FID->BIDs {})", flows.join(" "))
        };
        format!(
            ", multiple care-of addresses (BIDs {}){flows}",
            bids.join(" ")
        )
    } else {
        String::new()
    };
    let summary = format!(
        "home address {}, home agent {}, IPv6 prefixes {:?}, IPv4 prefixes {:?}, {}{mcoa}, {} warnings",
        core.home_address,
        ha,
        core.mnp_v6,
        core.mnp_v4,
        if core.security.is_some() {
            "authenticated (RFC 4285)"
        } else {
            "unauthenticated"
        },
        warnings.len()
    );
    MrCore::new(core)?;
    Ok(summary)
}

/// RFC 6275 §11.5.5: back home and de-registered, the router announces its home address
/// itself on the home link (unsolicited NAs, Override and Router set; RFC 4861 §7.2.6
/// allows three, a second apart), so neighbours stop sending to the home agent's proxy.
///
/// nemonetd -m puts the home address on the home link when mrd's BUL_REMOVE at home comes
/// (issue 11), normally before the BA; it is awaited for [`HOME_ADDRESS_WAIT`].
fn announce_at_home(hoa: std::net::Ipv6Addr) {
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + HOME_ADDRESS_WAIT;
        let (ifname, ifindex, mac) = loop {
            if let Some(link) = mhio::link_holding(hoa) {
                break link;
            }
            if tokio::time::Instant::now() >= deadline {
                warn!(%hoa, waited_s = HOME_ADDRESS_WAIT.as_secs(),
                    "back home, but no interface holds the home address on-link (is nemonetd -m running?); no NA sent");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        info!(%hoa, ifname = %ifname, "back home: announcing the home address on the home link");
        for i in 0..3 {
            if i > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            if let Err(e) = mhio::announce_own_address(&ifname, ifindex, hoa, mac, true) {
                warn!(%hoa, error = %e, "unsolicited NA not sent");
                return;
            }
        }
    });
}

/// How long the announcement at home waits for the home address on the home link.
const HOME_ADDRESS_WAIT: Duration = Duration::from_secs(5);

fn new_core(cfg: MrCoreConfig) -> Result<MrCore, crate::ConfigError> {
    let mut mr = MrCore::new(cfg)?;
    mr.set_wall_clock(Instant::now(), wall());
    Ok(mr)
}

struct Daemon {
    cli: Cli,
    logging: Logging,
    mr: MrCore,
    bus: AsyncEndpoint,
    sender: RawSender,
    /// The last REREG acted on (replayed into a new core after a reload).
    last_rereg: Option<MdInfo>,
    /// ICMPv6 errors (they quote the packet) and Binding Errors built in `on_packet`, sent
    /// in `flush`.
    icmp_out: Vec<Vec<u8>>,
    /// UDP-encapsulated BUs handed to nemonetd since it last relayed an answer (DSMIPv6
    /// needs it: it owns the UDP socket); the "nobody relays" warning is given once.
    udp_unanswered: u32,
    relay_warned: bool,
}

pub(super) async fn run(cli: Cli, logging: Logging) -> Result<(), ShellError> {
    let (cfg, core_cfg) = load(&cli)?;
    let conf_metrics = cfg.metrics_listen;
    logging.set_debug(cli.debug || cfg.debug > 0);
    let hoa = core_cfg.home_address;
    if mhio::if_index(&cli.ifname).is_err() {
        warn!(ifname = %cli.ifname, "mobile interface not found");
    } else if !setup::interface_addresses(&cli.ifname).contains(&hoa) {
        warn!(%hoa, ifname = %cli.ifname,
            "home address not configured on the mobile interface: signalling works, but the node has no home address for its own traffic");
    }
    let mr = new_core(core_cfg)?;

    // mnd and mrd may run side by side: each has its own guard table and bus name.
    let name = if cli.mnd { "mnd" } else { "mrd" };
    let guard = NftGuard::install(name)?;
    let mut receiver = Receiver::new(None)?;
    // Home Agent Address Discovery Replies, when no home agent is configured.
    let discovery = if mr.discovers_home_agent() {
        Some(mhio::DiscoverySocket::replies()?)
    } else {
        None
    };
    let mut discovery_buf = vec![0u8; 2048];
    let sender = RawSender::new(None)?;
    let bus_dir = cli
        .bus_dir
        .clone()
        .unwrap_or_else(|| mipsock::bus_dir_from_env("default"));
    let bus = AsyncEndpoint::open(&bus_dir, name, Default::default()).map_err(|source| {
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
    let mut d = Daemon {
        cli,
        logging,
        mr,
        bus,
        sender,
        last_rereg: None,
        icmp_out: Vec::new(),
        udp_unanswered: 0,
        relay_warned: false,
    };
    d.announce_role(true);
    let c = d.mr.config();
    info!(ifname = %d.cli.ifname, hoa = %c.home_address, ha = %d.mr.home_agent(),
        mnp_v6 = ?c.mnp_v6, mnp_v4 = ?c.mnp_v4, mode = ?c.mode, lifetime_s = u32::from(c.lifetime.units()) * 4,
        multiple_coa = c.multiple_coa,
        authenticated = c.security.is_some(), bus = %bus_dir.display(),
        "{name} ready");
    let metrics = match d.cli.metrics.or(conf_metrics) {
        Some(addr) => Some(
            nemo_daemon::metrics::start(addr, metric_samples(&d.mr))
                .await
                .map_err(|source| ShellError::Os {
                    what: "binding the metrics listener",
                    source,
                })?,
        ),
        None => None,
    };
    nemo_daemon::notify::ready();
    d.ask_current_coa().await;
    d.flush().await;

    // Set once a stop signal came: the deregistration's deadline.
    let mut stopping: Option<tokio::time::Instant> = None;
    let mut gap_retry: Option<tokio::time::Instant> = None;

    loop {
        if let Some(limit) = stopping {
            let done = matches!(
                d.mr.state(),
                RegistrationState::Idle | RegistrationState::Stopped(_)
            );
            if done {
                break;
            }
            if tokio::time::Instant::now() >= limit {
                warn!(
                    "no deregistration acknowledgement in time; the binding will expire at the HA"
                );
                break;
            }
        }
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        let mut deadline = d.mr.poll_timeout().map_or(far, Into::into);
        if let Some(at) = gap_retry {
            deadline = deadline.min(at);
        }
        if let Some(limit) = stopping {
            deadline = deadline.min(limit);
        }
        tokio::select! {
            r = receiver.recv_inbound() => match r {
                Ok(mhio::Inbound::Mobility(rx)) => d.on_packet(&rx),
                Ok(mhio::Inbound::RoutedToHome(rx)) => d.on_routed_to_home(&rx),
                // Traffic with a Home Address option is for a home agent.
                Ok(mhio::Inbound::HomeAddressOption(_)) => {}
                Err(e) => {
                    warn!(error = %e, "receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            m = d.bus.recv() => match m {
                Ok(msg) => d.on_bus(&msg),
                Err(e) => warn!(error = %e, "mipsock receive failed"),
            },
            r = recv_discovery(discovery.as_ref(), &mut discovery_buf) => match r {
                Ok(p) => d.on_discovery_reply(&p, &discovery_buf[..p.len]),
                Err(e) => {
                    warn!(error = %e, "discovery receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = tokio::time::sleep_until(deadline) => d.mr.handle_timeout(Instant::now()),
            s = signals.recv() => match s {
                Signal::Stop(_) => {
                    if stopping.is_some() { break; }
                    info!("{s}: deregistering, then stopping");
                    nemo_daemon::notify::stopping();
                    stopping = Some(d.stop());
                }
                Signal::Reload => d.reload(),
                Signal::DumpState => d.dump_state(),
            },
        }
        d.flush().await;
        // Readers whose last messages from us were dropped are told so (mipsock's gap
        // notices), again while their queue is full: nemonetd re-reads what it lost.
        gap_retry = (d.bus.endpoint().send_gap_notices() > 0)
            .then(|| tokio::time::Instant::now() + mipsock::Endpoint::GAP_NOTICE_RETRY);
        if let Some(m) = &metrics {
            m.set(metric_samples(&d.mr));
        }
    }

    d.announce_role(false);
    if let Err(e) = guard.remove() {
        error!("{e}");
    } else {
        info!("nftables guard removed");
    }
    info!("mrd stopped");
    Ok(())
}

/// The next Reply on the discovery socket; never, without one.
async fn recv_discovery(
    socket: Option<&mhio::DiscoverySocket>,
    buf: &mut [u8],
) -> Result<mhio::DiscoveryPacket, mhio::Error> {
    match socket {
        Some(s) => s.recv(buf).await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// ICMPv6 through a type 2 routing header to our home address: a Mobile Prefix
    /// Advertisement from the home agent (RFC 6275 §11.4.3).
    fn on_routed_to_home(&mut self, rx: &mhio::HaoPacket<'_>) {
        let p = &rx.packet;
        if p.rh2_home_address != Some(self.mr.config().home_address) {
            return;
        }
        match proto::icmpv6::Icmpv6Repr::parse_bytes(p.payload) {
            Ok(proto::icmpv6::Icmpv6Repr::MobilePrefixAdvertisement(mpa)) => {
                self.mr
                    .handle_mobile_prefix_advertisement(Instant::now(), p.src_addr, &mpa);
            }
            Ok(other) => debug!(src = %p.src_addr, msg = ?other.msg_type(),
                "ICMPv6 through a type 2 routing header ignored"),
            Err(e) => {
                debug!(src = %p.src_addr, error = %e, "malformed ICMPv6 through a type 2 routing header")
            }
        }
    }

    /// A Home Agent Address Discovery Reply (RFC 6275 §11.4.1).
    fn on_discovery_reply(&mut self, p: &mhio::DiscoveryPacket, icmp: &[u8]) {
        match proto::icmpv6::Icmpv6Repr::parse_bytes(icmp) {
            Ok(proto::icmpv6::Icmpv6Repr::HaadReply(reply)) => {
                self.mr.handle_haad_reply(Instant::now(), p.src, &reply);
            }
            Ok(other) => {
                debug!(src = %p.src, msg = ?other.msg_type(), "discovery socket: message ignored")
            }
            Err(e) => debug!(src = %p.src, error = %e, "malformed ICMPv6 on the discovery socket"),
        }
    }

    fn announce_role(&self, enable: bool) {
        let msg = Message::new(Body::NodetypeInfo(NodetypeInfo {
            node_type: if self.mr.config().mobile_router {
                NodeType::MR
            } else {
                NodeType::MN
            },
            enable,
        }));
        if let Err(e) = self.bus.send(&msg) {
            warn!(error = %e, "NODETYPE_INFO not sent");
        }
    }

    /// Asks babymdd (if running) where we are, so a restart re-registers at once.
    async fn ask_current_coa(&mut self) {
        let answer = match self
            .bus
            .request_state(Duration::from_millis(300), None)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                debug!(error = %e, "state request failed");
                return;
            }
        };
        for msg in &answer.other {
            self.on_bus(msg);
        }
        // babymdd follows its answer with the MD_INFO itself when it reports uplinks (RFC
        // 5648), which the current care-of address cannot carry: that one, if it came,
        // says more.
        if answer
            .other
            .iter()
            .any(|m| matches!(&m.body, Body::MdInfo(md) if md.command != MdCommand::Scan))
        {
            return;
        }
        let current = answer
            .owners
            .iter()
            .flat_map(|o| &o.items)
            .find_map(|i| match i {
                StateItem::CurrentCoa(c) => Some(c.clone()),
                _ => None,
            });
        if let Some(c) = current {
            let command = if c.at_home {
                MdCommand::Dereghome
            } else {
                MdCommand::Rereg
            };
            info!(coa = ?c.coa, at_home = c.at_home, "movement detector's current care-of address");
            let md = MdInfo {
                command,
                hint: MdHint::default(),
                hoa: None,
                coa: c.coa,
                coa2: None,
                ifindex: c.ifindex,
                uplinks: Vec::new(),
            };
            self.on_md_info(&md);
        }
    }

    fn on_md_info(&mut self, md: &MdInfo) {
        debug!(command = ?md.command, coa = ?md.coa, ifindex = md.ifindex, "MD_INFO");
        if md.command == MdCommand::Rereg && md.coa.is_some() {
            self.last_rereg = Some(md.clone());
        }
        self.mr.handle_md_info(Instant::now(), md);
    }

    /// A UDP-encapsulated Mobility Header relayed by nemonetd (DSMIPv6, RFC 5555 §4.2):
    /// the BA / BRR from the HA, inner IPv6 addressed to our home address.
    fn on_mh_udp_in(&mut self, m: &MhUdpIn) {
        self.udp_unanswered = 0;
        self.relay_warned = false;
        let p = match proto::ext::walk(&m.packet.0) {
            Ok(proto::ext::Walk::Mobility(p)) => p,
            Ok(_) | Err(_) => {
                debug!(peer = %m.peer, "relayed UDP packet is not a mobility header; ignored");
                return;
            }
        };
        if p.dst_addr != self.mr.config().home_address {
            debug!(dst = %p.dst_addr, "relayed mobility header not for us ignored");
            return;
        }
        debug!(peer = %m.peer, local = %m.local, "mobility header in UDP/IPv4");
        self.mr.set_udp_local(m.local);
        self.mr
            .handle_packet(Instant::now(), ReceivedSignal::from_packet(&p));
        // No ICMPv6 error path inside UDP.
        while self.mr.poll_icmp_error().is_some() {}
        while self.mr.poll_binding_error().is_some() {}
    }

    fn on_packet(&mut self, rx: &Received<'_>) {
        let p = &rx.packet;
        let hoa = self.mr.config().home_address;
        // Ours: RH2 to our home address (away), or to the home address itself (at home).
        // Anything else is in transit through this router.
        let ours = match p.rh2_home_address {
            Some(h) => h == hoa,
            None => p.dst_addr == hoa,
        };
        if !ours {
            debug!(src = %p.src_addr, dst = %p.dst_addr, "mobility header not for us ignored");
            return;
        }
        self.mr
            .handle_packet(Instant::now(), ReceivedSignal::from_packet(p));
        // RFC 6275 §9.2: the guard keeps the kernel quiet, so we answer a malformed MH.
        while let Some(pp) = self.mr.poll_icmp_error() {
            let pointer = pp.pointer(p.payload_range.start);
            debug!(dst = %pp.dst, pointer, "ICMPv6 parameter problem for a malformed mobility header");
            self.icmp_out.push(mhio::parameter_problem(
                pp.src, pp.dst, pp.code, pointer, rx.bytes,
            ));
        }
        while let Some(be) = self.mr.poll_binding_error() {
            debug!("binding error (status 2, unrecognised MH type) to the home agent");
            self.icmp_out.push(be);
        }
    }

    fn on_bus(&mut self, msg: &Message) {
        match &msg.body {
            Body::MdInfo(md) => self.on_md_info(md),
            Body::MhUdpIn(m) => self.on_mh_udp_in(m),
            Body::StateRequest => {
                let mut items: Vec<StateItem> = (self.mr.handle_state_request(Instant::now()))
                    .into_iter()
                    .map(StateItem::Bul)
                    .collect();
                // The home agent in use, and those discovery listed after it.
                let origin = if self.mr.discovers_home_agent() {
                    mipsock::HomeAgentOrigin::Discovered
                } else {
                    mipsock::HomeAgentOrigin::Configured
                };
                let in_use = Some(self.mr.home_agent()).filter(|a| !a.is_unspecified());
                let others = self.mr.discovered_home_agents().iter().copied();
                for (i, address) in in_use.into_iter().chain(others).enumerate() {
                    items.push(StateItem::HomeAgent(mipsock::HomeAgentInfo {
                        address,
                        preference: 0,
                        lifetime: 0,
                        mobile_router: self.mr.config().mobile_router,
                        origin,
                        in_use: i == 0 && in_use.is_some(),
                    }));
                }
                if let Err(e) = self.bus.reply_state(msg, items, 0) {
                    warn!(error = %e, "state reply failed");
                }
            }
            _ => {}
        }
    }

    /// Starts the deregistration; returns the deadline.
    fn stop(&mut self) -> tokio::time::Instant {
        self.mr.deregister(Instant::now());
        tokio::time::Instant::now() + SHUTDOWN_GRACE
    }

    async fn flush(&mut self) {
        // Bus events before the BUs: a router back home tells nemonetd -m (BUL_REMOVE at
        // home) before its de-registration leaves, so its home address is on the home link
        // when the HA looks for it to deliver the BA (RFC 6275 §11.5.5).
        self.publish_events();
        for packet in std::mem::take(&mut self.icmp_out) {
            if let Err(e) = self.sender.send_packet(&packet).await {
                debug!(error = %e, "ICMPv6 error not sent");
            }
        }
        // Discovery Requests leave by the care-of address's interface, like the BUs.
        while let Some(tx) = self.mr.poll_icmp_transmit() {
            if let Err(e) = self.sender.send_packet_via(&tx.packet, tx.ifindex).await {
                warn!(error = %e, "home agent address discovery request not sent");
            }
        }
        while let Some(tx) = self.mr.poll_transmit() {
            let packet = tx.to_packet();
            if let Some(peer) = tx.udp_v4 {
                // DSMIPv6: nemonetd owns the UDP socket (one NAT mapping for BU and data).
                debug!(seq = %tx.sequence, kind = ?tx.kind, lifetime_units = tx.lifetime.units(),
                    %peer, "binding update sent in UDP/IPv4 through nemonetd");
                let msg = Message::new(Body::MhUdpOut(MhUdpOut {
                    peer,
                    packet: PacketBytes(packet),
                    // Several IPv4 uplinks: each BU leaves from its care-of address.
                    from: tx.udp_from.map(|addr| mipsock::UdpFrom {
                        addr,
                        ifindex: tx.ifindex,
                    }),
                }));
                self.udp_unanswered += 1;
                if let Err(e) = self.bus.send(&msg) {
                    warn!(error = %e, "binding update not handed to nemonetd");
                } else if self.udp_unanswered >= 3 && !self.relay_warned {
                    warn!(%peer, sent = self.udp_unanswered,
                        "no UDP-encapsulated answer relayed: DSMIPv6 from an IPv4 care-of address needs nemonetd -m running (it owns the UDP socket and relays the signalling over the bus)");
                    self.relay_warned = true;
                }
                continue;
            }
            debug!(seq = %tx.sequence, kind = ?tx.kind, lifetime_units = tx.lifetime.units(),
                coa = %tx.addressing.src_addr, "binding update sent");
            if let Err(e) = self.sender.send_packet_via(&packet, tx.ifindex).await {
                warn!(error = %e, "binding update not sent");
            }
        }
    }

    /// The core's events: logs, the bus (BUL_ADD / BUL_REMOVE), the NAs at home.
    fn publish_events(&mut self) {
        while let Some(ev) = self.mr.poll_event() {
            match &ev {
                MrEvent::BulAdd {
                    binding,
                    ipv4,
                    optimistic,
                } => {
                    if *ipv4 == Ipv4MnpOutcome::HaUnsupported {
                        warn!(ha = %binding.ha, "the home agent does not register IPv4 mobile network prefixes: IPv6 only");
                    }
                    info!(hoa = %binding.hoa, coa = %binding.coa, bid = ?binding.binding_id,
                        mnp_v6 = ?binding.mnp_v6, mnp_v4 = ?binding.mnp_v4,
                        lifetime = binding.lifetime, optimistic, "BUL_ADD");
                }
                MrEvent::BulRemove { binding } => {
                    info!(hoa = %binding.hoa, coa = %binding.coa, bid = ?binding.binding_id, "BUL_REMOVE");
                }
                MrEvent::Stopped { reason } => {
                    error!(
                        ?reason,
                        "registration with the home agent stopped; fix the configuration and send SIGHUP or restart"
                    );
                }
                MrEvent::HomeAdvertise { hoa } => announce_at_home(*hoa),
            }
            if let Some(body) = bus_body(&ev)
                && let Err(e) = self.bus.send(&Message::new(body))
            {
                warn!(error = %e, "bus announcement failed");
            }
        }
    }

    /// SIGUSR1: the registration to the log.
    fn dump_state(&self) {
        let bindings: Vec<&mipsock::Binding> = self.mr.bindings().collect();
        info!(state = ?self.mr.state(), ?bindings, mcoa = ?self.mr.mcoa_support(),
            last_rereg = ?self.last_rereg, "SIGUSR1: state");
    }

    /// SIGHUP: a bad file changes nothing; a changed one replaces the core and registers
    /// again from the current care-of address.
    fn reload(&mut self) {
        info!(config = %self.cli.config.display(), "SIGHUP: reloading the configuration");
        let (cfg, mut core_cfg) = match load(&self.cli) {
            Ok(c) => c,
            Err(e) => {
                error!("configuration not reloaded, the running one stays: {e}");
                return;
            }
        };
        self.logging.set_debug(self.cli.debug || cfg.debug > 0);
        // The sequence number is random per core; compare the rest.
        core_cfg.initial_sequence = self.mr.config().initial_sequence;
        if core_cfg == *self.mr.config() {
            info!("configuration unchanged");
            return;
        }
        core_cfg.initial_sequence = self.mr.last_sequence().next();
        let mr = match new_core(core_cfg) {
            Ok(mr) => mr,
            Err(e) => {
                error!("configuration not reloaded, the running one stays: {e}");
                return;
            }
        };
        // The new core announces its own bindings once registered; the old ones it will not
        // replace go now: another home address's, and the binding identifiers' when they
        // are numbered differently or no longer used (RFC 5648).
        let (was, now) = (self.mr.config(), mr.config());
        let renumbered =
            was.multiple_coa != now.multiple_coa || was.egress_interfaces != now.egress_interfaces;
        for old in self.mr.bindings() {
            if old.hoa == now.home_address && !(renumbered && old.binding_id.is_some()) {
                continue;
            }
            let mut old = old.clone();
            old.lifetime = 0;
            if let Err(e) = self.bus.send(&Message::new(Body::BulRemove(old))) {
                warn!(error = %e, "bus announcement failed");
            }
        }
        self.mr = mr;
        info!("configuration reloaded");
        if let Some(md) = self.last_rereg.clone() {
            self.mr.handle_md_info(Instant::now(), &md);
        }
    }
}

/// The bus announcement of a core event: BUL_ADD / BUL_REMOVE for the data plane; the
/// other events are the shell's own business (logs, neighbour advertisements).
fn bus_body(ev: &MrEvent) -> Option<Body> {
    match ev {
        MrEvent::BulAdd { binding, .. } => Some(Body::BulAdd(binding.clone())),
        MrEvent::BulRemove { binding } => Some(Body::BulRemove(binding.clone())),
        MrEvent::Stopped { .. } | MrEvent::HomeAdvertise { .. } => None,
    }
}

/// mrd's counters for the metrics listener (`--metrics`), under `mrd_`.
fn metric_samples(mr: &MrCore) -> Vec<Sample> {
    let st = mr.stats();
    let (state, registered) = match mr.state() {
        RegistrationState::Idle => ("idle", 0),
        RegistrationState::Registering => ("registering", 0),
        RegistrationState::Registered { .. } => ("registered", 1),
        RegistrationState::Deregistering => ("deregistering", 0),
        RegistrationState::Stopped(_) => ("stopped", 0),
    };
    let mut v = vec![
        Sample::gauge(
            "mrd_registered",
            "1 while the home agent holds our binding, by registration state.",
            registered,
        )
        .label("state", state),
        Sample::gauge(
            "mrd_last_registration_microseconds",
            "From the start of the last acknowledged registration (movement or refresh) to its BA.",
            st.last_registration_us,
        ),
        Sample::gauge(
            "mrd_last_refusal_status",
            "Status of the last refused Binding Update (0: none).",
            st.last_refusal.map_or(0, u64::from),
        ),
    ];
    for (name, help, value) in [
        ("mrd_bu_sent", "Binding Updates sent.", st.bu_sent),
        (
            "mrd_mobile_prefix_solicitations",
            "Mobile Prefix Solicitations sent (RFC 6275 11.4.2).",
            st.mps_sent,
        ),
        (
            "mrd_mobile_prefix_advertisements",
            "Mobile Prefix Advertisements taken from the home agent (RFC 6275 11.4.3).",
            st.mpa_received,
        ),
        (
            "mrd_dhaad_requests",
            "Home Agent Address Discovery Requests sent (RFC 6275 11.4.1).",
            st.dhaad_requests,
        ),
        (
            "mrd_bu_retransmitted",
            "Of those, retransmissions (RFC 6275 §11.8).",
            st.bu_retransmitted,
        ),
        (
            "mrd_registrations",
            "Registrations acknowledged.",
            st.registrations,
        ),
        (
            "mrd_deregistrations",
            "De-registrations acknowledged.",
            st.deregistrations,
        ),
        (
            "mrd_bu_refused",
            "Binding Updates refused (status 128 or more).",
            st.refused,
        ),
        (
            "mrd_moves",
            "Movements to a new care-of address acted on.",
            st.moves,
        ),
        (
            "mrd_binding_errors_received",
            "Binding Errors received.",
            st.binding_errors_received,
        ),
        (
            "mrd_brr_received",
            "Binding Refresh Requests received.",
            st.brr_received,
        ),
    ] {
        v.push(Sample::counter(name, help, value));
    }
    v
}
