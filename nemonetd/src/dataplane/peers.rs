//! The peer table: which binding a packet belongs to, in both directions. Pure (no I/O,
//! no device), so it is tested with fakes and measured by `benches/peer_lookup.rs`.
//!
//! * [`PeerTable`] is the daemon's copy, edited on binding events (`BC_ADD` / `BUL_ADD`,
//!   removals, flushes). Every edit that changes what a packet sees builds an immutable
//!   [`Snapshot`] and publishes it.
//! * [`Snapshot`] answers the two questions of the packet loops:
//!   [`Snapshot::tx_lookup`] (the home agent: longest match of the inner destination over
//!   every binding's HoA/128, IPv4 HoA/32 and IPv6/IPv4 mobile network prefixes; the mobile
//!   router: its HA) and [`Snapshot::rx_check`] (outer source → binding, inner source
//!   inside it: RFC 3963 §6.4, RFC 6275 §10.4.5). Prefixes are indexed in one hash map per
//!   prefix length, probed longest first: a lookup costs at most one probe per distinct
//!   length in use (a handful: /128, /64, /56, /48, /32, /24...), whatever the number of
//!   bindings. Outer sources are a hash map too.
//! * [`PeerReader`] is a packet thread's handle: it holds the current snapshot and checks
//!   once per batch (one atomic load) whether a newer one was published; the mutex behind
//!   it is taken only when one was. Packets never wait for the daemon, and the daemon
//!   never waits for packets.
//!
//! Building a snapshot is linear in the bindings (a few milliseconds at 10,000), paid on
//! a binding change, not per packet; a refresh that changes nothing a packet sees (same
//! care-of address, same prefixes: the common event at a busy home agent) publishes
//! nothing.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use mipsock::{Binding, CareOf, Encapsulation as BindingEncap};
use proto::encap::Encapsulation;
use proto::flow::FlowSelector;
use proto::model::FlowBinding;

use super::dup::{Dedup, DupRule, selected};
use crate::routes::{BindingKey, Mode, key, sources};

/// Where tunnelled packets from a peer come from: the outer source we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Remote {
    /// IPv6 outer source.
    V6(std::net::Ipv6Addr),
    /// IPv4 outer source (protocol 41/4).
    V4(Ipv4Addr),
    /// IPv4 + UDP source address and port (after any NAT).
    Udp(SocketAddrV4),
}

/// A packet count and its octets, alone on a cache line: the transmit and the receive
/// loops count on their own lines, so per-binding counting adds no false sharing between
/// the two packet threads.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct CountLine {
    /// Packets.
    pub packets: AtomicU64,
    /// Their octets (inner).
    pub bytes: AtomicU64,
}

impl CountLine {
    fn add(&self, len: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(len as u64, Ordering::Relaxed);
    }
}

/// When a path was last heard from, in nanoseconds since [`mono_ns`]'s epoch, alone on its
/// cache line (written by the receive loops, read by the transmit loop and the prober).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct HeardLine(pub AtomicU64);

/// The process's clock for times kept in atomics: nanoseconds from the first call.
pub fn mono_ns(t: Instant) -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    t.saturating_duration_since(epoch).as_nanos() as u64
}

/// What a path carries each way, from packet pairs ([`super::pair_probe`]; issue 15,
/// weights by capacity), in kbit/s, alone on its cache line: read by the transmit loop
/// for every flow it places among several paths, written a few times a second.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct CapacityLine {
    /// What the other end's packets get through this path: our measure (0: none yet).
    pub from_kbps: AtomicU32,
    /// What ours get: the other end's measure, as its probes report it (0: none yet).
    pub to_kbps: AtomicU32,
    /// The weight the flows are spread by ([`pick`]): `to_kbps`, followed only when it
    /// moves by more than half (or a third down), so that measures that waver move no
    /// flow.
    pub weight_kbps: AtomicU32,
    /// The pairs seen; taken only for a pair probe.
    pairs: Mutex<PairSamples>,
}

/// The last pairs' measures, and the first of a pair waiting for its second.
#[derive(Debug, Default)]
struct PairSamples {
    /// The first probe of the pair in flight: its number and arrival (ns).
    first: Option<(u32, u64)>,
    /// The last [`PAIR_SAMPLES`] measures, kbit/s, oldest overwritten.
    samples: [u32; PAIR_SAMPLES],
    next: usize,
}

/// Measures a path's estimate is taken from.
const PAIR_SAMPLES: usize = 8;

/// The most a packet pair measures, kbit/s: beyond, the gap (48 µs for 1,200 octets) is
/// of the order of the sender's time between two sends and the receiver's timing, not of
/// the link; paths faster than that read alike (and share flows alike), as uplinks of a
/// vehicle seldom are.
pub const CAPACITY_MAX_KBPS: u32 = 200_000;

impl CapacityLine {
    /// A probe of a pair arrived at `arrival_ns` (any clock, the same for both of a
    /// pair). The second of a pair whose first arrived measures the gap between them:
    /// [`super::PAIR_LEN`] octets in that time. The estimate is the second-largest of the
    /// last measures: packets of our own between the two of a pair only widen the gap
    /// (a measure too low), while a burst can narrow one (too high) now and then.
    pub fn pair_probe(&self, p: super::PairProbe, arrival_ns: u64) {
        if p.report_kbps > 0 {
            let report = p.report_kbps.min(CAPACITY_MAX_KBPS);
            self.to_kbps.store(report, Ordering::Relaxed);
            let w = u64::from(self.weight_kbps.load(Ordering::Relaxed));
            let r = u64::from(report);
            if w == 0 || r * 2 > w * 3 || r * 3 < w * 2 {
                self.weight_kbps.store(report, Ordering::Relaxed);
            }
        }
        let mut s = self.pairs.lock().unwrap_or_else(|e| e.into_inner());
        if p.position == 0 {
            s.first = Some((p.id, arrival_ns));
            return;
        }
        let Some((id, first)) = s.first.take() else {
            return;
        };
        let gap = arrival_ns.saturating_sub(first);
        if id != p.id || gap == 0 {
            // The first was lost, or both came in one read with one time: no measure.
            return;
        }
        // Octets x 8 bits / gap ns = Gbit/s; x 10^6 = kbit/s.
        let kbps =
            (super::PAIR_LEN as u64 * 8 * 1_000_000 / gap).clamp(1, CAPACITY_MAX_KBPS.into());
        let at = s.next % PAIR_SAMPLES;
        s.samples[at] = kbps as u32;
        s.next = s.next.wrapping_add(1);
        let mut sorted = s.samples;
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let taken = s.next.min(PAIR_SAMPLES);
        let estimate = if taken >= 3 { sorted[1] } else { sorted[0] };
        self.from_kbps.store(estimate, Ordering::Relaxed);
    }

    /// (to, from) in kbit/s, 0 for none yet.
    pub fn read(&self) -> (u32, u32) {
        (
            self.to_kbps.load(Ordering::Relaxed),
            self.from_kbps.load(Ordering::Relaxed),
        )
    }
}

/// One binding's traffic, counted on the packet paths (issue 16: per-binding metrics).
/// Shared by every copy of the peer and kept across refreshes and moves.
#[derive(Debug, Default)]
pub struct PeerCounters {
    /// Packets from the device tunnelled to this binding.
    pub tx: CountLine,
    /// Tunnelled packets from this binding admitted.
    pub rx: CountLine,
    /// When anything (data or a path probe) last arrived through this binding's path:
    /// among several care-of addresses (RFC 5648), a path silent for longer than the
    /// liveness limit is taken out of use ([`Snapshot::tx_lookup`]).
    pub heard: HeardLine,
    /// What the path carries each way, measured by packet pairs: the flows among several
    /// paths are spread in proportion ([`pick`]).
    pub capacity: CapacityLine,
}

impl PeerCounters {
    /// One packet of `len` octets tunnelled to the binding.
    pub fn tx(&self, len: usize) {
        self.tx.add(len);
    }

    /// One packet of `len` octets from the binding admitted.
    pub fn rx(&self, len: usize) {
        self.rx.add(len);
    }

    /// Something arrived through the path at `now_ns` ([`mono_ns`]).
    pub fn heard(&self, now_ns: u64) {
        self.heard.0.store(now_ns, Ordering::Relaxed);
    }

    /// Whether the path was heard from within `limit` before `now_ns`.
    pub fn alive(&self, now_ns: u64, limit: Duration) -> bool {
        now_ns.saturating_sub(self.heard.0.load(Ordering::Relaxed)) < limit.as_nanos() as u64
    }

    /// (tx packets, tx octets, rx packets, rx octets) now.
    pub fn read(&self) -> (u64, u64, u64, u64) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        (
            g(&self.tx.packets),
            g(&self.tx.bytes),
            g(&self.rx.packets),
            g(&self.rx.bytes),
        )
    }
}

/// The counters of a peer behind an `Arc`: copies of a peer share them, and a peer equals
/// another whatever they counted (the counters are not part of what a packet looks at).
#[derive(Debug, Clone, Default)]
pub struct SharedCounters(pub Arc<PeerCounters>);

impl PartialEq for SharedCounters {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for SharedCounters {}

/// A live binding as the data plane sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The binding.
    pub binding: Binding,
    /// The outer header towards the peer.
    pub encap: Encapsulation,
    /// The outer source we accept packets from.
    pub remote: Remote,
    /// Inner sources the HA accepts from this MR (HoA, MNPs, IPv4 too).
    pub sources: Vec<IpNet>,
    /// The outer source before the last move and when it changed: still accepted for
    /// [`MOVE_GRACE`], for the packets the MR sent from its old care-of address before its
    /// Binding Acknowledgement arrived (a vertical handover then loses nothing).
    pub previous_remote: Option<(Remote, Instant)>,
    /// Its tunnel packets are decapsulated by the kernel data plane (an IPv6 outer header
    /// to the kernel's tunnel source): the packet socket for merged tunnel packets, which
    /// may see them before the kernel's programs do, leaves them alone.
    pub kernel_rx: bool,
    /// Its traffic so far.
    pub counters: SharedCounters,
}

/// How long the HA still accepts tunnelled packets from a binding's previous care-of
/// address after a move: the BA's flight plus mrd's and nemonetd's reaction on the MR,
/// a few ms, with a wide margin. The inner-source check applies as always.
pub const MOVE_GRACE: Duration = Duration::from_millis(200);

/// Why a peer cannot be built from a binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// An IPv4 care-of address with no IPv4 home agent address.
    #[error("IPv4 care-of address {0} but no IPv4 home agent address in the binding")]
    NoHaV4(Ipv4Addr),
}

impl Peer {
    /// The tunnel to and from the other end of `b`, from our side (`mode`): RFC 5555 §5.1
    /// formats, chosen by the CoA's family and the binding's encapsulation.
    pub fn new(mode: Mode, b: &Binding) -> Result<Peer, PeerError> {
        let (encap, remote) = match b.coa {
            CareOf::V6(coa) => match mode {
                Mode::MobileRouter => (
                    Encapsulation::Ipv6 {
                        src_addr: coa,
                        dst_addr: b.ha,
                    },
                    Remote::V6(b.ha),
                ),
                Mode::HomeAgent => (
                    Encapsulation::Ipv6 {
                        src_addr: b.ha,
                        dst_addr: coa,
                    },
                    Remote::V6(coa),
                ),
            },
            CareOf::V4 { addr, udp_port } => {
                let ha4 = b.ha_v4.ok_or(PeerError::NoHaV4(addr))?;
                match (b.encapsulation, mode) {
                    (BindingEncap::UdpIpv4 { ha_port }, Mode::MobileRouter) => (
                        Encapsulation::Udp4 {
                            src_addr: addr,
                            dst_addr: ha4,
                            src_port: udp_port.unwrap_or(proto::DSMIP_UDP_PORT),
                            dst_port: ha_port,
                        },
                        Remote::Udp(SocketAddrV4::new(ha4, ha_port)),
                    ),
                    (BindingEncap::UdpIpv4 { ha_port }, Mode::HomeAgent) => {
                        let port = udp_port.unwrap_or(proto::DSMIP_UDP_PORT);
                        (
                            Encapsulation::Udp4 {
                                src_addr: ha4,
                                dst_addr: addr,
                                src_port: ha_port,
                                dst_port: port,
                            },
                            Remote::Udp(SocketAddrV4::new(addr, port)),
                        )
                    }
                    // InIpv4, or an inconsistent InIpv6 with an IPv4 CoA: plain IP-in-IPv4.
                    (_, Mode::MobileRouter) => (
                        Encapsulation::Ipv4 {
                            src_addr: addr,
                            dst_addr: ha4,
                        },
                        Remote::V4(ha4),
                    ),
                    (_, Mode::HomeAgent) => (
                        Encapsulation::Ipv4 {
                            src_addr: ha4,
                            dst_addr: addr,
                        },
                        Remote::V4(addr),
                    ),
                }
            }
        };
        Ok(Peer {
            binding: b.clone(),
            encap,
            remote,
            sources: sources(b),
            previous_remote: None,
            kernel_rx: false,
            counters: {
                // A new path is presumed alive: its binding was just acknowledged through it.
                let c = SharedCounters::default();
                c.0.heard(mono_ns(Instant::now()));
                c
            },
        })
    }

    /// Whether its tunnel packets come through the raw IP sockets: an IPv6 or IPv4 outer
    /// header without UDP, not decapsulated by the kernel data plane.
    pub fn raw_ip_rx(&self) -> bool {
        !self.kernel_rx && !matches!(self.encap, Encapsulation::Udp4 { .. })
    }

    /// Our end of the tunnel: the outer source we send from (the MR's care-of address, the
    /// HA's address).
    pub fn local(&self) -> IpAddr {
        match self.encap {
            Encapsulation::Ipv6 { src_addr, .. } => IpAddr::V6(src_addr),
            Encapsulation::Ipv4 { src_addr, .. } | Encapsulation::Udp4 { src_addr, .. } => {
                IpAddr::V4(src_addr)
            }
        }
    }

    /// The weight of its path among several, kbit/s: what it carries our way, as the
    /// other end measured (0: not yet; [`CapacityLine::weight_kbps`]).
    pub fn weight_kbps(&self) -> u32 {
        self.counters.0.capacity.weight_kbps.load(Ordering::Relaxed)
    }

    /// Its BID-PRI (RFC 6089 §4.1), lower preferred; none given (0, RFC 5648's format)
    /// counts as 1, the value mrd sends by default.
    pub fn bid_priority(&self) -> u8 {
        self.binding.bid_priority.max(1)
    }

    /// Whether this is one of several care-of addresses of its home address (RFC 5648): a
    /// binding with an identifier.
    pub fn is_mcoa(&self) -> bool {
        self.binding.binding_id.is_some()
    }

    /// Whether `a` is one of this binding's own addresses (HoA, MNPs, IPv4 too): a few
    /// prefixes per binding, scanned.
    fn covers(&self, a: IpAddr) -> bool {
        self.sources.iter().any(|n| n.contains(&a))
    }

    /// Whether the packet loops would treat `other` exactly as `self` (everything but the
    /// binding's lifetime, flags and such, which no packet looks at).
    fn same_for_packets(&self, other: &Peer) -> bool {
        self.encap == other.encap
            && self.remote == other.remote
            && self.sources == other.sources
            && self.previous_remote == other.previous_remote
            && self.kernel_rx == other.kernel_rx
            && self.binding.flows == other.binding.flows
            && self.binding.bid_priority == other.binding.bid_priority
    }
}

/// Why an incoming tunnel packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxRefusal {
    /// The outer source is no live binding's CoA (HA) / not our HA (MR).
    UnknownOuterSource,
    /// HA: the inner source is outside that MR's HoA and MNPs.
    SpoofedInnerSource,
}

/// The time of one batch of packets, read at most once per batch and only when a check
/// needs it (a packet from a binding's previous care-of address, [`MOVE_GRACE`]): the
/// common packet reads no clock at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchClock(Option<Instant>);

impl BatchClock {
    /// A clock for a new batch: nothing read yet.
    pub fn new() -> Self {
        BatchClock(None)
    }

    /// A clock stopped at `t` (tests, benchmarks).
    pub fn at(t: Instant) -> Self {
        BatchClock(Some(t))
    }

    /// The batch's time: the first call reads the clock, the others repeat it.
    pub fn now(&mut self) -> Instant {
        *self.0.get_or_insert_with(Instant::now)
    }
}

/// One prefix length's bindings: network address (masked) → group index. std's hasher is
/// keyed per map (SipHash): the addresses looked up come from the network.
#[derive(Debug, Clone)]
struct Level<K> {
    mask: K,
    peers: HashMap<K, u32>,
}

/// Prefixes of one family by length, longest first.
#[derive(Debug, Clone)]
struct Prefixes<K> {
    levels: Vec<(u8, Level<K>)>,
}

impl<K> Default for Prefixes<K> {
    fn default() -> Self {
        Prefixes { levels: Vec::new() }
    }
}

/// An address family's address as an unsigned integer, for masking.
trait Key: Copy + Eq + std::hash::Hash + std::ops::BitAnd<Output = Self> {
    /// The mask of a prefix length: `len` ones, then zeros (all zeros for 0).
    fn ones_then_zeros(len: u8) -> Self;
}

impl Key for u128 {
    fn ones_then_zeros(len: u8) -> Self {
        u128::MAX
            .checked_shl(128u32.saturating_sub(u32::from(len)))
            .unwrap_or(0)
    }
}

impl Key for u32 {
    fn ones_then_zeros(len: u8) -> Self {
        u32::MAX
            .checked_shl(32u32.saturating_sub(u32::from(len)))
            .unwrap_or(0)
    }
}

impl<K: Key> Prefixes<K> {
    /// Records `net/len` for group `i`. `last_wins`: the group of the later binding takes a prefix two
    /// home addresses share (the HA's tie rule), else the earlier keeps it (the MR's).
    fn insert(&mut self, net: K, len: u8, i: u32, last_wins: bool) {
        let at = match self.levels.iter().position(|(l, _)| *l <= len) {
            Some(p) if self.levels[p].0 == len => p,
            Some(p) => {
                self.levels.insert(p, (len, Self::level(len)));
                p
            }
            None => {
                self.levels.push((len, Self::level(len)));
                self.levels.len() - 1
            }
        };
        let level = &mut self.levels[at].1;
        let net = net & level.mask;
        if last_wins {
            level.peers.insert(net, i);
        } else {
            // The earliest group, whichever of its bindings brought the prefix.
            let g = level.peers.entry(net).or_insert(i);
            *g = (*g).min(i);
        }
    }

    fn level(len: u8) -> Level<K> {
        Level {
            mask: K::ones_then_zeros(len),
            peers: HashMap::new(),
        }
    }

    /// The group of the longest prefix containing `a`.
    fn longest(&self, a: K) -> Option<u32> {
        self.levels
            .iter()
            .find_map(|(_, l)| l.peers.get(&(a & l.mask)).copied())
    }

    /// The first group (lowest index) with any prefix containing `a`.
    fn first(&self, a: K) -> Option<u32> {
        self.levels
            .iter()
            .filter_map(|(_, l)| l.peers.get(&(a & l.mask)).copied())
            .min()
    }
}

/// The peers at one outer source: nearly always one, so no allocation for it (building and
/// dropping a snapshot of 10,000 bindings costs 10,000 fewer heap blocks).
#[derive(Debug, Clone)]
enum Ids {
    One(u32),
    Many(Vec<u32>),
}

impl Ids {
    fn push(&mut self, i: u32) {
        match self {
            Ids::One(first) => *self = Ids::Many(vec![*first, i]),
            Ids::Many(v) => v.push(i),
        }
    }

    fn as_slice(&self) -> &[u32] {
        match self {
            Ids::One(i) => std::slice::from_ref(i),
            Ids::Many(v) => v,
        }
    }
}

/// An immutable view of every binding, indexed for the packet loops.
#[derive(Debug, Clone)]
pub struct Snapshot {
    mode: Mode,
    peers: Vec<Arc<Peer>>,
    /// The bindings of one home address (several with RFC 5648 multiple care-of
    /// addresses, one per BID): the prefix indexes lead to a group, and a packet's flow
    /// picks its member ([`Snapshot::tx_lookup`]).
    groups: Vec<Ids>,
    /// Prefix → group.
    v6: Prefixes<u128>,
    v4: Prefixes<u32>,
    /// Current outer source → the peers there (several with RFC 5648 multiple CoAs
    /// behind one NAT address, or two MRs behind one NAT for IP-in-IPv4).
    remotes: HashMap<Remote, Ids>,
    /// Previous outer sources after a move, with the time of the move.
    previous: HashMap<Remote, Vec<(u32, Instant)>>,
    /// Our ends of the tunnels ([`Peer::local`]).
    locals: std::collections::HashSet<IpAddr>,
    /// How long a path among several may stay silent before it is taken out of use
    /// (`None`: every registered path is used).
    liveness: Option<Duration>,
    /// The flows sent through every live path ([`super::dup`]), and the window that drops
    /// the later copies (shared by every snapshot and receive thread).
    duplicate: Duplicate,
    /// The flow bindings (RFC 6089) of the groups that have active ones, by group.
    flows: HashMap<u32, GroupFlows>,
    /// Home address → group, for the groups in `flows` (the receive side's duplicate check).
    flow_groups: HashMap<std::net::Ipv6Addr, u32>,
}

/// One home address's active flow bindings as the packet loops apply them: in FID-PRI
/// order, each a selector for what we send, one for what we receive, and the peers (this
/// snapshot's indexes) of its registered BIDs.
#[derive(Debug, Clone)]
struct GroupFlows {
    entries: Vec<FlowEntry>,
}

#[derive(Debug, Clone)]
struct FlowEntry {
    /// Its FID (what a later fragment's memory names: entries are rebuilt with the table).
    fid: u16,
    /// Packets we send that belong to the flow: the home agent sends the selector's
    /// direction (towards the mobile network), the mobile router the reverse.
    tx: FlowSelector,
    /// Packets we receive that belong to it (the other direction).
    rx: FlowSelector,
    /// The peers of its registered BIDs, in the order the BIDs are listed; never empty
    /// (an entry without one is inactive, RFC 6089 §4.3, and left out).
    peers: Vec<u32>,
}

impl GroupFlows {
    /// The active entries of `flows` over the peers `group` of `peers`.
    fn build(mode: Mode, flows: &[FlowBinding], group: &[u32], peers: &[Arc<Peer>]) -> Self {
        let mut sorted: Vec<&FlowBinding> = flows.iter().collect();
        sorted.sort_by_key(|f| (f.priority, f.fid));
        let entries = sorted
            .into_iter()
            .filter_map(|f| {
                let at: Vec<u32> = f
                    .bids
                    .iter()
                    .filter_map(|b| {
                        group
                            .iter()
                            .copied()
                            .find(|&i| peers[i as usize].binding.binding_id == Some(*b))
                    })
                    .collect();
                if at.is_empty() {
                    return None;
                }
                let (tx, rx) = match mode {
                    Mode::HomeAgent => (f.selector, f.selector.reversed()),
                    Mode::MobileRouter => (f.selector.reversed(), f.selector),
                };
                Some(FlowEntry {
                    fid: f.fid,
                    tx,
                    rx,
                    peers: at,
                })
            })
            .collect();
        GroupFlows { entries }
    }
}

/// The duplicated flows and the receive side's window.
#[derive(Debug, Clone, Default)]
pub struct Duplicate {
    /// The operator's flow selectors; none: nothing duplicated.
    pub rules: Arc<[DupRule]>,
    /// The copies seen.
    pub window: Arc<Mutex<Dedup>>,
    /// Which flow binding each recent fragmented packet's first fragment took.
    pub fragments: Arc<Mutex<FragmentMemory>>,
}

/// An inner packet's fragment: (source, destination, identification), and whether it is
/// the first (offset 0).
type Fragment = ((IpAddr, IpAddr, u32), bool);

/// The fragment of an inner packet, if it is one: IPv4's MF flag or offset; IPv6's
/// Fragment header, behind Hop-by-Hop, Routing or Destination Options headers.
fn fragment_of(packet: &[u8]) -> Option<Fragment> {
    match packet.first()? >> 4 {
        4 if packet.len() >= 20 => {
            let flags = u16::from_be_bytes([packet[6], packet[7]]);
            if flags & 0x3fff == 0 {
                return None;
            }
            let src: [u8; 4] = packet[12..16].try_into().ok()?;
            let dst: [u8; 4] = packet[16..20].try_into().ok()?;
            let id = u32::from(u16::from_be_bytes([packet[4], packet[5]]));
            Some(((src.into(), dst.into(), id), flags & 0x1fff == 0))
        }
        6 if packet.len() >= 40 => {
            let (mut nh, mut at) = (packet[6], 40);
            // A few extension headers at most before the Fragment header (RFC 8200 §4.1).
            for _ in 0..8 {
                match nh {
                    44 => {
                        let h = packet.get(at..at + 8)?;
                        let src: [u8; 16] = packet[8..24].try_into().ok()?;
                        let dst: [u8; 16] = packet[24..40].try_into().ok()?;
                        let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                        let offset = u16::from_be_bytes([h[2], h[3]]) >> 3;
                        return Some(((src.into(), dst.into(), id), offset == 0));
                    }
                    0 | 43 | 60 => {
                        let len = usize::from(*packet.get(at + 1)?) * 8 + 8;
                        nh = *packet.get(at)?;
                        at += len;
                    }
                    _ => return None,
                }
            }
            None
        }
        _ => None,
    }
}

/// The flow binding (its FID) each of the last [`FragmentMemory::CAPACITY`] fragmented
/// packets' first fragment matched, so the later fragments, which carry no ports, follow it
/// (RFC 6089 §5.3.6). Bounded: the oldest is forgotten first.
#[derive(Debug, Default)]
pub struct FragmentMemory {
    by_packet: HashMap<(IpAddr, IpAddr, u32), u16>,
    order: std::collections::VecDeque<(IpAddr, IpAddr, u32)>,
}

impl FragmentMemory {
    /// Packets remembered.
    pub const CAPACITY: usize = 4096;

    fn remember(&mut self, key: (IpAddr, IpAddr, u32), fid: u16) {
        if self.by_packet.insert(key, fid).is_none() {
            self.order.push_back(key);
            if self.order.len() > Self::CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.by_packet.remove(&old);
            }
        }
    }

    fn recall(&self, key: &(IpAddr, IpAddr, u32)) -> Option<u16> {
        self.by_packet.get(key).copied()
    }
}

impl Snapshot {
    /// The index of `peers` (in the table's order, which decides ties as the linear scan
    /// did: HA — the later binding for a prefix two share; MR — the earlier).
    pub fn build(mode: Mode, peers: Vec<Arc<Peer>>) -> Snapshot {
        Self::build_with(mode, peers, None, Duplicate::default())
    }

    /// [`Self::build`] with a path liveness limit and duplicated flows.
    pub fn build_with(
        mode: Mode,
        peers: Vec<Arc<Peer>>,
        liveness: Option<Duration>,
        duplicate: Duplicate,
    ) -> Snapshot {
        let mut s = Snapshot {
            mode,
            liveness,
            duplicate,
            peers: Vec::new(),
            groups: Vec::new(),
            v6: Prefixes::default(),
            v4: Prefixes::default(),
            remotes: HashMap::with_capacity(peers.len()),
            previous: HashMap::new(),
            locals: Default::default(),
            flows: HashMap::new(),
            flow_groups: HashMap::new(),
        };
        let last_wins = mode == Mode::HomeAgent;
        // Previous CoAs whose grace is already over are left out (the check still times
        // the rest): the map holds only the moves of the last moments.
        let built = Instant::now();
        // One group per home address, in the order of its first binding (which decides
        // ties between different routers as before).
        let mut group_of: HashMap<std::net::Ipv6Addr, u32> = HashMap::new();
        // u32: no node serves four billion bindings; more are simply not indexed.
        for (i, p) in (0u32..).zip(&peers) {
            let g = match group_of.entry(p.binding.hoa) {
                Entry::Occupied(e) => {
                    s.groups[*e.get() as usize].push(i);
                    *e.get()
                }
                Entry::Vacant(e) => {
                    s.groups.push(Ids::One(i));
                    *e.insert(s.groups.len() as u32 - 1)
                }
            };
            for n in &p.sources {
                match n {
                    IpNet::V6(n) => {
                        s.v6.insert(u128::from(n.network()), n.prefix_len(), g, last_wins)
                    }
                    IpNet::V4(n) => {
                        s.v4.insert(u32::from(n.network()), n.prefix_len(), g, last_wins)
                    }
                }
            }
            match s.remotes.entry(p.remote) {
                Entry::Occupied(mut e) => e.get_mut().push(i),
                Entry::Vacant(e) => {
                    e.insert(Ids::One(i));
                }
            }
            s.locals.insert(p.local());
            if let Some((r, at)) = p.previous_remote
                && built.saturating_duration_since(at) < MOVE_GRACE
            {
                s.previous.entry(r).or_default().push((i, at));
            }
        }
        // Flow bindings (RFC 6089): each binding of a home address carries the same list
        // (had and mrd send every BID the change); only groups of several bindings steer.
        for (g, ids) in (0u32..).zip(&s.groups) {
            let ids = ids.as_slice();
            let first = &peers[ids[0] as usize];
            if ids.len() < 2 || first.binding.flows.is_empty() {
                continue;
            }
            let gf = GroupFlows::build(mode, &first.binding.flows, ids, &peers);
            if !gf.entries.is_empty() {
                s.flows.insert(g, gf);
                s.flow_groups.insert(first.binding.hoa, g);
            }
        }
        s.peers = peers;
        s
    }

    /// An empty snapshot.
    pub fn empty(mode: Mode) -> Snapshot {
        Snapshot::build(mode, Vec::new())
    }

    /// The peers, in the table's order.
    pub fn peers(&self) -> &[Arc<Peer>] {
        &self.peers
    }

    fn peer(&self, i: u32) -> Option<&Peer> {
        self.peers.get(i as usize).map(|p| &**p)
    }

    /// The bindings a packet from the TUN may go to: one, or the care-of addresses of one
    /// home address (RFC 5648). HA: the home address whose HoA/MNPs contain the inner
    /// destination (longest prefix wins, for nested or overlapping registrations). MR: the
    /// one whose mobile network the inner source belongs to, else the first (the MR's own
    /// traffic, e.g. from an address in no MNP).
    fn tx_group(&self, src: IpAddr, dst: IpAddr) -> Option<&Ids> {
        let g = match self.mode {
            Mode::HomeAgent => match dst {
                IpAddr::V6(a) => self.v6.longest(u128::from(a)),
                IpAddr::V4(a) => self.v4.longest(u32::from(a)),
            },
            Mode::MobileRouter => match src {
                IpAddr::V6(a) => self.v6.first(u128::from(a)),
                IpAddr::V4(a) => self.v4.first(u32::from(a)),
            }
            .or(if self.groups.is_empty() {
                None
            } else {
                Some(0)
            }),
        };
        self.groups.get(g? as usize)
    }

    /// The peer a packet from the TUN goes to ([`Self::tx_group`]); among several care-of
    /// addresses of one home address, the flow's ([`pick`]). `flow` is asked for the
    /// packet's flow hash only then (the common packet, one binding, hashes nothing).
    pub fn tx_lookup(&self, src: IpAddr, dst: IpAddr, flow: impl FnOnce() -> u64) -> Option<&Peer> {
        self.tx_route(src, dst, flow).map(|(p, _)| p)
    }

    /// [`Self::tx_lookup`], with the bindings of the destination's home address (for
    /// [`Self::duplicate_paths`]).
    pub fn tx_route(
        &self,
        src: IpAddr,
        dst: IpAddr,
        flow: impl FnOnce() -> u64,
    ) -> Option<(&Peer, &[u32])> {
        self.tx_route_at(src, dst, flow, || mono_ns(Instant::now()))
    }

    /// [`Self::tx_route`] at the time `now` gives ([`mono_ns`]), asked only when a path
    /// among several is chosen by liveness (virtual time in tests).
    pub fn tx_route_at(
        &self,
        src: IpAddr,
        dst: IpAddr,
        flow: impl FnOnce() -> u64,
        now: impl FnOnce() -> u64,
    ) -> Option<(&Peer, &[u32])> {
        let group = self.tx_group(src, dst)?;
        let peer = match group {
            Ids::One(i) => self.peer(*i),
            Ids::Many(v) => {
                let hash = flow();
                let paths = v.iter().filter_map(|&i| self.peer(i));
                match self.liveness {
                    None => pick_preferred(paths, hash),
                    Some(limit) => {
                        let now = now();
                        // The live paths; if none answers, every path (better a chance
                        // than certain loss).
                        pick_preferred(
                            paths.clone().filter(|p| p.counters.0.alive(now, limit)),
                            hash,
                        )
                        .or_else(|| pick_preferred(paths, hash))
                    }
                }
            }
        }?;
        Some((peer, group.as_slice()))
    }

    /// Whose end this is.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The bindings of home addresses registered with several care-of addresses: the
    /// paths that are probed and chosen by liveness.
    pub fn multipath_peers(&self) -> impl Iterator<Item = &Peer> {
        self.groups
            .iter()
            .filter(|g| matches!(g, Ids::Many(_)))
            .flat_map(|g| g.as_slice())
            .filter_map(|&i| self.peer(i))
    }

    /// The flow binding (RFC 6089 §5.3.6) a packet to the bindings `group`
    /// ([`Self::tx_route`]'s) belongs to, if any: the first active entry, by FID-PRI, whose
    /// selector matches. Its path: the first of its BIDs heard from within the liveness
    /// limit (else its first); with several BIDs, the paths of the copies, by the rules of
    /// every duplicated flow among its BIDs' paths. `None`: no flow binding decides, the
    /// packet goes as [`Self::tx_route`] chose.
    pub fn flow_route_at<'a>(
        &'a self,
        group: &[u32],
        packet: &[u8],
        now: u64,
    ) -> Option<(&'a Peer, Vec<&'a Peer>)> {
        let entry = self.matching_entry(self.group_flows(group)?, packet, |e| &e.tx)?;
        let alive = |p: &&Peer| self.liveness.is_none_or(|l| p.counters.0.alive(now, l));
        let paths = || entry.peers.iter().filter_map(|&i| self.peer(i));
        let chosen = paths().find(alive).or_else(|| paths().next())?;
        // The copies as for any duplicated flow ([`Self::duplicate_paths_at`]), among the
        // entry's paths: each other one that lives (§5.3.6's "a copy to each care-of
        // address", less the silent ones), or the survivor twice.
        let copies = if entry.peers.len() > 1 {
            self.duplicate_paths_at(chosen, &entry.peers, now)
        } else {
            Vec::new()
        };
        Some((chosen, copies))
    }

    /// [`Self::flow_route_at`] now.
    pub fn flow_route<'a>(
        &'a self,
        group: &[u32],
        packet: &[u8],
    ) -> Option<(&'a Peer, Vec<&'a Peer>)> {
        if self.flows.is_empty() {
            return None;
        }
        self.flow_route_at(group, packet, mono_ns(Instant::now()))
    }

    /// The active flow bindings of the home address whose bindings are `group`.
    fn group_flows(&self, group: &[u32]) -> Option<&GroupFlows> {
        if self.flows.is_empty() || group.len() < 2 {
            return None;
        }
        let hoa = self.peer(group[0])?.binding.hoa;
        self.flows.get(self.flow_groups.get(&hoa)?)
    }

    /// Whether an arriving packet from a binding of `hoa` belongs to a flow binding that
    /// lists several registered BIDs: the other end sends it through each, and the later
    /// copies are dropped here.
    fn flow_duplicated_rx(&self, hoa: std::net::Ipv6Addr, packet: &[u8]) -> bool {
        let Some(gf) = self.flow_groups.get(&hoa).and_then(|g| self.flows.get(g)) else {
            return false;
        };
        self.matching_entry(gf, packet, |e| &e.rx)
            .is_some_and(|e| e.peers.len() > 1)
    }

    /// The entry of `gf` a packet belongs to: the first, by FID-PRI, whose selector (`side`:
    /// the one for what we send or for what we receive) matches; for a fragment after the
    /// first, which carries no ports, the one its first fragment matched (RFC 6089 §5.3.6).
    fn matching_entry<'g>(
        &self,
        gf: &'g GroupFlows,
        packet: &[u8],
        side: impl Fn(&FlowEntry) -> &FlowSelector,
    ) -> Option<&'g FlowEntry> {
        let memory = || {
            self.duplicate
                .fragments
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        };
        match fragment_of(packet) {
            Some((key, false)) => {
                let fid = memory().recall(&key)?;
                gf.entries.iter().find(|e| e.fid == fid)
            }
            first => {
                let e = gf.entries.iter().find(|e| side(e).matches(packet))?;
                if let Some((key, true)) = first {
                    memory().remember(key, e.fid);
                }
                Some(e)
            }
        }
    }

    /// Whether a packet to a destination with the bindings `group` ([`Self::tx_route`]'s)
    /// is of a duplicated flow: a rule selects it and the destination has several paths.
    pub fn duplicated(&self, group: &[u32], packet: &[u8]) -> bool {
        group.len() > 1 && selected(&self.duplicate.rules, packet)
    }

    /// The paths the further copies of a duplicated flow's packet take besides `chosen`
    /// ([`Self::tx_route`]'s). Another path first: every other path heard from within half
    /// the liveness limit ("fresh"); none fresh, every other live one (a fresh-looking
    /// chosen path may be the one dying, and the copies must not share its fate). When
    /// `chosen` is not fresh and one other path is, that path twice (the chosen one may be
    /// dying before it is declared so). Only `chosen` alive: `chosen` again — two copies in
    /// flight protect against a lossy surviving path; the receiver's window drops the later
    /// one like any copy.
    pub fn duplicate_paths<'a>(&'a self, chosen: &'a Peer, group: &'a [u32]) -> Vec<&'a Peer> {
        self.duplicate_paths_at(chosen, group, mono_ns(Instant::now()))
    }

    /// [`Self::duplicate_paths`] at `now` ([`mono_ns`]; virtual time in tests).
    pub fn duplicate_paths_at<'a>(
        &'a self,
        chosen: &'a Peer,
        group: &'a [u32],
        now: u64,
    ) -> Vec<&'a Peer> {
        let heard_within =
            |p: &Peer, limit: Option<Duration>| limit.is_none_or(|l| p.counters.0.alive(now, l));
        let others = || {
            group
                .iter()
                .filter_map(|&i| self.peer(i))
                .filter(|p| !std::ptr::eq(*p, chosen))
        };
        let half = self.liveness.map(|l| l / 2);
        let fresh: Vec<&Peer> = others().filter(|p| heard_within(p, half)).collect();
        let chosen_fresh = heard_within(chosen, half);
        match fresh.as_slice() {
            [one] if !chosen_fresh => vec![*one, *one],
            [] => {
                let live: Vec<&Peer> = others()
                    .filter(|p| heard_within(p, self.liveness))
                    .collect();
                if live.is_empty() { vec![chosen] } else { live }
            }
            _ => fresh,
        }
    }

    /// Whether an arriving packet of a path among several is to be delivered: not a later
    /// copy of a duplicated flow's packet.
    pub fn first_copy(&self, peer: &Peer, packet: &[u8]) -> bool {
        if !peer.is_mcoa()
            || !(selected(&self.duplicate.rules, packet)
                || (!self.flows.is_empty() && self.flow_duplicated_rx(peer.binding.hoa, packet)))
        {
            return true;
        }
        self.duplicate
            .window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first(packet)
    }

    /// The liveness limit this snapshot applies.
    pub fn liveness(&self) -> Option<Duration> {
        self.liveness
    }

    /// Every binding a packet from `src` to `dst` may be sent through (ICMP errors quote
    /// a packet of any of them).
    pub fn tx_candidates(&self, src: IpAddr, dst: IpAddr) -> impl Iterator<Item = &Peer> {
        self.tx_group(src, dst)
            .map(Ids::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|&i| self.peer(i))
    }

    /// Whether a decapsulated packet may enter: RFC 3963 §6.4 / RFC 6275 §10.4.5 on the HA
    /// (outer source = a live binding's CoA, or its previous one for [`MOVE_GRACE`]; inner
    /// source inside that MR's HoA or MNPs), outer source = our HA on the MR. `clock` is
    /// read only for a packet from a previous CoA.
    pub fn rx_check(
        &self,
        outer: Remote,
        inner_src: IpAddr,
        clock: &mut BatchClock,
    ) -> Result<&Peer, RxRefusal> {
        self.rx_check_at(outer, None, inner_src, clock)
    }

    /// Whether `addr` is our end of some binding's tunnel: a packet socket sees packets
    /// the node forwards too.
    pub fn is_local_end(&self, addr: IpAddr) -> bool {
        self.locals.contains(&addr)
    }

    /// [`Self::rx_check`] knowing the outer destination (`local`): among several bindings
    /// with one far end (the MR's care-of addresses towards one HA, RFC 5648), the one
    /// whose path the packet took.
    pub fn rx_check_at(
        &self,
        outer: Remote,
        local: Option<IpAddr>,
        inner_src: IpAddr,
        clock: &mut BatchClock,
    ) -> Result<&Peer, RxRefusal> {
        let admits = |i: u32| {
            self.peer(i)
                .filter(|p| self.mode == Mode::MobileRouter || p.covers(inner_src))
        };
        let mut known = false;
        if let Some(at) = self.remotes.get(&outer) {
            known = true;
            let at = at.as_slice();
            let ours =
                |&&i: &&u32| local.is_none_or(|l| self.peer(i).is_some_and(|p| p.local() == l));
            if let Some(p) = at
                .iter()
                .filter(ours)
                .find_map(|&i| admits(i))
                .or_else(|| at.iter().find_map(|&i| admits(i)))
            {
                return Ok(p);
            }
        }
        if let Some(moved) = self.previous.get(&outer) {
            let now = clock.now();
            for &(i, when) in moved {
                if now.saturating_duration_since(when) < MOVE_GRACE {
                    known = true;
                    if let Some(p) = admits(i) {
                        return Ok(p);
                    }
                }
            }
        }
        Err(if known {
            RxRefusal::SpoofedInnerSource
        } else {
            RxRefusal::UnknownOuterSource
        })
    }
}

/// The care-of address a flow that no flow binding decides takes among `paths`: one of
/// those of the highest priority, the lowest BID-PRI (RFC 6089 §5.1.1), by [`pick`] —
/// the others wait as backups until no path of that priority lives. Equal priorities (the
/// default) spread every flow over all of them, which RFC 6089 leaves to the
/// implementation.
pub fn pick_preferred<'a>(
    paths: impl Iterator<Item = &'a Peer> + Clone,
    flow: u64,
) -> Option<&'a Peer> {
    let best = paths.clone().map(Peer::bid_priority).min()?;
    pick(paths.filter(|p| p.bid_priority() == best), flow)
}

/// The care-of address a flow takes among several (RFC 5648): rendezvous hashing (highest
/// random weight) of the flow hash with each binding's identifier. A flow stays on its
/// path while that path is registered, and when a path goes only its flows move (a
/// modulo would reshuffle every flow). Costs one mix per path, a handful at most.
///
/// Once every path's capacity our way is known (the other end's packet-pair measure,
/// [`CapacityLine`]), each path draws flows in proportion to it: weighted rendezvous
/// hashing (the score `ln w - ln(-ln u)` of the flow's uniform draw `u` for the path,
/// Schindelhauer and Schomaker's). Equal weights rank the paths as the draws alone do,
/// so measuring them moves no flow; a weight follows its measure only when that moves by
/// half, and then moves only the flows the new proportions require. Until every path is
/// measured, every path draws alike.
pub fn pick<'a>(peers: impl Iterator<Item = &'a Peer> + Clone, flow: u64) -> Option<&'a Peer> {
    let draw = |p: &Peer| {
        let bid = u64::from(p.binding.binding_id.unwrap_or(0));
        mix(flow ^ bid.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    };
    let weighted = peers.clone().all(|p| p.weight_kbps() > 0);
    if !weighted {
        return peers.max_by_key(|p| draw(p));
    }
    let score = |p: &Peer| {
        // u in (0, 1) from the draw's 53 high bits.
        let u = ((draw(p) >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
        f64::from(p.weight_kbps()).ln() - (-u.ln()).ln()
    };
    peers.max_by(|a, b| score(a).total_cmp(&score(b)))
}

/// A 64-bit finalizer (SplitMix64's): every input bit reaches every output bit.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Where the daemon publishes snapshots and the packet threads pick them up: the current
/// snapshot behind a mutex, and a generation number that tells a reader, without the
/// mutex, that there is a newer one.
#[derive(Debug)]
pub struct SharedPeers {
    generation: AtomicU64,
    current: Mutex<Arc<Snapshot>>,
}

impl SharedPeers {
    fn new(s: Snapshot) -> Self {
        SharedPeers {
            generation: AtomicU64::new(0),
            current: Mutex::new(Arc::new(s)),
        }
    }

    fn publish(&self, s: Snapshot) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        *cur = Arc::new(s);
        // Bumped under the mutex: a reader that sees the new number and then takes the
        // mutex finds this snapshot (or a newer one).
        self.generation.fetch_add(1, Ordering::Release);
    }

    fn load(&self) -> (u64, Arc<Snapshot>) {
        let cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        (self.generation.load(Ordering::Acquire), Arc::clone(&cur))
    }

    /// A handle for one packet thread.
    pub fn reader(self: &Arc<Self>) -> PeerReader {
        let (seen, snapshot) = self.load();
        PeerReader {
            shared: Arc::clone(self),
            seen,
            snapshot,
        }
    }
}

/// A packet thread's view of the table: [`PeerReader::refresh`] once per batch (after the
/// blocking read, so a batch never uses a table older than its packets), then every packet
/// of the batch is looked up in the same snapshot without any lock.
#[derive(Debug)]
pub struct PeerReader {
    shared: Arc<SharedPeers>,
    seen: u64,
    snapshot: Arc<Snapshot>,
}

impl PeerReader {
    /// The newest snapshot: one atomic load, and the mutex only if the daemon published
    /// since the last call.
    pub fn refresh(&mut self) -> &Snapshot {
        if self.shared.generation.load(Ordering::Acquire) != self.seen {
            (self.seen, self.snapshot) = self.shared.load();
        }
        &self.snapshot
    }
}

/// The bindings the data plane serves, as the daemon edits them. Each edit that changes
/// what a packet sees publishes a new [`Snapshot`] for the [`PeerReader`]s, or, in a
/// batch ([`PeerTable::defer`]), the batch's end publishes once for all of its edits: a
/// snapshot is built from every binding (3.3 ms at 10,000), and a home agent taking over a
/// fleet, or a fleet registering at once, must not build one per binding.
#[derive(Debug)]
pub struct PeerTable {
    mode: Mode,
    /// In arrival order (the order decides ties, see [`Snapshot::build_with`]); a removed
    /// binding leaves a hole until the next publication closes the holes.
    peers: Vec<Option<Arc<Peer>>>,
    /// Where each binding sits in `peers`: an edit finds its binding without a walk.
    index: HashMap<BindingKey, usize>,
    shared: Arc<SharedPeers>,
    liveness: Option<Duration>,
    duplicate: Duplicate,
    deferred: bool,
    /// An edit not yet published (in a batch).
    dirty: bool,
    /// The far ends of the last publication's bindings received through raw IP sockets
    /// ([`PeerTable::raw_ip_far_ends`]), and who is told when they change.
    raw_ip_rx: Vec<Ipv6Addr>,
    raw_ip_watch: RawIpWatch,
}

/// What [`PeerTable::watch_raw_ip_rx`] calls.
#[derive(Default)]
struct RawIpWatch(Option<Box<FarEndsWatch>>);

/// Told the far ends whose tunnel packets come through the raw IP sockets.
type FarEndsWatch = dyn FnMut(&[Ipv6Addr]) + Send;

impl std::fmt::Debug for RawIpWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "watched" } else { "-" })
    }
}

impl PeerTable {
    /// An empty table (and an empty snapshot published).
    pub fn new(mode: Mode) -> Self {
        PeerTable {
            mode,
            peers: Vec::new(),
            index: HashMap::new(),
            shared: Arc::new(SharedPeers::new(Snapshot::empty(mode))),
            liveness: None,
            duplicate: Duplicate::default(),
            deferred: false,
            dirty: false,
            raw_ip_rx: Vec::new(),
            raw_ip_watch: RawIpWatch::default(),
        }
    }

    /// Calls `f` with the far ends whose tunnel packets come through the raw IP sockets
    /// ([`Peer::raw_ip_rx`]; an IPv4 one IPv4-mapped), sorted, now and whenever a
    /// publication changes them: the packet socket for merged (and TCP) tunnel packets,
    /// which sees every packet the node receives, listens only while there are any, and
    /// takes only theirs.
    pub fn watch_raw_ip_rx(&mut self, mut f: impl FnMut(&[Ipv6Addr]) + Send + 'static) {
        f(&self.raw_ip_rx);
        self.raw_ip_watch = RawIpWatch(Some(Box::new(f)));
    }

    /// The far ends of the bindings received through raw IP sockets: each one's care-of
    /// address (or the HA's, on a router), and its previous one during the grace after a
    /// move.
    fn raw_ip_far_ends(&self) -> Vec<Ipv6Addr> {
        let mut v: Vec<Ipv6Addr> = self
            .peers
            .iter()
            .flatten()
            .filter(|p| p.raw_ip_rx())
            .flat_map(|p| [Some(p.remote), p.previous_remote.map(|(r, _)| r)])
            .flatten()
            .filter_map(|r| match r {
                Remote::V6(a) => Some(a),
                Remote::V4(a) => Some(a.to_ipv6_mapped()),
                Remote::Udp(_) => None,
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Starts (`true`) or ends a batch of edits. Within one nothing is published; ending
    /// it publishes once if anything changed.
    pub fn defer(&mut self, on: bool) {
        self.deferred = on;
        if !on && self.dirty {
            self.publish();
        }
    }

    /// The flows sent through every live path of a destination with several; published
    /// at once.
    pub fn set_duplicate(&mut self, rules: Vec<DupRule>) {
        self.duplicate.rules = rules.into();
        self.changed();
    }

    /// The path liveness limit.
    pub fn liveness(&self) -> Option<Duration> {
        self.liveness
    }

    /// Paths among several silent for longer than `limit` are taken out of use (`None`:
    /// never); published at once.
    pub fn set_liveness(&mut self, limit: Option<Duration>) {
        self.liveness = limit;
        self.changed();
    }

    /// Where the snapshots are published (for the packet threads' readers).
    pub fn shared(&self) -> Arc<SharedPeers> {
        Arc::clone(&self.shared)
    }

    /// The snapshot the packet threads see now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.load().1
    }

    fn changed(&mut self) {
        if self.deferred {
            self.dirty = true;
        } else {
            self.publish();
        }
    }

    fn publish(&mut self) {
        if self.peers.len() != self.index.len() {
            // Close the holes of removed bindings, in order.
            self.peers.retain(Option::is_some);
            self.index.clear();
            for (i, p) in self.peers.iter().flatten().enumerate() {
                self.index.insert(key(&p.binding), i);
            }
        }
        let raw_ip_rx = self.raw_ip_far_ends();
        if raw_ip_rx != self.raw_ip_rx {
            self.raw_ip_rx = raw_ip_rx;
            if let Some(f) = &mut self.raw_ip_watch.0 {
                f(&self.raw_ip_rx);
            }
        }
        self.shared.publish(Snapshot::build_with(
            self.mode,
            self.peers.iter().flatten().cloned().collect(),
            self.liveness,
            self.duplicate.clone(),
        ));
        self.dirty = false;
    }

    /// Adds or replaces the binding's peer (a move replaces the outer header only, and
    /// keeps the old outer source acceptable for [`MOVE_GRACE`]).
    pub fn upsert(&mut self, mut peer: Peer) {
        let k = key(&peer.binding);
        match self.index.get(&k).and_then(|&i| self.peers[i].as_mut()) {
            Some(p) => {
                // The binding's traffic so far stays with it through refreshes and moves.
                peer.counters = p.counters.clone();
                peer.previous_remote = if p.remote != peer.remote {
                    Some((p.remote, Instant::now()))
                } else {
                    p.previous_remote
                };
                let unchanged = p.same_for_packets(&peer);
                *p = Arc::new(peer);
                if unchanged {
                    // A refresh: the published snapshot keeps the older copy of the
                    // binding, identical in everything a packet looks at.
                    return;
                }
            }
            None => {
                self.index.insert(k, self.peers.len());
                self.peers.push(Some(Arc::new(peer)));
            }
        }
        self.changed();
    }

    /// Removes the binding's peer.
    pub fn remove(&mut self, b: &Binding) {
        if let Some(i) = self.index.remove(&key(b)) {
            self.peers[i] = None;
            self.changed();
        }
    }

    /// Removes every peer.
    pub fn clear(&mut self) {
        if !self.index.is_empty() {
            self.peers.clear();
            self.index.clear();
            self.changed();
        }
    }

    /// The peers, in arrival order (with the binding as last announced).
    pub fn peers(&self) -> impl Iterator<Item = &Arc<Peer>> {
        self.peers.iter().flatten()
    }

    /// How many peers.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there is no peer.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

#[cfg(test)]
mod tests;
