//! babymdd's DHCPv4 client against real DHCP servers, in network namespaces (root).
//!
//! ```text
//!   AR [eth0 192.168.77.1/24, udhcpd or dnsmasq, later radvd] ---- [eth0] MR (babymdd --dhcp)
//! ```
//!
//! The MR's link starts down; babymdd runs with `--dhcp`. The link comes up: a lease, the
//! address and default route in the kernel, MD_INFO REREG with the IPv4 CoA (no IPv6 on
//! the link yet); the time from link up to that MD_INFO is printed. Then radvd advertises
//! a prefix: MD_INFO switches to the SLAAC address (coa2 = the IPv4 one). The host's
//! /etc/resolv.conf is byte-for-byte unchanged although the server offers a DNS server.
//! Link down: the address and route are removed. Link up again: a lease again.
//!
//! Servers: busybox `udhcpd` (skipped with a message when busybox is missing) and
//! `dnsmasq --no-ping` (likewise). Namespaces are
//! `nemo-bmd-dhcp-<server>-<role>-<pid>-<n>`.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use tests::{Daemon, Netns, have, require_root, run};

use mipsock::{Body, CareOf, Endpoint, EndpointOptions, MdCommand, MdInfo};

const WAIT: Duration = Duration::from_secs(15);
const LEASE_NET: &str = "192.168.77.";

fn wait_until(what: &str, log: &Path, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !f() {
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}\nbabymdd log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
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

fn v4_lease(md: &MdInfo) -> Option<Ipv4Addr> {
    match md.coa {
        Some(CareOf::V4 { addr, .. }) if addr.to_string().starts_with(LEASE_NET) => Some(addr),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug)]
enum Server {
    Udhcpd,
    Dnsmasq,
}

/// Starts the DHCP server on `ar`'s eth0 (192.168.77.1/24, router .1, DNS .53, leases of
/// `lease` seconds; dnsmasq's minimum is 120).
fn start_server(server: Server, ar: &Netns, dir: &Path, lease: u32) -> Daemon {
    match server {
        Server::Udhcpd => {
            let conf = dir.join("udhcpd.conf");
            std::fs::write(
                &conf,
                format!(
                    "start 192.168.77.10\nend 192.168.77.50\ninterface eth0\n\
                     lease_file {}\npidfile {}\n\
                     option subnet 255.255.255.0\noption router 192.168.77.1\n\
                     option dns 192.168.77.53\noption domain example.test\n\
                     min_lease 1\noption lease {lease}\n",
                    dir.join("udhcpd.leases").display(),
                    dir.join("udhcpd.pid").display()
                ),
            )
            .unwrap();
            std::fs::write(dir.join("udhcpd.leases"), b"").unwrap();
            let mut cmd = ar.command(Path::new("busybox"));
            // -a 0: no ARP probe of the address before offering it (the lab's setting;
            // the default 2000 ms probe would be the whole lease time).
            cmd.args(["udhcpd", "-f", "-a", "0"]).arg(&conf);
            Daemon::spawn("udhcpd", cmd, &dir.join("udhcpd.log"))
        }
        Server::Dnsmasq => {
            let mut cmd = ar.command(Path::new("dnsmasq"));
            cmd.args([
                "--keep-in-foreground",
                "--no-daemon",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--no-ping",
                "--port=0",
                "--interface=eth0",
                "--bind-interfaces",
                "--dhcp-option=option:router,192.168.77.1",
                "--dhcp-option=option:dns-server,192.168.77.53",
                "--log-dhcp",
            ])
            .arg(format!(
                "--dhcp-range=192.168.77.10,192.168.77.50,255.255.255.0,{lease}"
            ))
            .arg(format!(
                "--dhcp-leasefile={}",
                dir.join("dnsmasq.leases").display()
            ))
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()));
            Daemon::spawn("dnsmasq", cmd, &dir.join("dnsmasq.log"))
        }
    }
}

/// The access router, the MR with its link down, the DHCP server and babymdd --dhcp.
struct Lab {
    tmp: tempfile::TempDir,
    log: std::path::PathBuf,
    ep: Endpoint,
    eth0: u32,
    // Dropped in this order: processes, then namespaces.
    _babymdd: Daemon,
    _server: Daemon,
    ar: Netns,
    mr: Netns,
}

/// `None` (after a message) when the server is not installed.
fn lab(server: Server, tag: &str, lease: u32) -> Option<Lab> {
    require_root();
    let program = match server {
        Server::Udhcpd => "busybox",
        Server::Dnsmasq => "dnsmasq",
    };
    if !have(program) {
        eprintln!("{program} not installed: DHCP test with {tag} skipped");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bus = tmp.path().join("bus");
    let log = tmp.path().join("babymdd.log");
    let mr = Netns::new(&format!("bmd-dhcp-{tag}-mr"));
    let ar = Netns::new(&format!("bmd-dhcp-{tag}-ar"));
    // No DAD on the MR so the SLAAC address is usable as soon as the RA arrives (the IPv6
    // side's own timing is the detector's business, not this test's).
    for key in [
        "net.ipv6.conf.default.accept_dad",
        "net.ipv6.conf.all.accept_dad",
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
        ar.name(),
    ]);
    ar.sysctl("net.ipv6.conf.all.forwarding", "1");
    ar.ip(&["link", "set", "eth0", "up"]);
    ar.ip(&["addr", "add", "192.168.77.1/24", "dev", "eth0"]);
    ar.ip(&["addr", "add", "2001:db8:a::1/64", "dev", "eth0", "nodad"]);
    let eth0 = mr.ifindex("eth0");
    let server = start_server(server, &ar, tmp.path(), lease);

    let ep = Endpoint::open(&bus, "test", EndpointOptions::default()).unwrap();
    let mut cmd = mr.command(Path::new(env!("CARGO_BIN_EXE_babymdd")));
    cmd.args(["-d", "-b"]).arg(&bus).args([
        "--hoa",
        "2001:db8:1::100",
        "--hold-down-ms",
        "300",
        "--dhcp",
        "eth0",
    ]);
    let babymdd = Daemon::spawn("babymdd", cmd, &log);
    wait_until("babymdd ready", &log, || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.contains("babymdd ready"))
    });
    // Let the DHCP server bind its socket.
    std::thread::sleep(Duration::from_millis(300));
    Some(Lab {
        tmp,
        log,
        ep,
        eth0,
        _babymdd: babymdd,
        _server: server,
        ar,
        mr,
    })
}

fn lease_then_ipv6_then_link_down(server: Server) {
    let tag = match server {
        Server::Udhcpd => "udhcpd",
        Server::Dnsmasq => "dnsmasq",
    };
    let resolv_before = std::fs::read("/etc/resolv.conf").ok();
    let Some(lab) = lab(server, tag, 600) else {
        return;
    };
    let Lab {
        tmp,
        log,
        ep,
        eth0,
        ar,
        mr,
        ..
    } = &lab;
    let (log, ep, eth0) = (log.as_path(), ep, *eth0);

    // 1. Link up: a lease, registered at once as the IPv4 CoA (no IPv6 CoA there).
    let t0 = Instant::now();
    mr.ip(&["link", "set", "eth0", "up"]);
    let md = wait_md(ep, "REREG with the leased IPv4 CoA", log, |m| {
        m.command == MdCommand::Rereg && v4_lease(m).is_some()
    });
    let elapsed = t0.elapsed();
    eprintln!(
        "{tag}: link up -> MD_INFO with the IPv4 CoA in {} ms",
        elapsed.as_millis()
    );
    let lease = v4_lease(&md).unwrap();
    assert_eq!(md.ifindex, eth0);
    let addrs = mr.ip_text(&["-4", "addr", "show", "dev", "eth0"]);
    assert!(
        addrs.contains(&format!("{lease}/24")),
        "{lease}/24 not on eth0: {addrs}"
    );
    assert!(
        !addrs.contains("valid_lft forever"),
        "the address must carry the lease lifetime: {addrs}"
    );
    let routes = mr.ip_text(&["-4", "route", "show", "default"]);
    assert!(
        routes.contains("via 192.168.77.1 dev eth0 proto dhcp") && routes.contains("metric 1000"),
        "default route: {routes}"
    );

    // 2. IPv6 arrives: the SLAAC address replaces the IPv4 CoA (after the hold-down),
    // with the IPv4 one as coa2.
    let conf = tmp.path().join("radvd.conf");
    std::fs::write(
        &conf,
        "interface eth0 {\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 4;\n  prefix 2001:db8:a::/64 { AdvOnLink on; AdvAutonomous on; };\n};\n",
    )
    .unwrap();
    let radvd = have("radvd").then(|| {
        let mut cmd = ar.command(Path::new("radvd"));
        cmd.args(["-n", "-m", "stderr", "-C"])
            .arg(&conf)
            .arg("-p")
            .arg(tmp.path().join("radvd.pid"));
        Daemon::spawn("radvd", cmd, &tmp.path().join("radvd.log"))
    });
    if radvd.is_some() {
        let md = wait_md(ep, "REREG with the SLAAC CoA", log, |m| {
            m.command == MdCommand::Rereg && matches!(m.coa, Some(CareOf::V6(_)))
        });
        let Some(CareOf::V6(coa)) = md.coa else {
            unreachable!()
        };
        assert!(
            coa.to_string().starts_with("2001:db8:a:"),
            "{coa} not from the prefix"
        );
        assert_eq!(
            md.coa2,
            Some(CareOf::V4 {
                addr: lease,
                udp_port: None
            }),
            "{md:?}"
        );
    } else {
        eprintln!("radvd not installed: the switch to IPv6 is not checked");
    }

    // 3. Link down: the lease's address and route are removed.
    mr.ip(&["link", "set", "eth0", "down"]);
    wait_until("the leased address removed", log, || {
        !mr.ip_text(&["-4", "addr", "show", "dev", "eth0"])
            .contains(&lease.to_string())
    });
    assert!(
        !mr.ip_text(&["-4", "route", "show"]).contains("proto dhcp"),
        "DHCP route left behind"
    );
    drop(radvd);

    // 4. Up again: a new lease, the IPv4 CoA again.
    let t1 = Instant::now();
    mr.ip(&["link", "set", "eth0", "up"]);
    let md = wait_md(ep, "REREG with the IPv4 CoA again", log, |m| {
        m.command == MdCommand::Rereg && v4_lease(m).is_some()
    });
    eprintln!(
        "{tag}: link up again -> MD_INFO with the IPv4 CoA in {} ms",
        t1.elapsed().as_millis()
    );
    assert_eq!(md.ifindex, eth0);

    // The server offered a DNS server and a domain; nothing was written.
    assert_eq!(
        std::fs::read("/etc/resolv.conf").ok(),
        resolv_before,
        "/etc/resolv.conf changed"
    );
    let babymdd_log = std::fs::read_to_string(log).unwrap();
    assert!(babymdd_log.contains("DHCP lease bound"), "{babymdd_log}");
}

#[test]
fn udhcpd_lease_then_ipv6_then_link_down() {
    lease_then_ipv6_then_link_down(Server::Udhcpd);
}

#[test]
fn dnsmasq_lease_then_ipv6_then_link_down() {
    lease_then_ipv6_then_link_down(Server::Dnsmasq);
}

/// A 6 s lease: renewed at T1 (3 s) by a unicast REQUEST, so the address outlives its
/// first lease time without a gap, and mrd hears nothing.
#[test]
fn udhcpd_short_lease_is_renewed() {
    let Some(lab) = lab(Server::Udhcpd, "renew", 6) else {
        return;
    };
    lab.mr.ip(&["link", "set", "eth0", "up"]);
    let md = wait_md(&lab.ep, "REREG with the leased IPv4 CoA", &lab.log, |m| {
        m.command == MdCommand::Rereg && v4_lease(m).is_some()
    });
    let lease = v4_lease(&md).unwrap();
    // Past two lease times: still there, and not a single MD_INFO more.
    let end = Instant::now() + Duration::from_secs(13);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if let Some(msg) = lab.ep.recv_timeout(left).unwrap()
            && let Body::MdInfo(md) = msg.body
        {
            panic!(
                "unexpected MD_INFO {md:?}: the lease was not renewed in time\n{}",
                std::fs::read_to_string(&lab.log).unwrap_or_default()
            );
        }
    }
    let addrs = lab.mr.ip_text(&["-4", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains(&lease.to_string()), "{lease} gone: {addrs}");
    let log = std::fs::read_to_string(&lab.log).unwrap();
    assert!(
        log.matches("DHCP lease renewed").count() >= 3,
        "expected renewals every ~3 s:\n{log}"
    );
    assert_eq!(log.matches("DHCP lease bound").count(), 1, "{log}");
}

/// RFC 2131 §4.1: before the lease, DISCOVER and REQUEST leave with source 0.0.0.0, also
/// when another interface of the MR has an IPv4 address (a UDP socket bound to the link
/// sent them from that address). Captured on the server's side of the link.
#[test]
fn discover_and_request_leave_from_0_0_0_0() {
    if !have("tshark") {
        eprintln!("tshark not installed: DHCP source address test skipped");
        return;
    }
    let Some(lab) = lab(Server::Udhcpd, "src", 600) else {
        return;
    };
    // Another interface with a global IPv4 address: the kernel's source for a UDP socket.
    // (A veth pair inside the MR: not every kernel has the dummy driver.)
    lab.mr.ip(&[
        "link", "add", "other0", "type", "veth", "peer", "name", "other1",
    ]);
    lab.mr.ip(&["addr", "add", "10.9.9.9/24", "dev", "other0"]);
    lab.mr.ip(&["link", "set", "other1", "up"]);
    lab.mr.ip(&["link", "set", "other0", "up"]);

    let pcap = lab.tmp.path().join("ar.pcap");
    let cap_log = lab.tmp.path().join("tcpdump.log");
    let mut cmd = lab.ar.command(Path::new("tcpdump"));
    cmd.args(["-n", "-U", "--immediate-mode", "-i", "eth0", "-w"])
        .arg(&pcap)
        .args(["udp", "and", "port", "67"]);
    let capture = Daemon::spawn("tcpdump", cmd, &cap_log);
    wait_until("tcpdump listening", &cap_log, || {
        std::fs::read_to_string(&cap_log).is_ok_and(|s| s.contains("listening on"))
    });

    lab.mr.ip(&["link", "set", "eth0", "up"]);
    wait_md(&lab.ep, "REREG with the leased IPv4 CoA", &lab.log, |m| {
        m.command == MdCommand::Rereg && v4_lease(m).is_some()
    });
    // SIGTERM, not the drop's SIGKILL: tcpdump writes out what it holds and exits.
    std::thread::sleep(Duration::from_millis(200));
    let mut capture = capture;
    run("kill", &["-TERM", &capture.pid().to_string()]);
    let _ = capture.wait();

    // ip.src, ip.dst and the DHCP message type of every client -> server message.
    let out = run(
        "tshark",
        &[
            "-n",
            "-r",
            pcap.to_str().unwrap(),
            "-Y",
            "udp.srcport == 68",
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "dhcp.option.dhcp",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("client -> server (ip.src ip.dst type):\n{text}");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split('\t').collect())
        .filter(|r: &Vec<&str>| r.len() == 3)
        .collect();
    let discovers: Vec<_> = rows.iter().filter(|r| r[2] == "1").collect();
    let requests: Vec<_> = rows.iter().filter(|r| r[2] == "3").collect();
    assert!(
        !discovers.is_empty(),
        "no DISCOVER captured:\n{text}\ntcpdump ({} octets of pcap): {}\nbabymdd log:\n{}",
        std::fs::metadata(&pcap).map_or(0, |m| m.len()),
        std::fs::read_to_string(&cap_log).unwrap_or_default(),
        std::fs::read_to_string(&lab.log).unwrap_or_default()
    );
    assert!(!requests.is_empty(), "no REQUEST captured:\n{text}");
    for r in discovers.iter().chain(&requests) {
        assert_eq!(r[0], "0.0.0.0", "source must be 0.0.0.0:\n{text}");
        assert_eq!(r[1], "255.255.255.255", "{text}");
    }
}
