//! The `nemo-lab` command line: subcommands, their options, and the hidden helpers the lab
//! runs inside its namespaces.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::{apps, chaos, demo, net, soak, topo};
use clap::{Parser, Subcommand};

/// nemo-lab: a dual-stack mobile network in network namespaces with the real daemons
/// (had, mrd, babymdd, nemonetd), Shima's demonstration and the DSMIPv6 handover
/// experiment. Needs root.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Directory of had, mrd, babymdd, nemonetd and mipsock (default: next to nemo-lab).
    #[arg(long, global = true)]
    bin_dir: Option<PathBuf>,
    /// The etc/ directory with the configuration samples (default: the workspace's).
    #[arg(long, global = true)]
    etc: Option<PathBuf>,
    /// Work directory for configs, buses and logs (default: /tmp/nemo-lab-<pid>).
    #[arg(long, global = true)]
    work: Option<PathBuf>,
    /// DHCP on the NAT network with busybox udhcpc instead of babymdd's own client.
    #[arg(long, global = true)]
    udhcpc: bool,
    /// Keep the work directory after a successful run (it is always kept after a failure).
    #[arg(long, global = true)]
    keep: bool,
    /// Where `up` keeps the running lab's state for the commands after it.
    #[arg(long, global = true, default_value = crate::up::STATE_DIR)]
    state: PathBuf,
    /// Put the link emulator on the MR's uplinks with this profile (ideal, lte, wifi, sat;
    /// this kernel has no netem). Without it the uplinks are plain veths.
    #[arg(long, global = true, value_parser = clap::builder::PossibleValuesParser::new(["ideal", "lte", "wifi", "sat"]))]
    link: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Shima's demonstration: IPv4-only and dual-stack hosts behind the MR on an IPv6-only
    /// network ping, browse and keep interactive sessions over IPv4 and IPv6; then
    /// handovers with the sessions kept. Exits 1 if a check failed.
    Demo {
        /// Write the summary as JSON here too.
        #[arg(long)]
        summary_json: Option<PathBuf>,
        /// Only the summary.
        #[arg(long)]
        quiet: bool,
    },
    /// Chaos: under the flow of the handover experiment, kill -9 each daemon in turn
    /// (nemonetd, mrd and babymdd on the MR; nemonetd and had on the HA) and start it
    /// again with its rc.d script. Per daemon: the flow's gap, packets lost, packets that
    /// left the MR untunnelled, kernel state left stale, bindings kept. Writes
    /// report.json into --out; exits 1 if anything left untunnelled or went stale.
    Chaos {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Soak: many handovers in a row (eth0 between the IPv6-only networks A and A2),
    /// sampling every daemon's open file descriptors and resident memory. Writes
    /// report.json (samples, slopes per 1,000 handovers) into --out.
    Soak {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Handovers to do.
        #[arg(long, default_value_t = 1000)]
        handovers: u32,
        /// Sample every this many handovers.
        #[arg(long, default_value_t = 50)]
        every: u32,
    },
    /// The DSMIPv6 paper's experiment: a UDP flow (250 octets every 5 ms) MNN -> CN while
    /// the MR moves (IPv6 -> IPv6 on one interface; vertical with two). Writes
    /// report.json and handovers.svg into --out.
    Handover {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Rounds of each kind of handover.
        #[arg(long, default_value_t = 3)]
        repeat: u32,
        /// Also the IPv4-only network behind the NAT: vertical and single-interface
        /// handovers between the families (a preview: needs DSMIPv6, issue 7).
        #[arg(long)]
        nat: bool,
    },
    /// Every uplink at once (RFC 5648, issue 15): both of the MR's uplinks registered with
    /// one binding identifier each, through the link emulator (lte unless --link says
    /// otherwise). Measures TCP throughput with one and with both uplinks, then a voice-like
    /// flow duplicated over both and unmarked flows while eth0's link goes silent (carrier
    /// up): the voice flow's losses, the moved flows' gap. Writes report.json and
    /// multipath.svg into --out; exits 1 when a goal is missed (1.8x, 0 lost, 150 ms).
    Multipath {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// TCP streams (iperf3 -P): enough that one uplink is full.
        #[arg(long, default_value_t = 16)]
        streams: u32,
        /// Seconds of each TCP measurement.
        #[arg(long, default_value_t = 10)]
        secs: u32,
        /// Seconds eth0's link stays silent.
        #[arg(long, default_value_t = 3)]
        silent: u32,
    },
    /// Home agent fail-over (issue 13): two or three home agent members on the home link
    /// (had + nemonetd -h each) elected through a 3-member etcd cluster there, the MR
    /// registered, flows each way between the MNN and the CN. Per run the active member's
    /// host dies (daemons killed with -9, its link down): the flows' longest gap and losses,
    /// the bindings on the new active member against before; the dead member comes back as
    /// a standby. Then the etcd leader is killed mid-flow. Writes report.json and
    /// failover.svg into --out; exits 1 when the goal is missed (median gap under 1 s, no
    /// binding lost).
    Failover {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Host deaths.
        #[arg(long, default_value_t = 10)]
        runs: u32,
        /// Packets per second of each flow (paced in whole milliseconds).
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// Home agent members (2 or 3).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
        members: u8,
    },
    /// A link emulator (this kernel has no netem): bridges interfaces A and B, delaying,
    /// jittering, dropping and rate-limiting frames each way as PROFILE says: ideal, lte
    /// (RTT 40-60 ms, 1 % loss each way, 30 Mbit/s), wifi, sat (RTT about 600 ms), down.
    /// With --control FILE the profile is the name in FILE, re-read when it changes.
    /// Neither interface should be in a bridge or have addresses. Stops on SIGTERM/SIGINT
    /// and prints the counters.
    LinkEmu {
        /// One side.
        #[arg(long)]
        a: String,
        /// The other side.
        #[arg(long)]
        b: String,
        /// The profile at start.
        #[arg(long, default_value = "ideal", value_parser = clap::builder::PossibleValuesParser::new(crate::linkemu::Profile::NAMES))]
        profile: String,
        /// A file holding a profile name, followed while running.
        #[arg(long)]
        control: Option<PathBuf>,
        /// Seed of the losses and jitter (a run can be repeated).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Builds the lab, starts the daemons, registers the MR from network A, prints how to
    /// reach each node and leaves it all running (`ip netns exec`, `mipsock tap`). With
    /// --link PROFILE the uplinks go through the link emulator.
    Up,
    /// Moves an uplink of the MR (eth0, eth1) to another network: a, a2 (IPv6-only), b
    /// (dual stack), nat (IPv4-only behind a NAT), home.
    Move {
        /// eth0 or eth1.
        iface: String,
        /// a, a2, b, nat or home.
        network: String,
    },
    /// Plugs an uplink of the MR in (carrier on).
    Plug {
        /// eth0 or eth1.
        iface: String,
    },
    /// Unplugs an uplink of the MR (carrier off).
    Unplug {
        /// eth0 or eth1.
        iface: String,
    },
    /// Sets the link emulator's profile on an uplink (the lab must be up with --link).
    Link {
        /// eth0 or eth1.
        iface: String,
        /// ideal, lte, wifi, sat or down.
        profile: String,
    },
    /// Stops and removes the lab `up` left running (the work directory too, unless --keep).
    Down,
    /// (inside the lab) line echo server.
    #[command(hide = true)]
    ServeEcho {
        #[arg(long)]
        port: u16,
    },
    /// (inside the lab) web server.
    #[command(hide = true)]
    ServeHttp {
        #[arg(long)]
        port: u16,
    },
    /// (inside the lab) web client.
    #[command(hide = true)]
    HttpGet {
        #[arg(long)]
        to: SocketAddr,
    },
    /// (inside the lab) interactive session client.
    #[command(hide = true)]
    EchoClient {
        #[arg(long)]
        to: SocketAddr,
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        #[arg(long)]
        stop_file: PathBuf,
    },
    /// (inside the lab) UDP flow sender.
    #[command(hide = true)]
    UdpSend {
        #[arg(long)]
        to: SocketAddr,
        #[arg(long, default_value_t = 5)]
        interval_ms: u64,
        #[arg(long, default_value_t = 250)]
        size: usize,
        #[arg(long)]
        stop_file: PathBuf,
    },
    /// (inside the lab) UDP flow receiver.
    #[command(hide = true)]
    UdpRecv {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        stop_file: PathBuf,
    },
}

fn options(cli: &Cli) -> Result<topo::Options, String> {
    let self_exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let bin_dir = cli
        .bin_dir
        .clone()
        .or_else(|| self_exe.parent().map(PathBuf::from))
        .ok_or("no binary directory")?;
    for b in ["had", "mrd", "babymdd", "nemonetd", "mipsock"] {
        if !bin_dir.join(b).exists() {
            return Err(format!(
                "{} missing: build the workspace first (cargo build --workspace), or give --bin-dir",
                bin_dir.join(b).display()
            ));
        }
    }
    let etc = cli
        .etc
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../etc"));
    let work = cli.work.clone().unwrap_or_else(demo::default_work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    Ok(topo::Options {
        bin_dir,
        self_exe,
        work,
        etc,
        verbose: true,
        udhcpc: cli.udhcpc,
        link: cli.link.clone(),
        mcoa: false,
        ha_members: 0,
    })
}

/// Parses the command line and runs the chosen subcommand; the exit code says how it went.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let helper = |r: std::io::Result<()>| match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nemo-lab: {e}");
            ExitCode::FAILURE
        }
    };
    match &cli.cmd {
        Cmd::LinkEmu {
            a,
            b,
            profile,
            control,
            seed,
        } => {
            let p = crate::linkemu::Profile::named(profile).expect("checked by clap");
            return match crate::linkemu::run(a, b, p, control.as_deref(), *seed) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("nemo-lab link-emu: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Cmd::ServeEcho { port } => return helper(apps::serve_echo(*port)),
        Cmd::ServeHttp { port } => return helper(apps::serve_http(*port)),
        Cmd::HttpGet { to } => {
            return match apps::http_get(*to) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("nemo-lab: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Cmd::EchoClient {
            to,
            interval_ms,
            stop_file,
        } => {
            return helper(apps::echo_client(
                *to,
                Duration::from_millis(*interval_ms),
                stop_file,
            ));
        }
        Cmd::UdpSend {
            to,
            interval_ms,
            size,
            stop_file,
        } => {
            return helper(apps::udp_send(
                *to,
                Duration::from_millis(*interval_ms),
                *size,
                stop_file,
            ));
        }
        Cmd::UdpRecv {
            port,
            log,
            stop_file,
        } => return helper(apps::udp_recv(*port, log, stop_file)),
        Cmd::Demo { .. }
        | Cmd::Handover { .. }
        | Cmd::Multipath { .. }
        | Cmd::Failover { .. }
        | Cmd::Chaos { .. }
        | Cmd::Soak { .. }
        | Cmd::Up
        | Cmd::Move { .. }
        | Cmd::Plug { .. }
        | Cmd::Unplug { .. }
        | Cmd::Link { .. }
        | Cmd::Down => {}
    }
    if !net::is_root() {
        eprintln!(
            "nemo-lab: needs root: it builds network namespaces, veth links and runs the daemons in them (try: sudo {})",
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        return ExitCode::from(77);
    }
    net::install_signal_handlers();
    let opts = match options(&cli) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("nemo-lab: {e}");
            return ExitCode::FAILURE;
        }
    };
    let work = opts.work.clone();
    let keep = cli.keep;
    let cleanup = || {
        if !keep {
            let _ = std::fs::remove_dir_all(&work);
        }
    };
    // The commands on a lab that is up use its own work directory.
    let on_running = |r: net::Result<()>| {
        let _ = std::fs::remove_dir(&work);
        match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nemo-lab: {e}");
                ExitCode::FAILURE
            }
        }
    };
    let state = cli.state.clone();
    match cli.cmd {
        Cmd::Up => {
            return match crate::up::up(opts, &state) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("nemo-lab up: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Cmd::Move { iface, network } => {
            return on_running(crate::up::move_to(opts, &state, &iface, &network));
        }
        Cmd::Plug { iface } => return on_running(crate::up::plug(opts, &state, &iface, true)),
        Cmd::Unplug { iface } => return on_running(crate::up::plug(opts, &state, &iface, false)),
        Cmd::Link { iface, profile } => {
            return on_running(crate::up::link(opts, &state, &iface, &profile));
        }
        Cmd::Down => return on_running(crate::up::down(opts, &state, keep)),
        _ => {}
    }
    match cli.cmd {
        Cmd::Demo {
            summary_json,
            quiet,
        } => match demo::demo(opts, quiet) {
            Ok(s) => {
                demo::print_summary(&s);
                if let Some(p) = summary_json {
                    let _ =
                        std::fs::write(&p, serde_json::to_string_pretty(&s).unwrap_or_default());
                }
                if s.ok() {
                    cleanup();
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("nemo-lab: demo failed: {e}; logs in {}", work.display());
                ExitCode::FAILURE
            }
        },
        Cmd::Handover { out, repeat, nat } => {
            match demo::handover_experiment(opts, &out, repeat, nat) {
                Ok(_) => {
                    cleanup();
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!(
                        "nemo-lab: handover experiment failed: {e}; logs in {}",
                        work.display()
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Multipath {
            out,
            streams,
            secs,
            silent,
        } => match crate::multipath::multipath_experiment(opts, &out, streams, secs, silent) {
            Ok(r) => {
                cleanup();
                let voice_ok = r.flows.iter().filter(|f| f.duplicated).all(|f| f.lost == 0);
                let gap_ok = r.moved_flow_gap_ms.is_none_or(|g| g < 150.0);
                if r.tcp_ratio >= 1.8 && voice_ok && gap_ok {
                    ExitCode::SUCCESS
                } else {
                    eprintln!(
                        "nemo-lab multipath: a goal missed (TCP {:.2}x of 1.8x, duplicated flow lost nothing: {voice_ok}, moved flows' gap under 150 ms: {gap_ok}); see {}",
                        r.tcp_ratio,
                        out.join("report.json").display()
                    );
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!(
                    "nemo-lab: multipath experiment failed: {e}; logs in {}",
                    work.display()
                );
                ExitCode::FAILURE
            }
        },
        Cmd::Failover {
            out,
            runs,
            rate,
            members,
        } => {
            match crate::failover::failover_experiment(opts, &out, runs, rate, usize::from(members))
            {
                Ok(r) => {
                    cleanup();
                    if r.goal_met() {
                        ExitCode::SUCCESS
                    } else {
                        eprintln!(
                            "nemo-lab failover: the goal missed (median gap {:.0} ms of under {:.0}, no binding lost: {}); see {}",
                            r.median_gap_ms,
                            crate::failover::GOAL_GAP_MS,
                            r.no_binding_lost,
                            out.join("report.json").display()
                        );
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!(
                        "nemo-lab: failover experiment failed: {e}; logs in {}",
                        work.display()
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Soak {
            out,
            handovers,
            every,
        } => match soak::soak(opts, &out, handovers, every.max(1)) {
            Ok(_) => {
                cleanup();
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "nemo-lab: soak experiment failed: {e}; logs in {}",
                    work.display()
                );
                ExitCode::FAILURE
            }
        },
        Cmd::Chaos { out } => match chaos::chaos(opts, &out) {
            Ok(outcomes) => {
                let clean = outcomes
                    .iter()
                    .all(|o| o.untunnelled == 0 && o.stale.is_empty() && o.binding_kept);
                if clean {
                    cleanup();
                    ExitCode::SUCCESS
                } else {
                    eprintln!(
                        "nemo-lab: chaos: a daemon's crash leaked, left stale state or lost a binding; logs in {}",
                        work.display()
                    );
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!(
                    "nemo-lab: chaos experiment failed: {e}; logs in {}",
                    work.display()
                );
                ExitCode::FAILURE
            }
        },
        _ => ExitCode::SUCCESS,
    }
}
