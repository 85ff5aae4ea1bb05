//! `nemo-lab chaos`: every daemon killed with SIGKILL in turn under a flow, and started
//! again the way an operator (or a supervisor) does, with its rc.d script's `start`.
//!
//! Per daemon: how long the flow was interrupted, packets lost, packets of the mobile
//! network that left the MR's uplink untunnelled, state left stale in the kernel (our
//! routes and rules after recovery against before), and whether both ends still hold the
//! binding.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::apps::{Rx, read_rx};
use crate::demo::{Say, Summary, capture_start, setup};
use crate::handover::Flow;
use crate::net::{Ns, Result, err, now_ns, sleep, wait_until};
use crate::topo::{HOA, Lab, MNP4, MNP6, Options};

/// One daemon killed and started again.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// `mr` or `ha`.
    pub node: String,
    /// The daemon.
    pub daemon: String,
    /// Longest time without a packet at the receiver from the kill until the next kill.
    pub gap_ms: f64,
    /// Packets of the flow lost in that window.
    pub lost: u64,
    /// Packets from the mobile network's prefixes seen on the MR's uplink outside the
    /// tunnel in that window (must be 0: fail closed).
    pub untunnelled: usize,
    /// Our kernel state (proto 110 routes, our rules, proxy neighbours) that differs from
    /// before the kill once the daemon is back: stale leftovers or missing pieces.
    pub stale: Vec<String>,
    /// Both had's binding cache and mrd's binding update list hold the home address, with
    /// the care-of address of before.
    pub binding_kept: bool,
    #[serde(skip)]
    kill_ns: u64,
}

/// The daemons, in the order they are killed: (node, daemon, rc.d script).
const VICTIMS: [(&str, &str, &str); 5] = [
    ("mr", "nemonetd", "nemo_mr"),
    ("mr", "mrd", "nemo_mr"),
    ("mr", "babymdd", "nemo_mr"),
    ("ha", "nemonetd", "nemo_ha"),
    ("ha", "had", "nemo_ha"),
];

/// Our part of a node's kernel state, one line per object, sorted.
fn kernel_state(ns: &Ns) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for args in [
        ["-6", "route", "show", "table", "all", "proto", "110"],
        ["-4", "route", "show", "table", "all", "proto", "110"],
    ] {
        if let Ok(text) = ns.exec("ip", &args) {
            out.extend(text.lines().map(|l| format!("route {}", l.trim())));
        }
    }
    for fam in ["-6", "-4"] {
        if let Ok(text) = ns.exec("ip", &[fam, "rule", "show"]) {
            out.extend(
                text.lines()
                    .filter(|l| l.contains("proto 110"))
                    .map(|l| format!("rule {}", l.trim())),
            );
        }
    }
    if let Ok(text) = ns.exec("ip", &["-6", "neigh", "show", "proxy"]) {
        out.extend(text.lines().map(|l| format!("proxy {}", l.trim())));
    }
    out
}

/// The care-of address `owner` holds for the home address, from `mipsock state --json`.
pub(crate) fn binding_coa(lab: &Lab, node: &str, owner: &str) -> Option<String> {
    let out = std::process::Command::new(lab.bin("mipsock"))
        .arg("-b")
        .arg(lab.bus(node))
        .args(["state", "--json", "--timeout-ms", "1500"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["owner"] == owner)
        .find_map(|v| {
            let b = v["item"].as_object()?.values().next()?.clone();
            (b["hoa"] == HOA).then(|| b["coa"].to_string())
        })
}

/// Packets whose source is in the mobile network's prefixes, outside any tunnel, with
/// their capture times (ns).
fn untunnelled(pcap: &Path) -> Vec<(u64, String)> {
    let filter = format!("src net {MNP6} or src net {MNP4}");
    let out = std::process::Command::new("tcpdump")
        .args(["-n", "-tt", "-r"])
        .arg(pcap)
        .arg(&filter)
        .output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (t, rest) = l.split_once(' ')?;
            let secs: f64 = t.parse().ok()?;
            Some(((secs * 1e9) as u64, rest.to_string()))
        })
        .collect()
}

/// Longest receive gap and lost packets of the flow that ended between `lo` and `hi`
/// (ns): a gap belongs to the window in which the flow came back, so the one a kill
/// causes (which starts a packet interval before it) is not also counted in the window
/// before.
fn flow_window(rx: &[Rx], lo: u64, hi: u64) -> (f64, u64) {
    let ends_here = |t: u64| t >= lo && t < hi;
    let mut arrivals: Vec<&Rx> = rx.iter().collect();
    arrivals.sort_by_key(|r| r.recv_ns);
    let mut gap = 0;
    for w in arrivals.windows(2) {
        if ends_here(w[1].recv_ns) {
            gap = gap.max(w[1].recv_ns - w[0].recv_ns);
        }
    }
    let mut by_seq: Vec<&Rx> = rx.iter().collect();
    by_seq.sort_by_key(|r| r.seq);
    by_seq.dedup_by_key(|r| r.seq);
    let mut lost = 0;
    for w in by_seq.windows(2) {
        if w[1].seq > w[0].seq + 1 && ends_here(w[1].recv_ns) {
            lost += w[1].seq - w[0].seq - 1;
        }
    }
    (gap as f64 / 1e6, lost)
}

/// Runs the experiment; writes `report.json` into `out`.
pub fn chaos(opts: Options, out: &Path) -> Result<Vec<Outcome>> {
    let mut say = Say {
        step: 0,
        quiet: false,
    };
    let mut summary = Summary::default();
    // The rc scripts background the daemons and exit: as their subreaper we reap a killed
    // daemon at once, as init does on a real system (a zombie would still answer the
    // script's `kill -0` and not be started again).
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| crate::net::Error::Msg(format!("PR_SET_CHILD_SUBREAPER: {e}")))?;
    let mut lab = setup(opts, &mut say, &mut summary)?;
    let pcap = lab.opts.work.join("chaos-uplink.pcap");
    capture_start(&mut lab, "mr-eth0", &pcap)?;
    say.step(
        "Starting the flow: MNN -> CN over IPv6, 250-octet UDP packets every 5 ms (200 packets/s).",
    );
    let flow = Flow::start(&mut lab)?;
    sleep(Duration::from_secs(2))?;
    let coa_before = binding_coa(&lab, "mr", "mrd");
    let mut outcomes = Vec::new();
    for (node, daemon, script) in VICTIMS {
        let ns = if node == "mr" {
            lab.mr.clone()
        } else {
            lab.ha.clone()
        };
        let before = kernel_state(&ns);
        let Some(pid) = lab.daemon_pid(node, daemon) else {
            return err(format!("no pid file for {daemon} on {node}"));
        };
        say.step(&format!(
            "kill -9 {daemon} on the {} (pid {pid}), then `{script} start`.",
            if node == "mr" {
                "mobile router"
            } else {
                "home agent"
            }
        ));
        let kill_ns = now_ns();
        let victim = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(victim, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(victim, None);
        let log = lab.log_path(node, daemon);
        let log_len = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        // A supervisor notices within a moment; the rc script starts what is not running.
        sleep(Duration::from_millis(300))?;
        lab.rc_start_again(script)?;
        let ready = wait_until(Duration::from_secs(20), || {
            std::fs::read(&log)
                .map(|t| {
                    String::from_utf8_lossy(&t[(log_len as usize).min(t.len())..]).contains("ready")
                })
                .unwrap_or(false)
        })?;
        if !ready {
            say.info(&format!("{daemon} did not report ready after its restart"));
        }
        // The flow back: a packet received after the restart.
        let restarted_ns = now_ns();
        let back = wait_until(Duration::from_secs(20), || {
            read_rx(&flow.rx_log)
                .iter()
                .any(|r| r.recv_ns > restarted_ns)
        })?;
        // Let every daemon settle (state dumps, refreshes) before comparing.
        sleep(Duration::from_secs(3))?;
        let after = kernel_state(&ns);
        let stale: Vec<String> = before
            .symmetric_difference(&after)
            .map(|l| {
                if before.contains(l) {
                    format!("missing: {l}")
                } else {
                    format!("new: {l}")
                }
            })
            .collect();
        let kept = coa_before.is_some()
            && binding_coa(&lab, "mr", "mrd") == coa_before
            && binding_coa(&lab, "ha", "had") == coa_before;
        say.info(&format!(
            "flow back: {back}; bindings kept: {kept}; kernel state changed: {}",
            stale.len()
        ));
        outcomes.push(Outcome {
            node: node.into(),
            daemon: daemon.into(),
            gap_ms: 0.0,
            lost: 0,
            untunnelled: 0,
            stale,
            binding_kept: kept,
            kill_ns,
        });
    }
    let rx = flow.stop(&mut lab)?;
    if let Some(p) = lab.proc("tcpdump") {
        p.signal(nix::sys::signal::Signal::SIGINT);
    }
    lab.wait_proc("tcpdump", Duration::from_secs(3))?;
    let leaks = untunnelled(&pcap);
    let ends: Vec<u64> = outcomes
        .iter()
        .skip(1)
        .map(|o| o.kill_ns)
        .chain([u64::MAX])
        .collect();
    for (o, hi) in outcomes.iter_mut().zip(ends) {
        let (gap, lost) = flow_window(&rx, o.kill_ns, hi);
        o.gap_ms = gap;
        o.lost = lost;
        o.untunnelled = leaks
            .iter()
            .filter(|(t, _)| *t >= o.kill_ns && *t < hi)
            .count();
    }
    say.step("Per daemon:");
    for o in &outcomes {
        say.info(&line(o));
    }
    std::fs::create_dir_all(out)?;
    let report = serde_json::json!({
        "daemons": outcomes,
        "flow": {"packet_octets": 250, "interval_ms": 5, "direction": "MNN -> CN over IPv6 through the tunnel", "received": rx.len()},
        "goal": {"gap_ms": 2000, "untunnelled": 0, "stale": 0, "lost": "as few as the gap allows"},
        "untunnelled_first": leaks.first().map(|l| l.1.clone()),
        "run": {"work": lab.opts.work.display().to_string(), "unix_ns": now_ns()},
    });
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
    )?;
    say.step(&format!("Wrote {}", out.join("report.json").display()));
    let errors = lab.nss.teardown();
    if !errors.is_empty() {
        return err(errors.join("; "));
    }
    Ok(outcomes)
}

/// One row in words.
pub fn line(o: &Outcome) -> String {
    format!(
        "{:>3} {:<9} gap {:>7.1} ms, lost {:>4}, untunnelled {}, stale {}, bindings kept {}",
        o.node,
        o.daemon,
        o.gap_ms,
        o.lost,
        o.untunnelled,
        if o.stale.is_empty() {
            "none".to_string()
        } else {
            o.stale.join("; ")
        },
        o.binding_kept
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rx(seq: u64, ms: u64) -> Rx {
        Rx {
            seq,
            sent_ns: ms * 1_000_000,
            recv_ns: ms * 1_000_000,
        }
    }

    #[test]
    fn a_gap_belongs_to_the_window_the_flow_came_back_in() {
        // Every 5 ms; packets 3-6 lost after a kill at 17 ms; the next kill at 100 ms.
        let flow: Vec<Rx> = [0, 1, 2, 7, 8, 9]
            .into_iter()
            .map(|s| rx(s, s * 5))
            .collect();
        assert_eq!(flow_window(&flow, 17_000_000, 100_000_000), (25.0, 4));
        // The window before it (ending at the kill) saw nothing of it.
        assert_eq!(flow_window(&flow, 0, 17_000_000), (5.0, 0));
    }
}
