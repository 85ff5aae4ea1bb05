//! DSMIPv6 (RFC 5555) end to end: the real `had`, `mrd` and `nemonetd -h` / `-m` with the
//! mobile router on an IPv4-only access network, without and behind an nftables
//! `masquerade random` NAT.
//!
//! ```text
//!  mnn ──lan0── mr ──eth0── [nat] ──acc── rt ──home── ha        rt ──cn── cn
//!  2001:db8:100::2          10.1.0.5/24          2001:db8:1::1        2001:db8:c::2
//!  192.0.2.18/28            (IPv4 only)          203.0.113.1          198.51.100.2
//! ```
//!
//! Without NAT the access link is `10.1.0.0/24` straight on rt; with NAT a `nat` namespace
//! sits in between (LAN `10.1.0.0/24` with dnsmasq, WAN `172.16.0.2/24`, `masquerade
//! random`, conntrack UDP timeouts of 5 s), and rt knows no route to `10.1.0.0/24`. Without
//! NAT the care-of address is static and reported by an injected MD_INFO; behind the NAT it
//! comes by DHCP to `babymdd --dhcp`, which reports it to mrd. nemonetd owns UDP
//! 4191 on both nodes and relays the signalling to had / mrd over the bus. Shown:
//! * the registration from the IPv4 CoA: no NAT → `InIpv4` (protocol 41 / 4) on both sides;
//!   NAT → `UdpIpv4`, had's binding at the NAT's address and port, `nat_detected`;
//! * without NAT, `force-udp-encapsulation yes` and SIGHUP to mrd: F in the BU, both
//!   nemonetd switch to UDP (MR TUN MTU 1472) without restarting, traffic flows;
//! * MNN ↔ CN ping and TCP (iperf3) over IPv4 and IPv6, both ways;
//! * tshark (`-d udp.port==4191,ipv6`) sees the BU / BA in UDP 4191 (and, behind the NAT,
//!   the data in UDP too);
//! * behind the NAT: an idle period longer than the conntrack timeout is survived by mrd's
//!   keepalive BUs (every 2 s, `nat-keepalive-interval 2`): the CN reaches the MNN after it;
//!   a mapping that does expire (the NAT drops the MR's UDP for longer than the timeout) is
//!   replaced by a new one at the next BU, which had follows (new port), and traffic
//!   flows again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mipsock::{Binding, CareOf, Encapsulation};
use tests::setup::{self, Files, log_of};
use tests::{Daemon, Netns, bin, require_root, veth, wait_until};

const HOA: &str = "2001:db8:1::100";
const MR_V4: &str = "10.1.0.5";
const NAT_WAN: &str = "172.16.0.2";
const CN6: &str = "2001:db8:c::2";
const CN4: &str = "198.51.100.2";
const MNN6: &str = "2001:db8:100::2";
const MNN4: &str = "192.0.2.18";

const LONG: Duration = Duration::from_secs(30);

struct Lab {
    ha: Netns,
    rt: Netns,
    cn: Netns,
    mr: Netns,
    mnn: Netns,
    nat: Option<Netns>,
}

fn a(ns: &Netns, addr: &str, dev: &str) {
    ns.ip(&["addr", "add", addr, "dev", dev, "nodad"]);
}

fn lab(tag: &str, with_nat: bool) -> Lab {
    let lab = Lab {
        ha: Netns::new(&format!("{tag}-ha")),
        rt: Netns::new(&format!("{tag}-rt")),
        cn: Netns::new(&format!("{tag}-cn")),
        mr: Netns::new(&format!("{tag}-mr")),
        mnn: Netns::new(&format!("{tag}-mnn")),
        nat: with_nat.then(|| Netns::new(&format!("{tag}-nat"))),
    };
    for ns in [&lab.ha, &lab.rt, &lab.cn, &lab.mr, &lab.mnn] {
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
    }
    veth(&lab.ha, "eth0", &lab.rt, "home");
    veth(&lab.cn, "eth0", &lab.rt, "cn");
    veth(&lab.mnn, "eth0", &lab.mr, "lan0");
    a(&lab.ha, "2001:db8:1::1/64", "eth0");
    a(&lab.ha, "203.0.113.1/24", "eth0");
    a(&lab.rt, "2001:db8:1::fe/64", "home");
    a(&lab.rt, "203.0.113.254/24", "home");
    a(&lab.rt, "2001:db8:c::1/64", "cn");
    a(&lab.rt, "198.51.100.1/24", "cn");
    a(&lab.cn, "2001:db8:c::2/64", "eth0");
    a(&lab.cn, "198.51.100.2/24", "eth0");
    // The whole MNP on the link: nemonetd copies its on-link route into the tunnel table,
    // so the MR's own packets to the MNN (PTB, replies) do not take the tunnel.
    a(&lab.mr, "2001:db8:100::1/48", "lan0");
    a(&lab.mr, "192.0.2.17/28", "lan0");
    a(&lab.mnn, "2001:db8:100::2/48", "eth0");
    a(&lab.mnn, "192.0.2.18/28", "eth0");
    // The mobile interface holding the home address (no dummy interfaces here).
    lab.mr.ip(&[
        "link", "add", "mip0", "type", "veth", "peer", "name", "mip0p",
    ]);
    lab.mr.ip(&["link", "set", "mip0", "up"]);
    lab.mr.ip(&["link", "set", "mip0p", "up"]);
    a(&lab.mr, &format!("{HOA}/128"), "mip0");
    match &lab.nat {
        None => {
            veth(&lab.mr, "eth0", &lab.rt, "acc");
            a(&lab.rt, "10.1.0.1/24", "acc");
        }
        Some(nat) => {
            veth(&lab.mr, "eth0", nat, "lan");
            veth(nat, "wan", &lab.rt, "acc");
            a(nat, "10.1.0.1/24", "lan");
            a(nat, "172.16.0.2/24", "wan");
            a(&lab.rt, "172.16.0.1/24", "acc");
            nat.ip(&["route", "add", "default", "via", "172.16.0.1"]);
            nat.sysctl("net.ipv4.ip_forward", "1");
            // Short conntrack UDP timeouts: a mapping dies after 5 s without packets.
            nat.sysctl("net.netfilter.nf_conntrack_udp_timeout", "5");
            nat.sysctl("net.netfilter.nf_conntrack_udp_timeout_stream", "5");
            nft(
                nat,
                "table ip nat {\n chain post {\n  type nat hook postrouting priority srcnat;\n  \
                 oifname \"wan\" masquerade random\n }\n}\n",
            );
        }
    }
    if !with_nat {
        // Static here; behind the NAT the address and default route come by DHCP.
        a(&lab.mr, &format!("{MR_V4}/24"), "eth0");
        lab.mr.ip(&["route", "add", "default", "via", "10.1.0.1"]);
    }
    for ns in [&lab.rt, &lab.ha, &lab.mr] {
        ns.sysctl("net.ipv6.conf.all.forwarding", "1");
        ns.sysctl("net.ipv4.ip_forward", "1");
    }
    lab.ha
        .ip(&["-6", "route", "add", "default", "via", "2001:db8:1::fe"]);
    lab.ha
        .ip(&["route", "add", "default", "via", "203.0.113.254"]);
    lab.cn
        .ip(&["-6", "route", "add", "default", "via", "2001:db8:c::1"]);
    lab.cn
        .ip(&["route", "add", "default", "via", "198.51.100.1"]);
    lab.mnn
        .ip(&["-6", "route", "add", "default", "via", "2001:db8:100::1"]);
    lab.mnn
        .ip(&["route", "add", "default", "via", "192.0.2.17"]);
    // The mobile network is reachable through the HA only.
    lab.rt.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:100::/48",
        "via",
        "2001:db8:1::1",
    ]);
    lab.rt
        .ip(&["route", "add", "192.0.2.16/28", "via", "203.0.113.1"]);
    if !with_nat {
        assert!(
            wait_until(LONG, || ping(&lab.mr, "203.0.113.1")),
            "the MR cannot reach the HA's IPv4 address before any daemon runs"
        );
    }
    lab
}

/// dnsmasq on the NAT's LAN side, and babymdd --dhcp on the MR: the IPv4 CoA by DHCP,
/// reported to mrd in MD_INFO (no IPv6 on the access link).
fn dhcp_and_babymdd(lab: &Lab, f: &Files) -> (Daemon, Daemon) {
    let nat = lab.nat.as_ref().unwrap();
    let d = f.dir.path();
    let mut cmd = nat.command(Path::new("dnsmasq"));
    cmd.args([
        "--keep-in-foreground",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-ping",
        "--port=0",
        "--interface=lan",
        "--bind-interfaces",
        "--dhcp-option=option:router,10.1.0.1",
        "--dhcp-range=10.1.0.50,10.1.0.99,255.255.255.0,600",
        "--log-dhcp",
    ])
    .arg(format!(
        "--dhcp-leasefile={}",
        d.join("dnsmasq.leases").display()
    ))
    .arg(format!("--pid-file={}", d.join("dnsmasq.pid").display()));
    let dnsmasq = Daemon::spawn("dnsmasq", cmd, &d.join("dnsmasq.log"));
    let babymdd = spawn(
        &lab.mr,
        f,
        "babymdd",
        "babymdd",
        &[
            "-d",
            "-f",
            "-h",
            "mip0",
            "-c",
            f.mrd_conf.to_str().unwrap(),
            "-b",
            f.mr_bus.to_str().unwrap(),
            "--dhcp",
            "eth0",
        ],
        "babymdd ready",
    );
    (dnsmasq, babymdd)
}

fn nft(ns: &Netns, rules: &str) {
    let path = std::env::temp_dir().join(format!("dsmip-nft-{}-{}", ns.name(), rules.len()));
    std::fs::write(&path, rules).unwrap();
    ns.exec("nft", &["-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(path);
}

fn ping(ns: &Netns, dst: &str) -> bool {
    ns.try_exec("ping", &["-c", "1", "-W", "1", dst])
        .status
        .success()
}

/// Pings until one answer comes back (the first packets may find a neighbour unresolved).
fn reach(ns: &Netns, dst: &str) -> bool {
    wait_until(Duration::from_secs(15), || ping(ns, dst))
}

/// A TCP connection from `client` to `server` (iperf3, 256 KiB), over `dst`.
fn tcp(client: &Netns, server: &Netns, dst: &str, dir: &Path) -> bool {
    let log = dir.join(format!("iperf3-{}-{dst}.log", server.name()));
    let mut cmd = server.command(Path::new("iperf3"));
    cmd.args(["-s", "-1"]);
    let _srv = Daemon::spawn("iperf3", cmd, &log);
    wait_until(Duration::from_secs(10), || {
        client
            .try_exec(
                "iperf3",
                &["-c", dst, "-n", "256K", "--connect-timeout", "2000"],
            )
            .status
            .success()
    })
}

/// The pair's files, with `mrd_extra` added to mrd.conf after `optimistic-handover no;`.
fn files(mrd_extra: &str) -> Files {
    setup::files(&[(
        "optimistic-handover no;",
        &format!("optimistic-handover no;\n{mrd_extra}"),
    )])
}

fn spawn(ns: &Netns, f: &Files, name: &str, tag: &str, args: &[&str], ready: &str) -> Daemon {
    setup::spawn_in(ns, f, name, tag, args, ready)
}

struct Daemons {
    _had: Daemon,
    mrd: Daemon,
    _nemonetd_ha: Daemon,
    _nemonetd_mr: Daemon,
}

fn start(lab: &Lab, f: &Files) -> Daemons {
    let nemonetd_mr = setup::start_mr_dataplane(&lab.mr, f);
    let (had, nemonetd_ha) = setup::start_home_agent(&lab.ha, f, "eth0");
    let mrd = setup::start_mrd(&lab.mr, f);
    Daemons {
        _had: had,
        mrd,
        _nemonetd_ha: nemonetd_ha,
        _nemonetd_mr: nemonetd_mr,
    }
}

/// babymdd's part: MD_INFO REREG with the IPv4 care-of address on eth0.
fn inject_v4_coa(lab: &Lab, f: &Files) {
    let ifindex =
        String::from_utf8_lossy(&lab.mr.exec("cat", &["/sys/class/net/eth0/ifindex"]).stdout)
            .trim()
            .to_string();
    let out = Command::new(bin("mipsock"))
        .arg("-b")
        .arg(&f.mr_bus)
        .args([
            "inject",
            "md-info",
            "--command",
            "rereg",
            "--hoa",
            HOA,
            "--coa",
            MR_V4,
            "--ifindex",
            &ifindex,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "mipsock inject: {out:?}");
}

/// `mipsock state --json` on a bus: the binding of `owner`.
fn binding(bus: &Path, owner: &str) -> Option<Binding> {
    setup::binding(bus, owner, None)
}

/// Starts tcpdump on rt's access interface (UDP 4191 and IP-in-IPv4).
fn capture(lab: &Lab, f: &Files, name: &str) -> (Daemon, PathBuf) {
    let pcap = f.dir.path().join(format!("{name}.pcap"));
    let mut cmd = lab.rt.command(Path::new("tcpdump"));
    cmd.args([
        "-i",
        "acc",
        "-U",
        "--immediate-mode",
        "-n",
        "-s",
        "200",
        "-w",
    ])
    .arg(&pcap)
    .args(["udp port 4191 or ip proto 41 or ip proto 4"]);
    let d = Daemon::spawn("tcpdump", cmd, &f.dir.path().join(format!("{name}.log")));
    let log = f.dir.path().join(format!("{name}.log"));
    assert!(
        wait_until(Duration::from_secs(10), || log_of(&log)
            .contains("listening on")),
        "tcpdump did not start: {}",
        log_of(&log)
    );
    (d, pcap)
}

/// tshark's one-line summaries of the capture, UDP 4191 decoded as IPv6 (DSMIPv6).
fn tshark(pcap: &Path, filter: &str) -> String {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(pcap)
        .args(["-d", "udp.port==4191,ipv6", "-Y", filter])
        .output()
        .expect("tshark");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn stop_capture(mut d: Daemon) {
    // Whatever the kernel still holds for tcpdump gets written first.
    std::thread::sleep(Duration::from_millis(500));
    d.signal("INT");
    d.wait_exit(Duration::from_secs(5));
}

fn both_ways(lab: &Lab, f: &Files, what: &str) {
    assert!(reach(&lab.mnn, CN4), "{what}: MNN -> CN IPv4");
    assert!(reach(&lab.mnn, CN6), "{what}: MNN -> CN IPv6");
    assert!(reach(&lab.cn, MNN4), "{what}: CN -> MNN IPv4");
    assert!(reach(&lab.cn, MNN6), "{what}: CN -> MNN IPv6");
    let d = f.dir.path();
    assert!(tcp(&lab.mnn, &lab.cn, CN4, d), "{what}: TCP MNN -> CN IPv4");
    assert!(tcp(&lab.mnn, &lab.cn, CN6, d), "{what}: TCP MNN -> CN IPv6");
    assert!(
        tcp(&lab.cn, &lab.mnn, MNN4, d),
        "{what}: TCP CN -> MNN IPv4"
    );
    assert!(
        tcp(&lab.cn, &lab.mnn, MNN6, d),
        "{what}: TCP CN -> MNN IPv6"
    );
}

fn logs(f: &Files) -> String {
    [
        "had",
        "mrd",
        "nemonetd-ha",
        "nemonetd-mr",
        "babymdd",
        "dnsmasq",
    ]
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
fn ipv4_only_access_without_nat() {
    require_root();
    let lab = lab("dsmip", false);
    let f = files("");
    let d = start(&lab, &f);
    let (cap, pcap) = capture(&lab, &f, "nonat");
    // The relayed signalling is visible on the HA's bus.
    let tap_log = f.dir.path().join("tap.log");
    let mut tap_cmd = Command::new(bin("mipsock"));
    tap_cmd
        .arg("-b")
        .arg(&f.ha_bus)
        .args(["tap", "--type", "mh_udp_in", "mh_udp_out"]);
    let _tap = Daemon::spawn("mipsock tap", tap_cmd, &tap_log);
    std::thread::sleep(Duration::from_millis(300));
    inject_v4_coa(&lab, &f);
    let plain = |b: &Binding| {
        b.coa
            == CareOf::V4 {
                addr: MR_V4.parse().unwrap(),
                udp_port: None,
            }
            && b.encapsulation == Encapsulation::InIpv4
            && !b.nat_detected
    };
    assert!(
        wait_until(LONG, || binding(&f.ha_bus, "had")
            .is_some_and(|b| plain(&b))
            && binding(&f.mr_bus, "mrd").is_some_and(|b| plain(&b))),
        "no plain IPv4-in-IPv4 registration:\nhad {:?}\nmrd {:?}\n{}",
        binding(&f.ha_bus, "had"),
        binding(&f.mr_bus, "mrd"),
        logs(&f)
    );
    both_ways(&lab, &f, "no NAT");
    let tap = log_of(&tap_log);
    eprintln!("mipsock tap on the HA's bus:\n{tap}");
    assert!(
        tap.contains("mh_udp_in")
            && tap.contains("from=nemonetd")
            && tap.contains("peer=10.1.0.5:4191"),
        "no relayed BU on the HA's bus:\n{tap}"
    );
    assert!(
        tap.contains("mh_udp_out") && tap.contains("from=had"),
        "no relayed BA on the HA's bus:\n{tap}"
    );

    // `force-udp-encapsulation yes` and SIGHUP: mrd re-registers with F, had answers F=1
    // (no NAT, Refresh infinite), and both nemonetd switch to UDP without a restart.
    let conf = std::fs::read_to_string(&f.mrd_conf).unwrap().replace(
        "optimistic-handover no;",
        "optimistic-handover no;\n\tforce-udp-encapsulation yes;",
    );
    std::fs::write(&f.mrd_conf, conf).unwrap();
    d.mrd.signal("HUP");
    let udp = |b: &Binding| {
        matches!(
            b.coa,
            CareOf::V4 {
                udp_port: Some(_),
                ..
            }
        ) && b.encapsulation == Encapsulation::UdpIpv4 { ha_port: 4191 }
            && !b.nat_detected
            && b.flags.contains(mipsock::BuFlags::F)
    };
    assert!(
        wait_until(LONG, || binding(&f.ha_bus, "had").is_some_and(|b| udp(&b))
            && binding(&f.mr_bus, "mrd").is_some_and(|b| udp(&b))),
        "no forced-UDP registration:\nhad {:?}\nmrd {:?}\n{}",
        binding(&f.ha_bus, "had"),
        binding(&f.mr_bus, "mrd"),
        logs(&f)
    );
    assert!(
        wait_until(Duration::from_secs(10), || String::from_utf8_lossy(
            &lab.mr.ip(&["link", "show", "nemo0"]).stdout
        )
        .contains("mtu 1472")),
        "the MR's TUN MTU should follow UDP/IPv4 (1500 - 28)"
    );
    assert!(reach(&lab.mnn, CN6), "forced UDP: MNN -> CN IPv6");
    assert!(reach(&lab.cn, MNN4), "forced UDP: CN -> MNN IPv4");
    // `mipsock state` (issue 12): an IPv4 care-of address rides the TUN data plane, which
    // counts the binding's packets; the traffic above went through it.
    let hoa = setup::HOA.parse().unwrap();
    let carried = setup::dataplane(&f.ha_bus, hoa).expect("the HA's nemonetd carries it");
    assert_eq!(
        carried.backend,
        mipsock::DataplaneBackend::Tun,
        "{carried:?}"
    );
    assert!(
        carried.packets.is_some_and(|(tx, rx)| tx > 0 && rx > 0),
        "{carried:?}"
    );
    stop_capture(cap);
    // Signalling in UDP 4191 even without NAT (perpetual NAT detection), data in IP-in-IPv4.
    let sig = tshark(&pcap, "mipv6");
    eprintln!("tshark -d udp.port==4191,ipv6 -Y mipv6:\n{sig}");
    assert!(
        sig.contains("Binding Update"),
        "no BU in UDP:\n{sig}\n{}",
        tshark(&pcap, "udp")
    );
    assert!(
        sig.contains("Binding Acknowledgement"),
        "no BA in UDP:\n{sig}"
    );
    let data = tshark(&pcap, "ip.proto == 41 || ip.proto == 4");
    assert!(!data.is_empty(), "no IP-in-IPv4 data on the access link");
    let data = tshark(&pcap, "udp.port == 4191 && icmpv6.type == 128");
    assert!(
        !data.is_empty(),
        "no ICMPv6 echo in UDP 4191 once UDP is forced:\n{}\n{}\n{}",
        log_of(&f.dir.path().join("nonat.log")),
        logs(&f),
        tshark(&pcap, "frame.number > 0")
            .lines()
            .rev()
            .take(12)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn behind_a_masquerade_nat_with_keepalives_and_rebinding() {
    require_root();
    let lab = lab("dsmipnat", true);
    let nat = lab.nat.as_ref().unwrap();
    let f = files("\tnat-keepalive-interval 2;");
    let _d = start(&lab, &f);
    let (cap, pcap) = capture(&lab, &f, "nat");
    let _dhcp = dhcp_and_babymdd(&lab, &f);
    let wan: std::net::Ipv4Addr = NAT_WAN.parse().unwrap();
    let ha_port = || match binding(&f.ha_bus, "had") {
        Some(Binding {
            coa: CareOf::V4 {
                addr,
                udp_port: Some(p),
            },
            encapsulation: Encapsulation::UdpIpv4 { ha_port: 4191 },
            nat_detected: true,
            ..
        }) if addr == wan => Some(p),
        _ => None,
    };
    assert!(
        wait_until(LONG, || ha_port().is_some()
            && binding(&f.mr_bus, "mrd").is_some_and(|b| b.encapsulation
                == Encapsulation::UdpIpv4 { ha_port: 4191 }
                && b.nat_detected)),
        "no UDP registration through the NAT:\nhad {:?}\nmrd {:?}\n{}",
        binding(&f.ha_bus, "had"),
        binding(&f.mr_bus, "mrd"),
        logs(&f)
    );
    let first_port = ha_port().unwrap();
    eprintln!(
        "had's binding behind the NAT: {:?}",
        binding(&f.ha_bus, "had")
    );
    both_ways(&lab, &f, "NAT");

    // Idle for twice the conntrack timeout: only mrd's keepalive BUs cross the NAT. The CN
    // then reaches the MNN (inbound, which needs the mapping alive).
    std::thread::sleep(Duration::from_secs(11));
    assert!(
        ping(&lab.cn, MNN4) || reach(&lab.cn, MNN4),
        "after idling past the conntrack timeout: CN -> MNN IPv4\n{}",
        logs(&f)
    );
    assert!(reach(&lab.cn, MNN6), "after idling: CN -> MNN IPv6");
    assert_eq!(ha_port(), Some(first_port), "the mapping should have lived");

    // The NAT loses the mapping: the MR's UDP is dropped for longer than the timeout.
    nft(
        nat,
        // Before conntrack (priority raw): a packet dropped later would still refresh
        // the entry.
        "table ip cut {\n chain f {\n  type filter hook prerouting priority -300;\n  \
         iifname \"lan\" udp dport 4191 drop\n }\n}\n",
    );
    std::thread::sleep(Duration::from_secs(8));
    nat.exec("nft", &["delete", "table", "ip", "cut"]);
    // The next BU (keepalive or retransmission) opens a new mapping with a new random port;
    // had follows it because the BU is authenticated.
    assert!(
        wait_until(Duration::from_secs(60), || ha_port()
            .is_some_and(|p| p != first_port)),
        "had did not follow the new NAT mapping (port still {first_port}):\n{}",
        logs(&f)
    );
    eprintln!(
        "after the NAT lost the mapping: had's binding {:?}",
        binding(&f.ha_bus, "had")
    );
    assert!(reach(&lab.cn, MNN4), "after the rebinding: CN -> MNN IPv4");
    assert!(reach(&lab.mnn, CN6), "after the rebinding: MNN -> CN IPv6");
    assert!(
        tcp(&lab.cn, &lab.mnn, MNN6, f.dir.path()),
        "after the rebinding: TCP CN -> MNN IPv6"
    );
    stop_capture(cap);

    // On the NAT's outside: BU / BA and the data, all in UDP 4191.
    let sig = tshark(&pcap, "mipv6");
    eprintln!("tshark -d udp.port==4191,ipv6 -Y mipv6:\n{sig}");
    assert!(
        sig.contains("Binding Update"),
        "no BU in UDP:\n{sig}\n{}",
        tshark(&pcap, "udp")
    );
    assert!(
        sig.contains("Binding Acknowledgement"),
        "no BA in UDP:\n{sig}"
    );
    let data = tshark(&pcap, "udp.port == 4191 && icmpv6.type == 128");
    eprintln!("ICMPv6 echo requests in UDP 4191 on the NAT's outside (first 3):");
    for l in data.lines().take(3) {
        eprintln!("{l}");
    }
    assert!(
        !data.is_empty(),
        "no ICMPv6 echo inside UDP 4191 on the NAT's outside"
    );
    let plain = tshark(&pcap, "ip.proto == 41 || ip.proto == 4");
    assert!(
        plain.is_empty(),
        "IP-in-IPv4 behind a NAT should not be used:\n{plain}"
    );
}
