//! The lab's link emulator (`nemo-lab link-emu`, issue 16) between two namespaces, the
//! real binary in a third: frames cross it with the profile's delay, a link taken down
//! carries nothing, the profile follows its control file, and SIGTERM prints the counters.
//!
//! ```text
//!   left eth0 2001:db8:e::1 ──── le-a  mid (nemo-lab link-emu)  le-b ──── eth0 2001:db8:e::2 right
//! ```

use std::time::Duration;

use tests::{Daemon, Netns, bin, require_root, veth, wait_until};

/// (received, min RTT ms) of `count` pings from `from` to `to`.
fn ping(from: &Netns, to: &str, count: u32) -> (u32, f64) {
    let out = from.try_exec(
        "ping",
        &["-6", "-c", &count.to_string(), "-i", "0.05", "-W", "1", to],
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let received = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let min = text
        .lines()
        .find(|l| l.starts_with("rtt"))
        .and_then(|l| l.split(" = ").nth(1))
        .and_then(|v| v.split('/').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    (received, min)
}

#[test]
fn frames_cross_with_the_profile_and_the_link_follows_its_control_file() {
    require_root();
    let (left, mid, right) = (Netns::new("le-l"), Netns::new("le-m"), Netns::new("le-r"));
    for ns in [&left, &right] {
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
    }
    veth(&left, "eth0", &mid, "le-a");
    veth(&mid, "le-b", &right, "eth0");
    left.ip(&["addr", "add", "2001:db8:e::1/64", "dev", "eth0", "nodad"]);
    right.ip(&["addr", "add", "2001:db8:e::2/64", "dev", "eth0", "nodad"]);
    // The mid namespace is a wire: no IPv6 of its own on either side.
    mid.sysctl("net.ipv6.conf.all.disable_ipv6", "1");
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("profile");
    std::fs::write(&control, "lte\n").unwrap();
    let log = dir.path().join("link-emu.log");
    let mut cmd = mid.command(&bin("nemo-lab"));
    cmd.args([
        "link-emu",
        "--a",
        "le-a",
        "--b",
        "le-b",
        "--seed",
        "7",
        "--control",
    ])
    .arg(&control);
    let mut emu = Daemon::spawn("link-emu", cmd, &log);
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(5), || text().contains("lte")),
        "{}",
        text()
    );

    // lte: RTT at least twice the 20 ms one-way delay; 1 % loss each way.
    let (received, min) = ping(&left, "2001:db8:e::2", 40);
    assert!(received >= 30, "lte: {received} of 40 received\n{}", text());
    assert!(min >= 40.0, "lte: min RTT {min} ms below twice the delay");

    // Down: nothing crosses.
    std::fs::write(&control, "down\n").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let (received, _) = ping(&left, "2001:db8:e::2", 5);
    assert_eq!(received, 0, "a link down carries nothing\n{}", text());

    // Ideal again: back, fast.
    std::fs::write(&control, "ideal\n").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let (received, min) = ping(&left, "2001:db8:e::2", 10);
    assert_eq!(received, 10, "{}", text());
    assert!(min < 20.0, "ideal: min RTT {min} ms");

    emu.signal("TERM");
    assert_eq!(emu.wait_exit(Duration::from_secs(5)), Some(0), "{}", text());
    let t = text();
    assert!(t.contains("stopped") && t.contains("passed"), "{t}");
    assert!(t.contains("down: "), "counters of the outage: {t}");
}
