//! Proxy neighbour discovery for a registered home address (RFC 6275 §10.4.1, RFC 4861
//! §7.2.8; issue 11), black-box: the real `had` and `nemonetd -h` defend the home address
//! of a mobile router registered by the real `mrd`; a neighbour on the home link asks with
//! packets built by scapy, and what answers is checked on the wire.
//!
//! ```text
//!   hl (scapy)  eth0 2001:db8:1::50/64 ──── eth0 2001:db8:1::1/64  ha (had, nemonetd -h)
//!                                           up0  2001:db8:a::1/64 ──── eth0 2001:db8:a::5  mr (mrd)
//! ```
//!
//! * a multicast NS (to the solicited-node address) and a unicast NS (to the home address
//!   itself) for the home address each draw a solicited NA from the home agent: target the
//!   home address, S=1, O=0, R=1 (a mobile router's address), from the home agent's
//!   link-layer address (and naming it, where RFC 4861 §7.2.4 asks for the option);
//! * none of the neighbour's solicitations is tunnelled to the care-of address (a capture
//!   on the HA's uplink sees no NS inside IPv6-in-IPv6).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::setup::{self, HOA, HomeLink, log_of};
use tests::{Daemon, require_root, wait_until};

const COA: &str = "2001:db8:a::5";
const LONG: Duration = Duration::from_secs(30);

/// The scapy side: both solicitations, each answer (the NA sent to us, not had's
/// unsolicited ones to all nodes) as one line `kind target S O R tlla src-mac`, or
/// `kind none`.
const SCAPY: &str = r#"
import sys, time
from scapy.all import *
conf.verb = 0
hoa = sys.argv[1]
iface = "eth0"
me = "2001:db8:1::50"
mymac = get_if_hwaddr(iface)
def ask(kind, dst_ip, dst_mac):
    ns = Ether(src=mymac, dst=dst_mac) / IPv6(src=me, dst=dst_ip, hlim=255) / \
        ICMPv6ND_NS(tgt=hoa) / ICMPv6NDOptSrcLLAddr(lladdr=mymac)
    sniffer = AsyncSniffer(iface=iface, count=1, timeout=3,
        lfilter=lambda p: ICMPv6ND_NA in p and p[ICMPv6ND_NA].tgt == hoa
            and p[IPv6].dst == me)
    sniffer.start()
    time.sleep(0.3)
    sendp(ns, iface=iface)
    sniffer.join()
    if not sniffer.results:
        print(kind, "none", flush=True)
        return None
    ans = sniffer.results[0]
    na = ans[ICMPv6ND_NA]
    tlla = ans[ICMPv6NDOptDstLLAddr].lladdr if ICMPv6NDOptDstLLAddr in ans else "-"
    print(kind, na.tgt, na.S, na.O, na.R, tlla, ans[Ether].src, flush=True)
    return ans
solicited = in6_getnsma(inet_pton(socket.AF_INET6, hoa))
first = ask("multicast", inet_ntop(socket.AF_INET6, solicited), in6_getnsmac(solicited))
if first is not None:
    ask("unicast", hoa, first[Ether].src)
"#;

#[test]
fn the_home_agent_answers_solicitations_for_a_registered_home_address() {
    require_root();
    let l = HomeLink::new("pnd", "2001:db8:1::50/64");
    let (ha, hl, f) = (&l.ha, &l.hl, &l.f);
    l.rereg(COA);
    let logs = || l.logs();
    assert!(
        wait_until(LONG, || l.routed()),
        "no registration (no tunnel route for the home address)\n{}",
        logs()
    );
    let ha_mac = ha
        .exec("cat", &["/sys/class/net/eth0/address"])
        .stdout
        .clone();
    let ha_mac = String::from_utf8_lossy(&ha_mac).trim().to_string();

    // Anything tunnelled to the care-of address that carries an NS.
    let pcap = f.dir.path().join("up0.pcap");
    let tlog = f.dir.path().join("tcpdump.log");
    let mut cmd = ha.command(Path::new("tcpdump"));
    cmd.args(["-i", "up0", "-U", "--immediate-mode", "-n", "-w"])
        .arg(&pcap)
        .arg("ip6 proto 41");
    let mut tcpdump = Daemon::spawn("tcpdump", cmd, &tlog);
    assert!(
        wait_until(Duration::from_secs(10), || log_of(&tlog)
            .contains("listening on")),
        "tcpdump: {}",
        log_of(&tlog)
    );

    let text = hl.scapy(f.dir.path(), "ns.py", SCAPY, &[HOA]);
    std::thread::sleep(Duration::from_millis(500));
    tcpdump.signal("INT");
    tcpdump.wait_exit(Duration::from_secs(5));

    for kind in ["multicast", "unicast"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} answer line: {text}\n{}", logs()));
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_ne!(
            f[1],
            "none",
            "{kind} NS for the home address unanswered\n{}",
            logs()
        );
        assert_eq!(f[1], HOA, "{line}");
        assert_eq!(
            (f[2], f[3], f[4]),
            ("1", "0", "1"),
            "{kind}: S=1, O=0, R=1 expected: {line}"
        );
        // RFC 4861 §7.2.4: the Target Link-Layer Address option may be left out of the
        // answer to a unicast solicitation (the asker's cache already has it).
        assert!(
            f[5] == ha_mac || (kind == "unicast" && f[5] == "-"),
            "{kind}: the home agent's link-layer address: {line}"
        );
        assert_eq!(f[6], ha_mac, "{kind}: sent by the home agent: {line}");
    }
    let tunnelled = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    let tunnelled = String::from_utf8_lossy(&tunnelled.stdout).to_string();
    assert!(
        !tunnelled.contains("neighbor solicitation"),
        "a solicitation from the home link went into the tunnel:\n{tunnelled}"
    );
}

/// Proxy DAD (RFC 6275 §10.3.1): a node on the home link already holds the home address;
/// the HA's DAD draws its defence, the registration is refused with 134 (mrd stops, as
/// for a refusal retrying cannot fix) and nothing is installed on the HA.
#[test]
fn a_home_address_defended_on_the_home_link_is_refused_134() {
    require_root();
    // The home link's squatter: the mobile router's home address on a host.
    let l = HomeLink::new("dad", &format!("{HOA}/64"));
    let (ha, f) = (&l.ha, &l.f);
    l.rereg(COA);
    let logs = || l.logs();
    let mrd_log = f.dir.path().join("mrd.log");
    assert!(
        wait_until(LONG, || {
            let l = log_of(&mrd_log);
            l.contains("refused for good") && l.contains("status=134")
        }),
        "mrd did not get a 134\n{}",
        logs()
    );
    assert!(setup::binding(&f.ha_bus, "had", Some(HOA.parse().unwrap())).is_none());
    assert!(
        !ha.ip_text(&["-6", "route", "show", "proto", "110"])
            .contains(HOA),
        "a route for the defended address"
    );
    assert!(
        !ha.ip_text(&["-6", "neigh", "show", "proxy"]).contains(HOA),
        "the HA proxies a defended address"
    );
}

/// had and nemonetd agree on the order of events (issue 11): the BA for a changed binding
/// waits until the data plane carries it. With the HA's nemonetd stopped, a move to a new
/// care-of address is not acknowledged; once it runs again and applies the change, the
/// BA follows, after the data plane's own log of the new care-of address.
#[test]
fn the_ba_waits_until_the_data_plane_carries_the_binding() {
    require_root();
    let l = HomeLink::new("ord", "2001:db8:1::50/64");
    l.rereg(COA);
    assert!(
        wait_until(LONG, || l.routed()),
        "no registration\n{}",
        l.logs()
    );
    let new_coa = "2001:db8:a::6";
    l.mr.ip(&[
        "addr",
        "add",
        &format!("{new_coa}/64"),
        "dev",
        "eth0",
        "nodad",
    ]);
    l.nemonetd.signal("STOP");
    l.rereg(new_coa);
    let had_acked = |l: &HomeLink| {
        l.log("had")
            .lines()
            .any(|x| x.contains("binding acknowledged") && x.contains(new_coa))
    };
    assert!(
        wait_until(Duration::from_secs(5), || l
            .log("had")
            .lines()
            .any(|x| x.contains("binding registered") && x.contains(new_coa))),
        "had never took the move\n{}",
        l.logs()
    );
    // had waits up to 500 ms for the data plane; look well before that.
    std::thread::sleep(Duration::from_millis(250));
    let early = had_acked(&l);
    l.nemonetd.signal("CONT");
    assert!(
        !early,
        "the BA left while the data plane was stopped\n{}",
        l.logs()
    );
    assert!(
        wait_until(Duration::from_secs(5), || had_acked(&l)),
        "no BA after the data plane came back\n{}",
        l.logs()
    );
    // The order, from the daemons' own timestamps (same clock, same format).
    let stamp = |log: String, what: &str| {
        log.lines()
            .find(|x| x.contains(what) && x.contains(new_coa))
            .and_then(|x| x.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| panic!("no {what} for {new_coa}\n{}", l.logs()))
    };
    let up = stamp(l.log("nemonetd-ha"), "binding up");
    let acked = stamp(l.log("had"), "binding acknowledged");
    assert!(up < acked, "BA at {acked} before the data plane at {up}");
    assert!(
        !l.log("had").contains("did not confirm"),
        "released by the timeout, not by the data plane\n{}",
        l.logs()
    );
}
