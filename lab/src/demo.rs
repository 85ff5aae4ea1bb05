//! `nemo-lab demo`: what Shima's paper verified, step by step, then handovers with the
//! sessions kept; and `nemo-lab handover`: the DSMIPv6 paper's experiment.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::handover::{self, Flow, Measured};
use crate::net::{Result, err, now_ns, sleep};
use crate::topo::{Access, CN4, CN6, HOA, Lab, MNN4, MNN6, MNP4, MNP6, Options};

/// One check of the demo.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What is checked, in words.
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// The demo's outcome.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Every check.
    pub checks: Vec<Check>,
    /// Every handover.
    pub handovers: Vec<Measured>,
    /// Seconds from start to end.
    pub seconds: f64,
    /// Where the logs are.
    pub work: String,
}

impl Summary {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }
}

pub(crate) struct Say {
    pub(crate) step: u32,
    pub(crate) quiet: bool,
}

impl Say {
    pub(crate) fn step(&mut self, text: &str) {
        self.step += 1;
        if !self.quiet {
            println!("\n[{:>2}] {text}", self.step);
        }
    }
    pub(crate) fn info(&self, text: &str) {
        if !self.quiet {
            for l in text.lines() {
                println!("     {l}");
            }
        }
    }
}

fn check(summary: &mut Summary, say: &Say, name: &str, ok: bool, detail: impl Into<String>) {
    let detail = detail.into();
    say.info(&format!(
        "{} {name}{}",
        if ok { "PASS" } else { "FAIL" },
        if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        }
    ));
    summary.checks.push(Check {
        name: name.into(),
        ok,
        detail,
    });
}

fn label(c: &Check) -> &'static str {
    if c.ok { "PASS" } else { "FAIL" }
}

/// Builds the topology, starts the daemons, attaches the MR's eth0 to the IPv6-only
/// network A and waits for the registration.
pub(crate) fn setup(opts: Options, say: &mut Say, summary: &mut Summary) -> Result<Lab> {
    say.step("Building the topology: CN (\"the Internet\"), router, home agent on its home link, access networks A and A2 (IPv6-only, radvd) and B (dual stack), the mobile router with two egress links, and behind it a dual-stack host (MNN) and an IPv4-only host (MNN4).");
    let mut lab = Lab::build(opts)?;
    say.info(&format!("namespaces: {}", lab.nss.names().join(" ")));
    say.step("Starting radvd on the router, then the daemons the way an operator does, with etc/rc.d/nemo_ha (had, nemonetd -h) on the HA and etc/rc.d/nemo_mr (nemonetd -m, mrd, babymdd) on the MR: SHISA's command lines, configs from the etc/ samples, one mipsock bus per node.");
    lab.start_daemons()?;
    say.step("Plugging the MR's eth0 into the IPv6-only access network A (eth1 stays unplugged): no IPv4 anywhere on the MR's uplink.");
    let t = now_ns();
    lab.plug(0, true)?;
    let ok = handover::wait_registered(&lab, t, Access::V6, Duration::from_secs(20))?;
    let bul = crate::events::bus_events(&lab.opts.work.join("mipsock-tap-mr.log"))
        .into_iter()
        .rfind(|e| e.kind == "bul_add");
    let prefixes = bul.as_ref().map(|b| b.mnps.join(" ")).unwrap_or_default();
    check(
        summary,
        say,
        "MR registered from the IPv6-only network with an IPv6 and an IPv4 prefix",
        ok && prefixes.contains(MNP6) && prefixes.contains(MNP4),
        format!(
            "home address {HOA}, care-of address {}, prefixes {prefixes}",
            bul.map(|b| b.coa).unwrap_or_default()
        ),
    );
    if !ok {
        return err("the MR did not register; logs in the work directory");
    }
    Ok(lab)
}

fn ping(lab: &Lab, from: &crate::net::Ns, to: &str) -> Result<(bool, String)> {
    let fam = if to.contains(':') { "-6" } else { "-4" };
    let out = from.try_exec("ping", &[fam, "-c", "3", "-i", "0.2", "-W", "2", to])?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let _ = lab;
    let stats = text
        .lines()
        .filter(|l| l.contains("packets transmitted") || l.starts_with("rtt"))
        .collect::<Vec<_>>()
        .join("; ");
    Ok((out.status.success(), stats))
}

fn web(lab: &Lab, from: &crate::net::Ns, url: &str, me: &str) -> Result<(bool, String)> {
    let out = from.try_exec(
        &lab.opts.self_exe.display().to_string(),
        &["http-get", "--to", url],
    )?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let seen = format!("You are {me}.");
    let ok = out.status.success() && text.contains(&seen);
    let status = text.lines().next().unwrap_or_default().to_string();
    Ok((
        ok,
        format!(
            "{status}; the page says \"{}\"",
            if text.contains(&seen) {
                seen
            } else {
                text.trim().to_string()
            }
        ),
    ))
}

/// Tunnel proof: a capture on the MR's uplink port of the access network.
pub(crate) fn capture_start(lab: &mut Lab, port: &str, file: &Path) -> Result<()> {
    let r = lab.r.clone();
    let f = file.display().to_string();
    let log = lab.opts.work.join("tcpdump.log");
    let child = r.spawn(
        Path::new("tcpdump"),
        &["-n", "-U", "-i", port, "-w", &f],
        &log,
    )?;
    lab.nss.procs.push(crate::net::Proc {
        name: "tcpdump".into(),
        child,
        log: log.clone(),
    });
    crate::net::wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on")
    })?;
    Ok(())
}

struct Capture {
    v4_in_v6: Vec<String>,
    v6_in_v6: Vec<String>,
    bare_v4: Vec<String>,
    /// IPv6 packets with nothing inside but their own upper layer.
    bare_v6: Vec<String>,
}

fn capture_stop(lab: &mut Lab, file: &Path) -> Result<Capture> {
    if let Some(p) = lab.proc("tcpdump") {
        p.signal(nix::sys::signal::Signal::SIGINT);
    }
    lab.wait_proc("tcpdump", Duration::from_secs(3))?;
    // The next capture is another process of the same name.
    lab.nss.procs.retain(|p| p.name != "tcpdump");
    let out =
        crate::net::run("tcpdump", &["-n", "-r", &file.display().to_string()]).unwrap_or_default();
    let mut c = Capture {
        v4_in_v6: Vec::new(),
        v6_in_v6: Vec::new(),
        bare_v4: Vec::new(),
        bare_v6: Vec::new(),
    };
    for l in out.lines() {
        // "hh:mm:ss.us IP6 outer > outer: IP inner > inner: ..." is IPv4 in IPv6.
        let rest = l.split_once(' ').map(|x| x.1).unwrap_or_default();
        if rest.starts_with("IP6 ") && rest.contains(": IP ") {
            c.v4_in_v6.push(rest.to_string());
        } else if rest.starts_with("IP6 ") && rest.contains(": IP6 ") {
            c.v6_in_v6.push(rest.to_string());
        } else if rest.starts_with("IP ") || rest.starts_with("ARP") {
            c.bare_v4.push(rest.to_string());
        } else if rest.starts_with("IP6 ") {
            c.bare_v6.push(rest.to_string());
        }
    }
    Ok(c)
}

struct Session {
    name: &'static str,
    what: String,
}

fn start_session(
    lab: &mut Lab,
    ns: &crate::net::Ns,
    name: &'static str,
    to: &str,
    stop: &Path,
) -> Result<Session> {
    lab.helper(
        ns,
        name,
        &[
            "echo-client",
            "--to",
            to,
            "--interval-ms",
            "100",
            "--stop-file",
            &stop.display().to_string(),
        ],
    )?;
    Ok(Session {
        name,
        what: to.to_string(),
    })
}

fn finish_session(
    lab: &mut Lab,
    s: &Session,
    summary: &mut Summary,
    say: &Say,
    label: &str,
) -> Result<()> {
    let log = lab.wait_proc(s.name, Duration::from_secs(10))?;
    let json = log
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("{}");
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let sent = v["sent"].as_u64().unwrap_or(0);
    let echoed = v["echoed"].as_u64().unwrap_or(0);
    let ok =
        sent > 0 && sent == echoed && v["wrong"].as_u64() == Some(0) && v["write_error"].is_null();
    check(
        summary,
        say,
        label,
        ok,
        format!(
            "to {}: {sent} lines sent, {echoed} echoed in order, longest wait between echoes {:.0} ms{}",
            s.what,
            v["max_gap_ms"].as_f64().unwrap_or(0.0),
            v["write_error"]
                .as_str()
                .map(|e| format!(", error: {e}"))
                .unwrap_or_default()
        ),
    );
    Ok(())
}

fn connectivity(lab: &Lab, summary: &mut Summary, say: &mut Say, when: &str) -> Result<()> {
    let (ok, d) = ping(lab, &lab.mnn4, CN4)?;
    check(
        summary,
        say,
        &format!("{when}: IPv4-only MNN4 ({MNN4}) pings the CN ({CN4}) over IPv4"),
        ok,
        d,
    );
    let (ok, d) = ping(lab, &lab.mnn, CN6)?;
    check(
        summary,
        say,
        &format!("{when}: MNN ({MNN6}) pings the CN ({CN6}) over IPv6"),
        ok,
        d,
    );
    let (ok, d) = web(lab, &lab.mnn4, &format!("{CN4}:80"), MNN4)?;
    check(
        summary,
        say,
        &format!("{when}: MNN4 fetches the CN's web page over IPv4"),
        ok,
        d,
    );
    let (ok, d) = web(lab, &lab.mnn, &format!("[{CN6}]:80"), MNN6)?;
    check(
        summary,
        say,
        &format!("{when}: MNN fetches the CN's web page over IPv6"),
        ok,
        d,
    );
    Ok(())
}

/// The demo. `Err` only for a broken lab; failed checks are in the summary.
pub fn demo(mut opts: Options, quiet: bool) -> Result<Summary> {
    opts.verbose &= !quiet;
    let started = Instant::now();
    let mut say = Say { step: 0, quiet };
    let mut summary = Summary {
        work: opts.work.display().to_string(),
        ..Default::default()
    };
    let mut lab = setup(opts, &mut say, &mut summary)?;
    let work = lab.opts.work.clone();
    let cn = lab.cn.clone();
    lab.helper(&cn, "echo-server", &["serve-echo", "--port", "2222"])?;
    lab.helper(&cn, "web-server", &["serve-http", "--port", "80"])?;
    let pcap = work.join("access-a.pcap");
    capture_start(&mut lab, "mr-eth0", &pcap)?;
    sleep(Duration::from_millis(200))?;

    say.step("With the MR on the IPv6-only network: ping, web, over IPv4 and IPv6 (Shima's checks). A capture runs on the MR's uplink port of network A.");
    connectivity(&lab, &mut summary, &mut say, "on IPv6-only A")?;

    say.step("Opening two interactive sessions to the CN's line echo server (an SSH-like stream: a line every 100 ms, every echo checked), one over IPv4 from MNN4, one over IPv6 from MNN; and the UDP probe flow (MNN -> CN, 250 octets every 5 ms) that times the handovers.");
    let stop = work.join("sessions.stop");
    let _ = std::fs::remove_file(&stop);
    let (mnn, mnn4) = (lab.mnn.clone(), lab.mnn4.clone());
    let s4 = start_session(&mut lab, &mnn4, "echo-v4", &format!("{CN4}:2222"), &stop)?;
    let s6 = start_session(&mut lab, &mnn, "echo-v6", &format!("[{CN6}]:2222"), &stop)?;
    let flow = Flow::start(&mut lab)?;
    sleep(Duration::from_secs(1))?;

    say.step(
        "What crossed the IPv6-only access link (tcpdump on the router's port facing the MR):",
    );
    let cap = capture_stop(&mut lab, &pcap)?;
    for l in cap.v4_in_v6.iter().filter(|l| l.contains(MNN4)).take(2) {
        say.info(l);
    }
    for l in cap.v6_in_v6.iter().take(1) {
        say.info(l);
    }
    check(
        &mut summary,
        &say,
        "IPv4 packets of the mobile network cross the IPv6-only access network inside IPv6 (IPv4-in-IPv6 to the HA)",
        cap.v4_in_v6
            .iter()
            .any(|l| l.contains(MNN4) && l.contains(CN4)),
        format!("{} IPv4-in-IPv6 packets captured", cap.v4_in_v6.len()),
    );
    check(
        &mut summary,
        &say,
        "IPv6 packets of the mobile network cross it inside IPv6 too (IPv6-in-IPv6)",
        cap.v6_in_v6.iter().any(|l| l.contains(MNN6)),
        format!("{} IPv6-in-IPv6 packets captured", cap.v6_in_v6.len()),
    );
    // babymdd's DHCP client looks for IPv4 on every egress link (DISCOVER from 0.0.0.0):
    // the MR's own probe, answered by nobody here; anything else would be a leak.
    // (Sent from 0.0.0.0, or from eth1's address when eth1 has one: the kernel picks the
    // source of an unbound socket; reported to babymdd.)
    let dhcp = |l: &&String| l.contains(".68 > 255.255.255.255.67: BOOTP/DHCP");
    let leaks: Vec<&String> = cap.bare_v4.iter().filter(|l| !dhcp(l)).collect();
    for l in leaks.iter().take(3) {
        say.info(&format!("bare: {l}"));
    }
    check(
        &mut summary,
        &say,
        "no bare IPv4 (nor ARP) on the IPv6-only access network but the MR's own DHCP discovery",
        leaks.is_empty(),
        format!(
            "{} bare IPv4/ARP packets, {} of them DHCP DISCOVERs from the MR",
            cap.bare_v4.len(),
            cap.bare_v4.iter().filter(dhcp).count()
        ),
    );

    let mut hs = Vec::new();
    say.step("Handover 1, one interface, IPv6 -> IPv6: the MR's eth0 leaves network A for network A2 (link down, new link, link up; RS, RA, SLAAC, BU, BA).");
    hs.push(handover::single(&mut lab, Access::V6b)?);
    sleep(Duration::from_secs(1))?;
    say.step("Plugging eth1 into the dual-stack network B: the MR now has two uplinks; it stays on eth0 (preferred).");
    lab.plug(1, true)?;
    sleep(Duration::from_secs(3))?;
    say.step("Handover 2, vertical with two interfaces: eth0 is unplugged; eth1's address on B is already configured, so only the BU/BA remain.");
    hs.push(handover::vertical_out(&mut lab)?);
    sleep(Duration::from_secs(1))?;
    say.step("Handover 3, vertical back: eth0 plugged in again; after babymdd's 2 s hold-down the MR returns to it (make before break).");
    hs.push(handover::vertical_back(&mut lab)?);
    sleep(Duration::from_secs(1))?;
    for (h, n) in hs.iter().zip(1..) {
        check(
            &mut summary,
            &say,
            &format!(
                "handover {n} ({}) registered at the new care-of address",
                h.what
            ),
            h.registered,
            "",
        );
    }

    say.step("After three handovers: the same checks again.");
    connectivity(&lab, &mut summary, &mut say, "after the handovers")?;

    say.step("Closing the sessions: every line sent during the handovers must have come back, in order, on the same TCP connection.");
    std::fs::write(&stop, b"")?;
    finish_session(
        &mut lab,
        &s4,
        &mut summary,
        &say,
        "IPv4 interactive session from MNN4 survived the handovers",
    )?;
    finish_session(
        &mut lab,
        &s6,
        &mut summary,
        &say,
        "IPv6 interactive session from MNN survived the handovers",
    )?;
    let rx = flow.stop(&mut lab)?;
    summary.handovers = handover::measure(&lab, &hs, &rx);
    check(
        &mut summary,
        &say,
        "the UDP probe flow got through the tunnel",
        rx.len() > 100,
        format!("{} packets received", rx.len()),
    );
    say.step("Handovers measured on the probe flow (MNN -> CN, a packet every 5 ms):");
    for m in &summary.handovers {
        say.info(&handover::line(m));
    }

    say.step("DSMIPv6: eth1 moves to the IPv4-only access network behind a NAT and gets its address by DHCP; then eth0 is unplugged, so the MR's only care-of address is a private IPv4 one: it registers over UDP/IPv4, and both families of the mobile network ride UDP through the NAT.");
    let t = now_ns();
    lab.move_eth1_to_nat()?;
    let mr = lab.mr.clone();
    let mut v4 = String::new();
    let got = crate::net::wait_until(Duration::from_secs(10), || {
        v4 = mr
            .ip(&["-4", "-o", "addr", "show", "dev", "eth1"])
            .unwrap_or_default()
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        v4.starts_with("192.0.2.")
    })?;
    check(
        &mut summary,
        &say,
        "the MR got an IPv4 address by DHCP on the IPv4-only network behind the NAT",
        got,
        v4.clone(),
    );
    lab.plug(0, false)?;
    let tap = work.join("mipsock-tap-mr.log");
    let v4_coa = v4.split('/').next().unwrap_or_default().to_string();
    let saw = |kind: &str| {
        crate::events::bus_events(&tap).iter().any(|e| {
            e.kind == kind && e.t_ns >= t && !v4_coa.is_empty() && e.coa.starts_with(&v4_coa)
        })
    };
    let md = crate::net::wait_until(Duration::from_secs(5), || saw("md_info"))?;
    check(
        &mut summary,
        &say,
        "babymdd reports the IPv4 care-of address to mrd (MD_INFO)",
        md,
        v4_coa.clone(),
    );
    let reg = crate::net::wait_until(Duration::from_secs(3), || saw("bul_add"))?;
    check(
        &mut summary,
        &say,
        "the MR registers from the IPv4-only network behind the NAT (IPv4 care-of address, UDP encapsulation)",
        reg,
        if reg {
            "registered"
        } else {
            "no BUL_ADD within 3 s"
        },
    );
    for (ns, to, who) in [
        (
            lab.mnn4.clone(),
            CN4,
            "IPv4-only MNN4 pings the CN over IPv4",
        ),
        (lab.mnn.clone(), CN6, "MNN pings the CN over IPv6"),
    ] {
        let (ok, d) = ping(&lab, &ns, to)?;
        check(
            &mut summary,
            &say,
            &format!("behind the NAT (IPv6 and IPv4 in UDP/IPv4): {who}"),
            ok,
            d,
        );
    }
    return_home(&mut lab, &mut summary, &mut say)?;
    discovery_and_mobile_host(&mut lab, &mut summary, &mut say)?;
    // The access routers filter sources (BCP 38): no packet of the mobile network left
    // the MR untunnelled on any uplink during the whole demo, handovers and the NAT
    // included; packets from a care-of address the MR had just left are dropped there, as
    // on a real ISP's network, and counted here.
    let table = lab
        .r
        .exec("nft", &["list", "table", "inet", "nemo-lab-bcp38"])?;
    let leaked = bcp38_dropped(&table, "mobile network untunnelled");
    let stale = bcp38_dropped(&table, "\"BCP 38");
    check(
        &mut summary,
        &say,
        "no packet of the mobile network left the MR untunnelled (the access routers' BCP 38 filters saw none)",
        leaked == Some(0),
        format!(
            "{} untunnelled; {} other packets with a source foreign to their access network dropped (a care-of address just left)",
            leaked.map_or("?".into(), |n| n.to_string()),
            stale.map_or("?".into(), |n| n.to_string())
        ),
    );
    summary.seconds = started.elapsed().as_secs_f64();
    for e in lab.nss.teardown() {
        check(&mut summary, &say, "teardown", false, e);
    }
    Ok(summary)
}

/// `mipsock state --json` on `node`'s bus: the items `owner` answered with.
pub(crate) fn state_items(lab: &Lab, node: &str, owner: &str) -> Vec<serde_json::Value> {
    let Ok(out) = std::process::Command::new(lab.bin("mipsock"))
        .arg("-b")
        .arg(lab.bus(node))
        .args(["state", "--json", "--timeout-ms", "1500"])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["owner"] == owner)
        .map(|v| v["item"].clone())
        .collect()
}

/// Issue 14: a second home agent, dynamic home agent address discovery, and a mobile
/// host (SHISA's mnd) beside the mobile router.
fn discovery_and_mobile_host(lab: &mut Lab, summary: &mut Summary, say: &mut Say) -> Result<()> {
    use crate::topo::{HA2_6, MH_HOA};
    say.step("Home agent discovery and a mobile host: both home agents announce themselves on the home link (radvd: H bit, Home Agent Information), a second one (2001:db8:1::2, preference 10, which has the host's key bound to another home address) joins, and a mobile host starts on network A2 with SHISA's mnd and no home agent configured (etc/rc.d/nemo_mr, ipv6_mobile_nodetype=mobile_node). It asks the Home-Agents anycast address, tries the preferred home agent, is refused (146, authenticated), and registers with the other: its home address alone, no R flag, no prefixes.");
    let t = now_ns();
    let (_ha2, mh) = lab.add_second_home_agent_and_mobile_host()?;
    let mnd_log = lab.log_path("mh", "mnd");
    let log = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let bound = |lab: &Lab| {
        state_items(lab, "ha", "had")
            .iter()
            .find(|i| i["bc"]["hoa"] == MH_HOA)
            .cloned()
    };
    let mut binding = None;
    crate::net::wait_until(Duration::from_secs(30), || {
        binding = bound(lab);
        binding.is_some()
    })?;
    let text = log(&mnd_log);
    let discovered = text
        .lines()
        .find(|l| l.contains("home agent discovered"))
        .map(|l| crate::events::strip_ansi(l).to_string());
    check(
        summary,
        say,
        "the mobile host discovers both home agents, the preferred one first (DHAAD on the Home-Agents anycast address 2001:db8:1:0:fdff:ffff:ffff:fffe)",
        discovered
            .as_deref()
            .is_some_and(|l| l.contains(&format!("ha={HA2_6}")) && l.contains(crate::topo::HA6)),
        discovered
            .as_deref()
            .and_then(|l| l.find("ha=").map(|i| l[i..].to_string()))
            .unwrap_or_else(|| "no Reply".into()),
    );
    check(
        summary,
        say,
        "the preferred home agent refuses the host (146: the key is not for this home address there) and the host moves on to the other",
        text.contains("trying the next discovered home agent"),
        if text.contains("trying the next discovered home agent") {
            format!("refused by {HA2_6}, next {}", crate::topo::HA6)
        } else {
            "no move to the next home agent".into()
        },
    );
    let b = binding.unwrap_or_default();
    let flags = b["bc"]["flags"].as_str().unwrap_or_default().to_string();
    check(
        summary,
        say,
        "the mobile host is registered at the first home agent: its home address alone, no R flag, no prefixes",
        b.is_object()
            && !flags.contains('R')
            && b["bc"]["mnp_v6"].as_array().is_none_or(Vec::is_empty),
        if b.is_object() {
            format!(
                "home address {MH_HOA}, care-of address {}, flags {flags}, {:.1} s after the host started",
                b["bc"]["coa"]
                    .as_str()
                    .map_or_else(|| b["bc"]["coa"].to_string(), str::to_string),
                ms_between(t, now_ns()) / 1000.0
            )
        } else {
            "no binding within 30 s".into()
        },
    );
    // The HA's cache holds the binding before its BA reaches the host and the host's
    // nemonetd puts the home address on its tunnel: ping once the address is there.
    let mut hoa_up = false;
    crate::net::wait_until(Duration::from_secs(10), || {
        hoa_up = mh
            .ip(&["-6", "-o", "addr", "show", "to", MH_HOA])
            .is_ok_and(|a| a.contains(MH_HOA));
        hoa_up
    })?;
    let (ok, d) = {
        let out = mh.try_exec(
            "ping",
            &["-6", "-c", "3", "-i", "0.2", "-W", "2", "-I", MH_HOA, CN6],
        )?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let stats = text
            .lines()
            .filter(|l| l.contains("packets transmitted"))
            .collect::<Vec<_>>()
            .join("; ");
        let stats = if hoa_up {
            stats
        } else {
            format!("home address not on the host within 10 s of its binding; {stats}")
        };
        (out.status.success(), stats)
    };
    check(
        summary,
        say,
        "the mobile host pings the CN from its home address, through the tunnel",
        ok,
        d,
    );
    let list: Vec<String> = state_items(lab, "ha", "had")
        .iter()
        .filter_map(|i| {
            let h = i.get("home_agent")?;
            Some(format!(
                "{} ({}, preference {})",
                h["address"].as_str()?,
                h["origin"].as_str()?,
                h["preference"]
            ))
        })
        .collect();
    check(
        summary,
        say,
        "mipsock state on the home agent lists both home agents (its home agents list)",
        list.iter().any(|l| l.starts_with(HA2_6)) && list.len() == 2,
        list.join(", "),
    );
    Ok(())
}

/// When the MR's bus first carried MD_INFO DEREGHOME at or after `since` (ns).
fn dereghome_since(tap: &Path, since: u64) -> Option<u64> {
    let text = std::fs::read_to_string(tap).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["body"]["md_info"]["command"] == "dereghome")
        .filter_map(|v| {
            v["header"]["sent_at_ns"]
                .as_u64()
                .or_else(|| v["ts"].as_str().and_then(crate::events::parse_rfc3339))
        })
        .find(|&t| t >= since)
}

/// When a daemon's log first said `what` at or after `since` (ns).
fn logged_since(log: &Path, what: &str, since: u64) -> Option<u64> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .map(crate::events::strip_ansi)
        .filter(|l| l.contains(what))
        .filter_map(|l| {
            l.split_whitespace()
                .next()
                .and_then(crate::events::parse_rfc3339)
        })
        .find(|&t| t >= since)
}

fn ms_between(from: u64, to: u64) -> f64 {
    to.saturating_sub(from) as f64 / 1e6
}

/// Issue 11: the MR comes home, de-registers, its hosts keep working natively over both
/// families, and it leaves again.
fn return_home(lab: &mut Lab, summary: &mut Summary, say: &mut Say) -> Result<()> {
    say.step("Return home: eth0 is plugged into the home link, the HA's link, where r's radvd advertises the home prefix 2001:db8:1::/64; eth1 stays on the NAT network with its working IPv4 care-of address. babymdd sees an address in the home prefix on eth0 (at home wins, after its 2 s hold-down); mrd de-registers from its home address (RFC 6275 §11.5.5); nemonetd -m puts the home address on eth0 and sends IPv4 through the HA; the HA answers on the home link and nemonetd -h routes the mobile network prefixes to the MR there.");
    let work = lab.opts.work.clone();
    let tap = work.join("mipsock-tap-mr.log");
    let mrd_log = lab.log_path("mr", "mrd");
    let t = now_ns();
    lab.move_link(0, Access::Home)?;
    let removed = |since: u64| {
        crate::events::bus_events(&tap)
            .into_iter()
            .find(|e| e.kind == "bul_remove" && e.t_ns >= since && e.coa == HOA)
            .map(|e| e.t_ns)
    };
    // The de-registration is acknowledged, or — when its first BA was lost on the way and
    // the retransmitted BU found no binding left — answered with 133, which ends it just
    // the same (RFC 6275 §10.3.2; mrd logs it).
    let deregistered = |since: u64| {
        logged_since(&mrd_log, "deregistration acknowledged", since)
            .or_else(|| logged_since(&mrd_log, "home agent has no binding to deregister", since))
    };
    crate::net::wait_until(Duration::from_secs(15), || deregistered(t).is_some())?;
    let md = dereghome_since(&tap, t);
    let rm = removed(t);
    let ba = deregistered(t);
    check(
        summary,
        say,
        "at home wins: babymdd chooses the home link over the working IPv4 care-of address (MD_INFO DEREGHOME)",
        md.is_some(),
        md.map(|m| {
            format!(
                "{:.0} ms after eth0 came up on the home link",
                ms_between(t, m)
            )
        })
        .unwrap_or_else(|| "no DEREGHOME within 15 s".into()),
    );
    let ha_binding = crate::chaos::binding_coa(lab, "ha", "had");
    check(
        summary,
        say,
        "the MR de-registers at home: BUL_REMOVE with the home address as care-of address, the BA received on the home link, no binding left at the HA",
        rm.is_some() && ba.is_some() && ha_binding.is_none(),
        match (md, rm, ba) {
            (Some(m), Some(r), Some(b)) => format!(
                "DEREGHOME -> BUL_REMOVE {:.1} ms, -> BA {:.1} ms; HA binding: {}",
                ms_between(m, r),
                ms_between(m, b),
                ha_binding.as_deref().unwrap_or("none")
            ),
            _ => format!(
                "BUL_REMOVE {}, BA {}, HA binding {}",
                if rm.is_some() { "seen" } else { "missing" },
                if ba.is_some() { "received" } else { "missing" },
                ha_binding.as_deref().unwrap_or("none")
            ),
        },
    );
    let mr = lab.mr.clone();
    let hoa64 = format!("{HOA}/64");
    let mut eth0 = String::new();
    let on_eth0 = crate::net::wait_until(Duration::from_secs(5), || {
        eth0 = mr
            .ip(&["-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"])
            .unwrap_or_default();
        eth0.contains(&hoa64)
    })?;
    check(
        summary,
        say,
        &format!(
            "at home the home address is an ordinary address on eth0 ({hoa64}, by nemonetd -m, no DAD)"
        ),
        on_eth0,
        eth0.lines()
            .filter_map(|l| l.split_whitespace().nth(3))
            .collect::<Vec<_>>()
            .join(" "),
    );
    let ha = lab.ha.clone();
    let want6 = format!("{MNP6} via {HOA} dev eth0");
    let want4 = format!("{MNP4} via inet6 {HOA} dev eth0");
    let mut routes = String::new();
    let routed = crate::net::wait_until(Duration::from_secs(5), || {
        routes = format!(
            "{}{}",
            ha.ip(&["-6", "route", "show", "proto", "110"])
                .unwrap_or_default(),
            ha.ip(&["-4", "route", "show", "proto", "110"])
                .unwrap_or_default()
        );
        routes.contains(&want6) && routes.contains(&want4)
    })?;
    check(
        summary,
        say,
        "the HA routes the mobile network prefixes to the MR on the home link, natively (nemonetd -h)",
        routed,
        routes.lines().map(str::trim).collect::<Vec<_>>().join("; "),
    );

    let pcap = work.join("home-link.pcap");
    capture_start(lab, "mr-eth0", &pcap)?;
    sleep(Duration::from_millis(200))?;
    connectivity(lab, summary, say, "at home (native)")?;
    let up = now_ns();
    let cap = capture_stop(lab, &pcap)?;
    let v4 = |a: &str, b: &str| {
        cap.bare_v4
            .iter()
            .any(|l| l.contains(&format!("IP {a} > {b}: ICMP echo")))
    };
    let v6 = |a: &str, b: &str| {
        cap.bare_v6
            .iter()
            .any(|l| l.contains(&format!("IP6 {a} > {b}: ICMP6, echo")))
    };
    let udp = cap.bare_v4.iter().filter(|l| l.contains(".4191")).count();
    for l in cap
        .bare_v4
        .iter()
        .filter(|l| l.contains(MNN4))
        .take(2)
        .chain(cap.bare_v6.iter().filter(|l| l.contains(MNN6)).take(2))
    {
        say.info(l);
    }
    check(
        summary,
        say,
        "at home the mobile network's IPv4 and IPv6 packets cross the home link natively, both ways, and nothing is encapsulated",
        v4(MNN4, CN4)
            && v4(CN4, MNN4)
            && v6(MNN6, CN6)
            && v6(CN6, MNN6)
            && cap.v4_in_v6.is_empty()
            && cap.v6_in_v6.is_empty()
            && udp == 0,
        format!(
            "{} bare IPv4 and {} bare IPv6 packets on the MR's home-link port; {} IPv4-in-IPv6, {} IPv6-in-IPv6, {} UDP 4191",
            cap.bare_v4.len(),
            cap.bare_v6.len(),
            cap.v4_in_v6.len(),
            cap.v6_in_v6.len(),
            udp
        ),
    );
    let home_ms = ba.map(|b| ms_between(t, b));
    say.info(&format!(
        "return home: link up at home -> BA {} (babymdd's hold-down included), the checks above done {:.1} s after",
        home_ms.map_or("-".into(), |m| format!("{m:.0} ms")),
        ms_between(t, up) / 1000.0
    ));

    say.step("Leaving home again: eth0 moves back to the IPv6-only network A. The MR registers from A again (after a moment on eth1's IPv4 care-of address: babymdd falls back to it when eth0 leaves the home link), the HA's routes go back into the tunnel, and the hosts' traffic with them.");
    let t = now_ns();
    lab.move_link(0, Access::V6)?;
    let ok = handover::wait_registered(lab, t, Access::V6, Duration::from_secs(15))?;
    let reg = crate::events::bus_events(&tap)
        .into_iter()
        .find(|e| e.kind == "bul_add" && e.t_ns >= t && e.coa.contains(Access::V6.coa_prefix()));
    check(
        summary,
        say,
        "away again: the MR registers from the IPv6-only network A",
        ok,
        reg.map(|e| {
            format!(
                "care-of address {}, {:.0} ms after the move",
                e.coa,
                ms_between(t, e.t_ns)
            )
        })
        .unwrap_or_else(|| "no BUL_ADD from A within 15 s".into()),
    );
    let tunnel6 = format!("{MNP6} dev nemo0");
    let mut routes = String::new();
    let back = crate::net::wait_until(Duration::from_secs(5), || {
        routes = ha
            .ip(&["-6", "route", "show", "proto", "110"])
            .unwrap_or_default();
        routes.contains(&tunnel6) && !routes.contains(&want6)
    })?;
    check(
        summary,
        say,
        "away again: the HA routes the prefixes into the tunnel again, and the home address left eth0",
        back && !mr
            .ip(&["-6", "-o", "addr", "show", "dev", "eth0"])
            .unwrap_or_default()
            .contains(&hoa64),
        routes.lines().map(str::trim).collect::<Vec<_>>().join("; "),
    );
    let pcap = work.join("away-again.pcap");
    capture_start(lab, "mr-eth0", &pcap)?;
    sleep(Duration::from_millis(200))?;
    for (ns, to, who) in [
        (
            lab.mnn4.clone(),
            CN4,
            "IPv4-only MNN4 pings the CN over IPv4",
        ),
        (lab.mnn.clone(), CN6, "MNN pings the CN over IPv6"),
    ] {
        let (ok, d) = ping(lab, &ns, to)?;
        check(summary, say, &format!("away again (tunnel): {who}"), ok, d);
    }
    let cap = capture_stop(lab, &pcap)?;
    check(
        summary,
        say,
        "away again: the pings cross network A inside the tunnel (IPv4-in-IPv6 and IPv6-in-IPv6)",
        cap.v4_in_v6.iter().any(|l| l.contains(MNN4))
            && cap.v6_in_v6.iter().any(|l| l.contains(MNN6)),
        format!(
            "{} IPv4-in-IPv6, {} IPv6-in-IPv6 packets",
            cap.v4_in_v6.len(),
            cap.v6_in_v6.len()
        ),
    );
    Ok(())
}

/// Prints the summary.
pub fn print_summary(s: &Summary) {
    println!("\n==== nemo-lab demo: summary ====");
    for c in &s.checks {
        println!("{} {}", label(c), c.name);
    }
    for (m, n) in s.handovers.iter().zip(1..) {
        println!("handover {n}: {}", handover::line(m));
    }
    let failed = s.checks.iter().filter(|c| !c.ok).count();
    println!(
        "{} checks, {} failed, {:.1} s; work directory {} (removed after a successful run unless --keep)",
        s.checks.len(),
        failed,
        s.seconds,
        s.work
    );
}

/// `nemo-lab handover`: the flow, `repeat` times: IPv6 -> IPv6 with one interface (A -> A2,
/// then A2 -> A), then with eth1 on B: vertical out and back. Writes the report into `out`.
///
/// With `nat` (a preview of DSMIPv6, issue 7, which it needs), then: eth1 moves to the
/// IPv4-only network behind the NAT; vertical out and back `repeat` times; eth0 unplugged;
/// then one interface between families, eth1 NAT -> A -> NAT, `repeat` times.
pub fn handover_experiment(
    opts: Options,
    out: &Path,
    repeat: u32,
    nat: bool,
) -> Result<Vec<Measured>> {
    let mut say = Say {
        step: 0,
        quiet: false,
    };
    let mut summary = Summary::default();
    let mut lab = setup(opts, &mut say, &mut summary)?;
    say.step("Starting the flow: MNN -> CN over IPv6, 250-octet UDP packets every 5 ms.");
    let flow = Flow::start(&mut lab)?;
    sleep(Duration::from_secs(1))?;
    let mut hs = Vec::new();
    for i in 0..repeat {
        say.step(&format!("Round {}: one interface, A -> A2 -> A.", i + 1));
        for to in [Access::V6b, Access::V6] {
            hs.push(handover::single(&mut lab, to)?);
            say.info(&hs.last().map(|h| h.what.clone()).unwrap_or_default());
            sleep(Duration::from_millis(1500))?;
        }
    }
    say.step(
        "Plugging eth1 into the dual-stack network B (second interface configured in advance).",
    );
    lab.plug(1, true)?;
    sleep(Duration::from_secs(3))?;
    for i in 0..repeat {
        say.step(&format!(
            "Round {}: vertical, eth0 unplugged, then plugged in again.",
            i + 1
        ));
        hs.push(handover::vertical_out(&mut lab)?);
        sleep(Duration::from_millis(1500))?;
        hs.push(handover::vertical_back(&mut lab)?);
        sleep(Duration::from_millis(1500))?;
    }
    if nat {
        say.step("DSMIPv6 preview (issue 7): eth1 moves to the IPv4-only network behind the NAT and gets an address by DHCP.");
        lab.move_link(1, Access::Nat)?;
        sleep(Duration::from_secs(3))?;
        for i in 0..repeat {
            say.step(&format!(
                "NAT round {}: vertical, eth0 unplugged (eth1 on the NAT network), then plugged in again.",
                i + 1
            ));
            hs.push(handover::vertical_out(&mut lab)?);
            sleep(Duration::from_millis(1500))?;
            hs.push(handover::vertical_back(&mut lab)?);
            sleep(Duration::from_millis(1500))?;
        }
        say.step("eth0 unplugged for good: from now on one interface, eth1, between the families.");
        hs.push(handover::vertical_out(&mut lab)?);
        sleep(Duration::from_millis(1500))?;
        for i in 0..repeat {
            say.step(&format!(
                "NAT round {}: one interface, eth1 NAT -> A (IPv6-only) -> NAT.",
                i + 1
            ));
            for to in [Access::V6, Access::Nat] {
                hs.push(handover::single_on(&mut lab, 1, to)?);
                sleep(Duration::from_millis(1500))?;
            }
        }
    }
    let rx = flow.stop(&mut lab)?;
    let ms = handover::measure(&lab, &hs, &rx);
    for m in &ms {
        say.info(&handover::line(m));
    }
    say.step("Per kind of handover:");
    for k in handover::summarise(&ms) {
        say.info(&k.to_string());
    }
    handover::write_report(
        out,
        &ms,
        &rx,
        serde_json::json!({"repeat": repeat, "work": lab.opts.work.display().to_string(), "unix_ns": now_ns()}),
    )?;
    say.step(&format!(
        "Wrote {} and {}",
        out.join("report.json").display(),
        out.join("handovers.svg").display()
    ));
    let errors = lab.nss.teardown();
    if !errors.is_empty() {
        return err(errors.join("; "));
    }
    Ok(ms)
}

/// The default work directory.
pub fn default_work() -> PathBuf {
    std::env::temp_dir().join(format!("nemo-lab-{}", std::process::id()))
}

/// The packets the BCP 38 table's rules whose comment contains `what` dropped, summed
/// (`counter packets N bytes M drop comment "..."`); `None` without such rules.
fn bcp38_dropped(table: &str, what: &str) -> Option<u64> {
    let counts: Vec<u64> = table
        .lines()
        .filter(|l| l.contains("drop") && l.contains(what))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "packets")?;
            w.next()?.parse().ok()
        })
        .collect();
    (!counts.is_empty()).then(|| counts.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcp38_counters_are_summed() {
        let listing = "table inet nemo-lab-bcp38 {
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname \"acc-a\" ip6 saddr != 2001:db8:a::/64 counter packets 2 bytes 208 drop comment \"BCP 38\"
		iifname \"acc-b\" ip saddr != 198.51.100.128/26 counter packets 0 bytes 0 drop comment \"BCP 38\"
	}
}";
        assert_eq!(bcp38_dropped(listing, "\"BCP 38"), Some(2));
        assert_eq!(bcp38_dropped(listing, "untunnelled"), None);
        assert_eq!(bcp38_dropped("table inet x { }", "BCP 38"), None);
    }
}
