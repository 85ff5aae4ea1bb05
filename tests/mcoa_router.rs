//! Multiple care-of addresses on the mobile router (RFC 5648, issue 15), black-box: the
//! real babymdd and mrd with `multiple-care-of-addresses yes;` and two uplinks.
//!
//! ```text
//!        ┌─ eth0 2001:db8:a::5 (BID 1) ──── 2001:db8:a::1 up0 ─┐
//!   mr ──┤                                                      ├── ha
//!        └─ eth1 2001:db8:b::5 (BID 2) ──── 2001:db8:b::1 up1 ─┘
//! ```
//!
//! With a home agent played by scapy (2001:db8:1::1 on its loopback), which reads the
//! Binding Updates octet by octet and answers each with a Binding Acknowledgement carrying
//! a Binding Identifier option per BID:
//!
//! * babymdd lists both uplinks; mrd sends one bulk BU from eth0's care-of address: the
//!   O flag, an Alternate CoA, and two Binding Identifier options (BID 1 and 2, each with
//!   its care-of address, at 8n+2), as tshark decodes them too.
//! * The BA's BID options make two BUL_ADDs: `mipsock state` lists the router's bindings
//!   with BID 1 and 2, their care-of addresses and interfaces.
//! * eth1 goes down: babymdd's REREG keeps the care-of address and lists one uplink, the
//!   next BU lists BID 1 alone, and after its BA BID 2's binding is gone from the bus.
//!
//! With the real had and nemonetd -h (the home link behind the home agent's `eth0`, the
//! samples' RFC 4285 keys): the same two bindings, then one, on both buses.
//!
//! With IPv4 uplinks behind NATs beside the IPv6 one (RFC 5648 §8.1, RFC 5555), the real
//! had, mrd, babymdd and both nemonetd:
//!
//! ```text
//!        ┌─ eth0 2001:db8:a::5 (BID 1) ─────────────────────── up0 ─┐
//!   mr ──┼─ eth1 10.1.0.5 (BID 2) ── nat1 (masquerade) ── 172.16.1.1 ─┼── ha 203.0.113.1
//!        └─ eth2 10.2.0.5 (BID 3) ── nat2 (masquerade) ── 172.16.2.1 ─┘
//! ```
//!
//! * each IPv4 uplink registers by a BU of its own, in UDP from its address through its
//!   interface: had holds three bindings, the IPv4 ones at their NAT's address and port,
//!   and mrd three with its own addresses;
//! * every path is up on both ends (nemonetd's path probes heard through it: on the
//!   router, the two IPv4 paths share one far end, the home agent's 203.0.113.1:4191,
//!   and are told apart by the address a packet came to);
//! * eth2 goes down: its binding leaves mrd at once and had with the next bulk BU.

use std::path::Path;
use std::time::Duration;

use tests::setup::{
    Files, HOA, files, log_of, mipsock_state, spawn_in, start_home_agent, start_mr_dataplane,
    start_mrd,
};
use tests::{Daemon, Netns, have, require_root, veth, wait_until};

const HA: &str = "2001:db8:1::1";
const COA1: &str = "2001:db8:a::5";
const COA2: &str = "2001:db8:b::5";
const LONG: Duration = Duration::from_secs(30);

/// The home agent: answers every BU to `ha` with a BA (status 0, R, the BU's sequence
/// number and lifetime) through a type 2 routing header to the BU's source, with a BID
/// option (status 0, no care-of address) per BID the BU listed. Prints each BU (`bu SEQ
/// FLAGS LIFETIME SOURCE`, then `acoa ADDR`, `bid BID STATUS FLAGS COA OFFSET`, `opt
/// TYPE`), keeps them in `bu.pcap`; touches `ready` once sniffing; stops after a BU with
/// a single BID, or after 40 s.
const HA_SCAPY: &str = r#"
import sys, os, ipaddress
from scapy.all import *
conf.verb = 0
ha, hoa, outdir = sys.argv[1], sys.argv[2], sys.argv[3]
seen = []
state = {"stop": False}

def mh_of(raw):
    nh, off = raw[6], 40
    while nh in (0, 43, 60):
        nh, off = raw[off], off + (raw[off + 1] + 1) * 8
    return nh, raw[off:]

def csum(src, dst, data):
    b = (ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
         + len(data).to_bytes(4, "big") + bytes([0, 0, 0, 135]) + data)
    if len(b) % 2:
        b += b"\0"
    s = sum((b[i] << 8) | b[i + 1] for i in range(0, len(b), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

def is_bu(p):
    if IPv6 not in p or p[IPv6].dst != ha:
        return False
    nh, mh = mh_of(bytes(p[IPv6]))
    return nh == 135 and len(mh) >= 12 and mh[2] == 5

def on_bu(p):
    src = p[IPv6].src
    _, mh = mh_of(bytes(p[IPv6]))
    seq, flags, life = (int.from_bytes(mh[i:i + 2], "big") for i in (6, 8, 10))
    lines, bids, off = [f"bu {seq} {flags:#06x} {life} {src}"], [], 12
    while off < (mh[1] + 1) * 8:
        t = mh[off]
        if t == 0:
            off += 1
            continue
        n = mh[off + 1]
        d = mh[off + 2:off + 2 + n]
        if t == 3:
            lines.append(f"acoa {ipaddress.IPv6Address(d)}")
        elif t == 35:
            coa = str(ipaddress.IPv6Address(d[4:20])) if n == 20 else "-"
            lines.append(f"bid {int.from_bytes(d[0:2], 'big')} {d[2]} {d[3]:#04x} {coa} {off}")
            bids.append(int.from_bytes(d[0:2], "big"))
        elif t != 1:
            lines.append(f"opt {t}")
        off += 2 + n
    seen.append((p, lines))
    body = bytes([0, 0x40]) + seq.to_bytes(2, "big") + life.to_bytes(2, "big")
    body += b"".join(bytes([35, 4]) + b.to_bytes(2, "big") + bytes([0, 0]) for b in bids)
    pad = -(6 + len(body)) % 8
    body += b"\0" if pad == 1 else (bytes([1, pad - 2]) + bytes(pad - 2) if pad else b"")
    mh = bytes([59, (6 + len(body)) // 8 - 1, 6, 0, 0, 0]) + body
    c = csum(ha, hoa, mh)
    mh = mh[:4] + c.to_bytes(2, "big") + mh[6:]
    send(IPv6(src=ha, dst=src) / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[hoa], nh=135)
         / Raw(mh), iface="up0")
    if len(bids) == 1:
        state["stop"] = True

sniffer = AsyncSniffer(iface=["up0", "up1"], lfilter=is_bu, prn=on_bu,
                       stop_filter=lambda p: state["stop"], timeout=40)
sniffer.start()
time.sleep(0.5)
open(os.path.join(outdir, "ready"), "w").close()
sniffer.join()
wrpcap(os.path.join(outdir, "bu.pcap"), [p for p, _ in seen])
for _, lines in seen:
    for l in lines:
        print(l, flush=True)
print("end", flush=True)
"#;

/// (BID, care-of address, interface index) of what `owner` holds on `bus` (mrd: its
/// BUL entries, had: its binding cache), sorted.
fn bindings(bus: &Path, owner: &str) -> Vec<(Option<u16>, String, Option<u32>)> {
    let out = mipsock_state(bus, &["--timeout-ms", "1000"]);
    let mut v: Vec<_> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["owner"] == owner)
        .filter_map(|v| {
            match serde_json::from_value::<mipsock::StateItem>(v["item"].clone()).ok()? {
                mipsock::StateItem::Bul(b) | mipsock::StateItem::Bc(b) => {
                    Some((b.binding_id, b.coa.to_string(), b.coa_ifindex))
                }
                _ => None,
            }
        })
        .collect();
    v.sort();
    v
}

/// The router's bindings on its bus.
fn buls(bus: &Path) -> Vec<(Option<u16>, String, Option<u32>)> {
    bindings(bus, "mrd")
}

/// The home agent's bindings on its bus: (BID, care-of address).
fn bcs(bus: &Path) -> Vec<(Option<u16>, String)> {
    bindings(bus, "had")
        .into_iter()
        .map(|(id, coa, _)| (id, coa))
        .collect()
}

/// The two namespaces of the sketch above, the router's `mip0` holding the home address,
/// and the sample configurations with both interfaces and MCoA on.
fn uplinks(tag: &str) -> (Netns, Netns, Files) {
    let mr = Netns::new(&format!("{tag}-mr"));
    let ha = Netns::new(&format!("{tag}-ha"));
    for ns in [&mr, &ha] {
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
    }
    veth(&mr, "eth0", &ha, "up0");
    veth(&mr, "eth1", &ha, "up1");
    for (ns, a, dev) in [
        (&mr, "2001:db8:a::5/64", "eth0"),
        (&mr, "2001:db8:b::5/64", "eth1"),
        (&ha, "2001:db8:a::1/64", "up0"),
        (&ha, "2001:db8:b::1/64", "up1"),
    ] {
        ns.ip(&["addr", "add", a, "dev", dev, "nodad"]);
    }
    mr.ip(&[
        "link", "add", "mip0", "type", "veth", "peer", "name", "mip0p",
    ]);
    mr.ip(&["link", "set", "mip0", "up"]);
    mr.ip(&["link", "set", "mip0p", "up"]);
    mr.ip(&["addr", "add", &format!("{HOA}/128"), "dev", "mip0", "nodad"]);
    mr.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:1::/64",
        "via",
        "2001:db8:a::1",
    ]);
    let f = files(&[
        ("egress-interface eth0", "egress-interface eth0 eth1"),
        (
            "# multiple-care-of-addresses yes;",
            "multiple-care-of-addresses yes;",
        ),
    ]);
    (mr, ha, f)
}

/// babymdd on the router, reading mrd.conf. Log `babymdd.log`.
fn start_babymdd(mr: &Netns, f: &Files) -> Daemon {
    let bus = f.mr_bus.to_str().unwrap();
    let conf = f.mrd_conf.to_str().unwrap();
    spawn_in(
        mr,
        f,
        "babymdd",
        "babymdd",
        &["-d", "-f", "-h", "mip0", "-c", conf, "-b", bus],
        "babymdd ready",
    )
}

/// The logs of the daemons named, for a failure message.
fn logs(f: &Files, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            let log = log_of(&f.dir.path().join(format!("{n}.log")));
            format!("==== {n}\n{log}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn bulk_registration_of_two_uplinks_then_one() {
    require_root();
    let (mr, ha, f) = uplinks("mcr");
    ha.ip(&["addr", "add", "2001:db8:1::1/128", "dev", "lo"]);
    // No keys: scapy does not sign.
    let conf: String = std::fs::read_to_string(&f.mrd_conf)
        .unwrap()
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("auth-database") {
                "\tauthentication none;"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&f.mrd_conf, conf).unwrap();
    let dir = f.dir.path().to_path_buf();
    let dir_s = dir.to_str().unwrap().to_string();

    std::thread::scope(|s| {
        let scapy = s.spawn(|| ha.scapy(&dir, "ha.py", HA_SCAPY, &[HA, HOA, &dir_s]));
        assert!(
            wait_until(LONG, || dir.join("ready").exists()),
            "scapy did not start"
        );
        let _mrd = start_mrd(&mr, &f);
        let _babymdd = start_babymdd(&mr, &f);
        let logs = || logs(&f, &["mrd", "babymdd"]);
        let (if0, if1) = (mr.ifindex("eth0"), mr.ifindex("eth1"));
        let both = vec![
            (Some(1), COA1.to_string(), Some(if0)),
            (Some(2), COA2.to_string(), Some(if1)),
        ];
        assert!(
            wait_until(LONG, || buls(&f.mr_bus) == both),
            "no BUL_ADD per BID: {:?}\n{}",
            buls(&f.mr_bus),
            logs()
        );

        // eth1 goes: one uplink left, the same care-of address.
        mr.ip(&["link", "set", "eth1", "down"]);
        let one = vec![(Some(1), COA1.to_string(), Some(if0))];
        assert!(
            wait_until(LONG, || buls(&f.mr_bus) == one),
            "BID 2 not removed: {:?}\n{}",
            buls(&f.mr_bus),
            logs()
        );
        let text = scapy.join().unwrap();
        let bus_lines: Vec<&str> = text.lines().collect();
        // The first BU: from eth0's care-of address, A|H|R|O, the Alternate CoA, both
        // BIDs with their care-of addresses at 8n+2.
        let first = bus_lines
            .iter()
            .position(|l| l.starts_with("bu "))
            .expect("a BU");
        let bu: Vec<&str> = bus_lines[first].split(' ').collect();
        assert_eq!(bu[2], "0xc440", "A|H|R|O: {text}");
        assert_eq!(bu[4], COA1, "{text}");
        let bids: Vec<&str> = bus_lines[first + 1..]
            .iter()
            .take_while(|l| !l.starts_with("bu "))
            .copied()
            .collect();
        assert!(bids.contains(&format!("acoa {COA1}").as_str()), "{text}");
        let bid_lines: Vec<Vec<&str>> = bids
            .iter()
            .filter(|l| l.starts_with("bid "))
            .map(|l| l.split(' ').collect())
            .collect();
        assert_eq!(bid_lines.len(), 2, "{text}");
        for (l, (id, coa)) in bid_lines.iter().zip([("1", COA1), ("2", COA2)]) {
            // H clear, BID-PRI 1 (RFC 6089 §4.1: never 0; the default).
            assert_eq!(&l[1..5], &[id, "0", "0x01", coa], "{text}");
            assert_eq!(l[5].parse::<usize>().unwrap() % 8, 2, "alignment: {text}");
        }
        // The last BU: BID 1 alone, O still set.
        let last = bus_lines
            .iter()
            .rposition(|l| l.starts_with("bu "))
            .unwrap();
        assert!(last > first, "{text}");
        assert!(bus_lines[last].contains(" 0xc440 "), "{text}");
        let tail: Vec<&&str> = bus_lines[last + 1..]
            .iter()
            .filter(|l| l.starts_with("bid "))
            .collect();
        assert_eq!(tail.len(), 1, "{text}");
        assert!(
            tail[0].starts_with(&format!("bid 1 0 0x01 {COA1}")),
            "{text}"
        );

        // Wireshark's dissector agrees.
        if have("tshark") {
            let out = std::process::Command::new("tshark")
                .args(["-r", dir.join("bu.pcap").to_str().unwrap(), "-V", "-c", "1"])
                .output()
                .unwrap();
            let v = String::from_utf8_lossy(&out.stdout);
            assert!(v.contains("Binding Identifier"), "{v}");
            for coa in [COA1, COA2] {
                assert!(v.contains(coa), "{coa} not in\n{v}");
            }
        } else {
            eprintln!("tshark missing: the BU's dissection is not cross-checked");
        }
    });
}

#[test]
fn with_the_real_home_agent() {
    require_root();
    let (mr, ha, f) = uplinks("mch");
    let hl = Netns::new("mch-hl");
    veth(&hl, "eth0", &ha, "eth0");
    ha.ip(&["addr", "add", "2001:db8:1::1/64", "dev", "eth0", "nodad"]);
    hl.ip(&["addr", "add", "2001:db8:1::50/64", "dev", "eth0", "nodad"]);
    ha.sysctl("net.ipv6.conf.all.forwarding", "1");
    let (_had, _nemonetd) = start_home_agent(&ha, &f, "up0");
    let _mrd = start_mrd(&mr, &f);
    let _babymdd = start_babymdd(&mr, &f);
    let logs = || logs(&f, &["mrd", "babymdd", "had"]);
    let (if0, if1) = (mr.ifindex("eth0"), mr.ifindex("eth1"));
    let both = vec![
        (Some(1), COA1.to_string(), Some(if0)),
        (Some(2), COA2.to_string(), Some(if1)),
    ];
    assert!(
        wait_until(LONG, || buls(&f.mr_bus) == both),
        "router: {:?}\n{}",
        buls(&f.mr_bus),
        logs()
    );
    let at_ha = [(Some(1), COA1.to_string()), (Some(2), COA2.to_string())];
    assert!(
        wait_until(LONG, || bcs(&f.ha_bus) == at_ha),
        "home agent: {:?}\n{}",
        bcs(&f.ha_bus),
        logs()
    );
    mr.ip(&["link", "set", "eth1", "down"]);
    let one = vec![(Some(1), COA1.to_string(), Some(if0))];
    assert!(
        wait_until(LONG, || buls(&f.mr_bus) == one),
        "router: {:?}\n{}",
        buls(&f.mr_bus),
        logs()
    );
    assert!(
        wait_until(LONG, || bcs(&f.ha_bus) == at_ha[..1]),
        "home agent: {:?}\n{}",
        bcs(&f.ha_bus),
        logs()
    );
}

/// (BID, path up) of what nemonetd carries for the home address on `bus`, sorted.
fn paths(bus: &Path) -> Vec<(Option<u16>, bool)> {
    let out = mipsock_state(bus, &["--timeout-ms", "1000"]);
    let mut v: Vec<_> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["owner"] == "nemonetd")
        .filter_map(|v| {
            match serde_json::from_value::<mipsock::StateItem>(v["item"].clone()).ok()? {
                mipsock::StateItem::Dataplane(d) => Some((d.binding_id, d.path_up)),
                _ => None,
            }
        })
        .collect();
    v.sort();
    v
}

/// Whether the care-of addresses of `got` are `want`'s, an IPv4 one behind a NAT
/// (`NAT_WAN:*`) at any port.
fn coas_match(got: &[(Option<u16>, String)], want: &[(Option<u16>, &str)]) -> bool {
    got.len() == want.len()
        && got.iter().zip(want).all(|((ga, gc), (wa, wc))| {
            ga == wa
                && match wc.strip_suffix(":*") {
                    Some(addr) => gc.starts_with(&format!("{addr}:")),
                    None => gc == wc,
                }
        })
}

#[test]
fn ipv4_uplinks_behind_nats_beside_an_ipv6_one_with_the_real_home_agent() {
    require_root();
    let mr = Netns::new("mc4-mr");
    let ha = Netns::new("mc4-ha");
    let hl = Netns::new("mc4-hl");
    let nats = [Netns::new("mc4-nat1"), Netns::new("mc4-nat2")];
    for ns in [&mr, &ha, &hl] {
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
    }
    let a = |ns: &Netns, addr: &str, dev: &str| ns.ip(&["addr", "add", addr, "dev", dev, "nodad"]);
    veth(&mr, "eth0", &ha, "up0");
    a(&mr, "2001:db8:a::5/64", "eth0");
    a(&ha, "2001:db8:a::1/64", "up0");
    veth(&hl, "eth0", &ha, "eth0");
    a(&ha, "2001:db8:1::1/64", "eth0");
    a(&ha, "203.0.113.1/24", "eth0");
    a(&hl, "2001:db8:1::50/64", "eth0");
    ha.sysctl("net.ipv6.conf.all.forwarding", "1");
    ha.sysctl("net.ipv4.ip_forward", "1");
    for (i, nat) in nats.iter().enumerate() {
        let n = i + 1;
        veth(&mr, &format!("eth{n}"), nat, "lan");
        veth(nat, "wan", &ha, &format!("wan{n}"));
        a(&mr, &format!("10.{n}.0.5/24"), &format!("eth{n}"));
        a(nat, &format!("10.{n}.0.1/24"), "lan");
        a(nat, &format!("172.16.{n}.2/24"), "wan");
        a(&ha, &format!("172.16.{n}.1/24"), &format!("wan{n}"));
        nat.ip(&["route", "add", "default", "via", &format!("172.16.{n}.1")]);
        nat.sysctl("net.ipv4.ip_forward", "1");
        let rules = "table ip nat {\n chain post {\n  type nat hook postrouting priority srcnat;\n  \
                     oifname \"wan\" masquerade random\n }\n}\n";
        let path = std::env::temp_dir().join(format!("mc4-nft-{}-{n}", std::process::id()));
        std::fs::write(&path, rules).unwrap();
        nat.exec("nft", &["-f", path.to_str().unwrap()]);
        let _ = std::fs::remove_file(path);
        // Each uplink its own default route: a BU or tunnel packet from its address leaves
        // through it (nemonetd names the interface).
        mr.ip(&[
            "route",
            "add",
            "default",
            "via",
            &format!("10.{n}.0.1"),
            "dev",
            &format!("eth{n}"),
            "metric",
            &format!("{}", 100 * n),
        ]);
    }
    mr.ip(&[
        "link", "add", "mip0", "type", "veth", "peer", "name", "mip0p",
    ]);
    mr.ip(&["link", "set", "mip0", "up"]);
    mr.ip(&["link", "set", "mip0p", "up"]);
    a(&mr, &format!("{HOA}/128"), "mip0");
    mr.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:1::/64",
        "via",
        "2001:db8:a::1",
    ]);
    let f = files(&[
        ("egress-interface eth0", "egress-interface eth0 eth1 eth2"),
        (
            "# multiple-care-of-addresses yes;",
            "multiple-care-of-addresses yes;",
        ),
    ]);
    let (_had, _nemonetd_ha) = start_home_agent(&ha, &f, "up0");
    let _nemonetd_mr = start_mr_dataplane(&mr, &f);
    let _mrd = start_mrd(&mr, &f);
    let _babymdd = start_babymdd(&mr, &f);
    let logs = || logs(&f, &["mrd", "babymdd", "had", "nemonetd-mr", "nemonetd-ha"]);
    let ifx = |n: &str| Some(mr.ifindex(n));
    let three = vec![
        (Some(1), COA1.to_string(), ifx("eth0")),
        (Some(2), "10.1.0.5:4191".to_string(), ifx("eth1")),
        (Some(3), "10.2.0.5:4191".to_string(), ifx("eth2")),
    ];
    assert!(
        wait_until(LONG, || buls(&f.mr_bus) == three),
        "router: {:?}\n{}",
        buls(&f.mr_bus),
        logs()
    );
    let at_ha = [
        (Some(1), COA1),
        (Some(2), "172.16.1.2:*"),
        (Some(3), "172.16.2.2:*"),
    ];
    assert!(
        wait_until(LONG, || coas_match(&bcs(&f.ha_bus), &at_ha)),
        "home agent: {:?}\n{}",
        bcs(&f.ha_bus),
        logs()
    );
    // Every path heard on both ends.
    let up = vec![(Some(1), true), (Some(2), true), (Some(3), true)];
    for (who, bus) in [("router", &f.mr_bus), ("home agent", &f.ha_bus)] {
        assert!(
            wait_until(LONG, || paths(bus) == up),
            "{who}'s paths: {:?}\n{}",
            paths(bus),
            logs()
        );
    }
    // The MR's own traffic reaches the home link through the tunnel.
    assert!(
        wait_until(LONG, || mr
            .try_exec("ping", &["-c", "1", "-W", "1", "-I", HOA, "2001:db8:1::50"])
            .status
            .success()),
        "no ping through the tunnel\n{}",
        logs()
    );

    // eth2 goes: withdrawn on the router at once, at the home agent by the next bulk BU.
    mr.ip(&["link", "set", "eth2", "down"]);
    assert!(
        wait_until(LONG, || buls(&f.mr_bus) == three[..2]),
        "router: {:?}\n{}",
        buls(&f.mr_bus),
        logs()
    );
    assert!(
        wait_until(LONG, || coas_match(&bcs(&f.ha_bus), &at_ha[..2])),
        "home agent: {:?}\n{}",
        bcs(&f.ha_bus),
        logs()
    );
}
