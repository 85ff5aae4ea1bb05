//! HA core throughput and memory with 100k bindings in the cache.
//!
//! * `bu_refresh/{no_auth,auth}`: refresh BUs (HAO, Alternate CoA, implicit mode: one IPv6
//!   and one IPv4 MNP from the prefix table; with auth also MN-ID-free RFC 4285 replay
//!   protection + MN-HA option) for random existing HoAs, checksum verified by the core;
//!   events and the BA drained as the shell would. BUs are built and signed outside the
//!   timed section.
//! * Memory per binding: a counting global allocator measures the heap growth of the core
//!   while 100k bindings are registered (bytes requested; live allocations counted
//!   separately so malloc's per-chunk overhead can be estimated).
//!
//! Run: `cargo bench -p had --bench bu`. A summary is printed at the end.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use had::{
    AuthPolicy, ChecksumState, Ha, HaCoreConfig, MobilitySa, PrefixMode, PrefixTableRow,
    ReceivedSignal, ReplayProtection,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proto::mh::{BindingUpdate, BuFlags, MhRepr, Packet};
use proto::option::MobilityOption;
use proto::seq::{Lifetime, NtpTimestamp, SequenceNumber};

struct Counting;

/// Only the memory measurement reads the counters, as differences over a stretch where
/// one thread runs, so a plain load and store count exactly there. A locked
/// read-modify-write on every allocation and free was about 8 % of the timed loop, a
/// cost the daemon (the system allocator alone) does not pay.
fn add(counter: &AtomicIsize, by: isize) {
    counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

static BYTES: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(&BYTES, layout.size() as isize);
        add(&ALLOCS, 1);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(&BYTES, -(layout.size() as isize));
        add(&ALLOCS, -1);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(&BYTES, new_size as isize - layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 100_000;
const HA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const WALL0: Duration = Duration::from_secs(1_800_000_000);

fn hoa(i: usize) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(HA) + 0x1000 + i as u128)
}

fn coa(i: usize) -> Ipv6Addr {
    Ipv6Addr::from((0x2001_0db8_00aa_u128 << 80) + i as u128)
}

fn key(i: usize) -> Vec<u8> {
    format!("key-{i:012}").into_bytes()
}

fn config(auth: bool) -> HaCoreConfig {
    let mut c = HaCoreConfig::new(vec!["2001:db8:1::/64".parse().unwrap()], HA);
    c.max_lifetime = Duration::from_secs(3600);
    for i in 0..N {
        let v6 = Ipv6Net::new(
            Ipv6Addr::from((0x2001_0db8_8000_u128 << 80) + ((i as u128) << 64)),
            64,
        )
        .unwrap();
        let v4 = Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + ((i as u32) << 8)), 24).unwrap();
        for p in [IpNet::V6(v6), IpNet::V4(v4)] {
            c.prefix_table.push(PrefixTableRow {
                hoa: hoa(i),
                prefix: p,
                mode: PrefixMode::Implicit,
            });
        }
    }
    if auth {
        c.auth = AuthPolicy::Required(
            (0..N)
                .map(|i| MobilitySa {
                    spi: 1000 + i as u32,
                    key: key(i),
                    hoa: Some(hoa(i)),
                    nai: None,
                    replay: ReplayProtection::default(),
                })
                .collect(),
        );
    }
    c
}

/// A BU exactly as an MR builds it.
fn build_bu(i: usize, seq: u16, auth: bool, wall: Duration) -> Vec<u8> {
    let mut options = vec![MobilityOption::AlternateCareOfAddress(coa(i))];
    if auth {
        options.push(MobilityOption::ReplayProtection {
            timestamp: NtpTimestamp::from_unix(wall).0,
        });
        options.push(proto::auth::mn_ha_option(1000 + i as u32));
    }
    let repr = MhRepr::BindingUpdate(BindingUpdate {
        sequence: SequenceNumber(seq),
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        lifetime: Lifetime(900),
        options,
    });
    let mut mh = vec![0; repr.buffer_len()];
    repr.emit_to(&mut mh).unwrap();
    if auth {
        proto::auth::sign(&mut mh, coa(i).into(), &hoa(i), &key(i)).unwrap();
    }
    Packet::new_unchecked(&mut mh[..]).fill_checksum(&hoa(i), &HA);
    mh
}

struct World {
    ha: Ha,
    seqs: Vec<u16>,
    auth: bool,
    t0: Instant,
    /// Virtual time, advanced 1 µs per BU so RFC 4285 timestamps strictly increase.
    elapsed: Duration,
    rng: u64,
}

impl World {
    fn new(auth: bool) -> World {
        let ha = Ha::new(config(auth)).unwrap();
        World {
            ha,
            seqs: vec![0; N],
            auth,
            t0: Instant::now(),
            elapsed: Duration::ZERO,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn next_index(&mut self) -> usize {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % N
    }

    /// Builds `n` refresh BUs for random HoAs (untimed): (index, wall, bytes).
    fn prepare(&mut self, n: usize) -> Vec<(usize, Duration, Vec<u8>)> {
        (0..n)
            .map(|_| {
                let i = self.next_index();
                self.seqs[i] = self.seqs[i].wrapping_add(1);
                self.elapsed += Duration::from_micros(1);
                let wall = WALL0 + self.elapsed;
                (i, wall, build_bu(i, self.seqs[i], self.auth, wall))
            })
            .collect()
    }

    /// Processes prepared BUs, draining like the shell; returns the time taken.
    fn run(&mut self, bus: &[(usize, Duration, Vec<u8>)]) -> Duration {
        let start = Instant::now();
        for (i, wall, mh) in bus {
            let sig = ReceivedSignal {
                src: coa(*i),
                dst: HA,
                home_address: Some(hoa(*i)),
                mh,
                checksum: ChecksumState::Unverified,
                ifindex: 2,
                udp_v4: None,
            };
            let now = self.t0 + (*wall - WALL0);
            self.ha.handle_packet(now, *wall, &sig);
            while let Some(ev) = self.ha.poll_event() {
                black_box(ev);
            }
            while let Some(tx) = self.ha.poll_transmit() {
                black_box(tx);
            }
        }
        start.elapsed()
    }

    /// Registers every HoA once (sequence 1).
    fn fill(&mut self) {
        for start in (0..N).step_by(10_000) {
            let bus: Vec<_> = (start..(start + 10_000).min(N))
                .map(|i| {
                    self.seqs[i] = 1;
                    self.elapsed += Duration::from_micros(1);
                    let wall = WALL0 + self.elapsed;
                    (i, wall, build_bu(i, 1, self.auth, wall))
                })
                .collect();
            self.run(&bus);
        }
        assert_eq!(self.ha.len(), N);
    }

    /// BUs per second over `total` random refreshes.
    fn throughput(&mut self, total: usize) -> f64 {
        let mut spent = Duration::ZERO;
        let mut done = 0;
        while done < total {
            let n = 20_000.min(total - done);
            let bus = self.prepare(n);
            spent += self.run(&bus);
            done += n;
        }
        assert_eq!(self.ha.stats().rejected, 0, "every refresh accepted");
        total as f64 / spent.as_secs_f64()
    }
}

/// Heap growth of the core per binding, measured while registering N bindings.
fn memory_per_binding() -> (f64, f64) {
    let mut w = World::new(false);
    let (b0, a0) = (
        BYTES.load(Ordering::Relaxed),
        ALLOCS.load(Ordering::Relaxed),
    );
    // Registration BUs are built in chunks inside fill(); they are freed before the end,
    // so only the cache's growth remains.
    w.fill();
    let (b1, a1) = (
        BYTES.load(Ordering::Relaxed),
        ALLOCS.load(Ordering::Relaxed),
    );
    black_box(&w.ha);
    ((b1 - b0) as f64 / N as f64, (a1 - a0) as f64 / N as f64)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("bu_refresh_100k");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(1));
    for auth in [false, true] {
        let mut w = World::new(auth);
        w.fill();
        g.bench_function(if auth { "auth" } else { "no_auth" }, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut done = 0u64;
                while done < iters {
                    let n = 20_000.min(iters - done) as usize;
                    let bus = w.prepare(n);
                    spent += w.run(&bus);
                    done += n as u64;
                }
                spent
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();

    let (bytes, allocs) = memory_per_binding();
    let mut summary = Vec::new();
    for auth in [false, true] {
        let mut w = World::new(auth);
        w.fill();
        let rate = w.throughput(500_000);
        summary.push((auth, rate));
    }
    println!();
    println!(
        "had core, {N} bindings in the cache, random refresh BUs (1 IPv6 + 1 IPv4 MNP, implicit):"
    );
    for (auth, rate) in summary {
        println!(
            "  {:<28} {:>10.0} BU/s  ({:.2} us/BU)",
            if auth {
                "RFC 4285 auth (HMAC-SHA1 x2):"
            } else {
                "no authentication:"
            },
            rate,
            1e6 / rate
        );
    }
    println!(
        "  memory per binding: {bytes:.0} bytes requested in {allocs:.2} allocations \
         (~{:.0} bytes with 16 B malloc overhead per allocation)",
        bytes + allocs * 16.0
    );
}
