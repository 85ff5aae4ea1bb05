//! The I/O shell of the home agent: command line (SHISA's), configuration, the raw sockets
//! and the nftables guard of `mhio`, proxy ND, the journal, the mipsock bus, signals. The
//! protocol is all in [`crate::core`]; this module only moves bytes and time in and out.
//!
//! Design choices:
//! * **Never daemonizes.** `-f` is accepted for SHISA compatibility; systemd units and rc
//!   scripts run had in the foreground and collect its stderr.
//! * **Ordering**: every step drains the core's events, writes and `fdatasync`s the journal
//!   records, then announces on the bus and updates proxy ND, and only then sends the BAs.
//!   A BA never leaves for a binding a `kill -9` could lose. If the journal cannot be
//!   written, the BAs of that step are not sent (the MR retransmits) and an error is
//!   logged. Once a data plane (nemonetd) has spoken on the bus, the BA for a new, changed
//!   or removed binding also waits for its DATAPLANE_READY (at most 500 ms): no BA before the
//!   tunnel carries the binding, none for a removal while it still does.
//! * **Stopping** (SIGTERM/SIGINT) is not deregistration: bindings stay in the journal and
//!   are restored by the next start, which defends their home addresses again (with an
//!   unsolicited NA). had answers the home link's solicitations itself (no kernel proxy
//!   entries), so while it is stopped nobody does. Only the guard table is removed. A
//!   redundant member (`redundancy yes;`) that stops while active hands the leadership
//!   over first.
//! * **SIGHUP** re-reads the configuration; a bad one is reported and the running one kept.
//!   Bindings carry over (those the new configuration no longer serves are removed).
//!   The journal path, the home interface and the bus directory need a restart.
//! * **SIGUSR1** logs the binding cache. Signals, exit codes, readiness (`READY=1` to
//!   `$NOTIFY_SOCKET` once the sockets, the bus and the journal are up) and `--check` are
//!   the shared daemon shell's (`nemo_daemon`), the same in every daemon.

mod daemon;
pub mod etcd;
mod setup;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nemo_daemon::Exit;
pub use nemo_daemon::{Logging, init_logging};
use thiserror::Error;

pub use setup::{BRR_BEFORE_EXPIRY, core_config, interface_addresses, local_addresses};

/// had: the NEMO home agent (RFC 3963 on Mobile IPv6, RFC 6275), with IPv4 mobile network
/// prefixes (RFC 5555, Shima) and RFC 4285 authentication. A drop-in for KAME SHISA's had.
///
/// Mobile routers register their care-of address and their IPv6 and IPv4 mobile network
/// prefixes; had keeps the binding cache (journaled, so it survives restarts), defends the
/// registered home addresses on the home link and announces BC_ADD / BC_REMOVE on the
/// mipsock bus for the data plane. `mipsock state` shows the binding cache.
#[derive(Debug, Clone, Parser)]
#[command(name = "had", version)]
pub struct Cli {
    /// Debug logs (SHISA's -d; the config's `debug N;` does the same). RUST_LOG, if set,
    /// overrides both.
    #[arg(short = 'd')]
    pub debug: bool,
    /// Stay in the foreground. Accepted for SHISA compatibility: had never daemonizes
    /// itself; systemd units and rc scripts run it in the foreground.
    #[arg(short = 'f')]
    pub foreground: bool,
    /// Never look up names (SHISA's -n). Accepted: had logs numeric addresses only.
    #[arg(short = 'n')]
    pub numeric: bool,
    /// Configuration file (SHISA's grammar, see conf/README.md).
    #[arg(short = 'c', value_name = "FILE", default_value = "/etc/nemo/had.conf")]
    pub config: PathBuf,
    /// mipsock bus directory [default: $MIPSOCK_DIR, else /run/mipsock/default].
    #[arg(short = 'b', long = "bus-dir", value_name = "DIR", env = "MIPSOCK_DIR")]
    pub bus_dir: Option<PathBuf>,
    /// Check the configuration (and the auth-database and prefix table files it names)
    /// as had would load it for HOMEIF, print warnings and a summary, and exit: 0 when it
    /// would start, 78 when not. Touches nothing (no sockets, no journal, no bus), needs
    /// no privileges; like `nginx -t`.
    #[arg(long)]
    pub check: bool,
    /// Serve the counters in the OpenMetrics text format on http://ADDRESS:PORT/metrics
    /// (e.g. `[::1]:9461`): bindings, BUs by outcome, drops by reason, errors sent. Off
    /// without it; bind it to a local or management address.
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Keep the binding cache in etcd too (repeat for each endpoint, e.g.
    /// `--etcd http://192.0.2.10:2379`): every binding change is in etcd before its BA,
    /// and a had starting with the same home agent address restores the bindings from
    /// there (a standby taking over). Overrides the configuration's `binding-cache-etcd`.
    #[arg(long = "etcd", value_name = "URL")]
    pub etcd: Vec<String>,
    /// The home link interface. Registered home addresses are defended there (proxy ND);
    /// its global addresses give the home agent address and home prefixes when the
    /// configuration leaves them out (SHISA's way).
    pub homeif: String,
}

/// Why had stopped.
#[derive(Debug, Error)]
pub enum ShellError {
    /// The configuration file (or a file it names) is wrong.
    #[error("{0}")]
    Config(#[from] conf::ConfError),
    /// The configuration parsed but the core refuses it.
    #[error("configuration: {0}")]
    Core(#[from] crate::ConfigError),
    /// No home agent address / home prefix in the configuration nor on the interface.
    #[error("{0}")]
    NoHomeAddress(String),
    /// Sockets, guard, proxy ND.
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
    /// The binding cache journal.
    #[error("{0}")]
    Journal(#[from] crate::journal::JournalError),
    /// The binding cache in etcd.
    #[error("{0}")]
    Store(#[from] etcd::StoreError),
    /// Redundancy configured without what it needs.
    #[error("{0}")]
    Redundancy(String),
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
            ShellError::Config(_)
            | ShellError::Core(_)
            | ShellError::NoHomeAddress(_)
            | ShellError::Redundancy(_) => Exit::Config,
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

/// Runs had until SIGTERM/SIGINT.
///
/// # Errors
/// Configuration, sockets, bus or journal failures at start; journal failures later are
/// logged, not fatal.
pub fn run(cli: Cli, logging: Logging) -> Result<(), ShellError> {
    if cli.check {
        let summary = daemon::check(&cli)?;
        nemo_daemon::check::ok(Some(&cli.config), &cli.homeif, &summary);
        return Ok(());
    }
    nemo_daemon::block_on(daemon::run(cli, logging)).map_err(|source| ShellError::Os {
        what: "starting the tokio runtime",
        source,
    })?
}
