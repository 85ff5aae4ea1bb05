//! Home Agent Switch (RFC 5142; issue 13) with the real had and mrd: the home agent tells
//! its registered mobile router to go to another home agent.
//!
//! * A Home Agent Switch built by scapy, from the home agent's own address to the care-of
//!   address through a type 2 routing header, but without the MN-HA authenticator (what a
//!   stranger on the path can send): mrd drops it and stays registered. Anything else
//!   would let a stranger cut a mobile network off its home agent.
//! * The operator's `mipsock inject ha-switch --to NEW` on the home agent's bus: had sends
//!   the signed message; mrd de-registers from its home agent (the binding and its routes
//!   leave the HA) and sends its Binding Update to the new one.
//!
//! * With the router silent (mrd stopped), had sends the message again after 1 s, then
//!   after 2 s (RFC 5142 §5.2); a Binding Error 2 from the router (built by scapy: it does
//!   not know the message, §5.3) ends the retransmissions. Counted on the wire.
//!
//! Topology and daemons: [`tests::setup::HomeLink`] (the etc/ samples, with RFC 4285
//! authentication).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::setup::{HOA, HomeLink};
use tests::{require_root, wait_until};

const COA: &str = "2001:db8:a::5";
const HA: &str = "2001:db8:1::1";
const NEW_HA: &str = "2001:db8:1::2";
const LONG: Duration = Duration::from_secs(30);

/// An unsigned Home Agent Switch listing `argv[4]`, from `argv[1]` to `argv[2]` with the
/// home address `argv[3]` in a type 2 routing header.
const FORGED_HAS: &str = r#"
import sys
from scapy.all import *
conf.verb = 0
ha, coa, hoa, new = sys.argv[1:5]
mh = MIP6MH_Generic(mhtype=12, msg=bytes([1, 0]) + inet_pton(socket.AF_INET6, new))
send(IPv6(src=ha, dst=coa) / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[hoa]) / mh,
     iface="up0")
"#;

#[test]
fn the_home_agent_moves_its_mobile_router_and_a_stranger_cannot() {
    require_root();
    let l = HomeLink::new("has", "2001:db8:1::50/64");
    l.rereg(COA);
    assert!(
        wait_until(LONG, || l.routed()),
        "no registration\n{}",
        l.logs()
    );

    // The stranger's message: dropped, the binding stays.
    l.ha.scapy(
        l.f.dir.path(),
        "forged-has.py",
        FORGED_HAS,
        &[HA, COA, HOA, NEW_HA],
    );
    assert!(
        wait_until(Duration::from_secs(10), || l.log("mrd").contains(
            "Home Agent Switch without a valid MN-HA authenticator dropped"
        )),
        "the unsigned Home Agent Switch did not reach mrd's check\n{}",
        l.logs()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        l.routed(),
        "an unsigned Home Agent Switch moved the router\n{}",
        l.logs()
    );
    assert!(!l.log("mrd").contains("registering with the new home agent"));

    // The operator's: had signs it, mrd leaves for the new home agent.
    let out = Command::new(tests::bin("mipsock"))
        .arg("-b")
        .arg(&l.f.ha_bus)
        .args(["inject", "ha-switch", "--to", NEW_HA])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        wait_until(LONG, || l
            .log("mrd")
            .contains("Home Agent Switch: registering with the new home agent")),
        "mrd did not act on the signed Home Agent Switch\n{}",
        l.logs()
    );
    assert!(
        wait_until(LONG, || !l.routed()),
        "the old home agent still routes the home address\n{}",
        l.logs()
    );
    assert!(
        l.log("had").contains("home agent switch"),
        "{}",
        l.log("had")
    );
}

/// A Binding Error status 2 (Unrecognized MH Type) from the care-of address `argv[2]`
/// with a Home Address option for `argv[3]`, to the home agent `argv[1]`.
const BE2: &str = r#"
import sys
from scapy.all import *
conf.verb = 0
ha, coa, hoa = sys.argv[1:4]
p = IPv6(src=coa, dst=ha) / IPv6ExtHdrDestOpt(options=[HAO(hoa=hoa)]) / MIP6MH_BE(status=2, ha=hoa)
send(p, iface="eth0")
"#;

/// Home Agent Switch messages (MH type 12) in a capture, by tshark.
fn switches_on_the_wire(pcap: &Path) -> usize {
    let out = Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-Y",
            "mip6.mhtype == 12",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
        .expect("tshark");
    assert!(out.status.success(), "tshark: {out:?}");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn a_switch_is_sent_again_until_the_router_answers() {
    require_root();
    let l = HomeLink::new("hasr", "2001:db8:1::50/64");
    l.rereg(COA);
    assert!(
        wait_until(LONG, || l.routed()),
        "no registration\n{}",
        l.logs()
    );
    let pcap = l.f.dir.path().join("has.pcap");
    let dump_log = l.f.dir.path().join("tcpdump.log");
    let mut cmd = l.mr.command(Path::new("tcpdump"));
    cmd.args(["-i", "eth0", "-n", "-U", "-w"])
        .arg(&pcap)
        .arg("ip6");
    let mut tcpdump = tests::Daemon::spawn("tcpdump", cmd, &dump_log);
    assert!(
        wait_until(LONG, || tests::setup::log_of(&dump_log)
            .contains("listening on")),
        "tcpdump did not start"
    );

    // A router that hears nothing.
    l.signal_mrd("STOP");
    let out = Command::new(tests::bin("mipsock"))
        .arg("-b")
        .arg(&l.f.ha_bus)
        .args(["inject", "ha-switch", "--to", NEW_HA])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let sent = || l.log("had").matches("home agent switch sent").count();
    assert!(
        wait_until(Duration::from_secs(10), || sent() >= 3),
        "no retransmissions\n{}",
        l.log("had")
    );
    // The router does not know the message: Binding Error 2.
    l.mr.scapy(l.f.dir.path(), "be2.py", BE2, &[HA, COA, HOA]);
    assert!(
        wait_until(Duration::from_secs(10), || l
            .log("had")
            .contains("home agent switch not understood by the node")),
        "{}",
        l.log("had")
    );
    let at_error = sent();
    // The next copy would have left 4 s after the third, 8 s after the fourth.
    std::thread::sleep(Duration::from_secs(9));
    assert_eq!(
        sent(),
        at_error,
        "sent again after the Binding Error 2\n{}",
        l.log("had")
    );
    tcpdump.signal("INT");
    let _ = tcpdump.wait_exit(Duration::from_secs(5));
    assert_eq!(
        switches_on_the_wire(&pcap),
        at_error,
        "each copy on the wire, none after the Binding Error"
    );
    l.signal_mrd("CONT");
}
