//! `nemo-lab failover` (issue 13): home agent fail-over. Two or three home agent members
//! (had + nemonetd -h each, own bus, journal and config) on the home link serve the home
//! agent address together, elected through a 3-member etcd cluster on the same link
//! ([`Lab::wire_redundancy`]); the mobile router registered from access network A, flows
//! of 200 packets/s between the MNN and the CN each way.
//!
//! Per run the active member's host dies (had and nemonetd killed with -9, its home link
//! down: killing the daemons alone would leave the kernel's fast path forwarding, which
//! proves nothing). Measured at the receivers: the longest gap and the packets lost; on
//! the new active member: the bindings, against those of the dead one before. The dead
//! member then comes back (link up, its rc.d script started) and must stay a standby, so
//! the next run kills whichever member is active then.
//!
//! Then one run with the etcd cluster's leader killed mid-flow: the flows and the bindings
//! must not notice, and a registration (a move of the router) still goes through.
//!
//! report.json and failover.svg in the output directory.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::apps::{Rx, read_rx};
use crate::demo::{Say, Summary, setup};
use crate::net::{Ns, Result, err, now_ns, sleep, wait_until};
use crate::topo::{Access, CN6, HA4, HA6, Lab, MNN4_OF_MNN, MNN6, Options};

/// The goal: the median gap under a second (issue 13).
pub const GOAL_GAP_MS: f64 = 1000.0;

/// What the home agent holds for a mobile router: what must survive a fail-over
/// unchanged (not the remaining lifetime).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BindingView {
    /// Home address.
    pub hoa: String,
    /// Care-of address.
    pub coa: String,
    /// IPv6 mobile network prefixes.
    pub mnp_v6: Vec<String>,
    /// IPv4 mobile network prefixes.
    pub mnp_v4: Vec<String>,
    /// Binding identifier (RFC 5648), when any.
    pub binding_id: Option<u64>,
}

/// One flow of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlowResult {
    /// "MNN -> CN (IPv6)", ...
    pub name: &'static str,
    /// Packets sent.
    pub sent: u64,
    /// Distinct packets received.
    pub received: u64,
    /// Sent and never received.
    pub lost: u64,
    /// The longest time between two packets at the receiver from a second before the
    /// kill on (ms).
    pub gap_ms: f64,
    /// Packets arrived after the take-over: the flow goes through the new active member.
    pub resumed: bool,
}

/// One home agent host's death.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Run {
    /// 1, 2, ...
    pub run: u32,
    /// The member that was active and died.
    pub killed: String,
    /// The member that took over (`None`: nobody within 10 s).
    pub took_over: Option<String>,
    /// had's own time for the take-over (load the cache, restore, take the address),
    /// from its log (`took_ms`).
    pub took_ms: Option<u64>,
    /// The longest gap of the IPv6 flows (ms): the run's gap.
    pub gap_ms: f64,
    /// Packets the IPv6 flows lost.
    pub lost: u64,
    /// Every flow.
    pub flows: Vec<FlowResult>,
    /// The dead member's bindings, before.
    pub bindings_before: Vec<BindingView>,
    /// The new active member's, after.
    pub bindings_after: Vec<BindingView>,
    /// The same bindings (count, care-of addresses, prefixes).
    pub bindings_unchanged: bool,
    /// A new active member, and every IPv6 flow through it.
    pub recovered: bool,
    /// The dead member, started again, came back as a standby holding nothing.
    pub back_as_standby: bool,
    /// A second after the take-over, the home link's router resolves the home agent's IPv4
    /// address to the new active member's MAC address (IPv6 neighbours learn the move from
    /// had's unsolicited NAs).
    pub ipv4_neighbour_moved: bool,
}

/// The etcd member lost mid-flow.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EtcdLoss {
    /// The etcd member killed.
    pub killed: String,
    /// It was the cluster's leader.
    pub was_leader: bool,
    /// Longest gap of the IPv6 flows (ms).
    pub gap_ms: f64,
    /// Packets the IPv6 flows lost.
    pub lost: u64,
    /// Every flow.
    pub flows: Vec<FlowResult>,
    /// The same member stayed active, with no take-over or step-down anywhere.
    pub active_unchanged: bool,
    /// The bindings, before and after, the same.
    pub bindings_unchanged: bool,
    /// After the loss, the router moved (eth0 to A2) and the active member acknowledged
    /// the new care-of address: the two remaining etcd members still take writes.
    pub registered_after: bool,
}

/// The experiment's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailoverReport {
    /// Home agent members.
    pub members: usize,
    /// Packets per second of each flow.
    pub rate: u32,
    /// Every host death.
    pub runs: Vec<Run>,
    /// Median of the runs' gaps (ms).
    pub median_gap_ms: f64,
    /// The worst.
    pub worst_gap_ms: f64,
    /// Packets lost per run (IPv6 flows).
    pub lost_per_run: Vec<u64>,
    /// No run changed or lost a binding, and every run recovered.
    pub no_binding_lost: bool,
    /// Runs in which the IPv4 flow came back within the run (the router's ARP entry for
    /// the home agent's IPv4 address re-resolved): had sends no gratuitous ARP on a
    /// take-over.
    pub ipv4_resumed_runs: usize,
    /// The etcd member loss.
    pub etcd_loss: Option<EtcdLoss>,
    /// Every run and the etcd member loss done.
    pub complete: bool,
    /// Why the experiment stopped early, when it did.
    pub aborted: Option<String>,
}

impl FailoverReport {
    /// The goal: median gap under a second, no binding lost (nor in the etcd loss).
    pub fn goal_met(&self) -> bool {
        self.complete
            && !self.runs.is_empty()
            && self.median_gap_ms < GOAL_GAP_MS
            && self.no_binding_lost
            && self
                .etcd_loss
                .as_ref()
                .is_none_or(|e| e.bindings_unchanged && e.active_unchanged)
    }
}

/// The flows: (name, tag, sender is the CN, destination address, port, IPv6). The IPv4
/// one goes to the MNN through the home link's IPv4 routing (the router's route to the
/// IPv4 mobile network prefix via the home agent's IPv4 address).
const FLOWS: [(&str, &str, bool, &str, u16, bool); 3] = [
    ("MNN -> CN (IPv6)", "up6", false, CN6, 9100, true),
    ("CN -> MNN (IPv6)", "down6", true, MNN6, 9101, true),
    ("CN -> MNN (IPv4)", "down4", true, MNN4_OF_MNN, 9102, false),
];

fn binding_views(lab: &Lab, node: &str) -> Vec<BindingView> {
    let list = |v: &serde_json::Value| -> Vec<String> {
        let mut l: Vec<String> = v
            .as_array()
            .map(|a| a.iter().map(|x| x.to_string()).collect())
            .unwrap_or_default();
        l.sort();
        l
    };
    let mut v: Vec<BindingView> = crate::demo::state_items(lab, node, "had")
        .iter()
        .filter_map(|i| {
            let b = &i["bc"];
            Some(BindingView {
                hoa: b["hoa"].as_str()?.to_string(),
                coa: b["coa"].to_string(),
                mnp_v6: list(&b["mnp_v6"]),
                mnp_v4: list(&b["mnp_v4"]),
                binding_id: b["binding_id"].as_u64(),
            })
        })
        .collect();
    v.sort_by(|a, b| (&a.hoa, a.binding_id).cmp(&(&b.hoa, b.binding_id)));
    v
}

fn holds_ha_address(ns: &Ns) -> bool {
    ns.ip(&["-6", "addr", "show", "dev", "eth0"])
        .is_ok_and(|t| t.contains(&format!("{HA6}/64")))
}

fn had_log(lab: &Lab, node: &str) -> String {
    std::fs::read_to_string(lab.log_path(node, "had")).unwrap_or_default()
}

const TOOK_OVER: &str = "active home agent: took over";

fn takeovers(lab: &Lab, node: &str) -> usize {
    had_log(lab, node).matches(TOOK_OVER).count()
}

/// `took_ms=N` of the last take-over line of a had log.
fn took_ms(log: &str) -> Option<u64> {
    let line = log.lines().rfind(|l| l.contains(TOOK_OVER))?;
    let line = crate::events::strip_ansi(line);
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("took_ms="))?
        .parse()
        .ok()
}

/// The member holding the home agent address.
fn active(lab: &Lab) -> Option<usize> {
    lab.members.iter().position(holds_ha_address)
}

/// The running flows of one run.
struct Flows {
    stop: std::path::PathBuf,
    tag: String,
}

impl Flows {
    fn start(lab: &mut Lab, tag: &str, interval_ms: u64) -> Result<Flows> {
        let w = lab.opts.work.clone();
        let stop = w.join(format!("failover-{tag}.stop"));
        let _ = std::fs::remove_file(&stop);
        let s = stop.display().to_string();
        for (_, flow, from_cn, to, port, _) in FLOWS {
            let (sender, receiver) = if from_cn {
                (lab.cn.clone(), lab.mnn.clone())
            } else {
                (lab.mnn.clone(), lab.cn.clone())
            };
            let log = w.join(format!("rx-{tag}-{flow}.txt"));
            lab.helper(
                &receiver,
                &format!("udp-recv-{tag}-{flow}"),
                &[
                    "udp-recv",
                    "--port",
                    &port.to_string(),
                    "--log",
                    &log.display().to_string(),
                    "--stop-file",
                    &s,
                ],
            )?;
            sleep(Duration::from_millis(100))?;
            let to = if to.contains(':') {
                format!("[{to}]:{port}")
            } else {
                format!("{to}:{port}")
            };
            lab.helper(
                &sender,
                &format!("udp-send-{tag}-{flow}"),
                &[
                    "udp-send",
                    "--to",
                    &to,
                    "--interval-ms",
                    &interval_ms.to_string(),
                    "--size",
                    "250",
                    "--stop-file",
                    &s,
                ],
            )?;
        }
        Ok(Flows {
            stop,
            tag: tag.to_string(),
        })
    }

    fn rx(&self, lab: &Lab, flow: &str) -> Vec<Rx> {
        read_rx(&lab.opts.work.join(format!("rx-{}-{flow}.txt", self.tag)))
    }

    /// Waits until every IPv6 flow has a packet that arrived after `t` (ns).
    fn wait_resumed(&self, lab: &Lab, t: u64, timeout: Duration) -> Result<bool> {
        wait_until(timeout, || {
            FLOWS
                .iter()
                .filter(|f| f.5)
                .all(|f| self.rx(lab, f.1).iter().any(|r| r.recv_ns > t))
        })
    }

    /// Stops every flow; the results, the gaps from `from` (ns) on.
    fn stop(self, lab: &mut Lab, from: u64, resumed_after: u64) -> Result<Vec<FlowResult>> {
        let until = now_ns();
        std::fs::write(&self.stop, b"")?;
        let mut out = Vec::new();
        for (name, flow, ..) in FLOWS {
            let sent = crate::multipath::sent_count(&lab.wait_proc(
                &format!("udp-send-{}-{flow}", self.tag),
                Duration::from_secs(5),
            )?);
            lab.wait_proc(
                &format!("udp-recv-{}-{flow}", self.tag),
                Duration::from_secs(5),
            )?;
            out.push(flow_result(
                name,
                sent,
                &self.rx(lab, flow),
                (from, until),
                resumed_after,
            ));
        }
        // Their names are this run's; the next run starts its own.
        let tag = format!("-{}-", self.tag);
        lab.nss.procs.retain(|p| !p.name.contains(&tag));
        Ok(out)
    }
}

/// A flow's counts; its longest gap between arrivals from `from` to `until` (ns), both
/// counted as arrivals, so a flow that never came back shows the whole window, not the
/// spacing of its last packets; whether something arrived after `resumed_after`.
fn flow_result(
    name: &'static str,
    sent: u64,
    rx: &[Rx],
    (from, until): (u64, u64),
    resumed_after: u64,
) -> FlowResult {
    let mut seqs: Vec<u64> = rx.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let received = seqs.len() as u64;
    let sent = seqs.last().map_or(0, |s| s + 1).max(sent);
    let mut times: Vec<u64> = rx
        .iter()
        .map(|r| r.recv_ns)
        .filter(|&t| t >= from && t <= until)
        .collect();
    times.sort_unstable();
    let resumed = times.last().is_some_and(|&t| t > resumed_after);
    let bounded: Vec<u64> = std::iter::once(from)
        .chain(times)
        .chain(std::iter::once(until))
        .collect();
    let gap_ns = bounded.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    FlowResult {
        name,
        sent,
        received,
        lost: sent.saturating_sub(received),
        gap_ms: gap_ns as f64 / 1e6,
        resumed,
    }
}

/// The IPv6 flows' longest gap and their losses.
fn v6_gap_lost(flows: &[FlowResult]) -> (f64, u64) {
    let v6 = flows
        .iter()
        .filter(|f| FLOWS.iter().any(|x| x.0 == f.name && x.5));
    v6.fold((0.0, 0), |(g, l), f| (f64::max(g, f.gap_ms), l + f.lost))
}

/// Reaps, every 50 ms, the daemons the rc.d scripts started (their pid files under
/// `work`) once they exit: as the scripts' subreaper we inherit them, and a zombie would
/// answer the scripts' `kill -0` (a killed member not started again, every `stop` waiting
/// its 5 s for a corpse). Only those pids: the lab's own children are its `Proc`s to wait
/// for.
fn spawn_reaper(work: std::path::PathBuf) {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    std::thread::spawn(move || {
        loop {
            let nodes = std::fs::read_dir(&work).into_iter().flatten().flatten();
            for dir in nodes.filter(|e| e.path().is_dir()) {
                for f in std::fs::read_dir(dir.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let p = f.path();
                    if p.extension().is_none_or(|x| x != "pid") {
                        continue;
                    }
                    let pid = std::fs::read_to_string(&p)
                        .ok()
                        .and_then(|t| t.trim().parse::<i32>().ok());
                    if let Some(pid) = pid {
                        let _ =
                            waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

/// Kills a daemon started by an rc.d script and reaps it (we are the subreaper).
fn kill_daemon(lab: &Lab, node: &str, daemon: &str) -> Result<()> {
    let Some(pid) = lab.daemon_pid(node, daemon) else {
        return err(format!("no pid file for {daemon} on {node}"));
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    // Gone once reaped (here, or by the reaper first).
    wait_until(Duration::from_secs(5), || {
        nix::sys::signal::kill(pid, None).is_err()
    })?;
    Ok(())
}

/// A daemon's log length now (to look only at what a restart writes after it).
fn log_len(lab: &Lab, node: &str, daemon: &str) -> usize {
    std::fs::metadata(lab.log_path(node, daemon)).map_or(0, |m| m.len() as usize)
}

fn log_since(lab: &Lab, node: &str, daemon: &str, from: usize) -> String {
    let t = std::fs::read(lab.log_path(node, daemon)).unwrap_or_default();
    String::from_utf8_lossy(&t[from.min(t.len())..]).into_owned()
}

/// The dead member's host comes back: its link up and configured, `nemo_ha start`. It must
/// come back a standby, holding neither the address nor a binding.
fn revive(lab: &Lab, i: usize, say: &Say) -> Result<bool> {
    let m = lab.members[i].clone();
    let node = m.node.clone();
    let (had_from, net_from) = (log_len(lab, &node, "had"), log_len(lab, &node, "nemonetd"));
    lab.member_network_up(&m, i)?;
    lab.rc_start_again_on(&node, "nemo_ha")?;
    let ready = wait_until(Duration::from_secs(20), || {
        log_since(lab, &node, "had", had_from).contains("had ready")
            && log_since(lab, &node, "nemonetd", net_from).contains("ready")
    })?;
    if !ready {
        return err(format!(
            "{node} did not start again; logs in {}",
            lab.opts.work.join(&node).display()
        ));
    }
    // A moment for a wrongful take-over to show.
    sleep(Duration::from_secs(1))?;
    let text = log_since(lab, &node, "had", had_from);
    let standby = text.contains("starting as a standby")
        && !text.contains(TOOK_OVER)
        && !holds_ha_address(&m)
        && binding_views(lab, &node).is_empty();
    say.info(&format!(
        "{node} back: {}",
        if standby {
            "a standby holding nothing"
        } else {
            "NOT a clean standby"
        }
    ));
    Ok(standby)
}

/// Whether the router's ARP entry for the home agent's IPv4 address names `m`'s MAC.
fn ipv4_neighbour_is(lab: &Lab, m: &Ns) -> bool {
    let mac = m
        .ip(&["link", "show", "eth0"])
        .ok()
        .and_then(|t| {
            t.split_whitespace()
                .skip_while(|w| *w != "link/ether")
                .nth(1)
                .map(str::to_string)
        })
        .unwrap_or_default();
    let entry = lab
        .r
        .ip(&["-4", "neigh", "show", HA4, "dev", "home"])
        .unwrap_or_default();
    !mac.is_empty() && entry.contains(&mac)
}

/// Waits for a member to hold the home agent address.
fn wait_active(lab: &Lab, timeout: Duration) -> Result<Option<usize>> {
    let mut a = None;
    wait_until(timeout, || {
        a = active(lab);
        a.is_some()
    })?;
    Ok(a)
}

/// One host death.
fn run_once(lab: &mut Lab, say: &mut Say, run: u32, interval_ms: u64) -> Result<Run> {
    let Some(a) = wait_active(lab, Duration::from_secs(15))? else {
        return err("no member holds the home agent address");
    };
    let killed = lab.members[a].node.clone();
    say.step(&format!(
        "Run {run}: {killed} is active; the flows start, and 2 s later {killed}'s host dies (had and nemonetd killed with -9, its home link down)."
    ));
    let before = binding_views(lab, &killed);
    let counts: Vec<usize> = (0..lab.members.len())
        .map(|i| takeovers(lab, &lab.members[i].node))
        .collect();
    let flows = Flows::start(lab, &format!("run{run}"), interval_ms)?;
    sleep(Duration::from_secs(2))?;
    // The host dies at once: its link first (so nothing more leaves it, the kernel's
    // fast path included), then its daemons. Killing first and waiting for the corpses
    // would let the kernel forward for those milliseconds and shorten the gap measured.
    let kill_ns = now_ns();
    lab.members[a].ip(&["link", "set", "eth0", "down"])?;
    kill_daemon(lab, &killed, "had")?;
    kill_daemon(lab, &killed, "nemonetd")?;
    let mut new = None;
    wait_until(Duration::from_secs(10), || {
        new = (0..lab.members.len())
            .find(|&i| i != a && takeovers(lab, &lab.members[i].node) > counts[i]);
        new.is_some()
    })?;
    let took_over = new.map(|i| lab.members[i].node.clone());
    let took = new.and_then(|i| took_ms(&had_log(lab, &lab.members[i].node)));
    let taken_ns = now_ns();
    // Every IPv6 flow back, then a second more of steady flow.
    flows.wait_resumed(lab, taken_ns, Duration::from_secs(10))?;
    sleep(Duration::from_secs(1))?;
    let v4_moved = new.is_some_and(|i| ipv4_neighbour_is(lab, &lab.members[i]));
    let results = flows.stop(lab, kill_ns.saturating_sub(1_000_000_000), taken_ns)?;
    let after = took_over
        .as_deref()
        .map(|n| binding_views(lab, n))
        .unwrap_or_default();
    let (gap_ms, lost) = v6_gap_lost(&results);
    let v6_resumed = results
        .iter()
        .filter(|f| FLOWS.iter().any(|x| x.0 == f.name && x.5))
        .all(|f| f.resumed);
    for f in &results {
        say.info(&format!(
            "{}: sent {}, received {}, lost {}, longest gap {:.0} ms{}",
            f.name,
            f.sent,
            f.received,
            f.lost,
            f.gap_ms,
            if f.resumed { "" } else { ", NOT resumed" }
        ));
    }
    say.info(&format!(
        "took over: {} (had: {} ms); the router's ARP entry for {HA4} {}; bindings before {}, after {}{}",
        took_over.as_deref().unwrap_or("nobody"),
        took.map_or("?".into(), |t| t.to_string()),
        if v4_moved {
            "moved to it"
        } else {
            "still names the dead member (no gratuitous ARP)"
        },
        before.len(),
        after.len(),
        if !before.is_empty() && before == after {
            ", unchanged"
        } else {
            ", CHANGED"
        }
    ));
    let back = revive(lab, a, say)?;
    Ok(Run {
        run,
        killed,
        took_over: took_over.clone(),
        took_ms: took,
        gap_ms,
        lost,
        flows: results,
        bindings_unchanged: !before.is_empty() && before == after,
        bindings_before: before,
        bindings_after: after,
        recovered: took_over.is_some() && v6_resumed,
        back_as_standby: back,
        ipv4_neighbour_moved: v4_moved,
    })
}

/// The etcd cluster's leader (`etcd1`..`etcd3`), asked of every endpoint from the router.
fn etcd_leader(lab: &Lab) -> Option<usize> {
    let endpoints = Lab::etcd_endpoints().join(",");
    let out = lab
        .r
        .try_exec(
            "etcdctl",
            &[
                "--endpoints",
                &endpoints,
                "endpoint",
                "status",
                "--write-out",
                "json",
            ],
        )
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array()?.iter().find_map(|e| {
        let s = &e["Status"];
        let leader = s["leader"].as_u64()?;
        (s["header"]["member_id"].as_u64()? == leader).then(|| {
            let ep = e["Endpoint"].as_str().unwrap_or_default();
            Lab::etcd_endpoints().iter().position(|u| u == ep)
        })?
    })
}

fn etcd_loss(lab: &mut Lab, say: &mut Say, interval_ms: u64) -> Result<EtcdLoss> {
    let leader = etcd_leader(lab);
    let victim = leader.unwrap_or(0);
    let name = format!("etcd{}", victim + 1);
    let Some(a) = wait_active(lab, Duration::from_secs(15))? else {
        return err("no member holds the home agent address");
    };
    let node = lab.members[a].node.clone();
    say.step(&format!(
        "An etcd member dies mid-flow: {name} ({}) killed with -9 while {node} is active.",
        if leader.is_some() {
            "the cluster's leader"
        } else {
            "the leader unknown: etcdctl did not say"
        }
    ));
    let before = binding_views(lab, &node);
    let froms: Vec<usize> = lab
        .members
        .iter()
        .map(|m| log_len(lab, &m.node, "had"))
        .collect();
    let flows = Flows::start(lab, "etcd", interval_ms)?;
    sleep(Duration::from_secs(2))?;
    let kill_ns = now_ns();
    if let Some(p) = lab.proc(&name) {
        p.signal(Signal::SIGKILL);
    }
    // Long enough for etcd to elect a new leader and had's clients to find another
    // endpoint.
    sleep(Duration::from_secs(5))?;
    let results = flows.stop(lab, kill_ns.saturating_sub(1_000_000_000), kill_ns)?;
    let after = binding_views(lab, &node);
    let quiet = lab.members.iter().zip(&froms).all(|(m, &from)| {
        let t = log_since(lab, &m.node, "had", from);
        !t.contains(TOOK_OVER) && !t.contains("stepping down")
    });
    let active_unchanged = active(lab) == Some(a) && quiet;
    let (gap_ms, lost) = v6_gap_lost(&results);
    for f in &results {
        say.info(&format!(
            "{}: sent {}, received {}, lost {}, longest gap {:.0} ms",
            f.name, f.sent, f.received, f.lost, f.gap_ms
        ));
    }
    let unchanged = !before.is_empty() && before == after;
    say.info(&format!(
        "{node} still active, nobody took over or stepped down: {active_unchanged}; bindings unchanged: {unchanged}"
    ));
    say.step("With two etcd members left, the router moves (eth0 from A to A2): its Binding Update needs a write to etcd before its acknowledgement.");
    let h = crate::handover::single(lab, Access::V6b)?;
    let moved = wait_until(Duration::from_secs(5), || {
        binding_views(lab, &node)
            .iter()
            .any(|b| b.coa.contains(Access::V6b.coa_prefix()))
    })?;
    let registered_after = h.registered && moved;
    say.info(&format!(
        "registered with the new care-of address: {registered_after}"
    ));
    Ok(EtcdLoss {
        killed: name,
        was_leader: leader.is_some(),
        gap_ms,
        lost,
        flows: results,
        active_unchanged,
        bindings_unchanged: unchanged,
        registered_after,
    })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// Runs the experiment; writes report.json and failover.svg into `out`.
pub fn failover_experiment(
    mut opts: Options,
    out: &Path,
    runs: u32,
    rate: u32,
    members: usize,
) -> Result<FailoverReport> {
    if !(1..=1000).contains(&rate) {
        return err(format!("--rate {rate}: 1 to 1000 packets/s"));
    }
    // The flows' senders pace in whole milliseconds.
    let interval_ms = u64::from(1000 / rate);
    opts.ha_members = members;
    // The rc scripts background the daemons and exit: as their subreaper we reap a killed
    // daemon at once, as init does (a zombie would answer the script's `kill -0`, and the
    // member would not be started again).
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| crate::net::Error::Msg(format!("PR_SET_CHILD_SUBREAPER: {e}")))?;
    spawn_reaper(opts.work.clone());
    let mut say = Say {
        step: 0,
        quiet: false,
    };
    let mut summary = Summary::default();
    let mut lab = setup(opts, &mut say, &mut summary)?;
    say.info(&format!(
        "home agent members: {}; etcd: {}; {} active",
        lab.members
            .iter()
            .map(|m| m.node.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        Lab::etcd_endpoints().join(" "),
        active(&lab).map_or("nobody".into(), |i| lab.members[i].node.clone())
    ));
    let mut done = Vec::new();
    let mut aborted = None;
    for run in 1..=runs {
        match run_once(&mut lab, &mut say, run, interval_ms) {
            Ok(r) => done.push(r),
            // The report still says what happened up to here.
            Err(e) => {
                say.info(&format!("run {run} could not finish: {e}"));
                aborted = Some(format!("run {run}: {e}"));
                break;
            }
        }
    }
    let etcd = if aborted.is_none() {
        match etcd_loss(&mut lab, &mut say, interval_ms) {
            Ok(e) => Some(e),
            Err(e) => {
                aborted = Some(format!("etcd member loss: {e}"));
                None
            }
        }
    } else {
        None
    };
    let gaps: Vec<f64> = done.iter().map(|r| r.gap_ms).collect();
    let report = FailoverReport {
        members,
        rate: (1000 / interval_ms) as u32,
        median_gap_ms: median(&gaps),
        worst_gap_ms: gaps.iter().copied().fold(0.0, f64::max),
        lost_per_run: done.iter().map(|r| r.lost).collect(),
        no_binding_lost: done.iter().all(|r| r.bindings_unchanged && r.recovered),
        ipv4_resumed_runs: done
            .iter()
            .filter(|r| {
                r.flows
                    .iter()
                    .any(|f| f.name.ends_with("(IPv4)") && f.resumed)
            })
            .count(),
        complete: aborted.is_none() && done.len() == runs as usize,
        aborted,
        runs: done,
        etcd_loss: etcd,
    };
    write_report(out, &report)?;
    if let Some(why) = &report.aborted {
        say.info(&format!("stopped early: {why}"));
    }
    say.step(&format!(
        "{} host deaths: median gap {:.0} ms, worst {:.0} ms (IPv6 flows), lost per run {:?}, bindings kept: {}; the IPv4 flow came back in {} of them; etcd member lost: gap {:.0} ms, lost {}. Written: {} and {}",
        report.runs.len(),
        report.median_gap_ms,
        report.worst_gap_ms,
        report.lost_per_run,
        report.no_binding_lost,
        report.ipv4_resumed_runs,
        report.etcd_loss.as_ref().map_or(0.0, |e| e.gap_ms),
        report.etcd_loss.as_ref().map_or(0, |e| e.lost),
        out.join("report.json").display(),
        out.join("failover.svg").display()
    ));
    Ok(report)
}

fn write_report(out: &Path, r: &FailoverReport) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let json = serde_json::json!({
        "result": r,
        "goals": {
            "median_gap_ms_under": GOAL_GAP_MS,
            "bindings_lost": 0,
        },
        "met": {
            "median_gap": r.median_gap_ms < GOAL_GAP_MS,
            "no_binding_lost": r.no_binding_lost,
            "etcd_member_loss_unnoticed": r.etcd_loss.as_ref().map(|e| e.bindings_unchanged && e.active_unchanged),
        },
        "anchors": {
            "Cisco HSRP-style 1:1 standby": "about 10 s (hold time)",
            "OpenMPTCProuter, glorytun, Peplink SpeedFusion": "no server redundancy",
        },
        "run": {
            "members": r.members,
            "rate_pps": r.rate,
            "redundancy_advert_interval_ms": 50, // had's default
            "redundancy_dead_interval_ms": 300,  // had's default
            "date_unix_s": now_ns() / 1_000_000_000,
        },
    });
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&json).unwrap_or_default() + "\n",
    )?;
    std::fs::write(out.join("failover.svg"), svg(r))?;
    Ok(())
}

/// Bars: each run's gap, then the etcd member loss's; the 1 s goal as a line.
fn svg(r: &FailoverReport) -> String {
    let bars: Vec<(String, f64, u64, bool)> = r
        .runs
        .iter()
        .map(|x| {
            (
                format!("run {}: {} dies", x.run, x.killed),
                x.gap_ms,
                x.lost,
                x.recovered && x.bindings_unchanged,
            )
        })
        .chain(r.etcd_loss.iter().map(|e| {
            (
                format!("{} (etcd) dies", e.killed),
                e.gap_ms,
                e.lost,
                e.bindings_unchanged && e.active_unchanged,
            )
        }))
        .collect();
    let w = 720.0;
    let h = 110.0 + bars.len() as f64 * 26.0;
    let max = bars.iter().map(|b| b.1).fold(GOAL_GAP_MS * 1.2, f64::max);
    let scale = |ms: f64| ms / max * 400.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"14\">nemo-lab failover: the active home agent's host dies ({} members, {} packets/s each way)</text>\n<text x=\"10\" y=\"42\">Longest gap at the receivers (IPv6 flows), ms; median {:.0} ms, worst {:.0} ms; red line: the 1 s goal</text>\n",
        r.members, r.rate, r.median_gap_ms, r.worst_gap_ms
    );
    let x1 = 180.0 + scale(GOAL_GAP_MS);
    s += &format!(
        "<line x1=\"{x1:.1}\" y1=\"52\" x2=\"{x1:.1}\" y2=\"{:.1}\" stroke=\"red\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"red\">1 s</text>\n",
        60.0 + bars.len() as f64 * 26.0,
        x1 + 3.0,
        72.0 + bars.len() as f64 * 26.0
    );
    for (i, (label, gap, lost, ok)) in bars.iter().enumerate() {
        let y = 56.0 + i as f64 * 26.0;
        let len = scale(*gap);
        let etcd = label.contains("etcd");
        s += &format!(
            "<text x=\"10\" y=\"{:.1}\">{label}</text><rect x=\"180\" y=\"{y:.1}\" width=\"{len:.1}\" height=\"18\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{gap:.0} ms, lost {lost}{}</text>\n",
            y + 14.0,
            if !ok {
                "#c33"
            } else if etcd {
                "#3a7"
            } else {
                "#37a"
            },
            185.0 + len,
            y + 14.0,
            if *ok { "" } else { ", binding lost" }
        );
    }
    s += "</svg>\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rx(seq: u64, t_ms: u64) -> Rx {
        Rx {
            seq,
            sent_ns: 0,
            recv_ns: t_ms * 1_000_000,
        }
    }

    #[test]
    fn a_flow_counts_losses_and_the_gap_from_the_kill_on() {
        // 5 ms apart; 400..=459 lost (300 ms); a slower stretch long before the window.
        let v: Vec<Rx> = (0..400)
            .chain(460..600)
            .map(|s| rx(s, if s < 10 { s * 50 } else { 1000 + s * 5 }))
            .collect();
        let window = (2_000_000_000, 4_000_000_000);
        let f = flow_result("MNN -> CN (IPv6)", 600, &v, window, 3_500_000_000);
        assert_eq!((f.sent, f.received, f.lost), (600, 540, 60));
        assert!((f.gap_ms - 305.0).abs() < 0.01, "{}", f.gap_ms);
        assert!(f.resumed);
        let late = flow_result("MNN -> CN (IPv6)", 600, &v, window, 9_000_000_000);
        assert!(!late.resumed);
        // Nothing in the window: the gap is all of it.
        let none = flow_result(
            "CN -> MNN (IPv4)",
            600,
            &v,
            (5_000_000_000, 6_000_000_000),
            0,
        );
        assert!((none.gap_ms - 1000.0).abs() < 0.01, "{}", none.gap_ms);
    }

    #[test]
    fn the_median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn took_ms_is_read_from_the_last_take_over() {
        let log = "x INFO active home agent: took over the home agent address and every binding epoch=1 took_ms=12\ny INFO active home agent: took over the home agent address and every binding epoch=2 took_ms=7\n";
        assert_eq!(took_ms(log), Some(7));
        assert_eq!(took_ms("nothing"), None);
    }

    #[test]
    fn the_goal_and_the_svg() {
        let run = |gap: f64, ok: bool| Run {
            run: 1,
            killed: "ha".into(),
            took_over: Some("ha2".into()),
            took_ms: Some(5),
            gap_ms: gap,
            lost: 40,
            flows: Vec::new(),
            bindings_before: Vec::new(),
            bindings_after: Vec::new(),
            bindings_unchanged: ok,
            recovered: true,
            back_as_standby: true,
            ipv4_neighbour_moved: false,
        };
        let mut r = FailoverReport {
            members: 3,
            rate: 200,
            runs: vec![run(300.0, true), run(2500.0, true), run(250.0, true)],
            median_gap_ms: 300.0,
            worst_gap_ms: 2500.0,
            lost_per_run: vec![40, 40, 40],
            no_binding_lost: true,
            ipv4_resumed_runs: 0,
            etcd_loss: None,
            complete: true,
            aborted: None,
        };
        assert!(r.goal_met());
        let s = svg(&r);
        assert!(s.starts_with("<svg") && s.contains("2500 ms, lost 40") && s.ends_with("</svg>\n"));
        r.no_binding_lost = false;
        assert!(!r.goal_met());
        r.no_binding_lost = true;
        r.median_gap_ms = 1200.0;
        assert!(!r.goal_met());
    }
}
