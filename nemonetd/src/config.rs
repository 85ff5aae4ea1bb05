//! Command line and configuration file.
//!
//! The file uses SHISA's grammar (`key value;`, `#` comments), parsed by
//! [`conf::grammar::Document`]; the `conf` crate has no typed nemonetd section, so the few
//! keys are read here. Keys of mrd/had are ignored (one file may serve several daemons);
//! unknown keys are reported as warnings.
//!
//! ```text
//! tunnel-name nemo0;          # TUN device
//! route-table 100;            # MR: policy table T; HA: table of the MNP routes (main)
//! rule-priority 20100;        # MR: first rule priority; we own 10 from here
//! udp-port 4191;              # UDP/IPv4 encapsulation port (0: off)
//! tunnel-hop-limit 64;        # outer hop limit / TTL
//! ipv4-own-traffic yes;       # MR: its own IPv4 traffic through the tunnel
//! tun-offload yes;            # TUN virtio-net header, checksum and TCP segmentation offload
//! tun-queues 0;               # TUN queues, a reader thread each (0: one per core, at most 8)
//! tun-outer-gro yes;          # TUN data plane: IPv6 tunnel packets through a GRO device, sent merged
//! dataplane auto;             # IPv6 outer headers: kernel, tun, or auto (kernel if it can; MR: with BPF only)
//! kernel-table 1100;          # kernel data plane: encapsulation table; +1, +2 decapsulation, +3 outer
//! kernel-encapsulation auto;  # kernel data plane: bpf (tcx programs), srv6, or auto (bpf, else srv6)
//! path-probe-interval 20;     # ms between probes of each care-of address among several (0: off)
//! duplicate "udp port 5004-5099";  # flows sent through every live path (repeatable)
//! ```

use std::path::PathBuf;

use clap::Parser;
use conf::grammar::{Document, ValueKind};

use crate::routes::{Mode, RouteConfig};

/// nemonetd: tunnels, routes and the user-space data plane of a NEMO mobile router (-m) or
/// home agent (-h), driven by binding events on the mipsock bus (BUL_ADD/REMOVE from mrd,
/// BC_ADD/REMOVE from had).
///
/// Every route and rule carries route protocol 110 (`ip route show proto 110 table all`);
/// a restart flushes them, so does SIGTERM. SIGHUP re-reads the configuration (a bad one
/// is reported and the running one kept) and asks the owners for their state again.
/// SIGUSR1 logs the data plane counters. `--check` checks the configuration and exits.
#[derive(Debug, Clone, Parser)]
#[command(version, disable_help_flag = true)]
pub struct Cli {
    /// Debug logging (same as RUST_LOG=nemonetd=debug).
    #[arg(short = 'd')]
    pub debug: bool,
    /// Stay in the foreground (SHISA's -f); without it nemonetd detaches from the terminal.
    #[arg(short = 'f')]
    pub foreground: bool,
    /// Mobile router: react to BUL_ADD/BUL_REMOVE.
    #[arg(
        short = 'm',
        conflicts_with = "home_agent",
        required_unless_present = "home_agent"
    )]
    pub mobile_router: bool,
    /// Home agent: react to BC_ADD/BC_REMOVE.
    #[arg(short = 'h')]
    pub home_agent: bool,
    /// Configuration file (SHISA grammar; see the crate docs for the keys).
    #[arg(short = 'c')]
    pub config: Option<PathBuf>,
    /// mipsock bus directory (default: $MIPSOCK_DIR or /run/mipsock/default).
    #[arg(short = 'b')]
    pub bus_dir: Option<PathBuf>,
    /// TUN device name (overrides `tunnel-name`; default nemo0).
    #[arg(long)]
    pub tun_name: Option<String>,
    /// Routing table (overrides `route-table`; default 100 on the MR, 254 = main on the HA).
    #[arg(long)]
    pub table: Option<u32>,
    /// First policy rule priority (overrides `rule-priority`; default 20100).
    #[arg(long)]
    pub rule_priority: Option<u32>,
    /// UDP/IPv4 encapsulation port, 0 for none (overrides `udp-port`; default 4191).
    #[arg(long)]
    pub udp_port: Option<u16>,
    /// Outer hop limit / TTL (overrides `tunnel-hop-limit`; default 64).
    #[arg(long)]
    pub hop_limit: Option<u8>,
    /// MR: keep the MR's own IPv4 traffic out of the tunnel.
    #[arg(long)]
    pub no_ipv4_own_traffic: bool,
    /// Plain TUN without the virtio-net header, checksum offload and TCP segmentation
    /// offload (overrides `tun-offload`).
    #[arg(long)]
    pub no_offload: bool,
    /// TUN data plane: send IPv6 tunnel packets with raw sockets, one by one, instead of
    /// writing them into a second TUN device (NAMEo) whose GRO merges them, so the kernel
    /// forwards each TCP super-packet once (overrides `tun-outer-gro`).
    #[arg(long)]
    pub no_outer_gro: bool,
    /// TUN queues, each read by a thread of its own; the kernel keeps each flow on one
    /// (overrides `tun-queues`; default 0: one per core, at most 8).
    #[arg(long)]
    pub tun_queues: Option<u16>,
    /// Which data plane carries the bindings with an IPv6 outer header (IPv6 care-of
    /// addresses): `kernel` (encapsulation, decapsulation and the ingress filter in the
    /// kernel, by BPF or SRv6 and nftables, see `--kernel-encapsulation`; a veth pair
    /// NAMEk/NAMEkx beside the TUN device), `tun` (the
    /// user-space data plane), or `auto`: the kernel's when it can be set up here, checked
    /// at start (on a mobile router only with the BPF encapsulation: with SRv6 its
    /// handovers are slower than TUN's, see the README). IPv4 outer headers always take
    /// the TUN device. Overrides `dataplane`.
    #[arg(long, value_enum, env = "NEMONETD_DATAPLANE")]
    pub dataplane: Option<crate::kernel::Choice>,
    /// The kernel data plane's first routing table; it uses three (overrides
    /// `kernel-table`; default 1100).
    #[arg(long)]
    pub kernel_table: Option<u32>,
    /// How the kernel data plane puts on and takes off the outer header: `bpf` (two tcx
    /// programs on the veth pair, Linux 6.6), `srv6` (SRv6 routes, a kernel with
    /// CONFIG_IPV6_SEG6_LWTUNNEL), or `auto`: BPF where the kernel takes the programs,
    /// else SRv6 (overrides `kernel-encapsulation`; default auto).
    #[arg(long, value_enum, env = "NEMONETD_KERNEL_ENCAPSULATION")]
    pub kernel_encapsulation: Option<crate::kernel::EncapChoice>,
    /// Milliseconds between path probes through each care-of address of a router
    /// registered with several (RFC 5648); a path silent for four intervals is out of use
    /// until it is heard again. 0: no probes, every registered path used (overrides
    /// `path-probe-interval`; default 20).
    #[arg(long, value_name = "MS")]
    pub path_probe_interval: Option<u32>,
    /// A flow sent through every live care-of address of a router registered with several
    /// (RFC 5648), the other end keeping the first copy: `udp`/`tcp`/`sctp`/`proto N`,
    /// `port N[-M]` (either side), `dscp N`, all given must hold; e.g. `--duplicate "udp
    /// port 5004-5099"`. Repeatable; both ends need the same. Adds to `duplicate` in the
    /// file.
    #[arg(long, value_name = "RULE")]
    pub duplicate: Vec<crate::dataplane::dup::DupRule>,
    /// How long to wait for the state dump at start, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub state_timeout_ms: u64,
    /// Check the configuration (the -c file and the command line on top) as nemonetd
    /// would load it for IFNAME, print warnings and a summary, and exit: 0 when it would
    /// start, 78 when not. Touches nothing (no TUN, no routes, no bus), needs no
    /// privileges; like `nginx -t`.
    #[arg(long)]
    pub check: bool,
    /// Serve the data plane counters in the OpenMetrics text format on
    /// http://ADDRESS:PORT/metrics (e.g. `[::1]:9463`): packets and octets each way,
    /// drops by reason, ICMP relayed, bindings carried. Off without it.
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Egress interface (MR: where the CoA lives; HA: the home link). Its MTU minus the
    /// encapsulation is the TUN MTU.
    pub ifname: String,
}

/// Path probes every 20 ms: a silent path is out of use 80 ms after it was last heard
/// (issue 15 asks for 150 ms from the failure; what a flow's receiver sees adds up to one
/// probe interval, the link's delay variation and the flow's own packet interval: 110-140
/// ms measured on the lab's LTE profile with 25 ms probes, 113-154 ms, hence 20), for 50
/// probes a second per path of the routers with several care-of addresses, 80 octets
/// each, about 32 kbit/s each way.
pub const DEFAULT_PATH_PROBE_INTERVAL_MS: u32 = 20;

/// Probe intervals without a word before a path is out of use: a path must lose three
/// probes in a row (with 1 % loss, once in about six hours at 50 a second), or two with
/// the delay variation of a loaded LTE cell, before it is wrongly left for a moment.
pub const LIVENESS_INTERVALS: u32 = 4;

/// The most TUN queues `tun-queues` may ask for.
pub const MAX_TUN_QUEUES: u16 = 64;
/// The most `tun-queues 0` takes: one per core up to this.
const AUTO_TUN_QUEUES: usize = 8;

/// The effective settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Route logic settings (mode, TUN name, table, rule priority).
    pub routes: RouteConfig,
    /// Egress interface.
    pub ifname: String,
    /// UDP port (0: none).
    pub udp_port: u16,
    /// Outer hop limit.
    pub hop_limit: u8,
    /// TUN offloads (virtio-net header, TSO4/TSO6, checksum).
    pub offload: bool,
    /// IPv6 tunnel packets through the GRO device ([`crate::dataplane::OuterGro`]).
    pub outer_gro: bool,
    /// TUN queues (reader threads), at least one.
    pub tun_queues: usize,
    /// Where the metrics listener binds (`--metrics`), if anywhere.
    pub metrics: Option<std::net::SocketAddr>,
    /// The data plane of IPv6 outer headers.
    pub dataplane: crate::kernel::Choice,
    /// The kernel data plane's first table.
    pub kernel_table: u32,
    /// How the kernel data plane encapsulates.
    pub kernel_encapsulation: crate::kernel::EncapChoice,
    /// Milliseconds between path probes (0: none).
    pub path_probe_interval_ms: u32,
    /// The flows duplicated over every live path.
    pub duplicate: Vec<crate::dataplane::dup::DupRule>,
}

/// Values read from the file; `None` where the file is silent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSettings {
    /// `tunnel-name`.
    pub tun_name: Option<String>,
    /// `route-table`.
    pub table: Option<u32>,
    /// `rule-priority`.
    pub rule_priority: Option<u32>,
    /// `udp-port`.
    pub udp_port: Option<u16>,
    /// `tunnel-hop-limit`.
    pub hop_limit: Option<u8>,
    /// `ipv4-own-traffic`.
    pub ipv4_own_traffic: Option<bool>,
    /// `tun-offload`.
    pub offload: Option<bool>,
    /// `tun-outer-gro`.
    pub outer_gro: Option<bool>,
    /// `tun-queues` (0: one per core).
    pub tun_queues: Option<u16>,
    /// `dataplane-metrics-listen "ADDRESS:PORT";`.
    pub metrics: Option<std::net::SocketAddr>,
    /// `dataplane auto|kernel|tun;`.
    pub dataplane: Option<crate::kernel::Choice>,
    /// `kernel-table`.
    pub kernel_table: Option<u32>,
    /// `kernel-encapsulation auto|bpf|srv6;`.
    pub kernel_encapsulation: Option<crate::kernel::EncapChoice>,
    /// `path-probe-interval` (milliseconds).
    pub path_probe_interval: Option<u32>,
    /// `duplicate "RULE";`, each statement one rule.
    pub duplicate: Vec<crate::dataplane::dup::DupRule>,
}

/// Keys of the other daemons, skipped silently.
const FOREIGN_KEYS: &[&str] = &[
    "interface",
    // had's and mrd's listener: nemonetd's is `dataplane-metrics-listen`, so one file can
    // configure both without a port clash.
    "metrics-listen",
    "debug",
    "home-address",
    "home-agent-address",
    "home-agent-ipv4-address",
    "mobile-network-prefix",
    "home-prefix",
    "home-registration-lifetime",
    "binding-lifetime-max",
    "prefixtable",
    "prefixtable-file",
    "auth-database",
    "authentication",
    "registration-mode",
    "ipv4-mnp-support",
    "egress-interface",
    "preference",
];

impl FileSettings {
    /// Parses the text of a configuration file. Returns the settings and warnings.
    pub fn parse(text: &str, file: &str) -> Result<(FileSettings, Vec<String>), String> {
        let doc = Document::parse(text, file).map_err(|e| e.to_string())?;
        let mut s = FileSettings::default();
        let mut warnings = Vec::new();
        for st in &doc.statements {
            let at = format!("{file}:{}", st.location());
            let one = || -> Result<&conf::grammar::Value, String> {
                match st.args() {
                    [v] => Ok(v),
                    _ => Err(format!("{at}: '{}' takes one value", st.name())),
                }
            };
            let number = |max: u64| -> Result<u64, String> {
                match one()?.kind {
                    ValueKind::Number(n) if n <= max => Ok(n),
                    _ => Err(format!("{at}: '{}' needs a number up to {max}", st.name())),
                }
            };
            match st.name() {
                "tunnel-name" => s.tun_name = Some(one()?.text.clone()),
                "route-table" => s.table = Some(number(u64::from(u32::MAX))? as u32),
                "rule-priority" => s.rule_priority = Some(number(u64::from(u32::MAX))? as u32),
                "udp-port" => s.udp_port = Some(number(65535)? as u16),
                "tunnel-hop-limit" => s.hop_limit = Some(number(255)? as u8),
                "ipv4-own-traffic" => s.ipv4_own_traffic = Some(yes_no(one()?, &at)?),
                "tun-offload" => s.offload = Some(yes_no(one()?, &at)?),
                "tun-outer-gro" => s.outer_gro = Some(yes_no(one()?, &at)?),
                "tun-queues" => s.tun_queues = Some(number(u64::from(MAX_TUN_QUEUES))? as u16),
                "dataplane" => {
                    s.dataplane = Some(
                        one()?
                            .text
                            .parse()
                            .map_err(|e| format!("{at}: 'dataplane' {e}"))?,
                    )
                }
                "kernel-table" => s.kernel_table = Some(number(u64::from(u32::MAX - 3))? as u32),
                "kernel-encapsulation" => {
                    s.kernel_encapsulation = Some(
                        one()?
                            .text
                            .parse()
                            .map_err(|e| format!("{at}: 'kernel-encapsulation' {e}"))?,
                    )
                }
                "path-probe-interval" => s.path_probe_interval = Some(number(60_000)? as u32),
                "duplicate" => s.duplicate.push(
                    one()?
                        .text
                        .parse()
                        .map_err(|e| format!("{at}: 'duplicate' {e}"))?,
                ),
                "dataplane-metrics-listen" => {
                    let v = one()?;
                    s.metrics = Some(v.text.parse().map_err(|_| {
                        format!(
                            "{at}: 'dataplane-metrics-listen' needs ADDRESS:PORT such as \"[::1]:9463\", found {:?}",
                            v.text
                        )
                    })?);
                }
                k if FOREIGN_KEYS.contains(&k) => {}
                k => warnings.push(format!("{at}: unknown key '{k}' ignored")),
            }
        }
        Ok((s, warnings))
    }
}

fn yes_no(v: &conf::grammar::Value, at: &str) -> Result<bool, String> {
    match v.text.as_str() {
        "yes" | "on" | "true" => Ok(true),
        "no" | "off" | "false" => Ok(false),
        other => Err(format!("{at}: expected yes or no, found {other:?}")),
    }
}

impl Settings {
    /// Refuses what the kernel would refuse later, or worse: an interface name it cannot
    /// hold, a rule priority range that overflows, an outer hop limit of 0. The error says
    /// which value and why; nemonetd exits 78 with it.
    pub fn validate(&self) -> Result<(), String> {
        for (what, name) in [
            (
                "the TUN device name (tunnel-name / --tun-name)",
                &self.routes.tun,
            ),
            ("the egress interface", &self.ifname),
        ] {
            if let Err(why) = interface_name(name) {
                return Err(format!("{what} {name:?}: {why}"));
            }
        }
        if self.routes.tun == self.ifname {
            return Err(format!(
                "the TUN device name {:?} is the egress interface's: choose another tunnel-name",
                self.routes.tun
            ));
        }
        if self.dataplane == crate::kernel::Choice::Kernel
            && crate::kernel::veth_names(&self.routes.tun).is_none()
        {
            return Err(format!(
                "dataplane kernel: the veth pair is named after the TUN device ({:?}k, {:?}kx), \
                 which leaves at most 13 octets for tunnel-name",
                self.routes.tun, self.routes.tun
            ));
        }
        let k = self.kernel_table;
        // Four tables from it: encapsulation, the two decapsulations, the MR's outer route.
        if k > u32::MAX - 3 {
            return Err(format!(
                "kernel-table {k}: the kernel data plane uses four tables from it, so at most {}",
                u32::MAX - 3
            ));
        }
        let theirs = [
            self.routes.table,
            crate::netops::TABLE_MAIN,
            crate::netops::TABLE_LOCAL,
            253,
            0,
        ];
        if self.dataplane != crate::kernel::Choice::Tun
            && theirs.iter().any(|t| (k..=k + 3).contains(t))
        {
            return Err(format!(
                "kernel-table {k}: the kernel data plane uses tables {k}-{}, which must not \
                 include route-table ({}), main, local, default or 0",
                k + 3,
                self.routes.table
            ));
        }
        let last = u32::MAX - (crate::routes::RULE_PRIORITY_SPAN - 1);
        if self.routes.rule_priority > last {
            return Err(format!(
                "rule-priority {}: nemonetd uses {} priorities from it, so at most {last}",
                self.routes.rule_priority,
                crate::routes::RULE_PRIORITY_SPAN
            ));
        }
        if self.path_probe_interval_ms > 60_000 {
            return Err(format!(
                "path-probe-interval {} ms: at most 60000 (0 turns the probes off)",
                self.path_probe_interval_ms
            ));
        }
        if self.hop_limit == 0 {
            return Err(
                "tunnel-hop-limit 0: every tunnelled packet would be dropped at the first hop; \
                 1-255"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Linux's rule for a network device name (`dev_valid_name`): 1 to 15 octets (IFNAMSIZ
/// with its NUL), not `.` or `..`, no `/`, `:` or white space.
fn interface_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("empty")
    } else if name.len() > 15 {
        Err("longer than 15 octets (IFNAMSIZ)")
    } else if name == "." || name == ".." {
        Err("not a device name")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Err("contains '/', ':' or white space")
    } else {
        Ok(())
    }
}

impl Cli {
    /// Mode from the flags.
    pub fn mode(&self) -> Mode {
        if self.home_agent {
            Mode::HomeAgent
        } else {
            Mode::MobileRouter
        }
    }

    /// Combines flags, file and defaults (flags win).
    pub fn settings(&self, file: &FileSettings) -> Settings {
        let mode = self.mode();
        let default_table = match mode {
            Mode::MobileRouter => 100,
            Mode::HomeAgent => crate::netops::TABLE_MAIN,
        };
        Settings {
            routes: RouteConfig {
                mode,
                tun: self
                    .tun_name
                    .clone()
                    .or_else(|| file.tun_name.clone())
                    .unwrap_or_else(|| "nemo0".into()),
                table: self.table.or(file.table).unwrap_or(default_table),
                rule_priority: self.rule_priority.or(file.rule_priority).unwrap_or(20100),
                ipv4_own_traffic: !self.no_ipv4_own_traffic
                    && file.ipv4_own_traffic.unwrap_or(true),
                kernel: None,
            },
            ifname: self.ifname.clone(),
            udp_port: self
                .udp_port
                .or(file.udp_port)
                .unwrap_or(proto::DSMIP_UDP_PORT),
            hop_limit: self
                .hop_limit
                .or(file.hop_limit)
                .unwrap_or(proto::encap::DEFAULT_TUNNEL_HOP_LIMIT),
            offload: !self.no_offload && file.offload.unwrap_or(true),
            outer_gro: !self.no_outer_gro && file.outer_gro.unwrap_or(true),
            tun_queues: match self.tun_queues.or(file.tun_queues).unwrap_or(0) {
                0 => std::thread::available_parallelism()
                    .map_or(1, usize::from)
                    .min(AUTO_TUN_QUEUES),
                n => usize::from(n),
            },
            metrics: self.metrics.or(file.metrics),
            dataplane: self
                .dataplane
                .or(file.dataplane)
                .unwrap_or(crate::kernel::Choice::Auto),
            kernel_table: self.kernel_table.or(file.kernel_table).unwrap_or(1100),
            kernel_encapsulation: self
                .kernel_encapsulation
                .or(file.kernel_encapsulation)
                .unwrap_or_default(),
            path_probe_interval_ms: self
                .path_probe_interval
                .or(file.path_probe_interval)
                .unwrap_or(DEFAULT_PATH_PROBE_INTERVAL_MS),
            duplicate: file
                .duplicate
                .iter()
                .chain(&self.duplicate)
                .copied()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicated_flows_from_file_and_flags() {
        let (f, w) = FileSettings::parse(
            "duplicate \"udp port 5004-5099\";\nduplicate \"dscp 46\";\n",
            "n.conf",
        )
        .unwrap();
        assert!(w.is_empty());
        let c =
            Cli::try_parse_from(["nemonetd", "-m", "--duplicate", "tcp port 22", "eth0"]).unwrap();
        let s = c.settings(&f);
        let shown: Vec<String> = s.duplicate.iter().map(|r| r.to_string()).collect();
        assert_eq!(shown, ["udp port 5004-5099", "dscp 46", "tcp port 22"]);
        let e = FileSettings::parse("duplicate \"udp port 9-1\";", "n.conf").unwrap_err();
        assert!(e.contains("n.conf:1") && e.contains("backwards"), "{e}");
        assert!(Cli::try_parse_from(["nemonetd", "-m", "--duplicate", "fast", "eth0"]).is_err());
    }

    #[test]
    fn tun_queues_from_the_file_or_the_flag() {
        let (f, w) = FileSettings::parse("tun-queues 3;\n", "n.conf").unwrap();
        assert!(w.is_empty(), "{w:?}");
        let c = Cli::try_parse_from(["nemonetd", "-m", "eth0"]).unwrap();
        assert_eq!(c.settings(&f).tun_queues, 3);
        let c = Cli::try_parse_from(["nemonetd", "-m", "--tun-queues", "1", "eth0"]).unwrap();
        assert_eq!(c.settings(&f).tun_queues, 1);
        // 0, the default: one per core, at most eight.
        let c = Cli::try_parse_from(["nemonetd", "-m", "eth0"]).unwrap();
        let auto = c.settings(&FileSettings::default()).tun_queues;
        assert!((1..=AUTO_TUN_QUEUES).contains(&auto), "{auto}");
        let e = FileSettings::parse("\ntun-queues 65;", "n.conf").unwrap_err();
        assert!(e.contains("n.conf:2") && e.contains("up to 64"), "{e}");
    }

    #[test]
    fn shisa_flags() {
        let c =
            Cli::try_parse_from(["nemonetd", "-d", "-f", "-m", "-c", "x.conf", "eth0"]).unwrap();
        assert_eq!(c.mode(), Mode::MobileRouter);
        assert!(c.debug && c.foreground);
        let c = Cli::try_parse_from(["nemonetd", "-h", "-b", "/tmp/bus", "eth1"]).unwrap();
        assert_eq!(c.mode(), Mode::HomeAgent);
        let s = c.settings(&FileSettings::default());
        assert_eq!(s.routes.table, 254);
        assert_eq!(s.routes.tun, "nemo0");
        assert!(Cli::try_parse_from(["nemonetd", "-m", "-h", "eth0"]).is_err());
        assert!(Cli::try_parse_from(["nemonetd", "eth0"]).is_err());
    }

    #[test]
    fn file_keys_and_precedence() {
        let text = "# nemonetd\ntunnel-name mip0;\nroute-table 200;\nudp-port 0;\n\
                    home-address 2001:db8:1::100;\nipv4-own-traffic no;\nfoo bar;\n";
        let (f, w) = FileSettings::parse(text, "n.conf").unwrap();
        assert_eq!(f.tun_name.as_deref(), Some("mip0"));
        assert_eq!(f.table, Some(200));
        assert_eq!(f.udp_port, Some(0));
        assert_eq!(f.ipv4_own_traffic, Some(false));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("foo"), "{w:?}");
        let c = Cli::try_parse_from(["nemonetd", "-m", "--table", "300", "eth0"]).unwrap();
        let s = c.settings(&f);
        assert_eq!(s.routes.table, 300);
        assert_eq!(s.routes.tun, "mip0");
        assert!(!s.routes.ipv4_own_traffic);
        assert!(FileSettings::parse("udp-port 70000;", "n.conf").is_err());
    }

    #[test]
    fn metrics_listener_from_the_file_or_the_flag() {
        // had's and mrd's key is theirs: no warning, no listener here.
        let (f, w) = FileSettings::parse("metrics-listen \"[::1]:9461\";\n", "n.conf").unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(f.metrics, None);
        let (f, _) =
            FileSettings::parse("dataplane-metrics-listen \"[::1]:9463\";\n", "n.conf").unwrap();
        let c = Cli::try_parse_from(["nemonetd", "-h", "eth0"]).unwrap();
        assert_eq!(c.settings(&f).metrics, Some("[::1]:9463".parse().unwrap()));
        let c =
            Cli::try_parse_from(["nemonetd", "-h", "--metrics", "127.0.0.1:1", "eth0"]).unwrap();
        assert_eq!(c.settings(&f).metrics, Some("127.0.0.1:1".parse().unwrap()));
        let e = FileSettings::parse("dataplane-metrics-listen nine;", "n.conf").unwrap_err();
        assert!(e.starts_with("n.conf:1:"), "{e}");
    }

    #[test]
    fn settings_the_kernel_would_refuse_are_refused_here() {
        let settings = |args: &[&str], file: &str| {
            let mut argv = vec!["nemonetd", "-m"];
            argv.extend_from_slice(args);
            let (f, _) = FileSettings::parse(file, "n.conf").unwrap();
            Cli::try_parse_from(argv).unwrap().settings(&f).validate()
        };
        assert_eq!(settings(&["eth0"], ""), Ok(()));
        assert_eq!(
            settings(&["--tun-name", "nemo-tunnel-0123", "eth0"], "").unwrap_err(),
            "the TUN device name (tunnel-name / --tun-name) \"nemo-tunnel-0123\": longer than 15 \
             octets (IFNAMSIZ)"
        );
        assert!(
            settings(&["eth0"], "tunnel-name a/b;")
                .unwrap_err()
                .contains("'/'")
        );
        assert!(
            settings(&["eth 0"], "")
                .unwrap_err()
                .starts_with("the egress interface")
        );
        assert!(
            settings(&["nemo0"], "")
                .unwrap_err()
                .contains("is the egress interface's")
        );
        assert!(
            settings(&["--rule-priority", "4294967290", "eth0"], "")
                .unwrap_err()
                .contains("at most 4294967286")
        );
        assert_eq!(
            settings(&["--rule-priority", "4294967286", "eth0"], ""),
            Ok(())
        );
        assert!(
            settings(&["eth0"], "tunnel-hop-limit 0;")
                .unwrap_err()
                .contains("1-255")
        );
        // The kernel data plane's four tables: the MR's outer route's (the fourth) must
        // not be main either, and none may run past the last table.
        assert!(
            settings(&["--kernel-table", "251", "eth0"], "")
                .unwrap_err()
                .contains("tables 251-254")
        );
        assert!(
            settings(&["--kernel-table", "4294967295", "eth0"], "")
                .unwrap_err()
                .contains("at most 4294967292")
        );
        assert!(FileSettings::parse("kernel-table 4294967293;", "n.conf").is_err());
        assert!(
            FileSettings::parse("kernel-encapsulation ebpf;", "n.conf")
                .unwrap_err()
                .contains("one of auto, bpf, srv6")
        );
    }

    #[test]
    fn shipped_sample_parses() {
        let (_, w) =
            FileSettings::parse(include_str!("../nemonetd.conf.sample"), "sample").unwrap();
        assert!(w.is_empty(), "{w:?}");
    }
}
