//! Command line: SHISA's `babymdd [-d] [-D] [-f] [-h mipif] interfaces...`, plus `-c`
//! (mrd's configuration file) and `-b` (bus directory), and flags that override the file.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};
use conf::MrConfig;
use ipnet::Ipv6Net;
use nemo_daemon::Exit;
use tracing::{info, warn};

use crate::detector::{DEFAULT_HOLD_DOWN, DetectorConfig, WatchedInterface};
use crate::run::{Reload, RunConfig, RunError, run};

/// babymdd: movement detection for the NEMO mobile router (SHISA's babymdd for Linux).
///
/// Watches the egress interfaces over rtnetlink, picks the care-of address (a usable
/// global IPv6 address before any IPv4 one; among interfaces, the preferred one), tells
/// mrd with MD_INFO REREG on the mipsock bus, and MD_INFO DEREGHOME when the home prefix
/// shows up on an egress link. A Router Solicitation goes out when a link comes up.
/// SIGHUP re-reads the configuration file (a bad one is reported and the running one
/// kept) and repeats the current MD_INFO (for a restarted mrd); SIGUSR1 logs the state;
/// SIGTERM/SIGINT stop. `--check` checks the configuration and exits: 0 good, 78 bad.
///
/// Examples:
///
///   babymdd -h mip0 -c /etc/nemo/mrd.conf eth0 wlan0
///
///   babymdd -b /run/mipsock/lab --hoa 2001:db8:1::100 --pref eth0=10 --pref eth1=20
#[derive(Debug, Clone, Parser)]
#[command(
    name = "babymdd",
    version,
    disable_help_flag = true,
    verbatim_doc_comment
)]
pub struct Args {
    /// Debug logs (SHISA's -d). RUST_LOG, when set, decides instead.
    #[arg(short = 'd')]
    pub debug: bool,

    /// Very verbose logs (SHISA's -D): trace level.
    #[arg(short = 'D')]
    pub verbose: bool,

    /// Stay in the foreground (SHISA's -f). babymdd never forks (run it under systemd
    /// or an rc.d script that backgrounds it); accepted so SHISA command lines work.
    #[arg(short = 'f')]
    pub foreground: bool,

    /// The Mobile IPv6 pseudo interface (SHISA's -h, e.g. mip0): the home address is
    /// taken from it when neither --hoa nor the configuration file gives one, and it is
    /// never used as an egress. Also picks the `interface NAME { ... };` block of the
    /// configuration file, as for mrd.
    #[arg(short = 'h', value_name = "MIPIF")]
    pub mip_interface: Option<String>,

    /// mrd's configuration file (SHISA grammar). babymdd reads `home-address` and
    /// `egress-interface` (most preferred first) from it.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// mipsock bus directory. Default: $MIPSOCK_DIR, else /run/mipsock/default.
    #[arg(short = 'b', long = "bus-dir", value_name = "DIR")]
    pub bus_dir: Option<PathBuf>,

    /// Home address; overrides the configuration file.
    #[arg(long, value_name = "IPV6")]
    pub hoa: Option<Ipv6Addr>,

    /// A home prefix (repeat for several). Its appearance on an egress link means "at
    /// home". Default: the home address's /64.
    #[arg(long = "home-prefix", value_name = "PREFIX/LEN")]
    pub home_prefixes: Vec<Ipv6Net>,

    /// Interface preference NAME=N, lower preferred (repeat for several). Default: the
    /// position in the interface list (first = 0). Naming an interface not in the list
    /// adds it.
    #[arg(long = "pref", value_name = "NAME=N", value_parser = parse_pref)]
    pub prefs: Vec<(String, u32)>,

    /// How long a better address must have been usable before babymdd leaves a care-of
    /// address that still works, in milliseconds. Losing the current one switches at once.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_HOLD_DOWN.as_millis() as u64)]
    pub hold_down_ms: u64,

    /// Use optimistic addresses (RFC 4429) before their DAD completes.
    #[arg(long)]
    pub accept_optimistic: bool,

    /// mrd registers several care-of addresses (RFC 5648): also report a change of the
    /// uplinks (every interface's care-of address) when the selected one stays. Also
    /// turned on by the configuration file's `multiple-care-of-addresses yes;`.
    #[arg(long)]
    pub multiple_coa: bool,

    /// Get IPv4 care-of addresses by DHCP on every egress link that comes up (babymdd's
    /// own client, in parallel with IPv6 autoconfiguration). A lease installs the address
    /// with the lease lifetime and a default route via the server's router with metric
    /// --dhcp-metric plus the link's preference. Never writes resolv.conf. Only on named
    /// egress interfaces (arguments, the file's egress-interface, --pref), never in the
    /// watch-everything mode.
    #[arg(long)]
    pub dhcp: bool,

    /// Base metric of the default routes DHCP installs.
    #[arg(long, value_name = "N", default_value_t = crate::dhcp::shell::DEFAULT_ROUTE_METRIC)]
    pub dhcp_metric: u32,

    /// Check the configuration (the -c file, for MIPIF, and the command line on top) as
    /// babymdd would load it, print warnings and a summary, and exit: 0 when it would
    /// start, 78 when not. Touches nothing (no sockets, no netlink, no bus), needs no
    /// privileges; like `nginx -t`.
    #[arg(long)]
    pub check: bool,

    /// Serve the counters in the OpenMetrics text format on http://ADDRESS:PORT/metrics
    /// (e.g. `[::1]:9464`): where the router is attached, MD_INFO sent by command, router
    /// solicitations. Off without it.
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,

    /// Egress interfaces, most preferred first. None given: the configuration file's
    /// `egress-interface` list; none there either: every interface but loopback and MIPIF.
    #[arg(value_name = "INTERFACE")]
    pub interfaces: Vec<String>,
}

fn parse_pref(s: &str) -> Result<(String, u32), String> {
    let (name, n) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=NUMBER, found {s:?}"))?;
    if name.is_empty() {
        return Err(format!("empty interface name in {s:?}"));
    }
    let n = n
        .parse()
        .map_err(|e| format!("bad preference in {s:?}: {e}"))?;
    Ok((name.to_string(), n))
}

/// Why babymdd could not run.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration file.
    #[error(transparent)]
    Config(#[from] conf::ConfError),
    /// The runtime.
    #[error("tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The daemon itself.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl nemo_daemon::Failure for CliError {
    /// 78 (EX_CONFIG) for configuration errors (do not restart in a loop), 1 otherwise.
    fn exit(&self) -> Exit {
        match self {
            CliError::Config(_) => Exit::Config,
            _ => Exit::Failure,
        }
    }
}

impl CliError {
    /// Process exit code (see [`nemo_daemon::Exit`]).
    pub fn exit_code(&self) -> u8 {
        nemo_daemon::Failure::exit(self).code()
    }
}

/// The tracing filter directives the flags ask for (RUST_LOG wins when set).
pub fn log_level(args: &Args) -> &'static str {
    if args.verbose {
        "trace"
    } else if args.debug {
        "debug"
    } else {
        "info"
    }
}

/// Builds the run configuration: the file (if any), then the flags on top. The file's
/// warnings are logged.
pub fn run_config(args: &Args) -> Result<RunConfig, CliError> {
    let (cfg, warnings) = load(args)?;
    for w in warnings {
        warn!(%w, "configuration");
    }
    Ok(cfg)
}

/// The run configuration and the file's warnings.
fn load(args: &Args) -> Result<(RunConfig, Vec<String>), CliError> {
    let (file, warnings) = match &args.config {
        Some(path) => {
            let (cfg, warnings) = MrConfig::from_file_for(path, args.mip_interface.as_deref())?;
            (
                Some(cfg),
                warnings.iter().map(ToString::to_string).collect(),
            )
        }
        None => (None, Vec::new()),
    };
    let names: Vec<String> = if !args.interfaces.is_empty() {
        args.interfaces.clone()
    } else {
        file.as_ref()
            .map(|f| f.egress_interfaces.clone())
            .unwrap_or_default()
    };
    let mut interfaces: Vec<WatchedInterface> = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| WatchedInterface {
            name,
            preference: i as u32,
        })
        .collect();
    for (name, preference) in &args.prefs {
        match interfaces.iter_mut().find(|w| &w.name == name) {
            Some(w) => w.preference = *preference,
            None => interfaces.push(WatchedInterface {
                name: name.clone(),
                preference: *preference,
            }),
        }
    }
    let bus_dir = args
        .bus_dir
        .clone()
        .unwrap_or_else(|| mipsock::bus_dir_from_env("default"));
    let cfg = RunConfig {
        detector: DetectorConfig {
            interfaces,
            mip_interface: args.mip_interface.clone(),
            home_address: args.hoa.or(file.as_ref().map(|f| f.home_address)),
            home_prefixes: args.home_prefixes.clone(),
            hold_down: Duration::from_millis(args.hold_down_ms),
            accept_optimistic: args.accept_optimistic,
            multiple_coa: args.multiple_coa
                || file.as_ref().is_some_and(|f| f.multiple_care_of_addresses),
        },
        bus_dir,
        dhcp_route_metric: args.dhcp.then_some(args.dhcp_metric),
        metrics: args.metrics,
    };
    Ok((cfg, warnings))
}

/// Said at start and by `--check`: without any of these, babymdd cannot tell home.
const NO_HOME: &str = "no home address (--hoa, -c or -h): home will never be detected";

/// `babymdd --check`: loads the configuration as a start would; warnings on stderr, the
/// summary on stdout. Touches nothing.
fn check(args: &Args) -> Result<(), CliError> {
    let (cfg, mut warnings) = load(args)?;
    let d = &cfg.detector;
    if d.home_address.is_none() && d.mip_interface.is_none() {
        warnings.push(NO_HOME.to_string());
    }
    for w in &warnings {
        nemo_daemon::check::warning(w);
    }
    let egress = if d.interfaces.is_empty() {
        "every interface but loopback and MIPIF".to_string()
    } else {
        let named: Vec<String> = d
            .interfaces
            .iter()
            .map(|w| format!("{}={}", w.name, w.preference))
            .collect();
        named.join(" ")
    };
    let home = d
        .home_address
        .map_or_else(|| "from MIPIF".to_string(), |a| a.to_string());
    let dhcp = cfg
        .dhcp_route_metric
        .map_or_else(|| "off".to_string(), |m| format!("metric {m}"));
    let prefixes = if d.home_prefixes.is_empty() {
        "the home address's /64".to_string()
    } else {
        format!("{:?}", d.home_prefixes)
    };
    let mcoa = if d.multiple_coa { "on" } else { "off" };
    let summary = format!(
        "home address {home}, home prefixes {prefixes}, egress {egress}, DHCP {dhcp}, \
         multiple care-of addresses {mcoa}, {} warnings",
        warnings.len()
    );
    let subject = d.mip_interface.as_deref().unwrap_or("no MIPIF (-h)");
    nemo_daemon::check::ok(args.config.as_deref(), subject, &summary);
    Ok(())
}

/// Runs babymdd for parsed arguments (tracing already set up).
pub fn main(args: Args) -> Result<(), CliError> {
    if args.check {
        return check(&args);
    }
    let cfg = run_config(&args)?;
    if cfg.detector.home_address.is_none() && cfg.detector.mip_interface.is_none() {
        warn!("{NO_HOME}");
    }
    info!(version = env!("CARGO_PKG_VERSION"), "babymdd starting");
    // SIGHUP: the same file and flags, read again.
    let reload: Reload = Box::new(move || run_config(&args).map_err(|e| e.to_string()));
    nemo_daemon::block_on(run(cfg, Some(reload))).map_err(CliError::Runtime)??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shisa_command_line() {
        let a =
            Args::try_parse_from(["babymdd", "-d", "-f", "-h", "mip0", "eth0", "wlan0"]).unwrap();
        assert!(a.debug && a.foreground);
        let c = run_config(&a).unwrap();
        assert_eq!(c.detector.mip_interface.as_deref(), Some("mip0"));
        let ifs: Vec<_> = c
            .detector
            .interfaces
            .iter()
            .map(|w| (w.name.as_str(), w.preference))
            .collect();
        assert_eq!(ifs, [("eth0", 0), ("wlan0", 1)]);
        assert_eq!(c.dhcp_route_metric, None, "DHCP is opt-in");
    }

    #[test]
    fn configuration_errors_exit_78_like_every_daemon() {
        let a =
            Args::try_parse_from(["babymdd", "--check", "-c", "/nonexistent/mrd.conf"]).unwrap();
        assert!(a.check);
        let e = run_config(&a).unwrap_err();
        assert_eq!(e.exit_code(), 78, "{e}");
        let e = CliError::Runtime(std::io::Error::other("x"));
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn dhcp_flags() {
        let a = Args::try_parse_from(["babymdd", "--dhcp", "eth0"]).unwrap();
        assert_eq!(
            run_config(&a).unwrap().dhcp_route_metric,
            Some(crate::dhcp::shell::DEFAULT_ROUTE_METRIC)
        );
        let a = Args::try_parse_from(["babymdd", "--dhcp", "--dhcp-metric", "50", "eth0"]).unwrap();
        assert_eq!(run_config(&a).unwrap().dhcp_route_metric, Some(50));
    }

    #[test]
    fn flags_override_and_extend() {
        let a = Args::try_parse_from([
            "babymdd",
            "-b",
            "/tmp/bus",
            "--hoa",
            "2001:db8:1::100",
            "--home-prefix",
            "2001:db8:1::/64",
            "--pref",
            "eth1=5",
            "--pref",
            "eth2=1",
            "--hold-down-ms",
            "300",
            "eth0",
            "eth1",
        ])
        .unwrap();
        let c = run_config(&a).unwrap();
        assert_eq!(c.bus_dir, PathBuf::from("/tmp/bus"));
        assert_eq!(c.detector.hold_down, Duration::from_millis(300));
        assert_eq!(
            c.detector.home_address,
            Some("2001:db8:1::100".parse().unwrap())
        );
        let ifs: Vec<_> = c
            .detector
            .interfaces
            .iter()
            .map(|w| (w.name.as_str(), w.preference))
            .collect();
        assert_eq!(ifs, [("eth0", 0), ("eth1", 5), ("eth2", 1)]);
        assert!(Args::try_parse_from(["babymdd", "--pref", "eth0"]).is_err());
        assert!(Args::try_parse_from(["babymdd", "--help"]).is_err()); // help "error" = printed
    }

    #[test]
    fn multiple_care_of_addresses_from_the_file_or_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mrd.conf");
        std::fs::write(
            &path,
            "home-address 2001:db8:1::100;\nauthentication none;\negress-interface eth0 eth1;\nmultiple-care-of-addresses yes;\n",
        )
        .unwrap();
        let a = Args::try_parse_from(["babymdd", "-c", path.to_str().unwrap()]).unwrap();
        assert!(run_config(&a).unwrap().detector.multiple_coa);
        let a = Args::try_parse_from(["babymdd", "--multiple-coa", "eth0"]).unwrap();
        assert!(run_config(&a).unwrap().detector.multiple_coa);
        let a = Args::try_parse_from(["babymdd", "eth0"]).unwrap();
        assert!(!run_config(&a).unwrap().detector.multiple_coa);
    }

    #[test]
    fn config_file_gives_home_address_and_egress_interfaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mrd.conf");
        std::fs::write(
            &path,
            "interface mip0 {\n  home-address 2001:db8:1::100;\n  home-agent-address 2001:db8:1::1;\n  authentication none;\n  egress-interface eth1 eth0;\n};\n",
        )
        .unwrap();
        let a =
            Args::try_parse_from(["babymdd", "-h", "mip0", "-c", path.to_str().unwrap()]).unwrap();
        let c = match run_config(&a) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            c.detector.home_address,
            Some("2001:db8:1::100".parse().unwrap())
        );
        let ifs: Vec<_> = c
            .detector
            .interfaces
            .iter()
            .map(|w| w.name.as_str())
            .collect();
        assert_eq!(ifs, ["eth1", "eth0"]);
        assert!(!c.detector.multiple_coa);
        // The command line's interfaces replace the file's.
        let a = Args::try_parse_from([
            "babymdd",
            "-h",
            "mip0",
            "-c",
            path.to_str().unwrap(),
            "eth0",
        ])
        .unwrap();
        let c = run_config(&a).unwrap();
        assert_eq!(c.detector.interfaces.len(), 1);
    }
}
