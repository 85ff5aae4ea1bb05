//! BU/BA exchanges per second through the real `had` on a veth link (ignored by default:
//! a measurement, not a check).
//!
//! ```sh
//! cargo build --release -p had && \
//!   cargo test --release -p tests --test throughput -- --ignored --nocapture
//! ```
//!
//! The mobile router side is played by `N` mrd cores (one home address, SA and IPv6 + IPv4
//! MNP each, authenticated with RFC 4285 timestamps) on a thread inside the MR's
//! namespace, with mhio's sockets and guard as mrd uses them. Each core, on its BA, moves to
//! the other of two care-of addresses, which sends the next BU at once: `N` exchanges are
//! in flight at any time. One exchange = a BU received, checked, journaled (fdatasync)
//! and acknowledged by had, and the BA received and checked by the core. Printed: exchanges
//! per second and the round-trip percentiles, with had's journal on the ext4 root and on
//! tmpfs (/dev/shm), which shows what the fsync before each BA costs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mipsock::{CareOf, MdCommand, MdHint, MdInfo};
use mrd::{MobilitySa, MrCore, MrCoreConfig, MrEvent, ReceivedSignal};
use proto::seq::SequenceNumber;
use tests::{Daemon, Netns, bin, require_root, veth, wait_until};

const HA: &str = "2001:db8:1::1";
const COAS: [&str; 2] = ["2001:db8:a::5", "2001:db8:a::6"];
const RUN: Duration = Duration::from_secs(5);

fn hoa(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x1000 + i as u16)
}

fn key(i: usize) -> String {
    format!("bench-key-{i:06}-nemo")
}

fn mnp6(i: usize) -> String {
    format!("2001:db8:{:x}::/48", 0x100 + i)
}

fn mnp4(i: usize) -> String {
    format!("10.{}.{}.0/28", i / 16, (i % 16) * 16)
}

/// had's configuration for `n` routers; proxy DAD off (it would hold every first BA for
/// 1 s, and this measures the signalling path).
fn write_had_conf(dir: &Path, journal: &Path, n: usize) -> std::path::PathBuf {
    let mut db = String::new();
    let mut table = String::new();
    for i in 0..n {
        writeln!(db, "{} {} \"{}\"", hoa(i), 1000 + i, key(i)).unwrap();
        writeln!(table, "\t\t{} {} explicit;", hoa(i), mnp6(i)).unwrap();
        writeln!(table, "\t\t{} {} explicit;", hoa(i), mnp4(i)).unwrap();
    }
    std::fs::write(dir.join("auth-database"), db).unwrap();
    let conf = format!(
        "interface eth0 {{\n\thome-agent-address {HA};\n\thome-prefix 2001:db8:1::/64;\n\
         \thomelink-dad 0;\n\
         \tbinding-cache-file {};\n\tauthentication required;\n\tauth-database {};\n\
         \tprefixtable {{\n{table}\t}};\n}};\n",
        journal.display(),
        dir.join("auth-database").display()
    );
    let path = dir.join("had.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

fn core(i: usize) -> MrCore {
    let mut c = MrCoreConfig::new(hoa(i), HA.parse().unwrap());
    c.mnp_v6 = vec![mnp6(i).parse().unwrap()];
    c.mnp_v4 = vec![mnp4(i).parse().unwrap()];
    c.security = Some(MobilitySa {
        spi: 1000 + i as u32,
        key: key(i).into_bytes(),
        nai: None,
        hoa: None,
        replay: Default::default(),
    });
    c.initial_sequence = SequenceNumber(100);
    // The benchmark moves as fast as the HA answers.
    c.max_update_rate = 100_000;
    let mut mr = MrCore::new(c).unwrap();
    mr.set_wall_clock(
        Instant::now(),
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap(),
    );
    mr
}

fn rereg(i: usize, coa: &str) -> MdInfo {
    MdInfo {
        command: MdCommand::Rereg,
        hint: MdHint::Addr,
        hoa: Some(hoa(i)),
        coa: Some(CareOf::V6(coa.parse().unwrap())),
        coa2: None,
        ifindex: 2,
        uplinks: Vec::new(),
    }
}

struct Result {
    exchanges: u64,
    elapsed: Duration,
    rtt_us: Vec<u64>,
}

/// Plays `n` mobile routers from inside `ns` for [`RUN`].
fn play(ns: &Netns, n: usize) -> Result {
    let path = format!("/run/netns/{}", ns.name());
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let _guard = mhio::NftGuard::install("bench-mr").unwrap();
            let mut rx = mhio::Receiver::new(None).unwrap();
            let tx = mhio::RawSender::new(None).unwrap();
            let mut cores: Vec<(MrCore, usize, Instant)> = Vec::new();
            let mut by_hoa = HashMap::new();
            let mut out = Vec::new();
            let start = Instant::now();
            for i in 0..n {
                let mut mr = core(i);
                mr.handle_md_info(start, &rereg(i, COAS[0]));
                while let Some(t) = mr.poll_transmit() {
                    out.push(t.to_packet());
                }
                by_hoa.insert(hoa(i), i);
                cores.push((mr, 0, start));
            }
            let mut res = Result {
                exchanges: 0,
                elapsed: Duration::ZERO,
                rtt_us: Vec::new(),
            };
            // Warm-up: first registrations (proxy ND, new bindings) are not counted.
            let mut counting_from: Option<Instant> = None;
            let mut registered = 0;
            loop {
                for p in out.drain(..) {
                    tx.send_packet(&p).await.unwrap();
                }
                let now = Instant::now();
                if let Some(t0) = counting_from
                    && now - t0 >= RUN
                {
                    res.elapsed = now - t0;
                    break;
                }
                let got = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await;
                let now = Instant::now();
                if let Ok(r) = got {
                    let r = r.unwrap();
                    let Some(&i) = r.packet.rh2_home_address.and_then(|h| by_hoa.get(&h)) else {
                        continue;
                    };
                    let (mr, at, sent_at) = &mut cores[i];
                    mr.handle_packet(now, ReceivedSignal::from_packet(&r.packet));
                    while let Some(ev) = mr.poll_event() {
                        if let MrEvent::BulAdd { .. } = ev {
                            if counting_from.is_some() {
                                res.exchanges += 1;
                                res.rtt_us.push((now - *sent_at).as_micros() as u64);
                            } else {
                                registered += 1;
                                if registered == n {
                                    counting_from = Some(now);
                                }
                            }
                            *at ^= 1;
                            *sent_at = Instant::now();
                            mr.handle_md_info(*sent_at, &rereg(i, COAS[*at]));
                        }
                    }
                }
                for (mr, _, _) in &mut cores {
                    mr.handle_timeout(now);
                    while let Some(t) = mr.poll_transmit() {
                        out.push(t.to_packet());
                    }
                }
            }
            res
        })
    })
    .join()
    .unwrap()
}

fn pct(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize]
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn bu_ba_exchanges_per_second_through_had() {
    require_root();
    let ha = Netns::new("tput-ha");
    let mr = Netns::new("tput-mr");
    veth(&ha, "eth0", &mr, "eth0");
    ha.ip(&["addr", "add", "2001:db8:1::1/64", "dev", "eth0", "nodad"]);
    ha.ip(&["-6", "route", "add", "2001:db8:a::/64", "dev", "eth0"]);
    for c in COAS {
        mr.ip(&["addr", "add", &format!("{c}/64"), "dev", "eth0", "nodad"]);
    }
    mr.ip(&["-6", "route", "add", "2001:db8:1::/64", "dev", "eth0"]);
    assert!(wait_until(Duration::from_secs(10), || mr
        .try_exec("ping", &["-6", "-c", "1", "-W", "1", HA])
        .status
        .success()));

    let dir = tempfile::tempdir().unwrap();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    println!(
        "BU/BA exchanges through had ({} build), {RUN:?} per run:",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!("| journal | MRs in flight | exchanges/s | RTT p50 | RTT p99 |");
    println!("| --- | --- | --- | --- | --- |");
    for (fs, jdir) in [("ext4", dir.path()), ("tmpfs", shm.path())] {
        for n in [1, 16, 64] {
            let journal = jdir.join(format!("had-{n}.journal"));
            let conf = write_had_conf(dir.path(), &journal, n);
            let log = dir.path().join(format!("had-{fs}-{n}.log"));
            let mut cmd = ha.command(&bin("had"));
            cmd.arg("-c")
                .arg(&conf)
                .arg("-b")
                .arg(dir.path())
                .arg("eth0")
                .env("RUST_LOG", "warn,had::shell=error");
            let mut had = Daemon::spawn("had", cmd, &log);
            // Ready when its bus socket is there (logs are off for speed).
            assert!(
                wait_until(Duration::from_secs(20), || {
                    std::fs::read_dir(dir.path())
                        .unwrap()
                        .any(|e| e.unwrap().file_name().to_string_lossy().starts_with("had."))
                }),
                "had did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            let mut r = play(&mr, n);
            had.signal("TERM");
            had.wait_exit(Duration::from_secs(10));
            let rate = r.exchanges as f64 / r.elapsed.as_secs_f64();
            println!(
                "| {fs} | {n} | {rate:.0} | {} µs | {} µs |",
                pct(&mut r.rtt_us, 0.5),
                pct(&mut r.rtt_us, 0.99),
            );
        }
    }
}
