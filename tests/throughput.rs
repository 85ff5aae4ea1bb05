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
//!
//! `fleet_of_100000_with_each_store` does the same with 100,000 bindings already in the
//! cache (restored from the journal, or from etcd with `--etcd`) against an empty cache,
//! and reads had's resident memory with each.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use had::journal::Journal;
use had::record::{JournalRecord, PersistedBinding};
use had::shell::etcd::EtcdStore;
use mipsock::{CareOf, MdCommand, MdHint, MdInfo};
use mrd::{MobilitySa, MrCore, MrCoreConfig, MrEvent, ReceivedSignal};
use proto::seq::SequenceNumber;
use tests::setup::etcd_member;
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
/// 1 s, and this measures the signalling path). `extra` goes into the interface block.
fn write_had_conf(dir: &Path, journal: &Path, n: usize, extra: &str) -> PathBuf {
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
         \thomelink-dad 0;\n{extra}\
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

/// The home agent's and the mobile routers' namespaces, one veth link between them.
fn topology(tag: &str) -> (Netns, Netns) {
    let ha = Netns::new(&format!("{tag}-ha"));
    let mr = Netns::new(&format!("{tag}-mr"));
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
    (ha, mr)
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
    let (ha, mr) = topology("tput");

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
            let conf = write_had_conf(dir.path(), &journal, n, "");
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

// A fleet already in the binding cache (issue 13): the same exchanges with 100,000
// bindings restored at start, from the journal or from etcd.

const ETCD: &str = "http://127.0.0.1:23795";
const ETCD_PEER: &str = "http://127.0.0.1:23805";

fn wall() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

/// The `i`th binding of the preloaded fleet, as had stores it: a home address in the home
/// prefix above the measuring routers' (2001:db8:1::1:0 on), a care-of address, an IPv6
/// prefix, an SA's replay state (an SPI no measuring router uses), an hour to live.
fn fleet_binding(i: u32, expires_unix_ms: u64) -> PersistedBinding {
    let above = |base: Ipv6Addr, i: u128| Ipv6Addr::from(u128::from(base) + i);
    PersistedBinding {
        hoa: above(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 1, 0), i.into()),
        bid: None,
        coa: proto::model::CareOf::V6(above(
            Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, 1),
            i.into(),
        )),
        flags: 0xc400,
        sequence: 7,
        lifetime_secs: 3600,
        expires_unix_ms,
        mnp_v6: vec![
            ipnet::Ipv6Net::new(
                above(
                    Ipv6Addr::new(0x2001, 0xdb8, 0x8000, 0, 0, 0, 0, 0),
                    u128::from(i) << 64,
                ),
                64,
            )
            .unwrap(),
        ],
        mnp_v4: Vec::new(),
        hoa_v4: None,
        spi: Some(0x0100_0000 + i),
        last_timestamp: Some(1),
        nat_detected: false,
        rh2: true,
        flows: Vec::new(),
        bid_pri: 0,
    }
}

fn fleet_bindings(n: u32) -> Vec<PersistedBinding> {
    let expires = wall().as_millis() as u64 + 3_600_000;
    (0..n).map(|i| fleet_binding(i, expires)).collect()
}

/// A journal holding `bindings`, written by had's own code (what had leaves at a stop).
fn write_journal(path: &Path, bindings: &[PersistedBinding]) {
    let (mut j, _) = Journal::open(path, wall()).unwrap();
    j.compact(bindings).unwrap();
}

/// `records` written into etcd under had's keys, as the active home agent writes them;
/// how long that took.
fn etcd_apply(ns: &Netns, records: &[JournalRecord]) -> Duration {
    ns.within(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut store = EtcdStore::connect(&[ETCD.to_owned()], HA.parse().unwrap())
                .await
                .expect("etcd");
            let t = Instant::now();
            for chunk in records.chunks(6400) {
                store.apply(chunk).await.expect("stored in etcd");
            }
            t.elapsed()
        })
    })
}

/// Resident memory of `pid`, kB (VmRSS).
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time `pid` has used, clock ticks (utime + stime, fields 14 and 15 of proc(5)).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(end) = stat.rfind(')') else {
        return 0;
    };
    // Field 3 on.
    let f: Vec<u64> = stat[end + 1..]
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

/// Waits at least 3 s (a restored home address's unsolicited NA is repeated twice, 1 s
/// apart), then until `pid` uses at most one tick of CPU in half a second.
fn wait_quiet(pid: u32) -> Duration {
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    loop {
        let c = cpu_ticks(pid);
        std::thread::sleep(Duration::from_millis(500));
        if cpu_ticks(pid) - c <= 1 || t.elapsed() > Duration::from_secs(120) {
            return t.elapsed();
        }
    }
}

/// had in `ns`, once it has sent READY=1 on `$NOTIFY_SOCKET` (after its cache is restored
/// and its "had ready" line, which the measurement's log filter hides); the time that took.
fn start_had(
    ns: &Netns,
    dir: &Path,
    bus: &Path,
    conf: &Path,
    args: &[&str],
    log: &Path,
) -> (Daemon, Duration) {
    // Not in the bus directory: the bus would count it as an endpoint.
    let notify = dir.join("notify.sock");
    let _ = std::fs::remove_file(&notify);
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(600)))
        .unwrap();
    let mut cmd = ns.command(&bin("had"));
    cmd.arg("-c")
        .arg(conf)
        .arg("-b")
        .arg(bus)
        .args(args)
        .arg("eth0")
        .env("RUST_LOG", "warn,had::shell=error")
        .env("NOTIFY_SOCKET", &notify);
    let t = Instant::now();
    let had = Daemon::spawn("had", cmd, log);
    let mut buf = [0u8; 64];
    let got = sock.recv(&mut buf);
    let log_text = || std::fs::read_to_string(log).unwrap_or_default();
    match got {
        Ok(n) => assert_eq!(&buf[..n], b"READY=1", "{}", log_text()),
        Err(e) => panic!("had not ready ({e}):\n{}", log_text()),
    }
    (had, t.elapsed())
}

/// `mipsock state`'s summary line for had: how many items (bindings) it reports.
fn bus_items(bus: &Path) -> String {
    let out = Command::new(bin("mipsock"))
        .arg("-b")
        .arg(bus)
        .args(["state", "--timeout-ms", "60000", "--expect", "1"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("had["))
        .unwrap_or("no answer from had")
        .to_owned()
}

struct Row {
    store: &'static str,
    cache: u32,
    mrs: usize,
    rate: f64,
    p50: u64,
    p99: u64,
    max: u64,
    started: Duration,
    rss_ready_kb: u64,
}

/// BU/BA exchanges per second and had's memory with a fleet already in the binding cache,
/// for each store, against an empty cache in the same run. `FLEET_N` sets the fleet
/// (default 100,000).
///
/// ```sh
/// cargo build --release --workspace && \
///   cargo test --release -p tests --test throughput fleet -- --ignored --nocapture
/// ```
///
/// The stores: had's journal on the ext4 root, on tmpfs (/dev/shm), and the journal on ext4
/// plus a single-member etcd (Debian's etcd-server, data on ext4) started in the home
/// agent's namespace. The fleet is preloaded before had starts: a journal written with
/// had's `Journal`, or the records put into etcd with `EtcdStore::apply`, as the active
/// home agent writes them. had restores it at start (from etcd when it has `--etcd`);
/// READY=1 on `$NOTIFY_SOCKET` says it has, then the test waits until had is idle (the
/// unsolicited NAs for the restored home addresses, announced twice more 1 s apart) before
/// the routers play. Resident memory (VmRSS) is read at that point. After each run had is
/// asked for its state on the bus: the fleet plus the measuring routers.
#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn fleet_of_100000_with_each_store() {
    require_root();
    let fleet: u32 = std::env::var("FLEET_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let (ha, mr) = topology("fleet");
    let dir = tempfile::tempdir().unwrap();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let bus = dir.path().join("bus");
    std::fs::create_dir(&bus).unwrap();
    let (etcd, _) = etcd_member(
        &ha,
        dir.path(),
        "etcd",
        ETCD,
        ETCD_PEER,
        &format!("etcd={ETCD_PEER}"),
        true,
    );
    let preloaded = fleet_bindings(fleet);
    // The sample's 100,000 would refuse the measuring routers.
    let extra = format!("\tmax-bindings {};\n", 2 * fleet.max(100_000));
    let stores: [(&'static str, &Path, bool); 3] = [
        ("journal on ext4", dir.path(), false),
        ("journal on tmpfs", shm.path(), false),
        ("journal on ext4 + etcd", dir.path(), true),
    ];
    println!(
        "fleet: {fleet} bindings, {} build, {RUN:?} per run",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let mut rows = Vec::new();
    for (store, jdir, with_etcd) in stores {
        for cache in [0, fleet] {
            if with_etcd && cache > 0 {
                let before = rss_kb(etcd.pid());
                let records: Vec<_> = preloaded
                    .iter()
                    .cloned()
                    .map(JournalRecord::Upsert)
                    .collect();
                let took = etcd_apply(&ha, &records);
                println!(
                    "fleet: {cache} bindings put into etcd in {:.1} s; etcd's resident memory {before} → {} kB",
                    took.as_secs_f64(),
                    rss_kb(etcd.pid())
                );
            }
            for mrs in [1, 16, 64] {
                let tag = format!(
                    "{}-{cache}-{mrs}",
                    if with_etcd { "etcd" } else { "journal" }
                );
                let journal = jdir.join(format!("had-{tag}.journal"));
                if !with_etcd && cache > 0 {
                    write_journal(&journal, &preloaded);
                }
                let conf = write_had_conf(dir.path(), &journal, mrs, &extra);
                let log = dir.path().join(format!("had-{tag}.log"));
                let args: &[&str] = if with_etcd { &["--etcd", ETCD] } else { &[] };
                let (mut had, started) = start_had(&ha, dir.path(), &bus, &conf, args, &log);
                let quiet = wait_quiet(had.pid());
                let rss_ready_kb = rss_kb(had.pid());
                let mut r = play(&mr, mrs);
                let rss_after_kb = rss_kb(had.pid());
                let items = bus_items(&bus);
                had.signal("TERM");
                had.wait_exit(Duration::from_secs(60));
                if with_etcd {
                    // The measuring routers' bindings go: the next run starts from the same
                    // cache.
                    let gone: Vec<_> = (0..mrs)
                        .map(|i| JournalRecord::Remove {
                            hoa: hoa(i),
                            bid: None,
                        })
                        .collect();
                    etcd_apply(&ha, &gone);
                }
                let row = Row {
                    store,
                    cache,
                    mrs,
                    rate: r.exchanges as f64 / r.elapsed.as_secs_f64(),
                    p50: pct(&mut r.rtt_us, 0.5),
                    p99: pct(&mut r.rtt_us, 0.99),
                    max: pct(&mut r.rtt_us, 1.0),
                    started,
                    rss_ready_kb,
                };
                println!(
                    "fleet: {store}, {cache} bindings, {mrs} MRs: {:.0}/s, RTT p50 {} µs, p99 {} µs, max {} µs; \
                     ready {:.2} s after start, idle {:.1} s later; VmRSS {rss_ready_kb} kB idle, \
                     {rss_after_kb} kB after the run; bus: {items}; warnings logged: {}",
                    row.rate,
                    row.p50,
                    row.p99,
                    row.max,
                    started.as_secs_f64(),
                    quiet.as_secs_f64(),
                    std::fs::read_to_string(&log)
                        .unwrap_or_default()
                        .lines()
                        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                        .count()
                );
                rows.push(row);
            }
        }
    }

    let find = |store: &str, cache: u32, mrs: usize| {
        rows.iter()
            .find(|r| r.store == store && r.cache == cache && r.mrs == mrs)
            .unwrap()
    };
    println!();
    println!(
        "| store | MRs in flight | empty cache: exchanges/s | {fleet} bindings: exchanges/s | ratio | RTT p50 empty → {fleet} | p99 | max |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (store, _, _) in stores {
        for mrs in [1, 16, 64] {
            let (e, f) = (find(store, 0, mrs), find(store, fleet, mrs));
            println!(
                "| {store} | {mrs} | {:.0} | {:.0} | {:.2} | {} → {} µs | {} → {} µs | {} → {} µs |",
                e.rate,
                f.rate,
                f.rate / e.rate,
                e.p50,
                f.p50,
                e.p99,
                f.p99,
                e.max,
                f.max
            );
        }
    }
    println!();
    println!(
        "| store | had ready after (empty → {fleet}) | VmRSS idle, empty cache | with {fleet} bindings | bytes per binding |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for (store, _, _) in stores {
        let (e, f) = (find(store, 0, 1), find(store, fleet, 1));
        println!(
            "| {store} | {:.2} → {:.2} s | {} kB | {} kB | {:.0} |",
            e.started.as_secs_f64(),
            f.started.as_secs_f64(),
            e.rss_ready_kb,
            f.rss_ready_kb,
            f.rss_ready_kb.saturating_sub(e.rss_ready_kb) as f64 * 1024.0 / f64::from(fleet)
        );
    }
}

// The bus of a busy home agent (issue 13: fan-out at 100,000 msg/s to four readers, p99
// under 1 ms): four readers on had's bus while routers keep it busy.

/// What one reader of had's bus saw: every message from had, its latency (receive time
/// minus the send time in its header) and the serials it missed.
struct BusReader {
    received: u64,
    missed: u64,
    latencies_us: Vec<u64>,
    first: Option<Instant>,
    last: Option<Instant>,
}

fn spawn_bus_reader(
    bus: &Path,
    i: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<BusReader> {
    let ep = mipsock::Endpoint::open(bus, &format!("reader{i}"), Default::default()).unwrap();
    std::thread::spawn(move || {
        let mut r = BusReader {
            received: 0,
            missed: 0,
            latencies_us: Vec::new(),
            first: None,
            last: None,
        };
        let mut last_serial = None;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok(Some(m)) = ep.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            if m.header.sender != "had" {
                continue;
            }
            let now = Instant::now();
            let sent = Duration::from_nanos(m.header.sent_at_ns);
            r.latencies_us
                .push(wall().saturating_sub(sent).as_micros() as u64);
            if let Some(l) = last_serial {
                r.missed += m.header.serial.saturating_sub(l + 1);
            }
            last_serial = Some(m.header.serial);
            r.received += 1;
            r.first.get_or_insert(now);
            r.last = Some(now);
        }
        r
    })
}

/// BU/BA exchanges through had with its journal on tmpfs and 64 routers in flight, first
/// with no reader on its bus, then with four (as `mipsock monitor`, nemonetd, babymdd and
/// an operator's tool would be): the exchanges per second each way, and what each reader
/// received (messages per second, serials missed, latency p50 / p99 / max). had announces
/// each step's binding changes in one datagram (`send_batch`), so its readers wake once a
/// step, not once a message.
///
/// ```sh
/// cargo build --release --workspace && \
///   cargo test --release -p tests --test throughput bus_readers -- --ignored --nocapture
/// ```
#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn bus_readers_of_a_busy_had() {
    require_root();
    let (ha, mr) = topology("tbus");
    let dir = tempfile::tempdir().unwrap();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let n = 64;
    println!("| readers | exchanges/s | per reader: messages/s, missed, p50 / p99 / max |");
    println!("| --- | --- | --- |");
    for readers in [0, 4] {
        let journal = shm.path().join(format!("had-{readers}.journal"));
        let conf = write_had_conf(dir.path(), &journal, n, "");
        let log = dir.path().join(format!("had-{readers}.log"));
        let bus = dir.path().join(format!("bus-{readers}"));
        std::fs::create_dir(&bus).unwrap();
        let mut cmd = ha.command(&bin("had"));
        cmd.arg("-c")
            .arg(&conf)
            .arg("-b")
            .arg(&bus)
            .arg("eth0")
            .env("RUST_LOG", "warn,had::shell=error");
        let mut had = Daemon::spawn("had", cmd, &log);
        assert!(
            wait_until(Duration::from_secs(20), || {
                std::fs::read_dir(&bus)
                    .unwrap()
                    .any(|e| e.unwrap().file_name().to_string_lossy().starts_with("had."))
            }),
            "had did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handles: Vec<_> = (0..readers)
            .map(|i| spawn_bus_reader(&bus, i, stop.clone()))
            .collect();
        let r = play(&mr, n);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        had.signal("TERM");
        had.wait_exit(Duration::from_secs(10));
        let rate = r.exchanges as f64 / r.elapsed.as_secs_f64();
        let mut cells = Vec::new();
        for h in handles {
            let mut b = h.join().unwrap();
            let span = match (b.first, b.last) {
                (Some(f), Some(l)) if l > f => (l - f).as_secs_f64(),
                _ => f64::NAN,
            };
            let (p50, p99) = (
                pct(&mut b.latencies_us, 0.5),
                pct(&mut b.latencies_us, 0.99),
            );
            let max = b.latencies_us.last().copied().unwrap_or(0);
            cells.push(format!(
                "{:.0}, {}, {p50} / {p99} / {max} µs",
                b.received as f64 / span,
                b.missed
            ));
        }
        println!("| {readers} | {rate:.0} | {} |", cells.join("; "));
    }
    drop(ha);
}
