//! The daemon loop: netlink events, the bus, signals and the hold-down timer around the
//! [`Detector`].

use std::path::PathBuf;
use std::time::Instant;

use mipsock::{AsyncEndpoint, Body, EndpointOptions, MdCommand, Message, StateItem};
use nemo_daemon::Signal;
use nemo_daemon::metrics::Sample;
use tracing::{debug, error, info, warn};

use crate::detector::{Detector, DetectorConfig, Observation, Output, Selection};
use crate::dhcp::shell::Dhcp;
use crate::netlink::{NetlinkError, Watcher};
use crate::rs::RsSender;

/// Name of our endpoint on the bus (`from=babymdd[pid]` in `mipsock tap`).
pub const ENDPOINT_NAME: &str = "babymdd";

/// Everything [`run`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfig {
    /// The detector's settings.
    pub detector: DetectorConfig,
    /// The mipsock bus directory.
    pub bus_dir: PathBuf,
    /// Run a DHCPv4 client on every up egress link, with this base metric for the
    /// default routes it installs; `None`: no DHCP.
    pub dhcp_route_metric: Option<u32>,
    /// Where the metrics listener binds, if anywhere.
    pub metrics: Option<std::net::SocketAddr>,
}

/// What the shell counts (the detector decides; these are its outputs as sent).
#[derive(Debug, Default)]
struct Counts {
    /// MD_INFO sent, by command: REREG, DEREGHOME, DEREGFOREIGN, SCAN.
    md_info: [u64; 4],
    /// Router Solicitations sent.
    rs_sent: u64,
    /// Router Solicitations that could not be sent.
    rs_failed: u64,
}

/// babymdd's counters for the metrics listener (`--metrics`), under `babymdd_`.
fn metric_samples(det: &Detector, counts: &Counts) -> Vec<Sample> {
    let (attachment, ifindex) = match &det.selection() {
        Selection::Detached => ("detached", 0),
        Selection::Foreign { ifindex, .. } => ("foreign", *ifindex),
        Selection::Home { ifindex, .. } => ("home", *ifindex),
    };
    let mut v = vec![
        Sample::gauge(
            "babymdd_attached",
            "1, labelled with where the router is attached (home, foreign, detached).",
            1,
        )
        .label("attachment", attachment),
        Sample::gauge(
            "babymdd_attached_ifindex",
            "The interface of the care-of address or of the home link (0: none).",
            u64::from(ifindex),
        ),
    ];
    for (command, n) in ["rereg", "dereghome", "deregforeign", "scan"]
        .into_iter()
        .zip(counts.md_info)
    {
        v.push(
            Sample::counter("babymdd_md_info", "MD_INFO sent to mrd, by command.", n)
                .label("command", command),
        );
    }
    v.push(Sample::counter(
        "babymdd_router_solicitations",
        "Router Solicitations sent on link up.",
        counts.rs_sent,
    ));
    v.push(Sample::counter(
        "babymdd_router_solicitations_failed",
        "Router Solicitations that could not be sent.",
        counts.rs_failed,
    ));
    v
}

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Opening or using the bus.
    #[error("mipsock bus {dir}: {source}")]
    Bus {
        /// The bus directory.
        dir: PathBuf,
        /// The bus error.
        #[source]
        source: mipsock::Error,
    },
    /// rtnetlink.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// The netlink event stream ended (socket overflow or error): we would run blind, so
    /// we stop and let the supervisor restart us; the restart re-dumps.
    #[error("netlink event stream closed")]
    NetlinkClosed,
    /// The raw ICMPv6 socket for Router Solicitations (needs CAP_NET_RAW).
    #[error("router solicitation socket: {0}")]
    RsSocket(#[source] std::io::Error),
    /// Installing signal handlers.
    #[error("signal handler: {0}")]
    Signal(#[source] std::io::Error),
    /// Binding the metrics listener (`--metrics`).
    #[error("metrics listener: {0}")]
    Metrics(#[source] std::io::Error),
}

/// Reads the configuration again (SIGHUP); the error says what is wrong with it.
pub type Reload = Box<dyn FnMut() -> Result<RunConfig, String>>;

/// Runs babymdd until SIGTERM or SIGINT. Must be called inside a tokio runtime with IO
/// and time enabled. `reload` is called on SIGHUP: a bad configuration is reported and the
/// running one kept; a changed one takes effect at the next start (the detector's view of
/// the links is built from the start's dump).
pub async fn run(cfg: RunConfig, mut reload: Option<Reload>) -> Result<(), RunError> {
    let bus_err = |source| RunError::Bus {
        dir: cfg.bus_dir.clone(),
        source,
    };
    let ep = AsyncEndpoint::open(&cfg.bus_dir, ENDPOINT_NAME, EndpointOptions::default())
        .map_err(bus_err)?;
    let rs = RsSender::open().map_err(RunError::RsSocket)?;
    let mut signals = nemo_daemon::Signals::install().map_err(RunError::Signal)?;

    // Subscribe, dump, then the events queued meanwhile, decided as one batch.
    let (mut watcher, dump) = Watcher::start().await?;
    let mut det = Detector::new(cfg.detector.clone());
    // The DHCP requests get their own rtnetlink socket: the kernel stamps the NEWADDR
    // notification of an address we add with our request's port and sequence number, so
    // on the watcher's socket netlink-proto would take it for part of the reply and the
    // detector would never see the address.
    let mut dhcp = match cfg.dhcp_route_metric {
        // Watching every interface (no list) would include the mobile network's own
        // links: a DHCP client there would install a default route out of an ingress.
        Some(_) if cfg.detector.interfaces.is_empty() => {
            warn!("--dhcp needs the egress interfaces named: DHCP disabled");
            None
        }
        Some(metric) => {
            let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
            tokio::spawn(conn);
            Some(Dhcp::new(handle, metric))
        }
        None => None,
    };
    let mut counts = Counts::default();
    let now = Instant::now();
    let first: Vec<Observation> = dump.into_iter().chain(watcher.queued()).collect();
    for o in &first {
        det.observe(now, o.clone());
    }
    det.decide(now);
    flush(&mut det, &ep, &rs, &mut counts);
    // DHCP starts with the IPv6 side (the RS above), not after it.
    dhcp_links(&mut dhcp, &det, &first, now).await;
    info!(
        bus = %cfg.bus_dir.display(),
        interfaces = ?cfg.detector.interfaces.iter().map(|w| (&w.name, w.preference)).collect::<Vec<_>>(),
        hoa = ?det.home_address(),
        selection = ?det.selection(),
        "babymdd ready"
    );
    let metrics = match cfg.metrics {
        Some(addr) => Some(
            nemo_daemon::metrics::start(addr, metric_samples(&det, &counts))
                .await
                .map_err(RunError::Metrics)?,
        ),
        None => None,
    };
    nemo_daemon::notify::ready();

    loop {
        let deadline = [
            det.poll_timeout(),
            dhcp.as_ref().and_then(Dhcp::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            batch = watcher.next_batch() => {
                let batch = batch.ok_or(RunError::NetlinkClosed)?;
                let now = Instant::now();
                for o in &batch {
                    det.observe(now, o.clone());
                }
                det.decide(now);
                // The detector's RS first (flushed here), then DHCP: both start at link up.
                flush(&mut det, &ep, &rs, &mut counts);
                dhcp_links(&mut dhcp, &det, &batch, now).await;
            }
            (ifindex, packet) = dhcp_recv(&mut dhcp) => {
                if let Some(d) = dhcp.as_mut() {
                    d.handle_packet(Instant::now(), ifindex, &packet);
                }
            }
            msg = ep.recv() => match msg {
                Ok(msg) => on_bus_message(&mut det, &ep, &rs, msg),
                Err(e) => {
                    warn!(error = %e, "bus receive failed");
                    // Do not spin if the error persists; netlink still gets served.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            },
            s = signals.recv() => match s {
                Signal::Reload => {
                    if let Some(reload) = reload.as_mut() {
                        match reload() {
                            Err(e) => error!("configuration not reloaded, the running one stays: {e}"),
                            Ok(new) if new == cfg => info!("configuration unchanged"),
                            Ok(_) => warn!("configuration changed: takes effect at the next start"),
                        }
                    }
                    info!(selection = ?det.selection(), "SIGHUP: re-sending the current state");
                    det.resend();
                }
                Signal::DumpState => {
                    info!(hoa = ?det.home_address(), selection = ?det.selection(),
                        current = ?det.current_coa(), dhcp = dhcp.is_some(), "SIGUSR1: state");
                }
                Signal::Stop(_) => {
                    info!("{s}: exiting");
                    nemo_daemon::notify::stopping();
                    return Ok(());
                }
            },
            _ = sleep_until(deadline), if deadline.is_some() => {
                let now = Instant::now();
                det.handle_timeout(now);
                if let Some(d) = dhcp.as_mut() {
                    d.handle_timeout(now);
                }
            }
        }
        flush(&mut det, &ep, &rs, &mut counts);
        if let Some(d) = dhcp.as_mut() {
            d.flush().await;
        }
        if let Some(m) = &metrics {
            m.set(metric_samples(&det, &counts));
        }
    }
}

/// Starts a DHCP client on each watched link that came up, stops it on each that went
/// down or away (its address and route are removed). Leases survive SIGTERM: the kernel
/// expires the address with the lease.
async fn dhcp_links(dhcp: &mut Option<Dhcp>, det: &Detector, batch: &[Observation], now: Instant) {
    let Some(d) = dhcp.as_mut() else {
        return;
    };
    for o in batch {
        match o {
            Observation::Link(l) => {
                let watched = det.is_watched(&l.name, l.loopback);
                if l.up && watched && !d.running(l.ifindex) {
                    let pref = det.preference(l.ifindex, &l.name);
                    d.link_up(now, l.ifindex, &l.name, pref).await;
                } else if (!l.up || !watched) && d.running(l.ifindex) {
                    d.link_down(l.ifindex).await;
                }
            }
            Observation::LinkRemoved { ifindex } => d.link_down(*ifindex).await,
            _ => {}
        }
    }
    d.flush().await;
}

async fn dhcp_recv(dhcp: &mut Option<Dhcp>) -> (u32, Vec<u8>) {
    match dhcp {
        Some(d) => d.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await;
    }
}

fn on_bus_message(det: &mut Detector, ep: &AsyncEndpoint, rs: &RsSender, msg: Message) {
    match &msg.body {
        Body::StateRequest => {
            let item = StateItem::CurrentCoa(det.current_coa());
            debug!(?item, "answering a state request");
            if let Err(e) = ep.reply_state(&msg, vec![item], 0) {
                warn!(error = %e, "state reply failed");
            }
            // The current care-of address cannot carry the uplinks: a restarted mrd that
            // registers several gets them in the MD_INFO repeated after the answer.
            if det.config().multiple_coa {
                det.resend();
            }
        }
        // SHISA: whoever asks for a scan gets an RS on that interface.
        Body::MdInfo(md) if md.command == MdCommand::Scan && md.ifindex != 0 => {
            send_rs(rs, md.ifindex);
        }
        Body::HomeHint(h) => {
            info!(ifindex = h.ifindex, prefix = %h.prefix, "home hint");
            let now = Instant::now();
            det.handle(
                now,
                Observation::HomeHint {
                    ifindex: h.ifindex,
                    prefix: h.prefix,
                },
            );
        }
        _ => {}
    }
}

fn flush(det: &mut Detector, ep: &AsyncEndpoint, rs: &RsSender, counts: &mut Counts) {
    while let Some(out) = det.poll_output() {
        match out {
            Output::MdInfo(md) => {
                counts.md_info[match md.command {
                    MdCommand::Rereg => 0,
                    MdCommand::Dereghome => 1,
                    MdCommand::Deregforeign => 2,
                    MdCommand::Scan => 3,
                }] += 1;
                info!(command = ?md.command, hoa = %show(md.hoa), coa = %show(md.coa),
                    coa2 = %show(md.coa2), ifindex = md.ifindex, "MD_INFO sent");
                if let Err(e) = ep.send(&Message::new(Body::MdInfo(md))) {
                    warn!(error = %e, "MD_INFO send failed");
                }
            }
            Output::SendRouterSolicitation { ifindex } => {
                if send_rs(rs, ifindex) {
                    counts.rs_sent += 1;
                } else {
                    counts.rs_failed += 1;
                }
            }
        }
    }
}

/// `-` for none, so log lines read `coa=2001:db8:a::5`, not `coa=Some(..)`.
fn show<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Sends a Router Solicitation; whether it left.
fn send_rs(rs: &RsSender, ifindex: u32) -> bool {
    match rs.send(ifindex) {
        Ok(()) => {
            debug!(ifindex, "router solicitation sent");
            true
        }
        Err(e) => {
            warn!(ifindex, error = %e, "router solicitation failed");
            false
        }
    }
}
