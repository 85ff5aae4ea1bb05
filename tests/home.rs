//! Returning home (RFC 6275 §11.5.4, §10.3.2; issue 11): the real `had` with
//! `nemonetd -h` and the real `mrd`. The MR registers from a foreign link, then plugs into
//! the home link and de-registers from its home address. The home agent's answer must
//! reach it on the home link — not follow the binding's `HoA/128 dev nemo0` route into the
//! tunnel it is tearing down, even while nemonetd has not yet removed that route — the
//! router then announces its home address itself (RFC 6275 §11.5.5: unsolicited NAs,
//! Router and Override set), and the home address works natively.
//!
//! ```text
//!   mr  mip0 2001:db8:1::100/128 (away) │ home0 2001:db8:1::100/64 (at home)
//!       eth0 2001:db8:a::5 ── acc: rt :ha0 ── up0 2001:db8:f::1  ha (had, nemonetd -h)
//!       home0 ─────────────────────────────── eth0 2001:db8:1::1/64  (the home link)
//! ```

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::setup::{self, Files, files, log_of};
use tests::{Daemon, Netns, bin, require_root, veth, wait_until};

const HA: &str = "2001:db8:1::1";
const HOA: &str = "2001:db8:1::100";
const COA: &str = "2001:db8:a::5";
const LONG: Duration = Duration::from_secs(30);

fn a(ns: &Netns, addr: &str, dev: &str) {
    ns.ip(&["addr", "add", addr, "dev", dev, "nodad"]);
}

fn inject(f: &Files, args: &[&str]) {
    let out = Command::new(bin("mipsock"))
        .arg("-b")
        .arg(&f.mr_bus)
        .args(["inject", "md-info"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "mipsock inject: {out:?}");
}

fn logs(f: &Files) -> String {
    ["had", "mrd", "nemonetd-ha"]
        .iter()
        .map(|n| {
            format!(
                "==== {n}\n{}",
                log_of(&f.dir.path().join(format!("{n}.log")))
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_router_back_home_deregisters_and_gets_its_ba_on_the_home_link() {
    require_root();
    let (ha, rt, mr) = (
        Netns::new("home-ha"),
        Netns::new("home-rt"),
        Netns::new("home-mr"),
    );
    for ns in [&ha, &rt, &mr] {
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
    }
    veth(&ha, "eth0", &mr, "home0");
    veth(&ha, "up0", &rt, "ha0");
    veth(&mr, "eth0", &rt, "acc");
    a(&ha, "2001:db8:1::1/64", "eth0");
    a(&ha, "2001:db8:f::1/64", "up0");
    a(&rt, "2001:db8:f::fe/64", "ha0");
    a(&rt, "2001:db8:a::1/64", "acc");
    a(&mr, "2001:db8:a::5/64", "eth0");
    // Away: the home link is unplugged and the home address lives on mip0.
    mr.ip(&["link", "set", "home0", "down"]);
    mr.ip(&[
        "link", "add", "mip0", "type", "veth", "peer", "name", "mip0p",
    ]);
    mr.ip(&["link", "set", "mip0", "up"]);
    mr.ip(&["link", "set", "mip0p", "up"]);
    a(&mr, &format!("{HOA}/128"), "mip0");
    for ns in [&rt, &ha] {
        ns.sysctl("net.ipv6.conf.all.forwarding", "1");
    }
    ha.ip(&["-6", "route", "add", "default", "via", "2001:db8:f::fe"]);
    rt.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:1::/64",
        "via",
        "2001:db8:f::1",
    ]);
    mr.ip(&["-6", "route", "add", "default", "via", "2001:db8:a::1"]);
    assert!(
        wait_until(LONG, || mr
            .try_exec("ping", &["-c", "1", "-W", "1", HA])
            .status
            .success()),
        "no path from the foreign link to the HA"
    );

    let f = files(&[]);
    let (_had, nemonetd) = setup::start_home_agent(&ha, &f, "up0");
    let _mrd = setup::start_mrd(&mr, &f);
    let ifindex = mr.ifindex("eth0").to_string();
    inject(
        &f,
        &[
            "--command",
            "rereg",
            "--hoa",
            HOA,
            "--coa",
            COA,
            "--ifindex",
            &ifindex,
        ],
    );
    let hoa = Some(HOA.parse().unwrap());
    assert!(
        wait_until(LONG, || setup::binding(&f.ha_bus, "had", hoa).is_some()),
        "no registration from the foreign link\n{}",
        logs(&f)
    );
    // The binding's own route into the tunnel (at home, the prefixes' routes name the home
    // address as their gateway instead).
    let tunnel_route = || {
        ha.ip_text(&["-6", "route", "show", "proto", "110"])
            .lines()
            .any(|l| l.starts_with(HOA) && l.contains("dev nemo0"))
    };
    assert!(
        wait_until(LONG, tunnel_route),
        "nemonetd -h did not route the home address into the tunnel\n{}",
        logs(&f)
    );

    // What the MR says on the home link (RFC 6275 §11.5.5: its own NAs for the home
    // address once de-registered).
    let nalog = f.dir.path().join("home-link-na.log");
    let mut cmd = ha.command(Path::new("tcpdump"));
    cmd.args(["-i", "eth0", "-n", "-vv", "-l", "icmp6 and ip6[40] == 136"]);
    let tcpdump = Daemon::spawn("tcpdump", cmd, &nalog);
    assert!(
        wait_until(Duration::from_secs(10), || log_of(&nalog)
            .contains("listening on")),
        "tcpdump: {}",
        log_of(&nalog)
    );
    // Home: the home address moves to the home link, which comes up.
    mr.ip(&["addr", "del", &format!("{HOA}/128"), "dev", "mip0"]);
    mr.ip(&["link", "set", "home0", "up"]);
    a(&mr, &format!("{HOA}/64"), "home0");
    // A busy data plane (stopped here, so the race is decided): the binding's route into
    // the tunnel is still there when the BA leaves. The BA must not take it.
    nemonetd.signal("STOP");
    inject(&f, &["--command", "dereghome", "--hoa", HOA]);
    let mrd_log = f.dir.path().join("mrd.log");
    let acknowledged = wait_until(Duration::from_secs(10), || {
        log_of(&mrd_log).contains("deregistration acknowledged")
    });
    nemonetd.signal("CONT");
    assert!(
        acknowledged,
        "the de-registration BA never reached the MR on the home link\n{}",
        logs(&f)
    );
    assert!(
        wait_until(LONG, || setup::binding(&f.ha_bus, "had", hoa).is_none()),
        "had kept the binding\n{}",
        logs(&f)
    );
    assert!(wait_until(LONG, || !tunnel_route()), "{}", logs(&f));
    // The MR announced its home address itself: from the home address to all nodes,
    // Router and Override set, Solicited clear.
    let own_na = |t: &str| {
        let lines: Vec<&str> = t.lines().collect();
        lines.windows(2).any(|w| {
            w[0].contains(&format!("{HOA} > ff02::1"))
                && (w[0].contains("Flags [router, override]")
                    || w[1].contains("Flags [router, override]"))
        })
    };
    assert!(
        wait_until(Duration::from_secs(5), || own_na(&log_of(&nalog))),
        "no unsolicited NA from the MR for its home address:\n{}\n{}",
        log_of(&nalog),
        logs(&f)
    );
    tcpdump.signal("INT");
    // Native on the home link now, both ways.
    assert!(
        wait_until(LONG, || mr
            .try_exec("ping", &["-c", "1", "-W", "1", "-I", HOA, HA])
            .status
            .success()),
        "the home address does not work natively at home\n{}",
        logs(&f)
    );
    assert!(
        ha.try_exec("ping", &["-c", "1", "-W", "1", HOA])
            .status
            .success(),
        "the HA cannot reach the home address on the home link\n{}",
        logs(&f)
    );
}

/// Issue 11, the data plane at home: the real `had`, `mrd` and `nemonetd` on both sides. The
/// MR registers from a foreign link (its mobile network behind it, both families), leaves
/// it, plugs into the home link and de-registers: `nemonetd -m` puts the home address on the
/// home link itself (in time for the BA, RFC 6275 §11.5.5), `nemonetd -h` routes the mobile
/// network prefixes to it there, and a host beyond the HA reaches the mobile network over
/// IPv6 and IPv4 with the foreign link gone, so natively through the home link.
///
/// ```text
///   mnn 2001:db8:100:1::2 192.0.2.18 ── lan0 mr eth0 2001:db8:a::5 ── acc rt ha0 ── up0 ha
///                                            home0 ─────────────────────────────── eth0 ha
/// ```
#[test]
fn at_home_the_mobile_network_is_routed_natively_through_the_home_link() {
    require_root();
    let (ha, rt, mr, mnn) = (
        Netns::new("hn-ha"),
        Netns::new("hn-rt"),
        Netns::new("hn-mr"),
        Netns::new("hn-mnn"),
    );
    for ns in [&ha, &rt, &mr, &mnn] {
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
    }
    veth(&ha, "eth0", &mr, "home0");
    veth(&ha, "up0", &rt, "ha0");
    veth(&mr, "eth0", &rt, "acc");
    veth(&mnn, "eth0", &mr, "lan0");
    a(&ha, "2001:db8:1::1/64", "eth0");
    a(&ha, "2001:db8:f::1/64", "up0");
    ha.ip(&["addr", "add", "203.0.113.1/26", "dev", "eth0"]);
    ha.ip(&["addr", "add", "198.51.100.1/24", "dev", "up0"]);
    a(&rt, "2001:db8:f::fe/64", "ha0");
    rt.ip(&["addr", "add", "198.51.100.254/24", "dev", "ha0"]);
    a(&rt, "2001:db8:a::1/64", "acc");
    a(&mr, &format!("{COA}/64"), "eth0");
    a(&mr, "2001:db8:100:1::1/64", "lan0");
    mr.ip(&["addr", "add", "192.0.2.17/28", "dev", "lan0"]);
    a(&mnn, "2001:db8:100:1::2/64", "eth0");
    mnn.ip(&["addr", "add", "192.0.2.18/28", "dev", "eth0"]);
    mnn.ip(&["-6", "route", "add", "default", "via", "2001:db8:100:1::1"]);
    mnn.ip(&["route", "add", "default", "via", "192.0.2.17"]);
    mr.ip(&["link", "set", "home0", "down"]);
    mr.ip(&[
        "link", "add", "mip0", "type", "veth", "peer", "name", "mip0p",
    ]);
    mr.ip(&["link", "set", "mip0", "up"]);
    mr.ip(&["link", "set", "mip0p", "up"]);
    a(&mr, &format!("{HOA}/128"), "mip0");
    for ns in [&rt, &ha, &mr] {
        ns.sysctl("net.ipv6.conf.all.forwarding", "1");
        ns.sysctl("net.ipv4.ip_forward", "1");
    }
    ha.ip(&["-6", "route", "add", "default", "via", "2001:db8:f::fe"]);
    for dst in ["2001:db8:1::/64", "2001:db8:100::/48"] {
        rt.ip(&["-6", "route", "add", dst, "via", "2001:db8:f::1"]);
    }
    rt.ip(&["route", "add", "192.0.2.16/28", "via", "198.51.100.1"]);
    mr.ip(&["-6", "route", "add", "default", "via", "2001:db8:a::1"]);
    assert!(
        wait_until(LONG, || mr
            .try_exec("ping", &["-c", "1", "-W", "1", HA])
            .status
            .success()),
        "no path from the foreign link to the HA"
    );

    let f = files(&[]);
    let logs = || {
        format!(
            "{}\n==== nemonetd-mr\n{}",
            logs(&f),
            log_of(&f.dir.path().join("nemonetd-mr.log"))
        )
    };
    let (_had, _nemonetd_ha) = setup::start_home_agent(&ha, &f, "up0");
    let _nemonetd_mr = setup::start_mr_dataplane(&mr, &f);
    let _mrd = setup::start_mrd(&mr, &f);
    setup::inject_md_info(&f, "rereg", HOA, Some((COA, mr.ifindex("eth0"))));
    let reach = |dst: &str| {
        rt.try_exec("ping", &["-c", "1", "-W", "1", dst])
            .status
            .success()
    };
    assert!(
        wait_until(LONG, || reach("2001:db8:100:1::2") && reach("192.0.2.18")),
        "the mobile network is not reachable through the tunnel\n{}",
        logs()
    );

    // Home: the foreign link goes, the home link comes; the IPv6 default router of the home
    // link is the HA here (an RA would say so).
    mr.ip(&["link", "set", "eth0", "down"]);
    mr.ip(&["link", "set", "home0", "up"]);
    mr.ip(&[
        "-6", "route", "add", "default", "via", HA, "dev", "home0", "onlink",
    ]);
    let home0 = mr.ifindex("home0").to_string();
    inject(
        &f,
        &["--command", "dereghome", "--hoa", HOA, "--ifindex", &home0],
    );
    let mrd_log = f.dir.path().join("mrd.log");
    assert!(
        wait_until(Duration::from_secs(10), || log_of(&mrd_log)
            .contains("deregistration acknowledged")),
        "the de-registration BA never reached the MR on the home link\n{}",
        logs()
    );
    // Without waiting for a retransmission: the home address was on home0 for the first BA.
    assert!(
        !log_of(&mrd_log)
            .lines()
            .any(|l| l.contains("kind=Deregister") && l.contains("attempt=2 ")),
        "the de-registration needed a retransmission\n{}",
        logs()
    );
    assert!(
        mr.ip_text(&["-6", "addr", "show", "dev", "home0"])
            .contains(&format!("{HOA}/64")),
        "nemonetd -m did not put the home address on the home link\n{}",
        logs()
    );
    let native = || {
        let six = ha.ip_text(&["-6", "route", "show", "proto", "110"]);
        let four = ha.ip_text(&["-4", "route", "show", "proto", "110"]);
        six.contains(&format!("2001:db8:100::/48 via {HOA} dev eth0"))
            && !six.contains("nemo0")
            && four.contains(&format!("192.0.2.16/28 via inet6 {HOA} dev eth0"))
    };
    assert!(
        wait_until(LONG, native),
        "nemonetd -h did not route the prefixes to the MR on the home link\n{}",
        logs()
    );
    // The foreign link is down: whatever gets through goes through the home link.
    assert!(
        wait_until(LONG, || reach("2001:db8:100:1::2")),
        "IPv6 to the mobile network at home fails\n{}",
        logs()
    );
    assert!(
        wait_until(LONG, || reach("192.0.2.18")),
        "IPv4 to the mobile network at home fails\n{}",
        logs()
    );
}
