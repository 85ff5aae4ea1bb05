//! The shared daemon shell (`nemo-daemon`) as the four real binaries show it:
//!
//! * `--check` means the same in babymdd and nemonetd as in had and mrd (see
//!   `registration.rs`): the configurations written from the `etc/` samples pass (exit 0,
//!   `configuration OK for ...` on stdout), a broken one exits 78 naming `file:line:`,
//!   nothing is touched (no bus directory made), no root needed;
//! * one exit-code policy: 78 for configuration errors, 2 for clap's usage errors;
//! * readiness and signals, each daemon in a namespace of its own: with `$NOTIFY_SOCKET`
//!   naming a datagram socket bound by the test, `READY=1` arrives once the daemon's ready
//!   line is logged; garbage frames on its bus do not kill it; SIGUSR1 dumps state to the
//!   log and does not kill; SIGHUP with a broken
//!   configuration is reported and the running one kept; SIGTERM sends `STOPPING=1` and
//!   exits 0.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tests::setup::{files, log_of};
use tests::{Daemon, Netns, bin, require_root, wait_until, workspace_root};

const LONG: Duration = Duration::from_secs(30);

fn run(daemon: &str, args: &[&str], paths: &[&Path]) -> Output {
    Command::new(bin(daemon))
        .args(args)
        .args(paths)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// nemonetd's own sample (keys of mrd/had are ignored, so their files serve too).
fn nemonetd_sample(dir: &Path) -> PathBuf {
    let p = dir.join("nemonetd.conf");
    std::fs::copy(workspace_root().join("nemonetd/nemonetd.conf.sample"), &p).unwrap();
    p
}

#[test]
fn check_passes_the_samples_for_babymdd_and_nemonetd_and_touches_nothing() {
    let f = files(&[]);
    let bus = f.dir.path().join("no-such-bus");
    let bus = bus.to_str().unwrap();
    let nemonetd_conf = nemonetd_sample(f.dir.path());
    let cases: [(&str, Vec<&str>, &Path, &str); 4] = [
        (
            "babymdd",
            vec!["-h", "mip0", "-b", bus],
            &f.mrd_conf,
            "mip0",
        ),
        ("nemonetd", vec!["-m", "-b", bus], &nemonetd_conf, "eth0"),
        ("nemonetd", vec!["-m", "-b", bus], &f.mrd_conf, "eth0"),
        ("nemonetd", vec!["-h", "-b", bus], &f.had_conf, "eth0"),
    ];
    for (daemon, flags, conf, subject) in cases {
        let mut args = vec!["--check"];
        args.extend(flags);
        args.push("-c");
        let mut argv: Vec<&Path> = vec![conf];
        // nemonetd's interface is a positional argument after the file.
        if daemon == "nemonetd" {
            argv.push(Path::new("eth0"));
        }
        let out = run(daemon, &args, &argv);
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{daemon} {}: {stdout}{stderr}",
            conf.display()
        );
        let ok = format!("{}: configuration OK for {subject}: ", conf.display());
        assert!(stdout.starts_with(&ok), "{daemon}: {stdout}");
        assert!(
            stdout.trim_end().ends_with("0 warnings"),
            "{daemon}: {stdout}{stderr}"
        );
    }
    // Without a file, the command line alone is checked.
    let out = run("nemonetd", &["--check", "-m", "eth0"], &[]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.starts_with("no configuration file: command line OK for eth0: "),
        "{stdout}"
    );
    assert!(
        !f.dir.path().join("no-such-bus").exists(),
        "--check made a bus"
    );
}

#[test]
fn check_refuses_a_broken_file_with_78_naming_file_and_line() {
    let f = files(&[]);
    let text_of = |p: &Path| std::fs::read_to_string(p).unwrap();
    let lines = |s: &str| s.lines().count();
    // An unknown key is an error for mrd.conf's parser (babymdd reads mrd.conf), a warning
    // for nemonetd; a missing ';' is an error for both.
    let base = text_of(&f.mrd_conf);
    let unknown = f.dir.path().join("unknown.conf");
    std::fs::write(&unknown, format!("{base}\nno-such-key 1;\n")).unwrap();
    let syntax = f.dir.path().join("syntax.conf");
    std::fs::write(&syntax, format!("{base}\nroute-table 100\n")).unwrap();
    let last = lines(&format!("{base}\n")) + 1;
    let cases: [(&str, &[&str], &Path, &str); 3] = [
        (
            "babymdd",
            &["--check", "-h", "mip0", "-c"],
            &unknown,
            "no-such-key",
        ),
        (
            "babymdd",
            &["--check", "-h", "mip0", "-c"],
            &syntax,
            "expected ';'",
        ),
        (
            "nemonetd",
            &["--check", "-m", "-c"],
            &syntax,
            "expected ';'",
        ),
    ];
    for (daemon, args, conf, what) in cases {
        let mut paths: Vec<&Path> = vec![conf];
        if daemon == "nemonetd" {
            paths.push(Path::new("eth0"));
        }
        let out = run(daemon, args, &paths);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(78), "{daemon}: {stdout}{stderr}");
        let at = format!("{daemon}: {}:{last}:", conf.display());
        assert!(
            stderr.contains(&at) && stderr.contains(what),
            "{daemon}: expected {at:?} ... {what:?} in {stderr}"
        );
        assert!(stdout.is_empty(), "{daemon}: {stdout}");
    }
    // nemonetd takes the unknown key as a warning, printed as --check prints warnings.
    let out = run(
        "nemonetd",
        &["--check", "-m", "-c"],
        &[&unknown, Path::new("eth0")],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("warning: {}:{last}:", unknown.display())),
        "{stderr}"
    );
    assert!(stdout.trim_end().ends_with("1 warnings"), "{stdout}");
}

#[test]
fn configuration_errors_exit_78_and_usage_errors_2_in_every_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.conf");
    let m = missing.to_str().unwrap();
    for (daemon, args) in [
        ("had", vec!["--check", "-c", m, "eth0"]),
        ("mrd", vec!["--check", "-c", m, "mip0"]),
        ("babymdd", vec!["--check", "-c", m]),
        ("nemonetd", vec!["--check", "-m", "-c", m, "eth0"]),
        // Not only under --check: a start with a missing file stops before touching anything.
        ("babymdd", vec!["-c", m, "-b", dir.path().to_str().unwrap()]),
    ] {
        let out = run(daemon, &args, &[]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(78), "{daemon} {args:?}: {stderr}");
        assert!(stderr.starts_with(&format!("{daemon}: ")), "{stderr}");
        assert!(stderr.contains("missing.conf"), "{stderr}");
    }
    for daemon in ["had", "mrd", "babymdd", "nemonetd"] {
        let out = run(daemon, &["--no-such-flag"], &[]);
        assert_eq!(out.status.code(), Some(2), "{daemon}");
    }
}

/// A namespace with the given links, each a veth pair inside it (the kernel here has no
/// dummy interfaces) holding its addresses.
fn namespace(tag: &str, links: &[(&str, &[&str])]) -> Netns {
    let ns = Netns::new(tag);
    ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
    ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
    for (link, addrs) in links {
        let peer = format!("{link}p");
        ns.ip(&["link", "add", link, "type", "veth", "peer", "name", &peer]);
        ns.ip(&["link", "set", link, "up"]);
        ns.ip(&["link", "set", &peer, "up"]);
        for a in *addrs {
            ns.ip(&["addr", "add", a, "dev", link, "nodad"]);
        }
    }
    ns
}

/// The socket systemd would have bound for a `Type=notify` service.
fn notify_socket(dir: &Path) -> (UnixDatagram, PathBuf) {
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(LONG)).unwrap();
    (sock, path)
}

fn next_state(sock: &UnixDatagram, name: &str, log: &Path) -> String {
    let mut buf = [0; 256];
    loop {
        match sock.recv(&mut buf) {
            Ok(n) => return String::from_utf8_lossy(&buf[..n]).into_owned(),
            // A signal for this process (another test's child ending) interrupted the wait:
            // seen once in the full suite.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("{name}: nothing on $NOTIFY_SOCKET ({e}):\n{}", log_of(log)),
        }
    }
}

/// Frames of garbage for a daemon's bus, as any process that can reach the bus could write
/// them: random octets; frames with a well-formed header (magic, version 2, a type of the
/// table or past it, the length right) around random bodies, so each message's decoder
/// meets them; headers whose length lies either way; and the empty frame. A fixed seed:
/// a failure comes back the same.
fn garbage_frames() -> Vec<Vec<u8>> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut frames = vec![Vec::new(), b"MIPS".to_vec()];
    for i in 0..120 {
        let len = (next() % 240) as usize;
        let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let frame = match i % 4 {
            0 => body,
            _ => {
                let kind = if i % 4 == 3 {
                    next() as u8
                } else {
                    (next() % 48) as u8
                };
                let claimed = match i % 8 {
                    7 => len as u32 + 1 + (next() % 1000) as u32,
                    5 => (len as u32).saturating_sub(1),
                    _ => len as u32,
                };
                let mut f = b"MIPS\x02".to_vec();
                f.push(kind);
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&claimed.to_be_bytes());
                f.extend_from_slice(&body);
                f
            }
        };
        frames.push(frame);
    }
    frames
}

/// Writes [`garbage_frames`] onto `bus` through `mipsock inject --raw-hex`, one process
/// each, as another program on the node would.
fn spray(bus: &Path) {
    for f in garbage_frames() {
        let hex: String = f.iter().map(|b| format!("{b:02x}")).collect();
        if hex.is_empty() {
            continue;
        }
        let out = Command::new(bin("mipsock"))
            .args(["inject", "-b"])
            .arg(bus)
            .args(["--raw-hex", &hex])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mipsock inject: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Starts `cmd` with `$NOTIFY_SOCKET`, then: `READY=1` only once `ready` is logged; garbage
/// on its bus (`bus`) neither kills nor stops it; SIGUSR1 dumps state and keeps it
/// running; with `conf` broken, SIGHUP is reported and changes nothing; SIGTERM sends
/// `STOPPING=1` and exits 0.
fn ready_then_signals(
    name: &str,
    mut cmd: Command,
    dir: &Path,
    ready: &str,
    conf: &Path,
    bus: &Path,
) {
    let (sock, path) = notify_socket(dir);
    cmd.env("NOTIFY_SOCKET", &path);
    let log = dir.join(format!("{name}.log"));
    let mut d = Daemon::spawn(name, cmd, &log);
    assert_eq!(next_state(&sock, name, &log), "READY=1");
    // The ready line is written before READY=1 is sent.
    assert!(log_of(&log).contains(ready), "{name}:\n{}", log_of(&log));

    // Garbage on the bus: the daemon lives on, and the state dump below shows its loop
    // still turning.
    spray(bus);
    assert!(
        wait_until(LONG, || log_of(&log)
            .contains("dropped garbage received on the bus")),
        "{name}: the garbage did not reach it:\n{}",
        log_of(&log)
    );
    assert_eq!(
        d.wait_exit(Duration::from_millis(300)),
        None,
        "{name} died of garbage on its bus:\n{}",
        log_of(&log)
    );

    d.signal("USR1");
    assert!(
        wait_until(LONG, || log_of(&log).contains("SIGUSR1")),
        "{name}: no state dump:\n{}",
        log_of(&log)
    );
    assert_eq!(
        d.wait_exit(Duration::from_millis(200)),
        None,
        "{name} died of SIGUSR1"
    );

    let good = std::fs::read_to_string(conf).unwrap();
    std::fs::write(conf, format!("{good}\nroute-table 100\n")).unwrap();
    d.signal("HUP");
    assert!(
        wait_until(LONG, || log_of(&log)
            .contains("configuration not reloaded, the running one stays")),
        "{name}: broken configuration not reported:\n{}",
        log_of(&log)
    );
    assert_eq!(
        d.wait_exit(Duration::from_millis(200)),
        None,
        "{name} died of SIGHUP"
    );

    d.signal("TERM");
    assert_eq!(next_state(&sock, name, &log), "STOPPING=1");
    assert_eq!(d.wait_exit(LONG), Some(0), "{name}:\n{}", log_of(&log));
}

#[test]
fn had_notifies_readiness_and_answers_the_signals() {
    require_root();
    let f = files(&[]);
    let ns = namespace("sh-had", &[("eth0", &["2001:db8:1::1/64"])]);
    let mut cmd = ns.command(&bin("had"));
    cmd.args(["-d", "-f", "-c"])
        .arg(&f.had_conf)
        .arg("-b")
        .arg(&f.ha_bus)
        .arg("eth0");
    ready_then_signals(
        "had",
        cmd,
        f.dir.path(),
        "had ready",
        &f.had_conf,
        &f.ha_bus,
    );
}

#[test]
fn mrd_notifies_readiness_and_answers_the_signals() {
    require_root();
    let f = files(&[]);
    let ns = namespace(
        "sh-mrd",
        &[
            ("eth0", &["2001:db8:a::5/64"]),
            ("mip0", &["2001:db8:1::100/128"]),
        ],
    );
    let mut cmd = ns.command(&bin("mrd"));
    cmd.args(["-d", "-f", "-c"])
        .arg(&f.mrd_conf)
        .arg("-b")
        .arg(&f.mr_bus)
        .arg("mip0");
    ready_then_signals(
        "mrd",
        cmd,
        f.dir.path(),
        "mrd ready",
        &f.mrd_conf,
        &f.mr_bus,
    );
}

#[test]
fn babymdd_notifies_readiness_and_answers_the_signals() {
    require_root();
    let f = files(&[]);
    let ns = namespace("sh-md", &[("eth0", &["2001:db8:a::5/64"])]);
    let mut cmd = ns.command(&bin("babymdd"));
    cmd.args(["-d", "-f", "-h", "mip0", "-c"])
        .arg(&f.mrd_conf)
        .arg("-b")
        .arg(&f.mr_bus)
        .arg("eth0");
    ready_then_signals(
        "babymdd",
        cmd,
        f.dir.path(),
        "babymdd ready",
        &f.mrd_conf,
        &f.mr_bus,
    );
}

#[test]
fn nemonetd_notifies_readiness_and_answers_the_signals() {
    require_root();
    let f = files(&[]);
    let conf = nemonetd_sample(f.dir.path());
    let ns = namespace("sh-net", &[("eth0", &["2001:db8:a::5/64"])]);
    let mut cmd = ns.command(&bin("nemonetd"));
    cmd.args(["-d", "-f", "-m", "--state-timeout-ms", "200", "-c"])
        .arg(&conf)
        .arg("-b")
        .arg(&f.mr_bus)
        .arg("eth0");
    ready_then_signals("nemonetd", cmd, f.dir.path(), " ready", &conf, &f.mr_bus);
}
