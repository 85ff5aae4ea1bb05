//! What nemonetd's namespace tests share: root check, waiting, logs, and starting the real
//! nemonetd on its own mipsock bus.

#![allow(dead_code)] // each test file uses its part

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mipsock::{Endpoint, EndpointOptions};
use tests::{Daemon, Netns};

/// Namespaces need root; the tests skip (with a line) without it.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Polls `f` every 100 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// A log file's text (empty when missing).
pub fn log_text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// A nemonetd started by [`start`], with a bus endpoint to play mrd or had.
pub struct Nemonetd {
    /// The process (killed when dropped).
    pub proc: Daemon,
    /// Its log.
    pub log: PathBuf,
    /// Our endpoint on its bus.
    pub bus: Endpoint,
    /// The bus directory.
    pub bus_dir: PathBuf,
}

/// Starts `nemonetd -d -f MODE -b DIR/bus-TAG --state-timeout-ms 300 ARGS... eth0` in `ns`,
/// logging to DIR/nemonetd-TAG.log, and waits for its ready line.
pub fn start(ns: &Netns, mode: &str, dir: &Path, tag: &str, args: &[&str]) -> Nemonetd {
    let bus_dir = dir.join(format!("bus-{tag}"));
    std::fs::create_dir_all(&bus_dir).unwrap();
    let log = dir.join(format!("nemonetd-{tag}.log"));
    let mut cmd = ns.command(Path::new(env!("CARGO_BIN_EXE_nemonetd")));
    cmd.args(["-d", "-f", mode, "-b"])
        .arg(&bus_dir)
        .args(["--state-timeout-ms", "300"])
        .args(args)
        .arg("eth0");
    let proc = Daemon::spawn("nemonetd", cmd, &log);
    wait_for(
        &format!("nemonetd {tag} ready"),
        Duration::from_secs(20),
        || log_text(&log).contains(" ready"),
    );
    let bus = Endpoint::open(&bus_dir, "test", EndpointOptions::default()).unwrap();
    Nemonetd {
        proc,
        log,
        bus,
        bus_dir,
    }
}

/// The packets `dev` received (`dir` "rx") or sent ("tx"), from its statistics in sysfs.
pub fn link_packets(ns: &Netns, dev: &str, dir: &str) -> u64 {
    let path = format!("/sys/class/net/{dev}/statistics/{dir}_packets");
    let out = ns.exec("cat", &[&path]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{path}: {text:?}"))
}
