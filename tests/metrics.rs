//! Metrics (issue 16), black-box: the real had, `nemonetd -h` and mrd started with
//! `--metrics`; the test scrapes the listeners inside their namespaces over HTTP, as
//! Prometheus would, and checks the OpenMetrics text says what happened: one binding in
//! the cache and in the data plane, a BU accepted, the router registered and how long it
//! took, drops by reason, and the `# EOF` terminator.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tests::setup::HomeLink;
use tests::{require_root, wait_until};

const COA: &str = "2001:db8:a::5";
const HAD_METRICS: &str = "[::1]:9461";
const NEMONETD_METRICS: &str = "[::1]:9463";
const MRD_METRICS: &str = "[::1]:9462";

/// `GET /metrics` from inside the home agent's namespace; the whole response.
fn scrape(l: &HomeLink, addr: &'static str) -> String {
    scrape_in(&l.ha, addr)
}

/// `GET /metrics` from inside `ns`.
fn scrape_in(ns: &tests::Netns, addr: &'static str) -> String {
    ns.within(move || {
        let Ok(mut s) = TcpStream::connect(addr) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
}

/// The value of an exposition line that starts with `series ` (name and labels).
fn value(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn had_and_nemonetd_expose_their_counters() {
    require_root();
    let l = HomeLink::with(
        "met",
        "2001:db8:1::50/64",
        &["--metrics", HAD_METRICS],
        &["--metrics", NEMONETD_METRICS],
        &["--metrics", MRD_METRICS],
    );
    let before = scrape(&l, HAD_METRICS);
    assert!(
        before.starts_with("HTTP/1.1 200 OK"),
        "{before}\n{}",
        l.logs()
    );
    assert!(
        before.contains("application/openmetrics-text"),
        "content type: {before}"
    );
    assert_eq!(value(&before, "had_bindings"), Some(0), "{before}");

    l.rereg(COA);
    assert!(
        wait_until(Duration::from_secs(30), || l.routed()),
        "no registration\n{}",
        l.logs()
    );
    // The listeners publish their snapshot after each step / every second.
    let mut had = String::new();
    let ok = wait_until(Duration::from_secs(5), || {
        had = scrape(&l, HAD_METRICS);
        value(&had, "had_bindings") == Some(1)
    });
    assert!(ok, "had_bindings after the registration: {had}");
    assert!(
        value(&had, "had_bu_accepted_total").unwrap_or(0) >= 1,
        "{had}"
    );
    assert_eq!(value(&had, "had_bu_auth_failed_total"), Some(0), "{had}");
    assert!(had.contains("# HELP had_bu_auth_failed "), "{had}");
    assert!(had.trim_end().ends_with("# EOF"), "{had}");

    let mut dp = String::new();
    let ok = wait_until(Duration::from_secs(5), || {
        dp = scrape(&l, NEMONETD_METRICS);
        value(&dp, "nemonetd_bindings") == Some(1)
    });
    assert!(ok, "nemonetd_bindings: {dp}\n{}", l.logs());
    // Which of them the kernel data plane carries (issue 12).
    assert!(
        value(&dp, "nemonetd_kernel_bindings").is_some_and(|n| n <= 1),
        "nemonetd_kernel_bindings: {dp}"
    );
    assert!(
        dp.contains("nemonetd_dropped_packets_total{reason=\"spoofed_inner\"} "),
        "drops by reason: {dp}"
    );
    // Per binding: labelled by home address (and binding identifier).
    for series in [
        "nemonetd_binding_tx_packets_total",
        "nemonetd_binding_rx_packets_total",
        "nemonetd_binding_tx_octets_total",
        "nemonetd_binding_rx_octets_total",
    ] {
        assert!(
            dp.contains(&format!("{series}{{hoa=\"2001:db8:1::100\",bid=\"\"}} ")),
            "{series}: {dp}"
        );
    }
    // The router's side: registered, one registration, its duration measured.
    let mut mr = String::new();
    let ok = wait_until(Duration::from_secs(5), || {
        mr = scrape_in(&l.mr, MRD_METRICS);
        value(&mr, "mrd_registered{state=\"registered\"}") == Some(1)
    });
    assert!(ok, "mrd_registered: {mr}\n{}", l.logs());
    assert!(
        value(&mr, "mrd_registrations_total").unwrap_or(0) >= 1,
        "{mr}"
    );
    assert!(value(&mr, "mrd_bu_sent_total").unwrap_or(0) >= 1, "{mr}");
    assert!(
        value(&mr, "mrd_last_registration_microseconds").unwrap_or(0) > 0,
        "{mr}"
    );
    // Anything but GET /metrics is refused.
    let nf = l.ha.within(|| {
        let mut s = TcpStream::connect(HAD_METRICS).unwrap();
        s.write_all(b"GET /admin HTTP/1.1\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    });
    assert!(nf.starts_with("HTTP/1.1 404"), "{nf}");
}
