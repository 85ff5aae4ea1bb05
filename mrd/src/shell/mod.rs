//! The I/O shell of the mobile router: command line (SHISA's), configuration, the raw
//! sockets and nftables guard of `mhio`, the mipsock bus, signals. The protocol is all in
//! [`crate::core`].
//!
//! Design choices:
//! * **Never daemonizes.** `-f` is accepted for SHISA compatibility; systemd units and rc
//!   scripts run mrd in the foreground.
//! * **One receiver on every interface**: care-of addresses come and go with the egress
//!   interfaces; a BA is ours when its type 2 routing header (away) or its destination (at
//!   home) is our home address.
//! * **The home address is not configured by mrd**: SHISA's mrd expects it on the mobile
//!   interface (`ifname`); mrd warns at start when it is missing (signalling works without
//!   it, the data plane does not).
//! * **On start** mrd asks the bus for the movement detector's current care-of address
//!   (`StateRequest`, babymdd answers `CurrentCoa`), so a restarted mrd registers again
//!   without waiting for the next movement.
//! * **SIGTERM/SIGINT deregister**: a router going down takes its prefixes with it rather
//!   than leave the HA attracting their traffic until the lifetime ends. mrd waits at most
//!   [`SHUTDOWN_GRACE`] for the deregistration BA (a second signal exits at once), then
//!   removes its guard table.
//! * **SIGHUP** re-reads the configuration; a bad one is reported and the running one kept.
//!   A changed one replaces the core and re-registers from the current care-of address.
//! * **SIGUSR1** logs the registration state. Signals, exit codes, readiness (`READY=1` to
//!   `$NOTIFY_SOCKET` once the sockets and the bus are up) and `--check` are the shared
//!   daemon shell's (`nemo_daemon`), the same in every daemon.

mod daemon;
mod setup;

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use nemo_daemon::Exit;
pub use nemo_daemon::{Logging, init_logging};
use thiserror::Error;

pub use setup::{core_config, interface_addresses, random_sequence};

/// How long a stopping mrd waits for the BA of its deregistration.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// mrd: the NEMO mobile router (RFC 3963 on Mobile IPv6, RFC 6275), registering its IPv6
/// and IPv4 mobile network prefixes (RFC 5555, Shima) with its home agent, RFC 4285
/// authentication. A drop-in for KAME SHISA's mrd.
///
/// On each MD_INFO from the movement detector (babymdd, or `mipsock inject md-info`) mrd
/// registers the new care-of address with its home agent, refreshes the binding, and
/// announces BUL_ADD / BUL_REMOVE on the mipsock bus. `mipsock state` shows the binding
/// update list.
#[derive(Debug, Clone, Parser)]
#[command(name = "mrd", version)]
pub struct Cli {
    /// Debug logs (SHISA's -d; the config's `debug N;` does the same). RUST_LOG, if set,
    /// overrides both.
    #[arg(short = 'd')]
    pub debug: bool,
    /// Stay in the foreground. Accepted for SHISA compatibility: mrd never daemonizes
    /// itself; systemd units and rc scripts run it in the foreground.
    #[arg(short = 'f')]
    pub foreground: bool,
    /// Never look up names (SHISA's -n). Accepted: mrd logs numeric addresses only.
    #[arg(short = 'n')]
    pub numeric: bool,
    /// Configuration file (SHISA's grammar, see conf/README.md).
    #[arg(short = 'c', value_name = "FILE", default_value = "/etc/nemo/mrd.conf")]
    pub config: PathBuf,
    /// Home agent address (SHISA's -a), when the configuration has no
    /// `home-agent-address`; overrides it otherwise. With neither, the home agent is found
    /// by dynamic home agent address discovery (RFC 6275 §11.4.1) from the care-of address.
    #[arg(short = 'a', value_name = "HA-ADDRESS")]
    pub home_agent: Option<Ipv6Addr>,
    /// mipsock bus directory [default: $MIPSOCK_DIR, else /run/mipsock/default].
    #[arg(short = 'b', long = "bus-dir", value_name = "DIR", env = "MIPSOCK_DIR")]
    pub bus_dir: Option<PathBuf>,
    /// Check the configuration (and the auth-database it names) as mrd would load it for
    /// IFNAME, print warnings and a summary, and exit: 0 when it would start, 78 when not.
    /// Touches nothing (no sockets, no bus), needs no privileges; like `nginx -t`.
    #[arg(long)]
    pub check: bool,
    /// Serve the counters in the OpenMetrics text format on http://ADDRESS:PORT/metrics
    /// (e.g. `[::1]:9462`): registration state, BUs sent and retransmitted, refusals, moves
    /// and how long the last registration took. Off without it.
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// The mobile interface (SHISA's mip0): selects the `interface NAME { ... };` block of
    /// the configuration; the home address is expected on it.
    pub ifname: String,
    /// Started as `mnd` (SHISA's mobile host daemon): the node is a mobile host whatever
    /// the configuration's `mobile-node-mode` default.
    #[arg(skip)]
    pub mnd: bool,
}

/// `mnd`'s default configuration file (SHISA's mnd read its own file beside mrd's).
pub const MND_CONFIG: &str = "/etc/nemo/mnd.conf";

/// `mnd`'s command definition: mrd's, named mnd, its configuration in [`MND_CONFIG`]
/// unless `-c` says otherwise (also what its man page and completions are made from).
pub fn mnd_command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
        .name("mnd")
        .bin_name("mnd")
        .about(
            "mnd: a Mobile IPv6 mobile host (RFC 6275; SHISA's mnd): registers its home \
             address alone, no R flag, no prefixes. mrd's options; its configuration \
             defaults to /etc/nemo/mnd.conf.",
        )
        .mut_arg("config", |a| a.default_value(MND_CONFIG))
}

/// `mnd`'s command line, parsed.
pub fn mnd_cli() -> Cli {
    use clap::FromArgMatches;
    let matches = mnd_command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.mnd = true;
    cli
}

/// Why mrd stopped.
#[derive(Debug, Error)]
pub enum ShellError {
    /// The configuration file (or a file it names) is wrong.
    #[error("{0}")]
    Config(#[from] conf::ConfError),
    /// The configuration parsed but the core refuses it.
    #[error("configuration: {0}")]
    Core(#[from] crate::ConfigError),
    /// Sockets, guard.
    #[error("{0}")]
    Io(#[from] mhio::Error),
    /// The mipsock bus.
    #[error("mipsock bus {dir}: {source}")]
    Bus {
        /// Bus directory.
        dir: PathBuf,
        /// Error.
        source: mipsock::Error,
    },
    /// Runtime, signals.
    #[error("{what}: {source}")]
    Os {
        /// What failed.
        what: &'static str,
        /// Error.
        source: std::io::Error,
    },
}

impl nemo_daemon::Failure for ShellError {
    /// 78 (EX_CONFIG) for configuration errors, 1 otherwise.
    fn exit(&self) -> Exit {
        match self {
            ShellError::Config(_) | ShellError::Core(_) => Exit::Config,
            _ => Exit::Failure,
        }
    }
}

impl ShellError {
    /// Process exit status (see [`nemo_daemon::Exit`]).
    pub fn exit_code(&self) -> ExitCode {
        nemo_daemon::Failure::exit(self).into()
    }
}

/// Runs mrd until SIGTERM/SIGINT.
///
/// # Errors
/// Configuration, sockets or bus failures at start.
pub fn run(cli: Cli, logging: Logging) -> Result<(), ShellError> {
    if cli.check {
        let summary = daemon::check(&cli)?;
        nemo_daemon::check::ok(Some(&cli.config), &cli.ifname, &summary);
        return Ok(());
    }
    nemo_daemon::block_on(daemon::run(cli, logging)).map_err(|source| ShellError::Os {
        what: "starting the tokio runtime",
        source,
    })?
}
