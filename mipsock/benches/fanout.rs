//! Fan-out from one writer to four readers (reader threads), over a real bus directory.
//!
//! Two parts:
//! * a custom measurement loop, printed as plain lines for the README: 200k messages
//!   written as fast as possible (throughput, drops), then 200k paced at 100k msg/s
//!   (latency p50/p99 at the goal rate), then 50k at 10k msg/s (latency off saturation). Latency = receive time minus the send timestamp
//!   the endpoint puts in every header (`sent_at_ns`).
//! * criterion benchmarks of one fan-out send (writer-side cost with four live readers)
//!   and of frame encode/decode.
//!
//! Nothing here asserts a timing.

use std::hint::black_box;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group};
use mipsock::{Body, CareOf, Endpoint, EndpointOptions, MdCommand, MdHint, MdInfo, Message, frame};

const READERS: usize = 4;
const MESSAGES: u64 = 200_000;
/// Readers stop after this long without a message (the run is over).
const IDLE: Duration = Duration::from_millis(500);

fn md_info(i: u64) -> Message {
    Message::new(Body::MdInfo(MdInfo {
        command: MdCommand::Rereg,
        hint: MdHint::Addr,
        hoa: Some(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100)),
        coa: Some(CareOf::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 5))),
        coa2: None,
        ifindex: 3,
        uplinks: Vec::new(),
    }))
    .with_seq(i as u32)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

struct ReaderResult {
    received: u64,
    latencies_ns: Vec<u64>,
    last_at: Option<Instant>,
}

fn spawn_reader(ep: Endpoint) -> JoinHandle<ReaderResult> {
    std::thread::spawn(move || {
        let mut r = ReaderResult {
            received: 0,
            latencies_ns: Vec::with_capacity(MESSAGES as usize),
            last_at: None,
        };
        // The first message may take a while (the writer starts after us).
        let mut wait = Duration::from_secs(10);
        while let Ok(Some(m)) = ep.recv_timeout(wait) {
            r.latencies_ns
                .push(now_ns().saturating_sub(m.header.sent_at_ns));
            r.received += 1;
            r.last_at = Some(Instant::now());
            wait = IDLE;
        }
        r
    })
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// One run: `pace` = None writes as fast as possible, Some(rate) paces the writer;
/// `batch` messages go per [`Endpoint::send_batch`] (1: one `send` each), as a busy home
/// agent announces the binding changes of one step of its loop together.
fn run(label: &str, count: u64, pace: Option<f64>, batch: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let readers: Vec<_> = (0..READERS)
        .map(|i| {
            Endpoint::open(
                dir.path(),
                &format!("reader{i}"),
                EndpointOptions::default(),
            )
            .unwrap()
        })
        .map(spawn_reader)
        .collect();
    let writer = Endpoint::open(dir.path(), "writer", EndpointOptions::default()).unwrap();
    let msgs: Vec<Message> = (0..count).map(md_info).collect();
    let start = Instant::now();
    for (k, group) in msgs.chunks(batch).enumerate() {
        if let Some(rate) = pace {
            // Sleep (not spin) when ahead, like a daemon between events: a spinning writer
            // would take a whole core of this 2-core machine away from the readers.
            let due = start + Duration::from_secs_f64((k * batch) as f64 / rate);
            let now = Instant::now();
            if due > now + Duration::from_micros(200) {
                std::thread::sleep(due - now);
            }
        }
        if batch == 1 {
            writer.send(&group[0]).unwrap();
        } else {
            writer.send_batch(group).unwrap();
        }
    }
    let write_time = start.elapsed();
    let results: Vec<ReaderResult> = readers.into_iter().map(|h| h.join().unwrap()).collect();
    let end = results
        .iter()
        .filter_map(|r| r.last_at)
        .max()
        .unwrap_or(start);
    let elapsed = end.duration_since(start).as_secs_f64();
    let received: u64 = results.iter().map(|r| r.received).sum();
    let mut lat: Vec<u64> = results.into_iter().flat_map(|r| r.latencies_ns).collect();
    lat.sort_unstable();
    let stats = writer.stats();
    println!(
        "fanout {label}: {count} msgs x {READERS} readers; written at {:.0} msgs/s; \
         delivered {:.0} msgs/s per reader ({:.0} receives/s total); received {}/{} ({} dropped); \
         latency p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        count as f64 / write_time.as_secs_f64(),
        received as f64 / READERS as f64 / elapsed,
        received as f64 / elapsed,
        received,
        count * READERS as u64,
        stats.dropped,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
    );
}

fn custom_runs() {
    run("max rate", MESSAGES, None, 1);
    run("paced 100k/s", MESSAGES, Some(100_000.0), 1);
    // A busy home agent announces a step's binding changes in one batch.
    run("paced 100k/s, batches of 16", MESSAGES, Some(100_000.0), 16);
    run("paced 100k/s, batches of 4", MESSAGES, Some(100_000.0), 4);
    // A control-plane rate closer to real signalling load, for the unloaded latency.
    run("paced 10k/s", MESSAGES / 4, Some(10_000.0), 1);
}

fn bench_send(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let stop = Arc::new(AtomicBool::new(false));
    let drains: Vec<_> = (0..READERS)
        .map(|i| {
            let ep = Endpoint::open(dir.path(), &format!("drain{i}"), EndpointOptions::default())
                .unwrap();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = ep.recv_timeout(Duration::from_millis(50));
                }
            })
        })
        .collect();
    let writer = Endpoint::open(dir.path(), "writer", EndpointOptions::default()).unwrap();
    let msg = md_info(1);
    c.bench_function("fanout send to 4 readers", |b| {
        b.iter(|| writer.send(black_box(&msg)).unwrap())
    });
    stop.store(true, Ordering::Relaxed);
    for d in drains {
        d.join().unwrap();
    }

    let mut framed = md_info(7);
    framed.header.sender = "babymdd".into();
    let bytes = frame::encode(&framed).unwrap();
    c.bench_function("frame encode md_info", |b| {
        b.iter(|| frame::encode(black_box(&framed)).unwrap())
    });
    c.bench_function("frame decode md_info", |b| {
        b.iter(|| frame::decode(black_box(&bytes)).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_send
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: keep that quick.
    if std::env::args().any(|a| a == "--bench") {
        custom_runs();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
