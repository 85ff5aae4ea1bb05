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

pub mod config;
pub mod daemon;
pub mod dataplane;
#[doc(hidden)]
pub mod fuzzing;
pub mod gso;
pub mod netops;
pub mod routes;
pub mod tun;

use std::process::ExitCode;
use std::time::Duration;

pub use daemon::DaemonError;

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

impl RunError {
    /// Process exit status: 78 (EX_CONFIG, sysexits(3)) for configuration and command-line
    /// errors, as had and mrd; 1 otherwise. (clap's own usage errors exit 2 before this.)
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RunError::Config(_) => ExitCode::from(78),
            _ => ExitCode::FAILURE,
        }
    }
}

/// Runs `nemonetd` as the command line says: reads the configuration, sets up logging,
/// detaches unless `-f`, and runs the daemon on a current-thread runtime.
pub fn run(cli: config::Cli) -> Result<(), RunError> {
    let default_level = if cli.debug {
        "nemonetd=debug,info"
    } else {
        "info"
    };
    // Plain `key=value` in log files, so tests and scripts can grep the counters.
    let _logging = mipsock::daemon::Logging::init(default_level);
    let file = match &cli.config {
        Some(path) => {
            // Bounded (1 MiB) and UTF-8 checked with a location, like had's and mrd's files.
            let text = conf::read_config_file(path).map_err(|e| RunError::Config(e.to_string()))?;
            let (f, warnings) = config::FileSettings::parse(&text, &path.display().to_string())
                .map_err(RunError::Config)?;
            for w in warnings {
                tracing::warn!("{w}");
            }
            f
        }
        None => config::FileSettings::default(),
    };
    let settings = cli.settings(&file);
    settings.validate().map_err(RunError::Config)?;
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| RunError::Os {
            what: "starting the tokio runtime",
            source,
        })?;
    rt.block_on(daemon::run(
        settings,
        bus_dir,
        Duration::from_millis(cli.state_timeout_ms),
    ))?;
    Ok(())
}
