//! Handovers: performing them on the lab, measuring them from the receiver's log and the
//! daemons' timestamps, `report.json` and the Figure-4-like SVG.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::apps::{Rx, read_rx};
use crate::events::{Event, bu_sent, bus_events};
use crate::net::{Result, now_ns, sleep, wait_until};
use crate::topo::{Access, CN6, Lab};

/// What was done, and when.
#[derive(Debug, Clone)]
pub struct Handover {
    /// From which access network.
    pub from: Access,
    /// To which.
    pub to: Access,
    /// Egress interfaces in play (1: one interface moved; 2: vertical).
    pub interfaces: u8,
    /// The link event (wall clock ns).
    pub event_ns: u64,
    /// In words.
    pub what: String,
    /// Whether a BUL_ADD for the new network came.
    pub registered: bool,
}

/// One handover measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measured {
    /// `ipv6`, `dual`, ...
    pub from: String,
    /// `ipv6`, `dual`, ...
    pub to: String,
    /// 1 or 2.
    pub interfaces: u8,
    /// In words.
    pub what: String,
    /// Registered at the new care-of address.
    pub registered: bool,
    /// The new care-of address.
    pub coa: String,
    /// Packets of the flow lost.
    pub lost: u64,
    /// Longest time without a packet at the receiver around the handover.
    pub gap_ms: f64,
    /// Longest one-way delay (send to receive, same clock) of a packet around the
    /// handover: a gap without loss but with delay is queueing or a descheduled sender.
    pub max_delay_ms: f64,
    /// Longest pause of the sender itself around the handover (consecutive send times): a
    /// receive gap this long is the shared machine descheduling the sender, not the network.
    pub sender_gap_ms: f64,
    /// Link event to MD_INFO with the new CoA (babymdd: address usable).
    pub link_to_coa_ms: Option<f64>,
    /// MD_INFO to the Binding Update leaving mrd.
    pub coa_to_bu_ms: Option<f64>,
    /// Binding Update to BUL_ADD (mrd got the Binding Acknowledgement).
    pub bu_to_ba_ms: Option<f64>,
    /// BUL_ADD to the first packet of the flow at the receiver after it.
    pub ba_to_first_packet_ms: Option<f64>,
    #[serde(skip)]
    marks: Vec<(u64, &'static str)>,
    #[serde(skip)]
    event_ns: u64,
}

/// The UDP flow of the experiment: MNN -> CN (IPv6), 250 octets every 5 ms.
#[derive(Debug)]
pub struct Flow {
    stop: PathBuf,
    /// The receiver's log.
    pub rx_log: PathBuf,
    /// When it started (ns).
    pub start_ns: u64,
}

impl Flow {
    /// Starts the receiver on the CN and the sender on the MNN.
    pub fn start(lab: &mut Lab) -> Result<Flow> {
        let w = lab.opts.work.clone();
        let stop = w.join("flow.stop");
        let _ = std::fs::remove_file(&stop);
        let rx_log = w.join("flow-rx.txt");
        let (cn, mnn) = (lab.cn.clone(), lab.mnn.clone());
        let s = stop.display().to_string();
        lab.helper(
            &cn,
            "udp-recv",
            &[
                "udp-recv",
                "--port",
                "9000",
                "--log",
                &rx_log.display().to_string(),
                "--stop-file",
                &s,
            ],
        )?;
        sleep(Duration::from_millis(200))?;
        let start_ns = now_ns();
        lab.helper(
            &mnn,
            "udp-send",
            &[
                "udp-send",
                "--to",
                &format!("[{CN6}]:9000"),
                "--interval-ms",
                "5",
                "--size",
                "250",
                "--stop-file",
                &s,
            ],
        )?;
        Ok(Flow {
            stop,
            rx_log,
            start_ns,
        })
    }

    /// Stops both ends; the received packets.
    pub fn stop(&self, lab: &mut Lab) -> Result<Vec<Rx>> {
        std::fs::write(&self.stop, b"")?;
        lab.wait_proc("udp-send", Duration::from_secs(5))?;
        lab.wait_proc("udp-recv", Duration::from_secs(5))?;
        Ok(read_rx(&self.rx_log))
    }
}

fn bul_add_since(lab: &Lab, since: u64, to: Access) -> bool {
    bus_events(&lab.opts.work.join("mipsock-tap-mr.log"))
        .iter()
        .any(|e| e.kind == "bul_add" && e.t_ns >= since && e.coa.contains(to.coa_prefix()))
}

/// Waits for mrd's BUL_ADD with a care-of address in `to` after `since`.
pub fn wait_registered(lab: &Lab, since: u64, to: Access, timeout: Duration) -> Result<bool> {
    wait_until(timeout, || bul_add_since(lab, since, to))
}

/// Single interface: eth0 moves to `to` (eth1 unplugged).
pub fn single(lab: &mut Lab, to: Access) -> Result<Handover> {
    single_on(lab, 0, to)
}

/// Single interface: egress link `i` moves to `to` (the other one unplugged).
pub fn single_on(lab: &mut Lab, i: usize, to: Access) -> Result<Handover> {
    let from = lab.attached[i].unwrap_or(Access::V6);
    let event_ns = now_ns();
    lab.move_link(i, to)?;
    let registered = wait_registered(lab, event_ns, to, Duration::from_secs(10))?;
    Ok(Handover {
        from,
        to,
        interfaces: 1,
        event_ns,
        what: format!("eth{i} moves from {} to {}", from.bridge(), to.bridge()),
        registered,
    })
}

/// Vertical, break: eth0 unplugged while eth1 is up on its network.
pub fn vertical_out(lab: &mut Lab) -> Result<Handover> {
    let from = lab.attached[0].unwrap_or(Access::V6);
    let to = lab.attached[1].unwrap_or(Access::Dual);
    let event_ns = now_ns();
    lab.plug(0, false)?;
    let registered = wait_registered(lab, event_ns, to, Duration::from_secs(10))?;
    Ok(Handover {
        from,
        to,
        interfaces: 2,
        event_ns,
        what: format!(
            "eth0 unplugged ({}), eth1 takes over ({})",
            from.bridge(),
            to.bridge()
        ),
        registered,
    })
}

/// Vertical, back: eth0 plugged in again; babymdd returns after its hold-down.
pub fn vertical_back(lab: &mut Lab) -> Result<Handover> {
    let from = lab.attached[1].unwrap_or(Access::Dual);
    let to = lab.attached[0].unwrap_or(Access::V6);
    let event_ns = now_ns();
    lab.plug(0, true)?;
    let registered = wait_registered(lab, event_ns, to, Duration::from_secs(10))?;
    Ok(Handover {
        from,
        to,
        interfaces: 2,
        event_ns,
        what: format!(
            "eth0 plugged in again ({}): back from eth1 after babymdd's 2 s hold-down",
            to.bridge()
        ),
        registered,
    })
}

fn ms(a: u64, b: u64) -> Option<f64> {
    (b >= a).then(|| (b - a) as f64 / 1e6)
}

/// Measures each handover from the flow and the daemons' events.
pub fn analyse(hs: &[Handover], rx: &[Rx], bus: &[Event], bu: &[Event]) -> Vec<Measured> {
    let mut by_arrival: Vec<Rx> = rx.to_vec();
    by_arrival.sort_by_key(|r| r.recv_ns);
    let mut by_seq: Vec<Rx> = rx.to_vec();
    by_seq.sort_by_key(|r| r.seq);
    by_seq.dedup_by_key(|r| r.seq);
    let lead = 200_000_000;
    let mut out = Vec::new();
    for (i, h) in hs.iter().enumerate() {
        let lo = h.event_ns.saturating_sub(lead);
        let hi = hs
            .get(i + 1)
            .map(|n| n.event_ns.saturating_sub(lead))
            .unwrap_or(u64::MAX);
        let p = h.to.coa_prefix();
        let md = bus.iter().find(|e| {
            e.kind == "md_info" && e.t_ns >= h.event_ns && e.t_ns < hi && e.coa.contains(p)
        });
        let b = bu.iter().find(|e| {
            e.t_ns >= md.map_or(h.event_ns, |m| m.t_ns) && e.t_ns < hi && e.coa.contains(p)
        });
        let ba = bus.iter().find(|e| {
            e.kind == "bul_add"
                && e.t_ns >= b.map_or(h.event_ns, |b| b.t_ns)
                && e.t_ns < hi
                && e.coa.contains(p)
        });
        let first = ba.and_then(|ba| by_arrival.iter().find(|r| r.recv_ns >= ba.t_ns));
        let mut gap = 0u64;
        for w in by_arrival.windows(2) {
            if w[0].recv_ns >= lo && w[0].recv_ns < hi {
                gap = gap.max(w[1].recv_ns - w[0].recv_ns);
            }
        }
        let max_delay = by_arrival
            .iter()
            .filter(|r| r.recv_ns >= lo && r.recv_ns < hi)
            .map(|r| r.recv_ns.saturating_sub(r.sent_ns))
            .max()
            .unwrap_or(0);
        let mut sender_gap = 0u64;
        for w in by_seq.windows(2) {
            if w[0].recv_ns >= lo && w[0].recv_ns < hi && w[1].seq == w[0].seq + 1 {
                sender_gap = sender_gap.max(w[1].sent_ns.saturating_sub(w[0].sent_ns));
            }
        }
        let mut lost = 0;
        for w in by_seq.windows(2) {
            if w[1].seq > w[0].seq + 1 && w[0].recv_ns >= lo && w[0].recv_ns < hi {
                lost += w[1].seq - w[0].seq - 1;
            }
        }
        let mut marks = vec![(h.event_ns, "link")];
        marks.extend(md.map(|e| (e.t_ns, "MD_INFO")));
        marks.extend(b.map(|e| (e.t_ns, "BU")));
        marks.extend(ba.map(|e| (e.t_ns, "BA")));
        out.push(Measured {
            from: h.from.kind().into(),
            to: h.to.kind().into(),
            interfaces: h.interfaces,
            what: h.what.clone(),
            registered: h.registered,
            coa: ba.map(|e| e.coa.clone()).unwrap_or_default(),
            lost,
            gap_ms: gap as f64 / 1e6,
            max_delay_ms: max_delay as f64 / 1e6,
            sender_gap_ms: sender_gap as f64 / 1e6,
            link_to_coa_ms: md.and_then(|m| ms(h.event_ns, m.t_ns)),
            coa_to_bu_ms: md.zip(b).and_then(|(m, b)| ms(m.t_ns, b.t_ns)),
            bu_to_ba_ms: b.zip(ba).and_then(|(b, a)| ms(b.t_ns, a.t_ns)),
            ba_to_first_packet_ms: ba.zip(first).and_then(|(a, f)| ms(a.t_ns, f.recv_ns)),
            marks,
            event_ns: h.event_ns,
        });
    }
    out
}

/// Reads the events of a lab's work directory and measures.
pub fn measure(lab: &Lab, hs: &[Handover], rx: &[Rx]) -> Vec<Measured> {
    let bus = bus_events(&lab.opts.work.join("mipsock-tap-mr.log"));
    let bu = bu_sent(&lab.log_path("mr", "mrd"));
    analyse(hs, rx, &bus, &bu)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A plot like Figure 4 of the DSMIPv6 paper: per handover, the sequence number of each
/// packet received against time, the signalling marked (link event, MD_INFO = CoA usable,
/// BU sent, BA received).
pub fn svg(ms: &[Measured], rx: &[Rx]) -> String {
    let (w, ph, left, top) = (760.0f64, 230.0f64, 70.0f64, 40.0f64);
    let (summary, summary_h) = summary_svg(ms, w);
    let height = summary_h + ms.len() as f64 * (ph + 70.0) + 40.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    s.push_str(&summary);
    let mut arrivals: Vec<Rx> = rx.to_vec();
    arrivals.sort_by_key(|r| r.recv_ns);
    for (i, m) in ms.iter().enumerate() {
        let y0 = summary_h + 20.0 + i as f64 * (ph + 70.0);
        let last_mark = m.marks.iter().map(|x| x.0).max().unwrap_or(m.event_ns);
        // A window like the paper's Figure 5 (30 ms there): 40 ms either side of the
        // signalling, wider when the handover took longer.
        let lead = 40_000_000u64;
        let t0 = m.event_ns.saturating_sub(lead);
        let t1 = last_mark.max(m.event_ns + 20_000_000) + lead;
        let pts: Vec<&Rx> = arrivals
            .iter()
            .filter(|r| r.recv_ns >= t0 && r.recv_ns <= t1)
            .collect();
        let smin = pts.iter().map(|r| r.seq).min().unwrap_or(0) as f64;
        let smax = (pts.iter().map(|r| r.seq).max().unwrap_or(1) as f64).max(smin + 1.0);
        let pw = w - left - 20.0;
        let x = |t: u64| left + (t.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * pw;
        let y = |q: f64| y0 + top + ph - (q - smin) / (smax - smin) * ph;
        s.push_str(&format!(
            "<text x=\"{left}\" y=\"{:.1}\" font-size=\"13\" font-weight=\"bold\">{}: {} -&gt; {} ({} interface{}): {} lost, gap {:.1} ms</text>\n",
            y0 + 20.0,
            i + 1,
            m.from,
            m.to,
            m.interfaces,
            if m.interfaces > 1 { "s" } else { "" },
            m.lost,
            m.gap_ms
        ));
        s.push_str(&format!(
            "<text x=\"{left}\" y=\"{:.1}\" fill=\"#555\">{}</text>\n",
            y0 + 34.0,
            esc(&m.what)
        ));
        s.push_str(&format!(
            "<rect x=\"{left}\" y=\"{:.1}\" width=\"{pw:.1}\" height=\"{ph}\" fill=\"none\" stroke=\"#888\"/>\n",
            y0 + top
        ));
        // Axes: time in ms from the link event, sequence numbers.
        let span_ms = (t1 - t0) as f64 / 1e6;
        let step = [5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 250.0, 500.0, 1000.0]
            .into_iter()
            .find(|st| span_ms / st <= 12.0)
            .unwrap_or(2000.0);
        let lead_ms = lead as f64 / 1e6;
        let mut tick = -(lead_ms / step).floor() * step;
        while tick <= span_ms - lead_ms {
            let t = (m.event_ns as f64 + tick * 1e6) as u64;
            let xx = x(t);
            s.push_str(&format!(
                "<line x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"#888\"/><text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{tick:.0}</text>\n",
                y0 + top + ph,
                y0 + top + ph + 4.0,
                y0 + top + ph + 16.0
            ));
            tick += step;
        }
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time from the link event (ms)</text>\n",
            left + pw / 2.0,
            y0 + top + ph + 30.0
        ));
        for q in [smin, (smin + smax) / 2.0, smax] {
            s.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{q:.0}</text>\n",
                left - 4.0,
                y(q) + 4.0
            ));
        }
        s.push_str(&format!(
            "<text transform=\"translate(14,{:.1}) rotate(-90)\" text-anchor=\"middle\">sequence number</text>\n",
            y0 + top + ph / 2.0
        ));
        for r in &pts {
            s.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"3\" height=\"3\" fill=\"#1f4e9c\"/>\n",
                x(r.recv_ns) - 1.5,
                y(r.seq as f64) - 1.5
            ));
        }
        let colour = |k: &str| match k {
            "link" => "#c0392b",
            "MD_INFO" => "#e67e22",
            "BU" => "#27ae60",
            _ => "#8e44ad",
        };
        for (j, (t, k)) in m.marks.iter().enumerate() {
            let xx = x(*t);
            s.push_str(&format!(
                "<line x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-dasharray=\"4,3\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\">{k}</text>\n",
                y0 + top,
                y0 + top + ph,
                colour(k),
                xx + 3.0,
                y0 + top + 12.0 + 12.0 * j as f64,
                colour(k)
            ));
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The summary figure before the per-handover panels: one row per kind of handover, every
/// run's gap as a dot on a logarithmic time axis (1 ms to 10 s), the median as a bar, and
/// the DSMIPv6 paper's figure for that kind as a red diamond where it has one. Returns the
/// fragment and its height.
fn summary_svg(ms: &[Measured], w: f64) -> (String, f64) {
    let mut kinds: Vec<(String, String, u8)> = Vec::new();
    for m in ms {
        let k = (m.from.clone(), m.to.clone(), m.interfaces);
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let (left, right, row, top) = (190.0f64, 20.0f64, 26.0f64, 46.0f64);
    let height = top + kinds.len() as f64 * row + 50.0;
    let pw = w - left - right;
    // log10 of 1 ms .. 10 000 ms.
    let x = |ms: f64| left + (ms.max(1.0).log10().min(4.0) / 4.0) * pw;
    let mut s = String::from(
        "<text x=\"10\" y=\"22\" font-size=\"14\" font-weight=\"bold\">Summary: the gap of every handover, by kind (dots: runs, bar: median, red diamond: the DSMIPv6 paper)</text>\n",
    );
    for (i, decade) in [1.0, 10.0, 100.0, 1000.0, 10_000.0].iter().enumerate() {
        let xx = x(*decade);
        s.push_str(&format!(
            "<line x1=\"{xx:.1}\" y1=\"{top}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            top + kinds.len() as f64 * row,
            top + kinds.len() as f64 * row + 14.0,
            ["1 ms", "10 ms", "100 ms", "1 s", "10 s"][i]
        ));
    }
    let paper = |from: &str, to: &str, interfaces: u8| -> Option<f64> {
        match (from, to, interfaces) {
            ("ipv6", t, 1) if t.starts_with("ipv4") => Some(2810.0),
            (f, "ipv6", 1) if f.starts_with("ipv4") => Some(6200.0),
            // Figure 5: "tens of ms" in a 30 ms window.
            (_, _, 2) => Some(30.0),
            _ => None,
        }
    };
    for (i, (from, to, interfaces)) in kinds.iter().enumerate() {
        let y = top + i as f64 * row + row / 2.0;
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} -&gt; {} ({} if)</text>\n",
            left - 8.0,
            y + 4.0,
            esc(from),
            esc(to),
            interfaces
        ));
        let gaps: Vec<f64> = ms
            .iter()
            .filter(|m| &m.from == from && &m.to == to && m.interfaces == *interfaces)
            .map(|m| m.gap_ms)
            .collect();
        for g in &gaps {
            s.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"#1f4e9c\" fill-opacity=\"0.6\"/>\n",
                x(*g)
            ));
        }
        if let Some(med) = median(gaps) {
            let xx = x(med);
            s.push_str(&format!(
                "<line x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"black\" stroke-width=\"2\"/>\n",
                y - 8.0,
                y + 8.0
            ));
        }
        if let Some(p) = paper(from, to, *interfaces) {
            let xx = x(p);
            s.push_str(&format!(
                "<path d=\"M {xx:.1} {:.1} l 5 5 l -5 5 l -5 -5 z\" fill=\"#c0392b\"/>\n",
                y - 5.0
            ));
        }
    }
    (s, height)
}

/// The paper's figures (DSMIPv6 on UMIP, 2008), for the table beside ours.
pub fn paper() -> serde_json::Value {
    serde_json::json!([
        {"from": "ipv6", "to": "ipv4", "interfaces": 1, "gap_ms": 2810.0,
         "parts": "link 1718 ms, IPv4 configuration 898 ms, MIP 189 ms (Table 1)"},
        {"from": "ipv4", "to": "ipv6", "interfaces": 1, "gap_ms": 6200.0,
         "parts": "link 1722 ms, IPv6 configuration 3420 ms, MIP 1050 ms"},
        {"from": "any", "to": "any", "interfaces": 2, "gap_ms": "tens of ms (Figure 5, 30 ms window)"}
    ])
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    })
}

/// Per kind of handover (from, to, interfaces): count, packets lost, median and worst gap,
/// median of each part.
pub fn summarise(ms: &[Measured]) -> Vec<serde_json::Value> {
    let mut kinds: Vec<(String, String, u8)> = Vec::new();
    for m in ms {
        let k = (m.from.clone(), m.to.clone(), m.interfaces);
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds
        .into_iter()
        .map(|(from, to, interfaces)| {
            let g: Vec<&Measured> = ms
                .iter()
                .filter(|m| m.from == from && m.to == to && m.interfaces == interfaces)
                .collect();
            let med = |f: &dyn Fn(&Measured) -> Option<f64>| {
                median(g.iter().filter_map(|m| f(m)).collect())
            };
            serde_json::json!({
                "from": from, "to": to, "interfaces": interfaces, "count": g.len(),
                "lost_total": g.iter().map(|m| m.lost).sum::<u64>(),
                "lost_max": g.iter().map(|m| m.lost).max(),
                "gap_ms_median": med(&|m| Some(m.gap_ms)),
                "gap_ms_max": g.iter().map(|m| m.gap_ms).fold(0.0, f64::max),
                "link_to_coa_ms_median": med(&|m| m.link_to_coa_ms),
                "coa_to_bu_ms_median": med(&|m| m.coa_to_bu_ms),
                "bu_to_ba_ms_median": med(&|m| m.bu_to_ba_ms),
                "ba_to_first_packet_ms_median": med(&|m| m.ba_to_first_packet_ms),
            })
        })
        .collect()
}

/// Writes `report.json` and `handovers.svg` into `dir`.
pub fn write_report(
    dir: &Path,
    ms: &[Measured],
    rx: &[Rx],
    extra: serde_json::Value,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let report = serde_json::json!({
        "handovers": ms,
        "summary": summarise(ms),
        "flow": {"packet_octets": 250, "interval_ms": 5, "direction": "MNN -> CN over IPv6 through the tunnel", "received": rx.len()},
        "paper": paper(),
        "not_measured": if ms.iter().any(|m| m.from.starts_with("ipv4") || m.to.starts_with("ipv4")) {
            serde_json::json!([])
        } else {
            serde_json::json!(["handovers to and from the IPv4-only network behind the NAT: run with --nat (they need DSMIPv6, issue 7)"])
        },
        "run": extra,
    });
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
    )?;
    std::fs::write(dir.join("handovers.svg"), svg(ms, rx))?;
    Ok(())
}

/// One line for a handover.
pub fn line(m: &Measured) -> String {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    format!(
        "{} -> {} ({} if): lost {}, gap {:.1} ms (max delay {:.1} ms, sender pause {:.1} ms) [link->CoA {} ms, CoA->BU {} ms, BU->BA {} ms, BA->first packet {} ms]{}",
        m.from,
        m.to,
        m.interfaces,
        m.lost,
        m.gap_ms,
        m.max_delay_ms,
        m.sender_gap_ms,
        f(m.link_to_coa_ms),
        f(m.coa_to_bu_ms),
        f(m.bu_to_ba_ms),
        f(m.ba_to_first_packet_ms),
        if m.registered { "" } else { " NOT REGISTERED" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(from: &str, to: &str, interfaces: u8, gap_ms: f64) -> Measured {
        Measured {
            from: from.into(),
            to: to.into(),
            interfaces,
            gap_ms,
            ..Default::default()
        }
    }

    #[test]
    fn the_summary_has_a_row_per_kind_a_dot_per_run_and_the_papers_marks() {
        let ms = [
            m("ipv6", "ipv6", 1, 20.0),
            m("ipv6", "ipv6", 1, 30.0),
            m("ipv6", "dual", 2, 10.0),
            m("ipv6", "ipv4-nat", 1, 90.0),
        ];
        let (s, h) = summary_svg(&ms, 760.0);
        assert_eq!(s.matches("<circle").count(), 4, "a dot per run");
        assert_eq!(
            s.matches("stroke-width=\"2\"").count(),
            3,
            "a median per kind"
        );
        // The paper has figures for the vertical and the between-family kinds only.
        assert_eq!(s.matches("fill=\"#c0392b\"").count(), 2);
        assert!(s.contains("ipv6 -&gt; dual (2 if)"));
        assert!(h > 46.0 + 3.0 * 26.0);
        // The whole figure puts the summary before the panels.
        let whole = svg(&ms, &[]);
        assert!(whole.find("Summary").unwrap() < whole.find("1: ipv6").unwrap());
    }
}
