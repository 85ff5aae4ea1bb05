//! Timestamps from the daemons: the MR's bus (`mipsock tap --json`: MD_INFO, BUL_ADD) and
//! mrd's debug log ("binding update sent"), all wall-clock nanoseconds.

use std::path::Path;

/// One event of interest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Wall clock, ns since the UNIX epoch.
    pub t_ns: u64,
    /// `md_info`, `bul_add`, `bul_remove`, `bu_sent`.
    pub kind: String,
    /// The care-of address it is about.
    pub coa: String,
    /// The mobile network prefixes (BUL_ADD).
    pub mnps: Vec<String>,
}

/// Parses an RFC 3339 UTC timestamp (`2026-11-22T22:13:00.356227Z`) into ns since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':');
    let hh: i64 = t.next()?.parse().ok()?;
    let mm: i64 = t.next()?.parse().ok()?;
    let ss: i64 = t.next()?.parse().ok()?;
    let mut frac = frac.to_string();
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    while frac.len() < 9 {
        frac.push('0');
    }
    let ns: i64 = frac.parse().ok()?;
    // Days from civil (H. Hinnant).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs * 1_000_000_000 + ns).ok()
}

/// Events of a `mipsock tap --json` file.
pub fn bus_events(path: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let t_ns = v["header"]["sent_at_ns"]
            .as_u64()
            .or_else(|| v["ts"].as_str().and_then(parse_rfc3339));
        let Some(t_ns) = t_ns else { continue };
        let Some(body) = v["body"].as_object() else {
            continue;
        };
        for (kind, b) in body {
            let coa = b["coa"].as_str().unwrap_or_default().to_string();
            let mut mnps = Vec::new();
            for k in ["mnp_v6", "mnp_v4"] {
                if let Some(a) = b[k].as_array() {
                    mnps.extend(a.iter().filter_map(|x| x.as_str().map(String::from)));
                }
            }
            if kind == "md_info" && b["command"].as_str() != Some("rereg") {
                continue;
            }
            out.push(Event {
                t_ns,
                kind: kind.clone(),
                coa,
                mnps,
            });
        }
    }
    out
}

pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// "binding update sent" lines of mrd's debug log.
pub fn bu_sent(mrd_log: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(mrd_log).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = strip_ansi(line);
        // mrd's core ("Binding Update sent", every BU, `coa=` with IPv4 CoAs mapped) and its
        // shell ("binding update sent"): the first one of a handover counts.
        if !line.to_ascii_lowercase().contains("binding update sent") {
            continue;
        }
        let Some(t_ns) = line.split_whitespace().next().and_then(parse_rfc3339) else {
            continue;
        };
        let coa = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("coa="))
            .unwrap_or_default()
            .to_string();
        out.push(Event {
            t_ns,
            kind: "bu_sent".into(),
            coa,
            mnps: Vec::new(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(1_000_000_000));
        assert_eq!(
            parse_rfc3339("2026-11-22T22:13:00.356227Z"),
            Some(1_795_385_580_356_227_000)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
    }

    #[test]
    fn tap_and_log_lines() {
        let dir = tempfile::tempdir().unwrap();
        let tap = dir.path().join("tap.jsonl");
        std::fs::write(
            &tap,
            r#"{"ts":"2026-11-22T22:13:00.356227Z","header":{"seq":0,"errno":0,"pid":1,"sender":"babymdd","serial":1,"sent_at_ns":1795385580355360641},"body":{"md_info":{"command":"rereg","hint":"addr","hoa":"2001:db8:1::100","coa":"2001:db8:a::5","coa2":null,"ifindex":3}}}
{"ts":"2026-11-22T22:13:00.360158Z","header":{"seq":0,"errno":0,"pid":2,"sender":"mrd","serial":1,"sent_at_ns":1795385580359653540},"body":{"bul_add":{"hoa":"2001:db8:1::100","coa":"2001:db8:a::5","mnp_v6":["2001:db8:100::/48"],"mnp_v4":["192.0.2.16/28"]}}}
"#,
        )
        .unwrap();
        let ev = bus_events(&tap);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].kind, "md_info");
        assert_eq!(ev[1].mnps, vec!["2001:db8:100::/48", "192.0.2.16/28"]);
        let log = dir.path().join("mrd.log");
        std::fs::write(&log, "2026-11-22T22:13:00.358000Z DEBUG mrd::shell::daemon: binding update sent seq=3 kind=Home lifetime_units=150 coa=2001:db8:a::5\n").unwrap();
        let bu = bu_sent(&log);
        assert_eq!(bu[0].coa, "2001:db8:a::5");
        assert_eq!(bu[0].t_ns, 1_795_385_580_358_000_000);
    }
}
