//! nemonetd end to end, in network namespaces (root only):
//!
//! ```text
//!  MNN ──mnn0── MR ──eth0 (access = home-agent link)── HA ──cn0── CN
//!  2001:db8:100::2   2001:db8:a::2 (CoA)   2001:db8:a::1 (HA)   2001:db8:c::2
//!  198.51.100.2      192.0.2.2             192.0.2.1            203.0.113.2
//! ```
//!
//! Two real nemonetd processes (-m in MR, -h in HA), each on its own temporary mipsock bus;
//! the test plays mrd and had by injecting BUL_ADD / BC_ADD. Then: ping MNN <-> CN over IPv6
//! and IPv4 both ways, TCP both ways (iperf3), tshark on the MR–HA link showing IPv4 inside
//! IPv6 (next header 4), spoofed inner sources dropped and counted at the HA, removal
//! leaving no route or rule of protocol 110, SIGTERM teardown; and iperf3 throughput through
//! the tunnel against the same topology routed directly (printed, not asserted).

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

mod common;

use common::{is_root, link_packets, log_text, wait_for};
use tests::{Daemon, Netns, have, veth};

use mipsock::{
    Binding, Body, BuFlags, CareOf, Encapsulation, Endpoint, EndpointOptions, Message, StateItem,
};

static COUNTER: AtomicU32 = AtomicU32::new(0);
/// One scenario at a time: the throughput numbers should not share the CPUs with another.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What these tests need of a namespace beyond [`tests::Netns`].
trait Node {
    /// Starts `program args...` inside the namespace, output captured into `log`.
    fn spawn(&self, program: &str, args: &[&str], log: &Path) -> Daemon;
}

impl Node for Netns {
    fn spawn(&self, program: &str, args: &[&str], log: &Path) -> Daemon {
        let mut cmd = self.command(Path::new(program));
        cmd.args(args);
        Daemon::spawn(program, cmd, log)
    }
}

/// Last value of `key=N` in a log.
fn last_counter(log: &str, key: &str) -> Option<u64> {
    let pat = format!("{key}=");
    log.lines()
        .rev()
        .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix(&pat)))
        .and_then(|v| v.parse().ok())
}

struct World {
    mnn: Netns,
    mr: Netns,
    ha: Netns,
    cn: Netns,
}

fn world(test: &str) -> World {
    let w = World {
        mnn: Netns::new(&format!("nnd-{test}-mnn")),
        mr: Netns::new(&format!("nnd-{test}-mr")),
        ha: Netns::new(&format!("nnd-{test}-ha")),
        cn: Netns::new(&format!("nnd-{test}-cn")),
    };
    veth(&w.mnn, "eth0", &w.mr, "mnn0");
    veth(&w.mr, "eth0", &w.ha, "eth0");
    veth(&w.ha, "cn0", &w.cn, "eth0");
    for (ns, dev, v6, v4) in [
        (&w.mnn, "eth0", "2001:db8:100::2/64", "198.51.100.2/24"),
        (&w.mr, "mnn0", "2001:db8:100::1/64", "198.51.100.1/24"),
        (&w.mr, "eth0", "2001:db8:a::2/64", "192.0.2.2/24"),
        (&w.ha, "eth0", "2001:db8:a::1/64", "192.0.2.1/24"),
        (&w.ha, "cn0", "2001:db8:c::1/64", "203.0.113.1/24"),
        (&w.cn, "eth0", "2001:db8:c::2/64", "203.0.113.2/24"),
    ] {
        ns.ip(&["addr", "add", v6, "dev", dev, "nodad"]);
        ns.ip(&["addr", "add", v4, "dev", dev]);
    }
    for ns in [&w.mr, &w.ha] {
        ns.sysctl("net.ipv6.conf.all.forwarding", "1");
        ns.sysctl("net.ipv4.ip_forward", "1");
    }
    w.mnn
        .ip(&["-6", "route", "add", "default", "via", "2001:db8:100::1"]);
    w.mnn
        .ip(&["route", "add", "default", "via", "198.51.100.1"]);
    w.cn.ip(&["-6", "route", "add", "default", "via", "2001:db8:c::1"]);
    w.cn.ip(&["route", "add", "default", "via", "203.0.113.1"]);
    w
}

fn binding() -> Binding {
    Binding {
        hoa: "2001:db8:1::100".parse().unwrap(),
        hoa_v4: None,
        coa: CareOf::V6("2001:db8:a::2".parse().unwrap()),
        ha: "2001:db8:a::1".parse().unwrap(),
        ha_v4: Some("192.0.2.1".parse().unwrap()),
        mnp_v6: vec!["2001:db8:100::/64".parse().unwrap()],
        mnp_v4: vec!["198.51.100.0/24".parse().unwrap()],
        encapsulation: Encapsulation::InIpv6,
        lifetime: 600,
        binding_id: None,
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        nat_detected: false,
        coa_ifindex: None,
        flows: Vec::new(),
        bid_priority: 0,
    }
}

fn ping(ns: &Netns, dst: &str) -> bool {
    let fam = if dst.parse::<Ipv6Addr>().is_ok() {
        "-6"
    } else {
        "-4"
    };
    let out = ns.try_exec("ping", &[fam, "-c", "3", "-i", "0.2", "-W", "2", dst]);
    if !out.status.success() {
        eprintln!(
            "ping {dst} from {} failed:\n{}",
            ns.name(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    out.status.success()
}

/// iperf3 client against a server in `server`; returns Gbit/s received.
fn iperf(client: &Netns, server: &Netns, dst: &str, secs: &str, reverse: bool, dir: &Path) -> f64 {
    let log = dir.join(format!(
        "iperf3-server-{}.log",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _srv = server.spawn("iperf3", &["-s", "-1"], &log);
    std::thread::sleep(Duration::from_millis(300));
    let mut args = vec!["-c", dst, "-t", secs, "-J"];
    if reverse {
        args.push("-R");
    }
    let out = client.try_exec("iperf3", &args);
    assert!(
        out.status.success(),
        "iperf3 {args:?} from {}: {}{}",
        client.name(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8_lossy(&out.stdout);
    // "sum_received": { ... "bits_per_second": N ... } — avoid a JSON dependency.
    let tail = &json[json.find("\"sum_received\"").expect("sum_received")..];
    let bps = tail[tail.find("\"bits_per_second\"").unwrap()..]
        .split([':', ',', '\n'])
        .nth(1)
        .unwrap()
        .trim()
        .parse::<f64>()
        .unwrap();
    bps / 1e9
}

/// iperf3 UDP at 50 Mbit/s for 1 s; returns the receiver's loss in percent. Exercises the
/// partial checksums the TUN hands over for UDP (finished in user space).
fn iperf_udp(client: &Netns, server: &Netns, dst: &str, reverse: bool, dir: &Path) -> f64 {
    let log = dir.join(format!(
        "iperf3-server-{}.log",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _srv = server.spawn("iperf3", &["-s", "-1"], &log);
    std::thread::sleep(Duration::from_millis(300));
    let mut args = vec!["-c", dst, "-u", "-b", "50M", "-t", "1", "-J"];
    if reverse {
        args.push("-R");
    }
    let out = client.try_exec("iperf3", &args);
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "iperf3 {args:?}: {json}");
    let tail = &json[json.rfind("\"lost_percent\"").expect("lost_percent")..];
    tail.split([':', ',', '\n', '}'])
        .nth(1)
        .unwrap()
        .trim()
        .parse::<f64>()
        .unwrap()
}

struct Nemonetd {
    proc: Daemon,
    log: PathBuf,
    bus: Endpoint,
    bus_dir: PathBuf,
}

/// Starts nemonetd with `mode` (`-m`/`-h`); `offload` false adds `--no-offload` (the plain
/// TUN path), and the log must say which one runs.
fn start_nemonetd(ns: &Netns, mode: &str, dir: &Path, tag: &str, offload: bool) -> Nemonetd {
    start_nemonetd_with(ns, mode, dir, tag, offload, "auto")
}

/// [`start_nemonetd`] with `--dataplane DATAPLANE` (auto, kernel, tun).
fn start_nemonetd_with(
    ns: &Netns,
    mode: &str,
    dir: &Path,
    tag: &str,
    offload: bool,
    dataplane: &str,
) -> Nemonetd {
    let bus_dir = dir.join(format!("bus-{tag}"));
    std::fs::create_dir_all(&bus_dir).unwrap();
    let log = dir.join(format!("nemonetd-{tag}.log"));
    let mut args = vec![
        "-d",
        "-f",
        mode,
        "-b",
        bus_dir.to_str().unwrap(),
        "--state-timeout-ms",
        "300",
    ];
    if !offload {
        args.push("--no-offload");
    }
    // `kernel-srv6` / `kernel-bpf`: the kernel data plane with that encapsulation.
    match dataplane.split_once('-') {
        Some((d, encapsulation)) => {
            args.extend(["--dataplane", d, "--kernel-encapsulation", encapsulation])
        }
        None => args.extend(["--dataplane", dataplane]),
    }
    args.push("eth0");
    let proc = ns.spawn(env!("CARGO_BIN_EXE_nemonetd"), &args, &log);
    wait_for(
        &format!("nemonetd {tag} ready"),
        Duration::from_secs(20),
        || log_text(&log).contains(" ready"),
    );
    assert!(
        log_text(&log).contains(&format!("offload={offload}")),
        "offload={offload} not in {}",
        log_text(&log)
    );
    let bus = Endpoint::open(&bus_dir, "test", EndpointOptions::default()).unwrap();
    Nemonetd {
        proc,
        log,
        bus,
        bus_dir,
    }
}

/// Only ended bindings' `unreachable` routes (issue 11) among ours.
fn only_unreachable(routes: &str) -> bool {
    routes.lines().all(|l| l.starts_with("unreachable"))
}

fn routes_ours(ns: &Netns) -> String {
    let mut s = ns.ip_text(&["-4", "route", "show", "proto", "110", "table", "all"]);
    s += &ns.ip_text(&["-6", "route", "show", "proto", "110", "table", "all"]);
    // iproute2 6.1 does not filter rules by protocol: pick the lines.
    for fam in ["-4", "-6"] {
        for line in ns.ip_text(&[fam, "rule", "show"]).lines() {
            // The local table's rule, which the kernel data plane moves from 0 to 1 while
            // it runs: checked by local_rule_state.
            if line.ends_with("proto 110") && !line.contains("lookup local") {
                s += line;
                s.push('\n');
            }
        }
    }
    s
}

/// A tunnelled ICMPv6 echo MNN -> CN sent from the MR's old CoA 2001:db8:a::2, three times.
const SEND_FROM_OLD_COA: &str = r#"
import socket, struct
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 41)
s.bind(("2001:db8:a::2", 0))
a = lambda x: socket.inet_pton(socket.AF_INET6, x)
icmp = bytes([128, 0, 0, 0, 0, 1, 0, 1])
inner = struct.pack("!IHBB", 0x60000000, len(icmp), 58, 64) + a("2001:db8:100::2") + a("2001:db8:c::2") + icmp
for _ in range(3):
    s.sendto(inner, ("2001:db8:a::1", 0))
"#;

/// Tunnel packets from the MR's care-of address with link-scope inner addresses (RFC 3963
/// §6.3 lets none cross): an IPv6 source fe80::/10, destinations fe80::/10 and ff02::/16,
/// and an IPv4 source in 169.254/16. The HA drops all four.
const SEND_LINK_SCOPE: &str = r#"
import socket, struct
a = lambda x: socket.inet_pton(socket.AF_INET6, x)
icmp = bytes([128, 0, 0, 0, 0, 1, 0, 1])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 41)
s.bind(("2001:db8:a::2", 0))
for src, dst in [("fe80::1", "2001:db8:c::2"), ("2001:db8:100::2", "fe80::2"), ("2001:db8:100::2", "ff02::1")]:
    s.sendto(struct.pack("!IHBB", 0x60000000, len(icmp), 58, 64) + a(src) + a(dst) + icmp, ("2001:db8:a::1", 0))
s4 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 4)
s4.bind(("2001:db8:a::2", 0))
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 1, 0, socket.inet_aton("169.254.1.1"), socket.inet_aton("203.0.113.2"))
s4.sendto(ip + icmp, ("2001:db8:a::1", 0))
"#;

/// Ten IPv6-in-IPv6 packets from the HA's address to the MR's care-of address.
const SEND_TEN_TUNNEL_PACKETS: &str = r#"
import socket, struct
a = lambda x: socket.inet_pton(socket.AF_INET6, x)
icmp = bytes([128, 0, 0, 0, 0, 1, 0, 1])
inner = struct.pack("!IHBB", 0x60000000, len(icmp), 58, 64) + a("2001:db8:c::2") + a("2001:db8:100::2") + icmp
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 41)
s.bind(("2001:db8:a::1", 0))
for _ in range(10):
    s.sendto(inner, ("2001:db8:a::2", 0))
"#;

/// Tunnel packets to the HA that no program can take apart, from the MR's care-of
/// address: ten whose inner packet is cut short (8 octets), ten whose outer header has a
/// Destination Options header before the inner packet (where RFC 2473 §5.1's tunnel
/// encapsulation limit would be).
const SEND_MALFORMED: &str = r#"
import socket, struct
a = lambda x: socket.inet_pton(socket.AF_INET6, x)
icmp = bytes([128, 0, 0, 0, 0, 1, 0, 1])
inner = struct.pack("!IHBB", 0x60000000, len(icmp), 58, 64) + a("2001:db8:100::2") + a("2001:db8:c::2") + icmp
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 41)
s.bind(("2001:db8:a::2", 0))
d = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 60)
d.bind(("2001:db8:a::2", 0))
for _ in range(10):
    s.sendto(inner[:8], ("2001:db8:a::1", 0))
    d.sendto(bytes([41, 0, 1, 4, 0, 0, 0, 0]) + inner, ("2001:db8:a::1", 0))
"#;

/// A drop counter of the HA's data plane, from its SIGUSR1 log lines: the TUN path's
/// (`drop_…=`), the kernel path's filter's (`spoofed_inner=`, `no_binding=`, …).
fn ha_drops(ha: &Nemonetd, kernel: bool, tun_key: &str, kernel_key: &str) -> u64 {
    // SIGUSR1: the counters read afresh and logged (the kernel path's by nemonetd from its
    // filter, nftables or BPF maps alike).
    ha.proc.signal("USR1");
    std::thread::sleep(Duration::from_millis(200));
    let key = if kernel { kernel_key } else { tun_key };
    last_counter(&log_text(&ha.log), key).unwrap_or(0)
}

/// The IPv6 rules that look up the local table.
fn local_rules(ns: &Netns) -> Vec<String> {
    ns.ip_text(&["-6", "rule", "show"])
        .lines()
        .filter(|l| l.contains("lookup local"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn mnn_cn_through_the_tunnel() {
    tunnel_scenario("tun");
}

/// The same through the kernel data plane (issue 12): SRv6 encapsulation, seg6local
/// decapsulation, the nftables ingress filter; the local rule moved while it runs.
#[test]
fn mnn_cn_through_the_kernel_tunnel() {
    if tests::skip_without_kernel_dataplane("mnn_cn_through_the_kernel_tunnel") {
        return;
    }
    tunnel_scenario("kernel");
}

/// The same with the SRv6 encapsulation and the nftables filter, where the kernel has
/// SRv6 lightweight tunnels (`auto` prefers BPF).
#[test]
fn mnn_cn_through_the_kernel_tunnel_by_srv6() {
    if tests::skip_without_srv6("mnn_cn_through_the_kernel_tunnel_by_srv6") {
        return;
    }
    tunnel_scenario("kernel-srv6");
}

fn tunnel_scenario(dataplane: &str) {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let kernel = dataplane.starts_with("kernel");
    // SRv6 encapsulates (what `auto` takes where the kernel has no tcx).
    let srv6 = dataplane == "kernel-srv6" || (kernel && !tests::kernel_bpf());
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let w = world(if kernel { "ktunnel" } else { "tunnel" });

    // Baseline: the same topology routed directly (no tunnel), measured first.
    let direct = if have("iperf3") {
        w.mr.ip(&["-6", "route", "add", "default", "via", "2001:db8:a::1"]);
        w.mr.ip(&["route", "add", "default", "via", "192.0.2.1"]);
        w.ha.ip(&[
            "-6",
            "route",
            "add",
            "2001:db8:100::/64",
            "via",
            "2001:db8:a::2",
        ]);
        w.ha.ip(&["route", "add", "198.51.100.0/24", "via", "192.0.2.2"]);
        assert!(ping(&w.mnn, "2001:db8:c::2"), "direct path broken");
        let v6 = iperf(&w.mnn, &w.cn, "2001:db8:c::2", "3", false, dir.path());
        let v4 = iperf(&w.mnn, &w.cn, "203.0.113.2", "3", false, dir.path());
        w.mr.ip(&["-6", "route", "del", "default", "via", "2001:db8:a::1"]);
        w.mr.ip(&["route", "del", "default", "via", "192.0.2.1"]);
        w.ha.ip(&[
            "-6",
            "route",
            "del",
            "2001:db8:100::/64",
            "via",
            "2001:db8:a::2",
        ]);
        w.ha.ip(&["route", "del", "198.51.100.0/24", "via", "192.0.2.2"]);
        Some((v6, v4))
    } else {
        eprintln!("iperf3 not installed: no throughput measurement");
        None
    };
    assert!(
        !ping(&w.mnn, "2001:db8:c::2"),
        "path must need the tunnel now"
    );

    // A stale route and rule of protocol 110, as a crashed run would leave: flushed at start.
    w.mr.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:dead::/64",
        "dev",
        "mnn0",
        "table",
        "100",
        "proto",
        "110",
    ]);
    w.mr.ip(&[
        "-6",
        "rule",
        "add",
        "from",
        "2001:db8:dead::/64",
        "lookup",
        "100",
        "priority",
        "20100",
        "protocol",
        "110",
    ]);

    let mut mr = start_nemonetd_with(&w.mr, "-m", dir.path(), "mr", true, dataplane);
    let mut ha = start_nemonetd_with(&w.ha, "-h", dir.path(), "ha", true, dataplane);
    assert_eq!(routes_ours(&w.mr), "", "stale state not flushed at start");
    if kernel {
        // Moved behind the decapsulation rules while the kernel data plane runs.
        assert_eq!(
            local_rules(&w.mr),
            ["1:\tfrom all lookup local proto 110"],
            "{}",
            log_text(&mr.log)
        );
        assert!(log_text(&mr.log).contains("data plane: kernel for IPv6 outer headers"));
    }

    let b = binding();
    mr.bus.send(&Message::new(Body::BulAdd(b.clone()))).unwrap();
    ha.bus.send(&Message::new(Body::BcAdd(b.clone()))).unwrap();
    wait_for("routes on both sides", Duration::from_secs(10), || {
        let m = routes_ours(&w.mr);
        let h = routes_ours(&w.ha);
        m.contains("198.51.100.0/24")
            && m.contains("from 2001:db8:100::/64")
            && h.contains("198.51.100.0/24")
    });
    eprintln!("MR state:\n{}", routes_ours(&w.mr));
    eprintln!("HA state:\n{}", routes_ours(&w.ha));
    let dev = if kernel { "nemo0k" } else { "nemo0" };
    let mtu = w.mr.ip_text(&["link", "show", dev]);
    assert!(mtu.contains("mtu 1460"), "{dev} MTU = 1500 - 40: {mtu}");

    // tshark on the MR–HA link while IPv4 crosses it: IPv4 inside IPv6 (next header 4).
    let capture = if have("tshark") {
        let log = dir.path().join("tshark.txt");
        let p = w.ha.spawn(
            "tshark",
            &[
                "-l",
                "-n",
                "-i",
                "eth0",
                "-f",
                "ip6 proto 4",
                "-c",
                "2",
                "-a",
                "duration:15",
                "-T",
                "fields",
                "-e",
                "ipv6.src",
                "-e",
                "ipv6.dst",
                "-e",
                "ipv6.nxt",
                "-e",
                "ip.src",
                "-e",
                "ip.dst",
                "-e",
                "ipv6.hlim",
                "-e",
                "ipv6.plen",
                "-e",
                "ip.len",
            ],
            &log,
        );
        wait_for("tshark capturing", Duration::from_secs(15), || {
            log_text(&log).contains("Capturing on")
        });
        Some((p, log))
    } else {
        eprintln!("tshark not installed: no capture");
        None
    };

    // Path MTU: the TUN MTU is 1460, so the MR's kernel answers oversized packets with
    // fragmentation needed / Packet Too Big (sent from the MR's MNP-side address: the
    // on-link MNP routes in table T keep it out of the tunnel), and 1460 octets pass.
    let big4 = w.mnn.try_exec(
        "ping",
        &[
            "-4",
            "-c",
            "3",
            "-i",
            "0.3",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            "1472",
            "203.0.113.2",
        ],
    );
    let text =
        String::from_utf8_lossy(&big4.stdout).to_string() + &String::from_utf8_lossy(&big4.stderr);
    // (Three tries: an ICMP error can fall to the kernel's rate limit, shared with
    // the tests running beside this one.)
    assert!(
        text.contains("mtu = 1460") || text.contains("mtu=1460"),
        "no frag-needed with mtu 1460: {text}"
    );
    let big6 = w.mnn.try_exec(
        "ping",
        &[
            "-6",
            "-c",
            "3",
            "-i",
            "0.3",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            "1452",
            "2001:db8:c::2",
        ],
    );
    let text =
        String::from_utf8_lossy(&big6.stdout).to_string() + &String::from_utf8_lossy(&big6.stderr);
    assert!(
        text.contains("mtu=1460") || text.contains("mtu = 1460"),
        "no Packet Too Big with mtu 1460: {text}"
    );
    for (fam, size, dst) in [
        ("-4", "1432", "203.0.113.2"),
        ("-6", "1412", "2001:db8:c::2"),
    ] {
        let out = w.mnn.try_exec(
            "ping",
            &[fam, "-c", "2", "-W", "2", "-M", "do", "-s", size, dst],
        );
        assert!(
            out.status.success(),
            "1460-octet packets to {dst}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // The other way: the HA's device towards the tunnel has its MTU too, so the CN hears
    // Packet Too Big from the HA.
    let out = w.cn.try_exec(
        "ping",
        &[
            "-6",
            "-c",
            "1",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            "1452",
            "2001:db8:100::2",
        ],
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("mtu=1460") || text.contains("mtu = 1460"),
        "no Packet Too Big from the HA: {text}"
    );
    // Up to 8000 octets: IPv4 without DF fragmented before the tunnel, IPv6 fragmented by
    // the source after the Packet Too Big above; both ways.
    for (ns, fam, dst) in [
        (&w.mnn, "-4", "203.0.113.2"),
        (&w.cn, "-4", "198.51.100.2"),
        (&w.mnn, "-6", "2001:db8:c::2"),
        (&w.cn, "-6", "2001:db8:100::2"),
    ] {
        let out = ns.try_exec(
            "ping",
            &[
                fam, "-c", "3", "-i", "0.2", "-W", "2", "-M", "dont", "-s", "8000", dst,
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains(" 0 received"),
            "8000-octet pings to {dst}: {text}"
        );
    }
    // ICMP errors beyond the tunnel come back through it: hop limit 2 runs out at the HA.
    // The kernel's SRv6 encapsulation copies the hop limit left (1) into the outer header
    // instead, so the packet runs out at the tunnel entry; the MR reports that to the MNN
    // as its Destination Unreachable (RFC 2473 §8). The BPF encapsulation (`auto` where
    // the kernel has tcx) writes the tunnel's hop limit, as TUN does.
    let out = w.mnn.try_exec(
        "ping",
        &["-6", "-c", "1", "-W", "2", "-t", "2", "2001:db8:c::2"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    if srv6 {
        assert!(
            text.contains("Destination unreachable") && text.contains("2001:db8:100::1"),
            "no Destination Unreachable from the MR: {text}"
        );
    } else {
        assert!(
            text.contains("Time exceeded") && text.contains("2001:db8:a::1"),
            "no Time Exceeded from the HA: {text}"
        );
    }
    assert!(ping(&w.mnn, "203.0.113.2"), "MNN -> CN IPv4");
    assert!(ping(&w.mnn, "2001:db8:c::2"), "MNN -> CN IPv6");
    assert!(ping(&w.cn, "198.51.100.2"), "CN -> MNN IPv4");
    assert!(ping(&w.cn, "2001:db8:100::2"), "CN -> MNN IPv6");
    // The MR's own IPv4 traffic leaves through the tunnel with its MNP-side source.
    assert!(ping(&w.mr, "203.0.113.2"), "MR -> CN IPv4 (own traffic)");

    if let Some((mut p, log)) = capture {
        p.wait_exit(Duration::from_secs(15));
        let text = log_text(&log);
        eprintln!(
            "tshark (outer src, outer dst, next header, inner src, inner dst, outer hop limit, \
             outer payload length, inner total length):\n{text}"
        );
        // RFC 2473 §3: the outer header's payload is the whole inner packet, its hop limit
        // the tunnel's (`tunnel-hop-limit`, 64), whichever data plane wrote it.
        let outer = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("2001:db8:a::2\t2001:db8:a::1\t4\t198.51.100.2\t203.0.113.2\t")
            })
            .expect("no IPv4-in-IPv6 packet MNN -> CN seen on the MR-HA link");
        let f: Vec<&str> = outer.split('\t').collect();
        assert!(
            f.len() == 3 && f[0] == "64" && f[1] == f[2],
            "outer header (hop limit, payload length, inner length): {f:?}"
        );
    }

    if have("iperf3") {
        for (dst, rev) in [
            ("2001:db8:c::2", false),
            ("2001:db8:c::2", true),
            ("203.0.113.2", false),
            ("203.0.113.2", true),
        ] {
            let g = iperf(&w.mnn, &w.cn, dst, "1", rev, dir.path());
            assert!(g > 0.0, "TCP {dst} reverse={rev}");
            let lost = iperf_udp(&w.mnn, &w.cn, dst, rev, dir.path());
            assert!(lost < 10.0, "UDP {dst} reverse={rev}: {lost}% lost");
        }
    }

    // Spoofed inner sources from the MR side: a misrouting MR sends foreign sources into the
    // tunnel; the HA drops and counts them.
    w.mnn.ip(&[
        "addr",
        "add",
        "2001:db8:dead::7/128",
        "dev",
        "eth0",
        "nodad",
    ]);
    w.mnn.ip(&["addr", "add", "192.0.2.77/32", "dev", "eth0"]);
    w.mr.ip(&[
        "-6",
        "rule",
        "add",
        "from",
        "2001:db8:dead::/64",
        "lookup",
        "100",
        "priority",
        "100",
    ]);
    w.mr.ip(&[
        "rule",
        "add",
        "from",
        "192.0.2.77",
        "lookup",
        "100",
        "priority",
        "100",
    ]);
    let _ = w.mnn.try_exec(
        "ping",
        &[
            "-6",
            "-c",
            "2",
            "-i",
            "0.2",
            "-W",
            "1",
            "-I",
            "2001:db8:dead::7",
            "2001:db8:c::2",
        ],
    );
    let _ = w.mnn.try_exec(
        "ping",
        &[
            "-4",
            "-c",
            "2",
            "-i",
            "0.2",
            "-W",
            "1",
            "-I",
            "192.0.2.77",
            "203.0.113.2",
        ],
    );
    wait_for("HA counters", Duration::from_secs(5), || {
        ha_drops(&ha, kernel, "drop_spoofed_inner", "spoofed_inner") >= 4
    });
    w.mr.ip(&["-6", "rule", "del", "priority", "100"]);
    w.mr.ip(&["rule", "del", "priority", "100"]);
    // Link-scope inner addresses from the live care-of address: dropped and counted.
    let link_before = ha_drops(&ha, kernel, "drop_link_scope", "link_scope");
    w.mr.exec("python3", &["-c", SEND_LINK_SCOPE]);
    wait_for(
        "HA drops link-scope inner packets",
        Duration::from_secs(5),
        || ha_drops(&ha, kernel, "drop_link_scope", "link_scope") >= link_before + 4,
    );

    // BPF sends what it encapsulates straight to the uplink, and decapsulates at the
    // uplink's ingress: nothing of the traffic so far (pings both ways, TCP through
    // iperf3) crossed the pair's far side on either end, either way (SRv6 sends every
    // packet through it).
    if kernel && !srv6 {
        for (end, ns) in [("MR", &w.mr), ("HA", &w.ha)] {
            let (rx, tx) = (
                link_packets(ns, "nemo0kx", "rx"),
                link_packets(ns, "nemo0kx", "tx"),
            );
            assert!(
                rx < 10 && tx < 10,
                "{end}: {rx} packets into nemo0kx, {tx} out of it"
            );
        }
    }

    // Tunnel packets no program can take apart (cut short; an extension header first)
    // are dropped, the cut ones counted: none goes on unstripped through the pair, where
    // the decapsulation rule would send it round again until its hop limit ran out (63
    // times each, measured before the programs dropped them).
    if kernel && !srv6 {
        let before = ha_drops(&ha, kernel, "drop_malformed", "malformed");
        let sent_before = link_packets(&w.ha, "nemo0kx", "tx");
        w.mr.exec("python3", &["-c", SEND_MALFORMED]);
        wait_for(
            "HA drops the cut tunnel packets",
            Duration::from_secs(5),
            || ha_drops(&ha, kernel, "drop_malformed", "malformed") >= before + 10,
        );
        let sent = link_packets(&w.ha, "nemo0kx", "tx") - sent_before;
        assert!(sent < 10, "{sent} packets sent round through the pair");
    }

    // Throughput through the tunnel, same run as the direct measurement.
    if let Some((d6, d4)) = direct {
        let t6 = iperf(&w.mnn, &w.cn, "2001:db8:c::2", "3", false, dir.path());
        let t4 = iperf(&w.mnn, &w.cn, "203.0.113.2", "3", false, dir.path());
        println!(
            "THROUGHPUT MNN->CN TCP, IPv6: direct {d6:.2} Gbit/s, {dataplane} tunnel {t6:.2} Gbit/s, ratio {:.2}",
            t6 / d6
        );
        println!(
            "THROUGHPUT MNN->CN TCP, IPv4: direct {d4:.2} Gbit/s, {dataplane} tunnel {t4:.2} Gbit/s (IPv4-in-IPv6), ratio {:.2}",
            t4 / d4
        );
    }

    // A move: new CoA on the MR's link; routes untouched, traffic follows.
    w.mr.ip(&["addr", "add", "2001:db8:a::3/64", "dev", "eth0", "nodad"]);
    let before_mr = routes_ours(&w.mr);
    let before_ha = routes_ours(&w.ha);
    let mut moved = b.clone();
    moved.coa = CareOf::V6("2001:db8:a::3".parse().unwrap());
    mr.bus
        .send(&Message::new(Body::BulAdd(moved.clone())))
        .unwrap();
    ha.bus
        .send(&Message::new(Body::BcAdd(moved.clone())))
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    if kernel {
        // The tunnel's far end on the HA and our end on the MR follow the CoA.
        let (m, h) = (routes_ours(&w.mr), routes_ours(&w.ha));
        if !srv6 {
            // BPF: the far end is in the program's map, whose changes the log lists.
            let log = log_text(&ha.log);
            assert!(
                log.contains("-> 2001:db8:a::3 hoplimit")
                    && log.contains("route removed")
                    && !h.contains("2001:db8:a::2"),
                "{h}\n{log}"
            );
        } else {
            assert!(
                h.contains("segs 1 [ 2001:db8:a::3 ]") && !h.contains("2001:db8:a::2"),
                "{h}"
            );
        }
        assert!(
            m.contains("to 2001:db8:a::3 fwmark 0/0x400000 ipproto")
                && !m.contains("2001:db8:a::2"),
            "{m}"
        );
    } else {
        assert_eq!(routes_ours(&w.mr), before_mr);
        assert_eq!(routes_ours(&w.ha), before_ha);
    }
    assert!(ping(&w.mnn, "2001:db8:c::2"), "after the move");
    assert!(ping(&w.cn, "198.51.100.2"), "after the move, IPv4");
    // The old CoA is no longer accepted at the HA: a tunnelled packet from it, with an
    // inner source of the MR's own network, is dropped as from an unknown outer source.
    let unknown_before = ha_drops(&ha, kernel, "drop_unknown_outer", "no_binding");
    w.mr.exec("python3", &["-c", SEND_FROM_OLD_COA]);
    wait_for("HA drops the old CoA", Duration::from_secs(5), || {
        ha_drops(&ha, kernel, "drop_unknown_outer", "no_binding") >= unknown_before + 3
    });

    // Removal: nothing of ours left.
    mr.bus
        .send(&Message::new(Body::BulRemove(moved.clone())))
        .unwrap();
    ha.bus.send(&Message::new(Body::BcRemove(moved))).unwrap();
    wait_for("routes removed", Duration::from_secs(10), || {
        routes_ours(&w.mr).is_empty() && only_unreachable(&routes_ours(&w.ha))
    });
    assert!(!ping(&w.mnn, "2001:db8:c::2"), "no tunnel after removal");
    // The HA keeps the ended mobile network unreachable (issue 11): the CN is told at once.
    let out =
        w.cn.try_exec("ping", &["-6", "-c", "1", "-W", "3", "2001:db8:100::2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("unreachable") || text.contains("Unreachable"),
        "no Destination Unreachable for the ended binding's network: {text}\n{}",
        routes_ours(&w.ha)
    );

    // SIGTERM: clean exit, TUN gone.
    mr.bus.send(&Message::new(Body::BulAdd(b.clone()))).unwrap();
    wait_for("MR routes back", Duration::from_secs(10), || {
        !routes_ours(&w.mr).is_empty()
    });
    mr.proc.signal("TERM");
    assert_eq!(
        mr.proc.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        log_text(&mr.log)
    );
    assert_eq!(routes_ours(&w.mr), "", "SIGTERM left state behind");
    for dev in ["nemo0", "nemo0k", "nemo0kx"] {
        assert!(
            !w.mr.try_exec("ip", &["link", "show", dev]).status.success(),
            "{dev} left behind"
        );
    }
    // The local rule back where the kernel keeps it, the filter gone.
    assert_eq!(local_rules(&w.mr), ["0:\tfrom all lookup local"]);
    for family in ["ip6", "netdev"] {
        assert!(
            !w.mr
                .try_exec("nft", &["list", "table", family, "nemonetd"])
                .status
                .success(),
            "nft table {family} nemonetd left behind"
        );
    }
    ha.proc.signal("TERM");
    assert_eq!(ha.proc.wait_exit(Duration::from_secs(10)), Some(0));
    assert_eq!(local_rules(&w.ha), ["0:\tfrom all lookup local"]);
}

/// DSMIPv6 from an IPv4 care-of address (RFC 5555 §4.1): IPv4 and IPv6 of the mobile
/// network in plain IPv4 (protocol 4/41), then, after a re-registration, in UDP/IPv4 port
/// 4191; the TUN MTU follows the encapsulation (1480, then 1472).
/// A TCP transfer through the tunnel, checked end to end: the receiver sends back the
/// SHA-256 of what it got, the sender compares it with its own. `server PORT` accepts two
/// connections; `client ADDR PORT OCTETS` sends that many random octets.
const TRANSFER: &str = r#"
import hashlib, os, socket, sys
if sys.argv[1] == "server":
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", int(sys.argv[2])))
    s.listen(2)
    print("listening", flush=True)
    for _ in range(2):
        c, _ = s.accept()
        h = hashlib.sha256()
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            h.update(b)
        c.sendall(h.hexdigest().encode())
        c.close()
else:
    dst, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    c = socket.create_connection((dst, port), timeout=20)
    h = hashlib.sha256()
    left = n
    while left:
        b = os.urandom(min(left, 1 << 16))
        c.sendall(b)
        h.update(b)
        left -= len(b)
    c.shutdown(socket.SHUT_WR)
    got = c.recv(64).decode()
    sys.exit(0 if got == h.hexdigest() else "sha256 differs: %s, sent %s" % (got, h.hexdigest()))
"#;

/// TCP through the UDP/IPv4 tunnel (RFC 5555, as behind a NAT) with the TUN offloads on:
/// the super-packets the kernel hands the TUN reader are cut and leave through UDP
/// segmentation offload, several tunnel packets per send (UDP sends counted, fewer than
/// tunnel packets sent), are taken apart again from the coalesced reads at the other end,
/// and arrive whole and without retransmissions to speak of, both ways.
#[test]
fn tcp_through_the_udp_tunnel_leaves_by_segmentation_offload() {
    if !is_root() || !have("python3") || !have("nstat") {
        eprintln!("skipped: needs root, python3 and nstat");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let w = world("udpgso");
    let mr = start_nemonetd(&w.mr, "-m", dir.path(), "mr", true);
    let ha = start_nemonetd(&w.ha, "-h", dir.path(), "ha", true);
    let mut b = binding();
    b.coa = CareOf::V4 {
        addr: "192.0.2.2".parse().unwrap(),
        udp_port: Some(4191),
    };
    b.encapsulation = Encapsulation::UdpIpv4 { ha_port: 4191 };
    mr.bus.send(&Message::new(Body::BulAdd(b.clone()))).unwrap();
    ha.bus.send(&Message::new(Body::BcAdd(b.clone()))).unwrap();
    wait_for("the UDP tunnel", Duration::from_secs(10), || {
        w.mr.ip_text(&["link", "show", "nemo0"])
            .contains("mtu 1472")
            && routes_ours(&w.ha).contains("198.51.100.0/24")
    });
    assert!(ping(&w.mnn, "203.0.113.2"), "MNN -> CN IPv4");
    let script = dir.path().join("transfer.py");
    std::fs::write(&script, TRANSFER).unwrap();
    let script = script.to_str().unwrap();
    for (tag, from, to, end, dsts) in [
        ("up", &w.mnn, &w.cn, &w.mr, ["2001:db8:c::2", "203.0.113.2"]),
        (
            "down",
            &w.cn,
            &w.mnn,
            &w.ha,
            ["2001:db8:100::2", "198.51.100.2"],
        ),
    ] {
        let log = dir.path().join(format!("server-{tag}.log"));
        let _server = to.spawn("python3", &[script, "server", "5001"], &log);
        wait_for("transfer server", Duration::from_secs(10), || {
            log_text(&log).contains("listening")
        });
        let datagrams = end.nstat("UdpOutDatagrams");
        let log_of = if tag == "up" { &mr.log } else { &ha.log };
        let packets = || last_counter(&log_text(log_of), "tx_packets").unwrap_or(0);
        let nemonetd = if tag == "up" { &mr } else { &ha };
        nemonetd.proc.signal("USR1");
        std::thread::sleep(Duration::from_millis(200));
        let sent = packets();
        for dst in dsts {
            let out = from.try_exec("python3", &[script, "client", dst, "5001", "8000000"]);
            assert!(
                out.status.success(),
                "{tag} to {dst}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        nemonetd.proc.signal("USR1");
        std::thread::sleep(Duration::from_millis(200));
        let packets = packets() - sent;
        let datagrams = end.nstat("UdpOutDatagrams") - datagrams;
        assert!(
            // One-packet sends go by the raw socket, outside the UDP counters.
            packets > 10_000 && datagrams > 0 && datagrams * 4 < packets,
            "{tag}: {packets} tunnel packets in {datagrams} UDP sends: no segmentation offload"
        );
        assert!(!log_text(log_of).contains("segmentation offload refused"));
        // The other end took them apart from coalesced reads, and both ends count it.
        let (receiver, receiver_log) = if tag == "up" {
            (&ha, &ha.log)
        } else {
            (&mr, &mr.log)
        };
        receiver.proc.signal("USR1");
        std::thread::sleep(Duration::from_millis(200));
        let gro = last_counter(&log_text(receiver_log), "udp_gro_reads").unwrap_or(0);
        assert!(gro > 0, "{tag}: no coalesced read at the receiving end");
        let gso = last_counter(&log_text(log_of), "udp_gso_sends").unwrap_or(0);
        assert!(gso > 0, "{tag}: no segmentation offload send counted");
        // 16 MB in segments of about 1,400 octets are some 11,500 tunnel packets; a
        // receiver that lost part of each coalesced read (it once took one for a single
        // datagram) made TCP send more than twice as many, and take minutes.
        assert!(
            packets < 15_000,
            "{tag}: {packets} tunnel packets for 16 MB: retransmissions"
        );
    }
}

/// TCP through the TUN data plane's IPv6 tunnel leaves through the GRO device (`nemo0o`):
/// on a veth link, which merges nothing itself, the home agent still reads merged tunnel
/// packets (the MR's kernel forwarded each super-packet once), and 8 MB arrive whole.
#[test]
fn tcp_leaves_the_tun_data_plane_merged_by_its_gro_device() {
    if !is_root() || !have("python3") {
        eprintln!("skipped: needs root and python3");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let w = world("grodev");
    let mr = start_nemonetd_with(&w.mr, "-m", dir.path(), "mr", true, "tun");
    let ha = start_nemonetd_with(&w.ha, "-h", dir.path(), "ha", true, "tun");
    assert!(
        log_text(&mr.log).contains("through a GRO device"),
        "no GRO device: {}",
        log_text(&mr.log)
    );
    mr.bus.send(&Message::new(Body::BulAdd(binding()))).unwrap();
    ha.bus.send(&Message::new(Body::BcAdd(binding()))).unwrap();
    wait_for("the tunnel", Duration::from_secs(10), || {
        routes_ours(&w.ha).contains("198.51.100.0/24") && ping(&w.mnn, "2001:db8:c::2")
    });
    let script = dir.path().join("transfer.py");
    std::fs::write(&script, TRANSFER).unwrap();
    let script = script.to_str().unwrap();
    let log = dir.path().join("server.log");
    let _server = w.cn.spawn("python3", &[script, "server", "5001"], &log);
    wait_for("transfer server", Duration::from_secs(10), || {
        log_text(&log).contains("listening")
    });
    for dst in ["2001:db8:c::2", "203.0.113.2"] {
        let out = w.mnn.try_exec(
            "timeout",
            &["60", "python3", script, "client", dst, "5001", "8000000"],
        );
        assert!(
            out.status.success(),
            "to {dst}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ha.proc.signal("USR1");
    std::thread::sleep(Duration::from_millis(200));
    let merged = last_counter(&log_text(&ha.log), "merged_reads").unwrap_or(0);
    assert!(merged > 0, "the HA read no merged tunnel packet");
}

/// Makes the MR-HA link behave as two network cards and a wire rather than a veth pair:
/// packets cross it segmented (no TSO), and each end's GRO merges what it receives in a
/// NAPI thread of its own, as a card's interrupt batches packets. Tunnel packets of one TCP
/// flow then arrive merged (`SKB_GSO_IPXIP6` / `IPXIP4`), as on any real card.
fn like_network_cards(w: &World) {
    for ns in [&w.mr, &w.ha] {
        ns.exec("ethtool", &["-K", "eth0", "tso", "off", "gro", "on"]);
        ns.exec("sh", &["-c", "echo 1 > /sys/class/net/eth0/threaded"]);
    }
}

/// nemonetd on the MR and on the HA, logs and buses tagged `mr-TAG` and `ha-TAG`.
fn start_router_and_agent(
    w: &World,
    dir: &Path,
    tag: &str,
    offload: bool,
    dataplane: &str,
) -> (Nemonetd, Nemonetd) {
    let mr = start_nemonetd_with(&w.mr, "-m", dir, &format!("mr-{tag}"), offload, dataplane);
    let ha = start_nemonetd_with(&w.ha, "-h", dir, &format!("ha-{tag}"), offload, dataplane);
    (mr, ha)
}

/// Registers `b` at the MR and the HA and waits until the MR's tunnel device has `mtu` and
/// traffic crosses the tunnel both ways.
fn bring_up(
    w: &World,
    (mr, ha): (&Nemonetd, &Nemonetd),
    b: &Binding,
    dataplane: &str,
    mtu: &str,
    case: &str,
) {
    mr.bus.send(&Message::new(Body::BulAdd(b.clone()))).unwrap();
    ha.bus.send(&Message::new(Body::BcAdd(b.clone()))).unwrap();
    let dev = if dataplane == "tun" {
        "nemo0"
    } else {
        "nemo0k"
    };
    wait_for(case, Duration::from_secs(10), || {
        w.mr.ip_text(&["link", "show", dev]).contains(mtu)
            && routes_ours(&w.ha).contains("198.51.100.0/24")
            && ping(&w.mnn, "203.0.113.2")
            && ping(&w.cn, "2001:db8:100::2")
    });
}

/// The bindings a test through raw IP tunnels runs, with the MTU each gives the MR's
/// tunnel device: an IPv6 outer header, and for TUN also an IPv4 one (IP in IPv4; the
/// kernel data plane carries IPv6 outer headers only).
fn raw_ip_outers(dataplane: &str) -> Vec<(Binding, &'static str)> {
    let mut outers = vec![(binding(), "mtu 1460")];
    if dataplane == "tun" {
        let mut b = binding();
        b.coa = CareOf::V4 {
            addr: "192.0.2.2".parse().unwrap(),
            udp_port: None,
        };
        b.encapsulation = Encapsulation::InIpv4;
        outers.push((b, "mtu 1480"));
    }
    outers
}

/// TCP through raw IP tunnels (IPv6 and IPv4 outer headers) between cards that merge
/// what they receive (GRO): the merged tunnel packets are read whole with their segment
/// size and reach the device as super-packets (or cut into those segments without
/// offloads), both ways. A raw socket hands them over without the segment size; written
/// as they came, they stalled TCP (0.3 Mbit/s). With the kernel data plane its own
/// programs decapsulate them, and the packet sockets must leave them alone.
#[test]
fn tcp_through_cards_that_merge_tunnel_packets() {
    if !is_root() || !have("python3") || !have("ethtool") {
        eprintln!("skipped: needs root, python3 and ethtool");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let w = world("gro");
    like_network_cards(&w);
    let script = dir.path().join("transfer.py");
    std::fs::write(&script, TRANSFER).unwrap();
    let script = script.to_str().unwrap();
    for (dataplane, offload) in [("tun", true), ("tun", false), ("auto", true)] {
        let tag = format!("{dataplane}-{offload}");
        let (mr, ha) = start_router_and_agent(&w, dir.path(), &tag, offload, dataplane);
        for (b, mtu) in raw_ip_outers(dataplane) {
            let case = format!("{tag}, {:?}", b.encapsulation);
            bring_up(&w, (&mr, &ha), &b, dataplane, mtu, &case);
            for (dir_tag, from, to, receiver, dsts) in [
                ("up", &w.mnn, &w.cn, &ha, ["2001:db8:c::2", "203.0.113.2"]),
                (
                    "down",
                    &w.cn,
                    &w.mnn,
                    &mr,
                    ["2001:db8:100::2", "198.51.100.2"],
                ),
            ] {
                let log = dir.path().join(format!("server-{tag}-{dir_tag}-{mtu}.log"));
                let _server = to.spawn("python3", &[script, "server", "5001"], &log);
                wait_for("transfer server", Duration::from_secs(10), || {
                    log_text(&log).contains("listening")
                });
                let merged = || {
                    receiver.proc.signal("USR1");
                    std::thread::sleep(Duration::from_millis(200));
                    last_counter(&log_text(&receiver.log), "merged_reads").unwrap_or(0)
                };
                let before = merged();
                for dst in dsts {
                    // A stalled transfer fails here rather than trickling on for minutes.
                    let out = from.try_exec(
                        "timeout",
                        &["60", "python3", script, "client", dst, "5001", "8000000"],
                    );
                    assert!(
                        out.status.success(),
                        "{case}, {dir_tag} to {dst}: {} {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                let read = merged() - before;
                if dataplane == "tun" {
                    assert!(read > 0, "{case}, {dir_tag}: no merged tunnel packet read");
                } else if log_text(&ha.log).contains("dataplane=\"kernel\"") {
                    assert_eq!(read, 0, "{case}, {dir_tag}: the kernel's packets read too");
                }
            }
        }
        assert!(
            !log_text(&ha.log).contains("cannot be read whole"),
            "the packet sockets were not opened"
        );
    }
}

/// UDP datagrams in bursts: the client sends `bursts` × 10 datagrams of 1,000 octets
/// (one send each burst, by UDP segmentation offload, so they cross the links back to
/// back), each its sequence number and a pattern, then an end mark a few times; the
/// server counts the distinct well-formed ones it got and prints the count at the mark
/// (or after 10 s of silence).
const DATAGRAMS: &str = r#"
import socket, struct, sys, time
SIZE, BURST = 1000, 10
def body(n):
    return struct.pack("!I", n) + bytes((n + i) % 251 for i in range(SIZE - 4))
if sys.argv[1] == "server":
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind(("::", int(sys.argv[2])))
    print("listening", flush=True)
    got, bad = set(), 0
    s.settimeout(30)
    while True:
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        s.settimeout(10)
        if b == b"END":
            break
        n = struct.unpack("!I", b[:4])[0] if len(b) >= 4 else -1
        if len(b) == SIZE and b == body(n):
            got.add(n)
        else:
            bad += 1
    print("got %d bad %d" % (len(got), bad), flush=True)
else:
    dst, port, bursts = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    c = socket.socket(fam, socket.SOCK_DGRAM)
    c.setsockopt(socket.IPPROTO_UDP, 103, SIZE)  # UDP_SEGMENT
    for k in range(bursts):
        c.sendto(b"".join(body(k * BURST + i) for i in range(BURST)), (dst, port))
        time.sleep(0.002)
    c.setsockopt(socket.IPPROTO_UDP, 103, 0)
    for _ in range(5):
        time.sleep(0.05)
        c.sendto(b"END", (dst, port))
"#;

/// UDP through raw IP tunnels between cards whose GRO also merges UDP datagrams, as an
/// operator turns on with `ethtool -K DEV rx-udp-gro-forwarding on` (or `rx-gro-list`):
/// tunnel packets of one UDP flow then arrive merged (`VIRTIO_NET_HDR_GSO_UDP_L4`), and
/// the TUN data plane must cut them into their datagrams (it dropped them all as
/// malformed: 70-82 % of a 300 Mbit/s flow lost). Every datagram arrives, both ways,
/// under IPv6 and IPv4 outer headers, with and without TUN offloads and on the kernel path.
#[test]
fn udp_through_cards_that_merge_datagrams() {
    if !is_root() || !have("python3") || !have("ethtool") {
        eprintln!("skipped: needs root, python3 and ethtool");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let w = world("udpgro");
    like_network_cards(&w);
    for ns in [&w.mr, &w.ha] {
        ns.exec("ethtool", &["-K", "eth0", "rx-udp-gro-forwarding", "on"]);
    }
    let script = dir.path().join("datagrams.py");
    std::fs::write(&script, DATAGRAMS).unwrap();
    let script = script.to_str().unwrap();
    const BURSTS: u32 = 300;
    for (dataplane, offload) in [("tun", true), ("tun", false), ("auto", true)] {
        let tag = format!("{dataplane}-{offload}");
        let (mr, ha) = start_router_and_agent(&w, dir.path(), &tag, offload, dataplane);
        for (b, mtu) in raw_ip_outers(dataplane) {
            let tag = format!("{tag}, {:?}", b.encapsulation);
            bring_up(&w, (&mr, &ha), &b, dataplane, mtu, &tag);
            for (dir_tag, from, to, receiver, dsts) in [
                ("up", &w.mnn, &w.cn, &ha, ["2001:db8:c::2", "203.0.113.2"]),
                (
                    "down",
                    &w.cn,
                    &w.mnn,
                    &mr,
                    ["2001:db8:100::2", "198.51.100.2"],
                ),
            ] {
                let counter = |key: &str| {
                    receiver.proc.signal("USR1");
                    std::thread::sleep(Duration::from_millis(200));
                    last_counter(&log_text(&receiver.log), key).unwrap_or(0)
                };
                let (merged, malformed) = (counter("merged_reads"), counter("drop_malformed"));
                for dst in dsts {
                    let case = format!("{tag}, {dir_tag} to {dst}");
                    let log = dir
                        .path()
                        .join(format!("server-{tag}-{dir_tag}-{dst}-{mtu}.log"));
                    let server = to.spawn("python3", &[script, "server", "5002"], &log);
                    wait_for("datagram server", Duration::from_secs(10), || {
                        log_text(&log).contains("listening")
                    });
                    let out = from.try_exec(
                        "timeout",
                        &[
                            "30",
                            "python3",
                            script,
                            "client",
                            dst,
                            "5002",
                            &BURSTS.to_string(),
                        ],
                    );
                    assert!(
                        out.status.success(),
                        "{case}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    wait_for(&case, Duration::from_secs(10), || {
                        log_text(&log).contains("got ")
                    });
                    drop(server);
                    // A loaded machine may drop a few anywhere; the defect lost a sixth.
                    let text = log_text(&log);
                    let got = last_counter(&text.replace("got ", "got="), "got").unwrap_or(0);
                    assert!(got >= u64::from(BURSTS) * 10 * 99 / 100, "{case}: {text}");
                    assert!(text.contains(" bad 0"), "{case}: {text}");
                }
                if dataplane == "tun" {
                    assert!(
                        counter("merged_reads") > merged,
                        "{tag}, {dir_tag}: nothing merged"
                    );
                    assert_eq!(counter("drop_malformed"), malformed, "{tag}, {dir_tag}");
                }
            }
        }
    }
}

#[test]
fn ipv4_care_of_address_ip_in_ip_then_udp() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let w = world("v4coa");
    // The plain TUN path (no virtio-net header) here; the other test runs with offloads.
    let mr = start_nemonetd(&w.mr, "-m", dir.path(), "mr", false);
    let ha = start_nemonetd(&w.ha, "-h", dir.path(), "ha", false);
    let mut b = binding();
    for (encap, port, mtu) in [
        (Encapsulation::InIpv4, None, "mtu 1480"),
        (
            Encapsulation::UdpIpv4 { ha_port: 4191 },
            Some(4191),
            "mtu 1472",
        ),
    ] {
        b.coa = CareOf::V4 {
            addr: "192.0.2.2".parse().unwrap(),
            udp_port: port,
        };
        b.encapsulation = encap;
        mr.bus.send(&Message::new(Body::BulAdd(b.clone()))).unwrap();
        ha.bus.send(&Message::new(Body::BcAdd(b.clone()))).unwrap();
        wait_for(mtu, Duration::from_secs(10), || {
            w.mr.ip_text(&["link", "show", "nemo0"]).contains(mtu)
                && routes_ours(&w.ha).contains("198.51.100.0/24")
        });
        // The outer packets to the HA's IPv4 address stay out of the tunnel.
        assert!(routes_ours(&w.mr).contains("to 192.0.2.1 lookup main"));
        assert!(ping(&w.mnn, "203.0.113.2"), "{encap:?}: MNN -> CN IPv4");
        assert!(ping(&w.mnn, "2001:db8:c::2"), "{encap:?}: MNN -> CN IPv6");
        assert!(ping(&w.cn, "198.51.100.2"), "{encap:?}: CN -> MNN IPv4");
        assert!(ping(&w.cn, "2001:db8:100::2"), "{encap:?}: CN -> MNN IPv6");
    }

    // Crash and restart: kill -9 leaves our routes and rules behind (the TUN goes with the
    // process). The new process flushes them and rebuilds the binding from the state dump
    // of "mrd" (played by this test), without any BUL_ADD. "babymdd" (played too) answers
    // first, as the real one does, with no binding: nemonetd must wait for mrd's answer
    // (it once took the first answer, and so rebuilt nothing).
    let stop = Arc::new(AtomicBool::new(false));
    let owner = {
        let stop = Arc::clone(&stop);
        let ep = Endpoint::open(&mr.bus_dir, "mrd", EndpointOptions::default()).unwrap();
        let b = b.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(Some(msg)) = ep.recv_timeout(Duration::from_millis(100))
                    && msg.body == Body::StateRequest
                {
                    std::thread::sleep(Duration::from_millis(200));
                    ep.reply_state(&msg, vec![StateItem::Bul(b.clone())], 0)
                        .unwrap();
                }
            }
        })
    };
    let detector = {
        let stop = Arc::clone(&stop);
        let ep = Endpoint::open(&mr.bus_dir, "babymdd", EndpointOptions::default()).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(Some(msg)) = ep.recv_timeout(Duration::from_millis(100))
                    && msg.body == Body::StateRequest
                {
                    let coa = mipsock::CurrentCoa {
                        coa: None,
                        ifindex: 0,
                        at_home: false,
                    };
                    ep.reply_state(&msg, vec![StateItem::CurrentCoa(coa)], 0)
                        .unwrap();
                }
            }
        })
    };
    let mut mr = mr;
    mr.proc.signal("KILL");
    mr.proc.wait_exit(Duration::from_secs(5));
    assert!(
        routes_ours(&w.mr).contains("lookup 100"),
        "kill -9 should leave rules"
    );
    let mr = start_nemonetd(&w.mr, "-m", dir.path(), "mr", false);
    wait_for(
        "MR rebuilt from the state dump",
        Duration::from_secs(10),
        || {
            w.mr.ip_text(&["link", "show", "nemo0"])
                .contains("mtu 1472")
                && routes_ours(&w.mr).contains("from 2001:db8:100::/64 lookup 100")
        },
    );
    assert!(
        ping(&w.mnn, "2001:db8:c::2"),
        "after restart: MNN -> CN IPv6"
    );
    assert!(ping(&w.cn, "198.51.100.2"), "after restart: CN -> MNN IPv4");
    stop.store(true, Ordering::Relaxed);
    owner.join().unwrap();
    detector.join().unwrap();

    mr.bus
        .send(&Message::new(Body::BulRemove(b.clone())))
        .unwrap();
    ha.bus.send(&Message::new(Body::BcRemove(b))).unwrap();
    wait_for("routes removed", Duration::from_secs(10), || {
        routes_ours(&w.mr).is_empty() && only_unreachable(&routes_ours(&w.ha))
    });
}

/// One home agent, one TUN, two mobile routers (RFC 3963 §6: the HA forwards by the
/// binding whose prefixes contain the destination): both mobile networks reach the CN and
/// each other through the HA; an MR sending with the other MR's prefix as inner source is
/// refused (the check is against *that* MR's prefixes, not any registered one); removing
/// one binding leaves the other working.
///
/// ```text
///  MNN1 ── MR1 ──eth0── HA ──cn0── CN          MNP1 2001:db8:100::/64, 198.51.100.0/25
///  MNN2 ── MR2 ──eth1──┘                       MNP2 2001:db8:200::/64, 198.51.100.128/25
/// ```
#[test]
fn ha_serves_two_mobile_routers() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let t = "twomr";
    let (mnn1, mr1, mnn2, mr2, ha, cn) = (
        Netns::new(&format!("nnd-{t}-mnn")),
        Netns::new(&format!("nnd-{t}-mr")),
        Netns::new(&format!("nnd-{t}-mnn")),
        Netns::new(&format!("nnd-{t}-mr")),
        Netns::new(&format!("nnd-{t}-ha")),
        Netns::new(&format!("nnd-{t}-cn")),
    );
    veth(&mnn1, "eth0", &mr1, "mnn0");
    veth(&mnn2, "eth0", &mr2, "mnn0");
    veth(&mr1, "eth0", &ha, "eth0");
    veth(&mr2, "eth0", &ha, "eth1");
    veth(&ha, "cn0", &cn, "eth0");
    for (ns, dev, v6, v4) in [
        (&mnn1, "eth0", "2001:db8:100::2/64", Some("198.51.100.2/25")),
        (&mr1, "mnn0", "2001:db8:100::1/64", Some("198.51.100.1/25")),
        (
            &mnn2,
            "eth0",
            "2001:db8:200::2/64",
            Some("198.51.100.130/25"),
        ),
        (
            &mr2,
            "mnn0",
            "2001:db8:200::1/64",
            Some("198.51.100.129/25"),
        ),
        (&mr1, "eth0", "2001:db8:a::2/64", None),
        (&ha, "eth0", "2001:db8:a::1/64", None),
        (&mr2, "eth0", "2001:db8:b::2/64", None),
        (&ha, "eth1", "2001:db8:b::1/64", None),
        (&ha, "cn0", "2001:db8:c::1/64", Some("203.0.113.1/24")),
        (&cn, "eth0", "2001:db8:c::2/64", Some("203.0.113.2/24")),
    ] {
        ns.ip(&["addr", "add", v6, "dev", dev, "nodad"]);
        if let Some(v4) = v4 {
            ns.ip(&["addr", "add", v4, "dev", dev]);
        }
    }
    for ns in [&mr1, &mr2, &ha] {
        ns.sysctl("net.ipv6.conf.all.forwarding", "1");
        ns.sysctl("net.ipv4.ip_forward", "1");
    }
    for (ns, gw6, gw4) in [
        (&mnn1, "2001:db8:100::1", "198.51.100.1"),
        (&mnn2, "2001:db8:200::1", "198.51.100.129"),
        (&cn, "2001:db8:c::1", "203.0.113.1"),
    ] {
        ns.ip(&["-6", "route", "add", "default", "via", gw6]);
        ns.ip(&["route", "add", "default", "via", gw4]);
    }
    let d1 = start_nemonetd(&mr1, "-m", dir.path(), "mr1", true);
    let d2 = start_nemonetd(&mr2, "-m", dir.path(), "mr2", true);
    let mut dh = start_nemonetd(&ha, "-h", dir.path(), "ha", true);
    let mut b1 = binding();
    b1.ha_v4 = None;
    b1.mnp_v4 = vec!["198.51.100.0/25".parse().unwrap()];
    let b2 = Binding {
        hoa: "2001:db8:1::200".parse().unwrap(),
        coa: CareOf::V6("2001:db8:b::2".parse().unwrap()),
        ha: "2001:db8:b::1".parse().unwrap(),
        mnp_v6: vec!["2001:db8:200::/64".parse().unwrap()],
        mnp_v4: vec!["198.51.100.128/25".parse().unwrap()],
        ..b1.clone()
    };
    d1.bus
        .send(&Message::new(Body::BulAdd(b1.clone())))
        .unwrap();
    d2.bus
        .send(&Message::new(Body::BulAdd(b2.clone())))
        .unwrap();
    dh.bus.send(&Message::new(Body::BcAdd(b1.clone()))).unwrap();
    dh.bus.send(&Message::new(Body::BcAdd(b2.clone()))).unwrap();
    wait_for("routes for both MRs", Duration::from_secs(10), || {
        let h = routes_ours(&ha);
        h.contains("198.51.100.0/25")
            && h.contains("198.51.100.128/25")
            && routes_ours(&mr1).contains("from 2001:db8:100::/64")
            && routes_ours(&mr2).contains("from 2001:db8:200::/64")
    });
    // (Besides the GRO device that IPv6 tunnel packets are written to, `nemo0o`.)
    assert_eq!(
        ha.ip_text(&["-o", "link", "show", "type", "tun"])
            .lines()
            .filter(|l| !l.contains("nemo0o"))
            .count(),
        1,
        "one TUN for every binding"
    );
    for (from, to) in [
        (&mnn1, "2001:db8:c::2"),
        (&mnn1, "203.0.113.2"),
        (&mnn2, "2001:db8:c::2"),
        (&mnn2, "203.0.113.2"),
        (&cn, "2001:db8:100::2"),
        (&cn, "198.51.100.130"),
        // Mobile network to mobile network: MR1 -> HA -> MR2.
        (&mnn1, "2001:db8:200::2"),
        (&mnn2, "198.51.100.2"),
    ] {
        assert!(ping(from, to), "{} -> {to}", from.name());
    }

    // MR2 sends MR1's prefix as inner source: a live CoA, a foreign source.
    mnn2.ip(&[
        "addr",
        "add",
        "2001:db8:100::99/128",
        "dev",
        "eth0",
        "nodad",
    ]);
    mr2.ip(&[
        "-6",
        "rule",
        "add",
        "from",
        "2001:db8:100::99",
        "lookup",
        "100",
        "priority",
        "100",
    ]);
    let spoofed_before = last_counter(&log_text(&dh.log), "drop_spoofed_inner").unwrap_or(0);
    let _ = mnn2.try_exec(
        "ping",
        &[
            "-6",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "1",
            "-I",
            "2001:db8:100::99",
            "2001:db8:c::2",
        ],
    );
    dh.proc.signal("USR1");
    wait_for(
        "HA refuses MR1's prefix from MR2",
        Duration::from_secs(5),
        || {
            last_counter(&log_text(&dh.log), "drop_spoofed_inner").unwrap_or(0)
                >= spoofed_before + 3
        },
    );

    mnn2.ip(&["addr", "del", "2001:db8:100::99/128", "dev", "eth0"]);
    mr2.ip(&["-6", "rule", "del", "priority", "100"]);

    // One binding goes; the other keeps working.
    dh.bus
        .send(&Message::new(Body::BcRemove(b1.clone())))
        .unwrap();
    wait_for(
        "MR1's routes gone at the HA",
        Duration::from_secs(10),
        || {
            let h = routes_ours(&ha);
            h.lines()
                .filter(|l| l.contains("198.51.100.0/25") || l.contains("2001:db8:100::/64"))
                .all(|l| l.starts_with("unreachable"))
        },
    );
    assert!(ping(&mnn2, "2001:db8:c::2"), "MR2 after MR1's removal");
    assert!(ping(&cn, "198.51.100.130"), "MR2 after MR1's removal, IPv4");
    assert!(
        !ping(&cn, "2001:db8:100::2"),
        "MR1's network no longer reachable"
    );
    dh.bus.send(&Message::new(Body::BcRemove(b2))).unwrap();
    wait_for("HA empty", Duration::from_secs(10), || {
        only_unreachable(&routes_ours(&ha))
    });
    dh.proc.signal("TERM");
    assert_eq!(dh.proc.wait_exit(Duration::from_secs(10)), Some(0));
}

/// nemonetd watches the kernel (issue 10): a route and a rule of ours deleted by someone
/// else come back within a moment, and a new egress MTU resizes the tunnel.
#[test]
fn kernel_changes_from_outside_are_reconciled() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    if tests::skip_without_kernel_dataplane("kernel_changes_from_outside_are_reconciled") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = world("watch");
    // With the kernel data plane: its routes are bindings' routes like the TUN path's.
    let mr = start_nemonetd_with(&w.mr, "-m", dir.path(), "mr", true, "kernel");
    mr.bus.send(&Message::new(Body::BulAdd(binding()))).unwrap();
    wait_for("the MR's routes and rules", Duration::from_secs(10), || {
        let m = routes_ours(&w.mr);
        m.contains("from 2001:db8:100::/64") && m.contains("default dev nemo0k")
    });
    // An operator's cleanup removes one of each.
    w.mr.ip(&[
        "-6", "route", "del", "default", "dev", "nemo0k", "table", "100",
    ]);
    w.mr.ip(&[
        "-6",
        "rule",
        "del",
        "from",
        "2001:db8:100::/64",
        "lookup",
        "100",
    ]);
    // (Put back within milliseconds: the log tells that both deletions were seen.)
    wait_for("both back", Duration::from_secs(5), || {
        let m = routes_ours(&w.mr);
        m.contains("from 2001:db8:100::/64")
            && w.mr
                .ip_text(&["-6", "route", "show", "table", "100"])
                .contains("default dev nemo0k")
    });
    wait_for("both deletions seen", Duration::from_secs(5), || {
        let log = log_text(&mr.log);
        log.contains("a route of ours was deleted from outside")
            && log.contains("a rule of ours was deleted from outside")
    });
    // The egress link's MTU drops to 1400: the tunnel follows (1400 - 40).
    w.mr.ip(&["link", "set", "eth0", "mtu", "1400"]);
    wait_for("tunnel MTUs 1360", Duration::from_secs(5), || {
        w.mr.ip_text(&["link", "show", "nemo0"])
            .contains("mtu 1360")
            && w.mr
                .ip_text(&["link", "show", "nemo0k"])
                .contains("mtu 1360")
    });
}

/// Bindings on the bus that no tunnel can be built from (a default route or link-local or
/// multicast range as a mobile network prefix, a loopback home address, an unspecified or
/// the home agent's own address as the care-of address), added and removed: nemonetd
/// refuses each with a log line naming the field, installs nothing and, above all,
/// replaces none of the node's routes (a removal used to turn the default routes into
/// `unreachable` ones, gone with the daemon); a sound binding afterwards is installed.
#[test]
fn unusable_bindings_on_the_bus_touch_no_route() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = world("unusable");
    w.ha.ip(&["route", "add", "default", "via", "192.0.2.254"]);
    w.ha.ip(&["-6", "route", "add", "default", "via", "2001:db8:a::fe"]);
    // The node's routes, less those the kernel makes for nemonetd's own devices.
    let routes = |ns: &Netns| {
        (ns.ip_text(&["-4", "route", "show", "table", "all"])
            + &ns.ip_text(&["-6", "route", "show", "table", "all"]))
            .lines()
            .filter(|l| !l.contains(" dev nemo0"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let before = routes(&w.ha);
    let ha = start_nemonetd(&w.ha, "-h", dir.path(), "ha", true);
    let hostile: Vec<(Binding, &str)> = vec![
        (
            Binding {
                mnp_v6: vec!["::/0".parse().unwrap()],
                mnp_v4: vec!["0.0.0.0/0".parse().unwrap()],
                ..binding()
            },
            "is a default route",
        ),
        (
            Binding {
                mnp_v6: vec!["fe80::/64".parse().unwrap()],
                ..binding()
            },
            "overlaps fe80::/10",
        ),
        (
            Binding {
                mnp_v4: vec!["224.0.0.0/4".parse().unwrap()],
                ..binding()
            },
            "overlaps 224.0.0.0/4",
        ),
        (
            Binding {
                hoa: "::1".parse().unwrap(),
                ..binding()
            },
            "loopback",
        ),
        (
            Binding {
                coa: CareOf::V6("::".parse().unwrap()),
                ..binding()
            },
            "unspecified",
        ),
        (
            Binding {
                coa: CareOf::V6("2001:db8:a::1".parse().unwrap()),
                ..binding()
            },
            "is the home agent's",
        ),
    ];
    for (b, _) in &hostile {
        ha.bus.send(&Message::new(Body::BcAdd(b.clone()))).unwrap();
        ha.bus
            .send(&Message::new(Body::BcRemove(Binding {
                lifetime: 0,
                ..b.clone()
            })))
            .unwrap();
    }
    wait_for(
        "every add and removal refused",
        Duration::from_secs(10),
        || log_text(&ha.log).matches("binding refused").count() >= 2 * hostile.len(),
    );
    let log = log_text(&ha.log);
    for (_, why) in &hostile {
        assert!(log.contains(why), "no {why:?} in\n{log}");
    }
    assert_eq!(routes_ours(&w.ha), "", "nothing of ours installed");
    assert_eq!(routes(&w.ha), before, "the node's routes as they were");
    // A sound binding still gets its routes.
    ha.bus.send(&Message::new(Body::BcAdd(binding()))).unwrap();
    wait_for(
        "the sound binding's routes",
        Duration::from_secs(10),
        || routes_ours(&w.ha).contains("2001:db8:100::/64"),
    );
}

/// An operator's static route for a mobile network prefix (and its IPv4 one) is in the
/// way of the binding's: nemonetd leaves both alone and says so once; the rest of the
/// binding is installed; when the binding ends and nemonetd exits, the operator's routes
/// are still there (they used to be replaced, then deleted with ours). Once the operator
/// removes theirs, the binding's route follows at the next event.
#[test]
fn an_operators_route_in_the_way_is_left_alone() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = world("foreign");
    w.ha.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:100::/64",
        "via",
        "2001:db8:c::2",
        "metric",
        "1024",
    ]);
    w.ha.ip(&["route", "add", "198.51.100.0/24", "via", "203.0.113.2"]);
    let theirs = |ns: &Netns| {
        let v6 = ns.ip_text(&["-6", "route", "show", "2001:db8:100::/64"]);
        let v4 = ns.ip_text(&["route", "show", "198.51.100.0/24"]);
        v6.contains("via 2001:db8:c::2") && v4.contains("via 203.0.113.2")
    };
    let mut ha = start_nemonetd_with(&w.ha, "-h", dir.path(), "ha", true, "tun");
    ha.bus.send(&Message::new(Body::BcAdd(binding()))).unwrap();
    wait_for("the home address's route", Duration::from_secs(10), || {
        routes_ours(&w.ha).contains("2001:db8:1::100")
    });
    wait_for("the conflict reported", Duration::from_secs(10), || {
        log_text(&ha.log)
            .matches("that nemonetd did not make")
            .count()
            >= 2
    });
    assert!(theirs(&w.ha), "{}", routes_ours(&w.ha));
    assert!(!routes_ours(&w.ha).contains("2001:db8:100::/64"));
    // Reported once each, however many events come.
    ha.bus.send(&Message::new(Body::BcAdd(binding()))).unwrap();
    ha.bus.send(&Message::new(Body::BcAdd(binding()))).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        log_text(&ha.log)
            .matches("that nemonetd did not make")
            .count(),
        2
    );
    // The binding ends, nemonetd exits: the operator's routes stay.
    ha.bus
        .send(&Message::new(Body::BcRemove(Binding {
            lifetime: 0,
            ..binding()
        })))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(theirs(&w.ha), "after the binding ended");
    ha.proc.signal("TERM");
    assert!(ha.proc.wait_exit(Duration::from_secs(10)).is_some());
    assert!(theirs(&w.ha), "after nemonetd exited");
    assert_eq!(routes_ours(&w.ha), "");
    // Without the operator's IPv6 route, the binding's goes in.
    w.ha.ip(&[
        "-6",
        "route",
        "del",
        "2001:db8:100::/64",
        "via",
        "2001:db8:c::2",
    ]);
    let ha = start_nemonetd_with(&w.ha, "-h", dir.path(), "ha2", true, "tun");
    ha.bus.send(&Message::new(Body::BcAdd(binding()))).unwrap();
    wait_for("the prefix's route", Duration::from_secs(10), || {
        routes_ours(&w.ha).contains("2001:db8:100::/64 dev nemo0")
    });
}

/// A mobile router on the kernel path: its outer packets leave by the care-of interface's
/// default router (the outer table, the kernel table + 3). When that router changes with
/// no new binding (another router on the link, an RA's lifetime ending), the outer route
/// follows it, and goes when there is none.
#[test]
fn the_kernel_paths_outer_route_follows_the_default_router() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    if tests::skip_without_kernel_dataplane(
        "the_kernel_paths_outer_route_follows_the_default_router",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = world("outer");
    w.mr.ip(&[
        "-6",
        "route",
        "add",
        "default",
        "via",
        "2001:db8:a::1",
        "dev",
        "eth0",
    ]);
    let mr = start_nemonetd_with(&w.mr, "-m", dir.path(), "mr", true, "kernel");
    let mut b = binding();
    b.coa_ifindex = Some(w.mr.ifindex("eth0"));
    mr.bus.send(&Message::new(Body::BulAdd(b))).unwrap();
    // (The table does not exist before its first route: `ip` then fails, read as empty.)
    let outer = || {
        let out =
            w.mr.try_exec("ip", &["-6", "route", "show", "table", "1103"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_for(
        "the outer route via the first router",
        Duration::from_secs(10),
        || outer().contains("default via 2001:db8:a::1 dev eth0"),
    );
    // Another router takes over the link's default route: no BUL_ADD comes.
    w.mr.ip(&[
        "-6", "route", "replace", "default", "via", "fe80::99", "dev", "eth0",
    ]);
    wait_for(
        "the outer route via the new router",
        Duration::from_secs(5),
        || outer().contains("default via fe80::99 dev eth0"),
    );
    assert!(!outer().contains("2001:db8:a::1"), "{}", outer());
    w.mr.ip(&[
        "-6", "route", "del", "default", "via", "fe80::99", "dev", "eth0",
    ]);
    wait_for(
        "no outer route without a default router",
        Duration::from_secs(5),
        || !outer().contains("default"),
    );
    assert!(log_text(&mr.log).contains("kernel path: outer packets' way out"));
}

/// After a kill -9 with the kernel data plane up: the local rule stays where local
/// delivery still works (priority 1), the next start puts it back at 0 before anything
/// and sets the kernel path up again; a next start without the kernel path removes the
/// veth pair and the filter a crashed run left.
#[test]
fn kernel_data_plane_recovers_after_a_crash() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    if tests::skip_without_kernel_dataplane("kernel_data_plane_recovers_after_a_crash") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = world("kcrash");
    let b = binding();
    let mut mr = start_nemonetd_with(&w.mr, "-m", dir.path(), "mr1", true, "kernel");
    mr.bus.send(&Message::new(Body::BulAdd(b.clone()))).unwrap();
    wait_for("kernel routes", Duration::from_secs(10), || {
        routes_ours(&w.mr).contains("table 1101")
    });
    // The crash guard's set follows a change shortly after it (off the handover's path).
    if !tests::kernel_srv6() {
        wait_for(
            "the crash guard's end point",
            Duration::from_secs(10),
            || {
                let set =
                    w.mr.try_exec("nft", &["list", "set", "netdev", "nemonetd", "locals"]);
                String::from_utf8_lossy(&set.stdout).contains("2001:db8:a::2")
            },
        );
    }
    mr.proc.signal("KILL");
    mr.proc.wait_exit(Duration::from_secs(5));
    assert_eq!(local_rules(&w.mr), ["1:\tfrom all lookup local proto 110"]);
    // Local delivery still works (the MR's own address answers from the MNN).
    assert!(
        ping(&w.mnn, "2001:db8:100::1"),
        "local delivery after the crash"
    );
    // BPF: the programs went with the process, the decapsulation rule stays; the crash
    // guard drops a tunnel packet to us when it comes back from the pair unstripped,
    // rather than let it go round until its hop limit ends (63 passes each).
    if !tests::kernel_srv6() {
        let before = link_packets(&w.mr, "nemo0kx", "tx");
        w.ha.exec("python3", &["-c", SEND_TEN_TUNNEL_PACKETS]);
        std::thread::sleep(Duration::from_millis(300));
        let passes = link_packets(&w.mr, "nemo0kx", "tx") - before;
        assert!(
            passes <= 20,
            "{passes} passes through the pair for 10 tunnel packets after the crash"
        );
        let guard = w.mr.try_exec(
            "nft",
            &["list", "counter", "netdev", "nemonetd", "crash_guard"],
        );
        let text = String::from_utf8_lossy(&guard.stdout);
        assert!(text.contains("packets 10"), "{text}");
    }

    // A restart with the kernel path: the rule is put back, then moved again.
    let mut mr = start_nemonetd_with(&w.mr, "-m", dir.path(), "mr2", true, "kernel");
    let log = log_text(&mr.log);
    assert!(
        log.contains("left moved by a previous run: put back at priority 0"),
        "{log}"
    );
    assert_eq!(local_rules(&w.mr), ["1:\tfrom all lookup local proto 110"]);
    mr.proc.signal("KILL");
    mr.proc.wait_exit(Duration::from_secs(5));

    // A restart without it: nothing of the kernel path is left.
    let mut mr = start_nemonetd_with(&w.mr, "-m", dir.path(), "mr3", true, "tun");
    assert_eq!(local_rules(&w.mr), ["0:\tfrom all lookup local"]);
    assert!(
        !w.mr
            .try_exec("ip", &["link", "show", "nemo0k"])
            .status
            .success()
    );
    for family in ["ip6", "netdev"] {
        assert!(
            !w.mr
                .try_exec("nft", &["list", "table", family, "nemonetd"])
                .status
                .success(),
            "nft table {family} nemonetd left behind"
        );
    }
    assert!(ping(&w.mnn, "2001:db8:100::1"), "local delivery");
    mr.proc.signal("TERM");
    assert_eq!(mr.proc.wait_exit(Duration::from_secs(10)), Some(0));
    assert_eq!(routes_ours(&w.mr), "");
}

/// The bus never blocks a writer: a burst that outruns nemonetd (a home agent taking over a
/// fleet) drops messages from its queue. Every binding must still get its tunnel: nemonetd
/// sees the gap in had's serials and reads the bindings again from had (played by this
/// test: a burst of BC_ADDs one per datagram, more than the queue holds, then nothing but
/// the gap notices had's loop sends when a reader's last messages were dropped). Without
/// the re-read, the bindings whose BC_ADD was dropped had no route (checked).
#[test]
fn bindings_lost_on_a_full_bus_are_read_again_from_had() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    const N: u32 = 3000;
    let dir = tempfile::tempdir().unwrap();
    let w = world("lostbus");
    let ha = start_nemonetd_with(&w.ha, "-h", dir.path(), "ha", true, "tun");
    let fleet: Vec<Binding> = (0..N)
        .map(|i| Binding {
            hoa: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 1, i as u16),
            coa: CareOf::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 1, i as u16)),
            mnp_v6: vec![format!("2001:db8:4000:{i:x}::/64").parse().unwrap()],
            mnp_v4: Vec::new(),
            ..binding()
        })
        .collect();
    // A small queue towards nemonetd (a quarter of a megabyte, about 500 messages): the
    // burst outruns it for sure; the state dump must still arrive whole.
    let opts = EndpointOptions {
        send_buffer: 256 << 10,
        ..EndpointOptions::default()
    };
    let had = Endpoint::open(&ha.bus_dir, "had", opts).unwrap();
    for b in &fleet {
        had.send(&Message::new(Body::BcAdd(b.clone()))).unwrap();
    }
    let dropped = had.stats().dropped;
    assert!(dropped > 0, "the burst should overflow nemonetd's queue");
    // had answers the state request nemonetd sends once it sees the gap.
    let stop = Arc::new(AtomicBool::new(false));
    let owner = {
        let stop = Arc::clone(&stop);
        let fleet = fleet.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(Some(msg)) = had.recv_timeout(Duration::from_millis(100))
                    && msg.body == Body::StateRequest
                {
                    let items = fleet.iter().cloned().map(StateItem::Bc).collect();
                    had.reply_state(&msg, items, 0).unwrap();
                }
                // As had's loop does: the burst's last messages were dropped too, and
                // had says nothing more.
                had.send_gap_notices();
            }
        })
    };
    let installed = || {
        w.ha.ip_text(&["-6", "route", "show", "proto", "110"])
            .lines()
            .filter(|l| l.starts_with("2001:db8:4000:"))
            .count()
    };
    wait_for(
        &format!("all {N} bindings' routes ({dropped} BC_ADDs dropped over the bus's readers)"),
        Duration::from_secs(120),
        || installed() >= N as usize,
    );
    stop.store(true, Ordering::Relaxed);
    owner.join().unwrap();
    let log = log_text(&ha.log);
    assert!(
        log.contains("bus messages were dropped for us"),
        "the loss should be logged: {}",
        log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    let dumps = log.matches("state dump received").count();
    // One at start, one or two for the burst (a second one if messages were lost while
    // the first was applied): bounded, not one per loss.
    assert!((2..=4).contains(&dumps), "{dumps} state dumps");
    drop(ha);
}

/// Sends IPv6-in-IPv6 (argument `6`) or IPv6-in-IPv4 (`4`) tunnel packets from the MR's
/// care-of address to the HA, each carrying a TCP segment from the mobile network to the
/// CN to destination port PORT + n: n = 0 one whole; 1 one cut into two outer fragments;
/// 2 two fragmented ones of one flow back to back; 3 whole, fragmented, whole of one flow.
/// A third argument, an IPv6 address, sends only case 0, from there.
const SEND_TCP_TUNNEL_PACKETS: &str = r#"
import socket, struct, sys
fam, port = sys.argv[1], int(sys.argv[2])
coa = sys.argv[3] if len(sys.argv) > 3 else "2001:db8:a::2"
a6 = lambda x: socket.inet_pton(socket.AF_INET6, x)
a4 = lambda x: socket.inet_pton(socket.AF_INET, x)
def csum(b):
    b += b"\0" * (len(b) % 2)
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def inner(dport, seq, n):
    src, dst = a6("2001:db8:100::2"), a6("2001:db8:c::2")
    t = struct.pack("!HHIIBBHHH", 40000, dport, seq, 0, 5 << 4, 0x18, 65535, 0, 0)
    t += bytes(i % 251 for i in range(n))
    c = csum(src + dst + struct.pack("!I3xB", len(t), 6) + t)
    t = t[:16] + struct.pack("!H", c) + t[18:]
    return struct.pack("!IHBB", 0x60000000, len(t), 6, 64) + src + dst + t
ident = [7000]
if fam == "6":
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    def outer(p, nh):
        return struct.pack("!IHBB", 0x60000000, len(p), nh, 64) + a6(coa) + a6("2001:db8:a::1") + p
    def whole(p):
        return [outer(p, 41)]
    def fragments(p, cut=600):
        ident[0] += 1
        return [outer(struct.pack("!BBHI", 41, 0, 1, ident[0]) + p[:cut], 44),
                outer(struct.pack("!BBHI", 41, 0, cut, ident[0]) + p[cut:], 44)]
    to = ("2001:db8:a::1", 0)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    def outer(p, frag):
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(p), ident[0], frag, 64, 41, 0, a4("192.0.2.2"), a4("192.0.2.1"))
        return h[:10] + struct.pack("!H", csum(h)) + h[12:] + p
    def whole(p):
        ident[0] += 1
        return [outer(p, 0)]
    def fragments(p, cut=600):
        ident[0] += 1
        return [outer(p[:cut], 0x2000), outer(p[cut:], cut // 8)]
    to = ("192.0.2.1", 0)
cases = [
    whole(inner(port, 1, 200)),
    fragments(inner(port + 1, 1, 1000)),
    fragments(inner(port + 2, 1, 1000)) + fragments(inner(port + 2, 1001, 1000)),
    whole(inner(port + 3, 1, 200)) + fragments(inner(port + 3, 201, 1000)) + whole(inner(port + 3, 1201, 200)),
]
if len(sys.argv) > 3:
    cases = cases[:1]
for packets in cases:
    for p in packets:
        s.sendto(p, to)
"#;

/// What the CN's counter for TCP destination port `port` counted (`tcp_counters`).
fn tcp_counted(cn: &Netns, port: u16) -> u64 {
    let out = cn.exec("nft", &["list", "chain", "inet", "nndcount", "in"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains(&format!("tcp dport {port} ")))
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != "packets").nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// TCP tunnel packets are read by one socket per flow (the packet socket, in the order
/// they came) unless the kernel reassembled them from outer fragments, which only the raw
/// sockets read whole: every one of them reaches the CN once, none twice, whether it came
/// whole or in fragments, alone or between whole ones of its flow, under an IPv6 or an
/// IPv4 outer header. Without the raw sockets' count of fragmented packets per flow, the
/// fragmented ones were lost; without the packet socket taking the whole ones, they
/// overtook the merged ones of their flow.
#[test]
fn tcp_tunnel_packets_whole_and_fragmented_arrive_once() {
    if !is_root() || !have("python3") || !have("nft") {
        eprintln!("skipped: needs root, python3 and nft");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = world("frag");
    w.cn.exec("nft", &["add", "table", "inet", "nndcount"]);
    w.cn.exec(
        "nft",
        &[
            "add",
            "chain",
            "inet",
            "nndcount",
            "in",
            "{ type filter hook prerouting priority 0; }",
        ],
    );
    for port in (7000..7004).chain(7100..7104).chain([7200]) {
        w.cn.exec(
            "nft",
            &[
                "add",
                "rule",
                "inet",
                "nndcount",
                "in",
                "tcp",
                "dport",
                &port.to_string(),
                "counter",
            ],
        );
    }
    let ha = start_nemonetd_with(&w.ha, "-h", dir.path(), "ha", true, "tun");
    let mut v4 = binding();
    v4.coa = CareOf::V4 {
        addr: "192.0.2.2".parse().unwrap(),
        udp_port: None,
    };
    v4.encapsulation = Encapsulation::InIpv4;
    for (b, fam, port) in [(binding(), "6", 7000u16), (v4, "4", 7100)] {
        let coa = format!("coa={}", b.coa);
        ha.bus.send(&Message::new(Body::BcAdd(b))).unwrap();
        wait_for("the binding up", Duration::from_secs(10), || {
            routes_ours(&w.ha).contains("2001:db8:100::/64 dev nemo0")
                && log_text(&ha.log)
                    .lines()
                    .any(|l| l.contains("binding up") && l.contains(&coa))
        });
        // The packet socket listens (and the raw sockets leave TCP to it) once a
        // binding's tunnel packets come through the raw sockets.
        wait_for("the packet socket", Duration::from_secs(10), || {
            log_text(&ha.log)
                .lines()
                .any(|l| l.contains("and TCP ones") && l.contains("on=true"))
        });
        w.mr.exec(
            "python3",
            &["-c", SEND_TCP_TUNNEL_PACKETS, fam, &port.to_string()],
        );
        let want = [1, 1, 2, 3];
        wait_for(
            &format!("IPv{fam} outer: every TCP packet at the CN"),
            Duration::from_secs(5),
            || (0..4).all(|n| tcp_counted(&w.cn, port + n) >= want[n as usize]),
        );
        std::thread::sleep(Duration::from_millis(300));
        let got: Vec<u64> = (0..4).map(|n| tcp_counted(&w.cn, port + n)).collect();
        assert_eq!(
            got, want,
            "IPv{fam} outer: TCP packets at the CN per case, once each"
        );
    }
    // Both ways of reading took their share: whole ones from the packet socket.
    ha.proc.signal("USR1");
    wait_for("counters logged", Duration::from_secs(5), || {
        last_counter(&log_text(&ha.log), "tcp_capture_reads").is_some()
    });
    let captured = last_counter(&log_text(&ha.log), "tcp_capture_reads").unwrap();
    assert_eq!(
        captured,
        2 * 3,
        "whole TCP tunnel packets read by the packet socket"
    );
    // From a stranger (no binding's far end): refused and counted, whichever socket
    // reads it, and never at the CN.
    let unknown = last_counter(&log_text(&ha.log), "drop_unknown_outer").unwrap_or(0);
    w.mr.ip(&["addr", "add", "2001:db8:a::7/64", "dev", "eth0", "nodad"]);
    w.mr.exec(
        "python3",
        &["-c", SEND_TCP_TUNNEL_PACKETS, "6", "7200", "2001:db8:a::7"],
    );
    wait_for(
        "the stranger's packet refused",
        Duration::from_secs(5),
        || {
            ha.proc.signal("USR1");
            std::thread::sleep(Duration::from_millis(200));
            last_counter(&log_text(&ha.log), "drop_unknown_outer").unwrap_or(0) > unknown
        },
    );
    let log = log_text(&ha.log);
    assert_eq!(last_counter(&log, "tcp_capture_reads"), Some(captured));
    assert_eq!(tcp_counted(&w.cn, 7200), 0);
}
