//! Multiple care-of addresses (RFC 5648, issue 15) through the real nemonetd, in network
//! namespaces (root only):
//!
//! ```text
//!                   ┌─eth0 2001:db8:a::2 (CoA, BID 1) ── 2001:db8:a::1 eth0─┐
//!  MNN ──mnn0── MR ─┤                                                        ├─ HA ──cn0── CN
//!                   └─eth1 2001:db8:b::2 (CoA, BID 2) ── 2001:db8:b::1 eth1─┘
//! ```
//!
//! The test plays mrd and had: one BUL_ADD / BC_ADD per binding identifier. Flows (UDP,
//! one source port each, both families inside) are spread over both care-of addresses in
//! both directions, each flow on one path; the interfaces' own packet counters show it.
//! A path withdrawn (BUL_REMOVE / BC_REMOVE of one BID) takes its flows to the other,
//! and nothing is lost.

use std::path::Path;
use std::time::Duration;

mod common;

use common::{is_root, link_packets, log_text, start, wait_for};
use tests::{Netns, have, veth};

use mipsock::{Binding, Body, BuFlags, CareOf, Encapsulation, Message};

struct World {
    mnn: Netns,
    mr: Netns,
    ha: Netns,
    cn: Netns,
}

fn world(test: &str) -> World {
    let w = World {
        mnn: Netns::new(&format!("mco-{test}-mnn")),
        mr: Netns::new(&format!("mco-{test}-mr")),
        ha: Netns::new(&format!("mco-{test}-ha")),
        cn: Netns::new(&format!("mco-{test}-cn")),
    };
    veth(&w.mnn, "eth0", &w.mr, "mnn0");
    veth(&w.mr, "eth0", &w.ha, "eth0");
    veth(&w.mr, "eth1", &w.ha, "eth1");
    veth(&w.ha, "cn0", &w.cn, "eth0");
    for (ns, dev, v6, v4) in [
        (&w.mnn, "eth0", "2001:db8:100::2/64", "198.51.100.2/24"),
        (&w.mr, "mnn0", "2001:db8:100::1/64", "198.51.100.1/24"),
        (&w.mr, "eth0", "2001:db8:a::2/64", "192.0.2.2/24"),
        (&w.mr, "eth1", "2001:db8:b::2/64", "192.0.2.130/25"),
        (&w.ha, "eth0", "2001:db8:a::1/64", "192.0.2.1/24"),
        (&w.ha, "eth1", "2001:db8:b::1/64", "192.0.2.129/25"),
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
    // The HA's address through the second uplink too: a packet sent from eth1's care-of
    // address leaves through eth1 (nemonetd names the interface), and needs a route there.
    w.mr.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:a::1/128",
        "via",
        "2001:db8:b::1",
        "dev",
        "eth1",
        "metric",
        "500",
    ]);
    w.mnn
        .ip(&["-6", "route", "add", "default", "via", "2001:db8:100::1"]);
    w.mnn
        .ip(&["route", "add", "default", "via", "198.51.100.1"]);
    w.cn.ip(&["-6", "route", "add", "default", "via", "2001:db8:c::1"]);
    w.cn.ip(&["route", "add", "default", "via", "203.0.113.1"]);
    w
}

/// The binding of identifier `bid` through the MR's `coa` on interface `ifindex`.
fn binding(bid: u16, coa: &str, ifindex: u32) -> Binding {
    Binding {
        hoa: "2001:db8:1::100".parse().unwrap(),
        hoa_v4: None,
        coa: CareOf::V6(coa.parse().unwrap()),
        ha: "2001:db8:a::1".parse().unwrap(),
        ha_v4: Some("192.0.2.1".parse().unwrap()),
        mnp_v6: vec!["2001:db8:100::/64".parse().unwrap()],
        mnp_v4: vec!["198.51.100.0/24".parse().unwrap()],
        encapsulation: Encapsulation::InIpv6,
        lifetime: 600,
        binding_id: Some(bid),
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        nat_detected: false,
        coa_ifindex: Some(ifindex),
        flows: Vec::new(),
        bid_priority: 0,
    }
}

/// FLOWS UDP flows (one source port each) of PER packets to `dst` port 9, IPv6 and IPv4.
const FLOWS: u64 = 32;
const PER: u64 = 5;
const SEND_FLOWS: &str = r#"
import socket, sys, time
dst6, dst4, flows, per = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for fam, dst in ((socket.AF_INET6, dst6), (socket.AF_INET, dst4)):
    for f in range(flows):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind(("", 20000 + f))
        for _ in range(per):
            s.sendto(b"x" * 64, (dst, 9))
        s.close()
        time.sleep(0.002)
"#;

fn send_flows(from: &Netns, dir: &Path, dst6: &str, dst4: &str) {
    let script = dir.join(format!("flows-{}.py", from.name()));
    std::fs::write(&script, SEND_FLOWS).unwrap();
    let n = FLOWS.to_string();
    let p = PER.to_string();
    let out = from.try_exec("python3", &[script.to_str().unwrap(), dst6, dst4, &n, &p]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends the flows from `from` and returns how many packets each of `devs` sent, how
/// many the receiving interface got, and how long the counting took (the path probes, one
/// per path every 20 ms, are among the packets counted).
fn spread(
    w: &World,
    dir: &Path,
    from: &Netns,
    (dst6, dst4): (&str, &str),
    (node, devs): (&Netns, [&str; 2]),
    (to, to_dev): (&Netns, &str),
) -> ([u64; 2], u64, Duration) {
    let _ = w;
    let start = std::time::Instant::now();
    let before = devs.map(|d| link_packets(node, d, "tx"));
    let rx_before = link_packets(to, to_dev, "rx");
    send_flows(from, dir, dst6, dst4);
    std::thread::sleep(Duration::from_millis(300));
    let after = devs.map(|d| link_packets(node, d, "tx"));
    (
        [after[0] - before[0], after[1] - before[1]],
        link_packets(to, to_dev, "rx") - rx_before,
        start.elapsed(),
    )
}

#[test]
fn flows_spread_over_every_care_of_address_and_move_when_one_goes() {
    if !is_root() || !have("python3") {
        eprintln!("skipped: needs root and python3");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = world("spread");
    let mr = start(&w.mr, "-m", dir.path(), "mr", &["--dataplane", "tun"]);
    // auto: the kernel path where it can; bindings with a BID stay on TUN (routes.rs).
    let ha = start(&w.ha, "-h", dir.path(), "ha", &[]);
    let b1 = binding(1, "2001:db8:a::2", w.mr.ifindex("eth0"));
    let b2 = binding(2, "2001:db8:b::2", w.mr.ifindex("eth1"));
    // had does not know the MR's interfaces.
    let at_ha = |b: &Binding| Binding {
        coa_ifindex: None,
        ..b.clone()
    };
    // Another router first, one care-of address: the HA's kernel data plane takes it, so
    // the kernel decapsulates whatever arrives at the HA's address, the MCoA router's
    // packets too (sent through TUN, received through the kernel and its filter).
    let other = Binding {
        hoa: "2001:db8:1::300".parse().unwrap(),
        coa: CareOf::V6("2001:db8:a::3".parse().unwrap()),
        mnp_v6: vec!["2001:db8:300::/64".parse().unwrap()],
        mnp_v4: vec![],
        binding_id: None,
        ..at_ha(&binding(0, "2001:db8:a::3", 0))
    };
    ha.bus.send(&Message::new(Body::BcAdd(other))).unwrap();
    // Without SRv6 in this kernel, auto takes TUN for it too.
    let expected = if tests::kernel_dataplane() {
        "kernel"
    } else {
        "tun"
    };
    wait_for(
        "the other router's binding",
        Duration::from_secs(10),
        || log_text(&ha.log).contains(&format!("dataplane=\"{expected}\"")),
    );
    for b in [&b1, &b2] {
        mr.bus.send(&Message::new(Body::BulAdd(b.clone()))).unwrap();
        ha.bus.send(&Message::new(Body::BcAdd(at_ha(b)))).unwrap();
    }
    wait_for("both bindings up", Duration::from_secs(10), || {
        log_text(&mr.log).matches("binding up").count() >= 2
            && log_text(&ha.log).matches("binding up").count() >= 3
    });
    // The two BID bindings on TUN (the other router's too without SRv6).
    assert_eq!(
        log_text(&ha.log).matches("dataplane=\"tun\"").count(),
        if tests::kernel_dataplane() { 2 } else { 3 },
        "{}",
        log_text(&ha.log)
    );
    // Connectivity first (and neighbours resolved, so the counters count our flows).
    for (ns, dst) in [
        (&w.mnn, "2001:db8:c::2"),
        (&w.mnn, "203.0.113.2"),
        (&w.cn, "2001:db8:100::2"),
        (&w.cn, "198.51.100.2"),
    ] {
        let fam = if dst.contains(':') { "-6" } else { "-4" };
        let out = ns.try_exec("ping", &[fam, "-c", "2", "-i", "0.2", "-W", "2", dst]);
        assert!(
            out.status.success(),
            "ping {dst}: {}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            log_text(&mr.log),
            log_text(&ha.log)
        );
    }
    let total = 2 * FLOWS * PER;

    // MR -> HA: every flow on one path, the flows on both.
    let (up, got, up_took) = spread(
        &w,
        dir.path(),
        &w.mnn,
        ("2001:db8:c::2", "203.0.113.2"),
        (&w.mr, ["eth0", "eth1"]),
        (&w.cn, "eth0"),
    );
    eprintln!("MR -> HA, packets per uplink (eth0, eth1): {up:?} of {total}");
    assert!(got >= total, "CN got {got} of {total}: {up:?}");
    assert!(
        up.iter().all(|&n| n >= total / 8) && up[0] + up[1] >= total,
        "MR's uplinks sent {up:?} of {total} packets: both paths should carry flows"
    );
    // HA -> MR.
    let (down, got, _) = spread(
        &w,
        dir.path(),
        &w.cn,
        ("2001:db8:100::2", "198.51.100.2"),
        (&w.ha, ["eth0", "eth1"]),
        (&w.mnn, "eth0"),
    );
    eprintln!("HA -> MR, packets per link (eth0, eth1): {down:?} of {total}");
    assert!(got >= total, "MNN got {got} of {total}: {down:?}");
    assert!(
        down.iter().all(|&n| n >= total / 8) && down[0] + down[1] >= total,
        "HA sent {down:?} of {total} packets towards the MR: both paths should carry flows"
    );
    // The same flows again take the same paths (per flow, never per packet).
    let (again, _, again_took) = spread(
        &w,
        dir.path(),
        &w.mnn,
        ("2001:db8:c::2", "203.0.113.2"),
        (&w.mr, ["eth0", "eth1"]),
        (&w.cn, "eth0"),
    );
    // Up to four packets either way, and the probes of a longer or shorter count (one
    // per path every 20 ms: a loaded machine stretches the python sender).
    let probes = (up_took.abs_diff(again_took).as_millis() / 20) as u64 + 1;
    let close = |a: u64, b: u64| a.abs_diff(b) <= 4 + probes;
    assert!(
        close(again[0], up[0]) && close(again[1], up[1]),
        "the same flows took other paths: {up:?} then {again:?}"
    );

    // BID 1 withdrawn on both sides: its flows move to eth1, nothing lost.
    mr.bus
        .send(&Message::new(Body::BulRemove(b1.clone())))
        .unwrap();
    ha.bus
        .send(&Message::new(Body::BcRemove(at_ha(&b1))))
        .unwrap();
    wait_for("BID 1 down", Duration::from_secs(10), || {
        [&mr, &ha]
            .iter()
            .all(|n| log_text(&n.log).contains("binding down"))
    });
    std::thread::sleep(Duration::from_millis(200));
    let (up, got, _) = spread(
        &w,
        dir.path(),
        &w.mnn,
        ("2001:db8:c::2", "203.0.113.2"),
        (&w.mr, ["eth0", "eth1"]),
        (&w.cn, "eth0"),
    );
    assert!(got >= total, "CN got {got} of {total} after BID 1 left");
    assert!(
        up[0] <= 4 && up[1] >= total,
        "after BID 1 left the MR sent {up:?}: everything through eth1"
    );
    let (down, got, _) = spread(
        &w,
        dir.path(),
        &w.cn,
        ("2001:db8:100::2", "198.51.100.2"),
        (&w.ha, ["eth0", "eth1"]),
        (&w.mnn, "eth0"),
    );
    assert!(got >= total, "MNN got {got} of {total} after BID 1 left");
    assert!(
        down[0] <= 4 && down[1] >= total,
        "after BID 1 left the HA sent {down:?}: everything through eth1"
    );
    // The HA's routes stay while BID 2 lives.
    let routes = w.ha.ip_text(&["-6", "route", "show", "proto", "110"]);
    assert!(routes.contains("2001:db8:100::/64"), "{routes}");
}

/// Receives UDP on ports BASE..BASE+N for SECS seconds; prints, per port, the packets
/// received, the highest sequence number + 1 and the longest gap between two packets (ms).
const RECEIVER: &str = r#"
import socket, select, struct, sys, time, json
base, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
index = {}
for i in range(n):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::", base + i))
    index[s] = i
stats = {i: {"got": 0, "top": 0, "gap": 0.0, "last": None} for i in range(n)}
open(sys.argv[4], "w").write("ready")
end = time.time() + secs
while time.time() < end:
    r, _, _ = select.select(list(index), [], [], 0.05)
    now = time.time()
    for s in r:
        data = s.recv(2048)
        i = index[s]
        seq = struct.unpack("!I", data[:4])[0]
        st = stats[i]
        st["got"] += 1
        st["top"] = max(st["top"], seq + 1)
        if st["last"] is not None:
            st["gap"] = max(st["gap"], (now - st["last"]) * 1000)
        st["last"] = now
print(json.dumps([[stats[i]["got"], stats[i]["top"], round(stats[i]["gap"], 1)] for i in range(n)]))
"#;

/// Sends to DST ports BASE..BASE+N (source port = destination port), one packet per flow
/// every INTERVAL seconds, for SECS seconds, each with its sequence number.
const SENDER: &str = r#"
import socket, struct, sys, time
dst, base, n, interval, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("", base + i))
    socks.append(s)
seq, t0 = 0, time.time()
while time.time() - t0 < secs:
    for i, s in enumerate(socks):
        s.sendto(struct.pack("!I", seq) + b"v" * 60, (dst, base + i))
    seq += 1
    time.sleep(interval)
"#;

/// A flow set: a receiver in `to` on ports BASE.., a sender in `from`, both python3.
struct FlowRun {
    receiver: std::thread::JoinHandle<std::process::Output>,
    sender: std::thread::JoinHandle<std::process::Output>,
}

fn in_ns(ns: &str, script: &Path, args: Vec<String>) -> std::process::Output {
    std::process::Command::new("ip")
        .args(["netns", "exec", ns, "python3"])
        .arg(script)
        .args(args)
        .output()
        .unwrap()
}

const LIVE_FLOWS: usize = 16;
const LIVE_SECS: f64 = 4.0;

fn start_flows(dir: &Path, from: &Netns, to: &Netns, dst: &str, base: u16) -> FlowRun {
    let rx = dir.join("rx.py");
    let tx = dir.join("tx.py");
    std::fs::write(&rx, RECEIVER).unwrap();
    std::fs::write(&tx, SENDER).unwrap();
    let ready = dir.join(format!("ready-{base}"));
    let n = LIVE_FLOWS.to_string();
    let receiver = {
        let to = to.name().to_string();
        let args = vec![
            base.to_string(),
            n.clone(),
            (LIVE_SECS + 1.5).to_string(),
            ready.to_str().unwrap().to_string(),
        ];
        std::thread::spawn(move || in_ns(&to, &rx, args))
    };
    wait_for("receiver ready", Duration::from_secs(10), || ready.exists());
    let sender = {
        let from = from.name().to_string();
        let args = vec![
            dst.to_string(),
            base.to_string(),
            n,
            "0.01".to_string(),
            LIVE_SECS.to_string(),
        ];
        std::thread::spawn(move || in_ns(&from, &tx, args))
    };
    FlowRun { receiver, sender }
}

/// Per flow: (received, highest sequence number + 1, longest gap in ms).
fn finish_flows(run: FlowRun) -> Vec<(u64, u64, f64)> {
    let sent = run.sender.join().unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let got = run.receiver.join().unwrap();
    let text = String::from_utf8_lossy(&got.stdout).to_string();
    assert!(
        got.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&got.stderr)
    );
    // [[got, top, gap_ms], ...]
    let flows: Vec<(u64, u64, f64)> = text
        .trim()
        .trim_start_matches("[[")
        .trim_end_matches("]]")
        .split("], [")
        .map(|f| {
            let v: Vec<&str> = f.split(", ").collect();
            (
                v[0].parse().unwrap(),
                v[1].parse().unwrap(),
                v[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(flows.len(), LIVE_FLOWS, "{text}");
    flows
}

/// Path liveness (issue 15): one uplink falls silent (100 % loss both ways, the link stays
/// up, so no movement detector notices); within four probe intervals (80 ms) both ends
/// stop using it and its flows, both ways, continue on the other uplink; when it answers
/// again it is taken back. Nothing is re-registered. The HA runs its kernel data plane
/// (another router's plain binding takes it), so the MCoA router's packets reach its TUN
/// device through the filter's mark.
#[test]
fn a_silent_path_is_left_and_taken_back() {
    if !is_root() || !have("python3") || !have("nft") {
        eprintln!("skipped: needs root, python3 and nft");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = world("live");
    // The first four flows each way must not lose a packet: duplicated over both paths.
    let dup = [
        "--duplicate",
        "udp port 30000-30003",
        "--duplicate",
        "udp port 31000-31003",
    ];
    let mr = start(
        &w.mr,
        "-m",
        dir.path(),
        "mr",
        &[&["--dataplane", "tun"][..], &dup].concat(),
    );
    let ha = start(&w.ha, "-h", dir.path(), "ha", &dup);
    let other = Binding {
        hoa: "2001:db8:1::300".parse().unwrap(),
        coa: CareOf::V6("2001:db8:a::3".parse().unwrap()),
        mnp_v6: vec!["2001:db8:300::/64".parse().unwrap()],
        mnp_v4: vec![],
        binding_id: None,
        ..binding(0, "2001:db8:a::3", 0)
    };
    ha.bus
        .send(&Message::new(Body::BcAdd(Binding {
            coa_ifindex: None,
            ..other
        })))
        .unwrap();
    let b1 = binding(1, "2001:db8:a::2", w.mr.ifindex("eth0"));
    let b2 = binding(2, "2001:db8:b::2", w.mr.ifindex("eth1"));
    for b in [&b1, &b2] {
        mr.bus.send(&Message::new(Body::BulAdd(b.clone()))).unwrap();
        let at_ha = Binding {
            coa_ifindex: None,
            ..b.clone()
        };
        ha.bus.send(&Message::new(Body::BcAdd(at_ha))).unwrap();
    }
    wait_for("the bindings up", Duration::from_secs(10), || {
        log_text(&mr.log).matches("binding up").count() >= 2
            && log_text(&ha.log).matches("binding up").count() >= 3
    });
    let expected = if tests::kernel_dataplane() {
        "kernel"
    } else {
        "tun"
    };
    assert!(log_text(&ha.log).contains(&format!("dataplane=\"{expected}\"")));
    for (ns, dst) in [(&w.mnn, "2001:db8:c::2"), (&w.cn, "2001:db8:100::2")] {
        let out = ns.try_exec("ping", &["-6", "-c", "2", "-i", "0.2", "-W", "2", dst]);
        assert!(
            out.status.success(),
            "{}\n{}",
            log_text(&mr.log),
            log_text(&ha.log)
        );
    }

    let up = start_flows(dir.path(), &w.mnn, &w.cn, "2001:db8:c::2", 30000);
    let down = start_flows(dir.path(), &w.cn, &w.mnn, "2001:db8:100::2", 31000);
    // A second in, eth0's path goes silent both ways; two seconds later it answers again.
    std::thread::sleep(Duration::from_secs(1));
    // (nftables: this kernel has no netem; the link stays up either way.)
    let silence = |ns: &Netns, on: bool| {
        let commands: &[&[&str]] = if on {
            &[
                &["add", "table", "inet", "mcoa_cut"],
                &[
                    "add",
                    "chain",
                    "inet",
                    "mcoa_cut",
                    "out",
                    "{ type filter hook output priority 0; }",
                ],
                &[
                    "add", "rule", "inet", "mcoa_cut", "out", "oifname", "eth0", "drop",
                ],
            ]
        } else {
            &[&["delete", "table", "inet", "mcoa_cut"]]
        };
        for c in commands {
            let out = ns.try_exec("nft", c);
            assert!(out.status.success(), "nft {c:?}: {out:?}");
        }
    };
    silence(&w.mr, true);
    silence(&w.ha, true);
    std::thread::sleep(Duration::from_secs(2));
    silence(&w.mr, false);
    silence(&w.ha, false);
    let eth0_before = [
        link_packets(&w.mr, "eth0", "tx"),
        link_packets(&w.ha, "eth0", "tx"),
    ];
    for (what, run) in [("MNN -> CN", up), ("CN -> MNN", down)] {
        let flows = finish_flows(run);
        let hit: Vec<&(u64, u64, f64)> = flows.iter().filter(|f| f.1 > f.0).collect();
        eprintln!(
            "path liveness, {what}: {} of {LIVE_FLOWS} flows crossed the silenced path; their gaps (ms): {:?}; lost: {:?}",
            hit.len(),
            hit.iter().map(|f| f.2).collect::<Vec<_>>(),
            hit.iter().map(|f| f.1 - f.0).collect::<Vec<_>>()
        );
        assert!(
            !hit.is_empty() && hit.len() < LIVE_FLOWS,
            "{what}: {flows:?}"
        );
        eprintln!(
            "duplicated, {what}: (received, sent, longest gap ms) {:?}",
            &flows[..4]
        );
        // Duplicated: every packet arrived, and once.
        for (i, (got, top, gap)) in flows.iter().enumerate().take(4) {
            assert_eq!(
                got, top,
                "{what}: duplicated flow {i} lost or repeated packets: {flows:?}"
            );
            assert!(
                *gap < 60.0,
                "{what}: duplicated flow {i} paused {gap} ms: {flows:?}"
            );
        }
        for (got, top, gap) in &flows {
            // 100 packets a second per flow: a flow of the silenced path loses what the
            // probes take to notice (4 x 20 ms, and up to one more interval), and no more.
            assert!(
                top - got <= 30,
                "{what}: lost {} of {top}: {flows:?}",
                top - got
            );
            assert!(*gap < 400.0, "{what}: gap {gap} ms: {flows:?}");
            assert!(
                *top >= (LIVE_SECS * 100.0 * 0.8) as u64,
                "{what}: {flows:?}"
            );
        }
    }
    let eth0_after = [
        link_packets(&w.mr, "eth0", "tx"),
        link_packets(&w.ha, "eth0", "tx"),
    ];
    for n in [&mr, &ha] {
        n.proc.signal("USR1");
    }
    std::thread::sleep(Duration::from_millis(200));
    for n in [&mr, &ha] {
        let log = log_text(&n.log);
        let counter = |k: &str| {
            log.lines()
                .rev()
                .find_map(|l| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix(&format!("{k}=")))
                })
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        assert!(counter("dup_tx") > 0 && counter("dup_dropped") > 0, "{log}");
        assert!(log.contains("path silent"), "{log}");
        assert!(log.contains("path heard again"), "{log}");
    }
    // Back in use after it answered: both ends send through eth0 again.
    for i in 0..2 {
        assert!(
            eth0_after[i] > eth0_before[i] + 20,
            "eth0 sent {:?} -> {:?} after it came back",
            eth0_before,
            eth0_after
        );
    }
}

/// (BID, capacity (to, from) kbit/s, packets tunnelled to it) of what `n` carries.
fn capacities(n: &common::Nemonetd) -> Vec<(Option<u16>, (u32, u32), u64)> {
    let Ok(answer) = n.bus.request_state(Duration::from_millis(500), None) else {
        return Vec::new();
    };
    let mut v: Vec<_> = answer
        .owners
        .iter()
        .filter(|o| o.sender.starts_with("nemonetd"))
        .flat_map(|o| &o.items)
        .filter_map(|i| match i {
            mipsock::StateItem::Dataplane(d) => Some((
                d.binding_id,
                d.capacity_kbps.unwrap_or_default(),
                d.packets.map_or(0, |(tx, _)| tx),
            )),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// Issue 15, weights by capacity: the two uplinks carry 40 and 10 Mbit/s each way (a
/// token bucket of about one packet, tbf: this kernel has no netem). The packet pairs of both ends measure each path each way, each end learns what
/// its own packets get from the other's reports, and the flows go through the paths in
/// proportion each way (the MNN's as the MR places them, the CN's as the HA does).
#[test]
fn paths_of_unequal_capacity_are_measured_and_share_the_flows_in_proportion() {
    if !is_root() || !have("python3") || !have("tc") {
        eprintln!("skipped: needs root, python3 and tc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = world("cap");
    for ns in [&w.mr, &w.ha] {
        for (dev, rate) in [("eth0", "40mbit"), ("eth1", "10mbit")] {
            let out = ns.try_exec(
                "tc",
                &[
                    "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "1540",
                    "limit", "100000",
                ],
            );
            if !out.status.success() {
                eprintln!(
                    "skipped: no tbf qdisc here ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return;
            }
        }
    }
    let mr = start(&w.mr, "-m", dir.path(), "mr", &["--dataplane", "tun"]);
    let ha = start(&w.ha, "-h", dir.path(), "ha", &["--dataplane", "tun"]);
    let b1 = binding(1, "2001:db8:a::2", w.mr.ifindex("eth0"));
    let b2 = binding(2, "2001:db8:b::2", w.mr.ifindex("eth1"));
    for b in [&b1, &b2] {
        mr.bus.send(&Message::new(Body::BulAdd(b.clone()))).unwrap();
        let at_ha = Binding {
            coa_ifindex: None,
            ..b.clone()
        };
        ha.bus.send(&Message::new(Body::BcAdd(at_ha))).unwrap();
    }
    // Pairs every 500 ms; the estimate needs three measures and a report back.
    let measured = |n: &common::Nemonetd| {
        let c = capacities(n);
        c.len() == 2 && c.iter().all(|(_, (to, from), _)| *to > 0 && *from > 0)
    };
    for (who, n) in [("router", &mr), ("home agent", &ha)] {
        wait_for(
            &format!("the {who}'s paths measured both ways"),
            Duration::from_secs(20),
            || measured(n),
        );
    }
    // A few more pairs for the estimates to settle.
    std::thread::sleep(Duration::from_secs(3));
    for (who, n) in [("router", &mr), ("home agent", &ha)] {
        let c = capacities(n);
        let ratio = |f: fn(&(u32, u32)) -> u32| f64::from(f(&c[0].1)) / f64::from(f(&c[1].1));
        let (to, from) = (ratio(|c| c.0), ratio(|c| c.1));
        println!("{who}: {c:?}: to {to:.2}, from {from:.2}");
        // 40 against 10 Mbit/s: 4, within what a busy machine's timing allows.
        for r in [to, from] {
            assert!(
                (2.0..=8.0).contains(&r),
                "{who}: capacities {c:?}, ratio {r:.2}\n{}\n{}",
                log_text(&mr.log),
                log_text(&ha.log)
            );
        }
    }
    // The MNN's flows (64, one source port each): about four in five through eth0.
    for (ns, dst) in [(&w.mnn, "2001:db8:c::2"), (&w.mnn, "203.0.113.2")] {
        let fam = if dst.contains(':') { "-6" } else { "-4" };
        let out = ns.try_exec("ping", &[fam, "-c", "2", "-i", "0.2", "-W", "2", dst]);
        assert!(out.status.success(), "ping {dst}");
    }
    // Each way: the MR places the MNN's flows, the HA the CN's.
    for (who, node, from, dst6, dst4) in [
        ("router", &mr, &w.mnn, "2001:db8:c::2", "203.0.113.2"),
        ("home agent", &ha, &w.cn, "2001:db8:100::2", "198.51.100.2"),
    ] {
        let before = capacities(node);
        send_flows(from, dir.path(), dst6, dst4);
        std::thread::sleep(Duration::from_millis(300));
        let after = capacities(node);
        let sent = |i: usize| after[i].2 - before[i].2;
        let share = sent(0) as f64 / (sent(0) + sent(1)) as f64;
        println!(
            "{who}: packets through path 1 {}, path 2 {}: {share:.2}",
            sent(0),
            sent(1)
        );
        assert_eq!(
            sent(0) + sent(1),
            2 * FLOWS * PER,
            "{who}: every flow's packets, once"
        );
        // Each flow whole on one path (PER packets), 0.8 expected of 64 flows.
        assert!(
            (0.62..=0.95).contains(&share),
            "{who}: path 1 took {share:.2} of the flows: {before:?} -> {after:?}"
        );
    }
}
