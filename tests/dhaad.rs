//! Dynamic Home Agent Address Discovery and Mobile Prefix Discovery at the real home agent
//! (RFC 6275 §10.5, §10.6; RFC 3963 §7; issue 14), black-box: packets built by scapy in
//! other namespaces, answers read on the wire.
//!
//! * A Home Agent Address Discovery Request from a care-of address to the Home-Agents
//!   anycast address of the home prefix (RFC 2526: `2001:db8:1:0:fdff:ffff:ffff:fffe`) is
//!   answered from the home agent's address to the care-of address, Identifier echoed,
//!   R set for a mobile router's request, the home agent listed.
//! * A second home agent announces itself on the home link (a Router Advertisement with H,
//!   a Home Agent Information option with a higher preference and R, and its global
//!   address in a Prefix Information option with R, built by scapy): it is listed first.
//!   A forwarded RA (hop limit below 255) is not learnt.
//! * A Mobile Prefix Solicitation with a Home Address option from the registered mobile
//!   router's care-of address is answered with a Mobile Prefix Advertisement to the
//!   care-of address through a type 2 routing header, carrying the home prefix.
//! * The real mrd with no `home-agent-address` (SHISA's way) discovers the home agent
//!   from its care-of address and registers with it.
//!
//! Topology and daemons: [`tests::setup::HomeLink`].

use std::time::Duration;

use tests::setup::{HOA, HomeLink, mipsock_state};
use tests::{require_root, wait_until};

const COA: &str = "2001:db8:a::5";
const HA: &str = "2001:db8:1::1";
const ANYCAST: &str = "2001:db8:1:0:fdff:ffff:ffff:fffe";
const OTHER_HA: &str = "2001:db8:1::2";
const LONG: Duration = Duration::from_secs(30);

/// `request R ID`: one HAAD Request; `mps ID`: one Mobile Prefix Solicitation with a HAO
/// for the home address. Prints each answer seen within 2 s (`reply ID R ADDR...`, `mpa
/// ID RH2 PREFIX/LEN VALID PREFERRED`), then `end`.
const MR_SCAPY: &str = r#"
import sys, time
from scapy.all import *
conf.verb = 0
coa, anycast, ha, hoa = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
kind, args = sys.argv[5], sys.argv[6:]
def answer(p):
    return IPv6 in p and p[IPv6].dst == coa
sniffer = AsyncSniffer(iface="eth0", timeout=2, lfilter=answer)
sniffer.start()
time.sleep(0.3)
if kind == "request":
    send(IPv6(src=coa, dst=anycast) / ICMPv6HAADRequest(id=int(args[1]), R=int(args[0])), iface="eth0")
else:
    send(IPv6(src=coa, dst=ha) / IPv6ExtHdrDestOpt(options=[HAO(hoa=hoa)]) /
         ICMPv6MPSol(id=int(args[0])), iface="eth0")
sniffer.join()
for p in sniffer.results:
    if ICMPv6HAADReply in p:
        r = p[ICMPv6HAADReply]
        print("reply", p[IPv6].src, r.id, r.R, *r.addresses, flush=True)
    elif ICMPv6MPAdv in p:
        rh = p[IPv6ExtHdrRouting] if IPv6ExtHdrRouting in p else None
        addr = rh.addresses[0] if rh is not None and rh.type == 2 else "-"
        pi = p[ICMPv6NDOptPrefixInfo]
        print("mpa", p[IPv6].src, p[ICMPv6MPAdv].id, addr,
              "%s/%d" % (pi.prefix, pi.prefixlen), pi.validlifetime, pi.preferredlifetime,
              flush=True)
print("end", flush=True)
"#;

/// A home agent's Router Advertisement on the home link: `argv[1]` its global address,
/// `argv[2]` the hop limit.
const HL_SCAPY: &str = r#"
import sys
from scapy.all import *
conf.verb = 0
ll = "fe80::2"
# Layer 2: scapy's layer-3 send may route ff02::1 out of another interface.
sendp(Ether(dst="33:33:00:00:00:01") / IPv6(src=ll, dst="ff02::1", hlim=int(sys.argv[2])) /
     ICMPv6ND_RA(H=1, routerlifetime=1800) /
     ICMPv6NDOptHAInfo(pref=30, lifetime=600, res=0x8000) /
     ICMPv6NDOptPrefixInfo(prefixlen=64, L=1, A=1, R=1, validlifetime=86400,
                           preferredlifetime=14400, prefix=sys.argv[1]),
      iface="eth0")
"#;

fn from_mr(l: &HomeLink, args: &[&str]) -> String {
    let mut all = vec![COA, ANYCAST, HA, HOA];
    all.extend_from_slice(args);
    l.mr.scapy(l.f.dir.path(), "dhaad-mr.py", MR_SCAPY, &all)
}

/// The home agents `owner` reports on `bus` (`mipsock state --json`): (address, origin,
/// preference, in use).
fn home_agents(bus: &std::path::Path, owner: &str) -> Vec<(String, String, i64, bool)> {
    let out = mipsock_state(bus, &["--timeout-ms", "1500"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["owner"] == owner)
        .filter_map(|v| {
            let h = v["item"].get("home_agent")?.clone();
            Some((
                h["address"].as_str()?.to_string(),
                h["origin"].as_str()?.to_string(),
                h["preference"].as_i64().unwrap_or(0),
                h["in_use"].as_bool().unwrap_or(false),
            ))
        })
        .collect()
}

fn line<'a>(text: &'a str, kind: &str, l: &HomeLink) -> &'a str {
    text.lines()
        .find(|t| t.starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind}: {text}\n{}", l.logs()))
}

#[test]
fn home_agent_and_mobile_prefix_discovery() {
    require_root();
    let l = HomeLink::new("dhaad", "2001:db8:1::50/64");

    // Before any registration: anyone may ask for the home agents.
    let text = from_mr(&l, &["request", "1", "4660"]);
    assert_eq!(
        line(&text, "reply", &l),
        format!("reply {HA} 4660 1 {HA}"),
        "from the HA's address, Identifier echoed, R, the HA listed"
    );

    // Another home agent on the home link, preferred (30 > 0) and serving MRs. A forwarded
    // copy (hop limit 64) is not learnt: the list is unchanged.
    l.hl.scapy(l.f.dir.path(), "dhaad-hl.py", HL_SCAPY, &[OTHER_HA, "64"]);
    std::thread::sleep(Duration::from_millis(300));
    let text = from_mr(&l, &["request", "1", "2"]);
    assert_eq!(line(&text, "reply", &l), format!("reply {HA} 2 1 {HA}"));
    l.hl.scapy(l.f.dir.path(), "dhaad-hl.py", HL_SCAPY, &[OTHER_HA, "255"]);
    std::thread::sleep(Duration::from_millis(300));
    let text = from_mr(&l, &["request", "0", "5"]);
    assert_eq!(
        line(&text, "reply", &l),
        format!("reply {HA} 5 0 {OTHER_HA} {HA}"),
        "higher preference first\n{}",
        l.logs()
    );
    // mipsock state shows had's home agents list.
    let list = home_agents(&l.f.ha_bus, "had");
    assert!(
        list.contains(&(HA.into(), "own".into(), 0, false)),
        "{list:?}"
    );
    assert!(
        list.contains(&(OTHER_HA.into(), "router_advertisement".into(), 30, false)),
        "{list:?}"
    );

    // Register, then solicit the mobile prefixes with a Home Address option.
    l.rereg(COA);
    assert!(
        wait_until(LONG, || l.routed()),
        "no registration\n{}",
        l.logs()
    );
    let text = from_mr(&l, &["mps", "777"]);
    let mpa = line(&text, "mpa", &l);
    let f: Vec<&str> = mpa.split_whitespace().collect();
    assert_eq!(
        &f[..5],
        &["mpa", HA, "777", HOA, "2001:db8:1::/64"],
        "to the care-of address through an RH2 for the home address: {mpa}"
    );
    // The home prefix's lifetimes: the home link's router was not heard (no radvd in this
    // topology), so RFC 4861's defaults, at most.
    let valid: u32 = f[5].parse().unwrap();
    let preferred: u32 = f[6].parse().unwrap();
    assert!(valid > 0 && preferred <= valid, "{mpa}");
}

#[test]
fn a_mobile_router_without_a_configured_home_agent_discovers_it() {
    require_root();
    let l = HomeLink::with_mrd_conf(
        "dhaadmr",
        "2001:db8:1::50/64",
        &[],
        &[],
        &[],
        &[("home-agent-address 2001:db8:1::1;", "")],
    );
    l.rereg(COA);
    assert!(
        wait_until(LONG, || l.routed()),
        "no registration through discovery\n{}",
        l.logs()
    );
    let mrd = l.log("mrd");
    assert!(
        mrd.contains("dynamic home agent address discovery")
            && mrd.contains("home agent discovered"),
        "{mrd}"
    );
    assert!(
        l.log("had").contains("home agent address discovery reply"),
        "{}",
        l.logs()
    );
    // mipsock state shows the discovered home agent, in use.
    let list = home_agents(&l.f.mr_bus, "mrd");
    assert_eq!(
        list,
        vec![(HA.to_string(), "discovered".to_string(), 0, true)]
    );
}

/// An unsolicited Mobile Prefix Advertisement (RFC 6275 §11.4.3) built by scapy as the
/// home agent sends it: to the care-of address through a type 2 routing header, the home
/// prefix valid for `argv[1]` seconds.
const HA_MPA_SCAPY: &str = r#"
import sys
from scapy.all import *
conf.verb = 0
ha, coa, hoa, valid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
send(IPv6(src=ha, dst=coa) / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[hoa]) /
     ICMPv6MPAdv(id=99) /
     ICMPv6NDOptPrefixInfo(prefixlen=64, L=1, A=1, validlifetime=valid,
                           preferredlifetime=valid // 2, prefix="2001:db8:1::"),
     iface="up0")
"#;

/// The mobile router side of Mobile Prefix Discovery with the real mrd and had: an
/// advertisement saying the home prefix has 20 s left makes mrd ask again before then
/// (a Mobile Prefix Solicitation with a Home Address option), and had's answer (the
/// configured home prefix, RFC 4861's default lifetimes) reaches mrd through the RH2.
#[test]
fn the_mobile_router_solicits_its_home_prefix_before_it_runs_out() {
    require_root();
    let l = HomeLink::new("mpdmr", "2001:db8:1::50/64");
    l.rereg(COA);
    assert!(
        wait_until(LONG, || l.routed()),
        "no registration\n{}",
        l.logs()
    );
    l.ha.scapy(
        l.f.dir.path(),
        "mpa.py",
        HA_MPA_SCAPY,
        &[HA, COA, HOA, "20"],
    );
    assert!(
        wait_until(Duration::from_secs(5), || l
            .log("mrd")
            .contains("valid_s=20")),
        "the advertisement did not reach mrd\n{}",
        l.logs()
    );
    // Half-way (10 s), mrd solicits; had answers with its own lifetimes.
    assert!(
        wait_until(Duration::from_secs(20), || l
            .log("mrd")
            .contains("valid_s=2592000")),
        "no solicitation answered\n{}",
        l.logs()
    );
    assert!(
        l.log("had").contains("mobile prefix solicitation"),
        "{}",
        l.logs()
    );
}
