//! The had + mrd pair's files and start-up, shared by the registration and dsmip
//! scenarios: the etc/ samples rewritten into a temporary directory, daemons started
//! and waited for, and `mipsock state --json` on a bus.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::{Daemon, Netns, bin, wait_until, workspace_root};

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

fn path_arg(p: &Path) -> String {
    p.to_str().expect("UTF-8 test paths").to_string()
}

/// `nemonetd -h` (egress `egress`) then had (home link `eth0`) on the home agent, as the
/// rc script starts them: (had, nemonetd). Logs `had.log`, `nemonetd-ha.log`.
pub fn start_home_agent(ns: &Netns, f: &Files, egress: &str) -> (Daemon, Daemon) {
    let hb = path_arg(&f.ha_bus);
    let nemonetd = spawn_in(
        ns,
        f,
        "nemonetd",
        "nemonetd-ha",
        &["-d", "-f", "-h", "-b", &hb, egress],
        " ready",
    );
    let had = spawn_in(
        ns,
        f,
        "had",
        "had",
        &["-d", "-f", "-c", &path_arg(&f.had_conf), "-b", &hb, "eth0"],
        "had ready",
    );
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
    spawn_in(
        ns,
        f,
        "mrd",
        "mrd",
        &[
            "-d",
            "-f",
            "-c",
            &path_arg(&f.mrd_conf),
            "-b",
            &path_arg(&f.mr_bus),
            "mip0",
        ],
        "mrd ready",
    )
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
