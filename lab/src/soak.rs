//! `nemo-lab soak`: many handovers in a row (the MR's eth0 between the IPv6-only
//! networks A and A2), sampling every daemon's open file descriptors and resident memory;
//! `report.json` holds the samples and their least-squares slopes per 1,000 handovers.
//! Flat is the goal: anything that grows with handovers is a leak.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::demo::{Say, Summary, setup};
use crate::handover;
use crate::net::{Result, err, now_ns, sleep};
use crate::topo::{Access, Options};

/// The daemons sampled: (node, daemon).
const DAEMONS: [(&str, &str); 5] = [
    ("mr", "nemonetd"),
    ("mr", "mrd"),
    ("mr", "babymdd"),
    ("ha", "nemonetd"),
    ("ha", "had"),
];

/// One daemon's samples and trend.
#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    /// `mr` or `ha`.
    pub node: String,
    /// The daemon.
    pub daemon: String,
    /// (handovers done, open fds, resident KiB).
    pub samples: Vec<(u32, u64, u64)>,
    /// Least-squares slope of the open fds, per 1,000 handovers.
    pub fds_per_1000: f64,
    /// Least-squares slope of the resident memory, KiB per 1,000 handovers.
    pub rss_kib_per_1000: f64,
}

/// (open fds, resident KiB) of a process.
fn sample(pid: i32) -> Option<(u64, u64)> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((fds, rss))
}

/// Least-squares slope of `y` over `x`, times 1,000.
pub fn slope_per_1000(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx * 1000.0 }
}

/// Runs `handovers` handovers, sampling every `every`; writes `report.json` into `out`.
pub fn soak(opts: Options, out: &Path, handovers: u32, every: u32) -> Result<Vec<Trend>> {
    let mut say = Say {
        step: 0,
        quiet: false,
    };
    let mut summary = Summary::default();
    let mut lab = setup(opts, &mut say, &mut summary)?;
    let pids: Vec<i32> = DAEMONS
        .iter()
        .map(|(node, d)| lab.daemon_pid(node, d).unwrap_or(-1))
        .collect();
    let mut trends: Vec<Trend> = DAEMONS
        .iter()
        .map(|(node, d)| Trend {
            node: (*node).into(),
            daemon: (*d).into(),
            samples: Vec::new(),
            fds_per_1000: 0.0,
            rss_kib_per_1000: 0.0,
        })
        .collect();
    let take = |done: u32, trends: &mut Vec<Trend>| {
        for (t, pid) in trends.iter_mut().zip(&pids) {
            if let Some((fds, rss)) = sample(*pid) {
                t.samples.push((done, fds, rss));
            }
        }
    };
    say.step(&format!(
        "{handovers} handovers of eth0 between A and A2, sampling fds and memory every {every}."
    ));
    take(0, &mut trends);
    let mut unregistered = 0u32;
    for i in 1..=handovers {
        let to = if i % 2 == 1 { Access::V6b } else { Access::V6 };
        let h = handover::single(&mut lab, to)?;
        if !h.registered {
            unregistered += 1;
        }
        // Long enough for the refresh traffic of a move to settle.
        sleep(Duration::from_millis(100))?;
        if i % every == 0 || i == handovers {
            take(i, &mut trends);
            say.info(&format!(
                "{i} handovers, {unregistered} without a registration"
            ));
        }
    }
    for t in &mut trends {
        let fds: Vec<(f64, f64)> = t
            .samples
            .iter()
            .map(|s| (f64::from(s.0), s.1 as f64))
            .collect();
        let rss: Vec<(f64, f64)> = t
            .samples
            .iter()
            .map(|s| (f64::from(s.0), s.2 as f64))
            .collect();
        t.fds_per_1000 = slope_per_1000(&fds);
        t.rss_kib_per_1000 = slope_per_1000(&rss);
        say.info(&line(t));
    }
    std::fs::create_dir_all(out)?;
    let report = serde_json::json!({
        "handovers": handovers,
        "without_registration": unregistered,
        "daemons": trends,
        "goal": "flat: no growth of fds or memory with handovers",
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
    Ok(trends)
}

/// One daemon's trend in words.
pub fn line(t: &Trend) -> String {
    let first = t.samples.first().copied().unwrap_or_default();
    let last = t.samples.last().copied().unwrap_or_default();
    format!(
        "{:>3} {:<9} fds {} -> {} ({:+.2}/1000 handovers), RSS {} -> {} KiB ({:+.0} KiB/1000)",
        t.node, t.daemon, first.1, last.1, t.fds_per_1000, first.2, last.2, t.rss_kib_per_1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slopes() {
        assert_eq!(
            slope_per_1000(&[(0.0, 5.0), (100.0, 5.0), (200.0, 5.0)]),
            0.0
        );
        let s = slope_per_1000(&[(0.0, 10.0), (500.0, 15.0), (1000.0, 20.0)]);
        assert!((s - 10.0).abs() < 1e-9, "{s}");
        assert_eq!(slope_per_1000(&[(3.0, 1.0)]), 0.0);
    }
}
