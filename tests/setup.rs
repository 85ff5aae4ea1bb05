//! The had + mrd pair's files and start-up, shared by the registration and dsmip
//! scenarios: the etc/ samples rewritten into a temporary directory, daemons started
//! and waited for, and `mipsock state --json` on a bus.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::{Daemon, Netns, bin, veth, wait_until, workspace_root};

/// A sample from etc/ with `(from, to)` replacements, each of which must apply, and the
/// lines starting (after indentation) with any of `drop_lines_with` left out.
pub fn sample(name: &str, edits: &[(&str, &str)], drop_lines_with: &[&str]) -> String {
    let mut text = std::fs::read_to_string(workspace_root().join("etc").join(name)).unwrap();
    for (from, to) in edits {
        assert!(
            text.contains(from),
            "etc/{name} no longer contains {from:?}"
        );
        text = text.replace(from, to);
    }
    text.lines()
        .filter(|l| {
            !drop_lines_with
                .iter()
                .any(|d| l.trim_start().starts_with(d))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The pair's configuration files and buses in a temporary directory (logs go there too).
#[derive(Debug)]
pub struct Files {
    pub dir: tempfile::TempDir,
    pub had_conf: PathBuf,
    pub mrd_conf: PathBuf,
    pub ha_bus: PathBuf,
    pub mr_bus: PathBuf,
}

/// Writes had.conf and mrd.conf from the etc/ samples: the auth-database copied in, the
/// prefix table from etc/, the journal in the directory, had's home address and prefixes
/// left to the home interface (SHISA's way), mrd egressing on eth0; `mrd_edits` are
/// further replacements in mrd.conf, applied after those.
pub fn files(mrd_edits: &[(&str, &str)]) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::copy(
        workspace_root().join("etc/auth-database"),
        p("auth-database"),
    )
    .unwrap();
    let auth = p("auth-database").display().to_string();
    let table = workspace_root().join("etc/prefixtable.cf");
    let journal = p("had.journal").display().to_string();
    let had = sample(
        "had.conf",
        &[
            ("/etc/nemo/auth-database", &auth),
            ("/etc/nemo/prefixtable.cf", &table.display().to_string()),
            ("/var/lib/nemo/had.journal", &journal),
        ],
        // SHISA's way: taken from the home interface.
        &["home-agent-address", "home-prefix"],
    );
    let mut edits = vec![
        ("/etc/nemo/auth-database", auth.as_str()),
        ("egress-interface wlan0 eth1", "egress-interface eth0"),
    ];
    edits.extend_from_slice(mrd_edits);
    let mrd = sample("mrd.conf", &edits, &[]);
    std::fs::write(p("had.conf"), had).unwrap();
    std::fs::write(p("mrd.conf"), mrd).unwrap();
    for b in ["bus-ha", "bus-mr"] {
        std::fs::create_dir(p(b)).unwrap();
    }
    Files {
        had_conf: p("had.conf"),
        mrd_conf: p("mrd.conf"),
        ha_bus: p("bus-ha"),
        mr_bus: p("bus-mr"),
        dir,
    }
}

/// A log file's text so far (empty if it does not exist yet).
pub fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Starts `cmd` logging to `log` and waits up to `timeout` for `ready` in the log;
/// panics with the log when it does not show.
pub fn spawn_ready(name: &str, cmd: Command, log: &Path, ready: &str, timeout: Duration) -> Daemon {
    let d = Daemon::spawn(name, cmd, log);
    assert!(
        wait_until(timeout, || log_of(log).contains(ready)),
        "{name} did not start:\n{}",
        log_of(log)
    );
    d
}

/// Runs `mipsock -b BUS state --json ARGS…`.
pub fn mipsock_state(bus: &Path, args: &[&str]) -> Output {
    Command::new(bin("mipsock"))
        .arg("-b")
        .arg(bus)
        .args(["state", "--json"])
        .args(args)
        .output()
        .unwrap()
}

/// Starts `name` (a workspace binary) inside `ns` with `args`, logging to `TAG.log` in the
/// pair's directory, and waits up to 30 s for `ready` in that log.
pub fn spawn_in(
    ns: &Netns,
    f: &Files,
    name: &str,
    tag: &str,
    args: &[&str],
    ready: &str,
) -> Daemon {
    let mut cmd = ns.command(&bin(name));
    cmd.args(args);
    let log = f.dir.path().join(format!("{tag}.log"));
    spawn_ready(name, cmd, &log, ready, Duration::from_secs(30))
}

/// `mipsock state --json` on a bus: the binding `owner` holds (had: `Bc`, mrd: `Bul`),
/// the one for `hoa` when given.
pub fn binding(
    bus: &Path,
    owner: &str,
    hoa: Option<std::net::Ipv6Addr>,
) -> Option<mipsock::Binding> {
    let out = mipsock_state(bus, &["--timeout-ms", "1500"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["owner"] == owner)
        .find_map(|v| {
            match serde_json::from_value::<mipsock::StateItem>(v["item"].clone()).ok()? {
                mipsock::StateItem::Bc(b) | mipsock::StateItem::Bul(b)
                    if hoa.is_none_or(|h| b.hoa == h) =>
                {
                    Some(b)
                }
                _ => None,
            }
        })
}

/// `mipsock state --json` on a bus: how nemonetd carries `hoa`'s binding (the first).
pub fn dataplane(bus: &Path, hoa: std::net::Ipv6Addr) -> Option<mipsock::DataplaneInfo> {
    let out = mipsock_state(bus, &["--timeout-ms", "1500"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["owner"] == "nemonetd")
        .find_map(|v| {
            match serde_json::from_value::<mipsock::StateItem>(v["item"].clone()).ok()? {
                mipsock::StateItem::Dataplane(d) if d.hoa == hoa => Some(d),
                _ => None,
            }
        })
}

fn path_arg(p: &Path) -> String {
    p.to_str().expect("UTF-8 test paths").to_string()
}

/// `nemonetd -h` (egress `egress`) then had (home link `eth0`) on the home agent, as the
/// rc script starts them: (had, nemonetd). Logs `had.log`, `nemonetd-ha.log`.
pub fn start_home_agent(ns: &Netns, f: &Files, egress: &str) -> (Daemon, Daemon) {
    start_home_agent_with(ns, f, egress, &[], &[])
}

/// [`start_home_agent`] with extra options for had and for nemonetd (before the interface).
pub fn start_home_agent_with(
    ns: &Netns,
    f: &Files,
    egress: &str,
    had_extra: &[&str],
    nemonetd_extra: &[&str],
) -> (Daemon, Daemon) {
    let hb = path_arg(&f.ha_bus);
    let mut args = vec!["-d", "-f", "-h", "-b", &hb];
    args.extend_from_slice(nemonetd_extra);
    args.push(egress);
    let nemonetd = spawn_in(ns, f, "nemonetd", "nemonetd-ha", &args, " ready");
    let conf = path_arg(&f.had_conf);
    let mut args = vec!["-d", "-f", "-c", &conf, "-b", &hb];
    args.extend_from_slice(had_extra);
    args.push("eth0");
    let had = spawn_in(ns, f, "had", "had", &args, "had ready");
    (had, nemonetd)
}

/// `nemonetd -m` (egress `eth0`) on the mobile router. Log `nemonetd-mr.log`.
pub fn start_mr_dataplane(ns: &Netns, f: &Files) -> Daemon {
    spawn_in(
        ns,
        f,
        "nemonetd",
        "nemonetd-mr",
        &["-d", "-f", "-m", "-b", &path_arg(&f.mr_bus), "eth0"],
        " ready",
    )
}

/// mrd on `mip0`. Log `mrd.log`.
pub fn start_mrd(ns: &Netns, f: &Files) -> Daemon {
    start_mrd_with(ns, f, &[])
}

/// [`start_mrd`] with extra options (before the interface).
pub fn start_mrd_with(ns: &Netns, f: &Files, extra: &[&str]) -> Daemon {
    let (conf, bus) = (path_arg(&f.mrd_conf), path_arg(&f.mr_bus));
    let mut args = vec!["-d", "-f", "-c", &conf, "-b", &bus];
    args.extend_from_slice(extra);
    args.push("mip0");
    spawn_in(ns, f, "mrd", "mrd", &args, "mrd ready")
}

/// babymdd's part, injected: MD_INFO `command` for `hoa` (`rereg` with `coa` on the
/// interface `ifindex`).
pub fn inject_md_info(f: &Files, command: &str, hoa: &str, coa: Option<(&str, u32)>) {
    let mut cmd = Command::new(bin("mipsock"));
    cmd.arg("-b")
        .arg(&f.mr_bus)
        .args(["inject", "md-info", "--command", command, "--hoa", hoa]);
    if let Some((coa, ifindex)) = coa {
        cmd.args(["--coa", coa, "--ifindex", &ifindex.to_string()]);
    }
    let out = cmd.output().expect("mipsock inject");
    assert!(out.status.success(), "mipsock inject: {out:?}");
}

/// The mobile router's home address in the sample configurations.
pub const HOA: &str = "2001:db8:1::100";

fn addr(ns: &Netns, addr: &str, dev: &str) {
    ns.ip(&["addr", "add", addr, "dev", dev, "nodad"]);
}

/// The namespaces of [`HomeLink`], without daemons: the home agent (`eth0`
/// 2001:db8:1::1/64 on the home link, `up0` 2001:db8:a::1/64 towards the mobile node), a
/// node on the home link (`hl_addr`), and the mobile node away with `mr_addrs` on its
/// `eth0` and `hoa`/128 on `mip0` (a veth pair: no dummy driver here), its default route
/// via the home agent. DAD off everywhere, forwarding on the home agent.
#[derive(Debug)]
pub struct HomeTopology {
    /// The home agent.
    pub ha: Netns,
    /// A node on the home link.
    pub hl: Netns,
    /// The mobile router (or host), away.
    pub mr: Netns,
}

/// Builds a [`HomeTopology`]; `tag` names the namespaces.
pub fn home_topology(tag: &str, hl_addr: &str, hoa: &str, mr_addrs: &[&str]) -> HomeTopology {
    let (ha, hl, mr) = (
        Netns::new(&format!("{tag}-ha")),
        Netns::new(&format!("{tag}-hl")),
        Netns::new(&format!("{tag}-mr")),
    );
    for ns in [&ha, &hl, &mr] {
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
    }
    veth(&hl, "eth0", &ha, "eth0");
    veth(&mr, "eth0", &ha, "up0");
    addr(&ha, "2001:db8:1::1/64", "eth0");
    addr(&ha, "2001:db8:a::1/64", "up0");
    addr(&hl, hl_addr, "eth0");
    for a in mr_addrs {
        addr(&mr, a, "eth0");
    }
    mr.ip(&[
        "link", "add", "mip0", "type", "veth", "peer", "name", "mip0p",
    ]);
    mr.ip(&["link", "set", "mip0", "up"]);
    mr.ip(&["link", "set", "mip0p", "up"]);
    addr(&mr, &format!("{hoa}/128"), "mip0");
    mr.ip(&["-6", "route", "add", "default", "via", "2001:db8:a::1"]);
    ha.sysctl("net.ipv6.conf.all.forwarding", "1");
    HomeTopology { ha, hl, mr }
}

/// The home agent with its home link and a mobile router away, for black-box tests of
/// what the home agent does on the home link and towards the care-of address:
///
/// ```text
///   hl  eth0 (hl_addr) ──── eth0 2001:db8:1::1/64  ha (had, nemonetd -h)
///                           up0  2001:db8:a::1/64 ──── eth0 2001:db8:a::5  mr (mrd)
/// ```
///
/// Three namespaces, the pair's files and its daemons; `mrd` registers [`HOA`] once told
/// of a care-of address ([`HomeLink::rereg`]).
#[derive(Debug)]
pub struct HomeLink {
    /// The home agent.
    pub ha: Netns,
    /// A node on the home link.
    pub hl: Netns,
    /// The mobile router, away.
    pub mr: Netns,
    /// Configurations, buses, logs.
    pub f: Files,
    /// The home agent's data plane.
    pub nemonetd: Daemon,
    _had: Daemon,
    _mrd: Daemon,
}

impl HomeLink {
    /// Sends mrd a signal by name (`STOP` a router that hears nothing, `CONT`).
    pub fn signal_mrd(&self, sig: &str) {
        self._mrd.signal(sig);
    }

    /// Builds it all; `tag` names the namespaces.
    pub fn new(tag: &str, hl_addr: &str) -> HomeLink {
        HomeLink::with(tag, hl_addr, &[], &[], &[])
    }

    /// [`HomeLink::new`] with extra options for had, the HA's nemonetd and mrd.
    pub fn with(
        tag: &str,
        hl_addr: &str,
        had_extra: &[&str],
        nemonetd_extra: &[&str],
        mrd_extra: &[&str],
    ) -> HomeLink {
        HomeLink::with_mrd_conf(tag, hl_addr, had_extra, nemonetd_extra, mrd_extra, &[])
    }

    /// [`HomeLink::with`], and `mrd_edits` replacements in mrd.conf ([`files`]).
    pub fn with_mrd_conf(
        tag: &str,
        hl_addr: &str,
        had_extra: &[&str],
        nemonetd_extra: &[&str],
        mrd_extra: &[&str],
        mrd_edits: &[(&str, &str)],
    ) -> HomeLink {
        let HomeTopology { ha, hl, mr } = home_topology(tag, hl_addr, HOA, &["2001:db8:a::5/64"]);
        let f = files(mrd_edits);
        let (had, nemonetd) = start_home_agent_with(&ha, &f, "up0", had_extra, nemonetd_extra);
        let mrd = start_mrd_with(&mr, &f, mrd_extra);
        HomeLink {
            ha,
            hl,
            mr,
            f,
            nemonetd,
            _had: had,
            _mrd: mrd,
        }
    }

    /// babymdd's part: MD_INFO REREG from `coa` on the MR's eth0.
    pub fn rereg(&self, coa: &str) {
        inject_md_info(&self.f, "rereg", HOA, Some((coa, self.mr.ifindex("eth0"))));
    }

    /// A daemon's log (`had`, `mrd`, `nemonetd-ha`).
    pub fn log(&self, name: &str) -> String {
        log_of(&self.f.dir.path().join(format!("{name}.log")))
    }

    /// All three logs, for a failure message.
    pub fn logs(&self) -> String {
        ["had", "mrd", "nemonetd-ha"]
            .iter()
            .map(|n| format!("==== {n}\n{}", self.log(n)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The HA's routes of protocol 110 mention the home address.
    pub fn routed(&self) -> bool {
        self.ha
            .ip_text(&["-6", "route", "show", "proto", "110"])
            .contains(HOA)
    }
}

/// Starts etcd member `name` (client URL `client`, peer URL `peer`) of `cluster`
/// (`name=peer,...`) in `ns`; waits for it to serve when `wait`.
pub fn etcd_member(
    ns: &Netns,
    dir: &Path,
    name: &str,
    client: &str,
    peer: &str,
    cluster: &str,
    wait: bool,
) -> (Daemon, std::path::PathBuf) {
    let log = dir.join(format!("{name}.log"));
    let mut cmd = ns.command(Path::new("etcd"));
    cmd.args([
        "--name",
        name,
        "--data-dir",
        dir.join(format!("{name}-data")).to_str().unwrap(),
        "--listen-client-urls",
        client,
        "--advertise-client-urls",
        client,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        cluster,
    ]);
    let d = Daemon::spawn(name, cmd, &log);
    if wait {
        assert!(
            wait_until(Duration::from_secs(20), || log_of(&log)
                .contains("ready to serve client requests")),
            "etcd did not start (apt-get install etcd-server):\n{}",
            log_of(&log)
        );
    }
    (d, log)
}
