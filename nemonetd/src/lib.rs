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
pub mod gso;
pub mod netops;
pub mod routes;
pub mod tun;

use std::time::Duration;

pub use daemon::DaemonError;

/// Runs `nemonetd` as the command line says: reads the configuration, sets up logging,
/// detaches unless `-f`, and runs the daemon on a current-thread runtime.
pub fn run(cli: config::Cli) -> Result<(), Box<dyn std::error::Error>> {
    let default_level = if cli.debug {
        "nemonetd=debug,info"
    } else {
        "info"
    };
    // Plain `key=value` in log files, so tests and scripts can grep the counters.
    let _logging = mipsock::daemon::Logging::init(default_level);
    let file = match &cli.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let (f, warnings) = config::FileSettings::parse(&text, &path.display().to_string())?;
            for w in warnings {
                tracing::warn!("{w}");
            }
            f
        }
        None => config::FileSettings::default(),
    };
    let settings = cli.settings(&file);
    if !cli.foreground {
        // Before the runtime exists: forking a process with threads would lose them.
        // Keep stderr (nochdir, noclose): logs go wherever the caller sent them.
        nix::unistd::daemon(true, true)?;
    }
    let bus_dir = cli
        .bus_dir
        .clone()
        .unwrap_or_else(|| mipsock::bus_dir_from_env("default"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(daemon::run(
        settings,
        bus_dir,
        Duration::from_millis(cli.state_timeout_ms),
    ))?;
    Ok(())
}
