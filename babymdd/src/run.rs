//! The daemon loop: netlink events, the bus, signals and the hold-down timer around the
//! [`Detector`].

use std::path::PathBuf;
use std::time::Instant;

use mipsock::{AsyncEndpoint, Body, EndpointOptions, MdCommand, Message, StateItem};
use nemo_daemon::Signal;
use tracing::{debug, error, info, warn};

use crate::detector::{Detector, DetectorConfig, Observation, Output};
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
    let now = Instant::now();
    let first: Vec<Observation> = dump.into_iter().chain(watcher.queued()).collect();
    for o in &first {
        det.observe(now, o.clone());
    }
    det.decide(now);
    flush(&mut det, &ep, &rs);
    // DHCP starts with the IPv6 side (the RS above), not after it.
    dhcp_links(&mut dhcp, &det, &first, now).await;
    info!(
        bus = %cfg.bus_dir.display(),
        interfaces = ?cfg.detector.interfaces.iter().map(|w| (&w.name, w.preference)).collect::<Vec<_>>(),
        hoa = ?det.home_address(),
        selection = ?det.selection(),
        "babymdd ready"
    );
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
                flush(&mut det, &ep, &rs);
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
        flush(&mut det, &ep, &rs);
        if let Some(d) = dhcp.as_mut() {
            d.flush().await;
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

fn flush(det: &mut Detector, ep: &AsyncEndpoint, rs: &RsSender) {
    while let Some(out) = det.poll_output() {
        match out {
            Output::MdInfo(md) => {
                info!(command = ?md.command, hoa = %show(md.hoa), coa = %show(md.coa),
                    coa2 = %show(md.coa2), ifindex = md.ifindex, "MD_INFO sent");
                if let Err(e) = ep.send(&Message::new(Body::MdInfo(md))) {
                    warn!(error = %e, "MD_INFO send failed");
                }
            }
            Output::SendRouterSolicitation { ifindex } => send_rs(rs, ifindex),
        }
    }
}

/// `-` for none, so log lines read `coa=2001:db8:a::5`, not `coa=Some(..)`.
fn show<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn send_rs(rs: &RsSender, ifindex: u32) {
    match rs.send(ifindex) {
        Ok(()) => debug!(ifindex, "router solicitation sent"),
        Err(e) => warn!(ifindex, error = %e, "router solicitation failed"),
    }
}
