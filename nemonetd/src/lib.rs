//! # nemonetd — tunnels, routes and the user-space data plane of NEMO
//!
//! SHISA's `nemonetd` for Linux: on a mobile router (`-m`) it follows mrd's Binding Update
//! List, on a home agent (`-h`) had's Binding Cache (mipsock BUL_ADD/REMOVE, BC_ADD/REMOVE)
//! and installs, for every binding:
//!
//! * the **data plane** ([`dataplane`]): one TUN device for all bindings, IPv4 and IPv6
//!   packets of the mobile network tunnelled in IPv6 (next header 4/41, RFC 2473), in IPv4
//!   (RFC 5555 IP-in-IPv4) or in UDP/IPv4, with the HA's and MR's ingress checks;
//! * the **routes** ([`routes`]) through rtnetlink ([`netops`]), all with route protocol
//!   [`netops::RTPROT_NEMO`]: policy routing from the MNPs into the tunnel on the MR, MNP
//!   and HoA routes into the tunnel on the HA.
//!
//! Start order does not matter (a state request at start), and neither do crashes (our
//! routes and rules are recognised by protocol number and flushed at the next start).

pub mod bpf;
pub mod config;
pub mod daemon;
pub mod dataplane;
#[doc(hidden)]
pub mod fuzzing;
pub mod gso;
pub mod kernel;
pub mod netops;
pub mod routes;
pub mod tun;

use std::process::ExitCode;
use std::time::Duration;

pub use daemon::DaemonError;
use nemo_daemon::Exit;

/// Why nemonetd stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration file, or a value of the command line, is wrong: nothing was set up.
    #[error("{0}")]
    Config(String),
    /// Detaching or the runtime failed.
    #[error("{what}: {source}")]
    Os {
        /// What failed.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The daemon failed (devices, netlink, bus).
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

impl nemo_daemon::Failure for RunError {
    /// 78 (EX_CONFIG, sysexits(3)) for configuration and command-line errors, as every
    /// daemon; 1 otherwise. (clap's own usage errors exit 2 before this.)
    fn exit(&self) -> Exit {
        match self {
            RunError::Config(_) => Exit::Config,
            _ => Exit::Failure,
        }
    }
}

impl RunError {
    /// Process exit status (see [`nemo_daemon::Exit`]).
    pub fn exit_code(&self) -> ExitCode {
        nemo_daemon::Failure::exit(self).into()
    }
}

/// The settings the command line and its file (if any) give, validated, and the file's
/// warnings.
///
/// # Errors
/// [`RunError::Config`]: the file cannot be read or parsed, or a value is refused.
pub fn load(cli: &config::Cli) -> Result<(config::Settings, Vec<String>), RunError> {
    let (file, warnings) = match &cli.config {
        Some(path) => {
            // Bounded (1 MiB) and UTF-8 checked with a location, like had's and mrd's files.
            let text = conf::read_config_file(path).map_err(|e| RunError::Config(e.to_string()))?;
            config::FileSettings::parse(&text, &path.display().to_string())
                .map_err(RunError::Config)?
        }
        None => (config::FileSettings::default(), Vec::new()),
    };
    let settings = cli.settings(&file);
    settings.validate().map_err(RunError::Config)?;
    Ok((settings, warnings))
}

/// `nemonetd --check`: loads the settings as a start would; warnings on stderr, the
/// summary on stdout. Touches nothing.
fn check(cli: &config::Cli) -> Result<(), RunError> {
    let (s, warnings) = load(cli)?;
    for w in &warnings {
        nemo_daemon::check::warning(w);
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    let r = &s.routes;
    let mode = match r.mode {
        routes::Mode::MobileRouter => format!(
            "mobile router, table {}, rule priorities {}-{}, IPv4 own traffic {}",
            r.table,
            r.rule_priorities().start(),
            r.rule_priorities().end(),
            yes(r.ipv4_own_traffic)
        ),
        routes::Mode::HomeAgent => format!("home agent, table {}", r.table),
    };
    let dataplane = match s.dataplane {
        kernel::Choice::Auto => "auto",
        kernel::Choice::Kernel => "kernel",
        kernel::Choice::Tun => "tun",
    };
    let encapsulation = match s.kernel_encapsulation {
        kernel::EncapChoice::Auto => "auto",
        kernel::EncapChoice::Bpf => "bpf",
        kernel::EncapChoice::Srv6 => "srv6",
    };
    // The outer table (KernelRoutes::outer_table) is the last of the kernel's four.
    let summary = format!(
        "{mode}, TUN {}, UDP port {}, hop limit {}, offload {}, data plane {dataplane} (kernel encapsulation {encapsulation}, tables {}-{}), path probes {}, {} warnings",
        r.tun,
        s.udp_port,
        s.hop_limit,
        yes(s.offload),
        s.kernel_table,
        s.kernel_table + 3,
        match s.path_probe_interval_ms {
            0 => "off".to_string(),
            ms => format!("every {ms} ms"),
        },
        warnings.len()
    );
    nemo_daemon::check::ok(cli.config.as_deref(), &cli.ifname, &summary);
    Ok(())
}

/// SIGHUP's part that concerns the file: read it again; a bad one is reported and the
/// running settings kept. Every setting needs new devices or rules, so a changed one takes
/// effect at the next start (the daemon then asks the owners for their state again).
fn reload(cli: &config::Cli, running: &config::Settings) {
    match load(cli) {
        Err(e) => tracing::error!("configuration not reloaded, the running one stays: {e}"),
        Ok((new, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            if new == *running {
                tracing::info!("configuration unchanged");
            } else {
                tracing::warn!("configuration changed: takes effect at the next start");
            }
        }
    }
}

/// Runs `nemonetd` as the command line says: reads the configuration, sets up logging,
/// detaches unless `-f`, and runs the daemon on a current-thread runtime. With `--check`,
/// only checks the configuration.
pub fn run(cli: config::Cli) -> Result<(), RunError> {
    if cli.check {
        return check(&cli);
    }
    let default_level = if cli.debug {
        "nemonetd=debug,info"
    } else {
        "info"
    };
    // Plain `key=value` in log files, so tests and scripts can grep the counters.
    let _logging = nemo_daemon::Logging::init(default_level);
    let (settings, warnings) = load(&cli)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    if !cli.foreground {
        // Before the runtime exists: forking a process with threads would lose them.
        // Keep stderr (nochdir, noclose): logs go wherever the caller sent them.
        nix::unistd::daemon(true, true).map_err(|e| RunError::Os {
            what: "detaching (daemon(3))",
            source: e.into(),
        })?;
    }
    let bus_dir = cli
        .bus_dir
        .clone()
        .unwrap_or_else(|| mipsock::bus_dir_from_env("default"));
    let timeout = Duration::from_millis(cli.state_timeout_ms);
    let on_hup = |running: &config::Settings| reload(&cli, running);
    nemo_daemon::block_on(daemon::run(settings, bus_dir, timeout, on_hup)).map_err(
        |source| RunError::Os {
            what: "starting the tokio runtime",
            source,
        },
    )??;
    Ok(())
}
