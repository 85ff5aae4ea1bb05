//! The bus with real processes: the `mipsock` binary as taps and injectors, plus
//! in-test endpoints where a daemon is needed (a state owner, a raw garbage writer).

mod common;

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Proc, bus, run, stdout_of};
use mipsock::{
    Binding, Body, BuFlags, CareOf, Encapsulation, Endpoint, EndpointOptions, StateItem,
};
use nix::sys::signal::Signal;

const MD_INFO: &[&str] = &[
    "inject",
    "md-info",
    "--command",
    "rereg",
    "--hoa",
    "2001:db8:1::100",
    "--coa",
    "2001:db8:a::5",
    "--ifindex",
    "3",
];

#[test]
fn broadcast_reaches_every_tap() {
    let bus = bus();
    let taps: Vec<_> = (0..3).map(|_| Proc::tap(bus.path(), &[]).0).collect();
    let (json_tap, _) = Proc::tap(bus.path(), &["--json"]);
    let (bul_only, _) = Proc::tap(bus.path(), &["--type", "bul_add"]);

    stdout_of(&run(bus.path(), MD_INFO, None));
    stdout_of(&run(
        bus.path(),
        &[
            "inject",
            "bul-add",
            "--hoa",
            "2001:db8:1::100",
            "--coa",
            "192.0.2.5:4191",
            "--ha",
            "2001:db8:1::1",
            "--mnp",
            "2001:db8:100::/48",
            "--mnp",
            "198.51.100.0/24",
            "--lifetime",
            "400",
        ],
        None,
    ));

    for tap in &taps {
        let line = tap.expect_stdout(|l| l.contains(" md_info "));
        assert!(
            line.contains("coa=2001:db8:a::5") && line.contains("ifindex=3"),
            "{line}"
        );
        assert!(line.contains("from=inject["), "{line}");
        let line = tap.expect_stdout(|l| l.contains(" bul_add "));
        assert!(line.contains("mnp_v4=[198.51.100.0/24]"), "{line}");
    }
    // The JSON tap's lines parse back into messages (and replay through inject --json).
    let line = json_tap.expect_stdout(|l| l.contains("md_info"));
    let msg: mipsock::Message = serde_json::from_str(&line).expect("tap --json line is a Message");
    assert!(matches!(msg.body, Body::MdInfo(_)));
    stdout_of(&run(bus.path(), &["inject", "--json"], Some(&line)));
    taps[0].expect_stdout(|l| l.contains(" md_info "));
    // The filtered tap skipped md_info: its first line is the bul_add.
    let first = bul_only
        .stdout
        .recv_timeout(common::PATIENCE)
        .expect("a line");
    assert!(first.contains(" bul_add "), "{first}");
}

/// An owner answering state requests the way had will: from its binding cache.
struct Owner {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Owner {
    fn start(ep: Endpoint, items: Vec<StateItem>) -> Owner {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let msg = ep.recv_timeout(Duration::from_millis(50)).expect("recv");
                if let Some(msg) = msg.filter(|m| m.body == Body::StateRequest) {
                    ep.reply_state(&msg, items.clone(), 0).expect("reply_state");
                }
            }
        });
        Owner {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bce() -> Binding {
    Binding {
        hoa: "2001:db8:1::100".parse().unwrap(),
        hoa_v4: Some("192.0.2.100".parse().unwrap()),
        coa: CareOf::V6("2001:db8:a::5".parse().unwrap()),
        ha: "2001:db8:1::1".parse().unwrap(),
        ha_v4: None,
        mnp_v6: vec!["2001:db8:100::/48".parse().unwrap()],
        mnp_v4: vec!["198.51.100.0/24".parse().unwrap()],
        encapsulation: Encapsulation::InIpv6,
        lifetime: 400,
        binding_id: None,
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        nat_detected: false,
        coa_ifindex: None,
        flows: Vec::new(),
        bid_priority: 0,
    }
}

#[test]
fn restarted_endpoint_gets_new_messages_and_resyncs_by_state_dump() {
    let bus = bus();
    // No owner yet: state says so and exits 0.
    let out = stdout_of(&run(bus.path(), &["state", "--timeout-ms", "200"], None));
    assert_eq!(out.trim(), "no answer");

    let (mut tap, sock) = Proc::tap(bus.path(), &[]);
    stdout_of(&run(bus.path(), MD_INFO, None));
    tap.expect_stdout(|l| l.contains(" md_info "));

    // Crash: SIGKILL leaves the socket file behind.
    tap.signal(Signal::SIGKILL);
    tap.wait();
    assert!(sock.exists(), "a crashed endpoint leaves its socket");

    // The next sender finds the dead socket (connection refused) and removes it.
    let out = run(bus.path(), &["inject", "--stats", "bc-flush"], None);
    stdout_of(&out);
    assert!(
        !sock.exists(),
        "stale socket {} not removed",
        sock.display()
    );
    let stats = String::from_utf8_lossy(&out.stderr);
    assert!(stats.contains("stale_removed=1"), "{stats}");

    // The tap restarts and gets new messages.
    let (tap2, sock2) = Proc::tap(bus.path(), &[]);
    assert_ne!(sock, sock2);
    stdout_of(&run(bus.path(), &["inject", "bul-flush"], None));
    let line = tap2.expect_stdout(|l| l.contains(" bul_flush "));
    assert!(line.contains("from=inject["), "{line}");

    // A restarted daemon rebuilds its view from the owners: `mipsock state` shows what
    // the owner holds.
    let owner = Endpoint::open(bus.path(), "had", EndpointOptions::default()).unwrap();
    let _owner = Owner::start(owner, vec![StateItem::Bc(bce())]);
    let out = stdout_of(&run(
        bus.path(),
        &["state", "--expect", "1", "--timeout-ms", "30000"],
        None,
    ));
    let mut lines = out.lines();
    let head = lines.next().unwrap();
    assert!(
        head.starts_with("had[") && head.ends_with("]: 1 item(s)"),
        "{out}"
    );
    let item = lines.next().unwrap();
    assert!(
        item.contains("bc hoa=2001:db8:1::100") && item.contains("coa=2001:db8:a::5"),
        "{out}"
    );
    assert!(
        item.contains("mnp_v4=[198.51.100.0/24]") && item.contains("flags=A|H|R"),
        "{out}"
    );
    // The tap saw the request and the answer go by. In either order: a send visits peers
    // one by one, so the owner's reply may reach the tap before the request itself did.
    let (mut request, mut end) = (false, false);
    while !(request && end) {
        let l = tap2.expect_stdout(|l| l.contains(" state_request ") || l.contains(" state_end "));
        request |= l.contains(" state_request ");
        end |= l.contains(" state_end ") && l.contains("from=had[");
    }
}

#[test]
fn stalled_reader_does_not_block_the_writer() {
    let bus = bus();
    let (stalled, stalled_sock) = Proc::tap(bus.path(), &[]);
    let (live, _) = Proc::tap(bus.path(), &[]);
    // A stopped process never reads: its connection fills up.
    stalled.signal(Signal::SIGSTOP);

    let mut args = MD_INFO.to_vec();
    args.extend_from_slice(&["--count", "50000", "--stats"]);
    // Completes although one reader never reads (`run` would kill a hung writer).
    let out = run(bus.path(), &args, None);
    stdout_of(&out);
    let stats = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stats.contains("sent=50000"), "{stats}");
    let name = stalled_sock.file_name().unwrap().to_str().unwrap();
    let dropped: u64 = stats
        .split(&format!("peer={name} "))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|d| d.strip_prefix("dropped="))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no drop count for {name} in {stats}"));
    assert!(dropped > 0, "{stats}");

    // The live reader received messages, and still receives after the burst.
    live.expect_stdout(|l| l.contains(" md_info "));
    stdout_of(&run(
        bus.path(),
        &["inject", "--seq", "777777", "bul-flush"],
        None,
    ));
    live.expect_stdout(|l| l.contains(" bul_flush seq=777777 "));

    // The stalled reader wakes up, drains what fit in its queue, and gets new messages.
    stalled.signal(Signal::SIGCONT);
    stalled.expect_stdout(|l| l.contains(" md_info "));
    stdout_of(&run(
        bus.path(),
        &["inject", "--seq", "888888", "bul-flush"],
        None,
    ));
    stalled.expect_stdout(|l| l.contains(" bul_flush seq=888888 "));
}

#[test]
fn garbage_does_not_break_the_bus() {
    let bus = bus();
    let (tap, sock) = Proc::tap(bus.path(), &[]);

    // Garbage through the bus, from another process.
    stdout_of(&run(
        bus.path(),
        &["inject", "--raw-hex", "00112233445566778899aabbccddeeff"],
        None,
    ));
    // Garbage written straight into the tap's socket.
    let fd = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        nix::sys::socket::SockFlag::empty(),
        None,
    )
    .unwrap();
    nix::sys::socket::connect(
        fd.as_raw_fd(),
        &nix::sys::socket::UnixAddr::new(&sock).unwrap(),
    )
    .unwrap();
    nix::sys::socket::send(
        fd.as_raw_fd(),
        b"MIPS\x02\x02\0\0\xff\xff\xff\xff",
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    // A well-formed frame of a type from the future: skipped as unknown.
    let mut future = b"MIPS\x02\xc8\0\0\0\0\0\x03".to_vec();
    future.extend_from_slice(&[1, 2, 3]);
    nix::sys::socket::send(fd.as_raw_fd(), &future, nix::sys::socket::MsgFlags::empty()).unwrap();
    // A BcFlush from the bincode mipsock (version 1): skipped as unknown, with the reason.
    nix::sys::socket::send(
        fd.as_raw_fd(),
        b"MIPS\x01\x05\0\0\0\0\0\x0b\0\0\xfb\x92\x10\x03mrd\x01\0",
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    drop(fd);
    let old = tap.expect_stdout(|l| l.contains("format version 1"));
    assert!(
        old.contains("skipped unknown:")
            && old.contains("older mipsock")
            && old.contains("upgrade both ends"),
        "{old}"
    );

    stdout_of(&run(bus.path(), MD_INFO, None));
    let line = tap.expect_stdout(|l| l.contains(" md_info "));
    assert!(line.contains("coa=2001:db8:a::5"), "{line}");

    // Stop the tap: its counters show two garbage frames and two unknown.
    tap.signal(Signal::SIGTERM);
    let stats = tap.expect_stderr(|l| l.starts_with("stats "));
    assert!(stats.contains("received=1 garbage=2 unknown=2"), "{stats}");
}

#[test]
fn bad_json_names_line_column_and_field() {
    let bus = bus();
    let out = run(
        bus.path(),
        &["inject", "--json"],
        Some("{\"body\": {\"md_info\": {\n  \"command\": \"rereg\", \"cao\": \"2001:db8::1\"}}}"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown field `cao`") && err.contains("line 2"),
        "{err}"
    );
}
