//! Routing the mobile prefixes onward (issue 16), black-box: BIRD 2 on the home agent
//! learns the routes of protocol 110 (what nemonetd -h installs for every registered
//! mobile network) from the kernel and announces them over BGP to a neighbour, whose
//! kernel then routes the mobile network prefix to the home agent; when the binding's
//! route goes, the announcement is withdrawn. The BIRD snippet is etc/bird-nemo.conf.
//!
//! ```text
//!   ha  up0 2001:db8:f::1 (BIRD, AS 64500) ──── eth0 2001:db8:f::2 (BIRD, AS 64501)  nbr
//! ```

use std::path::Path;
use std::time::Duration;

use tests::{Daemon, Netns, have, require_root, veth, wait_until, workspace_root};

const MNP: &str = "2001:db8:100::/48";

/// The neighbour: learns everything over BGP and puts it in its kernel.
const NEIGHBOUR: &str = "router id 192.0.2.2;
protocol device {}
protocol kernel {
  ipv6 { import none; export all; };
}
protocol bgp ha {
  local 2001:db8:f::2 as 64501;
  neighbor 2001:db8:f::1 as 64500;
  ipv6 { import all; export none; };
}
";

fn bird(ns: &Netns, conf: &Path, dir: &Path, tag: &str) -> Daemon {
    let mut cmd = ns.command(Path::new("bird"));
    cmd.arg("-f")
        .arg("-c")
        .arg(conf)
        .arg("-s")
        .arg(dir.join(format!("{tag}.ctl")))
        .arg("-P")
        .arg(dir.join(format!("{tag}.pid")));
    Daemon::spawn("bird", cmd, &dir.join(format!("bird-{tag}.log")))
}

#[test]
fn bird_announces_the_mobile_network_prefixes() {
    require_root();
    if !have("bird") {
        // .ci/run installs bird2; a developer machine without it skips.
        eprintln!("skipped: bird (package bird2) not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ha, nbr) = (Netns::new("bird-ha"), Netns::new("bird-nbr"));
    veth(&ha, "up0", &nbr, "eth0");
    ha.ip(&["addr", "add", "2001:db8:f::1/64", "dev", "up0", "nodad"]);
    nbr.ip(&["addr", "add", "2001:db8:f::2/64", "dev", "eth0", "nodad"]);
    // What nemonetd -h installs for a registered mobile network (routes.rs): the prefix
    // into its tunnel device, protocol 110. A dummy-free stand-in device: lo.
    ha.ip(&["-6", "route", "add", MNP, "dev", "lo", "proto", "110"]);
    // And a route of someone else's, which must not be announced.
    ha.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:999::/48",
        "dev",
        "lo",
        "proto",
        "static",
    ]);

    let sample = workspace_root().join("etc/bird-nemo.conf");
    let text = std::fs::read_to_string(&sample).expect("etc/bird-nemo.conf");
    let ha_conf = dir.path().join("ha.conf");
    std::fs::write(&ha_conf, text).unwrap();
    let nbr_conf = dir.path().join("nbr.conf");
    std::fs::write(&nbr_conf, NEIGHBOUR).unwrap();
    let _ha_bird = bird(&ha, &ha_conf, dir.path(), "ha");
    let _nbr_bird = bird(&nbr, &nbr_conf, dir.path(), "nbr");

    let routes = || nbr.ip_text(&["-6", "route", "show", "proto", "bird"]);
    let logs = || {
        ["ha", "nbr"]
            .iter()
            .map(|t| {
                std::fs::read_to_string(dir.path().join(format!("bird-{t}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    assert!(
        wait_until(Duration::from_secs(60), || routes().contains(MNP)),
        "the neighbour never learnt {MNP}: {}\n{}",
        routes(),
        logs()
    );
    let r = routes();
    assert!(
        r.contains("via 2001:db8:f::1"),
        "towards the home agent: {r}"
    );
    assert!(
        !r.contains("2001:db8:999::"),
        "only protocol 110 is announced: {r}"
    );
    // The binding ends (nemonetd removes the route): the announcement is withdrawn.
    ha.ip(&["-6", "route", "del", MNP, "dev", "lo", "proto", "110"]);
    assert!(
        wait_until(Duration::from_secs(30), || !routes().contains(MNP)),
        "not withdrawn: {}",
        routes()
    );
}
