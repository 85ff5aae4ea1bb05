//! The real `babymdd` in network namespaces (needs root, as CI runs).
//!
//! `moves_between_links_and_comes_home`:
//!
//! ```text
//!   AR1 [eth0] ---- [eth0] MR [eth1] ---- [eth0] AR2
//!        2001:db8:a::/64          2001:db8:b::/64
//! ```
//!
//! The MR's addresses are static (`nodad`); the MR namespace has DAD off (link-local
//! addresses usable at once) and the kernel's own Router Solicitations off, so every RS on
//! the wire is babymdd's. The test listens on the bus with its own `mipsock::Endpoint` and
//! waits for events with timeouts; it asserts no timing.
//!
//! `ipv4_first_then_slaac_ipv6`: one access link with a static IPv4 address and radvd
//! (skipped with a message when radvd is not installed): the IPv4 CoA is reported first,
//! then the SLAAC address once its DAD is over, never while tentative.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tests::{Daemon, Netns, have, require_root};

use mipsock::{Body, CareOf, Endpoint, EndpointOptions, MdCommand, MdInfo, StateItem};

const WAIT: Duration = Duration::from_secs(15);

fn wait_file_contains(path: &Path, needle: &str, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(needle)) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the next MD_INFO on the bus that satisfies `pred`, skipping others.
fn wait_md(ep: &Endpoint, what: &str, log: &Path, pred: impl Fn(&MdInfo) -> bool) -> MdInfo {
    let end = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if let Some(msg) = ep.recv_timeout(left).expect("bus receive")
            && let Body::MdInfo(md) = msg.body
        {
            if pred(&md) {
                return md;
            }
            seen.push(md);
        }
    }
    panic!(
        "no MD_INFO {what} within {WAIT:?}; saw {seen:?}\nbabymdd log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn v6(s: &str) -> Option<CareOf> {
    Some(CareOf::V6(s.parse::<Ipv6Addr>().unwrap()))
}

/// Starts tcpdump on `ns`'s eth0 for Router Solicitations; returns once it listens.
fn capture_rs(ns: &Netns, log: &Path) -> Daemon {
    let mut cmd = ns.command(Path::new("tcpdump"));
    cmd.args(["-i", "eth0", "-n", "-l", "-v", "icmp6 and ip6[40] == 133"]);
    let p = Daemon::spawn("tcpdump", cmd, log);
    assert!(
        wait_file_contains(log, "listening on", WAIT),
        "tcpdump did not start: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    p
}

#[test]
fn moves_between_links_and_comes_home() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let bus: PathBuf = tmp.path().join("bus");
    let log = tmp.path().join("babymdd.log");

    let mr = Netns::new("bmd-move-mr");
    let ar1 = Netns::new("bmd-move-ar1");
    let ar2 = Netns::new("bmd-move-ar2");
    // Before the links exist, so "default" applies to them: link-local usable at once,
    // and no kernel RS (every RS seen is babymdd's).
    for key in [
        "net.ipv6.conf.default.accept_dad",
        "net.ipv6.conf.all.accept_dad",
        "net.ipv6.conf.default.router_solicitations",
        "net.ipv6.conf.all.router_solicitations",
    ] {
        mr.sysctl(key, "0");
    }
    mr.ip(&[
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ar1.name(),
    ]);
    mr.ip(&[
        "link",
        "add",
        "eth1",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ar2.name(),
    ]);
    for (ns, ifname) in [(&mr, "eth0"), (&mr, "eth1"), (&ar1, "eth0"), (&ar2, "eth0")] {
        ns.ip(&["link", "set", ifname, "up"]);
    }
    mr.ip(&["addr", "add", "2001:db8:a::5/64", "dev", "eth0", "nodad"]);
    mr.ip(&["addr", "add", "2001:db8:b::5/64", "dev", "eth1", "nodad"]);
    ar1.ip(&["addr", "add", "2001:db8:a::1/64", "dev", "eth0", "nodad"]);
    ar2.ip(&["addr", "add", "2001:db8:b::1/64", "dev", "eth0", "nodad"]);
    let (eth0, eth1) = (mr.ifindex("eth0"), mr.ifindex("eth1"));

    // Our ear on the bus, open before babymdd so its first message reaches us.
    let ep = Endpoint::open(&bus, "test", EndpointOptions::default()).unwrap();
    let mut cmd = mr.command(Path::new(env!("CARGO_BIN_EXE_babymdd")));
    cmd.args(["-d", "-b"]).arg(&bus).args([
        "--hoa",
        "2001:db8:1::100",
        "--hold-down-ms",
        "300",
        "--metrics",
        "[::1]:9464",
        "eth0",
        "eth1",
    ]);
    let mut babymdd = Daemon::spawn("babymdd", cmd, &log);

    // 1. Start-up: REREG from the preferred interface.
    let md = wait_md(&ep, "REREG from eth0", &log, |m| {
        m.command == MdCommand::Rereg
    });
    assert_eq!(md.coa, v6("2001:db8:a::5"), "{md:?}");
    assert_eq!(md.ifindex, eth0);
    assert_eq!(md.hoa, Some("2001:db8:1::100".parse().unwrap()));

    // 2. The preferred link goes down: REREG from eth1.
    mr.ip(&["link", "set", "eth0", "down"]);
    let md = wait_md(&ep, "REREG from eth1", &log, |m| {
        m.command == MdCommand::Rereg
    });
    assert_eq!(md.coa, v6("2001:db8:b::5"), "{md:?}");
    assert_eq!(md.ifindex, eth1);

    // 3. It comes back: an RS at once on it (seen by the access router), and once its
    // address is back and has been stable for the hold-down, REREG from eth0 again.
    let rs_log = tmp.path().join("rs.log");
    let tcpdump = have("tcpdump").then(|| capture_rs(&ar1, &rs_log));
    mr.ip(&["link", "set", "eth0", "up"]);
    if tcpdump.is_some() {
        assert!(
            wait_file_contains(&rs_log, "router solicitation", WAIT),
            "no RS on the access link: {}\nbabymdd log:\n{}",
            std::fs::read_to_string(&rs_log).unwrap_or_default(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let cap = std::fs::read_to_string(&rs_log).unwrap();
        assert!(cap.contains("hlim 255"), "RS hop limit must be 255: {cap}");
        assert!(cap.contains("ff02::2"), "RS goes to all-routers: {cap}");
    } else {
        eprintln!("tcpdump not installed: RS on link up not checked");
    }
    drop(tcpdump);
    mr.ip(&["addr", "add", "2001:db8:a::5/64", "dev", "eth0", "nodad"]);
    let md = wait_md(&ep, "REREG back on eth0", &log, |m| {
        m.command == MdCommand::Rereg
    });
    assert_eq!(md.coa, v6("2001:db8:a::5"), "{md:?}");
    assert_eq!(md.ifindex, eth0);

    // 4. eth1 is now attached to the home link: DEREGHOME.
    mr.ip(&["addr", "add", "2001:db8:1::5/64", "dev", "eth1", "nodad"]);
    let md = wait_md(&ep, "DEREGHOME", &log, |m| {
        m.command == MdCommand::Dereghome
    });
    assert_eq!(md.ifindex, eth1, "{md:?}");
    assert_eq!(md.hoa, Some("2001:db8:1::100".parse().unwrap()));
    // The metrics listener tells the same (issue 16): at home, three REREGs and a
    // DEREGHOME sent, RSs on link up.
    let metrics = mr.within(|| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect("[::1]:9464").expect("metrics listener");
        s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    });
    let value = |series: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{series} not in {metrics}"))
    };
    assert_eq!(value("babymdd_attached{attachment=\"home\"}"), 1);
    assert_eq!(value("babymdd_attached_ifindex"), u64::from(eth1));
    assert!(
        value("babymdd_md_info_total{command=\"rereg\"}") >= 3,
        "{metrics}"
    );
    assert!(
        value("babymdd_md_info_total{command=\"dereghome\"}") >= 1,
        "{metrics}"
    );

    // 5. State dump and SIGHUP tell the same.
    let answer = ep.request_state(WAIT, Some(1)).unwrap();
    let items: Vec<&StateItem> = answer.owners.iter().flat_map(|o| &o.items).collect();
    match items.as_slice() {
        [StateItem::CurrentCoa(c)] => {
            assert!(c.at_home, "{c:?}");
            assert_eq!(c.ifindex, eth1);
        }
        other => panic!("state dump: {other:?}"),
    }
    babymdd.signal("HUP");
    let md = wait_md(&ep, "DEREGHOME again after SIGHUP", &log, |_| true);
    assert_eq!(md.command, MdCommand::Dereghome, "{md:?}");

    // 6. SIGTERM: a clean exit.
    babymdd.signal("TERM");
    assert_eq!(babymdd.wait_exit(WAIT), Some(0), "babymdd exit status");
}

#[test]
fn ipv4_first_then_slaac_ipv6() {
    require_root();
    if !have("radvd") {
        eprintln!("radvd not installed (apt-get install radvd): SLAAC test skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bus = tmp.path().join("bus");
    let log = tmp.path().join("babymdd.log");
    let mr = Netns::new("bmd-slaac-mr");
    let ar = Netns::new("bmd-slaac-ar");
    // The MR keeps the kernel defaults (DAD on, accept_ra=1, forwarding=0): real SLAAC.
    mr.ip(&[
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ar.name(),
    ]);
    ar.sysctl("net.ipv6.conf.all.forwarding", "1");
    mr.ip(&["link", "set", "eth0", "up"]);
    ar.ip(&["link", "set", "eth0", "up"]);
    ar.ip(&["addr", "add", "2001:db8:a::1/64", "dev", "eth0", "nodad"]);
    mr.ip(&["addr", "add", "192.0.2.5/24", "dev", "eth0"]);
    ar.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    let eth0 = mr.ifindex("eth0");

    let ep = Endpoint::open(&bus, "test", EndpointOptions::default()).unwrap();
    let mut cmd = mr.command(Path::new(env!("CARGO_BIN_EXE_babymdd")));
    cmd.args(["-d", "-b"]).arg(&bus).args([
        "--hoa",
        "2001:db8:1::100",
        "--hold-down-ms",
        "300",
        "eth0",
    ]);
    let _babymdd = Daemon::spawn("babymdd", cmd, &log);

    // IPv4 only so far.
    let md = wait_md(&ep, "REREG from IPv4", &log, |m| {
        m.command == MdCommand::Rereg
    });
    assert_eq!(md.coa, Some("192.0.2.5".parse().unwrap()), "{md:?}");
    assert_eq!(md.ifindex, eth0);

    // Now the router advertises a prefix.
    let conf = tmp.path().join("radvd.conf");
    std::fs::write(
        &conf,
        "interface eth0 {\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 4;\n  prefix 2001:db8:a::/64 { AdvOnLink on; AdvAutonomous on; };\n};\n",
    )
    .unwrap();
    let mut cmd = ar.command(Path::new("radvd"));
    cmd.args(["-n", "-m", "stderr", "-C"])
        .arg(&conf)
        .arg("-p")
        .arg(tmp.path().join("radvd.pid"));
    let _radvd = Daemon::spawn("radvd", cmd, &tmp.path().join("radvd.log"));

    let md = wait_md(&ep, "REREG from the SLAAC address", &log, |m| {
        m.command == MdCommand::Rereg
    });
    let Some(CareOf::V6(coa)) = md.coa else {
        panic!("expected an IPv6 CoA: {md:?}");
    };
    assert!(
        "2001:db8:a::/64"
            .parse::<ipnet::Ipv6Net>()
            .unwrap()
            .contains(&coa),
        "{coa} is not from the advertised prefix"
    );
    assert_eq!(md.ifindex, eth0);
    assert_eq!(md.coa2, Some("192.0.2.5".parse().unwrap()), "{md:?}");
    // The CoA is really on eth0. (That a tentative address is never reported is shown by
    // the detector's unit tests: here DAD is over by the time we look anyway.)
    let out = mr.exec("ip", &["-6", "addr", "show", "dev", "eth0"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(&coa.to_string()))
        .unwrap_or_else(|| panic!("{coa} not on eth0: {text}"));
    assert!(!line.contains("tentative"), "{line}");
}
