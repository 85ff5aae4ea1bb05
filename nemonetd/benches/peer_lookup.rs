//! Peer lookups of the data plane at home-agent scale: 10,000 bindings, each with an IPv6
//! home address, two IPv6 mobile network prefixes (a /48 and a /56) and an IPv4 /24.
//!
//! * `tx_lookup hit`: the HA's lookup of a packet read from the TUN, inner destination
//!   random inside a random binding's prefixes (IPv6 and IPv4 mixed, as they come);
//! * `tx_lookup miss`: destinations inside no binding (dropped as `drop_no_binding`);
//! * `rx_check`: a tunnelled packet from a random binding's care-of address with an inner
//!   source inside its prefixes;
//! * `snapshot build`: what a binding change costs the daemon (new table only).
//!
//! Each is measured for [`baseline`] (the linear table the data plane had before issue 10,
//! kept here verbatim so both run on the same machine in the same run) and for the table the
//! data plane uses now. Run: `cargo bench -p nemonetd --bench peer_lookup`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{Ipv4Net, Ipv6Net};
use mipsock::{Binding, BuFlags, CareOf, Encapsulation as BindingEncap};
use nemonetd::dataplane::{BatchClock, Peer, PeerTable, Remote, Snapshot};
use nemonetd::routes::Mode;

/// The peer table of the data plane before issue 10: a vector scanned per packet.
mod baseline {
    use std::net::IpAddr;

    use nemonetd::dataplane::{MOVE_GRACE, Peer, Remote, RxRefusal};
    use nemonetd::routes::Mode;

    #[derive(Debug, Clone)]
    pub struct PeerTable {
        mode: Mode,
        peers: Vec<Peer>,
    }

    fn covers(p: &Peer, a: IpAddr) -> bool {
        p.sources.iter().any(|n| n.contains(&a))
    }

    impl PeerTable {
        pub fn new(mode: Mode) -> Self {
            PeerTable {
                mode,
                peers: Vec::new(),
            }
        }

        pub fn upsert(&mut self, mut peer: Peer) {
            let k = nemonetd::routes::key(&peer.binding);
            match self
                .peers
                .iter_mut()
                .find(|p| nemonetd::routes::key(&p.binding) == k)
            {
                Some(p) => {
                    peer.previous_remote = if p.remote != peer.remote {
                        Some((p.remote, std::time::Instant::now()))
                    } else {
                        p.previous_remote
                    };
                    *p = peer
                }
                None => self.peers.push(peer),
            }
        }

        pub fn tx_lookup(&self, src: IpAddr, dst: IpAddr) -> Option<&Peer> {
            match self.mode {
                Mode::HomeAgent => self
                    .peers
                    .iter()
                    .filter_map(|p| {
                        p.sources
                            .iter()
                            .filter(|n| n.contains(&dst))
                            .map(|n| n.prefix_len())
                            .max()
                            .map(|len| (len, p))
                    })
                    .max_by_key(|(len, _)| *len)
                    .map(|(_, p)| p),
                Mode::MobileRouter => self
                    .peers
                    .iter()
                    .find(|p| covers(p, src))
                    .or_else(|| self.peers.first()),
            }
        }

        pub fn rx_check(&self, outer: Remote, inner_src: IpAddr) -> Result<(), RxRefusal> {
            let mut known = false;
            let from = |p: &&Peer| {
                p.remote == outer
                    || p.previous_remote
                        .is_some_and(|(r, at)| r == outer && at.elapsed() < MOVE_GRACE)
            };
            for p in self.peers.iter().filter(from) {
                known = true;
                if self.mode == Mode::MobileRouter || covers(p, inner_src) {
                    return Ok(());
                }
            }
            Err(if known {
                RxRefusal::SpoofedInnerSource
            } else {
                RxRefusal::UnknownOuterSource
            })
        }
    }
}

const BINDINGS: u32 = 10_000;
/// Precomputed queries, cycled through: enough that the working set is the table's.
const QUERIES: usize = 4096;

/// xorshift64*: reproducible pseudo-random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// Binding `i`: HoA 2001:db8:ffff::i+1, MNPs 2001:db8:2i::/48 and 2001:db8:2i+1:ab00::/56,
/// 10.i/256.i%256.0/24, CoA 3fff:i::5 (RFC 9637 documentation space).
fn binding(i: u32) -> Binding {
    let h = i as u16;
    Binding {
        hoa: Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, h + 1),
        hoa_v4: None,
        coa: CareOf::V6(Ipv6Addr::new(0x3fff, h, 0, 0, 0, 0, 0, 5)),
        ha: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1),
        ha_v4: Some(Ipv4Addr::new(192, 0, 2, 1)),
        mnp_v6: vec![
            Ipv6Net::new(Ipv6Addr::new(0x2001, 0xdb8, 2 * h, 0, 0, 0, 0, 0), 48).unwrap(),
            Ipv6Net::new(
                Ipv6Addr::new(0x2001, 0xdb8, 2 * h + 1, 0xab00, 0, 0, 0, 0),
                56,
            )
            .unwrap(),
        ],
        mnp_v4: vec![Ipv4Net::new(Ipv4Addr::new(10, (i / 256) as u8, i as u8, 0), 24).unwrap()],
        encapsulation: BindingEncap::InIpv6,
        lifetime: 600,
        binding_id: None,
        flags: BuFlags::A | BuFlags::H | BuFlags::R,
        nat_detected: false,
        coa_ifindex: None,
        flows: Vec::new(),
        bid_priority: 0,
    }
}

/// A random address inside binding `i`'s sources: one of its MNPs or its HoA.
fn inside(rng: &mut Rng, i: u32) -> IpAddr {
    let h = i as u16;
    let r = rng.next();
    match rng.below(4) {
        0 => Ipv6Addr::new(0x2001, 0xdb8, 2 * h, r as u16, (r >> 16) as u16, 0, 0, 7).into(),
        1 => Ipv6Addr::new(
            0x2001,
            0xdb8,
            2 * h + 1,
            0xab00 | (r as u16 & 0xff),
            (r >> 16) as u16,
            0,
            0,
            (r >> 32) as u16,
        )
        .into(),
        2 => Ipv4Addr::new(10, (i / 256) as u8, i as u8, r as u8).into(),
        _ => Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, h + 1).into(),
    }
}

/// A random address inside no binding: IPv6 above the MNPs, or IPv4 outside 10/8.
fn outside(rng: &mut Rng) -> IpAddr {
    let r = rng.next();
    if r & 1 == 0 {
        Ipv6Addr::new(
            0x2001,
            0xdb8,
            0x8000 + (r >> 1) as u16 % 0x7000,
            1,
            0,
            0,
            0,
            1,
        )
        .into()
    } else {
        Ipv4Addr::new(
            172,
            16 + (r >> 1) as u8 % 16,
            (r >> 9) as u8,
            (r >> 17) as u8,
        )
        .into()
    }
}

struct Workload {
    hits: Vec<(IpAddr, IpAddr)>,
    misses: Vec<(IpAddr, IpAddr)>,
    rx: Vec<(Remote, IpAddr)>,
    peers: Vec<Peer>,
}

fn workload() -> Workload {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cn6: IpAddr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 2).into();
    let cn4: IpAddr = Ipv4Addr::new(203, 0, 113, 2).into();
    let cn = |dst: IpAddr| if dst.is_ipv4() { cn4 } else { cn6 };
    let peers: Vec<Peer> = (0..BINDINGS)
        .map(|i| Peer::new(Mode::HomeAgent, &binding(i)).unwrap())
        .collect();
    let hits = (0..QUERIES)
        .map(|_| {
            let i = rng.below(BINDINGS);
            let d = inside(&mut rng, i);
            (cn(d), d)
        })
        .collect();
    let misses = (0..QUERIES)
        .map(|_| {
            let d = outside(&mut rng);
            (cn(d), d)
        })
        .collect();
    let rx = (0..QUERIES)
        .map(|_| {
            let i = rng.below(BINDINGS);
            (peers[i as usize].remote, inside(&mut rng, i))
        })
        .collect();
    Workload {
        hits,
        misses,
        rx,
        peers,
    }
}

fn bench_peer_lookup(c: &mut Criterion) {
    let w = workload();
    let mut old = baseline::PeerTable::new(Mode::HomeAgent);
    let mut table = PeerTable::new(Mode::HomeAgent);
    for p in &w.peers {
        old.upsert(p.clone());
        table.upsert(p.clone());
    }
    // What a packet thread looks up in: the published snapshot.
    let new = table.snapshot();
    // Both tables agree on every query before anything is timed.
    for &(s, d) in w.hits.iter().chain(&w.misses) {
        let a = old.tx_lookup(s, d).map(|p| p.binding.hoa);
        assert_eq!(a, new.tx_lookup(s, d, || 0).map(|p| p.binding.hoa));
        assert_eq!(a.is_some(), w.hits.contains(&(s, d)));
    }
    for &(r, s) in &w.rx {
        assert!(old.rx_check(r, s).is_ok());
        assert!(new.rx_check(r, s, &mut BatchClock::new()).is_ok());
    }

    let mut g = c.benchmark_group("peer_lookup_10k");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut next = || {
        i = (i + 1) % QUERIES;
        i
    };
    g.bench_function("tx_lookup hit/baseline", |b| {
        b.iter(|| {
            let (s, d) = w.hits[next()];
            black_box(old.tx_lookup(black_box(s), black_box(d)).is_some())
        })
    });
    g.bench_function("tx_lookup hit/new", |b| {
        b.iter(|| {
            let (s, d) = w.hits[next()];
            black_box(new.tx_lookup(black_box(s), black_box(d), || 0).is_some())
        })
    });
    g.bench_function("tx_lookup miss/baseline", |b| {
        b.iter(|| {
            let (s, d) = w.misses[next()];
            black_box(old.tx_lookup(black_box(s), black_box(d)).is_some())
        })
    });
    g.bench_function("tx_lookup miss/new", |b| {
        b.iter(|| {
            let (s, d) = w.misses[next()];
            black_box(new.tx_lookup(black_box(s), black_box(d), || 0).is_some())
        })
    });
    g.bench_function("rx_check/baseline", |b| {
        b.iter(|| {
            let (r, s) = w.rx[next()];
            black_box(old.rx_check(black_box(r), black_box(s)).is_ok())
        })
    });
    g.bench_function("rx_check/new", |b| {
        b.iter(|| {
            let (r, s) = w.rx[next()];
            // A batch of one: the worst case for the clock (not read here anyway).
            let mut clock = BatchClock::new();
            black_box(new.rx_check(black_box(r), black_box(s), &mut clock).is_ok())
        })
    });
    g.finish();

    // What a binding change costs the daemon: the new snapshot, built whole.
    let peers = new.peers().to_vec();
    let mut g = c.benchmark_group("peer_table_10k");
    g.bench_function("snapshot build", |b| {
        b.iter(|| Snapshot::build(Mode::HomeAgent, black_box(peers.clone())))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    // Modest: 2 shared cores; the linear baseline takes tens of µs per lookup.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_peer_lookup
}
criterion_main!(benches);
