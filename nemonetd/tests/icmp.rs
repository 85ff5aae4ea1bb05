//! ICMP errors on the tunnel path (RFC 2473 §8; issue 11), in network namespaces (root):
//! a router between the home agent and the mobile router's care-of address has a smaller
//! MTU, or the tunnel's hop limit runs out there; the real nemonetd at the tunnel entry
//! must report it to the original sender, who otherwise never learns why its packets
//! vanish.
//!
//! ```text
//!  MNN ──mnn0── MR ──eth0── RT ──b0── HA ──cn0── CN
//!  2001:db8:100::2  2001:db8:a::2 (CoA)  | 2001:db8:b::2 (HA)   2001:db8:c::2
//!  198.51.100.2     MTU 1400 on a0/eth0  |  192.0.2.x           203.0.113.2
//! ```
//!
//! * The CN sends 1460-octet IPv6 and IPv4 (DF) packets to the MNN: the HA's TUN takes
//!   them (MTU 1500 - 40), the router cannot forward the 1500-octet tunnel packets onto its
//!   1400 link and tells the HA; the CN must get Packet Too Big with MTU 1360 (IPv6) and
//!   "fragmentation needed", MTU 1360 (IPv4), from the HA.
//! * With the tunnel hop limit at 1 (`--hop-limit 1`), the router drops every tunnel packet
//!   with Time Exceeded to the HA; the CN must get Destination Unreachable (address / host
//!   unreachable) promptly instead of silence.
//! * The same narrow link under an IPv4 tunnel (the MR's IPv4 care-of address 192.0.2.2,
//!   IP in IPv4 to the HA's 192.0.2.66): the router's ICMPv4 "fragmentation needed", MTU
//!   1400, becomes MTU 1380 (1400 - 20) for the CN, over IPv6 and IPv4.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Nemonetd, is_root, start, wait_for};
use mipsock::{Binding, Body, BuFlags, CareOf, Encapsulation, Message};
use tests::{Netns, veth};

struct World {
    mnn: Netns,
    mr: Netns,
    rt: Netns,
    ha: Netns,
    cn: Netns,
}

fn world(test: &str) -> World {
    let w = World {
        mnn: Netns::new(&format!("nic-{test}-mnn")),
        mr: Netns::new(&format!("nic-{test}-mr")),
        rt: Netns::new(&format!("nic-{test}-rt")),
        ha: Netns::new(&format!("nic-{test}-ha")),
        cn: Netns::new(&format!("nic-{test}-cn")),
    };
    veth(&w.mnn, "eth0", &w.mr, "mnn0");
    veth(&w.mr, "eth0", &w.rt, "a0");
    veth(&w.rt, "b0", &w.ha, "eth0");
    veth(&w.ha, "cn0", &w.cn, "eth0");
    for (ns, dev, v6, v4) in [
        (&w.mnn, "eth0", "2001:db8:100::2/64", "198.51.100.2/24"),
        (&w.mr, "mnn0", "2001:db8:100::1/64", "198.51.100.1/24"),
        (&w.mr, "eth0", "2001:db8:a::2/64", "192.0.2.2/26"),
        (&w.rt, "a0", "2001:db8:a::1/64", "192.0.2.1/26"),
        (&w.rt, "b0", "2001:db8:b::1/64", "192.0.2.65/26"),
        (&w.ha, "eth0", "2001:db8:b::2/64", "192.0.2.66/26"),
        (&w.ha, "cn0", "2001:db8:c::1/64", "203.0.113.1/24"),
        (&w.cn, "eth0", "2001:db8:c::2/64", "203.0.113.2/24"),
    ] {
        ns.ip(&["addr", "add", v6, "dev", dev, "nodad"]);
        ns.ip(&["addr", "add", v4, "dev", dev]);
    }
    // The access link between the router and the MR is the narrow one.
    w.rt.ip(&["link", "set", "a0", "mtu", "1400"]);
    w.mr.ip(&["link", "set", "eth0", "mtu", "1400"]);
    for ns in [&w.mr, &w.rt, &w.ha] {
        ns.sysctl("net.ipv6.conf.all.forwarding", "1");
        ns.sysctl("net.ipv4.ip_forward", "1");
    }
    w.mnn
        .ip(&["-6", "route", "add", "default", "via", "2001:db8:100::1"]);
    w.mnn
        .ip(&["route", "add", "default", "via", "198.51.100.1"]);
    w.mr.ip(&["-6", "route", "add", "default", "via", "2001:db8:a::1"]);
    w.ha.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:a::/64",
        "via",
        "2001:db8:b::1",
    ]);
    w.cn.ip(&["-6", "route", "add", "default", "via", "2001:db8:c::1"]);
    w.cn.ip(&["route", "add", "default", "via", "203.0.113.1"]);
    w
}

fn binding() -> Binding {
    Binding {
        hoa: "2001:db8:1::100".parse().unwrap(),
        hoa_v4: None,
        coa: CareOf::V6("2001:db8:a::2".parse().unwrap()),
        ha: "2001:db8:b::2".parse().unwrap(),
        ha_v4: None,
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

/// Starts both ends with the binding; `ha_extra` are the HA's extra flags; both use the
/// data plane `dataplane`.
fn tunnel(w: &World, dir: &Path, dataplane: &str, ha_extra: &[&str]) -> (Nemonetd, Nemonetd) {
    let mr = start(&w.mr, "-m", dir, "mr", &["--dataplane", dataplane]);
    let mut ha_args = vec!["--dataplane", dataplane];
    ha_args.extend_from_slice(ha_extra);
    let ha = start(&w.ha, "-h", dir, "ha", &ha_args);
    let b = binding();
    mr.bus.send(&Message::new(Body::BulAdd(b.clone()))).unwrap();
    ha.bus.send(&Message::new(Body::BcAdd(b))).unwrap();
    wait_for(
        "the HA's route to the mobile network",
        Duration::from_secs(10),
        || {
            w.ha.ip_text(&["-6", "route", "show", "proto", "110", "table", "all"])
                .contains("2001:db8:100::/64")
                && w.mr
                    .ip_text(&["-6", "rule", "show"])
                    .contains("from 2001:db8:100::/64")
        },
    );
    (mr, ha)
}

/// `ping` from `ns` with the given arguments; its whole output.
fn ping(ns: &Netns, args: &[&str]) -> String {
    let out = ns.try_exec("ping", args);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// [`ping`] with its arguments written as one line.
fn ping_line(ns: &Netns, line: &str) -> String {
    ping(ns, &line.split_whitespace().collect::<Vec<_>>())
}

fn logs(a: &Nemonetd, b: &Nemonetd) -> String {
    format!(
        "==== MR\n{}\n==== HA\n{}",
        std::fs::read_to_string(&a.log).unwrap_or_default(),
        std::fs::read_to_string(&b.log).unwrap_or_default()
    )
}

#[test]
fn packet_too_big_on_the_tunnel_path_reaches_the_sender() {
    packet_too_big("tun");
}

/// The kernel data plane sends the tunnel packets; the errors about them still reach
/// nemonetd's ICMPv6 socket and are relayed.
#[test]
fn packet_too_big_on_the_kernel_tunnel_path_reaches_the_sender() {
    if tests::skip_without_kernel_dataplane(
        "packet_too_big_on_the_kernel_tunnel_path_reaches_the_sender",
    ) {
        return;
    }
    packet_too_big("kernel");
}

fn packet_too_big(dataplane: &str) {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = world(if dataplane == "kernel" { "kptb" } else { "ptb" });
    let (mr, ha) = tunnel(&w, dir.path(), dataplane, &[]);
    // Small packets cross: the tunnel works.
    let ok = ping(
        &w.cn,
        &["-6", "-c", "2", "-i", "0.2", "-W", "2", "2001:db8:100::2"],
    );
    assert!(ok.contains(" 0% packet loss"), "{ok}\n{}", logs(&mr, &ha));

    // 40 + 8 + 1412 = 1460 octets: the TUN takes it, the 1500-octet tunnel packet does
    // not fit the router's 1400 link.
    let big = ping(
        &w.cn,
        &[
            "-6",
            "-c",
            "3",
            "-i",
            "0.3",
            "-W",
            "1",
            "-M",
            "do",
            "-s",
            "1412",
            "2001:db8:100::2",
        ],
    );
    assert!(
        big.contains("mtu=1360") || big.contains("mtu = 1360"),
        "the CN did not learn MTU 1360 (1400 - 40): {big}\n{}",
        logs(&mr, &ha)
    );
    let route = w.cn.ip_text(&["-6", "route", "get", "2001:db8:100::2"]);
    assert!(route.contains("mtu 1360"), "the CN's path MTU: {route}");
    // And then fitting packets get through.
    let fits = ping(
        &w.cn,
        &[
            "-6",
            "-c",
            "2",
            "-i",
            "0.3",
            "-W",
            "2",
            "-s",
            "1300",
            "2001:db8:100::2",
        ],
    );
    assert!(fits.contains(" 0% packet loss"), "{fits}");

    // IPv4 with DF: 20 + 8 + 1432 = 1460.
    let big4 = ping(
        &w.cn,
        &[
            "-4",
            "-c",
            "3",
            "-i",
            "0.3",
            "-W",
            "1",
            "-M",
            "do",
            "-s",
            "1432",
            "198.51.100.2",
        ],
    );
    assert!(
        big4.contains("mtu = 1360") || big4.contains("mtu=1360"),
        "the CN did not learn MTU 1360 over IPv4: {big4}\n{}",
        logs(&mr, &ha)
    );
    // A datagram its sender lets be fragmented (DF clear), too large for the link.
    let dont = ping_line(&w.cn, "-4 -c 3 -i 0.3 -W 2 -M dont -s 1432 198.51.100.2");
    assert!(
        dont.contains(" 0% packet loss"),
        "DF clear: {dont}\n{}",
        logs(&mr, &ha)
    );
}

#[test]
fn time_exceeded_on_the_tunnel_path_is_unreachable_for_the_sender() {
    time_exceeded("tun");
}

/// The kernel's SRv6 encapsulation copies an IPv6 packet's hop limit into the outer
/// header (the tunnel hop limit applies to IPv4 inside only): an IPv6 packet that reaches
/// the HA with hop limit 2 runs out at the router instead.
#[test]
fn time_exceeded_on_the_kernel_tunnel_path_is_unreachable_for_the_sender() {
    if tests::skip_without_kernel_dataplane(
        "time_exceeded_on_the_kernel_tunnel_path_is_unreachable_for_the_sender",
    ) {
        return;
    }
    time_exceeded("kernel");
}

fn time_exceeded(dataplane: &str) {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = world(if dataplane == "kernel" { "khop" } else { "hop" });
    // The tunnel packets leave the HA with hop limit 1: the router cannot forward them.
    let (mr, ha) = tunnel(&w, dir.path(), dataplane, &["--hop-limit", "1"]);
    // CN -> HA takes one hop: the packet leaves the HA with hop limit 2 inside, and 2
    // outside on the kernel path, 1 once the HA forwards it.
    let out = ping(
        &w.cn,
        &["-6", "-c", "1", "-W", "3", "-t", "3", "2001:db8:100::2"],
    );
    assert!(
        out.contains("Address unreachable") || out.contains("Destination unreachable"),
        "no Destination Unreachable for the CN: {out}\n{}",
        logs(&mr, &ha)
    );
    let out4 = ping(&w.cn, &["-4", "-c", "1", "-W", "3", "198.51.100.2"]);
    assert!(
        out4.contains("Host Unreachable") || out4.contains("Destination Host Unreachable"),
        "no ICMPv4 host unreachable for the CN: {out4}\n{}",
        logs(&mr, &ha)
    );
}

/// An IPv4 tunnel (IP in IPv4) over the narrow link: the router's ICMPv4 "fragmentation
/// needed" about the tunnel packets reaches the CN as Packet Too Big / fragmentation
/// needed with the MTU left inside the tunnel. Before, the HA read no ICMPv4 and the
/// CN's large packets vanished.
#[test]
fn fragmentation_needed_on_an_ipv4_tunnel_path_reaches_the_sender() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let w = world("ptb4");
    w.mr.ip(&["route", "add", "192.0.2.64/26", "via", "192.0.2.1"]);
    w.ha.ip(&["route", "add", "192.0.2.0/26", "via", "192.0.2.65"]);
    let mr = start(&w.mr, "-m", dir.path(), "mr", &["--dataplane", "tun"]);
    let ha = start(&w.ha, "-h", dir.path(), "ha", &["--dataplane", "tun"]);
    let mut b = binding();
    b.coa = CareOf::V4 {
        addr: "192.0.2.2".parse().unwrap(),
        udp_port: None,
    };
    b.ha_v4 = Some("192.0.2.66".parse().unwrap());
    b.encapsulation = Encapsulation::InIpv4;
    mr.bus.send(&Message::new(Body::BulAdd(b.clone()))).unwrap();
    ha.bus.send(&Message::new(Body::BcAdd(b))).unwrap();
    wait_for("the IPv4 tunnel", Duration::from_secs(10), || {
        ping(&w.cn, &["-6", "-c", "1", "-W", "1", "2001:db8:100::2"]).contains(" 0% packet loss")
    });
    // A datagram its sender lets be fragmented (DF clear) is not dropped for its size:
    // the tunnel packet leaves DF clear too (RFC 2003 §5.1), and the router fragments it.
    // It once carried DF whatever the inner packet said, and was lost until the HA's
    // kernel had learnt the path's MTU from the router (then it fragments what we send):
    // first of all here, before anything taught it.
    let dont = ping_line(&w.cn, "-4 -c 2 -i 0.3 -W 2 -M dont -s 1600 198.51.100.2");
    assert!(
        dont.contains(" 0% packet loss"),
        "{dont}\n{}",
        logs(&mr, &ha)
    );
    for (family, size, dst) in [
        ("-6", "1412", "2001:db8:100::2"),
        ("-4", "1432", "198.51.100.2"),
    ] {
        let big = ping(
            &w.cn,
            &[
                family, "-c", "3", "-i", "0.3", "-W", "1", "-M", "do", "-s", size, dst,
            ],
        );
        assert!(
            big.contains("mtu=1380") || big.contains("mtu = 1380"),
            "{family}: the CN did not learn MTU 1380 (1400 - 20): {big}\n{}",
            logs(&mr, &ha)
        );
    }
    // And then fitting packets get through.
    let fits = ping_line(&w.cn, "-4 -c 2 -i 0.3 -W 2 -s 1300 198.51.100.2");
    assert!(fits.contains(" 0% packet loss"), "{fits}");
}
