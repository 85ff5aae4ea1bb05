//! The Home Address option on ordinary traffic (RFC 6275 §9.3.1; issue 11), black-box: the
//! real `had` and `nemonetd -h`, the real `mrd` registering from its care-of address, and
//! ICMPv6 Echo Requests with a Home Address option built by scapy in the mobile router's
//! namespace and sent from its care-of address to the home agent.
//!
//! * With no binding for the home address named, the home agent answers with a Binding
//!   Error status 1 naming it (§9.3.1, §9.3.3), and the kernel's ICMPv6 Parameter Problem
//!   ("unrecognized option 201") does not leave.
//! * From the care-of address of the live binding, the Echo Request is processed as from
//!   the home address: its Echo Reply goes to the care-of address with a type 2 routing
//!   header carrying the home address (§6.4, §9.3.2), identifier, sequence and data echoed.
//!
//! Topology and daemons: [`tests::setup::HomeLink`].

use std::time::Duration;

use tests::setup::{HOA, HomeLink};
use tests::{require_root, wait_until};

const COA: &str = "2001:db8:a::5";
const HA: &str = "2001:db8:1::1";
/// In the home prefix, registered by nobody.
const UNBOUND: &str = "2001:db8:1::777";
const LONG: Duration = Duration::from_secs(30);

/// Sends one Echo Request with a HAO for `argv[1]` from the care-of address and prints
/// every answer seen within 3 s, one line each: `be STATUS HOME-ADDRESS`, `reply RH2-ADDRESS
/// ID SEQ DATA` or `pp CODE POINTER`; `end` last.
const SCAPY: &str = r#"
import sys, time
from scapy.all import *
from scapy.layers.inet6 import _ICMPv6Error
conf.verb = 0
hoa, coa, ha = sys.argv[1], sys.argv[2], sys.argv[3]
iface = "eth0"
def answer(p):
    return IPv6 in p and p[IPv6].dst == coa and p[IPv6].src == ha
sniffer = AsyncSniffer(iface=iface, timeout=3, lfilter=answer)
sniffer.start()
time.sleep(0.3)
send(IPv6(src=coa, dst=ha) / IPv6ExtHdrDestOpt(options=[HAO(hoa=hoa)]) /
     ICMPv6EchoRequest(id=0x4242, seq=7, data=b"hao-probe"), iface=iface)
sniffer.join()
for p in sniffer.results:
    if MIP6MH_BE in p:
        print("be", p[MIP6MH_BE].status, p[MIP6MH_BE].ha, flush=True)
    elif ICMPv6EchoReply in p:
        rh = p[IPv6ExtHdrRouting] if IPv6ExtHdrRouting in p else None
        addr = rh.addresses[0] if rh is not None and rh.type == 2 else "-"
        e = p[ICMPv6EchoReply]
        print("reply", addr, hex(e.id), e.seq, e.data.decode(errors="replace"), flush=True)
    elif ICMPv6ParamProblem in p:
        pp = p[ICMPv6ParamProblem]
        print("pp", pp.code, pp.ptr, flush=True)
print("end", flush=True)
"#;

fn probe(l: &HomeLink, hoa: &str) -> String {
    l.mr.scapy(l.f.dir.path(), "hao.py", SCAPY, &[hoa, COA, HA])
}

#[test]
fn traffic_with_a_home_address_option() {
    require_root();
    let l = HomeLink::new("hao", "2001:db8:1::50/64");
    l.rereg(COA);
    assert!(
        wait_until(LONG, || l.routed()),
        "no registration\n{}",
        l.logs()
    );

    // No binding for this home address: Binding Error 1, no Parameter Problem.
    let text = probe(&l, UNBOUND);
    assert!(
        text.lines().any(|t| t == format!("be 1 {UNBOUND}")),
        "no Binding Error 1 naming {UNBOUND}: {text}\n{}",
        l.logs()
    );
    assert!(
        !text.lines().any(|t| t.starts_with("pp ")),
        "the kernel's Parameter Problem left: {text}"
    );
    assert!(
        !text.contains("reply"),
        "answered without a binding: {text}"
    );

    // The live binding's care-of address: the Echo Reply, through an RH2.
    let text = probe(&l, HOA);
    let reply = text
        .lines()
        .find(|t| t.starts_with("reply"))
        .unwrap_or_else(|| panic!("no Echo Reply: {text}\n{}", l.logs()));
    assert_eq!(
        reply,
        format!("reply {HOA} 0x4242 7 hao-probe"),
        "the reply goes to the care-of address with an RH2 for the home address"
    );
    assert!(
        !text
            .lines()
            .any(|t| t.starts_with("be ") || t.starts_with("pp ")),
        "an error besides the reply: {text}"
    );
}
