//! `nemo-lab multipath` (issue 15): the mobile router with both uplinks registered at once
//! (RFC 5648 multiple care-of addresses, mrd's `multiple-care-of-addresses yes;`), each
//! through the link emulator with LTE-like delay and loss. Three measurements:
//!
//! 1. aggregate TCP throughput of several flows MNN → CN with both uplinks, against the
//!    same with one (the other silenced by its emulator: out of use by path liveness,
//!    still registered), same run;
//! 2. a voice-like UDP flow (160 octets every 20 ms, 50 packets/s) to a port mrd.conf binds
//!    to both uplinks (RFC 6089 flow bindings, sent to the home agent in the BU: both
//!    nemonetds send a copy through each), while one uplink goes silent for a few seconds:
//!    its losses (goal: none);
//! 3. unmarked UDP flows beside it: the gap of those that were on the silenced uplink until
//!    they continue on the other (goal: under 150 ms).
//!
//! report.json and multipath.svg in the output directory; the bonding VPNs' failover times
//! as the anchors to beat.

use std::path::Path;
use std::time::Duration;

use crate::apps::{Rx, read_rx};
use crate::demo::{Say, Summary, setup};
use crate::net::{Result, err, now_ns, sleep, wait_until};
use crate::topo::{CN6, Lab, MNN6, Options};

/// The voice flow's port (mrd.conf's `flow-binding` blocks in the lab bind it to both
/// uplinks).
pub const VOICE_PORT: u16 = 5004;
/// The unmarked flows' ports.
const PLAIN_PORTS: [u16; 8] = [9000, 9001, 9002, 9003, 9004, 9005, 9006, 9007];

/// An unmarked flow (a packet every 10 ms) paused this long around the silence was on the
/// silenced uplink.
const MOVED_GAP_MS: f64 = 60.0;

/// One measured flow.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlowResult {
    /// "MNN -> CN" (the MR chooses the path) or "CN -> MNN" (the HA does).
    pub direction: &'static str,
    /// Destination port.
    pub port: u16,
    /// Duplicated over every live path.
    pub duplicated: bool,
    /// Packets sent (highest sequence number + 1 seen, the sender's count when larger).
    pub sent: u64,
    /// Distinct packets received.
    pub received: u64,
    /// Sent and never received.
    pub lost: u64,
    /// Packets received more than once.
    pub delivered_twice: u64,
    /// The longest time between two packets at the receiver while the uplink was silent
    /// (ms).
    pub gap_ms: f64,
}

/// The experiment's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MultipathReport {
    /// TCP MNN -> CN with one uplink in use, Mbit/s.
    pub tcp_one_uplink_mbps: f64,
    /// The same with both.
    pub tcp_both_uplinks_mbps: f64,
    /// Their ratio (goal: 1.8 or more).
    pub tcp_ratio: f64,
    /// The flows while eth0 was silent.
    pub flows: Vec<FlowResult>,
    /// The longest gap of an unmarked flow that was on the silenced uplink (ms; goal:
    /// under 150); `None` when none was (the flows' paths are their hashes' choice).
    pub moved_flow_gap_ms: Option<f64>,
}

fn iperf(lab: &Lab, streams: u32, secs: u32) -> Result<f64> {
    let log = lab
        .opts
        .work
        .join(format!("iperf3-server-{}.log", now_ns()));
    let mut server = lab.cn.spawn(Path::new("iperf3"), &["-s", "-1"], &log)?;
    sleep(Duration::from_millis(300))?;
    let out = lab.mnn.try_exec(
        "iperf3",
        &[
            "-6",
            "-c",
            CN6,
            "-P",
            &streams.to_string(),
            "-t",
            &secs.to_string(),
            "-J",
        ],
    )?;
    let _ = server.kill();
    let _ = server.wait();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    match v["end"]["sum_received"]["bits_per_second"].as_f64() {
        Some(bps) if out.status.success() => Ok(bps / 1e6),
        _ => err(format!(
            "iperf3 failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// The home agent's bindings of the MR's home address, by binding identifier.
fn registered_bids(lab: &Lab) -> Vec<u64> {
    crate::demo::state_items(lab, "ha", "had")
        .iter()
        .filter(|i| i["bc"]["hoa"] == crate::topo::HOA)
        .filter_map(|i| i["bc"]["binding_id"].as_u64())
        .collect()
}

/// The FIDs of the flow bindings (RFC 6089) the home agent holds for the MR, as its
/// bindings carry them (every BID the same list), sorted.
fn home_agent_flow_bindings(lab: &Lab) -> Vec<u64> {
    let mut fids: Vec<u64> = crate::demo::state_items(lab, "ha", "had")
        .iter()
        .filter(|i| i["bc"]["hoa"] == crate::topo::HOA)
        .flat_map(|i| {
            i["bc"]["flows"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f["fid"].as_u64())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .collect();
    fids.sort_unstable();
    fids.dedup();
    fids
}

/// What a flow's receiver log says, over the silent interval `[from, to)` (ns) for the gap.
fn flow_result(
    direction: &'static str,
    port: u16,
    duplicated: bool,
    sent: u64,
    rx: &[Rx],
    from: u64,
    to: u64,
) -> FlowResult {
    let mut seqs: Vec<u64> = rx.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    let before = seqs.len();
    seqs.dedup();
    let received = seqs.len() as u64;
    let top = seqs.last().map_or(0, |s| s + 1).max(sent);
    let mut times: Vec<u64> = rx
        .iter()
        .map(|r| r.recv_ns)
        .filter(|&t| t + 1_000_000_000 >= from && t <= to + 1_000_000_000)
        .collect();
    times.sort_unstable();
    let gap_ns = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    FlowResult {
        direction,
        port,
        duplicated,
        sent: top,
        received,
        lost: top.saturating_sub(received),
        delivered_twice: (before - seqs.len()) as u64,
        gap_ms: gap_ns as f64 / 1e6,
    }
}

/// The two directions: (name, tag, the sender's node is the MNN, the receiver's address).
const DIRECTIONS: [(&str, &str, bool, &str); 2] = [
    ("MNN -> CN", "up", true, CN6),
    ("CN -> MNN", "down", false, MNN6),
];

fn start_flow(
    lab: &mut Lab,
    (tag, from_mnn, to): (&str, bool, &str),
    port: u16,
    interval_ms: u32,
    size: u32,
) -> Result<()> {
    let w = lab.opts.work.clone();
    let stop = w.join("multipath.stop");
    let log = w.join(format!("rx-{tag}-{port}.txt"));
    let (sender, receiver) = if from_mnn {
        (lab.mnn.clone(), lab.cn.clone())
    } else {
        (lab.cn.clone(), lab.mnn.clone())
    };
    let s = stop.display().to_string();
    lab.helper(
        &receiver,
        &format!("udp-recv-{tag}-{port}"),
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
    lab.helper(
        &sender,
        &format!("udp-send-{tag}-{port}"),
        &[
            "udp-send",
            "--to",
            &format!("[{to}]:{port}"),
            "--interval-ms",
            &interval_ms.to_string(),
            "--size",
            &size.to_string(),
            "--stop-file",
            &s,
        ],
    )
}

/// The sender's count from its last line (`{"sent": N, ...}`).
pub(crate) fn sent_count(log: &str) -> u64 {
    log.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["sent"].as_u64())
        .unwrap_or(0)
}

/// Runs the experiment; writes report.json and multipath.svg into `out`.
pub fn multipath_experiment(
    mut opts: Options,
    out: &Path,
    streams: u32,
    secs: u32,
    silent_secs: u32,
) -> Result<MultipathReport> {
    opts.mcoa = true;
    if opts.link.is_none() {
        opts.link = Some("lte".into());
    }
    let profile = opts.link.clone().unwrap_or_default();
    let mut say = Say {
        step: 0,
        quiet: false,
    };
    let mut summary = Summary::default();
    let mut lab = setup(opts, &mut say, &mut summary)?;
    say.step(&format!(
        "Plugging eth1 into the dual-stack network B: both uplinks ({profile} each) registered at once, one binding identifier each (RFC 5648 bulk registration)."
    ));
    lab.plug(1, true)?;
    let mut bids = Vec::new();
    let both = wait_until(Duration::from_secs(20), || {
        bids = registered_bids(&lab);
        bids.len() >= 2
    })?;
    say.info(&format!(
        "home agent's bindings of {}: BIDs {bids:?}",
        crate::topo::HOA
    ));
    // The voice flow's duplication is the router's word (mrd.conf's flow-binding blocks),
    // carried to the home agent in the BU (RFC 6089).
    let mut fids = Vec::new();
    wait_until(Duration::from_secs(10), || {
        fids = home_agent_flow_bindings(&lab);
        fids.len() >= 2
    })?;
    say.info(&format!(
        "home agent's flow bindings of {}: FIDs {fids:?}",
        crate::topo::HOA
    ));
    if !both {
        return err(format!(
            "the home agent holds {} binding(s) of the router, not two; logs in {}",
            bids.len(),
            lab.opts.work.display()
        ));
    }
    sleep(Duration::from_secs(1))?;

    say.step(&format!(
        "TCP MNN -> CN, {streams} streams for {secs} s: first with eth1's link silent (out of use by path liveness, still registered), then with both."
    ));
    lab.set_link(1, "down")?;
    sleep(Duration::from_millis(500))?;
    let one = iperf(&lab, streams, secs)?;
    lab.set_link(1, &profile)?;
    sleep(Duration::from_secs(1))?;
    let two = iperf(&lab, streams, secs)?;
    let ratio = if one > 0.0 { two / one } else { 0.0 };
    say.info(&format!(
        "one uplink {one:.1} Mbit/s, both {two:.1} Mbit/s: {ratio:.2}x (goal 1.8x)"
    ));

    say.step(&format!(
        "Each way (MNN -> CN: the MR chooses the paths; CN -> MNN: the HA does), a voice-like flow (160 octets every 20 ms) to port {VOICE_PORT}, duplicated over both uplinks, and {} unmarked flows (250 octets every 10 ms); after 2 s eth0's link goes silent for {silent_secs} s (the carrier stays up: nothing for the movement detector), then answers again.",
        PLAIN_PORTS.len()
    ));
    let _ = std::fs::remove_file(lab.opts.work.join("multipath.stop"));
    for (_, tag, from_mnn, to) in DIRECTIONS {
        start_flow(&mut lab, (tag, from_mnn, to), VOICE_PORT, 20, 160)?;
        for p in PLAIN_PORTS {
            start_flow(&mut lab, (tag, from_mnn, to), p, 10, 250)?;
        }
    }
    sleep(Duration::from_secs(2))?;
    let cut = now_ns();
    lab.set_link(0, "down")?;
    sleep(Duration::from_secs(u64::from(silent_secs)))?;
    lab.set_link(0, &profile)?;
    let back = now_ns();
    sleep(Duration::from_secs(2))?;
    std::fs::write(lab.opts.work.join("multipath.stop"), b"")?;
    let mut flows = Vec::new();
    for (direction, tag, _, _) in DIRECTIONS {
        for (port, duplicated) in
            std::iter::once((VOICE_PORT, true)).chain(PLAIN_PORTS.iter().map(|&p| (p, false)))
        {
            let sent = sent_count(
                &lab.wait_proc(&format!("udp-send-{tag}-{port}"), Duration::from_secs(5))?,
            );
            lab.wait_proc(&format!("udp-recv-{tag}-{port}"), Duration::from_secs(5))?;
            let rx = read_rx(&lab.opts.work.join(format!("rx-{tag}-{port}.txt")));
            flows.push(flow_result(
                direction, port, duplicated, sent, &rx, cut, back,
            ));
        }
    }
    for f in &flows {
        say.info(&format!(
            "{} port {}{}: sent {}, received {}, lost {}, delivered twice {}, longest gap {:.1} ms",
            f.direction,
            f.port,
            if f.duplicated { " (duplicated)" } else { "" },
            f.sent,
            f.received,
            f.lost,
            f.delivered_twice,
            f.gap_ms
        ));
    }
    // The unmarked flows the silence hit: a pause of six packet intervals or more around
    // it (the link's own 1 % loss makes such a run of losses vanishingly rare; a loss count
    // would not tell, it loses a few packets of every flow).
    let moved = flows
        .iter()
        .filter(|f| !f.duplicated && f.gap_ms >= MOVED_GAP_MS)
        .map(|f| f.gap_ms)
        .fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.max(g))));
    let report = MultipathReport {
        tcp_one_uplink_mbps: one,
        tcp_both_uplinks_mbps: two,
        tcp_ratio: ratio,
        flows,
        moved_flow_gap_ms: moved,
    };
    write_report(out, &report, &profile, streams, secs, silent_secs)?;
    say.step(&format!(
        "Written: {} and {}",
        out.join("report.json").display(),
        out.join("multipath.svg").display()
    ));
    Ok(report)
}

fn write_report(
    out: &Path,
    r: &MultipathReport,
    profile: &str,
    streams: u32,
    secs: u32,
    silent_secs: u32,
) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let voice = r.flows.iter().find(|f| f.duplicated);
    let json = serde_json::json!({
        "result": r,
        "goals": {
            "tcp_ratio_at_least": 1.8,
            "duplicated_flow_lost": 0,
            "moved_flow_gap_ms_under": 150,
        },
        "met": {
            "tcp_ratio": r.tcp_ratio >= 1.8,
            "duplicated_flow_lost_nothing": voice.is_some_and(|v| v.lost == 0),
            "moved_flow_gap": r.moved_flow_gap_ms.is_some_and(|g| g < 150.0),
        },
        "anchors_failover": {
            "glorytun": "0.5-12 s",
            "OpenMPTCProuter": "6-10 s",
            "Peplink SpeedFusion": "15 s by default",
            "MLVPN": "30 s",
        },
        "run": {
            "link_profile": profile,
            "tcp_streams": streams,
            "tcp_seconds": secs,
            "silent_seconds": silent_secs,
            "path_probe_interval_ms": 20, // nemonetd's default
            "date_unix_s": now_ns() / 1_000_000_000,
        },
    });
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&json).unwrap_or_default() + "\n",
    )?;
    std::fs::write(out.join("multipath.svg"), svg(r))?;
    Ok(())
}

/// Bars: throughput with one and two uplinks; per flow, lost packets and the longest gap.
fn svg(r: &MultipathReport) -> String {
    let w = 720.0;
    let h = 190.0 + r.flows.len() as f64 * 28.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"14\">nemo-lab multipath: both uplinks at once (RFC 5648)</text>\n"
    );
    let max = r.tcp_both_uplinks_mbps.max(r.tcp_one_uplink_mbps).max(1.0);
    for (i, (label, v)) in [
        ("TCP, one uplink", r.tcp_one_uplink_mbps),
        ("TCP, both uplinks", r.tcp_both_uplinks_mbps),
    ]
    .iter()
    .enumerate()
    {
        let y = 40.0 + i as f64 * 30.0;
        let len = v / max * 400.0;
        s += &format!(
            "<text x=\"10\" y=\"{}\">{label}</text><rect x=\"150\" y=\"{}\" width=\"{len:.1}\" height=\"20\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\">{v:.1} Mbit/s</text>\n",
            y + 15.0,
            y,
            if i == 0 { "#9ab" } else { "#37a" },
            155.0 + len,
            y + 15.0
        );
    }
    s += &format!(
        "<text x=\"10\" y=\"120\">ratio {:.2}x (goal 1.8x)</text>\n<text x=\"10\" y=\"150\">While eth0's link was silent (bars: longest gap, ms; line at 150 ms):</text>\n",
        r.tcp_ratio
    );
    let gap_max = r.flows.iter().map(|f| f.gap_ms).fold(200.0, f64::max);
    let x150 = 150.0 + 150.0 / gap_max * 400.0;
    s += &format!(
        "<line x1=\"{x150:.1}\" y1=\"160\" x2=\"{x150:.1}\" y2=\"{}\" stroke=\"red\" stroke-dasharray=\"4 3\"/>\n",
        165.0 + r.flows.len() as f64 * 28.0
    );
    for (i, f) in r.flows.iter().enumerate() {
        let y = 165.0 + i as f64 * 28.0;
        let len = f.gap_ms / gap_max * 400.0;
        s += &format!(
            "<text x=\"10\" y=\"{}\">{} {}{}</text><rect x=\"150\" y=\"{}\" width=\"{len:.1}\" height=\"18\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\">{:.0} ms, lost {}</text>\n",
            y + 14.0,
            if f.direction.starts_with("MNN") {
                "up"
            } else {
                "down"
            },
            f.port,
            if f.duplicated { " (dup)" } else { "" },
            y,
            if f.duplicated {
                "#3a7"
            } else if f.lost > 0 {
                "#c73"
            } else {
                "#9ab"
            },
            155.0 + len,
            y + 14.0,
            f.gap_ms,
            f.lost
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
    fn a_flow_counts_losses_repeats_and_the_gap_around_the_silence() {
        // 10 ms apart; 5..=9 lost; 3 delivered twice; the silence from 2 s to 4 s.
        let mut v: Vec<Rx> = (0..5).chain(10..20).map(|s| rx(s, 2000 + s * 10)).collect();
        v.push(rx(3, 2031));
        let f = flow_result(
            "MNN -> CN",
            9000,
            false,
            20,
            &v,
            2_000_000_000,
            4_000_000_000,
        );
        assert_eq!(
            (f.sent, f.received, f.lost, f.delivered_twice),
            (20, 15, 5, 1)
        );
        assert!((f.gap_ms - 60.0).abs() < 0.01, "{}", f.gap_ms);
        let svg = svg(&MultipathReport {
            tcp_one_uplink_mbps: 20.0,
            tcp_both_uplinks_mbps: 38.0,
            tcp_ratio: 1.9,
            flows: vec![f],
            moved_flow_gap_ms: Some(60.0),
        });
        assert!(svg.contains("38.0 Mbit/s") && svg.ends_with("</svg>\n"));
    }

    #[test]
    fn the_senders_count_is_its_last_line() {
        assert_eq!(sent_count("x\n{\"sent\": 42, \"send_errors\": 0}\n"), 42);
        assert_eq!(sent_count(""), 0);
    }
}
